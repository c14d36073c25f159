/*
 * tlsconn: a real wolfSSL client (tlsconn + tls_ctx, as the tunnel uses
 * them) against a wolfSSL server in the same process, over memory.
 *
 * Certificates come from tests/pki.sh, in $MEMTUNNEL_TEST_PKI.  Each case
 * tries to get a connection through that must not get through: wrong name,
 * expired, self-signed, unknown CA, old protocol versions, an anonymous
 * server; and checks what must work: names, IP SANs, data of 1 byte and 1
 * MiB both ways, close_notify against truncation.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"
#include "tls.h"
#include "tlsconn.h"

struct pair {
    struct tls_ctx *cctx;
    struct tlsconn c;
    WOLFSSL_CTX *sctx;
    WOLFSSL *s;
    struct buf to_server;        /* ciphertext the server has not read yet */
    struct buf to_client;        /* ciphertext the client has not read yet */
    int server_done;             /* handshake finished on the server */
};

static char path[512];

static const char *pki(const char *name)
{
    const char *dir = getenv("MEMTUNNEL_TEST_PKI");
    ck_assert_msg(dir != NULL, "MEMTUNNEL_TEST_PKI is not set (run via make unit)");
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static int srv_recv(WOLFSSL *ssl, char *p, int sz, void *arg)
{
    struct pair *pr = arg;
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
    struct pair *pr = arg;
    (void)ssl;
    ck_assert_int_eq(buf_append(&pr->to_client, p, (size_t)sz), 0);
    return sz;
}

struct opts {
    enum config_verify verify;
    int tls_min;                 /* client: 12 or 13 */
    const char *cert;            /* server certificate name in the PKI */
    WOLFSSL_METHOD *(*method)(void);
    const char *server_suites;
};

static void pair_init(struct pair *pr, const struct opts *o, const char *name,
                      int is_ip)
{
    struct config cfg;
    struct config_error err;
    char crt[64], key[64];

    memset(pr, 0, sizeof *pr);
    memset(&cfg, 0, sizeof cfg);
    cfg.verify = o->verify;
    cfg.tls_min = o->tls_min ? o->tls_min : 12;
    cfg.ca_file = strdup(pki("ca.crt"));
    cfg.ca_source = "--ca";
    pr->cctx = tls_ctx_new(&cfg, &err);
    free((char *)cfg.ca_file);
    ck_assert_msg(pr->cctx != NULL, "tls_ctx_new: %s", err.msg);
    tlsconn_setup_ctx(pr->cctx);
    ck_assert_int_eq(tlsconn_init(&pr->c, pr->cctx, name, is_ip), 0);

    pr->sctx = wolfSSL_CTX_new(o->method ? o->method() : wolfSSLv23_server_method());
    ck_assert_ptr_nonnull(pr->sctx);
    snprintf(crt, sizeof crt, "%s.crt", o->cert ? o->cert : "server");
    snprintf(key, sizeof key, "%s.key", o->cert ? o->cert : "server");
    ck_assert_int_eq(wolfSSL_CTX_use_certificate_chain_file(pr->sctx, pki(crt)),
                     WOLFSSL_SUCCESS);
    ck_assert_int_eq(wolfSSL_CTX_use_PrivateKey_file(pr->sctx, pki(key),
                     WOLFSSL_FILETYPE_PEM), WOLFSSL_SUCCESS);
    if (o->server_suites) {
        wolfSSL_CTX_allow_anon_cipher(pr->sctx);
        ck_assert_int_eq(wolfSSL_CTX_set_cipher_list(pr->sctx, o->server_suites),
                         WOLFSSL_SUCCESS);
    }
    wolfSSL_CTX_SetIORecv(pr->sctx, srv_recv);
    wolfSSL_CTX_SetIOSend(pr->sctx, srv_send);
    pr->s = wolfSSL_new(pr->sctx);
    ck_assert_ptr_nonnull(pr->s);
    wolfSSL_SetIOReadCtx(pr->s, pr);
    wolfSSL_SetIOWriteCtx(pr->s, pr);
}

static void pair_free(struct pair *pr)
{
    tlsconn_free(&pr->c);
    tls_ctx_free(pr->cctx);
    wolfSSL_free(pr->s);
    wolfSSL_CTX_free(pr->sctx);
    buf_free(&pr->to_server);
    buf_free(&pr->to_client);
}

/* Carry the client's ciphertext to the server. */
static void to_server(struct pair *pr)
{
    struct buf *out = &pr->c.out;
    ck_assert_int_eq(buf_append(&pr->to_server, buf_peek(out), buf_len(out)), 0);
    buf_consume(out, buf_len(out));
}

/* Lend the server's ciphertext to the client, as the tunnel's read does,
 * in pieces of `chunk` bytes to exercise partial records. */
static int client_step(struct pair *pr, int (*step)(struct pair *), size_t chunk)
{
    int r = step(pr);
    while (r == TLSCONN_AGAIN && buf_len(&pr->to_client) > 0) {
        size_t n = buf_len(&pr->to_client);
        if (n > chunk)
            n = chunk;
        char *copy = malloc(n);
        memcpy(copy, buf_peek(&pr->to_client), n);
        buf_consume(&pr->to_client, n);
        tlsconn_feed(&pr->c, copy, n);
        r = step(pr);
        ck_assert_int_eq(tlsconn_feed_end(&pr->c), 0);
        free(copy);
    }
    return r;
}

static int do_handshake(struct pair *pr)
{
    return tlsconn_handshake(&pr->c);
}

/* Run both handshakes to completion or failure; returns the client's. */
static int handshake(struct pair *pr)
{
    int r = TLSCONN_AGAIN;
    for (int round = 0; round < 20; round++) {
        r = client_step(pr, do_handshake, 1000);
        to_server(pr);
        if (!pr->server_done) {
            int a = wolfSSL_accept(pr->s);
            if (a == WOLFSSL_SUCCESS)
                pr->server_done = 1;
            else {
                int e = wolfSSL_get_error(pr->s, a);
                if (e != WOLFSSL_ERROR_WANT_READ && e != WOLFSSL_ERROR_WANT_WRITE) {
                    /* The server refused: let the client read its alert. */
                    if (r == TLSCONN_AGAIN)
                        r = client_step(pr, do_handshake, 1000);
                    return r == 0 ? TLSCONN_ERROR : r;
                }
            }
        }
        if (r != TLSCONN_AGAIN && (r < 0 || pr->server_done))
            return r;
    }
    return r;
}

static const struct opts defaults = { CONFIG_VERIFY_FULL, 12, "server", NULL, NULL };

/* ---- verification ---------------------------------------------------- */

struct verify_case {
    const char *cert, *name;
    int is_ip;
    enum config_verify verify;
    const char *reason;          /* NULL: must succeed */
};

static const struct verify_case verify_cases[] = {
    { "server", "localhost", 0, CONFIG_VERIFY_FULL, NULL },
    { "server", "127.0.0.1", 1, CONFIG_VERIFY_FULL, NULL },
    { "server", "other.example", 0, CONFIG_VERIFY_FULL, "name mismatch" },
    { "server", "10.9.8.7", 1, CONFIG_VERIFY_FULL, "name mismatch" },
    { "wrong", "localhost", 0, CONFIG_VERIFY_FULL, "name mismatch" },
    { "expired", "localhost", 0, CONFIG_VERIFY_FULL, "certificate expired" },
    { "selfsigned", "localhost", 0, CONFIG_VERIFY_FULL, "self-signed certificate" },
    { "unknownca", "localhost", 0, CONFIG_VERIFY_FULL, "unknown issuer" },
    /* chain: everything but the name */
    { "wrong", "localhost", 0, CONFIG_VERIFY_CHAIN, NULL },
    { "expired", "localhost", 0, CONFIG_VERIFY_CHAIN, "certificate expired" },
    { "selfsigned", "localhost", 0, CONFIG_VERIFY_CHAIN, "self-signed certificate" },
    { "unknownca", "localhost", 0, CONFIG_VERIFY_CHAIN, "unknown issuer" },
    /* none: nothing */
    { "wrong", "localhost", 0, CONFIG_VERIFY_NONE, NULL },
    { "expired", "localhost", 0, CONFIG_VERIFY_NONE, NULL },
    { "selfsigned", "localhost", 0, CONFIG_VERIFY_NONE, NULL },
    { "unknownca", "localhost", 0, CONFIG_VERIFY_NONE, NULL },
};

START_TEST(verification)
{
    const struct verify_case *vc = &verify_cases[_i];
    struct opts o = defaults;
    struct pair pr;
    o.cert = vc->cert;
    o.verify = vc->verify;
    pair_init(&pr, &o, vc->name, vc->is_ip);
    int r = handshake(&pr);
    if (vc->reason == NULL) {
        ck_assert_msg(r == 0, "%s as %s: %s", vc->cert, vc->name,
                      tlsconn_reason(&pr.c));
    } else {
        ck_assert_int_eq(r, TLSCONN_ERROR);
        ck_assert_msg(tlsconn_verify_failed(&pr.c), "not a verify failure: %s",
                      tlsconn_reason(&pr.c));
        ck_assert_str_eq(tlsconn_reason(&pr.c), vc->reason);
    }
    pair_free(&pr);
}
END_TEST

/* ---- protocol floor ----------------------------------------------------- */

START_TEST(refuses_tls11)
{
    struct opts o = defaults;
    struct pair pr;
    o.method = wolfTLSv1_1_server_method;
    pair_init(&pr, &o, "localhost", 0);
    ck_assert_int_eq(handshake(&pr), TLSCONN_ERROR);
    ck_assert(!tlsconn_verify_failed(&pr.c));
    /* wolfSSL servers answer a version they cannot serve with
     * handshake_failure, OpenSSL ones with protocol_version. */
    ck_assert_ptr_nonnull(strstr(tlsconn_reason(&pr.c), "server sent alert"));
    pair_free(&pr);
}
END_TEST

START_TEST(tls_min_13_refuses_12)
{
    struct opts o = defaults;
    struct pair pr;
    o.method = wolfTLSv1_2_server_method;
    o.tls_min = 13;
    pair_init(&pr, &o, "localhost", 0);
    ck_assert_int_eq(handshake(&pr), TLSCONN_ERROR);
    pair_free(&pr);
}
END_TEST

START_TEST(tls12_works)
{
    struct opts o = defaults;
    struct pair pr;
    o.method = wolfTLSv1_2_server_method;
    pair_init(&pr, &o, "localhost", 0);
    ck_assert_int_eq(handshake(&pr), 0);
    ck_assert_str_eq(tlsconn_version(&pr.c), "TLSv1.2");
    pair_free(&pr);
}
END_TEST

START_TEST(prefers_tls13)
{
    struct pair pr;
    pair_init(&pr, &defaults, "localhost", 0);
    ck_assert_int_eq(handshake(&pr), 0);
    ck_assert_str_eq(tlsconn_version(&pr.c), "TLSv1.3");
    pair_free(&pr);
}
END_TEST

/* A server with no certificate at all (anonymous DH) must not be accepted,
 * even though Debian's library compiles those suites in. */
START_TEST(refuses_anonymous_server)
{
    struct opts o = defaults;
    struct pair pr;
    o.method = wolfTLSv1_2_server_method;
    o.server_suites = "ADH-AES128-SHA:ADH-AES256-GCM-SHA384";
    pair_init(&pr, &o, "localhost", 0);
    ck_assert_int_eq(handshake(&pr), TLSCONN_ERROR);
    pair_free(&pr);
}
END_TEST

/* ---- data ---------------------------------------------------------------- */

static size_t srv_read_all(struct pair *pr, char *p, size_t cap)
{
    size_t got = 0;
    for (;;) {
        int r = wolfSSL_read(pr->s, p + got, (int)(cap - got));
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

static char *pattern(size_t n, unsigned seed)
{
    char *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (char)(seed >> 16);
    }
    return p;
}

/* Read everything the client can decrypt, lending ciphertext in pieces. */
static size_t client_read_all(struct pair *pr, char *dst, size_t cap, int *end)
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

static const size_t sizes[] = { 1, 100, 16384, 16385, 1 << 20 };

START_TEST(bytes_both_ways)
{
    size_t n = sizes[_i];
    struct pair pr;
    pair_init(&pr, &defaults, "localhost", 0);
    ck_assert_int_eq(handshake(&pr), 0);

    /* client -> server */
    char *up = pattern(n, 1), *got = malloc(n + 1);
    ck_assert_int_eq(tlsconn_write(&pr.c, up, n), 0);
    to_server(&pr);
    ck_assert_uint_eq(srv_read_all(&pr, got, n + 1), n);
    ck_assert_int_eq(memcmp(up, got, n), 0);

    /* server -> client */
    char *down = pattern(n, 2);
    size_t sent = 0;
    while (sent < n) {
        int w = wolfSSL_write(pr.s, down + sent, (int)(n - sent));
        ck_assert_int_gt(w, 0);
        sent += (size_t)w;
    }
    int end;
    ck_assert_uint_eq(client_read_all(&pr, got, n + 1, &end), n);
    ck_assert_int_eq(end, 0);
    ck_assert_int_eq(memcmp(down, got, n), 0);
    free(up);
    free(down);
    free(got);
    pair_free(&pr);
}
END_TEST

START_TEST(close_notify_is_clean)
{
    struct pair pr;
    char b[64];
    int end;
    pair_init(&pr, &defaults, "localhost", 0);
    ck_assert_int_eq(handshake(&pr), 0);
    wolfSSL_write(pr.s, "bye", 3);
    wolfSSL_shutdown(pr.s);
    ck_assert_uint_eq(client_read_all(&pr, b, sizeof b, &end), 3);
    ck_assert_int_eq(end, TLSCONN_CLOSED);
    pair_free(&pr);
}
END_TEST

START_TEST(eof_without_notify_is_truncation)
{
    struct pair pr;
    char b[64];
    int end;
    pair_init(&pr, &defaults, "localhost", 0);
    ck_assert_int_eq(handshake(&pr), 0);
    wolfSSL_write(pr.s, "partial", 7);
    ck_assert_uint_eq(client_read_all(&pr, b, sizeof b, &end), 7);
    ck_assert_int_eq(end, 0);
    tlsconn_eof(&pr.c);
    ck_assert_uint_eq(client_read_all(&pr, b, sizeof b, &end), 0);
    ck_assert_int_eq(end, TLSCONN_TRUNCATED);
    pair_free(&pr);
}
END_TEST

/* The client's own close_notify reaches the server as a clean end. */
START_TEST(client_close_notify)
{
    struct pair pr;
    char b[16];
    pair_init(&pr, &defaults, "localhost", 0);
    ck_assert_int_eq(handshake(&pr), 0);
    tlsconn_close_notify(&pr.c);
    to_server(&pr);
    ck_assert_int_eq(wolfSSL_read(pr.s, b, sizeof b), 0);
    ck_assert_int_eq(wolfSSL_get_error(pr.s, 0), WOLFSSL_ERROR_ZERO_RETURN);
    pair_free(&pr);
}
END_TEST

/* A second connection offering the first one's session resumes it (no
 * certificate exchange); a session is only there after data was read. */
START_TEST(resumption)
{
    struct pair a, b;
    char buf[16];
    int end;

    pair_init(&a, &defaults, "localhost", 0);
    ck_assert_int_eq(handshake(&a), 0);
    ck_assert(!tlsconn_resumed(&a.c));
    wolfSSL_write(a.s, "hi", 2);
    ck_assert_uint_eq(client_read_all(&a, buf, sizeof buf, &end), 2);
    void *session = tlsconn_session(&a.c);
    ck_assert_ptr_nonnull(session);

    /* Same server context: it knows the ticket key. */
    memset(&b, 0, sizeof b);
    b.cctx = a.cctx;
    b.sctx = a.sctx;
    ck_assert_int_eq(tlsconn_init(&b.c, b.cctx, "localhost", 0), 0);
    b.s = wolfSSL_new(b.sctx);
    wolfSSL_SetIOReadCtx(b.s, &b);
    wolfSSL_SetIOWriteCtx(b.s, &b);
    tlsconn_resume(&b.c, session);
    ck_assert_int_eq(handshake(&b), 0);
    ck_assert(tlsconn_resumed(&b.c));

    tlsconn_session_free(session);
    tlsconn_free(&b.c);
    wolfSSL_free(b.s);
    buf_free(&b.to_server);
    buf_free(&b.to_client);
    pair_free(&a);
}
END_TEST

/* Garbage instead of TLS (a plaintext memcached port answering). */
START_TEST(garbage_from_server)
{
    struct pair pr;
    static const char junk[] = "ERROR\r\nERROR\r\nERROR\r\n";
    pair_init(&pr, &defaults, "localhost", 0);
    ck_assert_int_eq(tlsconn_handshake(&pr.c), TLSCONN_AGAIN);
    tlsconn_feed(&pr.c, junk, sizeof junk - 1);
    ck_assert_int_eq(tlsconn_handshake(&pr.c), TLSCONN_ERROR);
    tlsconn_feed_end(&pr.c);
    ck_assert(!tlsconn_verify_failed(&pr.c));
    ck_assert_ptr_nonnull(strstr(tlsconn_reason(&pr.c), "TLS"));
    pair_free(&pr);
}
END_TEST

START_TEST(closed_mid_handshake)
{
    struct pair pr;
    pair_init(&pr, &defaults, "localhost", 0);
    ck_assert_int_eq(tlsconn_handshake(&pr.c), TLSCONN_AGAIN);
    tlsconn_eof(&pr.c);
    ck_assert_int_eq(tlsconn_handshake(&pr.c), TLSCONN_ERROR);
    ck_assert_str_eq(tlsconn_reason(&pr.c),
                     "server closed the connection during the handshake");
    pair_free(&pr);
}
END_TEST

/* ---- context errors --------------------------------------------------------- */

START_TEST(bad_ca_names_its_source)
{
    struct config cfg;
    struct config_error err;
    memset(&cfg, 0, sizeof cfg);
    memset(&err, 0, sizeof err);
    cfg.tls_min = 12;
    cfg.ca_pem = "-----BEGIN CERTIFICATE-----\nnot base64 at all\n"
                 "-----END CERTIFICATE-----\n";
    cfg.ca_source = "MEMTUNNEL_CA";
    ck_assert_ptr_null(tls_ctx_new(&cfg, &err));
    ck_assert_int_eq(err.status, CONFIG_EX_CONFIG);
    ck_assert_str_eq(err.name, "MEMTUNNEL_CA");
    ck_assert_ptr_null(strstr(err.msg, "not base64"));

    memset(&err, 0, sizeof err);
    cfg.ca_pem = NULL;
    cfg.ca_file = "/nonexistent/ca.pem";
    cfg.ca_source = "--ca";
    ck_assert_ptr_null(tls_ctx_new(&cfg, &err));
    ck_assert_str_eq(err.name, "--ca");
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/ca.pem"));
}
END_TEST

static void setup(void)
{
    ck_assert_int_eq(tls_global_init(), 0);
}

static void teardown(void)
{
    tls_global_cleanup();
}

Suite *tlsconn_suite(void)
{
    Suite *s = suite_create("tlsconn");
    TCase *tc = tcase_create("verify");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, verification, 0,
                        sizeof verify_cases / sizeof verify_cases[0]);
    tcase_add_test(tc, refuses_tls11);
    tcase_add_test(tc, tls_min_13_refuses_12);
    tcase_add_test(tc, tls12_works);
    tcase_add_test(tc, prefers_tls13);
    tcase_add_test(tc, refuses_anonymous_server);
    tcase_add_test(tc, bad_ca_names_its_source);
    suite_add_tcase(s, tc);

    tc = tcase_create("data");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, bytes_both_ways, 0, sizeof sizes / sizeof sizes[0]);
    tcase_add_test(tc, close_notify_is_clean);
    tcase_add_test(tc, eof_without_notify_is_truncation);
    tcase_add_test(tc, client_close_notify);
    tcase_add_test(tc, garbage_from_server);
    tcase_add_test(tc, resumption);
    tcase_add_test(tc, closed_mid_handshake);
    suite_add_tcase(s, tc);
    return s;
}
