// Paying credit invoices, as a payment provider would tell Lago: paid credits arrive only when
// their invoice is paid (PUT /invoices/{id} payment_status succeeded), whatever
// invoice_requires_successful_payment says, so a test that spends bought credits pays first.
import assert from 'node:assert/strict';

// Marks one invoice paid (t: a startWithOrg object, or anything with its api()); its answer.
export async function payInvoice(t, lagoInvoiceId) {
  const r = await t.api(`/api/v1/invoices/${lagoInvoiceId}`, { method: 'PUT', body: { invoice: { payment_status: 'succeeded' } } });
  const body = await r.json();
  assert.equal(r.status, 200, `paying invoice ${lagoInvoiceId}: ${JSON.stringify(body)}`);
  return body.invoice;
}

// Pays every paid top-up of a wallet still waiting for its payment (a wallet's initial
// paid_credits, POST /wallet_transactions, a rule's); how many it paid.
export async function payWallet(t, walletLagoId) {
  const waiting = [];
  for (let page = 1; ; page++) {
    const r = await t.api(`/api/v1/wallets/${walletLagoId}/wallet_transactions?status=pending&per_page=100&page=${page}`);
    const body = await r.json();
    assert.equal(r.status, 200, JSON.stringify(body));
    waiting.push(...body.wallet_transactions.filter((x) => x.transaction_status === 'purchased' && x.status === 'pending'));
    if (!body.meta.next_page) break;
  }
  for (const x of waiting) await payInvoice(t, x.lago_invoice_id);
  return waiting.length;
}
