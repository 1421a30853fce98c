// One wallet's ledger checked against the wallet it belongs to: every posting balances, there is
// at least one, the wallet's own accounts run without a gap and never below zero, its credit and
// held accounts end where the wallet says they are, and
// its transactions' consumptions and fundings account for every cent (checkWalletTraces).
// Answers the entries, oldest first.
import assert from 'node:assert/strict';

// Minor units of a currency amount written as decimal text ("25.0", "1.21", "-3"): no floats.
const EXPONENTS = { JPY: 0, KRW: 0, CLP: 0, ISK: 0, VND: 0, BHD: 3, KWD: 3, OMR: 3, JOD: 3, TND: 3 };
export function amountCents(text, currency) {
  const exponent = EXPONENTS[currency] ?? 2;
  const negative = text.startsWith('-');
  const [whole, fraction = ''] = (negative ? text.slice(1) : text).split('.');
  assert.ok(fraction.replace(/0+$/, '').length <= exponent, `${text} ${currency} is not whole minor units`);
  const cents = Number(whole) * 10 ** exponent + Number((fraction + '0'.repeat(exponent)).slice(0, exponent) || '0');
  return negative ? -cents : cents;
}

// Every transaction of a wallet is accounted for by its links (GET .../consumptions and
// .../fundings), to the cent:
// - a grant (granted, purchased, settled): its amount is what remains of it, plus what it paid
//   for (usage, expiry, voids, an overdraft's usage it repaid), less what refund steps gave
//   back to it;
// - a refund step's transaction: what it gave back to grants (its fundings) plus the overdraft
//   usage it cancelled (its consumptions);
// - usage, voids and expiries: what grants and refund steps paid of each (its fundings), and
//   for usage, the part an overdraft paid that nothing has repaid yet; those parts add up to
//   what the wallet owes (overdrawn_cents).
// A GET that must answer 200; its body.
async function getOk(t, path) {
  const r = await t.api(path);
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  return body;
}

export async function checkWalletTraces(t, walletLagoId) {
  const get = (path) => getOk(t, path);
  const all = async (path, key) => {
    const rows = [];
    for (let page = 1; ; page++) {
      const body = await get(`${path}${path.includes('?') ? '&' : '?'}per_page=100&page=${page}`);
      rows.push(...body[key]);
      if (!body.meta.next_page) return rows;
    }
  };
  const wallet = (await get(`/api/v1/wallets/${walletLagoId}`)).wallet;
  const cents = (tx) => amountCents(tx.amount, wallet.currency);
  const txs = await all(`/api/v1/wallets/${walletLagoId}/wallet_transactions`, 'wallet_transactions');
  let owed = 0;
  for (const tx of txs.filter((x) => x.status === 'settled')) {
    const links = `/api/v1/wallet_transactions/${tx.lago_id}`;
    // as Lago's: consumptions of an inbound transaction, fundings of an outbound one (and of a
    // refund step, Tally's); the other asks are 422 invalid_transaction_type
    const inbound = tx.transaction_type === 'inbound';
    const refund = tx.transaction_status === 'usage_refund';
    const traced = async (direction, key, allowed) => {
      if (allowed) return all(`${links}/${direction}`, key);
      const r = await t.api(`${links}/${direction}`);
      assert.equal(r.status, 422, `${direction} of ${tx.transaction_status} ${tx.lago_id}`);
      assert.deepEqual((await r.json()).error_details, { transaction_type: ['invalid_transaction_type'] });
      return [];
    };
    const consumptions = await traced('consumptions', 'wallet_transaction_consumptions', inbound);
    const fundings = await traced('fundings', 'wallet_transaction_fundings', !inbound || refund);
    const sum = (rows, keep = () => true) => rows.filter(keep).reduce((s, c) => s + c.amount_cents, 0);
    const isRefund = (c) => c.wallet_transaction.transaction_status === 'usage_refund';
    const what = `${tx.transaction_status} ${tx.lago_id} of ${cents(tx)} cents`;
    if (tx.transaction_status === 'usage_refund') {
      assert.equal(sum(fundings) + sum(consumptions), cents(tx), what);
    } else if (tx.transaction_type === 'inbound') {
      assert.deepEqual(fundings, [], what);
      assert.equal(tx.remaining_amount_cents + sum(consumptions, (c) => !isRefund(c)) - sum(consumptions, isRefund), cents(tx), what);
    } else {
      assert.deepEqual(consumptions, [], what);
      const unpaid = cents(tx) - sum(fundings);
      assert.ok(unpaid === 0 || (tx.transaction_status === 'usage' && unpaid > 0), `${what}: ${unpaid} unaccounted for`);
      owed += unpaid;
    }
  }
  assert.equal(owed, wallet.overdrawn_cents, `wallet ${walletLagoId}: usage owed vs overdrawn_cents`);
}

export async function checkWalletLedger(t, walletLagoId) {
  const get = (path) => getOk(t, path);
  const entries = [];
  for (let page = 1; ; page++) { // newest first, a page at a time
    const body = await get(`/api/v1/ledger_entries?per_page=1000&page=${page}&wallet_id=${walletLagoId}`);
    entries.push(...body.ledger_entries);
    if (!body.meta.next_page) break;
  }
  entries.reverse();
  const sums = new Map(), last = new Map();
  for (const e of entries) {
    sums.set(e.posting_id, (sums.get(e.posting_id) ?? 0) + (e.direction === 'debit' ? e.amount_cents : -e.amount_cents));
    if (!e.lago_wallet_id) continue;
    // the wallet's accounts run in the order things happened: each entry starts where the last
    // ended, and none is ever below zero (credits spent before they came, an overdraft repaid
    // before it was drawn)
    const what = `${e.cause} entry ${e.id} on ${e.account}`;
    assert.equal(e.balance_before_cents, last.get(e.account) ?? 0, what);
    assert.ok(e.balance_after_cents >= 0, `${what} leaves it at ${e.balance_after_cents}`);
    last.set(e.account, e.balance_after_cents);
  }
  assert.ok(sums.size > 0);
  for (const [id, sum] of sums) assert.equal(sum, 0, `posting ${id} does not balance`);
  const now = (await get(`/api/v1/wallets/${walletLagoId}`)).wallet;
  const credits = (last.get('customer_paid_credits') ?? 0) + (last.get('customer_promotional_credits') ?? 0);
  assert.equal(credits, now.status === 'active' ? now.balance_cents + now.overdrawn_cents : 0);
  assert.equal(last.get('customer_held_credits') ?? 0, now.ongoing_usage_balance_cents);
  await checkWalletTraces(t, walletLagoId);
  return entries;
}
