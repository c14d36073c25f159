/*
 * conn: the life of a tunnelled connection: accept (or take a pre-warmed
 * spare), timers, close, and the registry of live connections.  How it
 * gets to OPEN is conn_setup.c's business, its bytes once open conn_io.c's;
 * the state diagram is in conn_int.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "advice.h"
#include "conn_int.h"

void conn_env_init(struct conn_env *env, uv_loop_t *loop,
                   const struct config *cfg, struct tls_ctx *tls,
                   struct spin *spin, conn_ended_fn ended, void *arg)
{
    env->loop = loop;
    env->cfg = cfg;
    env->tls = tls;
    env->spin = spin;
    env->ended = ended;
    env->arg = arg;
    env->conns = NULL;
    env->live = env->peak = 0;
    if (getrandom(&env->rng, sizeof env->rng, GRND_NONBLOCK) != sizeof env->rng)
        env->rng = uv_hrtime();
    env->rng |= 1;
}

size_t conn_live(const struct conn_env *env)
{
    return env->live;
}

/*
 * glibc keeps freed memory in its heaps; after a burst of connections that
 * would leave memtunnel's RSS at the peak for good.  When the connections
 * fall back to (near) none, hand the free memory back.
 */
static void trim(struct conn_env *env)
{
    size_t idle = env->cfg->nservers * env->cfg->prewarm;
    if (env->live <= idle && env->peak >= idle + 64) {
#ifdef __GLIBC__
        malloc_trim(0);
#endif
        env->peak = env->live;
    }
}

void conn_unref(struct conn *c)
{
    if (--c->pending > 0)
        return;
    struct conn_env *env = c->env;
    if (c->prev)
        c->prev->next = c->next;
    else
        env->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->counted)
        upstream_client_closed(c->up);
    if (c->spare)
        upstream_spare_gone(c->up, c->state == CONN_OPEN);
    if (c->tls_inited)
        tlsconn_free(&c->tls);
    buf_free(&c->upstream_inflight);
    buf_free(&c->to_client);
    buf_free(&c->client_inflight);
    buf_free(&c->auth_in);
    buf_free(&c->early);
    free(c->rz);
    uv_freeaddrinfo(c->addrs);
    free(c);
    env->live--;
    trim(env);
    env->ended(env->arg);
}

static void on_handle_closed(uv_handle_t *h)
{
    conn_unref(h->data);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_handle_closed);
}

/*
 * The one way a connection ends.  Logs `at` with the reason when given,
 * closes every handle (libuv cancels their pending requests, whose
 * callbacks then only conn_unref) and cancels a running DNS lookup.
 */
void conn_close(struct conn *c, enum log_level level, const char *at,
                enum reason why, const char *words)
{
    if (c->closing)
        return;
    c->closing = 1;
    conn_io_await(c, 0);
    if (c->refill_owed) {
        c->refill_owed = 0;
        upstream_spare_refill(c->up);
    }
    if (c->spare || c->pooled) {
        /* No client is affected: a failing upstream shows up in the warn
         * lines of real connections, without a line per retry. */
        level = LOG_DEBUG;
        if (c->parked)
            upstream_spare_unpark(c->up, c);
        if (c->pooled)
            upstream_pool_remove(c->up, c);
        c->parked = c->pooled = 0;
    }
    if (level <= LOG_WARN && c->state != CONN_OPEN)
        upstream_failed(c->up, c->state == CONN_AUTHENTICATING
                               ? UPSTREAM_AUTH_FAILED
                               : c->state != CONN_HANDSHAKING
                               ? UPSTREAM_CONNECT_FAILED
                               : reason_is_verify(why)
                               ? UPSTREAM_VERIFY_FAILED
                               : UPSTREAM_HANDSHAKE_FAILED);
    if (at) {
        char up[24], down[24];
        snprintf(up, sizeof up, "%llu", (unsigned long long)c->bytes_up);
        snprintf(down, sizeof down, "%llu", (unsigned long long)c->bytes_down);
        log_event(level, at, "upstream", c->up->name,
                  "reason", words ? words : reason_words(why),
                  "bytes_up", up, "bytes_down", down,
                  "hint", level <= LOG_WARN ? advice_hint(why) : NULL, NULL);
    }
    if (c->state == CONN_RESOLVING)
        uv_cancel((uv_req_t *)&c->resolve);
    close_handle((uv_handle_t *)&c->timer);
    if (c->has_client)
        close_handle((uv_handle_t *)&c->client);
    if (c->upstream_inited)
        close_handle((uv_handle_t *)&c->upstream);
}


void conn_close_uv(struct conn *c, enum log_level level, const char *at,
                   int err)
{
    conn_close(c, level, at, reason_from_uv(err), reason_uv_words(err));
}

