/*
 * tunnel: the listeners, one per upstream in the order the servers were
 * listed, and the tunnel's lifecycle (listen, fatal errors, drain, close).
 * What happens to each accepted connection is conn.c's business.
 */
#include "tunnel.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>

#include "exitcode.h"
#include "listener.h"
#include "log.h"
#include "tlsconn.h"
#include "tunnel_int.h"

#define LISTEN_BACKLOG 4096

void tunnel_sample_handshake(struct upstream *up, uint32_t us)
{
    struct tunnel *t = up->tunnel;
    /* xorshift32: enough randomness to sample fairly. */
    t->rng ^= t->rng << 13;
    t->rng ^= t->rng >> 17;
    t->rng ^= t->rng << 5;
    stats_handshake(&up->stats, us, t->rng);
}

static void log_stats(struct tunnel *t)
{
    for (size_t i = 0; i < t->nups; i++) {
        const char *kv[24];
        char text[256];
        struct upstream *up = &t->ups[i];
        if (stats_pairs(&up->stats, up->name, kv, sizeof kv / sizeof kv[0],
                        text, sizeof text) > 0)
            log_kv(LOG_INFO, "stats", kv);
        stats_next_interval(&up->stats);
    }
    /* The loop's own line: the time busy-polling took, so that it can be
     * seen and weighed (also in the last line, after spin_stop; st
     * stays zeroed when polling is off). */
    if (t->spin.st.max_ns > 0) {
        char ms[24], quiet[24], awaiting[24];
        snprintf(ms, sizeof ms, "%llu", (unsigned long long)spin_take_ms(&t->spin));
        snprintf(quiet, sizeof quiet, "%llu", (unsigned long long)
                 (spin_state_window(&t->spin.st, SPIN_QUIET) / 1000));
        snprintf(awaiting, sizeof awaiting, "%llu", (unsigned long long)
                 (spin_state_window(&t->spin.st, SPIN_AWAITING) / 1000));
        log_event(LOG_INFO, "stats", "count#memtunnel.busy_poll_ms", ms,
                  "sample#memtunnel.busy_poll_window_us.quiet", quiet,
                  "sample#memtunnel.busy_poll_window_us.awaiting", awaiting,
                  NULL);
    }
}

static void on_stats_timer(uv_timer_t *timer)
{
    log_stats(timer->data);
}

/* ---- pre-warmed connections ---------------------------------------------
 *
 * Each upstream keeps --prewarm verified TLS connections ready, so that an
 * accepted client is paired at once and its first request does not wait
 * for TCP + TLS setup.  A spare that goes stale is replaced at once; one
 * that fails to come up is retried after a backoff that doubles from
 * 100 ms to 30 s, so a down upstream costs a few attempts a minute.
 *
 * A taken spare is replaced once the client that took it has its first
 * reply, or REFILL_DEFER_MS after, whichever comes first.  Started at once,
 * the replacement's handshake (our key exchange; the server's signature,
 * often on the very thread that serves the client) would run while that
 * first request waits: measured, it doubled the time to the first reply.
 */
#define SPARE_BACKOFF_MIN_MS 100
#define SPARE_BACKOFF_MAX_MS 30000
#define REFILL_DEFER_MS 10

static void fill_spares(struct upstream *up)
{
    const struct config *cfg = up->tunnel->cfg;
    if (up->refill_deferred) {
        up->refill_deferred = 0;
        uv_timer_stop(&up->refill_timer);
    }
    while (!up->tunnel->closed && up->spares < cfg->prewarm) {
        up->spares++;
        conn_prewarm(up);
    }
}

static void on_spare_timer(uv_timer_t *timer)
{
    fill_spares(timer->data);
}

void tunnel_spare_refill(struct upstream *up)
{
    if (up->refill_deferred && !up->tunnel->closed)
        fill_spares(up);
}

void tunnel_spare_gone(struct upstream *up, int ready)
{
    up->spares--;
    if (up->tunnel->closed)
        return;
    if (ready) {
        up->spare_failures = 0;
        if (!up->refill_deferred) {
            up->refill_deferred = 1;
            uv_timer_start(&up->refill_timer, on_spare_timer, REFILL_DEFER_MS, 0);
        }
        return;
    }
    if (uv_is_active((uv_handle_t *)&up->spare_timer))
        return;
    uint64_t ms = SPARE_BACKOFF_MIN_MS;
    for (unsigned i = 0; i < up->spare_failures && ms < SPARE_BACKOFF_MAX_MS; i++)
        ms *= 2;
    if (ms > SPARE_BACKOFF_MAX_MS)
        ms = SPARE_BACKOFF_MAX_MS;
    up->spare_failures++;
    uv_timer_start(&up->spare_timer, on_spare_timer, ms, 0);
}

