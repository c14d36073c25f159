/*
 * auth_fuzz: auth_reply (auth.c), which judges the server's answer to
 * --auth's login: bytes from the network.
 *
 * Input: one byte choosing the mode (its value mod 3: memcachier,
 * memcached, sasl), then the answer.  Checked besides memory errors (the
 * answer is copied to a buffer of exactly its size):
 *   - a success is exactly one whole answer: "STORED\r\n" for the text
 *     modes; for sasl a response header to our SASL_AUTH (magic 0x81,
 *     opcode 0x21, our opaque, status 0) and its whole body, no more;
 *   - the verdict is stable: an answer still "more" has every prefix
 *     "more" too, and a success's every proper prefix is "more";
 *   - a failure always says why with an --auth reason.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "auth_fuzz: contract broken: %s\n", what);
        abort();
    }
}

static int is_success(enum config_auth mode, const uint8_t *p, size_t n)
{
    if (mode != CONFIG_AUTH_SASL)
        return n == 8 && memcmp(p, "STORED\r\n", 8) == 0;
    if (n < 24)
        return 0;
    uint32_t body = (uint32_t)p[8] << 24 | (uint32_t)p[9] << 16
                    | (uint32_t)p[10] << 8 | p[11];
    return p[0] == 0x81 && p[1] == 0x21 && p[6] == 0 && p[7] == 0
           && memcmp(p + 12, "mtau", 4) == 0 && n == 24 + (size_t)body;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum config_auth modes[] = {
        CONFIG_AUTH_MEMCACHIER, CONFIG_AUTH_MEMCACHED, CONFIG_AUTH_SASL,
    };
    enum reason why;

    if (size < 1)
        return 0;
    enum config_auth mode = modes[data[0] % 3];
    size_t n = size - 1;
    uint8_t *p = malloc(n ? n : 1);
    if (p == NULL)
        return 0;
    memcpy(p, data + 1, n);

    enum auth_verdict v = auth_reply(mode, p, n, &why);
    check(v == AUTH_MORE || v == AUTH_OK || v == AUTH_FAILED, "a verdict");
    check((v == AUTH_OK) == is_success(mode, p, n), "success is one whole answer");
    if (v == AUTH_FAILED)
        check(why == REASON_AUTH_REFUSED || why == REASON_AUTH_UNSUPPORTED
              || why == REASON_AUTH_UNEXPECTED, "a failure says why");
    if ((v == AUTH_MORE || v == AUTH_OK) && n > 0)
        check(auth_reply(mode, p, n - 1, &why) == AUTH_MORE,
              "a prefix of an answer still coming, or of a success, is more");
    free(p);
    return 0;
}
