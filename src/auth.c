/*
 * auth: the requests of --auth's modes, and the judgement of the answers
 * (auth.h has the forms).
 */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 250                     /* memcached's longest key */
#define BIN_HEADER 24
#define BIN_SASL_AUTH 0x21
#define BIN_OPAQUE 0x6d746175u          /* "mtau": ours, echoed back */

const char *auth_mode_word(enum config_auth mode)
{
    switch (mode) {
    case CONFIG_AUTH_MEMCACHIER: return "memcachier";
    case CONFIG_AUTH_MEMCACHED: return "memcached";
    case CONFIG_AUTH_SASL: return "sasl";
    case CONFIG_AUTH_NONE: break;
    }
    return "none";
}

int auth_user_ok(enum config_auth mode, const char *user, const char **why)
{
    size_t n = strlen(user);

    *why = NULL;
    if (n == 0)
        *why = "is empty";
    else if (mode == CONFIG_AUTH_MEMCACHIER && n > KEY_MAX)
        *why = "is longer than a memcache key (250 bytes), which "
               "--auth memcachier sends it as";
    for (size_t i = 0; i < n && *why == NULL; i++) {
        unsigned char ch = (unsigned char)user[i];
        if (mode == CONFIG_AUTH_MEMCACHIER && (ch <= ' ' || ch == 0x7f))
            *why = "holds a space or a control character, which a memcache "
                   "key (how --auth memcachier sends it) cannot";
        else if (mode == CONFIG_AUTH_MEMCACHED
                 && (ch == ' ' || ch == '\r' || ch == '\n'))
            *why = "holds a space or a line break, which memcached's "
                   "`user pass` token cannot";
    }
    return *why ? -1 : 0;
}

/* "set KEY FLAGS EXPTIME LEN\r\n" + value + "\r\n", the value being a
 * (and " " b, when b is given). */
static int text_set(const char *head, const char *a, const char *b,
                    unsigned char **out, size_t *len)
{
    size_t na = strlen(a), nb = b ? strlen(b) + 1 : 0, nv = na + nb;
    char line[KEY_MAX + 64];
    int nl = snprintf(line, sizeof line, "%s %zu\r\n", head, nv);

    if (nl < 0 || (size_t)nl >= sizeof line)
        return -1;
    *len = (size_t)nl + nv + 2;
    if ((*out = malloc(*len)) == NULL)
        return -1;
    memcpy(*out, line, (size_t)nl);
    memcpy(*out + nl, a, na);
    if (b) {
        (*out)[nl + na] = ' ';
        memcpy(*out + nl + na + 1, b, nb - 1);
    }
    memcpy(*out + nl + nv, "\r\n", 2);
    return 0;
}

/* Binary SASL_AUTH, mechanism PLAIN: authzid NUL authcid NUL password
 * (RFC 4616), the authzid empty. */
static int sasl_plain(const char *user, const char *pass, unsigned char **out,
                      size_t *len)
{
    static const char mech[] = "PLAIN";
    size_t nu = strlen(user), np = strlen(pass), nk = sizeof mech - 1;
    size_t body = nk + 2 + nu + np;

    if (body > UINT32_MAX - BIN_HEADER)
        return -1;
    *len = BIN_HEADER + body;
    if ((*out = calloc(1, *len)) == NULL)
        return -1;
    unsigned char *h = *out;
    h[0] = 0x80;
    h[1] = BIN_SASL_AUTH;
    h[3] = (unsigned char)nk;
    for (int i = 0; i < 4; i++) {
        h[8 + i] = (unsigned char)(body >> (24 - 8 * i));
        h[12 + i] = (unsigned char)(BIN_OPAQUE >> (24 - 8 * i));
    }
    memcpy(h + BIN_HEADER, mech, nk);
    memcpy(h + BIN_HEADER + nk + 1, user, nu);
    memcpy(h + BIN_HEADER + nk + 2 + nu, pass, np);
    return 0;
}

