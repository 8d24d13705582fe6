/* sha256.h over OpenSSL's EVP interface. */
#include "sha256.h"

#include <errno.h>
#include <openssl/evp.h>

struct sha256 *sha256_new(void)
{
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
                EVP_MD_CTX_free(c);
                c = NULL;
        }
        return (struct sha256 *) c;
}

int sha256_reset(struct sha256 *h)
{
        return EVP_DigestInit_ex((EVP_MD_CTX *) h, EVP_sha256(), NULL) == 1 ? 0 : -EIO;
}

int sha256_update(struct sha256 *h, const void *data, size_t len)
{
        return EVP_DigestUpdate((EVP_MD_CTX *) h, data, len) == 1 ? 0 : -EIO;
}

int sha256_final(struct sha256 *h, unsigned char md[32])
{
        unsigned n = 0;
        return EVP_DigestFinal_ex((EVP_MD_CTX *) h, md, &n) == 1 && n == 32 ? 0 : -EIO;
}

void sha256_free(struct sha256 *h)
{
        EVP_MD_CTX_free((EVP_MD_CTX *) h);
}

int sha256_buf(const void *data, size_t len, unsigned char md[32])
{
        unsigned n = 0;
        return EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) == 1 && n == 32 ? 0 : -EIO;
}
