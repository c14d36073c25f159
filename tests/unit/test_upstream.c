/*
 * upstream: identity, counters, the spare pool (park, pop, unpark, gone,
 * refill, backoff) on a real libuv loop with a counting spare hook, and the
 * session cache with sessions from a real handshake.
 */
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "suites.h"
#include "tlspair.h"
#include "upstream.h"

static struct config_server server(const char *host, enum config_family f,
                                   uint16_t port)
{
    struct config_server s;
    memset(&s, 0, sizeof s);
    strcpy(s.host, host);
    s.family = f;
    s.port = port;
    return s;
}

START_TEST(identity)
{
    uv_loop_t loop;
    struct upstream up;
    ck_assert_int_eq(uv_loop_init(&loop), 0);

    struct config_server v4 = server("127.0.0.1", CONFIG_IPV4, 11211);
    ck_assert_int_eq(upstream_init(&up, &loop, &v4, NULL, 0), 0);
    ck_assert_str_eq(up.name, "127.0.0.1:11211");
    ck_assert_str_eq(up.port, "11211");
    ck_assert_str_eq(up.tls_name, "127.0.0.1");
    ck_assert_int_eq(up.tls_name_is_ip, 1);
    ck_assert_int_eq(up.have_addr, 1);
    upstream_free(&up);

    struct config_server v6 = server("::1", CONFIG_IPV6, 11212);
    ck_assert_int_eq(upstream_init(&up, &loop, &v6, NULL, 0), 0);
    ck_assert_str_eq(up.name, "[::1]:11212");
    ck_assert_int_eq(up.tls_name_is_ip, 1);
    ck_assert_int_eq(up.have_addr, 1);
    ck_assert_int_eq(up.addr.ss_family, AF_INET6);
    upstream_free(&up);

    /* A name is resolved per connection; --sni replaces what is checked. */
    struct config_server name = server("mc.example.com", CONFIG_NAME, 11211);
    ck_assert_int_eq(upstream_init(&up, &loop, &name, NULL, 0), 0);
    ck_assert_int_eq(up.have_addr, 0);
    ck_assert_str_eq(up.tls_name, "mc.example.com");
    ck_assert_int_eq(up.tls_name_is_ip, 0);
    upstream_free(&up);
    ck_assert_int_eq(upstream_init(&up, &loop, &v4, "cache.internal", 0), 0);
    ck_assert_str_eq(up.tls_name, "cache.internal");
    ck_assert_int_eq(up.tls_name_is_ip, 0);
    upstream_free(&up);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(counters)
{
    uv_loop_t loop;
    struct upstream up;
    struct config_server s = server("127.0.0.1", CONFIG_IPV4, 11211);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(upstream_init(&up, &loop, &s, NULL, 0), 0);

    upstream_client_accepted(&up);
    upstream_client_accepted(&up);
    upstream_client_closed(&up);
    upstream_failed(&up, UPSTREAM_CONNECT_FAILED);
    upstream_failed(&up, UPSTREAM_VERIFY_FAILED);
    upstream_failed(&up, UPSTREAM_VERIFY_FAILED);
    upstream_failed(&up, UPSTREAM_HANDSHAKE_FAILED);
    upstream_bytes(&up, 10, 0);
    upstream_bytes(&up, 5, 700);
    for (uint32_t us = 100; us <= 300; us += 100)
        upstream_handshake_done(&up, us);

    ck_assert_uint_eq(up.stats.active, 1);
    ck_assert_uint_eq(up.stats.accepted, 2);
    ck_assert_uint_eq(up.stats.connect_failures, 1);
    ck_assert_uint_eq(up.stats.verify_failures, 2);
    ck_assert_uint_eq(up.stats.handshake_failures, 1);
    ck_assert_uint_eq(up.stats.bytes_up, 15);
    ck_assert_uint_eq(up.stats.bytes_down, 700);
    ck_assert_uint_eq(up.stats.handshakes, 3);
    ck_assert_uint_eq(stats_handshake_p50(&up.stats), 200);
    upstream_free(&up);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* ---- spares ---- */

struct hook {
    unsigned calls;
    uint64_t at[16];            /* loop time of each call */
};

static void start_spare(void *arg, struct upstream *up)
{
    struct hook *h = arg;
    if (h->calls < 16)
        h->at[h->calls] = uv_now(up->loop);
    h->calls++;
}

/* Stand-ins for connections: only stored and handed back. */
static struct conn *fake(int i)
{
    static char c[8];
    return (struct conn *)&c[i];
}

START_TEST(spares_park_pop)
{
    uv_loop_t loop;
    struct upstream up;
    struct hook h = { 0 };
    struct config_server s = server("127.0.0.1", CONFIG_IPV4, 11211);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(upstream_init(&up, &loop, &s, NULL, 3), 0);

    upstream_start(&up, start_spare, &h);
    ck_assert_uint_eq(h.calls, 3);
    ck_assert_uint_eq(up.spares, 3);
    ck_assert_ptr_null(upstream_spare_pop(&up));

    upstream_spare_park(&up, fake(0));
    upstream_spare_park(&up, fake(1));
    upstream_spare_park(&up, fake(2));
    /* Closing while parked: out of the list, the others keep their order. */
    upstream_spare_unpark(&up, fake(1));
    upstream_spare_unpark(&up, fake(1));     /* harmless twice */
    ck_assert_ptr_eq(upstream_spare_pop(&up), fake(2));
    ck_assert_ptr_eq(upstream_spare_pop(&up), fake(0));
    ck_assert_ptr_null(upstream_spare_pop(&up));

    upstream_stop(&up);
    upstream_stop(&up);                      /* idempotent */
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    upstream_free(&up);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* Spares that never get ready are retried after 100, 200, 400 ms... */
START_TEST(spares_backoff)
{
    uv_loop_t loop;
    struct upstream up;
    struct hook h = { 0 };
    struct config_server s = server("127.0.0.1", CONFIG_IPV4, 11211);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(upstream_init(&up, &loop, &s, NULL, 1), 0);
    upstream_start(&up, start_spare, &h);
    ck_assert_uint_eq(h.calls, 1);

    uint64_t want[] = { 100, 200, 400, 800 };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        upstream_spare_gone(&up, 0);
        ck_assert_uint_eq(up.spares, 0);
        ck_assert_uint_eq(uv_timer_get_due_in(&up.spare_timer), want[i]);
        /* A second failure while the timer runs changes nothing. */
        ck_assert_uint_eq(h.calls, i + 1);
        uv_run(&loop, UV_RUN_ONCE);
        ck_assert_uint_eq(h.calls, i + 2);
        ck_assert_uint_eq(up.spares, 1);
    }
    /* A spare that got ready and was taken ends the backoff: its
     * replacement waits for the client's first reply, 10 ms at most. */
    upstream_spare_gone(&up, 1);
    ck_assert_uint_eq(up.spare_failures, 0);
    ck_assert_uint_eq(uv_timer_get_due_in(&up.refill_timer), 10);
    upstream_spare_refill(&up);
    ck_assert_uint_eq(h.calls, 6);
    ck_assert(!uv_is_active((uv_handle_t *)&up.refill_timer));
    upstream_spare_refill(&up);              /* nothing owed: no spare */
    ck_assert_uint_eq(h.calls, 6);
    upstream_spare_gone(&up, 0);
    ck_assert_uint_eq(uv_timer_get_due_in(&up.spare_timer), 100);

    /* Stopped: what ends no longer starts anything. */
    upstream_stop(&up);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert_uint_eq(h.calls, 6);
    upstream_free(&up);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(spares_backoff_cap)
{
    uv_loop_t loop;
    struct upstream up;
    struct hook h = { 0 };
    struct config_server s = server("127.0.0.1", CONFIG_IPV4, 11211);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(upstream_init(&up, &loop, &s, NULL, 1), 0);
    upstream_start(&up, start_spare, &h);
    for (int i = 0; i < 20; i++) {
        upstream_spare_gone(&up, 0);
        ck_assert_uint_le(uv_timer_get_due_in(&up.spare_timer), 30000);
        uv_timer_stop(&up.spare_timer);      /* as if it had fired */
        up.spares++;
    }
    upstream_spare_gone(&up, 0);
    ck_assert_uint_eq(uv_timer_get_due_in(&up.spare_timer), 30000);
    upstream_stop(&up);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    upstream_free(&up);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* A taken spare is replaced when the deferral ends, without a refill. */
START_TEST(spares_taken_deferred)
{
    uv_loop_t loop;
    struct upstream up;
    struct hook h = { 0 };
    struct config_server s = server("127.0.0.1", CONFIG_IPV4, 11211);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(upstream_init(&up, &loop, &s, NULL, 2), 0);
    upstream_start(&up, start_spare, &h);
    ck_assert_uint_eq(h.calls, 2);
    uint64_t t0 = uv_now(&loop);
    upstream_spare_gone(&up, 1);
    /* The replacement comes when the deferral ends, without a refill. */
    uv_run(&loop, UV_RUN_ONCE);
    ck_assert_uint_eq(h.calls, 3);
    ck_assert_uint_ge(h.at[2] - t0, 10);
    upstream_stop(&up);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    upstream_free(&up);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* ---- sessions ---- */

/* A real session, from a handshake and a first read. */
static void *real_session(struct tlspair *pr)
{
    static const struct tlspair_opts o = { .verify = CONFIG_VERIFY_FULL };
    char buf[8];
    int end;

    tlspair_init(pr, &o, "localhost", 0);
    ck_assert_int_eq(tlspair_handshake(pr), 0);
    wolfSSL_write(pr->s, "hi", 2);
    ck_assert_uint_eq(tlspair_client_read(pr, buf, sizeof buf, &end), 2);
    void *s = tlsconn_session(&pr->c);
    ck_assert_ptr_nonnull(s);
    return s;
}

START_TEST(sessions)
{
    uv_loop_t loop;
    struct upstream up;
    struct tlspair pr;
    struct config_server s = server("localhost", CONFIG_NAME, 11211);
    uint64_t at = 0;
    const uint64_t day = upstream_resume_limits()->max_age_ms;

    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(upstream_init(&up, &loop, &s, NULL, 0), 0);
    ck_assert_ptr_null(upstream_session_offer(&up, 1000, &at));
    upstream_session_keep(&up, NULL, 1000, 0);       /* nothing to keep */
    ck_assert_ptr_null(upstream_session_offer(&up, 1000, &at));

    void *first = real_session(&pr);
    upstream_session_keep(&up, first, 1000, 0);
    ck_assert_ptr_eq(upstream_session_offer(&up, 2000, &at), first);
    ck_assert_uint_eq(at, 1000);
    /* A day after the full verification it is not offered. */
    ck_assert_ptr_null(upstream_session_offer(&up, 1000 + day, &at));

    /* A session from an older verification does not replace it (freed). */
    upstream_session_keep(&up, tlsconn_session(&pr.c), 500, 0);
    ck_assert_ptr_eq(upstream_session_offer(&up, 2000, &at), first);
    ck_assert_uint_eq(at, 1000);

    /* Refused: dropped, and offers pause a minute. */
    ck_assert_uint_eq(upstream_session_refused(&up, 3000), 60000);
    ck_assert_ptr_null(upstream_session_offer(&up, 3001, &at));
    upstream_session_keep(&up, tlsconn_session(&pr.c), 4000, 0);
    ck_assert_ptr_null(upstream_session_offer(&up, 4001, &at));
    ck_assert_ptr_nonnull(upstream_session_offer(&up, 3000 + 60000, &at));
    ck_assert_uint_eq(at, 4000);
    upstream_session_resumed(&up);
    ck_assert_uint_eq(up.resume.backoff_ms, 0);

    upstream_free(&up);                  /* frees the kept session */
    tlspair_free(&pr);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(expiry_due)
{
    uv_loop_t loop;
    struct upstream up;
    struct config_server s = server("127.0.0.1", CONFIG_IPV4, 11211);
    const uint64_t day = upstream_resume_limits()->max_age_ms;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(upstream_init(&up, &loop, &s, NULL, 0), 0);
    ck_assert(upstream_expiry_due(&up, 5));
    upstream_expiry_checked(&up, 5);
    ck_assert(!upstream_expiry_due(&up, 6));
    ck_assert(!upstream_expiry_due(&up, 4 + day));
    ck_assert(upstream_expiry_due(&up, 5 + day));
    upstream_free(&up);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

Suite *upstream_suite(void)
{
    Suite *s = suite_create("upstream");
    TCase *tc = tcase_create("state");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, identity);
    tcase_add_test(tc, counters);
    tcase_add_test(tc, expiry_due);
    suite_add_tcase(s, tc);
    tc = tcase_create("spares");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, spares_park_pop);
    tcase_add_test(tc, spares_backoff);
    tcase_add_test(tc, spares_backoff_cap);
    tcase_add_test(tc, spares_taken_deferred);
    suite_add_tcase(s, tc);
    tc = tcase_create("sessions");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, sessions);
    suite_add_tcase(s, tc);
    return s;
}
