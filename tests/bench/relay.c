/*
 * relay - a plaintext TCP relay: the reference target "relay" of memtunnel's
 * benchmark (tests/bench/bench.sh, `make bench`).
 *
 * It forwards each local port to a port of 127.0.0.1 (memcached's plaintext
 * listener) with no TLS at all, so it costs what one extra proxy hop costs
 * and nothing more: per direction one more wake-up, one read and one write.
 * No TLS tunnel can do better; the benchmark reports it as a floor.
 *
 * usage: relay --listen-port P --to-port Q [--listen-port P2 --to-port Q2 ...]
 *
 * Everything on 127.0.0.1. Port 0 binds any free port. Once listening it
 * prints "ready P..." (the bound ports, in order) on stdout.
 *
 * One thread, epoll, level-triggered, nonblocking sockets, TCP_NODELAY on
 * both ends. Each connection has a 64 KiB buffer per direction; an end is
 * read only while the bytes last read from it have all been written to the
 * other end, so a slow reader slows its writer and memory stays bounded.
 * End of stream from one end shuts the other down for writing once the
 * buffer towards it has drained; the connection closes when both directions
 * are finished, or on any error. SIGTERM or SIGINT: close everything, exit 0.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFSZ (64 * 1024)
#define MAXROUTES 8

struct conn;

/* What an epoll event points at: a listener (c NULL, i the route) or one
 * end of a connection (i 0: the client, 1: the upstream). */
struct end {
    struct conn *c;
    int fd, i;
    uint32_t ev; /* the events registered; 0: not in the epoll set */
};

/* Bytes read from one end that the other end has not taken yet. */
struct dir {
    size_t off, len;
    bool eof;  /* the end read from has sent its FIN */
    bool done; /* ... and all of it is written, the other end shut down */
    char buf[BUFSZ];
};

struct conn {
    struct end e[2];
    bool connecting, dead;
    struct conn *prev, *next;
    struct dir d[2]; /* d[i]: read from e[i], written to e[1 - i] */
};

static int ep;
static struct end listeners[MAXROUTES];
static int to_port[MAXROUTES];
static struct conn *live, *dead; /* dead: closed in this batch of events */
static volatile sig_atomic_t stop;

