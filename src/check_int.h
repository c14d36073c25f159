/*
 * check internals, shared by check.c (the steps), check_link.c (a TLS
 * connection driven with a deadline) and check_print.c (text and JSON,
 * with advice.c's advice).  Nothing else includes this.
 */
#ifndef MEMTUNNEL_CHECK_INT_H
#define MEMTUNNEL_CHECK_INT_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include "advice.h"
#include "certinfo.h"
#include "check_mode.h"
#include "tlsconn.h"

/* ---- check_link.c ------------------------------------------------------ */

/*
 * Failures of the link besides tlsconn's TLSCONN_* codes: a socket error or
 * timeout (the negative errno is in io_err), or a reply the protocol does
 * not allow.
 */
#define CHECK_LINK_IO (-100)
#define CHECK_LINK_PROTO (-101)

struct check_link {
    int fd;                     /* -1 when closed */
    struct tlsconn t;
    int tls_inited;             /* tlsconn_free is owed */
    double deadline;            /* check_link_now() ms; every wait ends there */
    int io_err;
    size_t received;            /* ciphertext bytes received, in all */
    unsigned char head[32];     /* the first bytes the server sent */
    size_t nhead;
};

/* Monotonic milliseconds. */
double check_link_now(void);

void check_link_init(struct check_link *l);

/* Close the socket and free the TLS session; l can be used again. */
void check_link_close(struct check_link *l);

/* Send close_notify without waiting for much, then close. */
void check_link_goodbye(struct check_link *l);

/* Connect to sa by l->deadline.  Returns 0 or -errno (-ETIMEDOUT). */
int check_link_connect(struct check_link *l, const struct sockaddr *sa,
                       socklen_t len);

/*
 * Start a tlsconn towards name on the connected link, offering session
 * (NULL: none), and run the handshake by l->deadline.  Returns 0, a
 * TLSCONN_* failure (tlsconn_reason says why) or CHECK_LINK_IO.
 */
int check_link_handshake(struct check_link *l, struct tls_ctx *tls,
                         const char *name, int name_is_ip, void *session);

/* Encrypt and send n bytes.  Returns 0 or a failure as above. */
int check_link_send(struct check_link *l, const void *p, size_t n);

/* Receive exactly n bytes of plaintext.  Returns 0 or a failure. */
int check_link_recv(struct check_link *l, void *p, size_t n);

/* One CRLF-terminated line, without the CRLF, into line (cap bytes);
 * CHECK_LINK_PROTO when it does not fit. */
int check_link_line(struct check_link *l, char *line, size_t cap);

/* Why one of the calls above failed: r is its result (< 0). */
enum reason check_link_reason(const struct check_link *l, int r);

/* The same in words: the reason's, or for a socket error the system's
 * (strerror, written into buf). */
const char *check_link_words(const struct check_link *l, int r, char *buf,
                             size_t len);

/* ---- check.c and check_print.c ------------------------------------------ */

#define CHECK_ADDR_MAX 8                    /* resolved addresses shown */
#define CHECK_ADDR_LEN (INET6_ADDRSTRLEN + 8) /* "[v6]:port" */

/* SASL credentials from the environment; the password is never shown. */
struct check_creds {
    const char *user, *pass;                /* NULL: none, or withheld */
    char user_var[64], pass_var[64];        /* the node's pair: where they
                                             * come from, or would */
    int withheld;                           /* set, but not sent: --verify none */
};

struct check_result {
    /* What is checked, filled in by check_run. */
    const struct config_server *server;
    char upstream[CONFIG_HOST_MAX + 10];    /* "host:port" */
    const char *tls_name;                   /* sent as SNI and checked */
    int tls_name_is_ip;
    uint32_t timeout_ms;
    enum config_verify verify;
    const char *ca_source;                  /* NULL: the system store */
    struct check_creds creds;
    enum config_auth auth_mode;             /* --auth: check logs in so */

    /* What was found. */
    char addrs[CHECK_ADDR_MAX][CHECK_ADDR_LEN]; /* resolved, in order */
    size_t naddrs;
    char address[CHECK_ADDR_LEN];           /* the one connected to */
    double connect_ms, handshake_ms, resume_ms;
    int handshake_ok;
    char version[32], cipher[64];
    int resumed;                            /* 1, 0, or -1: not tried */

    /* On a failed handshake: what the server sent instead. */
    size_t received;
    unsigned char head[32];
    size_t nhead;
    int timed_out;

    struct certinfo chain[CERTINFO_CHAIN_MAX];
    int nchain;                             /* < 0: not available */

    const char *protocol;                   /* "text", "binary", NULL */
    char mc_version[128];
    char mechs[128];                        /* SASL mechanisms offered */
    char mc_error[128];                     /* the server's error text */
    int mc_no_answer;                       /* closed without a reply */
    int auth;                               /* 1, 0, or -1: not tried */
    int sasl_off;                           /* the server has no SASL */

    /* The first step that failed (ADVICE_STEP_NONE when all passed), why,
     * and the words check shows for it (the advice goes by `why`). */
    enum advice_step failed;
    enum reason why;
    char reason[256];
};

/* One block of text for r, with its advice (advice_explain). */
void check_print_text(FILE *out, const struct check_result *r, time_t now,
                      unsigned warn_days);

/* One JSON object for r, with its advice (no separator, no newline
 * after it). */
void check_print_json(FILE *out, const struct check_result *r, time_t now,
                      unsigned warn_days);

#endif
