/*
 * conn_int.h: one tunnelled connection, shared by the files of the conn
 * module: conn.c (its life: accept or take a spare, timers, close),
 * conn_setup.c (resolve, connect, handshake and verify), conn_auth.c (the
 * login of --auth), conn_io.c (its bytes: both directions, backpressure,
 * half-close) and conn_reuse.c (--reuse: the framers, the sentinel, the
 * idle pool).  Not for other modules.
 *
 * Every accepted local connection ("client") gets its own TLS connection
 * to its listener's upstream:
 *
 *   accept ──▶ RESOLVING ──▶ CONNECTING ──▶ HANDSHAKING ──▶ OPEN ──▶ closed
 *                 │               │               │    │       ▲
 *                 │               │               │    └─▶ AUTHENTICATING
 *                 └── failure, or the connect timeout: close ──┘  (--auth)
 *
 *   RESOLVING    async getaddrinfo (skipped for IP literals)
 *   CONNECTING   non-blocking TCP connect to the upstream
 *   HANDSHAKING  TLS handshake and certificate verification; the client is
 *                not read yet, so no client byte can reach an unverified peer
 *   AUTHENTICATING  --auth: our login and the server's answer, which we
 *                consume; still no client byte
 *   OPEN         bytes both ways, unchanged
 *
 * One timer per connection bounds connect + handshake, then serves as the
 * idle timer, and after the client's EOF bounds how long we wait for the
 * upstream to finish.
 *
 * Data path.  Socket reads land in one loop-wide buffer: client bytes are
 * encrypted from it at once into tls.out; upstream ciphertext is lent to
 * wolfSSL, which decrypts into a second loop-wide buffer, from which the
 * plaintext is written to the client with uv_try_write.  Only what a socket
 * does not take at once is copied into a per-connection queue.  Each
 * direction keeps one uv_write in flight (the queue is swapped into an
 * "inflight" buffer that libuv owns until the callback).
 *
 * Backpressure.  When a direction's queued bytes pass HIGH_WATER we stop
 * reading the socket that feeds it, and resume below LOW_WATER, so a client
 * that never reads holds memtunnel's memory to about HIGH_WATER + a read.
 *
 * Close.  Client EOF: send close_notify, shut the upstream's write side
 * down once flushed, and keep delivering the upstream's remaining bytes.
 * Upstream close_notify or EOF: flush what is queued for the client, then
 * shut the client down and close.  Errors close both sides at once.
 *
 * Reuse (--reuse).  While a connection may still be reused, mcframe
 * follows both directions.  When the client ends at a request boundary,
 * a sentinel goes up instead of close_notify ("draining"); the replies
 * still flow to the client, and the sentinel's answer, which never does,
 * proves that all of them came.  Once the client's queue is written
 * ("drained"), the client's handle alone is closed and the connection,
 * OPEN and without a client, waits in its upstream's idle pool
 * ("pooled") for the next client, as a spare does.  Any doubt: it is
 * finished as before, closing both sides.
 *
 * Lifetime.  A connection counts its open handles and outstanding requests
 * in `pending`; every callback decrements it and the last one frees the
 * connection.  Once `closing` is set, callbacks only do that.
 */
#ifndef MEMTUNNEL_CONN_INT_H
#define MEMTUNNEL_CONN_INT_H

#include <netdb.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "conn.h"
#include "log.h"
#include "mcframe.h"
#include "reason.h"
#include "tlsconn.h"
#include "upstream.h"

enum conn_state {
    CONN_RESOLVING,
    CONN_CONNECTING,
    CONN_HANDSHAKING,
    CONN_AUTHENTICATING,
    CONN_OPEN,
};

/* --reuse: both directions framed; made at the client's first byte. */
struct conn_reuse {
    struct mcreq req;
    struct mcreply reply;
    unsigned char held[MCFRAME_SENTINEL_MAX];   /* server bytes kept back:
                                                   reply.held of them */
};

struct conn {
    struct conn_env *env;
    struct upstream *up;
    struct conn *prev, *next;            /* env->conns */
    enum conn_state state;
    int pending;                         /* handles + requests outstanding */
    int closing;

    uv_tcp_t client;
    uv_tcp_t upstream;
    uv_timer_t timer;
    uv_getaddrinfo_t resolve;
    struct addrinfo *addrs, *next_addr;  /* resolved, tried in order */
    uv_connect_t connect;
    uv_write_t client_write, upstream_write;
    uv_shutdown_t client_shutdown, upstream_shutdown;
    int upstream_inited;

    struct tlsconn tls;                  /* tls.out: ciphertext queued */
    int tls_inited;
    struct buf upstream_inflight;        /* ciphertext owned by a uv_write */
    struct buf to_client;                /* plaintext queued for the client */
    struct buf client_inflight;          /* plaintext owned by a uv_write */
    struct buf auth_in;                  /* the answer to our login, so far */

    unsigned client_reading : 1, upstream_reading : 1;
    unsigned client_writing : 1, upstream_writing : 1;
    unsigned client_eof : 1, upstream_done : 1;
    unsigned client_shut : 1, upstream_shut : 1;
    unsigned awaiting : 1;               /* sent upstream, no reply since */
    unsigned framing : 1;                /* may still be reused: rz follows */
    unsigned draining : 1;               /* the sentinel is out */
    unsigned drained : 1;                /* its answer came: detach the
                                            client once its queue is out */
    unsigned pooled : 1;                 /* idle in up's pool, no client */
    unsigned lobby : 1;                  /* a client whose first bytes
                                            choose its connection */
    int pool_proto;                      /* pooled: the protocol the server
                                            holds it to (MCFRAME_NONE: any) */
    struct buf early;                    /* the client's first bytes, read
                                            in the lobby, until OPEN */
    struct conn_reuse *rz;               /* NULL until the first byte */

