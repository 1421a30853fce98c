/*
 * api/routes: the table of every route Tally answers, and the matcher.
 *
 * One table, read top to bottom, is the whole API surface: method, path pattern ("{}"
 * captures one path segment), the name used in logs and metrics, whether it needs an API
 * key, and the handler. Adding a resource is adding lines here.
 *
 * Threads: any (the table is constant).
 */
#ifndef TALLY_API_ROUTES_H
#define TALLY_API_ROUTES_H

#include <stdbool.h>

#include "api/request.h"
#include "util/arena.h"

struct catalog_resource;

struct route {
    const char *method;
    const char *pattern;
    const char *name;
    bool authenticated;
    void (*handle)(struct request *req);
    const struct catalog_resource *resource; /* for the generic catalog handlers */
};

extern const struct route api_routes[];
extern const int api_route_count;

enum route_match {
    ROUTE_FOUND,
    ROUTE_WRONG_METHOD, /* the path exists with other methods: 405 */
    ROUTE_NO_PATH,      /* 404 */
    ROUTE_BAD_SEGMENT,  /* a captured segment does not decode: 400 */
};

/* The methods one path answers, as a 405's Allow header lists them ("GET, HEAD, PUT, DELETE"). */
#define ROUTES_ALLOW_MAX 64
/* The longest path (bytes, NUL included) whose trailing slash routes_match drops: a longer one
 * is matched as sent, and its trailing slash then matches no route (404). Far over any route's
 * path; the request's headers, its path with them, are at most API_HEADER_MAX. */
#define ROUTES_PATH_MAX 2048

/*
 * Finds the route for method and path (HEAD finds the GET route), the path as sent
 * (percent-encoded): it is split into segments first, so that an encoded '/' ("%2F") stays inside
 * its segment. On ROUTE_FOUND sets *route and puts the captured segments, percent-decoded, into
 * params[] (allocated in `a`). On ROUTE_WRONG_METHOD, `allow` lists the methods the path does
 * answer.
 */
enum route_match routes_match(const char *method, const char *path, int *route,
                              const char *params[API_PATH_PARAMS_MAX], struct arena *a,
                              char allow[ROUTES_ALLOW_MAX]);

#endif
