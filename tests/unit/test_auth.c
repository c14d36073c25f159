/*
 * auth: the requests of --auth's modes, byte for byte, and the judgement
 * of the server's answers: whole, cut anywhere, with bytes after them,
 * and the refusals memcached and MemCachier send.
 */
#include <string.h>

#include "auth.h"
#include "suites.h"

static const unsigned char *u(const char *s)
{
    return (const unsigned char *)s;
}

START_TEST(requests_text)
{
    unsigned char *p;
    size_t n;

    ck_assert_int_eq(auth_request(CONFIG_AUTH_MEMCACHIER, "u1", "p w\r\n", &p, &n), 0);
    ck_assert_uint_eq(n, strlen("set u1 0 0 5\r\np w\r\n\r\n"));
    ck_assert_mem_eq(p, "set u1 0 0 5\r\np w\r\n\r\n", n);
    auth_request_free(p, n);

    ck_assert_int_eq(auth_request(CONFIG_AUTH_MEMCACHED, "alice", "pw", &p, &n), 0);
    ck_assert_uint_eq(n, strlen("set memtunnel 0 -1 8\r\nalice pw\r\n"));
    ck_assert_mem_eq(p, "set memtunnel 0 -1 8\r\nalice pw\r\n", n);
    auth_request_free(p, n);

    ck_assert_int_eq(auth_request(CONFIG_AUTH_NONE, "a", "b", &p, &n), -1);
    ck_assert_ptr_null(p);
    auth_request_free(NULL, 0);
}
END_TEST

START_TEST(request_sasl)
{
    static const unsigned char want[] = {
        0x80, 0x21, 0x00, 0x05, 0, 0, 0, 0,   /* magic, SASL_AUTH, key 5 */
        0x00, 0x00, 0x00, 0x0b,               /* body: 5 + 1 + 2 + 1 + 2 */
        'm', 't', 'a', 'u', 0, 0, 0, 0, 0, 0, 0, 0,
        'P', 'L', 'A', 'I', 'N', 0, 'u', 's', 0, 'p', 'w',
    };
    unsigned char *p;
    size_t n;

    ck_assert_int_eq(auth_request(CONFIG_AUTH_SASL, "us", "pw", &p, &n), 0);
    ck_assert_uint_eq(n, sizeof want);
    ck_assert_mem_eq(p, want, n);
    auth_request_free(p, n);
}
END_TEST

/* A memcache key is at most 250 bytes: a longer MemCachier user cannot
 * be sent. */
START_TEST(user_rules)
{
    char long_user[252];
    const char *why;

    memset(long_user, 'a', 251);
    long_user[251] = '\0';
    ck_assert_int_eq(auth_user_ok(CONFIG_AUTH_MEMCACHIER, long_user, &why), -1);
    ck_assert_ptr_nonnull(why);
    long_user[250] = '\0';
    ck_assert_int_eq(auth_user_ok(CONFIG_AUTH_MEMCACHIER, long_user, &why), 0);
    ck_assert_int_eq(auth_user_ok(CONFIG_AUTH_MEMCACHIER, "a b", &why), -1);
    ck_assert_int_eq(auth_user_ok(CONFIG_AUTH_MEMCACHIER, "a\tb", &why), -1);
    ck_assert_int_eq(auth_user_ok(CONFIG_AUTH_MEMCACHED, "a b", &why), -1);
    ck_assert_int_eq(auth_user_ok(CONFIG_AUTH_MEMCACHED, "a\nb", &why), -1);
    ck_assert_int_eq(auth_user_ok(CONFIG_AUTH_MEMCACHED, "a\tb", &why), 0);
    ck_assert_int_eq(auth_user_ok(CONFIG_AUTH_SASL, "a b", &why), 0);
    ck_assert_int_eq(auth_user_ok(CONFIG_AUTH_SASL, "", &why), -1);
    ck_assert_int_eq(auth_mode_word(CONFIG_AUTH_MEMCACHED)[0], 'm');
    ck_assert_str_eq(auth_mode_word(CONFIG_AUTH_SASL), "sasl");
}
END_TEST

