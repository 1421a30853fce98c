// Holds and the clock over real HTTP: an authorization prices one event and reserves its
// credits (or is declined), held credits count against every other debit at once, a capture
// records the real event and debits what it costs, a void or the expiry releases the hold;
// grants and wallets expire on the test clock with breakage in the ledger.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { payWallet } from '../lib/payments.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

let t;
const post = async (path, body, headers = {}) => t.api(path, { method: 'POST', body, headers });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const wallet = async (id) => (await ok(await t.api(`/api/v1/wallets/${id}`))).wallet;
const authorize = (body) => post('/api/v1/authorizations', { authorization: body });
const advance = async (to) => ok(await post('/api/v1/test_clock/advance', { test_clock: { to } }));
let n = 0;
const event = (sub, properties) => post('/api/v1/events', { event: { transaction_id: `a${n++}`, external_subscription_id: sub, code: 'gpu_seconds', properties } });

let hard, none;
before(async () => {
  t = await startWithOrg(['--test-clock', '2026-05-01T00:00:00Z']);
  const bm = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'gpu_seconds', name: 'GPU seconds', aggregation_type: 'sum_agg', field_name: 'seconds' } }))).billable_metric;
  // 2 cents a GPU second, no tax
  await ok(await post('/api/v1/plans', { plan: { code: 'gpu', name: 'GPU', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '0.02' } }] } }));
  for (const c of ['jobs', 'open', 'clock'])
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'gpu', external_id: `${c}_sub`, subscription_at: '2026-05-01T00:00:00Z' } }));
  hard = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'jobs', currency: 'USD', rate_amount: '0.01', name: 'Jobs', granted_credits: '1000', limit: 'hard' } }))).wallet;
  none = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'open', currency: 'USD', rate_amount: '1', name: 'Open', paid_credits: '5' } }))).wallet;
  await payWallet(t, none.lago_id);
});
after(async () => { await t.cleanup(); });

test('an authorization prices the job and holds its credits; the ongoing balance shows it at once', async () => {
  const a = (await ok(await authorize({ external_subscription_id: 'jobs_sub', code: 'gpu_seconds', properties: { seconds: 300 }, expires_in: 3600 }))).authorization;
  assert.equal(a.status, 'authorized');
  assert.equal(a.amount_cents, 600); // 300 s x 2 cents
  assert.equal(a.credits, '600.0'); // at 1 cent a credit
  assert.equal(a.held_amount_cents, 600);
  assert.equal(a.expires_at, '2026-05-01T01:00:00Z');
  assert.equal(a.lago_wallet_id, hard.lago_id);
  const w = await wallet(hard.lago_id);
  assert.equal(w.balance_cents, 1000);
  assert.equal(w.ongoing_balance_cents, 400);
  assert.equal(w.credits_ongoing_balance, '400.0');
  assert.equal(w.ongoing_usage_balance_cents, 600);
  // what is held cannot be spent by anyone else: 250 s (500 cents) is refused, 200 s is not
  assert.equal((await event('jobs_sub', { seconds: 250 })).status, 402);
  const second = (await ok(await authorize({ external_subscription_id: 'jobs_sub', code: 'gpu_seconds', properties: { seconds: 250 } }))).authorization;
  assert.equal(second.status, 'declined');
  assert.equal(second.held_amount_cents, 0);
  assert.equal((await event('jobs_sub', { seconds: 200 })).status, 200);
  assert.equal((await wallet(hard.lago_id)).ongoing_balance_cents, 0);
  // the job ran shorter than authorized: the capture debits 250 s, the rest is released
  const captured = (await ok(await post(`/api/v1/authorizations/${a.lago_id}/capture`, { authorization: { properties: { seconds: 250 } } }))).authorization;
  assert.equal(captured.status, 'captured');
  assert.equal(captured.captured_amount_cents, 500);
  assert.equal(captured.held_amount_cents, 0);
  assert.equal(captured.transaction_id, a.lago_id);
  const after1 = await wallet(hard.lago_id);
  assert.equal(after1.balance_cents, 1000 - 400 - 500);
  assert.equal(after1.ongoing_balance_cents, 100);
  assert.equal(after1.ongoing_usage_balance_cents, 0);
  const ev = (await ok(await t.api(`/api/v1/events/${a.lago_id}`))).event;
  assert.equal(ev.properties.seconds, 250);
  const again = await post(`/api/v1/authorizations/${a.lago_id}/capture`, {});
  assert.equal(again.status, 422);
  assert.deepEqual((await again.json()).error_details, { authorization: ['already_captured'] });
});

test('a capture that costs more than credits can pay is refused like any event, and keeps its hold', async () => {
  const a = (await ok(await authorize({ external_subscription_id: 'jobs_sub', code: 'gpu_seconds', properties: { seconds: 40 } }))).authorization;
  assert.equal(a.status, 'authorized');
  const refused = await post(`/api/v1/authorizations/${a.lago_id}/capture`, { authorization: { properties: { seconds: 51 }, transaction_id: 'job-51' } });
  assert.equal(refused.status, 402);
  assert.equal((await ok(await t.api(`/api/v1/authorizations/${a.lago_id}`))).authorization.status, 'authorized');
  assert.equal((await wallet(a.lago_wallet_id)).ongoing_balance_cents, 20);
  const voided = (await ok(await post(`/api/v1/authorizations/${a.lago_id}/void`, {}))).authorization;
  assert.equal(voided.status, 'voided');
  assert.equal((await wallet(a.lago_wallet_id)).ongoing_balance_cents, 100);
  assert.equal((await post(`/api/v1/authorizations/${a.lago_id}/void`, {})).status, 422);
});

test('an expired hold releases by itself; a late capture is refused', async () => {
  const a = (await ok(await authorize({ external_subscription_id: 'jobs_sub', code: 'gpu_seconds', properties: { seconds: 50 }, expires_in: 60 }))).authorization;
  assert.equal((await wallet(hard.lago_id)).ongoing_balance_cents, 0);
  await advance('2026-05-01T00:02:00Z');
  const expired = (await ok(await t.api(`/api/v1/authorizations/${a.lago_id}`))).authorization;
  assert.equal(expired.status, 'expired');
  assert.equal(expired.held_amount_cents, 0);
  assert.equal((await wallet(hard.lago_id)).ongoing_balance_cents, 100);
  const late = await post(`/api/v1/authorizations/${a.lago_id}/capture`, {});
  assert.equal(late.status, 422);
  assert.deepEqual((await late.json()).error_details, { authorization: ['expired'] });
  // hold, capture and release postings all balance, and nothing stays held
  const entries = (await ok(await t.api('/api/v1/ledger_entries?per_page=1000&external_customer_id=jobs'))).ledger_entries;
  const held = entries.filter((e) => e.account === 'customer_held_credits');
  assert.deepEqual([...new Set(held.map((e) => e.cause))].sort(), ['capture', 'hold', 'release']);
  assert.equal(held[0].balance_after_cents, 0);
  assert.ok(held.every((e) => e.lago_authorization_id));
});

