// Periods that move under live usage, each found by a black-box audit comparing live usage and
// wallets with what a restart rebuilds: a new period carried over live against one built from
// the store; an event sent ahead under a subscription that a plan change replaced; a
// customer's new time zone (the period's start moves, and must not be paid again); an upgrade
// over a scheduled downgrade (as in Lago, the downgrade is canceled).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scenario } from '../lib/scenario.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';
import { rmSync } from 'node:fs';
import { join } from 'node:path';

const server = () => scenario('2026-03-10T12:00:00Z', 'p');
const seconds = (iso) => Date.parse(iso) / 1000;
const units = (u, code) => u.charges_usage.find((c) => c.billable_metric.code === code).units;

test('a unique count whose value went again carries its fee into the next period live as after a restart', async () => {
  const h = await server();
  try {
    const users = await h.metric({ code: 'users', name: 'Users', aggregation_type: 'unique_count_agg', field_name: 'u', recurring: true });
    const calls = await h.metric({ code: 'calls', name: 'Calls', aggregation_type: 'count_agg' });
    await h.plan('p', [
      { billable_metric_id: users, charge_model: 'graduated', properties: { graduated_ranges: [{ from_value: 0, to_value: 10, per_unit_amount: '1', flat_amount: '5' }, { from_value: 11, to_value: null, per_unit_amount: '1', flat_amount: '0' }] } },
      { billable_metric_id: calls, charge_model: 'standard', properties: { amount: '1' } }]);
    await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD' } });
    await h.subscribe('c', 'p', 's', { subscription_at: '2026-03-01T00:00:00Z' });
    const w = await h.wallet('c', 100);
    await h.sent(h.ev('s', 'users', { u: 'x' }));
    await h.sent(h.ev('s', 'users', { u: 'x', operation_type: 'remove' }));
    const march = await h.balance(w);
    await h.advance('2026-04-10T00:00:00Z');
    await h.sent(h.ev('s', 'calls')); // April's first debit, the period opened live
    assert.equal(march - await h.balance(w), 500 + 100); // the carried flat fee, and the call
    await h.t.restart();
    const before = await h.balance(w);
    await h.sent(h.ev('s', 'calls')); // built from the store now: only the call
    assert.equal(before - await h.balance(w), 100);
    await checkWalletLedger(h.t, w);
  } finally { await h.t.cleanup(); }
});

test('an event sent ahead before an upgrade counts in the new subscription\'s next period, live as after a restart', async () => {
  const h = await server();
  try {
    const seats = await h.metric({ code: 'seats', name: 'Seats', aggregation_type: 'sum_agg', field_name: 'n', recurring: true });
    const charges = [{ billable_metric_id: seats, charge_model: 'standard', properties: { amount: '1' } }];
    await h.plan('small', charges, 1000);
    await h.plan('big', charges, 3000);
    await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD' } });
    await h.subscribe('c', 'small', 's', { subscription_at: '2026-01-01T00:00:00Z' });
    await h.sent(h.ev('s', 'seats', { n: 2 }), h.ev('s', 'seats', { n: 5 }, { timestamp: seconds('2026-04-05T00:00:00Z') }));
    await h.advance('2026-03-20T00:00:00Z');
    await h.subscribe('c', 'big', 's'); // upgrade: the April event stays stored under 'small'
    await h.sent(h.ev('s', 'seats', { n: 0 })); // the upgrade's usage is in the book
    await h.advance('2026-04-10T00:00:00Z');
    const live = await h.usage('c', 's');
    assert.equal(units(live, 'seats'), '7.0');
    await h.t.restart();
    assert.deepEqual(await h.usage('c', 's'), live);
  } finally { await h.t.cleanup(); }
});

