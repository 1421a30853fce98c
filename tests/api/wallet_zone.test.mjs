// A customer who moves to another time zone: its wallets' interval rules fire on the new zone's
// calendar from the next anniversary on, once each, whether tallyd restarts in between or not.
// Found by an audit: the live wallets kept the old zone until a restart, and a restart then
// read the new zone beside an anniversary scheduled in the old one, so the same anniversary
// fired twice (two paid top-ups, two credit invoices).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { payWallet } from '../lib/payments.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

let t;
const post = async (path, body) => t.api(path, { method: 'POST', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const advance = async (to) => ok(await post('/api/v1/test_clock/advance', { test_clock: { to } }));
const grants = async (id) => (await ok(await t.api(`/api/v1/wallets/${id}/wallet_transactions?per_page=100`))).wallet_transactions
  .filter((x) => x.source === 'interval').map((x) => x.created_at).sort();

// A customer in UTC with a monthly rule on the 15th (the wallet is made on 2026-01-15).
const walletOf = async (customer, rule) => {
  await ok(await post('/api/v1/customers', { customer: { external_id: customer, currency: 'USD', timezone: 'UTC' } }));
  return (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: customer, currency: 'USD', rate_amount: '1', name: 'Monthly',
    recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', ...rule }] } }))).wallet;
};
const moveTo = async (customer, timezone) => ok(await post('/api/v1/customers', { customer: { external_id: customer, timezone } }));

before(async () => { t = await startWithOrg(['--test-clock', '2026-01-15T10:00:00Z']); });
after(async () => { await t.cleanup(); });

test('a move west, then a restart: the next anniversary fires once, at the new zone\'s midnight', async () => {
  const w = await walletOf('west', { paid_credits: '10', invoice_requires_successful_payment: false });
  const east = await walletOf('east', { granted_credits: '5' });
  await advance('2026-02-15T00:00:00Z');
  assert.deepEqual(await grants(w.lago_id), ['2026-02-15T00:00:00Z']);
  await moveTo('west', 'America/Los_Angeles');
  await moveTo('east', 'Asia/Tokyo');
  await t.restart();
  // Mar 15 00:00 in Tokyo is 03-14 15:00Z; in Los Angeles (PDT) 03-15 07:00Z
  await advance('2026-03-14T15:00:00Z');
  assert.deepEqual(await grants(east.lago_id), ['2026-02-15T00:00:00Z', '2026-03-14T15:00:00Z']);
  await advance('2026-03-15T00:00:00Z');
  assert.deepEqual(await grants(w.lago_id), ['2026-02-15T00:00:00Z']);
  await advance('2026-03-15T07:00:00Z');
  assert.deepEqual(await grants(w.lago_id), ['2026-02-15T00:00:00Z', '2026-03-15T07:00:00Z']);
  await advance('2026-04-14T15:00:00Z');
  await advance('2026-04-15T07:00:00Z');
  assert.deepEqual(await grants(w.lago_id), ['2026-02-15T00:00:00Z', '2026-03-15T07:00:00Z', '2026-04-15T07:00:00Z']);
  assert.deepEqual(await grants(east.lago_id), ['2026-02-15T00:00:00Z', '2026-03-14T15:00:00Z', '2026-04-14T15:00:00Z']);
  const invoices = (await ok(await t.api('/api/v1/invoices?external_customer_id=west'))).invoices;
  assert.deepEqual(invoices.map((i) => i.issuing_date).sort(), ['2026-02-15', '2026-03-15', '2026-04-15']);
  assert.equal(await payWallet(t, w.lago_id), 3); // its credits arrive when paid
  await checkWalletLedger(t, w.lago_id);
  await checkWalletLedger(t, east.lago_id);
});

test('a move east without a restart: the live wallet takes the new zone at once', async () => {
  const w = await walletOf('tokyo', { granted_credits: '5', grant_expires_after: 'P1M', rollover: 'all' });
  await advance('2026-05-15T00:00:00Z');
  const [first] = await grants(w.lago_id);
  assert.equal(first, '2026-05-15T00:00:00Z');
  await moveTo('tokyo', 'Asia/Tokyo');
  await advance('2026-06-14T15:00:00Z'); // Jun 15 00:00 in Tokyo
  assert.deepEqual(await grants(w.lago_id), ['2026-05-15T00:00:00Z', '2026-06-14T15:00:00Z']);
  await advance('2026-06-16T00:00:00Z');
  assert.equal((await grants(w.lago_id)).length, 2);
  // the 5 credits of May carried on; the new grant lasts to Jul 15 00:00 in Tokyo
  const wallet = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}`))).wallet;
  assert.equal(wallet.balance_cents, 1000);
  const txs = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions?per_page=100`))).wallet_transactions;
  assert.deepEqual([...new Set(txs.filter((x) => x.source === 'interval').map((x) => x.expiration_at))], ['2026-07-14T15:00:00Z']);
  await checkWalletLedger(t, w.lago_id);
});

// The same anniversary in another zone is the same count of intervals from the anchor: a wallet
// made at 23:00 UTC on the 15th has its anniversaries on the 16th in Tokyo. And a rule grant's
// end, an anniversary, moves with it. Found by an audit of the first version: a move east fired
// the month's anniversary on the 15th and again on the 16th; a move west left the last grant
// expiring 7 hours before the anniversary that should have rolled it over.
test('a move keeps one anniversary a month, and the grants ending at it end at it still', async () => {
  await advance('2026-07-15T23:00:00Z');
  const tokyo = await walletOf('tokyo2', { paid_credits: '10', invoice_requires_successful_payment: false });
  const west = await walletOf('west2', { granted_credits: '5', grant_expires_after: 'P1M', rollover: 'all' });
  const balance = async (w) => (await ok(await t.api(`/api/v1/wallets/${w.lago_id}`))).wallet.balance_cents;
  await advance('2026-07-20T00:00:00Z');
  await moveTo('tokyo2', 'Asia/Tokyo');
  await advance('2026-08-15T00:00:00Z');
  assert.deepEqual(await grants(west.lago_id), ['2026-08-15T00:00:00Z']);
  assert.deepEqual(await grants(tokyo.lago_id), []);
  await advance('2026-08-15T15:00:00Z'); // Aug 16 00:00 in Tokyo
  await advance('2026-08-16T15:00:00Z');
  assert.deepEqual(await grants(tokyo.lago_id), ['2026-08-15T15:00:00Z']);
  await advance('2026-08-20T00:00:00Z');
  await moveTo('west2', 'America/Los_Angeles');
  await advance('2026-09-15T00:00:00Z'); // the old zone's anniversary: nothing ends or comes
  assert.equal(await balance(west), 500);
  await advance('2026-09-15T07:00:00Z'); // Sep 15 00:00 in Los Angeles: 5 rolled over, 5 new
  assert.equal(await balance(west), 1000);
  await advance('2026-09-15T15:00:00Z');
  assert.deepEqual(await grants(tokyo.lago_id), ['2026-08-15T15:00:00Z', '2026-09-15T15:00:00Z']);
  assert.equal(await payWallet(t, tokyo.lago_id), 2);
  await checkWalletLedger(t, tokyo.lago_id);
  await checkWalletLedger(t, west.lago_id);
});
