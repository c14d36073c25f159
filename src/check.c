/*
 * check: `memtunnel check`, one upstream after the other.
 *
 * A one-shot command, so plain sequential code rather than the event loop:
 * non-blocking sockets and poll(2) against a deadline, so that no step
 * waits longer than --connect-timeout.  The TLS session is the tunnel's own
 * (tlsconn over the same tls_ctx, the same name and SNI rules), so what
 * check reports is what the tunnel would do.  For each upstream:
 *
 *   resolve -> connect (each address in turn) -> handshake and verify
 *     -> with --auth, the tunnel's own login (auth.h), then `version` in
 *        the protocol of its mode; else a memcache round trip over TLS
 *        (text `version`, or binary VERSION and a SASL PLAIN login with
 *        the node's own credentials, see find_creds)
 *     -> a second connection offering the first one's session
 *
 * check_link.c drives the connections; the findings go into a struct
 * check_result (the failed step and its reason as enums), which
 * check_print.c turns into a block of text or a JSON object, with
 * advice.c's advice when a step failed.
 */
#include "check_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "log.h"
#include "servers.h"

#ifndef MEMTUNNEL_VERSION
#define MEMTUNNEL_VERSION "0.0.0"
#endif

/* Record that step failed, why, and check's words for it. */
__attribute__((format(printf, 4, 5)))
static void fail(struct check_result *r, enum advice_step step, enum reason why,
                 const char *fmt, ...)
{
    va_list ap;

    if (r->failed != ADVICE_STEP_NONE)
        return;                 /* the first failure is the one reported */
    r->failed = step;
    r->why = why;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
}

/* ---- steps ----------------------------------------------------------- */

/* "127.0.0.1:11211" or "[::1]:11211", or without the port "::1". */
static void addr_text(const struct sockaddr *sa, int with_port, char *buf,
                      size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    const void *a;
    unsigned port;

    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        a = &s6->sin6_addr;
        port = ntohs(s6->sin6_port);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        a = &s4->sin_addr;
        port = ntohs(s4->sin_port);
    }
    inet_ntop(sa->sa_family, a, ip, sizeof ip);
    if (!with_port)
        snprintf(buf, len, "%s", ip);
    else
        snprintf(buf, len, sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u",
                 ip, port);
}

/*
 * Resolve and connect, trying each address in turn, each attempt bounded by
 * the connect timeout.  On success l is connected and *peer holds the
 * address (for the second connection).
 */
static int connect_step(struct check_result *r, struct check_link *l,
                        struct sockaddr_storage *peer, socklen_t *peer_len)
{
    const struct config_server *s = r->server;
    struct addrinfo hints, *res = NULL;
    char port[8];
    int err = 0, tried = 0;

    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = s->family == CONFIG_IPV4 ? AF_INET
                    : s->family == CONFIG_IPV6 ? AF_INET6 : AF_UNSPEC;
    hints.ai_flags = s->family != CONFIG_NAME ? AI_NUMERICHOST : 0;
    snprintf(port, sizeof port, "%u", (unsigned)s->port);
    int g = getaddrinfo(s->host, port, &hints, &res);
    if (g != 0) {
        int e = errno;
        fail(r, ADVICE_STEP_RESOLVE,
             g == EAI_SYSTEM ? reason_from_errno(e) : reason_from_gai(g),
             "cannot resolve %s: %s", s->host,
             g == EAI_SYSTEM ? strerror(e) : gai_strerror(g));
        return -1;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if (r->naddrs < CHECK_ADDR_MAX)
            addr_text(ai->ai_addr, 0, r->addrs[r->naddrs++], sizeof r->addrs[0]);
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        double t0 = check_link_now();

        check_link_close(l);
        l->deadline = t0 + r->timeout_ms;
        tried++;
        err = check_link_connect(l, ai->ai_addr, ai->ai_addrlen);
        if (err == 0) {
            r->connect_ms = check_link_now() - t0;
            addr_text(ai->ai_addr, 1, r->address, sizeof r->address);
            memcpy(peer, ai->ai_addr, ai->ai_addrlen);
            *peer_len = ai->ai_addrlen;
            freeaddrinfo(res);
            return 0;
        }
    }
    freeaddrinfo(res);
    check_link_close(l);
    /* A timeout is check's deadline (or the kernel's, which is no later). */
    fail(r, ADVICE_STEP_CONNECT,
         err == -ETIMEDOUT ? REASON_CONNECT_TIMEOUT : reason_from_errno(-err),
         "%s%s",
         err == -ECONNREFUSED ? reason_words(REASON_CONN_REFUSED)
         : err == -ETIMEDOUT ? "connect timed out (--connect-timeout)"
         : strerror(-err),
         tried > 1 ? " (every address tried)" : "");
    return -1;
}

