/*
 * servers: the host and port grammar of SPEC §2 and §3.
 *
 * servers.c implements config_parse_servers() and config_server_str(),
 * declared in config.h, and the two helpers below that config.c needs for
 * --sni and --listen.  Pure code: no I/O, no globals.
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

#endif
