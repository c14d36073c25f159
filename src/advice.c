/*
 * advice: a failure's reason, and for `memtunnel check` its step and what
 * the server showed, turned into what to do.
 *
 * The advice is the point of `memtunnel check`: each failure is explained
 * in terms of what to set (MEMTUNNEL_CA, --sni, --tls-port, credentials),
 * and where a setting weakens security (--verify chain) the risk is spelled
 * out next to it.  The choice goes by the step and the reason, both enums;
 * the server's own words (certificate names, the bytes it answered with)
 * are only quoted.
 */
#include "advice.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *advice_hint(enum reason why)
{
    return reason_info(why)->hint;
}

static const char *const step_names[ADVICE_STEP_COUNT] = {
    [ADVICE_STEP_NONE] = NULL,
    [ADVICE_STEP_RESOLVE] = "resolve",
    [ADVICE_STEP_CONNECT] = "connect",
    [ADVICE_STEP_TLS] = "tls",
    [ADVICE_STEP_VERIFY] = "verify",
    [ADVICE_STEP_MEMCACHE] = "memcache",
    [ADVICE_STEP_AUTH] = "auth",
    [ADVICE_STEP_RESUME] = "resume",
};

const char *advice_step_name(enum advice_step step)
{
    return (unsigned)step < ADVICE_STEP_COUNT ? step_names[step] : NULL;
}

/* ---- helpers ----------------------------------------------------------- */

/* Whole days since t, for "expired N days ago". */
static long days_ago(time_t t, time_t now)
{
    return (long)(((long long)now - (long long)t) / 86400);
}

/* TLS records start with a content type from 20 to 24. */
static int answered_plaintext(const struct advice_facts *f)
{
    return f->nhead > 0 && (f->head[0] < 20 || f->head[0] > 24);
}

/* The first bytes the server sent, printable, for "it answered ERROR". */
static void head_text(const struct advice_facts *f, char *buf, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < f->nhead && o + 1 < len; i++) {
        unsigned char c = f->head[i];
        if (c == '\r' || c == '\n')
            break;
        buf[o++] = c >= 0x20 && c < 0x7f ? (char)c : '.';
    }
    buf[o] = '\0';
}

/* "DNS:a IP:b" for the leaf, or "" when there is no chain. */
static void leaf_names(const struct advice_facts *f, char *buf, size_t len)
{
    size_t o = 0;

    buf[0] = '\0';
    if (f->nchain <= 0)
        return;
    for (size_t i = 0; i < f->chain[0].nsans && o < len; i++) {
        const struct certinfo_san *s = &f->chain[0].sans[i];
        o += (size_t)snprintf(buf + o, len - o, "%s%s:%s", i ? " " : "",
                              s->type == CERTINFO_SAN_IP ? "IP" : "DNS", s->name);
    }
    if (f->chain[0].sans_total > f->chain[0].nsans && o < len)
        snprintf(buf + o, len - o, " and %zu more",
                 f->chain[0].sans_total - f->chain[0].nsans);
}

struct lines {
    char (*v)[ADVICE_LEN];
    size_t n, max;
};

__attribute__((format(printf, 2, 3)))
static void line(struct lines *a, const char *fmt, ...)
{
    va_list ap;

    if (a->n == a->max)
        return;
    va_start(ap, fmt);
    vsnprintf(a->v[a->n++], ADVICE_LEN, fmt, ap);
    va_end(ap);
}

static const char chain_risk[] =
    "--verify chain (MEMTUNNEL_VERIFY=chain) would skip the name check, at a "
    "cost: any certificate from a CA memtunnel trusts would then be accepted "
    "for this server, including one issued to someone else for another name, "
    "and whoever holds one can sit in the middle and read and change the "
    "traffic. Use it only with a private CA that signs nothing but this "
    "provider's servers.";

static const char tls_port[] =
    "If the provider serves TLS on another port, set --tls-port PORT "
    "(MEMTUNNEL_TLS_PORT); the MemCachier stunnel buildpack used 11219.";

/* ---- by step ------------------------------------------------------------- */

static void advise_connect(const struct advice_facts *f, struct lines *a)
{
    switch (f->why) {
    case REASON_CONN_REFUSED:
        line(a, "Nothing accepts connections on port %u. Check the "
             "port. %s", f->port, tls_port);
        break;
    case REASON_CONNECT_TIMEOUT:
    case REASON_CONN_TIMED_OUT:
        line(a, "No answer within %u ms: a firewall may drop the "
             "traffic, or the host is wrong. A slow network needs a "
             "longer --connect-timeout (MEMTUNNEL_CONNECT_TIMEOUT).",
             f->timeout_ms);
        break;
    default:
        line(a, "Check the host and port, and this machine's network.");
    }
}

