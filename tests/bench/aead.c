/*
 * aead - the TLS work a tunnel cannot avoid, per operation of a benchmark
 * workload: with the plaintext relay's CPU, the tunnel's part of the best
 * case that tests/bench/report.py computes (`make bench`).
 *
 * usage: aead [--size N] [--get-ratio R] [--depth D] [--seconds S]
 *             [--ca FILE --cert FILE --key FILE]
 *
 * It times wolfCrypt's AES-128-GCM (the suite memtunnel negotiates with
 * memcached) sealing what a client sends and opening what memcached
 * answers, the way the load generator's text-protocol traffic is cut into
 * TLS 1.3 records: at most 16 KiB of plaintext (plus the content-type
 * byte) per record, a 16-byte tag, a 5-byte header as additional data.
 * depth > 1 is a pipeline of gets, requests and replies sent D at a time.
 * That is the cipher alone, a lower bound of what any tunnel built on this
 * wolfSSL spends on TLS per operation.
 *
 * With --ca, --cert and --key it also times the whole record layer: a
 * wolfSSL TLS 1.3 client and server in one process, joined by memory
 * buffers (no sockets), the server verified against the CA. Per operation
 * the client writes the request (wolfSSL_write, at most 16 KiB a call, as
 * memtunnel does) and reads every reply record until wolfSSL wants more
 * input (wolfSSL_read into 64 KiB, as memtunnel does); only the client's
 * calls are timed, the server's reads and writes (one record per reply,
 * as memcached writes them) are not. Copying ciphertext into wolfSSL and
 * plaintext out of it is part of it: memtunnel cannot avoid either.
 *
 * Prints one line: "aead=AES-128-GCM ... [tls_us_op=Y] us_op=X", each
 * from the best of its trials (the machine's noise only ever adds).
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/aes.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RECORD 16384            /* TLS plaintext limit per record */
#define TAG 16
#define GET_REQ 22              /* "get mcb12345:abcdef:0:123\r\n", about */
#define REPLY_HEAD 40           /* "VALUE ... 0 N\r\n" and "\r\nEND\r\n" */
#define SET_HEAD 40             /* "set ... 0 0 N\r\n" and "\r\n" */
#define STORED 8                /* "STORED\r\n" */

static Aes aes;
static unsigned char iv[12], aad[5];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "aead: %s\n", what);
    exit(1);
}

/* One direction of one operation: n bytes of plaintext, sealed (or, when
 * open, opened) in records; in holds the sealed form, made once. */
struct flow {
    size_t n, records;
    unsigned char *plain, *sealed, *tags;
};

/* Plaintext bytes of record r, with the content-type byte. */
static size_t record_len(const struct flow *f, size_t r)
{
    return (r + 1 < f->records ? RECORD : f->n - r * RECORD) + 1;
}

static void flow_init(struct flow *f, size_t n)
{
    f->n = n;
    f->records = (n + RECORD - 1) / RECORD;
    /* TLS 1.3 adds the inner content type to each record's plaintext. */
    size_t total = n + f->records;
    f->plain = calloc(1, total);
    f->sealed = malloc(total);
    f->tags = malloc(f->records * TAG);
    if (f->plain == NULL || f->sealed == NULL || f->tags == NULL)
        die("out of memory");
    size_t off = 0;
    for (size_t r = 0; r < f->records; r++) {
        size_t len = record_len(f, r);
        if (wc_AesGcmEncrypt(&aes, f->sealed + off, f->plain + off, (word32)len, iv,
                             sizeof iv, f->tags + r * TAG, TAG, aad, sizeof aad) != 0)
            die("wc_AesGcmEncrypt failed");
        off += len;
    }
}

