// Credits that repay a soft wallet's overdraft paid for the usage that overdrew it, and say so:
// the repaying grant's consumptions name that usage, and the usage's fundings name the grant,
// oldest usage first, whichever way the credits came (a top-up, paid or granted, a refund step
// that cancels overdrawn usage, credits a hold gives back). Until then the usage's unpaid part
// is what the wallet owes. Found by an audit: a top-up that repaid an overdraft had an amount
// larger than its remaining credits and its consumptions together, and the usage it paid for
// never listed it. Every wallet here is checked by checkWalletTraces as well.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { payWallet } from '../lib/payments.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

let t;
const post = async (path, body) => t.api(path, { method: 'POST', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const wallet = async (id) => (await ok(await t.api(`/api/v1/wallets/${id}`))).wallet;
const advance = async (to) => ok(await post('/api/v1/test_clock/advance', { test_clock: { to } }));
const topUp = async (body) => (await ok(await post('/api/v1/wallet_transactions', { wallet_transaction: body }))).wallet_transactions;
const txs = async (id, status) => (await ok(await t.api(`/api/v1/wallets/${id}/wallet_transactions?transaction_status=${status}`))).wallet_transactions;
const consumptions = async (tx) => (await ok(await t.api(`/api/v1/wallet_transactions/${tx.lago_id}/consumptions`))).wallet_transaction_consumptions
  .map((c) => [c.wallet_transaction.lago_id, c.amount_cents]);
const fundings = async (tx) => (await ok(await t.api(`/api/v1/wallet_transactions/${tx.lago_id}/fundings`))).wallet_transaction_fundings
  .map((c) => [c.wallet_transaction.lago_id, c.amount_cents]);
let n = 0;
const event = async (sub, units) => ok(await post('/api/v1/events', { event: { transaction_id: `o${n++}`, external_subscription_id: sub, code: 'units', properties: { v: String(units) } } }));
const authorize = async (sub, units) => (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: sub, code: 'units', properties: { v: String(units) } } }))).authorization;

let customers = 0;
// A customer with a subscription (1 dollar a unit) and a soft wallet at 1 dollar a credit.
async function customer(walletBody) {
  const c = `or${customers++}`;
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'units', external_id: `${c}_sub`, subscription_at: '2026-01-01T00:00:00Z' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: c, currency: 'USD', rate_amount: '1', name: 'W', limit: 'soft', overdraft_credits: '100', ...walletBody } }))).wallet;
  return { sub: `${c}_sub`, w };
}

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-01-01T10:00:00Z']);
  const bm = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'units', name: 'Units', aggregation_type: 'sum_agg', field_name: 'v' } }))).billable_metric;
  await ok(await post('/api/v1/plans', { plan: { code: 'units', name: 'Units', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } }));
});
after(async () => { await t.cleanup(); });

test('top-ups repay the oldest overdrawn usage first, and each side names the other', async () => {
  const { sub, w } = await customer({ granted_credits: '10' });
  const [grant] = await txs(w.lago_id, 'granted');
  await event(sub, 25); // 10 from the grant, 15 overdrawn
  await advance('2026-01-02T10:00:00Z');
  await event(sub, 5); // the next day's usage: all overdrawn
  assert.equal((await wallet(w.lago_id)).overdrawn_cents, 2000);
  const [day2, day1] = await txs(w.lago_id, 'usage');
  assert.deepEqual(await fundings(day1), [[grant.lago_id, 1000]]);
  assert.deepEqual(await fundings(day2), []);
  await checkWalletLedger(t, w.lago_id);

  const [eight] = await topUp({ wallet_id: w.lago_id, granted_credits: '8' });
  assert.equal(eight.remaining_amount_cents, 0);
  assert.deepEqual(await consumptions(eight), [[day1.lago_id, 800]]);
  const [thirty] = await topUp({ wallet_id: w.lago_id, paid_credits: '30' });
  await payWallet(t, w.lago_id);
  assert.equal((await wallet(w.lago_id)).overdrawn_cents, 0);
  const settled = (await txs(w.lago_id, 'purchased'))[0];
  assert.equal(settled.lago_id, thirty.lago_id);
  assert.equal(settled.remaining_amount_cents, 1800);
  assert.deepEqual(await consumptions(thirty), [[day1.lago_id, 700], [day2.lago_id, 500]]);
  assert.deepEqual(await fundings(day1), [[grant.lago_id, 1000], [eight.lago_id, 800], [thirty.lago_id, 700]]);
  assert.deepEqual(await fundings(day2), [[thirty.lago_id, 500]]);
  await checkWalletLedger(t, w.lago_id);
});

