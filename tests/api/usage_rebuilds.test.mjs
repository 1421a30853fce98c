// What live usage reads back from the store, and when (/metrics counts the builds and the
// events they read).
//
// A refused command is taken back out of the live usages it touched in memory, not by reading
// the subscription's events back from the store (an answer read after a refusal may be the
// view published before it, so each test also takes an event after the refusal): before this, a 20-event batch refused at its
// last event (a duplicate, or a 402) rebuilt the usage once per event, each rebuild reading
// every event of the period back, and stalled the writer for everyone (3-4 s at 50,000
// events). States that own memory (unique counts, sums kept for the percentage model) are
// still rebuilt, once per command.
//
// A catalog write reprices every usage: charges whose aggregation states it cannot change (a
// price, a tax, a metric's name) keep them instead of reading the period's events back (55 ms a
// catalog write at 200,000 events, now 6 ms); a change to what a metric counts reads back the
// events of the usages that have charges on it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createOrg, newDataDir, startTallyd, startWithOrg } from '../lib/tallyd.mjs';

let t;
const metric = {};
const post = async (path, body) => t.api(path, { method: 'POST', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const PERIOD_EVENTS = 300;

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-03-10T12:00:00Z']);
  for (const bm of [
    { code: 'tokens', name: 'Tokens', aggregation_type: 'sum_agg', field_name: 'n' },
    { code: 'users', name: 'Users', aggregation_type: 'unique_count_agg', field_name: 'user' },
    { code: 'seats', name: 'Seats', aggregation_type: 'sum_agg', field_name: 'n', recurring: true },
    { code: 'members', name: 'Members', aggregation_type: 'unique_count_agg', field_name: 'who', recurring: true },
  ]) metric[bm.code] = (await ok(await post('/api/v1/billable_metrics', { billable_metric: bm }))).billable_metric.lago_id;
  const charges = Object.keys(metric).map((code) => ({ billable_metric_id: metric[code], charge_model: 'standard', properties: { amount: '1' } }));
  await ok(await post('/api/v1/plans', { plan: { code: 'p', name: 'p', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges } }));
  for (const c of ['sum', 'unique', 'hard', 'both', 'late', 'club']) {
    await ok(await post('/api/v1/customers', { customer: { external_id: c, currency: 'USD' } }));
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'p', external_id: c, subscription_at: '2026-03-01T00:00:00Z' } }));
  }
});
after(async () => { await t.cleanup(); });

let n = 0;
const ev = (sub, code, properties) => ({ transaction_id: `e${n++}`, external_subscription_id: sub, code, properties });
const batch = (events) => post('/api/v1/events/batch', { events });
const fill = async (sub, code, make) => {
  for (let i = 0; i < PERIOD_EVENTS; i += 100)
    await ok(await batch(Array.from({ length: 100 }, (_, k) => ev(sub, code, make(i + k)))));
};
const usage = async (sub) => (await ok(await t.api(`/api/v1/customers/${sub}/current_usage?external_subscription_id=${sub}`))).customer_usage;
const counters = async () => {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  const read = (name) => Number(text.match(new RegExp(`^${name} (\\d+)$`, 'm'))[1]);
  return { builds: read('tally_usage_builds_total'), read: read('tally_usage_events_read_total') };
};
const since = async (was) => { const now = await counters(); return { builds: now.builds - was.builds, read: now.read - was.read }; };

// 49 new events then one whose transaction id is already stored: refused at index 49.
const refusedAtLast = async (sub, code, make) => {
  const first = ev(sub, code, make(0));
  await ok(await batch([first]));
  const events = Array.from({ length: 49 }, (_, k) => ev(sub, code, make(k + 1)));
  const r = await batch([...events, { ...first }]);
  assert.equal(r.status, 422);
  assert.deepEqual((await r.json()).error_details, { 49: { transaction_id: ['value_already_exist'] } });
};

test('a refused batch on a sum leaves its usage as it was without reading a stored event', async () => {
  await fill('sum', 'tokens', () => ({ n: 2 }));
  await refusedAtLast('sum', 'tokens', () => ({ n: 2 })); // one accepted event first
  const before = await usage('sum');
  const was = await counters();
  for (let i = 0; i < 3; i++) await refusedAtLast('sum', 'tokens', () => ({ n: 5 }));
  assert.deepEqual(await since(was), { builds: 0, read: 0 });
  const after = await usage('sum');
  assert.equal(after.charges_usage.find((c) => c.billable_metric.code === 'tokens').units, String((PERIOD_EVENTS + 1) * 2 + 3 * 5) + '.0');
  assert.equal(after.amount_cents - before.amount_cents, 1500); // the three accepted firsts only
  // and the next batch counts on top of exactly that
  await ok(await batch([ev('sum', 'tokens', { n: 1 })]));
  assert.equal((await usage('sum')).amount_cents, after.amount_cents + 100);
});

