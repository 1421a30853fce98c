/* api/routes: see routes.h. */
#include "api/routes.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "api/add_ons.h"
#include "api/applied_coupons.h"
#include "api/authorizations.h"
#include "api/billable_metrics.h"
#include "api/catalog.h"
#include "api/coupons.h"
#include "api/customers.h"
#include "api/events.h"
#include "api/invoices.h"
#include "api/ledger_entries.h"
#include "api/ops.h"
#include "api/plans.h"
#include "api/subscriptions.h"
#include "api/taxes.h"
#include "api/usage.h"
#include "api/wallet_transactions.h"
#include "api/wallets.h"
#include "api/webhook_events.h"
#include "api/test_clock.h"
#include "api/metrics.h"
#include "util/utf8.h"

const struct route api_routes[] = {
    {"GET", "/health", "health", false, ops_health, NULL},
    {"GET", "/metrics", "metrics", false, ops_metrics, NULL},
    {"POST", "/api/v1/customers", "customers.upsert", true, customers_upsert, NULL},
    {"GET", "/api/v1/customers", "customers.list", true, customers_list, NULL},
    {"GET", "/api/v1/customers/{}", "customers.get", true, customers_get, NULL},
    {"DELETE", "/api/v1/customers/{}", "customers.delete", true, customers_delete, NULL},
    {"GET", "/api/v1/test_clock", "test_clock.get", true, test_clock_get, NULL},
    {"POST", "/api/v1/test_clock/advance", "test_clock.advance", true, test_clock_advance, NULL},
    {"POST", "/api/v1/taxes", "taxes.create", true, catalog_create, &taxes_resource},
    {"GET", "/api/v1/taxes", "taxes.list", true, catalog_list, &taxes_resource},
    {"GET", "/api/v1/taxes/{}", "taxes.get", true, catalog_get, &taxes_resource},
    {"PUT", "/api/v1/taxes/{}", "taxes.update", true, catalog_update, &taxes_resource},
    {"DELETE", "/api/v1/taxes/{}", "taxes.delete", true, catalog_delete, &taxes_resource},
    {"POST", "/api/v1/billable_metrics", "billable_metrics.create", true, catalog_create,
     &billable_metrics_resource},
    {"POST", "/api/v1/billable_metrics/evaluate_expression", "billable_metrics.evaluate_expression",
     true, billable_metrics_evaluate_expression, NULL},
    {"GET", "/api/v1/billable_metrics", "billable_metrics.list", true, catalog_list,
     &billable_metrics_resource},
    {"GET", "/api/v1/billable_metrics/{}", "billable_metrics.get", true, catalog_get,
     &billable_metrics_resource},
    {"PUT", "/api/v1/billable_metrics/{}", "billable_metrics.update", true, catalog_update,
     &billable_metrics_resource},
    {"DELETE", "/api/v1/billable_metrics/{}", "billable_metrics.delete", true, catalog_delete,
     &billable_metrics_resource},
    {"POST", "/api/v1/add_ons", "add_ons.create", true, catalog_create, &add_ons_resource},
    {"GET", "/api/v1/add_ons", "add_ons.list", true, catalog_list, &add_ons_resource},
    {"GET", "/api/v1/add_ons/{}", "add_ons.get", true, catalog_get, &add_ons_resource},
    {"PUT", "/api/v1/add_ons/{}", "add_ons.update", true, catalog_update, &add_ons_resource},
    {"DELETE", "/api/v1/add_ons/{}", "add_ons.delete", true, catalog_delete, &add_ons_resource},
    {"POST", "/api/v1/coupons", "coupons.create", true, catalog_create, &coupons_resource},
    {"GET", "/api/v1/coupons", "coupons.list", true, catalog_list, &coupons_resource},
    {"GET", "/api/v1/coupons/{}", "coupons.get", true, catalog_get, &coupons_resource},
    {"PUT", "/api/v1/coupons/{}", "coupons.update", true, catalog_update, &coupons_resource},
    {"DELETE", "/api/v1/coupons/{}", "coupons.delete", true, catalog_delete, &coupons_resource},
    {"POST", "/api/v1/plans", "plans.create", true, catalog_create, &plans_resource},
    {"GET", "/api/v1/plans", "plans.list", true, catalog_list, &plans_resource},
    {"GET", "/api/v1/plans/{}", "plans.get", true, catalog_get, &plans_resource},
    {"PUT", "/api/v1/plans/{}", "plans.update", true, catalog_update, &plans_resource},
    {"DELETE", "/api/v1/plans/{}", "plans.delete", true, catalog_delete, &plans_resource},
    {"POST", "/api/v1/subscriptions", "subscriptions.create", true, subscriptions_create, NULL},
    {"GET", "/api/v1/subscriptions", "subscriptions.list", true, subscriptions_list, NULL},
    {"GET", "/api/v1/subscriptions/{}", "subscriptions.get", true, subscriptions_get, NULL},
    {"PUT", "/api/v1/subscriptions/{}", "subscriptions.update", true, subscriptions_update, NULL},
    {"DELETE", "/api/v1/subscriptions/{}", "subscriptions.terminate", true, subscriptions_terminate,
     NULL},
    {"POST", "/api/v1/applied_coupons", "applied_coupons.create", true, applied_coupons_create,
     NULL},
    {"GET", "/api/v1/applied_coupons", "applied_coupons.list", true, applied_coupons_list, NULL},
    {"GET", "/api/v1/customers/{}/applied_coupons", "customers.applied_coupons.list", true,
     applied_coupons_list_for_customer, NULL},
    {"DELETE", "/api/v1/customers/{}/applied_coupons/{}", "customers.applied_coupons.terminate",
     true, applied_coupons_terminate, NULL},
    {"POST", "/api/v1/events", "events.create", true, events_create, NULL},
    {"POST", "/api/v1/events/batch", "events.batch", true, events_create_batch, NULL},
    {"GET", "/api/v1/events", "events.list", true, events_list, NULL},
    {"GET", "/api/v1/events/{}", "events.get", true, events_get, NULL},
    {"POST", "/api/v1/events/estimate_fees", "events.estimate_fees", true, events_estimate_fees,
     NULL},
    {"POST", "/api/v1/events/estimate_instant_fees", "events.estimate_instant_fees", true,
     events_estimate_instant_fees, NULL},
    {"POST", "/api/v1/events/batch_estimate_instant_fees", "events.batch_estimate_instant_fees",
     true, events_batch_estimate_instant_fees, NULL},
    {"GET", "/api/v1/customers/{}/current_usage", "customers.current_usage", true, usage_current,
     NULL},
    {"POST", "/api/v1/wallets", "wallets.create", true, wallets_create, NULL},
    {"GET", "/api/v1/wallets", "wallets.list", true, wallets_list, NULL},
    {"GET", "/api/v1/wallets/{}", "wallets.get", true, wallets_get, NULL},
    {"PUT", "/api/v1/wallets/{}", "wallets.update", true, wallets_update, NULL},
    {"DELETE", "/api/v1/wallets/{}", "wallets.terminate", true, wallets_terminate, NULL},
    {"GET", "/api/v1/wallets/{}/wallet_transactions", "wallets.wallet_transactions", true,
     wallet_transactions_list_for_wallet, NULL},
    {"POST", "/api/v1/wallets/{}/metadata", "wallets.metadata.replace", true,
     wallets_metadata_replace, NULL},
    {"PATCH", "/api/v1/wallets/{}/metadata", "wallets.metadata.merge", true, wallets_metadata_merge,
     NULL},
    {"DELETE", "/api/v1/wallets/{}/metadata", "wallets.metadata.clear", true,
     wallets_metadata_clear, NULL},
    {"DELETE", "/api/v1/wallets/{}/metadata/{}", "wallets.metadata.delete_key", true,
     wallets_metadata_delete_key, NULL},
    {"POST", "/api/v1/customers/{}/wallets", "customers.wallets.create", true,
     wallets_create_for_customer, NULL},
    {"GET", "/api/v1/customers/{}/wallets", "customers.wallets.list", true,
     wallets_list_for_customer, NULL},
    {"GET", "/api/v1/customers/{}/wallets/{}", "customers.wallets.get", true,
     wallets_get_for_customer, NULL},
    {"PUT", "/api/v1/customers/{}/wallets/{}", "customers.wallets.update", true,
     wallets_update_for_customer, NULL},
    {"DELETE", "/api/v1/customers/{}/wallets/{}", "customers.wallets.terminate", true,
     wallets_terminate_for_customer, NULL},
    {"POST", "/api/v1/customers/{}/wallets/{}/metadata", "customers.wallets.metadata.replace", true,
     wallets_metadata_replace_for_customer, NULL},
    {"PATCH", "/api/v1/customers/{}/wallets/{}/metadata", "customers.wallets.metadata.merge", true,
     wallets_metadata_merge_for_customer, NULL},
    {"DELETE", "/api/v1/customers/{}/wallets/{}/metadata", "customers.wallets.metadata.clear", true,
     wallets_metadata_clear_for_customer, NULL},
    {"DELETE", "/api/v1/customers/{}/wallets/{}/metadata/{}",
     "customers.wallets.metadata.delete_key", true, wallets_metadata_delete_key_for_customer, NULL},
    {"POST", "/api/v1/wallet_transactions", "wallet_transactions.create", true,
     wallet_transactions_create, NULL},
    {"GET", "/api/v1/wallet_transactions/{}", "wallet_transactions.get", true,
     wallet_transactions_get, NULL},
    {"GET", "/api/v1/wallet_transactions/{}/consumptions", "wallet_transactions.consumptions", true,
     wallet_transactions_consumptions, NULL},
    {"GET", "/api/v1/wallet_transactions/{}/fundings", "wallet_transactions.fundings", true,
     wallet_transactions_fundings, NULL},
    {"GET", "/api/v1/ledger_entries", "ledger_entries.list", true, ledger_entries_list, NULL},
    {"POST", "/api/v1/authorizations", "authorizations.create", true, authorizations_create, NULL},
    {"GET", "/api/v1/authorizations", "authorizations.list", true, authorizations_list, NULL},
    {"GET", "/api/v1/authorizations/{}", "authorizations.get", true, authorizations_get, NULL},
    {"POST", "/api/v1/authorizations/{}/capture", "authorizations.capture", true,
     authorizations_capture, NULL},
    {"POST", "/api/v1/authorizations/{}/void", "authorizations.void", true, authorizations_void,
     NULL},
    {"GET", "/api/v1/webhook_events", "webhook_events.list", true, webhook_events_list, NULL},
    {"GET", "/api/v1/invoices", "invoices.list", true, invoices_list, NULL},
    {"GET", "/api/v1/invoices/{}", "invoices.get", true, invoices_get, NULL},
    {"PUT", "/api/v1/invoices/{}", "invoices.update", true, invoices_update, NULL},
};
const int api_route_count = (int)(sizeof api_routes / sizeof api_routes[0]);

