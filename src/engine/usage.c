/* engine/usage: see usage.h. */
#include "engine/usage.h"

#include <assert.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/currency.h"
#include "json/charge_json.h"
#include "json/event_json.h"
#include "json/metric_json.h"
#include "json/plan_json.h"
#include "util/vec.h"

/* ---- the book ------------------------------------------------------------------------------ */

/* Frees a bucket's groups and their arrays (an ungrouped bucket has none). */
static void free_groups(struct usage_bucket *b)
{
    for (size_t g = 0; g < b->group_count; g++) {
        aggregation_free(&b->groups[g]->aggregation);
        free(b->groups[g]);
    }
    free(b->groups);
    free(b->hashes);
    b->groups = NULL;
    b->hashes = NULL;
    b->group_count = b->group_cap = 0;
}

static void usage_free(struct usage *u)
{
    for (size_t i = 0; i < u->charge_count; i++) {
        for (size_t k = 0; u->charges[i].buckets && k <= u->charges[i].filter_count; k++) {
            aggregation_free(&u->charges[i].buckets[k].aggregation);
            free_groups(&u->charges[i].buckets[k]);
        }
    }
    free(u->events);
    free(u->saved);
    free(u->held);
    arena_free(&u->held_arena);
    struct arena a = u->arena; /* u lives in its own arena */
    arena_free(&a);
}

/* The book is an open-addressing table keyed by subscription id (linear probing,
 * backward-shift deletion), at most half full: one probe or two per event. */
static size_t slot_of(const struct usage_book *b, int64_t subscription_id)
{
    uint64_t h = (uint64_t)subscription_id * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 32) & (b->cap - 1);
}

void usage_book_init(struct usage_book *b)
{
    memset(b, 0, sizeof *b);
}

void usage_book_clear(struct usage_book *b)
{
    for (size_t i = 0; i < b->cap; i++) {
        if (b->items[i]) {
            usage_free(b->items[i]);
            b->items[i] = NULL;
        }
    }
    b->count = 0;
}

void usage_book_free(struct usage_book *b)
{
    usage_book_clear(b);
    free(b->items);
    free(b->reports);
    usage_book_init(b);
}

static size_t book_find(const struct usage_book *b, int64_t subscription_id)
{
    if (b->cap == 0)
        return SIZE_MAX;
    for (size_t i = slot_of(b, subscription_id);; i = (i + 1) & (b->cap - 1)) {
        if (!b->items[i])
            return SIZE_MAX;
        if (b->items[i]->subscription_id == subscription_id)
            return i;
    }
}

static void book_place(struct usage_book *b, struct usage *u)
{
    size_t i = slot_of(b, u->subscription_id);
    while (b->items[i])
        i = (i + 1) & (b->cap - 1);
    b->items[i] = u;
}

static bool book_put(struct usage_book *b, struct usage *u)
{
    if ((b->count + 1) * 2 > b->cap) {
        size_t old_cap = b->cap, cap = b->cap ? b->cap * 2 : 64;
        struct usage **old = b->items, **fresh = calloc(cap, sizeof *fresh);
        if (!fresh)
            return false;
        b->items = fresh;
        b->cap = cap;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i])
                book_place(b, old[i]);
        free(old);
    }
    book_place(b, u);
    b->count++;
    return true;
}

static void book_drop(struct usage_book *b, size_t hole)
{
    usage_free(b->items[hole]);
    b->items[hole] = NULL;
    b->count--;
    /* pull later members of the probe run back, so each stays reachable from its home */
    for (size_t j = (hole + 1) & (b->cap - 1); b->items[j]; j = (j + 1) & (b->cap - 1)) {
        size_t want = slot_of(b, b->items[j]->subscription_id);
        bool stays = hole <= j ? (want > hole && want <= j) : (want > hole || want <= j);
        if (!stays) {
            b->items[hole] = b->items[j];
            b->items[j] = NULL;
            hole = j;
        }
    }
}

/* ---- pricing groups ------------------------------------------------------------------------ */

/* A group's values hashed under the usage's key: each value alone (a missing one as a constant
 * no SipHash output is more likely to be), mixed in key order. Only orders the scan: values are
 * compared before a group is taken. */
static uint64_t group_hash(const struct usage *u, const char *const *values, size_t n)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++) {
        uint64_t x = values[i] ? siphash128(u->hash_key, values[i], strlen(values[i])).lo
                               : UINT64_C(0x6e756c6c); /* "null" */
        h = (h ^ x) * UINT64_C(0x9E3779B97F4A7C15);
        h ^= h >> 29;
    }
    return h;
}

static bool same_values(const char *const *a, const char *const *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((a[i] == NULL) != (b[i] == NULL) || (a[i] && strcmp(a[i], b[i]) != 0))
            return false;
    return true;
}

/* The index of b's group with these values (hashed to h), or SIZE_MAX. */
static size_t find_group(const struct usage_bucket *b, uint64_t h, const char *const *values)
{
    for (size_t g = 0; g < b->group_count; g++)
        if (b->hashes[g] == h && same_values((const char *const *)b->groups[g]->values, values,
                                             b->properties.group_key_count))
            return g;
    return SIZE_MAX;
}

/* A new group of b with these values, its state a copy of b's empty template (which owns no
 * memory): appended, and counted in the charge. NULL when out of memory. */
static struct usage_group *open_group(struct usage_charge *c, struct usage_bucket *b, uint64_t h,
                                      const char *const *values)
{
    size_t n = b->properties.group_key_count,
           size = sizeof(struct usage_group) + n * sizeof(char *);
    for (size_t i = 0; i < n; i++)
        size += values[i] ? strlen(values[i]) + 1 : 0;
    if (b->group_count == b->group_cap) {
        size_t cap = b->group_cap ? b->group_cap * 2 : 4;
        struct usage_group **groups = realloc(b->groups, sizeof *groups * cap);
        if (!groups)
            return NULL;
        b->groups = groups;
        uint64_t *hashes = realloc(b->hashes, sizeof *hashes * cap);
        if (!hashes)
            return NULL;
        b->hashes = hashes;
        b->group_cap = cap;
    }
    struct usage_group *g = malloc(size); /* owned by b: free_groups */
    if (!g)
        return NULL;
    g->aggregation = b->aggregation;
    g->carried = false;
    g->values = (const char **)(g + 1);
    char *text = (char *)(g->values + n);
    for (size_t i = 0; i < n; i++) {
        g->values[i] = values[i] ? text : NULL;
        if (values[i]) {
            size_t len = strlen(values[i]);
            memcpy(text, values[i], len + 1);
            text += len + 1;
        }
    }
    b->groups[b->group_count] = g;
    b->hashes[b->group_count++] = h;
    c->group_count++;
    return g;
}

/* Takes back the group open_group just appended (its state still empty). */
static void close_last_group(struct usage_charge *c, struct usage_bucket *b)
{
    struct usage_group *g = b->groups[--b->group_count];
    aggregation_free(&g->aggregation);
    free(g);
    c->group_count--;
}

/* The event's values for b's group keys (borrowed from e), and their hash. */
static uint64_t event_group(const struct usage *u, const struct usage_bucket *b,
                            const struct event *e, const char **values)
{
    for (size_t i = 0; i < b->properties.group_key_count; i++)
        values[i] = event_property(e, b->properties.group_keys[i]);
    return group_hash(u, values, b->properties.group_key_count);
}

const struct usage_group *usage_bucket_group_like(const struct usage *u,
                                                  const struct usage_bucket *b,
                                                  const struct usage_bucket *of,
                                                  const struct usage_group *g)
{
    size_t n = b->properties.group_key_count;
    if (n != of->properties.group_key_count)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(b->properties.group_keys[i], of->properties.group_keys[i]) != 0)
            return NULL;
    size_t at = find_group(b, group_hash(u, g->values, n), g->values);
    return at == SIZE_MAX ? NULL : b->groups[at];
}

/* ---- building from the plan ------------------------------------------------------------------ */

struct build {
    struct usage *u;
    struct store *st;
    int64_t org_id;
    struct arena *a;
    const char *failed;
    /* the organization's default taxes once read (organization_taxes), else NULL */
    const struct usage_tax *org_taxes;
    size_t org_tax_count;
    struct json_object *customer_codes; /* the customer's own taxes, or NULL; owned */
    /* A weighted sum's denominator: the whole charges' period in whole days (a month under
     * bill_charges_monthly), as Lago's charges_duration_in_days, even when the subscription
     * starts or ends within it. */
    tally_time weighted_duration;
    /* A prorated charge's days: the customer's zone (borrowed from the tz database) and name,
     * and the charges' period in whole local days (Lago's charges_duration_in_days). */
    const struct tz_zone *zone;
    const char *zone_name;
    int64_t period_days;
    /* the subscription ended by an upgrade on its usage's last day (ended_by_upgrade): a
     * prorated sum's carried value does not weigh that day (aggregation_set_upgraded) */
    bool upgraded;
};

static const char *copy(struct arena *a, struct json_object *v)
{
    if (!v || json_object_is_type(v, json_type_null))
        return NULL;
    return arena_strndup(a, json_object_get_string(v), (size_t)json_object_get_string_len(v));
}

static struct json_object *member(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;
    json_object_object_get_ex(o, key, &v);
    return v;
}

/* A tax from its catalog item, its strings copied into the usage's arena; with
 * `default_only`, only if it is one of the organization's default taxes
 * (applied_to_organization). *kept says whether it was read. */
static bool read_tax(struct build *b, const struct catalog_item *item, bool default_only,
                     struct usage_tax *tax, bool *kept)
{
    *kept = false;
    struct json_object *doc = json_tokener_parse(item->body);
    if (!doc)
        return false;
    if (default_only && !json_object_get_boolean(member(doc, "applied_to_organization"))) {
        json_object_put(doc);
        return true;
    }
    const char *rate = json_object_get_string(member(doc, "rate"));
    tax->lago_id = arena_strndup(b->a, item->lago_id, strlen(item->lago_id));
    tax->code = arena_strndup(b->a, item->code, strlen(item->code));
    tax->name = copy(b->a, member(doc, "name"));
    tax->description = copy(b->a, member(doc, "description"));
    *kept = rate && money_parse(rate, strlen(rate), &tax->rate) == MONEY_OK && tax->lago_id &&
            tax->code && tax->name;
    json_object_put(doc);
    return *kept;
}

_Static_assert(CUSTOMER_TAXES_MAX <= USAGE_TAXES_MAX && CATALOG_TAXES_MAX <= USAGE_TAXES_MAX,
               "a customer's, a definition's and the default taxes are all read");

/* The taxes named in `codes` that exist (missing ones are skipped, as answers skip them), at
 * most USAGE_TAXES_MAX, into `out` (that many long). */
