/* core/siphash against OpenSSL's SipHash-2-4 (128-bit output), for every length 0..300 and
 * random keys: an independent implementation must give the same 16 bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <string.h>

#include "core/siphash.h"

static void openssl_siphash(const uint8_t key[16], const uint8_t *data, size_t len, uint8_t out[16])
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
    assert_non_null(mac);
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    size_t size = 16, got = 0;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
                           OSSL_PARAM_construct_end()};
    assert_int_equal(EVP_MAC_init(ctx, key, 16, params), 1);
    assert_int_equal(EVP_MAC_update(ctx, data, len), 1);
    assert_int_equal(EVP_MAC_final(ctx, out, &got, 16), 1);
    assert_int_equal(got, 16);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
}

static void to_bytes(struct siphash128 h, uint8_t out[16])
{
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(h.lo >> (8 * i));
        out[8 + i] = (uint8_t)(h.hi >> (8 * i));
    }
}

static void matches_openssl(void **state)
{
    (void)state;
    uint8_t key[16], data[300], ours[16], theirs[16];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 300; i++)
        data[i] = (uint8_t)i;
    uint64_t x = 0x243F6A8885A308D3u;
    for (int round = 0; round < 8; round++) {
        for (size_t len = 0; len <= sizeof data; len++) {
            to_bytes(siphash128(key, data, len), ours);
            openssl_siphash(key, data, len, theirs);
            assert_memory_equal(ours, theirs, 16);
        }
        for (int i = 0; i < 16; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            key[i] = (uint8_t)x;
        }
    }
}

static void reference_vector(void **state)
{
    (void)state;
    /* The published first 128-bit vector: key 00..0f, empty message. */
    static const uint8_t expected[16] = {0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6,
                                         0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02, 0x93};
    uint8_t key[16], out[16];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    to_bytes(siphash128(key, "", 0), out);
    assert_memory_equal(out, expected, 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reference_vector),
        cmocka_unit_test(matches_openssl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
