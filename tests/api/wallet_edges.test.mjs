// Edges of real-time debit: a new billing period starts the debit over (March is not refunded
// by April), a time-weighted sum is debited to the end of its period at each change, a capture
// under a transaction id already used is refused like any duplicate, and credits given back to
// a wallet terminated since go back to it and are voided at once (as its other credits were)
// while the rest goes back to the wallets that paid, last first (wallet_giveback.test.mjs has
// more). An event of a later billing period cannot be
// priced yet: a customer whose wallets limit usage has it refused (it would slip past the
// limit unpaid), one whose wallet lets usage run on has it kept and debited once its period is
// the current one. A late event of a subscription that has ended moves no wallet: its
// period is the invoices' to settle. After a price change mid-period, a hold reserves what the
// capture will really debit: the event's step and the difference on the units before it. A
// charge replaced mid-period gives back what it debited: its replacement debits the period.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

let t;
const post = async (path, body) => t.api(path, { method: 'POST', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const wallet = async (id) => (await ok(await t.api(`/api/v1/wallets/${id}`))).wallet;
let n = 0;
const event = (sub, code, properties = {}, extra = {}) => post('/api/v1/events', { event: { transaction_id: `x${n++}`, external_subscription_id: sub, code, properties, ...extra } });
const metric = {};

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-03-30T12:00:00Z']);
  for (const bm of [
    { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' },
    { code: 'gpus', name: 'GPUs', aggregation_type: 'weighted_sum_agg', field_name: 'gpus' },
    { code: 'storage', name: 'Storage', aggregation_type: 'latest_agg', field_name: 'gb' },
  ]) metric[bm.code] = (await ok(await post('/api/v1/billable_metrics', { billable_metric: bm }))).billable_metric.lago_id;
  await ok(await post('/api/v1/plans', { plan: { code: 'p', name: 'P', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [
    { billable_metric_id: metric.calls, charge_model: 'standard', properties: { amount: '1' } },
    { billable_metric_id: metric.gpus, charge_model: 'standard', properties: { amount: '30' } },
    { billable_metric_id: metric.storage, charge_model: 'standard', properties: { amount: '1' } },
  ] } }));
  for (const c of ['a', 'b', 'c', 'd', 'e', 'f'])
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'p', external_id: `${c}_sub`, subscription_at: '2026-03-01T00:00:00Z' } }));
});
after(async () => { await t.cleanup(); });

test('a new billing period starts the debit over: April pays for April only', async () => {
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'a', currency: 'EUR', rate_amount: '1', granted_credits: '100' } }))).wallet;
  for (let i = 0; i < 3; i++) await ok(await event('a_sub', 'calls'));
  assert.equal((await wallet(w.lago_id)).balance_cents, 9700);
  await ok(await post('/api/v1/test_clock/advance', { test_clock: { to: '2026-04-02T00:00:00Z' } }));
  for (let i = 0; i < 2; i++) await ok(await event('a_sub', 'calls'));
  assert.equal((await wallet(w.lago_id)).balance_cents, 9500);
  const usage = (await ok(await t.api('/api/v1/customers/a/current_usage?external_subscription_id=a_sub'))).customer_usage;
  assert.equal(usage.amount_cents, 200);
});

test('a weighted sum is debited to the end of its period at each change, and given back when it falls', async () => {
  // April has 30 days: 30 EUR per GPU-month is 1 EUR per GPU-day
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'b', currency: 'EUR', rate_amount: '1', granted_credits: '100' } }))).wallet;
  await ok(await event('b_sub', 'gpus', { gpus: 2 }, { timestamp: String(Date.parse('2026-04-11T00:00:00Z') / 1000) }));
  assert.equal((await wallet(w.lago_id)).balance_cents, 10000 - 2 * 20 * 100); // 2 GPUs x 20 days left
  await ok(await event('b_sub', 'gpus', { gpus: -2 }, { timestamp: String(Date.parse('2026-04-21T00:00:00Z') / 1000) }));
  assert.equal((await wallet(w.lago_id)).balance_cents, 10000 - 2 * 10 * 100); // only 10 days at 2 GPUs
});

test('a capture under a transaction id already used is refused as a duplicate, and keeps its hold', async () => {
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'c', currency: 'EUR', rate_amount: '1', granted_credits: '10', limit: 'hard' } }))).wallet;
  await ok(await event('c_sub', 'calls', {}, { transaction_id: 'taken' }));
  const hold = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'c_sub', code: 'calls' } }))).authorization;
  assert.equal(hold.status, 'authorized');
  const r = await post(`/api/v1/authorizations/${hold.lago_id}/capture`, { authorization: { transaction_id: 'taken' } });
  assert.equal(r.status, 422);
  assert.deepEqual((await r.json()).error_details, { transaction_id: ['value_already_exist'] });
  assert.equal((await ok(await t.api(`/api/v1/authorizations/${hold.lago_id}`))).authorization.status, 'authorized');
  const now = await wallet(w.lago_id);
  assert.deepEqual([now.balance_cents, now.ongoing_balance_cents], [900, 800]);
});

