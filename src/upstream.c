/*
 * upstream: one upstream node's shared state (see upstream.h).
 */
#include "upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "servers.h"
#include "tlsconn.h"

/* ---- identity ------------------------------------------------------------ */

int upstream_init(struct upstream *up, uv_loop_t *loop,
                  const struct config_server *s, const char *sni,
                  unsigned prewarm)
{
    memset(up, 0, sizeof *up);
    up->server = s;
    up->loop = loop;
    up->prewarm = prewarm;
    servers_str(s, up->name, sizeof up->name);
    snprintf(up->port, sizeof up->port, "%u", (unsigned)s->port);
    up->tls_name = sni ? sni : s->host;
    up->tls_name_is_ip = sni ? 0 : s->family != CONFIG_NAME;
    if (s->family == CONFIG_IPV4)
        up->have_addr = uv_ip4_addr(s->host, s->port,
                                    (struct sockaddr_in *)&up->addr) == 0;
    else if (s->family == CONFIG_IPV6)
        up->have_addr = uv_ip6_addr(s->host, s->port,
                                    (struct sockaddr_in6 *)&up->addr) == 0;
    up->rng = (uint32_t)uv_hrtime() | 1;
    if (prewarm > 0 && (up->ready = calloc(prewarm, sizeof *up->ready)) == NULL)
        return -1;
    return 0;
}

void upstream_free(struct upstream *up)
{
    tlsconn_session_free(up->session);
    up->session = NULL;
    free(up->ready);
    up->ready = NULL;
}

/* ---- counters ------------------------------------------------------------ */

void upstream_client_accepted(struct upstream *up)
{
    up->stats.active++;
    up->stats.accepted++;
}

void upstream_client_closed(struct upstream *up)
{
    up->stats.active--;
}

void upstream_failed(struct upstream *up, enum upstream_failure f)
{
    switch (f) {
    case UPSTREAM_CONNECT_FAILED: up->stats.connect_failures++; break;
    case UPSTREAM_HANDSHAKE_FAILED: up->stats.handshake_failures++; break;
    case UPSTREAM_VERIFY_FAILED: up->stats.verify_failures++; break;
    case UPSTREAM_AUTH_FAILED: up->stats.auth_failures++; break;
    }
}

#define AUTH_LOG_INTERVAL_MS (10 * 1000)

int upstream_auth_log_due(struct upstream *up, uint64_t now,
                          unsigned *suppressed)
{
    if (up->auth_logged && now - up->auth_logged_at < AUTH_LOG_INTERVAL_MS) {
        up->auth_suppressed++;
        return 0;
    }
    *suppressed = up->auth_suppressed;
    up->auth_suppressed = 0;
    up->auth_logged = 1;
    up->auth_logged_at = now;
    return 1;
}

void upstream_bytes(struct upstream *up, uint64_t up_bytes, uint64_t down_bytes)
{
    up->stats.bytes_up += up_bytes;
    up->stats.bytes_down += down_bytes;
}

void upstream_handshake_done(struct upstream *up, uint32_t us)
{
    /* xorshift32: enough randomness to sample fairly. */
    up->rng ^= up->rng << 13;
    up->rng ^= up->rng >> 17;
    up->rng ^= up->rng << 5;
    stats_handshake(&up->stats, us, up->rng);
}

void upstream_log_stats(struct upstream *up)
{
    const char *kv[24];
    char text[256];

    if (stats_pairs(&up->stats, up->name, kv, sizeof kv / sizeof kv[0],
                    text, sizeof text) > 0)
        log_kv(LOG_INFO, "stats", kv);
    stats_next_interval(&up->stats);
}

/* ---- pre-warmed spares ----------------------------------------------------
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
    if (up->refill_deferred) {
        up->refill_deferred = 0;
        uv_timer_stop(&up->refill_timer);
    }
    while (!up->stopped && up->spares < up->prewarm) {
        up->spares++;
        up->start_spare(up->spare_arg, up);
    }
}

static void on_spare_timer(uv_timer_t *timer)
{
    fill_spares(timer->data);
}

void upstream_start(struct upstream *up, upstream_spare_fn start_spare,
                    void *arg)
{
    up->start_spare = start_spare;
    up->spare_arg = arg;
    uv_timer_init(up->loop, &up->spare_timer);
    up->spare_timer.data = up;
    uv_timer_init(up->loop, &up->refill_timer);
    up->refill_timer.data = up;
    up->started = 1;
    fill_spares(up);
}

void upstream_stop(struct upstream *up)
{
    if (up->stopped)
        return;
    up->stopped = 1;
    if (up->started) {
        uv_close((uv_handle_t *)&up->spare_timer, NULL);
        uv_close((uv_handle_t *)&up->refill_timer, NULL);
    }
}

void upstream_spare_park(struct upstream *up, struct conn *c)
{
    /* spares <= prewarm bounds the parked ones, so there is room. */
    if (up->nready < up->prewarm)
        up->ready[up->nready++] = c;
}

