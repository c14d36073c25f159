/*
 * conn_auth: --auth's login on a verified connection, before any client
 * byte (SPEC §3a).  The request comes from auth.c and is wiped once
 * encrypted; the server's answer is gathered here, judged by auth.c and
 * never reaches the client.  A failure closes the connection (its client
 * at once) and logs one error line per upstream per 10 s at most; the
 * tunnel goes on, and a spare is retried after the spares' backoff.
 */
#include <stdio.h>

#include "advice.h"
#include "auth.h"
#include "conn_int.h"

void conn_auth_failed(struct conn *c, enum reason why, const char *words)
{
    struct upstream *up = c->up;
    unsigned suppressed = 0;
    char skipped[24];

    if (c->closing)
        return;
    upstream_failed(up, UPSTREAM_AUTH_FAILED);
    if (upstream_auth_log_due(up, uv_now(c->timer.loop), &suppressed)) {
        snprintf(skipped, sizeof skipped, "%u", suppressed);
        log_event(LOG_ERROR, "auth-failed", "upstream", up->name,
                  "mode", auth_mode_word(c->env->cfg->auth),
                  "reason", words ? words : reason_words(why),
                  "suppressed", suppressed ? skipped : NULL,
                  "hint", advice_hint(why), NULL);
    }
    buf_free(&c->auth_in);
    conn_close(c, LOG_DEBUG, NULL, why, NULL);
}

void conn_auth_start(struct conn *c)
{
    const struct config_creds *cr = &c->up->server->creds;
    unsigned char *req;
    size_t n;

    if (auth_request(c->env->cfg->auth, cr->user, cr->pass, &req, &n) < 0) {
        conn_close(c, LOG_ERROR, "out-of-memory", REASON_OUT_OF_MEMORY,
                   "making the login");
        return;
    }
    c->state = CONN_AUTHENTICATING;
    ssize_t w = tlsconn_write(&c->tls, req, n);
    auth_request_free(req, n);
    if (w < 0) {
        conn_close_tls(c, LOG_WARN, "upstream-closed");
        return;
    }
    conn_io_await(c, 1);
    conn_io_flush_upstream(c);
    if (!c->closing)
        conn_auth_read(c);   /* wolfSSL may hold data from the handshake */
}

void conn_auth_read(struct conn *c)
{
    enum config_auth mode = c->env->cfg->auth;
    enum reason why;

    while (!c->closing) {
        /* One byte past the longest answer is enough to judge it, and
         * auth_reply judges one that long. */
        size_t have = buf_len(&c->auth_in), room;
        size_t want = have <= AUTH_REPLY_MAX ? AUTH_REPLY_MAX + 1 - have : 1;
        char *p = buf_reserve(&c->auth_in, want, &room);
        if (p == NULL) {
            conn_close(c, LOG_ERROR, "out-of-memory", REASON_OUT_OF_MEMORY,
                       "reading the login's answer");
            return;
        }
        ssize_t n = tlsconn_read(&c->tls, p, want);
        if (n == TLSCONN_AGAIN)
            break;
        if (n == TLSCONN_ERROR) {
            conn_auth_failed(c, tlsconn_reason_code(&c->tls),
                             tlsconn_reason(&c->tls));
            return;
        }
        if (n <= 0) {
            conn_auth_failed(c, REASON_AUTH_CLOSED, NULL);
            return;
        }
        buf_commit(&c->auth_in, (size_t)n);
        if (!c->session_kept)
            conn_io_keep_session(c);
        switch (auth_reply(mode, (const unsigned char *)buf_peek(&c->auth_in),
                           buf_len(&c->auth_in), &why)) {
        case AUTH_MORE:
            continue;
        case AUTH_FAILED:
            conn_auth_failed(c, why, NULL);
            return;
        case AUTH_OK:
            buf_free(&c->auth_in);
            conn_io_await(c, 0);
            conn_io_flush_upstream(c);
            if (!c->closing)
                conn_setup_opened(c);
            return;
        }
    }
    conn_io_flush_upstream(c);
}
