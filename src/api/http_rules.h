/*
 * api/http_rules: what HTTP/1.1 requires of a request that libmicrohttpd (0.9.75, Debian 12's)
 * leaves to the application to check.
 *
 * libmicrohttpd frames a body by the first Content-Length it finds and reads whatever follows
 * as the next request. Two differing Content-Length headers made the tail of one request's
 * body a second request, run with the first one's key and unseen by any proxy in front that
 * framed by the other header (request smuggling). These checks run once the headers are read,
 * before a byte of the body: what they refuse is answered 400 and its connection closed.
 *
 * Threads: any; each call reads one connection's headers.
 */
#ifndef TALLY_API_HTTP_RULES_H
#define TALLY_API_HTTP_RULES_H

struct MHD_Connection;

/*
 * Why the request's body cannot be framed without guessing (RFC 9112 6.1, 6.3), or NULL when
 * it can: Content-Length given more than once (even with equal values: libmicrohttpd already
 * refuses two equal values written as one header, "47, 47", and no client sends either), or
 * Transfer-Encoding and Content-Length together. A static string.
 */
const char *http_rules_framing(struct MHD_Connection *conn);

/*
 * Why the query string cannot be read as sent, or NULL: an argument's name or value holds a
 * NUL (%00). libmicrohttpd decodes them in place and the lookups hand them out as C strings,
 * so "?external_customer_id=c1%00x" read as "c1": an answer to another question than the one
 * asked, and than a proxy or a log saw. Read with the arguments' lengths, once per request.
 */
const char *http_rules_query(struct MHD_Connection *conn);

#endif