test('a new time zone moves the period\'s start without paying the period again, west or east, across a restart', async () => {
  for (const zone of ['Pacific/Kiritimati', 'America/Los_Angeles']) {
    const h = await server();
    try {
      const calls = await h.metric({ code: 'calls', name: 'Calls', aggregation_type: 'count_agg' });
      await h.plan('p', [{ billable_metric_id: calls, charge_model: 'standard', properties: { amount: '1' } }]);
      await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD' } });
      await h.subscribe('c', 'p', 's', { subscription_at: '2026-01-01T00:00:00Z' });
      const w = await h.wallet('c', 100);
      await h.sent(h.ev('s', 'calls'), h.ev('s', 'calls'), h.ev('s', 'calls'));
      await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD', timezone: zone } });
      await h.sent(h.ev('s', 'calls'));
      assert.equal(await h.balance(w), 10000 - 400, zone);
      await h.t.restart();
      await h.sent(h.ev('s', 'calls'));
      assert.equal(await h.balance(w), 10000 - 500, zone);
      assert.equal((await h.usage('c', 's')).amount_cents, 500, zone);
      await checkWalletLedger(h.t, w);
    } finally { await h.t.cleanup(); }
  }
});

test('an upgrade cancels the downgrade scheduled before it, as Lago does', async () => {
  const h = await server();
  try {
    const calls = await h.metric({ code: 'calls', name: 'Calls', aggregation_type: 'count_agg' });
    const charges = (amount) => [{ billable_metric_id: calls, charge_model: 'standard', properties: { amount } }];
    await h.plan('mid', charges('1'), 1000);
    await h.plan('small', charges('2'), 500);
    await h.plan('big', charges('3'), 3000);
    await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD' } });
    await h.subscribe('c', 'mid', 's', { subscription_at: '2026-01-01T00:00:00Z' });
    assert.equal((await h.subscribe('c', 'small', 's')).subscription.next_plan_code, 'small');
    await h.advance('2026-03-20T00:00:00Z');
    await h.subscribe('c', 'big', 's');
    await h.advance('2026-04-05T00:00:00Z');
    const live = (await h.get('/api/v1/subscriptions?external_customer_id=c&status[]=active&status[]=pending')).subscriptions;
    assert.deepEqual(live.map((s) => s.plan_code), ['big']);
    const all = (await h.get('/api/v1/subscriptions?external_customer_id=c&status[]=canceled')).subscriptions;
    assert.deepEqual(all.map((s) => [s.plan_code, s.status]), [['small', 'canceled']]);
    await h.sent(h.ev('s', 'calls'));
    const u = await h.usage('c', 's');
    assert.equal(u.amount_cents, 300);
    await h.t.restart();
    assert.deepEqual(await h.usage('c', 's'), u);
  } finally { await h.t.cleanup(); }
});

test('a new time zone that would put a subscription in another period than its current one is refused, and changes nothing', async () => {
  const h = await server();
  try {
    const calls = await h.metric({ code: 'calls', name: 'Calls', aggregation_type: 'count_agg' });
    await h.plan('p', [{ billable_metric_id: calls, charge_model: 'standard', properties: { amount: '1' } }]);
    await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD', timezone: 'Pacific/Kiritimati' } });
    await h.subscribe('c', 'p', 's', { subscription_at: '2026-01-01T00:00:00Z' });
    const w = await h.wallet('c', 100);
    await h.sent(h.ev('s', 'calls'), h.ev('s', 'calls'), h.ev('s', 'calls'));
    await h.advance('2026-03-31T20:00:00Z'); // April 1 in Kiritimati, still March in UTC
    await h.sent(h.ev('s', 'calls'));
    assert.equal(await h.balance(w), 10000 - 400);
    const r = await h.t.api('/api/v1/customers', { method: 'POST', body: { customer: { external_id: 'c', currency: 'USD', timezone: 'UTC' } } });
    const text = await r.text();
    assert.equal(r.status, 422, text);
    assert.equal(text.match(/"message"/g).length, 1, text);
    const body = JSON.parse(text);
    assert.deepEqual(body.error_details, { timezone: ['would_change_current_period'] });
    assert.match(body.message, /subscription s would be in another billing period/);
    assert.equal((await h.get('/api/v1/customers/c')).customer.timezone, 'Pacific/Kiritimati');
    await h.sent(h.ev('s', 'calls'));
    assert.equal(await h.balance(w), 10000 - 500);
    await h.t.restart();
    await h.sent(h.ev('s', 'calls'));
    assert.equal(await h.balance(w), 10000 - 600);
    await checkWalletLedger(h.t, w);
  } finally { await h.t.cleanup(); }
});