test('credits given back to a wallet terminated since are voided with it; the rest goes back to who paid', async () => {
  const [hard] = (await ok(await t.api('/api/v1/customers/c/wallets'))).wallets;
  const first = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'c', currency: 'EUR', rate_amount: '1', name: 'Second', granted_credits: '50' } }))).wallet;
  // 30 GB at 1 EUR: the hard wallet (older) can spend 800 of its 900 (100 are held), the
  // second wallet pays the other 2200
  await ok(await event('c_sub', 'storage', { gb: 30 }));
  assert.equal((await wallet(hard.lago_id)).balance_cents, 100);
  assert.equal((await wallet(first.lago_id)).balance_cents, 2800);
  await ok(await t.api(`/api/v1/wallets/${first.lago_id}`, { method: 'DELETE' })); // 2800 voided
  // the fee falls by 29 EUR: the last payer's 2200 go back to it and are voided at once, then
  // 700 go back to the hard wallet
  await ok(await event('c_sub', 'storage', { gb: 1 }));
  assert.equal((await wallet(hard.lago_id)).balance_cents, 800);
  const gone = await wallet(first.lago_id);
  assert.deepEqual([gone.status, gone.balance_cents], ['terminated', 0]);
  const voided = (await ok(await t.api(`/api/v1/wallets/${first.lago_id}/wallet_transactions`))).wallet_transactions
    .filter((x) => x.transaction_status === 'voided').map((x) => x.amount).sort();
  assert.deepEqual(voided, ['22.0', '28.0']);
  await checkWalletLedger(t, first.lago_id);
  await checkWalletLedger(t, hard.lago_id);
});

test('an event of a later period is refused when limited wallets pay for it, and kept otherwise', async () => {
  const hard = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'd', currency: 'EUR', rate_amount: '1', granted_credits: '5', limit: 'hard' } }))).wallet;
  const later = String(Date.parse('2026-07-10T00:00:00Z') / 1000);
  let r = await event('d_sub', 'calls', {}, { timestamp: later });
  assert.equal(r.status, 422);
  assert.deepEqual((await r.json()).error_details, { timestamp: ['after_current_period'] });
  // a batch holding one is refused whole, naming it
  r = await post('/api/v1/events/batch', { events: [
    { transaction_id: `x${n++}`, external_subscription_id: 'd_sub', code: 'calls' },
    { transaction_id: `x${n++}`, external_subscription_id: 'd_sub', code: 'calls', timestamp: later },
  ] });
  assert.equal(r.status, 422);
  assert.deepEqual((await r.json()).error_details, { 1: { timestamp: ['after_current_period'] } });
  // a hold's capture timestamped later is refused too, and the hold stays open
  const hold = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'd_sub', code: 'calls' } }))).authorization;
  assert.equal(hold.status, 'authorized');
  r = await post(`/api/v1/authorizations/${hold.lago_id}/capture`, { authorization: { timestamp: later } });
  assert.equal(r.status, 422);
  assert.equal((await ok(await t.api(`/api/v1/authorizations/${hold.lago_id}`))).authorization.status, 'authorized');
  await ok(await post(`/api/v1/authorizations/${hold.lago_id}/void`, {}));
  assert.equal((await wallet(hard.lago_id)).balance_cents, 500);
  // the current period's events still go through the limit as before
  await ok(await event('d_sub', 'calls'));
  assert.equal((await wallet(hard.lago_id)).balance_cents, 400);

  // without a limit, the event is kept; it counts, and is debited, once its period is current
  const open = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'e', currency: 'EUR', rate_amount: '1', granted_credits: '100' } }))).wallet;
  await ok(await event('e_sub', 'calls', {}, { timestamp: later }));
  assert.equal((await wallet(open.lago_id)).balance_cents, 10000);
  await ok(await post('/api/v1/test_clock/advance', { test_clock: { to: '2026-07-15T00:00:00Z' } }));
  await ok(await event('e_sub', 'calls'));
  assert.equal((await wallet(open.lago_id)).balance_cents, 10000 - 200);
});

