/*
 * mcframe: the memcache framers of --reuse (see mcframe.h).
 *
 * Both framers are byte-driven state machines that keep only the start of
 * the current line or header; data blocks and bodies are passed over by
 * their length, never searched.  Where our reading of the client's bytes
 * could differ from memcached's (proto_text.c, proto_bin.c), the request
 * side taints rather than guesses: it is stricter than the server.
 */
#include "mcframe.h"

#include <string.h>

enum { ST_HEAD, ST_SKIP, ST_DATA, ST_DEAD };

/* memcached's limits: KEY_MAX_LENGTH, and MAX_TOKENS less the one it
 * reserves for the rest of a line. */
#define KEY_MAX 250
#define TOKENS_MAX 23

static const char *const why_words[] = {
    [MCFRAME_OK] = "",
    [MCFRAME_MID_REQUEST] = "the client ended inside a request",
    [MCFRAME_SASL] = "the client authenticated on the connection (SASL)",
    [MCFRAME_LOGIN_SET] = "the client sent a set, which may be an ASCII login",
    [MCFRAME_QUIT] = "the client asked the server to close",
    [MCFRAME_UNKNOWN] = "a command not known to the framer",
    [MCFRAME_BAD_REQUEST] = "a request the server may read otherwise",
    [MCFRAME_LONG_LINE] = "a command line too long",
    [MCFRAME_BAD_REPLY] = "server bytes that are not a reply",
    [MCFRAME_STRAY_REPLY] = "replies that do not match the requests",
    [MCFRAME_NO_SENTINEL] = "no answer to the sentinel",
    [MCFRAME_REFUSED] = "the server refused the sentinel (no mn)",
};

const char *mcframe_why_words(enum mcframe_why why)
{
    if ((unsigned)why < sizeof why_words / sizeof why_words[0]
        && why_words[why])
        return why_words[why];
    return "?";
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16
           | (uint32_t)p[2] << 8 | p[3];
}

/* ---- tokens -------------------------------------------------------------- */

struct tok {
    const unsigned char *p;
    size_t n;
};

/* Split a line at spaces, as memcached's tokenize_command (runs of spaces
 * make no empty token).  Returns the count, or TOKENS_MAX + 1 when there
 * are more than TOKENS_MAX. */
static size_t split(const unsigned char *s, size_t len, struct tok *t)
{
    size_t n = 0, i = 0;

    while (i < len) {
        while (i < len && s[i] == ' ')
            i++;
        if (i == len)
            break;
        size_t start = i;
        while (i < len && s[i] != ' ')
            i++;
        if (n == TOKENS_MAX)
            return TOKENS_MAX + 1;
        t[n].p = s + start;
        t[n].n = i - start;
        n++;
    }
    return n;
}

static int tok_is(const struct tok *t, const char *word)
{
    size_t n = strlen(word);
    return t->n == n && memcmp(t->p, word, n) == 0;
}

/* A decimal number, digits only (memcached 1.6.18's strtol would take
 * more: signs, spaces, and it wraps 32-bit values; newer ones take at
 * most 11 characters; we refuse what any might read otherwise), at most
 * max and, but for max UINT64_MAX (a cas), at most 10 digits. */
