/*
 * engine/applied_coupons.h: the applied coupon commands, and what a coupon's update and a
 * customer's deletion need of them (engine/applied_coupons.c).
 *
 * Each function's comment is at its definition. Threads: the writer's only.
 */
#ifndef TALLY_ENGINE_APPLIED_COUPONS_H
#define TALLY_ENGINE_APPLIED_COUPONS_H

#include "engine/engine_internal.h"

enum command_result applied_coupons_apply_create(struct engine *e, struct command *cmd);
enum command_result applied_coupons_apply_terminate(struct engine *e, struct command *cmd);
enum command_result applied_coupons_check_update(struct engine *e, struct command *cmd,
                                                 const struct catalog_item *current);
enum command_result applied_coupons_end(struct engine *e, struct command *cmd,
                                        struct applied_coupon *c);

#endif
