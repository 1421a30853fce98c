/*
 * engine/readback.h: the start's read-back of identities and usages from the stored events and
 * the snapshot, and the snapshots saved while running and at a clean stop (engine/readback.c).
 *
 * Each function's comment is at its definition. Threads: the writer's only (or engine_start and
 * engine_stop, while no writer runs).
 */
#ifndef TALLY_ENGINE_READBACK_H
#define TALLY_ENGINE_READBACK_H

#include "engine/engine_internal.h"

bool readback_load_events(struct engine *e, char err[STORE_ERR_MAX]);
bool readback_rescan_usage(struct engine *e);
bool readback_rescan_usage_from(struct engine *e, int64_t floor);
void readback_clear_usage_floor(struct store *st);
bool readback_save_snapshot(struct engine *e, char err[STORE_ERR_MAX]);
void readback_reap_snapshot(struct engine *e, bool stop);
void readback_snapshot_while_running(struct engine *e);

#endif
