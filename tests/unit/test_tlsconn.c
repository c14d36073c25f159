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
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"
#include "tlspair.h"

static const struct tlspair_opts defaults = { CONFIG_VERIFY_FULL, 12, "server", 0, NULL, NULL };

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
    /* An IP reference is an address: any textual form, compared as bytes
     * with the iPAddress SANs only (RFC 9525 §6.4). */
    { "server", "::1", 1, CONFIG_VERIFY_FULL, NULL },
    { "server", "0:0::1", 1, CONFIG_VERIFY_FULL, NULL },
    { "server", "0000::1", 1, CONFIG_VERIFY_FULL, NULL },
    { "server", "0:0:0:0:0:0:0:1", 1, CONFIG_VERIFY_FULL, NULL },
    { "server", "::2", 1, CONFIG_VERIFY_FULL, "name mismatch" },
    { "ip6only", "::1", 1, CONFIG_VERIFY_FULL, NULL },
    { "ip6only", "127.0.0.1", 1, CONFIG_VERIFY_FULL, "name mismatch" },
    { "iponly", "::ffff:127.0.0.1", 1, CONFIG_VERIFY_FULL, "name mismatch" },
    { "ipname", "127.0.0.1", 1, CONFIG_VERIFY_FULL, NULL },
    /* A DNS SAN, even one spelling the address, or a wildcard never
     * matches an IP. */
    { "dnsip", "127.0.0.1", 1, CONFIG_VERIFY_FULL, "name mismatch" },
    { "wildip", "127.0.0.1", 1, CONFIG_VERIFY_FULL, "name mismatch" },
    /* An IP SAN never matches a name, and the subject CN is never
     * consulted: not beside SANs, not without them. */
    { "iponly", "localhost", 0, CONFIG_VERIFY_FULL, "name mismatch" },
    { "ip6only", "localhost", 0, CONFIG_VERIFY_FULL, "name mismatch" },
    { "ipname", "localhost", 0, CONFIG_VERIFY_FULL, "name mismatch" },
    { "ipname", "other.example", 0, CONFIG_VERIFY_FULL, NULL },
    { "cnonly", "localhost", 0, CONFIG_VERIFY_FULL, "name mismatch" },
    /* Names: case-insensitive; a wildcard stands for exactly one label. */
    { "server", "LocalHost", 0, CONFIG_VERIFY_FULL, NULL },
    { "wildcard", "node1.mc.test", 0, CONFIG_VERIFY_FULL, NULL },
    { "wildcard", "NODE-2.MC.Test", 0, CONFIG_VERIFY_FULL, NULL },
    { "wildcard", "mc.test", 0, CONFIG_VERIFY_FULL, "name mismatch" },
    { "wildcard", "a.node1.mc.test", 0, CONFIG_VERIFY_FULL, "name mismatch" },
    { "expired", "localhost", 0, CONFIG_VERIFY_FULL, "certificate expired" },
    { "selfsigned", "localhost", 0, CONFIG_VERIFY_FULL, "self-signed certificate" },
    { "unknownca", "localhost", 0, CONFIG_VERIFY_FULL, "unknown issuer" },
    /* chain: everything but the name */
    { "wrong", "localhost", 0, CONFIG_VERIFY_CHAIN, NULL },
    { "dnsip", "127.0.0.1", 1, CONFIG_VERIFY_CHAIN, NULL },
    { "ip6only", "127.0.0.1", 1, CONFIG_VERIFY_CHAIN, NULL },
    { "cnonly", "localhost", 0, CONFIG_VERIFY_CHAIN, NULL },
    { "expired", "localhost", 0, CONFIG_VERIFY_CHAIN, "certificate expired" },
    { "selfsigned", "localhost", 0, CONFIG_VERIFY_CHAIN, "self-signed certificate" },
    { "unknownca", "localhost", 0, CONFIG_VERIFY_CHAIN, "unknown issuer" },
    /* none: nothing */
    { "wrong", "localhost", 0, CONFIG_VERIFY_NONE, NULL },
    { "expired", "localhost", 0, CONFIG_VERIFY_NONE, NULL },
    { "selfsigned", "localhost", 0, CONFIG_VERIFY_NONE, NULL },
    { "unknownca", "localhost", 0, CONFIG_VERIFY_NONE, NULL },
    { "dnsip", "127.0.0.1", 1, CONFIG_VERIFY_NONE, NULL },
};

