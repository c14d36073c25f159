/*
 * certinfo: the chain a real wolfSSL server presents to tlsconn, in one
 * process over memory (the pattern of test_tlsconn.c), read back as plain
 * data; and the expiry arithmetic as tables.
 *
 * Certificates come from tests/pki.sh, in $MEMTUNNEL_TEST_PKI.  pki.sh
 * issues the leaves with `-days N` (not-before = issue time, not-after =
 * not-before + N days) and renews the whole PKI once it is a day old, which
 * is what the date checks below rely on.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certinfo.h"
#include "suites.h"
#include "tlspair.h"

#define DAY 86400

/* A client that trusts ca.crt, against a server presenting CERT-chain.crt. */
static void pair_init(struct tlspair *pr, const char *cert, enum config_verify v)
{
    struct tlspair_opts o = { v, 12, cert, 1, NULL, NULL };
    tlspair_init(pr, &o, "localhost", 0);
}

/* The chain CERT's server presents, after a successful handshake. */
static int chain_of(const char *cert, enum config_verify v,
                    struct certinfo *chain, size_t max)
{
    struct tlspair pr;
    pair_init(&pr, cert, v);
    ck_assert_msg(tlspair_handshake(&pr) == 0, "handshake with %s: %s", cert,
                  tlsconn_reason(&pr.c));
    int n = certinfo_peer_chain(&pr.c, chain, max);
    tlspair_free(&pr);
    return n;
}

static int has_san(const struct certinfo *ci, enum certinfo_san_type type,
                   const char *name)
{
    for (size_t i = 0; i < ci->nsans; i++)
        if (ci->sans[i].type == type && strcmp(ci->sans[i].name, name) == 0)
            return 1;
    return 0;
}

/* Issued `days` days long by pki.sh, within the last two days. */
static void assert_fresh(const struct certinfo *ci, long days, time_t now)
{
    ck_assert_int_eq((long long)(ci->not_after - ci->not_before),
                     (long long)days * DAY);
    ck_assert_int_le((long long)ci->not_before, (long long)now + 60);
    ck_assert_int_ge((long long)ci->not_before, (long long)now - 2 * DAY);
}

/* ---- chains ----------------------------------------------------------- */

START_TEST(server_chain)
{
    struct certinfo chain[CERTINFO_CHAIN_MAX];
    time_t now = time(NULL);

    ck_assert_int_eq(chain_of("server", CONFIG_VERIFY_FULL, chain,
                              CERTINFO_CHAIN_MAX), 2);
    ck_assert_str_eq(chain[0].subject, "/O=memtunnel tests/CN=localhost");
    ck_assert_str_eq(chain[0].issuer, "/O=memtunnel tests/CN=memtunnel test CA");
    ck_assert_uint_eq(chain[0].nsans, 3);
    ck_assert_uint_eq(chain[0].sans_total, 3);
    /* In certificate order, whatever order the library keeps them in. */
    ck_assert_int_eq(chain[0].sans[0].type, CERTINFO_SAN_DNS);
    ck_assert_str_eq(chain[0].sans[0].name, "localhost");
    ck_assert_int_eq(chain[0].sans[1].type, CERTINFO_SAN_IP);
    ck_assert_str_eq(chain[0].sans[1].name, "127.0.0.1");
    ck_assert_int_eq(chain[0].sans[2].type, CERTINFO_SAN_IP);
    ck_assert_str_eq(chain[0].sans[2].name, "::1");
    ck_assert(!has_san(&chain[0], CERTINFO_SAN_DNS, "127.0.0.1"));
    assert_fresh(&chain[0], 825, now);

    /* The CA is self-issued and has no SANs. */
    ck_assert_str_eq(chain[1].subject, "/O=memtunnel tests/CN=memtunnel test CA");
    ck_assert_str_eq(chain[1].issuer, chain[1].subject);
    ck_assert_uint_eq(chain[1].nsans, 0);
    ck_assert_int_eq((long long)(chain[1].not_after - chain[1].not_before),
                     3650LL * DAY);
    ck_assert_int_eq(certinfo_first_expiring(chain, 2, now, 14), -1);
}
END_TEST

START_TEST(max_limits_the_chain)
{
    struct certinfo chain[1];
    ck_assert_int_eq(chain_of("server", CONFIG_VERIFY_FULL, chain, 1), 1);
    ck_assert_str_eq(chain[0].subject, "/O=memtunnel tests/CN=localhost");
}
END_TEST

