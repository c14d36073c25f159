/*
 * ident: the reference identity against SANs (RFC 9525), as tables: IP
 * literals in every spelling, addresses as bytes, names without case, and
 * the wildcards that must and must not match.
 */
#include <string.h>

#include "ident.h"
#include "suites.h"

/* ---- IP literals -------------------------------------------------------- */

static const struct {
    const char *text;
    size_t len;                  /* 0: not an IP literal */
    unsigned char bytes[16];
} parse_cases[] = {
    { "127.0.0.1", 4, { 127, 0, 0, 1 } },
    { "0.0.0.0", 4, { 0 } },
    { "255.255.255.255", 4, { 255, 255, 255, 255 } },
    { "::1", 16, { [15] = 1 } },
    { "0:0::1", 16, { [15] = 1 } },
    { "0000::1", 16, { [15] = 1 } },
    { "0:0:0:0:0:0:0:1", 16, { [15] = 1 } },
    { "0000:0000:0000:0000:0000:0000:0000:0001", 16, { [15] = 1 } },
    { "::", 16, { 0 } },
    { "2001:DB8::A", 16, { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x0a } },
    { "2001:db8::a", 16, { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x0a } },
    { "::ffff:127.0.0.1", 16, { [10] = 0xff, 0xff, 127, 0, 0, 1 } },
    /* not IP literals */
    { "", 0, { 0 } },
    { "localhost", 0, { 0 } },
    { "127.1", 0, { 0 } },
    { "127.0.0.1.", 0, { 0 } },
    { "127.0.0.256", 0, { 0 } },
    { "127.0.0.1:11211", 0, { 0 } },
    { " 127.0.0.1", 0, { 0 } },
    { "0x7f.0.0.1", 0, { 0 } },
    { "[::1]", 0, { 0 } },
    { "::1%lo", 0, { 0 } },
    { "1::2::3", 0, { 0 } },
    { "*.0.0.1", 0, { 0 } },
};

START_TEST(parse_ip)
{
    unsigned char out[IDENT_IP_MAX];
    size_t len = 99;
    int r = ident_parse_ip(parse_cases[_i].text, out, &len);
    if (parse_cases[_i].len == 0) {
        ck_assert_msg(r == -1, "\"%s\" is not an IP literal", parse_cases[_i].text);
        ck_assert_uint_eq(len, 99);
    } else {
        ck_assert_msg(r == 0, "\"%s\" is an IP literal", parse_cases[_i].text);
        ck_assert_uint_eq(len, parse_cases[_i].len);
        ck_assert_mem_eq(out, parse_cases[_i].bytes, len);
    }
}
END_TEST

static const unsigned char v4[4] = { 127, 0, 0, 1 };
static const unsigned char v4b[4] = { 127, 0, 0, 2 };
static const unsigned char v6[16] = { [15] = 1 };
static const unsigned char mapped[16] = { [10] = 0xff, 0xff, 127, 0, 0, 1 };
static const unsigned char v6prefix[8] = { 0 };

static const struct {
    const unsigned char *ref, *san;
    size_t ref_len, san_len;
    int match;
} ip_cases[] = {
    { v4, v4, 4, 4, 1 },
    { v6, v6, 16, 16, 1 },
    { v4, v4b, 4, 4, 0 },
    { v4, mapped, 4, 16, 0 },    /* an IPv4-mapped address is another one */
    { mapped, v4, 16, 4, 0 },
    { v6, v4, 16, 4, 0 },
    { v4, v6, 4, 16, 0 },
    { v6, v6prefix, 16, 8, 0 },  /* a SAN of the wrong size */
    { v4, v4, 4, 0, 0 },
    { v4, v4, 3, 3, 0 },         /* not an address length */
};

START_TEST(match_ip)
{
    ck_assert_int_eq(ident_match_ip(ip_cases[_i].ref, ip_cases[_i].ref_len,
                                    ip_cases[_i].san, ip_cases[_i].san_len),
                     ip_cases[_i].match);
}
END_TEST

/* ---- names ------------------------------------------------------------- */

