/*
 * mcframe: the memcache framers of --reuse.  Pure: bytes in, counts and
 * verdicts out; no I/O, no allocation, no clock.
 *
 * An upstream connection may go to a next local client only when both
 * directions are proved to be at a boundary: every request the client sent
 * is whole, and every reply to it has come back.  mcreq follows the
 * client's bytes, mcreply the server's, as they pass (neither changes a
 * byte).  When the client ends at a request boundary, the connection sends
 * a sentinel behind its last request (mcframe_sentinel); the reply framer
 * finds the sentinel's answer at a reply boundary, and mcframe_judge says
 * whether what came before it fits the requests.
 *
 * Any doubt taints: a command or opcode the framer does not know, a line
 * or header the server might read otherwise than we do, a client that
 * authenticated on the connection itself, a reply that is not one.  A
 * tainted connection still carries its bytes unchanged; it is only closed
 * at the end instead of being kept.  Tainting is sticky and the first
 * reason is kept.
 *
 * Protocols, chosen by the client's first byte as memcached does (0x80:
 * binary, anything else: text, which includes the meta commands):
 *
 *   text     a command line (up to '\n'); set/add/replace/append/prepend/
 *            cas and meta `ms` are followed by a data block of the length
 *            their line gives, plus "\r\n".  Replies are lines; a `VALUE
 *            <key> <flags> <bytes> [<cas>]` or `VA <bytes> ...` line is
 *            followed by that many bytes plus "\r\n".
 *            Sentinel: "mn\r\n"; its answer is the MN line after as many
 *            MN lines as the client sent `mn` commands.
 *   binary   a 24-byte header (magic 0x80 for requests, 0x81 for
 *            replies) and a body of the header's length.  Sentinel: a
 *            NOOP with an opaque of our choosing; its answer is the NOOP
 *            reply carrying that opaque.
 */
#ifndef MEMTUNNEL_MCFRAME_H
#define MEMTUNNEL_MCFRAME_H

#include <stddef.h>
#include <stdint.h>

enum mcframe_proto {
    MCFRAME_NONE,       /* no request byte yet */
    MCFRAME_TEXT,
    MCFRAME_BINARY,
};

/* Why a connection may not be reused; one table (mcframe_why_words). */
enum mcframe_why {
    MCFRAME_OK = 0,
    MCFRAME_MID_REQUEST,    /* the client ended inside a request */
    MCFRAME_SASL,           /* binary SASL: the client logged in itself */
    MCFRAME_LOGIN_SET,      /* text: a set, which may be the ASCII login
                               of memcached -Y or MemCachier; decided by
                               the caller (mcreq.set_seen), which knows
                               whether a node takes one */
    MCFRAME_QUIT,           /* quit, shutdown: the server closes */
    MCFRAME_UNKNOWN,        /* a command or opcode not known here */
    MCFRAME_BAD_REQUEST,    /* a line or header the server may read
                               otherwise: bad number, key too long, data
                               not ended by CRLF, too many tokens, bad magic */
    MCFRAME_LONG_LINE,      /* a text command line over MCFRAME_LINE_MAX
                               (other than a get's) */
    MCFRAME_BAD_REPLY,      /* server bytes that are not a reply */
    MCFRAME_STRAY_REPLY,    /* more replies than requests (or fewer when
                               none was quiet), or bytes after the
                               sentinel's answer */
    MCFRAME_NO_SENTINEL,    /* the sentinel's answer has not come */
    MCFRAME_REFUSED,        /* text: ERROR where the sentinel's MN was
                               due: a server without mn */
};

/* Words for logs: "the client ended inside a request", ... ("" for OK). */
const char *mcframe_why_words(enum mcframe_why why);

/* The longest text command line kept whole.  Longer ones taint, but for
 * get, gets, gat and gats, whose keys are only measured as they pass
 * (memcached closes the connection on a line over 2048 bytes but for get
 * and gets). */
#define MCFRAME_LINE_MAX 1024
/* The longest reply line start kept (a VALUE line has a key of at most
 * 250 bytes and three numbers). */
#define MCFRAME_REPLY_LINE_MAX 320
/* The longest sentinel (a binary NOOP header). */
#define MCFRAME_SENTINEL_MAX 24
/* The largest binary body followed (bytes); a text data block may have
 * up to INT_MAX - 2, as memcached reads it. */
#define MCFRAME_BODY_MAX ((uint64_t)1 << 30)

/* ---- requests (client -> server) ---- */

struct mcreq {
    enum mcframe_proto proto;
    enum mcframe_why why;        /* MCFRAME_OK while untainted */
    uint64_t requests;           /* whole requests seen */
    uint64_t mn;                 /* text: whole `mn` commands (one MN each) */
    unsigned quiet : 1;          /* a request whose reply may not come:
                                    noreply, meta q, binary quiet opcodes */
    unsigned set_seen : 1;       /* text: a `set` was seen (memcached -Y
                                    takes a later set as the login when
                                    earlier commands were refused) */
    /* The rest is mcframe.c's. */
    unsigned state : 3;
    uint64_t left;               /* data block or body bytes still to pass */
    uint32_t len;                /* bytes kept in line; past the line's
                                    kept start, the last key's length */
    unsigned char line[MCFRAME_LINE_MAX];
};

