/*
 * servers: the host and port grammar of SPEC §2 and §3.
 *
 * Server lists, their items' text, and the two helpers that config.c
 * needs for --sni and --listen.  Pure code: no I/O, no globals.
 */
#ifndef MEMTUNNEL_SERVERS_H
#define MEMTUNNEL_SERVERS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/*
 * NULL if s (n bytes) is a valid DNS host name — letters, digits, '-', '_'
 * and '.', labels of 1 to 63 characters not starting or ending with '-',
 * at most 253 characters, one trailing dot allowed, not all digits and
 * dots — else a fixed reason ("has an empty label", …) meant to follow the
 * quoted name in a message.
 */
const char *servers_check_name(const char *s, size_t n);

/*
 * Parse a listen address: PORT (on 127.0.0.1), IPv4:PORT, [IPv6]:PORT or
 * localhost:PORT, port 0 to 65535.  Fills host (no brackets), *family,
 * *port and *loopback (127.0.0.0/8 or ::1).  Returns 0, or -1 with a
 * one-line reason in why (len bytes) that does not repeat the input.
 */
int servers_parse_listen(const char *s, char host[CONFIG_HOST_MAX + 1],
                         enum config_family *family, uint16_t *port,
                         int *loopback, char *why, size_t len);

/*
 * Parse one server list ("host:port,host,[::1]:11212 …"; commas and/or
 * white space separate items, empty items are skipped).  `name` is the flag
 * or variable it came from, used in error messages.  tls_port, when not 0,
 * replaces every port.  On success *out is a malloc'd array of *n >= 1
 * servers and 0 is returned; on failure -1 with *err filled in (status
 * EXIT_CONFIG).
 */
int servers_parse(const char *name, const char *text, uint16_t tls_port,
                         struct config_server **out, size_t *n,
                         struct config_error *err);

/* "host:port", with brackets for IPv6, into buf.  Returns buf. */
char *servers_str(const struct config_server *s, char *buf, size_t len);

#endif
