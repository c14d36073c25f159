/*
 * check_print: a check result as a block of text or a JSON object, with
 * the advice that goes with it (advice.c words it; here it is only given
 * the facts and placed).
 */
#include "check_int.h"

#include <string.h>

#include "auth.h"

/* Whole days since t, for "expired N days ago". */
static long days_ago(time_t t, time_t now)
{
    return (long)(((long long)now - (long long)t) / 86400);
}

/* The facts the advice goes by, from r. */
static size_t advise(const struct check_result *r, char lines[][ADVICE_LEN],
                     size_t max)
{
    const struct advice_facts f = {
        .step = r->failed,
        .why = r->why,
        .reason_text = r->reason,
        .upstream = r->upstream,
        .host = r->server->host,
        .port = r->server->port,
        .tls_name = r->tls_name,
        .tls_name_is_ip = r->tls_name_is_ip,
        .timeout_ms = r->timeout_ms,
        .verify_none = r->verify == CONFIG_VERIFY_NONE,
        .ca_source = r->ca_source,
        .head = r->head,
        .nhead = r->nhead,
        .received = r->received,
        .timed_out = r->timed_out,
        .chain = r->chain,
        .nchain = r->nchain,
        .now = time(NULL),
        .user_var = r->creds.user_var,
        .pass_var = r->creds.pass_var,
        .have_creds = r->creds.user != NULL,
        .withheld = r->creds.withheld,
        .mc_no_answer = r->mc_no_answer,
        .sasl_off = r->sasl_off,
        .auth = r->auth,
        .auth_mode = r->auth_mode != CONFIG_AUTH_NONE
                     ? auth_mode_word(r->auth_mode) : NULL,
        .mechs = r->mechs,
        .mc_error = r->mc_error,
    };
    return advice_explain(&f, lines, max);
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
    if (r->failed == ADVICE_STEP_VERIFY) {
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
    char hints[4][ADVICE_LEN], buf[300];
    size_t nh = advise(r, hints, 4);
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
    if (r->handshake_ok || r->failed == ADVICE_STEP_VERIFY)
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
    if (r->auth_mode != CONFIG_AUTH_NONE && r->handshake_ok) {
        fprintf(out, "  auth       %s with %s and %s: ",
                auth_mode_word(r->auth_mode), r->creds.user_var,
                r->creds.pass_var);
        if (r->auth == 1)
            fputs("ok\n", out);
        else if (r->auth == 0)
            fprintf(out, "FAILED: %s\n", reason_words(r->why));
        else
            fputs("not tried\n", out);
    }
    if (r->protocol) {
        fprintf(out, "  memcache   %s protocol, ", r->protocol);
        if (r->mc_version[0])
            fprintf(out, "version %s\n", r->mc_version);
        else
            fprintf(out, "FAILED: %s\n", r->reason);
    }
    if (r->auth_mode == CONFIG_AUTH_NONE && r->creds.user && r->mc_version[0]) {
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
    if (r->failed != ADVICE_STEP_NONE)
        fprintf(out, "  result     FAIL at %s: %s\n", advice_step_name(r->failed),
                r->reason);
    else
        fprintf(out, "  result     PASS\n");
    for (size_t i = 0; i < nh; i++)
        fprintf(out, "  %-11s%s\n", i > 0 ? "" : r->failed != ADVICE_STEP_NONE ? "to fix" : "note",
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

/* The verdict: what failed and why, what to do, and where it connected. */
static void json_outcome(FILE *out, const struct check_result *r,
                         const char *in)
{
    char hints[4][ADVICE_LEN];
    size_t nh = advise(r, hints, 4);
    int failed = r->failed != ADVICE_STEP_NONE;

    jstr(out, "upstream", r->upstream);
    fprintf(out, ",%s\"host\": ", in);
    json_string(out, r->server->host);
    fprintf(out, ",%s\"port\": %u,%s\"pass\": %s,%s", in,
            (unsigned)r->server->port, in, failed ? "false" : "true", in);
    jstr(out, "failed_step", advice_step_name(r->failed));
    fprintf(out, ",%s", in);
    jstr(out, "reason", failed ? r->reason : NULL);
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
}

/* The handshake and the verdict on the server's certificate. */
static void json_tls(FILE *out, const struct check_result *r, const char *in)
{
    char buf[300];

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
            : r->failed == ADVICE_STEP_VERIFY ? "false" : "null");
    jstr(out, "verdict", r->handshake_ok || r->failed == ADVICE_STEP_VERIFY
         ? verdict(r, buf, sizeof buf) : NULL);
    fputs("}", out);
}

/* The certificates, and the first to expire within warn_days. */
static void json_chain(FILE *out, const struct check_result *r, time_t now,
                       unsigned warn_days, const char *in)
{
    char buf[32];
    int shown = r->nchain > 0 ? r->nchain : 0;

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
}

/* The memcache round trip and the SASL login. */
static void json_memcache(FILE *out, const struct check_result *r,
                          const char *in)
{
    fprintf(out, ",%s\"memcache\": {", in);
    jstr(out, "protocol", r->protocol);
    fputs(", ", out);
    jstr(out, "version", r->mc_version[0] ? r->mc_version : NULL);
    fputs(", \"auth\": ", out);
    if (r->auth_mode != CONFIG_AUTH_NONE) {
        fputs("{", out);
        jstr(out, "mode", auth_mode_word(r->auth_mode));
        fputs(", ", out);
        jstr(out, "username_variable", r->creds.user_var);
        fputs(", ", out);
        jstr(out, "password_variable", r->creds.pass_var);
        fprintf(out, ", \"ok\": %s}", jbool(r->auth));
    } else {
        fputs("null", out);
    }
    fputs(", \"sasl\": ", out);
    if (r->auth_mode == CONFIG_AUTH_NONE && (r->creds.user || r->creds.withheld)) {
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
    fputs("}", out);
}

void check_print_json(FILE *out, const struct check_result *r, time_t now,
                      unsigned warn_days)
{
    const char *in = "\n      ";

    fprintf(out, "{%s", in);
    json_outcome(out, r, in);
    json_tls(out, r, in);
    json_chain(out, r, now, warn_days, in);
    json_memcache(out, r, in);
    fputs("\n    }", out);
}
