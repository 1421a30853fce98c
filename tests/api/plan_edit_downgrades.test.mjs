// A plan's price edit re-checks the downgrades scheduled to it and from it, as Lago's
// Plans::UpdateService does when amount_cents changes (app/services/plans/update_service.rb):
// a downgrade TO the edited plan whose plan is now worth at least as much per year as the
// current one is an upgrade, applied at once through the upgrade path (the current subscription
// ends now, the edited plan starts now: its wallets, usage and carried units as an upgrade asked
// through POST /subscriptions leaves them); a downgrade FROM the edited plan whose price is now
// below the target's is canceled, and the current subscription goes on past its period's end.
// Found by an audit: both downgrades stayed scheduled, and at the period's end a customer was
// moved to a plan dearer than the one they were on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scenario } from '../lib/scenario.mjs';
import { createOrg } from '../lib/tallyd.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

const seconds = (iso) => Date.parse(iso) / 1000;
const plan = (h, code, interval, amount_cents, charges = []) =>
  h.post('/api/v1/plans', { plan: { code, name: code, interval, amount_cents, amount_currency: 'USD', charges } });
const edit = async (h, code, amount_cents, headers = {}) => {
  const r = await h.t.api(`/api/v1/plans/${code}`, { method: 'PUT', body: { plan: { amount_cents } }, headers });
  const body = await r.text();
  assert.equal(r.status, 200, body);
  return body;
};
// The subscription with that external id and status (the live one without), or the status code.
const sub = async (h, id, status) => {
  const r = await h.t.api(`/api/v1/subscriptions/${id}${status ? `?status=${status}` : ''}`);
  return r.status === 200 ? (await r.json()).subscription : r.status;
};
const brief = (s) => ({
  status: s.status, plan_code: s.plan_code, previous_plan_code: s.previous_plan_code, next_plan_code: s.next_plan_code,
  downgrade_plan_date: s.downgrade_plan_date, started_at: s.started_at, terminated_at: s.terminated_at,
});
const ofCustomer = async (h, customer, status) =>
  (await h.get(`/api/v1/subscriptions?external_customer_id=${customer}&status[]=${status}`)).subscriptions.map((s) => s.plan_code);

