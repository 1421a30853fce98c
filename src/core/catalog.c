/* core/catalog: see catalog.h. */
#include "core/catalog.h"

#include <assert.h>
#include <stddef.h>

struct kind_names {
    const char *singular, *plural, *not_found;
};

static const struct kind_names names[] = {
    [CATALOG_TAX] = {"tax", "taxes", "tax_not_found"},
    [CATALOG_BILLABLE_METRIC] = {"billable_metric", "billable_metrics",
                                 "billable_metric_not_found"},
    [CATALOG_PLAN] = {"plan", "plans", "plan_not_found"},
    [CATALOG_ADD_ON] = {"add_on", "add_ons", "add_on_not_found"},
    [CATALOG_COUPON] = {"coupon", "coupons", "coupon_not_found"},
};

static const struct kind_names *lookup(enum catalog_kind kind)
{
    assert(kind >= CATALOG_TAX && kind <= CATALOG_COUPON);
    return &names[kind];
}

const char *catalog_kind_singular(enum catalog_kind kind)
{
    return lookup(kind)->singular;
}

const char *catalog_kind_plural(enum catalog_kind kind)
{
    return lookup(kind)->plural;
}

const char *catalog_kind_not_found_code(enum catalog_kind kind)
{
    return lookup(kind)->not_found;
}
