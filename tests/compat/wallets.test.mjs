// Lago's JavaScript client managing wallets on tallyd: create, read, list, update and terminate
// them (by lago id and by customer and code), top them up, void credits, trace consumptions
// and fundings; then usage sent as events debited from a wallet in the same commit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from 'lago-javascript-client';
import { startWithOrg } from '../lib/tallyd.mjs';
import { payInvoice } from '../lib/payments.mjs';

let t;
let lago;
before(async () => {
  t = await startWithOrg(['--test-clock', '2026-04-01T00:00:00Z']);
  lago = Client(t.key, { baseUrl: `${t.url}/api/v1` });
  await lago.customers.createCustomer({ customer: { external_id: 'wally', name: 'Wally' } });
});
after(async () => { await t.cleanup(); });

const NOW = '2026-04-01T00:00:00Z';
// A client call that must fail: its HTTP status and Lago error body.
const refused = async (promise, status) => {
  let res;
  await assert.rejects(promise, (r) => { res = r; return true; });
  assert.equal(res.status, status, JSON.stringify(res.error));
  return res.error;
};

let main; // the 'main' wallet of wally
let initial; // its first transactions: { purchased, granted }

test('createWallet: paid and granted credits at a rate of 0.5, the code from the name', async () => {
  const { data } = await lago.wallets.createWallet({ wallet: {
    external_customer_id: 'wally', currency: 'USD', rate_amount: '0.5', name: 'Main', paid_credits: '20', granted_credits: '10',
    transaction_metadata: [{ key: 'source', value: 'signup' }],
  } });
  main = data.wallet;
  assert.match(main.lago_id, /^[0-9a-f-]{36}$/);
  assert.equal(main.external_customer_id, 'wally');
  assert.equal(main.status, 'active');
  assert.equal(main.currency, 'USD');
  assert.equal(main.name, 'Main');
  assert.equal(main.code, 'main');
  assert.equal(main.rate_amount, '0.5');
  // the 10 granted credits at $0.50: $5.00; the 20 bought arrive when their invoice is paid
  assert.equal(main.credits_balance, '10.0');
  assert.equal(main.balance_cents, 500);
  assert.equal(main.ongoing_balance_cents, 500);
  assert.equal(main.consumed_credits, '0.0');
  assert.equal(main.consumed_amount_cents, 0);
  assert.equal(main.limit, 'none');
  assert.equal(main.priority, 50);
  assert.equal(main.created_at, NOW);
  assert.equal(main.terminated_at, null);
  // the customer took the wallet's currency
  const c = (await lago.customers.findCustomer('wally')).data.customer;
  assert.equal(c.currency, 'USD');

  const txs = (await lago.wallets.findAllWalletTransactions(main.lago_id, {})).data;
  assert.equal(txs.meta.total_count, 2);
  const purchased = txs.wallet_transactions.find((x) => x.transaction_status === 'purchased');
  const granted = txs.wallet_transactions.find((x) => x.transaction_status === 'granted');
  // Lago's transaction_metadata is the first transactions' metadata
  assert.deepEqual(purchased.metadata, [{ key: 'source', value: 'signup' }]);
  assert.deepEqual(granted.metadata, [{ key: 'source', value: 'signup' }]);
  assert.deepEqual([purchased.status, purchased.transaction_type, purchased.amount, purchased.credit_amount, purchased.remaining_amount_cents],
    ['pending', 'inbound', '10.0', '20.0', null]);
  assert.deepEqual([granted.status, granted.transaction_type, granted.amount, granted.credit_amount, granted.remaining_amount_cents],
    ['settled', 'inbound', '5.0', '10.0', 500]);
  // paid: 30 credits at $0.50, $15.00
  await payInvoice(t, purchased.lago_invoice_id);
  main = (await lago.wallets.findWallet(main.lago_id)).data.wallet;
  assert.deepEqual([main.credits_balance, main.balance_cents], ['30.0', 1500]);
  const settled = (await lago.walletTransactions.findWalletTransaction(purchased.lago_id)).data.wallet_transaction;
  assert.deepEqual([settled.status, settled.remaining_amount_cents], ['settled', 1000]);
  initial = { purchased, granted };
});

