/*
 * conn_io: the bytes of an open connection, both ways, with backpressure
 * and half-close (see the data path notes in conn_int.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn_int.h"

#define HIGH_WATER (256 * 1024)
#define LOW_WATER (64 * 1024)

static void start_client_write(struct conn *c);
static void maybe_finish(struct conn *c);
static void client_read_start(struct conn *c);

static size_t queued_up(const struct conn *c)
{
    return buf_len(&c->tls.out) + buf_len(&c->upstream_inflight);
}

static size_t queued_down(const struct conn *c)
{
    return buf_len(&c->to_client) + buf_len(&c->client_inflight);
}

size_t conn_io_queued_down(const struct conn *c)
{
    return queued_down(c);
}


static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct conn *c = h->data;
    (void)suggested;
    /* Safe to share: every read is fully consumed inside its read_cb. */
    *b = uv_buf_init(c->env->rbuf, sizeof c->env->rbuf);
}


/* ---- towards the client ------------------------------------------------ */

static void on_client_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;

    c->client_writing = 0;
    buf_consume(&c->client_inflight, buf_len(&c->client_inflight));
    buf_trim(&c->client_inflight);
    if (c->closing) {
        conn_unref(c);
        return;
    }
    conn_unref(c);   /* not the last reference: the handles are open */
    if (status < 0) {
        conn_close_uv(c, LOG_DEBUG, "client-gone", status);
        return;
    }
    start_client_write(c);
    if (c->closing)
        return;
    /* Below the low mark again: take more from the upstream. */
    if (!c->upstream_done && !c->upstream_reading
        && queued_down(c) < LOW_WATER) {
        conn_io_down(c);
        if (c->closing)
            return;
        if (!c->closing && !c->upstream_done && queued_down(c) < HIGH_WATER)
            conn_io_upstream_read_start(c);
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
        conn_close_uv(c, LOG_DEBUG, "client-gone", r);
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
    upstream_bytes(c->up, 0, n);
    if (buf_len(&c->to_client) == 0 && !c->client_writing) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
        int w = uv_try_write((uv_stream_t *)&c->client, &b, 1);
        if (w >= 0) {
            p += w;
            n -= (size_t)w;
        } else if (w != UV_EAGAIN) {
            conn_close_uv(c, LOG_DEBUG, "client-gone", w);
            return;
        }
    }
    if (c->refill_owed) {
        c->refill_owed = 0;
        upstream_spare_refill(c->up);
    }
    if (n == 0)
        return;
    if (buf_append(&c->to_client, p, n) < 0) {
        conn_close(c, LOG_ERROR, "out-of-memory", REASON_OUT_OF_MEMORY,
                   "queueing data for the client");
        return;
    }
    start_client_write(c);
}

/* ---- towards the upstream ---------------------------------------------- */


static void on_upstream_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    (void)status;
    conn_unref(c);
}

static void on_upstream_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;

    c->upstream_writing = 0;
    buf_consume(&c->upstream_inflight, buf_len(&c->upstream_inflight));
    buf_trim(&c->upstream_inflight);
    /* Closing, or the handle was closed to start over (a refused
     * resumption): whatever the status, nothing more goes out on it. */
    if (c->closing || uv_is_closing((uv_handle_t *)&c->upstream)) {
        conn_unref(c);
        return;
    }
    conn_unref(c);
    if (status < 0) {
        conn_close_uv(c, LOG_WARN, "upstream-closed", status);
        return;
    }
    conn_io_flush_upstream(c);
}

/*
 * Send what wolfSSL left in tls.out: try the socket directly, then keep
 * one uv_write in flight.  Called after every wolfSSL call, since reads
 * and the handshake produce records too.  Also where the client's reading
 * is paused and resumed, and where the upstream is shut down after the
 * client's EOF once everything is sent.
 */
