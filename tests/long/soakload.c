/*
 * soakload - the long tests' client: many connections of verified
 * memcached traffic, lived as incarnations that end cleanly or abort in
 * the middle of things.
 *
 * usage: soakload --target PORT[:DEPTH] [--target ...] [OPTIONS]
 *
 *   --target PORT[:DEPTH]  a plaintext port on 127.0.0.1 (a memtunnel
 *                          listener) and the most request groups one
 *                          connection keeps in flight there (default 1);
 *                          connections are spread over the targets in turn
 *   --conns N              connections open at once (64)
 *   --ops N                verified requests to reach (1000000)
 *   --max-size N           largest value, k/M suffixes (1M)
 *   --abort-every N        an incarnation aborts after a random number of
 *                          requests, N on average (2000; 0: never)
 *   --life N               an incarnation ends cleanly after a random number
 *                          of requests, N on average (0: never)
 *   --protos LIST          the protocols incarnations pick from, comma
 *                          separated: text, binary, meta (text,binary)
 *   --mix basic|full       basic: single sets and gets; full: also deletes,
 *                          multi-key gets and quiet requests (basic)
 *   --seed S               seed of everything random (default: random)
 *   --timeout S            bound on the whole run (600); exit 3 when hit
 *
 * Every connection lives as a series of incarnations. An incarnation
 * connects, picks a protocol and a pipeline depth (1 to the target's
 * DEPTH), and works on keys of its own (a fresh key prefix, so nothing an
 * earlier incarnation left in flight can be read by a later one, on this
 * connection or any other: a reply that reaches the wrong client shows up
 * as a mismatch or an error): groups of requests, values of 1 B to
 * --max-size skewed small (a value size class 2^b is picked with weight
 * 0.7^b, and 1 in 4096 values is exactly --max-size), filled with
 * pseudo-random bytes and planted protocol text (`\r\nEND\r\n`, `VALUE `,
 * `MN\r\n`, `VA `, `mn\r\n`, binary headers...). Every reply is checked
 * against the incarnation's model of its keys: status, flags, length,
 * every byte, and the key and opaque where the reply carries them (binary
 * opaques start at a random number per incarnation). Replies are framed
 * by their lengths (a VALUE or VA line's, a binary header's), never by
 * looking for END or MN.
 *
 * The protocols: text (set, get, delete; noreply), meta (ms, mg with v or
 * without, md, mn; the k and O flags at random, q for quiet) and binary
 * (SET, GET, GETK, DELETE, NOOP and the quiet SETQ, GETQ, GETKQ, DELETEQ).
 * A group is one request or, with --mix full:
 *   multi-get  text `get k1 .. kn`; meta n `mg .. v q` then `mn`; binary
 *              n GETQ/GETKQ then NOOP (a quiet get answers on a hit only);
 *   quiet      1 to 3 quiet requests (text noreply, meta q, binary ...Q:
 *              sets, deletes (in meta and binary, of keys that hold a
 *              value: a miss would answer), gets), then a plain get of the
 *              last one's key, which verifies it.
 * A quiet request counts as verified when the reply after it is. On a
 * DEPTH 1 target a request with a value is always the last in flight:
 * memcached 1.6.18's own TLS can leave a request that shares a TLS record
 * with the end of a value unread (see soak.sh), so quiet sets, whose
 * answer never comes, are only sent where DEPTH > 1.
 *
 * With --life, an incarnation that reaches its end stops issuing and ends
 * cleanly, at a request boundary, one of three ways:
 *   close     after every reply, a plain close;
 *   half      after every reply, shutdown(SHUT_WR), then the server's EOF
 *             must come with no byte before it;
 *   early     shutdown(SHUT_WR) right behind the last request (on a DEPTH
 *             1 target only when it carries no value), then every reply,
 *             then EOF with no byte more.
 * An incarnation that reaches its abort point ends one of three ways,
 * each with a plain close or a reset (SO_LINGER 0):
 *   request   in the middle of sending a set (its line or its value);
 *   pending   with its requests sent and their replies not yet read;
 *   reply     in the middle of reading a reply: a get's of a value of
 *             16 B or more, cut at a random byte of it, or one before it.
 * A new incarnation then takes the connection's place at once.
 *
 * Output: one line `mode=soak ops=... mismatches=... errors=... aborts=...`
 * with the aborts by kind, the clean ends by kind, bytes, the requests by
 * protocol, rate and seed; errors (a reply that is not one, bytes with no
 * request outstanding, a connection the other side closed or reset, no
 * progress for 30 s) and mismatches are reported on stderr, the first 10
 * of each. Exit: 0 all verified, 1 mismatches or errors, 2 usage, 3
 * timeout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define KEYS 16                 /* keys per incarnation */
#define MAX_TARGETS 8
#define MAX_DEPTH 64
#define MGET_MAX 4              /* keys of one multi-get */
#define GROUP_MAX (MGET_MAX + 1) /* requests in one group */
#define QUIET_MAX 3             /* quiet requests before a quiet group's get */
#define KEY_LEN 96
#define LINE_MAX_REPLY 512      /* a reply line longer than this is broken */
#define TOKENS_MAX 8
#define STALL_MS 30000
#define REPORT_MAX 10
#define READ_CHUNK (128 * 1024)
#define REPLY_ABORT_MIN 16      /* the smallest value whose reply is cut */

enum proto { TEXT, BINARY, META, NPROTO };
enum op { OP_SET, OP_GET, OP_DELETE, OP_NOOP };
enum abort_kind { AB_NONE, AB_REQUEST, AB_PENDING, AB_REPLY };
enum end_kind { END_NONE, END_CLOSE, END_HALF, END_EARLY };
enum mix { MIX_BASIC, MIX_FULL };

static const char *const proto_names[NPROTO] = { "text", "binary", "meta" };
static const char *const op_names[] = { "set", "get", "delete", "noop" };

/* Binary protocol opcodes. */
enum {
	BIN_GET = 0x00, BIN_SET = 0x01, BIN_DELETE = 0x04, BIN_GETQ = 0x09, BIN_NOOP = 0x0a,
	BIN_GETK = 0x0c, BIN_GETKQ = 0x0d, BIN_SETQ = 0x11, BIN_DELETEQ = 0x14,
};

struct buf {
	uint8_t *data;
	size_t off, len, cap;
};

/* One key of a request and what the model says of it: for a set, the
 * value sent; for a get or delete, what the key holds. */
struct want {
	int k;
	int hit;
	uint64_t vseed;
	size_t vlen;
	uint32_t flags;
};

struct req {
	enum op op;
	uint8_t quiet;          /* noreply, meta q, binary ...Q */
	uint8_t reply;          /* a reply comes (a quiet get's on a hit only) */
	uint8_t last;           /* the last request of its group */
	uint8_t withkey;        /* binary GETK(Q), meta k: the reply names the key */
	uint8_t withval;        /* meta mg v; without, a hit is an HD line */
	uint8_t withopaque;     /* meta O */
	uint8_t opcode;         /* binary */
	uint8_t nkeys;          /* text get: keys on the line */
	uint32_t opaque;        /* binary, meta O */
	struct want w[MGET_MAX];
};

