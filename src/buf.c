/*
 * buf: growable byte queue.
 */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

#define BUF_MIN_CAP 4096

/*
 * Storage of the minimum size, kept for reuse.  Connections free their
 * empty buffers (buf_trim), so that idle ones hold none; busy ones would
 * then allocate per message without this.  Bounded: at most POOL_MAX
 * buffers (256 KiB) wait here.  Only the event loop's thread uses bufs.
 */
#define POOL_MAX 64
static char *pool[POOL_MAX];
static size_t pooled;

/*
 * A few larger ones too: a 100 KiB value fills a 128 KiB buffer, and
 * freeing that after every write made malloc give the memory back to the
 * kernel and fault it in again for the next value, page by page.  At most
 * BIG_MAX buffers of up to BIG_CAP_MAX (1 MiB in all) wait here.
 */
#define BIG_MAX 4
#define BIG_CAP_MAX (256u * 1024u)
static struct {
    char *p;
    size_t cap;
} big[BIG_MAX];
static size_t bigs;

/* Storage for at least *cap bytes; *cap is set to what it really holds. */
static char *take(size_t *cap)
{
    if (*cap == BUF_MIN_CAP && pooled > 0)
        return pool[--pooled];
    for (size_t i = 0; *cap > BUF_MIN_CAP && i < bigs; i++) {
        if (big[i].cap >= *cap) {
            char *p = big[i].p;
            *cap = big[i].cap;
            big[i] = big[--bigs];
            return p;
        }
    }
    return malloc(*cap);
}

static void give(char *p, size_t cap)
{
    if (p != NULL && cap == BUF_MIN_CAP && pooled < POOL_MAX) {
        pool[pooled++] = p;
    } else if (p != NULL && cap > BUF_MIN_CAP && cap <= BIG_CAP_MAX && bigs < BIG_MAX) {
        big[bigs].p = p;
        big[bigs].cap = cap;
        bigs++;
    } else {
        free(p);
    }
}

void buf_pool_drain(void)
{
    while (pooled > 0)
        free(pool[--pooled]);
    while (bigs > 0)
        free(big[--bigs].p);
}

char *buf_reserve(struct buf *b, size_t want, size_t *room)
{
    if (b->cap - b->tail >= want)
        goto done;

    /* Slide the readable bytes to the front when that makes enough room:
     * cheaper than growing, and keeps the buffer at its steady size. */
    size_t len = buf_len(b);
    if (b->cap - len >= want && b->head > 0) {
        memmove(b->data, b->data + b->head, len);
        b->head = 0;
        b->tail = len;
        goto done;
    }

    size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
    while (cap - len < want) {
        if (cap > ((size_t)-1) / 2)
            return NULL;
        cap *= 2;
    }
    char *p = take(&cap);
    if (p == NULL)
        return NULL;
    if (len)
        memcpy(p, b->data + b->head, len);
    give(b->data, b->cap);
    b->data = p;
    b->head = 0;
    b->tail = len;
    b->cap = cap;
done:
    *room = b->cap - b->tail;
    return b->data + b->tail;
}

void buf_commit(struct buf *b, size_t n)
{
    b->tail += n;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    size_t room;
    char *dst;

    if (n == 0)
        return 0;
    if ((dst = buf_reserve(b, n, &room)) == NULL)
        return -1;
    memcpy(dst, p, n);
    buf_commit(b, n);
    return 0;
}

void buf_consume(struct buf *b, size_t n)
{
    b->head += n;
    if (b->head == b->tail)
        b->head = b->tail = 0;
}

void buf_swap(struct buf *a, struct buf *b)
{
    struct buf t = *a;
    *a = *b;
    *b = t;
}

void buf_trim(struct buf *b)
{
    if (buf_len(b) == 0)
        buf_free(b);
}

void buf_free(struct buf *b)
{
    give(b->data, b->cap);
    b->data = NULL;
    b->head = b->tail = b->cap = 0;
}
