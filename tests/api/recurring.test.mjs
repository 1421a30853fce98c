// Recurring metrics over real HTTP: a recurring value is every event of its metric since the
// first, as Lago's recurring scope reads them (by external subscription id), so seats, users and
// GPUs carry into each new period, across a plan change and a restart; a late event counts in
// the current period; a wallet pays the carried fee at each period's start, event or not, and
// a hard limit refuses an event it cannot pay. A metric's `recurring` cannot change, and a prorated unique
// count is refused rather than billed whole (prorated sums: prorated.test.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

let t;
const metric = {};
const post = async (path, body) => t.api(path, { method: 'POST', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const seconds = (iso) => Date.parse(iso) / 1000;
const advance = async (to) => ok(await post('/api/v1/test_clock/advance', { test_clock: { to } }));
const charge = (code, amount, extra = {}) => ({ billable_metric_id: metric[code], charge_model: 'standard', properties: { amount }, ...extra });

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-03-10T12:00:00Z']);
  for (const bm of [
    { code: 'seats', name: 'Seats', aggregation_type: 'sum_agg', field_name: 'seats', recurring: true },
    { code: 'users', name: 'Users', aggregation_type: 'unique_count_agg', field_name: 'user', recurring: true },
    { code: 'gpus', name: 'GPUs', aggregation_type: 'weighted_sum_agg', field_name: 'gpus', recurring: true, weighted_interval: 'seconds' },
    { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' },
  ]) metric[bm.code] = (await ok(await post('/api/v1/billable_metrics', { billable_metric: bm }))).billable_metric.lago_id;
  const plan = async (code, amount_cents, charges) => ok(await post('/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents, amount_currency: 'USD', charges } }));
  await plan('team', 0, [charge('seats', '10'), charge('users', '5'), charge('gpus', '31'), charge('calls', '1')]);
  await plan('seats', 0, [charge('seats', '10')]);
  await plan('seats_plus', 10000, [charge('seats', '20')]);
  for (const [customer, plan_code, external_id] of [['acme', 'team', 'team'], ['payer', 'seats', 'paid'], ['tight', 'seats', 'tight'], ['mover', 'seats', 'moving']]) {
    await ok(await post('/api/v1/customers', { customer: { external_id: customer, currency: 'USD' } }));
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: customer, plan_code, external_id, subscription_at: '2026-03-01T00:00:00Z' } }));
  }
});
after(async () => { await t.cleanup(); });

let n = 0;
const ev = (sub, code, properties = {}, extra = {}) => ({ transaction_id: `r${n++}`, external_subscription_id: sub, code, properties, ...extra });
const send = async (...events) => t.api('/api/v1/events/batch', { method: 'POST', body: { events } });
const sent = async (...events) => ok(await send(...events));
const usage = async (customer, sub) => (await ok(await t.api(`/api/v1/customers/${customer}/current_usage?external_subscription_id=${sub}`))).customer_usage;
const byCode = (u, code) => u.charges_usage.find((c) => c.billable_metric.code === code);
const shape = (u) => Object.fromEntries(u.charges_usage.map((c) => [c.billable_metric.code, [c.units, c.events_count, c.amount_cents]]));

