// Test clocks: an organization created with --test-clock lives on a clock that moves only
// through POST /test_clock/advance, never backwards; real-clock organizations cannot move.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startWithOrg, createOrg } from '../lib/tallyd.mjs';
import { scenario } from '../lib/scenario.mjs';

let t;
let realKey;
before(async () => {
  t = await startWithOrg(['--test-clock', '2026-01-01T00:00:00Z']);
  await t.restart({ between: (dir) => { realKey = createOrg(dir, 'Real'); } });
});
after(async () => { await t.cleanup(); });

const advance = (to, key) => t.api('/api/v1/test_clock/advance', { method: 'POST', key, body: { test_clock: { to } } });

test('reads the clock it was created with', async () => {
  const r = await (await t.api('/api/v1/test_clock')).json();
  assert.deepEqual(r, { test_clock: { now: '2026-01-01T00:00:00.000000Z', enabled: true } });
});

test('advances forward, stays put on the same instant, refuses to go back', async () => {
  let r = await advance('2026-03-31T22:00:00-02:00');
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { test_clock: { now: '2026-04-01T00:00:00.000000Z', enabled: true } });
  r = await advance('2026-04-01T00:00:00Z');
  assert.equal(r.status, 200);
  r = await advance('2026-03-01T00:00:00Z');
  assert.equal(r.status, 422);
  assert.deepEqual((await r.json()).error_details, { to: ['cannot_move_backwards'] });
  assert.equal((await (await t.api('/api/v1/test_clock')).json()).test_clock.now, '2026-04-01T00:00:00.000000Z');
});

test('every command is applied at the test clock', async () => {
  await advance('2026-05-05T05:05:05Z');
  const c = await (await t.api('/api/v1/customers', { method: 'POST', body: { customer: { external_id: 'clocked' } } })).json();
  assert.equal(c.customer.created_at, '2026-05-05T05:05:05Z');
});

test('bad input: not a date, missing, missing root', async () => {
  for (const [body, status] of [[{ test_clock: { to: 'tomorrow' } }, 422], [{ test_clock: { to: '2026-02-30T00:00:00Z' } }, 422], [{ test_clock: {} }, 422], [{ clock: {} }, 400]]) {
    const r = await t.api('/api/v1/test_clock/advance', { method: 'POST', body });
    assert.equal(r.status, status, JSON.stringify(body));
  }
});

// Found by a black-box audit: a `to` that was there but not a string (a number of seconds, a
// boolean) was told value_is_mandatory, as if it were missing.
test('a to of the wrong type is invalid_type; a missing or null one value_is_mandatory', async () => {
  for (const [to, code] of [[1767312000, 'invalid_type'], [true, 'invalid_type'], [{}, 'invalid_type'], [null, 'value_is_mandatory'], [undefined, 'value_is_mandatory']]) {
    const r = await advance(to);
    assert.equal(r.status, 422, JSON.stringify(to));
    assert.deepEqual((await r.json()).error_details, { to: [code] }, JSON.stringify(to));
  }
});

test('a clock stays where events may be: 9999 is refused here and by the CLI', async () => {
  for (const to of ['9999-06-01T00:00:00Z', '9998-12-31T10:00:00Z']) {
    const r = await advance(to);
    assert.equal(r.status, 422, to);
    const body = await r.json();
    assert.deepEqual(body.error_details, { to: ['value_is_out_of_range'] });
    assert.match(body.message, /9998-12-31T09:59:59Z/);
  }
  const { tally, newDataDir } = await import('../lib/tallyd.mjs');
  for (const clock of ['9999-12-31T23:59:59Z', '9998-12-31T10:00:00Z', '1969-12-31T00:00:00Z']) {
    const cli = tally(['--data-dir', newDataDir(), 'org', 'create', 'Far', '--test-clock', clock]);
    assert.equal(cli.status, 2, clock);
    assert.match(cli.stderr, /from 1970 to 9998-12-31T09:59:59Z/);
  }
});

