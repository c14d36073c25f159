/*
 * servers: host and port grammar (see servers.h).
 *
 * IP literals are recognised with inet_pton(), which is strict on its own
 * ("1.2.3", "01.2.3.4" and "fe80::1%eth0" are refused).  Everything else
 * has to be a DNS name by the usual rules; a name that is all digits and
 * dots is a mistyped IPv4 address, not a name.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* memmem, memrchr */
#endif
#include "servers.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FORMS "expected host, host:port or [IPv6]:port"
#define SEPARATORS ", \t\r\n\v\f"
#define SHOW_MAX 60             /* bytes of an item quoted in a message */
#define LISTEN_FORMS "expected PORT, IPv4:PORT, [IPv6]:PORT or localhost:PORT"

__attribute__((format(printf, 3, 4)))
static int reason(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -1;
}

/*
 * inet_pton() on n bytes that are not NUL-terminated.  Too long to be an
 * address of the family is simply not one.
 */
static int pton(int af, const char *s, size_t n, void *addr)
{
    char buf[INET6_ADDRSTRLEN];

    if (n >= sizeof(buf))
        return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return inet_pton(af, buf, addr) == 1;
}

/*
 * A port: decimal digits only, min..65535.  The digits are echoed in the
 * reason, which is safe as they are digits.
 */
static int parse_port(const char *s, size_t n, unsigned min, uint16_t *port,
                      char *why, size_t len)
{
    unsigned long v = 0;

    if (n == 0)
        return reason(why, len, "missing port after ':'");
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return reason(why, len, "port is not a number; expected %u-65535",
                          min);
        if (v <= 65535)
            v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v < min || v > 65535)
        return reason(why, len, "port %.*s is out of range %u-65535",
                      n > 20 ? 20 : (int)n, s, min);
    *port = (uint16_t)v;
    return 0;
}

const char *servers_check_name(const char *s, size_t n)
{
    size_t label = 0;
    int numeric = 1;

    if (n > 0 && s[n - 1] == '.')
        n--;
    if (n == 0)
        return "is not a host name";
    if (n > 253)
        return "is longer than 253 characters";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '.') {
            if (label == 0)
                return "has an empty label (\"..\" or a leading '.')";
            if (s[i - 1] == '-')
                return "has a label that ends with '-'";
            label = 0;
            continue;
        }
        if (!isalnum(c) && c != '-' && c != '_')
            return "may hold only letters, digits, '-', '_' and '.'";
        if (c == '-' && label == 0)
            return "has a label that starts with '-'";
        if (!isdigit(c))
            numeric = 0;
        if (++label > 63)
            return "has a label longer than 63 characters";
    }
    if (s[n - 1] == '-')
        return "has a label that ends with '-'";
    if (numeric)
        return "is not a valid IPv4 address";
    return NULL;
}

/* An IPv4 literal or a host name, n bytes, into out. */
static int parse_host(const char *s, size_t n, struct config_server *out,
                      char *why, size_t len)
{
    struct in_addr a4;
    const char *bad;

    if (n == 0)
        return reason(why, len, "missing host; " FORMS);
    if (pton(AF_INET, s, n, &a4)) {
        out->family = CONFIG_IPV4;
    } else if ((bad = servers_check_name(s, n)) != NULL) {
        return reason(why, len, "host %s", bad);
    } else {
        out->family = CONFIG_NAME;
        if (s[n - 1] == '.')
            n--;
    }
    memcpy(out->host, s, n);
    out->host[n] = '\0';
    return 0;
}

/* "[v6]" or "[v6]:port". */
static int parse_bracketed(const char *s, size_t n, struct config_server *out,
                           char *why, size_t len)
{
    const char *close = memchr(s, ']', n);
    size_t alen, rest;
    struct in6_addr a6;

    if (close == NULL)
        return reason(why, len, "missing ']' after the IPv6 address");
    alen = (size_t)(close - s) - 1;
    if (!pton(AF_INET6, s + 1, alen, &a6))
        return reason(why, len, "not a valid IPv6 address inside [ ]");
    memcpy(out->host, s + 1, alen);
    out->host[alen] = '\0';
    out->family = CONFIG_IPV6;
    rest = n - (size_t)(close - s) - 1;
    if (rest == 0)
        return 0;
    if (close[1] != ':')
        return reason(why, len, "unexpected text after ']'; " FORMS);
    return parse_port(close + 2, rest - 1, 1, &out->port, why, len);
}

