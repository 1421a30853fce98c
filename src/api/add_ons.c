/* api/add_ons: see add_ons.h. */
#include "api/add_ons.h"

#include <ctype.h>
#include <json-c/json.h>
#include <string.h>

#include "core/currency.h"

bool add_ons_parse_price(struct request *req, struct json_object *obj, const char *cents_key,
                         const char *currency_key, bool required, struct jsonw *w,
                         struct json_in_error *err)
{
    int64_t cents = 0;
    const char *currency = NULL;
    enum json_in_result r = json_in_int(obj, cents_key, 0, INT64_MAX - 1, &cents, err);
    if (r == JSON_IN_INVALID)
        return false;
    if (required && r != JSON_IN_VALUE)
        return json_in_refuse(err, cents_key, "value_is_mandatory");
    bool has_amount = r == JSON_IN_VALUE;
    r = json_in_string(obj, currency_key, 3, &req->arena, &currency, err);
    if (r == JSON_IN_INVALID)
        return false;
    if ((required || has_amount) && (r != JSON_IN_VALUE || !*currency))
        return json_in_refuse(err, currency_key, "value_is_mandatory");
    char code[4] = "";
    if (currency) {
        size_t n = strlen(currency);
        for (size_t i = 0; i < n && i < 3; i++)
            code[i] = (char)toupper((unsigned char)currency[i]);
        const struct currency *cur = currency_find(code, n);
        if (!cur || cur->exponent < 0)
            return json_in_refuse(err, currency_key, "value_is_invalid");
    }
    jsonw_key(w, cents_key);
    if (has_amount)
        jsonw_int(w, cents);
    else
        jsonw_null(w);
    jsonw_kv_cstr(w, currency_key, currency ? code : NULL);
    return true;
}

static bool parse_add_on(struct request *req, struct json_object *obj,
                         struct catalog_definition *out, struct json_in_error *err)
{
    const char *name = NULL, *display = NULL, *description = NULL;
    if (!json_in_required_string(obj, "code", CATALOG_CODE_MAX, &req->arena, &out->code, err) ||
        !json_in_required_string(obj, "name", CATALOG_NAME_MAX, &req->arena, &name, err) ||
        json_in_string(obj, "invoice_display_name", CATALOG_NAME_MAX, &req->arena, &display, err) ==
            JSON_IN_INVALID ||
        json_in_string(obj, "description", CATALOG_DESCRIPTION_MAX, &req->arena, &description,
                       err) == JSON_IN_INVALID)
        return false;
    struct buf b;
    struct jsonw w;
    bool ok;
    buf_init(&b);
    jsonw_init(&w, &b);
    jsonw_object_begin(&w);
    jsonw_kv_cstr(&w, "name", name);
    jsonw_kv_cstr(&w, "invoice_display_name", display);
    jsonw_kv_cstr(&w, "description", description);
    ok = add_ons_parse_price(req, obj, "amount_cents", "amount_currency", true, &w, err) &&
         catalog_parse_tax_codes(req, obj, &w, out, err);
    jsonw_object_end(&w);
    return catalog_finish_body(req, ok, &b, out, err);
}

static void render_add_on(struct jsonw *w, const struct catalog_item *item, struct store_conn *conn,
                          struct arena *a, tally_time now)
{
    (void)now;
    struct json_object *body = catalog_parse_body(item->body);
    catalog_open_item(w, item);
    catalog_render_taxes(w, body, item->org_id, conn, a);
    jsonw_object_end(w);
    json_object_put(body);
}

const struct catalog_resource add_ons_resource = {
    .kind = CATALOG_ADD_ON,
    .parse = parse_add_on,
    .render = render_add_on,
};
