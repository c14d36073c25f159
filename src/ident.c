/*
 * ident: the reference identity against a certificate's SANs (RFC 9525).
 *
 * Kept deliberately small and strict.  No IDNA: names are compared as the
 * ASCII the configuration and the certificate hold (A-labels stay
 * A-labels), which is all RFC 9525 asks of a client that only ever has
 * ASCII names.
 */
#include <arpa/inet.h>
#include <string.h>

#include "ident.h"

/* Longest DNS name (253) with a trailing dot and the NUL, and room. */
#define NAME_MAX_LEN 256

int ident_parse_ip(const char *text, unsigned char out[IDENT_IP_MAX],
                   size_t *len)
{
    unsigned char a[IDENT_IP_MAX];

    /* inet_pton takes only the strict forms: a dotted quad of decimal
     * numbers (no "127.1", no octal) or an RFC 4291 IPv6 address. */
    if (text == NULL)
        return -1;
    if (inet_pton(AF_INET, text, a) == 1) {
        memcpy(out, a, 4);
        *len = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, text, a) == 1) {
        memcpy(out, a, 16);
        *len = 16;
        return 0;
    }
    return -1;
}

int ident_match_ip(const unsigned char *ref, size_t ref_len,
                   const unsigned char *san, size_t san_len)
{
    if (ref_len != 4 && ref_len != 16)
        return 0;
    return san_len == ref_len && memcmp(ref, san, ref_len) == 0;
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* n bytes equal, ASCII letters without case. */
static int same(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* What follows "*." in a wildcard SAN: two labels or more, none empty. */
static int wildcard_base(const char *s, size_t n)
{
    size_t labels = 1, run = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (run == 0)
                return 0;
            labels++;
            run = 0;
        } else {
            run++;
        }
    }
    return run > 0 && labels >= 2;
}

int ident_match_dns(const char *ref, const char *san, size_t san_len)
{
    char name[NAME_MAX_LEN];
    unsigned char ip[IDENT_IP_MAX];
    size_t ref_len = strlen(ref), iplen;

    if (ref_len > 0 && ref[ref_len - 1] == '.')
        ref_len--;
    if (san_len > 0 && san[san_len - 1] == '.')
        san_len--;
    if (ref_len == 0 || ref_len >= sizeof name || san_len == 0)
        return 0;
    memcpy(name, ref, ref_len);
    name[ref_len] = '\0';

    /* An address is never a name, whatever a DNS SAN spells; names with
     * '*' are not host names; a SAN with a NUL byte is not a name either
     * ("good.example\0.evil.example"). */
    if (ident_parse_ip(name, ip, &iplen) == 0 || memchr(name, '*', ref_len)
        || memchr(san, '\0', san_len))
        return 0;

    if (san_len >= 2 && san[0] == '*' && san[1] == '.') {
        const char *dot = memchr(name, '.', ref_len);
        size_t rest;

        if (memchr(san + 1, '*', san_len - 1) || !wildcard_base(san + 2, san_len - 2))
            return 0;
        /* The wildcard stands for the reference's first label, which must
         * not be empty; everything from its dot on is compared. */
        if (dot == NULL || dot == name)
            return 0;
        rest = ref_len - (size_t)(dot - name);
        return rest == san_len - 1 && same(dot, san + 1, rest);
    }
    /* "f*.example", "*", "a.*.example": partial or misplaced wildcards
     * match nothing (RFC 9525 §6.3). */
    if (memchr(san, '*', san_len))
        return 0;
    return ref_len == san_len && same(name, san, ref_len);
}
