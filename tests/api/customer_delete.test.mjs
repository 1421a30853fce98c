// Deleting a customer ends what hangs off it, in the same command (Lago's
// Customers::TerminateRelationsService): its active subscriptions are terminated and its pending
// ones canceled, its wallets are terminated exactly as DELETE /wallets does (what is left voided,
// with its postings; open holds released, reading as voided), its applied coupons terminated.
// Afterwards nothing reaches the old customer's money: events to its subscriptions are refused,
// its holds cannot be captured, its wallets take no top-up; and a customer recreated with the
// same external_id starts clean, its subscription ids free again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { payWallet } from '../lib/payments.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

let t;
const post = async (path, body) => t.api(path, { method: 'POST', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const wallet = async (id) => (await ok(await t.api(`/api/v1/wallets/${id}`))).wallet;
const hold = async (id) => (await ok(await t.api(`/api/v1/authorizations/${id}`))).authorization;
let n = 0;
const event = (sub, units, extra = {}) => post('/api/v1/events', { event: { transaction_id: `cd${n++}`, external_subscription_id: sub, code: 'units', properties: { v: String(units) }, ...extra } });
const subscribe = (customer, external_id, extra = {}) => post('/api/v1/subscriptions', { subscription: { external_customer_id: customer, plan_code: 'units', external_id, ...extra } });
const balances = (w) => [w.status, w.balance_cents, w.ongoing_balance_cents, w.ongoing_usage_balance_cents];

const checkLedger = (w) => checkWalletLedger(t, w.lago_id);

// Every subscription with that external id, in any status, oldest first.
async function subscriptionsNamed(external_id) {
  const all = (await ok(await t.api('/api/v1/subscriptions?per_page=1000&status[]=active&status[]=pending&status[]=terminated&status[]=canceled'))).subscriptions;
  return all.filter((s) => s.external_id === external_id).reverse();
}

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-01-01T00:00:00Z']);
  const bm = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'units', name: 'Units', aggregation_type: 'sum_agg', field_name: 'v' } }))).billable_metric;
  await ok(await post('/api/v1/plans', { plan: { code: 'units', name: 'Units', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } }));
  await ok(await post('/api/v1/coupons', { coupon: { code: 'five', name: 'Five off', coupon_type: 'fixed_amount', expiration: 'no_expiration', amount_cents: 500, amount_currency: 'USD', frequency: 'once' } }));
});
after(async () => { await t.cleanup(); });

