/*
 * util/cmdline: the little parsing both mains share: "HOST:PORT" listen addresses and
 * whole-number options.
 */
#ifndef TALLY_UTIL_CMDLINE_H
#define TALLY_UTIL_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CMDLINE_HOST_MAX 256

/* "127.0.0.1:3000", "[::1]:3000", "localhost:0". */
bool cmdline_parse_listen(const char *text, char host[CMDLINE_HOST_MAX], uint16_t *port);
/* A decimal whole number in [min, max]. */
bool cmdline_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out);

#endif
