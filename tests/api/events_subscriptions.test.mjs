// Events find the subscription active at their timestamp, and follow every change to it at
// once, although the writer remembers the subscriptions events named (engine/sub_cache): an
// upgrade now, a downgrade at the period's end, a termination; late events still go to the
// subscription that was active when they happened.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
const call = async (method, path, body) => {
  const r = await t.api(path, { method, body });
  return { status: r.status, body: await r.json() };
};
before(async () => {
  t = await startWithOrg(['--test-clock', '2026-02-10T00:00:00Z']);
  const bm = (await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' } })).body.billable_metric;
  for (const [code, amount_cents, price] of [['small', 1000, '1'], ['big', 5000, '2'], ['tiny', 100, '3']])
    await call('POST', '/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents, amount_currency: 'EUR', charges: [{ billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: price } }] } });
});
after(async () => { await t.cleanup(); });

const subscribe = (plan_code) => call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'acme', plan_code, external_id: 'x', subscription_at: '2026-02-01T00:00:00Z' } });
const advance = (to) => call('POST', '/api/v1/test_clock/advance', { test_clock: { to } });
let n = 0;
const send = async (extra = {}) => call('POST', '/api/v1/events', { event: { transaction_id: `e${n++}`, external_subscription_id: 'x', code: 'calls', ...extra } });
const sentTo = async (extra) => {
  const r = await send(extra);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.event.lago_subscription_id;
};
const usage = async () => (await call('GET', '/api/v1/customers/acme/current_usage?external_subscription_id=x')).body.customer_usage;

test('an upgrade takes the next event at once; a late event goes to the subscription of its time', async () => {
  const small = (await subscribe('small')).body.subscription;
  for (let i = 0; i < 3; i++) assert.equal(await sentTo(), small.lago_id);
  await advance('2026-02-12T00:00:00Z');
  const big = (await subscribe('big')).body.subscription;
  assert.notEqual(big.lago_id, small.lago_id);
  assert.equal(big.started_at, '2026-02-12T00:00:00.000Z');
  assert.equal(await sentTo(), big.lago_id);
  const late = Date.parse('2026-02-11T00:00:00Z') / 1000;
  assert.equal(await sentTo({ timestamp: late }), small.lago_id);
  assert.equal(await sentTo(), big.lago_id);
  const u = await usage();
  assert.equal(u.charges_usage[0].events_count, 2);
  assert.equal(u.amount_cents, 400); // 2 events at the big plan's 2 EUR
});

const listed = async (query) => (await call('GET', `/api/v1/events?per_page=100&${query}`)).body.events.map((e) => e.transaction_id).sort();

// Lago's EventsQuery: timestamp_from_started_at bounds the listing by the started_at of the
// subscription made last under that external id. Its filters contract
// (Queries::EventsQueryFiltersContract) takes the flag as "true" or "false" only, and refuses
// it with timestamp_from, or without external_subscription_id: an audit found both taken
// silently, the caller's timestamp_from dropped.
test('timestamp_from_started_at lists the events from the current subscription\'s start', async () => {
  const all = await listed('external_subscription_id=x');
  assert.equal(all.length, 6);
  // the upgrade started the big plan on 02-12: its two events, not the small plan's four
  // (the late one of 02-11 included)
  assert.deepEqual(await listed('external_subscription_id=x&timestamp_from_started_at=true'), ['e3', 'e5']);
  assert.deepEqual(await listed('external_subscription_id=x&timestamp_from_started_at=true&timestamp_to=2026-02-11T23:59:59Z'), []);
  assert.deepEqual(await listed('external_subscription_id=x&timestamp_from_started_at=false'), all);
  assert.deepEqual(await listed('external_subscription_id=x&timestamp_from_started_at=false&timestamp_from=2026-02-12T00:00:00Z'), ['e3', 'e5']);
  assert.deepEqual(await listed('external_subscription_id=nobody&timestamp_from_started_at=true'), []);
  // an empty timestamp_from or external_subscription_id is none, as Lago's present? reads it
  assert.deepEqual(await listed('external_subscription_id=x&timestamp_from_started_at=true&timestamp_from='), ['e3', 'e5']);
  // with no such subscription, Lago's query falls back to that blank timestamp_from, which
  // DateTime.iso8601 refuses
  const r = await call('GET', '/api/v1/events?external_subscription_id=nobody&timestamp_from_started_at=true&timestamp_from=');
  assert.deepEqual([r.status, r.body.error_details], [422, { timestamp_from: ['invalid_date'] }]);
});

