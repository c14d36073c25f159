/*
 * reason: the table of reasons.  One row per reason: the words the log
 * has always used for it (tests and users grep for them, so a row's words
 * change only on purpose), the hint= the log adds when there is something
 * to do about it, whether it is a certificate refusal, and the libuv error
 * it stands for.  `memtunnel check`'s longer advice is in advice.c.
 */
#include "reason.h"

#include <errno.h>
#include <netdb.h>

#include <uv.h>

/* reason_from_errno relies on libuv's codes being negated errno values,
 * as they are on every Unix. */
_Static_assert(UV_ECONNREFUSED == -ECONNREFUSED && UV_ETIMEDOUT == -ETIMEDOUT,
               "libuv error codes are negated errno values");

/* What to check when a server does not answer --auth as its mode says. */
#define AUTH_MODE_HINT "--auth must match the server: memcachier " \
    "(MemCachier), memcached (memcached -Y), sasl (SASL: Memcached Cloud, " \
    "memcached -S)"

static const struct reason_info table[REASON_COUNT] = {
    [REASON_OTHER] = { "unknown error", NULL, 0, 0 },

    [REASON_NAME_MISMATCH] = { "name mismatch",
        "the certificate does not name this host: set MEMTUNNEL_SNI to a "
        "name it has, or MEMTUNNEL_VERIFY=chain (which trusts any "
        "certificate of the CA); memtunnel check shows the names", 1, 0 },
    [REASON_UNKNOWN_ISSUER] = { "unknown issuer",
        "the CA is not trusted: give it with MEMTUNNEL_CA (PEM text) or "
        "--ca FILE", 1, 0 },
    [REASON_SELF_SIGNED] = { "self-signed certificate",
        "to trust this certificate, give it as MEMTUNNEL_CA", 1, 0 },
    [REASON_EXPIRED] = { "certificate expired",
        "the provider must renew the certificate", 1, 0 },
    [REASON_NOT_YET_VALID] = { "certificate not yet valid",
        "check this machine's clock", 1, 0 },
    [REASON_BAD_SIGNATURE] = { "bad certificate signature", NULL, 1, 0 },
    [REASON_CHAIN_TOO_LONG] = { "certificate chain too long", NULL, 1, 0 },
    [REASON_NO_PEER_CERT] = { "server sent no certificate", NULL, 1, 0 },
    [REASON_VERIFY_FAILED] = { "certificate verification failed", NULL, 1, 0 },

    [REASON_ALERT] = { "server sent a fatal alert", NULL, 0, 0 },
    [REASON_ALERT_HANDSHAKE_FAILURE] = {
        "server sent alert: handshake failure", NULL, 0, 0 },
    [REASON_ALERT_BAD_CERTIFICATE] = {
        "server sent alert: bad certificate", NULL, 0, 0 },
    [REASON_ALERT_CERT_EXPIRED] = {
        "server sent alert: certificate expired", NULL, 0, 0 },
    [REASON_ALERT_CERT_UNKNOWN] = {
        "server sent alert: certificate unknown", NULL, 0, 0 },
    [REASON_ALERT_ILLEGAL_PARAMETER] = {
        "server sent alert: illegal parameter", NULL, 0, 0 },
    [REASON_ALERT_UNKNOWN_CA] = { "server sent alert: unknown CA", NULL, 0, 0 },
    [REASON_ALERT_PROTOCOL_VERSION] = {
        "server sent alert: protocol version", NULL, 0, 0 },
    [REASON_ALERT_INSUFFICIENT_SECURITY] = {
        "server sent alert: insufficient security", NULL, 0, 0 },
    [REASON_ALERT_INTERNAL_ERROR] = {
        "server sent alert: internal error", NULL, 0, 0 },
    [REASON_ALERT_UNRECOGNIZED_NAME] = {
        "server sent alert: unrecognized name", NULL, 0, 0 },
    [REASON_ALERT_CERT_REQUIRED] = {
        "server sent alert: certificate required", NULL, 0, 0 },
    [REASON_VERSION] = { "protocol version not supported", NULL, 0, 0 },
    [REASON_NO_SHARED_SUITE] = { "no cipher suite in common", NULL, 0, 0 },
    [REASON_HANDSHAKE_CLOSED] = {
        "server closed the connection during the handshake", NULL, 0, 0 },
    [REASON_NOT_TLS] = { "server did not speak TLS (plaintext port?)",
        "the provider may serve TLS on another port: set MEMTUNNEL_TLS_PORT",
        0, 0 },
    [REASON_DECRYPT] = { "decryption failed", NULL, 0, 0 },
    [REASON_TLS_ERROR] = { "unknown TLS error", NULL, 0, 0 },
    [REASON_OUT_OF_MEMORY] = { "out of memory", NULL, 0, 0 },

    [REASON_CONN_REFUSED] = { "connection refused",
        "is the upstream up, and the port right? memtunnel check tests "
        "every upstream", 0, UV_ECONNREFUSED },
    [REASON_CONN_TIMED_OUT] = { "connection timed out", NULL, 0, UV_ETIMEDOUT },
    [REASON_HOST_UNREACHABLE] = { "host unreachable", NULL, 0, UV_EHOSTUNREACH },
    [REASON_NET_UNREACHABLE] = { "network unreachable", NULL, 0, UV_ENETUNREACH },
    [REASON_CONN_RESET] = { "connection reset by peer", NULL, 0, UV_ECONNRESET },
    [REASON_BROKEN_PIPE] = { "broken pipe", NULL, 0, UV_EPIPE },
    [REASON_HOST_NOT_FOUND] = { "host name not found",
        "check the server list; the name is looked up again on the next "
        "connection", 0, UV_EAI_NONAME },
    [REASON_DNS_TEMPORARY] = { "temporary DNS failure", NULL, 0, UV_EAI_AGAIN },
    [REASON_NO_ADDRESS] = { "no address", NULL, 0, 0 },

    /* The timeouts say what to do in their words, so no hint. */
    [REASON_CONNECT_TIMEOUT] = { "connect timeout (raise --connect-timeout "
        "if the upstream is far away)", NULL, 0, 0 },
    [REASON_HANDSHAKE_TIMEOUT] = { "handshake timeout (is this a TLS port? "
        "see --tls-port)", NULL, 0, 0 },
    [REASON_TIMED_OUT] = { "timed out (--connect-timeout)", NULL, 0, 0 },
    [REASON_IDLE_TIMEOUT] = { "no traffic for --idle-timeout", NULL, 0, 0 },
    [REASON_TLS_SESSION] = { "cannot create a TLS session: out of file "
        "descriptors or memory", NULL, 0, 0 },
    [REASON_CLOSED] = { "the server closed the connection", NULL, 0, 0 },
    [REASON_TRUNCATED] = { "the server closed the connection without a TLS "
        "close_notify", NULL, 0, 0 },
    [REASON_MALFORMED_REPLY] = { "malformed reply", NULL, 0, 0 },
    [REASON_UNFINISHED] = { "upstream did not finish after the client "
        "closed", NULL, 0, 0 },
    [REASON_SPARE_STALE] = { "unused for too long", NULL, 0, 0 },
    [REASON_SPARE_CLOSED] = { "the server closed an idle connection", NULL, 0, 0 },
    [REASON_SPARE_UNASKED] = { "the server sent data unasked", NULL, 0, 0 },
    [REASON_POOL_FULL] = { "the idle pool is full", NULL, 0, 0 },
    [REASON_AUTH_REFUSED] = { "the server refused the credentials",
        "check the pair memtunnel sends (MEMTUNNEL_USERNAME and "
        "MEMTUNNEL_PASSWORD, else the pair beside the node's variable) and "
        "that --auth names the provider's scheme; memtunnel check --auth "
        "tries it", 0, 0 },
    [REASON_AUTH_UNSUPPORTED] = {
        "the server does not take this authentication",
        AUTH_MODE_HINT, 0, 0 },
    [REASON_AUTH_UNEXPECTED] = { "unexpected answer to the authentication",
        AUTH_MODE_HINT, 0, 0 },
    [REASON_AUTH_TIMEOUT] = { "no answer to the authentication in time",
        "the server took longer than --connect-timeout; check that --auth "
        "matches the server", 0, 0 },
    [REASON_AUTH_CLOSED] = {
        "the server closed the connection during the authentication",
        AUTH_MODE_HINT, 0, 0 },
    [REASON_STOPPING] = { "memtunnel is stopping", NULL, 0, 0 },
    [REASON_DONE] = { "done", NULL, 0, 0 },
};

