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

// Charges whose events carry their own price are billed by event, and an event that would
// lower their fee brings nothing: a dynamic charge's negative precise_total_amount_cents, a
// negative value under percentage's per-transaction bounds (Lago zeroes a negative in-advance
// fee). Found by an audit of the peak: both still gave back what earlier events had billed.
test('an event priced alone that would lower an in-advance fee brings nothing', async () => {
  const price = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'priced', name: 'Priced', aggregation_type: 'sum_agg', field_name: 'v' } }))).billable_metric;
  const pct = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'pct', name: 'Pct', aggregation_type: 'sum_agg', field_name: 'v' } }))).billable_metric;
  await ok(await post('/api/v1/plans', { plan: { code: 'priced', name: 'Priced', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: price.lago_id, charge_model: 'dynamic', pay_in_advance: true, properties: {} },
    { billable_metric_id: pct.lago_id, charge_model: 'percentage', pay_in_advance: true, properties: { rate: '10', per_transaction_min_amount: '1', per_transaction_max_amount: '5' } }] } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'priced', plan_code: 'priced', external_id: 'priced_sub' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'priced', currency: 'USD', rate_amount: '1', granted_credits: '100' } }))).wallet.lago_id;
  const send = async (code, v, precise) => ok(await post('/api/v1/events', { event: { transaction_id: `pp${n++}`, external_subscription_id: 'priced_sub', code, properties: { v }, ...(precise ? { precise_total_amount_cents: precise } : {}) } }));
  const fee = async (code, v, precise) => (await ok(await post('/api/v1/events/estimate_fees', { event: { external_subscription_id: 'priced_sub', code, properties: { v }, ...(precise ? { precise_total_amount_cents: precise } : {}) } }))).fees[0].amount_cents;
  const amount = async (code) => (await ok(await t.api('/api/v1/customers/priced/current_usage?external_subscription_id=priced_sub'))).customer_usage.charges_usage.find((x) => x.billable_metric.code === code).amount_cents;
  await send('priced', 1, '500');
  assert.equal(await balance(w), 9500);
  assert.equal(await fee('priced', -1, '-800'), 0);
  await send('priced', -1, '-800');
  assert.equal(await balance(w), 9500);
  assert.equal(await amount('priced'), 500);
  await send('pct', 30); // 10% of 30: 3 dollars, within the bounds
  assert.equal(await balance(w), 9200);
  assert.equal(await fee('pct', -100), 0);
  await send('pct', -100);
  assert.equal(await balance(w), 9200);
  assert.equal(await amount('pct'), 300);
  await checkWalletLedger(t, w);
});

// Each filter bucket of an in-advance charge is its own fee, billed by the events that land in
// it: a bucket no event reached brings nothing, not even its first tier's flat amount (Lago
// bills an in-advance charge by event). Found by an audit: an event in the `eu` bucket also
// debited the default bucket's flat amount, and current usage showed it at 0 units.
test("an in-advance charge's filter bucket no event reached brings nothing", async () => {
  const gb = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'regional', name: 'Regional', aggregation_type: 'sum_agg', field_name: 'v', filters: [{ key: 'r', values: ['eu', 'us'] }] } }))).billable_metric;
  await ok(await post('/api/v1/plans', { plan: { code: 'regional', name: 'Regional', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: gb.lago_id, charge_model: 'graduated', pay_in_advance: true,
      properties: { graduated_ranges: [{ from_value: 0, to_value: 2, per_unit_amount: '1', flat_amount: '1' }, { from_value: 3, to_value: null, per_unit_amount: '0.5', flat_amount: '0' }] },
      filters: [{ invoice_display_name: 'EU', values: { r: ['eu'] }, properties: { graduated_ranges: [{ from_value: 0, to_value: null, per_unit_amount: '2', flat_amount: '0' }] } }] }] } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'regional', plan_code: 'regional', external_id: 'regional_sub' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'regional', currency: 'USD', rate_amount: '1', granted_credits: '100' } }))).wallet.lago_id;
  const usage = async () => (await ok(await t.api('/api/v1/customers/regional/current_usage?external_subscription_id=regional_sub'))).customer_usage;
  assert.equal((await usage()).total_amount_cents, 0); // no event: nothing billed, nothing shown
  const estimate = async (r) => (await ok(await post('/api/v1/events/estimate_fees', { event: { external_subscription_id: 'regional_sub', code: 'regional', properties: { r, v: 1 } } }))).fees[0].amount_cents;
  assert.equal(await estimate('eu'), 200);
  await ok(await post('/api/v1/events', { event: { transaction_id: 'reg1', external_subscription_id: 'regional_sub', code: 'regional', properties: { r: 'eu', v: 1 } } }));
  assert.equal(await balance(w), 9800);
  assert.equal((await usage()).total_amount_cents, 200);
  assert.equal(await estimate('us'), 200); // the default bucket's first event: its flat amount and its unit
  await ok(await post('/api/v1/events', { event: { transaction_id: 'reg2', external_subscription_id: 'regional_sub', code: 'regional', properties: { r: 'us', v: 1 } } }));
  assert.equal(await balance(w), 9600);
  assert.equal((await usage()).total_amount_cents, 400);
  await checkWalletLedger(t, w);
});
