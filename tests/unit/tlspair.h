/*
 * tlspair: a real tlsconn client and a wolfSSL server in one process,
 * joined by memory buffers, for the unit suites of the TLS modules.
 * Certificates come from tests/pki.sh, in $MEMTUNNEL_TEST_PKI.
 */
#ifndef MEMTUNNEL_TEST_TLSPAIR_H
#define MEMTUNNEL_TEST_TLSPAIR_H

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "buf.h"
#include "tls.h"
#include "tlsconn.h"

struct tlspair {
    struct tls_ctx *cctx;
    struct tlsconn c;
    WOLFSSL_CTX *sctx;
    WOLFSSL *s;
    struct buf to_server;        /* ciphertext the server has not read yet */
    struct buf to_client;        /* ciphertext the client has not read yet */
    int server_done;             /* handshake finished on the server */
};

struct tlspair_opts {
    enum config_verify verify;
    int tls_min;                 /* client: 12 (default) or 13 */
    const char *cert;            /* server certificate in the PKI, "server" */
    int chain;                   /* present NAME-chain.crt (leaf + CA) */
    WOLFSSL_METHOD *(*method)(void);   /* server method, default v23 */
    const char *server_suites;   /* server cipher list, anonymous allowed */
};

/* Path of NAME in the test PKI (a static buffer). */
const char *tlspair_pki(const char *name);

/* A client trusting ca.crt that connects to `name`, and a server. */
void tlspair_init(struct tlspair *pr, const struct tlspair_opts *o,
                  const char *name, int is_ip);

/* A second client and server sharing pr's contexts (for resumption). */
void tlspair_init_again(struct tlspair *pr, const struct tlspair *first,
                        const char *name);

void tlspair_free(struct tlspair *pr);

/* Free what tlspair_init_again made (the contexts stay with `first`). */
void tlspair_free_again(struct tlspair *pr);

/* Carry the client's ciphertext to the server. */
void tlspair_to_server(struct tlspair *pr);

/* Run both handshakes to completion or failure; returns the client's. */
int tlspair_handshake(struct tlspair *pr);

/*
 * Read everything the client can decrypt into dst, lending the server's
 * ciphertext in pieces of 3000 bytes; *end gets 0 or how the stream ended.
 */
size_t tlspair_client_read(struct tlspair *pr, char *dst, size_t cap, int *end);

#endif