static const struct {
    enum config_auth mode;
    const char *reply;
    size_t len;                 /* 0: strlen(reply) */
    enum auth_verdict verdict;
    enum reason why;
} replies[] = {
    { CONFIG_AUTH_MEMCACHED, "STORED\r\n", 0, AUTH_OK, 0 },
    { CONFIG_AUTH_MEMCACHIER, "STORED\r\n", 0, AUTH_OK, 0 },
    { CONFIG_AUTH_MEMCACHED, "CLIENT_ERROR authentication failure\r\n", 0,
      AUTH_FAILED, REASON_AUTH_REFUSED },
    { CONFIG_AUTH_MEMCACHED, "CLIENT_ERROR unauthenticated\r\n", 0,
      AUTH_FAILED, REASON_AUTH_REFUSED },
    { CONFIG_AUTH_MEMCACHED, "CLIENT_ERROR bad authentication token format\r\n",
      0, AUTH_FAILED, REASON_AUTH_REFUSED },
    { CONFIG_AUTH_MEMCACHIER, "SERVER_ERROR unauthorized\r\n", 0,
      AUTH_FAILED, REASON_AUTH_REFUSED },
    { CONFIG_AUTH_MEMCACHED, "ERROR\r\n", 0, AUTH_FAILED,
      REASON_AUTH_UNSUPPORTED },
    /* More than the answer: the client has not spoken yet. */
    { CONFIG_AUTH_MEMCACHED, "STORED\r\nVALUE k 0 1\r\n", 0, AUTH_FAILED,
      REASON_AUTH_UNEXPECTED },
    { CONFIG_AUTH_MEMCACHED, "STORED\n", 0, AUTH_FAILED, REASON_AUTH_UNEXPECTED },
    { CONFIG_AUTH_MEMCACHED, "NOT_STORED\r\n", 0, AUTH_FAILED,
      REASON_AUTH_UNEXPECTED },
    { CONFIG_AUTH_MEMCACHED, "STORED", 0, AUTH_MORE, 0 },
    { CONFIG_AUTH_MEMCACHED, "", 0, AUTH_MORE, 0 },
    /* SASL: status 0 with "Authenticated." */
    { CONFIG_AUTH_SASL, "\x81\x21\0\0\0\0\0\0\0\0\0\x0emtau\0\0\0\0\0\0\0\0"
      "Authenticated.", 38, AUTH_OK, 0 },
    { CONFIG_AUTH_SASL, "\x81\x21\0\0\0\0\0\x20\0\0\0\x14mtau\0\0\0\0\0\0\0\0"
      "Auth failure.\0\0\0\0\0\0\0", 44, AUTH_FAILED, REASON_AUTH_REFUSED },
    { CONFIG_AUTH_SASL, "\x81\x21\0\0\0\0\0\x81\0\0\0\0mtau\0\0\0\0\0\0\0\0",
      24, AUTH_FAILED, REASON_AUTH_UNSUPPORTED },
    { CONFIG_AUTH_SASL, "\x81\x21\0\0\0\0\0\x21\0\0\0\0mtau\0\0\0\0\0\0\0\0",
      24, AUTH_FAILED, REASON_AUTH_UNEXPECTED },
    /* Another opaque, another opcode, a text server, a body too long. */
    { CONFIG_AUTH_SASL, "\x81\x21\0\0\0\0\0\0\0\0\0\0mtaU\0\0\0\0\0\0\0\0",
      24, AUTH_FAILED, REASON_AUTH_UNEXPECTED },
    { CONFIG_AUTH_SASL, "\x81\x0b\0\0\0\0\0\0\0\0\0\0mtau\0\0\0\0\0\0\0\0",
      24, AUTH_FAILED, REASON_AUTH_UNEXPECTED },
    { CONFIG_AUTH_SASL, "ERROR\r\n", 0, AUTH_FAILED, REASON_AUTH_UNEXPECTED },
    { CONFIG_AUTH_SASL, "\x81\x21\0\0\0\0\0\0\0\x01\0\0mtau\0\0\0\0\0\0\0\0",
      24, AUTH_FAILED, REASON_AUTH_UNEXPECTED },
    { CONFIG_AUTH_SASL, "\x81\x21\0\0\0\0\0\0\0\0\0\x0emtau", 16, AUTH_MORE, 0 },
    { CONFIG_AUTH_NONE, "STORED\r\n", 0, AUTH_FAILED, REASON_AUTH_UNEXPECTED },
};

START_TEST(judged)
{
    size_t n = replies[_i].len ? replies[_i].len : strlen(replies[_i].reply);
    enum reason why = REASON_OTHER;
    enum auth_verdict v = auth_reply(replies[_i].mode, u(replies[_i].reply), n, &why);

    ck_assert_int_eq(v, replies[_i].verdict);
    if (v == AUTH_FAILED)
        ck_assert_int_eq(why, replies[_i].why);
}
END_TEST

/* Every whole answer cut short is "more", never a verdict. */
START_TEST(cut_anywhere)
{
    size_t n = replies[_i].len ? replies[_i].len : strlen(replies[_i].reply);
    enum reason why;

    if (replies[_i].verdict != AUTH_OK)
        return;
    for (size_t k = 0; k < n; k++)
        ck_assert_int_eq(auth_reply(replies[_i].mode, u(replies[_i].reply), k,
                                    &why), AUTH_MORE);
}
END_TEST

/* A line that never ends is judged once it is longer than any answer. */
START_TEST(endless_line)
{
    static unsigned char junk[AUTH_REPLY_MAX + 1];
    enum reason why;

    memset(junk, 'x', sizeof junk);
    ck_assert_int_eq(auth_reply(CONFIG_AUTH_MEMCACHED, junk, AUTH_REPLY_MAX - 1,
                                &why), AUTH_MORE);
    ck_assert_int_eq(auth_reply(CONFIG_AUTH_MEMCACHED, junk, AUTH_REPLY_MAX,
                                &why), AUTH_FAILED);
    ck_assert_int_eq(why, REASON_AUTH_UNEXPECTED);
}
END_TEST

Suite *auth_suite(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("auth");
    tcase_set_timeout(tc, 5);
    tcase_add_test(tc, requests_text);
    tcase_add_test(tc, request_sasl);
    tcase_add_test(tc, user_rules);
    tcase_add_loop_test(tc, judged, 0, sizeof replies / sizeof replies[0]);
    tcase_add_loop_test(tc, cut_anywhere, 0, sizeof replies / sizeof replies[0]);
    tcase_add_test(tc, endless_line);
    suite_add_tcase(s, tc);
    return s;
}