static void flow_run(struct flow *f, int open)
{
    size_t off = 0;
    for (size_t r = 0; r < f->records; r++) {
        size_t len = record_len(f, r);
        int rc;
        if (open)
            rc = wc_AesGcmDecrypt(&aes, f->plain + off, f->sealed + off, (word32)len, iv,
                                  sizeof iv, f->tags + r * TAG, TAG, aad, sizeof aad);
        else
            rc = wc_AesGcmEncrypt(&aes, f->sealed + off, f->plain + off, (word32)len, iv,
                                  sizeof iv, f->tags + r * TAG, TAG, aad, sizeof aad);
        if (rc != 0)
            die(open ? "wc_AesGcmDecrypt failed (tag mismatch)" : "wc_AesGcmEncrypt failed");
        off += len;
    }
}

/* What one now() - now() pair costs (the least seen), taken off every
 * timed call: set once, before any timing. */
static double clock_pair;

static void measure_clock(void)
{
    clock_pair = 1;
    for (int i = 0; i < 1000; i++) {
        double t0 = now(), t1 = now();
        if (t1 - t0 < clock_pair)
            clock_pair = t1 - t0;
    }
}

/* Seconds per call of one(arg), which returns the seconds it spent on what
 * is timed: the best of short trials (10 ms each, for s seconds in all; on
 * a shared machine slow spells last longer than that), after one untimed
 * trial (caches warm, the core at its clock). */
#define TRIAL 0.01
static double best_of(double (*one)(const void *), const void *arg, double s)
{
    double best = 1e9;
    int trials = (int)(s / TRIAL);
    for (int trial = -1; trial < trials; trial++) {
        long calls = 0;
        double spent = 0, t0 = now();
        do {
            for (int i = 0; i < 4; i++, calls++)
                spent += one(arg);
        } while (now() - t0 < TRIAL);
        if (trial >= 0 && spent / (double)calls < best)
            best = spent / (double)calls;
    }
    return best;
}

/* One operation's records through the cipher: sealing what goes up,
 * opening what comes down. */
struct cipher_op {
    struct flow *up, *down;
};

static double cipher_once(const void *arg)
{
    const struct cipher_op *op = arg;
    double t0 = now();
    flow_run(op->up, 0);
    flow_run(op->down, 1);
    return now() - t0 - clock_pair;
}

/* ---- the whole record layer ------------------------------------------- */

#define READ_CHUNK (64 * 1024)  /* memtunnel's read buffer */
#define PIPE_CAP (4 * 1024 * 1024)

/* One direction of the in-memory connection: what was sent, not yet read. */
struct pipe {
    unsigned char *buf;
    size_t len, off;
};

static struct pipe to_server, to_client;

static int pipe_send(WOLFSSL *ssl, char *p, int sz, void *arg)
{
    struct pipe *q = arg;
    (void)ssl;
    if (q->off > 0 && q->off == q->len)
        q->off = q->len = 0;
    if (q->len + (size_t)sz > PIPE_CAP)
        die("a direction holds more than 4 MiB unread");
    memcpy(q->buf + q->len, p, (size_t)sz);
    q->len += (size_t)sz;
    return sz;
}

