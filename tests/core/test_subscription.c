/*
 * core/subscription: status as a function of instants and the clock, plan-change decisions,
 * trial ends, current periods, and Lago's day proration, including against brute force.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/subscription.h"
#include "sys/tzdb.h"

#define DAY TIMESTAMP_USEC_PER_DAY

static tally_time iso(const char *s)
{
    tally_time t;
    if (!timestamp_parse_iso8601(s, strlen(s), &t))
        fail_msg("bad time %s", s);
    return t;
}

static struct subscription base(void)
{
    struct subscription s;
    memset(&s, 0, sizeof s);
    strcpy(s.plan_lago_id, "plan-a");
    s.subscription_at = s.started_at = iso("2026-01-10T00:00:00Z");
    return s;
}

static void status_follows_the_clock(void **state)
{
    (void)state;
    struct subscription s = base();
    assert_int_equal(subscription_status_at(&s, iso("2026-01-09T23:59:59Z")), SUBSCRIPTION_PENDING);
    assert_int_equal(subscription_status_at(&s, s.started_at), SUBSCRIPTION_ACTIVE);
    assert_int_equal(subscription_end(&s), TIMESTAMP_MAX);
    s.has_ending_at = true;
    s.ending_at = iso("2026-03-01T00:00:00Z");
    s.has_terminated_at = true;
    s.terminated_at = iso("2026-02-01T00:00:00Z"); /* the earlier end wins */
    assert_int_equal(subscription_end(&s), s.terminated_at);
    assert_int_equal(subscription_status_at(&s, s.terminated_at - 1), SUBSCRIPTION_ACTIVE);
    assert_int_equal(subscription_status_at(&s, s.terminated_at), SUBSCRIPTION_TERMINATED);
    assert_true(subscription_is_live(&s, s.terminated_at - 1));
    assert_false(subscription_is_live(&s, s.terminated_at));
    struct subscription p = base();
    p.has_canceled_at = true;
    p.canceled_at = iso("2026-01-05T00:00:00Z");
    assert_int_equal(subscription_status_at(&p, iso("2026-01-04T00:00:00Z")), SUBSCRIPTION_PENDING);
    assert_int_equal(subscription_status_at(&p, iso("2026-01-20T00:00:00Z")),
                     SUBSCRIPTION_CANCELED);
    assert_string_equal(subscription_status_name(SUBSCRIPTION_CANCELED), "canceled");
}

static void plan_changes(void **state)
{
    (void)state;
    struct subscription s = base();
    struct plan_terms monthly = {.interval = PERIOD_MONTHLY, .amount_cents = 1000};
    struct plan_terms yearly_cheaper = {.interval = PERIOD_YEARLY, .amount_cents = 11999};
    struct plan_terms yearly_same = {.interval = PERIOD_YEARLY, .amount_cents = 12000};
    struct plan_terms weekly = {.interval = PERIOD_WEEKLY, .amount_cents = 231};
    enum subscription_change k;
    tally_time now = iso("2026-01-20T00:00:00Z");
    assert_true(subscription_change_kind(&s, &monthly, "plan-a", false, &yearly_cheaper, now, &k));
    assert_int_equal(k, SUBSCRIPTION_CHANGE_NONE);
    assert_true(subscription_change_kind(&s, &monthly, "plan-b", false, &yearly_cheaper, now, &k));
    assert_int_equal(k, SUBSCRIPTION_CHANGE_DOWNGRADE);
    assert_true(subscription_change_kind(&s, &monthly, "plan-b", false, &yearly_same, now, &k));
    assert_int_equal(k, SUBSCRIPTION_CHANGE_UPGRADE); /* equal yearly amount is an upgrade */
    int64_t y;
    assert_true(plan_terms_yearly_amount(&weekly, &y));
    assert_int_equal(y, 12012); /* 231 a week is more than 1000 a month over a year */
    assert_true(subscription_change_kind(&s, &monthly, "plan-b", false, &weekly, now, &k));
    assert_int_equal(k, SUBSCRIPTION_CHANGE_UPGRADE);
    assert_true(subscription_change_kind(&s, &monthly, "plan-b", false, &monthly,
                                         iso("2026-01-01T00:00:00Z"), &k));
    assert_int_equal(k, SUBSCRIPTION_CHANGE_PENDING);
    struct plan_terms huge = {.interval = PERIOD_WEEKLY, .amount_cents = INT64_MAX / 2};
    assert_false(subscription_change_kind(&s, &monthly, "plan-b", false, &huge, now, &k));
    /* the same plan with overrides: no change (replaced in place); a plan of its own (Lago's
     * child plan) sent the plan itself, without overrides, is a change to it, by price */
    assert_true(subscription_change_kind(&s, &monthly, "plan-a", true, &monthly, now, &k));
    assert_int_equal(k, SUBSCRIPTION_CHANGE_NONE);
    s.plan_body = "{}";
    assert_true(subscription_change_kind(&s, &monthly, "plan-a", true, &monthly, now, &k));
    assert_int_equal(k, SUBSCRIPTION_CHANGE_NONE);
    assert_true(subscription_change_kind(&s, &monthly, "plan-a", false, &yearly_same, now, &k));
    assert_int_equal(k, SUBSCRIPTION_CHANGE_UPGRADE);
    assert_true(subscription_change_kind(&s, &monthly, "plan-a", false, &yearly_cheaper, now, &k));
    assert_int_equal(k, SUBSCRIPTION_CHANGE_DOWNGRADE);
    assert_true(subscription_change_kind(&s, &monthly, "plan-a", false, &monthly,
                                         iso("2026-01-01T00:00:00Z"), &k));
    assert_int_equal(k, SUBSCRIPTION_CHANGE_PENDING);
}

