/*
 * ident: does a certificate name the upstream?  Pure matching rules of
 * RFC 9525 (which replaced RFC 6125), with no TLS library and no I/O, so
 * they are table-tested on their own.
 *
 * The reference identity is the upstream as configured: an IP address or
 * a DNS name.  An IP reference matches only an iPAddress SAN, compared as
 * bytes (so "::1", "0:0::1" and "0000::1" are one address); a DNS reference
 * matches only a dNSName SAN.  A DNS SAN never matches an IP, even one that
 * spells it ("127.0.0.1", "*.0.0.1"), and an IP SAN never matches a name.
 * The subject CN is never consulted (RFC 9525 §6.3), with SANs or without:
 * the caller passes SANs only.
 */
#ifndef MEMTUNNEL_IDENT_H
#define MEMTUNNEL_IDENT_H

#include <stddef.h>

#define IDENT_IP_MAX 16         /* bytes of an IPv6 address */

/*
 * Parse an IPv4 dotted quad or an IPv6 address in any of its textual forms
 * (inet_pton: no brackets, no zone, no port) into out.  *len gets 4 or 16.
 * Returns 0, or -1 when text is not an IP literal (out and *len untouched).
 */
int ident_parse_ip(const char *text, unsigned char out[IDENT_IP_MAX],
                   size_t *len);

/*
 * An IP reference (ref_len bytes) against the bytes of one iPAddress SAN.
 * Equal length and bytes; an IPv4 address does not match its IPv4-mapped
 * IPv6 form.  Returns 1 on a match, else 0.
 */
int ident_match_ip(const unsigned char *ref, size_t ref_len,
                   const unsigned char *san, size_t san_len);

/*
 * A DNS reference (a NUL-terminated host name) against one dNSName SAN of
 * san_len bytes (not NUL-terminated; may hold any byte).  ASCII letters
 * compare without case and one trailing dot on either side is ignored.  A
 * wildcard is only "*." as the whole left-most label, followed by at least
 * two labels, and stands for exactly one non-empty label of ref; any other
 * '*' matches nothing.  A reference that is an IP literal never matches.
 * Returns 1 on a match, else 0.
 */
int ident_match_dns(const char *ref, const char *san, size_t san_len);

#endif
