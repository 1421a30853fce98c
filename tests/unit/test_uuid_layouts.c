/*
 * The lago_ids Tally hands out, pinned byte for byte: clients store them, so the text each
 * maker writes from the same input may never change. Each maker lays out its own 16 bytes and
 * version bits (engine/command: time-ordered version 7; api/events: an event's fingerprint as
 * version 8; sys/digest: a name's SHA-256 as version 8; sys/entropy: random version 4) and
 * core/uuid writes them all as text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "api/events.h"
#include "engine/command.h"
#include "sys/entropy.h"

static void command_ids(void **state)
{
    (void)state;
    struct command cmd;
    memset(&cmd, 0, sizeof cmd);
    for (int i = 0; i < 16; i++)
        cmd.id_seed[i] = (uint8_t)i;
    char id[UUID_TEXT];
    /* 2024-01-02T03:04:05.678Z: the first 48 bits are its Unix milliseconds */
    command_new_id_at(&cmd, (tally_time)1704164645678000, id);
    assert_string_equal(id, "018cc820-db2e-7000-ab68-efe6f296bd92");
    command_new_id_at(&cmd, (tally_time)1704164645678000, id); /* the counter moves on */
    assert_string_equal(id, "018cc820-db2e-7001-b484-f072aabc0164");
    cmd.ids_made = 0x1234;
    cmd.now = 0; /* no time: zero milliseconds */
    command_new_id(&cmd, id);
    assert_string_equal(id, "00000000-0000-7234-93fe-3cd1448931ff");
}

static void event_ids(void **state)
{
    (void)state;
    char id[UUID_TEXT];
    events_lago_id((struct siphash128){.lo = 0x0123456789abcdefULL, .hi = 0xfedcba9876543210ULL},
                   id);
    assert_string_equal(id, "fedcba98-7654-8210-8123-456789abcdef");
    events_lago_id((struct siphash128){.lo = 0, .hi = 0}, id);
    assert_string_equal(id, "00000000-0000-8000-8000-000000000000");
    events_lago_id((struct siphash128){.lo = UINT64_MAX, .hi = UINT64_MAX}, id);
    assert_string_equal(id, "ffffffff-ffff-8fff-bfff-ffffffffffff");
}

static void random_ids(void **state)
{
    (void)state;
    char id[UUID_TEXT];
    assert_true(entropy_uuid(id));
    assert_int_equal(strlen(id), 36);
    assert_int_equal(id[8], '-');
    assert_int_equal(id[13], '-');
    assert_int_equal(id[14], '4'); /* version 4 */
    assert_int_equal(id[18], '-');
    assert_non_null(strchr("89ab", id[19])); /* RFC 4122 variant */
    assert_int_equal(id[23], '-');
    for (int i = 0; i < 36; i++)
        assert_non_null(strchr("0123456789abcdef-", id[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(command_ids),
        cmocka_unit_test(event_ids),
        cmocka_unit_test(random_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
