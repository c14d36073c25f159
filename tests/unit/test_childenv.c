/*
 * Unit tests for childenv.c: the wrapped command's environment (SPEC §3).
 *
 * Each case gives an input environment, the sources with their listener
 * lists, and the variables the result must hold.  The checks are the
 * contract, not the layout: every expected NAME=value is there exactly
 * once, nothing else is added, no name appears twice, and every input entry
 * that is not replaced is passed on as the same string, in its order.
 * memtunnel's own secrets are never passed on (test_secrets).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "childenv.h"
#include "suites.h"

#define MAXENV 16
#define MAXSRC 3

#define L1 "127.0.0.1:40001"
#define L2 "127.0.0.1:40001,127.0.0.1:40002"
#define L3 "127.0.0.1:40003,127.0.0.1:40004,127.0.0.1:40005"

struct env_case {
    const char *what;
    const char *env[MAXENV];          /* input, NULL-terminated */
    struct config_source src[MAXSRC];
    const char *lists[MAXSRC];
    size_t nsrc;
    const char *set[MAXENV];          /* NAME=value the result adds or replaces */
};

static const struct env_case cases[] = {
    {
        "--servers: MEMCACHE_SERVERS and MEMTUNNEL_ACTIVE added, the rest kept",
        { "PATH=/usr/bin:/bin", "HOME=/app", "PORT=5000", NULL },
        { { "--servers", 0, 0, 2 } }, { L2 }, 1,
        { "MEMCACHE_SERVERS=" L2, "MEMTUNNEL_ACTIVE=1", NULL },
    },
    {
        /* A flag is not a variable: a provider variable that was not the
         * source stays as it was, MEMCACHE_SERVERS is replaced. */
        "--servers with provider variables present",
        { "MEMCACHIER_SERVERS=mc1.example.com:11211",
          "MEMCACHE_SERVERS=old.example.com:11211", "LANG=C.UTF-8", NULL },
        { { "--servers", 0, 0, 1 } }, { L1 }, 1,
        { "MEMCACHE_SERVERS=" L1, "MEMTUNNEL_ACTIVE=1", NULL },
    },
    {
        "MEMTUNNEL_SERVERS is configuration, not an app variable",
        { "MEMTUNNEL_SERVERS=mc1.example.com,mc2.example.com", "TERM=xterm",
          NULL },
        { { "MEMTUNNEL_SERVERS", 0, 0, 2 } }, { L2 }, 1,
        { "MEMCACHE_SERVERS=" L2, "MEMTUNNEL_ACTIVE=1", NULL },
    },
    {
        "MEMCACHIER_SERVERS: it and MEMCACHE_SERVERS rewritten, credentials kept",
        { "MEMCACHIER_USERNAME=user-42", "PATH=/bin",
          "MEMCACHIER_SERVERS=mc1.ec2.memcachier.com:11211,"
          "mc2.ec2.memcachier.com:11211",
          "MEMCACHIER_PASSWORD=p4ss w=rd;$x", "DYNO=web.1", NULL },
        { { "MEMCACHIER_SERVERS", 1, 0, 2 } }, { L2 }, 1,
        { "MEMCACHIER_SERVERS=" L2, "MEMCACHE_SERVERS=" L2,
          "MEMTUNNEL_ACTIVE=1", NULL },
    },
    {
        "MEMCACHIER_SERVERS with a stale MEMCACHE_SERVERS already set",
        { "MEMCACHE_SERVERS=stale:11211", "MEMCACHIER_SERVERS=mc1:11211",
          "A=1", NULL },
        { { "MEMCACHIER_SERVERS", 1, 0, 1 } }, { L1 }, 1,
        { "MEMCACHIER_SERVERS=" L1, "MEMCACHE_SERVERS=" L1,
          "MEMTUNNEL_ACTIVE=1", NULL },
    },
    {
        "MEMCACHEDCLOUD_SERVERS as the source",
        { "MEMCACHEDCLOUD_USERNAME=u", "MEMCACHEDCLOUD_SERVERS=cloud:1",
          "MEMCACHEDCLOUD_PASSWORD=pw", NULL },
        { { "MEMCACHEDCLOUD_SERVERS", 1, 0, 1 } }, { L1 }, 1,
        { "MEMCACHEDCLOUD_SERVERS=" L1, "MEMCACHE_SERVERS=" L1,
          "MEMTUNNEL_ACTIVE=1", NULL },
    },
    {
        "MEMCACHE_SERVERS itself as the source: one entry, not two",
        { "X=1", "MEMCACHE_SERVERS=a:1,b:2", "Y=2", NULL },
        { { "MEMCACHE_SERVERS", 1, 0, 2 } }, { L2 }, 1,
        { "MEMCACHE_SERVERS=" L2, "MEMTUNNEL_ACTIVE=1", NULL },
    },
    {
        "two variables: each its own list, MEMCACHE_SERVERS the first's",
        { "OTHER_CACHE_SERVERS=o1:11211,o2:11211,o3:11211",
          "MEMCACHIER_SERVERS=m1:11211,m2:11211", "MEMCACHIER_USERNAME=u",
          NULL },
        { { "MEMCACHIER_SERVERS", 1, 0, 2 },
          { "OTHER_CACHE_SERVERS", 1, 2, 3 } }, { L2, L3 }, 2,
        { "MEMCACHIER_SERVERS=" L2, "OTHER_CACHE_SERVERS=" L3,
          "MEMCACHE_SERVERS=" L2, "MEMTUNNEL_ACTIVE=1", NULL },
    },
    {
        "two variables, MEMCACHE_SERVERS the second: it keeps its own list",
        { "SESSION_SERVERS=s1", "MEMCACHE_SERVERS=c1,c2,c3", NULL },
        { { "SESSION_SERVERS", 1, 0, 1 }, { "MEMCACHE_SERVERS", 1, 1, 3 } },
        { L1, L3 }, 2,
        { "SESSION_SERVERS=" L1, "MEMCACHE_SERVERS=" L3,
          "MEMTUNNEL_ACTIVE=1", NULL },
    },
    {
        "three variables",
        { "A_SERVERS=a", "B_SERVERS=b1,b2", "C_SERVERS=c1,c2,c3", NULL },
        { { "A_SERVERS", 1, 0, 1 }, { "B_SERVERS", 1, 1, 2 },
          { "C_SERVERS", 1, 3, 3 } }, { L1, L2, L3 }, 3,
        { "A_SERVERS=" L1, "B_SERVERS=" L2, "C_SERVERS=" L3,
          "MEMCACHE_SERVERS=" L1, "MEMTUNNEL_ACTIVE=1", NULL },
    },
    {
        "an existing MEMTUNNEL_ACTIVE is replaced, not duplicated",
        { "MEMTUNNEL_ACTIVE=0", "MEMCACHIER_SERVERS=m:1", NULL },
        { { "MEMCACHIER_SERVERS", 1, 0, 1 } }, { L1 }, 1,
        { "MEMCACHIER_SERVERS=" L1, "MEMCACHE_SERVERS=" L1,
          "MEMTUNNEL_ACTIVE=1", NULL },
    },
    {
        "an empty MEMTUNNEL_ACTIVE is replaced too",
        { "MEMTUNNEL_ACTIVE=", NULL },
        { { "--servers", 0, 0, 1 } }, { L1 }, 1,
        { "MEMCACHE_SERVERS=" L1, "MEMTUNNEL_ACTIVE=1", NULL },
    },
    {
        /* Names are matched up to the '=', never as prefixes. */
        "variables whose names extend a rewritten name are untouched",
        { "MEMCACHE_SERVERS_BACKUP=b:1", "MEMCACHE_SERVER=s:1",
          "MEMCACHIER_SERVERS_OLD=o:1", "MEMTUNNEL_ACTIVEX=7",
          "XMEMCACHE_SERVERS=x:1", "MEMCACHIER_SERVERS=m:1", NULL },
        { { "MEMCACHIER_SERVERS", 1, 0, 1 } }, { L1 }, 1,
        { "MEMCACHIER_SERVERS=" L1, "MEMCACHE_SERVERS=" L1,
          "MEMTUNNEL_ACTIVE=1", NULL },
    },
    {
        "values that look like assignments are kept byte for byte",
        { "DATABASE_URL=postgres://u:p@h/db?x=MEMCACHE_SERVERS=1",
          "EMPTY=", "SPACES=  a  b  ", "NL=line1\nline2", NULL },
        { { "--servers", 0, 0, 1 } }, { L1 }, 1,
        { "MEMCACHE_SERVERS=" L1, "MEMTUNNEL_ACTIVE=1", NULL },
    },
    {
        "empty environment",
        { NULL },
        { { "--servers", 0, 0, 2 } }, { L2 }, 1,
        { "MEMCACHE_SERVERS=" L2, "MEMTUNNEL_ACTIVE=1", NULL },
    },
    {
        "empty environment, a variable source",
        { NULL },
        { { "MEMCACHIER_SERVERS", 1, 0, 1 } }, { L1 }, 1,
        { "MEMCACHIER_SERVERS=" L1, "MEMCACHE_SERVERS=" L1,
          "MEMTUNNEL_ACTIVE=1", NULL },
    },
};