void conn_close_tls(struct conn *c, enum log_level level, const char *at)
{
    conn_close(c, level, at, tlsconn_reason_code(&c->tls), tlsconn_reason(&c->tls));
}


/* ---- timer ------------------------------------------------------------ */

void conn_on_timer(uv_timer_t *timer)
{
    struct conn *c = timer->data;
    const struct config *cfg = c->env->cfg;

    if (c->lobby) {
        /* Silent since it connected (only --idle-timeout arms this). */
        conn_close(c, LOG_INFO, "idle-timeout", REASON_IDLE_TIMEOUT, NULL);
        return;
    }
    switch (c->state) {
    case CONN_RESOLVING:
    case CONN_CONNECTING:
        conn_close(c, LOG_WARN, "connect-failed", REASON_CONNECT_TIMEOUT, NULL);
        return;
    case CONN_HANDSHAKING:
        conn_close(c, LOG_WARN, "handshake-failed", REASON_HANDSHAKE_TIMEOUT,
                   NULL);
        return;
    case CONN_AUTHENTICATING:
        conn_auth_failed(c, REASON_AUTH_TIMEOUT, NULL);
        return;
    case CONN_OPEN:
        break;
    }
    if (c->spare || c->pooled) {
        conn_close(c, LOG_DEBUG, "spare-refreshed", REASON_SPARE_STALE, NULL);
        return;
    }
    uint64_t idle = uv_now(timer->loop) - c->last_active;
    if (c->client_eof && idle >= cfg->connect_timeout_ms) {
        if (c->draining)
            upstream_sentinel_unanswered(c->up);
        conn_close(c, LOG_DEBUG, "closed", REASON_UNFINISHED, NULL);
        return;
    }
    if (!c->client_eof && cfg->idle_timeout_ms && idle >= cfg->idle_timeout_ms) {
        conn_close(c, LOG_INFO, "idle-timeout", REASON_IDLE_TIMEOUT, NULL);
        return;
    }
    conn_arm_timer(c);
}

/* Re-arm the timer for what OPEN needs now; activity is read from
 * last_active when it fires, so traffic does not touch the timer. */
void conn_arm_timer(struct conn *c)
{
    const struct config *cfg = c->env->cfg;
    uint64_t limit = c->client_eof ? cfg->connect_timeout_ms
                                   : cfg->idle_timeout_ms;
    if (limit == 0) {
        uv_timer_stop(&c->timer);
        return;
    }
    uint64_t idle = uv_now(c->timer.loop) - c->last_active;
    uv_timer_start(&c->timer, conn_on_timer, idle < limit ? limit - idle : 1, 0);
}


/* ---- accepting ------------------------------------------------------------ */

static struct conn *conn_new(struct conn_env *env, struct upstream *up)
{
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        log_event(LOG_ERROR, "out-of-memory", "upstream", up->name, NULL);
        return NULL;
    }
    c->env = env;
    c->up = up;
    c->next = env->conns;
    if (env->conns)
        env->conns->prev = c;
    env->conns = c;
    if (++env->live > env->peak)
        env->peak = env->live;
    uv_timer_init(env->loop, &c->timer);
    c->timer.data = c;
    c->pending = 1;
    c->started_ns = uv_hrtime();
    c->started = c->last_active = uv_now(env->loop);
    return c;
}

void conn_prewarm(void *env, struct upstream *up)
{
    struct conn *c = conn_new(env, up);
    if (c == NULL)
        return;
    c->spare = 1;
    conn_setup_start(c);
}

/*
 * A ready spare whose server has not closed it.  The server's FIN may be
 * in the socket without its read event having run yet: peek for it.
 */
static struct conn *take_spare(struct upstream *up)
{
    struct conn *c;

    while ((c = upstream_spare_pop(up)) != NULL) {
        char byte;
        uv_os_fd_t fd;
        c->parked = 0;
        if (uv_fileno((uv_handle_t *)&c->upstream, &fd) == 0
            && recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
            conn_close(c, LOG_DEBUG, "spare-closed", REASON_SPARE_CLOSED, NULL);
            continue;
        }
        c->spare = 0;
        c->refill_owed = 1;
        upstream_spare_gone(up, 1);
        return c;
    }
    return NULL;
}

/*
 * A pooled connection (--reuse) that nothing came on since it was proved
 * idle: not a FIN, not a byte, not an error.  The read events may not have
 * run yet: peek.
 */
static struct conn *take_pooled(struct upstream *up, int proto)
{
    struct conn *c;

