// Subscriptions over real HTTP on a test clock: periods in several time zones (month ends,
// leap years, DST), pending starts, trials, upgrades now, downgrades at period end,
// termination, cancellation, currencies, listing by status.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
before(async () => {
  t = await startWithOrg(['--test-clock', '2024-01-31T12:00:00Z']);
  for (const [code, interval, amount, currency, extra] of [
    ['monthly', 'monthly', 4900, 'EUR', {}],
    ['cheap', 'monthly', 900, 'EUR', {}],
    ['yearly', 'yearly', 49000, 'EUR', {}],
    ['weekly', 'weekly', 100, 'EUR', {}],
    ['quarterly', 'quarterly', 10000, 'EUR', {}],
    ['semiannual', 'semiannual', 20000, 'EUR', {}],
    ['trial', 'monthly', 1000, 'EUR', { trial_period: 14 }],
    ['dollars', 'monthly', 1000, 'USD', {}],
  ]) {
    const r = await t.api('/api/v1/plans', { method: 'POST', body: { plan: { code, name: code, interval, amount_cents: amount, amount_currency: currency, ...extra } } });
    assert.equal(r.status, 200);
  }
});
after(async () => { await t.cleanup(); });

const call = async (method, path, body) => {
  const r = await t.api(path, { method, body });
  return { status: r.status, body: await r.json() };
};
const advance = (to) => call('POST', '/api/v1/test_clock/advance', { test_clock: { to } });
const customer = (external_id, timezone) => call('POST', '/api/v1/customers', { customer: { external_id, timezone } });
const subscribe = (external_customer_id, plan_code, external_id, extra = {}) =>
  call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id, plan_code, external_id, ...extra } });
const period = (s) => [s.current_billing_period_started_at, s.current_billing_period_ending_at];

// started before the period: the whole period shows (a first period shows from the start)
const past = { subscription_at: '2023-06-01T00:00:00Z' };

test('calendar periods in UTC and in other zones, across month ends and a leap day', async () => {
  let r = await subscribe('utc', 'monthly', 'utc_sub', past);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.subscription.status, 'active');
  assert.deepEqual(period(r.body.subscription), ['2024-01-01T00:00:00Z', '2024-01-31T23:59:59Z']);
  await customer('paris', 'Europe/Paris');
  r = await subscribe('paris', 'monthly', 'paris_sub', past);
  assert.deepEqual(period(r.body.subscription), ['2023-12-31T23:00:00Z', '2024-01-31T22:59:59Z']);
  // 12:00Z Jan 31 is already Feb 1 in Kiritimati (+14): its February has 29 days in 2024.
  await customer('kiritimati', 'Pacific/Kiritimati');
  r = await subscribe('kiritimati', 'monthly', 'kiri_sub', past);
  assert.deepEqual(period(r.body.subscription), ['2024-01-31T10:00:00Z', '2024-02-29T09:59:59Z']);
  await customer('kolkata', 'Asia/Kolkata');
  for (const [plan, start, end] of [
    ['yearly', '2023-12-31T18:30:00Z', '2024-12-31T18:29:59Z'],
    ['quarterly', '2023-12-31T18:30:00Z', '2024-03-31T18:29:59Z'],
    ['semiannual', '2023-12-31T18:30:00Z', '2024-06-30T18:29:59Z'],
    ['weekly', '2024-01-28T18:30:00Z', '2024-02-04T18:29:59Z'], // Monday Jan 29 local
  ]) {
    r = await subscribe('kolkata', plan, `kolkata_${plan}`, past);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(period(r.body.subscription), [start, end], plan);
  }
});

test('anniversary periods keep a month-end anchor and cross DST in New York', async () => {
  await customer('ny', 'America/New_York');
  // Jan 31 local anniversary: Feb 29 (leap), Mar 31, Apr 30 ...
  const r = await subscribe('ny', 'monthly', 'ny_sub', { billing_time: 'anniversary' });
  assert.equal(r.body.subscription.billing_time, 'anniversary');
  // its first period, from the subscription's start, as Lago's charges_from_datetime
  assert.deepEqual(period(r.body.subscription), [r.body.subscription.started_at.replace('.000', ''), '2024-02-29T04:59:59Z']);
  await advance('2024-03-15T12:00:00Z'); // after the March 10 change to EDT (-4)
  let s = (await call('GET', '/api/v1/subscriptions/ny_sub')).body.subscription;
  assert.deepEqual(period(s), ['2024-02-29T05:00:00Z', '2024-03-31T03:59:59Z']);
  await advance('2024-04-10T00:00:00Z');
  s = (await call('GET', '/api/v1/subscriptions/ny_sub')).body.subscription;
  assert.deepEqual(period(s), ['2024-03-31T04:00:00Z', '2024-04-30T03:59:59Z']);
  // Chatham (+13:45 / +12:45) and Lord Howe (30-minute DST)
  await customer('chatham', 'Pacific/Chatham');
  s = (await subscribe('chatham', 'monthly', 'chatham_sub', past)).body.subscription;
  // April 1 is still in daylight time (+13:45, until April 7); May 1 is standard (+12:45)
  assert.deepEqual(period(s), ['2024-03-31T10:15:00Z', '2024-04-30T11:14:59Z']);
  await customer('lordhowe', 'Australia/Lord_Howe');
  s = (await subscribe('lordhowe', 'monthly', 'lh_sub', past)).body.subscription;
  assert.deepEqual(period(s), ['2024-03-31T13:00:00Z', '2024-04-30T13:29:59Z']);
});

test('a future subscription_at is pending until the clock reaches it; trials end on time', async () => {
  let r = await subscribe('later', 'trial', 'later_sub', { subscription_at: '2024-05-01T00:00:00Z' });
  assert.equal(r.body.subscription.status, 'pending');
  assert.equal(r.body.subscription.started_at, null);
  // the default list shows active subscriptions only
  let list = (await call('GET', '/api/v1/subscriptions?external_customer_id=later')).body;
  assert.equal(list.meta.total_count, 0);
  list = (await call('GET', '/api/v1/subscriptions?external_customer_id=later&status[]=pending')).body;
  assert.equal(list.subscriptions[0].external_id, 'later_sub');
  await advance('2024-05-10T00:00:00Z');
  r = await call('GET', '/api/v1/subscriptions/later_sub');
  assert.equal(r.body.subscription.status, 'active');
  assert.equal(r.body.subscription.started_at, '2024-05-01T00:00:00.000Z');
  assert.equal(r.body.subscription.trial_ended_at, null);
  await advance('2024-05-15T00:00:00Z');
  r = await call('GET', '/api/v1/subscriptions/later_sub');
  assert.equal(r.body.subscription.trial_ended_at, '2024-05-15T00:00:00Z');
});

test('upgrade takes effect at once; downgrade at the end of the period', async () => {
  await advance('2024-06-10T00:00:00Z');
  let r = await subscribe('changer', 'monthly', 'chg');
  const first = r.body.subscription;
  r = await subscribe('changer', 'yearly', 'chg'); // 49000/yr > 4900*12? no: 49000 < 58800
  assert.equal(r.body.subscription.plan_code, 'monthly');
  assert.equal(r.body.subscription.next_plan_code, 'yearly');
  assert.equal(r.body.subscription.downgrade_plan_date, '2024-07-01');
  assert.equal(r.body.subscription.lago_id, first.lago_id);
  // a second downgrade replaces the one scheduled, as Lago's does (it was refused): cheap, then
  // yearly again; the replaced ones read canceled, and only the last takes effect
  r = await subscribe('changer', 'cheap', 'chg');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.subscription.next_plan_code, 'cheap');
  r = await subscribe('changer', 'yearly', 'chg');
  assert.equal(r.body.subscription.next_plan_code, 'yearly');
  assert.equal(r.body.subscription.downgrade_plan_date, '2024-07-01');
  const scheduled = (await call('GET', '/api/v1/subscriptions?external_customer_id=changer&status[]=pending&status[]=canceled')).body;
  assert.deepEqual(scheduled.subscriptions.map((s) => [s.plan_code, s.status]).sort(),
    [['cheap', 'canceled'], ['yearly', 'canceled'], ['yearly', 'pending']]);
  await advance('2024-07-01T00:00:00Z');
  r = await call('GET', '/api/v1/subscriptions/chg');
  assert.equal(r.body.subscription.plan_code, 'yearly');
  assert.equal(r.body.subscription.previous_plan_code, 'monthly');
  assert.equal(r.body.subscription.started_at, '2024-07-01T00:00:00.000Z');
  // an upgrade (more per year) switches now
  await call('PUT', '/api/v1/plans/monthly', { plan: { amount_cents: 4900 } });
  await advance('2024-07-20T12:00:00Z');
  r = await subscribe('changer', 'monthly', 'chg');
  assert.equal(r.body.subscription.plan_code, 'monthly');
  assert.equal(r.body.subscription.status, 'active');
  assert.equal(r.body.subscription.started_at, '2024-07-20T12:00:00.000Z');
  assert.equal(r.body.subscription.previous_plan_code, 'yearly');
  const all = (await call('GET', '/api/v1/subscriptions?external_customer_id=changer&status[]=active&status[]=terminated')).body;
  assert.deepEqual(all.subscriptions.map((s) => [s.plan_code, s.status]), [['monthly', 'active'], ['yearly', 'terminated'], ['monthly', 'terminated']]);
  // each one replaced names the plan that replaced it, as Lago's next_subscription (an audit
  // found the upgraded one naming none); no date, it is no scheduled downgrade
  assert.deepEqual(all.subscriptions.map((s) => [s.next_plan_code, s.downgrade_plan_date]), [[null, null], ['monthly', null], ['yearly', null]]);
  // Lago's plan_code filter narrows the list (it was ignored: every plan's came back)
  const yearly = (await call('GET', '/api/v1/subscriptions?external_customer_id=changer&status[]=active&status[]=terminated&plan_code=yearly')).body;
  assert.deepEqual(yearly.subscriptions.map((s) => [s.plan_code, s.status]), [['yearly', 'terminated']]);
  assert.equal(yearly.meta.total_count, 1);
  // and its currency filter (the plan's): a dollar subscription among euro ones
  await subscribe('dollar_payer', 'dollars', 'usd_list');
  const usd = (await call('GET', '/api/v1/subscriptions?currency=USD')).body;
  assert.deepEqual(usd.subscriptions.map((s) => s.external_id), ['usd_list']);
  const eur = (await call('GET', '/api/v1/subscriptions?currency=EUR')).body;
  assert.ok(eur.meta.total_count > 0 && !eur.subscriptions.some((s) => s.plan_code === 'dollars'));
  // the same plan again changes nothing
  const same = await subscribe('changer', 'monthly', 'chg');
  assert.equal(same.body.subscription.lago_id, r.body.subscription.lago_id);
});

