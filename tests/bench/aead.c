/*
 * aead - the record encryption a TLS tunnel cannot avoid, per operation of
 * a benchmark workload: with the plaintext relay's CPU, the tunnel's part
 * of the best case that tests/bench/report.py computes (`make bench`).
 *
 * usage: aead [--size N] [--get-ratio R] [--depth D] [--seconds S]
 *
 * It times wolfCrypt's AES-128-GCM (the suite memtunnel negotiates with
 * memcached) sealing what a client sends and opening what memcached
 * answers, the way the load generator's text-protocol traffic is cut into
 * TLS 1.3 records: at most 16 KiB of plaintext (plus the content-type
 * byte) per record, a 16-byte tag, a 5-byte header as additional data.
 * depth > 1 is a pipeline of gets, requests and replies sent D at a time.
 * Only the cipher is counted, nothing of the record layer around it, so
 * the result is a lower bound of what any tunnel built on this wolfSSL
 * spends on TLS per operation.
 *
 * Prints one line: "aead=AES-128-GCM ... us_op=X", from the best of its
 * trials (the machine's noise only ever adds).
 */
#include <wolfssl/options.h>
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

/* Seconds per call of a batch: the best of short trials (10 ms each, for
 * s seconds in all; on a shared machine slow spells last longer than
 * that), after one untimed trial (caches warm, the core at its clock). */
#define TRIAL 0.01
static double timed(struct flow *up, struct flow *down, double s)
{
    double best = 1e9;
    int trials = (int)(s / TRIAL);
    for (int trial = -1; trial < trials; trial++) {
        long calls = 0;
        double t0 = now(), t;
        do {
            for (int i = 0; i < 4; i++, calls++) {
                flow_run(up, 0);
                flow_run(down, 1);
            }
            t = now() - t0;
        } while (t < TRIAL);
        if (trial >= 0 && t / (double)calls < best)
            best = t / (double)calls;
    }
    return best;
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

    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            fprintf(stderr, "usage: aead [--size N] [--get-ratio R] [--depth D] [--seconds S]\n");
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
        else {
            fprintf(stderr, "aead: unknown option '%s'\n", argv[i]);
            return 64;
        }
    }

    static const unsigned char key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    if (wc_AesInit(&aes, NULL, INVALID_DEVID) != 0 || wc_AesGcmSetKey(&aes, key, sizeof key) != 0)
        die("wc_AesGcmSetKey failed");

    size_t d = (size_t)depth, n = (size_t)size;
    struct flow get_up, get_down, set_up, set_down;
    flow_init(&get_up, d * GET_REQ);
    flow_init(&get_down, d * (n + REPLY_HEAD));
    flow_init(&set_up, n + SET_HEAD);
    flow_init(&set_down, STORED);

    double get = timed(&get_up, &get_down, seconds / 2) / (double)d;
    double set = get_ratio < 1 ? timed(&set_up, &set_down, seconds / 2) : 0;
    double per_op = get_ratio * get + (1 - get_ratio) * set;
    printf("aead=AES-128-GCM size=%zu get_ratio=%.2f depth=%zu get_us=%.3f set_us=%.3f us_op=%.3f\n",
           n, get_ratio, d, get * 1e6, set * 1e6, per_op * 1e6);
    return 0;
}
