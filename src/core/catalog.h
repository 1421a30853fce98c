/*
 * core/catalog: the vocabulary shared by every catalog resource (taxes, billable metrics,
 * plans, add-ons, coupons): what kind an item is, and the item as stored.
 *
 * A catalog item is a definition a billing person writes rarely and the engine reads often:
 * an organization-scoped code, a lago_id, and its definition as canonical JSON (`body`) in
 * the resource's own input shape. Keeping the body in the input shape means one parser reads
 * both what a client sends and what the store holds, and an update is the stored body with
 * the client's fields laid over it, parsed again: there is no second path to drift.
 *
 * Threads: any (pure).
 */
#ifndef TALLY_CORE_CATALOG_H
#define TALLY_CORE_CATALOG_H

#include <stdint.h>

#include "core/timestamp.h"
#include "core/uuid.h"

#define CATALOG_CODE_MAX 255
#define CATALOG_NAME_MAX 255
#define CATALOG_DESCRIPTION_MAX 4096
#define CATALOG_REFS_MAX 512 /* references one definition may make (charges, tax codes) */
/* Distinct taxes one definition's tax_codes may name (a plan, a charge, a commitment, an
 * add-on), and default taxes (applied_to_organization) an organization may have: a fee
 * carries every one of them (usage.h USAGE_TAXES_MAX) */
#define CATALOG_TAXES_MAX 32

enum catalog_kind {
    CATALOG_TAX = 1,
    CATALOG_BILLABLE_METRIC = 2,
    CATALOG_PLAN = 3,
    CATALOG_ADD_ON = 4,
    CATALOG_COUPON = 5,
};

struct catalog_item {
    int64_t id; /* store row id; 0 before the first save */
    int64_t org_id;
    enum catalog_kind kind;
    const char *code;
    char lago_id[UUID_TEXT];
    const char *body; /* canonical JSON object, the resource's input shape */
    tally_time created_at;
    tally_time updated_at;
};

/* Another catalog item a definition names and that must exist when it is saved. */
struct catalog_ref {
    enum catalog_kind kind;
    const char *code;    /* either the code ... */
    const char *lago_id; /* ... or the lago_id (plans name metrics by billable_metric_id) */
    /* the 404 code when it is missing (a coupon's limits: Lago's plans_not_found); NULL: the
     * kind's (catalog_kind_not_found_code) */
    const char *not_found;
};

/* Lago's names for a kind: the root key, the list key and the 404 code. */
const char *catalog_kind_singular(enum catalog_kind kind); /* "tax", "billable_metric", ... */
const char *catalog_kind_plural(enum catalog_kind kind);   /* "taxes", "billable_metrics", ... */
const char *catalog_kind_not_found_code(enum catalog_kind kind); /* "tax_not_found", ... */

#endif
