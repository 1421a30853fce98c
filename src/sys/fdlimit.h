/*
 * sys/fdlimit: the process's open-files limit, raised for what the server must hold.
 *
 * Why: each client connection is a descriptor, and a shell or service manager often starts a
 * process with a soft RLIMIT_NOFILE of 1024 under a far higher hard limit. Left there, tallyd
 * held about 1000 connections rather than its 4096, and the rest waited unanswered without a
 * word (an audit). Any process may raise its soft limit up to the hard one.
 *
 * Threads: the program's main thread, before it starts any other.
 */
#ifndef TALLY_SYS_FDLIMIT_H
#define TALLY_SYS_FDLIMIT_H

#include <stdint.h>

/* Raises the soft open-files limit to `want` descriptors, or as near as the hard limit lets
 * (never lowers it). Returns the soft limit in effect afterwards (UINT64_MAX: unlimited). */
uint64_t fdlimit_raise(uint64_t want);

#endif
