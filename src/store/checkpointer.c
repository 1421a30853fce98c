/*
 * store/checkpointer.c: the checkpoint thread (checkpointer.h says why).
 *
 * The hook and the thread agree through two numbers: `log_pages`, the log's length at the
 * writer's last commit, and `copied_to`, where the last checkpoint stopped copying. A
 * checkpoint is due once the log has grown by CHECKPOINTER_PAGES past that point, or has
 * restarted and grown that much again. The hook takes the lock only to wake the thread, and
 * not while a checkpoint runs: the thread looks at `log_pages` again when it ends.
 */
#include "store/checkpointer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

struct checkpointer {
    sqlite3 *writer; /* borrowed: only its WAL hook is touched */
    sqlite3 *db;     /* owned: the thread's connection */
    pthread_t thread;

    pthread_mutex_t lock; /* guards `due` and `stopping` */
    pthread_cond_t wake;
    bool due, stopping;

    atomic_int log_pages; /* written by the hook */
    atomic_int copied_to; /* written by the thread */
    atomic_bool running;
    _Atomic uint64_t runs, failures;
};

static bool checkpoint_due(int log_pages, int copied_to)
{
    if (log_pages < CHECKPOINTER_PAGES)
        return false;
    return log_pages < copied_to /* the log restarted */ ||
           log_pages - copied_to >= CHECKPOINTER_PAGES;
}

/* SQLite's WAL hook: runs on the writer's thread after each commit, with the log's length. */
static int on_commit(void *arg, sqlite3 *db, const char *schema, int log_pages)
{
    (void)db;
    (void)schema;
    struct checkpointer *c = arg;
    atomic_store(&c->log_pages, log_pages);
    if (atomic_load(&c->running) || !checkpoint_due(log_pages, atomic_load(&c->copied_to)))
        return SQLITE_OK;
    pthread_mutex_lock(&c->lock);
    c->due = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    return SQLITE_OK;
}

static void checkpoint(struct checkpointer *c)
{
    int log_frames = 0, copied_frames = 0;
    int rc = sqlite3_wal_checkpoint_v2(c->db, "main", SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                       &copied_frames);
    atomic_fetch_add(&c->runs, 1);
    if (rc != SQLITE_OK || log_frames < 0 /* not in WAL mode: cannot happen */) {
        atomic_fetch_add(&c->failures, 1);
        /* retry after another checkpoint's worth of pages, not in a loop */
        copied_frames = atomic_load(&c->log_pages);
    }
    atomic_store(&c->copied_to, copied_frames);
}

static void *checkpointer_main(void *arg)
{
    struct checkpointer *c = arg;
    pthread_setname_np(pthread_self(), "tally-ckpt"); /* for top -H; best effort */
    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (!c->due && !c->stopping)
            pthread_cond_wait(&c->wake, &c->lock);
        if (c->stopping)
            break;
        c->due = false;
        atomic_store(&c->running, true);
        pthread_mutex_unlock(&c->lock);
        checkpoint(c);
        atomic_store(&c->running, false);
        /* commits during the checkpoint did not wake us: look at where the log is now */
        bool again = checkpoint_due(atomic_load(&c->log_pages), atomic_load(&c->copied_to));
        pthread_mutex_lock(&c->lock);
        c->due = c->due || again;
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

struct checkpointer *checkpointer_start(sqlite3 *writer, sqlite3 *own)
{
    struct checkpointer *c = calloc(1, sizeof *c);
    if (!c) {
        sqlite3_close(own);
        return NULL;
    }
    c->writer = writer;
    c->db = own;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->wake, NULL);
    if (pthread_create(&c->thread, NULL, checkpointer_main, c) != 0) {
        pthread_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->wake);
        sqlite3_close(own);
        free(c);
        return NULL;
    }
    sqlite3_wal_hook(writer, on_commit, c); /* replaces the automatic checkpoint */
    return c;
}

void checkpointer_stop(struct checkpointer *c)
{
    if (!c)
        return;
    sqlite3_wal_autocheckpoint(c->writer, CHECKPOINTER_PAGES); /* removes on_commit */
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->wake);
    sqlite3_close(c->db);
    free(c);
}

void checkpointer_stats(struct checkpointer *c, struct checkpointer_stats *out)
{
    *out = (struct checkpointer_stats){.runs = atomic_load(&c->runs),
                                       .failures = atomic_load(&c->failures)};
}