test('a hold split over two wallets, and a declined one: each answer is what a later read of it shows', async () => {
  // the wallet made first pays last (priority 2), so the answer must not simply show the
  // first payer: the create answer comes from the writer's memory, the read from the tables
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'split', plan_code: 'gpu', external_id: 'split_sub', subscription_at: '2026-05-01T00:00:00Z' } }));
  const later = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'split', currency: 'USD', rate_amount: '0.02', name: 'Later', granted_credits: '100', priority: 2 } }))).wallet;
  const first = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'split', currency: 'USD', rate_amount: '0.01', name: 'First', granted_credits: '300', priority: 1 } }))).wallet;
  // 200 s = 400 cents: 300 from First, 100 from Later
  const created = await ok(await authorize({ external_subscription_id: 'split_sub', code: 'gpu_seconds', properties: { seconds: 200 } }));
  const a = created.authorization;
  assert.equal(a.status, 'authorized');
  assert.equal(a.held_amount_cents, 400);
  assert.equal(a.lago_wallet_id, later.lago_id);
  assert.equal(a.credits, '200.0'); // at Later's 2 cents a credit
  assert.deepEqual(await ok(await t.api(`/api/v1/authorizations/${a.lago_id}`)), created);
  assert.equal((await wallet(first.lago_id)).ongoing_balance_cents, 0);
  assert.equal((await wallet(later.lago_id)).ongoing_balance_cents, 100);
  // declined, it holds nothing: its answer names the first wallet that could have paid, and a
  // read of it says the same
  const refused = await ok(await authorize({ external_subscription_id: 'split_sub', code: 'gpu_seconds', properties: { seconds: 100 } }));
  assert.equal(refused.authorization.status, 'declined');
  assert.equal(refused.authorization.lago_wallet_id, first.lago_id);
  assert.equal(refused.authorization.credits, '200.0'); // 200 cents at First's 1 cent a credit
  assert.deepEqual(await ok(await t.api(`/api/v1/authorizations/${refused.authorization.lago_id}`)), refused);
});

test('declined when no wallet can pay; bad requests are clear', async () => {
  const a = (await ok(await authorize({ external_subscription_id: 'open_sub', code: 'gpu_seconds', properties: { seconds: 251 } }))).authorization;
  assert.equal(a.status, 'declined'); // 502 cents, the wallet holds 500
  assert.equal((await ok(await authorize({ external_subscription_id: 'open_sub', code: 'gpu_seconds', properties: { seconds: 250 } }))).authorization.status, 'authorized');
  const missing = await authorize({ external_subscription_id: 'open_sub', code: 'nope', properties: {} });
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).code, 'billable_metric_not_found');
  const noSub = await authorize({ external_subscription_id: 'nobody', code: 'gpu_seconds' });
  assert.equal(noSub.status, 404);
  const bad = await authorize({ external_subscription_id: 'open_sub', code: 'gpu_seconds', expires_in: 0 });
  assert.equal(bad.status, 422);
  assert.deepEqual((await bad.json()).error_details, { expires_in: ['value_is_out_of_range'] });
  assert.equal((await t.api('/api/v1/authorizations/nope')).status, 404);
});

