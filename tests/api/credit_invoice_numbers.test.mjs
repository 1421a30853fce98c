// Credit invoice numbers, as Lago gives them (app/models/invoice.rb, ensure_number and
// should_assign_sequential_id?): an invoice not finalized is numbered "<prefix>-DRAFT" with no
// sequential id, and takes the next of its customer's sequence when it is finalized, so the
// issued numbers follow the order they were issued in, with no gap left by an open invoice
// whose payment failed. An audit found an open invoice numbered when it was made: a failed
// one held its number for good, and one paid later carried a number lower than invoices issued
// before it. Also the members of Lago's V1::InvoiceSerializer that were missing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const post = async (path, body) => ok(await t.api(path, { method: 'POST', body }));
const invoice = async (id) => (await ok(await t.api(`/api/v1/invoices/${id}`))).invoice;
const pay = async (id, payment_status, headers = {}) =>
  (await ok(await t.api(`/api/v1/invoices/${id}`, { method: 'PUT', body: { invoice: { payment_status } }, headers }))).invoice;
const numbering = (i) => [i.status, i.sequential_id, i.number];

async function wallet(customer) {
  await post('/api/v1/customers', { customer: { external_id: customer, currency: 'USD' } });
  return (await post('/api/v1/wallets', { wallet: { external_customer_id: customer, currency: 'USD', rate_amount: '1', name: customer } })).wallet;
}
// a paid top-up's invoice id; open (waiting for its payment to be issued) or finalized at once
async function topUp(w, credits, open) {
  const body = { wallet_id: w.lago_id, paid_credits: credits, invoice_requires_successful_payment: open };
  return (await post('/api/v1/wallet_transactions', { wallet_transaction: body })).wallet_transactions[0].lago_invoice_id;
}
// the customer's issued invoices, in their numbers' order
async function issued(customer) {
  const list = (await ok(await t.api(`/api/v1/invoices?external_customer_id=${customer}&status=finalized&per_page=100`))).invoices;
  return list.sort((a, b) => a.sequential_id - b.sequential_id);
}

before(async () => { t = await startWithOrg(['--test-clock', '2026-01-01T00:00:00Z']); });
after(async () => { await t.cleanup(); });

test('an open credit invoice is numbered -DRAFT with no sequential id; it is numbered when it is issued, in issuing order', async () => {
  const w = await wallet('c1');
  const prefix = /^TLY-(\d{3})-\d{3}$/;
  const a = await topUp(w, '10', true); // open: its payment will fail
  const b = await topUp(w, '20', true); // open: paid later
  const c = await topUp(w, '30', false); // finalized at once
  assert.deepEqual(numbering(await invoice(a)), ['open', null, 'TLY-DRAFT']);
  assert.deepEqual(numbering(await invoice(b)), ['open', null, 'TLY-DRAFT']);
  const first = await invoice(c);
  assert.equal(first.sequential_id, 1);
  const customer = first.number.match(prefix)[1];
  assert.equal(first.number, `TLY-${customer}-001`);
  // listed alike
  const listed = (await ok(await t.api('/api/v1/invoices?external_customer_id=c1'))).invoices;
  assert.deepEqual(listed.map(numbering), [['finalized', 1, `TLY-${customer}-001`], ['open', null, 'TLY-DRAFT'], ['open', null, 'TLY-DRAFT']]);
  // a failed payment leaves it open, unnumbered
  assert.deepEqual(numbering(await pay(a, 'failed')), ['open', null, 'TLY-DRAFT']);
  await t.restart();
  assert.deepEqual(numbering(await invoice(a)), ['open', null, 'TLY-DRAFT']);
  await post('/api/v1/test_clock/advance', { test_clock: { to: '2026-01-05T00:00:00Z' } });
  // paid later: issued that day, with the next number
  const paid = await pay(b, 'succeeded');
  assert.deepEqual([...numbering(paid), paid.issuing_date], ['finalized', 2, `TLY-${customer}-002`, '2026-01-05']);
  // a retried payment, or a restart, keeps it
  assert.deepEqual(numbering(await pay(b, 'succeeded')), ['finalized', 2, `TLY-${customer}-002`]);
  await t.restart({ kill: true });
  assert.deepEqual(numbering(await invoice(b)), ['finalized', 2, `TLY-${customer}-002`]);
  // the next one issued follows, the failed one still holds none
  const d = await topUp(w, '5', false);
  assert.deepEqual(numbering(await invoice(d)), ['finalized', 3, `TLY-${customer}-003`]);
  assert.deepEqual(numbering(await invoice(a)), ['open', null, 'TLY-DRAFT']);
  const all = await issued('c1');
  assert.deepEqual(all.map((i) => [i.sequential_id, i.issuing_date]), [[1, '2026-01-01'], [2, '2026-01-05'], [3, '2026-01-05']]);
  // listed as Lago's InvoicesQuery orders them: by issuing date, then creation, newest first
  // (an audit found b, made on the 1st and issued on the 5th, listed after c, issued on the 1st)
  const listedNow = (await ok(await t.api('/api/v1/invoices?external_customer_id=c1'))).invoices;
  assert.deepEqual(listedNow.map((i) => i.lago_id), [d, b, c, a]);
});

