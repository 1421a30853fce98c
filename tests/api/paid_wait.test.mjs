// Paid credits wait for their payment, whatever invoice_requires_successful_payment says (Lago's:
// the flag only decides whether the credit invoice is issued at once or when paid). Found by an
// audit: by default they were spendable before payment and kept after it failed. Also: a failed
// payment leaves an open invoice open, an open invoice paid later is issued on the payment day,
// a paid top-up whose credits expired while it waited refuses the payment, the ledger's
// receivable is relieved by the payment (cash), and a threshold rule's pending top-up is not
// bought again at every event.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';
import { payInvoice } from '../lib/payments.mjs';

let t;
const post = (path, body) => t.api(path, { method: 'POST', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const wallet = async (id) => (await ok(await t.api(`/api/v1/wallets/${id}`))).wallet;
const tx = async (id) => (await ok(await t.api(`/api/v1/wallet_transactions/${id}`))).wallet_transaction;
const invoice = async (id) => (await ok(await t.api(`/api/v1/invoices/${id}`))).invoice;
const txs = async (w) => (await ok(await t.api(`/api/v1/wallets/${w}/wallet_transactions`))).wallet_transactions;
const topUp = async (body) => (await ok(await post('/api/v1/wallet_transactions', { wallet_transaction: body }))).wallet_transactions;
const pay = (id, status) => t.api(`/api/v1/invoices/${id}`, { method: 'PUT', body: { invoice: { payment_status: status } } });
const advance = async (to) => ok(await post('/api/v1/test_clock/advance', { test_clock: { to } }));
let n = 0;
const send = (sub, tokens) => post('/api/v1/events', { event: { transaction_id: `pw${n++}`, external_subscription_id: sub, code: 'tokens', properties: { n: String(tokens) } } });
const ledger = async (query) => (await ok(await t.api(`/api/v1/ledger_entries?per_page=1000&${query}`))).ledger_entries.reverse();

async function customer(id, extra = {}) {
  await ok(await post('/api/v1/customers', { customer: { external_id: id, currency: 'USD', ...extra } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: id, plan_code: 'p', external_id: `${id}_sub` } }));
}
const newWallet = async (body) => (await ok(await post('/api/v1/wallets', { wallet: { currency: 'USD', rate_amount: '1', ...body } }))).wallet;

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-03-01T00:00:00Z']);
  const bm = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { name: 'tokens', code: 'tokens', aggregation_type: 'sum_agg', field_name: 'n' } }))).billable_metric;
  await ok(await post('/api/v1/plans', { plan: { name: 'p', code: 'p', interval: 'monthly', amount_cents: 0, amount_currency: 'USD',
    charges: [{ billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } }));
});
after(async () => { await t.cleanup(); });

test('a default paid top-up waits for its payment: nothing to spend before it, nothing kept when it fails', async () => {
  await customer('a');
  const w = await newWallet({ external_customer_id: 'a', paid_credits: '20', limit: 'hard' });
  const [bought] = await txs(w.lago_id);
  assert.deepEqual([bought.transaction_status, bought.status, bought.remaining_amount_cents, bought.remaining_credit_amount, bought.invoice_requires_successful_payment],
    ['purchased', 'pending', null, null, false]);
  // the flag false: the invoice is issued at once
  const inv = await invoice(bought.lago_invoice_id);
  assert.deepEqual([inv.status, inv.payment_status, inv.total_amount_cents], ['finalized', 'pending', 2000]);
  assert.equal((await wallet(w.lago_id)).balance_cents, 0);
  assert.equal((await send('a_sub', 15)).status, 402); // nothing to spend yet
  const failed = (await ok(await pay(inv.lago_id, 'failed'))).invoice;
  assert.deepEqual([failed.status, failed.payment_status], ['finalized', 'failed']);
  const after = await tx(bought.lago_id);
  assert.deepEqual([after.status, after.remaining_amount_cents], ['failed', null]);
  assert.ok(after.failed_at);
  assert.equal((await wallet(w.lago_id)).balance_cents, 0);
  assert.deepEqual(await ledger(`wallet_id=${w.lago_id}`), []); // no credits, no posting
});

