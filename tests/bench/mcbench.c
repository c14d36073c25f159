/*
 * mcbench - the memcache load generator of memtunnel's benchmark
 * (tests/bench/bench.sh, `make bench`).
 *
 * It drives one workload against one TCP port on loopback (memcached's
 * plaintext port, or the local listener of a TLS tunnel), checks every reply
 * byte for byte against what the server must answer, and prints one
 * key=value summary line. Any mismatch, error, unexpected close or stall
 * ends it with one "mcbench: " line on stderr and exit status 1: a number is
 * printed only for a run in which every reply was right.
 *
 * usage: mcbench --port P [OPTIONS] MODE
 *
 * Modes:
 *   serial    --conns N (1) connections, one request at a time on each: a
 *             random mix of gets (--get-ratio R, 0.9) and sets of --size
 *             byte values (100) over --keys K keys of the connection's own.
 *   pipeline  the same with --depth D (32) requests in flight on each
 *             connection, written together; gets only unless --get-ratio
 *             says otherwise (see "Pipelined sets" below).
 *   churn     a new connection per request: connect, one get, read the
 *             whole reply, close. The latency runs from socket() to the
 *             last byte of the reply. --rate R starts R connections per
 *             second (one after the other; a late one starts at once, with
 *             no catching up); 0, the default, starts each as soon as the
 *             previous one is closed. --conns N churn side by side (1).
 *   idle      open --conns N connections (1000; at most 64 opening at a
 *             time), one verified get on each so the tunnel has its
 *             upstream connection up, then print "ready conns=N" on stdout
 *             and hold them without sending a byte until stdin reaches EOF.
 *             Then one more verified get on every connection, and close.
 *             A connection that is closed or sent a byte while held, or a
 *             hold longer than --hold S (300), fails the run.
 *   refused   connect, send "version", and expect the peer to close without
 *             one byte of reply within --timeout: a tunnel whose upstream
 *             fails verification must never pass a byte. Exit 0 if so.
 *
 * Every connection owns its keys (<prefix>:<connection>:<n>). They are
 * stored first, one set at a time per connection, through --setup-port
 * (default --port; bench.sh gives memcached's plaintext port), so every get
 * is a hit whose value mcbench knows. The workload then runs --warmup S
 * (0.3) seconds unmeasured but verified, then --seconds S (2) measured: an
 * operation counts when it starts and completes inside that window. Values
 * are slices of a random pool (CR, LF and NUL occur in them), chosen by
 * key and version, so a reply that carries another key's value, an older
 * version or a shifted slice is caught.
 *
 * Pipelined sets: memcached 1.6.18's own TLS (-Z) leaves a pipelined
 * request unprocessed when it arrives in the same TLS record as the end of
 * a set's value, until more bytes arrive; a deep pipeline of sets stalls
 * (an stunnel client stalls the same way). A get request carries no value,
 * so the pipeline mode sends gets only; --get-ratio below 1 mixes sets in
 * and shows the stall. The stall detector (--timeout S, 5: no byte in or
 * out on a connection that has a request outstanding) turns any stall into
 * a failure rather than a low number.
 *
 * Other options:
 *   --host A        IPv4 address to connect to (127.0.0.1)
 *   --binary        binary protocol instead of text (serial, pipeline); the
 *                   reply's CAS field is the only part not compared
 *   --threads T     spread the connections over T threads (1)
 *   --seed S        seed of the values and the operation mix
 *   --setup-auth USER:PASSWORD
 *                   open every connection to --setup-port with memcached's
 *                   ASCII authentication (-Y): a first "set" whose value is
 *                   "USER PASSWORD", answered "STORED"; the workload's own
 *                   connections never send it (a tunnel authenticates
 *                   them). Text protocol only. For a server started with
 *                   -Y, whose plaintext port takes no command before it.
 *
 * Output (stdout), one line:
 *   mode=serial conns=1 depth=1 size=100 ops=N seconds=2.000 ops_s=N
 *   p50_us=X p90_us=X p99_us=X p999_us=X max_us=X gets=N sets=N cpu_us_op=X
 * (cpu_us_op: mcbench's own CPU time per operation, warm-up included).
 * idle prints "ready conns=N open_s=X" when holding, then
 *   mode=idle conns=N open_s=X held_s=X.
 * Exit: 0 success, 1 mismatch, error, unexpected close or stall, 2 usage.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_DEPTH 1024
#define MAX_SIZE (16u << 20)
#define READ_BUF (256u * 1024u)
#define IDLE_WINDOW 64          /* idle mode: connections opening at once */
#define HEAD_MAX 320            /* longest reply header we build */

enum mode { MODE_SERIAL, MODE_PIPELINE, MODE_CHURN, MODE_IDLE, MODE_REFUSED };
static const char *const mode_names[] = {"serial", "pipeline", "churn", "idle", "refused"};

enum op_kind { OP_GET, OP_SET, OP_AUTH };

/* What a worker's connections do right now. */
enum phase {
    PHASE_SETUP,        /* store every key once (version 0) */
    PHASE_RUN,          /* the workload, until the window closes */
    PHASE_SCRIPT,       /* idle mode: one get per connection */
};

static struct {
    struct in_addr host;
    int port, setup_port;
    enum mode mode;
    int conns, depth, threads;
    unsigned keys;
    size_t size;
    double get_ratio, seconds, warmup, timeout, hold, rate;
    bool binary;
    uint64_t seed;
    char prefix[48];
    char *setup_auth;           /* "USER PASSWORD", or NULL */
} cfg;

static unsigned char *pool;     /* random bytes that values are cut from */
static size_t pool_len;