test('a downgrade to a plan whose price edit makes it as dear as the current one is an upgrade, at once, as one asked for', async () => {
  const h = await scenario('2026-03-10T12:00:00Z', 'a');
  try {
    const seats = await h.metric({ code: 'seats', name: 'Seats', aggregation_type: 'sum_agg', field_name: 'n', recurring: true });
    const disks = await h.metric({ code: 'disks', name: 'Disks', aggregation_type: 'sum_agg', field_name: 'n', recurring: true });
    const calls = await h.metric({ code: 'calls', name: 'Calls', aggregation_type: 'count_agg' });
    const charges = (seat, disk, call) => [
      { billable_metric_id: seats, charge_model: 'standard', properties: { amount: seat } },
      { billable_metric_id: disks, charge_model: 'standard', prorated: true, properties: { amount: disk } },
      { billable_metric_id: calls, charge_model: 'standard', properties: { amount: call } }];
    // a disk costs 1 (big) or 2 (small) a day of March
    await plan(h, 'big', 'monthly', 5000, charges('10', '31', '1'));
    await plan(h, 'small', 'monthly', 1000, charges('20', '62', '2'));
    const wallets = {};
    // a1, a2: downgrades scheduled (two customers); a3: none, it asks for the upgrade itself
    // after the edit; a4: its own plan (overrides) dearer than the edited one; a5: the
    // downgrade is to a plan of its own (overrides), which the edit does not reach
    for (const c of ['a1', 'a2', 'a3', 'a4', 'a5']) {
      await h.post('/api/v1/customers', { customer: { external_id: c, currency: 'USD' } });
      const overrides = c === 'a4' ? { plan_overrides: { amount_cents: 20000 } } : {};
      await h.subscribe(c, 'big', c, { subscription_at: '2026-03-01T00:00:00Z', ...overrides });
      wallets[c] = await h.wallet(c, 1000);
      await h.sent(h.ev(c, 'seats', { n: 3 }), h.ev(c, 'disks', { n: 1 }), h.ev(c, 'calls'), h.ev(c, 'calls'));
    }
    for (const c of ['a1', 'a2', 'a4'])
      assert.equal((await h.subscribe(c, 'small', c)).subscription.next_plan_code, 'small');
    assert.equal((await h.subscribe('a5', 'small', 'a5', { plan_overrides: { amount_cents: 1000 } })).subscription.next_plan_code, 'small');
    // sent ahead to April, the downgrade's first period: the subscription of their time has them
    await h.sent(h.ev('a1', 'calls', {}, { timestamp: seconds('2026-04-05T00:00:00Z') }));
    const a1Pending = await sub(h, 'a1', 'pending');
    await h.advance('2026-03-15T00:00:00Z');

    // 1000 -> 4999 a month: still cheaper than big's 5000, the downgrades stay
    await edit(h, 'small', 4999);
    assert.equal((await sub(h, 'a1')).next_plan_code, 'small');
    const answer = await edit(h, 'small', 5000, { 'Idempotency-Key': 'small-5000' }); // as dear: an upgrade
    await h.subscribe('a3', 'small', 'a3'); // the same upgrade, asked for

    for (const c of ['a1', 'a2', 'a3']) {
      const now = await sub(h, c);
      assert.deepEqual(brief(now), {
        status: 'active', plan_code: 'small', previous_plan_code: 'big', next_plan_code: null,
        downgrade_plan_date: null, started_at: '2026-03-15T00:00:00.000Z', terminated_at: null,
      }, c);
      assert.equal(now.plan_amount_cents, 5000);
      assert.deepEqual(brief(await sub(h, c, 'terminated')), {
        status: 'terminated', plan_code: 'big', previous_plan_code: null, next_plan_code: 'small',
        downgrade_plan_date: null, started_at: '2026-03-01T00:00:00.000Z', terminated_at: '2026-03-15T00:00:00Z',
      }, c);
      assert.equal(await sub(h, c, 'pending'), 404, c);
    }
    // the scheduled one was canceled and a new subscription started, as Lago's PlanUpgradeService
    for (const c of ['a1', 'a2']) assert.deepEqual(await ofCustomer(h, c, 'canceled'), ['small'], c);
    assert.notEqual((await sub(h, 'a1')).lago_id, a1Pending.lago_id);
    // the current subscription's own plan is dearer per year: still a downgrade
    assert.deepEqual(brief(await sub(h, 'a4')), {
      status: 'active', plan_code: 'big', previous_plan_code: null, next_plan_code: 'small',
      downgrade_plan_date: '2026-04-01', started_at: '2026-03-01T00:00:00.000Z', terminated_at: null,
    });
    // a downgrade to a plan of its own keeps its price: still scheduled
    assert.equal((await sub(h, 'a5')).next_plan_code, 'small');
    assert.equal((await sub(h, 'a5', 'pending')).plan_amount_cents, 1000);

    // usage and wallets as after the upgrade a3 asked for: the seats and the disk carried into
    // small's period at its price (the disk for its 17 days), the calls since its start only;
    // the old plan kept what it priced to its end (the disk's 6 days of 22 paid: the day of
    // the change is in both, as Lago counts days)
    const a3Usage = await h.usage('a3', 'a3');
    assert.equal(a3Usage.amount_cents, 3 * 2000 + 17 * 200);
    assert.equal(a3Usage.from_datetime, '2026-03-15T00:00:00Z');
    for (const c of ['a1', 'a2']) {
      assert.deepEqual(await h.usage(c, c), a3Usage, c);
      assert.equal(await h.balance(wallets[c]), await h.balance(wallets.a3), c);
    }
    assert.equal(await h.balance(wallets.a3), 100000 - 3000 - 6 * 100 - 200 - 6000 - 17 * 200);
    await h.sent(h.ev('a1', 'calls'), h.ev('a3', 'calls')); // priced by small
    assert.equal((await h.usage('a1', 'a1')).amount_cents, 6000 + 17 * 200 + 200);
    assert.equal(await h.balance(wallets.a1), await h.balance(wallets.a3));

    // the same key replays the answer and changes nothing; the same price again neither
    assert.equal(await edit(h, 'small', 5000, { 'Idempotency-Key': 'small-5000' }), answer);
    await edit(h, 'small', 5000);
    assert.equal((await sub(h, 'a1')).started_at, '2026-03-15T00:00:00.000Z');
    assert.deepEqual(await ofCustomer(h, 'a1', 'canceled'), ['small']);

    const live = await h.usage('a1', 'a1');
    await h.t.restart({ kill: true });
    assert.deepEqual(await h.usage('a1', 'a1'), live);
    // April: the event sent ahead is the new subscription's, priced by small
    await h.advance('2026-04-10T00:00:00Z');
    const april = await h.usage('a1', 'a1');
    assert.equal(april.charges_usage.find((u) => u.billable_metric.code === 'calls').units, '1.0');
    assert.equal(april.amount_cents, 6000 + 6200 + 200); // the disk for the whole of April
    assert.equal((await sub(h, 'a1')).plan_code, 'small');
    assert.equal((await sub(h, 'a4')).plan_code, 'small'); // its downgrade took place
    for (const c of ['a1', 'a2', 'a3']) await checkWalletLedger(h.t, wallets[c]);
  } finally { await h.t.cleanup(); }
});

