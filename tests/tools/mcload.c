/*
 * mcload - a memcached test client for memtunnel's integration tests.
 *
 * It speaks the memcached text or binary protocol over plain TCP, to one of
 * memtunnel's local listeners or straight to memcached, checks every reply
 * against its own model of what the server must hold, and fails loudly on
 * corruption, reordering, truncation, an unexpected close or a stall.
 *
 * usage: mcload [--host H] --port P [OPTIONS] MODE
 *
 *   setget      set one key to --size random bytes (CR LF, NUL and
 *               protocol-looking tokens planted in them), get it back and
 *               compare byte for byte, then get a key that was never set.
 *               --key K (mcload:<pid>)  --size N (100)  --flags F (0)
 *               --seed S
 *   pipeline    --conns C (4) connections, each with --depth D (32) requests
 *               in flight, --ops N (100000) in all: a random mix of sets
 *               (--set-ratio R, 0.5) and gets on the connection's own keys
 *               (--keys K per connection; default keeps the live data near
 *               16 MB), values of 1..--max-size M (4096) bytes skewed small.
 *               Every reply is checked against the connection's model.
 *               --key-prefix P replaces the per-run prefix
 *               (mcload:<pid>:<run id>), e.g. to make two runs collide.
 *               A miss for a key that was set counts as a mismatch, so the
 *               server must not evict: 1 MB values need memcached -I 2m and
 *               room (-m 1024; the default -m 64 evicts and even answers
 *               "SERVER_ERROR out of memory" after a few such runs).
 *   concurrent  open --conns N (1000) connections, wait until every one is
 *               connected, then on all of them at once set a key of their
 *               own (--size N bytes, 100) and get it back.
 *   flood       send "get KEY" requests as fast as the socket takes them and
 *               never read, until --bytes B (200M; k, M, G suffixes) are
 *               sent, --seconds T (10) have passed, or no byte went out for
 *               2 s (blocked=1).  Print the summary, then hold the
 *               connection open without reading for --hold T (60) seconds,
 *               until stdin (a pipe, socket or terminal) reaches EOF, or
 *               until SIGTERM/SIGINT; exit 0.  A server that closes the
 *               connection during the hold makes it exit 1.
 *   stats       "stats": print every statistic as name=value; --stat NAME
 *               prints that value alone.
 *   version     "version": print version=...
 *
 * Common options:
 *   --binary                 binary protocol instead of text
 *   --username U --password P  SASL PLAIN authentication first (binary only)
 *   --timeout S              bound on the whole run (30); exit 3 when hit.
 *                            In flood mode it bounds connecting and
 *                            sending; --hold bounds the hold.
 *   --seed S                 seed of values and operations (default random;
 *                            pipeline prints it; its values and concurrent's
 *                            also depend on a random run id)
 *   --size/--max-size/--bytes accept k, M and G suffixes (powers of 1024).
 *
 * Output: one key=value summary line on stdout (stats prints one line per
 * statistic); each error is one line on stderr starting "mcload: ".
 * Exit: 0 everything verified, 1 a mismatch, error or failed connection,
 * 2 usage, 3 timeout.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define EXIT_TIMEOUT 3

#define KEY_MAX 250                 /* memcached's longest key */
#define KEY_BASE_MAX 200            /* --key / --key-prefix, room for suffixes */
#define LINE_MAX_LEN 4096           /* longest text reply line accepted */
#define READ_CHUNK (256 * 1024)
#define OUT_HIGH (256 * 1024)       /* stop queueing requests above this */
#define BODY_MAX (64u * 1024 * 1024) /* largest binary reply body accepted */
#define REPORT_MAX 10               /* stderr lines per kind, then quiet */
#define FLOOD_STALL_MS 2000
#define FLOOD_CHUNK 65536
#define LIVE_DATA_BUDGET (16.0 * 1024 * 1024)
#define PIPELINE_KEYS_MAX 1000

/* Binary protocol. */
#define BIN_REQ 0x80
#define BIN_RES 0x81
#define BIN_HDR 24
#define OPC_GET 0x00
#define OPC_SET 0x01
#define OPC_VERSION 0x0b
#define OPC_STAT 0x10
#define OPC_SASL_AUTH 0x21
#define ST_OK 0x0000
#define ST_KEY_ENOENT 0x0001

enum op_type { OP_AUTH, OP_SET, OP_GET, OP_VERSION, OP_STATS };

enum parse_rc { PARSE_NEED, PARSE_DONE, PARSE_FAILED };

enum conn_state { CONN_IDLE, CONN_CONNECTING, CONN_OPEN, CONN_DONE, CONN_FAILED };

enum phase { PHASE_START, PHASE_CONNECT, PHASE_REQUESTS, PHASE_FLOOD };

struct options {
	const char *host;
	const char *port;
	const char *mode;
	long timeout;
	int binary;
	const char *username;
	const char *password;
	const char *key;
	const char *key_prefix;
	size_t size;
	uint32_t flags;
	uint64_t seed;
	size_t ops;
	size_t conns;          /* 0: the mode's default */
	size_t depth;
	size_t max_size;
	size_t keys;           /* 0: derived from max_size and conns */
	double set_ratio;
	uint64_t bytes;
	long seconds;
	long hold;
	const char *stat;
};

/* A byte queue: unread bytes are data[off, len). */
struct buf {
	uint8_t *data;
	size_t off, len, cap;
};

/* One request on the wire, and what its reply must say. */
struct req {
	enum op_type type;
	uint32_t opaque;        /* binary: echoed by the reply */
	size_t keyidx;          /* index into the connection's key model */
	char key[KEY_MAX + 1];
	size_t keylen;
	int expect_hit;         /* OP_GET: the model says the key holds a value */
	uint64_t vseed;         /* the value is value_fill(vseed, vlen) */
	size_t vlen;
	uint32_t flags;
};

/* What the server must hold under one key of a connection. */
struct keystate {
	int set;
	uint64_t vseed;
	size_t vlen;
	uint32_t flags;
	uint32_t gen;           /* sets issued so far, mixed into the value */
	uint64_t cas;           /* binary: cas of the last STORED reply */
};

struct conn;
typedef int (*next_op_fn)(struct conn *c, struct req *r);

/* One client connection, its workload and its results. */
struct conn {
	unsigned id;
	int fd;
	enum conn_state state;
	struct buf in, out;
	struct req *ring;       /* sent requests whose replies are pending */
	size_t depth, head, count;
	uint32_t next_opaque;
	int auth_sent, auth_wait, exhausted;
	next_op_fn next_op;     /* produces the next request, 0 when none left */
	struct keystate *keys;
	size_t nkeys;
	uint64_t rng;
	size_t ops_left;
	int step;
	size_t mismatches;
	struct buf report;      /* stats and version output */
};

static struct options opt = {
	.host = "127.0.0.1",
	.timeout = 30,
	.size = 100,
	.ops = 100000,
	.depth = 32,
	.max_size = 4096,
	.set_ratio = 0.5,
	.bytes = 200ull * 1024 * 1024,
	.seconds = 10,
	.hold = 60,
};

static struct {
	int64_t start_ms, deadline_ms;
	enum phase phase;
	char run_id[9];
	char prefix[KEY_MAX + 1];
	uint64_t value_seed;
	struct conn *conns;
	size_t nconns, connected;
	uint64_t bytes_in, bytes_out;
	size_t mismatches, errors, ops_verified, ops_target;
	size_t hits, misses;
	size_t mismatch_lines, error_lines;
	uint8_t *scratch;
	size_t scratch_cap;
	volatile sig_atomic_t stop;
} g;