test('each recurring type carries its value into the next period; a count does not', async () => {
  await sent(
    ev('team', 'seats', { seats: 3 }), ev('team', 'seats', { seats: 2 }),
    ev('team', 'users', { user: 'ann' }), ev('team', 'users', { user: 'bob' }),
    ev('team', 'gpus', { gpus: 2 }), // at 12:00 on the 10th: 21.5 of March's 31 days
    ev('team', 'calls'),
  );
  const march = await usage('acme', 'team');
  assert.equal(byCode(march, 'seats').amount_cents, 5000);
  assert.equal(byCode(march, 'gpus').amount_cents, 4300); // 2 x 21.5 / 31 units at 31 USD
  assert.equal(march.amount_cents, 5000 + 1000 + 4300 + 100);

  await advance('2026-04-05T00:00:00Z');
  const april = await usage('acme', 'team');
  assert.equal(april.from_datetime, '2026-04-01T00:00:00Z');
  assert.deepEqual(shape(april), {
    seats: ['5.0', 2, 5000], // Lago counts a recurring sum's events since the first
    users: ['2.0', 2, 1000],
    gpus: ['2.0', 0, 6200], // the level held all April
    calls: ['0.0', 0, 0],
  });
  assert.equal(april.amount_cents, 12200);

  await sent(ev('team', 'seats', { seats: -1 }), ev('team', 'users', { user: 'ann', operation_type: 'remove' }));
  const after = shape(await usage('acme', 'team'));
  assert.deepEqual(after.seats, ['4.0', 3, 4000]);
  assert.deepEqual(after.users, ['1.0', 1, 500]);
});

test('a late event of a recurring metric counts in the current period; of another metric, it does not', async () => {
  await sent(
    ev('team', 'seats', { seats: 10 }, { timestamp: seconds('2026-03-20T00:00:00Z') }),
    ev('team', 'users', { user: 'cy' }, { timestamp: seconds('2026-03-21T00:00:00Z') }),
    ev('team', 'gpus', { gpus: 1 }, { timestamp: seconds('2026-03-22T00:00:00Z') }),
    ev('team', 'calls', {}, { timestamp: seconds('2026-03-23T00:00:00Z') }),
  );
  assert.deepEqual(shape(await usage('acme', 'team')), {
    seats: ['14.0', 4, 14000],
    users: ['2.0', 2, 1000],
    gpus: ['3.0', 0, 9300],
    calls: ['0.0', 0, 0],
  });
});

test('a restart rebuilds the carried values from the store', async () => {
  const before = await usage('acme', 'team');
  await t.restart();
  assert.deepEqual(await usage('acme', 'team'), before);
  await t.restart({ kill: true });
  assert.deepEqual(await usage('acme', 'team'), before);
});

test('the next period starts from the previous one, and so on', async () => {
  await advance('2026-05-02T00:00:00Z');
  const may = await usage('acme', 'team');
  assert.equal(may.from_datetime, '2026-05-01T00:00:00Z');
  assert.deepEqual(shape(may), {
    seats: ['14.0', 4, 14000],
    users: ['2.0', 2, 1000],
    gpus: ['3.0', 0, 9300],
    calls: ['0.0', 0, 0],
  });
});

test('a wallet pays the carried fee at the period\'s first debit, once', async () => {
  await advance('2026-05-10T00:00:00Z');
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'payer', currency: 'USD', rate_amount: '1', name: 'W', granted_credits: '1000' } }))).wallet;
  await sent(ev('paid', 'seats', { seats: 3 }));
  const balance = async () => (await ok(await t.api(`/api/v1/wallets/${w.lago_id}`))).wallet.balance_cents;
  assert.equal(await balance(), 100000 - 3000);
  await advance('2026-06-03T00:00:00Z');
  assert.equal(byCode(await usage('payer', 'paid'), 'seats').amount_cents, 3000);
  await sent(ev('paid', 'seats', { seats: 1 }));
  assert.equal(await balance(), 100000 - 3000 - 4000); // June's 4 seats, the 3 carried included
  await sent(ev('paid', 'seats', { seats: 1 }));
  assert.equal(await balance(), 100000 - 3000 - 5000); // one seat more, not the carried ones again
  await checkWalletLedger(t, w.lago_id);
});

