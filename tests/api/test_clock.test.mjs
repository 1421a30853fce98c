// Test clocks: an organization created with --test-clock lives on a clock that moves only
// through POST /test_clock/advance, never backwards; real-clock organizations cannot move.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg, createOrg } from '../lib/tallyd.mjs';

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
  const r = await advance('9999-06-01T00:00:00Z');
  assert.equal(r.status, 422);
  const body = await r.json();
  assert.deepEqual(body.error_details, { to: ['value_is_out_of_range'] });
  assert.match(body.message, /9998-12-31/);
  const { tally, newDataDir } = await import('../lib/tallyd.mjs');
  for (const clock of ['9999-12-31T23:59:59Z', '1969-12-31T00:00:00Z']) {
    const cli = tally(['--data-dir', newDataDir(), 'org', 'create', 'Far', '--test-clock', clock]);
    assert.equal(cli.status, 2, clock);
    assert.match(cli.stderr, /from 1970 to 9998-12-31/);
  }
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