const struct reason_info *reason_info(enum reason r)
{
    /* Compared as unsigned: a negative value is out of range too. */
    if ((unsigned)r >= REASON_COUNT || table[r].words == NULL)
        return &table[REASON_OTHER];
    return &table[r];
}

const char *reason_words(enum reason r)
{
    return reason_info(r)->words;
}

int reason_is_verify(enum reason r)
{
    return reason_info(r)->verify;
}

enum reason reason_from_uv(int uv_err)
{
    if (uv_err >= 0)
        return REASON_OTHER;
    for (unsigned i = 0; i < REASON_COUNT; i++)
        if (table[i].uv == uv_err)
            return (enum reason)i;
    return REASON_OTHER;
}

const char *reason_uv_words(int uv_err)
{
    enum reason r = reason_from_uv(uv_err);
    return r != REASON_OTHER ? reason_words(r) : uv_strerror(uv_err);
}

enum reason reason_from_errno(int errnum)
{
    return errnum > 0 ? reason_from_uv(-errnum) : REASON_OTHER;
}

enum reason reason_from_gai(int gai_err)
{
    switch (gai_err) {
    case EAI_NONAME: return REASON_HOST_NOT_FOUND;
    case EAI_AGAIN: return REASON_DNS_TEMPORARY;
    default: return REASON_OTHER;
    }
}