test('a hard limit: the period\'s carried seats take the credits left at its start; an event they leave unpaid is refused', async () => {
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'tight', currency: 'USD', rate_amount: '1', name: 'W', granted_credits: '35', limit: 'hard' } }))).wallet;
  await sent(ev('tight', 'seats', { seats: 3 }));
  await advance('2026-07-02T00:00:00Z');
  // July's 3 seats (30) took the 5 credits left at July's start, the invoice the rest
  const wallet = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}`))).wallet;
  assert.deepEqual([wallet.balance_cents, wallet.consumed_amount_cents], [0, 3500]);
  const r = await send(ev('tight', 'seats', { seats: 1 }));
  assert.equal(r.status, 402, await r.text());
  assert.equal(byCode(await usage('tight', 'tight'), 'seats').units, '3.0');
  await checkWalletLedger(t, w.lago_id);
});

test('an upgrade keeps the seats; a late event of the old plan\'s time reaches the new one', async () => {
  await sent(ev('moving', 'seats', { seats: 3 }));
  assert.equal(byCode(await usage('mover', 'moving'), 'seats').amount_cents, 3000);
  await advance('2026-07-15T00:00:00Z');
  const upgraded = (await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'mover', plan_code: 'seats_plus', external_id: 'moving' } }))).subscription;
  assert.equal(upgraded.plan_code, 'seats_plus');
  assert.deepEqual(byCode(await usage('mover', 'moving'), 'seats').units, '3.0');
  assert.equal(byCode(await usage('mover', 'moving'), 'seats').amount_cents, 6000);
  const late = await sent(ev('moving', 'seats', { seats: 2 }, { timestamp: seconds('2026-07-10T00:00:00Z') }));
  assert.notEqual(late.events[0].lago_subscription_id, upgraded.lago_id); // stored under the old one
  assert.equal(byCode(await usage('mover', 'moving'), 'seats').amount_cents, 10000);
  await t.restart();
  assert.equal(byCode(await usage('mover', 'moving'), 'seats').amount_cents, 10000);
});

test('a hold in a new period prices its own seat: the carried ones were paid at the period\'s start, once', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'holder', currency: 'USD' } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'holder', plan_code: 'seats', external_id: 'held' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'holder', currency: 'USD', rate_amount: '1', name: 'W', granted_credits: '100', limit: 'hard' } }))).wallet;
  await sent(ev('held', 'seats', { seats: 3 }));
  await advance('2026-08-02T00:00:00Z');
  const hold = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'held', code: 'seats', properties: { seats: 1 } } }))).authorization;
  assert.equal(hold.status, 'authorized');
  assert.equal(hold.amount_cents, 1000); // August's 3 carried seats were debited on August 1st
  const captured = (await ok(await post(`/api/v1/authorizations/${hold.lago_id}/capture`, { authorization: { properties: { seats: 1 } } }))).authorization;
  assert.equal(captured.captured_amount_cents, 1000);
  const after = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}`))).wallet;
  assert.equal(after.balance_cents, 10000 - 3000 - 4000);
  assert.equal(after.ongoing_usage_balance_cents, 0);
  const declined = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'held', code: 'seats', properties: { seats: 4 } } }))).authorization;
  assert.equal(declined.status, 'declined'); // 4 more seats cost 40, 30 are left
  await checkWalletLedger(t, w.lago_id);
});

test('a metric stays recurring or not; a prorated unique count in advance is refused', async () => {
  const seats = (await ok(await t.api('/api/v1/billable_metrics/seats'))).billable_metric;
  const r = await t.api('/api/v1/billable_metrics/seats', { method: 'PUT', body: { billable_metric: { ...seats, recurring: false } } });
  assert.equal(r.status, 422);
  assert.deepEqual((await r.json()).error_details, { recurring: ['value_is_immutable'] });
  const renamed = await t.api('/api/v1/billable_metrics/seats', { method: 'PUT', body: { billable_metric: { name: 'Seats!' } } });
  assert.equal(renamed.status, 200, await renamed.text());
  const calls = (await ok(await t.api('/api/v1/billable_metrics/calls'))).billable_metric;
  const sum = await t.api('/api/v1/billable_metrics/calls', { method: 'PUT', body: { billable_metric: { ...calls, aggregation_type: 'sum_agg', field_name: 'n', recurring: true } } });
  assert.equal(sum.status, 422);
  assert.deepEqual((await sum.json()).error_details, { recurring: ['value_is_immutable'] });
  // in arrears it is built (tests/api/prorated.test.mjs); in advance, not
  const inArrears = await post('/api/v1/plans', { plan: { code: 'pro', name: 'pro', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [charge('users', '1', { prorated: true })] } });
  assert.equal(inArrears.status, 200, await inArrears.text());
  const prorated = await post('/api/v1/plans', { plan: { code: 'pro_adv', name: 'pro_adv', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [charge('users', '1', { prorated: true, pay_in_advance: true })] } });
  assert.equal(prorated.status, 422);
  assert.deepEqual((await prorated.json()).error_details, { prorated: ['not_supported'] });
});

