/*
 * listener: one listening socket, and running out of descriptors.
 */
#include "listener.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"

#define LISTEN_BACKLOG 4096

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

/* ---- the reserve descriptor ------------------------------------------------ */

void listener_reserve_init(struct listener_reserve *r)
{
    r->fd = -1;
    r->disabled = getenv("MEMTUNNEL_TEST_NO_RESERVE") != NULL;
}

void listener_reserve_take(struct listener_reserve *r)
{
    if (r->fd < 0 && !r->disabled)
        r->fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void listener_reserve_ready(struct listener_reserve *r, uv_loop_t *loop)
{
    listener_reserve_take(r);
    if (r->disabled && loop->emfile_fd >= 0) {
        int high = fcntl(loop->emfile_fd, F_DUPFD_CLOEXEC, 1000);
        if (high >= 0) {
            close(loop->emfile_fd);
            loop->emfile_fd = high;
        }
    }
}

void listener_reserve_free(struct listener_reserve *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}

/*
 * Out of descriptors, the waiting connections cannot be accepted, and the
 * listener stays readable: the loop would spin.  Like libuv's own trick
 * (which needs a descriptor reserved when the loop was made), give up the
 * one descriptor kept for this, accept and close what waits, and take it
 * back.  Those clients see their connection closed instead of hanging.
 */
static unsigned shed(struct listener_reserve *r, int lfd)
{
    unsigned n = 0;
    int fd;

    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    while (n < 10000 && (fd = accept(lfd, NULL, NULL)) >= 0) {
        close(fd);
        n++;
    }
    listener_reserve_take(r);
    return n;
}

/* A listener that cannot accept would leave the app without its cache. */
static void failed(struct listener *l, int err)
{
    if (l->failed)
        return;
    l->failed = 1;
    l->on_fatal(l->arg, l, uv_strerror(err));
}

/* At most one accept-failed line a second per listener, with a count. */
static void log_accept_failed(struct listener *l, int status, unsigned shed)
{
    uint64_t now = uv_now(l->loop);
    l->accept_failures++;
    l->shed += shed;
    if (l->accept_logged && now - l->accept_logged < 1000)
        return;
    char failures[24], closed[24];
    snprintf(failures, sizeof failures, "%u", l->accept_failures);
    snprintf(closed, sizeof closed, "%u", l->shed);
    log_event(LOG_WARN, "accept-failed", "local", l->local,
              "reason", uv_strerror(status), "times", failures,
              "closed_unserved", closed,
              "hint", status == UV_EMFILE || status == UV_ENFILE
                      ? "out of file descriptors: raise the limit (ulimit -n)"
                      : NULL, NULL);
    l->accept_logged = now;
    l->accept_failures = 0;
    l->shed = 0;
}

/* ---- pausing and reopening --------------------------------------------------
 *
 * When not even the reserve descriptor could be had back (other threads,
 * such as DNS lookups, took it), waiting connections cannot be accepted
 * and libuv would retry at once, for ever.  The listener's handle is
 * closed then, but not the listening socket: a duplicate taken when it was
 * bound (keep_fd) holds the port, so no other process can bind it and
 * receive the app's traffic and credentials, and clients that come
 * meanwhile wait in the kernel's backlog.  Every REOPEN_MS the handle is
 * made again on a new duplicate; while no descriptor is free for it, what
 * waits is shed if the reserve allows, else it waits on.
 */
#define REOPEN_MS 200

static void on_reopen(uv_timer_t *timer);
static void on_accept(uv_stream_t *server, int status);

static void on_paused(uv_handle_t *h)
{
    struct listener *l = h->data;
    l->listening = 0;
    if (!l->closed)
        uv_timer_start(&l->reopen_timer, on_reopen, REOPEN_MS, 0);
}

static void on_handle_gone(uv_handle_t *h)
{
    struct listener *l = h->data;
    l->listening = 0;
}

static void on_reopen(uv_timer_t *timer)
{
    struct listener *l = timer->data;
    int fd, r;

    if (l->closed || l->failed)
        return;
    listener_reserve_take(l->reserve);
    if ((fd = fcntl(l->keep_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
        r = -errno;
        if (r != UV_EMFILE && r != UV_ENFILE) {
            failed(l, r);
            return;
        }
        unsigned n = shed(l->reserve, l->keep_fd);
        if (n > 0)
            log_accept_failed(l, r, n);
        uv_timer_start(&l->reopen_timer, on_reopen, REOPEN_MS, 0);
        return;
    }
    if ((r = uv_tcp_init(l->loop, &l->handle)) < 0) {
        close(fd);
        failed(l, r);
        return;
    }
    l->handle.data = l;
    l->listening = 1;
    if ((r = uv_tcp_open(&l->handle, fd)) < 0)
        close(fd);              /* not the handle's */
    if (r < 0 || (r = uv_listen((uv_stream_t *)&l->handle, LISTEN_BACKLOG,
                                on_accept)) < 0) {
        uv_close((uv_handle_t *)&l->handle, on_handle_gone);
        failed(l, r);
        return;
    }
    l->paused = 0;
    log_event(LOG_INFO, "listener-resumed", "local", l->local, NULL);
}

static void pause_listener(struct listener *l)
{
    if (l->paused)
        return;
    l->paused = 1;
    log_event(LOG_WARN, "listener-paused", "local", l->local, "reason",
              "out of file descriptors: new clients wait until some "
              "close (raise the limit: ulimit -n)", NULL);
    uv_close((uv_handle_t *)&l->handle, on_paused);
}

/* ---- accepting --------------------------------------------------------------- */

static void on_accept(uv_stream_t *server, int status)
{
    struct listener *l = server->data;
    uv_os_fd_t lfd;
    unsigned n = 0;

    if (status == 0) {
        l->on_client(l->arg, l);
        return;
    }
    switch (listener_accept_error_kind(status)) {
    case LISTENER_SHED:
        if (uv_fileno((uv_handle_t *)&l->handle, &lfd) == 0)
            n = shed(l->reserve, lfd);
        log_accept_failed(l, status, n);
        /* Nothing shed although a client waits: another thread (a DNS
         * lookup) took the descriptor given up, and libuv would call
         * again at once, for as long as that race goes on.  Same when
         * the reserve could not be had back. */
        if (n == 0 || l->reserve->fd < 0)
            pause_listener(l);
        return;
    case LISTENER_RETRY:
        /* That one connection is lost; libuv goes on accepting. */
        log_accept_failed(l, status, 0);
        return;
    case LISTENER_FATAL:
        /* Closed, or libuv would call again at once; the port stays held
         * (keep_fd) until the listener is closed. */
        uv_close((uv_handle_t *)server, on_handle_gone);
        failed(l, status);
        return;
    }
}

int listener_accept(struct listener *l, uv_tcp_t *client)
{
    int r = uv_accept((uv_stream_t *)&l->handle, (uv_stream_t *)client);
    if (r < 0)
        log_event(LOG_WARN, "accept-failed", "local", l->local,
                  "reason", uv_strerror(r), NULL);
    return r;
}

/* "ip:port" or "[ip]:port" of the bound socket. */
static int name_bound(struct listener *l)
{
    struct sockaddr_storage bound;
    int len = sizeof bound, r;
    char ip[64];

    if ((r = uv_tcp_getsockname(&l->handle, (struct sockaddr *)&bound,
                                &len)) < 0)
        return r;
    if (bound.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&bound, ip, sizeof ip);
        snprintf(l->local, sizeof l->local, "[%s]:%u", ip,
                 ntohs(((struct sockaddr_in6 *)&bound)->sin6_port));
    } else {
        uv_ip4_name((struct sockaddr_in *)&bound, ip, sizeof ip);
        snprintf(l->local, sizeof l->local, "%s:%u", ip,
                 ntohs(((struct sockaddr_in *)&bound)->sin_port));
    }
    return 0;
}

int listener_open(struct listener *l, uv_loop_t *loop,
                  const struct sockaddr *addr, unsigned flags,
                  struct listener_reserve *reserve, listener_client_fn on_client,
                  listener_fatal_fn on_fatal, void *arg)
{
    uv_os_fd_t fd;
    int r;

    l->loop = loop;
    l->keep_fd = -1;
    l->reserve = reserve;
    l->on_client = on_client;
    l->on_fatal = on_fatal;
    l->arg = arg;
    uv_timer_init(loop, &l->reopen_timer);
    l->reopen_timer.data = l;
    l->timer_inited = 1;
    if ((r = uv_tcp_init(loop, &l->handle)) < 0)
        return r;
    l->handle.data = l;
    l->listening = 1;
    if ((r = uv_tcp_bind(&l->handle, addr, flags)) < 0
        || (r = uv_listen((uv_stream_t *)&l->handle, LISTEN_BACKLOG,
                          on_accept)) < 0
        || (r = name_bound(l)) < 0)
        return r;
    /* The port stays ours even while the handle is closed (paused). */
    if ((r = uv_fileno((uv_handle_t *)&l->handle, &fd)) < 0)
        return r;
    if ((l->keep_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
        return -errno;
    return 0;
}

void listener_close(struct listener *l)
{
    if (l->closed)
        return;
    l->closed = 1;
    if (l->loop == NULL)
        return;                 /* never opened */
    if (l->listening && !uv_is_closing((uv_handle_t *)&l->handle))
        uv_close((uv_handle_t *)&l->handle, on_handle_gone);
    if (l->timer_inited)
        uv_close((uv_handle_t *)&l->reopen_timer, NULL);
    if (l->keep_fd >= 0)
        close(l->keep_fd);
    l->keep_fd = -1;
}
