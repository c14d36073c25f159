/*
 * log: logfmt lines on stderr, one event per line (SPEC §6).
 *
 *   memtunnel level=warn at=verify-failed upstream=mc1:11211 reason="certificate expired"
 *
 * logfmt_format is pure and unit-tested; log_event filters by level and
 * writes one line with a single write(2), so lines never interleave.
 * Between log_start and log_stop the lines go through a bounded queue to a
 * writer thread instead, so that a stalled reader of stderr never blocks
 * the caller: what does not fit is dropped, counted, and reported as
 * "at=log-dropped count=N" once there is room again.
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

/* The queue's size while the tunnel runs. */
#define LOG_QUEUE_BYTES (256 * 1024)

/*
 * From now on, queue lines (at most `capacity` bytes) for a writer thread
 * that writes them to fd with blocking writes of whole lines (at most
 * PIPE_BUF bytes each, atomic on a pipe).  fd's flags are left alone.  The
 * thread blocks every signal.  Only for a pipe, a socket or a terminal:
 * lines to a regular file or /dev/null are still written directly.
 * Returns 0, or a negative errno (the lines are then written directly, as
 * before).  log_start, log_stop and the logging calls belong to one
 * thread.
 */
int log_start(int fd, size_t capacity);

/*
 * Wait up to timeout_ms for the queue to be written out (the dropped count
 * included), stop the writer and write directly again; returns 0.  If the
 * reader stays stalled, returns -ETIMEDOUT and leaves the writer blocked
 * (lines are still queued or dropped; calling again waits again), so that
 * a stalled reader cannot hold up memtunnel's exit.  0 when not started.
 */
int log_stop(unsigned timeout_ms);

#endif
