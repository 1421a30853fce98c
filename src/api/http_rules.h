/*
 * api/http_rules: what HTTP/1.1 requires of a request that libmicrohttpd (0.9.75, Debian 12's)
 * leaves to the application to check: headers repeated, query arguments holding a NUL.
 *
 * libmicrohttpd reads a repeated header by its first copy, and hands out query arguments as C
 * strings. It framed a body by the first of two differing Content-Length headers and read the
 * rest as the next request, run with the first one's key and unseen by any proxy in front that
 * framed by the other header (request smuggling); that check runs once the headers are read,
 * before a byte of the body, and what it refuses is answered 400 with the connection closed.
 * The others run before routing (the query) or where the header is read (Idempotency-Key).
 *
 * Threads: any; each call reads one connection's headers.
 */
#ifndef TALLY_API_HTTP_RULES_H
#define TALLY_API_HTTP_RULES_H

#include <stdbool.h>

struct MHD_Connection;

/*
 * Why the request's body cannot be framed without guessing (RFC 9112 6.1, 6.3), or NULL when
 * it can: Content-Length given more than once (even with equal values: libmicrohttpd already
 * refuses two equal values written as one header, "47, 47", and no client sends either), or
 * Transfer-Encoding and Content-Length together (*status 400); a transfer coding other than
 * "chunked" alone, which libmicrohttpd cannot frame and waited on until its timeout (*status
 * 501, RFC 9112 6.1). A static string.
 */
const char *http_rules_framing(struct MHD_Connection *conn, int *status);

/*
 * Why the query string cannot be read as sent, or NULL: an argument's name or value holds a
 * NUL (%00). libmicrohttpd decodes them in place and the lookups hand them out as C strings,
 * so "?external_customer_id=c1%00x" read as "c1": an answer to another question than the one
 * asked, and than a proxy or a log saw. Read with the arguments' lengths, once per request.
 */
const char *http_rules_query(struct MHD_Connection *conn);

/*
 * Whether every copy of header `name` the request holds has the same value (true when it holds
 * none or one). libmicrohttpd's lookup hands out the first copy only, so a header a client and
 * a proxy each added would be read as the first of them without a word.
 */
bool http_rules_one_value(struct MHD_Connection *conn, const char *name);

#endif
