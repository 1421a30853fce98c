// The estimate routes answer and refuse where Lago's services do (an audit compared them):
// - batch_estimate_instant_fees (Lago's Fees::EstimateInstant::BatchPayInAdvanceService): an
//   event whose code no instant charge of the plan takes, an unknown metric's or none, adds no
//   fee; only a plan without any instant charge, or an unknown subscription, refuses the batch;
//   an empty list is no fees; the fees come grouped by subscription, as its controller groups
//   the events;
// - estimate_instant_fees (Lago's PayInAdvanceService) looks no metric up: an unknown code is
//   does_not_match_an_instant_charge;
// - estimate_fees (Lago's Events::ValidateCreationService first): no external_subscription_id
//   is 404 subscription_not_found, no code 404 billable_metric_not_found, and a sum, max or
//   latest field that Ruby's Float() does not read is 422 value_is_not_valid_number.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
const post = async (path, body) => {
  const r = await t.api(path, { method: 'POST', body });
  return { status: r.status, body: await r.json() };
};
const ok = async (path, body) => {
  const r = await post(path, body);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
};

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-01-10T00:00:00Z']);
  const metric = async (code, aggregation_type, field_name) =>
    (await ok('/api/v1/billable_metrics', { billable_metric: { code, name: code, aggregation_type, ...(field_name ? { field_name } : {}) } })).billable_metric.lago_id;
  const tok = await metric('tok', 'sum_agg', 'v');
  const arr = await metric('arr', 'sum_agg', 'v');
  const peak = await metric('peak', 'max_agg', 'v');
  const last = await metric('last', 'latest_agg', 'v');
  const seats = await metric('seats', 'unique_count_agg', 'user');
  await metric('calls', 'count_agg');
  const advance = (id, amount) => ({ billable_metric_id: id, charge_model: 'standard', pay_in_advance: true, invoiceable: true, properties: { amount } });
  await ok('/api/v1/plans', { plan: { code: 'p', name: 'P', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [
    advance(tok, '0.5'), advance(seats, '2'),
    // Lago charges a max or a latest in arrears only
    ...[arr, peak, last].map((id) => ({ billable_metric_id: id, charge_model: 'standard', properties: { amount: '1' } })),
  ] } });
  // a plan whose only charge is in arrears: no instant charge at all
  await ok('/api/v1/plans', { plan: { code: 'late', name: 'Late', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [
    { billable_metric_id: arr, charge_model: 'standard', properties: { amount: '1' } },
  ] } });
  for (const [id, plan] of [['s', 'p'], ['s2', 'p'], ['l', 'late']])
    await ok('/api/v1/subscriptions', { subscription: { external_customer_id: `c-${id}`, plan_code: plan, external_id: id, subscription_at: '2026-01-01T00:00:00Z' } });
});
after(async () => { await t.cleanup(); });

const batch = (events) => post('/api/v1/events/batch_estimate_instant_fees', { events });
const fees = (r) => r.body.fees.map((f) => [f.external_subscription_id, f.item.code, f.event_transaction_id, f.amount_cents]);

test('batch_estimate_instant_fees: an event no instant charge takes adds no fee', async () => {
  // arr is charged in arrears only; unknown_metric names no metric; the third has no code
  let r = await batch([
    { external_subscription_id: 's', code: 'tok', transaction_id: 't1', properties: { v: 10 } },
    { external_subscription_id: 's', code: 'arr', transaction_id: 't2', properties: { v: 1 } },
    { external_subscription_id: 's', code: 'unknown_metric', transaction_id: 't3' },
    { external_subscription_id: 's', transaction_id: 't4' },
  ]);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(fees(r), [['s', 'tok', 't1', 500]]);
  // nothing matches at all: no fees, still 200
  r = await batch([{ external_subscription_id: 's', code: 'arr', properties: { v: 1 } }]);
  assert.deepEqual([r.status, r.body], [200, { fees: [] }]);
});

test('batch_estimate_instant_fees: an empty list is no fees', async () => {
  assert.deepEqual(await batch([]), { status: 200, body: { fees: [] } });
  // Lago's permit keeps an empty object as it is, and its controller groups it into nothing
  assert.deepEqual(await post('/api/v1/events/batch_estimate_instant_fees', { events: {} }), { status: 200, body: { fees: [] } });
});

