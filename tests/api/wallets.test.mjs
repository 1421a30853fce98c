// Wallets over real HTTP: credits granted and bought, debited in the same commit as each
// event (taxes included, volume steps given back), consumed grant by grant in Tally's order,
// refused at a hard limit, voided, terminated, replayed top-ups counted once, and a ledger
// that balances after every step and survives a SIGKILL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startWithOrg } from '../lib/tallyd.mjs';
import { payInvoice, payWallet } from '../lib/payments.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

let t;
const metric = {};
const post = async (path, body, headers = {}) => t.api(path, { method: 'POST', body, headers });
const json = async (r) => { const text = await r.text(); try { return JSON.parse(text); } catch { return text; } };
const ok = async (r) => { const b = await json(r); assert.equal(r.status, 200, JSON.stringify(b)); return b; };

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-03-10T12:00:00Z']);
  for (const bm of [
    { code: 'tokens', name: 'Tokens', aggregation_type: 'sum_agg', field_name: 'tokens' },
    { code: 'storage', name: 'Storage', aggregation_type: 'latest_agg', field_name: 'gb' },
    { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' },
  ]) metric[bm.code] = (await ok(await post('/api/v1/billable_metrics', { billable_metric: bm }))).billable_metric.lago_id;
  await ok(await post('/api/v1/taxes', { tax: { code: 'vat', name: 'VAT', rate: '20' } }));
  await ok(await post('/api/v1/plans', { plan: { code: 'ai', name: 'AI', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', tax_codes: ['vat'], charges: [
    // 0.001 EUR a token, taxed 20%: 1000 tokens cost 100 + 20 cents
    { billable_metric_id: metric.tokens, charge_model: 'standard', properties: { amount: '0.001' } },
    // volume: 0..100 GB at 1 EUR, above at 0.5 EUR a GB for all of them
    { billable_metric_id: metric.storage, charge_model: 'volume', properties: { volume_ranges: [
      { from_value: 0, to_value: 100, per_unit_amount: '1', flat_amount: '0' },
      { from_value: 101, to_value: null, per_unit_amount: '0.5', flat_amount: '0' }] } },
  ] } }));
  await ok(await post('/api/v1/plans', { plan: { code: 'calls', name: 'Calls', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [
    { billable_metric_id: metric.calls, charge_model: 'standard', properties: { amount: '1' } },
  ] } }));
  for (const [customer, plan] of [['acme', 'ai'], ['beta', 'calls'], ['gamma', 'calls'], ['delta', 'ai']])
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: customer, plan_code: plan, external_id: `${customer}_sub`, subscription_at: '2026-03-01T00:00:00Z' } }));
});
after(async () => { await t.cleanup(); });

let n = 0;
const event = (sub, code, properties = {}) => ({ transaction_id: `w${n++}`, external_subscription_id: sub, code, properties });
const send = (...events) => post('/api/v1/events/batch', { events });
const wallet = async (id) => (await ok(await t.api(`/api/v1/wallets/${id}`))).wallet;
const createWallet = async (body) => (await ok(await post('/api/v1/wallets', { wallet: body }))).wallet;
const topUp = async (body, headers) => post('/api/v1/wallet_transactions', { wallet_transaction: body }, headers);
const ledger = async (query) => (await ok(await t.api(`/api/v1/ledger_entries?per_page=1000&${query}`))).ledger_entries;

// Every posting sums to zero, and each wallet account's last balance is its running sum.
async function assertLedgerBalances() {
  const entries = (await ledger('')).reverse();
  const postings = new Map(), balances = new Map();
  for (const e of entries) {
    const signed = e.direction === 'debit' ? e.amount_cents : -e.amount_cents;
    postings.set(e.posting_id, (postings.get(e.posting_id) ?? 0) + signed);
    const key = `${e.account}/${e.lago_wallet_id}/${e.currency}`;
    const before = balances.get(key) ?? 0;
    assert.equal(e.balance_before_cents, before, `balance before of entry ${e.id}`);
    const debitNormal = ['receivable', 'cash', 'promotional_grants', 'customer_overdraft', 'holds_outstanding'].includes(e.account);
    balances.set(key, before + (debitNormal ? signed : -signed));
    assert.equal(e.balance_after_cents, balances.get(key));
  }
  for (const [id, sum] of postings) assert.equal(sum, 0, `posting ${id} does not balance`);
  return balances;
}

test('a new wallet: granted credits are there at once, paid ones once their invoice is paid, in Lago\'s shape', async () => {
  const w = await createWallet({ external_customer_id: 'acme', currency: 'EUR', rate_amount: '0.5', name: 'Main Credits', granted_credits: '100', paid_credits: '20' });
  assert.equal(w.code, 'main_credits');
  assert.equal(w.status, 'active');
  assert.equal(w.rate_amount, '0.5');
  assert.equal(w.credits_balance, '100.0');
  assert.equal(w.balance_cents, 5000); // 100 credits at 0.50 EUR: the 20 bought wait for their payment
  assert.equal(w.ongoing_balance_cents, 5000);
  assert.equal(w.consumed_credits, '0.0');
  assert.equal(w.limit, 'none');
  assert.deepEqual(w.applies_to, { fee_types: [], billable_metric_codes: [] });
  let txs = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions`))).wallet_transactions;
  assert.deepEqual(txs.map((x) => [x.transaction_status, x.status, x.amount, x.credit_amount, x.remaining_amount_cents]).sort(),
    [['granted', 'settled', '50.0', '100.0', 5000], ['purchased', 'pending', '10.0', '20.0', null]]);
  // their invoice is issued at once (invoice_requires_successful_payment false); paid, they arrive
  const bought = txs.find((x) => x.transaction_status === 'purchased');
  assert.equal((await payInvoice(t, bought.lago_invoice_id)).status, 'finalized');
  assert.equal((await wallet(w.lago_id)).balance_cents, 6000);
  txs = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions`))).wallet_transactions;
  assert.deepEqual(txs.map((x) => [x.transaction_status, x.status, x.remaining_amount_cents]).sort(),
    [['granted', 'settled', 5000], ['purchased', 'settled', 1000]]);
  const byCode = (await ok(await t.api('/api/v1/customers/acme/wallets/main_credits'))).wallet;
  assert.equal(byCode.lago_id, w.lago_id);
  const customer = (await ok(await t.api('/api/v1/customers/acme'))).customer;
  assert.equal(customer.currency, 'EUR');
});

test('each acknowledged event is debited before its answer: fee plus taxes, at the wallet\'s rate', async () => {
  const [w] = (await ok(await t.api('/api/v1/customers/acme/wallets'))).wallets;
  assert.equal((await send(event('acme_sub', 'tokens', { tokens: 1000 }))).status, 200);
  let now = await wallet(w.lago_id);
  assert.equal(now.balance_cents, 6000 - 120); // 100 cents + 20% VAT
  assert.equal(now.credits_balance, '117.6');
  assert.equal(now.consumed_credits, '2.4');
  assert.equal(now.last_consumed_credit_at, '2026-03-10T12:00:00Z');
  // 1 token more costs 0.1 cent + VAT: the fee rounds to 100 cents still, so nothing yet
  await send(event('acme_sub', 'tokens', { tokens: 4 }));
  now = await wallet(w.lago_id);
  assert.equal(now.balance_cents, 6000 - 120);
  await send(event('acme_sub', 'tokens', { tokens: 2 })); // 1006 tokens: 101 cents, tax 20.2 -> 20
  now = await wallet(w.lago_id);
  assert.equal(now.balance_cents, 6000 - 121);
  // free credits go first (lowest cost basis), so the paid grant is untouched
  const txs = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions?transaction_type=inbound`))).wallet_transactions;
  const granted = txs.find((x) => x.transaction_status === 'granted'), paid = txs.find((x) => x.transaction_status === 'purchased');
  assert.equal(granted.remaining_amount_cents, 5000 - 121);
  assert.equal(paid.remaining_amount_cents, 1000);
  // the day's usage is one transaction, and what each grant gave it one consumption, added to
  const consumptions = (await ok(await t.api(`/api/v1/wallet_transactions/${granted.lago_id}/consumptions`))).wallet_transaction_consumptions;
  assert.deepEqual(consumptions.map((c) => c.amount_cents), [121]);
  assert.equal(consumptions[0].wallet_transaction.transaction_status, 'usage');
  assert.equal(consumptions[0].wallet_transaction.amount, '1.21'); // 121 cents
  assert.equal(consumptions[0].credit_amount, '2.42');
  const fundings = (await ok(await t.api(`/api/v1/wallet_transactions/${consumptions[0].wallet_transaction.lago_id}/fundings`))).wallet_transaction_fundings;
  assert.deepEqual(fundings.map((f) => [f.wallet_transaction.lago_id, f.amount_cents]), [[granted.lago_id, 121]]);
  await assertLedgerBalances();
});

test('a fee that goes down gives the credits back to what paid last (volume pricing)', async () => {
  const [w] = (await ok(await t.api('/api/v1/customers/acme/wallets'))).wallets;
  const start = (await wallet(w.lago_id)).balance_cents;
  await send(event('acme_sub', 'storage', { gb: 100 })); // 100 EUR + 20 VAT
  assert.equal((await wallet(w.lago_id)).balance_cents, start - 12000 < 0 ? 0 : start - 12000);
  // 5879 cents were left: the wallet (limit none) paid them all, the rest is the invoice's
  const drained = await wallet(w.lago_id);
  assert.equal(drained.balance_cents, 0);
  assert.equal(drained.consumed_amount_cents, 121 + 5879);
  await send(event('acme_sub', 'storage', { gb: 101 })); // volume: 101 x 0.5 = 50.5 EUR + 10.1 VAT
  // the fee went from 12000 to 6060 cents: 5940 back, of which the 6121 uncovered go first
  assert.equal((await wallet(w.lago_id)).balance_cents, 0);
  await send(event('acme_sub', 'storage', { gb: 1 }));
  const back = await wallet(w.lago_id);
  // 1 GB: 120 cents, 5940 more back: the last 181 uncovered cents, then 5759 to the wallet
  assert.equal(back.balance_cents, 5759);
  assert.equal(back.consumed_amount_cents, 121 + 5879 - 5759);
  const refunds = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions?transaction_status=usage_refund`))).wallet_transactions;
  assert.equal(refunds.length, 1);
  assert.equal(refunds[0].transaction_type, 'inbound');
  assert.equal(refunds[0].amount, '57.59');
  const balances = await assertLedgerBalances();
  const paidKey = `customer_paid_credits/${w.lago_id}/EUR`, freeKey = `customer_promotional_credits/${w.lago_id}/EUR`;
  assert.equal((balances.get(paidKey) ?? 0) + (balances.get(freeKey) ?? 0), 5759);
});

test('a hard limit refuses what credits cannot cover, and the refused batch leaves no trace', async () => {
  const w = await createWallet({ external_customer_id: 'beta', currency: 'EUR', rate_amount: '1', name: 'Prepaid', granted_credits: '3', limit: 'hard' });
  assert.equal(w.limit, 'hard');
  assert.equal((await send(event('beta_sub', 'calls'), event('beta_sub', 'calls'))).status, 200);
  const refused = await send(event('beta_sub', 'calls'), event('beta_sub', 'calls'));
  assert.equal(refused.status, 402);
  const body = await refused.json();
  assert.equal(body.code, 'insufficient_credits');
  assert.match(body.message, /100 cents short/);
  const after1 = await wallet(w.lago_id);
  assert.equal(after1.balance_cents, 100);
  const usage = (await ok(await t.api('/api/v1/customers/beta/current_usage?external_subscription_id=beta_sub'))).customer_usage;
  assert.equal(usage.amount_cents, 200);
  assert.equal((await send(event('beta_sub', 'calls'))).status, 200);
  assert.equal((await wallet(w.lago_id)).balance_cents, 0);
  assert.equal((await send(event('beta_sub', 'calls'))).status, 402);
  await assertLedgerBalances();
});

test('a batch is refused whole: a short customer puts back one its credits covered, and two subscriptions of one customer count together', async () => {
  for (const [customer, sub] of [['eps', 'eps_a'], ['eps', 'eps_b'], ['eta', 'eta_sub']])
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: customer, plan_code: 'calls', external_id: sub, subscription_at: '2026-03-01T00:00:00Z' } }));
  const eps = await createWallet({ external_customer_id: 'eps', currency: 'EUR', rate_amount: '1', name: 'Prepaid', granted_credits: '3', limit: 'hard' });
  const eta = await createWallet({ external_customer_id: 'eta', currency: 'EUR', rate_amount: '1', name: 'Prepaid', granted_credits: '100', limit: 'hard' });
  // each subscription's two calls fit in eps's 3 credits, their four do not
  const both = await send(event('eta_sub', 'calls'), event('eps_a', 'calls'), event('eps_a', 'calls'), event('eps_b', 'calls'), event('eps_b', 'calls'));
  assert.equal(both.status, 402, JSON.stringify(await both.clone().json()));
  assert.equal((await wallet(eps.lago_id)).balance_cents, 300);
  assert.equal((await wallet(eta.lago_id)).balance_cents, 10000); // covered, and put back
  // what fits goes through, across both customers, and is debited once
  assert.equal((await send(event('eta_sub', 'calls'), event('eps_a', 'calls'), event('eps_b', 'calls'), event('eps_b', 'calls'))).status, 200);
  assert.equal((await wallet(eps.lago_id)).balance_cents, 0);
  assert.equal((await wallet(eta.lago_id)).balance_cents, 9900);
  const metrics = await (await t.api('/metrics')).text();
  assert.match(metrics, /^tally_engine_commit_failures_total 0$/m); // no group failed on the way
  await assertLedgerBalances();
});

