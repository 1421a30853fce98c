/* engine/usage_view: see usage_view.h. */
#include "engine/usage_view.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/aggregation.h"
#include "util/jsonw.h"

/* ---- the answer --------------------------------------------------------------------------- */

static void write_decimal(struct jsonw *w, const char *key, money_t units)
{
    char text[MONEY_TEXT_MAX];
    money_format_fraction(money_normalize(units), 1, text, sizeof text); /* Lago: "12.0" */
    jsonw_kv_cstr(w, key, text);
}

static void write_units(struct jsonw *w, const char *key, money_t units)
{
    /* Lago zeroes a fee's negative units */
    write_decimal(w, key, money_sign(units) < 0 ? money_from_int(0) : units);
}

/* Lago's total_aggregated_units: a weighted sum's level may be below zero; a fee whose units
 * or amount are below zero shows 0 (Fees::ChargeService), as usage_amount_add leaves it out of
 * a sum */
static void write_aggregated_units(struct jsonw *w, const struct usage_amount *a)
{
    bool zeroed = money_sign(a->units) < 0 || a->amount_cents < 0;
    write_decimal(w, "total_aggregated_units", zeroed ? money_from_int(0) : a->aggregated_units);
}

/*
 * The UTC date of `t`, as Lago's current usage writes its issuing_date: its
 * DatesService#next_end_of_period is a UTC instant (the plan's period's last one), cast to the
 * invoice's date column, which keeps its UTC date. West of UTC that is the day after the local
 * one (an audit found the local date written).
 */
static void write_utc_date(struct jsonw *w, const char *key, tally_time t)
{
    char text[TIMESTAMP_TEXT_MAX];
    timestamp_format(t, false, text); /* "YYYY-MM-DDTHH:MM:SSZ" */
    jsonw_key(w, key);
    jsonw_string(w, text, 10);
}

/* One part of a charge (a filter bucket, or a group in one): its usage fields. */
static void write_part(struct jsonw *w, const struct usage_amount *part)
{
    write_units(w, "units", part->units);
    write_aggregated_units(w, part); /* as the charge's */
    jsonw_kv_int(w, "amount_cents", part->amount_cents);
    jsonw_kv_int(w, "events_count", part->events_count);
}

static void write_filter(struct jsonw *w, const struct usage_bucket *b,
                         const struct usage_amount *part)
{
    jsonw_object_begin(w);
    write_part(w, part);
    jsonw_kv_cstr(w, "invoice_display_name", b->invoice_display_name);
    jsonw_kv_raw(w, "values", b->values_json);
    jsonw_object_end(w);
}

/* Whether a bucket before c->buckets[k] has a group like g (it was written with that one). */
static bool written_before(const struct usage *u, const struct usage_charge *c, size_t k,
                           const struct usage_group *g)
{
    for (size_t j = 0; j < k; j++)
        if (usage_bucket_group_like(u, &c->buckets[j], &c->buckets[k], g))
            return true;
    return false;
}

/*
 * One entry of grouped_usage: the group g of bucket k and its like in the later buckets (the
 * same keys and values), as Lago's serializer gathers a charge's fees by grouped_by: their
 * totals, the group's values, and with filters each filter's share.
 */
static bool write_group(struct jsonw *w, const struct usage *u, const struct usage_charge *c,
                        size_t k, const struct usage_group *g)
{
    struct usage_amount total, part;
    usage_amount_zero(&total);
    for (size_t j = k; j <= c->filter_count; j++) {
        const struct usage_group *same =
            j == k ? g : usage_bucket_group_like(u, &c->buckets[j], &c->buckets[k], g);
        if (!same)
            continue;
        if (!usage_group_amount(u, c, &c->buckets[j], same, &part) ||
            !usage_amount_add(&total, &part))
            return false;
    }
    const struct charge_model_properties *p = &c->buckets[k].properties;
    jsonw_object_begin(w);
    write_part(w, &total);
    jsonw_key(w, "grouped_by");
    jsonw_object_begin(w);
    for (size_t i = 0; i < p->group_key_count; i++) {
        jsonw_key(w, p->group_keys[i]);
        if (g->values[i])
            jsonw_cstr(w, g->values[i]);
        else
            jsonw_null(w); /* the event lacked the key: Lago's null group */
    }
    jsonw_object_end(w);
    jsonw_key(w, "filters");
    jsonw_array_begin(w);
    for (size_t j = k; c->filter_count > 0 && j <= c->filter_count; j++) {
        const struct usage_group *same =
            j == k ? g : usage_bucket_group_like(u, &c->buckets[j], &c->buckets[k], g);
        if (!same)
            continue;
        if (!usage_group_amount(u, c, &c->buckets[j], same, &part))
            return false;
        write_filter(w, &c->buckets[j], &part);
    }
    jsonw_array_end(w);
    jsonw_object_end(w);
    return true;
}

