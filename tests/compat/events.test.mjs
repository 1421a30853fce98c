// Lago's JavaScript client sending events to tallyd and reading them back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from 'lago-javascript-client';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
let lago;
before(async () => {
  t = await startWithOrg(['--test-clock', '2026-04-01T00:00:00Z']);
  lago = Client(t.key, { baseUrl: `${t.url}/api/v1` });
  await lago.billableMetrics.createBillableMetric({ billable_metric: { name: 'Tokens', code: 'tokens', aggregation_type: 'sum_agg', field_name: 'total' } });
  await lago.plans.createPlan({ plan: { name: 'P', code: 'p', interval: 'monthly', amount_cents: 0, amount_currency: 'USD' } });
  await lago.subscriptions.createSubscription({ subscription: { external_customer_id: 'acme', plan_code: 'p', external_id: 'acme_sub' } });
});
after(async () => { await t.cleanup(); });

test('createEvent, and a duplicate reaches the client as a 422', async () => {
  const { data } = await lago.events.createEvent({ event: { transaction_id: 'tx-1', external_subscription_id: 'acme_sub', code: 'tokens', timestamp: 1775001600, properties: { total: 1200 } } });
  assert.equal(data.event.transaction_id, 'tx-1');
  assert.equal(data.event.timestamp, '2026-04-01T00:00:00.000Z');
  await assert.rejects(lago.events.createEvent({ event: { transaction_id: 'tx-1', external_subscription_id: 'acme_sub', code: 'tokens', properties: { total: 1 } } }), (res) => {
    assert.equal(res.status, 422);
    assert.deepEqual(res.error.error_details, { transaction_id: ['value_already_exist'] });
    return true;
  });
});

test('findAllEvents and findEvent', async () => {
  const all = await lago.events.findAllEvents({ per_page: 10 });
  assert.equal(all.data.events.length, 1);
  assert.equal(all.data.events[0].properties.total, 1200);
  const one = await lago.events.findEvent('tx-1');
  assert.equal(one.data.event.external_subscription_id, 'acme_sub');
});

test('createBatchEvents', async () => {
  const events = Array.from({ length: 20 }, (_, i) => ({ transaction_id: `batch-${i}`, external_subscription_id: 'acme_sub', code: 'tokens', properties: { total: i } }));
  const { data } = await lago.events.createBatchEvents({ events });
  assert.equal(data.events.length, 20);
  assert.equal(data.events[19].transaction_id, 'batch-19');
});

test('findCustomerCurrentUsage reads the live usage', async () => {
  const bm = (await lago.billableMetrics.findBillableMetric('tokens')).data.billable_metric;
  await lago.plans.updatePlan('p', { plan: { charges: [{ billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '0.001' } }] } });
  const { data } = await lago.customers.findCustomerCurrentUsage('acme', { external_subscription_id: 'acme_sub' });
  const total = 1200 + Array.from({ length: 20 }, (_, i) => i).reduce((a, b) => a + b, 0);
  assert.equal(data.customer_usage.charges_usage[0].units, `${total}.0`);
  assert.equal(data.customer_usage.charges_usage[0].total_aggregated_units, `${total}.0`); // required by Lago's schema
  assert.equal(data.customer_usage.amount_cents, Math.round(total * 0.1));
  assert.equal(data.customer_usage.currency, 'USD');
});

test('eventEstimateInstantFees and eventBatchEstimateInstantFees price a pay-in-advance charge', async () => {
  const bm = (await lago.billableMetrics.findBillableMetric('tokens')).data.billable_metric;
  await lago.plans.createPlan({ plan: { name: 'Instant', code: 'instant', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: bm.lago_id, charge_model: 'standard', pay_in_advance: true, invoiceable: true, properties: { amount: '0.01' } }] } });
  await lago.subscriptions.createSubscription({ subscription: { external_customer_id: 'instant_co', plan_code: 'instant', external_id: 'instant_sub' } });
  const one = (await lago.events.eventEstimateInstantFees({ event: { external_subscription_id: 'instant_sub', code: 'tokens', transaction_id: 'est-1', properties: { total: 250 } } })).data;
  assert.deepEqual(one.fees.map((f) => [f.event_transaction_id, f.amount_cents, f.units, f.pay_in_advance]), [['est-1', 250, '250.0', true]]);
  const many = (await lago.events.eventBatchEstimateInstantFees({ events: [
    { external_subscription_id: 'instant_sub', code: 'tokens', transaction_id: 'est-2', properties: { total: 100 } },
    { external_subscription_id: 'instant_sub', code: 'tokens', transaction_id: 'est-3', properties: { total: 7 } }] })).data;
  assert.deepEqual(many.fees.map((f) => [f.event_transaction_id, f.amount_cents]), [['est-2', 100], ['est-3', 7]]);
});