static const struct {
    const char *ref, *san;
    int match;
} dns_cases[] = {
    { "localhost", "localhost", 1 },
    { "LocalHost", "localhost", 1 },
    { "localhost", "LOCALHOST", 1 },
    { "mc1.example.com", "mc1.example.com", 1 },
    { "mc1.example.com.", "mc1.example.com", 1 },   /* trailing dots ignored */
    { "mc1.example.com", "mc1.example.com.", 1 },
    { "mc1.example.com.", "mc1.example.com.", 1 },
    { "mc1.example.com", "mc2.example.com", 0 },
    { "mc1.example.com", "example.com", 0 },
    { "example.com", "mc1.example.com", 0 },
    { "mc1.example.com", "mc1.example.com..", 0 },
    { "mc1.example.co", "mc1.example.com", 0 },
    { "localhost", "", 0 },
    { "", "localhost", 0 },
    /* wildcards: the whole left-most label, one label matched */
    { "mc1.example.com", "*.example.com", 1 },
    { "MC1.Example.COM", "*.EXAMPLE.com", 1 },
    { "xn--bcher-kva.example.com", "*.example.com", 1 },
    { "mc1.example.com.", "*.example.com", 1 },
    { "example.com", "*.example.com", 0 },           /* no label for '*' */
    { ".example.com", "*.example.com", 0 },
    { "a.mc1.example.com", "*.example.com", 0 },     /* two labels */
    { "mc1.example.org", "*.example.com", 0 },
    { "example.com", "*.com", 0 },                   /* one label after it */
    { "mc1.localhost", "*.localhost", 0 },
    { "a.b", "*", 0 },
    { "a", "*", 0 },
    { "mc1.example.com", "mc*.example.com", 0 },     /* partial wildcards */
    { "mc1.example.com", "*1.example.com", 0 },
    { "mc1.example.com", "m*1.example.com", 0 },
    { "a.mc1.example.com", "a.*.example.com", 0 },   /* not left-most */
    { "mc1.example.com", "*.*.com", 0 },
    { "a.b.example.com", "*.*.example.com", 0 },
    { "mc1.example.com", "**.example.com", 0 },
    { "mc1..example.com", "*..example.com", 0 },
    { "*.example.com", "*.example.com", 0 },         /* '*' is no host name */
    { "*.example.com", "x.example.com", 0 },
    /* an IP reference is never matched by a name */
    { "127.0.0.1", "127.0.0.1", 0 },
    { "127.0.0.1", "*.0.0.1", 0 },
    { "1.0.0.1", "*.0.0.1", 0 },
    { "::1", "::1", 0 },
    { "127.0.0.1.", "127.0.0.1", 0 },
};

START_TEST(match_dns)
{
    const char *ref = dns_cases[_i].ref, *san = dns_cases[_i].san;
    ck_assert_msg(ident_match_dns(ref, san, strlen(san)) == dns_cases[_i].match,
                  "\"%s\" against SAN \"%s\" must %smatch", ref, san,
                  dns_cases[_i].match ? "" : "not ");
}
END_TEST

/* A SAN is counted bytes: a NUL inside never cuts it short. */
START_TEST(san_with_nul)
{
    static const char san[] = "localhost\0.evil.example";
    ck_assert_int_eq(ident_match_dns("localhost", san, sizeof san - 1), 0);
    ck_assert_int_eq(ident_match_dns("localhost", "localhost\0", 10), 0);
    ck_assert_int_eq(ident_match_dns("localhost", "localhostXYZ", 9), 1);
}
END_TEST

Suite *ident_suite(void)
{
    Suite *s = suite_create("ident");
    TCase *tc = tcase_create("ident");
    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, parse_ip, 0, sizeof parse_cases / sizeof parse_cases[0]);
    tcase_add_loop_test(tc, match_ip, 0, sizeof ip_cases / sizeof ip_cases[0]);
    tcase_add_loop_test(tc, match_dns, 0, sizeof dns_cases / sizeof dns_cases[0]);
    tcase_add_test(tc, san_with_nul);
    suite_add_tcase(s, tc);
    return s;
}