/*
 * MEMTUNNEL_TEST_NO_RESERVE=1 (tests only) keeps no reserve descriptor, as
 * when lookups on the thread pool have taken it back, so that running out
 * of descriptors pauses the listener for certain.  libuv keeps one of its
 * own for the same trick (emfile_fd, before our callback runs); that one
 * is moved above 1000, where giving it up frees no descriptor a process
 * held to a lower limit could use.
 */
static void reserve_take(struct tunnel *t)
{
    if (t->reserve_fd < 0 && !t->no_reserve)
        t->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/*
 * Out of descriptors, the waiting connections cannot be accepted, and the
 * listener stays readable: the loop would spin.  Like libuv's own trick
 * (which needs a descriptor reserved when the loop was made), give up the
 * one descriptor kept for this, accept and close what waits, and take it
 * back.  Those clients see their connection closed instead of hanging.
 */
static unsigned shed(struct tunnel *t, int lfd)
{
    unsigned n = 0;
    int fd;

    if (t->reserve_fd >= 0)
        close(t->reserve_fd);
    t->reserve_fd = -1;
    while (n < 10000 && (fd = accept(lfd, NULL, NULL)) >= 0) {
        close(fd);
        n++;
    }
    reserve_take(t);
    return n;
}

static void log_accept_failed(struct upstream *up, int status, unsigned shed);

/* The tunnel cannot go on: log why, once, and take the fatal path. */
static void fatal_at(struct tunnel *t, const char *at, const char *local,
                     const char *reason)
{
    if (t->fatal)
        return;
    t->fatal = 1;
    log_event(LOG_ERROR, at, "local", local, "reason", reason, NULL);
    if (t->on_fatal)
        t->on_fatal(t->fatal_arg, reason);
}

/* A listener that cannot accept would leave the app without its cache. */
static void listener_failed(struct upstream *up, int err)
{
    fatal_at(up->tunnel, "listen-failed", up->local, uv_strerror(err));
}

/*
 * When not even the reserve descriptor could be had back (other threads,
 * such as DNS lookups, took it), waiting connections cannot be accepted
 * and libuv would retry at once, for ever.  The listener's handle is
 * closed then, but not the listening socket: a duplicate taken when it was
 * bound (keep_fd) holds the port, so no other process can bind it and
 * receive the app's traffic and credentials, and clients that come
 * meanwhile wait in the kernel's backlog.  Every REOPEN_MS the handle is
 * made again on a new duplicate; while no descriptor is free for it, what
 * waits is shed if the reserve allows, else it waits on.
 */
#define REOPEN_MS 200

static void on_reopen(uv_timer_t *timer);

static void on_paused(uv_handle_t *h)
{
    struct upstream *up = h->data;
    up->listening = 0;
    if (!up->tunnel->closed)
        uv_timer_start(&up->reopen_timer, on_reopen, REOPEN_MS, 0);
}

static void on_listener_gone(uv_handle_t *h)
{
    struct upstream *up = h->data;
    up->listening = 0;
}

static void on_accept(uv_stream_t *listener, int status);

static void on_reopen(uv_timer_t *timer)
{
    struct upstream *up = timer->data;
    struct tunnel *t = up->tunnel;
    int fd, r;

    if (t->closed || t->fatal)
        return;
    reserve_take(t);
    if ((fd = fcntl(up->keep_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
        r = -errno;
        if (r != UV_EMFILE && r != UV_ENFILE) {
            listener_failed(up, r);
            return;
        }
        unsigned n = shed(t, up->keep_fd);
        if (n > 0)
            log_accept_failed(up, r, n);
        uv_timer_start(&up->reopen_timer, on_reopen, REOPEN_MS, 0);
        return;
    }
    if ((r = uv_tcp_init(t->loop, &up->listener)) < 0) {
        close(fd);
        listener_failed(up, r);
        return;
    }
    up->listener.data = up;
    up->listening = 1;
    if ((r = uv_tcp_open(&up->listener, fd)) < 0)
        close(fd);              /* not the handle's */
    if (r < 0 || (r = uv_listen((uv_stream_t *)&up->listener, LISTEN_BACKLOG,
                                on_accept)) < 0) {
        uv_close((uv_handle_t *)&up->listener, on_listener_gone);
        listener_failed(up, r);
        return;
    }
    up->paused = 0;
    log_event(LOG_INFO, "listener-resumed", "local", up->local, NULL);
}

static void pause_listener(struct upstream *up)
{
    if (up->paused)
        return;
    up->paused = 1;
    log_event(LOG_WARN, "listener-paused", "local", up->local, "reason",
              "out of file descriptors: new clients wait until some "
              "close (raise the limit: ulimit -n)", NULL);
    uv_close((uv_handle_t *)&up->listener, on_paused);
}

/* At most one accept-failed line a second per listener, with a count. */
static void log_accept_failed(struct upstream *up, int status, unsigned shed)
{
    uint64_t now = uv_now(up->tunnel->loop);
    up->accept_failures++;
    up->shed += shed;
    if (up->accept_logged && now - up->accept_logged < 1000)
        return;
    char failures[24], closed[24];
    snprintf(failures, sizeof failures, "%u", up->accept_failures);
    snprintf(closed, sizeof closed, "%u", up->shed);
    log_event(LOG_WARN, "accept-failed", "local", up->local,
              "reason", uv_strerror(status), "times", failures,
              "closed_unserved", closed,
              "hint", status == UV_EMFILE || status == UV_ENFILE
                      ? "out of file descriptors: raise the limit (ulimit -n)"
                      : NULL, NULL);
    up->accept_logged = now;
    up->accept_failures = 0;
    up->shed = 0;
}

static void on_accept(uv_stream_t *listener, int status)
{
    struct upstream *up = listener->data;

    spin_event(&up->tunnel->spin);
    if (status < 0) {
        uv_os_fd_t lfd;
        switch (listener_accept_error_kind(status)) {
        case LISTENER_SHED: {
            unsigned n = 0;
            if (uv_fileno((uv_handle_t *)&up->listener, &lfd) == 0)
                n = shed(up->tunnel, lfd);
            log_accept_failed(up, status, n);
            /* Nothing shed although a client waits: another thread (a DNS
             * lookup) took the descriptor given up, and libuv would call
             * again at once, for as long as that race goes on.  Same when
             * the reserve could not be had back. */
            if (n == 0 || up->tunnel->reserve_fd < 0)
                pause_listener(up);
            return;
        }
        case LISTENER_RETRY:
            /* That one connection is lost; libuv goes on accepting. */
            log_accept_failed(up, status, 0);
            return;
        case LISTENER_FATAL:
            /* Closed, or libuv would call again at once; the port stays
             * held (keep_fd) until the tunnel closes. */
            uv_close((uv_handle_t *)listener, on_listener_gone);
            listener_failed(up, status);
            return;
        }
        return;
    }
    conn_accept(up);
}

struct tunnel *tunnel_new(uv_loop_t *loop, const struct config *cfg,
                          struct tls_ctx *tls)
{
    struct tunnel *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->ups = calloc(cfg->nservers, sizeof *t->ups);
    if (t->ups == NULL) {
        free(t);
        return NULL;
    }
    t->loop = loop;
    t->cfg = cfg;
    t->rng = (uint32_t)uv_hrtime() | 1;
    t->reserve_fd = -1;
    t->no_reserve = getenv("MEMTUNNEL_TEST_NO_RESERVE") != NULL;
    t->tls = tls;
    t->nups = cfg->nservers;
    for (size_t i = 0; i < t->nups; i++) {
        struct upstream *up = &t->ups[i];
        const struct config_server *s = &cfg->servers[i];
        up->tunnel = t;
        up->keep_fd = -1;
        up->server = s;
        config_server_str(s, up->name, sizeof up->name);
        snprintf(up->port, sizeof up->port, "%u", (unsigned)s->port);
        up->tls_name = cfg->sni ? cfg->sni : s->host;
        up->tls_name_is_ip = cfg->sni ? 0 : s->family != CONFIG_NAME;
        if (s->family == CONFIG_IPV4)
            up->have_addr = uv_ip4_addr(s->host, s->port,
                                        (struct sockaddr_in *)&up->addr) == 0;
        else if (s->family == CONFIG_IPV6)
            up->have_addr = uv_ip6_addr(s->host, s->port,
                                        (struct sockaddr_in6 *)&up->addr) == 0;
    }
    return t;
}

static int listen_one(struct tunnel *t, struct upstream *up, uint16_t port)
{
    const struct config *cfg = t->cfg;
    struct sockaddr_storage ss;
    unsigned flags = 0;
    int r;

    if (cfg->listen_family == CONFIG_IPV6) {
        r = uv_ip6_addr(cfg->listen_host, port, (struct sockaddr_in6 *)&ss);
        flags = UV_TCP_IPV6ONLY;
    } else {
        r = uv_ip4_addr(cfg->listen_host, port, (struct sockaddr_in *)&ss);
    }
    if (r < 0)
        return r;
    if ((r = uv_tcp_init(t->loop, &up->listener)) < 0)
        return r;
    up->listener.data = up;
    up->listening = 1;
    if ((r = uv_tcp_bind(&up->listener, (struct sockaddr *)&ss, flags)) < 0
        || (r = uv_listen((uv_stream_t *)&up->listener, LISTEN_BACKLOG,
                          on_accept)) < 0)
        return r;

    struct sockaddr_storage bound;
    int len = sizeof bound;
    char ip[64];
    if ((r = uv_tcp_getsockname(&up->listener, (struct sockaddr *)&bound,
                                &len)) < 0)
        return r;
    /* The port stays ours even while the handle is closed (pause_listener). */
    uv_os_fd_t fd;
    if ((r = uv_fileno((uv_handle_t *)&up->listener, &fd)) < 0)
        return r;
    if ((up->keep_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
        return -errno;
    if (bound.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&bound, ip, sizeof ip);
        snprintf(up->local, sizeof up->local, "[%s]:%u", ip,
                 ntohs(((struct sockaddr_in6 *)&bound)->sin6_port));
    } else {
        uv_ip4_name((struct sockaddr_in *)&bound, ip, sizeof ip);
        snprintf(up->local, sizeof up->local, "%s:%u", ip,
                 ntohs(((struct sockaddr_in *)&bound)->sin_port));
    }
    return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    (void)h;
}

static void close_listeners(struct tunnel *t)
{
    for (size_t i = 0; i < t->nups; i++) {
        struct upstream *up = &t->ups[i];
        if (up->listening && !uv_is_closing((uv_handle_t *)&up->listener))
            uv_close((uv_handle_t *)&up->listener, on_listener_closed);
        if (up->keep_fd >= 0)
            close(up->keep_fd);
        up->keep_fd = -1;
    }
}

int tunnel_listen(struct tunnel *t, struct config_error *err)
{
    const struct config *cfg = t->cfg;

    for (size_t i = 0; i < t->nups; i++) {
        struct upstream *up = &t->ups[i];
        uint16_t port = cfg->listen_port ? (uint16_t)(cfg->listen_port + i) : 0;
        int r = listen_one(t, up, port);
        if (r < 0) {
            char addr[CONFIG_HOST_MAX + 10];
            struct config_server s = { .port = port, .family = cfg->listen_family };
            snprintf(s.host, sizeof s.host, "%s", cfg->listen_host);
            config_server_str(&s, addr, sizeof addr);
            err->status = EXIT_SOFTWARE;
            snprintf(err->name, sizeof err->name, "%s",
                     cfg->listen_explicit ? "--listen" : "");
            snprintf(err->msg, sizeof err->msg, "cannot listen on %.64s for "
                     "%.200s: %s%s", addr, up->name, uv_strerror(r),
                     r == UV_EADDRINUSE ? " (choose another port with --listen)" : "");
            close_listeners(t);
            return r;
        }
    }
    reserve_take(t);
    if (t->no_reserve && t->loop->emfile_fd >= 0) {
        int high = fcntl(t->loop->emfile_fd, F_DUPFD_CLOEXEC, 1000);
        if (high >= 0) {
            close(t->loop->emfile_fd);
            t->loop->emfile_fd = high;
        }
    }
    if (!cfg->listen_loopback)
        log_event(LOG_WARN, "listening-publicly", "local", t->ups[0].local,
                  "reason", "the listen address is not loopback: anyone who can "
                  "reach it can use the cache unencrypted", NULL);
    for (size_t i = 0; i < t->nups; i++)
        log_event(LOG_INFO, "listening", "local", t->ups[i].local,
                  "upstream", t->ups[i].name, NULL);
    for (size_t i = 0; i < t->nups; i++) {
        uv_timer_init(t->loop, &t->ups[i].spare_timer);
        t->ups[i].spare_timer.data = &t->ups[i];
        uv_timer_init(t->loop, &t->ups[i].refill_timer);
        t->ups[i].refill_timer.data = &t->ups[i];
        uv_timer_init(t->loop, &t->ups[i].reopen_timer);
        t->ups[i].reopen_timer.data = &t->ups[i];
        fill_spares(&t->ups[i]);
    }
    t->spares_on = 1;
    spin_start(&t->spin, t->loop, (uint64_t)cfg->busy_poll_us * 1000);
    if (cfg->stats_interval > 0) {
        uint64_t ms = (uint64_t)cfg->stats_interval * 1000;
        uv_timer_init(t->loop, &t->stats_timer);
        t->stats_timer.data = t;
        uv_timer_start(&t->stats_timer, on_stats_timer, ms, ms);
        t->stats_on = 1;
    }
    return 0;
}

size_t tunnel_addresses(const struct tunnel *t, size_t first, size_t count,
                        char *buf, size_t len)
{
    size_t n = 0;
    if (len)
        buf[0] = '\0';
    for (size_t i = first; i < first + count && i < t->nups; i++) {
        int w = snprintf(buf + n, len > n ? len - n : 0, "%s%s",
                         i > first ? "," : "", t->ups[i].local);
        if (w < 0)
            break;
        n += (size_t)w;
    }
    return n;
}

void tunnel_on_fatal(struct tunnel *t, tunnel_fatal_cb cb, void *arg)
{
    t->on_fatal = cb;
    t->fatal_arg = arg;
}

void tunnel_fatal(struct tunnel *t, const char *reason)
{
    fatal_at(t, "tunnel-failed", NULL, reason);
}

static void on_drain_timer(uv_timer_t *timer)
{
    conn_close_all(timer->data, 1);
}

/*
 * glibc keeps freed memory in its heaps; after a burst of connections that
 * would leave memtunnel's RSS at the peak for good.  When the connections
 * fall back to (near) none, hand the free memory back.
 */
void tunnel_conn_count(struct tunnel *t, int delta)
{
    t->nconns += delta;
    if (delta < 0 && !t->closed)
        reserve_take(t);
    if (t->nconns > t->peak)
        t->peak = t->nconns;
    size_t idle = t->nups * t->cfg->prewarm;
    if (delta < 0 && t->nconns <= idle && t->peak >= idle + 64) {
#ifdef __GLIBC__
        malloc_trim(0);
#endif
        t->peak = t->nconns;
    }
}

void tunnel_drained(struct tunnel *t)
{
    uv_close((uv_handle_t *)&t->drain_timer, NULL);
}

void tunnel_close(struct tunnel *t, uint32_t grace_ms)
{
    if (t->closed)
        return;
    t->closed = 1;
    close_listeners(t);
    spin_stop(&t->spin);
    if (t->stats_on)
        uv_close((uv_handle_t *)&t->stats_timer, NULL);
    if (t->spares_on)
        for (size_t i = 0; i < t->nups; i++) {
            uv_close((uv_handle_t *)&t->ups[i].spare_timer, NULL);
            uv_close((uv_handle_t *)&t->ups[i].refill_timer, NULL);
            uv_close((uv_handle_t *)&t->ups[i].reopen_timer, NULL);
        }
    conn_close_all(t, grace_ms == 0);
    if (t->conns == NULL)
        return;
    /* Open connections end by themselves (their clients have gone or are
     * going); the timer bounds the wait.  unref() closes it early when the
     * last connection is freed. */
    t->draining = 1;
    uv_timer_init(t->loop, &t->drain_timer);
    t->drain_timer.data = t;
    uv_timer_start(&t->drain_timer, on_drain_timer, grace_ms, 0);
}

void tunnel_free(struct tunnel *t)
{
    if (t == NULL)
        return;
    /* The final line: what happened since the last one. */
    if (t->stats_on)
        log_stats(t);
    for (size_t i = 0; i < t->nups; i++)
        tlsconn_session_free(t->ups[i].session);
    if (t->reserve_fd >= 0)
        close(t->reserve_fd);
    free(t->ups);
    free(t);
}
