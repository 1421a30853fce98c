// A billable metric deleted and made again under the same code is a new metric with a history
// of its own: the deleted one's events no longer count anywhere money is decided (current
// usage, wallet debits, holds, estimate_fees, a recurring metric's carried value) nor in any
// rebuild of usage from the stored events (a re-pricing that reads them back, a restart with
// its snapshot, a SIGKILL, a start that reads every event). Lago's BillableMetrics::DestroyService
// runs DeleteEventsJob, which marks the metric's events deleted
// (app/jobs/billable_metrics/delete_events_job.rb). Found by an audit: a new metric `calls`
// showed the deleted one's five units at once, and its first event debited the wallet for six.
// The deleted metric's open holds are voided with it, as a subscription's are when it ends.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startWithOrg } from '../lib/tallyd.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

let t;
const post = (path, body) => t.api(path, { method: 'POST', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const get = async (path) => ok(await t.api(path));
const metric = async (bm) => (await ok(await post('/api/v1/billable_metrics', { billable_metric: bm }))).billable_metric.lago_id;
const charge = (id, extra = {}) => ({ billable_metric_id: id, charge_model: 'standard', properties: { amount: '1' }, ...extra });
const event = (sub, code, transaction_id, properties = {}) =>
  post('/api/v1/events', { event: { transaction_id, external_subscription_id: sub, code, properties } });
const usage = async (cust, sub) => {
  const u = (await get(`/api/v1/customers/${cust}/current_usage?external_subscription_id=${sub}`)).customer_usage;
  return { amount: u.amount_cents, taxes: u.taxes_amount_cents, charges: u.charges_usage.map((c) => [c.billable_metric.code, c.units, c.amount_cents]) };
};
const wallet = async (id) => {
  const w = (await get(`/api/v1/wallets/${id}`)).wallet;
  return { balance: w.balance_cents, ongoing: w.ongoing_balance_cents, consumed: w.consumed_credits };
};
const advance = async (to) => ok(await post('/api/v1/test_clock/advance', { test_clock: { to } }));
// Every way tallyd starts again: a clean stop (its snapshot), a SIGKILL (the last snapshot and
// the events after it), and a start without a snapshot (every stored event read back).
const restarts = [
  ['clean stop', {}],
  ['SIGKILL', { kill: true }],
  ['no snapshot', { kill: true, between: (dir) => rmSync(join(dir, 'events.snapshot'), { force: true }) }],
];

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-01-01T00:00:00Z']);
});
after(async () => { await t.cleanup(); });

