// Interval rules over months of test-clock time: credits granted at each anniversary (in the
// customer's zone, never on the creation day), each grant lasting grant_expires_after, the
// unused part of the previous grant rolling over up to its cap and the rest expiring; several
// anniversaries passed at once are each handled, in order.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { payWallet } from '../lib/payments.mjs';

let t;
const post = async (path, body) => t.api(path, { method: 'POST', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const advance = async (to) => ok(await post('/api/v1/test_clock/advance', { test_clock: { to } }));
const wallet = async (id) => (await ok(await t.api(`/api/v1/wallets/${id}`))).wallet;
const txs = async (id, query) => (await ok(await t.api(`/api/v1/wallets/${id}/wallet_transactions?per_page=100&${query}`))).wallet_transactions;
let n = 0;

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-01-15T10:00:00Z']);
  const bm = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' } }))).billable_metric;
  await ok(await post('/api/v1/plans', { plan: { code: 'calls', name: 'Calls', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [
    { billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'acme', plan_code: 'calls', external_id: 'acme_sub', subscription_at: '2026-01-01T00:00:00Z' } }));
});
after(async () => { await t.cleanup(); });

test('monthly grants with a 2-month life, half of each rolling over into the next', async () => {
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'acme', currency: 'EUR', rate_amount: '1', name: 'Monthly',
    recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', granted_credits: '100', grant_expires_after: 'P2M', rollover: 'max_percentage', rollover_percentage: 50, transaction_name: 'Monthly grant' }] } }))).wallet;
  const [rule] = w.recurring_transaction_rules;
  assert.deepEqual([rule.trigger, rule.interval, rule.grant_expires_after, rule.rollover, rule.rollover_percentage], ['interval', 'monthly', 'P2M', 'max_percentage', 50]);
  assert.equal(w.balance_cents, 0); // nothing on the creation day
  await advance('2026-02-10T00:00:00Z');
  assert.equal((await wallet(w.lago_id)).balance_cents, 0);
  await advance('2026-02-20T00:00:00Z'); // the anniversary, 02-15, passed
  assert.equal((await wallet(w.lago_id)).balance_cents, 10000);
  let grants = await txs(w.lago_id, 'transaction_status=granted');
  assert.deepEqual(grants.map((g) => [g.source, g.amount, g.name, g.expiration_at]), [['interval', '100.0', 'Monthly grant', '2026-04-15T00:00:00Z']]);
  const events = Array.from({ length: 30 }, () => ({ transaction_id: `c${n++}`, external_subscription_id: 'acme_sub', code: 'calls' }));
  await ok(await post('/api/v1/events/batch', { events }));
  assert.equal((await wallet(w.lago_id)).balance_cents, 7000);
  // 03-15: 70 left of the first grant: 50 (half of 100) roll over to 05-15, 20 expire; 100 more
  await advance('2026-03-20T00:00:00Z');
  assert.equal((await wallet(w.lago_id)).balance_cents, 15000);
  grants = await txs(w.lago_id, 'transaction_status=granted');
  assert.deepEqual(grants.map((g) => [g.remaining_amount_cents, g.expiration_at]), [[10000, '2026-05-15T00:00:00Z'], [5000, '2026-05-15T00:00:00Z']]);
  let expired = await txs(w.lago_id, 'transaction_status=expired');
  assert.deepEqual(expired.map((x) => x.amount), ['20.0']);
  // three anniversaries at once (04-15, 05-15, 06-15), each in order, then what expired by 06-20
  await advance('2026-06-20T00:00:00Z');
  const now = await wallet(w.lago_id);
  assert.equal(now.balance_cents, 20000);
  grants = await txs(w.lago_id, 'transaction_status=granted');
  assert.equal(grants.length, 5);
  expired = await txs(w.lago_id, 'transaction_status=expired');
  assert.equal(expired.reduce((sum, x) => sum + Math.round(Number(x.amount) * 100), 0), 2000 + 5000 + 5000 + 5000 + 5000 + 5000);
  // the ledger: what expired was free credits, taken back from promotional_grants
  const entries = (await ok(await t.api(`/api/v1/ledger_entries?per_page=1000&wallet_id=${w.lago_id}`))).ledger_entries;
  const sum = (account, cause) => entries.filter((e) => e.account === account && e.cause === cause).reduce((s, e) => s + e.amount_cents, 0);
  assert.equal(sum('promotional_grants', 'grant'), 50000);
  assert.equal(sum('promotional_grants', 'expiry'), 27000);
  assert.equal(sum('revenue', 'consumption'), 3000);
  assert.equal(50000 - 27000 - 3000, now.balance_cents);
});

test('a target rule tops up to its target at each anniversary; a paid one that waits stays pending', async () => {
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'beta', plan_code: 'calls', external_id: 'beta_sub', subscription_at: '2026-06-01T00:00:00Z' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'beta', currency: 'EUR', rate_amount: '1', name: 'Weekly', granted_credits: '3',
    recurring_transaction_rules: [{ trigger: 'interval', interval: 'weekly', method: 'target', target_ongoing_balance: '10', grants_target_top_up: true, started_at: '2026-06-22T00:00:00Z' }] } }))).wallet;
  await advance('2026-06-21T00:00:00Z');
  assert.equal((await wallet(w.lago_id)).balance_cents, 300); // the rule starts on 06-22
  await advance('2026-06-22T00:00:00Z');
  assert.equal((await wallet(w.lago_id)).balance_cents, 1000);
  await ok(await post('/api/v1/events', { event: { transaction_id: `c${n++}`, external_subscription_id: 'beta_sub', code: 'calls' } }));
  await advance('2026-07-06T12:00:00Z'); // 06-29 and 07-06: back to 10 once, then nothing to add
  assert.equal((await wallet(w.lago_id)).balance_cents, 1000);
  const grants = await txs(w.lago_id, 'transaction_status=granted');
  assert.deepEqual(grants.map((g) => [g.source, g.amount]), [['interval', '1.0'], ['interval', '7.0'], ['manual', '3.0']]);
});

