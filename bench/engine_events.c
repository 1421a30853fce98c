/*
 * bench/engine_events: event ingestion through the engine, without HTTP. Submitter threads
 * send batches of BATCH events (unique transaction ids, spread over SUBS subscriptions) as
 * fast as the writer takes them; every batch is durable (and priced: each subscription's plan
 * has a graduated charge on the metric) when its done() runs. Prints events/s and commits. JSON
 * parsing is the HTTP benchmark's; here events arrive parsed.
 *
 *   build/release/bench/bench_engine_events [EVENTS] [SUBMITTERS] [BATCH] [SUBS] [WALLETS]
 *                                           [EXPRESSION]
 *
 * WALLETS 1 gives each customer a hard-limited wallet that never runs dry, so every event is
 * also debited, posted to the ledger and flushed in the commit that acknowledges it.
 * EXPRESSION 1 gives the metric an expression, `round(event.properties.tokens * 1.5)`: each
 * event is evaluated and its properties rewritten with the result before it is stored.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "sys/heap.h"
#include "sys/tzdb.h"
#include "sys/wallclock.h"

struct submitter {
    struct engine *engine;
    int64_t org;
    int id, batch, subs;
    long batches;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int in_flight;
    long failures;
};

struct slot {
    struct command cmd;
    struct arena arena;
    struct submitter *s;
};

static void render(struct command *cmd)
{
    cmd->http_status = cmd->result == COMMAND_OK ? 200 : 422;
}

static void done(struct command *cmd)
{
    struct slot *slot = cmd->owner;
    struct submitter *s = slot->s;
    pthread_mutex_lock(&s->lock);
    if (cmd->result != COMMAND_OK)
        s->failures++;
    s->in_flight--;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void *submit_all(void *arg)
{
    enum { WINDOW = 4 };
    struct submitter *s = arg;
    struct slot slots[WINDOW];
    memset(slots, 0, sizeof slots);
    static const struct event_property props[] = {{"tokens", "1234", false},
                                                  {"model", "large", true}};
    for (long b = 0; b < s->batches; b++) {
        pthread_mutex_lock(&s->lock);
        while (s->in_flight == WINDOW)
            pthread_cond_wait(&s->cond, &s->lock);
        s->in_flight++;
        pthread_mutex_unlock(&s->lock);
        struct slot *slot = &slots[b % WINDOW];
        buf_free(&slot->cmd.response);
        arena_free(&slot->arena);
        memset(&slot->cmd, 0, sizeof slot->cmd);
        arena_init(&slot->arena);
        slot->s = s;
        struct event *events = arena_alloc(&slot->arena, sizeof *events * (size_t)s->batch);
        struct event_result *results =
            arena_alloc(&slot->arena, sizeof *results * (size_t)s->batch);
        for (int i = 0; i < s->batch; i++) {
            char txid[48], sub[16];
            snprintf(txid, sizeof txid, "w%d-b%ld-e%d", s->id, b, i);
            snprintf(sub, sizeof sub, "s%ld", (b * s->batch + i) % s->subs);
            events[i].transaction_id = arena_strndup(&slot->arena, txid, strlen(txid));
            events[i].external_subscription_id = arena_strndup(&slot->arena, sub, strlen(sub));
            events[i].code = "tokens";
            events[i].properties = props;
            events[i].property_count = 2;
            events[i].properties_json = "{\"tokens\":1234,\"model\":\"large\"}";
        }
        slot->cmd.kind = COMMAND_EVENTS_INGEST;
        slot->cmd.org_id = s->org;
        /* each command its own seed, as the HTTP layer draws one: ids it makes (usage
         * transactions) must not collide with another command's at the same instant */
        int64_t seed[2] = {s->id, b};
        memcpy(slot->cmd.id_seed, seed, sizeof slot->cmd.id_seed);
        slot->cmd.as.events_ingest.events = events;
        slot->cmd.as.events_ingest.count = (size_t)s->batch;
        slot->cmd.as.events_ingest.results = results;
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
    for (int i = 0; i < WINDOW; i++) {
        buf_free(&slots[i].cmd.response);
        arena_free(&slots[i].arena);
    }
    return NULL;
}

