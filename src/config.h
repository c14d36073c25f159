/*
 * config: command line + environment -> struct config.
 *
 * Pure code: no I/O, no logging, no globals.  Everything the program can be
 * told (SPEC §2, §3) is parsed and validated here, so that bad input is
 * refused before anything is bound or started, with one message that names
 * the flag or variable at fault.
 */
#ifndef MEMTUNNEL_CONFIG_H
#define MEMTUNNEL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "exitcode.h"

#define CONFIG_DEFAULT_PORT 11211
#define CONFIG_HOST_MAX 255     /* longest DNS name (253) or IP literal */

enum config_mode {
    CONFIG_MODE_TUNNEL,         /* no command: tunnel until SIGINT/SIGTERM */
    CONFIG_MODE_WRAP,           /* run cfg->command as a supervised child */
    CONFIG_MODE_EXEC,           /* disabled or nested: exec cfg->command as is */
    CONFIG_MODE_CHECK,          /* memtunnel check */
    CONFIG_MODE_HELP,
    CONFIG_MODE_VERSION,
};

enum config_verify {
    CONFIG_VERIFY_FULL,         /* chain + validity + host name / IP */
    CONFIG_VERIFY_CHAIN,        /* chain + validity */
    CONFIG_VERIFY_NONE,
};

enum config_switch { CONFIG_AUTO, CONFIG_YES, CONFIG_NO };

/* --auth: who authenticates each upstream connection (auth.h). */
enum config_auth {
    CONFIG_AUTH_NONE,           /* the client, if anyone: bytes untouched */
    CONFIG_AUTH_MEMCACHIER,     /* MemCachier's ASCII scheme */
    CONFIG_AUTH_MEMCACHED,      /* memcached -Y */
    CONFIG_AUTH_SASL,           /* binary SASL PLAIN */
};

/* Same order as enum log_level in log.h. */
enum config_log_level {
    CONFIG_LOG_ERROR, CONFIG_LOG_WARN, CONFIG_LOG_INFO, CONFIG_LOG_DEBUG,
};

/* An address family tag for host strings. */
enum config_family {
    CONFIG_NAME = 0,            /* DNS name, resolved per connection */
    CONFIG_IPV4 = 4,
    CONFIG_IPV6 = 6,
};

/*
 * A node's credentials (SPEC §3a): MEMTUNNEL_USERNAME and
 * MEMTUNNEL_PASSWORD when both are set, else the pair beside the variable
 * its address came from, never another provider's.  The values point into
 * envp and are never copied; the names are kept even when unset, for
 * messages.
 */
struct config_creds {
    const char *user, *pass;          /* both set, or both NULL */
    char user_var[64], pass_var[64];  /* where they come from, or would */
};

struct config_server {
    char host[CONFIG_HOST_MAX + 1];   /* no brackets around IPv6 */
    uint16_t port;                    /* after --tls-port was applied */
    enum config_family family;
    struct config_creds creds;        /* filled in by config_parse */
};

/*
 * Where servers came from.  Servers of source k are
 * cfg->servers[first .. first+count-1], in the order they were listed; the
 * listeners are made in cfg->servers order, so a source's listeners are in
 * its own order too.
 */
struct config_source {
    const char *name;   /* "--servers", "MEMTUNNEL_SERVERS" or a variable name */
    int is_var;         /* an app variable, to be rewritten in the child's env */
    size_t first, count;
};

/*
 * The prefix of the credential pair beside source s (FOO_SERVERS ->
 * "FOO_", as a length of s->name), or 0 when it has none (--servers, a
 * variable not named *_SERVERS).  The one rule for config_creds.c and
 * childenv.c.
 */
size_t config_source_pair_prefix(const struct config_source *s);

struct config {
    enum config_mode mode;

    struct config_server *servers;    /* owned, config_free releases */
    size_t nservers;
    struct config_source *sources;    /* owned */
    size_t nsources;

    /* First local address; node i listens on listen_port + i, or on an
     * ephemeral port each when listen_port is 0. */
    char listen_host[CONFIG_HOST_MAX + 1];
    enum config_family listen_family; /* IPv4 or IPv6 literal only */
    uint16_t listen_port;
    int listen_explicit;              /* --listen or MEMTUNNEL_LISTEN given */
    int listen_loopback;              /* listen_host is 127.0.0.0/8 or ::1 */

    /*
     * TLS material.  Each is NULL when not given.  *_file is a path,
     * *_pem inline PEM text taken from the environment; the pointers point
     * into argv / envp, which outlive the config.  *_source names the flag
     * or variable each came from, for error messages.
     */
    const char *ca_file, *ca_pem;
    const char *cert_file, *cert_pem;
    const char *key_file, *key_pem;
    const char *ca_source, *cert_source, *key_source;