START_TEST(verification)
{
    const struct verify_case *vc = &verify_cases[_i];
    struct tlspair_opts o = defaults;
    struct tlspair pr;
    o.cert = vc->cert;
    o.verify = vc->verify;
    tlspair_init(&pr, &o, vc->name, vc->is_ip);
    int r = tlspair_handshake(&pr);
    if (vc->reason == NULL) {
        ck_assert_msg(r == 0, "%s as %s: %s", vc->cert, vc->name,
                      tlsconn_reason(&pr.c));
    } else {
        ck_assert_int_eq(r, TLSCONN_ERROR);
        ck_assert_msg(tlsconn_verify_failed(&pr.c), "not a verify failure: %s",
                      tlsconn_reason(&pr.c));
        ck_assert_str_eq(tlsconn_reason(&pr.c), vc->reason);
        /* The words are the table's for the reason the session keeps. */
        ck_assert_str_eq(reason_words(tlsconn_reason_code(&pr.c)), vc->reason);
    }
    tlspair_free(&pr);
}
END_TEST

/*
 * tls_reason: wolfSSL's codes and alerts to reasons, with the words the
 * log has always printed for them.  words NULL: the table's.
 */
static const struct {
    int err, alert;
    enum reason r;
    const char *words;
} tls_words_cases[] = {
    { ASN_AFTER_DATE_E, -1, REASON_EXPIRED, "certificate expired" },
    { ASN_BEFORE_DATE_E, -1, REASON_NOT_YET_VALID, "certificate not yet valid" },
    { ASN_NO_SIGNER_E, -1, REASON_UNKNOWN_ISSUER, "unknown issuer" },
    { ASN_SELF_SIGNED_E, -1, REASON_SELF_SIGNED, "self-signed certificate" },
    { ASN_SIG_CONFIRM_E, -1, REASON_BAD_SIGNATURE, "bad certificate signature" },
    { ASN_PATHLEN_SIZE_E, -1, REASON_CHAIN_TOO_LONG, "certificate chain too long" },
    { ASN_PATHLEN_INV_E, -1, REASON_CHAIN_TOO_LONG, "certificate chain too long" },
    { DOMAIN_NAME_MISMATCH, -1, REASON_NAME_MISMATCH, "name mismatch" },
    { IPADDR_MISMATCH, -1, REASON_NAME_MISMATCH, "name mismatch" },
    { NO_PEER_CERT, -1, REASON_NO_PEER_CERT, "server sent no certificate" },
    { VERIFY_CERT_ERROR, -1, REASON_VERIFY_FAILED, "certificate verification failed" },
    { VERSION_ERROR, -1, REASON_VERSION, "protocol version not supported" },
    { MATCH_SUITE_ERROR, -1, REASON_NO_SHARED_SUITE, "no cipher suite in common" },
    { UNSUPPORTED_SUITE, -1, REASON_NO_SHARED_SUITE, "no cipher suite in common" },
    { SOCKET_ERROR_E, -1, REASON_HANDSHAKE_CLOSED,
      "server closed the connection during the handshake" },
    { SOCKET_PEER_CLOSED_E, -1, REASON_HANDSHAKE_CLOSED,
      "server closed the connection during the handshake" },
    { PARSE_ERROR, -1, REASON_NOT_TLS, "server did not speak TLS (plaintext port?)" },
    { UNKNOWN_RECORD_TYPE, -1, REASON_NOT_TLS, "server did not speak TLS (plaintext port?)" },
    { LENGTH_ERROR, -1, REASON_NOT_TLS, "server did not speak TLS (plaintext port?)" },
    { BUFFER_ERROR, -1, REASON_NOT_TLS, "server did not speak TLS (plaintext port?)" },
    { DECRYPT_ERROR, -1, REASON_DECRYPT, "decryption failed" },
    { FATAL_ERROR, 40, REASON_ALERT_HANDSHAKE_FAILURE, "server sent alert: handshake failure" },
    { FATAL_ERROR, 42, REASON_ALERT_BAD_CERTIFICATE, "server sent alert: bad certificate" },
    { FATAL_ERROR, 45, REASON_ALERT_CERT_EXPIRED, "server sent alert: certificate expired" },
    { FATAL_ERROR, 46, REASON_ALERT_CERT_UNKNOWN, "server sent alert: certificate unknown" },
    { FATAL_ERROR, 47, REASON_ALERT_ILLEGAL_PARAMETER, "server sent alert: illegal parameter" },
    { FATAL_ERROR, 48, REASON_ALERT_UNKNOWN_CA, "server sent alert: unknown CA" },
    { FATAL_ERROR, 70, REASON_ALERT_PROTOCOL_VERSION, "server sent alert: protocol version" },
    { FATAL_ERROR, 71, REASON_ALERT_INSUFFICIENT_SECURITY,
      "server sent alert: insufficient security" },
    { FATAL_ERROR, 80, REASON_ALERT_INTERNAL_ERROR, "server sent alert: internal error" },
    { FATAL_ERROR, 112, REASON_ALERT_UNRECOGNIZED_NAME, "server sent alert: unrecognized name" },
    { FATAL_ERROR, 116, REASON_ALERT_CERT_REQUIRED, "server sent alert: certificate required" },
    { FATAL_ERROR, 90, REASON_ALERT, "server sent alert 90" },
    { FATAL_ERROR, 0, REASON_ALERT, "server sent alert 0" },
    { FATAL_ERROR, -1, REASON_ALERT, "server sent a fatal alert" },
    { OUT_OF_ORDER_E, -1, REASON_TLS_ERROR, NULL },
    { -1, -1, REASON_TLS_ERROR, NULL },
};

