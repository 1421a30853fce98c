// Grouped charges (Lago's pricing_group_keys, formerly grouped_by) over real HTTP: each distinct
// combination of the events' values for the keys is priced on its own within each filter
// bucket, an event lacking a key falls in the null group; current usage's grouped_usage, wallet
// debits and a hard limit, holds, estimate_fees, the group limit, recurring groups carried into
// the next period, and restarts (clean and SIGKILL) giving the same usage.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
const post = async (path, body) => t.api(path, { method: 'POST', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const usage = async (sub, cust) => (await ok(await t.api(`/api/v1/customers/${cust}/current_usage?external_subscription_id=${sub}`))).customer_usage;
let n = 0;
const ev = (sub, code, properties) => ({ transaction_id: `g${n++}`, external_subscription_id: sub, code, properties });
const send = async (...events) => post('/api/v1/events/batch', { events });
const metric = {};
const byCode = (u, code) => u.charges_usage.find((c) => c.billable_metric.code === code);

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-05-01T00:00:00Z']);
  for (const bm of [
    { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' },
    { code: 'tokens', name: 'Tokens', aggregation_type: 'sum_agg', field_name: 'tokens', filters: [{ key: 'model', values: ['small', 'large'] }] },
    { code: 'jobs', name: 'Jobs', aggregation_type: 'count_agg' },
    { code: 'seats', name: 'Seats', aggregation_type: 'unique_count_agg', field_name: 'user', recurring: true },
    { code: 'users', name: 'Users', aggregation_type: 'count_agg' },
  ]) metric[bm.code] = (await ok(await post('/api/v1/billable_metrics', { billable_metric: bm }))).billable_metric.lago_id;
  const plan = async (code, charges) => ok(await post('/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges } }));
  const tiers = (first, second, flat) => ({ graduated_ranges: [{ from_value: 0, to_value: 100, per_unit_amount: first, flat_amount: flat }, { from_value: 101, to_value: null, per_unit_amount: second, flat_amount: '0' }] });
  await plan('grouped', [
    // 0.4 cents a call, rounded a group at a time
    { billable_metric_id: metric.calls, charge_model: 'standard', pay_in_advance: true, properties: { amount: '0.004', pricing_group_keys: ['region'] } },
    // tiers counted per team, in the small model's filter and in the default bucket
    { billable_metric_id: metric.tokens, charge_model: 'graduated', properties: { ...tiers('1', '0.5', '10'), grouped_by: ['team'] },
      filters: [{ invoice_display_name: 'Small', values: { model: ['small'] }, properties: { graduated_ranges: [{ from_value: 0, to_value: 10, per_unit_amount: '2', flat_amount: '0' }, { from_value: 11, to_value: null, per_unit_amount: '1', flat_amount: '0' }], pricing_group_keys: ['team'] } }] },
    { billable_metric_id: metric.seats, charge_model: 'standard', properties: { amount: '10', pricing_group_keys: ['team'] } },
  ]);
  // a package of 2 jobs for 10 USD, per region
  await plan('jobs', [{ billable_metric_id: metric.jobs, charge_model: 'package', properties: { amount: '10', package_size: 2, free_units: 0, pricing_group_keys: ['region'] } }]);
  await plan('users', [{ billable_metric_id: metric.users, charge_model: 'standard', properties: { amount: '1', pricing_group_keys: ['user'] } }]);
  for (const [c, p] of [['acme', 'grouped'], ['jobber', 'jobs'], ['many', 'users']])
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: p, external_id: `${c}_sub`, subscription_at: '2026-05-01T00:00:00Z' } }));
});
after(async () => { await t.cleanup(); });