struct key {
	int set;
	uint64_t vseed;
	size_t vlen;
	uint32_t flags;
	uint32_t gen;
};

struct conn {
	unsigned id;
	int fd;
	int connecting;
	int target;
	int nopipe;                     /* DEPTH 1: a value is last in flight */
	unsigned inc;                   /* incarnation number */
	enum proto proto;
	int depth;                      /* groups in flight at most */
	struct buf in, out;
	size_t out_sent_total;          /* bytes of this incarnation sent */
	size_t out_total;               /* bytes of this incarnation queued */
	struct req *ring;               /* opt.ring_cap requests */
	int head, count;                /* requests in flight */
	int groups;                     /* groups in flight */
	int mget_pos;                   /* text get: keys of the head answered */
	uint32_t opaque;
	struct key keys[KEYS];
	uint64_t rng;
	uint64_t ops_issued;
	uint64_t abort_at;              /* ops_issued at which the abort is armed */
	uint64_t life_at;               /* ops_issued at which the end is armed */
	enum abort_kind abort;          /* armed kind, AB_NONE while not armed */
	int abort_rst;
	size_t abort_pos;               /* AB_REQUEST: stop sending here */
	size_t abort_cut;               /* AB_REPLY: read no more than this */
	enum end_kind end;              /* armed clean end, END_NONE while not */
	int shut;                       /* shutdown(SHUT_WR) done */
	int64_t last_progress;
	char prefix[64];
};

static struct {
	int ports[MAX_TARGETS], depths[MAX_TARGETS], ntargets;
	unsigned conns;
	uint64_t ops;
	size_t max_size;
	uint64_t abort_every;
	uint64_t life;
	enum proto protos[NPROTO];
	int nprotos;
	enum mix mix;
	uint64_t seed;
	long timeout;
	int ring_cap;
} opt = { .conns = 64, .ops = 1000000, .max_size = 1 << 20, .abort_every = 2000, .timeout = 600,
	  .protos = { TEXT, BINARY }, .nprotos = 2, .mix = MIX_BASIC };

static struct {
	uint64_t verified, issued, inflight, mismatches, errors;
	uint64_t aborts[4], aborts_rst, ends[4];
	uint64_t by_proto[NPROTO], quiet, multigets;
	uint64_t bytes_out, bytes_in, connects;
	size_t largest;
	unsigned mismatch_lines, error_lines;
	char run[9];
	uint8_t *scratch;
	size_t scratch_cap;
} g;

/* ---------------------------------------------------------------- helpers */

static _Noreturn void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static _Noreturn void die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("soakload: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		die(1, "out of memory (%zu bytes)", n);
	return p;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t below(uint64_t *s, uint64_t n)
{
	return splitmix64(s) % n;
}

static uint64_t mix(uint64_t a, uint64_t b)
{
	uint64_t s = a ^ (b * 0xd6e8feb86659fd93ull);

	return splitmix64(&s);
}

/* Pseudo-random bytes with protocol-looking tokens planted about every 64:
 * the text, meta and binary replies (and the sentinels a tunnel may send)
 * that a reader searching the bytes, instead of counting them, would take
 * for a reply boundary. */
static void value_fill(uint8_t *p, size_t len, uint64_t seed)
{
	static const struct { const char *s; size_t n; } tokens[] = {
		{ "\r\n", 2 }, { "\0", 1 }, { "\r\nEND\r\n", 7 },
		{ "\r\nSTORED\r\n", 10 }, { "\r\nVALUE ", 8 }, { "\x81\x00", 2 },
		{ "MN\r\n", 4 }, { "\r\nMN\r\n", 6 }, { "mn\r\n", 4 }, { "VA ", 3 },
		{ "\r\nVA 12 f7\r\n", 12 }, { "\r\nHD\r\n", 6 }, { "\r\nEN\r\n", 6 },
		{ "\x80\x0a\x00\x00", 4 }, { "\x81\x0a\x00\x00", 4 },
	};
	uint64_t s = seed, v;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		v = splitmix64(&s);
		memcpy(p + i, &v, 8);
	}
	if (i < len) {
		v = splitmix64(&s);
		memcpy(p + i, &v, len - i);
	}
	for (size_t blk = 0; blk < len; blk += 64) {
		size_t span = len - blk < 64 ? len - blk : 64, t;

		v = splitmix64(&s);
		t = v % (sizeof tokens / sizeof tokens[0]);
		if (tokens[t].n <= span)
			memcpy(p + blk + (v >> 8) % (span - tokens[t].n + 1), tokens[t].s, tokens[t].n);
	}
}

static const uint8_t *expected(uint64_t seed, size_t len)
{
	if (len > g.scratch_cap) {
		g.scratch = xrealloc(g.scratch, len);
		g.scratch_cap = len;
	}
	value_fill(g.scratch, len, seed);
	return g.scratch;
}

/* A size in 1..max: class b with weight 0.7^b, uniform inside it; 1 in
 * 4096 is exactly max. */
static size_t pick_size(uint64_t *rng, size_t max)
{
	unsigned bits = 0, b = 0;
	size_t lo, hi;

	if (below(rng, 4096) == 0)
		return max;
	while (bits < 40 && ((size_t)2 << bits) <= max)
		bits++;
	while (b < bits && below(rng, 10) < 7)
		b++;
	lo = (size_t)1 << b;
	hi = ((size_t)2 << b) - 1;
	if (hi > max)
		hi = max;
	return lo + (size_t)below(rng, hi - lo + 1);
}

/* -------------------------------------------------------------- byte queue */

static uint8_t *reserve(struct buf *b, size_t n)
{
	if (b->off > 0 && b->cap - b->len < n) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap - b->len < n)
			cap *= 2;
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
	return b->data + b->len;
}

static void append(struct buf *b, const void *p, size_t n)
{
	memcpy(reserve(b, n), p, n);
	b->len += n;
}

static size_t avail(const struct buf *b)
{
	return b->len - b->off;
}

static void consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

/* Gives big buffers back between incarnations. */
static void reset_buf(struct buf *b)
{
	if (b->cap > (1u << 20)) {
		free(b->data);
		memset(b, 0, sizeof *b);
	}
	b->off = b->len = 0;
}

/* -------------------------------------------------------------- reporting */

