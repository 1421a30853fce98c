/* sys/rtprio: see rtprio.h. */
#include "sys/rtprio.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

bool rtprio_raise(struct rtprio_saved *saved, char err[RTPRIO_ERR_MAX])
{
    int e = pthread_getschedparam(pthread_self(), &saved->policy, &saved->param);
    if (e == 0) {
        struct sched_param fifo = {.sched_priority = RTPRIO_FIFO_PRIORITY};
        e = pthread_setschedparam(pthread_self(), SCHED_FIFO, &fifo);
    }
    if (e != 0)
        snprintf(err, RTPRIO_ERR_MAX, "cannot run threads under SCHED_FIFO: %s%s", strerror(e),
                 e == EPERM ? " (it needs CAP_SYS_NICE, which root in a container may lack, or "
                              "a real-time priority limit of 1 or more: ulimit -r)"
                            : "");
    return e == 0;
}

void rtprio_restore(const struct rtprio_saved *saved)
{
    /* Going back down needs no privilege, and the policy was the thread's own a moment ago:
     * nothing for this to fail on. */
    (void)pthread_setschedparam(pthread_self(), saved->policy, &saved->param);
}

bool rtprio_allowed(char err[RTPRIO_ERR_MAX])
{
    struct rtprio_saved saved;
    if (!rtprio_raise(&saved, err))
        return false;
    rtprio_restore(&saved);
    return true;
}
