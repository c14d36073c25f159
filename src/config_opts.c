/*
 * config_opts: the option table, and what each kind of value accepts.
 *
 * One row per flag or variable (SPEC §2): its names, its kind, the range
 * or keywords, the default, the field of struct config it fills and its
 * help text.  config.c parses by it, the defaults are parsed from it, and
 * main.c prints --help from it, so a setting cannot be added to one and
 * missed in another.  Pure: no I/O, no state.
 */
#include "config_int.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "servers.h"

/* The field of struct config a row fills. */
#define TO(field) \
    .dest = offsetof(struct config, field), \
    .size = sizeof(((struct config *)0)->field)

/* MEMTUNNEL_ENABLED, MEMTUNNEL_DUMPABLE: the usual spellings of a boolean. */
static const struct config_word bool_words[] = {
    { "true", 1, 0, NULL }, { "1", 1, 0, NULL }, { "yes", 1, 0, NULL },
    { "on", 1, 0, NULL }, { "false", 0, 0, NULL }, { "0", 0, 0, NULL },
    { "no", 0, 0, NULL }, { "off", 0, 0, NULL }, { NULL, 0, 0, NULL }
};

/* MEMTUNNEL_FORWARD_SIGTERM: auto, yes, no, and boolean spellings too. */
static const struct config_word switch_words[] = {
    { "auto", CONFIG_AUTO, 0, "not on Heroku, where DYNO is set" },
    { "yes", CONFIG_YES, 0, NULL }, { "no", CONFIG_NO, 0, NULL },
    { "true", CONFIG_YES, 1, NULL }, { "1", CONFIG_YES, 1, NULL },
    { "on", CONFIG_YES, 1, NULL }, { "false", CONFIG_NO, 1, NULL },
    { "0", CONFIG_NO, 1, NULL }, { "off", CONFIG_NO, 1, NULL },
    { NULL, 0, 0, NULL }
};

/* --reuse: auto, on, off, and boolean spellings too. */
static const struct config_word reuse_words[] = {
    { "auto", CONFIG_AUTO, 0, "only where the app cannot have logged in on "
      "the connection itself: with --auth, or for a node without "
      "credentials" },
    { "on", CONFIG_YES, 0, "also where credentials exist; a connection on "
      "which the client logged in is still never reused" },
    { "off", CONFIG_NO, 0, "a new upstream connection for every client" },
    { "yes", CONFIG_YES, 1, NULL }, { "true", CONFIG_YES, 1, NULL },
    { "1", CONFIG_YES, 1, NULL }, { "no", CONFIG_NO, 1, NULL },
    { "false", CONFIG_NO, 1, NULL }, { "0", CONFIG_NO, 1, NULL },
    { NULL, 0, 0, NULL }
};

static const struct config_word verify_words[] = {
    { "full", CONFIG_VERIFY_FULL, 0, "chain, dates and host name" },
    { "chain", CONFIG_VERIFY_CHAIN, 0, "no name check" },
    { "none", CONFIG_VERIFY_NONE, 0,
      "no verification; warns at start and on every connection" },
    { NULL, 0, 0, NULL }
};

static const struct config_word auth_words[] = {
    { "none", CONFIG_AUTH_NONE, 0, "bytes untouched: the client logs in, if "
      "at all" },
    { "memcachier", CONFIG_AUTH_MEMCACHIER, 0, "MemCachier's ASCII login" },
    { "memcached", CONFIG_AUTH_MEMCACHED, 0, "memcached -Y's ASCII login" },
    { "sasl", CONFIG_AUTH_SASL, 0, "binary SASL PLAIN" },
    { NULL, 0, 0, NULL }
};

static const struct config_word tls_min_words[] = {
    { "1.2", 12, 0, NULL }, { "1.3", 13, 0, NULL }, { NULL, 0, 0, NULL }
};

static const struct config_word level_words[] = {
    { "error", CONFIG_LOG_ERROR, 0, NULL },
    { "warn", CONFIG_LOG_WARN, 0, NULL },
    { "info", CONFIG_LOG_INFO, 0, NULL },
    { "debug", CONFIG_LOG_DEBUG, 0, NULL }, { NULL, 0, 0, NULL }
};

/* Where a server list comes from when nothing says otherwise, in order. */
static const struct config_word provider_vars[] = {
    { "MEMCACHIER_SERVERS", 0, 0, NULL },
    { "MEMCACHEDCLOUD_SERVERS", 0, 0, NULL },
    { "MEMCACHE_SERVERS", 0, 0, NULL }, { NULL, 0, 0, NULL }
};