static void error(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void error(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	g.errors++;
	if (g.error_lines++ >= REPORT_MAX)
		return;
	fprintf(stderr, "soakload: conn %u.%u (port %d, %s, depth %d): ", c->id, c->inc,
		opt.ports[c->target], proto_names[c->proto], c->depth);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void mismatch(struct conn *c, const struct req *r, const struct want *w, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void mismatch(struct conn *c, const struct req *r, const struct want *w, const char *fmt, ...)
{
	va_list ap;

	g.mismatches++;
	if (g.mismatch_lines++ >= REPORT_MAX)
		return;
	fprintf(stderr, "soakload: mismatch: conn %u.%u (port %d, %s) %s%s key %d: ", c->id, c->inc,
		opt.ports[c->target], proto_names[c->proto], r->quiet ? "quiet " : "",
		op_names[r->op], w->k);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ------------------------------------------------------------ connections */

static void conn_start(struct conn *c);

static void conn_close_fd(struct conn *c, int rst)
{
	if (c->fd < 0)
		return;
	if (rst) {
		struct linger l = { 1, 0 };
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
	}
	close(c->fd);
	c->fd = -1;
}

/* The end of an incarnation: a clean end, the abort (counted) or a
 * failure. */
static void conn_restart(struct conn *c, int rst)
{
	g.inflight -= (uint64_t)c->count;
	conn_close_fd(c, rst);
	conn_start(c);
}

static void do_abort(struct conn *c)
{
	g.aborts[c->abort]++;
	g.aborts_rst += (uint64_t)c->abort_rst;
	conn_restart(c, c->abort_rst);
}

static void conn_start(struct conn *c)
{
	struct sockaddr_in sa;

	c->inc++;
	c->rng = mix(mix(opt.seed, c->id), c->inc);
	c->target = (int)((c->id + c->inc) % (unsigned)opt.ntargets);
	c->proto = opt.protos[below(&c->rng, (uint64_t)opt.nprotos)];
	c->depth = 1 + (int)below(&c->rng, (uint64_t)opt.depths[c->target]);
	c->nopipe = opt.depths[c->target] == 1;
	reset_buf(&c->in);
	reset_buf(&c->out);
	c->out_sent_total = c->out_total = 0;
	c->head = c->count = c->groups = c->mget_pos = 0;
	c->opaque = (uint32_t)splitmix64(&c->rng);
	memset(c->keys, 0, sizeof c->keys);
	c->ops_issued = 0;
	c->abort = AB_NONE;
	c->abort_at = opt.abort_every ? below(&c->rng, 2 * opt.abort_every) + 1 : UINT64_MAX;
	c->end = END_NONE;
	c->shut = 0;
	c->life_at = opt.life ? below(&c->rng, 2 * opt.life - 1) + 1 : UINT64_MAX;
	snprintf(c->prefix, sizeof c->prefix, "soak:%s:%u:%u", g.run, c->id, c->inc);
	c->last_progress = now_ms();

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die(1, "socket: %s", strerror(errno));
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)opt.ports[c->target]);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	g.connects++;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) == 0)
		c->connecting = 0;
	else if (errno == EINPROGRESS)
		c->connecting = 1;
	else
		die(1, "connect to port %d: %s", opt.ports[c->target], strerror(errno));
}

static struct req *ring_at(const struct conn *c, int i)
{
	return &c->ring[(c->head + i) % opt.ring_cap];
}

/* ---------------------------------------------------------------- requests */

static int key_name(const struct conn *c, int k, char *out)
{
	return snprintf(out, KEY_LEN, "%s:%d", c->prefix, k);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void appendf(struct buf *b, const char *fmt, ...)
{
	char line[2 * KEY_LEN + MGET_MAX * KEY_LEN];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof line)
		die(1, "request line too long");
	append(b, line, (size_t)n);
}

static void append_value(struct buf *b, const struct want *w)
{
	value_fill(reserve(b, w->vlen), w->vlen, w->vseed);
	b->len += w->vlen;
}

static void encode_text(struct conn *c, const struct req *r)
{
	char key[KEY_LEN];
	const char *nr = r->quiet ? " noreply" : "";

	switch (r->op) {
	case OP_SET:
		key_name(c, r->w[0].k, key);
		appendf(&c->out, "set %s %" PRIu32 " 0 %zu%s\r\n", key, r->w[0].flags, r->w[0].vlen, nr);
		append_value(&c->out, &r->w[0]);
		append(&c->out, "\r\n", 2);
		break;
	case OP_GET:
		append(&c->out, "get", 3);
		for (int i = 0; i < r->nkeys; i++) {
			key_name(c, r->w[i].k, key);
			appendf(&c->out, " %s", key);
		}
		append(&c->out, "\r\n", 2);
		break;
	case OP_DELETE:
		key_name(c, r->w[0].k, key);
		appendf(&c->out, "delete %s%s\r\n", key, nr);
		break;
	case OP_NOOP:
		die(1, "no noop in the text protocol");
	}
}

static void encode_meta(struct conn *c, const struct req *r)
{
	char key[KEY_LEN], o[16] = "";

	if (r->withopaque)
		snprintf(o, sizeof o, " O%" PRIu32, r->opaque);
	key_name(c, r->w[0].k, key);
	switch (r->op) {
	case OP_SET:
		appendf(&c->out, "ms %s %zu F%" PRIu32 "%s%s%s\r\n", key, r->w[0].vlen, r->w[0].flags, o,
			r->withkey ? " k" : "", r->quiet ? " q" : "");
		append_value(&c->out, &r->w[0]);
		append(&c->out, "\r\n", 2);
		break;
	case OP_GET:
		appendf(&c->out, "mg %s%s f%s%s%s\r\n", key, r->withval ? " v" : "", r->withkey ? " k" : "", o,
			r->quiet ? " q" : "");
		break;
	case OP_DELETE:
		appendf(&c->out, "md %s%s%s\r\n", key, o, r->quiet ? " q" : "");
		break;
	case OP_NOOP:
		append(&c->out, "mn\r\n", 4);
		break;
	}
}

static void encode_binary(struct conn *c, const struct req *r)
{
	char key[KEY_LEN];
	uint8_t h[24 + 8] = { 0 };
	size_t ext = r->op == OP_SET ? 8 : 0, klen = 0, vlen = r->op == OP_SET ? r->w[0].vlen : 0;

	if (r->op != OP_NOOP)
		klen = (size_t)key_name(c, r->w[0].k, key);
	h[0] = 0x80;
	h[1] = r->opcode;
	h[2] = (uint8_t)(klen >> 8);
	h[3] = (uint8_t)klen;
	h[4] = (uint8_t)ext;
	put32(h + 8, (uint32_t)(ext + klen + vlen));
	put32(h + 12, r->opaque);
	if (r->op == OP_SET)
		put32(h + 24, r->w[0].flags);
	append(&c->out, h, 24 + ext);
	append(&c->out, key, klen);
	if (r->op == OP_SET)
		append_value(&c->out, &r->w[0]);
}

/* A new request at the ring's tail; the caller fills it in and calls
 * queue(). */
static struct req *push(struct conn *c)
{
	if (c->count >= opt.ring_cap)
		die(1, "request ring full (%d)", c->count);
	struct req *r = ring_at(c, c->count);
	memset(r, 0, sizeof *r);
	r->opaque = ++c->opaque;
	r->nkeys = 1;
	r->reply = 1;
	return r;
}

