// An organization's own expiry reminders (tally org create --reminder-days): recorded at
// those days before a grant expires, and the CLI refuses days it cannot honour.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg, tally, newDataDir } from '../lib/tallyd.mjs';

let t;
before(async () => {
  t = await startWithOrg(['--test-clock', '2026-09-01T00:00:00Z', '--reminder-days', '3,14']);
  const r = await t.api('/api/v1/billable_metrics', { method: 'POST', body: { billable_metric: { code: 'rem_calls', name: 'Calls', aggregation_type: 'count_agg' } } });
  const bm = (await r.json()).billable_metric;
  await t.api('/api/v1/plans', { method: 'POST', body: { plan: { code: 'rem', name: 'Rem', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [
    { billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } } });
});
after(async () => { await t.cleanup(); });

const post = async (path, body) => { const r = await t.api(path, { method: 'POST', body }); const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };

test('reminders at the organization\'s days, nearest first, once each', async () => {
  await post('/api/v1/customers', { customer: { external_id: 'acme', currency: 'EUR' } });
  const { wallet } = await post('/api/v1/wallets', { wallet: { external_customer_id: 'acme', currency: 'EUR', rate_amount: '1', name: 'W' } });
  const { wallet_transactions: [grant] } = await post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: wallet.lago_id, granted_credits: '9', expiration_at: '2026-09-21T00:00:00Z' } });
  const days = async () => (await (await t.api('/api/v1/webhook_events')).json()).webhook_events.map((e) => [e.wallet_transaction.lago_id, e.data.days_before_expiry]);
  await post('/api/v1/test_clock/advance', { test_clock: { to: '2026-09-06T00:00:00Z' } }); // 15 days left
  assert.deepEqual(await days(), []);
  await post('/api/v1/test_clock/advance', { test_clock: { to: '2026-09-08T00:00:00Z' } }); // 13 days left
  assert.deepEqual(await days(), [[grant.lago_id, 14]]);
  await post('/api/v1/test_clock/advance', { test_clock: { to: '2026-09-19T00:00:00Z' } }); // 2 days left
  assert.deepEqual(await days(), [[grant.lago_id, 3], [grant.lago_id, 14]]);
});

test('tally org reminder-days changes them while tallyd is stopped; the next start reads them', async () => {
  const busy = tally(['--data-dir', t.dataDir, 'org', 'reminder-days', '1', '10']);
  assert.equal(busy.status, 1);
  assert.match(busy.stderr, /in use by another Tally process/);
  await t.restart({ between: (dir) => {
    const r = tally(['--data-dir', dir, 'org', 'reminder-days', '1', '10']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /organization 1 "Acme": credits.expiring_soon recorded 10 days before/);
    const missing = tally(['--data-dir', dir, 'org', 'reminder-days', '9', '10']);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /no organization 9/);
    assert.equal(tally(['--data-dir', dir, 'org', 'reminder-days', '1', '10,10']).status, 2);
  } });
  const { wallets: [wallet] } = await (await t.api('/api/v1/wallets?external_customer_id=acme')).json();
  const { wallet_transactions: [grant] } = await post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: wallet.lago_id, granted_credits: '5', expiration_at: '2026-10-09T00:00:00Z' } });
  const days = async () => (await (await t.api('/api/v1/webhook_events')).json()).webhook_events
    .filter((e) => e.wallet_transaction.lago_id === grant.lago_id).map((e) => e.data.days_before_expiry);
  await post('/api/v1/test_clock/advance', { test_clock: { to: '2026-09-27T00:00:00Z' } }); // 12 days left
  assert.deepEqual(await days(), []); // 14 is no longer one of the days
  await post('/api/v1/test_clock/advance', { test_clock: { to: '2026-09-30T00:00:00Z' } }); // 9 days left
  assert.deepEqual(await days(), [10]);
});

test('the CLI refuses reminder days it cannot honour', () => {
  for (const bad of ['0', '366', '7,7', '1,2,3,4,5', '30;7', '']) {
    const r = tally(['--data-dir', newDataDir(), 'org', 'create', 'X', '--reminder-days', bad]);
    assert.equal(r.status, 2, bad);
    assert.match(r.stderr, /--reminder-days wants/);
  }
});

