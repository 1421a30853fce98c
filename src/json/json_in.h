/*
 * json/json_in: reading JSON (request bodies, stored definitions) with json-c, within Tally's
 * limits.
 *
 * json-c parses (strict mode, nesting capped at API_JSON_DEPTH_MAX) a body util/utf8 found to
 * be UTF-8 (json-c's own check is looser); then json/json_check refuses what json-c lets
 * through that JSON is not; the
 * getters here copy what a handler keeps into the request arena and say precisely what is
 * wrong with a field, as Lago's (field, code) pairs. Numbers are never read through a
 * double: integers through json-c's int64 with a range check (json_in_exact_int64), decimals
 * from their source text by core/money.
 *
 * Threads: any; each call works on its own request's objects.
 */
#ifndef TALLY_API_JSON_IN_H
#define TALLY_API_JSON_IN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/money.h"
#include "core/timestamp.h"
#include "util/arena.h"

struct json_object;

#define API_JSON_DEPTH_MAX 32

/* Why a field was refused; the codes are Lago's where Lago has one. */
struct json_in_error {
    const char *field;
    const char *code;
    const char *message; /* Tally's, where Lago has none to give (set by the caller; or NULL) */
    /* A second code for the same field, where Lago names two ("invalid_paid_credits",
     * "invalid_amount"): set by the caller, or NULL. Only api_error_json_in renders it. */
    const char *also;
};

/* Records a refusal and returns false, so parsers can `return json_in_refuse(...)`. */
bool json_in_refuse(struct json_in_error *err, const char *field, const char *code);

/*
 * Refuses (not_supported, on the key) the first of `keys` (NULL-terminated) that `obj` sets:
 * Lago fields of features Tally does not serve yet, which a 200 would silently ignore. Null
 * and an empty array set nothing, and pass. False if one was refused.
 */
bool json_in_refuse_unserved(struct json_object *obj, const char *const *keys,
                             struct json_in_error *err);

/*
 * Parses a whole body. Returns the root (caller releases with json_object_put) or NULL with
 * a short human reason in *why (a static string).
 */
struct json_object *json_in_parse(const char *body, size_t len, const char **why);

/*
 * Whether JSON text holds the escape \u0000 (a NUL in a string). json-c keeps a value's
 * length but cuts a key at its NUL ("plan\u0000x" becomes "plan", and overwrites it), so a
 * request that holds one is refused whole, before any parse. Any thread.
 */
bool json_in_has_nul_escape(const char *text, size_t len);

/* The object under `key` of `root`, which must be a JSON object: Lago's "root key". NULL when
 * there is none or it is no object. Borrowed from `root`: valid while root is (no reference
 * is taken). */
struct json_object *json_in_root(struct json_object *root, const char *key);

/*
 * Lays the members of `sent` over those of `stored` (both objects), in place: each member sent
 * replaces the stored one of that name (null too, which clears it), the others stay. Shallow:
 * an object or array sent replaces the stored one whole. This is how an update that names
 * some fields reads: Lago's update services set an attribute only when its key is given.
 * False if either is not an object or memory ran out (`stored` may then be half merged).
 */
bool json_in_merge(struct json_object *stored, struct json_object *sent);

/*
 * The same over two objects held as JSON text (stored canonical documents): the merged
 * object's text, in `a`; NULL if either text is not an object or memory ran out.
 */
const char *json_in_merge_text(struct arena *a, const char *stored, const char *sent);

enum json_in_result {
    JSON_IN_ABSENT,  /* key not there: leave the value alone */
    JSON_IN_NULL,    /* explicitly null */
    JSON_IN_VALUE,   /* a value of the right type */
    JSON_IN_INVALID, /* wrong type or out of range: *err says which */
};

/*
 * The integer `v` (a json_type_int) if json-c kept it exactly. json-c keeps no text for
 * integers and clamps silently: a longer positive one to UINT64_MAX (held unsigned, so that
 * it reads as INT64_MAX through the int64 getter), a longer negative one to INT64_MIN. So
 * INT64_MAX is exact when the unsigned value says so too, and INT64_MIN never is (it cannot
 * be told from -2^63 - 1): exact means in [INT64_MIN + 1, INT64_MAX].
 */
bool json_in_exact_int64(struct json_object *v, int64_t *out);
/* An integer of a body Tally stored (an amount of cents, a count): false unless `v` is a JSON
 * integer held exactly, so a damaged body fails its read instead of passing through a
 * double or strtoll. */
bool json_in_stored_int(struct json_object *v, int64_t *out);