    enum config_verify verify;
    const char *sni;                  /* NULL: each upstream's host */
    int tls_min;                      /* 12 or 13 */
    uint16_t tls_port;                /* 0: keep each server's port */
    enum config_log_level log_level;

    uint32_t connect_timeout_ms;      /* > 0 */
    uint32_t idle_timeout_ms;         /* 0: none */
    uint32_t grace_ms;

    enum config_switch forward_sigterm;
    int on_heroku;                    /* DYNO is set */
    unsigned prewarm;
    unsigned busy_poll_us;            /* longest poll window, 0 = never */
    enum config_switch reuse;         /* --reuse: auto, on (yes), off (no) */
    enum config_auth auth;
    unsigned stats_interval;          /* seconds, 0 = off */
    unsigned expiry_warn_days;
    int dumpable;                     /* MEMTUNNEL_DUMPABLE: allow cores */
    int enabled;                      /* 0: exec the command as it is */

    int json;                         /* check --json: one JSON document */

    /* NULL-terminated, points into argv; NULL unless WRAP or EXEC. */
    char *const *command;
};

struct config_error {
    int status;                       /* EXIT_USAGE or EXIT_CONFIG */
    char name[64];                    /* flag or variable at fault, "" if none */
    char msg[400];                    /* what is wrong, one line, no newline */
};

/*
 * Parse argv (argv[0] is the program name) and envp (NULL-terminated
 * "NAME=value" strings) into *cfg.  Returns 0, or -1 with *err filled in;
 * on failure *cfg holds nothing that needs freeing.  Secrets (PEM text,
 * passwords) are never copied into err->msg.
 */
int config_parse(struct config *cfg, int argc, char *const argv[],
                 char *const envp[], struct config_error *err);

/* Release what config_parse allocated.  Accepts a zeroed config. */
void config_free(struct config *cfg);

/*
 * The option table (config_opts.c): one row per flag or variable.  The
 * parse, the defaults and --help all come from it, so they cannot drift
 * apart.  What a row's value is decides how it is parsed and shown.
 */
enum config_kind {
    CONFIG_KIND_MODE,       /* no value: selects mode `min`, ends the parse */
    CONFIG_KIND_SWITCH,     /* no value: sets its field to 1 */
    CONFIG_KIND_WORD,       /* one of the row's keywords, any case */
    CONFIG_KIND_UINT,       /* a whole number in min..max */
    CONFIG_KIND_SECONDS,    /* seconds, up to 3 decimals; kept in ms */
    CONFIG_KIND_NAME,       /* a DNS host name */
    CONFIG_KIND_FILE,       /* the name of a PEM file */
    CONFIG_KIND_PEM,        /* PEM text itself */
    CONFIG_KIND_SERVERS,    /* a server list */
    CONFIG_KIND_VARS,       /* names of variables that hold server lists */
    CONFIG_KIND_ADDRESS,    /* the first local address to listen on */
    CONFIG_KIND_SECRET,     /* a credential: read by the credentials rule
                             * (config_creds.c), never shown */
    CONFIG_KIND_MARKER,     /* set to 1 by memtunnel for its command */
};

/* A keyword and the value it stands for; a list ends with word NULL. */
struct config_word {
    const char *word;
    int value;
    int alias;              /* accepted, but not offered in messages or help */
    const char *help;       /* what it means, for --help; NULL: plain */
};

struct config_opt {
    const char *flag;       /* "--servers"; NULL: a variable only */
    const char *arg;        /* the flag's value in --help ("LIST") */
    const char *var;        /* "MEMTUNNEL_SERVERS"; NULL: a flag only */
    enum config_kind kind;
    char short_flag;        /* 'h' for the word "-h"; 0: none */
    /* WORD: the keywords; SERVERS: the variables tried, in order, when no
     * list is given. */
    const struct config_word *words;
    unsigned long min, max; /* UINT: range; SECONDS: range in ms; MODE: mode */
    const char *unit;       /* UINT: what is counted ("days"), for --help */
    const char *def;        /* the default as a user would write it, or NULL */
    size_t dest, size;      /* the field of struct config (offsetof, sizeof);
                             * size 0: none, the kind's own code fills fields */
    int check_only;         /* an option of memtunnel check alone */
    const char *help;       /* for --help: what it does, without the values
                             * or the default, which are added */
};

/* The rows, in --help order (the order settings are checked in, too). */
extern const struct config_opt config_opts[];
extern const size_t config_nopts;

/*
 * Row o's heading for --help ("--servers LIST, MEMTUNNEL_SERVERS",
 * "-h, --help", "MEMTUNNEL_CA") and its description: the help text, the
 * values it takes and its default.  Each writes a NUL-terminated line into
 * buf (cut to len bytes) and returns buf.
 */
char *config_opt_head(const struct config_opt *o, char *buf, size_t len);
char *config_opt_describe(const struct config_opt *o, char *buf, size_t len);

#endif