    while ((c = upstream_pool_pop(up, proto)) != NULL) {
        char byte;
        uv_os_fd_t fd;
        c->pooled = 0;
        ssize_t r = -1;
        if (uv_fileno((uv_handle_t *)&c->upstream, &fd) == 0)
            r = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return c;
        conn_close(c, LOG_DEBUG, "spare-closed",
                   r > 0 ? REASON_SPARE_UNASKED : REASON_SPARE_CLOSED, NULL);
    }
    return NULL;
}

/* Give the client of lobby L to c: a pooled connection or a spare. */
static int hand_over(struct conn *L, struct conn *c, int reused)
{
    uv_os_fd_t fd;
    int nfd;

    /* The socket moves by a duplicate: L's handle closes its own fd. */
    if (uv_fileno((uv_handle_t *)&L->client, &fd) < 0
        || (nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
        return -1;
    uv_tcp_init(c->env->loop, &c->client);
    c->client.data = c;
    if (uv_tcp_open(&c->client, nfd) < 0) {
        close(nfd);
        return -1;
    }
    c->has_client = 1;
    c->pending++;
    c->counted = L->counted;
    L->counted = 0;
    c->started = c->last_active = uv_now(c->env->loop);
    uv_timer_stop(&c->timer);
    if (reused) {
        upstream_reused(c->up);
        conn_setup_warn_unverified(c);
    }
    log_event(LOG_DEBUG, reused ? "reused" : "paired", "upstream", c->up->name,
              NULL);
    return 0;
}

void conn_lobby_first(struct conn *L, const char *p, size_t n)
{
    struct upstream *up = L->up;

    L->lobby = 0;
    uv_read_stop((uv_stream_t *)&L->client);
    L->client_reading = 0;
    int proto = (unsigned char)p[0] == 0x80 ? MCFRAME_BINARY : MCFRAME_TEXT;
    struct conn *c = take_pooled(up, proto);
    int reused = c != NULL;
    if (c == NULL)
        c = take_spare(up);
    if (c != NULL && hand_over(L, c, reused) == 0) {
        conn_close(L, LOG_DEBUG, NULL, REASON_DONE, NULL);
        conn_io_start(c);
        if (!c->closing)
            conn_io_client_bytes(c, p, n);
        return;
    }
    if (c != NULL)
        conn_close(c, LOG_DEBUG, "closed", REASON_OTHER, "cannot hand over");
    /* Nothing ready: a connection of its own, the bytes waiting. */
    if (buf_append(&L->early, p, n) < 0) {
        conn_close(L, LOG_ERROR, "out-of-memory", REASON_OUT_OF_MEMORY,
                   "keeping a client's first bytes");
        return;
    }
    L->started_ns = uv_hrtime();
    conn_setup_start(L);
}

void conn_accept(struct conn_env *env, struct upstream *up, struct listener *l)
{
    /* With connections pooled, the client's first byte says which one it
     * may have (memcached holds each to one protocol): it waits in a
     * lobby.  Without, it is paired at once. */
    int lobby = upstream_pool_any(up);
    struct conn *c = lobby ? NULL : take_spare(up);
    int fresh = c == NULL;

    if (fresh && (c = conn_new(env, up)) == NULL)
        return;
    uv_tcp_init(env->loop, &c->client);
    c->client.data = c;
    c->has_client = 1;
    c->pending++;

    if (listener_accept(l, &c->client) < 0) {
        conn_close(c, LOG_DEBUG, NULL, REASON_OTHER, NULL);
        return;
    }
    uv_tcp_nodelay(&c->client, 1);
    c->counted = 1;
    upstream_client_accepted(up);
    /* The loop's clock dates from when its poll returned; one turn that
     * accepts many connections (or a descheduled process) makes it old,
     * and a timeout armed from it fires early by that much. */
    uv_update_time(env->loop);
    c->started = c->last_active = uv_now(env->loop);
    if (lobby) {
        c->lobby = 1;
        conn_io_lobby_start(c);
        return;
    }
    if (fresh) {
        c->started_ns = uv_hrtime();
        conn_setup_start(c);
        return;
    }
    /* A pre-warmed, verified connection: the client's first request goes
     * out at once. */
    uv_timer_stop(&c->timer);
    log_event(LOG_DEBUG, "paired", "upstream", up->name, NULL);
    conn_io_start(c);
}

void conn_close_all(struct conn_env *env, int all)
{
    for (struct conn *c = env->conns, *next; c; c = next) {
        next = c->next;
        /* A lobby's client is served like an open one's. */
        if (all || (c->state != CONN_OPEN && !c->lobby) || c->spare
            || c->pooled)
            conn_close(c, LOG_DEBUG, "closed", REASON_STOPPING, NULL);
    }
}