START_TEST(soon3_warns)
{
    struct certinfo chain[CERTINFO_CHAIN_MAX];
    time_t now = time(NULL);

    ck_assert_int_eq(chain_of("soon3", CONFIG_VERIFY_FULL, chain,
                              CERTINFO_CHAIN_MAX), 2);
    ck_assert_str_eq(chain[0].subject, "/O=memtunnel tests/CN=localhost");
    ck_assert_uint_eq(chain[0].nsans, 2);
    ck_assert(has_san(&chain[0], CERTINFO_SAN_DNS, "localhost"));
    ck_assert(has_san(&chain[0], CERTINFO_SAN_IP, "127.0.0.1"));
    assert_fresh(&chain[0], 3, now);
    long left = certinfo_days_left(chain[0].not_after, now);
    ck_assert_msg(left >= 1 && left <= 3, "soon3: %ld days left", left);
    ck_assert_int_eq(certinfo_first_expiring(chain, 2, now, 14), 0);
    ck_assert_int_eq(certinfo_first_expiring(chain, 2, now, 3), 0);
    ck_assert_int_eq(certinfo_first_expiring(chain, 2, now, 0), -1);
}
END_TEST

START_TEST(soon30_does_not_warn)
{
    struct certinfo chain[CERTINFO_CHAIN_MAX];
    time_t now = time(NULL);

    ck_assert_int_eq(chain_of("soon30", CONFIG_VERIFY_FULL, chain,
                              CERTINFO_CHAIN_MAX), 2);
    assert_fresh(&chain[0], 30, now);
    long left = certinfo_days_left(chain[0].not_after, now);
    ck_assert_msg(left >= 28 && left <= 30, "soon30: %ld days left", left);
    ck_assert_int_eq(certinfo_first_expiring(chain, 2, now, 14), -1);
    ck_assert_int_eq(certinfo_first_expiring(chain, 2, now, 31), 0);
}
END_TEST

/* Only --verify none lets an expired chain through; its dates still show. */
START_TEST(expired_dates)
{
    struct certinfo chain[CERTINFO_CHAIN_MAX];
    time_t now = time(NULL);

    ck_assert_int_eq(chain_of("expired", CONFIG_VERIFY_NONE, chain,
                              CERTINFO_CHAIN_MAX), 2);
    /* pki.sh: valid from 30 days ago to 2 days ago, issue time ± renewal. */
    ck_assert_int_eq((long long)(chain[0].not_after - chain[0].not_before),
                     28LL * DAY);
    long left = certinfo_days_left(chain[0].not_after, now);
    ck_assert_msg(left <= -2 && left >= -4, "expired: %ld days left", left);
    ck_assert_int_eq(certinfo_first_expiring(chain, 2, now, 0), 0);
}
END_TEST

/* A refused chain is still described: that is what a diagnosis shows. */
static const struct {
    const char *cert, *reason, *leaf_subject, *leaf_issuer;
    int n;
} refused_cases[] = {
    { "wrong", "name mismatch", "/O=memtunnel tests/CN=wrong.example",
      "/O=memtunnel tests/CN=memtunnel test CA", 2 },
    { "expired", "certificate expired", "/O=memtunnel tests/CN=localhost",
      "/O=memtunnel tests/CN=memtunnel test CA", 2 },
    { "unknownca", "unknown issuer", "/O=memtunnel tests/CN=localhost",
      "/O=memtunnel tests/CN=memtunnel unrelated CA", 2 },
    /* Without the OpenSSL layer wolfSSL says "unknown issuer"; tlsconn
     * names it from the chain (one certificate, its own issuer). */
    { "selfsigned", "self-signed certificate", "/O=memtunnel tests/CN=localhost",
      "/O=memtunnel tests/CN=localhost", 1 },
};

START_TEST(refused_chain)
{
    struct certinfo chain[CERTINFO_CHAIN_MAX];
    struct tlspair pr;

    pair_init(&pr, refused_cases[_i].cert, CONFIG_VERIFY_FULL);
    ck_assert_int_eq(tlspair_handshake(&pr), TLSCONN_ERROR);
    ck_assert(tlsconn_verify_failed(&pr.c));
    if (refused_cases[_i].reason)
        ck_assert_str_eq(tlsconn_reason(&pr.c), refused_cases[_i].reason);
    ck_assert_int_eq(certinfo_peer_chain(&pr.c, chain, CERTINFO_CHAIN_MAX),
                     refused_cases[_i].n);
    ck_assert_str_eq(chain[0].subject, refused_cases[_i].leaf_subject);
    ck_assert_str_eq(chain[0].issuer, refused_cases[_i].leaf_issuer);
    ck_assert_uint_ge(chain[0].nsans, 1);
    tlspair_free(&pr);
}
END_TEST

START_TEST(no_handshake_no_chain)
{
    struct certinfo chain[2];
    struct tlspair pr;
    pair_init(&pr, "server", CONFIG_VERIFY_FULL);
    ck_assert_int_eq(certinfo_peer_chain(&pr.c, chain, 2), -ENOTSUP);
    tlspair_free(&pr);
}
END_TEST

