/*
 * engine/command: what the API asks the writer to do, as plain data.
 *
 * A command is built by an HTTP thread (parsed, validated, ids drawn), handed to
 * engine_submit, applied by the writer thread inside a group-commit transaction, and
 * handed back through `done` once the transaction holding it is durable (or has failed).
 *
 * Ownership: the submitter allocates the command and everything it points to (usually in
 * its request arena) and must keep it alive until `done` runs; between submit and done the
 * engine alone touches it. `done` runs on the engine's syncer thread or on the writer
 * (engine/syncer.h says which, when), and must be quick: it only wakes the waiting request.
 */
#ifndef TALLY_ENGINE_COMMAND_H
#define TALLY_ENGINE_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/applied_coupon.h"
#include "core/catalog.h"
#include "core/customer.h"
#include "core/event.h"
#include "core/siphash.h"
#include "core/subscription.h"
#include "store/store.h"
#include "core/timestamp.h"
#include "engine/sweep_quarantine.h"
#include "util/arena.h"
#include "util/buf.h"

#define COMMAND_IDEMPOTENCY_KEY_MAX 255

enum command_kind {
    COMMAND_CUSTOMER_UPSERT,
    COMMAND_CUSTOMER_DELETE,
    COMMAND_TEST_CLOCK_ADVANCE,
    COMMAND_CATALOG_PUT,
    COMMAND_CATALOG_DELETE,
    COMMAND_SUBSCRIPTION_CREATE,
    COMMAND_SUBSCRIPTION_UPDATE,
    COMMAND_SUBSCRIPTION_TERMINATE,
    COMMAND_APPLIED_COUPON_CREATE,
    COMMAND_APPLIED_COUPON_TERMINATE,
    COMMAND_EVENTS_INGEST,
    COMMAND_USAGE_READ,
    COMMAND_EVENT_FIND,
    COMMAND_FEES_ESTIMATE,
    COMMAND_WALLET_CREATE,
    COMMAND_WALLET_UPDATE,
    COMMAND_WALLET_TERMINATE,
    COMMAND_WALLET_TOP_UP,
    COMMAND_AUTHORIZATION_CREATE,
    COMMAND_AUTHORIZATION_CAPTURE, /* as.events_ingest, with the hold it settles */
    COMMAND_AUTHORIZATION_VOID,
    COMMAND_SWEEP, /* the writer's own: what the clock brings (expiries) */
    COMMAND_INVOICE_UPDATE,
    COMMAND_WALLETS_SYNC, /* changes nothing: writes out the wallet journal, for a reader */
    /* changes nothing: a keyed request whose key has an answer gets it (or the conflict) */
    COMMAND_KEY_REPLAY,
};

/* What the writer learned about one accepted event, for its answer. */
struct event_result {
    int64_t id; /* the store's */
    /* Made by engine_submit, on the submitting thread: the fingerprint of the event's
     * identity (its lago_id), and its key in the writer's identity set. */
    struct siphash128 fingerprint;
    struct siphash128 transaction_fingerprint;
    uint64_t subscription_tag;
    tally_time timestamp; /* the event's own, or the clock's when it had none */
    bool evaluated;       /* its metric's expression was applied (once: see engine/ingest.c) */
    char subscription_lago_id[UUID_TEXT];
    char customer_lago_id[UUID_TEXT];
};

/*
 * POST /subscriptions: subscribe a customer (created if unknown) to a plan, or change the
 * plan of the live subscription with that external id. The plan, and the live subscription
 * with its plan, are as the request read them; the writer refuses the command as stale if
 * either changed since.
 */
