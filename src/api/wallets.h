/*
 * api/wallets: prepaid-credit wallets in Lago's shapes (/wallets and /customers/{id}/wallets),
 * with Tally's additions: `limit` (none, hard, soft) and `overdraft_credits`.
 *
 * Balances are read from the store as the writer left them after the last commit, which
 * debits usage in the same transaction as its events: a read after an acknowledged event
 * already shows it. Writes go to the writer (engine/wallets).
 *
 * Threads: HTTP threads (handlers); the render functions run on the writer thread.
 */
#ifndef TALLY_API_WALLETS_H
#define TALLY_API_WALLETS_H

#include "api/request.h"
#include "store/store.h"

/* The bytes of a purchase_order_number: a wallet's, its rule's, a top-up's */
#define WALLET_PURCHASE_ORDER_MAX 255

struct jsonw;

void wallets_create(struct request *req);
void wallets_create_for_customer(struct request *req);
void wallets_list(struct request *req);
void wallets_list_for_customer(struct request *req);
void wallets_get(struct request *req);
void wallets_get_for_customer(struct request *req);
void wallets_update(struct request *req);
void wallets_update_for_customer(struct request *req);
void wallets_terminate(struct request *req);
void wallets_terminate_for_customer(struct request *req);
/* /wallets/{lago_id}/metadata: replace (POST), merge (PATCH), delete all (DELETE), and
 * /metadata/{key} (DELETE); answers {"metadata": {...}}. */
void wallets_metadata_replace(struct request *req);
void wallets_metadata_merge(struct request *req);
void wallets_metadata_clear(struct request *req);
void wallets_metadata_delete_key(struct request *req);
/* The same under /customers/{external_id}/wallets/{code}/metadata. */
void wallets_metadata_replace_for_customer(struct request *req);
void wallets_metadata_merge_for_customer(struct request *req);
void wallets_metadata_clear_for_customer(struct request *req);
void wallets_metadata_delete_key_for_customer(struct request *req);

/* Whether t is after the organization's clock (an expiry must be); false if the clock cannot
 * be read. */
bool wallets_in_future(struct request *req, tally_time t);
/* Whether the wallet's terms make paid credits wait for their payment. */
bool wallets_terms_require_payment(const char *terms_json);
/* False (refusing paid_credits) when a paid top-up of `cents` is outside the wallet's
 * paid_top_up_min/max_amount_cents. */
struct json_in_error;
bool wallets_top_up_bounds_ok(const char *terms_json, int64_t cents, struct json_in_error *err);
/* The minor-unit exponent of a currency code (2 if unknown). */
int32_t wallets_currency_exponent(const char *currency);

/* Writes a credit amount (cents at the wallet's rate) as Lago's decimal string ("10.0"). */
void wallets_write_credits(struct jsonw *w, int64_t cents, money_t rate_amount,
                           const char *currency);
/* Writes an amount in cents as currency units ("10.0"). */
void wallets_write_amount(struct jsonw *w, int64_t cents, const char *currency);

#endif