static void queue(struct conn *c, struct req *r)
{
	size_t before = c->out.len;

	if (c->proto == TEXT)
		encode_text(c, r);
	else if (c->proto == META)
		encode_meta(c, r);
	else
		encode_binary(c, r);
	c->out_total += c->out.len - before;
	if (r->op == OP_SET && r->w[0].vlen > g.largest)
		g.largest = r->w[0].vlen;
	c->count++;
	c->ops_issued++;
	g.issued++;
	g.inflight++;
}

/* What the model says key k holds. */
static void want_key(const struct conn *c, struct want *w, int k)
{
	const struct key *ks = &c->keys[k];

	w->k = k;
	w->hit = ks->set;
	w->vseed = ks->vseed;
	w->vlen = ks->vlen;
	w->flags = ks->flags;
}

static void op_set(struct conn *c, int k, size_t vlen, int quiet)
{
	struct req *r = push(c);
	struct key *ks = &c->keys[k];

	r->op = OP_SET;
	r->quiet = (uint8_t)quiet;
	r->reply = (uint8_t)!quiet;
	r->opcode = quiet ? BIN_SETQ : BIN_SET;
	r->withopaque = c->proto == META && below(&c->rng, 2);
	r->withkey = c->proto == META && below(&c->rng, 4) == 0;
	ks->gen++;
	ks->set = 1;
	ks->vseed = mix(mix(mix(opt.seed, c->id), (uint64_t)c->inc << 8 | (uint64_t)k), ks->gen);
	ks->vlen = vlen;
	ks->flags = (uint32_t)(ks->vseed >> 32);
	want_key(c, &r->w[0], k);
	queue(c, r);
}

/* A get of n keys (n > 1: text only); quiet (binary and meta) answers
 * only on a hit. */
static void op_get(struct conn *c, const int *ks, int n, int quiet)
{
	struct req *r = push(c);

	r->op = OP_GET;
	r->quiet = (uint8_t)quiet;
	r->nkeys = (uint8_t)n;
	for (int i = 0; i < n; i++)
		want_key(c, &r->w[i], ks[i]);
	r->reply = !quiet || r->w[0].hit;
	r->withkey = c->proto != TEXT && below(&c->rng, 2);
	r->opcode = r->withkey ? (quiet ? BIN_GETKQ : BIN_GETK) : (quiet ? BIN_GETQ : BIN_GET);
	/* Meta: a quiet mg and the one an abort cuts carry the value; 1 in 8
	 * others ask for flags alone (a hit is then an HD line). */
	r->withval = quiet || c->abort == AB_REPLY || below(&c->rng, 8) != 0;
	r->withopaque = c->proto == META && below(&c->rng, 2);
	queue(c, r);
}

/* A delete; quiet ones are sent for keys that hold a value only (binary
 * DELETEQ and meta md q answer a miss). */
static void op_delete(struct conn *c, int k, int quiet)
{
	struct req *r = push(c);

	r->op = OP_DELETE;
	r->quiet = (uint8_t)quiet;
	want_key(c, &r->w[0], k);
	r->reply = !quiet || (c->proto != TEXT && !r->w[0].hit);
	r->opcode = quiet ? BIN_DELETEQ : BIN_DELETE;
	r->withopaque = c->proto == META && below(&c->rng, 2);
	c->keys[k].set = 0;
	queue(c, r);
}

/* Binary NOOP, meta mn: the end of a multi-get. */
static void op_noop(struct conn *c)
{
	struct req *r = push(c);

	r->op = OP_NOOP;
	r->opcode = BIN_NOOP;
	queue(c, r);
}

static void group_multiget(struct conn *c)
{
	int n = 2 + (int)below(&c->rng, MGET_MAX - 1), ks[MGET_MAX];

	for (int i = 0; i < n; i++)
		ks[i] = (int)below(&c->rng, KEYS);
	g.multigets++;
	if (c->proto == TEXT) {
		op_get(c, ks, n, 0);
		return;
	}
	for (int i = 0; i < n; i++)
		op_get(c, &ks[i], 1, 1);
	op_noop(c);
}

/* Quiet requests, then a plain get of the last one's key. Never a quiet
 * set on a DEPTH 1 target, nor a text quiet get (there is none). */
static void group_quiet(struct conn *c)
{
	int m = 1 + (int)below(&c->rng, QUIET_MAX), k = 0;

	for (int i = 0; i < m; i++) {
		unsigned kind = (unsigned)below(&c->rng, 3);     /* set, delete, get */
		k = (int)below(&c->rng, KEYS);
		if (kind == 0 && c->nopipe)
			kind = 1;
		if (kind == 1 && c->proto != TEXT && !c->keys[k].set)
			kind = 2;
		if (kind == 2 && c->proto == TEXT)
			kind = 1;
		if (kind == 0)
			op_set(c, k, pick_size(&c->rng, opt.max_size), 1);
		else if (kind == 1)
			op_delete(c, k, 1);
		else
			op_get(c, &k, 1, 1);
	}
	op_get(c, &k, 1, 0);
}

/* The abort point is reached: one plain request that suits the kind. */
static void group_abort(struct conn *c)
{
	enum abort_kind kind = (enum abort_kind)(1 + below(&c->rng, 3));
	int k = (int)below(&c->rng, KEYS);

	c->abort_rst = (int)below(&c->rng, 2);
	if (kind == AB_REPLY) {
		/* A get of a value this incarnation holds, if any, whose
		 * reply is cut at a random byte: the first read takes at most
		 * abort_cut bytes, fewer than the reply has. */
		int found = -1;
		for (int i = 0; i < KEYS && found < 0; i++)
			if (c->keys[i].set && c->keys[i].vlen >= REPLY_ABORT_MIN)
				found = i;
		if (found >= 0) {
			c->abort = AB_REPLY;
			c->abort_cut = 1 + (size_t)below(&c->rng, c->keys[found].vlen);
			op_get(c, &found, 1, 0);
			return;
		}
		kind = AB_PENDING;
	}
	c->abort = kind;
	if (kind == AB_REQUEST) {
		size_t start = c->out_total, vlen = pick_size(&c->rng, opt.max_size);
		if (vlen < 64)
			vlen = 64 + (size_t)below(&c->rng, 4096);
		op_set(c, k, vlen, 0);
		/* Anywhere from inside its command line to its last byte. */
		c->abort_pos = start + 1 + (size_t)below(&c->rng, c->out_total - start - 1);
	} else if (below(&c->rng, 2)) {
		op_set(c, k, pick_size(&c->rng, opt.max_size), 0);
	} else {
		op_get(c, &k, 1, 0);
	}
}

static void arm_end(struct conn *c)
{
	unsigned roll = (unsigned)below(&c->rng, 4);
	const struct req *last = ring_at(c, c->count - 1);

	c->end = roll < 2 ? END_CLOSE : roll == 2 ? END_HALF : END_EARLY;
	/* memcached 1.6.18's TLS: nothing (a tunnel's sentinel neither)
	 * behind a value before its reply. */
	if (c->end == END_EARLY && c->nopipe && last->op == OP_SET)
		c->end = END_HALF;
}

