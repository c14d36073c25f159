/*
 * soakload - the soak test's client: many connections of verified
 * memcached traffic that now and then abort in the middle of things.
 *
 * usage: soakload --target PORT[:DEPTH] [--target ...] [OPTIONS]
 *
 *   --target PORT[:DEPTH]  a plaintext port on 127.0.0.1 (a memtunnel
 *                          listener) and the most requests one connection
 *                          keeps in flight there (default 1); connections
 *                          are spread over the targets in turn
 *   --conns N              connections open at once (64)
 *   --ops N                verified operations to reach (1000000)
 *   --max-size N           largest value, k/M suffixes (1M)
 *   --abort-every N        a connection aborts after a random number of
 *                          operations, N on average (2000; 0: never)
 *   --seed S               seed of everything random (default: random)
 *   --timeout S            bound on the whole run (600); exit 3 when hit
 *
 * Every connection lives as a series of incarnations. An incarnation
 * connects, picks the text or binary protocol and a pipeline depth (1 to
 * the target's DEPTH), and works on keys of its own (a fresh key prefix,
 * so nothing an aborted incarnation left in flight can be read by a later
 * one): a random mix of sets and gets, values of 1 B to --max-size skewed
 * small (a value size class 2^b is picked with weight 0.7^b, and 1 in 4096
 * values is exactly --max-size), filled with pseudo-random bytes and
 * planted protocol-looking tokens. Every reply is checked against the
 * incarnation's model of its keys: status, flags, length, every byte.
 *
 * An incarnation that reaches its abort point ends one of three ways,
 * each with a plain close or a reset (SO_LINGER 0):
 *   request   in the middle of sending a set's value;
 *   pending   with its requests sent and their replies not yet read;
 *   reply     in the middle of reading a value of 2 KiB or more.
 * A new incarnation then takes the connection's place at once.
 *
 * Output: one line `mode=soak ops=... mismatches=... errors=... aborts=...`
 * with the aborts by kind, bytes, rate and seed; errors (a reply that is
 * not one, a connection the other side closed or reset, no progress for
 * 30 s) and mismatches are reported on stderr, the first 10 of each.
 * Exit: 0 all verified, 1 mismatches or errors, 2 usage, 3 timeout.
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
#define RING 64                 /* >= MAX_DEPTH */
#define KEY_LEN 96
#define STALL_MS 30000
#define REPORT_MAX 10
#define READ_CHUNK (128 * 1024)
#define REPLY_ABORT_CHUNK 1024  /* reads while waiting to cut a reply */
#define REPLY_ABORT_MIN 2048

enum proto { TEXT, BINARY };
enum op { OP_SET, OP_GET };
enum abort_kind { AB_NONE, AB_REQUEST, AB_PENDING, AB_REPLY };

struct buf {
	uint8_t *data;
	size_t off, len, cap;
};

struct req {
	enum op op;
	int k;
	int expect_hit;
	uint64_t vseed;
	size_t vlen;
	uint32_t flags;
	uint32_t opaque;
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
	unsigned inc;                   /* incarnation number */
	enum proto proto;
	int depth;
	struct buf in, out;
	size_t out_sent_total;          /* bytes of this incarnation sent */
	size_t out_total;               /* bytes of this incarnation queued */
	struct req ring[RING];
	int head, count;
	uint32_t opaque;
	struct key keys[KEYS];
	uint64_t rng;
	uint64_t ops_issued;
	uint64_t abort_at;              /* ops_issued at which the abort is armed */
	enum abort_kind abort;          /* armed kind, AB_NONE while not armed */
	int abort_rst;
	size_t abort_pos;               /* AB_REQUEST: stop sending here */
	int64_t last_progress;
	char prefix[64];
};

static struct {
	int ports[MAX_TARGETS], depths[MAX_TARGETS], ntargets;
	unsigned conns;
	uint64_t ops;
	size_t max_size;
	uint64_t abort_every;
	uint64_t seed;
	long timeout;
} opt = { .conns = 64, .ops = 1000000, .max_size = 1 << 20, .abort_every = 2000, .timeout = 600 };

