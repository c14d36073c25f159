/*
 * config_fuzz: config_parse (command line + environment, server lists,
 * variables) and childenv_build on what it accepts.
 *
 * Input: NUL-separated strings.  Those before the first empty string are
 * the arguments after argv[0] ("memtunnel"); those after it are the
 * environment ("NAME=value").  So "--servers\0a:1\0\0MEMCACHE_SERVERS=b"
 * is `memtunnel --servers a:1` with MEMCACHE_SERVERS=b set.
 *
 * Besides memory errors (ASan, UBSan), it checks the contracts of
 * config.h and childenv.h:
 *   - a failure has status 64 or 78 and a non-empty, terminated message;
 *   - a message never quotes the inline PEM variables (MEMTUNNEL_CA,
 *     MEMTUNNEL_CERT, MEMTUNNEL_KEY): with their bodies changed, the same
 *     input fails with the same message;
 *   - a tunnel or wrapper configuration has at least one server, each
 *     with a host and a port, and its sources cover the servers in order;
 *   - the child's environment has MEMTUNNEL_ACTIVE=1, MEMCACHE_SERVERS,
 *     and every tunneled variable set to its own listener list.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "childenv.h"
#include "config.h"
#include "servers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STRINGS 64

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "config_fuzz: contract broken: %s\n", what);
        abort();
    }
}

static int terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

static int secret_var(const char *s)
{
    return strncmp(s, "MEMTUNNEL_CA=", 13) == 0
        || strncmp(s, "MEMTUNNEL_CERT=", 15) == 0
        || strncmp(s, "MEMTUNNEL_KEY=", 14) == 0;
}

/*
 * A copy of envp whose inline PEM values have every lowercase letter and
 * digit rotated (a->b, 9->0): the base64 body changes, the "-----BEGIN
 * ...-----" lines do not.  config_parse only looks for those lines, so
 * with the copy it must fail the same way; a message that differs quotes
 * the body.  Returns 0 when there is no PEM variable to rotate.
 */
static int rotated_env(char *const envp[], char *out[], char **store)
{
    size_t total = 0, n;
    int any = 0;

    for (n = 0; envp[n]; n++)
        total += strlen(envp[n]) + 1;
    *store = malloc(total + 1);
    check(*store != NULL, "malloc");
    char *w = *store;
    for (n = 0; envp[n]; n++) {
        size_t len = strlen(envp[n]);
        memcpy(w, envp[n], len + 1);
        if (secret_var(w)) {
            for (char *c = strchr(w, '=') + 1; *c; c++) {
                if (*c >= 'a' && *c <= 'z') {
                    *c = *c == 'z' ? 'a' : (char)(*c + 1);
                    any = 1;
                } else if (*c >= '0' && *c <= '9') {
                    *c = *c == '9' ? '0' : (char)(*c + 1);
                    any = 1;
                }
            }
        }
        out[n] = w;
        w += len + 1;
    }
    out[n] = NULL;
    return any;
}

/* Whether the failure's message depends on an inline PEM body. */
static int leaks(const struct config_error *err, int argc, char *const argv[],
                 char *const envp[])
{
    char *env2[MAX_STRINGS + 1], *store;
    struct config cfg2;
    struct config_error err2;
    int differs = 0;

    if (rotated_env(envp, env2, &store)) {
        if (config_parse(&cfg2, argc, argv, env2, &err2) == 0)
            config_free(&cfg2);
        else
            differs = strcmp(err->msg, err2.msg) != 0;
    }
    free(store);
    return differs;
}