START_TEST(tls_words)
{
    char buf[160], want[160];
    enum reason r = tls_reason(tls_words_cases[_i].err, tls_words_cases[_i].alert,
                               buf, sizeof buf);
    const char *got = buf[0] ? buf : reason_words(r);

    ck_assert_int_eq(r, tls_words_cases[_i].r);
    if (tls_words_cases[_i].words) {
        ck_assert_str_eq(got, tls_words_cases[_i].words);
    } else {
        /* Any other wolfSSL error: its code and the library's words. */
        snprintf(want, sizeof want, "TLS error %d: ", tls_words_cases[_i].err);
        ck_assert_msg(strncmp(got, want, strlen(want)) == 0, "got \"%s\"", got);
    }
}
END_TEST

/* ---- protocol floor ----------------------------------------------------- */

START_TEST(refuses_tls11)
{
    struct tlspair_opts o = defaults;
    struct tlspair pr;
    o.method = wolfTLSv1_1_server_method;
    tlspair_init(&pr, &o, "localhost", 0);
    ck_assert_int_eq(tlspair_handshake(&pr), TLSCONN_ERROR);
    ck_assert(!tlsconn_verify_failed(&pr.c));
    /* wolfSSL servers answer a version they cannot serve with
     * handshake_failure, OpenSSL ones with protocol_version. */
    ck_assert_ptr_nonnull(strstr(tlsconn_reason(&pr.c), "server sent alert"));
    tlspair_free(&pr);
}
END_TEST

START_TEST(tls_min_13_refuses_12)
{
    struct tlspair_opts o = defaults;
    struct tlspair pr;
    o.method = wolfTLSv1_2_server_method;
    o.tls_min = 13;
    tlspair_init(&pr, &o, "localhost", 0);
    ck_assert_int_eq(tlspair_handshake(&pr), TLSCONN_ERROR);
    tlspair_free(&pr);
}
END_TEST