test('deleting a customer terminates its subscriptions, wallets, holds and coupons in the same command', async () => {
  await ok(await subscribe('gone', 'gone_sub'));
  await ok(await subscribe('gone', 'gone_later', { subscription_at: '2026-02-15T00:00:00Z' }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'gone', currency: 'USD', rate_amount: '1', name: 'W', limit: 'hard', paid_credits: '20', granted_credits: '100' } }))).wallet;
  await payWallet(t, w.lago_id);
  await ok(await event('gone_sub', 10));
  const a = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'gone_sub', code: 'units', properties: { v: '20' }, expires_in: 7 * 86400 } }))).authorization;
  assert.equal(a.status, 'authorized');
  const coupon = (await ok(await post('/api/v1/applied_coupons', { applied_coupon: { external_customer_id: 'gone', coupon_code: 'five' } }))).applied_coupon;
  assert.deepEqual(balances(await wallet(w.lago_id)), ['active', 11000, 9000, 2000]);

  await t.api('/api/v1/test_clock/advance', { method: 'POST', body: { test_clock: { to: '2026-01-05T00:00:00Z' } } });
  const del = await ok(await t.api('/api/v1/customers/gone', { method: 'DELETE' }));
  assert.equal(del.customer.external_id, 'gone');

  // subscriptions: the active one terminated now, the pending one canceled
  const [sub] = await subscriptionsNamed('gone_sub');
  assert.deepEqual([sub.status, sub.terminated_at], ['terminated', '2026-01-05T00:00:00Z']);
  const [later] = await subscriptionsNamed('gone_later');
  assert.deepEqual([later.status, later.canceled_at], ['canceled', '2026-01-05T00:00:00Z']);
  assert.equal((await t.api('/api/v1/subscriptions/gone_sub')).status, 404);

  // the wallet: terminated, nothing left, what was left voided with balanced postings
  const gone = await wallet(w.lago_id);
  assert.deepEqual(balances(gone), ['terminated', 0, 0, 0]);
  assert.equal(gone.terminated_at, '2026-01-05T00:00:00Z');
  const entries = await checkLedger(w);
  const voids = entries.filter((e) => e.cause === 'void' && e.account.startsWith('customer_'));
  assert.equal(voids.reduce((s, e) => s + e.amount_cents, 0), 11000);
  const voided = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions?transaction_status=voided`))).wallet_transactions;
  assert.equal(voided.reduce((s, x) => s + Number(x.amount), 0), 110);

  // the hold: released (posted about it) and voided; it cannot be captured
  const released = await hold(a.lago_id);
  assert.deepEqual([released.status, released.held_amount_cents], ['voided', 0]);
  const release = entries.filter((e) => e.cause === 'release');
  assert.deepEqual(release.map((e) => [e.account, e.amount_cents, e.lago_authorization_id]).sort(), [
    ['customer_held_credits', 2000, a.lago_id], ['holds_outstanding', 2000, a.lago_id]]);
  const capture = await post(`/api/v1/authorizations/${a.lago_id}/capture`, {});
  assert.equal(capture.status, 422);

  // the coupon: terminated, and out of the lists with its customer (Lago's AppliedCouponsQuery
  // lists live customers' only)
  for (const status of ['', '&status=terminated']) {
    const coupons = (await ok(await t.api(`/api/v1/applied_coupons?per_page=1000${status}`))).applied_coupons;
    assert.deepEqual(coupons.filter((c) => c.lago_id === coupon.lago_id), []);
  }

  // nothing reaches the old money any more: an event after the deletion is refused; one of its
  // very instant (the test clock has not moved) is the ended subscription's late event, as
  // Lago's Event#subscription counts the termination's instant as its own: kept, and it moves
  // no usage and no wallet
  assert.equal((await event('gone_sub', 5)).status, 200);
  const late = await event('gone_sub', 5, { timestamp: Date.parse('2026-01-05T00:00:01Z') / 1000 });
  assert.equal(late.status, 422);
  assert.deepEqual((await late.json()).error_details, { external_subscription_id: ['subscription_not_found'] });
  const topUp = await post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: w.lago_id, paid_credits: '5' } });
  assert.equal(topUp.status, 422);
  assert.deepEqual((await topUp.json()).error_details, { wallet_id: ['wallet_is_terminated'] });
  assert.deepEqual(balances(await wallet(w.lago_id)), ['terminated', 0, 0, 0]);
  await checkLedger(w);

  // a customer recreated with the same external id starts clean
  const again = (await ok(await post('/api/v1/customers', { customer: { external_id: 'gone' } }))).customer;
  assert.notEqual(again.lago_id, del.customer.lago_id);
  assert.deepEqual((await ok(await t.api('/api/v1/wallets?external_customer_id=gone'))).wallets, []);
  const fresh = (await ok(await subscribe('gone', 'gone_sub'))).subscription;
  assert.equal(fresh.status, 'active');
  assert.equal(fresh.external_customer_id, 'gone');
  const w2 = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'gone', currency: 'USD', rate_amount: '1', limit: 'hard', granted_credits: '10' } }))).wallet;
  await ok(await event('gone_sub', 3));
  assert.deepEqual(balances(await wallet(w2.lago_id)), ['active', 700, 700, 0]);
  assert.deepEqual(balances(await wallet(w.lago_id)), ['terminated', 0, 0, 0]);
  await checkLedger(w2);
  const usage = (await ok(await t.api('/api/v1/customers/gone/current_usage?external_subscription_id=gone_sub'))).customer_usage;
  assert.equal(usage.charges_usage[0].units, '3.0');
});

test('a customer without wallets or subscriptions is deleted as before; a deleted one is 404', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'plain' } }));
  await ok(await t.api('/api/v1/customers/plain', { method: 'DELETE' }));
  assert.equal((await t.api('/api/v1/customers/plain', { method: 'DELETE' })).status, 404);
});

test('deleting a customer cancels the downgrade scheduled on its subscription, and survives a restart', async () => {
  await ok(await post('/api/v1/plans', { plan: { code: 'dear', name: 'Dear', interval: 'monthly', amount_cents: 1000, amount_currency: 'USD', charges: [] } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'down', plan_code: 'dear', external_id: 'down_sub' } }));
  await ok(await subscribe('down', 'down_sub')); // cheaper: scheduled for the period's end
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'down', currency: 'USD', rate_amount: '1', granted_credits: '3' } }))).wallet;
  await ok(await t.api('/api/v1/customers/down', { method: 'DELETE' }));
  await t.restart();
  const subs = await subscriptionsNamed('down_sub');
  assert.deepEqual(subs.map((s) => [s.plan_code, s.status]), [['dear', 'terminated'], ['units', 'canceled']]);
  assert.deepEqual(balances(await wallet(w.lago_id)), ['terminated', 0, 0, 0]);
  await checkLedger(w);
  // after the deletion's instant (that instant is the ended subscription's own)
  const now = Date.parse((await ok(await t.api('/api/v1/test_clock'))).test_clock.now) / 1000;
  assert.equal((await event('down_sub', 1, { timestamp: now + 1 })).status, 422);
});

// The ledger filtered by external_customer_id answers the entries of every customer that had
// that external id, deleted or live, as their entries read it: reconciling by external id
// sees the whole history. Found by an audit: the filter took the live customer only, so it
// was 404 once the customer was deleted, and left the deleted one's entries out once the
// external id was taken again.
test('the ledger filtered by external_customer_id keeps a deleted customer\'s entries, its external id reused or not', async () => {
  const entries = async (query) => {
    const r = await ok(await t.api(`/api/v1/ledger_entries?per_page=1000&${query}`));
    assert.equal(r.meta.total_count, r.ledger_entries.length, query);
    return r.ledger_entries.map((e) => [e.id, e.external_customer_id, e.lago_wallet_id]);
  };
  const readingAs = async (ext) => (await entries('')).filter(([, c]) => c === ext);
  await ok(await post('/api/v1/customers', { customer: { external_id: 'reused' } }));
  const old = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'reused', currency: 'USD', rate_amount: '1', granted_credits: '10' } }))).wallet;
  await ok(await post('/api/v1/customers', { customer: { external_id: 'other' } }));
  const other = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'other', currency: 'USD', rate_amount: '1', granted_credits: '4' } }))).wallet;
  await ok(await t.api('/api/v1/customers/reused', { method: 'DELETE' }));
  const deleted = await readingAs('reused');
  assert.ok(deleted.some(([, , w]) => w === old.lago_id)); // the grant's and the void's lines
  assert.deepEqual(await entries('external_customer_id=reused'), deleted);

  await ok(await post('/api/v1/customers', { customer: { external_id: 'reused' } }));
  const fresh = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'reused', currency: 'USD', rate_amount: '1', granted_credits: '5' } }))).wallet;
  const both = await readingAs('reused');
  assert.ok(both.length > deleted.length && both.some(([, , w]) => w === fresh.lago_id));
  assert.deepEqual(await entries('external_customer_id=reused'), both);
  const page = (await ok(await t.api('/api/v1/ledger_entries?external_customer_id=reused&per_page=2&page=2'))).ledger_entries;
  assert.deepEqual(page.map((e) => e.id), both.slice(2, 4).map(([id]) => id));
  // with a wallet: the wallet's entries when its customer had that external id, else none
  assert.deepEqual(await entries(`external_customer_id=reused&wallet_id=${old.lago_id}`), await entries(`wallet_id=${old.lago_id}`));
  assert.deepEqual(await entries(`external_customer_id=reused&wallet_id=${other.lago_id}`), []);
  assert.deepEqual(await entries(`external_customer_id=other&wallet_id=${old.lago_id}`), []);
  // an external id no customer ever had is still unknown
  const unknown = await t.api('/api/v1/ledger_entries?external_customer_id=never');
  assert.deepEqual([unknown.status, (await unknown.json()).code], [404, 'customer_not_found']);
});

// Found by an audit (report 7, finding 2): DELETE /customers/{ext}/applied_coupons/{id} checked
// the applied coupon's customer by external id, so a customer made again under a deleted one's
// external id reached (and answered) the deleted customer's applied coupon, which its own list
// does not show. Lago's route finds it among the live customer's applied coupons: 404 otherwise.
test('a customer made again does not reach the deleted customer\'s applied coupons', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'again', currency: 'USD' } }));
  const old = (await ok(await post('/api/v1/applied_coupons', { applied_coupon: { external_customer_id: 'again', coupon_code: 'five' } }))).applied_coupon;
  await ok(await t.api('/api/v1/customers/again', { method: 'DELETE' }));
  const reborn = (await ok(await post('/api/v1/customers', { customer: { external_id: 'again', currency: 'USD' } }))).customer;
  assert.notEqual(reborn.lago_id, old.lago_customer_id);
  assert.equal((await ok(await t.api('/api/v1/customers/again/applied_coupons'))).meta.total_count, 0);
  const r = await t.api(`/api/v1/customers/again/applied_coupons/${old.lago_id}`, { method: 'DELETE' });
  assert.deepEqual([r.status, (await r.json()).code], [404, 'applied_coupon_not_found']);
  // the new customer's own applied coupon is still reached by that route
  const mine = (await ok(await post('/api/v1/applied_coupons', { applied_coupon: { external_customer_id: 'again', coupon_code: 'five' } }))).applied_coupon;
  const ended = (await ok(await t.api(`/api/v1/customers/again/applied_coupons/${mine.lago_id}`, { method: 'DELETE' }))).applied_coupon;
  assert.deepEqual([ended.lago_id, ended.lago_customer_id, ended.status], [mine.lago_id, reborn.lago_id, 'terminated']);
});