struct subscription_request {
    const char *external_customer_id;
    char customer_lago_id[UUID_TEXT]; /* for a customer created on the way */
    const char *external_id;
    const char *name;
    /* named (null included): the subscription's, and a plan change's new one's, else carried */
    bool has_purchase_order_number;
    const char *purchase_order_number;
    enum period_billing_time billing_time;
    bool has_subscription_at;
    tally_time subscription_at;
    bool has_ending_at;
    bool ending_at_null; /* named null: a plan change's next subscription has no end */
    tally_time ending_at;
    char lago_id[UUID_TEXT];
    char plan_lago_id[UUID_TEXT];
    const char *plan_code;
    const char *plan_body;  /* the subscription's own plan (plan_overrides), or NULL */
    struct plan_terms plan; /* of plan_body when given */
    tally_time plan_updated_at;
    int64_t current_id; /* the live subscription the request saw, or 0 */
    tally_time current_updated_at;
    struct plan_terms current_plan; /* its plan's terms, when current_id != 0 */
};

/* PUT /subscriptions/{external_id}: the fields named change. */
struct subscription_update {
    const char *external_id;
    bool pending_only; /* ?status=pending: the pending one (a scheduled downgrade, say) */
    bool has_name;
    const char *name;
    bool has_purchase_order_number;
    const char *purchase_order_number; /* NULL: none */
    bool has_ending_at;
    bool ending_at_null;
    tally_time ending_at;
    bool has_subscription_at;
    tally_time subscription_at;
    bool other_credit_note; /* see SUBSCRIPTION_CREDIT_NOTE_UNSERVED */
};

/*
 * Lago's on_termination_credit_note given as skip, refund or offset (api/subscriptions reads
 * it): Tally issues no credit note on termination yet and answers `credit` for a subscription
 * whose plan is paid in advance, so the writer refuses the choice there (422 not_supported,
 * with this message) rather than take it and ignore it. On a plan paid in arrears Lago ignores
 * it too: nothing was paid ahead to credit.
 */
#define SUBSCRIPTION_CREDIT_NOTE_UNSERVED                                                          \
    "Tally issues no credit note on termination yet: on_termination_credit_note of a plan paid "   \
    "in advance can only be credit (its answer)"

/*
 * Credits coming into (paid, granted) or leaving (voided) a wallet: POST /wallet_transactions,
 * and the first credits of a new wallet. Amounts are credits as the request gave them.
 */
struct wallet_credits {
    bool has_paid, has_granted, has_voided;
    money_t paid, granted, voided;
    const char *voided_transaction_lago_id; /* void from that grant only (all of it without
                                               voided credits); or NULL */
    const char *name;
    int32_t priority; /* the grants' */
    bool has_expiration_at;
    tally_time expiration_at; /* the grants' (a Tally addition) */
    bool invoice_requires_successful_payment;
    const char *details_json; /* metadata and the like, shown back; or NULL */
    /* the void's: the request's metadata only, as Lago's VoidService records it (no payment
     * setting nor purchase order: a void buys nothing); or NULL */
    const char *void_details_json;
};

/* POST /wallets: the wallet as the request defines it (ids and balances zero). */
struct wallet_request {
    const char *external_customer_id;
    bool code_generated; /* from the name: made unique by the writer if taken (Lago's rule) */
    struct store_wallet wallet;
    struct wallet_credits credits;
};

/* PUT /wallets/{id}: the wallet as the request read it, with its changes merged in; refused
 * as stale if it changed since. */
struct wallet_update {
    struct store_wallet wallet;
    /* The wallet as the request read it, which the update was built on: if another update
     * changed its terms since, the update is stale (its debits since do not matter). */
    struct store_wallet read;
};

/* The outcome of applying one command; the API maps it to an HTTP answer. */
/* An item of a batch refused: its index in the batch, Lago's field and error code. */
struct command_item_refusal {
    size_t index;
    const char *field;
    const char *code;
};