void mcreq_init(struct mcreq *r);

/* Follow n more bytes from the client. */
void mcreq_feed(struct mcreq *r, const void *p, size_t n);

/* Whether the bytes so far end exactly at a request boundary (true before
 * any byte). */
int mcreq_boundary(const struct mcreq *r);

/* ---- replies (server -> client) ---- */

struct mcreply {
    enum mcframe_proto proto;    /* copied from the request side by the
                                    caller once known (mcreply_proto) */
    enum mcframe_why why;        /* MCFRAME_OK while the replies make sense */
    uint64_t units;              /* whole replies seen, before the
                                    sentinel's: a VALUE...END or STAT...END
                                    sequence counts once, every other line
                                    (and every binary packet) once */
    uint64_t mn;                 /* text: MN lines seen */
    unsigned armed : 1;          /* a sentinel was sent */
    unsigned found : 1;          /* its answer came, whole */
    unsigned seen : 1;           /* any byte was fed */
    unsigned beyond : 1;         /* a reply came that no request asked
                                    for: nothing more is the client's */
    uint64_t expect;             /* armed: the client's replies, exactly
                                    one per request; UINT64_MAX when a
                                    request was quiet (not known) */
    uint32_t held;               /* bytes kept back: see mcreply_feed */
    /* The rest is mcframe.c's. */
    unsigned state : 3;
    uint64_t left;
    uint64_t want_mn;            /* text: the MN that answers the sentinel */
    uint32_t opaque;             /* binary: the sentinel's opaque */
    uint32_t len;
    unsigned char line[MCFRAME_REPLY_LINE_MAX];
};

void mcreply_init(struct mcreply *r);

/* The protocol the client chose (call when mcreq.proto becomes known,
 * before the first reply byte is fed). */
void mcreply_proto(struct mcreply *r, enum mcframe_proto proto);

/*
 * Where a chunk of server bytes goes, from mcreply_feed.  In stream order:
 * first `released` bytes kept back from earlier chunks (the caller keeps
 * them, see `held`), then this chunk's first `client` bytes, are the
 * client's.  The next `held` bytes of this chunk may begin the sentinel's
 * answer: the caller keeps them back (at most MCFRAME_SENTINEL_MAX in all)
 * until a later chunk says whether they are released or were the
 * sentinel's.  `after` bytes at the end are no one's: they follow the
 * sentinel's answer, or begin a reply beyond every one the client asked
 * for (`beyond`); either is a stray reply (r->why says so), and held bytes
 * that are not released then are no one's either (r->held says what is
 * still kept back).
 */
struct mcreply_cut {
    size_t released;
    size_t client;
    size_t held;
    size_t after;
};

/*
 * Follow n more bytes from the server and say whose they are (*cut).
 * Until a sentinel is armed, all are the client's.  Once its answer is
 * found (`found`), the bytes kept back and the answer itself are no one's,
 * and every byte after it is stray.  When none of the client's requests
 * was quiet, the client's replies are exactly one per request: once they
 * are all in, a reply that is not the sentinel's answer is stray, and it
 * and every byte after it are no one's; an ERROR line there is
 * MCFRAME_REFUSED (a server without `mn`; held back as the answer is, so
 * that the verdict does not depend on the cuts).  Other bytes that are not a reply set r->why; from then on
 * framing stops and every byte (with those kept back) is the client's:
 * the connection is closed at the end, not reused.
 */
void mcreply_feed(struct mcreply *r, const void *p, size_t n,
                  struct mcreply_cut *cut);

/* ---- the sentinel ---- */

/*
 * Write the sentinel for q's protocol into out (MCFRAME_SENTINEL_MAX
 * bytes at least) and arm r to find its answer: text "mn\r\n" (the
 * (q->mn + 1)th MN), binary a NOOP request carrying `opaque`.  Returns
 * its length; 0 when q->proto is MCFRAME_NONE (nothing was sent, so
 * nothing is owed and no sentinel is needed).
 */
size_t mcframe_sentinel(const struct mcreq *q, struct mcreply *r,
                        uint32_t opaque, unsigned char *out);

/*
 * Whether the connection can be kept, once the client ended: MCFRAME_OK,
 * or the first reason not to.  With q->proto MCFRAME_NONE: OK when no
 * reply byte came.  Otherwise the client must have ended at a request
 * boundary, both framers untainted, the sentinel's answer found, and the
 * replies before it must fit the requests: exactly one per request, or at
 * most one per request when a request was quiet.
 */
enum mcframe_why mcframe_judge(const struct mcreq *q, const struct mcreply *r);

#endif
