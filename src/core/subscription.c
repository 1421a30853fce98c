/* core/subscription: see subscription.h. */
#include "core/subscription.h"

#include <string.h>

const char *subscription_status_name(enum subscription_status s)
{
    switch (s) {
    case SUBSCRIPTION_PENDING: return "pending";
    case SUBSCRIPTION_ACTIVE: return "active";
    case SUBSCRIPTION_TERMINATED: return "terminated";
    case SUBSCRIPTION_CANCELED: return "canceled";
    }
    return "unknown";
}

tally_time subscription_end(const struct subscription *s)
{
    tally_time end = TIMESTAMP_MAX;
    if (s->has_terminated_at && s->terminated_at < end)
        end = s->terminated_at;
    if (s->has_ending_at && s->ending_at < end)
        end = s->ending_at;
    return end;
}

enum subscription_status subscription_status_at(const struct subscription *s, tally_time now)
{
    if (s->has_canceled_at && s->canceled_at <= now)
        return SUBSCRIPTION_CANCELED;
    if (now < s->started_at)
        return SUBSCRIPTION_PENDING;
    if (subscription_end(s) <= now)
        return SUBSCRIPTION_TERMINATED;
    return SUBSCRIPTION_ACTIVE;
}

bool subscription_is_live(const struct subscription *s, tally_time now)
{
    enum subscription_status st = subscription_status_at(s, now);
    return st == SUBSCRIPTION_PENDING || st == SUBSCRIPTION_ACTIVE;
}

bool plan_terms_yearly_amount(const struct plan_terms *t, int64_t *out)
{
    static const int64_t per_year[] = {
        [PERIOD_WEEKLY] = 52,    [PERIOD_MONTHLY] = 12, [PERIOD_QUARTERLY] = 4,
        [PERIOD_SEMIANNUAL] = 2, [PERIOD_YEARLY] = 1,
    };
    return !__builtin_mul_overflow(t->amount_cents, per_year[t->interval], out);
}

bool subscription_change_kind(const struct subscription *current, const struct plan_terms *from,
                              const char *new_plan_lago_id, bool new_own_plan,
                              const struct plan_terms *to, tally_time now,
                              enum subscription_change *out)
{
    /* Lago compares plan ids, and an overridden subscription is on a child plan of its own: the
     * plan itself, without overrides, is another plan. New overrides over a plan of its own
     * replace it in place here (docs/API.md says where that differs from Lago). */
    if (strcmp(current->plan_lago_id, new_plan_lago_id) == 0 &&
        (!current->plan_body || new_own_plan)) {
        *out = SUBSCRIPTION_CHANGE_NONE;
        return true;
    }
    if (subscription_status_at(current, now) == SUBSCRIPTION_PENDING) {
        *out = SUBSCRIPTION_CHANGE_PENDING;
        return true;
    }
    int64_t old_yearly, new_yearly;
    if (!plan_terms_yearly_amount(from, &old_yearly) || !plan_terms_yearly_amount(to, &new_yearly))
        return false;
    *out = new_yearly >= old_yearly ? SUBSCRIPTION_CHANGE_UPGRADE : SUBSCRIPTION_CHANGE_DOWNGRADE;
    return true;
}

struct period_spec subscription_period_spec(const struct subscription *s,
                                            const struct plan_terms *t, const struct tz_zone *zone)
{
    return (struct period_spec){
        .interval = t->interval,
        .billing_time = s->billing_time,
        .anchor = s->subscription_at,
        .zone = zone,
    };
}

/* The period of `spec` current at `now`: the one containing now, or, outside the
 * subscription's life [started_at, end), the one holding its first or last instant. */
static enum period_status period_current(const struct subscription *s,
                                         const struct period_spec *spec, tally_time end,
                                         tally_time now, struct period *out)
{
    tally_time at = now;
    if (at < s->started_at)
        at = s->started_at;
    if (at >= end && end > s->started_at)
        at = end - 1;
    return period_containing(spec, at, out);
}