// The gap to the target is the gap the anniversary leaves: credits that expire at that very
// instant (the previous grant, lasting exactly one interval) are not counted as still there.
test('a target rule whose grants last one interval tops up to its target, not to what expires', async () => {
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'gamma', plan_code: 'calls', external_id: 'gamma_sub', subscription_at: '2026-07-01T00:00:00Z' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'gamma', currency: 'EUR', rate_amount: '1', name: 'Weekly',
    recurring_transaction_rules: [{ trigger: 'interval', interval: 'weekly', method: 'target', target_ongoing_balance: '10', grants_target_top_up: true, grant_expires_after: 'P1W', started_at: '2026-07-13T00:00:00Z' }] } }))).wallet;
  await advance('2026-07-13T00:00:00Z');
  assert.equal((await wallet(w.lago_id)).balance_cents, 1000);
  const events = Array.from({ length: 4 }, () => ({ transaction_id: `c${n++}`, external_subscription_id: 'gamma_sub', code: 'calls' }));
  await ok(await post('/api/v1/events/batch', { events }));
  assert.equal((await wallet(w.lago_id)).balance_cents, 600);
  await advance('2026-07-20T00:00:00Z'); // the 6 left expire as the next grant is made
  const now = await wallet(w.lago_id);
  assert.equal(now.balance_cents, 1000);
  assert.equal(now.ongoing_balance_cents, 1000);
  const grants = await txs(w.lago_id, 'transaction_status=granted');
  assert.deepEqual(grants.map((g) => [g.amount, g.expiration_at]), [['10.0', '2026-07-27T00:00:00Z'], ['10.0', '2026-07-20T00:00:00Z']]);
});

// Rollover "all" carries every unused credit of the previous anniversary on, the paid ones
// (the customer's money) as well as the free ones; carried on once, they last one more grant's
// life (docs/API.md).
test('rollover all carries both the paid and the free credits of a rule on', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'delta', currency: 'EUR' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'delta', currency: 'EUR', rate_amount: '1', name: 'Both', invoice_requires_successful_payment: false,
    recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', paid_credits: '50', granted_credits: '100', grant_expires_after: 'P1M', rollover: 'all', invoice_requires_successful_payment: false }] } }))).wallet;
  assert.equal(w.created_at.slice(0, 10), '2026-07-20');
  const expiries = async () => (await ok(await t.api(`/api/v1/ledger_entries?wallet_id=${w.lago_id}&per_page=100`))).ledger_entries
    .filter((e) => e.cause === 'expiry').map((e) => [e.account, e.amount_cents]).sort();
  await advance('2026-08-21T00:00:00Z');
  await payWallet(t, w.lago_id);
  assert.equal((await wallet(w.lago_id)).balance_cents, 15000);
  await advance('2026-09-21T00:00:00Z'); // all 150 carried on, 150 more
  await payWallet(t, w.lago_id);
  assert.equal((await wallet(w.lago_id)).balance_cents, 30000);
  assert.deepEqual(await expiries(), []);
  await advance('2026-10-21T00:00:00Z'); // 09-20's carried on, 08-20's end with their second life
  await payWallet(t, w.lago_id);
  assert.equal((await wallet(w.lago_id)).balance_cents, 30000);
  const expired = await expiries();
  assert.deepEqual(expired.filter(([account]) => account === 'breakage' || account === 'promotional_grants'),
    [['breakage', 5000], ['promotional_grants', 10000]]);
});

