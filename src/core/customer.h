/*
 * core/customer: a customer (Lago's shape) and the rules its fields obey.
 *
 * Most of a customer is optional text: address lines, names, identifiers. Rather than a
 * struct member, a parser branch, a renderer line and a column per field, those fields are
 * one table (customer_text_fields): the API parses, the store saves and the renderer writes
 * them by walking it. Fields with rules of their own (currency, country, time zone, enums,
 * integers, JSON sub-objects) are named members.
 *
 * Pure: no I/O. The time zone name is checked against the tz database by the caller
 * (api/), since that is I/O; everything else is checked here.
 *
 * Threads: any (pure).
 */
#ifndef TALLY_CORE_CUSTOMER_H
#define TALLY_CORE_CUSTOMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/timestamp.h"
#include "core/uuid.h"

#define CUSTOMER_EXTERNAL_ID_MAX 255 /* bytes */

enum customer_text {
    CUSTOMER_NAME,
    CUSTOMER_FIRSTNAME,
    CUSTOMER_LASTNAME,
    CUSTOMER_EMAIL,
    CUSTOMER_PHONE,
    CUSTOMER_URL,
    CUSTOMER_LOGO_URL,
    CUSTOMER_LEGAL_NAME,
    CUSTOMER_LEGAL_NUMBER,
    CUSTOMER_TAX_IDENTIFICATION_NUMBER,
    CUSTOMER_ADDRESS_LINE1,
    CUSTOMER_ADDRESS_LINE2,
    CUSTOMER_CITY,
    CUSTOMER_STATE,
    CUSTOMER_ZIPCODE,
    CUSTOMER_COUNTRY,
    CUSTOMER_CURRENCY,
    CUSTOMER_TIMEZONE,
    CUSTOMER_ACCOUNT_TYPE,
    CUSTOMER_CUSTOMER_TYPE,
    CUSTOMER_FINALIZE_ZERO_AMOUNT_INVOICE,
    CUSTOMER_EXTERNAL_SALESFORCE_ID,
    CUSTOMER_TEXT_COUNT
};

struct customer_text_field {
    const char *name; /* JSON key and column name */
    size_t max_len;   /* bytes */
};
extern const struct customer_text_field customer_text_fields[CUSTOMER_TEXT_COUNT];

/* The JSON sub-documents a customer carries, stored as canonical JSON text. tax_codes is the
 * array of the codes of the customer's own taxes (Lago's applied taxes of a customer), each
 * once: its charges' fees carry them where neither the charge nor the plan names taxes. */
enum customer_doc {
    CUSTOMER_BILLING_CONFIGURATION,
    CUSTOMER_SHIPPING_ADDRESS,
    CUSTOMER_METADATA,
    CUSTOMER_TAX_CODES,
    CUSTOMER_DOC_COUNT
};
extern const char *const customer_doc_names[CUSTOMER_DOC_COUNT];

/* Taxes a customer may name (each of its charges' fees may carry them all). */
#define CUSTOMER_TAXES_MAX 32

/* "No value" for the optional integers. */
#define CUSTOMER_INT_NULL INT32_MIN

struct customer {
    int64_t id; /* store row id; 0 before the first save */
    int64_t org_id;
    int64_t sequential_id; /* 1, 2, ... per organization, as Lago numbers customers */
    char lago_id[UUID_TEXT];
    const char *external_id;
    const char *text[CUSTOMER_TEXT_COUNT]; /* NULL is JSON null */
    int32_t net_payment_term;              /* days, or CUSTOMER_INT_NULL */
    int32_t invoice_grace_period;          /* days, or CUSTOMER_INT_NULL */
    const char *doc[CUSTOMER_DOC_COUNT];   /* canonical JSON text, or NULL */
    /* Lago's: invoices leave out the invoice custom sections. Tally issues none, so it changes
     * nothing yet; kept and answered as sent. */
    bool skip_invoice_custom_sections;
    tally_time created_at;
    tally_time updated_at;
};

/* What a create-or-update request says: the values, and which of them it names. */
struct customer_input {
    struct customer values;
    bool has_text[CUSTOMER_TEXT_COUNT];
    bool has_net_payment_term;
    bool has_invoice_grace_period;
    bool has_doc[CUSTOMER_DOC_COUNT];
    bool has_skip_invoice_custom_sections;
};

/* Tally's limits on a grace period and a payment term, in days: Lago's model requires only 0
 * or more (docs/API.md, Customers, says why Tally caps them). */
#define CUSTOMER_GRACE_PERIOD_MAX 365
#define CUSTOMER_NET_PAYMENT_TERM_MAX 365

/*
 * Checks the fields an input names, and normalises them in place where Lago does
 * (country to upper case is the caller's job: strings are borrowed, not owned here).
 * On the first failure returns false with *field set to the JSON key and *code to Lago's
 * error code for it (both static strings).
 */
bool customer_input_validate(const struct customer_input *in, const char **field,
                             const char **code);

/* Whether `code` (len bytes, upper case) is a currency a customer may have: an ISO 4217 code
 * with a minor unit (core/currency's table). */
bool customer_currency_is_valid(const char *code, size_t len);

/*
 * Applies an input to a customer: every field the input names replaces the customer's,
 * the rest stay. Used for both creation (onto a customer holding the defaults) and update.
 * Strings are shared, not copied: they live as long as the input's.
 */
void customer_apply(struct customer *c, const struct customer_input *in);

/* Defaults of a new customer (Lago's: account_type "customer", zero-amount "inherit"). */
void customer_init_defaults(struct customer *c);

#endif