void conn_io_flush_upstream(struct conn *c)
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
            conn_close_uv(c, LOG_WARN, "upstream-closed", w);
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
                conn_close_uv(c, LOG_WARN, "upstream-closed", r);
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
    if (c->client_eof && q == 0 && !c->upstream_shut && !c->upstream_done
        && !c->draining && !c->drained) {
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

    spin_event(c->env->spin);
    if (nread == 0)
        return;
    if (nread < 0) {
        uv_read_stop(s);
        c->client_reading = 0;
        if (nread != UV_EOF) {
            conn_close_uv(c, LOG_DEBUG, "client-gone", (int)nread);
            return;
        }
        if (c->lobby) {
            /* Gone before its first byte: nothing to do. */
            conn_close(c, LOG_DEBUG, "closed", REASON_DONE, NULL);
            return;
        }
        /* Half-close: the upstream still owes us its answers. */
        c->client_eof = 1;
        c->last_active = uv_now(s->loop);
        if (!conn_reuse_start(c))
            tlsconn_close_notify(&c->tls);
        if (c->closing)
            return;
        conn_io_flush_upstream(c);
        if (!c->closing)
            conn_arm_timer(c);
        maybe_finish(c);
        return;
    }
    if (c->lobby) {
        conn_lobby_first(c, b->base, (size_t)nread);
        return;
    }
    conn_io_client_bytes(c, b->base, (size_t)nread);
}

void conn_io_client_bytes(struct conn *c, const char *p, size_t n)
{
    c->bytes_up += n;
    upstream_bytes(c->up, n, 0);
    c->last_active = uv_now(c->timer.loop);
    if (c->framing)
        conn_reuse_request(c, p, n);
    if (tlsconn_write(&c->tls, p, n) < 0) {
        conn_close_tls(c, LOG_WARN, "upstream-closed");
        return;
    }
    conn_io_await(c, 1);
    conn_io_flush_upstream(c);
}

