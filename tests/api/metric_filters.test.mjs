// A billable metric's filters may lose a value or a key only when no charge filter names it.
// Before (found by a black-box audit), the update answered 200 and left the plan's charge
// filter billing a value its metric no longer declared, and every later edit of the plan, even
// of its description, was refused (422 filters: invalid_format). Lago takes the value out of
// the charge filters in the same update; Tally refuses the update and names the plan, so that
// no price changes behind the plan's back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
let metric;
const call = async (method, path, body) => {
  const r = await t.api(path, { method, body });
  return { status: r.status, body: await r.json() };
};
const ok = async (method, path, body) => {
  const r = await call(method, path, body);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
};
const putMetric = (filters) => call('PUT', '/api/v1/billable_metrics/gpu', { billable_metric: { filters } });
const usage = async (sub) =>
  (await ok('GET', `/api/v1/customers/c/current_usage?external_subscription_id=${sub}`)).customer_usage;

const charge = (filters) => ({
  billable_metric_id: metric, charge_model: 'standard', properties: { amount: '1' }, filters,
});
const us = { values: { region: ['us'] }, properties: { amount: '10' } };
const anyCloud = { values: { cloud: ['__ALL_FILTER_VALUES__'] }, properties: { amount: '5' } };

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-03-10T12:00:00Z']);
  metric = (await ok('POST', '/api/v1/billable_metrics', { billable_metric: {
    code: 'gpu', name: 'GPU seconds', aggregation_type: 'sum_agg', field_name: 's',
    filters: [{ key: 'region', values: ['us', 'eu'] }, { key: 'cloud', values: ['aws', 'gcp'] }],
  } })).billable_metric.lago_id;
  await ok('POST', '/api/v1/plans', { plan: { code: 'p', name: 'P', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [charge([us, anyCloud])] } });
  await ok('POST', '/api/v1/customers', { customer: { external_id: 'c', currency: 'USD' } });
  await ok('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c', plan_code: 'p', external_id: 's', subscription_at: '2026-03-01T00:00:00Z' } });
  await ok('POST', '/api/v1/events', { event: { transaction_id: 'e1', external_subscription_id: 's', code: 'gpu', properties: { s: 2, region: 'us' } } });
});
after(async () => { await t.cleanup(); });

test('a value or a key a plan\'s charge filter names cannot leave the metric; the refusal changes nothing', async () => {
  for (const [filters, named] of [
    [[{ key: 'region', values: ['eu'] }, { key: 'cloud', values: ['aws', 'gcp'] }], /plan p has a charge filter on region: "us"/],
    [[{ key: 'region', values: ['us', 'eu'] }], /plan p has a charge filter on cloud: "__ALL_FILTER_VALUES__"/],
  ]) {
    const r = await putMetric(filters);
    assert.equal(r.status, 422, JSON.stringify(r.body));
    assert.deepEqual(r.body.error_details, { filters: ['value_used_by_charge_filters'] });
    assert.match(r.body.message, named);
  }
  const m = (await ok('GET', '/api/v1/billable_metrics/gpu')).billable_metric;
  assert.deepEqual(m.filters.map((f) => [f.key, f.values]), [['region', ['us', 'eu']], ['cloud', ['aws', 'gcp']]]);
  assert.equal((await usage('s')).amount_cents, 2000); // 2 s in us at 10.00
  // a value no charge filter names (eu, gcp) goes; one added comes
  await ok('PUT', '/api/v1/billable_metrics/gpu', { billable_metric: { filters: [{ key: 'region', values: ['us', 'ap'] }, { key: 'cloud', values: ['aws'] }] } });
  await ok('PUT', '/api/v1/plans/p', { plan: { description: 'still editable' } });
});

test('once the plan lets the value go, the metric may too; the plan is still editable', async () => {
  await ok('PUT', '/api/v1/plans/p', { plan: { charges: [{ ...charge([anyCloud]), id: (await ok('GET', '/api/v1/plans/p')).plan.charges[0].lago_id }] } });
  await ok('PUT', '/api/v1/billable_metrics/gpu', { billable_metric: { filters: [{ key: 'region', values: ['ap'] }, { key: 'cloud', values: ['aws'] }] } });
  await ok('PUT', '/api/v1/plans/p', { plan: { description: 'after' } });
  assert.equal((await usage('s')).amount_cents, 200); // the us event now falls to the charge's own price
});

