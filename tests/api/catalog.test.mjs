// The catalog over real HTTP: taxes, billable metrics, add-ons. Create, read, list, update
// (fields laid over the stored definition, code renames), delete, validation, references.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
before(async () => { t = await startWithOrg(['--test-clock', '2026-01-01T00:00:00Z']); });
after(async () => { await t.cleanup(); });

const call = async (method, path, body) => {
  const r = await t.api(path, { method, body });
  return { status: r.status, body: await r.json() };
};
const details = (r) => r.body.error_details;

test('taxes: create, get, list, update, rename, delete', async () => {
  let r = await call('POST', '/api/v1/taxes', { tax: { code: 'vat_fr', name: 'TVA', rate: '20.0', description: 'France' } });
  assert.equal(r.status, 200);
  const tax = r.body.tax;
  assert.match(tax.lago_id, /^[0-9a-f-]{36}$/);
  assert.deepEqual({ ...tax, lago_id: 'x' }, {
    lago_id: 'x', code: 'vat_fr', name: 'TVA', rate: 20, description: 'France', applied_to_organization: false,
    created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z',
    add_ons_count: 0, customers_count: 0, plans_count: 0, charges_count: 0, commitments_count: 0,
  });
  r = await call('GET', '/api/v1/taxes/vat_fr');
  assert.deepEqual(r.body.tax, tax);
  r = await call('PUT', '/api/v1/taxes/vat_fr', { tax: { rate: 5.5 } });
  assert.equal(r.status, 200);
  assert.equal(r.body.tax.rate, 5.5);
  assert.equal(r.body.tax.name, 'TVA');
  assert.equal(r.body.tax.lago_id, tax.lago_id);
  r = await call('PUT', '/api/v1/taxes/vat_fr', { tax: { code: 'vat_fr_reduced' } });
  assert.equal(r.body.tax.code, 'vat_fr_reduced');
  assert.equal((await call('GET', '/api/v1/taxes/vat_fr')).status, 404);
  await call('POST', '/api/v1/taxes', { tax: { code: 'vat_de', name: 'MwSt', rate: 19 } });
  r = await call('GET', '/api/v1/taxes?per_page=1');
  assert.deepEqual(r.body.taxes.map((x) => x.code), ['vat_de']);
  assert.equal(r.body.meta.total_count, 2);
  r = await call('GET', '/api/v1/taxes?page=5&per_page=1'); // past the last page, as Lago's
  assert.deepEqual([r.body.taxes, r.body.meta], [[], { current_page: 5, next_page: null, prev_page: 4, total_pages: 2, total_count: 2 }]);
  r = await call('DELETE', '/api/v1/taxes/vat_de');
  assert.equal(r.body.tax.code, 'vat_de');
  assert.deepEqual((await call('GET', '/api/v1/taxes/vat_de')).body, { status: 404, error: 'Not Found', code: 'tax_not_found' });
});

test('taxes: validation and exact rates', async () => {
  const cases = [
    [{ name: 'T', rate: 1 }, 'code', 'value_is_mandatory'],
    [{ code: 't', rate: 1 }, 'name', 'value_is_mandatory'],
    [{ code: 't', name: 'T' }, 'rate', 'value_is_mandatory'],
    [{ code: 't', name: 'T', rate: 'abc' }, 'rate', 'invalid_value'],
    [{ code: 't', name: 'T', rate: -1 }, 'rate', 'value_is_out_of_range'],
    [{ code: 't', name: 'T', rate: 1001 }, 'rate', 'value_is_out_of_range'],
    [{ code: 't', name: 'T', rate: true }, 'rate', 'invalid_type'],
    [{ code: 'vat_fr_reduced', name: 'T', rate: 1 }, 'code', 'value_already_exist'],
  ];
  for (const [tax, field, code] of cases) {
    const r = await call('POST', '/api/v1/taxes', { tax });
    assert.equal(r.status, 422, JSON.stringify(tax));
    assert.deepEqual(details(r), { [field]: [code] }, JSON.stringify(tax));
  }
  // An integer past int64 must not be saturated into a plausible rate.
  const raw = '{"tax":{"code":"big","name":"B","rate":12345678901234567890123}}';
  const big = await t.api('/api/v1/taxes', { method: 'POST', raw });
  assert.equal(big.status, 422);
  // A rate with many decimals is kept exactly, not through a double.
  const r = await t.api('/api/v1/taxes', { method: 'POST', raw: '{"tax":{"code":"exact","name":"E","rate":8.875000000000000000001}}' });
  assert.equal(r.status, 200);
  assert.match(await r.text(), /"rate":8\.875000000000000000001[,}]/);
  // renaming onto an existing code is refused
  const clash = await call('PUT', '/api/v1/taxes/exact', { tax: { code: 'vat_fr_reduced' } });
  assert.deepEqual(details(clash), { code: ['value_already_exist'] });
  assert.equal((await call('PUT', '/api/v1/taxes/nope', { tax: { rate: 1 } })).status, 404);
});

