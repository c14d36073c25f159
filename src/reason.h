/*
 * reason: why a connection or a check failed, as an enum, and the one
 * table that gives each reason its words.
 *
 * Lower layers (tls, tlsconn, the connection code, check) say why with a
 * `enum reason`; the words that go into a log line's reason= come from
 * the table in reason.c, and so do the log's hint= texts (advice.h turns
 * a reason into advice).  Nothing matches on the English words: rewording
 * a row changes the log, never which advice is given.
 *
 * Pure: no I/O, no state.  A value outside the enum is treated as
 * REASON_OTHER everywhere.
 */
#ifndef MEMTUNNEL_REASON_H
#define MEMTUNNEL_REASON_H

enum reason {
    REASON_OTHER,               /* none of the below; words come with it */

    /* The server's certificate was refused (reason_info()->verify). */
    REASON_NAME_MISMATCH,
    REASON_UNKNOWN_ISSUER,
    REASON_SELF_SIGNED,
    REASON_EXPIRED,
    REASON_NOT_YET_VALID,
    REASON_BAD_SIGNATURE,
    REASON_CHAIN_TOO_LONG,
    REASON_NO_PEER_CERT,
    REASON_VERIFY_FAILED,

    /* The TLS handshake or session failed otherwise. */
    REASON_ALERT,               /* a fatal alert not named below */
    REASON_ALERT_HANDSHAKE_FAILURE,
    REASON_ALERT_BAD_CERTIFICATE,
    REASON_ALERT_CERT_EXPIRED,
    REASON_ALERT_CERT_UNKNOWN,
    REASON_ALERT_ILLEGAL_PARAMETER,
    REASON_ALERT_UNKNOWN_CA,
    REASON_ALERT_PROTOCOL_VERSION,
    REASON_ALERT_INSUFFICIENT_SECURITY,
    REASON_ALERT_INTERNAL_ERROR,
    REASON_ALERT_UNRECOGNIZED_NAME,
    REASON_ALERT_CERT_REQUIRED,
    REASON_VERSION,             /* no protocol version in common */
    REASON_NO_SHARED_SUITE,
    REASON_HANDSHAKE_CLOSED,    /* the server hung up mid-handshake */
    REASON_NOT_TLS,             /* the server answered with something else */
    REASON_DECRYPT,
    REASON_TLS_ERROR,           /* any other TLS library error */
    REASON_OUT_OF_MEMORY,

    /* The network (libuv's and the system's error codes). */
    REASON_CONN_REFUSED,
    REASON_CONN_TIMED_OUT,      /* the kernel gave up (ETIMEDOUT) */
    REASON_HOST_UNREACHABLE,
    REASON_NET_UNREACHABLE,
    REASON_CONN_RESET,
    REASON_BROKEN_PIPE,
    REASON_HOST_NOT_FOUND,
    REASON_DNS_TEMPORARY,
    REASON_NO_ADDRESS,          /* the name resolved to nothing */

    /* Timers and the connection's own ends. */
    REASON_CONNECT_TIMEOUT,     /* --connect-timeout, before TLS */
    REASON_HANDSHAKE_TIMEOUT,   /* --connect-timeout, during TLS */
    REASON_TIMED_OUT,           /* `memtunnel check`: a step's deadline */
    REASON_IDLE_TIMEOUT,
    REASON_TLS_SESSION,         /* no TLS session could be created */
    REASON_CLOSED,              /* close_notify where an answer was due */
    REASON_TRUNCATED,           /* EOF without close_notify, ditto */
    REASON_MALFORMED_REPLY,
    REASON_UNFINISHED,          /* the upstream outlived the client */
    REASON_SPARE_STALE,
    REASON_SPARE_CLOSED,
    REASON_SPARE_UNASKED,
    REASON_POOL_FULL,           /* --reuse: no room in the idle pool */
    /* --auth: the authentication memtunnel does for the client. */
    REASON_AUTH_REFUSED,        /* the server said no to the pair */
    REASON_AUTH_UNSUPPORTED,    /* the server has no such command */
    REASON_AUTH_UNEXPECTED,     /* an answer the mode does not allow */
    REASON_AUTH_TIMEOUT,        /* --connect-timeout, during it */
    REASON_AUTH_CLOSED,         /* the server hung up during it */
    REASON_STOPPING,
    REASON_DONE,

    REASON_COUNT                /* not a reason: the number of them */
};

/* One row of the table. */
struct reason_info {
    const char *words;          /* for reason=, as the log has always said */
    const char *hint;           /* for hint=, or NULL: nothing to add */
    int verify;                 /* 1: the peer's certificate was refused */
    int uv;                     /* the libuv error it stands for, or 0 */
};

/*
 * The row of r; REASON_OTHER's for a value outside the enum.  Never NULL;
 * the row is static.
 */
const struct reason_info *reason_info(enum reason r);

/* reason_info(r)->words: never NULL, static. */
const char *reason_words(enum reason r);

/* 1 when r is a refusal of the peer's certificate, else 0. */
int reason_is_verify(enum reason r);

/*
 * The reason for a libuv error code (negative UV_E*): the table's row
 * whose uv column holds it, else REASON_OTHER.
 */
enum reason reason_from_uv(int uv_err);

/*
 * Words for a libuv error code: the table's words for reason_from_uv(),
 * else libuv's own (uv_strerror).  Never NULL, static.
 */
const char *reason_uv_words(int uv_err);

/* The reason for a positive errno value (ECONNREFUSED, ...). */
enum reason reason_from_errno(int errnum);

/* The reason for a getaddrinfo(3) error code (EAI_NONAME, EAI_AGAIN). */
enum reason reason_from_gai(int gai_err);

#endif
