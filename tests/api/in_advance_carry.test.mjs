// A pay-in-advance charge on a recurring metric is billed on the most its aggregate reached in
// the period, and a period starts from the units it carries as they stand at its start: the
// carried past is not a transient of the new period. A usage built from nothing (a start, a
// plan upgrade's new subscription, a clock moved over several periods) must price it as the
// live rollover from the previous period does. Found by an audit: after a restart, April showed
// March's peak (10 GB, 5 seats) for 2 GB and 1 seat carried, and the next event debited the
// wallet the difference; an upgrade's new subscription did the same without a restart.
// Late events timestamped in an earlier period still count in the order they came
// (docs/API.md, estimate_fees), before and after a restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

let t;
const metric = {};
const wallet = {};
const post = async (path, body) => t.api(path, { method: 'POST', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const seconds = (iso) => Date.parse(iso) / 1000;
const advance = async (to) => ok(await post('/api/v1/test_clock/advance', { test_clock: { to } }));
const balance = async (customer) => (await ok(await t.api(`/api/v1/wallets/${wallet[customer]}`))).wallet.balance_cents;
let n = 0;
const event = async (sub, code, properties, at) => ok(await post('/api/v1/events', { event: { transaction_id: `c${n++}`, external_subscription_id: sub, code, properties, timestamp: seconds(at) } }));
// [units, amount_cents] of each charge, by metric code
const usage = async (customer, sub) => Object.fromEntries((await ok(await t.api(`/api/v1/customers/${customer}/current_usage?external_subscription_id=${sub}`))).customer_usage.charges_usage.map((c) => [c.billable_metric.code, [c.units, c.amount_cents]]));
const subscribe = async (customer, plan_code, external_id) => ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: customer, plan_code, external_id, billing_time: 'calendar' } }));

const MARCH = '2026-03-10T12:00:00Z';

before(async () => {
  t = await startWithOrg(['--test-clock', MARCH]);
  for (const bm of [
    { code: 'gb', name: 'GB', aggregation_type: 'sum_agg', field_name: 'v', recurring: true },
    { code: 'seats', name: 'Seats', aggregation_type: 'unique_count_agg', field_name: 'u', recurring: true },
  ]) metric[bm.code] = (await ok(await post('/api/v1/billable_metrics', { billable_metric: bm }))).billable_metric.lago_id;
  const standard = (code, amount) => ({ billable_metric_id: metric[code], charge_model: 'standard', pay_in_advance: true, properties: { amount } });
  const graduated = { billable_metric_id: metric.gb, charge_model: 'graduated', pay_in_advance: true, properties: { graduated_ranges: [
    { from_value: 0, to_value: 5, per_unit_amount: '1', flat_amount: '2' }, { from_value: 6, to_value: null, per_unit_amount: '0.5', flat_amount: '0' }] } };
  const plan = async (code, amount_cents, charges) => ok(await post('/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents, amount_currency: 'USD', charges } }));
  await plan('m', 100, [standard('gb', '1'), standard('seats', '1')]);
  await plan('m2', 200, [standard('gb', '1'), standard('seats', '1')]);
  await plan('g', 100, [graduated]);
  await plan('g2', 200, [graduated]);
  for (const [customer, plan_code, sub, paid] of [['c1', 'm', 's1', true], ['c2', 'g', 's2', true], ['c3', 'm', 's3', false]]) {
    await ok(await post('/api/v1/customers', { customer: { external_id: customer, name: customer, currency: 'USD', timezone: 'UTC' } }));
    await subscribe(customer, plan_code, sub);
    if (paid) wallet[customer] = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: customer, currency: 'USD', rate_amount: '1', granted_credits: '10000' } }))).wallet.lago_id;
  }
  // March: gb peaks at 10 and ends at 2; seats peak at 5 and end at 1
  await event('s1', 'gb', { v: 10 }, MARCH);
  await event('s1', 'gb', { v: -8 }, MARCH);
  for (const u of ['a', 'b', 'c', 'd', 'e']) await event('s1', 'seats', { u }, MARCH);
  for (const u of ['b', 'c', 'd', 'e']) await event('s1', 'seats', { u, operation_type: 'remove' }, MARCH);
  // graduated: 4 + 3 - 2, a peak of 7 (800 cents) and 5 at the end (700)
  for (const v of [4, 3, -2]) await event('s2', 'gb', { v }, MARCH);
  // no wallet, no event after March: its usage is built again only in June
  await event('s3', 'gb', { v: 10 }, MARCH);
  await event('s3', 'gb', { v: -8 }, MARCH);
});
after(async () => { await t.cleanup(); });

