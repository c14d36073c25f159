/*
 * spin: adaptive busy-polling of the event loop (see spin.h).
 */
#include "spin.h"

#include <sched.h>
#include <string.h>

void spin_state_init(struct spin_state *s, uint64_t max_ns)
{
    memset(s, 0, sizeof *s);
    s->max_ns = max_ns;
}

uint64_t spin_state_window(const struct spin_state *s, enum spin_kind kind)
{
    return s->window_ns[kind];
}

static void stop_polling(struct spin_state *s, uint64_t now)
{
    if (s->poll_since == 0)
        return;
    if (now > s->poll_since)
        s->polled_ns += now - s->poll_since;
    s->poll_since = 0;
}

int spin_state_idle(struct spin_state *s, uint64_t now, int awaiting)
{
    if (s->max_ns == 0)
        return 0;
    if (s->idle_since == 0) {
        s->idle_since = now;
        s->kind = awaiting ? SPIN_AWAITING : SPIN_QUIET;
    }
    /* A timer may have woken a sleeping loop: the period goes on, and
     * polling does not start again once its window has passed. */
    if (now - s->idle_since < s->window_ns[s->kind]) {
        if (s->poll_since == 0)
            s->poll_since = now;
        return 1;
    }
    stop_polling(s, now);
    return 0;
}

/*
 * The idle period lasted `gap`.  Caught while polling: the window is
 * right.  Missed but within the maximum: a longer window would have caught
 * it.  Longer than the maximum: no window would, so poll less.
 */
static void adapt(uint64_t *window, uint64_t gap, uint64_t max)
{
    if (gap <= *window)
        return;
    if (gap <= max) {
        uint64_t start = SPIN_GROW_START_NS < max ? SPIN_GROW_START_NS : max;
        uint64_t w = *window * 2;
        if (w < start)
            w = start;
        *window = w < max ? w : max;
    } else {
        *window /= 2;
    }
}

void spin_state_event(struct spin_state *s, uint64_t at)
{
    if (s->max_ns == 0 || s->idle_since == 0)
        return;
    stop_polling(s, at);
    adapt(&s->window_ns[s->kind], at > s->idle_since ? at - s->idle_since : 0,
          s->max_ns);
    s->idle_since = 0;
}

/* ---- the libuv side ----------------------------------------------------- */

/* Runs on every turn of the loop while polling: let whatever else can run
 * on this CPU go first.  Not right after an event: the loop is busy then,
 * and a yield would only cost a system call. */
static void on_idle(uv_idle_t *h)
{
    struct spin *s = h->data;
    if (s->st.idle_since != 0)
        sched_yield();
}

/* Runs before every wait: an active idle handle makes libuv's wait not
 * block. */
static void on_prepare(uv_prepare_t *h)
{
    struct spin *s = h->data;
    int poll = spin_state_idle(&s->st, uv_hrtime(), s->awaiting > 0);
    int active = uv_is_active((uv_handle_t *)&s->idle);

    if (poll && !active)
        uv_idle_start(&s->idle, on_idle);
    else if (!poll && active)
        uv_idle_stop(&s->idle);
}

void spin_start(struct spin *s, uv_loop_t *loop, uint64_t max_ns)
{
    memset(s, 0, sizeof *s);
    if (max_ns == 0)
        return;
    /* Both always succeed (libuv's documentation says so). */
    uv_idle_init(loop, &s->idle);
    uv_prepare_init(loop, &s->prepare);
    spin_state_init(&s->st, max_ns);
    s->idle.data = s->prepare.data = s;
    uv_unref((uv_handle_t *)&s->idle);
    uv_unref((uv_handle_t *)&s->prepare);
    uv_prepare_start(&s->prepare, on_prepare);
    s->started = 1;
}

void spin_stop(struct spin *s)
{
    if (!s->started)
        return;
    s->started = 0;
    uv_close((uv_handle_t *)&s->idle, NULL);
    uv_close((uv_handle_t *)&s->prepare, NULL);
}

void spin_event(struct spin *s)
{
    /* Only the first event of a turn ends the idle period: one clock
     * read per turn. */
    if (s->started && s->st.idle_since != 0)
        spin_state_event(&s->st, uv_hrtime());
}

void spin_await(struct spin *s, int delta)
{
    if (delta > 0)
        s->awaiting++;
    else if (s->awaiting > 0)
        s->awaiting--;
}

uint64_t spin_take_ms(struct spin *s)
{
    uint64_t ms = (s->st.polled_ns - s->reported_ns) / 1000000;
    s->reported_ns += ms * 1000000;
    return ms;
}
