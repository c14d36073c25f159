/*
 * conn: one tunnelled connection, from accept to close.
 *
 * Every accepted local connection ("client") gets its own TLS connection
 * to its listener's upstream:
 *
 *   accept ──▶ RESOLVING ──▶ CONNECTING ──▶ HANDSHAKING ──▶ OPEN ──▶ closed
 *                 │               │               │            │
 *                 └── failure, or the connect timeout: close ──┘
 *
 *   RESOLVING    async getaddrinfo (skipped for IP literals)
 *   CONNECTING   non-blocking TCP connect to the upstream
 *   HANDSHAKING  TLS handshake and certificate verification; the client is
 *                not read yet, so no client byte can reach an unverified peer
 *   OPEN         bytes both ways, unchanged
 *
 * One timer per connection bounds connect + handshake, then serves as the
 * idle timer, and after the client's EOF bounds how long we wait for the
 * upstream to finish.
 *
 * Data path.  Socket reads land in one loop-wide buffer: client bytes are
 * encrypted from it at once into tls.out; upstream ciphertext is lent to
 * wolfSSL, which decrypts into a second loop-wide buffer, from which the
 * plaintext is written to the client with uv_try_write.  Only what a socket
 * does not take at once is copied into a per-connection queue.  Each
 * direction keeps one uv_write in flight (the queue is swapped into an
 * "inflight" buffer that libuv owns until the callback).
 *
 * Backpressure.  When a direction's queued bytes pass HIGH_WATER we stop
 * reading the socket that feeds it, and resume below LOW_WATER, so a client
 * that never reads holds memtunnel's memory to about HIGH_WATER + a read.
 *
 * Close.  Client EOF: send close_notify, shut the upstream's write side
 * down once flushed, and keep delivering the upstream's remaining bytes.
 * Upstream close_notify or EOF: flush what is queued for the client, then
 * shut the client down and close.  Errors close both sides at once.
 *
 * Lifetime.  A connection counts its open handles and outstanding requests
 * in `pending`; every callback decrements it and the last one frees the
 * connection.  Once `closing` is set, callbacks only do that.
 */
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "certinfo.h"
#include "log.h"
#include "tlsconn.h"
#include "tunnel_int.h"

#define HIGH_WATER (256 * 1024)
#define LOW_WATER (64 * 1024)
#define KEEPALIVE_DELAY 60
/* A pre-warmed connection unused this long is replaced: servers and NATs
 * drop idle connections, and one must never be handed out dead. */
#define SPARE_MAX_IDLE_MS (120 * 1000)

enum conn_state {
    CONN_RESOLVING,
    CONN_CONNECTING,
    CONN_HANDSHAKING,
    CONN_OPEN,
};

struct conn {
    struct upstream *up;
    struct conn *prev, *next;            /* tunnel's list, for tunnel_close */
    enum conn_state state;
    int pending;                         /* handles + requests outstanding */
    int closing;

    uv_tcp_t client;
    uv_tcp_t upstream;
    uv_timer_t timer;
    uv_getaddrinfo_t resolve;
    struct addrinfo *addrs, *next_addr;  /* resolved, tried in order */
    uv_connect_t connect;
    uv_write_t client_write, upstream_write;
    uv_shutdown_t client_shutdown, upstream_shutdown;
    int upstream_inited;

    struct tlsconn tls;                  /* tls.out: ciphertext queued */
    int tls_inited;
    struct buf upstream_inflight;        /* ciphertext owned by a uv_write */
    struct buf to_client;                /* plaintext queued for the client */
    struct buf client_inflight;          /* plaintext owned by a uv_write */

    unsigned client_reading : 1, upstream_reading : 1;
    unsigned client_writing : 1, upstream_writing : 1;
    unsigned client_eof : 1, upstream_done : 1;
    unsigned client_shut : 1, upstream_shut : 1;