test("a restart prices a period from the units it carried, as the live rollover does", async () => {
  assert.deepEqual(await usage('c1', 's1'), { gb: ['2.0', 1000], seats: ['1.0', 500] });
  assert.equal(await balance('c1'), 1000000 - 1500);
  await advance('2026-04-01T00:00:00Z');
  const april = { gb: ['2.0', 200], seats: ['1.0', 100] };
  assert.deepEqual(await usage('c1', 's1'), april);
  assert.deepEqual(await usage('c2', 's2'), { gb: ['5.0', 700] });
  const paid = [await balance('c1'), await balance('c2')];
  assert.deepEqual(paid, [1000000 - 1500 - 300, 1000000 - 800 - 700]);
  await t.restart();
  assert.deepEqual(await usage('c1', 's1'), april);
  assert.deepEqual(await usage('c2', 's2'), { gb: ['5.0', 700] });
  assert.deepEqual([await balance('c1'), await balance('c2')], paid);
  await event('s1', 'gb', { v: 1 }, '2026-04-01T00:00:00Z'); // 1 unit at 1 USD
  assert.deepEqual(await usage('c1', 's1'), { gb: ['3.0', 300], seats: ['1.0', 100] });
  assert.equal(await balance('c1'), paid[0] - 100);
  await checkWalletLedger(t, wallet.c1);
});

test("an upgrade's new subscription prices the units it carries, not an earlier peak", async () => {
  await advance('2026-04-15T00:00:00Z');
  const before = [await balance('c1'), await balance('c2')];
  await subscribe('c1', 'm2', 's1');
  await subscribe('c2', 'g2', 's2');
  assert.deepEqual(await usage('c1', 's1'), { gb: ['3.0', 300], seats: ['1.0', 100] });
  assert.deepEqual(await usage('c2', 's2'), { gb: ['5.0', 700] });
  // the new subscriptions' carried fees, and their plans' amounts in advance (none: in arrears)
  assert.deepEqual([await balance('c1'), await balance('c2')], [before[0] - 400, before[1] - 700]);
  await event('s2', 'gb', { v: 1 }, '2026-04-15T00:00:00Z'); // the 6th unit: 0.5 USD
  assert.deepEqual(await usage('c2', 's2'), { gb: ['6.0', 750] });
  assert.equal(await balance('c2'), before[1] - 750);
  await t.restart({ kill: true });
  assert.deepEqual(await usage('c1', 's1'), { gb: ['3.0', 300], seats: ['1.0', 100] });
  assert.deepEqual(await usage('c2', 's2'), { gb: ['6.0', 750] });
  await checkWalletLedger(t, wallet.c1);
  await checkWalletLedger(t, wallet.c2);
});

test('late events still count in the order they came, and a restart keeps what they billed', async () => {
  const before = await balance('c1');
  await event('s1', 'gb', { v: 10 }, MARCH); // late: 13 units now
  assert.deepEqual(await usage('c1', 's1'), { gb: ['13.0', 1300], seats: ['1.0', 100] });
  await event('s1', 'gb', { v: -10 }, MARCH); // back to 3: the peak stays
  const shown = { gb: ['3.0', 1300], seats: ['1.0', 100] };
  assert.deepEqual(await usage('c1', 's1'), shown);
  assert.equal(await balance('c1'), before - 1000);
  await t.restart();
  assert.deepEqual(await usage('c1', 's1'), shown);
  assert.equal(await balance('c1'), before - 1000);
  await event('s1', 'gb', { v: 1 }, '2026-04-20T00:00:00Z'); // 4, below the peak: nothing
  assert.equal(await balance('c1'), before - 1000);
  await checkWalletLedger(t, wallet.c1);
});

test('a usage built over several periods starts from what it carries', async () => {
  await advance('2026-06-02T00:00:00Z');
  assert.deepEqual(await usage('c3', 's3'), { gb: ['2.0', 200], seats: ['0.0', 0] });
  assert.deepEqual(await usage('c1', 's1'), { gb: ['4.0', 400], seats: ['1.0', 100] });
  await t.restart();
  assert.deepEqual(await usage('c3', 's3'), { gb: ['2.0', 200], seats: ['0.0', 0] });
  assert.deepEqual(await usage('c1', 's1'), { gb: ['4.0', 400], seats: ['1.0', 100] });
  await checkWalletLedger(t, wallet.c1);
});
