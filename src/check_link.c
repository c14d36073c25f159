/*
 * check_link: one TCP connection and a tlsconn over it, driven in plain
 * sequential code for `memtunnel check`.
 *
 * The socket is non-blocking and every wait is a poll(2) against the link's
 * deadline, so no call here blocks past it.  tlsconn stays what it is in
 * the tunnel: ciphertext is read into a stack buffer, lent to tlsconn, and
 * whatever tlsconn leaves in `out` is sent before waiting for more.
 */
#include "check_int.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

double check_link_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void check_link_init(struct check_link *l)
{
    memset(l, 0, sizeof *l);
    l->fd = -1;
}

void check_link_close(struct check_link *l)
{
    if (l->tls_inited)
        tlsconn_free(&l->t);
    if (l->fd >= 0)
        close(l->fd);
    check_link_init(l);
}

/* Wait for events on fd until the deadline: 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, double deadline)
{
    for (;;) {
        double left = deadline - check_link_now();
        struct pollfd p = { .fd = fd, .events = events };
        int r;

        if (left <= 0)
            return -ETIMEDOUT;
        r = poll(&p, 1, (int)left + 1);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -errno;
    }
}

int check_link_connect(struct check_link *l, const struct sockaddr *sa,
                       socklen_t len)
{
    int one = 1, err = 0, r;
    socklen_t elen = sizeof err;

    l->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0)
        return -errno;
    if (connect(l->fd, sa, len) < 0) {
        if (errno != EINPROGRESS)
            return -errno;
        if ((r = wait_fd(l->fd, POLLOUT, l->deadline)) < 0)
            return r;
        if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
            return -errno;
        if (err != 0)
            return -err;
    }
    setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

/* Send all the ciphertext tlsconn produced. */
static int flush(struct check_link *l)
{
    struct buf *out = &l->t.out;

    while (buf_len(out) > 0) {
        ssize_t n = send(l->fd, buf_peek(out), buf_len(out), MSG_NOSIGNAL);
        int r;

        if (n > 0) {
            buf_consume(out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            l->io_err = -errno;
            return CHECK_LINK_IO;
        }
        if ((r = wait_fd(l->fd, POLLOUT, l->deadline)) < 0) {
            l->io_err = r;
            return CHECK_LINK_IO;
        }
    }
    return 0;
}

typedef int (*tls_op)(struct check_link *l, void *arg);

/*
 * Call op until it no longer needs input, feeding it what the socket
 * delivers.  Returns op's result (>= 0, or TLSCONN_CLOSED, _TRUNCATED,
 * _ERROR), or CHECK_LINK_IO.
 */
static int drive(struct check_link *l, tls_op op, void *arg)
{
    char in[16384];
    int r = op(l, arg);

    for (;;) {
        ssize_t n;

        if (flush(l) < 0)
            return CHECK_LINK_IO;
        if (r != TLSCONN_AGAIN)
            return r;
        /* After EOF wolfSSL fails rather than asks for more; be sure. */
        if (l->t.eof)
            return TLSCONN_TRUNCATED;
        if ((r = wait_fd(l->fd, POLLIN, l->deadline)) < 0) {
            l->io_err = r;
            return CHECK_LINK_IO;
        }
        n = recv(l->fd, in, sizeof in, 0);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
                r = TLSCONN_AGAIN;
                continue;
            }
            l->io_err = -errno;
            return CHECK_LINK_IO;
        }
        if (n == 0) {
            tlsconn_eof(&l->t);
            r = op(l, arg);
            continue;
        }
        for (ssize_t i = 0; i < n && l->nhead < sizeof l->head; i++)
            l->head[l->nhead++] = (unsigned char)in[i];
        l->received += (size_t)n;
        tlsconn_feed(&l->t, in, (size_t)n);
        r = op(l, arg);
        if (tlsconn_feed_end(&l->t) < 0) {
            l->io_err = -ENOMEM;
            return CHECK_LINK_IO;
        }
    }
}

static int op_handshake(struct check_link *l, void *arg)
{
    (void)arg;
    return tlsconn_handshake(&l->t);
}

struct span {
    char *p;
    size_t n;
};

static int op_read(struct check_link *l, void *arg)
{
    struct span *s = arg;
    return (int)tlsconn_read(&l->t, s->p, s->n);
}

int check_link_handshake(struct check_link *l, struct tls_ctx *tls,
                         const char *name, int name_is_ip, void *session)
{
    l->tls_inited = 1;
    if (tlsconn_init(&l->t, tls, name, name_is_ip) < 0) {
        l->io_err = -ENOMEM;
        return CHECK_LINK_IO;
    }
    if (session != NULL)
        tlsconn_resume(&l->t, session);
    return drive(l, op_handshake, NULL);
}

int check_link_send(struct check_link *l, const void *p, size_t n)
{
    if (tlsconn_write(&l->t, p, n) < 0)
        return TLSCONN_ERROR;
    return flush(l);
}

int check_link_recv(struct check_link *l, void *p, size_t n)
{
    size_t got = 0;

    while (got < n) {
        struct span s = { (char *)p + got, n - got };
        int r = drive(l, op_read, &s);
        if (r < 0)
            return r;
        got += (size_t)r;
    }
    return 0;
}

int check_link_line(struct check_link *l, char *line, size_t cap)
{
    size_t n = 0;

    while (n < 2 || memcmp(line + n - 2, "\r\n", 2) != 0) {
        struct span s = { line + n, 1 };
        int r;

        if (n == cap - 1)
            return CHECK_LINK_PROTO;
        /* A byte at a time, so that nothing after the line is taken. */
        if ((r = drive(l, op_read, &s)) < 0)
            return r;
        n += (size_t)r;
    }
    line[n - 2] = '\0';
    return 0;
}

void check_link_goodbye(struct check_link *l)
{
    if (l->fd >= 0 && l->tls_inited) {
        tlsconn_close_notify(&l->t);
        l->deadline = check_link_now() + 100;
        flush(l);
    }
    check_link_close(l);
}

enum reason check_link_reason(const struct check_link *l, int r)
{
    switch (r) {
    case TLSCONN_CLOSED:
        return REASON_CLOSED;
    case TLSCONN_TRUNCATED:
        return REASON_TRUNCATED;
    case TLSCONN_ERROR:
        return tlsconn_reason_code(&l->t);
    case CHECK_LINK_PROTO:
        return REASON_MALFORMED_REPLY;
    }
    if (l->io_err == -ETIMEDOUT)
        return REASON_TIMED_OUT;
    return reason_from_errno(-l->io_err);
}

const char *check_link_words(const struct check_link *l, int r, char *buf,
                             size_t len)
{
    switch (r) {
    case TLSCONN_CLOSED:
    case TLSCONN_TRUNCATED:
    case CHECK_LINK_PROTO:
        return reason_words(check_link_reason(l, r));
    case TLSCONN_ERROR:
        return tlsconn_reason(&l->t);
    }
    if (l->io_err == -ETIMEDOUT)
        return reason_words(REASON_TIMED_OUT);
    /* Other socket errors in the system's words, as check has always
     * shown them ("Connection reset by peer"). */
    snprintf(buf, len, "%s", strerror(-l->io_err));
    return buf;
}