// Found by a black-box audit: a subscription that starts less than two days before a period
// boundary has a short first period, whose debits were taken as the next period's (a start
// that moved, as a new time zone moves it), so the next period's usage went unpaid.
test('a short first period\'s debits stay its own: the next period debits from nothing, live and across a restart', async () => {
  for (const [start, zone] of [['2026-03-31T12:00:00Z', undefined], ['2026-04-30T20:00:00Z', 'America/Los_Angeles']]) {
    const h = await server();
    try {
      await h.advance(start);
      const calls = await h.metric({ code: 'calls', name: 'Calls', aggregation_type: 'count_agg' });
      await h.plan('p', [{ billable_metric_id: calls, charge_model: 'standard', properties: { amount: '1' } }]);
      await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD', ...(zone ? { timezone: zone } : {}) } });
      await h.subscribe('c', 'p', 's'); // from now: a first period of hours
      const w = await h.wallet('c', 100);
      await h.sent(h.ev('s', 'calls'), h.ev('s', 'calls'));
      assert.equal(await h.balance(w), 10000 - 200, `${start}: the first period`);
      const next = new Date(Date.parse(start) + 2 * 86400 * 1000).toISOString();
      await h.advance(next);
      await h.sent(h.ev('s', 'calls'));
      assert.equal(await h.balance(w), 10000 - 300, `${start}: the next period's first call`);
      assert.equal((await h.usage('c', 's')).amount_cents, 100, start);
      await h.t.restart();
      await h.sent(h.ev('s', 'calls'));
      assert.equal(await h.balance(w), 10000 - 400, `${start}: after a restart`);
      await checkWalletLedger(h.t, w);
    } finally { await h.t.cleanup(); }
  }
});

// Found by a black-box audit: a downgrade kept the switch time it was scheduled at (the end of
// the period in the customer's old zone), so after a new zone the old plan ran on past the
// period's new end, priced the next period's first hours at its rate, and the new plan started
// in the middle of a period.
test('a downgrade scheduled before a new time zone takes effect at the end of the period in the new zone', async () => {
  const h = await server();
  try {
    const calls = await h.metric({ code: 'calls', name: 'Calls', aggregation_type: 'count_agg' });
    const charges = (amount) => [{ billable_metric_id: calls, charge_model: 'standard', properties: { amount } }];
    await h.plan('pro', charges('5'), 5000);
    await h.plan('basic', charges('1'), 1000);
    await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD', timezone: 'America/Los_Angeles' } });
    await h.subscribe('c', 'pro', 's', { subscription_at: '2026-01-01T08:00:00Z' });
    const scheduled = (await h.subscribe('c', 'basic', 's')).subscription;
    assert.equal(scheduled.next_plan_code, 'basic');
    await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD', timezone: 'UTC' } });
    const sub = (await h.get('/api/v1/subscriptions/s')).subscription;
    assert.equal(sub.current_billing_period_ending_at, '2026-03-31T23:59:59Z');
    assert.equal(sub.downgrade_plan_date, '2026-04-01');
    await h.advance('2026-04-01T03:00:00Z');
    const now = (await h.get('/api/v1/subscriptions/s')).subscription;
    assert.deepEqual([now.plan_code, now.current_billing_period_started_at], ['basic', '2026-04-01T00:00:00Z']);
    await h.sent(h.ev('s', 'calls'));
    assert.equal((await h.usage('c', 's')).amount_cents, 100);
    await h.t.restart();
    assert.equal((await h.usage('c', 's')).amount_cents, 100);
  } finally { await h.t.cleanup(); }
});