static bool named_taxes(struct build *b, struct json_object *codes, struct usage_tax *out,
                        size_t *count)
{
    *count = 0;
    for (size_t i = 0; codes && i < json_object_array_length(codes) && i < USAGE_TAXES_MAX; i++) {
        struct catalog_item item;
        const char *code = json_object_get_string(json_object_array_get_idx(codes, i));
        enum store_status s =
            store_catalog_get(store_conn(b->st), b->org_id, CATALOG_TAX, code, &item, b->a);
        if (s == STORE_NOT_FOUND)
            continue;
        bool kept;
        if (s != STORE_OK || !read_tax(b, &item, false, &out[*count], &kept))
            return false;
        (*count)++;
    }
    return true;
}

/* The organization's default taxes (applied_to_organization), read once per build: the
 * first USAGE_TAXES_MAX of them, newest first as the catalog lists them. */
static bool organization_taxes(struct build *b)
{
    if (b->org_taxes)
        return true;
    enum { PAGE = 100 };
    struct usage_tax taxes[USAGE_TAXES_MAX];
    struct arena scratch;
    arena_init(&scratch);
    size_t count = 0;
    bool ok = true;
    for (int64_t offset = 0, total = 1; ok && offset < total; offset += PAGE) {
        struct catalog_item *items;
        size_t page;
        ok = store_catalog_list(store_conn(b->st), b->org_id, CATALOG_TAX, offset, PAGE, &items,
                                &page, &total, &scratch) == STORE_OK;
        for (size_t i = 0; ok && i < page && count < USAGE_TAXES_MAX; i++) {
            bool kept;
            ok = read_tax(b, &items[i], true, &taxes[count], &kept);
            count += kept;
        }
        if (ok && page == 0)
            break;
    }
    arena_free(&scratch);
    struct usage_tax *kept = ok ? arena_alloc(b->a, sizeof *kept * (count ? count : 1)) : NULL;
    if (!kept)
        return false;
    memcpy(kept, taxes, sizeof *kept * count);
    b->org_taxes = kept;
    b->org_tax_count = count;
    return true;
}

/*
 * The taxes a charge's fee carries, the one place they are resolved (as Lago's
 * Fees::ApplyTaxesService does for a charge fee): the charge's own taxes, else its plan's,
 * else its customer's, else the organization's default taxes (applied_to_organization). A
 * level applies when it names at least one tax that exists. Also the sum of their rates.
 */
static bool charge_taxes(struct build *b, struct json_object *charge_codes,
                         struct json_object *plan_codes, struct usage_charge *c)
{
    struct json_object *levels[] = {charge_codes, plan_codes, b->customer_codes};
    struct usage_tax named[USAGE_TAXES_MAX];
    size_t count = 0;
    for (size_t i = 0; i < sizeof levels / sizeof levels[0] && count == 0; i++)
        if (!named_taxes(b, levels[i], named, &count))
            return false;
    if (count > 0) {
        struct usage_tax *taxes = arena_alloc(b->a, sizeof *taxes * count);
        if (!taxes)
            return false;
        memcpy(taxes, named, sizeof *taxes * count);
        c->taxes = taxes;
        c->tax_count = count;
    } else {
        if (!organization_taxes(b))
            return false;
        c->taxes = b->org_taxes;
        c->tax_count = b->org_tax_count;
    }
    c->tax_rate = money_from_int(0);
    for (size_t i = 0; i < c->tax_count; i++)
        if (money_add(c->tax_rate, c->taxes[i].rate, &c->tax_rate) != MONEY_OK)
            return false;
    return true;
}

/* Metric names as Lago's current usage orders them: ASCII case ignored (NULL sorts first). */
static int compare_shown(const struct usage_charge *a, const struct usage_charge *b)
{
    const char *x = a->metric_name ? a->metric_name : "", *y = b->metric_name ? b->metric_name : "";
    return strcasecmp(x, y);
}

