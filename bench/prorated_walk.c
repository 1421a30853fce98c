/*
 * bench/prorated_walk: what one price of a prorated graduated charge costs as its period fills.
 * A recurring sum over March 2026 in New York (a clock change inside), N events spread over
 * the month, three tiers; each round lays out the walk with one more event
 * (aggregation_prorated_values) and prices it (charge_model_amount), as a debit or a hold
 * does: an event after the last (the state's kept walk and one entry more) and a late one
 * (every kept value read). Prints milliseconds a price for each N. Then the same charge on a
 * recurring unique count of U users (a tenth of them removed later in the month), priced
 * with one more user: every price lays the walk out from the operations the state keeps in
 * order (the price, and the walk's part of it).
 *
 *   build/release/bench/bench_prorated_walk [N ...]      (default 1000 10000 100000 1000000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/aggregation.h"
#include "core/charge_model.h"
#include "core/tz.h"
#include "sys/wallclock.h"

static const char ZONE[] = "EST5EDT,M3.2.0,M11.1.0";
/* 2026-03-01T05:00:00Z, local midnight in New York, and the month's length to April's */
static const tally_time FROM = INT64_C(1772341200) * 1000000;
static const tally_time LENGTH = (INT64_C(31) * 86400 - 3600) * 1000000;

/* A state of n events, values 1..3 at evenly spaced instants; false if one is refused. */
static bool fill(struct aggregation *a, const struct tz_zone *zone, long n)
{
    struct billable_metric m = {
        .aggregation = AGGREGATION_SUM, .field_name = "seats", .recurring = true};
    if (aggregation_init(a, &m, FROM, FROM + LENGTH) != AGGREGATION_OK ||
        aggregation_set_prorated(a, zone, 31) != AGGREGATION_OK ||
        aggregation_keep_values(a, AGGREGATION_KEEP_ALL) != AGGREGATION_OK)
        return false;
    for (long i = 0; i < n; i++) {
        char value[2] = {(char)('1' + i % 3), 0};
        struct aggregation_event e = {.timestamp = FROM + (tally_time)(LENGTH / n * i),
                                      .sequence = (uint64_t)i + 1,
                                      .value = value,
                                      .value_len = 1};
        if (aggregation_add(a, &e) != AGGREGATION_OK)
            return false;
    }
    return true;
}

/* A unique count of u users added over the month, every tenth removed 5 days later. */
static bool fill_users(struct aggregation *a, const struct tz_zone *zone, long u)
{
    struct billable_metric m = {
        .aggregation = AGGREGATION_UNIQUE_COUNT, .field_name = "user", .recurring = true};
    if (aggregation_init(a, &m, FROM, FROM + LENGTH) != AGGREGATION_OK ||
        aggregation_set_prorated(a, zone, 31) != AGGREGATION_OK)
        return false;
    uint64_t sequence = 0;
    for (long i = 0; i < u; i++) {
        char user[24];
        int len = snprintf(user, sizeof user, "u%ld", i);
        tally_time at = FROM + (tally_time)(LENGTH / 2 / u * i);
        struct aggregation_event e = {
            .timestamp = at, .sequence = ++sequence, .value = user, .value_len = (size_t)len};
        if (aggregation_add(a, &e) != AGGREGATION_OK)
            return false;
        e.operation_type = "remove";
        e.timestamp = at + INT64_C(5) * 86400 * 1000000;
        e.sequence = ++sequence;
        if (i % 10 == 0 && aggregation_add(a, &e) != AGGREGATION_OK)
            return false;
    }
    return true;
}

/* One price with e in the walk, as a hold or a debit prices its event. */
static bool price(const struct aggregation *a, const struct aggregation_event *e,
                  const struct charge_model_properties *p, struct aggregation_walk *walk)
{
    money_t amount;
    if (aggregation_prorated_values(a, e, money_from_int(1), walk) != AGGREGATION_OK)
        return false;
    struct charge_model_input in = {.units = money_from_int(1),
                                    .event_values = walk->values,
                                    .event_values_count = walk->count,
                                    .event_value_days = walk->days,
                                    .period_days = walk->period_days,
                                    .peak_units = walk->peak};
    return charge_model_amount(p, &in, &amount) == CHARGE_MODEL_OK;
}