// max_credits caps what the anniversary's grants carry on together, paid credits first.
test('rollover max_credits caps the paid and free credits together, paid first', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'epsilon', currency: 'EUR' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'epsilon', currency: 'EUR', rate_amount: '1', name: 'Capped', invoice_requires_successful_payment: false,
    recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', paid_credits: '50', granted_credits: '100', grant_expires_after: 'P1M', rollover: 'max_credits', rollover_max_credits: '60', invoice_requires_successful_payment: false }] } }))).wallet;
  assert.equal(w.created_at.slice(0, 10), '2026-10-21');
  await advance('2026-11-22T00:00:00Z');
  await payWallet(t, w.lago_id);
  assert.equal((await wallet(w.lago_id)).balance_cents, 15000);
  await advance('2026-12-22T00:00:00Z'); // 60 carried on (the 50 paid, 10 free), 90 free expire
  await payWallet(t, w.lago_id);
  assert.equal((await wallet(w.lago_id)).balance_cents, 21000);
  const ledger = (await ok(await t.api(`/api/v1/ledger_entries?wallet_id=${w.lago_id}&per_page=100`))).ledger_entries;
  const expired = ledger.filter((e) => e.cause === 'expiry' && (e.account === 'breakage' || e.account === 'promotional_grants'));
  assert.deepEqual(expired.map((e) => [e.account, e.amount_cents]), [['promotional_grants', 9000]]);
});

// max_percentage caps the anniversary's grants together, paid first, however much of each was used
test('rollover max_percentage is a percentage of the paid and free grants together, one used up or not', async () => {
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'zeta', plan_code: 'calls', external_id: 'zeta_sub' } }));
  const now = (await ok(await t.api('/api/v1/test_clock'))).test_clock.now;
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'zeta', currency: 'EUR', rate_amount: '1', name: 'Half', invoice_requires_successful_payment: false,
    recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', paid_credits: '10', granted_credits: '20', grant_expires_after: 'P1M', rollover: 'max_percentage', rollover_percentage: 50, invoice_requires_successful_payment: false }] } }))).wallet;
  const day = (months) => { const d = new Date(now); d.setUTCMonth(d.getUTCMonth() + months); d.setUTCDate(d.getUTCDate() + 1); return d.toISOString(); };
  await advance(day(1));
  await payWallet(t, w.lago_id);
  assert.equal((await wallet(w.lago_id)).balance_cents, 3000);
  const events = Array.from({ length: 20 }, () => ({ transaction_id: `z${n++}`, external_subscription_id: 'zeta_sub', code: 'calls' }));
  await ok(await post('/api/v1/events/batch', { events })); // the 20 free credits first
  assert.equal((await wallet(w.lago_id)).balance_cents, 1000);
  await advance(day(2)); // the cap is 50% of 30: the 10 paid credits left all carry on
  await payWallet(t, w.lago_id);
  assert.equal((await wallet(w.lago_id)).balance_cents, 4000);
  const ledger = (await ok(await t.api(`/api/v1/ledger_entries?wallet_id=${w.lago_id}&per_page=100`))).ledger_entries;
  assert.deepEqual(ledger.filter((e) => e.cause === 'expiry' && e.account === 'breakage'), []);
});

// A grant lasting its rule's interval ends with the next anniversary, at local midnight in the
// customer's zone: not the same duration counted in UTC (Berlin's 1st is the 28th-31st in UTC).
test('a grant\'s life is counted on the customer\'s calendar, so it ends with the next anniversary', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'berlin', currency: 'EUR', timezone: 'Europe/Berlin' } }));
  const now = Date.parse((await ok(await t.api('/api/v1/test_clock'))).test_clock.now);
  let y = new Date(now).getUTCFullYear() + 1;
  if (y % 4 === 0) y += 1; // Feb 28 23:00Z is Mar 1 in Berlin only in a common year
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'berlin', currency: 'EUR', rate_amount: '1', name: 'Local',
    recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', granted_credits: '30', grant_expires_after: 'P1M', rollover: 'all', started_at: `${y}-02-28T23:00:00Z` }] } }))).wallet;
  await advance(`${y}-03-15T00:00:00Z`); // the first grant, at Mar 1 00:00 in Berlin
  const [first] = await txs(w.lago_id, 'transaction_status=granted');
  assert.equal(first.expiration_at, `${y}-03-31T22:00:00Z`); // Apr 1 00:00 CEST, the next anniversary
  await advance(`${y}-04-02T00:00:00Z`);
  assert.equal((await wallet(w.lago_id)).balance_cents, 6000); // 30 carried on, 30 new
});