/*
 * One server list item of n bytes: host, host:port, a.b.c.d[:port],
 * [v6][:port].  A missing port is CONFIG_DEFAULT_PORT; the trailing dot of
 * a host name is dropped.  Returns 0 with *out filled, or -1 with a reason.
 */
static int parse_item(const char *s, size_t n, struct config_server *out,
                      char *why, size_t len)
{
    const char *colon = memchr(s, ':', n);
    struct in6_addr a6;

    memset(out, 0, sizeof(*out));
    out->port = CONFIG_DEFAULT_PORT;
    if (n > 0 && s[0] == '[')
        return parse_bracketed(s, n, out, why, len);
    if (memmem(s, n, "://", 3) != NULL)
        return reason(why, len, "a URL is not a server; give host:port only");
    if (colon == NULL)
        return parse_host(s, n, out, why, len);

    /* Two colons or more: a bare IPv6 address, or something unknown. */
    if (memchr(colon + 1, ':', n - (size_t)(colon - s) - 1) != NULL) {
        const char *last = memrchr(s, ':', n);

        if (pton(AF_INET6, s, n, &a6) ||
            pton(AF_INET6, s, (size_t)(last - s), &a6))
            return reason(why, len, "an IPv6 address needs brackets, as "
                          "[ADDRESS] or [ADDRESS]:PORT");
        return reason(why, len, "too many ':'; " FORMS);
    }
    if (parse_host(s, (size_t)(colon - s), out, why, len) < 0)
        return -1;
    return parse_port(colon + 1, n - (size_t)(colon - s) - 1, 1, &out->port,
                      why, len);
}

/* Whether two parsed servers are the same node (host case-insensitive). */
static int same(const struct config_server *a, const struct config_server *b)
{
    unsigned char x[sizeof(struct in6_addr)], y[sizeof(struct in6_addr)];
    int af = a->family == CONFIG_IPV6 ? AF_INET6 : AF_INET;

    if (a->family != b->family || a->port != b->port)
        return 0;
    if (a->family == CONFIG_NAME)
        return strcasecmp(a->host, b->host) == 0;
    /* "::1" and "0:0::1" are one address written two ways. */
    if (inet_pton(af, a->host, x) != 1 || inet_pton(af, b->host, y) != 1)
        return strcmp(a->host, b->host) == 0;
    return memcmp(x, y, af == AF_INET6 ? 16 : 4) == 0;
}

/* Fill *err with a configuration error (EXIT_CONFIG) and return -1. */
__attribute__((format(printf, 3, 4)))
static int fail(struct config_error *err, const char *name, const char *fmt,
                ...)
{
    va_list ap;

    err->status = EXIT_CONFIG;
    snprintf(err->name, sizeof(err->name), "%s", name != NULL ? name : "");
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    /* One line, whatever bytes an item held. */
    for (char *p = err->msg; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    }
    return -1;
}

int servers_parse(const char *name, const char *text, uint16_t tls_port,
                         struct config_server **out, size_t *n,
                         struct config_error *err)
{
    struct config_server *list = NULL, *grown, s;
    size_t cap = 0, count = 0;
    const char *p = text;
    char why[160];