// Found by a black-box audit: a usage is rebuilt from the events its book references, and a
// start reads events from the last snapshot's mark on; a new zone that moves a period's start
// earlier brings back events from before both, which were then lost (live after a restart in
// the zone between, and after any restart).
test('a new time zone that moves a period\'s start earlier counts the events it brings back, live and across restarts', async () => {
  const h = await server();
  try {
    const lat = await h.metric({ code: 'lat', name: 'Latest', aggregation_type: 'latest_agg', field_name: 'n' });
    await h.plan('p', [{ billable_metric_id: lat, charge_model: 'standard', properties: { amount: '1' } }]);
    await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD' } });
    await h.subscribe('c', 'p', 's', { subscription_at: '2026-02-01T00:00:00Z' });
    // at 03-01T00:00Z: March in UTC and in Tokyo, February in Los Angeles
    await h.sent(h.ev('s', 'lat', { n: 12 }, { timestamp: seconds('2026-03-01T00:00:00Z') }));
    assert.equal((await h.usage('c', 's')).amount_cents, 1200);
    await h.advance('2026-03-10T16:00:00Z');
    await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD', timezone: 'America/Los_Angeles' } });
    assert.equal((await h.usage('c', 's')).amount_cents, 0);
    await h.t.restart();
    await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD', timezone: 'Asia/Tokyo' } });
    assert.equal((await h.usage('c', 's')).amount_cents, 1200, 'live');
    await h.t.restart({ kill: true });
    assert.equal((await h.usage('c', 's')).amount_cents, 1200, 'after a SIGKILL');
    await h.t.restart();
    assert.equal((await h.usage('c', 's')).amount_cents, 1200, 'after a clean stop');
  } finally { await h.t.cleanup(); }
});

// Found by a black-box audit: the floor that setting records was inserted, not replaced, so the
// second move that made a period start earlier (anywhere in the database) failed with a 500,
// for good: a clean stop could not clear it either.
test('moves that make periods start earlier, one after another and after a restart, all apply', async () => {
  const h = await server();
  try {
    const calls = await h.metric({ code: 'calls', name: 'Calls', aggregation_type: 'count_agg' });
    await h.plan('p', [{ billable_metric_id: calls, charge_model: 'standard', properties: { amount: '1' } }]);
    for (const c of ['a', 'b']) {
      await h.post('/api/v1/customers', { customer: { external_id: c, currency: 'USD' } });
      await h.subscribe(c, 'p', `${c}_s`, { subscription_at: '2026-02-01T00:00:00Z' });
    }
    await h.sent(h.ev('a_s', 'calls'), h.ev('b_s', 'calls'));
    await h.post('/api/v1/customers', { customer: { external_id: 'a', currency: 'USD', timezone: 'Asia/Kolkata' } });
    await h.post('/api/v1/customers', { customer: { external_id: 'a', currency: 'USD', timezone: 'Asia/Tokyo' } });
    await h.post('/api/v1/customers', { customer: { external_id: 'b', currency: 'USD', timezone: 'Europe/Paris' } });
    await h.t.restart();
    await h.post('/api/v1/customers', { customer: { external_id: 'b', currency: 'USD', timezone: 'Asia/Tokyo' } });
    for (const c of ['a', 'b']) assert.equal((await h.usage(c, `${c}_s`)).amount_cents, 100);
  } finally { await h.t.cleanup(); }
});

