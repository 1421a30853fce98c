// What a plan, its charges and a billable metric keep once subscriptions depend on them. Lago's
// Plans::UpdateService, Charges::UpdateService and BillableMetrics::UpdateService pass these
// fields over unread once a plan is attached_to_subscriptions? (or a metric charged by a plan)
// and answer 200; Tally applied them (found by an audit: a live subscription's standard charge
// became graduated and its period's usage went from 1000 to 1500 cents, a charge changed
// metric under its lago_id, a plan code changed so that GET /plans/<old> and subscribing to it
// were 404, and an expression set on a charged metric had the client's ordinary events
// refused). Tally now refuses a change of them while the plan has live subscriptions (422
// plan_has_subscriptions, metric_used_by_plans for a metric), as it refuses an interval
// change; the same value sent again passes, so a client resending its whole plan still works.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
const metric = {};
const call = async (method, path, body) => {
  const r = await t.api(path, { method, body });
  return { status: r.status, body: await r.json() };
};
const ok = async (method, path, body) => {
  const r = await call(method, path, body);
  assert.equal(r.status, 200, `${method} ${path}: ${JSON.stringify(r.body)}`);
  return r.body;
};

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-01-01T00:00:00Z']);
  for (const bm of [
    { code: 'units', name: 'u', aggregation_type: 'sum_agg', field_name: 'v' },
    { code: 'calls', name: 'c', aggregation_type: 'count_agg' },
    { code: 'seats', name: 's', aggregation_type: 'sum_agg', field_name: 'n', recurring: true },
  ]) metric[bm.code] = (await ok('POST', '/api/v1/billable_metrics', { billable_metric: bm })).billable_metric.lago_id;
  await ok('POST', '/api/v1/customers', { customer: { external_id: 'c1', currency: 'USD' } });
});
after(async () => { await t.cleanup(); });

const newPlan = (code, extra = {}) => ({ plan: { code, name: code, interval: 'monthly', amount_cents: 0, amount_currency: 'USD', pay_in_advance: false,
  charges: [{ billable_metric_id: metric.units, charge_model: 'standard', properties: { amount: '1' } }], ...extra } });
const usageCents = async (sub) => (await ok('GET', `/api/v1/customers/c1/current_usage?external_subscription_id=${sub}`)).customer_usage.amount_cents;