test('findWallet and findAllWallets filtered by customer', async () => {
  const one = (await lago.wallets.findWallet(main.lago_id)).data.wallet;
  assert.deepEqual(one, main);
  const all = (await lago.wallets.findAllWallets({ external_customer_id: 'wally' })).data;
  assert.equal(all.meta.total_count, 1);
  assert.deepEqual(all.wallets.map((w) => w.lago_id), [main.lago_id]);
  const none = (await lago.wallets.findAllWallets({ external_customer_id: 'wally', currency: 'EUR' })).data;
  assert.equal(none.wallets.length, 0);
  const err = await refused(lago.wallets.findWallet('00000000-0000-4000-8000-000000000000'), 404);
  assert.equal(err.code, 'wallet_not_found');
});

test('updateWallet: name and priority change, code and balance do not', async () => {
  const { data } = await lago.wallets.updateWallet(main.lago_id, { wallet: { name: 'Main credits', priority: 10 } });
  assert.equal(data.wallet.name, 'Main credits');
  assert.equal(data.wallet.priority, 10);
  assert.equal(data.wallet.code, 'main');
  assert.equal(data.wallet.balance_cents, 1500);
  assert.equal((await lago.wallets.findWallet(main.lago_id)).data.wallet.name, 'Main credits');
});

test("a customer's wallets by external id and code", async () => {
  const created = (await lago.customers.createCustomerWallet('wally', { wallet: { currency: 'USD', rate_amount: '2', name: 'Second Wallet', granted_credits: '3' } })).data.wallet;
  assert.equal(created.code, 'second_wallet');
  assert.equal(created.external_customer_id, 'wally');
  assert.equal(created.rate_amount, '2.0');
  assert.equal(created.credits_balance, '3.0');
  assert.equal(created.balance_cents, 600); // 3 credits at $2
  // the customer is in USD now: a EUR wallet does not fit
  const err = await refused(lago.customers.createCustomerWallet('wally', { wallet: { currency: 'EUR', rate_amount: '1', name: 'Euro' } }), 422);
  assert.deepEqual(err.error_details, { currency: ['currencies_does_not_match'] });

  const found = (await lago.customers.findCustomerWallet('wally', 'second_wallet')).data.wallet;
  assert.equal(found.lago_id, created.lago_id);
  const list = (await lago.customers.findAllCustomerWallets('wally')).data;
  assert.equal(list.meta.total_count, 2);
  assert.deepEqual(list.wallets.map((w) => w.code).sort(), ['main', 'second_wallet']);

  const updated = (await lago.customers.updateCustomerWallet('wally', 'second_wallet', { wallet: { name: 'Second', limit: 'hard' } })).data.wallet;
  assert.equal(updated.name, 'Second');
  assert.equal(updated.limit, 'hard');
  assert.equal(updated.code, 'second_wallet');

  const gone = (await lago.customers.destroyCustomerWallet('wally', 'second_wallet')).data.wallet;
  assert.equal(gone.status, 'terminated');
  assert.equal(gone.terminated_at, NOW);
  assert.equal(gone.balance_cents, 0);
  assert.equal(gone.credits_balance, '0.0');
  assert.equal(gone.consumed_credits, '3.0'); // the 3 credits left were voided
  const voided = (await lago.wallets.findAllWalletTransactions(created.lago_id, { transaction_status: 'voided' })).data.wallet_transactions;
  assert.deepEqual(voided.map((x) => [x.transaction_type, x.amount, x.credit_amount]), [['outbound', '6.0', '3.0']]);
  assert.equal((await lago.wallets.findWallet(created.lago_id)).data.wallet.status, 'terminated');
  const again = await refused(lago.wallets.updateWallet(created.lago_id, { wallet: { name: 'Again' } }), 422);
  assert.deepEqual(again.error_details, { wallet_id: ['wallet_is_terminated'] });
  // the list still shows it, terminated
  const after = (await lago.customers.findAllCustomerWallets('wally')).data.wallets;
  assert.deepEqual(after.map((w) => [w.code, w.status]).sort(), [['main', 'active'], ['second_wallet', 'terminated']]);
  const nf = await refused(lago.customers.findCustomerWallet('wally', 'no_such_code'), 404);
  assert.equal(nf.code, 'wallet_not_found');
});

