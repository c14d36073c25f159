/*
 * config: command line + environment -> struct config (SPEC §2, §3).
 *
 * The parse runs in three steps.  scan_args() walks argv once and only
 * learns the shape of the command line: which options were given (their
 * values are kept as strings), whether this is `check`, and where the
 * command starts.  Then the mode is settled, because a disabled or nested
 * memtunnel must exec its command without looking at anything else.  Last,
 * every setting is looked up (flag first, then its variable) and checked,
 * in a fixed order, stopping at the first error.
 *
 * Error messages quote what the user wrote so the mistake is easy to find,
 * but never PEM text and never a server item that may hold credentials.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* memmem */
#endif
#include "config.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "servers.h"

#define QUOTE_MAX 80            /* a quoted value in an error message */
#define SEPARATORS ", \t\r\n\v\f" /* between server items, variable names */

/* Every option that has a flag, a variable, or both. */
enum opt {
    OPT_SERVERS, OPT_VARS, OPT_LISTEN, OPT_CA, OPT_CERT, OPT_KEY,
    OPT_VERIFY, OPT_SNI, OPT_TLS_MIN, OPT_TLS_PORT, OPT_LOG_LEVEL,
    OPT_CONNECT_TIMEOUT, OPT_IDLE_TIMEOUT, OPT_GRACE, OPT_PREWARM,
    OPT_ENABLED, OPT_CA_PEM, OPT_CERT_PEM, OPT_KEY_PEM,
    OPT_FORWARD_SIGTERM, OPT_STATS_INTERVAL, OPT_EXPIRY_WARN_DAYS,
    OPT_BUSY_POLL, OPT_DUMPABLE,
    NOPT
};

static const struct {
    const char *flag;           /* NULL: variable only */
    const char *var;
} opts[NOPT] = {
    [OPT_SERVERS] = { "--servers", "MEMTUNNEL_SERVERS" },
    [OPT_VARS] = { "--vars", "MEMTUNNEL_VARS" },
    [OPT_LISTEN] = { "--listen", "MEMTUNNEL_LISTEN" },
    [OPT_CA] = { "--ca", "MEMTUNNEL_CA_FILE" },
    [OPT_CERT] = { "--cert", "MEMTUNNEL_CERT_FILE" },
    [OPT_KEY] = { "--key", "MEMTUNNEL_KEY_FILE" },
    [OPT_VERIFY] = { "--verify", "MEMTUNNEL_VERIFY" },
    [OPT_SNI] = { "--sni", "MEMTUNNEL_SNI" },
    [OPT_TLS_MIN] = { "--tls-min", "MEMTUNNEL_TLS_MIN" },
    [OPT_TLS_PORT] = { "--tls-port", "MEMTUNNEL_TLS_PORT" },
    [OPT_LOG_LEVEL] = { "--log-level", "MEMTUNNEL_LOG_LEVEL" },
    [OPT_CONNECT_TIMEOUT] =
        { "--connect-timeout", "MEMTUNNEL_CONNECT_TIMEOUT" },
    [OPT_IDLE_TIMEOUT] = { "--idle-timeout", "MEMTUNNEL_IDLE_TIMEOUT" },
    [OPT_GRACE] = { "--grace", "MEMTUNNEL_GRACE" },
    [OPT_PREWARM] = { "--prewarm", "MEMTUNNEL_PREWARM" },
    [OPT_ENABLED] = { NULL, "MEMTUNNEL_ENABLED" },
    [OPT_CA_PEM] = { NULL, "MEMTUNNEL_CA" },
    [OPT_CERT_PEM] = { NULL, "MEMTUNNEL_CERT" },
    [OPT_KEY_PEM] = { NULL, "MEMTUNNEL_KEY" },
    [OPT_FORWARD_SIGTERM] = { NULL, "MEMTUNNEL_FORWARD_SIGTERM" },
    [OPT_STATS_INTERVAL] = { NULL, "MEMTUNNEL_STATS_INTERVAL" },
    [OPT_EXPIRY_WARN_DAYS] = { NULL, "MEMTUNNEL_EXPIRY_WARN_DAYS" },
    [OPT_BUSY_POLL] = { "--busy-poll", "MEMTUNNEL_BUSY_POLL" },
    [OPT_DUMPABLE] = { NULL, "MEMTUNNEL_DUMPABLE" },
};

