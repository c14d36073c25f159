/*
 * resume: when to offer a stored TLS session (see resume.h).  Pure.
 */
#include <errno.h>
#include <stdlib.h>

#include "resume.h"

void resume_limits_default(struct resume_limits *lim)
{
    lim->max_age_ms = RESUME_MAX_AGE_MS;
    lim->backoff_min_ms = RESUME_BACKOFF_MIN_MS;
    lim->backoff_max_ms = RESUME_BACKOFF_MAX_MS;
}

/* One decimal number of milliseconds, ending at `stop`. */
static int field(const char **s, char stop, uint64_t *v)
{
    char *end;
    if (**s < '0' || **s > '9')
        return -1;
    errno = 0;
    unsigned long long n = strtoull(*s, &end, 10);
    if (errno != 0 || *end != stop)
        return -1;
    *v = n;
    *s = end + (stop != '\0');
    return 0;
}

int resume_limits_parse(const char *s, struct resume_limits *lim)
{
    struct resume_limits l;
    if (s == NULL || field(&s, ':', &l.max_age_ms) < 0
        || field(&s, ':', &l.backoff_min_ms) < 0
        || field(&s, '\0', &l.backoff_max_ms) < 0
        || l.backoff_min_ms == 0 || l.backoff_max_ms < l.backoff_min_ms)
        return -1;
    *lim = l;
    return 0;
}

int resume_offer(const struct resume *r, const struct resume_limits *lim,
                 uint64_t now)
{
    if (!r->stored || now < r->paused_until)
        return 0;
    if (r->expires_at != 0 && now >= r->expires_at)
        return 0;
    /* A chain verified in the future (clocks do not go back, but be safe)
     * counts as just verified. */
    return now < r->verified_at || now - r->verified_at < lim->max_age_ms;
}

int resume_keep(struct resume *r, uint64_t verified_at, uint64_t expires_at)
{
    /* A connection that resumed an older session may finish after a full
     * handshake stored a newer one: keep the newer chain. */
    if (r->stored && verified_at < r->verified_at)
        return 0;
    r->stored = 1;
    r->verified_at = verified_at;
    r->expires_at = expires_at;
    return 1;
}

void resume_refused(struct resume *r, const struct resume_limits *lim,
                    uint64_t now)
{
    r->stored = 0;
    r->verified_at = r->expires_at = 0;
    if (r->backoff_ms != 0 && now < r->paused_until)
        return;
    if (r->backoff_ms == 0)
        r->backoff_ms = lim->backoff_min_ms;
    else if (r->backoff_ms < lim->backoff_max_ms / 2)
        r->backoff_ms *= 2;
    else
        r->backoff_ms = lim->backoff_max_ms;
    r->paused_until = now + r->backoff_ms;
}

void resume_resumed(struct resume *r)
{
    r->backoff_ms = 0;
    r->paused_until = 0;
}