test('termination, ending_at and cancelling a pending subscription', async () => {
  let r = await subscribe('ender', 'monthly', 'end_sub', { ending_at: '2024-08-15T00:00:00Z' });
  assert.equal(r.body.subscription.ending_at, '2024-08-15T00:00:00Z');
  await advance('2024-08-16T00:00:00Z');
  assert.equal((await call('GET', '/api/v1/subscriptions/end_sub')).status, 404);
  const ended = (await call('GET', '/api/v1/subscriptions?external_customer_id=ender&status[]=terminated')).body.subscriptions[0];
  assert.equal(ended.status, 'terminated');
  assert.equal(ended.terminated_at, '2024-08-15T00:00:00Z');
  // Lago's ?status= reads a subscription that is no longer live
  const byStatus = await call('GET', '/api/v1/subscriptions/end_sub?status=terminated');
  assert.equal(byStatus.status, 200);
  assert.equal(byStatus.body.subscription.lago_id, ended.lago_id);
  assert.equal((await call('GET', '/api/v1/subscriptions/end_sub?status=pending')).status, 404);
  assert.equal((await call('GET', '/api/v1/subscriptions/end_sub?status=gone')).status, 400);
  r = await subscribe('ender', 'monthly', 'term_sub');
  r = await call('PUT', '/api/v1/subscriptions/term_sub', { subscription: { name: 'Renamed', ending_at: '2030-01-01T00:00:00Z' } });
  assert.equal(r.body.subscription.name, 'Renamed');
  r = await call('DELETE', '/api/v1/subscriptions/term_sub');
  assert.equal(r.body.subscription.status, 'terminated');
  assert.equal(r.body.subscription.terminated_at, '2024-08-16T00:00:00Z');
  assert.equal((await call('DELETE', '/api/v1/subscriptions/term_sub')).status, 404);
  r = await subscribe('ender', 'monthly', 'pend_sub', { subscription_at: '2025-01-01T00:00:00Z' });
  assert.equal((await call('DELETE', '/api/v1/subscriptions/pend_sub')).status, 404); // not active
  r = await call('DELETE', '/api/v1/subscriptions/pend_sub?status=pending');
  assert.equal(r.body.subscription.status, 'canceled');
  assert.equal(r.body.subscription.canceled_at, '2024-08-16T00:00:00Z');
});

test('a downgrade scheduled past the subscription\'s ending_at never starts; moving ending_at past it brings it back', async () => {
  await advance('2024-09-10T00:00:00Z');
  await subscribe('shrinker', 'monthly', 'shrink');
  let r = await subscribe('shrinker', 'cheap', 'shrink'); // downgrade on Oct 1
  assert.equal(r.body.subscription.next_plan_code, 'cheap');
  r = await call('PUT', '/api/v1/subscriptions/shrink', { subscription: { ending_at: '2024-10-15T00:00:00Z' } });
  assert.equal(r.status, 200); // after the downgrade: it stands, and ends on Oct 15
  r = await call('PUT', '/api/v1/subscriptions/shrink', { subscription: { ending_at: '2024-09-20T00:00:00Z' } });
  assert.equal(r.status, 200);
  r = await call('PUT', '/api/v1/subscriptions/shrink', { subscription: { ending_at: null } });
  r = await call('PUT', '/api/v1/subscriptions/shrink', { subscription: { ending_at: '2024-09-25T00:00:00Z' } });
  await advance('2024-10-02T00:00:00Z');
  assert.equal((await call('GET', '/api/v1/subscriptions/shrink')).status, 404); // ended Sep 25, nothing after
  const all = (await call('GET', '/api/v1/subscriptions?external_customer_id=shrinker&status[]=active&status[]=terminated&status[]=canceled&status[]=pending')).body.subscriptions;
  assert.deepEqual(all.map((x) => [x.plan_code, x.status]).sort(), [['cheap', 'canceled'], ['monthly', 'terminated']]);
  assert.equal(all.find((x) => x.plan_code === 'cheap').canceled_at, '2024-09-25T00:00:00Z');
  // scheduled after the ending_at was set: the same
  await subscribe('shrinker2', 'monthly', 'shrink2', { ending_at: '2024-10-20T00:00:00Z' });
  r = await subscribe('shrinker2', 'cheap', 'shrink2'); // would start Nov 1
  assert.equal(r.status, 200);
  await advance('2024-11-02T00:00:00Z');
  assert.equal((await call('GET', '/api/v1/subscriptions/shrink2')).status, 404);
  // and one whose ending_at comes after the switch keeps its downgrade
  await subscribe('shrinker3', 'monthly', 'shrink3', { ending_at: '2025-06-01T00:00:00Z' });
  await subscribe('shrinker3', 'cheap', 'shrink3');
  await advance('2024-12-02T00:00:00Z');
  assert.equal((await call('GET', '/api/v1/subscriptions/shrink3')).body.subscription.plan_code, 'cheap');
});

// Lago's terminate reads ?status=pending as the pending subscription and any other value as the
// active one (an audit found any other value a 400 here)
test('DELETE ?status= other than pending terminates the active subscription, as Lago', async () => {
  let r = await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'del_any', plan_code: 'monthly', external_id: 'del_any_sub' } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  r = await call('DELETE', '/api/v1/subscriptions/del_any_sub?status=terminated');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.subscription.status, 'terminated');
});

test('DELETE ?status=pending cancels a scheduled downgrade; the subscription goes on', async () => {
  await advance('2024-12-10T00:00:00Z');
  await subscribe('keeper', 'monthly', 'keep');
  let r = await subscribe('keeper', 'cheap', 'keep');
  assert.equal(r.body.subscription.next_plan_code, 'cheap');
  r = await call('DELETE', '/api/v1/subscriptions/keep?status=pending');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual([r.body.subscription.plan_code, r.body.subscription.status], ['cheap', 'canceled']);
  const now = (await call('GET', '/api/v1/subscriptions/keep')).body.subscription;
  assert.deepEqual([now.plan_code, now.status, now.next_plan_code ?? null], ['monthly', 'active', null]);
  assert.equal((await call('DELETE', '/api/v1/subscriptions/keep?status=pending')).status, 404); // nothing pending now
  await advance('2025-01-02T00:00:00Z');
  const later = (await call('GET', '/api/v1/subscriptions/keep')).body.subscription;
  assert.deepEqual([later.plan_code, later.status, later.terminated_at ?? null], ['monthly', 'active', null]);
  // and a new downgrade may be scheduled again
  r = await subscribe('keeper', 'cheap', 'keep');
  assert.equal(r.body.subscription.next_plan_code, 'cheap');
});

test('currencies: fixed by the first subscription; another currency is refused', async () => {
  let r = await subscribe('euro_only', 'monthly', 'eur_sub');
  const c = (await call('GET', '/api/v1/customers/euro_only')).body.customer;
  assert.equal(c.currency, 'EUR');
  r = await subscribe('euro_only', 'dollars', 'usd_sub');
  assert.deepEqual(r.body.error_details, { currency: ['currencies_does_not_match'] });
  r = await call('POST', '/api/v1/customers', { customer: { external_id: 'euro_only', currency: 'USD' } });
  assert.deepEqual(r.body.error_details, { currency: ['currencies_does_not_match'] });
  // an external_id belongs to one customer
  r = await subscribe('someone_else', 'monthly', 'eur_sub');
  assert.deepEqual(r.body.error_details, { external_id: ['value_already_exist'] });
});

test('bad requests', async () => {
  for (const [sub, field, code] of [
    [{ plan_code: 'monthly' }, 'external_customer_id', 'value_is_mandatory'],
    [{ external_customer_id: 'x', plan_code: 'monthly', billing_time: 'sometimes' }, 'billing_time', 'value_is_invalid'],
    [{ external_customer_id: 'x', plan_code: 'monthly', subscription_at: 'tomorrow' }, 'subscription_at', 'invalid_date'],
    [{ external_customer_id: 'x', plan_code: 'monthly', subscription_at: '2025-01-01T00:00:00Z', ending_at: '2024-01-01T00:00:00Z' }, 'ending_at', 'invalid_date'],
    // an end already past (the clock is at 2024-01-31T12:00Z), as an update refuses it: the
    // subscription would be terminated before it started
    [{ external_customer_id: 'x', plan_code: 'monthly', ending_at: '2020-01-01T00:00:00Z' }, 'ending_at', 'invalid_date'],
    [{ external_customer_id: 'x', plan_code: 'monthly', subscription_at: '2019-01-01T00:00:00Z', ending_at: '2024-01-31T12:00:00Z' }, 'ending_at', 'invalid_date'],
    [{ external_customer_id: 'x', plan_code: 'monthly', plan_overrides: { interval: 'weekly' } }, 'plan_overrides', 'not_overridable'],
    [{ external_customer_id: 'x', plan_code: 'monthly', plan_overrides: { amount_cents: -1 } }, 'amount_cents', 'value_is_out_of_range'],
    [{ external_customer_id: 'x', plan_code: 'monthly', plan_overrides: { charges: [{ id: 'nope', properties: { amount: '1' } }] } }, 'plan_overrides', 'charge_not_found'],
    [{ external_customer_id: 'x', plan_code: 'monthly', plan_overrides: { charges: 'all' } }, 'plan_overrides', 'invalid_type'],
  ]) {
    const r = await call('POST', '/api/v1/subscriptions', { subscription: sub });
    assert.deepEqual(r.body.error_details, { [field]: [code] }, JSON.stringify(sub));
  }
  const r = await subscribe('x', 'no_such_plan', 'x1');
  assert.deepEqual(r.body, { status: 404, error: 'Not Found', code: 'plan_not_found' });
  // no plan_code names no plan, as Lago's controller finds none by it (an audit: a 422)
  for (const plan_code of [undefined, null]) {
    const none = await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'x', external_id: 'x0', plan_code } });
    assert.deepEqual(none.body, { status: 404, error: 'Not Found', code: 'plan_not_found' });
  }
  assert.equal((await call('GET', '/api/v1/customers/x')).status, 404); // nothing was created
  // charges null overrides none, as on a plan update (an audit: invalid_type, no message)
  const plain = await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'x', plan_code: 'monthly', external_id: 'x_null', plan_overrides: { amount_cents: 500, charges: null } } });
  assert.equal(plain.status, 200, JSON.stringify(plain.body));
  assert.equal(plain.body.subscription.plan_amount_cents, 500);
});

