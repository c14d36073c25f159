/*
 * Unit tests for config.c and servers.c: command line + environment in,
 * struct config or an error naming the flag or variable out.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "servers.h"
#include "suites.h"

#define MAXWORDS 16
#define PEM "-----BEGIN CERTIFICATE-----\nMIIBsecretbase64\n" \
            "-----END CERTIFICATE-----\n"

/* argv and envp built from string tables; they outlive the parse. */
struct cmdline {
    char *argv[MAXWORDS + 2];
    char *envp[MAXWORDS + 1];
    int argc;
};

static void build(struct cmdline *c, const char *const *args,
                  const char *const *env)
{
    int n = 0;

    memset(c, 0, sizeof(*c));
    c->argv[n++] = (char *)"memtunnel";
    for (int i = 0; args != NULL && args[i] != NULL; i++) {
        ck_assert_int_lt(n, MAXWORDS + 1);
        c->argv[n++] = (char *)args[i];
    }
    c->argc = n;
    for (int i = 0; env != NULL && env[i] != NULL; i++) {
        ck_assert_int_lt(i, MAXWORDS);
        c->envp[i] = (char *)env[i];
    }
}

/* Parse and require success. */
static void parse_ok(struct config *cfg, struct cmdline *c,
                     const char *const *args, const char *const *env)
{
    struct config_error err;

    build(c, args, env);
    if (config_parse(cfg, c->argc, c->argv, c->envp, &err) != 0)
        ck_abort_msg("unexpected error %d [%s] %s", err.status, err.name,
                     err.msg);
}

/* A message is one line of printable text. */
static void assert_one_line(const char *msg)
{
    ck_assert_uint_gt(strlen(msg), 0);
    for (const char *p = msg; *p != '\0'; p++)
        ck_assert_msg((unsigned char)*p >= 0x20 && *p != 0x7f,
                      "control byte in message: %s", msg);
}

/* ---- servers_parse: good lists ---------------------------------- */

struct server_want {
    const char *host;
    unsigned port;
    enum config_family family;
};

static const struct {
    const char *text;
    uint16_t tls_port;
    size_t n;
    struct server_want s[4];
} good_lists[] = {
    { "mc1.example.com", 0, 1, { { "mc1.example.com", 11211, CONFIG_NAME } } },
    { "mc1.example.com:11212", 0, 1,
      { { "mc1.example.com", 11212, CONFIG_NAME } } },
    { "10.0.0.1", 0, 1, { { "10.0.0.1", 11211, CONFIG_IPV4 } } },
    { "10.0.0.1:1", 0, 1, { { "10.0.0.1", 1, CONFIG_IPV4 } } },
    { "[::1]", 0, 1, { { "::1", 11211, CONFIG_IPV6 } } },
    { "[2001:db8::5]:65535", 0, 1, { { "2001:db8::5", 65535, CONFIG_IPV6 } } },
    { "[::ffff:10.0.0.1]:5", 0, 1, { { "::ffff:10.0.0.1", 5, CONFIG_IPV6 } } },
    { ",a,,b ,", 0, 2,
      { { "a", 11211, CONFIG_NAME }, { "b", 11211, CONFIG_NAME } } },
    { "  a:1\tb:2\nc:3  ", 0, 3,
      { { "a", 1, CONFIG_NAME }, { "b", 2, CONFIG_NAME },
        { "c", 3, CONFIG_NAME } } },
    { "a:1 , [::1]:2,10.1.1.1:3 d", 0, 4,
      { { "a", 1, CONFIG_NAME }, { "::1", 2, CONFIG_IPV6 },
        { "10.1.1.1", 3, CONFIG_IPV4 }, { "d", 11211, CONFIG_NAME } } },
    { "Host.Example.COM.", 0, 1, { { "Host.Example.COM", 11211, CONFIG_NAME } } },
    { "under_score.example:11211", 0, 1,
      { { "under_score.example", 11211, CONFIG_NAME } } },
    { "mc-1.x-y.example", 0, 1, { { "mc-1.x-y.example", 11211, CONFIG_NAME } } },
    { "localhost", 0, 1, { { "localhost", 11211, CONFIG_NAME } } },
    { "a:1,a:2", 0, 2, { { "a", 1, CONFIG_NAME }, { "a", 2, CONFIG_NAME } } },
    { "a:1,b", 11219, 2,
      { { "a", 11219, CONFIG_NAME }, { "b", 11219, CONFIG_NAME } } },
    { "[::1]:5,10.0.0.1", 11219, 2,
      { { "::1", 11219, CONFIG_IPV6 }, { "10.0.0.1", 11219, CONFIG_IPV4 } } },
    { "1.2.3.4:00080", 0, 1, { { "1.2.3.4", 80, CONFIG_IPV4 } } },
    { "4ever.example", 0, 1, { { "4ever.example", 11211, CONFIG_NAME } } },
};

START_TEST(test_servers_good)
{
    struct config_server *s = NULL;
    struct config_error err;
    size_t n = 0;

    ck_assert_int_eq(servers_parse("MEMTUNNEL_SERVERS",
                                          good_lists[_i].text,
                                          good_lists[_i].tls_port, &s, &n,
                                          &err), 0);
    ck_assert_uint_eq(n, good_lists[_i].n);
    for (size_t k = 0; k < n; k++) {
        const struct server_want *w = &good_lists[_i].s[k];

        ck_assert_str_eq(s[k].host, w->host);
        ck_assert_uint_eq(s[k].port, w->port);
        ck_assert_int_eq(s[k].family, w->family);
    }
    free(s);
}
END_TEST

/* Longest label (63) and longest name (253), each accepted. */
START_TEST(test_servers_long_names)
{
    char label[64], name[254], text[300];
    struct config_server *s;
    struct config_error err;
    size_t n;

    memset(label, 'a', 63);
    label[63] = '\0';
    snprintf(text, sizeof(text), "%s.example:1", label);
    ck_assert_int_eq(servers_parse("x", text, 0, &s, &n, &err), 0);
    ck_assert_uint_eq(strlen(s[0].host), 63 + 8);
    free(s);

    /* 4 labels of 62 + 3 dots = 251, plus ".x" = 253. */
    memset(name, 'b', 253);
    name[62] = name[125] = name[188] = name[251] = '.';
    name[253] = '\0';
    snprintf(text, sizeof(text), "%s.", name);    /* trailing dot too */
    ck_assert_int_eq(servers_parse("x", text, 0, &s, &n, &err), 0);
    ck_assert_str_eq(s[0].host, name);
    free(s);
}
END_TEST

/* ---- servers_parse: bad lists ----------------------------------- */

static const struct {
    const char *text;
    uint16_t tls_port;
    const char *msg;        /* expected in err.msg */
    const char *hidden;     /* must not be in err.msg, or NULL */
} bad_lists[] = {
    { "", 0, "lists no servers", NULL },
    { " , ,\t\n", 0, "lists no servers", NULL },
    { "x:0", 0, "item 1 \"x:0\": port 0 is out of range 1-65535", NULL },
    { "x:65536", 0, "port 65536 is out of range 1-65535", NULL },
    { "a,mc2:99999", 0,
      "item 2 \"mc2:99999\": port 99999 is out of range 1-65535", NULL },
    { "x:99999999999999999999999", 0, "out of range", NULL },
    { "x:", 0, "missing port", NULL },
    { "x:abc", 0, "port is not a number", NULL },
    { "x:+80", 0, "port is not a number", NULL },
    { "x:-1", 0, "port is not a number", NULL },
    { "x: 80", 0, "item 1 \"x:\": missing port", NULL },
    { ":11211", 0, "missing host", NULL },
    { "a:b:c", 0, "too many ':'", NULL },
    { "host:11211:1", 0, "too many ':'", NULL },
    { "::1", 0, "needs brackets", NULL },
    { "fe80::1:11211", 0, "needs brackets", NULL },
    { "2001:db8::1", 0, "needs brackets", NULL },
    { "[::1", 0, "missing ']'", NULL },
    { "[::1]x", 0, "unexpected text after ']'", NULL },
    { "[::1]11211", 0, "unexpected text after ']'", NULL },
    { "[]:1", 0, "not a valid IPv6 address", NULL },
    { "[1.2.3.4]:1", 0, "not a valid IPv6 address", NULL },
    { "[fe80::1%eth0]:1", 0, "not a valid IPv6 address", NULL },
    { "[::1]:", 0, "missing port", NULL },
    { "[::1]:99999", 0, "port 99999 is out of range", NULL },
    { "memcached://mc.example.com:11211", 0, "URL", NULL },
    { "memcached://user:hunter2@mc.example.com:11211", 0,
      "item 1 contains credentials", "hunter2" },
    { "a b user:hunter2@mc.example.com", 0, "item 3 contains credentials",
      "hunter2" },
    { "1.2.3", 0, "not a valid IPv4 address", NULL },
    { "256.1.1.1:5", 0, "not a valid IPv4 address", NULL },
    { "01.2.3.4", 0, "not a valid IPv4 address", NULL },
    { "-bad.example", 0, "starts with '-'", NULL },
    { "bad-.example", 0, "ends with '-'", NULL },
    { "bad-", 0, "ends with '-'", NULL },
    { "a..b", 0, "empty label", NULL },
    { ".a", 0, "empty label", NULL },
    { "..", 0, "empty label", NULL },
    { ".", 0, "not a host name", NULL },
    { "ho$t", 0, "may hold only", NULL },
    { "a\001b", 0, "may hold only", NULL },
    { "a:1 b:2 a:1", 0,
      "item 3 \"a:1\" repeats item 1; each node must be listed once", NULL },
    { "A.example:1,a.EXAMPLE.:1", 0, "item 2 \"a.EXAMPLE.:1\" repeats item 1",
      NULL },
    { "a,a:11211", 0, "repeats item 1", NULL },
    { "10.0.0.1,10.0.0.1:11211", 0, "repeats item 1", NULL },
    { "[::1]:5,[0:0::1]:5", 0, "repeats item 1", NULL },
    { "a:1,a:2", 11219, "repeats item 1 once the TLS port is applied", NULL },
    { PEM, 0, "holds PEM text", "secretbase64" },
};