test('a unique count is rebuilt once for a refused batch, not once per event', async () => {
  await fill('unique', 'users', (i) => ({ user: `u${i}` }));
  const was = await counters();
  const r = await batch([...Array.from({ length: 49 }, (_, k) => ev('unique', 'users', { user: `new${k}` })), ev('unique', 'users', { user: 'x', operation_type: 'rename' })]);
  assert.equal(r.status, 422);
  assert.deepEqual(await since(was), { builds: 1, read: PERIOD_EVENTS });
  assert.equal((await usage('unique')).charges_usage.find((c) => c.billable_metric.code === 'users').units, `${PERIOD_EVENTS}.0`);
});

test('a batch refused by a hard limit (402) is taken back in memory, wallet and usage alike', async () => {
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'hard', currency: 'USD', rate_amount: '1', name: 'W', granted_credits: '5', limit: 'hard' } }))).wallet;
  await fill('hard', 'tokens', () => ({ n: 0 }));
  await ok(await batch([ev('hard', 'tokens', { n: 3 })]));
  const before = await usage('hard');
  const was = await counters();
  const r = await batch(Array.from({ length: 30 }, () => ev('hard', 'tokens', { n: 1 })));
  assert.equal(r.status, 402);
  assert.deepEqual(await since(was), { builds: 0, read: 0 });
  assert.deepEqual(await usage('hard'), before);
  assert.equal((await ok(await t.api(`/api/v1/wallets/${w.lago_id}`))).wallet.balance_cents, 200);
  await ok(await batch([ev('hard', 'tokens', { n: 2 })])); // exactly what is left
  assert.equal((await ok(await t.api(`/api/v1/wallets/${w.lago_id}`))).wallet.balance_cents, 0);
  assert.equal((await usage('hard')).charges_usage.find((c) => c.billable_metric.code === 'tokens').units, '5.0');
});

test('a refused batch over two subscriptions: the sum in memory, the unique count from the store', async () => {
  await fill('both', 'users', (i) => ({ user: `b${i}` }));
  await ok(await batch([ev('sum', 'tokens', { n: 1 })]));
  const sumBefore = await usage('sum');
  const bothBefore = await usage('both');
  const was = await counters();
  const r = await batch([ev('sum', 'tokens', { n: 7 }), ev('both', 'users', { user: 'nobody-yet' }), ev('both', 'tokens', { n: 3 }), ev('both', 'users', { user: 'x', operation_type: 'rename' })]);
  assert.equal(r.status, 422);
  assert.deepEqual(await since(was), { builds: 1, read: PERIOD_EVENTS });
  assert.deepEqual(await usage('sum'), sumBefore);
  assert.deepEqual(await usage('both'), bothBefore);
  await ok(await batch([ev('sum', 'tokens', { n: 1 }), ev('both', 'users', { user: 'later' })]));
  assert.equal((await usage('sum')).amount_cents, sumBefore.amount_cents + 100);
  assert.equal((await usage('both')).amount_cents, bothBefore.amount_cents + 100);
});

test('a refused late event of a recurring metric leaves nothing carried', async () => {
  const first = ev('late', 'seats', { n: 4 });
  await ok(await batch([first]));
  await ok(await post('/api/v1/test_clock/advance', { test_clock: { to: '2026-04-03T00:00:00Z' } }));
  const before = await usage('late');
  assert.equal(before.charges_usage.find((c) => c.billable_metric.code === 'seats').units, '4.0');
  const was = await counters();
  const late = { ...ev('late', 'seats', { n: 10 }), timestamp: Date.parse('2026-03-20T00:00:00Z') / 1000 };
  const r = await batch([late, ev('late', 'seats', { n: 1 }), { ...first }]);
  assert.equal(r.status, 422);
  assert.equal((await since(was)).read, 0);
  assert.deepEqual(await usage('late'), before);
  // an accepted event renews the answer from memory: 4 carried and 1, nothing of the refusal
  await ok(await batch([ev('late', 'seats', { n: 1 })]));
  const after = await usage('late');
  assert.equal(after.charges_usage.find((c) => c.billable_metric.code === 'seats').units, '5.0');
  await t.restart();
  assert.deepEqual(await usage('late'), after);
  // the start's own read of the stored events counts too (an audit found 0 after it)
  const scanned = Number(t.server.stderr().match(/(\d+) stored events read back/)[1]);
  assert.ok(scanned > 0);
  assert.ok((await counters()).read >= scanned, 'the start scan counted');
});