test('billable metrics: every aggregation type, filters, rounding', async () => {
  const metrics = [
    { code: 'calls', name: 'API calls', aggregation_type: 'count_agg', field_name: 'ignored' },
    { code: 'tokens', name: 'Tokens', aggregation_type: 'sum_agg', field_name: 'tokens', recurring: false, rounding_function: 'ceil', rounding_precision: 2 },
    { code: 'seats', name: 'Seats', aggregation_type: 'unique_count_agg', field_name: 'user_id' },
    { code: 'peak', name: 'Peak GPUs', aggregation_type: 'max_agg', field_name: 'gpus' },
    { code: 'last', name: 'Storage', aggregation_type: 'latest_agg', field_name: 'gb' },
    { code: 'gpu_s', name: 'GPU time', aggregation_type: 'weighted_sum_agg', field_name: 'gpus', recurring: false },
    { code: 'llm', name: 'LLM tokens', aggregation_type: 'sum_agg', field_name: 'tokens', filters: [{ key: 'model', values: ['gpt', 'claude'] }, { key: 'kind', values: ['input', 'output'] }] },
  ];
  for (const m of metrics) {
    const r = await call('POST', '/api/v1/billable_metrics', { billable_metric: m });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const bm = r.body.billable_metric;
    assert.equal(bm.code, m.code);
    assert.equal(bm.aggregation_type, m.aggregation_type);
    assert.equal(bm.recurring, m.recurring ?? false);
  }
  const calls = (await call('GET', '/api/v1/billable_metrics/calls')).body.billable_metric;
  assert.equal(calls.field_name, null);
  const tokens = (await call('GET', '/api/v1/billable_metrics/tokens')).body.billable_metric;
  assert.equal(tokens.rounding_function, 'ceil');
  assert.equal(tokens.rounding_precision, 2);
  assert.equal((await call('GET', '/api/v1/billable_metrics/gpu_s')).body.billable_metric.weighted_interval, 'seconds');
  const llm = (await call('GET', '/api/v1/billable_metrics/llm')).body.billable_metric;
  assert.deepEqual(llm.filters, [{ key: 'model', values: ['gpt', 'claude'] }, { key: 'kind', values: ['input', 'output'] }]);
  const list = (await call('GET', '/api/v1/billable_metrics')).body;
  assert.equal(list.meta.total_count, metrics.length);
  const upd = await call('PUT', '/api/v1/billable_metrics/tokens', { billable_metric: { name: 'Tokens (all)', rounding_function: null } });
  assert.equal(upd.body.billable_metric.name, 'Tokens (all)');
  assert.equal(upd.body.billable_metric.rounding_function, null);
  assert.equal(upd.body.billable_metric.field_name, 'tokens');
});

test('billable metrics: Lago validation rules', async () => {
  const cases = [
    [{ code: 'b', name: 'B', aggregation_type: 'sum_agg' }, 'field_name', 'value_is_mandatory'],
    [{ code: 'b', name: 'B', aggregation_type: 'median_agg', field_name: 'x' }, 'aggregation_type', 'value_is_invalid'],
    [{ code: 'b', name: 'B' }, 'aggregation_type', 'value_is_mandatory'],
    [{ code: 'b', name: 'B', aggregation_type: 'count_agg', recurring: true }, 'recurring', 'not_compatible_with_aggregation_type'],
    [{ code: 'b', name: 'B', aggregation_type: 'max_agg', field_name: 'x', recurring: true }, 'recurring', 'not_compatible_with_aggregation_type'],
    [{ code: 'b', name: 'B', aggregation_type: 'latest_agg', field_name: 'x', recurring: true }, 'recurring', 'not_compatible_with_aggregation_type'],
    [{ code: 'b', name: 'B', aggregation_type: 'sum_agg', field_name: 'x', rounding_function: 'banker' }, 'rounding_function', 'value_is_invalid'],
    [{ code: 'b', name: 'B', aggregation_type: 'sum_agg', field_name: 'x', filters: [{ key: 'k', values: [] }] }, 'filters', 'invalid_format'],
    [{ code: 'b', name: 'B', aggregation_type: 'sum_agg', field_name: 'x', expression: 'round(x)' }, 'expression', 'invalid_expression'],
    [{ code: 'calls', name: 'B', aggregation_type: 'count_agg' }, 'code', 'value_already_exist'],
  ];
  for (const [billable_metric, field, code] of cases) {
    const r = await call('POST', '/api/v1/billable_metrics', { billable_metric });
    assert.equal(r.status, 422, JSON.stringify(billable_metric));
    assert.deepEqual(details(r), { [field]: [code] }, JSON.stringify(billable_metric));
  }
  // Found by an input audit: the filters' limits were refused invalid_format with no word of
  // them; the refusal now says them
  const values = (n) => Array.from({ length: n }, (_, i) => `v${i}`);
  for (const [filters, code] of [[[{ key: 'k', values: values(513) }], 'invalid_format'], [[{ key: 'k'.repeat(256), values: ['a'] }], 'invalid_format'],
    [[{ key: 'k', values: ['v'.repeat(256)] }], 'invalid_format'], [Array.from({ length: 33 }, (_, i) => ({ key: `k${i}`, values: ['a'] })), 'too_many_items']]) {
    const r = await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'lim', name: 'L', aggregation_type: 'count_agg', filters } });
    assert.deepEqual([r.status, details(r)], [422, { filters: [code] }]);
    assert.match(r.body.message, /at most 32.*512 values.*255 bytes/);
  }
  for (const filters of [[{ key: 'k', values: [] }]]) {
    const r = await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'lim', name: 'L', aggregation_type: 'count_agg', filters } });
    assert.deepEqual([r.status, details(r)], [422, { filters: ['invalid_format'] }]);
    assert.match(r.body.message, /1 to 512 values/);
  }
  // An audit found three things Lago takes refused with 422. A key sent twice: the last one's
  // values win, as Lago's BillableMetricFilters::CreateOrUpdateBatchService finds the filter
  // by key and sets its values again (a later charge filter on the first one's value is refused).
  const dup = await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'dupkey', name: 'D', aggregation_type: 'count_agg', filters: [{ key: 'k', values: ['a'] }, { key: 'z', values: ['q'] }, { key: 'k', values: ['b', 'c'] }] } });
  assert.equal(dup.status, 200, JSON.stringify(dup.body));
  assert.deepEqual(dup.body.billable_metric.filters, [{ key: 'k', values: ['b', 'c'] }, { key: 'z', values: ['q'] }]);
  const upd = await call('PUT', '/api/v1/billable_metrics/dupkey', { billable_metric: { filters: [{ key: 'k', values: ['x'] }, { key: 'k', values: ['y'] }] } });
  assert.deepEqual([upd.status, upd.body.billable_metric?.filters], [200, [{ key: 'k', values: ['y'] }]]);
  // rounding_function "" (or blank) and weighted_interval "" are none: Rails' enum casts a blank
  // value to nil
  const blank = await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'blankround', name: 'B', aggregation_type: 'sum_agg', field_name: 'x', rounding_function: '', weighted_interval: ' ' } });
  assert.equal(blank.status, 200, JSON.stringify(blank.body));
  assert.deepEqual([blank.body.billable_metric.rounding_function, blank.body.billable_metric.weighted_interval], [null, null]);
  // a weighted sum sent a blank interval counts in seconds, as one sent none (Tally's default)
  const ws = await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'blankws', name: 'W', aggregation_type: 'weighted_sum_agg', field_name: 'x', weighted_interval: '' } });
  assert.deepEqual([ws.status, ws.body.billable_metric.weighted_interval], [200, 'seconds']);
  const round = await call('PUT', '/api/v1/billable_metrics/tokens', { billable_metric: { rounding_function: '' } });
  assert.deepEqual([round.status, round.body.billable_metric.rounding_function], [200, null]);
  // a value sent twice is kept once, as Lago's values.uniq
  const twice = await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'twice', name: 'T', aggregation_type: 'count_agg', filters: [{ key: 'k', values: ['x', 'y', 'x'] }] } });
  assert.deepEqual(twice.body.billable_metric.filters, [{ key: 'k', values: ['x', 'y'] }]);
  assert.equal((await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'lim', name: 'L', aggregation_type: 'count_agg', filters: [{ key: 'k', values: values(512) }] } })).status, 200);
  // the three types that may recur (tests/api/recurring.test.mjs carries them)
  for (const aggregation_type of ['sum_agg', 'unique_count_agg', 'weighted_sum_agg']) {
    const r = await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: `r_${aggregation_type}`, name: 'R', aggregation_type, field_name: 'x', recurring: true } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.billable_metric.recurring, true);
  }
});