// Found by an audit: the clock went up to 9998-12-31T23:59:59Z, where a zone 14 hours ahead
// of UTC is in 9999: a yearly subscription there was taken (200) but its period, ending in
// 10000, could never be priced (500 store_failed on its usage and events, after a restart too).
// The clock now stops at 9998-12-31T09:59:59.999999Z, in 9998 in every zone, and a store whose
// clock an older Tally left past it is brought back to it when it is opened.
test('at the clock\'s last instant a yearly plan 14 hours ahead of UTC is priced; a stored clock past it is brought back', async () => {
  const h = await scenario('9998-12-31T09:59:59.999999Z', 'k');
  try {
    const calls = await h.metric({ code: 'calls', name: 'calls', aggregation_type: 'count_agg' });
    await h.post('/api/v1/plans', { plan: { code: 'y', name: 'y', interval: 'yearly', amount_cents: 0, amount_currency: 'USD', charges: [{ billable_metric_id: calls, charge_model: 'standard', properties: { amount: '1' } }] } });
    await h.post('/api/v1/customers', { customer: { external_id: 'k', currency: 'USD', timezone: 'Pacific/Kiritimati' } });
    const priced = async (id, billing_time, end) => {
      const s = (await h.subscribe('k', 'y', id, { billing_time })).subscription;
      assert.equal(s.current_billing_period_ending_at, end, id);
      await h.sent(h.ev(id, 'calls'));
      const u = await h.usage('k', id);
      assert.deepEqual([u.to_datetime, u.amount_cents], [end, 100], id);
    };
    await priced('calendar', 'calendar', '9998-12-31T09:59:59Z');
    await priced('anniversary', 'anniversary', '9999-12-30T09:59:59Z'); // from 9998-12-31 there
    const w = await h.post('/api/v1/wallets', { wallet: { external_customer_id: 'k', currency: 'USD', rate_amount: '1', name: 'W', granted_credits: '10', recurring_transaction_rules: [{ trigger: 'interval', interval: 'yearly', granted_credits: '1' }] } });
    assert.equal(w.wallet.recurring_transaction_rules.length, 1);
    // a store of the release before (schema 50, without the columns of 52 and 53) whose clock
    // was moved past the last instant
    await h.t.restart({ between: (dir) => {
      const undo = 'ALTER TABLE subscriptions DROP COLUMN purchase_order_number; ALTER TABLE invoices DROP COLUMN purchase_order_number;';
      const r = spawnSync('sqlite3', [join(dir, 'tally.db'), `${undo} PRAGMA user_version = 50; UPDATE organizations SET test_clock_now = 253370808000000000;`], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    } });
    assert.equal((await h.get('/api/v1/test_clock')).test_clock.now, '9998-12-31T09:59:59.999999Z');
    assert.equal((await h.usage('k', 'calendar')).amount_cents, 100);
    await priced('calendar_after', 'calendar', '9998-12-31T09:59:59Z');
  } finally { await h.t.cleanup(); }
});

test('the clock survives a restart', async () => {
  await t.restart({ kill: true });
  assert.equal((await (await t.api('/api/v1/test_clock')).json()).test_clock.now, '2026-05-05T05:05:05.000000Z');
});

test('a real-clock organization reads real time and cannot be advanced', async () => {
  const r = await (await t.api('/api/v1/test_clock', { key: realKey })).json();
  assert.equal(r.test_clock.enabled, false);
  assert.ok(Math.abs(Date.parse(r.test_clock.now) - Date.now()) < 60000);
  const a = await advance('2030-01-01T00:00:00Z', realKey);
  assert.equal(a.status, 422);
  assert.deepEqual((await a.json()).error_details, { test_clock: ['organization_has_no_test_clock'] });
});

// The clock keeps microseconds (a `to` may carry them), and its `now` shows all of them: the
// instant it answers is the clock's, so an advance to it stays put. Found by an audit: `now`
// was cut to the millisecond, so an advance to the `now` just read was cannot_move_backwards.
test('now shows the microseconds the clock keeps, so an advance to the now read stays put', async () => {
  let r = await advance('2026-06-01T00:00:00.0009Z');
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { test_clock: { now: '2026-06-01T00:00:00.000900Z', enabled: true } });
  const { now } = (await (await t.api('/api/v1/test_clock')).json()).test_clock;
  assert.equal(now, '2026-06-01T00:00:00.000900Z');
  r = await advance(now);
  assert.equal(r.status, 200, JSON.stringify(await r.clone().json()));
  assert.equal((await r.json()).test_clock.now, now);
  r = await advance('2026-06-01T00:00:00.000899Z'); // a microsecond back is still back
  assert.equal(r.status, 422);
  assert.deepEqual((await r.json()).error_details, { to: ['cannot_move_backwards'] });
  r = await advance('2026-06-01T04:00:01.123456+02:00');
  assert.deepEqual(await r.json(), { test_clock: { now: '2026-06-01T02:00:01.123456Z', enabled: true } });
});

