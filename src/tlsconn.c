/*
 * tlsconn: a wolfSSL client session over memory buffers.
 *
 * wolfSSL pulls ciphertext through a receive callback and pushes it through
 * a send callback.  Here the receive callback hands out what the caller put
 * into `in` and says "want read" when that is empty; the send callback
 * appends to `out` and always accepts everything.  Accepting everything
 * means wolfSSL never has to be retried with the same arguments; memory is
 * bounded one level up, by not reading more plaintext while `out` is full.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "ident.h"
#include "tlsconn.h"

/* on_verify must also run when verification succeeds, to keep the chain
 * and to check the leaf's names. */
#ifndef WOLFSSL_ALWAYS_VERIFY_CB
#error "wolfSSL must be built with WOLFSSL_ALWAYS_VERIFY_CB (CFLAGS=-DWOLFSSL_ALWAYS_VERIFY_CB, as buildpack/build-static.sh does)"
#endif
/* Without either, wolfSSL skips iPAddress SANs when it parses a
 * certificate, and no IP upstream could ever be verified. */
#if !defined(OPENSSL_ALL) && !defined(WOLFSSL_IP_ALT_NAME)
#error "wolfSSL must parse iPAddress SANs (--enable-ip-alt-name, as buildpack/build-static.sh does)"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Older bytes first: what was kept in `in`, then what is lent now. */
static int on_recv(WOLFSSL *ssl, char *p, int sz, void *arg)
{
    struct tlsconn *t = arg;
    size_t n = buf_len(&t->in);

    (void)ssl;
    if (n > 0) {
        if (n > (size_t)sz)
            n = (size_t)sz;
        memcpy(p, buf_peek(&t->in), n);
        buf_consume(&t->in, n);
        return (int)n;
    }
    if (t->lent_len > 0) {
        n = t->lent_len < (size_t)sz ? t->lent_len : (size_t)sz;
        memcpy(p, t->lent, n);
        t->lent += n;
        t->lent_len -= n;
        return (int)n;
    }
    return t->eof ? WOLFSSL_CBIO_ERR_CONN_CLOSE : WOLFSSL_CBIO_ERR_WANT_READ;
}

static int on_send(WOLFSSL *ssl, char *p, int sz, void *arg)
{
    struct tlsconn *t = arg;

    (void)ssl;
    if (buf_append(&t->out, p, (size_t)sz) < 0) {
        t->oom = 1;
        return WOLFSSL_CBIO_ERR_GENERAL;
    }
    return sz;
}

/*
 * Does the leaf name the upstream?  1 yes, 0 no, -1 it cannot be parsed.
 * wolfSSL keeps every SAN in altNames: a dNSName as its text, an iPAddress
 * as its raw 4 or 16 bytes (in both builds; the text form it also makes is
 * not used).  Only the SANs of the reference's kind are compared, and the
 * subject CN never is (RFC 9525 §6.3).
 */
static int leaf_names_upstream(const struct tlsconn *t,
                               const unsigned char *der, word32 len)
{
    DecodedCert dc;
    int yes = -1;

    wc_InitDecodedCert(&dc, der, len, NULL);
    if (wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, NULL) == 0) {
        yes = 0;
        for (const DNS_entry *e = dc.altNames; e != NULL && !yes; e = e->next) {
            if (e->name == NULL || e->len < 0)
                continue;
            if (t->ip_len > 0)
                yes = e->type == ASN_IP_TYPE
                      && ident_match_ip(t->ip, t->ip_len,
                                        (const unsigned char *)e->name, (size_t)e->len);
            else
                yes = e->type == ASN_DNS_TYPE
                      && ident_match_dns(t->name, e->name, (size_t)e->len);
        }
    }
    wc_FreeDecodedCert(&dc);
    return yes;
}

/*
 * Called on the leaf once the chain is checked (WOLFSSL_ALWAYS_VERIFY_CB:
 * Debian's build defines it, the static build sets it) and on any failure;
 * store->certs is every certificate the server sent, leaf first.  Copies
 * them; then, in full mode, when wolfSSL passed the chain and this call is
 * the leaf's, checks that the leaf names the upstream.  The leaf's call is
 * the one with error_depth 0, made once per full handshake and last:
 * Debian's build (WOLFSSL_VERIFY_CB_ALL_CERTS) calls first for each CA
 * certificate the server sent, with error_depth 1, 2, ..., the static
 * build only for those that fail.  A mismatch turns the pass into a
 * failure: wolfSSL then fails the handshake with VERIFY_CERT_ERROR (in
 * both builds), and t->ident says why.  Otherwise the verdict stays
 * wolfSSL's.
 */
