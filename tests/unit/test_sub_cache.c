/*
 * engine/sub_cache: a row it answers stays readable for the whole command that asked, even
 * when a later lookup of the same command finds the cache past SUB_CACHE_BYTES_MAX and drops
 * it (an audit found an event's row read after the metric lookup that had freed it: ASan's
 * heap-use-after-free, and a crash in the release build); its memory goes at the release.
 *
 * sub_cache_ended_at: the subscription terminated at an event's very instant, which Lago's
 * Event#subscription counts as that subscription's (terminated_at >= timestamp), where the
 * subscription's span for live events stops before it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sub_cache.h"
#include "store/store.h"

static void raw_exec(const char *dir, const char *sql)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, STORE_DB_FILE);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void a_row_outlives_a_drop_within_its_command(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/tally-subcache-XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    char err[STORE_ERR_MAX];
    struct store *st = store_open(dir, err);
    assert_non_null(st);
    int64_t org;
    assert_int_equal(store_begin(st), STORE_OK);
    assert_int_equal(store_org_insert(st, "Acme", "hash-1", false, 0, 1000, &org), STORE_OK);
    assert_int_equal(store_commit(st), STORE_OK);
    store_close(st);
    /* one subscription whose own plan alone passes the cache's bound */
    char sql[1024];
    snprintf(
        sql, sizeof sql,
        "INSERT INTO customers(id, org_id, lago_id, sequential_id, external_id, created_at,"
        " updated_at) VALUES (1, %lld, 'c-lago', 1, 'c1', 1000, 1000);"
        "INSERT INTO subscriptions(id, org_id, customer_id, lago_id, external_id, plan_lago_id,"
        " plan_code, billing_time, subscription_at, started_at, created_at, updated_at,"
        " plan_body) VALUES (1, %lld, 1, 's-lago', 'big', 'p-lago', 'p', 0, 1000, 1000, 1000,"
        " 1000, '{\"x\":\"' || hex(zeroblob(%zu)) || '\"}');",
        (long long)org, (long long)org, SUB_CACHE_BYTES_MAX / 2 + 1);
    raw_exec(dir, sql);
    st = store_open(dir, err);
    assert_non_null(st);
    uint8_t key[SIPHASH_KEY_LEN] = {7};
    struct sub_cache c;
    sub_cache_init(&c, key);
    const struct store_subscription *row;
    assert_int_equal(
        sub_cache_at(&c, store_conn(st), org, "big", sub_cache_hash(key, "big"), 2000, &row),
        STORE_OK);
    assert_true(c.arena.total > SUB_CACHE_BYTES_MAX);
    bool recurring;
    /* the same command's next lookup finds the cache past its bound and drops it... */
    assert_int_equal(sub_cache_metric_recurring(&c, store_conn(st), org, "calls", &recurring),
                     STORE_NOT_FOUND);
    /* ...while the row it answered is still read (ASan: heap-use-after-free if freed) */
    assert_string_equal(row->sub.external_id, "big");
    assert_string_equal(row->customer_external_id, "c1");
    assert_int_equal(strlen(row->sub.plan_body), SUB_CACHE_BYTES_MAX + 2 + 8);
    /* between commands the memory goes, and the cache answers again from the store */
    sub_cache_release(&c);
    assert_true(c.arena.total < SUB_CACHE_BYTES_MAX);
    assert_int_equal(
        sub_cache_at(&c, store_conn(st), org, "big", sub_cache_hash(key, "big"), 2000, &row),
        STORE_OK);
    assert_string_equal(row->sub.external_id, "big");
    sub_cache_free(&c);
    store_close(st);
    snprintf(sql, sizeof sql, "rm -rf '%s'", dir);
    assert_int_equal(system(sql), 0);
}

/* A data directory with one organization (its id in *org), closed. */
static char *new_store(char *tmpl, int64_t *org)
{
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    char err[STORE_ERR_MAX];
    struct store *st = store_open(dir, err);
    assert_non_null(st);
    assert_int_equal(store_begin(st), STORE_OK);
    assert_int_equal(store_org_insert(st, "Acme", "hash-1", false, 0, 1000, org), STORE_OK);
    assert_int_equal(store_commit(st), STORE_OK);
    store_close(st);
    return dir;
}

/* The lago_id of what sub_cache_ended_at answers for (external id, at), or NULL if none. */
static const char *ended_at(struct sub_cache *c, struct store *st, int64_t org, const char *id,
                            tally_time at)
{
    const struct store_subscription *row;
    enum store_status s = sub_cache_ended_at(c, store_conn(st), org, id, at, &row);
    assert_true(s == STORE_OK || s == STORE_NOT_FOUND);
    return s == STORE_OK ? row->sub.lago_id : NULL;
}

