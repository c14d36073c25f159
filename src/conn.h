/*
 * conn: tunnelled connections.  Every accepted local connection ("client")
 * gets its own TLS connection to its listener's upstream, or a pre-warmed
 * one; conn_int.h has the state diagram, the data path and the lifetime
 * rule.
 *
 * The module keeps the registry of its live connections in a struct
 * conn_env, which also carries what all of them share (the loop, the
 * configuration, the TLS context, the busy-poll state and the read
 * buffers).  A connection reports its end through the env's one hook;
 * everything about its upstream goes through upstream_* calls.
 */
#ifndef MEMTUNNEL_CONN_H
#define MEMTUNNEL_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "listener.h"
#include "spin.h"
#include "tls.h"
#include "upstream.h"

#define CONN_IO_CHUNK (64 * 1024)

struct conn;

/* A connection was freed; conn_live() tells how many are left. */
typedef void (*conn_ended_fn)(void *arg);

struct conn_env {
    /* Set by conn_env_init, then only read. */
    uv_loop_t *loop;
    const struct config *cfg;
    struct tls_ctx *tls;
    struct spin *spin;
    conn_ended_fn ended;
    void *arg;
    /* The conn module's alone. */
    struct conn *conns;                  /* every live connection */
    size_t live, peak;                   /* their number, and its peak */
    uint64_t rng;                        /* the sentinels' opaques */
    char rbuf[CONN_IO_CHUNK];            /* socket reads, consumed in read_cb */
    char pbuf[CONN_IO_CHUNK];            /* decrypted plaintext, likewise */
};

void conn_env_init(struct conn_env *env, uv_loop_t *loop,
                   const struct config *cfg, struct tls_ctx *tls,
                   struct spin *spin, conn_ended_fn ended, void *arg);

/* A client waits on l, which leads to up: take it, with a ready spare of
 * up's or a new upstream connection.  Failures are logged. */
void conn_accept(struct conn_env *env, struct upstream *up, struct listener *l);

/* Start a pre-warmed connection to up (an upstream_spare_fn: env is the
 * struct conn_env). */
void conn_prewarm(void *env, struct upstream *up);

/* Close every connection, or (all == 0) those not yet open and the
 * spares. */
void conn_close_all(struct conn_env *env, int all);

/* Connections alive (their memory not yet freed). */
size_t conn_live(const struct conn_env *env);

#endif
