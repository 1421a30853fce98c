/* sys/digest's name-based UUIDs: SHA-256 of the parts laid out as an RFC 9562 version 8 UUID,
 * the same for the same bytes, whatever the parts' boundaries. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sys/digest.h"

static void uuid_of(const char *a, const char *b, char out[UUID_TEXT])
{
    const void *parts[] = {a, b};
    const size_t lens[] = {strlen(a), strlen(b)};
    digest_uuid(parts, lens, 2, out);
}

static void known_vector(void **state)
{
    (void)state;
    /* SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 ...: the version nibble (c -> 8)
     * and the variant bits (0x41 -> 0x81) set, the rest the hash's */
    char id[UUID_TEXT];
    uuid_of("abc", "", id);
    assert_string_equal(id, "ba7816bf-8f01-8fea-8141-40de5dae2223");
    uuid_of("a", "bc", id); /* the bytes count, not where the parts split */
    assert_string_equal(id, "ba7816bf-8f01-8fea-8141-40de5dae2223");
}

static void version_and_variant(void **state)
{
    (void)state;
    char id[UUID_TEXT], other[UUID_TEXT];
    for (int i = 0; i < 200; i++) {
        char name[16];
        snprintf(name, sizeof name, "n%d", i);
        uuid_of("label\n", name, id);
        assert_int_equal(strlen(id), 36);
        assert_int_equal(id[14], '8');
        assert_non_null(strchr("89ab", id[19]));
        for (int k = 0; k < 36; k++)
            if (k == 8 || k == 13 || k == 18 || k == 23)
                assert_int_equal(id[k], '-');
            else
                assert_non_null(strchr("0123456789abcdef", id[k]));
        uuid_of("label\n", name, other); /* again: the same */
        assert_string_equal(id, other);
        uuid_of("other label\n", name, other); /* another label: another id */
        assert_string_not_equal(id, other);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_vector),
        cmocka_unit_test(version_and_variant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