/* ---------------------------------------------------------------- helpers */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("mcload: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static _Noreturn void die(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static _Noreturn void die(int code, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("mcload: ", stderr);
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
		die(EXIT_FAIL, "out of memory (%zu bytes)", n);
	return p;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (p == NULL)
		die(EXIT_FAIL, "out of memory");
	return p;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static _Noreturn void die_timeout(void)
{
	char what[160];

	switch (g.phase) {
	case PHASE_CONNECT:
		snprintf(what, sizeof what, "connecting: %zu of %zu connections established",
			 g.connected, g.nconns);
		break;
	case PHASE_REQUESTS:
		snprintf(what, sizeof what, "waiting for replies: %zu of %zu requests verified",
			 g.ops_verified, g.ops_target);
		break;
	case PHASE_FLOOD:
		snprintf(what, sizeof what, "flooding: %" PRIu64 " bytes sent", g.bytes_out);
		break;
	default:
		snprintf(what, sizeof what, "starting");
		break;
	}
	die(EXIT_TIMEOUT, "timeout after %ld s (%s)", opt.timeout, what);
}

/* Milliseconds left before --timeout, for poll(); dies when none are left. */
static int wait_ms(void)
{
	int64_t left = g.deadline_ms - now_ms();

	if (left <= 0)
		die_timeout();
	return left > INT_MAX ? INT_MAX : (int)left;
}

/* Copies at most 60 bytes of p into out, escaping what is not printable. */
static const char *printable(const void *p, size_t len, char *out, size_t outsz)
{
	const unsigned char *s = p;
	size_t o = 0;

	for (size_t i = 0; i < len && i < 60 && o + 5 < outsz; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
			out[o++] = (char)s[i];
		else
			o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", s[i]);
	}
	if (len > 60 && o + 4 < outsz)
		o += (size_t)snprintf(out + o, outsz - o, "...");
	out[o] = '\0';
	return out;
}

static const char *op_name(enum op_type t)
{
	switch (t) {
	case OP_AUTH: return "sasl auth";
	case OP_SET: return "set";
	case OP_GET: return "get";
	case OP_VERSION: return "version";
	case OP_STATS: return "stats";
	}
	return "?";
}

static const char *status_name(unsigned st)
{
	switch (st) {
	case 0x01: return "key not found";
	case 0x02: return "key exists";
	case 0x03: return "value too large";
	case 0x04: return "invalid arguments";
	case 0x05: return "item not stored";
	case 0x06: return "non-numeric value";
	case 0x20: return "authentication error";
	case 0x21: return "authentication continue";
	case 0x81: return "unknown command";
	case 0x82: return "out of memory";
	case 0x83: return "not supported";
	case 0x84: return "internal error";
	case 0x85: return "busy";
	case 0x86: return "temporary failure";
	}
	return "unknown status";
}

static void put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }

static void put_be32(uint8_t *p, uint32_t v)
{
	put_be16(p, (uint16_t)(v >> 16));
	put_be16(p + 2, (uint16_t)v);
}

static uint16_t get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)get_be16(p) << 16 | get_be16(p + 2);
}

static uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

/* ------------------------------------------------------ random and values */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t mix(uint64_t a, uint64_t b)
{
	uint64_t s = a ^ (b * 0xd6e8feb86659fd93ull);

	return splitmix64(&s);
}

static uint64_t rng_below(uint64_t *s, uint64_t n)
{
	return splitmix64(s) % n;
}

static double rng_unit(uint64_t *s)
{
	return (double)(splitmix64(s) >> 11) / 9007199254740992.0;
}

/*
 * Fills p with len pseudo-random bytes from seed, then plants one token that
 * looks like protocol framing in about every 64-byte block, so a tunnel or a
 * parser that looks at the payload instead of counting bytes gets caught.
 */
static void value_fill(uint8_t *p, size_t len, uint64_t seed)
{
	static const struct { const char *s; size_t n; } tokens[] = {
		{ "\r\n", 2 }, { "\0", 1 }, { "\r\nEND\r\n", 7 },
		{ "\r\nSTORED\r\n", 10 }, { "\r\nVALUE ", 8 }, { "\x81\x00", 2 },
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
		size_t span = len - blk < 64 ? len - blk : 64;
		size_t t;

		v = splitmix64(&s);
		t = v % (sizeof tokens / sizeof tokens[0]);
		if (tokens[t].n > span)
			continue;
		memcpy(p + blk + (v >> 8) % (span - tokens[t].n + 1), tokens[t].s, tokens[t].n);
	}
}

/* The expected bytes of a value, in a scratch buffer reused between calls. */
static const uint8_t *expected_value(uint64_t seed, size_t len)
{
	if (g.scratch == NULL || len > g.scratch_cap) {
		g.scratch = xrealloc(g.scratch, len);
		g.scratch_cap = len;
	}
	value_fill(g.scratch, len, seed);
	return g.scratch;
}

static unsigned floor_log2(size_t n)
{
	unsigned b = 0;

	while (b < 63 && ((size_t)2 << b) <= n)
		b++;
	return b;
}

/*
 * A value size in 1..max: 1 in 64 is exactly max, the rest log-uniform
 * (a power-of-two bound picked uniformly, then a size below it), so small
 * values dominate while every size class up to max shows up.
 */
static size_t pick_size(uint64_t *rng, size_t max)
{
	uint64_t v = splitmix64(rng);
	size_t lim;

	if (v % 64 == 0)
		return max;
	lim = (size_t)1 << ((v >> 8) % (floor_log2(max) + 1));
	return 1 + (size_t)rng_below(rng, lim < max ? lim : max);
}

/* The mean of pick_size(), to size the key space. */
static double mean_size(size_t max)
{
	unsigned bits = floor_log2(max);
	double sum = 0;

	for (unsigned b = 0; b <= bits; b++) {
		double lim = (double)((size_t)1 << b);
		sum += ((lim < (double)max ? lim : (double)max) + 1) / 2;
	}
	return (double)max / 64 + 63.0 / 64 * sum / (bits + 1);
}

/* -------------------------------------------------------------- byte queue */

/* Returns room for n bytes at the tail; the caller then adds to b->len. */
static uint8_t *buf_reserve(struct buf *b, size_t n)
{
	if (b->data != NULL && b->cap - b->len >= n)
		return b->data + b->len;
	if (b->off > 0) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->data == NULL || b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap - b->len < n)
			cap *= 2;
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
	return b->data + b->len;
}

static void buf_append(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	memcpy(buf_reserve(b, n), p, n);
	b->len += n;
}

static size_t buf_avail(const struct buf *b)
{
	return b->len - b->off;
}

static const uint8_t *buf_head(const struct buf *b)
{
	return b->data + b->off;
}

static void buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