test('batch_estimate_instant_fees: refused where Lago refuses, the plan without any instant charge or the subscription unknown', async () => {
  let r = await batch([{ external_subscription_id: 's', code: 'tok', properties: { v: 1 } }, { external_subscription_id: 'l', code: 'arr', properties: { v: 1 } }]);
  assert.equal(r.status, 422);
  assert.deepEqual(r.body.error_details, { code: ['does_not_match_an_instant_charge'] });
  r = await batch([{ external_subscription_id: 's', code: 'tok', properties: { v: 1 } }, { external_subscription_id: 'nobody', code: 'tok' }]);
  assert.deepEqual(r.body, { status: 404, error: 'Not Found', code: 'subscription_not_found' });
});

test('batch_estimate_instant_fees: the fees come grouped by subscription, in the order each first appears', async () => {
  const r = await batch([
    { external_subscription_id: 's', code: 'tok', transaction_id: 'a', properties: { v: 2 } },
    { external_subscription_id: 's2', code: 'tok', transaction_id: 'b', properties: { v: 4 } },
    { external_subscription_id: 's', code: 'seats', transaction_id: 'c', properties: { user: 'ann' } },
    { external_subscription_id: 's2', code: 'arr', transaction_id: 'd' },
    { external_subscription_id: 's', code: 'tok', transaction_id: 'e', properties: { v: 6 } },
  ]);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(fees(r), [['s', 'tok', 'a', 100], ['s', 'seats', 'c', 200], ['s', 'tok', 'e', 300], ['s2', 'tok', 'b', 200]]);
});

test('estimate_instant_fees: an unknown metric is no instant charge, as Lago looks no metric up', async () => {
  for (const code of ['unknown_metric', 'arr']) {
    const r = await post('/api/v1/events/estimate_instant_fees', { event: { external_subscription_id: 's', code } });
    assert.equal(r.status, 422, code);
    assert.deepEqual(r.body.error_details, { code: ['does_not_match_an_instant_charge'] }, code);
  }
  const r = await post('/api/v1/events/estimate_instant_fees', { event: { external_subscription_id: 's' } });
  assert.deepEqual(r.body.error_details, { code: ['does_not_match_an_instant_charge'] });
});

const estimate = (event) => post('/api/v1/events/estimate_fees', { event });

test('estimate_fees: no external_subscription_id is 404 subscription_not_found, no code 404 billable_metric_not_found', async () => {
  const noSub = { status: 404, error: 'Not Found', code: 'subscription_not_found' };
  for (const event of [{ code: 'tok', properties: { v: 1 } }, { external_subscription_id: null, code: 'tok' }, { external_subscription_id: '', code: 'tok' },
    { external_subscription_id: '  ', code: 'tok' }, { external_subscription_id: {}, code: 'tok' }, { code: '' }])
    assert.deepEqual((await estimate(event)).body, noSub, JSON.stringify(event));
  for (const event of [{ external_subscription_id: 's' }, { external_subscription_id: 's', code: '' }, { external_subscription_id: 's', code: null }])
    assert.deepEqual((await estimate(event)).body, { status: 404, error: 'Not Found', code: 'billable_metric_not_found' }, JSON.stringify(event));
});

test('estimate_fees: a sum, max or latest value that Ruby\'s Float() does not read is 422 value_is_not_valid_number', async () => {
  const refused = { properties: ['value_is_not_valid_number'] };
  for (const code of ['tok', 'peak', 'last', 'arr']) // peak, last, arr: checked before the charges are looked at, as Lago's order is
    for (const v of ['abc', '12abc', '5.', '1__0', '1e', '', ' ', 'Infinity', 'NaN', '1d2', '0x', '1 2', true, false, { a: 1 }, [1]]) {
      const r = await estimate({ external_subscription_id: 's', code, properties: { v } });
      assert.equal(r.status, 422, `${code} ${JSON.stringify(v)}: ${JSON.stringify(r.body)}`);
      assert.deepEqual(r.body.error_details, refused, `${code} ${JSON.stringify(v)}`);
    }
  // what Float() reads: whitespace around, one _ between digits, .5, leading zeros, exponents, hex
  for (const v of ['4', ' 4 ', '\t4\n', '1_0', '.5', '-.5', '+2', '007', '1e1', '1E+0_1', '0x1A', '-0x1', '0x1.8p1', '0x1p-1', 4, 2.5, null])
    assert.equal((await estimate({ external_subscription_id: 's', code: 'tok', properties: { v } })).status, 200, JSON.stringify(v));
  assert.equal((await estimate({ external_subscription_id: 's', code: 'tok' })).status, 200); // no value: nil, which Lago takes
  // other aggregations are not checked, nor another property
  assert.equal((await estimate({ external_subscription_id: 's', code: 'seats', properties: { user: 'abc' } })).status, 200);
  assert.equal((await estimate({ external_subscription_id: 's', code: 'tok', properties: { v: 1, other: 'abc' } })).status, 200);
});