START_TEST(test_servers_bad)
{
    struct config_server *s = (struct config_server *)&s;
    struct config_error err;
    size_t n = 7;

    memset(&err, 0, sizeof(err));
    ck_assert_int_eq(servers_parse("MEMTUNNEL_SERVERS",
                                          bad_lists[_i].text,
                                          bad_lists[_i].tls_port, &s, &n,
                                          &err), -1);
    ck_assert_ptr_null(s);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(err.status, EXIT_CONFIG);
    ck_assert_str_eq(err.name, "MEMTUNNEL_SERVERS");
    assert_one_line(err.msg);
    ck_assert_msg(strstr(err.msg, bad_lists[_i].msg) != NULL,
                  "\"%s\" not in \"%s\"", bad_lists[_i].msg, err.msg);
    if (bad_lists[_i].hidden != NULL)
        ck_assert_msg(strstr(err.msg, bad_lists[_i].hidden) == NULL,
                      "secret echoed: %s", err.msg);
}
END_TEST

START_TEST(test_servers_too_long)
{
    char label[70], name[300], text[400];
    struct config_server *s;
    struct config_error err;
    size_t n;

    memset(label, 'a', 64);
    label[64] = '\0';
    snprintf(text, sizeof(text), "%s.example", label);
    ck_assert_int_eq(servers_parse("x", text, 0, &s, &n, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "label longer than 63"));
    /* A long item is cut in the message. */
    ck_assert_ptr_nonnull(strstr(err.msg, "...\""));
    ck_assert_ptr_null(strstr(err.msg, text));

    memset(name, 'b', 254);
    for (int i = 50; i < 254; i += 51)
        name[i] = '.';
    name[254] = '\0';
    ck_assert_int_eq(servers_parse("x", name, 0, &s, &n, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "longer than 253"));
}
END_TEST

START_TEST(test_server_str)
{
    struct config_server v4 = { .host = "10.0.0.1", .port = 11211, .family = CONFIG_IPV4 };
    struct config_server v6 = { .host = "2001:db8::1", .port = 5, .family = CONFIG_IPV6 };
    struct config_server dn = { .host = "mc.example.com", .port = 65535, .family = CONFIG_NAME };
    char buf[CONFIG_HOST_MAX + 10], small[8];

    ck_assert_str_eq(servers_str(&v4, buf, sizeof(buf)),
                     "10.0.0.1:11211");
    ck_assert_str_eq(servers_str(&v6, buf, sizeof(buf)),
                     "[2001:db8::1]:5");
    ck_assert_str_eq(servers_str(&dn, buf, sizeof(buf)),
                     "mc.example.com:65535");
    ck_assert_str_eq(servers_str(&dn, small, sizeof(small)), "mc.exam");
}
END_TEST

/* ---- config_parse: errors, with status and the name at fault ------------ */

#define A(...) { __VA_ARGS__, NULL }
#define E(...) { __VA_ARGS__, NULL }
#define NONE { NULL }
#define SRV "MEMCACHIER_SERVERS=mc.example.com"