test('open invoices paid at once, in one batch or apart, keyed retries included, are numbered once each with no gap', async () => {
  const w = await wallet('c2');
  const open = [];
  for (let i = 0; i < 8; i++) open.push(await topUp(w, String(i + 1), true));
  const now = await topUp(w, '100', false); // issued first: 001
  assert.equal((await invoice(now)).sequential_id, 1);
  const key = (id) => ({ 'Idempotency-Key': `pay-${id}` });
  // concurrent payments: the writer commits them together
  const answers = await Promise.all(open.map((id) => pay(id, 'succeeded', key(id))));
  const seqs = answers.map((i) => i.sequential_id).sort((x, y) => x - y);
  assert.deepEqual(seqs, [2, 3, 4, 5, 6, 7, 8, 9]);
  // replays answer the same; a restart changes nothing
  const again = await Promise.all(open.map((id) => pay(id, 'succeeded', key(id))));
  assert.deepEqual(again.map(numbering), answers.map(numbering));
  await t.restart({ kill: true });
  const after = await Promise.all(open.map((id) => invoice(id)));
  assert.deepEqual(after.map(numbering), answers.map(numbering));
  const numbers = (await issued('c2')).map((i) => i.number);
  assert.equal(new Set(numbers).size, 9);
  assert.deepEqual(numbers.map((n) => n.slice(-3)), ['001', '002', '003', '004', '005', '006', '007', '008', '009']);
});

// Lago's V1::InvoiceSerializer (app/serializers/v1/invoice_serializer.rb) writes these on every
// invoice; an audit found them missing. Each sits where Lago's puts it among its neighbours.
test('an invoice has xml_url, voided_at and total_offsetted_credit_note_amount_cents, where Lago\'s has them', async () => {
  const w = await wallet('c3');
  const id = await topUp(w, '5', false);
  const check = (i) => {
    assert.deepEqual([i.xml_url, i.voided_at, i.total_offsetted_credit_note_amount_cents], [null, null, 0]);
    const keys = Object.keys(i);
    const after = (k, prev) => assert.equal(keys.indexOf(k), keys.indexOf(prev) + 1, `${k} after ${prev}: ${keys}`);
    after('total_offsetted_credit_note_amount_cents', 'total_paid_amount_cents');
    after('xml_url', 'file_url');
    after('voided_at', 'updated_at');
  };
  check(await invoice(id));
  check((await ok(await t.api('/api/v1/invoices?external_customer_id=c3'))).invoices[0]);
  check(await pay(id, 'succeeded'));
});