START_TEST(tls12_works)
{
    struct tlspair_opts o = defaults;
    struct tlspair pr;
    o.method = wolfTLSv1_2_server_method;
    tlspair_init(&pr, &o, "localhost", 0);
    ck_assert_int_eq(tlspair_handshake(&pr), 0);
    ck_assert_str_eq(tlsconn_version(&pr.c), "TLSv1.2");
    tlspair_free(&pr);
}
END_TEST

START_TEST(prefers_tls13)
{
    struct tlspair pr;
    tlspair_init(&pr, &defaults, "localhost", 0);
    ck_assert_int_eq(tlspair_handshake(&pr), 0);
    ck_assert_str_eq(tlsconn_version(&pr.c), "TLSv1.3");
    tlspair_free(&pr);
}
END_TEST

/* A server with no certificate at all (anonymous DH) must not be accepted,
 * even though Debian's library compiles those suites in. */
START_TEST(refuses_anonymous_server)
{
    struct tlspair_opts o = defaults;
    struct tlspair pr;
    o.method = wolfTLSv1_2_server_method;
    o.server_suites = "ADH-AES128-SHA:ADH-AES256-GCM-SHA384";
    tlspair_init(&pr, &o, "localhost", 0);
    ck_assert_int_eq(tlspair_handshake(&pr), TLSCONN_ERROR);
    tlspair_free(&pr);
}
END_TEST

/* ---- data ---------------------------------------------------------------- */

static size_t srv_read_all(struct tlspair *pr, char *p, size_t cap)
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

static const size_t sizes[] = { 1, 100, 16384, 16385, 1 << 20 };

START_TEST(bytes_both_ways)
{
    size_t n = sizes[_i];
    struct tlspair pr;
    tlspair_init(&pr, &defaults, "localhost", 0);
    ck_assert_int_eq(tlspair_handshake(&pr), 0);

    /* client -> server */
    char *up = pattern(n, 1), *got = malloc(n + 1);
    ck_assert_int_eq(tlsconn_write(&pr.c, up, n), 0);
    tlspair_to_server(&pr);
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
    ck_assert_uint_eq(tlspair_client_read(&pr, got, n + 1, &end), n);
    ck_assert_int_eq(end, 0);
    ck_assert_int_eq(memcmp(down, got, n), 0);
    free(up);
    free(down);
    free(got);
    tlspair_free(&pr);
}
END_TEST

START_TEST(close_notify_is_clean)
{
    struct tlspair pr;
    char b[64];
    int end;
    tlspair_init(&pr, &defaults, "localhost", 0);
    ck_assert_int_eq(tlspair_handshake(&pr), 0);
    wolfSSL_write(pr.s, "bye", 3);
    wolfSSL_shutdown(pr.s);
    ck_assert_uint_eq(tlspair_client_read(&pr, b, sizeof b, &end), 3);
    ck_assert_int_eq(end, TLSCONN_CLOSED);
    tlspair_free(&pr);
}
END_TEST

START_TEST(eof_without_notify_is_truncation)
{
    struct tlspair pr;
    char b[64];
    int end;
    tlspair_init(&pr, &defaults, "localhost", 0);
    ck_assert_int_eq(tlspair_handshake(&pr), 0);
    wolfSSL_write(pr.s, "partial", 7);
    ck_assert_uint_eq(tlspair_client_read(&pr, b, sizeof b, &end), 7);
    ck_assert_int_eq(end, 0);
    tlsconn_eof(&pr.c);
    ck_assert_uint_eq(tlspair_client_read(&pr, b, sizeof b, &end), 0);
    ck_assert_int_eq(end, TLSCONN_TRUNCATED);
    tlspair_free(&pr);
}
END_TEST

/* The client's own close_notify reaches the server as a clean end. */
START_TEST(client_close_notify)
{
    struct tlspair pr;
    char b[16];
    tlspair_init(&pr, &defaults, "localhost", 0);
    ck_assert_int_eq(tlspair_handshake(&pr), 0);
    tlsconn_close_notify(&pr.c);
    tlspair_to_server(&pr);
    ck_assert_int_eq(wolfSSL_read(pr.s, b, sizeof b), 0);
    ck_assert_int_eq(wolfSSL_get_error(pr.s, 0), WOLFSSL_ERROR_ZERO_RETURN);
    tlspair_free(&pr);
}
END_TEST

