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