static int on_verify(int preverify, WOLFSSL_X509_STORE_CTX *store)
{
    struct tlsconn *t = store->userCtx;
    size_t total = 0, n = 0;

    if (t == NULL || store->certs == NULL || store->totalCerts <= 0)
        return preverify;
    if (preverify && t->check_ident && store->error_depth == 0) {
        int yes = leaf_names_upstream(t, store->certs[0].buffer, store->certs[0].length);
        if (yes <= 0) {
            /* Unparsable (out of memory: wolfSSL parsed it already) stays
             * wolfSSL's "verification failed"; no match is a mismatch. */
            t->ident = yes == 0 ? -1 : 0;
            preverify = 0;
        } else {
            t->ident = 1;
        }
    }
    for (int i = 0; i < store->totalCerts && n < TLSCONN_CHAIN_MAX; i++, n++)
        total += store->certs[i].length;
    struct tlsconn_chain *c = malloc(sizeof *c + total);
    if (c != NULL) {
        c->n = n;
        c->off[0] = 0;
        for (size_t i = 0; i < n; i++) {
            memcpy(c->der + c->off[i], store->certs[i].buffer, store->certs[i].length);
            c->off[i + 1] = c->off[i] + store->certs[i].length;
        }
    }
    free(t->chain);
    t->chain = c;        /* NULL when out of memory: no chain to show */
    return preverify;
}

void tlsconn_setup_ctx(struct tls_ctx *ctx)
{
    WOLFSSL_CTX *c = tls_ctx_handle(ctx);
    wolfSSL_CTX_SetIORecv(c, on_recv);
    wolfSSL_CTX_SetIOSend(c, on_send);
    tls_ctx_on_verify(ctx, on_verify);
}

const struct tlsconn_chain *tlsconn_chain(const struct tlsconn *t)
{
    return t->chain;
}

void tlsconn_drop_chain(struct tlsconn *t)
{
    free(t->chain);
    t->chain = NULL;
}

int tlsconn_init(struct tlsconn *t, struct tls_ctx *ctx, const char *name,
                 int name_is_ip)
{
    memset(t, 0, sizeof *t);
    t->ssl = wolfSSL_new(tls_ctx_handle(ctx));
    if (t->ssl == NULL)
        return -1;
    wolfSSL_SetIOReadCtx(t->ssl, t);
    wolfSSL_SetIOWriteCtx(t->ssl, t);
    wolfSSL_SetCertCbCtx(t->ssl, t);

    /* SNI only for names: RFC 6066 forbids IP literals there. */
    if (!name_is_ip && wolfSSL_UseSNI(t->ssl, WOLFSSL_SNI_HOST_NAME, name,
                                      (word16)strlen(name)) != WOLFSSL_SUCCESS)
        return -1;
    /* The identity is checked by on_verify, not by wolfSSL's name check,
     * which compares an IP as text with every SAN, and falls back to the
     * CN (see ident.h for the rules). */
    t->name = name;
    if (name_is_ip && ident_parse_ip(name, t->ip, &t->ip_len) < 0)
        return -1;
    t->check_ident = tls_ctx_verify(ctx) == CONFIG_VERIFY_FULL;
    return 0;
}

void tlsconn_free(struct tlsconn *t)
{
    if (t->ssl)
        wolfSSL_free(t->ssl);
    t->ssl = NULL;
    buf_free(&t->in);
    buf_free(&t->out);
    tlsconn_drop_chain(t);
    /* Nothing of this session outlives it: a feed_end after the free
     * finds nothing lent, and an init starts from zero. */
    memset(t, 0, sizeof *t);
}

void tlsconn_feed(struct tlsconn *t, const char *p, size_t n)
{
    t->lent = p;
    t->lent_len = n;
}

int tlsconn_feed_end(struct tlsconn *t)
{
    int r = buf_append(&t->in, t->lent, t->lent_len);
    buf_trim(&t->in);           /* no partial record: hold no buffer */
    t->lent = NULL;
    t->lent_len = 0;
    return r;
}

void tlsconn_eof(struct tlsconn *t)
{
    t->eof = 1;
}

static int last_alert(struct tlsconn *t)
{
    WOLFSSL_ALERT_HISTORY h;
    memset(&h, 0, sizeof h);
    if (wolfSSL_get_alert_history(t->ssl, &h) != WOLFSSL_SUCCESS
        || h.last_rx.code <= 0)
        return -1;
    return h.last_rx.code;
}

/*
 * A lone certificate that issued itself.  Libraries with the OpenSSL layer
 * say ASN_SELF_SIGNED_E for it; without that layer the same server is an
 * "unknown issuer", and what the user needs to hear is that it is
 * self-signed (the fix differs: trust that certificate itself).
 */
static int lone_self_issued(const struct tlsconn *t)
{
    const struct tlsconn_chain *c = t->chain;
    DecodedCert dc;
    int yes = 0;

    if (c == NULL || c->n != 1)
        return 0;
    wc_InitDecodedCert(&dc, c->der, (word32)c->off[1], NULL);
    if (wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, NULL) == 0)
        yes = memcmp(dc.subjectHash, dc.issuerHash, sizeof dc.subjectHash) == 0;
    wc_FreeDecodedCert(&dc);
    return yes;
}