enum command_result {
    COMMAND_OK,                   /* applied */
    COMMAND_NOT_FOUND,            /* the thing it names does not exist: 404 */
    COMMAND_INVALID,              /* a rule refused it: 422 with field/code */
    COMMAND_IDEMPOTENT_REPLAY,    /* the key was seen with this request: answer copied */
    COMMAND_IDEMPOTENT_CONFLICT,  /* the key was seen with another request: 409 */
    COMMAND_STALE,                /* the item changed since the request read it: 409, retry */
    COMMAND_REF_NOT_FOUND,        /* a definition names a missing item: 404 (ref_kind says which) */
    COMMAND_STORE_FAILED,         /* the database failed: 500, nothing changed */
    COMMAND_INSUFFICIENT_CREDITS, /* a limited wallet cannot pay for it: 402, nothing changed */
    COMMAND_NOT_DURABLE, /* committed, but the disk refused the sync: 500, it may not survive */
    COMMAND_NOT_ALLOWED, /* Lago's not_allowed_failure: 405 with not_allowed_code */
};

struct command;
struct store_conn;
struct usage;
struct usage_view_filter;
/*
 * Renders the HTTP answer of an applied command into cmd->response (status and body). The
 * engine calls it on the writer thread, inside the transaction, so that an idempotent
 * answer can be stored with the change it describes; except, with `render_by_owner` and no
 * Idempotency-Key, where `done` calls it (without cmd->conn), so that the one writer does not
 * spend its time writing JSON.
 */
typedef void (*command_render_fn)(struct command *cmd);
typedef void (*command_done_fn)(struct command *cmd);

struct command {
    enum command_kind kind;
    int64_t org_id;

    /* Where the ids the writer makes for this command come from (command_new_id): drawn by
     * the submitter, so that the engine stays deterministic and a replayed log gives the
     * same ids. */
    uint8_t id_seed[16];
    uint64_t ids_made; /* writer: ids made so far from id_seed */

    /* Optional Idempotency-Key and the fingerprint of the request it came with. */
    const char *idempotency_key;
    uint8_t request_hash[32];

