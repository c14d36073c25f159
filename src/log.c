/*
 * log: logfmt formatting and the stderr writer.
 */
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static enum log_level threshold = LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* A small bounded appender: it never overflows and remembers truncation. */
struct out {
    char *p;
    size_t len, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
    size_t room = o->cap - o->len;
    if (n > room)
        n = room;
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static int needs_quotes(const char *v)
{
    if (*v == '\0')
        return 1;
    for (const unsigned char *c = (const unsigned char *)v; *c; c++)
        if (*c <= ' ' || *c == '=' || *c == '"' || *c == 0x7f)
            return 1;
    return 0;
}

static void put_value(struct out *o, const char *v)
{
    static const char hex[] = "0123456789abcdef";

    if (!needs_quotes(v)) {
        puts_(o, v);
        return;
    }
    put(o, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)v; *c; c++) {
        char esc[4] = { '\\', 0, 0, 0 };
        size_t n = 2;
        switch (*c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            if (*c < ' ' || *c == 0x7f) {
                esc[1] = 'x';
                esc[2] = hex[*c >> 4];
                esc[3] = hex[*c & 15];
                n = 4;
            } else {
                esc[0] = (char)*c;
                n = 1;
            }
        }
        put(o, esc, n);
    }
    put(o, "\"", 1);
}

size_t logfmt_format(char *buf, size_t len, enum log_level level,
                     const char *at, const char *const kv[])
{
    if (len == 0)
        return 0;
    /* Keep room for the newline and the NUL whatever gets truncated. */
    struct out o = { buf, 0, len > 2 ? len - 2 : 0 };

    puts_(&o, "memtunnel level=");
    puts_(&o, level_names[level]);
    puts_(&o, " at=");
    put_value(&o, at);
    for (size_t i = 0; kv && kv[i]; i += 2) {
        if (kv[i + 1] == NULL)
            continue;
        put(&o, " ", 1);
        puts_(&o, kv[i]);
        put(&o, "=", 1);
        put_value(&o, kv[i + 1]);
    }
    if (len >= 2)
        buf[o.len++] = '\n';
    buf[o.len] = '\0';
    return o.len;
}

void log_set_level(enum log_level level)
{
    threshold = level;
}

int log_enabled(enum log_level level)
{
    return level <= threshold;
}

void log_event(enum log_level level, const char *at, ...)
{
    enum { MAX_KV = 32 };
    const char *kv[MAX_KV + 1];
    size_t n = 0;
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, at);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (k == NULL || n + 2 > MAX_KV)
            break;
        kv[n++] = k;
        kv[n++] = va_arg(ap, const char *);
    }
    va_end(ap);
    kv[n] = NULL;
    log_kv(level, at, kv);
}

/* ---- the queue ----------------------------------------------------------
 *
 * While the tunnel runs, the loop thread never writes to stderr itself: a
 * log reader that stops (a full pipe) would freeze every connection.  It
 * appends whole lines to a bounded ring under a mutex, and one writer
 * thread owns the blocking write(2).  When the ring is full the line is
 * dropped and counted; the count goes out as one line of its own at the
 * place of the gap, once there is room again (or once the ring has
 * drained, if nothing else is logged).
 *
 * stderr is shared with the child, so its file description stays blocking:
 * O_NONBLOCK there would make the app's own writes fail with EAGAIN.
 */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t more;          /* lines queued, or stop asked */
    pthread_cond_t idle;          /* nothing queued, nothing in flight */
    pthread_t thread;
    int fd;
    char *ring;
    size_t cap, head, len;        /* bytes queued from ring[head], wrapping */
    unsigned long long dropped;   /* lines lost since the last report */
    int on, stop, busy;
} q = { .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1 };

/* A batch holds whole lines and at most PIPE_BUF bytes, so that on a pipe
 * each write(2) is atomic: the child's output never splits a line. */
#if PIPE_BUF < 2 * LOG_LINE_MAX
#error "a batch must hold a whole line"
#endif

static size_t format_dropped(char *buf, size_t len, unsigned long long n)
{
    char count[24];
    snprintf(count, sizeof count, "%llu", n);
    const char *kv[] = { "count", count, NULL };
    return logfmt_format(buf, len, LOG_WARN, "log-dropped", kv);
}

static void ring_put(const char *p, size_t n)
{
    size_t tail = (q.head + q.len) % q.cap;
    size_t first = q.cap - tail < n ? q.cap - tail : n;
    memcpy(q.ring + tail, p, first);
    memcpy(q.ring, p + first, n - first);
    q.len += n;
}

/* Queue one line, or count it as dropped.  Called with q.lock held. */
static void enqueue(const char *line, size_t n)
{
    if (q.dropped > 0) {
        char note[128];
        size_t m = format_dropped(note, sizeof note, q.dropped);
        if (q.cap - q.len < m + n) {
            q.dropped++;
            return;
        }
        ring_put(note, m);
        q.dropped = 0;
    }
    if (q.cap - q.len < n) {
        q.dropped++;
        return;
    }
    ring_put(line, n);
    pthread_cond_signal(&q.more);
}