/* The child's environment for cfg, with made-up listener lists. */
static void check_childenv(const struct config *cfg, char *const envp[])
{
    const char *lists[MAX_STRINGS + 1];
    char *bufs[MAX_STRINGS + 1];
    struct childenv ce;
    size_t k;

    if (cfg->nsources > MAX_STRINGS)
        return;
    for (k = 0; k < cfg->nsources; k++) {
        size_t count = cfg->sources[k].count, len = count * 24 + 1, n = 0;
        bufs[k] = malloc(len);
        check(bufs[k] != NULL, "malloc");
        bufs[k][0] = '\0';
        for (size_t i = 0; i < count; i++)
            n += (size_t)snprintf(bufs[k] + n, len - n, "%s127.0.0.1:%zu",
                                  i ? "," : "", cfg->sources[k].first + i + 1);
        lists[k] = bufs[k];
    }
    if (childenv_build(&ce, envp, cfg->sources, cfg->nsources, lists,
                       cfg->auth != CONFIG_AUTH_NONE) == 0) {
        const char *active = childenv_get(&ce, "MEMTUNNEL_ACTIVE");
        /* With --auth on, memtunnel logs in: no pair reaches the child. */
        if (cfg->auth != CONFIG_AUTH_NONE)
            for (k = 0; k < cfg->nservers; k++)
                check(childenv_get(&ce, cfg->servers[k].creds.pass_var) == NULL,
                      "no credential in the child with --auth");
        check(active != NULL && strcmp(active, "1") == 0,
              "MEMTUNNEL_ACTIVE=1 in the child");
        check(cfg->nsources == 0 || childenv_get(&ce, "MEMCACHE_SERVERS") != NULL,
              "MEMCACHE_SERVERS in the child");
        for (k = 0; k < cfg->nsources; k++) {
            if (!cfg->sources[k].is_var)
                continue;
            const char *v = childenv_get(&ce, cfg->sources[k].name);
            check(v != NULL && strcmp(v, lists[k]) == 0,
                  "a tunneled variable holds its own listeners");
        }
        childenv_free(&ce);
    }
    for (k = 0; k < cfg->nsources; k++)
        free(bufs[k]);
}

static void check_config(const struct config *cfg, char *const envp[])
{
    char name[CONFIG_HOST_MAX + 16];

    if (cfg->mode != CONFIG_MODE_TUNNEL && cfg->mode != CONFIG_MODE_WRAP)
        return;
    check(cfg->nservers >= 1 && cfg->servers != NULL, "at least one server");
    for (size_t i = 0; i < cfg->nservers; i++) {
        const struct config_server *s = &cfg->servers[i];
        check(terminated(s->host, sizeof s->host) && s->host[0] != '\0',
              "a server has a host");
        check(s->port != 0, "a server has a port");
        servers_str(s, name, sizeof name);
        check(terminated(name, sizeof name), "servers_str terminates");
    }
    size_t next = 0;
    for (size_t k = 0; k < cfg->nsources; k++) {
        check(cfg->sources[k].name != NULL, "a source has a name");
        check(cfg->sources[k].first == next && cfg->sources[k].count >= 1,
              "sources cover the servers in order");
        next += cfg->sources[k].count;
    }
    check(cfg->nsources == 0 || next == cfg->nservers,
          "sources cover every server");
    check(cfg->mode != CONFIG_MODE_WRAP
          || (cfg->command != NULL && cfg->command[0] != NULL),
          "wrapper mode has a command");
    check_childenv(cfg, envp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    char *argv[MAX_STRINGS + 2], *envp[MAX_STRINGS + 1];
    int argc = 0, nenv = 0, in_env = 0;
    struct config cfg;
    struct config_error err;

    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    argv[argc++] = (char *)"memtunnel";
    for (char *p = copy; p <= copy + size;) {
        size_t n = strlen(p);
        if (n == 0 && !in_env)
            in_env = 1;
        else if (!in_env && argc < MAX_STRINGS + 1)
            argv[argc++] = p;
        else if (in_env && n > 0 && nenv < MAX_STRINGS)
            envp[nenv++] = p;
        p += n + 1;
    }
    argv[argc] = NULL;
    envp[nenv] = NULL;

    if (config_parse(&cfg, argc, argv, envp, &err) == 0) {
        check_config(&cfg, envp);
        config_free(&cfg);
    } else {
        check(err.status == EXIT_USAGE || err.status == EXIT_CONFIG,
              "a failure exits 64 or 78");
        check(terminated(err.msg, sizeof err.msg) && err.msg[0] != '\0',
              "a failure has a message");
        check(terminated(err.name, sizeof err.name), "the name is terminated");
        check(!leaks(&err, argc, argv, envp),
              "a message does not quote an inline PEM variable");
    }
    free(copy);
    return 0;
}