static void the_termination_instant_is_the_ended_subscriptions(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/tally-subcache-XXXXXX";
    int64_t org;
    char *dir = new_store(tmpl, &org);
    char sql[4096];
    /* (lago_id, external id, started, ending_at, terminated_at, canceled_at) */
    snprintf(sql, sizeof sql,
             "INSERT INTO customers(id, org_id, lago_id, sequential_id, external_id, created_at,"
             " updated_at) VALUES (1, %lld, 'c-lago', 1, 'c1', 1000, 1000);"
             "CREATE TEMP TABLE s(lago_id, external_id, started_at, ending_at, terminated_at,"
             " canceled_at);"
             "INSERT INTO s VALUES"
             " ('ended', 'a', 1000, NULL, 5000, NULL),"
             /* ended at its ending_at first: that instant is not its own */
             " ('ending-first', 'b', 1000, 4000, 5000, NULL),"
             " ('ending-only', 'c', 1000, 5000, NULL, NULL),"
             /* terminated at its ending_at: the termination's instant */
             " ('both', 'd', 1000, 5000, 5000, NULL),"
             /* two ended then, one terminated at its own start: Lago's pick, started last */
             " ('older', 'e', 1000, NULL, 5000, NULL), ('newer', 'e', 5000, NULL, 5000, NULL),"
             " ('canceled', 'f', 1000, NULL, 5000, 900),"
             /* a later one made again under the same id does not hide the ended one */
             " ('before', 'g', 1000, NULL, 5000, NULL), ('after', 'g', 7000, NULL, NULL, NULL);"
             "INSERT INTO subscriptions(org_id, customer_id, lago_id, external_id, plan_lago_id,"
             " plan_code, billing_time, subscription_at, started_at, ending_at, terminated_at,"
             " canceled_at, created_at, updated_at)"
             " SELECT %lld, 1, lago_id, external_id, 'p-lago', 'p', 0, started_at, started_at,"
             " ending_at, terminated_at, canceled_at, 1000, 1000 FROM s;",
             (long long)org, (long long)org);
    raw_exec(dir, sql);
    char err[STORE_ERR_MAX];
    struct store *st = store_open(dir, err);
    assert_non_null(st);
    uint8_t key[SIPHASH_KEY_LEN] = {7};
    struct sub_cache c;
    sub_cache_init(&c, key);
    const struct store_subscription *row;
    /* the live span stops before the termination... */
    assert_int_equal(
        sub_cache_at(&c, store_conn(st), org, "a", sub_cache_hash(key, "a"), 4999, &row), STORE_OK);
    assert_int_equal(
        sub_cache_at(&c, store_conn(st), org, "a", sub_cache_hash(key, "a"), 5000, &row),
        STORE_NOT_FOUND);
    /* ...and its instant is the ended subscription's, no other */
    assert_string_equal(ended_at(&c, st, org, "a", 5000), "ended");
    assert_null(ended_at(&c, st, org, "a", 4999));
    assert_null(ended_at(&c, st, org, "a", 5001));
    assert_null(ended_at(&c, st, org, "b", 5000));
    assert_null(ended_at(&c, st, org, "b", 4000));
    assert_null(ended_at(&c, st, org, "c", 5000));
    assert_string_equal(ended_at(&c, st, org, "d", 5000), "both");
    assert_string_equal(ended_at(&c, st, org, "e", 5000), "newer");
    assert_null(ended_at(&c, st, org, "f", 5000));
    assert_string_equal(ended_at(&c, st, org, "g", 5000), "before");
    assert_null(ended_at(&c, st, org, "nobody", 5000));
    /* a row it answered is read after later lookups of the command, as sub_cache_at's */
    assert_int_equal(sub_cache_ended_at(&c, store_conn(st), org, "a", 5000, &row), STORE_OK);
    for (int i = 0; i < 100; i++)
        (void)ended_at(&c, st, org, "e", 5000);
    assert_string_equal(row->sub.external_id, "a");
    assert_true(row->sub.has_terminated_at && row->sub.terminated_at == 5000);
    assert_string_equal(row->customer_external_id, "c1");
    sub_cache_release(&c);
    sub_cache_free(&c);
    store_close(st);
    snprintf(sql, sizeof sql, "rm -rf '%s'", dir);
    assert_int_equal(system(sql), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_row_outlives_a_drop_within_its_command),
        cmocka_unit_test(the_termination_instant_is_the_ended_subscriptions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