/* Record why the session failed; the first failure is the one kept. */
static int failed(struct tlsconn *t, int err)
{
    if (t->err == 0) {
        t->err = err;
        t->reason[0] = '\0';
        if (t->oom)
            t->code = REASON_OUT_OF_MEMORY;
        else if (t->ident < 0)
            t->code = REASON_NAME_MISMATCH;
        else if (err == ASN_NO_SIGNER_E && lone_self_issued(t))
            t->code = REASON_SELF_SIGNED;
        else
            t->code = tls_reason(err, last_alert(t), t->reason, sizeof t->reason);
    }
    return TLSCONN_ERROR;
}

int tlsconn_handshake(struct tlsconn *t)
{
    int r = wolfSSL_connect(t->ssl);
    if (r == WOLFSSL_SUCCESS) {
        /* In full mode no full handshake ends without on_verify having
         * matched the leaf's names; if wolfSSL ever skipped the callback,
         * refuse rather than trust an unchecked peer.  A resumed session
         * was checked in its full handshake, towards the same upstream. */
        if (t->check_ident && t->ident != 1 && !wolfSSL_session_reused(t->ssl))
            return failed(t, VERIFY_CERT_ERROR);
        return 0;
    }
    int err = wolfSSL_get_error(t->ssl, r);
    if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE)
        return TLSCONN_AGAIN;
    return failed(t, err);
}

ssize_t tlsconn_read(struct tlsconn *t, void *p, size_t n)
{
    if (n > (size_t)0x7fffffff)
        n = 0x7fffffff;
    int r = wolfSSL_read(t->ssl, p, (int)n);
    if (r > 0)
        return r;
    int err = wolfSSL_get_error(t->ssl, r);
    switch (err) {
    case WOLFSSL_ERROR_WANT_READ:
    case WOLFSSL_ERROR_WANT_WRITE:
        return TLSCONN_AGAIN;
    case WOLFSSL_ERROR_ZERO_RETURN:
        return TLSCONN_CLOSED;
    case SOCKET_PEER_CLOSED_E:
    case SOCKET_ERROR_E:
        if (t->eof && !t->oom)
            return TLSCONN_TRUNCATED;
        break;
    }
    return failed(t, err);
}

/* One full TLS record per wolfSSL_write call. */
#define RECORD_MAX 16384
/* Header, explicit nonce, tag and content type of the AEAD suites allowed,
 * with room to spare; only a hint for the reservation below. */
#define RECORD_OVERHEAD 64

int tlsconn_write(struct tlsconn *t, const void *p, size_t n)
{
    const char *s = p;
    size_t room;

    /* Room for all the records at once, so `out` does not grow (and copy
     * itself) record by record; on failure the send callback says so. */
    if (n > 0)
        (void)buf_reserve(&t->out, n + (n / RECORD_MAX + 1) * RECORD_OVERHEAD, &room);
    while (n > 0) {
        int chunk = n > RECORD_MAX ? RECORD_MAX : (int)n;
        int r = wolfSSL_write(t->ssl, s, chunk);
        if (r <= 0)
            return failed(t, wolfSSL_get_error(t->ssl, r));
        s += r;
        n -= (size_t)r;
    }
    return 0;
}

void tlsconn_close_notify(struct tlsconn *t)
{
    /* The first call queues close_notify; it does not wait for the peer's. */
    wolfSSL_shutdown(t->ssl);
}

enum reason tlsconn_reason_code(const struct tlsconn *t)
{
    /* tls_reason never says REASON_OTHER: a failure always has its own. */
    return t->code != REASON_OTHER ? t->code : REASON_TLS_ERROR;
}

const char *tlsconn_reason(const struct tlsconn *t)
{
    return t->reason[0] ? t->reason : reason_words(tlsconn_reason_code(t));
}

int tlsconn_verify_failed(const struct tlsconn *t)
{
    return t->err != 0 && reason_is_verify(t->code);
}

const char *tlsconn_version(struct tlsconn *t)
{
    return wolfSSL_get_version(t->ssl);
}

const char *tlsconn_cipher(struct tlsconn *t)
{
    return wolfSSL_get_cipher(t->ssl);
}

void *tlsconn_session(struct tlsconn *t)
{
    return wolfSSL_get1_session(t->ssl);
}

void tlsconn_resume(struct tlsconn *t, void *session)
{
    if (session)
        wolfSSL_set_session(t->ssl, session);
}

int tlsconn_resumed(struct tlsconn *t)
{
    return wolfSSL_session_reused(t->ssl);
}

void tlsconn_session_free(void *session)
{
    if (session)
        wolfSSL_SESSION_free(session);
}

long tlsconn_session_lifetime(void *session)
{
    /* Builds without the OpenSSL layer or the external cache lack these;
     * wolfSSL_set_session still refuses an expired session there. */
#if !defined(NO_SESSION_CACHE) && (defined(OPENSSL_EXTRA) || defined(HAVE_EXT_CACHE))
    long born = wolfSSL_SESSION_get_time(session);
    long timeout = wolfSSL_SESSION_get_timeout(session);
    if (born <= 0 || timeout <= 0)
        return -1;
    /* wolfSSL dates sessions with time() in seconds, as here. */
    long left = born + timeout - (long)time(NULL);
    return left > 0 ? left : 0;
#else
    (void)session;
    return -1;
#endif
}
