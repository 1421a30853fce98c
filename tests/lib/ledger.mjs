// One wallet's ledger checked against the wallet it belongs to: every posting balances, there is
// at least one, and the wallet's credit and held accounts end where the wallet says they are.
// Answers the entries, oldest first.
import assert from 'node:assert/strict';

export async function checkWalletLedger(t, walletLagoId) {
  const get = async (path) => {
    const r = await t.api(path);
    const body = await r.json();
    assert.equal(r.status, 200, JSON.stringify(body));
    return body;
  };
  const entries = (await get(`/api/v1/ledger_entries?per_page=1000&wallet_id=${walletLagoId}`)).ledger_entries.reverse();
  const sums = new Map(), last = new Map();
  for (const e of entries) {
    sums.set(e.posting_id, (sums.get(e.posting_id) ?? 0) + (e.direction === 'debit' ? e.amount_cents : -e.amount_cents));
    if (e.lago_wallet_id) last.set(e.account, e.balance_after_cents);
  }
  assert.ok(sums.size > 0);
  for (const [id, sum] of sums) assert.equal(sum, 0, `posting ${id} does not balance`);
  const now = (await get(`/api/v1/wallets/${walletLagoId}`)).wallet;
  const credits = (last.get('customer_paid_credits') ?? 0) + (last.get('customer_promotional_credits') ?? 0);
  assert.equal(credits, now.status === 'active' ? now.balance_cents + now.overdrawn_cents : 0);
  assert.equal(last.get('customer_held_credits') ?? 0, now.ongoing_usage_balance_cents);
  return entries;
}