static void buf_free(struct buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

/* ------------------------------------------------------ failures, counted */

/* Closes c and counts an error; later calls for the same c do nothing. */
static void conn_fail(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_fail(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->state == CONN_FAILED)
		return;
	g.errors++;
	if (g.error_lines++ < REPORT_MAX) {
		fputs("mcload: ", stderr);
		if (g.nconns > 1)
			fprintf(stderr, "conn %u: ", c->id);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = CONN_FAILED;
}

/* A well-formed reply that says something other than the model: counted. */
static void conn_mismatch(struct conn *c, const struct req *r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void conn_mismatch(struct conn *c, const struct req *r, const char *fmt, ...)
{
	va_list ap;

	g.mismatches++;
	c->mismatches++;
	if (g.mismatch_lines++ < REPORT_MAX) {
		fputs("mcload: ", stderr);
		if (g.nconns > 1)
			fprintf(stderr, "conn %u: ", c->id);
		fprintf(stderr, "mismatch: %s %s: ", op_name(r->type), r->key);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
}

static void report_suppressed(void)
{
	if (g.error_lines > REPORT_MAX)
		say("%zu more errors not shown", g.error_lines - REPORT_MAX);
	if (g.mismatch_lines > REPORT_MAX)
		say("%zu more mismatches not shown", g.mismatch_lines - REPORT_MAX);
}

/* ------------------------------------------------------ planning requests */

static void req_key(struct req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void req_key(struct req *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(r->key, sizeof r->key, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n > KEY_MAX)
		die(EXIT_USAGE, "key longer than %d bytes", KEY_MAX);
	r->keylen = (size_t)n;
}

/* A set of key k: the model holds the new value from the moment it is sent. */
static void plan_set(struct conn *c, struct req *r, size_t k, uint64_t vseed, size_t vlen,
		     uint32_t flags)
{
	struct keystate *ks = &c->keys[k];

	r->type = OP_SET;
	r->keyidx = k;
	r->vseed = vseed;
	r->vlen = vlen;
	r->flags = flags;
	ks->set = 1;
	ks->vseed = vseed;
	ks->vlen = vlen;
	ks->flags = flags;
}

/* A get of key k expects what the model holds now: replies come in order. */
static void plan_get(struct conn *c, struct req *r, size_t k)
{
	const struct keystate *ks = &c->keys[k];

	r->type = OP_GET;
	r->keyidx = k;
	r->expect_hit = ks->set;
	r->vseed = ks->vseed;
	r->vlen = ks->vlen;
	r->flags = ks->flags;
}

/* setget: set the key, get it, get a key that was never set. */
static int gen_setget(struct conn *c, struct req *r)
{
	switch (c->step++) {
	case 0:
		req_key(r, "%s", opt.key);
		plan_set(c, r, 0, opt.seed, opt.size, opt.flags);
		return 1;
	case 1:
		req_key(r, "%s", opt.key);
		plan_get(c, r, 0);
		return 1;
	case 2:
		req_key(r, "%s:missing:%s", opt.key, g.run_id);
		plan_get(c, r, 1);
		return 1;
	}
	return 0;
}

/* concurrent: a set of this connection's own key, then a get of it. */
static int gen_concurrent(struct conn *c, struct req *r)
{
	if (c->step > 1)
		return 0;
	req_key(r, "%s:c%u", g.prefix, c->id);
	if (c->step++ == 0)
		plan_set(c, r, 0, mix(g.value_seed, c->id), opt.size, c->id);
	else
		plan_get(c, r, 0);
	return 1;
}

/* pipeline: random sets and gets over the connection's own key space. */
static int gen_pipeline(struct conn *c, struct req *r)
{
	size_t k;

	if (c->ops_left == 0)
		return 0;
	c->ops_left--;
	k = (size_t)rng_below(&c->rng, c->nkeys);
	req_key(r, "%s:c%u:k%zu", g.prefix, c->id, k);
	if (rng_unit(&c->rng) < opt.set_ratio) {
		struct keystate *ks = &c->keys[k];
		uint64_t vseed;

		ks->gen++;
		vseed = mix(mix(mix(g.value_seed, c->id), k), ks->gen);
		plan_set(c, r, k, vseed, pick_size(&c->rng, opt.max_size), (uint32_t)(vseed >> 32));
	} else {
		plan_get(c, r, k);
	}
	return 1;
}

static int gen_stats(struct conn *c, struct req *r)
{
	if (c->step++ > 0)
		return 0;
	r->type = OP_STATS;
	req_key(r, "%s", "");
	return 1;
}

static int gen_version(struct conn *c, struct req *r)
{
	if (c->step++ > 0)
		return 0;
	r->type = OP_VERSION;
	req_key(r, "%s", "");
	return 1;
}

/* ------------------------------------------------------ encoding requests */

static void encode_text(struct conn *c, const struct req *r)
{
	char hdr[KEY_MAX + 64];
	uint8_t *p;
	int n = 0;

	switch (r->type) {
	case OP_SET:
		n = snprintf(hdr, sizeof hdr, "set %s %" PRIu32 " 0 %zu\r\n", r->key, r->flags, r->vlen);
		buf_append(&c->out, hdr, (size_t)n);
		p = buf_reserve(&c->out, r->vlen + 2);
		value_fill(p, r->vlen, r->vseed);
		memcpy(p + r->vlen, "\r\n", 2);
		c->out.len += r->vlen + 2;
		return;
	case OP_GET:
		n = snprintf(hdr, sizeof hdr, "get %s\r\n", r->key);
		break;
	case OP_VERSION:
		n = snprintf(hdr, sizeof hdr, "version\r\n");
		break;
	case OP_STATS:
		n = snprintf(hdr, sizeof hdr, "stats\r\n");
		break;
	case OP_AUTH:
		die(EXIT_USAGE, "SASL needs --binary");
	}
	buf_append(&c->out, hdr, (size_t)n);
}

/* Appends a request header, extras and key; the caller appends vlen bytes. */
static void bin_request(struct buf *b, uint8_t opcode, const void *extras, size_t extlen,
			const void *key, size_t keylen, size_t vlen, uint32_t opaque)
{
	uint8_t h[BIN_HDR] = { 0 };

	h[0] = BIN_REQ;
	h[1] = opcode;
	put_be16(h + 2, (uint16_t)keylen);
	h[4] = (uint8_t)extlen;
	put_be32(h + 8, (uint32_t)(extlen + keylen + vlen));
	put_be32(h + 12, opaque);
	buf_append(b, h, sizeof h);
	buf_append(b, extras, extlen);
	buf_append(b, key, keylen);
}

static void encode_binary(struct conn *c, const struct req *r)
{
	uint8_t extras[8] = { 0 };
	size_t ulen, plen;
	uint8_t *p;

	switch (r->type) {
	case OP_AUTH:
		ulen = strlen(opt.username);
		plen = strlen(opt.password);
		bin_request(&c->out, OPC_SASL_AUTH, NULL, 0, "PLAIN", 5, ulen + plen + 2, r->opaque);
		buf_append(&c->out, "", 1);
		buf_append(&c->out, opt.username, ulen);
		buf_append(&c->out, "", 1);
		buf_append(&c->out, opt.password, plen);
		return;
	case OP_SET:
		put_be32(extras, r->flags);
		bin_request(&c->out, OPC_SET, extras, 8, r->key, r->keylen, r->vlen, r->opaque);
		p = buf_reserve(&c->out, r->vlen);
		value_fill(p, r->vlen, r->vseed);
		c->out.len += r->vlen;
		return;
	case OP_GET:
		bin_request(&c->out, OPC_GET, NULL, 0, r->key, r->keylen, 0, r->opaque);
		return;
	case OP_VERSION:
		bin_request(&c->out, OPC_VERSION, NULL, 0, NULL, 0, 0, r->opaque);
		return;
	case OP_STATS:
		bin_request(&c->out, OPC_STAT, NULL, 0, NULL, 0, 0, r->opaque);
		return;
	}
}

static uint8_t op_code(enum op_type t)
{
	switch (t) {
	case OP_AUTH: return OPC_SASL_AUTH;
	case OP_SET: return OPC_SET;
	case OP_GET: return OPC_GET;
	case OP_VERSION: return OPC_VERSION;
	case OP_STATS: return OPC_STAT;
	}
	return 0xff;
}

/* ------------------------------------------------------ verifying replies */

static void check_miss(struct conn *c, const struct req *r)
{
	g.misses++;
	if (r->expect_hit)
		conn_mismatch(c, r, "got a miss, expected %zu bytes (evicted? give memcached more -m)",
			      r->vlen);
}

/* Returns 1 when the value matches the model, after counting any mismatch. */
static int check_hit(struct conn *c, const struct req *r, const uint8_t *data, size_t len,
		     uint32_t flags)
{
	const uint8_t *want;
	size_t i;

	g.hits++;
	if (!r->expect_hit) {
		conn_mismatch(c, r, "got %zu bytes, expected a miss", len);
		return 0;
	}
	if (len != r->vlen) {
		conn_mismatch(c, r, "got %zu bytes, expected %zu", len, r->vlen);
		return 0;
	}
	if (flags != r->flags) {
		conn_mismatch(c, r, "got flags %" PRIu32 ", expected %" PRIu32, flags, r->flags);
		return 0;
	}
	want = expected_value(r->vseed, len);
	if (memcmp(data, want, len) == 0)
		return 1;
	for (i = 0; data[i] == want[i]; i++)
		;
	conn_mismatch(c, r, "value differs from byte %zu of %zu (got 0x%02x, expected 0x%02x)",
		      i, len, data[i], want[i]);
	return 0;
}

static int line_is(const char *p, size_t l, const char *word)
{
	return l == strlen(word) && memcmp(p, word, l) == 0;
}

static int line_starts(const char *p, size_t l, const char *word)
{
	return l >= strlen(word) && memcmp(p, word, strlen(word)) == 0;
}

/* Parses a decimal number that fills [s, s+len) exactly. */
static int parse_dec(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* Splits a line at single spaces into at most n fields; returns the count. */
static size_t split_fields(const char *p, size_t l, const char **f, size_t *flen, size_t n)
{
	size_t count = 0, i = 0;

	while (i < l && count < n) {
		size_t start = i;

		while (i < l && p[i] != ' ')
			i++;
		f[count] = p + start;
		flen[count++] = i - start;
		i++;
	}
	return i < l ? n + 1 : count;
}

/* "VALUE <key> <flags> <bytes> [<cas>]", its data, CR LF, "END" CR LF. */
static int text_value(struct conn *c, const struct req *r, const char *p, size_t l)
{
	const char *f[5];
	size_t flen[5], nf, linelen = l + 2, need;
	uint64_t flags, bytes;
	const uint8_t *data;
	char esc[256];

	nf = split_fields(p, l, f, flen, 5);
	if ((nf != 4 && nf != 5) || parse_dec(f[2], flen[2], UINT32_MAX, &flags) < 0 ||
	    parse_dec(f[3], flen[3], BODY_MAX, &bytes) < 0) {
		conn_fail(c, "get %s: malformed reply \"%s\"", r->key, printable(p, l, esc, sizeof esc));
		return PARSE_FAILED;
	}
	need = linelen + (size_t)bytes + 2 + 5;
	if (buf_avail(&c->in) < need)
		return PARSE_NEED;
	data = (const uint8_t *)p + linelen;
	if (memcmp(data + bytes, "\r\nEND\r\n", 7) != 0) {
		conn_fail(c, "get %s: %" PRIu64 "-byte value not followed by CR LF END CR LF (got \"%s\")",
			  r->key, bytes, printable(data + bytes, 7, esc, sizeof esc));
		return PARSE_FAILED;
	}
	if (flen[1] != r->keylen || memcmp(f[1], r->key, r->keylen) != 0)
		conn_mismatch(c, r, "reply is for key \"%s\"", printable(f[1], flen[1], esc, sizeof esc));
	else
		check_hit(c, r, data, (size_t)bytes, (uint32_t)flags);
	buf_consume(&c->in, need);
	return PARSE_DONE;
}

/* "STAT <name> <value>" -> "name=value" in the report. */
static int text_stat(struct conn *c, const char *p, size_t l)
{
	const char *name = p + 5, *sp;
	size_t rest = l - 5;
	char esc[256];

	sp = memchr(name, ' ', rest);
	if (sp == NULL || sp == name) {
		conn_fail(c, "stats: malformed line \"%s\"", printable(p, l, esc, sizeof esc));
		return PARSE_FAILED;
	}
	buf_append(&c->report, name, (size_t)(sp - name));
	buf_append(&c->report, "=", 1);
	buf_append(&c->report, sp + 1, rest - (size_t)(sp - name) - 1);
	buf_append(&c->report, "\n", 1);
	return PARSE_NEED;
}

/* Verifies the text reply to r; stats lines are consumed as they come. */
static int text_reply(struct conn *c, const struct req *r)
{
	char esc[256];

	for (;;) {
		const char *p = (const char *)buf_head(&c->in), *nl;
		size_t avail = buf_avail(&c->in), l;
		int rc = PARSE_FAILED;

		nl = avail ? memchr(p, '\n', avail > LINE_MAX_LEN ? LINE_MAX_LEN : avail) : NULL;
		if (nl == NULL) {
			if (avail >= LINE_MAX_LEN) {
				conn_fail(c, "%s: no end of line in the first %d bytes of the reply",
					  op_name(r->type), LINE_MAX_LEN);
				return PARSE_FAILED;
			}
			return PARSE_NEED;
		}
		l = (size_t)(nl - p);
		if (l == 0 || p[l - 1] != '\r') {
			conn_fail(c, "%s: reply line \"%s\" does not end in CR LF", op_name(r->type),
				  printable(p, l, esc, sizeof esc));
			return PARSE_FAILED;
		}
		l--;
		if (line_is(p, l, "ERROR") || line_starts(p, l, "ERROR ") ||
		    line_starts(p, l, "CLIENT_ERROR") ||
		    line_starts(p, l, "SERVER_ERROR")) {
			conn_fail(c, "%s %s: server replied \"%s\"", op_name(r->type), r->key,
				  printable(p, l, esc, sizeof esc));
			return PARSE_FAILED;
		}
		switch (r->type) {
		case OP_SET:
			rc = line_is(p, l, "STORED") ? PARSE_DONE : PARSE_FAILED;
			break;
		case OP_GET:
			if (line_starts(p, l, "VALUE "))
				return text_value(c, r, p, l);
			if (line_is(p, l, "END")) {
				check_miss(c, r);
				rc = PARSE_DONE;
			}
			break;
		case OP_VERSION:
			if (line_starts(p, l, "VERSION ")) {
				buf_append(&c->report, "version=", 8);
				buf_append(&c->report, p + 8, l - 8);
				buf_append(&c->report, "\n", 1);
				rc = PARSE_DONE;
			}
			break;
		case OP_STATS:
			if (line_is(p, l, "END"))
				rc = PARSE_DONE;
			else if (line_starts(p, l, "STAT "))
				rc = text_stat(c, p, l);
			break;
		case OP_AUTH:
			break;
		}
		if (rc == PARSE_FAILED) {
			if (c->state != CONN_FAILED)
				conn_fail(c, "%s %s: unexpected reply \"%s\"", op_name(r->type), r->key,
					  printable(p, l, esc, sizeof esc));
			return PARSE_FAILED;
		}
		buf_consume(&c->in, l + 2);
		if (rc == PARSE_DONE)
			return PARSE_DONE;
	}
}

/* Checks one complete binary reply packet against r. */
static int binary_check(struct conn *c, const struct req *r, const uint8_t *h)
{
	unsigned status = get_be16(h + 6);
	size_t keylen = get_be16(h + 2), extlen = h[4];
	size_t vlen = get_be32(h + 8) - keylen - extlen;
	const uint8_t *ext = h + BIN_HDR, *key = ext + extlen, *val = key + keylen;
	uint64_t cas = get_be64(h + 16);
	struct keystate *ks = r->type == OP_SET || r->type == OP_GET ? &c->keys[r->keyidx] : NULL;

	if (r->type == OP_AUTH) {
		/* Wrong credentials make every later reply meaningless: stop here. */
		if (status != ST_OK)
			die(EXIT_FAIL, "SASL authentication failed (status 0x%02x)", status);
		c->auth_wait = 0;
		return PARSE_DONE;
	}
	if (r->type == OP_GET && status == ST_KEY_ENOENT) {
		check_miss(c, r);
		return PARSE_DONE;
	}
	if (status != ST_OK) {
		conn_fail(c, "%s %s: status 0x%02x (%s)", op_name(r->type), r->key, status,
			  status_name(status));
		return PARSE_FAILED;
	}
	switch (r->type) {
	case OP_SET:
		if (cas == 0) {
			conn_fail(c, "set %s: reply carries no cas", r->key);
			return PARSE_FAILED;
		}
		ks->cas = cas;
		return PARSE_DONE;
	case OP_GET:
		if (extlen != 4 || keylen != 0) {
			conn_fail(c, "get %s: reply with %zu bytes of extras and a %zu-byte key",
				  r->key, extlen, keylen);
			return PARSE_FAILED;
		}
		/* Sets before this get were all answered first, so ks->cas is the one. */
		if (check_hit(c, r, val, vlen, get_be32(ext)) && cas != ks->cas)
			conn_mismatch(c, r, "cas %" PRIu64 ", expected %" PRIu64 " from the set",
				      cas, ks->cas);
		return PARSE_DONE;
	case OP_VERSION:
		buf_append(&c->report, "version=", 8);
		buf_append(&c->report, val, vlen);
		buf_append(&c->report, "\n", 1);
		return PARSE_DONE;
	case OP_STATS:
		/* One packet per statistic; an empty one ends the list. */
		if (keylen == 0 && vlen == 0)
			return PARSE_DONE;
		buf_append(&c->report, key, keylen);
		buf_append(&c->report, "=", 1);
		buf_append(&c->report, val, vlen);
		buf_append(&c->report, "\n", 1);
		return PARSE_NEED;
	case OP_AUTH:
		break;
	}
	return PARSE_DONE;
}

/* Verifies the binary reply packets to r: magic, opcode, opaque, then body. */
static int binary_reply(struct conn *c, const struct req *r)
{
	for (;;) {
		const uint8_t *h = buf_head(&c->in);
		size_t avail = buf_avail(&c->in), bodylen;
		int rc;

		if (avail < BIN_HDR)
			return PARSE_NEED;
		bodylen = get_be32(h + 8);
		if (h[0] != BIN_RES) {
			conn_fail(c, "%s %s: reply magic 0x%02x, expected 0x81", op_name(r->type), r->key,
				  h[0]);
			return PARSE_FAILED;
		}
		if (bodylen > BODY_MAX || get_be16(h + 2) + (size_t)h[4] > bodylen) {
			conn_fail(c, "%s %s: malformed reply header (body %zu bytes, key %u, extras %u)",
				  op_name(r->type), r->key, bodylen, get_be16(h + 2), h[4]);
			return PARSE_FAILED;
		}
		if (avail < BIN_HDR + bodylen)
			return PARSE_NEED;
		if (h[1] != op_code(r->type) || get_be32(h + 12) != r->opaque) {
			conn_fail(c, "%s %s: reply opcode 0x%02x opaque %" PRIu32
				  ", expected opcode 0x%02x opaque %" PRIu32 " (out of order?)",
				  op_name(r->type), r->key, h[1], get_be32(h + 12), op_code(r->type),
				  r->opaque);
			return PARSE_FAILED;
		}
		rc = binary_check(c, r, h);
		if (rc == PARSE_FAILED)
			return rc;
		buf_consume(&c->in, BIN_HDR + bodylen);
		if (rc == PARSE_DONE)
			return rc;
	}
}

/* --------------------------------------------------------- the I/O engine */

static void conn_init(struct conn *c, unsigned id, size_t depth, size_t nkeys, next_op_fn gen)
{
	memset(c, 0, sizeof *c);
	c->id = id;
	c->fd = -1;
	c->depth = depth;
	c->ring = xcalloc(depth, sizeof *c->ring);
	c->nkeys = nkeys;
	c->keys = xcalloc(nkeys, sizeof *c->keys);
	c->next_op = gen;
	c->next_opaque = 1;
}

static void conn_free(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->report);
	free(c->ring);
	free(c->keys);
}

static struct conn *conns_new(size_t n, size_t depth, size_t nkeys, next_op_fn gen)
{
	g.conns = xcalloc(n, sizeof *g.conns);
	g.nconns = n;
	for (size_t i = 0; i < n; i++)
		conn_init(&g.conns[i], (unsigned)i, depth, nkeys, gen);
	return g.conns;
}

static void conns_free(void)
{
	for (size_t i = 0; i < g.nconns; i++)
		conn_free(&g.conns[i]);
	free(g.conns);
	g.conns = NULL;
	g.nconns = 0;
}

/*
 * Opens every connection with a non-blocking connect and waits until each
 * one is established or has failed.  Failures are counted, not fatal.
 */
static void connect_all(struct conn *cs, size_t n, const struct addrinfo *ai)
{
	struct pollfd *pf = xcalloc(n, sizeof *pf);
	size_t *map = xcalloc(n, sizeof *map);
	int one = 1;

	g.phase = PHASE_CONNECT;
	for (size_t i = 0; i < n; i++) {
		struct conn *c = &cs[i];

		c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd < 0) {
			conn_fail(c, "socket: %s", strerror(errno));
			continue;
		}
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			c->state = CONN_OPEN;
			g.connected++;
		} else if (errno == EINPROGRESS) {
			c->state = CONN_CONNECTING;
		} else {
			conn_fail(c, "connect to %s port %s: %s", opt.host, opt.port, strerror(errno));
		}
	}
	for (;;) {
		size_t np = 0;
		int rc;

		for (size_t i = 0; i < n; i++) {
			if (cs[i].state != CONN_CONNECTING)
				continue;
			pf[np] = (struct pollfd){ .fd = cs[i].fd, .events = POLLOUT };
			map[np++] = i;
		}
		if (np == 0)
			break;
		rc = poll(pf, np, wait_ms());
		if (rc < 0 && errno != EINTR)
			die(EXIT_FAIL, "poll: %s", strerror(errno));
		for (size_t j = 0; rc > 0 && j < np; j++) {
			struct conn *c = &cs[map[j]];
			int err = 0;
			socklen_t len = sizeof err;

			if (pf[j].revents == 0)
				continue;
			if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
				err = errno;
			if (err != 0) {
				conn_fail(c, "connect to %s port %s: %s", opt.host, opt.port, strerror(err));
			} else {
				c->state = CONN_OPEN;
				g.connected++;
			}
		}
	}
	free(pf);
	free(map);
}

/* Queues requests while the window, the SASL barrier and the buffer allow. */
static void conn_fill(struct conn *c)
{
	while (c->state == CONN_OPEN && !c->exhausted && !c->auth_wait && c->count < c->depth &&
	       buf_avail(&c->out) < OUT_HIGH) {
		struct req *r = &c->ring[(c->head + c->count) % c->depth];

		memset(r, 0, sizeof *r);
		if (opt.username != NULL && !c->auth_sent) {
			/* Nothing else goes out until the server accepted us. */
			r->type = OP_AUTH;
			req_key(r, "%s", "PLAIN");
			c->auth_sent = c->auth_wait = 1;
		} else if (!c->next_op(c, r)) {
			c->exhausted = 1;
			break;
		}
		r->opaque = c->next_opaque++;
		if (opt.binary)
			encode_binary(c, r);
		else
			encode_text(c, r);
		c->count++;
	}
}

static void conn_flush(struct conn *c)
{
	while (c->state == CONN_OPEN && buf_avail(&c->out) > 0) {
		ssize_t n = send(c->fd, buf_head(&c->out), buf_avail(&c->out), MSG_NOSIGNAL);

		if (n > 0) {
			g.bytes_out += (uint64_t)n;
			buf_consume(&c->out, (size_t)n);
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			return;
		} else {
			conn_fail(c, "send: %s (%zu requests unanswered)", strerror(errno), c->count);
		}
	}
}

/* Verifies every complete reply in the input buffer, in request order. */
static void conn_parse(struct conn *c)
{
	while (c->state == CONN_OPEN && c->count > 0) {
		struct req *r = &c->ring[c->head];
		int rc = opt.binary ? binary_reply(c, r) : text_reply(c, r);

		if (rc != PARSE_DONE)
			return;
		if (r->type != OP_AUTH)
			g.ops_verified++;
		c->head = (c->head + 1) % c->depth;
		c->count--;
	}
	if (c->state == CONN_OPEN && c->count == 0 && buf_avail(&c->in) > 0) {
		char esc[256];

		conn_fail(c, "%zu bytes from the server with no request outstanding: \"%s\"",
			  buf_avail(&c->in), printable(buf_head(&c->in), buf_avail(&c->in), esc, sizeof esc));
	}
}

static void conn_read(struct conn *c)
{
	for (int i = 0; i < 16 && c->state == CONN_OPEN; i++) {
		uint8_t *p = buf_reserve(&c->in, READ_CHUNK);
		ssize_t n = recv(c->fd, p, READ_CHUNK, 0);

		if (n > 0) {
			c->in.len += (size_t)n;
			g.bytes_in += (uint64_t)n;
			conn_parse(c);
			if (n < READ_CHUNK)
				return;
		} else if (n == 0) {
			conn_fail(c, "connection closed by the server (%zu requests unanswered)",
				  c->count);
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			return;
		} else if (errno != EINTR) {
			conn_fail(c, "recv: %s (%zu requests unanswered)", strerror(errno), c->count);
		}
	}
}

/*
 * Runs every open connection's workload to the end: queue requests, write,
 * read, verify.  A connection whose workload is finished is left open and
 * no longer polled; one that fails is closed and counted.
 */
static void engine_run(struct conn *cs, size_t n)
{
	struct pollfd *pf = xcalloc(n, sizeof *pf);
	size_t *map = xcalloc(n, sizeof *map);

	g.phase = PHASE_REQUESTS;
	for (;;) {
		size_t np = 0;
		int rc;

		for (size_t i = 0; i < n; i++) {
			struct conn *c = &cs[i];

			if (c->state != CONN_OPEN)
				continue;
			conn_fill(c);
			conn_flush(c);
			if (c->state != CONN_OPEN)
				continue;
			if (c->exhausted && c->count == 0 && buf_avail(&c->out) == 0) {
				c->state = CONN_DONE;
				continue;
			}
			pf[np] = (struct pollfd){
				.fd = c->fd,
				.events = (short)(POLLIN | (buf_avail(&c->out) ? POLLOUT : 0)),
			};
			map[np++] = i;
		}
		if (np == 0)
			break;
		rc = poll(pf, np, wait_ms());
		if (rc < 0 && errno != EINTR)
			die(EXIT_FAIL, "poll: %s", strerror(errno));
		for (size_t j = 0; rc > 0 && j < np; j++) {
			struct conn *c = &cs[map[j]];

			if (pf[j].revents & (POLLIN | POLLHUP | POLLERR))
				conn_read(c);
			if (c->state == CONN_OPEN && (pf[j].revents & POLLOUT))
				conn_flush(c);
		}
	}
	free(pf);
	free(map);
}

/* ------------------------------------------------------------------ modes */

static const char *protocol_name(void)
{
	return opt.binary ? "binary" : "text";
}

static int mode_setget(const struct addrinfo *ai)
{
	struct conn *c = conns_new(1, 1, 2, gen_setget);
	int ok;

	g.ops_target = 3;
	connect_all(c, 1, ai);
	engine_run(c, 1);
	ok = c->state == CONN_DONE && g.mismatches == 0 && g.errors == 0;
	printf("mode=setget protocol=%s size=%zu ok=%d\n", protocol_name(), opt.size, ok);
	conns_free();
	return ok ? 0 : EXIT_FAIL;
}

static int mode_pipeline(const struct addrinfo *ai)
{
	size_t n = opt.conns ? opt.conns : 4, nkeys = opt.keys;
	struct conn *cs;
	int64_t t0;
	double secs;

	if (nkeys == 0) {
		double k = LIVE_DATA_BUDGET / ((double)n * mean_size(opt.max_size));

		nkeys = k < 1 ? 1 : k > PIPELINE_KEYS_MAX ? PIPELINE_KEYS_MAX : (size_t)k;
	}
	cs = conns_new(n, opt.depth, nkeys, gen_pipeline);
	for (size_t i = 0; i < n; i++) {
		cs[i].ops_left = opt.ops / n + (i < opt.ops % n);
		cs[i].rng = mix(opt.seed, i + 1);
	}
	g.ops_target = opt.ops;
	connect_all(cs, n, ai);
	t0 = now_ms();
	engine_run(cs, n);
	secs = (double)(now_ms() - t0) / 1000;
	if (secs < 0.001)
		secs = 0.001;
	report_suppressed();
	printf("mode=pipeline ops=%zu conns=%zu mismatches=%zu errors=%zu bytes_out=%" PRIu64
	       " bytes_in=%" PRIu64 " seconds=%.3f ops_per_sec=%.0f protocol=%s keys=%zu hits=%zu misses=%zu seed=%"
	       PRIu64 "\n", g.ops_verified, n, g.mismatches, g.errors, g.bytes_out, g.bytes_in, secs,
	       (double)g.ops_verified / secs, protocol_name(), nkeys, g.hits, g.misses, opt.seed);
	conns_free();
	return g.mismatches == 0 && g.errors == 0 && g.ops_verified == opt.ops ? 0 : EXIT_FAIL;
}

static void raise_nofile(size_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
		say("open file limit %llu is below the %zu descriptors needed",
		    (unsigned long long)rl.rlim_cur, want);
}

static int mode_concurrent(const struct addrinfo *ai)
{
	size_t n = opt.conns ? opt.conns : 1000, ok = 0;
	struct conn *cs;

	raise_nofile(n + 16);
	cs = conns_new(n, 1, 1, gen_concurrent);
	g.ops_target = 2 * n;
	connect_all(cs, n, ai);
	engine_run(cs, n);
	for (size_t i = 0; i < n; i++)
		ok += cs[i].state == CONN_DONE && cs[i].mismatches == 0;
	report_suppressed();
	printf("mode=concurrent conns=%zu ok=%zu failed=%zu\n", n, ok, n - ok);
	conns_free();
	return ok == n ? 0 : EXIT_FAIL;
}

/* Prints the report, or with --stat only the value of that statistic. */
static int print_stats(const struct buf *report)
{
	const char *p = (const char *)buf_head(report), *end = p + buf_avail(report);
	size_t want = opt.stat ? strlen(opt.stat) : 0;

	if (opt.stat == NULL) {
		fwrite(p, 1, buf_avail(report), stdout);
		return 0;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if ((size_t)(nl - p) > want && memcmp(p, opt.stat, want) == 0 && p[want] == '=') {
			printf("%.*s\n", (int)(nl - p - (ptrdiff_t)want - 1), p + want + 1);
			return 0;
		}
		p = nl + 1;
	}
	say("no statistic named %s", opt.stat);
	return EXIT_FAIL;
}

/* stats and version: one request, print what the server said. */
static int mode_query(const struct addrinfo *ai, int stats)
{
	struct conn *c = conns_new(1, 1, 0, stats ? gen_stats : gen_version);
	int rc = EXIT_FAIL;

	g.ops_target = 1;
	connect_all(c, 1, ai);
	engine_run(c, 1);
	if (c->state == CONN_DONE) {
		if (stats) {
			rc = print_stats(&c->report);
		} else {
			fwrite(buf_head(&c->report), 1, buf_avail(&c->report), stdout);
			rc = 0;
		}
	}
	conns_free();
	return rc;
}

static void on_stop_signal(int sig)
{
	(void)sig;
	g.stop = 1;
}

/* A pipe, socket or terminal on stdin is someone who can close it. */
static int stdin_can_close(void)
{
	struct stat st;

	if (fstat(STDIN_FILENO, &st) < 0)
		return 0;
	return S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || isatty(STDIN_FILENO);
}

/*
 * Keeps fd open without reading it until --hold seconds pass, stdin reaches
 * EOF or SIGTERM/SIGINT arrives (0), or the server closes it (1).
 */
static int flood_hold(int fd)
{
	sigset_t block, old;
	int watch_stdin = stdin_can_close();
	int64_t end = now_ms() + (int64_t)opt.hold * 1000;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &old);
	/* Signals stay blocked except inside ppoll, so none slips past the check. */
	for (;;) {
		struct pollfd pf[2] = {
			{ .fd = fd, .events = POLLRDHUP },
			{ .fd = STDIN_FILENO, .events = POLLIN },
		};
		int64_t left = end - now_ms();
		struct timespec ts;
		int rc;

		if (g.stop || left <= 0)
			return 0;
		ts.tv_sec = left / 1000;
		ts.tv_nsec = (left % 1000) * 1000000;
		rc = ppoll(pf, watch_stdin ? 2 : 1, &ts, &old);
		if (rc < 0 && errno != EINTR)
			die(EXIT_FAIL, "ppoll: %s", strerror(errno));
		if (rc <= 0)
			continue;
		if (pf[0].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
			say("flood: connection closed by the server during the hold");
			return EXIT_FAIL;
		}
		if (watch_stdin && pf[1].revents) {
			char b[512];
			ssize_t r = read(STDIN_FILENO, b, sizeof b);

			if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
				return 0;
		}
	}
}

/*
 * Sends whole "get KEY" requests, never reading, until --bytes went out,
 * --seconds passed or the socket took nothing for FLOOD_STALL_MS.
 */
static int mode_flood(const struct addrinfo *ai)
{
	struct conn *c = conns_new(1, 1, 0, NULL);
	char req[KEY_MAX + 8], *chunk;
	size_t rlen, clen;
	uint64_t target, sent = 0;
	int64_t t0, last;
	int blocked = 0, rc;
	struct sigaction sa = { .sa_handler = on_stop_signal };

	/* SIGTERM/SIGINT end the flood early (summary, exit 0) or the hold. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	connect_all(c, 1, ai);
	if (c->state != CONN_OPEN) {
		conns_free();
		return EXIT_FAIL;
	}
	rlen = (size_t)snprintf(req, sizeof req, "get %s\r\n", opt.key);
	clen = FLOOD_CHUNK / rlen * rlen;
	chunk = xrealloc(NULL, clen);
	for (size_t o = 0; o < clen; o += rlen)
		memcpy(chunk + o, req, rlen);
	target = (opt.bytes + rlen - 1) / rlen * rlen;

	g.phase = PHASE_FLOOD;
	t0 = last = now_ms();
	while (sent < target && !g.stop) {
		size_t off = (size_t)(sent % clen), n = clen - off;
		int64_t now;
		ssize_t w;

		if (n > target - sent)
			n = (size_t)(target - sent);
		w = send(c->fd, chunk + off, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		now = now_ms();
		if (w > 0) {
			sent += (uint64_t)w;
			g.bytes_out = sent;
			last = now;
		} else if (w < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
			say("flood: send after %" PRIu64 " bytes: %s", sent, strerror(errno));
			free(chunk);
			conns_free();
			return EXIT_FAIL;
		}
		if (now - t0 >= (int64_t)opt.seconds * 1000)
			break;
		if (w <= 0) {
			int64_t stall_left = last + FLOOD_STALL_MS - now;
			int64_t secs_left = t0 + (int64_t)opt.seconds * 1000 - now;
			int wait = wait_ms();
			struct pollfd pf = { .fd = c->fd, .events = POLLOUT };

			if (stall_left <= 0) {
				blocked = 1;
				break;
			}
			if (stall_left < wait)
				wait = (int)stall_left;
			if (secs_left < wait)
				wait = (int)secs_left;
			if (poll(&pf, 1, wait) < 0 && errno != EINTR)
				die(EXIT_FAIL, "poll: %s", strerror(errno));
		}
	}
	free(chunk);
	printf("mode=flood sent=%" PRIu64 " blocked=%d\n", sent, blocked);
	fflush(stdout);
	rc = flood_hold(c->fd);
	conns_free();
	return rc;
}

/* ------------------------------------------------------------ the options */

static _Noreturn void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("mcload: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see mcload --help)\n", stderr);
	exit(EXIT_USAGE);
}

static uint64_t parse_num(const char *name, const char *s, uint64_t min, uint64_t max,
			  int suffixes)
{
	char *end;
	unsigned long long v;
	uint64_t mult = 1;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (end == s || *s == '-' || errno != 0)
		usage_error("%s: \"%s\" is not a number", name, s);
	if (suffixes && *end != '\0' && end[1] == '\0') {
		switch (*end) {
		case 'k': case 'K': mult = 1024; end++; break;
		case 'm': case 'M': mult = 1024 * 1024; end++; break;
		case 'g': case 'G': mult = 1024 * 1024 * 1024; end++; break;
		}
	}
	if (*end != '\0')
		usage_error("%s: \"%s\" is not a number", name, s);
	if (v > UINT64_MAX / mult || v * mult < min || v * mult > max)
		usage_error("%s: %s is out of range %" PRIu64 "..%" PRIu64, name, s, min, max);
	return v * mult;
}

static void check_key(const char *name, const char *key)
{
	size_t len = strlen(key);

	if (len == 0 || len > KEY_BASE_MAX)
		usage_error("%s must be 1..%d bytes long", name, KEY_BASE_MAX);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)key[i] <= ' ' || key[i] == 0x7f)
			usage_error("%s must not contain spaces or control characters", name);
}