// Found by an audit: a rule whose started_at was later on the wallet's creation day topped up
// then. Lago tops up no wallet on the local day it was made (CreateIntervalWalletTransactionsService:
// DATE(wallets.created_at) != DATE(today), in the customer's zone): the first is the next anniversary.
test('a started_at later on the wallet\'s own local day tops up first at its next anniversary, as Lago', async () => {
  const own = await startWithOrg(['--test-clock', '2026-01-10T16:00:00Z']); // 11:00 in New York
  try {
    const call = async (path, body) => ok(await own.api(path, { method: body ? 'POST' : 'GET', body }));
    await call('/api/v1/customers', { customer: { external_id: 'ny', currency: 'EUR', timezone: 'America/New_York' } });
    const make = async (started_at) => (await call('/api/v1/wallets', { wallet: { external_customer_id: 'ny', currency: 'EUR', rate_amount: '1', name: started_at,
      recurring_transaction_rules: [{ trigger: 'interval', interval: 'weekly', granted_credits: '1', started_at }] } })).wallet.lago_id;
    const sameDay = await make('2026-01-11T03:00:00Z'); // 22:00 on Jan 10 there, the wallet's day
    const nextDay = await make('2026-01-11T06:00:00Z'); // 01:00 on Jan 11 there
    const balance = async (id) => (await call(`/api/v1/wallets/${id}`)).wallet.balance_cents;
    const to = (at) => call('/api/v1/test_clock/advance', { test_clock: { to: at } });
    await to('2026-01-11T06:00:00Z');
    assert.deepEqual([await balance(sameDay), await balance(nextDay)], [0, 100]);
    await to('2026-01-17T04:59:59Z');
    assert.equal(await balance(sameDay), 0);
    await to('2026-01-17T05:00:00Z'); // local midnight of Jan 17, a week from Jan 10
    assert.equal(await balance(sameDay), 100);
  } finally { await own.cleanup(); }
});

// A rule's paid credits that wait for their payment are its anniversary's grant all the same:
// paid after that anniversary, they roll over at the next one as credits paid at once do, paid
// credits first. Found by an audit: they were no anniversary's grant, so they expired whole at
// their grant_expires_after, even with rollover all, while the rule's free credits rolled over.
test('rule credits paid after their anniversary roll over at the next one', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'eta', currency: 'EUR' } }));
  const now = (await ok(await t.api('/api/v1/test_clock'))).test_clock.now;
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'eta', currency: 'EUR', rate_amount: '1', name: 'Waits',
    recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', paid_credits: '10', granted_credits: '2', grant_expires_after: 'P1M', rollover: 'all', invoice_requires_successful_payment: true }] } }))).wallet;
  const day = (months) => { const d = new Date(now); d.setUTCMonth(d.getUTCMonth() + months); d.setUTCDate(d.getUTCDate() + 1); return d.toISOString(); };
  await advance(day(1));
  const [pending] = await txs(w.lago_id, 'transaction_status=purchased');
  assert.equal(pending.status, 'pending');
  assert.equal((await wallet(w.lago_id)).balance_cents, 200);
  await ok(await t.api(`/api/v1/invoices/${pending.lago_invoice_id}`, { method: 'PUT', body: { invoice: { payment_status: 'succeeded' } } }));
  assert.equal((await wallet(w.lago_id)).balance_cents, 1200);
  await advance(day(2)); // all 12 carry on; 2 new free credits, 10 new paid ones pending
  assert.equal((await wallet(w.lago_id)).balance_cents, 1400);
  const ledger = (await ok(await t.api(`/api/v1/ledger_entries?wallet_id=${w.lago_id}&per_page=100`))).ledger_entries;
  assert.deepEqual(ledger.filter((e) => e.cause === 'expiry'), []);
  const [carried] = (await txs(w.lago_id, 'transaction_status=purchased')).filter((x) => x.lago_id === pending.lago_id);
  assert.equal(carried.remaining_amount_cents, 1000);
  assert.ok(Date.parse(carried.expiration_at) > Date.parse(day(2)), carried.expiration_at);
});

// Found by a black-box audit: a rule whose credits were worth less than a cent at the wallet's
// rate was accepted, and then never topped up (a top-up of nothing is skipped), where the same
// credits as a one-off top-up are refused amount_rounds_to_zero.
test('a rule whose paid or granted credits are less than a cent at the rate is refused, on create and update', async () => {
  const refused = async (r) => {
    const b = await r.json();
    assert.equal(r.status, 422, JSON.stringify(b));
    assert.deepEqual(b.error_details, { recurring_transaction_rules: ['amount_rounds_to_zero'] });
    assert.match(b.message, /^(paid|granted)_credits [0-9.]+ is less than one minor unit of [A-Z]{3} at the wallet's rate_amount/);
  };
  const rules = [
    { trigger: 'threshold', threshold_credits: '5', paid_credits: '0', granted_credits: '0.004' },
    { trigger: 'threshold', threshold_credits: '5', paid_credits: '0.0000000000000000000000000000000000001' },
    { trigger: 'interval', interval: 'monthly', granted_credits: '0.0049' },
    { trigger: 'threshold', threshold_credits: '5', paid_credits: '10', granted_credits: '0.004' }, // part of it
    { trigger: 'interval', interval: 'monthly', paid_credits: '0.4' }, // 0.4 cents at 0.01
  ];
  await ok(await post('/api/v1/customers', { customer: { external_id: 'subcent', currency: 'EUR' } }));
  for (const [i, rule] of rules.entries()) {
    const rate = i === 4 ? '0.01' : '1';
    await refused(await post('/api/v1/wallets', { wallet: { external_customer_id: 'subcent', currency: 'EUR', rate_amount: rate, name: `R${i}`, recurring_transaction_rules: [rule] } }));
  }
  assert.deepEqual((await ok(await t.api('/api/v1/wallets?external_customer_id=subcent'))).wallets, []);
  // a cent is enough; on update, the stored wallet's rate decides
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'subcent', currency: 'EUR', rate_amount: '0.01', name: 'Cent',
    recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '5', granted_credits: '1' }] } }))).wallet;
  await refused(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'PUT', body: { wallet: { recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '5', granted_credits: '0.4' }] } } }));
  assert.equal((await wallet(w.lago_id)).recurring_transaction_rules[0].granted_credits, '1.0');
  await ok(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'PUT', body: { wallet: { recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '5', granted_credits: '2' }] } } }));
  // zero credits are no sub-cent amount: unchanged
  await ok(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'PUT', body: { wallet: { recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '5', paid_credits: '0', granted_credits: '3' }] } } }));
});

