// Lago's query arguments to current usage: apply_taxes=false leaves taxes out, and
// billable_metric_code or charge_id (filter_by_charge_id, deprecated) keeps one metric's or
// one charge's usage, the totals those of what is shown, their taxes rounded once over it.
// Before (found by a compatibility audit with Lago's client), every one was ignored and the
// whole usage answered. What Tally does not serve (charge codes, groups on demand, usage since
// the subscription started) is a 422 rather than an answer that ignores the filter.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
const charges = {};
const ok = async (path, body) => {
  const r = await t.api(path, body ? { method: 'POST', body } : {});
  const b = await r.json();
  assert.equal(r.status, 200, `${path}: ${JSON.stringify(b)}`);
  return b;
};

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-03-10T12:00:00Z']);
  const metric = {};
  for (const code of ['calls', 'tokens'])
    metric[code] = (await ok('/api/v1/billable_metrics', { billable_metric: { code, name: code, aggregation_type: 'sum_agg', field_name: 'n' } })).billable_metric.lago_id;
  await ok('/api/v1/taxes', { tax: { code: 'vat', name: 'VAT', rate: '20' } });
  const plan = (await ok('/api/v1/plans', { plan: { code: 'p', name: 'P', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', tax_codes: ['vat'], charges: [
    { billable_metric_id: metric.calls, charge_model: 'standard', properties: { amount: '0.015' } },
    { billable_metric_id: metric.tokens, charge_model: 'standard', properties: { amount: '0.015' } },
    { billable_metric_id: metric.tokens, charge_model: 'standard', properties: { amount: '1' } },
  ] } })).plan;
  plan.charges.forEach((c, i) => { charges[i] = c.lago_id; });
  await ok('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD' } });
  await ok('/api/v1/subscriptions', { subscription: { external_customer_id: 'c', plan_code: 'p', external_id: 's', subscription_at: '2026-03-01T00:00:00Z' } });
  await ok('/api/v1/events/batch', { events: [
    { transaction_id: 'a', external_subscription_id: 's', code: 'calls', properties: { n: 1 } },
    { transaction_id: 'b', external_subscription_id: 's', code: 'tokens', properties: { n: 1 } },
  ] });
});
after(async () => { await t.cleanup(); });

const usage = async (query = '') => (await ok(`/api/v1/customers/c/current_usage?external_subscription_id=s${query}`)).customer_usage;
const totals = (u) => [u.charges_usage.map((c) => c.charge.lago_id), u.amount_cents, u.taxes_amount_cents, u.total_amount_cents];

test('apply_taxes=false leaves taxes out; a metric or a charge keeps its own usage and totals', async () => {
  // 1.5 + 1.5 + 100 cents: 103 with the fees rounded each (2 + 2 + 100 = 104), taxes 20.6 + ...
  const all = await usage();
  const amounts = all.charges_usage.map((c) => c.amount_cents);
  assert.deepEqual(amounts, [2, 2, 100]);
  assert.deepEqual(totals(all), [[charges[0], charges[1], charges[2]], 104, 21, 125]);
  assert.deepEqual(totals(await usage('&apply_taxes=true')), totals(all));
  assert.deepEqual(totals(await usage('&apply_taxes=false')), [[charges[0], charges[1], charges[2]], 104, 0, 104]);
  // one metric (two charges): taxes rounded once over what is shown, 20% of 102 = 20.4
  assert.deepEqual(totals(await usage('&billable_metric_code=tokens')), [[charges[1], charges[2]], 102, 20, 122]);
  // one charge: 20% of 2 = 0.4, rounded to 0
  assert.deepEqual(totals(await usage(`&charge_id=${charges[0]}`)), [[charges[0]], 2, 0, 2]);
  assert.deepEqual(totals(await usage(`&filter_by_charge_id=${charges[2]}&apply_taxes=0`)), [[charges[2]], 100, 0, 100]);
  // a metric or a charge the subscription's plan does not have is a 404, as Lago's (it was an
  // empty 200, found by an audit): a typo is not read as "no usage"
  for (const [query, code] of [['billable_metric_code=nothing', 'billable_metric_not_found'],
    ['charge_id=00000000-0000-0000-0000-000000000000', 'charge_not_found'],
    [`billable_metric_code=calls&charge_id=${charges[2]}`, 'charge_not_found']]) {
    const r = await t.api(`/api/v1/customers/c/current_usage?external_subscription_id=s&${query}`);
    const b = await r.json();
    assert.deepEqual([r.status, b.code], [404, code], query);
  }
  // the whole answer again, unchanged
  assert.deepEqual(await usage(), all);
});

test('what Tally does not serve is refused, not ignored', async () => {
  for (const [query, field] of [['charge_code=x', 'charge_code'], ['filter_by_charge_code=x', 'filter_by_charge_code'],
    ['group[cloud]=aws', 'group'], ['filter_by_group[cloud]=aws', 'filter_by_group'], ['full_usage=true', 'full_usage'],
    ['filter_by_presentation=x', 'filter_by_presentation']]) {
    const r = await t.api(`/api/v1/customers/c/current_usage?external_subscription_id=s&${query}`);
    const b = await r.json();
    assert.equal(r.status, 422, query);
    assert.deepEqual(b.error_details, { [field]: ['not_supported'] }, query);
  }
  const r = await t.api('/api/v1/customers/c/current_usage?external_subscription_id=s&full_usage=false');
  assert.equal(r.status, 200);
});