/* The handshake failed before any certificate was judged. */
static void advise_tls(const struct advice_facts *f, struct lines *a)
{
    char head[40];
    enum reason w = f->why;

    if (answered_plaintext(f)) {
        head_text(f, head, sizeof head);
        line(a, "%s answered the TLS handshake with plaintext (\"%s\"): this "
             "is a plaintext memcached port, not a TLS one.", f->upstream, head);
        line(a, "%s", tls_port);
    } else if (f->timed_out && f->received == 0) {
        line(a, "The server accepted the connection but sent nothing back "
             "within %u ms. A plaintext memcached port waits like this for a "
             "command line: if this is one, it is the wrong port.",
             f->timeout_ms);
        line(a, "%s", tls_port);
    } else if ((w == REASON_CLOSED || w == REASON_TRUNCATED ||
                w == REASON_HANDSHAKE_CLOSED) && f->received == 0) {
        line(a, "The server hung up on the TLS handshake. A plaintext "
             "memcached port with SASL does that; so does a server that "
             "refuses this client.");
        line(a, "%s", tls_port);
    } else if (w == REASON_ALERT_UNRECOGNIZED_NAME) {
        line(a, "The server does not know the name \"%s\" sent as SNI. Set "
             "--sni NAME (MEMTUNNEL_SNI) to the host name the provider "
             "gave.", f->tls_name);
    } else if (w == REASON_ALERT_CERT_REQUIRED ||
               w == REASON_ALERT_HANDSHAKE_FAILURE) {
        line(a, "The server may require a client certificate: give it with "
             "MEMTUNNEL_CERT and MEMTUNNEL_KEY (PEM text) or --cert FILE "
             "--key FILE. Otherwise it shares no cipher suite with memtunnel.");
    } else if (w == REASON_VERSION || w == REASON_ALERT_PROTOCOL_VERSION ||
               w == REASON_NO_SHARED_SUITE) {
        line(a, "The server offers no TLS version or cipher suite memtunnel "
             "accepts (TLS 1.2 or 1.3, forward-secret AEAD suites; TLS 1.3 "
             "only with --tls-min 1.3). It needs updating.");
    } else {
        line(a, "The TLS handshake failed. Is TLS enabled on this port? "
             "--log-level debug shows more.");
    }
}

static void advise_name(const struct advice_facts *f, struct lines *a)
{
    char names[300];

    leaf_names(f, names, sizeof names);
    if (f->nchain > 0 && names[0] == '\0')
        line(a, "The certificate has no DNS or IP names, and memtunnel "
             "never consults the subject CN (RFC 9525): it names no "
             "server. The provider must list \"%s\" among its subject "
             "alternative names.", f->tls_name);
    else
        line(a, "The certificate is for %s, not \"%s\"%s. If that is "
             "the server's name, list the server under it, or set --sni "
             "NAME (MEMTUNNEL_SNI) to send and check that name.",
             names[0] ? names : "other names", f->tls_name,
             f->tls_name_is_ip ? " (an address matches only an IP name, "
             "never a DNS name)" : "");
    line(a, "%s", chain_risk);
}

/* The server's certificate was refused. */
static void advise_verify(const struct advice_facts *f, struct lines *a)
{
    const struct certinfo *leaf = f->nchain > 0 ? &f->chain[0] : NULL;
    const struct certinfo *top = f->nchain > 0 ? &f->chain[f->nchain - 1] : NULL;
    char date[32], clock[32];

    if (f->why == REASON_NAME_MISMATCH) {
        advise_name(f, a);
    } else if (f->why == REASON_EXPIRED && leaf) {
        int k = certinfo_first_expiring(f->chain, (size_t)f->nchain, f->now, 0);
        const struct certinfo *c = k >= 0 ? &f->chain[k] : leaf;
        line(a, "The certificate %s expired on %s, %ld days ago. Only the "
             "provider can fix this, by renewing it: tell them. No setting "
             "short of --verify none gets past it, and that one turns off "
             "every check.", c->subject, certinfo_date(c->not_after, date,
             sizeof date), days_ago(c->not_after, f->now));
    } else if (f->why == REASON_NOT_YET_VALID && leaf) {
        line(a, "The certificate is valid from %s, but this machine's clock "
             "says %s. Check the clock.",
             certinfo_date(leaf->not_before, date, sizeof date),
             certinfo_date(f->now, clock, sizeof clock));
    } else if (f->why == REASON_SELF_SIGNED) {
        line(a, "The server presents a self-signed certificate (%s), which "
             "proves nothing by itself. Ask the provider for the CA "
             "certificate its servers chain to and give it with MEMTUNNEL_CA "
             "(the PEM text) or --ca FILE (MEMTUNNEL_CA_FILE).",
             leaf ? leaf->subject : "no details");
    } else if (f->why == REASON_UNKNOWN_ISSUER) {
        line(a, "The certificate chains to %s, a CA memtunnel does not trust "
             "(it trusts %s%s). If that CA is the provider's, give its "
             "certificate with MEMTUNNEL_CA (the PEM text) or --ca FILE "
             "(MEMTUNNEL_CA_FILE).", top ? top->issuer : "an unknown CA",
             f->ca_source ? "only the CAs given with " : "the system's CA store",
             f->ca_source ? f->ca_source : "");
    } else {
        line(a, "The server's certificate was refused (%s). Check that the "
             "server list names the provider's TLS endpoint and that "
             "MEMTUNNEL_CA, if set, holds the provider's CA.", f->reason_text);
    }
}

