// A client's retry of an acknowledged event is answered 422 transaction_id value_already_exist,
// whatever happened since: its subscription terminated (the retry sent without a timestamp
// now falls after the end), its metric deleted, its metric's expression changed, its wallet
// run dry; one event or a batch (by index), before and after a restart. Lago's uniqueness is
// (organization, external_subscription_id, transaction_id), which Events::CreateService answers
// value_already_exist for, subscription or not. An audit found such retries answered
// subscription_not_found (the subscription was looked up first), which a client's retry logic
// takes as a permanent failure of an event that was billed. And an event timestamped at the
// termination instant is the ended subscription's (Lago's Event#subscription: terminated_at >=
// timestamp): accepted as its late event, as one a second earlier is.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
const metric = {};
const post = async (path, body) => {
  const r = await t.api(path, { method: 'POST', body });
  return { status: r.status, body: await r.json() };
};
const ok = async (r) => { assert.equal(r.status, 200, JSON.stringify(r.body)); return r.body; };
const advance = (to) => post('/api/v1/test_clock/advance', { test_clock: { to } });
const T = Date.parse('2026-01-10T00:00:00Z') / 1000; // the clock's start, and s's termination
const ev = (transaction_id, extra = {}) => ({ transaction_id, external_subscription_id: 's', code: 'calls', ...extra });
const duplicate = { transaction_id: ['value_already_exist'] };

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-01-10T00:00:00Z']);
  for (const bm of [
    { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' },
    { code: 'orphan', name: 'Orphan', aggregation_type: 'count_agg' }, // in no plan: deletable
    // in no plan: its expression may change (a charged metric keeps its own)
    { code: 'reshaped', name: 'Reshaped', aggregation_type: 'sum_agg', field_name: 'v', expression: 'event.properties.a * 2' },
    { code: 'seats', name: 'Seats', aggregation_type: 'sum_agg', field_name: 'n', recurring: true },
  ]) metric[bm.code] = (await ok(await post('/api/v1/billable_metrics', { billable_metric: bm }))).billable_metric.lago_id;
  await ok(await post('/api/v1/plans', { plan: { code: 'p', name: 'P', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [
    { billable_metric_id: metric.calls, charge_model: 'standard', properties: { amount: '1' } },
  ] } }));
  await ok(await post('/api/v1/plans', { plan: { code: 'pr', name: 'PR', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [
    { billable_metric_id: metric.seats, charge_model: 'standard', properties: { amount: '1' } },
  ] } }));
  for (const [customer, sub, plan_code] of [['c', 's', 'p'], ['c2', 's2', 'p'], ['w', 'ws', 'p'], ['rc', 'r', 'pr']])
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: customer, plan_code, external_id: sub, subscription_at: '2026-01-01T00:00:00Z' } }));
});
after(async () => { await t.cleanup(); });

let s;
test('after a termination a retry is a duplicate, with its timestamp or without; an event of the termination instant is the ended subscription\'s', async () => {
  s = (await ok(await post('/api/v1/events', { event: ev('x1', { timestamp: T }) }))).event.lago_subscription_id;
  assert.equal((await post('/api/v1/events', { event: ev('y1') })).status, 200); // at the clock: T
  assert.deepEqual((await post('/api/v1/events', { event: ev('x1', { timestamp: T }) })).body.error_details, duplicate);
  const ended = await ok(await t.api('/api/v1/subscriptions/s', { method: 'DELETE' }).then(async (r) => ({ status: r.status, body: await r.json() })));
  assert.equal(ended.subscription.terminated_at, '2026-01-10T00:00:00Z');

  for (const [id, extra] of [['x1', { timestamp: T }], ['y1', {}], ['x1', {}], ['y1', { timestamp: T + 86400 }]]) {
    const r = await post('/api/v1/events', { event: ev(id, extra) });
    assert.equal(r.status, 422, `${id} ${JSON.stringify(extra)}`);
    assert.deepEqual(r.body.error_details, duplicate, `${id} ${JSON.stringify(extra)}`);
  }
  // a new event of the termination instant is the ended subscription's late event, as one a
  // second earlier is; its retry is a duplicate
  const x2 = await ok(await post('/api/v1/events', { event: ev('x2', { timestamp: T }) }));
  assert.equal(x2.event.lago_subscription_id, s);
  assert.equal(x2.event.timestamp, '2026-01-10T00:00:00.000Z');
  const x3 = await ok(await post('/api/v1/events', { event: ev('x3', { timestamp: T - 1 }) }));
  assert.equal(x3.event.lago_subscription_id, s);
  assert.deepEqual((await post('/api/v1/events', { event: ev('x2', { timestamp: T }) })).body.error_details, duplicate);
  // the clock has not moved: an event sent now is of that instant too
  assert.equal((await ok(await post('/api/v1/events', { event: ev('n0') }))).event.lago_subscription_id, s);

  await advance('2026-01-10T00:00:01Z');
  const fresh = await post('/api/v1/events', { event: ev('n1') });
  assert.deepEqual(fresh.body.error_details, { external_subscription_id: ['subscription_not_found'] });
  const past = await post('/api/v1/events', { event: ev('n2', { timestamp: T + 0.000001 }) });
  assert.deepEqual(past.body.error_details, { external_subscription_id: ['subscription_not_found'] });
  for (const id of ['x1', 'y1', 'x2', 'x3', 'n0'])
    assert.deepEqual((await post('/api/v1/events', { event: ev(id) })).body.error_details, duplicate, id);
  assert.equal((await ok(await t.api('/api/v1/events/x2').then(async (r) => ({ status: r.status, body: await r.json() })))).event.lago_subscription_id, s);
});

