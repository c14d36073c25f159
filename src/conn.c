/*
 * conn: the life of a tunnelled connection: accept (or take a pre-warmed
 * spare), resolve, connect, handshake and verify, timers, close.  What
 * happens to its bytes once it is open is pump.c's business; the state
 * diagram is in conn_int.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "certinfo.h"
#include "conn_int.h"

#define KEEPALIVE_DELAY 60
/* A pre-warmed connection unused this long is replaced: servers and NATs
 * drop idle connections, and one must never be handed out dead. */
#define SPARE_MAX_IDLE_MS (120 * 1000)

const char *conn_words(int err)
{
    switch (err) {
    case UV_ECONNREFUSED: return "connection refused";
    case UV_ETIMEDOUT: return "connection timed out";
    case UV_EHOSTUNREACH: return "host unreachable";
    case UV_ENETUNREACH: return "network unreachable";
    case UV_ECONNRESET: return "connection reset by peer";
    case UV_EPIPE: return "broken pipe";
    case UV_EAI_NONAME: return "host name not found";
    case UV_EAI_AGAIN: return "temporary DNS failure";
    default: return uv_strerror(err);
    }
}


void conn_unref(struct conn *c)
{
    if (--c->pending > 0)
        return;
    struct tunnel *t = c->up->tunnel;
    if (c->prev)
        c->prev->next = c->next;
    else
        t->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->counted)
        c->up->stats.active--;
    if (c->spare)
        tunnel_spare_gone(c->up, c->state == CONN_OPEN);
    if (c->tls_inited)
        tlsconn_free(&c->tls);
    buf_free(&c->upstream_inflight);
    buf_free(&c->to_client);
    buf_free(&c->client_inflight);
    uv_freeaddrinfo(c->addrs);
    free(c);
    tunnel_conn_count(t, -1);
    if (t->draining && t->conns == NULL)
        tunnel_drained(t);
}