test('an event whose cost cannot be priced is refused (422, not a 500 to retry), and the wallet is untouched', async () => {
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'zeta', plan_code: 'ai', external_id: 'zeta_sub' } }));
  const w = await createWallet({ external_customer_id: 'zeta', currency: 'EUR', rate_amount: '1', name: 'Zeta', granted_credits: '100' });
  const usage = async () => (await ok(await t.api('/api/v1/customers/zeta/current_usage?external_subscription_id=zeta_sub'))).customer_usage;
  assert.equal((await send(event('zeta_sub', 'tokens', { tokens: 1000 }))).status, 200);
  const usageBefore = await usage();
  const walletBefore = await wallet(w.lago_id);
  assert.equal(walletBefore.balance_cents, 10000 - 120);
  // 10^20 tokens at 0.001 EUR are 10^19 cents: more than an amount in cents holds
  for (let i = 0; i < 2; i++) {
    const r = await send(event('zeta_sub', 'tokens', { tokens: 5 }), event('zeta_sub', 'tokens', { tokens: '100000000000000000000' }));
    assert.equal(r.status, 422);
    assert.deepEqual((await r.json()).error_details, { 1: { properties: ['amount_out_of_range'] } });
  }
  assert.deepEqual(await wallet(w.lago_id), walletBefore);
  assert.deepEqual(await usage(), usageBefore);
  assert.equal((await send(event('zeta_sub', 'tokens', { tokens: 1000 }))).status, 200);
  assert.equal((await wallet(w.lago_id)).balance_cents, 10000 - 240);
  assert.equal((await usage()).amount_cents, 200);
  await assertLedgerBalances();
});

test('top-ups: an Idempotency-Key replay counts once; voids take credits in consumption order', async () => {
  const [w] = (await ok(await t.api('/api/v1/customers/beta/wallets'))).wallets;
  const key = { 'Idempotency-Key': 'top-up-beta-1' };
  const first = await ok(await topUp({ wallet_id: w.lago_id, paid_credits: '10', granted_credits: '5', name: 'March' }, key));
  assert.deepEqual(first.wallet_transactions.map((x) => [x.transaction_status, x.amount, x.name]), [['purchased', '10.0', 'March'], ['granted', '5.0', 'March']]);
  const replay = await ok(await topUp({ wallet_id: w.lago_id, paid_credits: '10', granted_credits: '5', name: 'March' }, key));
  await payInvoice(t, first.wallet_transactions[0].lago_invoice_id);
  assert.deepEqual(replay, first);
  assert.equal((await wallet(w.lago_id)).balance_cents, 1500);
  const conflict = await topUp({ wallet_id: w.lago_id, paid_credits: '11' }, key);
  assert.equal(conflict.status, 409);
  assert.equal((await wallet(w.lago_id)).balance_cents, 1500);
  const voided = await ok(await topUp({ wallet_id: w.lago_id, voided_credits: '7' }));
  assert.equal(voided.wallet_transactions[0].transaction_status, 'voided');
  assert.equal(voided.wallet_transactions[0].transaction_type, 'outbound');
  // the free grant (5) goes first, then 2 of the paid one
  const grants = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions?transaction_type=inbound&status=settled`))).wallet_transactions;
  assert.deepEqual(grants.filter((g) => g.name === 'March').map((g) => [g.transaction_status, g.remaining_amount_cents]).sort(), [['granted', 0], ['purchased', 800]]);
  const tooMuch = await topUp({ wallet_id: w.lago_id, voided_credits: '9' });
  assert.equal(tooMuch.status, 422);
  assert.deepEqual((await tooMuch.json()).error_details, { voided_credits: ['insufficient_credits'] });
  const breakage = (await ledger(`wallet_id=${w.lago_id}`)).filter((e) => e.cause === 'void');
  assert.deepEqual(breakage.map((e) => [e.account, e.direction, e.amount_cents]).sort(), [
    ['breakage', 'credit', 200], ['customer_paid_credits', 'debit', 200],
    ['customer_promotional_credits', 'debit', 500], ['promotional_grants', 'credit', 500]]);
  await assertLedgerBalances();
});

test('grants are consumed by priority, then soonest expiry, then free before paid', async () => {
  const w = await createWallet({ external_customer_id: 'gamma', currency: 'EUR', rate_amount: '1', name: 'Order' });
  const grant = async (body) => {
    const [made] = (await ok(await topUp({ wallet_id: w.lago_id, ...body }))).wallet_transactions;
    if (body.paid_credits) await payInvoice(t, made.lago_invoice_id);
    return made;
  };
  const paidLate = await grant({ paid_credits: '1', name: 'paid, no expiry' });
  const freeLate = await grant({ granted_credits: '1', name: 'free, no expiry' });
  const expiring = await grant({ paid_credits: '1', expiration_at: '2026-06-01T00:00:00Z', name: 'paid, expires June' });
  const sooner = await grant({ paid_credits: '1', expiration_at: '2026-05-01T00:00:00Z', name: 'paid, expires May' });
  const urgent = await grant({ paid_credits: '1', priority: 1, name: 'priority 1' });
  assert.equal(sooner.expiration_at, '2026-05-01T00:00:00Z');
  const order = [];
  for (let i = 0; i < 5; i++) {
    assert.equal((await send(event('gamma_sub', 'calls'))).status, 200);
    const grants = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions?transaction_type=inbound`))).wallet_transactions;
    order.push(grants.filter((g) => g.remaining_amount_cents === 0).map((g) => g.name).find((name) => !order.includes(name)));
  }
  assert.deepEqual(order, [urgent.name, sooner.name, expiring.name, freeLate.name, paidLate.name]);
  assert.equal((await wallet(w.lago_id)).balance_cents, 0);
});

test('applies_to and priority choose which wallet pays', async () => {
  const tokensOnly = await createWallet({ external_customer_id: 'delta', currency: 'EUR', rate_amount: '1', name: 'Tokens only', granted_credits: '10', priority: 1, applies_to: { billable_metric_codes: ['tokens'] } });
  const general = await createWallet({ external_customer_id: 'delta', currency: 'EUR', rate_amount: '1', name: 'General', granted_credits: '100', priority: 2 });
  assert.deepEqual(tokensOnly.applies_to, { fee_types: [], billable_metric_codes: ['tokens'] });
  await send(event('delta_sub', 'storage', { gb: 2 })); // 240 cents: not a token fee
  assert.equal((await wallet(tokensOnly.lago_id)).balance_cents, 1000);
  assert.equal((await wallet(general.lago_id)).balance_cents, 10000 - 240);
  await send(event('delta_sub', 'tokens', { tokens: 10000 })); // 1000 + 200 cents: 1000 from the first
  assert.equal((await wallet(tokensOnly.lago_id)).balance_cents, 0);
  assert.equal((await wallet(general.lago_id)).balance_cents, 10000 - 240 - 200);
  const missing = await post('/api/v1/wallets', { wallet: { external_customer_id: 'delta', currency: 'EUR', rate_amount: '1', name: 'X', applies_to: { billable_metric_codes: ['nope'] } } });
  // Lago's answer: 422 invalid_limitations (POST /wallets lists no 404); an audit found a 404
  assert.equal(missing.status, 422);
  const body = await missing.json();
  assert.deepEqual(body.error_details, { applies_to: ['invalid_limitations'] });
  assert.match(body.message, /nope/);
  const changed = await t.api(`/api/v1/wallets/${general.lago_id}`, { method: 'PUT', body: { wallet: { applies_to: { billable_metric_codes: ['tokens', 'nope'] } } } });
  assert.equal(changed.status, 422);
  assert.deepEqual((await changed.json()).error_details, { applies_to: ['invalid_limitations'] });
  // an empty code or an unknown fee type is the same error, under applies_to, with a message
  // (an audit: a bare billable_metric_codes: invalid_value, and no message for the fee type)
  for (const [applies_to, said] of [[{ billable_metric_codes: [''] }, /applies_to.billable_metric_codes/], [{ fee_types: ['usage'] }, /"usage" is none of/]]) {
    const r = await post('/api/v1/wallets', { wallet: { external_customer_id: 'delta', currency: 'EUR', rate_amount: '1', name: 'Y', applies_to } });
    const b = await r.json();
    assert.deepEqual([r.status, b.error_details], [422, { applies_to: ['invalid_limitations'] }], JSON.stringify(b));
    assert.match(b.message, said);
  }
  // a code named twice is one metric, as Lago keeps one target per metric
  const twice = await createWallet({ external_customer_id: 'delta', currency: 'EUR', rate_amount: '1', name: 'Twice', applies_to: { fee_types: ['charge', 'charge'], billable_metric_codes: ['tokens', 'tokens', 'storage'] } });
  assert.deepEqual(twice.applies_to, { fee_types: ['charge'], billable_metric_codes: ['tokens', 'storage'] });
  assert.deepEqual((await wallet(twice.lago_id)).applies_to, twice.applies_to);
});

// Found by an audit: a wallet in a currency with no minor unit (XAU) was taken and made its
// customer's currency, which no plan can have and no later wallet could change: the customer
// could never subscribe nor take credits. Refused, as a customer's or a plan's is.
test('a wallet in a currency a customer cannot have is refused and changes nothing', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'gold' } }));
  for (const extra of [{}, { granted_credits: '1' }]) {
    const r = await post('/api/v1/wallets', { wallet: { external_customer_id: 'gold', currency: 'XAU', rate_amount: '1', ...extra } });
    assert.deepEqual([r.status, (await r.json()).error_details], [422, { currency: ['value_is_invalid'] }], JSON.stringify(extra));
  }
  assert.equal((await ok(await t.api('/api/v1/customers/gold'))).customer.currency, null);
  const usd = await createWallet({ external_customer_id: 'gold', currency: 'USD', rate_amount: '1', granted_credits: '1' });
  assert.equal(usd.currency, 'USD');
});

// Found by an audit: at a rate so high that no credit Tally writes fits, the refusal said a
// wallet "holds at most 0.0 credits"; it says what the bound is in the currency's minor units.
test('a rate too high for any credit to fit says so', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'dear', currency: 'USD' } }));
  const r = await post('/api/v1/wallets', { wallet: { external_customer_id: 'dear', currency: 'USD', rate_amount: '123456789012345678901234567890', granted_credits: '1000' } });
  const b = await r.json();
  assert.deepEqual([r.status, b.error_details], [422, { granted_credits: ['value_is_out_of_range'] }]);
  assert.match(b.message, /^a wallet holds at most 100000000000000 minor units of USD, under 0\.00001 credits, at its rate/);
  assert.doesNotMatch(b.message, /0\.0 credits/);
});

test('bad requests get a clear error and change nothing', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'zeta', currency: 'EUR' } }));
  await createWallet({ external_customer_id: 'zeta', currency: 'EUR', rate_amount: '1', name: 'Main Credits' });
  const cases = [
    [{ currency: 'EUR', rate_amount: '1' }, 422, { external_customer_id: ['value_is_mandatory'] }],
    [{ external_customer_id: 'zeta', rate_amount: '1' }, 422, { currency: ['value_is_mandatory'] }],
    [{ external_customer_id: 'zeta', currency: 'EUR' }, 422, { rate_amount: ['value_is_mandatory'] }],
    [{ external_customer_id: 'zeta', currency: 'EUR', rate_amount: '0' }, 422, { rate_amount: ['invalid_amount'] }],
    [{ external_customer_id: 'zeta', currency: 'XXZ', rate_amount: '1' }, 422, { currency: ['value_is_invalid'] }],
    [{ external_customer_id: 'zeta', currency: 'USD', rate_amount: '1' }, 422, { currency: ['currencies_does_not_match'] }],
    [{ external_customer_id: 'zeta', currency: 'EUR', rate_amount: '1', name: 'Main Credits', code: 'main_credits' }, 422, { code: ['value_already_exist'] }],
    [{ external_customer_id: 'zeta', currency: 'EUR', rate_amount: '1', limit: 'sometimes' }, 422, { limit: ['value_is_invalid'] }],
    [{ external_customer_id: 'zeta', currency: 'EUR', rate_amount: '1', priority: 51 }, 422, { priority: ['value_is_out_of_range'] }],
    [{ external_customer_id: 'zeta', currency: 'EUR', rate_amount: '1', granted_credits: '-1' }, 422, { granted_credits: ['invalid_amount'] }],
    [{ external_customer_id: 'zeta', currency: 'EUR', rate_amount: '1', granted_credits: '0.001' }, 422, { granted_credits: ['amount_rounds_to_zero'] }],
    [{ external_customer_id: 'zeta', currency: 'EUR', rate_amount: '1', paid_credits: '0.001' }, 422, { paid_credits: ['amount_rounds_to_zero'] }],
    [{ external_customer_id: 'zeta', currency: 'EUR', rate_amount: '1', expiration_at: '2026-03-10T11:59:59Z' }, 422, { expiration_at: ['invalid_date'] }],
    [{ external_customer_id: 'zeta', currency: 'EUR', rate_amount: '1', recurring_transaction_rules: [{ trigger: 'interval', interval: 'hourly' }] }, 422, { recurring_transaction_rules: ['invalid_recurring_rule'] }],
  ];
  const before1 = (await ok(await t.api('/api/v1/wallets?per_page=100'))).meta.total_count;
  for (const [body, status, details] of cases) {
    const r = await post('/api/v1/wallets', { wallet: body });
    const b = await r.json();
    assert.equal(r.status, status, JSON.stringify([body, b]));
    assert.deepEqual(b.error_details, details, JSON.stringify(body));
  }
  // Lago's answers (found by a compatibility audit: Tally answered 404)
  const unknown = await post('/api/v1/wallets', { wallet: { external_customer_id: 'nobody', currency: 'EUR', rate_amount: '1' } });
  assert.equal(unknown.status, 422);
  assert.deepEqual((await unknown.json()).error_details, { customer: ['customer_not_found'] });
  assert.equal((await ok(await t.api('/api/v1/wallets?per_page=100'))).meta.total_count, before1);
  const zeta = (await ok(await t.api('/api/v1/customers/zeta/wallets'))).wallets[0];
  const past = await topUp({ wallet_id: zeta.lago_id, granted_credits: '1', expiration_at: '2026-01-01T00:00:00Z' });
  assert.equal(past.status, 422);
  assert.deepEqual((await past.json()).error_details, { expiration_at: ['invalid_date'] });
  const noWallet = await topUp({ wallet_id: '00000000-0000-0000-0000-000000000000', granted_credits: '1' });
  assert.equal(noWallet.status, 422);
  assert.deepEqual((await noWallet.json()).error_details, { wallet_id: ['wallet_not_found'] });
  // an amount that rounds to zero is named by its field, as Lago's (an audit found all three
  // reported under `amount`, so a request with several could not tell which to fix)
  const cent = await createWallet({ external_customer_id: 'zeta', currency: 'EUR', rate_amount: '0.01', name: 'Cents', granted_credits: '100' });
  for (const [body, field] of [[{ paid_credits: '0.4' }, 'paid_credits'], [{ granted_credits: '0.4' }, 'granted_credits'],
    [{ voided_credits: '0.4' }, 'voided_credits'], [{ paid_credits: '10', granted_credits: '0.4' }, 'granted_credits']]) {
    const r = await topUp({ wallet_id: cent.lago_id, ...body });
    assert.equal(r.status, 422, JSON.stringify(body));
    assert.deepEqual((await r.json()).error_details, { [field]: ['amount_rounds_to_zero'] }, JSON.stringify(body));
  }
  assert.equal((await wallet(cent.lago_id)).balance_cents, 100);
  // credits that floor to none at 5 decimals are no amount, as Lago's top-up floors them first:
  // 200 with no transaction, where an audit found them refused amount_rounds_to_zero
  for (const body of [{ paid_credits: '0.000001' }, { granted_credits: '0.000009', voided_credits: '0.0000001' }]) {
    const r = await topUp({ wallet_id: cent.lago_id, ...body });
    assert.deepEqual([r.status, (await r.json()).wallet_transactions], [200, []], JSON.stringify(body));
  }
  assert.equal((await wallet(cent.lago_id)).balance_cents, 100);
  assert.equal((await t.api('/api/v1/wallets/nope')).status, 404);
});

