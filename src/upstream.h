/*
 * upstream: one upstream node's shared state, and the only module that
 * changes it: its counters and handshake samples, its pre-warmed spares
 * (how many are owed, the ready ones, the backoff after failures, the
 * deferred refill), the TLS session kept for resumption, and when its
 * certificate's dates were last looked at.
 *
 * Connections (conn.c) report what happens to them through upstream_*
 * calls and take or give back spares; they never edit these fields.  A
 * spare is started through the hook given to upstream_start, so that this
 * module calls nothing above it.  The spares are opaque here: a `struct
 * conn *` is only stored and handed back.  So are the connections of the
 * idle pool (--reuse): ones a client left at a proved boundary, kept for
 * the next client.
 */
#ifndef MEMTUNNEL_UPSTREAM_H
#define MEMTUNNEL_UPSTREAM_H

#include <netinet/in.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "resume.h"
#include "stats.h"

struct conn;
struct upstream;

/* The idle pool of --reuse: at most this many connections per upstream,
 * each for at most this long. */
#define UPSTREAM_POOL_MAX 16
#define UPSTREAM_POOL_IDLE_MS 30000

/* Start one pre-warmed connection to up; called by this module when a
 * spare is owed.  The connection reports back with upstream_spare_park
 * (ready) or upstream_spare_gone. */
typedef void (*upstream_spare_fn)(void *arg, struct upstream *up);

/* What failed on a connection that never opened, for the counters. */
enum upstream_failure {
    UPSTREAM_CONNECT_FAILED,    /* resolve, connect or their timeout */
    UPSTREAM_HANDSHAKE_FAILED,  /* TLS other than verification */
    UPSTREAM_VERIFY_FAILED,
    UPSTREAM_AUTH_FAILED,       /* --auth: refused, not answered, cut */
};

struct upstream {
    /* Set by upstream_init, then only read. */
    const struct config_server *server;
    char name[CONFIG_HOST_MAX + 10];     /* "host:port" for logs */
    char port[8];
    const char *tls_name;                /* checked and sent as SNI */
    int tls_name_is_ip;
    struct sockaddr_storage addr;        /* for IP literals */
    int have_addr;
    int reuse;                           /* --reuse allows pooling here (an
                                            unanswered sentinel ends it) */
    int login_set;                       /* the client may log in with a
                                            set: credentials, no --auth */

    /* The rest is upstream.c's alone. */
    uv_loop_t *loop;
    unsigned prewarm;                    /* spares wanted */
    upstream_spare_fn start_spare;
    void *spare_arg;
    int started, stopped;
    struct stats stats;
    uint32_t rng;                        /* xorshift, for sampling */
    void *session;                       /* last TLS session */
    struct resume resume;                /* whether to offer `session` */
    int expiry_checked;                  /* the chain's dates were looked at */
    uint64_t expiry_checked_at;          /* loop time of that look */
    unsigned spares;                     /* pre-warmed: ready or on the way */
    unsigned spare_failures;             /* in a row, for the backoff */
    struct conn **ready;                 /* verified, unused: nready of them */
    unsigned nready;
    uv_timer_t spare_timer;              /* backoff before the next spare */
    uv_timer_t refill_timer;             /* bounds a deferred replacement */
    int refill_deferred;                 /* a taken spare is not replaced yet */
    uint64_t auth_logged_at;             /* loop time of the last auth-failed line */
    int auth_logged;                     /* there was one */
    unsigned auth_suppressed;            /* failures since, not logged */
    struct conn *pool[UPSTREAM_POOL_MAX]; /* idle, proved at a boundary */
    int pool_tag[UPSTREAM_POOL_MAX];     /* each one's tag */
    unsigned npool;
};

/*
 * Fill in up's identity for server s (sni, when not NULL, replaces the
 * name checked and sent).  No handle is made yet.  Returns 0, or -1 when
 * out of memory.
 */
int upstream_init(struct upstream *up, uv_loop_t *loop,
                  const struct config_server *s, const char *sni,
                  unsigned prewarm);

/*
 * Make the timers and start the spares owed, through start_spare(arg, up)
 * now and whenever one is owed later.  Called once, after the listener is
 * up.
 */
void upstream_start(struct upstream *up, upstream_spare_fn start_spare,
                    void *arg);

/* No more spares: close the timers (if started).  Idempotent.  The
 * spares themselves are the connections' to close. */
void upstream_stop(struct upstream *up);

/* Release what upstream_init and the connections left (the session, the
 * ready array); after the loop ran dry. */
void upstream_free(struct upstream *up);

/* ---- counters (stats.h) ---- */