static void unlink_ready(struct conn *c)
{
    for (struct conn **p = &c->up->ready; *p; p = &(*p)->next_spare)
        if (*p == c) {
            *p = c->next_spare;
            break;
        }
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
/* What the user can do about a failure, where there is something. */
static const char *hint_for(const char *reason)
{
    static const struct { const char *reason, *hint; } hints[] = {
        { "name mismatch", "the certificate does not name this host: set "
          "MEMTUNNEL_SNI to a name it has, or MEMTUNNEL_VERIFY=chain "
          "(which trusts any certificate of the CA); memtunnel check shows "
          "the names" },
        { "unknown issuer", "the CA is not trusted: give it with MEMTUNNEL_CA "
          "(PEM text) or --ca FILE" },
        { "self-signed certificate", "to trust this certificate, give it as "
          "MEMTUNNEL_CA" },
        { "certificate expired", "the provider must renew the certificate" },
        { "certificate not yet valid", "check this machine's clock" },
        { "server did not speak TLS (plaintext port?)", "the provider may "
          "serve TLS on another port: set MEMTUNNEL_TLS_PORT" },
        { "connection refused", "is the upstream up, and the port right? "
          "memtunnel check tests every upstream" },
        { "host name not found", "check the server list; the name is "
          "looked up again on the next connection" },
    };
    if (reason == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof hints / sizeof hints[0]; i++)
        if (strcmp(reason, hints[i].reason) == 0)
            return hints[i].hint;
    return NULL;    /* timeouts and the rest say it in the reason */
}

void conn_close(struct conn *c, enum log_level level, const char *at,
                const char *reason)
{
    if (c->closing)
        return;
    c->closing = 1;
    pump_await(c, 0);
    if (c->refill_owed) {
        c->refill_owed = 0;
        tunnel_spare_refill(c->up);
    }
    if (c->spare) {
        /* No client is affected: a failing upstream shows up in the warn
         * lines of real connections, without a line per retry. */
        level = LOG_DEBUG;
        if (c->state == CONN_OPEN)
            unlink_ready(c);
    }
    if (level <= LOG_WARN && c->state != CONN_OPEN) {
        struct stats *st = &c->up->stats;
        if (c->state != CONN_HANDSHAKING)
            st->connect_failures++;
        else if (tlsconn_verify_failed(&c->tls))
            st->verify_failures++;
        else
            st->handshake_failures++;
    }
    if (at) {
        char up[24], down[24];
        snprintf(up, sizeof up, "%llu", (unsigned long long)c->bytes_up);
        snprintf(down, sizeof down, "%llu", (unsigned long long)c->bytes_down);
        log_event(level, at, "upstream", c->up->name, "reason", reason,
                  "bytes_up", up, "bytes_down", down,
                  "hint", level <= LOG_WARN ? hint_for(reason) : NULL, NULL);
    }
    if (c->state == CONN_RESOLVING)
        uv_cancel((uv_req_t *)&c->resolve);
    close_handle((uv_handle_t *)&c->timer);
    if (c->has_client)
        close_handle((uv_handle_t *)&c->client);
    if (c->upstream_inited)
        close_handle((uv_handle_t *)&c->upstream);
}


/* ---- timer ------------------------------------------------------------ */

static void on_timer(uv_timer_t *timer)
{
    struct conn *c = timer->data;
    const struct config *cfg = c->up->tunnel->cfg;

    switch (c->state) {
    case CONN_RESOLVING:
    case CONN_CONNECTING:
        conn_close(c, LOG_WARN, "connect-failed", "connect timeout "
                   "(raise --connect-timeout if the upstream is far away)");
        return;
    case CONN_HANDSHAKING:
        conn_close(c, LOG_WARN, "handshake-failed", "handshake timeout "
                   "(is this a TLS port? see --tls-port)");
        return;
    case CONN_OPEN:
        break;
    }
    if (c->spare) {
        conn_close(c, LOG_DEBUG, "spare-refreshed", "unused for too long");
        return;
    }
    uint64_t idle = uv_now(timer->loop) - c->last_active;
    if (c->client_eof && idle >= cfg->connect_timeout_ms) {
        conn_close(c, LOG_DEBUG, "closed", "upstream did not finish after "
                   "the client closed");
        return;
    }
    if (!c->client_eof && cfg->idle_timeout_ms && idle >= cfg->idle_timeout_ms) {
        conn_close(c, LOG_INFO, "idle-timeout", "no traffic for --idle-timeout");
        return;
    }
    conn_arm_timer(c);
}

/* Re-arm the timer for what OPEN needs now; activity is read from
 * last_active when it fires, so traffic does not touch the timer. */
void conn_arm_timer(struct conn *c)
{
    const struct config *cfg = c->up->tunnel->cfg;
    uint64_t limit = c->client_eof ? cfg->connect_timeout_ms
                                   : cfg->idle_timeout_ms;
    if (limit == 0) {
        uv_timer_stop(&c->timer);
        return;
    }
    uint64_t idle = uv_now(c->timer.loop) - c->last_active;
    uv_timer_start(&c->timer, on_timer, idle < limit ? limit - idle : 1, 0);
}


/* ---- connect and handshake ---------------------------------------------- */

/*
 * Per upstream, at the first full handshake and again at a full handshake
 * a day or more after the last look: warn when a certificate of the
 * verified chain expires within MEMTUNNEL_EXPIRY_WARN_DAYS, so that nobody
 * finds out from an outage.  A resumed session shows no chain; the next
 * full handshake is checked then.
 */
static void check_expiry(struct conn *c)
{
    struct certinfo *chain = malloc(CERTINFO_CHAIN_MAX * sizeof *chain);
    if (chain == NULL)
        return;
    int n = certinfo_peer_chain(&c->tls, chain, CERTINFO_CHAIN_MAX);
    if (n > 0) {
        time_t now = time(NULL);
        const struct config *cfg = c->up->tunnel->cfg;
        int i = certinfo_first_expiring(chain, (size_t)n, now,
                                        cfg->expiry_warn_days);
        c->up->expiry_checked = 1;
        c->up->expiry_checked_at = uv_now(c->timer.loop);
        if (i >= 0) {
            char date[32], days[24], reason[160];
            long left = certinfo_days_left(chain[i].not_after, now);
            certinfo_date(chain[i].not_after, date, sizeof date);
            snprintf(days, sizeof days, "%ld", left);
            snprintf(reason, sizeof reason, "%s expires in %ld day%s: ask "
                     "the provider to renew it",
                     i == 0 ? "the server's certificate"
                            : "a CA certificate of the server's chain",
                     left, left == 1 ? "" : "s");
            log_event(LOG_WARN, "cert-expiring", "upstream",
                      c->up->name, "subject", chain[i].subject,
                      "not_after", date, "days_left", days, "reason", reason,
                      NULL);
        }
    }
    free(chain);
}

static void retry(struct conn *c, const struct sockaddr *addr);

const struct resume_limits *conn_resume_limits(void)
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

/*
 * The server would not resume the session we offered: some (memcached 1.6
 * requiring client certificates) answer an offer with an alert.  Drop the
 * session, pause offers to this upstream (resume.h), and start this
 * connection over, once, towards the same address with a full handshake.
 * What wolfSSL queued in reply goes nowhere: the first attempt's TLS state
 * is freed with its handle (on_upstream_retry).
 */
static void refused(struct conn *c)
{
    struct upstream *up = c->up;
    char ms[24];

    resume_refused(&up->resume, conn_resume_limits(), uv_now(c->timer.loop));
    tlsconn_session_free(up->session);
    up->session = NULL;
    snprintf(ms, sizeof ms, "%llu", (unsigned long long)up->resume.backoff_ms);
    log_event(LOG_DEBUG, "resume-refused", "upstream", up->name,
              "reason", tlsconn_reason(&c->tls), "paused_ms", ms, NULL);
    c->full_handshake = 1;
    c->offered_session = 0;
    retry(c, (const struct sockaddr *)&c->peer);
}

void conn_handshake(struct conn *c)
{
    int r = tlsconn_handshake(&c->tls);
    if (r < 0 && r != TLSCONN_AGAIN && c->offered_session
        && !tlsconn_verify_failed(&c->tls)) {
        refused(c);
        return;
    }
    pump_flush_upstream(c);
    if (c->closing || r == TLSCONN_AGAIN)
        return;
    if (r < 0) {
        conn_close(c, LOG_WARN, tlsconn_verify_failed(&c->tls)
                   ? "verify-failed" : "handshake-failed",
                   tlsconn_reason(&c->tls));
        return;
    }

    c->state = CONN_OPEN;
    if (tlsconn_resumed(&c->tls))
        resume_resumed(&c->up->resume);   /* c->verified_at: the offer's */
    else
        c->verified_at = uv_now(c->timer.loop);
    /* Again at each full handshake a day after the last look, as resume.h
     * forces one: a long-running process must hear of an expiry too. */
    if (!tlsconn_resumed(&c->tls)
        && (!c->up->expiry_checked
            || uv_now(c->timer.loop) - c->up->expiry_checked_at
               >= conn_resume_limits()->max_age_ms))
        check_expiry(c);
    tlsconn_drop_chain(&c->tls);
    uint64_t us = (uv_hrtime() - c->started_ns) / 1000;
    tunnel_sample_handshake(c->up, us > UINT32_MAX ? UINT32_MAX : (uint32_t)us);
    if (log_enabled(LOG_DEBUG)) {
        char ms[24];
        snprintf(ms, sizeof ms, "%llu.%03llu", (unsigned long long)(us / 1000),
                 (unsigned long long)(us % 1000));
        log_event(LOG_DEBUG, "connected", "upstream", c->up->name,
                  "tls", tlsconn_version(&c->tls),
                  "resumed", tlsconn_resumed(&c->tls) ? "yes" : "no",
                  "cipher", tlsconn_cipher(&c->tls), "ms", ms, NULL);
    }
    if (tls_ctx_verify(c->up->tunnel->tls) == CONFIG_VERIFY_NONE)
        log_event(LOG_WARN, "unverified", "upstream", c->up->name,
                  "reason", "--verify none: the upstream's identity was not checked",
                  NULL);
    c->last_active = uv_now(c->timer.loop);
    if (c->spare) {
        /* Ready for a client.  Keep reading: that is how a server's close
         * of an idle connection is noticed, and tickets are taken in. */
        c->next_spare = c->up->ready;
        c->up->ready = c;
        uv_timer_start(&c->timer, on_timer, SPARE_MAX_IDLE_MS, 0);
        pump_down(c);
        return;
    }
    pump_start(c);
}


static void connect_to(struct conn *c, const struct sockaddr *addr);

/* The old handle is closed, and every request on it has had its
 * callback: the first attempt's TLS state can go. */
static void on_upstream_retry(uv_handle_t *h)
{
    struct conn *c = h->data;
    c->upstream_inited = 0;
    if (c->closing) {
        conn_unref(c);
        return;
    }
    if (c->tls_inited) {
        tlsconn_free(&c->tls);
        c->tls_inited = 0;
    }
    conn_unref(c);
    connect_to(c, (const struct sockaddr *)&c->peer);
}

/* Remember the address being connected to (for a retry). */
static void set_peer(struct conn *c, const struct sockaddr *addr)
{
    if (addr != (const struct sockaddr *)&c->peer)
        memcpy(&c->peer, addr, addr->sa_family == AF_INET6
                               ? sizeof(struct sockaddr_in6)
                               : sizeof(struct sockaddr_in));
}

/*
 * Start over towards addr on a fresh handle, once this one has closed.  A
 * write still in flight on it is cancelled; on_upstream_write knows the
 * handle is closing and lets it go without failing the connection.
 */
static void retry(struct conn *c, const struct sockaddr *addr)
{
    set_peer(c, addr);
    pump_upstream_read_stop(c);
    uv_close((uv_handle_t *)&c->upstream, on_upstream_retry);
}

static void on_connected(uv_connect_t *req, int status)
{
    struct conn *c = req->data;

    if (c->closing) {
        conn_unref(c);
        return;
    }
    conn_unref(c);
    if (status < 0) {
        if (c->next_addr && status != UV_ECANCELED) {
            /* Another address of the name may answer. */
            log_event(LOG_DEBUG, "connect-retry", "upstream", c->up->name,
                      "reason", conn_words(status), NULL);
            struct addrinfo *ai = c->next_addr;
            c->next_addr = ai->ai_next;
            retry(c, ai->ai_addr);
            return;
        }
        conn_close(c, LOG_WARN, "connect-failed", conn_words(status));
        return;
    }
    uv_freeaddrinfo(c->addrs);
    c->addrs = c->next_addr = NULL;
    uv_tcp_nodelay(&c->upstream, 1);
    uv_tcp_keepalive(&c->upstream, 1, KEEPALIVE_DELAY);
    c->tls_inited = 1;   /* tlsconn_free is owed even if init fails */
    if (tlsconn_init(&c->tls, c->up->tunnel->tls, c->up->tls_name,
                     c->up->tls_name_is_ip) < 0) {
        conn_close(c, LOG_WARN, "handshake-failed", "cannot create a TLS "
                   "session: out of file descriptors or memory");
        return;
    }
    /* A session from an earlier connection to the same upstream (same
     * name, so same certificate checks) spares a full handshake, while
     * its chain was verified recently enough (resume.h). */
    if (c->up->session && !c->full_handshake
        && resume_offer(&c->up->resume, conn_resume_limits(),
                        uv_now(c->timer.loop))) {
        tlsconn_resume(&c->tls, c->up->session);
        c->offered_session = 1;
        c->verified_at = c->up->resume.verified_at;
    }
    c->state = CONN_HANDSHAKING;
    pump_upstream_read_start(c);
    if (!c->closing)
        conn_handshake(c);
}

static void connect_to(struct conn *c, const struct sockaddr *addr)
{
    set_peer(c, addr);
    c->state = CONN_CONNECTING;
    int r = uv_tcp_init(c->up->tunnel->loop, &c->upstream);
    if (r < 0) {
        conn_close(c, LOG_WARN, "connect-failed", conn_words(r));
        return;
    }
    c->upstream.data = c;
    c->upstream_inited = 1;
    c->pending++;
    c->connect.data = c;
    r = uv_tcp_connect(&c->connect, &c->upstream, addr, on_connected);
    if (r < 0) {
        conn_close(c, LOG_WARN, "connect-failed", conn_words(r));
        return;
    }
    c->pending++;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
    struct conn *c = req->data;

    if (c->closing) {
        uv_freeaddrinfo(ai);
        conn_unref(c);
        return;
    }
    conn_unref(c);
    if (status < 0 || ai == NULL) {
        /* Nothing is cached: the next connection asks DNS again. */
        conn_close(c, LOG_WARN, "resolve-failed",
                   status < 0 ? conn_words(status) : "no address");
        uv_freeaddrinfo(ai);
        return;
    }
    c->addrs = ai;
    c->next_addr = ai->ai_next;
    connect_to(c, ai->ai_addr);
}


/* ---- accepting ------------------------------------------------------------ */


static struct conn *conn_new(struct upstream *up)
{
    struct tunnel *t = up->tunnel;
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        log_event(LOG_ERROR, "out-of-memory", "local", up->local, NULL);
        return NULL;
    }
    c->up = up;
    c->next = t->conns;
    if (t->conns)
        t->conns->prev = c;
    t->conns = c;
    tunnel_conn_count(t, +1);
    uv_timer_init(t->loop, &c->timer);
    c->timer.data = c;
    c->pending = 1;
    c->started_ns = uv_hrtime();
    c->started = c->last_active = uv_now(t->loop);
    return c;
}