let topUp;
test('createWalletTransaction: paid then granted, the granted settled at once, the paid once its invoice is', async () => {
  const { data } = await lago.walletTransactions.createWalletTransaction({ wallet_transaction: {
    wallet_id: main.lago_id, paid_credits: '6', granted_credits: '4', name: 'Top-up', metadata: [{ key: 'po', value: '42' }],
  } });
  topUp = data.wallet_transactions;
  assert.equal(topUp.length, 2);
  assert.deepEqual(topUp.map((x) => [x.status, x.transaction_status, x.transaction_type, x.amount, x.credit_amount, x.remaining_amount_cents, x.name]), [
    ['pending', 'purchased', 'inbound', '3.0', '6.0', null, 'Top-up'],
    ['settled', 'granted', 'inbound', '2.0', '4.0', 200, 'Top-up'],
  ]);
  assert.equal((await lago.wallets.findWallet(main.lago_id)).data.wallet.balance_cents, 1700);
  await payInvoice(t, topUp[0].lago_invoice_id);
  assert.deepEqual(topUp[1].metadata, [{ key: 'po', value: '42' }]);
  assert.equal(topUp[1].lago_wallet_id, main.lago_id);
  assert.equal(topUp[1].settled_at, NOW);
  const w = (await lago.wallets.findWallet(main.lago_id)).data.wallet;
  assert.equal(w.balance_cents, 2000); // 1500 + 300 + 200
  assert.equal(w.credits_balance, '40.0');

  const one = (await lago.walletTransactions.findWalletTransaction(topUp[1].lago_id)).data.wallet_transaction;
  assert.deepEqual(one, topUp[1]);
  const err = await refused(lago.walletTransactions.createWalletTransaction({ wallet_transaction: { wallet_id: main.lago_id, granted_credits: '-1' } }), 422);
  assert.deepEqual(err.error_details, { granted_credits: ['invalid_granted_credits', 'invalid_amount'] }); // Lago's two codes
});

test('findAllWalletTransactions filters by type and status', async () => {
  const q = async (query) => (await lago.wallets.findAllWalletTransactions(main.lago_id, query)).data;
  assert.equal((await q({ transaction_type: 'inbound' })).meta.total_count, 4);
  assert.equal((await q({ transaction_type: 'outbound' })).meta.total_count, 0);
  const granted = await q({ transaction_status: 'granted' });
  assert.deepEqual(granted.wallet_transactions.map((x) => x.lago_id).sort(), [initial.granted.lago_id, topUp[1].lago_id].sort());
  assert.equal((await q({ status: 'pending' })).meta.total_count, 0);
});