    *out = NULL;
    *n = 0;
    if (strstr(text, "-----BEGIN") != NULL)
        return fail(err, name, "holds PEM text, not a server list");
    for (;;) {
        size_t len, item = count + 1;
        int show;

        p += strspn(p, SEPARATORS);
        if (*p == '\0')
            break;
        len = strcspn(p, SEPARATORS);
        show = len > SHOW_MAX ? SHOW_MAX : (int)len;

        /* memcached://user:pass@host or user:pass@host: never echoed. */
        if (memchr(p, '@', len) != NULL) {
            free(list);
            return fail(err, name, "item %zu contains credentials; give the "
                        "host:port only and set the credentials in the "
                        "app's own variables", item);
        }
        if (parse_item(p, len, &s, why, sizeof(why)) < 0) {
            free(list);
            return fail(err, name, "item %zu \"%.*s%s\": %s", item, show, p,
                        (int)len > show ? "..." : "", why);
        }
        if (tls_port != 0)
            s.port = tls_port;

        /*
         * Clients hash keys over the node list, so a node listed twice
         * would get twice its share of keys; that is never intended.
         */
        for (size_t i = 0; i < count; i++) {
            if (same(&list[i], &s)) {
                free(list);
                return fail(err, name, "item %zu \"%.*s%s\" repeats item "
                            "%zu%s; each node must be listed once, since "
                            "clients hash keys over the list", item, show, p,
                            (int)len > show ? "..." : "", i + 1,
                            tls_port != 0 ? " once the TLS port is applied"
                                          : "");
            }
        }
        if (count == cap) {
            cap = cap != 0 ? cap * 2 : 4;
            grown = realloc(list, cap * sizeof(*list));
            if (grown == NULL) {
                free(list);
                return fail(err, name, "out of memory");
            }
            list = grown;
        }
        list[count++] = s;
        p += len;
    }
    if (count == 0)
        return fail(err, name, "lists no servers; expected host:port items "
                    "separated by commas or spaces");
    *out = list;
    *n = count;
    return 0;
}

char *servers_str(const struct config_server *s, char *buf, size_t len)
{
    if (s->family == CONFIG_IPV6)
        snprintf(buf, len, "[%s]:%u", s->host, (unsigned)s->port);
    else
        snprintf(buf, len, "%s:%u", s->host, (unsigned)s->port);
    return buf;
}

int servers_parse_listen(const char *s, char host[CONFIG_HOST_MAX + 1],
                         enum config_family *family, uint16_t *port,
                         int *loopback, char *why, size_t len)
{
    size_t n = strlen(s), hlen;
    const char *colon, *h;
    struct in6_addr a6;
    struct in_addr a4;

    if (n == 0)
        return reason(why, len, "is empty; " LISTEN_FORMS);
    if (strspn(s, "0123456789") == n) {
        strcpy(host, "127.0.0.1");
        *family = CONFIG_IPV4;
        *loopback = 1;
        return parse_port(s, n, 0, port, why, len);
    }
    if (s[0] == '[') {
        const char *close = strchr(s, ']');

        if (close == NULL)
            return reason(why, len, "missing ']' after the IPv6 address");
        hlen = (size_t)(close - s) - 1;
        if (!pton(AF_INET6, s + 1, hlen, &a6))
            return reason(why, len, "not a valid IPv6 address inside [ ]");
        if (close[1] != ':')
            return reason(why, len, "missing port after ']'; " LISTEN_FORMS);
        memcpy(host, s + 1, hlen);
        host[hlen] = '\0';
        *family = CONFIG_IPV6;
        *loopback = IN6_IS_ADDR_LOOPBACK(&a6);
        return parse_port(close + 2, strlen(close + 2), 0, port, why, len);
    }

    colon = strchr(s, ':');
    if (colon == NULL)
        return reason(why, len, "missing port; " LISTEN_FORMS);
    if (strchr(colon + 1, ':') != NULL)
        return reason(why, len, "an IPv6 address needs brackets; "
                      LISTEN_FORMS);
    h = s;
    hlen = (size_t)(colon - s);
    if (hlen == 9 && strncasecmp(s, "localhost", 9) == 0) {
        h = "127.0.0.1";
        hlen = 9;
    }
    if (hlen == 0)
        return reason(why, len, "missing address before ':'; " LISTEN_FORMS);
    if (!pton(AF_INET, h, hlen, &a4))
        return reason(why, len, "not an IP address; only IP addresses and "
                      "localhost can be listened on; " LISTEN_FORMS);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *family = CONFIG_IPV4;
    *loopback = (ntohl(a4.s_addr) >> 24) == 127;
    return parse_port(colon + 1, strlen(colon + 1), 0, port, why, len);
}