/* A handshake on the connected link, bounded by the connect timeout. */
static int handshake(struct tls_ctx *tls, struct check_result *r,
                     struct check_link *l, void *session, double *ms)
{
    double t0 = check_link_now();
    int h;

    l->deadline = t0 + r->timeout_ms;
    h = check_link_handshake(l, tls, r->tls_name, r->tls_name_is_ip, session);
    *ms = check_link_now() - t0;
    return h;
}

static void handshake_failed(struct check_result *r, struct check_link *l, int h)
{
    char words[160];

    /* What the server sent instead of TLS says a lot (a plaintext port). */
    r->received = l->received;
    r->nhead = l->nhead;
    memcpy(r->head, l->head, l->nhead);
    r->timed_out = h == CHECK_LINK_IO && l->io_err == -ETIMEDOUT;
    if (h == TLSCONN_ERROR && tlsconn_verify_failed(&l->t))
        fail(r, ADVICE_STEP_VERIFY, tlsconn_reason_code(&l->t), "%s",
             tlsconn_reason(&l->t));
    else
        fail(r, ADVICE_STEP_TLS, check_link_reason(l, h), "%s",
             check_link_words(l, h, words, sizeof words));
}

/* Keep the printable part of a server's text. */
static void copy_printable(char *dst, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++)
        dst[o++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    dst[o] = '\0';
}

static void text_round_trip(struct check_result *r, struct check_link *l)
{
    char line[256], words[160];
    int e;

    r->protocol = "text";
    l->deadline = check_link_now() + r->timeout_ms;
    if ((e = check_link_send(l, "version\r\n", 9)) < 0 ||
        (e = check_link_line(l, line, sizeof line)) < 0) {
        /* A SASL server either hangs up or stays silent. */
        r->mc_no_answer = e == TLSCONN_CLOSED || e == TLSCONN_TRUNCATED ||
                          (e == CHECK_LINK_IO && l->io_err == -ETIMEDOUT);
        fail(r, ADVICE_STEP_MEMCACHE, check_link_reason(l, e),
             "no answer to `version`: %s",
             check_link_words(l, e, words, sizeof words));
        return;
    }
    if (strncmp(line, "VERSION ", 8) != 0) {
        copy_printable(r->mc_error, sizeof r->mc_error, line, strlen(line));
        fail(r, ADVICE_STEP_MEMCACHE, REASON_OTHER,
             "unexpected answer to `version`: \"%s\"", r->mc_error);
        return;
    }
    copy_printable(r->mc_version, sizeof r->mc_version, line + 8, strlen(line + 8));
}

/* ---- binary protocol ------------------------------------------------- */

enum {
    BIN_VERSION = 0x0b, BIN_SASL_LIST = 0x20, BIN_SASL_AUTH = 0x21,
    BIN_BODY_MAX = 65536,
};

struct bin_reply {
    unsigned status;
    char value[128];            /* printable, cut to fit */
};

/*
 * One request and its response.  The request buffer may hold the password:
 * it is wiped before it is freed.
 */
static int bin_call(struct check_link *l, unsigned char op, const char *key,
                    size_t klen, const char *val, size_t vlen,
                    struct bin_reply *rep)
{
    size_t blen = klen + vlen, n = 24 + blen;
    unsigned char h[24], *req = calloc(1, n);
    int e;

    if (req == NULL)
        return l->io_err = -ENOMEM, CHECK_LINK_IO;
    req[0] = 0x80;
    req[1] = op;
    req[2] = (unsigned char)(klen >> 8);
    req[3] = (unsigned char)klen;
    for (int i = 0; i < 4; i++)
        req[8 + i] = (unsigned char)(blen >> (24 - 8 * i));
    if (klen > 0)
        memcpy(req + 24, key, klen);
    if (vlen > 0)
        memcpy(req + 24 + klen, val, vlen);
    e = check_link_send(l, req, n);
    explicit_bzero(req, n);
    free(req);
    if (e < 0 || (e = check_link_recv(l, h, sizeof h)) < 0)
        return e;
    size_t body = (size_t)h[8] << 24 | (size_t)h[9] << 16 | (size_t)h[10] << 8 | h[11];
    size_t skip = (size_t)h[4] + ((size_t)h[2] << 8 | h[3]);
    if (h[0] != 0x81 || h[1] != op || body > BIN_BODY_MAX || skip > body)
        return CHECK_LINK_PROTO;
    char *b = malloc(body + 1);
    if (b == NULL)
        return l->io_err = -ENOMEM, CHECK_LINK_IO;
    if ((e = check_link_recv(l, b, body)) == 0) {
        rep->status = (unsigned)h[6] << 8 | h[7];
        copy_printable(rep->value, sizeof rep->value, b + skip, body - skip);
    }
    free(b);
    return e;
}