/* ------------------------------------------------------------- failing */

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Print one error line and end the whole process: any thread may call it. */
static void fail(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "mcbench: %s: %s\n", mode_names[cfg.mode], line);
    fflush(stderr);
    _exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        fail("out of memory (%zu bytes)", n);
    return p;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        fail("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

/* Up to 40 bytes of p as a C string literal body, for error messages. */
static const char *escaped(const unsigned char *p, size_t n, char *out, size_t outsz)
{
    size_t o = 0;
    for (size_t i = 0; i < n && i < 40 && o + 5 < outsz; i++) {
        unsigned char ch = p[i];
        if (ch == '\r') {
            o += (size_t)snprintf(out + o, outsz - o, "\\r");
        } else if (ch == '\n') {
            o += (size_t)snprintf(out + o, outsz - o, "\\n");
        } else if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
            out[o++] = (char)ch;
        } else {
            o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", ch);
        }
    }
    out[o] = '\0';
    return out;
}

/* ------------------------------------------------------------- time, random */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

/* The next number of the splitmix64 sequence whose state is *s. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    *s += 0x9e3779b97f4a7c15u;
    return splitmix64(x);
}

/* The value stored under (model, key, version): a slice of the pool. */
static const unsigned char *value_of(unsigned model, unsigned key, uint32_t version)
{
    uint64_t h = splitmix64(cfg.seed ^ ((uint64_t)model << 40) ^ ((uint64_t)key << 20) ^ version);
    return pool + h % (pool_len - cfg.size + 1);
}

/* ------------------------------------------------------------- connections */

struct op {
    uint64_t start;
    uint32_t key, version, seq;
    uint8_t kind;
};

/*
 * The reply expected to the oldest outstanding request: a header built
 * from the request, the value (a pointer into the pool) and a fixed tail.
 * Bytes [mask_from, mask_to) of the header are not compared (binary CAS).
 */
struct expect {
    unsigned char head[HEAD_MAX];
    size_t head_len;
    const unsigned char *val;
    size_t val_len;
    const char *tail;
    size_t tail_len;
    size_t mask_from, mask_to;
    size_t pos;                 /* bytes of this reply matched so far */
};

struct worker;

struct conn {
    int fd;
    int id;                     /* for messages */
    unsigned model;             /* whose keys and versions it uses */
    uint32_t *versions;         /* the model's current version of each key */
    unsigned nkeys;
    struct worker *w;
    uint64_t rng;
    struct op *ring;            /* outstanding requests, oldest at head */
    unsigned head, count, cap;
    struct expect exp;
    unsigned char *out;         /* request bytes not yet written */
    size_t out_len, out_off, out_cap;
    bool pollout;
    bool active;                /* registered and expected to talk */
    uint64_t progress;          /* last byte in or out */
    uint32_t seq;
    unsigned script;            /* SETUP: next key to store; SCRIPT: gets left */
    uint64_t ops_done;
    bool authed;                /* the --setup-auth "set" has been sent */
};

struct lat {
    uint64_t *v;
    size_t n, cap;
};

struct worker {
    int idx;
    int epfd;
    struct conn *conns;
    int nconns;
    enum phase phase;
    uint64_t win_start, win_end;
    struct lat lat;
    uint64_t gets, sets;
    uint64_t cpu_ns;            /* thread CPU time from warm-up to the end */
    unsigned char *rbuf;
    int busy;                   /* connections with work left in this phase */
    pthread_t thread;
};

static void lat_add(struct lat *l, uint64_t ns)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 65536;
        uint64_t *v = realloc(l->v, cap * sizeof *v);
        if (v == NULL)
            fail("out of memory for latencies");
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = ns;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/*
 * A connected, non-blocking TCP socket to the host's port with TCP_NODELAY,
 * as memcache client libraries open them. The connect itself blocks,
 * bounded by --timeout: on loopback it completes in the kernel whatever
 * the listener is busy with. Returns the descriptor, or -errno.
 */
static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv;
    tv.tv_sec = (time_t)cfg.timeout;
    tv.tv_usec = (suseconds_t)((cfg.timeout - (double)tv.tv_sec) * 1e6);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = cfg.host};
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        close(fd);
        return -(e == EINPROGRESS ? ETIMEDOUT : e);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static void conn_init(struct conn *c, struct worker *w, int id, unsigned model, uint32_t *versions,
                      unsigned nkeys, unsigned depth)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->id = id;
    c->model = model;
    c->versions = versions;
    c->nkeys = nkeys;
    c->w = w;
    c->rng = splitmix64(cfg.seed ^ 0xc0ffee ^ (uint64_t)id);
    c->cap = depth;
    c->ring = xcalloc(depth, sizeof *c->ring);
}

static int key_name(char *buf, size_t n, unsigned model, unsigned key)
{
    return snprintf(buf, n, "%s:%u:%u", cfg.prefix, model, key);
}

static unsigned char *out_reserve(struct conn *c, size_t n)
{
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
    }
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + n)
            cap *= 2;
        unsigned char *p = realloc(c->out, cap);
        if (p == NULL)
            fail("out of memory for requests");
        c->out = p;
        c->out_cap = cap;
    }
    unsigned char *p = c->out + c->out_len;
    c->out_len += n;
    return p;
}