test('add-ons: price in cents and currency, taxes named by code and answered in full', async () => {
  await call('POST', '/api/v1/taxes', { tax: { code: 'gst', name: 'GST', rate: '10' } });
  let r = await call('POST', '/api/v1/add_ons', { add_on: { code: 'setup', name: 'Setup fee', amount_cents: 50000, amount_currency: 'eur', tax_codes: ['gst', 'gst'] } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const a = r.body.add_on;
  assert.equal(a.amount_cents, 50000);
  assert.equal(a.amount_currency, 'EUR');
  assert.deepEqual(a.tax_codes, ['gst']);
  assert.equal(a.taxes.length, 1);
  assert.equal(a.taxes[0].code, 'gst');
  assert.equal(a.taxes[0].rate, 10);
  // a tax rate change shows in the add-on (taxes are looked up, not copied)
  await call('PUT', '/api/v1/taxes/gst', { tax: { rate: 15 } });
  assert.equal((await call('GET', '/api/v1/add_ons/setup')).body.add_on.taxes[0].rate, 15);
  r = await call('POST', '/api/v1/add_ons', { add_on: { code: 'x', name: 'X', amount_cents: 1, amount_currency: 'EUR', tax_codes: ['nope'] } });
  assert.deepEqual(r.body, { status: 404, error: 'Not Found', code: 'tax_not_found' });
  for (const [add_on, field, code] of [
    [{ code: 'x', name: 'X', amount_currency: 'EUR' }, 'amount_cents', 'value_is_mandatory'],
    [{ code: 'x', name: 'X', amount_cents: 1 }, 'amount_currency', 'value_is_mandatory'],
    [{ code: 'x', name: 'X', amount_cents: -1, amount_currency: 'EUR' }, 'amount_cents', 'value_is_out_of_range'],
    [{ code: 'x', name: 'X', amount_cents: 1, amount_currency: 'ZZZ' }, 'amount_currency', 'value_is_invalid'],
  ]) {
    const v = await call('POST', '/api/v1/add_ons', { add_on });
    assert.deepEqual(details(v), { [field]: [code] }, JSON.stringify(add_on));
  }
  assert.equal((await call('GET', '/api/v1/add_ons/x')).status, 404);
});

test('catalog writes honour Idempotency-Key, and concurrent updates never lose one', async () => {
  const key = { 'Idempotency-Key': 'tax-create-1' };
  const a = await t.api('/api/v1/taxes', { method: 'POST', headers: key, body: { tax: { code: 'idem', name: 'I', rate: 1 } } });
  const b = await t.api('/api/v1/taxes', { method: 'POST', headers: key, body: { tax: { code: 'idem', name: 'I', rate: 1 } } });
  assert.equal(a.status, 200);
  assert.equal(b.status, 200);
  assert.equal(await b.text(), await a.text());
  // 20 concurrent renames of the description: each either applies or is told to retry.
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) =>
    call('PUT', '/api/v1/taxes/idem', { tax: { description: `d${i}` } })));
  const applied = results.filter((r) => r.status === 200);
  assert.ok(applied.length >= 1);
  for (const r of results) assert.ok(r.status === 200 || (r.status === 409 && r.body.code === 'concurrent_update'), JSON.stringify(r.body));
  const final = (await call('GET', '/api/v1/taxes/idem')).body.tax.description;
  assert.ok(applied.some((r) => r.body.tax.description === final));
});

