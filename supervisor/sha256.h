/* SHA-256 for the content store and chain ids, with two implementations
 * picked at link time (supervisor/meson.build):
 *   sha256-mbedtls.c  berth-supervisor and berth-ctr: mbed TLS, which nng
 *                     maps anyway; OpenSSL's first digest would leave
 *                     ~1.3 MB of libcrypto resident in the daemon;
 *   sha256-openssl.c  berth-fetch, which hashes every byte of every pull:
 *                     OpenSSL's SHA-NI/AVX2 code is several times faster
 *                     than mbed TLS's portable C. */
#pragma once

#include <stddef.h>

struct sha256;

/* NULL when out of memory. */
struct sha256 *sha256_new(void);
/* Back to the empty message. */
int sha256_reset(struct sha256 *h);
int sha256_update(struct sha256 *h, const void *data, size_t len);
int sha256_final(struct sha256 *h, unsigned char md[32]);
void sha256_free(struct sha256 *h);
/* The digest of a buffer. */
int sha256_buf(const void *data, size_t len, unsigned char md[32]);