test('a customer holds at most six active wallets', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'many' } }));
  for (let i = 0; i < 6; i++) await createWallet({ external_customer_id: 'many', currency: 'EUR', rate_amount: '1', name: `W${i}` });
  const r = await post('/api/v1/wallets', { wallet: { external_customer_id: 'many', currency: 'EUR', rate_amount: '1', name: 'W6' } });
  assert.equal(r.status, 422);
  assert.deepEqual((await r.json()).error_details, { customer: ['wallet_limit_reached'] });
});

test('update changes terms, not balances; terminate voids what is left, with the ledger saying where it went', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'epsilon' } }));
  const w = await createWallet({ external_customer_id: 'epsilon', currency: 'EUR', rate_amount: '2', name: 'Short lived', paid_credits: '3', granted_credits: '2' });
  await payWallet(t, w.lago_id);
  const updated = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'PUT', body: { wallet: { name: 'Renamed', priority: 7, limit: 'soft', overdraft_credits: '1.5' } } }))).wallet;
  assert.equal(updated.name, 'Renamed');
  assert.equal(updated.priority, 7);
  assert.equal(updated.limit, 'soft');
  assert.equal(updated.overdraft_credits, '1.5');
  assert.equal(updated.balance_cents, 1000);
  const gone = (await ok(await t.api('/api/v1/customers/epsilon/wallets/short_lived', { method: 'DELETE' }))).wallet;
  assert.equal(gone.status, 'terminated');
  assert.equal(gone.balance_cents, 0);
  const voids = (await ledger(`wallet_id=${w.lago_id}`)).filter((e) => e.cause === 'void');
  assert.deepEqual(voids.map((e) => [e.account, e.direction, e.amount_cents]).sort(), [
    ['breakage', 'credit', 600], ['customer_paid_credits', 'debit', 600],
    ['customer_promotional_credits', 'debit', 400], ['promotional_grants', 'credit', 400]]);
  const again = await topUp({ wallet_id: w.lago_id, granted_credits: '1' });
  assert.equal(again.status, 422);
  assert.deepEqual((await again.json()).error_details, { wallet_id: ['wallet_is_terminated'] });
  // terminating it again changes nothing and answers it as it is, as Lago does (a client's
  // retried DELETE is no error; found by a compatibility audit: it was 422)
  const ledgerBefore = (await ledger(`wallet_id=${w.lago_id}`)).length;
  const twice = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'DELETE' }))).wallet;
  assert.deepEqual(twice, gone);
  assert.equal((await ledger(`wallet_id=${w.lago_id}`)).length, ledgerBefore);
  await assertLedgerBalances();
});

test('after a SIGKILL, balances, grants and what each charge has paid are all still there', async () => {
  const [w] = (await ok(await t.api('/api/v1/customers/acme/wallets'))).wallets;
  const before1 = await wallet(w.lago_id);
  await t.restart({ kill: true });
  assert.deepEqual(await wallet(w.lago_id), before1);
  // the storage charge is at 1 GB (120 cents): going to 50 GB debits 5880 more, not 6000
  await ok(await topUp({ wallet_id: w.lago_id, granted_credits: '200' })); // 100 EUR
  await send(event('acme_sub', 'storage', { gb: 50 }));
  assert.equal((await wallet(w.lago_id)).balance_cents, before1.balance_cents + 10000 - 5880);
  await assertLedgerBalances();
});

test('threshold rules top up once per crossing, in the command that crossed, fixed or to a target', async () => {
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'theta', plan_code: 'calls', external_id: 'theta_sub', subscription_at: '2026-03-01T00:00:00Z' } }));
  const w = await createWallet({ external_customer_id: 'theta', currency: 'EUR', rate_amount: '1', name: 'Auto', granted_credits: '5', limit: 'hard',
    recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '2', paid_credits: '10', transaction_name: 'Auto top-up' }] });
  const [rule] = w.recurring_transaction_rules;
  assert.equal(rule.trigger, 'threshold');
  assert.equal(rule.method, 'fixed');
  assert.equal(rule.threshold_credits, '2.0');
  assert.equal(rule.paid_credits, '10.0');
  assert.equal(rule.status, 'active');
  assert.match(rule.lago_id, /^[0-9a-f-]{36}$/);
  const balances = [];
  for (let i = 0; i < 13; i++) {
    assert.equal((await send(event('theta_sub', 'calls'))).status, 200);
    await payWallet(t, w.lago_id); // what the rule bought arrives once paid
    balances.push((await wallet(w.lago_id)).balance_cents / 100);
  }
  // 5 -> 2 fires +10 at once (12), down to 2 again fires once more (12), ...
  assert.deepEqual(balances, [4, 3, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 12]);
  const auto = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions?transaction_status=purchased`))).wallet_transactions;
  assert.deepEqual(auto.map((x) => [x.source, x.amount, x.status, x.name]), [['threshold', '10.0', 'settled', 'Auto top-up'], ['threshold', '10.0', 'settled', 'Auto top-up']]);

  // a target rule granting the gap
  const target = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'PUT', body: { wallet: {
    recurring_transaction_rules: [{ trigger: 'threshold', method: 'target', threshold_credits: '10', target_ongoing_balance: '15', grants_target_top_up: true }] } } }))).wallet;
  assert.equal(target.recurring_transaction_rules[0].method, 'target');
  await send(event('theta_sub', 'calls'), event('theta_sub', 'calls')); // 12 -> 10: up to 15
  assert.equal((await wallet(w.lago_id)).balance_cents, 1500);
  const granted = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions?transaction_status=granted`))).wallet_transactions;
  assert.equal(granted[0].source, 'threshold');
  assert.equal(granted[0].amount, '5.0');
  await assertLedgerBalances();
});

