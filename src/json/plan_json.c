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