test('a plan under live subscriptions keeps its interval and currency', async () => {
  await call('POST', '/api/v1/plans', { plan: { code: 'fresh_q', name: 'Q', interval: 'quarterly', amount_cents: 10000, amount_currency: 'EUR' } });
  await subscribe('loyal', 'fresh_q', 'loyal_sub');
  let r = await call('PUT', '/api/v1/plans/fresh_q', { plan: { interval: 'monthly' } });
  assert.deepEqual(r.body.error_details, { interval: ['plan_has_subscriptions'] });
  r = await call('PUT', '/api/v1/plans/fresh_q', { plan: { amount_currency: 'USD' } });
  assert.deepEqual(r.body.error_details, { amount_currency: ['plan_has_subscriptions'] });
  // prices may change: they apply from now on
  r = await call('PUT', '/api/v1/plans/fresh_q', { plan: { amount_cents: 12000 } });
  assert.equal(r.body.plan.amount_cents, 12000);
  await call('DELETE', '/api/v1/subscriptions/loyal_sub');
  r = await call('PUT', '/api/v1/plans/fresh_q', { plan: { interval: 'monthly' } });
  assert.equal(r.body.plan.interval, 'monthly');
  assert.equal((await call('DELETE', '/api/v1/plans/fresh_q')).status, 200);
});

test('plan_overrides give a subscription its own plan; the plan itself is untouched', async () => {
  const bm = (await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'api_calls', name: 'Calls', aggregation_type: 'count_agg' } })).body.billable_metric;
  const plan = (await call('POST', '/api/v1/plans', { plan: { code: 'custom_base', name: 'Base', interval: 'monthly', amount_cents: 5000, amount_currency: 'EUR', charges: [{ billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '0.01' } }] } })).body.plan;
  const charge = plan.charges[0].lago_id;
  let r = await subscribe('bigco', 'custom_base', 'bigco_sub', { plan_overrides: { amount_cents: 3500, name: 'Base (negotiated)', trial_period: 30, charges: [{ id: charge, properties: { amount: '0.005' } }] } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const own = r.body.subscription.plan;
  assert.equal(r.body.subscription.plan_amount_cents, 3500); // Lago's: the price as subscribed
  assert.equal(r.body.subscription.plan_amount_currency, 'EUR');
  assert.equal(own.code, 'custom_base');
  assert.equal(own.amount_cents, 3500);
  assert.equal(own.name, 'Base (negotiated)');
  assert.equal(own.trial_period, 30);
  assert.deepEqual(own.charges[0].properties, { amount: '0.005' });
  assert.equal(own.charges[0].lago_id, charge);
  const parent = (await call('GET', '/api/v1/plans/custom_base')).body.plan;
  assert.equal(parent.amount_cents, 5000);
  assert.deepEqual(parent.charges[0].properties, { amount: '0.01' });
  // the same plan with other overrides replaces the subscription's own plan in place
  r = await subscribe('bigco', 'custom_base', 'bigco_sub', { plan_overrides: { amount_cents: 3000 } });
  assert.equal(r.body.subscription.plan.amount_cents, 3000);
  assert.equal(r.body.subscription.lago_id, (await call('GET', '/api/v1/subscriptions/bigco_sub')).body.subscription.lago_id);
  // and an override in another currency must still match the customer's
  r = await subscribe('bigco', 'custom_base', 'bigco_sub', { plan_overrides: { amount_currency: 'USD' } });
  assert.deepEqual(r.body.error_details, { currency: ['currencies_does_not_match'] });
  // a charge named by a null id is named by none (an ASan fuzz audit: tallyd died on a NULL
  // passed to strcmp), and an id of another type names no charge
  r = await subscribe('bigco', 'custom_base', 'bigco_sub', { plan_overrides: { charges: [{ id: null, properties: { amount: '2' } }] } });
  assert.deepEqual(r.body.error_details, { plan_overrides: ['charge_id_is_mandatory'] });
  r = await subscribe('bigco', 'custom_base', 'bigco_sub', { plan_overrides: { charges: [{ id: 7, properties: { amount: '2' } }] } });
  assert.deepEqual(r.body.error_details, { plan_overrides: ['charge_not_found'] });
  // what names the charge stays the stored charge's: a lago_id sent beside the id (null crashed
  // tallyd too; another re-made the charge under a new id, its debits given back: a round-2 audit)
  for (const lago_id of [null, 'zzz', 7]) {
    r = await subscribe('bigco', 'custom_base', 'bigco_sub', { plan_overrides: { amount_cents: 3000, charges: [{ id: charge, lago_id, properties: { amount: '0.004' } }] } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.subscription.plan.charges[0].lago_id, charge);
    assert.deepEqual(r.body.subscription.plan.charges[0].properties, { amount: '0.004' });
  }
  assert.equal((await call('GET', '/api/v1/subscriptions/bigco_sub')).body.subscription.plan.amount_cents, 3000);
});

// Found by an audit with Lago's client: a subscription started "now" kept the clock's
// fraction of a second while every answer shows its start to the second, so an event sent
// for the second its answer shows (a client's `Math.floor(Date.now() / 1000)` right after
// subscribing) was refused as before the start. A start is kept to the second it shows.
test('a subscription starts at the second its answer shows: an event at that second is its own', async () => {
  const now = Date.parse((await call('GET', '/api/v1/test_clock')).body.test_clock.now);
  const at = new Date(Math.floor(now / 1000) * 1000 + 86400e3 + 700).toISOString(); // .700
  assert.equal((await advance(at)).status, 200);
  assert.equal((await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'pings', name: 'Pings', aggregation_type: 'count_agg' } })).status, 200);
  const given = new Date(Date.parse(at) + 3600e3 + 250).toISOString(); // a start ahead, .250
  for (const [id, extra, start] of [['frac_now', {}, at], ['frac_given', { subscription_at: given }, given]]) {
    const s = (await subscribe(`${id}_c`, 'monthly', id, extra)).body.subscription;
    const shown = new Date(Math.floor(Date.parse(start) / 1000) * 1000).toISOString().replace('.000', '');
    assert.deepEqual([s.started_at ?? shown.replace('Z', '.000Z'), s.subscription_at], [shown.replace('Z', '.000Z'), shown], id);
    if (id === 'frac_given') assert.equal((await advance(given)).status, 200);
    const r = await call('POST', '/api/v1/events', { event: { transaction_id: `${id}_e`, external_subscription_id: id, code: 'pings', timestamp: Date.parse(shown) / 1000 } });
    assert.equal(r.status, 200, `${id} ${JSON.stringify(r.body)}`);
    const before = await call('POST', '/api/v1/events', { event: { transaction_id: `${id}_b`, external_subscription_id: id, code: 'pings', timestamp: Date.parse(shown) / 1000 - 0.001 } });
    assert.equal(before.status, 422, id);
  }
});