/* Queue one group of requests; arms the abort or the clean end when its
 * point is reached. */
static void issue_group(struct conn *c)
{
	int k = (int)below(&c->rng, KEYS);

	if (c->ops_issued + 1 >= c->abort_at) {
		group_abort(c);
	} else if (opt.mix == MIX_BASIC) {
		if (below(&c->rng, 2) == 0)
			op_set(c, k, pick_size(&c->rng, opt.max_size), 0);
		else
			op_get(c, &k, 1, 0);
	} else {
		unsigned roll = (unsigned)below(&c->rng, 100);
		if (roll < 35)
			op_set(c, k, pick_size(&c->rng, opt.max_size), 0);
		else if (roll < 65)
			op_get(c, &k, 1, 0);
		else if (roll < 72)
			op_delete(c, k, 0);
		else if (roll < 86)
			group_multiget(c);
		else
			group_quiet(c);
	}
	ring_at(c, c->count - 1)->last = 1;
	c->groups++;
	if (c->abort == AB_NONE && c->ops_issued >= c->life_at)
		arm_end(c);
}

/* ----------------------------------------------------------------- replies */

static void verify_value(struct conn *c, const struct req *r, const struct want *w, const uint8_t *data,
			 size_t len, uint32_t flags)
{
	if (!w->hit) {
		mismatch(c, r, w, "got %zu bytes, expected a miss", len);
		return;
	}
	if (len != w->vlen || flags != w->flags) {
		mismatch(c, r, w, "got %zu bytes flags %" PRIu32 ", expected %zu bytes flags %" PRIu32,
			 len, flags, w->vlen, w->flags);
		return;
	}
	const uint8_t *want = expected(w->vseed, len);
	if (memcmp(data, want, len) != 0) {
		size_t i = 0;
		while (data[i] == want[i])
			i++;
		mismatch(c, r, w, "value of %zu bytes differs from byte %zu", len, i);
	}
}

static void verify_miss(struct conn *c, const struct req *r, const struct want *w)
{
	if (w->hit)
		mismatch(c, r, w, "got a miss, expected %zu bytes (evicted? give memcached more -m)", w->vlen);
}

/* The reply line at the head of the input: its length without CR LF in
 * *l; 1 found, 0 need more, -1 broken. */
static int reply_line(struct conn *c, const char **p, size_t *l)
{
	size_t n = avail(&c->in);
	const char *eol;

	*p = (const char *)c->in.data + c->in.off;
	eol = memmem(*p, n < LINE_MAX_REPLY ? n : LINE_MAX_REPLY, "\r\n", 2);
	if (eol == NULL) {
		if (n < LINE_MAX_REPLY)
			return 0;
		error(c, "no reply line end in %d bytes", LINE_MAX_REPLY);
		return -1;
	}
	*l = (size_t)(eol - *p);
	return 1;
}

/* Splits a reply line (no CR LF) at spaces into NUL-terminated copies. */
static int split(const char *p, size_t l, char *copy, char **tok)
{
	int n = 0;

	memcpy(copy, p, l);
	copy[l] = '\0';
	for (char *s = strtok(copy, " "); s != NULL && n < TOKENS_MAX; s = strtok(NULL, " "))
		tok[n++] = s;
	return n;
}

static int number_of(const char *s, uint64_t max, uint64_t *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno || *end || *v > max ? -1 : 0;
}

static int same_key(const struct conn *c, int k, const char *name, size_t len)
{
	char key[KEY_LEN];
	int klen = key_name(c, k, key);

	return (size_t)klen == len && memcmp(key, name, len) == 0;
}

/* A data block of len bytes after a line of l bytes, then CR LF: 1 all
 * there, 0 need more, -1 no CR LF after it. */
static int data_block(struct conn *c, size_t l, size_t len)
{
	const uint8_t *p = c->in.data + c->in.off;

	if (avail(&c->in) < l + 2 + len + 2)
		return 0;
	if (memcmp(p + l + 2 + len, "\r\n", 2) != 0) {
		error(c, "a %zu-byte data block not followed by CR LF", len);
		return -1;
	}
	return 1;
}

/*
 * The text reply to r: 1 done, 2 part of a multi-get's reply taken (call
 * again), 0 need more, -1 broken. A get's VALUE blocks come in the order
 * of its keys, for the keys that hold a value.
 */
static int parse_text(struct conn *c, struct req *r)
{
	const char *p;
	size_t l;
	int got = reply_line(c, &p, &l);
	char copy[LINE_MAX_REPLY + 1], *tok[TOKENS_MAX];

	if (got <= 0)
		return got;
	int ntok = split(p, l, copy, tok);
	const char *code = ntok > 0 ? tok[0] : "";
	struct want *w = &r->w[c->mget_pos];

	if (r->op == OP_SET) {
		if (ntok == 1 && strcmp(code, "STORED") == 0) {
			consume(&c->in, l + 2);
			return 1;
		}
	} else if (r->op == OP_DELETE) {
		if (ntok == 1 && (strcmp(code, "DELETED") == 0 || strcmp(code, "NOT_FOUND") == 0)) {
			if ((code[0] == 'D') != w->hit)
				mismatch(c, r, w, "%s, expected %s", code, w->hit ? "DELETED" : "NOT_FOUND");
			consume(&c->in, l + 2);
			return 1;
		}
	} else if (ntok == 1 && strcmp(code, "END") == 0) {
		for (int i = c->mget_pos; i < r->nkeys; i++)
			verify_miss(c, r, &r->w[i]);
		consume(&c->in, l + 2);
		return 1;
	} else if (ntok == 4 && strcmp(code, "VALUE") == 0) {
		uint64_t flags, vlen;
		if (number_of(tok[2], UINT32_MAX, &flags) < 0 || number_of(tok[3], opt.max_size, &vlen) < 0) {
			error(c, "get: reply \"%.*s\"", (int)(l < 80 ? l : 80), p);
			return -1;
		}
		/* The next key that holds a value; the ones before it miss. */
		int i = c->mget_pos;
		while (i < r->nkeys && !r->w[i].hit)
			i++;
		if (i == r->nkeys || !same_key(c, r->w[i].k, tok[1], strlen(tok[1]))) {
			mismatch(c, r, w, "a value for %s, expected %s", tok[1],
				 i == r->nkeys ? "END" : "another key");
			return -1;
		}
		int d = data_block(c, l, (size_t)vlen);
		if (d <= 0)
			return d;
		verify_value(c, r, &r->w[i], (const uint8_t *)p + l + 2, (size_t)vlen, (uint32_t)flags);
		consume(&c->in, l + 2 + (size_t)vlen + 2);
		c->mget_pos = i + 1;
		return 2;
	}
	error(c, "%s: reply \"%.*s\"", op_names[r->op], (int)(l < 80 ? l : 80), p);
	return -1;
}

/* A meta reply's return flags: f (the flags, into *flags; a get's hit
 * only: want_f), k (the key), O (the opaque); each one asked for present,
 * nothing else. 0 good, -1 reported. */
