// Prorated charges over real HTTP (Lago's `prorated: true` on a recurring sum_agg, in arrears,
// standard, volume or graduated). Lago's rule (Events::Stores::PostgresStore#prorated_sum,
// BillableMetrics::ProratedAggregations::SumService): each event of the period weighs
// value × (DATE(period's last day) - DATE(timestamp) + 1) / days of the billing period, in the
// customer's zone; the value carried from earlier periods weighs the days from the usage's
// start; the sum is ceiled to 5 decimals; the fee rounds once to the cent, half up. Volume picks
// its range from the full units. Current usage shows the full units. Live usage prices the
// period to its end at each event, so a wallet pays the prorated step at once, a removal gives
// back the days the unit will not be present, and a hold prices the same step. Graduated
// (ChargeModels::ProratedGraduatedService): the running total of full values, in time order,
// puts each seat in its tier, and the seat costs the tier's price × its days / the period's;
// the flat amounts are those of the tiers the highest total reached.
//
// A prorated unique_count_agg (seats as distinct user ids; Lago's
// Events::Stores::Postgres::UniqueCountQuery#prorated_query): each user counts the local days it
// is present, from the day it is added to the day it is removed, both included, or to the
// period's last day; a removal followed by an add on the same local day is ignored; a user
// present before the period counts from its start; Σ days / days of the billing period, ceiled
// to 5 decimals.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

let t;
let seats;
const post = async (path, body) => t.api(path, { method: 'POST', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const advance = async (to) => ok(await post('/api/v1/test_clock/advance', { test_clock: { to } }));
const seconds = (iso) => Date.parse(iso) / 1000;
let n = 0;
const ev = (sub, value, extra = {}) => ({ transaction_id: `p${n++}`, external_subscription_id: sub, code: 'seats', properties: { seats: value }, ...extra });
const uev = (sub, user, op, at) => ({ transaction_id: `u${n++}`, external_subscription_id: sub, code: 'users', properties: { user, ...(op ? { operation_type: op } : {}) }, ...(at ? { timestamp: seconds(at) } : {}) });
let users;
const send = async (...events) => t.api('/api/v1/events/batch', { method: 'POST', body: { events } });
const sent = async (...events) => ok(await send(...events));
const usage = async (customer, sub = customer) => (await ok(await t.api(`/api/v1/customers/${customer}/current_usage?external_subscription_id=${sub}`))).customer_usage;
const seatUsage = async (customer, sub) => {
  const c = (await usage(customer, sub)).charges_usage[0];
  return [c.units, c.total_aggregated_units, c.events_count, c.amount_cents];
};
const plan = async (code, charge) => ok(await post('/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [{ billable_metric_id: seats, prorated: true, ...charge }] } }));
const subscribe = async (customer, plan_code, subscription_at, extra = {}) => {
  await ok(await post('/api/v1/customers', { customer: { external_id: customer, currency: 'USD', ...extra } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: customer, plan_code, external_id: customer, subscription_at } }));
};

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-03-11T08:00:00Z']);
  seats = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'seats', name: 'Seats', aggregation_type: 'sum_agg', field_name: 'seats', recurring: true } }))).billable_metric.lago_id;
  await plan('std', { charge_model: 'standard', properties: { amount: '30' } });
  await plan('vol', { charge_model: 'volume', properties: { volume_ranges: [
    { from_value: 0, to_value: 5, per_unit_amount: '10', flat_amount: '0' },
    { from_value: 6, to_value: null, per_unit_amount: '5', flat_amount: '0' },
  ] } });
  for (const c of ['carry', 'vol', 'wal']) await subscribe(c, c === 'vol' ? 'vol' : 'std', '2026-03-01T00:00:00Z');
  users = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'users', name: 'Users', aggregation_type: 'unique_count_agg', field_name: 'user', recurring: true } }))).billable_metric.lago_id;
  const userPlan = async (code, charge) => ok(await post('/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [{ billable_metric_id: users, prorated: true, ...charge }] } }));
  // 31 USD a user-month: a day of March costs 1 USD
  await userPlan('ustd', { charge_model: 'standard', properties: { amount: '31' } });
  await userPlan('uvol', { charge_model: 'volume', properties: { volume_ranges: [
    { from_value: 0, to_value: 1, per_unit_amount: '20', flat_amount: '0' },
    { from_value: 2, to_value: null, per_unit_amount: '10', flat_amount: '0' },
  ] } });
  await subscribe('useat', 'ustd', '2026-03-01T00:00:00Z');
  await subscribe('uvol', 'uvol', '2026-03-01T00:00:00Z');
  // the first user 31 USD a month (1 a day of March), each next one 15.5
  await userPlan('ugrad', { charge_model: 'graduated', properties: { graduated_ranges: [
    { from_value: 0, to_value: 1, per_unit_amount: '31', flat_amount: '0' },
    { from_value: 2, to_value: null, per_unit_amount: '15.5', flat_amount: '0' },
  ] } });
  await subscribe('ugrad', 'ugrad', '2026-03-01T00:00:00Z');
});
after(async () => { await t.cleanup(); });

