/*
 * mcframe_fuzz: the framers of --reuse (mcframe.c), mcreq on the client's
 * bytes and mcreply on the server's.
 *
 * Input: a mode byte (its value mod 4), four bytes seeding the cuts, then:
 *   0  client bytes, fed to mcreq;
 *   1  a byte choosing the protocol and how many `mn` the client sent, four
 *      bytes of opaque, then server bytes, fed to an armed mcreply;
 *   2  choices from which a well-formed text/meta conversation is made:
 *      requests, their replies (data blocks holding protocol text), the
 *      sentinel and its answer;
 *   3  the same in the binary protocol.
 * Checked besides memory errors (every input is copied to a buffer of
 * exactly its size):
 *   - fed whole, in random cuts (empty ones too) or one byte at a time,
 *     each framer ends in the same state: proto, why, requests, mn, quiet,
 *     set_seen and mcreq_boundary; why, units, mn, found, and
 *     the bytes given, kept back and stray;
 *   - the cuts of mcreply_feed account for every byte: the client's, kept
 *     back, released, and once the answer is found, the bytes before it +
 *     its length + those after it == what was fed; the answer's bytes are
 *     "MN\r\n" or our NOOP's reply; once a reply beyond the client's
 *     (none quiet) comes, it and every later byte are stray; a framer
 *     that stopped otherwise gives every byte
 *     to the client;
 *   - a generated conversation is judged MCFRAME_OK, and mcreq reports
 *     the requests, `mn` count, quiet and set_seen it was made
 *     of; the same with every reply sent and one more inserted anywhere
 *     before the answer is not.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcframe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "mcframe_fuzz: contract broken: %s\n", what);
        abort();
    }
}

/* ---- cuts ------------------------------------------------------------------ */

static uint32_t rng;

static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

/* The length of the next piece: often short, sometimes empty or long. */
static size_t piece(size_t left)
{
    uint32_t x = next();
    size_t n;
    switch (x & 3) {
    case 0: n = 0; break;
    case 1: n = 1 + (x >> 8) % 3; break;
    case 2: n = 1 + (x >> 8) % 32; break;
    default: n = (x >> 8) % (left + 1); break;
    }
    return n < left ? n : left;
}

/* ---- requests ------------------------------------------------------------ */

static void req_same(const struct mcreq *a, const struct mcreq *b)
{
    check(a->proto == b->proto, "mcreq: the same proto however cut");
    check(a->why == b->why, "mcreq: the same why however cut");
    check(a->requests == b->requests, "mcreq: the same requests however cut");
    check(a->mn == b->mn, "mcreq: the same mn however cut");
    check(a->quiet == b->quiet, "mcreq: the same quiet however cut");
    check(a->set_seen == b->set_seen, "mcreq: the same set_seen however cut");
    check(mcreq_boundary(a) == mcreq_boundary(b), "mcreq: the same boundary however cut");
}

/* Feed p whole into *whole, and in random cuts and byte by byte into
 * copies: the same state. */
static void req_all(struct mcreq *whole, const uint8_t *p, size_t n)
{
    static struct mcreq part;

    mcreq_init(whole);
    check(mcreq_boundary(whole), "mcreq: a boundary before any byte");
    mcreq_feed(whole, p, n);
    check(whole->proto == (n == 0 ? MCFRAME_NONE : p[0] == 0x80 ? MCFRAME_BINARY
                                                                 : MCFRAME_TEXT),
          "mcreq: the protocol is the first byte's");
    check(whole->why != MCFRAME_OK || whole->requests >= whole->mn,
          "mcreq: mn are requests");
    if (whole->why != MCFRAME_OK)
        check(!mcreq_boundary(whole), "mcreq: a tainted framer is not at a boundary");

    mcreq_init(&part);
    for (size_t at = 0; at < n;) {
        size_t k = piece(n - at);
        mcreq_feed(&part, p + at, k);
        at += k;
    }
    req_same(whole, &part);

    if (n <= 4096) {
        mcreq_init(&part);
        for (size_t at = 0; at < n; at++)
            mcreq_feed(&part, p + at, 1);
        req_same(whole, &part);
    }
}