test('a refused late event carried into a unique count leaves no reference: the rebuild reads the store, not the states', async () => {
  const first = ev('club', 'members', { who: 'ann' });
  await ok(await batch([first])); // in April (the clock moved on above)
  const units = async () => (await usage('club')).charges_usage.find((c) => c.billable_metric.code === 'members').units;
  assert.equal(await units(), '1.0');
  const late = { ...ev('club', 'members', { who: 'zed' }), timestamp: Date.parse('2026-03-20T00:00:00Z') / 1000 };
  const r = await batch([late, { ...first }]);
  assert.equal(r.status, 422);
  await ok(await batch([ev('club', 'members', { who: 'bob' })]));
  assert.equal(await units(), '2.0'); // ann and bob; zed was refused
  const after = await usage('club');
  await t.restart();
  assert.deepEqual(await usage('club'), after);
});

test('a price or tax edit reprices every usage without reading an event back; a metric edit reads its own', async () => {
  await fill('sum', 'tokens', () => ({ n: 1 }));
  const tokens = async () => (await usage('sum')).charges_usage.find((c) => c.billable_metric.code === 'tokens');
  const before = await tokens();
  let was = await counters();
  await ok(await post('/api/v1/taxes', { tax: { code: 'vat', name: 'VAT', rate: '20', applied_to_organization: true } }));
  let d = await since(was);
  assert.ok(d.builds >= 3, JSON.stringify(d)); // every usage in the book was built again
  assert.equal(d.read, 0);
  const taxed = await usage('sum');
  assert.equal(taxed.taxes_amount_cents, Math.round(taxed.amount_cents * 0.2));
  assert.deepEqual(await tokens(), before);
  // a new price: the same units, another amount, nothing read
  const plan = (await ok(await t.api('/api/v1/plans/p'))).plan;
  const charges = plan.charges.map((c) => ({ id: c.lago_id, billable_metric_id: c.lago_billable_metric_id, charge_model: c.charge_model, properties: c.billable_metric_code === 'tokens' ? { amount: '2' } : c.properties }));
  was = await counters();
  await ok(await t.api('/api/v1/plans/p', { method: 'PUT', body: { plan: { charges } } }));
  d = await since(was);
  assert.equal(d.read, 0, JSON.stringify(d));
  assert.equal((await tokens()).units, before.units);
  assert.equal((await tokens()).amount_cents, before.amount_cents * 2);
  // a metric's name or rounding reads nothing either: states do not depend on them
  const users = (await ok(await t.api('/api/v1/billable_metrics/users'))).billable_metric;
  was = await counters();
  await ok(await t.api('/api/v1/billable_metrics/users', { method: 'PUT', body: { billable_metric: { ...users, name: 'People', rounding_function: 'ceil' } } }));
  assert.equal((await since(was)).read, 0);
  // the field it counts: its charges' states are built again from the events, the sums' not
  was = await counters();
  await ok(await t.api('/api/v1/billable_metrics/users', { method: 'PUT', body: { billable_metric: { ...users, field_name: 'person' } } }));
  d = await since(was);
  // the book's usages this period since the restart: 'sum' (its fill), 'late' (1), 'club' (2)
  assert.equal(d.read, PERIOD_EVENTS + 1 + 2, JSON.stringify(d));
  assert.deepEqual(await tokens(), { ...before, amount_cents: before.amount_cents * 2 });
  const after = await usage('sum');
  await t.restart();
  assert.deepEqual(await usage('sum'), after);
});