static void trial_end(void **state)
{
    (void)state;
    struct subscription s = base();
    struct plan_terms t = {.interval = PERIOD_MONTHLY, .trial_period_days = money_from_int(0)};
    tally_time end;
    assert_false(subscription_trial_end(s.started_at, &t, &end));
    assert_int_equal(money_parse("14", 2, &t.trial_period_days), MONEY_OK);
    assert_true(subscription_trial_end(s.started_at, &t, &end));
    assert_int_equal(end, s.started_at + 14 * DAY);
    assert_int_equal(money_parse("0.5", 3, &t.trial_period_days), MONEY_OK);
    assert_true(subscription_trial_end(s.started_at, &t, &end));
    assert_int_equal(end, s.started_at + DAY / 2);
    assert_int_equal(money_parse("0.0000000001", 12, &t.trial_period_days), MONEY_OK);
    assert_true(subscription_trial_end(s.started_at, &t, &end));
    assert_int_equal(end, s.started_at + 8); /* 8.64 microseconds, rounded down */
}

/* Lago's trial_ended_at: from the first start under the external id, shown once the trial has
 * ended while the subscription was active (audit 11: a plan change restarted it). */
static void trial_ended_follows_the_first_start(void **state)
{
    (void)state;
    struct subscription s = base(); /* started 2026-01-10 */
    struct plan_terms t = {.interval = PERIOD_MONTHLY};
    assert_int_equal(money_parse("14", 2, &t.trial_period_days), MONEY_OK);
    tally_time first = s.started_at - 10 * DAY, end = 0;
    /* a plan change 10 days into it: the trial ends 4 days after this start */
    assert_false(subscription_trial_ended(&s, &t, first, s.started_at + 4 * DAY - 1, &end));
    assert_true(subscription_trial_ended(&s, &t, first, s.started_at + 4 * DAY, &end));
    assert_int_equal(end, first + 14 * DAY);
    /* started after the trial ended: shown from its start, the first start's end */
    assert_true(subscription_trial_ended(&s, &t, s.started_at - 20 * DAY, s.started_at, &end));
    assert_int_equal(end, s.started_at - 6 * DAY);
    /* ended before the trial did (or as it did): never shown */
    s.has_terminated_at = true;
    s.terminated_at = s.started_at + 4 * DAY;
    assert_false(subscription_trial_ended(&s, &t, first, s.started_at + 30 * DAY, &end));
    s.terminated_at = s.started_at + 4 * DAY + 1;
    assert_true(subscription_trial_ended(&s, &t, first, s.started_at + 30 * DAY, &end));
    /* not started (a scheduled downgrade), or canceled: none */
    s = base();
    assert_false(subscription_trial_ended(&s, &t, first, s.started_at - 1, &end));
    s.has_canceled_at = true;
    s.canceled_at = s.started_at;
    assert_false(subscription_trial_ended(&s, &t, first, s.started_at + 30 * DAY, &end));
    /* no trial */
    s = base();
    t.trial_period_days = money_from_int(0);
    assert_false(subscription_trial_ended(&s, &t, first, s.started_at + 30 * DAY, &end));
}

