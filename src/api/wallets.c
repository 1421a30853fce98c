/* api/wallets: see wallets.h. */
#include "api/wallets.h"

#include <ctype.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/errors.h"
#include "api/wallet_transactions.h"
#include "core/catalog.h"
#include "core/currency.h"
#include "core/customer.h"
#include "core/wallet.h"
#include "json/json_build.h"
#include "json/json_in.h"
#include "sys/entropy.h"
#include "util/jsonw.h"

#define WALLET_METADATA_KEYS_MAX 50 /* Lago's (Metadata::ItemMetadata) */
#define METADATA_KEYS_MESSAGE                                                                      \
    "metadata holds at most " API_LIMIT_TEXT(WALLET_METADATA_KEYS_MAX) " keys"
#define WALLET_METADATA_KEY_MAX 100   /* Lago's */
#define WALLET_METADATA_VALUE_MAX 255 /* Lago's */

int32_t wallets_currency_exponent(const char *currency)
{
    const struct currency *c = currency_find(currency, strlen(currency));
    return c && c->exponent >= 0 ? c->exponent : 2;
}

/* ---- rendering ------------------------------------------------------------------------------- */

static void write_decimal(struct jsonw *w, money_t v)
{
    char text[MONEY_TEXT_MAX];
    money_format_fraction(money_normalize(v), 1, text, sizeof text);
    jsonw_cstr(w, text);
}

void wallets_write_credits(struct jsonw *w, int64_t cents, money_t rate_amount,
                           const char *currency)
{
    money_t credits;
    if (wallet_cents_to_credits(cents, rate_amount, wallets_currency_exponent(currency),
                                &credits) != MONEY_OK)
        credits = money_from_int(0); /* a stored rate is > 0: cannot happen */
    write_decimal(w, credits);
}

void wallets_write_amount(struct jsonw *w, int64_t cents, const char *currency)
{
    money_t amount;
    if (money_from_minor_units(cents, wallets_currency_exponent(currency), &amount) != MONEY_OK)
        amount = money_from_int(0);
    write_decimal(w, amount);
}

static void time_or_null(struct jsonw *w, const char *key, bool has, tally_time t)
{
    jsonw_key(w, key);
    has ? jsonw_time(w, t, false) : jsonw_null(w);
}

