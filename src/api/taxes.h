/*
 * api/taxes: /api/v1/taxes in Lago's shapes (name, code, rate in percent, description,
 * applied_to_organization, and the counts of what names the tax, read from the store when
 * answering: catalog_resource.count). The routes are the catalog's (api/catalog.h).
 */
#ifndef TALLY_API_TAXES_H
#define TALLY_API_TAXES_H

#include "api/catalog.h"

#define TAX_RATE_MAX 1000 /* percent; excise taxes can exceed 100 */

extern const struct catalog_resource taxes_resource;

#endif