int auth_request(enum config_auth mode, const char *user, const char *pass,
                 unsigned char **out, size_t *len)
{
    char head[KEY_MAX + 32];

    *out = NULL;
    *len = 0;
    switch (mode) {
    case CONFIG_AUTH_MEMCACHIER:
        if (strlen(user) > KEY_MAX)
            return -1;
        snprintf(head, sizeof head, "set %s 0 0", user);
        return text_set(head, pass, NULL, out, len);
    case CONFIG_AUTH_MEMCACHED:
        return text_set("set memtunnel 0 -1", user, pass, out, len);
    case CONFIG_AUTH_SASL:
        return sasl_plain(user, pass, out, len);
    case CONFIG_AUTH_NONE:
        break;
    }
    return -1;
}

void auth_request_free(unsigned char *p, size_t len)
{
    if (p == NULL)
        return;
    explicit_bzero(p, len);
    free(p);
}

static int starts(const unsigned char *p, size_t n, const char *word)
{
    size_t w = strlen(word);
    return n >= w && memcmp(p, word, w) == 0;
}

/* One CRLF-terminated line: STORED, or a refusal. */
static enum auth_verdict text_reply(const unsigned char *p, size_t n,
                                    enum reason *why)
{
    const unsigned char *lf = memchr(p, '\n', n < AUTH_REPLY_MAX ? n
                                                                 : AUTH_REPLY_MAX);
    if (lf == NULL) {
        if (n < AUTH_REPLY_MAX)
            return AUTH_MORE;
        *why = REASON_AUTH_UNEXPECTED;
        return AUTH_FAILED;
    }
    size_t line = (size_t)(lf - p);
    if (line == 0 || p[line - 1] != '\r') {
        *why = REASON_AUTH_UNEXPECTED;
        return AUTH_FAILED;
    }
    line--;
    if (line == 6 && memcmp(p, "STORED", 6) == 0)
        /* More than the answer is wrong: the client has not spoken. */
        return n == line + 2 ? AUTH_OK : AUTH_FAILED;
    if (line == 5 && memcmp(p, "ERROR", 5) == 0)
        *why = REASON_AUTH_UNSUPPORTED;         /* no such command here */
    else if (starts(p, line, "CLIENT_ERROR ") || starts(p, line, "SERVER_ERROR "))
        *why = REASON_AUTH_REFUSED;
    else
        *why = REASON_AUTH_UNEXPECTED;
    return AUTH_FAILED;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One binary response to our SASL_AUTH: status 0, or a refusal. */
static enum auth_verdict sasl_reply(const unsigned char *p, size_t n,
                                    enum reason *why)
{
    *why = REASON_AUTH_UNEXPECTED;
    if (n >= 1 && p[0] != 0x81)
        return AUTH_FAILED;
    if (n >= 2 && p[1] != BIN_SASL_AUTH)
        return AUTH_FAILED;
    if (n < BIN_HEADER)
        return AUTH_MORE;
    uint32_t body = be32(p + 8);
    if (body > AUTH_REPLY_MAX - BIN_HEADER || be32(p + 12) != BIN_OPAQUE)
        return AUTH_FAILED;
    if (n < BIN_HEADER + body)
        return AUTH_MORE;
    if (n > BIN_HEADER + body)
        return AUTH_FAILED;
    unsigned status = (unsigned)p[6] << 8 | p[7];
    if (status == 0)
        return AUTH_OK;
    *why = status == 0x20 ? REASON_AUTH_REFUSED
           : status == 0x81 || status == 0x83 ? REASON_AUTH_UNSUPPORTED
           : REASON_AUTH_UNEXPECTED;
    return AUTH_FAILED;
}

enum auth_verdict auth_reply(enum config_auth mode, const unsigned char *p,
                             size_t n, enum reason *why)
{
    *why = REASON_AUTH_UNEXPECTED;
    switch (mode) {
    case CONFIG_AUTH_MEMCACHIER:
    case CONFIG_AUTH_MEMCACHED:
        return text_reply(p, n, why);
    case CONFIG_AUTH_SASL:
        return sasl_reply(p, n, why);
    case CONFIG_AUTH_NONE:
        break;
    }
    return AUTH_FAILED;
}