test('coupons: fixed and percentage, frequencies, expiry, limits', async () => {
  let r = await call('POST', '/api/v1/coupons', { coupon: { code: 'welcome', name: 'Welcome', coupon_type: 'fixed_amount', amount_cents: 1000, amount_currency: 'USD', frequency: 'recurring', frequency_duration: 3, expiration: 'time_limit', expiration_at: '2026-12-31T23:59:59Z' } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  let c = r.body.coupon;
  assert.equal(c.coupon_type, 'fixed_amount');
  assert.equal(c.amount_cents, 1000);
  assert.equal(c.amount_currency, 'USD');
  assert.equal(c.percentage_rate, null);
  assert.equal(c.frequency, 'recurring');
  assert.equal(c.frequency_duration, 3);
  assert.equal(c.expiration_at, '2026-12-31T23:59:59Z');
  assert.equal(c.reusable, true);
  assert.equal(c.limited_plans, false);
  r = await call('POST', '/api/v1/coupons', { coupon: { code: 'tenoff', name: '10%', coupon_type: 'percentage', frequency: 'once', expiration: 'no_expiration', percentage_rate: '10', billable_metric_codes: ['tokens'] } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  c = r.body.coupon;
  assert.equal(c.percentage_rate, '10.0');
  assert.equal(c.frequency, 'once');
  assert.equal(c.expiration, 'no_expiration');
  assert.equal(c.limited_billable_metrics, true);
  assert.deepEqual(c.billable_metric_codes, ['tokens']);
  // switch a coupon's type: the other type's fields must now be given
  r = await call('PUT', '/api/v1/coupons/tenoff', { coupon: { coupon_type: 'fixed_amount' } });
  assert.deepEqual(details(r), { amount_cents: ['value_is_mandatory'] });
  r = await call('PUT', '/api/v1/coupons/tenoff', { coupon: { coupon_type: 'fixed_amount', amount_cents: 500, amount_currency: 'EUR' } });
  assert.equal(r.body.coupon.percentage_rate, null);
  assert.equal(r.body.coupon.amount_cents, 500);
  for (const [coupon, field, code] of [
    [{ code: 'c', name: 'C', coupon_type: 'gift' }, 'coupon_type', 'value_is_invalid'],
    [{ code: 'c', name: 'C', coupon_type: 'percentage' }, 'percentage_rate', 'value_is_mandatory'],
    [{ code: 'c', name: 'C', coupon_type: 'percentage', percentage_rate: '120' }, 'percentage_rate', 'value_is_out_of_range'],
    [{ code: 'c', name: 'C', coupon_type: 'fixed_amount', amount_cents: 1, amount_currency: 'EUR', frequency: 'recurring' }, 'frequency_duration', 'value_is_mandatory'],
    [{ code: 'c', name: 'C', coupon_type: 'fixed_amount', frequency: 'once', amount_cents: 1, amount_currency: 'EUR', expiration: 'time_limit' }, 'expiration_at', 'value_is_mandatory'],
    [{ code: 'c', name: 'C', coupon_type: 'fixed_amount', frequency: 'once', amount_cents: 1, amount_currency: 'EUR', expiration: 'time_limit', expiration_at: 'soon' }, 'expiration_at', 'invalid_date'],
    // already expired at the organization's clock (2026-01-01): Lago refuses it too
    [{ code: 'c', name: 'C', coupon_type: 'fixed_amount', frequency: 'once', amount_cents: 1, amount_currency: 'EUR', expiration: 'time_limit', expiration_at: '2025-12-31T23:59:59Z' }, 'expiration_at', 'invalid_date'],
  ]) {
    const v = await call('POST', '/api/v1/coupons', { coupon });
    assert.deepEqual(details(v), { [field]: [code] }, JSON.stringify(coupon));
  }
  r = await call('POST', '/api/v1/coupons', { coupon: { code: 'c', name: 'C', coupon_type: 'percentage', frequency: 'once', expiration: 'no_expiration', percentage_rate: 5, billable_metric_codes: ['nope'] } });
  assert.deepEqual(r.body, { status: 404, error: 'Not Found', code: 'billable_metrics_not_found' });
  // an update obeys the same rule: a past expiry is refused and changes nothing (an audit found
  // it taken); an update that keeps the coupon's expiry is not refused for it
  r = await call('PUT', '/api/v1/coupons/welcome', { coupon: { expiration_at: '2025-12-31T23:59:59Z' } });
  assert.deepEqual(details(r), { expiration_at: ['invalid_date'] });
  assert.equal((await call('GET', '/api/v1/coupons/welcome')).body.coupon.expiration_at, '2026-12-31T23:59:59Z');
  r = await call('PUT', '/api/v1/coupons/welcome', { coupon: { name: 'Welcome back', expiration_at: '2026-12-31T23:59:59Z' } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.coupon.name, 'Welcome back');
});

// A coupon's limits are refused as Lago's Coupons::CreateService and UpdateService refuse them:
// a code that names nothing is 404 plans_not_found or billable_metrics_not_found (plans checked
// first), and both kinds at once 405 only_one_limitation_type_per_coupon_allowed, once every code
// exists; a null in a list is dropped and a code named twice is kept once (`.compact.uniq`).
// Found by an audit: 404 plan_not_found / billable_metric_not_found, 422 for both kinds, 422
// invalid_type for a null, and a repeated code kept twice.
test('coupons: limit errors and lists as Lago\'s', async () => {
  assert.equal((await call('POST', '/api/v1/plans', { plan: { code: 'lim_p', name: 'lim_p', interval: 'monthly', amount_cents: 0, amount_currency: 'USD' } })).status, 200);
  assert.equal((await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'lim_m', name: 'lim_m', aggregation_type: 'count_agg' } })).status, 200);
  const base = { name: 'L', coupon_type: 'percentage', percentage_rate: '10', frequency: 'once', expiration: 'no_expiration' };
  const make = (code, applies_to) => call('POST', '/api/v1/coupons', { coupon: { ...base, code, applies_to } });
  const notFound = (code) => ({ status: 404, error: 'Not Found', code });
  const both = { status: 405, error: 'Method Not Allowed', code: 'only_one_limitation_type_per_coupon_allowed' };
  let r = await make('lim_a', { plan_codes: ['lim_p'], billable_metric_codes: ['lim_m'] });
  assert.deepEqual([r.status, r.body], [405, both]);
  r = await make('lim_a', { plan_codes: ['nope'] });
  assert.deepEqual([r.status, r.body], [404, notFound('plans_not_found')]);
  r = await make('lim_a', { billable_metric_codes: ['nope'] });
  assert.deepEqual([r.status, r.body], [404, notFound('billable_metrics_not_found')]);
  // a missing code comes before both kinds, plans before metrics
  assert.deepEqual((await make('lim_a', { plan_codes: ['nope'], billable_metric_codes: ['lim_m'] })).body, notFound('plans_not_found'));
  assert.deepEqual((await make('lim_a', { plan_codes: ['lim_p'], billable_metric_codes: ['nope'] })).body, notFound('billable_metrics_not_found'));
  assert.deepEqual((await make('lim_a', { plan_codes: ['nope'], billable_metric_codes: ['nope'] })).body, notFound('plans_not_found'));
  assert.equal((await call('GET', '/api/v1/coupons/lim_a')).status, 404);
  // nulls dropped, repeats kept once
  r = await make('lim_d', { plan_codes: ['lim_p', 'lim_p', null] });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual([r.body.coupon.limited_plans, r.body.coupon.plan_codes], [true, ['lim_p']]);
  r = await make('lim_n', { billable_metric_codes: [null] });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual([r.body.coupon.limited_billable_metrics, r.body.coupon.billable_metric_codes], [false, []]);
  // an update answers the same
  const put = (coupon) => call('PUT', '/api/v1/coupons/lim_d', { coupon });
  assert.deepEqual((await put({ applies_to: { plan_codes: ['lim_p'], billable_metric_codes: ['lim_m'] } })).body, both);
  assert.deepEqual((await put({ applies_to: { plan_codes: ['nope'] } })).body, notFound('plans_not_found'));
  assert.deepEqual((await put({ applies_to: { billable_metric_codes: ['nope'] } })).body, notFound('billable_metrics_not_found'));
  r = await put({ applies_to: { billable_metric_codes: ['lim_m', null, 'lim_m'] } });
  assert.deepEqual([r.status, r.body.coupon?.billable_metric_codes, r.body.coupon?.limited_plans], [200, ['lim_m'], false], JSON.stringify(r.body));
});

// A coupon's inputs are checked as Lago's Coupon model and Coupons::ValidateService check them
// (found by an audit): `frequency` and `expiration` are required (the model's enums validate a
// missing one: value_is_invalid), `reusable: null` is refused, an `expiration_at` that is not a
// date is refused whatever the expiration, and one is compared with the clock by its UTC date;
// `percentage_rate` is kept to 5 decimals (Lago's decimal(10,5) column), half away from zero;
// `frequency_duration` is kept whatever the frequency, and an applied coupon takes it.
test('coupons: inputs checked and kept as Lago\'s', async () => {
  const base = { name: 'I', coupon_type: 'percentage', percentage_rate: '10', frequency: 'once', expiration: 'no_expiration' };
  const make = (code, extra) => call('POST', '/api/v1/coupons', { coupon: { ...base, code, ...extra } });
  assert.deepEqual(details(await make('in_a', { expiration: undefined })), { expiration: ['value_is_invalid'] });
  assert.deepEqual(details(await make('in_a', { expiration: null })), { expiration: ['value_is_invalid'] });
  assert.deepEqual(details(await make('in_a', { frequency: undefined })), { frequency: ['value_is_invalid'] });
  assert.deepEqual(details(await make('in_a', { reusable: null })), { reusable: ['value_is_invalid'] });
  assert.deepEqual(details(await make('in_a', { expiration_at: 'garbage' })), { expiration_at: ['invalid_date'] });
  assert.deepEqual(details(await make('in_a', { expiration_at: '2025-06-01T00:00:00Z' })), { expiration_at: ['invalid_date'] });
  assert.equal((await call('GET', '/api/v1/coupons/in_a')).status, 404);
  // the clock (2026-01-01) at noon: an expiry earlier that day is today's date, taken (and the
  // coupon is then terminated at it, as Lago's clock job terminates it); the day before is not
  await call('POST', '/api/v1/test_clock/advance', { test_clock: { to: '2026-01-01T12:00:00Z' } });
  let r = await make('in_today', { expiration: 'time_limit', expiration_at: '2026-01-01' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual([r.body.coupon.expiration_at, r.body.coupon.terminated_at], ['2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z']);
  assert.deepEqual(details(await make('in_a', { expiration: 'time_limit', expiration_at: '2025-12-31T23:59:59Z' })), { expiration_at: ['invalid_date'] });
  // percentage_rate: 5 decimals
  r = await make('in_rate', { percentage_rate: '12.123456789' });
  assert.equal(r.body.coupon.percentage_rate, '12.12346');
  r = await make('in_rate2', { percentage_rate: '0.000005' });
  assert.equal(r.body.coupon.percentage_rate, '0.00001');
  // kept as Lago's column keeps it, 0.0; refused on that, a coupon an earlier Tally stored with
  // such a rate could not be renamed (an audit)
  r = await make('in_a', { percentage_rate: '0.000004' });
  assert.equal(r.body.coupon.percentage_rate, '0.0');
  r = await call('PUT', '/api/v1/coupons/in_a', { coupon: { name: 'renamed' } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.coupon.percentage_rate, '0.0');
  // frequency_duration: kept on a coupon of any frequency, and taken by its applications
  r = await make('in_rec', { frequency: 'recurring', frequency_duration: 3 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  r = await make('in_dur', { frequency: 'forever', frequency_duration: 2 });
  assert.deepEqual([r.body.coupon.frequency, r.body.coupon.frequency_duration], ['forever', 2]);
  await call('POST', '/api/v1/customers', { customer: { external_id: 'in_cust' } });
  const apply = (applied_coupon) => call('POST', '/api/v1/applied_coupons', { applied_coupon: { external_customer_id: 'in_cust', ...applied_coupon } });
  r = await apply({ coupon_code: 'in_rec', frequency: 'forever' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const a = r.body.applied_coupon;
  assert.deepEqual([a.frequency, a.frequency_duration, a.frequency_duration_remaining], ['forever', 3, 3]);
  r = await apply({ coupon_code: 'in_rate', percentage_rate: '5.000004' });
  assert.equal(r.body.applied_coupon.percentage_rate, '5.0');
  r = await apply({ coupon_code: 'in_rate2', percentage_rate: '5.123456' });
  assert.equal(r.body.applied_coupon.percentage_rate, '5.12346');
  r = await apply({ coupon_code: 'in_dur' });
  assert.deepEqual([r.body.applied_coupon.frequency_duration, r.body.applied_coupon.frequency_duration_remaining], [2, 2]);
});

// Deleting a plan or a billable metric takes it out of the coupons limited to it, as Lago
// discards the coupon's targets with the plan or metric. A coupon whose every target is gone
// stays limited (limited_plans or limited_billable_metrics true, an empty list): it applies to
// nothing, as in Lago, rather than becoming a coupon for everything; naming its limits again
// (applies_to) lifts that. Before this (an audit found it), the dead code stayed in the coupon,
// every later PUT of the coupon was 404 plan_not_found, and a new plan made with the same code
// was targeted again.
test('coupons: a deleted plan or metric leaves the coupons limited to it', async () => {
  for (const code of ['cp', 'cp2'])
    assert.equal((await call('POST', '/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents: 100, amount_currency: 'USD' } })).status, 200);
  assert.equal((await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'cm', name: 'cm', aggregation_type: 'count_agg' } })).status, 200);
  const coupon = (code, applies_to) => call('POST', '/api/v1/coupons', { coupon: { code, name: code, coupon_type: 'percentage', frequency: 'once', expiration: 'no_expiration', percentage_rate: '10', applies_to } });
  assert.equal((await coupon('c_two', { plan_codes: ['cp', 'cp2'] })).status, 200);
  assert.equal((await coupon('c_one', { plan_codes: ['cp'] })).status, 200);
  assert.equal((await coupon('c_metric', { billable_metric_codes: ['cm'] })).status, 200);
  const limits = async (code) => {
    const c = (await call('GET', `/api/v1/coupons/${code}`)).body.coupon;
    return [c.limited_plans, c.plan_codes, c.limited_billable_metrics, c.billable_metric_codes];
  };
  assert.equal((await call('DELETE', '/api/v1/plans/cp')).status, 200);
  assert.equal((await call('DELETE', '/api/v1/billable_metrics/cm')).status, 200);
  assert.deepEqual(await limits('c_two'), [true, ['cp2'], false, []]);
  assert.deepEqual(await limits('c_one'), [true, [], false, []]);
  assert.deepEqual(await limits('c_metric'), [false, [], true, []]);
  // every coupon can be edited again, and one left with no target stays limited to none
  for (const code of ['c_two', 'c_one', 'c_metric']) {
    const r = await call('PUT', `/api/v1/coupons/${code}`, { coupon: { name: 'renamed' } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.coupon.name, 'renamed');
  }
  assert.deepEqual(await limits('c_one'), [true, [], false, []]);
  assert.deepEqual(await limits('c_metric'), [false, [], true, []]);
  // a new plan or metric with the same code is another one: the coupons do not name it
  assert.equal((await call('POST', '/api/v1/plans', { plan: { code: 'cp', name: 'cp', interval: 'monthly', amount_cents: 100, amount_currency: 'USD' } })).status, 200);
  assert.equal((await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'cm', name: 'cm', aggregation_type: 'count_agg' } })).status, 200);
  assert.deepEqual(await limits('c_two'), [true, ['cp2'], false, []]);
  assert.deepEqual(await limits('c_one'), [true, [], false, []]);
  assert.deepEqual(await limits('c_metric'), [false, [], true, []]);
  // answer fields sent back are not inputs: they neither limit a coupon nor lift a limit
  let r = await call('PUT', '/api/v1/coupons/c_one', { coupon: { limited_plans: false } });
  assert.deepEqual([r.body.coupon.limited_plans, r.body.coupon.plan_codes], [true, []]);
  r = await call('POST', '/api/v1/coupons', { coupon: { code: 'c_flag', name: 'f', coupon_type: 'percentage', frequency: 'once', expiration: 'no_expiration', percentage_rate: '10', limited_plans: true } });
  assert.deepEqual([r.body.coupon.limited_plans, r.body.coupon.plan_codes], [false, []]);
  // naming the limits again replaces them: none (every plan), or new targets
  r = await call('PUT', '/api/v1/coupons/c_one', { coupon: { applies_to: { plan_codes: [] } } });
  assert.deepEqual([r.body.coupon.limited_plans, r.body.coupon.plan_codes], [false, []]);
  r = await call('PUT', '/api/v1/coupons/c_metric', { coupon: { applies_to: { plan_codes: ['cp'] } } });
  assert.deepEqual([r.body.coupon.limited_plans, r.body.coupon.plan_codes, r.body.coupon.limited_billable_metrics], [true, ['cp'], false]);
});

// A renamed plan or metric (PUT with a new code) stays a coupon's target under its new code, as
// Lago links a coupon's targets by id; before, the coupon kept the old code, so it applied to
// nothing and then to whatever new item took that code.
test('coupons: a renamed plan or metric stays their target under its new code', async () => {
  assert.equal((await call('POST', '/api/v1/plans', { plan: { code: 'rp', name: 'rp', interval: 'monthly', amount_cents: 100, amount_currency: 'USD' } })).status, 200);
  assert.equal((await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'rm', name: 'rm', aggregation_type: 'count_agg' } })).status, 200);
  const coupon = (code, applies_to) => call('POST', '/api/v1/coupons', { coupon: { code, name: code, coupon_type: 'percentage', frequency: 'once', expiration: 'no_expiration', percentage_rate: '10', applies_to } });
  assert.equal((await coupon('c_rp', { plan_codes: ['rp'] })).status, 200);
  assert.equal((await coupon('c_rm', { billable_metric_codes: ['rm'] })).status, 200);
  assert.equal((await call('PUT', '/api/v1/plans/rp', { plan: { code: 'rp_new' } })).status, 200);
  assert.equal((await call('PUT', '/api/v1/billable_metrics/rm', { billable_metric: { code: 'rm_new' } })).status, 200);
  assert.deepEqual((await call('GET', '/api/v1/coupons/c_rp')).body.coupon.plan_codes, ['rp_new']);
  assert.deepEqual((await call('GET', '/api/v1/coupons/c_rm')).body.coupon.billable_metric_codes, ['rm_new']);
  // the old codes name nothing now: new items made with them are not the coupons' targets
  assert.equal((await call('POST', '/api/v1/plans', { plan: { code: 'rp', name: 'rp', interval: 'monthly', amount_cents: 100, amount_currency: 'USD' } })).status, 200);
  assert.deepEqual((await call('GET', '/api/v1/coupons/c_rp')).body.coupon.plan_codes, ['rp_new']);
});

// Found by a black-box audit: an applies_to that was not an object ("pro", ["pro"]) was passed
// over, and the coupon meant for one plan was created for every plan, with a 200.
test('coupons: an applies_to that is not an object is invalid_type, and nothing is created or changed', async () => {
  assert.equal((await call('POST', '/api/v1/plans', { plan: { code: 'ap', name: 'ap', interval: 'monthly', amount_cents: 100, amount_currency: 'USD' } })).status, 200);
  const coupon = (code, applies_to) => call('POST', '/api/v1/coupons', { coupon: { code, name: code, coupon_type: 'percentage', expiration: 'no_expiration', percentage_rate: '50', frequency: 'forever', applies_to } });
  for (const [i, applies_to] of ['ap', ['ap'], [{ plan_codes: ['ap'] }], 1, true].entries()) {
    const r = await coupon(`c_at${i}`, applies_to);
    assert.equal(r.status, 422, JSON.stringify(applies_to));
    assert.deepEqual(details(r), { applies_to: ['invalid_type'] }, JSON.stringify(applies_to));
    assert.equal((await call('GET', `/api/v1/coupons/c_at${i}`)).status, 404);
  }
  // null is no limit, as absent
  const open = await coupon('c_at_null', null);
  assert.equal(open.status, 200);
  assert.equal(open.body.coupon.limited_plans, false);
  // an update too, and the stored limits stay
  assert.equal((await coupon('c_at_ok', { plan_codes: ['ap'] })).status, 200);
  for (const applies_to of ['ap', ['ap']]) {
    const r = await call('PUT', '/api/v1/coupons/c_at_ok', { coupon: { applies_to } });
    assert.equal(r.status, 422, JSON.stringify(applies_to));
    assert.deepEqual(details(r), { applies_to: ['invalid_type'] });
  }
  const kept = (await call('GET', '/api/v1/coupons/c_at_ok')).body.coupon;
  assert.deepEqual([kept.limited_plans, kept.plan_codes], [true, ['ap']]);
});

// Lago validates weighted_interval only `if: :weighted_sum_agg?` (app/models/billable_metric.rb)
// and keeps what was stored or sent (its UpdateService sets it only when sent). Found by an
// audit: a weighted sum could not become a plain sum unless the client also sent
// weighted_interval: null, and a sum with weighted_interval "seconds" was refused.
test('billable metrics: weighted_interval is checked on a weighted sum only', async () => {
  let r = await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'wi', name: 'WI', aggregation_type: 'weighted_sum_agg', field_name: 'v' } });
  assert.equal(r.body.billable_metric.weighted_interval, 'seconds');
  r = await call('PUT', '/api/v1/billable_metrics/wi', { billable_metric: { aggregation_type: 'sum_agg' } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual([r.body.billable_metric.aggregation_type, r.body.billable_metric.weighted_interval], ['sum_agg', 'seconds']);
  r = await call('PUT', '/api/v1/billable_metrics/wi', { billable_metric: { weighted_interval: null } });
  assert.deepEqual([r.status, r.body.billable_metric.weighted_interval], [200, null]);
  // back to a weighted sum: seconds, the only interval, as Tally's default
  r = await call('PUT', '/api/v1/billable_metrics/wi', { billable_metric: { aggregation_type: 'weighted_sum_agg' } });
  assert.deepEqual([r.status, r.body.billable_metric.weighted_interval], [200, 'seconds']);
  r = await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'wi_sum', name: 'S', aggregation_type: 'sum_agg', field_name: 'v', weighted_interval: 'seconds' } });
  assert.deepEqual([r.status, r.body.billable_metric.weighted_interval], [200, 'seconds']);
  // an interval that is not Lago's one is refused whatever the aggregation, with a message
  for (const aggregation_type of ['weighted_sum_agg', 'sum_agg']) {
    r = await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'wi_bad', name: 'B', aggregation_type, field_name: 'v', weighted_interval: 'hours' } });
    assert.deepEqual([r.status, details(r)], [422, { weighted_interval: ['value_is_invalid'] }], aggregation_type);
    assert.match(r.body.message, /seconds/);
  }
});

