/*
 * logfmt_format: quoting, escaping, skipped values, truncation.  The queue
 * (log_start/log_stop): a reader that stalls never blocks the logger, what
 * is dropped is counted and reported in place, and the exit's wait is
 * bounded.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Log lines "at=n i=0" .. "i=count-1"; none may block. */
static void produce(unsigned first, unsigned count)
{
    for (unsigned i = first; i < first + count; i++) {
        char n[16];
        snprintf(n, sizeof n, "%u", i);
        log_event(LOG_WARN, "n", "i", n, NULL);
    }
}

/* Read what arrives on fd, line by line, until EOF or a quiet 2 s; check
 * each line and the gaps.  Returns lines of "at=n" and sets *dropped. */
static unsigned consume(int fd, unsigned first, unsigned long long *dropped,
                        unsigned *reports)
{
    static char buf[4 << 20];
    size_t len = 0;
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ck_assert_uint_lt(len, sizeof buf - 65536);
        if (poll(&p, 1, 2000) <= 0)
            break;
        ssize_t r = read(fd, buf + len, 65536);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    unsigned got = 0, next = first;
    unsigned long long gap = 0;
    *dropped = 0;
    *reports = 0;
    for (char *line = buf, *end; line < buf + len; line = end + 1) {
        end = memchr(line, '\n', (size_t)(buf + len - line));
        ck_assert_msg(end != NULL, "every line is whole");
        *end = '\0';
        unsigned i;
        unsigned long long n;
        if (sscanf(line, "memtunnel level=warn at=n i=%u", &i) == 1) {
            /* In order, and a gap only where a report says so. */
            ck_assert_uint_eq(i, next + gap);
            next = i + 1;
            gap = 0;
            got++;
        } else if (sscanf(line, "memtunnel level=warn at=log-dropped count=%llu",
                          &n) == 1) {
            ck_assert_uint_gt(n, 0);
            ck_assert_uint_eq(gap, 0);
            gap = n;
            *dropped += n;
            (*reports)++;
        } else {
            ck_abort_msg("unexpected line: %s", line);
        }
    }
    return got;
}

/* A pipe nobody reads: 20 000 lines (some 800 KB) go to a 16 KiB queue and
 * return at once; once read, the lines that got through and the counts
 * reported add up, and each count stands where its lines are missing. */
START_TEST(queue_drops_and_reports)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    log_set_level(LOG_INFO);
    ck_assert_int_eq(log_start(fds[1], 16384), 0);
    long long t0 = now_ms();
    produce(0, 20000);
    ck_assert_int_lt(now_ms() - t0, 2000);
    /* Reading resumes: the queue drains, then the count that stands at
     * its end goes out without another line to carry it. */
    unsigned long long dropped;
    unsigned reports;
    unsigned got = consume(fds[0], 0, &dropped, &reports);
    ck_assert_uint_gt(dropped, 0);
    ck_assert_uint_ge(reports, 1);
    ck_assert_uint_eq(got + dropped, 20000);
    /* More lines go through whole, and log_stop writes them out. */
    produce(20000, 100);
    ck_assert_int_eq(log_stop(2000), 0);
    close(fds[1]);
    got = consume(fds[0], 20000, &dropped, &reports);
    ck_assert_uint_eq(got, 100);
    ck_assert_uint_eq(dropped, 0);
    close(fds[0]);
}
END_TEST

/* With the reader stalled, log_stop gives up after its timeout instead of
 * hanging the exit; once the reader is gone the writer ends. */
START_TEST(queue_stop_is_bounded)
{
    int fds[2];
    char fill[4096];
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
    /* The pipe is full before the writer starts (it could otherwise take
     * the queue's 16 KiB before a line is dropped, and be done). */
    memset(fill, 'x', sizeof fill);
    while (write(fds[1], fill, sizeof fill) > 0)
        ;
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_int_eq(fcntl(fds[1], F_SETFL, 0), 0);
    log_set_level(LOG_INFO);
    ck_assert_int_eq(log_start(fds[1], 16384), 0);
    produce(0, 20000);
    long long t0 = now_ms();
    ck_assert_int_eq(log_stop(300), -ETIMEDOUT);
    long long waited = now_ms() - t0;
    ck_assert_int_ge(waited, 250);
    ck_assert_int_lt(waited, 2000);
    close(fds[0]);               /* the writer's write fails (EPIPE) */
    ck_assert_int_eq(log_stop(2000), 0);
    close(fds[1]);
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
    tc = tcase_create("queue");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, queue_drops_and_reports);
    tcase_add_test(tc, queue_stop_is_bounded);
    suite_add_tcase(s, tc);
    return s;
}