static void put_be16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Append one request to the connection's output and remember it. */
static void conn_issue(struct conn *c, enum op_kind kind, unsigned key, uint64_t start)
{
    if (c->count == c->cap)
        fail("internal: request ring full");
    if (kind == OP_AUTH) {
        /* memcached -Y: any key, flags and exptime; the value is the
         * credentials. Not a request of the workload: no version. */
        struct op *op = &c->ring[(c->head + c->count) % c->cap];
        memset(op, 0, sizeof *op);
        op->start = start;
        op->seq = c->seq++;
        op->kind = (uint8_t)kind;
        c->count++;
        size_t alen = strlen(cfg.setup_auth);
        char hdr[64];
        int hlen = snprintf(hdr, sizeof hdr, "set mcbench 0 0 %zu\r\n", alen);
        unsigned char *p = out_reserve(c, (size_t)hlen + alen + 2);
        memcpy(p, hdr, (size_t)hlen);
        memcpy(p + hlen, cfg.setup_auth, alen);
        memcpy(p + hlen + alen, "\r\n", 2);
        return;
    }
    if (kind == OP_SET)
        c->versions[key]++;
    struct op *op = &c->ring[(c->head + c->count) % c->cap];
    op->start = start;
    op->key = key;
    op->version = c->versions[key];
    op->seq = c->seq++;
    op->kind = (uint8_t)kind;
    c->count++;

    char name[128];
    int klen = key_name(name, sizeof name, c->model, key);
    const unsigned char *val = value_of(c->model, key, op->version);
    if (!cfg.binary) {
        if (kind == OP_GET) {
            unsigned char *p = out_reserve(c, (size_t)klen + 6);
            memcpy(p, "get ", 4);
            memcpy(p + 4, name, (size_t)klen);
            memcpy(p + 4 + klen, "\r\n", 2);
        } else {
            char hdr[192];
            int hlen = snprintf(hdr, sizeof hdr, "set %s %u 0 %zu\r\n", name, key, cfg.size);
            unsigned char *p = out_reserve(c, (size_t)hlen + cfg.size + 2);
            memcpy(p, hdr, (size_t)hlen);
            memcpy(p + hlen, val, cfg.size);
            memcpy(p + hlen + cfg.size, "\r\n", 2);
        }
        return;
    }
    /* Binary protocol: a 24-byte header, extras, key, value. */
    size_t extras = kind == OP_SET ? 8 : 0;
    size_t vlen = kind == OP_SET ? cfg.size : 0;
    unsigned char *p = out_reserve(c, 24 + extras + (size_t)klen + vlen);
    memset(p, 0, 24);
    p[0] = 0x80;
    p[1] = kind == OP_SET ? 0x01 : 0x00;
    put_be16(p + 2, (uint16_t)klen);
    p[4] = (unsigned char)extras;
    put_be32(p + 8, (uint32_t)(extras + (size_t)klen + vlen));
    put_be32(p + 12, op->seq);
    p += 24;
    if (kind == OP_SET) {
        put_be32(p, key);       /* flags */
        put_be32(p + 4, 0);     /* no expiry */
        p += 8;
    }
    memcpy(p, name, (size_t)klen);
    if (vlen)
        memcpy(p + klen, val, vlen);
}

/* Prepare c->exp for the reply to the oldest outstanding request. */
static void expect_head(struct conn *c)
{
    const struct op *op = &c->ring[c->head];
    struct expect *e = &c->exp;
    e->pos = 0;
    e->val = NULL;
    e->val_len = 0;
    e->tail = "";
    e->tail_len = 0;
    e->mask_from = e->mask_to = 0;
    if (!cfg.binary) {
        if (op->kind == OP_SET || op->kind == OP_AUTH) {
            memcpy(e->head, "STORED\r\n", 8);
            e->head_len = 8;
            return;
        }
        char name[128];
        key_name(name, sizeof name, c->model, op->key);
        e->head_len = (size_t)snprintf((char *)e->head, sizeof e->head, "VALUE %s %u %zu\r\n", name,
                                       op->key, cfg.size);
        e->val = value_of(c->model, op->key, op->version);
        e->val_len = cfg.size;
        e->tail = "\r\nEND\r\n";
        e->tail_len = 7;
        return;
    }
    unsigned char *h = e->head;
    memset(h, 0, 24);
    h[0] = 0x81;
    h[1] = op->kind == OP_SET ? 0x01 : 0x00;
    put_be32(h + 12, op->seq);
    e->mask_from = 16;          /* the CAS the server chose */
    e->mask_to = 24;
    if (op->kind == OP_SET) {
        e->head_len = 24;
        return;
    }
    h[4] = 4;
    put_be32(h + 8, (uint32_t)(4 + cfg.size));
    put_be32(h + 24, op->key);  /* flags */
    e->head_len = 28;
    e->val = value_of(c->model, op->key, op->version);
    e->val_len = cfg.size;
}

static void mismatch(const struct conn *c, size_t at, const unsigned char *want, size_t wn,
                     const unsigned char *got, size_t gn)
{
    const struct op *op = &c->ring[c->head];
    char name[128], a[256], b[256];
    if (op->kind == OP_AUTH)
        fail("port %d connection %d: the reply to the authentication (--setup-auth) differs at "
             "byte %zu: expected \"%s\", got \"%s\"",
             cfg.setup_port, c->id, at, escaped(want, wn, a, sizeof a), escaped(got, gn, b, sizeof b));
    key_name(name, sizeof name, c->model, op->key);
    fail("port %d connection %d: the reply to %s %s (request #%" PRIu32 ", version %" PRIu32
         ") differs at byte %zu: expected \"%s\", got \"%s\"",
         cfg.port, c->id, op->kind == OP_GET ? "get" : "set", name, op->seq, op->version, at,
         escaped(want, wn, a, sizeof a), escaped(got, gn, b, sizeof b));
}

/*
 * Match n received bytes against the expected reply of the oldest request.
 * Returns how many bytes were consumed; *done says the reply is complete.
 */
