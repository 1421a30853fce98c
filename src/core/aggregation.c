/*
 * core/aggregation: Lago's six aggregation types as incremental, exact, order-independent
 * states. See aggregation.h for the semantics, the late-event rule and the memory costs.
 *
 * Inside:
 *   - numbers: Lago's numeric test on the property text, then money_parse (exact);
 *   - unique_count: an open-addressing table (SipHash-1-3, linear probing, load <= 3/4)
 *     whose entries keep the last (timestamp, sequence) and operation of each value, and a
 *     pool holding the values' bytes; no allocation per event once a value is known;
 *   - weighted_sum: two 512-bit two's complement integers at scale 10^38: the level
 *     (initial + Σ delta) and the moment Σ delta × (t - from) in microseconds. Bound: a
 *     delta is below 10^38 at scale <= 38, so |delta × 10^38| < 10^76 < 2^253; times a
 *     time difference below 2^63 µs gives < 2^316; a sum of at most 2^63 such terms stays
 *     below 2^379, far from 2^511. So additions and multiplications here never overflow and
 *     need no check; only the conversion back to money_t can fail, and it says so;
 *   - sum's optional kept values: two parallel arrays sorted by (timestamp, sequence), so
 *     that aggregation_values hands the charge model a plain money_t array; a bounded keep
 *     (the first N events) drops what falls past its bound, so its arrays stay N long.
 */
#include "core/aggregation.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;

/* ---- Statuses ---------------------------------------------------------------------------- */

const char *aggregation_status_text(enum aggregation_status status)
{
    switch (status) {
    case AGGREGATION_OK: return "ok";
    case AGGREGATION_IGNORED: return "event not aggregated (property absent or not numeric)";
    case AGGREGATION_ERR_OUT_OF_PERIOD: return "event timestamp outside the period";
    case AGGREGATION_ERR_OVERFLOW: return "aggregate does not fit (10^38 or more)";
    case AGGREGATION_ERR_PRECISION: return "aggregate needs more than 38 digits or decimals";
    case AGGREGATION_ERR_OPERATION: return "operation_type must be add or remove";
    case AGGREGATION_ERR_LIMIT: return "aggregation limit reached";
    case AGGREGATION_ERR_NO_MEMORY: return "out of memory";
    case AGGREGATION_ERR_NOW_BEFORE_EVENT: return "instant precedes an aggregated event";
    case AGGREGATION_ERR_INVALID: return "invalid aggregation argument";
    case AGGREGATION_ERR_GROUPS: return "too many pricing groups";
    case AGGREGATION_ERR_KEPT_VALUES: return "too many events for a sum keeping every value";
    }
    return "unknown aggregation status";
}

static enum aggregation_status from_money_status(enum money_status st)
{
    switch (st) {
    case MONEY_OK: return AGGREGATION_OK;
    case MONEY_ERR_OVERFLOW: return AGGREGATION_ERR_OVERFLOW;
    case MONEY_ERR_PRECISION: return AGGREGATION_ERR_PRECISION;
    default: return AGGREGATION_ERR_INVALID;
    }
}

/* ---- Order keys --------------------------------------------------------------------------- */

/* -1, 0, 1 as (timestamp, sequence) a <, =, > b. */
static int order_cmp(struct aggregation_order a, struct aggregation_order b)
{
    if (a.timestamp != b.timestamp)
        return a.timestamp < b.timestamp ? -1 : 1;
    if (a.sequence != b.sequence)
        return a.sequence < b.sequence ? -1 : 1;
    return 0;
}

static struct aggregation_order event_order(const struct aggregation_event *e)
{
    return (struct aggregation_order){e->timestamp, e->sequence};
}

/* ---- Lago's numbers ------------------------------------------------------------------------ */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * The property as a number, the way Lago's numeric_condition (^-?\d+(\.\d+)?$ on the text)
 * and PostgreSQL's ::numeric read it. A JSON number may also carry an exponent (its jsonb
 * text never shows one). Leading zeros are Lago-valid ("007") but not JSON, so they are
 * skipped before money_parse. AGGREGATION_IGNORED for anything Lago would not count.
 */
static enum aggregation_status parse_number(const struct aggregation_event *e, money_t *out)
{
    const char *s = e->value;
    size_t n = e->value_len;
    if (!s || n == 0)
        return AGGREGATION_IGNORED;
    size_t i = 0;
    bool neg = s[0] == '-';
    if (neg)
        i++;
    size_t int_start = i;
    while (i < n && is_digit(s[i]))
        i++;
    size_t int_end = i;
    if (int_end == int_start)
        return AGGREGATION_IGNORED;
    if (i < n && s[i] == '.') {
        size_t f = ++i;
        while (i < n && is_digit(s[i]))
            i++;
        if (i == f)
            return AGGREGATION_IGNORED;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E') && !e->value_is_string) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t x = i;
        while (i < n && is_digit(s[i]))
            i++;
        if (i == x)
            return AGGREGATION_IGNORED;
    }
    if (i != n)
        return AGGREGATION_IGNORED;
    while (int_start + 1 < int_end && s[int_start] == '0')
        int_start++;
    money_t v;
    enum money_status st = money_parse(s + int_start, n - int_start, &v);
    if (st == MONEY_ERR_SYNTAX)
        return AGGREGATION_IGNORED; /* unreachable: the grammar above is JSON's */
    if (st != MONEY_OK)
        return from_money_status(st);
    *out = neg ? money_neg(v) : v;
    return AGGREGATION_OK;
}

/* ---- 512-bit integers (weighted_sum) ---------------------------------------------------- */

#define WIDE_SCALE 38 /* the weighted sum's fixed scale: every money_t fits exactly */

static const uint64_t pow10_u64[20] = {1u,
                                       10u,
                                       100u,
                                       1000u,
                                       10000u,
                                       100000u,
                                       1000000u,
                                       10000000u,
                                       100000000u,
                                       1000000000u,
                                       10000000000u,
                                       100000000000u,
                                       1000000000000u,
                                       10000000000000u,
                                       100000000000000u,
                                       1000000000000000u,
                                       10000000000000000u,
                                       100000000000000000u,
                                       1000000000000000000u,
                                       10000000000000000000u};

static bool wide_is_neg(const uint64_t w[AGGREGATION_WIDE_LIMBS])
{
    return (w[AGGREGATION_WIDE_LIMBS - 1] >> 63) != 0;
}

static bool wide_is_zero(const uint64_t w[AGGREGATION_WIDE_LIMBS])
{
    for (size_t i = 0; i < AGGREGATION_WIDE_LIMBS; i++)
        if (w[i] != 0)
            return false;
    return true;
}

static void wide_neg(uint64_t w[AGGREGATION_WIDE_LIMBS])
{
    uint64_t carry = 1;
    for (size_t i = 0; i < AGGREGATION_WIDE_LIMBS; i++) {
        uint64_t v = ~w[i] + carry;
        carry = (carry && v == 0) ? 1 : 0;
        w[i] = v;
    }
}

static void wide_add(uint64_t w[AGGREGATION_WIDE_LIMBS], const uint64_t x[AGGREGATION_WIDE_LIMBS])
{
    uint64_t carry = 0;
    for (size_t i = 0; i < AGGREGATION_WIDE_LIMBS; i++) {
        u128 s = (u128)w[i] + x[i] + carry;
        w[i] = (uint64_t)s;
        carry = (uint64_t)(s >> 64);
    }
}

static void wide_sub(uint64_t w[AGGREGATION_WIDE_LIMBS], const uint64_t x[AGGREGATION_WIDE_LIMBS])
{
    uint64_t t[AGGREGATION_WIDE_LIMBS];
    memcpy(t, x, sizeof t);
    wide_neg(t);
    wide_add(w, t);
}

/* w × m modulo 2^512: exact for any signed w whose product fits (always, see the bound). */
static void wide_mul_u64(uint64_t w[AGGREGATION_WIDE_LIMBS], uint64_t m)
{
    uint64_t carry = 0;
    for (size_t i = 0; i < AGGREGATION_WIDE_LIMBS; i++) {
        u128 p = (u128)w[i] * m + carry;
        w[i] = (uint64_t)p;
        carry = (uint64_t)(p >> 64);
    }
}

static void wide_mul_pow10(uint64_t w[AGGREGATION_WIDE_LIMBS], int32_t e)
{
    while (e > 0) {
        int32_t k = e > 19 ? 19 : e;
        wide_mul_u64(w, pow10_u64[k]);
        e -= k;
    }
}

/* Unsigned w /= d; returns the remainder. */
static uint64_t wide_divmod_u64(uint64_t w[AGGREGATION_WIDE_LIMBS], uint64_t d)
{
    u128 r = 0;
    for (size_t i = AGGREGATION_WIDE_LIMBS; i-- > 0;) {
        u128 cur = (r << 64) | w[i];
        w[i] = (uint64_t)(cur / d);
        r = cur % d;
    }
    return (uint64_t)r;
}

/* v × 10^WIDE_SCALE as a wide integer. */
static void wide_from_money(money_t v, uint64_t out[AGGREGATION_WIDE_LIMBS])
{
    memset(out, 0, sizeof(uint64_t) * AGGREGATION_WIDE_LIMBS);
    u128 mag = v.coef < 0 ? (u128)(-v.coef) : (u128)v.coef;
    out[0] = (uint64_t)mag;
    out[1] = (uint64_t)(mag >> 64);
    wide_mul_pow10(out, WIDE_SCALE - v.scale);
    if (v.coef < 0)
        wide_neg(out);
}

/* Unsigned w < 10^38, and then its value. */
static bool wide_fits_coef(const uint64_t w[AGGREGATION_WIDE_LIMBS], u128 *v)
{
    for (size_t i = 2; i < AGGREGATION_WIDE_LIMBS; i++)
        if (w[i] != 0)
            return false;
    u128 x = ((u128)w[1] << 64) | w[0];
    if (x >= (u128)MONEY_COEF_LIMIT)
        return false;
    *v = x;
    return true;
}

/* The signed w / 10^scale as a money_t, exactly: the shortest representation that fits. */
static enum aggregation_status wide_to_money(const uint64_t w[AGGREGATION_WIDE_LIMBS],
                                             int32_t scale, money_t *out)
{
    uint64_t mag[AGGREGATION_WIDE_LIMBS];
    memcpy(mag, w, sizeof mag);
    bool neg = wide_is_neg(mag);
    if (neg)
        wide_neg(mag);
    while (scale > 0 && !wide_is_zero(mag)) {
        uint64_t t[AGGREGATION_WIDE_LIMBS];
        memcpy(t, mag, sizeof t);
        if (wide_divmod_u64(t, 10) != 0)
            break;
        memcpy(mag, t, sizeof t);
        scale--;
    }
    if (wide_is_zero(mag))
        scale = 0;
    u128 coef;
    if (!wide_fits_coef(mag, &coef)) {
        /* Too many digits: overflow if the integer part alone is too large. */
        int32_t e = scale;
        while (e > 0) {
            int32_t k = e > 19 ? 19 : e;
            wide_divmod_u64(mag, pow10_u64[k]);
            e -= k;
        }
        return wide_fits_coef(mag, &coef) ? AGGREGATION_ERR_PRECISION : AGGREGATION_ERR_OVERFLOW;
    }
    __int128 c = neg ? -(__int128)coef : (__int128)coef;
    return from_money_status(money_from_coef(c, scale, out));
}

/* ---- unique_count's table ------------------------------------------------------------------ */

struct aggregation_unique_entry {
    uint64_t hash;
    uint64_t offset; /* of the value's bytes in the pool */
    struct aggregation_order at;
    uint32_t ordinal; /* the value's rank among the state's (its track, if prorated) */
    uint16_t len;
    uint8_t flags;
};

/* len and ordinal are narrow so that an entry stays 40 bytes. */
_Static_assert(AGGREGATION_VALUE_TEXT_MAX <= UINT16_MAX, "a value's length fits an entry");
_Static_assert(AGGREGATION_UNIQUE_VALUES_MAX <= UINT32_MAX, "an ordinal fits an entry");

