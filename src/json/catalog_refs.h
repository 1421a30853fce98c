/*
 * json/catalog_refs: taking a deleted catalog item's code out of the stored definitions that
 * name it (Lago destroys those links with the item: applied taxes, coupon targets; or hides
 * them, as a wallet's targets), or
 * writing a renamed item's new code in its place; and finding what in them a metric's
 * update would leave undeclared (a charge filter's value).
 *
 * The writer does it inside the delete's own command, on the stored canonical bodies: a code
 * left behind would make every later update of the naming item fail (its references are checked
 * to exist), and would silently name whatever item is made next with that code. Only the
 * arrays of codes change; every other member keeps its stored text (json-c writes numbers back
 * as they were read), so the body is still what the resource's parser produced.
 *
 * Threads: any.
 */
#ifndef TALLY_JSON_CATALOG_REFS_H
#define TALLY_JSON_CATALOG_REFS_H

#include "core/billable_metric.h"
#include "util/arena.h"

enum catalog_refs_result {
    CATALOG_REFS_UNCHANGED, /* the body does not name the code */
    CATALOG_REFS_CHANGED,   /* *out is the body with it replaced or removed, in the arena */
    CATALOG_REFS_FAILED,    /* not an object Tally wrote, or memory ran out */
};

/*
 * Each function replaces a code by `replacement` where a body names it (an item renamed: Lago
 * links by id, so what named it names it still), or removes it (replacement NULL: the item
 * deleted).
 */

/* A tax's code in a plan's, an add-on's or a subscription's own plan's body: the top level's
 * `tax_codes`, each charge's and the minimum commitment's. */
enum catalog_refs_result catalog_refs_retarget_tax(struct arena *a, const char *body,
                                                   const char *code, const char *replacement,
                                                   const char **out);

/*
 * A code in the array `key` of a body's top level (a coupon's `plan_codes` or
 * `billable_metric_codes`). The coupon's `limited_*` flag is left as it was: a coupon whose
 * every target is gone applies to none, not to all.
 */
enum catalog_refs_result catalog_refs_retarget_code(struct arena *a, const char *body,
                                                    const char *key, const char *code,
                                                    const char *replacement, const char **out);

/*
 * A billable metric's code in a wallet's stored terms (`applies_to.billable_metric_codes`).
 * Named already under `replacement` (a code left by a rename before wallets followed them), it
 * is named once. A list its last code leaves is marked `limited_to_billable_metrics`: the wallet
 * pays for none, as Lago's wallet keeps its targets (its allocation still treats it as limited
 * to billable metrics) rather than paying for every one; an update naming applies_to again
 * drops the mark with the rest of it.
 */
enum catalog_refs_result catalog_refs_retarget_wallet_metric(struct arena *a, const char *terms,
                                                             const char *code,
                                                             const char *replacement,
                                                             const char **out);

/* A code in a stored array of codes (a customer's `tax_codes`); an array left empty is NULL in
 * *out (the customer names no tax). */
enum catalog_refs_result catalog_refs_retarget_listed(struct arena *a, const char *list,
                                                      const char *code, const char *replacement,
                                                      const char **out);

/* Whether a plan's (or a subscription's own plan's) body has a charge on the metric
 * `metric_lago_id`: 1 yes, 0 no, -1 if the body is not an object Tally wrote. */
int catalog_refs_charges_metric(const char *body, const char *metric_lago_id);

/*
 * Whether a plan's (or a subscription's own plan's) body has a charge on the metric
 * `metric_lago_id` with a filter value the metric's filters `declared` do not hold: a value
 * of a key it declares no longer, or of a key it no longer has (the wildcard too). 1 and the
 * first such key and value (copied into `a`), 0 for none, -1 if the body is not an object
 * Tally wrote or memory ran out.
 */
int catalog_refs_undeclared_filter(struct arena *a, const char *body, const char *metric_lago_id,
                                   const struct billable_metric_filter *declared,
                                   size_t declared_count, const char **key, const char **value);

#endif