static size_t expect_match(struct conn *c, const unsigned char *p, size_t n, bool *done)
{
    struct expect *e = &c->exp;
    size_t used = 0;
    *done = false;
    while (used < n) {
        size_t pos = e->pos;
        const unsigned char *seg;
        size_t seglen, segpos;
        if (pos < e->head_len) {
            seg = e->head, seglen = e->head_len, segpos = pos;
        } else if (pos < e->head_len + e->val_len) {
            seg = e->val, seglen = e->val_len, segpos = pos - e->head_len;
        } else if (pos < e->head_len + e->val_len + e->tail_len) {
            seg = (const unsigned char *)e->tail, seglen = e->tail_len,
            segpos = pos - e->head_len - e->val_len;
        } else {
            break;
        }
        size_t k = seglen - segpos;
        if (k > n - used)
            k = n - used;
        if (seg == e->head && e->mask_to > e->mask_from) {
            for (size_t i = 0; i < k; i++) {
                size_t at = segpos + i;
                if ((at < e->mask_from || at >= e->mask_to) && seg[at] != p[used + i])
                    mismatch(c, pos + i, seg + at, seglen - at, p + used + i, n - used - i);
            }
        } else if (memcmp(seg + segpos, p + used, k) != 0) {
            size_t i = 0;
            while (seg[segpos + i] == p[used + i])
                i++;
            mismatch(c, pos + i, seg + segpos + i, seglen - segpos - i, p + used + i, n - used - i);
        }
        used += k;
        e->pos += k;
    }
    *done = e->pos == e->head_len + e->val_len + e->tail_len;
    return used;
}

/* ------------------------------------------------------------- event loop */

static void conn_watch(struct conn *c, bool out)
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        fail("epoll_ctl: %s", strerror(errno));
    c->pollout = out;
}

/* Write what the connection has queued; wait for POLLOUT if it did not all go. */
static void conn_flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t r = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (r > 0) {
            c->out_off += (size_t)r;
            c->progress = now_ns();
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        fail("port %d connection %d: send: %s", cfg.port, c->id, r < 0 ? strerror(errno) : "wrote 0");
    }
    bool pending = c->out_off < c->out_len;
    if (pending != c->pollout && c->w->epfd >= 0)
        conn_watch(c, pending);
}

/*
 * Issue requests until the connection has as many in flight as the phase
 * allows. Returns true when the connection has nothing more to do in this
 * phase (no request outstanding and none to come).
 */
static bool conn_fill(struct conn *c, uint64_t now)
{
    struct worker *w = c->w;
    while (c->count < c->cap) {
        if (w->phase == PHASE_SETUP) {
            /* One set at a time, even on a pipelining connection: see
             * "Pipelined sets" at the top. */
            if (c->script >= c->nkeys || c->count > 0)
                break;
            if (cfg.setup_auth != NULL && !c->authed) {
                c->authed = true;
                conn_issue(c, OP_AUTH, 0, now);
                expect_head(c);
                continue;
            }
            unsigned key = c->script++;
            c->versions[key] = (uint32_t)-1;     /* the set makes it 0 */
            conn_issue(c, OP_SET, key, now);
        } else if (w->phase == PHASE_SCRIPT) {
            if (c->script == 0)
                break;
            c->script--;
            conn_issue(c, OP_GET, (unsigned)(rng_next(&c->rng) % c->nkeys), now);
        } else {
            if (now >= w->win_end)
                break;
            uint64_t r = rng_next(&c->rng);
            unsigned key = (unsigned)((r >> 16) % c->nkeys);
            bool get = (double)(r & 0xffff) < cfg.get_ratio * 65536.0;
            conn_issue(c, get ? OP_GET : OP_SET, key, now);
        }
        if (c->count == 1)
            expect_head(c);
    }
    return c->count == 0;
}

/* One reply complete: account for it, move on to the next expected one. */
static void conn_complete(struct conn *c, uint64_t now)
{
    struct worker *w = c->w;
    struct op *op = &c->ring[c->head];
    if (w->phase == PHASE_RUN && op->start >= w->win_start && now <= w->win_end) {
        lat_add(&w->lat, now - op->start);
        if (op->kind == OP_GET)
            w->gets++;
        else
            w->sets++;
    }
    c->ops_done++;
    c->head = (c->head + 1) % c->cap;
    c->count--;
    if (c->count > 0)
        expect_head(c);
}

/*
 * Feed received bytes to the connection's matcher. Returns the number of
 * replies completed.
 */
static unsigned conn_feed(struct conn *c, const unsigned char *p, size_t n, uint64_t now)
{
    unsigned completed = 0;
    while (n > 0) {
        if (c->count == 0) {
            char a[256];
            fail("port %d connection %d: %zu bytes arrived with no request outstanding: \"%s\"",
                 cfg.port, c->id, n, escaped(p, n, a, sizeof a));
        }
        bool done;
        size_t used = expect_match(c, p, n, &done);
        p += used;
        n -= used;
        if (done) {
            conn_complete(c, now);
            completed++;
        }
    }
    return completed;
}

