/*
 * listener: one local listening socket, and what happens when descriptors
 * run out.  Accepting never fails silently: a connection that cannot be
 * taken is shed (accepted and closed at once, so its client sees a closed
 * connection rather than a hang) or waits in the kernel's backlog while
 * the listener pauses, and a broken listening socket is reported through
 * the fatal hook, because a listener that cannot accept would leave the app
 * without its cache.
 *
 * The listener calls nothing above it: a client waiting to be taken is
 * announced through the client hook, which takes it with listener_accept.
 */
#ifndef MEMTUNNEL_LISTENER_H
#define MEMTUNNEL_LISTENER_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "config.h"

enum listener_accept_kind {
    LISTENER_RETRY,     /* one connection failed: log it, keep accepting */
    LISTENER_SHED,      /* out of descriptors: shed what waits, or pause */
    LISTENER_FATAL,     /* the listening socket itself is broken */
};

/*
 * Classify a negative UV_E* code from an accept on a listener.  Linux's
 * accept(2) passes errors pending on the new connection (ENETDOWN, EPROTO,
 * ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH)
 * and firewall refusals (EPERM) through to the caller: they are about that
 * one connection, as are a connection aborted before it was taken and a
 * short-lived lack of memory.  Anything not known to pass is fatal.  Pure.
 */
enum listener_accept_kind listener_accept_error_kind(int uv_err);

/*
 * The descriptor kept in reserve for all the listeners of a loop: given up
 * to shed waiting clients when descriptors run out, taken back after.
 * MEMTUNNEL_TEST_NO_RESERVE=1 (tests only) keeps none, as when lookups on
 * the thread pool have taken it, so that running out pauses the listener
 * for certain.
 */
struct listener_reserve {
    int fd;                  /* -1: not held */
    int disabled;            /* MEMTUNNEL_TEST_NO_RESERVE */
};

void listener_reserve_init(struct listener_reserve *r);

/* Hold the reserve again if it is not held (after a connection closed). */
void listener_reserve_take(struct listener_reserve *r);

/* Once every listener of loop is open: hold the reserve.  With the test
 * hook, libuv's own reserve (taken before our callback runs) is moved above
 * 1000, where giving it up frees no descriptor a low limit could use. */
void listener_reserve_ready(struct listener_reserve *r, uv_loop_t *loop);

void listener_reserve_free(struct listener_reserve *r);

struct listener;

/* A client waits: take it with listener_accept (or it is lost). */
typedef void (*listener_client_fn)(void *arg, struct listener *l);

/* The listener cannot go on; reason is libuv's words.  Called once. */
typedef void (*listener_fatal_fn)(void *arg, struct listener *l,
                                  const char *reason);

struct listener {
    char local[CONFIG_HOST_MAX + 10];    /* bound address, "ip:port"; read by
                                            others, written here only */
    /* The rest is listener.c's alone. */
    uv_loop_t *loop;
    uv_tcp_t handle;
    int listening;                       /* handle initialised, not closed */
    int keep_fd;                         /* the listening socket, held while
                                            the handle is closed (paused) */
    int paused, failed, closed;
    uv_timer_t reopen_timer;
    int timer_inited;
    uint64_t accept_logged;              /* loop time of the last such line */
    unsigned accept_failures, shed;      /* since that line */
    struct listener_reserve *reserve;
    listener_client_fn on_client;
    listener_fatal_fn on_fatal;
    void *arg;
};

/*
 * Bind addr (flags as uv_tcp_bind's), listen, and fill in l->local.
 * Returns 0 or a negative UV_E* code; after a failure, as after success,
 * listener_close releases what was made.
 */
int listener_open(struct listener *l, uv_loop_t *loop,
                  const struct sockaddr *addr, unsigned flags,
                  struct listener_reserve *reserve, listener_client_fn on_client,
                  listener_fatal_fn on_fatal, void *arg);

/* Take the waiting client into `client` (an initialised handle).
 * Returns 0 or a negative UV_E* code (that client is lost, and logged). */
int listener_accept(struct listener *l, uv_tcp_t *client);

/* Stop listening and release the port.  Idempotent. */
void listener_close(struct listener *l);

#endif