test('a default paid top-up paid: settled then, its receivable relieved by the payment (cash)', async () => {
  await customer('b');
  const w = await newWallet({ external_customer_id: 'b', limit: 'hard' });
  const [bought] = await topUp({ wallet_id: w.lago_id, paid_credits: '10' });
  assert.deepEqual([bought.status, bought.remaining_amount_cents, bought.settled_at], ['pending', null, null]);
  assert.equal((await invoice(bought.lago_invoice_id)).status, 'finalized');
  assert.equal((await send('b_sub', 1)).status, 402);
  await advance('2026-03-02T00:00:00Z');
  const paid = await payInvoice(t, bought.lago_invoice_id);
  assert.deepEqual([paid.status, paid.payment_status, paid.issuing_date], ['finalized', 'succeeded', '2026-03-01']);
  const settled = await tx(bought.lago_id);
  assert.deepEqual([settled.status, settled.remaining_amount_cents, settled.settled_at], ['settled', 1000, '2026-03-02T00:00:00Z']);
  assert.equal((await wallet(w.lago_id)).balance_cents, 1000);
  assert.equal((await send('b_sub', 4)).status, 200);
  const entries = await ledger('external_customer_id=b');
  assert.deepEqual(entries.slice(0, 4).map((e) => [e.cause, e.account, e.direction, e.amount_cents, e.balance_after_cents - e.balance_before_cents]),
    [['purchase', 'receivable', 'debit', 1000, 1000], ['purchase', 'customer_paid_credits', 'credit', 1000, 1000],
      ['payment', 'cash', 'debit', 1000, 1000], ['payment', 'receivable', 'credit', 1000, -1000]]);
  await checkWalletLedger(t, w.lago_id);
});

test('invoice_requires_successful_payment: the invoice stays open until paid, open after a failed payment', async () => {
  await customer('c');
  const w = await newWallet({ external_customer_id: 'c', paid_credits: '10', granted_credits: '5', invoice_requires_successful_payment: true });
  const made = await txs(w.lago_id);
  const bought = made.find((x) => x.transaction_status === 'purchased'), given = made.find((x) => x.transaction_status === 'granted');
  // the granted credits never wait for a payment: Lago's leave the flag false on them
  assert.deepEqual([bought.invoice_requires_successful_payment, given.invoice_requires_successful_payment], [true, false]);
  assert.deepEqual([given.status, given.remaining_amount_cents], ['settled', 500]);
  const inv = await invoice(bought.lago_invoice_id);
  assert.deepEqual([inv.status, inv.payment_status], ['open', 'pending']);
  const failed = (await ok(await pay(inv.lago_id, 'failed'))).invoice;
  assert.deepEqual([failed.status, failed.payment_status], ['open', 'failed']);
  assert.equal((await tx(bought.lago_id)).status, 'failed');
  assert.equal((await wallet(w.lago_id)).balance_cents, 500);
});

test('an open credit invoice paid later is issued and due on the payment day, the customer\'s', async () => {
  await customer('d', { timezone: 'Asia/Tokyo', net_payment_term: 30 });
  const w = await newWallet({ external_customer_id: 'd', invoice_requires_successful_payment: true });
  const [bought] = await topUp({ wallet_id: w.lago_id, paid_credits: '5' });
  assert.equal((await invoice(bought.lago_invoice_id)).issuing_date, '2026-03-02'); // the clock reads 2026-03-02T00:00Z: 09:00 in Tokyo
  await advance('2026-03-04T20:00:00Z'); // 2026-03-05 in Tokyo
  const paid = await payInvoice(t, bought.lago_invoice_id);
  assert.deepEqual([paid.status, paid.payment_status, paid.issuing_date, paid.payment_due_date], ['finalized', 'succeeded', '2026-03-05', '2026-03-05']);
  // one issued at once keeps its own dates, due net_payment_term days later
  const [now] = await topUp({ wallet_id: w.lago_id, paid_credits: '5', invoice_requires_successful_payment: false });
  const issued = await payInvoice(t, now.lago_invoice_id);
  assert.deepEqual([issued.issuing_date, issued.payment_due_date, issued.net_payment_term], ['2026-03-05', '2026-04-04', 30]);
  assert.equal((await wallet(w.lago_id)).balance_cents, 1000);
});