static int meta_flags(struct conn *c, const struct req *r, char **tok, int ntok, int want_f, uint32_t *flags)
{
	int f = 0, k = 0, o = 0;
	uint64_t v;

	for (int i = 0; i < ntok; i++) {
		const char *t = tok[i];
		switch (t[0]) {
		case 'f':
			if (number_of(t + 1, UINT32_MAX, &v) < 0)
				break;
			*flags = (uint32_t)v;
			f++;
			continue;
		case 'k':
			if (!same_key(c, r->w[0].k, t + 1, strlen(t + 1))) {
				mismatch(c, r, &r->w[0], "a reply for key %s", t + 1);
				return -1;
			}
			k++;
			continue;
		case 'O':
			if (number_of(t + 1, UINT32_MAX, &v) < 0 || v != r->opaque) {
				mismatch(c, r, &r->w[0], "a reply with opaque %s, expected O%" PRIu32, t, r->opaque);
				return -1;
			}
			o++;
			continue;
		}
		error(c, "%s: return flag \"%s\"", op_names[r->op], t);
		return -1;
	}
	if (f != want_f || k != r->withkey || o != r->withopaque) {
		error(c, "%s: return flags f%d k%d O%d, asked for f%d k%d O%d", op_names[r->op], f, k, o,
		      want_f, r->withkey, r->withopaque);
		return -1;
	}
	return 0;
}

/* The meta reply to r: 1 done, 0 need more, -1 broken. */
static int parse_meta(struct conn *c, struct req *r)
{
	const char *p;
	size_t l;
	int got = reply_line(c, &p, &l);
	char copy[LINE_MAX_REPLY + 1], *tok[TOKENS_MAX];
	uint32_t flags = 0;
	uint64_t vlen;

	if (got <= 0)
		return got;
	int ntok = split(p, l, copy, tok);
	const char *code = ntok > 0 ? tok[0] : "";
	struct want *w = &r->w[0];

	switch (r->op) {
	case OP_SET:
		if (strcmp(code, "HD") != 0)
			break;
		if (meta_flags(c, r, tok + 1, ntok - 1, r->op == OP_GET, &flags) < 0)
			return -1;
		consume(&c->in, l + 2);
		return 1;
	case OP_DELETE:
		if (strcmp(code, "HD") != 0 && strcmp(code, "NF") != 0)
			break;
		if (meta_flags(c, r, tok + 1, ntok - 1, r->op == OP_GET, &flags) < 0)
			return -1;
		if ((code[0] == 'H') != w->hit)
			mismatch(c, r, w, "%s, expected %s", code, w->hit ? "HD" : "NF");
		consume(&c->in, l + 2);
		return 1;
	case OP_NOOP:
		if (ntok != 1 || strcmp(code, "MN") != 0)
			break;
		consume(&c->in, l + 2);
		return 1;
	case OP_GET:
		if (strcmp(code, "EN") == 0 && !r->quiet) {
			if (meta_flags(c, r, tok + 1, ntok - 1, 0, &flags) < 0)
				return -1;
			verify_miss(c, r, w);
			consume(&c->in, l + 2);
			return 1;
		}
		if (!r->withval && strcmp(code, "HD") == 0) {
			if (meta_flags(c, r, tok + 1, ntok - 1, r->op == OP_GET, &flags) < 0)
				return -1;
			if (!w->hit)
				mismatch(c, r, w, "a hit, expected a miss");
			else if (flags != w->flags)
				mismatch(c, r, w, "flags %" PRIu32 ", expected %" PRIu32, flags, w->flags);
			consume(&c->in, l + 2);
			return 1;
		}
		if (!r->withval || ntok < 2 || strcmp(code, "VA") != 0)
			break;
		if (number_of(tok[1], opt.max_size, &vlen) < 0)
			break;
		if (meta_flags(c, r, tok + 2, ntok - 2, 1, &flags) < 0)
			return -1;
		int d = data_block(c, l, (size_t)vlen);
		if (d <= 0)
			return d;
		verify_value(c, r, w, (const uint8_t *)p + l + 2, (size_t)vlen, flags);
		consume(&c->in, l + 2 + (size_t)vlen + 2);
		return 1;
	}
	error(c, "%s%s: reply \"%.*s\"", r->quiet ? "quiet " : "", op_names[r->op], (int)(l < 80 ? l : 80), p);
	return -1;
}

/* The binary reply to r, the i-th request in flight (those before it
 * expect no reply): 1 done, 0 need more, -1 broken. */
static int parse_binary(struct conn *c, struct req *r, int i)
{
	const uint8_t *h = c->in.data + c->in.off;
	size_t n = avail(&c->in);

	if (n < 24)
		return 0;
	uint32_t body = get32(h + 8), opaque = get32(h + 12);
	unsigned status = (unsigned)h[6] << 8 | h[7];
	if (h[0] != 0x81) {
		error(c, "binary reply: magic 0x%02x", h[0]);
		return -1;
	}
	if (opaque != r->opaque) {
		for (int j = 0; j < i; j++) {
			const struct req *q = ring_at(c, j);
			if (q->opaque == opaque) {
				mismatch(c, q, &q->w[0], "a reply (status 0x%04x) where none was due", status);
				return -1;
			}
		}
		for (int j = i + 1; r->quiet && j < c->count; j++) {
			if (ring_at(c, j)->opaque == opaque) {
				mismatch(c, r, &r->w[0], "no reply (a miss?), expected %zu bytes", r->w[0].vlen);
				return -1;
			}
		}
		error(c, "binary reply: opcode 0x%02x opaque %" PRIu32 ", expected opcode 0x%02x opaque %" PRIu32,
		      h[1], opaque, r->opcode, r->opaque);
		return -1;
	}
	if (h[1] != r->opcode) {
		error(c, "binary reply: opcode 0x%02x, expected 0x%02x", h[1], r->opcode);
		return -1;
	}
	if (body > opt.max_size + 1024) {
		error(c, "binary reply: body of %" PRIu32 " bytes", body);
		return -1;
	}
	if (n < 24 + (size_t)body)
		return 0;
	size_t ext = h[4], klen = (size_t)h[2] << 8 | h[3];
	struct want *w = &r->w[0];
	switch (r->op) {
	case OP_SET:
		if (status != 0)
			break;
		consume(&c->in, 24 + (size_t)body);
		return 1;
	case OP_DELETE:
		if (status != 0 && status != 1)
			break;
		if ((status == 0) != w->hit)
			mismatch(c, r, w, "status %u, expected %u", status, w->hit ? 0 : 1);
		consume(&c->in, 24 + (size_t)body);
		return 1;
	case OP_NOOP:
		if (status != 0 || body != 0)
			break;
		consume(&c->in, 24);
		return 1;
	case OP_GET:
		if (status == 1) {
			verify_miss(c, r, w);
		} else if (status == 0 && ext == 4 && klen + ext <= body) {
			if (r->withkey && !same_key(c, w->k, (const char *)h + 24 + ext, klen)) {
				mismatch(c, r, w, "a reply for key %.*s", (int)(klen < 80 ? klen : 80),
					 (const char *)h + 24 + ext);
				return -1;
			}
			verify_value(c, r, w, h + 24 + ext + klen, body - ext - klen, get32(h + 24));
		} else {
			break;
		}
		consume(&c->in, 24 + (size_t)body);
		return 1;
	}
	error(c, "%s: status 0x%04x, %zu bytes of extras, %zu of key, %" PRIu32 " of body", op_names[r->op],
	      status, ext, klen, body);
	return -1;
}