static int pipe_recv(WOLFSSL *ssl, char *p, int sz, void *arg)
{
    struct pipe *q = arg;
    size_t n = q->len - q->off;
    (void)ssl;
    if (n == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    if (n > (size_t)sz)
        n = (size_t)sz;
    memcpy(p, q->buf + q->off, n);
    q->off += n;
    return (int)n;
}

static WOLFSSL *client, *server;
static unsigned char *plain, *sink;   /* what is written; where reads land */

static WOLFSSL_CTX *new_ctx(WOLFSSL_METHOD *m)
{
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(m);
    if (ctx == NULL || wolfSSL_CTX_set_cipher_list(ctx, "TLS13-AES128-GCM-SHA256") != WOLFSSL_SUCCESS)
        die("wolfSSL_CTX_new failed");
    wolfSSL_CTX_SetIORecv(ctx, pipe_recv);
    wolfSSL_CTX_SetIOSend(ctx, pipe_send);
    return ctx;
}

static int want_more(WOLFSSL *ssl, int r)
{
    int err = wolfSSL_get_error(ssl, r);
    return err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE;
}

/* Everything one side's peer sent: read until wolfSSL wants more input;
 * returns the plaintext bytes. */
static size_t drain(WOLFSSL *ssl)
{
    size_t got = 0;
    for (;;) {
        int r = wolfSSL_read(ssl, sink, READ_CHUNK);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (!want_more(ssl, r))
            die("wolfSSL_read failed");
        return got;
    }
}

/* n bytes as memtunnel's tlsconn_write sends them: 16 KiB a call. */
static void send_all(WOLFSSL *ssl, size_t n)
{
    for (size_t off = 0; off < n;) {
        int chunk = n - off > RECORD ? RECORD : (int)(n - off);
        if (wolfSSL_write(ssl, plain, chunk) != chunk)
            die("wolfSSL_write failed");
        off += (size_t)chunk;
    }
}

/* One side's turn of the handshake: 1 once it is done. */
static int handshake_step(WOLFSSL *ssl, int (*step)(WOLFSSL *), const char *failure)
{
    int r = step(ssl);
    if (r == WOLFSSL_SUCCESS)
        return 1;
    if (!want_more(ssl, r))
        die(failure);
    return 0;
}

static void session_open(const char *ca, const char *cert, const char *key)
{
    if (wolfSSL_Init() != WOLFSSL_SUCCESS)
        die("wolfSSL_Init failed");
    to_server.buf = malloc(PIPE_CAP);
    to_client.buf = malloc(PIPE_CAP);
    plain = calloc(1, RECORD);
    sink = malloc(READ_CHUNK);
    if (!to_server.buf || !to_client.buf || !plain || !sink)
        die("out of memory");
    WOLFSSL_CTX *cc = new_ctx(wolfTLSv1_3_client_method());
    WOLFSSL_CTX *sc = new_ctx(wolfTLSv1_3_server_method());
    if (wolfSSL_CTX_load_verify_locations(cc, ca, NULL) != WOLFSSL_SUCCESS)
        die("cannot load the --ca file");
    wolfSSL_CTX_set_verify(cc, WOLFSSL_VERIFY_PEER, NULL);
    if (wolfSSL_CTX_use_certificate_chain_file(sc, cert) != WOLFSSL_SUCCESS)
        die("cannot load the --cert file");
    if (wolfSSL_CTX_use_PrivateKey_file(sc, key, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
        die("cannot load the --key file");
    client = wolfSSL_new(cc);
    server = wolfSSL_new(sc);
    if (client == NULL || server == NULL)
        die("wolfSSL_new failed");
    wolfSSL_SetIOReadCtx(client, &to_client);
    wolfSSL_SetIOWriteCtx(client, &to_server);
    wolfSSL_SetIOReadCtx(server, &to_server);
    wolfSSL_SetIOWriteCtx(server, &to_client);
    int c_done = 0, s_done = 0;
    for (int step = 0; step < 20 && !(c_done && s_done); step++) {
        c_done = c_done || handshake_step(client, wolfSSL_connect, "the handshake failed (client)");
        s_done = s_done || handshake_step(server, wolfSSL_accept, "the handshake failed (server)");
    }
    if (!(c_done && s_done))
        die("the handshake did not finish");
    drain(client);              /* the server's session tickets */
}

/* One operation's traffic through the record layer: the client sends `up`
 * bytes, then reads `replies` replies of `down` bytes each, written by the
 * server one record (or, past 16 KiB, several) per reply. */
struct tls_op {
    size_t up, replies, down;
};

/* One exchange; returns the seconds spent in the client's calls. */
static double tls_once(const void *arg)
{
    const struct tls_op *op = arg;
    double t0 = now();
    send_all(client, op->up);
    double t = now() - t0;
    if (drain(server) != op->up)
        die("the server did not get the whole request");
    for (size_t i = 0; i < op->replies; i++)
        send_all(server, op->down);
    t0 = now();
    size_t got = drain(client);
    t += now() - t0;
    if (got != op->replies * op->down)
        die("the client did not get the whole reply");
    return t - 2 * clock_pair;
}

/* A workload's mix: `get_ratio` gets, the rest sets. */
static double per_op(double get_ratio, double get, double set)
{
    return get_ratio * get + (1 - get_ratio) * set;
}

static double number(const char *flag, const char *v, double lo, double hi)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end != v && (*end == 'k' || *end == 'K'))
        x *= 1024, end++;
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "aead: %s: '%s' is not a number from %g to %g\n", flag, v, lo, hi);
        exit(64);
    }
    return x;
}

