/*
 * api/conn_watch: closes the connections whose client has closed its side while nothing is
 * being answered on them (see conn_watch.h for why libmicrohttpd does not).
 */
#include "api/conn_watch.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

struct conn_slot {
    struct conn_slot *prev, *next; /* under the watch's lock */
    struct conn_watch *watch;
    int fd;
    _Atomic uint64_t activity; /* callbacks so far */
    _Atomic bool busy;
    /* the watch thread's own, under the lock: the activity when the peer was first seen
     * closed with nothing answered, and whether it was at the last look */
    uint64_t seen;
    bool suspect;
};

struct conn_watch {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    struct conn_slot *head;
    bool stop;
    _Atomic uint64_t *closes; /* counted there */
};

/* Whether the peer's FIN has come and libmicrohttpd has read every byte before it: a busy HTTP
 * thread may not have read the last request yet, and that one may be whole. */
static bool peer_gone_all_read(int fd)
{
    struct tcp_info info;
    socklen_t len = sizeof info;
    int unread = 0;
    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 &&
           info.tcpi_state == TCP_CLOSE_WAIT && ioctl(fd, SIOCINQ, &unread) == 0 && unread == 0;
}

/* Under the lock. */
static void look(struct conn_watch *w)
{
    for (struct conn_slot *s = w->head; s; s = s->next) {
        uint64_t activity = atomic_load(&s->activity);
        if (atomic_load(&s->busy) || !peer_gone_all_read(s->fd)) {
            s->suspect = false;
            continue;
        }
        if (s->suspect && s->seen == activity) {
            /* no callback over a whole interval and its client gone: nothing more can come;
             * libmicrohttpd sees the hang-up and closes it */
            if (shutdown(s->fd, SHUT_RDWR) == 0)
                atomic_fetch_add_explicit(w->closes, 1, memory_order_relaxed);
            s->suspect = false;
            continue;
        }
        s->suspect = true;
        s->seen = activity;
    }
}

static void *watch_main(void *arg)
{
    struct conn_watch *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)CONN_WATCH_INTERVAL_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        while (!w->stop && pthread_cond_timedwait(&w->wake, &w->lock, &until) != ETIMEDOUT)
            ;
        if (!w->stop)
            look(w);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

struct conn_watch *conn_watch_start(_Atomic uint64_t *closes)
{
    struct conn_watch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->closes = closes;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&w->lock, NULL);
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
    }
    return w;
}

void conn_watch_stop(struct conn_watch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    while (w->head) { /* none, when libmicrohttpd stopped first; freed all the same */
        struct conn_slot *s = w->head;
        w->head = s->next;
        free(s);
    }
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

struct conn_slot *conn_watch_add(struct conn_watch *w, int fd)
{
    struct conn_slot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->fd = fd;
    s->watch = w;
    pthread_mutex_lock(&w->lock);
    s->next = w->head;
    if (w->head)
        w->head->prev = s;
    w->head = s;
    pthread_mutex_unlock(&w->lock);
    return s;
}

void conn_watch_remove(struct conn_watch *w, struct conn_slot *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&w->lock);
    if (s->prev)
        s->prev->next = s->next;
    else
        w->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    pthread_mutex_unlock(&w->lock);
    free(s);
}

void conn_watch_touch(struct conn_slot *s)
{
    if (s)
        atomic_fetch_add_explicit(&s->activity, 1, memory_order_relaxed);
}

void conn_watch_busy(struct conn_slot *s, bool busy)
{
    if (!s)
        return;
    if (!busy) { /* late, it only delays a shut */
        atomic_store(&s->busy, false);
        return;
    }
    /* under the lock: a look that found it idle has shut it already, or sees it busy; set
     * between a look's check and its shutdown, an applied command would go unanswered */
    pthread_mutex_lock(&s->watch->lock);
    atomic_store(&s->busy, true);
    pthread_mutex_unlock(&s->watch->lock);
}
