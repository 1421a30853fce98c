/*
 * core/tz: TZif parsing (RFC 8536) and UTC <-> local conversion. See tz.h for the contract.
 *
 * Internally every instant is an int64 count of seconds (TZif's unit); tally_time
 * microseconds are split at the API boundary. A zone is a sorted array of explicit
 * transitions, the table of local time types they point to, the abbreviation pool, and the
 * optional POSIX rule that takes over after the last transition. Rule transitions are
 * computed on demand for the few years around an instant (no table that grows with time).
 *
 * Local -> UTC does not assume anything about the shape of the data (a fuzzed file may
 * have transitions one second apart): it walks every interval between transitions whose
 * instants could show the wanted local time (offsets are bounded, so the window is at most
 * +-26 hours), which finds every occurrence and every gap exactly.
 */
#include "core/tz.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define SECS_PER_DAY INT64_C(86400)
#define SECS_PER_HOUR 3600
/* POSIX hours in an offset ("EST5"); RFC 8536 lets rule times reach 167 hours. */
#define POSIX_OFFSET_HOURS_MAX 24
#define POSIX_RULE_HOURS_MAX 167
#define POSIX_DEFAULT_RULE_TIME (2 * SECS_PER_HOUR)
/* Years of rule transitions examined around an instant: the rule's times may push a year's
 * transition up to a week into the neighbouring year, so two years each way suffice. */
#define RULE_YEARS_AROUND 2
#define RULE_EVENTS ((2 * RULE_YEARS_AROUND + 1) * 2)
/* The header: magic, version, 15 reserved bytes, six 32-bit counts. */
#define TZIF_HEADER_BYTES 44

struct tz_type {
    int32_t utoff;
    bool isdst;
    uint16_t abbr; /* index into the zone's abbreviation pool */
};

enum rule_kind {
    RULE_JULIAN1, /* Jn: day 1..365, February 29 never counted */
    RULE_JULIAN0, /* n: day 0..365, February 29 counted */
    RULE_MONTH,   /* Mm.w.d: weekday d (0 = Sunday) of week w (5 = last) of month m */
};

struct rule_date {
    enum rule_kind kind;
    int32_t day;   /* Jn/n: the day number; M: the weekday */
    int32_t month; /* M only */
    int32_t week;  /* M only */
    int32_t time;  /* seconds after local midnight, may be negative or > 24h */
};

struct posix_rule {
    bool present;
    bool has_dst;
    struct tz_type std, dst;
    struct rule_date start, end; /* start of DST (local standard time), end (local DST) */
};

/* Owned by its creator until tz_free; immutable once built. */
struct tz_zone {
    size_t timecnt;
    int64_t *times;   /* strictly ascending, seconds */
    uint8_t *type_of; /* type index of each transition */
    size_t typecnt;   /* >= 1 */
    struct tz_type *types;
    char *pool; /* NUL-terminated abbreviations: the file's, then the rule's */
    size_t pool_len;
    size_t pool_cap;
    struct posix_rule rule;
    int32_t max_abs_offset; /* over every type the zone can show */
};

