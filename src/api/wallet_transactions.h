/*
 * api/wallet_transactions: credits in and out of wallets, in Lago's shapes.
 *
 *   POST /wallet_transactions              paid, granted and voided credits; answers
 *                                          {"wallet_transactions":[...]} as Lago does
 *   GET  /wallet_transactions/{id}
 *   GET  /wallets/{id}/wallet_transactions  (status, transaction_type, transaction_status)
 *   GET  /wallet_transactions/{id}/consumptions   which debits a grant paid for
 *   GET  /wallet_transactions/{id}/fundings       which grants paid for a debit
 *
 * Tally adds `expiration_at` on a top-up (the grant's own expiry) and the transaction
 * statuses `usage` and `usage_refund` for usage debited in real time. POST honours
 * Idempotency-Key, so a retried top-up counts once.
 *
 * Threads: HTTP threads (handlers); render functions on the writer.
 */
#ifndef TALLY_API_WALLET_TRANSACTIONS_H
#define TALLY_API_WALLET_TRANSACTIONS_H

#include "api/request.h"

void wallet_transactions_create(struct request *req);
void wallet_transactions_get(struct request *req);
void wallet_transactions_list_for_wallet(struct request *req);
void wallet_transactions_consumptions(struct request *req);
void wallet_transactions_fundings(struct request *req);

/* A transaction's metadata, [{key, value}] (at most 15, each text at most 255 bytes), as a
 * top-up or a recurring rule's transaction_metadata gives it; else refused under `field`. */
struct json_object;
struct json_in_error;
bool wallet_transactions_valid_metadata(struct json_object *v, const char *field,
                                        struct json_in_error *err);

/*
 * A transaction's name under `key` (a top-up's `name`, a rule's or a new wallet's
 * `transaction_name`), as Lago's WalletTransaction and RecurringTransactionRule validate it:
 * absent or null for none, else 1 to WALLET_NAME_MAX bytes. "" is value_is_invalid, with a
 * message (Lago refuses it with a code its locale does not name). Copied into `a`.
 */
struct arena;
enum json_in_result wallet_transactions_read_name(struct json_object *obj, const char *key,
                                                  struct arena *a, const char **out,
                                                  struct json_in_error *err);

/* Writes one transaction in Lago's shape (also for the webhook events that name one). */
struct jsonw;
struct store_wallet_transaction;
void wallet_transactions_render(struct jsonw *w, const struct store_wallet_transaction *t);

#endif
