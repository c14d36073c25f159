/*
 * tunnel: the listeners (one per upstream, in order) and the connections
 * that pair each accepted local client with its own TLS connection to that
 * client's upstream, on one libuv loop.
 */
#ifndef MEMTUNNEL_TUNNEL_H
#define MEMTUNNEL_TUNNEL_H

#include <stddef.h>
#include <uv.h>

#include "config.h"
#include "runerror.h"
#include "tls.h"

struct tunnel;

/*
 * Create the tunnel for cfg->servers.  cfg and tls must outlive it.
 * Returns NULL when out of memory.
 */
struct tunnel *tunnel_new(uv_loop_t *loop, const struct config *cfg,
                          struct tls_ctx *tls);

/*
 * Bind and listen on every local address, in order, and log one
 * "listening" line each.  Returns 0, or a negative UV_E* code with *err
 * naming the address that failed (nothing is left listening then).
 */
int tunnel_listen(struct tunnel *t, struct run_error *err);

/* "127.0.0.1:11211,127.0.0.1:11212": the bound listeners, in order. */
size_t tunnel_addresses(const struct tunnel *t, size_t first, size_t count,
                        char *buf, size_t len);

/*
 * Called once when the tunnel cannot go on (a listener failed): the
 * process-fatal path of SPEC §4.  reason is a fixed string.
 */
typedef void (*tunnel_fatal_cb)(void *arg, const char *reason);
void tunnel_on_fatal(struct tunnel *t, tunnel_fatal_cb cb, void *arg);

/* Report a fatal error through the callback above (also used by main for
 * failures outside the tunnel). */
void tunnel_fatal(struct tunnel *t, const char *reason);

/*
 * Stop accepting.  Connections still being set up are closed; open ones
 * may finish what they carry (a client that has gone has its last bytes
 * flushed upstream) for up to grace_ms, then everything is closed and the
 * loop runs dry.  grace_ms 0 closes at once.  Idempotent.  tunnel_free may
 * only be called after uv_run returned.
 */
void tunnel_close(struct tunnel *t, uint32_t grace_ms);
void tunnel_free(struct tunnel *t);

#endif