static void conn_open(struct conn *c, int port)
{
    int fd = dial(port);
    if (fd < 0)
        fail("connection %d: connect to port %d: %s", c->id, port, strerror(-fd));
    c->fd = fd;
    c->progress = now_ns();
    c->pollout = false;
    c->active = true;
    c->authed = false;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(c->w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        fail("epoll_ctl: %s", strerror(errno));
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0) {
        (void)epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->active = false;
    c->out_off = c->out_len = 0;
}

/* Read what one readable connection has; complete replies, refill. */
static void conn_readable(struct conn *c)
{
    struct worker *w = c->w;
    for (;;) {
        ssize_t r = recv(c->fd, w->rbuf, READ_BUF, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r < 0)
            fail("port %d connection %d: recv: %s (%u requests outstanding)", cfg.port, c->id,
                 strerror(errno), c->count);
        if (r == 0)
            fail("port %d connection %d: closed by the peer with %u requests outstanding, "
                 "after %" PRIu64 " replies",
                 cfg.port, c->id, c->count, c->ops_done);
        uint64_t now = now_ns();
        c->progress = now;
        conn_feed(c, w->rbuf, (size_t)r, now);
        if (c->count == 0 || w->phase == PHASE_RUN) {
            if (conn_fill(c, now) && c->active) {
                c->active = false;
                w->busy--;
            }
            conn_flush(c);
        }
        if ((size_t)r < READ_BUF)
            return;
    }
}

/* Fail on a connection that waits for a reply and has seen no byte for --timeout. */
static void check_stalls(struct worker *w)
{
    uint64_t now = now_ns();
    uint64_t limit = (uint64_t)(cfg.timeout * 1e9);
    for (int i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        if (c->fd >= 0 && c->count > 0 && now > c->progress && now - c->progress > limit)
            fail("port %d connection %d: stalled: no byte for %.1f s with %u requests outstanding "
                 "(%zu of the oldest reply's bytes seen)",
                 cfg.port, c->id, (double)(now - c->progress) / 1e9, c->count, c->exp.pos);
    }
}

/*
 * Run the worker's active connections until every one has nothing left to
 * do in this phase. The caller has issued their first requests. In idle
 * mode, next_idle/opened drive the window of connections being opened.
 */
static void worker_loop(struct worker *w, int *next_idle, int port)
{
    struct epoll_event evs[256];
    uint64_t last_check = now_ns();
    while (w->busy > 0) {
        int n = epoll_wait(w->epfd, evs, 256, 20);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fail("epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                conn_readable(c);
            if (c->fd >= 0 && (evs[i].events & EPOLLOUT))
                conn_flush(c);
        }
        uint64_t now = now_ns();
        /* Workload connections whose window closed while idle are done. */
        if (w->phase == PHASE_RUN && now >= w->win_end) {
            for (int i = 0; i < w->nconns; i++) {
                struct conn *c = &w->conns[i];
                if (c->active && c->count == 0) {
                    c->active = false;
                    w->busy--;
                }
            }
        }
        /* Idle mode: keep IDLE_WINDOW connections opening. */
        if (next_idle != NULL) {
            int opening = 0;
            for (int i = 0; i < *next_idle; i++)
                opening += w->conns[i].active;
            while (opening < IDLE_WINDOW && *next_idle < w->nconns) {
                struct conn *c = &w->conns[(*next_idle)++];
                conn_open(c, port);
                c->script = 1;
                conn_fill(c, now);
                conn_flush(c);
                opening++;
            }
        }
        if (now - last_check > 100000000u) {
            check_stalls(w);
            last_check = now;
        }
    }
}

/* Start a phase on every connection of the worker: issue, flush, count busy. */
static void worker_start_phase(struct worker *w, enum phase phase)
{
    w->phase = phase;
    w->busy = 0;
    uint64_t now = now_ns();
    for (int i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        if (c->fd < 0)
            continue;
        c->active = true;
        w->busy++;
        if (conn_fill(c, now)) {
            c->active = false;
            w->busy--;
        }
        conn_flush(c);
    }
}

/* ------------------------------------------------------------- workers */

static pthread_barrier_t barrier;
static uint64_t window_start;   /* set by the barrier's serial thread */

static void worker_setup_keys(struct worker *w)
{
    for (int i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        c->script = 0;
        conn_open(c, cfg.setup_port);
    }
    worker_start_phase(w, PHASE_SETUP);
    worker_loop(w, NULL, cfg.setup_port);
    for (int i = 0; i < w->nconns; i++)
        conn_close(&w->conns[i]);
}

/* Wait for every worker, then agree on when warm-up and measurement start. */
static void sync_window(struct worker *w)
{
    int r = pthread_barrier_wait(&barrier);
    if (r == PTHREAD_BARRIER_SERIAL_THREAD)
        __atomic_store_n(&window_start, now_ns() + (uint64_t)(cfg.warmup * 1e9), __ATOMIC_SEQ_CST);
    pthread_barrier_wait(&barrier);
    w->win_start = __atomic_load_n(&window_start, __ATOMIC_SEQ_CST);
    w->win_end = w->win_start + (uint64_t)(cfg.seconds * 1e9);
}

static void *run_load(void *arg)
{
    struct worker *w = arg;
    worker_setup_keys(w);
    for (int i = 0; i < w->nconns; i++)
        conn_open(&w->conns[i], cfg.port);
    sync_window(w);
    uint64_t cpu0 = thread_cpu_ns();
    worker_start_phase(w, PHASE_RUN);
    worker_loop(w, NULL, cfg.port);
    w->cpu_ns = thread_cpu_ns() - cpu0;
    for (int i = 0; i < w->nconns; i++)
        conn_close(&w->conns[i]);
    return NULL;
}

/* Churn: a new connection per get; latency from socket() to the reply's end. */
static void *run_churn(void *arg)
{
    struct worker *w = arg;
    worker_setup_keys(w);
    sync_window(w);
    uint64_t cpu0 = thread_cpu_ns();
    w->phase = PHASE_RUN;
    struct conn *c = &w->conns[0];
    int epfd = w->epfd;
    w->epfd = -1;               /* plain poll() here */
    uint64_t interval = cfg.rate > 0 ? (uint64_t)(1e9 / cfg.rate) : 0;
    uint64_t next = now_ns();
    for (;;) {
        if (interval) {
            /* Paced: sleep until the next slot; a late start is not made up for. */
            uint64_t now = now_ns();
            if (now < next) {
                struct timespec ts = {.tv_sec = (time_t)(next / 1000000000u),
                                      .tv_nsec = (long)(next % 1000000000u)};
                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                    ;
            } else {
                next = now;
            }
            next += interval;
        }
        uint64_t start = now_ns();
        if (start >= w->win_end)
            break;
        int fd = dial(cfg.port);
        if (fd < 0)
            fail("connect to port %d: %s (after %" PRIu64 " connections)", cfg.port, strerror(-fd),
                 c->ops_done);
        c->fd = fd;
        c->pollout = false;
        c->head = 0;
        conn_issue(c, OP_GET, (unsigned)(rng_next(&c->rng) % c->nkeys), start);
        expect_head(c);
        uint64_t deadline = start + (uint64_t)(cfg.timeout * 1e9);
        while (c->count > 0) {
            if (c->out_off < c->out_len)
                conn_flush(c);
            struct pollfd pfd = {.fd = fd, .events = POLLIN | (c->out_off < c->out_len ? POLLOUT : 0)};
            uint64_t now = now_ns();
            if (now >= deadline)
                fail("port %d: no complete reply %.1f s after connecting (connection %" PRIu64
                     ", %zu reply bytes seen)",
                     cfg.port, cfg.timeout, c->ops_done + 1, c->exp.pos);
            int r = poll(&pfd, 1, (int)((deadline - now) / 1000000u) + 1);
            if (r < 0 && errno != EINTR)
                fail("poll: %s", strerror(errno));
            if (r <= 0)
                continue;
            ssize_t got = recv(fd, w->rbuf, READ_BUF, 0);
            if (got < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (got < 0)
                fail("port %d: recv: %s (connection %" PRIu64 ")", cfg.port, strerror(errno),
                     c->ops_done + 1);
            if (got == 0)
                fail("port %d: closed by the peer before the reply was complete (connection %" PRIu64
                     ", %zu reply bytes seen)",
                     cfg.port, c->ops_done + 1, c->exp.pos);
            conn_feed(c, w->rbuf, (size_t)got, now_ns());
        }
        close(fd);
        c->fd = -1;
        c->out_off = c->out_len = 0;
    }
    w->cpu_ns = thread_cpu_ns() - cpu0;
    w->epfd = epfd;
    return NULL;
}

/* ------------------------------------------------------------- modes */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)n);
    if ((double)i == p * (double)n && i > 0)
        i--;                    /* nearest rank */
    if (i >= n)
        i = n - 1;
    return (double)v[i] / 1000.0;
}

