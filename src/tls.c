/*
 * tls: wolfSSL client context.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tls_ctx {
    WOLFSSL_CTX *ctx;
    enum config_verify verify;
};

/*
 * Forward-secret AEAD suites only, TLS 1.3 first.  Naming them one by one
 * matters: OpenSSL-style strings such as "HIGH:!aNULL" still let RC4 and
 * anonymous suites through in Debian's build.
 */
static const char suites[] =
    "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"
    "TLS13-CHACHA20-POLY1305-SHA256:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/*
 * X25519 and P-256 first: the library's default order starts with P-521,
 * which OpenSSL servers then pick for TLS 1.2, costing 5-7 ms a handshake.
 */
static const word16 groups[] = {
    WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1,
    WOLFSSL_ECC_SECP384R1, WOLFSSL_ECC_SECP521R1,
};

int tls_global_init(void)
{
    return wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : -1;
}

void tls_global_cleanup(void)
{
    wolfSSL_Cleanup();
}

static void fail(struct config_error *err, const char *name, const char *fmt,
                 const char *arg)
{
    err->status = EXIT_CONFIG;
    snprintf(err->name, sizeof err->name, "%s", name ? name : "");
    snprintf(err->msg, sizeof err->msg, fmt, arg ? arg : "");
}

/*
 * The distribution's single-file bundle when there is one: the same
 * certificates as the hashed directory that wolfSSL_CTX_load_system_CA_certs
 * reads, where half the entries are links parsed twice; the file loads in
 * well under half the time, which matters for every app start.
 */
static int load_system_bundle(WOLFSSL_CTX *c)
{
    static const char *const bundles[] = {
        "/etc/ssl/certs/ca-certificates.crt",    /* Debian, Ubuntu */
        "/etc/pki/tls/certs/ca-bundle.crt",      /* Fedora, RHEL */
        "/etc/ssl/cert.pem",                     /* Alpine, BSDs */
    };
    for (size_t i = 0; i < sizeof bundles / sizeof bundles[0]; i++)
        if (access(bundles[i], R_OK) == 0
            && wolfSSL_CTX_load_verify_locations(c, bundles[i], NULL)
               == WOLFSSL_SUCCESS)
            return 0;
    return -1;
}

static int load_trust(WOLFSSL_CTX *c, const struct config *cfg,
                      struct config_error *err)
{
    if (cfg->ca_file) {
        if (wolfSSL_CTX_load_verify_locations(c, cfg->ca_file, NULL)
            != WOLFSSL_SUCCESS) {
            fail(err, cfg->ca_source, "cannot load CA certificates from %s "
                 "(missing, unreadable or not PEM)", cfg->ca_file);
            return -1;
        }
    } else if (cfg->ca_pem) {
        if (wolfSSL_CTX_load_verify_buffer(c, (const unsigned char *)cfg->ca_pem,
                (long)strlen(cfg->ca_pem), WOLFSSL_FILETYPE_PEM)
            != WOLFSSL_SUCCESS) {
            fail(err, cfg->ca_source, "%sno valid PEM certificate could be "
                 "loaded from this variable", NULL);
            return -1;
        }
    } else if (load_system_bundle(c) != 0
               && wolfSSL_CTX_load_system_CA_certs(c) != WOLFSSL_SUCCESS) {
        fail(err, "MEMTUNNEL_CA", "%sno system trust store found "
             "(install ca-certificates, or give the CA with MEMTUNNEL_CA or --ca)",
             NULL);
        return -1;
    }
    return 0;
}

/* Key material must not linger in freed memory. */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

/*
 * The whole file (up to 1 MiB), NUL-terminated, or NULL.  It may be a key:
 * read with read(2) into this buffer alone (stdio would leave a copy in its
 * own), and a buffer outgrown is wiped before it is freed.  The caller
 * wipes and frees the result.
 */
static char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf = NULL;
    size_t cap = 0, n = 0;
    ssize_t r;

    if (fd < 0)
        return NULL;
    do {
        if (cap - n < 4096) {
            char *nb = malloc(cap + 65536);
            if (nb == NULL)
                goto fail;
            if (buf != NULL) {
                memcpy(nb, buf, n);
                wipe(buf, cap);
                free(buf);
            }
            buf = nb;
            cap += 65536;
        }
        do
            r = read(fd, buf + n, cap - n - 1);
        while (r < 0 && errno == EINTR);
        if (r < 0)
            goto fail;
        n += (size_t)r;
    } while (r > 0 && n < (1 << 20));
    close(fd);
    buf[n] = '\0';
    *len = n;
    return buf;