static void die(const char *what)
{
    fprintf(stderr, "relay: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void set_events(struct end *e, uint32_t want)
{
    if (want == e->ev)
        return;
    struct epoll_event ev = {.events = want, .data.ptr = e};
    int op = !e->ev ? EPOLL_CTL_ADD : want ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;
    if (epoll_ctl(ep, op, e->fd, &ev) < 0)
        die("epoll_ctl");
    e->ev = want;
}

/* Write what d[i] holds to e[1 - i]; after its end of stream, shut that
 * end down for writing. False on an error. */
static bool flush(struct conn *c, int i)
{
    struct dir *d = &c->d[i];
    int fd = c->e[1 - i].fd;
    if (i == 0 && c->connecting)
        return true;
    if (d->off < d->len) {
        ssize_t n = send(fd, d->buf + d->off, d->len - d->off, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR;
        d->off += (size_t)n;
        if (d->off < d->len)
            return true; /* the socket buffer is full: wait for EPOLLOUT */
        d->off = d->len = 0;
    }
    if (d->eof && !d->done) {
        if (shutdown(fd, SHUT_WR) < 0)
            return false;
        d->done = true;
    }
    return true;
}

/* Read e[i] into its empty buffer and pass it on at once. */
static bool fill(struct conn *c, int i)
{
    struct dir *d = &c->d[i];
    ssize_t n = read(c->e[i].fd, d->buf, BUFSZ);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR;
    if (n == 0)
        d->eof = true;
    d->len = (size_t)n;
    return flush(c, i);
}

/* Register the events each end waits for; false once both directions are
 * finished. An end that waits for nothing leaves the epoll set, so a hang-up
 * it reports cannot spin the loop while its data waits for the other end. */
static bool update(struct conn *c)
{
    if (c->d[0].done && c->d[1].done)
        return false;
    for (int i = 0; i < 2; i++) {
        uint32_t want = 0;
        if (i == 1 && c->connecting) {
            want = EPOLLOUT;
        } else {
            if (!c->d[i].eof && c->d[i].len == 0)
                want |= EPOLLIN;
            if (c->d[1 - i].len > 0)
                want |= EPOLLOUT;
        }
        set_events(&c->e[i], want);
    }
    return true;
}

static bool handle(struct conn *c, int i, uint32_t events)
{
    if (events & EPOLLERR)
        return false;
    if (i == 1 && c->connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->e[1].fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err)
            return false;
        c->connecting = false;
        if (!flush(c, 0)) /* what the client sent in the meantime */
            return false;
        return update(c);
    }
    if ((events & EPOLLOUT) && !flush(c, 1 - i))
        return false;
    if ((events & (EPOLLIN | EPOLLHUP)) && !c->d[i].eof && c->d[i].len == 0 && !fill(c, i))
        return false;
    return update(c);
}

static void kill_conn(struct conn *c)
{
    close(c->e[0].fd); /* also leaves the epoll set */
    close(c->e[1].fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        live = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->dead = true;
    c->next = dead; /* freed after the batch: it may still have events in it */
    dead = c;
}

static void nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static struct sockaddr_in loopback(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

static void open_conn(int cfd, int route)
{
    struct conn *c = malloc(sizeof *c); /* the buffers stay untouched until used */
    int ufd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = loopback(to_port[route]);
    int rc = -1;
    if (c && ufd >= 0) {
        nodelay(ufd);
        rc = connect(ufd, (struct sockaddr *)&sa, sizeof sa);
    }
    if (!c || ufd < 0 || (rc < 0 && errno != EINPROGRESS)) {
        fprintf(stderr, "relay: upstream 127.0.0.1:%d: %s\n", to_port[route], strerror(errno));
        close(cfd);
        if (ufd >= 0)
            close(ufd);
        free(c);
        return;
    }
    nodelay(cfd);
    c->e[0] = (struct end){.c = c, .fd = cfd, .i = 0};
    c->e[1] = (struct end){.c = c, .fd = ufd, .i = 1};
    for (int i = 0; i < 2; i++)
        c->d[i].off = c->d[i].len = 0, c->d[i].eof = c->d[i].done = false;
    c->connecting = rc < 0;
    c->dead = false;
    c->prev = NULL;
    c->next = live;
    if (live)
        live->prev = c;
    live = c;
    update(c);
}

static void accept_all(int route)
{
    for (;;) {
        int fd = accept4(listeners[route].fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN)
                fprintf(stderr, "relay: accept: %s\n", strerror(errno));
            return;
        }
        open_conn(fd, route);
    }
}

static int port_arg(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return *s && !*end && v >= 0 && v <= 65535 ? (int)v : -1;
}

int main(int argc, char **argv)
{
    int listen_port[MAXROUTES], n = 0;
    for (int a = 1; a + 3 < argc && n < MAXROUTES; a += 4, n++) {
        if (strcmp(argv[a], "--listen-port") || strcmp(argv[a + 2], "--to-port") ||
            (listen_port[n] = port_arg(argv[a + 1])) < 0 || (to_port[n] = port_arg(argv[a + 3])) <= 0)
            break;
    }
    if (n == 0 || 1 + 4 * n != argc) {
        fprintf(stderr, "usage: relay --listen-port P --to-port Q [--listen-port P --to-port Q]... "
                        "(at most %d pairs; 127.0.0.1)\n", MAXROUTES);
        return 2;
    }

    /* SIGTERM and SIGINT are let through only inside epoll_pwait. */
    sigset_t block, during;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &during);
    sigdelset(&during, SIGTERM);
    sigdelset(&during, SIGINT);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        die("epoll_create1");
    for (int r = 0; r < n; r++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
        struct sockaddr_in addr = loopback(listen_port[r]);
        socklen_t len = sizeof addr;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
            bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 4096) < 0 ||
            getsockname(fd, (struct sockaddr *)&addr, &len) < 0)
            die("listen on 127.0.0.1");
        listeners[r] = (struct end){.fd = fd, .i = r};
        set_events(&listeners[r], EPOLLIN);
        listen_port[r] = ntohs(addr.sin_port);
    }
    printf("ready");
    for (int r = 0; r < n; r++)
        printf(" %d", listen_port[r]);
    printf("\n");
    fflush(stdout);

    struct epoll_event evs[64];
    while (!stop) {
        int k = epoll_pwait(ep, evs, 64, -1, &during);
        if (k < 0 && errno != EINTR)
            die("epoll_pwait");
        for (int j = 0; j < k; j++) {
            struct end *e = evs[j].data.ptr;
            if (!e->c)
                accept_all(e->i);
            else if (!e->c->dead && !handle(e->c, e->i, evs[j].events))
                kill_conn(e->c);
        }
        while (dead) {
            struct conn *c = dead;
            dead = c->next;
            free(c);
        }
    }
    while (live) {
        struct conn *c = live;
        kill_conn(c);
        dead = NULL;
        free(c);
    }
    for (int r = 0; r < n; r++)
        close(listeners[r].fd);
    close(ep);
    return 0;
}