static size_t name_len(const char *entry)
{
    return strcspn(entry, "=");
}

static int same_name(const char *a, const char *b)
{
    size_t n = name_len(a);
    return n == name_len(b) && strncmp(a, b, n) == 0;
}

/* Is entry's name among the NULL-terminated set? */
static int named_in(const char *entry, const char *const set[])
{
    for (size_t i = 0; set[i] != NULL; i++)
        if (same_name(entry, set[i]))
            return 1;
    return 0;
}

START_TEST(test_build)
{
    const struct env_case *c = &cases[_i];
    struct childenv ce;
    size_t nout = 0, nset = 0, nkept = 0, k = 0;

    ck_assert_int_eq(childenv_build(&ce, (char *const *)c->env, c->src,
                                    c->nsrc, c->lists, 0), 0);
    ck_assert_ptr_nonnull(ce.envp);
    while (ce.envp[nout] != NULL)
        nout++;
    while (c->set[nset] != NULL)
        nset++;

    /* Every expected variable exactly once, with its value. */
    for (size_t i = 0; i < nset; i++) {
        size_t found = 0;
        for (size_t j = 0; j < nout; j++)
            if (same_name(ce.envp[j], c->set[i])) {
                ck_assert_msg(strcmp(ce.envp[j], c->set[i]) == 0,
                              "%s: got %s, want %s", c->what, ce.envp[j],
                              c->set[i]);
                found++;
            }
        ck_assert_msg(found == 1, "%s: %s found %zu times", c->what,
                      c->set[i], found);
    }

    /* No name twice, anywhere. */
    for (size_t i = 0; i < nout; i++)
        for (size_t j = i + 1; j < nout; j++)
            ck_assert_msg(!same_name(ce.envp[i], ce.envp[j]),
                          "%s: duplicate names %s and %s", c->what,
                          ce.envp[i], ce.envp[j]);

    /* The rest of the input passes as the very same strings, in order,
     * and nothing else is added. */
    for (size_t i = 0; c->env[i] != NULL; i++) {
        if (named_in(c->env[i], c->set))
            continue;
        nkept++;
        while (k < nout && ce.envp[k] != c->env[i])
            k++;
        ck_assert_msg(k < nout, "%s: %s is missing or out of order", c->what,
                      c->env[i]);
        k++;
    }
    ck_assert_msg(nout == nset + nkept, "%s: %zu entries, want %zu + %zu",
                  c->what, nout, nset, nkept);

    childenv_free(&ce);
    ck_assert_ptr_null(ce.envp);
    ck_assert_ptr_null(ce.owned);
    ck_assert_uint_eq(ce.nowned, 0);
    childenv_free(&ce);        /* a freed childenv may be freed again */
}
END_TEST

