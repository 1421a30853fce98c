// A tax's usage counts over real HTTP (Lago's V1::TaxSerializer writes them): add_ons_count,
// customers_count, plans_count, charges_count and commitments_count, counted from what names
// the tax as it is when the answer is written, in one organization, deleted items left out.
// customers_count of a tax applied to the organization adds the customers with no tax of
// their own, as Lago's Tax#applicable_customers does for its billing entity's taxes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createOrg, startWithOrg } from '../lib/tallyd.mjs';

let t;
let metric;
let otherKey;
before(async () => {
  t = await startWithOrg(['--test-clock', '2026-03-01T00:00:00Z']);
  // a second organization naming a tax of the same code: none of it is counted in the first
  await t.restart({ between: (dir) => { otherKey = createOrg(dir, 'Other', ['--test-clock', '2026-03-01T00:00:00Z']); } });
  const other = (method, path, body) => t.api(path, { method, body, key: otherKey });
  await other('POST', '/api/v1/taxes', { tax: { code: 'vat', name: 'VAT', rate: 20 } });
  await other('POST', '/api/v1/customers', { customer: { external_id: 'oc', tax_codes: ['vat'] } });
  await other('POST', '/api/v1/add_ons', { add_on: { code: 'oa', name: 'OA', amount_cents: 1, amount_currency: 'EUR', tax_codes: ['vat'] } });
  await other('POST', '/api/v1/plans', { plan: { code: 'op', name: 'OP', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', tax_codes: ['vat'] } });
  metric = (await t.call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'm', name: 'M', aggregation_type: 'count_agg' } })).billable_metric;
});
after(async () => { await t.cleanup(); });