/* A second connection offering the first one's session resumes it (no
 * certificate exchange); a session is only there after data was read. */
START_TEST(resumption)
{
    struct tlspair a, b;
    char buf[16];
    int end;

    tlspair_init(&a, &defaults, "localhost", 0);
    ck_assert_int_eq(tlspair_handshake(&a), 0);
    ck_assert(!tlsconn_resumed(&a.c));
    wolfSSL_write(a.s, "hi", 2);
    ck_assert_uint_eq(tlspair_client_read(&a, buf, sizeof buf, &end), 2);
    void *session = tlsconn_session(&a.c);
    ck_assert_ptr_nonnull(session);
    /* The ticket's lifetime, as the server gave it (at most 7 days,
     * RFC 8446 §4.6.1), counts down from now. */
    long left = tlsconn_session_lifetime(session);
    ck_assert_int_gt(left, 0);
    ck_assert_int_le(left, 7 * 24 * 3600);

    /* Same server context: it knows the ticket key. */
    tlspair_init_again(&b, &a, "localhost");
    tlsconn_resume(&b.c, session);
    ck_assert_int_eq(tlspair_handshake(&b), 0);
    ck_assert(tlsconn_resumed(&b.c));

    tlsconn_session_free(session);
    tlspair_free_again(&b);
    tlspair_free(&a);
}
END_TEST

/* Garbage instead of TLS (a plaintext memcached port answering). */
START_TEST(garbage_from_server)
{
    struct tlspair pr;
    static const char junk[] = "ERROR\r\nERROR\r\nERROR\r\n";
    tlspair_init(&pr, &defaults, "localhost", 0);
    ck_assert_int_eq(tlsconn_handshake(&pr.c), TLSCONN_AGAIN);
    tlsconn_feed(&pr.c, junk, sizeof junk - 1);
    ck_assert_int_eq(tlsconn_handshake(&pr.c), TLSCONN_ERROR);
    tlsconn_feed_end(&pr.c);
    ck_assert(!tlsconn_verify_failed(&pr.c));
    ck_assert_ptr_nonnull(strstr(tlsconn_reason(&pr.c), "TLS"));
    ck_assert_int_eq(tlsconn_reason_code(&pr.c), REASON_NOT_TLS);
    tlspair_free(&pr);
}
END_TEST

START_TEST(closed_mid_handshake)
{
    struct tlspair pr;
    tlspair_init(&pr, &defaults, "localhost", 0);
    ck_assert_int_eq(tlsconn_handshake(&pr.c), TLSCONN_AGAIN);
    tlsconn_eof(&pr.c);
    ck_assert_int_eq(tlsconn_handshake(&pr.c), TLSCONN_ERROR);
    ck_assert_str_eq(tlsconn_reason(&pr.c),
                     "server closed the connection during the handshake");
    ck_assert_int_eq(tlsconn_reason_code(&pr.c), REASON_HANDSHAKE_CLOSED);
    tlspair_free(&pr);
}
END_TEST

/* ---- context errors --------------------------------------------------------- */

START_TEST(bad_ca_names_its_source)
{
    struct config cfg;
    struct config_error err;
    struct run_error fault = { 0 };
    memset(&cfg, 0, sizeof cfg);
    memset(&err, 0, sizeof err);
    cfg.tls_min = 12;
    cfg.ca_pem = "-----BEGIN CERTIFICATE-----\nnot base64 at all\n"
                 "-----END CERTIFICATE-----\n";
    cfg.ca_source = "MEMTUNNEL_CA";
    ck_assert_ptr_null(tls_ctx_new(&cfg, &err, &fault));
    ck_assert_int_eq(err.status, EXIT_CONFIG);
    ck_assert_str_eq(err.name, "MEMTUNNEL_CA");
    ck_assert_ptr_null(strstr(err.msg, "not base64"));
    ck_assert_ptr_null(fault.at);       /* the setting's fault, not ours */

    memset(&err, 0, sizeof err);
    cfg.ca_pem = NULL;
    cfg.ca_file = "/nonexistent/ca.pem";
    cfg.ca_source = "--ca";
    ck_assert_ptr_null(tls_ctx_new(&cfg, &err, &fault));
    ck_assert_str_eq(err.name, "--ca");
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/ca.pem"));
}
END_TEST

