/*
 * engine/sweep_quarantine: the customers the real clock's sweep passes over for a while.
 *
 * The real clock sweeps each organization as one command (COMMAND_SWEEP: holds, grants,
 * rules, wallets that came due, then periods to settle). One customer whose data cannot be
 * swept (a wallet that no longer loads, a hold that cannot be released) fails that command,
 * which is undone as a whole; before, it failed again at the same item a second later, for
 * ever, and no hold, grant or rule of any customer of the organization moved again, silently.
 *
 * Now the sweep says which customer it was sweeping when it failed (struct sweep_failure); the
 * writer puts that customer here, with a time to try it again (SWEEP_QUARANTINE_FIRST_USEC,
 * doubling with each failure up to SWEEP_QUARANTINE_MAX_USEC), and sweeps the organization
 * again without it. What comes due for a customer waiting here is left out of what the sweep
 * reads and of what makes an organization due (store_due's skip_customers), so an idle server
 * still writes nothing. Once its time comes the customer is swept with the others again, and
 * leaves when a sweep with it succeeds (or finds nothing of it due). A failure that names no
 * customer (customer_id 0) holds back the organization's whole sweep the same way.
 *
 * Commands that touch a customer directly (events, holds, top-ups) do not look here: they
 * bring the customer up to date themselves, and fail or succeed on their own.
 *
 * Memory only: a restart clears it, and tries everyone again. Threads: the writer only (the
 * one that sweeps and records failures), so there is no lock.
 */
#ifndef TALLY_ENGINE_SWEEP_QUARANTINE_H
#define TALLY_ENGINE_SWEEP_QUARANTINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/timestamp.h"
#include "core/wallet.h"
#include "util/arena.h"

#define SWEEP_QUARANTINE_FIRST_USEC ((tally_time)60 * TIMESTAMP_USEC_PER_SEC)
#define SWEEP_QUARANTINE_MAX_USEC ((tally_time)3600 * TIMESTAMP_USEC_PER_SEC)

/* Where a sweep was when it failed. */
struct sweep_failure {
    bool failed;          /* the sweep itself failed (not only the group it was committed in) */
    int64_t customer_id;  /* the customer it was sweeping; 0: none in particular */
    const char *doing;    /* what it was doing, static text ("releasing hold", ...) */
    char item[UUID_TEXT]; /* the hold's or wallet's lago id, the subscription's row id */
};

struct sweep_quarantine_entry {
    int64_t org_id;
    int64_t customer_id; /* 0: the organization's whole sweep */
    tally_time retry_at; /* passed over before it */
    tally_time wait;     /* the last wait given: the next failure doubles it */
};

struct sweep_quarantine {
    struct sweep_quarantine_entry *entries; /* malloc'd, in no particular order */
    size_t count, cap;
};

void sweep_quarantine_free(struct sweep_quarantine *q);

/* Whether the organization's whole sweep waits at `now` (a failure that named no customer). */
bool sweep_quarantine_org_waits(const struct sweep_quarantine *q, int64_t org_id, tally_time now);

/*
 * The organization's customers its sweep passes over at `now`, as store_due's skip_customers
 * wants them ("[3,17]", in `a`), or NULL when there are none. False if `a` has no room.
 */
bool sweep_quarantine_skipped(const struct sweep_quarantine *q, int64_t org_id, tally_time now,
                              struct arena *a, const char **skip_customers);

/*
 * The organization's sweep failed at customer_id (0: at none in particular) at `now`: it is
 * passed over until now + its wait, which starts at SWEEP_QUARANTINE_FIRST_USEC and doubles at
 * each failure up to SWEEP_QUARANTINE_MAX_USEC. Returns that wait, or 0 when it could not be
 * recorded (no memory: the next sweep meets the failure again, and tries to record it again).
 */
tally_time sweep_quarantine_fail(struct sweep_quarantine *q, int64_t org_id, int64_t customer_id,
                                 tally_time now);

/*
 * The organization's sweep at `now` succeeded, or found nothing due: those it did not pass
 * over (their time had come) were swept or had nothing to sweep, and leave.
 */
void sweep_quarantine_passed(struct sweep_quarantine *q, int64_t org_id, tally_time now);

/* Entries held (customers, and organizations held back as a whole). */
size_t sweep_quarantine_count(const struct sweep_quarantine *q);

#endif