test('a paid top-up whose credits expired while it waited refuses the payment; failed is accepted', async () => {
  await customer('e');
  const w = await newWallet({ external_customer_id: 'e' });
  const [bought] = await topUp({ wallet_id: w.lago_id, paid_credits: '6', expiration_at: '2026-03-06T00:00:00Z' });
  await advance('2026-03-06T00:00:00Z');
  const r = await pay(bought.lago_invoice_id, 'succeeded');
  const body = await r.json();
  assert.equal(r.status, 422, JSON.stringify(body));
  assert.deepEqual(body.error_details, { payment_status: ['credits_expired'] });
  assert.match(body.message, /mark the payment failed/);
  assert.equal((await invoice(bought.lago_invoice_id)).payment_status, 'pending');
  assert.equal((await tx(bought.lago_id)).status, 'pending');
  await ok(await pay(bought.lago_invoice_id, 'failed'));
  assert.equal((await tx(bought.lago_id)).status, 'failed');
  assert.equal((await wallet(w.lago_id)).balance_cents, 0);
  assert.deepEqual(await ledger(`wallet_id=${w.lago_id}`), []);
});

test('a threshold rule\'s pending top-up is not bought again at every event; paid, the rule fires again at the next crossing', async () => {
  await customer('f');
  const w = await newWallet({ external_customer_id: 'f', granted_credits: '10',
    recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '5', method: 'fixed', paid_credits: '10' }] });
  for (let i = 0; i < 6; i++) assert.equal((await send('f_sub', 1)).status, 200); // 10 -> 4
  const purchases = async () => (await txs(w.lago_id)).filter((x) => x.transaction_status === 'purchased');
  let bought = await purchases();
  assert.deepEqual(bought.map((x) => [x.source, x.status, x.amount]), [['threshold', 'pending', '10.0']]);
  assert.equal((await invoice(bought[0].lago_invoice_id)).status, 'finalized');
  for (let i = 0; i < 3; i++) assert.equal((await send('f_sub', 1)).status, 200); // 4 -> 1: still pending
  assert.equal((await purchases()).length, 1);
  await payInvoice(t, bought[0].lago_invoice_id);
  assert.equal((await wallet(w.lago_id)).balance_cents, 1100);
  for (let i = 0; i < 6; i++) assert.equal((await send('f_sub', 1)).status, 200); // 11 -> 5: crosses again
  bought = await purchases();
  assert.deepEqual(bought.map((x) => x.status).sort(), ['pending', 'settled']);
  await checkWalletLedger(t, w.lago_id);
});

test('an interval rule\'s paid credits wait for their payment too', async () => {
  await customer('g');
  const w = await newWallet({ external_customer_id: 'g',
    recurring_transaction_rules: [{ trigger: 'interval', interval: 'weekly', paid_credits: '3', granted_credits: '1' }] });
  await advance('2026-03-14T00:00:00Z');
  const made = await txs(w.lago_id);
  const bought = made.filter((x) => x.transaction_status === 'purchased');
  assert.ok(bought.length >= 1);
  for (const b of bought) {
    assert.deepEqual([b.source, b.status], ['interval', 'pending']);
    assert.equal((await invoice(b.lago_invoice_id)).status, 'finalized');
  }
  const granted = made.filter((x) => x.transaction_status === 'granted').length;
  assert.equal((await wallet(w.lago_id)).balance_cents, granted * 100);
  for (const b of bought) await payInvoice(t, b.lago_invoice_id);
  assert.equal((await wallet(w.lago_id)).balance_cents, granted * 100 + bought.length * 300);
  await checkWalletLedger(t, w.lago_id);
});