// A rule takes Lago's defaults from its wallet: the wallet's payment setting, and for a fixed
// rule that names no amount, the new wallet's own top-up; a fixed rule's paid top-up keeps to
// the wallet's paid top-up bounds unless it ignores them. Found by an audit: on a wallet whose
// credits wait for payment, the rule's purchases were credited at once; a rule without amounts
// bought nothing; a rule outside the bounds was taken (and fired for less than the minimum).
test("a rule takes its wallet's payment setting and top-up, and keeps to its top-up bounds", async () => {
  for (const [external_id, currency] of [['defaults', 'EUR'], ['defaults_own', 'USD'], ['defaults_bounded', 'GBP']])
    await ok(await post('/api/v1/customers', { customer: { external_id, currency } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'defaults', currency: 'EUR', rate_amount: '1', name: 'Pay first',
    paid_credits: '20', granted_credits: '3', invoice_requires_successful_payment: true,
    recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '2' }] } }))).wallet;
  const [rule] = w.recurring_transaction_rules;
  assert.deepEqual([rule.paid_credits, rule.granted_credits, rule.invoice_requires_successful_payment], ['20.0', '3.0', true]);
  const first = await txs(w.lago_id, 'transaction_status=purchased');
  assert.deepEqual(first.map((x) => [x.status, x.invoice_requires_successful_payment]), [['pending', true]]);
  // a rule's own setting wins
  const own = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'defaults_own', currency: 'USD', rate_amount: '1', name: 'Trust',
    invoice_requires_successful_payment: true,
    recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '2', paid_credits: '5', invoice_requires_successful_payment: false }] } }))).wallet;
  assert.equal(own.recurring_transaction_rules[0].invoice_requires_successful_payment, false);

  const bounded = async (body, rule) => post('/api/v1/wallets', { wallet: { external_customer_id: 'defaults_bounded', currency: 'GBP', rate_amount: '1', name: 'Bounded', ...body, recurring_transaction_rules: [rule] } });
  for (const [body, rule] of [
    [{ paid_top_up_max_amount_cents: 500 }, { trigger: 'threshold', threshold_credits: '2', paid_credits: '10' }],
    [{ paid_top_up_min_amount_cents: 2000 }, { trigger: 'interval', interval: 'monthly', paid_credits: '10' }],
  ]) {
    const r = await bounded(body, rule);
    const b = await r.json();
    assert.equal(r.status, 422, JSON.stringify(b));
    assert.deepEqual(b.error_details, { recurring_transaction_rules: ['invalid_recurring_rule'] });
    assert.match(b.message, /paid_credits 10.0 \(1000 cents\) is outside the wallet's paid_top_up_min\/max_amount_cents/);
  }
  const ignoring = (await ok(await bounded({ paid_top_up_max_amount_cents: 500 }, { trigger: 'threshold', threshold_credits: '2', paid_credits: '10', ignore_paid_top_up_limits: true }))).wallet;
  // bounds set later are checked against the rule too
  const put = await t.api(`/api/v1/wallets/${own.lago_id}`, { method: 'PUT', body: { wallet: { paid_top_up_min_amount_cents: 2000 } } });
  assert.equal(put.status, 422);
  assert.deepEqual((await put.json()).error_details, { recurring_transaction_rules: ['invalid_recurring_rule'] });
  assert.equal((await wallet(ignoring.lago_id)).recurring_transaction_rules[0].ignore_paid_top_up_limits, true);
});

// Found by an audit (report 9, F3): a terminated wallet still listed its rule as active. Lago's
// termination terminates the wallet's rules, and a wallet lists its active rules only.
test('a terminated wallet lists no recurring rule, in its DELETE answer and after', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'term_rules', currency: 'EUR' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'term_rules', currency: 'EUR', rate_amount: '1', granted_credits: '10',
    recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', granted_credits: '5' }] } }))).wallet;
  assert.deepEqual(w.recurring_transaction_rules.map((r) => r.status), ['active']);
  const ended = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'DELETE' }))).wallet;
  assert.equal(ended.status, 'terminated');
  assert.deepEqual(ended.recurring_transaction_rules, []);
  assert.deepEqual((await wallet(w.lago_id)).recurring_transaction_rules, []);
  const listed = (await ok(await t.api('/api/v1/wallets?external_customer_id=term_rules'))).wallets;
  assert.deepEqual(listed.map((x) => x.recurring_transaction_rules), [[]]);
});