test('a charge named by id keeps its model, metric and flags while the plan has live subscriptions', async () => {
  const plan = (await ok('POST', '/api/v1/plans', newPlan('live'))).plan;
  const charge = plan.charges[0];
  await ok('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c1', plan_code: 'live', external_id: 's1' } });
  await ok('POST', '/api/v1/events', { event: { transaction_id: 'e1', external_subscription_id: 's1', code: 'units', properties: { v: '10' } } });
  assert.equal(await usageCents('s1'), 1000);
  const graduated = { graduated_ranges: [{ from_value: 0, to_value: 5, per_unit_amount: '2', flat_amount: '0' }, { from_value: 5, to_value: null, per_unit_amount: '1', flat_amount: '0' }] };
  const cases = [
    [{ charge_model: 'graduated', properties: graduated }, 'charge_model'],
    [{ billable_metric_id: metric.calls }, 'billable_metric_id'],
    [{ pay_in_advance: true }, 'pay_in_advance'],
    [{ pay_in_advance: true, invoiceable: false }, 'pay_in_advance'],
    [{ min_amount_cents: 500 }, 'min_amount_cents'],
  ];
  for (const [change, field] of cases) {
    const r = await call('PUT', '/api/v1/plans/live', { plan: { charges: [{ id: charge.lago_id, ...change }] } });
    assert.equal(r.status, 422, `${JSON.stringify(change)}: ${JSON.stringify(r.body)}`);
    assert.deepEqual(r.body.error_details, { [field]: ['plan_has_subscriptions'] }, JSON.stringify(change));
    assert.match(r.body.message, new RegExp(`charge ${charge.lago_id}.*${field}.*live subscriptions`));
  }
  // nothing changed: the period is still priced by the standard charge on units
  const stored = (await ok('GET', '/api/v1/plans/live')).plan.charges;
  assert.equal(stored.length, 1);
  assert.deepEqual([stored[0].lago_id, stored[0].charge_model, stored[0].billable_metric_code, stored[0].pay_in_advance, stored[0].min_amount_cents],
    [charge.lago_id, 'standard', 'units', false, 0]);
  assert.equal(await usageCents('s1'), 1000);
  // the charge as it was answered, sent back whole with a new price: its price changes
  const { lago_id: _id, lago_billable_metric_id: _m, billable_metric_code: _c, created_at: _t, taxes: _x, ...asAnswered } = charge;
  const repriced = await ok('PUT', '/api/v1/plans/live', { plan: { code: 'live', pay_in_advance: false, charges: [{ ...asAnswered, id: charge.lago_id, billable_metric_id: metric.units, properties: { amount: '2' }, invoice_display_name: 'Units' }] } });
  assert.equal(repriced.plan.charges[0].lago_id, charge.lago_id);
  assert.deepEqual(repriced.plan.charges[0].properties, { amount: '2' });
  assert.equal(repriced.plan.charges[0].invoice_display_name, 'Units');
  assert.equal(await usageCents('s1'), 2000);
  // a charge may still be added, and removed
  const added = await ok('PUT', '/api/v1/plans/live', { plan: { charges: [{ id: charge.lago_id }, { billable_metric_id: metric.calls, charge_model: 'package', properties: { amount: '1', package_size: 10, free_units: 0 } }] } });
  assert.equal(added.plan.charges.length, 2);
  const removed = await ok('PUT', '/api/v1/plans/live', { plan: { charges: [{ id: charge.lago_id }] } });
  assert.equal(removed.plan.charges.length, 1);
  // once no subscription is live, the charge changes again
  await ok('DELETE', '/api/v1/subscriptions/s1');
  const changed = await ok('PUT', '/api/v1/plans/live', { plan: { charges: [{ id: charge.lago_id, charge_model: 'graduated', properties: graduated }] } });
  assert.deepEqual([changed.plan.charges[0].lago_id, changed.plan.charges[0].charge_model], [charge.lago_id, 'graduated']);
});

test('a charge\'s prorated flag and regroup_paid_fees keep their value under live subscriptions', async () => {
  await ok('POST', '/api/v1/plans', newPlan('seats_p', { charges: [{ billable_metric_id: metric.seats, charge_model: 'standard', properties: { amount: '1' } },
    { billable_metric_id: metric.calls, charge_model: 'standard', pay_in_advance: true, invoiceable: false, properties: { amount: '1' } }] }));
  const charges = (await ok('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c1', plan_code: 'seats_p', external_id: 's_seats' } })).subscription.plan.charges;
  for (const [i, change, field] of [[0, { prorated: true }, 'prorated'], [1, { regroup_paid_fees: 'invoice' }, 'regroup_paid_fees']]) {
    const sent = charges.map((c) => ({ id: c.lago_id }));
    sent[i] = { ...sent[i], ...change };
    const r = await call('PUT', '/api/v1/plans/seats_p', { plan: { charges: sent } });
    assert.equal(r.status, 422, JSON.stringify(r.body));
    assert.deepEqual(r.body.error_details, { [field]: ['plan_has_subscriptions'] });
  }
});