test('only a recurring sum or unique count in arrears is prorated; in advance is refused', async () => {
  const inAdvance = { charge_model: 'standard', pay_in_advance: true, properties: { amount: '1' } };
  const cases = [
    { billable_metric_id: seats, ...inAdvance },
    { billable_metric_id: users, ...inAdvance },
  ];
  for (const charge of cases) {
    const r = await post('/api/v1/plans', { plan: { code: 'no', name: 'no', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [{ ...charge, prorated: true }] } });
    assert.equal(r.status, 422, JSON.stringify(charge));
    assert.deepEqual((await r.json()).error_details, { prorated: ['not_supported'] });
  }
});

// ChargeModels::ProratedGraduatedService over a unique count's rows: each add, in time order,
// is one more user in the tier the running count puts it in, priced for the days it stays;
// a removal takes one off the count and ends its user's days.
test('graduated unique users: each add takes the tier of the count at its time, for its days', async () => {
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'ugrad', currency: 'USD', rate_amount: '1', name: 'W', granted_credits: '100', limit: 'hard' } }))).wallet;
  const balance = async () => (await ok(await t.api(`/api/v1/wallets/${w.lago_id}`))).wallet.balance_cents;
  // u1 now (the 11th, 08:00): the first user, 21 days at 1 USD
  await sent(uev('ugrad', 'u1'));
  assert.deepEqual(await userUsage('ugrad'), ['1.0', 2100]);
  // u2 an hour earlier: it is the first, u1 the second (21 days at 0.5): 31.5
  await sent(uev('ugrad', 'u2', 'add', '2026-03-11T07:00:00Z'));
  assert.deepEqual(await userUsage('ugrad'), ['2.0', 3150]);
  // u3 on the 3rd: the first for 29 days; u2 and u1 move up a tier: 29 + 10.5 + 10.5
  await sent(uev('ugrad', 'u3', 'add', '2026-03-03T10:00:00Z'));
  assert.deepEqual(await userUsage('ugrad'), ['3.0', 5000]);
  assert.equal(await balance(), 10000 - 5000);
  // u3 left on the 8th (3rd..8th: 6 days): u2 is the first again: 6 + 21 + 10.5, and the
  // wallet has the difference back
  await sent(uev('ugrad', 'u3', 'remove', '2026-03-08T12:00:00Z'));
  assert.deepEqual(await userUsage('ugrad'), ['2.0', 3750]);
  assert.equal(await balance(), 10000 - 3750);
  // a hold for a fourth user now: the third in the count, 21 days at 0.5
  const hold = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'ugrad', code: 'users', properties: { user: 'u4' } } }))).authorization;
  assert.equal(hold.amount_cents, 1050);
  await ok(await post(`/api/v1/authorizations/${hold.lago_id}/capture`, { authorization: { properties: { user: 'u4' } } }));
  assert.deepEqual(await userUsage('ugrad'), ['3.0', 4800]);
  assert.equal(await balance(), 10000 - 4800);
  await checkWalletLedger(t, w.lago_id);
});

test('seats added on the 11th of March weigh 21 of its 31 days', async () => {
  await sent(ev('carry', 2));
  // 2 × 21 / 31 = 1.3548387.. ceil(5) 1.35484; × 30 USD = 40.6452 -> 4065 cents; units shown: 2
  assert.deepEqual(await seatUsage('carry', 'carry'), ['2.0', '2.0', 1, 4065]);
});

