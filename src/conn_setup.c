/*
 * conn_setup: a connection's way to OPEN: resolve, connect (each address
 * of the name in turn), TLS handshake and verification, with resumption
 * from the upstream's stored session and one retry in full when a server
 * refuses it.  The state diagram is in conn_int.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "auth.h"
#include "certinfo.h"
#include "conn_int.h"

#define KEEPALIVE_DELAY 60
/* A pre-warmed connection unused this long is replaced: servers and NATs
 * drop idle connections, and one must never be handed out dead. */
#define SPARE_MAX_IDLE_MS (120 * 1000)

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
        const struct config *cfg = c->env->cfg;
        int i = certinfo_first_expiring(chain, (size_t)n, now,
                                        cfg->expiry_warn_days);
        upstream_expiry_checked(c->up, uv_now(c->timer.loop));
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
    uint64_t paused = upstream_session_refused(up, uv_now(c->timer.loop));

    snprintf(ms, sizeof ms, "%llu", (unsigned long long)paused);
    log_event(LOG_DEBUG, "resume-refused", "upstream", up->name,
              "reason", tlsconn_reason(&c->tls), "paused_ms", ms, NULL);
    c->full_handshake = 1;
    c->offered_session = 0;
    retry(c, (const struct sockaddr *)&c->peer);
}

void conn_setup_handshake(struct conn *c)
{
    int r = tlsconn_handshake(&c->tls);
    if (r < 0 && r != TLSCONN_AGAIN && c->offered_session
        && !tlsconn_verify_failed(&c->tls)) {
        refused(c);
        return;
    }
    conn_io_flush_upstream(c);
    if (c->closing || r == TLSCONN_AGAIN)
        return;
    if (r < 0) {
        conn_close_tls(c, LOG_WARN, tlsconn_verify_failed(&c->tls)
                                    ? "verify-failed" : "handshake-failed");
        return;
    }

    if (tlsconn_resumed(&c->tls))
        upstream_session_resumed(c->up);  /* c->verified_at: the offer's */
    else
        c->verified_at = uv_now(c->timer.loop);
    /* Again at each full handshake a day after the last look, as resume.h
     * forces one: a long-running process must hear of an expiry too. */
    if (!tlsconn_resumed(&c->tls)
        && upstream_expiry_due(c->up, uv_now(c->timer.loop)))
        check_expiry(c);
    tlsconn_drop_chain(&c->tls);
    if (c->env->cfg->auth != CONFIG_AUTH_NONE) {
        conn_auth_start(c);
        return;
    }
    conn_setup_opened(c);
}

void conn_setup_warn_unverified(struct conn *c)
{
    if (tls_ctx_verify(c->env->tls) == CONFIG_VERIFY_NONE)
        log_event(LOG_WARN, "unverified", "upstream", c->up->name,
                  "reason", "--verify none: the upstream's identity was not checked",
                  NULL);
}

void conn_setup_opened(struct conn *c)
{
    enum config_auth auth = c->env->cfg->auth;

    c->state = CONN_OPEN;
    /* The login's round trip is part of the setup time. */
    uint64_t us = (uv_hrtime() - c->started_ns) / 1000;
    upstream_handshake_done(c->up, us > UINT32_MAX ? UINT32_MAX : (uint32_t)us);
    if (log_enabled(LOG_DEBUG)) {
        char ms[24];
        snprintf(ms, sizeof ms, "%llu.%03llu", (unsigned long long)(us / 1000),
                 (unsigned long long)(us % 1000));
        log_event(LOG_DEBUG, "connected", "upstream", c->up->name,
                  "tls", tlsconn_version(&c->tls),
                  "resumed", tlsconn_resumed(&c->tls) ? "yes" : "no",
                  "cipher", tlsconn_cipher(&c->tls),
                  "auth", auth != CONFIG_AUTH_NONE ? auth_mode_word(auth)
                                                   : NULL, "ms", ms, NULL);
    }
    conn_setup_warn_unverified(c);
    c->last_active = uv_now(c->timer.loop);
    if (c->spare) {
        /* Ready for a client.  Keep reading: that is how a server's close
         * of an idle connection is noticed, and tickets are taken in. */
        upstream_spare_park(c->up, c);
        c->parked = 1;
        uv_timer_start(&c->timer, conn_on_timer, SPARE_MAX_IDLE_MS, 0);
        conn_io_down(c);
        return;
    }
    conn_io_start(c);
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
    conn_io_upstream_read_stop(c);
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
                      "reason", reason_uv_words(status), NULL);
            struct addrinfo *ai = c->next_addr;
            c->next_addr = ai->ai_next;
            retry(c, ai->ai_addr);
            return;
        }
        conn_close_uv(c, LOG_WARN, "connect-failed", status);
        return;
    }
    uv_freeaddrinfo(c->addrs);
    c->addrs = c->next_addr = NULL;
    uv_tcp_nodelay(&c->upstream, 1);
    uv_tcp_keepalive(&c->upstream, 1, KEEPALIVE_DELAY);
    c->tls_inited = 1;   /* tlsconn_free is owed even if init fails */
    if (tlsconn_init(&c->tls, c->env->tls, c->up->tls_name,
                     c->up->tls_name_is_ip) < 0) {
        conn_close(c, LOG_WARN, "handshake-failed", REASON_TLS_SESSION, NULL);
        return;
    }
    void *session = c->full_handshake ? NULL
                    : upstream_session_offer(c->up, uv_now(c->timer.loop),
                                             &c->verified_at);
    if (session) {
        tlsconn_resume(&c->tls, session);
        c->offered_session = 1;
    }
    c->state = CONN_HANDSHAKING;
    conn_io_upstream_read_start(c);
    if (!c->closing)
        conn_setup_handshake(c);
}

static void connect_to(struct conn *c, const struct sockaddr *addr)
{
    set_peer(c, addr);
    c->state = CONN_CONNECTING;
    int r = uv_tcp_init(c->env->loop, &c->upstream);
    if (r < 0) {
        conn_close_uv(c, LOG_WARN, "connect-failed", r);
        return;
    }
    c->upstream.data = c;
    c->upstream_inited = 1;
    c->pending++;
    c->connect.data = c;
    r = uv_tcp_connect(&c->connect, &c->upstream, addr, on_connected);
    if (r < 0) {
        conn_close_uv(c, LOG_WARN, "connect-failed", r);
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
        if (status < 0)
            conn_close_uv(c, LOG_WARN, "resolve-failed", status);
        else
            conn_close(c, LOG_WARN, "resolve-failed", REASON_NO_ADDRESS, NULL);
        uv_freeaddrinfo(ai);
        return;
    }
    c->addrs = ai;
    c->next_addr = ai->ai_next;
    connect_to(c, ai->ai_addr);
}

/* Resolve (unless the upstream is an IP literal) and connect. */
void conn_setup_start(struct conn *c)
{
    struct upstream *up = c->up;

    uv_timer_start(&c->timer, conn_on_timer, c->env->cfg->connect_timeout_ms, 0);
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
    int r = uv_getaddrinfo(c->env->loop, &c->resolve, on_resolved,
                           up->server->host, up->port, &hints);
    if (r < 0) {
        conn_close_uv(c, LOG_WARN, "resolve-failed", r);
        return;
    }
    c->pending++;
}
