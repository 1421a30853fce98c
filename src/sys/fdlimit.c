/*
 * sys/fdlimit: the process's open-files limit, raised for what the server must hold.
 */
#include "sys/fdlimit.h"

#include <sys/resource.h>

static uint64_t as_count(rlim_t v)
{
    return v == RLIM_INFINITY ? UINT64_MAX : (uint64_t)v;
}

uint64_t fdlimit_raise(uint64_t want)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0)
        return 0;
    if (as_count(r.rlim_cur) >= want)
        return as_count(r.rlim_cur);
    rlim_t target = (rlim_t)want;
    if (r.rlim_max != RLIM_INFINITY && r.rlim_max < target)
        target = r.rlim_max;
    struct rlimit raised = {target, r.rlim_max};
    if (target > r.rlim_cur && setrlimit(RLIMIT_NOFILE, &raised) == 0)
        return as_count(target);
    return as_count(r.rlim_cur);
}