// Found by an audit: a plan change dropped the subscription's ending_at (the new plan's
// subscription never ended, took events and debited wallets past the end the client set), and
// an ending_at before a pending subscription's start was taken (a 500 for a customer with a
// wallet; else a subscription terminated before it started). As Lago's plan change services,
// the next subscription keeps the end unless the request names one (null: no end).
test('a plan change keeps ending_at; an end before a pending start is refused', async () => {
  const now = Math.floor(Date.parse((await call('GET', '/api/v1/test_clock')).body.test_clock.now) / 1000) * 1000;
  const day = 86400e3, at = (d) => new Date(now + d * day).toISOString().replace('.000', '');
  assert.equal((await subscribe('keeper', 'cheap', 'keep_up', { ending_at: at(10) })).status, 200);
  assert.equal((await call('POST', '/api/v1/wallets', { wallet: { external_customer_id: 'keeper', currency: 'EUR', rate_amount: '1', name: 'W', granted_credits: '1000' } })).status, 200);
  const up = (await subscribe('keeper', 'monthly', 'keep_up')).body.subscription; // an upgrade
  assert.deepEqual([up.plan_code, up.ending_at], ['monthly', at(10)]);
  assert.equal((await subscribe('keeper', 'monthly', 'keep_dn', { ending_at: at(75) })).status, 200);
  assert.equal((await subscribe('keeper', 'cheap', 'keep_dn')).body.subscription.next_plan_code, 'cheap'); // a downgrade
  const next = (await call('GET', '/api/v1/subscriptions/keep_dn?status=pending')).body.subscription;
  assert.deepEqual([next.plan_code, next.ending_at], ['cheap', at(75)]);
  assert.equal((await subscribe('keeper', 'cheap', 'keep_null', { ending_at: at(10) })).status, 200);
  const unended = (await subscribe('keeper', 'monthly', 'keep_null', { ending_at: null })).body.subscription;
  assert.deepEqual([unended.plan_code, unended.ending_at], ['monthly', null]);
  // a pending subscription: an end before (or at) its start is refused, and changes nothing
  assert.equal((await subscribe('keeper', 'monthly', 'keep_pend', { subscription_at: at(30) })).status, 200);
  for (const end of [at(20), at(30)]) {
    const r = await call('PUT', '/api/v1/subscriptions/keep_pend', { subscription: { ending_at: end } });
    assert.deepEqual([r.status, r.body.error_details], [422, { ending_at: ['invalid_date'] }], end);
  }
  const moved = await call('PUT', '/api/v1/subscriptions/keep_pend', { subscription: { subscription_at: at(40), ending_at: at(35) } });
  assert.deepEqual([moved.status, moved.body.error_details], [422, { ending_at: ['invalid_date'] }]);
  let pend = (await call('GET', '/api/v1/subscriptions/keep_pend?status=pending')).body.subscription;
  assert.deepEqual([pend.subscription_at, pend.ending_at], [at(30), null]);
  // Lago's PUT may carry plan_overrides; Tally takes them through POST: refused, not ignored
  const overridden = await call('PUT', '/api/v1/subscriptions/keep_pend', { subscription: { ending_at: at(50), plan_overrides: { amount_cents: 1 } } });
  assert.deepEqual([overridden.status, overridden.body.error_details], [422, { plan_overrides: ['not_supported'] }]);
  const fine = await call('PUT', '/api/v1/subscriptions/keep_pend', { subscription: { ending_at: at(50) } });
  assert.equal(fine.status, 200, JSON.stringify(fine.body));
  pend = (await call('GET', '/api/v1/subscriptions/keep_pend?status=pending')).body.subscription;
  assert.deepEqual([pend.subscription_at, pend.ending_at], [at(30), at(50)]);
  // a pending one given another plan takes the request's end as well (it was ignored)
  const early = await subscribe('keeper', 'cheap', 'keep_pend', { ending_at: at(25) });
  assert.deepEqual([early.status, early.body.error_details], [422, { ending_at: ['invalid_date'] }]);
  const replanned = (await subscribe('keeper', 'cheap', 'keep_pend', { ending_at: null })).body.subscription;
  assert.deepEqual([replanned.plan_code, replanned.status, replanned.ending_at], ['cheap', 'pending', null]);
  const ended = (await subscribe('keeper', 'monthly', 'keep_pend', { ending_at: at(60) })).body.subscription;
  assert.deepEqual([ended.plan_code, ended.ending_at], ['monthly', at(60)]);
  // past the upgraded one's end: it is over, and takes no event
  assert.equal((await advance(at(11))).status, 200);
  assert.equal((await call('GET', '/api/v1/subscriptions/keep_up')).status, 404);
  const late = await call('POST', '/api/v1/events', { event: { transaction_id: 'keep_up_late', external_subscription_id: 'keep_up', code: 'pings' } });
  assert.deepEqual([late.status, late.body.error_details], [422, { external_subscription_id: ['subscription_not_found'] }]);
});