/* A wallet of 100M credits at a cent each, granted: its grant, balance and grant posting. */
static bool seed_wallet(struct store *st, int64_t org, int64_t customer_id, int i)
{
    int64_t cents = INT64_C(100000000);
    struct store_wallet w = {.org_id = org,
                             .customer_id = customer_id,
                             .code = "prepaid",
                             .rate_amount = {1, 2},
                             .priority = WALLET_PRIORITY_MAX,
                             .limit = WALLET_LIMIT_HARD,
                             .balance_cents = cents,
                             .terms_json = "{}",
                             .currency = "USD"};
    snprintf(w.lago_id, sizeof w.lago_id, "20000000-0000-4000-8000-%012d", i);
    if (store_wallet_save(st, &w) != STORE_OK)
        return false;
    struct store_wallet_transaction t = {.org_id = org,
                                         .wallet_id = w.id,
                                         .type = WALLET_INBOUND,
                                         .state = WALLET_TX_SETTLED,
                                         .status = WALLET_TX_GRANTED,
                                         .amount_cents = cents,
                                         .remaining_cents = cents,
                                         .priority = WALLET_PRIORITY_MAX,
                                         .has_settled_at = true};
    snprintf(t.lago_id, sizeof t.lago_id, "30000000-0000-4000-8000-%012d", i);
    if (store_wallet_transaction_insert(st, &t) != STORE_OK)
        return false;
    struct ledger_posting p;
    ledger_posting_init(&p, LEDGER_CAUSE_GRANT);
    if (!ledger_posting_move(&p, LEDGER_CUSTOMER_PROMOTIONAL_CREDITS, LEDGER_PROMOTIONAL_GRANTS,
                             cents))
        return false;
    int64_t after[LEDGER_LINES_MAX];
    for (size_t k = 0; k < p.count; k++)
        after[k] = p.lines[k].account == LEDGER_PROMOTIONAL_GRANTS ? cents * (i + 1) : -cents;
    struct store_posting_ref ref = {org, customer_id, w.id, "USD", t.id, 0, 0};
    return store_ledger_post(st, &ref, &p, after) == STORE_OK &&
           store_ledger_balance_put(st, org, "USD", LEDGER_PROMOTIONAL_GRANTS, cents * (i + 1)) ==
               STORE_OK;
}

/* A metric, a plan and SUBS subscriptions (and wallets), written straight into the store. */
static bool seed(struct store *st, int64_t *org, int subs, bool wallets, bool expression)
{
    if (store_begin(st) != STORE_OK ||
        store_org_insert(st, "bench", "bench-key", false, 0, 0, org) != STORE_OK)
        return false;
    struct catalog_item metric = {
        .org_id = *org,
        .kind = CATALOG_BILLABLE_METRIC,
        .code = "tokens",
        .lago_id = "00000000-0000-4000-8000-000000000001",
        .body = expression ? "{\"name\":\"Tokens\",\"aggregation_type\":\"sum_agg\",\"field_name\":"
                             "\"tokens\",\"recurring\":false,\"filters\":[],\"expression\":"
                             "\"round(event.properties.tokens * 1.5)\"}"
                           : "{\"name\":\"Tokens\",\"aggregation_type\":\"sum_agg\",\"field_name\":"
                             "\"tokens\",\"recurring\":false,\"filters\":[]}"};
    /* a graduated charge on the metric: every event is priced in the engine */
    struct catalog_item plan = {
        .org_id = *org,
        .kind = CATALOG_PLAN,
        .code = "p",
        .lago_id = "00000000-0000-4000-8000-000000000002",
        .body =
            "{\"name\":\"P\",\"interval\":\"monthly\",\"amount_cents\":0,"
            "\"amount_currency\":\"USD\",\"trial_period\":0.0,\"pay_in_advance\":false,"
            "\"tax_codes\":[],\"charges\":[{\"lago_id\":\"00000000-0000-4000-8000-000000000003\","
            "\"billable_metric_id\":\"00000000-0000-4000-8000-000000000001\","
            "\"charge_model\":\"graduated\",\"properties\":{\"graduated_ranges\":["
            "{\"from_value\":0,\"to_value\":100000,\"per_unit_amount\":\"0.00002\","
            "\"flat_amount\":\"0\"},{\"from_value\":100001,\"to_value\":null,"
            "\"per_unit_amount\":\"0.00001\",\"flat_amount\":\"0\"}]},\"filters\":[],"
            "\"tax_codes\":[]}]}"};
    if (store_catalog_save(st, &metric) != STORE_OK || store_catalog_save(st, &plan) != STORE_OK)
        return false;
    for (int i = 0; i < subs; i++) {
        char ext[16], lago_id[40];
        snprintf(ext, sizeof ext, "s%d", i);
        snprintf(lago_id, sizeof lago_id, "00000000-0000-4000-8000-%012d", i);
        struct customer c;
        customer_init_defaults(&c);
        c.org_id = *org;
        c.external_id = ext;
        c.sequential_id = i + 1;
        memcpy(c.lago_id, lago_id, sizeof c.lago_id);
        if (store_customer_save(st, &c) != STORE_OK)
            return false;
        struct subscription sub = {.org_id = *org,
                                   .customer_id = c.id,
                                   .external_id = ext,
                                   .plan_code = "p",
                                   .plan_lago_id = "00000000-0000-4000-8000-000000000002"};
        snprintf(sub.lago_id, sizeof sub.lago_id, "10000000-0000-4000-8000-%012d", i);
        if (store_subscription_save(st, &sub) != STORE_OK ||
            (wallets && !seed_wallet(st, *org, c.id, i)))
            return false;
    }
    return store_commit(st) == STORE_OK;
}