static const struct {
    const char *args[MAXWORDS];
    const char *env[MAXWORDS];
    int status;
    const char *name;
    const char *msg;        /* expected in err.msg */
} bad_cmdlines[] = {
    /* The shape of the command line: 64. */
    { A("--bogus"), E(SRV), 64, "--bogus", "unknown option" },
    { A("--bogus=1"), E(SRV), 64, "--bogus", "unknown option" },
    { A("-x"), E(SRV), 64, "-x", "unknown option" },
    { A("-hV"), E(SRV), 64, "-hV", "unknown option" },
    { A("--Servers", "a"), NONE, 64, "--Servers", "unknown option" },
    { A("--serv", "a"), NONE, 64, "--serv", "unknown option" },
    { A("--servers"), NONE, 64, "--servers", "needs a value" },
    { A("--servers", "--listen", "1"), NONE, 64, "--servers", "needs a value" },
    { A("--servers", "--", "app"), NONE, 64, "--servers", "needs a value" },
    { A("--servers", "a", "--grace"), NONE, 64, "--grace", "needs a value" },
    /* A value may start with a single '-'. */
    { A("--grace", "-1", "app"), E(SRV), 78, "--grace", "\"-1\" is not" },
    { A("--help=yes"), NONE, 64, "--help", "takes no value" },
    { A("--version=1"), NONE, 64, "--version", "takes no value" },
    { A("--bogus", "--help"), NONE, 64, "--bogus", "unknown option" },
    { A("--servers", "a", "--servers", "b"), NONE, 64, "--servers",
      "more than once" },
    { A("--grace=1", "--grace", "2"), E(SRV), 64, "--grace", "more than once" },
    { A("check", "app"), E(SRV), 64, "check", "\"app\"" },
    { A("--json"), E(SRV), 64, "--json", "check only" },
    { A("--servers", "a", "--json", "app"), NONE, 64, "--json", "check only" },
    { A("check", "--json=yes"), E(SRV), 64, "--json", "no value" },
    { A("check", "--servers", "a", "--", "app"), NONE, 64, "check", "command" },
    { A("--servers", "a", "--vars", "A"), E("A=b"), 64, "--vars",
      "--servers" },
    { A("--bogus", "app"), E("MEMTUNNEL_ENABLED=false"), 64, "--bogus",
      "unknown option" },
    /* A short flag is a whole word: no value, no bundling. */
    { A("-h=1"), E(SRV), 64, "-h", "unknown option" },
    { A("-V=x"), E(SRV), 64, "-V", "unknown option" },
    { A("--json=1"), E(SRV), 64, "--json", "check only" },
    { A("--stats-interval", "5"), E(SRV), 64, "--stats-interval",
      "unknown option" },

    /* Bad values: 78, naming the flag or the variable. */
    { A("--servers", "x:99999"), NONE, 78, "--servers", "item 1" },
    { A("--servers="), NONE, 78, "--servers", "lists no servers" },
    { NONE, E("MEMTUNNEL_SERVERS=x:0"), 78, "MEMTUNNEL_SERVERS", "port 0" },
    { A("--servers", "memcached://u:hunter2@h"), NONE, 78, "--servers",
      "contains credentials" },
    { A("--servers", "a", "--listen", "x"), NONE, 78, "--listen",
      "missing port" },
    { NONE, E(SRV, "MEMTUNNEL_LISTEN=x"), 78, "MEMTUNNEL_LISTEN",
      "missing port" },
    { A("--listen=", "--servers", "a"), NONE, 78, "--listen", "empty" },
    { A("--listen", "localhost"), E(SRV), 78, "--listen", "missing port" },
    { A("--listen", "127.0.0.1"), E(SRV), 78, "--listen", "missing port" },
    { A("--listen", "127.0.0.1:"), E(SRV), 78, "--listen", "missing port" },
    { A("--listen", ":80"), E(SRV), 78, "--listen", "missing address" },
    { A("--listen", "::1:80"), E(SRV), 78, "--listen", "brackets" },
    { A("--listen", "[::1]"), E(SRV), 78, "--listen", "missing port" },
    { A("--listen", "[::1"), E(SRV), 78, "--listen", "missing ']'" },
    { A("--listen", "[x]:1"), E(SRV), 78, "--listen", "not a valid IPv6" },
    { A("--listen", "[::1]:70000"), E(SRV), 78, "--listen",
      "port 70000 is out of range 0-65535" },
    { A("--listen", "70000"), E(SRV), 78, "--listen", "out of range 0-65535" },
    { A("--listen", "example.com:80"), E(SRV), 78, "--listen",
      "only IP addresses and localhost" },
    { A("--listen", "1.2.3:80"), E(SRV), 78, "--listen", "not an IP address" },
    { A("--listen", "127.0.0.1:-1"), E(SRV), 78, "--listen", "not a number" },
    { A("--listen", "127.0.0.1:8x"), E(SRV), 78, "--listen", "not a number" },
    { A("--listen", "65535", "--servers", "a,b"), NONE, 78, "--listen",
      "65535" },
    { NONE, E("MEMTUNNEL_LISTEN=65534", "MEMTUNNEL_SERVERS=a,b,c"), 78,
      "MEMTUNNEL_LISTEN", "port 65534 + 3 nodes" },

    { A("--ca="), E(SRV), 78, "--ca", "empty" },
    { A("--ca", PEM), E(SRV), 78, "--ca", "PEM text" },
    { NONE, E(SRV, "MEMTUNNEL_CA_FILE=" PEM), 78, "MEMTUNNEL_CA_FILE",
      "put PEM text in MEMTUNNEL_CA" },
    { NONE, E(SRV, "MEMTUNNEL_CA_FILE=/ca.pem", "MEMTUNNEL_CA=" PEM), 78,
      "MEMTUNNEL_CA", "set one of MEMTUNNEL_CA and MEMTUNNEL_CA_FILE" },
    { NONE, E(SRV, "MEMTUNNEL_CA=/etc/ca.pem"), 78, "MEMTUNNEL_CA",
      "does not contain PEM text; to name a file use MEMTUNNEL_CA_FILE" },
    { NONE, E(SRV, "MEMTUNNEL_CERT=c", "MEMTUNNEL_KEY=" PEM), 78,
      "MEMTUNNEL_CERT", "to name a file use MEMTUNNEL_CERT_FILE" },
    { NONE, E(SRV, "MEMTUNNEL_CERT=" PEM, "MEMTUNNEL_KEY=k"), 78,
      "MEMTUNNEL_KEY", "to name a file use MEMTUNNEL_KEY_FILE" },
    { NONE, E(SRV, "MEMTUNNEL_CERT_FILE=c", "MEMTUNNEL_CERT=" PEM), 78,
      "MEMTUNNEL_CERT", "set one of" },
    { NONE, E(SRV, "MEMTUNNEL_KEY_FILE=k", "MEMTUNNEL_KEY=" PEM), 78,
      "MEMTUNNEL_KEY", "set one of" },
    { A("--cert", "c.pem"), E(SRV), 78, "--cert", "needs its key" },
    { A("--key", "k.pem"), E(SRV), 78, "--key", "needs its certificate" },
    { A("--cert=", "--key", "k"), E(SRV), 78, "--cert", "empty" },
    { NONE, E(SRV, "MEMTUNNEL_CERT=" PEM), 78, "MEMTUNNEL_CERT",
      "needs its key" },
    { NONE, E(SRV, "MEMTUNNEL_KEY_FILE=k.pem"), 78, "MEMTUNNEL_KEY_FILE",
      "needs its certificate" },

    { A("--verify", "strict"), E(SRV), 78, "--verify",
      "\"strict\" is not valid; expected full, chain or none" },
    { NONE, E(SRV, "MEMTUNNEL_VERIFY=yes"), 78, "MEMTUNNEL_VERIFY",
      "full, chain or none" },
    { A("--verify", "full\n"), E(SRV), 78, "--verify", "\\x0a" },
    { A("--sni", "10.0.0.1"), E(SRV), 78, "--sni", "IP address" },
    { A("--sni", "::1"), E(SRV), 78, "--sni", "IP address" },
    { A("--sni", "a b"), E(SRV), 78, "--sni", "may hold only" },
    { A("--sni", "a..b"), E(SRV), 78, "--sni", "empty label" },
    { A("--sni", "mc.example.com."), E(SRV), 78, "--sni", "trailing dot" },
    { A("--sni="), E(SRV), 78, "--sni", "not a host name" },
    { NONE, E(SRV, "MEMTUNNEL_SNI=-mc.example"), 78, "MEMTUNNEL_SNI",
      "starts with '-'" },
    { A("--tls-min", "1.1"), E(SRV), 78, "--tls-min", "expected 1.2 or 1.3" },
    { A("--tls-min", "13"), E(SRV), 78, "--tls-min", "1.2 or 1.3" },
    { NONE, E(SRV, "MEMTUNNEL_TLS_MIN=1.2 "), 78, "MEMTUNNEL_TLS_MIN",
      "1.2 or 1.3" },
    { A("--tls-port", "0"), E(SRV), 78, "--tls-port",
      "\"0\" is out of range 1-65535" },
    { A("--tls-port", "65536"), E(SRV), 78, "--tls-port", "out of range" },
    { A("--tls-port", "99999999999999999999999"), E(SRV), 78, "--tls-port",
      "out of range" },
    { A("--tls-port", "abc"), E(SRV), 78, "--tls-port", "not a whole number" },
    { A("--tls-port", "-1"), E(SRV), 78, "--tls-port", "not a whole number" },
    { A("--tls-port", "+1"), E(SRV), 78, "--tls-port", "not a whole number" },
    { A("--tls-port", " 1"), E(SRV), 78, "--tls-port", "not a whole number" },
    { A("--tls-port", "1x"), E(SRV), 78, "--tls-port", "not a whole number" },
    { A("--tls-port="), E(SRV), 78, "--tls-port", "not a whole number" },
    { NONE, E(SRV, "MEMTUNNEL_TLS_PORT=0"), 78, "MEMTUNNEL_TLS_PORT",
      "out of range" },
    { A("--log-level", "trace"), E(SRV), 78, "--log-level",
      "error, warn, info or debug" },
    { NONE, E(SRV, "MEMTUNNEL_LOG_LEVEL=verbose"), 78, "MEMTUNNEL_LOG_LEVEL",
      "error, warn, info or debug" },
    { A("--connect-timeout", "0"), E(SRV), 78, "--connect-timeout",
      "out of range; expected more than 0" },
    { A("--connect-timeout", "0.000"), E(SRV), 78, "--connect-timeout",
      "out of range" },
    { A("--connect-timeout", "3601"), E(SRV), 78, "--connect-timeout",
      "out of range" },
    { A("--connect-timeout", "3600.001"), E(SRV), 78, "--connect-timeout",
      "out of range" },
    { A("--connect-timeout", "99999999999999999999999"), E(SRV), 78,
      "--connect-timeout", "out of range" },
    { A("--connect-timeout", "abc"), E(SRV), 78, "--connect-timeout",
      "not a number of seconds" },
    { A("--connect-timeout", "5s"), E(SRV), 78, "--connect-timeout",
      "not a number" },
    { A("--connect-timeout", "1e3"), E(SRV), 78, "--connect-timeout",
      "not a number" },
    { A("--connect-timeout", "-1"), E(SRV), 78, "--connect-timeout",
      "not a number" },
    { A("--connect-timeout", ".5"), E(SRV), 78, "--connect-timeout",
      "not a number" },
    { A("--connect-timeout", "5."), E(SRV), 78, "--connect-timeout",
      "not a number" },
    { A("--connect-timeout", "1.2345"), E(SRV), 78, "--connect-timeout",
      "at most 3 decimals" },
    { A("--connect-timeout", "1.2.3"), E(SRV), 78, "--connect-timeout",
      "not a number" },
    { A("--connect-timeout="), E(SRV), 78, "--connect-timeout",
      "not a number" },
    { NONE, E(SRV, "MEMTUNNEL_CONNECT_TIMEOUT=0"), 78,
      "MEMTUNNEL_CONNECT_TIMEOUT", "out of range" },
    { A("--idle-timeout", "604801"), E(SRV), 78, "--idle-timeout",
      "expected 0-604800" },
    { NONE, E(SRV, "MEMTUNNEL_IDLE_TIMEOUT=x"), 78, "MEMTUNNEL_IDLE_TIMEOUT",
      "not a number" },
    { A("--grace", "3601"), E(SRV), 78, "--grace", "expected 0-3600" },
    { NONE, E(SRV, "MEMTUNNEL_GRACE=abc"), 78, "MEMTUNNEL_GRACE",
      "not a number" },
    { NONE, E(SRV, "MEMTUNNEL_FORWARD_SIGTERM=maybe"), 78,
      "MEMTUNNEL_FORWARD_SIGTERM", "auto, yes or no" },
    { A("--prewarm", "65"), E(SRV), 78, "--prewarm", "out of range 0-64" },
    { A("--prewarm", "x"), E(SRV), 78, "--prewarm", "not a whole number" },
    { NONE, E(SRV, "MEMTUNNEL_PREWARM=-1"), 78, "MEMTUNNEL_PREWARM",
      "not a whole number" },
    { A("--busy-poll", "10001"), E(SRV), 78, "--busy-poll",
      "out of range 0-10000" },
    { A("--busy-poll", "0.5"), E(SRV), 78, "--busy-poll", "not a whole number" },
    { NONE, E(SRV, "MEMTUNNEL_BUSY_POLL=on"), 78, "MEMTUNNEL_BUSY_POLL",
      "not a whole number" },
    { NONE, E(SRV, "MEMTUNNEL_DUMPABLE=core"), 78,
      "MEMTUNNEL_DUMPABLE", "true, 1, yes, on, false, 0, no or off" },
    { NONE, E(SRV, "MEMTUNNEL_STATS_INTERVAL=86401"), 78,
      "MEMTUNNEL_STATS_INTERVAL", "out of range 0-86400" },
    { NONE, E(SRV, "MEMTUNNEL_STATS_INTERVAL=1m"), 78,
      "MEMTUNNEL_STATS_INTERVAL", "not a whole number" },
    { NONE, E(SRV, "MEMTUNNEL_EXPIRY_WARN_DAYS=3651"), 78,
      "MEMTUNNEL_EXPIRY_WARN_DAYS", "out of range 0-3650" },

    { A("app"), E(SRV, "MEMTUNNEL_ENABLED=maybe"), 78, "MEMTUNNEL_ENABLED",
      "expected true, 1, yes, on, false, 0, no or off" },
    { NONE, E(SRV, "MEMTUNNEL_ENABLED=auto"), 78, "MEMTUNNEL_ENABLED",
      "expected true" },
    { A("check"), E(SRV, "MEMTUNNEL_ENABLED=2"), 78, "MEMTUNNEL_ENABLED",
      "expected true" },
    { NONE, E(SRV, "MEMTUNNEL_ENABLED=false"), 78, "MEMTUNNEL_ENABLED",
      "tunnel-only mode" },
    { A("--"), E(SRV, "MEMTUNNEL_ENABLED=off"), 78, "MEMTUNNEL_ENABLED",
      "tunnel-only mode" },

    /* Sources. */
    { NONE, NONE, 78, "--servers",
      "MEMCACHIER_SERVERS, MEMCACHEDCLOUD_SERVERS, MEMCACHE_SERVERS" },
    { A("app"), E("MEMCACHIER_SERVERS=", "MEMCACHE_SERVERS="), 78,
      "--servers", "no memcached servers" },
    { NONE, E("MEMTUNNEL_SERVERS=a", "MEMTUNNEL_VARS=B", "B=b"), 78,
      "MEMTUNNEL_VARS", "set one of MEMTUNNEL_SERVERS and MEMTUNNEL_VARS" },
    { A("--vars", "A"), NONE, 78, "A", "listed in --vars but is not set" },
    { NONE, E("MEMTUNNEL_VARS=A", "A="), 78, "A",
      "listed in MEMTUNNEL_VARS but is not set or is empty" },
    { A("--vars", "A B A"), E("A=a", "B=b"), 78, "--vars", "lists A twice" },
    { A("--vars", "9A"), E("9A=a"), 78, "--vars",
      "\"9A\" is not a variable name" },
    { A("--vars", "A-B"), E("A=a"), 78, "--vars", "not a variable name" },
    { A("--vars", "u:hunter2@h"), NONE, 78, "--vars", "not shown" },
    { A("--vars", " , "), NONE, 78, "--vars", "lists no variable names" },
    { NONE, E("MEMTUNNEL_VARS=A,B", "A=a", "B=b:0"), 78, "B", "port 0" },
    { NONE, E("MEMCACHIER_SERVERS=a:x"), 78, "MEMCACHIER_SERVERS",
      "not a number" },
    { NONE, E("MEMCACHEDCLOUD_SERVERS=a:x"), 78, "MEMCACHEDCLOUD_SERVERS",
      "not a number" },
    { NONE, E("MEMCACHE_SERVERS=a:x"), 78, "MEMCACHE_SERVERS",
      "not a number" },
    { A("--servers", "a:1,a:2", "--tls-port", "11219"), NONE, 78,
      "--servers", "once the TLS port is applied" },
    { A("check", "--servers", "a:0"), NONE, 78, "--servers", "port 0" },
    /* --auth (SPEC §3a): a mode, a pair per node, a verified peer. */
    { A("--auth", "plain"), E(SRV), 78, "--auth", "none, memcachier, "
      "memcached or sasl" },
    { NONE, E(SRV, "MEMTUNNEL_AUTH=yes"), 78, "MEMTUNNEL_AUTH", "sasl" },
    { A("--auth", "memcached"), E(SRV), 78, "--auth",
      "credentials for mc.example.com:11211: set MEMCACHIER_USERNAME" },
    { A("--servers", "a", "--auth", "memcached"), NONE, 78, "--auth",
      "set MEMTUNNEL_USERNAME and MEMTUNNEL_PASSWORD" },
    { A("--auth", "memcached"), E("MEMCACHIER_SERVERS=a", "MEMCACHIER_USERNAME=u"),
      78, "--auth", "set MEMCACHIER_USERNAME and MEMCACHIER_PASSWORD, or "
      "MEMTUNNEL_USERNAME and MEMTUNNEL_PASSWORD" },
    /* Never another provider's pair. */
    { A("--auth", "sasl"), E("MEMCACHIER_SERVERS=a", "MEMCACHE_USERNAME=u",
      "MEMCACHE_PASSWORD=hunter2"), 78, "--auth", "MEMCACHIER_PASSWORD" },
    { A("--auth", "memcached", "--verify", "none"), E(SRV,
      "MEMTUNNEL_USERNAME=u", "MEMTUNNEL_PASSWORD=hunter2"), 78, "--auth",
      "not with --verify none" },
    { A("--auth", "memcached"), E(SRV, "MEMTUNNEL_USERNAME=u v",
      "MEMTUNNEL_PASSWORD=hunter2"), 78, "MEMTUNNEL_USERNAME", "space" },
    { A("--auth", "memcachier"), E("MEMCACHIER_SERVERS=a",
      "MEMCACHIER_USERNAME=u\tv", "MEMCACHIER_PASSWORD=hunter2"), 78,
      "MEMCACHIER_USERNAME", "control" },
};