    uint64_t started, last_active;       /* loop time, ms */
    uint64_t started_ns;                 /* for the handshake time */
    int counted;                         /* in up->stats.active */
    int has_client;                      /* `client` is an initialised handle */
    int spare;                           /* pre-warmed, waiting for a client */
    struct conn *next_spare;             /* up->ready, when spare and OPEN */
    int session_kept;                    /* our session was offered to up */
    uint64_t bytes_up, bytes_down;       /* plaintext, client's view */
};

static void conn_close(struct conn *c, enum log_level level, const char *at,
                       const char *reason);
static void pump_down(struct conn *c);
static void flush_upstream(struct conn *c);
static void start_client_write(struct conn *c);
static void maybe_finish(struct conn *c);
static void client_read_start(struct conn *c);
static void upstream_read_start(struct conn *c);

/* ---- small helpers ---------------------------------------------------- */

static const char *uv_words(int err)
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

static size_t queued_up(const struct conn *c)
{
    return buf_len(&c->tls.out) + buf_len(&c->upstream_inflight);
}

static size_t queued_down(const struct conn *c)
{
    return buf_len(&c->to_client) + buf_len(&c->client_inflight);
}

static void unref(struct conn *c)
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
    unref(h->data);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_handle_closed);
}

/*
 * The one way a connection ends.  Logs `at` with the reason when given,
 * closes every handle (libuv cancels their pending requests, whose
 * callbacks then only unref) and cancels a running DNS lookup.
 */
static void conn_close(struct conn *c, enum log_level level, const char *at,
                       const char *reason)
{
    if (c->closing)
        return;
    c->closing = 1;
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
                  "bytes_up", up, "bytes_down", down, NULL);
    }
    if (c->state == CONN_RESOLVING)
        uv_cancel((uv_req_t *)&c->resolve);
    close_handle((uv_handle_t *)&c->timer);
    if (c->has_client)
        close_handle((uv_handle_t *)&c->client);
    if (c->upstream_inited)
        close_handle((uv_handle_t *)&c->upstream);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct conn *c = h->data;
    (void)suggested;
    /* Safe to share: every read is fully consumed inside its read_cb. */
    *b = uv_buf_init(c->up->tunnel->rbuf, sizeof c->up->tunnel->rbuf);
}

/* ---- timer ------------------------------------------------------------ */

static void arm_timer(struct conn *c);

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
    arm_timer(c);
}

/* Re-arm the timer for what OPEN needs now; activity is read from
 * last_active when it fires, so traffic does not touch the timer. */
static void arm_timer(struct conn *c)
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

/* ---- towards the client ------------------------------------------------ */

static void on_client_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;

    c->client_writing = 0;
    buf_consume(&c->client_inflight, buf_len(&c->client_inflight));
    buf_trim(&c->client_inflight);
    if (c->closing) {
        unref(c);
        return;
    }
    unref(c);   /* not the last reference: the handles are open */
    if (status < 0) {
        conn_close(c, LOG_DEBUG, "client-gone", uv_words(status));
        return;
    }
    start_client_write(c);
    if (c->closing)
        return;
    /* Below the low mark again: take more from the upstream. */
    if (!c->upstream_done && !c->upstream_reading
        && queued_down(c) < LOW_WATER) {
        pump_down(c);
        if (c->closing)
            return;
        if (!c->closing && !c->upstream_done && queued_down(c) < HIGH_WATER)
            upstream_read_start(c);
    }
    maybe_finish(c);
}

static void start_client_write(struct conn *c)
{
    if (c->client_writing || buf_len(&c->to_client) == 0)
        return;
    buf_swap(&c->to_client, &c->client_inflight);
    uv_buf_t b = uv_buf_init(buf_peek(&c->client_inflight),
                             (unsigned)buf_len(&c->client_inflight));
    c->client_write.data = c;
    int r = uv_write(&c->client_write, (uv_stream_t *)&c->client, &b, 1,
                     on_client_write);
    if (r < 0) {
        conn_close(c, LOG_DEBUG, "client-gone", uv_words(r));
        return;
    }
    c->client_writing = 1;
    c->pending++;
}