test('a metric made again under a deleted one\'s code counts none of its events', async () => {
  await ok(await post('/api/v1/taxes', { tax: { name: 'VAT', code: 'vat', rate: '20' } }));
  const calls = await metric({ name: 'Calls', code: 'calls', aggregation_type: 'count_agg' });
  await ok(await post('/api/v1/plans', { plan: { name: 'P1', code: 'p1', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', tax_codes: ['vat'], charges: [charge(calls)] } }));
  await ok(await post('/api/v1/customers', { customer: { external_id: 'c1', currency: 'EUR' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'c1', rate_amount: '1', currency: 'EUR', granted_credits: '100' } }))).wallet.lago_id;
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'c1', plan_code: 'p1', external_id: 's1' } }));
  for (let i = 1; i <= 5; i++) await ok(await event('s1', 'calls', `t${i}`));
  assert.deepEqual(await usage('c1', 's1'), { amount: 500, taxes: 100, charges: [['calls', '5.0', 500]] });
  assert.equal((await wallet(w)).balance, 10000 - 600);

  await ok(await t.api('/api/v1/billable_metrics/calls', { method: 'DELETE' }));
  assert.deepEqual(await usage('c1', 's1'), { amount: 0, taxes: 0, charges: [] });
  assert.equal((await wallet(w)).balance, 10000);

  const again = await metric({ name: 'Calls v2', code: 'calls', aggregation_type: 'count_agg' });
  await ok(await t.api('/api/v1/plans/p1', { method: 'PUT', body: { plan: { charges: [charge(again)] } } }));
  assert.deepEqual(await usage('c1', 's1'), { amount: 0, taxes: 0, charges: [['calls', '0.0', 0]] });
  // a hold prices the step its event would make: one call, not six
  const hold = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 's1', code: 'calls' } }))).authorization;
  assert.equal(hold.amount_cents, 120);
  await ok(await post(`/api/v1/authorizations/${hold.lago_id}/void`, {}));

  await ok(await event('s1', 'calls', 't100'));
  const one = { amount: 100, taxes: 20, charges: [['calls', '1.0', 100]] };
  assert.deepEqual(await usage('c1', 's1'), one);
  assert.deepEqual(await wallet(w), { balance: 10000 - 120, ongoing: 10000 - 120, consumed: '1.2' });

  // A re-sent transaction id of the deleted metric's is still a duplicate (Lago's unique index
  // on organization, external subscription id and transaction id keeps deleted events too):
  // refused, and nothing counts it.
  const dup = await event('s1', 'calls', 't3');
  assert.equal(dup.status, 422);
  assert.deepEqual((await dup.json()).error_details, { transaction_id: ['value_already_exist'] });
  // GET /events no longer lists them, nor finds them (Lago's default scope on deleted_at):
  // the new metric's event alone
  const listed = (await get('/api/v1/events?code=calls')).events.map((e) => e.transaction_id);
  assert.deepEqual(listed, ['t100']);
  assert.equal((await t.api('/api/v1/events/t2')).status, 404);

  // A change of what the charge reads of an event reads the period's events back: still one.
  await ok(await t.api('/api/v1/billable_metrics/calls', { method: 'PUT', body: { billable_metric: { filters: [{ key: 'region', values: ['eu', 'us'] }] } } }));
  assert.deepEqual(await usage('c1', 's1'), one);
  // and a price edit hands the state over
  await ok(await t.api('/api/v1/plans/p1', { method: 'PUT', body: { plan: { charges: [charge(again, { properties: { amount: '2' } })] } } }));
  assert.deepEqual(await usage('c1', 's1'), { amount: 200, taxes: 40, charges: [['calls', '1.0', 200]] });
  await ok(await event('s1', 'calls', 't101'));
  assert.deepEqual(await usage('c1', 's1'), { amount: 400, taxes: 80, charges: [['calls', '2.0', 400]] });
  assert.equal((await wallet(w)).balance, 10000 - 480);

  let units = 2;
  for (const [how, opts] of restarts) {
    await t.restart(opts);
    const now = { amount: 200 * units, taxes: 40 * units, charges: [['calls', `${units}.0`, 200 * units]] };
    assert.deepEqual(await usage('c1', 's1'), now, how);
    assert.equal((await wallet(w)).balance, 10000 - 240 * units, how);
    // the next event debits its own step only
    await ok(await event('s1', 'calls', `after-${how.replace(/ /g, '-')}`));
    units++;
    assert.equal((await wallet(w)).balance, 10000 - 240 * units, how);
  }
  assert.equal(units, 5);
  await checkWalletLedger(t, w);
});

test('a recurring metric made again carries nothing of the deleted one\'s value', async () => {
  const seats = await metric({ name: 'Seats', code: 'seats', aggregation_type: 'sum_agg', field_name: 'n', recurring: true });
  await ok(await post('/api/v1/plans', { plan: { name: 'P2', code: 'p2', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [charge(seats)] } }));
  await ok(await post('/api/v1/customers', { customer: { external_id: 'c2', currency: 'EUR' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'c2', rate_amount: '1', currency: 'EUR', granted_credits: '100' } }))).wallet.lago_id;
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'c2', plan_code: 'p2', external_id: 's2' } }));
  await ok(await event('s2', 'seats', 'r1', { n: 5 }));
  await advance('2026-02-02T00:00:00Z');
  assert.deepEqual(await usage('c2', 's2'), { amount: 500, taxes: 0, charges: [['seats', '5.0', 500]] });
  assert.equal((await wallet(w)).balance, 10000 - 1000); // January's and February's seats

  await ok(await t.api('/api/v1/billable_metrics/seats', { method: 'DELETE' }));
  assert.deepEqual(await usage('c2', 's2'), { amount: 0, taxes: 0, charges: [] });
  assert.equal((await wallet(w)).balance, 10000 - 500); // February's given back
  const again = await metric({ name: 'Seats', code: 'seats', aggregation_type: 'sum_agg', field_name: 'n', recurring: true });
  await ok(await t.api('/api/v1/plans/p2', { method: 'PUT', body: { plan: { charges: [charge(again)] } } }));
  assert.deepEqual(await usage('c2', 's2'), { amount: 0, taxes: 0, charges: [['seats', '0.0', 0]] });
  // a late event of the deleted metric's time would be the new one's: none was sent; one of
  // the new metric's own, dated in January, carries in
  await ok(await event('s2', 'seats', 'r2', { n: 2 }));
  await ok(await post('/api/v1/events', { event: { transaction_id: 'r3', external_subscription_id: 's2', code: 'seats', properties: { n: 1 }, timestamp: Date.parse('2026-01-20T00:00:00Z') / 1000 } }));
  const feb = { amount: 300, taxes: 0, charges: [['seats', '3.0', 300]] };
  assert.deepEqual(await usage('c2', 's2'), feb);
  assert.equal((await wallet(w)).balance, 10000 - 800);

  for (const [how, opts] of restarts) {
    await t.restart(opts);
    assert.deepEqual(await usage('c2', 's2'), feb, how);
  }
  // March carries the new metric's three seats, and the period's settlement debits them alone
  await advance('2026-03-02T00:00:00Z');
  const mar = { amount: 300, taxes: 0, charges: [['seats', '3.0', 300]] };
  assert.deepEqual(await usage('c2', 's2'), mar);
  assert.equal((await wallet(w)).balance, 10000 - 1100);
  for (const [how, opts] of restarts) {
    await t.restart(opts);
    assert.deepEqual(await usage('c2', 's2'), mar, how);
    assert.equal((await wallet(w)).balance, 10000 - 1100, how);
  }
  await checkWalletLedger(t, w);
});

