/*
 * engine/: the single writer without HTTP: commands in, durable results out. Group commit,
 * per-command isolation inside a batch, clocks, idempotency, a store failure that must
 * fail one command and leave its batch-mates applied, and a sync the disk refuses.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"

#define T0 (INT64_C(1767225600) * 1000000) /* 2026-01-01T00:00:00Z */

struct harness {
    char dir[64];
    struct engine *engine;
    int64_t org, real_org;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    bool sync_failed; /* the test broke the log's sync on purpose */
};

/* A command with its own arena, as an HTTP request would own it. */
struct pending {
    struct command cmd;
    struct arena arena;
    struct harness *h;
};

static void render(struct command *cmd)
{
    cmd->http_status = cmd->result == COMMAND_OK ? 200 : 422;
    buf_reset(&cmd->response);
    buf_printf(&cmd->response, "{\"result\":%d,\"now\":%lld}", (int)cmd->result,
               (long long)cmd->now);
}

static void done(struct command *cmd)
{
    struct pending *p = cmd->owner;
    pthread_mutex_lock(&p->h->lock);
    p->h->done++;
    pthread_cond_broadcast(&p->h->cond);
    pthread_mutex_unlock(&p->h->lock);
}

static struct pending *new_command(struct harness *h, enum command_kind kind, int64_t org)
{
    struct pending *p = calloc(1, sizeof *p);
    assert_non_null(p);
    arena_init(&p->arena);
    p->h = h;
    p->cmd.kind = kind;
    p->cmd.org_id = org;
    p->cmd.render = render;
    p->cmd.done = done;
    p->cmd.owner = p;
    p->cmd.arena = &p->arena;
    buf_init(&p->cmd.response);
    return p;
}

static struct pending *upsert(struct harness *h, const char *external_id, const char *name)
{
    struct pending *p = new_command(h, COMMAND_CUSTOMER_UPSERT, h->org);
    struct customer_input *in = &p->cmd.as.customer_upsert.input;
    customer_init_defaults(&in->values);
    in->values.external_id = arena_strndup(&p->arena, external_id, strlen(external_id));
    static int next_id;
    snprintf(in->values.lago_id, sizeof in->values.lago_id, "00000000-0000-4000-8000-%012d",
             ++next_id);
    in->values.text[CUSTOMER_NAME] = name;
    in->has_text[CUSTOMER_NAME] = name != NULL;
    return p;
}

static void free_pending(struct pending *p)
{
    buf_free(&p->cmd.response);
    arena_free(&p->arena);
    free(p);
}

/* Submits and waits for `n` commands. */
static void run(struct harness *h, struct pending **ps, int n)
{
    pthread_mutex_lock(&h->lock);
    int target = h->done + n;
    pthread_mutex_unlock(&h->lock);
    for (int i = 0; i < n; i++)
        engine_submit(h->engine, &ps[i]->cmd);
    pthread_mutex_lock(&h->lock);
    while (h->done < target)
        pthread_cond_wait(&h->cond, &h->lock);
    pthread_mutex_unlock(&h->lock);
}

static int setup(void **state)
{
    struct harness *h = calloc(1, sizeof *h);
    strcpy(h->dir, "/tmp/tally-engine-XXXXXX");
    assert_non_null(mkdtemp(h->dir));
    char err[STORE_ERR_MAX];
    struct store *st = store_open(h->dir, err);
    assert_non_null(st);
    assert_int_equal(store_begin(st), STORE_OK);
    assert_int_equal(store_org_insert(st, "Clocked", "h1", true, T0, T0, &h->org), STORE_OK);
    assert_int_equal(store_org_insert(st, "Real", "h2", false, 0, T0, &h->real_org), STORE_OK);
    assert_int_equal(store_commit(st), STORE_OK);
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    h->engine = engine_start(st, NULL, NULL, err);
    assert_non_null(h->engine);
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    struct harness *h = *state;
    char err[STORE_ERR_MAX];
    bool saved = engine_stop(h->engine, err);
    bool sync_failed = h->sync_failed;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", h->dir);
    assert_int_equal(system(cmd), 0);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->cond);
    free(h);
    /* a stop saves the snapshot, unless a sync failed: memory may then hold what disk lost */
    if (sync_failed)
        assert_string_equal(err, "snapshot: not saved, the log could not be synced");
    assert_int_equal(saved, !sync_failed);
    return 0;
}