test('volume picks its range from the full units and prices the prorated ones', async () => {
  await sent(ev('vol', 6));
  // 6 × 21 / 31 = 4.0645161.. ceil(5) 4.06452; 6 full units -> the 6.. range at 5 USD:
  // 20.3226 -> 2032 cents (the prorated units would have chosen 0..5 at 10 USD: 4065)
  assert.deepEqual(await seatUsage('vol', 'vol'), ['6.0', '6.0', 1, 2032]);
});

const userUsage = async (customer) => {
  const c = (await usage(customer)).charges_usage[0];
  return [c.units, c.amount_cents];
};
let uwallet;
const uBalance = async () => (await ok(await t.api(`/api/v1/wallets/${uwallet}`))).wallet.balance_cents;

test('unique users: added on the 11th, each weighs 21 of 31 days; a hard wallet pays each step and refuses what it cannot', async () => {
  uwallet = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'useat', currency: 'USD', rate_amount: '1', name: 'W', granted_credits: '50', limit: 'hard' } }))).wallet.lago_id;
  await sent(uev('useat', 'ann')); // 21 / 31 = 0.67742 (ceil 5) × 31 = 21.00002 -> 2100
  assert.deepEqual(await userUsage('useat'), ['1.0', 2100]);
  assert.equal(await uBalance(), 5000 - 2100);
  await sent(uev('useat', 'bob', 'add')); // 42 / 31 = 1.35484 × 31 -> 4200
  await sent(uev('useat', 'ann', 'add')); // present already: nothing
  assert.deepEqual(await userUsage('useat'), ['2.0', 4200]);
  assert.equal(await uBalance(), 800);
  // a third user would be a step of 2100 > 800 left
  assert.equal((await send(uev('useat', 'cid'))).status, 402);
  assert.deepEqual(await userUsage('useat'), ['2.0', 4200]);
  assert.equal(await uBalance(), 800);
});

test('unique users under volume: the range from the full count, the price on the prorated units', async () => {
  await sent(uev('uvol', 'ann'), uev('uvol', 'bob'));
  // 42 / 31 = 1.35484; 2 users -> the 2.. range at 10 USD: 13.5484 -> 1355 (the prorated
  // units' own range, 0..1 at 20 USD, would give 2710)
  assert.deepEqual(await userUsage('uvol'), ['2.0', 1355]);
});

test('graduated: the running total puts each seat in its tier, priced for its days; a late seat moves later ones up a tier', async () => {
  await plan('grad', { charge_model: 'graduated', properties: { graduated_ranges: [
    { from_value: 0, to_value: 2, per_unit_amount: '31', flat_amount: '5' },
    { from_value: 3, to_value: null, per_unit_amount: '62', flat_amount: '7' },
  ] } });
  await subscribe('grad', 'grad', '2026-03-01T00:00:00Z');
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'grad', currency: 'USD', rate_amount: '1', name: 'W', granted_credits: '200', limit: 'hard' } }))).wallet;
  const balance = async () => (await ok(await t.api(`/api/v1/wallets/${w.lago_id}`))).wallet.balance_cents;
  const at = (iso) => ({ timestamp: seconds(iso) });
  // a seat all March: 31 USD + the first flat 5
  await sent(ev('grad', 1, at('2026-03-01T10:00:00Z')));
  assert.deepEqual(await seatUsage('grad', 'grad'), ['1.0', '1.0', 1, 3600]);
  // two from the 10th (22 days): the 2nd in the first tier, 31 × 22/31 = 22; the 3rd in the
  // second, 62 × 22/31 = 44; both flats: 31 + 22 + 44 + 12 = 109 USD
  await sent(ev('grad', 2, at('2026-03-10T12:00:00Z')));
  assert.deepEqual(await seatUsage('grad', 'grad'), ['3.0', '3.0', 2, 10900]);
  assert.equal(await balance(), 20000 - 10900);
  // a seat from the 6th sent late (26 days) takes the first tier's last place, 26 USD, and
  // both seats of the 10th move to the second: 31 + 26 + 44 + 44 + 12 = 157 USD
  await sent(ev('grad', 1, at('2026-03-06T12:00:00Z')));
  assert.deepEqual(await seatUsage('grad', 'grad'), ['4.0', '4.0', 3, 15700]);
  assert.equal(await balance(), 20000 - 15700);
  // one leaves today, the 11th (21 days back): the top seat, of the second tier, 62 × 21/31 =
  // 42 back; the flats stay those of the highest total
  await sent(ev('grad', -1));
  assert.deepEqual(await seatUsage('grad', 'grad'), ['3.0', '3.0', 4, 11500]);
  assert.equal(await balance(), 20000 - 11500);
  // a hold for one more seat prices the same step, 42 USD, and its capture pays it
  const hold = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'grad', code: 'seats', properties: { seats: 1 } } }))).authorization;
  assert.equal(hold.status, 'authorized');
  assert.equal(hold.amount_cents, 4200);
  const captured = (await ok(await post(`/api/v1/authorizations/${hold.lago_id}/capture`, { authorization: { properties: { seats: 1 } } }))).authorization;
  assert.equal(captured.captured_amount_cents, 4200);
  assert.deepEqual(await seatUsage('grad', 'grad'), ['4.0', '4.0', 5, 15700]);
  assert.equal(await balance(), 20000 - 15700);
  // two more would cost 84 USD, more than the 43 left: refused, nothing changed
  assert.equal((await send(ev('grad', 2))).status, 402);
  assert.deepEqual(await seatUsage('grad', 'grad'), ['4.0', '4.0', 5, 15700]);
  assert.equal(await balance(), 4300);
  await checkWalletLedger(t, w.lago_id);
});

