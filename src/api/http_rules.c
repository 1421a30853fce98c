/* api/http_rules: see http_rules.h. */
#include "api/http_rules.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

struct framing {
    unsigned content_lengths;
    unsigned transfer_encodings;
    bool only_chunked; /* every Transfer-Encoding reads "chunked" */
};

/* "chunked", in any case, with optional whitespace around it (RFC 9110 5.5) */
static bool is_chunked(const char *value, size_t size)
{
    static const char word[] = "chunked";
    while (size > 0 && (*value == ' ' || *value == '\t'))
        value++, size--;
    while (size > 0 && (value[size - 1] == ' ' || value[size - 1] == '\t'))
        size--;
    return size == sizeof word - 1 && strncasecmp(value, word, size) == 0;
}

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     size_t key_size, const char *value, size_t value_size)
{
    struct framing *f = cls;
    (void)kind;
    (void)key_size;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        f->content_lengths++;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->transfer_encodings++;
        f->only_chunked = f->only_chunked && value && is_chunked(value, value_size);
    }
    return MHD_YES;
}

const char *http_rules_framing(struct MHD_Connection *conn, int *status)
{
    struct framing f = {0, 0, true};
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, count_framing, &f);
    *status = 400;
    if (f.content_lengths > 1)
        return "the request has more than one Content-Length header; send one";
    if (f.content_lengths == 1 && f.transfer_encodings > 0)
        return "the request has both Transfer-Encoding and Content-Length; send one of them";
    *status = 501;
    if (f.transfer_encodings > 1 || !f.only_chunked)
        return "the only Transfer-Encoding served is chunked, alone";
    return NULL;
}

static enum MHD_Result find_nul(void *cls, enum MHD_ValueKind kind, const char *key,
                                size_t key_size, const char *value, size_t value_size)
{
    bool *found = cls;
    (void)kind;
    if ((key && memchr(key, '\0', key_size)) || (value && memchr(value, '\0', value_size))) {
        *found = true;
        return MHD_NO;
    }
    return MHD_YES;
}

const char *http_rules_query(struct MHD_Connection *conn)
{
    bool nul = false;
    MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, find_nul, &nul);
    return nul ? "a query argument holds %00 (a NUL), which no name or value may" : NULL;
}

struct one_value {
    const char *name;
    const char *first; /* NULL until a copy is seen */
    size_t first_size;
    bool differs;
};

static enum MHD_Result compare_copies(void *cls, enum MHD_ValueKind kind, const char *key,
                                      size_t key_size, const char *value, size_t value_size)
{
    struct one_value *o = cls;
    (void)kind;
    (void)key_size;
    if (strcasecmp(key, o->name) != 0)
        return MHD_YES;
    if (!o->first) {
        o->first = value;
        o->first_size = value_size;
        return MHD_YES;
    }
    o->differs = value_size != o->first_size || memcmp(value, o->first, value_size) != 0;
    return o->differs ? MHD_NO : MHD_YES;
}

bool http_rules_one_value(struct MHD_Connection *conn, const char *name)
{
    struct one_value o = {name, NULL, 0, false};
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, compare_copies, &o);
    return !o.differs;
}