/* Every reply in flight was read: the incarnation's clean end goes on.
 * Returns -1 when the incarnation ended. */
static int end_step(struct conn *c)
{
	if (c->end == END_CLOSE) {
		g.ends[END_CLOSE]++;
		conn_restart(c, 0);
		return -1;
	}
	if (!c->shut) {
		if (shutdown(c->fd, SHUT_WR) < 0) {
			error(c, "shutdown: %s", strerror(errno));
			conn_restart(c, 1);
			return -1;
		}
		c->shut = 1;
		c->last_progress = now_ms();
	}
	return 0;
}

/* Verifies what has arrived; returns -1 when the incarnation ended. */
static int take_replies(struct conn *c)
{
	while (c->count > 0) {
		/* The first request a reply is due to; the quiet ones before
		 * it have none coming. Every group ends with one. */
		int i = 0;
		while (i < c->count && !ring_at(c, i)->reply)
			i++;
		if (i == c->count)
			die(1, "conn %u.%u: no request in flight expects a reply", c->id, c->inc);
		struct req *r = ring_at(c, i);
		int done = c->proto == TEXT ? parse_text(c, r)
			 : c->proto == META ? parse_meta(c, r) : parse_binary(c, r, i);
		if (done < 0) {
			conn_restart(c, 1);
			return -1;
		}
		if (done == 2) {
			c->last_progress = now_ms();
			continue;
		}
		if (done == 0) {
			/* Part of a reply is in: the place to cut. */
			if (c->abort == AB_REPLY && avail(&c->in) > 0) {
				do_abort(c);
				return -1;
			}
			return 0;
		}
		for (int j = 0; j <= i; j++) {
			const struct req *q = ring_at(c, 0);
			g.quiet += q->quiet;
			c->groups -= q->last;
			c->head = (c->head + 1) % opt.ring_cap;
			c->count--;
		}
		g.inflight -= (uint64_t)i + 1;
		g.verified += (uint64_t)i + 1;
		g.by_proto[c->proto] += (uint64_t)i + 1;
		c->mget_pos = 0;
		c->last_progress = now_ms();
	}
	/* The reply to cut came whole with the ones before it: abort now. */
	if (c->abort == AB_REPLY) {
		do_abort(c);
		return -1;
	}
	if (avail(&c->in) > 0) {
		error(c, "%zu bytes with no request outstanding%s", avail(&c->in),
		      c->shut ? " (after the end)" : "");
		conn_restart(c, 1);
		return -1;
	}
	if (c->end != END_NONE && avail(&c->out) == 0)
		return end_step(c);
	return 0;
}

/* ------------------------------------------------------------------ I/O */

static void on_writable(struct conn *c)
{
	while (avail(&c->out) > 0) {
		size_t n = avail(&c->out);
		if (c->abort == AB_REQUEST) {
			if (c->out_sent_total >= c->abort_pos) {
				do_abort(c);
				return;
			}
			if (n > c->abort_pos - c->out_sent_total)
				n = c->abort_pos - c->out_sent_total;
		}
		ssize_t w = send(c->fd, c->out.data + c->out.off, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			error(c, "send: %s (%d requests unanswered)", strerror(errno), c->count);
			conn_restart(c, 1);
			return;
		}
		consume(&c->out, (size_t)w);
		c->out_sent_total += (size_t)w;
		g.bytes_out += (uint64_t)w;
	}
	if (c->abort == AB_REQUEST && c->out_sent_total >= c->abort_pos) {
		do_abort(c);
		return;
	}
	if (c->abort == AB_PENDING && c->count > 0) {
		do_abort(c);
		return;
	}
	if (c->end == END_EARLY && !c->shut)
		end_step(c);
	else if (c->end != END_NONE && c->count == 0)
		end_step(c);
}

static void on_readable(struct conn *c)
{
	size_t chunk = c->abort == AB_REPLY && c->count == 1 ? c->abort_cut : READ_CHUNK;
	ssize_t r = recv(c->fd, reserve(&c->in, chunk), chunk, 0);

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r == 0 && c->shut && c->count == 0) {
		g.ends[c->end]++;
		conn_restart(c, 0);
		return;
	}
	if (r <= 0) {
		error(c, "%s (%d requests unanswered)", r == 0 ? "connection closed by the server"
			: strerror(errno), c->count);
		conn_restart(c, 0);
		return;
	}
	c->in.len += (size_t)r;
	g.bytes_in += (uint64_t)r;
	take_replies(c);
}

static void usage(void)
{
	die(2, "usage: soakload --target PORT[:DEPTH] [--target ...] [--conns N] [--ops N]\n"
	       "       [--max-size N] [--abort-every N] [--life N] [--protos text,binary,meta]\n"
	       "       [--mix basic|full] [--seed S] [--timeout S]");
}

static uint64_t number(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		usage();
	switch (*end) {
	case 'k': v <<= 10; end++; break;
	case 'M': v <<= 20; end++; break;
	case 'G': v <<= 30; end++; break;
	}
	if (*end)
		usage();
	return v;
}

static void parse_protos(char *list)
{
	opt.nprotos = 0;
	for (char *s = strtok(list, ","); s != NULL; s = strtok(NULL, ",")) {
		int p = 0;
		while (p < NPROTO && strcmp(s, proto_names[p]) != 0)
			p++;
		if (p == NPROTO || opt.nprotos == NPROTO)
			usage();
		opt.protos[opt.nprotos++] = (enum proto)p;
	}
	if (opt.nprotos == 0)
		usage();
}