static bool is_grouped(const struct usage_bucket *b)
{
    return b->properties.group_key_count > 0;
}

/*
 * The entry of a grouped charge's buckets that group nothing (a filter without keys of its
 * own): their fees carry an empty grouped_by, so Lago's serializer gathers them in one entry,
 * and the entries add up to the charge.
 */
static bool write_ungrouped(struct jsonw *w, const struct usage *u, const struct usage_charge *c)
{
    struct usage_amount total, part;
    usage_amount_zero(&total);
    for (size_t k = 0; k <= c->filter_count; k++)
        if (!is_grouped(&c->buckets[k]) &&
            (!usage_bucket_amount(u, c, &c->buckets[k], u->to, &part) ||
             !usage_amount_add(&total, &part)))
            return false;
    jsonw_object_begin(w);
    write_part(w, &total);
    jsonw_key(w, "grouped_by");
    jsonw_object_begin(w);
    jsonw_object_end(w);
    jsonw_key(w, "filters");
    jsonw_array_begin(w);
    for (size_t k = 0; c->filter_count > 0 && k <= c->filter_count; k++) {
        if (is_grouped(&c->buckets[k]))
            continue;
        if (!usage_bucket_amount(u, c, &c->buckets[k], u->to, &part))
            return false;
        write_filter(w, &c->buckets[k], &part);
    }
    jsonw_array_end(w);
    jsonw_object_end(w);
    return true;
}

/* A charge's grouped_usage: each distinct group once, in the order they were first opened
 * bucket by bucket, the buckets that group nothing as one entry where the first of them
 * stands; [] for a charge no bucket of which is grouped. */
static bool write_grouped_usage(struct jsonw *w, const struct usage *u,
                                const struct usage_charge *c)
{
    bool any_grouped = false, ungrouped_written = false;
    for (size_t k = 0; k <= c->filter_count; k++)
        any_grouped = any_grouped || is_grouped(&c->buckets[k]);
    jsonw_key(w, "grouped_usage");
    jsonw_array_begin(w);
    for (size_t k = 0; any_grouped && k <= c->filter_count; k++) {
        const struct usage_bucket *b = &c->buckets[k];
        if (!is_grouped(b)) {
            if (!ungrouped_written && !write_ungrouped(w, u, c))
                return false;
            ungrouped_written = true;
            continue;
        }
        for (size_t g = 0; g < b->group_count; g++)
            if (!written_before(u, c, k, b->groups[g]) && !write_group(w, u, c, k, b->groups[g]))
                return false;
    }
    jsonw_array_end(w);
    return true;
}

/* One charge's usage; false if its amount cannot be computed (an overflow). Amounts read
 * the period to its end (a weighted sum's units move only with events). */
static bool write_charge(struct jsonw *w, const struct usage *u, const struct usage_charge *c,
                         struct usage_total *sum)
{
    struct usage_amount total;
    if (!usage_charge_amount(u, c, u->to, &total) || !usage_total_add(sum, c, total.amount_cents))
        return false;
    jsonw_object_begin(w);
    write_units(w, "units", total.units);
    /* Lago's units before proration: a prorated charge shows its full units in both
     * (Fees::ChargeService: current_usage_units, and total_aggregated_units || units); a
     * weighted sum its level (WeightedSumService sets total_aggregated_units) */
    write_aggregated_units(w, &total);
    jsonw_kv_int(w, "events_count", total.events_count);
    jsonw_kv_int(w, "amount_cents", total.amount_cents);
    jsonw_kv_cstr(w, "amount_currency", u->currency);
    jsonw_key(w, "charge");
    jsonw_object_begin(w);
    jsonw_kv_cstr(w, "lago_id", c->lago_id);
    jsonw_kv_cstr(w, "charge_model", c->charge_model);
    jsonw_kv_cstr(w, "invoice_display_name", c->invoice_display_name);
    jsonw_object_end(w);
    jsonw_key(w, "billable_metric");
    jsonw_object_begin(w);
    jsonw_kv_cstr(w, "lago_id", c->metric_lago_id);
    jsonw_kv_cstr(w, "name", c->metric_name);
    jsonw_kv_cstr(w, "code", c->metric_code);
    jsonw_kv_cstr(w, "aggregation_type", billable_metric_aggregation_name(c->metric.aggregation));
    jsonw_object_end(w);
    jsonw_key(w, "filters");
    jsonw_array_begin(w);
    for (size_t k = 0; c->filter_count > 0 && k <= c->filter_count; k++) {
        const struct usage_bucket *b = &c->buckets[k];
        struct usage_amount part;
        if (!usage_bucket_amount(u, c, b, u->to, &part))
            return false;
        write_filter(w, b, &part);
    }
    jsonw_array_end(w);
    if (!write_grouped_usage(w, u, c))
        return false;
    jsonw_object_end(w);
    return true;
}