test('a late event of an ended subscription is kept, and neither refunds nor debits its wallet', async () => {
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'f', currency: 'EUR', rate_amount: '1', granted_credits: '100' } }))).wallet;
  const now = Date.parse((await ok(await t.api('/api/v1/test_clock'))).test_clock.now);
  for (let i = 0; i < 10; i++) await ok(await event('f_sub', 'calls'));
  assert.equal((await wallet(w.lago_id)).balance_cents, 9000);
  await ok(await t.api('/api/v1/subscriptions/f_sub', { method: 'DELETE' }));
  // an hour before the termination: the subscription's own life, its period's usage
  const late = await ok(await event('f_sub', 'calls', {}, { timestamp: String((now - 3600000) / 1000) }));
  assert.equal(late.event.external_subscription_id, 'f_sub');
  assert.equal((await wallet(w.lago_id)).balance_cents, 9000);
  const txs = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions`))).wallet_transactions;
  assert.equal(txs.filter((x) => x.transaction_type === 'inbound' && x.transaction_status !== 'granted').length, 0, JSON.stringify(txs));
  // and still so after a restart
  await t.restart();
  assert.equal((await wallet(w.lago_id)).balance_cents, 9000);
});

test('a price cut mid-period gives back at once what the units counted were paid beyond it', async () => {
  const plan = (await ok(await post('/api/v1/plans', { plan: { code: 'cut', name: 'Cut', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [
    { billable_metric_id: metric.calls, charge_model: 'standard', properties: { amount: '2' } },
  ] } }))).plan;
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'cut', plan_code: 'cut', external_id: 'cut_sub' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'cut', currency: 'EUR', rate_amount: '1', granted_credits: '15', limit: 'hard' } }))).wallet;
  for (let i = 0; i < 5; i++) await ok(await event('cut_sub', 'calls'));
  assert.equal((await wallet(w.lago_id)).balance_cents, 500);
  await ok(await t.api('/api/v1/plans/cut', { method: 'PUT', body: { plan: { charges: [
    { id: plan.charges[0].lago_id, billable_metric_id: metric.calls, charge_model: 'standard', properties: { amount: '0.5' } },
  ] } } }));
  // five calls at 0.5 EUR: 750 of the 1000 paid come back with the edit
  assert.equal((await wallet(w.lago_id)).balance_cents, 1250);
  const hold = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'cut_sub', code: 'calls' } }))).authorization;
  assert.equal(hold.amount_cents, 50);
  await ok(await post(`/api/v1/authorizations/${hold.lago_id}/void`, {}));
  await checkWalletLedger(t, w.lago_id);
});

// Found by an audit: subscribing again to the same plan with new plan_overrides re-priced the
// usage but gave nothing back: the cut waited for a later re-pricing, and was lost for good
// when the period ended first.
test('a price cut through new plan_overrides gives back at once too', async () => {
  const plan = (await ok(await post('/api/v1/plans', { plan: { code: 'own', name: 'Own', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [
    { billable_metric_id: metric.calls, charge_model: 'standard', properties: { amount: '10' } },
  ] } }))).plan;
  const subscribe = (extra = {}) => post('/api/v1/subscriptions', { subscription: { external_customer_id: 'own', plan_code: 'own', external_id: 'own_sub', ...extra } });
  await ok(await subscribe());
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'own', currency: 'EUR', rate_amount: '1', granted_credits: '100' } }))).wallet;
  for (let i = 0; i < 3; i++) await ok(await event('own_sub', 'calls'));
  assert.equal((await wallet(w.lago_id)).balance_cents, 7000);
  const cut = await ok(await subscribe({ plan_overrides: { charges: [{ id: plan.charges[0].lago_id, properties: { amount: '4' } }] } }));
  assert.equal(cut.subscription.plan_code, 'own');
  // three calls at 4 EUR: 18 of the 30 paid come back with the command
  assert.equal((await wallet(w.lago_id)).balance_cents, 8800);
  const usage = (await ok(await t.api('/api/v1/customers/own/current_usage?external_subscription_id=own_sub'))).customer_usage;
  assert.equal(usage.total_amount_cents, 1200);
  await checkWalletLedger(t, w.lago_id);
});

test('after a price change mid-period the edit takes the raise, and a hold reserves what its capture will debit', async () => {
  const plan = (await ok(await post('/api/v1/plans', { plan: { code: 'q', name: 'Q', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [
    { billable_metric_id: metric.calls, charge_model: 'standard', properties: { amount: '1' } },
  ] } }))).plan;
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'g', plan_code: 'q', external_id: 'g_sub' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'g', currency: 'EUR', rate_amount: '1', granted_credits: '15', limit: 'hard' } }))).wallet;
  for (let i = 0; i < 10; i++) await ok(await event('g_sub', 'calls'));
  assert.equal((await wallet(w.lago_id)).balance_cents, 500);
  await ok(await t.api('/api/v1/plans/q', { method: 'PUT', body: { plan: { charges: [
    { id: plan.charges[0].lago_id, billable_metric_id: metric.calls, charge_model: 'standard', properties: { amount: '2' } },
  ] } } }));
  // the first ten now cost 10 EUR more: the edit takes the 5 left, the rest is the invoice's
  assert.equal((await wallet(w.lago_id)).balance_cents, 0);
  let hold = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'g_sub', code: 'calls' } }))).authorization;
  assert.equal(hold.status, 'declined', JSON.stringify(hold));
  await ok(await post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: w.lago_id, granted_credits: '10' } }));
  hold = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'g_sub', code: 'calls' } }))).authorization;
  assert.equal(hold.status, 'authorized');
  assert.equal(hold.amount_cents, 200); // the call's own price: nothing else waits
  const captured = (await ok(await post(`/api/v1/authorizations/${hold.lago_id}/capture`, {}))).authorization;
  assert.equal(captured.status, 'captured');
  assert.equal(captured.captured_amount_cents, 200);
  assert.equal((await wallet(w.lago_id)).balance_cents, 800);
  await checkWalletLedger(t, w.lago_id);
});

test('a charge replaced in the middle of a period gives back what it debited', async () => {
  await ok(await post('/api/v1/plans', { plan: { code: 'r', name: 'R', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [
    { billable_metric_id: metric.calls, charge_model: 'standard', properties: { amount: '1' } },
  ] } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'h', plan_code: 'r', external_id: 'h_sub' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'h', currency: 'EUR', rate_amount: '1', granted_credits: '100' } }))).wallet;
  for (let i = 0; i < 10; i++) await ok(await event('h_sub', 'calls'));
  assert.equal((await wallet(w.lago_id)).balance_cents, 9000);
  // the same charge sent without its id: a new charge, with a new lago_id
  await ok(await t.api('/api/v1/plans/r', { method: 'PUT', body: { plan: { charges: [
    { billable_metric_id: metric.calls, charge_model: 'standard', properties: { amount: '1' } },
  ] } } }));
  await ok(await event('h_sub', 'calls'));
  const usage = (await ok(await t.api('/api/v1/customers/h/current_usage?external_subscription_id=h_sub'))).customer_usage;
  assert.equal(usage.amount_cents, 1100);
  assert.equal((await wallet(w.lago_id)).balance_cents, 10000 - 1100); // not 1000 + 1100
  await t.restart();
  assert.equal((await wallet(w.lago_id)).balance_cents, 10000 - 1100);
  await checkWalletLedger(t, w.lago_id); // every posting balances, the wallet's accounts agree
});

test('a replaced charge gives back with the edit, and its replacement debits the period\'s units in the same edit: a hold then holds the next call alone', async () => {
  await ok(await post('/api/v1/plans', { plan: { code: 's', name: 'S', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [
    { billable_metric_id: metric.calls, charge_model: 'standard', properties: { amount: '1' } },
  ] } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'i', plan_code: 's', external_id: 'i_sub' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'i', currency: 'EUR', rate_amount: '1', granted_credits: '15', limit: 'hard' } }))).wallet;
  for (let i = 0; i < 5; i++) await ok(await event('i_sub', 'calls'));
  assert.equal((await wallet(w.lago_id)).balance_cents, 1000);
  await ok(await t.api('/api/v1/plans/s', { method: 'PUT', body: { plan: { charges: [
    { billable_metric_id: metric.calls, charge_model: 'standard', properties: { amount: '2' } },
  ] } } }));
  // the old charge gives its 500 back with the edit, given back before its replacement debits
  // the five calls at 2 EUR (1000) in the same edit: of the 1500 there, a hard wallet pays it
  assert.equal((await wallet(w.lago_id)).balance_cents, 500);
  const hold = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'i_sub', code: 'calls' } }))).authorization;
  assert.equal(hold.status, 'authorized', JSON.stringify(hold));
  assert.equal(hold.amount_cents, 200);
  const captured = (await ok(await post(`/api/v1/authorizations/${hold.lago_id}/capture`, {}))).authorization;
  assert.equal(captured.captured_amount_cents, 200);
  assert.equal((await wallet(w.lago_id)).balance_cents, 300);
  await ok(await event('i_sub', 'calls'));
  assert.equal((await wallet(w.lago_id)).balance_cents, 100);
  await checkWalletLedger(t, w.lago_id);
});
