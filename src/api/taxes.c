/* api/taxes: see taxes.h. */
#include "api/taxes.h"

#include <json-c/json.h>
#include <string.h>

#include "core/money.h"
#include "store/store.h"

static bool parse_tax(struct request *req, struct json_object *obj, struct catalog_definition *out,
                      struct json_in_error *err)
{
    const char *name = NULL, *description = NULL;
    money_t rate;
    bool applied = false;
    enum json_in_result r;
    if (!json_in_required_string(obj, "code", CATALOG_CODE_MAX, &req->arena, &out->code, err) ||
        !json_in_required_string(obj, "name", CATALOG_NAME_MAX, &req->arena, &name, err))
        return false;
    if ((r = json_in_decimal(obj, "rate", &rate, err)) == JSON_IN_INVALID)
        return false;
    if (r != JSON_IN_VALUE)
        return json_in_refuse(err, "rate", "value_is_mandatory");
    if (money_sign(rate) < 0 || money_cmp(rate, money_from_int(TAX_RATE_MAX)) > 0)
        return json_in_refuse(err, "rate", "value_is_out_of_range");
    if (json_in_string(obj, "description", CATALOG_DESCRIPTION_MAX, &req->arena, &description,
                       err) == JSON_IN_INVALID ||
        json_in_bool(obj, "applied_to_organization", &applied, err) == JSON_IN_INVALID)
        return false;

    char rate_text[MONEY_TEXT_MAX];
    money_format(money_normalize(rate), rate_text, sizeof rate_text);
    struct buf b;
    struct jsonw w;
    buf_init(&b);
    jsonw_init(&w, &b);
    jsonw_object_begin(&w);
    jsonw_kv_cstr(&w, "name", name);
    jsonw_key(&w, "rate"); /* a JSON number, as Lago answers it, written from exact text */
    jsonw_raw(&w, rate_text);
    jsonw_kv_cstr(&w, "description", description);
    jsonw_kv_bool(&w, "applied_to_organization", applied);
    jsonw_object_end(&w);
    return catalog_finish_body(req, true, &b, out, err);
}

/*
 * Lago's V1::TaxSerializer counts what names the tax: add-ons, customers (Tax#customers_count:
 * those naming it, and when it is applied to the organization, as Lago's billing entity taxes,
 * those naming none), plans, charges and commitments. A deleted tax named nothing by then:
 * Lago's destroy takes its links away before the serializer counts. One answer or a whole
 * page: the store counts all the codes in one visit.
 */
static bool count_taxes(struct jsonw *w, struct store_conn *conn, int64_t org_id,
                        const char *const *codes, const char *const *bodies, size_t n,
                        struct arena *a)
{
    struct store_tax_usage *u = arena_alloc(a, sizeof *u * n);
    if (!u)
        return false;
    memset(u, 0, sizeof *u * n);
    if (codes[0] && store_tax_usage(conn, org_id, codes, n, u) != STORE_OK)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool applied = false;
        if (codes[i]) {
            struct json_object *doc = catalog_parse_body(bodies[i]), *v;
            applied = doc && json_object_object_get_ex(doc, "applied_to_organization", &v) &&
                      json_object_get_boolean(v);
            json_object_put(doc);
        }
        jsonw_kv_int(&w[i], "add_ons_count", u[i].add_ons);
        jsonw_kv_int(&w[i], "customers_count",
                     u[i].customers + (applied ? u[i].untaxed_customers : 0));
        jsonw_kv_int(&w[i], "plans_count", u[i].plans);
        jsonw_kv_int(&w[i], "charges_count", u[i].charges);
        jsonw_kv_int(&w[i], "commitments_count", u[i].commitments);
    }
    return true;
}

const struct catalog_resource taxes_resource = {
    .kind = CATALOG_TAX,
    .parse = parse_tax,
    .render = catalog_render_plain, /* unused: count answers the common shape */
    .listed_by_name = true,         /* Lago's TaxesQuery: DEFAULT_ORDER "name" */
    .count = count_taxes,
};