static struct worker *workers_new(int nworkers, int nconns, unsigned depth, unsigned nkeys)
{
    struct worker *ws = xcalloc((size_t)nworkers, sizeof *ws);
    int id = 0;
    for (int t = 0; t < nworkers; t++) {
        struct worker *w = &ws[t];
        w->idx = t;
        w->nconns = nconns / nworkers + (t < nconns % nworkers);
        w->conns = xcalloc((size_t)w->nconns, sizeof *w->conns);
        w->rbuf = xmalloc(READ_BUF);
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (w->epfd < 0)
            fail("epoll_create1: %s", strerror(errno));
        for (int i = 0; i < w->nconns; i++, id++)
            conn_init(&w->conns[i], w, id, (unsigned)id, xcalloc(nkeys, sizeof(uint32_t)), nkeys,
                      depth);
    }
    return ws;
}

/* Free what workers_new made, closing any connection still open. */
static void workers_free(struct worker *ws, int nworkers)
{
    if (ws == NULL)
        return;
    for (int t = 0; t < nworkers; t++) {
        struct worker *w = &ws[t];
        for (int i = 0; i < w->nconns; i++) {
            struct conn *c = &w->conns[i];
            conn_close(c);
            /* Idle mode's connections share the first one's versions. */
            if (i == 0 || c->versions != w->conns[0].versions)
                free(c->versions);
            free(c->ring);
            free(c->out);
        }
        if (w->epfd >= 0)
            close(w->epfd);
        free(w->conns);
        free(w->rbuf);
        free(w->lat.v);
    }
    free(ws);
}

static int mode_load(void)
{
    int nworkers = cfg.threads < cfg.conns ? cfg.threads : cfg.conns;
    unsigned depth = cfg.mode == MODE_PIPELINE ? (unsigned)cfg.depth : 1;
    struct worker *ws = workers_new(nworkers, cfg.conns, depth, cfg.keys);
    if (pthread_barrier_init(&barrier, NULL, (unsigned)nworkers) != 0)
        fail("pthread_barrier_init failed");
    void *(*fn)(void *) = cfg.mode == MODE_CHURN ? run_churn : run_load;
    for (int t = 0; t < nworkers; t++)
        if (pthread_create(&ws[t].thread, NULL, fn, &ws[t]) != 0)
            fail("pthread_create failed");
    for (int t = 0; t < nworkers; t++)
        pthread_join(ws[t].thread, NULL);

    struct lat all = {0};
    uint64_t gets = 0, sets = 0, cpu_ns = 0;
    for (int t = 0; t < nworkers; t++) {
        for (size_t i = 0; i < ws[t].lat.n; i++)
            lat_add(&all, ws[t].lat.v[i]);
        gets += ws[t].gets;
        sets += ws[t].sets;
        cpu_ns += ws[t].cpu_ns;
    }
    if (all.n == 0)
        fail("port %d: no operation completed inside the %.2f s window", cfg.port, cfg.seconds);
    qsort(all.v, all.n, sizeof *all.v, cmp_u64);
    printf("mode=%s conns=%d depth=%u size=%zu protocol=%s ops=%zu seconds=%.3f ops_s=%.0f "
           "p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f gets=%" PRIu64
           " sets=%" PRIu64 " cpu_us_op=%.2f\n",
           mode_names[cfg.mode], cfg.conns, depth, cfg.size, cfg.binary ? "binary" : "text", all.n,
           cfg.seconds, (double)all.n / cfg.seconds, pct_us(all.v, all.n, 0.50),
           pct_us(all.v, all.n, 0.90), pct_us(all.v, all.n, 0.99), pct_us(all.v, all.n, 0.999),
           (double)all.v[all.n - 1] / 1000.0, gets, sets,
           /* The warm-up runs at about the measured rate. */
           (double)cpu_ns / 1000.0 / ((double)all.n * (cfg.seconds + cfg.warmup) / cfg.seconds));
    free(all.v);
    workers_free(ws, nworkers);
    pthread_barrier_destroy(&barrier);
    return 0;
}

