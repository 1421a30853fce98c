// A wallet limited to billable metrics (applies_to.billable_metric_codes) names them as Lago's
// wallet targets do: by identity (app/models/wallet_target.rb links a billable_metric_id). A
// renamed metric stays the wallet's under its new code, in the answer, in real-time debits and
// holds, and after a restart; a deleted one leaves the list, and a metric made later with either
// old code is a new one the wallet does not pay for. Found by an audit: the wallet kept the old
// code, stopped paying for the renamed metric, and paid for a new metric of the old code.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

let t;
const post = async (path, body) => t.api(path, { method: 'POST', body });
const put = async (path, body) => t.api(path, { method: 'PUT', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const wallet = async (id) => (await ok(await t.api(`/api/v1/wallets/${id}`))).wallet;
const metric = async (code) => (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code, name: code, aggregation_type: 'count_agg' } }))).billable_metric.lago_id;
const charge = (id, amount) => ({ billable_metric_id: id, charge_model: 'standard', properties: { amount } });
const plan = async (code, charges) => ok(await post('/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges } }));
const subscribe = async (customer, plan_code, external_id) => ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: customer, plan_code, external_id } }));
let n = 0;
const event = async (sub, code) => ok(await post('/api/v1/events', { event: { transaction_id: `wt${n++}`, external_subscription_id: sub, code } }));
const newWallet = async (customer, applies_to) => (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: customer, currency: 'EUR', rate_amount: '1', granted_credits: '100', limit: 'hard', applies_to } }))).wallet;

before(async () => { t = await startWithOrg(['--test-clock', '2026-03-01T00:00:00Z']); });
after(async () => { await t.cleanup(); });

test('a renamed metric stays the wallet\'s under its new code; a new metric of the old code is not', async () => {
  await metric('calls');
  await ok(await post('/api/v1/customers', { customer: { external_id: 'ren', currency: 'EUR' } }));
  const w = await newWallet('ren', { billable_metric_codes: ['calls'] });
  const renamed = await ok(await put('/api/v1/billable_metrics/calls', { billable_metric: { code: 'api_calls' } }));
  const follows = { fee_types: [], billable_metric_codes: ['api_calls'] };
  assert.deepEqual((await wallet(w.lago_id)).applies_to, follows);
  const listed = (await ok(await t.api('/api/v1/wallets?external_customer_id=ren'))).wallets;
  assert.deepEqual(listed.map((x) => x.applies_to), [follows]);
  // real-time debits: 1.00 EUR an api call, paid by the wallet (it read 10000 before the fix)
  await plan('p_ren', [charge(renamed.billable_metric.lago_id, '1')]);
  await subscribe('ren', 'p_ren', 'ren_sub');
  await event('ren_sub', 'api_calls');
  assert.equal((await wallet(w.lago_id)).balance_cents, 9900);
  // holds: the wallet is the metric's payer, so a hold reserves its credits (hard: no payer
  // would decline it)
  const hold = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'ren_sub', code: 'api_calls', properties: {} } }))).authorization;
  assert.deepEqual([hold.status, hold.held_amount_cents, hold.lago_wallet_id], ['authorized', 100, w.lago_id]);
  await ok(await post(`/api/v1/authorizations/${hold.lago_id}/capture`, {}));
  assert.equal((await wallet(w.lago_id)).balance_cents, 9800);
  // a new metric made with the old code is another metric: the wallet neither pays for it
  // (it paid 5.00 before the fix) nor holds for it
  const again = await metric('calls');
  await plan('q_ren', [charge(again, '5')]);
  await subscribe('ren', 'q_ren', 'ren_sub2');
  await event('ren_sub2', 'calls');
  assert.equal((await wallet(w.lago_id)).balance_cents, 9800);
  const other = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'ren_sub2', code: 'calls', properties: {} } }))).authorization;
  assert.deepEqual([other.status, other.held_amount_cents], ['declined', 0]);
  // and so after a crash: the stored wallet names the metric by its new code
  await t.restart({ kill: true });
  assert.deepEqual((await wallet(w.lago_id)).applies_to, follows);
  await event('ren_sub', 'api_calls');
  await event('ren_sub2', 'calls');
  assert.equal((await wallet(w.lago_id)).balance_cents, 9700);
  // the wallet's own update keeps what it names
  const kept = await ok(await put(`/api/v1/wallets/${w.lago_id}`, { wallet: { name: 'Calls credits' } }));
  assert.deepEqual(kept.wallet.applies_to, follows);
  await checkWalletLedger(t, w.lago_id);
});