_Static_assert(sizeof api_routes / sizeof api_routes[0] < METRICS_ROUTES_MAX,
               "metrics has a slot per route");

/* Matches one pattern; captured segments point into `path` (lengths in caps_len). */
static bool match_pattern(const char *pattern, const char *path, const char **caps,
                          size_t *caps_len, int *ncaps)
{
    *ncaps = 0;
    while (*pattern && *path) {
        if (pattern[0] == '{' && pattern[1] == '}') {
            size_t seg = strcspn(path, "/");
            if (seg == 0 || *ncaps == API_PATH_PARAMS_MAX)
                return false;
            caps[*ncaps] = path;
            caps_len[(*ncaps)++] = seg;
            path += seg;
            pattern += 2;
            continue;
        }
        if (*pattern != *path)
            return false;
        pattern++;
        path++;
    }
    return *pattern == '\0' && *path == '\0';
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Percent-decodes one captured segment (RFC 3986; '+' is itself in a path, as Rails reads
 * it). Decoding comes after the split, so "%2F" is a '/' inside the segment. False for a '%'
 * without two hex digits, a NUL, or bytes that are not UTF-8; *out is NULL if memory ran out.
 */
static bool decode_segment(const char *s, size_t n, struct arena *a, const char **out)
{
    char *d = arena_alloc(a, n + 1);
    *out = d;
    if (!d)
        return true;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 2 < n ? hex_digit(s[i + 1]) : -1;
            int lo = hi >= 0 ? hex_digit(s[i + 2]) : -1;
            if (lo < 0)
                return false;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (c == '\0')
            return false;
        d[len++] = c;
    }
    d[len] = '\0';
    return utf8_valid(d, len); /* a string handlers compare, store and write into JSON */
}

