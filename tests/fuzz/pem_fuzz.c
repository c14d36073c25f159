/*
 * pem_fuzz: tls_ctx_new with inline PEM material, as from MEMTUNNEL_CA,
 * MEMTUNNEL_CERT and MEMTUNNEL_KEY.
 *
 * Input: up to three NUL-separated parts: the CA text, then the client
 * certificate and its key.  With one part, only trust is loaded; with two,
 * the key is empty text (config_parse never passes a certificate without
 * a key).
 *
 * Checks, besides memory errors: a failure names the variable at fault,
 * exits 78 and quotes no PEM (no "-----", no line break in the message);
 * a success gives a context that frees cleanly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "pem_fuzz: contract broken: %s\n", what);
        abort();
    }
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
    char *copy = malloc(size + 1);
    char *part[3] = { NULL, NULL, NULL };
    size_t nparts = 0;
    struct config cfg;
    struct config_error err;
    struct run_error fault = { 0 };

    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    for (char *p = copy; p <= copy + size && nparts < 3;) {
        part[nparts++] = p;
        p += strlen(p) + 1;
    }

    memset(&cfg, 0, sizeof cfg);
    memset(&err, 0, sizeof err);
    cfg.verify = CONFIG_VERIFY_FULL;
    cfg.tls_min = 12;
    cfg.ca_pem = part[0];
    cfg.ca_source = "MEMTUNNEL_CA";
    if (nparts >= 2) {
        cfg.cert_pem = part[1];
        cfg.cert_source = "MEMTUNNEL_CERT";
        cfg.key_pem = nparts == 3 ? part[2] : "";
        cfg.key_source = "MEMTUNNEL_KEY";
    }

    struct tls_ctx *ctx = tls_ctx_new(&cfg, &err, &fault);
    if (ctx != NULL) {
        check(tls_ctx_handle(ctx) != NULL, "a context has a handle");
        tls_ctx_free(ctx);
    } else {
        check(err.status == EXIT_CONFIG, "a failure exits 78");
        check(memchr(err.msg, '\0', sizeof err.msg) != NULL && err.msg[0],
              "a failure has a message");
        check(strcmp(err.name, "MEMTUNNEL_CA") == 0
              || strcmp(err.name, "MEMTUNNEL_CERT") == 0
              || strcmp(err.name, "MEMTUNNEL_KEY") == 0
              || err.name[0] == '\0',
              "a failure names the variable at fault");
        /* Quoted PEM would bring its dashes or its line breaks. */
        check(strstr(err.msg, "-----") == NULL && strchr(err.msg, '\n') == NULL,
              "a message quotes no PEM");
    }
    free(copy);
    return 0;
}
