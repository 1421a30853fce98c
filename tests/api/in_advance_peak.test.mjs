// A pay-in-advance charge is billed on the most its aggregate reached in the period, as Lago's
// (its cached max_aggregation): what an event billed is never taken back by a later event that
// lowers the aggregate (a unique count's remove, a negative sum), and an event bills only what
// lifts the aggregate above that peak. Current usage shows the units there are now and the fee
// of the peak; estimate_fees never goes below zero. Found by an audit: removing a seat gave its
// whole in-advance fee back to the wallet, so a seat added at the start of the month and
// removed on its last day cost nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

let t;
const post = async (path, body) => t.api(path, { method: 'POST', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const balance = async (id) => (await ok(await t.api(`/api/v1/wallets/${id}`))).wallet.balance_cents;
let n = 0;
const event = async (properties, code) => ok(await post('/api/v1/events', { event: { transaction_id: `p${n++}`, external_subscription_id: 'sub', code, properties } }));
const usage = async (code) => {
  const u = (await ok(await t.api('/api/v1/customers/cust/current_usage?external_subscription_id=sub'))).customer_usage;
  const c = u.charges_usage.find((x) => x.billable_metric.code === code);
  return [c.units, c.amount_cents];
};
const estimate = async (properties, code) => {
  const [fee] = (await ok(await post('/api/v1/events/estimate_fees', { event: { external_subscription_id: 'sub', code, properties } }))).fees;
  return [fee.units, fee.amount_cents];
};
let wallet;

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-05-10T00:00:00Z']);
  const seats = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'seats', name: 'Seats', aggregation_type: 'unique_count_agg', field_name: 'u' } }))).billable_metric;
  const gb = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'gb', name: 'GB', aggregation_type: 'sum_agg', field_name: 'q' } }))).billable_metric;
  await ok(await post('/api/v1/plans', { plan: { code: 'advance', name: 'Advance', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: seats.lago_id, charge_model: 'standard', pay_in_advance: true, properties: { amount: '3' } },
    { billable_metric_id: gb.lago_id, charge_model: 'standard', pay_in_advance: true, properties: { amount: '0.015' } }] } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'cust', plan_code: 'advance', external_id: 'sub', subscription_at: '2026-05-01T00:00:00Z' } }));
  wallet = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'cust', currency: 'USD', rate_amount: '1', granted_credits: '100' } }))).wallet.lago_id;
});
after(async () => { await t.cleanup(); });

test('a seat removed keeps its in-advance fee; added again it is not billed twice', async () => {
  await event({ u: 'b' }, 'seats');
  assert.equal(await balance(wallet), 9700);
  assert.deepEqual(await usage('seats'), ['1.0', 300]);
  assert.deepEqual(await estimate({ u: 'b', operation_type: 'remove' }, 'seats'), ['0.0', 0]);
  await event({ u: 'b', operation_type: 'remove' }, 'seats');
  assert.equal(await balance(wallet), 9700); // nothing given back
  assert.deepEqual(await usage('seats'), ['0.0', 300]);
  assert.deepEqual(await estimate({ u: 'b' }, 'seats'), ['0.0', 0]); // back to the peak: free
  await event({ u: 'b' }, 'seats');
  assert.equal(await balance(wallet), 9700);
  await event({ u: 'c' }, 'seats'); // above the peak: billed
  assert.equal(await balance(wallet), 9400);
  assert.deepEqual(await usage('seats'), ['2.0', 600]);
  await checkWalletLedger(t, wallet);
});

test('a negative value keeps what the sum billed; only what passes its peak is billed again', async () => {
  await event({ q: 7 }, 'gb'); // 0.105: 11 cents
  assert.equal(await balance(wallet), 9389);
  assert.deepEqual(await estimate({ q: -7 }, 'gb'), ['0.0', 0]);
  await event({ q: -7 }, 'gb');
  assert.equal(await balance(wallet), 9389);
  assert.deepEqual(await usage('gb'), ['0.0', 11]);
  await event({ q: 5 }, 'gb'); // 5, below the peak of 7
  assert.equal(await balance(wallet), 9389);
  assert.deepEqual(await estimate({ q: 4 }, 'gb'), ['2.0', 3]); // 9 is 2 past the peak: 0.135, 14 cents
  await event({ q: 4 }, 'gb');
  assert.equal(await balance(wallet), 9386);
  assert.deepEqual(await usage('gb'), ['9.0', 14]);
  await checkWalletLedger(t, wallet);
});

test('the peak is rebuilt from the events after a restart, and starts again with the next period', async () => {
  const was = [await usage('seats'), await usage('gb'), await balance(wallet)];
  await t.restart({ kill: true });
  assert.deepEqual([await usage('seats'), await usage('gb'), await balance(wallet)], was);
  await event({ u: 'c', operation_type: 'remove' }, 'seats');
  assert.deepEqual(await usage('seats'), ['1.0', 600]);
  await ok(await post('/api/v1/test_clock/advance', { test_clock: { to: '2026-06-02T00:00:00Z' } }));
  assert.deepEqual(await usage('seats'), ['0.0', 0]);
  await event({ u: 'b' }, 'seats'); // a new period: billed again
  assert.deepEqual(await usage('seats'), ['1.0', 300]);
  assert.equal(await balance(wallet), 9386 - 300);
  await checkWalletLedger(t, wallet);
});