test('a batch names each retry value_already_exist by its index, beside the events refused for their subscription', async () => {
  const r = await post('/api/v1/events/batch', { events: [
    ev('x1', { timestamp: T }), ev('y1'), ev('b-new'), ev('x2'),
    ev('b-late', { timestamp: T - 10 }), ev('b-late'), // a late event, then its retry in the batch
  ] });
  assert.equal(r.status, 422);
  assert.deepEqual(r.body.error_details, {
    0: duplicate, 1: duplicate, 2: { external_subscription_id: ['subscription_not_found'] }, 3: duplicate, 5: duplicate,
  });
  // a batch of retries alone: each is named
  const retries = await post('/api/v1/events/batch', { events: [ev('y1'), ev('x3'), ev('x1', { timestamp: T })] });
  assert.deepEqual(retries.body.error_details, { 0: duplicate, 1: duplicate, 2: duplicate });
  // nothing of the refused batches was kept
  assert.equal((await t.api('/api/v1/events/b-late')).status, 404);
});

test('a subscription made again under the ended one\'s id: a retry is still a duplicate; the termination instant stays the ended one\'s', async () => {
  await advance('2026-01-11T00:00:00Z');
  const again = (await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'c', plan_code: 'p', external_id: 's' } }))).subscription;
  assert.notEqual(again.lago_id, s);
  for (const id of ['x1', 'y1', 'x2'])
    assert.deepEqual((await post('/api/v1/events', { event: ev(id) })).body.error_details, duplicate, id);
  assert.equal((await ok(await post('/api/v1/events', { event: ev('x4', { timestamp: T }) }))).event.lago_subscription_id, s);
  assert.equal((await ok(await post('/api/v1/events', { event: ev('x5') }))).event.lago_subscription_id, again.lago_id);
  const usage = (await ok(await t.api('/api/v1/customers/c/current_usage?external_subscription_id=s').then(async (r) => ({ status: r.status, body: await r.json() })))).customer_usage;
  assert.equal(usage.charges_usage.find((c) => c.billable_metric.code === 'calls').events_count, 1); // x5 alone
});

test('a deleted metric: a retry of its event is a duplicate, a new one billable_metric_not_found', async () => {
  await ok(await post('/api/v1/events', { event: ev('o1', { external_subscription_id: 's2', code: 'orphan' }) }));
  assert.equal((await t.api('/api/v1/billable_metrics/orphan', { method: 'DELETE' })).status, 200);
  const retry = await post('/api/v1/events', { event: ev('o1', { external_subscription_id: 's2', code: 'orphan' }) });
  assert.deepEqual(retry.body.error_details, duplicate);
  const fresh = await post('/api/v1/events', { event: ev('o2', { external_subscription_id: 's2', code: 'orphan' }) });
  assert.deepEqual(fresh.body.error_details, { code: ['billable_metric_not_found'] });
  const batch = await post('/api/v1/events/batch', { events: [
    ev('o2', { external_subscription_id: 's2', code: 'orphan' }), ev('o1', { external_subscription_id: 's2', code: 'orphan' }),
  ] });
  assert.deepEqual(batch.body.error_details, { 0: { code: ['billable_metric_not_found'] }, 1: duplicate });
});