/*
 * memtunnel's own TLS material and credentials are the tunnel's secrets:
 * the app does not need them, and crash reporters and `env` dumps would
 * show them (SPEC §3).  The file paths may stay.  Names are matched whole,
 * as for the rewritten variables, and an empty value goes all the same.
 */
static const struct {
    const char *what;
    const char *env[MAXENV];          /* input */
    const char *gone[MAXENV];         /* names the result must not hold */
} secret_cases[] = {
    {
        "inline PEM and memtunnel's own credentials",
        { "MEMTUNNEL_KEY=-----BEGIN PRIVATE KEY-----\nMIGH\n",
          "MEMTUNNEL_CERT=-----BEGIN CERTIFICATE-----\nMIIB\n",
          "MEMTUNNEL_CA=-----BEGIN CERTIFICATE-----\nMIIC\n",
          "MEMTUNNEL_USERNAME=tunnel-user", "MEMTUNNEL_PASSWORD=tunnel-pw",
          "MEMTUNNEL_KEY_FILE=/app/client.key",
          "MEMTUNNEL_CERT_FILE=/app/client.crt",
          "MEMTUNNEL_CA_FILE=/app/ca.crt", "MEMCACHIER_SERVERS=m:1",
          "MEMCACHIER_USERNAME=u", "MEMCACHIER_PASSWORD=p", "HOME=/app",
          NULL },
        { "MEMTUNNEL_KEY", "MEMTUNNEL_CERT", "MEMTUNNEL_CA",
          "MEMTUNNEL_USERNAME", "MEMTUNNEL_PASSWORD", NULL },
    },
    {
        "names that extend a secret's name stay; empty secrets go",
        { "MEMTUNNEL_KEYS=k", "MEMTUNNEL_CA_BUNDLE=b", "XMEMTUNNEL_KEY=x",
          "MEMTUNNEL_PASSWORD_HINT=h", "MEMTUNNEL_KEY=", "MEMTUNNEL_CA=",
          "MEMCACHIER_SERVERS=m:1", NULL },
        { "MEMTUNNEL_KEY", "MEMTUNNEL_CA", NULL },
    },
};