START_TEST(test_bad_cmdline)
{
    struct config_error err;
    struct config cfg;
    struct cmdline c;

    build(&c, bad_cmdlines[_i].args, bad_cmdlines[_i].env);
    memset(&cfg, 0xa5, sizeof(cfg));
    ck_assert_int_eq(config_parse(&cfg, c.argc, c.argv, c.envp, &err), -1);
    ck_assert_int_eq(err.status, bad_cmdlines[_i].status);
    ck_assert_str_eq(err.name, bad_cmdlines[_i].name);
    assert_one_line(err.msg);
    ck_assert_msg(strstr(err.msg, bad_cmdlines[_i].msg) != NULL,
                  "\"%s\" not in \"%s\"", bad_cmdlines[_i].msg, err.msg);
    /* Never PEM text or a password. */
    ck_assert_ptr_null(strstr(err.msg, "secretbase64"));
    ck_assert_ptr_null(strstr(err.msg, "hunter2"));
    /* Nothing left to free. */
    ck_assert_ptr_null(cfg.servers);
    ck_assert_ptr_null(cfg.sources);
    config_free(&cfg);
}
END_TEST

/* ---- config_parse: good values of each setting ------------------------ */

#define GETTER(name, field) \
    static long name(const struct config *c) { return (long)c->field; }
GETTER(get_verify, verify)
GETTER(get_tls_min, tls_min)
GETTER(get_tls_port, tls_port)
GETTER(get_level, log_level)
GETTER(get_connect, connect_timeout_ms)
GETTER(get_idle, idle_timeout_ms)
GETTER(get_grace, grace_ms)
GETTER(get_forward, forward_sigterm)
GETTER(get_prewarm, prewarm)
GETTER(get_busy_poll, busy_poll_us)
GETTER(get_stats, stats_interval)
GETTER(get_expiry, expiry_warn_days)
GETTER(get_heroku, on_heroku)
GETTER(get_dumpable, dumpable)

static const struct {
    const char *args[MAXWORDS];
    const char *env[MAXWORDS];
    long (*get)(const struct config *);
    long want;
} good_values[] = {
    { NONE, E(SRV), get_verify, CONFIG_VERIFY_FULL },
    { A("--verify", "full"), E(SRV), get_verify, CONFIG_VERIFY_FULL },
    { A("--verify", "chain"), E(SRV), get_verify, CONFIG_VERIFY_CHAIN },
    { A("--verify=none"), E(SRV), get_verify, CONFIG_VERIFY_NONE },
    { A("--verify", "NONE"), E(SRV), get_verify, CONFIG_VERIFY_NONE },
    { NONE, E(SRV, "MEMTUNNEL_VERIFY=chain"), get_verify, CONFIG_VERIFY_CHAIN },
    { NONE, E(SRV, "MEMTUNNEL_VERIFY="), get_verify, CONFIG_VERIFY_FULL },
    { A("--verify", "chain"), E(SRV, "MEMTUNNEL_VERIFY=none"), get_verify,
      CONFIG_VERIFY_CHAIN },
    { A("--verify", "chain"), E(SRV, "MEMTUNNEL_VERIFY=bogus"), get_verify,
      CONFIG_VERIFY_CHAIN },

    { NONE, E(SRV), get_tls_min, 12 },
    { A("--tls-min", "1.3"), E(SRV), get_tls_min, 13 },
    { NONE, E(SRV, "MEMTUNNEL_TLS_MIN=1.3"), get_tls_min, 13 },
    { A("--tls-min", "1.2"), E(SRV, "MEMTUNNEL_TLS_MIN=1.3"), get_tls_min, 12 },

    { NONE, E(SRV), get_tls_port, 0 },
    { A("--tls-port", "1"), E(SRV), get_tls_port, 1 },
    { A("--tls-port", "65535"), E(SRV), get_tls_port, 65535 },
    { NONE, E(SRV, "MEMTUNNEL_TLS_PORT=11219"), get_tls_port, 11219 },
    { A("--tls-port=5"), E(SRV, "MEMTUNNEL_TLS_PORT=11219"), get_tls_port, 5 },

    { NONE, E(SRV), get_level, CONFIG_LOG_INFO },
    { A("--log-level", "error"), E(SRV), get_level, CONFIG_LOG_ERROR },
    { A("--log-level", "warn"), E(SRV), get_level, CONFIG_LOG_WARN },
    { A("--log-level", "info"), E(SRV), get_level, CONFIG_LOG_INFO },
    { A("--log-level", "debug"), E(SRV), get_level, CONFIG_LOG_DEBUG },
    { NONE, E(SRV, "MEMTUNNEL_LOG_LEVEL=DEBUG"), get_level, CONFIG_LOG_DEBUG },
    { A("--log-level", "warn"), E(SRV, "MEMTUNNEL_LOG_LEVEL=debug"), get_level,
      CONFIG_LOG_WARN },

    { NONE, E(SRV), get_connect, 5000 },
    { A("--connect-timeout", "0.5"), E(SRV), get_connect, 500 },
    { A("--connect-timeout", "0.001"), E(SRV), get_connect, 1 },
    { A("--connect-timeout", "2.25"), E(SRV), get_connect, 2250 },
    { A("--connect-timeout", "007"), E(SRV), get_connect, 7000 },
    { A("--connect-timeout", "3600"), E(SRV), get_connect, 3600000 },
    { A("--connect-timeout", "3600.000"), E(SRV), get_connect, 3600000 },
    { NONE, E(SRV, "MEMTUNNEL_CONNECT_TIMEOUT=10"), get_connect, 10000 },
    { A("--connect-timeout", "1"), E(SRV, "MEMTUNNEL_CONNECT_TIMEOUT=10"),
      get_connect, 1000 },

    { NONE, E(SRV), get_idle, 0 },
    { A("--idle-timeout", "0"), E(SRV), get_idle, 0 },
    { A("--idle-timeout", "604800"), E(SRV), get_idle, 604800000 },
    { NONE, E(SRV, "MEMTUNNEL_IDLE_TIMEOUT=1.5"), get_idle, 1500 },

    { NONE, E(SRV), get_grace, 25000 },
    { A("--grace", "0"), E(SRV), get_grace, 0 },
    { A("--grace", "3600"), E(SRV), get_grace, 3600000 },
    { NONE, E(SRV, "MEMTUNNEL_GRACE=10"), get_grace, 10000 },
    { A("--grace", "2"), E(SRV, "MEMTUNNEL_GRACE=10"), get_grace, 2000 },

    { NONE, E(SRV), get_forward, CONFIG_AUTO },
    { NONE, E(SRV, "MEMTUNNEL_FORWARD_SIGTERM=auto"), get_forward, CONFIG_AUTO },
    { NONE, E(SRV, "MEMTUNNEL_FORWARD_SIGTERM=yes"), get_forward, CONFIG_YES },
    { NONE, E(SRV, "MEMTUNNEL_FORWARD_SIGTERM=no"), get_forward, CONFIG_NO },
    { NONE, E(SRV, "MEMTUNNEL_FORWARD_SIGTERM=True"), get_forward, CONFIG_YES },
    { NONE, E(SRV, "MEMTUNNEL_FORWARD_SIGTERM=off"), get_forward, CONFIG_NO },

    { NONE, E(SRV), get_prewarm, 1 },
    { A("--prewarm", "0"), E(SRV), get_prewarm, 0 },
    { A("--prewarm", "64"), E(SRV), get_prewarm, 64 },
    { NONE, E(SRV, "MEMTUNNEL_PREWARM=3"), get_prewarm, 3 },
    { NONE, E(SRV, "MEMTUNNEL_PREWARM="), get_prewarm, 1 },
    { A("--prewarm", "2"), E(SRV, "MEMTUNNEL_PREWARM=x"), get_prewarm, 2 },

    { NONE, E(SRV), get_busy_poll, 20 },
    { A("--busy-poll", "0"), E(SRV), get_busy_poll, 0 },
    { A("--busy-poll=10000"), E(SRV), get_busy_poll, 10000 },
    { NONE, E(SRV, "MEMTUNNEL_BUSY_POLL=50"), get_busy_poll, 50 },
    { NONE, E(SRV, "MEMTUNNEL_BUSY_POLL="), get_busy_poll, 20 },
    { A("--busy-poll", "0"), E(SRV, "MEMTUNNEL_BUSY_POLL=50"), get_busy_poll, 0 },

    { NONE, E(SRV), get_stats, 60 },
    { NONE, E(SRV, "MEMTUNNEL_STATS_INTERVAL=0"), get_stats, 0 },
    { NONE, E(SRV, "MEMTUNNEL_STATS_INTERVAL=86400"), get_stats, 86400 },

    { NONE, E(SRV), get_expiry, 14 },
    { NONE, E(SRV, "MEMTUNNEL_EXPIRY_WARN_DAYS=0"), get_expiry, 0 },
    { NONE, E(SRV, "MEMTUNNEL_EXPIRY_WARN_DAYS=3650"), get_expiry, 3650 },

    { NONE, E(SRV), get_heroku, 0 },
    { NONE, E(SRV, "DYNO=web.1"), get_heroku, 1 },
    { NONE, E(SRV, "DYNO="), get_heroku, 0 },

    { NONE, E(SRV), get_dumpable, 0 },
    { NONE, E(SRV, "MEMTUNNEL_DUMPABLE=1"), get_dumpable, 1 },
    { NONE, E(SRV, "MEMTUNNEL_DUMPABLE=yes"), get_dumpable, 1 },
    { NONE, E(SRV, "MEMTUNNEL_DUMPABLE=false"), get_dumpable, 0 },
    { NONE, E(SRV, "MEMTUNNEL_DUMPABLE="), get_dumpable, 0 },
};

