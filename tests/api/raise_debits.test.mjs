// A re-pricing that raises a fee (a plan's price, a tax's rate, a subscription's overrides) is
// debited from the wallets in the command that makes it, as the next event's debit would have
// brought it, and never refused: what credits cannot cover, past a hard limit too, is the
// invoice's (docs/API.md, Real-time debit). It once waited for the subscription's next debit,
// and a raise with no later event in the period was never paid by credits at all (an audit's
// report 9, finding 2: 100 credits, 880 debited at 10% tax, the tax raised to 50%: 1200 owed,
// 320 never taken). Each case is checked live, across a SIGKILL, and past the period's close.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

let t;
const post = (path, body) => t.api(path, { method: 'POST', body });
const put = (path, body) => t.api(path, { method: 'PUT', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
let n = 0;

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-05-01T00:00:00Z']);
});
after(async () => { await t.cleanup(); });

// A count metric and a plan of its own priced `price` a call, a customer subscribed to it with a
// wallet of `credits` (a credit is 1.00) and `calls` calls sent.
async function customer(name, { price = '1', credits = '100', limit = 'hard', calls = 10, taxCodes } = {}) {
  const bm = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: name, name, aggregation_type: 'count_agg' } }))).billable_metric;
  const charge = { billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: price }, ...(taxCodes ? { tax_codes: taxCodes } : {}) };
  const plan = (await ok(await post('/api/v1/plans', { plan: { code: name, name, interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [charge] } }))).plan;
  await ok(await post('/api/v1/customers', { customer: { external_id: name, currency: 'USD' } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: name, plan_code: name, external_id: name, subscription_at: '2026-05-01T00:00:00Z' } }));
  const wallet = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: name, currency: 'USD', rate_amount: '1', granted_credits: credits, limit } }))).wallet.lago_id;
  const send = () => post('/api/v1/events', { event: { transaction_id: `${name}-${n++}`, external_subscription_id: name, code: name } });
  for (let i = 0; i < calls; i++) await ok(await send());
  const balance = async () => (await ok(await t.api(`/api/v1/wallets/${wallet}`))).wallet.balance_cents;
  const reprice = async (amount) => ok(await put(`/api/v1/plans/${name}`, { plan: { charges: [{ id: plan.charges[0].lago_id, ...charge, properties: { amount } }] } }));
  const usage = async () => (await ok(await t.api(`/api/v1/customers/${name}/current_usage?external_subscription_id=${name}`))).customer_usage.total_amount_cents;
  return { wallet, send, balance, reprice, usage, charge, plan };
}

test('a plan price raised mid-period is debited by the edit itself, once', async () => {
  const c = await customer('price');
  assert.equal(await c.balance(), 9000);
  await c.reprice('3'); // 10 calls: 10.00 -> 30.00
  assert.equal(await c.balance(), 7000, 'the raise is taken by the edit');
  assert.equal(await c.usage(), 3000);
  await c.reprice('3'); // the same price again takes nothing more
  assert.equal(await c.balance(), 7000);
  await t.restart({ kill: true });
  assert.equal(await c.balance(), 7000, 'on disk when the edit was answered');
  await ok(await c.send()); // the next call pays its own step alone
  assert.equal(await c.balance(), 6700);
  await c.reprice('2'); // a cut gives back, as before: 11 calls at 2.00
  assert.equal(await c.balance(), 7800);
  await checkWalletLedger(t, c.wallet);
});

test('a raise the credits cannot cover is not refused: the wallet pays what it holds, the rest is the invoice\'s', async () => {
  const c = await customer('short', { credits: '15' });
  assert.equal(await c.balance(), 500);
  await c.reprice('3'); // 30.00 owed, 10.00 paid, 5.00 left: taken, 15.00 the invoice's
  assert.equal(await c.balance(), 0);
  assert.equal(await c.usage(), 3000);
  // a hard wallet at zero refuses the next call, as it would have before the edit
  const r = await c.send();
  assert.equal(r.status, 402);
  // a top-up pays the next call only: the uncovered part stays the invoice's
  await ok(await post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: c.wallet, granted_credits: '10' } }));
  assert.equal(await c.balance(), 1000);
  await ok(await c.send());
  assert.equal(await c.balance(), 700);
  await checkWalletLedger(t, c.wallet);
});

test('a subscription\'s overrides that raise its charge are debited by the update', async () => {
  const c = await customer('override', { calls: 5 });
  assert.equal(await c.balance(), 9500);
  // the same plan again with overrides (Lago takes them on POST /subscriptions only)
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'override', plan_code: 'override', external_id: 'override', plan_overrides: { charges: [{ id: c.plan.charges[0].lago_id, properties: { amount: '4' } }] } } }));
  assert.equal(await c.balance(), 8000, '5 calls at 4.00');
  await t.restart({ kill: true });
  assert.equal(await c.balance(), 8000);
  await checkWalletLedger(t, c.wallet);
});

test('a tax rate raised mid-period is debited at once, on every subscription it prices', async () => {
  await ok(await post('/api/v1/taxes', { tax: { code: 'levy', name: 'Levy', rate: '10' } }));
  const a = await customer('tax_a', { taxCodes: ['levy'], calls: 8 }); // 8.00 + 0.80
  const b = await customer('tax_b', { taxCodes: ['levy'], calls: 4 }); // 4.00 + 0.40
  assert.deepEqual([await a.balance(), await b.balance()], [9120, 9560]);
  await ok(await put('/api/v1/taxes/levy', { tax: { rate: '50' } }));
  assert.deepEqual([await a.balance(), await b.balance()], [8800, 9400], '12.00 and 6.00 taken, nothing sent');
  // the period closes with nothing more to take: its debits are its fee
  await ok(await post('/api/v1/test_clock/advance', { test_clock: { to: '2026-06-02T00:00:00Z' } }));
  assert.deepEqual([await a.balance(), await b.balance()], [8800, 9400]);
  await ok(await a.send()); // the new period's first call: 1.50
  assert.equal(await a.balance(), 8650);
  await checkWalletLedger(t, a.wallet);
  await checkWalletLedger(t, b.wallet);
});
