/*
 * advice: `memtunnel check`'s advice is chosen by step and reason alone
 * (the words of the reason do not matter: each case below gives words that
 * would have fooled a match on them), every step has advice, and values
 * outside the enums are safe.  The full texts are checked byte for byte by
 * integration scenarios 79 and 80.
 */
#include <string.h>

#include "advice.h"
#include "suites.h"

/* A wrong-name leaf, its CA, and an expired leaf. */
static struct certinfo chain[2];
static const time_t now = 1767225600;   /* 2026-01-01T00:00:00Z */

static void base(struct advice_facts *f)
{
    memset(f, 0, sizeof *f);
    f->reason_text = "words that mean nothing here: closed the connection "
                     "version suite unrecognized name handshake failure";
    f->upstream = "mc.example:11211";
    f->host = "mc.example";
    f->port = 11211;
    f->tls_name = "mc.example";
    f->timeout_ms = 2000;
    f->chain = chain;
    f->nchain = 2;
    f->now = now;
    f->user_var = "MEMCACHIER_USERNAME";
    f->pass_var = "MEMCACHIER_PASSWORD";
    f->auth = -1;
    f->mechs = "";
    f->mc_error = "";

    memset(chain, 0, sizeof chain);
    strcpy(chain[0].subject, "/CN=leaf");
    strcpy(chain[0].issuer, "/CN=Some CA");
    chain[0].sans[0].type = CERTINFO_SAN_DNS;
    strcpy(chain[0].sans[0].name, "other.example");
    chain[0].nsans = chain[0].sans_total = 1;
    chain[0].not_before = now - 86400 * 400;
    chain[0].not_after = now - 86400 * 12;
    strcpy(chain[1].subject, "/CN=Some CA");
    strcpy(chain[1].issuer, "/CN=Some Root");
    chain[1].not_before = now - 86400 * 4000;
    chain[1].not_after = now + 86400 * 4000;
}

enum tweak { NONE, PLAINTEXT, SILENT, RECEIVED, NO_CHAIN, NOT_YET, CREDS,
             WITHHELD, NO_ANSWER, REFUSED_LOGIN, VERIFY_NONE, SASL_OFF,
             AUTH_MODE };

