/*
 * core/timestamp: calendar arithmetic for UTC instants. The day-number conversions are
 * the well-known era-based algorithm (400-year eras of 146097 days), exact for every
 * proleptic Gregorian date and free of tables and loops.
 */
#include "core/timestamp.h"

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

int64_t timestamp_days_from_civil(struct civil_date d)
{
    int64_t y = d.year - (d.month <= 2);
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;                         /* [0, 399] */
    int64_t mp = (d.month + 9) % 12;                     /* March = 0 */
    int64_t doy = (153 * mp + 2) / 5 + d.day - 1;        /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

struct civil_date timestamp_civil_from_days(int64_t days)
{
    int64_t z = days + 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    struct civil_date d;
    d.day = (int32_t)(doy - (153 * mp + 2) / 5 + 1);
    d.month = (int32_t)(mp < 10 ? mp + 3 : mp - 9);
    d.year = (int32_t)(yoe + era * 400 + (d.month <= 2));
    return d;
}

bool timestamp_is_leap_year(int32_t year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int32_t timestamp_days_in_month(int32_t year, int32_t month)
{
    static const int8_t days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month == 2 && timestamp_is_leap_year(year))
        return 29;
    return days[month - 1];
}

int32_t timestamp_weekday_from_days(int64_t days)
{
    /* 1970-01-01 was a Thursday (3). */
    int64_t w = (days + 3) % 7;
    return (int32_t)(w < 0 ? w + 7 : w);
}

static bool read_digits(const char *s, size_t len, size_t *pos, int n, int32_t *out)
{
    int32_t v = 0;
    for (int i = 0; i < n; i++) {
        if (*pos >= len || s[*pos] < '0' || s[*pos] > '9')
            return false;
        v = v * 10 + (s[*pos] - '0');
        (*pos)++;
    }
    *out = v;
    return true;
}

static bool expect(const char *s, size_t len, size_t *pos, char c)
{
    if (*pos >= len || s[*pos] != c)
        return false;
    (*pos)++;
    return true;
}

bool timestamp_parse_iso8601(const char *s, size_t len, tally_time *out)
{
    size_t pos = 0;
    struct civil_date d;
    int32_t hh = 0, mm = 0, ss = 0, usec = 0, offset_min = 0;

    if (!read_digits(s, len, &pos, 4, &d.year) || !expect(s, len, &pos, '-') ||
        !read_digits(s, len, &pos, 2, &d.month) || !expect(s, len, &pos, '-') ||
        !read_digits(s, len, &pos, 2, &d.day))
        return false;
    if (d.year < 1 || d.month < 1 || d.month > 12 || d.day < 1 ||
        d.day > timestamp_days_in_month(d.year, d.month))
        return false;
    if (pos == len)
        goto done;
    if (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ')
        return false;
    pos++;
    if (!read_digits(s, len, &pos, 2, &hh) || !expect(s, len, &pos, ':') ||
        !read_digits(s, len, &pos, 2, &mm) || !expect(s, len, &pos, ':') ||
        !read_digits(s, len, &pos, 2, &ss))
        return false;
    if (hh > 23 || mm > 59 || ss > 59)
        return false;
    if (pos < len && s[pos] == '.') {
        pos++;
        int digits = 0;
        while (pos < len && s[pos] >= '0' && s[pos] <= '9') {
            if (digits == 6)
                return false; /* more precision than an instant holds: refuse, never truncate */
            usec = usec * 10 + (s[pos] - '0');
            digits++;
            pos++;
        }
        if (digits == 0)
            return false;
        for (; digits < 6; digits++)
            usec *= 10;
    }
    if (pos >= len)
        return false; /* a date-time needs its offset: local times are ambiguous */
    if (s[pos] == 'Z' || s[pos] == 'z') {
        pos++;
    } else if (s[pos] == '+' || s[pos] == '-') {
        int sign = s[pos] == '-' ? -1 : 1;
        int32_t oh, om;
        pos++;
        if (!read_digits(s, len, &pos, 2, &oh) || !expect(s, len, &pos, ':') ||
            !read_digits(s, len, &pos, 2, &om) || oh > 23 || om > 59)
            return false;
        offset_min = sign * (oh * 60 + om);
    } else {
        return false;
    }
    if (pos != len)
        return false;
done:;
    int64_t secs =
        timestamp_days_from_civil(d) * 86400 + hh * 3600 + mm * 60 + ss - (int64_t)offset_min * 60;
    tally_time t = secs * TIMESTAMP_USEC_PER_SEC + usec;
    if (t < TIMESTAMP_MIN || t > TIMESTAMP_MAX)
        return false;
    *out = t;
    return true;
}

/* `digits` of the second's fraction: 0, 3 or 6. */
static size_t format_with_fraction(tally_time t, int digits, char out[TIMESTAMP_TEXT_MAX])
{
    int64_t days = floor_div(t, TIMESTAMP_USEC_PER_DAY);
    int64_t in_day = t - days * TIMESTAMP_USEC_PER_DAY;
    struct civil_date d = timestamp_civil_from_days(days);
    int64_t secs = in_day / TIMESTAMP_USEC_PER_SEC;
    int32_t hh = (int32_t)(secs / 3600), mm = (int32_t)(secs / 60 % 60), ss = (int32_t)(secs % 60);
    char *p = out;
    /* Hand-rolled: snprintf with a year that cannot exceed 4 digits in range. */
    int32_t y = d.year;
    *p++ = (char)('0' + y / 1000 % 10);
    *p++ = (char)('0' + y / 100 % 10);
    *p++ = (char)('0' + y / 10 % 10);
    *p++ = (char)('0' + y % 10);
    *p++ = '-';
    *p++ = (char)('0' + d.month / 10);
    *p++ = (char)('0' + d.month % 10);
    *p++ = '-';
    *p++ = (char)('0' + d.day / 10);
    *p++ = (char)('0' + d.day % 10);
    *p++ = 'T';
    *p++ = (char)('0' + hh / 10);
    *p++ = (char)('0' + hh % 10);
    *p++ = ':';
    *p++ = (char)('0' + mm / 10);
    *p++ = (char)('0' + mm % 10);
    *p++ = ':';
    *p++ = (char)('0' + ss / 10);
    *p++ = (char)('0' + ss % 10);
    if (digits > 0) {
        int32_t fraction = (int32_t)(in_day % TIMESTAMP_USEC_PER_SEC), unit = 100000;
        *p++ = '.';
        for (int i = 0; i < digits; i++, unit /= 10)
            *p++ = (char)('0' + fraction / unit % 10);
    }
    *p++ = 'Z';
    *p = '\0';
    return (size_t)(p - out);
}

size_t timestamp_format(tally_time t, bool millis, char out[TIMESTAMP_TEXT_MAX])
{
    return format_with_fraction(t, millis ? 3 : 0, out);
}

size_t timestamp_format_micros(tally_time t, char out[TIMESTAMP_TEXT_MAX])
{
    return format_with_fraction(t, 6, out);
}

tally_time timestamp_floor_second(tally_time t)
{
    tally_time fraction = t % TIMESTAMP_USEC_PER_SEC;
    return fraction < 0 ? t - fraction - TIMESTAMP_USEC_PER_SEC : t - fraction;
}

/* ---- Ruby's DateTime.iso8601, as Lago reads its event list's timestamp_from/_to ---------- */

/*
 * The reading is Ruby's (date 3.2, ext/date): four anchored patterns tried in turn (extended
 * date-time, basic date-time, extended time, basic time), ASCII letters in any case; the first
 * that matches gives the fields, its callback's rules (a two-digit year is 1969..2068, a year
 * without its month keeps only the year); the fields missing are filled from today as Ruby's
 * rt_complete_frags fills them; then the date is checked in Ruby's calendar, Julian before
 * 1582-10-15 (so 1582-10-10 is no date and 1500-02-29 is one). Written out by hand: each
 * pattern's alternatives are tried in the order Ruby's regex engine tries them, so where two
 * readings match the same one is taken.
 */

#define RUBY_DATE_LIMIT 128               /* Ruby's `limit:`: a longer string is an ArgumentError */
#define RUBY_YEAR_FAR INT64_C(1000000)    /* years past this are far outside TIMESTAMP_MIN..MAX */
#define RUBY_REFORM_DAYS INT64_C(-141427) /* 1582-10-15 (Gregorian; JD 2299161) since 1970 */

struct span {
    size_t at, len; /* len 0: the group did not take part in the match */
};

/* The captures of one pattern, by role. */
struct ruby_match {
    struct span year, mon, mday, yday, cwyear, cweek, cwday, hour, min, sec, frac, zone;
    bool dash_year; /* "-" (ext) or "--" (bas) in the year's place: no year */
    bool dash_mon;  /* bas "-" in the month's place */
    bool civil;     /* the civil alternative matched (its callback's rules apply) */
};

static bool rb_digit(const char *s, size_t len, size_t p)
{
    return p < len && s[p] >= '0' && s[p] <= '9';
}

static size_t rb_digits(const char *s, size_t len, size_t p)
{
    size_t n = 0;
    while (rb_digit(s, len, p + n))
        n++;
    return n;
}

static bool rb_char(const char *s, size_t len, size_t p, char lower)
{
    return p < len && (s[p] == lower || (lower >= 'a' && lower <= 'z' && s[p] == lower - 32));
}

/* Ruby's \s: space, \t, \n, \v, \f, \r. */
static bool rb_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static bool rb_rest_blank(const char *s, size_t len, size_t p)
{
    while (p < len && rb_space(s[p]))
        p++;
    return p == len;
}

static struct span rb_span(size_t at, size_t len)
{
    return (struct span){at, len};
}

/* (?:[,.](\d+))? then the zone: `colon` 1 for (?::?\d{2})? (extended), 0 for (?:\d{2})?
 * (basic); the end must follow. Each piece starts with a character the next cannot, so the
 * first reading that fits is the only one. */
static bool rb_frac_zone_end(const char *s, size_t len, size_t p, bool frac_allowed, int colon,
                             struct ruby_match *m)
{
    if (frac_allowed && p < len && (s[p] == ',' || s[p] == '.') && rb_digit(s, len, p + 1)) {
        size_t n = rb_digits(s, len, p + 1);
        m->frac = rb_span(p + 1, n);
        p += 1 + n;
    }
    if (rb_char(s, len, p, 'z')) {
        m->zone = rb_span(p, 1);
        p++;
    } else if (p < len && (s[p] == '+' || s[p] == '-') && rb_digits(s, len, p + 1) >= 2) {
        size_t z = 3;
        if (colon && rb_char(s, len, p + 3, ':') && rb_digits(s, len, p + 4) >= 2)
            z = 6;
        else if (rb_digits(s, len, p + 3) >= 2)
            z = 5;
        m->zone = rb_span(p, z);
        p += z;
    }
    return rb_rest_blank(s, len, p);
}

/* The extended date-time's tail: (?:t(\d{2}):(\d{2})(?::(\d{2})(?:[,.](\d+))?)?(zone)?)?\s*\z */
static bool rb_ext_tail(const char *s, size_t len, size_t p, struct ruby_match *m)
{
    m->hour = m->min = m->sec = m->frac = m->zone = rb_span(0, 0);
    if (!rb_char(s, len, p, 't'))
        return rb_rest_blank(s, len, p);
    p++;
    if (rb_digits(s, len, p) < 2 || !rb_char(s, len, p + 2, ':') || rb_digits(s, len, p + 3) < 2)
        return false;
    m->hour = rb_span(p, 2);
    m->min = rb_span(p + 3, 2);
    p += 5;
    bool sec = rb_char(s, len, p, ':') && rb_digits(s, len, p + 1) >= 2;
    if (sec) {
        m->sec = rb_span(p + 1, 2);
        p += 3;
    }
    return rb_frac_zone_end(s, len, p, sec, 1, m);
}

/* The basic date-time's tail: (?:t?(\d{2})(\d{2})(?:(\d{2})(?:[,.](\d+))?)?(zone)?)?\s*\z */
static bool rb_bas_tail(const char *s, size_t len, size_t p, struct ruby_match *m)
{
    m->hour = m->min = m->sec = m->frac = m->zone = rb_span(0, 0);
    size_t q = p + (rb_char(s, len, p, 't') ? 1 : 0);
    if (rb_digits(s, len, q) >= 4) {
        m->hour = rb_span(q, 2);
        m->min = rb_span(q + 2, 2);
        q += 4;
        bool sec = rb_digits(s, len, q) >= 2;
        if (sec) {
            m->sec = rb_span(q, 2);
            q += 2;
        }
        if (rb_frac_zone_end(s, len, q, sec, 0, m))
            return true;
    }
    m->hour = m->min = m->sec = m->frac = m->zone = rb_span(0, 0);
    return rb_rest_blank(s, len, p);
}

/* A year: [-+]? then digits; its length with the sign is what Ruby's two-digit rule reads. */
static size_t rb_signed_digits(const char *s, size_t len, size_t p)
{
    size_t sign = p < len && (s[p] == '-' || s[p] == '+') ? 1 : 0;
    size_t n = rb_digits(s, len, p + sign);
    return n == 0 ? 0 : sign + n;
}

/* A year of two digits or more, signed or not ([-+]?\d{2,}), at p: its length (0: none). */
static size_t rb_year_digits(const char *s, size_t len, size_t p)
{
    size_t y = rb_signed_digits(s, len, p);
    size_t sign = y > 0 && !rb_digit(s, len, p) ? 1 : 0;
    return y < sign + 2 ? 0 : y;
}

static bool rb_match_ext(const char *s, size_t len, size_t p, struct ruby_match *m)
{
    /* ([-+]?\d{2,}|-)-(\d{2})?(?:-(\d{2}))? */
    for (int alt = 0; alt < 2; alt++) {
        *m = (struct ruby_match){.civil = true};
        size_t q;
        if (alt == 0) {
            size_t y = rb_year_digits(s, len, p);
            if (y == 0)
                continue;
            m->year = rb_span(p, y);
            q = p + y;
        } else {
            if (!rb_char(s, len, p, '-'))
                continue;
            m->dash_year = true;
            q = p + 1;
        }
        if (!rb_char(s, len, q, '-'))
            continue;
        q++;
        for (int with_mon = 1; with_mon >= 0; with_mon--) {
            if (with_mon && rb_digits(s, len, q) < 2)
                continue;
            size_t r = q + (with_mon ? 2 : 0);
            for (int with_mday = 1; with_mday >= 0; with_mday--) {
                if (with_mday && !(rb_char(s, len, r, '-') && rb_digits(s, len, r + 1) >= 2))
                    continue;
                m->mon = with_mon ? rb_span(q, 2) : rb_span(0, 0);
                m->mday = with_mday ? rb_span(r + 1, 2) : rb_span(0, 0);
                if (rb_ext_tail(s, len, r + (with_mday ? 3 : 0), m))
                    return true;
            }
        }
    }
    /* ([-+]?\d{2,})?-(\d{3}) */
    for (int with_year = 1; with_year >= 0; with_year--) {
        *m = (struct ruby_match){0};
        size_t q = p;
        if (with_year) {
            size_t y = rb_year_digits(s, len, p);
            if (y == 0)
                continue;
            m->year = rb_span(p, y);
            q = p + y;
        }
        if (!rb_char(s, len, q, '-') || rb_digits(s, len, q + 1) < 3)
            continue;
        m->yday = rb_span(q + 1, 3);
        if (rb_ext_tail(s, len, q + 4, m))
            return true;
    }
    /* (\d{4}|\d{2})?-w(\d{2})-(\d) */
    static const size_t year_lens[] = {4, 2, 0};
    for (size_t i = 0; i < 3; i++) {
        *m = (struct ruby_match){0};
        size_t y = year_lens[i];
        if (y > 0 && rb_digits(s, len, p) < y)
            continue;
        size_t q = p + y;
        if (!rb_char(s, len, q, '-') || !rb_char(s, len, q + 1, 'w') ||
            rb_digits(s, len, q + 2) < 2 || !rb_char(s, len, q + 4, '-') ||
            !rb_digit(s, len, q + 5))
            continue;
        m->cwyear = rb_span(p, y);
        m->cweek = rb_span(q + 2, 2);
        m->cwday = rb_span(q + 5, 1);
        if (rb_ext_tail(s, len, q + 6, m))
            return true;
    }
    /* -w-(\d) */
    *m = (struct ruby_match){0};
    if (rb_char(s, len, p, '-') && rb_char(s, len, p + 1, 'w') && rb_char(s, len, p + 2, '-') &&
        rb_digit(s, len, p + 3)) {
        m->cwday = rb_span(p + 3, 1);
        if (rb_ext_tail(s, len, p + 4, m))
            return true;
    }
    return false;
}

/* [-+]?(?:\d{4}|\d{2}): the year's length for choice `i` (4 then 2 digits), 0 if none. */
static size_t rb_bas_year(const char *s, size_t len, size_t p, int i)
{
    size_t sign = p < len && (s[p] == '-' || s[p] == '+') ? 1 : 0;
    size_t want = i == 0 ? 4 : 2;
    return rb_digits(s, len, p + sign) >= want ? sign + want : 0;
}

static bool rb_match_bas(const char *s, size_t len, size_t p, struct ruby_match *m)
{
    /* ([-+]?(?:\d{4}|\d{2})|--)(\d{2}|-)(\d{2}) */
    for (int i = 0; i < 3; i++) {
        size_t y;
        if (i < 2)
            y = rb_bas_year(s, len, p, i);
        else
            y = rb_char(s, len, p, '-') && rb_char(s, len, p + 1, '-') ? 2 : 0;
        if (y == 0)
            continue;
        for (int dash = 0; dash < 2; dash++) {
            *m = (struct ruby_match){.civil = true};
            size_t q = p + y;
            if (dash ? !rb_char(s, len, q, '-') : rb_digits(s, len, q) < 2)
                continue;
            size_t mon_len = dash ? 1 : 2;
            if (rb_digits(s, len, q + mon_len) < 2)
                continue;
            if (i < 2)
                m->year = rb_span(p, y);
            m->dash_year = i == 2;
            m->dash_mon = dash;
            if (!dash)
                m->mon = rb_span(q, 2);
            m->mday = rb_span(q + mon_len, 2);
            if (rb_bas_tail(s, len, q + mon_len + 2, m))
                return true;
        }
    }
    /* ([-+]?(?:\d{4}|\d{2}))(\d{3}) */
    for (int i = 0; i < 2; i++) {
        *m = (struct ruby_match){0};
        size_t y = rb_bas_year(s, len, p, i);
        if (y == 0 || rb_digits(s, len, p + y) < 3)
            continue;
        m->year = rb_span(p, y);
        m->yday = rb_span(p + y, 3);
        if (rb_bas_tail(s, len, p + y + 3, m))
            return true;
    }
    /* -(\d{3}) */
    *m = (struct ruby_match){0};
    if (rb_char(s, len, p, '-') && rb_digits(s, len, p + 1) >= 3) {
        m->yday = rb_span(p + 1, 3);
        if (rb_bas_tail(s, len, p + 4, m))
            return true;
    }
    /* (\d{4}|\d{2})w(\d{2})(\d) */
    for (int i = 0; i < 2; i++) {
        *m = (struct ruby_match){0};
        size_t y = i == 0 ? 4 : 2;
        if (rb_digits(s, len, p) < y || !rb_char(s, len, p + y, 'w') ||
            rb_digits(s, len, p + y + 1) < 3)
            continue;
        m->cwyear = rb_span(p, y);
        m->cweek = rb_span(p + y + 1, 2);
        m->cwday = rb_span(p + y + 3, 1);
        if (rb_bas_tail(s, len, p + y + 4, m))
            return true;
    }
    /* -w(\d{2})(\d) and -w-(\d) */
    *m = (struct ruby_match){0};
    if (rb_char(s, len, p, '-') && rb_char(s, len, p + 1, 'w')) {
        if (rb_digits(s, len, p + 2) >= 3) {
            m->cweek = rb_span(p + 2, 2);
            m->cwday = rb_span(p + 4, 1);
            if (rb_bas_tail(s, len, p + 5, m))
                return true;
        }
        *m = (struct ruby_match){0};
        if (rb_char(s, len, p + 2, '-') && rb_digit(s, len, p + 3)) {
            m->cwday = rb_span(p + 3, 1);
            if (rb_bas_tail(s, len, p + 4, m))
                return true;
        }
    }
    return false;
}

/* The time patterns: (\d{2}):?(\d{2})(?::?(\d{2})(?:[,.](\d+))?(zone)?)?\s*\z, the colons
 * for the extended one: a zone only after seconds. */
static bool rb_match_time(const char *s, size_t len, size_t p, bool ext, struct ruby_match *m)
{
    *m = (struct ruby_match){0};
    size_t c = ext ? 1 : 0;
    if (rb_digits(s, len, p) < 2 || (ext && !rb_char(s, len, p + 2, ':')) ||
        rb_digits(s, len, p + 2 + c) < 2)
        return false;
    m->hour = rb_span(p, 2);
    m->min = rb_span(p + 2 + c, 2);
    size_t q = p + 4 + c;
    if ((!ext || rb_char(s, len, q, ':')) && rb_digits(s, len, q + c) >= 2) {
        struct ruby_match with = *m;
        with.sec = rb_span(q + c, 2);
        if (rb_frac_zone_end(s, len, q + c + 2, true, ext ? 1 : 0, &with)) {
            *m = with;
            return true;
        }
    }
    return rb_rest_blank(s, len, q);
}

/* A capture's number (at most RUBY_DATE_LIMIT characters): exact up to RUBY_YEAR_FAR, else
 * a stand-in on the same side, beyond it, equal to it modulo 2800 (the period of both
 * calendars' years and weekdays), so that it is a date exactly when Ruby's year is. */
static int64_t rb_number(const char *s, struct span sp)
{
    size_t i = sp.at, end = sp.at + sp.len;
    bool negative = s[i] == '-';
    if (s[i] == '-' || s[i] == '+')
        i++;
    int64_t v = 0, mod = 0;
    bool far = false;
    for (; i < end; i++) {
        int d = s[i] - '0';
        mod = (mod * 10 + d) % 2800;
        if (!far && (v = v * 10 + d) > RUBY_YEAR_FAR)
            far = true;
    }
    if (!far)
        return negative ? -v : v;
    if (negative)
        mod = (2800 - mod) % 2800;
    return (negative ? -400 * 2800 : 400 * 2800) + mod;
}

/* Ruby's comp_year69 on a year captured with fewer than 4 characters (its sign counted). */
static int64_t rb_year(const char *s, struct span sp)
{
    int64_t y = rb_number(s, sp);
    if (sp.len < 4)
        y += y >= 69 ? 1900 : 2000;
    return y;
}

/* Ruby's calendar (Date::ITALY): Julian before the reform, Gregorian from it. */
static int64_t julian_days_from_civil(int64_t y, int64_t m, int64_t d)
{
    int64_t a = m <= 2 ? 1 : 0;
    int64_t yy = y + 4800 - a, mm = m + 12 * a - 3;
    int64_t jdn = d + (153 * mm + 2) / 5 + 365 * yy + floor_div(yy, 4) - 32083;
    return jdn - 2440588;
}

static struct civil_date julian_civil_from_days(int64_t days)
{
    int64_t c = days + 2440588 + 32082;
    int64_t dd = floor_div(4 * c + 3, 1461);
    int64_t e = c - floor_div(1461 * dd, 4);
    int64_t mm = (5 * e + 2) / 153;
    struct civil_date out;
    out.day = (int32_t)(e - (153 * mm + 2) / 5 + 1);
    out.month = (int32_t)(mm + 3 - 12 * (mm / 10));
    out.year = (int32_t)(dd - 4800 + mm / 10);
    return out;
}

static int64_t ruby_days_from_civil(int64_t y, int64_t m, int64_t d)
{
    int64_t g = timestamp_days_from_civil((struct civil_date){(int32_t)y, (int32_t)m, (int32_t)d});
    return g < RUBY_REFORM_DAYS ? julian_days_from_civil(y, m, d) : g;
}

static struct civil_date ruby_civil_from_days(int64_t days)
{
    return days < RUBY_REFORM_DAYS ? julian_civil_from_days(days) : timestamp_civil_from_days(days);
}

/* Ruby's valid_civil_p: the date whose reading gives it back. */
static bool ruby_civil(int64_t y, int64_t m, int64_t d, int64_t *days)
{
    if (m < 1 || m > 12)
        return false;
    *days = ruby_days_from_civil(y, m, d);
    struct civil_date back = ruby_civil_from_days(*days);
    return back.year == y && back.month == m && back.day == d;
}

static bool ruby_ordinal(int64_t y, int64_t yday, int64_t *days)
{
    *days = ruby_days_from_civil(y, 1, 1) + yday - 1;
    return yday >= 1 && ruby_civil_from_days(*days).year == y;
}

/* The Monday of ISO week 1 of year y (Ruby's c_commercial_to_jd with week 1, day 1). */
static int64_t ruby_week_one(int64_t y)
{
    int64_t jan4 = ruby_days_from_civil(y, 1, 4);
    return jan4 - timestamp_weekday_from_days(jan4);
}

static void ruby_commercial_of(int64_t days, int64_t *cwyear, int64_t *cweek)
{
    int64_t y = ruby_civil_from_days(days - 3).year;
    if (days >= ruby_week_one(y + 1))
        y++;
    *cwyear = y;
    *cweek = 1 + floor_div(days - ruby_week_one(y), 7);
}

static bool ruby_commercial(int64_t y, int64_t w, int64_t d, int64_t *days)
{
    *days = ruby_week_one(y) + 7 * (w - 1) + (d - 1);
    int64_t ry, rw;
    ruby_commercial_of(*days, &ry, &rw);
    return ry == y && rw == w && timestamp_weekday_from_days(*days) + 1 == d;
}

/* Ruby's date_zone_to_diff on what the patterns take: z, or a sign and hh, hhmm or hh:mm,
 * neither part checked. */
static int64_t ruby_offset(const char *s, struct span z)
{
    if (z.len == 1)
        return 0;
    const char *p = s + z.at;
    int64_t h = (p[1] - '0') * 10 + (p[2] - '0'), m = 0;
    if (z.len > 3) {
        const char *mm = p + z.len - 2;
        m = (mm[0] - '0') * 10 + (mm[1] - '0');
    }
    int64_t v = h * 3600 + m * 60;
    return p[0] == '-' ? -v : v;
}

static int64_t rb_small(const char *s, struct span sp)
{
    int64_t v = 0;
    for (size_t i = 0; i < sp.len; i++)
        v = v * 10 + (s[sp.at + i] - '0');
    return v;
}

/*
 * Both readers of Ruby's ISO 8601 parts (Date._iso8601). With `rails`, ActiveSupport's
 * TimeZone#iso8601 in UTC: a year with a month and day, or with a day of the year (a week date,
 * or a text without a year, raises there), in the proleptic Gregorian calendar of Time.new, the
 * zone's time (UTC) when no offset is given; second 60 carries into the next minute and 24:00:00
 * is the next midnight, as Time.new takes them; an offset of a day or more, an impossible date or
 * an instant outside [TIMESTAMP_MIN, TIMESTAMP_MAX] is refused.
 */
static bool parse_ruby(const char *s, size_t len, tally_time today, bool rails, tally_time *out);

bool timestamp_parse_ruby_iso8601(const char *s, size_t len, tally_time today, tally_time *out)
{
    return parse_ruby(s, len, today, false, out);
}

bool timestamp_parse_rails_iso8601(const char *s, size_t len, tally_time *out)
{
    tally_time t;
    if (!parse_ruby(s, len, 0, true, &t) || t < TIMESTAMP_MIN || t > TIMESTAMP_MAX)
        return false;
    *out = t;
    return true;
}

/* TimeZone#iso8601's date and time (parse_ruby with `rails`), in UTC seconds. */
static bool rails_seconds(int64_t year, int64_t mon, int64_t mday, int64_t yday, bool ordinal,
                          int64_t hour, int64_t min, int64_t sec, int64_t offset, int64_t *utc)
{
    if (year < 1 || year > 9999)
        return false;
    struct civil_date d = {(int32_t)year, 1, 1};
    int64_t days = timestamp_days_from_civil(d);
    if (ordinal) {
        if (yday < 1 || yday > (timestamp_is_leap_year(d.year) ? 366 : 365))
            return false;
        days += yday - 1;
    } else {
        if (mon < 1 || mon > 12 || mday < 1 || mday > timestamp_days_in_month(d.year, (int32_t)mon))
            return false;
        d.month = (int32_t)mon;
        d.day = (int32_t)mday;
        days = timestamp_days_from_civil(d);
    }
    if (hour > 24 || min > 59 || sec > 60 || (hour == 24 && (min > 0 || sec > 0)) ||
        offset <= -86400 || offset >= 86400)
        return false;
    *utc = days * 86400 + hour * 3600 + min * 60 + sec - offset;
    return true;
}

static bool parse_ruby(const char *s, size_t len, tally_time today, bool rails, tally_time *out)
{
    if (len > RUBY_DATE_LIMIT)
        return false;
    size_t p = 0;
    while (p < len && rb_space(s[p]))
        p++;
    struct ruby_match m;
    if (!rb_match_ext(s, len, p, &m) && !rb_match_bas(s, len, p, &m) &&
        !rb_match_time(s, len, p, true, &m) && !rb_match_time(s, len, p, false, &m))
        return false;

    /* The callbacks' fields. A civil match without a month (a year then "-" alone) keeps
     * what was set before that check, the day and the year, and no time. */
    bool has_year = m.year.len > 0, has_mon = m.mon.len > 0, has_mday = m.mday.len > 0;
    bool has_yday = m.yday.len > 0, has_cwyear = m.cwyear.len > 0, has_cweek = m.cweek.len > 0;
    bool has_cwday = m.cwday.len > 0, has_hour = m.hour.len > 0, has_sec = m.sec.len > 0;
    bool cut = m.civil && !has_mon && !m.dash_year;
    if (cut)
        has_hour = has_sec = false;
    int64_t year = has_year ? rb_year(s, m.year) : 0,
            cwyear = has_cwyear ? rb_year(s, m.cwyear) : 0;
    int64_t mon = has_mon ? rb_small(s, m.mon) : 0, mday = has_mday ? rb_small(s, m.mday) : 0;
    int64_t yday = has_yday ? rb_small(s, m.yday) : 0, cweek = has_cweek ? rb_small(s, m.cweek) : 0;
    int64_t cwday = has_cwday ? rb_small(s, m.cwday) : 0;
    int64_t hour = has_hour ? rb_small(s, m.hour) : 0, min = has_hour ? rb_small(s, m.min) : 0;
    int64_t sec = has_sec ? rb_small(s, m.sec) : 0;
    int64_t offset = !cut && m.zone.len > 0 ? ruby_offset(s, m.zone) : 0;
    int64_t usec = 0;
    if (!cut)
        for (size_t i = 0; i < 6; i++)
            usec = usec * 10 + (i < m.frac.len ? s[m.frac.at + i] - '0' : 0);
    if (rails) {
        int64_t utc;
        if (cut || !has_year || !(has_yday || (has_mon && has_mday)) ||
            !rails_seconds(year, mon, mday, yday, has_yday, hour, min, sec,
                           m.zone.len > 0 ? offset : 0, &utc))
            return false;
        *out = utc * TIMESTAMP_USEC_PER_SEC + usec;
        return true;
    }

    /* rt_complete_frags: the kind with the most fields given (the first on a tie, in Ruby's
     * order: time, ordinal, civil, commercial), its leading fields missing taken from today
     * (UTC), the rest from its start. */
    int64_t tday = floor_div(today, TIMESTAMP_USEC_PER_DAY);
    struct civil_date tc = timestamp_civil_from_days(tday);
    int64_t time_n = has_hour * 2 + has_sec;
    int64_t ordinal_n = has_year + has_yday + time_n;
    int64_t civil_n = has_year + has_mon + has_mday + time_n;
    int64_t commercial_n = has_cwyear + has_cweek + has_cwday + time_n;
    int64_t best = time_n;
    int kind = 0; /* 0 time, 1 ordinal, 2 civil, 3 commercial */
    if (ordinal_n > best)
        best = ordinal_n, kind = 1;
    if (civil_n > best)
        best = civil_n, kind = 2;
    if (commercial_n > best)
        best = commercial_n, kind = 3;
    if (best == 0)
        return false;
    int64_t days;
    switch (kind) {
    case 0: days = tday; break;
    case 1:
        if (!has_year)
            year = tc.year;
        if (!has_yday)
            yday = 1;
        if (!ruby_ordinal(year, yday, &days))
            return false;
        break;
    case 2:
        if (!has_year) {
            year = tc.year;
            if (!has_mon) {
                mon = tc.month;
                if (!has_mday)
                    mday = tc.day;
            }
        }
        if (!ruby_civil(year, has_mon || !has_year ? mon : 1, has_mday || !has_mon ? mday : 1,
                        &days))
            return false;
        break;
    default: {
        int64_t ty, tw;
        ruby_commercial_of(tday, &ty, &tw);
        if (!has_cwyear) {
            cwyear = ty;
            if (!has_cweek)
                cweek = tw;
        }
        if (!ruby_commercial(cwyear, has_cweek || !has_cwyear ? cweek : 1, has_cwday ? cwday : 1,
                             &days))
            return false;
    }
    }

    /* c_valid_time_p, after seconds are made 59: 60 alone with a whole date given (Ruby's
     * fast path), anything past 59 where the date was completed; 24:00:00 is the next day's
     * midnight. An offset past a day is ignored, as Ruby ignores it. */
    bool whole_civil = has_year && has_mon && has_mday;
    if (whole_civil ? sec == 60 : sec > 59)
        sec = 59;
    if (hour > 24 || min > 59 || sec > 59 || (hour == 24 && (min > 0 || sec > 0)))
        return false;
    if (offset < -86400 || offset > 86400)
        offset = 0;
    int64_t utc = days * 86400 + hour * 3600 + min * 60 + sec - offset;
    int64_t utc_days = floor_div(utc, 86400);

    /* Lago's query hands the DateTime to its database as the date and time it reads in UTC,
     * which the database takes in the proleptic Gregorian calendar. */
    struct civil_date shown = ruby_civil_from_days(utc_days);
    if (shown.year < 1) {
        *out = TIMESTAMP_MIN - 1;
        return true;
    }
    if (shown.year > 9999) {
        *out = TIMESTAMP_MAX + 1;
        return true;
    }
    int64_t secs = timestamp_days_from_civil(shown) * 86400 + (utc - utc_days * 86400);
    *out = secs * TIMESTAMP_USEC_PER_SEC + usec;
    return true;
}