    union {
        struct {
            struct customer_input input; /* external_id, lago_id drawn by the API */
        } customer_upsert;
        struct {
            const char *external_id;
        } customer_delete;
        struct {
            tally_time to;
        } test_clock_advance;
        /* A wallet sync (zeroed: the API's); the writer's own may also re-price a customer
         * passed over while it was stuck (engine/writer.c, run_reprices). */
        struct {
            int64_t reprice_customer_id; /* 0: none */
        } wallets_sync;
        /* The real clock's sweep of one organization (the writer's own command). */
        struct {
            const char *skip_customers;   /* passed over (store_due's), NULL: none */
            struct sweep_failure failure; /* where it failed, if it did */
        } sweep;
        /*
         * Create (item.id == 0) or replace a catalog item. A replace carries the updated_at
         * the request read, and is refused as stale if the item changed since (the request
         * merged its fields into that version). Every ref must exist.
         */
        struct {
            struct catalog_item item;
            tally_time expected_updated_at;
            const struct catalog_ref *refs;
            size_t ref_count;
            /* a coupon's: one created already expired is refused at the writer's clock */
            bool has_expiration_at;
            tally_time expiration_at;
            /* the request kept the terms of a coupon in use, or the trial of a plan with
             * subscriptions (prune_update): one that did not is refused as stale if the coupon
             * was applied, or the plan subscribed to, since it read it */
            bool terms_kept;
            /* a static code the definition is refused with, 405, once every ref exists (a
             * coupon limited to both plans and metrics: Lago checks the codes first) */
            const char *not_allowed_code;
        } catalog_put;
        struct {
            enum catalog_kind kind;
            const char *code;
        } catalog_delete;
        struct subscription_request subscription_create;
        struct subscription_update subscription_update;
        struct {
            const char *external_id;
            bool pending_only;      /* DELETE ?status=pending: cancel the pending one */
            bool other_credit_note; /* see SUBSCRIPTION_CREDIT_NOTE_UNSERVED */
        } subscription_terminate;
        /* The coupon's terms with this customer's overrides, read by the request; the writer
         * refuses it as stale if the coupon changed since. */
        struct {
            const char *external_customer_id;
            struct applied_coupon coupon;
            tally_time coupon_updated_at;
            bool reusable;
            bool currency_sent; /* amount_currency overridden (upper case), even as "" */
        } applied_coupon_create;
        struct {
            const char *external_customer_id;
            const char *lago_id;
        } applied_coupon_terminate;
        /*
         * Events, all or nothing: one refused event refuses the batch, and the refusal
         * names its index with Lago's field and code (`refusals`, set by the writer: the
         * first event refused, then the later ones refused too; see engine/ingest.c).
         */
        struct {
            /* the writer rewrites an event's properties when its metric has an expression */
            struct event *events;
            size_t count;
            struct event_result *results;          /* count of them, in the submitter's arena */
            struct command_item_refusal *refusals; /* in index order, in the command's arena */
            size_t refusal_count;
            const char *authorization_lago_id; /* capture: the hold the event settles */
            /* capture: its properties are the hold's, in whatever order (set by the submitter) */
            bool properties_as_authorized;
            /* capture: its usage is the authorized one (set by the writer): what credits
             * cannot pay of it is left to the invoice rather than refused */
            bool as_authorized;
        } events_ingest;
        /* POST /authorizations: price one event (no transaction id) and hold its credits. */
        struct {
            const struct event *event;
            int64_t expires_in_sec;
        } authorization_create;
        struct {
            const char *lago_id;
        } authorization_void;
        /* PUT /invoices/{id}: the payment status (a credit invoice settles its top-up). */
        struct {
            const char *lago_id;
            enum invoice_payment_status payment_status;
        } invoice_update;
        /* POST /events/estimate_fees, estimate_instant_fees, batch_estimate_instant_fees:
         * what each event would cost alone, changing nothing. The writer sets each event's
         * usage and subscription (arena arrays of `count`), valid only during `render`. */
        struct {
            const struct event *events;
            size_t count;
            bool instant; /* Lago's instant estimate: standard and percentage charges only */
            bool batch;   /* Lago's batch of instant estimates: an event no charge takes is
                           * passed over (its usage NULL) */
            const struct usage **usages; /* NULL for an event passed over */
            struct store_subscription *subscriptions;
            const struct event *priced; /* the events with their metrics' expressions applied */
        } fees_estimate;
        /* GET /events/{transaction_id}: the writer knows where each transaction id is. */
        struct {
            const char *transaction_id;
        } event_find;
        struct wallet_request wallet_create;
        struct wallet_update wallet_update;
        struct {
            const char *lago_id;
        } wallet_terminate;
        struct {
            const char *wallet_lago_id;
            struct wallet_credits credits;
        } wallet_top_up;
        /* A customer's current usage: read in the writer, where the live aggregates are. */
        struct {
            const char *external_customer_id;
            const char *external_subscription_id;
            const struct usage_view_filter *filter; /* NULL: the whole answer */
        } usage_read;
    } as;

