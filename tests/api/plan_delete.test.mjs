// Deleting a plan ends the subscriptions on it, in the same command, as Lago's
// Plans::PrepareDestroyService and Plans::DestroyService (with Plans::DestroyJob, which destroys
// the plan's overridden children first) do: its active subscriptions are terminated exactly as
// DELETE /subscriptions terminates one (the wallets given back what the usage no longer brings,
// open holds released and voided), the pending ones canceled, a downgrade scheduled to it
// canceled as DELETE ?status=pending cancels it (the current subscription goes on), and those
// with a plan of their own made from it (plan_overrides) go with it. Found by an audit: the
// deletion was refused, 422 plan_has_subscriptions with no message.
//
// A twin customer on an identical plan, whose subscription is terminated by DELETE
// /subscriptions at the same instant, is what the deleted plan's customer must look like.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

let t;
const call = (method, path, body) => t.call(method, path, body);
const advance = (to) => call('POST', '/api/v1/test_clock/advance', { test_clock: { to } });
let n = 0;
const send = (sub, code, properties = {}, extra = {}) => t.api('/api/v1/events', { method: 'POST', body: { event: { transaction_id: `pd${n++}`, external_subscription_id: sub, code, properties, ...extra } } });
const subscribe = (customer, plan_code, external_id, extra = {}) => call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: customer, plan_code, external_id, ...extra } });
const wallets = {}, holds = {};
const wallet = async (k) => (await call('GET', `/api/v1/wallets/${wallets[k]}`)).wallet;
const balances = (w) => [w.status, w.balance_cents, w.ongoing_balance_cents, w.ongoing_usage_balance_cents];
const ALL = 'status[]=active&status[]=pending&status[]=terminated&status[]=canceled';
// every subscription with that external id, oldest first: [plan_code, status, its end]
async function named(external_id) {
  const all = (await call('GET', `/api/v1/subscriptions?per_page=1000&${ALL}&external_id=${external_id}`)).subscriptions;
  return all.reverse().map((s) => [s.plan_code, s.status, s.terminated_at ?? s.canceled_at ?? null]);
}
// what a wallet's ledger and transactions say, without their ids
async function money(k) {
  const entries = await checkWalletLedger(t, wallets[k]);
  const txs = (await call('GET', `/api/v1/wallets/${wallets[k]}/wallet_transactions?per_page=1000`)).wallet_transactions;
  return {
    entries: entries.map((e) => [e.account, e.cause, e.direction, e.amount_cents].join(' ')).sort(),
    transactions: txs.map((x) => [x.transaction_type, x.transaction_status, x.status, x.amount].join(' ')).sort(),
  };
}

const AT = '2026-03-11T12:00:00Z';

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-03-01T00:00:00Z']);
  const metric = async (code, aggregation_type, extra = {}) => (await call('POST', '/api/v1/billable_metrics', { billable_metric: { code, name: code, aggregation_type, ...extra } })).billable_metric.lago_id;
  const seats = await metric('seats', 'sum_agg', { field_name: 'seats', recurring: true });
  const units = await metric('units', 'sum_agg', { field_name: 'v' });
  const calls = await metric('calls', 'count_agg');
  const charges = [
    { billable_metric_id: seats, charge_model: 'standard', prorated: true, properties: { amount: '30' } },
    { billable_metric_id: units, charge_model: 'standard', properties: { amount: '1' } },
    { billable_metric_id: calls, charge_model: 'standard', pay_in_advance: true, properties: { amount: '1' } },
  ];
  for (const code of ['doomed', 'twin'])
    await call('POST', '/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents: 1000, amount_currency: 'USD', charges } });
  await call('POST', '/api/v1/plans', { plan: { code: 'dear', name: 'dear', interval: 'monthly', amount_cents: 5000, amount_currency: 'USD', charges: [] } });

  // the same usage, on the plan to delete and on its twin
  for (const [k, plan_code] of [['victim', 'doomed'], ['twin', 'twin']]) {
    await subscribe(k, plan_code, `${k}_sub`);
    wallets[k] = (await call('POST', '/api/v1/wallets', { wallet: { external_customer_id: k, currency: 'USD', rate_amount: '1', name: k, granted_credits: '100' } })).wallet.lago_id;
    assert.equal((await send(`${k}_sub`, 'seats', { seats: 2 })).status, 200);
    assert.equal((await send(`${k}_sub`, 'units', { v: 5 })).status, 200);
    for (let i = 0; i < 3; i++) assert.equal((await send(`${k}_sub`, 'calls')).status, 200);
  }
  await advance('2026-03-08T00:00:00Z'); // a hold lasts a week at most: open at the deletion
  for (const k of ['victim', 'twin'])
    holds[k] = (await call('POST', '/api/v1/authorizations', { authorization: { external_subscription_id: `${k}_sub`, code: 'units', properties: { v: '20' }, expires_in: 7 * 86400 } })).authorization.lago_id;
  // a subscription not started yet, a downgrade scheduled to the plan, one with a plan of its own
  await subscribe('later', 'doomed', 'later_sub', { subscription_at: '2026-04-01T00:00:00Z' });
  await subscribe('down', 'dear', 'down_sub');
  assert.equal((await subscribe('down', 'doomed', 'down_sub')).subscription.next_plan_code, 'doomed');
  assert.equal((await subscribe('custom', 'doomed', 'custom_sub', { plan_overrides: { amount_cents: 900 } })).subscription.plan_amount_cents, 900);
});
after(async () => { await t.cleanup(); });

