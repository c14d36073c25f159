/*
 * log: logfmt lines on stderr, one event per line (SPEC §6).
 *
 *   memtunnel level=warn at=verify-failed upstream=mc1:11211 reason="certificate expired"
 *
 * logfmt_format is pure and unit-tested; log_event filters by level and
 * writes one line with a single write(2), so lines never interleave.
 * Callers pass only fixed strings, addresses and numbers: never payload
 * bytes, credentials or PEM text.
 */
#ifndef MEMTUNNEL_LOG_H
#define MEMTUNNEL_LOG_H

#include <stddef.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

#define LOG_LINE_MAX 1024

/*
 * Format "memtunnel level=L at=AT k1=v1 k2=v2 …\n" into buf (always
 * NUL-terminated, truncated to fit).  kv is a NULL-terminated array of
 * alternating keys and values; a NULL value is skipped with its key.
 * Values are quoted when they are empty or hold a space, '=', '"' or a
 * control byte; '"' and '\' are escaped and control bytes written as \n, \t
 * or \xHH.  Returns the length written.
 */
size_t logfmt_format(char *buf, size_t len, enum log_level level,
                     const char *at, const char *const kv[]);

/* Only events at this level or more severe are written.  Default info. */
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);

/* log_event(LOG_WARN, "verify-failed", "upstream", up, "reason", why, NULL) */
void log_event(enum log_level level, const char *at, ...);

/* The same with the pairs in a NULL-terminated array. */
void log_kv(enum log_level level, const char *at, const char *const kv[]);

#endif