static const char *status_words(unsigned status)
{
    switch (status) {
    case 0x20: return "authentication error";
    case 0x21: return "authentication continues";
    case 0x81: return "unknown command";
    case 0x83: return "not supported";
    case 0x84: return "internal error";
    case 0x85: return "busy";
    case 0x86: return "temporary failure";
    default: return "error";
    }
}

/* A whole word of a space-separated list. */
static int has_word(const char *list, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = list; (p = strstr(p, w)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

/* The binary protocol's VERSION: 0, or -1 with the failure recorded. */
static int binary_version(struct check_result *r, struct check_link *l)
{
    struct bin_reply rep;
    char words[160];
    int e;

    r->protocol = "binary";
    l->deadline = check_link_now() + r->timeout_ms;
    memset(&rep, 0, sizeof rep);
    if ((e = bin_call(l, BIN_VERSION, NULL, 0, NULL, 0, &rep)) < 0) {
        r->mc_no_answer = e == TLSCONN_CLOSED || e == TLSCONN_TRUNCATED;
        fail(r, ADVICE_STEP_MEMCACHE, check_link_reason(l, e),
             "binary protocol: %s", check_link_words(l, e, words, sizeof words));
        return -1;
    }
    if (rep.status != 0) {
        fail(r, ADVICE_STEP_MEMCACHE, REASON_OTHER,
             "VERSION refused: status 0x%04x (%s)",
             rep.status, status_words(rep.status));
        return -1;
    }
    snprintf(r->mc_version, sizeof r->mc_version, "%s", rep.value);
    return 0;
}

/*
 * Binary VERSION and the SASL mechanism list, then a PLAIN login with c's
 * pair; without a pair (withheld: --verify none) no login is tried and
 * nothing secret is sent.
 */
static void sasl_round_trip(struct check_result *r, struct check_link *l,
                            const struct check_creds *c)
{
    struct bin_reply rep;
    char words[160], *plain;
    size_t ulen, plen, n;
    int e;

    if (binary_version(r, l) < 0)
        return;
    memset(&rep, 0, sizeof rep);
    if ((e = bin_call(l, BIN_SASL_LIST, NULL, 0, NULL, 0, &rep)) < 0)
        goto io;
    /* A server without SASL: nothing to log in to, which most clients
     * accept (the advice notes it). */
    if (rep.status == 0x81 || rep.status == 0x83) {
        r->sasl_off = 1;
        return;
    }
    if (rep.status != 0) {
        r->auth = 0;
        fail(r, ADVICE_STEP_AUTH, REASON_OTHER,
             "the server does not offer SASL: status 0x%04x (%s)",
             rep.status, status_words(rep.status));
        return;
    }
    snprintf(r->mechs, sizeof r->mechs, "%s", rep.value);
    if (c->user == NULL)
        return;
    if (!has_word(r->mechs, "PLAIN")) {
        r->auth = 0;
        fail(r, ADVICE_STEP_AUTH, REASON_OTHER,
             "the server offers no PLAIN login (it offers %s)",
             r->mechs);
        return;
    }

    /* PLAIN: authzid NUL authcid NUL password (RFC 4616). */
    ulen = strlen(c->user);
    plen = strlen(c->pass);
    n = ulen + plen + 2;
    if ((plain = calloc(1, n)) == NULL) {
        fail(r, ADVICE_STEP_AUTH, REASON_OUT_OF_MEMORY, "%s",
             reason_words(REASON_OUT_OF_MEMORY));
        return;
    }
    memcpy(plain + 1, c->user, ulen);
    memcpy(plain + 2 + ulen, c->pass, plen);
    e = bin_call(l, BIN_SASL_AUTH, "PLAIN", 5, plain, n, &rep);
    explicit_bzero(plain, n);
    free(plain);
    if (e < 0)
        goto io;
    r->auth = rep.status == 0;
    if (!r->auth) {
        snprintf(r->mc_error, sizeof r->mc_error, "%s", rep.value);
        fail(r, ADVICE_STEP_AUTH, REASON_OTHER,
             "authentication failed: status 0x%04x (%s)%s%s%s",
             rep.status, status_words(rep.status),
             rep.value[0] ? ", \"" : "", rep.value, rep.value[0] ? "\"" : "");
    }
    return;
io:
    r->mc_no_answer = e == TLSCONN_CLOSED || e == TLSCONN_TRUNCATED;
    fail(r, ADVICE_STEP_MEMCACHE, check_link_reason(l, e),
         "binary protocol: %s", check_link_words(l, e, words, sizeof words));
}

/* ---- --auth ------------------------------------------------------------ */

/*
 * The tunnel's own login (auth.h), on check's connection: the request,
 * then the answer a byte at a time (it is short) until auth_reply has
 * judged it.  Then a round trip in the protocol the mode speaks, to show
 * that the connection works once logged in.
 */
static void auth_round_trip(struct check_result *r, struct check_link *l)
{
    unsigned char *req, got[AUTH_REPLY_MAX + 1];
    size_t n, have = 0;
    enum auth_verdict v = AUTH_MORE;
    enum reason why = REASON_AUTH_UNEXPECTED;
    char words[160];
    int e;

    l->deadline = check_link_now() + r->timeout_ms;
    if (auth_request(r->auth_mode, r->creds.user, r->creds.pass, &req, &n) < 0) {
        fail(r, ADVICE_STEP_AUTH, REASON_OUT_OF_MEMORY, "%s",
             reason_words(REASON_OUT_OF_MEMORY));
        return;
    }
    e = check_link_send(l, req, n);
    auth_request_free(req, n);
    while (e == 0 && v == AUTH_MORE && have < sizeof got) {
        if ((e = check_link_recv(l, got + have, 1)) == 0)
            v = auth_reply(r->auth_mode, got, ++have, &why);
    }
    if (e < 0) {
        r->auth = 0;
        why = e == TLSCONN_CLOSED || e == TLSCONN_TRUNCATED ? REASON_AUTH_CLOSED
              : e == CHECK_LINK_IO && l->io_err == -ETIMEDOUT
              ? REASON_AUTH_TIMEOUT : check_link_reason(l, e);
        fail(r, ADVICE_STEP_AUTH, why, "authentication failed: %s",
             why == REASON_AUTH_CLOSED || why == REASON_AUTH_TIMEOUT
             ? reason_words(why) : check_link_words(l, e, words, sizeof words));
        return;
    }
    r->auth = v == AUTH_OK;
    if (!r->auth) {
        fail(r, ADVICE_STEP_AUTH, why, "authentication failed: %s",
             reason_words(why));
        return;
    }
    if (r->auth_mode == CONFIG_AUTH_SASL)
        binary_version(r, l);
    else
        text_round_trip(r, l);
}

/* ---- one upstream ------------------------------------------------------ */

static void check_upstream(struct tls_ctx *tls, struct check_result *r)
{
    struct check_link l;
    struct sockaddr_storage peer;
    socklen_t peer_len = 0;
    void *session = NULL;

    check_link_init(&l);
    r->resumed = -1;
    r->auth = -1;
    if (connect_step(r, &l, &peer, &peer_len) < 0)
        return;
    int h = handshake(tls, r, &l, NULL, &r->handshake_ms);
    /* The chain is shown even when it was refused: it says why. */
    if (l.tls_inited)
        r->nchain = certinfo_peer_chain(&l.t, r->chain, CERTINFO_CHAIN_MAX);
    if (h < 0) {
        handshake_failed(r, &l, h);
        check_link_close(&l);
        return;
    }
    r->handshake_ok = 1;
    snprintf(r->version, sizeof r->version, "%s", tlsconn_version(&l.t));
    snprintf(r->cipher, sizeof r->cipher, "%s", tlsconn_cipher(&l.t));

    if (r->auth_mode != CONFIG_AUTH_NONE)
        auth_round_trip(r, &l);
    else if (r->creds.user != NULL || r->creds.withheld)
        sasl_round_trip(r, &l, &r->creds);
    else
        text_round_trip(r, &l);
    /* After the first read, when TLS 1.3 tickets have arrived. */
    session = tlsconn_session(&l.t);
    check_link_goodbye(&l);

    /* A second connection to the same address, offering the session. */
    if (session == NULL)
        return;
    l.deadline = check_link_now() + r->timeout_ms;
    int e = check_link_connect(&l, (struct sockaddr *)&peer, peer_len);
    if (e < 0) {
        fail(r, ADVICE_STEP_RESUME, reason_from_errno(-e),
             "second connection: %s", strerror(-e));
    } else if ((h = handshake(tls, r, &l, session, &r->resume_ms)) < 0) {
        char words[160];
        fail(r, ADVICE_STEP_RESUME, check_link_reason(&l, h),
             "second handshake, offering the first one's session: %s",
             check_link_words(&l, h, words, sizeof words));
    } else {
        r->resumed = tlsconn_resumed(&l.t) ? 1 : 0;
    }
    tlsconn_session_free(session);
    check_link_goodbye(&l);
}

/* ---- the command ------------------------------------------------------ */

/*
 * The credentials for server i: the config's (SPEC §3a, config_creds.c),
 * with the names of the pair that applies even when it is not set, for
 * the advice.  With --verify none they are withheld: no credential goes
 * to a peer whose identity was not checked.
 */
static void find_creds(const struct config *cfg, size_t i, struct check_creds *c)
{
    const struct config_creds *cc = &cfg->servers[i].creds;

    memset(c, 0, sizeof *c);
    c->user = cc->user;
    c->pass = cc->pass;
    snprintf(c->user_var, sizeof c->user_var, "%s", cc->user_var);
    snprintf(c->pass_var, sizeof c->pass_var, "%s", cc->pass_var);
    if (c->user != NULL && cfg->verify == CONFIG_VERIFY_NONE) {
        c->user = c->pass = NULL;
        c->withheld = 1;
    }
}

/* Warn on the log, as the tunnel does, about a certificate about to expire. */
static void warn_expiry(const struct config *cfg, const struct check_result *r,
                        time_t now)
{
    int n = r->handshake_ok && r->nchain > 0 ? r->nchain : 0;
    int k = certinfo_first_expiring(r->chain, (size_t)n, now,
                                    cfg->expiry_warn_days);
    char date[32], days[24];

    if (k < 0)
        return;
    long left = certinfo_days_left(r->chain[k].not_after, now);

    certinfo_date(r->chain[k].not_after, date, sizeof date);
    snprintf(days, sizeof days, "%ld", left);
    log_event(LOG_WARN, "cert-expiring", "upstream", r->upstream,
              "subject", r->chain[k].subject, "not_after", date,
              "days_left", days, "reason", left < 0
              ? "expired: only --verify none lets connections through"
              : "the provider must renew it before then, or connections "
                "will fail verification", NULL);
}

static const char *verify_word(enum config_verify v)
{
    return v == CONFIG_VERIFY_FULL ? "full" : v == CONFIG_VERIFY_CHAIN ? "chain"
                                                                        : "none";
}

int check_run(const struct config *cfg, struct tls_ctx *tls, int json, FILE *out)
{
    size_t passed = 0;
    time_t now = time(NULL);

    if (json) {
        fprintf(out, "{\n  \"memtunnel\": \"%s\",\n  \"verify\": \"%s\",\n"
                "  \"expiry_warn_days\": %u,\n  \"upstreams\": [",
                MEMTUNNEL_VERSION, verify_word(cfg->verify),
                cfg->expiry_warn_days);
    }
    for (size_t i = 0; i < cfg->nservers; i++) {
        const struct config_server *s = &cfg->servers[i];
        struct check_result *r = calloc(1, sizeof *r);

        if (r == NULL) {
            log_event(LOG_ERROR, "out-of-memory", "reason", "checking", NULL);
            break;
        }
        r->server = s;
        servers_str(s, r->upstream, sizeof r->upstream);
        r->tls_name = cfg->sni ? cfg->sni : s->host;
        r->tls_name_is_ip = cfg->sni ? 0 : s->family != CONFIG_NAME;
        r->timeout_ms = cfg->connect_timeout_ms;
        r->verify = cfg->verify;
        r->ca_source = cfg->ca_source;
        find_creds(cfg, i, &r->creds);
        r->auth_mode = cfg->auth;

        check_upstream(tls, r);
        warn_expiry(cfg, r, now);
        if (r->failed == ADVICE_STEP_NONE)
            passed++;
        if (json) {
            fputs(i > 0 ? ",\n    " : "\n    ", out);
            check_print_json(out, r, now, cfg->expiry_warn_days);
        } else {
            check_print_text(out, r, now, cfg->expiry_warn_days);
        }
        fflush(out);
        free(r);
    }
    if (json)
        fprintf(out, "\n  ],\n  \"passed\": %zu,\n  \"failed\": %zu,\n"
                "  \"pass\": %s\n}\n", passed, cfg->nservers - passed,
                passed == cfg->nservers ? "true" : "false");
    else
        fprintf(out, "memtunnel check: %zu of %zu upstream%s passed\n", passed,
                cfg->nservers, cfg->nservers == 1 ? "" : "s");
    fflush(out);
    return passed == cfg->nservers ? 0 : EXIT_UNAVAILABLE;
}
