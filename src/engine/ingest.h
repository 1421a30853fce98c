/*
 * engine/ingest.h: applying an events command, finding an event by its transaction id, and
 * what the rest of the engine needs of the identities and usages a command touched
 * (engine/ingest.c).
 *
 * Each function's comment is at its definition. Threads: the writer's only, but
 * ingest_fingerprint_events (engine_submit's caller, before the command is queued).
 */
#ifndef TALLY_ENGINE_INGEST_H
#define TALLY_ENGINE_INGEST_H

#include "engine/engine_internal.h"

enum command_result ingest_apply(struct engine *e, struct command *cmd);
enum command_result ingest_apply_event_find(struct engine *e, struct command *cmd);
bool ingest_debits_unrefusable(struct engine *e, struct command *cmd);
enum command_result ingest_evaluate_expression(struct engine *e, struct command *cmd,
                                               const struct sub_cache_metric *m,
                                               const struct event *in, tally_time timestamp,
                                               struct event *out, const char **code,
                                               const char **message);
void ingest_fingerprint_events(const struct engine *e, struct command *cmd);
void ingest_forget_added(struct engine *e, size_t mark);
void ingest_forget_touches(struct engine *e, size_t mark, uint64_t command);
struct identity ingest_identity_of(const struct engine *e, int64_t org_id,
                                   const char *external_subscription_id,
                                   const char *transaction_id);
tally_time ingest_org_now(struct engine *e, int64_t org_id);
enum command_result ingest_resolve_subscription(struct engine *e, struct command *cmd,
                                                struct ingest_cache *c, const struct event *ev,
                                                tally_time at);
const struct usage *ingest_touch_usage(struct engine *e, size_t i);

#endif