test('a deleted metric leaves the wallets limited to it; with its last one gone a wallet pays for none', async () => {
  const a = await metric('del_a'), b = await metric('del_b'), c = await metric('del_c');
  await ok(await post('/api/v1/customers', { customer: { external_id: 'del', currency: 'EUR' } }));
  const w = await newWallet('del', { billable_metric_codes: ['del_a', 'del_b'] });
  const terminated = await newWallet('del', { billable_metric_codes: ['del_a'] });
  await ok(await t.api(`/api/v1/wallets/${terminated.lago_id}`, { method: 'DELETE' }));
  await plan('p_del', [charge(a, '1'), charge(b, '2'), charge(c, '3')]);
  await subscribe('del', 'p_del', 'del_sub');
  await ok(await t.api('/api/v1/billable_metrics/del_a', { method: 'DELETE' }));
  assert.deepEqual((await wallet(w.lago_id)).applies_to, { fee_types: [], billable_metric_codes: ['del_b'] });
  // a terminated wallet's answer drops it as well, as Lago's serializer lists live metrics only
  assert.deepEqual((await wallet(terminated.lago_id)).applies_to, { fee_types: [], billable_metric_codes: [] });
  await event('del_sub', 'del_b');
  assert.equal((await wallet(w.lago_id)).balance_cents, 9800);
  // its last metric deleted (its debit given back with it), the wallet is still limited to
  // billable metrics, to none left: Lago keeps its wallet targets, and its allocation
  // (Wallets::BuildAllocationRulesService) still treats it as limited
  await ok(await t.api('/api/v1/billable_metrics/del_b', { method: 'DELETE' }));
  const emptied = await wallet(w.lago_id);
  assert.deepEqual(emptied.applies_to, { fee_types: [], billable_metric_codes: [] });
  assert.equal(emptied.balance_cents, 10000);
  await event('del_sub', 'del_c');
  assert.equal((await wallet(w.lago_id)).balance_cents, 10000);
  // a metric made again with a deleted code is a new one: not the wallet's
  const b2 = await metric('del_b');
  const p = (await ok(await t.api('/api/v1/plans/p_del'))).plan;
  await ok(await put('/api/v1/plans/p_del', { plan: { charges: [...p.charges.map((x) => ({ id: x.lago_id })), charge(b2, '2')] } }));
  await event('del_sub', 'del_b');
  assert.equal((await wallet(w.lago_id)).balance_cents, 10000);
  const hold = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'del_sub', code: 'del_c', properties: {} } }))).authorization;
  assert.equal(hold.status, 'declined');
  await t.restart({ kill: true });
  await event('del_sub', 'del_c');
  assert.equal((await wallet(w.lago_id)).balance_cents, 10000);
  // an update sending only its fee types keeps that (the audit's finding: it made the wallet
  // pay for every metric)
  const typed = await ok(await put(`/api/v1/wallets/${w.lago_id}`, { wallet: { applies_to: { fee_types: [] } } }));
  assert.deepEqual(typed.wallet.applies_to, { fee_types: [], billable_metric_codes: [] });
  await event('del_sub', 'del_c');
  assert.equal((await wallet(w.lago_id)).balance_cents, 10000);
  // an update naming its metrics again lifts that
  const named = await ok(await put(`/api/v1/wallets/${w.lago_id}`, { wallet: { applies_to: { billable_metric_codes: ['del_c'] } } }));
  assert.deepEqual(named.wallet.applies_to, { fee_types: [], billable_metric_codes: ['del_c'] });
  await event('del_sub', 'del_c');
  assert.equal((await wallet(w.lago_id)).balance_cents, 9700);
  await checkWalletLedger(t, w.lago_id);
});

// A code json-c writes escaped in the stored terms ("/" as "\/", a quote, UTF-8) is found all
// the same.
test('codes with a slash, a quote or UTF-8 follow too', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'esc', currency: 'EUR' } }));
  const codes = ['api/v1 calls', 'say "hi"', 'appels-é'];
  for (const code of codes) await metric(code);
  const w = await newWallet('esc', { billable_metric_codes: codes });
  for (const code of codes)
    await ok(await put(`/api/v1/billable_metrics/${encodeURIComponent(code)}`, { billable_metric: { code: `${code}/2` } }));
  assert.deepEqual((await wallet(w.lago_id)).applies_to.billable_metric_codes, codes.map((c) => `${c}/2`));
  await ok(await t.api(`/api/v1/billable_metrics/${encodeURIComponent('say "hi"/2')}`, { method: 'DELETE' }));
  assert.deepEqual((await wallet(w.lago_id)).applies_to.billable_metric_codes, ['api/v1 calls/2', 'appels-é/2']);
});

