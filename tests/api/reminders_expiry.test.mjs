// Expiry reminders (credits.expiring_soon) follow the date credits really expire: a grant's
// own expiration_at, or its wallet's when that comes first (the wallet's expiry takes every
// credit left in it); never once the credits are gone, even when one advance passes both the
// reminder's day and the expiry; and again before a new date that a rollover gave credits
// carried on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
before(async () => { t = await startWithOrg(['--test-clock', '2026-01-01T00:00:00Z', '--reminder-days', '30,7']); });
after(async () => { await t.cleanup(); });

const post = async (path, body) => { const r = await t.api(path, { method: 'POST', body }); const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const advance = (to) => post('/api/v1/test_clock/advance', { test_clock: { to } });
// each reminder as [grant, days before expiry, day recorded], oldest first
const reminders = async (grants) => (await (await t.api('/api/v1/webhook_events?per_page=100')).json()).webhook_events
  .filter((e) => grants.includes(e.wallet_transaction.lago_id))
  .map((e) => [grants.indexOf(e.wallet_transaction.lago_id), e.data.days_before_expiry, e.created_at.slice(0, 10)]).reverse();
const grant = async (wallet, credits, expiration_at) => (await post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: wallet, granted_credits: credits, ...(expiration_at ? { expiration_at } : {}) } })).wallet_transactions[0].lago_id;

test("a wallet's expiration_at is reminded for the grants it takes, a grant's own for the others", async () => {
  await post('/api/v1/customers', { customer: { external_id: 'we', currency: 'USD' } });
  const w = (await post('/api/v1/wallets', { wallet: { external_customer_id: 'we', currency: 'USD', rate_amount: '1', name: 'W', expiration_at: '2026-02-15T00:00:00Z' } })).wallet.lago_id;
  const grants = [await grant(w, '10'), await grant(w, '6', '2026-03-30T00:00:00Z'), await grant(w, '5', '2026-02-10T00:00:00Z')];
  for (const day of ['2026-01-11', '2026-01-16', '2026-02-03', '2026-02-08', '2026-02-14', '2026-02-16']) await advance(`${day}T00:00:00Z`);
  assert.deepEqual(await reminders(grants), [
    [2, 30, '2026-01-11'], // its own date, Feb 10
    [0, 30, '2026-01-16'], [1, 30, '2026-01-16'], // the wallet's, Feb 15, before theirs
    [2, 7, '2026-02-03'],
    [0, 7, '2026-02-08'], [1, 7, '2026-02-08'],
  ]);
});

test('no reminder once the credits are gone: one advance past the reminder day and the wallet expiry', async () => {
  await post('/api/v1/customers', { customer: { external_id: 'jump', currency: 'USD' } });
  const w = (await post('/api/v1/wallets', { wallet: { external_customer_id: 'jump', currency: 'USD', rate_amount: '1', name: 'J', expiration_at: '2026-03-20T00:00:00Z' } })).wallet.lago_id;
  const g = await grant(w, '5', '2026-03-25T00:00:00Z');
  await advance('2026-03-21T00:00:00Z'); // past the wallet's expiry, within 7 days of the grant's
  assert.deepEqual(await reminders([g]), []);
  const wallet = (await (await t.api(`/api/v1/wallets/${w}`)).json()).wallet;
  assert.equal(wallet.status, 'terminated');
});