test('each group is priced on its own, within each filter; a missing key is the null group', async () => {
  await ok(await send(
    ev('acme_sub', 'calls', { region: 'eu' }), ev('acme_sub', 'calls', { region: 'eu' }), ev('acme_sub', 'calls', { region: 'eu' }),
    ev('acme_sub', 'calls', { region: 'us' }), ev('acme_sub', 'calls', {}),
    ev('acme_sub', 'tokens', { team: 'a', tokens: 150 }), ev('acme_sub', 'tokens', { team: 'b', tokens: 50 }),
    ev('acme_sub', 'tokens', { team: 'a', model: 'small', tokens: 20 }), ev('acme_sub', 'tokens', { team: 'c', model: 'small', tokens: 5 }),
  ));
  const u = await usage('acme_sub', 'acme');
  const calls = byCode(u, 'calls');
  // eu 1.2 -> 1 cent, us 0.4 -> 0, null 0.4 -> 0: 1 cent (ungrouped, 5 calls would be 2)
  assert.equal(calls.amount_cents, 1);
  assert.equal(calls.units, '5.0');
  assert.equal(calls.events_count, 5);
  assert.deepEqual(calls.filters, []);
  assert.deepEqual(calls.grouped_usage, [
    { units: '3.0', total_aggregated_units: '3.0', amount_cents: 1, events_count: 3, grouped_by: { region: 'eu' }, filters: [] },
    { units: '1.0', total_aggregated_units: '1.0', amount_cents: 0, events_count: 1, grouped_by: { region: 'us' }, filters: [] },
    { units: '1.0', total_aggregated_units: '1.0', amount_cents: 0, events_count: 1, grouped_by: { region: null }, filters: [] },
  ]);
  const tokens = byCode(u, 'tokens');
  // default bucket: a 150 -> 100 + 10 + 25 = 135 USD, b 50 -> 60 USD; small: a 20 -> 30, c 5 -> 10
  assert.equal(tokens.amount_cents, 13500 + 6000 + 3000 + 1000);
  assert.equal(tokens.units, '225.0');
  assert.equal(tokens.events_count, 4);
  assert.deepEqual(tokens.filters.map((f) => [f.invoice_display_name, f.amount_cents, f.units]), [['Small', 4000, '25.0'], [null, 19500, '200.0']]);
  const small = tokens.filters[0], other = tokens.filters[1];
  const part = (f, units, amount_cents, events_count) => ({ units, total_aggregated_units: units, amount_cents, events_count, invoice_display_name: f.invoice_display_name, values: f.values });
  assert.deepEqual(tokens.grouped_usage, [
    { units: '170.0', total_aggregated_units: '170.0', amount_cents: 16500, events_count: 2, grouped_by: { team: 'a' }, filters: [part(small, '20.0', 3000, 1), part(other, '150.0', 13500, 1)] },
    { units: '5.0', total_aggregated_units: '5.0', amount_cents: 1000, events_count: 1, grouped_by: { team: 'c' }, filters: [part(small, '5.0', 1000, 1)] },
    { units: '50.0', total_aggregated_units: '50.0', amount_cents: 6000, events_count: 1, grouped_by: { team: 'b' }, filters: [part(other, '50.0', 6000, 1)] },
  ]);
  assert.equal(u.amount_cents, 1 + 23500);
});

test('estimate_fees prices the event in its group', async () => {
  const estimate = async (properties) => (await ok(await post('/api/v1/events/estimate_fees', { event: { external_subscription_id: 'acme_sub', code: 'calls', properties } }))).fees[0];
  assert.equal((await estimate({ region: 'eu' })).amount_cents, 1); // 1.2 -> 1.6: 1 -> 2
  assert.equal((await estimate({ region: 'us' })).amount_cents, 1); // 0.4 -> 0.8: 0 -> 1
  assert.equal((await estimate({ region: 'apac' })).amount_cents, 0); // a new group: 0.4 -> 0
  const none = await estimate({});
  assert.equal(none.amount_cents, 1); // the null group: 0.4 -> 0.8
  assert.deepEqual(none.item.grouped_by, { region: null });
  assert.deepEqual((await estimate({ region: 'eu' })).item.grouped_by, { region: 'eu' });
  assert.equal(byCode(await usage('acme_sub', 'acme'), 'calls').events_count, 5); // nothing taken
});

