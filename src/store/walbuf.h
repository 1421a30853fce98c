/*
 * store/walbuf: a SQLite VFS over the default one that writes a commit's write-ahead log in one
 * system call.
 *
 * SQLite appends a commit to the log frame by frame, two writes a frame (its 24-byte header,
 * then the page): a hold's commit of four pages made nine pwrite calls, an ingest commit one
 * per 2 KiB on average. On a virtual machine a system call costs a trip through the
 * hypervisor, and the writer thread paid it for every one. This VFS gathers the log's
 * contiguous writes in memory and hands them to the file together when the commit's last
 * frame is complete, so a commit costs one pwrite per 64 KiB (WALBUF_WRITE_MAX).
 *
 * When the gathered bytes reach the file (each a flush):
 *   - after the page of a commit frame (a frame header whose "database size" field is not 0):
 *     the commit's write fails, and SQLite fails the commit, if they cannot be written;
 *   - before anything else touches the log: a read, a sync, a truncation, its size, a write
 *     that is not the next byte, a file control, closing;
 *   - when WALBUF_BYTES_MAX are gathered;
 *   - at the database file's shared-memory barrier, which SQLite calls before it publishes a
 *     commit to readers (the wal-index header): a safety net, as the commit frame flushed them
 *     already. Its error cannot be returned (the barrier returns nothing): it is kept and
 *     every later write and sync of the log fails with it, so nothing after it commits.
 * Nothing is acknowledged before the log is synced (store_sync), which follows the commit, so
 * a crash with bytes still gathered loses only a commit nobody was told about; SQLite's
 * recovery drops a commit whose frames are not all there, as after any torn write.
 *
 * Only the log of a connection opened with this VFS is gathered; its database and every other
 * file go straight through. Memory: up to WALBUF_BYTES_MAX per open log, allocated as needed
 * and kept for the connection's life.
 *
 * Thread safety: walbuf_register once, before any connection uses the VFS (store_open does);
 * a connection's files belong to the thread that uses the connection, as SQLite's do.
 */
#ifndef TALLY_STORE_WALBUF_H
#define TALLY_STORE_WALBUF_H

#include <stdbool.h>

/* The VFS's name, for sqlite3_open_v2. */
#define WALBUF_VFS_NAME "tally-walbuf"

/* Most bytes of the log gathered before they are written (a larger commit writes in pieces). */
#define WALBUF_BYTES_MAX (8u << 20)
/* Most bytes one write hands the default VFS: its unix file writes at most 128 KiB - 1 a call
 * (and reports a longer write as a full disk). A commit costs one write per 64 KiB. */
#define WALBUF_WRITE_MAX (64u << 10)

/* Registers the VFS over the default one (not as the default). Idempotent; false if SQLite
 * refused it. Call before any connection opens with WALBUF_VFS_NAME. */
bool walbuf_register(void);

#endif
