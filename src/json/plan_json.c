/* json/plan_json: see plan_json.h. */
#include "json/plan_json.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "json/json_in.h"

static const char *const intervals[] = {
    [PERIOD_WEEKLY] = "weekly",       [PERIOD_MONTHLY] = "monthly",
    [PERIOD_QUARTERLY] = "quarterly", [PERIOD_SEMIANNUAL] = "semiannual",
    [PERIOD_YEARLY] = "yearly",
};

const char *plan_json_interval_name(enum period_interval interval)
{
    return intervals[interval];
}

bool plan_json_interval_parse(const char *text, enum period_interval *out)
{
    for (size_t i = 0; i < sizeof intervals / sizeof intervals[0]; i++) {
        if (strcmp(text, intervals[i]) == 0) {
            *out = (enum period_interval)i;
            return true;
        }
    }
    return false;
}

bool plan_json_terms(const char *body, struct plan_terms *out)
{
    struct json_object *doc = json_tokener_parse(body), *v;
    bool ok = doc != NULL;
    memset(out, 0, sizeof *out);
    if (ok)
        ok = json_object_object_get_ex(doc, "interval", &v) &&
             plan_json_interval_parse(json_object_get_string(v), &out->interval);
    if (ok)
        ok = json_object_object_get_ex(doc, "amount_cents", &v) &&
             json_in_stored_int(v, &out->amount_cents);
    if (ok && (ok = json_object_object_get_ex(doc, "amount_currency", &v)))
        snprintf(out->currency, sizeof out->currency, "%s", json_object_get_string(v));
    /* null (none sent) or absent is no trial: 0 days, as subscription_trial_end reads it */
    if (ok && json_object_object_get_ex(doc, "trial_period", &v) && v) {
        const char *text = json_object_get_string(v);
        ok = money_parse(text, strlen(text), &out->trial_period_days) == MONEY_OK;
    }
    if (ok && json_object_object_get_ex(doc, "pay_in_advance", &v))
        out->pay_in_advance = json_object_get_boolean(v);
    /* stored as null on intervals it does not apply to: false */
    if (ok && json_object_object_get_ex(doc, "bill_charges_monthly", &v))
        out->bill_charges_monthly = json_object_get_boolean(v);
    json_object_put(doc);
    return ok;
}

/*
 * A charge's fields that Lago's Charges::UpdateService passes over once its plan is
 * attached_to_subscriptions? (`charge_model` and the `charge.update!(params)` it skips), with
 * the value a charge stored without the member has.
 */
static const struct {
    const char *key, *absent;
} frozen_charge_fields[] = {
    {"charge_model", "null"},      {"billable_metric_id", "null"}, {"pay_in_advance", "false"},
    {"prorated", "false"},         {"invoiceable", "true"},        {"min_amount_cents", "0"},
    {"regroup_paid_fees", "null"},
};

bool plan_json_charge_field_frozen(const char *key, const char **absent)
{
    for (size_t f = 0; f < sizeof frozen_charge_fields / sizeof frozen_charge_fields[0]; f++) {
        if (strcmp(key, frozen_charge_fields[f].key) == 0) {
            *absent = frozen_charge_fields[f].absent;
            return true;
        }
    }
    return false;
}

/* A member's JSON text, or `absent` when the object does not have it. The text is the
 * object's: read it before the object changes. */
static const char *member_text(struct json_object *obj, const char *key, const char *absent)
{
    struct json_object *v;
    if (!json_object_object_get_ex(obj, key, &v))
        return absent;
    return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
}

static const char *charge_id(struct json_object *charge)
{
    struct json_object *id;
    if (!json_object_object_get_ex(charge, "lago_id", &id) ||
        !json_object_is_type(id, json_type_string))
        return NULL;
    return json_object_get_string(id);
}

static struct json_object *charge_by_id(struct json_object *charges, const char *id)
{
    for (size_t i = 0; id && i < json_object_array_length(charges); i++) {
        const char *other = charge_id(json_object_array_get_idx(charges, i));
        if (other && strcmp(other, id) == 0)
            return json_object_array_get_idx(charges, i);
    }
    return NULL;
}

static void charge_change(struct json_object *before, struct json_object *after, bool overriding,
                          struct plan_json_frozen *out)
{
    struct json_object *was = NULL, *will = NULL;
    json_object_object_get_ex(before, "charges", &was);
    json_object_object_get_ex(after, "charges", &will);
    if (!json_object_is_type(was, json_type_array) || !json_object_is_type(will, json_type_array))
        return;
    for (size_t i = 0; i < json_object_array_length(will); i++) {
        struct json_object *charge = json_object_array_get_idx(will, i);
        const char *id = charge_id(charge);
        struct json_object *stored = charge_by_id(was, id);
        if (!stored)
            continue;
        for (size_t f = 0; f < sizeof frozen_charge_fields / sizeof frozen_charge_fields[0]; f++) {
            const char *key = frozen_charge_fields[f].key, *absent = frozen_charge_fields[f].absent;
            if ((overriding && strcmp(key, "min_amount_cents") == 0) ||
                strcmp(member_text(stored, key, absent), member_text(charge, key, absent)) == 0)
                continue;
            out->field = key;
            out->why = "the period's usage and wallet debits are priced by it";
            snprintf(out->charge, sizeof out->charge, "%s", id);
            return;
        }
    }
}

bool plan_json_frozen_change(const char *before, const char *after, bool overriding,
                             struct plan_json_frozen *out)
{
    struct plan_terms was, will;
    memset(out, 0, sizeof *out);
    if (!plan_json_terms(before, &was) || !plan_json_terms(after, &will))
        return false;
    static const struct {
        const char *field, *why;
    } terms[] = {
        {"interval", "their periods are counted by it"},
        {"bill_charges_monthly", "their wallets paid each charges' period as it went"},
        {"amount_currency", "they are billed in it"},
        {"pay_in_advance", "their subscription fees are billed by it"},
    };
    bool changed[] = {
        was.interval != will.interval, was.bill_charges_monthly != will.bill_charges_monthly,
        strcmp(was.currency, will.currency) != 0, was.pay_in_advance != will.pay_in_advance};
    for (size_t i = 0; i < sizeof terms / sizeof terms[0]; i++) {
        if (changed[i]) {
            out->field = terms[i].field;
            out->why = terms[i].why;
            return true;
        }
    }
    struct json_object *b = json_tokener_parse(before), *a = json_tokener_parse(after);
    bool ok = b && a;
    if (ok)
        charge_change(b, a, overriding, out);
    json_object_put(b);
    json_object_put(a);
    return ok;
}