static struct customer read_customer(struct harness *h, const char *external_id, struct arena *a,
                                     enum store_status *status)
{
    char err[STORE_ERR_MAX];
    struct store_reader *r = store_reader_open(h->dir, err);
    assert_non_null(r);
    struct customer c;
    memset(&c, 0, sizeof c);
    *status = store_customer_get(store_reader_conn(r), h->org, external_id, &c, a);
    store_reader_close(r);
    return c;
}

static void group_commit_applies_every_command_once(void **state)
{
    struct harness *h = *state;
    enum { N = 300 };
    struct pending *ps[N];
    char id[32];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "c%03d", i);
        ps[i] = upsert(h, id, "n");
    }
    run(h, ps, N);
    struct engine_stats s;
    engine_stats(h->engine, &s);
    assert_int_equal(s.commands, N);
    assert_int_equal(s.batch_size_sum, N);
    assert_true(s.commits >= 1 && s.commits <= N);
    assert_int_equal(s.commit_failures, 0);
    assert_int_equal(s.queue_depth, 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(ps[i]->cmd.result, COMMAND_OK);
        assert_int_equal(ps[i]->cmd.customer.sequential_id, i + 1); /* applied in order */
        assert_int_equal(ps[i]->cmd.now, T0);
        free_pending(ps[i]);
    }
    struct arena a;
    arena_init(&a);
    enum store_status st;
    struct customer c = read_customer(h, "c299", &a, &st);
    assert_int_equal(st, STORE_OK);
    assert_string_equal(c.text[CUSTOMER_NAME], "n");
    arena_free(&a);
}

static void clock_moves_forward_only_and_stamps_commands(void **state)
{
    struct harness *h = *state;
    struct pending *ps[4];
    ps[0] = new_command(h, COMMAND_TEST_CLOCK_ADVANCE, h->org);
    ps[0]->cmd.as.test_clock_advance.to = T0 + 3600 * INT64_C(1000000);
    ps[1] = upsert(h, "late", NULL);
    ps[2] = new_command(h, COMMAND_TEST_CLOCK_ADVANCE, h->org);
    ps[2]->cmd.as.test_clock_advance.to = T0; /* backwards */
    ps[3] = new_command(h, COMMAND_TEST_CLOCK_ADVANCE, h->real_org);
    ps[3]->cmd.as.test_clock_advance.to = T0;
    run(h, ps, 4);
    assert_int_equal(ps[0]->cmd.result, COMMAND_OK);
    assert_int_equal(ps[1]->cmd.result, COMMAND_OK);
    assert_int_equal(ps[1]->cmd.customer.created_at, T0 + 3600 * INT64_C(1000000));
    assert_int_equal(ps[2]->cmd.result, COMMAND_INVALID);
    assert_string_equal(ps[2]->cmd.invalid_code, "cannot_move_backwards");
    assert_int_equal(ps[3]->cmd.result, COMMAND_INVALID);
    assert_string_equal(ps[3]->cmd.invalid_code, "organization_has_no_test_clock");
    for (int i = 0; i < 4; i++)
        free_pending(ps[i]);
}

static void idempotency_key_replays_and_conflicts(void **state)
{
    struct harness *h = *state;
    struct pending *ps[3];
    for (int i = 0; i < 3; i++) {
        ps[i] = upsert(h, "idem", i == 2 ? "other" : "same");
        ps[i]->cmd.idempotency_key = "key";
        memset(ps[i]->cmd.request_hash, i == 2 ? 2 : 1, sizeof ps[i]->cmd.request_hash);
    }
    run(h, ps, 3); /* all three in one batch, most likely: the key works inside a batch too */
    assert_int_equal(ps[0]->cmd.result, COMMAND_OK);
    assert_int_equal(ps[1]->cmd.result, COMMAND_IDEMPOTENT_REPLAY);
    assert_int_equal(ps[1]->cmd.http_status, 200);
    assert_string_equal(ps[1]->cmd.response.data, ps[0]->cmd.response.data);
    assert_int_equal(ps[2]->cmd.result, COMMAND_IDEMPOTENT_CONFLICT);
    for (int i = 0; i < 3; i++)
        free_pending(ps[i]);
}