test('estimate_fees prices an event of the new metric from its own history', async () => {
  const tokens = await metric({ name: 'Tokens', code: 'tokens', aggregation_type: 'sum_agg', field_name: 'n' });
  const percentage = (id) => ({ billable_metric_id: id, charge_model: 'percentage', pay_in_advance: true, properties: { rate: '10', free_units_per_events: 2 } });
  await ok(await post('/api/v1/plans', { plan: { name: 'P4', code: 'p4', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [percentage(tokens)] } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'c4', plan_code: 'p4', external_id: 's4' } }));
  const estimate = async () => {
    const b = await ok(await post('/api/v1/events/estimate_fees', { event: { external_subscription_id: 's4', code: 'tokens', properties: { n: 100 } } }));
    return b.fees.map((f) => [f.item.code, f.amount_cents]);
  };
  assert.deepEqual(await estimate(), [['tokens', 0]]); // the first two events are free
  for (const id of ['k1', 'k2', 'k3']) await ok(await event('s4', 'tokens', id, { n: 100 }));
  assert.deepEqual(await estimate(), [['tokens', 1000]]);

  await ok(await t.api('/api/v1/billable_metrics/tokens', { method: 'DELETE' }));
  const again = await metric({ name: 'Tokens', code: 'tokens', aggregation_type: 'sum_agg', field_name: 'n' });
  await ok(await t.api('/api/v1/plans/p4', { method: 'PUT', body: { plan: { charges: [percentage(again)] } } }));
  assert.deepEqual(await estimate(), [['tokens', 0]]);
  await t.restart({ kill: true });
  assert.deepEqual(await estimate(), [['tokens', 0]]);
});

test('a deleted metric\'s open holds are released and voided with it', async () => {
  const gpu = await metric({ name: 'GPU', code: 'gpu', aggregation_type: 'count_agg' });
  await ok(await post('/api/v1/plans', { plan: { name: 'P3', code: 'p3', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [charge(gpu)] } }));
  await ok(await post('/api/v1/customers', { customer: { external_id: 'c3', currency: 'EUR' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'c3', rate_amount: '1', currency: 'EUR', granted_credits: '10' } }))).wallet.lago_id;
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'c3', plan_code: 'p3', external_id: 's3' } }));
  const holds = [];
  for (let i = 0; i < 2; i++)
    holds.push((await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 's3', code: 'gpu', expires_in: 86400 } }))).authorization.lago_id);
  assert.deepEqual(await wallet(w), { balance: 1000, ongoing: 1000 - 200, consumed: '0.0' });

  await ok(await t.api('/api/v1/billable_metrics/gpu', { method: 'DELETE' }));
  assert.deepEqual(await wallet(w), { balance: 1000, ongoing: 1000, consumed: '0.0' });
  const voided = async () => {
    for (const id of holds) {
      const h = (await get(`/api/v1/authorizations/${id}`)).authorization;
      assert.deepEqual([h.status, h.held_amount_cents], ['voided', 0]);
      const capture = await post(`/api/v1/authorizations/${id}/capture`, {});
      assert.equal(capture.status, 422);
      assert.deepEqual((await capture.json()).error_details, { authorization: ['voided'] });
    }
  };
  await voided();
  // a metric made again under the code does not bring them back
  const again = await metric({ name: 'GPU', code: 'gpu', aggregation_type: 'count_agg' });
  await ok(await t.api('/api/v1/plans/p3', { method: 'PUT', body: { plan: { charges: [charge(again)] } } }));
  await voided();
  await t.restart({ kill: true });
  await voided();
  assert.deepEqual(await wallet(w), { balance: 1000, ongoing: 1000, consumed: '0.0' });
  const entries = await checkWalletLedger(t, w);
  assert.equal(entries.filter((e) => e.cause === 'release' && e.account === 'customer_held_credits').length, 2);
});

