/*
 * api/customers: see customers.h.
 *
 * The JSON sub-documents (billing_configuration, shipping_address, metadata) are validated
 * member by member and re-rendered canonically before they are stored, so what is stored is
 * always Tally's own JSON, never a client's bytes. Objects hold only the members sent: the
 * writer lays them over the stored ones (json/customer_json).
 */
#include "api/customers.h"

#include <ctype.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/catalog.h"
#include "api/errors.h"
#include "json/customer_json.h"
#include "json/json_in.h"
#include "core/country.h"
#include "core/currency.h"
#include "sys/entropy.h"

/* ---- rendering ------------------------------------------------------------------------------ */

const char *customers_taxes_text(struct store_conn *conn, const struct customer *c, struct arena *a)
{
    const char *codes_text = c->doc[CUSTOMER_TAX_CODES];
    if (!codes_text)
        return "[]";
    struct json_object *codes = json_tokener_parse(codes_text);
    struct buf b;
    struct jsonw w;
    buf_init(&b);
    jsonw_init(&w, &b);
    catalog_render_tax_array(&w, codes, c->org_id, conn, a);
    json_object_put(codes);
    const char *text = buf_failed(&b) ? NULL : arena_strndup(a, b.data, b.len);
    buf_free(&b);
    return text;
}

/* Lago's CustomerSerializer writes these after the grace period, null when unset, then the
 * provider's members; what is stored holds only the members sent (an audit found the three
 * left out of a customer made without them). */
static const char *const billing_always[] = {"payment_provider", "payment_provider_code",
                                             "document_locale", NULL};

static bool is_billing_always(const char *key)
{
    for (int i = 0; billing_always[i]; i++)
        if (strcmp(key, billing_always[i]) == 0)
            return true;
    return false;
}