/* A tax put: created (lago_id fresh, id 0) or replacing the one read at `expected`. */
static struct pending *tax_put(struct harness *h, int64_t id, const char *lago_id,
                               tally_time expected, const char *name)
{
    struct pending *p = new_command(h, COMMAND_CATALOG_PUT, h->org);
    struct catalog_item *it = &p->cmd.as.catalog_put.item;
    it->id = id;
    it->kind = CATALOG_TAX;
    it->code = "vat";
    snprintf(it->lago_id, sizeof it->lago_id, "%s", lago_id);
    char body[128];
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"rate\":20,\"description\":null,"
             "\"applied_to_organization\":false}",
             name);
    it->body = arena_strndup(&p->arena, body, strlen(body));
    p->cmd.as.catalog_put.expected_updated_at = expected;
    return p;
}

/* A stale update (409 concurrent_update: "retry it") keeps nothing under its key: kept, the
 * retry with the key replayed the 409 for ever and the change was lost (an audit). */
static void a_stale_update_keeps_no_answer_under_its_key(void **state)
{
    struct harness *h = *state;
    const char *lago_id = "00000000-0000-4000-8000-00000000aaaa";
    struct pending *made = tax_put(h, 0, lago_id, 0, "VAT");
    run(h, &made, 1);
    assert_int_equal(made->cmd.result, COMMAND_OK);
    struct catalog_item saved = made->cmd.item;
    struct pending *stale = tax_put(h, saved.id, lago_id, saved.updated_at - 1, "Stale");
    stale->cmd.idempotency_key = "retry-me";
    memset(stale->cmd.request_hash, 7, sizeof stale->cmd.request_hash);
    run(h, &stale, 1);
    assert_int_equal(stale->cmd.result, COMMAND_STALE);
    struct pending *retry = tax_put(h, saved.id, lago_id, saved.updated_at, "Retried");
    retry->cmd.idempotency_key = "retry-me";
    memset(retry->cmd.request_hash, 7, sizeof retry->cmd.request_hash);
    run(h, &retry, 1);
    assert_int_equal(retry->cmd.result, COMMAND_OK); /* applied, not a replay of the 409 */
    free_pending(made);
    free_pending(stale);
    free_pending(retry);
}

static void a_failing_command_leaves_its_batch_mates_applied(void **state)
{
    struct harness *h = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/%s", h->dir, STORE_DB_FILE);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TRIGGER boom BEFORE INSERT ON customers "
                     "WHEN NEW.external_id = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    struct pending *ps[3] = {upsert(h, "before", NULL), upsert(h, "boom", NULL),
                             upsert(h, "after", NULL)};
    run(h, ps, 3);
    assert_int_equal(ps[0]->cmd.result, COMMAND_OK);
    assert_int_equal(ps[1]->cmd.result, COMMAND_STORE_FAILED);
    assert_int_equal(ps[2]->cmd.result, COMMAND_OK);
    /* The failed command consumed no customer number. */
    assert_int_equal(ps[2]->cmd.customer.sequential_id, ps[0]->cmd.customer.sequential_id + 1);
    struct arena a;
    arena_init(&a);
    enum store_status st;
    read_customer(h, "before", &a, &st);
    assert_int_equal(st, STORE_OK);
    read_customer(h, "boom", &a, &st);
    assert_int_equal(st, STORE_NOT_FOUND);
    read_customer(h, "after", &a, &st);
    assert_int_equal(st, STORE_OK);
    arena_free(&a);
    for (int i = 0; i < 3; i++)
        free_pending(ps[i]);
}

/*
 * The descriptor tallyd syncs the log through (store_defer_sync's, read-only; SQLite's own is
 * read-write), found the way an operator would, in /proc. -1 if none.
 */