// Found by a black-box audit: a subscription that began exactly at its first period's start
// has usage from its own start, and a zone east of the old one moves the period's start before
// it; the debits moved to the period's new start while the usage stayed at the subscription's,
// so the next event took them for another period's and debited the whole period again (3000
// paid for 1000 of usage after UTC -> Paris -> UTC -> Tokyo -> New York, across restarts).
// Each step checks that the wallet has paid exactly the current usage, and its ledger.
test('moves east and west of a period that began at the subscription\'s start pay each event once, across restarts and SIGKILLs', async () => {
  const cases = [
    { name: 'calendar monthly from the period start', sub: { billing_time: 'calendar', subscription_at: '2026-01-01T00:00:00Z' } },
    { name: 'calendar monthly from mid-December', sub: { billing_time: 'calendar', subscription_at: '2025-12-15T00:00:00Z' } },
    { name: 'anniversary yearly, charges monthly', plan: { interval: 'yearly', bill_charges_monthly: true }, sub: { billing_time: 'anniversary', subscription_at: '2026-01-01T00:00:00Z' } },
  ];
  // east, west, the subscription's start, east, west (each start within the same period)
  const moves = ['Europe/Paris', 'UTC', 'Asia/Tokyo', 'America/New_York', 'Europe/Paris', 'Asia/Tokyo', 'UTC'];
  for (const c of cases) {
    const h = await scenario('2026-01-10T00:00:00Z', 'z');
    try {
      const calls = await h.metric({ code: 'calls', name: 'Calls', aggregation_type: 'count_agg' });
      await h.post('/api/v1/plans', { plan: { code: 'p', name: 'p', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', ...c.plan,
        charges: [{ billable_metric_id: calls, charge_model: 'standard', properties: { amount: '1' } }] } });
      await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD', timezone: 'UTC' } });
      await h.subscribe('c', 'p', 's', c.sub);
      const w = await h.wallet('c', 1000);
      let sent = 0;
      const check = async (step) => {
        const u = await h.usage('c', 's');
        assert.equal(u.total_amount_cents, 100 * sent, `${c.name}, ${step}: usage`);
        assert.equal(100000 - await h.balance(w), u.total_amount_cents, `${c.name}, ${step}: paid`);
        await checkWalletLedger(h.t, w);
      };
      const send = async (n) => { for (let i = 0; i < n; i++) await h.sent(h.ev('s', 'calls')); sent += n; };
      await send(5);
      await check('before any move');
      for (const [i, zone] of moves.entries()) {
        await h.post('/api/v1/customers', { customer: { external_id: 'c', timezone: zone } });
        await check(`${zone}, moved`);
        if (i % 2 === 1) await h.t.restart({ kill: true }); // right after the move
        await send(1);
        if (i % 3 === 0) await h.t.restart({ kill: true }); // the debit waits in the journal
        await check(`${zone}, the next event`);
        await send(1);
        await check(`${zone}, another event`);
      }
      await h.t.restart();
      await send(1);
      await check('after a clean restart');
    } finally { await h.t.cleanup(); }
  }
});

// Found by a black-box audit: a zone that moves the period's start across events moves them
// into the other period. East (Los Angeles -> Kolkata), January's last events, paid in January,
// came into February and were debited again; west (Kolkata -> Los Angeles), February's first
// events, paid in February, went back into January and were given back: nobody paid them.
// Where wallets pay, such a move is refused while those events exist.
test('a new time zone that would move paid events into another period is refused, east or west', async () => {
  for (const [from, to, at] of [['America/Los_Angeles', 'Asia/Kolkata', '2026-01-31T22:00:00Z'], ['Asia/Kolkata', 'America/Los_Angeles', '2026-01-31T20:00:00Z']]) {
    const h = await scenario('2026-01-20T00:00:00Z', 'm');
    try {
      const calls = await h.metric({ code: 'calls', name: 'Calls', aggregation_type: 'count_agg' });
      await h.plan('p', [{ billable_metric_id: calls, charge_model: 'standard', properties: { amount: '1' } }]);
      await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD', timezone: from } });
      await h.subscribe('c', 'p', 's', { subscription_at: '2025-12-01T00:00:00Z' });
      const w = await h.wallet('c', 1000);
      await h.advance(at);
      await h.sent(...Array.from({ length: 5 }, () => h.ev('s', 'calls')));
      await h.advance('2026-02-03T00:00:00Z');
      const paid = 100000 - await h.balance(w);
      assert.equal(paid, 500, `${from}: the 5 events paid once`);
      const r = await h.t.api('/api/v1/customers', { method: 'POST', body: { customer: { external_id: 'c', timezone: to } } });
      const body = await r.json();
      assert.equal(r.status, 422, `${from} -> ${to}`);
      assert.deepEqual(body.error_details, { timezone: ['would_move_paid_events'] });
      assert.match(body.message, /5 events of subscription s/);
      assert.equal((await h.get('/api/v1/customers/c')).customer.timezone, from); // nothing changed
      await h.sent(h.ev('s', 'calls'));
      assert.equal(100000 - await h.balance(w), paid + 100);
      await checkWalletLedger(h.t, w);
      // once the next period has begun, its start has no events around it: the move is made
      await h.advance('2026-03-05T00:00:00Z');
      await h.post('/api/v1/customers', { customer: { external_id: 'c', timezone: to } });
      assert.equal((await h.get('/api/v1/customers/c')).customer.timezone, to);
    } finally { await h.t.cleanup(); }
  }
});