const call = (method, path, body) => t.call(method, path, body);
const COUNTS = ['add_ons_count', 'customers_count', 'plans_count', 'charges_count', 'commitments_count'];
const counts = (tax) => Object.fromEntries(COUNTS.map((k) => [k, tax[k]]));
const get = async (code) => counts((await call('GET', `/api/v1/taxes/${code}`)).tax);
const of = (add_ons, customers, plans, charges, commitments) => ({
  add_ons_count: add_ons, customers_count: customers, plans_count: plans, charges_count: charges, commitments_count: commitments,
});
const charge = (extra = {}) => ({ billable_metric_id: metric.lago_id, charge_model: 'standard', properties: { amount: '1' }, ...extra });
const plan = (code, extra) => call('POST', '/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents: 100, amount_currency: 'EUR', ...extra } });

test('every tax answer carries the counts, zero for a tax nothing names', async () => {
  const made = (await call('POST', '/api/v1/taxes', { tax: { code: 'vat', name: 'VAT', rate: 20 } })).tax;
  assert.deepEqual(counts(made), of(0, 0, 0, 0, 0));
  for (const k of COUNTS) assert.equal(typeof made[k], 'number', k);
  assert.deepEqual(await get('vat'), of(0, 0, 0, 0, 0));
  const listed = (await call('GET', '/api/v1/taxes')).taxes;
  assert.deepEqual(listed.map(counts), [of(0, 0, 0, 0, 0)]);
});

test('customers, add-ons, plans, charges and commitments naming the tax are counted', async () => {
  await call('POST', '/api/v1/taxes', { tax: { code: 'other', name: 'Other', rate: 5 } });
  await call('POST', '/api/v1/customers', { customer: { external_id: 'c1', tax_codes: ['vat'] } });
  await call('POST', '/api/v1/customers', { customer: { external_id: 'c2', tax_codes: ['vat', 'other'] } });
  await call('POST', '/api/v1/customers', { customer: { external_id: 'c3', tax_codes: ['other'] } });
  await call('POST', '/api/v1/customers', { customer: { external_id: 'c4' } });
  await call('POST', '/api/v1/add_ons', { add_on: { code: 'a1', name: 'A1', amount_cents: 100, amount_currency: 'EUR', tax_codes: ['vat'] } });
  await call('POST', '/api/v1/add_ons', { add_on: { code: 'a2', name: 'A2', amount_cents: 100, amount_currency: 'EUR', tax_codes: ['other'] } });
  // p1: the plan, one of its two charges and its commitment; p2: two charges only
  await plan('p1', { tax_codes: ['vat'], charges: [charge({ tax_codes: ['vat'] }), charge()], minimum_commitment: { amount_cents: 1000, tax_codes: ['vat', 'other'] } });
  await plan('p2', { charges: [charge({ tax_codes: ['vat'] }), charge({ tax_codes: ['other', 'vat'] })] });
  await plan('p3', { tax_codes: ['other'], charges: [charge()], minimum_commitment: { amount_cents: 1000 } });
  assert.deepEqual(await get('vat'), of(1, 2, 1, 3, 1));
  assert.deepEqual(await get('other'), of(1, 2, 1, 1, 1));
  // the list counts each tax (by name: Other, then VAT)
  assert.deepEqual((await call('GET', '/api/v1/taxes')).taxes.map((x) => [x.code, counts(x)]),
    [['other', of(1, 2, 1, 1, 1)], ['vat', of(1, 2, 1, 3, 1)]]);
  // an update answers the counts as they stand, and a renamed tax keeps what names it
  assert.deepEqual(counts((await call('PUT', '/api/v1/taxes/vat', { tax: { rate: 19 } })).tax), of(1, 2, 1, 3, 1));
  assert.deepEqual(counts((await call('PUT', '/api/v1/taxes/vat', { tax: { code: 'vat2' } })).tax), of(1, 2, 1, 3, 1));
  assert.deepEqual(await get('vat2'), of(1, 2, 1, 3, 1));
  assert.deepEqual(counts((await call('PUT', '/api/v1/taxes/vat2', { tax: { code: 'vat' } })).tax), of(1, 2, 1, 3, 1));
});

test('a subscription\'s own plan counts as Lago\'s child plan does', async () => {
  await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c4', plan_code: 'p1', external_id: 's1', plan_overrides: { amount_cents: 50 } } });
  // the plan, its charge and its commitment again
  assert.deepEqual(await get('vat'), of(1, 2, 2, 4, 2));
  // a subscription without overrides is on the plan itself
  await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c3', plan_code: 'p2', external_id: 's2' } });
  assert.deepEqual(await get('vat'), of(1, 2, 2, 4, 2));
});

test('a tax applied to the organization counts the customers without taxes of their own', async () => {
  const org = (await call('POST', '/api/v1/taxes', { tax: { code: 'org', name: 'Org', rate: 10, applied_to_organization: true } })).tax;
  assert.deepEqual(counts(org), of(0, 1, 0, 0, 0)); // c4
  await call('POST', '/api/v1/customers', { customer: { external_id: 'c5' } });
  assert.deepEqual(await get('org'), of(0, 2, 0, 0, 0));
  assert.deepEqual(counts((await call('PUT', '/api/v1/taxes/org', { tax: { applied_to_organization: false } })).tax), of(0, 0, 0, 0, 0));
  assert.deepEqual(counts((await call('PUT', '/api/v1/taxes/org', { tax: { applied_to_organization: true } })).tax), of(0, 2, 0, 0, 0));
  // named by a customer too: counted once
  await call('POST', '/api/v1/customers', { customer: { external_id: 'c5', tax_codes: ['org'] } });
  assert.deepEqual(await get('org'), of(0, 2, 0, 0, 0));
  await call('POST', '/api/v1/customers', { customer: { external_id: 'c5', tax_codes: [] } });
  assert.deepEqual(await get('org'), of(0, 2, 0, 0, 0));
  await call('POST', '/api/v1/customers', { customer: { external_id: 'c5', tax_codes: ['other'] } });
  assert.deepEqual(await get('org'), of(0, 1, 0, 0, 0));
  await call('DELETE', '/api/v1/customers/c5');
  // c2 and c3; a2; p3; a charge of p2; p1's commitment and its copy on s1
  assert.deepEqual(await get('other'), of(1, 2, 1, 1, 2));
});

test('taking the tax off an item takes it out of the counts', async () => {
  await call('POST', '/api/v1/customers', { customer: { external_id: 'c2', tax_codes: ['other'] } });
  assert.deepEqual(await get('vat'), of(1, 1, 2, 4, 2));
  await call('PUT', '/api/v1/add_ons/a1', { add_on: { tax_codes: [] } });
  assert.deepEqual(await get('vat'), of(0, 1, 2, 4, 2));
  // the plan's commitment and own taxes; its own copy on s1 keeps them (Lago's child plan is its own)
  await call('PUT', '/api/v1/plans/p1', { plan: { tax_codes: [], minimum_commitment: { amount_cents: 1000, tax_codes: ['other'] } } });
  assert.deepEqual(await get('vat'), of(0, 1, 1, 4, 1));
  const p2 = (await call('GET', '/api/v1/plans/p2')).plan;
  await call('PUT', '/api/v1/plans/p2', { plan: { charges: [{ id: p2.charges[0].lago_id, ...charge({ tax_codes: [] }) }, { id: p2.charges[1].lago_id, ...charge({ tax_codes: ['vat'] }) }] } });
  assert.deepEqual(await get('vat'), of(0, 1, 1, 3, 1));
  // a tax added back is counted again
  await call('PUT', '/api/v1/add_ons/a1', { add_on: { tax_codes: ['vat'] } });
  assert.deepEqual(await get('vat'), of(1, 1, 1, 3, 1));
});

test('deleted customers, add-ons and plans are not counted', async () => {
  await call('DELETE', '/api/v1/customers/c1');
  assert.deepEqual(await get('vat'), of(1, 0, 1, 3, 1));
  await call('DELETE', '/api/v1/add_ons/a1');
  assert.deepEqual(await get('vat'), of(0, 0, 1, 3, 1));
  // p1 goes with s1's own plan (Lago's DestroyJob discards the children too): its charge and commitment
  await call('DELETE', '/api/v1/plans/p1');
  assert.deepEqual(await get('vat'), of(0, 0, 0, 1, 0));
  await call('DELETE', '/api/v1/plans/p2');
  assert.deepEqual(await get('vat'), of(0, 0, 0, 0, 0));
  assert.deepEqual(await get('other'), of(1, 2, 1, 0, 0));
});

test('counts survive a restart, a deleted tax answers zeros, a replay answers the first counts', async () => {
  await call('POST', '/api/v1/customers', { customer: { external_id: 'c6', tax_codes: ['vat'] } });
  await t.restart();
  assert.deepEqual(await get('vat'), of(0, 1, 0, 0, 0));
  // Lago's destroy takes the links with the tax before its serializer counts them
  assert.deepEqual(counts((await call('DELETE', '/api/v1/taxes/other')).tax), of(0, 0, 0, 0, 0));
  const headers = { 'Idempotency-Key': 'k-tax' };
  const first = await (await t.api('/api/v1/taxes', { method: 'POST', body: { tax: { code: 'kt', name: 'KT', rate: 1, applied_to_organization: true } }, headers })).json();
  assert.deepEqual(counts(first.tax), of(0, 3, 0, 0, 0)); // c2, c3 (their tax deleted) and c4
  const again = await (await t.api('/api/v1/taxes', { method: 'POST', body: { tax: { code: 'kt', name: 'KT', rate: 1, applied_to_organization: true } }, headers })).json();
  assert.deepEqual(again, first);
});
