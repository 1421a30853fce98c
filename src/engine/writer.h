/*
 * engine/writer.h: the writer thread's loop and group commit (engine/writer.c).
 *
 * Each function's comment is at its definition. Threads: writer_main is the writer thread
 * (engine_start creates it); writer_urgent is pure and called by engine_submit on any thread;
 * the others run on the writer (or in engine_start, before it exists).
 */
#ifndef TALLY_ENGINE_WRITER_H
#define TALLY_ENGINE_WRITER_H

#include "engine/engine_internal.h"

void writer_publish_usage_counters(struct engine *e);
bool writer_recover_wallets(struct engine *e, struct command *first);
bool writer_urgent(const struct command *c);
void *writer_main(void *arg);

#endif