/* ---- replies ------------------------------------------------------------- */

struct acc {
    size_t client;      /* given to the client */
    size_t held;        /* kept back now */
    size_t answer;      /* the sentinel's answer */
    size_t after;       /* stray bytes after it */
};

static void reply_feed(struct mcreply *r, const uint8_t *p, size_t n, struct acc *a)
{
    struct mcreply_cut c;
    int was = r->found || r->beyond;

    mcreply_feed(r, p, n, &c);
    check(c.released <= a->held, "mcreply: releases only what it kept back");
    a->held -= c.released;
    a->client += c.released + c.client;
    a->after += c.after;
    if (was) {
        check(c.released == 0 && c.client == 0 && c.held == 0 && c.after == n,
              "mcreply: every byte after the answer or beyond the replies is stray");
    } else if (r->beyond) {
        check(c.held == 0 && c.client + c.after == n,
              "mcreply: a reply beyond the client's and all after it are stray");
        check(r->why == MCFRAME_STRAY_REPLY || r->why == MCFRAME_BAD_REPLY
              || r->why == MCFRAME_REFUSED, "mcreply: beyond the client's replies is stray");
        a->after += a->held;    /* kept back of it: no one's */
        a->held = 0;
    } else if (r->found) {
        check(c.held == 0, "mcreply: nothing kept back once found");
        check(c.client + c.after <= n, "mcreply: the cut fits the chunk");
        a->answer = a->held + (n - c.client - c.after);
        a->held = 0;
    } else {
        check(c.client + c.held + c.after == n, "mcreply: every byte has a place");
        check(c.after == 0, "mcreply: nothing after an answer not found");
        a->held += c.held;
    }
    check(a->held <= MCFRAME_SENTINEL_MAX, "mcreply: keeps back at most a sentinel");
    check(r->held == a->held, "mcreply: held says what is kept back");
    if (r->why != MCFRAME_OK && !r->found)
        check(a->held == 0, "mcreply: a stopped framer keeps nothing back");
}

struct outcome {
    struct acc a;
    enum mcframe_why why;
    uint64_t units, mn;
    int found;
};

/* Arm a reply framer for q (or leave it unarmed) and feed it p in cuts:
 * whole when `how` is 0, random cuts when 1, byte by byte when 2. */
static void reply_run(const struct mcreq *q, int arm, uint32_t opaque, const uint8_t *p,
                      size_t n, int how, struct outcome *o, struct mcreply *r)
{
    unsigned char s[MCFRAME_SENTINEL_MAX];

    mcreply_init(r);
    mcreply_proto(r, q->proto);
    if (arm)
        check(mcframe_sentinel(q, r, opaque, s) == (q->proto == MCFRAME_TEXT ? 4u : 24u),
              "sentinel: its length");
    memset(&o->a, 0, sizeof o->a);
    if (how == 0) {
        reply_feed(r, p, n, &o->a);
    } else if (how == 1) {
        for (size_t at = 0; at < n;) {
            size_t k = piece(n - at);
            reply_feed(r, p + at, k, &o->a);
            at += k;
        }
    } else {
        for (size_t at = 0; at < n; at++)
            reply_feed(r, p + at, 1, &o->a);
    }
    o->why = r->why;
    o->units = r->units;
    o->mn = r->mn;
    o->found = r->found;

    if (r->found) {
        check(arm, "mcreply: found without a sentinel");
        check(o->a.client + o->a.answer + o->a.after == n,
              "mcreply: before + answer + after == fed");
        if (q->proto == MCFRAME_TEXT) {
            check(o->a.answer == 4 && memcmp(p + o->a.client, "MN\r\n", 4) == 0,
                  "mcreply: the answer is an MN line");
            check(r->mn == q->mn + 1, "mcreply: the answer is the MN after the client's");
        } else {
            const uint8_t *h = p + o->a.client;
            check(o->a.answer == 24 && h[0] == 0x81 && h[1] == 0x0a
                  && (uint32_t)h[12] << 24 == (opaque & 0xff000000u)
                  && h[13] == (uint8_t)(opaque >> 16) && h[14] == (uint8_t)(opaque >> 8)
                  && h[15] == (uint8_t)opaque && h[8] == 0 && h[9] == 0 && h[10] == 0
                  && h[11] == 0, "mcreply: the answer is our NOOP's");
        }
        check((o->a.after > 0) == (r->why == MCFRAME_STRAY_REPLY)
              || (o->a.after == 0 && r->why == MCFRAME_OK),
              "mcreply: bytes after the answer are stray");
    } else if (r->why == MCFRAME_OK) {
        check(o->a.client + o->a.held == n, "mcreply: no byte lost");
    } else if (r->beyond) {
        check(arm && !q->quiet, "mcreply: beyond only behind requests that are never quiet");
        check(r->units == q->requests + 1, "mcreply: beyond one reply more than requests");
        check(o->a.client + o->a.after == n && o->a.after > 0,
              "mcreply: the client's replies, then stray bytes");
    } else {
        check(o->a.client == n && o->a.held == 0,
              "mcreply: a stopped framer gives every byte to the client");
    }
}