/* What scan_args() learnt from argv. */
struct args {
    const char *flag[NOPT];     /* value of each flag given, else NULL */
    int check;                  /* argv[1] is "check" */
    int cmd;                    /* index of the command in argv, 0 if none */
};

/* One looked-up setting: its text and the flag or variable it came from. */
struct val {
    const char *text;           /* NULL when neither is set */
    const char *name;
};

/* The value of variable `name` (len bytes) in envp, or NULL. */
static const char *env_get(char *const envp[], const char *name, size_t len)
{
    if (envp == NULL)
        return NULL;
    for (size_t i = 0; envp[i] != NULL; i++) {
        if (strncmp(envp[i], name, len) == 0 && envp[i][len] == '=')
            return envp[i] + len + 1;
    }
    return NULL;
}

/* Like env_get() but an empty value counts as unset, as SPEC §3 says. */
static const char *env_set(char *const envp[], const char *name)
{
    const char *v = env_get(envp, name, strlen(name));

    return v != NULL && *v != '\0' ? v : NULL;
}

/* The flag wins over its variable. */
static void lookup(const struct args *a, char *const envp[], enum opt id,
                   struct val *v)
{
    if (a->flag[id] != NULL) {
        v->text = a->flag[id];
        v->name = opts[id].flag;
    } else {
        v->text = env_set(envp, opts[id].var);
        v->name = opts[id].var;
    }
}

/*
 * Fill *err and return -1.  The message is one line whatever the caller
 * passed in: control characters are replaced, so a value holding a newline
 * cannot split it.
 */