let voidTx;
test('voided credits: taken from the granted credits first; consumptions and fundings trace it', async () => {
  // 12 credits = $6.00: the granted credits go first (the lowest cost basis), oldest first:
  // all 500 cents of the initial grant, then 100 of the top-up's 200.
  const { data } = await lago.walletTransactions.createWalletTransaction({ wallet_transaction: { wallet_id: main.lago_id, voided_credits: '12' } });
  assert.equal(data.wallet_transactions.length, 1);
  voidTx = data.wallet_transactions[0];
  assert.deepEqual([voidTx.status, voidTx.transaction_status, voidTx.transaction_type, voidTx.amount, voidTx.credit_amount],
    ['settled', 'voided', 'outbound', '6.0', '12.0']);

  const fundings = (await lago.walletTransactions.findAllWalletTransactionFundings(voidTx.lago_id)).data;
  assert.equal(fundings.meta.total_count, 2);
  const byGrant = Object.fromEntries(fundings.wallet_transaction_fundings.map((f) => [f.wallet_transaction.lago_id, [f.amount_cents, f.credit_amount]]));
  assert.deepEqual(byGrant, { [initial.granted.lago_id]: [500, '10.0'], [topUp[1].lago_id]: [100, '2.0'] });

  const consumptions = (await lago.walletTransactions.findAllWalletTransactionConsumptions(initial.granted.lago_id)).data;
  assert.equal(consumptions.meta.total_count, 1);
  const c = consumptions.wallet_transaction_consumptions[0];
  assert.equal(c.amount_cents, 500);
  assert.equal(c.credit_amount, '10.0');
  assert.equal(c.wallet_transaction.lago_id, voidTx.lago_id);
  // the paid credits are untouched
  const paid = (await lago.walletTransactions.findAllWalletTransactionConsumptions(initial.purchased.lago_id)).data;
  assert.equal(paid.meta.total_count, 0);
  assert.equal((await lago.walletTransactions.findWalletTransaction(topUp[1].lago_id)).data.wallet_transaction.remaining_amount_cents, 100);
  assert.equal((await lago.walletTransactions.findWalletTransaction(initial.granted.lago_id)).data.wallet_transaction.remaining_amount_cents, 0);

  const w = (await lago.wallets.findWallet(main.lago_id)).data.wallet;
  assert.equal(w.balance_cents, 1400);
  assert.equal(w.credits_balance, '28.0');
  assert.equal(w.consumed_credits, '12.0');
  assert.equal(w.consumed_amount_cents, 600);
  // more than is left cannot be voided
  const err = await refused(lago.walletTransactions.createWalletTransaction({ wallet_transaction: { wallet_id: main.lago_id, voided_credits: '28.02' } }), 422);
  assert.deepEqual(err.error_details, { voided_credits: ['insufficient_credits'] });
});

test('destroyWallet terminates it and voids what was left', async () => {
  const { data } = await lago.wallets.destroyWallet(main.lago_id);
  assert.equal(data.wallet.status, 'terminated');
  assert.equal(data.wallet.terminated_at, NOW);
  assert.equal(data.wallet.balance_cents, 0);
  assert.equal(data.wallet.credits_balance, '0.0');
  assert.equal(data.wallet.consumed_amount_cents, 2000); // 600 voided before, 1400 now
  assert.equal(data.wallet.consumed_credits, '40.0');
  const voided = (await lago.wallets.findAllWalletTransactions(main.lago_id, { transaction_status: 'voided' })).data.wallet_transactions;
  assert.deepEqual(voided.map((x) => x.amount).sort(), ['14.0', '6.0']);
  // voids take paid credits (1000 + 300 cents, breakage) and granted ones (600 before, 100 now)
  const ledger = (await (await t.api(`/api/v1/ledger_entries?wallet_id=${main.lago_id}&per_page=1000`)).json()).ledger_entries;
  const sum = (account) => ledger.filter((e) => e.account === account && e.cause === 'void').reduce((a, e) => a + e.amount_cents, 0);
  assert.equal(sum('customer_paid_credits'), 1300);
  assert.equal(sum('customer_promotional_credits'), 700); // 500 + 100 voided before, 100 now
  const err = await refused(lago.walletTransactions.createWalletTransaction({ wallet_transaction: { wallet_id: main.lago_id, granted_credits: '1' } }), 422);
  assert.deepEqual(err.error_details, { wallet_id: ['wallet_is_terminated'] });
});

// ---- usage debited in real time -------------------------------------------------------------

let prepaid;
test('setup: a metered plan in USD and a wallet of 20 credits at $0.50', async () => {
  const bm = (await lago.billableMetrics.createBillableMetric({ billable_metric: { name: 'Tokens', code: 'tokens', aggregation_type: 'sum_agg', field_name: 'tokens' } })).data.billable_metric;
  await lago.plans.createPlan({ plan: { name: 'Metered', code: 'metered', interval: 'monthly', amount_cents: 0, amount_currency: 'USD',
    charges: [{ billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '0.001' } }] } });
  await lago.subscriptions.createSubscription({ subscription: { external_customer_id: 'acme', plan_code: 'metered', external_id: 'acme_sub' } });
  prepaid = (await lago.wallets.createWallet({ wallet: { external_customer_id: 'acme', currency: 'USD', rate_amount: '0.5', name: 'Prepaid', granted_credits: '20' } })).data.wallet;
  assert.equal(prepaid.balance_cents, 1000);
  assert.equal(prepaid.credits_balance, '20.0');
});

