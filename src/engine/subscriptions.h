/*
 * engine/subscriptions.h: the subscription commands and the rules every change of a
 * subscription's end or plan follows (engine/subscriptions.c).
 *
 * Each function's comment is at its definition. Threads: the writer's only.
 */
#ifndef TALLY_ENGINE_SUBSCRIPTIONS_H
#define TALLY_ENGINE_SUBSCRIPTIONS_H

#include "engine/engine_internal.h"

enum command_result subscriptions_apply_create(struct engine *e, struct command *cmd,
                                               struct org_state *org);
enum command_result subscriptions_apply_update(struct engine *e, struct command *cmd);
enum command_result subscriptions_apply_terminate(struct engine *e, struct command *cmd);
enum command_result subscriptions_align_scheduled(struct engine *e, struct command *cmd,
                                                  const struct subscription *sub,
                                                  const struct subscription *was);
const struct tz_zone *subscriptions_customer_zone(struct engine *e, const char *timezone);
enum command_result subscriptions_end_of_plan(struct engine *e, struct command *cmd,
                                              const struct catalog_item *plan);
enum command_result subscriptions_end(struct engine *e, struct command *cmd,
                                      struct subscription *sub);
enum command_result subscriptions_give_back_usage(struct engine *e, struct command *cmd,
                                                  const struct usage *u);
enum command_result subscriptions_debit_raised(struct engine *e, struct command *cmd,
                                               const struct usage *u);
enum command_result subscriptions_rebound_holds(struct engine *e, struct command *cmd,
                                                const struct subscription *live);
enum command_result subscriptions_recheck_downgrades(struct engine *e, struct command *cmd,
                                                     const struct catalog_item *was,
                                                     const struct catalog_item *plan);
enum command_result subscriptions_service_end(struct engine *e, struct command *cmd,
                                              const struct subscription *live, tally_time *end);

#endif