/* The methods routes use, in the order an Allow header lists them. */
static const char *const allow_order[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};

static unsigned method_bit(const char *method)
{
    static_assert(sizeof allow_order / sizeof allow_order[0] <= 8, "one bit each");
    for (unsigned i = 0; i < sizeof allow_order / sizeof allow_order[0]; i++)
        if (strcmp(allow_order[i], method) == 0)
            return 1u << i;
    assert(!"a route's method is missing from allow_order");
    return 0;
}

static void format_allow(unsigned methods, char allow[ROUTES_ALLOW_MAX])
{
    size_t len = 0;
    allow[0] = '\0';
    for (unsigned i = 0; i < sizeof allow_order / sizeof allow_order[0]; i++)
        if (methods & (1u << i))
            len += (size_t)snprintf(allow + len, ROUTES_ALLOW_MAX - len, "%s%s", len ? ", " : "",
                                    allow_order[i]);
}

enum route_match routes_match(const char *method, const char *path, int *route,
                              const char *params[API_PATH_PARAMS_MAX], struct arena *a,
                              char allow[ROUTES_ALLOW_MAX])
{
    unsigned methods = 0; /* those the path answers */
    /* A trailing slash names the same resource. */
    size_t len = strlen(path);
    char trimmed[ROUTES_PATH_MAX];
    if (len > 1 && path[len - 1] == '/' && len < sizeof trimmed) {
        memcpy(trimmed, path, len - 1);
        trimmed[len - 1] = '\0';
        path = trimmed;
    }
    /* HEAD is GET without the body (RFC 9110 9.3.2): libmicrohttpd leaves the body out */
    const char *as = strcmp(method, "HEAD") == 0 ? "GET" : method;
    for (int i = 0; i < api_route_count; i++) {
        const char *caps[API_PATH_PARAMS_MAX];
        size_t caps_len[API_PATH_PARAMS_MAX];
        int ncaps;
        if (!match_pattern(api_routes[i].pattern, path, caps, caps_len, &ncaps))
            continue;
        if (strcmp(api_routes[i].method, as) != 0) {
            methods |= method_bit(api_routes[i].method);
            continue;
        }
        *route = i;
        for (int c = 0; c < ncaps; c++)
            if (!decode_segment(caps[c], caps_len[c], a, &params[c]))
                return ROUTE_BAD_SEGMENT;
        return ROUTE_FOUND;
    }
    if (methods & method_bit("GET"))
        methods |= method_bit("HEAD");
    format_allow(methods, allow);
    return methods ? ROUTE_WRONG_METHOD : ROUTE_NO_PATH;
}