/*
 * With --auth on, memtunnel logs in for the app: every credential
 * variable goes (the providers' pairs, and the pair beside each tunneled
 * variable, whatever its name); other names that merely start alike stay.
 * Without --auth the app's pairs pass (test_secrets' first case).
 */
START_TEST(test_auth_drops_creds)
{
    const struct config_source src[] = {
        { "MEMCACHIER_SERVERS", 1, 0, 1 }, { "MY_CACHE_SERVERS", 1, 1, 1 },
    };
    const char *lists[] = { L1, L1 };
    static const char *const env[] = {
        "MEMCACHIER_SERVERS=m:1", "MY_CACHE_SERVERS=n:1",
        "MEMCACHIER_USERNAME=u", "MEMCACHIER_PASSWORD=p",
        "MEMCACHEDCLOUD_USERNAME=u", "MEMCACHEDCLOUD_PASSWORD=p",
        "MEMCACHE_USERNAME=u", "MEMCACHE_PASSWORD=p",
        "MY_CACHE_USERNAME=u", "MY_CACHE_PASSWORD=p",
        "MEMTUNNEL_USERNAME=u", "MEMTUNNEL_PASSWORD=p",
        "OTHER_USERNAME=o", "MEMCACHIER_USERNAMES=x", "MEMCACHE_PASSWORDS=y",
        "HOME=/app", NULL,
    };
    static const char *const gone[] = {
        "MEMCACHIER_USERNAME", "MEMCACHIER_PASSWORD",
        "MEMCACHEDCLOUD_USERNAME", "MEMCACHEDCLOUD_PASSWORD",
        "MEMCACHE_USERNAME", "MEMCACHE_PASSWORD", "MY_CACHE_USERNAME",
        "MY_CACHE_PASSWORD", "MEMTUNNEL_USERNAME", "MEMTUNNEL_PASSWORD", NULL,
    };
    static const char *const kept[][2] = {
        { "OTHER_USERNAME", "o" }, { "MEMCACHIER_USERNAMES", "x" },
        { "MEMCACHE_PASSWORDS", "y" }, { "HOME", "/app" },
    };
    struct childenv ce;

    ck_assert_int_eq(childenv_build(&ce, (char *const *)env, src, 2, lists, 1),
                     0);
    for (size_t n = 0; ce.envp[n] != NULL; n++)
        ck_assert_msg(!named_in(ce.envp[n], gone), "%s is passed on with "
                      "--auth", ce.envp[n]);
    for (size_t k = 0; k < sizeof kept / sizeof kept[0]; k++) {
        ck_assert_ptr_nonnull(childenv_get(&ce, kept[k][0]));
        ck_assert_str_eq(childenv_get(&ce, kept[k][0]), kept[k][1]);
    }
    childenv_free(&ce);

    /* Without --auth the app's own pairs pass. */
    ck_assert_int_eq(childenv_build(&ce, (char *const *)env, src, 2, lists, 0),
                     0);
    ck_assert_ptr_nonnull(childenv_get(&ce, "MY_CACHE_PASSWORD"));
    ck_assert_ptr_nonnull(childenv_get(&ce, "MEMCACHEDCLOUD_USERNAME"));
    ck_assert_ptr_null(childenv_get(&ce, "MEMTUNNEL_PASSWORD"));
    childenv_free(&ce);
}
END_TEST