    /* Set by the writer. */
    tally_time now; /* the organization's clock when the command was applied */
    enum command_result result;
    const char *invalid_field; /* with COMMAND_INVALID: Lago's field and error code */
    const char *invalid_code;
    const char *invalid_message; /* and, where Lago has none to give, Tally's (or NULL) */
    /* With COMMAND_STORE_FAILED: what could not be read or written, when that is known and is
     * this command's own (a customer's wallets that cannot be written out, a zone the host lost),
     * static text for the 500's message; NULL: the generic one. */
    const char *failure_message;
    struct customer customer;         /* the customer as saved or deleted (customer commands) */
    struct catalog_item item;         /* the catalog item as saved or deleted (catalog commands) */
    struct subscription subscription; /* as saved (subscription commands) */
    struct applied_coupon applied_coupon; /* as saved (applied coupon commands) */
    /* COMMAND_CUSTOMER_DELETE: the subscriptions it ended (in `arena`), whose live usage the
     * writer then rebuilds as it does after DELETE /subscriptions. */
    const int64_t *ended_subscription_ids;
    size_t ended_subscription_count;
    /* COMMAND_SUBSCRIPTION_CREATE: the subscription's own plan was replaced in place (new
     * plan_overrides), which re-prices its live usage as a plan edit does. */
    bool replanned;
    /* COMMAND_CATALOG_PUT of a plan whose price changed: the subscriptions the downgrades it
     * decided again (engine: subscriptions_recheck_downgrades) moved, and COMMAND_CATALOG_DELETE of
     * a plan: those it ended (engine: subscriptions_end_of_plan), whose usage is rebuilt as after
     * the subscription commands that move them alike; and of the former, the ones its upgrades
     * started, settled at once as a new subscription is (in `arena`). */
    const int64_t *moved_subscription_ids;
    size_t moved_subscription_count;
    const int64_t *started_subscription_ids;
    size_t started_subscription_count;
    const char *not_found_code;   /* with COMMAND_NOT_FOUND, when it is not the route's own */
    const char *not_allowed_code; /* with COMMAND_NOT_ALLOWED (a static string) */
    const struct usage *usage;    /* COMMAND_USAGE_READ: valid only during `render` */
    struct store_subscription usage_subscription; /* and the subscription it is of */
    struct store_event event;                     /* COMMAND_EVENT_FIND's result */
    const struct catalog_ref *missing_ref;        /* with COMMAND_REF_NOT_FOUND */
    /* Wallet commands: the wallet as saved, and the transactions made (lago ids, in order). */
    char wallet_lago_id[UUID_TEXT];
    char transaction_lago_ids[3][UUID_TEXT];
    size_t transaction_count;
    /* Authorization commands: the hold as saved. Events: what they cost (fees and taxes). */
    struct store_authorization authorization;
    /* COMMAND_AUTHORIZATION_CREATE: the wallet whose credits show the hold (the first that
     * holds part of it; declined: the first that could have paid), when has_payer. */
    bool has_payer;
    money_t payer_rate_amount;
    char payer_currency[4];
    struct store_invoice invoice; /* COMMAND_INVOICE_UPDATE: as saved */
    int64_t usage_cost_cents;
    /* Its debits bring periods' carried units in at their start (engine: settle_periods), or
     * a re-pricing's raise (wallets_debit_raised): usage that happened, not asked for, so what
     * credits cannot pay is the invoice's. */
    bool settling_periods;
    /* With COMMAND_INSUFFICIENT_CREDITS: the wallet that could not pay, and the shortfall. */
    char short_wallet_lago_id[UUID_TEXT];
    int64_t short_cents;
    /* With it: the refusal's look at the customer's rules made credits, kept (the answer
     * says so). rule_credits_made counts what rules and anniversaries made in the command. */
    bool short_kept_credits;
    int rule_credits_made;
    /* The writer's store connection, for `render` to look up related items; valid only
     * during the render call. */
    struct store_conn *conn;
    struct arena *arena; /* where the writer may allocate result data; the submitter's */

    /* The HTTP answer, written by `render` (or copied from an idempotent replay). */
    int http_status;
    struct buf response;

    command_render_fn render;
    /* The render reads the command alone (not the store, not live usage): `done` may run it.
     * `rendered` (set by the writer) says whether the writer did. */
    bool render_by_owner;
    bool rendered;
    command_done_fn done;
    void *owner; /* the submitter's context, for `done` */

    struct command *next; /* engine queue link */
};

/* The writer's next id for this command: a time-ordered (version-7 layout) UUID made from
 * cmd->now, id_seed and a counter. */
void command_new_id(struct command *cmd, char out[UUID_TEXT]);
/* The same, its time `at`: the instant of what it names, when that is not the command's (a
 * wallet's usage written out by another organization's command, on another clock). */
void command_new_id_at(struct command *cmd, tally_time at, char out[UUID_TEXT]);

/*
 * Sets cmd->invalid_message, formatted into the command's arena (NULL if memory runs out: the
 * refusal stands without its sentence). The thread that owns the command (the writer).
 */
void command_set_message(struct command *cmd, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

#endif