test('a threshold top-up that waits for its payment counts as pending, and does not fire again', async () => {
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'iota', plan_code: 'calls', external_id: 'iota_sub', subscription_at: '2026-03-01T00:00:00Z' } }));
  const w = await createWallet({ external_customer_id: 'iota', currency: 'EUR', rate_amount: '1', name: 'Pay first', granted_credits: '4', limit: 'hard',
    recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '2', paid_credits: '5', invoice_requires_successful_payment: true }] });
  for (let i = 0; i < 4; i++) assert.equal((await send(event('iota_sub', 'calls'))).status, 200);
  assert.equal((await send(event('iota_sub', 'calls'))).status, 402);
  const pending = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions?status=pending`))).wallet_transactions;
  assert.deepEqual(pending.map((x) => [x.source, x.amount, x.transaction_status]), [['threshold', '5.0', 'purchased']]);
  assert.equal((await wallet(w.lago_id)).balance_cents, 0);
});

test('recurring rules are validated', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'kappa', currency: 'EUR' } }));
  const cases = [
    [[{ trigger: 'threshold', threshold_credits: '1' }, { trigger: 'threshold', threshold_credits: '2' }], 'invalid_number_of_recurring_rules'],
    [[{ trigger: 'interval', paid_credits: '1' }], 'invalid_recurring_rule'],
    [[{ trigger: 'interval', interval: 'daily', paid_credits: '1' }], 'invalid_recurring_rule'],
    [[{ trigger: 'interval', interval: 'monthly', grant_expires_after: '1 month' }], 'invalid_recurring_rule'],
    // a grant that expires as it comes: its paid credits would be invoiced for nothing
    [[{ trigger: 'interval', interval: 'monthly', paid_credits: '5', grant_expires_after: 'P0D' }], 'invalid_recurring_rule'],
    [[{ trigger: 'interval', interval: 'monthly', granted_credits: '5', grant_expires_after: 'P0Y0M' }], 'invalid_recurring_rule'],
    [[{ trigger: 'interval', interval: 'monthly', rollover: 'max_percentage' }], 'invalid_recurring_rule'],
    [[{ trigger: 'threshold' }], 'invalid_recurring_rule'],
    [[{ trigger: 'threshold', method: 'target', threshold_credits: '5', target_ongoing_balance: '4' }], 'invalid_recurring_rule'],
    [[{ trigger: 'threshold', threshold_credits: '5', grants_target_top_up: true }], 'invalid_recurring_rule'],
    [[{ trigger: 'threshold', threshold_credits: '-1' }], 'invalid_recurring_rule'],
    // an interval rule's terms on a threshold rule: refused, not answered 200 and dropped (audit)
    [[{ trigger: 'threshold', threshold_credits: '5', paid_credits: '5', grant_expires_after: 'P1M' }], 'invalid_recurring_rule'],
    [[{ trigger: 'threshold', threshold_credits: '5', paid_credits: '5', rollover: 'none' }], 'invalid_recurring_rule'],
    [[{ trigger: 'threshold', threshold_credits: '5', paid_credits: '5', rollover_max_credits: '3' }], 'invalid_recurring_rule'],
    // and so its interval and started_at (answered 200 and dropped before: an audit)
    [[{ trigger: 'threshold', threshold_credits: '5', paid_credits: '5', interval: 'monthly' }], 'invalid_recurring_rule'],
    [[{ trigger: 'threshold', threshold_credits: '5', paid_credits: '5', started_at: '2026-02-01T00:00:00Z' }], 'invalid_recurring_rule'],
  ];
  for (const [rules, code] of cases) {
    const r = await post('/api/v1/wallets', { wallet: { external_customer_id: 'kappa', currency: 'EUR', rate_amount: '1', recurring_transaction_rules: rules } });
    assert.equal(r.status, 422, JSON.stringify(rules));
    assert.deepEqual((await r.json()).error_details, { recurring_transaction_rules: [code] });
  }
  // a threshold rule answers the interval terms null, as an interval rule without them does
  const [rule] = (await createWallet({ external_customer_id: 'kappa', currency: 'EUR', rate_amount: '1',
    recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '5', granted_credits: '5', interval: null, started_at: null, grant_expires_after: null }] })).recurring_transaction_rules;
  assert.deepEqual([rule.trigger, rule.interval, rule.grant_expires_after, rule.rollover, rule.started_at], ['threshold', null, null, null, null]);
});

// A threshold rule updated in place with an interval (or a started_at) was answered 200 and the
// value dropped, where its grant_expires_after was refused: an audit. Both are refused now,
// with the same code and a message, and nothing changes; null is taken, as its answer shows.
test('an update that gives a threshold rule an interval or a started_at is refused, and changes nothing', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'kappa_th', currency: 'EUR' } }));
  const w = await createWallet({ external_customer_id: 'kappa_th', currency: 'EUR', rate_amount: '1', code: 'th',
    recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '5', granted_credits: '5' }] });
  const [rule] = w.recurring_transaction_rules;
  const put = (path, rules) => t.api(path, { method: 'PUT', body: { wallet: { recurring_transaction_rules: rules } } });
  for (const path of [`/api/v1/wallets/${w.lago_id}`, '/api/v1/customers/kappa_th/wallets/th']) {
    for (const sent of [{ interval: 'monthly' }, { started_at: '2026-02-01T00:00:00Z' }, { interval: 'weekly', threshold_credits: '3' }]) {
      const r = await put(path, [{ lago_id: rule.lago_id, ...sent }]);
      const answer = await json(r);
      assert.equal(r.status, 422, JSON.stringify(sent));
      assert.deepEqual(answer.error_details, { recurring_transaction_rules: ['invalid_recurring_rule'] });
      assert.match(answer.message, /belong to interval rules/);
    }
  }
  assert.deepEqual((await wallet(w.lago_id)).recurring_transaction_rules, [rule]);
  const [kept] = (await ok(await put(`/api/v1/wallets/${w.lago_id}`, [{ lago_id: rule.lago_id, interval: null, started_at: null, threshold_credits: '4' }]))).wallet.recurring_transaction_rules;
  assert.deepEqual([kept.lago_id, kept.trigger, kept.interval, kept.started_at, kept.threshold_credits], [rule.lago_id, 'threshold', null, null, '4.0']);
});

test('a paid top-up that waits for its payment: a credit invoice, settled or failed by PUT /invoices', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'lambda', currency: 'EUR' } }));
  const w = await createWallet({ external_customer_id: 'lambda', currency: 'EUR', rate_amount: '0.5', name: 'Pay first', invoice_requires_successful_payment: true });
  const [paid] = (await ok(await topUp({ wallet_id: w.lago_id, paid_credits: '40' }))).wallet_transactions;
  assert.equal(paid.status, 'pending');
  assert.equal(paid.remaining_amount_cents, null); // Lago's: set when the credits arrive
  assert.equal((await wallet(w.lago_id)).balance_cents, 0);
  const invoice = (await ok(await t.api(`/api/v1/invoices/${paid.lago_invoice_id}`))).invoice;
  assert.deepEqual([invoice.invoice_type, invoice.status, invoice.payment_status, invoice.total_amount_cents, invoice.currency, invoice.fees[0].units],
    ['credit', 'open', 'pending', 2000, 'EUR', '40.0']);
  // not issued yet: Lago's draft number, no sequential id (numbered when paid, below)
  assert.deepEqual([invoice.number, invoice.sequential_id], ['TLY-DRAFT', null]);
  assert.deepEqual([invoice.net_payment_term, invoice.payment_due_date], [0, invoice.issuing_date]);
  // Lago's InvoiceObject: the whole customer, and a fee with every field its schema requires
  assert.deepEqual([invoice.customer.external_id, invoice.customer.currency, typeof invoice.customer.sequential_id], ['lambda', 'EUR', 'number']);
  const fee = invoice.fees[0];
  assert.deepEqual([fee.item.type, fee.item.item_type, fee.item.lago_item_id], ['credit', 'WalletTransaction', paid.lago_id]);
  assert.deepEqual([fee.taxes_amount_cents, fee.taxes_rate, fee.total_amount_currency, fee.pay_in_advance, fee.invoiceable, fee.payment_status],
    [0, 0, 'EUR', false, true, 'pending']);
  assert.deepEqual([fee.total_aggregated_units, fee.precise_unit_amount, fee.sub_total_excluding_taxes_amount_cents, fee.sub_total_excluding_taxes_precise_amount_cents],
    ['40.0', '0.5', 2000, '2000.0']);
  const listed = (await ok(await t.api('/api/v1/invoices?external_customer_id=lambda'))).invoices;
  assert.deepEqual(listed.map((i) => i.lago_id), [invoice.lago_id]);
  // metadata is not kept yet: refused, nothing changed (it was dropped in silence)
  for (const body of [{ metadata: [{ key: 'po', value: '123' }] }, { payment_status: 'succeeded', metadata: [{ key: 'po', value: '123' }] }]) {
    const r = await t.api(`/api/v1/invoices/${invoice.lago_id}`, { method: 'PUT', body: { invoice: body } });
    assert.equal(r.status, 422);
    assert.deepEqual((await r.json()).error_details, { metadata: ['not_supported'] });
  }
  // found by an audit: as Lago's Invoices::UpdateService, an update with no payment_status
  // changes nothing and answers the invoice, and one that is not a status (null included) is
  // value_is_invalid (both were 422 value_is_mandatory)
  const same = (await ok(await t.api(`/api/v1/invoices/${invoice.lago_id}`, { method: 'PUT', body: { invoice: { foo: 1 } } }))).invoice;
  assert.deepEqual([same.lago_id, same.status, same.payment_status], [invoice.lago_id, invoice.status, 'pending']);
  for (const payment_status of [null, '', 5, 'paid']) {
    const r = await t.api(`/api/v1/invoices/${invoice.lago_id}`, { method: 'PUT', body: { invoice: { payment_status } } });
    assert.equal(r.status, 422, JSON.stringify(payment_status));
    assert.deepEqual((await r.json()).error_details, { payment_status: ['value_is_invalid'] });
  }
  assert.equal((await wallet(w.lago_id)).balance_cents, 0);
  const settled = (await ok(await t.api(`/api/v1/invoices/${invoice.lago_id}`, { method: 'PUT', body: { invoice: { payment_status: 'succeeded' } } }))).invoice;
  assert.deepEqual([settled.status, settled.payment_status, settled.total_due_amount_cents], ['finalized', 'succeeded', 0]);
  assert.match(settled.number, /^TLY-\d{3}-001$/);
  assert.equal(settled.sequential_id, 1);
  assert.equal((await wallet(w.lago_id)).balance_cents, 2000);
  const now = (await ok(await t.api(`/api/v1/wallet_transactions/${paid.lago_id}`))).wallet_transaction;
  assert.deepEqual([now.status, now.remaining_amount_cents], ['settled', 2000]);
  // paid again: nothing more; a paid invoice cannot fail afterwards
  await ok(await t.api(`/api/v1/invoices/${invoice.lago_id}`, { method: 'PUT', body: { invoice: { payment_status: 'succeeded' } } }));
  assert.equal((await wallet(w.lago_id)).balance_cents, 2000);
  const late = await t.api(`/api/v1/invoices/${invoice.lago_id}`, { method: 'PUT', body: { invoice: { payment_status: 'failed' } } });
  assert.equal(late.status, 422);
  // another one fails: its top-up fails, no credits, and its invoice stays open (no claim)
  const [other] = (await ok(await topUp({ wallet_id: w.lago_id, paid_credits: '10' }))).wallet_transactions;
  const unpaid = (await ok(await t.api(`/api/v1/invoices/${other.lago_invoice_id}`, { method: 'PUT', body: { invoice: { payment_status: 'failed' } } }))).invoice;
  assert.deepEqual([unpaid.status, unpaid.payment_status], ['open', 'failed']);
  const failed = (await ok(await t.api(`/api/v1/wallet_transactions/${other.lago_id}`))).wallet_transaction;
  assert.equal(failed.status, 'failed');
  assert.ok(failed.failed_at);
  assert.equal((await wallet(w.lago_id)).balance_cents, 2000);
  // one whose invoice does not wait for the payment is issued at once; its credits still wait
  const [now2] = (await ok(await topUp({ wallet_id: w.lago_id, paid_credits: '2', invoice_requires_successful_payment: false }))).wallet_transactions;
  assert.equal(now2.status, 'pending');
  const inv2 = (await ok(await t.api(`/api/v1/invoices/${now2.lago_invoice_id}`))).invoice;
  assert.deepEqual([inv2.status, inv2.payment_status], ['finalized', 'pending']);
  assert.equal((await t.api('/api/v1/invoices/nope')).status, 404);
  // Lago's list filters narrow the list (they were ignored)
  const listedIds = async (query) => (await ok(await t.api(`/api/v1/invoices?external_customer_id=lambda&${query}`))).invoices.map((i) => i.lago_id);
  assert.deepEqual(await listedIds('payment_statuses[]=failed'), [other.lago_invoice_id]);
  assert.deepEqual(await listedIds('payment_statuses[]=failed&payment_statuses[]=succeeded'), [other.lago_invoice_id, invoice.lago_id]);
  assert.deepEqual(await listedIds('payment_status=pending'), [now2.lago_invoice_id]);
  assert.deepEqual(await listedIds('statuses[]=finalized&currency=EUR'), [now2.lago_invoice_id, invoice.lago_id]);
  assert.deepEqual(await listedIds('statuses[]=draft&statuses[]=voided'), []);
  assert.deepEqual(await listedIds('currency=USD'), []);
  assert.deepEqual(await listedIds('invoice_type=credit'), await listedIds(''));
  assert.deepEqual(await listedIds('invoice_type=subscription'), []);
  // a type Lago does not have matches no invoice, as its column compared with it
  assert.equal((await ok(await t.api('/api/v1/invoices?invoice_type=nonsense'))).meta.total_count, 0);
  // amounts (2000, 500 and 100 cents) and issuing dates, bounds included (they were ignored)
  assert.deepEqual(await listedIds('amount_from=500'), [other.lago_invoice_id, invoice.lago_id]);
  assert.deepEqual(await listedIds('amount_to=500'), [now2.lago_invoice_id, other.lago_invoice_id]);
  assert.deepEqual(await listedIds('amount_from=501&amount_to=2000'), [invoice.lago_id]);
  assert.deepEqual(await listedIds('issuing_date_from=2026-03-10&issuing_date_to=2026-03-10'), await listedIds(''));
  assert.deepEqual(await listedIds('issuing_date_from=2026-03-11'), []);
  assert.deepEqual(await listedIds('issuing_date_to=2026-03-09'), []);
  for (const bad of ['issuing_date_from=2026-02-30', 'issuing_date_to=10/03/2026', 'amount_from=1e3'])
    assert.equal((await t.api(`/api/v1/invoices?${bad}`)).status, 422, bad);
  for (const [query, field] of [['search_term=TLY', 'search_term'], ['payment_dispute_lost=true', 'payment_dispute_lost']]) {
    const r = await t.api(`/api/v1/invoices?${query}`);
    assert.equal(r.status, 422, query);
    assert.deepEqual((await r.json()).error_details, { [field]: ['not_supported'] });
  }
  await assertLedgerBalances();
});

test('voided_transaction_id voids from that grant only: all of it, or the credits given', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'mu', currency: 'EUR' } }));
  const w = await createWallet({ external_customer_id: 'mu', currency: 'EUR', rate_amount: '1', name: 'Specific' });
  const [a] = (await ok(await topUp({ wallet_id: w.lago_id, granted_credits: '5', name: 'A' }))).wallet_transactions;
  const [b] = (await ok(await topUp({ wallet_id: w.lago_id, paid_credits: '7', name: 'B' }))).wallet_transactions;
  const pendingVoid = await topUp({ wallet_id: w.lago_id, voided_transaction_id: b.lago_id }); // nothing to void before it is paid
  assert.deepEqual([pendingVoid.status, (await pendingVoid.json()).error_details], [422, { voided_transaction_id: ['no_remaining_amount'] }]);
  await payInvoice(t, b.lago_invoice_id);
  // B is consumed after A in Tally's order; void 2 of B specifically
  const part = (await ok(await topUp({ wallet_id: w.lago_id, voided_transaction_id: b.lago_id, voided_credits: '2' }))).wallet_transactions;
  assert.deepEqual(part.map((x) => [x.transaction_status, x.amount]), [['voided', '2.0']]);
  const fundings = (await ok(await t.api(`/api/v1/wallet_transactions/${part[0].lago_id}/fundings`))).wallet_transaction_fundings;
  assert.deepEqual(fundings.map((f) => [f.wallet_transaction.lago_id, f.amount_cents]), [[b.lago_id, 200]]);
  // all of what is left of A
  const all = (await ok(await topUp({ wallet_id: w.lago_id, voided_transaction_id: a.lago_id }))).wallet_transactions;
  assert.equal(all[0].amount, '5.0');
  assert.equal((await wallet(w.lago_id)).balance_cents, 500);
  const again = await topUp({ wallet_id: w.lago_id, voided_transaction_id: a.lago_id });
  assert.equal(again.status, 422);
  assert.deepEqual((await again.json()).error_details, { voided_transaction_id: ['no_remaining_amount'] });
  const tooMuch = await topUp({ wallet_id: w.lago_id, voided_transaction_id: b.lago_id, voided_credits: '6' });
  assert.deepEqual((await tooMuch.json()).error_details, { voided_credits: ['insufficient_credits'] });
  await assertLedgerBalances();
});

// Found by a black-box audit: the stack was popped strictly last first, so a grant that paid
// after an uncovered part got its credits back while the invoice still charged that part.
test('a fee that goes down gives back the uncovered part first, wherever it is in the stack', async () => {
  const units = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'vol_units', name: 'Units', aggregation_type: 'sum_agg', field_name: 'n' } }))).billable_metric;
  await ok(await post('/api/v1/plans', { plan: { code: 'vol', name: 'Vol', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [
    { billable_metric_id: units.lago_id, charge_model: 'volume', properties: { volume_ranges: [
      { from_value: 0, to_value: 10, per_unit_amount: '1', flat_amount: '0' },
      { from_value: 11, to_value: null, per_unit_amount: '0.1', flat_amount: '0' }] } }] } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'nu', plan_code: 'vol', external_id: 'nu_sub', subscription_at: '2026-03-01T00:00:00Z' } }));
  const w = await createWallet({ external_customer_id: 'nu', currency: 'EUR', rate_amount: '1', name: 'Nu', granted_credits: '1', limit: 'none' });
  await ok(await send(event('nu_sub', 'vol_units', { n: 5 }))); // 5 EUR: the grant pays 1, 4 are the invoice's
  assert.equal((await wallet(w.lago_id)).balance_cents, 0);
  await ok(await topUp({ wallet_id: w.lago_id, granted_credits: '10' }));
  await ok(await send(event('nu_sub', 'vol_units', { n: 3 }))); // 8 EUR: 3 more, from the new grant
  assert.equal((await wallet(w.lago_id)).balance_cents, 700);
  await ok(await send(event('nu_sub', 'vol_units', { n: 12 }))); // 20 units at 0.1: 2 EUR, 6 back
  // the 4 uncovered first, then 2 to the grant that paid last
  const back = await wallet(w.lago_id);
  assert.equal(back.balance_cents, 900);
  assert.equal(back.consumed_amount_cents, 200);
  const usage = (await ok(await t.api('/api/v1/customers/nu/current_usage?external_subscription_id=nu_sub'))).customer_usage;
  assert.equal(usage.amount_cents, 200); // 1 paid by the first grant, 1 by the second: nothing left to invoice
  await assertLedgerBalances();
  await t.restart();
  assert.equal((await wallet(w.lago_id)).balance_cents, 900);
});

// Found by a black-box audit: a rule stayed disarmed after its own top-up lifted the balance
// above the threshold, so the next crossing did not fire, unless a restart (which arms every
// rule that is not due) came in between.
test('a threshold rule whose own top-up lifts the balance above it fires at the next crossing, restart or not', async () => {
  await ok(await post('/api/v1/plans', { plan: { code: 'per_token', name: 'Per token', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [
    { billable_metric_id: metric.tokens, charge_model: 'standard', properties: { amount: '1' } }] } }));
  for (const [customer, restart] of [['refire', false], ['refire_restart', true]]) {
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: customer, plan_code: 'per_token', external_id: `${customer}_sub`, subscription_at: '2026-03-01T00:00:00Z' } }));
    const w = await createWallet({ external_customer_id: customer, currency: 'EUR', rate_amount: '1', name: 'Auto', granted_credits: '10', limit: 'hard',
      recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '3', granted_credits: '5' }] });
    const balances = [];
    for (const tokens of [8, 5, 3]) {
      const r = await send(event(`${customer}_sub`, 'tokens', { tokens }));
      assert.equal(r.status, 200, `${customer}: ${tokens} tokens`);
      balances.push((await wallet(w.lago_id)).balance_cents / 100);
      if (restart) await t.restart();
    }
    // 10 - 8 = 2 fires +5 (7); 7 - 5 = 2 crosses again, +5 (7); 7 - 3 = 4
    assert.deepEqual(balances, [7, 7, 4], customer);
  }
  await assertLedgerBalances();
});

// Found by a black-box audit: a rule was taken as fired for the balance it started at, so a
// wallet made at or below its threshold (or given a rule there) waited for the balance to rise
// above first; a hard-limited one soon answered 402 where its rule should have topped it up.
test('a threshold rule new at or below its threshold fires at the next debit; the same rule kept does not fire again while its top-up waits', async () => {
  const tx = async (id) => (await ok(await t.api(`/api/v1/wallets/${id}/wallet_transactions?transaction_status=granted`))).wallet_transactions;
  const sources = async (id) => (await tx(id)).map((x) => [x.source, x.amount]).sort();
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'low', plan_code: 'calls', external_id: 'low_sub', subscription_at: '2026-03-01T00:00:00Z' } }));
  const w = await createWallet({ external_customer_id: 'low', currency: 'EUR', rate_amount: '1', name: 'Low', granted_credits: '2', limit: 'hard',
    recurring_transaction_rules: [{ trigger: 'threshold', method: 'target', threshold_credits: '5', target_ongoing_balance: '20', grants_target_top_up: true }] });
  assert.equal(w.balance_cents, 200); // made, not fired: the next request may fund it
  await t.restart({ kill: true }); // kept across a restart (found by an audit: it was lost)
  assert.equal((await send(event('low_sub', 'calls'))).status, 200); // 1 left: up to 20
  assert.equal((await wallet(w.lago_id)).balance_cents, 2000);
  assert.deepEqual(await sources(w.lago_id), [['manual', '2.0'], ['threshold', '19.0']]);

  // a wallet given a rule below it: the next debit fires it, once for this fall (a paid
  // top-up to a target at the threshold: pending, it leaves the rule due, and the rule waits
  // for it to be paid; a granted one would arm the rule again at once, wallet_rule_terms.test)
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'low2', plan_code: 'calls', external_id: 'low2_sub', subscription_at: '2026-03-01T00:00:00Z' } }));
  const plain = await createWallet({ external_customer_id: 'low2', currency: 'EUR', rate_amount: '1', name: 'Plain', granted_credits: '2' });
  const put = async (wallet) => ok(await t.api(`/api/v1/wallets/${plain.lago_id}`, { method: 'PUT', body: { wallet } }));
  const bought = async () => (await ok(await t.api(`/api/v1/wallets/${plain.lago_id}/wallet_transactions?transaction_status=purchased`))).wallet_transactions.map((x) => [x.source, x.amount, x.status]).reverse();
  const target = { trigger: 'threshold', threshold_credits: '3', method: 'target', target_ongoing_balance: '3' };
  assert.equal((await put({ recurring_transaction_rules: [target] })).wallet.balance_cents, 200);
  await send(event('low2_sub', 'calls')); // 1: buys 2, pending
  assert.deepEqual(await bought(), [['threshold', '2.0', 'pending']]);
  // the same rule kept (a new name) stays fired for this fall; a changed one fires again
  await put({ name: 'Plain (renamed)', recurring_transaction_rules: [target] });
  await t.restart({ kill: true }); // fired: a restart keeps it so
  await send(event('low2_sub', 'calls')); // 0, nothing
  assert.equal((await wallet(plain.lago_id)).balance_cents, 0);
  assert.equal((await bought()).length, 1);
  await put({ recurring_transaction_rules: [{ ...target, target_ongoing_balance: '5' }] });
  await t.restart({ kill: true });
  await send(event('low2_sub', 'calls')); // a usage at 0: buys 5
  assert.deepEqual(await bought(), [['threshold', '2.0', 'pending'], ['threshold', '5.0', 'pending']]);
  await assertLedgerBalances();
});

// A rule fires on a fall of its own wallet's balance: an audit found a rule made below its
// threshold buying 50 credits (with a credit invoice) when another wallet of the customer was
// topped up, and when a grant of another wallet expired.
test("a threshold rule fires on its own wallet's fall, never on another wallet's top-up or expiry", async () => {
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'sib', plan_code: 'calls', external_id: 'sib_sub', subscription_at: '2026-03-01T00:00:00Z' } }));
  const promo = await createWallet({ external_customer_id: 'sib', currency: 'EUR', rate_amount: '1', name: 'Promo', priority: 1 });
  const auto = await createWallet({ external_customer_id: 'sib', currency: 'EUR', rate_amount: '1', name: 'Auto', granted_credits: '1', priority: 2,
    recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '1', method: 'fixed', paid_credits: '50', invoice_requires_successful_payment: false }] });
  const invoices = async () => (await ok(await t.api('/api/v1/invoices?external_customer_id=sib'))).invoices.length;
  // a top-up of the other wallet, with credits that expire, and their expiry: auto's balance never moves
  const clock = Date.parse((await ok(await t.api('/api/v1/test_clock'))).test_clock.now);
  const expires = new Date(clock + 86400e3).toISOString().replace('.000', '');
  await ok(await topUp({ wallet_id: promo.lago_id, granted_credits: '4', expiration_at: expires }));
  assert.deepEqual([(await wallet(auto.lago_id)).balance_cents, await invoices()], [100, 0]);
  await ok(await post('/api/v1/test_clock/advance', { test_clock: { to: new Date(clock + 2 * 86400e3).toISOString().replace('.000', '') } }));
  assert.equal((await wallet(promo.lago_id)).balance_cents, 0);
  assert.deepEqual([(await wallet(auto.lago_id)).balance_cents, await invoices()], [100, 0]);
  // its own fall: one call from 1 to 0 fires it once
  assert.equal((await send(event('sib_sub', 'calls'))).status, 200);
  assert.deepEqual([(await wallet(auto.lago_id)).balance_cents, await invoices()], [0, 1]);
  await payWallet(t, auto.lago_id);
  assert.equal((await wallet(auto.lago_id)).balance_cents, 5000);
  await assertLedgerBalances();
});

// A rule looks at its balance as each command begins: a rise between (a hold voided) is seen,
// so the fall after it is a crossing. An audit of the fix above found a rule added below its
// threshold missing that fall, and a fired rule not armed again by a void that lifted it above.
test('a threshold rule fires on a fall that follows a void, whether it was new or had fired', async () => {
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'vd', plan_code: 'calls', external_id: 'vd_sub', subscription_at: '2026-03-01T00:00:00Z' } }));
  const w = await createWallet({ external_customer_id: 'vd', currency: 'EUR', rate_amount: '1', name: 'Void', granted_credits: '10' });
  const hold = async () => (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'vd_sub', code: 'calls', properties: {}, expires_in: 600 } }))).authorization;
  const fired = async () => (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions?per_page=100`))).wallet_transactions.filter((x) => x.source === 'threshold').length;
  const calls = (k) => send(...Array.from({ length: k }, () => event('vd_sub', 'calls')));
  // new: held down to 9, a rule at 9.5 added there, the hold voided (10), then a fall to 9
  const h1 = await hold();
  await ok(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'PUT', body: { wallet: { recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '9.5', granted_credits: '2' }] } } }));
  await ok(await post(`/api/v1/authorizations/${h1.lago_id}/void`, {}));
  assert.equal(await fired(), 0);
  await calls(1); // 10 -> 9: fires, 11
  assert.deepEqual([await fired(), (await wallet(w.lago_id)).balance_cents], [1, 1100]);
  // fired, its top-up too small to lift it above: held down, it stays fired; the void lifts it
  // above, and the next fall below is a new crossing
  await ok(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'PUT', body: { wallet: { recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '10.5', granted_credits: '0.2' }] } } }));
  await calls(1); // 11 -> 10: fires (a new rule, a fall), 10.2: still at or below
  assert.deepEqual([await fired(), (await wallet(w.lago_id)).balance_cents], [2, 1020]);
  await ok(await topUp({ wallet_id: w.lago_id, granted_credits: '2' })); // 12.2: above, armed
  const h2 = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'vd_sub', code: 'calls', properties: {}, expires_in: 600 } }))).authorization;
  await calls(1); // 11.2 with 1 held: 10.2 ongoing, a fall: fires, 10.4, still at or below
  assert.equal(await fired(), 3);
  await ok(await post(`/api/v1/authorizations/${h2.lago_id}/void`, {})); // 11.4: above, by the void alone
  await calls(1); // 10.4: a new crossing
  assert.equal(await fired(), 4);
  await assertLedgerBalances();
});