static int tok_uint(const struct tok *t, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (t->n == 0 || t->n > (max == UINT64_MAX ? 20 : 10))
        return 0;
    for (size_t i = 0; i < t->n; i++) {
        if (t->p[i] < '0' || t->p[i] > '9')
            return 0;
        uint64_t d = (uint64_t)(t->p[i] - '0');
        if (v > (max - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

/* An exptime: an optional '-', then an int32. */
static int tok_exptime(const struct tok *t)
{
    struct tok u = *t;
    uint64_t v;
    if (u.n > 0 && u.p[0] == '-') {
        u.p++;
        u.n--;
    }
    return tok_uint(&u, 0x7fffffff, &v);
}

/* Pass over what is here of a data block or body with *left bytes to go
 * (a text block's count includes its CRLF, which is checked): *took bytes
 * of avail.  Returns -1 when the CRLF is not one. */
static int pass_block(uint64_t *left, int text, const unsigned char *p,
                      size_t avail, size_t *took)
{
    size_t take = avail < *left ? avail : (size_t)*left;

    /* The byte with `at` bytes left (itself included) is p[*left - at]. */
    if (text && *left - take < 2)
        for (uint64_t at = *left < 2 ? *left : 2; at > *left - take; at--)
            if (p[*left - at] != (at == 2 ? '\r' : '\n'))
                return -1;
    *left -= take;
    *took = take;
    return 0;
}

/* Add what is here of a binary header (24 bytes) to line, which holds
 * *len of it; *p moves past what was taken.  Returns 1 once it is whole. */
static int gather_header(unsigned char *line, uint32_t *len,
                         const unsigned char **p, const unsigned char *end)
{
    size_t take = 24 - *len;
    if ((size_t)(end - *p) < take)
        take = (size_t)(end - *p);
    memcpy(line + *len, *p, take);
    *len += (uint32_t)take;
    *p += take;
    return *len == 24;
}

/* ---- requests ------------------------------------------------------------ */

void mcreq_init(struct mcreq *r)
{
    memset(r, 0, sizeof *r);
    r->state = ST_HEAD;
}

int mcreq_boundary(const struct mcreq *r)
{
    return r->state == ST_HEAD && r->len == 0;
}

static void req_taint(struct mcreq *r, enum mcframe_why why)
{
    if (r->why == MCFRAME_OK)
        r->why = why;
    r->state = ST_DEAD;
}

/* A storage command: the line is whole and good; its data block follows. */
static void req_data(struct mcreq *r, uint64_t bytes)
{
    r->left = bytes + 2;
    r->state = ST_DATA;
}

/* Whether a meta command's flags ask for quiet mode (a token q...). */
static int meta_quiet(const struct tok *t, size_t n, size_t first_flag)
{
    for (size_t i = first_flag; i < n; i++)
        if (t[i].n > 0 && t[i].p[0] == 'q')
            return 1;
    return 0;
}

/* Flags that every memcached reads alike: tokens that start with a letter
 * (newer ones refuse others without swallowing an ms's data). */
static int meta_flags_ok(const struct tok *t, size_t n, size_t first_flag)
{
    for (size_t i = first_flag; i < n; i++) {
        unsigned char f = t[i].p[0];
        if (!((f >= 'a' && f <= 'z') || (f >= 'A' && f <= 'Z')))
            return 0;
    }
    return 1;
}

static int is_get(const unsigned char *s, size_t len)
{
    static const char *const words[] = {"get ", "gets ", "gat ", "gats "};
    for (size_t i = 0; i < 4; i++) {
        size_t n = strlen(words[i]);
        if (len >= n && memcmp(s, words[i], n) == 0)
            return 1;
    }
    return 0;
}

/* The longest run of bytes other than a space in s: a get's longest key
 * (memcached answers a key over 250 by dropping every reply it has not
 * sent yet, earlier ones too). */
static size_t longest_token(const unsigned char *s, size_t len, size_t *run)
{
    size_t most = 0;
    for (size_t i = 0; i < len; i++) {
        *run = s[i] == ' ' ? 0 : *run + 1;
        if (*run > most)
            most = *run;
    }
    return most;
}

static int tok_noreply(const struct tok *t, size_t n, size_t min)
{
    return n > min && tok_is(&t[n - 1], "noreply");
}

/* A whole text command line (without '\n', maybe with '\r'): what follows
 * it, and what it may be answered with. */
static void req_line(struct mcreq *r, unsigned char *s, size_t len)
{
    struct tok t[TOKENS_MAX];
    uint64_t v;

    /* A bare LF ends a line for 1.6.18, newer servers refuse it. */
    if (len < 2 || s[len - 1] != '\r') {
        req_taint(r, len == 0 || (len == 1 && s[0] == '\r')
                     ? MCFRAME_UNKNOWN : MCFRAME_BAD_REQUEST);
        return;
    }
    len--;
    /* 1.6.18 skips leading spaces, newer servers do not. */
    if (len == 0 || s[0] == ' ') {
        req_taint(r, len == 0 ? MCFRAME_UNKNOWN : MCFRAME_BAD_REQUEST);
        return;
    }
    if (is_get(s, len)) {
        /* Any number of keys; memcached tokenizes them in turns. */
        size_t run = 0;
        if (longest_token(s, len, &run) > KEY_MAX) {
            req_taint(r, MCFRAME_BAD_REQUEST);
            return;
        }
        r->requests++;
        return;
    }
    size_t n = split(s, len, t);
    if (tok_is(&t[0], "set"))
        r->set_seen = 1;
    if (n > TOKENS_MAX) {
        req_taint(r, MCFRAME_BAD_REQUEST);
        return;
    }
    /* Keys: memcached answers a long one with an error line and, for a
     * storage command, then reads the data as commands. */
    if (n > 1 && t[1].n > KEY_MAX) {
        req_taint(r, MCFRAME_BAD_REQUEST);
        return;
    }
    /* Meta commands: 1.6.18 refuses 20 tokens or more without swallowing
     * an ms's data. */
    if (t[0].n == 2 && t[0].p[0] == 'm' && n >= 20) {
        req_taint(r, MCFRAME_BAD_REQUEST);
        return;
    }

    if (tok_is(&t[0], "set") || tok_is(&t[0], "add")
        || tok_is(&t[0], "replace") || tok_is(&t[0], "append")
        || tok_is(&t[0], "prepend") || tok_is(&t[0], "cas")) {
        size_t need = tok_is(&t[0], "cas") ? 6 : 5;
        if ((n != need && n != need + 1)
            || (n == need + 1 && !tok_is(&t[need], "noreply"))
            || !tok_uint(&t[2], 0xffffffffu, &v) || !tok_exptime(&t[3])
            || !tok_uint(&t[4], 0x7ffffffd, &v)
            || (need == 6 && !tok_uint(&t[5], UINT64_MAX, &(uint64_t){0}))) {
            req_taint(r, MCFRAME_BAD_REQUEST);
            return;
        }
        if (n == need + 1)
            r->quiet = 1;
        req_data(r, v);
        return;
    }
    if (tok_is(&t[0], "ms")) {
        if (n < 3 || !tok_uint(&t[2], 0x7ffffffd, &v)
            || !meta_flags_ok(t, n, 3)) {
            req_taint(r, MCFRAME_BAD_REQUEST);
            return;
        }
        if (meta_quiet(t, n, 3))
            r->quiet = 1;
        req_data(r, v);
        return;
    }
    /* stats: only the kinds whose lines are all STAT (cachedump and
     * detail dump print raw keys, which may hold "\r\nMN\r\n"). */
    if (tok_is(&t[0], "version") || (tok_is(&t[0], "stats")
        && (n == 1 || (n == 2 && (tok_is(&t[1], "settings")
                                  || tok_is(&t[1], "items")
                                  || tok_is(&t[1], "slabs")
                                  || tok_is(&t[1], "sizes")
                                  || tok_is(&t[1], "conns")))))) {
        r->requests++;
        return;
    }
    if (tok_is(&t[0], "mn")) {
        r->mn++;
        r->requests++;
        return;
    }
    if (tok_is(&t[0], "mg") || tok_is(&t[0], "md") || tok_is(&t[0], "ma")
        || tok_is(&t[0], "me")) {
        if (n < 2 || !meta_flags_ok(t, n, 2)) {
            req_taint(r, MCFRAME_BAD_REQUEST);
            return;
        }
        if (meta_quiet(t, n, 2))
            r->quiet = 1;
        r->requests++;
        return;
    }
    if (tok_is(&t[0], "delete") || tok_is(&t[0], "incr")
        || tok_is(&t[0], "decr") || tok_is(&t[0], "touch")
        || tok_is(&t[0], "verbosity") || tok_is(&t[0], "flush_all")) {
        if (tok_noreply(t, n, 1))
            r->quiet = 1;
        r->requests++;
        return;
    }
    if (tok_is(&t[0], "quit") || tok_is(&t[0], "shutdown")) {
        req_taint(r, MCFRAME_QUIT);
        return;
    }
    req_taint(r, MCFRAME_UNKNOWN);
}

/* A whole binary request header in r->line. */
static void req_header(struct mcreq *r)
{
    const unsigned char *h = r->line;
    uint32_t keylen = (uint32_t)h[2] << 8 | h[3];
    uint32_t body = be32(h + 8);

    if (h[0] != 0x80 || body < keylen + h[4] || keylen > KEY_MAX
        || body > MCFRAME_BODY_MAX) {
        req_taint(r, MCFRAME_BAD_REQUEST);
        return;
    }
    switch (h[1]) {
    case 0x00: case 0x01: case 0x02: case 0x03: case 0x04: case 0x05:
    case 0x06: case 0x08: case 0x0a: case 0x0b: case 0x0c: case 0x0e:
    case 0x0f: case 0x1c: case 0x1d: case 0x23:
        break;
    case 0x09: case 0x0d: case 0x11: case 0x12: case 0x13: case 0x14:
    case 0x15: case 0x16: case 0x18: case 0x19: case 0x1a: case 0x1e:
    case 0x24:
        r->quiet = 1;
        break;
    case 0x07: case 0x17:
        req_taint(r, MCFRAME_QUIT);
        return;
    case 0x20: case 0x21: case 0x22:
        req_taint(r, MCFRAME_SASL);
        return;
    default:
        req_taint(r, MCFRAME_UNKNOWN);
        return;
    }
    r->len = 0;
    if (body == 0) {
        r->requests++;
        return;
    }
    r->left = body;
    r->state = ST_DATA;
}

void mcreq_feed(struct mcreq *r, const void *data, size_t n)
{
    const unsigned char *p = data, *end = p + n;

    if (n > 0 && r->proto == MCFRAME_NONE)
        r->proto = p[0] == 0x80 ? MCFRAME_BINARY : MCFRAME_TEXT;
    while (p < end && r->state != ST_DEAD) {
        if (r->state == ST_DATA) {
            /* A text data block ends with CRLF, which we check; a binary
             * body is passed over whole. */
            size_t take;
            if (pass_block(&r->left, r->proto == MCFRAME_TEXT, p,
                           (size_t)(end - p), &take) < 0) {
                req_taint(r, MCFRAME_BAD_REQUEST);
                return;
            }
            p += take;
            if (r->left == 0) {
                r->requests++;
                r->state = ST_HEAD;
            }
            continue;
        }
        if (r->proto == MCFRAME_BINARY) {
            if (gather_header(r->line, &r->len, &p, end))
                req_header(r);
            continue;
        }
        const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t upto = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (r->state == ST_SKIP) {
            /* A get line past its kept start: only its keys' lengths
             * matter (a key that ends in the '\r' before '\n' counts it:
             * stricter than memcached by one byte there). */
            size_t run = r->len;
            if (longest_token(p, upto, &run) > KEY_MAX) {
                req_taint(r, MCFRAME_BAD_REQUEST);
                return;
            }
            r->len = (uint32_t)run;
            if (nl) {
                r->requests++;
                r->state = ST_HEAD;
                r->len = 0;
            }
            p += upto + (nl != NULL);
            continue;
        }
        if (r->len + upto > MCFRAME_LINE_MAX) {
            /* Only the get family may be this long: its keys are measured
             * as they pass, nothing else of it is needed. */
            size_t room = MCFRAME_LINE_MAX - r->len;
            memcpy(r->line + r->len, p, room);
            size_t run = 0;
            if (!is_get(r->line, MCFRAME_LINE_MAX)
                || longest_token(r->line, MCFRAME_LINE_MAX, &run) > KEY_MAX) {
                req_taint(r, is_get(r->line, MCFRAME_LINE_MAX)
                             ? MCFRAME_BAD_REQUEST : MCFRAME_LONG_LINE);
                return;
            }
            r->len = (uint32_t)run;
            r->state = ST_SKIP;
            p += room;
            continue;
        }
        memcpy(r->line + r->len, p, upto);
        r->len += (uint32_t)upto;
        p += upto;
        if (nl) {
            p++;
            size_t len = r->len;
            r->len = 0;
            req_line(r, r->line, len);
        }
    }
}

/* ---- replies --------------------------------------------------------------- */

void mcreply_init(struct mcreply *r)
{
    memset(r, 0, sizeof *r);
    r->state = ST_HEAD;
}

void mcreply_proto(struct mcreply *r, enum mcframe_proto proto)
{
    r->proto = proto;
}

static void reply_bad(struct mcreply *r, enum mcframe_why why)
{
    if (r->why == MCFRAME_OK)
        r->why = why;
    r->state = ST_DEAD;
}

/* Whether the head kept so far (r->line, r->len bytes) may still be the
 * beginning of the sentinel's answer. */
static int may_be_sentinel(const struct mcreply *r)
{
    if (!r->armed || r->found)
        return 0;
    if (r->proto == MCFRAME_TEXT) {
        static const char mn[] = "MN\r";
        return r->mn + 1 == r->want_mn && r->len <= 3
               && memcmp(r->line, mn, r->len) == 0;
    }
    const unsigned char want[16] = {
        0x81, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        (unsigned char)(r->opaque >> 24), (unsigned char)(r->opaque >> 16),
        (unsigned char)(r->opaque >> 8), (unsigned char)r->opaque,
    };
    for (uint32_t i = 0; i < r->len && i < 16; i++) {
        if (i >= 2 && i < 12)
            continue;   /* lengths, status: judged once whole */
        if (r->line[i] != want[i])
            return 0;
    }
    return 1;
}

/* A whole text reply line (r->line holds its start; `len` is its whole
 * length without '\n').  Returns 1 when it is the sentinel's answer. */
static int reply_line(struct mcreply *r, size_t len)
{
    struct tok t[TOKENS_MAX];
    size_t kept = len < MCFRAME_REPLY_LINE_MAX ? len : MCFRAME_REPLY_LINE_MAX;
    uint64_t v;

    if (len == 0 || r->line[kept - 1] != '\r') {
        if (len <= MCFRAME_REPLY_LINE_MAX) {
            reply_bad(r, MCFRAME_BAD_REPLY);
            return 0;
        }
    }
    const unsigned char *s = r->line;
    if (kept >= 6 && memcmp(s, "VALUE ", 6) == 0) {
        size_t n = len <= MCFRAME_REPLY_LINE_MAX ? split(s, kept - 1, t) : 0;
        if ((n != 4 && n != 5) || !tok_uint(&t[3], 0x7ffffffd, &v)) {
            reply_bad(r, MCFRAME_BAD_REPLY);
            return 0;
        }
        r->left = v + 2;
        r->state = ST_DATA;
        return 0;
    }
    if (kept >= 3 && memcmp(s, "VA ", 3) == 0) {
        /* A long VA line (many flags) is read from its kept start, when
         * that holds the whole size and something after it. */
        int whole = len <= MCFRAME_REPLY_LINE_MAX;
        size_t n = split(s, whole ? kept - 1 : kept, t);
        if (n < (whole ? 2u : 3u) || !tok_uint(&t[1], 0x7ffffffd, &v)) {
            reply_bad(r, MCFRAME_BAD_REPLY);
            return 0;
        }
        r->units++;
        r->left = v + 2;
        r->state = ST_DATA;
        return 0;
    }
    if (kept >= 5 && memcmp(s, "STAT ", 5) == 0)
        return 0;
    if (len == 3 && memcmp(s, "MN\r", 3) == 0) {
        r->mn++;
        if (r->armed && r->mn == r->want_mn)
            return 1;
    }
    r->units++;
    return 0;
}

/* A whole binary reply header in r->line.  Returns 1 when it is the
 * sentinel's answer. */
static int reply_header(struct mcreply *r)
{
    const unsigned char *h = r->line;
    uint32_t body = be32(h + 8);

    if (h[0] != 0x81 || body > MCFRAME_BODY_MAX) {
        reply_bad(r, MCFRAME_BAD_REPLY);
        return 0;
    }
    if (r->armed && h[1] == 0x0a && be32(h + 12) == r->opaque) {
        if (body != 0) {
            reply_bad(r, MCFRAME_BAD_REPLY);
            return 0;
        }
        return 1;
    }
    r->units++;
    r->left = body;
    if (body > 0)
        r->state = ST_DATA;
    return 0;
}

/* Whether every reply the client's requests asked for has come (only
 * known when none was quiet), before the sentinel's answer. */
static int all_in(const struct mcreply *r)
{
    return r->armed && !r->found && r->units == r->expect;
}

/* Whether the head kept so far may still be an ERROR line where the
 * sentinel's answer is due (a text server without mn). */
static int may_be_refusal(const struct mcreply *r)
{
    static const char error[] = "ERROR\r";
    return r->proto == MCFRAME_TEXT && all_in(r) && r->len <= 6
           && memcmp(r->line, error, r->len) == 0;
}

/* A head that began at `start` of this chunk (0: in an earlier one) is
 * beyond the client's replies and not the sentinel's answer: it, what
 * was kept back of it and every later byte are no one's.  `whole`: the
 * head is complete (r->len bytes of it kept). */
static void drop_beyond(struct mcreply *r, struct mcreply_cut *cut,
                        size_t start, size_t n, int whole)
{
    int refused = whole && r->proto == MCFRAME_TEXT && r->len == 6
                  && memcmp(r->line, "ERROR\r", 6) == 0;
    r->units++;     /* counted once, whole or not, however cut */
    /* Whatever reading its head found wrong: the verdict must not depend
     * on whether the head was whole when the chunk ended. */
    r->why = refused ? MCFRAME_REFUSED : MCFRAME_STRAY_REPLY;
    r->state = ST_DEAD;
    r->beyond = 1;
    r->held = 0;
    cut->client = start;
    cut->after = n - start;
}

void mcreply_feed(struct mcreply *r, const void *data, size_t n,
                  struct mcreply_cut *cut)
{
    const unsigned char *base = data, *p = base, *end = base + n;
    size_t head_at = 0;     /* where the current head began in this chunk */
    int head_here = 0;      /* ...if it began in this chunk */

    memset(cut, 0, sizeof *cut);
    if (n > 0)
        r->seen = 1;
    if (r->found || r->beyond) {
        cut->after = n;
        if (n > 0)
            reply_bad(r, MCFRAME_STRAY_REPLY);
        return;
    }
    if (n > 0 && r->proto == MCFRAME_NONE)
        reply_bad(r, MCFRAME_BAD_REPLY);    /* nothing was asked */
    if (r->state == ST_HEAD && r->len == 0) {
        head_at = 0;
        head_here = 1;
    }
    while (p < end && r->state != ST_DEAD) {
        if (r->state == ST_DATA) {
            size_t take;
            if (pass_block(&r->left, r->proto == MCFRAME_TEXT, p,
                           (size_t)(end - p), &take) < 0) {
                reply_bad(r, MCFRAME_BAD_REPLY);
                break;
            }
            p += take;
            if (r->left == 0) {
                r->state = ST_HEAD;
                r->len = 0;
                head_at = (size_t)(p - base);
                head_here = 1;
            }
            continue;
        }
        /* Every reply the client asked for is in: this head is the
         * sentinel's answer or no one's (units change only as a head
         * completes, so this holds from the head's first byte). */
        int beyond = all_in(r);
        uint64_t units = r->units, mn = r->mn;
        int found = 0;
        if (r->proto == MCFRAME_BINARY) {
            if (!gather_header(r->line, &r->len, &p, end))
                break;
            found = reply_header(r);
        } else {
            const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t upto = nl ? (size_t)(nl - p) : (size_t)(end - p);
            size_t room = r->len < MCFRAME_REPLY_LINE_MAX
                          ? MCFRAME_REPLY_LINE_MAX - r->len : 0;
            if (room > 0)
                memcpy(r->line + r->len, p, upto < room ? upto : room);
            /* len counts the whole line; only its start is kept. */
            r->len = r->len + (uint32_t)upto < r->len ? UINT32_MAX
                                                      : r->len + (uint32_t)upto;
            p += upto;
            if (nl == NULL)
                break;
            p++;
            found = reply_line(r, r->len);
        }
        if (found) {
            /* The head is the sentinel's answer: what came before it is
             * the client's, what was kept back of it is no one's. */
            r->found = 1;
            cut->client = head_here ? head_at : 0;
            cut->after = (size_t)(end - p);
            r->held = 0;
            if (cut->after > 0)
                reply_bad(r, MCFRAME_STRAY_REPLY);
            return;
        }
        if (beyond) {
            /* As counted before the head: the same however it was cut. */
            r->units = units;
            r->mn = mn;
            drop_beyond(r, cut, head_here ? head_at : 0, n, 1);
            return;
        }
        if (r->state == ST_HEAD)
            r->len = 0;
        head_at = (size_t)(p - base);
        head_here = 1;
        if (r->held > 0) {
            cut->released = r->held;
            r->held = 0;
        }
    }
    if (r->state == ST_DEAD) {
        /* Framing stopped: everything is the client's. */
        cut->released += r->held;
        r->held = 0;
        cut->client = n;
        return;
    }
    /* An unfinished head at the end that may be the sentinel's answer is
     * kept back; anything else is the client's. */
    if (r->state == ST_HEAD && r->len > 0
        && (may_be_sentinel(r) || may_be_refusal(r))) {
        size_t start = head_here ? head_at : 0;
        cut->client = start;
        cut->held = n - start;
        r->held += (uint32_t)(n - start);
        return;
    }
    if (r->state == ST_HEAD && r->len > 0 && all_in(r)) {
        drop_beyond(r, cut, head_here ? head_at : 0, n, 0);
        return;
    }
    cut->released += r->held;
    r->held = 0;
    cut->client = n;
}

/* ---- the sentinel -------------------------------------------------------- */

size_t mcframe_sentinel(const struct mcreq *q, struct mcreply *r,
                        uint32_t opaque, unsigned char *out)
{
    if (q->proto == MCFRAME_NONE)
        return 0;
    r->armed = 1;
    r->expect = q->quiet ? UINT64_MAX : q->requests;
    if (q->proto == MCFRAME_TEXT) {
        r->want_mn = q->mn + 1;
        memcpy(out, "mn\r\n", 4);
        return 4;
    }
    r->opaque = opaque;
    memset(out, 0, 24);
    out[0] = 0x80;
    out[1] = 0x0a;
    out[12] = (unsigned char)(opaque >> 24);
    out[13] = (unsigned char)(opaque >> 16);
    out[14] = (unsigned char)(opaque >> 8);
    out[15] = (unsigned char)opaque;
    return 24;
}

enum mcframe_why mcframe_judge(const struct mcreq *q, const struct mcreply *r)
{
    if (q->proto == MCFRAME_NONE)
        return r->seen ? MCFRAME_STRAY_REPLY : MCFRAME_OK;
    if (q->why != MCFRAME_OK)
        return q->why;
    if (!mcreq_boundary(q))
        return MCFRAME_MID_REQUEST;
    if (r->why != MCFRAME_OK)
        return r->why;
    if (!r->found)
        return MCFRAME_NO_SENTINEL;
    if (q->quiet ? r->units > q->requests : r->units != q->requests)
        return MCFRAME_STRAY_REPLY;
    return MCFRAME_OK;
}
