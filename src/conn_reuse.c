/*
 * conn_reuse: --reuse for one connection: the framers as bytes pass, the
 * sentinel when the client ends, and the hand-over of a proved idle
 * connection to its upstream's pool (see the notes in conn_int.h and the
 * framers' rules in mcframe.h).
 */
#include <stdlib.h>
#include <string.h>

#include "conn_int.h"

static void not_reused(struct conn *c, enum mcframe_why why)
{
    log_event(LOG_DEBUG, "not-reused", "upstream", c->up->name,
              "reason", mcframe_why_words(why), NULL);
}

/* Reuse is off for this connection from now on: bytes pass untouched. */
static void stop_framing(struct conn *c, enum mcframe_why why)
{
    if (c->framing)
        not_reused(c, why);
    c->framing = 0;
}

void conn_reuse_attach(struct conn *c)
{
    c->framing = c->up->reuse;
}

void conn_reuse_request(struct conn *c, const char *p, size_t n)
{
    struct conn_reuse *rz = c->rz;

    if (rz == NULL) {
        if ((rz = c->rz = malloc(sizeof *rz)) == NULL) {
            c->framing = 0;
            return;
        }
        mcreq_init(&rz->req);
        mcreply_init(&rz->reply);
    }
    enum mcframe_proto before = rz->req.proto;
    mcreq_feed(&rz->req, p, n);
    if (before == MCFRAME_NONE)
        mcreply_proto(&rz->reply, rz->req.proto);
    if (rz->req.why != MCFRAME_OK)
        stop_framing(c, rz->req.why);
    else if (c->up->login_set && rz->req.set_seen)
        stop_framing(c, MCFRAME_LOGIN_SET);
}

/* After the sentinel's answer, or stray bytes: whether to keep it. */
static void answered(struct conn *c)
{
    enum mcframe_why why = mcframe_judge(&c->rz->req, &c->rz->reply);

    c->draining = 0;
    if (why == MCFRAME_OK) {
        c->drained = 1;
        return;
    }
    if (why == MCFRAME_REFUSED)
        upstream_sentinel_unanswered(c->up);    /* it never will */
    /* Finish as a server that closed would: the client gets what is
     * queued, then both sides close. */
    stop_framing(c, why);
    c->drained = 0;
    c->upstream_done = 1;
    conn_io_upstream_read_stop(c);
}

size_t conn_reuse_reply(struct conn *c, char *p, size_t n)
{
    struct conn_reuse *rz = c->rz;
    struct mcreply_cut cut;

    if (rz == NULL) {
        /* The server spoke before the client: nothing to frame against. */
        stop_framing(c, MCFRAME_BAD_REPLY);
        return n;
    }
    mcreply_feed(&rz->reply, p, n, &cut);
    size_t out = cut.client;
    if (cut.released > 0) {
        /* Kept back from earlier: they come first. */
        memmove(p + cut.released, p, n);
        memcpy(p, rz->held, cut.released);
        out += cut.released;
    }
    /* rz->held mirrors the framer's count (reply.held), which already
     * includes this chunk's: what it kept back and never released, the
     * sentinel's answer or a stray reply's beginning, is simply not
     * counted any more. */
    if (cut.held > 0)
        memcpy(rz->held + rz->reply.held - cut.held, p + out, cut.held);
    if (c->draining && (rz->reply.found || rz->reply.why != MCFRAME_OK))
        answered(c);
    else if (c->drained && rz->reply.why != MCFRAME_OK)
        answered(c);    /* a stray reply before the client was let go */
    else if (rz->reply.why != MCFRAME_OK)
        stop_framing(c, rz->reply.why);
    return out;
}

int conn_reuse_start(struct conn *c)
{
    struct conn_reuse *rz = c->rz;
    unsigned char s[MCFRAME_SENTINEL_MAX];

    if (!c->framing || c->upstream_done)
        return 0;
    if (rz == NULL) {
        /* Not a byte either way: nothing is owed. */
        c->drained = 1;
        return 1;
    }
    enum mcframe_why why = rz->req.why != MCFRAME_OK ? rz->req.why
                           : !mcreq_boundary(&rz->req) ? MCFRAME_MID_REQUEST
                           : rz->reply.why;
    if (why != MCFRAME_OK) {
        stop_framing(c, why);
        return 0;
    }
    /* xorshift64: the opaque only has to be one the client cannot have
     * chosen; it never sees it. */
    uint64_t *rng = &c->env->rng;
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    size_t len = mcframe_sentinel(&rz->req, &rz->reply, (uint32_t)(*rng >> 16), s);
    if (tlsconn_write(&c->tls, s, len) < 0) {
        conn_close_tls(c, LOG_WARN, "upstream-closed");
        return 1;
    }
    c->draining = 1;
    conn_io_await(c, 1);
    conn_io_flush_upstream(c);
    return 1;
}

static void on_client_detached(uv_handle_t *h)
{
    struct conn *c = h->data;
    uv_loop_t *loop = h->loop;

    c->has_client = 0;
    if (c->closing) {
        conn_unref(c);
        return;
    }
    if (c->counted) {
        upstream_client_closed(c->up);
        c->counted = 0;
    }
    c->client_eof = c->client_shut = 0;
    c->client_reading = c->client_writing = 0;
    c->bytes_up = c->bytes_down = 0;
    c->framing = 0;
    /* memcached holds a connection to the protocol of its first byte. */
    c->pool_proto = c->rz ? (int)c->rz->req.proto : MCFRAME_NONE;
    if (c->rz) {
        mcreq_init(&c->rz->req);
        mcreply_init(&c->rz->reply);
    }
    if (upstream_pool_put(c->up, c, c->pool_proto) < 0) {
        conn_close(c, LOG_DEBUG, "closed", REASON_POOL_FULL, NULL);
        conn_unref(c);
        return;
    }
    c->pooled = 1;
    c->last_active = uv_now(loop);
    uv_timer_start(&c->timer, conn_on_timer, UPSTREAM_POOL_IDLE_MS, 0);
    /* Read on: a FIN or a stray byte while idle closes it at once. */
    if (!c->upstream_reading)
        conn_io_upstream_read_start(c);
    log_event(LOG_DEBUG, "pooled", "upstream", c->up->name, NULL);
    conn_unref(c);      /* the client's handle */
}

int conn_reuse_settle(struct conn *c)
{
    if (c->upstream_done) {
        /* The server ended first: finished as before. */
        if (c->draining || c->drained)
            stop_framing(c, MCFRAME_NO_SENTINEL);
        c->draining = c->drained = 0;
        return 0;
    }
    if (c->draining)
        return 1;
    if (!c->drained)
        return 0;
    if (c->client_writing || conn_io_queued_down(c) > 0)
        return 1;
    c->drained = 0;
    if (c->client_reading) {
        uv_read_stop((uv_stream_t *)&c->client);
        c->client_reading = 0;
    }
    uv_close((uv_handle_t *)&c->client, on_client_detached);
    return 1;
}