test('a plan keeps its code and pay_in_advance while it has live subscriptions', async () => {
  await ok('POST', '/api/v1/plans', newPlan('named'));
  await ok('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c1', plan_code: 'named', external_id: 's_named' } });
  for (const [change, field] of [[{ code: 'renamed' }, 'code'], [{ pay_in_advance: true }, 'pay_in_advance']]) {
    const r = await call('PUT', '/api/v1/plans/named', { plan: change });
    assert.equal(r.status, 422, JSON.stringify(r.body));
    assert.deepEqual(r.body.error_details, { [field]: ['plan_has_subscriptions'] });
    assert.match(r.body.message, new RegExp(`${field}.*live subscriptions`));
  }
  assert.equal((await call('GET', '/api/v1/plans/named')).status, 200);
  assert.equal((await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c1', plan_code: 'named', external_id: 's_named2' } })).status, 200);
  // the same values, and a new name and price, pass
  const same = await ok('PUT', '/api/v1/plans/named', { plan: { code: 'named', pay_in_advance: false, name: 'Named', amount_cents: 700 } });
  assert.deepEqual([same.plan.code, same.plan.pay_in_advance, same.plan.name, same.plan.amount_cents], ['named', false, 'Named', 700]);
  // a plan nobody is on changes freely
  await ok('POST', '/api/v1/plans', newPlan('spare'));
  const free = await ok('PUT', '/api/v1/plans/spare', { plan: { code: 'spare2', pay_in_advance: true } });
  assert.deepEqual([free.plan.code, free.plan.pay_in_advance], ['spare2', true]);
});

test('a metric a plan charges keeps its expression and weighted_interval', async () => {
  await ok('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'gpu', name: 'g', aggregation_type: 'sum_agg', field_name: 'secs' } });
  await ok('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'mem', name: 'm', aggregation_type: 'weighted_sum_agg', field_name: 'gb' } });
  const gpu = (await ok('GET', '/api/v1/billable_metrics/gpu')).billable_metric.lago_id;
  const mem = (await ok('GET', '/api/v1/billable_metrics/mem')).billable_metric.lago_id;
  await ok('POST', '/api/v1/plans', { plan: { code: 'gpu_p', name: 'g', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', pay_in_advance: false,
    charges: [{ billable_metric_id: gpu, charge_model: 'standard', properties: { amount: '1' } }, { billable_metric_id: mem, charge_model: 'standard', properties: { amount: '1' } }] } });
  let r = await call('PUT', '/api/v1/billable_metrics/gpu', { billable_metric: { expression: 'event.properties.a * 3' } });
  assert.equal(r.status, 422, JSON.stringify(r.body));
  assert.deepEqual(r.body.error_details, { expression: ['metric_used_by_plans'] });
  assert.match(r.body.message, /plan gpu_p charges for this metric: its expression cannot change/);
  r = await call('PUT', '/api/v1/billable_metrics/mem', { billable_metric: { weighted_interval: null, aggregation_type: 'weighted_sum_agg' } });
  assert.equal(r.status, 200, JSON.stringify(r.body)); // null is seconds on a weighted sum: the same
  // a sum's weighted_interval means nothing, but Lago keeps it too
  r = await call('PUT', '/api/v1/billable_metrics/gpu', { billable_metric: { weighted_interval: 'seconds' } });
  assert.deepEqual(r.body.error_details, { weighted_interval: ['metric_used_by_plans'] });
  // the same expression (none), a name and a field pass
  const same = await ok('PUT', '/api/v1/billable_metrics/gpu', { billable_metric: { expression: null, name: 'GPU', field_name: 'secs' } });
  assert.deepEqual([same.billable_metric.name, same.billable_metric.expression], ['GPU', null]);
  // events go on as the client sends them
  await ok('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c1', plan_code: 'gpu_p', external_id: 's_gpu' } });
  await ok('POST', '/api/v1/events', { event: { transaction_id: 'g1', external_subscription_id: 's_gpu', code: 'gpu', properties: { secs: '4' } } });
  // a metric no plan charges takes an expression
  await ok('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'free', name: 'f', aggregation_type: 'sum_agg', field_name: 'x' } });
  const free = await ok('PUT', '/api/v1/billable_metrics/free', { billable_metric: { expression: 'event.properties.a * 3' } });
  assert.equal(free.billable_metric.expression, 'event.properties.a * 3');
});
