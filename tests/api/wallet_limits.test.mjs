// How much a wallet may hold: at most WALLET_BALANCE_MAX_CENTS (10^14 cents: 10^12 credits at
// a rate of 1 USD) in its grants and the purchases waiting for their payment. A top-up, a new
// wallet's credits or a rule's amount past it is refused (422 on the field that asked for it,
// with a message saying how much fits) before anything changes; a rule's top-up that does not
// fit is not made. Found by an audit: ten grants of 10^16 credits wrapped the balance and the
// organization's promotional_grants account around int64.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startWithOrg } from '../lib/tallyd.mjs';
import { payWallet } from '../lib/payments.mjs';

let t;
const post = async (path, body) => t.api(path, { method: 'POST', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const wallet = async (id) => (await ok(await t.api(`/api/v1/wallets/${id}`))).wallet;
const txs = async (id) => (await ok(await t.api(`/api/v1/wallets/${id}/wallet_transactions?per_page=100`))).wallet_transactions;
const ledger = async (query) => (await ok(await t.api(`/api/v1/ledger_entries?per_page=1000&${query}`))).ledger_entries;
const topUp = (id, credits) => post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: id, ...credits } });
const newWallet = async (customer, extra = {}) =>
  (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: customer, currency: 'USD', rate_amount: '1', ...extra } }))).wallet;

// A 422 on `field` with Tally's message, and what the message says.
const refused = async (r, field) => {
  const b = await r.json();
  assert.equal(r.status, 422, JSON.stringify(b));
  assert.deepEqual(b.error_details, { [field]: ['value_is_out_of_range'] });
  assert.equal(typeof b.message, 'string', JSON.stringify(b));
  return b.message;
};

// Everything a wallet's state is made of, to compare before and after a refusal.
const state = async (id) => ({ wallet: await wallet(id), txs: await txs(id), ledger: await ledger(`wallet_id=${id}`) });

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-01-15T10:00:00Z']);
  for (const c of ['audit', 'fill', 'both', 'pending', 'big', 'terms', 'monthly', 'door'])
    await ok(await post('/api/v1/customers', { customer: { external_id: c, currency: 'USD' } }));
});
after(async () => { await t.cleanup(); });

test("the audit's ten grants of 10^16 credits are each refused, and change nothing", async () => {
  const w = await newWallet('audit', { name: 'w' });
  const was = await state(w.lago_id);
  for (let i = 0; i < 10; i++) {
    const message = await refused(await topUp(w.lago_id, { granted_credits: '10000000000000000' }), 'granted_credits');
    assert.match(message, /a wallet holds at most 1000000000000\.0 credits/);
  }
  assert.deepEqual(await state(w.lago_id), was);
  // the organization's accounts saw nothing either
  assert.deepEqual(await ledger('external_customer_id=audit'), []);
  // and a small grant is fine: the wallet was never corrupted
  await ok(await topUp(w.lago_id, { granted_credits: '1' }));
  assert.equal((await wallet(w.lago_id)).balance_cents, 100);
  const [entry] = (await ledger(`wallet_id=${w.lago_id}`)).filter((e) => e.account === 'promotional_grants');
  assert.deepEqual([entry.balance_before_cents, entry.balance_after_cents], [0, 100]);
  // `to` includes its instant, as `from` does (and as /events' timestamp_to): an entry asked for
  // by its own created_at is found (it was left out)
  const at = encodeURIComponent(entry.created_at);
  const exact = (await ledger(`wallet_id=${w.lago_id}&from=${at}&to=${at}`)).map((e) => e.lago_id ?? e.id);
  assert.ok(exact.length > 0 && exact.includes(entry.lago_id ?? entry.id), JSON.stringify(exact));
});

