/*
 * config_sources: where the server lists come from (SPEC §3) — --servers,
 * --vars, their variables, or the first provider variable that is set —
 * into cfg->sources and cfg->servers.  Pure, like the rest of config.
 */
#include "config_int.h"
#include "servers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEPARATORS ", \t\r\n\v\f" /* between variable names */

/*
 * Parse the server list of one source and append it to cfg->servers.
 * cfg->sources has room for it.
 */
static int add_source(struct config *cfg, const char *name, int is_var,
                      const char *text, struct config_error *err)
{
    struct config_source *src = &cfg->sources[cfg->nsources];
    struct config_server *list, *grown;
    size_t n;

    if (servers_parse(name, text, cfg->tls_port, &list, &n, err) < 0)
        return -1;
    grown = realloc(cfg->servers, (cfg->nservers + n) * sizeof(*grown));
    if (grown == NULL) {
        free(list);
        return config_fail(err, EXIT_CONFIG, name, "out of memory");
    }
    memcpy(grown + cfg->nservers, list, n * sizeof(*list));
    free(list);
    cfg->servers = grown;
    src->name = name;
    src->is_var = is_var;
    src->first = cfg->nservers;
    src->count = n;
    cfg->nservers += n;
    cfg->nsources++;
    return 0;
}

/* A shell identifier, as a variable name must be. */
static int is_ident(const char *s, size_t n)
{
    if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!(s[i] == '_' || (s[i] >= '0' && s[i] <= '9') ||
              (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
            return 0;
    }
    return 1;
}

/* Whether the word at p (len bytes) appears in text before p. */
static int listed_before(const char *text, const char *p, size_t len)
{
    while (text < p) {
        size_t n;

        text += strspn(text, SEPARATORS);
        n = strcspn(text, SEPARATORS);
        if (text < p && n == len && memcmp(text, p, len) == 0)
            return 1;
        text += n;
    }
    return 0;
}

/*
 * --vars / MEMTUNNEL_VARS: each named variable is a source, in order.  The
 * names are checked first, so that nothing is allocated for a bad list;
 * then they are copied behind the source array, in the same allocation,
 * because config_source.name has to outlive the argv or envp word it was
 * cut from.
 */
static int parse_vars(struct config *cfg, const char *list_name,
                      const char *text, char *const envp[],
                      struct config_error *err)
{
    size_t count = 0, bytes = 0, len;
    char q[CONFIG_QUOTE_MAX], *names;
    const char *p, *value;

    for (p = text;; p += len) {
        p += strspn(p, SEPARATORS);
        if (*p == '\0')
            break;
        len = strcspn(p, SEPARATORS);
        if (!is_ident(p, len))
            return config_fail(err, EXIT_CONFIG, list_name,
                               "%s is not a variable name; expected names "
                               "such as MEMCACHIER_SERVERS separated by "
                               "commas or spaces", config_quote(q, p, len));
        if (listed_before(text, p, len))
            return config_fail(err, EXIT_CONFIG, list_name,
                               "lists %.*s twice", (int)len, p);
        value = config_env(envp, p, len);
        if (value == NULL || *value == '\0') {
            char name[sizeof(err->name)];

            snprintf(name, sizeof(name), "%.*s", (int)len, p);
            return config_fail(err, EXIT_CONFIG, name,
                               "is listed in %s but is not set or is empty",
                               list_name);
        }
        count++;
        bytes += len + 1;
    }
    if (count == 0)
        return config_fail(err, EXIT_CONFIG, list_name,
                           "lists no variable names; expected names such as "
                           "MEMCACHIER_SERVERS separated by commas or spaces");

    cfg->sources = malloc(count * sizeof(*cfg->sources) + bytes);
    if (cfg->sources == NULL)
        return config_fail(err, EXIT_CONFIG, list_name, "out of memory");
    names = (char *)(cfg->sources + count);
    for (p = text;; p += len) {
        p += strspn(p, SEPARATORS);
        if (*p == '\0')
            break;
        len = strcspn(p, SEPARATORS);
        memcpy(names, p, len);
        names[len] = '\0';
        if (add_source(cfg, names, 1, config_env(envp, p, len), err) < 0)
            return -1;
        names += len + 1;
    }
    return 0;
}

/*
 * A flag wins over either variable, but two flags or two variables that
 * say different things are refused rather than one silently ignored.  Then
 * the providers' variables are tried, in the order of the --servers row.
 */
int config_parse_sources(struct config *cfg, const struct config_args *a,
                         char *const envp[], struct config_error *err)
{
    const struct config_opt *so = &config_opts[OPT_SERVERS];
    const struct config_opt *vo = &config_opts[OPT_VARS];
    const char *servers = a->flag[OPT_SERVERS], *vars = a->flag[OPT_VARS];
    const char *sname = so->flag, *vname = vo->flag;
    char list[160];
    int is_var = 0;

    if (servers != NULL && vars != NULL)
        return config_fail(err, EXIT_USAGE, vname, "cannot be used with %s; "
                           "give one of them", so->flag);
    if (servers == NULL && vars == NULL) {
        sname = so->var;
        vname = vo->var;
        servers = config_env_set(envp, sname);
        vars = config_env_set(envp, vname);
        if (servers != NULL && vars != NULL)
            return config_fail(err, EXIT_CONFIG, vname,
                               "set one of %s and %s, not both", sname, vname);
    }
    if (vars != NULL)
        return parse_vars(cfg, vname, vars, envp, err);
    for (size_t i = 0; servers == NULL && so->words[i].word != NULL; i++) {
        sname = so->words[i].word;
        servers = config_env_set(envp, sname);
        is_var = 1;
    }
    if (servers == NULL)
        return config_fail(err, EXIT_CONFIG, so->flag,
                           "no memcached servers given: use %s, %s or %s, "
                           "or set one of %s", so->flag, so->var, vo->var,
                           config_words(so->words, 0, ", ", list,
                                        sizeof(list)));
    cfg->sources = calloc(1, sizeof(*cfg->sources));
    if (cfg->sources == NULL)
        return config_fail(err, EXIT_CONFIG, sname, "out of memory");
    return add_source(cfg, sname, is_var, servers, err);
}