__attribute__((format(printf, 4, 5)))
static int fail(struct config_error *err, int status, const char *name,
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
 * Put n bytes of s in double quotes into buf (QUOTE_MAX bytes), for an
 * error message.  Long text is cut and unprintable bytes are escaped.
 * Text that may be secret is not shown at all: PEM, and anything with an
 * '@' (memcached://user:pass@host), since none of our values has one.
 */
static const char *quote(char *buf, const char *s, size_t n)
{
    size_t o = 0, max = QUOTE_MAX - 8;

    if (memmem(s, n, "-----", 5) != NULL || memchr(s, '@', n) != NULL) {
        snprintf(buf, QUOTE_MAX, "(value not shown: it may hold secrets)");
        return buf;
    }
    buf[o++] = '"';
    for (size_t i = 0; i < n && o < max; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            o += (size_t)snprintf(buf + o, QUOTE_MAX - o, "\\x%02x", c);
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

/*
 * Strict unsigned decimal: digits only, no sign, no space, not empty.
 * Returns 0 with *out set, -1 if s is not a number, -2 if it exceeds max.
 */
static int parse_uint(const char *s, size_t n, unsigned long max,
                unsigned long *out)
{
    unsigned long v = 0;

    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
    }
    /* Digits were checked first, so that "99999x" is "not a number". */
    for (size_t i = 0; i < n; i++) {
        unsigned long d = (unsigned long)(s[i] - '0');

        if (d > max || v > (max - d) / 10)
            return -2;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/*
 * Seconds with up to three decimals ("5", "0.5", "2.25") into milliseconds.
 * Returns 0, -1 if s is not such a number, -2 if it exceeds max_ms.
 */
static int parse_ms(const char *s, unsigned long max_ms, unsigned long *ms)
{
    const char *dot = strchr(s, '.');
    size_t whole = dot != NULL ? (size_t)(dot - s) : strlen(s);
    unsigned long sec, frac = 0;
    int r;

    /* Bounded so that sec * 1000 + frac cannot overflow. */
    r = parse_uint(s, whole, ~0UL / 1000 - 1, &sec);
    if (r == -1)
        return -1;
    if (dot != NULL) {
        size_t nf = strlen(dot + 1);

        if (nf == 0 || nf > 3 || parse_uint(dot + 1, nf, 999, &frac) != 0)
            return -1;
        for (; nf < 3; nf++)
            frac *= 10;
    }
    if (r == -2 || sec * 1000 + frac > max_ms)
        return -2;
    *ms = sec * 1000 + frac;
    return 0;
}

/* "--" or "--word": not "-1", nor "-----BEGIN CERTIFICATE-----". */
static int looks_like_option(const char *arg)
{
    return strncmp(arg, "--", 2) == 0 &&
           (arg[2] == '\0' || (arg[2] >= 'a' && arg[2] <= 'z') ||
            (arg[2] >= 'A' && arg[2] <= 'Z'));
}

/*
 * Walk argv: options first, then an optional command.  Only the shape of
 * the command line is checked here (EXIT_USAGE, 64); values are checked
 * later.  Returns 0, 1 for --help/--version with cfg->mode set, or -1.
 */
static int scan_args(struct args *a, int argc, char *const argv[],
                     struct config *cfg, struct config_error *err)
{
    int i = 1;

    if (argc > 1 && strcmp(argv[1], "check") == 0) {
        a->check = 1;
        i = 2;
    }
    for (; i < argc; i++) {
        const char *arg = argv[i], *eq, *value;
        size_t len;
        int id;

        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            cfg->mode = CONFIG_MODE_HELP;
            return 1;
        }
        if (strcmp(arg, "-V") == 0 || strcmp(arg, "--version") == 0) {
            cfg->mode = CONFIG_MODE_VERSION;
            return 1;
        }
        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        /* A switch of `check` alone, with no variable: output format is
         * the caller's business, not the app's configuration. */
        if (strncmp(arg, "--json", 6) == 0 &&
            (arg[6] == '\0' || arg[6] == '=')) {
            if (!a->check)
                return fail(err, EXIT_USAGE, "--json",
                            "is an option of memtunnel check only");
            if (arg[6] == '=')
                return fail(err, EXIT_USAGE, "--json", "takes no value");
            cfg->json = 1;
            continue;
        }
        /* "-" alone is no option, as for getopt: the command starts. */
        if (arg[0] != '-' || arg[1] == '\0')
            break;

        eq = strchr(arg, '=');
        len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        for (id = 0; id < NOPT; id++) {
            if (opts[id].flag != NULL && strlen(opts[id].flag) == len &&
                strncmp(arg, opts[id].flag, len) == 0)
                break;
        }
        if (id == NOPT) {
            char name[sizeof(err->name)];

            snprintf(name, sizeof(name), "%.*s", (int)len, arg);
            if (strncmp(arg, "--help=", 7) == 0 ||
                strncmp(arg, "--version=", 10) == 0)
                return fail(err, EXIT_USAGE, name,
                            "takes no value");
            return fail(err, EXIT_USAGE, name,
                        "unknown option; see memtunnel --help");
        }
        if (a->flag[id] != NULL)
            return fail(err, EXIT_USAGE, opts[id].flag,
                        "is given more than once");
        /*
         * A following word that looks like an option is taken for one
         * rather than a value: `--servers --listen 1` is a missing value.
         * --flag=VALUE passes any value.
         */
        if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc && !looks_like_option(argv[i + 1])) {
            value = argv[++i];
        } else {
            return fail(err, EXIT_USAGE, opts[id].flag,
                        "needs a value (%s VALUE or %s=VALUE)",
                        opts[id].flag, opts[id].flag);
        }
        a->flag[id] = value;
    }
    if (i < argc) {
        if (a->check) {
            char q[QUOTE_MAX];

            return fail(err, EXIT_USAGE, "check",
                        "takes options only, not a command (got %s)",
                        quote(q, argv[i], strlen(argv[i])));
        }
        a->cmd = i;
    }
    return 0;
}

/* A keyword and the value it stands for. */
struct word {
    const char *word;
    int value;
};

/* MEMTUNNEL_ENABLED, MEMTUNNEL_DUMPABLE: the usual spellings of a boolean. */
static const struct word bool_words[] = {
    { "true", 1 }, { "1", 1 }, { "yes", 1 }, { "on", 1 },
    { "false", 0 }, { "0", 0 }, { "no", 0 }, { "off", 0 }, { NULL, 0 }
};

/* MEMTUNNEL_FORWARD_SIGTERM: auto, yes, no, and boolean spellings too. */
static const struct word switch_words[] = {
    { "auto", CONFIG_AUTO }, { "yes", CONFIG_YES }, { "no", CONFIG_NO },
    { "true", CONFIG_YES }, { "1", CONFIG_YES }, { "on", CONFIG_YES },
    { "false", CONFIG_NO }, { "0", CONFIG_NO }, { "off", CONFIG_NO },
    { NULL, 0 }
};

/*
 * Look up setting `id` and match it against words (case-insensitively).
 * Returns 1 with *out set, 0 if the setting is absent, -1 on a bad value.
 */
static int get_word(const struct args *a, char *const envp[], enum opt id,
                    const struct word *words, const char *expected, int *out,
                    struct config_error *err)
{
    char q[QUOTE_MAX];
    struct val v;

    lookup(a, envp, id, &v);
    if (v.text == NULL)
        return 0;
    for (size_t i = 0; words[i].word != NULL; i++) {
        if (strcasecmp(v.text, words[i].word) == 0) {
            *out = words[i].value;
            return 1;
        }
    }
    return fail(err, EXIT_CONFIG, v.name, "%s is not valid; expected %s",
                quote(q, v.text, strlen(v.text)), expected);
}

/* A whole number in min..max; returns like get_word(). */
static int get_uint(const struct args *a, char *const envp[], enum opt id,
                    unsigned long min, unsigned long max, unsigned long *out,
                    struct config_error *err)
{
    char q[QUOTE_MAX];
    struct val v;
    int r;

    lookup(a, envp, id, &v);
    if (v.text == NULL)
        return 0;
    r = parse_uint(v.text, strlen(v.text), max, out);
    if (r == -1)
        return fail(err, EXIT_CONFIG, v.name,
                    "%s is not a whole number; expected %lu-%lu",
                    quote(q, v.text, strlen(v.text)), min, max);
    if (r == -2 || *out < min)
        return fail(err, EXIT_CONFIG, v.name,
                    "%s is out of range %lu-%lu",
                    quote(q, v.text, strlen(v.text)), min, max);
    return 1;
}

/* Seconds, decimals allowed, in min_ms..max_ms; returns like get_word(). */
static int get_ms(const struct args *a, char *const envp[], enum opt id,
                  unsigned long min_ms, unsigned long max_ms, uint32_t *out,
                  struct config_error *err)
{
    char q[QUOTE_MAX];
    unsigned long ms;
    struct val v;
    int r;

    lookup(a, envp, id, &v);
    if (v.text == NULL)
        return 0;
    quote(q, v.text, strlen(v.text));
    r = parse_ms(v.text, max_ms, &ms);
    if (r == -1)
        return fail(err, EXIT_CONFIG, v.name,
                    "%s is not a number of seconds; expected e.g. 5 or "
                    "0.5 (at most 3 decimals), up to %lu", q,
                    max_ms / 1000);
    if (r == -2 || ms < min_ms)
        return fail(err, EXIT_CONFIG, v.name,
                    "%s seconds is out of range; expected %s%lu", q,
                    min_ms > 0 ? "more than 0, up to " : "0-",
                    max_ms / 1000);
    *out = (uint32_t)ms;
    return 1;
}

/*
 * MEMTUNNEL_ENABLED, and with it the mode.  A disabled or nested memtunnel
 * with a command execs it untouched and checks nothing else, so that a bad
 * setting elsewhere cannot keep the app from starting.  Returns 1 when the
 * mode is EXEC (parse is done), 0 to go on, -1 on error.
 */
static int settle_mode(struct config *cfg, const struct args *a,
                       char *const argv[], char *const envp[],
                       struct config_error *err)
{
    const char *active = env_get(envp, "MEMTUNNEL_ACTIVE", 16);
    int enabled = 1;

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
    if (get_word(a, envp, OPT_ENABLED, bool_words,
                 "true, 1, yes, on, false, 0, no or off", &enabled, err) < 0)
        return -1;
    if (!enabled && cfg->mode == CONFIG_MODE_WRAP) {
        cfg->mode = CONFIG_MODE_EXEC;
        return 1;
    }
    /* `check` still checks: that is what it is for. */
    if (!enabled && cfg->mode == CONFIG_MODE_TUNNEL)
        return fail(err, EXIT_CONFIG, opts[OPT_ENABLED].var,
                    "is false, but tunnel-only mode (no command) needs "
                    "the tunnel enabled");
    return 0;
}

/*
 * SNI carries a DNS name only (RFC 6066 §3), never an IP address.  The
 * value is used as given, so it may not end with a dot either.
 */
static const char *check_sni(const char *s)
{
    unsigned char addr[sizeof(struct in6_addr)];
    size_t n = strlen(s);

    if (inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1)
        return "is an IP address; SNI carries host names only";
    if (n > 0 && s[n - 1] == '.')
        return "ends with '.'; give the name without the trailing dot";
    return servers_check_name(s, n);
}

static const struct word verify_words[] = {
    { "full", CONFIG_VERIFY_FULL }, { "chain", CONFIG_VERIFY_CHAIN },
    { "none", CONFIG_VERIFY_NONE }, { NULL, 0 }
};
static const struct word tls_min_words[] = {
    { "1.2", 12 }, { "1.3", 13 }, { NULL, 0 }
};
static const struct word level_words[] = {
    { "error", CONFIG_LOG_ERROR }, { "warn", CONFIG_LOG_WARN },
    { "info", CONFIG_LOG_INFO }, { "debug", CONFIG_LOG_DEBUG }, { NULL, 0 }
};

/* Every plain setting: keywords, numbers, the SNI name. */
static int parse_scalars(struct config *cfg, const struct args *a,
                         char *const envp[], struct config_error *err)
{
    unsigned long u;
    int w, r;
    struct val v;

    if ((r = get_word(a, envp, OPT_VERIFY, verify_words,
                      "full, chain or none", &w, err)) < 0)
        return -1;
    if (r > 0)
        cfg->verify = (enum config_verify)w;

    lookup(a, envp, OPT_SNI, &v);
    if (v.text != NULL) {
        char q[QUOTE_MAX];
        const char *why = check_sni(v.text);

        if (why != NULL)
            return fail(err, EXIT_CONFIG, v.name, "%s %s",
                        quote(q, v.text, strlen(v.text)), why);
        cfg->sni = v.text;
    }

    if ((r = get_word(a, envp, OPT_TLS_MIN, tls_min_words, "1.2 or 1.3",
                      &w, err)) < 0)
        return -1;
    if (r > 0)
        cfg->tls_min = w;
    if ((r = get_uint(a, envp, OPT_TLS_PORT, 1, 65535, &u, err)) < 0)
        return -1;
    if (r > 0)
        cfg->tls_port = (uint16_t)u;
    if ((r = get_word(a, envp, OPT_LOG_LEVEL, level_words,
                      "error, warn, info or debug", &w, err)) < 0)
        return -1;
    if (r > 0)
        cfg->log_level = (enum config_log_level)w;

    if (get_ms(a, envp, OPT_CONNECT_TIMEOUT, 1, 3600000,
               &cfg->connect_timeout_ms, err) < 0 ||
        get_ms(a, envp, OPT_IDLE_TIMEOUT, 0, 604800000,
               &cfg->idle_timeout_ms, err) < 0 ||
        get_ms(a, envp, OPT_GRACE, 0, 3600000, &cfg->grace_ms, err) < 0)
        return -1;

    if ((r = get_word(a, envp, OPT_FORWARD_SIGTERM, switch_words,
                      "auto, yes or no", &w, err)) < 0)
        return -1;
    if (r > 0)
        cfg->forward_sigterm = (enum config_switch)w;
    if ((r = get_word(a, envp, OPT_DUMPABLE, bool_words,
                      "true, 1, yes, on, false, 0, no or off", &w, err)) < 0)
        return -1;
    if (r > 0)
        cfg->dumpable = w;

    if ((r = get_uint(a, envp, OPT_PREWARM, 0, 64, &u, err)) < 0)
        return -1;
    if (r > 0)
        cfg->prewarm = (unsigned)u;
    if ((r = get_uint(a, envp, OPT_BUSY_POLL, 0, 10000, &u, err)) < 0)
        return -1;
    if (r > 0)
        cfg->busy_poll_us = (unsigned)u;
    if ((r = get_uint(a, envp, OPT_STATS_INTERVAL, 0, 86400, &u, err)) < 0)
        return -1;
    if (r > 0)
        cfg->stats_interval = (unsigned)u;
    if ((r = get_uint(a, envp, OPT_EXPIRY_WARN_DAYS, 0, 3650, &u, err)) < 0)
        return -1;
    if (r > 0)
        cfg->expiry_warn_days = (unsigned)u;

    cfg->on_heroku = env_set(envp, "DYNO") != NULL;
    return 0;
}

/*
 * One piece of TLS material: a file (flag or *_FILE variable) or inline
 * PEM (variable only).  The flag wins over both variables; the two
 * variables together are a conflict, since neither obviously wins.
 */
static int get_material(const struct args *a, char *const envp[],
                        enum opt file_id, enum opt pem_id, const char **file,
                        const char **pem, const char **source,
                        struct config_error *err)
{
    const char *pem_var = opts[pem_id].var;
    const char *inline_pem = env_set(envp, pem_var);
    struct val v;

    lookup(a, envp, file_id, &v);
    if (v.text != NULL && a->flag[file_id] == NULL && inline_pem != NULL)
        return fail(err, EXIT_CONFIG, pem_var,
                    "set one of %s and %s, not both", pem_var,
                    opts[file_id].var);
    if (v.text != NULL) {
        if (*v.text == '\0')
            return fail(err, EXIT_CONFIG, v.name,
                        "is empty; expected a file name");
        if (strstr(v.text, "-----BEGIN") != NULL)
            return fail(err, EXIT_CONFIG, v.name,
                        "holds PEM text, not a file name; put PEM "
                        "text in %s", pem_var);
        *file = v.text;
        *source = v.name;
    } else if (inline_pem != NULL) {
        if (strstr(inline_pem, "-----BEGIN ") == NULL)
            return fail(err, EXIT_CONFIG, pem_var,
                        "does not contain PEM text; to name a file use %s "
                        "(PEM text has a \"-----BEGIN \" line)",
                        opts[file_id].var);
        *pem = inline_pem;
        *source = pem_var;
    }
    return 0;
}

static int parse_tls_material(struct config *cfg, const struct args *a,
                              char *const envp[], struct config_error *err)
{
    int has_cert, has_key;

    if (get_material(a, envp, OPT_CA, OPT_CA_PEM, &cfg->ca_file,
                     &cfg->ca_pem, &cfg->ca_source, err) < 0 ||
        get_material(a, envp, OPT_CERT, OPT_CERT_PEM, &cfg->cert_file,
                     &cfg->cert_pem, &cfg->cert_source, err) < 0 ||
        get_material(a, envp, OPT_KEY, OPT_KEY_PEM, &cfg->key_file,
                     &cfg->key_pem, &cfg->key_source, err) < 0)
        return -1;

    /* A client certificate is useless without its key, and vice versa. */
    has_cert = cfg->cert_source != NULL;
    has_key = cfg->key_source != NULL;
    if (has_cert && !has_key)
        return fail(err, EXIT_CONFIG, cfg->cert_source,
                    "a client certificate needs its key: set --key, "
                    "MEMTUNNEL_KEY_FILE or MEMTUNNEL_KEY too");
    if (has_key && !has_cert)
        return fail(err, EXIT_CONFIG, cfg->key_source,
                    "a client key needs its certificate: set --cert, "
                    "MEMTUNNEL_CERT_FILE or MEMTUNNEL_CERT too");
    return 0;
}

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

    if (config_parse_servers(name, text, cfg->tls_port, &list, &n, err) < 0)
        return -1;
    grown = realloc(cfg->servers, (cfg->nservers + n) * sizeof(*grown));
    if (grown == NULL) {
        free(list);
        return fail(err, EXIT_CONFIG, name, "out of memory");
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
    char q[QUOTE_MAX], *names;
    const char *p, *value;

    for (p = text;; p += len) {
        p += strspn(p, SEPARATORS);
        if (*p == '\0')
            break;
        len = strcspn(p, SEPARATORS);
        if (!is_ident(p, len))
            return fail(err, EXIT_CONFIG, list_name,
                        "%s is not a variable name; expected names such as "
                        "MEMCACHIER_SERVERS separated by commas or spaces",
                        quote(q, p, len));
        if (listed_before(text, p, len))
            return fail(err, EXIT_CONFIG, list_name,
                        "lists %.*s twice", (int)len, p);
        value = env_get(envp, p, len);
        if (value == NULL || *value == '\0') {
            char name[sizeof(err->name)];

            snprintf(name, sizeof(name), "%.*s", (int)len, p);
            return fail(err, EXIT_CONFIG, name,
                        "is listed in %s but is not set or is empty",
                        list_name);
        }
        count++;
        bytes += len + 1;
    }
    if (count == 0)
        return fail(err, EXIT_CONFIG, list_name,
                    "lists no variable names; expected names such as "
                    "MEMCACHIER_SERVERS separated by commas or spaces");

    cfg->sources = malloc(count * sizeof(*cfg->sources) + bytes);
    if (cfg->sources == NULL)
        return fail(err, EXIT_CONFIG, list_name, "out of memory");
    names = (char *)(cfg->sources + count);
    for (p = text;; p += len) {
        p += strspn(p, SEPARATORS);
        if (*p == '\0')
            break;
        len = strcspn(p, SEPARATORS);
        memcpy(names, p, len);
        names[len] = '\0';
        if (add_source(cfg, names, 1, env_get(envp, p, len), err) < 0)
            return -1;
        names += len + 1;
    }
    return 0;
}

/* Where a plain server list comes from when nothing says otherwise. */
static const char *const default_vars[] = {
    "MEMCACHIER_SERVERS", "MEMCACHEDCLOUD_SERVERS", "MEMCACHE_SERVERS",
};

/*
 * The sources (SPEC §3): --servers, else --vars, else MEMTUNNEL_SERVERS or
 * MEMTUNNEL_VARS, else the first of the providers' variables.  A flag wins
 * over either variable, but two flags or two variables that say different
 * things are refused rather than one silently ignored.
 */
static int parse_sources(struct config *cfg, const struct args *a,
                         char *const envp[], struct config_error *err)
{
    const char *servers = a->flag[OPT_SERVERS], *vars = a->flag[OPT_VARS];
    const char *sname = opts[OPT_SERVERS].flag, *vname = opts[OPT_VARS].flag;
    int is_var = 0;

    if (servers != NULL && vars != NULL)
        return fail(err, EXIT_USAGE, vname,
                    "cannot be used with --servers; give one of them");
    if (servers == NULL && vars == NULL) {
        sname = opts[OPT_SERVERS].var;
        vname = opts[OPT_VARS].var;
        servers = env_set(envp, sname);
        vars = env_set(envp, vname);
        if (servers != NULL && vars != NULL)
            return fail(err, EXIT_CONFIG, vname,
                        "set one of %s and %s, not both", sname, vname);
    }
    if (vars != NULL)
        return parse_vars(cfg, vname, vars, envp, err);
    for (size_t i = 0; servers == NULL && i < 3; i++) {
        servers = env_set(envp, default_vars[i]);
        sname = default_vars[i];
        is_var = 1;
    }
    if (servers == NULL)
        return fail(err, EXIT_CONFIG, opts[OPT_SERVERS].flag,
                    "no memcached servers given: use --servers, "
                    "MEMTUNNEL_SERVERS or MEMTUNNEL_VARS, or set one of "
                    "MEMCACHIER_SERVERS, MEMCACHEDCLOUD_SERVERS, "
                    "MEMCACHE_SERVERS");
    cfg->sources = calloc(1, sizeof(*cfg->sources));
    if (cfg->sources == NULL)
        return fail(err, EXIT_CONFIG, sname, "out of memory");
    return add_source(cfg, sname, is_var, servers, err);
}

/*
 * --listen / MEMTUNNEL_LISTEN, or the mode's default.  Listening is on IP
 * literals only: a name could resolve to several addresses, or to none at
 * the moment the dyno starts.
 */
static int parse_listen(struct config *cfg, const struct args *a,
                        char *const envp[], struct config_error *err)
{
    char q[QUOTE_MAX], why[160];
    struct val v;

    lookup(a, envp, OPT_LISTEN, &v);
    if (v.text == NULL) {
        strcpy(cfg->listen_host, "127.0.0.1");
        cfg->listen_family = CONFIG_IPV4;
        cfg->listen_port = cfg->mode == CONFIG_MODE_TUNNEL ?
                           CONFIG_DEFAULT_PORT : 0;
        cfg->listen_loopback = 1;
        return 0;
    }
    if (servers_parse_listen(v.text, cfg->listen_host, &cfg->listen_family,
                             &cfg->listen_port, &cfg->listen_loopback, why,
                             sizeof(why)) < 0)
        return fail(err, EXIT_CONFIG, v.name, "%s: %s",
                    quote(q, v.text, strlen(v.text)), why);
    cfg->listen_explicit = 1;
    return 0;
}

/* Node i listens on listen_port + i: all of those must be ports. */
static int check_listen_room(const struct config *cfg, const struct args *a,
                             char *const envp[], struct config_error *err)
{
    struct val v;

    if (cfg->listen_port == 0 ||
        (unsigned long)cfg->listen_port + cfg->nservers - 1 <= 65535)
        return 0;
    lookup(a, envp, OPT_LISTEN, &v);
    return fail(err, EXIT_CONFIG,
                v.text != NULL ? v.name : opts[OPT_LISTEN].flag,
                "port %u + %zu nodes runs past port 65535; use a lower "
                "port, or port 0 for ephemeral ports",
                cfg->listen_port, cfg->nservers);
}

int config_parse(struct config *cfg, int argc, char *const argv[],
                 char *const envp[], struct config_error *err)
{
    struct config_error dummy;
    struct args a;
    int r;

    if (err == NULL)
        err = &dummy;
    memset(err, 0, sizeof(*err));
    memset(cfg, 0, sizeof(*cfg));
    memset(&a, 0, sizeof(a));
    cfg->verify = CONFIG_VERIFY_FULL;
    cfg->tls_min = 12;
    cfg->log_level = CONFIG_LOG_INFO;
    cfg->connect_timeout_ms = 5000;
    cfg->grace_ms = 25000;
    cfg->forward_sigterm = CONFIG_AUTO;
    cfg->prewarm = 1;
    cfg->busy_poll_us = 200;
    cfg->stats_interval = 60;
    cfg->expiry_warn_days = 14;

    r = scan_args(&a, argc, argv, cfg, err);
    if (r != 0)
        return r > 0 ? 0 : -1;
    r = settle_mode(cfg, &a, argv, envp, err);
    if (r != 0)
        return r > 0 ? 0 : -1;

    /* Scalars first: --tls-port is needed to read the server lists. */
    if (parse_scalars(cfg, &a, envp, err) < 0 ||
        parse_tls_material(cfg, &a, envp, err) < 0 ||
        parse_sources(cfg, &a, envp, err) < 0 ||
        parse_listen(cfg, &a, envp, err) < 0 ||
        check_listen_room(cfg, &a, envp, err) < 0) {
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