// Found by an audit (audit 9, F1): a threshold rule fired only when a debit made the balance
// fall, so once its top-up's payment failed with the wallet spent to 0 it never bought again
// (a hard wallet refused every event for good, a `none` one stayed at 0). As Lago's, which
// checks the rule at every usage, it now fires at the first usage after the decline's hour:
// an event that debits, or one refused for lack of credits; once for the burst.
const purchases = async (w) => (await txs(w)).filter((x) => x.transaction_status === 'purchased');
async function spentAfterDecline(id, limit) {
  await customer(id);
  const w = await newWallet({ external_customer_id: id, granted_credits: '12', limit,
    recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '10', method: 'fixed', paid_credits: '15' }] });
  assert.equal((await send(`${id}_sub`, 7)).status, 200); // 12 -> 5: the rule buys 15 (pending)
  assert.equal((await send(`${id}_sub`, 5)).status, 200); // 5 -> 0 while it waits
  const [first] = await purchases(w.lago_id);
  assert.equal(first.status, 'pending');
  await ok(await pay(first.lago_invoice_id, 'failed'));
  return w;
}

test('a threshold rule whose top-up failed on a hard wallet spent to 0 buys again at the first event after the hour, refused or not', async () => {
  const w = await spentAfterDecline('h1', 'hard');
  const within = await send('h1_sub', 1);
  assert.equal(within.status, 402); // within the hour: no purchase
  // audit 13, F5: the 402 said "nothing was recorded" when the rule's top-up it bought was kept
  assert.match((await within.json()).message, /cents short; nothing of the usage was recorded$/);
  assert.equal((await purchases(w.lago_id)).length, 1);
  const clock = (await ok(await t.api('/api/v1/test_clock'))).test_clock.now;
  await advance(new Date(Date.parse(clock) + 2 * 3600e3).toISOString());
  // the event is refused (nothing to spend), and the rule buys: once, whatever the burst
  const answers = await Promise.all(Array.from({ length: 8 }, () => send('h1_sub', 1)));
  assert.deepEqual(answers.map((r) => r.status), Array(8).fill(402));
  const messages = await Promise.all(answers.map(async (r) => (await r.json()).message));
  assert.equal(messages.filter((m) => /nothing of the usage was recorded \(credits the customer's recurring rules made meanwhile were kept\)$/.test(m)).length, 1, messages.join('\n'));
  const bought = await purchases(w.lago_id);
  assert.deepEqual(bought.map((x) => [x.source, x.status]).sort(), [['threshold', 'failed'], ['threshold', 'pending']]);
  assert.equal((await send('h1_sub', 1)).status, 402);
  assert.equal((await purchases(w.lago_id)).length, 2);
  await payInvoice(t, bought.find((x) => x.status === 'pending').lago_invoice_id);
  assert.equal((await wallet(w.lago_id)).balance_cents, 1500);
  assert.equal((await send('h1_sub', 1)).status, 200);
  await checkWalletLedger(t, w.lago_id);
});

test('a threshold rule whose top-up failed on a `none` wallet at 0 buys again at the first event after the hour', async () => {
  const w = await spentAfterDecline('h2', 'none');
  assert.equal((await send('h2_sub', 1)).status, 200);
  assert.equal((await purchases(w.lago_id)).length, 1);
  const clock = (await ok(await t.api('/api/v1/test_clock'))).test_clock.now;
  await advance(new Date(Date.parse(clock) + 2 * 3600e3).toISOString());
  await Promise.all(Array.from({ length: 6 }, async () => assert.equal((await send('h2_sub', 1)).status, 200)));
  assert.deepEqual((await purchases(w.lago_id)).map((x) => x.status).sort(), ['failed', 'pending']);
});

test('a wallet made with paid credits and a threshold rule, its first payment failed, buys at the next event after the hour', async () => {
  for (const limit of ['hard', 'none']) {
    const id = `h3${limit}`;
    await customer(id);
    const w = await newWallet({ external_customer_id: id, paid_credits: '20', limit,
      recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '10', method: 'fixed', paid_credits: '15' }] });
    const [first] = await purchases(w.lago_id);
    await ok(await pay(first.lago_invoice_id, 'failed'));
    const clock = (await ok(await t.api('/api/v1/test_clock'))).test_clock.now;
    await advance(new Date(Date.parse(clock) + 2 * 3600e3).toISOString());
    assert.equal((await send(`${id}_sub`, 1)).status, limit === 'hard' ? 402 : 200);
    const bought = await purchases(w.lago_id);
    assert.deepEqual(bought.map((x) => [x.source, x.status, x.amount]).sort(),
      [['manual', 'failed', '20.0'], ['threshold', 'pending', '15.0']], limit);
  }
});

// Found by an audit (audit 9, F2): payment_overdue was false always. Lago's clock
// (MarkInvoicesAsPaymentOverdueJob) marks a finalized invoice whose payment has not succeeded
// once its payment_due_date is past; Tally reads it at the organization's clock.
test('payment_overdue: a finalized credit invoice not paid by its due date, at the organization\'s clock; the list filters by it', async () => {
  await customer('od', { net_payment_term: 3 });
  const w = await newWallet({ external_customer_id: 'od' });
  const clock = (await ok(await t.api('/api/v1/test_clock'))).test_clock.now;
  const [late] = await topUp({ wallet_id: w.lago_id, paid_credits: '5' });
  const [failing] = await topUp({ wallet_id: w.lago_id, paid_credits: '6' });
  const [paid] = await topUp({ wallet_id: w.lago_id, paid_credits: '7' });
  const [open] = await topUp({ wallet_id: w.lago_id, paid_credits: '8', invoice_requires_successful_payment: true });
  const inv = await invoice(late.lago_invoice_id);
  assert.deepEqual([inv.status, inv.payment_overdue], ['finalized', false]);
  await ok(await pay(failing.lago_invoice_id, 'failed'));
  await payInvoice(t, paid.lago_invoice_id);
  const due = Date.parse(`${inv.payment_due_date}T00:00:00Z`);
  await advance(new Date(due - 3600e3).toISOString()); // the day before: not yet
  assert.equal((await invoice(late.lago_invoice_id)).payment_overdue, false);
  await advance(new Date(due + 3600e3).toISOString()); // Lago's: the due date (its midnight, UTC) is past
  const overdue = async (x) => (await invoice(x.lago_invoice_id)).payment_overdue;
  assert.deepEqual([await overdue(late), await overdue(failing), await overdue(paid), await overdue(open)], [true, true, false, false]);
  const list = async (q) => (await ok(await t.api(`/api/v1/invoices?external_customer_id=od&${q}`))).invoices;
  assert.deepEqual((await list('payment_overdue=true')).map((x) => x.lago_id).sort(), [late.lago_invoice_id, failing.lago_invoice_id].sort());
  assert.deepEqual((await list('payment_overdue=false')).map((x) => x.lago_id).sort(), [paid.lago_invoice_id, open.lago_invoice_id].sort());
  assert.ok((await list('')).every((x) => x.payment_overdue === [late, failing].some((y) => y.lago_invoice_id === x.lago_id)));
  const now = await payInvoice(t, late.lago_invoice_id); // paid late: no longer overdue
  assert.equal(now.payment_overdue, false);
  assert.ok(Date.parse(clock) < due);
});

// Found by an audit (audit 13, F6): a boolean filter that is no boolean (payment_overdue=maybe)
// filtered as true. Lago's InvoicesQueryFiltersContract takes self_billed, partially_paid and
// payment_overdue as `maybe(:bool)`: anything its Params coercion does not read as a boolean is
// its 422, "must be boolean" under the filter's name. What it reads as one is taken.
test('invoices: a boolean filter that is no boolean is 422 must be boolean', async () => {
  for (const name of ['payment_overdue', 'self_billed', 'partially_paid']) {
    for (const value of ['maybe', '2', 'truee']) {
      const r = await t.api(`/api/v1/invoices?${name}=${value}`);
      const body = await r.json();
      assert.equal(r.status, 422, `${name}=${value}: ${JSON.stringify(body)}`);
      assert.deepEqual(body.error_details, { [name]: ['must be boolean'] });
    }
    for (const value of ['true', 'false', '1', '0', 't', 'f', 'yes', 'no', 'on', 'off', 'TRUE', 'N', ''])
      await ok(await t.api(`/api/v1/invoices?${name}=${value}`));
  }
});