test('grants add up to the limit and not one cent past it', async () => {
  const w = await newWallet('fill');
  await ok(await topUp(w.lago_id, { granted_credits: '600000000000' })); // 6 x 10^13 cents
  let was = await state(w.lago_id);
  const message = await refused(await topUp(w.lago_id, { granted_credits: '600000000000' }), 'granted_credits');
  assert.match(message, /holds 600000000000\.0/);
  assert.match(message, /at most 400000000000\.0 more/);
  assert.deepEqual(await state(w.lago_id), was);
  await ok(await topUp(w.lago_id, { paid_credits: '400000000000' })); // exactly the limit
  await payWallet(t, w.lago_id);
  assert.equal((await wallet(w.lago_id)).balance_cents, 1e14);
  was = await state(w.lago_id);
  await refused(await topUp(w.lago_id, { granted_credits: '0.01' }), 'granted_credits');
  await refused(await topUp(w.lago_id, { paid_credits: '0.01' }), 'paid_credits');
  assert.deepEqual(await state(w.lago_id), was);
  // what is voided makes room again
  await ok(await topUp(w.lago_id, { voided_credits: '1' }));
  await ok(await topUp(w.lago_id, { granted_credits: '1' }));
  assert.equal((await wallet(w.lago_id)).balance_cents, 1e14);
});

test('paid and granted credits of one request count together; the one that passes is named', async () => {
  const w = await newWallet('both');
  const was = await state(w.lago_id);
  await refused(await topUp(w.lago_id, { paid_credits: '600000000000', granted_credits: '600000000000' }), 'granted_credits');
  await refused(await topUp(w.lago_id, { paid_credits: '1000000000000.01' }), 'paid_credits');
  assert.deepEqual(await state(w.lago_id), was); // no purchase, no invoice, no posting
  const invoices = await t.api('/api/v1/invoices?external_customer_id=both');
  if (invoices.status === 200) assert.deepEqual((await invoices.json()).invoices, []);
});

test('purchases waiting for their payment count', async () => {
  const w = await newWallet('pending', { invoice_requires_successful_payment: true });
  await ok(await topUp(w.lago_id, { paid_credits: '600000000000' }));
  assert.equal((await wallet(w.lago_id)).balance_cents, 0);
  await refused(await topUp(w.lago_id, { granted_credits: '600000000000' }), 'granted_credits');
  await ok(await topUp(w.lago_id, { granted_credits: '400000000000' }));
});

test("a new wallet's credits past the limit refuse the wallet", async () => {
  const r = await post('/api/v1/wallets', { wallet: { external_customer_id: 'big', currency: 'USD', rate_amount: '1', paid_credits: '500000000000', granted_credits: '500000000000.01' } });
  await refused(r, 'granted_credits');
  assert.deepEqual((await ok(await t.api('/api/v1/wallets?external_customer_id=big'))).wallets, []);
  // at a rate of 100 USD a credit, the limit is 10^10 credits
  const r2 = await post('/api/v1/wallets', { wallet: { external_customer_id: 'big', currency: 'USD', rate_amount: '100', granted_credits: '10000000001' } });
  assert.match(await refused(r2, 'granted_credits'), /at most 10000000000\.0 credits/);
  await newWallet('big', { rate_amount: '100', granted_credits: '10000000000' });
});