test('a prorated graduated charge through the client: seats added on the 21st cost 10 of April\'s 30 days in their tier', async () => {
  const seats = (await lago.billableMetrics.createBillableMetric({ billable_metric: { name: 'Seats', code: 'seats', aggregation_type: 'sum_agg', field_name: 'seats', recurring: true } })).data.billable_metric;
  const plan = (await lago.plans.createPlan({ plan: { name: 'Seats', code: 'seats', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: seats.lago_id, charge_model: 'graduated', prorated: true, properties: { graduated_ranges: [
      { from_value: 0, to_value: 1, per_unit_amount: '30', flat_amount: '0' },
      { from_value: 2, to_value: null, per_unit_amount: '60', flat_amount: '0' }] } }] } })).data.plan;
  assert.equal(plan.charges[0].prorated, true);
  await lago.subscriptions.createSubscription({ subscription: { external_customer_id: 'seat_co', plan_code: 'seats', external_id: 'seat_sub', subscription_at: '2026-04-01T00:00:00Z' } });
  await lago.events.createEvent({ event: { transaction_id: 'seat-1', external_subscription_id: 'seat_sub', code: 'seats', properties: { seats: 1 } } });
  const moved = await t.api('/api/v1/test_clock/advance', { method: 'POST', body: { test_clock: { to: '2026-04-21T09:00:00Z' } } });
  assert.equal(moved.status, 200, await moved.text());
  await lago.events.createEvent({ event: { transaction_id: 'seat-2', external_subscription_id: 'seat_sub', code: 'seats', properties: { seats: 2 } } });
  const { data } = await lago.customers.findCustomerCurrentUsage('seat_co', { external_subscription_id: 'seat_sub' });
  // the first seat all April in the first tier (30 USD); two from the 21st in the second,
  // 60 × 10/30 each (20 USD): 70 USD; the units shown are the full ones
  const c = data.customer_usage.charges_usage[0];
  assert.deepEqual([c.units, c.amount_cents, data.customer_usage.amount_cents], ['3.0', 7000, 7000]);
});

test('a metric with an expression: createBillableMetric, evaluateBillableMetricExpression, and events priced by its result', async () => {
  const bm = (await lago.billableMetrics.createBillableMetric({ billable_metric: { name: 'Weighted', code: 'weighted', aggregation_type: 'sum_agg', field_name: 'units', expression: 'event.properties.input + event.properties.output * 4' } })).data.billable_metric;
  assert.equal(bm.expression, 'event.properties.input + event.properties.output * 4');
  const { data } = await lago.billableMetrics.evaluateBillableMetricExpression({ expression: bm.expression, event: { code: 'weighted', properties: { input: 100, output: 25 } } });
  assert.equal(data.expression_result.value, '200.0');
  await lago.plans.createPlan({ plan: { name: 'W', code: 'w', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '0.01' } }] } });
  await lago.subscriptions.createSubscription({ subscription: { external_customer_id: 'weighted_co', plan_code: 'w', external_id: 'weighted_sub' } });
  const sent = (await lago.events.createEvent({ event: { transaction_id: 'w-1', external_subscription_id: 'weighted_sub', code: 'weighted', properties: { input: 100, output: 25 } } })).data.event;
  assert.equal(sent.properties.units, '200.0');
  await lago.events.createBatchEvents({ events: [{ transaction_id: 'w-2', external_subscription_id: 'weighted_sub', code: 'weighted', properties: { input: 1, output: 1 } }] });
  const usage = (await lago.customers.findCustomerCurrentUsage('weighted_co', { external_subscription_id: 'weighted_sub' })).data.customer_usage;
  assert.equal(usage.charges_usage[0].units, '205.0');
  assert.equal(usage.amount_cents, 205); // 205 units at 0.01 USD
  await assert.rejects(lago.events.createEvent({ event: { transaction_id: 'w-3', external_subscription_id: 'weighted_sub', code: 'weighted', properties: { input: 1 } } }), (res) => {
    assert.equal(res.status, 422);
    assert.deepEqual(res.error.error_details, { properties: ['expression_evaluation_failed'] });
    return true;
  });
});
