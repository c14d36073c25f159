/*
 * check: `memtunnel check [OPTIONS] [--json]`, a diagnosis of every
 * upstream (SPEC §2).  Implemented in check.c and check_print.c.  (The
 * header is not called check.h: the unit tests put src/ on the include path,
 * where that name would hide the Check framework's <check.h>.)
 *
 * For each server of the configuration, in order: resolve, connect,
 * handshake and verify exactly as the tunnel would, then show what was
 * found (addresses, times, protocol and suite, whether a second handshake
 * resumed the session, the certificate chain with its dates), a verdict in
 * plain words with what to set when it fails, and a memcache round trip
 * through the TLS connection: `version`, or with the node's SASL
 * credentials in the environment a binary-protocol VERSION, list of
 * mechanisms and PLAIN login.  A node's credentials are the pair beside
 * the variable its address came from, or MEMTUNNEL_USERNAME/_PASSWORD
 * (SPEC §3a); none go to a peer that was not verified (--verify none).
 * The password is never printed.
 */
#ifndef MEMTUNNEL_CHECK_MODE_H
#define MEMTUNNEL_CHECK_MODE_H

#include <stdio.h>

#include "config.h"
#include "exitcode.h"
#include "tls.h"

/*
 * Check every upstream of cfg with tls (a context made by tls_ctx_new for
 * cfg, after tlsconn_setup_ctx).  Writes one block per upstream to out as
 * it goes, or with json set one JSON document; certificates that expire
 * within cfg->expiry_warn_days also get a warn line on the log.  Blocking:
 * every step (each connect attempt, the handshake, the round trip) is
 * bounded by cfg->connect_timeout_ms; name resolution by the resolver's own
 * limits.  SASL credentials are read from the environment.  Returns 0 when
 * every upstream passed, EXIT_UNAVAILABLE otherwise.
 */
int check_run(const struct config *cfg, struct tls_ctx *tls, int json, FILE *out);

#endif