static struct {
	uint64_t verified, issued, inflight, mismatches, errors;
	uint64_t aborts[4], aborts_rst;
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

/* Pseudo-random bytes with protocol-looking tokens planted about every 64. */
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
		opt.ports[c->target], c->proto == TEXT ? "text" : "binary", c->depth);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void mismatch(struct conn *c, const struct req *r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void mismatch(struct conn *c, const struct req *r, const char *fmt, ...)
{
	va_list ap;

	g.mismatches++;
	if (g.mismatch_lines++ >= REPORT_MAX)
		return;
	fprintf(stderr, "soakload: mismatch: conn %u.%u (port %d, %s) %s key %d: ", c->id, c->inc,
		opt.ports[c->target], c->proto == TEXT ? "text" : "binary",
		r->op == OP_SET ? "set" : "get", r->k);
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

/* The end of an incarnation: the abort (counted) or a failure. */
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
	c->proto = below(&c->rng, 2) ? BINARY : TEXT;
	c->depth = 1 + (int)below(&c->rng, (uint64_t)opt.depths[c->target]);
	reset_buf(&c->in);
	reset_buf(&c->out);
	c->out_sent_total = c->out_total = 0;
	c->head = c->count = 0;
	memset(c->keys, 0, sizeof c->keys);
	c->ops_issued = 0;
	c->abort = AB_NONE;
	c->abort_at = opt.abort_every ? below(&c->rng, 2 * opt.abort_every) + 1 : UINT64_MAX;
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

static void encode(struct conn *c, const struct req *r)
{
	char key[KEY_LEN], line[KEY_LEN + 64];
	int klen = key_name(c, r->k, key);
	size_t before = c->out.len;

	if (c->proto == TEXT) {
		int n = r->op == OP_SET
			? snprintf(line, sizeof line, "set %s %" PRIu32 " 0 %zu\r\n", key, r->flags, r->vlen)
			: snprintf(line, sizeof line, "get %s\r\n", key);
		append(&c->out, line, (size_t)n);
		if (r->op == OP_SET) {
			value_fill(reserve(&c->out, r->vlen + 2), r->vlen, r->vseed);
			memcpy(c->out.data + c->out.len + r->vlen, "\r\n", 2);
			c->out.len += r->vlen + 2;
		}
	} else {
		uint8_t h[24 + 8] = { 0 };
		size_t ext = r->op == OP_SET ? 8 : 0;

		h[0] = 0x80;
		h[1] = r->op == OP_SET ? 0x01 : 0x00;
		h[2] = (uint8_t)(klen >> 8);
		h[3] = (uint8_t)klen;
		h[4] = (uint8_t)ext;
		put32(h + 8, (uint32_t)(ext + (size_t)klen + (r->op == OP_SET ? r->vlen : 0)));
		put32(h + 12, r->opaque);
		if (r->op == OP_SET)
			put32(h + 24, r->flags);
		append(&c->out, h, 24 + ext);
		append(&c->out, key, (size_t)klen);
		if (r->op == OP_SET) {
			value_fill(reserve(&c->out, r->vlen), r->vlen, r->vseed);
			c->out.len += r->vlen;
		}
	}
	c->out_total += c->out.len - before;
}

/* Queue one request; arms the abort when its point is reached. */
static void issue(struct conn *c)
{
	struct req *r = &c->ring[(c->head + c->count) % RING];
	int arming = c->abort == AB_NONE && c->ops_issued + 1 >= c->abort_at;
	enum abort_kind kind = AB_NONE;

	memset(r, 0, sizeof *r);
	r->k = (int)below(&c->rng, KEYS);
	r->opaque = ++c->opaque;
	if (arming) {
		kind = (enum abort_kind)(1 + below(&c->rng, 3));
		c->abort_rst = (int)below(&c->rng, 2);
	}
	int want_set = below(&c->rng, 2) == 0;
	if (kind == AB_REQUEST)
		want_set = 1;
	if (kind == AB_REPLY) {
		/* A get of a big value this incarnation holds, if any. */
		int found = -1;
		for (int k = 0; k < KEYS && found < 0; k++)
			if (c->keys[k].set && c->keys[k].vlen >= REPLY_ABORT_MIN)
				found = k;
		if (found >= 0) {
			r->k = found;
			want_set = 0;
		} else {
			kind = AB_PENDING;
		}
	}
	struct key *ks = &c->keys[r->k];
	if (want_set) {
		r->op = OP_SET;
		ks->gen++;
		r->vseed = mix(mix(mix(opt.seed, c->id), (uint64_t)c->inc << 8 | (uint64_t)r->k), ks->gen);
		r->vlen = pick_size(&c->rng, opt.max_size);
		if (kind == AB_REQUEST && r->vlen < 64)
			r->vlen = 64 + (size_t)below(&c->rng, 4096);
		r->flags = (uint32_t)(r->vseed >> 32);
		ks->set = 1;
		ks->vseed = r->vseed;
		ks->vlen = r->vlen;
		ks->flags = r->flags;
	} else {
		r->op = OP_GET;
		r->expect_hit = ks->set;
		r->vseed = ks->vseed;
		r->vlen = ks->vlen;
		r->flags = ks->flags;
	}
	size_t start = c->out_total;
	encode(c, r);
	if (r->vlen > g.largest && r->op == OP_SET)
		g.largest = r->vlen;
	if (kind == AB_REQUEST)
		c->abort_pos = start + (c->out_total - start) / 2;
	if (kind != AB_NONE)
		c->abort = kind;
	c->count++;
	c->ops_issued++;
	g.issued++;
	g.inflight++;
}

/* ----------------------------------------------------------------- replies */

static void verify_value(struct conn *c, const struct req *r, const uint8_t *data, size_t len,
			 uint32_t flags)
{
	if (!r->expect_hit) {
		mismatch(c, r, "got %zu bytes, expected a miss", len);
		return;
	}
	if (len != r->vlen || flags != r->flags) {
		mismatch(c, r, "got %zu bytes flags %" PRIu32 ", expected %zu bytes flags %" PRIu32,
			 len, flags, r->vlen, r->flags);
		return;
	}
	const uint8_t *want = expected(r->vseed, len);
	if (memcmp(data, want, len) != 0) {
		size_t i = 0;
		while (data[i] == want[i])
			i++;
		mismatch(c, r, "value of %zu bytes differs from byte %zu", len, i);
	}
}

/* Text reply of the head request: 1 done, 0 need more, -1 broken. */
static int parse_text(struct conn *c, const struct req *r)
{
	const char *p = (const char *)c->in.data + c->in.off;
	size_t n = avail(&c->in);
	const char *eol = memmem(p, n, "\r\n", 2);
	char key[KEY_LEN];

	if (eol == NULL)
		return n > 512 ? -1 : 0;
	size_t l = (size_t)(eol - p);
	if (r->op == OP_SET) {
		if (l == 6 && memcmp(p, "STORED", 6) == 0) {
			consume(&c->in, l + 2);
			return 1;
		}
		error(c, "set: reply \"%.*s\"", (int)(l < 80 ? l : 80), p);
		return -1;
	}
	if (l == 3 && memcmp(p, "END", 3) == 0) {
		consume(&c->in, 5);
		if (r->expect_hit)
			mismatch(c, r, "got a miss, expected %zu bytes (evicted? give memcached more -m)", r->vlen);
		return 1;
	}
	unsigned flags;
	size_t vlen;
	int klen = key_name(c, r->k, key), used = 0;
	char fmt[64];
	snprintf(fmt, sizeof fmt, "VALUE %%%ds %%u %%zu%%n", KEY_LEN - 1);
	char got[KEY_LEN];
	char linebuf[KEY_LEN + 64];
	if (l >= sizeof linebuf) {
		error(c, "get: reply line of %zu bytes", l);
		return -1;
	}
	memcpy(linebuf, p, l);
	linebuf[l] = '\0';
	if (sscanf(linebuf, fmt, got, &flags, &vlen, &used) != 3 || (size_t)used != l
	    || strcmp(got, key) != 0 || klen <= 0) {
		error(c, "get: reply \"%.*s\"", (int)(l < 80 ? l : 80), p);
		return -1;
	}
	if (n < l + 2 + vlen + 7)
		return 0;
	const uint8_t *data = (const uint8_t *)p + l + 2;
	if (memcmp(data + vlen, "\r\nEND\r\n", 7) != 0) {
		error(c, "get: %zu-byte value not followed by CR LF END CR LF", vlen);
		return -1;
	}
	verify_value(c, r, data, vlen, flags);
	consume(&c->in, l + 2 + vlen + 7);
	return 1;
}

static int parse_binary(struct conn *c, const struct req *r)
{
	const uint8_t *h = c->in.data + c->in.off;
	size_t n = avail(&c->in);

	if (n < 24)
		return 0;
	uint32_t body = get32(h + 8);
	if (h[0] != 0x81 || h[1] != (r->op == OP_SET ? 0x01 : 0x00) || get32(h + 12) != r->opaque) {
		error(c, "binary reply: magic 0x%02x opcode 0x%02x opaque %" PRIu32 ", expected opaque %" PRIu32,
		      h[0], h[1], get32(h + 12), r->opaque);
		return -1;
	}
	if (body > opt.max_size + 1024) {
		error(c, "binary reply: body of %" PRIu32 " bytes", body);
		return -1;
	}
	if (n < 24 + (size_t)body)
		return 0;
	unsigned status = (unsigned)h[6] << 8 | h[7];
	size_t ext = h[4], klen = (size_t)h[2] << 8 | h[3];
	if (r->op == OP_SET) {
		if (status != 0) {
			error(c, "set: status 0x%04x", status);
			return -1;
		}
	} else if (status == 1) {
		if (r->expect_hit)
			mismatch(c, r, "got a miss, expected %zu bytes (evicted? give memcached more -m)", r->vlen);
	} else if (status == 0 && ext == 4 && klen + ext <= body) {
		verify_value(c, r, h + 24 + ext + klen, body - ext - klen, get32(h + 24));
	} else {
		error(c, "get: status 0x%04x, %zu bytes of extras", status, ext);
		return -1;
	}
	consume(&c->in, 24 + (size_t)body);
	return 1;
}

/* Verifies what has arrived; returns -1 when the incarnation ended. */
static int take_replies(struct conn *c)
{
	while (c->count > 0) {
		const struct req *r = &c->ring[c->head];
		int done = c->proto == TEXT ? parse_text(c, r) : parse_binary(c, r);
		if (done < 0) {
			conn_restart(c, 1);
			return -1;
		}
		if (done == 0) {
			if (c->abort == AB_REPLY && avail(&c->in) > 0 && r->op == OP_GET
			    && r->expect_hit && r->vlen >= REPLY_ABORT_MIN) {
				do_abort(c);
				return -1;
			}
			return 0;
		}
		c->head = (c->head + 1) % RING;
		c->count--;
		g.inflight--;
		c->last_progress = now_ms();
		g.verified++;
	}
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
}

static void on_readable(struct conn *c)
{
	size_t chunk = c->abort == AB_REPLY ? REPLY_ABORT_CHUNK : READ_CHUNK;
	ssize_t r = recv(c->fd, reserve(&c->in, chunk), chunk, 0);

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
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
	       "       [--max-size N] [--abort-every N] [--seed S] [--timeout S]");
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

int main(int argc, char **argv)
{
	int seeded = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
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
			opt.ntargets++;
		} else if (strcmp(a, "--conns") == 0) {
			opt.conns = (unsigned)number(v);
		} else if (strcmp(a, "--ops") == 0) {
			opt.ops = number(v);
		} else if (strcmp(a, "--max-size") == 0) {
			opt.max_size = (size_t)number(v);
		} else if (strcmp(a, "--abort-every") == 0) {
			opt.abort_every = number(v);
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
	    || opt.max_size > (64u << 20))
		usage();
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
				while (c->count < c->depth && c->abort == AB_NONE
				       && g.verified + g.inflight < opt.ops)
					issue(c);
			if (c->count > 0 && now - c->last_progress > STALL_MS) {
				error(c, "no reply for %d s (%d requests unanswered)", STALL_MS / 1000, c->count);
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
	       " bytes_in=%" PRIu64 " largest=%zu seconds=%.1f ops_per_sec=%.0f seed=%" PRIu64 "\n",
	       g.verified, g.mismatches, g.errors,
	       g.aborts[AB_REQUEST] + g.aborts[AB_PENDING] + g.aborts[AB_REPLY],
	       g.aborts[AB_REQUEST], g.aborts[AB_PENDING], g.aborts[AB_REPLY], g.aborts_rst,
	       g.connects, opt.conns, g.bytes_out, g.bytes_in, g.largest, secs,
	       (double)g.verified / secs, opt.seed);
	fflush(stdout);
	for (unsigned i = 0; i < opt.conns; i++)
		conn_close_fd(&cs[i], 0);
	if (status == 0 && (g.mismatches || g.errors))
		status = 1;
	return status;
}
