/* sys/digest: see digest.h. */
#include "sys/digest.h"

#include <assert.h>
#include <openssl/evp.h>
#include <pthread.h>

/* OpenSSL 3 looks EVP_sha256() up in its providers on every init unless the algorithm is
 * fetched once and reused: a third of an API key's hashing went to that lookup. Fetched on
 * first use and kept for the life of the process. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void digest_sha256(const void *const *parts, const size_t *lens, size_t count,
                   uint8_t out[DIGEST_SHA256_LEN])
{
    pthread_once(&sha256_once, fetch_sha256);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = 0;
    /* The only failure is memory exhaustion inside OpenSSL; there is nothing to recover. */
    int ok = ctx && EVP_DigestInit_ex(ctx, sha256_md ? sha256_md : EVP_sha256(), NULL);
    for (size_t i = 0; ok && i < count; i++)
        ok = EVP_DigestUpdate(ctx, parts[i], lens[i]);
    ok = ok && EVP_DigestFinal_ex(ctx, out, &n);
    assert(ok && n == DIGEST_SHA256_LEN);
    (void)ok;
    EVP_MD_CTX_free(ctx);
}

void digest_to_hex(const uint8_t *bytes, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex[bytes[i] >> 4];
        out[2 * i + 1] = hex[bytes[i] & 15];
    }
    out[2 * len] = '\0';
}

void digest_sha256_hex(const void *data, size_t len, char out[DIGEST_SHA256_HEX])
{
    uint8_t d[DIGEST_SHA256_LEN];
    const void *parts[1] = {data};
    digest_sha256(parts, &len, 1, d);
    digest_to_hex(d, sizeof d, out);
}

void digest_uuid(const void *const *parts, const size_t *lens, size_t count, char out[UUID_TEXT])
{
    uint8_t d[DIGEST_SHA256_LEN];
    digest_sha256(parts, lens, count, d);
    d[6] = (uint8_t)(0x80 | (d[6] & 0x0f)); /* version 8 */
    d[8] = (uint8_t)(0x80 | (d[8] & 0x3f)); /* RFC 9562 variant */
    uuid_format(d, out);                    /* the first UUID_LEN of the hash's bytes */
}