void upstream_spare_unpark(struct upstream *up, struct conn *c)
{
    for (unsigned i = 0; i < up->nready; i++)
        if (up->ready[i] == c) {
            memmove(&up->ready[i], &up->ready[i + 1],
                    (up->nready - i - 1) * sizeof *up->ready);
            up->nready--;
            return;
        }
}

struct conn *upstream_spare_pop(struct upstream *up)
{
    return up->nready > 0 ? up->ready[--up->nready] : NULL;
}

void upstream_spare_refill(struct upstream *up)
{
    if (up->refill_deferred && !up->stopped)
        fill_spares(up);
}

void upstream_spare_gone(struct upstream *up, int ready)
{
    up->spares--;
    if (up->stopped || !up->started)
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

/* ---- idle pool ------------------------------------------------------------
 *
 * Most recently pooled first: its TLS state is warmest, and the others age
 * out of the pool (UPSTREAM_POOL_IDLE_MS, the connection's own timer)
 * when fewer clients come than before.
 */

void upstream_set_reuse(struct upstream *up, enum config_switch mode,
                        enum config_auth auth)
{
    int creds = up->server->creds.user != NULL;
    up->reuse = mode == CONFIG_YES
                || (mode == CONFIG_AUTO && (auth != CONFIG_AUTH_NONE || !creds));
    up->login_set = auth == CONFIG_AUTH_NONE && creds;
}

int upstream_pool_put(struct upstream *up, struct conn *c, int tag)
{
    if (up->stopped || up->npool == UPSTREAM_POOL_MAX)
        return -1;
    up->pool_tag[up->npool] = tag;
    up->pool[up->npool++] = c;
    return 0;
}

int upstream_pool_any(const struct upstream *up)
{
    return up->npool > 0;
}

void upstream_pool_remove(struct upstream *up, struct conn *c)
{
    for (unsigned i = 0; i < up->npool; i++)
        if (up->pool[i] == c) {
            memmove(&up->pool[i], &up->pool[i + 1],
                    (up->npool - i - 1) * sizeof *up->pool);
            memmove(&up->pool_tag[i], &up->pool_tag[i + 1],
                    (up->npool - i - 1) * sizeof *up->pool_tag);
            up->npool--;
            return;
        }
}

struct conn *upstream_pool_pop(struct upstream *up, int tag)
{
    for (unsigned i = up->npool; i-- > 0;)
        if (up->pool_tag[i] == tag || up->pool_tag[i] == 0) {
            struct conn *c = up->pool[i];
            upstream_pool_remove(up, c);
            return c;
        }
    return NULL;
}

void upstream_reused(struct upstream *up)
{
    up->stats.reused++;
}

void upstream_sentinel_unanswered(struct upstream *up)
{
    if (!up->reuse)
        return;
    up->reuse = 0;
    log_event(LOG_WARN, "reuse-off", "upstream", up->name,
              "reason", "the server did not answer the sentinel (mn or a "
              "binary NOOP) in time, or refused it: connections to it are "
              "no longer reused",
              "hint", "a server without the meta no-op (memcached before "
              "1.6) cannot prove a connection idle; MEMTUNNEL_REUSE=off "
              "says so at start", NULL);
}

/* ---- TLS sessions ---------------------------------------------------------- */

const struct resume_limits *upstream_resume_limits(void)
{
    static struct resume_limits lim;
    static int done;

    if (!done) {
        /* Tests shorten the bounds; read once, the environment stays. */
        resume_limits_default(&lim);
        (void)resume_limits_parse(getenv("MEMTUNNEL_TEST_RESUME"), &lim);
        done = 1;
    }
    return &lim;
}

/* A session from an earlier connection to the same upstream (same name, so
 * the same certificate checks) spares a full handshake, while its chain was
 * verified recently enough (resume.h). */
void *upstream_session_offer(struct upstream *up, uint64_t now,
                             uint64_t *verified_at)
{
    if (up->session == NULL
        || !resume_offer(&up->resume, upstream_resume_limits(), now))
        return NULL;
    *verified_at = up->resume.verified_at;
    return up->session;
}

void upstream_session_keep(struct upstream *up, void *session,
                           uint64_t verified_at, uint64_t expires_at)
{
    if (session == NULL)
        return;
    if (!resume_keep(&up->resume, verified_at, expires_at)) {
        tlsconn_session_free(session);
        return;
    }
    tlsconn_session_free(up->session);
    up->session = session;
}

uint64_t upstream_session_refused(struct upstream *up, uint64_t now)
{
    resume_refused(&up->resume, upstream_resume_limits(), now);
    tlsconn_session_free(up->session);
    up->session = NULL;
    return up->resume.backoff_ms;
}

void upstream_session_resumed(struct upstream *up)
{
    resume_resumed(&up->resume);
}

/* ---- certificate dates ----------------------------------------------------- */

int upstream_expiry_due(const struct upstream *up, uint64_t now)
{
    return !up->expiry_checked
           || now - up->expiry_checked_at >= upstream_resume_limits()->max_age_ms;
}

void upstream_expiry_checked(struct upstream *up, uint64_t now)
{
    up->expiry_checked = 1;
    up->expiry_checked_at = now;
}
