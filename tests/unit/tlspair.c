/*
 * tlspair: tlsconn against a wolfSSL server over memory.
 */
#include "tlspair.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char path[512];

const char *tlspair_pki(const char *name)
{
    const char *dir = getenv("MEMTUNNEL_TEST_PKI");
    ck_assert_msg(dir != NULL, "MEMTUNNEL_TEST_PKI is not set (run via make unit)");
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static int srv_recv(WOLFSSL *ssl, char *p, int sz, void *arg)
{
    struct tlspair *pr = arg;
    size_t n = buf_len(&pr->to_server);
    (void)ssl;
    if (n == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    if (n > (size_t)sz)
        n = (size_t)sz;
    memcpy(p, buf_peek(&pr->to_server), n);
    buf_consume(&pr->to_server, n);
    return (int)n;
}

static int srv_send(WOLFSSL *ssl, char *p, int sz, void *arg)
{
    struct tlspair *pr = arg;
    (void)ssl;
    ck_assert_int_eq(buf_append(&pr->to_client, p, (size_t)sz), 0);
    return sz;
}

static void server_session(struct tlspair *pr)
{
    pr->s = wolfSSL_new(pr->sctx);
    ck_assert_ptr_nonnull(pr->s);
    wolfSSL_SetIOReadCtx(pr->s, pr);
    wolfSSL_SetIOWriteCtx(pr->s, pr);
}

void tlspair_init(struct tlspair *pr, const struct tlspair_opts *o,
                  const char *name, int is_ip)
{
    struct config cfg;
    struct config_error err;
    struct run_error fault = { 0 };
    const char *cert = o->cert ? o->cert : "server";
    char crt[64], key[64];

    memset(pr, 0, sizeof *pr);
    memset(&cfg, 0, sizeof cfg);
    cfg.verify = o->verify;
    cfg.tls_min = o->tls_min ? o->tls_min : 12;
    cfg.ca_file = strdup(tlspair_pki("ca.crt"));
    cfg.ca_source = "--ca";
    pr->cctx = tls_ctx_new(&cfg, &err, &fault);
    free((char *)cfg.ca_file);
    ck_assert_msg(pr->cctx != NULL, "tls_ctx_new: %s", err.msg);
    tlsconn_setup_ctx(pr->cctx);
    ck_assert_int_eq(tlsconn_init(&pr->c, pr->cctx, name, is_ip), 0);

    pr->sctx = wolfSSL_CTX_new(o->method ? o->method() : wolfSSLv23_server_method());
    ck_assert_ptr_nonnull(pr->sctx);
    snprintf(crt, sizeof crt, "%s%s.crt", cert, o->chain ? "-chain" : "");
    snprintf(key, sizeof key, "%s.key", cert);
    ck_assert_int_eq(wolfSSL_CTX_use_certificate_chain_file(pr->sctx,
                     tlspair_pki(crt)), WOLFSSL_SUCCESS);
    ck_assert_int_eq(wolfSSL_CTX_use_PrivateKey_file(pr->sctx, tlspair_pki(key),
                     WOLFSSL_FILETYPE_PEM), WOLFSSL_SUCCESS);
    if (o->server_suites) {
        wolfSSL_CTX_allow_anon_cipher(pr->sctx);
        ck_assert_int_eq(wolfSSL_CTX_set_cipher_list(pr->sctx, o->server_suites),
                         WOLFSSL_SUCCESS);
    }
    wolfSSL_CTX_SetIORecv(pr->sctx, srv_recv);
    wolfSSL_CTX_SetIOSend(pr->sctx, srv_send);
    server_session(pr);
}

void tlspair_init_again(struct tlspair *pr, const struct tlspair *first,
                        const char *name)
{
    memset(pr, 0, sizeof *pr);
    pr->cctx = first->cctx;
    pr->sctx = first->sctx;
    ck_assert_int_eq(tlsconn_init(&pr->c, pr->cctx, name, 0), 0);
    server_session(pr);
}

void tlspair_free_again(struct tlspair *pr)
{
    tlsconn_free(&pr->c);
    wolfSSL_free(pr->s);
    buf_free(&pr->to_server);
    buf_free(&pr->to_client);
}

void tlspair_free(struct tlspair *pr)
{
    tlspair_free_again(pr);
    tls_ctx_free(pr->cctx);
    wolfSSL_CTX_free(pr->sctx);
}

void tlspair_to_server(struct tlspair *pr)
{
    struct buf *out = &pr->c.out;
    ck_assert_int_eq(buf_append(&pr->to_server, buf_peek(out), buf_len(out)), 0);
    buf_consume(out, buf_len(out));
}

/* Lend the server's ciphertext to the client, as the tunnel's read does,
 * in pieces of `chunk` bytes to exercise partial records. */
static int client_step(struct tlspair *pr, size_t chunk)
{
    int r = tlsconn_handshake(&pr->c);
    while (r == TLSCONN_AGAIN && buf_len(&pr->to_client) > 0) {
        size_t n = buf_len(&pr->to_client);
        if (n > chunk)
            n = chunk;
        char *copy = malloc(n);
        memcpy(copy, buf_peek(&pr->to_client), n);
        buf_consume(&pr->to_client, n);
        tlsconn_feed(&pr->c, copy, n);
        r = tlsconn_handshake(&pr->c);
        ck_assert_int_eq(tlsconn_feed_end(&pr->c), 0);
        free(copy);
    }
    return r;
}

int tlspair_handshake(struct tlspair *pr)
{
    int r = TLSCONN_AGAIN;
    for (int round = 0; round < 20; round++) {
        r = client_step(pr, 1000);
        tlspair_to_server(pr);
        if (!pr->server_done) {
            int a = wolfSSL_accept(pr->s);
            if (a == WOLFSSL_SUCCESS)
                pr->server_done = 1;
            else {
                int e = wolfSSL_get_error(pr->s, a);
                if (e != WOLFSSL_ERROR_WANT_READ && e != WOLFSSL_ERROR_WANT_WRITE) {
                    /* The server refused: let the client read its alert. */
                    if (r == TLSCONN_AGAIN)
                        r = client_step(pr, 1000);
                    return r == 0 ? TLSCONN_ERROR : r;
                }
            }
        }
        if (r != TLSCONN_AGAIN && (r < 0 || pr->server_done))
            return r;
    }
    return r;
}

size_t tlspair_client_read(struct tlspair *pr, char *dst, size_t cap, int *end)
{
    size_t got = 0;
    *end = 0;
    for (;;) {
        ssize_t r = tlsconn_read(&pr->c, dst + got, cap - got);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r != TLSCONN_AGAIN) {
            *end = (int)r;
            break;
        }
        if (buf_len(&pr->to_client) == 0)
            break;
        size_t n = buf_len(&pr->to_client) > 3000 ? 3000 : buf_len(&pr->to_client);
        char *copy = malloc(n);
        memcpy(copy, buf_peek(&pr->to_client), n);
        buf_consume(&pr->to_client, n);
        tlsconn_feed(&pr->c, copy, n);
        r = tlsconn_read(&pr->c, dst + got, cap - got);
        if (r > 0)
            got += (size_t)r;
        else if (r != TLSCONN_AGAIN)
            *end = (int)r;
        ck_assert_int_eq(tlsconn_feed_end(&pr->c), 0);
        free(copy);
        if (*end)
            break;
    }
    return got;
}
