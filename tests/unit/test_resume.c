/*
 * resume: when a stored TLS session is offered, stepped with synthetic
 * times: the age bound, its inheritance by resumed connections, the
 * ticket's lifetime, and the backoff after refusals.
 */
#include "resume.h"
#include "suites.h"

#define SEC 1000ULL
#define HOUR (3600 * SEC)
#define T0 (1000 * HOUR)   /* an arbitrary start of the monotonic clock */

static struct resume_limits lim;

static void setup(void)
{
    resume_limits_default(&lim);
}

START_TEST(defaults)
{
    ck_assert_uint_eq(lim.max_age_ms, 24 * HOUR);
    ck_assert_uint_eq(lim.backoff_min_ms, 60 * SEC);
    ck_assert_uint_eq(lim.backoff_max_ms, HOUR);
    /* RFC 8446 §4.6.1: 7 days at most. */
    ck_assert_uint_le(RESUME_MAX_AGE_MS, 7 * 24 * HOUR);
}
END_TEST

START_TEST(nothing_stored)
{
    struct resume r = { 0 };
    ck_assert(!resume_offer(&r, &lim, T0));
}
END_TEST

/* Fresh from a full handshake: offered until 24 h after it, not at 24 h. */
START_TEST(fresh_offered_old_not)
{
    struct resume r = { 0 };
    ck_assert(resume_keep(&r, T0, 0));
    ck_assert(resume_offer(&r, &lim, T0));
    ck_assert(resume_offer(&r, &lim, T0 + 1));
    ck_assert(resume_offer(&r, &lim, T0 + 24 * HOUR - 1));
    ck_assert(!resume_offer(&r, &lim, T0 + 24 * HOUR));
    ck_assert(!resume_offer(&r, &lim, T0 + 30 * 24 * HOUR));
}
END_TEST

/* A ticket from a resumed connection inherits the age of the full
 * handshake its session came from: resuming every hour does not keep the
 * chain unchecked for ever. */
START_TEST(resumed_chain_age_inherited)
{
    struct resume r = { 0 };
    resume_keep(&r, T0, 0);
    for (uint64_t h = 1; h < 24; h++) {
        ck_assert(resume_offer(&r, &lim, T0 + h * HOUR));
        ck_assert(resume_keep(&r, r.verified_at, 0));   /* resumed: same age */
    }
    ck_assert(!resume_offer(&r, &lim, T0 + 24 * HOUR));
    /* The full handshake that follows starts the clock again. */
    ck_assert(resume_keep(&r, T0 + 24 * HOUR, 0));
    ck_assert(resume_offer(&r, &lim, T0 + 24 * HOUR + SEC));
    ck_assert(resume_offer(&r, &lim, T0 + 47 * HOUR));
    ck_assert(!resume_offer(&r, &lim, T0 + 48 * HOUR));
}
END_TEST

/* A connection resuming the old session that ends after a full handshake
 * stored a newer one does not put the older chain back. */
START_TEST(newer_chain_stays)
{
    struct resume r = { 0 };
    resume_keep(&r, T0, 0);
    ck_assert(resume_keep(&r, T0 + 10 * HOUR, 0));
    ck_assert(!resume_keep(&r, T0, 0));
    ck_assert_uint_eq(r.verified_at, T0 + 10 * HOUR);
    ck_assert(resume_offer(&r, &lim, T0 + 30 * HOUR));
}
END_TEST

/* The ticket's own lifetime caps it, below the age bound. */
START_TEST(ticket_lifetime_caps)
{
    struct resume r = { 0 };
    resume_keep(&r, T0, T0 + 2 * HOUR);
    ck_assert(resume_offer(&r, &lim, T0 + 2 * HOUR - 1));
    ck_assert(!resume_offer(&r, &lim, T0 + 2 * HOUR));
    /* A later ticket of the same lineage with its own lifetime. */
    resume_keep(&r, T0, T0 + 4 * HOUR);
    ck_assert(resume_offer(&r, &lim, T0 + 3 * HOUR));
    /* Expired the moment it was kept. */
    resume_keep(&r, T0 + 5 * HOUR, T0 + 5 * HOUR);
    ck_assert(!resume_offer(&r, &lim, T0 + 5 * HOUR));
}
END_TEST

