/* api/http_rules: see http_rules.h. */
#include "api/http_rules.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* libmicrohttpd ends a line at CR, LF or CRLF and writes a NUL over each of those bytes. */
#define LINE_END_MAX 2

/*
 * Where the header section lies, to tell whether each line was read whole. libmicrohttpd
 * (0.9.75) parses the request line and the header lines in place, in one buffer, in the order
 * sent: the request line from the method on, then each header's name and value, every line end
 * and colon overwritten with NULs. A line read whole is followed, past its value's last byte, by
 * its line end alone; a raw NUL in a value leaves the rest of the value there (the value handed
 * out stops at the NUL), and a folded line leaves the continuation there (libmicrohttpd appends
 * it to the header's name and keeps the value). When the buffer does not look so (another
 * libmicrohttpd) `known` is false and the check is skipped, rather than every request refused.
 */
struct section {
    bool known;
    uintptr_t end;        /* one past the blank line that ends the header section */
    const char *text_end; /* one past the text of the line read last */
};

static bool only_nuls(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != '\0')
            return false;
    return true;
}

/* Whether nothing but the ends of `lines` lines lies from `from` up to `to`. */
static bool only_line_ends(const char *from, uintptr_t to, size_t lines)
{
    uintptr_t f = (uintptr_t)from;
    return to > f && to - f >= lines && to - f <= lines * LINE_END_MAX && only_nuls(from, to - f);
}

/*
 * Whether the request line was read whole, and where the header section lies. libmicrohttpd
 * splits the line at the first space (overwritten with a NUL; more spaces may follow) and at the
 * last one (overwritten with a NUL), and a NUL in the method or the target cut the string handed
 * out short of that ("DELETE /customers/alice<NUL>bob" was routed as /customers/alice). A NUL
 * in the version, or no version, it refuses itself.
 */
static bool request_line_whole(struct MHD_Connection *conn, const struct http_request_line *line,
                               struct section *s)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    s->known = false;
    if (!info || !line->method || !line->url || !line->version || !line->version[0])
        return true;
    uintptr_t start = (uintptr_t)line->method, url = (uintptr_t)line->url,
              version = (uintptr_t)line->version;
    size_t method_len = strlen(line->method);
    s->end = start + info->header_size;
    if (!(start + method_len < url && url < version && version < s->end))
        return true; /* not the layout described above */
    s->known = true;
    s->text_end = line->version + strlen(line->version);
    const char *spaces = line->method + method_len + 1;
    for (; (uintptr_t)spaces < url; spaces++)
        if (*spaces != ' ')
            return false;
    return version - url == line->target_len + 1;
}

/* RFC 9110 5.6.2: tchar */
static bool is_token_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_token(const char *s, size_t size)
{
    if (size == 0)
        return false;
    for (size_t i = 0; i < size; i++)
        if (!is_token_char((unsigned char)s[i]))
            return false;
    return true;
}

size_t http_rules_value_len(const char *value, size_t size)
{
    while (size > 0 && (value[size - 1] == ' ' || value[size - 1] == '\t'))
        size--;
    return size;
}

struct header_walk {
    struct section section;
    bool broken_line; /* a header line not read whole */
    bool bad_name;
    unsigned hosts;
    unsigned content_lengths;
    unsigned transfer_encodings;
    bool only_chunked; /* every Transfer-Encoding is one libmicrohttpd frames as chunked */
};

/* What libmicrohttpd frames as chunked: the value "chunked", in any case, as it compares it
 * (it drops the whitespace before a value, not the whitespace after). */
static bool is_chunked(const char *value, size_t size)
{
    static const char word[] = "chunked";
    return size == sizeof word - 1 && strncasecmp(value, word, size) == 0;
}

static enum MHD_Result read_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    struct header_walk *w = cls;
    (void)kind;
    if (!value) {
        value = "";
        value_size = 0;
    }
    if (w->section.known) {
        if (!only_line_ends(w->section.text_end, (uintptr_t)key, 1))
            w->broken_line = true;
        w->section.text_end = value + value_size;
    }
    if (!is_token(key, key_size))
        w->bad_name = true;
    if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) {
        w->hosts++;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        w->content_lengths++;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        w->transfer_encodings++;
        w->only_chunked = w->only_chunked && is_chunked(value, value_size);
    }
    return MHD_YES;
}

const char *http_rules_framing(struct MHD_Connection *conn, const struct http_request_line *line,
                               int *status)
{
    struct header_walk w = {.only_chunked = true};
    *status = 400;
    if (!request_line_whole(conn, line, &w.section))
        return "the request line holds a NUL, which it may not";
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, read_header, &w);
    /* the last header line, then the blank line */
    if (w.section.known && !only_line_ends(w.section.text_end, w.section.end, 2))
        w.broken_line = true;
    if (w.broken_line)
        return "a header line holds a NUL or is folded onto the next line, which none may";
    if (w.bad_name)
        return "a header name holds whitespace or another character a name may not";
    if (w.hosts > 1)
        return "the request has more than one Host header; send one";
    if (!http_rules_one_value(conn, MHD_HTTP_HEADER_AUTHORIZATION))
        return "Authorization is sent more than once with different values";
    if (w.content_lengths > 1)
        return "the request has more than one Content-Length header; send one";
    if (w.content_lengths == 1 && w.transfer_encodings > 0)
        return "the request has both Transfer-Encoding and Content-Length; send one of them";
    if (w.transfer_encodings > 0 && line->version &&
        strcasecmp(line->version, MHD_HTTP_VERSION_1_0) == 0)
        return "an HTTP/1.0 request may not have Transfer-Encoding; send Content-Length";
    *status = 501;
    if (w.transfer_encodings > 1 || !w.only_chunked)
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
    if (!value) {
        value = "";
        value_size = 0;
    }
    value_size = http_rules_value_len(value, value_size);
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

const char *http_rules_origin_form(const char *target)
{
    static const char *const schemes[] = {"http://", "https://"};
    for (size_t i = 0; i < sizeof schemes / sizeof *schemes; i++) {
        size_t len = strlen(schemes[i]);
        if (strncasecmp(target, schemes[i], len) == 0)
            return target + len + strcspn(target + len, "/?");
    }
    return target;
}