/* Take whole lines, at most sizeof batch bytes.  Called with q.lock held
 * and q.len > 0. */
static size_t take(char *batch, size_t size)
{
    size_t n = q.len < size ? q.len : size;
    size_t first = q.cap - q.head < n ? q.cap - q.head : n;
    memcpy(batch, q.ring + q.head, first);
    memcpy(batch + first, q.ring, n - first);
    /* Every queued line ends in '\n' and is shorter than a batch. */
    while (n > 0 && batch[n - 1] != '\n')
        n--;
    q.head = (q.head + n) % q.cap;
    q.len -= n;
    return n;
}

/* Write it all, blocking; a descriptor someone made non-blocking is waited
 * on.  A reader that is gone (EPIPE) or any other error loses the batch. */
static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };
            poll(&pfd, 1, -1);
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else {
            return;
        }
    }
}

static void *writer(void *arg)
{
    static char batch[PIPE_BUF];
    (void)arg;

    pthread_mutex_lock(&q.lock);
    for (;;) {
        while (q.len == 0 && q.dropped == 0 && !q.stop)
            pthread_cond_wait(&q.more, &q.lock);
        if (q.len == 0 && q.dropped == 0)
            break;                      /* stop asked, everything out */
        size_t n;
        if (q.len > 0) {
            n = take(batch, sizeof batch);
        } else {
            /* Drained after a loss, and nothing logged since: the reader
             * is back, say so now rather than with the next line. */
            n = format_dropped(batch, sizeof batch, q.dropped);
            q.dropped = 0;
        }
        q.busy = 1;
        pthread_mutex_unlock(&q.lock);
        write_all(q.fd, batch, n);
        pthread_mutex_lock(&q.lock);
        q.busy = 0;
        if (q.len == 0 && q.dropped == 0)
            pthread_cond_broadcast(&q.idle);
    }
    pthread_cond_broadcast(&q.idle);
    pthread_mutex_unlock(&q.lock);
    return NULL;
}

/* Only a pipe, a socket or a terminal has a reader that can stall; a
 * regular file or /dev/null takes each line at once, in its true order
 * with the child's output, and the queue would only add a thread hop. */
static int reader_can_stall(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return 0;
    return S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || isatty(fd);
}

int log_start(int fd, size_t capacity)
{
    pthread_condattr_t ca;
    sigset_t all, old;
    int e;

    if (q.on)
        return -EALREADY;
    if (!reader_can_stall(fd))
        return 0;
    if (capacity < 2 * LOG_LINE_MAX)
        capacity = 2 * LOG_LINE_MAX;
    if ((q.ring = malloc(capacity)) == NULL)
        return -ENOMEM;
    q.fd = fd;
    q.cap = capacity;
    q.head = q.len = 0;
    q.dropped = 0;
    q.stop = q.busy = 0;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q.more, NULL);
    pthread_cond_init(&q.idle, &ca);
    pthread_condattr_destroy(&ca);
    /* The writer takes no signal: they stay with the loop thread, and a
     * write(2) in progress is never interrupted. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    e = pthread_create(&q.thread, NULL, writer, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        pthread_cond_destroy(&q.more);
        pthread_cond_destroy(&q.idle);
        free(q.ring);
        q.ring = NULL;
        return -e;
    }
    q.on = 1;
    return 0;
}

int log_stop(unsigned timeout_ms)
{
    struct timespec deadline;
    int timed_out = 0;

    if (!q.on)
        return 0;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&q.lock);
    q.stop = 1;
    pthread_cond_signal(&q.more);
    while ((q.len > 0 || q.dropped > 0 || q.busy) && !timed_out)
        timed_out = pthread_cond_timedwait(&q.idle, &q.lock, &deadline) == ETIMEDOUT;
    timed_out = q.len > 0 || q.dropped > 0 || q.busy;
    pthread_mutex_unlock(&q.lock);
    if (timed_out)
        return -ETIMEDOUT;      /* the writer is stuck: leave it be */
    pthread_join(q.thread, NULL);
    pthread_cond_destroy(&q.more);
    pthread_cond_destroy(&q.idle);
    free(q.ring);
    q.ring = NULL;
    q.on = 0;
    return 0;
}

void log_kv(enum log_level level, const char *at, const char *const kv[])
{
    char line[LOG_LINE_MAX];

    if (!log_enabled(level))
        return;
    size_t len = logfmt_format(line, sizeof line, level, at, kv);
    if (q.on) {
        pthread_mutex_lock(&q.lock);
        enqueue(line, len);
        pthread_mutex_unlock(&q.lock);
        return;
    }
    /* One write per line; a short write to stderr is not worth retrying. */
    ssize_t r = write(STDERR_FILENO, line, len);
    (void)r;
}