test('a scheduled downgrade: an event sent ahead waits for its period to be paid, and the seats added meanwhile carry into it', async () => {
  const setUp = async (customer, sub) => {
    await ok(await post('/api/v1/customers', { customer: { external_id: customer, currency: 'USD' } }));
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: customer, plan_code: 'seats_plus', external_id: sub } }));
    const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: customer, currency: 'USD', rate_amount: '1', name: 'W', granted_credits: '1000' } }))).wallet;
    await sent(ev(sub, 'seats', { seats: 3 })); // 3 seats at 20
    const down = (await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: customer, plan_code: 'seats', external_id: sub } }))).subscription;
    assert.equal(down.next_plan_code, 'seats');
    await sent(ev(sub, 'seats', { seats: 1 }, { timestamp: seconds('2026-09-05T00:00:00Z') }));
    return async () => (await ok(await t.api(`/api/v1/wallets/${w.lago_id}`))).wallet.balance_cents;
  };
  const balance = await setUp('downer', 'down');
  assert.equal(await balance(), 100000 - 6000); // September's seat is not paid in August
  await sent(ev('down', 'seats', { seats: 2 }, { timestamp: seconds('2026-08-20T00:00:00Z') }));
  assert.equal(await balance(), 100000 - 10000);

  const canceled = await setUp('canceler', 'gone');
  assert.equal((await t.api('/api/v1/subscriptions/gone', { method: 'DELETE' })).status, 200);
  assert.equal(await canceled(), 100000 - 6000); // the downgrade never runs: nothing of it paid

  await advance('2026-09-10T00:00:00Z');
  assert.deepEqual(byCode(await usage('downer', 'down'), 'seats').units, '6.0'); // 3 + 2 carried, 1 sent ahead
  await sent(ev('down', 'seats', { seats: 1 }));
  assert.equal(await balance(), 100000 - 10000 - 7000); // September's 7 seats at 10
  await t.restart();
  assert.equal(byCode(await usage('downer', 'down'), 'seats').amount_cents, 7000);
});

test('every charge\'s carried fee is debited at the period\'s start: a hold then prices its own step', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'pair', currency: 'USD' } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'pair', plan_code: 'team', external_id: 'pair' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'pair', currency: 'USD', rate_amount: '1', name: 'W', granted_credits: '90', limit: 'hard' } }))).wallet;
  await sent(ev('pair', 'seats', { seats: 3 }), ev('pair', 'users', { user: 'a' }), ev('pair', 'users', { user: 'b' }));
  const balance = async () => (await ok(await t.api(`/api/v1/wallets/${w.lago_id}`))).wallet.balance_cents;
  assert.equal(await balance(), 9000 - 4000);
  await advance('2026-10-02T00:00:00Z');
  const authorize = async (code, properties) => (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'pair', code, properties } }))).authorization;
  const hold = await authorize('seats', { seats: 1 });
  assert.equal(hold.status, 'authorized');
  assert.equal(await balance(), 1000); // October's 3 seats and 2 users, debited on October 1st
  assert.equal(hold.amount_cents, 1000);
  assert.equal((await ok(await post(`/api/v1/authorizations/${hold.lago_id}/capture`, { authorization: { properties: { seats: 1 } } }))).authorization.captured_amount_cents, 1000);
  assert.equal(await balance(), 0);
  assert.equal((await authorize('calls', {})).status, 'declined');
  assert.equal((await send(ev('pair', 'calls'))).status, 402);
  await checkWalletLedger(t, w.lago_id);
});

