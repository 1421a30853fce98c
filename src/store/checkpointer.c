/*
 * store/checkpointer.c: the checkpoint thread (checkpointer.h says why).
 *
 * The hook counts the frames the writer's commits add (`uncopied`); once a checkpoint's worth
 * is there, it wakes the thread, which zeroes the count as it begins copying. The hook takes
 * the lock only to wake the thread, and not while a checkpoint runs: the thread looks at the
 * count again when it ends.
 */
#include "store/checkpointer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

struct checkpointer {
    sqlite3 *writer; /* borrowed: its WAL hook, and the short checkpoints that restart the log */
    sqlite3 *db;     /* owned: the thread's connection */
    pthread_t thread;

    pthread_mutex_t lock; /* guards `due` and `stopping` */
    pthread_cond_t wake;
    bool due, stopping;

    int last_log_pages;  /* the writer's only: the log's length at its previous commit */
    atomic_int uncopied; /* frames written since the thread's last checkpoint began */
    atomic_bool running;
    _Atomic uint64_t runs, failures;
};

static void count_run(struct checkpointer *c, int rc, int log_frames)
{
    atomic_fetch_add(&c->runs, 1);
    if (rc != SQLITE_OK || log_frames < 0 /* not in WAL mode: cannot happen */)
        atomic_fetch_add(&c->failures, 1);
}

/* SQLite's WAL hook: runs on the writer's thread after each commit, with the log's length. */
static int on_commit(void *arg, sqlite3 *db, const char *schema, int log_pages)
{
    (void)schema;
    struct checkpointer *c = arg;
    /* a log shorter than at the previous commit restarted: all of it is new */
    int added = log_pages >= c->last_log_pages ? log_pages - c->last_log_pages : log_pages;
    c->last_log_pages = log_pages;
    int uncopied = atomic_fetch_add(&c->uncopied, added) + added;
    if (atomic_load(&c->running))
        return SQLITE_OK;
    if (log_pages >= CHECKPOINTER_RESTART_PAGES) {
        /* The thread copies while the writer writes, so the log is never all copied when the
         * writer begins its next transaction, and never restarts: the writer copies the little
         * the thread left, and its next transaction starts the log over. */
        int log_frames = 0, copied_frames = 0;
        int rc = sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                           &copied_frames);
        count_run(c, rc, log_frames);
        atomic_store(&c->uncopied, 0);
        return SQLITE_OK;
    }
    if (uncopied < CHECKPOINTER_PAGES)
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
    atomic_store(&c->uncopied, 0); /* what the writer adds from now on is the next run's */
    int rc = sqlite3_wal_checkpoint_v2(c->db, "main", SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                       &copied_frames);
    count_run(c, rc, log_frames);
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
        /* commits during the checkpoint did not wake us: look at what they wrote */
        bool again = atomic_load(&c->uncopied) >= CHECKPOINTER_PAGES;
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