test('credits a rollover carries on are reminded again before their new expiry', async () => {
  await post('/api/v1/customers', { customer: { external_id: 'roll', currency: 'USD' } });
  const w = (await post('/api/v1/wallets', { wallet: { external_customer_id: 'roll', currency: 'USD', rate_amount: '1', name: 'R',
    recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', granted_credits: '10', grant_expires_after: 'P1M', rollover: 'all' }] } })).wallet.lago_id;
  // the rule grants on each anniversary of the wallet (the 21st); step a day at a time
  for (let d = Date.parse('2026-03-22T00:00:00Z'); d <= Date.parse('2026-06-22T00:00:00Z'); d += 86400e3) await advance(new Date(d).toISOString());
  const txs = (await (await t.api(`/api/v1/wallets/${w}/wallet_transactions?per_page=100`)).json()).wallet_transactions;
  const april = txs.find((x) => x.transaction_type === 'inbound' && x.created_at.startsWith('2026-04-21'));
  assert.ok(april, JSON.stringify(txs.map((x) => [x.transaction_type, x.created_at])));
  // granted April 21st for a month, carried on at May 21st to June 21st: reminded before each
  // (reminded the day it is made, 30 days before; carried on for 31 days, the next day)
  assert.deepEqual((await reminders([april.lago_id])).map((r) => r.slice(1)), [
    [30, '2026-04-21'], [7, '2026-05-14'], [30, '2026-05-22'], [7, '2026-06-14']]);
});

// Found by an audit: a sweep recorded reminders before the anniversaries it fired, so a grant
// an advance's own anniversary made, already within a reminder, was looked at only at the next
// advance; stepped one interval at a time, that is at its next threshold or its expiry. The real
// clock reminds such a grant within a second: a test clock does it in the same sweep.
test('a grant an anniversary makes within a reminder is reminded in the same advance', async () => {
  await advance('2026-07-01T00:00:00Z');
  await post('/api/v1/customers', { customer: { external_id: 'step', currency: 'USD' } });
  const w = (await post('/api/v1/wallets', { wallet: { external_customer_id: 'step', currency: 'USD', rate_amount: '1', name: 'S',
    recurring_transaction_rules: [{ trigger: 'interval', interval: 'weekly', granted_credits: '10', grant_expires_after: 'P2W' }] } })).wallet.lago_id;
  const days = ['2026-07-08', '2026-07-15', '2026-07-22', '2026-07-29'];
  for (const day of days) await advance(`${day}T00:00:00Z`);
  const grants = (await (await t.api(`/api/v1/wallets/${w}/wallet_transactions?per_page=100`)).json()).wallet_transactions
    .filter((x) => x.transaction_type === 'inbound').map((x) => x.lago_id).reverse();
  assert.equal(grants.length, 4);
  // each lasts two weeks: reminded 30 days before at once (14 days left), then 7 days before
  assert.deepEqual(await reminders(grants), [
    [0, 30, '2026-07-08'],
    [0, 7, '2026-07-15'], [1, 30, '2026-07-15'],
    [1, 7, '2026-07-22'], [2, 30, '2026-07-22'],
    [2, 7, '2026-07-29'], [3, 30, '2026-07-29'],
  ]);
});

// Found by an audit: the event did not say when the credits expire (a grant expiring with its
// wallet has no expiration_at of its own) nor whose organization it is, which Lago's webhook
// bodies say.
test('a reminder says when the credits expire, the threshold crossed and the organization', async () => {
  await post('/api/v1/customers', { customer: { external_id: 'when', currency: 'USD' } });
  const w = (await post('/api/v1/wallets', { wallet: { external_customer_id: 'when', currency: 'USD', rate_amount: '1', name: 'W', expiration_at: '2026-08-28T12:00:00Z' } })).wallet.lago_id;
  const grants = [await grant(w, '10'), await grant(w, '3', '2026-08-20T00:00:00Z')];
  await advance('2026-08-05T00:00:00Z'); // 23 and 15 days left
  const events = (await (await t.api('/api/v1/webhook_events?per_page=100')).json()).webhook_events
    .filter((e) => grants.includes(e.wallet_transaction.lago_id)).reverse();
  assert.deepEqual(events.map((e) => [grants.indexOf(e.wallet_transaction.lago_id), e.organization_id, e.data]), [
    [1, '1', { days_before_expiry: 30, expiration_at: '2026-08-20T00:00:00Z', lago_wallet_id: w }],
    [0, '1', { days_before_expiry: 30, expiration_at: '2026-08-28T12:00:00Z', lago_wallet_id: w }],
  ]);
  assert.deepEqual(Object.keys(events[0]), ['lago_id', 'webhook_type', 'object_type', 'organization_id', 'wallet_transaction', 'data', 'created_at', 'delivered_at']);
  assert.equal(events[0].wallet_transaction.expiration_at, '2026-08-20T00:00:00Z');
  assert.equal(events[1].wallet_transaction.expiration_at, null); // its wallet's date is the one
});

// Found by an audit: a wallet whose expiration_at was moved later kept the reminders of its old
// date, so the new date never had its 30-day one. A new expiry is reminded anew, as a
// rollover's is; a grant whose own earlier expiry still counts is not reminded again.
test("a wallet's expiration_at moved is reminded anew for the grants it takes", async () => {
  await post('/api/v1/customers', { customer: { external_id: 'moved', currency: 'USD' } });
  const wallet = (await post('/api/v1/wallets', { wallet: { external_customer_id: 'moved', currency: 'USD', rate_amount: '1', name: 'M', expiration_at: '2026-09-01T00:00:00Z' } })).wallet;
  const w = wallet.lago_id;
  const grants = [await grant(w, '10'), await grant(w, '4', '2026-08-30T00:00:00Z')];
  await advance('2026-08-06T00:00:00Z'); // 26 and 24 days left
  const put = await t.api(`/api/v1/wallets/${w}`, { method: 'PUT', body: { wallet: { expiration_at: '2026-11-20T00:00:00Z' } } });
  assert.equal(put.status, 200, await put.text());
  for (const day of ['2026-08-23', '2026-10-21', '2026-11-13', '2026-11-19']) await advance(`${day}T00:00:00Z`);
  assert.deepEqual(await reminders(grants), [
    [1, 30, '2026-08-06'], [0, 30, '2026-08-06'], // the old date, Sep 1, and the grant's own
    [1, 7, '2026-08-23'], // its own date still counts: not reminded again
    [0, 30, '2026-10-21'], [0, 7, '2026-11-13'], // the new date, Nov 20
  ]);
});

// Found by an audit of the fix above: the sweep still reminded before its anniversaries, so a
// grant whose credits an anniversary's rollover carried on was reminded of a date nothing
// expired on any more.
test('a grant a rollover carries on in the same advance is not reminded of its old date', async () => {
  await advance('2027-01-01T00:00:00Z');
  await post('/api/v1/customers', { customer: { external_id: 'rolled', currency: 'USD' } });
  const w = (await post('/api/v1/wallets', { wallet: { external_customer_id: 'rolled', currency: 'USD', rate_amount: '1', name: 'R',
    recurring_transaction_rules: [{ trigger: 'interval', interval: 'weekly', granted_credits: '10', grant_expires_after: 'P2W', rollover: 'all' }] } })).wallet.lago_id;
  await advance('2027-01-08T00:00:00Z'); // the first grant: 10 credits to Jan 22
  await advance('2027-01-15T00:00:00Z'); // the next: its credits carried on to Jan 29
  const grants = (await (await t.api(`/api/v1/wallets/${w}/wallet_transactions?per_page=100`)).json()).wallet_transactions
    .filter((x) => x.transaction_type === 'inbound').map((x) => x.lago_id).reverse();
  assert.equal(grants.length, 2);
  const events = (await (await t.api('/api/v1/webhook_events?per_page=100')).json()).webhook_events
    .filter((e) => grants.includes(e.wallet_transaction.lago_id)).reverse()
    .map((e) => [grants.indexOf(e.wallet_transaction.lago_id), e.data.days_before_expiry, e.data.expiration_at]);
  // the first reminded of Jan 22 when made, then of Jan 29 once carried on there; never 7 days
  // before Jan 22, a date on which nothing expires any more
  assert.deepEqual(events, [[0, 30, '2027-01-22T00:00:00Z'], [0, 30, '2027-01-29T00:00:00Z'], [1, 30, '2027-01-29T00:00:00Z']]);
});