test('a scheduled downgrade in one batch: two events sent ahead, and seats added beside one', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'dg', currency: 'USD' } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'dg', plan_code: 'seats_plus', external_id: 'dg' } }));
  await sent(ev('dg', 'seats', { seats: 3 }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'dg', plan_code: 'seats', external_id: 'dg' } }));
  const ahead = (day) => ({ timestamp: seconds(`2026-11-0${day}T00:00:00Z`) });
  // both for the downgrade (its usage was built again for each, reading back the first unstored)
  await sent(ev('dg', 'seats', { seats: 1 }, ahead(5)), ev('dg', 'seats', { seats: 1 }, ahead(6)));
  // October's seats carried into the downgrade, then one more for it: the carried ones stay
  await sent(ev('dg', 'seats', { seats: 2 }), ev('dg', 'seats', { seats: 1 }, ahead(7)));
  await advance('2026-11-10T00:00:00Z');
  assert.equal(byCode(await usage('dg', 'dg'), 'seats').units, '8.0'); // 3 + 2, and 3 sent ahead
  await t.restart();
  assert.equal(byCode(await usage('dg', 'dg'), 'seats').amount_cents, 8000);
});

// Found by an audit: seats that did not change were paid by the wallet in their first period
// only; a period without events debited nothing (its carried fee waited for an event that
// never came, and the next event debited its own period only). Each period's carried units
// are now debited when it starts (on a test clock, at the advance that reaches it), across a
// restart; a wallet that cannot pay them leaves the rest to the invoice rather than refusing
// what already happened.
test('each period\'s carried seats are debited at its start, with or without an event', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'steady', currency: 'USD' } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'steady', plan_code: 'seats', external_id: 'steady' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'steady', currency: 'USD', rate_amount: '1', name: 'W', granted_credits: '75', limit: 'hard' } }))).wallet;
  await ok(await post('/api/v1/customers', { customer: { external_id: 'later', currency: 'USD' } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'later', plan_code: 'seats', external_id: 'later' } }));
  await sent(ev('steady', 'seats', { seats: 2 }), ev('later', 'seats', { seats: 1 }));
  // a wallet made after the seats: the seats of the periods after it are its
  const lw = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'later', currency: 'USD', rate_amount: '1', name: 'W', granted_credits: '100' } }))).wallet;
  const wallet = async (id) => (await ok(await t.api(`/api/v1/wallets/${id}`))).wallet;
  assert.deepEqual([(await wallet(w.lago_id)).balance_cents, (await wallet(lw.lago_id)).balance_cents], [7500 - 2000, 10000]);
  const now = Date.parse((await ok(await t.api('/api/v1/test_clock'))).test_clock.now);
  const month = (k) => { const d = new Date(now); d.setUTCMonth(d.getUTCMonth() + k, 3); return d.toISOString(); };
  await advance(month(1));
  assert.deepEqual([(await wallet(w.lago_id)).balance_cents, (await wallet(lw.lago_id)).balance_cents], [7500 - 4000, 10000 - 1000]);
  await t.restart({ kill: true });
  await advance(month(2));
  assert.deepEqual([(await wallet(w.lago_id)).balance_cents, (await wallet(lw.lago_id)).balance_cents], [7500 - 6000, 10000 - 2000]);
  await sent(ev('steady', 'seats', { seats: 0 }), ev('later', 'seats', { seats: 0 })); // their own step only: none
  assert.deepEqual([(await wallet(w.lago_id)).balance_cents, (await wallet(lw.lago_id)).balance_cents], [7500 - 6000, 10000 - 2000]);
  // 15 credits left for 20 of seats: the hard wallet pays what it has, the invoice the rest,
  // and the next event is refused for its own step alone
  await advance(month(3));
  const spent = await wallet(w.lago_id);
  assert.deepEqual([spent.balance_cents, spent.consumed_amount_cents], [0, 7500]);
  assert.equal((await send(ev('steady', 'seats', { seats: 1 }))).status, 402);
  assert.equal(byCode(await usage('steady', 'steady'), 'seats').amount_cents, 2000);
  await checkWalletLedger(t, w.lago_id);
  await checkWalletLedger(t, lw.lago_id);
});