// PUT /wallets changes only the applies_to keys it sends, as Lago's Wallets::UpdateService
// (`allowed_fee_types` only when `fee_types` is there, the targets only when
// `billable_metric_codes` is): `[]` clears that one list, `{}` and a key sent as null (which
// Lago's `permit` drops) change nothing. Found by an audit: applies_to replaced the whole
// object, so a wallet limited to one metric, sent only its fee types, paid for every metric.
test('an update changes only the applies_to lists it sends: a limited wallet stays limited', async () => {
  const calls = await metric('pa_calls'), other = await metric('pa_other');
  await ok(await post('/api/v1/customers', { customer: { external_id: 'pa', currency: 'EUR' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'pa', currency: 'EUR', rate_amount: '1', granted_credits: '100', code: 'pa_w', applies_to: { billable_metric_codes: ['pa_other'] } } }))).wallet;
  await plan('p_pa', [charge(calls, '1'), charge(other, '2')]);
  await subscribe('pa', 'p_pa', 'pa_sub');
  await event('pa_sub', 'pa_calls');
  assert.equal((await wallet(w.lago_id)).balance_cents, 10000); // not its metric
  const upd = async (applies_to) => (await ok(await put(`/api/v1/wallets/${w.lago_id}`, { wallet: { applies_to } }))).wallet.applies_to;
  // only fee_types sent: the metric it is limited to stays, and another metric's events are
  // still not its to pay (they took 1.00 a call from it before the fix)
  assert.deepEqual(await upd({ fee_types: [] }), { fee_types: [], billable_metric_codes: ['pa_other'] });
  await event('pa_sub', 'pa_calls');
  await event('pa_sub', 'pa_calls');
  assert.equal((await wallet(w.lago_id)).balance_cents, 10000);
  await event('pa_sub', 'pa_other');
  assert.equal((await wallet(w.lago_id)).balance_cents, 9800);
  assert.deepEqual(await upd({ fee_types: ['subscription'] }), { fee_types: ['subscription'], billable_metric_codes: ['pa_other'] });
  // only billable_metric_codes sent: the fee types stay
  assert.deepEqual(await upd({ billable_metric_codes: ['pa_other', 'pa_calls'] }), { fee_types: ['subscription'], billable_metric_codes: ['pa_other', 'pa_calls'] });
  assert.deepEqual(await upd({ billable_metric_codes: ['pa_other'] }), { fee_types: ['subscription'], billable_metric_codes: ['pa_other'] });
  // {} and lists sent as null change nothing
  const kept = { fee_types: ['subscription'], billable_metric_codes: ['pa_other'] };
  for (const applies_to of [{}, { fee_types: null }, { billable_metric_codes: null }, { fee_types: null, billable_metric_codes: null }, null])
    assert.deepEqual(await upd(applies_to), kept, JSON.stringify(applies_to));
  await event('pa_sub', 'pa_calls');
  assert.equal((await wallet(w.lago_id)).balance_cents, 9800);
  // with credits held, what changes nothing is no change of applies_to (it was refused
  // credits_are_held before the fix); a real change still is refused
  const hold = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'pa_sub', code: 'pa_other', properties: {} } }))).authorization;
  assert.deepEqual([hold.status, hold.lago_wallet_id], ['authorized', w.lago_id]);
  for (const applies_to of [{}, { fee_types: null }, { billable_metric_codes: ['pa_other'] }, { fee_types: ['subscription'] }])
    assert.deepEqual(await upd(applies_to), kept, JSON.stringify(applies_to));
  const refused = await put(`/api/v1/wallets/${w.lago_id}`, { wallet: { applies_to: { fee_types: [] } } });
  assert.equal(refused.status, 422);
  assert.deepEqual((await refused.json()).error_details, { applies_to: ['credits_are_held'] });
  await ok(await post(`/api/v1/authorizations/${hold.lago_id}/void`, {}));
  // the customer's route by wallet code reads applies_to the same way
  const byCode = await ok(await put('/api/v1/customers/pa/wallets/pa_w', { wallet: { applies_to: { fee_types: [] } } }));
  assert.deepEqual(byCode.wallet.applies_to, { fee_types: [], billable_metric_codes: ['pa_other'] });
  await event('pa_sub', 'pa_calls');
  assert.equal((await wallet(w.lago_id)).balance_cents, 9800);
  // [] clears the one list it names: the wallet then pays for every metric
  assert.deepEqual(await upd({ billable_metric_codes: [] }), { fee_types: [], billable_metric_codes: [] });
  await event('pa_sub', 'pa_calls');
  assert.equal((await wallet(w.lago_id)).balance_cents, 9700);
  await checkWalletLedger(t, w.lago_id);
});
