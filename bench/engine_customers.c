/*
 * bench/engine_customers: the engine without HTTP. Submitter threads push customer upserts
 * as fast as the writer takes them; every command is durable (group commit, fsync) when its
 * done() runs. Prints commands/s, commits, the mean batch size and the run's wall time.
 *
 *   build/release/bench/bench_engine_customers [COMMANDS] [SUBMITTERS] [IN_FLIGHT_PER_SUBMITTER]
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "sys/heap.h"
#include "sys/wallclock.h"

struct submitter {
    struct engine *engine;
    int64_t org;
    int id;
    long count;
    int window;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int in_flight;
};

struct slot {
    struct command cmd;
    struct arena arena;
    struct submitter *s;
    char external_id[32];
};

static void render(struct command *cmd)
{
    cmd->http_status = 200;
    buf_reset(&cmd->response);
    buf_append_str(&cmd->response, "{}");
}

static void done(struct command *cmd)
{
    struct slot *slot = cmd->owner;
    struct submitter *s = slot->s;
    pthread_mutex_lock(&s->lock);
    s->in_flight--;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void *submit_all(void *arg)
{
    struct submitter *s = arg;
    struct slot *slots = calloc((size_t)s->window, sizeof *slots);
    for (long i = 0; i < s->count; i++) {
        pthread_mutex_lock(&s->lock);
        while (s->in_flight == s->window)
            pthread_cond_wait(&s->cond, &s->lock);
        s->in_flight++;
        pthread_mutex_unlock(&s->lock);
        struct slot *slot = &slots[i % s->window];
        buf_free(&slot->cmd.response);
        arena_free(&slot->arena);
        memset(&slot->cmd, 0, sizeof slot->cmd);
        arena_init(&slot->arena);
        slot->s = s;
        snprintf(slot->external_id, sizeof slot->external_id, "s%d-%ld", s->id, i);
        struct customer_input *in = &slot->cmd.as.customer_upsert.input;
        customer_init_defaults(&in->values);
        in->values.external_id = slot->external_id;
        snprintf(in->values.lago_id, sizeof in->values.lago_id, "%08x-0000-4000-8000-%012lx",
                 (unsigned)s->id, (unsigned long)i & 0xffffffffffffUL);
        slot->cmd.kind = COMMAND_CUSTOMER_UPSERT;
        slot->cmd.org_id = s->org;
        slot->cmd.render = render;
        slot->cmd.done = done;
        slot->cmd.owner = slot;
        slot->cmd.arena = &slot->arena;
        engine_submit(s->engine, &slot->cmd);
    }
    pthread_mutex_lock(&s->lock);
    while (s->in_flight > 0)
        pthread_cond_wait(&s->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < s->window; i++) {
        buf_free(&slots[i].cmd.response);
        arena_free(&slots[i].arena);
    }
    free(slots);
    return NULL;
}

int main(int argc, char **argv)
{
    heap_keep_top(); /* as tallyd does */
    long total = argc > 1 ? atol(argv[1]) : 200000;
    int submitters = argc > 2 ? atoi(argv[2]) : 4;
    int window = argc > 3 ? atoi(argv[3]) : 256;
    /* under $TMPDIR when set: bench/run.sh points it at its own directory, which its trap
     * removes when the run is interrupted (this program then dies with its store in place) */
    const char *tmp = getenv("TMPDIR");
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/tally-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp") >=
            (int)sizeof dir ||
        !mkdtemp(dir) || total <= 0 || submitters <= 0 || window <= 0)
        return 2;
    char err[STORE_ERR_MAX];
    struct store *st = store_open(dir, err);
    int64_t org;
    if (!st || store_begin(st) != STORE_OK ||
        store_org_insert(st, "bench", "bench-key", false, 0, 0, &org) != STORE_OK ||
        store_commit(st) != STORE_OK) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    struct engine *e = engine_start(st, NULL, NULL, err);
    if (!e) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    struct submitter *s = calloc((size_t)submitters, sizeof *s);
    pthread_t *threads = calloc((size_t)submitters, sizeof *threads);
    int64_t t0 = wallclock_monotonic_usec();
    for (int i = 0; i < submitters; i++) {
        s[i] = (struct submitter){
            .engine = e, .org = org, .id = i, .count = total / submitters, .window = window};
        pthread_mutex_init(&s[i].lock, NULL);
        pthread_cond_init(&s[i].cond, NULL);
        pthread_create(&threads[i], NULL, submit_all, &s[i]);
    }
    for (int i = 0; i < submitters; i++)
        pthread_join(threads[i], NULL);
    int64_t elapsed = wallclock_monotonic_usec() - t0;
    struct engine_stats stats;
    engine_stats(e, &stats);
    long done_count = (total / submitters) * submitters;
    printf("engine customer upserts: %ld commands in %.3f s = %.0f commands/s durable; "
           "%llu commits (mean batch %.1f), %llu failures\n",
           done_count, (double)elapsed / 1e6, (double)done_count * 1e6 / (double)elapsed,
           (unsigned long long)stats.commits,
           stats.commits ? (double)stats.batch_size_sum / (double)stats.commits : 0.0,
           (unsigned long long)stats.commit_failures);
    engine_stop(e, NULL);
    char cmd[sizeof dir + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