START_TEST(test_good_value)
{
    struct config cfg;
    struct cmdline c;

    parse_ok(&cfg, &c, good_values[_i].args, good_values[_i].env);
    ck_assert_int_eq(good_values[_i].get(&cfg), good_values[_i].want);
    config_free(&cfg);
}
END_TEST

START_TEST(test_defaults)
{
    static const char *const env[] = { SRV, NULL };
    struct config cfg;
    struct cmdline c;

    parse_ok(&cfg, &c, NULL, env);
    ck_assert_int_eq(cfg.mode, CONFIG_MODE_TUNNEL);
    ck_assert_ptr_null(cfg.command);
    ck_assert_uint_eq(cfg.nservers, 1);
    ck_assert_str_eq(cfg.servers[0].host, "mc.example.com");
    ck_assert_uint_eq(cfg.servers[0].port, 11211);
    ck_assert_str_eq(cfg.listen_host, "127.0.0.1");
    ck_assert_int_eq(cfg.listen_family, CONFIG_IPV4);
    ck_assert_uint_eq(cfg.listen_port, 11211);
    ck_assert_int_eq(cfg.listen_explicit, 0);
    ck_assert_int_eq(cfg.listen_loopback, 1);
    ck_assert_ptr_null(cfg.ca_file);
    ck_assert_ptr_null(cfg.ca_pem);
    ck_assert_ptr_null(cfg.ca_source);
    ck_assert_ptr_null(cfg.cert_file);
    ck_assert_ptr_null(cfg.cert_pem);
    ck_assert_ptr_null(cfg.cert_source);
    ck_assert_ptr_null(cfg.key_file);
    ck_assert_ptr_null(cfg.key_pem);
    ck_assert_ptr_null(cfg.key_source);
    ck_assert_ptr_null(cfg.sni);
    config_free(&cfg);
}
END_TEST

START_TEST(test_wrap)
{
    static const char *const args[] = {
        "--servers", "a", "--", "app", "--servers", "x", "--help", NULL
    };
    struct config cfg;
    struct cmdline c;

    parse_ok(&cfg, &c, args, NULL);
    ck_assert_int_eq(cfg.mode, CONFIG_MODE_WRAP);
    ck_assert_ptr_eq(cfg.command, &c.argv[4]);
    ck_assert_str_eq(cfg.command[0], "app");
    ck_assert_str_eq(cfg.command[1], "--servers");
    ck_assert_str_eq(cfg.command[3], "--help");
    ck_assert_ptr_null(cfg.command[4]);
    /* Options after the command are the command's. */
    ck_assert_str_eq(cfg.servers[0].host, "a");
    ck_assert_uint_eq(cfg.listen_port, 0);
    config_free(&cfg);
}
END_TEST

/* The first word that is not an option starts the command. */
static const struct {
    const char *args[MAXWORDS];
    int cmd;                    /* argv index of the command */
} commands[] = {
    { A("app"), 1 },
    { A("--servers", "a", "app", "-x"), 3 },
    { A("--servers=a", "app", "--servers", "b"), 2 },
    { A("--", "--servers"), 2 },
    { A("-", "x"), 1 },
    { A("--servers", "a", "check"), 3 },
};

START_TEST(test_command_start)
{
    static const char *const env[] = { SRV, NULL };
    struct config cfg;
    struct cmdline c;

    parse_ok(&cfg, &c, commands[_i].args, env);
    ck_assert_int_eq(cfg.mode, CONFIG_MODE_WRAP);
    ck_assert_ptr_eq(cfg.command, &c.argv[commands[_i].cmd]);
    config_free(&cfg);
}
END_TEST

static const struct {
    const char *args[MAXWORDS];
    enum config_mode mode;
} early[] = {
    { A("-h"), CONFIG_MODE_HELP },
    { A("--help"), CONFIG_MODE_HELP },
    { A("-V"), CONFIG_MODE_VERSION },
    { A("--version"), CONFIG_MODE_VERSION },
    { A("check", "--help"), CONFIG_MODE_HELP },
    { A("check", "-V"), CONFIG_MODE_VERSION },
    { A("--servers", "bad:::", "--verify", "x", "-h"), CONFIG_MODE_HELP },
    { A("--version", "--bogus"), CONFIG_MODE_VERSION },
};

/* Help and version need nothing else: no servers, no valid values. */
START_TEST(test_help_version)
{
    static const char *const env[] = {
        "MEMTUNNEL_LOG_LEVEL=bogus", "MEMTUNNEL_ENABLED=bogus", NULL
    };
    struct config cfg;
    struct cmdline c;

    parse_ok(&cfg, &c, early[_i].args, env);
    ck_assert_int_eq(cfg.mode, early[_i].mode);
    ck_assert_ptr_null(cfg.servers);
    config_free(&cfg);
}
END_TEST

START_TEST(test_check_mode)
{
    static const char *const a1[] = { "check", NULL };
    static const char *const a2[] = { "check", "--servers", "a,b", "--", NULL };
    static const char *const a3[] = { "check", "--json", "--servers", "x", NULL };
    static const char *const e1[] = { SRV, NULL };
    static const char *const e2[] = {
        "MEMTUNNEL_ENABLED=false", "MEMTUNNEL_ACTIVE=1", NULL
    };
    struct config cfg;
    struct cmdline c;

    parse_ok(&cfg, &c, a1, e1);
    ck_assert_int_eq(cfg.mode, CONFIG_MODE_CHECK);
    ck_assert_ptr_null(cfg.command);
    ck_assert_uint_eq(cfg.nservers, 1);
    ck_assert_int_eq(cfg.json, 0);
    config_free(&cfg);

    parse_ok(&cfg, &c, a3, e1);
    ck_assert_int_eq(cfg.mode, CONFIG_MODE_CHECK);
    ck_assert_int_eq(cfg.json, 1);
    ck_assert_uint_eq(cfg.nservers, 1);
    ck_assert_str_eq(cfg.servers[0].host, "x");
    config_free(&cfg);

    /* Disabled or nested, check still checks. */
    parse_ok(&cfg, &c, a2, e2);
    ck_assert_int_eq(cfg.mode, CONFIG_MODE_CHECK);
    ck_assert_ptr_null(cfg.command);
    ck_assert_uint_eq(cfg.nservers, 2);
    config_free(&cfg);
}
END_TEST

/* ---- EXEC: disabled or nested, the command runs untouched -------------- */

static const struct {
    const char *env[MAXWORDS];
    enum config_mode mode;
} exec_cases[] = {
    { E("MEMTUNNEL_ENABLED=false"), CONFIG_MODE_EXEC },
    { E("MEMTUNNEL_ENABLED=FALSE"), CONFIG_MODE_EXEC },
    { E("MEMTUNNEL_ENABLED=0"), CONFIG_MODE_EXEC },
    { E("MEMTUNNEL_ENABLED=no"), CONFIG_MODE_EXEC },
    { E("MEMTUNNEL_ENABLED=Off"), CONFIG_MODE_EXEC },
    { E("MEMTUNNEL_ACTIVE=1"), CONFIG_MODE_EXEC },
    { E("MEMTUNNEL_ACTIVE=1", "MEMTUNNEL_ENABLED=bogus"), CONFIG_MODE_EXEC },
    { E("MEMTUNNEL_ACTIVE=1", "MEMTUNNEL_ENABLED=true"), CONFIG_MODE_EXEC },
    { E("MEMTUNNEL_ENABLED=true", SRV), CONFIG_MODE_WRAP },
    { E("MEMTUNNEL_ENABLED=1", SRV), CONFIG_MODE_WRAP },
    { E("MEMTUNNEL_ENABLED=Yes", SRV), CONFIG_MODE_WRAP },
    { E("MEMTUNNEL_ENABLED=ON", SRV), CONFIG_MODE_WRAP },
    { E("MEMTUNNEL_ENABLED=", SRV), CONFIG_MODE_WRAP },
    { E("MEMTUNNEL_ACTIVE=0", SRV), CONFIG_MODE_WRAP },
    { E("MEMTUNNEL_ACTIVE=", SRV), CONFIG_MODE_WRAP },
};

