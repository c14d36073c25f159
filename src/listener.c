/*
 * listener: the meaning of accept errors.
 */
#include "listener.h"

#include <uv.h>

enum listener_accept_kind listener_accept_error_kind(int uv_err)
{
    switch (uv_err) {
    case UV_EMFILE:
    case UV_ENFILE:
        return LISTENER_SHED;
    /* Errors of the one connection being taken (accept(2), Linux). */
    case UV_ENETDOWN:
    case UV_EPROTO:
    case UV_ENOPROTOOPT:
    case UV_EHOSTDOWN:
    case UV_ENONET:
    case UV_EHOSTUNREACH:
    case UV_ENOTSUP:            /* EOPNOTSUPP on Linux */
    case UV_ENETUNREACH:
    case UV_EPERM:              /* refused by a firewall rule */
    case UV_ECONNABORTED:
    case UV_ETIMEDOUT:
    /* Passing shortages, and what libuv retries itself. */
    case UV_ENOMEM:
    case UV_ENOBUFS:
    case UV_EINTR:
    case UV_EAGAIN:
        return LISTENER_RETRY;
    default:
        return LISTENER_FATAL;
    }
}
