/* engine/command: see command.h. */
#include "engine/command.h"

#include "core/siphash.h"

void command_new_id(struct command *cmd, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t n = cmd->ids_made++;
    struct siphash128 h = siphash128(cmd->id_seed, &n, sizeof n);
    uint8_t b[16];
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(h.lo >> (8 * i));
        b[8 + i] = (uint8_t)(h.hi >> (8 * i));
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 15];
    }
    *p = '\0';
}