START_TEST(test_exec)
{
    /* Bad values everywhere: EXEC must not look at them. */
    static const char *const args[] = {
        "--servers", "bad:::", "--log-level", "bogus", "--listen", "x",
        "app", "arg", NULL
    };
    static const char *const wrap_args[] = { "app", "arg", NULL };
    enum config_mode mode = exec_cases[_i].mode;
    struct config cfg;
    struct cmdline c;

    parse_ok(&cfg, &c, mode == CONFIG_MODE_EXEC ? args : wrap_args,
             exec_cases[_i].env);
    ck_assert_int_eq(cfg.mode, mode);
    ck_assert_str_eq(cfg.command[0], "app");
    ck_assert_str_eq(cfg.command[1], "arg");
    ck_assert_ptr_null(cfg.command[2]);
    if (mode == CONFIG_MODE_EXEC) {
        ck_assert_ptr_null(cfg.servers);
        ck_assert_uint_eq(cfg.nservers, 0);
    } else {
        ck_assert_uint_eq(cfg.nservers, 1);
    }
    config_free(&cfg);
}
END_TEST

/* A bad variable must not stop a disabled app from starting. */
START_TEST(test_exec_ignores_env)
{
    static const char *const args[] = { "app", NULL };
    static const char *const env[] = {
        "MEMTUNNEL_ENABLED=off", "MEMTUNNEL_LOG_LEVEL=loud",
        "MEMTUNNEL_SERVERS=::1", "MEMTUNNEL_CA=not pem", NULL
    };
    struct config cfg;
    struct cmdline c;

    parse_ok(&cfg, &c, args, env);
    ck_assert_int_eq(cfg.mode, CONFIG_MODE_EXEC);
    ck_assert_ptr_eq(cfg.command, &c.argv[1]);
    config_free(&cfg);
}
END_TEST

/* ---- sources ----------------------------------------------------------- */

static const struct {
    const char *args[MAXWORDS];
    const char *env[MAXWORDS];
    const char *name;
    int is_var;
    const char *host;
} one_source[] = {
    { NONE, E("MEMCACHE_SERVERS=c"), "MEMCACHE_SERVERS", 1, "c" },
    { NONE, E("MEMCACHE_SERVERS=c", "MEMCACHEDCLOUD_SERVERS=b"),
      "MEMCACHEDCLOUD_SERVERS", 1, "b" },
    { NONE, E("MEMCACHE_SERVERS=c", "MEMCACHEDCLOUD_SERVERS=b",
              "MEMCACHIER_SERVERS=a"), "MEMCACHIER_SERVERS", 1, "a" },
    { NONE, E("MEMCACHIER_SERVERS=", "MEMCACHEDCLOUD_SERVERS=b"),
      "MEMCACHEDCLOUD_SERVERS", 1, "b" },
    { NONE, E("MEMCACHIER_SERVERS=a", "MEMTUNNEL_SERVERS=t"),
      "MEMTUNNEL_SERVERS", 0, "t" },
    { A("--servers", "f"), E("MEMCACHIER_SERVERS=a", "MEMTUNNEL_SERVERS=t"),
      "--servers", 0, "f" },
    { A("--servers", "f"), E("MEMTUNNEL_VARS=A", "A=a"), "--servers", 0, "f" },
    { A("--vars", "A"), E("MEMTUNNEL_SERVERS=t", "A=a"), "A", 1, "a" },
    { NONE, E("MEMTUNNEL_VARS=A", "A=a", "MEMCACHIER_SERVERS=m"), "A", 1,
      "a" },
    { NONE, E("MEMTUNNEL_SERVERS=", "MEMTUNNEL_VARS=", "MEMCACHE_SERVERS=c"),
      "MEMCACHE_SERVERS", 1, "c" },
};

START_TEST(test_one_source)
{
    struct config cfg;
    struct cmdline c;

    parse_ok(&cfg, &c, one_source[_i].args, one_source[_i].env);
    ck_assert_uint_eq(cfg.nsources, 1);
    ck_assert_str_eq(cfg.sources[0].name, one_source[_i].name);
    ck_assert_int_eq(cfg.sources[0].is_var, one_source[_i].is_var);
    ck_assert_uint_eq(cfg.sources[0].first, 0);
    ck_assert_uint_eq(cfg.sources[0].count, 1);
    ck_assert_uint_eq(cfg.nservers, 1);
    ck_assert_str_eq(cfg.servers[0].host, one_source[_i].host);
    config_free(&cfg);
}
END_TEST

START_TEST(test_vars_two)
{
    static const char *const env[] = {
        "MEMTUNNEL_VARS=MEMCACHEDCLOUD_SERVERS,\tMEMCACHIER_SERVERS ",
        "MEMCACHIER_SERVERS=a1:1,a2:2",
        "MEMCACHEDCLOUD_SERVERS=[::1]:3",
        "MEMCACHE_SERVERS=ignored", NULL
    };
    static const char *const args[] = { "--tls-port", "11219", "app", NULL };
    struct config cfg;
    struct cmdline c;

    parse_ok(&cfg, &c, args, env);
    ck_assert_int_eq(cfg.mode, CONFIG_MODE_WRAP);
    ck_assert_uint_eq(cfg.nsources, 2);
    ck_assert_str_eq(cfg.sources[0].name, "MEMCACHEDCLOUD_SERVERS");
    ck_assert_int_eq(cfg.sources[0].is_var, 1);
    ck_assert_uint_eq(cfg.sources[0].first, 0);
    ck_assert_uint_eq(cfg.sources[0].count, 1);
    ck_assert_str_eq(cfg.sources[1].name, "MEMCACHIER_SERVERS");
    ck_assert_int_eq(cfg.sources[1].is_var, 1);
    ck_assert_uint_eq(cfg.sources[1].first, 1);
    ck_assert_uint_eq(cfg.sources[1].count, 2);
    ck_assert_uint_eq(cfg.nservers, 3);
    ck_assert_str_eq(cfg.servers[0].host, "::1");
    ck_assert_str_eq(cfg.servers[1].host, "a1");
    ck_assert_str_eq(cfg.servers[2].host, "a2");
    for (size_t i = 0; i < 3; i++)
        ck_assert_uint_eq(cfg.servers[i].port, 11219);
    config_free(&cfg);
    ck_assert_ptr_null(cfg.sources);
    ck_assert_uint_eq(cfg.nservers, 0);
}
END_TEST

/* The same node under two variables is fine: each gets its listener. */
START_TEST(test_vars_same_node)
{
    static const char *const args[] = { "--vars", "B A", NULL };
    static const char *const env[] = { "A=n:1", "B=n:1,m", NULL };
    struct config cfg;
    struct cmdline c;

    parse_ok(&cfg, &c, args, env);
    ck_assert_uint_eq(cfg.nsources, 2);
    ck_assert_str_eq(cfg.sources[0].name, "B");
    ck_assert_str_eq(cfg.sources[1].name, "A");
    ck_assert_uint_eq(cfg.nservers, 3);
    ck_assert_str_eq(cfg.servers[2].host, "n");
    config_free(&cfg);
}
END_TEST

/* ---- TLS material ------------------------------------------------------ */

static const struct {
    const char *args[MAXWORDS];
    const char *env[MAXWORDS];
    const char *ca_file, *ca_pem, *ca_source;
    const char *cert_file, *cert_source, *key_pem, *key_source;
} materials[] = {
    { A("--ca", "/ca.pem"), E(SRV), "/ca.pem", NULL, "--ca",
      NULL, NULL, NULL, NULL },
    { NONE, E(SRV, "MEMTUNNEL_CA_FILE=/f.pem"), "/f.pem", NULL,
      "MEMTUNNEL_CA_FILE", NULL, NULL, NULL, NULL },
    { NONE, E(SRV, "MEMTUNNEL_CA=" PEM), NULL, PEM, "MEMTUNNEL_CA",
      NULL, NULL, NULL, NULL },
    { A("--ca=/ca.pem"), E(SRV, "MEMTUNNEL_CA=" PEM), "/ca.pem", NULL,
      "--ca", NULL, NULL, NULL, NULL },
    { A("--ca", "/ca.pem"), E(SRV, "MEMTUNNEL_CA_FILE=/f.pem",
                              "MEMTUNNEL_CA=" PEM), "/ca.pem", NULL, "--ca",
      NULL, NULL, NULL, NULL },
    { NONE, E(SRV, "MEMTUNNEL_CA_FILE=", "MEMTUNNEL_CA=" PEM), NULL, PEM,
      "MEMTUNNEL_CA", NULL, NULL, NULL, NULL },
    { A("--cert", "c.pem"), E(SRV, "MEMTUNNEL_KEY=" PEM), NULL, NULL, NULL,
      "c.pem", "--cert", PEM, "MEMTUNNEL_KEY" },
    { NONE, E(SRV, "MEMTUNNEL_CERT_FILE=c.pem", "MEMTUNNEL_KEY=" PEM), NULL,
      NULL, NULL, "c.pem", "MEMTUNNEL_CERT_FILE", PEM, "MEMTUNNEL_KEY" },
};

#define STR_OR_NULL(got, want)                          \
    do {                                                \
        if ((want) == NULL)                             \
            ck_assert_ptr_null(got);                    \
        else                                            \
            ck_assert_str_eq((got), (want));            \
    } while (0)

