/*
 * api/test_clock: an organization's clock. Organizations created with --test-clock live on a
 * clock that moves only through POST /api/v1/test_clock/advance, never backwards; every
 * command is applied at that clock, so tests run months of billing in milliseconds. Its `now`
 * shows the clock to the microsecond, as kept, so it can be sent back as `to`.
 * Tally's own resource (Lago has none).
 */
#ifndef TALLY_API_TEST_CLOCK_H
#define TALLY_API_TEST_CLOCK_H

#include "api/request.h"

void test_clock_get(struct request *req);
void test_clock_advance(struct request *req);

#endif
