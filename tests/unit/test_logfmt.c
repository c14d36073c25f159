/*
 * logfmt_format: quoting, escaping, skipped values, truncation.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "suites.h"

struct fmt_case {
    const char *value;
    const char *expect;       /* the line after "memtunnel level=info at=x k=" */
};

static const struct fmt_case cases[] = {
    { "plain", "plain\n" },
    { "127.0.0.1:11211", "127.0.0.1:11211\n" },
    { "", "\"\"\n" },
    { "two words", "\"two words\"\n" },
    { "a=b", "\"a=b\"\n" },
    { "say \"hi\"", "\"say \\\"hi\\\"\"\n" },
    { "back\\slash two", "\"back\\\\slash two\"\n" },
    { "line\nbreak", "\"line\\nbreak\"\n" },
    { "cr\rtab\t", "\"cr\\rtab\\t\"\n" },
    { "bell\x07", "\"bell\\x07\"\n" },
    { "del\x7f", "\"del\\x7f\"\n" },
    { "caf\xc3\xa9", "caf\xc3\xa9\n" },
};

START_TEST(quoting)
{
    const struct fmt_case *c = &cases[_i];
    const char *kv[] = { "k", c->value, NULL };
    char line[256], expect[256];
    size_t n = logfmt_format(line, sizeof line, LOG_INFO, "x", kv);
    snprintf(expect, sizeof expect, "memtunnel level=info at=x k=%s", c->expect);
    ck_assert_str_eq(line, expect);
    ck_assert_uint_eq(n, strlen(expect));
}
END_TEST

START_TEST(levels_and_pairs)
{
    const char *kv[] = { "upstream", "mc1:11211", "reason", "certificate expired",
                         NULL };
    char line[256];
    logfmt_format(line, sizeof line, LOG_WARN, "verify-failed", kv);
    ck_assert_str_eq(line, "memtunnel level=warn at=verify-failed "
                     "upstream=mc1:11211 reason=\"certificate expired\"\n");
    logfmt_format(line, sizeof line, LOG_ERROR, "e", NULL);
    ck_assert_str_eq(line, "memtunnel level=error at=e\n");
    logfmt_format(line, sizeof line, LOG_DEBUG, "d", NULL);
    ck_assert_str_eq(line, "memtunnel level=debug at=d\n");
}
END_TEST

START_TEST(null_value_skipped)
{
    const char *kv[] = { "a", NULL, "b", "2", NULL };
    char line[128];
    logfmt_format(line, sizeof line, LOG_INFO, "x", kv);
    ck_assert_str_eq(line, "memtunnel level=info at=x b=2\n");
}
END_TEST

/* A line that does not fit is cut, but still ends in a newline. */
START_TEST(truncation)
{
    char big[600];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const char *kv[] = { "k", big, NULL };
    char line[64];
    size_t n = logfmt_format(line, sizeof line, LOG_INFO, "x", kv);
    ck_assert_uint_eq(n, sizeof line - 1);
    ck_assert_uint_eq(strlen(line), n);
    ck_assert_int_eq(line[n - 1], '\n');
    ck_assert_uint_eq(logfmt_format(line, 0, LOG_INFO, "x", kv), 0);
}
END_TEST

START_TEST(level_filter)
{
    log_set_level(LOG_WARN);
    ck_assert(log_enabled(LOG_ERROR));
    ck_assert(log_enabled(LOG_WARN));
    ck_assert(!log_enabled(LOG_INFO));
    ck_assert(!log_enabled(LOG_DEBUG));
    log_set_level(LOG_DEBUG);
    ck_assert(log_enabled(LOG_DEBUG));
    log_set_level(LOG_INFO);
}
END_TEST

Suite *logfmt_suite(void)
{
    Suite *s = suite_create("logfmt");
    TCase *tc = tcase_create("format");
    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, quoting, 0, sizeof cases / sizeof cases[0]);
    tcase_add_test(tc, levels_and_pairs);
    tcase_add_test(tc, null_value_skipped);
    tcase_add_test(tc, truncation);
    tcase_add_test(tc, level_filter);
    suite_add_tcase(s, tc);
    return s;
}
