// Events a metric cannot count. An event is checked against its billable metric's rules (a
// unique count's operation_type, a number that does not fit) whether or not a charge of the
// subscription's plan uses the metric: accepted unchecked, a later plan edit that charged it
// left current usage and every event of the subscription 500, and no start (an audit). And a
// stored event a charge cannot count (written by an earlier build, or counted anew after a
// change of the metric's aggregation) is passed over, said on stderr and counted in /metrics:
// it never fails a usage or the start.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startWithOrg } from '../lib/tallyd.mjs';

const CLOCK = '2026-03-01T00:00:00Z';
const servers = [];
after(async () => { await Promise.all(servers.map((s) => s.cleanup())); });

async function server() {
  const t = await startWithOrg(['--test-clock', CLOCK]);
  servers.push(t);
  return t;
}

async function metric(t, code, aggregation_type, field_name = 'v', recurring = false) {
  const b = { name: code, code, aggregation_type, recurring };
  if (field_name) b.field_name = field_name;
  return (await t.call('POST', '/api/v1/billable_metrics', { billable_metric: b })).billable_metric.lago_id;
}

// (a free charge for `free`: a price of 10^37 units would not fit)
const charge = (id, free) => ({ billable_metric_id: id, charge_model: 'standard',
  properties: { amount: id === free ? '0' : '1' } });

async function plan(t, code, metricIds, free) {
  await t.call('POST', '/api/v1/plans', { plan: { name: code, code, interval: 'monthly', amount_cents: 0,
    amount_currency: 'USD', charges: metricIds.map((id) => charge(id, free)) } });
}

async function subscribe(t, customer, planCode, id) {
  await t.call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: customer,
    plan_code: planCode, external_id: id } });
}

async function send(t, tx, sub, code, properties) {
  const r = await t.api('/api/v1/events', { method: 'POST', body: { event: { transaction_id: tx,
    external_subscription_id: sub, code, properties } } });
  return { status: r.status, body: await r.json() };
}

async function usage(t, customer, sub) {
  const r = await t.api(`/api/v1/customers/${customer}/current_usage?external_subscription_id=${sub}`);
  const b = await r.json();
  assert.equal(r.status, 200, JSON.stringify(b));
  return Object.fromEntries(b.customer_usage.charges_usage.map((c) => [c.billable_metric.code, c.units]));
}

async function passedOver(t) {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  const m = text.match(/^tally_usage_events_passed_over_total (\d+)$/m);
  assert.ok(m, 'tally_usage_events_passed_over_total is in /metrics');
  return Number(m[1]);
}