static void current_period_clamps_to_the_subscription(void **state)
{
    (void)state;
    struct tzdb *db = tzdb_open(NULL);
    assert_non_null(db);
    const struct tz_zone *utc = tzdb_get(db, "UTC", 3);
    struct subscription s = base();
    s.billing_time = PERIOD_ANNIVERSARY;
    struct plan_terms t = {.interval = PERIOD_MONTHLY};
    struct period p;
    /* before it starts: the period of its start */
    assert_int_equal(subscription_current_period(&s, &t, utc, iso("2025-06-01T00:00:00Z"), &p),
                     PERIOD_OK);
    assert_int_equal(p.start, iso("2026-01-10T00:00:00Z"));
    assert_int_equal(p.end, iso("2026-02-10T00:00:00Z"));
    /* after it ended: the period holding its last instant */
    s.has_terminated_at = true;
    s.terminated_at = iso("2026-03-10T00:00:00Z");
    assert_int_equal(subscription_current_period(&s, &t, utc, iso("2027-01-01T00:00:00Z"), &p),
                     PERIOD_OK);
    assert_int_equal(p.start, iso("2026-02-10T00:00:00Z"));
    assert_int_equal(p.end, iso("2026-03-10T00:00:00Z"));
    tzdb_close(db);
}

/* Checks the charges' period at `now`: [from, to). */
static void charges_period_is(const struct subscription *s, const struct plan_terms *t,
                              const struct tz_zone *zone, const char *now, const char *from,
                              const char *to)
{
    struct period p;
    assert_int_equal(subscription_charges_period(s, t, zone, iso(now), &p), PERIOD_OK);
    if (p.start != iso(from) || p.end != iso(to))
        fail_msg("at %s: charges period %lld..%lld, wanted %s..%s", now, (long long)p.start,
                 (long long)p.end, from, to);
}

/* Lago's Subscriptions::Dates::YearlyService / SemiannualService: with bill_charges_monthly,
 * the charges' dates are the monthly service's (calendar months, or anniversary months from
 * subscription_at), while the subscription fee keeps the plan's interval. */
static void charges_billed_monthly(void **state)
{
    (void)state;
    struct tzdb *db = tzdb_open(NULL);
    assert_non_null(db);
    const struct tz_zone *utc = tzdb_get(db, "UTC", 3);
    const struct tz_zone *paris = tzdb_get(db, "Europe/Paris", 12);
    assert_non_null(paris);
    struct subscription s = base();
    s.subscription_at = s.started_at = iso("2026-01-01T00:00:00Z");
    struct plan_terms t = {.interval = PERIOD_YEARLY, .bill_charges_monthly = true};
    struct period p;
    /* calendar yearly: the month, while the fee's period stays the year */
    charges_period_is(&s, &t, utc, "2026-05-20T00:00:00Z", "2026-05-01T00:00:00Z",
                      "2026-06-01T00:00:00Z");
    assert_int_equal(subscription_current_period(&s, &t, utc, iso("2026-05-20T00:00:00Z"), &p),
                     PERIOD_OK);
    assert_int_equal(p.start, iso("2026-01-01T00:00:00Z"));
    assert_int_equal(p.end, iso("2027-01-01T00:00:00Z"));
    /* without the flag, the charges' period is the plan's */
    t.bill_charges_monthly = false;
    charges_period_is(&s, &t, utc, "2026-05-20T00:00:00Z", "2026-01-01T00:00:00Z",
                      "2027-01-01T00:00:00Z");
    /* calendar semiannual */
    t = (struct plan_terms){.interval = PERIOD_SEMIANNUAL, .bill_charges_monthly = true};
    charges_period_is(&s, &t, utc, "2026-08-31T23:59:59Z", "2026-08-01T00:00:00Z",
                      "2026-09-01T00:00:00Z");
    /* local months in the customer's zone (Paris: UTC+1 in winter, +2 in summer) */
    charges_period_is(&s, &t, paris, "2026-03-31T22:30:00Z", "2026-03-31T22:00:00Z",
                      "2026-04-30T22:00:00Z");
    charges_period_is(&s, &t, paris, "2026-03-31T21:30:00Z", "2026-02-28T23:00:00Z",
                      "2026-03-31T22:00:00Z");
    /* anniversary: months from subscription_at, a Jan 31 anchor clamped and never drifting */
    s.billing_time = PERIOD_ANNIVERSARY;
    s.subscription_at = s.started_at = iso("2026-01-31T00:00:00Z");
    t = (struct plan_terms){.interval = PERIOD_YEARLY, .bill_charges_monthly = true};
    charges_period_is(&s, &t, utc, "2026-02-15T00:00:00Z", "2026-01-31T00:00:00Z",
                      "2026-02-28T00:00:00Z");
    charges_period_is(&s, &t, utc, "2026-03-01T00:00:00Z", "2026-02-28T00:00:00Z",
                      "2026-03-31T00:00:00Z");
    charges_period_is(&s, &t, utc, "2026-04-30T00:00:00Z", "2026-04-30T00:00:00Z",
                      "2026-05-31T00:00:00Z");
    charges_period_is(&s, &t, utc, "2028-02-29T12:00:00Z", "2028-02-29T00:00:00Z",
                      "2028-03-31T00:00:00Z");
    t.interval = PERIOD_SEMIANNUAL;
    charges_period_is(&s, &t, paris, "2026-07-15T00:00:00Z", "2026-06-29T22:00:00Z",
                      "2026-07-30T22:00:00Z");
    /* the flag means nothing on shorter intervals (the API refuses it there) */
    t = (struct plan_terms){.interval = PERIOD_QUARTERLY, .bill_charges_monthly = true};
    s.billing_time = PERIOD_CALENDAR;
    charges_period_is(&s, &t, utc, "2026-05-20T00:00:00Z", "2026-04-01T00:00:00Z",
                      "2026-07-01T00:00:00Z");
    /* clamped to the subscription as the current period is: before its start, after its end */
    t = (struct plan_terms){.interval = PERIOD_YEARLY, .bill_charges_monthly = true};
    s.subscription_at = s.started_at = iso("2026-03-10T00:00:00Z");
    charges_period_is(&s, &t, utc, "2026-01-05T00:00:00Z", "2026-03-01T00:00:00Z",
                      "2026-04-01T00:00:00Z");
    s.has_terminated_at = true;
    s.terminated_at = iso("2026-06-15T00:00:00Z");
    charges_period_is(&s, &t, utc, "2026-11-05T00:00:00Z", "2026-06-01T00:00:00Z",
                      "2026-07-01T00:00:00Z");
    tzdb_close(db);
}