/*
 * Idle: open the connections (IDLE_WINDOW at a time, each proven to reach
 * memcached by one get), hold them until stdin closes, prove each again.
 */
static int mode_idle(void)
{
    struct worker *w = workers_new(1, cfg.conns, 1, 1);
    /* Every connection reads the one key of model 0. */
    uint32_t *shared = w->conns[0].versions;
    for (int i = 1; i < w->nconns; i++) {
        free(w->conns[i].versions);
        w->conns[i].versions = shared;
        w->conns[i].model = 0;
    }
    int nconns = w->nconns;
    w->nconns = 1;
    worker_setup_keys(w);
    w->nconns = nconns;

    uint64_t t0 = now_ns();
    w->phase = PHASE_SCRIPT;
    w->busy = nconns;
    int next = 0;
    worker_loop(w, &next, cfg.port);
    double open_s = (double)(now_ns() - t0) / 1e9;
    printf("ready conns=%d open_s=%.3f\n", nconns, open_s);
    fflush(stdout);

    uint64_t hold0 = now_ns();
    uint64_t limit = hold0 + (uint64_t)(cfg.hold * 1e9);
    for (;;) {
        struct pollfd p[2] = {{.fd = 0, .events = POLLIN}, {.fd = w->epfd, .events = POLLIN}};
        uint64_t now = now_ns();
        if (now >= limit)
            fail("held %d connections for --hold %.0f s without stdin reaching EOF", nconns, cfg.hold);
        int r = poll(p, 2, (int)((limit - now) / 1000000u) + 1);
        if (r < 0 && errno != EINTR)
            fail("poll: %s", strerror(errno));
        if (r <= 0)
            continue;
        if (p[1].revents) {
            struct epoll_event ev;
            if (epoll_wait(w->epfd, &ev, 1, 0) == 1) {
                struct conn *c = ev.data.ptr;
                char b[8];
                ssize_t n = recv(c->fd, b, sizeof b, MSG_PEEK);
                fail("port %d: idle connection %d %s while held", cfg.port, c->id,
                     n == 0 ? "was closed by the peer" : n > 0 ? "received unexpected bytes"
                                                            : "failed");
            }
        }
        if (p[0].revents) {
            char b[256];
            ssize_t n = read(0, b, sizeof b);
            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
                break;
        }
    }
    double held_s = (double)(now_ns() - hold0) / 1e9;

    /* Every held connection still carries a verified get. */
    w->phase = PHASE_SCRIPT;
    w->busy = 0;
    uint64_t now = now_ns();
    for (int i = 0; i < nconns; i++) {
        struct conn *c = &w->conns[i];
        c->script = 1;
        c->active = true;
        w->busy++;
        conn_fill(c, now);
        conn_flush(c);
    }
    worker_loop(w, NULL, cfg.port);
    workers_free(w, 1);
    printf("mode=idle conns=%d open_s=%.3f held_s=%.3f\n", nconns, open_s, held_s);
    return 0;
}

/* Refused: the peer must close without a byte of reply. */
static int mode_refused(void)
{
    uint64_t t0 = now_ns();
    int fd = dial(cfg.port);
    if (fd < 0) {
        printf("mode=refused refused=0 error=\"connect: %s\"\n", strerror(-fd));
        return 1;
    }
    static const char req[] = "version\r\n";
    (void)send(fd, req, sizeof req - 1, MSG_NOSIGNAL);
    uint64_t deadline = t0 + (uint64_t)(cfg.timeout * 1e9);
    for (;;) {
        uint64_t now = now_ns();
        if (now >= deadline) {
            printf("mode=refused refused=0 error=\"still open after %.1f s\"\n", cfg.timeout);
            return 1;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)((deadline - now) / 1000000u) + 1);
        if (r <= 0)
            continue;
        unsigned char b[256];
        ssize_t n = recv(fd, b, sizeof b, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        double ms = (double)(now_ns() - t0) / 1e6;
        if (n > 0) {
            char a[256];
            printf("mode=refused refused=0 error=\"the peer answered %zd bytes: %s\"\n", n,
                   escaped(b, (size_t)n, a, sizeof a));
            return 1;
        }
        printf("mode=refused refused=1 closed_ms=%.1f how=%s\n", ms, n == 0 ? "eof" : strerror(errno));
        close(fd);
        return 0;
    }
}

/* ------------------------------------------------------------- options */

static void usage(void) __attribute__((noreturn));

static void usage(void)
{
    fprintf(stderr,
            "usage: mcbench --port P [--setup-port P] [--host A] [--conns N] [--depth D]\n"
            "               [--size N] [--keys K] [--get-ratio R] [--seconds S] [--warmup S]\n"
            "               [--timeout S] [--hold S] [--threads T] [--binary] [--seed S]\n"
            "               [--rate R] [--setup-auth USER:PASSWORD]\n"
            "               serial|pipeline|churn|idle|refused\n");
    exit(2);
}

static double num_arg(const char *name, const char *s, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s)
        goto bad;
    if (*end == 'k' || *end == 'K')
        v *= 1024, end++;
    else if (*end == 'M')
        v *= 1024 * 1024, end++;
    if (*end != '\0' || v < lo || v > hi)
        goto bad;
    return v;
