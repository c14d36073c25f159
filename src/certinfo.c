/*
 * certinfo: the peer's certificate chain as plain data.
 *
 * The DER of the certificates is what tlsconn copied while wolfSSL verified
 * them: every certificate as the server sent it, whatever its size (the
 * SESSION_CERTS copy drops any of 2048 bytes or more).  Each is decoded with
 * wolfCrypt's public wc_InitDecodedCert()/wc_ParseCert(), which, unlike the
 * X509_* accessors, need no OpenSSL compatibility layer.  struct DecodedCert
 * is declared in asn.h; its layout follows options.h, which is why
 * options.h comes first and from the same prefix as the library.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>

#include "certinfo.h"
#include "tlsconn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copy n bytes of s into dst (size len) with control bytes made visible. */
static void copy_text(char *dst, size_t len, const char *s, size_t n)
{
    size_t i;

    if (n > len - 1)
        n = len - 1;
    for (i = 0; i < n && s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    dst[i] = '\0';
}

/*
 * wolfSSL keeps the alternative names in certificate order only with the
 * OpenSSL compatibility layer; otherwise it prepends each one as it parses
 * them (AddDNSEntryToList in asn.c), and the list comes out reversed.
 */
#if defined(OPENSSL_EXTRA) && !defined(WOLFSSL_ALT_NAMES_NO_REV)
#define SANS_REVERSED 0
#else
#define SANS_REVERSED 1
#endif

/* A DER Time (tag, length, value) as seconds since the epoch. */
static int der_time(const byte *p, int len, time_t *out)
{
    const byte *date;
    byte format;
    int n;
    struct tm tm;

    if (p == NULL || wc_GetDateInfo(p, len, &date, &format, &n) != 0
        || wc_GetDateAsCalendarTime(date, n, format, &tm) != 0)
        return -1;
    *out = timegm(&tm);
    return 0;
}

/* A SAN entry worth showing: DNS names and IP addresses, as text. */
static int san_text(const DNS_entry *e, struct certinfo_san *san)
{
    if (e->type == ASN_DNS_TYPE) {
        san->type = CERTINFO_SAN_DNS;
        copy_text(san->name, sizeof san->name, e->name, (size_t)e->len);
        return 0;
    }
    if (e->type == ASN_IP_TYPE && (e->len == 4 || e->len == 16)) {
        san->type = CERTINFO_SAN_IP;
        /* The entry holds the raw address bytes (4 or 16). */
        if (inet_ntop(e->len == 4 ? AF_INET : AF_INET6, e->name, san->name,
                      sizeof san->name) == NULL)
            return -1;
        return 0;
    }
    return -1;
}

int certinfo_parse_der(const unsigned char *der, size_t len,
                       struct certinfo *ci)
{
    DecodedCert *dc;
    int r = 0;

    memset(ci, 0, sizeof *ci);
    if (len == 0 || len > 0xffffffffu)
        return -EBADMSG;
    /* Several KiB: not for the stack of whoever calls this. */
    dc = malloc(sizeof *dc);
    if (dc == NULL)
        return -ENOMEM;
    wc_InitDecodedCert(dc, der, (word32)len, NULL);
    /* NO_VERIFY: describe only.  Trust was settled by the handshake, and
     * an expired certificate must still show its dates. */
    if (wc_ParseCert(dc, CERT_TYPE, NO_VERIFY, NULL) != 0
        || der_time(dc->beforeDate, dc->beforeDateLen, &ci->not_before) < 0
        || der_time(dc->afterDate, dc->afterDateLen, &ci->not_after) < 0) {
        r = -EBADMSG;
        goto out;
    }
    copy_text(ci->subject, sizeof ci->subject, dc->subject, sizeof dc->subject);
    copy_text(ci->issuer, sizeof ci->issuer, dc->issuer, sizeof dc->issuer);
    /* Keep the first CERTINFO_SAN_MAX in certificate order, whichever
     * way round the list is: count them, then place each by its index. */
    struct certinfo_san san;
    size_t total = 0, j = 0;
    for (const DNS_entry *e = dc->altNames; e != NULL; e = e->next)
        if (san_text(e, &san) == 0)
            total++;
    for (const DNS_entry *e = dc->altNames; e != NULL; e = e->next) {
        size_t k;

        if (san_text(e, &san) < 0)
            continue;
        k = SANS_REVERSED ? total - 1 - j : j;
        j++;
        if (k < CERTINFO_SAN_MAX)
            ci->sans[k] = san;
    }
    ci->sans_total = total;
    ci->nsans = total < CERTINFO_SAN_MAX ? total : CERTINFO_SAN_MAX;
out:
    wc_FreeDecodedCert(dc);
    free(dc);
    return r;
}

/* Room for every certificate tlsconn keeps. */
_Static_assert(CERTINFO_CHAIN_MAX >= TLSCONN_CHAIN_MAX,
               "certinfo holds fewer certificates than tlsconn keeps");

/* Decode what tlsconn kept of the last full handshake's certificates. */
int certinfo_peer_chain(struct tlsconn *t, struct certinfo *chain, size_t max)
{
    const struct tlsconn_chain *c = tlsconn_chain(t);
    size_t n = 0;

    for (; c != NULL && n < c->n && n < max; n++) {
        int r = certinfo_parse_der(c->der + c->off[n], c->off[n + 1] - c->off[n],
                                   &chain[n]);
        if (r < 0)
            return r;
    }
    return n > 0 ? (int)n : -ENOTSUP;
}

long certinfo_days_left(time_t not_after, time_t now)
{
    long long d = (long long)not_after - (long long)now;

    /* Round towards minus infinity: an hour past expiry is day -1. */
    return (long)(d >= 0 ? d / 86400 : -((-d + 86399) / 86400));
}

int certinfo_first_expiring(const struct certinfo *chain, size_t n,
                            time_t now, unsigned warn_days)
{
    long long limit = (long long)now + (long long)warn_days * 86400;
    int first = -1;

    for (size_t i = 0; i < n; i++) {
        if ((long long)chain[i].not_after >= limit)
            continue;
        if (first < 0 || chain[i].not_after < chain[first].not_after)
            first = (int)i;
    }
    return first;
}

char *certinfo_date(time_t t, char *buf, size_t len)
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL
        || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "?");
    return buf;
}