/* Hand plaintext to the client: straight to the socket when nothing is
 * queued, the rest into the queue. */
static void deliver(struct conn *c, const char *p, size_t n)
{
    c->bytes_down += n;
    c->up->stats.bytes_down += n;
    if (buf_len(&c->to_client) == 0 && !c->client_writing) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
        int w = uv_try_write((uv_stream_t *)&c->client, &b, 1);
        if (w >= 0) {
            p += w;
            n -= (size_t)w;
        } else if (w != UV_EAGAIN) {
            conn_close(c, LOG_DEBUG, "client-gone", uv_words(w));
            return;
        }
    }
    if (n == 0)
        return;
    if (buf_append(&c->to_client, p, n) < 0) {
        conn_close(c, LOG_ERROR, "out-of-memory", "queueing data for the client");
        return;
    }
    start_client_write(c);
}

/* ---- towards the upstream ---------------------------------------------- */

static void on_upstream_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    (void)status;
    unref(c);
}

static void on_upstream_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;

    c->upstream_writing = 0;
    buf_consume(&c->upstream_inflight, buf_len(&c->upstream_inflight));
    buf_trim(&c->upstream_inflight);
    if (c->closing) {
        unref(c);
        return;
    }
    unref(c);
    if (status < 0) {
        conn_close(c, LOG_WARN, "upstream-closed", uv_words(status));
        return;
    }
    flush_upstream(c);
}

/*
 * Send what wolfSSL left in tls.out: try the socket directly, then keep
 * one uv_write in flight.  Called after every wolfSSL call, since reads
 * and the handshake produce records too.  Also where the client's reading
 * is paused and resumed, and where the upstream is shut down after the
 * client's EOF once everything is sent.
 */
static void flush_upstream(struct conn *c)
{
    struct buf *out = &c->tls.out;

    if (c->closing)
        return;
    if (c->upstream_shut) {
        /* Nothing may follow our FIN; records wolfSSL makes now (a reply
         * to a key update, say) have nowhere to go. */
        buf_consume(out, buf_len(out));
        return;
    }
    if (!c->upstream_writing && buf_len(out) > 0) {
        uv_buf_t b = uv_buf_init(buf_peek(out), (unsigned)buf_len(out));
        int w = uv_try_write((uv_stream_t *)&c->upstream, &b, 1);
        if (w > 0)
            buf_consume(out, (size_t)w);
        else if (w != UV_EAGAIN) {
            conn_close(c, LOG_WARN, "upstream-closed", uv_words(w));
            return;
        }
        if (buf_len(out) > 0) {
            buf_swap(out, &c->upstream_inflight);
            b = uv_buf_init(buf_peek(&c->upstream_inflight),
                            (unsigned)buf_len(&c->upstream_inflight));
            c->upstream_write.data = c;
            int r = uv_write(&c->upstream_write, (uv_stream_t *)&c->upstream,
                             &b, 1, on_upstream_write);
            if (r < 0) {
                conn_close(c, LOG_WARN, "upstream-closed", uv_words(r));
                return;
            }
            c->upstream_writing = 1;
            c->pending++;
        } else {
            buf_trim(out);
        }
    }

    if (c->state != CONN_OPEN || !c->has_client)
        return;
    size_t q = queued_up(c);
    if (c->client_reading && q >= HIGH_WATER) {
        uv_read_stop((uv_stream_t *)&c->client);
        c->client_reading = 0;
    } else if (!c->client_reading && !c->client_eof && q < LOW_WATER) {
        client_read_start(c);
    }
    if (c->client_eof && q == 0 && !c->upstream_shut && !c->upstream_done) {
        c->upstream_shut = 1;
        c->upstream_shutdown.data = c;
        if (uv_shutdown(&c->upstream_shutdown, (uv_stream_t *)&c->upstream,
                        on_upstream_shutdown) == 0)
            c->pending++;
    }
}