START_TEST(test_material)
{
    struct config cfg;
    struct cmdline c;

    parse_ok(&cfg, &c, materials[_i].args, materials[_i].env);
    STR_OR_NULL(cfg.ca_file, materials[_i].ca_file);
    STR_OR_NULL(cfg.ca_pem, materials[_i].ca_pem);
    STR_OR_NULL(cfg.ca_source, materials[_i].ca_source);
    STR_OR_NULL(cfg.cert_file, materials[_i].cert_file);
    STR_OR_NULL(cfg.cert_source, materials[_i].cert_source);
    STR_OR_NULL(cfg.key_pem, materials[_i].key_pem);
    STR_OR_NULL(cfg.key_source, materials[_i].key_source);
    ck_assert_ptr_null(cfg.cert_pem);
    ck_assert_ptr_null(cfg.key_file);
    config_free(&cfg);
}
END_TEST

START_TEST(test_cert_key_files)
{
    static const char *const args[] = {
        "--cert", "c.pem", "--key=k.pem", NULL
    };
    static const char *const env[] = {
        SRV, "MEMTUNNEL_CERT=" PEM, "MEMTUNNEL_KEY_FILE=other", NULL
    };
    struct config cfg;
    struct cmdline c;

    parse_ok(&cfg, &c, args, env);
    ck_assert_str_eq(cfg.cert_file, "c.pem");
    ck_assert_str_eq(cfg.cert_source, "--cert");
    ck_assert_ptr_null(cfg.cert_pem);
    ck_assert_str_eq(cfg.key_file, "k.pem");
    ck_assert_str_eq(cfg.key_source, "--key");
    ck_assert_ptr_null(cfg.key_pem);
    config_free(&cfg);
}
END_TEST

START_TEST(test_sni)
{
    static const char *const args[] = { "--sni", "mc.example.com", NULL };
    static const char *const env[] = { SRV, "MEMTUNNEL_SNI=other.example",
                                       NULL };
    struct config cfg;
    struct cmdline c;

    /* The flag wins over the variable. */
    parse_ok(&cfg, &c, args, env);
    ck_assert_str_eq(cfg.sni, "mc.example.com");
    config_free(&cfg);
    parse_ok(&cfg, &c, NULL, env);
    ck_assert_str_eq(cfg.sni, "other.example");
    config_free(&cfg);
}
END_TEST

/* ---- listen ------------------------------------------------------------ */

static const struct {
    const char *text;
    const char *host;
    enum config_family family;
    unsigned port;
    int loopback;
} listens[] = {
    { "11300", "127.0.0.1", CONFIG_IPV4, 11300, 1 },
    { "0", "127.0.0.1", CONFIG_IPV4, 0, 1 },
    { "65535", "127.0.0.1", CONFIG_IPV4, 65535, 1 },
    { "127.0.0.2:5", "127.0.0.2", CONFIG_IPV4, 5, 1 },
    { "127.255.0.1:0", "127.255.0.1", CONFIG_IPV4, 0, 1 },
    { "0.0.0.0:11211", "0.0.0.0", CONFIG_IPV4, 11211, 0 },
    { "10.1.2.3:0", "10.1.2.3", CONFIG_IPV4, 0, 0 },
    { "128.0.0.1:1", "128.0.0.1", CONFIG_IPV4, 1, 0 },
    { "localhost:5", "127.0.0.1", CONFIG_IPV4, 5, 1 },
    { "LocalHost:6", "127.0.0.1", CONFIG_IPV4, 6, 1 },
    { "[::1]:7", "::1", CONFIG_IPV6, 7, 1 },
    { "[::]:7", "::", CONFIG_IPV6, 7, 0 },
    { "[fe80::1]:0", "fe80::1", CONFIG_IPV6, 0, 0 },
};

START_TEST(test_listen)
{
    const char *args[] = { "--listen", listens[_i].text, NULL };
    char var[64];
    const char *env[] = { SRV, var, NULL };
    struct config cfg;
    struct cmdline c;

    for (int pass = 0; pass < 2; pass++) {
        /* Pass 0 through the flag, pass 1 through the variable. */
        snprintf(var, sizeof(var), "MEMTUNNEL_LISTEN=%s",
                 pass == 0 ? "bogus" : listens[_i].text);
        parse_ok(&cfg, &c, pass == 0 ? args : NULL, env);
        ck_assert_str_eq(cfg.listen_host, listens[_i].host);
        ck_assert_int_eq(cfg.listen_family, listens[_i].family);
        ck_assert_uint_eq(cfg.listen_port, listens[_i].port);
        ck_assert_int_eq(cfg.listen_loopback, listens[_i].loopback);
        ck_assert_int_eq(cfg.listen_explicit, 1);
        config_free(&cfg);
    }
}
END_TEST

/* Node i listens on port + i: the last must still be a port. */
static const struct {
    const char *listen;
    const char *servers;
    int ok;
} rooms[] = {
    { "65535", "a", 1 },
    { "65534", "a,b", 1 },
    { "65535", "a,b", 0 },
    { "65534", "a b c", 0 },
    { "0", "a b c d e f g h", 1 },
    { "[::1]:65533", "a,b,c", 1 },
    { "[::1]:65534", "a,b,c", 0 },
};

START_TEST(test_listen_room)
{
    const char *args[] = {
        "--listen", rooms[_i].listen, "--servers", rooms[_i].servers, NULL
    };
    struct config_error err;
    struct config cfg;
    struct cmdline c;

    build(&c, args, NULL);
    ck_assert_int_eq(config_parse(&cfg, c.argc, c.argv, c.envp, &err),
                     rooms[_i].ok ? 0 : -1);
    if (!rooms[_i].ok) {
        ck_assert_int_eq(err.status, EXIT_CONFIG);
        ck_assert_str_eq(err.name, "--listen");
    }
    config_free(&cfg);
}
END_TEST

START_TEST(test_listen_default_by_mode)
{
    static const char *const wrap[] = { "app", NULL };
    static const char *const check[] = { "check", NULL };
    static const char *const env[] = { SRV, NULL };
    struct config cfg;
    struct cmdline c;

    parse_ok(&cfg, &c, NULL, env);
    ck_assert_uint_eq(cfg.listen_port, 11211);
    config_free(&cfg);
    parse_ok(&cfg, &c, wrap, env);
    ck_assert_uint_eq(cfg.listen_port, 0);
    ck_assert_str_eq(cfg.listen_host, "127.0.0.1");
    ck_assert_int_eq(cfg.listen_explicit, 0);
    config_free(&cfg);
    parse_ok(&cfg, &c, check, env);
    ck_assert_int_eq(cfg.listen_explicit, 0);
    config_free(&cfg);
}
END_TEST

/* ---- the option table ------------------------------------------------- */

/* The value of row o as a user would give it: its default, or a word. */
static const char *some_value(const struct config_opt *o)
{
    if (o->def != NULL)
        return o->def;
    switch (o->kind) {
    case CONFIG_KIND_UINT:
        return "1";
    case CONFIG_KIND_NAME:
        return "mc.example.com";
    case CONFIG_KIND_SERVERS:
        return "mc.example.com";
    case CONFIG_KIND_FILE:
        return "/f.pem";
    case CONFIG_KIND_PEM:
        return PEM;
    case CONFIG_KIND_VARS:
        return "A";
    default:
        return "x";
    }
}

/* Each row is complete, and names no flag or variable another row has. */
START_TEST(test_opt_row)
{
    const struct config_opt *o = &config_opts[_i];

    ck_assert_msg(o->flag != NULL || o->var != NULL, "row %d unnamed", _i);
    if (o->flag != NULL)
        ck_assert_int_eq(strncmp(o->flag, "--", 2), 0);
    if (o->var != NULL)
        ck_assert_int_eq(strncmp(o->var, "MEMTUNNEL_", 10), 0);
    ck_assert_ptr_nonnull(o->help);
    ck_assert_uint_gt(strlen(o->help), 0);
    ck_assert_msg(o->flag == NULL || (o->arg != NULL) ==
                  (o->kind != CONFIG_KIND_MODE &&
                   o->kind != CONFIG_KIND_SWITCH),
                  "%s: a flag names its value in --help iff it takes one",
                  o->flag);
    for (size_t k = 0; k < config_nopts; k++) {
        const struct config_opt *p = &config_opts[k];

        if (k == (size_t)_i)
            continue;
        ck_assert(o->flag == NULL || p->flag == NULL ||
                  strcmp(o->flag, p->flag) != 0);
        ck_assert(o->var == NULL || p->var == NULL ||
                  strcmp(o->var, p->var) != 0);
        ck_assert(o->short_flag == 0 || o->short_flag != p->short_flag);
    }
    /* The parse stores numbers in 16- or 32-bit fields only. */
    if (o->kind == CONFIG_KIND_UINT || o->kind == CONFIG_KIND_SECONDS ||
        o->kind == CONFIG_KIND_WORD || o->kind == CONFIG_KIND_SWITCH ||
        o->kind == CONFIG_KIND_MODE) {
        ck_assert_msg(o->size == 2 || o->size == 4, "row %d: size %zu", _i,
                      o->size);
        ck_assert_uint_le(o->dest + o->size, sizeof(struct config));
        if (o->kind != CONFIG_KIND_MODE)        /* min is its mode */
            ck_assert_uint_le(o->min, o->max);
        if (o->size == 2)
            ck_assert_uint_le(o->max, 65535);
    }
    if (o->kind == CONFIG_KIND_WORD || o->kind == CONFIG_KIND_SERVERS)
        ck_assert_ptr_nonnull(o->words);
}
END_TEST

/* What a row needs beside it to be accepted: a client certificate its
 * key and the other way round, --vars its variable. */
static const char *partner(const struct config_opt *o)
{
    const char *name = o->var != NULL ? o->var : "";

    if (strstr(name, "_CERT") != NULL)
        return "MEMTUNNEL_KEY_FILE=k";
    if (strstr(name, "_KEY") != NULL)
        return "MEMTUNNEL_CERT_FILE=c";
    return "A=a";
}

/*
 * Every row the table lists is what the parse reads: its variable and its
 * flag each accept a value (the default where there is one), and a flag
 * that takes a value refuses to go without one.
 */
