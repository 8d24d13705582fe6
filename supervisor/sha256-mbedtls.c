/* sha256.h over mbed TLS (2.x and 3.x: the _ret names were renamed). */
#include "sha256.h"

#include <errno.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>
#include <stdlib.h>

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define starts mbedtls_sha256_starts
#define update mbedtls_sha256_update
#define finish mbedtls_sha256_finish
#define oneshot mbedtls_sha256
#else
#define starts mbedtls_sha256_starts_ret
#define update mbedtls_sha256_update_ret
#define finish mbedtls_sha256_finish_ret
#define oneshot mbedtls_sha256_ret
#endif

struct sha256 {
        mbedtls_sha256_context c;
};

struct sha256 *sha256_new(void)
{
        struct sha256 *h = malloc(sizeof(*h));
        if (!h)
                return NULL;
        mbedtls_sha256_init(&h->c);
        if (starts(&h->c, 0) != 0) {
                sha256_free(h);
                return NULL;
        }
        return h;
}

int sha256_reset(struct sha256 *h)
{
        return starts(&h->c, 0) == 0 ? 0 : -EIO;
}

int sha256_update(struct sha256 *h, const void *data, size_t len)
{
        return update(&h->c, data, len) == 0 ? 0 : -EIO;
}

int sha256_final(struct sha256 *h, unsigned char md[32])
{
        return finish(&h->c, md) == 0 ? 0 : -EIO;
}

void sha256_free(struct sha256 *h)
{
        if (!h)
                return;
        mbedtls_sha256_free(&h->c);
        free(h);
}

int sha256_buf(const void *data, size_t len, unsigned char md[32])
{
        return oneshot(data, len, md, 0) == 0 ? 0 : -EIO;
}