// Two audits of the fixes above: within one command, a rise the rules did not look at hid the
// fall after it. A batch over two subscriptions: the first debit fired the rule, whose top-up
// lifted the balance above, and the second's fall back to the threshold did not fire. A later
// audit found the fix fire such a rule twice for one fall, net: a batch's rules now fire once
// per customer, after all its debits, on the balance they left (raise_debits.test.mjs). A
// sweep: a hold's expiry lifted the balance above, the expiry of a grant brought it back, and
// nothing fired (nor at the next fall: the rule was left disarmed).
test('a batch fires a rule once on its net, over two subscriptions; a rise and a fall in a sweep are a crossing', async () => {
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'twice', plan_code: 'calls', external_id: 'twice_1', subscription_at: '2026-03-01T00:00:00Z' } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'twice', plan_code: 'calls', external_id: 'twice_2', subscription_at: '2026-03-01T00:00:00Z' } }));
  const rule = [{ trigger: 'threshold', threshold_credits: '10', granted_credits: '10' }];
  const w = await createWallet({ external_customer_id: 'twice', currency: 'EUR', rate_amount: '1', name: 'Twice', granted_credits: '5', recurring_transaction_rules: rule });
  const fired = async (id) => (await ok(await t.api(`/api/v1/wallets/${id}/wallet_transactions?per_page=100`))).wallet_transactions.filter((x) => x.source === 'threshold').length;
  // 5 -> 4 on one subscription, four calls more on the other: 0, one fall, one top-up: 10
  assert.equal((await send(event('twice_1', 'calls'), ...Array.from({ length: 4 }, () => event('twice_2', 'calls')))).status, 200);
  assert.deepEqual([await fired(w.lago_id), (await wallet(w.lago_id)).balance_cents], [1, 1000]);
  // the top-up settled: the next call, at or below the threshold, fires again (9 -> 19)
  assert.equal((await send(event('twice_2', 'calls'))).status, 200);
  assert.deepEqual([await fired(w.lago_id), (await wallet(w.lago_id)).balance_cents], [2, 1900]);

  const units = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'units', name: 'Units', aggregation_type: 'sum_agg', field_name: 'v' } }))).billable_metric;
  await ok(await post('/api/v1/plans', { plan: { code: 'units', name: 'Units', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [
    { billable_metric_id: units.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'swept', plan_code: 'units', external_id: 'swept_sub', subscription_at: '2026-03-01T00:00:00Z' } }));
  const v = await createWallet({ external_customer_id: 'swept', currency: 'EUR', rate_amount: '1', name: 'Swept', granted_credits: '9',
    recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '10', granted_credits: '1' }] });
  const clock = Date.parse((await ok(await t.api('/api/v1/test_clock'))).test_clock.now);
  const at = (days) => new Date(clock + days * 86400e3).toISOString().replace(/\.\d+Z$/, 'Z');
  await ok(await topUp({ wallet_id: v.lago_id, granted_credits: '4', expiration_at: at(9) })); // 13
  // 5 held: 8 ongoing, a fall: fires once, 9, still at or below
  await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'swept_sub', code: 'units', properties: { v: 5 }, expires_in: 86400 } }));
  assert.equal(await fired(v.lago_id), 1);
  // one advance over the hold's expiry (14: above) and the 4 credits' (10: a crossing): the
  // sweep releases the hold onto a grant already past its expiry, so its credits expire with
  // the release; the rule sees the rise, is armed, and fires at the next fall (a known limit:
  // not in the sweep itself, docs/API.md)
  await ok(await post('/api/v1/test_clock/advance', { test_clock: { to: at(14) } }));
  assert.deepEqual([await fired(v.lago_id), (await wallet(v.lago_id)).ongoing_balance_cents], [1, 1000]);
  await send(event('swept_sub', 'units', { v: 1 })); // 10 -> 9: fires, 10
  assert.deepEqual([await fired(v.lago_id), (await wallet(v.lago_id)).ongoing_balance_cents], [2, 1000]);
  await assertLedgerBalances();
});

