/* json/customer_json: see customer_json.h. */
#include "json/customer_json.h"

#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "json/json_in.h"

const char *const customer_json_empty_shipping_address =
    "{\"address_line1\":null,\"address_line2\":null,\"city\":null,\"zipcode\":null,"
    "\"state\":null,\"country\":null}";

/* billing_configuration is stored as an object's members without their braces (the
 * renderer puts invoice_grace_period, kept apart, before them): braced for the merge. */
static const char *braced(struct arena *a, const char *members)
{
    return arena_printf(a, "{%s}", members ? members : "");
}

static const char *merge_members(struct arena *a, const char *stored, const char *sent)
{
    const char *s = braced(a, stored), *n = braced(a, sent);
    const char *merged = s && n ? json_in_merge_text(a, s, n) : NULL;
    size_t len = merged ? strlen(merged) : 0;
    return len >= 2 ? arena_strndup(a, merged + 1, len - 2) : NULL;
}

bool customer_json_merge_docs(struct arena *a, const struct customer *stored,
                              struct customer_input *in)
{
    const char **bc = &in->values.doc[CUSTOMER_BILLING_CONFIGURATION];
    const char **sa = &in->values.doc[CUSTOMER_SHIPPING_ADDRESS];
    if (in->has_doc[CUSTOMER_BILLING_CONFIGURATION] && *bc &&
        !(*bc = merge_members(a, stored->doc[CUSTOMER_BILLING_CONFIGURATION], *bc)))
        return false;
    /* Over the empty address, a new or cleared one still answers every member. */
    const char *base = stored->doc[CUSTOMER_SHIPPING_ADDRESS];
    if (in->has_doc[CUSTOMER_SHIPPING_ADDRESS] && *sa &&
        !(*sa = json_in_merge_text(a, base ? base : customer_json_empty_shipping_address, *sa)))
        return false;
    return true;
}

struct json_object *customer_json_billing_members(const char *members)
{
    /* fed to one tokener between the braces it lacks: no copy of the text to make */
    struct json_tokener *tok = json_tokener_new();
    struct json_object *doc = NULL;
    size_t len = strlen(members);
    if (!tok || len > INT_MAX)
        goto done;
    json_tokener_parse_ex(tok, "{", 1);
    if (len && (doc = json_tokener_parse_ex(tok, members, (int)len)) != NULL) {
        json_object_put(doc); /* ended early: not an object's members */
        doc = NULL;
        goto done;
    }
    if (json_tokener_get_error(tok) == json_tokener_continue)
        doc = json_tokener_parse_ex(tok, "}", 1);
done:
    json_tokener_free(tok);
    return doc;
}
