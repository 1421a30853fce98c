/*
 * api/conn_watch: closes the connections whose client has closed its side while nothing is
 * being answered on them, which libmicrohttpd 0.9.75 does not see.
 *
 * libmicrohttpd polls with edge-triggered epoll and takes a short read for "nothing more to
 * read" (connection.c, recv_param_adapter). A FIN that arrives with the last bytes of a request
 * not yet whole (a client that gives up mid-request, or crashes) raises no further edge, so it
 * is never read, and the connection waits for its idle timeout (60 s) holding one of the 4096
 * slots: an audit shut every client out for a minute with 10,000 such connections sent in two
 * seconds. Its poll mode reads the FIN but visits every connection on every wakeup (a keep-alive
 * client's 18,800 requests a second fell to 600 beside 4,000 idle connections).
 *
 * So a thread looks at every connection's TCP state every CONN_WATCH_INTERVAL_MS. One in
 * CLOSE_WAIT (its peer's FIN received) that has no answer queued or awaited and has seen no
 * callback between two looks in a row is shut (shutdown(2)); the hang-up wakes libmicrohttpd's
 * epoll, and it closes the connection as one it saw closed (the request, if any, counted 499).
 * A connection whose request is whole is never shut: its client may have half-closed and still
 * be reading (RFC 9112 9.6).
 *
 * Threads: add, remove, touch and busy on the connection's HTTP thread; the rest any. A slot's
 * descriptor is shut only under the watch's lock, and removed under it before libmicrohttpd
 * closes it (MHD_CONNECTION_NOTIFY_CLOSED comes first), so a descriptor number reused by a new
 * connection is never shut by mistake.
 */
#ifndef TALLY_API_CONN_WATCH_H
#define TALLY_API_CONN_WATCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define CONN_WATCH_INTERVAL_MS 250

struct conn_watch;
struct conn_slot;

/* Starts the thread, which counts each connection it shuts in *closes; NULL if it cannot (out
 * of memory, no thread). */
struct conn_watch *conn_watch_start(_Atomic uint64_t *closes);
/* Stops the thread and frees the watch; every slot must have been removed. */
void conn_watch_stop(struct conn_watch *w);

/* A connection was accepted on descriptor fd; NULL if out of memory (it is then not watched).
 * The slot is the watch's: the caller holds it until it hands it to conn_watch_remove, which
 * frees it. */
struct conn_slot *conn_watch_add(struct conn_watch *w, int fd);
/* The connection is about to be closed; `s` may be NULL. */
void conn_watch_remove(struct conn_watch *w, struct conn_slot *s);
/* libmicrohttpd called back for the connection: it is making progress. `s` may be NULL. */
void conn_watch_touch(struct conn_slot *s);
/* Whether a whole request is being handled, or its answer awaited or queued, on the connection
 * (never shut while so). Marked busy under the watch's lock, so no look shuts it after. */
void conn_watch_busy(struct conn_slot *s, bool busy);

#endif
