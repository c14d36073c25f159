/*
 * certinfo: the peer's certificate chain as plain data.
 *
 * The DER of the certificates comes from wolfSSL: the leaf from the peer
 * certificate it keeps with KEEP_PEER_CERT, the chain from
 * wolfSSL_get_peer_chain(), which it keeps with SESSION_CERTS (Debian's
 * build has both; a static build needs --enable-sessioncerts, and
 * KEEP_PEER_CERT comes with the OpenSSL compatibility layer or
 * CFLAGS=-DKEEP_PEER_CERT).  Each certificate is then decoded with
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

/*
 * The leaf comes from the peer certificate wolfSSL keeps with KEEP_PEER_CERT
 * (set by the OpenSSL compatibility layer, or by -DKEEP_PEER_CERT), because
 * SESSION_CERTS silently leaves out any certificate of MAX_X509_SIZE (2048)
 * bytes or more: a leaf with many names would be missing and the
 * intermediate would pass for it.  The rest of the chain comes from
 * SESSION_CERTS.  In 5.5.4 wolfSSL_get_peer_certificate returns a copy
 * (falling back to the first certificate of the session chain), which is
 * freed here.
 */
int certinfo_peer_chain(struct tlsconn *t, struct certinfo *chain, size_t max)
{
    size_t n = 0;
    int r = 0;
#ifdef KEEP_PEER_CERT
    WOLFSSL_X509 *leaf = wolfSSL_get_peer_certificate(t->ssl);
    const unsigned char *leaf_der = NULL;
    int leaf_len = 0;

    if (leaf != NULL)
        leaf_der = wolfSSL_X509_get_der(leaf, &leaf_len);
    if (leaf_der != NULL && leaf_len > 0 && max > 0) {
        if ((r = certinfo_parse_der(leaf_der, (size_t)leaf_len, &chain[0])) < 0)
            goto out;
        n = 1;
    }
#endif
#ifdef SESSION_CERTS
    WOLFSSL_X509_CHAIN *c = wolfSSL_get_peer_chain(t->ssl);
    int count = c != NULL ? wolfSSL_get_chain_count(c) : 0;

    for (int i = 0; i < count && n < max; i++) {
        const unsigned char *der = wolfSSL_get_chain_cert(c, i);
        int len = wolfSSL_get_chain_length(c, i);

        if (der == NULL || len <= 0) {
            r = -EBADMSG;
            goto out;
        }
  #ifdef KEEP_PEER_CERT
        /* The leaf again, unless it was too large to be kept here. */
        if (i == 0 && n == 1 && len == leaf_len &&
            memcmp(der, leaf_der, (size_t)len) == 0)
            continue;
  #endif
        if ((r = certinfo_parse_der(der, (size_t)len, &chain[n])) < 0)
            goto out;
        n++;
    }
#endif
    r = n > 0 ? (int)n : -ENOTSUP;
#if defined(KEEP_PEER_CERT) || defined(SESSION_CERTS)
out:
#endif
#ifdef KEEP_PEER_CERT
    wolfSSL_X509_free(leaf);
#endif
    (void)t;
    (void)chain;
    (void)max;
    return r;
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