static void outcome_same(const struct outcome *x, const struct outcome *y)
{
    check(x->why == y->why, "mcreply: the same why however cut");
    check(x->found == y->found, "mcreply: the same found however cut");
    check(x->units == y->units, "mcreply: the same units however cut");
    check(x->mn == y->mn, "mcreply: the same mn however cut");
    check(x->a.client == y->a.client, "mcreply: the same bytes the client's however cut");
    check(x->a.held == y->a.held, "mcreply: the same bytes kept back however cut");
    check(x->a.after == y->a.after, "mcreply: the same stray bytes however cut");
}

static void reply_all(const struct mcreq *q, int arm, uint32_t opaque, const uint8_t *p,
                      size_t n, struct outcome *whole, struct mcreply *r)
{
    static struct mcreply part;
    struct outcome o;

    reply_run(q, arm, opaque, p, n, 0, whole, r);
    reply_run(q, arm, opaque, p, n, 1, &o, &part);
    outcome_same(whole, &o);
    check(mcframe_judge(q, r) == mcframe_judge(q, &part), "judge: the same however cut");
    if (n <= 4096) {
        reply_run(q, arm, opaque, p, n, 2, &o, &part);
        outcome_same(whole, &o);
    }
}

/* ---- generated conversations --------------------------------------------- */

/* Choices read from the input; zeros once it is spent. */
struct src {
    const uint8_t *p;
    size_t n;
};

static unsigned pick(struct src *s, unsigned range)
{
    if (s->n == 0 || range == 0)
        return 0;
    unsigned v = *s->p++;
    s->n--;
    return v % range;
}

struct buf {
    uint8_t *p;
    size_t n, cap;
};