static void render_member(struct jsonw *w, const char *key, struct json_object *value)
{
    jsonw_key(w, key);
    jsonw_raw(w, json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* billing_configuration is stored as object members; the grace period (kept apart) and
 * Lago's always-written members join them. */
static void render_billing_configuration(struct jsonw *w, const struct customer *c)
{
    const char *members = c->doc[CUSTOMER_BILLING_CONFIGURATION];
    struct json_object *doc = customer_json_billing_members(members ? members : "");
    jsonw_key(w, "billing_configuration");
    jsonw_object_begin(w);
    jsonw_key(w, "invoice_grace_period");
    if (c->invoice_grace_period == CUSTOMER_INT_NULL)
        jsonw_null(w);
    else
        jsonw_int(w, c->invoice_grace_period);
    if (!doc) { /* out of memory: what is stored, as it is */
        if (members)
            jsonw_raw_members(w, members, strlen(members));
        jsonw_object_end(w);
        return;
    }
    for (int i = 0; billing_always[i]; i++) {
        struct json_object *value = NULL;
        json_object_object_get_ex(doc, billing_always[i], &value);
        render_member(w, billing_always[i], value);
    }
    json_object_object_foreach(doc, key, value)
    {
        if (!is_billing_always(key))
            render_member(w, key, value);
    }
    jsonw_object_end(w);
    json_object_put(doc);
}

void customers_render(struct jsonw *w, const struct customer *c, const char *taxes)
{
    jsonw_object_begin(w);
    jsonw_kv_cstr(w, "lago_id", c->lago_id);
    jsonw_kv_int(w, "sequential_id", c->sequential_id);
    jsonw_kv_cstr(w, "external_id", c->external_id);
    for (int i = 0; i < CUSTOMER_TEXT_COUNT; i++)
        jsonw_kv_cstr(w, customer_text_fields[i].name, c->text[i]);
    /* Organizations have no time zone of their own yet: theirs is UTC. */
    jsonw_kv_cstr(w, "applicable_timezone",
                  c->text[CUSTOMER_TIMEZONE] ? c->text[CUSTOMER_TIMEZONE] : "UTC");
    jsonw_key(w, "net_payment_term");
    if (c->net_payment_term == CUSTOMER_INT_NULL)
        jsonw_null(w);
    else
        jsonw_int(w, c->net_payment_term);
    jsonw_key(w, "invoice_grace_period");
    if (c->invoice_grace_period == CUSTOMER_INT_NULL)
        jsonw_null(w);
    else
        jsonw_int(w, c->invoice_grace_period);
    jsonw_kv_int(w, "applicable_invoice_grace_period",
                 c->invoice_grace_period == CUSTOMER_INT_NULL ? 0 : c->invoice_grace_period);

    render_billing_configuration(w, c);
    jsonw_kv_raw(w, "shipping_address",
                 c->doc[CUSTOMER_SHIPPING_ADDRESS] ? c->doc[CUSTOMER_SHIPPING_ADDRESS]
                                                   : customer_json_empty_shipping_address);
    jsonw_kv_raw(w, "metadata", c->doc[CUSTOMER_METADATA] ? c->doc[CUSTOMER_METADATA] : "[]");
    jsonw_kv_raw(w, "taxes", taxes ? taxes : "[]");
    jsonw_kv_bool(w, "skip_invoice_custom_sections", c->skip_invoice_custom_sections);
    jsonw_key(w, "created_at");
    jsonw_time(w, c->created_at, false);
    jsonw_key(w, "updated_at");
    jsonw_time(w, c->updated_at, false);
    jsonw_object_end(w);
}

static void render_one(struct buf *out, const struct customer *c, const char *taxes)
{
    struct jsonw w;
    buf_reset(out);
    jsonw_init(&w, out);
    jsonw_object_begin(&w);
    jsonw_key(&w, "customer");
    customers_render(&w, c, taxes);
    jsonw_object_end(&w);
}

/* Writer thread, inside the transaction. */
static void render_command(struct command *cmd)
{
    if (api_error_render_command(cmd, "customer_not_found"))
        return;
    cmd->http_status = 200;
    render_one(&cmd->response, &cmd->customer,
               customers_taxes_text(cmd->conn, &cmd->customer, cmd->arena));
}

/* ---- parsing -------------------------------------------------------------------------------- */

/* Parsing state: the first refusal wins and is answered as a 422. */
struct parse {
    struct request *req;
    struct json_in_error err;
    bool failed;
};

static bool refuse(struct parse *p, const char *field, const char *code)
{
    if (!p->failed) {
        p->err.field = field;
        p->err.code = code;
        p->failed = true;
    }
    return false;
}

static bool check(struct parse *p, enum json_in_result r)
{
    if (r == JSON_IN_INVALID && !p->failed) {
        p->failed = true;
        return false;
    }
    return r != JSON_IN_INVALID;
}

/* check() for a member of a nested document (shipping_address, metadata): its error is named
 * under its parent (`shipping_address.city`), never by its bare key, which names another
 * field of the customer (its own `city`) or none. */
static bool check_member(struct parse *p, enum json_in_result r, const char *parent)
{
    if (r == JSON_IN_INVALID && !p->failed && p->err.field) {
        char *name = arena_printf(&p->req->arena, "%s.%s", parent, p->err.field);
        if (name)
            p->err.field = name;
    }
    return check(p, r);
}

static char *upper_copy(struct arena *a, const char *s)
{
    char *u = arena_strndup(a, s, strlen(s));
    for (char *q = u; q && *q; q++)
        *q = (char)toupper((unsigned char)*q);
    return u;
}

static bool parse_text_fields(struct parse *p, struct json_object *obj, struct customer_input *in)
{
    for (int i = 0; i < CUSTOMER_TEXT_COUNT; i++) {
        const struct customer_text_field *f = &customer_text_fields[i];
        enum json_in_result r =
            json_in_string(obj, f->name, f->max_len, &p->req->arena, &in->values.text[i], &p->err);
        if (!check(p, r))
            return false;
        in->has_text[i] = r != JSON_IN_ABSENT;
    }
    /* Lago's Customer normalizes every address field to its presence: a blank one is none (a
     * form clearing it sends ""; an audit found a blank country refused as
     * country_code_invalid, and the other fields kept as "") */
    static const int address[] = {CUSTOMER_ADDRESS_LINE1, CUSTOMER_ADDRESS_LINE2, CUSTOMER_CITY,
                                  CUSTOMER_STATE,         CUSTOMER_ZIPCODE,       CUSTOMER_COUNTRY};
    for (size_t i = 0; i < sizeof address / sizeof address[0]; i++) {
        const char *v = in->values.text[address[i]];
        if (v && json_in_blank(v, strlen(v)))
            in->values.text[address[i]] = NULL;
    }
    /* Lago's UpsertFromApiService takes finalize_zero_amount_invoice null as its default */
    if (in->has_text[CUSTOMER_FINALIZE_ZERO_AMOUNT_INVOICE] &&
        !in->values.text[CUSTOMER_FINALIZE_ZERO_AMOUNT_INVOICE])
        in->values.text[CUSTOMER_FINALIZE_ZERO_AMOUNT_INVOICE] = "inherit";
    /* Lago accepts country and currency codes in any case and stores them upper case. */
    if (in->values.text[CUSTOMER_COUNTRY])
        in->values.text[CUSTOMER_COUNTRY] =
            upper_copy(&p->req->arena, in->values.text[CUSTOMER_COUNTRY]);
    if (in->values.text[CUSTOMER_CURRENCY])
        in->values.text[CUSTOMER_CURRENCY] =
            upper_copy(&p->req->arena, in->values.text[CUSTOMER_CURRENCY]);
    return true;
}

static bool parse_optional_int(struct parse *p, struct json_object *obj, const char *key,
                               int64_t max, int32_t *out, bool *has)
{
    int64_t v;
    enum json_in_result r = json_in_int(obj, key, 0, max, &v, &p->err);
    if (!check(p, r))
        return false;
    if (r == JSON_IN_VALUE)
        *out = (int32_t)v;
    else if (r == JSON_IN_NULL)
        *out = CUSTOMER_INT_NULL;
    if (r != JSON_IN_ABSENT)
        *has = true;
    return true;
}

static const char *json_text(struct parse *p, struct buf *b)
{
    if (buf_failed(b))
        return NULL;
    return arena_strndup(&p->req->arena, b->data ? b->data : "", b->len);
}

/* Lago's Customer::PAYMENT_PROVIDERS. Tally serves none of them yet (docs/API.md): the name is
 * kept and answered, as Lago keeps it. */
static bool is_payment_provider(const char *name)
{
    static const char *const providers[] = {"stripe", "gocardless",  "cashfree",
                                            "adyen",  "flutterwave", "moneyhash"};
    for (size_t i = 0; i < sizeof providers / sizeof providers[0]; i++)
        if (strcmp(name, providers[i]) == 0)
            return true;
    return false;
}

/*
 * Whether a nested document (billing_configuration, shipping_address, metadata, tax_codes) is
 * absent or sent as null, which changes nothing: Rails' permit drops a null where it declares
 * a nested hash or array (ActionController::Parameters#hash_filter), so Lago's upsert never
 * sees it (an audit found Tally clearing the customer's taxes, metadata and grace period).
 */
static bool nested_absent(struct json_object *obj, const char *key)
{
    struct json_object *value;
    return !json_object_object_get_ex(obj, key, &value) || !value;
}

/* billing_configuration: known members re-rendered; invoice_grace_period taken out. */
static bool parse_billing_configuration(struct parse *p, struct json_object *obj,
                                        struct customer_input *in)
{
    static const char *const string_keys[] = {"payment_provider",
                                              "payment_provider_code",
                                              "provider_customer_id",
                                              "document_locale",
                                              "subscription_invoice_issuing_date_anchor",
                                              "subscription_invoice_issuing_date_adjustment",
                                              NULL};
    static const char *const bool_keys[] = {"sync", "sync_with_provider", NULL};
    struct json_object *bc;
    if (nested_absent(obj, "billing_configuration"))
        return true;
    json_object_object_get_ex(obj, "billing_configuration", &bc);
    if (!json_object_is_type(bc, json_type_object))
        return refuse(p, "billing_configuration", "invalid_type");
    in->has_doc[CUSTOMER_BILLING_CONFIGURATION] = true;
    if (!parse_optional_int(p, bc, "invoice_grace_period", CUSTOMER_GRACE_PERIOD_MAX,
                            &in->values.invoice_grace_period, &in->has_invoice_grace_period))
        return false;
    struct buf b;
    struct jsonw w;
    buf_init(&b);
    jsonw_init(&w, &b);
    jsonw_object_begin(&w); /* the braces are dropped below: only members are stored */
    bool provider_known = false;
    for (int i = 0; string_keys[i]; i++) {
        const char *v = NULL;
        enum json_in_result r =
            json_in_string(bc, string_keys[i], 255, &p->req->arena, &v, &p->err);
        if (!check(p, r))
            goto fail;
        /* Lago's UpsertFromApiService: a provider it does not have is null, and the code is
         * taken beside one it has only (payment_provider comes first in string_keys) */
        if (strcmp(string_keys[i], "payment_provider") == 0) {
            provider_known = r == JSON_IN_VALUE && is_payment_provider(v);
            if (!provider_known)
                v = NULL;
        } else if (strcmp(string_keys[i], "payment_provider_code") == 0 && !provider_known) {
            continue;
        }
        if (r != JSON_IN_ABSENT)
            jsonw_kv_cstr(&w, string_keys[i], v);
    }
    for (int i = 0; bool_keys[i]; i++) {
        bool v;
        enum json_in_result r = json_in_bool(bc, bool_keys[i], &v, &p->err);
        if (!check(p, r))
            goto fail;
        if (r == JSON_IN_VALUE)
            jsonw_kv_bool(&w, bool_keys[i], v);
        else if (r == JSON_IN_NULL)
            jsonw_kv_null(&w, bool_keys[i]);
    }
    jsonw_object_end(&w);
    if (!buf_failed(&b)) {
        b.data[b.len - 1] = '\0';
        in->values.doc[CUSTOMER_BILLING_CONFIGURATION] =
            arena_strndup(&p->req->arena, b.data + 1, b.len - 2);
    }
    buf_free(&b);
    return true;
fail:
    buf_free(&b);
    return false;
}

static bool parse_shipping_address(struct parse *p, struct json_object *obj,
                                   struct customer_input *in)
{
    static const char *const keys[] = {"address_line1", "address_line2", "city",
                                       "zipcode",       "state",         "country"};
    struct json_object *sa;
    if (nested_absent(obj, "shipping_address"))
        return true;
    json_object_object_get_ex(obj, "shipping_address", &sa);
    in->has_doc[CUSTOMER_SHIPPING_ADDRESS] = true;
    if (!json_object_is_type(sa, json_type_object))
        return refuse(p, "shipping_address", "invalid_type");
    struct buf b;
    struct jsonw w;
    bool ok = true;
    buf_init(&b);
    jsonw_init(&w, &b);
    jsonw_object_begin(&w);
    for (size_t i = 0; ok && i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = NULL;
        enum json_in_result r = json_in_string(sa, keys[i], 255, &p->req->arena, &v, &p->err);
        ok = check_member(p, r, "shipping_address");
        if (ok && v && json_in_blank(v, strlen(v)))
            v = NULL; /* none, as the customer's own address fields (parse_text_fields) */
        if (ok && v && strcmp(keys[i], "country") == 0) {
            v = upper_copy(&p->req->arena, v);
            if (!country_is_valid(v, strlen(v)))
                ok = refuse(p, "shipping_country", "country_code_invalid"); /* Lago's name */
        }
        if (r != JSON_IN_ABSENT) /* the writer lays what is sent over the stored address */
            jsonw_kv_cstr(&w, keys[i], v);
    }
    jsonw_object_end(&w);
    if (ok)
        in->values.doc[CUSTOMER_SHIPPING_ADDRESS] = json_text(p, &b);
    buf_free(&b);
    return ok;
}

/*
 * One metadata item, as Lago's Metadata::CustomerMetadata validates it: a key present (Rails'
 * presence: blank, only white space, is absent), at most CUSTOMER_METADATA_KEY_MAX, and none of
 * the customer's other items' (`seen`, the keys before it: the list sent is the customer's whole
 * list); a value present, at most CUSTOMER_METADATA_VALUE_MAX. An audit found duplicated keys,
 * which the metadata filter then matched under either value, a blank key and an empty value
 * stored. Named under `metadata.`, as every member of a customer's nested documents is.
 */
static bool parse_metadata_item(struct parse *p, struct json_object *item, const char **seen,
                                size_t index, struct jsonw *w)
{
    const char *key = NULL, *value = NULL;
    bool display = false;
    char id[UUID_TEXT];
    if (!json_object_is_type(item, json_type_object))
        return refuse(p, "metadata", "invalid_type");
    enum json_in_result r =
        json_in_string(item, "key", CUSTOMER_METADATA_KEY_MAX, &p->req->arena, &key, &p->err);
    if (!check_member(p, r, "metadata"))
        return false;
    if (r != JSON_IN_VALUE || json_in_blank(key, strlen(key)))
        return refuse(p, "metadata.key", "value_is_mandatory");
    for (size_t i = 0; i < index; i++)
        if (strcmp(seen[i], key) == 0) /* Lago's uniqueness: exact, case and spaces counted */
            return refuse(p, "metadata.key", "value_already_exist");
    seen[index] = key;
    r = json_in_string(item, "value", CUSTOMER_METADATA_VALUE_MAX, &p->req->arena, &value, &p->err);
    if (!check_member(p, r, "metadata"))
        return false;
    if (r != JSON_IN_VALUE || json_in_blank(value, strlen(value)))
        return refuse(p, "metadata.value", "value_is_mandatory");
    if (!check_member(p, json_in_bool(item, "display_in_invoice", &display, &p->err), "metadata"))
        return false;
    if (!entropy_uuid(id))
        return refuse(p, "metadata", "out_of_entropy");
    jsonw_object_begin(w);
    jsonw_kv_cstr(w, "lago_id", id);
    jsonw_kv_cstr(w, "key", key);
    jsonw_kv_cstr(w, "value", value);
    jsonw_kv_bool(w, "display_in_invoice", display);
    jsonw_object_end(w);
    return true;
}

static bool parse_metadata(struct parse *p, struct json_object *obj, struct customer_input *in)
{
    struct json_object *md;
    if (nested_absent(obj, "metadata"))
        return true;
    json_object_object_get_ex(obj, "metadata", &md);
    in->has_doc[CUSTOMER_METADATA] = true;
    if (!json_object_is_type(md, json_type_array))
        return refuse(p, "metadata", "invalid_type");
    size_t n = json_object_array_length(md);
    if (n > CUSTOMER_METADATA_MAX) /* Lago's code: UpsertFromApiService#valid_metadata_count? */
        return refuse(p, "metadata", "invalid_count");
    const char *keys[CUSTOMER_METADATA_MAX];
    struct buf b;
    struct jsonw w;
    bool ok = true;
    buf_init(&b);
    jsonw_init(&w, &b);
    jsonw_array_begin(&w);
    for (size_t i = 0; ok && i < n; i++)
        ok = parse_metadata_item(p, json_object_array_get_idx(md, i), keys, i, &w);
    jsonw_array_end(&w);
    if (ok)
        in->values.doc[CUSTOMER_METADATA] = json_text(p, &b);
    buf_free(&b);
    return ok;
}

/* tax_codes: the codes, each once, in the order sent; an empty list names none, null changes
 * nothing (nested_absent). That they exist is the writer's to check (404 tax_not_found). */
static bool parse_tax_codes(struct parse *p, struct json_object *obj, struct customer_input *in)
{
    if (nested_absent(obj, "tax_codes"))
        return true;
    const char **codes = NULL;
    size_t n = 0;
    enum json_in_result r = json_in_string_array(
        obj, "tax_codes", CATALOG_REFS_MAX, CATALOG_CODE_MAX, &p->req->arena, &codes, &n, &p->err);
    if (!check(p, r))
        return false;
    if (r == JSON_IN_ABSENT)
        return true;
    in->has_doc[CUSTOMER_TAX_CODES] = true;
    in->values.doc[CUSTOMER_TAX_CODES] = NULL;
    if (n == 0)
        return true;
    n = catalog_distinct_codes(codes, n); /* the limit counts taxes, not namings */
    _Static_assert(CUSTOMER_TAXES_MAX == CATALOG_TAXES_MAX, "one limit: the fee's taxes");
    if (n > CUSTOMER_TAXES_MAX) {
        if (!p->failed)
            p->err.message = catalog_taxes_message;
        return refuse(p, "tax_codes", "too_many_items");
    }
    struct buf b;
    struct jsonw w;
    buf_init(&b);
    jsonw_init(&w, &b);
    jsonw_array_begin(&w);
    for (size_t i = 0; i < n; i++)
        jsonw_cstr(&w, codes[i]);
    jsonw_array_end(&w);
    in->values.doc[CUSTOMER_TAX_CODES] = json_text(p, &b);
    buf_free(&b);
    return in->values.doc[CUSTOMER_TAX_CODES] || refuse(p, "tax_codes", "out_of_memory");
}

/*
 * skip_invoice_custom_sections, and the sections a customer's invoices show, as Lago's
 * Customers::ManageInvoiceCustomSectionsService reads them: a skip of null changes nothing;
 * sections named (invoice_custom_section_codes, even none) turn skipping off, and skipping
 * with sections named is refused. Tally has no invoice custom sections, so a code names
 * nothing, as Lago's unknown codes do; only the flag is kept.
 */
static bool parse_invoice_custom_sections(struct parse *p, struct json_object *obj,
                                          struct customer_input *in)
{
    bool skip = false;
    enum json_in_result r = json_in_bool(obj, "skip_invoice_custom_sections", &skip, &p->err);
    if (!check(p, r))
        return false;
    const char **codes = NULL;
    size_t n = 0;
    enum json_in_result named =
        json_in_string_array(obj, "invoice_custom_section_codes", CATALOG_REFS_MAX,
                             CATALOG_CODE_MAX, &p->req->arena, &codes, &n, &p->err);
    if (!check(p, named))
        return false;
    if (named == JSON_IN_VALUE) {
        if (r == JSON_IN_VALUE && skip)
            return refuse(p, "invoice_custom_sections",
                          "skip_sections_and_selected_ids_sent_together");
        in->values.skip_invoice_custom_sections = false;
        in->has_skip_invoice_custom_sections = true;
    } else if (r == JSON_IN_VALUE) {
        in->values.skip_invoice_custom_sections = skip;
        in->has_skip_invoice_custom_sections = true;
    }
    return true;
}

static bool parse_customer(struct parse *p, struct json_object *obj, struct customer_input *in)
{
    customer_init_defaults(&in->values);
    enum json_in_result r = json_in_string(obj, "external_id", CUSTOMER_EXTERNAL_ID_MAX,
                                           &p->req->arena, &in->values.external_id, &p->err);
    if (!check(p, r))
        return false;
    if (r != JSON_IN_VALUE || json_in_blank(in->values.external_id, strlen(in->values.external_id)))
        return refuse(p, "external_id", "value_is_mandatory");
    if (!parse_text_fields(p, obj, in) ||
        !parse_optional_int(p, obj, "net_payment_term", CUSTOMER_NET_PAYMENT_TERM_MAX,
                            &in->values.net_payment_term, &in->has_net_payment_term) ||
        !parse_optional_int(p, obj, "invoice_grace_period", CUSTOMER_GRACE_PERIOD_MAX,
                            &in->values.invoice_grace_period, &in->has_invoice_grace_period) ||
        !parse_billing_configuration(p, obj, in) || !parse_shipping_address(p, obj, in) ||
        !parse_metadata(p, obj, in) || !parse_tax_codes(p, obj, in) ||
        !parse_invoice_custom_sections(p, obj, in))
        return false;
    const char *field, *code;
    if (!customer_input_validate(in, &field, &code))
        return refuse(p, field, code);
    const char *tz = in->values.text[CUSTOMER_TIMEZONE];
    if (in->has_text[CUSTOMER_TIMEZONE] && tz &&
        (!tzdb_name_is_zone(tz, strlen(tz)) || !tzdb_get(p->req->api->tzdb, tz, strlen(tz))))
        return refuse(p, "timezone", "invalid_timezone");
    if (!entropy_uuid(in->values.lago_id))
        return refuse(p, "lago_id", "out_of_entropy");
    return true;
}

/* ---- handlers ------------------------------------------------------------------------------- */

void customers_upsert(struct request *req)
{
    struct json_object *doc;
    struct json_object *obj = api_body_object(req, "customer", &doc);
    struct command *cmd =
        obj ? api_new_command(req, COMMAND_CUSTOMER_UPSERT, render_command) : NULL;
    struct parse p = {.req = req};
    if (cmd && !parse_customer(&p, obj, &cmd->as.customer_upsert.input))
        api_error_validation_message(req, p.err.field, p.err.code, p.err.message);
    else if (cmd)
        api_submit(req, cmd);
    json_object_put(doc);
}

void customers_get(struct request *req)
{
    struct customer c;
    struct store_reader *r = api_reader_acquire(req->api);
    enum store_status s =
        store_customer_get(store_reader_conn(r), req->org_id, req->params[0], &c, &req->arena);
    const char *taxes =
        s == STORE_OK ? customers_taxes_text(store_reader_conn(r), &c, &req->arena) : NULL;
    api_reader_release(req->api, r);
    if (s == STORE_NOT_FOUND)
        api_error_not_found(req, "customer_not_found");
    else if (s != STORE_OK || !taxes)
        api_error_store_read(req);
    else
        render_one(api_respond(req, 200), &c, taxes);
}

static bool is_ruby_strip_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Lago's search_term as a LIKE pattern: stripped of white space around it (BaseQuery's
 * String#strip), anywhere in the text, its own % _ and \ literal. NULL if nothing is left
 * (no filter), or in *failed if the arena is out of memory. */
static const char *search_pattern(struct request *req, const char *term, bool *failed)
{
    size_t len = strlen(term);
    while (len > 0 && is_ruby_strip_space(term[len - 1]))
        len--;
    while (len > 0 && is_ruby_strip_space(*term)) {
        term++;
        len--;
    }
    *failed = false;
    if (len == 0)
        return NULL;
    char *p = arena_alloc(&req->arena, 2 * len + 3), *out = p;
    *failed = !p;
    if (!p)
        return NULL;
    *out++ = '%';
    for (size_t i = 0; i < len; i++) {
        if (term[i] == '%' || term[i] == '_' || term[i] == '\\')
            *out++ = '\\';
        *out++ = term[i];
    }
    *out++ = '%';
    *out = '\0';
    return p;
}

/* Lago's has_tax_identification_number and has_customer_type: "true" or "false" exactly, as
 * its filter contract takes them. False after answering 422 for another value. */
static bool query_presence(struct request *req, const char *name, enum store_presence *out)
{
    const char *v = api_query(req, name);
    *out = STORE_PRESENCE_ANY;
    if (!v)
        return true;
    if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0) {
        *out = v[0] == 't' ? STORE_PRESENCE_SOME : STORE_PRESENCE_NONE;
        return true;
    }
    api_error_validation(req, name, "value_is_invalid");
    return false;
}

/*
 * The values account_type[], countries[] and currencies[] take, as Lago's
 * Queries::CustomersQueryFiltersContract checks them (`array(:string, included_in?: ...)`),
 * with what Tally takes on a customer: its account types, its ISO 3166 countries and its
 * currencies (core/), in any case as the customer's fields are read. An audit found a value
 * Lago refuses answered with an empty list: a typo read as "no such customers".
 */
struct list_values {
    const char *field;
    bool (*takes)(const char *value, size_t len);
    /* writes the values taken, ", " between them, as dry-validation's message lists them */
    void (*list)(struct buf *b);
};

/* exactly, as the store compares the column with it */
static bool takes_account_type(const char *value, size_t len)
{
    (void)len;
    return strcmp(value, "customer") == 0 || strcmp(value, "partner") == 0;
}

/* A code in any case, upper case for `valid` (at most CODE_MAX bytes: a country's or a
 * currency's code is shorter). */
#define CODE_MAX 8
static bool takes_code(const char *value, size_t len, bool (*valid)(const char *, size_t))
{
    char upper[CODE_MAX + 1];
    if (len > CODE_MAX)
        return false;
    for (size_t k = 0; k <= len; k++)
        upper[k] = (char)toupper((unsigned char)value[k]);
    return valid(upper, len);
}

static bool takes_country(const char *value, size_t len)
{
    return takes_code(value, len, country_is_valid);
}

static bool takes_currency(const char *value, size_t len)
{
    return takes_code(value, len, customer_currency_is_valid);
}

static void list_account_types(struct buf *b)
{
    buf_append_str(b, "customer, partner"); /* Lago's Customer::ACCOUNT_TYPES, in its order */
}

static void list_countries(struct buf *b)
{
    for (size_t i = 0; i < country_code_count; i++) {
        if (i > 0)
            buf_append_str(b, ", ");
        buf_append_str(b, country_codes[i]);
    }
}

static void list_currencies(struct buf *b)
{
    bool first = true;
    for (size_t i = 0; i < currency_table_len; i++) {
        if (!customer_currency_is_valid(currency_table[i].code, 3))
            continue;
        if (!first)
            buf_append_str(b, ", ");
        buf_append_str(b, currency_table[i].code);
        first = false;
    }
}

static const struct list_values account_type_values = {"account_type", takes_account_type,
                                                       list_account_types},
                                country_values = {"countries", takes_country, list_countries},
                                currency_values = {"currencies", takes_currency, list_currencies};

/* Whether every value of a list filter (api_query_list's JSON, NULL: none) is one `v` takes;
 * false after answering Lago's 422 `{field: {"i": ["must be one of: ..."]}}` for the first
 * that is not (a blank one is not: Lago's contract refuses it). */
static bool check_list_values(struct request *req, const struct list_values *v, const char *json)
{
    struct json_object *values = json ? json_tokener_parse(json) : NULL;
    size_t n = json_object_is_type(values, json_type_array) ? json_object_array_length(values) : 0;
    size_t bad = n;
    for (size_t i = 0; i < n && bad == n; i++) {
        const char *value = json_object_get_string(json_object_array_get_idx(values, i));
        if (!value || !v->takes(value, strlen(value)))
            bad = i;
    }
    json_object_put(values);
    if (bad == n)
        return true;
    struct buf b;
    buf_init(&b);
    buf_append_str(&b, "must be one of: ");
    v->list(&b); /* the buffer keeps a NUL after its bytes */
    if (buf_failed(&b))
        api_error(req, 500, "out_of_memory", "the request could not be served");
    else
        api_error_validation_item(req, v->field, bad, b.data);
    buf_free(&b);
    return false;
}

/* Lago's filters on the list. False after answering the error. */
static bool read_list_filter(struct request *req, struct store_customer_filter *f)
{
    /* Tally has no billing entities: refused rather than answered unfiltered */
    static const char *const unserved[] = {"billing_entity_codes"};
    const char *term = api_query(req, "search_term");
    f->external_id = api_query_filter(req, "external_id");
    f->customer_type = api_query(req, "customer_type");
    if (!api_refuse_unserved(req, unserved, sizeof unserved / sizeof unserved[0]) ||
        !api_query_list(req, "account_type", &f->account_types_json) ||
        !check_list_values(req, &account_type_values, f->account_types_json) ||
        !api_query_list(req, "countries", &f->countries_json) ||
        !check_list_values(req, &country_values, f->countries_json) ||
        !api_query_list(req, "currencies", &f->currencies_json) ||
        !check_list_values(req, &currency_values, f->currencies_json) ||
        !api_query_list(req, "states", &f->states_json) ||
        !api_query_list(req, "zipcodes", &f->zipcodes_json) ||
        !query_presence(req, "has_tax_identification_number", &f->has_tax_identification_number) ||
        !query_presence(req, "has_customer_type", &f->has_customer_type) ||
        !api_query_metadata(req, false, &f->metadata_json))
        return false;
    /* a type, and none at all: Lago's contract refuses it rather than answer nothing */
    if (f->customer_type && ((strcmp(f->customer_type, "company") != 0 &&
                              strcmp(f->customer_type, "individual") != 0) ||
                             f->has_customer_type == STORE_PRESENCE_NONE)) {
        api_error_validation(req, "customer_type", "value_is_invalid");
        return false;
    }
    bool failed = false;
    f->search_pattern = term ? search_pattern(req, term, &failed) : NULL;
    if (failed) {
        api_error(req, 500, "out_of_memory", "the request could not be served");
        return false;
    }
    return true;
}

void customers_list(struct request *req)
{
    int64_t page, per_page, total;
    struct store_customer_filter filter = {0};
    if (!api_pagination(req, &page, &per_page) || !read_list_filter(req, &filter))
        return;
    struct customer *items;
    size_t count;
    struct store_reader *r = api_reader_acquire(req->api);
    enum store_status s =
        store_customer_list(store_reader_conn(r), req->org_id, &filter, (page - 1) * per_page,
                            per_page, &items, &count, &total, &req->arena);
    const char **taxes =
        s == STORE_OK ? arena_alloc(&req->arena, sizeof *taxes * (count + 1)) : NULL;
    for (size_t i = 0; taxes && i < count; i++)
        if (!(taxes[i] = customers_taxes_text(store_reader_conn(r), &items[i], &req->arena)))
            taxes = NULL;
    api_reader_release(req->api, r);
    if (s != STORE_OK || !taxes) {
        api_error_store_read(req);
        return;
    }
    struct jsonw w;
    jsonw_init(&w, api_respond(req, 200));
    jsonw_object_begin(&w);
    jsonw_key(&w, "customers");
    jsonw_array_begin(&w);
    for (size_t i = 0; i < count; i++)
        customers_render(&w, &items[i], taxes[i]);
    jsonw_array_end(&w);
    api_write_meta(&w, page, per_page, total);
    jsonw_object_end(&w);
}

void customers_delete(struct request *req)
{
    struct command *cmd = api_new_command(req, COMMAND_CUSTOMER_DELETE, render_command);
    if (!cmd)
        return;
    cmd->as.customer_delete.external_id = req->params[0];
    api_submit(req, cmd);
}