const char *tz_status_name(enum tz_status status)
{
    switch (status) {
    case TZ_OK: return "TZ_OK";
    case TZ_ERR_ARG: return "TZ_ERR_ARG";
    case TZ_ERR_TRUNCATED: return "TZ_ERR_TRUNCATED";
    case TZ_ERR_MAGIC: return "TZ_ERR_MAGIC";
    case TZ_ERR_VERSION: return "TZ_ERR_VERSION";
    case TZ_ERR_LIMIT: return "TZ_ERR_LIMIT";
    case TZ_ERR_INVALID: return "TZ_ERR_INVALID";
    case TZ_ERR_FOOTER: return "TZ_ERR_FOOTER";
    case TZ_ERR_UNSUPPORTED: return "TZ_ERR_UNSUPPORTED";
    case TZ_ERR_NOMEM: return "TZ_ERR_NOMEM";
    case TZ_ERR_RANGE: return "TZ_ERR_RANGE";
    }
    return "TZ_ERR_UNKNOWN";
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* ---- zone allocation ---------------------------------------------------------------- */

static struct tz_zone *zone_alloc(size_t timecnt, size_t typecnt, size_t charcnt)
{
    struct tz_zone *z = calloc(1, sizeof *z);
    if (z == NULL)
        return NULL;
    /* Room for the rule's two abbreviations after the file's pool. */
    z->pool_cap = charcnt + 2 * (TZ_MAX_ABBR_LEN + 1);
    /* +1 so that an empty array is still a valid allocation. */
    z->times = malloc((timecnt + 1) * sizeof *z->times);
    z->type_of = malloc(timecnt + 1);
    z->types = malloc((typecnt + 1) * sizeof *z->types);
    z->pool = malloc(z->pool_cap);
    if (z->times == NULL || z->type_of == NULL || z->types == NULL || z->pool == NULL) {
        tz_free(z);
        return NULL;
    }
    return z;
}

void tz_free(struct tz_zone *zone)
{
    if (zone == NULL)
        return;
    free(zone->times);
    free(zone->type_of);
    free(zone->types);
    free(zone->pool);
    free(zone);
}

static void zone_finish(struct tz_zone *z)
{
    int32_t m = 0;
    for (size_t i = 0; i < z->typecnt; i++) {
        int32_t a = z->types[i].utoff < 0 ? -z->types[i].utoff : z->types[i].utoff;
        m = a > m ? a : m;
    }
    if (z->rule.present) {
        int32_t a = z->rule.std.utoff < 0 ? -z->rule.std.utoff : z->rule.std.utoff;
        m = a > m ? a : m;
        a = z->rule.dst.utoff < 0 ? -z->rule.dst.utoff : z->rule.dst.utoff;
        m = a > m ? a : m;
    }
    z->max_abs_offset = m;
}

/* ---- POSIX TZ strings --------------------------------------------------------------- */

struct text {
    const char *s;
    size_t len;
    size_t pos;
};

static bool at(const struct text *t, char c)
{
    return t->pos < t->len && t->s[t->pos] == c;
}

static bool at_digit(const struct text *t)
{
    return t->pos < t->len && t->s[t->pos] >= '0' && t->s[t->pos] <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* Reads 1..max_digits digits as a number no larger than max. */
static bool read_num(struct text *t, int max_digits, int32_t max, int32_t *out)
{
    int32_t v = 0;
    int n = 0;
    while (at_digit(t) && n < max_digits) {
        v = v * 10 + (t->s[t->pos] - '0');
        t->pos++;
        n++;
    }
    if (n == 0 || v > max || at_digit(t))
        return false;
    *out = v;
    return true;
}

/* An abbreviation: 3+ letters, or <3+ of [A-Za-z0-9+-]>. Appended to the zone's pool. */
static bool read_abbr(struct text *t, struct tz_zone *z, uint16_t *index)
{
    size_t start, n = 0;
    if (at(t, '<')) {
        t->pos++;
        start = t->pos;
        while (t->pos < t->len && t->s[t->pos] != '>') {
            char c = t->s[t->pos];
            if (!is_alpha(c) && !(c >= '0' && c <= '9') && c != '+' && c != '-')
                return false;
            t->pos++;
            n++;
        }
        if (!at(t, '>'))
            return false;
        t->pos++;
    } else {
        start = t->pos;
        while (t->pos < t->len && is_alpha(t->s[t->pos])) {
            t->pos++;
            n++;
        }
    }
    if (n < 3 || n > TZ_MAX_ABBR_LEN)
        return false;
    /* zone_alloc reserved room for two names; a third never comes. */
    assert(z->pool_len + n + 1 <= z->pool_cap);
    memcpy(z->pool + z->pool_len, t->s + start, n);
    z->pool[z->pool_len + n] = '\0';
    *index = (uint16_t)z->pool_len;
    z->pool_len += n + 1;
    return true;
}

/* [+-]hh[:mm[:ss]] in seconds; hours up to max_hours. */
static bool read_hms(struct text *t, int32_t max_hours, bool allow_sign, int32_t *out)
{
    int32_t sign = 1, h, m = 0, s = 0;
    if (at(t, '+') || at(t, '-')) {
        if (!allow_sign)
            return false;
        sign = at(t, '-') ? -1 : 1;
        t->pos++;
    }
    if (!read_num(t, 3, max_hours, &h))
        return false;
    if (at(t, ':')) {
        t->pos++;
        if (!read_num(t, 2, 59, &m))
            return false;
        if (at(t, ':')) {
            t->pos++;
            if (!read_num(t, 2, 59, &s))
                return false;
        }
    }
    *out = sign * (h * SECS_PER_HOUR + m * 60 + s);
    return true;
}

static bool read_rule_date(struct text *t, struct rule_date *r)
{
    if (at(t, 'J')) {
        t->pos++;
        r->kind = RULE_JULIAN1;
        if (!read_num(t, 3, 365, &r->day) || r->day < 1)
            return false;
    } else if (at(t, 'M')) {
        t->pos++;
        r->kind = RULE_MONTH;
        if (!read_num(t, 2, 12, &r->month) || r->month < 1 || !at(t, '.'))
            return false;
        t->pos++;
        if (!read_num(t, 1, 5, &r->week) || r->week < 1 || !at(t, '.'))
            return false;
        t->pos++;
        if (!read_num(t, 1, 6, &r->day))
            return false;
    } else {
        r->kind = RULE_JULIAN0;
        if (!read_num(t, 3, 365, &r->day))
            return false;
    }
    r->time = POSIX_DEFAULT_RULE_TIME;
    if (at(t, '/')) {
        t->pos++;
        if (!read_hms(t, POSIX_RULE_HOURS_MAX, true, &r->time))
            return false;
    }
    return true;
}

/* Parses a whole POSIX TZ string into z->rule (abbreviations into z's pool). */
static bool parse_posix(const char *s, size_t len, struct tz_zone *z)
{
    struct text t = {s, len, 0};
    struct posix_rule *r = &z->rule;
    int32_t off;

    memset(r, 0, sizeof *r);
    if (!read_abbr(&t, z, &r->std.abbr) || !read_hms(&t, POSIX_OFFSET_HOURS_MAX, true, &off))
        return false;
    r->std.utoff = -off; /* POSIX counts west positive */
    r->std.isdst = false;
    r->present = true;
    if (t.pos == t.len)
        return true;

    r->has_dst = true;
    if (!read_abbr(&t, z, &r->dst.abbr))
        return false;
    r->dst.isdst = true;
    r->dst.utoff = r->std.utoff + SECS_PER_HOUR;
    if (at(&t, '+') || at(&t, '-') || at_digit(&t)) {
        if (!read_hms(&t, POSIX_OFFSET_HOURS_MAX, true, &off))
            return false;
        r->dst.utoff = -off;
    }
    if (t.pos == t.len) {
        /* No rule: POSIX leaves it to the implementation; glibc and tzcode use the US
         * rule of 2007, and so does Tally. */
        r->start = (struct rule_date){RULE_MONTH, 0, 3, 2, POSIX_DEFAULT_RULE_TIME};
        r->end = (struct rule_date){RULE_MONTH, 0, 11, 1, POSIX_DEFAULT_RULE_TIME};
        return true;
    }
    if (!at(&t, ','))
        return false;
    t.pos++;
    if (!read_rule_date(&t, &r->start) || !at(&t, ','))
        return false;
    t.pos++;
    if (!read_rule_date(&t, &r->end))
        return false;
    return t.pos == t.len;
}

enum tz_status tz_from_posix(const char *text, size_t len, struct tz_zone **out)
{
    if (out == NULL)
        return TZ_ERR_ARG;
    *out = NULL;
    if (text == NULL)
        return TZ_ERR_ARG;
    if (len > TZ_MAX_FOOTER)
        return TZ_ERR_LIMIT;
    struct tz_zone *z = zone_alloc(0, 1, 0);
    if (z == NULL)
        return TZ_ERR_NOMEM;
    if (!parse_posix(text, len, z)) {
        tz_free(z);
        return TZ_ERR_FOOTER;
    }
    /* Type 0 mirrors standard time so that the zone is complete without the rule too. */
    z->typecnt = 1;
    z->types[0] = z->rule.std;
    zone_finish(z);
    *out = z;
    return TZ_OK;
}

/* ---- TZif --------------------------------------------------------------------------- */

struct tzif_header {
    uint8_t version; /* 0, '2', '3' or '4' */
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int64_t be64(const uint8_t *p)
{
    uint64_t v = (uint64_t)be32(p) << 32 | be32(p + 4);
    return (int64_t)v; /* two's complement on every platform Tally supports */
}

/* Reads and bounds-checks a header at data[*pos]. */
static enum tz_status read_header(const uint8_t *data, size_t len, size_t *pos,
                                  struct tzif_header *h)
{
    if (len - *pos < TZIF_HEADER_BYTES)
        return TZ_ERR_TRUNCATED;
    const uint8_t *p = data + *pos;
    if (memcmp(p, "TZif", 4) != 0)
        return TZ_ERR_MAGIC;
    h->version = p[4];
    if (h->version != 0 && h->version != '2' && h->version != '3' && h->version != '4')
        return TZ_ERR_VERSION;
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    *pos += TZIF_HEADER_BYTES;
    if (h->timecnt > TZ_MAX_TRANSITIONS || h->typecnt > TZ_MAX_TYPES ||
        h->charcnt > TZ_MAX_ABBR_BYTES || h->isutcnt > TZ_MAX_TYPES || h->isstdcnt > TZ_MAX_TYPES)
        return TZ_ERR_LIMIT;
    if (h->leapcnt != 0)
        return TZ_ERR_UNSUPPORTED;
    return TZ_OK;
}

static size_t block_bytes(const struct tzif_header *h, size_t time_size)
{
    /* Every count is bounded by read_header, so this cannot overflow. */
    return (size_t)h->timecnt * time_size + h->timecnt + (size_t)h->typecnt * 6 + h->charcnt +
           (size_t)h->leapcnt * (time_size + 4) + h->isstdcnt + h->isutcnt;
}

/* Reads the data block described by `h` (all bytes known present) into a new zone. */
static enum tz_status read_block(const uint8_t *p, const struct tzif_header *h, size_t time_size,
                                 struct tz_zone **out)
{
    if (h->typecnt == 0 || h->charcnt == 0)
        return TZ_ERR_INVALID;
    if ((h->isutcnt != 0 && h->isutcnt != h->typecnt) ||
        (h->isstdcnt != 0 && h->isstdcnt != h->typecnt))
        return TZ_ERR_INVALID;

    struct tz_zone *z = zone_alloc(h->timecnt, h->typecnt, h->charcnt);
    if (z == NULL)
        return TZ_ERR_NOMEM;
    z->timecnt = h->timecnt;
    z->typecnt = h->typecnt;

    enum tz_status st = TZ_ERR_INVALID;
    for (size_t i = 0; i < z->timecnt; i++, p += time_size) {
        z->times[i] = time_size == 8 ? be64(p) : (int32_t)be32(p);
        if (i > 0 && z->times[i] <= z->times[i - 1])
            goto fail;
    }
    for (size_t i = 0; i < z->timecnt; i++, p++) {
        if (*p >= z->typecnt)
            goto fail;
        z->type_of[i] = *p;
    }
    const uint8_t *type_rec = p;
    p += (size_t)z->typecnt * 6;
    /* The pool comes after the types; check each designation ends inside it. */
    memcpy(z->pool, p, h->charcnt);
    z->pool_len = h->charcnt;
    for (size_t i = 0; i < z->typecnt; i++, type_rec += 6) {
        int32_t utoff = (int32_t)be32(type_rec);
        uint8_t isdst = type_rec[4], idx = type_rec[5];
        if (utoff < -TZ_MAX_OFFSET_SECONDS || utoff > TZ_MAX_OFFSET_SECONDS || isdst > 1 ||
            idx >= h->charcnt || memchr(z->pool + idx, '\0', h->charcnt - idx) == NULL)
            goto fail;
        z->types[i] = (struct tz_type){utoff, isdst == 1, idx};
    }
    p += h->charcnt;
    /* No leap records (read_header refused them). Standard/wall and UT/local indicators
     * only matter for POSIX-rule fallbacks that RFC 8536 readers ignore; check them anyway. */
    const uint8_t *isstd = p, *isut = p + h->isstdcnt;
    for (size_t i = 0; i < h->isstdcnt; i++)
        if (isstd[i] > 1)
            goto fail;
    for (size_t i = 0; i < h->isutcnt; i++)
        if (isut[i] > 1 || (isut[i] == 1 && h->isstdcnt != 0 && isstd[i] != 1))
            goto fail;
    *out = z;
    return TZ_OK;
fail:
    tz_free(z);
    return st;
}

enum tz_status tz_parse(const uint8_t *data, size_t len, struct tz_zone **out)
{
    if (out == NULL)
        return TZ_ERR_ARG;
    *out = NULL;
    if (data == NULL)
        return TZ_ERR_ARG;
    if (len > TZ_MAX_INPUT_BYTES)
        return TZ_ERR_LIMIT;

    size_t pos = 0;
    struct tzif_header h1, h2;
    enum tz_status st = read_header(data, len, &pos, &h1);
    if (st != TZ_OK)
        return st;
    size_t b1 = block_bytes(&h1, 4);
    if (len - pos < b1)
        return TZ_ERR_TRUNCATED;

    struct tz_zone *z = NULL;
    if (h1.version == 0) {
        /* Version 1: 32-bit data, no footer, nothing after. */
        st = read_block(data + pos, &h1, 4, &z);
        if (st != TZ_OK)
            return st;
        if (pos + b1 != len) {
            tz_free(z);
            return TZ_ERR_INVALID;
        }
        zone_finish(z);
        *out = z;
        return TZ_OK;
    }

    /* Version 2+: skip the 32-bit block, read the 64-bit one. */
    pos += b1;
    st = read_header(data, len, &pos, &h2);
    if (st != TZ_OK)
        return st;
    if (h2.version != h1.version)
        return TZ_ERR_INVALID;
    size_t b2 = block_bytes(&h2, 8);
    if (len - pos < b2)
        return TZ_ERR_TRUNCATED;
    st = read_block(data + pos, &h2, 8, &z);
    if (st != TZ_OK)
        return st;
    pos += b2;

    /* Footer: '\n', a POSIX TZ string (maybe empty), '\n', end of file. */
    st = TZ_ERR_FOOTER;
    if (pos == len) {
        st = TZ_ERR_TRUNCATED;
        goto fail;
    }
    if (data[pos] != '\n')
        goto fail;
    pos++;
    const uint8_t *nl = memchr(data + pos, '\n', len - pos);
    if (nl == NULL) {
        st = len - pos > TZ_MAX_FOOTER ? TZ_ERR_LIMIT : TZ_ERR_TRUNCATED;
        goto fail;
    }
    size_t flen = (size_t)(nl - (data + pos));
    if (flen > TZ_MAX_FOOTER) {
        st = TZ_ERR_LIMIT;
        goto fail;
    }
    if ((size_t)(nl - data) + 1 != len)
        goto fail;
    if (flen > 0 && !parse_posix((const char *)data + pos, flen, z))
        goto fail;
    zone_finish(z);
    *out = z;
    return TZ_OK;
fail:
    tz_free(z);
    return st;
}

/* ---- rule transitions --------------------------------------------------------------- */

/* Day number (since 1970-01-01) of a rule date in `year`. */
static int64_t rule_day(const struct rule_date *r, int32_t year)
{
    int64_t jan1 = timestamp_days_from_civil((struct civil_date){year, 1, 1});
    switch (r->kind) {
    case RULE_JULIAN1: return jan1 + r->day - 1 + (timestamp_is_leap_year(year) && r->day >= 60);
    case RULE_JULIAN0: return jan1 + r->day;
    case RULE_MONTH: break;
    }
    int64_t first = timestamp_days_from_civil((struct civil_date){year, r->month, 1});
    int32_t wd_sunday0 = (timestamp_weekday_from_days(first) + 1) % 7;
    int64_t d = first + (r->day - wd_sunday0 + 7) % 7 + 7 * (int64_t)(r->week - 1);
    int64_t next_month = first + timestamp_days_in_month(year, r->month);
    while (d >= next_month) /* week 5 means the last one */
        d -= 7;
    return d;
}

struct rule_event {
    int64_t at; /* seconds, UTC */
    int32_t year;
    bool to_dst;
};

static bool event_before(const struct rule_event *a, const struct rule_event *b)
{
    /* At equal instants the later year's event wins (comes last), so a rule whose DST ends
     * exactly when next year's starts (RFC 8536's "all year DST") stays in DST. */
    if (a->at != b->at)
        return a->at < b->at;
    if (a->year != b->year)
        return a->year < b->year;
    return !a->to_dst && b->to_dst;
}

/* The rule's transitions in the years around instant s, sorted. */
static void rule_events(const struct posix_rule *r, int64_t s, struct rule_event ev[RULE_EVENTS])
{
    int64_t days = floor_div(s + r->std.utoff, SECS_PER_DAY);
    int32_t year = timestamp_civil_from_days(days).year;
    size_t n = 0;
    for (int32_t y = year - RULE_YEARS_AROUND; y <= year + RULE_YEARS_AROUND; y++) {
        ev[n++] = (struct rule_event){
            rule_day(&r->start, y) * SECS_PER_DAY + r->start.time - r->std.utoff, y, true};
        ev[n++] = (struct rule_event){
            rule_day(&r->end, y) * SECS_PER_DAY + r->end.time - r->dst.utoff, y, false};
    }
    for (size_t i = 1; i < n; i++) /* insertion sort of ten */
        for (size_t j = i; j > 0 && event_before(&ev[j], &ev[j - 1]); j--) {
            struct rule_event tmp = ev[j];
            ev[j] = ev[j - 1];
            ev[j - 1] = tmp;
        }
}

static struct tz_type rule_type_at(const struct posix_rule *r, int64_t s)
{
    if (!r->has_dst)
        return r->std;
    struct rule_event ev[RULE_EVENTS];
    rule_events(r, s, ev);
    bool dst = false;
    for (size_t i = 0; i < RULE_EVENTS && ev[i].at <= s; i++)
        dst = ev[i].to_dst;
    return dst ? r->dst : r->std;
}

/* ---- lookups ------------------------------------------------------------------------ */

static struct tz_type type_at(const struct tz_zone *z, int64_t s)
{
    if (z->timecnt == 0)
        return z->rule.present ? rule_type_at(&z->rule, s) : z->types[0];
    if (s < z->times[0])
        return z->types[0]; /* RFC 8536: type 0 before the first transition */
    if (s >= z->times[z->timecnt - 1])
        return z->rule.present ? rule_type_at(&z->rule, s) : z->types[z->type_of[z->timecnt - 1]];
    size_t lo = 0, hi = z->timecnt - 1; /* times[lo] <= s < times[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->times[mid] <= s)
            lo = mid;
        else
            hi = mid;
    }
    return z->types[z->type_of[lo]];
}

/* The first transition strictly after s, in seconds. */
static bool next_transition_s(const struct tz_zone *z, int64_t s, int64_t *out)
{
    if (z->timecnt > 0 && s < z->times[z->timecnt - 1]) {
        size_t lo = 0, hi = z->timecnt - 1; /* answer in [lo, hi] */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (z->times[mid] > s)
                hi = mid;
            else
                lo = mid + 1;
        }
        *out = z->times[lo];
        return true;
    }
    if (!z->rule.present || !z->rule.has_dst)
        return false;
    struct rule_event ev[RULE_EVENTS];
    rule_events(&z->rule, s, ev);
    for (size_t i = 0; i < RULE_EVENTS; i++)
        if (ev[i].at > s) {
            *out = ev[i].at;
            return true;
        }
    return false; /* unreachable: the last year's events are a year ahead */
}

static bool time_in_range(tally_time t)
{
    return t >= TIMESTAMP_MIN && t <= TIMESTAMP_MAX;
}

enum tz_status tz_to_local(const struct tz_zone *zone, tally_time t, struct tz_local *out)
{
    if (zone == NULL || out == NULL)
        return TZ_ERR_ARG;
    if (!time_in_range(t))
        return TZ_ERR_RANGE;
    int64_t s = floor_div(t, TIMESTAMP_USEC_PER_SEC);
    struct tz_type ty = type_at(zone, s);
    int64_t local = s + ty.utoff;
    int64_t days = floor_div(local, SECS_PER_DAY);
    int64_t sod = local - days * SECS_PER_DAY;
    out->civil.date = timestamp_civil_from_days(days);
    out->civil.hour = (int32_t)(sod / 3600);
    out->civil.minute = (int32_t)(sod / 60 % 60);
    out->civil.second = (int32_t)(sod % 60);
    out->civil.usec = (int32_t)(t - s * TIMESTAMP_USEC_PER_SEC);
    out->utc_offset = ty.utoff;
    out->is_dst = ty.isdst;
    out->abbr = zone->pool + ty.abbr;
    return TZ_OK;
}

enum tz_status tz_from_local(const struct tz_zone *zone, const struct tz_civil *local,
                             enum tz_fold fold, enum tz_gap gap, tally_time *out,
                             enum tz_match *match)
{
    if (zone == NULL || local == NULL || out == NULL)
        return TZ_ERR_ARG;
    const struct civil_date *d = &local->date;
    if (d->year < 1 || d->year > 9999)
        return TZ_ERR_RANGE;
    if (d->month < 1 || d->month > 12 || d->day < 1 ||
        d->day > timestamp_days_in_month(d->year, d->month) || local->hour < 0 ||
        local->hour > 23 || local->minute < 0 || local->minute > 59 || local->second < 0 ||
        local->second > 59 || local->usec < 0 || local->usec >= TIMESTAMP_USEC_PER_SEC)
        return TZ_ERR_ARG;

    int64_t L = timestamp_days_from_civil(*d) * SECS_PER_DAY + local->hour * 3600 +
                local->minute * 60 + local->second;
    /* Every instant showing L lies within the largest offset of L. */
    int64_t lo = L - zone->max_abs_offset - 1, hi = L + zone->max_abs_offset + 1;

    /* Walk the intervals [a, n) of constant type that meet [lo, hi]. In each, the one
     * candidate is L - offset. Between two intervals, L is skipped when it is past the
     * end of the first (read with its offset) and before the start of the second. */
    int64_t a = lo, first = 0, last = 0, gap_at = 0, gap_shifted = 0;
    size_t found = 0;
    bool have_gap = false;
    struct tz_type cur = type_at(zone, a);
    for (size_t iter = 0; iter <= TZ_MAX_TRANSITIONS + RULE_EVENTS; iter++) {
        int64_t n;
        bool bounded = next_transition_s(zone, a, &n) && n <= hi;
        int64_t cand = L - cur.utoff;
        if (cand >= a && (!bounded || cand < n)) {
            if (found == 0)
                first = cand;
            last = cand;
            found++;
        }
        if (!bounded)
            break;
        struct tz_type nxt = type_at(zone, n);
        if (!have_gap && cand >= n && L - nxt.utoff < n) {
            have_gap = true;
            gap_at = n;
            gap_shifted = cand;
        }
        a = n;
        cur = nxt;
    }

    int64_t s;
    enum tz_match m;
    if (found > 0) {
        m = found == 1 ? TZ_MATCH_UNIQUE : TZ_MATCH_FOLD;
        s = fold == TZ_FOLD_EARLIER ? first : last;
    } else {
        /* With offsets bounded, an L with no instant is always jumped over by some
         * transition in the window; the fallback only guards against a broken walk. */
        assert(have_gap);
        m = TZ_MATCH_GAP;
        if (!have_gap)
            s = L - type_at(zone, L).utoff;
        else
            s = gap == TZ_GAP_NEXT_VALID ? gap_at : gap_shifted;
    }
    tally_time t = s * TIMESTAMP_USEC_PER_SEC;
    if (m != TZ_MATCH_GAP || gap != TZ_GAP_NEXT_VALID)
        t += local->usec;
    if (!time_in_range(t))
        return TZ_ERR_RANGE; /* e.g. 0001-01-01 00:00 in a zone east of UTC */
    *out = t;
    if (match != NULL)
        *match = m;
    return TZ_OK;
}

enum tz_status tz_start_of_day(const struct tz_zone *zone, struct civil_date date, tally_time *out)
{
    struct tz_civil midnight = {date, 0, 0, 0, 0};
    return tz_from_local(zone, &midnight, TZ_FOLD_EARLIER, TZ_GAP_NEXT_VALID, out, NULL);
}

bool tz_next_transition(const struct tz_zone *zone, tally_time t, tally_time *out)
{
    if (zone == NULL || out == NULL || !time_in_range(t))
        return false;
    int64_t n;
    if (!next_transition_s(zone, floor_div(t, TIMESTAMP_USEC_PER_SEC), &n) ||
        n > TIMESTAMP_MAX / TIMESTAMP_USEC_PER_SEC)
        return false;
    *out = n * TIMESTAMP_USEC_PER_SEC;
    return true;
}

bool tz_local_date(const struct tz_zone *zone, tally_time t, struct civil_date *out)
{
    struct tz_local local;
    if (!zone) {
        int64_t days = t >= 0 ? t / TIMESTAMP_USEC_PER_DAY
                              : (t - TIMESTAMP_USEC_PER_DAY + 1) / TIMESTAMP_USEC_PER_DAY;
        *out = timestamp_civil_from_days(days);
        return true;
    }
    if (tz_to_local(zone, t, &local) != TZ_OK)
        return false;
    *out = local.civil.date;
    return true;
}
