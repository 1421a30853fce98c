/*
 * engine/customer_edit.h: the customer commands, and a customer's active subscriptions, which
 * its first wallet also reads (engine/customer_edit.c).
 *
 * Each function's comment is at its definition. Threads: the writer's only.
 */
#ifndef TALLY_ENGINE_CUSTOMER_EDIT_H
#define TALLY_ENGINE_CUSTOMER_EDIT_H

#include "engine/engine_internal.h"

enum command_result customer_edit_apply_upsert(struct engine *e, struct command *cmd,
                                               struct org_state *org);
enum command_result customer_edit_apply_delete(struct engine *e, struct command *cmd);
bool customer_edit_active_subscriptions(struct engine *e, struct command *cmd, int64_t customer_id,
                                        struct store_subscription **rows, size_t *count);

#endif
