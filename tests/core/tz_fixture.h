/*
 * What the time zone and period tests share: the system's tz database opened once for the
 * group (setup/teardown), a zone by name, and an instant from ISO 8601 text. Included after
 * cmocka.h by each test file that needs it (static: each test binary has its own copy).
 */
#ifndef TALLY_TESTS_TZ_FIXTURE_H
#define TALLY_TESTS_TZ_FIXTURE_H

#include <string.h>

#include "core/timestamp.h"
#include "core/tz.h"
#include "sys/tzdb.h"

static struct tzdb *db;

static int setup(void **state)
{
    (void)state;
    db = tzdb_open(NULL);
    return db == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    tzdb_close(db);
    return 0;
}

static const struct tz_zone *zone(const char *name)
{
    const struct tz_zone *z = tzdb_get(db, name, strlen(name));
    if (z == NULL)
        fail_msg("zone %s did not load", name);
    return z;
}

static tally_time iso(const char *text)
{
    tally_time t;
    if (!timestamp_parse_iso8601(text, strlen(text), &t))
        fail_msg("bad timestamp in test: %s", text);
    return t;
}

#endif