static void put(struct buf *b, const void *d, size_t n)
{
    if (n == 0)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        check(p != NULL, "out of memory");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void putf(struct buf *b, const char *fmt, unsigned long long v)
{
    char t[64];
    int n = snprintf(t, sizeof t, fmt, v);
    put(b, t, (size_t)n);
}

/* Protocol text that a framer searching instead of counting would stop at. */
static const char *const traps[] = {
    "\r\nEND\r\n", "MN\r\n", "mn\r\n", "VALUE ", "VALUE k 0 3\r\n", "\r\n", "STAT ",
    "EN\r\n", "VA 2 \r\n", "quit\r\n", "\x80\x0a", "\x81\x0a", "\n", "\r",
};

/* A data block or value: traps, input bytes, header-like bytes. */
static void value(struct src *s, struct buf *b, uint32_t opaque)
{
    unsigned parts = pick(s, 5);
    for (unsigned i = 0; i < parts; i++) {
        switch (pick(s, 4)) {
        case 0:
            puts_(b, traps[pick(s, sizeof traps / sizeof traps[0])]);
            break;
        case 1: {
            unsigned k = pick(s, 24);
            for (unsigned j = 0; j < k; j++) {
                uint8_t c = (uint8_t)pick(s, 256);
                put(b, &c, 1);
            }
            break;
        }
        case 2: {
            /* The sentinel's answer itself, and its request. */
            uint8_t h[24] = { 0x81, 0x0a };
            h[12] = (uint8_t)(opaque >> 24);
            h[13] = (uint8_t)(opaque >> 16);
            h[14] = (uint8_t)(opaque >> 8);
            h[15] = (uint8_t)opaque;
            if (pick(s, 2))
                h[0] = 0x80;
            put(b, h, 24);
            break;
        }
        default: {
            static const char x[] = "xyzzy0123456789";
            put(b, x, 1 + pick(s, sizeof x - 1));
        }
        }
    }
}

static void key(struct src *s, struct buf *b)
{
    static const char set[] = "abcdefghijklmnopqrstuvwxyz0123456789_:.-/|{}\x01\x7f\xff";
    unsigned n = pick(s, 8) == 0 ? 250 : 1 + pick(s, 10);
    for (unsigned i = 0; i < n; i++)
        put(b, &set[pick(s, sizeof set - 1)], 1);
}

/* One reply, and whether the server may leave it out. */
struct reply {
    size_t at, n;
    int optional;
};

struct convo {
    struct buf req, rep;
    struct reply replies[64];
    unsigned nreplies;
    uint64_t requests, mn;
    int quiet, set_seen;
};

static void reply_begin(struct convo *c)
{
    c->replies[c->nreplies].at = c->rep.n;
}

static void reply_end(struct convo *c, int optional)
{
    c->replies[c->nreplies].n = c->rep.n - c->replies[c->nreplies].at;
    c->replies[c->nreplies].optional = optional;
    c->nreplies++;
    c->requests++;
}

/* One text or meta request as a well-behaved client sends it, and the
 * reply memcached gives it. */
static void text_one(struct src *s, struct convo *c, int first)
{
    struct buf *q = &c->req, *r = &c->rep;
    struct buf v = { 0 };
    int noreply = 0;
    unsigned cmd = pick(s, 17);

    reply_begin(c);
    switch (cmd) {
    case 0: case 1: case 2: {
        static const char *const w[] = { "get", "gets", "gat 100", "gats -1" };
        unsigned which = pick(s, 4);
        puts_(q, w[which]);
        unsigned keys = 1 + pick(s, 3);
        for (unsigned i = 0; i < keys; i++) {
            struct buf k = { 0 };
            puts_(q, " ");
            key(s, &k);
            put(q, k.p, k.n);
            if (pick(s, 2)) {
                v.n = 0;
                value(s, &v, 0);
                puts_(r, "VALUE ");
                put(r, k.p, k.n);
                putf(r, " %llu", pick(s, 256));
                putf(r, " %llu", v.n);
                if (which & 1)
                    putf(r, " %llu", 1 + pick(s, 250));
                puts_(r, "\r\n");
                put(r, v.p, v.n);
                puts_(r, "\r\n");
            }
            free(k.p);
        }
        puts_(q, "\r\n");
        puts_(r, "END\r\n");
        break;
    }
    case 3: case 4: {
        static const char *const w[] = { "set", "add", "replace", "append", "prepend", "cas" };
        static const char *const a[] = { "STORED", "NOT_STORED", "EXISTS", "NOT_FOUND",
                                         "SERVER_ERROR object too large for cache",
                                         "CLIENT_ERROR bad data chunk" };
        unsigned which = first && pick(s, 2) ? 0 : pick(s, 6);
        value(s, &v, 0);
        puts_(q, w[which]);
        puts_(q, " ");
        key(s, q);
        putf(q, " %llu", pick(s, 256));
        putf(q, pick(s, 2) ? " %llu" : " -%llu", pick(s, 256));
        putf(q, " %llu", v.n);
        if (which == 5)
            putf(q, " %llu", pick(s, 256));
        noreply = pick(s, 3) == 0;
        if (noreply)
            puts_(q, " noreply");
        puts_(q, "\r\n");
        put(q, v.p, v.n);
        puts_(q, "\r\n");
        puts_(r, a[pick(s, 6)]);
        puts_(r, "\r\n");
        if (which == 0)
            c->set_seen = 1;
        break;
    }
    case 5:
        puts_(q, pick(s, 2) ? "mn\r\n" : "mn O123 k\r\n");
        puts_(r, "MN\r\n");
        c->mn++;
        break;
    case 6:
        puts_(q, "delete ");
        key(s, q);
        noreply = pick(s, 2);
        puts_(q, noreply ? " noreply\r\n" : "\r\n");
        puts_(r, pick(s, 2) ? "DELETED\r\n" : "NOT_FOUND\r\n");
        break;
    case 7:
        puts_(q, pick(s, 2) ? "incr " : "decr ");
        key(s, q);
        putf(q, " %llu", pick(s, 256));
        noreply = pick(s, 2);
        puts_(q, noreply ? " noreply\r\n" : "\r\n");
        if (pick(s, 2))
            putf(r, "%llu\r\n", pick(s, 256));
        else
            puts_(r, "NOT_FOUND\r\n");
        break;
    case 8:
        puts_(q, "touch ");
        key(s, q);
        putf(q, " %llu", pick(s, 256));
        noreply = pick(s, 2);
        puts_(q, noreply ? " noreply\r\n" : "\r\n");
        puts_(r, pick(s, 2) ? "TOUCHED\r\n" : "NOT_FOUND\r\n");
        break;
    case 9: case 10: {
        int want_v = pick(s, 2);
        puts_(q, "mg ");
        key(s, q);
        if (want_v)
            puts_(q, " v");
        if (pick(s, 2))
            puts_(q, " f t c O999");
        noreply = pick(s, 3) == 0;
        if (noreply)
            puts_(q, " q");
        puts_(q, "\r\n");
        if (pick(s, 2)) {
            puts_(r, "EN\r\n");
        } else if (want_v) {
            value(s, &v, 0);
            putf(r, "VA %llu f0 t-1 c5 O999\r\n", v.n);
            put(r, v.p, v.n);
            puts_(r, "\r\n");
        } else {
            puts_(r, "HD f0\r\n");
        }
        break;
    }
    case 11: {
        value(s, &v, 0);
        puts_(q, "ms ");
        key(s, q);
        putf(q, " %llu", v.n);
        if (pick(s, 2))
            puts_(q, " T0 F5 c");
        noreply = pick(s, 3) == 0;
        if (noreply)
            puts_(q, " q");
        puts_(q, "\r\n");
        put(q, v.p, v.n);
        puts_(q, "\r\n");
        static const char *const a[] = { "HD c7\r\n", "NS\r\n", "EX\r\n", "NF\r\n",
                                         "CLIENT_ERROR bad data chunk\r\n" };
        puts_(r, a[pick(s, 5)]);
        break;
    }
    case 12:
        puts_(q, "md ");
        key(s, q);
        noreply = pick(s, 3) == 0;
        puts_(q, noreply ? " q\r\n" : "\r\n");
        puts_(r, pick(s, 2) ? "HD\r\n" : "NF\r\n");
        break;
    case 13:
        puts_(q, "ma ");
        key(s, q);
        if (pick(s, 2)) {
            puts_(q, " v\r\n");
            unsigned long long n = pick(s, 256);
            char t[8];
            int len = snprintf(t, sizeof t, "%llu", n);
            putf(r, "VA %llu\r\n", (unsigned long long)len);
            putf(r, "%llu\r\n", n);
        } else {
            puts_(q, "\r\n");
            puts_(r, pick(s, 2) ? "HD\r\n" : "NF\r\n");
        }
        break;
    case 14:
        puts_(q, "stats\r\n");
        for (unsigned i = pick(s, 4); i > 0; i--)
            putf(r, "STAT x%llu 1\r\n", i);
        puts_(r, "END\r\n");
        break;
    case 15:
        puts_(q, pick(s, 2) ? "version\r\n" : "verbosity 1\r\n");
        puts_(r, pick(s, 2) ? "VERSION 1.6.18\r\n" : "OK\r\n");
        break;
    default:
        puts_(q, "flush_all");
        noreply = pick(s, 2);
        puts_(q, noreply ? " noreply\r\n" : "\r\n");
        puts_(r, "OK\r\n");
        break;
    }
    free(v.p);
    if (noreply)
        c->quiet = 1;
    reply_end(c, noreply);
}

static void bin_hdr(struct buf *b, uint8_t magic, uint8_t op, size_t keylen, size_t extlen,
                    size_t body, uint16_t status, uint32_t opaque)
{
    uint8_t h[24] = { 0 };
    h[0] = magic;
    h[1] = op;
    h[2] = (uint8_t)(keylen >> 8);
    h[3] = (uint8_t)keylen;
    h[4] = (uint8_t)extlen;
    h[6] = (uint8_t)(status >> 8);
    h[7] = (uint8_t)status;
    h[8] = (uint8_t)(body >> 24);
    h[9] = (uint8_t)(body >> 16);
    h[10] = (uint8_t)(body >> 8);
    h[11] = (uint8_t)body;
    h[12] = (uint8_t)(opaque >> 24);
    h[13] = (uint8_t)(opaque >> 16);
    h[14] = (uint8_t)(opaque >> 8);
    h[15] = (uint8_t)opaque;
    put(b, h, 24);
}

/* One binary request in the shape memcached accepts, and its reply.
 * Client NOOPs never carry the sentinel's opaque. */
static void bin_one(struct src *s, struct convo *c, uint32_t sentinel)
{
    static const struct {
        uint8_t op, extlen, key, value, quiet, reply_ext;
    } ops[] = {
        { 0x00, 0, 1, 0, 0, 4 },  { 0x09, 0, 1, 0, 1, 4 },  { 0x0c, 0, 1, 0, 0, 4 },
        { 0x0d, 0, 1, 0, 1, 4 },  { 0x01, 8, 1, 1, 0, 0 },  { 0x11, 8, 1, 1, 1, 0 },
        { 0x02, 8, 1, 1, 0, 0 },  { 0x12, 8, 1, 1, 1, 0 },  { 0x03, 8, 1, 1, 0, 0 },
        { 0x13, 8, 1, 1, 1, 0 },  { 0x04, 0, 1, 0, 0, 0 },  { 0x14, 0, 1, 0, 1, 0 },
        { 0x05, 20, 1, 0, 0, 0 }, { 0x15, 20, 1, 0, 1, 0 }, { 0x06, 20, 1, 0, 0, 0 },
        { 0x16, 20, 1, 0, 1, 0 }, { 0x0a, 0, 0, 0, 0, 0 },  { 0x0b, 0, 0, 0, 0, 0 },
        { 0x0e, 0, 1, 1, 0, 0 },  { 0x19, 0, 1, 1, 1, 0 },  { 0x0f, 0, 1, 1, 0, 0 },
        { 0x1a, 0, 1, 1, 1, 0 },  { 0x1c, 4, 1, 0, 0, 0 },  { 0x1d, 4, 1, 0, 0, 4 },
        { 0x1e, 4, 1, 0, 1, 4 },  { 0x23, 4, 1, 0, 0, 4 },  { 0x24, 4, 1, 0, 1, 4 },
        { 0x08, 0, 0, 0, 0, 0 },  { 0x18, 4, 0, 0, 1, 0 },
    };
    unsigned i = pick(s, sizeof ops / sizeof ops[0]);
    struct buf k = { 0 }, v = { 0 }, rv = { 0 };
    uint32_t opaque = (uint32_t)pick(s, 256) << 24 | (uint32_t)pick(s, 256);

    if (ops[i].op == 0x0a && opaque == sentinel)
        opaque ^= 1;
    if (ops[i].key) {
        unsigned n = pick(s, 8) == 0 ? 250 : 1 + pick(s, 10);
        for (unsigned j = 0; j < n; j++) {
            uint8_t b = (uint8_t)pick(s, 256);
            put(&k, &b, 1);
        }
    }
    if (ops[i].value)
        value(s, &v, sentinel);
    bin_hdr(&c->req, 0x80, ops[i].op, k.n, ops[i].extlen, ops[i].extlen + k.n + v.n, 0,
            opaque);
    for (unsigned j = 0; j < ops[i].extlen; j++) {
        uint8_t b = (uint8_t)pick(s, 256);
        put(&c->req, &b, 1);
    }
    put(&c->req, k.p, k.n);
    put(&c->req, v.p, v.n);

    /* The reply: success (which a quiet opcode leaves out) or an error
     * (which it still sends). */
    reply_begin(c);
    int ok = pick(s, 3) != 0;
    if (ok) {
        size_t ext = ops[i].reply_ext;
        int with_key = ops[i].op == 0x0c || ops[i].op == 0x0d || ops[i].op == 0x23
                       || ops[i].op == 0x24;
        if (ext)
            value(s, &rv, sentinel);
        else if (ops[i].op == 0x05 || ops[i].op == 0x06 || ops[i].op == 0x15
                 || ops[i].op == 0x16)
            put(&rv, "\0\0\0\0\0\0\0\x07", 8);
        else if (ops[i].op == 0x0b)
            puts_(&rv, "1.6.18");
        bin_hdr(&c->rep, 0x81, ops[i].op, with_key ? k.n : 0, ext,
                ext + (with_key ? k.n : 0) + rv.n, 0, opaque);
        put(&c->rep, "\0\0\0\0", ext);
        if (with_key)
            put(&c->rep, k.p, k.n);
        put(&c->rep, rv.p, rv.n);
    } else {
        static const char *const e[] = { "Not found", "Data exists for key.", "Too large.",
                                         "Not stored." };
        const char *m = e[pick(s, 4)];
        bin_hdr(&c->rep, 0x81, ops[i].op, 0, 0, strlen(m), 1 + pick(s, 5), opaque);
        puts_(&c->rep, m);
    }
    if (ops[i].quiet)
        c->quiet = 1;
    reply_end(c, ops[i].quiet && ok);
    free(k.p);
    free(v.p);
    free(rv.p);
}

/* Check a generated conversation: the requests as made, the replies up
 * to the sentinel's answer judged OK; and with every reply sent and one
 * more, not OK. */
static void convo(struct src *s, int binary)
{
    static struct convo c;
    static struct mcreq q;
    static struct mcreply r;
    struct buf rep = { 0 }, full = { 0 };
    struct outcome o;
    uint32_t opaque = (uint32_t)pick(s, 256) << 16 | (uint32_t)pick(s, 256) | 0x01000000u;
    unsigned n = 1 + pick(s, 24);

    free(c.req.p);
    free(c.rep.p);
    memset(&c, 0, sizeof c);
    for (unsigned i = 0; i < n; i++) {
        if (binary)
            bin_one(s, &c, opaque);
        else
            text_one(s, &c, i == 0);
    }

    uint8_t *req = malloc(c.req.n);
    check(req != NULL, "out of memory");
    memcpy(req, c.req.p, c.req.n);
    req_all(&q, req, c.req.n);
    check(q.why == MCFRAME_OK, "a well-formed conversation: requests untainted");
    check(mcreq_boundary(&q), "a well-formed conversation: at a boundary");
    check(q.proto == (binary ? MCFRAME_BINARY : MCFRAME_TEXT), "the protocol");
    check(q.requests == c.requests, "every request counted");
    check(q.mn == c.mn, "every mn counted");
    check(q.quiet == c.quiet, "quiet when a request may go unanswered");
    check(q.set_seen == c.set_seen, "set_seen when a command is set");
    free(req);

    /* The replies: optional ones left out as the input says; then the
     * sentinel's answer. */
    uint8_t answer[24] = { 0x81, 0x0a };
    size_t alen = binary ? 24 : 4;
    if (binary) {
        answer[12] = (uint8_t)(opaque >> 24);
        answer[13] = (uint8_t)(opaque >> 16);
        answer[14] = (uint8_t)(opaque >> 8);
        answer[15] = (uint8_t)opaque;
    } else {
        memcpy(answer, "MN\r\n", 4);
    }
    uint64_t sent = 0;
    for (unsigned i = 0; i < c.nreplies; i++) {
        if (c.replies[i].optional && pick(s, 2))
            continue;
        put(&rep, c.rep.p + c.replies[i].at, c.replies[i].n);
        sent++;
    }
    size_t before = rep.n;
    put(&rep, answer, alen);
    uint8_t *p = malloc(rep.n);
    check(p != NULL, "out of memory");
    memcpy(p, rep.p, rep.n);
    reply_all(&q, 1, opaque, p, rep.n, &o, &r);
    check(o.why == MCFRAME_OK, "a well-formed conversation: replies make sense");
    check(o.found, "a well-formed conversation: the answer found");
    check(o.a.client == before, "the answer found at its byte");
    check(o.a.after == 0, "nothing after the answer");
    check(o.units == sent, "every reply counted once");
    check(mcframe_judge(&q, &r) == MCFRAME_OK, "a well-formed conversation is judged OK");
    free(p);

    /* Every reply sent, one more inserted at a reply boundary. */
    static const char *const extra_text[] = {
        "END\r\n", "STORED\r\n", "VALUE x 0 4\r\nMN\r\n\r\nEND\r\n", "MN\r\n",
        "STAT a b\r\nEND\r\n", "VA 2\r\nMN\r\n", "ERROR\r\n", "HD\r\n",
    };
    unsigned at = pick(s, c.nreplies + 1);
    for (unsigned i = 0; i <= c.nreplies; i++) {
        if (i == at) {
            if (binary) {
                uint32_t eo = (uint32_t)pick(s, 256);
                bin_hdr(&full, 0x81, (uint8_t)(pick(s, 2) ? 0x0a : 0x00), 0, 0, 0, 0,
                        eo == opaque ? eo ^ 1 : eo);
            } else {
                puts_(&full, extra_text[pick(s, sizeof extra_text / sizeof extra_text[0])]);
            }
        }
        if (i < c.nreplies)
            put(&full, c.rep.p + c.replies[i].at, c.replies[i].n);
    }
    put(&full, answer, alen);
    p = malloc(full.n);
    check(p != NULL, "out of memory");
    memcpy(p, full.p, full.n);
    reply_all(&q, 1, opaque, p, full.n, &o, &r);
    check(mcframe_judge(&q, &r) != MCFRAME_OK, "one reply too many is not OK");
    free(p);
    free(rep.p);
    free(full.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mcreq q;
    static struct mcreply r;
    struct outcome o;

    if (size < 5)
        return 0;
    unsigned mode = data[0] % 4;
    rng = ((uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 8
           | data[4]) | 1;
    data += 5;
    size -= 5;

    if (mode == 0) {
        uint8_t *p = malloc(size ? size : 1);
        if (p == NULL)
            return 0;
        memcpy(p, data, size);
        req_all(&q, p, size);
        free(p);
        return 0;
    }
    if (mode == 1) {
        if (size < 5)
            return 0;
        int binary = data[0] & 1, arm = (data[0] & 2) == 0;
        unsigned mn = (data[0] >> 2) % 4;
        uint32_t opaque = (uint32_t)data[1] << 24 | (uint32_t)data[2] << 16
                          | (uint32_t)data[3] << 8 | data[4];
        data += 5;
        size -= 5;
        /* A client that sent what makes q's protocol and mn count. */
        mcreq_init(&q);
        if (binary) {
            static const uint8_t noop[24] = { 0x80, 0x0a };
            mcreq_feed(&q, noop, sizeof noop);
        } else {
            mcreq_feed(&q, "get a\r\n", 7);
            for (unsigned i = 0; i < mn; i++)
                mcreq_feed(&q, "mn\r\n", 4);
        }
        uint8_t *p = malloc(size ? size : 1);
        if (p == NULL)
            return 0;
        memcpy(p, data, size);
        reply_all(&q, arm, opaque, p, size, &o, &r);
        enum mcframe_why j = mcframe_judge(&q, &r);
        check(j != MCFRAME_OK || (r.found && r.why == MCFRAME_OK && o.a.after == 0),
              "judge: OK only with the answer found and nothing after it");
        free(p);
        return 0;
    }
    struct src s = { data, size };
    convo(&s, mode == 3);
    return 0;
}