    uint64_t started, last_active;       /* loop time, ms */
    uint64_t started_ns;                 /* for the handshake time */
    int counted;                         /* upstream_client_accepted */
    int has_client;                      /* `client` is an initialised handle */
    int spare;                           /* pre-warmed, waiting for a client */
    int parked;                          /* in up's ready spares */
    int refill_owed;                     /* was a spare: replace it after the
                                            first reply (upstream_spare_refill) */
    int session_kept;                    /* our session was offered to up */
    int offered_session;                 /* this handshake tries to resume */
    int full_handshake;                  /* resuming was refused: don't */
    uint64_t verified_at;                /* loop time of the full handshake
                                            our session descends from */
    struct sockaddr_storage peer;        /* the address being connected to */
    uint64_t bytes_up, bytes_down;       /* plaintext, client's view */
};

/* conn.c */

/* The one way a connection ends: logs `at` with why (in `words` when given,
 * else the reason's own) and its hint at warn and above, when `at` is given;
 * closes every handle; the last callback frees the connection.
 * Idempotent; `c` must not be used by a caller that may have closed it
 * unless it checks c->closing (the memory lives until the callbacks ran). */
void conn_close(struct conn *c, enum log_level level, const char *at,
                enum reason why, const char *words);

/* conn_close with a libuv error's reason and words, or the TLS session's
 * (tlsconn_reason_code, tlsconn_reason). */
void conn_close_uv(struct conn *c, enum log_level level, const char *at,
                   int err);
void conn_close_tls(struct conn *c, enum log_level level, const char *at);

/* Drop one of the references counted in c->pending; the last frees. */
void conn_unref(struct conn *c);

/* Re-arm the timer for what an open connection needs now. */
void conn_arm_timer(struct conn *c);

/* The timer's callback, for every state (conn_setup.c arms it). */
void conn_on_timer(uv_timer_t *timer);

/* The lobby's client sent its first bytes (p, n): its protocol picks a
 * pooled connection of the same, else a spare, else this connection
 * connects, with the bytes waiting until it is open. */
void conn_lobby_first(struct conn *c, const char *p, size_t n);

/* conn_setup.c */

/* Resolve (unless the upstream is an IP literal), connect, handshake; the
 * connect timeout is armed.  On success the connection opens (a client's
 * bytes start to flow, or a spare is parked). */
void conn_setup_start(struct conn *c);

/* Drive the TLS handshake with what arrived. */
void conn_setup_handshake(struct conn *c);

/* The handshake (and login) is done: the connection opens, for its
 * client or as a ready spare. */
void conn_setup_opened(struct conn *c);

/* With --verify none, the warn line every connection gets (a reused one
 * too: the client is new). */
void conn_setup_warn_unverified(struct conn *c);

/* conn_auth.c */

/* Send the login of --auth over the verified session and wait for the
 * answer; opens the connection once it is a success. */
void conn_auth_start(struct conn *c);

/* Read what arrived of the answer. */
void conn_auth_read(struct conn *c);

/* The login failed (why, with words or the reason's own): one rate-
 * limited error line, counted, and the connection closes. */
void conn_auth_failed(struct conn *c, enum reason why, const char *words);

/* conn_reuse.c */

/* A client attaches: framing starts when up allows reuse. */
void conn_reuse_attach(struct conn *c);

/* Client bytes on their way up. */
void conn_reuse_request(struct conn *c, const char *p, size_t n);

/* n server bytes just decrypted at p, with MCFRAME_SENTINEL_MAX bytes of
 * room after them: leaves the client's bytes at p (bytes kept back from
 * earlier come first) and returns their count; keeps back what may be the
 * sentinel's answer, and notes the answer. */
size_t conn_reuse_reply(struct conn *c, char *p, size_t n);

/* The client ended (EOF): send the sentinel and return 1 when the
 * connection may be kept; 0 to finish it as before. */
int conn_reuse_start(struct conn *c);

/* Once the sentinel's answer came and the client's queue is written: the
 * client is closed and the connection pooled (or closed).  Returns 1 when
 * the connection is draining or drained (the caller leaves it be). */
int conn_reuse_settle(struct conn *c);

/* conn_io.c */

/* Keep this connection's TLS session for the next one (once). */
void conn_io_keep_session(struct conn *c);


/* Decrypt and deliver what can be; pause the upstream above the mark. */
void conn_io_down(struct conn *c);

/* Send what wolfSSL left in tls.out; pause or resume the client. */
void conn_io_flush_upstream(struct conn *c);

/* Read the upstream socket, or stop reading it (idempotent). */
void conn_io_upstream_read_start(struct conn *c);
void conn_io_upstream_read_stop(struct conn *c);

/* The handshake verified and a client is attached: let bytes flow (the
 * early ones first). */
void conn_io_start(struct conn *c);

/* Read a lobby's client for its first bytes. */
void conn_io_lobby_start(struct conn *c);

/* Client bytes, read or early: framed, encrypted and sent up. */
void conn_io_client_bytes(struct conn *c, const char *p, size_t n);

/* Bytes queued for the client: in the queue or in a write. */
size_t conn_io_queued_down(const struct conn *c);

/* Whether the upstream owes this connection a reply (for --busy-poll's
 * choice of window); set when client bytes go up, cleared by the reply
 * and when the connection closes. */
void conn_io_await(struct conn *c, int on);

#endif
