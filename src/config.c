/*
 * config: command line + environment -> struct config (SPEC §2, §3).
 *
 * Every flag and variable is a row of the option table (config_opts.c),
 * and the parse is driven by it.  First the table's defaults are set.
 * Then scan_args() walks argv once and only learns the shape of the
 * command line: which options were given (their values are kept as
 * strings), whether this is `check`, and where the command starts.  Then
 * the mode is settled, because a disabled or nested memtunnel must exec
 * its command without looking at anything else.  Last, every setting is
 * looked up (flag first, then its variable) and checked, in table order,
 * stopping at the first error.
 *
 * Error messages quote what the user wrote so the mistake is easy to find,
 * but never PEM text and never a server item that may hold credentials.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* memmem */
#endif
#include "config_int.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "servers.h"

const char *config_env(char *const envp[], const char *name, size_t len)
{
    if (envp == NULL)
        return NULL;
    for (size_t i = 0; envp[i] != NULL; i++) {
        if (strncmp(envp[i], name, len) == 0 && envp[i][len] == '=')
            return envp[i] + len + 1;
    }
    return NULL;
}

const char *config_env_set(char *const envp[], const char *name)
{
    const char *v = config_env(envp, name, strlen(name));

    return v != NULL && *v != '\0' ? v : NULL;
}

/* The flag wins over its variable. */
void config_lookup(const struct config_args *a, char *const envp[],
                   enum config_opt_id id, struct config_val *v)
{
    const struct config_opt *o = &config_opts[id];

    if (a->flag[id] != NULL) {
        v->text = a->flag[id];
        v->name = o->flag;
    } else {
        v->text = o->var != NULL ? config_env_set(envp, o->var) : NULL;
        v->name = o->var;
    }
}

/*
 * The message is one line whatever the caller passed in: control
 * characters are replaced, so a value holding a newline cannot split it.
 */
int config_fail(struct config_error *err, int status, const char *name,
                const char *fmt, ...)
{
    va_list ap;

    err->status = status;
    snprintf(err->name, sizeof(err->name), "%s", name != NULL ? name : "");
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    for (char *p = err->msg; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    }
    return -1;
}

/*
 * Long text is cut and unprintable bytes are escaped.  Text that may be
 * secret is not shown at all: PEM, and anything with an '@'
 * (memcached://user:pass@host), since none of our values has one.
 */