test('no reminder for a grant the clock passes the expiry of; the list shows grants as they are now', async () => {
  await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'late', plan_code: 'rem', external_id: 'late_sub' } });
  const { wallet } = await post('/api/v1/wallets', { wallet: { external_customer_id: 'late', currency: 'EUR', rate_amount: '1', name: 'W' } });
  const now = Date.parse((await (await t.api('/api/v1/test_clock')).json()).test_clock.now);
  const at = (days) => new Date(now + days * 86400e3).toISOString();
  const { wallet_transactions: [gone] } = await post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: wallet.lago_id, granted_credits: '5', expiration_at: at(2) } });
  const { wallet_transactions: [kept] } = await post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: wallet.lago_id, granted_credits: '50', expiration_at: at(30) } });
  const events = async () => (await (await t.api('/api/v1/webhook_events?per_page=100')).json()).webhook_events;
  const before = (await events()).length;
  await post('/api/v1/test_clock/advance', { test_clock: { to: at(20) } }); // past gone's expiry, 10 days before kept's (days 1,10 now)
  const recorded = (await events()).slice(0, (await events()).length - before);
  assert.deepEqual(recorded.map((e) => [e.wallet_transaction.lago_id, e.data.days_before_expiry]), [[kept.lago_id, 10]]);
  assert.ok(!recorded.some((e) => e.wallet_transaction.lago_id === gone.lago_id));
  // debits waiting to be written out show at once in the list
  await post('/api/v1/events', { event: { transaction_id: 'late-1', external_subscription_id: 'late_sub', code: 'rem_calls' } });
  const shown = (await events()).find((e) => e.wallet_transaction.lago_id === kept.lago_id);
  assert.equal(shown.wallet_transaction.remaining_amount_cents, 4900);
});

// Found by an audit: a rollover moved a grant's own expiry, which reset its reminders, though
// the wallet's earlier expiration_at stayed the expiry that counts: a reminder was recorded a
// second time. Only a new expiry is reminded anew. (This organization reminds 10 days before,
// by now.)
test('a rollover that leaves the expiry that counts (the wallet\'s) as it was reminds nothing again', async () => {
  await post('/api/v1/customers', { customer: { external_id: 'roll', currency: 'EUR' } });
  const now = Date.parse((await (await t.api('/api/v1/test_clock')).json()).test_clock.now);
  const DAY = 86400e3, base = now - (now % DAY);
  const at = (days, hours = 0) => new Date(base + days * DAY + hours * 3600e3).toISOString();
  const { wallet } = await post('/api/v1/wallets', { wallet: { external_customer_id: 'roll', currency: 'EUR', rate_amount: '1', name: 'W',
    expiration_at: at(16), // the expiry that counts for every grant below
    recurring_transaction_rules: [{ trigger: 'interval', interval: 'weekly', granted_credits: '10', grant_expires_after: 'P2W', rollover: 'all' }] } });
  const reminded = async (id) => (await (await t.api('/api/v1/webhook_events?per_page=100')).json()).webhook_events
    .filter((e) => e.wallet_transaction.lago_id === id).map((e) => e.data.days_before_expiry);
  await post('/api/v1/test_clock/advance', { test_clock: { to: at(7, 6) } }); // the first grant
  const [first] = (await (await t.api(`/api/v1/wallets/${wallet.lago_id}/wallet_transactions`)).json()).wallet_transactions;
  await post('/api/v1/test_clock/advance', { test_clock: { to: at(8) } }); // 8 days left
  assert.deepEqual(await reminded(first.lago_id), [10]);
  await post('/api/v1/test_clock/advance', { test_clock: { to: at(14, 6) } }); // the rollover: its own expiry moves
  await post('/api/v1/test_clock/advance', { test_clock: { to: at(14, 12) } }); // 1.5 days left
  assert.deepEqual(await reminded(first.lago_id), [10]);
  // the new grant, due when the wallet is, was reminded once too
  const [second] = (await (await t.api(`/api/v1/wallets/${wallet.lago_id}/wallet_transactions`)).json()).wallet_transactions;
  assert.notEqual(second.lago_id, first.lago_id);
  assert.deepEqual(await reminded(second.lago_id), [10]);
});

// Found by a ledger audit: the outbox's list took any query argument and answered the whole
// list, so a client filtering it by customer was shown every customer's reminders.
test('the outbox list refuses a filter it does not have, as the ledger does', async () => {
  for (const q of ['webhook_type=wallet.created', 'external_customer_id=nobody', 'lago_wallet_id=x', 'status[]=a']) {
    const r = await t.api(`/api/v1/webhook_events?${q}`);
    const b = await r.json();
    assert.equal(r.status, 422, `${q}: ${JSON.stringify(b)}`);
    assert.deepEqual(b.error_details, { [q.split(/[=[]/)[0]]: ['not_supported'] });
  }
  assert.equal((await t.api('/api/v1/webhook_events?page=1&per_page=5')).status, 200);
});