// Found by an audit (report 9, F6): an interval rule answered threshold_credits null, which
// Lago's schema requires; Lago stores its default, 0, and answers "0.0". A threshold rule's
// interval stays null: Lago's CreateService stores the interval sent, none for such a rule.
test('an interval rule answers threshold_credits "0.0", a threshold rule interval null', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'rule_nulls', currency: 'EUR' } }));
  const byInterval = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'rule_nulls', currency: 'EUR', rate_amount: '1', name: 'I',
    recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', granted_credits: '5' }] } }))).wallet;
  const byThreshold = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'rule_nulls', currency: 'EUR', rate_amount: '1', name: 'T',
    recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '2', paid_credits: '5' }] } }))).wallet;
  for (const w of [byInterval, await wallet(byInterval.lago_id)])
    assert.deepEqual([w.recurring_transaction_rules[0].interval, w.recurring_transaction_rules[0].threshold_credits], ['monthly', '0.0']);
  for (const w of [byThreshold, await wallet(byThreshold.lago_id)])
    assert.deepEqual([w.recurring_transaction_rules[0].interval, w.recurring_transaction_rules[0].threshold_credits], [null, '2.0']);
});

// Found by an audit (audit 9): a rule's paid top-up paid after its rule's next anniversary was
// no anniversary's grant, so no rollover capped it: with `rollover` none it never expired,
// where paid on time it would have expired at that anniversary. Now its payment is refused
// (422 credits_expired: mark it failed, and refund it) whenever the rule has a rollover policy,
// `all` included (audit 13: settled late, `all` outlived on-time credits); without one it keeps
// its own expiry.
test('a rule\'s top-up paid after the next anniversary: refused when the rule has a rollover policy', async () => {
  const now = (await ok(await t.api('/api/v1/test_clock'))).test_clock.now;
  const day = (months) => { const d = new Date(now); d.setUTCMonth(d.getUTCMonth() + months); d.setUTCDate(d.getUTCDate() + 1); return d.toISOString(); };
  const pay = (inv, status) => t.api(`/api/v1/invoices/${inv}`, { method: 'PUT', body: { invoice: { payment_status: status } } });
  const made = [];
  for (const [id, rule] of [['late_none', { rollover: 'none' }], ['late_cap', { rollover: 'max_credits', rollover_max_credits: '100' }],
    ['late_all', { rollover: 'all', grant_expires_after: 'P2M' }], ['late_free', {}]]) {
    await ok(await post('/api/v1/customers', { customer: { external_id: id, currency: 'EUR' } }));
    made.push((await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: id, currency: 'EUR', rate_amount: '1',
      recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', paid_credits: '10', ...rule }] } }))).wallet);
  }
  await advance(day(1)); // the first anniversary's purchases, pending
  await advance(day(2)); // the second's: the first ones' anniversary is superseded
  for (const [k, w] of made.entries()) {
    const bought = (await txs(w.lago_id, 'transaction_status=purchased')).sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at));
    assert.deepEqual(bought.map((x) => x.status), ['pending', 'pending'], w.external_customer_id);
    const r = await pay(bought[0].lago_invoice_id, 'succeeded');
    const body = await r.json();
    if (k < 3) { // a rollover policy: paid on time, day(2)'s rollover would have decided them
      assert.equal(r.status, 422, JSON.stringify(body));
      assert.deepEqual(body.error_details, { payment_status: ['credits_expired'] });
      assert.match(body.message, /anniversary/);
      assert.equal((await wallet(w.lago_id)).balance_cents, 0);
      await ok(await pay(bought[0].lago_invoice_id, 'failed'));
    } else {
      assert.equal(r.status, 200, JSON.stringify(body));
      assert.equal((await wallet(w.lago_id)).balance_cents, 1000);
    }
    const first = (await txs(w.lago_id, 'transaction_status=purchased')).find((x) => x.lago_id === bought[0].lago_id);
    if (k === 3)
      assert.equal(first.expiration_at, null);
    // the current anniversary's is paid as ever
    await ok(await pay(bought[1].lago_invoice_id, 'succeeded'));
  }
});