test('timestamp_from_started_at: the filter combinations Lago\'s contract refuses are 422, with its messages', async () => {
  const refused = async (query, error_details) => {
    const r = await call('GET', `/api/v1/events?${query}`);
    assert.equal(r.status, 422, query);
    assert.equal(r.body.code, 'validation_errors', query);
    assert.deepEqual(r.body.error_details, error_details, query);
  };
  const withFrom = { timestamp_from: ['cannot be used with timestamp_from_started_at'] };
  const withoutSub = { external_subscription_id: ['required with timestamp_from_started_at'] };
  await refused('external_subscription_id=x&timestamp_from_started_at=true&timestamp_from=2026-02-01T00:00:00Z', withFrom);
  await refused('timestamp_from_started_at=true', withoutSub);
  await refused('timestamp_from_started_at=true&external_subscription_id=', withoutSub);
  await refused('timestamp_from_started_at=true&external_subscription_id=%20%09', withoutSub);
  await refused('timestamp_from_started_at=true&timestamp_from=2026-02-01T00:00:00Z', { ...withFrom, ...withoutSub });
  for (const flag of ['1', 't', 'yes', 'TRUE', 'False', '0', 'off', ''])
    await refused(`external_subscription_id=x&timestamp_from_started_at=${flag}`, { timestamp_from_started_at: ['must be one of: true, false'] });
  // the flag's own error alone, as dry-validation's rules wait for its schema to pass
  await refused('timestamp_from_started_at=yes&timestamp_from=2026-02-01T00:00:00Z', { timestamp_from_started_at: ['must be one of: true, false'] });
});

test('a downgrade takes the events from the start of the next period', async () => {
  const big = (await call('GET', '/api/v1/subscriptions/x')).body.subscription;
  const r = await subscribe('tiny');
  assert.equal(r.body.subscription.next_plan_code, 'tiny');
  // the pending downgrade is the subscription made last: it has not started, so bounds nothing
  assert.equal((await listed('external_subscription_id=x&timestamp_from_started_at=true')).length, 6);
  assert.equal(await sentTo(), big.lago_id);
  await advance('2026-03-01T00:00:00Z');
  const tiny = (await call('GET', '/api/v1/subscriptions/x')).body.subscription;
  assert.equal(tiny.plan_code, 'tiny');
  assert.equal(await sentTo(), tiny.lago_id);
  const lastOfFebruary = Date.parse('2026-02-28T23:00:00Z') / 1000;
  assert.equal(await sentTo({ timestamp: lastOfFebruary }), big.lago_id);
  assert.equal((await usage()).amount_cents, 300);
});

test('after a termination, events for it are refused, late ones still accepted', async () => {
  const tiny = (await call('GET', '/api/v1/subscriptions/x')).body.subscription;
  assert.equal(await sentTo(), tiny.lago_id);
  await advance('2026-03-05T00:00:00Z');
  assert.equal((await call('DELETE', '/api/v1/subscriptions/x')).status, 200);
  // the termination's very instant is the subscription's (Lago's Event#subscription:
  // terminated_at >= timestamp): an event of it, sent now on the clock that has not moved,
  // is its late event, however the cache remembered its span
  assert.equal(await sentTo(), tiny.lago_id);
  await advance('2026-03-05T00:00:01Z');
  const r = await send();
  assert.equal(r.status, 422);
  assert.deepEqual(r.body.error_details, { external_subscription_id: ['subscription_not_found'] });
  assert.equal(await sentTo({ timestamp: Date.parse('2026-03-02T00:00:00Z') / 1000 }), tiny.lago_id);
});

// Found by a restart-twin fuzzer: an external id made again with a subscription_at before the
// ended subscription's start has two subscriptions covering that one's life; the store names the
// one started last (the ended one) for a time in it. The writer's memory named the new one for
// every time from its start, once a lookup at the clock's time had brought it: a late event went
// to another subscription than after a restart.
test('a late event goes to the subscription the store names for its time, whatever the writer remembers', async () => {
  await advance('2026-03-10T00:00:00Z');
  const sub = (extra) => call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'bob', plan_code: 'small', external_id: 'y', ...extra } });
  const first = (await sub({ subscription_at: '2026-03-06T00:00:00Z' })).body.subscription;
  assert.equal((await call('DELETE', '/api/v1/subscriptions/y')).status, 200);
  const again = (await sub({ subscription_at: '2026-03-01T00:00:00Z' })).body.subscription;
  assert.notEqual(again.lago_id, first.lago_id);
  const to = async (extra) => {
    const r = await call('POST', '/api/v1/events', { event: { transaction_id: `y${n++}`, external_subscription_id: 'y', code: 'calls', ...extra } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.event.lago_subscription_id;
  };
  assert.equal(await to(), again.lago_id); // now: only the new one is live
  assert.equal(await to({ timestamp: Date.parse('2026-03-08T00:00:00Z') / 1000 }), first.lago_id); // both cover it: the one started last
  assert.equal(await to({ timestamp: Date.parse('2026-03-03T00:00:00Z') / 1000 }), again.lago_id); // only the new one
  assert.equal(await to(), again.lago_id);
});