// Lago's Coupon validates amount_cents greater_than: 0 (app/models/coupon.rb), answered
// value_is_out_of_range. Found by an audit: a fixed_amount coupon of 0 cents was made.
test('coupons: a fixed amount must be more than 0 cents', async () => {
  const fixed = { name: 'Zero', coupon_type: 'fixed_amount', expiration: 'no_expiration', amount_currency: 'EUR', frequency: 'once' };
  let r = await call('POST', '/api/v1/coupons', { coupon: { ...fixed, code: 'zero', amount_cents: 0 } });
  assert.deepEqual([r.status, details(r)], [422, { amount_cents: ['value_is_out_of_range'] }]);
  assert.equal((await call('GET', '/api/v1/coupons/zero')).status, 404);
  r = await call('POST', '/api/v1/coupons', { coupon: { ...fixed, code: 'one', amount_cents: 1 } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  r = await call('PUT', '/api/v1/coupons/one', { coupon: { amount_cents: 0 } });
  assert.deepEqual([r.status, details(r)], [422, { amount_cents: ['value_is_out_of_range'] }]);
  assert.equal((await call('GET', '/api/v1/coupons/one')).body.coupon.amount_cents, 1);
});

// Lago's TaxesQuery orders by name (DEFAULT_ORDER, app/queries/taxes_query.rb), then newest
// first; its database collation sorts letters in either case together. Found by an audit:
// Tally listed taxes newest first.
test('taxes: listed by name', async () => {
  const before = (await call('GET', '/api/v1/taxes?per_page=1000')).body.taxes.map((x) => x.code);
  for (const [code, name] of [['t_zeta', 'zz Zeta'], ['t_alpha', 'zz alpha'], ['t_mid', 'zz Mid'], ['t_mid2', 'zz Mid']])
    assert.equal((await call('POST', '/api/v1/taxes', { tax: { code, name, rate: '1' } })).status, 200);
  const all = (await call('GET', '/api/v1/taxes?per_page=1000')).body;
  assert.deepEqual(all.taxes.map((x) => x.code).filter((c) => !before.includes(c)), ['t_alpha', 't_mid2', 't_mid', 't_zeta']);
  const names = all.taxes.map((x) => x.name.toLowerCase());
  assert.deepEqual(names, [...names].sort());
  // pages follow the same order
  const paged = [];
  for (let page = 1; page <= 100 && paged.length < all.meta.total_count; page++)
    paged.push(...(await call('GET', `/api/v1/taxes?per_page=50&page=${page}`)).body.taxes.map((x) => x.code));
  assert.deepEqual(paged, all.taxes.map((x) => x.code));
});

// Lago reads a resource's root with Rails' params.require, which takes an empty object for a
// missing one: 400 "param is missing or the value is empty". Found by an audit: PUT /taxes/{code}
// {"tax":{}} answered 200.
test('an empty root object is a missing one', async () => {
  assert.equal((await call('POST', '/api/v1/taxes', { tax: { code: 'empty_root', name: 'E', rate: '1' } })).status, 200);
  for (const [method, path, root] of [['PUT', '/api/v1/taxes/empty_root', 'tax'], ['POST', '/api/v1/taxes', 'tax'],
    ['POST', '/api/v1/billable_metrics', 'billable_metric'], ['PUT', '/api/v1/billable_metrics/calls', 'billable_metric'],
    ['POST', '/api/v1/add_ons', 'add_on'], ['POST', '/api/v1/coupons', 'coupon'], ['POST', '/api/v1/plans', 'plan'],
    ['POST', '/api/v1/customers', 'customer'], ['POST', '/api/v1/subscriptions', 'subscription'], ['POST', '/api/v1/wallets', 'wallet']]) {
    const r = await call(method, path, { [root]: {} });
    assert.equal(r.status, 400, `${method} ${path}`);
    assert.equal(r.body.error, `BadRequest: param is missing or the value is empty: ${root}`);
  }
});
