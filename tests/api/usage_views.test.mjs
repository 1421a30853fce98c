// Current usage read without the writer (engine/usage_view): on an organization on the real
// clock, reads are answered from the view the writer published, and a view is never behind
// an acknowledgement: each client's read after its own 200 counts exactly its events while
// others ingest at the same time; a plan edit, a termination or another customer's name are
// never answered from a stale view.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

const SUBSCRIPTIONS = 6;
let t;
before(async () => {
  t = await startWithOrg();
  const post = async (path, body) => {
    const r = await t.api(path, { method: 'POST', body });
    const text = await r.text();
    assert.ok(r.status < 300, `${path}: ${r.status} ${text}`);
    return JSON.parse(text);
  };
  const bm = await post('/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' } });
  await post('/api/v1/plans', { plan: { code: 'metered', name: 'Metered', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: bm.billable_metric.lago_id, charge_model: 'standard', properties: { amount: '0.01' } },
  ] } });
  for (let i = 0; i < SUBSCRIPTIONS; i++) {
    await post('/api/v1/customers', { customer: { external_id: `c${i}`, name: `Customer ${i}` } });
    await post('/api/v1/subscriptions', { subscription: { external_customer_id: `c${i}`, plan_code: 'metered', external_id: `s${i}` } });
  }
});
after(async () => { await t.cleanup(); });

const read = (customer, sub) => t.api(`/api/v1/customers/${customer}/current_usage?external_subscription_id=${sub}`);
const usageOf = async (i) => {
  const r = await read(`c${i}`, `s${i}`);
  assert.equal(r.status, 200);
  return (await r.json()).customer_usage;
};
const viewAnswers = async () => {
  const m = await (await fetch(`${t.url}/metrics`)).text();
  return Number(/^tally_usage_view_answers_total (\d+)$/m.exec(m)[1]);
};
let n = 0;
const send = async (i, count) => {
  const events = Array.from({ length: count }, () => ({ transaction_id: `v${n++}`, external_subscription_id: `s${i}`, code: 'calls' }));
  const r = await t.api('/api/v1/events/batch', { method: 'POST', body: { events } });
  assert.equal(r.status, 200, await r.text());
};

test('every read after a 200 counts exactly the acknowledged events, while others ingest', async () => {
  const answeredBefore = await viewAnswers();
  await Promise.all(Array.from({ length: SUBSCRIPTIONS }, async (_, i) => {
    assert.equal((await usageOf(i)).charges_usage[0].events_count, 0);
    for (let round = 1; round <= 25; round++) {
      await send(i, 10);
      const u = await usageOf(i);
      assert.equal(u.charges_usage[0].events_count, 10 * round, `s${i} round ${round}`);
      assert.equal(u.amount_cents, 10 * round);
    }
  }));
  // the reads did not all go through the writer: the views answered most of them
  assert.ok((await viewAnswers()) - answeredBefore >= SUBSCRIPTIONS * 20);
});

test("another customer's name is not answered from the subscription's view", async () => {
  await usageOf(1);
  const r = await read('c2', 's1');
  assert.equal(r.status, 404);
  assert.equal((await r.json()).code, 'subscription_not_found');
  assert.equal((await usageOf(1)).charges_usage[0].events_count, 250);
});

test('a plan edit prices the next read at once', async () => {
  assert.equal((await usageOf(3)).amount_cents, 250);
  const plan = (await (await t.api('/api/v1/plans/metered')).json()).plan;
  const charges = plan.charges.map((c) => ({ id: c.lago_id, billable_metric_id: c.lago_billable_metric_id, charge_model: 'standard', properties: { amount: '0.02' } }));
  const r = await t.api('/api/v1/plans/metered', { method: 'PUT', body: { plan: { charges } } });
  assert.equal(r.status, 200, await r.text());
  assert.equal((await usageOf(3)).amount_cents, 500);
});

test('a terminated subscription is not answered from its view', async () => {
  assert.equal((await usageOf(5)).charges_usage[0].events_count, 250);
  const r = await t.api('/api/v1/subscriptions/s5', { method: 'DELETE' });
  assert.equal(r.status, 200, await r.text());
  const after = await read('c5', 's5');
  assert.equal(after.status, 404);
  assert.equal((await after.json()).code, 'subscription_not_found');
});

test('views are rebuilt after a restart, from the stored events', async () => {
  const before = await usageOf(0);
  await t.restart({ kill: true });
  assert.deepEqual(await usageOf(0), before);
  await send(0, 1);
  assert.equal((await usageOf(0)).charges_usage[0].events_count, 251);
});

// The audit's sequence (test clock): s1 upgraded on Jan 10 keeps its external id; a late
// event of Jan 3 then lands on the ended subscription. The batch touched that subscription,
// whose usage shares the view's key (organization, external id): renewing "its" view must
// not put the ended subscription's answer where the live one's was.
test('a late event for an ended subscription leaves the view of the live one', async () => {
  const c = await startWithOrg(['--test-clock', '2026-01-01T00:00:00Z']);
  try {
    const call = async (method, path, body) => {
      const r = await c.api(path, { method, body });
      const text = await r.text();
      assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${text}`);
      return JSON.parse(text);
    };
    const bm = await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' } });
    for (const [code, amount_cents, amount] of [['a', 100, '1'], ['b', 200, '2']])
      await call('POST', '/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents, amount_currency: 'USD', charges: [
        { billable_metric_id: bm.billable_metric.lago_id, charge_model: 'standard', properties: { amount } },
      ] } });
    const subscribe = (plan_code) => call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c1', plan_code, external_id: 's1' } });
    const old = (await subscribe('a')).subscription;
    await call('POST', '/api/v1/test_clock/advance', { test_clock: { to: '2026-01-10T00:00:00Z' } });
    const jan = (day) => Date.parse(`2026-01-0${day}T00:00:00Z`) / 1000;
    const event = (transaction_id, extra = {}) => call('POST', '/api/v1/events', { event: { transaction_id, external_subscription_id: 's1', code: 'calls', ...extra } });
    for (let i = 0; i < 3; i++) await event(`early${i}`, { timestamp: jan(2) });
    const live = (await subscribe('b')).subscription;
    assert.notEqual(live.lago_id, old.lago_id);
    const usage = async () => (await call('GET', '/api/v1/customers/c1/current_usage?external_subscription_id=s1')).customer_usage;
    const expectLive = (u, events, what) => {
      assert.equal(u.from_datetime, '2026-01-10T00:00:00Z', what);
      assert.equal(u.to_datetime, '2026-01-31T23:59:59Z', what);
      assert.equal(u.charges_usage[0].events_count, events, what);
      assert.equal(u.amount_cents, 200 * events, what);
    };
    expectLive(await usage(), 0, 'after the upgrade'); // the writer answers; this is the view
    const late = await event('late', { timestamp: jan(3) });
    assert.equal(late.event.lago_subscription_id, old.lago_id);
    expectLive(await usage(), 0, 'after the late event');
    expectLive(await usage(), 0, 'read again');
    await event('now');
    expectLive(await usage(), 1, 'after an event of the live subscription');
  } finally {
    await c.cleanup();
  }
});