test('a wallet pays each group its fee; a hard wallet refuses what a group would exceed; holds price the group', async () => {
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'jobber', currency: 'USD', rate_amount: '1', name: 'W', granted_credits: '25', limit: 'hard' } }))).wallet;
  const balance = async () => (await ok(await t.api(`/api/v1/wallets/${w.lago_id}`))).wallet;
  await ok(await send(ev('jobber_sub', 'jobs', { region: 'eu' })));
  assert.equal((await balance()).balance_cents, 1500);
  await ok(await send(ev('jobber_sub', 'jobs', { region: 'us' }))); // another group: a package of its own
  assert.equal((await balance()).balance_cents, 500);
  await ok(await send(ev('jobber_sub', 'jobs', { region: 'eu' }))); // eu's package has room
  assert.equal((await balance()).balance_cents, 500);
  // a third eu job opens a second package, a new region a first: 10 USD each, 5 left
  assert.equal((await send(ev('jobber_sub', 'jobs', { region: 'eu' }))).status, 402);
  assert.equal((await send(ev('jobber_sub', 'jobs', { region: 'apac' }))).status, 402);
  const authorize = async (properties) => (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'jobber_sub', code: 'jobs', properties } }))).authorization;
  const us = await authorize({ region: 'us' });
  assert.equal(us.status, 'authorized');
  assert.equal(us.amount_cents, 0); // us has one job in a package of two
  const eu = await authorize({ region: 'eu' });
  assert.equal(eu.status, 'declined');
  assert.equal(eu.amount_cents, 1000);
  const u = await usage('jobber_sub', 'jobber');
  assert.equal(u.amount_cents, 2000);
  assert.deepEqual(byCode(u, 'jobs').grouped_usage.map((g) => [g.grouped_by.region, g.amount_cents, g.units]), [['eu', 1000, '2.0'], ['us', 1000, '1.0']]);
  const after = await balance();
  assert.equal(after.balance_cents, 500);
  assert.equal(after.consumed_credits, '20.0');
  await ok(await post(`/api/v1/authorizations/${us.lago_id}/void`, {}));
});

test('a plan edit that adds group keys regroups the events already taken', async () => {
  const plan = (await ok(await t.api('/api/v1/plans/jobs'))).plan;
  const c = plan.charges[0];
  await ok(await t.api('/api/v1/plans/jobs', { method: 'PUT', body: { plan: { charges: [{ id: c.lago_id, billable_metric_id: metric.jobs, charge_model: 'package', properties: { amount: '10', package_size: 2, free_units: 0, pricing_group_keys: ['region', 'zone'] } }] } } }));
  // a group of its own opens a package the wallet cannot pay; us's null zone has room
  assert.equal((await send(ev('jobber_sub', 'jobs', { region: 'us', zone: 'z1' }))).status, 402);
  await ok(await send(ev('jobber_sub', 'jobs', { region: 'us' })));
  const g = byCode(await usage('jobber_sub', 'jobber'), 'jobs').grouped_usage;
  assert.deepEqual(g.map((x) => [x.grouped_by, x.units, x.amount_cents]), [[{ region: 'eu', zone: null }, '2.0', 1000], [{ region: 'us', zone: null }, '2.0', 1000]]);
});

test('at most 1,000 groups a charge a period: the event that would open one more is refused and changes nothing', async () => {
  for (let b = 0; b < 10; b++)
    await ok(await send(...Array.from({ length: 100 }, (_, i) => ev('many_sub', 'users', { user: `u${b * 100 + i}` }))));
  const before = await usage('many_sub', 'many');
  assert.equal(byCode(before, 'users').grouped_usage.length, 1000);
  assert.equal(before.amount_cents, 100000);
  const kept = ev('many_sub', 'users', { user: 'u7' }), over = ev('many_sub', 'users', { user: 'u1000' });
  const r = await send(kept, over);
  assert.equal(r.status, 422);
  assert.deepEqual((await r.json()).error_details, { 1: { properties: ['too_many_pricing_groups'] } });
  assert.equal((await t.api(`/api/v1/events/${kept.transaction_id}`)).status, 404); // all or nothing
  assert.deepEqual(await usage('many_sub', 'many'), before);
  await ok(await send(ev('many_sub', 'users', { user: 'u7' }))); // an existing group still takes events
  assert.equal((await usage('many_sub', 'many')).amount_cents, 100100);
});

