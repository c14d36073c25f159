/*
 * log: logfmt formatting and the stderr writer.
 */
#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <unistd.h>

static enum log_level threshold = LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* A small bounded appender: it never overflows and remembers truncation. */
struct out {
    char *p;
    size_t len, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
    size_t room = o->cap - o->len;
    if (n > room)
        n = room;
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static int needs_quotes(const char *v)
{
    if (*v == '\0')
        return 1;
    for (const unsigned char *c = (const unsigned char *)v; *c; c++)
        if (*c <= ' ' || *c == '=' || *c == '"' || *c == 0x7f)
            return 1;
    return 0;
}

static void put_value(struct out *o, const char *v)
{
    static const char hex[] = "0123456789abcdef";

    if (!needs_quotes(v)) {
        puts_(o, v);
        return;
    }
    put(o, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)v; *c; c++) {
        char esc[4] = { '\\', 0, 0, 0 };
        size_t n = 2;
        switch (*c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            if (*c < ' ' || *c == 0x7f) {
                esc[1] = 'x';
                esc[2] = hex[*c >> 4];
                esc[3] = hex[*c & 15];
                n = 4;
            } else {
                esc[0] = (char)*c;
                n = 1;
            }
        }
        put(o, esc, n);
    }
    put(o, "\"", 1);
}

size_t logfmt_format(char *buf, size_t len, enum log_level level,
                     const char *at, const char *const kv[])
{
    if (len == 0)
        return 0;
    /* Keep room for the newline and the NUL whatever gets truncated. */
    struct out o = { buf, 0, len > 2 ? len - 2 : 0 };

    puts_(&o, "memtunnel level=");
    puts_(&o, level_names[level]);
    puts_(&o, " at=");
    put_value(&o, at);
    for (size_t i = 0; kv && kv[i]; i += 2) {
        if (kv[i + 1] == NULL)
            continue;
        put(&o, " ", 1);
        puts_(&o, kv[i]);
        put(&o, "=", 1);
        put_value(&o, kv[i + 1]);
    }
    if (len >= 2)
        buf[o.len++] = '\n';
    buf[o.len] = '\0';
    return o.len;
}

void log_set_level(enum log_level level)
{
    threshold = level;
}

int log_enabled(enum log_level level)
{
    return level <= threshold;
}

void log_event(enum log_level level, const char *at, ...)
{
    enum { MAX_KV = 32 };
    const char *kv[MAX_KV + 1];
    size_t n = 0;
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, at);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (k == NULL || n + 2 > MAX_KV)
            break;
        kv[n++] = k;
        kv[n++] = va_arg(ap, const char *);
    }
    va_end(ap);
    kv[n] = NULL;
    log_kv(level, at, kv);
}

void log_kv(enum log_level level, const char *at, const char *const kv[])
{
    char line[LOG_LINE_MAX];

    if (!log_enabled(level))
        return;
    size_t len = logfmt_format(line, sizeof line, level, at, kv);
    /* One write per line; a short write to stderr is not worth retrying. */
    ssize_t r = write(STDERR_FILENO, line, len);
    (void)r;
}