test('deleting a plan terminates its subscriptions as DELETE /subscriptions does, and cancels the pending ones', async () => {
  // 2 seats for March: 6000; 5 units: 500; 3 calls paid in advance: 300
  assert.deepEqual(balances(await wallet('victim')), ['active', 10000 - 6800, 10000 - 6800 - 2000, 2000]);
  await advance(AT);
  await call('DELETE', '/api/v1/subscriptions/twin_sub');
  const r = await t.api('/api/v1/plans/doomed', { method: 'DELETE', headers: { 'Idempotency-Key': 'del-doomed' } });
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  assert.equal(body.plan.code, 'doomed');
  assert.equal((await t.api('/api/v1/plans/doomed')).status, 404);

  // Lago's statuses: terminated now, canceled now; the current subscription of a downgrade to
  // the plan goes on, with nothing scheduled
  assert.deepEqual(await named('victim_sub'), [['doomed', 'terminated', AT]]);
  assert.deepEqual(await named('twin_sub'), [['twin', 'terminated', AT]]);
  assert.deepEqual(await named('later_sub'), [['doomed', 'canceled', AT]]);
  assert.deepEqual(await named('custom_sub'), [['doomed', 'terminated', AT]]);
  assert.deepEqual(await named('down_sub'), [['dear', 'active', null], ['doomed', 'canceled', AT]]);
  const down = (await call('GET', '/api/v1/subscriptions/down_sub')).subscription;
  assert.deepEqual([down.plan_code, down.next_plan_code, down.downgrade_plan_date], ['dear', null, null]);
  const terminated = (await call('GET', '/api/v1/subscriptions?per_page=1000&status[]=terminated')).subscriptions;
  assert.deepEqual(terminated.map((s) => s.external_id).sort(), ['custom_sub', 'twin_sub', 'victim_sub']);

  // the money: as the twin's after DELETE /subscriptions. Priced to March 11th, that day
  // counted: 2 × 11/31 = 0.70968 × 30 USD -> 2129; the hold released and voided
  assert.deepEqual(balances(await wallet('victim')), ['active', 10000 - 2129 - 800, 10000 - 2129 - 800, 0]);
  assert.deepEqual(balances(await wallet('victim')), balances(await wallet('twin')));
  assert.deepEqual(await money('victim'), await money('twin'));
  for (const k of ['victim', 'twin']) {
    const h = (await call('GET', `/api/v1/authorizations/${holds[k]}`)).authorization;
    assert.deepEqual([h.status, h.held_amount_cents], ['voided', 0]);
  }

  // the same key answers the same, and deletes nothing again
  const again = await t.api('/api/v1/plans/doomed', { method: 'DELETE', headers: { 'Idempotency-Key': 'del-doomed' } });
  assert.deepEqual([again.status, await again.json()], [200, body]);
});

test('after the deletion, events to its ended subscriptions are refused as after a termination, and a restart keeps it all', async () => {
  const before = { victim: await money('victim'), w: balances(await wallet('victim')) };
  await advance('2026-03-12T00:00:00Z');
  for (const sub of ['victim_sub', 'twin_sub', 'custom_sub', 'later_sub']) {
    const r = await send(sub, 'units', { v: 1 });
    assert.equal(r.status, 422, sub);
    assert.deepEqual((await r.json()).error_details, { external_subscription_id: ['subscription_not_found'] }, sub);
  }
  assert.equal((await send('down_sub', 'units', { v: 1 })).status, 200); // on dear: no charge
  // one timestamped in its life is its late event, as the terminated twin's: it spends nothing
  for (const sub of ['victim_sub', 'twin_sub'])
    assert.equal((await send(sub, 'units', { v: 4 }, { timestamp: Date.parse('2026-03-05T00:00:00Z') / 1000 })).status, 200, sub);
  assert.deepEqual(balances(await wallet('victim')), before.w);
  assert.deepEqual(await money('victim'), before.victim);
  await t.restart();
  assert.deepEqual(await named('victim_sub'), [['doomed', 'terminated', AT]]);
  assert.deepEqual(await named('later_sub'), [['doomed', 'canceled', AT]]);
  assert.deepEqual(await named('custom_sub'), [['doomed', 'terminated', AT]]);
  assert.deepEqual(await named('down_sub'), [['dear', 'active', null], ['doomed', 'canceled', AT]]);
  assert.equal((await t.api('/api/v1/plans/doomed')).status, 404);
  assert.deepEqual(balances(await wallet('victim')), before.w);
  assert.deepEqual(await money('victim'), before.victim);
  assert.deepEqual(await money('victim'), await money('twin'));
  // the switch the downgrade would have made does not come
  await advance('2026-04-02T00:00:00Z');
  assert.deepEqual(await named('down_sub'), [['dear', 'active', null], ['doomed', 'canceled', AT]]);
  assert.deepEqual(await named('later_sub'), [['doomed', 'canceled', AT]]);
});

test('a plan without subscriptions is deleted as before; a deleted one is 404', async () => {
  await call('POST', '/api/v1/plans', { plan: { code: 'idle', name: 'idle', interval: 'monthly', amount_cents: 0, amount_currency: 'USD' } });
  assert.equal((await call('DELETE', '/api/v1/plans/idle')).plan.code, 'idle');
  assert.equal((await t.api('/api/v1/plans/idle', { method: 'DELETE' })).status, 404);
});
