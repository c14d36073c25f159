/*
 * tlsconn: one TLS client session over memory buffers.
 *
 * The caller moves ciphertext: what arrives from the network is lent with
 * tlsconn_feed, wolfSSL decrypts straight from it, and tlsconn_feed_end
 * keeps only the unconsumed tail (a partial record) in `in`.  What tlsconn
 * leaves in `out` is sent by the caller.  No sockets, no event loop: every subtle case is
 * unit-tested in one process.
 *
 * Return codes of the stepping functions:
 *   >= 0              done (tlsconn_read: bytes of plaintext)
 *   TLSCONN_AGAIN     more ciphertext is needed; send `out` and wait
 *   TLSCONN_CLOSED    the server sent close_notify
 *   TLSCONN_TRUNCATED the transport ended without close_notify
 *   TLSCONN_ERROR     fatal; tlsconn_reason_code says why
 * After every call, `out` may hold bytes to send (records, alerts, acks).
 */
#ifndef MEMTUNNEL_TLSCONN_H
#define MEMTUNNEL_TLSCONN_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "tls.h"

enum {
    TLSCONN_AGAIN = -1,
    TLSCONN_CLOSED = -2,
    TLSCONN_TRUNCATED = -3,
    TLSCONN_ERROR = -4,
};

struct WOLFSSL;

/* The server's certificates as it sent them, leaf first (DER). */
#define TLSCONN_CHAIN_MAX 10
struct tlsconn_chain {
    size_t n;
    size_t off[TLSCONN_CHAIN_MAX + 1];   /* cert i is der[off[i], off[i+1]) */
    unsigned char der[];
};

struct tlsconn {
    struct WOLFSSL *ssl;
    struct buf in;           /* ciphertext received, not yet taken by wolfSSL */
    const char *lent;        /* ciphertext lent by tlsconn_feed */
    size_t lent_len;
    struct buf out;          /* ciphertext to send, filled by wolfSSL */
    int eof;                 /* the transport delivered EOF */
    int oom;                 /* the send callback could not grow `out` */
    int err;                 /* wolfSSL error of the failure, 0 if none */
    enum reason code;        /* why it failed; REASON_OTHER: it has not */
    char reason[160];        /* words beyond the table's, or "" */
    struct tlsconn_chain *chain;   /* from the last full handshake, or NULL */
    /* The reference identity, checked on the leaf when verify is full. */
    const char *name;        /* the upstream as a DNS name (ip_len 0) */
    unsigned char ip[16];    /* or as an address, ip_len 4 or 16 bytes */
    size_t ip_len;
    int check_ident;         /* verify full: the leaf must name the upstream */
    int ident;               /* 1 the leaf named it, -1 it did not, 0 unseen */
};

/*
 * Set up a session towards `name`: sent as SNI unless it is an IP literal,
 * and checked against the certificate's SANs when verify is full (see
 * ident.h: an IP only against iPAddress SANs, as bytes; a name only against
 * dNSName SANs; never the subject CN).  name must stay valid until
 * tlsconn_free.  Returns 0 or -1 (out of memory, or name_is_ip and name is
 * no IP literal).  tlsconn_free must be called either way.
 */
int tlsconn_init(struct tlsconn *t, struct tls_ctx *ctx, const char *name,
                 int name_is_ip);
void tlsconn_free(struct tlsconn *t);

/*
 * Lend n bytes of received ciphertext, read after what `in` already holds.
 * Until tlsconn_feed_end, p must stay valid and unchanged; feed_end copies
 * what wolfSSL has not taken into `in` and returns 0, or -1 when out of
 * memory.
 */
void tlsconn_feed(struct tlsconn *t, const char *p, size_t n);
int tlsconn_feed_end(struct tlsconn *t);

/* The transport ended: once the input is used up, reads report it. */
void tlsconn_eof(struct tlsconn *t);

int tlsconn_handshake(struct tlsconn *t);

/* Decrypt up to n bytes into p. */
ssize_t tlsconn_read(struct tlsconn *t, void *p, size_t n);

/* Encrypt all n bytes into `out`.  Returns 0 or TLSCONN_ERROR. */
int tlsconn_write(struct tlsconn *t, const void *p, size_t n);

/* Queue close_notify into `out`. */
void tlsconn_close_notify(struct tlsconn *t);

/*
 * Why the session failed: the first failure's reason (reason.h), or
 * REASON_TLS_ERROR when none was recorded.  The session keeps it until
 * tlsconn_free.
 */
enum reason tlsconn_reason_code(const struct tlsconn *t);

/*
 * The same in words, for the log: the table's words for the reason, or
 * more precise ones where the table has none ("server sent alert 90",
 * "TLS error -308: ...").  Valid until tlsconn_free.
 */
const char *tlsconn_reason(const struct tlsconn *t);

/* 1 when the session failed because the peer's certificate was refused
 * (reason_is_verify of its reason), else 0. */
int tlsconn_verify_failed(const struct tlsconn *t);

/* Negotiated protocol and suite names, for debug logs. */
const char *tlsconn_version(struct tlsconn *t);
const char *tlsconn_cipher(struct tlsconn *t);

/*
 * Session resumption.  tlsconn_session returns a new reference to the
 * session (NULL if none yet; take it after the first bytes were read, when
 * TLS 1.3 tickets have arrived), to be released with tlsconn_session_free.
 * tlsconn_resume offers one before the handshake; a server that no longer
 * knows it falls back to a full handshake (and full verification).
 */
void *tlsconn_session(struct tlsconn *t);
void tlsconn_resume(struct tlsconn *t, void *session);
int tlsconn_resumed(struct tlsconn *t);
void tlsconn_session_free(void *session);

/* Seconds the session's ticket has left (0 when expired), or -1 when the
 * library does not tell. */
long tlsconn_session_lifetime(void *session);

/*
 * The certificates the server sent in a full handshake, kept from the
 * verification (whatever its verdict) until tlsconn_drop_chain or
 * tlsconn_free; NULL after a resumed handshake, or before any.  Kept here
 * rather than by wolfSSL (SESSION_CERTS), whose sessions then carry 36 KiB
 * of fixed arrays each for as long as a connection lives.
 */
const struct tlsconn_chain *tlsconn_chain(const struct tlsconn *t);
void tlsconn_drop_chain(struct tlsconn *t);

/* Tell wolfSSL which socket and verification callbacks to use; once per
 * context. */
void tlsconn_setup_ctx(struct tls_ctx *ctx);

#endif
