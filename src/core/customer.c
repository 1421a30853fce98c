/* core/customer: see customer.h. */
#include "core/customer.h"

#include <string.h>

#include "core/country.h"
#include "core/currency.h"

const struct customer_text_field customer_text_fields[CUSTOMER_TEXT_COUNT] = {
    [CUSTOMER_NAME] = {"name", 255},
    [CUSTOMER_FIRSTNAME] = {"firstname", 255},
    [CUSTOMER_LASTNAME] = {"lastname", 255},
    [CUSTOMER_EMAIL] = {"email", 255},
    [CUSTOMER_PHONE] = {"phone", 255},
    [CUSTOMER_URL] = {"url", 2048},
    [CUSTOMER_LOGO_URL] = {"logo_url", 2048},
    [CUSTOMER_LEGAL_NAME] = {"legal_name", 255},
    [CUSTOMER_LEGAL_NUMBER] = {"legal_number", 255},
    [CUSTOMER_TAX_IDENTIFICATION_NUMBER] = {"tax_identification_number", 255},
    [CUSTOMER_ADDRESS_LINE1] = {"address_line1", 255},
    [CUSTOMER_ADDRESS_LINE2] = {"address_line2", 255},
    [CUSTOMER_CITY] = {"city", 255},
    [CUSTOMER_STATE] = {"state", 255},
    [CUSTOMER_ZIPCODE] = {"zipcode", 255},
    [CUSTOMER_COUNTRY] = {"country", 2},
    [CUSTOMER_CURRENCY] = {"currency", 3},
    [CUSTOMER_TIMEZONE] = {"timezone", 64},
    [CUSTOMER_ACCOUNT_TYPE] = {"account_type", 16},
    [CUSTOMER_CUSTOMER_TYPE] = {"customer_type", 16},
    [CUSTOMER_FINALIZE_ZERO_AMOUNT_INVOICE] = {"finalize_zero_amount_invoice", 16},
    [CUSTOMER_EXTERNAL_SALESFORCE_ID] = {"external_salesforce_id", 255},
};

const char *const customer_doc_names[CUSTOMER_DOC_COUNT] = {
    [CUSTOMER_BILLING_CONFIGURATION] = "billing_configuration",
    [CUSTOMER_SHIPPING_ADDRESS] = "shipping_address",
    [CUSTOMER_METADATA] = "metadata",
    [CUSTOMER_TAX_CODES] = "tax_codes",
};

static bool one_of(const char *s, const char *const *allowed)
{
    for (; *allowed; allowed++)
        if (strcmp(s, *allowed) == 0)
            return true;
    return false;
}

/* A plausible address, s[0..len): one '@' with text on both sides and a dot in the domain. */
static bool address_is_plausible(const char *s, size_t len)
{
    const char *end = s + len, *at = memchr(s, '@', len);
    if (!at || at == s || memchr(at + 1, '@', (size_t)(end - at - 1)))
        return false;
    const char *dot = NULL;
    for (const char *p = at + 1; p < end; p++)
        if (*p == '.')
            dot = p;
    if (!dot || dot == at + 1 || dot + 1 == end)
        return false;
    for (const char *p = s; p < end; p++)
        if (*p == ' ' || *p == ';')
            return false;
    return true;
}

/* One address or several, comma-separated (spaces around each ignored), each plausible, as
 * Lago's EmailValidator reads a customer's email: an empty one between commas is not. */
static bool email_is_plausible(const char *s)
{
    for (;;) {
        const char *comma = strchr(s, ',');
        const char *end = comma ? comma : s + strlen(s);
        while (s < end && *s == ' ')
            s++;
        const char *last = end;
        while (last > s && last[-1] == ' ')
            last--;
        if (!address_is_plausible(s, (size_t)(last - s)))
            return false;
        if (!comma)
            return true;
        s = comma + 1;
    }
}

bool customer_currency_is_valid(const char *code, size_t len)
{
    const struct currency *cur = currency_find(code, len);
    return cur && cur->exponent >= 0;
}

static bool fail(const char **field, const char **code, const char *f, const char *c)
{
    *field = f;
    *code = c;
    return false;
}