// Rewrites stored event bytes in place, as an earlier build may have stored them: `from` and
// `to` have the same length, so the block's lengths still hold.
function rewriteStored(dir, from, to) {
  assert.equal(from.length, to.length);
  const db = join(dir, 'tally.db');
  const hex = (s) => Buffer.from(s, 'utf8').toString('hex').toUpperCase();
  const rows = spawnSync('sqlite3', [db, 'SELECT first_id, hex(data) FROM event_blocks'], { encoding: 'utf8' });
  assert.equal(rows.status, 0, rows.stderr);
  let changed = 0;
  for (const line of rows.stdout.trim().split('\n')) {
    const [id, data] = line.split('|');
    if (!data.includes(hex(from))) continue;
    const r = spawnSync('sqlite3', [db,
      `UPDATE event_blocks SET data = X'${data.split(hex(from)).join(hex(to))}' WHERE first_id = ${id}`],
    { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    changed++;
  }
  // a recurring metric's events are copied where a usage reads its past
  const r = spawnSync('sqlite3', [db, `UPDATE recurring_events SET properties = replace(properties, '${from}', '${to}')`],
    { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(changed > 0, `no stored event holds ${from}`);
}

test('an event is checked against its metric whether or not the plan charges it', async () => {
  const t = await server();
  const charged = await metric(t, 'charged', 'count_agg', null);
  await metric(t, 'u', 'unique_count_agg');
  const ids = {};
  for (const type of ['sum_agg', 'max_agg', 'latest_agg', 'weighted_sum_agg'])
    ids[type] = await metric(t, type, type);
  await metric(t, 'n', 'count_agg');
  await plan(t, 'p', [charged]);
  await subscribe(t, 'c1', 'p', 's1');

  let r = await send(t, 't1', 's1', 'u', { v: 'a', operation_type: 'REMOVE' });
  assert.equal(r.status, 422, JSON.stringify(r.body));
  assert.deepEqual(r.body.error_details, { properties: ['invalid_operation_type'] });
  for (const type of Object.keys(ids)) {
    r = await send(t, `t-${type}`, 's1', type, { v: 1e308 });
    assert.equal(r.status, 422, `${type}: ${JSON.stringify(r.body)}`);
    assert.deepEqual(r.body.error_details, { properties: ['value_is_out_of_range'] });
    r = await send(t, `t-${type}-s`, 's1', type, { v: '1' + '0'.repeat(40) });
    assert.equal(r.status, 422, `${type}: ${JSON.stringify(r.body)}`);
  }
  // what the metric counts, or ignores, is taken
  assert.equal((await send(t, 't2', 's1', 'u', { v: 'a', operation_type: 'remove' })).status, 200);
  assert.equal((await send(t, 't3', 's1', 'sum_agg', { v: 'abc' })).status, 200);
  assert.equal((await send(t, 't4', 's1', 'sum_agg', { v: 5 })).status, 200);
  assert.equal((await send(t, 't5', 's1', 'n', { v: 1e308, operation_type: 'REMOVE' })).status, 200);

  // a batch is all or nothing: the bad event refuses the good one with it
  const b = await t.api('/api/v1/events/batch', { method: 'POST', body: { events: [
    { transaction_id: 'b1', external_subscription_id: 's1', code: 'sum_agg', properties: { v: 1 } },
    { transaction_id: 'b2', external_subscription_id: 's1', code: 'u', properties: { v: 'x', operation_type: 'delete' } },
  ] } });
  const bb = await b.json();
  assert.equal(b.status, 422, JSON.stringify(bb));
  assert.deepEqual(bb.error_details, { 1: { properties: ['invalid_operation_type'] } });
  assert.equal((await send(t, 'b1', 's1', 'sum_agg', { v: 1 })).status, 200, 'b1 was not kept');

  // the plan now charges them all: its usage and its events go on
  await t.call('PUT', '/api/v1/plans/p', { plan: { charges: [charged, ...Object.values(ids)].map(charge) } });
  const units = await usage(t, 'c1', 's1');
  assert.equal(units.sum_agg, '6.0');
  assert.equal((await send(t, 't6', 's1', 'charged', {})).status, 200);
  await t.restart();
  assert.deepEqual(await usage(t, 'c1', 's1'), { ...units, charged: '1.0' });
});

test('a stored event a charge cannot count is passed over, at the start and after a plan edit', async () => {
  const t = await server();
  const u = await metric(t, 'u', 'unique_count_agg');
  const u2 = await metric(t, 'u2', 'unique_count_agg');
  const s = await metric(t, 's', 'sum_agg');
  await plan(t, 'p', [u, s], s);
  await subscribe(t, 'c1', 'p', 's1');
  await t.call('POST', '/api/v1/events', { event: { transaction_id: 'a', external_subscription_id: 's1',
    code: 'u', properties: { v: 'a' } } });
  await t.call('POST', '/api/v1/events', { event: { transaction_id: 'b', external_subscription_id: 's1',
    code: 'u', properties: { v: 'a', operation_type: 'remove' } } });
  await t.call('POST', '/api/v1/events', { event: { transaction_id: 'c', external_subscription_id: 's1',
    code: 'u2', properties: { v: 'z', operation_type: 'remove' } } });
  await t.call('POST', '/api/v1/events', { event: { transaction_id: 'd', external_subscription_id: 's1',
    code: 's', properties: { v: 2 } } });
  await t.call('POST', '/api/v1/events', { event: { transaction_id: 'e', external_subscription_id: 's1',
    code: 's', properties: { v: 9e37 } } });
  assert.deepEqual(await usage(t, 'c1', 's1'), { u: '0.0', s: '90000000000000000000000000000000000002.0' });
  // as an earlier build stored them: a removal Tally refuses now, a sum past 10^38
  await t.restart({ between: (dir) => {
    rewriteStored(dir, '"remove"', '"REMOVE"');
    rewriteStored(dir, '9e+37', '9e+39'); // (JSON.stringify's text of 9e37)
  } });
  assert.match(t.server.stderr(), /passed over/);
  assert.deepEqual(await usage(t, 'c1', 's1'), { u: '1.0', s: '2.0' });
  assert.ok(await passedOver(t) >= 2);
  assert.equal((await send(t, 'f', 's1', 's', { v: 1 })).status, 200);
  // a plan edit charging the metric with the stored REMOVE: passed over too
  await t.call('PUT', '/api/v1/plans/p', { plan: { charges: [u, s, u2].map((id) => charge(id, s)) } });
  assert.deepEqual(await usage(t, 'c1', 's1'), { u: '1.0', u2: '0.0', s: '3.0' });
  assert.equal((await send(t, 'g', 's1', 'u2', { v: 'y' })).status, 200);
  await t.restart();
  assert.deepEqual(await usage(t, 'c1', 's1'), { u: '1.0', u2: '1.0', s: '3.0' });
});

test('an upgrade to a plan charging a metric whose stored events it cannot count', async () => {
  const t = await server();
  const n = await metric(t, 'n', 'count_agg', null);
  const u = await metric(t, 'u', 'unique_count_agg', 'v', true);
  await plan(t, 'small', [n]);
  await plan(t, 'big', [n, u]);
  await t.call('PUT', '/api/v1/plans/big', { plan: { amount_cents: 100 } });
  await subscribe(t, 'c1', 'small', 's1');
  await t.call('POST', '/api/v1/events', { event: { transaction_id: 'a', external_subscription_id: 's1',
    code: 'u', properties: { v: 'a', operation_type: 'remove' } } });
  await t.call('POST', '/api/v1/events', { event: { transaction_id: 'b', external_subscription_id: 's1',
    code: 'u', properties: { v: 'b' } } });
  await t.restart({ between: (dir) => rewriteStored(dir, '"remove"', '"REMOVE"') });
  await subscribe(t, 'c1', 'big', 's1'); // an upgrade: at once
  assert.equal((await send(t, 'c', 's1', 'n', {})).status, 200);
  const units = await usage(t, 'c1', 's1');
  assert.deepEqual(units, { n: '1.0', u: '1.0' }); // b, carried; the stored REMOVE passed over
  await t.restart();
  assert.deepEqual(await usage(t, 'c1', 's1'), units);
});

test("a metric's new aggregation meets stored events it cannot count: passed over", async () => {
  // (a plan's charge holds a metric's aggregation: it changes only while no plan charges it)
  const t = await server();
  const x = await metric(t, 'x', 'count_agg', null);
  const a = await metric(t, 'a', 'count_agg');
  const b = await metric(t, 'b', 'count_agg');
  await plan(t, 'p', [x]);
  await subscribe(t, 'c1', 'p', 's1');
  for (const [tx, code, properties] of [['1', 'a', { v: 1e308 }], ['2', 'a', { v: 4 }], ['3', 'a', { v: 'x' }],
    ['4', 'b', { v: 'p', operation_type: 'REMOVE' }], ['5', 'b', { v: 'q' }]])
    await t.call('POST', '/api/v1/events', { event: { transaction_id: tx, external_subscription_id: 's1', code, properties } });
  await t.call('PUT', '/api/v1/billable_metrics/a', { billable_metric: { aggregation_type: 'sum_agg', field_name: 'v' } });
  await t.call('PUT', '/api/v1/billable_metrics/b', { billable_metric: { aggregation_type: 'unique_count_agg', field_name: 'v' } });
  await t.call('PUT', '/api/v1/plans/p', { plan: { charges: [x, a, b].map(charge) } });
  assert.deepEqual(await usage(t, 'c1', 's1'), { x: '0.0', a: '4.0', b: '1.0' });
  assert.ok(await passedOver(t) > 0);
  assert.equal((await send(t, '6', 's1', 'a', { v: 1 })).status, 200);
  assert.equal((await send(t, '7', 's1', 'b', { v: 'r' })).status, 200);
  await t.restart();
  assert.match(t.server.stderr(), /passed over/);
  assert.deepEqual(await usage(t, 'c1', 's1'), { x: '0.0', a: '5.0', b: '2.0' });
});
