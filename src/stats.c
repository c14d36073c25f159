/*
 * stats: counters, handshake-time median, and the stats line's fields.
 */
#include "stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void stats_handshake(struct stats *s, uint32_t us, uint32_t random)
{
    uint64_t n = s->handshakes++;
    if (n < STATS_SAMPLES)
        s->handshake_us[n] = us;
    else if (random % (n + 1) < STATS_SAMPLES)
        s->handshake_us[random % STATS_SAMPLES] = us;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

uint32_t stats_handshake_p50(struct stats *s)
{
    size_t n = s->handshakes < STATS_SAMPLES ? (size_t)s->handshakes
                                             : STATS_SAMPLES;
    if (n == 0)
        return 0;
    qsort(s->handshake_us, n, sizeof s->handshake_us[0], cmp_u32);
    return s->handshake_us[(n - 1) / 2];
}

size_t stats_pairs(struct stats *s, const char *upstream, const char **kv,
                   size_t kvlen, char *text, size_t len)
{
    const struct { const char *key; uint64_t value; } counts[] = {
        { "sample#memtunnel.connections.active", s->active },
        { "count#memtunnel.connections.accepted", s->accepted },
        { "count#memtunnel.connect.failures", s->connect_failures },
        { "count#memtunnel.handshake.failures", s->handshake_failures },
        { "count#memtunnel.verify.failures", s->verify_failures },
        { "count#memtunnel.auth.failures", s->auth_failures },
        { "count#memtunnel.connections.reused", s->reused },
        { "count#memtunnel.bytes.up", s->bytes_up },
        { "count#memtunnel.bytes.down", s->bytes_down },
    };
    size_t k = 0, used = 0;

    if (kvlen < 2 * (sizeof counts / sizeof counts[0] + 2) + 1)
        return 0;
    kv[k++] = "upstream";
    kv[k++] = upstream;
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        int w = snprintf(text + used, len - used, "%llu",
                         (unsigned long long)counts[i].value);
        if (w < 0 || (size_t)w >= len - used)
            break;
        kv[k++] = counts[i].key;
        kv[k++] = text + used;
        used += (size_t)w + 1;
    }
    /* The median in milliseconds with microsecond precision: l2met reads
     * the unit from the suffix. */
    if (s->handshakes > 0) {
        uint32_t us = stats_handshake_p50(s);
        int w = snprintf(text + used, len - used, "%u.%03ums", us / 1000,
                         us % 1000);
        if (w > 0 && (size_t)w < len - used) {
            kv[k++] = "sample#memtunnel.handshake.p50";
            kv[k++] = text + used;
        }
    }
    kv[k] = NULL;
    return k;
}

void stats_next_interval(struct stats *s)
{
    uint64_t active = s->active;
    memset(s, 0, sizeof *s);
    s->active = active;
}
