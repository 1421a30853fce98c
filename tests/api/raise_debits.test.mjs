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

// Found by an audit of the above: one edit that raised a charge on a customer's first
// subscription and cut another on its second debited the rise before the fall came back, so a
// hard wallet at zero left the rise to the invoice and then kept the fall's credits (10.00
// unspent, 10.00 owed), and a threshold rule bought a top-up for an edit that changed nothing
// net. Every fall is given back before any rise is debited, whichever subscription comes first.
test('one edit\'s fall on one subscription pays its rise on another, in either order', async () => {
  const id = async (code) => (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code, name: code, aggregation_type: 'count_agg' } }))).billable_metric.lago_id;
  const x = await id('ord_x'), y = await id('ord_y');
  const charges = (px, py, made) => [
    { id: made?.[0].lago_id, billable_metric_id: x, charge_model: 'standard', properties: { amount: px } },
    { id: made?.[1].lago_id, billable_metric_id: y, charge_model: 'standard', properties: { amount: py } }];
  const plan = (await ok(await post('/api/v1/plans', { plan: { code: 'ord', name: 'ord', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: charges('1', '2') } }))).plan;
  // a hard wallet that the calls empty, and one with a threshold rule the calls leave above it
  const hard = { granted_credits: '30', limit: 'hard' };
  const ruled = { granted_credits: '50', recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '15', method: 'fixed', granted_credits: '50' }] };
  const wallets = {};
  for (const [c, first, terms] of [['ord_a', 'ord_x', hard], ['ord_b', 'ord_y', hard], ['ord_c', 'ord_x', ruled], ['ord_d', 'ord_y', ruled]]) {
    await ok(await post('/api/v1/customers', { customer: { external_id: c, currency: 'USD' } }));
    for (const s of [1, 2])
      await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'ord', external_id: `${c}_${s}`, subscription_at: '2026-05-01T00:00:00Z' } }));
    wallets[c] = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: c, currency: 'USD', rate_amount: '1', ...terms } }))).wallet.lago_id;
    // x's calls on the first subscription for ord_a and ord_c, on the second for the others:
    // 10.00 + 20.00
    for (let i = 0; i < 10; i++)
      for (const [s, code] of [[1, first], [2, first === 'ord_x' ? 'ord_y' : 'ord_x']])
        await ok(await post('/api/v1/events', { event: { transaction_id: `${c}-${s}-${i}`, external_subscription_id: `${c}_${s}`, code } }));
  }
  const seen = async (c) => {
    const w = (await ok(await t.api(`/api/v1/wallets/${wallets[c]}`))).wallet;
    const txs = (await ok(await t.api(`/api/v1/wallets/${wallets[c]}/wallet_transactions?per_page=100`))).wallet_transactions;
    return [w.balance_cents, w.consumed_amount_cents, txs.filter((x) => x.source === 'threshold').length];
  };
  const before = { ord_a: [0, 3000, 0], ord_b: [0, 3000, 0], ord_c: [2000, 3000, 0], ord_d: [2000, 3000, 0] };
  for (const c of Object.keys(wallets)) assert.deepEqual(await seen(c), before[c], c);
  await ok(await put('/api/v1/plans/ord', { plan: { charges: charges('2', '1', plan.charges) } })); // x +10.00, y -10.00
  for (const c of Object.keys(wallets)) {
    assert.deepEqual(await seen(c), before[c], `${c}: the edit changed nothing net`);
    await checkWalletLedger(t, wallets[c]);
  }
});

