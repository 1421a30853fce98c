/* core/expression: see expression.h. */
#include "core/expression.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- parsing ------------------------------------------------------------------------------- */

struct parser {
    const char *s;
    size_t len, at;
    int depth;
    size_t stack, stack_peak; /* values the nodes so far leave, and the most at once */
    struct expression *out;
    char *message;
    enum expression_status status;
};

static bool fail(struct parser *p, enum expression_status status, const char *fmt, ...)
{
    if (p->status != EXPRESSION_OK)
        return false; /* the first error is the one to tell */
    p->status = status;
    int n = snprintf(p->message, EXPRESSION_MESSAGE_MAX, "at %zu: ", p->at);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->message + n, EXPRESSION_MESSAGE_MAX - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* The length of the UTF-8 character `s` starts with (`n` bytes readable), 0 if it is not one:
 * messages quote whole characters, so that the answer they go into stays UTF-8. */
static size_t utf8_char_len(const char *s, size_t n)
{
    unsigned char c = (unsigned char)s[0];
    size_t len = c < 0x80             ? 1
                 : (c & 0xE0) == 0xC0 ? 2
                 : (c & 0xF0) == 0xE0 ? 3
                 : (c & 0xF8) == 0xF0 ? 4
                                      : 0;
    if (len == 0 || len > n || (len == 2 && c < 0xC2))
        return 0;
    for (size_t i = 1; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

static void skip_spaces(struct parser *p)
{
    while (p->at < p->len && p->s[p->at] == ' ')
        p->at++;
}

/* The next byte after spaces, or 0 at the end. */
static char peek(struct parser *p)
{
    skip_spaces(p);
    return p->at < p->len ? p->s[p->at] : 0;
}

static bool expect(struct parser *p, char c)
{
    if (peek(p) != c)
        return fail(p, EXPRESSION_ERR_SYNTAX, "expected '%c'", c);
    p->at++;
    return true;
}

/* Appends a node; `pops` values it takes, and it leaves one. */
static bool emit(struct parser *p, struct expression_node node, size_t pops)
{
    struct expression *x = p->out;
    if (x->count == EXPRESSION_NODES_MAX)
        return fail(p, EXPRESSION_ERR_LIMIT, "more than %d terms", EXPRESSION_NODES_MAX);
    x->nodes[x->count++] = node;
    p->stack = p->stack - pops + 1;
    if (p->stack > p->stack_peak)
        p->stack_peak = p->stack;
    if (p->stack_peak > EXPRESSION_STACK_MAX)
        return fail(p, EXPRESSION_ERR_LIMIT, "more than %d values at once", EXPRESSION_STACK_MAX);
    return true;
}

static bool parse_expr(struct parser *p);

/* digits ('.' digits)?: Lago's decimal. Leading zeros are allowed ("007"). */
static bool parse_decimal(struct parser *p)
{
    size_t start = p->at;
    while (p->at < p->len && is_digit(p->s[p->at]))
        p->at++;
    if (p->at < p->len && p->s[p->at] == '.') {
        size_t point = ++p->at;
        while (p->at < p->len && is_digit(p->s[p->at]))
            p->at++;
        if (p->at == point)
            return fail(p, EXPRESSION_ERR_SYNTAX, "expected a digit after '.'");
    }
    size_t from = start;
    while (from + 1 < p->at && p->s[from] == '0' && p->s[from + 1] != '.')
        from++;
    struct expression_node n = {.op = EXPRESSION_NUMBER};
    if (money_parse(p->s + from, p->at - from, &n.number) != MONEY_OK) {
        p->at = start;
        return fail(p, EXPRESSION_ERR_LIMIT, "a number past 38 digits");
    }
    return emit(p, n, 0);
}

/* 'text': no escapes, so the literal is its bytes in the expression's text. */
static bool parse_string(struct parser *p)
{
    size_t start = ++p->at;
    while (p->at < p->len && p->s[p->at] != '\'')
        p->at++;
    if (p->at == p->len) {
        p->at = start - 1;
        return fail(p, EXPRESSION_ERR_SYNTAX, "a string without its closing quote");
    }
    size_t len = p->at++ - start;
    return emit(p,
                (struct expression_node){
                    .op = EXPRESSION_STRING, .offset = (uint16_t)start, .len = (uint16_t)len},
                0);
}

/* Letters, digits and '_' from p->at: the length of the word there. */
static size_t word_at(const struct parser *p, size_t at)
{
    size_t n = 0;
    while (at + n < p->len &&
           (is_alpha(p->s[at + n]) || is_digit(p->s[at + n]) || p->s[at + n] == '_'))
        n++;
    return n;
}

static bool word_is(const struct parser *p, size_t at, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(p->s + at, word, n) == 0;
}

/* event.code, event.timestamp, event.properties.<name>: one token, no spaces inside. */
static bool parse_variable(struct parser *p)
{
    size_t start = p->at;
    p->at += 6; /* "event." */
    size_t n = word_at(p, p->at);
    if (word_is(p, p->at, n, "code") || word_is(p, p->at, n, "timestamp")) {
        enum expression_op op = p->s[p->at] == 'c' ? EXPRESSION_CODE : EXPRESSION_TIMESTAMP;
        p->at += n;
        return emit(p, (struct expression_node){.op = op}, 0);
    }
    if (!word_is(p, p->at, n, "properties") || p->at + n >= p->len || p->s[p->at + n] != '.') {
        p->at = start;
        return fail(p, EXPRESSION_ERR_SYNTAX,
                    "expected event.code, event.timestamp or event.properties.<name>");
    }
    p->at += n + 1;
    n = word_at(p, p->at);
    if (n == 0 || !is_alpha(p->s[p->at]))
        return fail(p, EXPRESSION_ERR_SYNTAX, "expected a property name (a letter first)");
    if (n > EVENT_PROPERTY_KEY_MAX)
        return fail(p, EXPRESSION_ERR_LIMIT, "a property name past %d bytes",
                    EVENT_PROPERTY_KEY_MAX);
    struct expression_node node = {
        .op = EXPRESSION_PROPERTY, .offset = (uint16_t)p->at, .len = (uint16_t)n};
    p->at += n;
    return emit(p, node, 0);
}

/* Lago's spellings: lower case, upper case, or capitalized. */
static bool function_of(const struct parser *p, size_t n, enum expression_op *op)
{
    static const struct {
        const char *names[3];
        enum expression_op op;
    } functions[] = {
        {{"round", "ROUND", "Round"}, EXPRESSION_ROUND},
        {{"ceil", "CEIL", "Ceil"}, EXPRESSION_CEIL},
        {{"floor", "FLOOR", "Floor"}, EXPRESSION_FLOOR},
        {{"concat", "CONCAT", "Concat"}, EXPRESSION_CONCAT},
        {{"min", "MIN", "Min"}, EXPRESSION_MIN},
        {{"max", "MAX", "Max"}, EXPRESSION_MAX},
    };
    for (size_t f = 0; f < sizeof functions / sizeof functions[0]; f++)
        for (size_t k = 0; k < 3; k++)
            if (word_is(p, p->at, n, functions[f].names[k])) {
                *op = functions[f].op;
                return true;
            }
    return false;
}

static bool parse_call(struct parser *p, enum expression_op op, size_t name_len)
{
    size_t start = p->at;
    p->at += name_len;
    if (!expect(p, '('))
        return false;
    size_t argc = 0;
    do {
        if (argc == EXPRESSION_ARGS_MAX)
            return fail(p, EXPRESSION_ERR_LIMIT, "more than %d arguments", EXPRESSION_ARGS_MAX);
        if (argc > 0)
            p->at++; /* the ',' */
        if (!parse_expr(p))
            return false;
        argc++;
    } while (peek(p) == ',');
    if (!expect(p, ')'))
        return false;
    bool listed = op == EXPRESSION_CONCAT || op == EXPRESSION_MIN || op == EXPRESSION_MAX;
    if (!listed && argc > 2) {
        p->at = start;
        return fail(p, EXPRESSION_ERR_SYNTAX, "%.*s takes a value and, optionally, decimals",
                    (int)name_len, p->s + start);
    }
    return emit(p, (struct expression_node){.op = op, .argc = (uint16_t)argc}, argc);
}

static bool parse_primary(struct parser *p)
{
    char c = peek(p);
    if (is_digit(c))
        return parse_decimal(p);
    if (c == '\'')
        return parse_string(p);
    if (c == '(') {
        p->at++;
        return parse_expr(p) && expect(p, ')');
    }
    size_t n = word_at(p, p->at);
    enum expression_op op;
    if (word_is(p, p->at, n, "event") && p->at + n < p->len && p->s[p->at + n] == '.')
        return parse_variable(p);
    if (n > 0 && function_of(p, n, &op))
        return parse_call(p, op, n);
    if (c == 0)
        return fail(p, EXPRESSION_ERR_SYNTAX, "expected a value, found the end");
    return fail(p, EXPRESSION_ERR_SYNTAX,
                "expected a number, a 'string', event.<attribute>, a function or '('");
}

static bool parse_atom(struct parser *p)
{
    bool negate = peek(p) == '-';
    if (negate)
        p->at++;
    if (!parse_primary(p))
        return false;
    return !negate || emit(p, (struct expression_node){.op = EXPRESSION_NEGATE}, 1);
}

static bool parse_term(struct parser *p)
{
    if (!parse_atom(p))
        return false;
    for (char c; (c = peek(p)) == '*' || c == '/';) {
        p->at++;
        if (!parse_atom(p) || !emit(p,
                                    (struct expression_node){.op = c == '*' ? EXPRESSION_MULTIPLY
                                                                            : EXPRESSION_DIVIDE},
                                    2))
            return false;
    }
    return true;
}

static bool parse_expr(struct parser *p)
{
    if (++p->depth > EXPRESSION_DEPTH_MAX)
        return fail(p, EXPRESSION_ERR_LIMIT, "nested deeper than %d", EXPRESSION_DEPTH_MAX);
    if (!parse_term(p))
        return false;
    for (char c; (c = peek(p)) == '+' || c == '-';) {
        p->at++;
        if (!parse_term(p) ||
            !emit(p,
                  (struct expression_node){.op = c == '+' ? EXPRESSION_ADD : EXPRESSION_SUBTRACT},
                  2))
            return false;
    }
    p->depth--;
    return true;
}

enum expression_status expression_parse(const char *text, size_t len, struct expression *out,
                                        char message[EXPRESSION_MESSAGE_MAX])
{
    struct parser p = {.s = text, .len = len, .out = out, .message = message};
    message[0] = '\0';
    out->text = text;
    out->count = 0;
    if (len > EXPRESSION_TEXT_MAX) {
        snprintf(message, EXPRESSION_MESSAGE_MAX, "longer than %d bytes", EXPRESSION_TEXT_MAX);
        return EXPRESSION_ERR_LIMIT;
    }
    if (memchr(text, '\0', len)) {
        p.at = (size_t)((const char *)memchr(text, '\0', len) - text);
        fail(&p, EXPRESSION_ERR_SYNTAX, "a NUL byte");
        return p.status;
    }
    if (parse_expr(&p) && peek(&p) != 0) {
        size_t n = utf8_char_len(p.s + p.at, p.len - p.at);
        if (n > 0)
            fail(&p, EXPRESSION_ERR_SYNTAX, "unexpected '%.*s'", (int)n, p.s + p.at);
        else
            fail(&p, EXPRESSION_ERR_SYNTAX, "unexpected byte 0x%02X", (unsigned char)p.s[p.at]);
    }
    return p.status;
}

/* ---- evaluation ---------------------------------------------------------------------------- */

struct evaluation {
    const struct expression *x;
    const struct event *e;
    struct expression_scratch *scratch;
    char *message;
    struct expression_value stack[EXPRESSION_STACK_MAX];
    size_t depth;
};

static enum expression_status failed(struct evaluation *v, enum expression_status status,
                                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->message, EXPRESSION_MESSAGE_MAX, fmt, ap);
    va_end(ap);
    return status;
}

static struct expression_value number_value(money_t n)
{
    return (struct expression_value){.number = n, .scratch_at = SIZE_MAX};
}

static struct expression_value string_value(const char *text, size_t len)
{
    return (struct expression_value){
        .is_string = true, .text = text, .len = len, .scratch_at = SIZE_MAX};
}

/*
 * A string property as a number when it reads as one, as Lago's decimal parser reads it: a
 * sign, digits with an optional point (".5" and "5." too), an optional exponent. False if it
 * is not such text; *status is EXPRESSION_ERR_RANGE if it is but does not fit.
 */
static bool number_of_text(const char *s, size_t n, money_t *out, enum expression_status *status)
{
    char canonical[EVENT_PROPERTY_VALUE_MAX + 3];
    size_t i = 0, w = 0, digits = 0;
    *status = EXPRESSION_OK;
    if (n > EVENT_PROPERTY_VALUE_MAX)
        return false;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        if (s[i++] == '-')
            canonical[w++] = '-';
    size_t int_start = i;
    while (i < n && is_digit(s[i]))
        i++;
    size_t int_end = i;
    while (int_start + 1 < int_end && s[int_start] == '0')
        int_start++; /* leading zeros: JSON's grammar, which money_parse reads, has none */
    digits += int_end - int_start;
    if (int_end == int_start)
        canonical[w++] = '0';
    memcpy(canonical + w, s + int_start, int_end - int_start);
    w += int_end - int_start;
    if (i < n && s[i] == '.') {
        size_t f = ++i;
        while (i < n && is_digit(s[i]))
            i++;
        digits += i - f;
        if (i > f) {
            canonical[w++] = '.';
            memcpy(canonical + w, s + f, i - f);
            w += i - f;
        }
    }
    if (digits == 0)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t e = i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t x = i;
        while (i < n && is_digit(s[i]))
            i++;
        if (i == x)
            return false;
        memcpy(canonical + w, s + e, i - e);
        w += i - e;
    }
    if (i != n)
        return false;
    enum money_status st = money_parse(canonical, w, out);
    if (st != MONEY_OK)
        *status = EXPRESSION_ERR_RANGE;
    return true;
}

static enum expression_status push_property(struct evaluation *v, const struct expression_node *n)
{
    const char *name = v->x->text + n->offset;
    const struct event_property *found = NULL;
    for (size_t i = 0; i < v->e->property_count; i++) {
        const char *key = v->e->properties[i].key;
        if (strncmp(key, name, n->len) == 0 && key[n->len] == '\0')
            found = &v->e->properties[i]; /* the last of a repeated key, as JSON readers keep */
    }
    if (!found)
        return failed(v, EXPRESSION_ERR_VARIABLE, "Variable: %.*s not found", (int)n->len, name);
    struct expression_value *top = &v->stack[v->depth++];
    if (!found->value) { /* null: Lago reads it as the empty string */
        *top = string_value("", 0);
        return EXPRESSION_OK;
    }
    size_t len = strlen(found->value);
    enum expression_status status = EXPRESSION_OK;
    money_t number;
    bool numeric;
    if (found->is_string) {
        numeric = number_of_text(found->value, len, &number, &status);
    } else { /* a JSON number's text, or true, false, an object or an array: read as text */
        numeric = found->value[0] == '-' || is_digit(found->value[0]);
        if (numeric && money_parse(found->value, len, &number) != MONEY_OK)
            status = EXPRESSION_ERR_RANGE;
    }
    if (status != EXPRESSION_OK)
        return failed(v, status, "event.properties.%.*s: a number past 38 digits", (int)n->len,
                      name);
    *top = numeric ? number_value(number) : string_value(found->value, len);
    return EXPRESSION_OK;
}

/* The operand at `at` as a number, or the error that it is a string. */
static enum expression_status number_at(struct evaluation *v, size_t at, money_t *out)
{
    const struct expression_value *value = &v->stack[at];
    if (!value->is_string) {
        *out = value->number;
        return EXPRESSION_OK;
    }
    size_t shown = value->len;
    if (shown > 40) { /* cut before a character that would not fit whole */
        shown = 40;
        while (shown > 0 && ((unsigned char)value->text[shown] & 0xC0) == 0x80)
            shown--;
    }
    return failed(v, EXPRESSION_ERR_TYPE, "Expected a decimal, got the string '%.*s'", (int)shown,
                  value->text);
}

static enum expression_status range_error(struct evaluation *v, enum money_status st)
{
    if (st == MONEY_ERR_DIV_BY_ZERO)
        return failed(v, EXPRESSION_ERR_DIV_BY_ZERO, "Division by zero");
    return failed(v, EXPRESSION_ERR_RANGE, "a result past 38 digits");
}

/* ---- arithmetic within 38 digits ---------------------------------------------------------- */

/* 10^k, 0 <= k <= 38. */
static __int128 power_of_ten(int32_t k)
{
    __int128 p = 1;
    while (k-- > 0)
        p *= 10;
    return p;
}

/*
 * a / b with as many decimals as fit (at most 38), rounded half up: the first scale down from
 * 38 whose result fits is the most that do. The quotient's integer digits are about a's less
 * b's, so the search starts one above where they leave room.
 */
static enum money_status fit_div(money_t a, money_t b, money_t *out)
{
    int32_t integer_digits = 0;
    for (__int128 m = a.coef < 0 ? -a.coef : a.coef; m > 0; m /= 10)
        integer_digits++;
    for (__int128 m = b.coef < 0 ? -b.coef : b.coef; m > 0; m /= 10)
        integer_digits--;
    integer_digits += b.scale - a.scale;
    int32_t scale = MONEY_SCALE_MAX - integer_digits + 1;
    if (scale > MONEY_SCALE_MAX)
        scale = MONEY_SCALE_MAX;
    enum money_status st = MONEY_ERR_OVERFLOW;
    for (; scale >= 0 && st == MONEY_ERR_OVERFLOW; scale--)
        st = money_div(a, b, scale, MONEY_ROUND_HALF_UP, out);
    if (st == MONEY_OK)
        *out = money_normalize(*out);
    return st;
}

/* a * b, exact if it fits, else rounded half up at the most decimals that fit. */
static enum money_status fit_mul(money_t a, money_t b, money_t *out)
{
    enum money_status st = money_mul(a, b, out);
    if (st != MONEY_ERR_PRECISION)
        return st;
    int32_t scale = a.scale + b.scale;
    if (scale > MONEY_SCALE_MAX)
        scale = MONEY_SCALE_MAX;
    for (st = MONEY_ERR_OVERFLOW; scale >= 0 && st == MONEY_ERR_OVERFLOW; scale--)
        st = money_mul_round(a, b, scale, MONEY_ROUND_HALF_UP, out);
    if (st == MONEY_OK)
        *out = money_normalize(*out);
    return st;
}

/*
 * v at `scale` decimals (below v's own) as q + r / 10^e, q and r truncated toward zero with
 * v's sign, e = v.scale - scale; or v's coefficient scaled up (r = 0) when scale is higher.
 * False if q would reach 10^38.
 */
static bool split_at(money_t v, int32_t scale, __int128 *q, __int128 *r, int32_t *e)
{
    *e = v.scale > scale ? v.scale - scale : 0;
    if (*e > 0) {
        __int128 unit = power_of_ten(*e);
        *q = v.coef / unit;
        *r = v.coef % unit;
        return true;
    }
    __int128 up = power_of_ten(scale - v.scale), m = v.coef < 0 ? -v.coef : v.coef;
    if (m >= MONEY_COEF_LIMIT / up)
        return false;
    *q = v.coef * up;
    *r = 0;
    return true;
}

/* a + b rounded half up at `scale` decimals; false if it does not fit there. */
static bool add_at(money_t a, money_t b, int32_t scale, money_t *out)
{
    __int128 qa, ra, qb, rb;
    int32_t ea, eb;
    if (!split_at(a, scale, &qa, &ra, &ea) || !split_at(b, scale, &qb, &rb, &eb))
        return false;
    int32_t e = ea > eb ? ea : eb;
    __int128 unit = power_of_ten(e);
    ra *= power_of_ten(e - ea); /* both remainders in units of 10^-(scale + e) */
    rb *= power_of_ten(e - eb);
    __int128 q = qa, r = ra;
    if ((qb > 0 && q > MONEY_COEF_LIMIT - qb) || (qb < 0 && q < -MONEY_COEF_LIMIT - qb))
        return false;
    q += qb;
    if (r > 0 && rb > 0 && r >= unit - rb) { /* carry, keeping |r| < unit */
        r -= unit - rb;
        q++;
    } else if (r < 0 && rb < 0 && r <= -unit - rb) {
        r += unit + rb;
        q--;
    } else {
        r += rb;
    }
    if (q > 0 && r < 0) { /* the same sign for both parts */
        q--;
        r += unit;
    } else if (q < 0 && r > 0) {
        q++;
        r -= unit;
    }
    __int128 magnitude = r < 0 ? -r : r;
    if (e > 0 && magnitude >= unit - magnitude) /* half up: away from zero */
        q += (q < 0 || (q == 0 && r < 0)) ? -1 : 1;
    if (q <= -MONEY_COEF_LIMIT || q >= MONEY_COEF_LIMIT)
        return false;
    *out = money_normalize((money_t){q, scale});
    return true;
}

/* a + b, exact if it fits, else rounded half up at the most decimals that fit. */
static enum money_status fit_add(money_t a, money_t b, money_t *out)
{
    enum money_status st = money_add(a, b, out);
    if (st != MONEY_ERR_PRECISION)
        return st;
    for (int32_t scale = a.scale > b.scale ? a.scale : b.scale; scale >= 0; scale--)
        if (add_at(a, b, scale, out))
            return MONEY_OK;
    return MONEY_ERR_OVERFLOW;
}

static enum expression_status arithmetic(struct evaluation *v, enum expression_op op)
{
    money_t a = MONEY_ZERO, b = MONEY_ZERO, r = MONEY_ZERO;
    enum expression_status status;
    if ((status = number_at(v, v->depth - 2, &a)) != EXPRESSION_OK ||
        (status = number_at(v, v->depth - 1, &b)) != EXPRESSION_OK)
        return status;
    enum money_status st;
    switch (op) {
    case EXPRESSION_ADD: st = fit_add(a, b, &r); break;
    case EXPRESSION_SUBTRACT: st = fit_add(a, money_neg(b), &r); break;
    case EXPRESSION_MULTIPLY: st = fit_mul(a, b, &r); break;
    default: st = fit_div(a, b, &r); break;
    }
    if (st != MONEY_OK)
        return range_error(v, st);
    v->depth--;
    v->stack[v->depth - 1] = number_value(r);
    return EXPRESSION_OK;
}

/*
 * x rounded at `digits` decimals (negative: to tens, hundreds...) with `mode`, as Lago's
 * with_scale_round: any number of decimals. Past 38 there is nothing to round; below -37 a
 * value (under 10^38) rounds to 0 or to a power of ten too large to hold.
 */
static enum money_status round_at(money_t x, int64_t digits, enum money_round mode, money_t *out)
{
    if (digits >= 0) {
        if (x.scale <= digits) {
            *out = x; /* nothing to round (and no room needed for trailing zeros) */
            return MONEY_OK;
        }
        return money_round(x, (int32_t)digits, mode, out);
    }
    if (digits < -(MONEY_DIGITS_MAX - 1)) {
        bool away =
            (mode == MONEY_ROUND_CEIL && money_sign(x) > 0) ||
            (mode == MONEY_ROUND_FLOOR && money_sign(x) < 0) ||
            (mode == MONEY_ROUND_HALF_UP && digits == -MONEY_DIGITS_MAX &&
             money_cmp(money_abs(x), (money_t){5 * power_of_ten(MONEY_DIGITS_MAX - 1), 0}) >= 0);
        *out = MONEY_ZERO;
        return away ? MONEY_ERR_OVERFLOW : MONEY_OK;
    }
    money_t unit = {power_of_ten((int32_t)-digits), 0}, units;
    enum money_status st = money_div(x, unit, 0, mode, &units);
    return st == MONEY_OK ? money_mul(units, unit, out) : st;
}

static enum expression_status rounding(struct evaluation *v, const struct expression_node *n)
{
    size_t base = v->depth - n->argc;
    money_t x = MONEY_ZERO, d = MONEY_ZERO;
    enum expression_status status;
    if ((status = number_at(v, base, &x)) != EXPRESSION_OK ||
        (n->argc == 2 && (status = number_at(v, base + 1, &d)) != EXPRESSION_OK))
        return status;
    money_t whole; /* Lago's to_i64: truncated, and an integer a 64-bit one holds */
    if (money_round(d, 0, MONEY_ROUND_DOWN, &whole) != MONEY_OK || whole.coef < INT64_MIN ||
        whole.coef > INT64_MAX)
        return failed(v, EXPRESSION_ERR_RANGE, "decimals past a 64-bit integer");
    enum money_round mode = n->op == EXPRESSION_ROUND  ? MONEY_ROUND_HALF_UP
                            : n->op == EXPRESSION_CEIL ? MONEY_ROUND_CEIL
                                                       : MONEY_ROUND_FLOOR;
    money_t r;
    enum money_status st = round_at(x, (int64_t)whole.coef, mode, &r);
    if (st != MONEY_OK)
        return range_error(v, st);
    v->depth = base + 1;
    v->stack[base] = number_value(money_normalize(r));
    return EXPRESSION_OK;
}

/* min or max of numbers. */
static enum expression_status extreme(struct evaluation *v, const struct expression_node *n)
{
    size_t base = v->depth - n->argc;
    money_t best = MONEY_ZERO;
    for (size_t i = base; i < v->depth; i++) {
        money_t x = MONEY_ZERO;
        enum expression_status status = number_at(v, i, &x);
        if (status != EXPRESSION_OK)
            return status;
        int c = money_cmp(x, best);
        if (i == base || (n->op == EXPRESSION_MIN ? c < 0 : c > 0))
            best = x;
    }
    v->depth = base + 1;
    v->stack[base] = number_value(best);
    return EXPRESSION_OK;
}

/*
 * concat: the arguments' text, written after the scratch's last string, then moved down over
 * the strings its arguments took there (the last ones written, stack order being scratch
 * order), so that the scratch holds only strings still alive.
 */
static enum expression_status concat(struct evaluation *v, const struct expression_node *n)
{
    struct expression_scratch *s = v->scratch;
    size_t base = v->depth - n->argc, start = s->used, reuse = s->used;
    for (size_t i = base; i < v->depth; i++) {
        const struct expression_value *arg = &v->stack[i];
        char number[MONEY_TEXT_MAX];
        const char *text = arg->text;
        size_t len = arg->len;
        if (arg->scratch_at < reuse)
            reuse = arg->scratch_at;
        if (!arg->is_string) {
            len = money_format(arg->number, number, sizeof number);
            text = number;
        }
        if (s->used - start + len > EXPRESSION_STRING_MAX)
            return failed(v, EXPRESSION_ERR_TOO_LONG, "a string past %d bytes",
                          EXPRESSION_STRING_MAX);
        if (s->used + len > EXPRESSION_SCRATCH_MAX)
            return failed(v, EXPRESSION_ERR_TOO_LONG, "strings past %d bytes at once",
                          EXPRESSION_SCRATCH_MAX);
        memcpy(s->bytes + s->used, text, len);
        s->used += len;
    }
    size_t len = s->used - start;
    memmove(s->bytes + reuse, s->bytes + start, len);
    s->used = reuse + len;
    v->depth = base + 1;
    v->stack[base] = string_value(s->bytes + reuse, len);
    v->stack[base].scratch_at = reuse;
    return EXPRESSION_OK;
}

static enum expression_status step(struct evaluation *v, const struct expression_node *n,
                                   tally_time timestamp)
{
    switch (n->op) {
    case EXPRESSION_NUMBER: v->stack[v->depth++] = number_value(n->number); return EXPRESSION_OK;
    case EXPRESSION_STRING:
        v->stack[v->depth++] = string_value(v->x->text + n->offset, n->len);
        return EXPRESSION_OK;
    case EXPRESSION_PROPERTY: return push_property(v, n);
    case EXPRESSION_CODE:
        v->stack[v->depth++] = string_value(v->e->code, strlen(v->e->code));
        return EXPRESSION_OK;
    case EXPRESSION_TIMESTAMP: {
        int64_t seconds = timestamp / TIMESTAMP_USEC_PER_SEC;
        if (timestamp % TIMESTAMP_USEC_PER_SEC < 0)
            seconds--; /* floored, as Ruby's Time#to_i */
        v->stack[v->depth++] = number_value(money_from_int(seconds));
        return EXPRESSION_OK;
    }
    case EXPRESSION_NEGATE: {
        money_t x = MONEY_ZERO;
        enum expression_status status = number_at(v, v->depth - 1, &x);
        if (status == EXPRESSION_OK)
            v->stack[v->depth - 1] = number_value(money_neg(x));
        return status;
    }
    case EXPRESSION_ADD:
    case EXPRESSION_SUBTRACT:
    case EXPRESSION_MULTIPLY:
    case EXPRESSION_DIVIDE: return arithmetic(v, n->op);
    case EXPRESSION_ROUND:
    case EXPRESSION_CEIL:
    case EXPRESSION_FLOOR: return rounding(v, n);
    case EXPRESSION_CONCAT: return concat(v, n);
    case EXPRESSION_MIN:
    case EXPRESSION_MAX: return extreme(v, n);
    }
    return failed(v, EXPRESSION_ERR_SYNTAX, "unknown operation");
}

enum expression_status expression_evaluate(const struct expression *x, const struct event *e,
                                           tally_time timestamp, struct expression_scratch *scratch,
                                           struct expression_value *out,
                                           char message[EXPRESSION_MESSAGE_MAX])
{
    struct evaluation v; /* (the stack is not cleared: only what was pushed is read) */
    v.x = x;
    v.e = e;
    v.scratch = scratch;
    v.message = message;
    v.depth = 0;
    message[0] = '\0';
    scratch->used = 0;
    for (size_t i = 0; i < x->count; i++) {
        enum expression_status status = step(&v, &x->nodes[i], timestamp);
        if (status != EXPRESSION_OK)
            return status;
    }
    /* expression_parse bounded the stack and left exactly one value */
    if (v.depth != 1)
        return failed(&v, EXPRESSION_ERR_SYNTAX, "not a parsed expression");
    *out = v.stack[0];
    if (!out->is_string && out->number.scale > EXPRESSION_RESULT_DECIMALS) {
        /* more decimals than that leave fewer than 23 integer digits: this cannot overflow */
        enum money_status st =
            money_round(out->number, EXPRESSION_RESULT_DECIMALS, MONEY_ROUND_HALF_UP, &out->number);
        assert(st == MONEY_OK);
        (void)st;
        out->number = money_normalize(out->number);
    }
    return EXPRESSION_OK;
}

size_t expression_value_text(const struct expression_value *v, char number[MONEY_TEXT_MAX],
                             const char **text)
{
    if (v->is_string) {
        *text = v->text;
        return v->len;
    }
    *text = number;
    return money_format_fraction(v->number, 1, number, MONEY_TEXT_MAX);
}
