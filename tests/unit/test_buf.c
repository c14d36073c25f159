/*
 * buf: append, reserve/commit, consume, compaction, growth, swap, trim.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "suites.h"

START_TEST(append_and_consume)
{
    struct buf b = BUF_INIT;
    ck_assert_int_eq(buf_append(&b, "hello ", 6), 0);
    ck_assert_int_eq(buf_append(&b, "world", 5), 0);
    ck_assert_uint_eq(buf_len(&b), 11);
    ck_assert_int_eq(memcmp(buf_peek(&b), "hello world", 11), 0);
    buf_consume(&b, 6);
    ck_assert_uint_eq(buf_len(&b), 5);
    ck_assert_int_eq(memcmp(buf_peek(&b), "world", 5), 0);
    buf_consume(&b, 5);
    ck_assert_uint_eq(buf_len(&b), 0);
    /* Empty resets to the front, so the whole capacity is usable again. */
    ck_assert_uint_eq(b.head, 0);
    buf_free(&b);
    ck_assert_ptr_null(b.data);
}
END_TEST

START_TEST(reserve_commit)
{
    struct buf b = BUF_INIT;
    size_t room;
    char *p = buf_reserve(&b, 100, &room);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_ge(room, 100);
    memcpy(p, "abc", 3);
    buf_commit(&b, 3);
    ck_assert_uint_eq(buf_len(&b), 3);
    ck_assert_int_eq(memcmp(buf_peek(&b), "abc", 3), 0);
    buf_free(&b);
}
END_TEST

/* Consumed space at the front is reused by sliding, not by growing. */
START_TEST(compacts_before_growing)
{
    struct buf b = BUF_INIT;
    size_t room;
    char *p = buf_reserve(&b, 4096, &room);
    memset(p, 'x', room);
    buf_commit(&b, room);
    size_t cap = b.cap;
    buf_consume(&b, room - 10);
    p = buf_reserve(&b, 1000, &room);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(b.cap, cap);
    ck_assert_uint_eq(b.head, 0);
    ck_assert_uint_eq(buf_len(&b), 10);
    buf_free(&b);
}
END_TEST

/* A megabyte in odd-sized pieces comes out identical. */
START_TEST(grows_and_keeps_order)
{
    struct buf b = BUF_INIT;
    size_t total = 0, out = 0;
    unsigned char chunk[777];
    while (total < (1u << 20)) {
        for (size_t i = 0; i < sizeof chunk; i++)
            chunk[i] = (unsigned char)((total + i) * 31u);
        ck_assert_int_eq(buf_append(&b, chunk, sizeof chunk), 0);
        total += sizeof chunk;
        /* consume a little as we go, to exercise compaction too */
        size_t take = buf_len(&b) / 3;
        for (size_t i = 0; i < take; i++)
            ck_assert_uint_eq((unsigned char)buf_peek(&b)[i],
                              (unsigned char)((out + i) * 31u));
        buf_consume(&b, take);
        out += take;
    }
    ck_assert_uint_eq(buf_len(&b), total - out);
    for (size_t i = 0; i < buf_len(&b); i++)
        ck_assert_uint_eq((unsigned char)buf_peek(&b)[i],
                          (unsigned char)((out + i) * 31u));
    buf_free(&b);
}
END_TEST

START_TEST(swap_and_trim)
{
    struct buf a = BUF_INIT, b = BUF_INIT;
    buf_append(&a, "one", 3);
    buf_swap(&a, &b);
    ck_assert_uint_eq(buf_len(&a), 0);
    ck_assert_uint_eq(buf_len(&b), 3);

    /* An empty buffer is released, whatever its size; the smallest
     * storage is reused by the next buffer that needs one... */
    char *small = b.data;
    buf_consume(&b, 3);
    buf_trim(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.cap, 0);
    buf_append(&a, "x", 1);
    ck_assert_ptr_eq(a.data, small);
    buf_free(&a);
    /* ...but not while it holds data. */
    char big[10000];
    memset(big, 'y', sizeof big);
    buf_append(&b, big, sizeof big);
    buf_trim(&b);
    ck_assert_ptr_nonnull(b.data);
    buf_consume(&b, sizeof big);
    buf_trim(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.cap, 0);
    buf_free(&a);
    buf_free(&b);
}
END_TEST

/* More small buffers freed than the pool keeps: the rest are really freed
 * (ASan and valgrind runs would see a leak or a double free otherwise), and
 * the pool hands out distinct storage. */
START_TEST(pool_is_bounded)
{
    struct buf bs[100];
    for (int i = 0; i < 100; i++) {
        bs[i] = (struct buf)BUF_INIT;
        buf_append(&bs[i], "y", 1);
    }
    for (int i = 0; i < 100; i++)
        buf_free(&bs[i]);
    struct buf x = BUF_INIT, y = BUF_INIT;
    buf_append(&x, "1", 1);
    buf_append(&y, "2", 1);
    ck_assert_ptr_ne(x.data, y.data);
    ck_assert_int_eq(*buf_peek(&x), '1');
    ck_assert_int_eq(*buf_peek(&y), '2');
    buf_free(&x);
    buf_free(&y);
    buf_pool_drain();
}
END_TEST

/* A large buffer freed is the storage of the next large one (a 100 KiB
 * value per write must not cost a malloc and page faults each time).  More
 * than the pool keeps, and ones too large to keep, are really freed: the
 * ASan and valgrind runs would see a leak or a double free otherwise. */
START_TEST(large_storage_is_reused)
{
    static char value[100 * 1024];
    struct buf a = BUF_INIT;
    memset(value, 'v', sizeof value);
    ck_assert_int_eq(buf_append(&a, value, sizeof value), 0);
    char *first = a.data;
    size_t cap = a.cap;
    buf_consume(&a, sizeof value);
    buf_trim(&a);
    ck_assert_ptr_null(a.data);
    ck_assert_int_eq(buf_append(&a, value, 1000), 0);
    ck_assert_int_eq(buf_append(&a, value, sizeof value), 0);
    ck_assert_ptr_eq(a.data, first);
    ck_assert_uint_eq(a.cap, cap);
    ck_assert_uint_eq(buf_len(&a), 1000 + sizeof value);
    buf_free(&a);

    struct buf bs[10];
    for (int i = 0; i < 10; i++) {
        bs[i] = (struct buf)BUF_INIT;
        ck_assert_int_eq(buf_append(&bs[i], value, sizeof value), 0);
    }
    for (int i = 0; i < 10; i++)
        buf_free(&bs[i]);
    struct buf huge = BUF_INIT;
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(buf_append(&huge, value, sizeof value), 0);
    buf_free(&huge);
    buf_pool_drain();
}
END_TEST

START_TEST(append_nothing)
{
    struct buf b = BUF_INIT;
    ck_assert_int_eq(buf_append(&b, NULL, 0), 0);
    ck_assert_ptr_null(b.data);
}
END_TEST

Suite *buf_suite(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("queue");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, append_and_consume);
    tcase_add_test(tc, reserve_commit);
    tcase_add_test(tc, compacts_before_growing);
    tcase_add_test(tc, grows_and_keeps_order);
    tcase_add_test(tc, swap_and_trim);
    tcase_add_test(tc, append_nothing);
    tcase_add_test(tc, pool_is_bounded);
    tcase_add_test(tc, large_storage_is_reused);
    suite_add_tcase(s, tc);
    return s;
}