enum period_status subscription_current_period(const struct subscription *s,
                                               const struct plan_terms *t,
                                               const struct tz_zone *zone, tally_time now,
                                               struct period *out)
{
    struct period_spec spec = subscription_period_spec(s, t, zone);
    return period_current(s, &spec, subscription_end(s), now, out);
}

struct period_spec subscription_charges_period_spec(const struct subscription *s,
                                                    const struct plan_terms *t,
                                                    const struct tz_zone *zone)
{
    struct period_spec spec = subscription_period_spec(s, t, zone);
    /* the API accepts the flag only on these intervals; elsewhere it means nothing */
    if (t->bill_charges_monthly &&
        (t->interval == PERIOD_YEARLY || t->interval == PERIOD_SEMIANNUAL))
        spec.interval = PERIOD_MONTHLY;
    return spec;
}

enum period_status subscription_charges_period(const struct subscription *s,
                                               const struct plan_terms *t,
                                               const struct tz_zone *zone, tally_time now,
                                               struct period *out)
{
    struct period_spec spec = subscription_charges_period_spec(s, t, zone);
    /* its usage's last instant: a termination's own at a period's first instant is in that
     * period, where it was debited */
    return period_current(s, &spec, subscription_usage_end(s), now, out);
}

tally_time subscription_usage_from(const struct subscription *s, const struct period *p)
{
    return p->start > s->started_at ? p->start : s->started_at;
}

tally_time subscription_usage_end(const struct subscription *s)
{
    tally_time end = subscription_end(s);
    bool on_the_spot = s->has_terminated_at && end == s->terminated_at &&
                       s->terminated_at <= s->updated_at && end < TIMESTAMP_MAX;
    return on_the_spot ? end + 1 : end;
}

tally_time subscription_usage_to(const struct subscription *s, const struct period *p)
{
    tally_time end = subscription_usage_end(s);
    return p->end < end ? p->end : end;
}

bool subscription_trial_end(tally_time initial_started_at, const struct plan_terms *t,
                            tally_time *out)
{
    if (money_sign(t->trial_period_days) <= 0)
        return false;
    money_t usec;
    int64_t n;
    /* Days to microseconds, exact, then rounded down to the microsecond. */
    if (money_mul_round(t->trial_period_days, money_from_int(TIMESTAMP_USEC_PER_DAY), 0,
                        MONEY_ROUND_FLOOR, &usec) != MONEY_OK ||
        money_to_minor_units(usec, 0, MONEY_ROUND_FLOOR, &n) != MONEY_OK ||
        __builtin_add_overflow(initial_started_at, n, out))
        return false;
    return true;
}

bool subscription_trial_ended(const struct subscription *s, const struct plan_terms *t,
                              tally_time initial_started_at, tally_time now, tally_time *out)
{
    enum subscription_status status = subscription_status_at(s, now);
    tally_time end;
    if ((status != SUBSCRIPTION_ACTIVE && status != SUBSCRIPTION_TERMINATED) ||
        !subscription_trial_end(initial_started_at, t, &end))
        return false;
    /* active over [started_at, its end): it was so at some instant from the trial's end on */
    if (end > now || end >= subscription_end(s))
        return false;
    *out = end;
    return true;
}

bool subscription_prorated_cents(int64_t amount_cents, int64_t days_billed, int64_t days_in_period,
                                 int64_t *out)
{
    if (days_in_period <= 0 || days_billed < 0 || days_billed > days_in_period || amount_cents < 0)
        return false;
    /* round half up of amount * days / period, in 128 bits so the product cannot overflow */
    __int128 num = (__int128)amount_cents * days_billed;
    __int128 q = (2 * num + days_in_period) / (2 * (__int128)days_in_period);
    if (q > INT64_MAX)
        return false;
    *out = (int64_t)q;
    return true;
}