const char *config_quote(char *buf, const char *s, size_t n)
{
    size_t o = 0, max = CONFIG_QUOTE_MAX - 8;

    if (memmem(s, n, "-----", 5) != NULL || memchr(s, '@', n) != NULL) {
        snprintf(buf, CONFIG_QUOTE_MAX,
                 "(value not shown: it may hold secrets)");
        return buf;
    }
    buf[o++] = '"';
    for (size_t i = 0; i < n && o < max; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            o += (size_t)snprintf(buf + o, CONFIG_QUOTE_MAX - o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
        if (o >= max && i + 1 < n) {
            memcpy(buf + o, "...", 3);
            o += 3;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* The kinds whose text becomes one number or pointer in a field. */
static int is_scalar(enum config_kind kind)
{
    return kind == CONFIG_KIND_WORD || kind == CONFIG_KIND_UINT ||
           kind == CONFIG_KIND_SECONDS || kind == CONFIG_KIND_NAME;
}

/*
 * Put v into row o's field of cfg.  The numeric fields are 16 or 32 bits
 * wide (ints, enums, uint16_t, uint32_t); the unit tests hold the table to
 * that, and each row's range to what its field can hold.
 */
static void store(struct config *cfg, const struct config_opt *o,
                  unsigned long v)
{
    char *field = (char *)cfg + o->dest;

    if (o->size == sizeof(uint16_t)) {
        uint16_t x = (uint16_t)v;

        memcpy(field, &x, sizeof(x));
    } else if (o->size == sizeof(uint32_t)) {
        uint32_t x = (uint32_t)v;

        memcpy(field, &x, sizeof(x));
    }
}

/* Put a pointer into argv or envp into row o's field (a const char *). */
static void store_text(struct config *cfg, const struct config_opt *o,
                       const char *text)
{
    memcpy((char *)cfg + o->dest, &text, sizeof(text));
}

/*
 * Check text (from `name`) as a value of row o and store it.  Returns 0,
 * or -1 with *err filled in.
 */
static int set(struct config *cfg, const struct config_opt *o,
               const char *text, const char *name, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX], why[200];
    unsigned long v = 0;

    if (config_opt_value(o, text, &v, why, sizeof(why)) < 0)
        return config_fail(err, EXIT_CONFIG, name, "%s %s",
                           config_quote(q, text, strlen(text)), why);
    if (o->kind == CONFIG_KIND_NAME)
        store_text(cfg, o, text);
    else
        store(cfg, o, v);
    return 0;
}

/*
 * Every default of the table, parsed as a user's value would be.  A
 * default that does not parse is a bug in the table, not the user's
 * mistake: EXIT_SOFTWARE.
 */
static int set_defaults(struct config *cfg, struct config_error *err)
{
    for (size_t id = 0; id < CONFIG_NOPTS; id++) {
        const struct config_opt *o = &config_opts[id];
        const char *name = o->flag != NULL ? o->flag : o->var;

        if (o->def == NULL || o->size == 0 || !is_scalar(o->kind))
            continue;
        if (set(cfg, o, o->def, name, err) < 0) {
            err->status = EXIT_SOFTWARE;
            return -1;
        }
    }
    return 0;
}

/* Setting id, when given: its flag, else its variable. */
static int get(struct config *cfg, const struct config_args *a,
               char *const envp[], enum config_opt_id id,
               struct config_error *err)
{
    struct config_val v;

    config_lookup(a, envp, id, &v);
    return v.text != NULL ? set(cfg, &config_opts[id], v.text, v.name, err)
                          : 0;
}

/* "--" or "--word": not "-1", nor "-----BEGIN CERTIFICATE-----". */
static int looks_like_option(const char *arg)
{
    return strncmp(arg, "--", 2) == 0 &&
           (arg[2] == '\0' || (arg[2] >= 'a' && arg[2] <= 'z') ||
            (arg[2] >= 'A' && arg[2] <= 'Z'));
}

/*
 * The row whose flag arg is: "--name" or "--name=..." (len is the length
 * of the name), or a short flag as a whole word ("-h", never "-h=x" nor
 * "-hV").  Returns its id, or -1.
 */
static int find_flag(const char *arg, size_t len)
{
    for (int id = 0; id < CONFIG_NOPTS; id++) {
        const struct config_opt *o = &config_opts[id];

        if (o->short_flag != 0 && arg[0] == '-' && arg[1] == o->short_flag &&
            arg[2] == '\0')
            return id;
        if (o->flag != NULL && strlen(o->flag) == len &&
            strncmp(arg, o->flag, len) == 0)
            return id;
    }
    return -1;
}

/*
 * One option of argv, found as row id, with eq its '=' or NULL.  A MODE
 * option (--help, --version) ends the scan: returns 1.  Returns 0 when
 * taken (*i moves past a separate value), -1 on a usage error.
 */
static int take_option(struct config_args *a, int id, const char *eq,
                       int argc, char *const argv[], int *i,
                       struct config *cfg, struct config_error *err)
{
    const struct config_opt *o = &config_opts[id];

    /* --json belongs to check's output, not to the app's configuration. */
    if (o->check_only && !a->check)
        return config_fail(err, EXIT_USAGE, o->flag,
                           "is an option of memtunnel check only");
    if (o->kind == CONFIG_KIND_MODE || o->kind == CONFIG_KIND_SWITCH) {
        if (eq != NULL)
            return config_fail(err, EXIT_USAGE, o->flag, "takes no value");
        store(cfg, o, o->kind == CONFIG_KIND_MODE ? o->min : 1);
        return o->kind == CONFIG_KIND_MODE;
    }
    if (a->flag[id] != NULL)
        return config_fail(err, EXIT_USAGE, o->flag,
                           "is given more than once");
    /*
     * A following word that looks like an option is taken for one rather
     * than a value: `--servers --listen 1` is a missing value.
     * --flag=VALUE passes any value.
     */
    if (eq != NULL)
        a->flag[id] = eq + 1;
    else if (*i + 1 < argc && !looks_like_option(argv[*i + 1]))
        a->flag[id] = argv[++*i];
    else
        return config_fail(err, EXIT_USAGE, o->flag,
                           "needs a value (%s VALUE or %s=VALUE)", o->flag,
                           o->flag);
    return 0;
}

/*
 * Walk argv: options first, then an optional command.  Only the shape of
 * the command line is checked here (EXIT_USAGE, 64); values are checked
 * later.  Returns 0, 1 for --help/--version with cfg->mode set, or -1.
 */
static int scan_args(struct config_args *a, int argc, char *const argv[],
                     struct config *cfg, struct config_error *err)
{
    int i = 1, r;

    if (argc > 1 && strcmp(argv[1], "check") == 0) {
        a->check = 1;
        i = 2;
    }
    for (; i < argc; i++) {
        const char *arg = argv[i], *eq;
        size_t len;
        int id;

        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        /* "-" alone is no option, as for getopt: the command starts. */
        if (arg[0] != '-' || arg[1] == '\0')
            break;
        eq = strchr(arg, '=');
        len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        id = find_flag(arg, len);
        if (id < 0) {
            char name[sizeof(err->name)];

            snprintf(name, sizeof(name), "%.*s", (int)len, arg);
            return config_fail(err, EXIT_USAGE, name,
                               "unknown option; see memtunnel --help");
        }
        if ((r = take_option(a, id, eq, argc, argv, &i, cfg, err)) != 0)
            return r;
    }
    if (i < argc) {
        if (a->check) {
            char q[CONFIG_QUOTE_MAX];

            return config_fail(err, EXIT_USAGE, "check",
                               "takes options only, not a command (got %s)",
                               config_quote(q, argv[i], strlen(argv[i])));
        }
        a->cmd = i;
    }
    return 0;
}

/*
 * MEMTUNNEL_ENABLED, and with it the mode.  A disabled or nested memtunnel
 * with a command execs it untouched and checks nothing else, so that a bad
 * setting elsewhere cannot keep the app from starting.  Returns 1 when the
 * mode is EXEC (parse is done), 0 to go on, -1 on error.
 */
static int settle_mode(struct config *cfg, const struct config_args *a,
                       char *const argv[], char *const envp[],
                       struct config_error *err)
{
    const char *marker = config_opts[OPT_ACTIVE].var;
    const char *active = config_env(envp, marker, strlen(marker));

    if (a->check) {
        cfg->mode = CONFIG_MODE_CHECK;
    } else if (a->cmd != 0) {
        cfg->mode = CONFIG_MODE_WRAP;
        cfg->command = &argv[a->cmd];
        if (active != NULL && strcmp(active, "1") == 0) {
            cfg->mode = CONFIG_MODE_EXEC;
            return 1;
        }
    } else {
        cfg->mode = CONFIG_MODE_TUNNEL;
    }
    if (get(cfg, a, envp, OPT_ENABLED, err) < 0)
        return -1;
    if (!cfg->enabled && cfg->mode == CONFIG_MODE_WRAP) {
        cfg->mode = CONFIG_MODE_EXEC;
        return 1;
    }
    /* `check` still checks: that is what it is for. */
    if (!cfg->enabled && cfg->mode == CONFIG_MODE_TUNNEL)
        return config_fail(err, EXIT_CONFIG, config_opts[OPT_ENABLED].var,
                           "is false, but tunnel-only mode (no command) "
                           "needs the tunnel enabled");
    return 0;
}

/*
 * Every setting of a plain kind (keyword, number, seconds, name), in table
 * order.  MEMTUNNEL_ENABLED was read by settle_mode(); reading it again
 * gives the same.
 */
static int parse_scalars(struct config *cfg, const struct config_args *a,
                         char *const envp[], struct config_error *err)
{
    for (int id = 0; id < CONFIG_NOPTS; id++) {
        if (is_scalar(config_opts[id].kind) && config_opts[id].size != 0 &&
            get(cfg, a, envp, (enum config_opt_id)id, err) < 0)
            return -1;
    }
    cfg->on_heroku = config_env_set(envp, "DYNO") != NULL;
    return 0;
}

/*
 * One piece of TLS material: a file (flag or *_FILE variable, row file_id)
 * or inline PEM (variable only, row pem_id).  The flag wins over both
 * variables; the two variables together are a conflict, since neither
 * obviously wins.  *source names where it came from.
 */
static int get_material(struct config *cfg, const struct config_args *a,
                        char *const envp[], enum config_opt_id file_id,
                        enum config_opt_id pem_id, const char **source,
                        struct config_error *err)
{
    const struct config_opt *file = &config_opts[file_id];
    const struct config_opt *pem = &config_opts[pem_id];
    const char *inline_pem = config_env_set(envp, pem->var);
    struct config_val v;

    config_lookup(a, envp, file_id, &v);
    if (v.text != NULL && a->flag[file_id] == NULL && inline_pem != NULL)
        return config_fail(err, EXIT_CONFIG, pem->var,
                           "set one of %s and %s, not both", pem->var,
                           file->var);
    if (v.text != NULL) {
        if (*v.text == '\0')
            return config_fail(err, EXIT_CONFIG, v.name,
                               "is empty; expected a file name");
        if (strstr(v.text, "-----BEGIN") != NULL)
            return config_fail(err, EXIT_CONFIG, v.name,
                               "holds PEM text, not a file name; put PEM "
                               "text in %s", pem->var);
        store_text(cfg, file, v.text);
        *source = v.name;
    } else if (inline_pem != NULL) {
        if (strstr(inline_pem, "-----BEGIN ") == NULL)
            return config_fail(err, EXIT_CONFIG, pem->var,
                               "does not contain PEM text; to name a file "
                               "use %s (PEM text has a \"-----BEGIN \" line)",
                               file->var);
        store_text(cfg, pem, inline_pem);
        *source = pem->var;
    }
    return 0;
}

static int parse_tls_material(struct config *cfg, const struct config_args *a,
                              char *const envp[], struct config_error *err)
{
    const struct config_opt *cert = &config_opts[OPT_CERT];
    const struct config_opt *key = &config_opts[OPT_KEY];

    if (get_material(cfg, a, envp, OPT_CA, OPT_CA_PEM, &cfg->ca_source,
                     err) < 0 ||
        get_material(cfg, a, envp, OPT_CERT, OPT_CERT_PEM, &cfg->cert_source,
                     err) < 0 ||
        get_material(cfg, a, envp, OPT_KEY, OPT_KEY_PEM, &cfg->key_source,
                     err) < 0)
        return -1;

    /* A client certificate is useless without its key, and vice versa. */
    if (cfg->cert_source != NULL && cfg->key_source == NULL)
        return config_fail(err, EXIT_CONFIG, cfg->cert_source,
                           "a client certificate needs its key: set %s, %s "
                           "or %s too", key->flag, key->var,
                           config_opts[OPT_KEY_PEM].var);
    if (cfg->key_source != NULL && cfg->cert_source == NULL)
        return config_fail(err, EXIT_CONFIG, cfg->key_source,
                           "a client key needs its certificate: set %s, %s "
                           "or %s too", cert->flag, cert->var,
                           config_opts[OPT_CERT_PEM].var);
    return 0;
}

/*
 * --listen / MEMTUNNEL_LISTEN, or the table's default, whose port becomes
 * 0 (ephemeral) unless in tunnel-only mode: a wrapped app is told its
 * ports, and two of them on one machine must not collide.  Listening is on
 * IP literals only: a name could resolve to several addresses, or to none
 * at the moment the dyno starts.
 */
static int parse_listen(struct config *cfg, const struct config_args *a,
                        char *const envp[], struct config_error *err)
{
    const struct config_opt *o = &config_opts[OPT_LISTEN];
    char q[CONFIG_QUOTE_MAX], why[160];
    struct config_val v;

    config_lookup(a, envp, OPT_LISTEN, &v);
    cfg->listen_explicit = v.text != NULL;
    if (v.text == NULL) {
        v.text = o->def;
        v.name = o->flag;
    }
    if (servers_parse_listen(v.text, cfg->listen_host, &cfg->listen_family,
                             &cfg->listen_port, &cfg->listen_loopback, why,
                             sizeof(why)) < 0)
        return config_fail(err, EXIT_CONFIG, v.name, "%s: %s",
                           config_quote(q, v.text, strlen(v.text)), why);
    if (!cfg->listen_explicit && cfg->mode != CONFIG_MODE_TUNNEL)
        cfg->listen_port = 0;
    return 0;
}

/* Node i listens on listen_port + i: all of those must be ports. */
static int check_listen_room(const struct config *cfg,
                             const struct config_args *a, char *const envp[],
                             struct config_error *err)
{
    struct config_val v;

    if (cfg->listen_port == 0 ||
        (unsigned long)cfg->listen_port + cfg->nservers - 1 <= 65535)
        return 0;
    config_lookup(a, envp, OPT_LISTEN, &v);
    return config_fail(err, EXIT_CONFIG,
                       v.text != NULL ? v.name : config_opts[OPT_LISTEN].flag,
                       "port %u + %zu nodes runs past port 65535; use a "
                       "lower port, or port 0 for ephemeral ports",
                       cfg->listen_port, cfg->nservers);
}

int config_parse(struct config *cfg, int argc, char *const argv[],
                 char *const envp[], struct config_error *err)
{
    struct config_error dummy;
    struct config_args a;
    int r;

    if (err == NULL)
        err = &dummy;
    memset(err, 0, sizeof(*err));
    memset(cfg, 0, sizeof(*cfg));
    memset(&a, 0, sizeof(a));
    if (set_defaults(cfg, err) < 0)
        return -1;

    r = scan_args(&a, argc, argv, cfg, err);
    if (r != 0)
        return r > 0 ? 0 : -1;
    r = settle_mode(cfg, &a, argv, envp, err);
    if (r != 0)
        return r > 0 ? 0 : -1;

    /* Scalars first: --tls-port is needed to read the server lists. */
    if (parse_scalars(cfg, &a, envp, err) < 0 ||
        parse_tls_material(cfg, &a, envp, err) < 0 ||
        config_parse_sources(cfg, &a, envp, err) < 0 ||
        parse_listen(cfg, &a, envp, err) < 0 ||
        check_listen_room(cfg, &a, envp, err) < 0 ||
        config_parse_creds(cfg, &a, envp, err) < 0) {
        config_free(cfg);
        return -1;
    }
    return 0;
}

void config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->servers);
    free(cfg->sources);
    memset(cfg, 0, sizeof(*cfg));
}