/*
 * Whether text is blank: empty or only white space, which Lago's `blank?` (its presence
 * validations, /\A[[:space:]]*\z/) takes for none: ASCII's and Unicode's (U+00A0, U+3000,
 * ...; not the zero-width characters, which are not white space). Audits found "   " accepted
 * as a transaction id (billed, so a retry with the real id billed twice) and as a code, a name
 * or an external id, and a metadata filter of U+3000 taken for a value.
 */
bool json_in_blank(const char *s, size_t len);

/* Ruby's blank? of a JSON value (NULL is JSON null): null, false, [], {}, or a string blank by
 * json_in_blank. */
bool json_in_value_blank(struct json_object *v);

/*
 * `s` without the ASCII white space around it (space, \t \n \v \f \r), as Ruby's
 * String#strip leaves a text Lago strips before keeping it. Borrows `s`: the result is `s`
 * itself or a copy on `a`; NULL when out of memory.
 */
const char *json_in_strip(struct arena *a, const char *s);

/* A string of at most max_len bytes, copied into the arena. */
enum json_in_result json_in_string(struct json_object *obj, const char *key, size_t max_len,
                                   struct arena *a, const char **out, struct json_in_error *err);
/* A required string: absent, null or blank (json_in_blank) is value_is_mandatory. */
bool json_in_required_string(struct json_object *obj, const char *key, size_t max_len,
                             struct arena *a, const char **out, struct json_in_error *err);
/*
 * An identifier: a string as json_in_string takes it, or an integer, taken as its decimal
 * text ("12345"), as Lago's string columns take the integer ids that clients in Python or Ruby
 * send (past 64 bits: value_is_out_of_range). Another type is invalid_type.
 */
enum json_in_result json_in_id(struct json_object *obj, const char *key, size_t max_len,
                               struct arena *a, const char **out, struct json_in_error *err);
/* A required one: absent, null or blank is value_is_mandatory. */
bool json_in_required_id(struct json_object *obj, const char *key, size_t max_len, struct arena *a,
                         const char **out, struct json_in_error *err);
/* An integer in [min, max]. */
enum json_in_result json_in_int(struct json_object *obj, const char *key, int64_t min, int64_t max,
                                int64_t *out, struct json_in_error *err);
/*
 * A decimal given as a JSON number or a string ("20", 20, 20.5, "1e-7"), read from its
 * source text by core/money: exact, never through a double. A JSON integer past the 64 bits
 * the JSON parser keeps (or -2^63, which every longer negative one becomes) is refused
 * integer_out_of_range, as events' properties are, with JSON_IN_INTEGER_OUT_OF_RANGE_MESSAGE.
 */
#define JSON_IN_INTEGER_OUT_OF_RANGE_MESSAGE                                                       \
    "a JSON integer past 64 bits (-9223372036854775807 to 9223372036854775807) is not kept "       \
    "exactly by the JSON parser: send it as a decimal string (\"10000000000000000000\")"
enum json_in_result json_in_decimal(struct json_object *obj, const char *key, money_t *out,
                                    struct json_in_error *err);
/* An array of at most max_items non-empty strings of at most max_len bytes each. */
enum json_in_result json_in_string_array(struct json_object *obj, const char *key, size_t max_items,
                                         size_t max_len, struct arena *a, const char ***out,
                                         size_t *count, struct json_in_error *err);
/* The same for a value already in hand (not under a key); `key` names it in refusals. */
bool json_in_string_list(struct json_object *v, const char *key, size_t max_items, size_t max_len,
                         struct arena *a, const char ***out, size_t *count,
                         struct json_in_error *err);
/* The same, where an item may also be a JSON integer, read as its decimal text (1 is "1"): a
 * filter's values, which Lago keeps in string[] columns that Rails casts an Integer into so.
 * Other numbers are refused: Ruby would write a float's own text (1.0e+20), not reproduced.
 * An empty string is an item too, as Lago's filters take it (values must only be present). */
bool json_in_text_list(struct json_object *v, const char *key, size_t max_items, size_t max_len,
                       struct arena *a, const char ***out, size_t *count,
                       struct json_in_error *err);
/* An instant as ISO 8601 text ("2026-11-26T10:00:00Z"), read as Lago reads one it is sent
 * (timestamp_parse_rails_iso8601: a time without an offset is UTC's), or as RFC 3339 with a
 * space for the T (timestamp_parse_iso8601); anything else is invalid_date. A string of white
 * space alone is JSON_IN_NULL, as null is (ActiveRecord's cast of "" to nil). */
enum json_in_result json_in_instant(struct json_object *obj, const char *key, tally_time *out,
                                    struct json_in_error *err);
enum json_in_result json_in_bool(struct json_object *obj, const char *key, bool *out,
                                 struct json_in_error *err);

#endif