test('an overdraft or a rule amount past the limit is refused', async () => {
  const over = await post('/api/v1/wallets', { wallet: { external_customer_id: 'terms', currency: 'USD', rate_amount: '1', limit: 'soft', overdraft_credits: '1000000000000.01' } });
  assert.equal(over.status, 422);
  assert.deepEqual((await over.json()).error_details, { overdraft_credits: ['value_is_out_of_range'] });
  // an overdraft of less than a cent at the wallet's rate is refused as such a top-up is, not
  // kept as none (an audit: 200 with overdraft_credits 0.0, and the soft wallet refused as hard)
  const tiny = await post('/api/v1/wallets', { wallet: { external_customer_id: 'terms', currency: 'USD', rate_amount: '0.03', limit: 'soft', overdraft_credits: '0.1' } });
  assert.equal(tiny.status, 422);
  assert.deepEqual((await tiny.json()).error_details, { overdraft_credits: ['amount_rounds_to_zero'] });
  assert.deepEqual((await ok(await t.api('/api/v1/wallets?external_customer_id=terms'))).wallets, []);
  for (const rule of [
    { trigger: 'threshold', threshold_credits: '1000000000000.01', granted_credits: '1' },
    { trigger: 'threshold', threshold_credits: '1', paid_credits: '50000000000000000' },
    { trigger: 'threshold', threshold_credits: '1', method: 'target', target_ongoing_balance: '1000000000000.01' },
    { trigger: 'interval', interval: 'monthly', granted_credits: '1000000000000.01' },
    { trigger: 'interval', interval: 'monthly', granted_credits: '1', rollover: 'max_credits', rollover_max_credits: '10000000000000' },
  ]) {
    const r = await post('/api/v1/wallets', { wallet: { external_customer_id: 'terms', currency: 'USD', rate_amount: '1', recurring_transaction_rules: [rule] } });
    const b = await r.json();
    assert.equal(r.status, 422, JSON.stringify([rule, b]));
    assert.deepEqual(b.error_details, { recurring_transaction_rules: ['value_is_out_of_range'] }, JSON.stringify(rule));
  }
  assert.deepEqual((await ok(await t.api('/api/v1/wallets?external_customer_id=terms'))).wallets, []);
  // an update is held to the same, at the wallet's own rate
  const w = await newWallet('terms', { rate_amount: '1000' });
  const r = await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'PUT', body: { wallet: { recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', granted_credits: '100000000001' }] } } });
  assert.equal(r.status, 422);
  assert.deepEqual((await r.json()).error_details, { recurring_transaction_rules: ['value_is_out_of_range'] });
  assert.deepEqual((await wallet(w.lago_id)).recurring_transaction_rules, []);
});

test("an interval rule's grant that would pass the limit is not made", async () => {
  const w = await newWallet('monthly', { recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', granted_credits: '600000000000' }] });
  await ok(await post('/api/v1/test_clock/advance', { test_clock: { to: '2026-02-20T00:00:00Z' } }));
  assert.equal((await wallet(w.lago_id)).balance_cents, 6e13);
  await ok(await post('/api/v1/test_clock/advance', { test_clock: { to: '2026-03-20T00:00:00Z' } }));
  const now = await wallet(w.lago_id);
  assert.equal(now.balance_cents, 6e13);
  assert.equal((await txs(w.lago_id)).length, 1);
  // the promotional_grants account moved once
  const grants = (await ledger(`wallet_id=${w.lago_id}`)).filter((e) => e.account === 'promotional_grants');
  assert.equal(grants.length, 1);
});

test("the organization's receivable, cash and promotional_grants accounts stop at 2^60, and say so", async () => {
  const w = await newWallet('door', { paid_credits: '1', granted_credits: '1' });
  await payWallet(t, w.lago_id);
  // as if the organization had taken in almost 2^60 cents already (the ledger's own rows are
  // left as they are: only the running balances tallyd starts from move)
  const inflowMax = 2n ** 60n;
  await t.restart({ between: (dir) => {
    const r = spawnSync('sqlite3', [join(dir, 'tally.db'),
      `UPDATE ledger_balances SET balance_cents = ${inflowMax - 150n} WHERE account IN (0, 3, 9)`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  } });
  await ok(await topUp(w.lago_id, { granted_credits: '1' })); // 2^60 - 50
  await ok(await topUp(w.lago_id, { paid_credits: '1' }));
  await payWallet(t, w.lago_id); // receivable back where it was, cash at 2^60 - 50
  const was = await state(w.lago_id);
  assert.match(await refused(await topUp(w.lago_id, { granted_credits: '1' }), 'granted_credits'),
    /the organization's promotional_grants account in USD would pass 1152921504606846976 cents/);
  assert.match(await refused(await topUp(w.lago_id, { paid_credits: '1' }), 'paid_credits'),
    /the organization's cash account in USD would pass 1152921504606846976 cents/);
  assert.deepEqual(await state(w.lago_id), was);
  // up to the bound is fine, and credits voided go back out
  await ok(await topUp(w.lago_id, { granted_credits: '0.5' }));
  await ok(await topUp(w.lago_id, { voided_credits: '2' }));
  await ok(await topUp(w.lago_id, { granted_credits: '1' }));
  const [last] = (await ledger(`wallet_id=${w.lago_id}`)).filter((e) => e.account === 'promotional_grants');
  assert.ok(last.balance_after_cents <= Number(inflowMax), JSON.stringify(last));
});

// Found by an audit (report 6, finding 3): at a rate so small that a wallet's capacity in credits
// has more digits than Tally computes with, an overdraft past it was refused "at most ? at its
// rate"; and a new wallet refused for its size named "wallet <lago_id>", an id never created.
test('a refusal for size says a number or what the number is, and names no wallet never made', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'tiny', currency: 'USD' } }));
  const tinyRate = '0.000000000000000000001'; // a wallet at it counts 10^33 credits in a cent
  for (const [overdraft, field] of [['500000000000000000000000000000000000', 'overdraft_credits']]) {
    const r = await post('/api/v1/wallets', { wallet: { external_customer_id: 'tiny', currency: 'USD', rate_amount: tinyRate, limit: 'soft', overdraft_credits: overdraft } });
    const message = await refused(r, field);
    assert.doesNotMatch(message, /\?/, message);
    assert.match(message, /[0-9]{3}/, message);
  }
  // a rule amount at that rate likewise
  const rule = await post('/api/v1/wallets', { wallet: { external_customer_id: 'tiny', currency: 'USD', rate_amount: tinyRate, recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', granted_credits: '500000000000000000000000000000000000' }] } });
  const rb = await rule.json();
  assert.equal(rule.status, 422, JSON.stringify(rb));
  assert.doesNotMatch(rb.message, /\?/, rb.message);
  // a new wallet's own credits past the limit: nothing was made, so no id is named
  const big = await post('/api/v1/wallets', { wallet: { external_customer_id: 'tiny', currency: 'USD', rate_amount: '1', granted_credits: '1000000000000.01' } });
  const message = await refused(big, 'granted_credits');
  assert.doesNotMatch(message, /[0-9a-f]{8}-[0-9a-f]{4}-/, message);
  assert.match(message, /a wallet holds at most 1000000000000\.0 credits/);
  assert.deepEqual((await ok(await t.api('/api/v1/wallets?external_customer_id=tiny'))).wallets, []);
  // an existing wallet's top-up still names it
  const w = await newWallet('tiny');
  const top = await refused(await topUp(w.lago_id, { granted_credits: '1000000000000.01' }), 'granted_credits');
  assert.match(top, new RegExp(`wallet ${w.lago_id} holds 0\\.0`));
});

// Found by an audit (report 9 of the twenty-fourth session's audit 6 helper): at a rate of 1e-21
// a wallet granted 999999999999999999999999999999999 credits held 10^14 cents, which are
// 10^33 credits, one more digit than credits have with 5 decimals: credits_balance read "0.0".
// They are shown with the decimals that fit now; a rate at which a wallet's amounts could not be
// written at all is refused.
test('a balance worth 10^33 credits or more reads its credits, and a rate too small for any is refused', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'vast', currency: 'GBP' } }));
  const made = await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'vast', currency: 'GBP', rate_amount: '0.000000000000000000001', granted_credits: '999999999999999999999999999999999' } }));
  assert.equal(made.wallet.balance_cents, 100000000000000);
  assert.equal(made.wallet.credits_balance, '1000000000000000000000000000000000.0');
  assert.equal(made.wallet.credits_ongoing_balance, '1000000000000000000000000000000000.0');
  const tiny = await post('/api/v1/wallets', { wallet: { external_customer_id: 'vast', currency: 'GBP', rate_amount: '0.0000000000000000000001' } });
  const message = await refused(tiny, 'rate_amount');
  assert.match(message, /rate_amount is too small/);
});
