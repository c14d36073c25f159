/*
 * cert_fuzz: certinfo_parse_der, which copies what `memtunnel check` and
 * the expiry warnings show (names, alternative names, dates) out of a
 * server's certificate: text from the network into fixed buffers.
 *
 * Input: one certificate, DER, or PEM (converted to DER first, as a
 * certificate from MEMTUNNEL_CA would be).
 *
 * Checks, besides memory errors: a failure is -EBADMSG or -ENOMEM; a
 * success has terminated, printable text (no control bytes) and no more
 * alternative names than it has room for or than it counted.
 */
#define _GNU_SOURCE             /* memmem */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "certinfo.h"
#include "tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "cert_fuzz: contract broken: %s\n", what);
        abort();
    }
}

static void check_text(const char *s, size_t cap, const char *what)
{
    const char *end = memchr(s, '\0', cap);
    check(end != NULL, what);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        check(*p >= 0x20 && *p != 0x7f, what);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    check(tls_global_init() == 0, "tls_global_init");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct certinfo ci;
    unsigned char *der = NULL;
    const unsigned char *in = data;
    size_t len = size;

    if (size > (1u << 16))
        return 0;
    if (memmem(data, size, "-----BEGIN", 10) != NULL) {
        der = malloc(size);
        if (der == NULL)
            return 0;
        int n = wolfSSL_CertPemToDer(data, (int)size, der, (int)size, CERT_TYPE);
        if (n <= 0) {
            free(der);
            return 0;
        }
        in = der;
        len = (size_t)n;
    }
    memset(&ci, 0xa5, sizeof ci);
    int r = certinfo_parse_der(in, len, &ci);
    if (r == 0) {
        check_text(ci.subject, sizeof ci.subject, "a printable subject");
        check_text(ci.issuer, sizeof ci.issuer, "a printable issuer");
        check(ci.nsans <= CERTINFO_SAN_MAX, "no more names than room");
        check(ci.nsans <= ci.sans_total, "no more names kept than counted");
        for (size_t i = 0; i < ci.nsans; i++) {
            check(ci.sans[i].type == CERTINFO_SAN_DNS || ci.sans[i].type == CERTINFO_SAN_IP,
                  "a name is DNS or IP");
            check_text(ci.sans[i].name, sizeof ci.sans[i].name, "a printable name");
        }
    } else {
        check(r == -EBADMSG || r == -ENOMEM, "a failure is -EBADMSG or -ENOMEM");
    }
    free(der);
    return 0;
}
