/*
 * buf: a growable byte queue.  Bytes are appended at the tail and consumed
 * from the head; the readable bytes are always contiguous, so they can be
 * handed to write(2) or wolfSSL as one span.  No I/O; one thread only
 * (a pool of free buffers is shared).
 *
 * Pointers returned by buf_peek and buf_reserve stay valid until the next
 * call that may grow or compact the buffer (buf_reserve, buf_append).
 */
#ifndef MEMTUNNEL_BUF_H
#define MEMTUNNEL_BUF_H

#include <stddef.h>

struct buf {
    char *data;
    size_t head, tail, cap;  /* readable: data[head .. tail) */
};

#define BUF_INIT { NULL, 0, 0, 0 }

static inline size_t buf_len(const struct buf *b) { return b->tail - b->head; }
static inline char *buf_peek(const struct buf *b) { return b->data + b->head; }

/*
 * Make room for at least `want` bytes at the tail and return a pointer to
 * it, with the room available (>= want) in *room; write into it and call
 * buf_commit.  Returns NULL on allocation failure (the buffer is unchanged).
 */
char *buf_reserve(struct buf *b, size_t want, size_t *room);

/* Mark n bytes written at the tail by the last buf_reserve. */
void buf_commit(struct buf *b, size_t n);

/* Append n bytes.  Returns 0 or -1 on allocation failure. */
int buf_append(struct buf *b, const void *p, size_t n);

/* Drop n (<= buf_len) bytes from the head. */
void buf_consume(struct buf *b, size_t n);

/* Swap two buffers' contents (used to hand a full buffer to a write). */
void buf_swap(struct buf *a, struct buf *b);

/* Free an empty buffer, so that an idle connection holds none: with
 * thousands of idle connections the buffers would outweigh the rest.  The
 * storage goes to a small pool that the next buf_reserve takes from (all of
 * the smallest size, a few of the larger ones), so busy connections do not
 * allocate per message. */
void buf_trim(struct buf *b);

/* Free the storage (to the pool when small); the buffer is empty and
 * reusable afterwards. */
void buf_free(struct buf *b);

/* Really free what the pool holds (at exit, for leak checkers). */
void buf_pool_drain(void);

#endif