const wallet = async () => (await lago.wallets.findWallet(prepaid.lago_id)).data.wallet;
const ev = (transaction_id, tokens) => ({ transaction_id, external_subscription_id: 'acme_sub', code: 'tokens', properties: { tokens } });

test('createEvent: the very next read shows the debit', async () => {
  await lago.events.createEvent({ event: ev('rt-1', 1234) });
  // 1234 tokens at $0.001: $1.234, 123 cents = 2.46 credits
  const w = await wallet();
  assert.equal(w.balance_cents, 877);
  assert.equal(w.credits_balance, '17.54');
  assert.equal(w.consumed_credits, '2.46');
  assert.equal(w.consumed_amount_cents, 123);
  assert.equal(w.last_consumed_credit_at, NOW);
});

test('createBatchEvents: one debit for the batch, priced on the whole period', async () => {
  await lago.events.createBatchEvents({ events: [ev('rt-2', 1000), ev('rt-3', 2500), ev('rt-4', 766)] });
  // 5500 tokens: $5.50 in all, 427 cents more
  let w = await wallet();
  assert.equal(w.balance_cents, 450);
  assert.equal(w.credits_balance, '9.0');
  assert.equal(w.consumed_credits, '11.0');
  assert.equal(w.consumed_amount_cents, 550);
  // 5505 tokens: $5.505, 550.5 cents rounded half up: 551
  await lago.events.createEvent({ event: ev('rt-5', 5) });
  w = await wallet();
  assert.equal(w.balance_cents, 449);
  assert.equal(w.credits_balance, '8.98');
  assert.equal(w.consumed_credits, '11.02');
  assert.equal(w.consumed_amount_cents, 551);
  const u = (await lago.customers.findCustomerCurrentUsage('acme', { external_subscription_id: 'acme_sub' })).data.customer_usage;
  assert.equal(u.charges_usage[0].units, '5505.0');
  assert.equal(u.amount_cents, 551);
  const usage = (await lago.wallets.findAllWalletTransactions(prepaid.lago_id, { transaction_status: 'usage' })).data.wallet_transactions;
  // the day's usage debits are one transaction, added to by each commit: 123 + 427 + 1 cents
  assert.deepEqual(usage.map((x) => [x.transaction_type, x.status, x.amount, x.credit_amount]), [
    ['outbound', 'settled', '5.51', '11.02'],
  ]);
});

test('a hard limit: an event the wallet cannot pay reaches the client as a 402 and is not recorded', async () => {
  await lago.wallets.updateWallet(prepaid.lago_id, { wallet: { limit: 'hard' } });
  // 4500 tokens more would cost 450 cents; 449 are left
  const err = await refused(lago.events.createEvent({ event: ev('rt-6', 4500) }), 402);
  assert.equal(err.code, 'insufficient_credits');
  assert.equal(err.status, 402);
  await refused(lago.events.findEvent('rt-6'), 404);
  assert.equal((await wallet()).balance_cents, 449);
  // 4490 tokens: 9995 in all, 999.5 cents rounded to 1000: 449 more, exactly what is left
  await lago.events.createEvent({ event: ev('rt-6', 4490) });
  const w = await wallet();
  assert.equal(w.balance_cents, 0);
  assert.equal(w.credits_balance, '0.0');
  assert.equal(w.consumed_amount_cents, 1000);
  assert.equal(w.consumed_credits, '20.0');
});

test('a paid top-up waiting for its payment: findInvoice, then updateInvoice settles the credits', async () => {
  await lago.customers.createCustomer({ customer: { external_id: 'payer', currency: 'USD' } });
  const { data: { wallet } } = await lago.wallets.createWallet({ wallet: { external_customer_id: 'payer', currency: 'USD', rate_amount: '1', name: 'Pay first', invoice_requires_successful_payment: true } });
  const { data: { wallet_transactions: [tx] } } = await lago.walletTransactions.createWalletTransaction({ wallet_transaction: { wallet_id: wallet.lago_id, paid_credits: '25' } });
  assert.equal(tx.status, 'pending');
  const { data: { invoice } } = await lago.invoices.findInvoice(tx.lago_invoice_id);
  assert.deepEqual([invoice.invoice_type, invoice.payment_status, invoice.total_amount_cents], ['credit', 'pending', 2500]);
  const { data: { invoice: paid } } = await lago.invoices.updateInvoice(invoice.lago_id, { invoice: { payment_status: 'succeeded' } });
  assert.equal(paid.payment_status, 'succeeded');
  assert.equal((await lago.wallets.findWallet(wallet.lago_id)).data.wallet.balance_cents, 2500);
  assert.equal((await lago.walletTransactions.findWalletTransaction(tx.lago_id)).data.wallet_transaction.status, 'settled');
});