test('yearly amounts decide, at least as dear is an upgrade: a weekly plan edited to a monthly one\'s worth', async () => {
  const h = await scenario('2026-03-10T12:00:00Z', 'w');
  try {
    await plan(h, 'mid', 'monthly', 5200); // 62,400 a year
    await plan(h, 'wk', 'weekly', 1000); // 52,000 a year
    await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD' } });
    await h.subscribe('c', 'mid', 's', { subscription_at: '2026-03-01T00:00:00Z', ending_at: '2026-09-01T00:00:00Z' });
    assert.equal((await h.subscribe('c', 'wk', 's', { name: 'Weekly' })).subscription.next_plan_code, 'wk');
    // the downgrade given an end of its own, before the current one's
    const r = await h.t.api('/api/v1/subscriptions/s?status=pending', { method: 'PUT', body: { subscription: { ending_at: '2026-06-15T00:00:00Z' } } });
    assert.equal(r.status, 200, await r.text());
    await edit(h, 'wk', 1199); // 62,348 a year: still cheaper
    assert.equal((await sub(h, 's')).next_plan_code, 'wk');
    await edit(h, 'wk', 1200); // 62,400: as dear
    const now = await sub(h, 's');
    assert.deepEqual(brief(now), {
      status: 'active', plan_code: 'wk', previous_plan_code: 'mid', next_plan_code: null,
      downgrade_plan_date: null, started_at: '2026-03-10T12:00:00.000Z', terminated_at: null,
    });
    // the downgrade's name, as Lago's upgrade takes it; the earlier of the two ends
    assert.deepEqual([now.name, now.ending_at], ['Weekly', '2026-06-15T00:00:00Z']);
  } finally { await h.t.cleanup(); }
});