/* ---- reading the client ------------------------------------------------- */

static void on_client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = s->data;

    if (nread == 0)
        return;
    if (nread < 0) {
        uv_read_stop(s);
        c->client_reading = 0;
        if (nread != UV_EOF) {
            conn_close(c, LOG_DEBUG, "client-gone", uv_words((int)nread));
            return;
        }
        /* Half-close: the upstream still owes us its answers. */
        c->client_eof = 1;
        c->last_active = uv_now(s->loop);
        tlsconn_close_notify(&c->tls);
        flush_upstream(c);
        if (!c->closing)
            arm_timer(c);
        maybe_finish(c);
        return;
    }
    c->bytes_up += (size_t)nread;
    c->up->stats.bytes_up += (size_t)nread;
    c->last_active = uv_now(s->loop);
    if (tlsconn_write(&c->tls, b->base, (size_t)nread) < 0) {
        conn_close(c, LOG_WARN, "upstream-closed", tlsconn_reason(&c->tls));
        return;
    }
    flush_upstream(c);
}

static void client_read_start(struct conn *c)
{
    int r = uv_read_start((uv_stream_t *)&c->client, on_alloc, on_client_read);
    if (r < 0) {
        conn_close(c, LOG_DEBUG, "client-gone", uv_words(r));
        return;
    }
    c->client_reading = 1;
}

/* ---- reading the upstream ----------------------------------------------- */

/*
 * Keep this connection's session for the next connection to the upstream.
 * Taken once the first answer arrived: TLS 1.3 tickets come after the
 * handshake and are read before it.
 */
static void keep_session(struct conn *c)
{
    void *s = tlsconn_session(&c->tls);
    c->session_kept = 1;
    if (s == NULL)
        return;
    tlsconn_session_free(c->up->session);
    c->up->session = s;
}

/*
 * Decrypt what wolfSSL can give and deliver it, until it wants more input,
 * the client's queue passes the high mark (then the upstream socket is
 * paused too), or the upstream finished.
 */
static void pump_down(struct conn *c)
{
    struct tunnel *t = c->up->tunnel;
    size_t have = 0;    /* decrypted into pbuf, not delivered yet */

    /* Records are gathered into pbuf and written to the client together:
     * a server that answers a pipeline with one record per reply would
     * otherwise cost one write(2) per reply. */
    while (!c->closing && !c->upstream_done) {
        if (queued_down(c) + have >= HIGH_WATER) {
            if (c->upstream_reading) {
                uv_read_stop((uv_stream_t *)&c->upstream);
                c->upstream_reading = 0;
            }
            break;
        }
        if (have == sizeof t->pbuf) {
            deliver(c, t->pbuf, have);
            have = 0;
            continue;
        }
        ssize_t n = tlsconn_read(&c->tls, t->pbuf + have, sizeof t->pbuf - have);
        if (n > 0 && c->spare) {
            conn_close(c, LOG_DEBUG, "spare-closed", "the server sent data unasked");
            return;
        }
        if (n > 0) {
            if (!c->session_kept)
                keep_session(c);
            have += (size_t)n;
            continue;
        }
        if (have > 0) {
            deliver(c, t->pbuf, have);
            have = 0;
            if (c->closing)
                return;
        }
        if (n == TLSCONN_AGAIN)
            break;
        if (c->spare) {
            conn_close(c, LOG_DEBUG, "spare-closed",
                       n == TLSCONN_ERROR ? tlsconn_reason(&c->tls)
                                          : "the server closed an idle connection");
            return;
        }
        c->upstream_done = 1;
        if (c->upstream_reading) {
            uv_read_stop((uv_stream_t *)&c->upstream);
            c->upstream_reading = 0;
        }
        if (n == TLSCONN_ERROR) {
            conn_close(c, LOG_WARN, "upstream-error", tlsconn_reason(&c->tls));
            return;
        }
        /* close_notify is the normal end; EOF without it may have cut a
         * response short, which the client will notice: worth a line. */
        log_event(n == TLSCONN_CLOSED ? LOG_DEBUG : LOG_INFO,
                  n == TLSCONN_CLOSED ? "upstream-closed" : "upstream-truncated",
                  "upstream", c->up->name, NULL);
    }
    if (have > 0 && !c->closing)
        deliver(c, t->pbuf, have);
    flush_upstream(c);
    maybe_finish(c);
}

