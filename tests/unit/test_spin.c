/*
 * spin: the adaptive poll window, stepped with synthetic times, and the
 * libuv side driving a real loop's waits.
 */
#include <string.h>
#include <uv.h>

#include "spin.h"
#include "suites.h"

#define US 1000ULL
#define MAXW (200 * US)
#define T0 (1000000 * US)   /* an arbitrary start: 0 means "not idle" */

/* One idle period of `gap` ns after `now`, ended by an event; returns
 * the time of that event. */
static uint64_t period(struct spin_state *s, uint64_t now, int awaiting, uint64_t gap)
{
    spin_state_idle(s, now, awaiting);
    spin_state_event(s, now + gap);
    return now + gap;
}

START_TEST(starts_sleeping)
{
    struct spin_state s;
    spin_state_init(&s, MAXW);
    ck_assert_uint_eq(spin_state_window(&s, SPIN_QUIET), 0);
    ck_assert_uint_eq(spin_state_window(&s, SPIN_AWAITING), 0);
    /* No short period seen yet: sleep at once. */
    ck_assert_int_eq(spin_state_idle(&s, T0, 0), 0);
    ck_assert_int_eq(spin_state_idle(&s, T0, 1), 0);
    ck_assert_uint_eq(s.polled_ns, 0);
}
END_TEST

START_TEST(off_never_polls)
{
    struct spin_state s;
    spin_state_init(&s, 0);
    uint64_t t = T0;
    for (int i = 0; i < 10; i++)
        t = period(&s, t, 0, 10 * US);
    ck_assert_uint_eq(spin_state_window(&s, SPIN_QUIET), 0);
    ck_assert_int_eq(spin_state_idle(&s, t, 0), 0);
}
END_TEST

/* Short periods grow the window from 50 µs, doubling, to the maximum. */
START_TEST(grows_to_the_maximum)
{
    struct spin_state s;
    spin_state_init(&s, MAXW);
    uint64_t t = period(&s, T0, 0, 30 * US);
    ck_assert_uint_eq(spin_state_window(&s, SPIN_QUIET), 50 * US);
    /* Caught while polling: the window stays. */
    t = period(&s, t, 0, 30 * US);
    ck_assert_uint_eq(spin_state_window(&s, SPIN_QUIET), 50 * US);
    /* Missed, but a longer window would have caught it. */
    t = period(&s, t, 0, 120 * US);
    ck_assert_uint_eq(spin_state_window(&s, SPIN_QUIET), 100 * US);
    t = period(&s, t, 0, 150 * US);
    ck_assert_uint_eq(spin_state_window(&s, SPIN_QUIET), 200 * US);
    t = period(&s, t, 0, 199 * US);
    ck_assert_uint_eq(spin_state_window(&s, SPIN_QUIET), 200 * US);
    period(&s, t, 0, MAXW);
    ck_assert_uint_eq(spin_state_window(&s, SPIN_QUIET), MAXW);
}
END_TEST

/* Periods longer than the maximum halve it, down to nothing. */
START_TEST(shrinks_to_nothing)
{
    struct spin_state s;
    spin_state_init(&s, MAXW);
    uint64_t t = T0;
    for (int i = 0; i < 4; i++)
        t = period(&s, t, 0, 150 * US);
    ck_assert_uint_eq(spin_state_window(&s, SPIN_QUIET), MAXW);
    t = period(&s, t, 0, 5000 * US);
    ck_assert_uint_eq(spin_state_window(&s, SPIN_QUIET), 100 * US);
    t = period(&s, t, 0, MAXW + 1);
    ck_assert_uint_eq(spin_state_window(&s, SPIN_QUIET), 50 * US);
    for (int i = 0; i < 40; i++)
        t = period(&s, t, 0, 1000000 * US);
    ck_assert_uint_eq(spin_state_window(&s, SPIN_QUIET), 0);
    ck_assert_int_eq(spin_state_idle(&s, t, 0), 0);
}
END_TEST

/* Waits for a reply and waits for clients keep their own windows: a slow
 * upstream does not stop polling for quick clients, nor the reverse. */
START_TEST(two_windows)
{
    struct spin_state s;
    spin_state_init(&s, MAXW);
    uint64_t t = T0;
    for (int i = 0; i < 5; i++) {
        t = period(&s, t, 1, 2000 * US);   /* a remote upstream */
        t = period(&s, t, 0, 40 * US);     /* a quick client */
    }
    ck_assert_uint_eq(spin_state_window(&s, SPIN_AWAITING), 0);
    ck_assert_uint_eq(spin_state_window(&s, SPIN_QUIET), 50 * US);
    /* While a reply is owed, the loop sleeps at once. */
    ck_assert_int_eq(spin_state_idle(&s, t, 1), 0);
}
END_TEST

/* Polling goes on for the window, then the loop sleeps; a wake-up by a
 * timer later in the same period does not start it again; the time spent
 * polling is counted up to the event or the window's end. */
