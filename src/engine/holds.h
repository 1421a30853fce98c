/*
 * engine/holds.h: the authorization (hold) commands, a capture's two steps, and the usage
 * reads and fee estimates that price without storing (engine/holds.c).
 *
 * Each function's comment is at its definition. Threads: the writer's only.
 */
#ifndef TALLY_ENGINE_HOLDS_H
#define TALLY_ENGINE_HOLDS_H

#include "engine/engine_internal.h"

enum command_result holds_apply_create(struct engine *e, struct command *cmd);
enum command_result holds_apply_void(struct engine *e, struct command *cmd);
enum command_result holds_apply_fees_estimate(struct engine *e, struct command *cmd);
enum command_result holds_apply_usage_read(struct engine *e, struct command *cmd);
enum command_result holds_captured(struct engine *e, struct command *cmd);
enum command_result holds_settle(struct engine *e, struct command *cmd);

#endif