int main(int argc, char **argv)
{
	int seeded = 0, maxdepth = 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL)
			usage();
		i++;
		if (strcmp(a, "--target") == 0) {
			if (opt.ntargets == MAX_TARGETS)
				usage();
			char *colon = strchr(v, ':');
			opt.depths[opt.ntargets] = colon ? (int)number(colon + 1) : 1;
			if (colon)
				*colon = '\0';
			opt.ports[opt.ntargets] = (int)number(v);
			if (opt.ports[opt.ntargets] < 1 || opt.ports[opt.ntargets] > 65535
			    || opt.depths[opt.ntargets] < 1 || opt.depths[opt.ntargets] > MAX_DEPTH)
				usage();
			if (opt.depths[opt.ntargets] > maxdepth)
				maxdepth = opt.depths[opt.ntargets];
			opt.ntargets++;
		} else if (strcmp(a, "--conns") == 0) {
			opt.conns = (unsigned)number(v);
		} else if (strcmp(a, "--ops") == 0) {
			opt.ops = number(v);
		} else if (strcmp(a, "--max-size") == 0) {
			opt.max_size = (size_t)number(v);
		} else if (strcmp(a, "--abort-every") == 0) {
			opt.abort_every = number(v);
		} else if (strcmp(a, "--life") == 0) {
			opt.life = number(v);
		} else if (strcmp(a, "--protos") == 0) {
			parse_protos(v);
		} else if (strcmp(a, "--mix") == 0) {
			if (strcmp(v, "basic") == 0)
				opt.mix = MIX_BASIC;
			else if (strcmp(v, "full") == 0)
				opt.mix = MIX_FULL;
			else
				usage();
		} else if (strcmp(a, "--seed") == 0) {
			opt.seed = number(v);
			seeded = 1;
		} else if (strcmp(a, "--timeout") == 0) {
			opt.timeout = (long)number(v);
		} else {
			usage();
		}
	}
	if (opt.ntargets == 0 || opt.conns == 0 || opt.conns > 4096 || opt.max_size < 1
	    || opt.max_size > (64u << 20) || opt.abort_every > (1ull << 40) || opt.life > (1ull << 40))
		usage();
	opt.ring_cap = maxdepth * (GROUP_MAX > QUIET_MAX + 1 ? GROUP_MAX : QUIET_MAX + 1);
	if (!seeded && getrandom(&opt.seed, sizeof opt.seed, 0) != sizeof opt.seed)
		die(1, "getrandom: %s", strerror(errno));
	uint64_t s = opt.seed;
	snprintf(g.run, sizeof g.run, "%08" PRIx32, (uint32_t)splitmix64(&s));
	signal(SIGPIPE, SIG_IGN);

	struct conn *cs = calloc(opt.conns, sizeof *cs);
	struct pollfd *pfd = calloc(opt.conns, sizeof *pfd);
	if (cs == NULL || pfd == NULL)
		die(1, "out of memory");
	for (unsigned i = 0; i < opt.conns; i++) {
		cs[i].id = i;
		cs[i].fd = -1;
		cs[i].ring = calloc((size_t)opt.ring_cap, sizeof *cs[i].ring);
		if (cs[i].ring == NULL)
			die(1, "out of memory");
		conn_start(&cs[i]);
	}

	int64_t t0 = now_ms(), deadline = t0 + opt.timeout * 1000;
	int status = 0;
	while (g.verified < opt.ops) {
		int64_t now = now_ms();
		if (now >= deadline) {
			fprintf(stderr, "soakload: timeout after %ld s: %" PRIu64 " of %" PRIu64 " operations verified\n",
				opt.timeout, g.verified, opt.ops);
			status = 3;
			break;
		}
		for (unsigned i = 0; i < opt.conns; i++) {
			struct conn *c = &cs[i];
			if (!c->connecting)
				while (c->groups < c->depth && c->abort == AB_NONE && c->end == END_NONE
				       && g.verified + g.inflight < opt.ops)
					issue_group(c);
			if ((c->count > 0 || c->shut) && now - c->last_progress > STALL_MS) {
				error(c, "no %s for %d s (%d requests unanswered)", c->count ? "reply" : "EOF",
				      STALL_MS / 1000, c->count);
				conn_restart(c, 1);
			}
			pfd[i].fd = c->fd;
			pfd[i].events = POLLIN | (c->connecting || avail(&c->out) > 0 ? POLLOUT : 0);
			pfd[i].revents = 0;
		}
		int n = poll(pfd, opt.conns, 1000);
		if (n < 0 && errno != EINTR)
			die(1, "poll: %s", strerror(errno));
		for (unsigned i = 0; i < opt.conns && n > 0; i++) {
			struct conn *c = &cs[i];
			short ev = pfd[i].revents;
			if (ev == 0 || pfd[i].fd != c->fd)
				continue;
			if (c->connecting) {
				int err = 0;
				socklen_t len = sizeof err;
				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
				if (err != 0) {
					error(c, "connect: %s", strerror(err));
					conn_restart(c, 0);
					continue;
				}
				c->connecting = 0;
				continue;
			}
			if (ev & (POLLIN | POLLHUP | POLLERR)) {
				unsigned inc = c->inc;
				on_readable(c);
				if (c->inc != inc)
					continue;
			}
			if (ev & POLLOUT)
				on_writable(c);
		}
	}
	double secs = (double)(now_ms() - t0) / 1000;
	if (secs < 0.001)
		secs = 0.001;
	if (g.error_lines > REPORT_MAX)
		fprintf(stderr, "soakload: %u more errors not shown\n", g.error_lines - REPORT_MAX);
	if (g.mismatch_lines > REPORT_MAX)
		fprintf(stderr, "soakload: %u more mismatches not shown\n", g.mismatch_lines - REPORT_MAX);
	printf("mode=soak ops=%" PRIu64 " mismatches=%" PRIu64 " errors=%" PRIu64 " aborts=%" PRIu64
	       " aborts_request=%" PRIu64 " aborts_pending=%" PRIu64 " aborts_reply=%" PRIu64
	       " aborts_rst=%" PRIu64 " connections=%" PRIu64 " conns=%u bytes_out=%" PRIu64
	       " bytes_in=%" PRIu64 " largest=%zu seconds=%.1f ops_per_sec=%.0f seed=%" PRIu64
	       " clean_ends=%" PRIu64 " ends_close=%" PRIu64 " ends_half=%" PRIu64 " ends_early=%" PRIu64
	       " text_ops=%" PRIu64 " binary_ops=%" PRIu64 " meta_ops=%" PRIu64 " quiet_ops=%" PRIu64
	       " multigets=%" PRIu64 "\n",
	       g.verified, g.mismatches, g.errors,
	       g.aborts[AB_REQUEST] + g.aborts[AB_PENDING] + g.aborts[AB_REPLY],
	       g.aborts[AB_REQUEST], g.aborts[AB_PENDING], g.aborts[AB_REPLY], g.aborts_rst,
	       g.connects, opt.conns, g.bytes_out, g.bytes_in, g.largest, secs,
	       (double)g.verified / secs, opt.seed,
	       g.ends[END_CLOSE] + g.ends[END_HALF] + g.ends[END_EARLY],
	       g.ends[END_CLOSE], g.ends[END_HALF], g.ends[END_EARLY],
	       g.by_proto[TEXT], g.by_proto[BINARY], g.by_proto[META], g.quiet, g.multigets);
	fflush(stdout);
	for (unsigned i = 0; i < opt.conns; i++) {
		conn_close_fd(&cs[i], 0);
		free(cs[i].in.data);
		free(cs[i].out.data);
		free(cs[i].ring);
	}
	free(cs);
	free(pfd);
	free(g.scratch);
	if (status == 0 && (g.mismatches || g.errors))
		status = 1;
	return status;
}