/* The usage's start, under which wallets keep a period's debits: the period's start, or the
 * subscription's if later. A subscription that began exactly at a UTC month's start keeps its
 * start when a zone east of UTC moves the period's start hours before it, and follows a zone
 * west of UTC that moves it after. */
static void usage_from_is_the_later_start(void **state)
{
    (void)state;
    struct tzdb *db = tzdb_open(NULL);
    assert_non_null(db);
    const struct tz_zone *utc = tzdb_get(db, "UTC", 3);
    const struct tz_zone *paris = tzdb_get(db, "Europe/Paris", 12);
    const struct tz_zone *ny = tzdb_get(db, "America/New_York", 16);
    assert_non_null(paris);
    assert_non_null(ny);
    struct subscription s = base();
    s.subscription_at = s.started_at = iso("2026-01-01T00:00:00Z");
    struct plan_terms t = {.interval = PERIOD_MONTHLY};
    struct period p;
    tally_time now = iso("2026-01-10T00:00:00Z");
    assert_int_equal(subscription_charges_period(&s, &t, utc, now, &p), PERIOD_OK);
    assert_int_equal(subscription_usage_from(&s, &p), s.started_at);
    assert_int_equal(subscription_charges_period(&s, &t, paris, now, &p), PERIOD_OK);
    assert_int_equal(p.start, iso("2025-12-31T23:00:00Z"));
    assert_int_equal(subscription_usage_from(&s, &p), s.started_at);
    assert_int_equal(subscription_charges_period(&s, &t, ny, now, &p), PERIOD_OK);
    assert_int_equal(subscription_usage_from(&s, &p), iso("2026-01-01T05:00:00Z"));
    /* a later period starts at its own start */
    assert_int_equal(subscription_charges_period(&s, &t, paris, iso("2026-02-10T00:00:00Z"), &p),
                     PERIOD_OK);
    assert_int_equal(subscription_usage_from(&s, &p), iso("2026-01-31T23:00:00Z"));
    tzdb_close(db);
}