/* ---- the client key must belong to the client certificate ---------------- */

static const struct {
    const char *cert, *key;
    int ok;
} key_cases[] = {
    { "client.crt", "client.key", 1 },            /* EC, PKCS#8 */
    { "client.crt", "client-nopub.key", 1 },      /* EC, SEC1 without the point */
    { "rsaclient.crt", "rsaclient.key", 1 },      /* RSA, PKCS#8 */
    { "rsaclient.crt", "rsaclient-trad.key", 1 }, /* RSA, PKCS#1 */
    { "client.crt", "server.key", 0 },            /* another EC key */
    { "rsaclient.crt", "rsaother.key", 0 },       /* another RSA key */
    { "rsaclient.crt", "client.key", 0 },         /* EC key, RSA certificate */
    { "client.crt", "rsaclient.key", 0 },         /* RSA key, EC certificate */
    { "client-chain.crt", "client.key", 1 },      /* leaf first, then its CA */
    { "client-chain.crt", "ca.key", 0 },          /* the CA's key is not the leaf's */
};

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "open %s", path);
    static char text[16384];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    return strdup(text);
}

/* Files and inline PEM (the MEMTUNNEL_CERT/KEY variables) alike. */
START_TEST(client_key_matches)
{
    struct config cfg;
    struct config_error err;
    struct run_error fault = { 0 };
    char cert[512], key[512];
    snprintf(cert, sizeof cert, "%s", tlspair_pki(key_cases[_i].cert));
    snprintf(key, sizeof key, "%s", tlspair_pki(key_cases[_i].key));
    for (int inline_pem = 0; inline_pem < 2; inline_pem++) {
        memset(&cfg, 0, sizeof cfg);
        memset(&err, 0, sizeof err);
        cfg.tls_min = 12;
        cfg.verify = CONFIG_VERIFY_NONE;
        char *certpem = NULL, *keypem = NULL;
        if (inline_pem) {
            cfg.cert_pem = certpem = slurp(cert);
            cfg.key_pem = keypem = slurp(key);
            cfg.cert_source = "MEMTUNNEL_CERT";
            cfg.key_source = "MEMTUNNEL_KEY";
        } else {
            cfg.cert_file = cert;
            cfg.key_file = key;
            cfg.cert_source = "--cert";
            cfg.key_source = "--key";
        }
        struct tls_ctx *t = tls_ctx_new(&cfg, &err, &fault);
        if (key_cases[_i].ok) {
            ck_assert_msg(t != NULL, "%s with %s (%s): %s", key_cases[_i].cert,
                          key_cases[_i].key, cfg.key_source, err.msg);
        } else {
            ck_assert_msg(t == NULL, "%s with %s (%s) must be refused",
                          key_cases[_i].cert, key_cases[_i].key, cfg.key_source);
            ck_assert_int_eq(err.status, EXIT_CONFIG);
            ck_assert_str_eq(err.name, cfg.key_source);
            ck_assert_ptr_nonnull(strstr(err.msg, "does not match"));
        }
        tls_ctx_free(t);
        free(certpem);
        free(keypem);
    }
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
    tcase_add_loop_test(tc, tls_words, 0,
                        sizeof tls_words_cases / sizeof tls_words_cases[0]);
    tcase_add_test(tc, refuses_tls11);
    tcase_add_test(tc, tls_min_13_refuses_12);
    tcase_add_test(tc, tls12_works);
    tcase_add_test(tc, prefers_tls13);
    tcase_add_test(tc, refuses_anonymous_server);
    tcase_add_test(tc, bad_ca_names_its_source);
    tcase_add_loop_test(tc, client_key_matches, 0,
                        sizeof key_cases / sizeof key_cases[0]);
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