test('graduated with pricing groups: each team\'s seats fill their own tiers', async () => {
  await plan('gradg', { charge_model: 'graduated', properties: { pricing_group_keys: ['team'], graduated_ranges: [
    { from_value: 0, to_value: 1, per_unit_amount: '31', flat_amount: '0' },
    { from_value: 2, to_value: null, per_unit_amount: '62', flat_amount: '0' },
  ] } });
  await subscribe('gradg', 'gradg', '2026-03-01T00:00:00Z');
  const at = (iso) => ({ timestamp: seconds(iso) });
  // red: a seat all March (31) and one from the 10th in its second tier (62 × 22/31 = 44);
  // blue: a seat from the 10th, its first tier (31 × 22/31 = 22)
  await sent(
    { ...ev('gradg', 1, at('2026-03-01T10:00:00Z')), properties: { seats: 1, team: 'red' } },
    { ...ev('gradg', 1, at('2026-03-10T10:00:00Z')), properties: { seats: 1, team: 'red' } },
    { ...ev('gradg', 1, at('2026-03-10T11:00:00Z')), properties: { seats: 1, team: 'blue' } },
  );
  const c = (await usage('gradg')).charges_usage[0];
  assert.equal(c.amount_cents, 9700);
  assert.deepEqual(c.grouped_usage.map((g) => [g.grouped_by.team, g.units, g.amount_cents]).sort(),
    [['blue', '1.0', 2200], ['red', '2.0', 7500]]);
});

test('a hard wallet pays the prorated step, refuses what it cannot pay, and a removal gives days back', async () => {
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'wal', currency: 'USD', rate_amount: '1', name: 'W', granted_credits: '25', limit: 'hard' } }))).wallet;
  await sent(ev('wal', 1)); // 21 / 31 = 0.67742 (ceil 5) × 30 = 20.3226 -> 2032
  const wallet = async () => (await ok(await t.api(`/api/v1/wallets/${w.lago_id}`))).wallet;
  assert.equal((await wallet()).balance_cents, 2500 - 2032);
  // one more seat: 42 / 31 = 1.35484 × 30 = 40.6452 -> 4065, a step of 2033 > 468 left
  assert.equal((await send(ev('wal', 1))).status, 402);
  assert.equal((await wallet()).balance_cents, 468);
  // a hold of 0.2 seat: (21 + 0.2 × 21) / 31 = 0.8129032.. ceil 0.81291 × 30 = 24.3873 -> 2439,
  // a step of 2439 - 2032 = 407
  const hold = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'wal', code: 'seats', properties: { seats: 0.2 } } }))).authorization;
  assert.equal(hold.status, 'authorized');
  assert.equal(hold.amount_cents, 407);
  const captured = (await ok(await post(`/api/v1/authorizations/${hold.lago_id}/capture`, { authorization: { properties: { seats: 0.2 } } }))).authorization;
  assert.equal(captured.captured_amount_cents, 407);
  assert.equal((await wallet()).balance_cents, 2500 - 2439);
  assert.deepEqual(await seatUsage('wal', 'wal'), ['1.2', '1.2', 2, 2439]);
  // the seat leaves on the 21st: -1 × 11 / 31; (25.2 - 11) / 31 = 0.4580645.. ceil 0.45807
  // × 30 = 13.7421 -> 1374: 2439 - 1374 = 1065 come back
  await advance('2026-03-21T09:00:00Z');
  await sent(ev('wal', -1));
  assert.deepEqual(await seatUsage('wal', 'wal'), ['0.2', '0.2', 3, 1374]);
  assert.equal((await wallet()).balance_cents, 2500 - 1374);
  await checkWalletLedger(t, w.lago_id);
});

