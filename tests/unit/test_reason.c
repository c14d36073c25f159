/*
 * reason: the table of reasons.  Every reason has words of its own; the
 * words and hints that the log has always printed stay what they were
 * (the tables below are the log's words before the enum, kept here so
 * that a reworded row fails a test rather than a user's grep); libuv
 * errors map as conn_words mapped them; values outside the enum are safe.
 */
#include <errno.h>
#include <netdb.h>
#include <string.h>

#include <uv.h>

#include "advice.h"
#include "reason.h"
#include "suites.h"

/* Out-of-range values, as a corrupted or future enum might hold. */
static const int bogus[] = { -1, REASON_COUNT, REASON_COUNT + 1, 9999, -9999 };

START_TEST(every_reason_has_words)
{
    enum reason r = (enum reason)_i;
    const char *w = reason_words(r);

    ck_assert_ptr_nonnull(w);
    ck_assert_msg(w[0] != '\0', "reason %d has empty words", _i);
    ck_assert_ptr_eq(reason_info(r)->words, w);
    /* Words of its own: the log tells reasons apart by them. */
    for (int k = 0; k < REASON_COUNT; k++)
        if (k != _i)
            ck_assert_msg(strcmp(reason_words((enum reason)k), w) != 0,
                          "reasons %d and %d share the words \"%s\"", k, _i, w);
    /* A hint, when there is one, is a phrase, not an empty string. */
    if (advice_hint(r) != NULL)
        ck_assert(advice_hint(r)[0] != '\0');
}
END_TEST

/* What conn.c's hint_for said, for the words it matched. */
#define AUTH_MATCH "--auth must match the server: memcachier (MemCachier), " \
    "memcached (memcached -Y), sasl (SASL: Memcached Cloud, memcached -S)"

static const struct {
    enum reason r;
    const char *words, *hint;
} hints[] = {
    { REASON_NAME_MISMATCH, "name mismatch",
      "the certificate does not name this host: set MEMTUNNEL_SNI to a name "
      "it has, or MEMTUNNEL_VERIFY=chain (which trusts any certificate of "
      "the CA); memtunnel check shows the names" },
    { REASON_UNKNOWN_ISSUER, "unknown issuer",
      "the CA is not trusted: give it with MEMTUNNEL_CA (PEM text) or --ca FILE" },
    { REASON_SELF_SIGNED, "self-signed certificate",
      "to trust this certificate, give it as MEMTUNNEL_CA" },
    { REASON_EXPIRED, "certificate expired",
      "the provider must renew the certificate" },
    { REASON_NOT_YET_VALID, "certificate not yet valid",
      "check this machine's clock" },
    { REASON_NOT_TLS, "server did not speak TLS (plaintext port?)",
      "the provider may serve TLS on another port: set MEMTUNNEL_TLS_PORT" },
    { REASON_CONN_REFUSED, "connection refused",
      "is the upstream up, and the port right? memtunnel check tests every "
      "upstream" },
    { REASON_HOST_NOT_FOUND, "host name not found",
      "check the server list; the name is looked up again on the next "
      "connection" },
    { REASON_AUTH_REFUSED, "the server refused the credentials",
      "check the pair memtunnel sends (MEMTUNNEL_USERNAME and "
      "MEMTUNNEL_PASSWORD, else the pair beside the node's variable) and "
      "that --auth names the provider's scheme; memtunnel check --auth "
      "tries it" },
    { REASON_AUTH_UNSUPPORTED, "the server does not take this authentication",
      AUTH_MATCH },
    { REASON_AUTH_UNEXPECTED, "unexpected answer to the authentication",
      AUTH_MATCH },
    { REASON_AUTH_TIMEOUT, "no answer to the authentication in time",
      "the server took longer than --connect-timeout; check that --auth "
      "matches the server" },
    { REASON_AUTH_CLOSED,
      "the server closed the connection during the authentication",
      AUTH_MATCH },
};

START_TEST(hints_as_before)
{
    ck_assert_str_eq(reason_words(hints[_i].r), hints[_i].words);
    ck_assert_ptr_nonnull(advice_hint(hints[_i].r));
    ck_assert_str_eq(advice_hint(hints[_i].r), hints[_i].hint);
}
END_TEST

/* Every other reason had no hint= (timeouts say it in their words). */
START_TEST(no_other_hints)
{
    for (size_t k = 0; k < sizeof hints / sizeof hints[0]; k++)
        if ((int)hints[k].r == _i)
            return;
    ck_assert_msg(advice_hint((enum reason)_i) == NULL,
                  "reason %d (\"%s\") has a hint", _i,
                  reason_words((enum reason)_i));
}
END_TEST

/* The words the log has always used for the connection's own reasons. */
static const struct {
    enum reason r;
    const char *words;
} words[] = {
    { REASON_CONNECT_TIMEOUT, "connect timeout (raise --connect-timeout if the "
      "upstream is far away)" },
    { REASON_HANDSHAKE_TIMEOUT, "handshake timeout (is this a TLS port? see "
      "--tls-port)" },
    { REASON_IDLE_TIMEOUT, "no traffic for --idle-timeout" },
    { REASON_NO_ADDRESS, "no address" },
    { REASON_TLS_SESSION, "cannot create a TLS session: out of file "
      "descriptors or memory" },
    { REASON_UNFINISHED, "upstream did not finish after the client closed" },
    { REASON_SPARE_STALE, "unused for too long" },
    { REASON_SPARE_CLOSED, "the server closed an idle connection" },
    { REASON_SPARE_UNASKED, "the server sent data unasked" },
    { REASON_STOPPING, "memtunnel is stopping" },
    { REASON_DONE, "done" },
    { REASON_CLOSED, "the server closed the connection" },
    { REASON_TRUNCATED, "the server closed the connection without a TLS "
      "close_notify" },
    { REASON_TIMED_OUT, "timed out (--connect-timeout)" },
    { REASON_MALFORMED_REPLY, "malformed reply" },
    { REASON_OUT_OF_MEMORY, "out of memory" },
    { REASON_TLS_ERROR, "unknown TLS error" },
};

