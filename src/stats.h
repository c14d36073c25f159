/*
 * stats: per-upstream counters and the l2met-style line they are logged as
 * every MEMTUNNEL_STATS_INTERVAL seconds (and once at exit):
 *
 *   memtunnel level=info at=stats upstream=mc1:11211
 *     sample#memtunnel.connections.active=3
 *     count#memtunnel.connections.accepted=120 …
 *
 * count# values are what happened since the previous line; sample# values
 * are the state now.  Pure: no I/O.
 */
#ifndef MEMTUNNEL_STATS_H
#define MEMTUNNEL_STATS_H

#include <stddef.h>
#include <stdint.h>

#define STATS_SAMPLES 128

struct stats {
    uint64_t active;                 /* connections open now */
    uint64_t accepted;               /* since the last line, as all below */
    uint64_t connect_failures;       /* resolve, connect or timeout */
    uint64_t handshake_failures;     /* TLS errors other than verification */
    uint64_t verify_failures;
    uint64_t auth_failures;          /* --auth refused or not answered */
    uint64_t reused;                 /* clients given a pooled connection */
    uint64_t bytes_up, bytes_down;   /* plaintext, client → upstream / back */
    uint64_t handshakes;             /* completed; the samples below */
    uint32_t handshake_us[STATS_SAMPLES];
};

/* Record one completed connect + handshake time.  Keeps a uniform sample
 * of at most STATS_SAMPLES per interval (reservoir sampling). */
void stats_handshake(struct stats *s, uint32_t us, uint32_t random);

/* Median of the sampled handshake times, 0 when there were none.
 * Reorders the samples. */
uint32_t stats_handshake_p50(struct stats *s);

/*
 * The key/value pairs of one stats line into kv (NULL-terminated, for
 * log_event's formatter), formatting numbers into text (len bytes).
 * Returns the number of entries written to kv, excluding the NULL.
 */
size_t stats_pairs(struct stats *s, const char *upstream, const char **kv,
                   size_t kvlen, char *text, size_t len);

/* Start a new interval: zero the counts, keep the active gauge. */
void stats_next_interval(struct stats *s);

#endif
