// Recurring rules' terms, each test on a server and test clock of its own: how long a weekly
// rule's grant lasts, how a rollover cap in credits becomes money, a rule sent back with its
// lago_id, the longest grant_expires_after, an empty transaction name, and a threshold rule
// whose top-up leaves the balance at or below its threshold. Found by an audit of recurring
// rules over months of test-clock time (audit 4).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

// A server with its organization's clock at `clock`, and the calls the tests make on it.
const server = async (clock) => {
  const t = await startWithOrg(['--test-clock', clock]);
  const post = (path, body) => t.api(path, { method: 'POST', body });
  const put = (path, body) => t.api(path, { method: 'PUT', body });
  const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
  return {
    t, post, put, ok,
    advance: async (to) => ok(await post('/api/v1/test_clock/advance', { test_clock: { to } })),
    customer: async (external_id, currency = 'USD') => ok(await post('/api/v1/customers', { customer: { external_id, currency } })),
    wallet: async (id) => (await ok(await t.api(`/api/v1/wallets/${id}`))).wallet,
    newWallet: async (wallet) => (await ok(await post('/api/v1/wallets', { wallet }))).wallet,
    txs: async (id) => (await ok(await t.api(`/api/v1/wallets/${id}/wallet_transactions?per_page=100`))).wallet_transactions,
  };
};

// The docs: a grant ends at the start of the local day the duration reaches. A weekly rule's
// months were counted to the day of the month of its anchor (the wallet's creation, or
// started_at), which means nothing for a weekly rule: grants made on Feb 7, 14, 21 and 28 by a
// rule anchored on Jan 31 all ended on Mar 31. A monthly rule's grants still end on its
// anniversary day (Feb 28 + P1M is Mar 31 for a rule of the 31st).
test("a weekly rule's grant lasting months ends that long after its own day", async () => {
  const s = await server('2026-01-24T10:00:00Z'); // a Saturday
  try {
    await s.customer('c');
    const weekly = await s.newWallet({ external_customer_id: 'c', currency: 'USD', rate_amount: '1', name: 'Weekly',
      recurring_transaction_rules: [{ trigger: 'interval', interval: 'weekly', granted_credits: '1', grant_expires_after: 'P1M' }] });
    const monthly = await s.newWallet({ external_customer_id: 'c', currency: 'USD', rate_amount: '1', name: 'Monthly',
      recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', granted_credits: '1', grant_expires_after: 'P1M', started_at: '2026-01-31T00:00:00Z' }] });
    for (const day of ['01-31', '02-07', '02-14', '02-21', '02-28']) await s.advance(`2026-${day}T12:00:00Z`);
    const ends = async (id) => (await s.txs(id)).filter((x) => x.transaction_status === 'granted').map((x) => [x.created_at.slice(0, 10), x.expiration_at.slice(0, 10)]).sort();
    assert.deepEqual(await ends(weekly.lago_id), [
      ['2026-01-31', '2026-02-28'], // a month after Jan 31: February's last day
      ['2026-02-07', '2026-03-07'],
      ['2026-02-14', '2026-03-14'],
      ['2026-02-21', '2026-03-21'],
      ['2026-02-28', '2026-03-28'],
    ]);
    assert.deepEqual(await ends(monthly.lago_id), [['2026-01-31', '2026-02-28'], ['2026-02-28', '2026-03-31']]);
  } finally {
    await s.t.cleanup();
  }
});