// Prepaid credits before debt: a debit takes every wallet's live credits, in wallet order,
// before any soft wallet's overdraft, and a hold reserves the same way. An audit found the
// customer owing 3.00 on a soft wallet while another of its wallets held 20.00.
test("a soft wallet's overdraft is drawn only once no wallet's credits can pay", async () => {
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'debt', plan_code: 'calls', external_id: 'debt_sub', subscription_at: '2026-03-01T00:00:00Z' } }));
  const soft = await createWallet({ external_customer_id: 'debt', currency: 'EUR', rate_amount: '1', name: 'Soft', granted_credits: '5', limit: 'soft', overdraft_credits: '10', priority: 1 });
  const other = await createWallet({ external_customer_id: 'debt', currency: 'EUR', rate_amount: '1', name: 'Other', granted_credits: '20', priority: 2 });
  const state = async () => { const s = await wallet(soft.lago_id), o = await wallet(other.lago_id); return [s.balance_cents, s.overdrawn_cents, o.balance_cents]; };
  const hold = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'debt_sub', code: 'calls', properties: {}, expires_in: 600 } }))).authorization;
  assert.equal(hold.status, 'authorized');
  await ok(await post(`/api/v1/authorizations/${hold.lago_id}/void`, {}));
  assert.equal((await send(...Array.from({ length: 8 }, () => event('debt_sub', 'calls')))).status, 200); // 8.00
  assert.deepEqual(await state(), [0, 0, 1700]);
  // a hold of one call reserves the other wallet's credits, not the soft wallet's overdraft
  const big = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'debt_sub', code: 'calls', properties: {}, expires_in: 600 } }))).authorization;
  assert.equal(big.status, 'authorized');
  await ok(await post(`/api/v1/authorizations/${big.lago_id}/capture`, {}));
  assert.deepEqual(await state(), [0, 0, 1600]);
  assert.equal((await send(...Array.from({ length: 19 }, () => event('debt_sub', 'calls')))).status, 200); // 16 from other, then 3 of debt
  assert.deepEqual(await state(), [-300, 300, 0]);
  await assertLedgerBalances();
});

// Found by an audit with Lago's client: a rule's transaction_metadata (required in Lago's
// schema) was dropped, and the top-ups the rule made carried none.
test('a rule\'s transaction_metadata is kept, shown, and given to the top-ups it makes', async () => {
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'meta', plan_code: 'per_token', external_id: 'meta_sub', subscription_at: '2026-03-01T00:00:00Z' } }));
  const metadata = [{ key: 'source', value: 'auto' }];
  const w = await createWallet({ external_customer_id: 'meta', currency: 'EUR', rate_amount: '1', name: 'Auto', granted_credits: '10', limit: 'hard',
    recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '3', granted_credits: '5', transaction_metadata: metadata }] });
  assert.deepEqual(w.recurring_transaction_rules[0].transaction_metadata, metadata);
  const plain = await createWallet({ external_customer_id: 'meta', currency: 'EUR', rate_amount: '1', name: 'Plain', recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '1', granted_credits: '1' }] });
  assert.deepEqual(plain.recurring_transaction_rules[0].transaction_metadata, []);
  const bad = await post('/api/v1/wallets', { wallet: { external_customer_id: 'meta', currency: 'EUR', rate_amount: '1', name: 'Bad', recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '1', granted_credits: '1', transaction_metadata: 'nope' }] } });
  assert.equal(bad.status, 422);
  assert.deepEqual((await bad.json()).error_details, { transaction_metadata: ['invalid_type'] });
  await ok(await send(event('meta_sub', 'tokens', { tokens: 8 }))); // 10 - 8 = 2: the rule fires
  const granted = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions?transaction_status=granted`))).wallet_transactions;
  const auto = granted.filter((x) => x.source === 'threshold');
  assert.equal(auto.length, 1);
  assert.deepEqual(auto[0].metadata, metadata);
});

// Found by an audit: usage from before a customer's first wallet was debited from it by the
// next event (and held by the next hold), more than that event's step (what estimate_fees
// quotes); it is the invoice's, as the part a wallet that ran dry did not cover.
test('usage while a customer has no wallet is the invoice\'s: the next event pays its own step', async () => {
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'late_wallet', plan_code: 'per_token', external_id: 'late_wallet_sub', subscription_at: '2026-03-01T00:00:00Z' } }));
  await ok(await send(event('late_wallet_sub', 'tokens', { tokens: 10 }))); // 10 EUR, no wallet yet
  const w = await createWallet({ external_customer_id: 'late_wallet', currency: 'EUR', rate_amount: '1', name: 'Late', granted_credits: '100', limit: 'hard' });
  const props = { external_subscription_id: 'late_wallet_sub', code: 'tokens', properties: { tokens: 5 } };
  const hold = (await ok(await post('/api/v1/authorizations', { authorization: props }))).authorization;
  assert.equal(hold.amount_cents, 500);
  await ok(await post(`/api/v1/authorizations/${hold.lago_id}/void`, {}));
  await ok(await send(event('late_wallet_sub', 'tokens', { tokens: 5 })));
  assert.equal((await wallet(w.lago_id)).balance_cents, 10000 - 500);
  assert.equal((await ok(await t.api('/api/v1/customers/late_wallet/current_usage?external_subscription_id=late_wallet_sub'))).customer_usage.amount_cents, 1500);
  await t.restart();
  await ok(await send(event('late_wallet_sub', 'tokens', { tokens: 1 })));
  assert.equal((await wallet(w.lago_id)).balance_cents, 10000 - 600);
  // and so is what it used after that wallet was terminated, before its next one
  await ok(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'DELETE' }));
  await ok(await send(event('late_wallet_sub', 'tokens', { tokens: 3 })));
  const next = await createWallet({ external_customer_id: 'late_wallet', currency: 'EUR', rate_amount: '1', name: 'Next', granted_credits: '100', limit: 'hard' });
  const hold2 = (await ok(await post('/api/v1/authorizations', { authorization: { ...props, properties: { tokens: 1 } } }))).authorization;
  assert.equal(hold2.amount_cents, 100);
  await ok(await post(`/api/v1/authorizations/${hold2.lago_id}/void`, {}));
  await ok(await send(event('late_wallet_sub', 'tokens', { tokens: 1 })));
  assert.equal((await wallet(next.lago_id)).balance_cents, 10000 - 100);
  await assertLedgerBalances();
});

test('a credit invoice is due after the customer\'s net payment term when it was issued', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'mu', currency: 'EUR', net_payment_term: 30 } }));
  const w = await createWallet({ external_customer_id: 'mu', currency: 'EUR', rate_amount: '1', name: 'Termed', invoice_requires_successful_payment: true });
  const [paid] = (await ok(await topUp({ wallet_id: w.lago_id, paid_credits: '2' }))).wallet_transactions;
  const invoice = async () => (await ok(await t.api(`/api/v1/invoices/${paid.lago_invoice_id}`))).invoice;
  const issued = await invoice();
  const due = new Date(Date.parse(issued.issuing_date) + 30 * 86400e3).toISOString().slice(0, 10);
  assert.deepEqual([issued.net_payment_term, issued.payment_due_date], [30, due]);
  await ok(await post('/api/v1/customers', { customer: { external_id: 'mu', net_payment_term: 5 } }));
  assert.deepEqual([(await invoice()).net_payment_term, (await invoice()).payment_due_date], [30, due]); // as issued
});

// The accounting date is the customer's, as Lago's: a credit invoice is issued on the day it is
// in the customer's zone, and due net_payment_term days after that. Found by an audit: the UTC
// date, a day off for a customer far from Greenwich.
test('a credit invoice is issued on the customer\'s own day', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'xi', currency: 'EUR', timezone: 'Pacific/Kiritimati', net_payment_term: 2 } }));
  const w = await createWallet({ external_customer_id: 'xi', currency: 'EUR', rate_amount: '1', name: 'Far east' });
  const [paid] = (await ok(await topUp({ wallet_id: w.lago_id, paid_credits: '2' }))).wallet_transactions;
  const invoice = (await ok(await t.api(`/api/v1/invoices/${paid.lago_invoice_id}`))).invoice;
  const now = Date.parse((await ok(await t.api('/api/v1/test_clock'))).test_clock.now);
  const day = (ms) => new Date(ms).toISOString().slice(0, 10);
  const local = now + 14 * 3600e3; // UTC+14 all year
  assert.notEqual(day(local), day(now)); // (this file's clock sits at noon UTC)
  assert.deepEqual([invoice.issuing_date, invoice.payment_due_date], [day(local), day(local + 2 * 86400e3)]);
  const listed = (await ok(await t.api(`/api/v1/invoices?external_customer_id=xi&issuing_date_from=${day(local)}`))).invoices;
  assert.deepEqual(listed.map((i) => i.lago_id), [invoice.lago_id]);
  // Lago's invoice fields an audit found missing: what was paid, credits applied, self-billing
  const fields = (i) => [i.total_paid_amount_cents, i.prepaid_granted_credit_amount_cents, i.prepaid_purchased_credit_amount_cents,
    i.self_billed, i.file_url, i.applied_invoice_custom_sections, i.fees[0].lago_invoice_id, i.fees[0].external_customer_id];
  assert.deepEqual(fields(invoice), [0, 0, 0, false, null, [], invoice.lago_id, 'xi']);
  const paidNow = (await ok(await t.api(`/api/v1/invoices/${invoice.lago_id}`, { method: 'PUT', body: { invoice: { payment_status: 'succeeded' } } }))).invoice;
  assert.deepEqual(fields(paidNow), [200, 0, 0, false, null, [], invoice.lago_id, 'xi']);
});

// Lago's FeeSerializer writes every member on every fee, null where there is none, and a fee's
// lago_id is what a client keeps for it; Lago's show and update write the invoice's subscriptions,
// billing periods, credits and error details too. An audit found all of these missing.
test('a credit invoice\'s fee has a lago_id kept across restarts, and every member Lago\'s fee has', async () => {
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  await ok(await post('/api/v1/customers', { customer: { external_id: 'omicron', currency: 'KWD' } }));
  const w = await createWallet({ external_customer_id: 'omicron', currency: 'KWD', rate_amount: '0.125', name: 'Fils', invoice_requires_successful_payment: true });
  const [named] = (await ok(await topUp({ wallet_id: w.lago_id, paid_credits: '3', name: 'Spring pack' }))).wallet_transactions;
  const [unnamed] = (await ok(await topUp({ wallet_id: w.lago_id, paid_credits: '8' }))).wallet_transactions;
  const get = async (id) => (await ok(await t.api(`/api/v1/invoices/${id}`))).invoice;
  const invoice = await get(named.lago_invoice_id);
  const fee = invoice.fees[0];
  assert.match(fee.lago_id, uuid);
  assert.notEqual(fee.lago_id, invoice.lago_id);
  const { item, ...members } = fee;
  // 3 credits at 0.125 KWD: 0.375 KWD, 375 fils, shown exactly in the currency's units
  assert.deepEqual(members, {
    lago_id: fee.lago_id, lago_charge_id: null, lago_charge_filter_id: null, lago_fixed_charge_id: null,
    lago_invoice_id: invoice.lago_id, lago_true_up_fee_id: null, lago_true_up_parent_fee_id: null, lago_original_fee_id: null,
    lago_subscription_id: null, external_subscription_id: null, lago_customer_id: invoice.customer.lago_id, external_customer_id: 'omicron',
    pay_in_advance: false, invoiceable: true, amount_cents: 375, amount_currency: 'KWD',
    precise_amount: '0.375', precise_total_amount: '0.375', taxes_amount_cents: 0, taxes_precise_amount: '0.0', taxes_rate: 0,
    total_aggregated_units: '3.0', total_amount_cents: 375, total_amount_currency: 'KWD', units: '3.0', description: null,
    precise_unit_amount: '0.125', precise_coupons_amount_cents: '0.0',
    sub_total_excluding_taxes_amount_cents: 375, sub_total_excluding_taxes_precise_amount_cents: '375.0',
    events_count: null, payment_status: 'pending', created_at: invoice.created_at,
    succeeded_at: null, failed_at: null, refunded_at: null, amount_details: {}, self_billed: false,
    pricing_unit_details: null, presentation_breakdowns: [],
  });
  // Lago's credit fee item: the transaction's name, else "credit"; described as "credit"
  assert.deepEqual(item, { type: 'credit', code: 'credit', name: 'Spring pack', description: 'credit', invoice_display_name: 'Spring pack',
    filters: null, filter_invoice_display_name: null, lago_item_id: named.lago_id, item_type: 'WalletTransaction', grouped_by: {} });
  const other = (await get(unnamed.lago_invoice_id)).fees[0];
  assert.deepEqual([other.item.name, other.item.invoice_display_name, other.precise_amount], ['credit', 'credit', '1.0']);
  assert.notEqual(other.lago_id, fee.lago_id);
  // render_invoice's collections (a credit invoice has none of them) and the dispute date
  const shown = (i) => [i.subscriptions, i.billing_periods, i.credits, i.error_details, i.payment_dispute_lost_at];
  assert.deepEqual(shown(invoice), [[], [], [], [], null]);
  // the same fee id in the list, in PUT's answer and after a restart
  const listed = async () => (await ok(await t.api('/api/v1/invoices?external_customer_id=omicron'))).invoices;
  const feeIds = async () => (await listed()).map((i) => i.fees[0].lago_id);
  assert.deepEqual(await feeIds(), [other.lago_id, fee.lago_id]);
  assert.deepEqual((await listed()).map((i) => i.payment_dispute_lost_at), [null, null]);
  const paid = (await ok(await t.api(`/api/v1/invoices/${invoice.lago_id}`, { method: 'PUT', body: { invoice: { payment_status: 'succeeded' } } }))).invoice;
  assert.equal(paid.fees[0].lago_id, fee.lago_id);
  assert.equal(paid.fees[0].payment_status, 'succeeded');
  assert.deepEqual(shown(paid), [[], [], [], [], null]);
  await t.restart();
  assert.equal((await get(invoice.lago_id)).fees[0].lago_id, fee.lago_id);
  assert.deepEqual(await feeIds(), [other.lago_id, fee.lago_id]);
  await t.restart({ kill: true });
  assert.equal((await get(unnamed.lago_invoice_id)).fees[0].lago_id, other.lago_id);
});

test('a purchase waiting for its payment when its wallet is terminated can be marked failed, not paid', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'nu', currency: 'EUR' } }));
  const w = await createWallet({ external_customer_id: 'nu', currency: 'EUR', rate_amount: '1', name: 'Gone', invoice_requires_successful_payment: true });
  const [pending] = (await ok(await topUp({ wallet_id: w.lago_id, paid_credits: '7' }))).wallet_transactions;
  await ok(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'DELETE' }));
  const put = (payment_status) => t.api(`/api/v1/invoices/${pending.lago_invoice_id}`, { method: 'PUT', body: { invoice: { payment_status } } });
  const paid = await put('succeeded');
  assert.equal(paid.status, 422);
  const body = await paid.json();
  assert.deepEqual(body.error_details, { payment_status: ['wallet_is_terminated'] });
  assert.match(body.message, /mark the payment failed/);
  const failed = (await ok(await put('failed'))).invoice;
  assert.deepEqual([failed.payment_status, failed.status], ['failed', 'open']); // no claim: nothing arrives
  const tx = (await ok(await t.api(`/api/v1/wallet_transactions/${pending.lago_id}`))).wallet_transaction;
  assert.equal(tx.status, 'failed');
});

// A unique count's events_count (Lago's) shows only the values present, so a period whose
// events only removed values looked like a period without events: the first tier's flat fee
// was in the current usage but no wallet paid it, and removing the last value gave it back.
test('a unique count whose events only remove values still pays its first tier\'s flat fee', async () => {
  const seats = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'seats_flat', name: 'Seats', aggregation_type: 'unique_count_agg', field_name: 'user' } }))).billable_metric.lago_id;
  await ok(await post('/api/v1/taxes', { tax: { code: 'nyc', name: 'NYC', rate: '8.875' } }));
  await ok(await post('/api/v1/plans', { plan: { code: 'seats_flat', name: 'Seats', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', tax_codes: ['nyc'], charges: [
    { billable_metric_id: seats, charge_model: 'graduated', properties: { graduated_ranges: [{ from_value: 0, to_value: null, per_unit_amount: '10', flat_amount: '1' }] } },
  ] } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'flat_seats', plan_code: 'seats_flat', external_id: 'flat_seats_sub', subscription_at: '2026-03-01T00:00:00Z' } }));
  const wallet = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'flat_seats', currency: 'EUR', rate_amount: '0.01', granted_credits: '100000' } }))).wallet;
  let n = 0;
  const consumedAfter = async (user, operation_type) => {
    const properties = operation_type ? { user, operation_type } : { user };
    await ok(await post('/api/v1/events', { event: { transaction_id: `flat${n++}`, external_subscription_id: 'flat_seats_sub', code: 'seats_flat', properties } }));
    const usage = (await ok(await t.api('/api/v1/customers/flat_seats/current_usage?external_subscription_id=flat_seats_sub'))).customer_usage;
    const w = (await ok(await t.api(`/api/v1/wallets/${wallet.lago_id}`))).wallet;
    assert.equal(Number(w.consumed_credits), usage.total_amount_cents, `after ${operation_type ?? 'add'} ${user}`);
    return usage.total_amount_cents;
  };
  assert.equal(await consumedAfter('a', 'remove'), 109); // 1 EUR flat + 8.875%
  assert.equal(await consumedAfter('b'), 1198); // 11 EUR + 8.875%
  assert.equal(await consumedAfter('b', 'remove'), 109); // 1089 given back, not 1198
  // a hold priced for a removal prices nothing more: the flat fee is paid
  const hold = await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'flat_seats_sub', code: 'seats_flat', properties: { user: 'c', operation_type: 'remove' } } }));
  assert.equal(hold.authorization.amount_cents, 0);
  await checkWalletLedger(t, wallet.lago_id);
  // and a hold for a period's first event, a removal, reserves the flat fee
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'flat_seats2', plan_code: 'seats_flat', external_id: 'flat_seats_sub2', subscription_at: '2026-03-01T00:00:00Z' } }));
  await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'flat_seats2', currency: 'EUR', rate_amount: '0.01', granted_credits: '100000' } }));
  const first = await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'flat_seats_sub2', code: 'seats_flat', properties: { user: 'c', operation_type: 'remove' } } }));
  assert.equal(first.authorization.amount_cents, 109);
});

// Found by a black-box audit: a metadata key over 100 bytes or a value over 255 bytes was
// refused as invalid_type, which a client sending a string value cannot act on.
test('wallet metadata: a key or value too long is value_is_too_long, a value of the wrong type invalid_type', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'meta_long', currency: 'EUR' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'meta_long', currency: 'EUR', rate_amount: '1' } }))).wallet;
  const path = `/api/v1/wallets/${w.lago_id}/metadata`;
  const details = async (metadata, method = 'POST') => {
    const r = await t.api(path, { method, body: { metadata } });
    const b = await json(r);
    return [r.status, b.error_details];
  };
  for (const method of ['POST', 'PATCH']) {
    assert.deepEqual(await details({ ['k'.repeat(101)]: 'v' }, method), [422, { metadata: ['value_is_too_long'] }], method);
    assert.deepEqual(await details({ k: 'v'.repeat(256) }, method), [422, { metadata: ['value_is_too_long'] }], method);
    assert.deepEqual(await details({ k: 1 }, method), [422, { metadata: ['invalid_type'] }], method);
    // each refusal says what to fix (an audit found invalid_type without a message)
    for (const metadata of [{ k: 1 }, { k: { a: 'b' } }, ['k', 'v'], 'k']) {
      const r = await t.api(path, { method, body: { metadata } });
      const b = await json(r);
      assert.equal(r.status, 422, JSON.stringify(b));
      assert.match(b.message ?? '', /string/, `${method} ${JSON.stringify(metadata)}: ${JSON.stringify(b)}`);
    }
  }
  // the limits themselves are kept
  assert.equal((await details({ ['k'.repeat(100)]: 'v'.repeat(255) }))[0], 200);
});

// Found by an input audit: a blank metadata key was kept, and its delete route
// (`DELETE …/metadata/`, the trailing slash folded as Rails folds it) deleted every key; and a
// 4096-byte cap on the whole object refused forty keys each within its limits, with no word
// of why. Now Lago's own limit (50 keys) holds, blank keys are refused, each with a message.
test('wallet metadata: blank keys refused, at most 50 keys, each refusal says its limit', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'meta_keys', currency: 'EUR' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'meta_keys', currency: 'EUR', rate_amount: '1' } }))).wallet;
  const path = `/api/v1/wallets/${w.lago_id}/metadata`;
  const send = async (metadata, method = 'POST') => {
    const r = await t.api(path, { method, body: { metadata } });
    const b = await json(r);
    return [r.status, b.error_details, b.message];
  };
  assert.equal((await send({ plan_tier: 'gold', region: 'eu' }))[0], 200);
  for (const key of ['', ' ', '\t'])
    for (const method of ['POST', 'PATCH']) {
      const [s, d, m] = await send({ [key]: 'x', other: 'y' }, method);
      assert.deepEqual([s, d], [422, { metadata: ['value_is_mandatory'] }], `${method} ${JSON.stringify(key)}`);
      assert.match(m, /blank/);
    }
  const many = (n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`key_${i}`, 'v'.repeat(255)]));
  assert.equal((await send(many(50)))[0], 200); // about 14 KB, each key within its limits
  const [s, d, m] = await send(many(51));
  assert.deepEqual([s, d], [422, { metadata: ['too_many_items'] }]);
  assert.match(m, /50/);
  // a merge counts the keys it would leave
  assert.deepEqual((await send({ one_more: 'v' }, 'PATCH')).slice(0, 2), [422, { metadata: ['too_many_items'] }]);
  assert.match((await send({ ['k'.repeat(101)]: 'v' }))[2], /100/);
  // nothing refused changed what is kept
  const kept = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}`))).wallet.metadata;
  assert.equal(Object.keys(kept).length, 50);
});