/* A member of the stored terms, copied as it is, or `fallback` JSON. */
static void term(struct jsonw *w, struct json_object *terms, const char *key, const char *fallback)
{
    struct json_object *v;
    jsonw_key(w, key);
    if (terms && json_object_object_get_ex(terms, key, &v) && v)
        jsonw_raw(w, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    else
        jsonw_raw(w, fallback);
}

/* Whether a stored rule is past its expiration_at at `now`: no longer active (Lago's `active`
 * scope), neither listed nor updated. */
static bool rule_ended(struct json_object *rule, tally_time now)
{
    struct json_object *v;
    tally_time expires;
    return json_object_object_get_ex(rule, "expiration_at", &v) &&
           json_object_is_type(v, json_type_string) &&
           timestamp_parse_iso8601(json_object_get_string(v), (size_t)json_object_get_string_len(v),
                                   &expires) &&
           expires <= now;
}

/*
 * The rules as stored, but an interval rule's threshold_credits, which Lago's schema requires:
 * Lago stores its column's default, 0, and answers "0.0" (an audit found null). A threshold
 * rule's interval stays null, as Lago's: its CreateService stores the interval sent, none.
 * A rule past its expiration_at at `now` is left out: Lago lists the active ones only, and
 * its clock terminates the expired (an audit found a dead rule still read `active`). A rule
 * stored before rules kept a purchase_order_number answers null.
 * Changes the parsed terms, which the caller frees. A threshold that cannot be set for want of
 * memory fails the answer rather than show null.
 */
static void write_rules(struct jsonw *w, struct json_object *terms, tally_time now)
{
    struct json_object *rules, *v;
    jsonw_key(w, "recurring_transaction_rules");
    jsonw_array_begin(w);
    if (terms && json_object_object_get_ex(terms, "recurring_transaction_rules", &rules) &&
        json_object_is_type(rules, json_type_array))
        for (size_t i = 0; i < json_object_array_length(rules); i++) {
            struct json_object *rule = json_object_array_get_idx(rules, i);
            if (!json_object_is_type(rule, json_type_object) || rule_ended(rule, now))
                continue;
            struct json_build b;
            json_build_init(&b, rule);
            if (!json_object_object_get_ex(rule, "threshold_credits", &v) || !v)
                json_build_string(&b, "threshold_credits", "0.0");
            if (!json_object_object_get_ex(rule, "purchase_order_number", NULL))
                json_build_null(&b, "purchase_order_number"); /* a rule stored before had none */
            if (json_build_failed(&b))
                buf_fail(w->out);
            jsonw_raw(w, json_object_to_json_string_ext(rule, JSON_C_TO_STRING_PLAIN));
        }
    jsonw_array_end(w);
}

/*
 * applies_to as Lago answers it: its fee types and the codes of its billable metrics as they
 * are now (the writer keeps them following renames and deletions). The stored mark of a wallet
 * whose metrics were all deleted (limited_to_billable_metrics) is not Lago's, and not shown.
 */
static void write_applies_to(struct jsonw *w, struct json_object *terms)
{
    struct json_object *applies = NULL, *v;
    jsonw_key(w, "applies_to");
    jsonw_object_begin(w);
    if (terms)
        json_object_object_get_ex(terms, "applies_to", &applies);
    static const char *const keys[] = {"fee_types", "billable_metric_codes"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        jsonw_key(w, keys[i]);
        if (json_object_object_get_ex(applies, keys[i], &v) &&
            json_object_is_type(v, json_type_array))
            jsonw_raw(w, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
        else
            jsonw_raw(w, "[]");
    }
    jsonw_object_end(w);
}

static void render_wallet(struct jsonw *w, const struct store_wallet *row, tally_time now)
{
    struct json_object *terms = json_tokener_parse(row->terms_json);
    const char *cur = row->currency;
    jsonw_object_begin(w);
    jsonw_kv_cstr(w, "lago_id", row->lago_id);
    jsonw_kv_cstr(w, "lago_customer_id", row->customer_lago_id);
    jsonw_kv_cstr(w, "external_customer_id", row->external_customer_id);
    jsonw_kv_null(w, "billing_entity_code");
    jsonw_kv_cstr(w, "status", row->has_terminated_at ? "terminated" : "active");
    jsonw_kv_cstr(w, "currency", cur);
    jsonw_kv_cstr(w, "name", row->name);
    jsonw_kv_cstr(w, "code", row->code);
    term(w, terms, "purchase_order_number", "null");
    jsonw_key(w, "rate_amount");
    write_decimal(w, row->rate_amount);
    /* Usage is debited as it happens; the ongoing balance also takes out what open holds
     * reserve, which is the wallet's ongoing usage. */
    int64_t ongoing = row->balance_cents - row->held_cents;
    jsonw_key(w, "credits_balance");
    wallets_write_credits(w, row->balance_cents, row->rate_amount, cur);
    jsonw_key(w, "credits_ongoing_balance");
    wallets_write_credits(w, ongoing, row->rate_amount, cur);
    jsonw_key(w, "credits_ongoing_usage_balance");
    wallets_write_credits(w, row->held_cents, row->rate_amount, cur);
    jsonw_kv_int(w, "balance_cents", row->balance_cents);
    jsonw_kv_int(w, "ongoing_balance_cents", ongoing);
    jsonw_kv_int(w, "ongoing_usage_balance_cents", row->held_cents);
    jsonw_key(w, "consumed_credits");
    wallets_write_credits(w, row->consumed_cents, row->rate_amount, cur);
    jsonw_kv_int(w, "consumed_amount_cents", row->consumed_cents);
    time_or_null(w, "created_at", true, row->created_at);
    time_or_null(w, "expiration_at", row->has_expiration_at, row->expiration_at);
    time_or_null(w, "last_balance_sync_at", true, row->updated_at);
    time_or_null(w, "last_consumed_credit_at", row->has_last_consumed_at, row->last_consumed_at);
    time_or_null(w, "terminated_at", row->has_terminated_at, row->terminated_at);
    term(w, terms, "invoice_requires_successful_payment", "false");
    term(w, terms, "paid_top_up_min_amount_cents", "null");
    term(w, terms, "paid_top_up_max_amount_cents", "null");
    jsonw_kv_int(w, "priority", row->priority);
    /* Lago lists a wallet's active rules only, and its termination terminates them: a
     * terminated wallet lists none (an audit found its rule still read `active`) */
    if (row->has_terminated_at)
        jsonw_kv_raw(w, "recurring_transaction_rules", "[]");
    else
        write_rules(w, terms, now);
    write_applies_to(w, terms);
    jsonw_kv_raw(w, "applied_invoice_custom_sections", "[]");
    api_write_no_payment_method(w);
    term(w, terms, "metadata", "{}");
    /* Tally's additions */
    jsonw_kv_cstr(w, "limit", wallet_limit_name(row->limit));
    jsonw_key(w, "overdraft_credits");
    wallets_write_credits(w, row->overdraft_limit_cents, row->rate_amount, cur);
    jsonw_key(w, "overdrawn_credits");
    wallets_write_credits(w, row->overdrawn_cents, row->rate_amount, cur);
    jsonw_kv_int(w, "overdrawn_cents", row->overdrawn_cents);
    jsonw_object_end(w);
    json_object_put(terms);
}

static void render_one(struct buf *out, const struct store_wallet *row, tally_time now)
{
    struct jsonw w;
    buf_reset(out);
    jsonw_init(&w, out);
    jsonw_object_begin(&w);
    jsonw_key(&w, "wallet");
    render_wallet(&w, row, now);
    jsonw_object_end(&w);
}

static void render_command(struct command *cmd)
{
    struct store_wallet row;
    if (api_error_render_command(cmd, "wallet_not_found"))
        return;
    if (store_wallet_get(cmd->conn, cmd->org_id, cmd->wallet_lago_id, &row, cmd->arena) !=
        STORE_OK) {
        cmd->result = COMMAND_STORE_FAILED;
        return;
    }
    cmd->http_status = 200;
    render_one(&cmd->response, &row, cmd->now);
}

/* ---- parsing -------------------------------------------------------------------------------- */

/* Lago's code from a name: lower case, runs of other characters as one "_". */
static const char *code_from_name(struct arena *a, const char *name)
{
    if (!name || !*name)
        return "default";
    size_t len = strlen(name), n = 0;
    char *code = arena_alloc(a, len + 1);
    if (!code)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (isalnum(c))
            code[n++] = (char)tolower(c);
        else if (n > 0 && code[n - 1] != '_')
            code[n++] = '_';
    }
    while (n > 0 && code[n - 1] == '_')
        n--;
    code[n] = '\0';
    return n ? code : "default";
}

/* A message on the request's arena (NULL if there is no room). */
static const char *message_of(struct request *req, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
static const char *message_of(struct request *req, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    const char *text = arena_vprintf(&req->arena, format, ap);
    va_end(ap);
    return text;
}

/* A string array with each value once, in the order first sent; NULL without memory. */
static struct json_object *unique_strings(const char **items, size_t count)
{
    struct json_object *out = json_object_new_array();
    for (size_t i = 0; out && i < count; i++) {
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(items[k], items[i]) == 0;
        if (seen)
            continue;
        /* a string that could not be made is no null in the list (json-c would keep one) */
        struct json_object *s = json_object_new_string(items[i]);
        if (!s || json_object_array_add(out, s) != 0) {
            json_object_put(s);
            json_object_put(out);
            out = NULL;
        }
    }
    return out;
}

/* One list of applies_to: the one sent (`sent` JSON_IN_VALUE), else the one `kept` has (a
 * wallet's stored applies_to, or NULL), else none. */
static void applies_to_list(struct json_build *b, const char *key, enum json_in_result sent,
                            const char **items, size_t count, struct json_object *kept)
{
    struct json_object *was;
    if (sent == JSON_IN_VALUE)
        json_build_take(b, key, unique_strings(items, count));
    else if (kept && json_object_object_get_ex(kept, key, &was) &&
             json_object_is_type(was, json_type_array))
        json_build_share(b, key, was);
    else
        json_build_take(b, key, json_object_new_array());
}

/*
 * applies_to: known fee types, and billable metrics that exist, each once (Lago dedupes them
 * and keeps one target per metric; an audit found a code named twice echoed twice). An
 * unknown code is 422 `applies_to: invalid_limitations`, as Lago's ValidateLimitationsService
 * answers (an audit found a 404, which Lago's POST /wallets never answers), with a message
 * naming it.
 *
 * Only the lists the request sends change, as Lago's Wallets::UpdateService sets
 * `allowed_fee_types` only when `fee_types` is there and its targets only when
 * `billable_metric_codes` is: the other is kept from `kept` (the wallet's stored applies_to,
 * or NULL for a new wallet), `[]` clears the one it names, and `{}` or a list sent as null
 * (which Lago's `permit` drops) changes nothing. Found by an audit: the object replaced the
 * whole, so a wallet limited to one metric, sent only its fee types, paid for every metric.
 * The mark of a wallet whose metrics were all deleted stays until codes are sent again.
 *
 * The normalized object, or NULL after refusing (*store_failed when the catalog could not be
 * read).
 */
static struct json_object *parse_applies_to(struct request *req, struct json_object *v,
                                            struct json_object *kept, struct json_in_error *err,
                                            bool *store_failed)
{
    const char **types = NULL, **codes = NULL;
    size_t type_count = 0, code_count = 0;
    enum json_in_result sent_types, sent_codes = JSON_IN_ABSENT;
    if (!json_object_is_type(v, json_type_object))
        return json_in_refuse(err, "applies_to", "invalid_limitations"), NULL;
    if ((sent_types = json_in_string_array(v, "fee_types", 3, 32, &req->arena, &types, &type_count,
                                           err)) == JSON_IN_INVALID ||
        (sent_codes = json_in_string_array(v, "billable_metric_codes", WALLET_METRIC_CODES_MAX,
                                           CATALOG_CODE_MAX, &req->arena, &codes, &code_count,
                                           err)) == JSON_IN_INVALID) {
        /* under applies_to, the key the request has, the list's own fault said (an audit
         * found a bare billable_metric_codes: invalid_value) */
        err->message = message_of(req, "applies_to.%s: %s", err->field, err->code);
        return json_in_refuse(err, "applies_to", "invalid_limitations"), NULL;
    }
    for (size_t i = 0; i < type_count; i++) {
        unsigned bit;
        if (!wallet_fee_type_parse(types[i], &bit)) {
            err->message = message_of(req,
                                      "applies_to.fee_types: \"%s\" is none of charge, "
                                      "commitment, subscription",
                                      types[i]);
            return json_in_refuse(err, "applies_to", "invalid_limitations"), NULL;
        }
    }
    struct store_reader *r = api_reader_acquire(req->api);
    bool ok = true;
    for (size_t i = 0; ok && i < code_count; i++) {
        struct catalog_item metric;
        enum store_status s =
            store_catalog_get(store_reader_conn(r), req->org_id, CATALOG_BILLABLE_METRIC, codes[i],
                              &metric, &req->arena);
        if (s != STORE_OK) {
            *store_failed = s != STORE_NOT_FOUND;
            ok = json_in_refuse(err, "applies_to", "invalid_limitations");
            err->message = message_of(req,
                                      "billable_metric_codes: no billable metric has the "
                                      "code \"%s\"",
                                      codes[i]);
        }
    }
    api_reader_release(req->api, r);
    if (!ok)
        return NULL;
    struct json_build b;
    json_build_init(&b, json_object_new_object());
    applies_to_list(&b, "fee_types", sent_types, types, type_count, kept);
    applies_to_list(&b, "billable_metric_codes", sent_codes, codes, code_count, kept);
    struct json_object *mark;
    if (sent_codes != JSON_IN_VALUE && kept &&
        json_object_object_get_ex(kept, "limited_to_billable_metrics", &mark) && mark)
        json_build_share(&b, "limited_to_billable_metrics", mark);
    if (json_build_failed(&b)) {
        json_object_put(b.obj);
        *store_failed = true; /* no memory: a 500 as well */
        return NULL;
    }
    return b.obj;
}

/* A metadata object of string (or null) values, keys of at most 100 bytes, bounded. */
/*
 * Lago's item metadata limits (Metadata::ItemMetadata: 50 keys, a key up to 100, a value up to
 * 255), counted in bytes. A blank key is refused where Lago keeps it: its delete route
 * (`/metadata/` then) is the one that deletes every key (an audit's finding).
 */
static bool valid_metadata(struct json_object *v, struct json_in_error *err)
{
    /* each refusal with its message, as the others (an audit found invalid_type without) */
    if (!json_object_is_type(v, json_type_object)) {
        err->message = "metadata is an object of keys to string (or null) values";
        return json_in_refuse(err, "metadata", "invalid_type");
    }
    if (json_object_object_length(v) > WALLET_METADATA_KEYS_MAX) {
        err->message = METADATA_KEYS_MESSAGE;
        return json_in_refuse(err, "metadata", "too_many_items");
    }
    /* a string too long is not of the wrong type: told apart, so a client knows what to fix */
    json_object_object_foreach(v, key, value)
    {
        if (value && !json_object_is_type(value, json_type_string)) {
            err->message = "a metadata value is a string or null";
            return json_in_refuse(err, "metadata", "invalid_type");
        }
        if (json_in_blank(key, strlen(key))) {
            err->message = "a metadata key may not be blank";
            return json_in_refuse(err, "metadata", "value_is_mandatory");
        }
        if (strlen(key) > WALLET_METADATA_KEY_MAX ||
            (value && json_object_get_string_len(value) > WALLET_METADATA_VALUE_MAX)) {
            err->message = "a metadata key is at most " API_LIMIT_TEXT(
                WALLET_METADATA_KEY_MAX) " bytes, a value at most " API_LIMIT_TEXT(WALLET_METADATA_VALUE_MAX) " bytes";
            return json_in_refuse(err, "metadata", "value_is_too_long");
        }
    }
    return true;
}

/* A credits amount of a rule, at least 0, normalized ("10" -> "10.0"); absent: `fallback`
 * (NULL: null). Set in `out`; false after refusing. */
static bool rule_credits(struct json_object *rule, const char *key, const char *fallback,
                         struct json_build *out, struct json_in_error *err)
{
    money_t v;
    enum json_in_result r = json_in_decimal(rule, key, &v, err);
    if (r == JSON_IN_INVALID)
        return false;
    if (r != JSON_IN_VALUE) {
        json_build_string_or_null(out, key, fallback);
        return true;
    }
    if (money_sign(v) < 0)
        return json_in_refuse(err, "recurring_transaction_rules", "invalid_recurring_rule");
    char text[MONEY_TEXT_MAX];
    money_format_fraction(money_normalize(v), 1, text, sizeof text);
    json_build_string(out, key, text);
    return true;
}

/* rollover_percentage: a whole number from 0 to 100, as a JSON number or a decimal string (as
 * credit amounts are; an audit found "25" refused invalid_type beside rollover_max_credits
 * "2"), read exactly from its text. */
static enum json_in_result rollover_percentage(struct json_object *rule, int64_t *out,
                                               struct json_in_error *err)
{
    money_t v;
    enum json_in_result r = json_in_decimal(rule, "rollover_percentage", &v, err);
    if (r == JSON_IN_INVALID && strcmp(err->code, "integer_out_of_range") != 0)
        err->message = "rollover_percentage is a whole number from 0 to 100, as a JSON number "
                       "or a decimal string";
    if (r != JSON_IN_VALUE)
        return r;
    if (money_to_minor_units(v, 0, MONEY_ROUND_EXACT, out) != MONEY_OK || *out < 0 || *out > 100) {
        err->message = "rollover_percentage is a whole number from 0 to 100";
        json_in_refuse(err, "rollover_percentage", "value_is_out_of_range");
        return JSON_IN_INVALID;
    }
    return JSON_IN_VALUE;
}

/* An interval rule's own terms: interval, started_at, and Tally's grant_expires_after and
 * rollover (with rollover_percentage or rollover_max_credits). */
static bool parse_interval_terms(struct request *req, struct json_object *rule,
                                 struct json_build *norm, struct json_in_error *err)
{
    static const char *const intervals[] = {"weekly", "monthly", "quarterly", "semiannual",
                                            "yearly"};
    const char *interval = NULL, *duration = NULL, *rollover = NULL;
    tally_time started;
    enum json_in_result has_start;
    int64_t percentage = 0;
    enum json_in_result has_percentage;
    if (json_in_string(rule, "interval", 16, &req->arena, &interval, err) == JSON_IN_INVALID ||
        json_in_string(rule, "grant_expires_after", WALLET_DURATION_TEXT_MAX, &req->arena,
                       &duration, err) == JSON_IN_INVALID ||
        json_in_string(rule, "rollover", 16, &req->arena, &rollover, err) == JSON_IN_INVALID ||
        (has_start = json_in_instant(rule, "started_at", &started, err)) == JSON_IN_INVALID ||
        (has_percentage = rollover_percentage(rule, &percentage, err)) == JSON_IN_INVALID)
        return false;
    bool known = false;
    for (size_t i = 0; interval && i < sizeof intervals / sizeof intervals[0]; i++)
        known |= strcmp(interval, intervals[i]) == 0;
    struct wallet_duration d;
    enum wallet_rollover r = WALLET_ROLLOVER_NONE;
    if (duration && !wallet_duration_parse(duration, &d)) {
        err->message = "grant_expires_after is an ISO 8601 duration of whole years, months, "
                       "weeks and days (P1M, P30D, P1Y6M), at least a day and at most 100 "
                       "years (1,200 months, 37,200 days)";
        return json_in_refuse(err, "recurring_transaction_rules", "invalid_recurring_rule");
    }
    _Static_assert(WALLET_DURATION_DAYS_MAX == 37200, "the message says 100 years");
    if (!known || (rollover && !wallet_rollover_parse(rollover, &r)) ||
        (r == WALLET_ROLLOVER_MAX_PERCENTAGE && has_percentage != JSON_IN_VALUE))
        return json_in_refuse(err, "recurring_transaction_rules", "invalid_recurring_rule");
    json_build_string(norm, "interval", interval);
    char text[TIMESTAMP_TEXT_MAX];
    if (has_start == JSON_IN_VALUE)
        timestamp_format(started, false, text);
    json_build_string_or_null(norm, "started_at", has_start == JSON_IN_VALUE ? text : NULL);
    json_build_string_or_null(norm, "grant_expires_after", duration);
    json_build_string_or_null(norm, "rollover", rollover);
    if (r == WALLET_ROLLOVER_MAX_PERCENTAGE)
        json_build_int64(norm, "rollover_percentage", percentage);
    if (r == WALLET_ROLLOVER_MAX_CREDITS) {
        struct json_object *v;
        if (!json_object_object_get_ex(rule, "rollover_max_credits", &v) || !v)
            return json_in_refuse(err, "recurring_transaction_rules", "invalid_recurring_rule");
        if (!rule_credits(rule, "rollover_max_credits", NULL, norm, err))
            return false;
    }
    return true;
}

/*
 * A threshold rule fires on its balance, not on a calendar, and its top-ups are no
 * anniversary's grant: the interval terms are null in its answer, and a request that sets one
 * is refused rather than answered 200 and ignored (an audit found grant_expires_after dropped
 * so, its credits never expiring; a later one an interval and a started_at sent on an update).
 * Lago stores a threshold rule's interval and started_at, and nothing of it reads them.
 */
static bool threshold_has_no_interval_terms(struct json_object *rule, struct json_build *norm,
                                            struct json_in_error *err)
{
    static const char *const keys[] = {"interval", "started_at",          "grant_expires_after",
                                       "rollover", "rollover_percentage", "rollover_max_credits"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        struct json_object *v;
        if (json_object_object_get_ex(rule, keys[i], &v) && v) {
            err->message = "interval, started_at, grant_expires_after and rollover belong to "
                           "interval rules (trigger \"interval\"): a threshold rule fires on its "
                           "balance, and its top-ups do not expire";
            return json_in_refuse(err, "recurring_transaction_rules", "invalid_recurring_rule");
        }
    }
    json_build_null(norm, "interval");
    json_build_null(norm, "grant_expires_after");
    json_build_null(norm, "rollover");
    return true;
}

/*
 * The wallet's active rule (of `kept`, its stored rules; NULL for a new wallet) whose lago_id
 * the request's `rule` names, or NULL: Lago's UpdateService looks the lago_id up among the
 * wallet's active rules, and any other (none, one of another wallet's, one ended) makes a new
 * rule. Borrowed from `kept`.
 */
static struct json_object *named_rule(struct json_object *kept, struct json_object *rule,
                                      tally_time now)
{
    struct json_object *id, *v;
    if (!kept || !json_object_is_type(kept, json_type_array) ||
        !json_object_object_get_ex(rule, "lago_id", &id) ||
        !json_object_is_type(id, json_type_string))
        return NULL;
    for (size_t i = 0; i < json_object_array_length(kept); i++) {
        struct json_object *k = json_object_array_get_idx(kept, i);
        if (json_object_is_type(k, json_type_object) &&
            json_object_object_get_ex(k, "lago_id", &v) &&
            json_object_is_type(v, json_type_string) &&
            strcmp(json_object_get_string(v), json_object_get_string(id)) == 0)
            return rule_ended(k, now) ? NULL : k;
    }
    return NULL;
}

/*
 * The request's `rule` over the stored one it updates, as Lago's update! makes it: what the
 * request sends (null included) changes, what it leaves out stays (a transaction_name, the
 * rule's own invoice_requires_successful_payment, an interval rule's started_at). A rule whose
 * trigger changes keeps nothing of the other trigger's terms, which a threshold rule refuses
 * set. A new object (the caller puts it), NULL out of memory.
 */
static struct json_object *updated_rule(struct json_object *kept, struct json_object *rule)
{
    static const char *const trigger_terms[] = {
        "interval",         "started_at",          "grant_expires_after",
        "rollover",         "rollover_percentage", "rollover_max_credits",
        "threshold_credits"};
    struct json_object *sent, *was;
    struct json_build out;
    json_build_init(&out, json_object_new_object());
    if (json_build_failed(&out))
        return NULL;
    json_object_object_foreach(rule, key, value) json_build_share(&out, key, value);
    bool same_trigger = !json_object_object_get_ex(rule, "trigger", &sent) ||
                        (json_object_object_get_ex(kept, "trigger", &was) &&
                         json_object_is_type(sent, json_type_string) &&
                         json_object_is_type(was, json_type_string) &&
                         strcmp(json_object_get_string(sent), json_object_get_string(was)) == 0);
    json_object_object_foreach(kept, kept_key, kept_value)
    {
        bool other_trigger = false;
        for (size_t i = 0; !same_trigger && i < sizeof trigger_terms / sizeof trigger_terms[0]; i++)
            other_trigger |= strcmp(kept_key, trigger_terms[i]) == 0;
        if (!other_trigger && !json_object_object_get_ex(out.obj, kept_key, NULL))
            json_build_share(&out, kept_key, kept_value);
    }
    if (json_build_failed(&out)) {
        json_object_put(out.obj);
        return NULL;
    }
    return out.obj;
}

/*
 * A rule's purchase_order_number, which its top-ups carry (and their credit invoices), the
 * wallet's when it has none (engine/wallet_book, read_rule): Lago's rule has it. False after
 * refusing, with a message naming the rule's (the wallet has one of its own).
 */
static bool rule_purchase_order(struct request *req, struct json_object *rule, const char **po,
                                struct json_in_error *err)
{
    if (json_in_string(rule, "purchase_order_number", WALLET_PURCHASE_ORDER_MAX, &req->arena, po,
                       err) != JSON_IN_INVALID)
        return true;
    err->message =
        "a recurring rule's purchase_order_number is a string of at most " API_LIMIT_TEXT(
            WALLET_PURCHASE_ORDER_MAX) " bytes, or null";
    return false;
}

/*
 * recurring_transaction_rules: at most one rule (Lago's limit), trigger "threshold" or
 * "interval", method fixed or target, normalized with its lago_id and creation time: those of
 * the wallet's active rule (of `kept`) it names by lago_id, which it updates (named_rule,
 * updated_rule), else new ones. NULL after refusing (err set), or when memory ran out (not).
 */
static struct json_object *parse_rules(struct request *req, struct json_object *list,
                                       struct json_object *wallet, struct json_object *kept,
                                       bool wallet_requires, struct json_in_error *err)
{
    if (!json_object_is_type(list, json_type_array) || json_object_array_length(list) > 1) {
        json_in_refuse(err, "recurring_transaction_rules", "invalid_number_of_recurring_rules");
        return NULL;
    }
    struct json_object *out = json_object_new_array();
    if (!out || json_object_array_length(list) == 0)
        return out;
    struct json_object *rule = json_object_array_get_idx(list, 0);
    struct json_build norm;
    json_build_init(&norm, json_object_new_object());
    if (json_build_failed(&norm) || json_object_array_add(out, norm.obj) != 0) {
        json_object_put(norm.obj);
        json_object_put(out);
        return NULL;
    }
    const char *trigger = NULL, *method = NULL, *name = NULL, *po = NULL;
    /* Lago's defaults: the wallet's payment setting, and a fixed rule that names no amount
     * tops up what the new wallet's own top-up was (RecurringTransactionRules::CreateService);
     * an audit found the rule's paid credits settled before any payment on a wallet that asks
     * for one */
    bool grants = false, requires = wallet_requires, ignore = false;
    tally_time expiration, now;
    enum json_in_result exp;
    char id[UUID_TEXT], created[TIMESTAMP_TEXT_MAX];
    struct json_object *updates = NULL, *merged = NULL;
    if (!json_object_is_type(rule, json_type_object)) {
        json_in_refuse(err, "recurring_transaction_rules", "invalid_recurring_rule");
        goto fail;
    }
    if (!api_org_now(req, &now)) {
        json_in_refuse(err, "recurring_transaction_rules", "out_of_entropy");
        goto fail;
    }
    if ((updates = named_rule(kept, rule, now)) && !(rule = merged = updated_rule(updates, rule))) {
        json_in_refuse(err, "recurring_transaction_rules", "out_of_memory");
        goto fail;
    }
    if (json_in_string(rule, "trigger", 16, &req->arena, &trigger, err) == JSON_IN_INVALID ||
        json_in_string(rule, "method", 16, &req->arena, &method, err) == JSON_IN_INVALID ||
        wallet_transactions_read_name(rule, "transaction_name", &req->arena, &name, err) ==
            JSON_IN_INVALID ||
        !rule_purchase_order(req, rule, &po, err) ||
        json_in_bool(rule, "grants_target_top_up", &grants, err) == JSON_IN_INVALID ||
        json_in_bool(rule, "invoice_requires_successful_payment", &requires, err) ==
            JSON_IN_INVALID ||
        json_in_bool(rule, "ignore_paid_top_up_limits", &ignore, err) == JSON_IN_INVALID ||
        (exp = json_in_instant(rule, "expiration_at", &expiration, err)) == JSON_IN_INVALID)
        goto fail;
    bool interval = trigger && strcmp(trigger, "interval") == 0;
    if ((!interval && (!trigger || strcmp(trigger, "threshold") != 0)) ||
        (method && strcmp(method, "fixed") != 0 && strcmp(method, "target") != 0)) {
        json_in_refuse(err, "recurring_transaction_rules", "invalid_recurring_rule");
        goto fail;
    }
    bool target = method && strcmp(method, "target") == 0;
    json_build_string(&norm, "trigger", interval ? "interval" : "threshold");
    if (interval && !parse_interval_terms(req, rule, &norm, err))
        goto fail;
    if (!interval && !threshold_has_no_interval_terms(rule, &norm, err))
        goto fail;
    json_build_string(&norm, "method", target ? "target" : "fixed");
    struct json_object *v;
    bool names_amounts = (json_object_object_get_ex(rule, "paid_credits", &v) && v) ||
                         (json_object_object_get_ex(rule, "granted_credits", &v) && v);
    struct json_object *amounts = target || names_amounts || !wallet ? rule : wallet;
    if (!rule_credits(rule, "threshold_credits", NULL, &norm, err) ||
        !rule_credits(amounts, "paid_credits", "0.0", &norm, err) ||
        !rule_credits(amounts, "granted_credits", "0.0", &norm, err) ||
        !rule_credits(rule, "target_ongoing_balance", NULL, &norm, err))
        goto fail;
    /* what is read back below must be what was meant: a member missing for want of memory
     * would be refused as the client's */
    if (json_build_failed(&norm))
        goto fail;
    struct json_object *threshold, *goal;
    bool has_threshold =
             json_object_object_get_ex(norm.obj, "threshold_credits", &threshold) && threshold,
         has_goal = json_object_object_get_ex(norm.obj, "target_ongoing_balance", &goal) && goal;
    money_t t = MONEY_ZERO, g = MONEY_ZERO;
    if (has_threshold)
        money_parse(json_object_get_string(threshold), strlen(json_object_get_string(threshold)),
                    &t);
    if (has_goal)
        money_parse(json_object_get_string(goal), strlen(json_object_get_string(goal)), &g);
    if ((!interval && !has_threshold) || (target && !has_goal) ||
        (target && has_threshold && money_cmp(g, t) < 0) || (grants && !target)) {
        json_in_refuse(err, "recurring_transaction_rules", "invalid_recurring_rule");
        goto fail;
    }
    if (!updates && !entropy_uuid(id)) {
        json_in_refuse(err, "recurring_transaction_rules", "out_of_entropy");
        goto fail;
    }
    timestamp_format(now, false, created);
    json_build_bool(&norm, "grants_target_top_up", grants);
    json_build_bool(&norm, "invoice_requires_successful_payment", requires);
    json_build_bool(&norm, "ignore_paid_top_up_limits", ignore);
    json_build_string_or_null(&norm, "transaction_name", name);
    json_build_string_or_null(&norm, "purchase_order_number", po);
    /* given to the transactions the rule makes */
    struct json_object *metadata;
    if (json_object_object_get_ex(rule, "transaction_metadata", &metadata) && metadata) {
        if (!wallet_transactions_valid_metadata(metadata, "transaction_metadata", err))
            goto fail;
        json_build_share(&norm, "transaction_metadata", metadata);
    } else {
        json_build_take(&norm, "transaction_metadata", json_object_new_array());
    }
    if (!interval)
        json_build_null(&norm, "started_at");
    char expires[TIMESTAMP_TEXT_MAX];
    if (exp == JSON_IN_VALUE)
        timestamp_format(expiration, false, expires);
    json_build_string_or_null(&norm, "expiration_at", exp == JSON_IN_VALUE ? expires : NULL);
    /* the rule it updates keeps its identity (stored by this parser: both are there) */
    struct json_object *kept_id = NULL, *kept_created = NULL;
    if (updates) {
        json_object_object_get_ex(updates, "lago_id", &kept_id);
        json_object_object_get_ex(updates, "created_at", &kept_created);
    }
    if (kept_id)
        json_build_share(&norm, "lago_id", kept_id);
    else
        json_build_string(&norm, "lago_id", id);
    json_build_string(&norm, "status", "active");
    if (kept_created)
        json_build_share(&norm, "created_at", kept_created);
    else
        json_build_string(&norm, "created_at", created);
    if (!json_build_failed(&norm)) {
        json_object_put(merged);
        return out;
    }
fail:
    json_object_put(merged);
    json_object_put(out);
    return NULL;
}

/*
 * The terms the writer stores as JSON, merged over `base` (a wallet's current terms, or
 * NULL): only the keys the request names change. NULL after refusing (err set, or
 * *store_failed), or when `base` could not be read or memory ran out (neither).
 */
static const char *parse_terms(struct request *req, struct json_object *obj, const char *base,
                               struct json_in_error *err, bool *store_failed)
{
    struct json_object *terms = base ? json_tokener_parse(base) : json_object_new_object(), *v;
    const char *out = NULL;
    if (!terms)
        return NULL;
    struct json_build b;
    json_build_init(&b, terms);
    bool flag;
    int64_t min = 0, max = 0;
    enum json_in_result rmin, rmax;
    if (json_in_bool(obj, "invoice_requires_successful_payment", &flag, err) == JSON_IN_VALUE)
        json_build_bool(&b, "invoice_requires_successful_payment", flag);
    else if (err->code)
        goto done;
    if ((rmin = json_in_int(obj, "paid_top_up_min_amount_cents", 1, WALLET_BALANCE_MAX_CENTS, &min,
                            err)) == JSON_IN_INVALID ||
        (rmax = json_in_int(obj, "paid_top_up_max_amount_cents", 1, WALLET_BALANCE_MAX_CENTS, &max,
                            err)) == JSON_IN_INVALID)
        goto done;
    if (rmin == JSON_IN_VALUE)
        json_build_int64(&b, "paid_top_up_min_amount_cents", min);
    else if (rmin != JSON_IN_ABSENT)
        json_build_null(&b, "paid_top_up_min_amount_cents");
    if (rmax == JSON_IN_VALUE)
        json_build_int64(&b, "paid_top_up_max_amount_cents", max);
    else if (rmax != JSON_IN_ABSENT)
        json_build_null(&b, "paid_top_up_max_amount_cents");
    /* the bounds are read back below: a member missing for want of memory is no client's */
    if (json_build_failed(&b))
        goto done;
    struct json_object *jmin, *jmax;
    int64_t kept_min, kept_max;
    if (json_object_object_get_ex(terms, "paid_top_up_min_amount_cents", &jmin) &&
        json_in_stored_int(jmin, &kept_min) &&
        json_object_object_get_ex(terms, "paid_top_up_max_amount_cents", &jmax) &&
        json_in_stored_int(jmax, &kept_max) && kept_max < kept_min) {
        json_in_refuse(err, "paid_top_up_max_amount_cents", "value_is_out_of_range");
        goto done;
    }
    const char *po = NULL;
    enum json_in_result r = json_in_string(obj, "purchase_order_number", WALLET_PURCHASE_ORDER_MAX,
                                           &req->arena, &po, err);
    if (r == JSON_IN_INVALID)
        goto done;
    if (r != JSON_IN_ABSENT)
        json_build_string_or_null(&b, "purchase_order_number", po);
    if (json_object_object_get_ex(obj, "applies_to", &v) && v) {
        struct json_object *kept = NULL;
        if (base)
            json_object_object_get_ex(terms, "applies_to", &kept);
        struct json_object *applies = parse_applies_to(req, v, kept, err, store_failed);
        if (!applies)
            goto done;
        json_build_take(&b, "applies_to", applies);
    }
    if (json_object_object_get_ex(obj, "metadata", &v)) {
        if (v && !valid_metadata(v, err))
            goto done;
        json_build_share(&b, "metadata", v);
    }
    if (json_object_object_get_ex(obj, "recurring_transaction_rules", &v) && v) {
        struct json_object *flag_now;
        bool requires =
            json_object_object_get_ex(terms, "invoice_requires_successful_payment", &flag_now) &&
            json_object_get_boolean(flag_now);
        /* a new wallet's own top-up is in the request; an update has none, and may name the
         * wallet's rules it updates */
        struct json_object *kept = NULL;
        if (base)
            json_object_object_get_ex(terms, "recurring_transaction_rules", &kept);
        struct json_object *rules = parse_rules(req, v, base ? NULL : obj, kept, requires, err);
        if (!rules)
            goto done;
        json_build_take(&b, "recurring_transaction_rules", rules);
    }
    out = json_build_text(&b, JSON_C_TO_STRING_PLAIN, &req->arena);
done:
    json_object_put(terms);
    return out;
}

/* What a wallet holds at most at its rate, for a message (wallet_bound_text). */
static const char *limit_text(struct request *req, const struct store_wallet *w)
{
    char text[WALLET_BOUND_TEXT_MAX];
    if (!wallet_bound_text(w->rate_amount, wallets_currency_exponent(w->currency), w->currency,
                           text))
        return WALLET_CREDITS_MAX_TEXT " credits, the most Tally counts";
    const char *copy = arena_strndup(&req->arena, text, strlen(text));
    return copy ? copy : "a wallet's limit";
}

/* The message refusing `key`'s `credits` as past what a wallet holds: more credits than Tally
 * counts (a tiny rate, whose bound in credits it cannot write), or past the wallet's limit. */
static const char *past_limit(struct request *req, const struct store_wallet *w, const char *key,
                              money_t credits)
{
    if (!wallet_credits_countable(credits))
        return message_of(req,
                          "%s is more credits than Tally counts, at most " WALLET_CREDITS_MAX_TEXT
                          "; nothing was recorded",
                          key);
    return message_of(req,
                      "%s is past what a wallet holds, at most %s at its rate; nothing was "
                      "recorded",
                      key, limit_text(req, w));
}

/*
 * Whether a fixed rule's paid top-up of `cents` is within the wallet's paid top-up bounds, as
 * Lago's ValidateService checks when the rule is made or the bounds change (a target rule's
 * amount is known only when it fires; ignore_paid_top_up_limits lifts them). Found by an
 * audit: a rule of 10 on a wallet buying 20 at least was taken, and fired for 10.
 */
/*
 * Where a paid top-up of `cents` falls against the wallet's paid top-up bounds (`terms`, its
 * stored terms, or NULL): below the minimum (< 0), above the maximum (> 0), or within (0).
 */
static int against_top_up_bounds(struct json_object *terms, int64_t cents)
{
    struct json_object *v;
    int64_t bound;
    if (terms && json_object_object_get_ex(terms, "paid_top_up_min_amount_cents", &v) &&
        json_in_stored_int(v, &bound) && cents < bound)
        return -1;
    if (terms && json_object_object_get_ex(terms, "paid_top_up_max_amount_cents", &v) &&
        json_in_stored_int(v, &bound) && cents > bound)
        return 1;
    return 0;
}

static bool within_top_up_limits(struct json_object *terms, struct json_object *rule, int64_t cents)
{
    struct json_object *v;
    bool target = json_object_object_get_ex(rule, "method", &v) && v &&
                  strcmp(json_object_get_string(v), "target") == 0;
    bool ignore = json_object_object_get_ex(rule, "ignore_paid_top_up_limits", &v) && v &&
                  json_object_get_boolean(v);
    return target || ignore || cents == 0 || against_top_up_bounds(terms, cents) == 0;
}

/*
 * A rule's credit amounts at the wallet's rate: each at most what a wallet holds
 * (WALLET_BALANCE_MAX_CENTS), as the writer reads them back. Refused otherwise: a threshold, a
 * target, a top-up or a rollover cap past it could never be met, and the writer must never meet
 * one it cannot convert. When the request names the rules or the paid top-up bounds
 * (`rules_sent`), a top-up's paid or granted credits worth more than nothing but less than a
 * cent are refused too, as such a one-off top-up is: the rule was otherwise shown on the wallet
 * and never topped up (a top-up of no cents is skipped); and so is a fixed rule's paid top-up
 * outside the bounds. Rules stored before those checks do not stop other updates.
 */
static bool rule_amounts_fit(struct request *req, const struct store_wallet *w, bool rules_sent,
                             struct json_in_error *err)
{
    static const char *const keys[] = {"threshold_credits", "paid_credits", "granted_credits",
                                       "target_ongoing_balance", "rollover_max_credits"};
    /* converted as the writer does (engine/wallet_book's read_rule): the threshold and the
     * rollover cap are bounds, rounded down; the rest are amounts */
    static const bool bounds[] = {true, false, false, false, true};
    _Static_assert(sizeof bounds / sizeof bounds[0] == sizeof keys / sizeof keys[0],
                   "a kind for every key");
    struct json_object *terms = json_tokener_parse(w->terms_json), *rules, *v;
    bool ok = true;
    if (terms && json_object_object_get_ex(terms, "recurring_transaction_rules", &rules) &&
        json_object_is_type(rules, json_type_array) && json_object_array_length(rules) > 0) {
        struct json_object *rule = json_object_array_get_idx(rules, 0);
        for (size_t i = 0; ok && i < sizeof keys / sizeof keys[0]; i++) {
            money_t credits;
            int64_t cents;
            if (!json_object_object_get_ex(rule, keys[i], &v) || !v)
                continue;
            const char *text = json_object_get_string(v);
            int32_t exponent = wallets_currency_exponent(w->currency);
            if (money_parse(text, strlen(text), &credits) != MONEY_OK ||
                (bounds[i] ? wallet_credits_cap_to_cents(credits, w->rate_amount, exponent, &cents)
                           : wallet_credits_to_cents(credits, w->rate_amount, exponent, &cents)) !=
                    MONEY_OK) {
                ok = json_in_refuse(err, "recurring_transaction_rules", "value_is_out_of_range");
                err->message = past_limit(
                    req, w, keys[i],
                    money_parse(text, strlen(text), &credits) == MONEY_OK ? credits : MONEY_ZERO);
            } else if (rules_sent && i >= 1 && i <= 2 && money_sign(credits) > 0 && cents == 0) {
                ok = json_in_refuse(err, "recurring_transaction_rules", "amount_rounds_to_zero");
                err->message = message_of(req,
                                          "%s %s is less than one minor unit of %s at the "
                                          "wallet's rate_amount, so the rule would top up "
                                          "nothing; nothing was recorded",
                                          keys[i], text, w->currency);
            } else if (rules_sent && i == 1 && !within_top_up_limits(terms, rule, cents)) {
                ok = json_in_refuse(err, "recurring_transaction_rules", "invalid_recurring_rule");
                err->message = message_of(req,
                                          "paid_credits %s (%" PRId64 " cents) is outside the "
                                          "wallet's paid_top_up_min/max_amount_cents (set "
                                          "ignore_paid_top_up_limits to buy it anyway)",
                                          text, cents);
            }
        }
    }
    json_object_put(terms);
    return ok;
}

/* limit and overdraft_credits, over what the wallet had. */
static bool parse_limit(struct request *req, struct json_object *obj, struct store_wallet *w,
                        struct json_in_error *err)
{
    const char *limit = NULL;
    money_t overdraft;
    enum json_in_result r = json_in_string(obj, "limit", 16, &req->arena, &limit, err);
    if (r == JSON_IN_INVALID)
        return false;
    if (limit && !wallet_limit_parse(limit, &w->limit))
        return json_in_refuse(err, "limit", "value_is_invalid");
    if ((r = json_in_decimal(obj, "overdraft_credits", &overdraft, err)) == JSON_IN_INVALID)
        return false;
    if (r == JSON_IN_VALUE) {
        /* a bound: rounded down, so that no more than it is ever overdrawn */
        if (money_sign(overdraft) < 0 ||
            wallet_credits_cap_to_cents(overdraft, w->rate_amount,
                                        wallets_currency_exponent(w->currency),
                                        &w->overdraft_limit_cents) != MONEY_OK) {
            json_in_refuse(err, "overdraft_credits", "value_is_out_of_range");
            if (money_sign(overdraft) > 0)
                err->message = past_limit(req, w, "overdraft_credits", overdraft);
            return false;
        }
        /* as a top-up of so few credits is: answered 200 with none, a soft wallet would
         * refuse as a hard one does (an audit's) */
        if (money_sign(overdraft) > 0 && w->overdraft_limit_cents == 0) {
            err->message = message_of(req,
                                      "overdraft_credits is less than one minor unit of %s at "
                                      "the wallet's rate_amount",
                                      w->currency);
            return json_in_refuse(err, "overdraft_credits", "amount_rounds_to_zero");
        }
    }
    if (w->limit != WALLET_LIMIT_SOFT)
        w->overdraft_limit_cents = 0;
    return true;
}

static bool parse_common(struct request *req, struct json_object *obj, struct store_wallet *w,
                         struct json_in_error *err)
{
    int64_t priority;
    enum json_in_result r;
    if (json_in_string(obj, "name", WALLET_NAME_MAX, &req->arena, &w->name, err) ==
            JSON_IN_INVALID ||
        (r = json_in_int(obj, "priority", WALLET_PRIORITY_MIN, WALLET_PRIORITY_MAX, &priority,
                         err)) == JSON_IN_INVALID)
        return false;
    if (r == JSON_IN_VALUE)
        w->priority = (int32_t)priority;
    if ((r = json_in_instant(obj, "expiration_at", &w->expiration_at, err)) == JSON_IN_INVALID)
        return false;
    if (r == JSON_IN_VALUE && !wallets_in_future(req, w->expiration_at))
        return json_in_refuse(err, "expiration_at", "invalid_date"); /* as Lago */
    if (r != JSON_IN_ABSENT)
        w->has_expiration_at = r == JSON_IN_VALUE;
    return parse_limit(req, obj, w, err);
}

/* The first credits of a new wallet: paid_credits, granted_credits and their transaction. */
static bool parse_initial_credits(struct request *req, struct json_object *obj,
                                  struct wallet_credits *c, bool requires_payment,
                                  struct json_in_error *err)
{
    int64_t priority;
    enum json_in_result r;
    if ((r = json_in_decimal(obj, "paid_credits", &c->paid, err)) == JSON_IN_INVALID)
        return false;
    c->has_paid = r == JSON_IN_VALUE;
    if ((r = json_in_decimal(obj, "granted_credits", &c->granted, err)) == JSON_IN_INVALID)
        return false;
    c->has_granted = r == JSON_IN_VALUE;
    if ((c->has_paid && money_sign(c->paid) < 0) || (c->has_granted && money_sign(c->granted) < 0))
        return json_in_refuse(
            err, c->has_paid && money_sign(c->paid) < 0 ? "paid_credits" : "granted_credits",
            "invalid_amount");
    c->priority = WALLET_PRIORITY_MAX;
    if ((r = json_in_int(obj, "transaction_priority", WALLET_PRIORITY_MIN, WALLET_PRIORITY_MAX,
                         &priority, err)) == JSON_IN_INVALID)
        return false;
    if (r == JSON_IN_VALUE)
        c->priority = (int32_t)priority;
    if (wallet_transactions_read_name(obj, "transaction_name", &req->arena, &c->name, err) ==
        JSON_IN_INVALID)
        return false;
    c->invoice_requires_successful_payment = requires_payment;
    /* Lago's transaction_metadata: the first transactions' metadata; and their payment setting,
     * which they answered false whatever the wallet's (an audit's) */
    struct json_object *metadata;
    bool has_metadata =
        json_object_object_get_ex(obj, "transaction_metadata", &metadata) && metadata;
    if (has_metadata && !wallet_transactions_valid_metadata(metadata, "transaction_metadata", err))
        return false;
    struct json_build details;
    json_build_init(&details, json_object_new_object());
    if (has_metadata)
        json_build_share(&details, "metadata", metadata);
    json_build_bool(&details, "invoice_requires_successful_payment", requires_payment);
    c->details_json = json_build_text(&details, JSON_C_TO_STRING_PLAIN, &req->arena);
    json_object_put(details.obj);
    return c->details_json != NULL || json_in_refuse(err, "transaction_metadata", "invalid_type");
}

bool wallets_top_up_bounds_ok(const char *terms_json, int64_t cents, struct json_in_error *err)
{
    struct json_object *terms = json_tokener_parse(terms_json);
    int where = against_top_up_bounds(terms, cents);
    json_object_put(terms);
    return where == 0 ||
           json_in_refuse(err, "paid_credits",
                          where < 0 ? "amount_below_minimum" : "amount_above_maximum");
}

bool wallets_in_future(struct request *req, tally_time t)
{
    tally_time now;
    return api_org_now(req, &now) && t > now;
}

bool wallets_terms_require_payment(const char *terms_json)
{
    struct json_object *terms = json_tokener_parse(terms_json), *v;
    bool requires = terms &&
                    json_object_object_get_ex(terms, "invoice_requires_successful_payment", &v) &&
                    json_object_get_boolean(v);
    json_object_put(terms);
    return requires;
}

/* ---- create ------------------------------------------------------------------------------ */

static void create(struct request *req, const char *external_customer_id)
{
    struct json_object *doc;
    struct json_object *obj = api_body_object(req, "wallet", &doc);
    struct command *cmd = obj ? api_new_command(req, COMMAND_WALLET_CREATE, render_command) : NULL;
    struct json_in_error err = {0};
    bool store_failed = false;
    const char *currency = NULL;
    if (!cmd)
        goto done;
    struct wallet_request *rq = &cmd->as.wallet_create;
    struct store_wallet *w = &rq->wallet;
    w->priority = WALLET_PRIORITY_MAX;
    rq->external_customer_id = external_customer_id;
    enum json_in_result r;
    if ((!external_customer_id &&
         !json_in_required_string(obj, "external_customer_id", CUSTOMER_EXTERNAL_ID_MAX,
                                  &req->arena, &rq->external_customer_id, &err)) ||
        !json_in_required_string(obj, "currency", 3, &req->arena, &currency, &err))
        goto refused;
    /* one a customer may have (with a minor unit): the wallet's becomes its customer's, and an
     * audit found XAU taken, the customer then never able to subscribe or take credits */
    if (!customer_currency_is_valid(currency, strlen(currency))) {
        json_in_refuse(&err, "currency", "value_is_invalid");
        goto refused;
    }
    memcpy(w->currency, currency, 4);
    if ((r = json_in_decimal(obj, "rate_amount", &w->rate_amount, &err)) == JSON_IN_INVALID)
        goto refused;
    if (r != JSON_IN_VALUE || money_sign(w->rate_amount) <= 0) {
        json_in_refuse(&err, "rate_amount",
                       r == JSON_IN_VALUE ? "invalid_amount" : "value_is_mandatory");
        goto refused;
    }
    w->rate_amount = money_normalize(w->rate_amount);
    if (!wallet_rate_showable(w->rate_amount, wallets_currency_exponent(w->currency))) {
        json_in_refuse(&err, "rate_amount", "value_is_out_of_range");
        err.message = "rate_amount is too small: what a wallet can hold and consume at this rate "
                      "would be more credits than Tally writes (10^38)";
        goto refused;
    }
    if (!parse_common(req, obj, w, &err) ||
        json_in_string(obj, "code", WALLET_CODE_MAX, &req->arena, &w->code, &err) ==
            JSON_IN_INVALID ||
        !(w->terms_json = parse_terms(req, obj, NULL, &err, &store_failed)) ||
        !rule_amounts_fit(req, w, true, &err))
        goto refused;
    if (!w->code || !*w->code) {
        rq->code_generated = true;
        if (!(w->code = code_from_name(&req->arena, w->name))) {
            api_error(req, 500, "out_of_memory", NULL);
            goto done;
        }
    }
    if (!parse_initial_credits(req, obj, &rq->credits, wallets_terms_require_payment(w->terms_json),
                               &err))
        goto refused;
    bool ignore_limits = false;
    if (json_in_bool(obj, "ignore_paid_top_up_limits_on_creation", &ignore_limits, &err) ==
        JSON_IN_INVALID)
        goto refused;
    int64_t paid_cents = 0;
    if (rq->credits.has_paid && !ignore_limits &&
        wallet_credits_to_cents(rq->credits.paid, w->rate_amount,
                                wallets_currency_exponent(w->currency), &paid_cents) == MONEY_OK &&
        paid_cents > 0 && !wallets_top_up_bounds_ok(w->terms_json, paid_cents, &err))
        goto refused;
    api_submit(req, cmd);
    goto done;
refused:
    if (store_failed)
        api_error_store_read(req);
    else if (err.code)
        api_error_validation_message(req, err.field, err.code, err.message);
    else
        api_error(req, 500, "out_of_memory", NULL);
done:
    json_object_put(doc);
}

void wallets_create(struct request *req)
{
    create(req, NULL);
}

void wallets_create_for_customer(struct request *req)
{
    create(req, req->params[0]);
}

/* ---- reads ---------------------------------------------------------------------------------- */

/* The wallet a route names: /wallets/{lago_id} or /customers/{external_id}/wallets/{code}. */
static enum store_status find_wallet(struct request *req, bool by_code, struct store_wallet *out)
{
    struct store_reader *r = api_reader_acquire(req->api);
    struct store_conn *conn = store_reader_conn(r);
    enum store_status s;
    const char *missing = "wallet_not_found";
    if (!by_code) {
        s = store_wallet_get(conn, req->org_id, req->params[0], out, &req->arena);
    } else {
        struct customer c;
        struct store_wallet *rows;
        size_t count = 0;
        s = store_customer_get(conn, req->org_id, req->params[0], &c, &req->arena);
        if (s == STORE_NOT_FOUND)
            missing = "customer_not_found"; /* Lago's customer routes find the customer first */
        if (s == STORE_OK)
            s = store_customer_wallets(conn, req->org_id, c.id, &rows, &count, &req->arena);
        if (s == STORE_OK) {
            s = STORE_NOT_FOUND;
            for (size_t i = 0; i < count; i++) {
                if (strcmp(rows[i].code, req->params[1]) == 0) {
                    *out = rows[i];
                    s = STORE_OK;
                }
            }
        }
    }
    api_reader_release(req->api, r);
    if (s == STORE_NOT_FOUND)
        api_error_not_found(req, missing);
    else if (s != STORE_OK)
        api_error_store_read(req);
    return s;
}

static void get(struct request *req, bool by_code)
{
    struct store_wallet w;
    tally_time now;
    if (!api_wait_for_wallets(req) && find_wallet(req, by_code, &w) == STORE_OK &&
        api_org_now(req, &now))
        render_one(api_respond(req, 200), &w, now);
}

void wallets_get(struct request *req)
{
    get(req, false);
}

void wallets_get_for_customer(struct request *req)
{
    get(req, true);
}

static void list(struct request *req, const char *external_customer_id)
{
    /* Tally has no billing entities: refused rather than answered unfiltered */
    static const char *const unserved[] = {"billing_entity_codes"};
    int64_t page, per_page, total = 0, customer_id = 0;
    tally_time now;
    if (!api_refuse_unserved(req, unserved, sizeof unserved / sizeof unserved[0]) ||
        api_wait_for_wallets(req) || !api_pagination(req, &page, &per_page) ||
        !api_org_now(req, &now))
        return;
    struct store_reader *r = api_reader_acquire(req->api);
    struct store_conn *conn = store_reader_conn(r);
    struct store_wallet *rows = NULL;
    size_t count = 0;
    enum store_status s = STORE_OK;
    if (external_customer_id) {
        struct customer c;
        s = store_customer_get(conn, req->org_id, external_customer_id, &c, &req->arena);
        if (s == STORE_OK)
            customer_id = c.id;
    }
    if (s == STORE_OK)
        s = store_wallet_list(conn, req->org_id, customer_id, api_query_filter(req, "currency"),
                              (page - 1) * per_page, per_page, &rows, &count, &total, &req->arena);
    api_reader_release(req->api, r);
    if (s == STORE_ERROR) {
        api_error_store_read(req);
        return;
    }
    if (s == STORE_NOT_FOUND) {
        api_error_not_found(req, "customer_not_found");
        return;
    }
    struct jsonw w;
    jsonw_init(&w, api_respond(req, 200));
    jsonw_object_begin(&w);
    jsonw_key(&w, "wallets");
    jsonw_array_begin(&w);
    for (size_t i = 0; i < count; i++)
        render_wallet(&w, &rows[i], now);
    jsonw_array_end(&w);
    api_write_meta(&w, page, per_page, total);
    jsonw_object_end(&w);
}

void wallets_list(struct request *req)
{
    list(req, api_query_filter(req, "external_customer_id"));
}

void wallets_list_for_customer(struct request *req)
{
    list(req, req->params[0]);
}

/* ---- update and terminate ------------------------------------------------------------------ */

static void update(struct request *req, bool by_code)
{
    struct store_wallet current;
    if (api_wait_for_wallets(req) || find_wallet(req, by_code, &current) != STORE_OK)
        return;
    struct json_object *doc;
    struct json_object *obj = api_body_object(req, "wallet", &doc);
    struct command *cmd = obj ? api_new_command(req, COMMAND_WALLET_UPDATE, render_command) : NULL;
    struct json_in_error err = {0};
    bool store_failed = false;
    if (!cmd)
        goto done;
    struct wallet_update *u = &cmd->as.wallet_update;
    u->wallet = current;
    u->read = current;
    const char *code = NULL; /* a new one, as Lago's UpdateService takes it */
    if (json_in_string(obj, "code", WALLET_CODE_MAX, &req->arena, &code, &err) == JSON_IN_INVALID ||
        !parse_common(req, obj, &u->wallet, &err) ||
        !(u->wallet.terms_json = parse_terms(req, obj, current.terms_json, &err, &store_failed)) ||
        !rule_amounts_fit(
            req, &u->wallet,
            json_object_object_get_ex(obj, "recurring_transaction_rules", NULL) ||
                json_object_object_get_ex(obj, "paid_top_up_min_amount_cents", NULL) ||
                json_object_object_get_ex(obj, "paid_top_up_max_amount_cents", NULL),
            &err)) {
        if (store_failed)
            api_error_store_read(req);
        else
            api_error_validation_message(req, err.field ? err.field : "wallet",
                                         err.code ? err.code : "invalid", err.message);
        goto done;
    }
    if (code && *code)
        u->wallet.code = code;
    api_submit(req, cmd);
done:
    json_object_put(doc);
}

void wallets_update(struct request *req)
{
    update(req, false);
}

void wallets_update_for_customer(struct request *req)
{
    update(req, true);
}

static void terminate(struct request *req, bool by_code)
{
    struct store_wallet current;
    if (api_wait_for_wallets(req) || find_wallet(req, by_code, &current) != STORE_OK)
        return;
    struct command *cmd = api_new_command(req, COMMAND_WALLET_TERMINATE, render_command);
    if (!cmd)
        return;
    char *id = arena_strndup(&req->arena, current.lago_id, strlen(current.lago_id));
    if (!id) {
        api_error(req, 500, "out_of_memory", NULL);
        return;
    }
    cmd->as.wallet_terminate.lago_id = id;
    api_submit(req, cmd);
}

void wallets_terminate(struct request *req)
{
    terminate(req, false);
}

void wallets_terminate_for_customer(struct request *req)
{
    terminate(req, true);
}

/* ---- metadata ------------------------------------------------------------------------------ */

static void render_metadata(struct command *cmd)
{
    struct store_wallet row;
    if (api_error_render_command(cmd, "wallet_not_found"))
        return;
    if (store_wallet_get(cmd->conn, cmd->org_id, cmd->wallet_lago_id, &row, cmd->arena) !=
        STORE_OK) {
        cmd->result = COMMAND_STORE_FAILED;
        return;
    }
    struct json_object *terms = json_tokener_parse(row.terms_json);
    struct jsonw w;
    cmd->http_status = 200;
    buf_reset(&cmd->response);
    jsonw_init(&w, &cmd->response);
    jsonw_object_begin(&w);
    term(&w, terms, "metadata", "{}");
    jsonw_object_end(&w);
    json_object_put(terms);
}

enum metadata_change { METADATA_REPLACE, METADATA_MERGE, METADATA_CLEAR, METADATA_DELETE_KEY };

/* The wallet's terms with its metadata changed: submitted as a wallet update. The wallet is
 * /wallets/{lago_id} or /customers/{external_id}/wallets/{code} (by_code); a key follows. */
static void change_metadata(struct request *req, bool by_code, enum metadata_change how)
{
    struct store_wallet current;
    if (api_wait_for_wallets(req) || find_wallet(req, by_code, &current) != STORE_OK)
        return;
    struct json_object *doc = NULL, *given = NULL, *terms = json_tokener_parse(current.terms_json),
                       *metadata;
    struct json_in_error err = {0};
    if (!terms) {
        api_error(req, 500, "store_corrupt", "a stored wallet could not be read");
        return;
    }
    if (how == METADATA_REPLACE || how == METADATA_MERGE) {
        const char *why;
        doc = json_in_parse(req->body.data, req->body.len, &why);
        if (!doc || !json_object_object_get_ex(doc, "metadata", &given) || !given) {
            api_error_bad_request(req,
                                  doc ? "param is missing or the value is empty: metadata" : why);
            goto done;
        }
        if (!valid_metadata(given, &err)) {
            api_error_validation_message(req, err.field, err.code, err.message);
            goto done;
        }
    }
    struct json_build in_terms, in_metadata;
    json_build_init(&in_terms, terms);
    if (!json_object_object_get_ex(terms, "metadata", &metadata) || !metadata ||
        how == METADATA_REPLACE || how == METADATA_CLEAR) {
        /* the terms hold it from here on: it is used below only once it was set */
        metadata = json_object_new_object();
        json_build_take(&in_terms, "metadata", metadata);
    }
    if (json_build_failed(&in_terms)) {
        api_error(req, 500, "out_of_memory", NULL);
        goto done;
    }
    /* What is sent is checked whole (above); what is kept, only for its count, and only when it
     * grows: a wallet an older Tally took with more keys, or a blank one, can still lose keys
     * one at a time (an audit found it could only be cleared whole). */
    int kept_before = json_object_object_length(metadata);
    if (how == METADATA_DELETE_KEY)
        json_object_object_del(metadata, req->params[by_code ? 2 : 1]);
    json_build_init(&in_metadata, metadata);
    if (given) {
        json_object_object_foreach(given, key, value)
        {
            json_build_share(&in_metadata, key, value);
        }
    }
    if (json_build_failed(&in_metadata)) {
        api_error(req, 500, "out_of_memory", NULL);
        goto done;
    }
    int kept = json_object_object_length(metadata);
    if (kept > WALLET_METADATA_KEYS_MAX && kept > kept_before) {
        api_error_validation_message(req, "metadata", "too_many_items", METADATA_KEYS_MESSAGE);
        goto done;
    }
    struct command *cmd = api_new_command(req, COMMAND_WALLET_UPDATE, render_metadata);
    if (!cmd)
        goto done;
    const char *terms_json = json_build_text(&in_terms, JSON_C_TO_STRING_PLAIN, &req->arena);
    if (!terms_json) {
        api_error(req, 500, "out_of_memory", NULL);
        goto done;
    }
    cmd->as.wallet_update.wallet = current;
    cmd->as.wallet_update.read = current;
    cmd->as.wallet_update.wallet.terms_json = terms_json;
    api_submit(req, cmd);
done:
    json_object_put(terms);
    json_object_put(doc);
}

void wallets_metadata_replace(struct request *req)
{
    change_metadata(req, false, METADATA_REPLACE);
}

void wallets_metadata_merge(struct request *req)
{
    change_metadata(req, false, METADATA_MERGE);
}

void wallets_metadata_clear(struct request *req)
{
    change_metadata(req, false, METADATA_CLEAR);
}

void wallets_metadata_delete_key(struct request *req)
{
    change_metadata(req, false, METADATA_DELETE_KEY);
}

void wallets_metadata_replace_for_customer(struct request *req)
{
    change_metadata(req, true, METADATA_REPLACE);
}

void wallets_metadata_merge_for_customer(struct request *req)
{
    change_metadata(req, true, METADATA_MERGE);
}

void wallets_metadata_clear_for_customer(struct request *req)
{
    change_metadata(req, true, METADATA_CLEAR);
}

void wallets_metadata_delete_key_for_customer(struct request *req)
{
    change_metadata(req, true, METADATA_DELETE_KEY);
}