// Found by an audit (audit 13): the refusal above told anniversaries apart by the last grant's
// id, so one that made nothing (a target reached) left the late top-up "the current one", kept a
// month longer than paid on time; with `all`, one paid two anniversaries late took the current
// grant's expiry, outliving the same credits paid on time; and a cap that would have carried it
// all on was refused saying it would not. Now the rule's next anniversary's instant decides,
// whatever it made, for every rollover policy, and the message says what happened. A catch-up
// that fires two anniversaries at once refuses the first one's top-up and takes the second's.
test('a rule\'s top-up paid after the next anniversary is refused even when that anniversary made nothing, and for any policy', async () => {
  const now = (await ok(await t.api('/api/v1/test_clock'))).test_clock.now;
  const day = (months) => { const d = new Date(now); d.setUTCMonth(d.getUTCMonth() + months); d.setUTCDate(d.getUTCDate() + 1); return d.toISOString(); };
  const pay = (inv, status) => t.api(`/api/v1/invoices/${inv}`, { method: 'PUT', body: { invoice: { payment_status: status } } });
  const make = async (id, body, rule) => {
    await ok(await post('/api/v1/customers', { customer: { external_id: id, currency: 'EUR' } }));
    return (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: id, currency: 'EUR', rate_amount: '1', ...body,
      recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', ...rule }] } }))).wallet;
  };
  const purchases = async (w) => (await txs(w.lago_id, 'transaction_status=purchased')).reverse(); // listed newest first
  const refused = async (inv, w, balance) => {
    const r = await pay(inv, 'succeeded');
    const body = await r.json();
    assert.equal(r.status, 422, `${w.external_customer_id}: ${JSON.stringify(body)}`);
    assert.deepEqual(body.error_details, { payment_status: ['credits_expired'] });
    assert.match(body.message, /next anniversary came before it was paid/);
    assert.doesNotMatch(body.message, /would not have carried/);
    assert.equal((await wallet(w.lago_id)).balance_cents, balance);
    await ok(await pay(inv, 'failed'));
  };
  const target = await make('late3_target', { granted_credits: '1' }, { method: 'target', target_ongoing_balance: '10', rollover: 'none' });
  const all2 = await make('late3_all2', {}, { paid_credits: '10', rollover: 'all', grant_expires_after: 'P1M' });
  const cap = await make('late3_cap', {}, { paid_credits: '10', rollover: 'max_credits', rollover_max_credits: '50' });
  await advance(day(1)); // the first anniversary: the target rule buys 9, the others 10, pending
  const [t1] = await purchases(target);
  assert.equal(t1.amount, '9.0');
  await ok(await post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: target.lago_id, granted_credits: '20' } }));
  await advance(day(2)); // the second: the target (21 >= 10) buys nothing
  assert.equal((await purchases(target)).length, 1);
  await refused(t1.lago_invoice_id, target, 2100);
  await refused((await purchases(cap))[0].lago_invoice_id, cap, 0);
  await advance(day(3)); // two anniversaries late
  await refused((await purchases(all2))[0].lago_invoice_id, all2, 0);
  // the current anniversary's top-up is paid as ever
  const current = (await purchases(all2)).at(-1);
  await ok(await pay(current.lago_invoice_id, 'succeeded'));
  assert.equal((await wallet(all2.lago_id)).balance_cents, 1000);

  // a catch-up: both anniversaries fire at one instant; the first's top-up is the superseded one
  const catchup = await make('late3_catchup', {}, { paid_credits: '10', rollover: 'none' });
  const past5 = new Date(day(5));
  past5.setUTCDate(past5.getUTCDate() + 1);
  await advance(past5.toISOString()); // its two anniversaries at once
  const both = await purchases(catchup);
  assert.equal(both.length, 2);
  assert.equal(both[0].created_at, both[1].created_at);
  await refused(both[0].lago_invoice_id, catchup, 0);
  await ok(await pay(both[1].lago_invoice_id, 'succeeded'));
  assert.equal((await wallet(catchup.lago_id)).balance_cents, 1000);
});

