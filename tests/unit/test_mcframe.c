/*
 * mcframe: the request and reply framers of --reuse, byte for byte.
 *
 * Requests in the text, meta and binary protocols, each fed whole, cut at
 * every byte and fed one byte at a time (the state must not depend on how
 * the bytes came); data blocks and bodies holding protocol text; what sets
 * `quiet` and `set_seen`; every taint reason with an example, including
 * the lines memcached reads otherwise than a naive framer would (see
 * proto_text.c / proto_bin.c of memcached 1.6.18 and its current parser).
 * Replies: VALUE and VA blocks holding protocol text, STAT...END once, MN
 * counting, the sentinel's answer found at its byte (kept back while it
 * may be the answer, released when not), stray bytes after it, extra
 * replies, binary NOOP opaques; and the judge.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mcframe.h"
#include "suites.h"

/* ---- helpers --------------------------------------------------------------- */

#define ANY UINT64_MAX          /* a count not checked (after a taint) */

struct want_req {
    enum mcframe_proto proto;
    enum mcframe_why why;
    uint64_t requests;
    uint64_t mn;
    int quiet;
    int set_seen;
    int boundary;
};

static void req_same(const struct mcreq *a, const struct mcreq *b,
                     const char *label, size_t cut)
{
    ck_assert_msg(a->proto == b->proto, "%s: proto differs when cut at %zu", label, cut);
    ck_assert_msg(a->why == b->why, "%s: why %d, whole %d when cut at %zu", label,
                  (int)b->why, (int)a->why, cut);
    ck_assert_msg(a->requests == b->requests, "%s: requests %llu, whole %llu when cut at %zu",
                  label, (unsigned long long)b->requests,
                  (unsigned long long)a->requests, cut);
    ck_assert_msg(a->mn == b->mn, "%s: mn differs when cut at %zu", label, cut);
    ck_assert_msg(a->quiet == b->quiet, "%s: quiet differs when cut at %zu", label, cut);
    ck_assert_msg(a->set_seen == b->set_seen, "%s: set_seen differs when cut at %zu",
                  label, cut);
    ck_assert_msg(mcreq_boundary(a) == mcreq_boundary(b),
                  "%s: boundary differs when cut at %zu", label, cut);
}

/* Feed p whole and check w; then cut at every byte, then one byte at a
 * time: the same state each time. */
static void req_check(const void *data, size_t n, const struct want_req *w,
                      const char *label)
{
    const unsigned char *p = data;
    static struct mcreq whole, part;

    mcreq_init(&whole);
    ck_assert_int_eq(mcreq_boundary(&whole), 1);
    ck_assert_int_eq(whole.proto, MCFRAME_NONE);
    mcreq_feed(&whole, p, n);
    ck_assert_msg(whole.proto == w->proto, "%s: proto %d, want %d", label,
                  (int)whole.proto, (int)w->proto);
    ck_assert_msg(whole.why == w->why, "%s: why %d (%s), want %d (%s)", label,
                  (int)whole.why, mcframe_why_words(whole.why), (int)w->why,
                  mcframe_why_words(w->why));
    if (w->requests != ANY)
        ck_assert_msg(whole.requests == w->requests, "%s: requests %llu, want %llu",
                      label, (unsigned long long)whole.requests,
                      (unsigned long long)w->requests);
    if (w->mn != ANY)
        ck_assert_msg(whole.mn == w->mn, "%s: mn %llu, want %llu", label,
                      (unsigned long long)whole.mn, (unsigned long long)w->mn);
    ck_assert_msg(whole.quiet == (w->quiet != 0), "%s: quiet %d, want %d", label,
                  whole.quiet, w->quiet);
    ck_assert_msg(whole.set_seen == (w->set_seen != 0), "%s: set_seen %d, want %d",
                  label, whole.set_seen, w->set_seen);
    if (w->why == MCFRAME_OK)
        ck_assert_msg(mcreq_boundary(&whole) == w->boundary, "%s: boundary %d, want %d",
                      label, mcreq_boundary(&whole), w->boundary);
    else
        ck_assert_msg(!mcreq_boundary(&whole), "%s: a tainted framer at a boundary", label);

    for (size_t k = 0; k <= n; k++) {
        mcreq_init(&part);
        mcreq_feed(&part, p, k);
        mcreq_feed(&part, p + k, n - k);
        req_same(&whole, &part, label, k);
    }
    mcreq_init(&part);
    for (size_t k = 0; k < n; k++)
        mcreq_feed(&part, p + k, 1);
    mcreq_feed(&part, p, 0);
    req_same(&whole, &part, label, 1);
}

/* A binary header: magic, opcode, key and extras lengths, body, opaque. */
static size_t bin(unsigned char *out, unsigned magic, unsigned op, unsigned keylen,
                  unsigned extlen, uint32_t body, uint32_t opaque)
{
    memset(out, 0, 24);
    out[0] = (unsigned char)magic;
    out[1] = (unsigned char)op;
    out[2] = (unsigned char)(keylen >> 8);
    out[3] = (unsigned char)keylen;
    out[4] = (unsigned char)extlen;
    out[8] = (unsigned char)(body >> 24);
    out[9] = (unsigned char)(body >> 16);
    out[10] = (unsigned char)(body >> 8);
    out[11] = (unsigned char)body;
    out[12] = (unsigned char)(opaque >> 24);
    out[13] = (unsigned char)(opaque >> 16);
    out[14] = (unsigned char)(opaque >> 8);
    out[15] = (unsigned char)opaque;
    return 24;
}

/* A whole binary request: header, then extlen bytes of extras, the key,
 * the value. */
static size_t bin_req(unsigned char *out, unsigned op, const char *key,
                      unsigned extlen, const void *val, size_t vlen, uint32_t opaque)
{
    size_t klen = strlen(key);
    size_t n = bin(out, 0x80, op, (unsigned)klen, extlen,
                   (uint32_t)(extlen + klen + vlen), opaque);
    memset(out + n, 0xee, extlen);
    n += extlen;
    memcpy(out + n, key, klen);
    n += klen;
    memcpy(out + n, val, vlen);
    return n + vlen;
}

/* ---- text requests ------------------------------------------------------- */

/* A data block of protocol text: the replies and requests a framer that
 * searched instead of counting would stop at. */
#define TRAP "\r\nEND\r\nmn\r\nMN\r\nVALUE k 0 1\r\n\x80\r\nquit\r\n"
#define TRAP_LEN "37"

