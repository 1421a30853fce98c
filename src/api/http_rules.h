/*
 * api/http_rules: what HTTP/1.1 requires of a request that libmicrohttpd (0.9.75, Debian 12's)
 * leaves to the application to check: the request line and header lines read whole, headers
 * repeated, query arguments holding a NUL.
 *
 * libmicrohttpd reads a repeated header by its first copy, hands out the request line, header
 * values and query arguments as C strings (cut at a raw NUL), keeps whitespace before a colon
 * as part of a header's name, and appends a folded line (obs-fold) to the header's *name*. It
 * framed a body by the first of two differing Content-Length headers, or by none when the only
 * one was written "Content-Length : N" or folded, and read the rest as the next request, run
 * with whatever key it carried and unseen by any proxy in front that framed the message
 * otherwise (request smuggling). Those checks run once the headers are read, before a byte of
 * the body, and what they refuse is answered with the connection closed. The others run before
 * routing (the query) or where the header is read (Idempotency-Key).
 *
 * Threads: any; each call reads one connection's headers.
 */
#ifndef TALLY_API_HTTP_RULES_H
#define TALLY_API_HTTP_RULES_H

#include <stdbool.h>
#include <stddef.h>

struct MHD_Connection;

/* The request line as libmicrohttpd handed it out. */
struct http_request_line {
    const char *method, *url, *version; /* as the access callback receives them */
    size_t target_len;                  /* strlen of the target when the URI log callback saw it */
};

/*
 * Why the request cannot be read as sent, or its body framed without guessing (RFC 9112 6.1,
 * 6.3), or NULL when it can. *status 400: a raw NUL in the request line or a header line, a
 * folded header line, a header name that is not a token (whitespace before the colon: RFC 9112
 * 5.1), Host more than once (RFC 9112 3.2), Authorization twice with different values,
 * Content-Length more than once (even with equal values: libmicrohttpd already refuses "47, 47"
 * in one header, and no client sends either), Transfer-Encoding beside Content-Length, or in an
 * HTTP/1.0 request (RFC 9112 6.1: its framing is faulty). *status 501: a Transfer-Encoding
 * libmicrohttpd does not frame as chunked (anything but "chunked", in any case, with no
 * whitespace after it), on which it waited until its timeout. A static string.
 */
const char *http_rules_framing(struct MHD_Connection *conn, const struct http_request_line *line,
                               int *status);

/*
 * Why the query string cannot be read as sent, or NULL: an argument's name or value holds a
 * NUL (%00). libmicrohttpd decodes them in place and the lookups hand them out as C strings,
 * so "?external_customer_id=c1%00x" read as "c1": an answer to another question than the one
 * asked, and than a proxy or a log saw. Read with the arguments' lengths, once per request.
 * A static string.
 */
const char *http_rules_query(struct MHD_Connection *conn);

/*
 * Whether every copy of header `name` the request holds has the same value (true when it holds
 * none or one). libmicrohttpd's lookup hands out the first copy only, so a header a client and
 * a proxy each added would be read as the first of them without a word.
 */
bool http_rules_one_value(struct MHD_Connection *conn, const char *name);

/* The length of a header value without the whitespace after it, which is not part of it (RFC
 * 9110 5.5); libmicrohttpd drops only the whitespace before it. */
size_t http_rules_value_len(const char *value, size_t size);

/*
 * Where the path starts in a request-target: past "http://authority" or "https://authority"
 * (any case) in absolute-form, which a server MUST accept (RFC 9112 3.2.2) and libmicrohttpd
 * hands on whole; the target itself otherwise. The authority is ignored, as Host is.
 */
const char *http_rules_origin_form(const char *target);

#endif
