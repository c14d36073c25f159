/*
 * childenv: the environment the wrapped command runs with (SPEC §3).
 *
 * Every tunneled variable is rewritten to its own local listeners, in the
 * order its servers were listed; MEMCACHE_SERVERS is set to the same list
 * (the first source's, when several variables are tunneled and
 * MEMCACHE_SERVERS is not one of them), so clients that read either work
 * unchanged; MEMTUNNEL_ACTIVE=1 tells a nested memtunnel not to tunnel
 * twice.  memtunnel's own secrets (inline MEMTUNNEL_KEY, MEMTUNNEL_CERT,
 * MEMTUNNEL_CA; MEMTUNNEL_USERNAME, MEMTUNNEL_PASSWORD) are removed; the
 * *_FILE paths stay.  With --auth on, memtunnel logs in for the app, so
 * every credential variable goes too (the providers' pairs and the pair
 * beside each tunneled variable): the app must not log in a second time,
 * and cannot leak the password.  Everything else, the app's credentials
 * with --auth none included, passes as it was.
 * Pure: no I/O.
 */
#ifndef MEMTUNNEL_CHILDENV_H
#define MEMTUNNEL_CHILDENV_H

#include <stddef.h>

#include "config.h"

struct childenv {
    char **envp;        /* NULL-terminated, for posix_spawn / execve */
    char **owned;       /* the strings built here (the rest point into envp) */
    size_t nowned;
};

/*
 * Build the environment from `envp` (not modified, must outlive the
 * result).  lists[k] is the comma-separated listener list of source k of
 * cfg->sources.  drop_creds: --auth is on.  Returns 0, or -1 when out of
 * memory (nothing to free).
 */
int childenv_build(struct childenv *ce, char *const envp[],
                   const struct config_source *sources, size_t nsources,
                   const char *const lists[], int drop_creds);

/* The value of NAME in ce->envp, or NULL. */
const char *childenv_get(const struct childenv *ce, const char *name);

void childenv_free(struct childenv *ce);

#endif
