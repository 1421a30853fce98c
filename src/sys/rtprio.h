/*
 * sys/rtprio: real-time scheduling for the threads a caller is about to create.
 *
 * Why: when an ingest at full speed keeps every core busy, a thread woken by a request waits
 * for a core behind the writer, the load generator and the other HTTP threads, and a read
 * answered from a published view (current usage, a few microseconds of work) waits
 * milliseconds. A thread under SCHED_FIFO runs as soon as it wakes. New threads take their
 * creator's policy (glibc's default attributes inherit it), so the caller raises itself,
 * creates them, and comes back down: nothing else it creates later is raised.
 *
 * Threads: any; each call changes the calling thread only.
 */
#ifndef TALLY_SYS_RTPRIO_H
#define TALLY_SYS_RTPRIO_H

#include <stdbool.h>
#include <sched.h>
#include <stddef.h>

#define RTPRIO_ERR_MAX 256

/* The lowest real-time priority: above every ordinary thread, below the kernel's own. */
#define RTPRIO_FIFO_PRIORITY 1

struct rtprio_saved {
    int policy;
    struct sched_param param;
};

/* Puts the calling thread under SCHED_FIFO, saving its policy in *saved. False, with why in
 * err, changing nothing: the process needs CAP_SYS_NICE (root has it, unless a container's
 * capability set dropped it, as Docker's default does) or an RLIMIT_RTPRIO of 1 or more. */
bool rtprio_raise(struct rtprio_saved *saved, char err[RTPRIO_ERR_MAX]);
/* Puts the calling thread back as rtprio_raise found it. */
void rtprio_restore(const struct rtprio_saved *saved);
/* Whether rtprio_raise would succeed on the calling thread (it is tried and undone at once):
 * false with why in err. Lets a start refuse before its long work, not after it. */
bool rtprio_allowed(char err[RTPRIO_ERR_MAX]);

#endif
