/*
 * check_print: a check result as a block of text or a JSON object, and
 * the advice that goes with a failure.
 *
 * The advice is the point of `memtunnel check`: each failure is explained
 * in terms of what to set (MEMTUNNEL_CA, --sni, --tls-port, credentials),
 * and where a setting weakens security (--verify chain) the risk is spelled
 * out next to it.
 */
#include "check_int.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

/* Whole days since t, for "expired N days ago". */
static long days_ago(time_t t, time_t now)
{
    return (long)(((long long)now - (long long)t) / 86400);
}

/* TLS records start with a content type from 20 to 24. */
static int answered_plaintext(const struct check_result *r)
{
    return r->nhead > 0 && (r->head[0] < 20 || r->head[0] > 24);
}

/* The first bytes the server sent, printable, for "it answered ERROR". */
static void head_text(const struct check_result *r, char *buf, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < r->nhead && o + 1 < len; i++) {
        unsigned char c = r->head[i];
        if (c == '\r' || c == '\n')
            break;
        buf[o++] = c >= 0x20 && c < 0x7f ? (char)c : '.';
    }
    buf[o] = '\0';
}

/* "DNS:a IP:b" for the leaf, or "" when there is no chain. */
static void leaf_names(const struct check_result *r, char *buf, size_t len)
{
    size_t o = 0;

    buf[0] = '\0';
    if (r->nchain <= 0)
        return;
    for (size_t i = 0; i < r->chain[0].nsans && o < len; i++) {
        const struct certinfo_san *s = &r->chain[0].sans[i];
        o += (size_t)snprintf(buf + o, len - o, "%s%s:%s", i ? " " : "",
                              s->type == CERTINFO_SAN_IP ? "IP" : "DNS", s->name);
    }
    if (r->chain[0].sans_total > r->chain[0].nsans && o < len)
        snprintf(buf + o, len - o, " and %zu more",
                 r->chain[0].sans_total - r->chain[0].nsans);
}

static int is(const char *a, const char *b)
{
    return a != NULL && strcmp(a, b) == 0;
}

struct advice {
    char (*hints)[CHECK_HINT_LEN];
    size_t n, max;
};