/* A refusal drops the session and pauses offers, doubling from 1 min to
 * 1 h; refusals during a pause (offers made before it) count once; a
 * resumption ends the backoff. */
START_TEST(refusal_backoff)
{
    struct resume r = { 0 };
    uint64_t t = T0;
    resume_keep(&r, t, 0);
    resume_refused(&r, &lim, t);
    ck_assert(!r.stored);
    ck_assert_uint_eq(r.backoff_ms, 60 * SEC);
    /* Twenty offers were in flight: the same refusal. */
    for (int i = 0; i < 20; i++)
        resume_refused(&r, &lim, t + 10);
    ck_assert_uint_eq(r.backoff_ms, 60 * SEC);

    /* A full handshake during the pause stores a session: not offered
     * until the pause ends. */
    resume_keep(&r, t + SEC, 0);
    ck_assert(!resume_offer(&r, &lim, t + 60 * SEC - 1));
    ck_assert(resume_offer(&r, &lim, t + 60 * SEC));

    uint64_t want[] = { 120, 240, 480, 960, 1920, 3600, 3600 };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        t = r.paused_until;
        resume_keep(&r, t, 0);
        ck_assert(resume_offer(&r, &lim, t));
        resume_refused(&r, &lim, t);
        ck_assert_uint_eq(r.backoff_ms, want[i] * SEC);
        ck_assert(!resume_offer(&r, &lim, t));
    }

    /* The server takes sessions again: no pause any more, and the next
     * refusal starts from 1 min. */
    t = r.paused_until;
    resume_keep(&r, t, 0);
    resume_resumed(&r);
    ck_assert_uint_eq(r.backoff_ms, 0);
    ck_assert(resume_offer(&r, &lim, t));
    resume_refused(&r, &lim, t + SEC);
    ck_assert_uint_eq(r.backoff_ms, 60 * SEC);
}
END_TEST

/* A stale ticket (server restarted) ends in a full handshake, which only
 * keeps a new session: the backoff is untouched, offers go on. */
START_TEST(full_handshake_is_no_refusal)
{
    struct resume r = { 0 };
    resume_keep(&r, T0, 0);
    ck_assert(resume_offer(&r, &lim, T0 + HOUR));
    resume_keep(&r, T0 + HOUR, 0);
    ck_assert_uint_eq(r.backoff_ms, 0);
    ck_assert(resume_offer(&r, &lim, T0 + HOUR + 1));
}
END_TEST

START_TEST(limits_parse)
{
    struct resume_limits l;
    ck_assert_int_eq(resume_limits_parse("3000:1000:8000", &l), 0);
    ck_assert_uint_eq(l.max_age_ms, 3000);
    ck_assert_uint_eq(l.backoff_min_ms, 1000);
    ck_assert_uint_eq(l.backoff_max_ms, 8000);
    static const char *bad[] = { NULL, "", "3000", "3000:1000", "3000:1000:",
                                 "3000:1000:8000:1", "a:1:2", "3000:0:8000",
                                 "3000:1000:999", "-1:1000:8000", "1 :1:2" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        l = lim;
        ck_assert_int_eq(resume_limits_parse(bad[i], &l), -1);
        ck_assert_uint_eq(l.max_age_ms, lim.max_age_ms);
    }
}
END_TEST

Suite *resume_suite(void)
{
    Suite *s = suite_create("resume");
    TCase *tc = tcase_create("policy");
    tcase_set_timeout(tc, 5);
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, nothing_stored);
    tcase_add_test(tc, fresh_offered_old_not);
    tcase_add_test(tc, resumed_chain_age_inherited);
    tcase_add_test(tc, newer_chain_stays);
    tcase_add_test(tc, ticket_lifetime_caps);
    tcase_add_test(tc, refusal_backoff);
    tcase_add_test(tc, full_handshake_is_no_refusal);
    tcase_add_test(tc, limits_parse);
    suite_add_tcase(s, tc);
    return s;
}