test('unique users: removed on the 21st (the day counts), re-added on the 25th; a remove and re-add the same day changes nothing', async () => {
  // the clock is at the 21st: ann's days are the 11th..21st, 11 of them; bob's 21: 32 / 31 =
  // 1.03226 × 31 = 32.00006 -> 3200, 1000 back to the wallet
  await sent(uev('useat', 'ann', 'remove'));
  assert.deepEqual(await userUsage('useat'), ['1.0', 3200]);
  assert.equal(await uBalance(), 1800);
  await advance('2026-03-25T12:00:00Z');
  // ann back on the 25th: 7 more days, 39 / 31 = 1.25807 × 31 = 39.00017 -> 3900
  await sent(uev('useat', 'ann', 'add', '2026-03-25T10:00:00Z'));
  assert.deepEqual(await userUsage('useat'), ['2.0', 3900]);
  assert.equal(await uBalance(), 1100);
  // bob leaves at 11:00 (his days 11th..25th: 15, 33 / 31 -> 3300, 600 back) and comes back at
  // 11:30 the same day: the removal is ignored, his 21 days again
  await sent(uev('useat', 'bob', 'remove', '2026-03-25T11:00:00Z'));
  assert.deepEqual(await userUsage('useat'), ['1.0', 3300]);
  assert.equal(await uBalance(), 1700);
  await sent(uev('useat', 'bob', 'add', '2026-03-25T11:30:00Z'));
  assert.deepEqual(await userUsage('useat'), ['2.0', 3900]);
  assert.equal(await uBalance(), 1100);
  // a late event, earlier than the last: cid added on the 24th and removed on the 25th, sent in
  // reverse order: 2 days, 41 / 31 = 1.32259 × 31 = 41.00029 -> 4100
  await sent(uev('useat', 'cid', 'remove', '2026-03-25T09:00:00Z'));
  assert.deepEqual(await userUsage('useat'), ['2.0', 3900]);
  await sent(uev('useat', 'cid', 'add', '2026-03-24T09:00:00Z'));
  assert.deepEqual(await userUsage('useat'), ['2.0', 4100]);
  assert.equal(await uBalance(), 900);
  await checkWalletLedger(t, uwallet);
});

test('an estimate names no fee: a prorated charge is billed in arrears, as in Lago', async () => {
  const r = await post('/api/v1/events/estimate_fees', { event: { external_subscription_id: 'carry', code: 'seats', properties: { seats: 1 } } });
  assert.equal(r.status, 422);
  assert.deepEqual((await r.json()).error_details, { code: ['does_not_match_an_instant_charge'] });
});

test('April: carried seats count whole; a seat added on the 20th weighs 11 days and leaves on the 25th', async () => {
  await advance('2026-04-20T10:00:00Z');
  // the 2 seats carried from March: 2 × 30 / 30 = 2 × 30 USD
  assert.deepEqual(await seatUsage('carry', 'carry'), ['2.0', '2.0', 1, 6000]);
  // the 4 graduated seats carried as one total, whole: 2 × 31 + 2 × 62 + both flats 12
  assert.deepEqual(await seatUsage('grad', 'grad'), ['4.0', '4.0', 5, 19800]);
  await subscribe('apr', 'std', '2026-04-01T00:00:00Z');
  await sent(ev('apr', 1)); // 11 / 30 = 0.36667 (ceil 5) × 30 = 11.0001 -> 1100
  assert.deepEqual(await seatUsage('apr', 'apr'), ['1.0', '1.0', 1, 1100]);
  await advance('2026-04-25T00:00:00Z');
  await sent(ev('apr', -1)); // (11 - 6) / 30 = 0.16667 × 30 = 5.0001 -> 500; units shown 0
  assert.deepEqual(await seatUsage('apr', 'apr'), ['0.0', '0.0', 2, 500]);
});