// Found by an audit of the fix above: a wallet an older Tally kept with more than 50 keys, or a
// blank key, could then not lose a key (DELETE of one, PATCH to null): the whole was checked.
// What is sent is checked; what is kept only may not grow past the limit.
test('wallet metadata kept past today\'s limits by an older Tally can still lose keys one at a time', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'meta_old', currency: 'EUR' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'meta_old', currency: 'EUR', rate_amount: '1' } }))).wallet;
  const old = Object.fromEntries([['', 'blank'], ...Array.from({ length: 55 }, (_, i) => [`k${i}`, 'v'])]);
  await t.restart({
    between: (dir) => {
      const sql = `UPDATE wallets SET terms = json_set(terms, '$.metadata', json('${JSON.stringify(old)}')) WHERE lago_id = '${w.lago_id}'`;
      const r = spawnSync('sqlite3', [join(dir, 'tally.db'), sql], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    },
  });
  const path = `/api/v1/wallets/${w.lago_id}/metadata`;
  assert.equal(Object.keys((await ok(await t.api(path + '/k0', { method: 'DELETE' }))).metadata).length, 55);
  const nulled = (await ok(await t.api(path, { method: 'PATCH', body: { metadata: { k1: null } } }))).metadata;
  assert.deepEqual([Object.keys(nulled).length, nulled.k1], [55, null]);
  const grow = await t.api(path, { method: 'PATCH', body: { metadata: { added: 'v' } } });
  assert.deepEqual([grow.status, (await json(grow)).error_details], [422, { metadata: ['too_many_items'] }]);
  assert.equal((await ok(await t.api(path, { method: 'PATCH', body: { metadata: { k2: 'changed' } } }))).metadata.k2, 'changed');
});

// Found by an audit (report 9, F2): a void kept the request's name but dropped its metadata
// and priority; Lago's VoidService records all three on the outbound transaction.
test('a void keeps the metadata, name and priority sent with it, alone or beside a grant', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'void_meta', currency: 'EUR' } }));
  const w = await createWallet({ external_customer_id: 'void_meta', currency: 'EUR', rate_amount: '1', granted_credits: '10' });
  const shape = (x) => [x.transaction_status, x.name, x.priority, x.metadata];
  const alone = await ok(await topUp({ wallet_id: w.lago_id, voided_credits: '1', metadata: [{ key: 'reason', value: 'refund-123' }], name: 'cleanup', priority: 7 }));
  assert.deepEqual(alone.wallet_transactions.map(shape), [['voided', 'cleanup', 7, [{ key: 'reason', value: 'refund-123' }]]]);
  const mixed = await ok(await topUp({ wallet_id: w.lago_id, granted_credits: '2', voided_credits: '1', metadata: [{ key: 'a', value: 'b' }], name: 'mix', priority: 7 }));
  assert.deepEqual(mixed.wallet_transactions.map(shape), [['granted', 'mix', 7, [{ key: 'a', value: 'b' }]], ['voided', 'mix', 7, [{ key: 'a', value: 'b' }]]]);
  const read = (await ok(await t.api(`/api/v1/wallet_transactions/${alone.wallet_transactions[0].lago_id}`))).wallet_transaction;
  assert.deepEqual(shape(read), shape(alone.wallet_transactions[0]));
  const plain = await ok(await topUp({ wallet_id: w.lago_id, voided_credits: '1' }));
  assert.deepEqual(plain.wallet_transactions.map(shape), [['voided', null, 50, []]]);
  assert.equal((await wallet(w.lago_id)).balance_cents, 900);
});