// Found by the same audit: a customer's threshold rule fired once per subscription a command
// debited, where the command crossed the threshold once, net (Lago checks its rules once per
// balance refresh): the first debit's top-up lifted the balance above the threshold, and the
// second subscription's debit crossed it again. A batch, or an edit, fires it once.
test('a batch or an edit over a customer\'s two subscriptions fires a threshold rule once', async () => {
  await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'thr', name: 'thr', aggregation_type: 'count_agg' } }));
  const bm = (await ok(await t.api('/api/v1/billable_metrics/thr'))).billable_metric.lago_id;
  const charge = (amount, made) => [{ id: made?.lago_id, billable_metric_id: bm, charge_model: 'standard', properties: { amount } }];
  const plan = (await ok(await post('/api/v1/plans', { plan: { code: 'thr', name: 'thr', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: charge('1') } }))).plan;
  await ok(await post('/api/v1/customers', { customer: { external_id: 'thr_c', currency: 'USD' } }));
  for (const s of [1, 2])
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'thr_c', plan_code: 'thr', external_id: `thr_${s}`, subscription_at: '2026-05-01T00:00:00Z' } }));
  const wallet = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'thr_c', currency: 'USD', rate_amount: '1', granted_credits: '125',
    recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '100', method: 'fixed', granted_credits: '10' }] } }))).wallet.lago_id;
  const topUps = async () => (await ok(await t.api(`/api/v1/wallets/${wallet}/wallet_transactions?per_page=100`))).wallet_transactions.filter((w) => w.source === 'threshold').length;
  const balance = async () => (await ok(await t.api(`/api/v1/wallets/${wallet}`))).wallet.balance_cents;
  const batch = async (n, tag) => ok(await post('/api/v1/events/batch', { events: [1, 2].flatMap((s) => Array.from({ length: n }, (_, i) => ({ transaction_id: `thr-${tag}-${s}-${i}`, external_subscription_id: `thr_${s}`, code: 'thr' }))) }));
  await batch(10, 'a'); // 125 -> 105
  assert.deepEqual([await balance(), await topUps()], [10500, 0]);
  // 10 calls on each subscription: 105 -> 85 net, one crossing: one top-up (it was one after
  // the first subscription's 95, and another after the second's 95 again)
  await batch(10, 'b');
  assert.deepEqual([await balance(), await topUps()], [9500, 1]);
  // one edit raising the price over both subscriptions (20 calls each, 1.00 -> 1.50): 20.00
  await ok(await put('/api/v1/plans/thr', { plan: { charges: charge('1.5', plan.charges[0]) } }));
  assert.deepEqual([await balance(), await topUps()], [8500, 2], 'one more top-up, not two');
  await checkWalletLedger(t, wallet);
});

// Found by an audit of the once-per-command rule's first cut, which fired each customer's
// rules after all of a command's debits: a hard wallet above its threshold then refused, for
// ever, a batch over two subscriptions that the first debit's top-up used to pay (100 credits,
// threshold 50, 100 granted, 60.00 + 60.00 of calls: 402 "at least 2000 cents short" at every try). A
// rule fires where the balance first crosses, once per command, and the batch is paid.
test('a hard wallet\'s threshold top-up made by a batch\'s first debit pays the rest of the batch', async () => {
  await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'hb', name: 'hb', aggregation_type: 'count_agg' } }));
  const bm = (await ok(await t.api('/api/v1/billable_metrics/hb'))).billable_metric.lago_id;
  await ok(await post('/api/v1/plans', { plan: { code: 'hb', name: 'hb', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [{ billable_metric_id: bm, charge_model: 'standard', properties: { amount: '10' } }] } }));
  await ok(await post('/api/v1/customers', { customer: { external_id: 'hb_c', currency: 'USD' } }));
  for (const s of [1, 2])
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'hb_c', plan_code: 'hb', external_id: `hb_${s}`, subscription_at: '2026-05-01T00:00:00Z' } }));
  const wallet = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'hb_c', currency: 'USD', rate_amount: '1', granted_credits: '100', limit: 'hard',
    recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '50', method: 'fixed', granted_credits: '100' }] } }))).wallet.lago_id;
  const r = await post('/api/v1/events/batch', { events: [1, 2].flatMap((s) => Array.from({ length: 6 }, (_, i) => ({ transaction_id: `hb-${s}-${i}`, external_subscription_id: `hb_${s}`, code: 'hb' }))) });
  assert.equal(r.status, 200, JSON.stringify(await r.clone().json()));
  const txs = (await ok(await t.api(`/api/v1/wallets/${wallet}/wallet_transactions?per_page=100`))).wallet_transactions;
  assert.deepEqual([(await ok(await t.api(`/api/v1/wallets/${wallet}`))).wallet.balance_cents, txs.filter((x) => x.source === 'threshold').length], [8000, 1]);
  await checkWalletLedger(t, wallet);
});

