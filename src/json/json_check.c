/* json/json_check: see json_check.h. */
#include "json/json_check.h"

#include <stdint.h>
#include <string.h>

static const char NOT_A_NUMBER[] =
    "the body is not valid JSON: a number is not written as JSON writes numbers (NaN, "
    "Infinity, 05, 1., .5 and 1.e5 are not; send such a value as a string)";
static const char LONE_SURROGATE[] =
    "the body is not valid JSON text: a \\u escape names half of a UTF-16 surrogate pair "
    "without the other half, which is no character";
static const char MALFORMED[] = "the body is not valid JSON";

struct cursor {
    const char *p, *end;
    const char *why; /* set by the first refusal */
};

static bool refuse(struct cursor *c, const char *why)
{
    c->why = why;
    return false;
}

static void skip_space(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* One or more digits. */
static bool digits(struct cursor *c)
{
    const char *start = c->p;
    while (c->p < c->end && is_digit(*c->p))
        c->p++;
    return c->p > start;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool number(struct cursor *c)
{
    if (c->p < c->end && *c->p == '-')
        c->p++;
    if (c->p < c->end && *c->p == '0') {
        c->p++;
        if (c->p < c->end && is_digit(*c->p))
            return refuse(c, NOT_A_NUMBER);
    } else if (!digits(c)) {
        return refuse(c, NOT_A_NUMBER);
    }
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (!digits(c))
            return refuse(c, NOT_A_NUMBER);
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (!digits(c))
            return refuse(c, NOT_A_NUMBER);
    }
    return true;
}

static bool hex4(struct cursor *c, unsigned *out)
{
    if (c->end - c->p < 4)
        return refuse(c, MALFORMED);
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = *c->p++;
        unsigned d = ch >= '0' && ch <= '9'   ? (unsigned)(ch - '0')
                     : ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10)
                     : ch >= 'A' && ch <= 'F' ? (unsigned)(ch - 'A' + 10)
                                              : 16;
        if (d == 16)
            return refuse(c, MALFORMED);
        v = v * 16 + d;
    }
    *out = v;
    return true;
}

static bool is_high_surrogate(unsigned u)
{
    return u >= 0xD800 && u <= 0xDBFF;
}

static bool is_low_surrogate(unsigned u)
{
    return u >= 0xDC00 && u <= 0xDFFF;
}

/* After \u: a character, or a high surrogate escaped with the low one right after it. */
static bool unicode_escape(struct cursor *c)
{
    unsigned u;
    if (!hex4(c, &u))
        return false;
    if (is_low_surrogate(u))
        return refuse(c, LONE_SURROGATE);
    if (!is_high_surrogate(u))
        return true;
    if (c->end - c->p < 2 || c->p[0] != '\\' || c->p[1] != 'u')
        return refuse(c, LONE_SURROGATE);
    c->p += 2;
    if (!hex4(c, &u))
        return false;
    return is_low_surrogate(u) ? true : refuse(c, LONE_SURROGATE);
}

/* A string, from its opening quote (its UTF-8 is checked before: json_in_parse). */
static bool string(struct cursor *c)
{
    if (c->p >= c->end || *c->p != '"')
        return refuse(c, MALFORMED);
    c->p++;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p++;
        if (ch == '"')
            return true;
        if (ch < 0x20)
            return refuse(c, MALFORMED);
        if (ch != '\\')
            continue;
        if (c->p >= c->end)
            break;
        ch = (unsigned char)*c->p++;
        if (ch == 'u') {
            if (!unicode_escape(c))
                return false;
        } else if (ch == 0 || !strchr("\"\\/bfnrt", ch)) {
            return refuse(c, MALFORMED);
        }
    }
    return refuse(c, MALFORMED);
}

static bool literal(struct cursor *c, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return refuse(c, MALFORMED);
    c->p += n;
    return true;
}

/* A value that is not an object or an array. */
static bool scalar(struct cursor *c)
{
    switch (*c->p) {
    case '"': return string(c);
    case 't': return literal(c, "true");
    case 'f': return literal(c, "false");
    case 'n': return literal(c, "null");
    case 'N': /* NaN */
    case 'I': /* Infinity */
    case '+':
    case '.': return refuse(c, NOT_A_NUMBER);
    default: return number(c);
    }
}

/* An object's member name and its colon. */
static bool member_name(struct cursor *c)
{
    skip_space(c);
    if (!string(c))
        return false;
    skip_space(c);
    if (c->p >= c->end || *c->p != ':')
        return refuse(c, MALFORMED);
    c->p++;
    return true;
}

bool json_check(const char *text, size_t len, const char **why)
{
    struct cursor c = {text, text + len, NULL};
    uint64_t objects = 0; /* bit d: the container at depth d is an object (else an array) */
    size_t depth = 0;
    for (;;) {
        /* a value */
        skip_space(&c);
        if (c.p >= c.end) {
            c.why = MALFORMED;
            break;
        }
        char open = *c.p;
        if (open == '{' || open == '[') {
            if (depth == JSON_CHECK_DEPTH_MAX)
                return true; /* json-c's nesting limit, lower, refused it already */
            c.p++;
            if (open == '{')
                objects |= UINT64_C(1) << depth;
            else
                objects &= ~(UINT64_C(1) << depth);
            depth++;
            skip_space(&c);
            if (c.p < c.end && *c.p == (open == '{' ? '}' : ']')) {
                c.p++;
                depth--;
            } else if (open == '[' || member_name(&c)) {
                continue; /* its first value */
            } else {
                break;
            }
        } else if (!scalar(&c)) {
            break;
        }
        /* after a value: the next one of its container, or the ends of containers */
        bool next = false;
        while (!next) {
            skip_space(&c);
            if (depth == 0) {
                if (c.p == c.end)
                    return true;
                c.why = MALFORMED;
                break;
            }
            bool in_object = (objects >> (depth - 1)) & 1;
            if (c.p < c.end && *c.p == ',') {
                c.p++;
                if (in_object && !member_name(&c))
                    break;
                next = true;
            } else if (c.p < c.end && *c.p == (in_object ? '}' : ']')) {
                c.p++;
                depth--;
            } else {
                c.why = MALFORMED;
                break;
            }
        }
        if (!next)
            break;
    }
    *why = c.why ? c.why : MALFORMED;
    return false;
}
