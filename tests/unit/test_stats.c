/*
 * stats: counters, the handshake median, sampling bounds, the line's pairs.
 */
#include <stdio.h>
#include <string.h>

#include "stats.h"
#include "suites.h"

static const char *value_of(const char **kv, const char *key)
{
    for (size_t i = 0; kv[i]; i += 2)
        if (strcmp(kv[i], key) == 0)
            return kv[i + 1];
    return NULL;
}

START_TEST(pairs_and_interval)
{
    struct stats s;
    const char *kv[24];
    char text[256];
    memset(&s, 0, sizeof s);
    s.active = 3;
    s.accepted = 10;
    s.verify_failures = 2;
    s.auth_failures = 4;
    s.reused = 6;
    s.bytes_up = 12345;
    s.bytes_down = 678;
    stats_handshake(&s, 1500, 7);
    stats_handshake(&s, 900, 8);
    stats_handshake(&s, 2500, 9);

    size_t n = stats_pairs(&s, "mc1:11211", kv, 24, text, sizeof text);
    ck_assert_uint_eq(n, 2 + 2 * 10);
    ck_assert_str_eq(value_of(kv, "upstream"), "mc1:11211");
    ck_assert_str_eq(value_of(kv, "sample#memtunnel.connections.active"), "3");
    ck_assert_str_eq(value_of(kv, "count#memtunnel.connections.accepted"), "10");
    ck_assert_str_eq(value_of(kv, "count#memtunnel.verify.failures"), "2");
    ck_assert_str_eq(value_of(kv, "count#memtunnel.connect.failures"), "0");
    ck_assert_str_eq(value_of(kv, "count#memtunnel.auth.failures"), "4");
    ck_assert_str_eq(value_of(kv, "count#memtunnel.connections.reused"), "6");
    ck_assert_str_eq(value_of(kv, "count#memtunnel.bytes.up"), "12345");
    ck_assert_str_eq(value_of(kv, "count#memtunnel.bytes.down"), "678");
    ck_assert_str_eq(value_of(kv, "sample#memtunnel.handshake.p50"), "1.500ms");

    /* The next interval starts from zero but keeps the gauge. */
    stats_next_interval(&s);
    n = stats_pairs(&s, "mc1:11211", kv, 24, text, sizeof text);
    ck_assert_uint_eq(n, 2 + 2 * 9);
    ck_assert_str_eq(value_of(kv, "sample#memtunnel.connections.active"), "3");
    ck_assert_str_eq(value_of(kv, "count#memtunnel.connections.accepted"), "0");
    ck_assert_ptr_null(value_of(kv, "sample#memtunnel.handshake.p50"));
}
END_TEST

/* Far more handshakes than samples: the median stays right and nothing
 * is written out of bounds. */
START_TEST(median_of_many)
{
    struct stats s;
    uint32_t rng = 12345;
    memset(&s, 0, sizeof s);
    for (uint32_t i = 0; i < 100000; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        /* 1000..1999 µs, uniformly */
        stats_handshake(&s, 1000 + (i * 7919u) % 1000, rng);
    }
    ck_assert_uint_eq(s.handshakes, 100000);
    uint32_t p50 = stats_handshake_p50(&s);
    ck_assert_uint_ge(p50, 1350);
    ck_assert_uint_le(p50, 1650);
}
END_TEST

START_TEST(median_small)
{
    struct stats s;
    memset(&s, 0, sizeof s);
    ck_assert_uint_eq(stats_handshake_p50(&s), 0);
    stats_handshake(&s, 42, 0);
    ck_assert_uint_eq(stats_handshake_p50(&s), 42);
    stats_handshake(&s, 10, 0);
    ck_assert_uint_eq(stats_handshake_p50(&s), 10);   /* lower median */
}
END_TEST

START_TEST(too_small_arrays)
{
    struct stats s;
    const char *kv[4];
    char text[8];
    memset(&s, 0, sizeof s);
    ck_assert_uint_eq(stats_pairs(&s, "x", kv, 4, text, sizeof text), 0);
}
END_TEST

Suite *stats_suite(void)
{
    Suite *s = suite_create("stats");
    TCase *tc = tcase_create("stats");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, pairs_and_interval);
    tcase_add_test(tc, median_of_many);
    tcase_add_test(tc, median_small);
    tcase_add_test(tc, too_small_arrays);
    suite_add_tcase(s, tc);
    return s;
}