static int wal_sync_fd(void)
{
    for (int fd = 3; fd < 1024; fd++) {
        char link[64], target[256], info[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strstr(target, "tally.db-wal") == NULL)
            continue;
        snprintf(info, sizeof info, "/proc/self/fdinfo/%d", fd);
        FILE *f = fopen(info, "r");
        unsigned flags = 0;
        if (f && fscanf(f, "pos: %*d flags: %o", &flags) == 1 && (flags & O_ACCMODE) == O_RDONLY) {
            fclose(f);
            return fd;
        }
        if (f)
            fclose(f);
    }
    return -1;
}

/*
 * When the disk refuses a sync, the commands it would have acknowledged answer
 * COMMAND_NOT_DURABLE (they were committed: they may or may not survive), and the writer
 * applies nothing after it (a later sync proves nothing about the failed one's pages). The
 * failure is real: the log's descriptor is swapped for a pipe's, whose fdatasync fails.
 */
static void a_failed_sync_stops_every_change_after_it(void **state)
{
    struct harness *h = *state;
    struct pending *before = upsert(h, "synced", NULL);
    run(h, &before, 1);
    assert_int_equal(before->cmd.result, COMMAND_OK);
    assert_false(engine_failed(h->engine));
    int fd = wal_sync_fd();
    assert_true(fd >= 0);
    int pipe_fds[2];
    assert_int_equal(pipe(pipe_fds), 0);
    assert_int_equal(dup2(pipe_fds[0], fd), fd);
    h->sync_failed = true;
    struct pending *unsynced = upsert(h, "unsynced", NULL);
    run(h, &unsynced, 1);
    assert_int_equal(unsynced->cmd.result, COMMAND_NOT_DURABLE);
    struct pending *after = upsert(h, "after", NULL);
    run(h, &after, 1);
    assert_int_equal(after->cmd.result, COMMAND_STORE_FAILED);
    struct engine_stats stats;
    engine_stats(h->engine, &stats);
    assert_true(stats.sync_failed);
    assert_true(engine_failed(h->engine)); /* what /health reports */
    struct arena a;
    arena_init(&a);
    enum store_status st;
    read_customer(h, "after", &a, &st);
    assert_int_equal(st, STORE_NOT_FOUND);
    arena_free(&a);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    free_pending(before);
    free_pending(unsynced);
    free_pending(after);
}

static void stop_drains_the_queue(void **state)
{
    struct harness *h = *state;
    enum { N = 50 };
    struct pending *ps[N];
    char id[32];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "drain%02d", i);
        ps[i] = upsert(h, id, NULL);
        engine_submit(h->engine, &ps[i]->cmd);
    }
    assert_true(
        engine_stop(h->engine, NULL)); /* must apply, commit and answer all before returning */
    assert_int_equal(h->done >= N, 1);
    for (int i = 0; i < N; i++) {
        assert_int_equal(ps[i]->cmd.result, COMMAND_OK);
        free_pending(ps[i]);
    }
    char err[STORE_ERR_MAX];
    struct store *st = store_open(h->dir, err);
    assert_non_null(st);
    h->engine = engine_start(st, NULL, NULL, err);
    assert_non_null(h->engine);
    struct arena a;
    arena_init(&a);
    enum store_status s;
    read_customer(h, "drain49", &a, &s);
    assert_int_equal(s, STORE_OK);
    arena_free(&a);
    /* Numbering continues where the previous writer stopped. */
    struct pending *next = upsert(h, "after-restart", NULL);
    run(h, &next, 1);
    assert_int_equal(next->cmd.customer.sequential_id, N + 1);
    free_pending(next);
}

/*
 * Holds go ahead of the queue. A flood of them, submitted faster than the writer answers them,
 * must not starve the queue: a command submitted during the flood is answered while holds are
 * still coming, not once they stop. (The holds name no subscription: each is refused, which
 * costs the writer as little as a hold can.)
 */
enum { FLOOD_WAITING = 1000, FLOOD_MAX = 20000, FLOOD_AFTER = 100 };

