/*
 * config_creds: each node's credentials (SPEC §3a), and with --auth on
 * the checks that they can be sent.  A password is only ever sent to its
 * own provider's node, and never to a peer that was not verified.
 */
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "config_int.h"

static const char own_prefix[] = "MEMTUNNEL_";

size_t config_source_pair_prefix(const struct config_source *s)
{
    size_t n = strlen(s->name);
    return s->is_var && n > 8 && strcmp(s->name + n - 8, "_SERVERS") == 0
           ? n - 7 : 0;
}

/* PREFIX USERNAME and PASSWORD: their names always, their values when
 * both are set and not empty. */
static int try_pair(char *const envp[], struct config_creds *c,
                    const char *prefix, size_t plen)
{
    snprintf(c->user_var, sizeof c->user_var, "%.*sUSERNAME", (int)plen, prefix);
    snprintf(c->pass_var, sizeof c->pass_var, "%.*sPASSWORD", (int)plen, prefix);
    c->user = config_env_set(envp, c->user_var);
    c->pass = config_env_set(envp, c->pass_var);
    if (c->user != NULL && c->pass != NULL)
        return 1;
    c->user = c->pass = NULL;
    return 0;
}

/* The variable that node i's address came from, when it has a pair
 * beside it (FOO_SERVERS -> FOO_), as its prefix length; else 0. */
static size_t source_prefix(const struct config *cfg, size_t i,
                            const char **name)
{
    for (size_t k = 0; k < cfg->nsources; k++) {
        const struct config_source *s = &cfg->sources[k];
        if (i < s->first || i >= s->first + s->count)
            continue;
        *name = s->name;
        return config_source_pair_prefix(s);
    }
    return 0;
}

static void find_pair(const struct config *cfg, char *const envp[], size_t i,
                      struct config_creds *c)
{
    const char *name = NULL;
    size_t plen;

    memset(c, 0, sizeof *c);
    if (try_pair(envp, c, own_prefix, sizeof own_prefix - 1))
        return;
    plen = source_prefix(cfg, i, &name);
    if (plen > 0)
        try_pair(envp, c, name, plen);
}

/* With --auth on: node i's pair exists and its mode can send it. */
static int check_pair(const struct config *cfg, size_t i, const char *setting,
                      struct config_error *err)
{
    const struct config_server *s = &cfg->servers[i];
    const struct config_creds *c = &s->creds;
    const char *why;
    char node[CONFIG_HOST_MAX + 10];

    snprintf(node, sizeof node, s->family == CONFIG_IPV6 ? "[%s]:%u" : "%s:%u",
             s->host, (unsigned)s->port);
    if (c->user == NULL) {
        int own = strcmp(c->user_var, "MEMTUNNEL_USERNAME") == 0;
        return config_fail(err, EXIT_CONFIG, setting,
                           "mode %s needs credentials for %s: set %s and %s%s",
                           auth_mode_word(cfg->auth), node, c->user_var,
                           c->pass_var, own ? "" : ", or MEMTUNNEL_USERNAME "
                           "and MEMTUNNEL_PASSWORD");
    }
    if (auth_user_ok(cfg->auth, c->user, &why) < 0)
        return config_fail(err, EXIT_CONFIG, c->user_var, "%s (for %s with "
                           "--auth %s)", why, node, auth_mode_word(cfg->auth));
    return 0;
}

int config_parse_creds(struct config *cfg, const struct config_args *a,
                       char *const envp[], struct config_error *err)
{
    struct config_val v;

    for (size_t i = 0; i < cfg->nservers; i++)
        find_pair(cfg, envp, i, &cfg->servers[i].creds);
    if (cfg->auth == CONFIG_AUTH_NONE)
        return 0;
    config_lookup(a, envp, OPT_AUTH, &v);
    if (cfg->verify == CONFIG_VERIFY_NONE)
        return config_fail(err, EXIT_CONFIG, v.name,
                           "mode %s sends credentials, which go only to a verified "
                           "upstream: not with --verify none",
                           auth_mode_word(cfg->auth));
    for (size_t i = 0; i < cfg->nservers; i++)
        if (check_pair(cfg, i, v.name, err) < 0)
            return -1;
    return 0;
}