int main(int argc, char **argv)
{
    double size = 100, get_ratio = 0.9, depth = 1, seconds = 0.5;
    const char *ca = NULL, *cert = NULL, *key = NULL;

    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            fprintf(stderr, "usage: aead [--size N] [--get-ratio R] [--depth D] [--seconds S]"
                            " [--ca FILE --cert FILE --key FILE]\n");
            return 64;
        }
        if (strcmp(argv[i], "--size") == 0)
            size = number("--size", argv[++i], 1, 1 << 20);
        else if (strcmp(argv[i], "--get-ratio") == 0)
            get_ratio = number("--get-ratio", argv[++i], 0, 1);
        else if (strcmp(argv[i], "--depth") == 0)
            depth = number("--depth", argv[++i], 1, 1024);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = number("--seconds", argv[++i], 0.05, 60);
        else if (strcmp(argv[i], "--ca") == 0)
            ca = argv[++i];
        else if (strcmp(argv[i], "--cert") == 0)
            cert = argv[++i];
        else if (strcmp(argv[i], "--key") == 0)
            key = argv[++i];
        else {
            fprintf(stderr, "aead: unknown option '%s'\n", argv[i]);
            return 64;
        }
    }

    if ((ca || cert || key) && !(ca && cert && key)) {
        fprintf(stderr, "aead: --ca, --cert and --key go together\n");
        return 64;
    }

    static const unsigned char aes_key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    if (wc_AesInit(&aes, NULL, INVALID_DEVID) != 0 || wc_AesGcmSetKey(&aes, aes_key, sizeof aes_key) != 0)
        die("wc_AesGcmSetKey failed");

    size_t d = (size_t)depth, n = (size_t)size;
    struct flow get_up, get_down, set_up, set_down;
    flow_init(&get_up, d * GET_REQ);
    flow_init(&get_down, d * (n + REPLY_HEAD));
    flow_init(&set_up, n + SET_HEAD);
    flow_init(&set_down, STORED);

    measure_clock();
    struct cipher_op get_op = {&get_up, &get_down}, set_op = {&set_up, &set_down};
    double get = best_of(cipher_once, &get_op, seconds / 2) / (double)d;
    double set = get_ratio < 1 ? best_of(cipher_once, &set_op, seconds / 2) : 0;
    printf("aead=AES-128-GCM size=%zu get_ratio=%.2f depth=%zu get_us=%.3f set_us=%.3f",
           n, get_ratio, d, get * 1e6, set * 1e6);
    if (ca) {
        session_open(ca, cert, key);
        struct tls_op tget_op = {d * GET_REQ, d, n + REPLY_HEAD}, tset_op = {n + SET_HEAD, 1, STORED};
        double tget = best_of(tls_once, &tget_op, seconds / 2) / (double)d;
        double tset = get_ratio < 1 ? best_of(tls_once, &tset_op, seconds / 2) : 0;
        printf(" tls_get_us=%.3f tls_set_us=%.3f tls_us_op=%.3f", tget * 1e6, tset * 1e6,
               per_op(get_ratio, tget, tset) * 1e6);
    }
    printf(" us_op=%.3f\n", per_op(get_ratio, get, set) * 1e6);
    return 0;
}