test('grants expire at their own time: what is left is voided, breakage for paid credits', async () => {
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'clock', currency: 'USD', rate_amount: '1', name: 'Clock', limit: 'hard' } }))).wallet;
  const grant = async (body) => (await ok(await post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: w.lago_id, ...body } }))).wallet_transactions[0];
  await grant({ granted_credits: '2', expiration_at: '2026-05-10T00:00:00Z' });
  const paid = await grant({ paid_credits: '3', expiration_at: '2026-05-20T00:00:00Z' });
  await payWallet(t, w.lago_id);
  await grant({ granted_credits: '1' });
  assert.equal((await event('clock_sub', { seconds: 50 })).status, 200); // 100 cents from the grant expiring first
  await advance('2026-05-15T00:00:00Z');
  let now = await wallet(w.lago_id);
  assert.equal(now.balance_cents, 400); // the first grant's last 100 cents expired
  await advance('2026-05-25T00:00:00Z');
  now = await wallet(w.lago_id);
  assert.equal(now.balance_cents, 100); // the paid grant's 300 cents expired
  const expired = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions?transaction_status=expired`))).wallet_transactions;
  assert.deepEqual(expired.map((x) => x.amount).sort(), ['1.0', '3.0']);
  const consumption = (await ok(await t.api(`/api/v1/wallet_transactions/${paid.lago_id}/consumptions`))).wallet_transaction_consumptions;
  assert.deepEqual(consumption.map((c) => [c.wallet_transaction.transaction_status, c.amount_cents]), [['expired', 300]]);
  const entries = (await ok(await t.api(`/api/v1/ledger_entries?per_page=1000&wallet_id=${w.lago_id}`))).ledger_entries.filter((e) => e.cause === 'expiry');
  assert.deepEqual(entries.map((e) => [e.account, e.direction, e.amount_cents]).sort(), [
    ['breakage', 'credit', 300], ['customer_paid_credits', 'debit', 300],
    ['customer_promotional_credits', 'debit', 100], ['promotional_grants', 'credit', 100]]);
  // expired credits pay for nothing: 1 credit left, 60 s (120 cents) is refused
  assert.equal((await event('clock_sub', { seconds: 60 })).status, 402);
});

test('a wallet expires at its expiration_at: terminated, its credits voided', async () => {
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'clock', currency: 'USD', rate_amount: '1', name: 'Temporary', granted_credits: '7', expiration_at: '2026-06-01T00:00:00Z' } }))).wallet;
  assert.equal(w.expiration_at, '2026-06-01T00:00:00Z');
  await advance('2026-06-01T00:00:01Z');
  const gone = await wallet(w.lago_id);
  assert.equal(gone.status, 'terminated');
  assert.equal(gone.balance_cents, 0);
  assert.equal(gone.terminated_at, '2026-06-01T00:00:01Z');
  const topUp = await post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: w.lago_id, granted_credits: '1' } });
  assert.equal(topUp.status, 422);
});

test('expiry reminders: credits.expiring_soon recorded 30 and 7 days before a grant expires, once each', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'remind', currency: 'USD' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'remind', currency: 'USD', rate_amount: '1', name: 'Remind' } }))).wallet;
  const grant = async (body) => (await ok(await post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: w.lago_id, ...body } }))).wallet_transactions[0];
  const later = await grant({ granted_credits: '5', expiration_at: '2026-07-15T00:00:00Z' });
  await grant({ granted_credits: '1' }); // never expires: never reminded
  const events = async () => (await ok(await t.api('/api/v1/webhook_events?per_page=100'))).webhook_events.filter((e) => e.wallet_transaction?.lago_wallet_id === w.lago_id);
  assert.equal((await events()).length, 0);
  await advance('2026-06-16T00:00:00Z'); // within 30 days of 07-15
  let seen = await events();
  assert.deepEqual(seen.map((e) => [e.webhook_type, e.object_type, e.wallet_transaction.lago_id, e.data.days_before_expiry, e.delivered_at]),
    [['credits.expiring_soon', 'wallet_transaction', later.lago_id, 30, null]]);
  assert.equal(seen[0].wallet_transaction.remaining_amount_cents, 500);
  await advance('2026-06-20T00:00:00Z');
  assert.equal((await events()).length, 1); // not twice
  const soon = await grant({ granted_credits: '2', expiration_at: '2026-06-25T00:00:00Z' });
  // 'soon' expired on 06-25, before the clock got to it: too late for any reminder (one
  // recorded after the expiry would warn of nothing); 'later' is within 7 days
  await advance('2026-07-09T00:00:00Z');
  seen = await events();
  assert.deepEqual(seen.map((e) => [e.wallet_transaction.lago_id, e.data.days_before_expiry]),
    [[later.lago_id, 7], [later.lago_id, 30]]);
  assert.ok(!seen.some((e) => e.wallet_transaction.lago_id === soon.lago_id));
});

// Raised by a black-box audit: a capture timestamped in a period already over was stored as a
// late event, which no wallet pays for, and released its hold: the reserved usage went unpaid.
test('a capture timestamped in a period that is over is refused, and keeps its hold', async () => {
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'backdated', plan_code: 'gpu', external_id: 'backdated_sub', subscription_at: '2026-05-01T00:00:00Z' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'backdated', currency: 'USD', rate_amount: '0.01', name: 'W', granted_credits: '1000', limit: 'hard' } }))).wallet;
  await advance('2026-07-31T23:50:00Z');
  const a = (await ok(await authorize({ external_subscription_id: 'backdated_sub', code: 'gpu_seconds', properties: { seconds: 100 }, expires_in: 86400 }))).authorization;
  assert.equal(a.amount_cents, 200);
  await advance('2026-08-01T00:10:00Z');
  const july = Math.floor(Date.parse('2026-07-31T23:55:00Z') / 1000);
  const refused = await post(`/api/v1/authorizations/${a.lago_id}/capture`, { authorization: { timestamp: july } });
  assert.equal(refused.status, 422);
  assert.deepEqual((await refused.json()).error_details, { timestamp: ['before_current_period'] });
  const held = (await ok(await t.api(`/api/v1/authorizations/${a.lago_id}`))).authorization;
  assert.deepEqual([held.status, held.held_amount_cents], ['authorized', 200]);
  const captured = (await ok(await post(`/api/v1/authorizations/${a.lago_id}/capture`, {}))).authorization;
  assert.equal(captured.captured_amount_cents, 200);
  assert.equal((await wallet(w.lago_id)).balance_cents, 1000 - 200); // 1,000 credits at 1 cent
});

// A hold is priced when it is made; usage recorded before its capture may make the same usage
// dearer (a later tier, taxes rounded up). The merchant who got "authorized" still captures:
// credits pay what they can and the rest is left to the invoice, the wallet never below zero.
// A capture of more than was authorized is refused as any event is.
test('a capture of the authorized usage is never refused for credits, even after a dearer tier', async () => {
  const bm = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'tiered', name: 'Tiered', aggregation_type: 'sum_agg', field_name: 'n' } }))).billable_metric;
  await ok(await post('/api/v1/plans', { plan: { code: 'tiers', name: 'Tiers', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: bm.lago_id, charge_model: 'graduated', properties: { graduated_ranges: [
      { from_value: 0, to_value: 100, per_unit_amount: '0.01', flat_amount: '0' }, { from_value: 101, to_value: null, per_unit_amount: '0.05', flat_amount: '0' }] } }] } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'tiers', plan_code: 'tiers', external_id: 'tiers_sub', subscription_at: '2026-05-01T00:00:00Z' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'tiers', currency: 'USD', rate_amount: '0.01', name: 'T', granted_credits: '300', limit: 'hard' } }))).wallet;
  const tiered = (units) => post('/api/v1/events', { event: { transaction_id: `a${n++}`, external_subscription_id: 'tiers_sub', code: 'tiered', properties: { n: units } } });
  const a = (await ok(await authorize({ external_subscription_id: 'tiers_sub', code: 'tiered', properties: { n: 50 } }))).authorization;
  assert.deepEqual([a.status, a.held_amount_cents], ['authorized', 50]);
  assert.equal((await tiered(100)).status, 200); // 100 cents
  assert.equal((await tiered(30)).status, 200); // 30 units at 5 cents: 150
  assert.equal((await tiered(1)).status, 402); // what is left is held
  // the 50 units now sit at 5 cents: 250, of which 50 held and nothing else left
  const captured = (await ok(await post(`/api/v1/authorizations/${a.lago_id}/capture`, {}))).authorization;
  assert.deepEqual([captured.status, captured.captured_amount_cents], ['captured', 250]);
  const after = await wallet(w.lago_id);
  assert.deepEqual([after.balance_cents, after.ongoing_balance_cents], [0, 0]);
  const usage = (await ok(await t.api('/api/v1/customers/tiers/current_usage?external_subscription_id=tiers_sub'))).customer_usage;
  assert.equal(usage.total_amount_cents, 500); // 300 paid by credits, 200 left to the invoice
  // more than was authorized is refused, and keeps its hold
  await ok(await post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: w.lago_id, granted_credits: '50' } }));
  const b = (await ok(await authorize({ external_subscription_id: 'tiers_sub', code: 'tiered', properties: { n: 10 } }))).authorization;
  assert.equal(b.status, 'authorized');
  const more = await post(`/api/v1/authorizations/${b.lago_id}/capture`, { authorization: { properties: { n: 20 } } });
  assert.equal(more.status, 402);
  assert.equal((await ok(await t.api(`/api/v1/authorizations/${b.lago_id}`))).authorization.status, 'authorized');
  const same = (await ok(await post(`/api/v1/authorizations/${b.lago_id}/capture`, { authorization: { properties: { n: 10 } } }))).authorization;
  assert.equal(same.status, 'captured');
});

// Found by an audit: the authorized properties sent back in another key order were compared as
// text, taken for other usage and refused (402), the hold kept. JSON objects have no order.
test('a capture of the authorized properties in another key order is the authorized usage', async () => {
  const bm = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'keyed', name: 'Keyed', aggregation_type: 'sum_agg', field_name: 'n' } }))).billable_metric;
  await ok(await post('/api/v1/plans', { plan: { code: 'keyed', name: 'Keyed', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: bm.lago_id, charge_model: 'graduated', properties: { graduated_ranges: [
      { from_value: 0, to_value: 100, per_unit_amount: '0.01', flat_amount: '0' }, { from_value: 101, to_value: null, per_unit_amount: '0.05', flat_amount: '0' }] } }] } }));
  const dearer = async (name) => {
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: name, plan_code: 'keyed', external_id: name, subscription_at: '2026-05-01T00:00:00Z' } }));
    const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: name, currency: 'USD', rate_amount: '0.01', name, granted_credits: '300', limit: 'hard' } }))).wallet;
    const a = (await ok(await authorize({ external_subscription_id: name, code: 'keyed', properties: { n: 90, job: 'x' } }))).authorization;
    for (const units of [100, 20]) // the held 90 units now cost 450 cents, 210 of them unheld
      assert.equal((await post('/api/v1/events', { event: { transaction_id: `${name}${units}`, external_subscription_id: name, code: 'keyed', properties: { n: units } } })).status, 200);
    return [a, w];
  };
  const [a, w] = await dearer('keyed_a');
  const captured = (await ok(await post(`/api/v1/authorizations/${a.lago_id}/capture`, { authorization: { properties: { job: 'x', n: 90 } } }))).authorization;
  assert.equal(captured.status, 'captured');
  assert.equal((await wallet(w.lago_id)).balance_cents, 0);
  // another value as written (90.0) is other usage, held to the hard limit as an event is
  const [b] = await dearer('keyed_b');
  const other = await post(`/api/v1/authorizations/${b.lago_id}/capture`, { authorization: { properties: { n: '90.0', job: 'x' } } });
  assert.equal(other.status, 402);
  assert.equal((await ok(await t.api(`/api/v1/authorizations/${b.lago_id}`))).authorization.status, 'authorized');
});

// Found by a fuzzing audit: a null transaction_id replaced the default (the hold's id) with
// nothing, and the capture crashed tallyd. A null is no value: the default stands.
test('a capture with a null transaction_id takes the hold\'s id, as without one', async () => {
  const a = (await ok(await authorize({ external_subscription_id: 'jobs_sub', code: 'gpu_seconds', properties: { seconds: 1 } }))).authorization;
  assert.equal(a.status, 'authorized');
  const captured = (await ok(await post(`/api/v1/authorizations/${a.lago_id}/capture`, { authorization: { transaction_id: null, timestamp: null } }))).authorization;
  assert.deepEqual([captured.status, captured.transaction_id], ['captured', a.lago_id]);
  assert.equal((await t.api(`/api/v1/events/${a.lago_id}`)).status, 200);
});

test('a subscription that ends releases and voids its open holds: no capture of them could succeed', async () => {
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'ends', plan_code: 'gpu', external_id: 'ends_sub' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'ends', currency: 'USD', rate_amount: '0.01', name: 'Ends', granted_credits: '100', limit: 'hard' } }))).wallet;
  const holds = [];
  for (const seconds of [10, 20])
    holds.push((await ok(await authorize({ external_subscription_id: 'ends_sub', code: 'gpu_seconds', properties: { seconds }, expires_in: 86400 }))).authorization);
  assert.equal((await wallet(w.lago_id)).ongoing_balance_cents, 100 - 20 - 40);
  await ok(await t.api('/api/v1/subscriptions/ends_sub', { method: 'DELETE' }));
  const after = await wallet(w.lago_id);
  assert.equal(after.ongoing_balance_cents, 100);
  assert.equal(after.ongoing_usage_balance_cents, 0);
  for (const h of holds) {
    const read = (await ok(await t.api(`/api/v1/authorizations/${h.lago_id}`))).authorization;
    assert.deepEqual([read.status, read.held_amount_cents], ['voided', 0]);
    const capture = await post(`/api/v1/authorizations/${h.lago_id}/capture`, { authorization: {} });
    assert.equal(capture.status, 422);
  }
  const entries = await checkWalletLedger(t, w.lago_id);
  assert.equal(entries.filter((e) => e.cause === 'release' && e.account === 'customer_held_credits').length, 2);
});

// A hold expires at the instant its expires_at states: a whole second, at least expires_in
// after it was made. Found by an audit: the expiry kept the request's fraction of a second,
// which expires_at dropped, so a capture 150 ms past the stated expires_at still went through.
test('a hold expires at the whole second its expires_at states', async () => {
  const now = Date.parse((await ok(await t.api('/api/v1/test_clock'))).test_clock.now);
  const second = Math.floor(now / 1000) * 1000 + 1000;
  const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');
  await advance(iso(second + 600));
  const h = (await ok(await authorize({ external_subscription_id: 'jobs_sub', code: 'gpu_seconds', properties: { seconds: 1 }, expires_in: 1 }))).authorization;
  assert.equal(h.expires_at, iso(second + 2000));
  await advance(iso(second + 1750));
  assert.equal((await ok(await t.api(`/api/v1/authorizations/${h.lago_id}`))).authorization.status, 'authorized');
  await advance(iso(second + 2000));
  assert.equal((await ok(await t.api(`/api/v1/authorizations/${h.lago_id}`))).authorization.status, 'expired');
});

test('a hold lasts no longer than its subscription: ending_at caps it, set before or after', async () => {
  const now = Date.parse((await ok(await t.api('/api/v1/test_clock'))).test_clock.now);
  const at = (hours) => new Date(now + hours * 3600e3).toISOString().replace('.000Z', 'Z');
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'ending', plan_code: 'gpu', external_id: 'ending_sub', ending_at: at(48) } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'ending', currency: 'USD', rate_amount: '0.01', name: 'E', granted_credits: '100', limit: 'hard' } }))).wallet;
  const early = (await ok(await authorize({ external_subscription_id: 'ending_sub', code: 'gpu_seconds', properties: { seconds: 10 }, expires_in: 7 * 86400 }))).authorization;
  assert.equal(early.expires_at, at(48));
  const late = (await ok(await authorize({ external_subscription_id: 'ending_sub', code: 'gpu_seconds', properties: { seconds: 5 }, expires_in: 7 * 86400 }))).authorization;
  await ok(await t.api('/api/v1/subscriptions/ending_sub', { method: 'PUT', body: { subscription: { ending_at: at(36) } } }));
  for (const h of [early, late])
    assert.equal((await ok(await t.api(`/api/v1/authorizations/${h.lago_id}`))).authorization.expires_at, at(36));
  assert.equal((await wallet(w.lago_id)).ongoing_balance_cents, 100 - 20 - 10);
  await advance(at(37));
  for (const h of [early, late])
    assert.equal((await ok(await t.api(`/api/v1/authorizations/${h.lago_id}`))).authorization.status, 'expired');
  assert.equal((await wallet(w.lago_id)).ongoing_balance_cents, 100);
  await checkWalletLedger(t, w.lago_id);
});

test('a capture timestamped while a subscription since replaced was live is refused, and keeps its hold', async () => {
  const bm = (await ok(await t.api('/api/v1/billable_metrics/gpu_seconds'))).billable_metric;
  await ok(await post('/api/v1/plans', { plan: { code: 'gpu_plus', name: 'GPU+', interval: 'monthly', amount_cents: 1000, amount_currency: 'USD', charges: [
    { billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '0.02' } }] } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'upgrader', plan_code: 'gpu', external_id: 'up_sub' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'upgrader', currency: 'USD', rate_amount: '0.01', name: 'U', granted_credits: '1000', limit: 'hard' } }))).wallet;
  const before = (await ok(await t.api('/api/v1/test_clock'))).test_clock.now;
  const h = (await ok(await authorize({ external_subscription_id: 'up_sub', code: 'gpu_seconds', properties: { seconds: 30 }, expires_in: 86400 }))).authorization;
  await advance(new Date(Date.parse(before) + 3600e3).toISOString());
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'upgrader', plan_code: 'gpu_plus', external_id: 'up_sub' } })); // an upgrade: now
  const timestamp = Date.parse(before) / 1000 + 60; // while the first plan was live
  const refused = await post(`/api/v1/authorizations/${h.lago_id}/capture`, { authorization: { timestamp } });
  assert.equal(refused.status, 422);
  assert.deepEqual((await refused.json()).error_details, { timestamp: ['subscription_ended'] });
  assert.equal((await ok(await t.api(`/api/v1/authorizations/${h.lago_id}`))).authorization.status, 'authorized');
  const captured = (await ok(await post(`/api/v1/authorizations/${h.lago_id}/capture`, { authorization: {} }))).authorization;
  assert.deepEqual([captured.status, captured.captured_amount_cents], ['captured', 60]);
  assert.equal((await wallet(w.lago_id)).balance_cents, 1000 - 60);
  await checkWalletLedger(t, w.lago_id);
});

// Found by a black-box audit: holds stayed with the subscription they were priced on, so once
// an upgrade had replaced it, ending the live one (or bounding it with ending_at) left them
// authorized, their credits reserved for a week and the customer's other usage refused (402).
test('holds made before an upgrade are the live subscription\'s: its ending_at bounds them, its end voids them', async () => {
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'upgrader2', plan_code: 'gpu', external_id: 'up2_sub' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'upgrader2', currency: 'USD', rate_amount: '0.01', name: 'U', granted_credits: '1000', limit: 'hard' } }))).wallet;
  const now = Date.parse((await ok(await t.api('/api/v1/test_clock'))).test_clock.now);
  const holds = [];
  for (const seconds of [30, 20])
    holds.push((await ok(await authorize({ external_subscription_id: 'up2_sub', code: 'gpu_seconds', properties: { seconds }, expires_in: 7 * 86400 }))).authorization);
  assert.equal((await wallet(w.lago_id)).ongoing_balance_cents, 1000 - 100);
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'upgrader2', plan_code: 'gpu_plus', external_id: 'up2_sub' } })); // an upgrade
  const ending = new Date(now + 2 * 86400e3).toISOString();
  await ok(await t.api('/api/v1/subscriptions/up2_sub', { method: 'PUT', body: { subscription: { ending_at: ending } } }));
  for (const h of holds)
    assert.equal((await ok(await t.api(`/api/v1/authorizations/${h.lago_id}`))).authorization.expires_at, ending.replace('.000Z', 'Z'));
  await ok(await t.api('/api/v1/subscriptions/up2_sub', { method: 'DELETE' }));
  for (const h of holds) {
    const a = (await ok(await t.api(`/api/v1/authorizations/${h.lago_id}`))).authorization;
    assert.deepEqual([a.status, a.held_amount_cents], ['voided', 0]);
  }
  assert.equal((await wallet(w.lago_id)).ongoing_balance_cents, 1000);
  await checkWalletLedger(t, w.lago_id);
});

// Holds priced an event's step only for the aggregations of pay-in-advance charges (count,
// sum, unique count): one on a max, a latest or a time-weighted sum was refused as
// cannot_be_priced, though the same wallet paid those metrics' events.
test('a hold prices an event of a max, a latest and a time-weighted sum, and its capture debits what it held', async () => {
  const metrics = {};
  for (const [code, aggregation_type] of [['peak', 'max_agg'], ['level', 'latest_agg'], ['gpus', 'weighted_sum_agg']])
    metrics[code] = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code, name: code, aggregation_type, field_name: 'n' } }))).billable_metric.lago_id;
  await ok(await post('/api/v1/plans', { plan: { code: 'shapes', name: 'Shapes', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges:
    Object.values(metrics).map((id) => ({ billable_metric_id: id, charge_model: 'standard', properties: { amount: '1' } })) } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'shapes', plan_code: 'shapes', external_id: 'shapes_sub' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'shapes', currency: 'USD', rate_amount: '0.01', granted_credits: '100000', limit: 'hard' } }))).wallet;
  const usage = async () => (await ok(await t.api('/api/v1/customers/shapes/current_usage?external_subscription_id=shapes_sub'))).customer_usage;
  for (const code of Object.keys(metrics)) {
    await ok(await post('/api/v1/events', { event: { transaction_id: `shape_${code}`, external_subscription_id: 'shapes_sub', code, properties: { n: 5 } } }));
    const before = (await usage()).total_amount_cents;
    const h = (await ok(await authorize({ external_subscription_id: 'shapes_sub', code, properties: { n: 7 } }))).authorization;
    assert.equal(h.status, 'authorized', code);
    const captured = (await ok(await post(`/api/v1/authorizations/${h.lago_id}/capture`, { authorization: {} }))).authorization;
    const after = (await usage()).total_amount_cents;
    assert.equal(captured.captured_amount_cents, h.amount_cents, code);
    assert.equal(after - before, h.amount_cents, code); // the hold priced the step the event made
    assert.ok(h.amount_cents > 0, code);
    assert.equal((await wallet(w.lago_id)).consumed_credits, `${after}.0`, code);
  }
  await checkWalletLedger(t, w.lago_id);
});

// A hold on a time-weighted sum is priced from when it is made to the period's end; a capture
// timestamped before the hold was made is dearer (more of the period), so it is a capture of
// other usage: refused, its hold kept, when a hard wallet cannot cover it, as the same event
// sent alone is. Found by an audit: such a capture went through and left 2850 cents on a hard
// wallet's invoice.
test('a capture timestamped before its hold was made is other usage, held to the limit', async () => {
  const gauge = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'gauge', name: 'gauge', aggregation_type: 'weighted_sum_agg', field_name: 'n' } }))).billable_metric;
  await ok(await post('/api/v1/plans', { plan: { code: 'gauged', name: 'Gauged', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: gauge.lago_id, charge_model: 'standard', properties: { amount: '31' } }] } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'gauged', plan_code: 'gauged', external_id: 'gauged_sub', subscription_at: '2026-05-01T00:00:00Z' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'gauged', currency: 'USD', rate_amount: '1', granted_credits: '25', limit: 'hard' } }))).wallet;
  const sub = (await ok(await t.api('/api/v1/subscriptions/gauged_sub'))).subscription;
  const from = Date.parse(sub.current_billing_period_started_at);
  const now = Date.parse((await ok(await t.api('/api/v1/test_clock'))).test_clock.now);
  if (now - from < 10 * 86400e3) await advance(new Date(from + 10 * 86400e3).toISOString()); // days into it
  const h = (await ok(await authorize({ external_subscription_id: 'gauged_sub', code: 'gauge', properties: { n: 1 } }))).authorization;
  assert.equal(h.status, 'authorized');
  const early = Math.floor(from / 1000) + 60; // the period's first minute: most of 31 dollars
  const r = await post(`/api/v1/authorizations/${h.lago_id}/capture`, { authorization: { properties: { n: 1 }, timestamp: early } });
  const body = await r.json();
  assert.equal(r.status, 402, JSON.stringify(body));
  assert.equal(body.code, 'insufficient_credits');
  assert.equal((await ok(await t.api(`/api/v1/authorizations/${h.lago_id}`))).authorization.status, 'authorized'); // kept
  // captured as authorized (no timestamp: now) it is paid from what it holds
  const captured = (await ok(await post(`/api/v1/authorizations/${h.lago_id}/capture`, { authorization: {} }))).authorization;
  assert.equal(captured.captured_amount_cents, h.amount_cents);
  await checkWalletLedger(t, w.lago_id);
});

// On the real clock a hold past its expires_at waits for the clock's sweep (each second) to be
// released; meanwhile a void answered 200 "voided" where a capture answered 422 "expired", so
// the hold's end depended on which came first. Both are refused as expired now, before the
// sweep or after it, and the sweep releases the hold.
test('past expires_at, a void is refused as a capture is, before the sweep or after it', async () => {
  const r = await startWithOrg();
  try {
    const rpost = (path, body) => r.api(path, { method: 'POST', body });
    const bm = await (await rpost('/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' } })).json();
    assert.ok(bm.billable_metric, JSON.stringify(bm));
    await rpost('/api/v1/plans', { plan: { code: 'calls', name: 'Calls', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
      { billable_metric_id: bm.billable_metric.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } });
    await rpost('/api/v1/subscriptions', { subscription: { external_customer_id: 'rt', plan_code: 'calls', external_id: 'rt_sub' } });
    const w = (await ok(await rpost('/api/v1/wallets', { wallet: { external_customer_id: 'rt', currency: 'USD', rate_amount: '1', name: 'RT', granted_credits: '10', limit: 'hard' } }))).wallet;
    const ids = [];
    for (let round = 0; round < 3; round++) {
      const a = (await ok(await rpost('/api/v1/authorizations', { authorization: { external_subscription_id: 'rt_sub', code: 'calls', expires_in: 1 } }))).authorization;
      assert.equal(a.status, 'authorized');
      ids.push(a.lago_id);
      // the hold expires at its expires_at, the whole second after a second from now
      const due = Date.parse(a.expires_at);
      assert.equal(due % 1000, 0, a.expires_at);
      while (Date.now() <= due + 5) await new Promise((done) => setTimeout(done, 2));
      const voided = await rpost(`/api/v1/authorizations/${a.lago_id}/void`, {});
      const body = await voided.json();
      assert.equal(voided.status, 422, JSON.stringify(body));
      assert.deepEqual(body.error_details, { authorization: ['expired'] });
    }
    // the sweep releases them all: nothing stays held, the status says how each ended
    let held;
    for (let i = 0; i < 100; i++) {
      held = (await ok(await r.api(`/api/v1/wallets/${w.lago_id}`))).wallet.ongoing_balance_cents;
      if (held === 1000) break;
      await new Promise((done) => setTimeout(done, 50));
    }
    assert.equal(held, 1000);
    for (const id of ids)
      assert.equal((await ok(await r.api(`/api/v1/authorizations/${id}`))).authorization.status, 'expired');
  } finally {
    await r.cleanup();
  }
});

// Found by an audit: a hold priced the subscription's whole next debit (another charge's tax
// raised since its last debit included) but reserved it all in the wallets that may pay the
// event's own metric; one that may not pay the other charge held its part, the event itself
// was refused (402), and the capture left that part to the invoice past a hard limit. A raise
// is now taken by the edit that makes it (raise_debits.test.mjs): what the wallets that may pay
// that charge cannot cover is the invoice's there, and no hold prices it again. Each hold is
// priced and held where its own charge may be paid, or declined, as the event.
test('a hold reserves each charge\'s part in the wallets that may pay that charge, or is declined as the event is', async () => {
  await ok(await post('/api/v1/taxes', { tax: { code: 'raised', name: 'Raised', rate: '10' } }));
  const metric = async (code, aggregation_type, field_name) => (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code, name: code, aggregation_type, field_name } }))).billable_metric.lago_id;
  const gb = await metric('parts_gb', 'sum_agg', 'v'), cnt = await metric('parts_cnt', 'count_agg');
  await ok(await post('/api/v1/plans', { plan: { code: 'parts', name: 'Parts', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: gb, charge_model: 'standard', pay_in_advance: true, properties: { amount: '1' }, tax_codes: ['raised'] },
    { billable_metric_id: cnt, charge_model: 'standard', pay_in_advance: true, properties: { amount: '0.10' } }] } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'parts', plan_code: 'parts', external_id: 'parts_sub' } }));
  const newWallet = async (extra) => (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'parts', currency: 'USD', rate_amount: '1', limit: 'hard', ...extra } }))).wallet;
  const cntOnly = await newWallet({ name: 'cnt only', granted_credits: '50', priority: 1, applies_to: { billable_metric_codes: ['parts_cnt'] } });
  const any = await newWallet({ name: 'any', granted_credits: '13', priority: 2 });
  const send = (code, properties = {}) => post('/api/v1/events', { event: { transaction_id: `a${n++}`, external_subscription_id: 'parts_sub', code, properties } });
  await ok(await send('parts_gb', { v: 10 })); // 10.00 + 1.00 tax: from `any`, 2.00 left
  assert.equal((await wallet(any.lago_id)).balance_cents, 200);
  await ok(await t.api('/api/v1/taxes/raised', { method: 'PUT', body: { tax: { rate: '50' } } })); // gb owes 4.00 more
  // the edit took `any`'s 2.00; the other 2.00 is the invoice's (cntOnly may not pay gb)
  assert.deepEqual([(await wallet(any.lago_id)).balance_cents, (await wallet(cntOnly.lago_id)).balance_cents], [0, 5000]);
  const hold = async (code, properties) => (await ok(await authorize({ external_subscription_id: 'parts_sub', code, properties }))).authorization;
  // a gb call (1.50) may be paid by `any` alone, which is empty: declined, as the event
  const declined = await hold('parts_gb', { v: 1 });
  assert.deepEqual([declined.status, declined.amount_cents], ['declined', 150]);
  assert.equal((await send('parts_gb', { v: 1 })).status, 402);
  assert.equal((await wallet(cntOnly.lago_id)).ongoing_balance_cents, 5000); // nothing held
  // a cnt call is its own 0.10 alone, held where cnt may be paid
  const held = await hold('parts_cnt', {});
  assert.deepEqual([held.status, held.amount_cents, held.held_amount_cents], ['authorized', 10, 10]);
  assert.deepEqual([(await wallet(cntOnly.lago_id)).ongoing_balance_cents, (await wallet(any.lago_id)).ongoing_balance_cents], [4990, 0]);
  const captured = (await ok(await post(`/api/v1/authorizations/${held.lago_id}/capture`, {}))).authorization;
  assert.deepEqual([captured.status, captured.captured_amount_cents], ['captured', 10]);
  assert.deepEqual([(await wallet(cntOnly.lago_id)).balance_cents, (await wallet(any.lago_id)).balance_cents], [4990, 0]);
  const usage = (await ok(await t.api('/api/v1/customers/parts/current_usage?external_subscription_id=parts_sub'))).customer_usage;
  assert.equal(usage.total_amount_cents, 1500 + 10); // 1300 + 10 debited, 200 the invoice's
  for (const w of [cntOnly, any]) await checkWalletLedger(t, w.lago_id);
});

// Found by a black-box audit: a capture sent with "transaction_id": "" stored an event whose
// transaction id was empty (POST /events refuses it), which no GET could fetch, and every later
// such capture on the subscription was refused as its duplicate.
test('a capture with an empty transaction_id is refused as POST /events refuses it, and keeps its hold', async () => {
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'empty_tx', plan_code: 'gpu', external_id: 'empty_tx_sub' } }));
  await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'empty_tx', currency: 'USD', rate_amount: '0.01', name: 'W', granted_credits: '1000' } }));
  const a = (await ok(await authorize({ external_subscription_id: 'empty_tx_sub', code: 'gpu_seconds', properties: { seconds: 10 } }))).authorization;
  const refused = await post(`/api/v1/authorizations/${a.lago_id}/capture`, { authorization: { transaction_id: '' } });
  assert.equal(refused.status, 422);
  assert.deepEqual((await refused.json()).error_details, { transaction_id: ['value_is_mandatory'] });
  // so is one of only whitespace, as POST /events (found by an audit: it was accepted there)
  const blank = await post(`/api/v1/authorizations/${a.lago_id}/capture`, { authorization: { transaction_id: ' \t ' } });
  assert.equal(blank.status, 422);
  assert.deepEqual((await blank.json()).error_details, { transaction_id: ['value_is_mandatory'] });
  const held = (await ok(await t.api(`/api/v1/authorizations/${a.lago_id}`))).authorization;
  assert.equal(held.status, 'authorized');
  // null still means the hold's own id
  const captured = (await ok(await post(`/api/v1/authorizations/${a.lago_id}/capture`, { authorization: { transaction_id: null } }))).authorization;
  assert.equal(captured.transaction_id, a.lago_id);
  const events = (await ok(await t.api('/api/v1/events?external_subscription_id=empty_tx_sub'))).events;
  assert.deepEqual(events.map((e) => e.transaction_id), [a.lago_id]);
});

// As POST /events, holds take integer ids as their decimal text (an audit found events alone did).
test('a hold and its capture take an integer external_subscription_id and transaction_id', async () => {
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'numeric', plan_code: 'gpu', external_id: '4242' } }));
  await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'numeric', currency: 'USD', rate_amount: '1', granted_credits: '10' } }));
  const a = (await ok(await authorize({ external_subscription_id: 4242, code: 'gpu_seconds', properties: { seconds: 10 }, expires_in: 60 }))).authorization;
  const captured = (await ok(await post(`/api/v1/authorizations/${a.lago_id}/capture`, { authorization: { transaction_id: 777001 } }))).authorization;
  assert.equal(captured.transaction_id, '777001');
  const ev = await ok(await t.api('/api/v1/events/777001'));
  assert.deepEqual([ev.event.transaction_id, ev.event.external_subscription_id], ['777001', '4242']);
  const r = await authorize({ external_subscription_id: 1.5, code: 'gpu_seconds', properties: { seconds: 10 } });
  assert.deepEqual([r.status, (await r.json()).error_details], [422, { external_subscription_id: ['invalid_type'] }]);
});

// Found by an input audit: a capture whose `authorization` root was a string, a number or an
// array, a body `[]`, or the real usage sent beside the root (`{"properties":…}`) was answered
// 200 and recorded the hold's authorized usage; the corrected capture was then refused as
// already captured. A void took any body, malformed JSON included. Both now read a body as
// every route does: no body or `{}` is no fields, anything else not `{"authorization":{…}}` is
// a 400 that changes nothing.
test('a capture or void with a malformed body is a 400 and leaves the hold as it was', async () => {
  const a = (await ok(await authorize({ external_subscription_id: 'jobs_sub', code: 'gpu_seconds', properties: { seconds: 2 } }))).authorization;
  assert.equal(a.status, 'authorized');
  const raw = (what, body) => t.api(`/api/v1/authorizations/${a.lago_id}/${what}`, { method: 'POST', raw: body });
  const bad = ['{"authorization":"oops"}', '{"authorization":5}', '{"authorization":[]}', '[]', 'null',
    '{"properties":{"seconds":100}}', '{"authorization":', 'hello', '{} x'];
  for (const body of bad) {
    for (const what of ['capture', 'void']) {
      const r = await raw(what, body);
      assert.equal(r.status, 400, `${what} ${body}: ${r.status}`);
      assert.match((await r.json()).error, /^BadRequest/);
    }
  }
  assert.equal((await ok(await t.api(`/api/v1/authorizations/${a.lago_id}`))).authorization.status, 'authorized');
  // the usage sent right is what is recorded
  const captured = (await ok(await raw('capture', '{"authorization":{"properties":{"seconds":1}}}'))).authorization;
  assert.deepEqual([captured.status, captured.captured_amount_cents], ['captured', 2]);
  // a void without a body, or with an empty object or a null root, still voids
  for (const body of [undefined, '{}', '{"authorization":null}']) {
    const b = (await ok(await authorize({ external_subscription_id: 'jobs_sub', code: 'gpu_seconds', properties: { seconds: 1 } }))).authorization;
    const r = await t.api(`/api/v1/authorizations/${b.lago_id}/void`, { method: 'POST', raw: body });
    assert.equal((await ok(r)).authorization.status, 'voided', String(body));
  }
});

// An audit found a declined hold of a customer without a wallet answering every unbilled cent of
// the period (700 for 6 calls used and 1 asked): a hold prices the event's own step, declined or
// not, as a wallet made now would hold it.
test('a declined hold prices the event alone: without a wallet, with a terminated one, or too few credits', async () => {
  const hold = async (customer, seconds) => (await ok(await authorize({ external_subscription_id: `${customer}_sub`, code: 'gpu_seconds', properties: { seconds } }))).authorization;
  for (const c of ['bare', 'ended', 'short'])
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'gpu', external_id: `${c}_sub`, subscription_at: '2026-05-01T00:00:00Z' } }));
  // no wallet: 300 s used (600 cents, the invoice's), then 50 s asked: 100 cents
  assert.equal((await event('bare_sub', { seconds: 300 })).status, 200);
  const bare = await hold('bare', 50);
  assert.deepEqual([bare.status, bare.amount_cents, bare.credits, bare.held_amount_cents, bare.lago_wallet_id], ['declined', 100, null, 0, null]);
  assert.deepEqual(await ok(await t.api(`/api/v1/authorizations/${bare.lago_id}`)), { authorization: bare });
  // a wallet that paid 10 s and was terminated; 100 s used since (the invoice's): 50 s asked
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'ended', currency: 'USD', rate_amount: '1', granted_credits: '5' } }))).wallet;
  assert.equal((await event('ended_sub', { seconds: 10 })).status, 200);
  await ok(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'DELETE' }));
  assert.equal((await event('ended_sub', { seconds: 100 })).status, 200);
  const ended = await hold('ended', 50);
  assert.deepEqual([ended.status, ended.amount_cents, ended.held_amount_cents], ['declined', 100, 0]);
  // a wallet made after 300 s of usage, with 1 credit: 60 s asked is 120 cents, declined
  assert.equal((await event('short_sub', { seconds: 300 })).status, 200);
  const s = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'short', currency: 'USD', rate_amount: '1', granted_credits: '1', limit: 'hard' } }))).wallet;
  const short = await hold('short', 60);
  assert.deepEqual([short.status, short.amount_cents, short.credits, short.lago_wallet_id], ['declined', 120, '1.2', s.lago_id]);
  const fits = await hold('short', 50);
  assert.deepEqual([fits.status, fits.amount_cents, fits.credits], ['authorized', 100, '1.0']);
  // spent below what a hold asks: still the step alone
  assert.equal((await post(`/api/v1/authorizations/${fits.lago_id}/void`, {})).status, 200);
  assert.equal((await event('short_sub', { seconds: 30 })).status, 200);
  const later = await hold('short', 25);
  assert.deepEqual([later.status, later.amount_cents, later.credits], ['declined', 50, '0.5']);
});

// Found by an audit: a client that lost a hold's lago_id (sent without an Idempotency-Key) had
// no way to find its open holds, to void them, but the ledger. The list is of open holds.
test('GET /authorizations lists the open holds, soonest expiry first, by customer or subscription', async () => {
  for (const c of ['listed_a', 'listed_b']) {
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'gpu', external_id: `${c}_sub`, subscription_at: '2026-05-01T00:00:00Z' } }));
    await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: c, currency: 'USD', rate_amount: '0.01', name: c, granted_credits: '1000' } }));
  }
  const hold = async (c, expires_in) => (await ok(await authorize({ external_subscription_id: `${c}_sub`, code: 'gpu_seconds', properties: { seconds: 1 }, expires_in }))).authorization;
  const late = await hold('listed_a', 7200), soon = await hold('listed_a', 60), other = await hold('listed_b', 600);
  const captured = await hold('listed_a', 600), voided = await hold('listed_b', 600);
  await ok(await post(`/api/v1/authorizations/${captured.lago_id}/capture`, {}));
  await ok(await post(`/api/v1/authorizations/${voided.lago_id}/void`, {}));
  const list = async (query) => ok(await t.api(`/api/v1/authorizations?${query}`));
  const ofA = await list('external_customer_id=listed_a');
  assert.deepEqual(ofA.authorizations.map((a) => a.lago_id), [soon.lago_id, late.lago_id]);
  assert.deepEqual(ofA.authorizations[0], (await ok(await t.api(`/api/v1/authorizations/${soon.lago_id}`))).authorization);
  assert.equal(ofA.meta.total_count, 2);
  assert.deepEqual((await list('external_subscription_id=listed_b_sub')).authorizations.map((a) => a.lago_id), [other.lago_id]);
  assert.equal((await list('external_customer_id=listed_a&external_subscription_id=listed_b_sub')).authorizations.length, 0);
  const page = await list('external_customer_id=listed_a&per_page=1&page=2');
  assert.deepEqual([page.authorizations.map((a) => a.lago_id), page.meta.total_pages], [[late.lago_id], 2]);
  const all = (await list('per_page=100')).authorizations;
  assert.ok(all.every((a) => a.status === 'authorized'));
  assert.ok([soon, late, other].every((h) => all.some((a) => a.lago_id === h.lago_id)));
  // a void through the list's ids releases it; it leaves the list
  await ok(await post(`/api/v1/authorizations/${soon.lago_id}/void`, {}));
  assert.deepEqual((await list('external_customer_id=listed_a')).authorizations.map((a) => a.lago_id), [late.lago_id]);
  const unknown = await t.api('/api/v1/authorizations?status=captured');
  assert.equal(unknown.status, 422);
  assert.deepEqual((await unknown.json()).error_details, { status: ['not_supported'] });
});