const struct config_opt config_opts[CONFIG_NOPTS] = {
    [OPT_SERVERS] = { "--servers", "LIST", "MEMTUNNEL_SERVERS",
        CONFIG_KIND_SERVERS, .words = provider_vars,
        .help = "upstream nodes, host:port[,host:port...]; IPv6 as "
                "[::1]:11211, a host alone means port 11211; commas or "
                "spaces separate" },
    [OPT_VARS] = { "--vars", "NAMES", "MEMTUNNEL_VARS", CONFIG_KIND_VARS,
        .help = "variables whose server lists are tunneled and rewritten "
                "for the command, each to listeners of its own" },
    [OPT_LISTEN] = { "--listen", "ADDR", "MEMTUNNEL_LISTEN",
        CONFIG_KIND_ADDRESS, .def = "127.0.0.1:11211",
        .help = "first local address (an IP address or localhost); node i "
                "gets port+i, or an ephemeral port when the port is 0, as "
                "it is by default when wrapping a command" },

    [OPT_CA] = { "--ca", "FILE", "MEMTUNNEL_CA_FILE", CONFIG_KIND_FILE,
        TO(ca_file),
        .help = "PEM bundle of trusted CAs; default: the system's trust "
                "store" },
    [OPT_CA_PEM] = { NULL, NULL, "MEMTUNNEL_CA", CONFIG_KIND_PEM,
        TO(ca_pem),
        .help = "the same as inline PEM text (a config var cannot hold a "
                "file)" },
    [OPT_CERT] = { "--cert", "FILE", "MEMTUNNEL_CERT_FILE",
        CONFIG_KIND_FILE, TO(cert_file),
        .help = "client certificate for mutual TLS (with its key)" },
    [OPT_CERT_PEM] = { NULL, NULL, "MEMTUNNEL_CERT", CONFIG_KIND_PEM,
        TO(cert_pem), .help = "the client certificate as inline PEM text" },
    [OPT_KEY] = { "--key", "FILE", "MEMTUNNEL_KEY_FILE", CONFIG_KIND_FILE,
        TO(key_file), .help = "the client certificate's private key" },
    [OPT_KEY_PEM] = { NULL, NULL, "MEMTUNNEL_KEY", CONFIG_KIND_PEM,
        TO(key_pem), .help = "the client key as inline PEM text" },

    [OPT_VERIFY] = { "--verify", "MODE", "MEMTUNNEL_VERIFY",
        CONFIG_KIND_WORD, .words = verify_words, .def = "full", TO(verify),
        .help = "how upstream certificates are checked" },
    [OPT_SNI] = { "--sni", "NAME", "MEMTUNNEL_SNI", CONFIG_KIND_NAME,
        TO(sni),
        .help = "server name sent and checked; default: each upstream's "
                "host" },
    [OPT_TLS_MIN] = { "--tls-min", "VERSION", "MEMTUNNEL_TLS_MIN",
        CONFIG_KIND_WORD, .words = tls_min_words, .def = "1.2", TO(tls_min),
        .help = "lowest TLS version offered" },
    [OPT_TLS_PORT] = { "--tls-port", "PORT", "MEMTUNNEL_TLS_PORT",
        CONFIG_KIND_UINT, .min = 1, .max = 65535, TO(tls_port),
        .help = "replace every upstream's port, for providers that serve "
                "TLS on a port of its own (unset: keep each port)" },
    [OPT_LOG_LEVEL] = { "--log-level", "LEVEL", "MEMTUNNEL_LOG_LEVEL",
        CONFIG_KIND_WORD, .words = level_words, .def = "info", TO(log_level),
        .help = "least severe log lines written" },

    [OPT_CONNECT_TIMEOUT] = { "--connect-timeout", "S",
        "MEMTUNNEL_CONNECT_TIMEOUT", CONFIG_KIND_SECONDS, .min = 1,
        .max = 3600000, .def = "5", TO(connect_timeout_ms),
        .help = "bound on TCP connect + TLS handshake per connection" },
    [OPT_IDLE_TIMEOUT] = { "--idle-timeout", "S", "MEMTUNNEL_IDLE_TIMEOUT",
        CONFIG_KIND_SECONDS, .max = 604800000, .def = "0",
        TO(idle_timeout_ms),
        .help = "close connections idle this long, 0 = never" },
    [OPT_GRACE] = { "--grace", "S", "MEMTUNNEL_GRACE", CONFIG_KIND_SECONDS,
        .max = 3600000, .def = "25", TO(grace_ms),
        .help = "after a fatal tunnel error, the delay from SIGTERM to "
                "SIGKILL for the command" },
    [OPT_FORWARD_SIGTERM] = { NULL, NULL, "MEMTUNNEL_FORWARD_SIGTERM",
        CONFIG_KIND_WORD, .words = switch_words, .def = "auto",
        TO(forward_sigterm), .help = "forward SIGTERM to the command" },
    [OPT_DUMPABLE] = { NULL, NULL, "MEMTUNNEL_DUMPABLE", CONFIG_KIND_WORD,
        .words = bool_words, .def = "false", TO(dumpable),
        .help = "allow core dumps and debuggers, which see the key and the "
                "traffic" },

    [OPT_PREWARM] = { "--prewarm", "N", "MEMTUNNEL_PREWARM",
        CONFIG_KIND_UINT, .max = 64, .def = "1", TO(prewarm),
        .help = "verified TLS connections kept ready per upstream" },
    [OPT_BUSY_POLL] = { "--busy-poll", "US", "MEMTUNNEL_BUSY_POLL",
        CONFIG_KIND_UINT, .max = 10000, .unit = "microseconds", .def = "20",
        TO(busy_poll_us),
        .help = "poll the loop instead of sleeping for at most this long, "
                "when events come that often (about what a sleep and a "
                "wake-up cost); 0 = never" },
    [OPT_REUSE] = { "--reuse", "MODE", "MEMTUNNEL_REUSE", CONFIG_KIND_WORD,
        .words = reuse_words, .def = "auto", TO(reuse),
        .help = "give an upstream connection that a client left at a "
                "request boundary, proved idle by a sentinel, to the next "
                "client instead of a new handshake" },
    [OPT_AUTH] = { "--auth", "MODE", "MEMTUNNEL_AUTH", CONFIG_KIND_WORD,
        .words = auth_words, .def = "none", TO(auth),
        .help = "log in on every upstream connection for the client, before "
                "its first byte, with the node's credentials (which the "
                "command then does not get)" },
    [OPT_STATS_INTERVAL] = { NULL, NULL, "MEMTUNNEL_STATS_INTERVAL",
        CONFIG_KIND_UINT, .max = 86400, .unit = "seconds", .def = "60",
        TO(stats_interval),
        .help = "time between stats lines; 0 = off" },
    [OPT_EXPIRY_WARN_DAYS] = { NULL, NULL, "MEMTUNNEL_EXPIRY_WARN_DAYS",
        CONFIG_KIND_UINT, .max = 3650, .unit = "days", .def = "14",
        TO(expiry_warn_days),
        .help = "certificates expiring within this many days are flagged "
                "by check and logged as at=cert-expiring" },

    [OPT_ENABLED] = { NULL, NULL, "MEMTUNNEL_ENABLED", CONFIG_KIND_WORD,
        .words = bool_words, .def = "true", TO(enabled),
        .help = "false: exec the command untouched, no tunnel" },
    [OPT_ACTIVE] = { NULL, NULL, "MEMTUNNEL_ACTIVE", CONFIG_KIND_MARKER,
        .help = "set to 1 for the command: a memtunnel that finds it "
                "execs its command instead of tunneling twice" },
    /* config_creds.c reads these, childenv.c keeps them from the
     * command. */
    [OPT_USERNAME] = { NULL, NULL, "MEMTUNNEL_USERNAME",
        CONFIG_KIND_SECRET,
        .help = "the login of --auth and check for every node, instead of "
                "the pair beside "
                "the variable its address came from; the only one for "
                "--servers and MEMTUNNEL_SERVERS" },
    [OPT_PASSWORD] = { NULL, NULL, "MEMTUNNEL_PASSWORD",
        CONFIG_KIND_SECRET,
        .help = "the password that goes with MEMTUNNEL_USERNAME" },

    [OPT_JSON] = { "--json", NULL, NULL, CONFIG_KIND_SWITCH, TO(json),
        .check_only = 1, .help = "print one JSON document" },
    [OPT_HELP] = { "--help", NULL, NULL, CONFIG_KIND_MODE, .short_flag = 'h',
        .min = CONFIG_MODE_HELP, TO(mode), .help = "this text" },
    [OPT_VERSION] = { "--version", NULL, NULL, CONFIG_KIND_MODE,
        .short_flag = 'V', .min = CONFIG_MODE_VERSION, TO(mode),
        .help = "the version" },
};

