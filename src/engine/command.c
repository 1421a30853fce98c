/* engine/command: see command.h. */
#include "engine/command.h"

#include <stdarg.h>
#include <stdio.h>

#include "core/siphash.h"

/*
 * Time-ordered (the layout of a version-7 UUID: 48 bits of Unix milliseconds first), so that
 * the rows the writer makes land at the end of their lago_id index instead of on a random page
 * of it: a random id costs a random page write per row (DESIGN.md section 5).
 */
void command_new_id(struct command *cmd, char out[UUID_TEXT])
{
    command_new_id_at(cmd, cmd->now, out);
}

void command_new_id_at(struct command *cmd, tally_time at, char out[UUID_TEXT])
{
    uint64_t n = cmd->ids_made++;
    struct siphash128 h = siphash128(cmd->id_seed, &n, sizeof n);
    uint64_t ms = at > 0 ? (uint64_t)at / 1000 : 0;
    uint8_t b[UUID_LEN];
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(ms >> (8 * (5 - i)));
    for (int i = 6; i < 16; i++)
        b[i] = (uint8_t)((i < 14 ? h.lo >> (8 * (i - 6)) : h.hi >> (8 * (i - 14))));
    /* within one millisecond the counter keeps ids of one command in order */
    b[6] = (uint8_t)(0x70 | ((n >> 8) & 0x0f)); /* version 7 */
    b[7] = (uint8_t)n;
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    uuid_format(b, out);
}

void command_set_message(struct command *cmd, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    cmd->invalid_message = arena_vprintf(cmd->arena, format, ap);
    va_end(ap);
}