// Found by an audit (report 6): rollover_percentage had to be a JSON number where
// rollover_max_credits and every credit amount take a decimal string. Both are taken now, read
// exactly from their text; the percentage is still a whole number from 0 to 100.
test('rollover_percentage takes a decimal string as a JSON number, a whole one from 0 to 100', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'rp', currency: 'EUR' } }));
  const send = async (rollover_percentage) => {
    const r = await post('/api/v1/wallets', { wallet: { external_customer_id: 'rp', currency: 'EUR', rate_amount: '1',
      recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', granted_credits: '1', rollover: 'max_percentage', rollover_percentage }] } });
    const b = await r.json();
    if (r.status === 200) await ok(await t.api(`/api/v1/wallets/${b.wallet.lago_id}`, { method: 'DELETE' }));
    return r.status === 200 ? b.wallet.recurring_transaction_rules[0].rollover_percentage : [r.status, b.error_details, typeof b.message];
  };
  for (const [given, kept] of [['25', 25], [25, 25], ['25.000', 25], ['0', 0], ['100', 100], [' 7 '.trim(), 7]])
    assert.deepEqual(await send(given), kept, JSON.stringify(given));
  // JSON 25.0 is read from its text, as a credit amount is
  const raw = await t.api('/api/v1/wallets', { method: 'POST', raw: '{"wallet":{"external_customer_id":"rp","currency":"EUR","rate_amount":"1","recurring_transaction_rules":[{"trigger":"interval","interval":"monthly","granted_credits":"1","rollover":"max_percentage","rollover_percentage":25.0}]}}' });
  const rb = await raw.json();
  assert.equal(raw.status, 200, JSON.stringify(rb));
  assert.equal(rb.wallet.recurring_transaction_rules[0].rollover_percentage, 25);
  await ok(await t.api(`/api/v1/wallets/${rb.wallet.lago_id}`, { method: 'DELETE' }));
  for (const [given, code] of [['101', 'value_is_out_of_range'], ['-1', 'value_is_out_of_range'], ['25.5', 'value_is_out_of_range'],
    ['100.00001', 'value_is_out_of_range'], ['abc', 'invalid_value'], [true, 'invalid_type'], [{}, 'invalid_type']])
    assert.deepEqual(await send(given), [422, { rollover_percentage: [code] }, 'string'], JSON.stringify(given));
});

// Found by an audit (report 6, finding 4): a rule's purchase_order_number, which Lago's rule has
// ("added to invoices generated for the resulting wallet top-ups. If not set, falls back to the
// wallet's"), was dropped. It is kept with the rule, answered, kept by an update that leaves it
// out, and the top-ups the rule makes carry it, or the wallet's when the rule has none, on the
// transaction and on its credit invoice.
test("a rule's purchase_order_number is kept, and its top-ups carry it, else the wallet's", async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'rule_po', currency: 'EUR' } }));
  const make = async (wallet) => (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'rule_po', currency: 'EUR', rate_amount: '1', ...wallet } }))).wallet;
  const own = await make({ name: 'own', purchase_order_number: 'PO-W1',
    recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', paid_credits: '5', purchase_order_number: 'PO-RULE' }] });
  const inherits = await make({ name: 'inherits', purchase_order_number: 'PO-W2',
    recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', paid_credits: '5' }] });
  const none = await make({ name: 'none', recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', paid_credits: '5' }] });
  for (const [w, po] of [[own, 'PO-RULE'], [inherits, null], [none, null]]) {
    assert.equal(w.recurring_transaction_rules[0].purchase_order_number, po);
    assert.equal((await wallet(w.lago_id)).recurring_transaction_rules[0].purchase_order_number, po);
  }
  // an update naming the rule without it keeps it; one naming it changes it
  const ruleId = own.recurring_transaction_rules[0].lago_id;
  const put = async (id, rule) => (await ok(await t.api(`/api/v1/wallets/${id}`, { method: 'PUT', body: { wallet: { recurring_transaction_rules: [rule] } } }))).wallet;
  assert.equal((await put(own.lago_id, { lago_id: ruleId, paid_credits: '6' })).recurring_transaction_rules[0].purchase_order_number, 'PO-RULE');
  assert.equal((await put(none.lago_id, { lago_id: none.recurring_transaction_rules[0].lago_id, purchase_order_number: 'PO-LATER' })).recurring_transaction_rules[0].purchase_order_number, 'PO-LATER');
  // refused over 255 bytes or not a string, and nothing changes
  for (const [value, code] of [['x'.repeat(256), 'value_is_too_long'], [5, 'invalid_type']]) {
    const r = await t.api(`/api/v1/wallets/${own.lago_id}`, { method: 'PUT', body: { wallet: { recurring_transaction_rules: [{ lago_id: ruleId, purchase_order_number: value }] } } });
    const b = await r.json();
    assert.equal(r.status, 422, JSON.stringify(b));
    assert.deepEqual(b.error_details, { purchase_order_number: [code] });
  }
  assert.equal((await wallet(own.lago_id)).recurring_transaction_rules[0].purchase_order_number, 'PO-RULE');
  // a wallet's and a top-up's are bounded alike
  for (const [path, body] of [['/api/v1/wallets', { wallet: { external_customer_id: 'rule_po', currency: 'EUR', rate_amount: '1', purchase_order_number: 'x'.repeat(256) } }],
    ['/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: own.lago_id, granted_credits: '1', purchase_order_number: 'x'.repeat(256) } }]]) {
    const r = await post(path, body);
    assert.equal(r.status, 422, path);
    assert.deepEqual((await r.json()).error_details, { purchase_order_number: ['value_is_too_long'] }, path);
  }
  // the wallet's as it is when the rule tops up
  await ok(await t.api(`/api/v1/wallets/${inherits.lago_id}`, { method: 'PUT', body: { wallet: { purchase_order_number: 'PO-W2-NEW' } } }));
  // the next anniversary's top-ups: the rule's, the wallet's, the rule's set later
  const now = Date.parse((await ok(await t.api('/api/v1/test_clock'))).test_clock.now);
  await advance(new Date(now + 33 * 86400e3).toISOString());
  for (const [w, po] of [[own, 'PO-RULE'], [inherits, 'PO-W2-NEW'], [none, 'PO-LATER']]) {
    const made = await txs(w.lago_id, 'transaction_status=purchased');
    assert.deepEqual(made.map((x) => [x.source, x.purchase_order_number]), [['interval', po]], w.name);
    const invoice = (await ok(await t.api(`/api/v1/invoices/${made[0].lago_invoice_id}`))).invoice;
    assert.equal(invoice.purchase_order_number, po, w.name);
  }
});