fail:
    if (buf != NULL) {
        wipe(buf, cap);
        free(buf);
    }
    close(fd);
    return NULL;
}

/* PEM text from a file or a variable; *owned is what to wipe and free. */
static const char *pem_text(const char *file, const char *inline_pem,
                            size_t *len, char **owned)
{
    *owned = NULL;
    if (file)
        return *owned = read_file(file, len);
    *len = inline_pem ? strlen(inline_pem) : 0;
    return inline_pem;
}

/* The public key of an RSA key, as bytes: n then e. */
static int rsa_public(RsaKey *k, byte *out, word32 *len)
{
    word32 elen = 16, nlen = *len - 16;
    byte e[16];
    if (wc_RsaFlattenPublicKey(k, e, &elen, out, &nlen) != 0)
        return -1;
    memcpy(out + nlen, e, elen);
    *len = nlen + elen;
    return 0;
}

/* A certificate's (leaf's) public key against the private key's. */
static int rsa_match(const DecodedCert *dc, const byte *key, word32 keylen)
{
    RsaKey priv, pub;
    byte a[1200], b[1200];
    word32 alen = sizeof a, blen = sizeof b, i = 0, j = 0;
    int ok = 0;

    if (wc_InitRsaKey(&priv, NULL) != 0)
        return 0;
    if (wc_InitRsaKey(&pub, NULL) != 0) {
        wc_FreeRsaKey(&priv);
        return 0;
    }
    if (wc_RsaPrivateKeyDecode(key, &i, &priv, keylen) == 0
        && wc_RsaPublicKeyDecode(dc->publicKey, &j, &pub, dc->pubKeySize) == 0
        && rsa_public(&priv, a, &alen) == 0 && rsa_public(&pub, b, &blen) == 0)
        ok = alen == blen && memcmp(a, b, alen) == 0;
    wc_FreeRsaKey(&priv);
    wc_FreeRsaKey(&pub);
    return ok;
}

static int ecc_match(const DecodedCert *dc, const byte *key, word32 keylen)
{
    ecc_key priv, pub;
    byte a[200], b[200];
    word32 alen = sizeof a, blen = sizeof b, i = 0, j = 0;
    int ok = 0;

    if (wc_ecc_init(&priv) != 0)
        return 0;
    if (wc_ecc_init(&pub) != 0) {
        wc_ecc_free(&priv);
        return 0;
    }
    /* The certificate carries the key as a SubjectPublicKeyInfo or as the
     * bare point, depending on the library's build. */
    int pub_ok = wc_EccPublicKeyDecode(dc->publicKey, &j, &pub, dc->pubKeySize) == 0
                 || wc_ecc_import_x963(dc->publicKey, dc->pubKeySize, &pub) == 0;
    if (pub_ok && wc_EccPrivateKeyDecode(key, &i, &priv, keylen) == 0
        /* A key file without its public half: derive it. */
        && (priv.type != ECC_PRIVATEKEY_ONLY || wc_ecc_make_pub(&priv, NULL) == 0)
        && wc_ecc_export_x963(&priv, a, &alen) == 0
        && wc_ecc_export_x963(&pub, b, &blen) == 0)
        ok = alen == blen && memcmp(a, b, alen) == 0;
    wc_ecc_free(&priv);
    wc_ecc_free(&pub);
    return ok;
}

/*
 * Does the client key belong to the client certificate?  The library's own
 * check (wolfSSL_CTX_check_private_key) passes any EC key in Debian's build,
 * so compare the certificate's public key with the key's own: a mismatch
 * then fails at start, not at every handshake.  wolfCrypt only, so the
 * static build needs no OpenSSL compatibility layer (whose per-connection
 * state costs 4.5 KiB).  1 when they match, 0 when not, -1 for a kind of
 * key other than RSA and EC: those are left to the library's check.
 */