static void client_read_start(struct conn *c)
{
    int r = uv_read_start((uv_stream_t *)&c->client, on_alloc, on_client_read);
    if (r < 0) {
        conn_close_uv(c, LOG_DEBUG, "client-gone", r);
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
void conn_io_keep_session(struct conn *c)
{
    void *s = tlsconn_session(&c->tls);
    c->session_kept = 1;
    if (s == NULL)
        return;
    /* Capped by the ticket's own lifetime, where the library tells it. */
    long left = tlsconn_session_lifetime(s);
    uint64_t expires = left < 0 ? 0 : uv_now(c->timer.loop) + (uint64_t)left * 1000;
    upstream_session_keep(c->up, s, c->verified_at, expires);
}

/*
 * Decrypt what wolfSSL can give and deliver it, until it wants more input,
 * the client's queue passes the high mark (then the upstream socket is
 * paused too), or the upstream finished.
 */
void conn_io_down(struct conn *c)
{
    struct conn_env *t = c->env;
    size_t have = 0;    /* decrypted into pbuf, not delivered yet */

    /* Records are gathered into pbuf and written to the client together:
     * a server that answers a pipeline with one record per reply would
     * otherwise cost one write(2) per reply. */
    while (!c->closing && !c->upstream_done) {
        /* Framed bytes may grow by what was kept back (conn_reuse_reply). */
        size_t room = sizeof t->pbuf - (c->framing ? MCFRAME_SENTINEL_MAX : 0);
        if (queued_down(c) + have >= HIGH_WATER) {
            conn_io_upstream_read_stop(c);
            break;
        }
        if (have >= room) {
            deliver(c, t->pbuf, have);
            have = 0;
            continue;
        }
        ssize_t n = tlsconn_read(&c->tls, t->pbuf + have, room - have);
        if (n > 0 && (c->spare || c->pooled)) {
            conn_close(c, LOG_DEBUG, "spare-closed", REASON_SPARE_UNASKED, NULL);
            return;
        }
        if (n > 0) {
            if (!c->session_kept)
                conn_io_keep_session(c);
            conn_io_await(c, 0);
            have += c->framing ? conn_reuse_reply(c, t->pbuf + have, (size_t)n)
                               : (size_t)n;
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
        if (c->spare || c->pooled) {
            if (n == TLSCONN_ERROR)
                conn_close_tls(c, LOG_DEBUG, "spare-closed");
            else
                conn_close(c, LOG_DEBUG, "spare-closed", REASON_SPARE_CLOSED, NULL);
            return;
        }
        c->upstream_done = 1;
        conn_io_upstream_read_stop(c);
        if (n == TLSCONN_ERROR) {
            conn_close_tls(c, LOG_WARN, "upstream-error");
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
    conn_io_flush_upstream(c);
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
        conn_close(c, LOG_DEBUG, "closed", REASON_DONE, NULL);
    conn_unref(c);
}

static void maybe_finish(struct conn *c)
{
    if (c->closing || conn_reuse_settle(c) || !c->upstream_done
        || queued_down(c) > 0)
        return;
    if (c->client_eof) {
        conn_close(c, LOG_DEBUG, "closed", REASON_DONE, NULL);
        return;
    }
    if (c->client_shut)
        return;
    c->client_shut = 1;
    c->client_shutdown.data = c;
    if (uv_shutdown(&c->client_shutdown, (uv_stream_t *)&c->client,
                    on_client_shutdown) < 0) {
        conn_close(c, LOG_DEBUG, "closed", REASON_DONE, NULL);
        return;
    }
    c->pending++;
}


static void on_upstream_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = s->data;

    spin_event(c->env->spin);
    if (nread == 0)
        return;
    if (nread < 0) {
        if (nread != UV_EOF && c->state == CONN_AUTHENTICATING) {
            conn_auth_failed(c, reason_from_uv((int)nread),
                             reason_uv_words((int)nread));
            return;
        }
        if (nread != UV_EOF) {
            conn_close_uv(c, c->state == CONN_OPEN ? LOG_INFO : LOG_WARN,
                          c->state == CONN_OPEN ? "upstream-error"
                                                : "handshake-failed", (int)nread);
            return;
        }
        conn_io_upstream_read_stop(c);
        tlsconn_eof(&c->tls);
    } else {
        c->last_active = uv_now(s->loop);
        tlsconn_feed(&c->tls, b->base, (size_t)nread);
    }
    if (c->state == CONN_HANDSHAKING)
        conn_setup_handshake(c);
    else if (c->state == CONN_AUTHENTICATING)
        conn_auth_read(c);
    else
        conn_io_down(c);
    if (nread > 0 && !c->closing && tlsconn_feed_end(&c->tls) < 0)
        conn_close(c, LOG_ERROR, "out-of-memory", REASON_OUT_OF_MEMORY,
                   "buffering upstream data");
}

void conn_io_upstream_read_stop(struct conn *c)
{
    if (c->upstream_reading) {
        uv_read_stop((uv_stream_t *)&c->upstream);
        c->upstream_reading = 0;
    }
}

void conn_io_upstream_read_start(struct conn *c)
{
    int r = uv_read_start((uv_stream_t *)&c->upstream, on_alloc,
                          on_upstream_read);
    if (r < 0) {
        conn_close_uv(c, LOG_WARN, "upstream-error", r);
        return;
    }
    c->upstream_reading = 1;
}


void conn_io_await(struct conn *c, int on)
{
    if (c->awaiting == (unsigned)on)
        return;
    c->awaiting = on ? 1 : 0;
    spin_await(c->env->spin, on ? 1 : -1);
}

/* The handshake verified and a client is attached: let bytes flow. */
void conn_io_start(struct conn *c)
{
    conn_reuse_attach(c);
    conn_arm_timer(c);
    /* Only now may client bytes flow: the peer is verified. */
    if (buf_len(&c->early) > 0) {
        conn_io_client_bytes(c, buf_peek(&c->early), buf_len(&c->early));
        buf_free(&c->early);
        if (c->closing)
            return;
    }
    if (!c->client_reading)   /* flushing the early bytes may have */
        client_read_start(c);
    if (!c->closing)
        conn_io_down(c);   /* wolfSSL may hold data from the last handshake read */
}

void conn_io_lobby_start(struct conn *c)
{
    conn_arm_timer(c);
    client_read_start(c);
}