/* The leaf's DER, cut short or spoilt, is refused rather than half read. */
START_TEST(bad_der)
{
    struct tlspair pr;
    struct certinfo ci;
    static const unsigned char junk[] = "ERROR\r\n";

    pair_init(&pr, "server", CONFIG_VERIFY_FULL);
    ck_assert_int_eq(tlspair_handshake(&pr), 0);
    WOLFSSL_X509_CHAIN *c = wolfSSL_get_peer_chain(pr.c.ssl);
    ck_assert_ptr_nonnull(c);
    const unsigned char *der = wolfSSL_get_chain_cert(c, 0);
    int len = wolfSSL_get_chain_length(c, 0);
    ck_assert_int_gt(len, 100);

    ck_assert_int_eq(certinfo_parse_der(der, (size_t)len, &ci), 0);
    ck_assert_str_eq(ci.subject, "/O=memtunnel tests/CN=localhost");
    ck_assert_int_eq(certinfo_parse_der(der, (size_t)len / 2, &ci), -EBADMSG);
    ck_assert_int_eq(certinfo_parse_der(junk, sizeof junk - 1, &ci), -EBADMSG);
    ck_assert_int_eq(certinfo_parse_der(der, 0, &ci), -EBADMSG);
    tlspair_free(&pr);
}
END_TEST

/* ---- arithmetic ------------------------------------------------------- */

static const struct {
    long long after;             /* not_after - now, seconds */
    long days;
} days_cases[] = {
    { 3LL * DAY, 3 },
    { 3LL * DAY - 1, 2 },
    { DAY, 1 },
    { DAY - 1, 0 },
    { 1, 0 },
    { 0, 0 },
    { -1, -1 },
    { -DAY + 1, -1 },
    { -DAY, -1 },
    { -DAY - 1, -2 },
    { 825LL * DAY + 5, 825 },
    { -3650LL * DAY, -3650 },
};

START_TEST(days_left)
{
    const time_t now = 1795392000;      /* 2026-11-23T00:00:00Z */
    ck_assert_int_eq(certinfo_days_left((time_t)(now + days_cases[_i].after),
                                        now), days_cases[_i].days);
}
END_TEST

static const struct {
    long long after[3];          /* not_after - now of each certificate */
    size_t n;
    unsigned warn_days;
    int want;
} expiring_cases[] = {
    { { 100LL * DAY, 3000LL * DAY, 0 }, 2, 14, -1 },
    { { 3LL * DAY, 3000LL * DAY, 0 }, 2, 14, 0 },
    { { 100LL * DAY, 5LL * DAY, 0 }, 2, 14, 1 },
    /* The one that expires first, not the first one listed. */
    { { 10LL * DAY, 100LL * DAY, 2LL * DAY }, 3, 14, 2 },
    { { 10LL * DAY, 100LL * DAY, 2LL * DAY }, 3, 1, -1 },
    /* The window is open at its end: exactly warn_days left is fine. */
    { { 14LL * DAY, 0, 0 }, 1, 14, -1 },
    { { 14LL * DAY - 1, 0, 0 }, 1, 14, 0 },
    /* Already expired: always reported, even with warnings at 0 days. */
    { { -1, 100LL * DAY, 0 }, 2, 0, 0 },
    { { 1, 100LL * DAY, 0 }, 2, 0, -1 },
    { { 0, 0, 0 }, 0, 14, -1 },
};

START_TEST(first_expiring)
{
    const time_t now = 1795392000;
    struct certinfo chain[3];
    memset(chain, 0, sizeof chain);
    for (size_t i = 0; i < 3; i++)
        chain[i].not_after = (time_t)(now + expiring_cases[_i].after[i]);
    ck_assert_int_eq(certinfo_first_expiring(chain, expiring_cases[_i].n, now,
                                             expiring_cases[_i].warn_days),
                     expiring_cases[_i].want);
}
END_TEST

START_TEST(date_format)
{
    char b[32];
    ck_assert_str_eq(certinfo_date(1795392000 + 15 * 3600 + 55 * 60 + 41, b,
                                   sizeof b), "2026-11-23T15:55:41Z");
    ck_assert_str_eq(certinfo_date(0, b, sizeof b), "1970-01-01T00:00:00Z");
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

Suite *certinfo_suite(void)
{
    Suite *s = suite_create("certinfo");
    TCase *tc = tcase_create("chain");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, server_chain);
    tcase_add_test(tc, max_limits_the_chain);
    tcase_add_test(tc, soon3_warns);
    tcase_add_test(tc, soon30_does_not_warn);
    tcase_add_test(tc, expired_dates);
    tcase_add_loop_test(tc, refused_chain, 0,
                        sizeof refused_cases / sizeof refused_cases[0]);
    tcase_add_test(tc, no_handshake_no_chain);
    tcase_add_test(tc, bad_der);
    suite_add_tcase(s, tc);

    tc = tcase_create("expiry");
    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, days_left, 0, sizeof days_cases / sizeof days_cases[0]);
    tcase_add_loop_test(tc, first_expiring, 0,
                        sizeof expiring_cases / sizeof expiring_cases[0]);
    tcase_add_test(tc, date_format);
    suite_add_tcase(s, tc);
    return s;
}
