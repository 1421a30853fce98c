/*
 * engine/settle.h: the wallets' debits of a command's usage and of periods' carried units, and
 * a customer's first wallet (engine/settle.c).
 *
 * Each function's comment is at its definition. Threads: the writer's only.
 */
#ifndef TALLY_ENGINE_SETTLE_H
#define TALLY_ENGINE_SETTLE_H

#include "engine/engine_internal.h"

enum command_result settle_apply_wallet_create(struct engine *e, struct command *cmd);
enum command_result settle_debit_wallets(struct engine *e, struct command *cmd);
bool settle_periods_due(struct engine *e, int64_t org_id, const char *skip_customers,
                        tally_time now);
enum command_result settle_now(struct engine *e, struct command *cmd, int64_t subscription_id);
enum command_result settle_periods(struct engine *e, struct command *cmd, size_t max,
                                   const char *skip_customers, struct sweep_failure *at);

#endif
