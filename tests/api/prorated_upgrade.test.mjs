// Prorated recurring charges across an upgrade (audit 15, F1). Lago's
// Subscription#date_diff_with_timezone takes one day off for a subscription that is
// `terminated? && upgraded?` ("the date of the upgrade will be included in the first invoice
// for the new plan"), and ProratedAggregations::SumService#persisted_sum weighs the units
// carried in by it: the upgraded subscription bills them up to the day before the upgrade, the
// new one from the upgrade's day, so the period's carried units cost the period once. Units
// added within the period weigh DATE(to) - DATE(timestamp) + 1 with no such correction (the
// upgrade day is in both invoices for them), and a termination that is not an upgrade keeps
// its day. A prorated unique count (Events::Stores::Postgres::UniqueCountQuery) has no such
// correction either: its carried users count the upgrade day in both.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
const post = async (path, body) => t.api(path, { method: 'POST', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const advance = async (to) => ok(await post('/api/v1/test_clock/advance', { test_clock: { to } }));
let n = 0;
const seat = (sub, value) => ({ transaction_id: `s${n++}`, external_subscription_id: sub, code: 'seats', properties: { n: value } });
const user = (sub, id) => ({ transaction_id: `u${n++}`, external_subscription_id: sub, code: 'users', properties: { user: id } });
const sent = async (...events) => ok(await post('/api/v1/events/batch', { events }));
const usage = async (c) => (await ok(await t.api(`/api/v1/customers/${c}/current_usage?external_subscription_id=${c}`))).customer_usage.amount_cents;
const wallets = {};
const paid = async (c) => 100000 - (await ok(await t.api(`/api/v1/wallets/${wallets[c]}`))).wallet.balance_cents;
const subscribe = async (c, plan_code) => ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code, external_id: c } }));

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-01-01T00:00:00Z']);
  const metric = async (code, type, field) => (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code, name: code, aggregation_type: type, field_name: field, recurring: true } }))).billable_metric.lago_id;
  const seats = await metric('seats', 'sum_agg', 'n');
  const users = await metric('users', 'unique_count_agg', 'user');
  // $28 a month: a day of February (28 days) costs $1; the big plans' fees make them upgrades
  for (const [code, amount, bm] of [['small', 1000, seats], ['big', 2000, seats], ['usmall', 1000, users], ['ubig', 2000, users]])
    await ok(await post('/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents: amount, amount_currency: 'USD', charges: [{ billable_metric_id: bm, charge_model: 'standard', prorated: true, properties: { amount: '28' } }] } }));
  for (const [c, plan] of [['up', 'small'], ['del', 'small'], ['mid', 'small'], ['uup', 'usmall']]) {
    await ok(await post('/api/v1/customers', { customer: { external_id: c, currency: 'USD' } }));
    wallets[c] = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: c, currency: 'USD', rate_amount: '1', name: 'W', granted_credits: '1000' } }))).wallet.lago_id;
    await subscribe(c, plan);
  }
  // one seat (one user) from January 1st: January's 31 days cost $28
  await sent(seat('up', 1), seat('del', 1), user('uup', 'ann'));
});
after(async () => { await t.cleanup(); });

test('an upgrade on Feb 11: the seat carried into February costs February once ($28, not $29)', async () => {
  await advance('2026-02-01T00:00:00Z');
  await advance('2026-02-05T00:00:00Z');
  await sent(seat('mid', 1)); // added within February: Feb 5..28
  await advance('2026-02-11T00:00:00Z');
  await subscribe('up', 'big');
  await subscribe('mid', 'big');
  await subscribe('uup', 'ubig');
  const del = await t.api('/api/v1/subscriptions/del', { method: 'DELETE' });
  assert.equal(del.status, 200);
  // the new subscriptions carry the seat from Feb 11: 18 days
  assert.equal(await usage('up'), 1800);
  assert.equal(await usage('mid'), 1800);
  // January 28 + the upgraded subscription's Feb 1..10 (10) + the new one's Feb 11..28 (18)
  assert.equal(await paid('up'), 5600);
  // a termination that is not an upgrade keeps its day: January 28 + Feb 1..11 (11)
  assert.equal(await paid('del'), 3900);
  // a seat added within the period keeps the upgrade day in both, as Lago's two invoices:
  // Feb 5..11 (7) on the old plan + Feb 11..28 (18) on the new
  assert.equal(await paid('mid'), 2500);
  // a prorated unique count has no upgrade correction in Lago: 28 + Feb 1..11 (11) + 18
  assert.equal(await usage('uup'), 1800);
  assert.equal(await paid('uup'), 5700);
});

test('a restart, clean or SIGKILL, rebuilds the same usage and wallets', async () => {
  const all = async () => Promise.all([usage('up'), usage('mid'), usage('uup'), paid('up'), paid('del'), paid('mid'), paid('uup')]);
  const before = await all();
  await t.restart();
  assert.deepEqual(await all(), before);
  await t.restart({ kill: true });
  assert.deepEqual(await all(), before);
  // and the period's close bills nothing more
  await advance('2026-03-01T00:00:00Z');
  assert.equal(await paid('up'), 5600 + 2800);
});