// Found by an audit (report 9, F4): a transaction's metadata with too many pairs, or a key or
// value too long, was refused invalid_type, with no word of the limit. They are Tally's codes
// for those limits elsewhere (too_many_items, value_is_too_long), with a message saying it.
test('a top-up\'s metadata past its limits says which limit, not invalid_type', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'tx_meta', currency: 'EUR' } }));
  const w = await createWallet({ external_customer_id: 'tx_meta', currency: 'EUR', rate_amount: '1' });
  const pairs = (n) => Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: 'v' }));
  const refusal = async (body) => {
    const r = await topUp({ wallet_id: w.lago_id, granted_credits: '1', ...body });
    const b = await json(r);
    return [r.status, b.error_details, b.message];
  };
  assert.equal((await refusal({ metadata: pairs(15) }))[0], 200);
  const [s1, d1, m1] = await refusal({ metadata: pairs(16) });
  assert.deepEqual([s1, d1], [422, { metadata: ['too_many_items'] }]);
  assert.match(m1, /15/);
  for (const metadata of [[{ key: 'k', value: 'v'.repeat(256) }], [{ key: 'k'.repeat(256), value: 'v' }]]) {
    const [s, d, m] = await refusal({ metadata });
    assert.deepEqual([s, d], [422, { metadata: ['value_is_too_long'] }]);
    assert.match(m, /255/);
  }
  assert.equal((await refusal({ metadata: [{ key: 'k'.repeat(255), value: 'v'.repeat(255) }] }))[0], 200);
  assert.deepEqual((await refusal({ metadata: [{ key: 'k', value: { nested: 1 } }] })).slice(0, 2), [422, { metadata: ['invalid_type'] }]);
  // a name past 255 bytes is value_is_too_long, as every name Tally keeps
  assert.deepEqual((await refusal({ name: 'n'.repeat(256) })).slice(0, 2), [422, { name: ['value_is_too_long'] }]);
  // a rule's transaction_metadata is held to the same limits
  const rule = await post('/api/v1/wallets', { wallet: { external_customer_id: 'tx_meta', currency: 'EUR', rate_amount: '1',
    recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', granted_credits: '1', transaction_metadata: pairs(16) }] } });
  assert.deepEqual([rule.status, (await json(rule)).error_details], [422, { transaction_metadata: ['too_many_items'] }]);
});

// Found by an audit with Lago's client: wallets made without a code in one second were named
// `default`, then `default_<unix seconds>`, and the third was refused 422 code:
// value_already_exist, a field its client never sent. A code Tally makes is always free.
test('a code made for a wallet is always free: Lago\'s name, then _<seconds>, then a counter', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'auto_codes' } }));
  const made = async (extra = {}) => createWallet({ external_customer_id: 'auto_codes', currency: 'EUR', rate_amount: '1', ...extra });
  const first = await made();
  assert.equal(first.code, 'default');
  const seconds = Date.parse(first.created_at) / 1000;
  // a client's own code may take the next one Lago's rule would make
  assert.equal((await made({ code: `default_${seconds}` })).code, `default_${seconds}`);
  const codes = [];
  for (let i = 0; i < 3; i++) codes.push((await made()).code); // the test clock: all in one second
  assert.deepEqual(codes, [`default_${seconds}_2`, `default_${seconds}_3`, `default_${seconds}_4`]);
  // a code the client sends is still its own: taken, it is refused
  const r = await post('/api/v1/wallets', { wallet: { external_customer_id: 'auto_codes', currency: 'EUR', rate_amount: '1', code: 'default' } });
  assert.deepEqual([r.status, (await json(r)).error_details], [422, { code: ['value_already_exist'] }]);
  // from a name, and kept within the 255 bytes a code may have, so it can be sent back
  await ok(await post('/api/v1/customers', { customer: { external_id: 'auto_names' } }));
  const named = async (name) => (await createWallet({ external_customer_id: 'auto_names', currency: 'EUR', rate_amount: '1', name })).code;
  assert.deepEqual([await named('Top Up!'), await named('top-up')], ['top_up', `top_up_${seconds}`]);
  const long = 'a'.repeat(255);
  assert.equal(await named(long), long);
  const [second, third] = [await named(long), await named(long)];
  assert.deepEqual([second.length, third.length], [255, 255]);
  assert.match(second, new RegExp(`^a+_${seconds}$`));
  assert.match(third, new RegExp(`^a+_${seconds}_2$`));
  const w = (await ok(await t.api(`/api/v1/customers/auto_names/wallets/${third}`))).wallet;
  assert.equal((await ok(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'PUT', body: { wallet: { code: w.code } } }))).wallet.code, third);
});

// The test clock moved on by `seconds`: the instant it reads now, as Tally writes instants.
const clockForward = async (seconds) => {
  const now = Date.parse((await ok(await t.api('/api/v1/test_clock'))).test_clock.now);
  const to = new Date(now + seconds * 1000).toISOString().replace('.000', '');
  await ok(await post('/api/v1/test_clock/advance', { test_clock: { to } }));
  return to;
};

// Found by an audit with Lago's client (report 2, finding 1): a top-up naming no credits, or
// only zero ones, was 422 paid_credits: value_is_mandatory (even when paid_credits was not
// sent). Lago requires none of the amounts and skips a zero one: 200 with no transaction.
test('a top-up of no credits, or of zero ones, answers an empty list and changes nothing, as Lago\'s', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'zero_top_up', currency: 'EUR' } }));
  // at its threshold, with a rule not fired yet: anything that saved the wallet would fire it
  const w = await createWallet({ external_customer_id: 'zero_top_up', currency: 'EUR', rate_amount: '1', granted_credits: '5',
    recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '10', granted_credits: '3' }] });
  await clockForward(60);
  const before1 = await wallet(w.lago_id);
  const txs = async () => (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions`))).wallet_transactions;
  const [txBefore, ledgerBefore] = [await txs(), await ledger(`wallet_id=${w.lago_id}`)];
  assert.equal(txBefore.length, 1);
  const bodies = [{}, { paid_credits: '0' }, { granted_credits: '0' }, { voided_credits: '0' }, { paid_credits: '0', granted_credits: '0.00' },
    { paid_credits: 0, granted_credits: '0', voided_credits: '0', name: 'nothing', metadata: [{ key: 'k', value: 'v' }] }, { granted_credits: null },
    // zero credits of a named grant void none of it (a round-2 audit found all of it voided)
    { voided_transaction_id: txBefore[0].lago_id, voided_credits: '0' }];
  for (const body of bodies) {
    const r = await topUp({ wallet_id: w.lago_id, ...body });
    assert.equal(r.status, 200, JSON.stringify(body));
    assert.equal(await r.text(), '{"wallet_transactions":[]}', JSON.stringify(body));
  }
  const key = { 'Idempotency-Key': 'zero-top-up-1' };
  const first = await topUp({ wallet_id: w.lago_id, paid_credits: '0' }, key);
  const replay = await topUp({ wallet_id: w.lago_id, paid_credits: '0' }, key);
  assert.deepEqual([first.status, await first.text()], [200, '{"wallet_transactions":[]}']);
  assert.deepEqual([replay.status, await replay.text()], [200, '{"wallet_transactions":[]}']);
  assert.deepEqual(await wallet(w.lago_id), before1); // balance, updated_at, rule unfired
  assert.deepEqual(await txs(), txBefore);
  assert.deepEqual(await ledger(`wallet_id=${w.lago_id}`), ledgerBefore);
  // the wallet is still checked first, as Lago's validator checks it
  const none = await topUp({ wallet_id: '00000000-0000-0000-0000-000000000000', paid_credits: '0' });
  assert.deepEqual([none.status, (await json(none)).error_details], [422, { wallet_id: ['wallet_not_found'] }]);
  await ok(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'DELETE' }));
  const ended = await topUp({ wallet_id: w.lago_id, granted_credits: '0' });
  assert.deepEqual([ended.status, (await json(ended)).error_details], [422, { wallet_id: ['wallet_is_terminated'] }]);
});

// Found by an audit with Lago's client (report 2, finding 2): voided credits raised
// consumed_credits and left last_consumed_credit_at null. Lago's void goes through
// Wallets::Balance::DecreaseService, which sets it to now. Lago's termination (by request or at
// expiration_at) changes no balance, so neither its consumed_credits nor this: Tally's void of
// what a termination leaves counts as consumed, and leaves last_consumed_credit_at as it was.
test('a void sets last_consumed_credit_at, kept across a restart; a termination leaves it', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'void_when', currency: 'EUR' } }));
  const w = await createWallet({ external_customer_id: 'void_when', currency: 'EUR', rate_amount: '1', granted_credits: '10' });
  assert.equal(w.last_consumed_credit_at, null);
  const at1 = await clockForward(3600);
  await ok(await topUp({ wallet_id: w.lago_id, voided_credits: '4' }));
  let now = await wallet(w.lago_id);
  assert.deepEqual([now.consumed_credits, now.last_consumed_credit_at], ['4.0', at1]);
  const at2 = await clockForward(3600);
  const grant = (await ok(await topUp({ wallet_id: w.lago_id, granted_credits: '3' }))).wallet_transactions[0];
  now = await wallet(w.lago_id);
  assert.equal(now.last_consumed_credit_at, at1); // a grant consumes nothing
  await ok(await topUp({ wallet_id: w.lago_id, voided_transaction_id: grant.lago_id }));
  now = await wallet(w.lago_id);
  assert.deepEqual([now.consumed_credits, now.last_consumed_credit_at], ['7.0', at2]);
  await t.restart({ kill: true });
  assert.equal((await wallet(w.lago_id)).last_consumed_credit_at, at2);
  await clockForward(3600);
  const gone = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'DELETE' }))).wallet;
  assert.deepEqual([gone.consumed_credits, gone.last_consumed_credit_at], ['13.0', at2]);
  const fresh = await createWallet({ external_customer_id: 'void_when', currency: 'EUR', rate_amount: '1', granted_credits: '2' });
  const ended = (await ok(await t.api(`/api/v1/wallets/${fresh.lago_id}`, { method: 'DELETE' }))).wallet;
  assert.deepEqual([ended.consumed_credits, ended.last_consumed_credit_at], ['2.0', null]);
});

// Found by an audit with Lago's client (report 2, finding 3): "abc" was invalid_value and "-1"
// invalid_amount; Lago's validator names both invalid_<field> and invalid_amount for either.
test('an amount that is not a decimal, or is below zero, names Lago\'s two codes', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'bad_amounts', currency: 'EUR' } }));
  const w = await createWallet({ external_customer_id: 'bad_amounts', currency: 'EUR', rate_amount: '1', granted_credits: '10' });
  for (const field of ['paid_credits', 'granted_credits', 'voided_credits']) {
    for (const value of ['abc', '-1', '', '-0.5', -1, true, [], { a: 1 }]) {
      const r = await topUp({ wallet_id: w.lago_id, [field]: value });
      const b = await json(r);
      assert.equal(r.status, 422, JSON.stringify([field, value]));
      assert.deepEqual(b.error_details, { [field]: [`invalid_${field}`, 'invalid_amount'] }, JSON.stringify([field, value]));
    }
  }
  // a JSON number is taken (Lago takes only strings); one past 64 bits keeps Tally's code and message
  assert.equal((await topUp({ wallet_id: w.lago_id, granted_credits: 1 })).status, 200);
  const big = await json(await topUp({ wallet_id: w.lago_id, granted_credits: 100000000000000000000 }));
  assert.deepEqual(big.error_details, { granted_credits: ['integer_out_of_range'] });
  assert.match(big.message, /64 bits/);
  assert.equal((await wallet(w.lago_id)).balance_cents, 1100);
});

// Found by an audit (report 6, finding 4): a top-up's credit invoice had no
// purchase_order_number, which Lago's invoice has. It is the top-up's, else its wallet's, else
// null, fixed when the invoice is made (a wallet's PO changed later leaves it), in every
// invoice answer and across a restart.
test('a credit invoice has its top-up\'s purchase_order_number, else its wallet\'s', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'po_inv', currency: 'EUR' } }));
  const w = await createWallet({ external_customer_id: 'po_inv', currency: 'EUR', rate_amount: '1', purchase_order_number: 'PO-W', paid_credits: '5' });
  const bare = await createWallet({ external_customer_id: 'po_inv', currency: 'EUR', rate_amount: '1', name: 'bare' });
  const invoiceOf = async (x) => (await ok(await t.api(`/api/v1/invoices/${x.lago_invoice_id}`))).invoice;
  const bought = async (id, extra = {}) => (await ok(await topUp({ wallet_id: id, paid_credits: '1', ...extra }))).wallet_transactions[0];
  const [first] = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions`))).wallet_transactions;
  assert.equal(first.purchase_order_number, null); // the transaction's own: none
  const own = await bought(w.lago_id, { purchase_order_number: 'PO-TX' });
  assert.equal(own.purchase_order_number, 'PO-TX');
  const inherited = await bought(w.lago_id);
  const neither = await bought(bare.lago_id);
  const cases = [[first, 'PO-W'], [own, 'PO-TX'], [inherited, 'PO-W'], [neither, null]];
  for (const [x, po] of cases) assert.equal((await invoiceOf(x)).purchase_order_number, po);
  // the list too, every invoice having the member
  const listed = (await ok(await t.api('/api/v1/invoices?external_customer_id=po_inv&per_page=100'))).invoices;
  assert.deepEqual(listed.map((i) => i.purchase_order_number).sort(), ['PO-TX', 'PO-W', 'PO-W', null].sort());
  // fixed when made: the wallet's new PO is the next invoice's, not the earlier ones'
  await ok(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'PUT', body: { wallet: { purchase_order_number: 'PO-W-NEW' } } }));
  const later = await bought(w.lago_id);
  assert.equal((await invoiceOf(later)).purchase_order_number, 'PO-W-NEW');
  assert.equal((await invoiceOf(inherited)).purchase_order_number, 'PO-W');
  // paying keeps it, and so does a restart
  assert.equal((await payInvoice(t, own.lago_invoice_id)).purchase_order_number, 'PO-TX');
  await t.restart({ kill: true });
  for (const [x, po] of [...cases, [later, 'PO-W-NEW']]) assert.equal((await invoiceOf(x)).purchase_order_number, po);
});

// Found by an audit: a wallet's, a top-up's or a recurring rule's date sent blank ("" or white
// space) was 422 invalid_date; Lago's ExpirationDateValidator lets a blank one pass and
// ActiveRecord stores it as nil: no date, as null.
test('a blank expiration_at or started_at is none, on a wallet, its update, a top-up and a rule', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'blank_dates', currency: 'EUR' } }));
  const w = await createWallet({ external_customer_id: 'blank_dates', currency: 'EUR', rate_amount: '1', granted_credits: '5', expiration_at: '',
    recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', method: 'fixed', granted_credits: '1', started_at: ' ', expiration_at: '' }] });
  assert.deepEqual([w.expiration_at, w.recurring_transaction_rules[0].started_at, w.recurring_transaction_rules[0].expiration_at], [null, null, null]);
  const dated = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'PUT', body: { wallet: { expiration_at: '2030-01-01T00:00:00Z' } } }))).wallet;
  assert.equal(dated.expiration_at, '2030-01-01T00:00:00Z');
  const cleared = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'PUT', body: { wallet: { expiration_at: '' } } }))).wallet;
  assert.equal(cleared.expiration_at, null);
  const tx = (await ok(await topUp({ wallet_id: w.lago_id, granted_credits: '2', expiration_at: '  ' }))).wallet_transactions[0];
  assert.deepEqual([tx.status, tx.expiration_at ?? null], ['settled', null]);
  assert.equal((await wallet(w.lago_id)).balance_cents, 700);
});
