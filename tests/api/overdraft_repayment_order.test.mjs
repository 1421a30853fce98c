// A partial repayment of a soft wallet's overdraft takes the overdrawn usage in the order it was
// run up, whatever ids the rows drew: two servers fed the same requests, each drawing its ids
// from another deterministic stream (test builds), end with the same credits in each grant and
// the same ledger. Found by an audit's twin fuzzer: the charges' debits were taken by their
// lago ids (random UUIDs), so which grant an overdraft repayment became, and so where a later
// price cut gave the credits back (a paid grant or a promotional one: deferred revenue or not),
// changed from one server to another.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { payWallet } from '../lib/payments.mjs';

const servers = [];
after(async () => { await Promise.all(servers.map((s) => s.cleanup())); });

// Seeds whose charges' ids sort both ways (checked: the test failed with them before the fix).
const SEEDS = [1, 2, 3, 4];

async function started(seed) {
  process.env.TALLY_DETERMINISTIC_SEED = String(seed);
  try {
    const t = await startWithOrg(['--test-clock', '2026-01-01T10:00:00Z']);
    servers.push(t);
    return t;
  } finally {
    delete process.env.TALLY_DETERMINISTIC_SEED;
  }
}

// The sequence: a soft wallet with nothing in it, one event that overdraws it through three
// charges (two of one metric), a paid top-up that repays part of the overdraft, a granted one
// that repays the rest, then a price cut that removes the first charge and halves the second.
// What each grant holds and the ledger summed by account, direction and cause.
async function play(t) {
  const bm = (await t.call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'units', name: 'Units', aggregation_type: 'sum_agg', field_name: 'v' } })).billable_metric;
  const other = (await t.call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' } })).billable_metric;
  const charge = (id, amount) => ({ billable_metric_id: id, charge_model: 'standard', properties: { amount } });
  const plan = (await t.call('POST', '/api/v1/plans', { plan: { code: 'p', name: 'P', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    charge(bm.lago_id, '1'), charge(bm.lago_id, '2'), charge(other.lago_id, '3')] } })).plan;
  await t.call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c', plan_code: 'p', external_id: 's', subscription_at: '2026-01-01T00:00:00Z' } });
  const w = (await t.call('POST', '/api/v1/wallets', { wallet: { external_customer_id: 'c', currency: 'USD', rate_amount: '1', name: 'W', limit: 'soft', overdraft_credits: '100' } })).wallet;
  await t.call('POST', '/api/v1/events', { event: { transaction_id: 'e1', external_subscription_id: 's', code: 'units', properties: { v: '4' } } });
  await t.call('POST', '/api/v1/events', { event: { transaction_id: 'e2', external_subscription_id: 's', code: 'calls', properties: {} } });
  assert.equal((await t.call('GET', `/api/v1/wallets/${w.lago_id}`)).wallet.overdrawn_cents, 1500);
  // 5 credits repay the first 5 dollars of overdraft, then 10 the rest
  await t.call('POST', '/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: w.lago_id, paid_credits: '5' } });
  assert.equal(await payWallet(t, w.lago_id), 1);
  await t.call('POST', '/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: w.lago_id, granted_credits: '10' } });
  assert.equal((await t.call('GET', `/api/v1/wallets/${w.lago_id}`)).wallet.overdrawn_cents, 0);
  const [first, second, third] = plan.charges;
  await t.call('PUT', '/api/v1/plans/p', { plan: { charges: [
    { ...charge(bm.lago_id, '1'), id: second.lago_id, properties: { amount: '1' } },
    { ...charge(other.lago_id, '3'), id: third.lago_id }] } });
  assert.ok(first.lago_id);
  const grants = (await t.call('GET', `/api/v1/wallets/${w.lago_id}/wallet_transactions?transaction_type=inbound&per_page=100`)).wallet_transactions
    .filter((x) => x.status === 'settled' && x.transaction_status !== 'usage_refund')
    .map((x) => [x.transaction_status, x.amount, x.remaining_amount_cents]).sort();
  const ledger = {};
  for (const e of (await t.call('GET', `/api/v1/ledger_entries?per_page=1000&wallet_id=${w.lago_id}`)).ledger_entries) {
    const k = `${e.account}/${e.direction}/${e.cause ?? e.source ?? ''}`;
    ledger[k] = (ledger[k] ?? 0) + Number(e.amount_cents);
  }
  const wallet = (await t.call('GET', `/api/v1/wallets/${w.lago_id}`)).wallet;
  return { grants, ledger, balance: wallet.balance_cents };
}

test('an overdraft is repaid in the order it was run up, not in the order of random ids', async () => {
  const outcomes = [];
  for (const seed of SEEDS) outcomes.push(await play(await started(seed)));
  for (let i = 1; i < outcomes.length; i++)
    assert.deepEqual(outcomes[i], outcomes[0], `seed ${SEEDS[i]} against seed ${SEEDS[0]}`);
  // The usage first debited (the first charge, 4 dollars) was repaid first: by the paid grant
  // (4 of its 5), the rest by the granted one. Removing that charge gives the paid grant its 4
  // back; halving the second (8 dollars: 1 paid, 7 granted) gives 4 back to the granted one,
  // which paid last.
  assert.deepEqual(outcomes[0].grants, [['granted', '10.0', 400], ['purchased', '5.0', 400]]);
});