static const struct {
    enum advice_step step;
    enum reason why;
    enum tweak tweak;
    size_t lines;
    const char *first;          /* how the first line begins */
} cases[] = {
    { ADVICE_STEP_NONE, REASON_OTHER, NONE, 0, NULL },
    { ADVICE_STEP_NONE, REASON_OTHER, VERIFY_NONE, 1, "--verify none: nothing" },
    { ADVICE_STEP_NONE, REASON_OTHER, SASL_OFF, 1, "The server does not ask for a SASL" },
    { ADVICE_STEP_NONE, REASON_OTHER, WITHHELD, 1, "No login was tried although MEMCACHIER_USERNAME" },
    { ADVICE_STEP_RESOLVE, REASON_HOST_NOT_FOUND, NONE, 1, "Check the host name \"mc.example\"" },
    { ADVICE_STEP_RESOLVE, REASON_OTHER, NONE, 1, "Check the host name" },
    { ADVICE_STEP_CONNECT, REASON_CONN_REFUSED, NONE, 1, "Nothing accepts connections on port 11211" },
    { ADVICE_STEP_CONNECT, REASON_CONNECT_TIMEOUT, NONE, 1, "No answer within 2000 ms" },
    { ADVICE_STEP_CONNECT, REASON_CONN_TIMED_OUT, NONE, 1, "No answer within 2000 ms" },
    { ADVICE_STEP_CONNECT, REASON_HOST_UNREACHABLE, NONE, 1, "Check the host and port" },
    { ADVICE_STEP_TLS, REASON_NOT_TLS, PLAINTEXT, 2, "mc.example:11211 answered the TLS handshake with plaintext (\"ERROR\")" },
    { ADVICE_STEP_TLS, REASON_TIMED_OUT, SILENT, 2, "The server accepted the connection but sent nothing back within 2000 ms" },
    { ADVICE_STEP_TLS, REASON_CLOSED, NONE, 2, "The server hung up" },
    { ADVICE_STEP_TLS, REASON_TRUNCATED, NONE, 2, "The server hung up" },
    { ADVICE_STEP_TLS, REASON_HANDSHAKE_CLOSED, NONE, 2, "The server hung up" },
    { ADVICE_STEP_TLS, REASON_HANDSHAKE_CLOSED, RECEIVED, 1, "The TLS handshake failed." },
    { ADVICE_STEP_TLS, REASON_ALERT_UNRECOGNIZED_NAME, NONE, 1, "The server does not know the name \"mc.example\"" },
    { ADVICE_STEP_TLS, REASON_ALERT_CERT_REQUIRED, NONE, 1, "The server may require a client certificate" },
    { ADVICE_STEP_TLS, REASON_ALERT_HANDSHAKE_FAILURE, NONE, 1, "The server may require a client certificate" },
    { ADVICE_STEP_TLS, REASON_VERSION, NONE, 1, "The server offers no TLS version" },
    { ADVICE_STEP_TLS, REASON_ALERT_PROTOCOL_VERSION, NONE, 1, "The server offers no TLS version" },
    { ADVICE_STEP_TLS, REASON_NO_SHARED_SUITE, NONE, 1, "The server offers no TLS version" },
    { ADVICE_STEP_TLS, REASON_TLS_ERROR, NONE, 1, "The TLS handshake failed." },
    { ADVICE_STEP_TLS, REASON_ALERT, NONE, 1, "The TLS handshake failed." },
    { ADVICE_STEP_VERIFY, REASON_NAME_MISMATCH, NONE, 2, "The certificate is for DNS:other.example, not \"mc.example\"." },
    { ADVICE_STEP_VERIFY, REASON_EXPIRED, NONE, 1, "The certificate /CN=leaf expired on 2025-12-20T00:00:00Z, 12 days ago." },
    { ADVICE_STEP_VERIFY, REASON_EXPIRED, NO_CHAIN, 1, "The server's certificate was refused (words" },
    { ADVICE_STEP_VERIFY, REASON_NOT_YET_VALID, NOT_YET, 1, "The certificate is valid from 2026-01-04T00:00:00Z, but this machine's clock says 2026-01-01T00:00:00Z." },
    { ADVICE_STEP_VERIFY, REASON_SELF_SIGNED, NONE, 1, "The server presents a self-signed certificate (/CN=leaf)" },
    { ADVICE_STEP_VERIFY, REASON_UNKNOWN_ISSUER, NONE, 1, "The certificate chains to /CN=Some Root, a CA memtunnel does not trust (it trusts the system's CA store)." },
    { ADVICE_STEP_VERIFY, REASON_VERIFY_FAILED, NONE, 1, "The server's certificate was refused" },
    { ADVICE_STEP_MEMCACHE, REASON_CLOSED, NO_ANSWER, 1, "The server did not answer the text command `version`. A memcached with SASL answers only the binary protocol, after a login: set MEMCACHIER_USERNAME and MEMCACHIER_PASSWORD" },
    { ADVICE_STEP_MEMCACHE, REASON_CLOSED, CREDS, 1, "TLS works, but the server did not answer like memcached." },
    { ADVICE_STEP_MEMCACHE, REASON_OTHER, NONE, 1, "TLS works, but" },
    { ADVICE_STEP_AUTH, REASON_OTHER, REFUSED_LOGIN, 1, "The server refused the login with the credentials in MEMCACHIER_USERNAME and MEMCACHIER_PASSWORD" },
    { ADVICE_STEP_AUTH, REASON_OTHER, CREDS, 1, "The server refused to list its SASL mechanisms." },
    /* --auth: check did the tunnel's login. */
    { ADVICE_STEP_AUTH, REASON_AUTH_REFUSED, AUTH_MODE, 1, "Authentication failed: the server refused the login of --auth memcached with MEMCACHIER_USERNAME and MEMCACHIER_PASSWORD (the password is not shown)." },
    { ADVICE_STEP_AUTH, REASON_AUTH_TIMEOUT, AUTH_MODE, 1, "The login of --auth memcached failed (no answer to the authentication in time): --auth must match the server" },
    { ADVICE_STEP_AUTH, REASON_AUTH_UNSUPPORTED, AUTH_MODE, 1, "The login of --auth memcached failed (the server does not take this authentication)" },
    { ADVICE_STEP_RESUME, REASON_CONN_REFUSED, NONE, 1, "The first connection worked, the next one did not" },
    /* A reason outside the enum gets its step's general advice. */
    { ADVICE_STEP_TLS, (enum reason)9999, NONE, 1, "The TLS handshake failed." },
    { ADVICE_STEP_VERIFY, (enum reason)-1, NONE, 1, "The server's certificate was refused" },
    { ADVICE_STEP_CONNECT, REASON_COUNT, NONE, 1, "Check the host and port" },
    /* A step outside the enum gets none. */
    { ADVICE_STEP_COUNT, REASON_CONN_REFUSED, NONE, 0, NULL },
    { (enum advice_step)-1, REASON_NAME_MISMATCH, NONE, 0, NULL },
};

