/*
 * resume: whether to offer an upstream's stored TLS session, pure and
 * stepped with explicit times (milliseconds of a monotonic clock).
 *
 * A resumed handshake checks no certificate: the chain, the name and the
 * dates were checked by the full handshake the session descends from.
 * Each connection brings a new ticket, so without a bound a long-running
 * process would resume for ever and never look at the certificate again.
 * So a stored session carries the time of that full handshake, which a
 * ticket from a resumed connection inherits, and past RESUME_MAX_AGE_MS
 * it is not offered: the next connection verifies in full.
 *
 * A server that refuses an offered session (memcached 1.6 requiring
 * client certificates answers one with an alert) costs each offer a
 * failed attempt.  After a refusal the session is dropped and offers pause
 * for a while, doubling at each refusal from RESUME_BACKOFF_MIN_MS to
 * RESUME_BACKOFF_MAX_MS; a resumed handshake ends the backoff.  A server
 * that no longer knows a ticket (it restarted) answers with a full
 * handshake: that is no refusal and changes nothing here.
 */
#ifndef MEMTUNNEL_RESUME_H
#define MEMTUNNEL_RESUME_H

#include <stdint.h>

/* RFC 8446 §4.6.1 lets a server keep a ticket valid for at most 7 days;
 * a day is short enough to notice a revoked or replaced certificate and
 * costs one full handshake a day. */
#define RESUME_MAX_AGE_MS (24ULL * 3600 * 1000)
#define RESUME_BACKOFF_MIN_MS (60ULL * 1000)
#define RESUME_BACKOFF_MAX_MS (3600ULL * 1000)

struct resume_limits {
    uint64_t max_age_ms;
    uint64_t backoff_min_ms, backoff_max_ms;
};

struct resume {
    int stored;              /* a session is kept for the upstream */
    uint64_t verified_at;    /* its chain's last full verification */
    uint64_t expires_at;     /* the ticket's own lifetime ends; 0: unknown */
    uint64_t backoff_ms;     /* the pause after the last refusal; 0: none */
    uint64_t paused_until;   /* no offer before this */
};

/* The bounds above. */
void resume_limits_default(struct resume_limits *lim);

/*
 * Tests shorten the bounds with "MAX_AGE_MS:BACKOFF_MIN_MS:BACKOFF_MAX_MS".
 * Returns 0 and sets *lim, or -1 (and *lim unchanged) when s is not that.
 */
int resume_limits_parse(const char *s, struct resume_limits *lim);

/* Whether the stored session may be offered at `now`. */
int resume_offer(const struct resume *r, const struct resume_limits *lim,
                 uint64_t now);

/*
 * A connection has a session to keep, whose chain was verified at
 * `verified_at` (its own full handshake, or the one the session it resumed
 * descends from) and whose ticket ends at `expires_at` (0: unknown).
 * Returns 1 when it replaces the stored one (the caller swaps them), 0
 * when the stored one descends from a later verification and stays.
 */
int resume_keep(struct resume *r, uint64_t verified_at, uint64_t expires_at);

/*
 * An offered session was refused at `now`: the stored session is dropped
 * (the caller frees it) and offers pause.  Refusals while paused answer
 * offers made before the pause began, and count as the same refusal.
 */
void resume_refused(struct resume *r, const struct resume_limits *lim,
                    uint64_t now);

/* A handshake resumed: the server takes sessions, the backoff ends. */
void resume_resumed(struct resume *r);

#endif