START_TEST(words_as_before)
{
    ck_assert_str_eq(reason_words(words[_i].r), words[_i].words);
}
END_TEST

/* conn_words: libuv's codes and the words the log gave them. */
static const struct {
    int uv;
    enum reason r;
    const char *words;
} uv_cases[] = {
    { UV_ECONNREFUSED, REASON_CONN_REFUSED, "connection refused" },
    { UV_ETIMEDOUT, REASON_CONN_TIMED_OUT, "connection timed out" },
    { UV_EHOSTUNREACH, REASON_HOST_UNREACHABLE, "host unreachable" },
    { UV_ENETUNREACH, REASON_NET_UNREACHABLE, "network unreachable" },
    { UV_ECONNRESET, REASON_CONN_RESET, "connection reset by peer" },
    { UV_EPIPE, REASON_BROKEN_PIPE, "broken pipe" },
    { UV_EAI_NONAME, REASON_HOST_NOT_FOUND, "host name not found" },
    { UV_EAI_AGAIN, REASON_DNS_TEMPORARY, "temporary DNS failure" },
    /* The rest in libuv's words. */
    { UV_EINVAL, REASON_OTHER, NULL },
    { UV_EMFILE, REASON_OTHER, NULL },
    { UV_EOF, REASON_OTHER, NULL },
    { UV_ECANCELED, REASON_OTHER, NULL },
    { 0, REASON_OTHER, NULL },
    { 1, REASON_OTHER, NULL },
};

START_TEST(from_uv)
{
    int e = uv_cases[_i].uv;

    ck_assert_int_eq(reason_from_uv(e), uv_cases[_i].r);
    if (e < 0)
        ck_assert_str_eq(reason_uv_words(e), uv_cases[_i].words
                         ? uv_cases[_i].words : uv_strerror(e));
}
END_TEST

START_TEST(from_errno_and_gai)
{
    ck_assert_int_eq(reason_from_errno(ECONNREFUSED), REASON_CONN_REFUSED);
    ck_assert_int_eq(reason_from_errno(ETIMEDOUT), REASON_CONN_TIMED_OUT);
    ck_assert_int_eq(reason_from_errno(ECONNRESET), REASON_CONN_RESET);
    ck_assert_int_eq(reason_from_errno(EHOSTUNREACH), REASON_HOST_UNREACHABLE);
    ck_assert_int_eq(reason_from_errno(EACCES), REASON_OTHER);
    ck_assert_int_eq(reason_from_errno(0), REASON_OTHER);
    ck_assert_int_eq(reason_from_errno(-ECONNREFUSED), REASON_OTHER);
    ck_assert_int_eq(reason_from_gai(EAI_NONAME), REASON_HOST_NOT_FOUND);
    ck_assert_int_eq(reason_from_gai(EAI_AGAIN), REASON_DNS_TEMPORARY);
    ck_assert_int_eq(reason_from_gai(EAI_FAIL), REASON_OTHER);
    ck_assert_int_eq(reason_from_gai(0), REASON_OTHER);
}
END_TEST

/* The certificate refusals, and only they, count as verify failures. */
START_TEST(verify_class)
{
    static const enum reason refusals[] = {
        REASON_NAME_MISMATCH, REASON_UNKNOWN_ISSUER, REASON_SELF_SIGNED,
        REASON_EXPIRED, REASON_NOT_YET_VALID, REASON_BAD_SIGNATURE,
        REASON_CHAIN_TOO_LONG, REASON_NO_PEER_CERT, REASON_VERIFY_FAILED,
    };
    int want = 0;

    for (size_t k = 0; k < sizeof refusals / sizeof refusals[0]; k++)
        want |= (int)refusals[k] == _i;
    ck_assert_msg(reason_is_verify((enum reason)_i) == want,
                  "reason %d (\"%s\"): verify should be %d", _i,
                  reason_words((enum reason)_i), want);
}
END_TEST

START_TEST(out_of_range)
{
    enum reason r = (enum reason)bogus[_i];

    ck_assert_ptr_eq(reason_info(r), reason_info(REASON_OTHER));
    ck_assert_str_eq(reason_words(r), reason_words(REASON_OTHER));
    ck_assert_int_eq(reason_is_verify(r), 0);
    ck_assert_ptr_null(advice_hint(r));
}
END_TEST

Suite *reason_suite(void)
{
    Suite *s = suite_create("reason");
    TCase *tc = tcase_create("table");
    size_t nbogus = sizeof bogus / sizeof bogus[0];

    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, every_reason_has_words, 0, REASON_COUNT);
    tcase_add_loop_test(tc, hints_as_before, 0, sizeof hints / sizeof hints[0]);
    tcase_add_loop_test(tc, no_other_hints, 0, REASON_COUNT);
    tcase_add_loop_test(tc, words_as_before, 0, sizeof words / sizeof words[0]);
    tcase_add_loop_test(tc, from_uv, 0, sizeof uv_cases / sizeof uv_cases[0]);
    tcase_add_test(tc, from_errno_and_gai);
    tcase_add_loop_test(tc, verify_class, 0, REASON_COUNT);
    tcase_add_loop_test(tc, out_of_range, 0, (int)nbogus);
    suite_add_tcase(s, tc);
    return s;
}