START_TEST(test_secrets)
{
    const struct config_source src = { "MEMCACHIER_SERVERS", 1, 0, 1 };
    const char *lists[] = { L1 };
    const char *const *env = secret_cases[_i].env;
    const char *const *gone = secret_cases[_i].gone;
    const char *what = secret_cases[_i].what;
    struct childenv ce;
    size_t nout = 0, nkept = 0, k = 0;

    ck_assert_int_eq(childenv_build(&ce, (char *const *)env, &src, 1, lists, 0),
                     0);
    while (ce.envp[nout] != NULL)
        nout++;
    for (size_t i = 0; i < nout; i++)
        ck_assert_msg(!named_in(ce.envp[i], gone), "%s: %s is passed on",
                      what, ce.envp[i]);
    /* Everything else passes as before: the same strings, in order. */
    for (size_t i = 0; env[i] != NULL; i++) {
        if (named_in(env[i], gone) || same_name(env[i], "MEMCACHIER_SERVERS="))
            continue;
        nkept++;
        while (k < nout && ce.envp[k] != env[i])
            k++;
        ck_assert_msg(k < nout, "%s: %s is missing or out of order", what,
                      env[i]);
        k++;
    }
    /* Plus the rewritten variable, MEMCACHE_SERVERS and MEMTUNNEL_ACTIVE. */
    ck_assert_uint_eq(nout, nkept + 3);
    ck_assert_str_eq(childenv_get(&ce, "MEMCACHIER_SERVERS"), L1);
    childenv_free(&ce);
}
END_TEST