bad:
    fprintf(stderr, "mcbench: --%s: not a number in [%g, %g]: %s\n", name, lo, hi, s);
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},    {"setup-port", required_argument, NULL, 'P'},
        {"host", required_argument, NULL, 'H'},    {"conns", required_argument, NULL, 'c'},
        {"depth", required_argument, NULL, 'd'},   {"size", required_argument, NULL, 's'},
        {"keys", required_argument, NULL, 'k'},    {"get-ratio", required_argument, NULL, 'g'},
        {"seconds", required_argument, NULL, 'S'}, {"warmup", required_argument, NULL, 'w'},
        {"timeout", required_argument, NULL, 't'}, {"hold", required_argument, NULL, 'h'},
        {"threads", required_argument, NULL, 'T'}, {"binary", no_argument, NULL, 'b'},
        {"seed", required_argument, NULL, 'r'},    {"rate", required_argument, NULL, 'R'},
        {"setup-auth", required_argument, NULL, 'A'},
        {NULL, 0, NULL, 0},
    };
    cfg.port = -1;
    cfg.setup_port = -1;
    cfg.host.s_addr = htonl(INADDR_LOOPBACK);
    cfg.conns = -1;
    cfg.depth = 32;
    cfg.threads = 1;
    cfg.keys = 0;
    cfg.size = 100;
    cfg.get_ratio = -1;
    cfg.seconds = 2;
    cfg.warmup = 0.3;
    cfg.timeout = 5;
    cfg.hold = 300;
    bool seeded = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'p': cfg.port = (int)num_arg("port", optarg, 1, 65535); break;
        case 'P': cfg.setup_port = (int)num_arg("setup-port", optarg, 1, 65535); break;
        case 'H':
            if (inet_pton(AF_INET, optarg, &cfg.host) != 1) {
                fprintf(stderr, "mcbench: --host: not an IPv4 address: %s\n", optarg);
                exit(2);
            }
            break;
        case 'c': cfg.conns = (int)num_arg("conns", optarg, 1, 100000); break;
        case 'd': cfg.depth = (int)num_arg("depth", optarg, 1, MAX_DEPTH); break;
        case 's': cfg.size = (size_t)num_arg("size", optarg, 1, MAX_SIZE); break;
        case 'k': cfg.keys = (unsigned)num_arg("keys", optarg, 1, 1000000); break;
        case 'g': cfg.get_ratio = num_arg("get-ratio", optarg, 0, 1); break;
        case 'S': cfg.seconds = num_arg("seconds", optarg, 0.01, 3600); break;
        case 'w': cfg.warmup = num_arg("warmup", optarg, 0, 3600); break;
        case 't': cfg.timeout = num_arg("timeout", optarg, 0.1, 3600); break;
        case 'h': cfg.hold = num_arg("hold", optarg, 0.1, 86400); break;
        case 'T': cfg.threads = (int)num_arg("threads", optarg, 1, 64); break;
        case 'b': cfg.binary = true; break;
        case 'R': cfg.rate = num_arg("rate", optarg, 0, 1e6); break;
        case 'A': {
            /* USER:PASSWORD -> "USER PASSWORD", memcached -Y's token. */
            char *colon = strchr(optarg, ':');
            if (colon == NULL || colon == optarg || strpbrk(optarg, " \r\n") != NULL ||
                strlen(optarg) > 16000) {
                fprintf(stderr, "mcbench: --setup-auth: not USER:PASSWORD (no space, CR or LF)\n");
                exit(2);
            }
            free(cfg.setup_auth);
            cfg.setup_auth = strdup(optarg);
            if (cfg.setup_auth == NULL)
                fail("out of memory");
            cfg.setup_auth[colon - optarg] = ' ';
            break;
        }
        case 'r': cfg.seed = (uint64_t)num_arg("seed", optarg, 0, 9e15); seeded = true; break;
        default: usage();
        }
    }
    if (optind != argc - 1 || cfg.port < 0)
        usage();
    int m;
    for (m = 0; m < 5 && strcmp(argv[optind], mode_names[m]) != 0; m++)
        ;
    if (m == 5)
        usage();
    cfg.mode = (enum mode)m;
    if (cfg.setup_port < 0)
        cfg.setup_port = cfg.port;
    if (cfg.conns < 0)
        cfg.conns = cfg.mode == MODE_IDLE ? 1000 : 1;
    if (cfg.get_ratio < 0)
        cfg.get_ratio = cfg.mode == MODE_SERIAL ? 0.9 : 1.0;
    if (cfg.keys == 0)
        cfg.keys = cfg.size >= 16384 ? 16 : 256;
    if (cfg.binary && cfg.mode != MODE_SERIAL && cfg.mode != MODE_PIPELINE) {
        fprintf(stderr, "mcbench: --binary works in the serial and pipeline modes only\n");
        exit(2);
    }
    if (cfg.binary && cfg.setup_auth != NULL) {
        fprintf(stderr, "mcbench: --setup-auth is memcached's text-protocol authentication: not with --binary\n");
        exit(2);
    }
    if (cfg.mode == MODE_IDLE)
        cfg.threads = 1;
    if (!seeded && getrandom(&cfg.seed, sizeof cfg.seed, 0) != sizeof cfg.seed)
        cfg.seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
    cfg.seed &= (1ull << 52) - 1;
    snprintf(cfg.prefix, sizeof cfg.prefix, "mcb%d:%" PRIx64, (int)getpid(), cfg.seed & 0xffffff);

    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    if (cfg.mode == MODE_REFUSED)
        return mode_refused();

    /* The pool: random bytes, with the protocol's own tokens planted in. */
    pool_len = cfg.size + (1u << 20);
    pool = xmalloc(pool_len);
    uint64_t s = cfg.seed;
    for (size_t i = 0; i < pool_len; i += 8) {
        uint64_t r = rng_next(&s);
        memcpy(pool + i, &r, pool_len - i < 8 ? pool_len - i : 8);
    }
    static const char *const tokens[] = {"\r\n", "\r\nEND\r\n", "VALUE ", "STORED\r\n", "\0"};
    for (size_t i = 0; i + 16 < pool_len; i += 997)
        memcpy(pool + i, tokens[(i / 997) % 5], strlen(tokens[(i / 997) % 5]) + 1);

    int status = cfg.mode == MODE_IDLE ? mode_idle() : mode_load();
    free(pool);
    return status;
}