test('wallet metadata: replace, merge, delete a key, delete all', async () => {
  const { data: { wallet } } = await lago.wallets.createWallet({ wallet: { external_customer_id: 'payer', currency: 'USD', rate_amount: '1', name: 'Meta', metadata: { team: 'ml' } } });
  assert.deepEqual(wallet.metadata, { team: 'ml' });
  let r = await lago.wallets.replaceWalletMetadata(wallet.lago_id, { metadata: { owner: 'ana', cost_center: '42' } });
  assert.deepEqual(r.data.metadata, { owner: 'ana', cost_center: '42' });
  r = await lago.wallets.mergeWalletMetadata(wallet.lago_id, { metadata: { owner: 'bo', region: null } });
  assert.deepEqual(r.data.metadata, { owner: 'bo', cost_center: '42', region: null });
  r = await lago.wallets.deleteWalletMetadataKey(wallet.lago_id, 'cost_center');
  assert.deepEqual(r.data.metadata, { owner: 'bo', region: null });
  assert.deepEqual((await lago.wallets.findWallet(wallet.lago_id)).data.wallet.metadata, { owner: 'bo', region: null });
  r = await lago.wallets.deleteAllWalletMetadata(wallet.lago_id);
  assert.deepEqual(r.data.metadata, {});
  await assert.rejects(lago.wallets.replaceWalletMetadata(wallet.lago_id, { metadata: { k: 'x'.repeat(256) } }), (res) => res.status === 422);
});

test('customer wallet metadata by external id and wallet code', async () => {
  await lago.customers.createCustomerWallet('payer', { wallet: { currency: 'USD', rate_amount: '1', name: 'By Code' } });
  let r = await lago.customers.replaceCustomerWalletMetadata('payer', 'by_code', { metadata: { a: '1' } });
  assert.deepEqual(r.data.metadata, { a: '1' });
  r = await lago.customers.mergeCustomerWalletMetadata('payer', 'by_code', { metadata: { b: '2' } });
  assert.deepEqual(r.data.metadata, { a: '1', b: '2' });
  r = await lago.customers.deleteCustomerWalletMetadataKey('payer', 'by_code', 'a');
  assert.deepEqual(r.data.metadata, { b: '2' });
  r = await lago.customers.deleteAllCustomerWalletMetadata('payer', 'by_code');
  assert.deepEqual(r.data.metadata, {});
});

// Found by a compatibility audit: the code given to updateWallet was ignored; Lago's
// UpdateService changes it. One another active wallet of the customer has is refused.
test('updateWallet changes the code; a code taken by another active wallet is refused', async () => {
  await lago.customers.createCustomer({ customer: { external_id: 'coder', currency: 'USD' } });
  const make = async (code) => (await lago.wallets.createWallet({ wallet: { external_customer_id: 'coder', currency: 'USD', rate_amount: '1', name: code, code } })).data.wallet;
  const first = await make('first');
  const second = await make('second');
  const renamed = (await lago.wallets.updateWallet(first.lago_id, { wallet: { code: 'primary' } })).data.wallet;
  assert.equal(renamed.code, 'primary');
  assert.equal((await lago.customers.findCustomerWallet('coder', 'primary')).data.wallet.lago_id, first.lago_id);
  const taken = await refused(lago.wallets.updateWallet(second.lago_id, { wallet: { code: 'primary' } }), 422);
  assert.deepEqual(taken.error_details, { code: ['value_already_exist'] });
  assert.equal((await lago.wallets.findWallet(second.lago_id)).data.wallet.code, 'second');
});