static const char usage_text[] =
	"usage: mcload [--host H] --port P [OPTIONS] MODE\n"
	"modes:\n"
	"  setget      set a key, get it back, get a missing key\n"
	"              --key K --size N --flags F --seed S\n"
	"  pipeline    pipelined random sets and gets, every reply verified\n"
	"              --ops N --conns C --depth D --max-size M --set-ratio R\n"
	"              --keys K --key-prefix P --seed S\n"
	"  concurrent  open --conns N connections, then set and get on all at once\n"
	"  flood       send gets without reading, then hold the connection\n"
	"              --key K --bytes B --seconds T --hold T\n"
	"  stats       print name=value per statistic (--stat NAME: the value alone)\n"
	"  version     print version=...\n"
	"common: --binary --username U --password P --timeout S (30)\n"
	"exit: 0 verified, 1 failed, 2 usage, 3 timeout\n";

enum {
	O_HOST = 256, O_PORT, O_TIMEOUT, O_BINARY, O_USERNAME, O_PASSWORD, O_KEY, O_KEY_PREFIX,
	O_SIZE, O_FLAGS, O_SEED, O_OPS, O_CONNS, O_DEPTH, O_MAX_SIZE, O_SET_RATIO, O_KEYS,
	O_BYTES, O_SECONDS, O_HOLD, O_STAT, O_HELP,
};