struct flood {
    struct harness *h;
    struct event hold;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int submitted, answered, answered_after; /* under lock; after: the upsert's answer */
};

struct flood_hold {
    struct command cmd;
    struct arena arena;
    struct flood *flood;
};

static void flood_hold_done(struct command *cmd)
{
    struct flood_hold *fh = cmd->owner;
    struct flood *f = fh->flood;
    pthread_mutex_lock(&f->h->lock);
    bool upsert_answered = f->h->done > 0;
    pthread_mutex_unlock(&f->h->lock);
    buf_free(&cmd->response);
    arena_free(&fh->arena);
    free(fh);
    pthread_mutex_lock(&f->lock);
    f->answered++;
    f->answered_after += upsert_answered;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

/* Keeps FLOOD_WAITING commands in the writer's queue until FLOOD_AFTER holds were answered
 * after the upsert, or FLOOD_MAX were sent. */
static void *flood_main(void *arg)
{
    struct flood *f = arg;
    for (int i = 0; i < FLOOD_MAX; i++) {
        struct engine_stats stats;
        for (;;) {
            engine_stats(f->h->engine, &stats);
            if (stats.queue_depth < FLOOD_WAITING)
                break;
            sched_yield();
        }
        pthread_mutex_lock(&f->lock);
        bool enough = f->answered_after >= FLOOD_AFTER;
        if (!enough)
            f->submitted++;
        pthread_mutex_unlock(&f->lock);
        if (enough)
            break;
        struct flood_hold *fh = calloc(1, sizeof *fh);
        if (!fh)
            abort(); /* cmocka cannot fail a test from this thread */
        arena_init(&fh->arena);
        fh->flood = f;
        fh->cmd = (struct command){.kind = COMMAND_AUTHORIZATION_CREATE,
                                   .org_id = f->h->org,
                                   .render = render,
                                   .done = flood_hold_done,
                                   .owner = fh,
                                   .arena = &fh->arena};
        fh->cmd.as.authorization_create.event = &f->hold;
        fh->cmd.as.authorization_create.expires_in_sec = 60;
        engine_submit(f->h->engine, &fh->cmd);
    }
    return NULL;
}

static void a_flood_of_holds_does_not_starve_the_queue(void **state)
{
    struct harness *h = *state;
    struct flood f = {
        .h = h,
        .hold = {.external_subscription_id = "nobody", .code = "calls", .properties_json = "{}"}};
    pthread_mutex_init(&f.lock, NULL);
    pthread_cond_init(&f.cond, NULL);
    pthread_t flooder;
    assert_int_equal(pthread_create(&flooder, NULL, flood_main, &f), 0);
    pthread_mutex_lock(&f.lock);
    while (f.answered == 0) /* holds are being answered, and more wait */
        pthread_cond_wait(&f.cond, &f.lock);
    pthread_mutex_unlock(&f.lock);
    struct pending *p = upsert(h, "among-holds", "Among holds");
    run(h, &p, 1);
    assert_int_equal(p->cmd.result, COMMAND_OK);
    free_pending(p);
    pthread_join(flooder, NULL);
    pthread_mutex_lock(&f.lock);
    while (f.answered < f.submitted)
        pthread_cond_wait(&f.cond, &f.lock);
    pthread_mutex_unlock(&f.lock);
    /* the flood stops FLOOD_AFTER holds after the upsert's answer, or at FLOOD_MAX if the
     * upsert waited for it to end */
    assert_true(f.answered_after >= FLOOD_AFTER);
    assert_true(f.submitted < FLOOD_MAX);
    pthread_mutex_destroy(&f.lock);
    pthread_cond_destroy(&f.cond);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(group_commit_applies_every_command_once, setup, teardown),
        cmocka_unit_test_setup_teardown(clock_moves_forward_only_and_stamps_commands, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(idempotency_key_replays_and_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(a_stale_update_keeps_no_answer_under_its_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_failing_command_leaves_its_batch_mates_applied, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(stop_drains_the_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(a_failed_sync_stops_every_change_after_it, setup, teardown),
        cmocka_unit_test_setup_teardown(a_flood_of_holds_does_not_starve_the_queue, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
