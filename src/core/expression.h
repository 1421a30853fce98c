/*
 * core/expression: a billable metric's custom expression, the per-event formula Lago
 * evaluates at ingestion to compute the value its aggregation reads
 * (`event.properties.input_tokens + event.properties.output_tokens`,
 * `ceil(event.properties.duration_ms / 1000)`, `concat(event.properties.user, '-',
 * event.properties.app)`), written into properties[field_name].
 *
 * The language is Lago's:
 *   expr    := term (('+' | '-') term)*
 *   term    := atom (('*' | '/') atom)*
 *   atom    := '-'? primary
 *   primary := decimal | 'text' | variable | call | '(' expr ')'
 *   variable:= event.code | event.timestamp | event.properties.<letter (letter|digit|_)*>
 *   call    := (round | ceil | floor) '(' expr [',' expr] ')'
 *            | (concat | min | max) '(' expr (',' expr)* ')'
 * with a function name in lower case, upper case or capitalized, decimals without sign or
 * exponent, strings without escapes, and spaces (only) between tokens.
 *
 * Values are numbers (core/money) or strings. A property is a number when its value reads as
 * one (a JSON number, or a string such as "12.5"), else a string; event.timestamp is the
 * event's Unix seconds, floored. Arithmetic is exact while a result fits money_t's 38
 * significant digits and 38 decimals; past them (a quotient such as 1/3, a product of two
 * such) it is rounded half up to the most decimals that fit. The expression's number is then
 * rounded half up to EXPRESSION_RESULT_DECIMALS, which a sum of many of them can hold. Lago
 * keeps a hundred digits for a quotient and every digit of the rest: the two agree to the
 * 15th decimal unless a 38th significant digit is amplified past it. round is half up, ceil
 * and floor toward +/- infinity, at 0 decimals or at the second argument's (negative: tens,
 * hundreds; truncated to an integer); min and max take numbers. concat writes numbers in
 * their canonical text ("12.5").
 *
 * Why parsed once into postfix nodes: an expression is evaluated for every event of its
 * metric on the writer, so the text is read when the metric is saved (and refused there if it
 * does not parse) and once more when the writer first meets the metric; each event then costs
 * one pass over at most EXPRESSION_NODES_MAX nodes and no allocation.
 *
 * Pure: no I/O, no allocation, no globals, no floating point. Threads: any.
 */
#ifndef TALLY_CORE_EXPRESSION_H
#define TALLY_CORE_EXPRESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event.h"
#include "core/money.h"
#include "core/timestamp.h"

#define EXPRESSION_TEXT_MAX 4096      /* bytes of an expression's text */
#define EXPRESSION_NODES_MAX 256      /* literals, variables, operators and calls */
#define EXPRESSION_DEPTH_MAX 32       /* nesting of parentheses and calls */
#define EXPRESSION_STACK_MAX 64       /* values alive at once while evaluating */
#define EXPRESSION_ARGS_MAX 64        /* arguments of one concat */
#define EXPRESSION_RESULT_DECIMALS 15 /* as an event's precise_total_amount_cents keeps */
/* A string result becomes a property value, so it has a property value's limit. */
#define EXPRESSION_STRING_MAX EVENT_PROPERTY_VALUE_MAX
/* Bytes the strings alive at once may take (each concat's arguments give theirs back): a
 * result within EXPRESSION_STRING_MAX never needs more than twice that. */
#define EXPRESSION_SCRATCH_MAX (4 * EXPRESSION_STRING_MAX)
#define EXPRESSION_MESSAGE_MAX 192 /* a parse or evaluation error's text, with its NUL */

enum expression_status {
    EXPRESSION_OK = 0,
    EXPRESSION_ERR_SYNTAX,      /* the text is not an expression (parse) */
    EXPRESSION_ERR_LIMIT,       /* past one of the limits above (parse) */
    EXPRESSION_ERR_VARIABLE,    /* a property the event does not have */
    EXPRESSION_ERR_TYPE,        /* a string where a number is needed */
    EXPRESSION_ERR_DIV_BY_ZERO, /* a division by zero */
    EXPRESSION_ERR_RANGE,       /* a number that does not fit (core/money's 38 digits) */
    EXPRESSION_ERR_TOO_LONG,    /* a string past EXPRESSION_STRING_MAX */
};

enum expression_op {
    EXPRESSION_NUMBER,
    EXPRESSION_STRING,
    EXPRESSION_PROPERTY,
    EXPRESSION_CODE,
    EXPRESSION_TIMESTAMP,
    EXPRESSION_NEGATE,
    EXPRESSION_ADD,
    EXPRESSION_SUBTRACT,
    EXPRESSION_MULTIPLY,
    EXPRESSION_DIVIDE,
    EXPRESSION_ROUND,
    EXPRESSION_CEIL,
    EXPRESSION_FLOOR,
    EXPRESSION_CONCAT,
    EXPRESSION_MIN,
    EXPRESSION_MAX,
};

struct expression_node {
    enum expression_op op;
    uint16_t offset, len; /* STRING, PROPERTY: the literal's or the name's bytes in the text */
    uint16_t argc;        /* ROUND, CEIL, FLOOR (1 or 2), CONCAT, MIN, MAX (1 or more) */
    money_t number;       /* NUMBER */
};

/* A parsed expression: its nodes in postfix order. `text` is borrowed from the caller of
 * expression_parse and must outlive the expression (literals and names point into it). */
struct expression {
    const char *text;
    size_t count;
    struct expression_node nodes[EXPRESSION_NODES_MAX];
};

/* A value: a number, or a string of `len` bytes (not NUL-terminated; borrowed from the
 * expression's text, the event, or the scratch, for as long as those live). */
struct expression_value {
    bool is_string;
    money_t number;
    const char *text;
    size_t len;
    size_t scratch_at; /* where a string concat made starts in the scratch; SIZE_MAX: elsewhere */
};

/* Where concat writes its strings during one evaluation. */
struct expression_scratch {
    size_t used;
    char bytes[EXPRESSION_SCRATCH_MAX];
};

/*
 * Parses `len` bytes of `text` (borrowed for the expression's life) into *out. On failure,
 * EXPRESSION_ERR_SYNTAX or EXPRESSION_ERR_LIMIT, and `message` says what and where
 * ("at 12: expected ')'").
 */
enum expression_status expression_parse(const char *text, size_t len, struct expression *out,
                                        char message[EXPRESSION_MESSAGE_MAX]);

/*
 * Evaluates `x` for event `e` (its code and properties), whose timestamp is `timestamp` (an
 * event sent without one has the clock's). The result may borrow from x's text, e and
 * `scratch` (reset here). On failure `message` says why ("Variable: tokens not found").
 */
enum expression_status expression_evaluate(const struct expression *x, const struct event *e,
                                           tally_time timestamp, struct expression_scratch *scratch,
                                           struct expression_value *out,
                                           char message[EXPRESSION_MESSAGE_MAX]);

/*
 * The value as a property's text, into *text (`len` returned): a string's own bytes, or a
 * number written with at least one decimal ("2100.0", "801.5"), as Lago's BigDecimal is, in
 * `number`.
 */
size_t expression_value_text(const struct expression_value *v, char number[MONEY_TEXT_MAX],
                             const char **text);

#endif