START_TEST(polls_for_the_window)
{
    struct spin_state s;
    spin_state_init(&s, MAXW);
    uint64_t t = period(&s, T0, 0, 30 * US);          /* window 50 µs */
    ck_assert_int_eq(spin_state_idle(&s, t, 0), 1);
    ck_assert_int_eq(spin_state_idle(&s, t + 20 * US, 0), 1);
    ck_assert_int_eq(spin_state_idle(&s, t + 49 * US, 0), 1);
    ck_assert_int_eq(spin_state_idle(&s, t + 50 * US, 0), 0);
    ck_assert_uint_eq(s.polled_ns, 50 * US);
    ck_assert_int_eq(spin_state_idle(&s, t + 60 * US, 0), 0);   /* a timer */
    ck_assert_uint_eq(s.polled_ns, 50 * US);
    spin_state_event(&s, t + 90 * US);    /* missed: the window doubles */
    ck_assert_uint_eq(spin_state_window(&s, SPIN_QUIET), 100 * US);
    ck_assert_uint_eq(s.polled_ns, 50 * US);
    t += 90 * US;
    ck_assert_int_eq(spin_state_idle(&s, t, 0), 1);
    spin_state_event(&s, t + 7 * US);     /* caught */
    ck_assert_uint_eq(s.polled_ns, 57 * US);
    /* An event while busy (no idle period running) changes nothing. */
    spin_state_event(&s, t + 8 * US);
    ck_assert_uint_eq(s.polled_ns, 57 * US);
    ck_assert_uint_eq(spin_state_window(&s, SPIN_QUIET), 100 * US);
}
END_TEST

/* A maximum below 50 µs is where the window starts. */
START_TEST(small_maximum)
{
    struct spin_state s;
    spin_state_init(&s, 20 * US);
    period(&s, T0, 1, 10 * US);
    ck_assert_uint_eq(spin_state_window(&s, SPIN_AWAITING), 20 * US);
}
END_TEST

/* ---- the libuv side ----------------------------------------------------- */

struct turns {
    uv_check_t check;
    uv_timer_t timer;
    unsigned n;          /* turns of the loop */
};

static void on_check(uv_check_t *h)
{
    ((struct turns *)h->data)->n++;
}

static void on_timer(uv_timer_t *h)
{
    struct turns *tr = h->data;
    uv_check_stop(&tr->check);
    uv_close((uv_handle_t *)&tr->check, NULL);
    uv_close((uv_handle_t *)&tr->timer, NULL);
}

/* Turns of a loop that waits 30 ms for a timer, with `spin` polling for
 * at most `window` of that. */
static unsigned turns_waiting(struct spin *spin, uint64_t window, int stop_first)
{
    uv_loop_t loop;
    struct turns tr;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    spin_start(spin, &loop, MAXW);
    spin->st.window_ns[SPIN_QUIET] = window;
    memset(&tr, 0, sizeof tr);
    tr.check.data = tr.timer.data = &tr;
    uv_check_init(&loop, &tr.check);
    uv_check_start(&tr.check, on_check);
    uv_timer_init(&loop, &tr.timer);
    uv_timer_start(&tr.timer, on_timer, 30, 0);
    if (stop_first)
        spin_stop(spin);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    spin_stop(spin);
    uv_run(&loop, UV_RUN_DEFAULT);       /* the close callbacks */
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    return tr.n;
}

/* With a window, the loop turns without sleeping while it waits; without,
 * it sleeps through the wait in a turn or two.  Its handles never keep
 * the loop alive, and close cleanly. */
START_TEST(drives_the_loop)
{
    struct spin spin;
    unsigned polling = turns_waiting(&spin, 20000 * US, 0);
    ck_assert_uint_gt(spin.st.polled_ns, 5000 * US);
    unsigned sleeping = turns_waiting(&spin, 0, 0);
    ck_assert_uint_eq(spin.st.polled_ns, 0);
    unsigned stopped = turns_waiting(&spin, 20000 * US, 1);
    /* More turns than a sleeping loop takes: with the cores busy, each
     * sched_yield can give another task a whole slice (8 turns in 30 ms
     * were seen beside two busy loops and two test runs; > 1000 idle). */
    ck_assert_uint_gt(polling, 3);
    ck_assert_uint_le(sleeping, 3);
    ck_assert_uint_le(stopped, 3);
}
END_TEST

/* spin_take_ms hands out whole milliseconds and keeps the rest. */
START_TEST(take_ms)
{
    struct spin spin;
    uv_loop_t loop;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    spin_start(&spin, &loop, MAXW);
    spin.st.polled_ns = 2500 * US;
    ck_assert_uint_eq(spin_take_ms(&spin), 2);
    spin.st.polled_ns += 600 * US;
    ck_assert_uint_eq(spin_take_ms(&spin), 1);
    ck_assert_uint_eq(spin_take_ms(&spin), 0);
    spin_await(&spin, 1);
    spin_await(&spin, 1);
    spin_await(&spin, -1);
    ck_assert_uint_eq(spin.awaiting, 1);
    spin_await(&spin, -1);
    spin_await(&spin, -1);
    ck_assert_uint_eq(spin.awaiting, 0);
    spin_stop(&spin);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* --busy-poll 0: no handles at all, every call a no-op. */
START_TEST(off_has_no_handles)
{
    struct spin spin;
    uv_loop_t loop;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    spin_start(&spin, &loop, 0);
    ck_assert_int_eq(spin.started, 0);
    spin_event(&spin);
    spin_stop(&spin);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

Suite *spin_suite(void)
{
    Suite *s = suite_create("spin");
    TCase *tc = tcase_create("policy");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, starts_sleeping);
    tcase_add_test(tc, off_never_polls);
    tcase_add_test(tc, grows_to_the_maximum);
    tcase_add_test(tc, shrinks_to_nothing);
    tcase_add_test(tc, two_windows);
    tcase_add_test(tc, polls_for_the_window);
    tcase_add_test(tc, small_maximum);
    suite_add_tcase(s, tc);
    tc = tcase_create("loop");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, drives_the_loop);
    tcase_add_test(tc, take_ms);
    tcase_add_test(tc, off_has_no_handles);
    suite_add_tcase(s, tc);
    return s;
}
