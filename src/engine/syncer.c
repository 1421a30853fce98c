/*
 * engine/syncer.c: the thread that turns commits into acknowledgements (syncer.h says why).
 *
 * One list of handed-over commands, in commit order, under one lock. Each round takes the
 * whole list, syncs once if any command in it needs it, and answers the list in order.
 */
#include "engine/syncer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct syncer {
    syncer_sync_fn sync;
    syncer_idle_fn idle;
    void *ctx; /* borrowed */
    pthread_t thread;

    pthread_mutex_t lock; /* guards the list and `stopping` */
    pthread_cond_t wake;
    struct command *head, *tail;
    bool stopping;

    /* One sync at a time, whoever makes it: a failed writeback is reported to one fdatasync of
     * the log's descriptor only, so two at once could leave the error to one caller while the
     * other answers as durable pages that never reached the disk (an audit found the writer's
     * own sync before a snapshot fail unseen, and the syncer acknowledging after it). */
    pthread_mutex_t sync_lock;
    atomic_bool busy;   /* set by syncer_hand_over, cleared once all is answered */
    atomic_bool failed; /* set under sync_lock, before the failed sync's caller goes on */
    _Atomic uint64_t syncs;
};

/* Whether answering this list needs a sync: some command in it was committed. */
static bool needs_sync(const struct command *list)
{
    for (const struct command *c = list; c; c = c->next)
        if (c->result != COMMAND_STORE_FAILED)
            return true;
    return false;
}

static void answer(struct command *list, bool durable)
{
    while (list) {
        struct command *next = list->next;
        list->next = NULL;
        if (!durable && list->result != COMMAND_STORE_FAILED)
            list->result = COMMAND_NOT_DURABLE;
        list->done(list);
        list = next;
    }
}

bool syncer_sync_now(struct syncer *s)
{
    pthread_mutex_lock(&s->sync_lock);
    bool ok = !atomic_load(&s->failed);
    if (ok) {
        ok = s->sync(s->ctx);
        atomic_fetch_add(&s->syncs, 1);
        if (!ok)
            atomic_store(&s->failed, true);
    }
    pthread_mutex_unlock(&s->sync_lock);
    return ok;
}

/* Syncs (if anything in the list needs it and no sync has failed) and answers the list. */
static void settle(struct syncer *s, struct command *list)
{
    if (needs_sync(list))
        (void)syncer_sync_now(s); /* a failure is sticky: read below */
    answer(list, !atomic_load(&s->failed));
}

static void *syncer_main(void *arg)
{
    struct syncer *s = arg;
    pthread_setname_np(pthread_self(), "tally-syncer"); /* for top -H and /proc; best effort */
    for (;;) {
        pthread_mutex_lock(&s->lock);
        if (!s->head && atomic_load(&s->busy)) { /* everything handed over is answered */
            atomic_store(&s->busy, false);
            pthread_mutex_unlock(&s->lock);
            if (s->idle)
                s->idle(s->ctx);
            pthread_mutex_lock(&s->lock);
        }
        while (!s->head && !s->stopping)
            pthread_cond_wait(&s->wake, &s->lock);
        struct command *list = s->head;
        s->head = s->tail = NULL;
        pthread_mutex_unlock(&s->lock);
        if (!list)
            return NULL; /* stopping, and nothing left to answer */
        settle(s, list);
    }
}

struct syncer *syncer_start(syncer_sync_fn sync, syncer_idle_fn idle, void *ctx)
{
    struct syncer *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->sync = sync;
    s->idle = idle;
    s->ctx = ctx;
    atomic_init(&s->busy, false);
    atomic_init(&s->failed, false);
    atomic_init(&s->syncs, 0);
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->sync_lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    if (pthread_create(&s->thread, NULL, syncer_main, s) != 0) {
        pthread_mutex_destroy(&s->lock);
        pthread_mutex_destroy(&s->sync_lock);
        pthread_cond_destroy(&s->wake);
        free(s);
        return NULL;
    }
    return s;
}

void syncer_hand_over(struct syncer *s, struct command *group)
{
    if (!group)
        return;
    struct command *last = group;
    while (last->next)
        last = last->next;
    pthread_mutex_lock(&s->lock);
    if (s->tail)
        s->tail->next = group;
    else
        s->head = group;
    s->tail = last;
    atomic_store(&s->busy, true);
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

bool syncer_settle_here(struct syncer *s, struct command *group)
{
    /* Only the writer hands over, and it is the caller: if nothing is unanswered now, the
     * syncer's thread has nothing to do until the caller hands something over. */
    if (atomic_load(&s->busy))
        return false;
    settle(s, group);
    return true;
}

bool syncer_busy(struct syncer *s)
{
    return atomic_load(&s->busy);
}

bool syncer_failed(struct syncer *s)
{
    return atomic_load(&s->failed);
}

uint64_t syncer_syncs(struct syncer *s)
{
    return atomic_load(&s->syncs);
}

void syncer_stop(struct syncer *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->sync_lock);
    pthread_cond_destroy(&s->wake);
    free(s);
}