static const struct {
    const char *label;
    const char *in;
    struct want_req w;
} texts[] = {
    { "get", "get a\r\n", { MCFRAME_TEXT, MCFRAME_OK, 1, 0, 0, 0, 1 } },
    { "gets, gat, gats, several keys", "gets a b c\r\ngat 10 a b\r\ngats 0 x\r\n",
      { MCFRAME_TEXT, MCFRAME_OK, 3, 0, 0, 0, 1 } },
    /* 1.6.18 takes a bare LF, newer servers answer CLIENT_ERROR: a
     * client's "mn\n" would then not be answered MN. */
    { "a bare LF taints", "get a\nversion\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 0, 0 } },
    { "runs of spaces", "get   a    b  \r\n",
      { MCFRAME_TEXT, MCFRAME_OK, 1, 0, 0, 0, 1 } },
    { "set, first", "set k 0 0 5\r\nhello\r\n",
      { MCFRAME_TEXT, MCFRAME_OK, 1, 0, 0, 1, 1 } },
    { "set, not first", "get a\r\nset k 0 0 5\r\nhello\r\n",
      { MCFRAME_TEXT, MCFRAME_OK, 2, 0, 0, 1, 1 } },
    { "a data block of protocol text", "set k 1 2 " TRAP_LEN "\r\n" TRAP "\r\nget k\r\n",
      { MCFRAME_TEXT, MCFRAME_OK, 2, 0, 0, 1, 1 } },
    { "a data block that is a whole request", "add k 0 0 4\r\nmn\r\n\r\nmn\r\n",
      { MCFRAME_TEXT, MCFRAME_OK, 2, 1, 0, 0, 1 } },
    { "an empty data block", "append k 0 0 0\r\n\r\nprepend k 0 0 1\r\n\n\r\n",
      { MCFRAME_TEXT, MCFRAME_OK, 2, 0, 0, 0, 1 } },
    { "replace, a negative exptime", "replace k 4294967295 -1 2\r\nab\r\n",
      { MCFRAME_TEXT, MCFRAME_OK, 1, 0, 0, 0, 1 } },
    { "set noreply", "set k 0 0 1 noreply\r\nx\r\n",
      { MCFRAME_TEXT, MCFRAME_OK, 1, 0, 1, 1, 1 } },
    { "cas", "cas k 0 0 1 12345\r\nx\r\n",
      { MCFRAME_TEXT, MCFRAME_OK, 1, 0, 0, 0, 1 } },
    { "cas noreply", "cas k 0 0 1 12345 noreply\r\nx\r\n",
      { MCFRAME_TEXT, MCFRAME_OK, 1, 0, 1, 0, 1 } },
    { "the biggest data block memcached reads", "set k 0 0 2147483645\r\nab",
      { MCFRAME_TEXT, MCFRAME_OK, 0, 0, 0, 1, 0 } },
    { "mn", "mn\r\n", { MCFRAME_TEXT, MCFRAME_OK, 1, 1, 0, 0, 1 } },
    /* memcached answers MN to `mn` whatever follows it (proto_text.c:2758). */
    { "mn with tokens", "mn foo bar\r\nmn O1 k\r\nmn \r\n",
      { MCFRAME_TEXT, MCFRAME_OK, 3, 3, 0, 0, 1 } },
    { "ms", "ms k 5 T0 F3\r\nhello\r\n", { MCFRAME_TEXT, MCFRAME_OK, 1, 0, 0, 0, 1 } },
    { "ms q, data that is mn", "ms k 2 q\r\nmn\r\n",
      { MCFRAME_TEXT, MCFRAME_OK, 1, 0, 1, 0, 1 } },
    { "ms of protocol text", "ms k " TRAP_LEN " c k\r\n" TRAP "\r\n",
      { MCFRAME_TEXT, MCFRAME_OK, 1, 0, 0, 0, 1 } },
    { "mg, md, ma, me", "mg k v\r\nmd k\r\nma k\r\nme k\r\n",
      { MCFRAME_TEXT, MCFRAME_OK, 4, 0, 0, 0, 1 } },
    { "mg q", "mg k v q\r\n", { MCFRAME_TEXT, MCFRAME_OK, 1, 0, 1, 0, 1 } },
    { "md q", "md k q O123\r\n", { MCFRAME_TEXT, MCFRAME_OK, 1, 0, 1, 0, 1 } },
    { "delete noreply", "delete k noreply\r\n",
      { MCFRAME_TEXT, MCFRAME_OK, 1, 0, 1, 0, 1 } },
    { "delete, incr, decr, touch", "delete k\r\nincr k 1\r\ndecr k 2\r\ntouch k 10\r\n",
      { MCFRAME_TEXT, MCFRAME_OK, 4, 0, 0, 0, 1 } },
    { "incr noreply", "incr k 1 noreply\r\n", { MCFRAME_TEXT, MCFRAME_OK, 1, 0, 1, 0, 1 } },
    { "touch noreply", "touch k 1 noreply\r\n", { MCFRAME_TEXT, MCFRAME_OK, 1, 0, 1, 0, 1 } },
    { "flush_all noreply", "flush_all noreply\r\n",
      { MCFRAME_TEXT, MCFRAME_OK, 1, 0, 1, 0, 1 } },
    { "version, verbosity, flush_all, stats",
      "version\r\nverbosity 1\r\nflush_all 0\r\nstats\r\n",
      { MCFRAME_TEXT, MCFRAME_OK, 4, 0, 0, 0, 1 } },
    /* "noreply" is a key here, not a flag. */
    { "get noreply", "get noreply\r\n", { MCFRAME_TEXT, MCFRAME_OK, 1, 0, 0, 0, 1 } },

    /* Inside a request: not at a boundary. */
    { "inside a line", "get a", { MCFRAME_TEXT, MCFRAME_OK, 0, 0, 0, 0, 0 } },
    { "a line without its LF", "get a\r", { MCFRAME_TEXT, MCFRAME_OK, 0, 0, 0, 0, 0 } },
    { "inside a data block", "set k 0 0 5\r\nhel",
      { MCFRAME_TEXT, MCFRAME_OK, 0, 0, 0, 1, 0 } },
    { "before the block's LF", "set k 0 0 5\r\nhello\r",
      { MCFRAME_TEXT, MCFRAME_OK, 0, 0, 0, 1, 0 } },
    { "after a whole request, inside the next", "mn\r\nm",
      { MCFRAME_TEXT, MCFRAME_OK, 1, 1, 0, 0, 0 } },

    /* Taints. */
    { "unknown command", "get a\r\nfoo\r\n",
      { MCFRAME_TEXT, MCFRAME_UNKNOWN, ANY, ANY, 0, 0, 0 } },
    { "an empty line", "\r\n", { MCFRAME_TEXT, MCFRAME_UNKNOWN, ANY, ANY, 0, 0, 0 } },
    { "bget", "bget k\r\n", { MCFRAME_TEXT, MCFRAME_UNKNOWN, ANY, ANY, 0, 0, 0 } },
    { "watch", "watch\r\n", { MCFRAME_TEXT, MCFRAME_UNKNOWN, ANY, ANY, 0, 0, 0 } },
    { "lru_crawler metadump", "lru_crawler metadump all\r\n",
      { MCFRAME_TEXT, MCFRAME_UNKNOWN, ANY, ANY, 0, 0, 0 } },
    /* "mn\r" is not mn: memcached strips only one '\r' (ERROR). */
    { "mn with two CRs", "mn\r\r\n", { MCFRAME_TEXT, MCFRAME_UNKNOWN, ANY, ANY, 0, 0, 0 } },
    { "mn and a tab", "mn\t\r\n", { MCFRAME_TEXT, MCFRAME_UNKNOWN, ANY, ANY, 0, 0, 0 } },
    { "quit", "get a\r\nquit\r\n", { MCFRAME_TEXT, MCFRAME_QUIT, ANY, ANY, 0, 0, 0 } },
    { "shutdown", "shutdown\r\n", { MCFRAME_TEXT, MCFRAME_QUIT, ANY, ANY, 0, 0, 0 } },
    { "set: a bad flags", "set k x 0 1\r\nx\r\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 1, 0 } },
    { "set: a bad exptime", "set k 0 1x 1\r\nx\r\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 1, 0 } },
    { "set: a bad length", "set k 0 0 five\r\nfive\r\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 1, 0 } },
    { "set: a negative length", "set k 0 0 -1\r\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 1, 0 } },
    { "set: a length over INT_MAX - 2", "set k 0 0 2147483646\r\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 1, 0 } },
    /* 1.6.18 stores strtol's 4294967301 in an int32: 5. */
    { "set: a length over 32 bits", "set k 0 0 4294967301\r\nhello\r\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 1, 0 } },
    { "set: a plus sign", "set k 0 0 +1\r\nx\r\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 1, 0 } },
    /* strtol stops at the tab and takes 5; a framer splitting at tabs
     * would too, but memcached then counts the tokens otherwise. */
    { "set: a tab", "set k 0 0\t5\r\nhello\r\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 1, 0 } },
    { "set: a tab after the length", "set k 0 0 5\tx\r\nhello\r\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 1, 0 } },
    { "set: too few tokens", "set k 0 0\r\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 1, 0 } },
    { "set: too many tokens", "set k 0 0 1 noreply x\r\nx\r\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 1, 0 } },
    { "cas: a bad unique", "cas k 0 0 1 x\r\nx\r\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 0, 0 } },
    { "data not ended by CRLF", "set k 0 0 2\r\nmn\nx\r\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 1, 0 } },
    { "data ended by LF", "set k 0 0 2\r\nab\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 1, 0 } },
    { "ms without a length", "ms k\r\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 0, 0 } },
    { "ms: a bad length", "ms k S5\r\nhello\r\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 0, 0 } },
    /* 1.6.18 answers "options flags too long" and does not swallow the
     * data (proto_text.c:1394): the data is read as commands. */
    { "ms with 20 tokens",
      "ms k 2 T1 F1 O1 k c s t f h l u v I P L Mx N1\r\nmn\r\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 0, 0 } },
    /* The newest memcached's tokenizer refuses a flag that starts with
     * neither a letter nor a digit and does not swallow the data. */
    { "ms: a flag that is not a letter", "ms k 2 !\r\nmn\r\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 0, 0 } },
    /* The newest memcached refuses 32-bit numbers of more than 11
     * characters, without swallowing the data. */
    { "set: a length of 12 characters", "set k 0 0 000000000002\r\nmn\r\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 1, 0 } },
    { "ms: a length of 12 characters", "ms k 000000000002\r\nmn\r\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 0, 0 } },
    /* 1.6.18 skips leading spaces; the newest memcached answers ERROR
     * and reads the data as commands (proto_parser.c:186). */
    { "a leading space", " set k 0 0 2\r\nmn\r\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 0, 0 } },
    { "a leading space before mn", " mn\r\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 0, 0 } },
    /* cachedump and detail dump print raw keys, which may hold
     * "\r\nMN\r\n" (items.c:638). */
    { "stats cachedump", "stats cachedump 1 0\r\n",
      { MCFRAME_TEXT, MCFRAME_UNKNOWN, ANY, ANY, 0, 0, 0 } },
    { "stats detail dump", "stats detail dump\r\n",
      { MCFRAME_TEXT, MCFRAME_UNKNOWN, ANY, ANY, 0, 0, 0 } },
    { "mg without a key", "mg\r\n", { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 0, 0 } },
    /* Sticky: the first reason is kept. */
    { "the first reason is kept", "foo\r\nquit\r\nset k 0 0 x\r\n",
      { MCFRAME_TEXT, MCFRAME_UNKNOWN, ANY, ANY, 0, 0, 0 } },
    { "set_seen even when refused", "set k 0 0\r\n",
      { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 1, 0 } },
};

START_TEST(text_requests)
{
    req_check(texts[_i].in, strlen(texts[_i].in), &texts[_i].w, texts[_i].label);
}
END_TEST

/* Inputs with a NUL inside, where strlen would stop early. */
START_TEST(text_nul)
{
    static const char set_nul[] = "set k 0 0 5\0 9\r\nhello\r\n";
    static const char get_nul[] = "get a\0b\r\nmn\r\n";
    struct want_req bad = { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 1, 0 };
    struct want_req ok = { MCFRAME_TEXT, MCFRAME_OK, 2, 1, 0, 0, 1 };

    req_check(set_nul, sizeof set_nul - 1, &bad, "set with a NUL");
    req_check(get_nul, sizeof get_nul - 1, &ok, "get with a NUL in a key");
}
END_TEST

/* set_seen: any set, refused or not (memcached -Y takes a set after
 * refused commands as the login). */
START_TEST(set_seen)
{
    static const struct {
        const char *in;
        int set_seen;
    } cases[] = {
        { "set k 0 0 1\r\nx\r\n", 1 },
        { "get a\r\nset k 0 0 1\r\nx\r\n", 1 },
        { "version\r\nset u 0 0 3\r\na b\r\n", 1 },
        { "get a\r\nset k 0 0\r\n", 1 },
        { "add k 0 0 1\r\nx\r\ncas k 0 0 1 1\r\nx\r\nms k 1\r\nx\r\n", 0 },
        { "get set\r\nmg set\r\n", 0 },
        { "sets k 0 0 1\r\n", 0 },
    };
    struct mcreq q;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mcreq_init(&q);
        mcreq_feed(&q, cases[i].in, strlen(cases[i].in));
        ck_assert_msg(q.set_seen == cases[i].set_seen, "%s: set_seen %d", cases[i].in,
                      q.set_seen);
    }
    /* The binary protocol has no ASCII login. */
    static unsigned char b[64];
    size_t n = bin_req(b, 0x01, "k", 8, "v", 1, 1);
    mcreq_init(&q);
    mcreq_feed(&q, b, n);
    ck_assert_int_eq(q.why, MCFRAME_OK);
    ck_assert_int_eq(q.set_seen, 0);
}
END_TEST

/* MCFRAME_LINE_MAX: a line of exactly that many bytes before its LF is
 * kept; one more taints, except a get's, whose keys are passed over. */
START_TEST(long_lines)
{
    static char line[4096];
    struct want_req mn = { MCFRAME_TEXT, MCFRAME_OK, 1, 1, 0, 0, 1 };
    struct want_req mn2 = { MCFRAME_TEXT, MCFRAME_OK, 2, 1, 0, 0, 1 };
    struct want_req long_line = { MCFRAME_TEXT, MCFRAME_LONG_LINE, ANY, ANY, 0, 0, 0 };
    struct want_req mid = { MCFRAME_TEXT, MCFRAME_OK, 0, 0, 0, 0, 0 };
    size_t n;

    /* "mn" and tokens of at most 216 bytes (under the key limit), up to
     * MCFRAME_LINE_MAX - 1 bytes, then CR LF. */
    memcpy(line, "mn", 2);
    n = 2;
    for (int i = 0; i < 4; i++) {
        line[n++] = ' ';
        memset(line + n, 'x', 200);
        n += 200;
    }
    line[n++] = ' ';
    memset(line + n, 'y', MCFRAME_LINE_MAX - 1 - n);
    n = MCFRAME_LINE_MAX - 1;
    memcpy(line + n, "\r\n", 2);
    req_check(line, n + 2, &mn, "an mn line of LINE_MAX bytes before its LF");
    line[n] = 'y';
    memcpy(line + n + 1, "\r\n", 2);
    req_check(line, n + 3, &long_line, "an mn line of LINE_MAX + 1 bytes before its LF");
    req_check(line, MCFRAME_LINE_MAX + 1, &long_line, "LINE_MAX + 1 bytes, no LF yet");

    /* A get line of 3000 bytes, keys of 9 bytes: one request. */
    memcpy(line, "get", 3);
    n = 3;
    while (n < 3000)
        n += (size_t)sprintf(line + n, " key%05zu", n);
    memcpy(line + n, "\r\nmn\r\n", 6);
    req_check(line, n + 6, &mn2, "a get line of 3000 bytes");
    req_check(line, n, &mid, "a get line of 3000 bytes, unfinished");

    /* As long, another command: tainted. */
    memcpy(line, "mg  ", 4);
    req_check(line, n + 6, &long_line, "an mg line of 3000 bytes");
}
END_TEST

/* Keys: at most 250 bytes (KEY_MAX_LENGTH).  Over it, a storage command
 * is answered with an error and its data read as commands; a get drops
 * every unsent reply of the connection (proto_text.c:692). */
START_TEST(key_lengths)
{
    static char line[1024], key[252];
    struct want_req ok = { MCFRAME_TEXT, MCFRAME_OK, 1, 0, 0, 1, 1 };
    struct want_req ok_get = { MCFRAME_TEXT, MCFRAME_OK, 1, 0, 0, 0, 1 };
    struct want_req bad = { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 1, 0 };
    int n;

    memset(key, 'k', 250);
    key[250] = '\0';
    n = snprintf(line, sizeof line, "set %s 0 0 4\r\nmn\r\n\r\n", key);
    req_check(line, (size_t)n, &ok, "set: a key of 250 bytes");
    n = snprintf(line, sizeof line, "get a %s\r\n", key);
    req_check(line, (size_t)n, &ok_get, "get: a key of 250 bytes");
    key[250] = 'k';
    key[251] = '\0';
    n = snprintf(line, sizeof line, "set %s 0 0 4\r\nmn\r\n\r\n", key);
    req_check(line, (size_t)n, &bad, "set: a key of 251 bytes");
    n = snprintf(line, sizeof line, "ms %s 4\r\nmn\r\n\r\n", key);
    bad.set_seen = 0;
    req_check(line, (size_t)n, &bad, "ms: a key of 251 bytes");
}
END_TEST

START_TEST(get_key_lengths)
{
    static char line[2048], key[252];
    struct want_req bad_get = { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 0, 0 };
    int n;

    memset(key, 'k', 251);
    key[251] = '\0';
    n = snprintf(line, sizeof line, "get a%0900d %s\r\n", 0, key);
    req_check(line, (size_t)n, &bad_get, "get: a key of 251 bytes past LINE_MAX");
    n = snprintf(line, sizeof line, "get a %s\r\n", key);
    req_check(line, (size_t)n, &bad_get, "get: a key of 251 bytes");
}
END_TEST

/* memcached re-tokenizes a get line past 23 tokens (proto_text.c:677):
 * a multiget of many keys is legal, however short its line. */
START_TEST(multiget_many_keys)
{
    static char line[512];
    size_t n = (size_t)sprintf(line, "get");
    for (int i = 0; i < 40; i++)
        n += (size_t)sprintf(line + n, " k%d", i);
    n += (size_t)sprintf(line + n, "\r\n");
    struct want_req ok = { MCFRAME_TEXT, MCFRAME_OK, 1, 0, 0, 0, 1 };
    req_check(line, n, &ok, "a get of 40 keys");
}
END_TEST

/* A set of more than 23 tokens: memcached answers ERROR and reads the
 * data as commands. */
START_TEST(too_many_tokens)
{
    static char line[512];
    size_t n = (size_t)sprintf(line, "set k 0 0 4");
    for (int i = 0; i < 20; i++)
        n += (size_t)sprintf(line + n, " x");
    n += (size_t)sprintf(line + n, "\r\nmn\r\n\r\n");
    struct want_req bad = { MCFRAME_TEXT, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 1, 0 };
    req_check(line, n, &bad, "a set of 25 tokens");
}
END_TEST

/* ---- binary requests ----------------------------------------------------- */

START_TEST(binary_requests)
{
    static unsigned char b[4096];
    size_t n;
    struct want_req w;
    /* A value holding whole request and reply headers, and text. */
    unsigned char val[80];
    bin(val, 0x80, 0x0a, 0, 0, 0, 0xdeadbeef);
    bin(val + 24, 0x81, 0x0a, 0, 0, 0, 0xdeadbeef);
    memcpy(val + 48, "mn\r\nMN\r\nquit\r\n\x80\x07\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 32);

    n = bin_req(b, 0x00, "key", 0, "", 0, 1);
    w = (struct want_req){ MCFRAME_BINARY, MCFRAME_OK, 1, 0, 0, 0, 1 };
    req_check(b, n, &w, "GET");

    n = bin_req(b, 0x01, "key", 8, val, sizeof val, 2);
    n += bin_req(b + n, 0x00, "key", 0, "", 0, 3);
    w = (struct want_req){ MCFRAME_BINARY, MCFRAME_OK, 2, 0, 0, 0, 1 };
    req_check(b, n, &w, "SET of headers, GET");

    n = bin_req(b, 0x0a, "", 0, "", 0, 4);
    n += bin_req(b + n, 0x0b, "", 0, "", 0, 5);
    n += bin_req(b + n, 0x04, "k", 0, "", 0, 6);
    n += bin_req(b + n, 0x05, "k", 20, "", 0, 7);
    n += bin_req(b + n, 0x0e, "k", 0, "v", 1, 8);
    n += bin_req(b + n, 0x1c, "k", 4, "", 0, 9);
    n += bin_req(b + n, 0x1d, "k", 4, "", 0, 10);
    n += bin_req(b + n, 0x0c, "k", 0, "", 0, 11);
    w = (struct want_req){ MCFRAME_BINARY, MCFRAME_OK, 8, 0, 0, 0, 1 };
    req_check(b, n, &w, "NOOP, VERSION, DELETE, INCREMENT, APPEND, TOUCH, GAT, GETK");

    /* The quiet opcodes, each in the shape memcached accepts. */
    static const struct {
        unsigned op, extlen;
        const char *key;
        size_t vlen;
    } quiet_ops[] = {
        { 0x09, 0, "k", 0 },  { 0x0d, 0, "k", 0 },  { 0x11, 8, "k", 3 },
        { 0x12, 8, "k", 3 },  { 0x13, 8, "k", 3 },  { 0x14, 0, "k", 0 },
        { 0x15, 20, "k", 0 }, { 0x16, 20, "k", 0 }, { 0x18, 4, "", 0 },
        { 0x19, 0, "k", 3 },  { 0x1a, 0, "k", 3 },  { 0x1e, 4, "k", 0 },
        { 0x24, 4, "k", 0 },
    };
    for (size_t i = 0; i < sizeof quiet_ops / sizeof quiet_ops[0]; i++) {
        char label[32];
        n = bin_req(b, 0x00, "a", 0, "", 0, 1);
        n += bin_req(b + n, quiet_ops[i].op, quiet_ops[i].key, quiet_ops[i].extlen,
                     "v\x80\x81", quiet_ops[i].vlen, 2);
        w = (struct want_req){ MCFRAME_BINARY, MCFRAME_OK, 2, 0, 1, 0, 1 };
        snprintf(label, sizeof label, "quiet opcode 0x%02x", quiet_ops[i].op);
        req_check(b, n, &w, label);
    }

    /* Inside a header, inside a body. */
    n = bin_req(b, 0x01, "key", 8, val, sizeof val, 2);
    w = (struct want_req){ MCFRAME_BINARY, MCFRAME_OK, 0, 0, 0, 0, 0 };
    req_check(b, 23, &w, "inside a header");
    req_check(b, n - 1, &w, "inside a body");

    /* Taints. */
    w = (struct want_req){ MCFRAME_BINARY, MCFRAME_QUIT, ANY, ANY, 0, 0, 0 };
    n = bin_req(b, 0x07, "", 0, "", 0, 1);
    req_check(b, n, &w, "QUIT");
    n = bin_req(b, 0x17, "", 0, "", 0, 1);
    req_check(b, n, &w, "QUITQ");

    w = (struct want_req){ MCFRAME_BINARY, MCFRAME_SASL, ANY, ANY, 0, 0, 0 };
    for (unsigned op = 0x20; op <= 0x22; op++) {
        n = bin_req(b, 0x0b, "", 0, "", 0, 1);
        n += bin_req(b + n, op, op == 0x20 ? "" : "PLAIN", 0, "\0u\0p", 4, 2);
        req_check(b, n, &w, "SASL");
    }

    w = (struct want_req){ MCFRAME_BINARY, MCFRAME_UNKNOWN, ANY, ANY, 0, 0, 0 };
    n = bin_req(b, 0x10, "", 0, "", 0, 1);
    req_check(b, n, &w, "STAT (several packets)");
    n = bin_req(b, 0x40, "k", 0, "", 0, 1);
    req_check(b, n, &w, "an unknown opcode");

    w = (struct want_req){ MCFRAME_BINARY, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 0, 0 };
    n = bin_req(b, 0x00, "a", 0, "", 0, 1);
    n += bin(b + n, 0x81, 0x00, 0, 0, 0, 2);
    req_check(b, n, &w, "a second header of magic 0x81");
    n = bin_req(b, 0x00, "a", 0, "", 0, 1);
    b[n] = 'g';
    memcpy(b + n + 1, "et a\r\n                 ", 23);
    req_check(b, n + 24, &w, "text after binary");
    n = bin(b, 0x80, 0x00, 5, 0, 4, 1);
    memcpy(b + n, "abcd", 4);
    req_check(b, n + 4, &w, "a key longer than the body");
    n = bin(b, 0x80, 0x01, 3, 8, 10, 1);
    memset(b + n, 'x', 10);
    req_check(b, n + 10, &w, "key and extras longer than the body");
    n = bin(b, 0x80, 0x01, 1, 8, (uint32_t)(MCFRAME_BODY_MAX + 1), 1);
    req_check(b, n, &w, "a body over MCFRAME_BODY_MAX");
}
END_TEST

/* VERBOSITY is in the protocol's list but not in memcached's dispatch:
 * UNKNOWN_COMMAND, and a swallow of the whole body after the extras were
 * read (proto_bin.c:120, 1070): the next request is read misaligned. */
START_TEST(binary_verbosity)
{
    static unsigned char b[64];
    struct want_req w = { MCFRAME_BINARY, MCFRAME_UNKNOWN, ANY, ANY, 0, 0, 0 };
    size_t n = bin_req(b, 0x1b, "", 4, "", 0, 1);
    n += bin_req(b + n, 0x0a, "", 0, "", 0, 2);
    req_check(b, n, &w, "VERBOSITY");
}
END_TEST

/* A key over 250 bytes: EINVAL and close (proto_bin.c:908). */
START_TEST(binary_long_key)
{
    static unsigned char b[512];
    struct want_req w = { MCFRAME_BINARY, MCFRAME_BAD_REQUEST, ANY, ANY, 0, 0, 0 };
    size_t n = bin(b, 0x80, 0x00, 251, 0, 251, 1);
    memset(b + n, 'k', 251);
    req_check(b, n + 251, &w, "a key of 251 bytes");
}
END_TEST

/* The protocol is the first byte's, as memcached's (memcached.c:2355). */
START_TEST(protocol_choice)
{
    struct mcreq q;

    mcreq_init(&q);
    mcreq_feed(&q, "", 0);
    ck_assert_int_eq(q.proto, MCFRAME_NONE);
    ck_assert_int_eq(mcreq_boundary(&q), 1);
    mcreq_feed(&q, "\x80", 1);
    ck_assert_int_eq(q.proto, MCFRAME_BINARY);
    ck_assert_int_eq(mcreq_boundary(&q), 0);

    mcreq_init(&q);
    mcreq_feed(&q, "\x81", 1);
    ck_assert_int_eq(q.proto, MCFRAME_TEXT);
    mcreq_init(&q);
    mcreq_feed(&q, "m", 1);
    ck_assert_int_eq(q.proto, MCFRAME_TEXT);
    ck_assert_int_eq(q.why, MCFRAME_OK);
}
END_TEST

/* ---- replies ------------------------------------------------------------- */

/* What the caller does with the cuts of a stream. */
struct acc {
    size_t client;      /* bytes given to the client */
    size_t held;        /* kept back now */
    size_t answer;      /* the sentinel's answer, once found */
    size_t after;       /* stray bytes after it */
};

static void reply_feed(struct mcreply *r, const void *p, size_t n, struct acc *a)
{
    struct mcreply_cut c;
    int was_found = r->found, was_beyond = r->beyond;

    memset(&c, 0xa5, sizeof c);
    mcreply_feed(r, p, n, &c);
    ck_assert_uint_le(c.released, a->held);
    a->held -= c.released;
    a->client += c.released + c.client;
    a->after += c.after;
    if (r->beyond && !was_beyond) {
        /* A reply beyond the client's: it, and what was kept back of it,
         * are no one's. */
        ck_assert_uint_eq(c.client + c.after, n);
        ck_assert_uint_eq(c.held, 0);
        a->after += a->held;
        a->held = 0;
    } else if (was_beyond) {
        ck_assert_uint_eq(c.client + c.held + c.released, 0);
        ck_assert_uint_eq(c.after, n);
    } else if (r->found && !was_found) {
        ck_assert_uint_le(c.client + c.after, n);
        ck_assert_uint_eq(c.held, 0);
        a->answer = a->held + (n - c.client - c.after);
        a->held = 0;
    } else if (was_found) {
        ck_assert_uint_eq(c.client + c.held + c.released, 0);
        ck_assert_uint_eq(c.after, n);
    } else {
        ck_assert_uint_eq(c.client + c.held + c.after, n);
        ck_assert_uint_eq(c.after, 0);
        a->held += c.held;
    }
    ck_assert_uint_le(a->held, MCFRAME_SENTINEL_MAX);
    ck_assert_uint_eq(r->held, a->held);
}

struct want_reply {
    enum mcframe_why why;       /* r->why */
    int found;
    size_t client;              /* bytes before the sentinel's answer */
    size_t answer;
    uint64_t units;
    uint64_t mn;
    enum mcframe_why judge;
};

/* Frame requests `req`, arm the sentinel, then feed `rep` whole, cut at
 * every byte, and one byte at a time: the same outcome each time. */
static void reply_check(const void *req, size_t reqn, const void *rep, size_t n,
                        uint32_t opaque, const struct want_reply *w, const char *label)
{
    static struct mcreq q;
    static struct mcreply r;
    unsigned char sentinel[MCFRAME_SENTINEL_MAX];
    const unsigned char *p = rep;

    mcreq_init(&q);
    mcreq_feed(&q, req, reqn);
    for (size_t k = 0; k <= n + 1; k++) {
        struct acc a = { 0, 0, 0, 0 };
        mcreply_init(&r);
        mcreply_proto(&r, q.proto);
        ck_assert_uint_eq(mcframe_sentinel(&q, &r, opaque, sentinel),
                          q.proto == MCFRAME_TEXT ? 4 : 24);
        ck_assert_int_eq(r.armed, 1);
        if (k <= n) {
            reply_feed(&r, p, k, &a);
            reply_feed(&r, p + k, n - k, &a);
        } else {
            for (size_t i = 0; i < n; i++)
                reply_feed(&r, p + i, 1, &a);
        }
        ck_assert_msg(r.why == w->why, "%s (cut %zu): why %d (%s), want %d", label, k,
                      (int)r.why, mcframe_why_words(r.why), (int)w->why);
        ck_assert_msg(r.found == (w->found != 0), "%s (cut %zu): found %d", label, k,
                      r.found);
        if (w->why == MCFRAME_OK || w->why == MCFRAME_STRAY_REPLY
            || w->why == MCFRAME_REFUSED) {
            ck_assert_msg(a.client == w->client, "%s (cut %zu): %zu bytes the client's, "
                          "want %zu", label, k, a.client, w->client);
            ck_assert_msg(r.units == w->units, "%s (cut %zu): units %llu, want %llu",
                          label, k, (unsigned long long)r.units,
                          (unsigned long long)w->units);
            ck_assert_msg(r.mn == w->mn, "%s (cut %zu): mn %llu, want %llu", label, k,
                          (unsigned long long)r.mn, (unsigned long long)w->mn);
        }
        if (w->found) {
            ck_assert_msg(a.answer == w->answer, "%s (cut %zu): answer of %zu bytes",
                          label, k, a.answer);
            ck_assert_msg(a.client + a.answer + a.after == n,
                          "%s (cut %zu): client + answer + after != fed", label, k);
            if (q.proto == MCFRAME_TEXT)
                ck_assert_msg(memcmp(p + a.client, "MN\r\n", 4) == 0,
                              "%s: the answer is not MN", label);
            else
                ck_assert_msg(p[a.client] == 0x81 && p[a.client + 1] == 0x0a
                              && p[a.client + 12] == (unsigned char)(opaque >> 24)
                              && p[a.client + 15] == (unsigned char)opaque,
                              "%s: the answer is not our NOOP's", label);
        } else if (w->why == MCFRAME_OK) {
            ck_assert_msg(a.client + a.held == n, "%s (cut %zu): bytes lost", label, k);
        } else if (r.beyond) {
            /* The client's replies, then no one's. */
            ck_assert_msg(a.client == w->client && a.client + a.after == n && a.held == 0,
                          "%s (cut %zu): %zu bytes the client's, %zu stray", label, k,
                          a.client, a.after);
        } else {
            /* Framing stopped: every byte is the client's. */
            ck_assert_msg(a.client == n && a.held == 0, "%s (cut %zu): a tainted "
                          "framer keeps bytes back", label, k);
        }
        ck_assert_msg(mcframe_judge(&q, &r) == w->judge, "%s (cut %zu): judge %d (%s), "
                      "want %d", label, k, (int)mcframe_judge(&q, &r),
                      mcframe_why_words(mcframe_judge(&q, &r)), (int)w->judge);
    }
}

#define S(x) x, sizeof x - 1

START_TEST(text_replies)
{
    struct want_reply w;

    /* A VALUE holding MN, END and VALUE lines, then END; the client's MN;
     * the sentinel's. */
    static const char two[] = "VALUE a 0 5\r\nMN\r\nX\r\n"
                              "VALUE b 7 25 99\r\nEND\r\nMN\r\nVALUE c 0 1\r\nEND\r\n"
                              "END\r\nMN\r\nMN\r\n";
    w = (struct want_reply){ MCFRAME_OK, 1, sizeof two - 1 - 4, 4, 2, 2, MCFRAME_OK };
    reply_check(S("get a b\r\nmn\r\n"), S(two), 0, &w, "VALUE blocks of protocol text");

    /* The same with a stray reply after the sentinel's answer. */
    static const char stray[] = "END\r\nMN\r\nEND\r\n";
    w = (struct want_reply){ MCFRAME_STRAY_REPLY, 1, 5, 4, 1, 1, MCFRAME_STRAY_REPLY };
    reply_check(S("get a\r\n"), S(stray), 0, &w, "bytes after the answer");

    /* One reply too many before it: once the get's reply is in, the next
     * is no one's, and nothing after it reaches the client. */
    static const char extra[] = "END\r\nEND\r\nMN\r\n";
    w = (struct want_reply){ MCFRAME_STRAY_REPLY, 0, 5, 0, 2, 0, MCFRAME_STRAY_REPLY };
    reply_check(S("get a\r\n"), S(extra), 0, &w, "one reply too many");

    /* A server without mn answers the sentinel ERROR: the client never
     * sees it. */
    static const char nomn[] = "VALUE a 0 7\r\nERROR\r\n\r\nEND\r\nERROR\r\n";
    w = (struct want_reply){ MCFRAME_REFUSED, 0, sizeof nomn - 1 - 7, 0, 2, 0,
                             MCFRAME_REFUSED };
    reply_check(S("get a\r\n"), S(nomn), 0, &w, "ERROR for the sentinel");
    static const char nomn1[] = "END\r\nERRORS\r\n";
    w = (struct want_reply){ MCFRAME_STRAY_REPLY, 0, 5, 0, 2, 0, MCFRAME_STRAY_REPLY };
    reply_check(S("get a\r\n"), S(nomn1), 0, &w, "a line that begins as ERROR");
    /* Not even a reply: stray all the same, whole or cut (the fuzzer's). */
    static const char badline[] = "END\r\nX\nMN\r\n";
    w = (struct want_reply){ MCFRAME_STRAY_REPLY, 0, 5, 0, 2, 0, MCFRAME_STRAY_REPLY };
    reply_check(S("get a\r\n"), S(badline), 0, &w, "a bad line beyond the replies");
    /* ...nor, after a client's mn, a line no request asked for. */
    static const char nomn2[] = "MN\r\nSERVER_ERROR x\r\nMN\r\n";
    w = (struct want_reply){ MCFRAME_STRAY_REPLY, 0, 4, 0, 2, 1, MCFRAME_STRAY_REPLY };
    reply_check(S("mn\r\n"), S(nomn2), 0, &w, "an unasked line after the replies");

    /* One too few, nothing quiet. */
    static const char few[] = "END\r\nMN\r\n";
    w = (struct want_reply){ MCFRAME_OK, 1, 5, 4, 1, 1, MCFRAME_STRAY_REPLY };
    reply_check(S("get a\r\nget b\r\n"), S(few), 0, &w, "one reply too few");

    /* Quiet: at most one per request. */
    w = (struct want_reply){ MCFRAME_OK, 1, 5, 4, 1, 1, MCFRAME_OK };
    reply_check(S("get a\r\ndelete k noreply\r\n"), S(few), 0, &w,
                "a quiet request unanswered");
    static const char both[] = "END\r\nNOT_FOUND\r\nMN\r\n";
    w = (struct want_reply){ MCFRAME_OK, 1, 16, 4, 2, 1, MCFRAME_OK };
    reply_check(S("get a\r\ndelete k noreply\r\n"), S(both), 0, &w,
                "a quiet request answered");
    static const char three[] = "END\r\nNOT_FOUND\r\nEND\r\nMN\r\n";
    w = (struct want_reply){ MCFRAME_OK, 1, 21, 4, 3, 1, MCFRAME_STRAY_REPLY };
    reply_check(S("get a\r\ndelete k noreply\r\n"), S(three), 0, &w,
                "quiet, and still one too many");

    /* STAT...END counts once. */
    static const char stats[] = "STAT pid 1\r\nSTAT uptime 20\r\nSTAT version 1.6.18\r\n"
                                "END\r\nVERSION 1.6.18\r\nMN\r\n";
    w = (struct want_reply){ MCFRAME_OK, 1, sizeof stats - 1 - 4, 4, 2, 1, MCFRAME_OK };
    reply_check(S("stats\r\nversion\r\n"), S(stats), 0, &w, "STAT...END");

    /* VA blocks holding MN lines. */
    static const char va[] = "VA 4 f0\r\nMN\r\n\r\nVA 0\r\n\r\nEN\r\nHD\r\nMN\r\n";
    w = (struct want_reply){ MCFRAME_OK, 1, sizeof va - 1 - 4, 4, 4, 1, MCFRAME_OK };
    reply_check(S("mg a v f\r\nmg b v\r\nmg c v\r\nms d 1\r\nx\r\n"), S(va), 0, &w,
                "VA blocks of MN");

    /* MN counting: the client's two, then the sentinel's third. */
    static const char mns[] = "MN\r\nMN\r\nMN\r\n";
    w = (struct want_reply){ MCFRAME_OK, 1, 8, 4, 2, 3, MCFRAME_OK };
    reply_check(S("mn\r\nmn\r\n"), S(mns), 0, &w, "the third MN");
    static const char mns2[] = "MN\r\nMN\r\n";
    w = (struct want_reply){ MCFRAME_OK, 0, 8, 0, 2, 2, MCFRAME_NO_SENTINEL };
    reply_check(S("mn\r\nmn\r\n"), S(mns2), 0, &w, "the client's MNs only");

    /* Not yet: the answer's start kept back. */
    static const char part[] = "END\r\nMN\r";
    w = (struct want_reply){ MCFRAME_OK, 0, 5, 0, 1, 0, MCFRAME_NO_SENTINEL };
    reply_check(S("get a\r\n"), S(part), 0, &w, "the answer's first bytes");

    /* A reply that begins like MN but is not: released. */
    static const char mx[] = "MX\r\nMN\r\n";
    w = (struct want_reply){ MCFRAME_OK, 1, 4, 4, 1, 1, MCFRAME_OK };
    reply_check(S("md k\r\n"), S(mx), 0, &w, "MX, then MN");

    /* An HD line longer than MCFRAME_REPLY_LINE_MAX (mg k of a 250-byte
     * key, O of 32 and the numbers), cut anywhere: one reply. */
    {
        static char hd[512], hdreq[400];
        char k[251];
        memset(k, 'k', 250);
        k[250] = '\0';
        size_t hn = (size_t)snprintf(hd, sizeof hd, "HD k%s O0123456789012345678901234567890 "
                                     "c18446744073709551615 t-1 f4294967295\r\nMN\r\n", k);
        size_t hq = (size_t)snprintf(hdreq, sizeof hdreq,
                                     "mg %s k O0123456789012345678901234567890 c t f\r\n", k);
        ck_assert_uint_gt(hn - 6, MCFRAME_REPLY_LINE_MAX);
        w = (struct want_reply){ MCFRAME_OK, 1, hn - 4, 4, 1, 1, MCFRAME_OK };
        reply_check(hdreq, hq, hd, hn, 0, &w, "an HD line over REPLY_LINE_MAX");
    }

    /* Meta reply lines longer than MCFRAME_REPLY_LINE_MAX: mg with k of
     * a 250-byte key, O of 32 and the numbers (about 330 bytes); memcached
     * sends them. */
    static char big[1024], bigreq[600];
    char key[251];
    memset(key, 'k', 250);
    key[250] = '\0';
    size_t bn = (size_t)snprintf(big, sizeof big,
        "HD k%s O0123456789012345678901234567890 c18446744073709551615 t-1 f4294967295\r\n"
        "VA 4 k%s O0123456789012345678901234567890 c18446744073709551615 s4 t-1 "
        "f4294967295\r\n"
        "MN\r\n\r\nMN\r\n", key, key);
    size_t rn = (size_t)snprintf(bigreq, sizeof bigreq,
        "mg %s k O0123456789012345678901234567890 c t f\r\n"
        "mg %s v k O0123456789012345678901234567890 c s t f\r\n", key, key);
    w = (struct want_reply){ MCFRAME_OK, 1, bn - 4, 4, 2, 1, MCFRAME_OK };
    reply_check(bigreq, rn, big, bn, 0, &w, "meta lines over REPLY_LINE_MAX");
}
END_TEST

START_TEST(text_bad_replies)
{
    struct want_reply bad = { MCFRAME_BAD_REPLY, 0, 0, 0, 0, 0, MCFRAME_BAD_REPLY };

    reply_check(S("get a\r\n"), S("VALUE a 0 x\r\nabc\r\nEND\r\nMN\r\n"), 0, &bad,
                "a VALUE without a length");
    reply_check(S("get a\r\n"), S("VALUE a 0 1\r\nabc\r\nEND\r\nMN\r\n"), 0, &bad,
                "a VALUE's data not ended by CRLF");
    reply_check(S("get a\r\n"), S("VALUE a 0 -1\r\nEND\r\nMN\r\n"), 0, &bad,
                "a negative VALUE length");
    reply_check(S("mg a v\r\n"), S("VA x\r\nEN\r\nMN\r\n"), 0, &bad, "a VA without a length");
    reply_check(S("get a\r\n"), S("END\nMN\r\n"), 0, &bad, "a line without CR");
    reply_check(S("get a\r\n"), S("\nMN\r\n"), 0, &bad, "an empty line");
}
END_TEST

START_TEST(binary_replies)
{
    static unsigned char req[1024], rep[2048];
    size_t qn = 0, n = 0;
    unsigned char v[64];
    struct want_reply w;

    /* A value holding the sentinel's answer itself. */
    bin(v, 0x81, 0x0a, 0, 0, 0, 0xdeadbeef);
    bin(v + 24, 0x80, 0x0a, 0, 0, 0, 0xdeadbeef);
    memcpy(v + 48, "MN\r\nEND\r\nVALUE 1", 16);

    qn += bin_req(req + qn, 0x00, "k", 0, "", 0, 1);
    qn += bin_req(req + qn, 0x0a, "", 0, "", 0, 0x11111111);
    n += bin(rep + n, 0x81, 0x00, 0, 4, 4 + sizeof v, 1);
    memset(rep + n, 0, 4);
    n += 4;
    memcpy(rep + n, v, sizeof v);
    n += sizeof v;
    /* The client's NOOP: another opaque. */
    n += bin(rep + n, 0x81, 0x0a, 0, 0, 0, 0x11111111);
    size_t before = n;
    n += bin(rep + n, 0x81, 0x0a, 0, 0, 0, 0xdeadbeef);
    w = (struct want_reply){ MCFRAME_OK, 1, before, 24, 2, 0, MCFRAME_OK };
    reply_check(req, qn, rep, n, 0xdeadbeef, &w, "GET holding the answer, NOOP, sentinel");

    /* A stray packet after it. */
    n += bin(rep + n, 0x81, 0x00, 0, 0, 0, 1);
    w = (struct want_reply){ MCFRAME_STRAY_REPLY, 1, before, 24, 2, 0, MCFRAME_STRAY_REPLY };
    reply_check(req, qn, rep, n, 0xdeadbeef, &w, "a packet after the answer");

    /* One packet too many before it: the client gets as many as it asked
     * for, and no more. */
    n = 0;
    n += bin(rep + n, 0x81, 0x00, 0, 0, 0, 1);
    n += bin(rep + n, 0x81, 0x00, 0, 0, 0, 1);
    n += bin(rep + n, 0x81, 0x0a, 0, 0, 0, 0x11111111);
    n += bin(rep + n, 0x81, 0x0a, 0, 0, 0, 0xdeadbeef);
    w = (struct want_reply){ MCFRAME_STRAY_REPLY, 0, 48, 0, 3, 0, MCFRAME_STRAY_REPLY };
    reply_check(req, qn, rep, n, 0xdeadbeef, &w, "one packet too many");
    /* A quiet request: the count is not exact, and so nothing is cut. */
    qn = bin_req(req, 0x09, "k", 0, "", 0, 1);
    n = 0;
    n += bin(rep + n, 0x81, 0x00, 0, 0, 0, 1);
    n += bin(rep + n, 0x81, 0x00, 0, 0, 0, 1);
    before = n;
    n += bin(rep + n, 0x81, 0x0a, 0, 0, 0, 0xdeadbeef);
    w = (struct want_reply){ MCFRAME_OK, 1, before, 24, 2, 0, MCFRAME_STRAY_REPLY };
    reply_check(req, qn, rep, n, 0xdeadbeef, &w, "quiet, and one packet too many");

    /* Quiet: a GETQ miss sends nothing. */
    qn = bin_req(req, 0x09, "k", 0, "", 0, 1);
    qn += bin_req(req + qn, 0x00, "k", 0, "", 0, 2);
    n = bin(rep, 0x81, 0x00, 0, 0, 9, 2);
    memcpy(rep + n, "Not found", 9);
    n += 9;
    before = n;
    n += bin(rep + n, 0x81, 0x0a, 0, 0, 0, 7);
    w = (struct want_reply){ MCFRAME_OK, 1, before, 24, 1, 0, MCFRAME_OK };
    reply_check(req, qn, rep, n, 7, &w, "a GETQ miss");

    /* Bad replies. */
    struct want_reply bad = { MCFRAME_BAD_REPLY, 0, 0, 0, 0, 0, MCFRAME_BAD_REPLY };
    qn = bin_req(req, 0x00, "k", 0, "", 0, 1);
    n = bin(rep, 0x80, 0x00, 0, 0, 0, 1);
    n += bin(rep + n, 0x81, 0x0a, 0, 0, 0, 7);
    reply_check(req, qn, rep, n, 7, &bad, "magic 0x80 in a reply");
    n = bin(rep, 0x81, 0x00, 0, 0, (uint32_t)(MCFRAME_BODY_MAX + 1), 1);
    reply_check(req, qn, rep, n, 7, &bad, "a body over MCFRAME_BODY_MAX");
    n = bin(rep, 0x81, 0x0a, 0, 0, 4, 7);
    memcpy(rep + n, "abcd", 4);
    n += 4;
    reply_check(req, qn, rep, n, 7, &bad, "the sentinel's answer with a body");
    n = (size_t)sprintf((char *)rep, "ERROR\r\nERROR\r\nERROR\r\nERROR\r\n");
    reply_check(req, qn, rep, n, 7, &bad, "text to a binary client");
}
END_TEST

START_TEST(sentinel_bytes)
{
    struct mcreq q;
    struct mcreply r;
    unsigned char out[MCFRAME_SENTINEL_MAX + 8];
    static const unsigned char noop[24] = {
        0x80, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78,
    };

    mcreq_init(&q);
    mcreply_init(&r);
    memset(out, 0x5a, sizeof out);
    ck_assert_uint_eq(mcframe_sentinel(&q, &r, 1, out), 0);
    ck_assert_int_eq(r.armed, 0);
    ck_assert_uint_eq(out[0], 0x5a);

    mcreq_feed(&q, "mn\r\nmn\r\n", 8);
    ck_assert_uint_eq(mcframe_sentinel(&q, &r, 1, out), 4);
    ck_assert_mem_eq(out, "mn\r\n", 4);
    ck_assert_int_eq(r.armed, 1);
    ck_assert_int_eq(r.found, 0);

    mcreq_init(&q);
    mcreply_init(&r);
    mcreq_feed(&q, noop, 24);
    mcreply_proto(&r, q.proto);
    ck_assert_uint_eq(mcframe_sentinel(&q, &r, 0x12345678, out), 24);
    ck_assert_mem_eq(out, noop, 24);
    ck_assert_int_eq(r.armed, 1);
}
END_TEST

/* Until a sentinel is armed every byte is the client's, and the MN of
 * the client's own `mn` is not an answer. */
START_TEST(unarmed)
{
    struct mcreq q;
    struct mcreply r;
    struct mcreply_cut c;

    mcreq_init(&q);
    mcreply_init(&r);
    mcreq_feed(&q, "mn\r\n", 4);
    mcreply_proto(&r, q.proto);
    mcreply_feed(&r, "MN\r\nM", 5, &c);
    ck_assert_uint_eq(c.client, 5);
    ck_assert_uint_eq(c.held + c.released + c.after, 0);
    ck_assert_int_eq(r.found, 0);
    ck_assert_uint_eq(r.mn, 1);
    ck_assert_uint_eq(r.units, 1);
    ck_assert_int_eq(mcframe_judge(&q, &r), MCFRAME_NO_SENTINEL);
}
END_TEST

START_TEST(judge)
{
    struct mcreq q;
    struct mcreply r;
    struct mcreply_cut c;
    unsigned char s[MCFRAME_SENTINEL_MAX];

    /* Nothing sent, nothing came: nothing is owed. */
    mcreq_init(&q);
    mcreply_init(&r);
    ck_assert_int_eq(mcframe_judge(&q, &r), MCFRAME_OK);
    /* Nothing sent, yet bytes came. */
    mcreply_feed(&r, "ERROR\r\n", 7, &c);
    ck_assert_uint_eq(c.client, 7);
    ck_assert_int_eq(mcframe_judge(&q, &r), MCFRAME_STRAY_REPLY);

    /* Inside a request. */
    mcreq_init(&q);
    mcreply_init(&r);
    mcreq_feed(&q, "set k 0 0 5\r\nab", 15);
    mcreply_proto(&r, q.proto);
    ck_assert_int_eq(mcframe_judge(&q, &r), MCFRAME_MID_REQUEST);

    /* The request side's taint comes first. */
    mcreq_init(&q);
    mcreply_init(&r);
    mcreq_feed(&q, "get a\r\nquit\r\n", 13);
    mcreply_proto(&r, q.proto);
    mcreply_feed(&r, "END\nMN\r\n", 8, &c);
    ck_assert_int_eq(r.why, MCFRAME_BAD_REPLY);
    ck_assert_int_eq(mcframe_judge(&q, &r), MCFRAME_QUIT);

    /* The sentinel's answer not (yet) come. */
    mcreq_init(&q);
    mcreply_init(&r);
    mcreq_feed(&q, "get a\r\n", 7);
    mcreply_proto(&r, q.proto);
    ck_assert_uint_eq(mcframe_sentinel(&q, &r, 0, s), 4);
    mcreply_feed(&r, "END\r\n", 5, &c);
    ck_assert_int_eq(mcframe_judge(&q, &r), MCFRAME_NO_SENTINEL);
    mcreply_feed(&r, "MN\r\n", 4, &c);
    ck_assert_int_eq(r.found, 1);
    ck_assert_int_eq(mcframe_judge(&q, &r), MCFRAME_OK);
    /* Anything after it is stray, even in a later chunk. */
    mcreply_feed(&r, "E", 1, &c);
    ck_assert_uint_eq(c.after, 1);
    ck_assert_uint_eq(c.client, 0);
    ck_assert_int_eq(r.why, MCFRAME_STRAY_REPLY);
    ck_assert_int_eq(mcframe_judge(&q, &r), MCFRAME_STRAY_REPLY);

    /* The caller's LOGIN_SET is not the judge's: set_seen is reported. */
    mcreq_init(&q);
    mcreply_init(&r);
    mcreq_feed(&q, "set u 0 0 3\r\na b\r\n", 18);
    ck_assert_int_eq(q.set_seen, 1);
}
END_TEST

START_TEST(why_words)
{
    ck_assert_str_eq(mcframe_why_words(MCFRAME_OK), "");
    for (int a = MCFRAME_MID_REQUEST; a <= MCFRAME_REFUSED; a++) {
        ck_assert_ptr_nonnull(mcframe_why_words((enum mcframe_why)a));
        ck_assert_uint_gt(strlen(mcframe_why_words((enum mcframe_why)a)), 0);
        for (int b = MCFRAME_MID_REQUEST; b < a; b++)
            ck_assert_str_ne(mcframe_why_words((enum mcframe_why)a),
                             mcframe_why_words((enum mcframe_why)b));
    }
}
END_TEST

Suite *mcframe_suite(void)
{
    Suite *s = suite_create("mcframe");
    TCase *tc = tcase_create("mcframe");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, text_requests, 0, sizeof texts / sizeof texts[0]);
    tcase_add_test(tc, text_nul);
    tcase_add_test(tc, set_seen);
    tcase_add_test(tc, long_lines);
    tcase_add_test(tc, key_lengths);
    tcase_add_test(tc, get_key_lengths);
    tcase_add_test(tc, multiget_many_keys);
    tcase_add_test(tc, too_many_tokens);
    tcase_add_test(tc, binary_requests);
    tcase_add_test(tc, binary_verbosity);
    tcase_add_test(tc, binary_long_key);
    tcase_add_test(tc, protocol_choice);
    tcase_add_test(tc, text_replies);
    tcase_add_test(tc, text_bad_replies);
    tcase_add_test(tc, binary_replies);
    tcase_add_test(tc, sentinel_bytes);
    tcase_add_test(tc, unarmed);
    tcase_add_test(tc, judge);
    tcase_add_test(tc, why_words);
    suite_add_tcase(s, tc);
    return s;
}