__attribute__((format(printf, 2, 3)))
static void hint(struct advice *a, const char *fmt, ...)
{
    va_list ap;

    if (a->n == a->max)
        return;
    va_start(ap, fmt);
    vsnprintf(a->hints[a->n++], CHECK_HINT_LEN, fmt, ap);
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

static void advise_tls(const struct check_result *r, struct advice *a)
{
    char head[40];

    if (answered_plaintext(r)) {
        head_text(r, head, sizeof head);
        hint(a, "%s answered the TLS handshake with plaintext (\"%s\"): this "
             "is a plaintext memcached port, not a TLS one.", r->upstream, head);
        hint(a, "%s", tls_port);
    } else if (r->timed_out && r->received == 0) {
        hint(a, "The server accepted the connection but sent nothing back "
             "within %u ms. A plaintext memcached port waits like this for a "
             "command line: if this is one, it is the wrong port.",
             (unsigned)r->timeout_ms);
        hint(a, "%s", tls_port);
    } else if (strstr(r->reason, "closed the connection") && r->received == 0) {
        hint(a, "The server hung up on the TLS handshake. A plaintext "
             "memcached port with SASL does that; so does a server that "
             "refuses this client.");
        hint(a, "%s", tls_port);
    } else if (strstr(r->reason, "unrecognized name")) {
        hint(a, "The server does not know the name \"%s\" sent as SNI. Set "
             "--sni NAME (MEMTUNNEL_SNI) to the host name the provider "
             "gave.", r->tls_name);
    } else if (strstr(r->reason, "certificate required") ||
               strstr(r->reason, "handshake failure")) {
        hint(a, "The server may require a client certificate: give it with "
             "MEMTUNNEL_CERT and MEMTUNNEL_KEY (PEM text) or --cert FILE "
             "--key FILE. Otherwise it shares no cipher suite with memtunnel.");
    } else if (strstr(r->reason, "version") || strstr(r->reason, "suite")) {
        hint(a, "The server offers no TLS version or cipher suite memtunnel "
             "accepts (TLS 1.2 or 1.3, forward-secret AEAD suites; TLS 1.3 "
             "only with --tls-min 1.3). It needs updating.");
    } else {
        hint(a, "The TLS handshake failed. Is TLS enabled on this port? "
             "--log-level debug shows more.");
    }
}

static void advise_verify(const struct check_result *r, time_t now,
                          struct advice *a)
{
    const struct certinfo *leaf = r->nchain > 0 ? &r->chain[0] : NULL;
    const struct certinfo *top = r->nchain > 0 ? &r->chain[r->nchain - 1] : NULL;
    char names[300], date[32], clock[32];

    if (strcmp(r->reason, "name mismatch") == 0) {
        leaf_names(r, names, sizeof names);
        if (r->nchain > 0 && names[0] == '\0')
            hint(a, "The certificate has no DNS or IP names, and memtunnel "
                 "never consults the subject CN (RFC 9525): it names no "
                 "server. The provider must list \"%s\" among its subject "
                 "alternative names.", r->tls_name);
        else
            hint(a, "The certificate is for %s, not \"%s\"%s. If that is "
                 "the server's name, list the server under it, or set --sni "
                 "NAME (MEMTUNNEL_SNI) to send and check that name.",
                 names[0] ? names : "other names", r->tls_name,
                 r->tls_name_is_ip ? " (an address matches only an IP name, "
                 "never a DNS name)" : "");
        hint(a, "%s", chain_risk);
    } else if (strcmp(r->reason, "certificate expired") == 0 && leaf) {
        int k = certinfo_first_expiring(r->chain, (size_t)r->nchain, now, 0);
        const struct certinfo *c = k >= 0 ? &r->chain[k] : leaf;
        hint(a, "The certificate %s expired on %s, %ld days ago. Only the "
             "provider can fix this, by renewing it: tell them. No setting "
             "short of --verify none gets past it, and that one turns off "
             "every check.", c->subject, certinfo_date(c->not_after, date,
             sizeof date), days_ago(c->not_after, now));
    } else if (strcmp(r->reason, "certificate not yet valid") == 0 && leaf) {
        hint(a, "The certificate is valid from %s, but this machine's clock "
             "says %s. Check the clock.",
             certinfo_date(leaf->not_before, date, sizeof date),
             certinfo_date(now, clock, sizeof clock));
    } else if (strcmp(r->reason, "self-signed certificate") == 0) {
        hint(a, "The server presents a self-signed certificate (%s), which "
             "proves nothing by itself. Ask the provider for the CA "
             "certificate its servers chain to and give it with MEMTUNNEL_CA "
             "(the PEM text) or --ca FILE (MEMTUNNEL_CA_FILE).",
             leaf ? leaf->subject : "no details");
    } else if (strcmp(r->reason, "unknown issuer") == 0) {
        hint(a, "The certificate chains to %s, a CA memtunnel does not trust "
             "(it trusts %s%s). If that CA is the provider's, give its "
             "certificate with MEMTUNNEL_CA (the PEM text) or --ca FILE "
             "(MEMTUNNEL_CA_FILE).", top ? top->issuer : "an unknown CA",
             r->ca_source ? "only the CAs given with " : "the system's CA store",
             r->ca_source ? r->ca_source : "");
    } else {
        hint(a, "The server's certificate was refused (%s). Check that the "
             "server list names the provider's TLS endpoint and that "
             "MEMTUNNEL_CA, if set, holds the provider's CA.", r->reason);
    }
}

size_t check_print_advice(const struct check_result *r,
                          char hints[][CHECK_HINT_LEN], size_t max)
{
    struct advice a = { hints, 0, max };
    time_t now = time(NULL);
    const char *f = r->failed;

    if (f == NULL && r->verify == CONFIG_VERIFY_NONE)
        hint(&a, "--verify none: nothing about this server was checked. "
             "Anyone on the path can read and change the traffic.");
    if (r->creds.withheld)
        hint(&a, "No login was tried although %s and %s are set: memtunnel "
             "sends no credential to a server it did not verify "
             "(--verify none).", r->creds.user_var, r->creds.pass_var);
    if (f == NULL && r->sasl_off)
        hint(&a, "The server does not ask for a SASL login, yet %s and %s "
             "are set: most clients then skip the login, some fail.",
             r->creds.user_var, r->creds.pass_var);
    if (f == NULL)
        return a.n;
    if (is(f, "resolve")) {
        hint(&a, "Check the host name \"%s\" in the server list (--servers, "
             "MEMTUNNEL_SERVERS or the provider's variable).", r->server->host);
    } else if (is(f, "connect")) {
        if (r->connect_errno == ECONNREFUSED)
            hint(&a, "Nothing accepts connections on port %u. Check the "
                 "port. %s", (unsigned)r->server->port, tls_port);
        else if (r->connect_errno == ETIMEDOUT)
            hint(&a, "No answer within %u ms: a firewall may drop the "
                 "traffic, or the host is wrong. A slow network needs a "
                 "longer --connect-timeout (MEMTUNNEL_CONNECT_TIMEOUT).",
                 (unsigned)r->timeout_ms);
        else
            hint(&a, "Check the host and port, and this machine's network.");
    } else if (is(f, "tls")) {
        advise_tls(r, &a);
    } else if (is(f, "verify")) {
        advise_verify(r, now, &a);
    } else if (is(f, "memcache")) {
        if (r->creds.user == NULL && !r->creds.withheld && r->mc_no_answer)
            hint(&a, "The server did not answer the text command "
                 "`version`. A memcached with SASL answers only the "
                 "binary protocol, after a login: set %s and %s so that "
                 "check can log in (a node gets only the pair beside the "
                 "variable its address came from; MEMTUNNEL_USERNAME and "
                 "MEMTUNNEL_PASSWORD override it, and are the only pair for "
                 "--servers and MEMTUNNEL_SERVERS).",
                 r->creds.user_var, r->creds.pass_var);
        else
            hint(&a, "TLS works, but the server did not answer like "
                 "memcached. Check that this is the memcache endpoint.");
    } else if (is(f, "auth")) {
        if (r->auth == 0 && r->mechs[0] != '\0' && r->mc_error[0] != '\0')
            hint(&a, "The server refused the login with the credentials in "
                 "%s and %s (the password is not shown). Check both against "
                 "the provider's settings.", r->creds.user_var,
                 r->creds.pass_var);
        else if (r->mechs[0] == '\0')
            hint(&a, "The server refused to list its SASL mechanisms.");
        else
            hint(&a, "memtunnel check logs in with PLAIN only; the app's "
                 "client may use another mechanism and still work.");
    } else if (is(f, "resume")) {
        hint(&a, "The first connection worked, the next one did not: "
             "connections may fail now and then. Run check again; if it "
             "persists, tell the provider.");
    }
    return a.n;
}

/* ---- text ------------------------------------------------------------ */

static void print_cert(FILE *out, const struct certinfo *c, int k, time_t now)
{
    char names[1200], a[32], b[32];
    size_t o = 0;
    long left = certinfo_days_left(c->not_after, now);

    fprintf(out, "  cert %-6d%s\n", k, c->subject);
    fprintf(out, "    issuer   %s\n", strcmp(c->issuer, c->subject) == 0
            ? "(itself)" : c->issuer);
    names[0] = '\0';
    for (size_t i = 0; i < c->nsans && o < sizeof names; i++)
        o += (size_t)snprintf(names + o, sizeof names - o, "%s%s:%s",
                              i ? " " : "",
                              c->sans[i].type == CERTINFO_SAN_IP ? "IP" : "DNS",
                              c->sans[i].name);
    if (c->sans_total > c->nsans && o < sizeof names)
        snprintf(names + o, sizeof names - o, " and %zu more",
                 c->sans_total - c->nsans);
    if (names[0])
        fprintf(out, "    names    %s\n", names);
    fprintf(out, "    valid    %s to %s, ", certinfo_date(c->not_before, a, sizeof a),
            certinfo_date(c->not_after, b, sizeof b));
    long ago = days_ago(c->not_after, now);
    if (left >= 0)
        fprintf(out, "%ld day%s left\n", left, left == 1 ? "" : "s");
    else if (ago == 0)
        fputs("EXPIRED less than a day ago\n", out);
    else
        fprintf(out, "EXPIRED %ld day%s ago\n", ago, ago == 1 ? "" : "s");
}

static const char *verdict(const struct check_result *r, char *buf, size_t len)
{
    if (is(r->failed, "verify")) {
        snprintf(buf, len, "FAILED: %s", r->reason);
    } else if (r->verify == CONFIG_VERIFY_FULL) {
        snprintf(buf, len, "ok: the chain leads to a trusted CA, the dates are "
                 "valid and the certificate is for \"%s\"", r->tls_name);
    } else if (r->verify == CONFIG_VERIFY_CHAIN) {
        snprintf(buf, len, "partly: the chain leads to a trusted CA and the "
                 "dates are valid; the name was NOT checked (--verify chain)");
    } else {
        snprintf(buf, len, "NOT VERIFIED (--verify none)");
    }
    return buf;
}

void check_print_text(FILE *out, const struct check_result *r, time_t now,
                      unsigned warn_days)
{
    char hints[4][CHECK_HINT_LEN], buf[300];
    size_t nh = check_print_advice(r, hints, 4);
    int shown = r->nchain > 0 ? r->nchain : 0;

    fprintf(out, "upstream     %s\n", r->upstream);
    if (r->naddrs > 0) {
        fputs("  resolved   ", out);
        for (size_t i = 0; i < r->naddrs; i++)
            fprintf(out, "%s%s", i ? " " : "", r->addrs[i]);
        fputc('\n', out);
    }
    if (r->address[0])
        fprintf(out, "  connected  %s in %.1f ms\n", r->address, r->connect_ms);
    if (r->handshake_ok) {
        fprintf(out, "  tls        %s %s, handshake %.1f ms\n", r->version,
                r->cipher, r->handshake_ms);
        if (r->resumed >= 0)
            fprintf(out, "  resumed    %s, second handshake %.1f ms\n",
                    r->resumed ? "yes" : "no (the server did not resume "
                    "the session: every connection pays a full handshake)",
                    r->resume_ms);
    } else if (r->address[0]) {
        fprintf(out, "  tls        FAILED after %.1f ms: %s\n", r->handshake_ms,
                r->reason);
    }
    for (int k = 0; k < shown; k++)
        print_cert(out, &r->chain[k], k, now);
    if (r->handshake_ok && r->nchain < 0)
        fputs("  chain      not available (the certificates could not be "
              "kept or decoded)\n", out);
    if (r->handshake_ok || is(r->failed, "verify"))
        fprintf(out, "  verify     %s\n", verdict(r, buf, sizeof buf));
    int k = r->handshake_ok
        ? certinfo_first_expiring(r->chain, (size_t)shown, now, warn_days) : -1;
    if (k >= 0 && r->chain[k].not_after < now)
        fprintf(out, "  WARNING    cert %d EXPIRED on %s\n", k,
                certinfo_date(r->chain[k].not_after, buf, sizeof buf));
    else if (k >= 0)
        fprintf(out, "  WARNING    cert %d expires in %ld days, on %s: the "
                "provider must renew it before then\n", k,
                certinfo_days_left(r->chain[k].not_after, now),
                certinfo_date(r->chain[k].not_after, buf, sizeof buf));
    if (r->protocol) {
        fprintf(out, "  memcache   %s protocol, ", r->protocol);
        if (r->mc_version[0])
            fprintf(out, "version %s\n", r->mc_version);
        else
            fprintf(out, "FAILED: %s\n", r->reason);
    }
    if (r->creds.user && r->mc_version[0]) {
        fprintf(out, "  sasl       with %s and %s: ", r->creds.user_var,
                r->creds.pass_var);
        if (r->auth == 1)
            fprintf(out, "authenticated (mechanisms offered: %s)\n", r->mechs);
        else if (r->sasl_off)
            fputs("not used, the server does not ask for a login\n", out);
        else
            fprintf(out, "FAILED: %s\n", r->reason);
    } else if (r->creds.withheld && r->mc_version[0]) {
        fprintf(out, "  sasl       with %s and %s: not tried: --verify none, "
                "and no credential goes to a server that was not verified\n",
                r->creds.user_var, r->creds.pass_var);
    }
    if (r->failed)
        fprintf(out, "  result     FAIL at %s: %s\n", r->failed, r->reason);
    else
        fprintf(out, "  result     PASS\n");
    for (size_t i = 0; i < nh; i++)
        fprintf(out, "  %-11s%s\n", i > 0 ? "" : r->failed ? "to fix" : "note",
                hints[i]);
    fputc('\n', out);
}

/* ---- JSON -------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1 to 4), or 0 when invalid. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else
        return 0;
    /* No overlong forms, no surrogates, nothing past U+10FFFF. */
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

/* s as a JSON string, quotes included; invalid UTF-8 becomes U+FFFD. */
static void json_string(FILE *out, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;

    fputc('"', out);
    while (*s) {
        size_t n;

        if (*s == '"' || *s == '\\') {
            fputc('\\', out);
            fputc(*s++, out);
        } else if (*s == '\n') {
            fputs("\\n", out);
            s++;
        } else if (*s == '\t') {
            fputs("\\t", out);
            s++;
        } else if (*s < 0x20 || *s == 0x7f) {
            fprintf(out, "\\u%04x", *s++);
        } else if (*s < 0x80) {
            fputc(*s++, out);
        } else if ((n = utf8_len(s)) > 0) {
            fwrite(s, 1, n, out);
            s += n;
        } else {
            fputs("\\ufffd", out);
            s++;
        }
    }
    fputc('"', out);
}

/* "key": "value", or "key": null when v is NULL. */
static void jstr(FILE *out, const char *key, const char *v)
{
    fprintf(out, "\"%s\": ", key);
    if (v)
        json_string(out, v);
    else
        fputs("null", out);
}

static const char *jbool(int v)
{
    return v > 0 ? "true" : v == 0 ? "false" : "null";
}

static void json_cert(FILE *out, const struct certinfo *c, time_t now)
{
    char a[32], b[32];
    int first;

    fputs("{", out);
    jstr(out, "subject", c->subject);
    fputs(", ", out);
    jstr(out, "issuer", c->issuer);
    for (int ip = 0; ip <= 1; ip++) {
        fprintf(out, ", \"%s\": [", ip ? "ip_addresses" : "dns_names");
        first = 1;
        for (size_t i = 0; i < c->nsans; i++) {
            if ((c->sans[i].type == CERTINFO_SAN_IP) != ip)
                continue;
            fputs(first ? "" : ", ", out);
            json_string(out, c->sans[i].name);
            first = 0;
        }
        fputs("]", out);
    }
    fprintf(out, ", \"names_total\": %zu, \"not_before\": \"%s\", "
            "\"not_after\": \"%s\", \"days_left\": %ld}", c->sans_total,
            certinfo_date(c->not_before, a, sizeof a),
            certinfo_date(c->not_after, b, sizeof b),
            certinfo_days_left(c->not_after, now));
}

void check_print_json(FILE *out, const struct check_result *r, time_t now,
                      unsigned warn_days)
{
    const char *in = "\n      ";
    char hints[4][CHECK_HINT_LEN], buf[300];
    size_t nh = check_print_advice(r, hints, 4);
    int shown = r->nchain > 0 ? r->nchain : 0;

    fprintf(out, "{%s", in);
    jstr(out, "upstream", r->upstream);
    fprintf(out, ",%s\"host\": ", in);
    json_string(out, r->server->host);
    fprintf(out, ",%s\"port\": %u,%s\"pass\": %s,%s", in,
            (unsigned)r->server->port, in, r->failed ? "false" : "true", in);
    jstr(out, "failed_step", r->failed);
    fprintf(out, ",%s", in);
    jstr(out, "reason", r->failed ? r->reason : NULL);
    fprintf(out, ",%s\"advice\": [", in);
    for (size_t i = 0; i < nh; i++) {
        fputs(i ? ", " : "", out);
        json_string(out, hints[i]);
    }
    fprintf(out, "],%s\"resolved\": [", in);
    for (size_t i = 0; i < r->naddrs; i++) {
        fputs(i ? ", " : "", out);
        json_string(out, r->addrs[i]);
    }
    fprintf(out, "],%s", in);
    jstr(out, "address", r->address[0] ? r->address : NULL);
    if (r->address[0])
        fprintf(out, ",%s\"connect_ms\": %.3f", in, r->connect_ms);
    else
        fprintf(out, ",%s\"connect_ms\": null", in);

    fprintf(out, ",%s\"tls\": {\"ok\": %s, ", in,
            r->address[0] ? jbool(r->handshake_ok) : "null");
    if (r->address[0])
        fprintf(out, "\"handshake_ms\": %.3f, ", r->handshake_ms);
    else
        fputs("\"handshake_ms\": null, ", out);
    jstr(out, "version", r->handshake_ok ? r->version : NULL);
    fputs(", ", out);
    jstr(out, "cipher", r->handshake_ok ? r->cipher : NULL);
    fprintf(out, ", \"resumed\": %s, ", jbool(r->resumed));
    if (r->resumed >= 0)
        fprintf(out, "\"resumed_handshake_ms\": %.3f}", r->resume_ms);
    else
        fputs("\"resumed_handshake_ms\": null}", out);

    fprintf(out, ",%s\"verify\": {\"mode\": \"%s\", ", in,
            r->verify == CONFIG_VERIFY_FULL ? "full"
            : r->verify == CONFIG_VERIFY_CHAIN ? "chain" : "none");
    jstr(out, "name", r->tls_name);
    fprintf(out, ", \"ok\": %s, ", r->handshake_ok ? "true"
            : is(r->failed, "verify") ? "false" : "null");
    jstr(out, "verdict", r->handshake_ok || is(r->failed, "verify")
         ? verdict(r, buf, sizeof buf) : NULL);
    fputs("}", out);

    fprintf(out, ",%s\"chain\": [", in);
    for (int k = 0; k < shown; k++) {
        fprintf(out, "%s%s  ", k ? "," : "", in);
        json_cert(out, &r->chain[k], now);
    }
    fprintf(out, "%s],%s\"expiring\": ", shown ? in : "", in);
    int k = r->handshake_ok
        ? certinfo_first_expiring(r->chain, (size_t)shown, now, warn_days) : -1;
    if (k >= 0)
        fprintf(out, "{\"index\": %d, \"not_after\": \"%s\", \"days_left\": %ld}",
                k, certinfo_date(r->chain[k].not_after, buf, sizeof buf),
                certinfo_days_left(r->chain[k].not_after, now));
    else
        fputs("null", out);

    fprintf(out, ",%s\"memcache\": {", in);
    jstr(out, "protocol", r->protocol);
    fputs(", ", out);
    jstr(out, "version", r->mc_version[0] ? r->mc_version : NULL);
    fputs(", \"sasl\": ", out);
    if (r->creds.user || r->creds.withheld) {
        fputs("{", out);
        jstr(out, "username_variable", r->creds.user_var);
        fputs(", ", out);
        jstr(out, "password_variable", r->creds.pass_var);
        fprintf(out, ", \"withheld\": %s", r->creds.withheld ? "true" : "false");
        fprintf(out, ", \"offered\": %s, ", r->sasl_off ? "false"
                : r->mechs[0] ? "true" : "null");
        jstr(out, "mechanisms", r->mechs[0] ? r->mechs : NULL);
        fprintf(out, ", \"authenticated\": %s, ", jbool(r->auth));
        jstr(out, "error", r->auth == 0 && r->mc_error[0] ? r->mc_error : NULL);
        fputs("}", out);
    } else {
        fputs("null", out);
    }
    fputs("}\n    }", out);
}
