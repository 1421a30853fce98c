/*
 * api/ledger_entries: GET /api/v1/ledger_entries, the double-entry ledger under every credit
 * balance (core/ledger.h), a Tally addition. Each entry is one line of a posting: its account,
 * direction (debit or credit), amount, and the account's balance before and after, shown in the
 * account's normal direction (a customer's unused credits are a positive liability).
 *
 * Filters: external_customer_id (every customer that had it, deleted ones too, as their
 * entries read it), wallet_id (a wallet's lago_id: every line of its postings, the
 * organization's side included), from and to (ISO 8601 on the entry's creation time, both
 * included). Newest first, paginated as Lago's lists.
 *
 * Threads: HTTP threads.
 */
#ifndef TALLY_API_LEDGER_ENTRIES_H
#define TALLY_API_LEDGER_ENTRIES_H

#include "api/request.h"

void ledger_entries_list(struct request *req);

#endif
