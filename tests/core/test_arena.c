/* util/arena: texts made in an arena, the short and the longer than a block, and what a reset
 * keeps. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "util/arena.h"

static void printf_writes_the_whole_text(void **state)
{
    (void)state;
    struct arena a;
    arena_init(&a);
    assert_string_equal(arena_printf(&a, "charge %s: its %s", "c1", "model"),
                        "charge c1: its model");
    assert_string_equal(arena_printf(&a, "%s", ""), "");
    /* longer than the first block: measured, not cut at a buffer's size */
    enum { LONG = 3 * ARENA_FIRST_BLOCK };
    char *part = arena_alloc(&a, LONG + 1);
    assert_non_null(part);
    memset(part, 'x', LONG);
    char *text = arena_printf(&a, "[%s]%d", part, 42);
    assert_non_null(text);
    assert_int_equal(strlen(text), LONG + 4);
    assert_int_equal(text[0], '[');
    assert_string_equal(text + LONG + 1, "]42");
    arena_free(&a);
}

static void strndup_copies_and_ends_the_text(void **state)
{
    (void)state;
    struct arena a;
    arena_init(&a);
    char *copy = arena_strndup(&a, "abcdef", 3);
    assert_string_equal(copy, "abc");
    arena_reset(&a);
    assert_int_equal(a.total, 0);
    assert_string_equal(arena_printf(&a, "%d-%d", 1, 2), "1-2");
    arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(printf_writes_the_whole_text),
        cmocka_unit_test(strndup_copies_and_ends_the_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
