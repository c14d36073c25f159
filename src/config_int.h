/*
 * config_int: what the files of the config module share (config.c, the
 * parse; config_opts.c, the option table and its kinds; config_sources.c,
 * where the server lists come from).  Nothing outside the module includes
 * it.
 */
#ifndef MEMTUNNEL_CONFIG_INT_H
#define MEMTUNNEL_CONFIG_INT_H

#include <stddef.h>

#include "config.h"

#define CONFIG_QUOTE_MAX 80     /* a quoted value in an error message */

/* The rows of config_opts[], in table order. */
enum config_opt_id {
    OPT_SERVERS, OPT_VARS, OPT_LISTEN,
    OPT_CA, OPT_CA_PEM, OPT_CERT, OPT_CERT_PEM, OPT_KEY, OPT_KEY_PEM,
    OPT_VERIFY, OPT_SNI, OPT_TLS_MIN, OPT_TLS_PORT, OPT_LOG_LEVEL,
    OPT_CONNECT_TIMEOUT, OPT_IDLE_TIMEOUT, OPT_GRACE, OPT_FORWARD_SIGTERM,
    OPT_DUMPABLE, OPT_PREWARM, OPT_BUSY_POLL, OPT_REUSE, OPT_AUTH, OPT_STATS_INTERVAL,
    OPT_EXPIRY_WARN_DAYS, OPT_ENABLED, OPT_ACTIVE, OPT_USERNAME, OPT_PASSWORD,
    OPT_JSON, OPT_HELP, OPT_VERSION,
    CONFIG_NOPTS
};

/* What the scan of argv learnt. */
struct config_args {
    const char *flag[CONFIG_NOPTS];   /* value of each flag given, else NULL */
    int check;                        /* argv[1] is "check" */
    int cmd;                          /* index of the command in argv, or 0 */
};

/* One looked-up setting: its text and the flag or variable it came from. */
struct config_val {
    const char *text;                 /* NULL when neither is set */
    const char *name;
};

/* The value of variable `name` (len bytes) in envp, or NULL. */
const char *config_env(char *const envp[], const char *name, size_t len);

/* Like config_env(), but an empty value counts as unset (SPEC §3). */
const char *config_env_set(char *const envp[], const char *name);

/* Setting id: its flag if given, else its variable. */
void config_lookup(const struct config_args *a, char *const envp[],
                   enum config_opt_id id, struct config_val *v);

/* Fill *err (one line whatever fmt gives) and return -1. */
__attribute__((format(printf, 4, 5)))
int config_fail(struct config_error *err, int status, const char *name,
                const char *fmt, ...);

/*
 * n bytes of s in double quotes, escaped and cut, into buf
 * (CONFIG_QUOTE_MAX bytes), for an error message; text that may be secret
 * is replaced by a note.  Returns buf.
 */
const char *config_quote(char *buf, const char *s, size_t n);

/*
 * Check text as a value of row o's kind (WORD, UINT, SECONDS, NAME; other
 * kinds are checked by their own code and pass).  Returns 0 with *out set
 * (the keyword's value, the number, the milliseconds), or -1 with the
 * reason in why (len bytes), worded to follow the quoted value.
 */
int config_opt_value(const struct config_opt *o, const char *text,
                     unsigned long *out, char *why, size_t len);

/*
 * The keywords of list w that are offered ("full, chain or none"), with
 * what each means in parentheses when with_help, and `last` before the last
 * one, into buf (len bytes).  Returns buf.
 */
char *config_words(const struct config_word *w, int with_help,
                   const char *last, char *buf, size_t len);

/*
 * The sources (SPEC §3): cfg->sources and cfg->servers from --servers,
 * --vars, their variables or the providers' variables.  cfg->tls_port is
 * already set.  Returns 0, or -1 with *err filled in.
 */
int config_parse_sources(struct config *cfg, const struct config_args *a,
                         char *const envp[], struct config_error *err);

/*
 * Each server's credentials (config_creds.c), and with --auth on, the
 * checks that every node has a pair that its mode can send, and a
 * verified peer to send it to.  cfg->servers, cfg->sources, cfg->verify
 * and cfg->auth are set.  Returns 0, or -1 with *err filled in (no value
 * of a credential in it).
 */
int config_parse_creds(struct config *cfg, const struct config_args *a,
                       char *const envp[], struct config_error *err);

#endif