test('a metric edit that many stored events depend on rebuilds the book with one scan', async () => {
  // a server of its own: batches of 10,000, so that the scan's threshold (65,536 events to read
  // back, USAGE_RESCAN_MIN_EVENTS) is passed quickly
  const dataDir = newDataDir();
  const key = createOrg(dataDir, 'Big', ['--test-clock', '2026-03-10T12:00:00Z']);
  let server = await startTallyd(dataDir, ['--max-batch', '10000']);
  const call = async (method, path, body) => {
    const r = await fetch(server.url + path, { method, headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' }, body: body && JSON.stringify(body) });
    const b = await r.json();
    assert.equal(r.status, 200, JSON.stringify(b));
    return b;
  };
  try {
    const m = (await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'tokens', name: 'Tokens', aggregation_type: 'sum_agg', field_name: 'input' } })).billable_metric;
    await call('POST', '/api/v1/plans', { plan: { code: 'p', name: 'p', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [{ billable_metric_id: m.lago_id, charge_model: 'standard', properties: { amount: '0.01' } }] } });
    for (const s of ['a', 'b'])
      await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: s, plan_code: 'p', external_id: s, subscription_at: '2026-03-01T00:00:00Z' } });
    for (let k = 0; k < 7; k++)
      await call('POST', '/api/v1/events/batch', { events: Array.from({ length: 10000 }, (_, i) => ({ transaction_id: `big-${k}-${i}`, external_subscription_id: i % 2 ? 'a' : 'b', code: 'tokens', properties: { input: 1, output: 3 } })) });
    const units = async (s) => (await call('GET', `/api/v1/customers/${s}/current_usage?external_subscription_id=${s}`)).customer_usage.charges_usage[0].units;
    assert.equal(await units('a'), '35000.0');
    const text = async () => (await fetch(`${server.url}/metrics`)).text();
    const read = async () => Number((await text()).match(/^tally_usage_events_read_total (\d+)$/m)[1]);
    const was = await read();
    await call('PUT', '/api/v1/billable_metrics/tokens', { billable_metric: { field_name: 'output' } });
    assert.equal(await read() - was, 70000); // the scan, not 70,000 reads by id
    assert.equal(await units('a'), '105000.0');
    assert.equal(await units('b'), '105000.0');
    await server.stop();
    server = await startTallyd(dataDir, ['--max-batch', '10000']);
    assert.equal(await units('a'), '105000.0');
  } finally {
    await server.stop();
  }
});

test("a customer's new time zone moves its live usage's period, west or east", async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'zoned', currency: 'USD' } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'zoned', plan_code: 'p', external_id: 'zoned', subscription_at: '2026-03-01T00:00:00Z' } }));
  // the clock is in April (above): one event late on the last UTC day of March, one in April
  await ok(await batch([{ ...ev('zoned', 'tokens', { n: 10 }), timestamp: Date.parse('2026-03-31T20:00:00Z') / 1000 }, ev('zoned', 'tokens', { n: 1 })]));
  const tokens = async () => (await usage('zoned')).charges_usage.find((c) => c.billable_metric.code === 'tokens').units;
  assert.equal(await tokens(), '1.0');
  const zone = async (timezone) => ok(await post('/api/v1/customers', { customer: { external_id: 'zoned', currency: 'USD', timezone } }));
  await zone('Asia/Tokyo'); // April starts on March 31 at 15:00 UTC there: the late event is April's
  await ok(await batch([ev('zoned', 'tokens', { n: 1 })]));
  assert.equal((await usage('zoned')).from_datetime, '2026-03-31T15:00:00Z');
  assert.equal(await tokens(), '12.0');
  await zone('America/Los_Angeles'); // and on April 1 at 07:00 UTC there: it is March's again
  await ok(await batch([ev('zoned', 'tokens', { n: 1 })]));
  assert.equal((await usage('zoned')).from_datetime, '2026-04-01T07:00:00Z');
  assert.equal(await tokens(), '3.0');
  const live = await usage('zoned');
  await t.restart();
  assert.deepEqual(await usage('zoned'), live);
});

test('a new period starts its recurring charges from the last period\'s states, reading nothing back', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'roll', currency: 'USD' } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'roll', plan_code: 'p', external_id: 'roll', subscription_at: '2026-03-01T00:00:00Z' } }));
  await ok(await batch([
    ...Array.from({ length: 50 }, (_, i) => ev('roll', 'seats', { n: i % 3 })),
    ...Array.from({ length: 20 }, (_, i) => ev('roll', 'members', { who: `m${i % 7}`, operation_type: i % 5 === 4 ? 'remove' : 'add' })),
    { ...ev('roll', 'seats', { n: 100 }), timestamp: Date.parse('2026-03-15T00:00:00Z') / 1000 }, // late: carried
  ]));
  const april = await usage('roll');
  const units = (u, code) => u.charges_usage.find((c) => c.billable_metric.code === code).units;
  assert.equal(units(april, 'seats'), `${100 + 49}.0`);
  await ok(await post('/api/v1/test_clock/advance', { test_clock: { to: '2026-05-02T00:00:00Z' } }));
  const was = await counters();
  await ok(await batch([ev('roll', 'tokens', { n: 1 })])); // May's first event opens the period
  assert.deepEqual(await since(was), { builds: 1, read: 0 });
  const may = await usage('roll');
  assert.equal(may.from_datetime, '2026-05-01T00:00:00Z');
  assert.equal(units(may, 'seats'), units(april, 'seats'));
  assert.equal(units(may, 'members'), units(april, 'members'));
  await t.restart(); // built from the store's index of recurring events instead: the same
  assert.deepEqual(await usage('roll'), may);
});