static void proration_matches_lago(void **state)
{
    (void)state;
    int64_t c;
    assert_true(subscription_prorated_cents(4900, 31, 31, &c));
    assert_int_equal(c, 4900);
    assert_true(subscription_prorated_cents(4900, 0, 31, &c));
    assert_int_equal(c, 0);
    assert_true(subscription_prorated_cents(4900, 17, 31, &c)); /* 2687.096... */
    assert_int_equal(c, 2687);
    assert_true(subscription_prorated_cents(100, 1, 8, &c)); /* 12.5 rounds half up */
    assert_int_equal(c, 13);
    assert_true(subscription_prorated_cents(INT64_MAX, 30, 31, &c));
    assert_int_equal(c, (int64_t)(((__int128)INT64_MAX * 30 * 2 + 31) / 62));
    assert_false(subscription_prorated_cents(100, 32, 31, &c));
    assert_false(subscription_prorated_cents(100, 1, 0, &c));
    assert_false(subscription_prorated_cents(-1, 1, 2, &c));
    /* against brute force: every amount up to 2000 cents, every day count of a 28..31 month */
    for (int64_t period = 28; period <= 31; period++)
        for (int64_t days = 0; days <= period; days++)
            for (int64_t amount = 0; amount <= 2000; amount++) {
                assert_true(subscription_prorated_cents(amount, days, period, &c));
                int64_t num = amount * days, q = num / period, r = num % period;
                int64_t expect = 2 * r >= period ? q + 1 : q;
                if (c != expect)
                    fail_msg("%lld * %lld / %lld: %lld, expected %lld", (long long)amount,
                             (long long)days, (long long)period, (long long)c, (long long)expect);
            }
}

/* A termination decided on the spot has its own instant (events of it arrived while it lived);
 * an end set ahead (ending_at, a downgrade's switch) has not; a period that ends first bounds
 * both. The charges' period of a subscription terminated at a period's first instant is that
 * period, where the instant's events were debited. */
static void usage_to_keeps_the_termination_instant(void **state)
{
    (void)state;
    struct tzdb *db = tzdb_open(NULL);
    assert_non_null(db);
    const struct tz_zone *utc = tzdb_get(db, "UTC", 3);
    struct subscription s = base();
    struct period p = {.start = iso("2026-01-01T00:00:00Z"), .end = iso("2026-02-01T00:00:00Z")};
    assert_int_equal(subscription_usage_to(&s, &p), p.end);
    s.has_ending_at = true;
    s.ending_at = iso("2026-01-20T00:00:00Z");
    assert_int_equal(subscription_usage_to(&s, &p), s.ending_at);
    s.has_terminated_at = true;
    s.terminated_at = s.updated_at = iso("2026-01-15T12:00:00Z"); /* DELETE, or an upgrade */
    assert_int_equal(subscription_usage_to(&s, &p), s.terminated_at + 1);
    s.has_ending_at = false;
    s.updated_at = iso("2026-01-15T12:00:00Z");
    s.terminated_at = p.end; /* a downgrade decided then, at the period's end */
    assert_int_equal(subscription_usage_end(&s), p.end);
    assert_int_equal(subscription_usage_to(&s, &p), p.end);
    struct plan_terms t = {.interval = PERIOD_MONTHLY};
    struct period got;
    assert_int_equal(subscription_charges_period(&s, &t, utc, iso("2026-02-10T00:00:00Z"), &got),
                     PERIOD_OK);
    assert_int_equal(got.start, p.start);   /* its last period stays the one before the switch */
    s.terminated_at = s.updated_at = p.end; /* DELETE at February's first instant */
    assert_int_equal(subscription_charges_period(&s, &t, utc, p.end, &got), PERIOD_OK);
    assert_int_equal(got.start, p.end);
    assert_int_equal(subscription_usage_to(&s, &got), p.end + 1);
    assert_int_equal(subscription_current_period(&s, &t, utc, p.end, &got), PERIOD_OK);
    assert_int_equal(got.start, p.start); /* the fee's period: the life before the instant */
    s.terminated_at = s.updated_at = s.started_at; /* ended at the instant it started */
    assert_int_equal(subscription_usage_to(&s, &p), s.started_at + 1);
    tzdb_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_follows_the_clock),
        cmocka_unit_test(plan_changes),
        cmocka_unit_test(trial_end),
        cmocka_unit_test(trial_ended_follows_the_first_start),
        cmocka_unit_test(current_period_clamps_to_the_subscription),
        cmocka_unit_test(charges_billed_monthly),
        cmocka_unit_test(usage_from_is_the_later_start),
        cmocka_unit_test(usage_to_keeps_the_termination_instant),
        cmocka_unit_test(proration_matches_lago),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