static const struct option long_options[] = {
	{ "host", required_argument, NULL, O_HOST },
	{ "port", required_argument, NULL, O_PORT },
	{ "timeout", required_argument, NULL, O_TIMEOUT },
	{ "binary", no_argument, NULL, O_BINARY },
	{ "username", required_argument, NULL, O_USERNAME },
	{ "password", required_argument, NULL, O_PASSWORD },
	{ "key", required_argument, NULL, O_KEY },
	{ "key-prefix", required_argument, NULL, O_KEY_PREFIX },
	{ "size", required_argument, NULL, O_SIZE },
	{ "flags", required_argument, NULL, O_FLAGS },
	{ "seed", required_argument, NULL, O_SEED },
	{ "ops", required_argument, NULL, O_OPS },
	{ "conns", required_argument, NULL, O_CONNS },
	{ "depth", required_argument, NULL, O_DEPTH },
	{ "max-size", required_argument, NULL, O_MAX_SIZE },
	{ "set-ratio", required_argument, NULL, O_SET_RATIO },
	{ "keys", required_argument, NULL, O_KEYS },
	{ "bytes", required_argument, NULL, O_BYTES },
	{ "seconds", required_argument, NULL, O_SECONDS },
	{ "hold", required_argument, NULL, O_HOLD },
	{ "stat", required_argument, NULL, O_STAT },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

static double parse_ratio(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end != '\0' || errno != 0 || !(v >= 0 && v <= 1))
		usage_error("--set-ratio: \"%s\" is not a number in 0..1", s);
	return v;
}

