/*
 * certinfo: the peer's certificate chain as plain data.
 *
 * After a handshake succeeded, certinfo_peer_chain copies what a person
 * needs to see about each certificate the server presented (leaf first):
 * subject, issuer, DNS and IP subject alternative names and the validity
 * dates.  The expiry helpers are pure, so the warning thresholds are
 * table-tested without certificates.
 *
 * Everything here is copied out of the TLS library: a struct certinfo
 * owns no pointers and stays valid after the session is freed.  Text is
 * printable: control bytes in certificate fields are replaced with '?'.
 */
#ifndef MEMTUNNEL_CERTINFO_H
#define MEMTUNNEL_CERTINFO_H

#include <stddef.h>
#include <time.h>

struct tlsconn;

#define CERTINFO_NAME_MAX 256   /* subject or issuer, with its NUL */
#define CERTINFO_SAN_MAX 16     /* alternative names kept per certificate */
#define CERTINFO_SAN_LEN 256    /* one DNS name (253) or IP text, with NUL */
#define CERTINFO_CHAIN_MAX 10   /* certificates kept per chain */

enum certinfo_san_type {
    CERTINFO_SAN_DNS,
    CERTINFO_SAN_IP,
};

struct certinfo_san {
    enum certinfo_san_type type;
    char name[CERTINFO_SAN_LEN];      /* "localhost", "127.0.0.1", "::1" */
};

struct certinfo {
    /* Distinguished names in the one-line form "/O=Example/CN=host". */
    char subject[CERTINFO_NAME_MAX];
    char issuer[CERTINFO_NAME_MAX];
    struct certinfo_san sans[CERTINFO_SAN_MAX];
    size_t nsans;                     /* kept in sans[] */
    size_t sans_total;                /* DNS and IP names in the certificate */
    time_t not_before, not_after;
};

/*
 * Describe the chain the server presented in the handshake of t into
 * chain[0 .. max-1], leaf first; certificates past max are left out.  After
 * a successful handshake (with verification on) this is the verified
 * chain; after one that failed verification it is the refused chain, which
 * is what a diagnosis needs to show.
 * Nothing is described after a resumed handshake (the server sends no
 * certificates then) or once tlsconn_drop_chain ran.  Returns how many were
 * written, or:
 *   -ENOTSUP  nothing to describe: no full handshake, or the chain dropped
 *   -EBADMSG  a certificate could not be parsed
 */
int certinfo_peer_chain(struct tlsconn *t, struct certinfo *chain, size_t max);

/*
 * Describe one DER-encoded certificate.  Returns 0, -EBADMSG or -ENOMEM.
 */
int certinfo_parse_der(const unsigned char *der, size_t len,
                       struct certinfo *ci);

/*
 * Whole days from now until not_after, rounded down: 0 in the last day,
 * -1 in the first day after expiry.
 */
long certinfo_days_left(time_t not_after, time_t now);

/*
 * The certificate of chain[0 .. n-1] that expires first among those that
 * expire within warn_days days of now (or have already expired): its
 * index, or -1 when none does.  warn_days 0 finds only expired ones.
 */
int certinfo_first_expiring(const struct certinfo *chain, size_t n,
                            time_t now, unsigned warn_days);

/* ISO 8601 UTC, "2026-11-23T15:55:41Z", into buf (21 bytes or more).
 * Returns buf. */
char *certinfo_date(time_t t, char *buf, size_t len);

#endif
