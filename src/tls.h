/*
 * tls: the wolfSSL client context shared by every upstream connection.
 *
 * Debian's libwolfssl is built with OpenSSL-compatible defaults under which
 * a client verifies nothing, accepts TLS 1.1 and offers anonymous and RC4
 * suites.  So every security setting is made here explicitly, whatever the
 * library's defaults are: peer verification, minimum version, an explicit
 * suite list, and the key-exchange groups (fast ones first).
 */
#ifndef MEMTUNNEL_TLS_H
#define MEMTUNNEL_TLS_H

#include "config.h"
#include "reason.h"
#include "runerror.h"

struct tls_ctx;

/* Call once before anything else in this module or tlsconn. */
int tls_global_init(void);
void tls_global_cleanup(void);

/*
 * Build the context from cfg: trust (cfg->ca_file, cfg->ca_pem or the
 * system store), client certificate, cfg->verify, cfg->tls_min.  Returns
 * NULL with *err filled in (status EXIT_CONFIG, name = the flag or
 * variable at fault) when the material cannot be loaded, or with *fault
 * filled in (at = "tls-failed") when memory or the library fails.  The PEM
 * text is never copied into err.
 */
struct tls_ctx *tls_ctx_new(const struct config *cfg, struct config_error *err,
                            struct run_error *fault);
void tls_ctx_free(struct tls_ctx *ctx);

/* The wolfSSL WOLFSSL_CTX *, for tlsconn. */
void *tls_ctx_handle(struct tls_ctx *ctx);
enum config_verify tls_ctx_verify(const struct tls_ctx *ctx);

/*
 * Have wolfSSL call cb while it verifies the server's certificates (on the
 * leaf, and on any failure), with the verification mode unchanged.  cb
 * must return its first argument: the verdict stays wolfSSL's.
 */
struct WOLFSSL_X509_STORE_CTX;
typedef int (*tls_verify_cb)(int preverify, struct WOLFSSL_X509_STORE_CTX *store);
void tls_ctx_on_verify(struct tls_ctx *ctx, tls_verify_cb cb);

/*
 * Why a handshake or session failed, from wolfSSL's error code err and the
 * last alert the server sent (alert, or -1).  Returns the reason; when its
 * table words are not the whole story (an alert without a name of its own,
 * a wolfSSL error of no other reason), buf (len bytes) receives the words
 * to log instead ("server sent alert 90", "TLS error -308: ..."), and is
 * set to "" otherwise.
 */
enum reason tls_reason(int err, int alert, char *buf, size_t len);

#endif