// Found by an audit of the fix above: a metric no plan charges takes events, is renamed (which
// only such a metric may be), and a new metric made with the old code counted them once a plan
// charged it. The old code's events are of no metric after a rename, as after a deletion.
test('a metric made under a renamed one\'s old code counts none of its events', async () => {
  const other = await metric({ name: 'Other', code: 'other_r', aggregation_type: 'count_agg' });
  await ok(await post('/api/v1/plans', { plan: { name: 'PR', code: 'pr', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [charge(other)] } }));
  await ok(await post('/api/v1/customers', { customer: { external_id: 'cr', currency: 'EUR' } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'cr', plan_code: 'pr', external_id: 'sr' } }));
  await metric({ name: 'Renamed', code: 'renamed', aggregation_type: 'count_agg' });
  for (let i = 1; i <= 3; i++) await ok(await event('sr', 'renamed', `rn${i}`)); // no charge: stored only
  await ok(await t.api('/api/v1/billable_metrics/renamed', { method: 'PUT', body: { billable_metric: { code: 'renamed_v1' } } }));
  const again = await metric({ name: 'Renamed again', code: 'renamed', aggregation_type: 'count_agg' });
  await ok(await t.api('/api/v1/plans/pr', { method: 'PUT', body: { plan: { charges: [charge(other), charge(again)] } } }));
  const counted = async () => (await usage('cr', 'sr')).charges.find(([code]) => code === 'renamed');
  assert.deepEqual(await counted(), ['renamed', '0.0', 0]);
  for (const [what, opts] of restarts) {
    await t.restart(opts);
    assert.deepEqual(await counted(), ['renamed', '0.0', 0], what);
  }
  await ok(await event('sr', 'renamed', 'rn_new'));
  assert.deepEqual(await counted(), ['renamed', '1.0', 100]);
});