// Found by an isolation audit: a hold marked its wallet for the next write-out without a time,
// and the next write of any organization wrote it out at its own clock, so a real-clock
// wallet showed the test clock's date (and a test-clock wallet real time).
test('a wallet written out after a hold keeps its own organization\'s time', async () => {
  const clocked = { key: t.key, now: (await (await t.api('/api/v1/test_clock')).json()).test_clock.now };
  const real = { key: realKey };
  const call = async (who, method, path, body) => {
    const r = await t.api(path, { method, body, key: who.key });
    const b = await r.json();
    assert.equal(r.status, 200, `${method} ${path}: ${JSON.stringify(b)}`);
    return b;
  };
  for (const who of [clocked, real]) {
    const m = await call(who, 'POST', '/api/v1/billable_metrics', { billable_metric: { name: 'Tokens', code: 'held_tok', aggregation_type: 'sum_agg', field_name: 'n' } });
    await call(who, 'POST', '/api/v1/plans', { plan: { name: 'P', code: 'held_p', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [{ billable_metric_id: m.billable_metric.lago_id, charge_model: 'standard', properties: { amount: '0.01' } }] } });
    await call(who, 'POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'held_c', plan_code: 'held_p', external_id: 'held_s' } });
    who.wallet = (await call(who, 'POST', '/api/v1/wallets', { wallet: { external_customer_id: 'held_c', currency: 'USD', rate_amount: '1', granted_credits: '10' } })).wallet.lago_id;
  }
  const syncedAt = async (who) => (await call(who, 'GET', `/api/v1/wallets/${who.wallet}`)).wallet.last_balance_sync_at;
  for (const [holder, other] of [[real, clocked], [clocked, real]]) {
    const before = Date.now();
    const hold = await call(holder, 'POST', '/api/v1/authorizations', { authorization: { external_subscription_id: 'held_s', code: 'held_tok', properties: { n: '5' } } });
    assert.equal(hold.authorization.status, 'authorized');
    await call(other, 'POST', '/api/v1/customers', { customer: { external_id: `other_${before}` } }); // any write of the other
    const at = await syncedAt(holder);
    if (holder === clocked) assert.equal(at, clocked.now.replace(/\.\d+Z$/, 'Z'));
    else assert.ok(Date.parse(at) >= Math.floor(before / 1000) * 1000, `${at}: not the real clock's time`);
  }
});

// Found by a fuzzing audit: one advance to 9998 of a wallet's weekly rule made every
// anniversary in one command of the writer, two minutes in which no organization could write
// (and each anniversary's look at every grant grew the command's memory with their square).
// An advance moves a clock 50 years (18,262 days) at most; farther is refused, nothing changed.
test('an advance moves the clock 50 years at most; farther goes in steps', async () => {
  const h = await scenario('2026-01-01T00:00:00Z', 'span');
  try {
    await h.post('/api/v1/customers', { customer: { external_id: 'weekly', currency: 'USD' } });
    const w = (await h.post('/api/v1/wallets', { wallet: { external_customer_id: 'weekly', currency: 'USD', rate_amount: '1', name: 'W', granted_credits: '1',
      recurring_transaction_rules: [{ trigger: 'interval', interval: 'weekly', granted_credits: '1' }] } })).wallet;
    const far = await h.t.api('/api/v1/test_clock/advance', { method: 'POST', body: { test_clock: { to: '2076-01-01T00:00:00.000001Z' } } }); // 18,262 days and a microsecond
    const body = await far.json();
    assert.deepEqual([far.status, body.error_details], [422, { to: ['value_is_out_of_range'] }]);
    assert.match(body.message, /50 years/);
    assert.equal((await h.get('/api/v1/test_clock')).test_clock.now, '2026-01-01T00:00:00.000000Z');
    assert.equal((await h.get(`/api/v1/wallets/${w.lago_id}`)).wallet.credits_balance, '1.0');
    await h.advance('2076-01-01T00:00:00Z'); // exactly 18,262 days: every anniversary made
    const weeks = Math.floor(18262 / 7); // weeks from Thursday 2026-01-01, the last on 2075-12-26
    assert.equal((await h.get(`/api/v1/wallets/${w.lago_id}`)).wallet.credits_balance, `${1 + weeks}.0`);
  } finally {
    await h.t.cleanup();
  }
});