/*
 * The end of a connection that ended well: once the upstream is done and
 * everything queued for the client is written, shut the client down (or
 * close at once when the client has gone already).
 */
static void on_client_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    (void)status;
    if (!c->closing)
        conn_close(c, LOG_DEBUG, "closed", "done");
    unref(c);
}

static void maybe_finish(struct conn *c)
{
    if (c->closing || !c->upstream_done || queued_down(c) > 0)
        return;
    if (c->client_eof) {
        conn_close(c, LOG_DEBUG, "closed", "done");
        return;
    }
    if (c->client_shut)
        return;
    c->client_shut = 1;
    c->client_shutdown.data = c;
    if (uv_shutdown(&c->client_shutdown, (uv_stream_t *)&c->client,
                    on_client_shutdown) < 0) {
        conn_close(c, LOG_DEBUG, "closed", "done");
        return;
    }
    c->pending++;
}

static void handshake(struct conn *c);
static void start_open(struct conn *c);

static void on_upstream_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = s->data;

    if (nread == 0)
        return;
    if (nread < 0) {
        if (nread != UV_EOF) {
            conn_close(c, c->state == CONN_OPEN ? LOG_INFO : LOG_WARN,
                       c->state == CONN_OPEN ? "upstream-error" : "handshake-failed",
                       uv_words((int)nread));
            return;
        }
        uv_read_stop(s);
        c->upstream_reading = 0;
        tlsconn_eof(&c->tls);
    } else {
        c->last_active = uv_now(s->loop);
        tlsconn_feed(&c->tls, b->base, (size_t)nread);
    }
    if (c->state == CONN_HANDSHAKING)
        handshake(c);
    else
        pump_down(c);
    if (nread > 0 && !c->closing && tlsconn_feed_end(&c->tls) < 0)
        conn_close(c, LOG_ERROR, "out-of-memory", "buffering upstream data");
}

static void upstream_read_start(struct conn *c)
{
    int r = uv_read_start((uv_stream_t *)&c->upstream, on_alloc,
                          on_upstream_read);
    if (r < 0) {
        conn_close(c, LOG_WARN, "upstream-error", uv_words(r));
        return;
    }
    c->upstream_reading = 1;
}

/* ---- connect and handshake ---------------------------------------------- */

/*
 * Once per upstream, at the first full handshake: warn when a certificate
 * of the verified chain expires within MEMTUNNEL_EXPIRY_WARN_DAYS, so that
 * nobody finds out from an outage.  A resumed session shows no chain; the
 * next full handshake is checked then.
 */