bool customer_input_validate(const struct customer_input *in, const char **field, const char **code)
{
    static const char *const account_types[] = {"customer", "partner", NULL};
    static const char *const customer_types[] = {"company", "individual", NULL};
    static const char *const zero_amount[] = {"inherit", "skip", "finalize", NULL};
    const struct customer *v = &in->values;

    for (int i = 0; i < CUSTOMER_TEXT_COUNT; i++) {
        if (in->has_text[i] && v->text[i] && strlen(v->text[i]) > customer_text_fields[i].max_len)
            return fail(field, code, customer_text_fields[i].name, "value_is_too_long");
    }
    const char *s;
    if (in->has_text[CUSTOMER_CURRENCY] && (s = v->text[CUSTOMER_CURRENCY]) &&
        !customer_currency_is_valid(s, strlen(s)))
        return fail(field, code, "currency", "value_is_invalid");
    if (in->has_text[CUSTOMER_COUNTRY] && (s = v->text[CUSTOMER_COUNTRY]) &&
        !country_is_valid(s, strlen(s)))
        return fail(field, code, "country", "country_code_invalid");
    if (in->has_text[CUSTOMER_EMAIL] && (s = v->text[CUSTOMER_EMAIL]) && *s &&
        !email_is_plausible(s))
        return fail(field, code, "email", "invalid_email_format");
    if (in->has_text[CUSTOMER_ACCOUNT_TYPE] &&
        (!(s = v->text[CUSTOMER_ACCOUNT_TYPE]) || !one_of(s, account_types)))
        return fail(field, code, "account_type", "value_is_invalid");
    if (in->has_text[CUSTOMER_CUSTOMER_TYPE] && (s = v->text[CUSTOMER_CUSTOMER_TYPE]) &&
        !one_of(s, customer_types))
        return fail(field, code, "customer_type", "value_is_invalid");
    if (in->has_text[CUSTOMER_FINALIZE_ZERO_AMOUNT_INVOICE] &&
        (!(s = v->text[CUSTOMER_FINALIZE_ZERO_AMOUNT_INVOICE]) || !one_of(s, zero_amount)))
        return fail(field, code, "finalize_zero_amount_invoice", "invalid_value"); /* Lago's */
    if (in->has_net_payment_term && v->net_payment_term != CUSTOMER_INT_NULL &&
        (v->net_payment_term < 0 || v->net_payment_term > CUSTOMER_NET_PAYMENT_TERM_MAX))
        return fail(field, code, "net_payment_term", "value_is_out_of_range");
    if (in->has_invoice_grace_period && v->invoice_grace_period != CUSTOMER_INT_NULL &&
        (v->invoice_grace_period < 0 || v->invoice_grace_period > CUSTOMER_GRACE_PERIOD_MAX))
        return fail(field, code, "invoice_grace_period", "value_is_out_of_range");
    return true;
}

void customer_init_defaults(struct customer *c)
{
    memset(c, 0, sizeof *c);
    c->text[CUSTOMER_ACCOUNT_TYPE] = "customer";
    c->text[CUSTOMER_FINALIZE_ZERO_AMOUNT_INVOICE] = "inherit";
    c->net_payment_term = CUSTOMER_INT_NULL;
    c->invoice_grace_period = CUSTOMER_INT_NULL;
}

void customer_apply(struct customer *c, const struct customer_input *in)
{
    const struct customer *v = &in->values;
    for (int i = 0; i < CUSTOMER_TEXT_COUNT; i++)
        if (in->has_text[i])
            c->text[i] = v->text[i];
    for (int i = 0; i < CUSTOMER_DOC_COUNT; i++)
        if (in->has_doc[i])
            c->doc[i] = v->doc[i];
    if (in->has_net_payment_term)
        c->net_payment_term = v->net_payment_term;
    if (in->has_invoice_grace_period)
        c->invoice_grace_period = v->invoice_grace_period;
    if (in->has_skip_invoice_custom_sections)
        c->skip_invoice_custom_sections = v->skip_invoice_custom_sections;
}