// Found by a later audit: the period's end moves too. Events sent ahead into the last hours of
// a Los Angeles February (March 1st, 04:00 UTC) were paid in February; in Tokyo that instant is
// March, so the move would have March pay them again (a hard wallet then refused March's first
// event). Refused the same way while such events exist.
test('a new time zone that would move paid events at the period end into the next is refused', async () => {
  const h = await scenario('2026-02-15T00:00:00Z', 'm');
  try {
    const calls = await h.metric({ code: 'calls', name: 'Calls', aggregation_type: 'count_agg' });
    await h.plan('p', [{ billable_metric_id: calls, charge_model: 'standard', properties: { amount: '1' } }]);
    await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD', timezone: 'America/Los_Angeles' } });
    await h.subscribe('c', 'p', 's', { subscription_at: '2026-02-01T08:00:00Z' });
    const w = await h.wallet('c', 1000);
    const at = Date.parse('2026-03-01T04:00:00Z') / 1000;
    await h.sent(h.ev('s', 'calls', {}, { timestamp: at }), h.ev('s', 'calls', {}, { timestamp: at + 3600 }));
    assert.equal(100000 - await h.balance(w), 200);
    const r = await h.t.api('/api/v1/customers', { method: 'POST', body: { customer: { external_id: 'c', timezone: 'Asia/Tokyo' } } });
    const body = await r.json();
    assert.equal(r.status, 422, JSON.stringify(body));
    assert.deepEqual(body.error_details, { timezone: ['would_move_paid_events'] });
    assert.match(body.message, /2 events of subscription s/);
    assert.equal((await h.get('/api/v1/customers/c')).customer.timezone, 'America/Los_Angeles');
  } finally { await h.t.cleanup(); }
});