static bool shown(const struct usage_charge *c, const struct usage_view_filter *f)
{
    return !f ||
           ((!f->billable_metric_code || strcmp(c->metric_code, f->billable_metric_code) == 0) &&
            (!f->charge_lago_id || strcmp(c->lago_id, f->charge_lago_id) == 0));
}

const char *usage_view_filter_unmatched(const struct usage *u,
                                        const struct usage_view_filter *filter)
{
    bool metric_found = false;
    for (size_t i = 0; i < u->charge_count; i++) {
        if (shown(&u->charges[i], filter))
            return NULL;
        metric_found =
            metric_found || (filter->billable_metric_code &&
                             strcmp(u->charges[i].metric_code, filter->billable_metric_code) == 0);
    }
    return filter->billable_metric_code && !metric_found ? "billable_metric_not_found"
                                                         : "charge_not_found";
}

bool usage_view_render(const struct usage *u, const struct usage_view_filter *filter,
                       struct buf *out)
{
    struct jsonw w;
    jsonw_init(&w, out);
    jsonw_object_begin(&w);
    jsonw_key(&w, "customer_usage");
    jsonw_object_begin(&w);
    jsonw_key(&w, "from_datetime");
    jsonw_time(&w, u->from, false);
    /* the period's last second, not the ending_at ahead that prices stop at (usage.h) */
    jsonw_key(&w, "to_datetime");
    jsonw_time(&w, u->period_end - TIMESTAMP_USEC_PER_SEC, false);
    write_utc_date(&w, "issuing_date", u->plan_period_end - TIMESTAMP_USEC_PER_SEC);
    jsonw_kv_cstr(&w, "currency", u->currency);
    jsonw_kv_null(&w, "lago_invoice_id");
    jsonw_key(&w, "charges_usage");
    jsonw_array_begin(&w);
    struct usage_total total;
    usage_total_init(&total);
    bool ok = true;
    for (size_t i = 0; ok && i < u->charge_count; i++) {
        const struct usage_charge *c = &u->charges[u->shown_order[i]];
        if (shown(c, filter))
            ok = write_charge(&w, u, c, &total);
    }
    jsonw_array_end(&w);
    ok = ok && usage_total_finish(&total);
    if (filter && !filter->apply_taxes) {
        total.taxes_cents = 0;
        total.total_cents = total.amount_cents;
    }
    jsonw_kv_int(&w, "amount_cents", total.amount_cents);
    jsonw_kv_int(&w, "taxes_amount_cents", total.taxes_cents);
    jsonw_kv_int(&w, "total_amount_cents", total.total_cents);
    jsonw_object_end(&w);
    jsonw_object_end(&w);
    return ok && !buf_failed(out);
}

/* ---- one view ----------------------------------------------------------------------------- */

/* Copies `s` (n bytes and a NUL) to *cursor and moves it on. */
static const char *put_text(char **cursor, const char *s, size_t n)
{
    char *at = *cursor;
    memcpy(at, s, n);
    at[n] = '\0';
    *cursor += n + 1;
    return at;
}

struct usage_view *usage_view_new(const struct usage *u, const char *external_customer_id,
                                  const char *customer_timezone, tally_time valid_until,
                                  uint64_t rendered_in, const char *body, size_t body_len)
{
    size_t sub_len = strlen(u->external_id), cust_len = strlen(external_customer_id);
    size_t tz_len = customer_timezone ? strlen(customer_timezone) : 0;
    /* One block: the view, then its strings and body (every length is bounded by a request
     * limit or by the writer's own rendering, so the sum cannot overflow). */
    struct usage_view *v =
        malloc(sizeof *v + sub_len + 1 + cust_len + 1 + tz_len + 1 + body_len + 1);
    if (!v)
        return NULL;
    char *cursor = (char *)(v + 1);
    atomic_init(&v->refs, 1);
    atomic_init(&v->last_read, 0);
    v->org_id = u->org_id;
    v->subscription_id = u->subscription_id;
    v->valid_until = valid_until;
    v->rendered_in = rendered_in;
    v->external_subscription_id = put_text(&cursor, u->external_id, sub_len);
    v->external_customer_id = put_text(&cursor, external_customer_id, cust_len);
    v->customer_timezone = customer_timezone ? put_text(&cursor, customer_timezone, tz_len) : NULL;
    v->body = put_text(&cursor, body, body_len);
    v->body_len = body_len;
    v->next = NULL;
    return v;
}