static void parse_options(int argc, char **argv)
{
	int ch, seed_set = 0;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		switch (ch) {
		case O_HOST: opt.host = optarg; break;
		case O_PORT: parse_num("--port", optarg, 1, 65535, 0); opt.port = optarg; break;
		case O_TIMEOUT: opt.timeout = (long)parse_num("--timeout", optarg, 1, 86400, 0); break;
		case O_BINARY: opt.binary = 1; break;
		case O_USERNAME: opt.username = optarg; break;
		case O_PASSWORD: opt.password = optarg; break;
		case O_KEY: check_key("--key", optarg); opt.key = optarg; break;
		case O_KEY_PREFIX: check_key("--key-prefix", optarg); opt.key_prefix = optarg; break;
		case O_SIZE: opt.size = parse_num("--size", optarg, 0, BODY_MAX / 2, 1); break;
		case O_FLAGS: opt.flags = (uint32_t)parse_num("--flags", optarg, 0, UINT32_MAX, 0); break;
		case O_SEED: opt.seed = parse_num("--seed", optarg, 0, UINT64_MAX, 0); seed_set = 1; break;
		case O_OPS: opt.ops = parse_num("--ops", optarg, 1, SIZE_MAX / 2, 0); break;
		case O_CONNS: opt.conns = parse_num("--conns", optarg, 1, 1000000, 0); break;
		case O_DEPTH: opt.depth = parse_num("--depth", optarg, 1, 1000000, 0); break;
		case O_MAX_SIZE: opt.max_size = parse_num("--max-size", optarg, 1, BODY_MAX / 2, 1); break;
		case O_SET_RATIO: opt.set_ratio = parse_ratio(optarg); break;
		case O_KEYS: opt.keys = parse_num("--keys", optarg, 1, 10000000, 0); break;
		case O_BYTES: opt.bytes = parse_num("--bytes", optarg, 1, UINT64_MAX, 1); break;
		case O_SECONDS: opt.seconds = (long)parse_num("--seconds", optarg, 1, 86400, 0); break;
		case O_HOLD: opt.hold = (long)parse_num("--hold", optarg, 0, 86400 * 365, 0); break;
		case O_STAT: opt.stat = optarg; break;
		case O_HELP: fputs(usage_text, stdout); exit(0);
		default: usage_error("unknown option or missing argument: %s", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		usage_error(optind >= argc ? "no MODE given" : "one MODE expected");
	opt.mode = argv[optind];
	if (strcmp(opt.mode, "setget") != 0 && strcmp(opt.mode, "pipeline") != 0 &&
	    strcmp(opt.mode, "concurrent") != 0 && strcmp(opt.mode, "flood") != 0 &&
	    strcmp(opt.mode, "stats") != 0 && strcmp(opt.mode, "version") != 0)
		usage_error("unknown mode \"%s\"", opt.mode);
	if (opt.port == NULL)
		usage_error("--port is required");
	if ((opt.username == NULL) != (opt.password == NULL))
		usage_error("--username and --password go together");
	if (opt.username != NULL && !opt.binary)
		usage_error("SASL authentication (--username) needs --binary");
	if (opt.stat != NULL && strcmp(opt.mode, "stats") != 0)
		usage_error("--stat only applies to the stats mode");
	if (!seed_set && getrandom(&opt.seed, sizeof opt.seed, 0) != sizeof opt.seed)
		opt.seed = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
}

/* The run id, the key prefix and the default key, unique to this run. */
static void init_run(void)
{
	static char default_key[KEY_MAX + 1];
	uint32_t id;

	if (getrandom(&id, sizeof id, 0) != sizeof id)
		id = (uint32_t)mix((uint64_t)now_ms(), (uint64_t)getpid());
	snprintf(g.run_id, sizeof g.run_id, "%08" PRIx32, id);
	if (opt.key_prefix != NULL)
		snprintf(g.prefix, sizeof g.prefix, "%s", opt.key_prefix);
	else
		snprintf(g.prefix, sizeof g.prefix, "mcload:%ld:%s", (long)getpid(), g.run_id);
	/* Values depend on the run too, so two runs never write equal bytes. */
	g.value_seed = mix(opt.seed, id);
	if (opt.key == NULL) {
		if (strcmp(opt.mode, "flood") == 0)
			snprintf(default_key, sizeof default_key, "mcload:flood:%ld:%s", (long)getpid(),
				 g.run_id);
		else
			snprintf(default_key, sizeof default_key, "mcload:%ld", (long)getpid());
		opt.key = default_key;
	}
}

int main(int argc, char **argv)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai;
	int rc;

	parse_options(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	g.start_ms = now_ms();
	g.deadline_ms = g.start_ms + (int64_t)opt.timeout * 1000;
	init_run();
	rc = getaddrinfo(opt.host, opt.port, &hints, &ai);
	if (rc != 0)
		die(EXIT_FAIL, "cannot resolve %s: %s", opt.host, gai_strerror(rc));

	if (strcmp(opt.mode, "setget") == 0)
		rc = mode_setget(ai);
	else if (strcmp(opt.mode, "pipeline") == 0)
		rc = mode_pipeline(ai);
	else if (strcmp(opt.mode, "concurrent") == 0)
		rc = mode_concurrent(ai);
	else if (strcmp(opt.mode, "flood") == 0)
		rc = mode_flood(ai);
	else
		rc = mode_query(ai, strcmp(opt.mode, "stats") == 0);

	freeaddrinfo(ai);
	free(g.scratch);
	if (fflush(stdout) != 0)
		die(EXIT_FAIL, "stdout: %s", strerror(errno));
	return rc;
}