static void check_expiry(struct conn *c)
{
    enum { MAX = 10 };
    struct certinfo *chain = malloc(MAX * sizeof *chain);
    if (chain == NULL)
        return;
    int n = certinfo_peer_chain(&c->tls, chain, MAX);
    if (n > 0) {
        time_t now = time(NULL);
        const struct config *cfg = c->up->tunnel->cfg;
        int i = certinfo_first_expiring(chain, (size_t)n, now,
                                        cfg->expiry_warn_days);
        c->up->expiry_checked = 1;
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

static void handshake(struct conn *c)
{
    int r = tlsconn_handshake(&c->tls);
    flush_upstream(c);
    if (c->closing || r == TLSCONN_AGAIN)
        return;
    if (r < 0) {
        int verify = tlsconn_verify_failed(&c->tls);
        conn_close(c, LOG_WARN, verify ? "verify-failed" : "handshake-failed",
                   tlsconn_reason(&c->tls));
        return;
    }

    c->state = CONN_OPEN;
    if (!c->up->expiry_checked)
        check_expiry(c);
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
    start_open(c);
}

/* The handshake verified and a client is attached: let bytes flow. */
static void start_open(struct conn *c)
{
    arm_timer(c);
    /* Only now may client bytes flow: the peer is verified. */
    client_read_start(c);
    if (!c->closing)
        pump_down(c);   /* wolfSSL may hold data from the last handshake read */
}

static void connect_to(struct conn *c, const struct sockaddr *addr);

static void on_upstream_retry(uv_handle_t *h)
{
    struct conn *c = h->data;
    c->upstream_inited = 0;
    if (c->closing) {
        unref(c);
        return;
    }
    unref(c);
    struct addrinfo *ai = c->next_addr;
    c->next_addr = ai->ai_next;
    connect_to(c, ai->ai_addr);
}

static void on_connected(uv_connect_t *req, int status)
{
    struct conn *c = req->data;

    if (c->closing) {
        unref(c);
        return;
    }
    unref(c);
    if (status < 0) {
        if (c->next_addr && status != UV_ECANCELED) {
            /* Another address of the name may answer: start over on a
             * fresh handle once this one has closed. */
            log_event(LOG_DEBUG, "connect-retry", "upstream", c->up->name,
                      "reason", uv_words(status), NULL);
            uv_close((uv_handle_t *)&c->upstream, on_upstream_retry);
            return;
        }
        conn_close(c, LOG_WARN, "connect-failed", uv_words(status));
        return;
    }
    uv_freeaddrinfo(c->addrs);
    c->addrs = c->next_addr = NULL;
    uv_tcp_nodelay(&c->upstream, 1);
    uv_tcp_keepalive(&c->upstream, 1, KEEPALIVE_DELAY);
    c->tls_inited = 1;   /* tlsconn_free is owed even if init fails */
    if (tlsconn_init(&c->tls, c->up->tunnel->tls, c->up->tls_name,
                     c->up->tls_name_is_ip) < 0) {
        conn_close(c, LOG_ERROR, "out-of-memory", "creating the TLS session");
        return;
    }
    /* A session from an earlier connection to the same upstream (same
     * name, so same certificate checks) spares a full handshake. */
    tlsconn_resume(&c->tls, c->up->session);
    c->state = CONN_HANDSHAKING;
    upstream_read_start(c);
    if (!c->closing)
        handshake(c);
}

static void connect_to(struct conn *c, const struct sockaddr *addr)
{
    c->state = CONN_CONNECTING;
    int r = uv_tcp_init(c->up->tunnel->loop, &c->upstream);
    if (r < 0) {
        conn_close(c, LOG_WARN, "connect-failed", uv_words(r));
        return;
    }
    c->upstream.data = c;
    c->upstream_inited = 1;
    c->pending++;
    c->connect.data = c;
    r = uv_tcp_connect(&c->connect, &c->upstream, addr, on_connected);
    if (r < 0) {
        conn_close(c, LOG_WARN, "connect-failed", uv_words(r));
        return;
    }
    c->pending++;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
    struct conn *c = req->data;

    if (c->closing) {
        uv_freeaddrinfo(ai);
        unref(c);
        return;
    }
    unref(c);
    if (status < 0 || ai == NULL) {
        /* Nothing is cached: the next connection asks DNS again. */
        conn_close(c, LOG_WARN, "resolve-failed",
                   status < 0 ? uv_words(status) : "no address");
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
        conn_close(c, LOG_WARN, "resolve-failed", uv_words(r));
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
    start_open(c);
}

void conn_close_all(struct tunnel *t, int all)
{
    for (struct conn *c = t->conns, *next; c; c = next) {
        next = c->next;
        if (all || c->state != CONN_OPEN || c->spare)
            conn_close(c, LOG_DEBUG, "closed", "memtunnel is stopping");
    }
}
