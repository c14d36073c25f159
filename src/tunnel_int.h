/*
 * What tunnel.c (listeners, lifecycle) and conn.c (one connection's state
 * machine) share.  Not for other modules.
 */
#ifndef MEMTUNNEL_TUNNEL_INT_H
#define MEMTUNNEL_TUNNEL_INT_H

#include <netinet/in.h>
#include <uv.h>

#include "config.h"
#include "resume.h"
#include "spin.h"
#include "stats.h"
#include "tls.h"
#include "tunnel.h"

#define IO_CHUNK (64 * 1024)

/* One upstream node and the local listener that leads to it. */
struct upstream {
    struct tunnel *tunnel;
    const struct config_server *server;
    char name[CONFIG_HOST_MAX + 10];     /* "host:port" for logs */
    char port[8];
    const char *tls_name;                /* checked and sent as SNI */
    int tls_name_is_ip;
    struct sockaddr_storage addr;        /* for IP literals */
    int have_addr;
    uv_tcp_t listener;
    int listening;
    char local[CONFIG_HOST_MAX + 10];    /* bound address, "ip:port" */
    struct stats stats;
    void *session;                       /* last TLS session, for resumption */
    struct conn *ready;                  /* pre-warmed, verified, unused */
    int expiry_checked;                  /* the chain's dates were looked at */
    uint64_t expiry_checked_at;          /* loop time of that look */
    struct resume resume;                /* whether to offer `session` */
    uint64_t accept_logged;              /* loop time of the last such line */
    unsigned accept_failures, shed;      /* since that line */
    unsigned spares;                     /* pre-warmed: ready or on the way */
    unsigned spare_failures;             /* in a row, for the backoff */
    uv_timer_t spare_timer;              /* backoff before the next spare */
    uv_timer_t refill_timer;             /* bounds a deferred replacement */
    int refill_deferred;                 /* a taken spare is not replaced yet */
    uv_timer_t reopen_timer;             /* a paused listener's reopening */
    int paused;                          /* listener closed: out of fds */
    int keep_fd;                         /* the listening socket, held while
                                            the handle is closed (paused) */
};

struct conn;

struct tunnel {
    uv_loop_t *loop;
    const struct config *cfg;
    struct tls_ctx *tls;
    struct upstream *ups;
    size_t nups;
    struct conn *conns;                  /* every live connection */
    int closed;
    uv_timer_t drain_timer;              /* bounds tunnel_close's grace */
    int draining;
    tunnel_fatal_cb on_fatal;
    void *fatal_arg;
    int fatal;
    uv_timer_t stats_timer;
    int stats_on;
    int spares_on;                       /* the upstreams' spare timers exist */
    uint32_t rng;                        /* xorshift state, for sampling */
    int reserve_fd;                      /* given up to shed when out of fds */
    int no_reserve;                      /* MEMTUNNEL_TEST_NO_RESERVE */
    size_t nconns, peak;                 /* connections now, and the peak */
    struct spin spin;                    /* --busy-poll */
    char rbuf[IO_CHUNK];                 /* socket reads, consumed in read_cb */
    char pbuf[IO_CHUNK];                 /* decrypted plaintext, likewise */
};

/* Accept one connection on up's listener and start tunnelling it. */
void conn_accept(struct upstream *up);

/* Start a pre-warmed connection to up (tunnel.c keeps the count). */
void conn_prewarm(struct upstream *up);

/* A spare stopped being one: taken by a client (ready = 1), or closed,
 * having been ready or not.  tunnel.c replaces it; a taken one only when
 * tunnel_spare_refill says so, or after a few milliseconds. */
void tunnel_spare_gone(struct upstream *up, int ready);

/* The client that took a spare has its first reply (or is gone): the
 * replacement may start now. */
void tunnel_spare_refill(struct upstream *up);

/* Close every connection, or (all == 0) those not yet open; spares
 * always. */
void conn_close_all(struct tunnel *t, int all);

/* Record a completed connect + handshake of `us` microseconds. */
void tunnel_sample_handshake(struct upstream *up, uint32_t us);

/* conn.c reports every connection made (+1) and freed (-1). */
void tunnel_conn_count(struct tunnel *t, int delta);

/* conn.c calls this when it freed the last connection of a draining
 * tunnel. */
void tunnel_drained(struct tunnel *t);

#endif