// Found by the same audit: a period's start, which debits the units recurring charges carry
// into it for every subscription due (a test clock's advance, the real clock's sweep), fired a
// customer's rule once per subscription where its balance crossed once, net (70 -> 10 over two
// subscriptions: 30 granted twice). Once per command there too.
test('a period start settling a customer\'s two subscriptions fires its threshold rule once', async () => {
  const bm = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'ps', name: 'ps', aggregation_type: 'sum_agg', field_name: 'seats', recurring: true } }))).billable_metric.lago_id;
  await ok(await post('/api/v1/plans', { plan: { code: 'ps', name: 'ps', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [{ billable_metric_id: bm, charge_model: 'standard', properties: { amount: '1' } }] } }));
  await ok(await post('/api/v1/customers', { customer: { external_id: 'ps_c', currency: 'USD' } }));
  for (const s of [1, 2])
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'ps_c', plan_code: 'ps', external_id: `ps_${s}`, billing_time: 'calendar' } }));
  const wallet = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'ps_c', currency: 'USD', rate_amount: '1', granted_credits: '130',
    recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '40', method: 'fixed', granted_credits: '30' }] } }))).wallet.lago_id;
  for (const s of [1, 2]) await ok(await post('/api/v1/events', { event: { transaction_id: `ps-${s}`, external_subscription_id: `ps_${s}`, code: 'ps', properties: { seats: 30 } } }));
  const seen = async () => [(await ok(await t.api(`/api/v1/wallets/${wallet}`))).wallet.balance_cents,
    (await ok(await t.api(`/api/v1/wallets/${wallet}/wallet_transactions?per_page=100`))).wallet_transactions.filter((x) => x.source === 'threshold').length];
  assert.deepEqual(await seen(), [7000, 0]);
  const now = Date.parse((await ok(await t.api('/api/v1/test_clock'))).test_clock.now);
  const next = new Date(now); next.setUTCMonth(next.getUTCMonth() + 1, 1); next.setUTCHours(0, 0, 1, 0);
  await ok(await post('/api/v1/test_clock/advance', { test_clock: { to: next.toISOString() } }));
  // the new period's 30 + 30 seats: 70 -> 10, one crossing, one top-up of 30
  assert.deepEqual(await seen(), [4000, 1]);
  await checkWalletLedger(t, wallet);
});

// Found by an audit of the rule above: the rules were looked at after all of a subscription's
// charges were debited, so a top-up bought at the first charge's crossing came too late for the
// second: a hard wallet (10 credits, threshold 5, 100 granted) refused a batch of 8.00 on each of
// two charges of one subscription at every try, and a wallet without a limit left the second
// charge's part to the invoice while it then held 100 credits. Looked at charge by charge.
test('a threshold top-up bought at one charge\'s crossing pays the same subscription\'s next charge', async () => {
  const ids = [];
  for (const code of ['tc_a', 'tc_b']) ids.push((await ok(await post('/api/v1/billable_metrics', { billable_metric: { code, name: code, aggregation_type: 'count_agg' } }))).billable_metric.lago_id);
  await ok(await post('/api/v1/plans', { plan: { code: 'tc', name: 'tc', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: ids.map((id) => ({ billable_metric_id: id, charge_model: 'standard', properties: { amount: '1' } })) } }));
  for (const [c, limit] of [['tc_hard', 'hard'], ['tc_none', 'none']]) {
    await ok(await post('/api/v1/customers', { customer: { external_id: c, currency: 'USD' } }));
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'tc', external_id: c } }));
    const wallet = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: c, currency: 'USD', rate_amount: '1', granted_credits: '10', limit,
      recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '5', method: 'fixed', granted_credits: '100' }] } }))).wallet.lago_id;
    const r = await post('/api/v1/events/batch', { events: ['tc_a', 'tc_b'].flatMap((code) => Array.from({ length: 8 }, (_, i) => ({ transaction_id: `${c}-${code}-${i}`, external_subscription_id: c, code }))) });
    assert.equal(r.status, 200, `${c}: ${JSON.stringify(await r.clone().json())}`);
    const w = (await ok(await t.api(`/api/v1/wallets/${wallet}`))).wallet;
    const txs = (await ok(await t.api(`/api/v1/wallets/${wallet}/wallet_transactions?per_page=100`))).wallet_transactions;
    // 10 - 16 + 100: every call paid by credits, one top-up
    assert.deepEqual([w.balance_cents, w.consumed_amount_cents, txs.filter((x) => x.source === 'threshold').length], [9400, 1600, 1], c);
    await checkWalletLedger(t, wallet);
  }
});
