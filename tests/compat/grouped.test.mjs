// Lago's JavaScript client creating a grouped charge (pricing_group_keys) and reading its
// grouped_usage from current usage.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from 'lago-javascript-client';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
let lago;
before(async () => {
  t = await startWithOrg(['--test-clock', '2026-04-01T00:00:00Z']);
  lago = Client(t.key, { baseUrl: `${t.url}/api/v1` });
  const { data } = await lago.billableMetrics.createBillableMetric({ billable_metric: { name: 'Tokens', code: 'tokens', aggregation_type: 'sum_agg', field_name: 'total' } });
  await lago.plans.createPlan({ plan: { name: 'P', code: 'p', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: data.billable_metric.lago_id, charge_model: 'package', properties: { amount: '1', package_size: 100, free_units: 0, pricing_group_keys: ['model'] } }] } });
  await lago.subscriptions.createSubscription({ subscription: { external_customer_id: 'acme', plan_code: 'p', external_id: 'acme_sub' } });
});
after(async () => { await t.cleanup(); });

test('findCustomerCurrentUsage reads grouped_usage', async () => {
  const events = [['a', 30], ['b', 30], ['a', 10]].map(([model, total], i) => ({ transaction_id: `g-${i}`, external_subscription_id: 'acme_sub', code: 'tokens', properties: { model, total } }));
  await lago.events.createBatchEvents({ events });
  const { data } = await lago.customers.findCustomerCurrentUsage('acme', { external_subscription_id: 'acme_sub' });
  const charge = data.customer_usage.charges_usage[0];
  assert.equal(charge.amount_cents, 200); // a package of 100 per model: 70 tokens together would be one
  assert.deepEqual(charge.grouped_usage.map((g) => [g.grouped_by, g.units, g.amount_cents, g.events_count]), [[{ model: 'a' }, '40.0', 100, 2], [{ model: 'b' }, '30.0', 100, 1]]);
});
