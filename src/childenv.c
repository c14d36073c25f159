/*
 * childenv: the wrapped command's environment.
 */
#include "childenv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACTIVE_VAR "MEMTUNNEL_ACTIVE"
#define DEFAULT_VAR "MEMCACHE_SERVERS"

/*
 * memtunnel's own secrets: inline TLS material and its credentials.  The
 * app has no use for them, and crash reporters and `env` dumps would show
 * them.  The *_FILE paths are not secret and stay.
 */
static const char *const secret_vars[] = {
    "MEMTUNNEL_KEY", "MEMTUNNEL_CERT", "MEMTUNNEL_CA",
    "MEMTUNNEL_USERNAME", "MEMTUNNEL_PASSWORD",
};

/* Does "NAME=value" entry e name `name`? */
static int names(const char *e, const char *name)
{
    size_t n = strlen(name);
    return strncmp(e, name, n) == 0 && e[n] == '=';
}

/* The providers' prefixes: their pairs are credentials wherever the
 * servers came from. */
static const char *const provider_prefixes[] = {
    "MEMCACHIER_", "MEMCACHEDCLOUD_", "MEMCACHE_",
};

/* Is entry e PREFIX followed by USERNAME= or PASSWORD=, for a prefix of
 * plen bytes? */
static int names_pair(const char *e, const char *prefix, size_t plen)
{
    return strncmp(e, prefix, plen) == 0
           && (names(e + plen, "USERNAME") || names(e + plen, "PASSWORD"));
}

/* With --auth on: is entry e a credential variable? */
static int is_credential(const char *e, const struct config_source *sources,
                         size_t nsources)
{
    for (size_t j = 0; j < sizeof provider_prefixes / sizeof *provider_prefixes; j++)
        if (names_pair(e, provider_prefixes[j], strlen(provider_prefixes[j])))
            return 1;
    for (size_t k = 0; k < nsources; k++) {
        size_t n = config_source_pair_prefix(&sources[k]);
        if (n > 0 && names_pair(e, sources[k].name, n))
            return 1;
    }
    return 0;
}

static char *assign(const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s=%s", name, value);
    return s;
}

int childenv_build(struct childenv *ce, char *const envp[],
                   const struct config_source *sources, size_t nsources,
                   const char *const lists[], int drop_creds)
{
    size_t nenv = 0;
    while (envp && envp[nenv])
        nenv++;

    memset(ce, 0, sizeof *ce);
    /* At most: each source's variable, MEMCACHE_SERVERS, MEMTUNNEL_ACTIVE. */
    size_t max_owned = nsources + 2;
    ce->owned = calloc(max_owned, sizeof *ce->owned);
    ce->envp = calloc(nenv + max_owned + 1, sizeof *ce->envp);
    if (ce->owned == NULL || ce->envp == NULL)
        goto fail;

    /* The value MEMCACHE_SERVERS gets: its own source's list if it is a
     * tunneled variable, else the first source's. */
    const char *default_list = nsources ? lists[0] : NULL;
    int default_is_source = 0;
    for (size_t k = 0; k < nsources; k++) {
        if (!sources[k].is_var)
            continue;
        if (strcmp(sources[k].name, DEFAULT_VAR) == 0)
            default_is_source = 1;
        if ((ce->owned[ce->nowned] = assign(sources[k].name, lists[k])) == NULL)
            goto fail;
        ce->nowned++;
    }
    if (default_list && !default_is_source) {
        if ((ce->owned[ce->nowned] = assign(DEFAULT_VAR, default_list)) == NULL)
            goto fail;
        ce->nowned++;
    }
    if ((ce->owned[ce->nowned] = assign(ACTIVE_VAR, "1")) == NULL)
        goto fail;
    ce->nowned++;

    /* Copy every entry that is neither replaced nor secret, in order, then
     * the new ones. */
    size_t n = 0;
    for (size_t i = 0; i < nenv; i++) {
        int replaced = 0;
        for (size_t j = 0; j < ce->nowned && !replaced; j++) {
            size_t len = strcspn(ce->owned[j], "=");
            replaced = strncmp(envp[i], ce->owned[j], len + 1) == 0;
        }
        for (size_t j = 0; j < sizeof secret_vars / sizeof secret_vars[0]
                           && !replaced; j++)
            replaced = names(envp[i], secret_vars[j]);
        if (!replaced && drop_creds)
            replaced = is_credential(envp[i], sources, nsources);
        if (!replaced)
            ce->envp[n++] = envp[i];
    }
    for (size_t j = 0; j < ce->nowned; j++)
        ce->envp[n++] = ce->owned[j];
    ce->envp[n] = NULL;
    return 0;
fail:
    childenv_free(ce);
    return -1;
}

const char *childenv_get(const struct childenv *ce, const char *name)
{
    for (size_t i = 0; ce->envp && ce->envp[i]; i++)
        if (names(ce->envp[i], name))
            return ce->envp[i] + strlen(name) + 1;
    return NULL;
}

void childenv_free(struct childenv *ce)
{
    for (size_t j = 0; j < ce->nowned; j++)
        free(ce->owned[j]);
    free(ce->owned);
    free(ce->envp);
    memset(ce, 0, sizeof *ce);
}
