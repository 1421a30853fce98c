/*
 * api/catalog: the five routes every catalog resource has (taxes, billable metrics, plans,
 * add-ons, coupons), written once.
 *
 *   POST   /<plural>          create; an existing code is 422 value_already_exist
 *   PUT    /<plural>/{code}   update: the fields given replace the stored ones (the code too)
 *   GET    /<plural>/{code}
 *   GET    /<plural>          a page, newest first
 *   DELETE /<plural>/{code}   answers the deleted item
 *
 * A resource supplies a descriptor: how to parse a definition into canonical JSON (and the
 * other items it names), and how to render an item. Create parses the client's object;
 * update parses the stored body with the client's fields laid over it (core/catalog.h says
 * why), and the writer refuses the update as stale if the item changed in between.
 *
 * Threads: HTTP threads; `render` also runs on the writer (conn is then the writer's), `count`
 * never does.
 */
#ifndef TALLY_API_CATALOG_H
#define TALLY_API_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include "json/json_in.h"
#include "api/request.h"
#include "core/catalog.h"
#include "util/jsonw.h"

struct json_object;
struct store_conn;

/* What a resource's parse produces. Strings and arrays live in the request arena. */
struct catalog_definition {
    const char *code;
    const char *body; /* canonical JSON object, without the code */
    struct catalog_ref *refs;
    size_t ref_count;
    bool has_expiration_at; /* a coupon's: the writer refuses to create one already expired */
    tally_time expiration_at;
    /* a static code the writer refuses the definition with (405) once its refs exist */
    const char *not_allowed_code;
};

struct catalog_resource {
    enum catalog_kind kind;
    /*
     * Reads a whole definition from obj (every field, since an update has been merged in).
     * On refusal sets *err (Lago's field and code) and returns false.
     */
    bool (*parse)(struct request *req, struct json_object *obj, struct catalog_definition *out,
                  struct json_in_error *err);
    /*
     * Optional: lays an update's fields over the stored definition (json_in_merge when NULL)
     * for a resource whose members are merged deeper (a plan's charges named by id).
     * False if memory ran out.
     */
    bool (*merge)(struct request *req, struct json_object *stored, struct json_object *sent);
    /*
     * Optional: readies a create's fields before the parse, as `merge` does an update's (a new
     * plan's charges leave the ids sent with them). False if memory ran out.
     */
    bool (*prepare_create)(struct request *req, struct json_object *sent);
    /*
     * Optional: drops from an update's fields, before the merge, those the item's state keeps
     * (a coupon applied keeps its terms, as Lago's), and sets *pruned when the state does.
     * Answers the request itself and returns false on failure.
     */
    bool (*prune_update)(struct request *req, const struct catalog_item *existing,
                         struct json_object *sent, bool *pruned);
    /*
     * Optional: refuses an update that would break what depends on the item (a plan's
     * interval under live subscriptions). Answers the request itself and returns false.
     */
    bool (*check_update)(struct request *req, const struct catalog_item *existing,
                         const struct catalog_definition *updated);
    /* Writes one item (without its root key); may look up related items through conn. `now`:
     * the organization's clock (a coupon past its expiry answers terminated_at). */
    void (*render)(struct jsonw *w, const struct catalog_item *item, struct store_conn *conn,
                   struct arena *a, tally_time now);
    /* Listed by name, then newest first (Lago's taxes), instead of newest first. */
    bool listed_by_name;
    /*
     * Optional: members an answer ends with that are counted from the store, not kept with the
     * item (a tax's usage counts, as Lago's serializer counts them). Writes into w[i], whose
     * object is open, them for what names codes[i], the item answered having bodies[i], for
     * n items at once (a list's page: what the store visits for them is visited once, not
     * once per item), through a reader's connection: a read counts as it renders; a change
     * counts on its HTTP thread just before it is submitted, as the change will leave them
     * (what names an item follows its renames), and the writer writes that text: the one
     * writer must not visit an organization's rows for an answer. codes[0] NULL (n 1, conn
     * NULL): the item is being deleted, and what named it is let go with it. The answer is
     * then the common shape (catalog_open_item) and these members, and `render` is not
     * called. `a`: for what the count needs while it runs. False if the store failed or
     * memory ran out.
     */
    bool (*count)(struct jsonw *w, struct store_conn *conn, int64_t org_id,
                  const char *const *codes, const char *const *bodies, size_t n, struct arena *a);
};

void catalog_create(struct request *req);
void catalog_update(struct request *req);
void catalog_get(struct request *req);
void catalog_list(struct request *req);
void catalog_delete(struct request *req);

/* ---- for resources ------------------------------------------------------------------------ */

/*
 * Ends a parse: when `ok`, the canonical body written into b becomes def->body (copied into
 * the request arena). Frees b either way and returns whether the definition stands.
 */
bool catalog_finish_body(struct request *req, bool ok, struct buf *b,
                         struct catalog_definition *def, struct json_in_error *err);
/* The whole render of a resource whose answer is exactly its common shape (taxes, metrics). */
void catalog_render_plain(struct jsonw *w, const struct catalog_item *item, struct store_conn *conn,
                          struct arena *a, tally_time now);
/* Writes the members of a stored body (an object's text without its braces) into w's object. */
void catalog_write_body_members(struct jsonw *w, const char *body);
/* Parses a stored body (always valid JSON: Tally wrote it). Release with json_object_put. */
struct json_object *catalog_parse_body(const char *body);
/*
 * Opens an item's object and writes what every resource shares: lago_id, code, the body's
 * members, created_at, updated_at. The caller adds its own fields and closes the object.
 */
void catalog_open_item(struct jsonw *w, const struct catalog_item *item);
/*
 * Writes "taxes": [<tax objects>] for the tax codes listed under "tax_codes" in a body
 * (Lago renders applied taxes as full objects); codes whose tax is gone are skipped.
 */
void catalog_render_taxes(struct jsonw *w, struct json_object *body, int64_t org_id,
                          struct store_conn *conn, struct arena *a);
/* The same array alone, for the codes of a JSON array (`codes`; NULL or not an array: []). */
void catalog_render_tax_array(struct jsonw *w, struct json_object *codes, int64_t org_id,
                              struct store_conn *conn, struct arena *a);
/* Records that the definition names another item; false (refusal in err) past the limit. */
bool catalog_add_ref(struct request *req, struct catalog_definition *def, enum catalog_kind kind,
                     const char *code, const char *lago_id, struct json_in_error *err);
/*
 * The codes each once, in the order first named, kept at the front of `codes` (n of them);
 * returns how many. A tax applies once however often it is named, so a fee's limit
 * (CATALOG_TAXES_MAX) counts these: past it, the refusal says so with catalog_taxes_message.
 */
size_t catalog_distinct_codes(const char **codes, size_t n);
extern const char catalog_taxes_message[];
/* Reads "tax_codes" into refs (appending) and writes it canonically into w. */
bool catalog_parse_tax_codes(struct request *req, struct json_object *obj, struct jsonw *w,
                             struct catalog_definition *def, struct json_in_error *err);

#endif