// Lago's Event has `default_scope -> { kept }` (deleted_at IS NULL), and DeleteEventsJob sets
// deleted_at on a deleted metric's events: GET /events (any filter) and GET /events/:id no
// longer show them. Tally kept listing them (a known difference in docs/API.md). A code
// change (BillableMetrics::UpdateService) touches no event in Lago: the old code's events stay
// listed. The unique index on transaction ids keeps deleted events, so a retry is still refused.
test('a deleted metric\'s events are neither listed nor found; a renamed one\'s still are', async () => {
  const hid = await metric({ name: 'Hidden', code: 'hid', aggregation_type: 'count_agg' });
  const kept = await metric({ name: 'Kept', code: 'kept_h', aggregation_type: 'count_agg' });
  await ok(await post('/api/v1/plans', { plan: { name: 'PH', code: 'ph', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [charge(hid), charge(kept)] } }));
  for (const [c, s] of [['ch', 'sh'], ['ch2', 'sh2']]) {
    await ok(await post('/api/v1/customers', { customer: { external_id: c, currency: 'EUR' } }));
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'ph', external_id: s } }));
  }
  const ev = (sub, code, transaction_id) => ({ transaction_id, external_subscription_id: sub, code, properties: {} });
  // the same transaction id on another subscription, of a metric that stays (stored first)
  await ok(await event('sh2', 'kept_h', 'dup_h'));
  // one batch mixes both codes (one stored block), then single events
  await ok(await post('/api/v1/events/batch', { events: [ev('sh', 'hid', 'h1'), ev('sh', 'kept_h', 'k1'), ev('sh', 'hid', 'h2')] }));
  await ok(await event('sh', 'hid', 'h3'));
  await ok(await event('sh', 'kept_h', 'k2'));
  await ok(await event('sh', 'hid', 'dup_h'));
  const ids = async (query) => {
    const b = await get(`/api/v1/events?${query}`);
    return [b.events.map((e) => e.transaction_id), b.meta.total_count];
  };
  assert.deepEqual(await ids('code=hid'), [['dup_h', 'h3', 'h2', 'h1'], 4]);
  assert.equal((await get('/api/v1/events/dup_h')).event.external_subscription_id, 'sh'); // the newest
  const [, before] = await ids('per_page=1');

  await ok(await t.api('/api/v1/billable_metrics/hid', { method: 'DELETE' }));
  const hidden = async (what) => {
    assert.deepEqual(await ids('code=hid'), [[], 0], what);
    assert.deepEqual(await ids('external_subscription_id=sh'), [['k2', 'k1'], 2], what);
    assert.deepEqual(await ids('external_subscription_id=sh&per_page=1&page=2'), [['k1'], 2], what);
    const all = await ids(`per_page=${before}`);
    assert.equal(all[1], before - 4, what);
    assert.equal(all[0].length, before - 4, what);
    assert.ok(!all[0].some((id) => /^h\d$/.test(id)), what);
    assert.deepEqual(all[0].slice(0, 3), ['k2', 'k1', 'dup_h'], what);
    // paging over the whole list skips them too: the page after k2 starts at k1
    assert.deepEqual(await ids('per_page=1&page=2'), [['k1'], before - 4], what);
    for (const id of ['h1', 'h2', 'h3']) {
      const r = await t.api(`/api/v1/events/${id}`);
      assert.equal(r.status, 404, `${what}: ${id}`);
      assert.deepEqual(await r.json(), { status: 404, error: 'Not Found', code: 'event_not_found' });
    }
    // the transaction id a live event of another subscription also has finds that one
    const dup = (await get('/api/v1/events/dup_h')).event;
    assert.deepEqual([dup.external_subscription_id, dup.code], ['sh2', 'kept_h'], what);
  };
  await hidden('deleted');
  // a metric made again under the code lists its own events only
  const again = await metric({ name: 'Hidden again', code: 'hid', aggregation_type: 'count_agg' });
  await ok(await t.api('/api/v1/plans/ph', { method: 'PUT', body: { plan: { charges: [charge(again), charge(kept)] } } }));
  // a retry of a deleted event is still a duplicate (Lago's unique index keeps deleted events)
  const retry = await event('sh', 'hid', 'h2');
  assert.equal(retry.status, 422);
  assert.deepEqual((await retry.json()).error_details, { transaction_id: ['value_already_exist'] });
  await ok(await event('sh', 'hid', 'h_new'));
  const after = async (what) => {
    assert.deepEqual(await ids('code=hid'), [['h_new'], 1], what);
    assert.equal((await get('/api/v1/events/h_new')).event.code, 'hid', what);
    assert.equal((await t.api('/api/v1/events/h1')).status, 404, what);
    assert.equal((await ids('per_page=1'))[1], before - 4 + 1, what);
  };
  await after('made again');
  for (const [what, opts] of restarts) {
    await t.restart(opts);
    await after(what);
  }

  // a rename keeps the old code's events listed and found, as Lago's code change does
  await metric({ name: 'Renamed', code: 'rnm_h', aggregation_type: 'count_agg' });
  for (const id of ['rh1', 'rh2']) await ok(await event('sh', 'rnm_h', id));
  await ok(await t.api('/api/v1/billable_metrics/rnm_h', { method: 'PUT', body: { billable_metric: { code: 'rnm_h2' } } }));
  assert.deepEqual(await ids('code=rnm_h'), [['rh2', 'rh1'], 2]);
  assert.equal((await get('/api/v1/events/rh1')).event.code, 'rnm_h');
  assert.equal((await ids('per_page=1'))[1], before - 4 + 3);
  // ... until a metric made later with that code is deleted: Lago's job discards every event
  // with the code, the renamed one's too
  await metric({ name: 'Renamed again', code: 'rnm_h', aggregation_type: 'count_agg' });
  await ok(await event('sh', 'rnm_h', 'rh3'));
  await ok(await t.api('/api/v1/billable_metrics/rnm_h', { method: 'DELETE' }));
  assert.deepEqual(await ids('code=rnm_h'), [[], 0]);
  assert.equal((await t.api('/api/v1/events/rh1')).status, 404);
  assert.equal((await ids('per_page=1'))[1], before - 4 + 1); // h_new
  await t.restart({ kill: true });
  assert.deepEqual(await ids('code=rnm_h'), [[], 0]);
  assert.equal((await ids('per_page=1'))[1], before - 4 + 1);
});
