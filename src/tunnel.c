/*
 * tunnel: the process-wide lifecycle of the tunnel: one upstream and one
 * listener per server, in the order the servers were listed; the fatal
 * path; the stats timer; drain and close.  It wires the modules together
 * and owns none of their state: accepting is listener.c's, each upstream's
 * shared state upstream.c's, the connections and their registry conn.c's.
 */
#include "tunnel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "listener.h"
#include "log.h"
#include "servers.h"
#include "spin.h"
#include "upstream.h"

/* One server: its upstream state and the local listener that leads to it. */
struct node {
    struct tunnel *tunnel;
    struct upstream up;
    struct listener listener;
};

struct tunnel {
    uv_loop_t *loop;
    const struct config *cfg;
    struct node *nodes;
    size_t nnodes;
    struct listener_reserve reserve;     /* shared by the listeners */
    struct spin spin;                    /* --busy-poll */
    int closed;
    uv_timer_t drain_timer;              /* bounds tunnel_close's grace */
    int draining;
    tunnel_fatal_cb on_fatal;
    void *fatal_arg;
    int fatal;
    uv_timer_t stats_timer;
    int stats_on;
    struct conn_env env;                 /* the connections (large: last) */
};

static void log_stats(struct tunnel *t)
{
    for (size_t i = 0; i < t->nnodes; i++)
        upstream_log_stats(&t->nodes[i].up);
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

/* ---- the hooks the lower modules report through ---------------------------- */

static void on_listener_failed(void *arg, struct listener *l, const char *reason)
{
    struct node *n = arg;
    fatal_at(n->tunnel, "listen-failed", l->local, reason);
}

static void on_client(void *arg, struct listener *l)
{
    struct node *n = arg;
    spin_event(&n->tunnel->spin);
    conn_accept(&n->tunnel->env, &n->up, l);
}

/* A connection was freed: its descriptor may refill the reserve, and a
 * draining tunnel may be done. */
static void on_conn_ended(void *arg)
{
    struct tunnel *t = arg;
    if (!t->closed)
        listener_reserve_take(&t->reserve);
    if (t->draining && conn_live(&t->env) == 0) {
        t->draining = 0;
        uv_close((uv_handle_t *)&t->drain_timer, NULL);
    }
}

/* ---- start ------------------------------------------------------------------ */

struct tunnel *tunnel_new(uv_loop_t *loop, const struct config *cfg,
                          struct tls_ctx *tls)
{
    struct tunnel *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->nodes = calloc(cfg->nservers, sizeof *t->nodes);
    if (t->nodes == NULL) {
        free(t);
        return NULL;
    }
    t->loop = loop;
    t->cfg = cfg;
    t->nnodes = cfg->nservers;
    listener_reserve_init(&t->reserve);
    conn_env_init(&t->env, loop, cfg, tls, &t->spin, on_conn_ended, t);
    for (size_t i = 0; i < t->nnodes; i++) {
        t->nodes[i].tunnel = t;
        if (upstream_init(&t->nodes[i].up, loop, &cfg->servers[i], cfg->sni,
                          cfg->prewarm) < 0) {
            t->nnodes = i + 1;
            tunnel_free(t);
            return NULL;
        }
        upstream_set_reuse(&t->nodes[i].up, cfg->reuse, cfg->auth);
    }
    return t;
}

static int listen_one(struct tunnel *t, struct node *n, uint16_t port)
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
    return listener_open(&n->listener, t->loop, (struct sockaddr *)&ss, flags,
                         &t->reserve, on_client, on_listener_failed, n);
}

/* Why listening on the i-th address failed, naming it. */
static void listen_error(struct tunnel *t, size_t i, uint16_t port, int r,
                         struct run_error *err)
{
    const struct config *cfg = t->cfg;
    char addr[CONFIG_HOST_MAX + 10];
    struct config_server s = { .port = port, .family = cfg->listen_family };

    snprintf(s.host, sizeof s.host, "%s", cfg->listen_host);
    servers_str(&s, addr, sizeof addr);
    err->at = "listen-failed";
    err->setting = cfg->listen_explicit ? "--listen" : NULL;
    snprintf(err->msg, sizeof err->msg, "cannot listen on %.64s for "
             "%.200s: %s%s", addr, t->nodes[i].up.name, uv_strerror(r),
             r == UV_EADDRINUSE ? " (choose another port with --listen)" : "");
}

int tunnel_listen(struct tunnel *t, struct run_error *err)
{
    const struct config *cfg = t->cfg;

    for (size_t i = 0; i < t->nnodes; i++) {
        uint16_t port = cfg->listen_port ? (uint16_t)(cfg->listen_port + i) : 0;
        int r = listen_one(t, &t->nodes[i], port);
        if (r < 0) {
            listen_error(t, i, port, r, err);
            for (size_t k = 0; k <= i; k++)
                listener_close(&t->nodes[k].listener);
            return r;
        }
    }
    listener_reserve_ready(&t->reserve, t->loop);
    if (!cfg->listen_loopback)
        log_event(LOG_WARN, "listening-publicly", "local",
                  t->nodes[0].listener.local, "reason", "the listen address "
                  "is not loopback: anyone who can reach it can use the cache "
                  "unencrypted", NULL);
    for (size_t i = 0; i < t->nnodes; i++)
        log_event(LOG_INFO, "listening", "local", t->nodes[i].listener.local,
                  "upstream", t->nodes[i].up.name, NULL);
    for (size_t i = 0; i < t->nnodes; i++)
        upstream_start(&t->nodes[i].up, conn_prewarm, &t->env);
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
    for (size_t i = first; i < first + count && i < t->nnodes; i++) {
        int w = snprintf(buf + n, len > n ? len - n : 0, "%s%s",
                         i > first ? "," : "", t->nodes[i].listener.local);
        if (w < 0)
            break;
        n += (size_t)w;
    }
    return n;
}

/* ---- fatal, drain and close --------------------------------------------------- */

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
    conn_close_all(&((struct tunnel *)timer->data)->env, 1);
}

void tunnel_close(struct tunnel *t, uint32_t grace_ms)
{
    if (t->closed)
        return;
    t->closed = 1;
    for (size_t i = 0; i < t->nnodes; i++) {
        listener_close(&t->nodes[i].listener);
        upstream_stop(&t->nodes[i].up);
    }
    spin_stop(&t->spin);
    if (t->stats_on)
        uv_close((uv_handle_t *)&t->stats_timer, NULL);
    conn_close_all(&t->env, grace_ms == 0);
    if (conn_live(&t->env) == 0)
        return;
    /* Open connections end by themselves (their clients have gone or are
     * going); the timer bounds the wait.  on_conn_ended closes it early
     * when the last connection is freed. */
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
    for (size_t i = 0; i < t->nnodes; i++)
        upstream_free(&t->nodes[i].up);
    listener_reserve_free(&t->reserve);
    free(t->nodes);
    free(t);
}
