/*
 * util/cmdline: the little parsing both mains share: "--name=value" spellings, "HOST:PORT"
 * listen addresses and whole-number options.
 *
 * Threads: any (no globals; cmdline_split_equals allocates with malloc).
 */
#ifndef TALLY_UTIL_CMDLINE_H
#define TALLY_UTIL_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CMDLINE_HOST_MAX 256

/*
 * The arguments with every "--name=value" split in two, "--name" and "value" (at the first
 * '='), so that a main reads one spelling: a new NULL-terminated array in *out (the caller
 * frees it with free(); the strings are the originals', or in the same block). How many; -1
 * if memory ran out.
 */
int cmdline_split_equals(int argc, char **argv, char ***out);

/* A main's body: `run` with the arguments split so (an out-of-memory exit 1 says so, under
 * `program`'s name); its status. */
int cmdline_run(const char *program, int argc, char **argv, int (*run)(int argc, char **argv));

/* "127.0.0.1:3000", "[::1]:3000", "localhost:0". */
bool cmdline_parse_listen(const char *text, char host[CMDLINE_HOST_MAX], uint16_t *port);
/* A decimal whole number in [min, max]. */
bool cmdline_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out);

#endif