test('an expression that no longer evaluates for a stored event: its retry is a duplicate', async () => {
  await ok(await post('/api/v1/events', { event: ev('d1', { external_subscription_id: 's2', code: 'reshaped', properties: { a: 1 } }) }));
  const r = await t.api('/api/v1/billable_metrics/reshaped', { method: 'PUT', body: { billable_metric: { expression: 'event.properties.b * 2' } } });
  assert.equal(r.status, 200);
  const retry = await post('/api/v1/events', { event: ev('d1', { external_subscription_id: 's2', code: 'reshaped', properties: { a: 1 } }) });
  assert.deepEqual(retry.body.error_details, duplicate);
  assert.equal(retry.body.message, undefined); // not the expression's
  const fresh = await post('/api/v1/events', { event: ev('d2', { external_subscription_id: 's2', code: 'reshaped', properties: { a: 1 } }) });
  assert.deepEqual(fresh.body.error_details, { properties: ['expression_evaluation_failed'] });
  assert.match(fresh.body.message, /expression_evaluation_failed/);
});

test('a hard-limited wallet run dry: a retry is a duplicate, not 402', async () => {
  await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'w', currency: 'EUR', rate_amount: '1', name: 'Prepaid', granted_credits: '1', limit: 'hard' } }));
  await ok(await post('/api/v1/events', { event: ev('w1', { external_subscription_id: 'ws' }) })); // 1 EUR: all of it
  const dry = await t.api('/api/v1/events', { method: 'POST', body: { event: ev('w2', { external_subscription_id: 'ws' }) } });
  assert.equal(dry.status, 402);
  const retry = await post('/api/v1/events', { event: ev('w1', { external_subscription_id: 'ws' }) });
  assert.deepEqual(retry.body.error_details, duplicate);
  const batch = await post('/api/v1/events/batch', { events: [ev('w1', { external_subscription_id: 'ws' }), ev('w3', { external_subscription_id: 'ws' })] });
  assert.equal(batch.status, 422);
  assert.deepEqual(batch.body.error_details, { 0: duplicate });
});

// A recurring metric's late event of an ended subscription counts on in the subscription live
// under its id when it arrives (engine/ingest.c live_usage_of); one of the termination instant is such
// a late event too, and a restart, which counts the stored events again, must count it there.
let carried;
test('a recurring metric\'s event of the termination instant is carried into the subscription live under that id', async () => {
  const seats = async () => {
    const u = (await ok(await t.api('/api/v1/customers/rc/current_usage?external_subscription_id=r').then(async (r) => ({ status: r.status, body: await r.json() })))).customer_usage;
    return u.charges_usage.find((c) => c.billable_metric.code === 'seats').units;
  };
  await ok(await post('/api/v1/events', { event: ev('r1', { external_subscription_id: 'r', code: 'seats', properties: { n: 2 } }) }));
  const ended = await t.api('/api/v1/subscriptions/r', { method: 'DELETE' }).then((r) => r.json());
  const TR = Date.parse(ended.subscription.terminated_at) / 1000;
  await advance('2026-01-12T00:00:00Z');
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'rc', plan_code: 'pr', external_id: 'r' } }));
  const before = Number(await seats());
  const atEnd = await ok(await post('/api/v1/events', { event: ev('r2', { external_subscription_id: 'r', code: 'seats', timestamp: TR, properties: { n: 3 } }) }));
  assert.notEqual(atEnd.event.lago_subscription_id, undefined);
  await ok(await post('/api/v1/events', { event: ev('r3', { external_subscription_id: 'r', code: 'seats', timestamp: TR - 1, properties: { n: 4 } }) }));
  carried = await seats();
  assert.equal(Number(carried), before + 7);
  t.seats = seats;
});

test('after a SIGKILL and a clean restart: the same answers', async () => {
  for (const kill of [true, false]) {
    await t.restart({ kill });
    assert.equal(await t.seats(), carried, `kill: ${kill}`);
    for (const [id, extra] of [['x1', { timestamp: T }], ['y1', {}], ['x2', { timestamp: T }], ['x4', {}], ['o1', { external_subscription_id: 's2', code: 'orphan' }],
      ['d1', { external_subscription_id: 's2', code: 'reshaped', properties: { a: 1 } }], ['w1', { external_subscription_id: 'ws' }]])
      assert.deepEqual((await post('/api/v1/events', { event: ev(id, extra) })).body.error_details, duplicate, `${id} (kill: ${kill})`);
    const batch = await post('/api/v1/events/batch', { events: [ev('y1'), ev('x6', { timestamp: T })] });
    assert.equal(batch.status, 422);
    assert.deepEqual(batch.body.error_details, { 0: duplicate });
    assert.equal((await ok(await t.api('/api/v1/events/x4').then(async (r) => ({ status: r.status, body: await r.json() })))).event.lago_subscription_id, s);
  }
  assert.equal(await t.seats(), carried); // counted again as when it arrived
  // the termination instant is still the ended subscription's
  assert.equal((await ok(await post('/api/v1/events', { event: ev('x7', { timestamp: T }) }))).event.lago_subscription_id, s);
});