test('a filter without group keys in a grouped charge is grouped_usage\'s entry with an empty grouped_by', async () => {
  // Lago gathers a charge's fees by grouped_by once any is grouped: the ungrouped filter's fee
  // has grouped_by {}, so the entries add up to the charge
  await ok(await post('/api/v1/plans', { plan: { code: 'mixed', name: 'mixed', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: metric.tokens, charge_model: 'standard', properties: { amount: '1', pricing_group_keys: ['team'] },
      filters: [{ invoice_display_name: 'Large', values: { model: ['large'] }, properties: { amount: '2' } }] }] } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'mixer', plan_code: 'mixed', external_id: 'mixer_sub', subscription_at: '2026-05-01T00:00:00Z' } }));
  await ok(await send(ev('mixer_sub', 'tokens', { team: 'a', tokens: 1 }), ev('mixer_sub', 'tokens', { team: 'a', model: 'large', tokens: 5 }),
    ev('mixer_sub', 'tokens', { team: 'b', model: 'large', tokens: 2 })));
  const tokens = byCode(await usage('mixer_sub', 'mixer'), 'tokens');
  assert.equal(tokens.amount_cents, 1500); // 1 x 1 USD + 7 x 2 USD
  assert.deepEqual(tokens.grouped_usage.map((g) => [g.grouped_by, g.units, g.amount_cents, g.events_count, g.filters.map((f) => [f.invoice_display_name, f.amount_cents])]),
    [[{}, '7.0', 1400, 2, [['Large', 1400]]], [{ team: 'a' }, '1.0', 100, 1, [[null, 100]]]]);
});

// An audit found pricing_group_keys: [] sent with grouped_by: [...] priced ungrouped (2000
// cents here, where Lago bills 3000): Lago's ChargeModels::FilterProperties::BaseService takes
// grouped_by when pricing_group_keys is blank (an empty list is), for a filter's properties too.
test('pricing_group_keys [] with grouped_by groups by grouped_by, in the charge and in its filters', async () => {
  const tiers = { graduated_ranges: [{ from_value: 0, to_value: 10, per_unit_amount: '1', flat_amount: '5' }, { from_value: 11, to_value: null, per_unit_amount: '0.5', flat_amount: '0' }] };
  const p = await ok(await post('/api/v1/plans', { plan: { code: 'blank_keys', name: 'blank_keys', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: metric.tokens, charge_model: 'graduated', properties: { ...tiers, pricing_group_keys: [], grouped_by: ['region'] },
      filters: [{ invoice_display_name: 'Large', values: { model: ['large'] }, properties: { ...tiers, pricing_group_keys: [], grouped_by: ['region'] } }] }] } }));
  // Lago stores the keys as pricing_group_keys and answers both names
  const c = p.plan.charges[0];
  assert.deepEqual([c.properties.pricing_group_keys, c.properties.grouped_by], [['region'], ['region']]);
  assert.deepEqual([c.filters[0].properties.pricing_group_keys, c.filters[0].properties.grouped_by], [['region'], ['region']]);
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'blanker', plan_code: 'blank_keys', external_id: 'blanker_sub', subscription_at: '2026-05-01T00:00:00Z' } }));
  await ok(await send(ev('blanker_sub', 'tokens', { region: 'a', tokens: 10 }), ev('blanker_sub', 'tokens', { region: 'b', tokens: 10 }),
    ev('blanker_sub', 'tokens', { region: 'a', model: 'large', tokens: 10 }), ev('blanker_sub', 'tokens', { region: 'b', model: 'large', tokens: 10 })));
  // each region's 10 units: 10 + 5 flat, in the default bucket and in the filter's
  const tokens = byCode(await usage('blanker_sub', 'blanker'), 'tokens');
  assert.equal(tokens.amount_cents, 6000);
  assert.deepEqual(tokens.grouped_usage.map((g) => [g.grouped_by, g.amount_cents]), [[{ region: 'a' }, 3000], [{ region: 'b' }, 3000]]);
});