static void advise_memcache(const struct advice_facts *f, struct lines *a)
{
    if (!f->have_creds && !f->withheld && f->mc_no_answer)
        line(a, "The server did not answer the text command "
             "`version`. A memcached with SASL answers only the "
             "binary protocol, after a login: set %s and %s so that "
             "check can log in (a node gets only the pair beside the "
             "variable its address came from; MEMTUNNEL_USERNAME and "
             "MEMTUNNEL_PASSWORD override it, and are the only pair for "
             "--servers and MEMTUNNEL_SERVERS).", f->user_var, f->pass_var);
    else
        line(a, "TLS works, but the server did not answer like "
             "memcached. Check that this is the memcache endpoint.");
}

static void advise_auth(const struct advice_facts *f, struct lines *a)
{
    if (f->auth_mode != NULL && f->why == REASON_AUTH_REFUSED)
        line(a, "Authentication failed: the server refused the login of "
             "--auth %s with %s and %s (the password is not shown). Check "
             "both against the provider's settings.", f->auth_mode,
             f->user_var, f->pass_var);
    else if (f->auth_mode != NULL)
        line(a, "The login of --auth %s failed (%s): --auth must match the "
             "server: memcachier for MemCachier, memcached for memcached "
             "-Y, sasl for SASL (Memcached Cloud, memcached -S).",
             f->auth_mode, reason_words(f->why));
    else if (f->auth == 0 && f->mechs[0] != '\0' && f->mc_error[0] != '\0')
        line(a, "The server refused the login with the credentials in "
             "%s and %s (the password is not shown). Check both against "
             "the provider's settings.", f->user_var, f->pass_var);
    else if (f->mechs[0] == '\0')
        line(a, "The server refused to list its SASL mechanisms.");
    else
        line(a, "memtunnel check logs in with PLAIN only; the app's "
             "client may use another mechanism and still work.");
}

/* ---- the whole advice ------------------------------------------------------ */

size_t advice_explain(const struct advice_facts *f, char lines[][ADVICE_LEN],
                      size_t max)
{
    struct lines a = { lines, 0, max };
    int passed = f->step == ADVICE_STEP_NONE;

    if (passed && f->verify_none)
        line(&a, "--verify none: nothing about this server was checked. "
             "Anyone on the path can read and change the traffic.");
    if (f->withheld)
        line(&a, "No login was tried although %s and %s are set: memtunnel "
             "sends no credential to a server it did not verify "
             "(--verify none).", f->user_var, f->pass_var);
    if (passed && f->sasl_off)
        line(&a, "The server does not ask for a SASL login, yet %s and %s "
             "are set: most clients then skip the login, some fail.",
             f->user_var, f->pass_var);

    switch (f->step) {
    case ADVICE_STEP_RESOLVE:
        line(&a, "Check the host name \"%s\" in the server list (--servers, "
             "MEMTUNNEL_SERVERS or the provider's variable).", f->host);
        break;
    case ADVICE_STEP_CONNECT:
        advise_connect(f, &a);
        break;
    case ADVICE_STEP_TLS:
        advise_tls(f, &a);
        break;
    case ADVICE_STEP_VERIFY:
        advise_verify(f, &a);
        break;
    case ADVICE_STEP_MEMCACHE:
        advise_memcache(f, &a);
        break;
    case ADVICE_STEP_AUTH:
        advise_auth(f, &a);
        break;
    case ADVICE_STEP_RESUME:
        line(&a, "The first connection worked, the next one did not: "
             "connections may fail now and then. Run check again; if it "
             "persists, tell the provider.");
        break;
    default:
        break;              /* passed, or a step this code does not know */
    }
    return a.n;
}
