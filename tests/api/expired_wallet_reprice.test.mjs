// A customer whose wallet expired (its own `expiration_at`, passed in a test clock advance) has
// no wallet, as one whose wallet was deleted has: what it uses meanwhile is the invoice's, and
// stays so through a later price change (docs/API.md, Real-time debit). An audit found a live
// server charge the next wallet a raise on usage no wallet covered, once the wallet had expired
// (not once it was deleted): users u0, u1 sent after the expiry at 1, raised to 3, then one seat
// (its own step 1.00) held at 500 and debited 5.0 from the new wallet; a restarted server said
// 100 and 1.0 (the expired wallet stayed in the writer's memory, where the customer still
// counted as one with a wallet; its code too stayed taken: the new wallet, made with it, was
// refused value_already_exist). Each case runs twice, on customers `${case}_live` (all of it before a restart)
// and `${case}_rst` (the hold, the new wallet and the seat after a SIGKILL that follows the raise).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

let t;
const post = (path, body) => t.api(path, { method: 'POST', body });
const put = (path, body) => t.api(path, { method: 'PUT', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-03-10T00:00:00Z']);
});
after(async () => { await t.cleanup(); });

const expires = '2026-03-11T00:00:00Z';
// every wallet has the same code: an ended one's is free again (unique among active wallets)
const wallet = (c, extra) => post('/api/v1/wallets', { wallet: { external_customer_id: c, currency: 'USD', rate_amount: '1', code: 'prepaid', ...extra } });

// What each customer had before the clock moved past 03-11.
const cases = {
  // the audit's: a hard wallet of 0 credits
  hard: async (c) => ok(await wallet(c, { granted_credits: '0', limit: 'hard', expiration_at: expires })),
  soft: async (c) => ok(await wallet(c, { granted_credits: '0', limit: 'soft', overdraft_credits: '10', expiration_at: expires })),
  none: async (c) => ok(await wallet(c, { granted_credits: '5', expiration_at: expires })),
  // its expiry set by an update
  updated: async (c) => {
    const w = (await ok(await wallet(c, { granted_credits: '5', limit: 'hard' }))).wallet;
    await ok(await put(`/api/v1/wallets/${w.lago_id}`, { wallet: { expiration_at: expires } }));
  },
  // a wallet that paid for a user before it expired
  paid: async (c, send) => {
    await ok(await wallet(c, { granted_credits: '5', expiration_at: expires }));
    await ok(await send(c, 'users', { user: 'early' }));
  },
  // the controls, right before the fix too
  deleted: async (c) => {
    const w = (await ok(await wallet(c, { granted_credits: '5' }))).wallet;
    await ok(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'DELETE' }));
  },
  never: async () => {},
};

test('a raise on usage after a wallet expired is the invoice\'s, not the next wallet\'s, live and after a restart', async () => {
  const metric = async (code, aggregation_type, field_name) =>
    (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code, name: code, aggregation_type, field_name, recurring: true } }))).billable_metric;
  const users = await metric('users', 'unique_count_agg', 'user');
  const seats = await metric('seats', 'sum_agg', 'seats');
  const charges = (price) => [
    { billable_metric_id: users.lago_id, charge_model: 'standard', pay_in_advance: true, properties: { amount: price } },
    { billable_metric_id: seats.lago_id, charge_model: 'standard', pay_in_advance: true, properties: { amount: '1' } }];
  const plan = (await ok(await post('/api/v1/plans', { plan: { code: 'p', name: 'p', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: charges('1') } }))).plan;
  let n = 0;
  const send = (c, code, properties) => post('/api/v1/events', { event: { transaction_id: `e${n++}`, external_subscription_id: c, code, properties } });
  const customers = Object.keys(cases).flatMap((k) => [`${k}_live`, `${k}_rst`]);
  for (const c of customers) {
    await ok(await post('/api/v1/customers', { customer: { external_id: c, currency: 'USD' } }));
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'p', external_id: c } }));
    await cases[c.replace(/_(live|rst)$/, '')](c, send);
  }
  await ok(await post('/api/v1/test_clock/advance', { test_clock: { to: '2026-03-12T00:00:00Z' } }));
  for (const c of customers) {
    const left = (await ok(await t.api(`/api/v1/wallets?external_customer_id=${c}`))).wallets.filter((w) => w.status !== 'terminated');
    assert.equal(left.length, 0, `${c}: no wallet left`);
    await ok(await send(c, 'users', { user: 'u0' }));
    await ok(await send(c, 'users', { user: 'u1' }));
  }
  // a raise: users 1 -> 3
  await ok(await put('/api/v1/plans/p', { plan: { charges: charges('3').map((ch, k) => ({ id: plan.charges[k].lago_id, ...ch })) } }));

  const seen = {}, made = {};
  const run = async (c) => {
    const hold = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: c, code: 'seats', properties: { seats: 1 } } }))).authorization;
    made[c] = (await ok(await wallet(c, { granted_credits: '1000' }))).wallet.lago_id;
    await ok(await send(c, 'seats', { seats: 1 }));
    const w = (await ok(await t.api(`/api/v1/wallets/${made[c]}`))).wallet;
    seen[c] = { hold: [hold.status, hold.amount_cents], consumed: w.consumed_credits };
  };
  for (const c of customers.filter((c) => c.endsWith('_live'))) await run(c);
  await t.restart({ kill: true });
  for (const c of customers.filter((c) => c.endsWith('_rst'))) await run(c);
  const want = { hold: ['declined', 100], consumed: '1.0' };
  assert.deepEqual(seen, Object.fromEntries(customers.map((c) => [c, want])));
  // and what the live ones were debited stands after the restart
  for (const c of customers.filter((c) => c.endsWith('_live')))
    assert.equal((await ok(await t.api(`/api/v1/wallets/${made[c]}`))).wallet.consumed_credits, '1.0', `${c} after the restart`);
  for (const c of customers) await checkWalletLedger(t, made[c]);
});