/* Resolve (unless the upstream is an IP literal) and connect. */
static void start_upstream(struct conn *c)
{
    struct upstream *up = c->up;

    uv_timer_start(&c->timer, on_timer, up->tunnel->cfg->connect_timeout_ms, 0);
    if (up->have_addr) {
        connect_to(c, (const struct sockaddr *)&up->addr);
        return;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    c->state = CONN_RESOLVING;
    c->resolve.data = c;
    int r = uv_getaddrinfo(up->tunnel->loop, &c->resolve, on_resolved,
                           up->server->host, up->port, &hints);
    if (r < 0) {
        conn_close(c, LOG_WARN, "resolve-failed", conn_words(r));
        return;
    }
    c->pending++;
}

void conn_prewarm(struct upstream *up)
{
    struct conn *c = conn_new(up);
    if (c == NULL)
        return;
    c->spare = 1;
    start_upstream(c);
}

/*
 * A ready spare whose server has not closed it.  The server's FIN may be
 * in the socket without its read event having run yet: peek for it.
 */
static struct conn *take_spare(struct upstream *up)
{
    struct conn *c;

    while ((c = up->ready) != NULL) {
        char byte;
        uv_os_fd_t fd;
        up->ready = c->next_spare;
        if (uv_fileno((uv_handle_t *)&c->upstream, &fd) == 0
            && recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
            conn_close(c, LOG_DEBUG, "spare-closed",
                       "the server closed an idle connection");
            continue;
        }
        c->spare = 0;
        c->refill_owed = 1;
        tunnel_spare_gone(up, 1);
        return c;
    }
    return NULL;
}

void conn_accept(struct upstream *up)
{
    struct tunnel *t = up->tunnel;
    struct conn *c = take_spare(up);
    int fresh = c == NULL;

    if (fresh && (c = conn_new(up)) == NULL)
        return;
    uv_tcp_init(t->loop, &c->client);
    c->client.data = c;
    c->has_client = 1;
    c->pending++;

    int r = uv_accept((uv_stream_t *)&up->listener, (uv_stream_t *)&c->client);
    if (r < 0) {
        log_event(LOG_WARN, "accept-failed", "local", up->local,
                  "reason", uv_strerror(r), NULL);
        conn_close(c, LOG_DEBUG, NULL, NULL);
        return;
    }
    uv_tcp_nodelay(&c->client, 1);
    c->counted = 1;
    up->stats.active++;
    up->stats.accepted++;
    /* The loop's clock dates from when its poll returned; one turn that
     * accepts many connections (or a descheduled process) makes it old,
     * and a timeout armed from it fires early by that much. */
    uv_update_time(t->loop);
    if (fresh) {
        c->started = c->last_active = uv_now(t->loop);
        c->started_ns = uv_hrtime();
        start_upstream(c);
        return;
    }
    /* A pre-warmed, verified connection: the client's first request goes
     * out at once. */
    c->started = c->last_active = uv_now(t->loop);
    uv_timer_stop(&c->timer);
    log_event(LOG_DEBUG, "paired", "upstream", up->name, NULL);
    pump_start(c);
}

void conn_close_all(struct tunnel *t, int all)
{
    for (struct conn *c = t->conns, *next; c; c = next) {
        next = c->next;
        if (all || c->state != CONN_OPEN || c->spare)
            conn_close(c, LOG_DEBUG, "closed", "memtunnel is stopping");
    }
}