// Found by an audit: a downgrade whose ending_at fell at or before its switch was taken, named
// in the request or inherited from a subscription whose own ending_at was then removed; at the
// switch it started already terminated (terminated_at before started_at), the current plan
// ended too, and the external id was left with no live subscription (events refused). A named
// one is refused; an inherited one follows the end it inherited, so it is canceled while that
// end comes first and back, with that end, when it is moved past the switch or removed.
test('a downgrade never ends at or before its switch: refused when named, following the end it inherited', async () => {
  await advance('2025-03-10T00:00:00Z');
  assert.equal((await subscribe('dn_end', 'monthly', 'dn_named')).status, 200);
  for (const end of ['2025-03-20T00:00:00Z', '2025-04-01T00:00:00Z']) { // before, and at, the switch
    const r = await subscribe('dn_end', 'cheap', 'dn_named', { ending_at: end });
    assert.deepEqual([r.status, r.body.error_details], [422, { ending_at: ['invalid_date'] }], end);
  }
  const unchanged = (await call('GET', '/api/v1/subscriptions/dn_named')).body.subscription;
  assert.deepEqual([unchanged.plan_code, unchanged.next_plan_code, unchanged.ending_at], ['monthly', null, null]);
  assert.equal((await call('GET', '/api/v1/subscriptions/dn_named?status=pending')).status, 404);
  let r = await subscribe('dn_end', 'cheap', 'dn_named', { ending_at: '2025-05-01T00:00:00Z' });
  assert.deepEqual([r.status, r.body.subscription.next_plan_code, r.body.subscription.downgrade_plan_date], [200, 'cheap', '2025-04-01']);

  const pendingOf = async (id) => {
    const p = (await call('GET', `/api/v1/subscriptions/${id}?status=pending`)).body.subscription;
    return [p.plan_code, p.status, p.ending_at];
  };
  const put = async (id, ending_at) => {
    const res = await call('PUT', `/api/v1/subscriptions/${id}`, { subscription: { ending_at } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.subscription;
  };
  assert.equal((await subscribe('dn_end', 'monthly', 'dn_inherit', { ending_at: '2025-03-25T00:00:00Z' })).status, 200);
  assert.equal((await subscribe('dn_end', 'cheap', 'dn_inherit')).status, 200); // would start Apr 1: never does
  assert.deepEqual(await pendingOf('dn_inherit'), ['cheap', 'pending', '2025-03-25T00:00:00Z']);
  let cur = await put('dn_inherit', null); // the downgrade comes back, without the end
  assert.deepEqual([cur.ending_at, cur.next_plan_code], [null, 'cheap']);
  assert.deepEqual(await pendingOf('dn_inherit'), ['cheap', 'pending', null]);
  await put('dn_inherit', '2025-05-10T00:00:00Z'); // past the switch: the downgrade ends then too
  assert.deepEqual(await pendingOf('dn_inherit'), ['cheap', 'pending', '2025-05-10T00:00:00Z']);
  await put('dn_inherit', '2025-03-28T00:00:00Z'); // before it again, then removed again
  await put('dn_inherit', null);
  assert.deepEqual(await pendingOf('dn_inherit'), ['cheap', 'pending', null]);
  // one that inherits an end at its switch never starts
  assert.equal((await subscribe('dn_end', 'monthly', 'dn_at', { ending_at: '2025-04-01T00:00:00Z' })).status, 200);
  assert.equal((await subscribe('dn_end', 'cheap', 'dn_at')).status, 200);

  await advance('2025-04-02T00:00:00Z');
  for (const [id, end] of [['dn_named', '2025-05-01T00:00:00Z'], ['dn_inherit', null]]) {
    const s = (await call('GET', `/api/v1/subscriptions/${id}`)).body.subscription;
    assert.deepEqual([s.plan_code, s.status, s.started_at, s.ending_at], ['cheap', 'active', '2025-04-01T00:00:00.000Z', end], id);
    const e = await call('POST', '/api/v1/events', { event: { transaction_id: `${id}_after_switch`, external_subscription_id: id, code: 'pings' } });
    assert.equal(e.status, 200, JSON.stringify(e.body));
  }
  assert.equal((await call('GET', '/api/v1/subscriptions/dn_at')).status, 404);
  const all = (await call('GET', '/api/v1/subscriptions?external_customer_id=dn_end&status[]=pending&status[]=active&status[]=terminated&status[]=canceled&per_page=100')).body.subscriptions;
  assert.deepEqual(all.map((s) => [s.external_id, s.plan_code, s.status, s.terminated_at ?? s.canceled_at]).sort(), [
    ['dn_at', 'cheap', 'canceled', '2025-04-01T00:00:00Z'],
    ['dn_at', 'monthly', 'terminated', '2025-04-01T00:00:00Z'],
    ['dn_inherit', 'cheap', 'active', null],
    ['dn_inherit', 'monthly', 'terminated', '2025-04-01T00:00:00Z'],
    ['dn_named', 'cheap', 'active', null],
    ['dn_named', 'monthly', 'terminated', '2025-04-01T00:00:00Z'],
  ]);
});

// Found by an audit: PUT ?status=pending (Lago's: which subscription of the external id to
// change, active or pending) was ignored, and changed the active subscription: an end meant
// for a scheduled downgrade terminated the current plan early and canceled the downgrade.
test('PUT ?status=pending changes the pending subscription of the external id, or is a 404', async () => {
  await advance('2025-04-10T00:00:00Z');
  assert.equal((await subscribe('put_pend', 'monthly', 'pp')).status, 200);
  let r = await call('PUT', '/api/v1/subscriptions/pp?status=pending', { subscription: { name: 'meant for pending', ending_at: '2025-04-20T00:00:00Z' } });
  assert.deepEqual([r.status, r.body], [404, { status: 404, error: 'Not Found', code: 'subscription_not_found' }]);
  r = await call('PUT', '/api/v1/subscriptions/pp?status=bogus', { subscription: { name: 'x' } });
  assert.equal(r.status, 400);
  let cur = (await call('GET', '/api/v1/subscriptions/pp')).body.subscription;
  assert.deepEqual([cur.name, cur.ending_at], [null, null]);
  assert.equal((await subscribe('put_pend', 'cheap', 'pp')).body.subscription.next_plan_code, 'cheap'); // May 1
  r = await call('PUT', '/api/v1/subscriptions/pp?status=pending', { subscription: { name: 'next', ending_at: '2025-05-20T00:00:00Z' } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual([r.body.subscription.plan_code, r.body.subscription.status, r.body.subscription.name, r.body.subscription.ending_at],
    ['cheap', 'pending', 'next', '2025-05-20T00:00:00Z']);
  r = await call('PUT', '/api/v1/subscriptions/pp?status=pending', { subscription: { ending_at: '2025-05-01T00:00:00Z' } }); // its start
  assert.deepEqual([r.status, r.body.error_details], [422, { ending_at: ['invalid_date'] }]);
  r = await call('PUT', '/api/v1/subscriptions/pp?status=active', { subscription: { name: 'current' } });
  assert.deepEqual([r.status, r.body.subscription.plan_code, r.body.subscription.name], [200, 'monthly', 'current']);
  cur = (await call('GET', '/api/v1/subscriptions/pp')).body.subscription;
  assert.deepEqual([cur.plan_code, cur.name, cur.ending_at, cur.next_plan_code], ['monthly', 'current', null, 'cheap']);
  // a subscription not started yet is the pending one itself
  assert.equal((await subscribe('put_pend', 'monthly', 'pp_later', { subscription_at: '2025-06-01T00:00:00Z' })).status, 200);
  r = await call('PUT', '/api/v1/subscriptions/pp_later?status=pending', { subscription: { name: 'later' } });
  assert.deepEqual([r.status, r.body.subscription.status, r.body.subscription.name], [200, 'pending', 'later']);
  await advance('2025-05-02T00:00:00Z');
  const all = (await call('GET', '/api/v1/subscriptions?external_customer_id=put_pend&status[]=active&status[]=terminated&status[]=canceled')).body.subscriptions;
  assert.deepEqual(all.map((s) => [s.plan_code, s.status, s.name, s.terminated_at, s.ending_at]), [
    ['cheap', 'active', 'next', null, '2025-05-20T00:00:00Z'],
    ['monthly', 'terminated', 'current', '2025-05-01T00:00:00Z', null],
  ]);
});

// Found by an audit: a downgrade already canceled as of its subscription's (future) ending_at
// was left so by a second downgrade, and read pending beside it: two pending subscriptions for
// one external id, the first one still pending after the end that canceled it was removed.
test('a second downgrade, or an upgrade, cancels the one scheduled at once: one pending at most', async () => {
  await advance('2025-05-10T00:00:00Z');
  assert.equal((await call('POST', '/api/v1/plans', { plan: { code: 'premium', name: 'premium', interval: 'monthly', amount_cents: 9900, amount_currency: 'EUR' } })).status, 200);
  const pending = async (id) => (await call('GET', `/api/v1/subscriptions?external_id=${id}&status[]=pending`)).body.subscriptions.map((s) => s.plan_code);
  const canceled = async (id) => (await call('GET', `/api/v1/subscriptions?external_id=${id}&status[]=canceled`)).body.subscriptions.map((s) => [s.plan_code, s.canceled_at]);
  for (const [id, second, next] of [['tw_down', 'cheap', 'cheap'], ['tw_up', 'premium', null]]) {
    assert.equal((await subscribe('twice', 'monthly', id)).status, 200);
    assert.equal((await subscribe('twice', 'yearly', id)).body.subscription.next_plan_code, 'yearly'); // June 1
    let r = await call('PUT', `/api/v1/subscriptions/${id}`, { subscription: { ending_at: '2025-05-25T00:00:00Z' } });
    assert.equal(r.status, 200);
    r = await subscribe('twice', second, id, { ending_at: null });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(await pending(id), next ? [next] : [], id);
    assert.deepEqual(await canceled(id), [['yearly', '2025-05-10T00:00:00Z']], id);
    r = await call('PUT', `/api/v1/subscriptions/${id}`, { subscription: { ending_at: null } });
    assert.equal(r.status, 200);
    assert.deepEqual(await pending(id), next ? [next] : [], id);
  }
  assert.equal((await call('DELETE', '/api/v1/subscriptions/tw_down?status=pending')).status, 200);
  assert.deepEqual(await pending('tw_down'), []);
  assert.equal((await call('GET', '/api/v1/subscriptions/tw_down')).body.subscription.next_plan_code, null);
  await advance('2025-06-02T00:00:00Z');
  for (const [id, plan] of [['tw_down', 'monthly'], ['tw_up', 'premium']]) {
    const s = (await call('GET', `/api/v1/subscriptions/${id}`)).body.subscription;
    assert.deepEqual([s.plan_code, s.status], [plan, 'active'], id);
  }
  assert.deepEqual(await canceled('tw_down'), [['cheap', '2025-05-10T00:00:00Z'], ['yearly', '2025-05-10T00:00:00Z']]);
});

// Found with the audit's downgrade fix: a new time zone moves a scheduled switch by hours,
// past the end the downgrade kept from its subscription: it started already terminated.
test('a switch moved by a new time zone past the downgrade\'s end: it never starts', async () => {
  await advance('2025-06-10T00:00:00Z');
  await customer('tz_mover', 'UTC');
  assert.equal((await subscribe('tz_mover', 'monthly', 'tzm', { ending_at: '2025-07-01T03:00:00Z' })).status, 200);
  assert.equal((await subscribe('tz_mover', 'cheap', 'tzm')).body.subscription.next_plan_code, 'cheap'); // Jul 1 00:00Z
  const moved = await customer('tz_mover', 'America/New_York'); // the switch moves to 04:00Z
  assert.equal(moved.status, 200, JSON.stringify(moved.body));
  await advance('2025-07-02T00:00:00Z');
  assert.equal((await call('GET', '/api/v1/subscriptions/tzm')).status, 404); // ended at 03:00Z
  const all = (await call('GET', '/api/v1/subscriptions?external_id=tzm&status[]=active&status[]=terminated&status[]=canceled&status[]=pending')).body.subscriptions;
  assert.deepEqual(all.map((s) => [s.plan_code, s.status, s.started_at, s.terminated_at, s.canceled_at]).sort(), [
    ['cheap', 'canceled', null, null, '2025-07-01T03:00:00Z'],
    ['monthly', 'terminated', '2025-06-10T00:00:00.000Z', '2025-07-01T03:00:00Z', null],
  ]);
});

// Found by an audit: ?plan_code= matched the code copied into the subscription when it was
// made, so after a plan's rename it found the subscription under the old code (and under a
// new plan made with it) and not under the code the subscription itself answered. A plan keeps
// its code while a subscription to it is live (catalog_frozen.test.mjs), so the rename follows
// the subscription's end.
test('?plan_code= follows a renamed plan: its new code finds its subscriptions, the old one none', async () => {
  await call('POST', '/api/v1/plans', { plan: { code: 'ren_p', name: 'R', interval: 'monthly', amount_cents: 1000, amount_currency: 'EUR' } });
  await subscribe('ren_c', 'ren_p', 'ren_s');
  assert.deepEqual((await call('PUT', '/api/v1/plans/ren_p', { plan: { code: 'ren_p2' } })).body.error_details, { code: ['plan_has_subscriptions'] });
  assert.equal((await call('DELETE', '/api/v1/subscriptions/ren_s')).status, 200);
  assert.equal((await call('PUT', '/api/v1/plans/ren_p', { plan: { code: 'ren_p2' } })).status, 200);
  await call('POST', '/api/v1/plans', { plan: { code: 'ren_p', name: 'Other', interval: 'monthly', amount_cents: 1, amount_currency: 'EUR' } });
  const ids = async (q) => (await call('GET', `/api/v1/subscriptions?status[]=terminated&${q}`)).body.subscriptions.map((s) => [s.external_id, s.plan_code]);
  assert.deepEqual(await ids('plan_code=ren_p2'), [['ren_s', 'ren_p2']]);
  assert.deepEqual(await ids('plan_code=ren_p'), []);
});

// Found by an audit: next_plan_code and previous_plan_code answered the code copied into the
// other subscription when it was made, so a renamed plan showed there under its old code.
// Neither plan can be renamed while the downgrade and its subscription are live: once they
// ended (the downgrade canceled with it), the canceled one names the renamed plans.
test('next_plan_code and previous_plan_code follow renamed plans', async () => {
  for (const [code, amount] of [['ren_big', 1000], ['ren_small', 100]])
    await call('POST', '/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents: amount, amount_currency: 'EUR' } });
  await subscribe('ren_d', 'ren_big', 'ren_ds');
  assert.equal((await subscribe('ren_d', 'ren_small', 'ren_ds')).status, 200); // a downgrade, scheduled
  for (const code of ['ren_small', 'ren_big'])
    assert.deepEqual((await call('PUT', `/api/v1/plans/${code}`, { plan: { code: `${code}2` } })).body.error_details, { code: ['plan_has_subscriptions'] }, code);
  const active = (await call('GET', '/api/v1/subscriptions/ren_ds')).body.subscription;
  assert.deepEqual([active.plan_code, active.next_plan_code], ['ren_big', 'ren_small']);
  assert.equal((await call('DELETE', '/api/v1/subscriptions/ren_ds')).status, 200);
  assert.equal((await call('PUT', '/api/v1/plans/ren_small', { plan: { code: 'ren_small2' } })).status, 200);
  assert.equal((await call('PUT', '/api/v1/plans/ren_big', { plan: { code: 'ren_big2' } })).status, 200);
  const ended = (await call('GET', '/api/v1/subscriptions/ren_ds?status=terminated')).body.subscription;
  assert.equal(ended.plan_code, 'ren_big2');
  const canceled = (await call('GET', '/api/v1/subscriptions/ren_ds?status=canceled')).body.subscription;
  assert.deepEqual([canceled.plan_code, canceled.previous_plan_code], ['ren_small2', 'ren_big2']);
});

// Found by an audit: once its plan was deleted, a terminated subscription answered
// plan_amount_cents, plan_amount_currency and plan null (Lago's spec has them non-null: Lago
// keeps deleted plans). It answers the plan it had, as it was when deleted.
test('a deleted plan\'s terminated subscriptions still answer the plan they had', async () => {
  await call('POST', '/api/v1/plans', { plan: { code: 'gone_p', name: 'Gone', interval: 'monthly', amount_cents: 1000, amount_currency: 'EUR' } });
  await subscribe('gone_c', 'gone_p', 'gone_s');
  assert.equal((await call('DELETE', '/api/v1/subscriptions/gone_s')).status, 200);
  assert.equal((await call('DELETE', '/api/v1/plans/gone_p')).status, 200);
  const s = (await call('GET', '/api/v1/subscriptions/gone_s?status=terminated')).body.subscription;
  assert.deepEqual([s.status, s.plan_code, s.plan_amount_cents, s.plan_amount_currency], ['terminated', 'gone_p', 1000, 'EUR']);
  assert.deepEqual([s.plan?.code, s.plan?.name, s.plan?.amount_cents], ['gone_p', 'Gone', 1000]);
  // a new plan made with the code is another plan: the old subscription still answers its own
  await call('POST', '/api/v1/plans', { plan: { code: 'gone_p', name: 'New', interval: 'monthly', amount_cents: 5, amount_currency: 'EUR' } });
  const list = (await call('GET', '/api/v1/subscriptions?external_customer_id=gone_c&status[]=terminated')).body.subscriptions;
  assert.deepEqual(list.map((x) => [x.external_id, x.plan_code, x.plan_amount_cents, x.plan.name]), [['gone_s', 'gone_p', 1000, 'Gone']]);
});

// Found by an audit: on_termination_invoice / on_termination_credit_note were taken with 200 on
// update and DELETE and ignored. Tally does not bill terminations yet: it takes a value
// equal to what it answers (generate; credit for a plan paid in advance) and refuses any other
// choice, 422 not_supported, rather than record the opposite of what was asked. An unknown value
// is Lago's invalid_value; a credit-note choice on a plan paid in arrears is Lago's no-op.
test('on_termination_* choices Tally cannot honour are refused, not ignored', async () => {
  await call('POST', '/api/v1/plans', { plan: { code: 'term_adv', name: 'A', interval: 'monthly', amount_cents: 1000, amount_currency: 'EUR', pay_in_advance: true } });
  const refused = (r, field, code) => {
    assert.deepEqual([r.status, r.body.error_details], [422, { [field]: [code] }], JSON.stringify(r.body));
    if (code === 'not_supported')
      assert.match(r.body.message, new RegExp(field));
  };
  const choices = (r) => [r.body.subscription.on_termination_invoice, r.body.subscription.on_termination_credit_note];
  // create: Lago's create neither validates nor keeps them, so neither does Tally's
  let r = await subscribe('term_c', 'term_adv', 'term_s', { on_termination_invoice: 'skip', on_termination_credit_note: 'refund' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(choices(r), ['generate', 'credit']);
  r = await subscribe('term_c', 'monthly', 'term_arr', { on_termination_credit_note: 'bogus', on_termination_invoice: 7 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(choices(r), ['generate', null]); // a plan paid in arrears has no credit note
  // update
  refused(await call('PUT', '/api/v1/subscriptions/term_s', { subscription: { name: 'n', on_termination_invoice: 'skip' } }), 'on_termination_invoice', 'not_supported');
  refused(await call('PUT', '/api/v1/subscriptions/term_s', { subscription: { name: 'n', on_termination_credit_note: 'skip' } }), 'on_termination_credit_note', 'not_supported');
  refused(await call('PUT', '/api/v1/subscriptions/term_s', { subscription: { on_termination_credit_note: 'nope' } }), 'on_termination_credit_note', 'invalid_value');
  assert.equal((await call('GET', '/api/v1/subscriptions/term_s')).body.subscription.name, null); // unchanged
  r = await call('PUT', '/api/v1/subscriptions/term_arr', { subscription: { on_termination_credit_note: 'refund', on_termination_invoice: 'generate' } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(choices(r), ['generate', null]);
  // DELETE (Lago's query string)
  refused(await call('DELETE', '/api/v1/subscriptions/term_s?on_termination_invoice=skip'), 'on_termination_invoice', 'not_supported');
  refused(await call('DELETE', '/api/v1/subscriptions/term_s?on_termination_credit_note=refund'), 'on_termination_credit_note', 'not_supported');
  refused(await call('DELETE', '/api/v1/subscriptions/term_s?on_termination_invoice=never'), 'on_termination_invoice', 'invalid_value');
  assert.equal((await call('GET', '/api/v1/subscriptions/term_s')).body.subscription.status, 'active'); // not terminated
  r = await call('DELETE', '/api/v1/subscriptions/term_s?on_termination_invoice=generate&on_termination_credit_note=credit');
  assert.deepEqual([r.status, r.body.subscription.status, ...choices(r)], [200, 'terminated', 'generate', 'credit']);
  r = await call('DELETE', '/api/v1/subscriptions/term_arr?on_termination_credit_note=skip&on_termination_invoice=');
  assert.deepEqual([r.status, r.body.subscription.status, ...choices(r)], [200, 'terminated', 'generate', null]);
});

// A plan's trial_period is null when none was sent (as Lago's): what reads the trial takes
// null for no trial, on the plan, on a subscription's own plan, and on a trial cleared later.
test('a plan without a trial (trial_period null) subscribes, bills and reads usage; no trial ends', async () => {
  await call('POST', '/api/v1/plans', { plan: { code: 'nt', name: 'nt', interval: 'monthly', amount_cents: 100, amount_currency: 'EUR' } });
  let r = await subscribe('nt_c', 'nt', 'nt_s');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual([r.body.subscription.plan.trial_period, r.body.subscription.trial_ended_at], [null, null]);
  const usage = await call('GET', '/api/v1/customers/nt_c/current_usage?external_subscription_id=nt_s');
  assert.equal(usage.status, 200, JSON.stringify(usage.body));
  // a subscription's own plan: a trial given, then one cleared by an override of null
  r = await subscribe('nt_c2', 'nt', 'nt_s2', { plan_overrides: { trial_period: 2 } });
  assert.equal(r.body.subscription.plan.trial_period, 2);
  r = await subscribe('nt_c3', 'trial', 'nt_s3', { plan_overrides: { trial_period: null } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.subscription.plan.trial_period, null);
  // a trial cleared on the plan: its subscriptions have no trial to end (cleared before the
  // first: a plan with subscriptions keeps its trial, as Lago's)
  await call('POST', '/api/v1/plans', { plan: { code: 'nt_was', name: 'nt_was', interval: 'monthly', amount_cents: 100, amount_currency: 'EUR', trial_period: 1 } });
  r = await call('PUT', '/api/v1/plans/nt_was', { plan: { trial_period: null } });
  assert.deepEqual([r.status, r.body.plan.trial_period], [200, null]);
  await subscribe('nt_c4', 'nt_was', 'nt_s4');
  r = await call('PUT', '/api/v1/plans/nt_was', { plan: { trial_period: 1 } });
  assert.deepEqual([r.status, r.body.plan.trial_period], [200, null]);
  const clock = (await call('GET', '/api/v1/subscriptions/nt_s4')).body.subscription.started_at;
  await advance(new Date(Date.parse(clock) + 3 * 86400e3).toISOString().replace('.000', ''));
  for (const id of ['nt_s', 'nt_s3', 'nt_s4']) {
    r = await call('GET', `/api/v1/subscriptions/${id}`);
    assert.deepEqual([r.status, r.body.subscription.trial_ended_at], [200, null], id);
  }
  r = await call('GET', '/api/v1/subscriptions/nt_s2');
  assert.notEqual(r.body.subscription.trial_ended_at, null);
});

// Lago's serializer answers its DatesService's charges_from/to_datetime: within the
// subscription's life. An audit found the bare period: Jan 1 for a subscription made on
// Jan 10, which its own current usage counts from; Mar 31 for one terminated on Feb 10; a
// period for one not started.
test('current_billing_period_* lie within the subscription: from its start, to its termination, none while pending', async () => {
  const now = Date.parse((await call('GET', '/api/v1/test_clock')).body.test_clock.now);
  let r = await subscribe('life_c', 'monthly', 'life_s');
  const s = r.body.subscription;
  assert.equal(s.current_billing_period_started_at, s.started_at.replace('.000', ''));
  const usage = (await call('GET', '/api/v1/customers/life_c/current_usage?external_subscription_id=life_s')).body.customer_usage;
  assert.equal(s.current_billing_period_started_at, usage.from_datetime);
  await advance(new Date(now + 3 * 86400e3).toISOString().replace('.000', ''));
  r = await call('DELETE', '/api/v1/subscriptions/life_s');
  assert.equal(r.body.subscription.status, 'terminated');
  assert.equal(r.body.subscription.current_billing_period_ending_at, r.body.subscription.terminated_at);
  assert.equal(r.body.subscription.current_billing_period_started_at, s.started_at.replace('.000', ''));
  r = await subscribe('life_c', 'monthly', 'life_pending', { subscription_at: new Date(now + 40 * 86400e3).toISOString() });
  assert.equal(r.body.subscription.status, 'pending');
  assert.deepEqual(period(r.body.subscription), [null, null]);
});

// Found by an audit (audit 11): subscribing again to the same plan with new plan_overrides
// (its own plan replaced in place) dropped the request's ending_at without a word. Lago makes
// an overridden subscription's change a plan change (PlanUpgradeService: the request's
// ending_at when it names one, null included, else the current one's): so does Tally.
test('the same plan with new plan_overrides takes the request\'s ending_at, as a plan change does', async () => {
  const now = Math.floor(Date.parse((await call('GET', '/api/v1/test_clock')).body.test_clock.now) / 1000) * 1000;
  const day = 86400e3, at = (d) => new Date(now + d * day).toISOString().replace('.000', '');
  let r = await subscribe('ov_end', 'monthly', 'ov_end_s', { plan_overrides: { amount_cents: 4000 } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const lago_id = r.body.subscription.lago_id;
  r = await subscribe('ov_end', 'monthly', 'ov_end_s', { plan_overrides: { amount_cents: 3900 }, ending_at: at(10) });
  assert.deepEqual([r.status, r.body.subscription.lago_id, r.body.subscription.plan_amount_cents, r.body.subscription.ending_at],
    [200, lago_id, 3900, at(10)]);
  assert.equal((await call('GET', '/api/v1/subscriptions/ov_end_s')).body.subscription.ending_at, at(10));
  // not named: kept; null: removed; one not after the clock: refused, nothing changes
  r = await subscribe('ov_end', 'monthly', 'ov_end_s', { plan_overrides: { amount_cents: 3800 } });
  assert.deepEqual([r.body.subscription.plan_amount_cents, r.body.subscription.ending_at], [3800, at(10)]);
  r = await subscribe('ov_end', 'monthly', 'ov_end_s', { plan_overrides: { amount_cents: 3700 }, ending_at: at(-1) });
  assert.deepEqual([r.status, r.body.error_details], [422, { ending_at: ['invalid_date'] }]);
  r = await subscribe('ov_end', 'monthly', 'ov_end_s', { plan_overrides: { amount_cents: 3700 }, ending_at: null });
  assert.deepEqual([r.body.subscription.plan_amount_cents, r.body.subscription.ending_at], [3700, null]);
  r = await call('GET', '/api/v1/subscriptions/ov_end_s');
  assert.deepEqual([r.body.subscription.plan_amount_cents, r.body.subscription.ending_at], [3700, null]);
  // a pending one: the end must come after its start
  assert.equal((await subscribe('ov_end', 'monthly', 'ov_pend_s', { subscription_at: at(30) })).status, 200);
  r = await subscribe('ov_end', 'monthly', 'ov_pend_s', { plan_overrides: { amount_cents: 3000 }, ending_at: at(20) });
  assert.deepEqual([r.status, r.body.error_details], [422, { ending_at: ['invalid_date'] }]);
  r = await subscribe('ov_end', 'monthly', 'ov_pend_s', { plan_overrides: { amount_cents: 3000 }, ending_at: at(40) });
  assert.deepEqual([r.status, r.body.subscription.status, r.body.subscription.ending_at], [200, 'pending', at(40)]);
  // a downgrade scheduled on it follows the end past its switch, and never starts when the
  // end comes first, as after PUT
  r = await subscribe('ov_end', 'cheap', 'ov_end_s');
  assert.equal(r.body.subscription.next_plan_code, 'cheap');
  const sw = Date.parse(r.body.subscription.current_billing_period_ending_at) + 1000;
  const iso = (ms) => new Date(ms).toISOString().replace('.000', '');
  r = await subscribe('ov_end', 'monthly', 'ov_end_s', { plan_overrides: { amount_cents: 3600 }, ending_at: iso(sw + day) });
  assert.deepEqual([r.status, r.body.subscription.ending_at, r.body.subscription.next_plan_code], [200, iso(sw + day), 'cheap']);
  assert.equal((await call('GET', '/api/v1/subscriptions/ov_end_s?status=pending')).body.subscription.ending_at, iso(sw + day));
  const before = Math.floor((now + sw) / 2000) * 1000;
  r = await subscribe('ov_end', 'monthly', 'ov_end_s', { plan_overrides: { amount_cents: 3500 }, ending_at: iso(before) });
  assert.deepEqual([r.status, r.body.subscription.ending_at], [200, iso(before)]);
  await advance(iso(before + 1000));
  r = await call('GET', '/api/v1/subscriptions/ov_end_s?status=canceled');
  assert.deepEqual([r.body.subscription.plan_code, r.body.subscription.canceled_at], ['cheap', iso(before)]);
  r = await call('GET', '/api/v1/subscriptions/ov_end_s?status=terminated');
  assert.deepEqual([r.body.subscription.plan_amount_cents, r.body.subscription.terminated_at, r.body.subscription.next_plan_code],
    [3500, iso(before), null]);
});

// Found by an audit (audit 11): trial_ended_at was counted from the subscription's own start,
// so a plan change restarted the trial. Lago counts it from the first start under the external
// id (Subscription#initial_started_at, the one FreeTrialBillingService reads), and its job sets
// it on active subscriptions only: one ended (or not started) before the trial ended never
// shows it.
test('trial_ended_at counts from the first start under the external id, across plan changes', async () => {
  assert.equal((await call('POST', '/api/v1/plans', { plan: { code: 'trial_plus', name: 'trial_plus', interval: 'monthly', amount_cents: 2000, amount_currency: 'EUR', trial_period: 14 } })).status, 200);
  const day = 86400e3, iso = (ms) => new Date(ms).toISOString().replace('.000', '');
  let r = await subscribe('tr_c', 'trial', 'tr_s');
  const start = Date.parse(r.body.subscription.started_at);
  assert.equal((await subscribe('tr_c', 'trial', 'tr_re')).status, 200);
  await advance(iso(start + 10 * day));
  // an upgrade, and the same external id subscribed again after a termination
  r = await subscribe('tr_c', 'trial_plus', 'tr_s');
  assert.deepEqual([r.body.subscription.plan_code, r.body.subscription.trial_ended_at], ['trial_plus', null]);
  assert.equal((await call('DELETE', '/api/v1/subscriptions/tr_re')).status, 200);
  assert.equal((await subscribe('tr_c', 'trial', 'tr_re')).status, 200);
  await advance(iso(start + 14 * day));
  for (const id of ['tr_s', 'tr_re']) {
    r = await call('GET', `/api/v1/subscriptions/${id}`);
    assert.deepEqual([r.body.subscription.status, r.body.subscription.trial_ended_at], ['active', iso(start + 14 * day)], id);
  }
  // the ones ended on day 10 never saw their trial end
  r = await call('GET', '/api/v1/subscriptions?external_customer_id=tr_c&status[]=terminated');
  assert.deepEqual(r.body.subscriptions.map((s) => [s.external_id, s.trial_ended_at]).sort(), [['tr_re', null], ['tr_s', null]]);
  // a downgrade: pending, it shows none; started, the trial that ended under the external id
  r = await subscribe('tr_c', 'trial', 'tr_s');
  assert.equal(r.body.subscription.next_plan_code, 'trial');
  const sw = Date.parse(r.body.subscription.current_billing_period_ending_at) + 1000;
  r = await call('GET', '/api/v1/subscriptions/tr_s?status=pending');
  assert.deepEqual([r.body.subscription.plan_code, r.body.subscription.trial_ended_at], ['trial', null]);
  await advance(iso(sw + 1000));
  r = await call('GET', '/api/v1/subscriptions/tr_s');
  assert.deepEqual([r.body.subscription.plan_code, r.body.subscription.trial_ended_at], ['trial', iso(start + 14 * day)]);
});

// Found by an audit (audit 7, finding 4): an overridden subscription subscribed again to its
// plan's code without plan_overrides changed nothing, its ending_at ignored. Lago's
// CreateService compares the plan's id with the subscription's, a child plan of its own: a plan
// change to the plan itself (an upgrade when worth as much or more per year, else a downgrade),
// which takes the request's ending_at.
test('an overridden subscription subscribed again to its plan without overrides moves to the plan itself', async () => {
  const now = Math.floor(Date.parse((await call('GET', '/api/v1/test_clock')).body.test_clock.now) / 1000) * 1000;
  const day = 86400e3, at = (d) => new Date(now + d * day).toISOString().replace('.000', '');
  // below the plan's price: an upgrade, now, with the request's end
  let r = await subscribe('ovp_c', 'monthly', 'ovp_up', { plan_overrides: { amount_cents: 4000 } });
  const first = r.body.subscription.lago_id;
  r = await subscribe('ovp_c', 'monthly', 'ovp_up', { ending_at: at(20) });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const s = r.body.subscription;
  assert.notEqual(s.lago_id, first);
  assert.deepEqual([s.status, s.plan_code, s.plan_amount_cents, s.ending_at, s.previous_plan_code],
    ['active', 'monthly', 4900, at(20), 'monthly']);
  r = await call('GET', '/api/v1/subscriptions/ovp_up?status=terminated');
  assert.deepEqual([r.body.subscription.lago_id, r.body.subscription.plan_amount_cents], [first, 4000]);
  // above it: a downgrade to the plan at the period's end
  r = await subscribe('ovp_c', 'monthly', 'ovp_down', { plan_overrides: { amount_cents: 6000 } });
  r = await subscribe('ovp_c', 'monthly', 'ovp_down');
  assert.deepEqual([r.body.subscription.plan_amount_cents, r.body.subscription.next_plan_code], [6000, 'monthly']);
  r = await call('GET', '/api/v1/subscriptions/ovp_down?status=pending');
  assert.deepEqual([r.body.subscription.plan_amount_cents, r.body.subscription.previous_plan_code], [4900, 'monthly']);
  // a subscription on the plan itself, subscribed again without overrides: nothing changes
  r = await subscribe('ovp_c', 'monthly', 'ovp_plain');
  const plain = r.body.subscription.lago_id;
  r = await subscribe('ovp_c', 'monthly', 'ovp_plain', { ending_at: at(20) });
  assert.deepEqual([r.body.subscription.lago_id, r.body.subscription.ending_at], [plain, null]);
});

// Found by an audit (audit 7, finding 5): trial_ended_at is read from the plan's trial_period,
// which an edit could change under subscriptions that had one, moving an ended trial or making
// it vanish. Lago's Plans::UpdateService ignores trial_period on a plan attached to
// subscriptions (of any status; not those on a plan of their own): so does Tally.
test('a plan\'s trial_period is kept once the plan has subscriptions: an ended trial stays ended', async () => {
  const now = Math.floor(Date.parse((await call('GET', '/api/v1/test_clock')).body.test_clock.now) / 1000) * 1000;
  const day = 86400e3, iso = (ms) => new Date(ms).toISOString().replace('.000', '');
  const plan = (code) => call('POST', '/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents: 100, amount_currency: 'EUR', trial_period: 5 } });
  const edit = (code, body) => call('PUT', `/api/v1/plans/${code}`, { plan: body });
  assert.equal((await plan('trial_kept')).status, 200);
  assert.equal((await plan('trial_free')).status, 200);
  // without subscriptions it changes
  assert.equal((await edit('trial_free', { trial_period: 7 })).body.plan.trial_period, 7);
  let r = await subscribe('trk_c', 'trial_kept', 'trk_s');
  assert.equal(r.body.subscription.started_at, iso(now).replace('Z', '.000Z'));
  // a subscription on a plan of its own does not make the plan's trial fixed
  assert.equal((await subscribe('trk_c', 'trial_free', 'trk_own', { plan_overrides: { trial_period: 2 } })).status, 200);
  assert.equal((await edit('trial_free', { trial_period: 8 })).body.plan.trial_period, 8);
  await advance(iso(now + 6 * day));
  assert.equal((await call('GET', '/api/v1/subscriptions/trk_s')).body.subscription.trial_ended_at, iso(now + 5 * day));
  r = await edit('trial_kept', { trial_period: 30, name: 'renamed' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual([r.body.plan.trial_period, r.body.plan.name], [5, 'renamed']);
  assert.equal((await call('GET', '/api/v1/plans/trial_kept')).body.plan.trial_period, 5);
  assert.equal((await call('GET', '/api/v1/subscriptions/trk_s')).body.subscription.trial_ended_at, iso(now + 5 * day));
  // and once they have ended too, as Lago's attached_to_subscriptions? counts every status
  assert.equal((await call('DELETE', '/api/v1/subscriptions/trk_s')).status, 200);
  assert.equal((await edit('trial_kept', { trial_period: 1 })).body.plan.trial_period, 5);
  r = await call('GET', '/api/v1/subscriptions/trk_s?status=terminated');
  assert.equal(r.body.subscription.trial_ended_at, iso(now + 5 * day));
});

// Found by a lifecycle audit: " s1 " was kept as given, a subscription no event for "s1" could
// name, and a second POST with "s1" made another one beside it. Lago's
// Subscriptions::CreateService strips the external id and the name.
test('external_id and name are kept without the white space around them, as Lago strips them', async () => {
  await customer('strip_c');
  const r = await subscribe('strip_c', 'monthly', ' \tstrip_s1 \n', { name: '  Team A  ', ...past });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.subscription.external_id, 'strip_s1');
  assert.equal(r.body.subscription.name, 'Team A');
  assert.equal((await call('GET', '/api/v1/subscriptions/strip_s1')).status, 200);
  // the same subscription again, not a second one beside it
  const again = await subscribe('strip_c', 'monthly', 'strip_s1');
  assert.equal(again.body.subscription.lago_id, r.body.subscription.lago_id);
  const listed = await call('GET', '/api/v1/subscriptions?external_customer_id=strip_c');
  assert.deepEqual(listed.body.subscriptions.map((s) => s.external_id), ['strip_s1']);
  // a non-breaking space is no ASCII white space: kept, as Ruby's strip keeps it
  const nbsp = await subscribe('strip_c', 'monthly', '\u00a0strip_s2');
  assert.equal(nbsp.body.subscription.external_id, '\u00a0strip_s2');
});

// Found by an audit (report 6, finding 4): purchase_order_number, which Lago's subscription has
// (set on create and update, "added to invoices generated for this subscription"), was dropped:
// 200 and not echoed. It is kept, answered by every subscription answer, changed by PUT, carried
// into the subscription a plan change makes (unless the request names one), and kept across a
// restart; over 255 bytes, or not a string, is Lago's 422.
test('purchase_order_number is kept, answered, changed by PUT and carried by plan changes', async () => {
  await customer('po_c');
  let r = await subscribe('po_c', 'cheap', 'po_s', { purchase_order_number: 'PO-1', ...past });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.subscription.purchase_order_number, 'PO-1');
  assert.equal((await call('GET', '/api/v1/subscriptions/po_s')).body.subscription.purchase_order_number, 'PO-1');
  const listed = (await call('GET', '/api/v1/subscriptions?external_customer_id=po_c')).body.subscriptions;
  assert.deepEqual(listed.map((s) => s.purchase_order_number), ['PO-1']);
  // none: null
  r = await subscribe('po_c', 'cheap', 'po_none', past);
  assert.equal(r.body.subscription.purchase_order_number, null);
  // PUT changes it; a PUT that leaves it out keeps it; null clears it
  r = await call('PUT', '/api/v1/subscriptions/po_none', { subscription: { purchase_order_number: 'PO-2' } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.subscription.purchase_order_number, 'PO-2');
  r = await call('PUT', '/api/v1/subscriptions/po_none', { subscription: { name: 'kept' } });
  assert.equal(r.body.subscription.purchase_order_number, 'PO-2');
  r = await call('PUT', '/api/v1/subscriptions/po_none', { subscription: { purchase_order_number: null } });
  assert.equal(r.body.subscription.purchase_order_number, null);
  // refused, and nothing changes
  for (const [method, path, external_id] of [['POST', '/api/v1/subscriptions', 'po_long'], ['PUT', '/api/v1/subscriptions/po_s', undefined]]) {
    for (const [value, code] of [['x'.repeat(256), 'value_is_too_long'], [12, 'invalid_type']]) {
      const body = method === 'POST' ? { external_customer_id: 'po_c', plan_code: 'cheap', external_id, purchase_order_number: value } : { purchase_order_number: value };
      r = await call(method, path, { subscription: body });
      assert.equal(r.status, 422, JSON.stringify(r.body));
      assert.deepEqual(r.body.error_details, { purchase_order_number: [code] });
    }
  }
  assert.equal((await call('GET', '/api/v1/subscriptions/po_long')).status, 404);
  r = await call('PUT', '/api/v1/subscriptions/po_s', { subscription: { purchase_order_number: 'x'.repeat(255) } });
  assert.equal(r.body.subscription.purchase_order_number, 'x'.repeat(255));
  await call('PUT', '/api/v1/subscriptions/po_s', { subscription: { purchase_order_number: 'PO-1' } });
  // an upgrade (cheap -> monthly) carries it into the new subscription; a downgrade's pending
  // one takes the request's
  r = await subscribe('po_c', 'monthly', 'po_s');
  assert.equal(r.body.subscription.plan_code, 'monthly');
  assert.equal(r.body.subscription.purchase_order_number, 'PO-1');
  r = await subscribe('po_c', 'cheap', 'po_s', { purchase_order_number: 'PO-DOWN' });
  assert.equal(r.body.subscription.next_plan_code, 'cheap');
  assert.equal(r.body.subscription.purchase_order_number, 'PO-1'); // the current one, as it was
  r = await call('GET', '/api/v1/subscriptions/po_s?status=pending');
  assert.equal(r.body.subscription.purchase_order_number, 'PO-DOWN');
  // an upgrade naming one gives it to the new subscription
  r = await subscribe('po_c', 'monthly', 'po_none', { purchase_order_number: 'PO-UP' });
  assert.equal(r.body.subscription.plan_code, 'monthly');
  assert.equal(r.body.subscription.purchase_order_number, 'PO-UP');
  // a pending subscription given another plan takes the request's, as it takes its ending_at
  r = await subscribe('po_c', 'cheap', 'po_later', { subscription_at: '2031-01-01T00:00:00Z', purchase_order_number: 'PO-A' });
  assert.equal(r.body.subscription.status, 'pending');
  r = await subscribe('po_c', 'monthly', 'po_later', { purchase_order_number: 'PO-B' });
  assert.equal(r.body.subscription.purchase_order_number, 'PO-B');
  // kept by the store: the same after a restart
  await t.restart({ kill: true });
  const after = (await call('GET', '/api/v1/subscriptions?external_customer_id=po_c&status[]=active&status[]=pending&status[]=terminated&status[]=canceled')).body.subscriptions;
  assert.deepEqual(after.map((s) => [s.external_id, s.plan_code, s.status, s.purchase_order_number]).sort(), [
    ['po_later', 'monthly', 'pending', 'PO-B'],
    ['po_none', 'cheap', 'terminated', null],
    ['po_none', 'monthly', 'active', 'PO-UP'],
    ['po_s', 'cheap', 'pending', 'PO-DOWN'],
    ['po_s', 'cheap', 'terminated', 'PO-1'],
    ['po_s', 'monthly', 'active', 'PO-1'],
  ]);
});

// Found by an audit: Lago reads subscription_at and ending_at with Time.zone.iso8601 (UTC's zone),
// which takes every ISO 8601 form with a whole date: a time without an offset is UTC's, as
// Python's isoformat() writes a naive one; no seconds; the basic form; "+0200". Tally took RFC
// 3339 alone (422 invalid_date). An ending_at sent blank is no end, as null, where it was
// refused; integer ids are their decimal text, as Lago's `to_s` makes them.
test('dates in the ISO 8601 forms Lago reads, a blank ending_at, integer ids', async () => {
  for (const [i, subscription_at, ending_at, want] of [
    [1, '2030-06-01T10:00:00', '2030-09-01T10:00', ['2030-06-01T10:00:00Z', '2030-09-01T10:00:00Z']],
    [2, '20300601T100000Z', '2030-09-01T12:00:00+0200', ['2030-06-01T10:00:00Z', '2030-09-01T10:00:00Z']],
    [3, '2030-152T10:00:00Z', '', ['2030-06-01T10:00:00Z', null]],
    // RFC 3339's space for the T, as Python's str() writes it, taken as before (Lago refuses it)
    [4, '2030-06-01 10:00:00+00:00', '2030-09-01 12:00:00+02:00', ['2030-06-01T10:00:00Z', '2030-09-01T10:00:00Z']],
  ]) {
    const r = await subscribe(`iso_c${i}`, 'monthly', `iso_s${i}`, { subscription_at, ending_at });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual([r.body.subscription.subscription_at, r.body.subscription.ending_at], want, subscription_at);
  }
  // a blank subscription_at is refused, as Lago's ValidateService refuses it (a blank end is none)
  for (const subscription_at of ['2030-W22-6', '10:00:00', '2030-02-30', '', ' ']) {
    const r = await subscribe('iso_bad', 'monthly', 'iso_bad', { subscription_at });
    assert.deepEqual([r.status, r.body.error_details], [422, { subscription_at: ['invalid_date'] }], subscription_at);
  }
  // a blank ending_at clears the end on PUT, as null does (iso_s1 is pending: ?status=pending)
  const put = await call('PUT', '/api/v1/subscriptions/iso_s1?status=pending', { subscription: { ending_at: ' ' } });
  assert.deepEqual([put.status, put.body.subscription.ending_at], [200, null]);
  // integer ids
  const r = await subscribe(12345, 'monthly', 67890);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual([r.body.subscription.external_customer_id, r.body.subscription.external_id], ['12345', '67890']);
  // started_at is written with milliseconds, as Lago's serializer writes it (iso8601(3))
  assert.match(r.body.subscription.started_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.match(r.body.subscription.subscription_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
});