void upstream_client_accepted(struct upstream *up);
void upstream_client_closed(struct upstream *up);
void upstream_failed(struct upstream *up, enum upstream_failure f);
void upstream_bytes(struct upstream *up, uint64_t up_bytes, uint64_t down_bytes);

/*
 * An --auth failure at `now` (counted by upstream_failed): whether its
 * line is due, the first at once and then at most one per 10 s, so that a
 * wrong password does not flood the log.  *suppressed is set to the
 * failures not logged since the last line.
 */
int upstream_auth_log_due(struct upstream *up, uint64_t now,
                          unsigned *suppressed);

/* A completed connect + handshake (+ authentication) of `us` microseconds
 * (sampled). */
void upstream_handshake_done(struct upstream *up, uint32_t us);

/* Log this interval's stats line, if there is anything to say, and start
 * the next interval. */
void upstream_log_stats(struct upstream *up);

/* ---- pre-warmed spares ---- */

/* A spare finished its handshake: keep it for a client.  Never fails
 * (at most `prewarm` spares exist). */
void upstream_spare_park(struct upstream *up, struct conn *c);

/* Take a parked spare out (it is closing, or being checked); harmless
 * when it is not parked. */
void upstream_spare_unpark(struct upstream *up, struct conn *c);

/* The most recently parked spare, taken out of the list; NULL when none. */
struct conn *upstream_spare_pop(struct upstream *up);

/*
 * A spare stopped being one: given to a client (ready = 1), or closed,
 * having been ready or not.  A closed one that never got ready is
 * replaced after a backoff that doubles from 100 ms to 30 s; a taken one
 * when upstream_spare_refill says so, or a few milliseconds after.
 */
void upstream_spare_gone(struct upstream *up, int ready);

/* The client that took a spare has its first reply (or is gone): the
 * replacement may start now. */
void upstream_spare_refill(struct upstream *up);

/* ---- idle pool (--reuse) ---- */

/*
 * Whether connections to up may be pooled, for --reuse `mode` and --auth
 * `auth`: off never; on always; auto only where the app cannot have
 * logged in on a connection itself (memtunnel authenticates, or the node
 * has no credentials).  Where a client may log in with an ASCII `set`
 * (credentials, no --auth), up->login_set says that a connection whose
 * first command was a set is never pooled.
 */
void upstream_set_reuse(struct upstream *up, enum config_switch mode,
                        enum config_auth auth);

/* Keep c, idle, for a next client whose tag matches (the protocol the
 * server holds c to; 0 matches any): 0, or -1 when the pool is full or up
 * is stopping (the caller closes c). */
int upstream_pool_put(struct upstream *up, struct conn *c, int tag);

/* Take c out (it is closing); harmless when it is not in the pool. */
void upstream_pool_remove(struct upstream *up, struct conn *c);

/* The most recently pooled connection for `tag` (its own, or 0), taken
 * out; NULL when none. */
struct conn *upstream_pool_pop(struct upstream *up, int tag);

/* Whether any connection is pooled. */
int upstream_pool_any(const struct upstream *up);

/* A client was given a pooled connection. */
void upstream_reused(struct upstream *up);

/* A sentinel went unanswered until the bound: the server does not serve
 * it (memcached before 1.6 has no `mn`), so connections to up are no
 * longer pooled; one warn line says so. */
void upstream_sentinel_unanswered(struct upstream *up);

/* ---- TLS sessions (resume.h) ---- */

/* The resumption bounds, or shorter ones from MEMTUNNEL_TEST_RESUME. */
const struct resume_limits *upstream_resume_limits(void);

/*
 * The session to offer a new connection at `now`, or NULL (none, too old,
 * or offers paused).  The pointer stays up's: the caller hands it to
 * tlsconn_resume, which takes its own reference.  *verified_at is set to
 * the time of the full handshake it descends from.
 */
void *upstream_session_offer(struct upstream *up, uint64_t now,
                             uint64_t *verified_at);

/* A connection's session, verified in full at verified_at and valid until
 * expires_at (0: unknown).  Takes the reference: keeps it, or frees it. */
void upstream_session_keep(struct upstream *up, void *session,
                           uint64_t verified_at, uint64_t expires_at);

/* The offered session was refused at `now`: dropped, offers paused.
 * Returns the pause in milliseconds. */
uint64_t upstream_session_refused(struct upstream *up, uint64_t now);

/* A handshake resumed: the server takes our sessions. */
void upstream_session_resumed(struct upstream *up);

/* ---- certificate dates ---- */

/* Whether a full handshake at `now` should look at the chain's dates:
 * the first one, then one a day (as resumption forces one). */
int upstream_expiry_due(const struct upstream *up, uint64_t now);

/* They were looked at, at `now`. */
void upstream_expiry_checked(struct upstream *up, uint64_t now);

#endif