const size_t config_nopts = CONFIG_NOPTS;

/* snprintf at buf + *n, never past len; *n stays below len. */
__attribute__((format(printf, 4, 5)))
static void add(char *buf, size_t len, size_t *n, const char *fmt, ...)
{
    va_list ap;
    int r;

    if (*n + 1 >= len)
        return;
    va_start(ap, fmt);
    r = vsnprintf(buf + *n, len - *n, fmt, ap);
    va_end(ap);
    if (r > 0)
        *n = *n + (size_t)r < len ? *n + (size_t)r : len - 1;
}

char *config_words(const struct config_word *w, int with_help,
                   const char *last, char *buf, size_t len)
{
    size_t n = 0, count = 0, k = 0;

    buf[0] = '\0';
    for (size_t i = 0; w[i].word != NULL; i++)
        count += !w[i].alias;
    for (; w->word != NULL; w++) {
        if (w->alias)
            continue;
        if (k > 0)
            add(buf, len, &n, "%s", k + 1 == count ? last : ", ");
        add(buf, len, &n, "%s", w->word);
        if (with_help && w->help != NULL)
            add(buf, len, &n, " (%s)", w->help);
        k++;
    }
    return buf;
}

/* Milliseconds as seconds, without trailing zeros: "5", "0.5", "0.001". */
static void seconds_text(char *buf, size_t len, size_t *n, unsigned long ms)
{
    char frac[5];
    int k;

    snprintf(frac, sizeof(frac), ".%03lu", ms % 1000);
    for (k = 3; k > 0 && frac[k] == '0'; k--)
        frac[k] = '\0';
    add(buf, len, n, "%lu%s", ms / 1000, k > 0 ? frac : "");
}