test('a refund step of overdrawn usage cancels what the usage owes; a top-up repays the rest', async () => {
  const { sub, w } = await customer({});
  await event(sub, 10); // all overdrawn
  await event(sub, -4); // the fee goes down by 4: given back off the overdraft
  assert.equal((await wallet(w.lago_id)).overdrawn_cents, 600);
  const [usage] = await txs(w.lago_id, 'usage');
  const [refund] = await txs(w.lago_id, 'usage_refund');
  assert.deepEqual(await consumptions(refund), [[usage.lago_id, 400]]);
  assert.deepEqual(await fundings(usage), [[refund.lago_id, 400]]);
  await checkWalletLedger(t, w.lago_id);
  const [ten] = await topUp({ wallet_id: w.lago_id, granted_credits: '10' });
  assert.deepEqual(await consumptions(ten), [[usage.lago_id, 600]]);
  assert.deepEqual(await fundings(usage), [[refund.lago_id, 400], [ten.lago_id, 600]]);
  await checkWalletLedger(t, w.lago_id);
});

test('credits a hold gives back repay the overdraft drawn meanwhile, and are linked to it', async () => {
  const { sub, w } = await customer({ granted_credits: '10' });
  const [grant] = await txs(w.lago_id, 'granted');
  const hold = await authorize(sub, 6); // reserves 6 of the grant
  assert.equal(hold.status, 'authorized');
  await event(sub, 9); // 4 from the grant, 5 overdrawn
  assert.equal((await wallet(w.lago_id)).overdrawn_cents, 500);
  await ok(await post(`/api/v1/authorizations/${hold.lago_id}/void`, {}));
  // the 6 given back repay the 5 owed at once
  const now = await wallet(w.lago_id);
  assert.deepEqual([now.overdrawn_cents, now.balance_cents], [0, 100]);
  const [usage] = await txs(w.lago_id, 'usage');
  assert.deepEqual(await consumptions(grant), [[usage.lago_id, 900]]);
  assert.deepEqual(await fundings(usage), [[grant.lago_id, 900]]);
  await checkWalletLedger(t, w.lago_id);
});

test('a repayment survives a restart: the links and what is still owed are on disk', async () => {
  const { sub, w } = await customer({});
  await event(sub, 7);
  const [three] = await topUp({ wallet_id: w.lago_id, granted_credits: '3' });
  await t.restart();
  const [usage] = await txs(w.lago_id, 'usage');
  assert.deepEqual(await fundings(usage), [[three.lago_id, 300]]);
  assert.equal((await wallet(w.lago_id)).overdrawn_cents, 400);
  const [five] = await topUp({ wallet_id: w.lago_id, granted_credits: '5' });
  assert.deepEqual(await consumptions(five), [[usage.lago_id, 400]]);
  await checkWalletLedger(t, w.lago_id);
});

// The ledger reads in the order things happened: a threshold top-up that the event's own
// debit fires repays an overdraft that debit drew, so the consumption is posted first. Found
// by an audit: the purchase came first and the overdraft account read -400 in between.
test("a threshold top-up fired by an overdrawing event repays it after the event's posting", async () => {
  const { sub, w } = await customer({ granted_credits: '8', overdraft_credits: '5',
    recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '0', method: 'fixed', paid_credits: '10' }] });
  await event(sub, 12); // 8 from the grant, 4 overdrawn: the rule buys 10, 4 of which repay
  assert.deepEqual([(await wallet(w.lago_id)).overdrawn_cents, await payWallet(t, w.lago_id)], [400, 1]); // when paid
  const now = await wallet(w.lago_id);
  assert.deepEqual([now.balance_cents, now.overdrawn_cents], [600, 0]);
  const entries = await checkWalletLedger(t, w.lago_id);
  assert.deepEqual(entries.filter((e) => e.account === 'customer_overdraft').map((e) => [e.cause, e.balance_after_cents]),
    [['consumption', 400], ['purchase', 0]]);
  const [usage] = await txs(w.lago_id, 'usage');
  const [bought] = await txs(w.lago_id, 'purchased');
  assert.deepEqual(await consumptions(bought), [[usage.lago_id, 400]]);
});

// What a wallet owes bounds what its terms may become, and the refusal says so (an audit found
// a bare value_is_out_of_range nobody could act on).
test('an overdraft owed keeps the wallet soft and its overdraft_credits at least that, with a message', async () => {
  const { sub, w } = await customer({ granted_credits: '20', overdraft_credits: '50' });
  await event(sub, 50); // 20 credits, then 30 owed
  assert.equal((await wallet(w.lago_id)).overdrawn_cents, 3000);
  const put = async (body) => {
    const r = await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'PUT', body: { wallet: body } });
    return [r.status, await r.json()];
  };
  let [status, body] = await put({ overdraft_credits: '10' });
  assert.equal(status, 422);
  assert.deepEqual(body.error_details, { overdraft_credits: ['value_is_out_of_range'] });
  assert.match(body.message, /owes 30.0 credits of overdraft already/);
  [status, body] = await put({ limit: 'hard' });
  assert.equal(status, 422);
  assert.deepEqual(body.error_details, { limit: ['wallet_is_overdrawn'] });
  assert.match(body.message, /owes 30.0 credits of overdraft/);
  const now = await wallet(w.lago_id);
  assert.deepEqual([now.limit, now.overdraft_credits], ['soft', '50.0']);
  await ok(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'PUT', body: { wallet: { overdraft_credits: '30' } } }));
});
