// Credits that arrive in a grant already past its expiry (a fee step given back to a grant that
// has expired since it paid) expire in the same command: the balance never shows credits that
// cannot be spent. Found by a black-box audit: they stayed in the balance until the next sweep,
// while a debit refused them. A purchase whose expiration_at passed before it was paid is
// refused its payment instead (audit 3: the money was taken for credits expiring at once).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

let t;
const post = async (path, body) => t.api(path, { method: 'POST', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const wallet = async (id) => (await ok(await t.api(`/api/v1/wallets/${id}`))).wallet;
const advance = async (to) => ok(await post('/api/v1/test_clock/advance', { test_clock: { to } }));
let n = 0;
const event = (sub, v) => post('/api/v1/events', { event: { transaction_id: `x${n++}`, external_subscription_id: sub, code: 'units', properties: { v: String(v) } } });

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-03-01T00:00:00Z']);
  const bm = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'units', name: 'Units', aggregation_type: 'sum_agg', field_name: 'v' } }))).billable_metric;
  await ok(await post('/api/v1/plans', { plan: { code: 'standard', name: 'Standard', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } }));
  // volume: up to 10 units at 1 dollar, from 11 at 0.1 dollar, for all of them
  await ok(await post('/api/v1/plans', { plan: { code: 'volume', name: 'Volume', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: bm.lago_id, charge_model: 'volume', properties: { volume_ranges: [
      { from_value: 0, to_value: 10, per_unit_amount: '1', flat_amount: '0' },
      { from_value: 11, to_value: null, per_unit_amount: '0.1', flat_amount: '0' }] } }] } }));
  for (const [c, plan] of [['paid_late', 'standard'], ['refunded', 'volume']])
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: plan, external_id: `${c}_sub`, subscription_at: '2026-03-01T00:00:00Z' } }));
});
after(async () => { await t.cleanup(); });

test('a purchase paid after its expiration_at is refused: mark it failed', async () => {
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'paid_late', currency: 'USD', rate_amount: '1', name: 'W', limit: 'hard', granted_credits: '1', invoice_requires_successful_payment: true } }))).wallet;
  const [tx] = (await ok(await post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: w.lago_id, paid_credits: '10', expiration_at: '2026-03-01T01:00:00Z' } }))).wallet_transactions;
  assert.equal(tx.status, 'pending');
  await advance('2026-03-01T02:00:00Z');
  const paid = await t.api(`/api/v1/invoices/${tx.lago_invoice_id}`, { method: 'PUT', body: { invoice: { payment_status: 'succeeded' } } });
  assert.equal(paid.status, 422);
  assert.deepEqual((await paid.json()).error_details, { payment_status: ['credits_expired'] });
  await ok(await t.api(`/api/v1/invoices/${tx.lago_invoice_id}`, { method: 'PUT', body: { invoice: { payment_status: 'failed' } } }));
  const after = await wallet(w.lago_id);
  assert.deepEqual([after.balance_cents, after.ongoing_balance_cents], [100, 100]);
  const refused = await event('paid_late_sub', 3);
  assert.equal(refused.status, 402);
  await checkWalletLedger(t, w.lago_id);
});

test('a fee step given back to a grant that expired since it paid expires at once', async () => {
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'refunded', currency: 'USD', rate_amount: '1', name: 'W', limit: 'hard', granted_credits: '5' } }))).wallet;
  // a grant that expires soon, consumed first (priority 1)
  await ok(await post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: w.lago_id, granted_credits: '10', expiration_at: '2026-03-01T03:00:00Z', priority: 1 } }));
  assert.equal((await event('refunded_sub', 10)).status, 200); // 10 dollars, all from the soon-expiring grant
  assert.equal((await wallet(w.lago_id)).balance_cents, 500);
  await advance('2026-03-01T04:00:00Z');
  assert.equal((await event('refunded_sub', 10)).status, 200); // 20 units at 0.1: 8 back, to an expired grant
  const after = await wallet(w.lago_id);
  assert.deepEqual([after.balance_cents, after.ongoing_balance_cents], [500, 500]);
  // 80 units cost 8, 6 more: the 5 live credits do not cover it, as the balance says
  const refused = await event('refunded_sub', 60);
  assert.equal(refused.status, 402);
  await checkWalletLedger(t, w.lago_id);
});