START_TEST(test_opt_accepted)
{
    const struct config_opt *o = &config_opts[_i];
    char flag_eq[600], var_eq[600];
    const char *check[] = { "check", NULL };
    const char *args[] = { "check", flag_eq, NULL };
    const char *bare[] = { "check", o->flag, NULL };
    const char *env[] = { SRV, partner(o), var_eq, NULL };
    int takes_value = o->kind != CONFIG_KIND_MODE &&
                      o->kind != CONFIG_KIND_SWITCH;
    struct config_error err;
    struct config cfg;
    struct cmdline c;

    /* Credentials and the marker are read elsewhere: only listed here. */
    if (o->kind == CONFIG_KIND_SECRET || o->kind == CONFIG_KIND_MARKER)
        return;
    if (o->var != NULL) {
        snprintf(var_eq, sizeof(var_eq), "%s=%s", o->var, some_value(o));
        parse_ok(&cfg, &c, check, env);
        ck_assert_int_eq(cfg.mode, CONFIG_MODE_CHECK);
        config_free(&cfg);
    }
    if (o->flag == NULL)
        return;
    env[2] = NULL;
    snprintf(flag_eq, sizeof(flag_eq), "%s%s%s", o->flag,
             takes_value ? "=" : "", takes_value ? some_value(o) : "");
    parse_ok(&cfg, &c, args, env);
    config_free(&cfg);
    if (!takes_value)
        return;
    build(&c, bare, env);
    ck_assert_int_eq(config_parse(&cfg, c.argc, c.argv, c.envp, &err), -1);
    ck_assert_int_eq(err.status, EXIT_USAGE);
    ck_assert_str_eq(err.name, o->flag);
    ck_assert_ptr_nonnull(strstr(err.msg, "needs a value"));
}
END_TEST

/* What --help prints for a row: heading, then text, values, default. */
static const struct {
    const char *name;       /* flag, or variable of a variable-only row */
    const char *head;
    const char *text;
} described[] = {
    { "--connect-timeout", "--connect-timeout S, MEMTUNNEL_CONNECT_TIMEOUT",
      "bound on TCP connect + TLS handshake per connection; seconds, more "
      "than 0, up to 3600; default: 5" },
    { "--idle-timeout", "--idle-timeout S, MEMTUNNEL_IDLE_TIMEOUT",
      "close connections idle this long, 0 = never; seconds, 0-604800; "
      "default: 0" },
    { "--tls-min", "--tls-min VERSION, MEMTUNNEL_TLS_MIN",
      "lowest TLS version offered; 1.2 or 1.3; default: 1.2" },
    { "--prewarm", "--prewarm N, MEMTUNNEL_PREWARM",
      "verified TLS connections kept ready per upstream; 0-64; default: 1" },
    { "MEMTUNNEL_EXPIRY_WARN_DAYS", "MEMTUNNEL_EXPIRY_WARN_DAYS",
      "certificates expiring within this many days are flagged by check and "
      "logged as at=cert-expiring; 0-3650 days; default: 14" },
    { "MEMTUNNEL_FORWARD_SIGTERM", "MEMTUNNEL_FORWARD_SIGTERM",
      "forward SIGTERM to the command; auto (not on Heroku, where DYNO is "
      "set), yes or no; default: auto" },
    { "MEMTUNNEL_CA", "MEMTUNNEL_CA",
      "the same as inline PEM text (a config var cannot hold a file)" },
    { "--json", "--json", "memtunnel check only: print one JSON document" },
    { "--help", "-h, --help", "this text" },
};

START_TEST(test_opt_describe)
{
    const struct config_opt *o = NULL;
    char buf[1024];

    for (size_t k = 0; k < config_nopts; k++) {
        const struct config_opt *p = &config_opts[k];

        if ((p->flag != NULL && strcmp(p->flag, described[_i].name) == 0) ||
            (p->flag == NULL && strcmp(p->var, described[_i].name) == 0))
            o = p;
    }
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(config_opt_head(o, buf, sizeof(buf)), described[_i].head);
    ck_assert_str_eq(config_opt_describe(o, buf, sizeof(buf)),
                     described[_i].text);
    /* Cut to the buffer, and terminated. */
    ck_assert_uint_eq(strlen(config_opt_describe(o, buf, 10)), 9);
}
END_TEST

/* ---- config_free ------------------------------------------------------- */

START_TEST(test_free)
{
    static const char *const env[] = { "MEMCACHE_SERVERS=a,b", NULL };
    struct config cfg;
    struct cmdline c;

    memset(&cfg, 0, sizeof(cfg));
    config_free(&cfg);
    config_free(NULL);
    parse_ok(&cfg, &c, NULL, env);
    config_free(&cfg);
    ck_assert_ptr_null(cfg.servers);
    ck_assert_ptr_null(cfg.sources);
    ck_assert_uint_eq(cfg.nsources, 0);
    config_free(&cfg);
}
END_TEST

/* ---- credentials (SPEC §3a) ---------------------------------------------- */

/* Each node gets the pair beside its own variable, MEMTUNNEL's over it,
 * and nothing when its own pair is not whole. */
START_TEST(test_creds)
{
    struct config cfg;
    struct cmdline c;
    static const char *const env[] = {
        "MEMTUNNEL_VARS=MEMCACHIER_SERVERS,MEMCACHEDCLOUD_SERVERS,MEMCACHE_SERVERS",
        "MEMCACHIER_SERVERS=a,b", "MEMCACHEDCLOUD_SERVERS=c",
        "MEMCACHE_SERVERS=d",
        "MEMCACHIER_USERNAME=cu", "MEMCACHIER_PASSWORD=cp",
        "MEMCACHEDCLOUD_USERNAME=du", "MEMCACHE_PASSWORD=ep", NULL,
    };

    parse_ok(&cfg, &c, NULL, env);
    ck_assert_uint_eq(cfg.nservers, 4);
    ck_assert_str_eq(cfg.servers[0].creds.user, "cu");
    ck_assert_str_eq(cfg.servers[1].creds.pass, "cp");
    ck_assert_str_eq(cfg.servers[1].creds.user_var, "MEMCACHIER_USERNAME");
    ck_assert_ptr_null(cfg.servers[2].creds.user);
    ck_assert_ptr_null(cfg.servers[2].creds.pass);
    ck_assert_str_eq(cfg.servers[2].creds.pass_var, "MEMCACHEDCLOUD_PASSWORD");
    ck_assert_ptr_null(cfg.servers[3].creds.pass);
    ck_assert_int_eq(cfg.auth, CONFIG_AUTH_NONE);
    config_free(&cfg);

    static const char *const own[] = {
        "MEMCACHIER_SERVERS=a", "MEMCACHIER_USERNAME=cu",
        "MEMCACHIER_PASSWORD=cp", "MEMTUNNEL_USERNAME=mu",
        "MEMTUNNEL_PASSWORD=mp", "MEMTUNNEL_AUTH=MemCachier", NULL,
    };
    parse_ok(&cfg, &c, NULL, own);
    ck_assert_int_eq(cfg.auth, CONFIG_AUTH_MEMCACHIER);
    ck_assert_str_eq(cfg.servers[0].creds.user, "mu");
    ck_assert_str_eq(cfg.servers[0].creds.pass_var, "MEMTUNNEL_PASSWORD");
    config_free(&cfg);

    /* --servers has only MEMTUNNEL's pair. */
    static const char *const args[] = { "--servers", "a", "--auth", "sasl", NULL };
    static const char *const srv[] = {
        "MEMCACHE_USERNAME=eu", "MEMCACHE_PASSWORD=ep",
        "MEMTUNNEL_USERNAME=mu", "MEMTUNNEL_PASSWORD=mp", NULL,
    };
    parse_ok(&cfg, &c, args, srv);
    ck_assert_int_eq(cfg.auth, CONFIG_AUTH_SASL);
    ck_assert_str_eq(cfg.servers[0].creds.user, "mu");
    config_free(&cfg);
}
END_TEST

static TCase *tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);

    tcase_set_timeout(tc, 10);
    suite_add_tcase(s, tc);
    return tc;
}

#define N(table) ((int)(sizeof(table) / sizeof((table)[0])))

Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc;

    tc = tcase(s, "servers");
    tcase_add_loop_test(tc, test_servers_good, 0, N(good_lists));
    tcase_add_loop_test(tc, test_servers_bad, 0, N(bad_lists));
    tcase_add_test(tc, test_servers_long_names);
    tcase_add_test(tc, test_servers_too_long);
    tcase_add_test(tc, test_server_str);

    tc = tcase(s, "errors");
    tcase_add_loop_test(tc, test_bad_cmdline, 0, N(bad_cmdlines));

    tc = tcase(s, "values");
    tcase_add_loop_test(tc, test_good_value, 0, N(good_values));
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_sni);
    tcase_add_loop_test(tc, test_material, 0, N(materials));
    tcase_add_test(tc, test_cert_key_files);

    tc = tcase(s, "modes");
    tcase_add_test(tc, test_wrap);
    tcase_add_loop_test(tc, test_command_start, 0, N(commands));
    tcase_add_loop_test(tc, test_help_version, 0, N(early));
    tcase_add_test(tc, test_check_mode);
    tcase_add_loop_test(tc, test_exec, 0, N(exec_cases));
    tcase_add_test(tc, test_exec_ignores_env);

    tc = tcase(s, "sources");
    tcase_add_loop_test(tc, test_one_source, 0, N(one_source));
    tcase_add_test(tc, test_vars_two);
    tcase_add_test(tc, test_vars_same_node);
    tcase_add_test(tc, test_creds);

    tc = tcase(s, "listen");
    tcase_add_loop_test(tc, test_listen, 0, N(listens));
    tcase_add_loop_test(tc, test_listen_room, 0, N(rooms));
    tcase_add_test(tc, test_listen_default_by_mode);

    tc = tcase(s, "table");
    tcase_add_loop_test(tc, test_opt_row, 0, (int)config_nopts);
    tcase_add_loop_test(tc, test_opt_accepted, 0, (int)config_nopts);
    tcase_add_loop_test(tc, test_opt_describe, 0, N(described));

    tc = tcase(s, "free");
    tcase_add_test(tc, test_free);
    return s;
}