test('a subscription\'s plan overrides count too, until the subscription ends', async () => {
  const plan = (await ok('GET', '/api/v1/plans/p')).plan;
  const overridden = { ...charge([anyCloud, { values: { region: ['ap'] }, properties: { amount: '7' } }]), id: plan.charges[0].lago_id };
  delete overridden.billable_metric_id;
  await ok('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c', plan_code: 'p', external_id: 'o', subscription_at: '2026-03-01T00:00:00Z', plan_overrides: { charges: [overridden] } } });
  const r = await putMetric([{ key: 'region', values: ['eu'] }, { key: 'cloud', values: ['aws'] }]);
  assert.equal(r.status, 422, JSON.stringify(r.body));
  assert.deepEqual(r.body.error_details, { filters: ['value_used_by_charge_filters'] });
  assert.match(r.body.message, /subscription o's plan overrides have a charge filter on region: "ap"/);
  await ok('DELETE', '/api/v1/subscriptions/o');
  await ok('PUT', '/api/v1/billable_metrics/gpu', { billable_metric: { filters: [{ key: 'region', values: ['eu'] }, { key: 'cloud', values: ['aws'] }] } });
});

// Lago's filter values are string[] columns, and its controllers permit any scalar, so a value
// sent as a JSON integer is stored as its text ("1"). Tally refused it (422 filters:
// invalid_format; found by an audit). Integers are taken as their decimal text, in a metric's
// filters and in a charge filter's values; other numbers stay refused (Ruby would write a
// float's own text, 1.0e+20, which Tally does not reproduce).
test('filter values sent as JSON integers are kept as their text', async () => {
  const tier = (await ok('POST', '/api/v1/billable_metrics', { billable_metric: {
    code: 'tiered', name: 'Tiered', aggregation_type: 'sum_agg', field_name: 's',
    filters: [{ key: 'tier', values: [1, 2, '3', 1] }],
  } })).billable_metric;
  assert.deepEqual(tier.filters, [{ key: 'tier', values: ['1', '2', '3'] }]);
  await ok('POST', '/api/v1/plans', { plan: { code: 'tiers', name: 'T', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: tier.lago_id, charge_model: 'standard', properties: { amount: '1' }, filters: [{ values: { tier: [2] }, properties: { amount: '10' } }] }] } });
  const plan = (await ok('GET', '/api/v1/plans/tiers')).plan;
  assert.deepEqual(plan.charges[0].filters.map((f) => f.values), [{ tier: ['2'] }]);
  await ok('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c', plan_code: 'tiers', external_id: 's_tiers', subscription_at: '2026-03-01T00:00:00Z' } });
  for (const [id, value] of [['t1', 2], ['t2', '2'], ['t3', 1]])
    await ok('POST', '/api/v1/events', { event: { transaction_id: id, external_subscription_id: 's_tiers', code: 'tiered', properties: { s: 1, tier: value } } });
  assert.equal((await usage('s_tiers')).amount_cents, 2 * 1000 + 100);
  for (const values of [[1.5], [-0.5], [true], [null], [99999999999999999999]]) {
    const r = await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'bad_tier', name: 'B', aggregation_type: 'sum_agg', field_name: 's', filters: [{ key: 'tier', values }] } });
    assert.deepEqual(r.body.error_details, { filters: ['invalid_format'] }, JSON.stringify(values));
  }
});

// An audit found a metric filter value "" refused (422 filters: invalid_format): Lago's
// BillableMetricFilter checks only that values is present, and [""] is. An empty string is a
// value of its own (an event sending it; not one without the key, nor null), in the metric's
// filters and in a charge filter's values.
test('an empty string is a filter value: declared, named by a charge filter, matched', async () => {
  const m = (await ok('POST', '/api/v1/billable_metrics', { billable_metric: {
    code: 'tagged', name: 'Tagged', aggregation_type: 'sum_agg', field_name: 's', filters: [{ key: 'tag', values: ['', 'x'] }],
  } })).billable_metric;
  assert.deepEqual(m.filters, [{ key: 'tag', values: ['', 'x'] }]);
  const plan = (await ok('POST', '/api/v1/plans', { plan: { code: 'tagged', name: 'T', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: m.lago_id, charge_model: 'standard', properties: { amount: '1' }, filters: [{ values: { tag: [''] }, properties: { amount: '10' } }] }] } })).plan;
  assert.deepEqual(plan.charges[0].filters.map((f) => f.values), [{ tag: [''] }]);
  await ok('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c', plan_code: 'tagged', external_id: 's_tagged', subscription_at: '2026-03-01T00:00:00Z' } });
  for (const [id, props] of [['g1', { s: 1, tag: '' }], ['g2', { s: 1 }], ['g3', { s: 1, tag: null }], ['g4', { s: 1, tag: 'x' }]])
    await ok('POST', '/api/v1/events', { event: { transaction_id: id, external_subscription_id: 's_tagged', code: 'tagged', properties: props } });
  // "" at 10 USD; no tag, null and "x" at the default 1 USD
  assert.equal((await usage('s_tagged')).amount_cents, 1000 + 3 * 100);
});