static void apply(struct advice_facts *f, enum tweak t)
{
    static const unsigned char error[] = "ERROR\r\n";

    switch (t) {
    case PLAINTEXT:
        f->head = error;
        f->nhead = f->received = sizeof error - 1;
        break;
    case SILENT:
        f->timed_out = 1;
        break;
    case RECEIVED:
        f->received = 7;
        break;
    case NO_CHAIN:
        f->nchain = 0;
        break;
    case NOT_YET:
        chain[0].not_before = now + 86400 * 3;
        break;
    case CREDS:
        f->have_creds = 1;
        break;
    case WITHHELD:
        f->withheld = 1;
        break;
    case NO_ANSWER:
        f->mc_no_answer = 1;
        break;
    case REFUSED_LOGIN:
        f->have_creds = 1;
        f->auth = 0;
        f->mechs = "PLAIN";
        f->mc_error = "Auth failure";
        break;
    case VERIFY_NONE:
        f->verify_none = 1;
        break;
    case SASL_OFF:
        f->have_creds = 1;
        f->sasl_off = 1;
        break;
    case AUTH_MODE:
        f->have_creds = 1;
        f->auth = 0;
        f->auth_mode = "memcached";
        break;
    case NONE:
        break;
    }
}

START_TEST(by_step_and_reason)
{
    struct advice_facts f;
    char lines[4][ADVICE_LEN];

    base(&f);
    f.step = cases[_i].step;
    f.why = cases[_i].why;
    apply(&f, cases[_i].tweak);
    memset(lines, 0, sizeof lines);
    size_t n = advice_explain(&f, lines, 4);
    ck_assert_uint_eq(n, cases[_i].lines);
    if (cases[_i].first)
        ck_assert_msg(strncmp(lines[0], cases[_i].first, strlen(cases[_i].first)) == 0,
                      "case %d: want \"%s...\", got \"%s\"", _i, cases[_i].first,
                      lines[0]);
    for (size_t k = 0; k < n; k++)
        ck_assert(strlen(lines[k]) > 0 && strlen(lines[k]) < ADVICE_LEN);
}
END_TEST

/* Never more lines than asked for, and none when asked for none. */
START_TEST(max_lines)
{
    struct advice_facts f;
    char lines[1][ADVICE_LEN];

    base(&f);
    f.step = ADVICE_STEP_VERIFY;
    f.why = REASON_NAME_MISMATCH;
    f.withheld = 1;
    ck_assert_uint_eq(advice_explain(&f, lines, 1), 1);
    ck_assert_uint_eq(advice_explain(&f, lines, 0), 0);
}
END_TEST

/* The name check's advice spells out what --verify chain costs. */
START_TEST(name_mismatch_risk)
{
    struct advice_facts f;
    char lines[4][ADVICE_LEN];

    base(&f);
    f.step = ADVICE_STEP_VERIFY;
    f.why = REASON_NAME_MISMATCH;
    f.tls_name = "10.0.0.1";
    f.tls_name_is_ip = 1;
    ck_assert_uint_eq(advice_explain(&f, lines, 4), 2);
    ck_assert_ptr_nonnull(strstr(lines[0], "(an address matches only an IP name"));
    ck_assert_ptr_nonnull(strstr(lines[1], "--verify chain (MEMTUNNEL_VERIFY=chain) would skip"));
    /* No names at all: the CN is never consulted. */
    chain[0].nsans = chain[0].sans_total = 0;
    ck_assert_uint_eq(advice_explain(&f, lines, 4), 2);
    ck_assert_ptr_nonnull(strstr(lines[0], "has no DNS or IP names"));
}
END_TEST

static const struct {
    enum advice_step step;
    const char *name;
} names[] = {
    { ADVICE_STEP_NONE, NULL },
    { ADVICE_STEP_RESOLVE, "resolve" },
    { ADVICE_STEP_CONNECT, "connect" },
    { ADVICE_STEP_TLS, "tls" },
    { ADVICE_STEP_VERIFY, "verify" },
    { ADVICE_STEP_MEMCACHE, "memcache" },
    { ADVICE_STEP_AUTH, "auth" },
    { ADVICE_STEP_RESUME, "resume" },
    { ADVICE_STEP_COUNT, NULL },
    { (enum advice_step)-1, NULL },
    { (enum advice_step)77, NULL },
};

START_TEST(step_names)
{
    const char *got = advice_step_name(names[_i].step);

    if (names[_i].name == NULL)
        ck_assert_ptr_null(got);
    else
        ck_assert_str_eq(got, names[_i].name);
}
END_TEST

Suite *advice_suite(void)
{
    Suite *s = suite_create("advice");
    TCase *tc = tcase_create("check");

    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, by_step_and_reason, 0, sizeof cases / sizeof cases[0]);
    tcase_add_test(tc, max_lines);
    tcase_add_test(tc, name_mismatch_risk);
    tcase_add_loop_test(tc, step_names, 0, sizeof names / sizeof names[0]);
    suite_add_tcase(s, tc);
    return s;
}