// Found by a black-box audit: the start of a period is when the wallets pay the units a
// recurring metric carries into it (settle_periods), and that start was kept as the customer's
// old zone had it. Moving east, the new period began (current_usage showed it) and its carried
// units were debited only at the old zone's midnight, hours later; after a restart, the next
// event scheduled the new zone's midnight, so a live server and a restarted one disagreed.
test('a new time zone moves when the next period\'s carried units are debited to its start there, east or west, live as after a restart', async () => {
  const cases = [
    // from, to, the next period's start in each zone (June 1 00:00)
    { from: 'America/Los_Angeles', to: 'Pacific/Kiritimati', is: '2026-05-31T10:00:00Z', was: '2026-06-01T07:00:00Z' },
    { from: 'Pacific/Kiritimati', to: 'America/Los_Angeles', is: '2026-06-01T07:00:00Z', was: '2026-05-31T10:00:00Z' },
  ];
  const at = (iso, s) => new Date(Date.parse(iso) + s * 1000).toISOString();
  for (const { from, to, is, was } of cases) {
    for (const restart of [false, true]) {
      const what = `${from} -> ${to}${restart ? ', restarted without the snapshot' : ''}`;
      const h = await scenario('2026-05-05T00:00:00Z', 'z');
      try {
        const gb = await h.metric({ code: 'gb', name: 'GB', aggregation_type: 'sum_agg', field_name: 'v', recurring: true });
        await h.plan('p', [{ billable_metric_id: gb, charge_model: 'standard', pay_in_advance: true, properties: { amount: '1' } }]);
        await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD', timezone: from } });
        await h.subscribe('c', 'p', 's', { billing_time: 'calendar' });
        const w = await h.wallet('c', 1000);
        await h.sent(h.ev('s', 'gb', { v: 5 }));
        assert.equal(await h.balance(w), 100000 - 500, what);
        await h.post('/api/v1/customers', { customer: { external_id: 'c', timezone: to } });
        if (restart) await h.t.restart({ between: (dir) => rmSync(join(dir, 'events.snapshot'), { force: true }) });
        await h.sent(h.ev('s', 'gb', { v: 1 })); // May's 6 GB paid
        assert.equal(await h.balance(w), 100000 - 600, what);
        const first = is < was ? is : was, last = is < was ? was : is;
        await h.advance(at(first, -1));
        assert.equal(await h.balance(w), 100000 - 600, `${what}: before either start`);
        await h.advance(at(first, 1));
        assert.equal(await h.balance(w), 100000 - (first === is ? 1200 : 600), `${what}: just after ${first}`);
        await h.advance(at(last, -1));
        assert.equal(await h.balance(w), 100000 - (first === is ? 1200 : 600), `${what}: just before ${last}`);
        const usage = await h.usage('c', 's');
        assert.equal(usage.from_datetime, first === is ? is : '2026-05-05T00:00:00Z', what); // May's began with the subscription
        await h.advance(at(last, 1));
        assert.equal(await h.balance(w), 100000 - 1200, `${what}: just after ${last}`);
        assert.deepEqual([(await h.usage('c', 's')).from_datetime, (await h.usage('c', 's')).amount_cents], [is, 600], what);
        await checkWalletLedger(h.t, w);
      } finally { await h.t.cleanup(); }
    }
  }
});

test('a downgrade scheduled before a move east starts at the new zone\'s period end with its carried units debited then, live as after a restart', async () => {
  for (const restart of [false, true]) {
    const h = await scenario('2026-05-05T00:00:00Z', 'd');
    try {
      const gb = await h.metric({ code: 'gb', name: 'GB', aggregation_type: 'sum_agg', field_name: 'v', recurring: true });
      const charges = (amount) => [{ billable_metric_id: gb, charge_model: 'standard', pay_in_advance: true, properties: { amount } }];
      await h.plan('pro', charges('2'), 5000);
      await h.plan('basic', charges('1'), 1000);
      await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD', timezone: 'America/Los_Angeles' } });
      await h.subscribe('c', 'pro', 's', { billing_time: 'calendar' });
      const w = await h.wallet('c', 1000);
      await h.sent(h.ev('s', 'gb', { v: 5 }));
      assert.equal(await h.balance(w), 100000 - 1000);
      await h.subscribe('c', 'basic', 's'); // at the period's end
      await h.post('/api/v1/customers', { customer: { external_id: 'c', timezone: 'Pacific/Kiritimati' } });
      if (restart) await h.t.restart({ between: (dir) => rmSync(join(dir, 'events.snapshot'), { force: true }) });
      await h.advance('2026-05-31T09:59:59Z');
      assert.equal(await h.balance(w), 100000 - 1000, `restart ${restart}`);
      await h.advance('2026-05-31T10:00:01Z'); // June 1 in Kiritimati: basic, 5 GB carried
      const usage = await h.usage('c', 's');
      assert.deepEqual([usage.from_datetime, usage.amount_cents], ['2026-05-31T10:00:00Z', 500], `restart ${restart}`);
      assert.equal(await h.balance(w), 100000 - 1500, `restart ${restart}`);
      await h.advance('2026-06-01T07:00:01Z');
      assert.equal(await h.balance(w), 100000 - 1500, `restart ${restart}`);
      await checkWalletLedger(h.t, w);
    } finally { await h.t.cleanup(); }
  }
});
