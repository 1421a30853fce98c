/*
 * engine/catalog_edit.h: the catalog put and delete commands, and whether a tax is one of the
 * organization's defaults (engine/catalog_edit.c).
 *
 * Each function's comment is at its definition. Threads: the writer's only.
 */
#ifndef TALLY_ENGINE_CATALOG_EDIT_H
#define TALLY_ENGINE_CATALOG_EDIT_H

#include "engine/engine_internal.h"

enum command_result catalog_edit_apply_put(struct engine *e, struct command *cmd);
enum command_result catalog_edit_apply_delete(struct engine *e, struct command *cmd);
bool catalog_edit_is_default_tax(const char *body);

#endif