/* The input array is read, not written: build twice from one array. */
START_TEST(test_input_unchanged)
{
    char a[] = "MEMCACHIER_SERVERS=m1:11211";
    char b[] = "MEMTUNNEL_ACTIVE=0";
    char c[] = "MEMCACHIER_PASSWORD=secret";
    char *env[] = { a, b, c, NULL };
    const struct config_source src = { "MEMCACHIER_SERVERS", 1, 0, 1 };
    const char *lists[] = { L1 };
    struct childenv ce1, ce2;

    ck_assert_int_eq(childenv_build(&ce1, env, &src, 1, lists, 0), 0);
    ck_assert_int_eq(childenv_build(&ce2, env, &src, 1, lists, 0), 0);
    ck_assert_str_eq(a, "MEMCACHIER_SERVERS=m1:11211");
    ck_assert_str_eq(b, "MEMTUNNEL_ACTIVE=0");
    ck_assert_str_eq(c, "MEMCACHIER_PASSWORD=secret");
    ck_assert_ptr_eq(env[0], a);
    ck_assert_ptr_eq(env[3], NULL);
    ck_assert_str_eq(childenv_get(&ce1, "MEMCACHIER_SERVERS"), L1);
    ck_assert_str_eq(childenv_get(&ce2, "MEMTUNNEL_ACTIVE"), "1");
    /* The two results own separate strings. */
    ck_assert_ptr_ne(childenv_get(&ce1, "MEMCACHE_SERVERS"),
                     childenv_get(&ce2, "MEMCACHE_SERVERS"));
    childenv_free(&ce1);
    ck_assert_str_eq(childenv_get(&ce2, "MEMCACHE_SERVERS"), L1);
    childenv_free(&ce2);
}
END_TEST

START_TEST(test_get)
{
    const char *env[] = { "MEMCACHE_SERVERS_X=wrong", "EMPTY=", "LANG=C",
                          NULL };
    const struct config_source src = { "--servers", 0, 0, 2 };
    const char *lists[] = { L2 };
    struct childenv ce;

    ck_assert_int_eq(childenv_build(&ce, (char *const *)env, &src, 1, lists, 0),
                     0);
    ck_assert_str_eq(childenv_get(&ce, "MEMCACHE_SERVERS"), L2);
    ck_assert_str_eq(childenv_get(&ce, "MEMCACHE_SERVERS_X"), "wrong");
    ck_assert_str_eq(childenv_get(&ce, "EMPTY"), "");
    ck_assert_str_eq(childenv_get(&ce, "LANG"), "C");
    ck_assert_ptr_null(childenv_get(&ce, "MEMCACHE"));
    ck_assert_ptr_null(childenv_get(&ce, "LAN"));
    ck_assert_ptr_null(childenv_get(&ce, "NOT_THERE"));
    childenv_free(&ce);
    ck_assert_ptr_null(childenv_get(&ce, "LANG"));
}
END_TEST

/* A long list (many nodes) is copied whole. */
START_TEST(test_long_list)
{
    char list[64 * 22] = "";
    const struct config_source src = { "MEMCACHIER_SERVERS", 1, 0, 64 };
    const char *env[] = { "MEMCACHIER_SERVERS=x", NULL };
    const char *lists[] = { list };
    struct childenv ce;

    for (int i = 0; i < 64; i++) {
        char one[24];
        snprintf(one, sizeof one, "%s127.0.0.1:%d", i ? "," : "", 40000 + i);
        strcat(list, one);
    }
    ck_assert_int_eq(childenv_build(&ce, (char *const *)env, &src, 1, lists, 0),
                     0);
    ck_assert_str_eq(childenv_get(&ce, "MEMCACHIER_SERVERS"), list);
    ck_assert_str_eq(childenv_get(&ce, "MEMCACHE_SERVERS"), list);
    childenv_free(&ce);
}
END_TEST

#define N(table) ((int)(sizeof(table) / sizeof((table)[0])))

Suite *childenv_suite(void)
{
    Suite *s = suite_create("childenv");
    TCase *tc = tcase_create("build");

    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, test_build, 0, N(cases));
    tcase_add_loop_test(tc, test_secrets, 0, N(secret_cases));
    tcase_add_test(tc, test_auth_drops_creds);
    tcase_add_test(tc, test_input_unchanged);
    tcase_add_test(tc, test_get);
    tcase_add_test(tc, test_long_list);
    suite_add_tcase(s, tc);
    return s;
}
