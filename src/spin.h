/*
 * spin: adaptive busy-polling of the event loop (--busy-poll).
 *
 * A loop that sleeps in epoll_wait between a request and its reply pays for
 * its CPU going idle and being woken again.  On a virtual machine that is
 * tens of microseconds, often more than the tunnel's own work: with one
 * request at a time it doubled memtunnel's latency on the benchmark VM.
 * When the loop's idle periods are short, polling for a while instead of
 * sleeping takes that cost off the path; when they are long, polling
 * would only burn the CPU.  So the loop polls for a window after it runs
 * out of work, and the window adapts to the idle periods it sees, as
 * Linux's haltpoll cpuidle governor adapts its own poll: it grows (doubling,
 * from 50 µs or the maximum when that is smaller) when an event came soon
 * after the window ended, and halves when the loop then slept longer than
 * the maximum.  With sparse traffic it falls to nothing and costs nothing.
 * While polling, the loop yields the CPU to any other task that can run.
 *
 * There are two windows: one for waits while some upstream owes a reply
 * (their length is the upstream's round trip: short on loopback, long over
 * a network, where the window falls to zero and memtunnel never polls for
 * a remote reply), one for waits on the clients alone.
 *
 * struct spin_state is the policy, pure and stepped with explicit times
 * (unit-tested); struct spin ties it to a libuv loop.
 */
#ifndef MEMTUNNEL_SPIN_H
#define MEMTUNNEL_SPIN_H

#include <stdint.h>
#include <uv.h>

#define SPIN_GROW_START_NS 50000ULL

enum spin_kind { SPIN_QUIET, SPIN_AWAITING, SPIN_KINDS };

struct spin_state {
    uint64_t max_ns;                 /* 0: never poll */
    uint64_t window_ns[SPIN_KINDS];
    uint64_t idle_since;             /* this idle period began; 0: busy */
    enum spin_kind kind;             /* the window this idle period uses */
    uint64_t poll_since;             /* polling began; 0: not polling */
    uint64_t polled_ns;              /* time spent polling, in all */
};

/* Windows start at zero: the loop polls only once it has seen short
 * idle periods. */
void spin_state_init(struct spin_state *s, uint64_t max_ns);

/*
 * The loop has nothing to do at `now` and is about to wait; `awaiting`
 * says whether an upstream owes a reply.  Returns 1 to wait without
 * sleeping (poll), 0 to sleep.  Called before every wait; the first call
 * of an idle period starts it.
 */
int spin_state_idle(struct spin_state *s, uint64_t now, int awaiting);

/*
 * An event came at `at` and ended the idle period (if one was running):
 * adapt its window to the period's length.
 */
void spin_state_event(struct spin_state *s, uint64_t at);

/* The window that kind of wait uses now, in nanoseconds. */
uint64_t spin_state_window(const struct spin_state *s, enum spin_kind kind);

struct spin {
    struct spin_state st;
    uv_idle_t idle;                  /* active: the loop polls */
    uv_prepare_t prepare;            /* decides, before every wait */
    unsigned awaiting;               /* connections owed a reply */
    int started;
    uint64_t reported_ns;            /* polled_ns at the last spin_take */
};

/*
 * Poll loop for up to max_ns after it runs out of work; 0 leaves the loop
 * as it is (and every other call a no-op).  The handles do not keep the
 * loop alive.
 */
void spin_start(struct spin *s, uv_loop_t *loop, uint64_t max_ns);

/* Close the handles (the loop frees nothing of ours: no close callback).
 * What was counted stays readable (spin_take_ms, st). */
void spin_stop(struct spin *s);

/* A socket event came (a read or an accept): ends an idle period. */
void spin_event(struct spin *s);

/* A connection now owes (+1) or no longer owes (-1) a reply. */
void spin_await(struct spin *s, int delta);

/* Milliseconds spent polling since the last call. */
uint64_t spin_take_ms(struct spin *s);

#endif
