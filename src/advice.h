/*
 * advice: what the user can do about a failure, in words.
 *
 * Two audiences.  The log's warn lines carry a short hint= next to the
 * reason (advice_hint: the reason table's hint column).  `memtunnel check`
 * explains at length (advice_explain): it knows which step failed and what
 * the server showed on the way (its certificates, the bytes it answered
 * with), so the advice can name the certificate's names, its dates, the CA
 * it chains to, and the setting that fixes it, with the risk spelled out
 * where a setting weakens security.
 *
 * Both are decided by enums only (the reason, the step), never by matching
 * the words of a message.  Pure apart from reading the facts it is given:
 * no I/O, no state.
 */
#ifndef MEMTUNNEL_ADVICE_H
#define MEMTUNNEL_ADVICE_H

#include <stddef.h>
#include <time.h>

#include "certinfo.h"
#include "reason.h"

/*
 * The hint= for a log line that says why: a static string, or NULL when
 * the reason's words say all there is (timeouts) or nothing can be
 * advised.  Safe for any value of why.
 */
const char *advice_hint(enum reason why);

/* The steps of `memtunnel check`, in the order it takes them. */
enum advice_step {
    ADVICE_STEP_NONE,           /* every step passed */
    ADVICE_STEP_RESOLVE,
    ADVICE_STEP_CONNECT,
    ADVICE_STEP_TLS,            /* the handshake, verification aside */
    ADVICE_STEP_VERIFY,
    ADVICE_STEP_MEMCACHE,       /* a round trip over TLS */
    ADVICE_STEP_AUTH,           /* the SASL login */
    ADVICE_STEP_RESUME,         /* a second connection, resuming */
    ADVICE_STEP_COUNT           /* not a step: the number of them */
};

/*
 * The step's name as check prints it ("resolve", "connect", "tls",
 * "verify", "memcache", "auth", "resume"); NULL for ADVICE_STEP_NONE and
 * for a value outside the enum.
 */
const char *advice_step_name(enum advice_step step);

/*
 * What check found about one upstream, as far as the advice needs it.
 * Pointers are borrowed for the call; strings may be "" but not NULL,
 * unless said otherwise.
 */
struct advice_facts {
    enum advice_step step;      /* the first step that failed */
    enum reason why;            /* why it failed */
    const char *reason_text;    /* check's words for it, quoted as a last resort */

    const char *upstream;       /* "host:port" */
    const char *host;
    unsigned port;
    const char *tls_name;       /* sent as SNI and checked */
    int tls_name_is_ip;
    unsigned timeout_ms;        /* --connect-timeout */
    int verify_none;            /* --verify none */
    const char *ca_source;      /* where the trusted CAs came from; NULL:
                                 * the system store */

    /* The TLS step: what the server sent instead of a handshake. */
    const unsigned char *head;  /* its first bytes (nhead of them) */
    size_t nhead;
    size_t received;            /* bytes in all */
    int timed_out;              /* the deadline passed */

    /* The chain it presented, leaf first (nchain <= 0: none). */
    const struct certinfo *chain;
    int nchain;
    time_t now;

    /* memcache and SASL. */
    const char *user_var, *pass_var;    /* the node's credential variables */
    int have_creds;             /* a pair is set and was sent */
    int withheld;               /* a pair is set but not sent: --verify none */
    int mc_no_answer;           /* the server closed or stayed silent */
    int sasl_off;               /* the server asks for no login */
    int auth;                   /* 1, 0, or -1: not tried */
    const char *auth_mode;      /* --auth's mode, or NULL: none */
    const char *mechs;          /* SASL mechanisms offered */
    const char *mc_error;       /* the server's error text */
};

#define ADVICE_LEN 480          /* one line of advice, with its NUL */

/*
 * Advice for f: up to max lines into lines[], each one line of text (cut
 * to ADVICE_LEN - 1 bytes).  Notes when every step passed (--verify none,
 * a server without SASL, credentials withheld); what to fix when one
 * failed.  Returns the number of lines written (0 to max).  An unknown
 * step or reason gets the general advice of its step, or none.
 */
size_t advice_explain(const struct advice_facts *f, char lines[][ADVICE_LEN],
                      size_t max);

#endif
