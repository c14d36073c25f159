/*
 * ident_fuzz: the identity rules (ident.c) that decide whether a server's
 * certificate names the upstream.  The SAN bytes come from the network.
 *
 * Input: a reference identity, a NUL byte, then one SAN's bytes (any
 * bytes).  Checked against a plain restatement of the rules, besides
 * memory errors:
 *   - an IP reference matches a SAN exactly when they are the same bytes;
 *   - a DNS match is either the same name (ASCII case and one trailing dot
 *     aside), or "*." followed by everything from the reference's first dot
 *     on; never for an IP literal, never for a SAN holding a NUL or another
 *     '*';
 *   - a host name matches itself, and never its own address form.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ident.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "ident_fuzz: contract broken: %s\n", what);
        abort();
    }
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int same(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* Without one trailing dot. */
static size_t trim(const char *s, size_t n)
{
    return n > 0 && s[n - 1] == '.' ? n - 1 : n;
}

/* What a match of ref against san may be, by the rules' letter. */
static int may_match(const char *ref, const char *san, size_t san_len)
{
    size_t rn = trim(ref, strlen(ref)), sn = trim(san, san_len);

    if (rn == 0 || sn == 0 || memchr(san, '\0', san_len) || memchr(ref, '*', rn))
        return 0;
    if (sn >= 2 && san[0] == '*' && san[1] == '.') {
        const char *dot = memchr(ref, '.', rn);
        if (memchr(san + 1, '*', sn - 1) || dot == NULL || dot == ref)
            return 0;
        size_t rest = rn - (size_t)(dot - ref);
        return rest == sn - 1 && same(dot, san + 1, rest);
    }
    return !memchr(san, '*', sn) && rn == sn && same(ref, san, rn);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    unsigned char ip[IDENT_IP_MAX];
    size_t iplen = 0;

    if (nul == NULL)
        return 0;
    size_t ref_len = (size_t)(nul - data);
    char *ref = malloc(ref_len + 1);
    size_t san_len = size - ref_len - 1;
    char *san = malloc(san_len ? san_len : 1);   /* exact size: ASan sees overreads */
    if (ref == NULL || san == NULL) {
        free(ref);
        free(san);
        return 0;
    }
    memcpy(ref, data, ref_len + 1);
    memcpy(san, nul + 1, san_len);

    int is_ip = ident_parse_ip(ref, ip, &iplen) == 0;
    if (is_ip) {
        check(iplen == 4 || iplen == 16, "an address is 4 or 16 bytes");
        int m = ident_match_ip(ip, iplen, (const unsigned char *)san, san_len);
        check(m == (san_len == iplen && memcmp(ip, san, iplen) == 0),
              "an IP matches exactly its own bytes");
        check(!ident_match_dns(ref, san, san_len), "an IP literal never matches a DNS SAN");
        check(!ident_match_dns(ref, ref, ref_len), "an IP literal never matches its own text");
    } else {
        int m = ident_match_dns(ref, san, san_len);
        check(m == 0 || m == 1, "0 or 1");
        if (m)
            check(may_match(ref, san, san_len), "a DNS match follows the rules");
        /* A name matches itself; "127.0.0.1." is no name (an address
         * with a dot), and matches nothing. */
        size_t rn = trim(ref, ref_len);
        char bare[200];
        if (rn > 0 && rn < sizeof bare && !memchr(ref, '*', rn)) {
            memcpy(bare, ref, rn);
            bare[rn] = '\0';
            check(ident_match_dns(ref, ref, ref_len)
                  == (ident_parse_ip(bare, ip, &iplen) < 0),
                  "a name matches itself, an address spelt with a dot nothing");
        }
    }
    free(ref);
    free(san);
    return 0;
}