int main(int argc, char **argv)
{
    heap_keep_top(); /* as tallyd does */
    long total = argc > 1 ? atol(argv[1]) : 1000000;
    int submitters = argc > 2 ? atoi(argv[2]) : 2;
    int batch = argc > 3 ? atoi(argv[3]) : 100;
    int subs = argc > 4 ? atoi(argv[4]) : 1000;
    bool wallets = argc > 5 && atoi(argv[5]) != 0;
    bool expression = argc > 6 && atoi(argv[6]) != 0;
    /* under $TMPDIR when set: bench/run.sh points it at its own directory, which its trap
     * removes when the run is interrupted (this program then dies with its store in place) */
    const char *tmp = getenv("TMPDIR");
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/tally-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp") >=
            (int)sizeof dir ||
        !mkdtemp(dir) || total <= 0 || submitters <= 0 || batch <= 0 || subs <= 0)
        return 2;
    char err[STORE_ERR_MAX];
    struct store *st = store_open(dir, err);
    int64_t org;
    if (!st || !seed(st, &org, subs, wallets, expression)) {
        fprintf(stderr, "bench: cannot seed: %s\n", st ? store_errmsg(store_conn(st)) : err);
        return 1;
    }
    struct tzdb *tzdb = tzdb_open(NULL);
    struct engine *e = tzdb ? engine_start(st, tzdb, NULL, err) : NULL;
    if (!e) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    struct submitter *s = calloc((size_t)submitters, sizeof *s);
    pthread_t *threads = calloc((size_t)submitters, sizeof *threads);
    long batches = total / batch / submitters;
    int64_t t0 = wallclock_monotonic_usec();
    for (int i = 0; i < submitters; i++) {
        s[i] = (struct submitter){
            .engine = e, .org = org, .id = i, .batch = batch, .subs = subs, .batches = batches};
        pthread_mutex_init(&s[i].lock, NULL);
        pthread_cond_init(&s[i].cond, NULL);
        pthread_create(&threads[i], NULL, submit_all, &s[i]);
    }
    long failures = 0;
    for (int i = 0; i < submitters; i++) {
        pthread_join(threads[i], NULL);
        failures += s[i].failures;
    }
    int64_t elapsed = wallclock_monotonic_usec() - t0;
    struct engine_stats stats;
    engine_stats(e, &stats);
    long events = batches * batch * submitters;
    printf("engine events%s%s: %ld events in batches of %d over %d subscriptions in %.3f s = %.0f "
           "events/s durable; %llu commits, %ld refused\n",
           wallets ? " debited from wallets" : "", expression ? " through an expression" : "",
           events, batch, subs, (double)elapsed / 1e6, (double)events * 1e6 / (double)elapsed,
           (unsigned long long)stats.commits, failures);
    engine_stop(e, NULL);
    tzdb_close(tzdb);
    char cmd[sizeof dir + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 && failures == 0 ? 0 : 1;
}