test('a downgrade from a plan whose price edit puts it below the target\'s is canceled; the period\'s end moves nobody', async () => {
  const h = await scenario('2026-03-10T12:00:00Z', 'b');
  try {
    const calls = await h.metric({ code: 'calls', name: 'Calls', aggregation_type: 'count_agg' });
    const charges = (amount) => [{ billable_metric_id: calls, charge_model: 'standard', properties: { amount } }];
    await plan(h, 'big2', 'monthly', 5000, charges('1'));
    await plan(h, 'small2', 'monthly', 1000, charges('2'));
    await plan(h, 'wk2', 'weekly', 1000, charges('3')); // 52,000 a year: below big2's 60,000
    const wallets = {};
    // b1, b2: to small2; b3: to a plan of its own at 400; b4: to the weekly plan; b5: on a plan
    // of its own (overrides), which the edit does not reach
    for (const [c, to, extra] of [['b1', 'small2'], ['b2', 'small2'], ['b3', 'small2', { plan_overrides: { amount_cents: 400 } }], ['b4', 'wk2'], ['b5', 'small2']]) {
      await h.post('/api/v1/customers', { customer: { external_id: c, currency: 'USD' } });
      await h.subscribe(c, 'big2', c, { subscription_at: '2026-03-01T00:00:00Z', ...(c === 'b5' ? { plan_overrides: { amount_cents: 5000 } } : {}) });
      assert.equal((await h.subscribe(c, to, c, extra)).subscription.next_plan_code, to, c);
    }
    wallets.b1 = await h.wallet('b1', 1000);
    await h.sent(h.ev('b1', 'calls'), h.ev('b1', 'calls', {}, { timestamp: seconds('2026-04-05T00:00:00Z') }));

    // 2,000 a month: above small2's 1,000; Lago compares the plans' amounts as they are, not per
    // year, so the weekly plan's 1,000 stays a downgrade too
    await edit(h, 'big2', 2000);
    for (const c of ['b1', 'b2', 'b3', 'b4', 'b5']) assert.equal((await sub(h, c, 'pending')).status, 'pending', c);
    await edit(h, 'big2', 500);
    for (const c of ['b1', 'b2', 'b4']) {
      assert.deepEqual(brief(await sub(h, c)), {
        status: 'active', plan_code: 'big2', previous_plan_code: null, next_plan_code: null,
        downgrade_plan_date: null, started_at: '2026-03-01T00:00:00.000Z', terminated_at: null,
      }, c);
      assert.equal(await sub(h, c, 'pending'), 404, c);
      assert.equal((await ofCustomer(h, c, 'canceled')).length, 1, c);
    }
    // 500 is above b3's own 400: kept; b5's current plan is its own, at 5,000: kept
    for (const c of ['b3', 'b5']) assert.equal((await sub(h, c)).next_plan_code, 'small2', c);

    await h.advance('2026-04-01T00:00:00Z');
    for (const c of ['b1', 'b2', 'b4']) {
      const s = await sub(h, c);
      assert.deepEqual([s.plan_code, s.status, s.started_at], ['big2', 'active', '2026-03-01T00:00:00.000Z'], c);
      assert.deepEqual([s.current_billing_period_started_at, s.current_billing_period_ending_at], ['2026-04-01T00:00:00Z', '2026-04-30T23:59:59Z'], c);
    }
    for (const c of ['b3', 'b5']) assert.equal((await sub(h, c)).plan_code, 'small2', c);
    // the event sent ahead to the canceled downgrade is big2's April, paid at its start
    await h.advance('2026-04-10T00:00:00Z');
    const april = await h.usage('b1', 'b1');
    assert.deepEqual([april.from_datetime, april.charges_usage[0].units, april.amount_cents], ['2026-04-01T00:00:00Z', '1.0', 100]);
    assert.equal(await h.balance(wallets.b1), 100000 - 100 - 100);
    await h.t.restart({ kill: true });
    assert.deepEqual(await h.usage('b1', 'b1'), april);
    await checkWalletLedger(h.t, wallets.b1);
  } finally { await h.t.cleanup(); }
});

test('an edit re-checks its own organization\'s downgrades, each at its own test clock', async () => {
  const h = await scenario('2026-03-10T12:00:00Z', 'o');
  let other;
  try {
    await h.t.restart({ between: (dir) => { other = createOrg(dir, 'Other', ['--test-clock', '2026-05-20T08:00:00Z']); } });
    const as = async (key, method, path, body) => {
      const r = await h.t.api(path, { method, body, key });
      const b = await r.json();
      assert.equal(r.status, 200, JSON.stringify(b));
      return b;
    };
    for (const key of [h.t.key, other]) {
      await as(key, 'POST', '/api/v1/plans', { plan: { code: 'big', name: 'big', interval: 'monthly', amount_cents: 5000, amount_currency: 'USD' } });
      await as(key, 'POST', '/api/v1/plans', { plan: { code: 'small', name: 'small', interval: 'monthly', amount_cents: 1000, amount_currency: 'USD' } });
      await as(key, 'POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c', plan_code: 'big', external_id: 's' } });
      await as(key, 'POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c', plan_code: 'small', external_id: 's' } });
    }
    await as(h.t.key, 'PUT', '/api/v1/plans/small', { plan: { amount_cents: 9000 } });
    const mine = (await as(h.t.key, 'GET', '/api/v1/subscriptions/s')).subscription;
    assert.deepEqual([mine.plan_code, mine.started_at], ['small', '2026-03-10T12:00:00.000Z']);
    let theirs = (await as(other, 'GET', '/api/v1/subscriptions/s')).subscription;
    assert.deepEqual([theirs.plan_code, theirs.next_plan_code], ['big', 'small']);
    await as(other, 'PUT', '/api/v1/plans/small', { plan: { amount_cents: 9000 } });
    theirs = (await as(other, 'GET', '/api/v1/subscriptions/s')).subscription;
    assert.deepEqual([theirs.plan_code, theirs.previous_plan_code, theirs.started_at], ['small', 'big', '2026-05-20T08:00:00.000Z']);
  } finally { await h.t.cleanup(); }
});