test('restarts (clean, SIGKILL) give the same usage', async () => {
  const subs = [['acme_sub', 'acme'], ['jobber_sub', 'jobber'], ['many_sub', 'many']];
  const all = async () => Promise.all(subs.map(([s, c]) => usage(s, c)));
  const before = await all();
  await t.restart();
  assert.deepEqual(await all(), before);
  await t.restart({ kill: true });
  assert.deepEqual(await all(), before);
});

test('recurring groups carry into the next period, live and after a restart', async () => {
  await ok(await send(ev('acme_sub', 'seats', { team: 'a', user: 'u1' }), ev('acme_sub', 'seats', { team: 'a', user: 'u2' }), ev('acme_sub', 'seats', { team: 'b', user: 'u3' })));
  await ok(await post('/api/v1/test_clock/advance', { test_clock: { to: '2026-06-02T00:00:00Z' } }));
  await ok(await send(ev('acme_sub', 'seats', { team: 'c', user: 'u4' })));
  const june = await usage('acme_sub', 'acme');
  assert.equal(june.from_datetime, '2026-06-01T00:00:00Z');
  const seats = byCode(june, 'seats');
  assert.deepEqual(seats.grouped_usage.map((g) => [g.grouped_by.team, g.units, g.amount_cents]), [['a', '2.0', 2000], ['b', '1.0', 1000], ['c', '1.0', 1000]]);
  assert.equal(byCode(june, 'calls').amount_cents, 0);
  assert.deepEqual(byCode(june, 'calls').grouped_usage, []);
  await t.restart({ kill: true });
  assert.deepEqual(await usage('acme_sub', 'acme'), june);
});

// Found by an audit: presentation_group_keys (how an invoice presents a charge's fees) was
// dropped in silence; Lago's FilterProperties::BaseService keeps it, for any model. Kept and
// answered as sent, on a charge and a filter; it prices nothing (Tally issues no usage invoice).
test('presentation_group_keys is kept and answered, and groups no price', async () => {
  const made = (await ok(await post('/api/v1/plans', { plan: { code: 'presented', name: 'presented', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: metric.tokens, charge_model: 'standard', properties: { amount: '1', presentation_group_keys: ['team'] },
      filters: [{ values: { model: ['small'] }, properties: { amount: '2', presentation_group_keys: ['region', 'team'] } }] }] } }))).plan;
  const read = (await ok(await t.api('/api/v1/plans/presented'))).plan;
  for (const p of [made, read]) {
    assert.deepEqual(p.charges[0].properties.presentation_group_keys, ['team']);
    assert.deepEqual(p.charges[0].filters[0].properties.presentation_group_keys, ['region', 'team']);
  }
  const bad = await post('/api/v1/plans', { plan: { code: 'presented_bad', name: 'p', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: metric.calls, charge_model: 'standard', properties: { amount: '1', presentation_group_keys: [1] } }] } });
  assert.deepEqual([bad.status, (await bad.json()).error_details], [422, { presentation_group_keys: ['invalid_type'] }]);
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'presented_c', plan_code: 'presented', external_id: 'presented_s' } }));
  await ok(await send(ev('presented_s', 'tokens', { tokens: 3, team: 'a', model: 'large' }), ev('presented_s', 'tokens', { tokens: 4, team: 'b', model: 'large' })));
  const u = byCode(await usage('presented_s', 'presented_c'), 'tokens');
  assert.deepEqual([u.units, u.amount_cents, u.grouped_usage.length], ['7.0', 700, 0]);
});
