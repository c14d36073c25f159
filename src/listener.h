/*
 * listener: what an error from accept(2) on a listening socket means for
 * the listener.  Pure, so that the mapping is table-tested.
 */
#ifndef MEMTUNNEL_LISTENER_H
#define MEMTUNNEL_LISTENER_H

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
 * short-lived lack of memory.  Anything not known to pass is fatal: a
 * listener that cannot accept would leave the app without its cache.
 */
enum listener_accept_kind listener_accept_error_kind(int uv_err);

#endif
