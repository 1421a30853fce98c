// A pay-in-advance charge on a recurring metric is billed on the most its aggregate reached in
// the period, in the order the events came: the period's own events and its late events
// (timestamped in an earlier period, accepted in this one) interleave as they were accepted. A
// rebuild of the usage (a start, with or without the snapshot, after a kill) must replay them in
// that order, or the peak it finds is not the one billed live. Found by an audit: a build took
// the late events before the period's own, so a late -10 after an April +10 gave a fee of 200
// for a peak of 12 already paid (the next event refunded 500), and a late +5 after +10 -10 one
// of 1700 (the next event debited 500 more).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startWithOrg } from '../lib/tallyd.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

const servers = [];
after(async () => { for (const t of servers) await t.cleanup(); });

const seconds = (iso) => Date.parse(iso) / 1000;

// One server with gb (sum) and seats (unique count), both recurring, and plans charging each in
// advance, 1 USD a unit.
async function setup(clock) {
  const t = await startWithOrg(['--test-clock', clock]);
  servers.push(t);
  const s = { t, wallet: {}, n: 0 };
  s.post = async (path, body) => t.api(path, { method: 'POST', body });
  s.ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
  s.advance = async (to) => s.ok(await s.post('/api/v1/test_clock/advance', { test_clock: { to } }));
  s.balance = async (customer) => (await s.ok(await t.api(`/api/v1/wallets/${s.wallet[customer]}`))).wallet.balance_cents;
  s.event = async (sub, code, properties, at) => s.ok(await s.post('/api/v1/events', { event: { transaction_id: `e${s.n++}`, external_subscription_id: sub, code, properties, timestamp: seconds(at) } }));
  // [units, amount_cents] of each charge, by metric code
  s.usage = async (customer, sub) => Object.fromEntries((await s.ok(await t.api(`/api/v1/customers/${customer}/current_usage?external_subscription_id=${sub}`))).customer_usage.charges_usage.map((c) => [c.billable_metric.code, [c.units, c.amount_cents]]));
  const metric = {};
  for (const bm of [
    { code: 'gb', name: 'GB', aggregation_type: 'sum_agg', field_name: 'v', recurring: true },
    { code: 'seats', name: 'Seats', aggregation_type: 'unique_count_agg', field_name: 'u', recurring: true },
  ]) metric[bm.code] = (await s.ok(await s.post('/api/v1/billable_metrics', { billable_metric: bm }))).billable_metric.lago_id;
  const standard = (code) => ({ billable_metric_id: metric[code], charge_model: 'standard', pay_in_advance: true, properties: { amount: '1' } });
  for (const [code, amount_cents, codes] of [['m', 0, ['gb', 'seats']], ['big', 100, ['gb']], ['small', 50, ['gb']]])
    await s.ok(await s.post('/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents, amount_currency: 'USD', charges: codes.map(standard) } }));
  s.customer = async (customer, plan_code, sub) => {
    await s.ok(await s.post('/api/v1/customers', { customer: { external_id: customer, name: customer, currency: 'USD', timezone: 'UTC' } }));
    await s.ok(await s.post('/api/v1/subscriptions', { subscription: { external_customer_id: customer, plan_code, external_id: sub, billing_time: 'calendar' } }));
    s.wallet[customer] = (await s.ok(await s.post('/api/v1/wallets', { wallet: { external_customer_id: customer, currency: 'USD', rate_amount: '1', granted_credits: '10000' } }))).wallet.lago_id;
  };
  return s;
}

const noSnapshot = (dir) => rmSync(join(dir, 'events.snapshot'), { force: true });

test('a rebuild takes late events and the period\'s own in the order they were accepted', async () => {
  const s = await setup('2026-03-10T12:00:00Z');
  const MARCH = '2026-03-10T12:00:00Z', LATE = '2026-03-20T00:00:00Z', APRIL = '2026-04-10T00:00:00Z';
  for (const c of ['a', 'b', 'c', 'd']) await s.customer(`c${c}`, 'm', `s${c}`);
  // March: 2 GB and seat x, carried into April
  for (const c of ['a', 'b', 'c', 'd']) {
    await s.event(`s${c}`, 'gb', { v: 2 }, MARCH);
    await s.event(`s${c}`, 'seats', { u: 'x' }, MARCH);
  }
  await s.advance(APRIL);
  // a: April +10 (12, the peak), then a late -10 (2)
  await s.event('sa', 'gb', { v: 10 }, APRIL);
  await s.event('sa', 'gb', { v: -10 }, LATE);
  // b: April +10 -10 (a peak of 12), then a late +5 (7): the peak stays 12
  await s.event('sb', 'gb', { v: 10 }, APRIL);
  await s.event('sb', 'gb', { v: -10 }, APRIL);
  await s.event('sb', 'gb', { v: 5 }, LATE);
  // c: April seat y added and removed (a peak of 2), then a late seat z (2 seats): 2
  await s.event('sc', 'seats', { u: 'y' }, APRIL);
  await s.event('sc', 'seats', { u: 'y', operation_type: 'remove' }, APRIL);
  await s.event('sc', 'seats', { u: 'z' }, LATE);
  // d: a late +3 (5), April -4 (1), a late +1 (2): a peak of 5
  await s.event('sd', 'gb', { v: 3 }, LATE);
  await s.event('sd', 'gb', { v: -4 }, APRIL);
  await s.event('sd', 'gb', { v: 1 }, LATE);
  const live = {
    ca: { gb: ['2.0', 1200], seats: ['1.0', 100] },
    cb: { gb: ['7.0', 1200], seats: ['1.0', 100] },
    cc: { gb: ['2.0', 200], seats: ['2.0', 200] },
    cd: { gb: ['2.0', 500], seats: ['1.0', 100] },
  };
  const paid = {};
  for (const c of Object.keys(live)) {
    assert.deepEqual(await s.usage(c, `s${c.slice(1)}`), live[c], c);
    paid[c] = await s.balance(c);
  }
  // a metric edit rebuilds the usages without a restart (its references read back)
  for (const code of ['gb', 'seats'])
    await s.ok(await s.t.api(`/api/v1/billable_metrics/${code}`, { method: 'PUT', body: { billable_metric: { filters: [{ key: 'region', values: ['eu', 'us'] }] } } }));
  for (const c of Object.keys(live)) {
    assert.deepEqual(await s.usage(c, `s${c.slice(1)}`), live[c], `${c} after a metric edit`);
    assert.equal(await s.balance(c), paid[c], c);
  }
  for (const restart of [{}, { kill: true }, { between: noSnapshot }]) {
    await s.t.restart(restart);
    for (const c of Object.keys(live)) {
      assert.deepEqual(await s.usage(c, `s${c.slice(1)}`), live[c], `${c} after ${JSON.stringify(restart)}`);
      assert.equal(await s.balance(c), paid[c], c);
    }
  }
  // one more event each: below the peaks (a, b, d), nothing more to pay; c's third seat, 1 USD
  await s.event('sa', 'gb', { v: 5 }, APRIL);
  await s.event('sb', 'gb', { v: 1 }, APRIL);
  await s.event('sc', 'seats', { u: 'w' }, APRIL);
  await s.event('sd', 'gb', { v: 2 }, APRIL);
  assert.deepEqual(await s.usage('ca', 'sa'), { gb: ['7.0', 1200], seats: ['1.0', 100] });
  assert.deepEqual(await s.usage('cb', 'sb'), { gb: ['8.0', 1200], seats: ['1.0', 100] });
  assert.deepEqual(await s.usage('cc', 'sc'), { gb: ['2.0', 200], seats: ['3.0', 300] });
  assert.deepEqual(await s.usage('cd', 'sd'), { gb: ['4.0', 500], seats: ['1.0', 100] });
  assert.deepEqual([await s.balance('ca'), await s.balance('cb'), await s.balance('cc'), await s.balance('cd')],
    [paid.ca, paid.cb, paid.cc - 100, paid.cd]);
  for (const c of Object.keys(live)) await checkWalletLedger(s.t, s.wallet[c]);
});

// A downgrade scheduled for the period's end is a pending subscription whose usage is built
// when an event is sent ahead to it. An event of the current period that came after that one
// is still part of what the new period carries in, as it stands at its start: found by an
// audit, it was taken as a late event that keeps the peak, and May was billed on 5 + 7 GB
// where it starts with 1 and reaches 8 (a restart before May gave 800).
for (const restart of [false, true]) {
  test(`a scheduled downgrade starts from the units carried as they stand at its start (${restart ? 'a restart before it' : 'no restart'})`, async () => {
    const s = await setup('2026-03-10T12:00:00Z');
    await s.customer('cd', 'big', 'sd');
    await s.advance('2026-04-05T00:00:00Z');
    await s.event('sd', 'gb', { v: 5 }, '2026-04-05T00:00:00Z');
    const down = await s.ok(await s.post('/api/v1/subscriptions', { subscription: { external_customer_id: 'cd', plan_code: 'small', external_id: 'sd' } }));
    assert.equal(down.subscription.next_plan_code, 'small', JSON.stringify(down)); // pending until May 1
    await s.event('sd', 'gb', { v: 7 }, '2026-05-03T00:00:00Z'); // sent ahead to the downgrade
    await s.event('sd', 'gb', { v: -4 }, '2026-04-20T00:00:00Z'); // April: 1 GB left
    assert.deepEqual(await s.usage('cd', 'sd'), { gb: ['1.0', 500] });
    const april = await s.balance('cd');
    if (restart) await s.t.restart();
    // (a plan edit re-prices the pending usage: its states are handed over, as they were)
    else await s.ok(await s.t.api('/api/v1/plans/small', { method: 'PUT', body: { plan: { amount_cents: 60 } } }));
    await s.advance('2026-05-01T00:00:00Z');
    assert.deepEqual(await s.usage('cd', 'sd'), { gb: ['8.0', 800] });
    assert.equal(await s.balance('cd'), april - 800);
    await s.t.restart();
    assert.deepEqual(await s.usage('cd', 'sd'), { gb: ['8.0', 800] });
    await s.event('sd', 'gb', { v: -1 }, '2026-05-04T00:00:00Z');
    await s.event('sd', 'gb', { v: 2 }, '2026-05-04T00:00:00Z'); // 9: one more GB
    assert.deepEqual(await s.usage('cd', 'sd'), { gb: ['9.0', 900] });
    assert.equal(await s.balance('cd'), april - 900);
    await checkWalletLedger(s.t, s.wallet.cd);
  });
}

// A late event counts in the period it was accepted in (its created_at against the period's
// start): a new time zone that moves the current period's start over that acceptance would
// make it the new period's late event (moving east: a peak it already paid raised again) or a
// part of the past the period starts with (moving west). Found by an audit: a late -5 accepted
// on March 31 12:00 UTC, once April began on March 31 10:00 UTC (Pacific/Kiritimati), gave
// April March's peak of 10, and the next GB debited 500 instead of 100. Refused as a move of
// paid events is, until the next period has begun.
test('a time zone that would move a late event\'s acceptance into another period is refused', async () => {
  const s = await setup('2026-03-10T12:00:00Z');
  await s.customer('cz', 'm', 'sz');
  await s.event('sz', 'gb', { v: 10 }, '2026-03-10T12:00:00Z');
  await s.advance('2026-03-31T12:00:00Z');
  await s.event('sz', 'gb', { v: -5 }, '2026-03-15T00:00:00Z'); // late, accepted in March
  await s.advance('2026-04-03T00:00:00Z');
  assert.deepEqual(await s.usage('cz', 'sz'), { gb: ['5.0', 500], seats: ['0.0', 0] });
  const paid = await s.balance('cz');
  for (const timezone of ['Pacific/Kiritimati', 'America/Los_Angeles']) {
    const r = await s.t.api('/api/v1/customers', { method: 'POST', body: { customer: { external_id: 'cz', timezone } } });
    const body = await r.json();
    if (timezone === 'America/Los_Angeles') { // April from April 1 07:00 UTC: nothing moves
      assert.equal(r.status, 200, JSON.stringify(body));
      await s.ok(await s.t.api('/api/v1/customers', { method: 'POST', body: { customer: { external_id: 'cz', timezone: 'UTC' } } }));
      continue;
    }
    assert.equal(r.status, 422, JSON.stringify(body));
    assert.deepEqual(body.error_details, { timezone: ['would_move_paid_events'] });
    assert.match(body.message, /1 late event/);
  }
  assert.equal((await s.ok(await s.t.api('/api/v1/customers/cz'))).customer.timezone, 'UTC');
  assert.deepEqual(await s.usage('cz', 'sz'), { gb: ['5.0', 500], seats: ['0.0', 0] });
  await s.event('sz', 'gb', { v: 1 }, '2026-04-03T00:00:00Z');
  assert.deepEqual(await s.usage('cz', 'sz'), { gb: ['6.0', 600], seats: ['0.0', 0] });
  assert.equal(await s.balance('cz'), paid - 100);
  // once May has begun, no period's start is near that acceptance: the move is made
  await s.advance('2026-05-05T00:00:00Z');
  await s.ok(await s.t.api('/api/v1/customers', { method: 'POST', body: { customer: { external_id: 'cz', timezone: 'Pacific/Kiritimati' } } }));
  await checkWalletLedger(s.t, s.wallet.cz);
});