test('April: users present at the end of March are carried and count whole', async () => {
  // ann and bob: 2 × 30 / 30 × 31 USD
  assert.deepEqual(await userUsage('useat'), ['2.0', 6200]);
  assert.deepEqual(await userUsage('uvol'), ['2.0', 2000]);
  // graduated: u2, u1, u4 carried in the order of their first adds, the whole month:
  // 31 + 15.5 + 15.5
  assert.deepEqual(await userUsage('ugrad'), ['3.0', 6200]);
  // u2, the first, left on the 10th: 10 of April's 30 days at 31, the others 30 at 15.5:
  // (310 + 465 + 465) / 30 = 41.33333 (u1 first would make it 51.67)
  await sent(uev('ugrad', 'u2', 'remove', '2026-04-10T12:00:00Z'));
  assert.deepEqual(await userUsage('ugrad'), ['2.0', 4133]);
  // an add sent again for u2 in late March (a sync of the seats present, arriving late) moves
  // nothing: u2 had been present since the 11th, and stays the first
  await sent(uev('ugrad', 'u2', 'add', '2026-03-28T10:00:00Z'));
  assert.deepEqual(await userUsage('ugrad'), ['2.0', 4133]);
});

test('days are the customer\'s local dates, over the whole period when the subscription starts within it', async () => {
  await subscribe('ny', 'std', '2026-04-10T16:00:00Z', { timezone: 'America/New_York' });
  // 02:00 UTC on the 20th is the 19th in New York: days 19..30, 12 of April's 30 (the
  // divisor stays 30 though the subscription started on the 10th): 12 / 30 × 30 = 12 USD
  await sent(ev('ny', 1, { timestamp: seconds('2026-04-20T02:00:00Z') }));
  assert.deepEqual(await seatUsage('ny', 'ny'), ['1.0', '1.0', 1, 1200]);
});

// Lago's VolumeService charged nothing at 0 units until lago-api#5760 (2026-06) gave volume the
// first range's flat amount at 0 units, as graduated's first tier. Negative prorated units
// count as 0 (ProratedAggregations clamps them before pricing), so a removal alone costs it too.
test('a volume charge at 0 prorated units costs its first range\'s flat amount', async () => {
  await plan('volflat', { charge_model: 'volume', properties: { volume_ranges: [
    { from_value: 0, to_value: 2, per_unit_amount: '9', flat_amount: '5' },
    { from_value: 3, to_value: null, per_unit_amount: '3', flat_amount: '1' },
  ] } });
  await subscribe('flat', 'volflat', '2026-04-01T00:00:00Z');
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'flat', currency: 'USD', rate_amount: '1', name: 'W', granted_credits: '100', limit: 'hard' } }))).wallet;
  // a seat added and removed the same day weighs no day: 0 prorated units, 0 full units, the
  // first range's flat 5 USD
  await sent(ev('flat', 1), ev('flat', -1));
  assert.deepEqual(await seatUsage('flat'), ['0.0', '0.0', 2, 500]);
  assert.equal((await ok(await t.api(`/api/v1/wallets/${w.lago_id}`))).wallet.balance_cents, 9500);
  // a removal alone: negative prorated units price as 0 units, the same flat amount
  await sent(ev('flat', -1));
  assert.deepEqual(await seatUsage('flat'), ['0.0', '0.0', 3, 500]);
  assert.equal((await ok(await t.api(`/api/v1/wallets/${w.lago_id}`))).wallet.balance_cents, 9500);
});

test('a restart, clean or SIGKILL, gives the same current usage', async () => {
  const all = async () => Promise.all(['carry', 'vol', 'wal', 'apr', 'ny', 'useat', 'uvol', 'ugrad', 'grad', 'gradg'].map((c) => usage(c)));
  const before = await all();
  await t.restart();
  assert.deepEqual(await all(), before);
  await t.restart({ kill: true });
  assert.deepEqual(await all(), before);
});