enum {
    ENTRY_USED = 1,
    ENTRY_PRESENT = 2, /* the last operation is add */
    ENTRY_NULL = 4,    /* the absent property (SQL NULL), a value of its own */
};

#define UNIQUE_CAPACITY_MIN 16
#define UNIQUE_POOL_MIN 256
/* Default SipHash key ("tally-aggregation"): fixed, so not secret; see set_hash_key. */
#define UNIQUE_KEY0 UINT64_C(0x74616c6c792d6167)
#define UNIQUE_KEY1 UINT64_C(0x6772656761746521)

static uint64_t rotl64(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = rotl64(v1, 13);                                                                       \
        v1 ^= v0;                                                                                  \
        v0 = rotl64(v0, 32);                                                                       \
        v2 += v3;                                                                                  \
        v3 = rotl64(v3, 16);                                                                       \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = rotl64(v3, 21);                                                                       \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = rotl64(v1, 17);                                                                       \
        v1 ^= v2;                                                                                  \
        v2 = rotl64(v2, 32);                                                                       \
    } while (0)

/* SipHash-1-3 of `len` bytes: a keyed hash, so clients cannot aim values at one slot. */
static uint64_t siphash13(const uint64_t key[2], const char *data, size_t len)
{
    uint64_t v0 = key[0] ^ UINT64_C(0x736f6d6570736575);
    uint64_t v1 = key[1] ^ UINT64_C(0x646f72616e646f6d);
    uint64_t v2 = key[0] ^ UINT64_C(0x6c7967656e657261);
    uint64_t v3 = key[1] ^ UINT64_C(0x7465646279746573);
    const unsigned char *p = (const unsigned char *)data;
    size_t full = len - len % 8;
    for (size_t i = 0; i < full; i += 8) {
        uint64_t m = 0;
        for (int b = 0; b < 8; b++)
            m |= (uint64_t)p[i + (size_t)b] << (8 * b);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t last = (uint64_t)len << 56;
    for (size_t b = 0; b < len % 8; b++)
        last |= (uint64_t)p[full + b] << (8 * b);
    v3 ^= last;
    SIPROUND;
    v0 ^= last;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static bool entry_is(const struct aggregation *a, const struct aggregation_unique_entry *en,
                     uint64_t hash, const char *value, size_t len)
{
    if (en->hash != hash)
        return false;
    if (!value)
        return (en->flags & ENTRY_NULL) != 0;
    return !(en->flags & ENTRY_NULL) && en->len == len &&
           (len == 0 || memcmp(a->u.unique.pool + en->offset, value, len) == 0);
}

/* The slot of the value, or of the empty slot where it would go. */
static size_t unique_slot(const struct aggregation *a, uint64_t hash, const char *value, size_t len)
{
    size_t mask = a->u.unique.capacity - 1;
    size_t i = (size_t)hash & mask;
    for (;;) {
        const struct aggregation_unique_entry *en = &a->u.unique.entries[i];
        if (!(en->flags & ENTRY_USED) || entry_is(a, en, hash, value, len))
            return i;
        i = (i + 1) & mask;
    }
}

static uint64_t unique_hash(const struct aggregation *a, const char *value, size_t len)
{
    /* NULL and "" hash apart so that they never share a probe chain needlessly. */
    return value ? siphash13(a->u.unique.key, value, len)
                 : siphash13(a->u.unique.key, "", 0) ^ UINT64_C(0x9e3779b97f4a7c15);
}

/* Doubles the table (or creates it). The state is unchanged on failure. */
static bool unique_grow(struct aggregation *a)
{
    size_t cap = a->u.unique.capacity ? a->u.unique.capacity * 2 : UNIQUE_CAPACITY_MIN;
    struct aggregation_unique_entry *fresh = calloc(cap, sizeof *fresh);
    if (!fresh)
        return false;
    struct aggregation_unique_entry *old = a->u.unique.entries;
    size_t old_cap = a->u.unique.capacity;
    for (size_t i = 0; i < old_cap; i++) {
        if (!(old[i].flags & ENTRY_USED))
            continue;
        size_t j = (size_t)old[i].hash & (cap - 1);
        while (fresh[j].flags & ENTRY_USED)
            j = (j + 1) & (cap - 1);
        fresh[j] = old[i];
    }
    free(old);
    a->u.unique.entries = fresh;
    a->u.unique.capacity = cap;
    return true;
}

static bool pool_reserve(struct aggregation *a, size_t more)
{
    size_t need = a->u.unique.pool_len + more;
    if (need <= a->u.unique.pool_cap)
        return true;
    size_t cap = a->u.unique.pool_cap ? a->u.unique.pool_cap : UNIQUE_POOL_MIN;
    while (cap < need)
        cap *= 2;
    char *p = realloc(a->u.unique.pool, cap);
    if (!p)
        return false;
    a->u.unique.pool = p;
    a->u.unique.pool_cap = cap;
    return true;
}

/* ---- Prorated unique_count: each value's days present ---------------------------------------
 *
 * Lago's prorated_query (aggregation.h, "Prorated unique count") comes down to this, per value:
 * a day of the period counts when the value is present at its start or is added on it. So a
 * value's days depend on its state at `from` (the carry: its last operation before the period)
 * and, for each local day of the period on which it has operations, on whether one of them adds
 * and on which is the last. An operation changes the carry or one day record, and the days it
 * can change run from there to the value's next day record: the state's Σ days moves by a
 * difference found by a binary search over the value's records (at most a period's days).
 */

struct aggregation_unique_day {
    struct aggregation_order last;      /* the day's last operation */
    struct aggregation_order first_add; /* and its first add, when has_add (a walk's order) */
    uint16_t day;                       /* its local day number - first_day */
    bool has_add;                       /* an operation of the day adds */
    bool last_add;                      /* the last one adds: the value's state at the day's end */
};

struct aggregation_unique_track {
    struct aggregation_order carry;      /* the last operation before `from`, if carried */
    struct aggregation_unique_day *days; /* sorted by day, malloc'd */
    uint32_t count, cap;
    bool carried;       /* an operation before `from` is known */
    bool carry_add;     /* and the last of them adds: the value is present at the period's start */
    bool has_first_add; /* an add before `from` is known */
    struct aggregation_order first_add; /* the earliest (a walk's order for a carried value) */
};

/* What one operation does to a value's track, worked out without changing it. */
struct track_plan {
    bool carried;                       /* it precedes `from`: it changes the carry */
    struct aggregation_order carry;     /* the carry after it */
    bool carry_add;                     /* ... */
    bool has_first_add;                 /* ... */
    struct aggregation_order first_add; /* ... */
    size_t index;                       /* or the day record it changes, or inserts there */
    bool insert;                        /* a day record of its own */
    struct aggregation_unique_day rec;  /* the day record after it */
    int64_t delta;                      /* the change of the value's days present */
};

static enum aggregation_status local_day(const struct aggregation *a, tally_time t, int64_t *day);

/* Whether an operation at `at` replaces the last one: the greater (timestamp, sequence) wins,
 * a duplicate one goes to remove, as unique_apply decides a value's state. */
static bool op_replaces(struct aggregation_order at, bool add, struct aggregation_order last,
                        bool last_add)
{
    int c = order_cmp(at, last);
    return c > 0 || (c == 0 && !add && last_add);
}

/* The days a record on day `off` decides when the state before it is `prev`: its own day, the
 * days up to `next` (the value's next record, or the period's end), and the next record's own
 * day unless an add of that day counts it anyway (`next_open`). */
static int64_t record_days(bool prev, const struct aggregation_unique_day *r, int64_t off,
                           int64_t next, bool next_open)
{
    return (prev || r->has_add ? 1 : 0) + (r->last_add ? next - off - 1 + (next_open ? 1 : 0) : 0);
}

/* Plans an operation on track t (NULL: a value not seen yet). */
static enum aggregation_status track_plan(const struct aggregation *a,
                                          const struct aggregation_unique_track *t, bool add,
                                          struct aggregation_order at, struct track_plan *p)
{
    static const struct aggregation_unique_track none;
    if (!t)
        t = &none;
    const struct aggregation_days *d = &a->u.unique.days;
    int64_t span = d->last_day - d->first_day + 1;
    memset(p, 0, sizeof *p);
    if (at.timestamp < a->from) {
        /* the carry decides the days before the first record, and that record's own */
        bool was = t->carried && t->carry_add;
        p->carried = true;
        p->carry = t->carry;
        p->carry_add = t->carry_add;
        p->has_first_add = t->has_first_add || add;
        p->first_add =
            add && (!t->has_first_add || order_cmp(at, t->first_add) < 0) ? at : t->first_add;
        if (!t->carried || op_replaces(at, add, t->carry, t->carry_add)) {
            p->carry = at;
            p->carry_add = add;
        }
        int64_t first = t->count ? t->days[0].day : span;
        p->delta = ((p->carry_add ? first : 0) - (was ? first : 0));
        if (t->count && !t->days[0].has_add)
            p->delta += (p->carry_add ? 1 : 0) - (was ? 1 : 0);
        return AGGREGATION_OK;
    }
    int64_t day;
    enum aggregation_status st = local_day(a, at.timestamp, &day);
    if (st != AGGREGATION_OK)
        return st;
    int64_t off = day - d->first_day;
    size_t lo = 0, hi = t->count;
    if (hi > 0 && t->days[hi - 1].day < off) {
        lo = hi; /* in order: after the last record */
    } else {
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (t->days[mid].day < off)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    bool exists = lo < t->count && t->days[lo].day == off;
    bool prev = lo > 0 ? t->days[lo - 1].last_add : t->carried && t->carry_add;
    size_t after = exists ? lo + 1 : lo;
    int64_t next = after < t->count ? t->days[after].day : span;
    bool next_open = after < t->count && !t->days[after].has_add;
    int64_t before;
    struct aggregation_unique_day rec;
    if (exists) {
        rec = t->days[lo];
        before = record_days(prev, &rec, off, next, next_open);
        if (add && (!rec.has_add || order_cmp(at, rec.first_add) < 0))
            rec.first_add = at;
        rec.has_add = rec.has_add || add;
        if (op_replaces(at, add, rec.last, rec.last_add)) {
            rec.last = at;
            rec.last_add = add;
        }
    } else {
        before = prev ? next - off + (next_open ? 1 : 0) : 0;
        rec = (struct aggregation_unique_day){
            .last = at, .first_add = at, .day = (uint16_t)off, .has_add = add, .last_add = add};
    }
    p->index = lo;
    p->insert = !exists;
    p->rec = rec;
    p->delta = record_days(prev, &rec, off, next, next_open) - before;
    return AGGREGATION_OK;
}

/* Room for one more day record in t. The state is unchanged on failure. */
static bool track_reserve(struct aggregation_unique_track *t)
{
    if (t->count < t->cap)
        return true;
    uint32_t cap = t->cap ? t->cap * 2 : 2;
    struct aggregation_unique_day *days = realloc(t->days, cap * sizeof *days);
    if (!days)
        return false;
    t->days = days;
    t->cap = cap;
    return true;
}

/* Applies a plan to a track alone (its room reserved). */
static void track_apply(struct aggregation_unique_track *t, const struct track_plan *p)
{
    if (p->carried) {
        t->carried = true;
        t->carry = p->carry;
        t->carry_add = p->carry_add;
        t->has_first_add = p->has_first_add;
        t->first_add = p->first_add;
    } else if (p->insert) {
        memmove(t->days + p->index + 1, t->days + p->index,
                (t->count - p->index) * sizeof *t->days);
        t->days[p->index] = p->rec;
        t->count++;
    } else {
        t->days[p->index] = p->rec;
    }
}

/* Applies a plan to the state (its room reserved). */
static void track_commit(struct aggregation *a, struct aggregation_unique_track *t,
                         const struct track_plan *p)
{
    track_apply(t, p);
    a->u.unique.day_records += !p->carried && p->insert;
    a->u.unique.day_units += p->delta;
}

/*
 * The earliest add of a value before the next period, from prev's track (its carry's and its
 * days'), into t; without a track (prev not prorated), its last operation `last`.
 */
static void first_add_before(const struct aggregation *prev, uint32_t ordinal,
                             const struct aggregation_order *last,
                             struct aggregation_unique_track *t)
{
    if (!prev->u.unique.tracks) {
        t->has_first_add = true;
        t->first_add = *last;
        return;
    }
    const struct aggregation_unique_track *p = &prev->u.unique.tracks[ordinal];
    t->has_first_add = p->has_first_add;
    t->first_add = p->first_add;
    for (uint32_t i = 0; i < p->count; i++) {
        if (p->days[i].has_add &&
            (!t->has_first_add || order_cmp(p->days[i].first_add, t->first_add) < 0)) {
            t->has_first_add = true;
            t->first_add = p->days[i].first_add;
        }
    }
}

/* Makes the tracks array as long as the table will be after unique_grow. The state is
 * unchanged on failure (a longer array is not a change). */
static bool tracks_grow(struct aggregation *a)
{
    size_t old = a->u.unique.capacity;
    size_t cap = old ? old * 2 : UNIQUE_CAPACITY_MIN;
    struct aggregation_unique_track *t = realloc(a->u.unique.tracks, cap * sizeof *t);
    if (!t)
        return false;
    memset(t + old, 0, (cap - old) * sizeof *t);
    a->u.unique.tracks = t;
    return true;
}

static void tracks_free(struct aggregation *a)
{
    for (size_t i = 0; a->u.unique.tracks && i < a->u.unique.used; i++)
        free(a->u.unique.tracks[i].days);
    free(a->u.unique.tracks);
    a->u.unique.tracks = NULL;
    a->u.unique.day_records = 0;
}

/* One operation of a prorated unique count's walk (below, beside aggregation_prorated_values). */
struct unique_op {
    struct aggregation_order at;
    int64_t days;     /* an add's: its own day to its removal's, both included, or to the end */
    uint32_t ordinal; /* its value's */
    bool add;
};

struct unique_ops {
    struct unique_op *items;
    size_t count, cap;
};

/*
 * The kept walk: valid, every value's operations in op_cmp order, as the tracks say; else
 * gathered again when a walk is next read. `before` and `after` hold one value's operations
 * around a change to its track, or e's value's for a preview. Only the walk validates it: a
 * state whose walk is never read (a charge that is not graduated) does not keep operations.
 */
struct aggregation_unique_walk {
    struct unique_ops ops;
    struct unique_ops before, after;
    bool valid;
};

/* A prorated unique count's kept walk operations (below, beside its walk): the operations of
 * the value whose track changes, told before and after the change. */
static void unique_walk_free(struct aggregation *a);
static void unique_walk_before(struct aggregation *a, const struct aggregation_unique_track *t,
                               uint32_t ordinal);
static void unique_walk_after(struct aggregation *a, const struct aggregation_unique_track *t,
                              uint32_t ordinal);

/*
 * Records an operation at `at` for a value: the greatest (timestamp, sequence) decides. A
 * duplicate (timestamp, sequence) (a caller's bug) still gives an order-independent result:
 * remove wins. A prorated state also records it in the value's track, even when an operation
 * with a greater (timestamp, sequence) decides the value's state: its day may still count.
 */
static enum aggregation_status unique_apply(struct aggregation *a, const char *value, size_t len,
                                            bool add, struct aggregation_order at)
{
    if (value && len > AGGREGATION_VALUE_TEXT_MAX)
        return AGGREGATION_ERR_LIMIT;
    uint64_t hash = unique_hash(a, value, len);
    struct aggregation_unique_entry *en = NULL;
    if (a->u.unique.capacity) {
        en = &a->u.unique.entries[unique_slot(a, hash, value, len)];
        if (!(en->flags & ENTRY_USED))
            en = NULL;
    }
    bool prorated = a->u.unique.prorated;
    struct aggregation_unique_track *t = NULL;
    struct track_plan plan;
    if (prorated) {
        if (en)
            t = &a->u.unique.tracks[en->ordinal];
        enum aggregation_status st = track_plan(a, t, add, at, &plan);
        if (st != AGGREGATION_OK)
            return st;
        if (plan.insert && a->u.unique.day_records >= AGGREGATION_UNIQUE_DAY_RECORDS_MAX)
            return AGGREGATION_ERR_LIMIT;
        if (plan.insert && t && !track_reserve(t))
            return AGGREGATION_ERR_NO_MEMORY;
    }
    if (en) {
        if (prorated) {
            unique_walk_before(a, t, en->ordinal);
            track_commit(a, t, &plan);
            unique_walk_after(a, t, en->ordinal);
        }
        int c = order_cmp(at, en->at);
        if (c < 0 || (c == 0 && (add || !(en->flags & ENTRY_PRESENT))))
            return AGGREGATION_OK; /* an older decision: superseded, the state stays */
        bool was = (en->flags & ENTRY_PRESENT) != 0;
        en->at = at;
        if (add)
            en->flags |= ENTRY_PRESENT;
        else
            en->flags &= (uint8_t)~ENTRY_PRESENT;
        a->u.unique.present = a->u.unique.present - (was ? 1 : 0) + (add ? 1 : 0);
        return AGGREGATION_OK;
    }
    if (a->u.unique.used >= AGGREGATION_UNIQUE_VALUES_MAX)
        return AGGREGATION_ERR_LIMIT;
    if ((a->u.unique.used + 1) * 4 > a->u.unique.capacity * 3 &&
        ((prorated && !tracks_grow(a)) || !unique_grow(a)))
        return AGGREGATION_ERR_NO_MEMORY;
    if (value && !pool_reserve(a, len))
        return AGGREGATION_ERR_NO_MEMORY;
    uint32_t ordinal = (uint32_t)a->u.unique.used;
    if (prorated) {
        t = &a->u.unique.tracks[ordinal];
        *t = (struct aggregation_unique_track){0}; /* not in use: nothing to free */
        if (plan.insert && !track_reserve(t))
            return AGGREGATION_ERR_NO_MEMORY;
    }
    size_t i = unique_slot(a, hash, value, len);
    en = &a->u.unique.entries[i];
    en->hash = hash;
    en->at = at;
    en->offset = a->u.unique.pool_len;
    en->ordinal = ordinal;
    en->len = (uint16_t)(value ? len : 0);
    en->flags = (uint8_t)(ENTRY_USED | (add ? ENTRY_PRESENT : 0) | (value ? 0 : ENTRY_NULL));
    if (value && len > 0) {
        memcpy(a->u.unique.pool + a->u.unique.pool_len, value, len);
        a->u.unique.pool_len += len;
    }
    if (prorated) {
        unique_walk_before(a, NULL, ordinal);
        track_commit(a, t, &plan);
        unique_walk_after(a, t, ordinal);
    }
    a->u.unique.used++;
    if (add)
        a->u.unique.present++;
    return AGGREGATION_OK;
}

/* A prorated unique_count's Σ days after an event, the state only read. */
static enum aggregation_status parse_operation(const struct aggregation_event *e, bool *add);

static enum aggregation_status unique_preview_days(const struct aggregation *a,
                                                   const struct aggregation_event *e,
                                                   int64_t *day_units)
{
    bool add;
    enum aggregation_status st = parse_operation(e, &add);
    if (st != AGGREGATION_OK)
        return st;
    if (e->value && e->value_len > AGGREGATION_VALUE_TEXT_MAX)
        return AGGREGATION_ERR_LIMIT;
    const struct aggregation_unique_track *t = NULL;
    if (a->u.unique.capacity) {
        uint64_t hash = unique_hash(a, e->value, e->value_len);
        const struct aggregation_unique_entry *en =
            &a->u.unique.entries[unique_slot(a, hash, e->value, e->value_len)];
        if (en->flags & ENTRY_USED)
            t = &a->u.unique.tracks[en->ordinal];
    }
    struct track_plan plan;
    if ((st = track_plan(a, t, add, event_order(e), &plan)) != AGGREGATION_OK)
        return st;
    *day_units = a->u.unique.day_units + plan.delta;
    return AGGREGATION_OK;
}

static enum aggregation_status parse_operation(const struct aggregation_event *e, bool *add)
{
    if (!e->operation_type || strcmp(e->operation_type, "add") == 0) {
        *add = true;
        return AGGREGATION_OK;
    }
    if (strcmp(e->operation_type, "remove") == 0) {
        *add = false;
        return AGGREGATION_OK;
    }
    return AGGREGATION_ERR_OPERATION;
}

/* ---- Kept values (sum) -------------------------------------------------------------------- */

/* Where `at` goes among the kept values: after every one not later (in-order arrivals: O(1)). */
static size_t kept_position(const struct aggregation *a, struct aggregation_order at)
{
    size_t lo = 0, hi = a->kept.count;
    if (hi > 0 && order_cmp(a->kept.order[hi - 1], at) <= 0)
        return hi;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (order_cmp(a->kept.order[mid], at) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static enum aggregation_status kept_insert(struct aggregation *a, struct aggregation_order at,
                                           money_t v)
{
    size_t at_index = kept_position(a, at);
    bool full = a->kept.count >= a->keep_values;
    if (full && at_index == a->kept.count)
        return AGGREGATION_OK; /* past the first keep_values events: counted, not kept */
    if (!full && a->kept.count >= AGGREGATION_KEPT_VALUES_MAX)
        return AGGREGATION_ERR_KEPT_VALUES;
    if (!full && a->kept.count == a->kept.cap) {
        size_t cap = a->kept.cap ? a->kept.cap * 2 : 16;
        struct aggregation_order *o = realloc(a->kept.order, cap * sizeof *o);
        if (!o)
            return AGGREGATION_ERR_NO_MEMORY;
        a->kept.order = o;
        money_t *vals = realloc(a->kept.values, cap * sizeof *vals);
        if (!vals)
            return AGGREGATION_ERR_NO_MEMORY; /* order grew alone: harmless, cap unchanged */
        a->kept.values = vals;
        a->kept.cap = cap;
    }
    /* full: the latest kept value falls past the bound and is pushed out */
    size_t tail = a->kept.count - at_index - (full ? 1 : 0);
    memmove(a->kept.order + at_index + 1, a->kept.order + at_index, tail * sizeof *a->kept.order);
    memmove(a->kept.values + at_index + 1, a->kept.values + at_index,
            tail * sizeof *a->kept.values);
    a->kept.order[at_index] = at;
    a->kept.values[at_index] = v;
    if (!full)
        a->kept.count++;
    return AGGREGATION_OK;
}

/* A sum's value kept: a prorated sum's values before its period are walked as one
 * (aggregation_prorated_values), so it keeps them as one, the first, whatever their number. */
static enum aggregation_status kept_take(struct aggregation *a, struct aggregation_order at,
                                         money_t v)
{
    if (!a->u.sum.prorated || at.timestamp >= a->from || a->kept.count == 0 ||
        a->kept.order[0].timestamp >= a->from)
        return kept_insert(a, at, v);
    money_t carried;
    enum aggregation_status st =
        from_money_status(money_add_truncated(a->kept.values[0], v, &carried));
    if (st == AGGREGATION_OK)
        a->kept.values[0] = carried;
    return st;
}

/* A prorated sum's kept walk (below, beside aggregation_prorated_values). */
static void walk_cache_free(struct aggregation *a);
static void walk_cache_follow(struct aggregation *a, bool appended, tally_time t, money_t v);

/* ---- Life cycle ---------------------------------------------------------------------------- */

static bool kind_is_valid(enum billable_metric_aggregation k)
{
    return (unsigned)k < (unsigned)AGGREGATION_KIND_COUNT;
}

static bool kind_may_recur(enum billable_metric_aggregation k)
{
    return k == AGGREGATION_SUM || k == AGGREGATION_UNIQUE_COUNT || k == AGGREGATION_WEIGHTED_SUM;
}

enum aggregation_status aggregation_init(struct aggregation *a, const struct billable_metric *m,
                                         tally_time from, tally_time to)
{
    if (!a || !m || !kind_is_valid(m->aggregation) || from >= to ||
        (m->recurring && !kind_may_recur(m->aggregation)))
        return AGGREGATION_ERR_INVALID;
    memset(a, 0, sizeof *a);
    a->peak = MONEY_ZERO;
    a->past_only = true;
    a->kind = m->aggregation;
    a->recurring = m->recurring;
    a->from = from;
    a->to = to;
    a->duration = to - from;
    if (a->kind == AGGREGATION_UNIQUE_COUNT) {
        a->u.unique.key[0] = UNIQUE_KEY0;
        a->u.unique.key[1] = UNIQUE_KEY1;
    }
    return AGGREGATION_OK;
}

void aggregation_free(struct aggregation *a)
{
    if (!a)
        return;
    walk_cache_free(a);
    if (a->kind == AGGREGATION_UNIQUE_COUNT) {
        tracks_free(a);
        unique_walk_free(a);
        free(a->u.unique.entries);
        free(a->u.unique.pool);
        a->u.unique.entries = NULL;
        a->u.unique.pool = NULL;
        a->u.unique.capacity = a->u.unique.used = a->u.unique.present = 0;
        a->u.unique.pool_len = a->u.unique.pool_cap = 0;
    }
    free(a->kept.order);
    free(a->kept.values);
    a->kept.order = NULL;
    a->kept.values = NULL;
    a->kept.count = a->kept.cap = 0;
}

/* Nothing aggregated yet (carried state counts as something). */
bool aggregation_is_empty(const struct aggregation *a)
{
    if (a->events_count != 0 || a->kept.count != 0)
        return false;
    switch (a->kind) {
    case AGGREGATION_SUM:
        return money_is_zero(a->u.sum.total) && money_is_zero(a->precise) &&
               money_is_zero(a->priced);
    case AGGREGATION_UNIQUE_COUNT: return a->u.unique.used == 0;
    case AGGREGATION_WEIGHTED_SUM:
        return !a->u.weighted.has_events && wide_is_zero(a->u.weighted.level);
    default: return true;
    }
}

enum aggregation_status aggregation_set_duration(struct aggregation *a, tally_time duration)
{
    if (!a || a->kind != AGGREGATION_WEIGHTED_SUM || duration <= 0)
        return AGGREGATION_ERR_INVALID;
    a->duration = duration;
    return AGGREGATION_OK;
}

enum aggregation_status aggregation_set_hash_key(struct aggregation *a, uint64_t k0, uint64_t k1)
{
    if (!a || a->kind != AGGREGATION_UNIQUE_COUNT || a->u.unique.used != 0)
        return AGGREGATION_ERR_INVALID;
    a->u.unique.key[0] = k0;
    a->u.unique.key[1] = k1;
    return AGGREGATION_OK;
}

enum aggregation_status aggregation_keep_values(struct aggregation *a, size_t first)
{
    if (!a || a->kind != AGGREGATION_SUM || !aggregation_is_empty(a))
        return AGGREGATION_ERR_INVALID;
    a->keep_values = first;
    return AGGREGATION_OK;
}

enum aggregation_status aggregation_keep_precise(struct aggregation *a, bool keep)
{
    if (!a || a->kind != AGGREGATION_SUM || !aggregation_is_empty(a))
        return AGGREGATION_ERR_INVALID;
    a->keep_precise = keep;
    return AGGREGATION_OK;
}

enum aggregation_status aggregation_keep_priced(struct aggregation *a, bool keep)
{
    if (!a || a->kind != AGGREGATION_SUM || !aggregation_is_empty(a))
        return AGGREGATION_ERR_INVALID;
    a->keep_priced = keep;
    return AGGREGATION_OK;
}

bool aggregation_keeps_priced(const struct aggregation *a)
{
    return a->keep_priced;
}

money_t aggregation_priced_total(const struct aggregation *a)
{
    return a->keep_priced ? a->priced : MONEY_ZERO;
}

enum aggregation_status aggregation_number(const struct aggregation *a,
                                           const struct aggregation_event *e, money_t *value)
{
    if (!a || !e || !value || a->kind != AGGREGATION_SUM)
        return AGGREGATION_ERR_INVALID;
    return parse_number(e, value);
}

enum aggregation_status aggregation_check(enum billable_metric_aggregation kind,
                                          const struct aggregation_event *e)
{
    if (!e)
        return AGGREGATION_ERR_INVALID;
    switch (kind) {
    case AGGREGATION_COUNT: return AGGREGATION_OK;
    case AGGREGATION_SUM:
    case AGGREGATION_MAX:
    case AGGREGATION_LATEST:
    case AGGREGATION_WEIGHTED_SUM: {
        money_t v;
        return parse_number(e, &v);
    }
    case AGGREGATION_UNIQUE_COUNT: {
        bool add;
        return parse_operation(e, &add);
    }
    default: return AGGREGATION_ERR_INVALID;
    }
}

bool aggregation_keeps_precise(const struct aggregation *a)
{
    return a->keep_precise;
}

money_t aggregation_precise_total(const struct aggregation *a)
{
    return a->keep_precise ? a->precise : MONEY_ZERO;
}

/* The day settings of a prorated state (sum or unique_count). */
static const struct aggregation_days *days_of(const struct aggregation *a)
{
    return a->kind == AGGREGATION_SUM ? &a->u.sum.days : &a->u.unique.days;
}

/* Local day number d clamped into the period's days. */
static int64_t period_day(const struct aggregation_days *p, int64_t d)
{
    return d < p->first_day ? p->first_day : d > p->last_day ? p->last_day : d;
}

/* A prorated state's local day number of t, clamped into its period: an instant before `from`
 * (a carried value) weighs from the first day, and a fold around midnight stays inside. */
static enum aggregation_status local_day(const struct aggregation *a, tally_time t, int64_t *day)
{
    const struct aggregation_days *p = days_of(a);
    struct tz_local lt;
    if (tz_to_local(p->zone, t, &lt) != TZ_OK)
        return AGGREGATION_ERR_INVALID;
    *day = period_day(p, timestamp_days_from_civil(lt.civil.date));
    return AGGREGATION_OK;
}

/* The days a sum's value carried from before the period weighs: all the period's, less the
 * last after an upgrade (aggregation_set_upgraded). */
static int64_t carried_days(const struct aggregation_days *p)
{
    return p->last_day - p->first_day + 1 - (p->carried_day_off ? 1 : 0);
}

/* The days a prorated sum's value timestamped t weighs: from t's date to the last, both
 * included (Lago's DATE(to) - DATE(timestamp) + 1), or carried_days before `from`. */
static enum aggregation_status sum_days(const struct aggregation *a, tally_time t, int64_t *days)
{
    if (t < a->from) {
        *days = carried_days(&a->u.sum.days);
        return AGGREGATION_OK;
    }
    int64_t day;
    enum aggregation_status st = local_day(a, t, &day);
    *days = a->u.sum.days.last_day - day + 1;
    return st;
}

/* day_units after a value v timestamped t: + v × its days (sum_days). Unchanged when the sum is
 * not prorated. */
static enum aggregation_status prorated_after(const struct aggregation *a, money_t v, tally_time t,
                                              money_t *day_units)
{
    *day_units = a->u.sum.day_units;
    if (!a->u.sum.prorated)
        return AGGREGATION_OK;
    int64_t days;
    money_t weighed;
    enum aggregation_status st = sum_days(a, t, &days);
    if (st != AGGREGATION_OK)
        return st;
    if ((st = from_money_status(money_mul_truncated(v, money_from_int(days), &weighed))) !=
        AGGREGATION_OK)
        return st;
    return from_money_status(money_add_truncated(*day_units, weighed, day_units));
}

enum aggregation_status aggregation_set_upgraded(struct aggregation *a)
{
    if (!a || !aggregation_is_prorated(a) || !aggregation_is_empty(a))
        return AGGREGATION_ERR_INVALID;
    if (a->kind == AGGREGATION_SUM)
        a->u.sum.days.carried_day_off = true;
    return AGGREGATION_OK;
}

enum aggregation_status aggregation_set_prorated(struct aggregation *a, const struct tz_zone *zone,
                                                 int64_t period_days)
{
    struct tz_local first, last;
    if (!a || !zone || (a->kind != AGGREGATION_SUM && a->kind != AGGREGATION_UNIQUE_COUNT) ||
        !aggregation_is_empty(a) || period_days < 1 ||
        period_days > AGGREGATION_PRORATED_DAYS_MAX ||
        tz_to_local(zone, a->from, &first) != TZ_OK || tz_to_local(zone, a->to - 1, &last) != TZ_OK)
        return AGGREGATION_ERR_INVALID;
    int64_t first_day = timestamp_days_from_civil(first.civil.date);
    int64_t last_day = timestamp_days_from_civil(last.civil.date);
    if (last_day < first_day || last_day - first_day + 1 > period_days)
        return AGGREGATION_ERR_INVALID;
    struct aggregation_days days = {zone, first_day, last_day, period_days, false};
    if (a->kind == AGGREGATION_SUM) {
        a->u.sum.prorated = true;
        a->u.sum.day_units = MONEY_ZERO;
        a->u.sum.days = days;
    } else {
        /* an empty table may have slots already (an insertion refused after it grew): every
         * slot needs its track */
        free(a->u.unique.tracks); /* set again: no value, so no day record */
        a->u.unique.tracks = NULL;
        if (a->u.unique.capacity &&
            !(a->u.unique.tracks = calloc(a->u.unique.capacity, sizeof *a->u.unique.tracks)))
            return AGGREGATION_ERR_NO_MEMORY;
        if (!a->u.unique.walk && !(a->u.unique.walk = calloc(1, sizeof *a->u.unique.walk)))
            return AGGREGATION_ERR_NO_MEMORY;
        a->u.unique.walk->valid = false; /* laid out again when first read */
        a->u.unique.prorated = true;
        a->u.unique.day_units = 0;
        a->u.unique.days = days;
    }
    return AGGREGATION_OK;
}

bool aggregation_is_prorated(const struct aggregation *a)
{
    return (a->kind == AGGREGATION_SUM && a->u.sum.prorated) ||
           (a->kind == AGGREGATION_UNIQUE_COUNT && a->u.unique.prorated);
}

/* Σ value × days / period_days, ceiled once (Lago: .ceil(5) of the whole sum). */
static enum aggregation_status prorated_of(const struct aggregation *a, money_t day_units,
                                           money_t *units)
{
    return from_money_status(money_div(day_units, money_from_int(days_of(a)->period_days),
                                       AGGREGATION_PRORATED_SCALE, MONEY_ROUND_CEIL, units));
}

enum aggregation_status aggregation_prorated_units(const struct aggregation *a, money_t *units)
{
    if (!a || !units || !aggregation_is_prorated(a))
        return AGGREGATION_ERR_INVALID;
    if (a->kind == AGGREGATION_UNIQUE_COUNT)
        return prorated_of(a, money_from_int(a->u.unique.day_units), units);
    return prorated_of(a, a->u.sum.day_units, units);
}

static enum aggregation_status unique_preview_days(const struct aggregation *a,
                                                   const struct aggregation_event *e,
                                                   int64_t *day_units);

enum aggregation_status aggregation_preview_prorated(const struct aggregation *a,
                                                     const struct aggregation_event *e,
                                                     money_t *units)
{
    if (!a || !e || !units || !aggregation_is_prorated(a))
        return AGGREGATION_ERR_INVALID;
    enum aggregation_status st;
    if (a->kind == AGGREGATION_UNIQUE_COUNT) {
        int64_t day_units;
        if ((st = unique_preview_days(a, e, &day_units)) != AGGREGATION_OK)
            return st;
        return prorated_of(a, money_from_int(day_units), units);
    }
    money_t v, day_units = a->u.sum.day_units;
    st = parse_number(e, &v);
    if (st == AGGREGATION_OK)
        st = prorated_after(a, v, e->timestamp, &day_units);
    else if (st == AGGREGATION_IGNORED)
        st = AGGREGATION_OK; /* the sum does not take it: nor its days */
    return st == AGGREGATION_OK ? prorated_of(a, day_units, units) : st;
}

/* ---- Adding events ------------------------------------------------------------------------- */

static enum aggregation_status count_one(struct aggregation *a)
{
    if (a->events_count == INT64_MAX)
        return AGGREGATION_ERR_OVERFLOW;
    return AGGREGATION_OK;
}

static enum aggregation_status add_sum(struct aggregation *a, const struct aggregation_event *e)
{
    money_t v, total, day_units;
    enum aggregation_status st = parse_number(e, &v);
    if (st != AGGREGATION_OK)
        return st;
    if ((st = count_one(a)) != AGGREGATION_OK)
        return st;
    if ((st = from_money_status(money_add_truncated(a->u.sum.total, v, &total))) !=
            AGGREGATION_OK ||
        (st = prorated_after(a, v, e->timestamp, &day_units)) != AGGREGATION_OK)
        return st;
    money_t precise = a->precise, priced = a->priced;
    if (a->keep_precise && e->precise_total_amount_cents &&
        (st = from_money_status(money_add_truncated(a->precise, *e->precise_total_amount_cents,
                                                    &precise))) != AGGREGATION_OK)
        return st; /* checked before kept_insert: an error must leave the state unchanged */
    if (a->keep_priced && !e->priced_amount)
        return AGGREGATION_ERR_INVALID;
    if (a->keep_priced && (st = from_money_status(money_add_truncated(a->priced, *e->priced_amount,
                                                                      &priced))) != AGGREGATION_OK)
        return st;
    bool walked = a->u.sum.prorated && a->keep_values == AGGREGATION_KEEP_ALL;
    bool appended =
        walked && e->timestamp >= a->from && kept_position(a, event_order(e)) == a->kept.count;
    if (a->keep_values && (st = kept_take(a, event_order(e), v)) != AGGREGATION_OK)
        return st;
    a->u.sum.total = total;
    a->u.sum.day_units = day_units;
    a->precise = precise;
    a->priced = priced;
    a->events_count++;
    if (walked)
        walk_cache_follow(a, appended, e->timestamp, v);
    return AGGREGATION_OK;
}

static enum aggregation_status add_max(struct aggregation *a, const struct aggregation_event *e)
{
    money_t v;
    enum aggregation_status st = parse_number(e, &v);
    if (st != AGGREGATION_OK || (st = count_one(a)) != AGGREGATION_OK)
        return st;
    if (!a->u.max.has_value || money_cmp(v, a->u.max.value) > 0) {
        a->u.max.value = v;
        a->u.max.has_value = true;
    }
    a->events_count++;
    return AGGREGATION_OK;
}

static enum aggregation_status add_latest(struct aggregation *a, const struct aggregation_event *e)
{
    money_t v;
    enum aggregation_status st = parse_number(e, &v);
    if (st != AGGREGATION_OK || (st = count_one(a)) != AGGREGATION_OK)
        return st;
    struct aggregation_order at = event_order(e);
    int c = a->u.latest.has_value ? order_cmp(at, a->u.latest.at) : 1;
    /* A duplicate (timestamp, sequence) keeps the greater value: still order-independent. */
    if (c > 0 || (c == 0 && money_cmp(v, a->u.latest.value) > 0)) {
        a->u.latest.value = v;
        a->u.latest.at = at;
        a->u.latest.has_value = true;
    }
    a->events_count++;
    return AGGREGATION_OK;
}

static enum aggregation_status add_unique(struct aggregation *a, const struct aggregation_event *e)
{
    bool add;
    enum aggregation_status st = parse_operation(e, &add);
    if (st != AGGREGATION_OK)
        return st;
    return unique_apply(a, e->value, e->value_len, add, event_order(e));
}

static enum aggregation_status add_weighted(struct aggregation *a,
                                            const struct aggregation_event *e)
{
    money_t v;
    enum aggregation_status st = parse_number(e, &v);
    if (st != AGGREGATION_OK || (st = count_one(a)) != AGGREGATION_OK)
        return st;
    uint64_t d[AGGREGATION_WIDE_LIMBS];
    wide_from_money(v, d);
    wide_add(a->u.weighted.level, d);
    wide_mul_u64(d, (uint64_t)(e->timestamp - a->from));
    wide_add(a->u.weighted.moment, d);
    if (!a->u.weighted.has_events || e->timestamp > a->u.weighted.last)
        a->u.weighted.last = e->timestamp;
    a->u.weighted.has_events = true;
    a->events_count++;
    return AGGREGATION_OK;
}

/* Raises the peak to the units now (count, sum, unique_count; the others have none). */
static enum aggregation_status note_peak(struct aggregation *a, enum aggregation_status st)
{
    money_t units;
    if (st != AGGREGATION_OK || (a->kind != AGGREGATION_COUNT && a->kind != AGGREGATION_SUM &&
                                 a->kind != AGGREGATION_UNIQUE_COUNT))
        return st;
    if (aggregation_units(a, a->to, &units) == AGGREGATION_OK && money_cmp(units, a->peak) > 0)
        a->peak = units;
    return st;
}

money_t aggregation_peak(const struct aggregation *a)
{
    return a->peak;
}

static enum aggregation_status add_event(struct aggregation *a, const struct aggregation_event *e)
{
    switch (a->kind) {
    case AGGREGATION_COUNT: {
        enum aggregation_status st = count_one(a);
        if (st == AGGREGATION_OK)
            a->events_count++;
        return st;
    }
    case AGGREGATION_SUM: return add_sum(a, e);
    case AGGREGATION_MAX: return add_max(a, e);
    case AGGREGATION_LATEST: return add_latest(a, e);
    case AGGREGATION_UNIQUE_COUNT: return add_unique(a, e);
    case AGGREGATION_WEIGHTED_SUM: return add_weighted(a, e);
    default: return AGGREGATION_ERR_INVALID;
    }
}

enum aggregation_status aggregation_add(struct aggregation *a, const struct aggregation_event *e)
{
    if (!a || !e || !kind_is_valid(a->kind))
        return AGGREGATION_ERR_INVALID;
    if (e->timestamp < a->from || e->timestamp >= a->to)
        return AGGREGATION_ERR_OUT_OF_PERIOD;
    enum aggregation_status st = note_peak(a, add_event(a, e));
    if (st == AGGREGATION_OK)
        a->past_only = false;
    return st;
}

/* An earlier period's event into a recurring state, the peak left as it was. */
static enum aggregation_status carry_event(struct aggregation *a, const struct aggregation_event *e)
{
    if (!a || !e || !a->recurring)
        return AGGREGATION_ERR_INVALID;
    if (e->timestamp >= a->from)
        return AGGREGATION_ERR_OUT_OF_PERIOD;
    switch (a->kind) {
    case AGGREGATION_SUM: return add_sum(a, e);
    case AGGREGATION_UNIQUE_COUNT: return add_unique(a, e);
    case AGGREGATION_WEIGHTED_SUM: {
        money_t v;
        enum aggregation_status st = parse_number(e, &v);
        if (st != AGGREGATION_OK)
            return st;
        uint64_t d[AGGREGATION_WIDE_LIMBS];
        wide_from_money(v, d);
        wide_add(a->u.weighted.level, d); /* the initial level; it weighs from `from` */
        return AGGREGATION_OK;
    }
    default: return AGGREGATION_ERR_INVALID;
    }
}

enum aggregation_status aggregation_add_carried(struct aggregation *a,
                                                const struct aggregation_event *e)
{
    enum aggregation_status st = note_peak(a, carry_event(a, e));
    if (st == AGGREGATION_OK)
        a->past_only = false;
    return st;
}

enum aggregation_status aggregation_carry_in(struct aggregation *a,
                                             const struct aggregation_event *e)
{
    if (!a || !a->past_only)
        return AGGREGATION_ERR_INVALID;
    enum aggregation_status st = carry_event(a, e);
    if (st == AGGREGATION_OK) {
        /* the peak is where the carried units stand, not the most they reached before */
        a->peak = MONEY_ZERO;
        note_peak(a, st);
    }
    return st;
}

static enum aggregation_status carry_state(const struct aggregation *prev,
                                           struct aggregation *next);

enum aggregation_status aggregation_carry_over(const struct aggregation *prev,
                                               struct aggregation *next)
{
    /* the new period's peak starts at what it carries */
    return note_peak(next, carry_state(prev, next));
}

static enum aggregation_status carry_state(const struct aggregation *prev, struct aggregation *next)
{
    if (!prev || !next || prev == next || prev->kind != next->kind || !prev->recurring ||
        !next->recurring || next->from < prev->to || !aggregation_is_empty(next))
        return AGGREGATION_ERR_INVALID;
    switch (prev->kind) {
    case AGGREGATION_SUM: {
        /* the values to keep must have been kept: as many, or every event's */
        if (next->keep_values > prev->keep_values &&
            (uint64_t)prev->kept.count < (uint64_t)prev->events_count)
            return AGGREGATION_ERR_INVALID;
        if (next->keep_priced && !prev->keep_priced && prev->events_count > 0)
            return AGGREGATION_ERR_INVALID; /* the prices were not summed */
        /* everything before the period weighs from its first day, as a carried event does */
        money_t day_units;
        enum aggregation_status st =
            prorated_after(next, prev->u.sum.total, next->from - 1, &day_units);
        if (st != AGGREGATION_OK)
            return st;
        if (next->keep_values && prev->kept.count > 0) {
            /* a prorated sum keeps what came before its period as one value (kept_take) */
            size_t n = next->u.sum.prorated                   ? 1
                       : prev->kept.count < next->keep_values ? prev->kept.count
                                                              : next->keep_values;
            struct aggregation_order *o = malloc(n * sizeof *o);
            money_t *v = malloc(n * sizeof *v);
            if (!o || !v) {
                free(o);
                free(v);
                return AGGREGATION_ERR_NO_MEMORY;
            }
            memcpy(o, prev->kept.order, n * sizeof *o);
            memcpy(v, prev->kept.values, n * sizeof *v);
            if (next->u.sum.prorated)
                v[0] = prev->u.sum.total;
            next->kept.order = o;
            next->kept.values = v;
            next->kept.count = next->kept.cap = n;
        }
        next->u.sum.total = prev->u.sum.total;
        next->u.sum.day_units = day_units;
        if (next->keep_precise)
            next->precise = prev->precise; /* Lago's recurring scope reads every event */
        if (next->keep_priced)
            next->priced = prev->priced;
        next->events_count = prev->events_count; /* Lago counts since the start, too */
        return AGGREGATION_OK;
    }
    case AGGREGATION_UNIQUE_COUNT: {
        struct aggregation_unique_entry *en = NULL;
        char *pool = NULL;
        if (prev->u.unique.capacity) {
            en = malloc(prev->u.unique.capacity * sizeof *en);
            if (!en)
                return AGGREGATION_ERR_NO_MEMORY;
            memcpy(en, prev->u.unique.entries, prev->u.unique.capacity * sizeof *en);
        }
        if (prev->u.unique.pool_len) {
            pool = malloc(prev->u.unique.pool_len);
            if (!pool) {
                free(en);
                return AGGREGATION_ERR_NO_MEMORY;
            }
            memcpy(pool, prev->u.unique.pool, prev->u.unique.pool_len);
        }
        /* A prorated next period starts each value from its state at prev's end: present
         * from its first day, with no day record yet. */
        struct aggregation_unique_track *tracks = NULL;
        int64_t day_units = 0;
        if (next->u.unique.prorated && prev->u.unique.capacity) {
            tracks = calloc(prev->u.unique.capacity, sizeof *tracks);
            if (!tracks) {
                free(en);
                free(pool);
                return AGGREGATION_ERR_NO_MEMORY;
            }
            const struct aggregation_days *d = &next->u.unique.days;
            for (size_t i = 0; i < prev->u.unique.capacity; i++) {
                if (!(en[i].flags & ENTRY_USED))
                    continue;
                struct aggregation_unique_track *t = &tracks[en[i].ordinal];
                t->carried = true;
                t->carry = en[i].at;
                t->carry_add = (en[i].flags & ENTRY_PRESENT) != 0;
                first_add_before(prev, en[i].ordinal, &en[i].at, t);
                if (t->carry_add)
                    day_units += d->last_day - d->first_day + 1;
            }
        }
        struct aggregation_days days = next->u.unique.days;
        bool prorated = next->u.unique.prorated;
        struct aggregation_unique_walk *walk = next->u.unique.walk; /* next's own, not valid */
        next->u.unique = prev->u.unique;
        next->u.unique.walk = walk;
        next->u.unique.entries = en;
        next->u.unique.pool = pool;
        next->u.unique.pool_cap = prev->u.unique.pool_len;
        next->u.unique.prorated = prorated;
        next->u.unique.days = days;
        next->u.unique.tracks = tracks;
        next->u.unique.day_units = day_units;
        next->u.unique.day_records = 0;
        if (walk)
            walk->valid = false;
        return AGGREGATION_OK;
    }
    case AGGREGATION_WEIGHTED_SUM:
        memcpy(next->u.weighted.level, prev->u.weighted.level, sizeof next->u.weighted.level);
        return AGGREGATION_OK;
    default: return AGGREGATION_ERR_INVALID;
    }
}

/* ---- Reading ------------------------------------------------------------------------------ */

static enum aggregation_status weighted_units(const struct aggregation *a, tally_time now,
                                              money_t *units)
{
    tally_time x = now < a->from ? a->from : now > a->to ? a->to : now;
    if (a->u.weighted.has_events && x < a->u.weighted.last)
        return AGGREGATION_ERR_NOW_BEFORE_EVENT;
    /* ∫ from..x = level × (x - from) - Σ delta × (t - from), at scale 10^38 × µs. */
    uint64_t n[AGGREGATION_WIDE_LIMBS];
    memcpy(n, a->u.weighted.level, sizeof n);
    wide_mul_u64(n, (uint64_t)(x - a->from));
    wide_sub(n, a->u.weighted.moment);
    /* ceil(∫ / duration) at AGGREGATION_WEIGHTED_SCALE decimals: divide the magnitude by
     * 10^(38-20) and by the duration; ceil(N/ab) = ceil(ceil(N/a)/b) = floor + (any rest). */
    bool neg = wide_is_neg(n);
    if (neg)
        wide_neg(n);
    uint64_t r1 = wide_divmod_u64(n, pow10_u64[WIDE_SCALE - AGGREGATION_WEIGHTED_SCALE]);
    uint64_t r2 = wide_divmod_u64(n, (uint64_t)a->duration);
    if (!neg && (r1 | r2) != 0) {
        uint64_t one[AGGREGATION_WIDE_LIMBS] = {1};
        wide_add(n, one);
    }
    if (neg)
        wide_neg(n); /* ceil of a negative quotient is minus the floor of its magnitude */
    return wide_to_money(n, AGGREGATION_WEIGHTED_SCALE, units);
}

enum aggregation_status aggregation_units(const struct aggregation *a, tally_time now,
                                          money_t *units)
{
    if (!a || !units)
        return AGGREGATION_ERR_INVALID;
    switch (a->kind) {
    case AGGREGATION_COUNT: *units = money_from_int(a->events_count); return AGGREGATION_OK;
    case AGGREGATION_SUM: *units = a->u.sum.total; return AGGREGATION_OK;
    case AGGREGATION_MAX:
        *units = a->u.max.has_value ? a->u.max.value : MONEY_ZERO;
        return AGGREGATION_OK;
    case AGGREGATION_LATEST:
        /* LatestService#compute_aggregation_value: a negative latest value bills as 0. */
        *units = a->u.latest.has_value && money_sign(a->u.latest.value) > 0 ? a->u.latest.value
                                                                            : MONEY_ZERO;
        return AGGREGATION_OK;
    case AGGREGATION_UNIQUE_COUNT:
        *units = money_from_int((int64_t)a->u.unique.present);
        return AGGREGATION_OK;
    case AGGREGATION_WEIGHTED_SUM: return weighted_units(a, now, units);
    default: return AGGREGATION_ERR_INVALID;
    }
}

/* unique_count: whether the value is present after the event (the table is only read). */
static int64_t unique_present_after(const struct aggregation *a, const char *value, size_t len,
                                    bool add, struct aggregation_order at)
{
    int64_t present = (int64_t)a->u.unique.present;
    if (a->u.unique.capacity) {
        uint64_t hash = unique_hash(a, value, len);
        const struct aggregation_unique_entry *en =
            &a->u.unique.entries[unique_slot(a, hash, value, len)];
        if (en->flags & ENTRY_USED) {
            int c = order_cmp(at, en->at);
            if (c < 0 || (c == 0 && (add || !(en->flags & ENTRY_PRESENT))))
                return present; /* superseded: no change, as in unique_apply */
            return present - ((en->flags & ENTRY_PRESENT) ? 1 : 0) + (add ? 1 : 0);
        }
    }
    return present + (add ? 1 : 0);
}

enum aggregation_status aggregation_preview(const struct aggregation *a,
                                            const struct aggregation_event *e, money_t *units,
                                            int64_t *events_count)
{
    enum aggregation_status st = aggregation_units(a, a->to, units);
    if (st != AGGREGATION_OK)
        return st;
    *events_count = aggregation_events_count(a);
    money_t v;
    bool add;
    switch (a->kind) {
    case AGGREGATION_COUNT:
        *units = money_from_int(a->events_count + 1);
        *events_count = a->events_count + 1;
        return AGGREGATION_OK;
    case AGGREGATION_SUM:
        st = parse_number(e, &v);
        if (st == AGGREGATION_IGNORED)
            return AGGREGATION_OK;
        if (st != AGGREGATION_OK)
            return st;
        *events_count = a->events_count + 1;
        return from_money_status(money_add_truncated(*units, v, units));
    case AGGREGATION_UNIQUE_COUNT:
        if ((st = parse_operation(e, &add)) != AGGREGATION_OK)
            return st;
        if (e->value && e->value_len > AGGREGATION_VALUE_TEXT_MAX)
            return AGGREGATION_ERR_LIMIT;
        *events_count = unique_present_after(a, e->value, e->value_len, add, event_order(e));
        *units = money_from_int(*events_count);
        return AGGREGATION_OK;
    case AGGREGATION_MAX:
    case AGGREGATION_LATEST:
    case AGGREGATION_WEIGHTED_SUM: {
        /* their states own no memory (only a sum keeps values): a copy takes the event */
        assert(a->kept.count == 0);
        struct aggregation with = *a;
        st = aggregation_add(&with, e);
        if (st == AGGREGATION_IGNORED)
            return AGGREGATION_OK;
        if (st != AGGREGATION_OK)
            return st;
        *events_count = aggregation_events_count(&with);
        return aggregation_units(&with, a->to, units);
    }
    default: return AGGREGATION_ERR_INVALID;
    }
}

/* *total plus *amount when a sum would take e (its value is numeric), else *total as it is: a
 * preview of what a state adds up beside its units. INVALID without an amount to add. */
static enum aggregation_status add_if_taken(const struct aggregation_event *e,
                                            const money_t *amount, money_t *total)
{
    money_t v;
    enum aggregation_status st = parse_number(e, &v);
    if (st == AGGREGATION_IGNORED)
        return AGGREGATION_OK; /* the sum does not take it: nor what comes with it */
    if (st != AGGREGATION_OK)
        return st;
    if (!amount)
        return AGGREGATION_ERR_INVALID;
    return from_money_status(money_add_truncated(*total, *amount, total));
}

enum aggregation_status aggregation_preview_precise(const struct aggregation *a,
                                                    const struct aggregation_event *e,
                                                    money_t *precise)
{
    if (!a || !e || !precise)
        return AGGREGATION_ERR_INVALID;
    *precise = aggregation_precise_total(a);
    if (!a->keep_precise || !e->precise_total_amount_cents)
        return AGGREGATION_OK;
    return add_if_taken(e, e->precise_total_amount_cents, precise);
}

enum aggregation_status aggregation_preview_priced(const struct aggregation *a,
                                                   const struct aggregation_event *e,
                                                   money_t *priced)
{
    if (!a || !e || !priced)
        return AGGREGATION_ERR_INVALID;
    *priced = aggregation_priced_total(a);
    if (!a->keep_priced)
        return AGGREGATION_OK;
    return add_if_taken(e, e->priced_amount, priced);
}

int64_t aggregation_events_count(const struct aggregation *a)
{
    if (!a)
        return 0;
    if (a->kind == AGGREGATION_UNIQUE_COUNT)
        return (int64_t)a->u.unique.present; /* UniqueCountService: count = aggregation */
    return a->events_count;
}

enum aggregation_status aggregation_weighted_level(const struct aggregation *a, money_t *level)
{
    if (!a || !level || a->kind != AGGREGATION_WEIGHTED_SUM)
        return AGGREGATION_ERR_INVALID;
    return wide_to_money(a->u.weighted.level, WIDE_SCALE, level);
}

bool aggregation_is_flat(const struct aggregation *a)
{
    return a->kind != AGGREGATION_UNIQUE_COUNT && !a->keep_values;
}

size_t aggregation_keeps_values(const struct aggregation *a)
{
    return a->keep_values;
}

void aggregation_values(const struct aggregation *a, const money_t **values, size_t *count)
{
    bool any = a && a->kept.count > 0;
    if (values)
        *values = any ? a->kept.values : NULL;
    if (count)
        *count = any ? a->kept.count : 0;
}

void aggregation_preview_values(const struct aggregation *a, const struct aggregation_event *e,
                                money_t value, money_t *out, size_t *count)
{
    size_t n = a->kept.count, at = kept_position(a, event_order(e));
    if (n > 0) /* kept.values is NULL until the first */
        memcpy(out, a->kept.values, n * sizeof *out);
    if (n >= a->keep_values && at == n) { /* past the values kept: they stay as they are */
        *count = n;
        return;
    }
    memmove(out + at + 1, out + at, (n - at) * sizeof *out);
    out[at] = value;
    *count = n + 1 > a->keep_values ? a->keep_values : n + 1; /* the latest pushed out */
}

/* local_day for instants read in ascending order, with one zone lookup per offset change
 * rather than per instant: between two transitions the offset is fixed, and the local date is
 * the UTC instant plus the offset, in whole days. */
struct day_reader {
    bool known;
    tally_time since, until; /* the offset holds over [since, until) */
    int64_t offset;          /* µs east of UTC */
};

static enum aggregation_status day_read(const struct aggregation *a, struct day_reader *r,
                                        tally_time t, int64_t *day)
{
    const struct aggregation_days *p = days_of(a);
    if (!r->known || t < r->since || t >= r->until) {
        struct tz_local lt;
        if (tz_to_local(p->zone, t, &lt) != TZ_OK)
            return AGGREGATION_ERR_INVALID;
        r->known = true;
        r->since = t;
        r->offset = (int64_t)lt.utc_offset * TIMESTAMP_USEC_PER_SEC;
        if (!tz_next_transition(p->zone, t, &r->until))
            r->until = INT64_MAX;
    }
    int64_t local = t + r->offset;
    *day = period_day(p, local / TIMESTAMP_USEC_PER_DAY - (local % TIMESTAMP_USEC_PER_DAY < 0));
    return AGGREGATION_OK;
}

void aggregation_walk_free(struct aggregation_walk *walk)
{
    if (!walk)
        return;
    free(walk->values);
    free(walk->days);
    *walk = (struct aggregation_walk){0};
}

/* An empty walk over a's period (its arrays kept for reuse). */
static void walk_start(const struct aggregation *a, struct aggregation_walk *walk)
{
    walk->count = 0;
    walk->period_days = a->u.sum.days.period_days;
    walk->running = walk->peak = MONEY_ZERO;
}

/* Room for `n` entries in the walk's arrays. */
static enum aggregation_status walk_reserve(struct aggregation_walk *walk, size_t n)
{
    if (n <= walk->cap)
        return AGGREGATION_OK;
    size_t cap = walk->cap ? walk->cap : 32;
    while (cap < n)
        cap *= 2;
    money_t *values = realloc(walk->values, cap * sizeof *values);
    if (!values)
        return AGGREGATION_ERR_NO_MEMORY;
    walk->values = values;
    int64_t *days = realloc(walk->days, cap * sizeof *days);
    if (!days)
        return AGGREGATION_ERR_NO_MEMORY; /* values grew alone: harmless, cap unchanged */
    walk->days = days;
    walk->cap = cap;
    return AGGREGATION_OK;
}

/* Appends (v, d) to the walk, adding v to the last entry when it has the same days: the
 * walk telescopes over values present alike, Σ days × (G(S_after) - G(S_before)). The running
 * total and the peak follow. */
static enum aggregation_status walk_push(struct aggregation_walk *walk, money_t v, int64_t d)
{
    enum aggregation_status st =
        from_money_status(money_add_truncated(walk->running, v, &walk->running));
    if (st != AGGREGATION_OK)
        return st;
    if (money_cmp(walk->running, walk->peak) > 0)
        walk->peak = walk->running;
    if (walk->count > 0 && walk->days[walk->count - 1] == d)
        return from_money_status(
            money_add_truncated(walk->values[walk->count - 1], v, &walk->values[walk->count - 1]));
    if ((st = walk_reserve(walk, walk->count + 1)) != AGGREGATION_OK)
        return st;
    walk->values[walk->count] = v;
    walk->days[walk->count++] = d;
    return AGGREGATION_OK;
}

/* dst becomes a copy of src (its arrays reused). */
static enum aggregation_status walk_copy(struct aggregation_walk *dst,
                                         const struct aggregation_walk *src)
{
    enum aggregation_status st = walk_reserve(dst, src->count);
    if (st != AGGREGATION_OK)
        return st;
    if (src->count > 0) {
        memcpy(dst->values, src->values, src->count * sizeof *dst->values);
        memcpy(dst->days, src->days, src->count * sizeof *dst->days);
    }
    dst->count = src->count;
    dst->period_days = src->period_days;
    dst->running = src->running;
    dst->peak = src->peak;
    return AGGREGATION_OK;
}

/* Pushes a period value read at instant t (reader: the walk's, instants ascending). */
static enum aggregation_status walk_push_at(const struct aggregation *a, struct day_reader *reader,
                                            struct aggregation_walk *walk, tally_time t, money_t v)
{
    int64_t day;
    if (t < a->from) /* carried */
        return walk_push(walk, v, carried_days(&a->u.sum.days));
    enum aggregation_status st = day_read(a, reader, t, &day);
    return st != AGGREGATION_OK ? st : walk_push(walk, v, a->u.sum.days.last_day - day + 1);
}

/* The i-th of a's kept values with e's `value` in its place `at` (e NULL: none). */
static void kept_with(const struct aggregation *a, const struct aggregation_event *e, size_t at,
                      money_t value, size_t i, tally_time *t, money_t *v)
{
    bool is_e = e && i == at;
    size_t k = e && i > at ? i - 1 : i;
    *t = is_e ? e->timestamp : a->kept.order[k].timestamp;
    *v = is_e ? value : a->kept.values[k];
}

/* Lays out the whole walk of a's kept values (with e's `value` in its place, e NULL: none),
 * reading every one; `reader` is left where the last value put it. */
static enum aggregation_status walk_fill(const struct aggregation *a,
                                         const struct aggregation_event *e, money_t value,
                                         struct aggregation_walk *walk, struct day_reader *reader)
{
    size_t at = e ? kept_position(a, event_order(e)) : a->kept.count;
    size_t n = a->kept.count + (e ? 1 : 0), i = 0;
    tally_time t;
    money_t v, carried = MONEY_ZERO;
    enum aggregation_status st;
    walk_start(a, walk);
    /* in order, the values before the period come first: they walk as one, their total, when
     * above 0 (Lago's recurring_value) */
    for (; i < n; i++) {
        kept_with(a, e, at, value, i, &t, &v);
        if (t >= a->from)
            break;
        if ((st = from_money_status(money_add_truncated(carried, v, &carried))) != AGGREGATION_OK)
            return st;
    }
    const struct aggregation_days *p = &a->u.sum.days;
    if (money_sign(carried) > 0 &&
        (st = walk_push(walk, carried, carried_days(p))) != AGGREGATION_OK)
        return st;
    for (; i < n; i++) {
        kept_with(a, e, at, value, i, &t, &v);
        if ((st = walk_push_at(a, reader, walk, t, v)) != AGGREGATION_OK)
            return st;
    }
    return AGGREGATION_OK;
}

/* A prorated sum's kept walk: valid, the walk of every kept value, reader where the last left
 * it; else laid out again when next read. */
struct aggregation_walk_cache {
    struct aggregation_walk walk;
    struct day_reader reader;
    bool valid;
};

static void walk_cache_free(struct aggregation *a)
{
    if (a->kind != AGGREGATION_SUM || !a->u.sum.walk)
        return;
    aggregation_walk_free(&a->u.sum.walk->walk);
    free(a->u.sum.walk);
    a->u.sum.walk = NULL;
}

/* After a value (v at order `at`) was kept: the kept walk follows an append within the period,
 * and is laid out again on its next read after anything else. Never fails: without memory the
 * walk is only not kept. */
static void walk_cache_follow(struct aggregation *a, bool appended, tally_time t, money_t v)
{
    struct aggregation_walk_cache *c = a->u.sum.walk;
    if (!c && !(c = a->u.sum.walk = calloc(1, sizeof *c)))
        return;
    c->valid =
        c->valid && appended && walk_push_at(a, &c->reader, &c->walk, t, v) == AGGREGATION_OK;
}

/* ---- A prorated unique_count's walk ----------------------------------------------------------
 *
 * Lago walks a prorated unique count's remaining rows (aggregation.h, "Prorated unique
 * count") in time order: an add is one unit present the days to its removal, a removal one
 * unit less. A value's track says which rows remain: present at `from`, an add there (ordered
 * by its earliest add: adds sent again for a value present do not move it); on a day it is
 * absent at the start of, its first add; on a day it ends absent after being present, a
 * removal at the day's last operation. */

static bool ops_push(struct unique_ops *ops, struct unique_op op)
{
    if (ops->count == ops->cap) {
        size_t cap = ops->cap ? ops->cap * 2 : 64;
        struct unique_op *items = realloc(ops->items, cap * sizeof *items);
        if (!items)
            return false;
        ops->items = items;
        ops->cap = cap;
    }
    ops->items[ops->count++] = op;
    return true;
}

/* The walk's order: (timestamp, sequence), then the value, an add before a removal (the same
 * instant twice is a caller's bug); a total order, so a kept operation is found by its key. */
static int op_cmp(const struct unique_op *x, const struct unique_op *y)
{
    int c = order_cmp(x->at, y->at);
    if (c != 0)
        return c;
    if (x->ordinal != y->ordinal)
        return x->ordinal < y->ordinal ? -1 : 1;
    return (int)y->add - (int)x->add;
}

static int op_qsort_cmp(const void *x, const void *y)
{
    return op_cmp(x, y);
}

/* The first of ops not before `key`. */
static size_t ops_find(const struct unique_ops *ops, const struct unique_op *key)
{
    size_t lo = 0, hi = ops->count;
    if (hi > 0 && op_cmp(&ops->items[hi - 1], key) < 0)
        return hi; /* in order: after the last */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (op_cmp(&ops->items[mid], key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The operations of the value whose track is t (its ordinal given), appended to ops in order. */
static bool track_ops(const struct aggregation *a, const struct aggregation_unique_track *t,
                      uint32_t ordinal, struct unique_ops *ops)
{
    const struct aggregation_days *d = &a->u.unique.days;
    bool prev = t->carried && t->carry_add;
    size_t open = SIZE_MAX; /* the add whose removal is not seen yet */
    int64_t open_day = 0;
    if (prev) {
        struct aggregation_order at = t->has_first_add ? t->first_add : t->carry;
        if (!ops_push(ops, (struct unique_op){at, 0, ordinal, true}))
            return false;
        open = ops->count - 1;
    }
    for (uint32_t i = 0; i < t->count; i++) {
        const struct aggregation_unique_day *r = &t->days[i];
        if (!prev && r->has_add) {
            if (!ops_push(ops, (struct unique_op){r->first_add, 0, ordinal, true}))
                return false;
            open = ops->count - 1;
            open_day = r->day;
        }
        if (!r->last_add && (prev || r->has_add)) {
            assert(open != SIZE_MAX);
            ops->items[open].days = r->day - open_day + 1;
            open = SIZE_MAX;
            if (!ops_push(ops, (struct unique_op){r->last, 0, ordinal, false}))
                return false;
        }
        prev = r->last_add;
    }
    if (open != SIZE_MAX)
        ops->items[open].days = d->last_day - d->first_day + 1 - open_day;
    return true;
}

static void unique_walk_free(struct aggregation *a)
{
    struct aggregation_unique_walk *c = a->u.unique.walk;
    if (!c)
        return;
    free(c->ops.items);
    free(c->before.items);
    free(c->after.items);
    free(c);
    a->u.unique.walk = NULL;
}

/* Lays the kept operations out from every track, when they are not kept already. */
static enum aggregation_status unique_walk_keep(const struct aggregation *a,
                                                struct aggregation_unique_walk *c)
{
    if (c->valid)
        return AGGREGATION_OK;
    c->ops.count = 0;
    for (size_t i = 0; i < a->u.unique.used; i++)
        if (!track_ops(a, &a->u.unique.tracks[i], (uint32_t)i, &c->ops))
            return AGGREGATION_ERR_NO_MEMORY;
    if (c->ops.count > 1)
        qsort(c->ops.items, c->ops.count, sizeof *c->ops.items, op_qsort_cmp);
    c->valid = true;
    return AGGREGATION_OK;
}

static void unique_walk_before(struct aggregation *a, const struct aggregation_unique_track *t,
                               uint32_t ordinal)
{
    struct aggregation_unique_walk *c = a->u.unique.walk;
    if (!c || !c->valid)
        return;
    c->before.count = 0;
    if (t && !track_ops(a, t, ordinal, &c->before))
        c->valid = false; /* without memory the operations are only not kept */
}

/* Moves the kept operations from the value's `before` to its `after`, one at a time: an
 * operation gone is taken out, a new one put in its place, a kept one given its new days. */
static void unique_walk_after(struct aggregation *a, const struct aggregation_unique_track *t,
                              uint32_t ordinal)
{
    struct aggregation_unique_walk *c = a->u.unique.walk;
    if (!c || !c->valid)
        return;
    c->after.count = 0;
    if (!track_ops(a, t, ordinal, &c->after)) {
        c->valid = false;
        return;
    }
    struct unique_ops *ops = &c->ops;
    size_t i = 0, j = 0;
    while (i < c->before.count || j < c->after.count) {
        const struct unique_op *was = i < c->before.count ? &c->before.items[i] : NULL;
        const struct unique_op *now = j < c->after.count ? &c->after.items[j] : NULL;
        int side = !was ? 1 : !now ? -1 : op_cmp(was, now);
        const struct unique_op *key = side <= 0 ? was : now;
        size_t at = ops_find(ops, key);
        bool found = at < ops->count && op_cmp(&ops->items[at], key) == 0;
        assert(found == (side <= 0)); /* the kept operations are the tracks' */
        if (found != (side <= 0)) {
            c->valid = false;
            return;
        }
        if (side < 0) {
            memmove(ops->items + at, ops->items + at + 1, (ops->count - at - 1) * sizeof *key);
            ops->count--;
            i++;
        } else if (side > 0) {
            if (!ops_push(ops, *now)) {
                c->valid = false;
                return;
            }
            memmove(ops->items + at + 1, ops->items + at, (ops->count - at - 1) * sizeof *key);
            ops->items[at] = *now;
            j++;
        } else {
            ops->items[at].days = now->days;
            i++;
            j++;
        }
    }
}

/* t with plan p applied, into v (its records in `days`, room for t's and one more). */
static void track_planned(const struct aggregation_unique_track *t, const struct track_plan *p,
                          struct aggregation_unique_day *days, struct aggregation_unique_track *v)
{
    *v = t ? *t : (struct aggregation_unique_track){0};
    v->days = days;
    if (t && t->count > 0)
        memcpy(days, t->days, t->count * sizeof *days);
    track_apply(v, p);
}

/* Appends an entry of `count` units present `days` to the walk (its room reserved). */
static enum aggregation_status walk_append(struct aggregation_walk *walk, int64_t count,
                                           int64_t days)
{
    enum aggregation_status st = walk_reserve(walk, walk->count + 1);
    if (st != AGGREGATION_OK)
        return st;
    walk->values[walk->count] = money_from_int(count);
    walk->days[walk->count++] = days;
    return AGGREGATION_OK;
}

/* The walk of the kept operations but those of value `skip` (UINT32_MAX: none), with `mine`
 * (in order) among them: ±1 each, an add with its days, consecutive ones of the same days in
 * one entry as walk_push makes them. Counted in integers: a count never passes the values'. */
static enum aggregation_status walk_of_ops(const struct aggregation *a,
                                           const struct unique_ops *kept, uint32_t skip,
                                           const struct unique_ops *mine,
                                           struct aggregation_walk *walk)
{
    walk->count = 0;
    walk->period_days = a->u.unique.days.period_days;
    size_t i = 0, j = 0, n = mine ? mine->count : 0;
    int64_t running = 0, peak = 0, entry = 0, entry_days = -1; /* -1: no entry open */
    enum aggregation_status st = AGGREGATION_OK;
    while (i < kept->count || j < n) {
        const struct unique_op *op;
        if (i < kept->count && kept->items[i].ordinal == skip) {
            i++;
            continue;
        }
        if (j < n && (i == kept->count || op_cmp(&mine->items[j], &kept->items[i]) < 0))
            op = &mine->items[j++];
        else
            op = &kept->items[i++];
        int64_t step = op->add ? 1 : -1;
        running += step;
        if (running > peak)
            peak = running;
        if (op->days != entry_days) {
            if (entry_days >= 0 && (st = walk_append(walk, entry, entry_days)) != AGGREGATION_OK)
                return st;
            entry = 0;
            entry_days = op->days;
        }
        entry += step;
    }
    if (entry_days >= 0 && (st = walk_append(walk, entry, entry_days)) != AGGREGATION_OK)
        return st;
    walk->running = money_from_int(running);
    walk->peak = money_from_int(peak);
    return AGGREGATION_OK;
}

/* A prorated unique count's walk (aggregation_prorated_values), e's operation taken. */
static enum aggregation_status unique_walk(const struct aggregation *a,
                                           const struct aggregation_event *e,
                                           struct aggregation_walk *walk)
{
    struct aggregation_unique_walk *c = a->u.unique.walk;
    assert(c); /* aggregation_set_prorated made it */
    enum aggregation_status st;
    if (e && e->timestamp >= a->to)
        return AGGREGATION_ERR_OUT_OF_PERIOD;
    if ((st = unique_walk_keep(a, c)) != AGGREGATION_OK)
        return st;
    if (!e)
        return walk_of_ops(a, &c->ops, UINT32_MAX, NULL, walk);
    bool add;
    if ((st = parse_operation(e, &add)) != AGGREGATION_OK)
        return st;
    if (e->value && e->value_len > AGGREGATION_VALUE_TEXT_MAX)
        return AGGREGATION_ERR_LIMIT;
    const struct aggregation_unique_track *mine = NULL; /* e's value's, as it is */
    uint32_t ordinal = (uint32_t)a->u.unique.used;      /* a new value's */
    if (a->u.unique.capacity) {
        uint64_t hash = unique_hash(a, e->value, e->value_len);
        const struct aggregation_unique_entry *en =
            &a->u.unique.entries[unique_slot(a, hash, e->value, e->value_len)];
        if (en->flags & ENTRY_USED) {
            ordinal = en->ordinal;
            mine = &a->u.unique.tracks[ordinal];
        }
    }
    struct track_plan plan;
    if ((st = track_plan(a, mine, add, event_order(e), &plan)) != AGGREGATION_OK)
        return st;
    /* e's value as e leaves it */
    struct aggregation_unique_day *days = malloc(((mine ? mine->count : 0) + 1) * sizeof *days);
    if (!days)
        return AGGREGATION_ERR_NO_MEMORY;
    struct aggregation_unique_track planned;
    track_planned(mine, &plan, days, &planned);
    c->after.count = 0;
    st = track_ops(a, &planned, ordinal, &c->after)
             ? walk_of_ops(a, &c->ops, mine ? ordinal : UINT32_MAX, &c->after, walk)
             : AGGREGATION_ERR_NO_MEMORY;
    free(days);
    return st;
}

enum aggregation_status aggregation_prorated_values(const struct aggregation *a,
                                                    const struct aggregation_event *e,
                                                    money_t value, struct aggregation_walk *walk)
{
    if (a && walk && a->kind == AGGREGATION_UNIQUE_COUNT && a->u.unique.prorated)
        return unique_walk(a, e, walk);
    if (!a || !walk || a->kind != AGGREGATION_SUM || !a->u.sum.prorated ||
        a->keep_values != AGGREGATION_KEEP_ALL)
        return AGGREGATION_ERR_INVALID;
    struct aggregation_walk_cache *c = a->u.sum.walk;
    bool e_last = e && e->timestamp >= a->from && kept_position(a, event_order(e)) == a->kept.count;
    enum aggregation_status st;
    struct day_reader reader = {0};
    if (!c || (e && !e_last))
        return walk_fill(a, e, value, walk, &reader);
    if (!c->valid) {
        c->reader = (struct day_reader){0};
        if ((st = walk_fill(a, NULL, MONEY_ZERO, &c->walk, &c->reader)) != AGGREGATION_OK)
            return st;
        c->valid = true;
    }
    /* the kept walk, and e after it */
    if ((st = walk_copy(walk, &c->walk)) != AGGREGATION_OK)
        return st;
    reader = c->reader;
    return e ? walk_push_at(a, &reader, walk, e->timestamp, value) : AGGREGATION_OK;
}

/* ---- Rounding ------------------------------------------------------------------------------ */

enum aggregation_status aggregation_round(const struct billable_metric *m, money_t units,
                                          money_t *out)
{
    if (!m || !out || !money_is_valid(units))
        return AGGREGATION_ERR_INVALID;
    enum money_round mode;
    switch (m->rounding) {
    case ROUNDING_NONE: *out = units; return AGGREGATION_OK;
    case ROUNDING_ROUND: mode = MONEY_ROUND_HALF_UP; break;
    case ROUNDING_CEIL: mode = MONEY_ROUND_CEIL; break;
    case ROUNDING_FLOOR: mode = MONEY_ROUND_FLOOR; break;
    default: return AGGREGATION_ERR_INVALID;
    }
    int32_t p = m->rounding_precision;
    if (p < BILLABLE_METRIC_PRECISION_MIN || p > BILLABLE_METRIC_PRECISION_MAX)
        return AGGREGATION_ERR_INVALID;
    if (p >= 0)
        return from_money_status(money_round(units, p, mode, out));
    /* BigDecimal#round(-k): to a multiple of 10^k, with the same mode. */
    money_t step = money_from_int((int64_t)pow10_u64[-p]), q;
    enum money_status st = money_div(units, step, 0, mode, &q);
    if (st != MONEY_OK)
        return from_money_status(st);
    return from_money_status(money_mul(q, step, out));
}

/* ---- Filters ------------------------------------------------------------------------------- */

static const struct event_property *find_property(const struct event_property *props, size_t n,
                                                  const char *key)
{
    for (size_t i = 0; props && i < n; i++)
        if (props[i].key && strcmp(props[i].key, key) == 0)
            return &props[i];
    return NULL;
}

static bool in_list(const char *const *values, size_t count, const char *v)
{
    for (size_t i = 0; values && i < count; i++)
        if (values[i] && strcmp(values[i], v) == 0)
            return true;
    return false;
}

static bool is_wildcard(const struct aggregation_filter_key *k)
{
    return k->value_count == 1 && k->values && k->values[0] &&
           strcmp(k->values[0], AGGREGATION_FILTER_WILDCARD) == 0;
}

bool aggregation_filter_matches(const struct billable_metric *m, const struct aggregation_filter *f,
                                const struct event_property *props, size_t n)
{
    if (!f || (f->key_count > 0 && !f->keys))
        return false;
    for (size_t i = 0; i < f->key_count; i++) {
        const struct aggregation_filter_key *k = &f->keys[i];
        if (!k->key)
            return false;
        const struct event_property *p = find_property(props, n, k->key);
        if (!p)
            return false;
        if (is_wildcard(k)) {
            if (!m)
                continue; /* EventMatchingService: any present value */
            if (!p->value)
                return false;
            const struct billable_metric_filter *mf = NULL;
            for (size_t j = 0; m->filters && j < m->filter_count && !mf; j++)
                if (m->filters[j].key && strcmp(m->filters[j].key, k->key) == 0)
                    mf = &m->filters[j];
            if (!mf || !in_list(mf->values, mf->value_count, p->value))
                return false;
            continue;
        }
        if (!p->value || !in_list(k->values, k->value_count, p->value))
            return false;
    }
    return true;
}

/* A key's values as a set: the wildcard is every value the metric declares for the key (any
 * value without the metric). */
static const struct billable_metric_filter *declared(const struct billable_metric *m,
                                                     const char *key)
{
    for (size_t j = 0; m && m->filters && j < m->filter_count; j++)
        if (m->filters[j].key && strcmp(m->filters[j].key, key) == 0)
            return &m->filters[j];
    return NULL;
}

/* Whether every value of `inner` is one of `outer`'s (same key). */
static bool values_within(const struct billable_metric *m,
                          const struct aggregation_filter_key *inner,
                          const struct aggregation_filter_key *outer)
{
    if (is_wildcard(outer))
        return true;
    const char *const *values = inner->values;
    size_t count = inner->value_count;
    if (is_wildcard(inner)) {
        const struct billable_metric_filter *mf = declared(m, inner->key);
        if (!mf)
            return false; /* any value at all: within no list */
        values = mf->values;
        count = mf->value_count;
    }
    for (size_t i = 0; i < count; i++)
        if (!values[i] || !in_list(outer->values, outer->value_count, values[i]))
            return false;
    return true;
}

static const struct aggregation_filter_key *filter_key(const struct aggregation_filter *f,
                                                       const char *key)
{
    for (size_t i = 0; i < f->key_count; i++)
        if (f->keys[i].key && strcmp(f->keys[i].key, key) == 0)
            return &f->keys[i];
    return NULL;
}

/* Whether `child` nests strictly inside `parent`: it has each of parent's keys with values
 * among parent's, and is not the same set (more keys, or fewer values somewhere). */
static bool nests_inside(const struct billable_metric *m, const struct aggregation_filter *child,
                         const struct aggregation_filter *parent)
{
    bool narrower = child->key_count > parent->key_count;
    for (size_t i = 0; i < parent->key_count; i++) {
        const struct aggregation_filter_key *pk = &parent->keys[i];
        const struct aggregation_filter_key *ck = pk->key ? filter_key(child, pk->key) : NULL;
        if (!ck || !values_within(m, ck, pk))
            return false;
        narrower = narrower || !values_within(m, pk, ck);
    }
    return narrower;
}

size_t aggregation_filter_bucket(const struct billable_metric *m,
                                 const struct aggregation_filter *filters, size_t filter_count,
                                 const struct event_property *props, size_t n)
{
    size_t best = filter_count;
    for (size_t i = 0; filters && i < filter_count; i++) {
        if (!aggregation_filter_matches(m, &filters[i], props, n))
            continue;
        if (best == filter_count || nests_inside(m, &filters[i], &filters[best]))
            best = i;
        else if (!nests_inside(m, &filters[best], &filters[i]) &&
                 filters[i].key_count > filters[best].key_count)
            best = i; /* overlapping, not nested: strictly more keys; the first of equals */
    }
    return best;
}