static int key_matches(const struct config *cfg, const char *keypem,
                       size_t keylen)
{
    size_t certlen;
    char *certown;
    const char *certpem = pem_text(cfg->cert_file, cfg->cert_pem, &certlen, &certown);
    byte *certder = NULL, *keyder = NULL;
    int ok = 0, n = -1, k = -1;

    if (certpem && keypem && certlen < 1 << 20 && keylen < 1 << 20) {
        certder = malloc(certlen);
        keyder = malloc(keylen);
        /* PEM to DER by hand: wolfSSL 5.5's PEM_read_bio_PrivateKey reads
         * freed memory when the key is followed by certificates.  The
         * first certificate is the leaf. */
        if (certder && keyder) {
            n = wc_CertPemToDer((const byte *)certpem, (int)certlen, certder,
                                (int)certlen, CERT_TYPE);
            k = wc_KeyPemToDer((const byte *)keypem, (int)keylen, keyder,
                               (int)keylen, NULL);
        }
    }
    if (n > 0 && k > 0) {
        DecodedCert dc;
        wc_InitDecodedCert(&dc, certder, (word32)n, NULL);
        if (wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, NULL) == 0) {
            if (dc.keyOID == RSAk)
                ok = rsa_match(&dc, keyder, (word32)k);
            else if (dc.keyOID == ECDSAk)
                ok = ecc_match(&dc, keyder, (word32)k);
            else
                ok = -1;
        }
        wc_FreeDecodedCert(&dc);
    }
    if (keyder)
        wipe(keyder, keylen);
    free(keyder);
    free(certder);
    free(certown);
    return ok;
}

/*
 * The client certificate and key.  The key's text is read here, not by
 * the library (whose file buffer is freed unwiped), and wiped once loaded:
 * the context keeps its own copy, which wolfSSL_CTX_free wipes.  An inline
 * key's text in the environment is the caller's to wipe.
 */
static int load_identity(WOLFSSL_CTX *c, const struct config *cfg,
                         struct config_error *err)
{
    size_t keylen = 0;
    char *keyown = NULL;
    const char *keypem;
    int r, match;

    if (!cfg->cert_file && !cfg->cert_pem)
        return 0;
    if (cfg->cert_file)
        r = wolfSSL_CTX_use_certificate_chain_file(c, cfg->cert_file);
    else
        r = wolfSSL_CTX_use_certificate_chain_buffer(c,
                (const unsigned char *)cfg->cert_pem, (long)strlen(cfg->cert_pem));
    if (r != WOLFSSL_SUCCESS) {
        fail(err, cfg->cert_source, "%scannot load the client certificate "
             "(missing, unreadable or not PEM)", NULL);
        return -1;
    }
    keypem = pem_text(cfg->key_file, cfg->key_pem, &keylen, &keyown);
    r = keypem == NULL ? WOLFSSL_FAILURE
        : wolfSSL_CTX_use_PrivateKey_buffer(c, (const unsigned char *)keypem,
                                            (long)keylen, WOLFSSL_FILETYPE_PEM);
    /* The library's own check only where ours cannot tell: besides
     * passing any EC key, Debian's crashes on some (found by fuzzing). */
    match = r == WOLFSSL_SUCCESS ? key_matches(cfg, keypem, keylen) : 0;
    if (keyown) {
        wipe(keyown, keylen);
        free(keyown);
    }
    if (r != WOLFSSL_SUCCESS) {
        fail(err, cfg->key_source, "%scannot load the client key "
             "(missing, unreadable, encrypted or not PEM)", NULL);
        return -1;
    }
    if (match < 0)
        match = wolfSSL_CTX_check_private_key(c) == WOLFSSL_SUCCESS;
    if (!match) {
        fail(err, cfg->key_source, "%sthe client key does not match the "
             "client certificate", NULL);
        return -1;
    }
    return 0;
}

/* Not the configuration's fault: the library or memory failed. */
static void fault_at(struct run_error *fault, const char *msg)
{
    fault->at = "tls-failed";
    fault->setting = NULL;
    snprintf(fault->msg, sizeof fault->msg, "%s", msg);
}

struct tls_ctx *tls_ctx_new(const struct config *cfg, struct config_error *err,
                            struct run_error *fault)
{
    struct tls_ctx *t = calloc(1, sizeof *t);
    if (t == NULL) {
        fault_at(fault, "out of memory");
        return NULL;
    }
    t->verify = cfg->verify;
    t->ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
    if (t->ctx == NULL) {
        fault_at(fault, "cannot create the TLS context");
        goto fail;
    }

    int min = cfg->tls_min == 13 ? WOLFSSL_TLSV1_3 : WOLFSSL_TLSV1_2;
    if (wolfSSL_CTX_SetMinVersion(t->ctx, min) != WOLFSSL_SUCCESS
        || wolfSSL_CTX_set_cipher_list(t->ctx, suites) != WOLFSSL_SUCCESS) {
        fail(err, "--tls-min", "%sthe TLS library refused the protocol "
             "settings", NULL);
        goto fail;
    }
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (wolfSSL_CTX_UseSupportedCurve(t->ctx, groups[i]) != WOLFSSL_SUCCESS) {
            fault_at(fault, "the TLS library refused the key-exchange groups");
            goto fail;
        }