/* u->shown_order for charges read: a stable insertion sort (plans hold few charges). */
static size_t *shown_order(const struct usage *u, struct arena *a)
{
    size_t *order = arena_alloc(a, sizeof *order * (u->charge_count + 1));
    if (!order)
        return NULL;
    for (size_t i = 0; i < u->charge_count; i++) {
        size_t j = i;
        for (; j > 0 && compare_shown(&u->charges[order[j - 1]], &u->charges[i]) > 0; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    return order;
}

/* A charge filter's `values` object as an aggregation filter. */
static bool read_filter(struct arena *a, struct json_object *values, struct aggregation_filter *f)
{
    size_t n = (size_t)json_object_object_length(values), i = 0;
    struct aggregation_filter_key *keys = arena_alloc(a, sizeof *keys * (n ? n : 1));
    if (!keys)
        return false;
    json_object_object_foreach(values, key, list)
    {
        size_t count = json_object_array_length(list);
        const char **vals = arena_alloc(a, sizeof *vals * (count ? count : 1));
        if (!vals)
            return false;
        for (size_t k = 0; k < count; k++)
            vals[k] = copy(a, json_object_array_get_idx(list, k));
        keys[i].key = arena_strndup(a, key, strlen(key));
        keys[i].values = vals;
        keys[i].value_count = count;
        i++;
    }
    f->keys = keys;
    f->key_count = n;
    return true;
}

static bool init_bucket(struct build *b, struct usage_charge *c, struct usage_bucket *bucket,
                        struct json_object *props, enum charge_model_kind kind,
                        const uint8_t hash_key[16])
{
    struct buf scratch;
    struct jsonw w;
    struct json_in_error err;
    buf_init(&scratch);
    jsonw_init(&w, &scratch);
    bool ok = charge_json_properties(b->a, props, kind, &bucket->properties, &w, &err);
    buf_free(&scratch);
    if (!ok ||
        aggregation_init(&bucket->aggregation, &c->metric, b->u->from, b->u->to) != AGGREGATION_OK)
        return false;
    if (c->metric.aggregation == AGGREGATION_WEIGHTED_SUM &&
        aggregation_set_duration(&bucket->aggregation, b->weighted_duration) != AGGREGATION_OK)
        return false;
    if (c->prorated &&
        (aggregation_set_prorated(&bucket->aggregation, b->zone, b->period_days) !=
             AGGREGATION_OK ||
         (b->upgraded && aggregation_set_upgraded(&bucket->aggregation) != AGGREGATION_OK)))
        return false;
    uint64_t k0 = 0, k1 = 0;
    for (int i = 0; i < 8; i++) {
        k0 = (k0 << 8) | hash_key[i];
        k1 = (k1 << 8) | hash_key[8 + i];
    }
    if (c->metric.aggregation == AGGREGATION_UNIQUE_COUNT)
        aggregation_set_hash_key(&bucket->aggregation, k0, k1);
    /* a per-transaction min or max prices each event of a sum as it comes */
    if (charge_model_prices_each_event(&bucket->properties) &&
        c->metric.aggregation == AGGREGATION_SUM)
        aggregation_keep_priced(&bucket->aggregation, true);
    /* the percentage model may read a sum's earliest values, a prorated graduated walks
     * them all: keep as many as it reads */
    size_t values_read = charge_model_values_read(&bucket->properties, c->prorated);
    if (values_read > 0 && c->metric.aggregation == AGGREGATION_SUM)
        aggregation_keep_values(&bucket->aggregation, values_read == CHARGE_MODEL_VALUES_ALL
                                                          ? AGGREGATION_KEEP_ALL
                                                          : values_read);
    /* the dynamic model prices the events' own amounts: sum them beside the units */
    if (kind == CHARGE_MODEL_DYNAMIC && c->metric.aggregation == AGGREGATION_SUM)
        aggregation_keep_precise(&bucket->aggregation, true);
    return true;
}

/* What a bucket whose sums keep their events' prices priced them with (`which` names the
 * bucket): the state_key's, as a new price must price every event again. */
static void append_event_pricing(struct buf *text, size_t which,
                                 const struct charge_model_percentage *pc)
{
    char number[MONEY_TEXT_MAX];
    snprintf(number, sizeof number, "%zu", which);
    buf_append_char(text, 9);
    buf_append_str(text, number);
    const money_t *prices[] = {
        &pc->rate, pc->has_fixed_amount ? &pc->fixed_amount : NULL,
        pc->has_per_transaction_min_amount ? &pc->per_transaction_min_amount : NULL,
        pc->has_per_transaction_max_amount ? &pc->per_transaction_max_amount : NULL};
    for (size_t k = 0; k < sizeof prices / sizeof prices[0]; k++) {
        buf_append_char(text, 10);
        if (prices[k]) {
            money_format(*prices[k], number, sizeof number);
            buf_append_str(text, number);
        }
    }
}

/* The charge's state_key: what its states read of an event (the metric's code, aggregation,
 * field, recurrence and filters), its filters' values in order, how many values each bucket's
 * sum keeps, and the prices of a sum that adds up its events' prices. Not the metric's name or
 * rounding, nor other prices: they only price states (a price that reads more values, as a
 * new free_units_per_events, reads the events again). */
static bool state_key_of(struct usage_charge *c, const char *metric_code, const char *zone_name,
                         const uint8_t hash_key[16])
{
    const struct billable_metric *m = &c->metric;
    struct buf text;
    buf_init(&text);
    const char *fields[] = {metric_code, billable_metric_aggregation_name(m->aggregation),
                            m->field_name ? m->field_name : "", m->recurring ? "r" : "-"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        buf_append_str(&text, fields[i]);
        buf_append_char(&text, 0); /* separators no text holds */
    }
    for (size_t i = 0; i < m->filter_count; i++) {
        buf_append_char(&text, 1);
        buf_append_str(&text, m->filters[i].key);
        for (size_t v = 0; v < m->filters[i].value_count; v++) {
            buf_append_char(&text, 2);
            buf_append_str(&text, m->filters[i].values[v]);
        }
    }
    for (size_t i = 0; i < c->filter_count; i++) {
        buf_append_char(&text, 3);
        buf_append_str(&text, c->buckets[i].values_json);
    }
    /* only when set, so that the keys of states without them stay what they were */
    if (aggregation_keeps_precise(&c->buckets[0].aggregation))
        buf_append_char(&text, 4);
    for (size_t i = 0; i <= c->filter_count; i++) {
        const struct charge_model_properties *p = &c->buckets[i].properties;
        if (p->group_key_count == 0)
            continue;
        char which[24];
        snprintf(which, sizeof which, "%zu", i);
        buf_append_char(&text, 5);
        buf_append_str(&text, which);
        for (size_t g = 0; g < p->group_key_count; g++) {
            buf_append_char(&text, 6);
            buf_append_str(&text, p->group_keys[g]);
        }
    }
    for (size_t i = 0; i <= c->filter_count; i++) {
        size_t kept = aggregation_keeps_values(&c->buckets[i].aggregation);
        if (kept == 0)
            continue;
        char which[48];
        snprintf(which, sizeof which, "%zu:%zu", i, kept);
        buf_append_char(&text, 8);
        buf_append_str(&text, which);
    }
    for (size_t i = 0; i <= c->filter_count; i++)
        if (aggregation_keeps_priced(&c->buckets[i].aggregation))
            append_event_pricing(&text, i, &c->buckets[i].properties.percentage);
    /* a state counted from another line of the code's history is another state */
    if (c->history_after) {
        char after[24];
        snprintf(after, sizeof after, "%lld", (long long)c->history_after);
        buf_append_char(&text, 11);
        buf_append_str(&text, after);
    }
    /* a prorated state weighs days in the customer's zone: a new zone reads its events again */
    if (c->prorated) {
        buf_append_char(&text, 7);
        buf_append_str(&text, zone_name);
    }
    bool ok = !buf_failed(&text);
    if (ok)
        c->state_key = siphash128(hash_key, text.data, text.len);
    buf_free(&text);
    return ok;
}

enum charge_read {
    CHARGE_READ,
    CHARGE_READ_FAILED,
    CHARGE_METRIC_DELETED, /* the charge went with its metric, as in Lago: it prices nothing */
};

static enum charge_read read_charge(struct build *b, struct json_object *charge,
                                    struct json_object *plan_taxes, struct usage_charge *c,
                                    const uint8_t hash_key[16])
{
    struct catalog_item metric;
    const char *metric_id = copy(b->a, member(charge, "billable_metric_id"));
    if (!metric_id)
        return CHARGE_READ_FAILED;
    enum store_status s = store_catalog_get_by_lago_id(
        store_conn(b->st), b->org_id, CATALOG_BILLABLE_METRIC, metric_id, &metric, b->a);
    if (s == STORE_NOT_FOUND)
        return CHARGE_METRIC_DELETED;
    if (s != STORE_OK || !metric_json_read(b->a, metric.body, &c->metric) ||
        store_metric_history_floor(store_conn(b->st), b->org_id, metric.code, &c->history_after) !=
            STORE_OK)
        return CHARGE_READ_FAILED;
    struct json_object *metric_doc = json_tokener_parse(metric.body);
    c->metric_name = metric_doc ? copy(b->a, member(metric_doc, "name")) : NULL;
    c->metric_description = metric_doc ? copy(b->a, member(metric_doc, "description")) : NULL;
    json_object_put(metric_doc);
    c->metric_lago_id = metric_id;
    c->metric_code = metric.code;
    c->lago_id = copy(b->a, member(charge, "lago_id"));
    c->charge_model = copy(b->a, member(charge, "charge_model"));
    c->invoice_display_name = copy(b->a, member(charge, "invoice_display_name"));
    c->pay_in_advance = json_object_get_boolean(member(charge, "pay_in_advance"));
    struct json_object *invoiceable = member(charge, "invoiceable");
    c->invoiceable = !invoiceable || json_object_get_boolean(invoiceable);
    /* only where the API lets it in: a charge stored otherwise prices whole, as it did */
    c->prorated = json_object_get_boolean(member(charge, "prorated")) && c->metric.recurring &&
                  (c->metric.aggregation == AGGREGATION_SUM ||
                   c->metric.aggregation == AGGREGATION_UNIQUE_COUNT);
    enum charge_model_kind kind;
    if (!c->lago_id || !c->charge_model ||
        !charge_model_kind_parse(c->charge_model, strlen(c->charge_model), &kind))
        return CHARGE_READ_FAILED;
    if (!charge_taxes(b, member(charge, "tax_codes"), plan_taxes, c))
        return CHARGE_READ_FAILED;
    struct json_object *filters = member(charge, "filters");
    c->filter_count = filters ? json_object_array_length(filters) : 0;
    c->filters = arena_alloc(b->a, sizeof *c->filters * (c->filter_count + 1));
    c->buckets = arena_alloc(b->a, sizeof *c->buckets * (c->filter_count + 1));
    if (!c->filters || !c->buckets)
        return CHARGE_READ_FAILED;
    for (size_t i = 0; i < c->filter_count; i++) {
        struct json_object *f = json_object_array_get_idx(filters, i);
        struct json_object *values = member(f, "values");
        struct usage_bucket *bucket = &c->buckets[i];
        bucket->invoice_display_name = copy(b->a, member(f, "invoice_display_name"));
        if (!values)
            return CHARGE_READ_FAILED;
        const char *text = json_object_to_json_string_ext(values, JSON_C_TO_STRING_PLAIN);
        bucket->values_json = arena_strndup(b->a, text, strlen(text));
        if (!read_filter(b->a, values, &c->filters[i]) ||
            !init_bucket(b, c, bucket, member(f, "properties"), kind, hash_key))
            return CHARGE_READ_FAILED;
    }
    if (!init_bucket(b, c, &c->buckets[c->filter_count], member(charge, "properties"), kind,
                     hash_key) ||
        !state_key_of(c, metric.code, b->zone_name, hash_key))
        return CHARGE_READ_FAILED;
    return CHARGE_READ;
}

struct replay {
    struct usage *u;
    bool ok;
    /* the events were there when the period began (aggregation_carry_in), not late ones */
    bool past;
    /* the events came in the period: held (usage.held) for their place among its own */
    bool hold;
};

static enum aggregation_status apply(struct usage *u, const struct event *e, tally_time timestamp,
                                     uint64_t sequence, bool bounded, bool past);

/* A stored event's text applied as apply() takes it. */
static bool apply_text(struct usage *u, const char *code, const char *properties_json,
                       const char *precise_total_amount_cents, tally_time timestamp, int64_t id,
                       bool past)
{
    struct event e = {.code = code};
    struct arena scratch;
    arena_init(&scratch);
    bool ok = event_json_properties_text(&scratch, properties_json, &e) &&
              event_json_precise_text(precise_total_amount_cents, &e) &&
              apply(u, &e, timestamp, (uint64_t)id, false, past) == AGGREGATION_OK;
    arena_free(&scratch);
    return ok;
}

static bool replay_event(const struct store_event *stored, void *ctx)
{
    struct replay *r = ctx;
    r->u->events_read++;
    r->ok = apply_text(r->u, stored->code, stored->properties_json,
                       stored->precise_total_amount_cents, stored->timestamp, stored->id, r->past);
    return r->ok;
}

/* Keeps an event that came in the period for its place among the period's own (apply_held). */
static bool hold_event(struct usage *u, const struct store_event *stored)
{
    u->events_read++;
    if (!vec_room((void **)&u->held, &u->held_cap, u->held_count, sizeof *u->held, 16))
        return false;
    struct usage_held *h = &u->held[u->held_count];
    *h = (struct usage_held){.id = stored->id, .timestamp = stored->timestamp};
    h->code = arena_strndup(&u->held_arena, stored->code, strlen(stored->code));
    h->properties_json =
        arena_strndup(&u->held_arena, stored->properties_json, strlen(stored->properties_json));
    h->precise_total_amount_cents =
        stored->precise_total_amount_cents
            ? arena_strndup(&u->held_arena, stored->precise_total_amount_cents,
                            strlen(stored->precise_total_amount_cents))
            : NULL;
    if (!h->code || !h->properties_json ||
        (stored->precise_total_amount_cents && !h->precise_total_amount_cents))
        return false;
    u->held_count++;
    return true;
}

static int held_order(const void *a, const void *b)
{
    int64_t x = ((const struct usage_held *)a)->id, y = ((const struct usage_held *)b)->id;
    return (x > y) - (x < y);
}

static void drop_held(struct usage *u);

/* Applies the held events accepted before event `below` (INT64_MAX: all of them), in
 * acceptance order, and lets the list go once it is through. */
static bool apply_held(struct usage *u, int64_t below)
{
    for (; u->held_next < u->held_count && u->held[u->held_next].id < below; u->held_next++) {
        const struct usage_held *h = &u->held[u->held_next];
        if (!apply_text(u, h->code, h->properties_json, h->precise_total_amount_cents, h->timestamp,
                        h->id, false))
            return false;
    }
    if (u->held_next == u->held_count && u->held_cap > 0)
        drop_held(u);
    return true;
}

/* Lets go the held events not applied: those a usage as it stood at an earlier event leaves
 * out (usage_build_apart's late_through). */
static void drop_held(struct usage *u)
{
    free(u->held);
    arena_free(&u->held_arena);
    u->held = NULL;
    u->held_count = u->held_next = u->held_cap = 0;
}

/* One of the period's own events, after the held events accepted before it. */
static bool replay_own(const struct store_event *stored, void *ctx)
{
    struct replay *r = ctx;
    r->ok = apply_held(r->u, stored->id);
    return r->ok && replay_event(stored, ctx);
}

/* Keeps the references that may still count (timestamped at or after `from`), and replays
 * those of the period from the store, in acceptance order (which is id order), each after the
 * held events (carry_recurring) accepted before it. */
static bool replay_refs(struct store *st, struct usage *u, const struct usage_event_ref *refs,
                        size_t count)
{
    int64_t *ids = malloc(sizeof *ids * (count ? count : 1));
    size_t n = 0;
    bool ok = ids != NULL;
    for (size_t i = 0; ok && i < count; i++) {
        if (refs[i].timestamp < u->from)
            continue;
        ok = usage_note(u, refs[i].id, refs[i].timestamp);
        if (refs[i].timestamp < u->to)
            ids[n++] = refs[i].id;
    }
    bool any = false; /* a charge that takes the events (not handed over) */
    for (size_t i = 0; i < u->charge_count && !any; i++)
        any = !u->charges[i].handed_over;
    struct replay r = {u, true, false, false};
    if (ok && any)
        ok = store_events_by_id(store_conn(st), ids, n, replay_own, &r) == STORE_OK && r.ok;
    free(ids);
    return ok;
}

/* The charge of `previous` with the same state_key as c, or NULL. */
static const struct usage_charge *same_charge(const struct usage *previous,
                                              const struct usage_charge *c)
{
    for (size_t j = 0; j < previous->charge_count; j++)
        if (memcmp(&previous->charges[j].state_key, &c->state_key, sizeof c->state_key) == 0)
            return &previous->charges[j];
    return NULL;
}

/* Carries one state into the next period's, marked as a build from the store marks it: any
 * earlier event taken, even one whose value went again (a unique count's remove). */
static bool carry_state(const struct aggregation *from, bool from_carried, struct aggregation *to,
                        bool *to_carried)
{
    if (aggregation_carry_over(from, to) != AGGREGATION_OK)
        return false;
    *to_carried = from_carried || !aggregation_is_empty(from);
    return true;
}

/* Carries a bucket, and each of its groups into a group of the same values. */
static bool carry_bucket(struct usage_charge *c, const struct usage_bucket *from,
                         struct usage_bucket *to)
{
    if (!carry_state(&from->aggregation, from->carried, &to->aggregation, &to->carried))
        return false;
    for (size_t g = 0; g < from->group_count; g++) {
        const struct usage_group *p = from->groups[g];
        struct usage_group *n = open_group(c, to, from->hashes[g], (const char *const *)p->values);
        if (!n || !carry_state(&p->aggregation, p->carried, &n->aggregation, &n->carried))
            return false;
    }
    return true;
}

/*
 * Starts each recurring charge from the end state of the same charge (same state_key) in
 * `previous`, the usage of the period just before: everything earlier is in it already, so
 * the new period reads nothing of the past (carry_recurring reads only what other
 * subscriptions of the external id stored for the period). All the charges of a metric or
 * none: a metric's events are applied to all its charges, so one charge read from the store
 * would bring its past into the others again.
 */
static bool carry_from_previous(struct usage *u, const struct usage *previous)
{
    if (!previous || previous->to != u->from)
        return true;
    for (size_t i = 0; i < u->charge_count; i++) {
        struct usage_charge *c = &u->charges[i];
        bool all = c->metric.recurring;
        for (size_t k = 0; all && k < u->charge_count; k++)
            if (strcmp(u->charges[k].metric_code, c->metric_code) == 0)
                all = same_charge(previous, &u->charges[k]) != NULL;
        if (!all)
            continue;
        const struct usage_charge *p = same_charge(previous, c);
        for (size_t k = 0; k <= c->filter_count; k++)
            if (!carry_bucket(c, &p->buckets[k], &c->buckets[k]))
                return false;
        c->carried_over = true;
    }
    return true;
}

/*
 * Marks the charges whose states `donor` (the usage being rebuilt, same period, none of its
 * events taken back) can hand over: same state_key, each donor charge once. donor_of[i] is
 * the donor charge of charge i.
 */
static void match_donor(struct usage *u, const struct usage *donor, size_t *donor_of)
{
    if (!donor || donor->from != u->from || donor->to != u->to)
        return;
    for (size_t i = 0; i < u->charge_count; i++) {
        for (size_t j = 0; j < donor->charge_count; j++) {
            bool taken = false;
            for (size_t k = 0; k < i && !taken; k++)
                taken = u->charges[k].handed_over && donor_of[k] == j;
            if (!taken && memcmp(&donor->charges[j].state_key, &u->charges[i].state_key,
                                 sizeof u->charges[i].state_key) == 0) {
                u->charges[i].handed_over = true;
                donor_of[i] = j;
                break;
            }
        }
    }
}

/* Moves the matched states over (they leave the donor empty): once nothing can fail. */
static void take_over(struct usage *u, struct usage *donor, const size_t *donor_of)
{
    for (size_t i = 0; i < u->charge_count; i++) {
        struct usage_charge *c = &u->charges[i];
        if (!c->handed_over)
            continue;
        struct usage_charge *d = &donor->charges[donor_of[i]];
        assert(d->filter_count == c->filter_count);
        for (size_t k = 0; k <= c->filter_count; k++) {
            struct usage_bucket *to = &c->buckets[k], *from = &d->buckets[k];
            aggregation_free(&to->aggregation); /* a fresh state: owns nothing */
            free_groups(to);                    /* and has no group yet */
            to->aggregation = from->aggregation;
            to->carried = from->carried;
            memset(&from->aggregation, 0, sizeof from->aggregation);
            /* same state_key: same group keys, so the groups and their hashes hold */
            to->groups = from->groups;
            to->hashes = from->hashes;
            to->group_count = from->group_count;
            to->group_cap = from->group_cap;
            from->groups = NULL;
            from->hashes = NULL;
            from->group_count = from->group_cap = 0;
        }
        c->group_count = d->group_count;
        d->group_count = 0;
        c->handed_over = false;
    }
}

/* A stored event of a recurring metric as a build takes it: those of this subscription's
 * period are among its references (replay_refs), every other one is applied here. */
static bool carry_event(const struct store_event *stored, void *ctx)
{
    struct replay *r = ctx;
    if (stored->subscription_id == r->u->subscription_id && stored->timestamp >= r->u->from)
        return true;
    if (r->hold)
        return r->ok = hold_event(r->u, stored);
    return replay_event(stored, ctx);
}

/*
 * Starts every recurring charge from the events of its metric before the period, and those of
 * the period stored under an earlier subscription of the same external id (sent ahead before
 * a plan change). A charge carried over from the previous period (carry_from_previous) has the
 * first already: it reads only the second.
 *
 * In two parts, as the live rollover sees them (store_recurring_part): first the past as it
 * stood when the period began (accepted before it), taken with aggregation_carry_in, so that a
 * pay-in-advance charge's peak starts at the units carried, as aggregation_carry_over starts it;
 * then what came in the period, each event raising the peak as it did when it arrived (late
 * events, as docs/API.md says). Replayed as one, the carried past made the previous periods'
 * peak this one's: a restart, an upgrade's new subscription or a clock moved over several
 * periods billed April on March's most (an audit). This one function serves every build from
 * nothing (a start, a plan change, a usage that left the book, a subscription made again under
 * the external id, usage_build_apart).
 * The second part is only read here, into u->held, sorted by id: the period's own events are
 * taken from the store after it (replay_refs, or the start-up scan), and each held event is
 * applied just before the first of them accepted after it (apply_held), all of them in the
 * order they were accepted, as live. Taken before the own events, a late -10 after an April
 * +10 left a peak of 2 where 12 was billed, and the next event gave the difference back (an
 * audit).
 */
static bool carry_recurring(struct store *st, struct usage *u)
{
    struct replay r = {u, true, false, false};
    for (int part = 0; part < 2 && r.ok; part++) {
        r.past = part == 0;
        r.hold = part == 1;
        for (size_t i = 0; i < u->charge_count; i++) {
            const struct usage_charge *c = &u->charges[i];
            bool seen = false; /* charges sharing a metric take its events in one pass */
            for (size_t j = 0; j < i && !seen; j++)
                seen = !u->charges[j].handed_over &&
                       u->charges[j].carried_over == c->carried_over &&
                       strcmp(u->charges[j].metric_code, c->metric_code) == 0;
            if (!c->metric.recurring || c->handed_over || seen || (r.past && c->carried_over))
                continue;
            if (store_recurring_event_each(
                    store_conn(st), u->org_id, u->external_id, c->metric_code, u->customer_id,
                    r.past ? STORE_RECURRING_CARRIED : STORE_RECURRING_LATER, u->from,
                    u->subscription_id, c->history_after, carry_event, &r) != STORE_OK)
                return false;
        }
    }
    /* a metric's events are in id order, the metrics' one after the other */
    if (u->held_count > 1)
        qsort(u->held, u->held_count, sizeof *u->held, held_order);
    return r.ok;
}

/* The stored events a build would read: the period's references, and the recurring index,
 * for the charges whose states are not handed over. */
static size_t events_to_read(const struct usage *u, const struct usage_event_ref *refs,
                             size_t ref_count)
{
    size_t count = 0;
    bool recurring = false, any = false;
    for (size_t i = 0; i < u->charge_count; i++) {
        any = any || !u->charges[i].handed_over;
        recurring = recurring || (!u->charges[i].handed_over && u->charges[i].metric.recurring);
    }
    for (size_t i = 0; any && i < ref_count; i++)
        count += refs[i].timestamp >= u->from && refs[i].timestamp < u->to;
    return count + recurring;
}

/*
 * Whether sub's usage over [from, to) is that of a subscription that ended by an upgrade within
 * it: its successor (not canceled) started at its termination, and that instant is in the
 * usage, so its local day is the usage's last (a downgrade's switch is the period's end, past
 * it; a DELETE's canceled downgrade is no successor). Lago's `terminated? && upgraded?`, read
 * from the rows as they are, so a restart decides the same. False on a read error: the day
 * is then billed, as before this rule.
 */
static bool ended_by_upgrade(struct store *st, const struct subscription *sub, tally_time from,
                             tally_time to, struct arena *a)
{
    struct store_subscription next;
    if (!sub->next_id || !sub->has_terminated_at || sub->terminated_at < from ||
        sub->terminated_at >= to ||
        store_subscription_get(store_conn(st), sub->org_id, sub->next_id, &next, a) != STORE_OK)
        return false;
    return !next.sub.has_canceled_at && next.sub.started_at == sub->terminated_at;
}

/* A usage of the subscription's charges' period containing `now` (a month under
 * bill_charges_monthly: subscription_charges_period), from its plan, the charges' states
 * `donor` hands over, and the stored events. With would_read, no event is read: NULL, with
 * how many it would read there, when some are needed. */
static struct usage *build(struct store *st, struct tzdb *tzdb,
                           const struct store_subscription *row, tally_time now,
                           const uint8_t hash_key[16], const struct usage_event_ref *refs,
                           size_t ref_count, struct usage *donor, const struct usage *previous,
                           bool hold, size_t *would_read, const char **failed)
{
    size_t *donor_of = NULL;
    struct arena a;
    arena_init(&a);
    struct usage *u = arena_alloc(&a, sizeof *u);
    if (!u) {
        arena_free(&a);
        return NULL;
    }
    u->arena = a; /* the usage owns its arena (and lives in it): allocate through u->arena */
    memcpy(u->hash_key, hash_key, sizeof u->hash_key);
    struct build b = {.u = u, .st = st, .org_id = row->sub.org_id, .a = &u->arena};
    struct json_object *plan = NULL;
    struct catalog_item item;
    struct plan_terms terms;
    struct period period;
    u->subscription_id = row->sub.id;
    u->org_id = row->sub.org_id;
    u->customer_id = row->sub.customer_id;
    u->successor_id = row->sub.next_id;
    u->external_id = arena_strndup(b.a, row->sub.external_id, strlen(row->sub.external_id));
    /* a deleted plan too, as it was when deleted: the subscriptions its deletion ended keep
     * their usage in the book, and their late events, as any terminated subscription's; a
     * build that failed for them had the deletion's re-pricing leave the book incomplete */
    const char *body = row->sub.plan_body;
    if (!body && store_catalog_get_any_by_lago_id(store_conn(st), b.org_id, CATALOG_PLAN,
                                                  row->sub.plan_lago_id, &item, b.a) == STORE_OK)
        body = item.body;
    const char *tz = row->customer_timezone ? row->customer_timezone : "UTC";
    const struct tz_zone *zone = tzdb ? tzdb_get(tzdb, tz, strlen(tz)) : NULL;
    *failed = "plan";
    if (!u->external_id || !body || !plan_json_terms(body, &terms) || !zone ||
        subscription_charges_period(&row->sub, &terms, zone, now, &period) != PERIOD_OK ||
        !(plan = json_tokener_parse(body)))
        goto fail;
    u->from = subscription_usage_from(&row->sub, &period);
    u->to = subscription_usage_to(&row->sub, &period);
    u->period_end = period.end;
    /* the plan's period around the charges' (the same one but under bill_charges_monthly, whose
     * months tile the year or half year): u->from is in both */
    struct period_spec plan_spec = subscription_period_spec(&row->sub, &terms, zone);
    struct period plan_period;
    if (period_containing(&plan_spec, u->from, &plan_period) != PERIOD_OK)
        goto fail;
    u->plan_period_end = plan_period.end;
    b.weighted_duration = period_days(&period) * 86400 * INT64_C(1000000);
    b.zone = zone;
    b.zone_name = tz;
    b.period_days = period_days(&period);
    b.upgraded = ended_by_upgrade(st, &row->sub, u->from, u->to, b.a);
    memcpy(u->currency, terms.currency, sizeof u->currency);
    *failed = "customer";
    b.customer_codes = row->customer_tax_codes ? json_tokener_parse(row->customer_tax_codes) : NULL;
    if (row->customer_tax_codes && !json_object_is_type(b.customer_codes, json_type_array))
        goto fail; /* Tally's own canonical array: never, but no tax is dropped silently */
    *failed = "plan";
    const struct currency *cur = currency_find(u->currency, strlen(u->currency));
    u->exponent = cur && cur->exponent >= 0 ? cur->exponent : 2;
    struct json_object *charges = member(plan, "charges");
    size_t n = charges ? json_object_array_length(charges) : 0;
    u->charges = arena_alloc(b.a, sizeof *u->charges * (n + 1));
    if (!u->charges)
        goto fail;
    for (size_t i = 0, kept = 0; i < n; i++) {
        u->charge_count = kept + 1; /* so that usage_free releases what this charge inits */
        enum charge_read r = read_charge(&b, json_object_array_get_idx(charges, i),
                                         member(plan, "tax_codes"), &u->charges[kept], hash_key);
        if (r == CHARGE_READ_FAILED)
            goto fail;
        if (r == CHARGE_READ)
            kept++;
        else
            memset(&u->charges[kept], 0, sizeof u->charges[kept]);
        u->charge_count = kept;
    }
    if (!(u->shown_order = shown_order(u, b.a)))
        goto fail;
    *failed = "events";
    donor_of = donor ? malloc(sizeof *donor_of * (u->charge_count + 1)) : NULL;
    if (donor_of)
        match_donor(u, donor, donor_of);
    if (would_read && (*would_read = events_to_read(u, refs, ref_count)) > 0)
        goto fail;
    /* held events left for the scan (hold) are its own to apply: no state is handed over then */
    if (!carry_from_previous(u, previous) || !carry_recurring(st, u) ||
        !replay_refs(st, u, refs, ref_count) || (!hold && !apply_held(u, INT64_MAX)))
        goto fail;
    for (size_t i = 0; i < u->charge_count; i++)
        u->charges[i].carried_over = false;
    if (donor_of)
        take_over(u, donor, donor_of);
    free(donor_of);
    json_object_put(plan);
    json_object_put(b.customer_codes);
    *failed = NULL;
    return u;
fail:
    free(donor_of);
    json_object_put(plan);
    json_object_put(b.customer_codes);
    usage_free(u);
    return NULL;
}

/* A new usage for the subscription's current period, taking over `old`'s references, and the
 * states of `donor` (old itself, or NULL) that it can (match_donor), or the recurring states
 * `old` ended its period with, when it is the period before (carry_from_previous). */
static struct usage *rebuild(struct store *st, struct tzdb *tzdb,
                             const struct store_subscription *row, tally_time now,
                             const uint8_t hash_key[16], struct usage *old, bool donor,
                             bool previous, bool hold, size_t *would_read, const char **failed)
{
    struct usage *u =
        build(st, tzdb, row, now, hash_key, old ? old->events : NULL, old ? old->event_count : 0,
              donor ? old : NULL, previous ? old : NULL, hold && !donor, would_read, failed);
    /* the late events that arrived in the period stay its own while it is the same period;
     * states handed over keep the past they took after the period's events */
    if (u && old && u->from == old->from) {
        u->late_from = old->late_from;
        u->rebuild_at_start = donor && old->rebuild_at_start;
    }
    return u;
}

struct usage *usage_build_apart(struct store *st, struct tzdb *tzdb,
                                const struct store_subscription *row, tally_time at,
                                const uint8_t hash_key[16], const struct usage_event_ref *refs,
                                size_t ref_count, int64_t late_through)
{
    const char *failed;
    struct usage *u =
        build(st, tzdb, row, at, hash_key, refs, ref_count, NULL, NULL, true, NULL, &failed);
    if (!u)
        return NULL;
    if (!apply_held(u, late_through < INT64_MAX ? late_through + 1 : INT64_MAX)) {
        usage_free(u);
        return NULL;
    }
    drop_held(u);
    return u;
}

void usage_release(struct usage *u)
{
    if (u)
        usage_free(u);
}

#define USAGE_REPORTS_MAX 64 /* unsaid reports kept; the engine takes them after each batch */

/*
 * Counts into the book what usage u passed over since last counted, and, when `say`, keeps a
 * report of it for stderr, unless `old` (the usage u replaces) said the same already: a
 * rebuild that meets the same events says nothing new.
 */
static void collect_passed(struct usage_book *b, struct usage *u, const struct usage *old, bool say)
{
    b->passed_over += u->passed_over - u->passed_over_counted;
    u->passed_over_counted = u->passed_over;
    if (u->passed_over == 0 || u->passed_over_said || !say)
        return;
    u->passed_over_said = true;
    if (old && old->passed_over_said && old->passed_over == u->passed_over &&
        old->passed_over_id == u->passed_over_id)
        return;
    if (b->report_count >= USAGE_REPORTS_MAX ||
        !vec_room((void **)&b->reports, &b->report_cap, b->report_count, sizeof *b->reports, 4))
        return; /* still counted: the report only names it */
    struct usage_passed_report *r = &b->reports[b->report_count++];
    *r = (struct usage_passed_report){.org_id = u->org_id,
                                      .subscription_id = u->subscription_id,
                                      .count = u->passed_over,
                                      .event_id = u->passed_over_id,
                                      .why = u->passed_over_why};
    snprintf(r->code, sizeof r->code, "%s", u->passed_over_code ? u->passed_over_code : "?");
    snprintf(r->external_id, sizeof r->external_id, "%s", u->external_id ? u->external_id : "");
}

bool usage_book_take_report(struct usage_book *b, struct usage_passed_report *out)
{
    if (b->report_count == 0)
        return false;
    *out = b->reports[0];
    memmove(b->reports, b->reports + 1, (b->report_count - 1) * sizeof *b->reports);
    b->report_count--;
    return true;
}

struct usage *usage_book_get(struct usage_book *b, struct store *st, struct tzdb *tzdb,
                             const struct store_subscription *row, tally_time now,
                             const uint8_t hash_key[16], const char **failed)
{
    size_t i = book_find(b, row->sub.id);
    /* the period containing now; or, for a subscription not started yet (a scheduled
     * downgrade), its first, which stays its period until it starts */
    if (i != SIZE_MAX && now < b->items[i]->to &&
        (now >= b->items[i]->from ? !b->items[i]->rebuild_at_start
                                  : subscription_status_at(&row->sub, now) == SUBSCRIPTION_PENDING))
        return b->items[i];
    /* none yet, the period moved on, or it began with a past the usage took after its events
     * (rebuild_at_start): the period's events are among the references */
    struct usage *u = rebuild(st, tzdb, row, now, hash_key, i != SIZE_MAX ? b->items[i] : NULL,
                              false, true, b->holding, NULL, failed);
    if (!u)
        return NULL;
    b->builds++;
    b->events_read += u->events_read;
    /* (the start-up scan adds its events after: said at usage_book_settle) */
    collect_passed(b, u, i != SIZE_MAX ? b->items[i] : NULL, !b->holding);
    if (i != SIZE_MAX) {
        usage_free(b->items[i]);
        b->items[i] = u;
        return u;
    }
    if (!book_put(b, u)) {
        usage_free(u);
        *failed = "memory";
        return NULL;
    }
    return u;
}

bool usage_book_refresh(struct usage_book *b, struct store *st, struct tzdb *tzdb, int64_t org_id,
                        int64_t subscription_id, tally_time now, const uint8_t hash_key[16],
                        size_t keep, size_t *would_read)
{
    assert(!would_read || keep == SIZE_MAX);
    if (would_read)
        *would_read = 0;
    size_t i = book_find(b, subscription_id);
    if (i == SIZE_MAX)
        return true;
    struct usage *old = b->items[i];
    /* repriced, nothing taken back: the states that do not change can move over (a take-back
     * may have to undo an earlier period's event carried in, which leaves no reference) */
    bool donor = keep == SIZE_MAX;
    if (keep < old->event_count)
        old->event_count = keep;
    struct arena scratch;
    arena_init(&scratch);
    struct store_subscription row;
    const char *failed;
    struct usage *u = NULL;
    enum store_status s =
        store_subscription_get(store_conn(st), org_id, subscription_id, &row, &scratch);
    if (s == STORE_OK)
        u = rebuild(st, tzdb, &row, now, hash_key, old, donor, false, false, would_read, &failed);
    arena_free(&scratch);
    if (!u && would_read && *would_read > 0)
        return true; /* left as it was: the caller reads them, or rescans */
    if (u) {
        b->builds++;
        b->events_read += u->events_read;
        collect_passed(b, u, old, true);
    }
    if (!u && s != STORE_NOT_FOUND)
        return false;
    book_drop(b, i); /* frees `old`, whose references `u` has copied */
    if (u && !book_put(b, u)) {
        usage_free(u);
        return false;
    }
    return true;
}

void usage_book_forget(struct usage_book *b, int64_t subscription_id)
{
    size_t i = book_find(b, subscription_id);
    if (i != SIZE_MAX)
        book_drop(b, i);
}

void usage_book_hold(struct usage_book *b)
{
    b->holding = true;
}

bool usage_book_settle(struct usage_book *b)
{
    bool ok = true;
    b->holding = false;
    for (size_t i = 0; i < b->cap; i++) {
        if (b->items[i]) {
            ok = apply_held(b->items[i], INT64_MAX) && ok;
            collect_passed(b, b->items[i], NULL, true);
        }
    }
    return ok;
}

void usage_book_each(struct usage_book *b, void (*fn)(struct usage *u, void *ctx), void *ctx)
{
    for (size_t i = 0; i < b->cap; i++)
        if (b->items[i])
            fn(b->items[i], ctx);
}

struct usage *usage_book_find(struct usage_book *b, int64_t subscription_id)
{
    size_t i = book_find(b, subscription_id);
    return i == SIZE_MAX ? NULL : b->items[i];
}

bool usage_note(struct usage *u, int64_t id, tally_time timestamp)
{
    if (timestamp < u->from)
        return true; /* an earlier period's: never counted here again */
    if (!vec_room((void **)&u->events, &u->event_cap, u->event_count, sizeof *u->events, 64))
        return false;
    u->events[u->event_count++] = (struct usage_event_ref){id, timestamp};
    return true;
}

bool usage_has_counted(const struct usage *u, int64_t id, tally_time timestamp)
{
    if (timestamp < u->from)
        return true;
    size_t lo = 0, hi = u->event_count; /* the references are in acceptance order: id order */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (u->events[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < u->event_count && u->events[lo].id == id;
}

void usage_note_late(struct usage *u, int64_t id, tally_time timestamp, tally_time arrived)
{
    if (timestamp < u->from && arrived >= u->from && (u->late_from == 0 || id < u->late_from))
        u->late_from = id;
}

/* ---- events ------------------------------------------------------------------------------- */

/* The metric's field (field_name, NULL: none) and the operation of `e`, borrowed, into ev: what
 * every aggregation reads of an event (a charge's, and the check of one not charged). */
static void read_fields(const char *field_name, const struct event *e, struct aggregation_event *ev)
{
    for (size_t p = 0; field_name && p < e->property_count; p++) {
        if (strcmp(e->properties[p].key, field_name) == 0) {
            ev->value = e->properties[p].value;
            ev->value_len = ev->value ? strlen(ev->value) : 0;
            ev->value_is_string = e->properties[p].is_string;
            break;
        }
    }
    ev->operation_type = event_property(e, "operation_type");
}

enum aggregation_status usage_check_event(enum billable_metric_aggregation kind,
                                          const char *field_name, const struct event *e)
{
    if (kind == AGGREGATION_COUNT)
        return AGGREGATION_OK; /* reads nothing: no property to look for */
    struct aggregation_event ev = {0};
    read_fields(field_name, e, &ev);
    return aggregation_check(kind, &ev);
}

/* What a charge's aggregation sees of an event: its metric's field, borrowed from `e`. */
static struct aggregation_event aggregation_event_of(const struct usage_charge *c,
                                                     const struct event *e, tally_time timestamp,
                                                     uint64_t sequence)
{
    struct aggregation_event ev = {.timestamp = timestamp, .sequence = sequence};
    read_fields(c->metric.field_name, e, &ev);
    /* an in-advance fee never goes down (Lago zeroes a negative one): a negative price brings
     * nothing to a pay-in-advance dynamic charge */
    if (e->has_precise_total_amount_cents &&
        !(c->pay_in_advance && money_sign(e->precise_total_amount_cents) < 0))
        ev.precise_total_amount_cents = &e->precise_total_amount_cents;
    return ev;
}

bool usage_savepoint(struct usage *u, uint64_t command)
{
    assert(command != 0);
    if (u->savepoint == command)
        return false;
    u->savepoint = command;
    u->savepoint_keep = u->event_count;
    u->savepoint_complete = true;
    u->saved_count = 0;
    return true;
}

/* Copies a state (a bucket's or a group's) before the savepoint's command first changes it. */
static void save_state(struct usage *u, struct aggregation *state, bool *carried)
{
    if (!u->savepoint || !u->savepoint_complete)
        return;
    for (size_t i = 0; i < u->saved_count; i++)
        if (u->saved[i].state == state)
            return;
    if (!aggregation_is_flat(state) ||
        !vec_room((void **)&u->saved, &u->saved_cap, u->saved_count, sizeof *u->saved, 4)) {
        u->savepoint_complete = false;
        return;
    }
    u->saved[u->saved_count++] = (struct usage_saved_bucket){state, carried, *state, *carried};
}

bool usage_rollback(struct usage *u, uint64_t command, size_t keep)
{
    if (command == 0 || u->savepoint != command || u->savepoint_keep != keep ||
        !u->savepoint_complete)
        return false;
    while (u->saved_count > 0) {
        const struct usage_saved_bucket *s = &u->saved[--u->saved_count];
        *s->state = s->aggregation;
        *s->carried = s->was_carried;
    }
    if (u->event_count > u->savepoint_keep)
        u->event_count = u->savepoint_keep;
    return true;
}

/*
 * The state of b that event e goes to: b's own, or in a grouped bucket its group's, opened for
 * the event if new (refused past USAGE_GROUPS_MAX when `bounded`). A group opened under a
 * savepoint makes it incomplete: a refusal then rebuilds the usage rather than keep track of
 * groups to close. *opened says whether the group is new.
 */
static enum aggregation_status state_of(struct usage *u, struct usage_charge *c,
                                        struct usage_bucket *b, const struct event *e, bool bounded,
                                        struct aggregation **state, bool **carried, bool *opened)
{
    *opened = false;
    *state = &b->aggregation;
    *carried = &b->carried;
    if (b->properties.group_key_count == 0)
        return AGGREGATION_OK; /* the hot path: no hashing, no allocation */
    const char *values[CHARGE_GROUP_KEYS_MAX];
    uint64_t h = event_group(u, b, e, values);
    size_t at = find_group(b, h, values);
    struct usage_group *g = at == SIZE_MAX ? NULL : b->groups[at];
    if (!g) {
        if (bounded && c->group_count >= USAGE_GROUPS_MAX)
            return AGGREGATION_ERR_GROUPS;
        if (!(g = open_group(c, b, h, values)))
            return AGGREGATION_ERR_NO_MEMORY;
        u->savepoint_complete = false;
        *opened = true;
    }
    *state = &g->aggregation;
    *carried = &g->carried;
    return AGGREGATION_OK;
}

/* Sets ev->priced_amount to *amount, the event's price alone under b's properties, when b's
 * sums keep their events' prices (and the sum takes the event). A negative value brings a
 * pay-in-advance charge nothing: its fee never goes down (Lago zeroes a negative one). */
static enum aggregation_status price_event(const struct usage_charge *c,
                                           const struct usage_bucket *b,
                                           struct aggregation_event *ev, money_t *amount)
{
    if (!aggregation_keeps_priced(&b->aggregation))
        return AGGREGATION_OK;
    money_t value;
    enum aggregation_status s = aggregation_number(&b->aggregation, ev, &value);
    if (s == AGGREGATION_IGNORED)
        return AGGREGATION_OK; /* not counted: nothing to price */
    if (s != AGGREGATION_OK)
        return s;
    if (c->pay_in_advance && money_sign(value) < 0)
        *amount = MONEY_ZERO;
    else if (charge_model_event_amount(&b->properties, value, amount) != CHARGE_MODEL_OK)
        return AGGREGATION_ERR_OVERFLOW; /* valid properties fail only past 10^38 */
    ev->priced_amount = amount;
    return AGGREGATION_OK;
}

/*
 * Whether a charge passes over a stored event for refusal s: one it refuses for the event
 * itself (what event ingest answers 422 for), not for memory or a bad argument. The event was
 * acknowledged: it was accepted by an earlier build that checked only charged metrics, or its
 * metric's aggregation changed since (a count that becomes a sum or a unique count), or a sum's
 * stored total passes 10^38. Refused, it failed this usage on every build, and so every later
 * event of the subscription, its current usage and the start of tallyd (an audit). Passed
 * over, the charge counts it as an event its aggregation ignores, as Lago ignores a value it
 * cannot read, and the usage names it (usage.passed_over).
 */
static bool passes_over(enum aggregation_status s)
{
    switch (s) {
    case AGGREGATION_ERR_OPERATION:
    case AGGREGATION_ERR_OVERFLOW:
    case AGGREGATION_ERR_PRECISION:
    case AGGREGATION_ERR_LIMIT:
    case AGGREGATION_ERR_KEPT_VALUES: return true;
    default: return false;
    }
}

/* Counts stored event e (id `sequence`) as passed over, naming the usage's first. */
static void note_passed_over(struct usage *u, const struct event *e, uint64_t sequence,
                             enum aggregation_status why)
{
    if (u->passed_over++ > 0)
        return;
    u->passed_over_id = (int64_t)sequence;
    u->passed_over_code = arena_strndup(&u->arena, e->code, strlen(e->code));
    u->passed_over_why = why;
}

/* past: an earlier period's event that was there when the period began (carry_recurring).
 * !bounded: a stored event (passes_over). */
static enum aggregation_status apply(struct usage *u, const struct event *e, tally_time timestamp,
                                     uint64_t sequence, bool bounded, bool past)
{
    if (timestamp >= u->to)
        return AGGREGATION_OK; /* a later period's: counted when it comes */
    bool earlier = timestamp < u->from;
    enum aggregation_status passed = AGGREGATION_OK; /* why a charge passed over it, if one did */
    for (size_t i = 0; i < u->charge_count; i++) {
        struct usage_charge *c = &u->charges[i];
        if (c->handed_over || strcmp(c->metric_code, e->code) != 0 ||
            (earlier && !c->metric.recurring))
            continue; /* an earlier period's event counts here only if its value recurs */
        if ((int64_t)sequence <= c->history_after)
            continue; /* a deleted metric's (only a stored one: a new event's id is above) */
        size_t k = aggregation_filter_bucket(&c->metric, c->filters, c->filter_count, e->properties,
                                             e->property_count);
        struct usage_bucket *b = &c->buckets[k];
        struct aggregation_event ev = aggregation_event_of(c, e, timestamp, sequence);
        money_t priced;
        enum aggregation_status s = price_event(c, b, &ev, &priced);
        if (s != AGGREGATION_OK && !bounded && passes_over(s)) {
            passed = s;
            continue;
        }
        if (s != AGGREGATION_OK)
            return s;
        struct aggregation *state;
        bool *carried, opened;
        s = state_of(u, c, b, e, bounded, &state, &carried, &opened);
        if (s != AGGREGATION_OK)
            return s;
        save_state(u, state, carried);
        s = !earlier ? aggregation_add(state, &ev)
            : past   ? aggregation_carry_in(state, &ev)
                     : aggregation_add_carried(state, &ev);
        if (opened && s != AGGREGATION_OK) {
            /* a group holds at least an event it took; state and carried were the opened
             * group's, and go with it (an audit found them written after, freed) */
            close_last_group(c, b);
            if (s != AGGREGATION_IGNORED && !(!bounded && passes_over(s)))
                return s;
            if (s != AGGREGATION_IGNORED)
                passed = s;
            continue;
        }
        if (s != AGGREGATION_OK && s != AGGREGATION_IGNORED && !bounded && passes_over(s)) {
            passed = s; /* the state is as it was: an error changes nothing */
            continue;
        }
        if (s != AGGREGATION_OK && s != AGGREGATION_IGNORED)
            return s;
        *carried = *carried || (earlier && s == AGGREGATION_OK);
    }
    if (passed != AGGREGATION_OK)
        note_passed_over(u, e, sequence, passed);
    return AGGREGATION_OK;
}

enum aggregation_status usage_apply(struct usage *u, const struct event *e, tally_time timestamp,
                                    uint64_t sequence)
{
    if (!apply_held(u, INT64_MAX)) /* (none outside the start-up scan) */
        return AGGREGATION_ERR_INVALID;
    return apply(u, e, timestamp, sequence, true, false);
}

enum aggregation_status usage_apply_stored(struct usage *u, const struct event *e,
                                           tally_time timestamp, uint64_t sequence)
{
    if (!apply_held(u, (int64_t)sequence))
        return AGGREGATION_ERR_INVALID;
    return apply(u, e, timestamp, sequence, false, false);
}

/* ---- amounts ------------------------------------------------------------------------------ */

static enum charge_model_running_total running_total(enum billable_metric_aggregation a)
{
    switch (a) {
    case AGGREGATION_SUM: return CHARGE_MODEL_RUNNING_TOTAL_EVENT_VALUES;
    case AGGREGATION_COUNT:
    case AGGREGATION_UNIQUE_COUNT: return CHARGE_MODEL_RUNNING_TOTAL_UNITS;
    default: return CHARGE_MODEL_RUNNING_TOTAL_NONE;
    }
}

/* A prorated charge's units (in): the prorated units rounded by the metric, 0 when negative
 * (ProratedAggregations::BaseService#handle_current_usage), priced by the model, the full units
 * choosing volume's range; the units shown are the full ones, 0 when negative, as Lago's
 * current_usage_units. */
static bool prorate(const struct usage_charge *c, money_t prorated, struct charge_model_input *in,
                    struct usage_amount *out)
{
    money_t units;
    if (aggregation_round(&c->metric, prorated, &units) != AGGREGATION_OK)
        return false;
    if (money_sign(out->units) < 0)
        out->units = MONEY_ZERO;
    in->has_full_units = true;
    in->full_units = out->units;
    in->units = money_sign(units) < 0 ? MONEY_ZERO : units;
    return true;
}

/* Whether a state is walked: a prorated graduated charge's (a sum keeping every value, or a
 * unique count's operations). */
static bool walks(const struct usage_bucket *b, const struct aggregation *state)
{
    return aggregation_is_prorated(state) && b->properties.kind == CHARGE_MODEL_GRADUATED;
}

/* The fee of a bucket whose aggregate would be `raw` units over `events` events, whose precise
 * amounts (the dynamic model's) come to `precise` cents; `prorated`, for a prorated charge, its
 * prorated units before rounding (NULL otherwise); `walk`, for a prorated graduated one, the
 * values it walks (NULL otherwise). */
static bool price(const struct usage *u, const struct usage_charge *c, const struct usage_bucket *b,
                  money_t raw, const money_t *prorated, int64_t events, const money_t *values,
                  size_t value_count, money_t precise, const money_t *priced,
                  const struct aggregation_walk *walk, struct usage_amount *out)
{
    money_t amount;
    if (aggregation_round(&c->metric, raw, &out->units) != AGGREGATION_OK)
        return false;
    out->events_count = events;
    out->carried = false;
    struct charge_model_input in = {.units = out->units,
                                    .events_count = events,
                                    .event_values = walk ? walk->values : values,
                                    .event_values_count = walk ? walk->count : value_count,
                                    .running_total = running_total(c->metric.aggregation),
                                    .precise_total_amount_cents = precise,
                                    .has_priced_total = priced != NULL,
                                    .priced_total = priced ? *priced : MONEY_ZERO,
                                    .exponent = u->exponent,
                                    .event_value_days = walk ? walk->days : NULL,
                                    .period_days = walk ? walk->period_days : 0,
                                    .peak_units = walk ? walk->peak : MONEY_ZERO};
    if (prorated && !prorate(c, *prorated, &in, out))
        return false;
    out->billed_units = out->units;
    return charge_model_amount(&b->properties, &in, &amount) == CHARGE_MODEL_OK &&
           charge_model_fee_cents(in.units, amount, u->exponent, &out->amount_cents) ==
               CHARGE_MODEL_OK;
}

/* price() for a walked state (a prorated graduated charge's), `ev` (NULL for none) taking
 * `value` in its walk. */
static bool price_walked(const struct usage *u, const struct usage_charge *c,
                         const struct usage_bucket *b, const struct aggregation *state,
                         const struct aggregation_event *ev, money_t value, money_t raw,
                         const money_t *prorated, int64_t events, money_t precise,
                         struct usage_amount *out)
{
    struct aggregation_walk walk = {0};
    bool ok = aggregation_prorated_values(state, ev, value, &walk) == AGGREGATION_OK &&
              price(u, c, b, raw, prorated, events, NULL, 0, precise, NULL, &walk, out);
    aggregation_walk_free(&walk);
    return ok;
}

/*
 * Whether a state is billed on its peak (aggregation_peak), as Lago bills a pay-in-advance
 * charge on its max_aggregation: what an event billed stays billed when a later one lowers the
 * aggregate, and an event bills only what lifts it past the peak. Not a prorated charge's (its
 * units are days). One whose events carry their own price (dynamic, per-transaction
 * percentage bounds) sums those prices, a lowering event's being 0 (price_event,
 * aggregation_event_of): its units only decide whether there is a fee at all.
 */
static bool bills_peak(const struct usage_charge *c, const struct aggregation *state)
{
    return c->pay_in_advance && !aggregation_is_prorated(state);
}

/* A peak-billed state's amount shows the units there are now (Lago's current_usage_units,
 * 0 when negative), its fee priced on the peak. */
static bool show_units(const struct usage_charge *c, money_t raw, struct usage_amount *out)
{
    if (aggregation_round(&c->metric, raw, &out->units) != AGGREGATION_OK)
        return false;
    if (money_sign(out->units) < 0)
        out->units = MONEY_ZERO;
    return true;
}

/* The fee of one state (a bucket's, or a group's of bucket b), priced by b's properties. */
static bool state_amount(const struct usage *u, const struct usage_charge *c,
                         const struct usage_bucket *b, const struct aggregation *state,
                         bool carried, struct usage_amount *out)
{
    money_t raw, prorated;
    const money_t *values;
    size_t count;
    /* Lago reads a weighted sum to the period's end: units move only with events */
    if (aggregation_units(state, u->to, &raw) != AGGREGATION_OK)
        return false;
    /* a prorated state too: each value weighs its days to the period's end */
    bool prorates = aggregation_is_prorated(state);
    if (prorates && aggregation_prorated_units(state, &prorated) != AGGREGATION_OK)
        return false;
    aggregation_values(state, &values, &count);
    money_t priced = aggregation_priced_total(state);
    int64_t events = aggregation_events_count(state);
    money_t precise = aggregation_precise_total(state);
    bool peak = bills_peak(c, state);
    if (walks(b, state) ? !price_walked(u, c, b, state, NULL, MONEY_ZERO, raw,
                                        prorates ? &prorated : NULL, events, precise, out)
                        : !price(u, c, b, peak ? aggregation_peak(state) : raw,
                                 prorates ? &prorated : NULL, events, values, count, precise,
                                 aggregation_keeps_priced(state) ? &priced : NULL, NULL, out))
        return false;
    if (peak && !show_units(c, raw, out))
        return false;
    out->aggregated_units = out->units;
    if (state->kind == AGGREGATION_WEIGHTED_SUM &&
        aggregation_weighted_level(state, &out->aggregated_units) != AGGREGATION_OK)
        return false;
    out->carried = carried;
    out->received = !aggregation_is_empty(state);
    return true;
}

bool usage_amount_add(struct usage_amount *sum, const struct usage_amount *part)
{
    if ((money_sign(part->units) > 0 &&
         money_add(sum->units, part->units, &sum->units) != MONEY_OK) ||
        (money_sign(part->billed_units) > 0 &&
         money_add(sum->billed_units, part->billed_units, &sum->billed_units) != MONEY_OK) ||
        (money_sign(part->units) >= 0 && part->amount_cents >= 0 &&
         money_add(sum->aggregated_units, part->aggregated_units, &sum->aggregated_units) !=
             MONEY_OK) ||
        __builtin_add_overflow(sum->amount_cents, part->amount_cents, &sum->amount_cents) ||
        __builtin_add_overflow(sum->events_count, part->events_count, &sum->events_count))
        return false;
    sum->carried = sum->carried || part->carried;
    sum->received = sum->received || part->received;
    return true;
}

void usage_amount_zero(struct usage_amount *out)
{
    memset(out, 0, sizeof *out);
    out->units = out->billed_units = out->aggregated_units = money_from_int(0);
}

bool usage_group_amount(const struct usage *u, const struct usage_charge *c,
                        const struct usage_bucket *b, const struct usage_group *g,
                        struct usage_amount *out)
{
    return state_amount(u, c, b, &g->aggregation, g->carried, out);
}

bool usage_bucket_amount(const struct usage *u, const struct usage_charge *c,
                         const struct usage_bucket *b, tally_time now, struct usage_amount *out)
{
    (void)now; /* every amount reads the period to its end (state_amount) */
    if (b->properties.group_key_count == 0) {
        if (!state_amount(u, c, b, &b->aggregation, b->carried, out))
            return false;
        /* an in-advance charge is billed by its events (Lago's), each in its own bucket: one
         * no event reached brings nothing, not even a first tier's flat amount (found by an
         * audit: an event of one filter paid the default bucket's) */
        if (c->pay_in_advance && !out->received && !out->carried)
            out->amount_cents = 0;
        return true;
    }
    /* each group its own fee, rounded to the cent, as Lago bills one fee a group; no group,
     * no fee (not even a first tier's flat amount) */
    usage_amount_zero(out);
    for (size_t g = 0; g < b->group_count; g++) {
        struct usage_amount part;
        if (!usage_group_amount(u, c, b, b->groups[g], &part) || !usage_amount_add(out, &part))
            return false;
    }
    return true;
}

/* A state's amount (state: b's or one of its groups', priced by b) with one more event in it
 * (not taken). */
static bool preview_state(const struct usage *u, const struct usage_charge *c,
                          const struct usage_bucket *b, const struct aggregation *state,
                          const struct aggregation_event *event, struct usage_amount *out)
{
    money_t raw_before, raw_after, precise_after, prorated_after, priced_after, event_price;
    int64_t events_after;
    const money_t *values;
    size_t count;
    aggregation_values(state, &values, &count);
    bool prorates = aggregation_is_prorated(state);
    struct aggregation_event ev_priced = *event, *ev = &ev_priced;
    if (price_event(c, b, ev, &event_price) != AGGREGATION_OK ||
        aggregation_preview(state, ev, &raw_after, &events_after) != AGGREGATION_OK ||
        aggregation_preview_precise(state, ev, &precise_after) != AGGREGATION_OK ||
        aggregation_preview_priced(state, ev, &priced_after) != AGGREGATION_OK ||
        (prorates && aggregation_preview_prorated(state, ev, &prorated_after) != AGGREGATION_OK))
        return false;
    const money_t *prorated = prorates ? &prorated_after : NULL;
    const money_t *priced = aggregation_keeps_priced(state) ? &priced_after : NULL;
    /* a count or sum takes the event if its count moves; a unique count takes every event */
    bool received = !aggregation_is_empty(state) ||
                    events_after != aggregation_events_count(state) ||
                    c->metric.aggregation == AGGREGATION_UNIQUE_COUNT;
    /* Kept values gain the event's own in its place, if it counts (an event sent ahead may be
     * later than a hold's); the first event of a period too, or the charge model would see an
     * event without its value. */
    out->received = received;
    bool takes = events_after != aggregation_events_count(state);
    /* a unique count's operation may move its walk without moving its count (an earlier add
     * of a value present) */
    if (walks(b, state) && c->metric.aggregation == AGGREGATION_UNIQUE_COUNT)
        return price_walked(u, c, b, state, ev, MONEY_ZERO, raw_after, prorated, events_after,
                            precise_after, out);
    if (walks(b, state) && !takes)
        return price_walked(u, c, b, state, NULL, MONEY_ZERO, raw_after, prorated, events_after,
                            precise_after, out);
    /* a peak-billed state is priced on the peak the event would leave: what it bills is what
     * it lifts the peak by */
    bool peak = bills_peak(c, state);
    money_t billed_after = raw_after;
    if (peak && money_cmp(aggregation_peak(state), raw_after) > 0)
        billed_after = aggregation_peak(state);
    if (aggregation_keeps_values(state) == 0 || !takes)
        return price(u, c, b, billed_after, prorated, events_after, values, count, precise_after,
                     priced, NULL, out) &&
               (!peak || show_units(c, raw_after, out));
    /* the value itself: the units before are rounded by the metric, the raw sum is not */
    money_t added;
    if (aggregation_units(state, u->to, &raw_before) != AGGREGATION_OK ||
        money_sub(raw_after, raw_before, &added) != MONEY_OK)
        return false;
    if (walks(b, state))
        return price_walked(u, c, b, state, ev, added, raw_after, prorated, events_after,
                            precise_after, out);
    money_t *with = malloc(sizeof *with * (count + 1));
    if (!with)
        return false;
    size_t with_count;
    aggregation_preview_values(state, ev, added, with, &with_count);
    bool ok = price(u, c, b, billed_after, prorated, events_after, with, with_count, precise_after,
                    priced, NULL, out) &&
              (!peak || show_units(c, raw_after, out));
    free(with);
    return ok;
}

/* A charge's amount with its taxes (`taxes`, unrounded) rounded half up once. */
static bool cost_of(int64_t amount_cents, money_t taxes, int64_t *cents)
{
    int64_t tax_cents;
    return usage_taxes_cents(taxes, &tax_cents) &&
           !__builtin_add_overflow(amount_cents, tax_cents, cents);
}

/* The amount a charge priced at `amount` (every bucket) has brought: nothing before its first
 * event of the period (a recurring value carried in is one; so is a unique count's removal,
 * or a lone removal would leave a first tier's flat fee unpaid). */
static int64_t brought_amount(const struct usage_amount *amount)
{
    return amount->received || amount->carried ? amount->amount_cents : 0;
}

/* What a charge that brought `amount_cents` costs, after charges whose taxes (unrounded) come
 * to `*taxes_before`, which it then adds its own to: its amount, and what its taxes add to
 * their sum rounded half up. Rounded once over the whole usage, so that the charges' costs add
 * up to the usage's total, as Lago's invoice rounds its taxes. */
static bool cost_after(const struct usage_charge *c, int64_t amount_cents, money_t *taxes_before,
                       int64_t *cost_cents)
{
    money_t own, taxes_after;
    int64_t rounded_before, rounded_after, own_cost;
    if (!usage_charge_taxes(c, amount_cents, &own) || !cost_of(amount_cents, own, &own_cost))
        return false; /* a charge's cost must fit alone too */
    if (money_is_zero(own)) {
        *cost_cents = amount_cents;
        return true;
    }
    if (money_add(*taxes_before, own, &taxes_after) != MONEY_OK ||
        !usage_taxes_cents(*taxes_before, &rounded_before) ||
        !usage_taxes_cents(taxes_after, &rounded_after) ||
        __builtin_add_overflow(amount_cents, rounded_after - rounded_before, cost_cents))
        return false;
    *taxes_before = taxes_after;
    return true;
}

bool usage_charge_brought_amount(const struct usage *u, const struct usage_charge *c,
                                 int64_t *cents)
{
    struct usage_amount amount;
    if (!usage_charge_amount(u, c, u->to, &amount))
        return false;
    *cents = brought_amount(&amount);
    return true;
}

bool usage_charge_brought(const struct usage *u, const struct usage_charge *c,
                          struct usage_brought *out)
{
    money_t taxes = money_from_int(0);
    for (const struct usage_charge *before = u->charges; before <= c; before++) {
        struct usage_amount amount;
        if (!usage_charge_amount(u, before, u->to, &amount))
            return false;
        out->amount_cents = brought_amount(&amount);
        if (!cost_after(before, out->amount_cents, &taxes, &out->cost_cents))
            return false;
    }
    return true;
}

/* The state of bucket b that event e would change, and what it brings now (*part): b's own,
 * or its group's; a group the event would open starts from b's empty template and brings
 * nothing yet. */
static bool estimate_state(const struct usage *u, const struct usage_charge *c,
                           const struct usage_bucket *b, const struct event *e,
                           const struct usage_group **group, const struct aggregation **state,
                           struct usage_amount *part)
{
    *group = NULL;
    *state = &b->aggregation;
    if (b->properties.group_key_count == 0)
        return usage_bucket_amount(u, c, b, u->to, part);
    const char *values[CHARGE_GROUP_KEYS_MAX];
    size_t at = find_group(b, event_group(u, b, e, values), values);
    if (at == SIZE_MAX) {
        usage_amount_zero(part);
        return true;
    }
    *group = b->groups[at];
    *state = &(*group)->aggregation;
    return usage_group_amount(u, c, b, *group, part);
}

bool usage_estimate(const struct usage *u, const struct usage_charge *c, const struct event *e,
                    tally_time timestamp, struct usage_estimate *out)
{
    size_t k = aggregation_filter_bucket(&c->metric, c->filters, c->filter_count, e->properties,
                                         e->property_count);
    const struct usage_bucket *b = &c->buckets[k];
    struct aggregation_event ev = aggregation_event_of(c, e, timestamp, UINT64_MAX);
    struct usage_amount charge, part, part_after;
    const struct aggregation *state;
    if (!estimate_state(u, c, b, e, &out->group, &state, &part) ||
        !usage_charge_amount(u, c, u->to, &charge) ||
        !preview_state(u, c, b, state, &ev, &part_after))
        return false;
    /* the charge with the event: its other buckets as they are, this one previewed */
    struct usage_amount with = charge;
    with.received = charge.received || part_after.received;
    if (__builtin_sub_overflow(with.amount_cents, part.amount_cents, &with.amount_cents) ||
        __builtin_add_overflow(with.amount_cents, part_after.amount_cents, &with.amount_cents) ||
        __builtin_sub_overflow(with.events_count, part.events_count, &with.events_count) ||
        __builtin_add_overflow(with.events_count, part_after.events_count, &with.events_count) ||
        money_sub(part_after.billed_units, part.billed_units, &out->units) != MONEY_OK ||
        __builtin_sub_overflow(brought_amount(&with), brought_amount(&charge), &out->amount_cents))
        return false;
    out->bucket = b;
    return true;
}

bool usage_charge_amount(const struct usage *u, const struct usage_charge *c, tally_time now,
                         struct usage_amount *out)
{
    usage_amount_zero(out);
    for (size_t k = 0; k <= c->filter_count; k++) {
        struct usage_amount part;
        if (!usage_bucket_amount(u, c, &c->buckets[k], now, &part) || !usage_amount_add(out, &part))
            return false;
    }
    return true;
}

bool usage_charge_taxes(const struct usage_charge *c, int64_t amount_cents, money_t *taxes)
{
    *taxes = money_from_int(0);
    if (money_is_zero(c->tax_rate)) /* most plans: no 128-bit division per charge priced */
        return true;
    return money_mul_round(money_from_int(amount_cents), c->tax_rate, 10, MONEY_ROUND_HALF_UP,
                           taxes) == MONEY_OK &&
           money_div(*taxes, money_from_int(100), 10, MONEY_ROUND_HALF_UP, taxes) == MONEY_OK;
}

bool usage_taxes_brought(const struct usage *u, money_t *taxes)
{
    *taxes = money_from_int(0);
    for (size_t i = 0; i < u->charge_count; i++) {
        struct usage_amount amount;
        money_t own;
        if (!usage_charge_amount(u, &u->charges[i], u->to, &amount) ||
            !usage_charge_taxes(&u->charges[i], brought_amount(&amount), &own) ||
            money_add(*taxes, own, taxes) != MONEY_OK)
            return false;
    }
    return true;
}

bool usage_taxes_cents(money_t taxes, int64_t *cents)
{
    *cents = 0;
    return money_is_zero(taxes) ||
           money_to_minor_units(taxes, 0, MONEY_ROUND_HALF_UP, cents) == MONEY_OK;
}

void usage_total_init(struct usage_total *t)
{
    memset(t, 0, sizeof *t);
    t->taxes = money_from_int(0);
}

bool usage_total_add(struct usage_total *t, const struct usage_charge *c, int64_t amount_cents)
{
    money_t taxes;
    int64_t cost; /* what a debit charges for it alone must fit too */
    return usage_charge_taxes(c, amount_cents, &taxes) && cost_of(amount_cents, taxes, &cost) &&
           money_add(t->taxes, taxes, &t->taxes) == MONEY_OK &&
           !__builtin_add_overflow(t->amount_cents, amount_cents, &t->amount_cents);
}

bool usage_total_finish(struct usage_total *t)
{
    /* Taxes are summed unrounded and rounded once, as Lago's invoice does. */
    return cost_of(t->amount_cents, t->taxes, &t->total_cents) &&
           !__builtin_sub_overflow(t->total_cents, t->amount_cents, &t->taxes_cents);
}

bool usage_priced(const struct usage *u, struct usage_brought *brought)
{
    struct usage_total total;
    usage_total_init(&total);
    money_t taxes_brought = money_from_int(0);
    for (size_t i = 0; i < u->charge_count; i++) {
        const struct usage_charge *c = &u->charges[i];
        struct usage_amount amount;
        if (!usage_charge_amount(u, c, u->to, &amount) ||
            !usage_total_add(&total, c, amount.amount_cents))
            return false;
        if (brought) {
            brought[i].amount_cents = brought_amount(&amount);
            if (!cost_after(c, brought[i].amount_cents, &taxes_brought, &brought[i].cost_cents))
                return false;
        }
    }
    return usage_total_finish(&total);
}

bool usage_charge_estimated(const struct usage_charge *c, const char *code, bool instant)
{
    return c->pay_in_advance && (!code || strcmp(c->metric_code, code) == 0) &&
           (!instant || strcmp(c->charge_model, "standard") == 0 ||
            strcmp(c->charge_model, "percentage") == 0);
}