/* The range of a UINT or SECONDS row: "0-64", "more than 0, up to 3600". */
static void range_text(const struct config_opt *o, char *buf, size_t len,
                       size_t *n)
{
    if (o->kind == CONFIG_KIND_UINT) {
        add(buf, len, n, "%lu-%lu", o->min, o->max);
        return;
    }
    if (o->min == 1) {
        add(buf, len, n, "more than 0, up to ");
    } else {
        seconds_text(buf, len, n, o->min);
        add(buf, len, n, "-");
    }
    seconds_text(buf, len, n, o->max);
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

int config_opt_value(const struct config_opt *o, const char *text,
                     unsigned long *out, char *why, size_t len)
{
    const char *bad;
    char words[160];
    size_t n = 0;
    int r;

    why[0] = '\0';
    switch (o->kind) {
    case CONFIG_KIND_WORD:
        for (const struct config_word *w = o->words; w->word != NULL; w++) {
            if (strcasecmp(text, w->word) == 0) {
                *out = (unsigned long)w->value;
                return 0;
            }
        }
        add(why, len, &n, "is not valid; expected %s",
            config_words(o->words, 0, " or ", words, sizeof(words)));
        return -1;
    case CONFIG_KIND_UINT:
        r = parse_uint(text, strlen(text), o->max, out);
        if (r == 0 && *out >= o->min)
            return 0;
        add(why, len, &n, r == -1 ? "is not a whole number; expected " :
                                    "is out of range ");
        range_text(o, why, len, &n);
        return -1;
    case CONFIG_KIND_SECONDS:
        r = parse_ms(text, o->max, out);
        if (r == 0 && *out >= o->min)
            return 0;
        if (r == -1) {
            add(why, len, &n, "is not a number of seconds; expected e.g. 5 "
                "or 0.5 (at most 3 decimals), up to ");
            seconds_text(why, len, &n, o->max);
        } else {
            add(why, len, &n, "seconds is out of range; expected ");
            range_text(o, why, len, &n);
        }
        return -1;
    case CONFIG_KIND_NAME:
        bad = check_sni(text);
        if (bad == NULL)
            return 0;
        add(why, len, &n, "%s", bad);
        return -1;
    default:
        return 0;
    }
}

char *config_opt_head(const struct config_opt *o, char *buf, size_t len)
{
    size_t n = 0;

    buf[0] = '\0';
    if (o->short_flag != 0)
        add(buf, len, &n, "-%c, ", o->short_flag);
    if (o->flag != NULL)
        add(buf, len, &n, "%s%s%s", o->flag, o->arg != NULL ? " " : "",
            o->arg != NULL ? o->arg : "");
    if (o->var != NULL)
        add(buf, len, &n, "%s%s", o->flag != NULL ? ", " : "", o->var);
    return buf;
}

char *config_opt_describe(const struct config_opt *o, char *buf, size_t len)
{
    char words[400];
    size_t n = 0;

    buf[0] = '\0';
    add(buf, len, &n, "%s%s", o->check_only ? "memtunnel check only: " : "",
        o->help);
    switch (o->kind) {
    case CONFIG_KIND_WORD:
        add(buf, len, &n, "; %s",
            config_words(o->words, 1, " or ", words, sizeof(words)));
        break;
    case CONFIG_KIND_UINT:
        add(buf, len, &n, "; ");
        range_text(o, buf, len, &n);
        if (o->unit != NULL)
            add(buf, len, &n, " %s", o->unit);
        break;
    case CONFIG_KIND_SECONDS:
        add(buf, len, &n, "; seconds, ");
        range_text(o, buf, len, &n);
        break;
    case CONFIG_KIND_SERVERS:
        add(buf, len, &n, "; default: the first set of %s",
            config_words(o->words, 0, " or ", words, sizeof(words)));
        break;
    default:
        break;
    }
    if (o->def != NULL)
        add(buf, len, &n, "; default: %s", o->def);
    return buf;
}