    /* Explicit even when it looks like the default: Debian's library
     * defaults to VERIFY_NONE for clients. */
    tls_ctx_on_verify(t, NULL);
    if (cfg->verify != CONFIG_VERIFY_NONE && load_trust(t->ctx, cfg, err) < 0)
        goto fail;
    if (load_identity(t->ctx, cfg, err) < 0)
        goto fail;
    return t;
fail:
    tls_ctx_free(t);
    return NULL;
}

void tls_ctx_free(struct tls_ctx *t)
{
    if (t == NULL)
        return;
    if (t->ctx)
        wolfSSL_CTX_free(t->ctx);
    free(t);
}

void *tls_ctx_handle(struct tls_ctx *t)
{
    return t->ctx;
}

void tls_ctx_on_verify(struct tls_ctx *t, tls_verify_cb cb)
{
    wolfSSL_CTX_set_verify(t->ctx, t->verify == CONFIG_VERIFY_NONE
                                       ? WOLFSSL_VERIFY_NONE : WOLFSSL_VERIFY_PEER,
                           cb);
}

enum config_verify tls_ctx_verify(const struct tls_ctx *t)
{
    return t->verify;
}

/* The alerts with a reason of their own (RFC 8446 §6); others are told by
 * number. */
static enum reason alert_reason(int alert)
{
    switch (alert) {
    case 40: return REASON_ALERT_HANDSHAKE_FAILURE;
    case 42: return REASON_ALERT_BAD_CERTIFICATE;
    case 45: return REASON_ALERT_CERT_EXPIRED;
    case 46: return REASON_ALERT_CERT_UNKNOWN;
    case 47: return REASON_ALERT_ILLEGAL_PARAMETER;
    case 48: return REASON_ALERT_UNKNOWN_CA;
    case 70: return REASON_ALERT_PROTOCOL_VERSION;
    case 71: return REASON_ALERT_INSUFFICIENT_SECURITY;
    case 80: return REASON_ALERT_INTERNAL_ERROR;
    case 112: return REASON_ALERT_UNRECOGNIZED_NAME;
    case 116: return REASON_ALERT_CERT_REQUIRED;
    default: return REASON_ALERT;
    }
}

/* wolfSSL's error codes, which go no further than this file and tlsconn.c. */
static enum reason error_reason(int err)
{
    switch (err) {
    case ASN_AFTER_DATE_E: return REASON_EXPIRED;
    case ASN_BEFORE_DATE_E: return REASON_NOT_YET_VALID;
    case ASN_NO_SIGNER_E: return REASON_UNKNOWN_ISSUER;
    case ASN_SELF_SIGNED_E: return REASON_SELF_SIGNED;
    case ASN_SIG_CONFIRM_E: return REASON_BAD_SIGNATURE;
    case ASN_PATHLEN_SIZE_E:
    case ASN_PATHLEN_INV_E: return REASON_CHAIN_TOO_LONG;
    case DOMAIN_NAME_MISMATCH:
    case IPADDR_MISMATCH: return REASON_NAME_MISMATCH;
    case NO_PEER_CERT: return REASON_NO_PEER_CERT;
    case VERIFY_CERT_ERROR: return REASON_VERIFY_FAILED;
    case VERSION_ERROR: return REASON_VERSION;
    case MATCH_SUITE_ERROR:
    case UNSUPPORTED_SUITE: return REASON_NO_SHARED_SUITE;
    case SOCKET_ERROR_E:
    case SOCKET_PEER_CLOSED_E: return REASON_HANDSHAKE_CLOSED;
    case PARSE_ERROR:
    case UNKNOWN_RECORD_TYPE:
    case LENGTH_ERROR:
    case BUFFER_ERROR: return REASON_NOT_TLS;
    case DECRYPT_ERROR: return REASON_DECRYPT;
    default: return REASON_TLS_ERROR;
    }
}

enum reason tls_reason(int err, int alert, char *buf, size_t len)
{
    enum reason r;

    buf[0] = '\0';
    if (err == FATAL_ERROR) {
        r = alert_reason(alert);
        /* An alert the table does not name is told by its number. */
        if (r == REASON_ALERT && alert >= 0)
            snprintf(buf, len, "server sent alert %d", alert);
        return r;
    }
    r = error_reason(err);
    if (r == REASON_TLS_ERROR) {
        char e[WOLFSSL_MAX_ERROR_SZ];
        wolfSSL_ERR_error_string_n((unsigned long)err, e, sizeof e);
        snprintf(buf, len, "TLS error %d: %s", err, e);
    }
    return r;
}
