/*
 * engine/sub_cache: a row it answers stays readable for the whole command that asked, even
 * when a later lookup of the same command finds the cache past SUB_CACHE_BYTES_MAX and drops
 * it (an audit found an event's row read after the metric lookup that had freed it: ASan's
 * heap-use-after-free, and a crash in the release build); its memory goes at the release.
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_row_outlives_a_drop_within_its_command),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