// Found by an audit: a subscription that starts mid-period carrying seats (an upgrade, one
// terminated and made again under the same external id) paid for that first period only if an
// event came; the next periods were settled at their start. Its first period starts with it:
// debited at once, so a quiet customer pays what a busy one does.
test('a subscription that starts mid-period with carried seats is debited for them at once', async () => {
  const wallet = async (id) => (await ok(await t.api(`/api/v1/wallets/${id}`))).wallet.balance_cents;
  const made = [];
  for (const c of ['up_quiet', 'up_busy', 'again']) {
    await ok(await post('/api/v1/customers', { customer: { external_id: c, currency: 'USD' } }));
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'seats', external_id: c } }));
    const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: c, currency: 'USD', rate_amount: '1', name: 'W', granted_credits: '1000' } }))).wallet;
    await sent(ev(c, 'seats', { seats: 3 }));
    made.push(w);
  }
  const [quiet, busy, again] = made;
  for (const c of ['up_quiet', 'up_busy'])
    assert.equal((await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'seats_plus', external_id: c } }))).subscription.plan_code, 'seats_plus');
  await sent(ev('up_busy', 'seats', { seats: 0 }));
  // 3 seats at 10 on the old plan, then 3 at 20 on the new one from its start
  assert.deepEqual([await wallet(quiet.lago_id), await wallet(busy.lago_id)], [100000 - 3000 - 6000, 100000 - 3000 - 6000]);
  assert.equal((await t.api('/api/v1/subscriptions/again', { method: 'DELETE' })).status, 200);
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'again', plan_code: 'seats', external_id: 'again' } }));
  assert.equal(byCode(await usage('again', 'again'), 'seats').amount_cents, 3000);
  assert.equal(await wallet(again.lago_id), 100000 - 3000 - 3000);
  for (const w of made) await checkWalletLedger(t, w.lago_id);
});

// Found by an audit: a recurring value is every event of its external subscription id since
// the first, across plan changes; but another customer who took a terminated subscription's
// external id over inherited its seats, its usage showing them and its wallet paying for them
// at once and every period. The carried events are the customer's own.
test('another customer taking over an external id does not inherit its seats', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'first_owner', currency: 'USD' } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'first_owner', plan_code: 'seats', external_id: 'handed' } }));
  await sent(ev('handed', 'seats', { seats: 3 }));
  assert.equal((await t.api('/api/v1/subscriptions/handed', { method: 'DELETE' })).status, 200);
  await ok(await post('/api/v1/customers', { customer: { external_id: 'next_owner', currency: 'USD' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'next_owner', currency: 'USD', rate_amount: '1', name: 'W', granted_credits: '100' } }))).wallet;
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'next_owner', plan_code: 'seats', external_id: 'handed' } }));
  const seats = async () => byCode(await usage('next_owner', 'handed'), 'seats');
  assert.deepEqual([(await seats()).units, (await seats()).amount_cents], ['0.0', 0]);
  await sent(ev('handed', 'seats', { seats: 1 }));
  assert.deepEqual([(await seats()).units, (await seats()).amount_cents], ['1.0', 1000]);
  await t.restart({ kill: true }); // rebuilt from the store alike
  assert.deepEqual([(await seats()).units, (await seats()).amount_cents], ['1.0', 1000]);
  assert.equal((await ok(await t.api(`/api/v1/wallets/${w.lago_id}`))).wallet.balance_cents, 10000 - 1000);
  await checkWalletLedger(t, w.lago_id);
});
