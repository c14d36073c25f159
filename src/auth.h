/*
 * auth: the authentication memtunnel does for the client (--auth), as
 * bytes: the request for a mode and a pair, and the judgement of the
 * server's answer.  Pure: no I/O, no state.  The connection code
 * (conn_auth.c) and `memtunnel check` send and read; config checks a
 * username against the mode's rules.
 *
 *   memcachier  set <user> 0 0 <len>\r\n<pass>\r\n          -> STORED
 *   memcached   set memtunnel 0 -1 <len>\r\n<user> <pass>\r\n -> STORED
 *               (memcached -Y ignores key, flags and exptime; -1 makes
 *               a memcached without -Y store nothing readable)
 *   sasl        binary SASL_AUTH "PLAIN", \0user\0pass      -> status 0
 */
#ifndef MEMTUNNEL_AUTH_H
#define MEMTUNNEL_AUTH_H

#include <stddef.h>

#include "config.h"
#include "reason.h"

/* The longest answer read: a text line, or a binary header and body. */
#define AUTH_REPLY_MAX 1024

enum auth_verdict {
    AUTH_MORE,          /* the answer is not all in yet */
    AUTH_OK,            /* authenticated; the answer was all of the bytes */
    AUTH_FAILED,        /* refused or not understood: *why says which */
};

/* "memcachier", "memcached", "sasl", "none". */
const char *auth_mode_word(enum config_auth mode);

/*
 * Whether user can be sent in mode: 0, or -1 with what is wrong in *why
 * (static words).  memcachier sends it as a key (1..250 bytes, no space
 * or control byte); memcached as the first word of the value (no space,
 * CR or LF); sasl anything without a NUL.
 */
int auth_user_ok(enum config_auth mode, const char *user, const char **why);

/*
 * The request authenticating as user with pass in mode, into a new
 * buffer: *out (*len bytes).  It holds the password: release it with
 * auth_request_free, which wipes it.  Returns 0, or -1 when out of memory
 * or for mode none.
 */
int auth_request(enum config_auth mode, const char *user, const char *pass,
                 unsigned char **out, size_t *len);

void auth_request_free(unsigned char *p, size_t len);

/*
 * The server's answer so far, p[0..n): AUTH_MORE while it may still come
 * whole, AUTH_OK when it is exactly one success (nothing after it: the
 * client has not spoken, so any more is wrong), or AUTH_FAILED with *why:
 * REASON_AUTH_REFUSED, REASON_AUTH_UNSUPPORTED or REASON_AUTH_UNEXPECTED.
 */
enum auth_verdict auth_reply(enum config_auth mode, const unsigned char *p,
                             size_t n, enum reason *why);

#endif