int main(int argc, char **argv)
{
    static const long defaults[] = {1000, 10000, 100000, 1000000};
    struct tz_zone *zone;
    if (tz_from_posix(ZONE, strlen(ZONE), &zone) != TZ_OK)
        return 2;
    struct charge_model_range ranges[3] = {
        {.from_value = money_from_int(0),
         .to_value = money_from_int(10),
         .has_to_value = true,
         .per_unit_amount = money_from_int(3),
         .flat_amount = money_from_int(1)},
        {.from_value = money_from_int(11),
         .to_value = money_from_int(100),
         .has_to_value = true,
         .per_unit_amount = money_from_int(2)},
        {.from_value = money_from_int(101), .per_unit_amount = money_from_int(1)},
    };
    struct charge_model_properties p = {.kind = CHARGE_MODEL_GRADUATED};
    p.ranges = (struct charge_model_ranges){ranges, 3};
    struct aggregation_walk walk = {0};
    int count = argc > 1 ? argc - 1 : (int)(sizeof defaults / sizeof defaults[0]);
    for (int k = 0; k < count; k++) {
        long n = argc > 1 ? atol(argv[k + 1]) : defaults[k];
        struct aggregation a;
        if (n <= 0 || !fill(&a, zone, n)) {
            fprintf(stderr, "prorated walk: cannot build a state of %ld events\n", n);
            return 1;
        }
        /* an event after the last (a hold, a debit in time order: the kept walk and one more
         * entry) and one in the middle of the period (a late event: every value read) */
        struct aggregation_event next = {.timestamp = FROM + LENGTH - 1,
                                         .sequence = (uint64_t)n + 1,
                                         .value = "1",
                                         .value_len = 1};
        struct aggregation_event late = next;
        late.timestamp = FROM + LENGTH / 2 + 1;
        double ms[2];
        if (!price(&a, NULL, &p, &walk)) /* the first read lays the kept walk out */
            return 1;
        for (int which = 0; which < 2; which++) {
            int rounds = which == 0 ? 2000 : n >= 1000000 ? 10 : n >= 100000 ? 50 : 500;
            int64_t t0 = wallclock_monotonic_usec();
            for (int r = 0; r < rounds; r++)
                if (!price(&a, which == 0 ? &next : &late, &p, &walk))
                    return 1;
            ms[which] = (double)(wallclock_monotonic_usec() - t0) / 1000.0 / rounds;
        }
        printf("prorated walk: %ld events in the period, %zu entries: a price %.4f ms in time "
               "order, %.3f ms for a late event\n",
               n, walk.count, ms[0], ms[1]);
        aggregation_free(&a);
    }
    static const long users[] = {100, 1000, 10000, 100000};
    for (size_t k = 0; argc == 1 && k < sizeof users / sizeof users[0]; k++) {
        struct aggregation a;
        if (!fill_users(&a, zone, users[k])) {
            fprintf(stderr, "prorated walk: cannot build a state of %ld users\n", users[k]);
            return 1;
        }
        struct aggregation_event next = {.timestamp = FROM + LENGTH - 1,
                                         .sequence = UINT64_MAX,
                                         .value = "newcomer",
                                         .value_len = 8};
        int rounds = users[k] >= 100000 ? 20 : users[k] >= 10000 ? 100 : 1000;
        if (!price(&a, NULL, &p, &walk)) /* the first read lays the operations out */
            return 1;
        int64_t t0 = wallclock_monotonic_usec();
        for (int r = 0; r < rounds; r++)
            if (aggregation_prorated_values(&a, &next, MONEY_ZERO, &walk) != AGGREGATION_OK)
                return 1;
        int64_t t1 = wallclock_monotonic_usec();
        for (int r = 0; r < rounds; r++)
            if (!price(&a, &next, &p, &walk))
                return 1;
        int64_t t2 = wallclock_monotonic_usec();
        printf("prorated unique walk: %ld users, %zu entries: a price %.4f ms (its walk %.4f "
               "ms)\n",
               users[k], walk.count, (double)(t2 - t1) / 1000.0 / rounds,
               (double)(t1 - t0) / 1000.0 / rounds);
        aggregation_free(&a);
    }
    aggregation_walk_free(&walk);
    tz_free(zone);
    return 0;
}