void usage_view_release(struct usage_view *v)
{
    if (v && atomic_fetch_sub(&v->refs, 1) == 1)
        free(v);
}

void usage_view_touch(struct usage_view *v, tally_time now)
{
    atomic_store_explicit(&v->last_read, now, memory_order_relaxed);
}

/* ---- the map ------------------------------------------------------------------------------ */

/* FNV-1a over the organization and the external id. Only a tenant's own ids share its
 * chains, and USAGE_VIEWS_MAX bounds them. */
static size_t bucket_of(int64_t org_id, const char *external_subscription_id)
{
    uint64_t h = 14695981039346656037ULL;
    for (int i = 0; i < 8; i++) {
        h ^= (uint8_t)((uint64_t)org_id >> (8 * i));
        h *= 1099511628211ULL;
    }
    for (const char *p = external_subscription_id; *p; p++) {
        h ^= (uint8_t)*p;
        h *= 1099511628211ULL;
    }
    return (size_t)(h % USAGE_VIEWS_BUCKETS);
}

/* The link that points at the view of that key, or at the chain's terminating NULL. Under
 * the lock. */
static struct usage_view **link_of(struct usage_views *m, int64_t org_id, const char *external_id)
{
    struct usage_view **link = &m->buckets[bucket_of(org_id, external_id)];
    while (*link &&
           ((*link)->org_id != org_id || strcmp((*link)->external_subscription_id, external_id)))
        link = &(*link)->next;
    return link;
}

void usage_views_init(struct usage_views *m)
{
    memset(m->buckets, 0, sizeof m->buckets);
    atomic_init(&m->count, 0);
    atomic_init(&m->answered, 0);
    pthread_mutex_init(&m->lock, NULL);
}

void usage_views_free(struct usage_views *m)
{
    usage_views_clear(m);
    pthread_mutex_destroy(&m->lock);
}

struct usage_view *usage_views_get(struct usage_views *m, int64_t org_id,
                                   const char *external_subscription_id)
{
    pthread_mutex_lock(&m->lock);
    struct usage_view *v = *link_of(m, org_id, external_subscription_id);
    if (v)
        atomic_fetch_add(&v->refs, 1);
    pthread_mutex_unlock(&m->lock);
    return v;
}

bool usage_views_put(struct usage_views *m, struct usage_view *v)
{
    pthread_mutex_lock(&m->lock);
    struct usage_view **link = link_of(m, v->org_id, v->external_subscription_id);
    struct usage_view *old = *link;
    if (!old && m->count >= USAGE_VIEWS_MAX) {
        pthread_mutex_unlock(&m->lock);
        usage_view_release(v);
        return false;
    }
    v->next = old ? old->next : NULL;
    *link = v;
    if (!old)
        m->count++;
    pthread_mutex_unlock(&m->lock);
    usage_view_release(old); /* the map's reference; a reader may still hold its own */
    return true;
}

/* Unlinks *link (under the lock) and returns it for release outside the lock. */
static struct usage_view *unlink_view(struct usage_views *m, struct usage_view **link)
{
    struct usage_view *v = *link;
    *link = v->next;
    m->count--;
    return v;
}

void usage_views_drop(struct usage_views *m, int64_t org_id, const char *external_subscription_id)
{
    pthread_mutex_lock(&m->lock);
    struct usage_view **link = link_of(m, org_id, external_subscription_id);
    struct usage_view *v = *link ? unlink_view(m, link) : NULL;
    pthread_mutex_unlock(&m->lock);
    usage_view_release(v);
}

/* Drops every view of one organization (org_id > 0) or of all (0). */
static void drop_where(struct usage_views *m, int64_t org_id)
{
    if (m->count == 0)
        return;
    struct usage_view *gone = NULL;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < USAGE_VIEWS_BUCKETS && m->count > 0; i++) {
        struct usage_view **link = &m->buckets[i];
        while (*link) {
            if (org_id != 0 && (*link)->org_id != org_id) {
                link = &(*link)->next;
                continue;
            }
            struct usage_view *v = unlink_view(m, link);
            v->next = gone;
            gone = v;
        }
    }
    pthread_mutex_unlock(&m->lock);
    while (gone) {
        struct usage_view *next = gone->next;
        usage_view_release(gone);
        gone = next;
    }
}

void usage_views_drop_org(struct usage_views *m, int64_t org_id)
{
    assert(org_id > 0);
    drop_where(m, org_id);
}

void usage_views_clear(struct usage_views *m)
{
    drop_where(m, 0);
}

size_t usage_views_count(struct usage_views *m)
{
    return atomic_load(&m->count);
}
