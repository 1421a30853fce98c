// Lago's dynamic charge model over real HTTP: the events carry their price
// (precise_total_amount_cents) and a sum_agg charge bills Σ of it, rounded half up once to
// the cent; refused on other aggregations; filters; taxes; a prepaid wallet debited exactly;
// a hold without a precise amount prices nothing; a SIGKILL and restart rebuild the same.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
const metric = {};
const post = async (path, body) => t.api(path, { method: 'POST', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const dynamic = (extra = {}) => ({ billable_metric_id: metric.spend, charge_model: 'dynamic', ...extra });

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-03-10T12:00:00Z']);
  for (const bm of [
    { code: 'spend', name: 'Spend', aggregation_type: 'sum_agg', field_name: 'tokens', filters: [{ key: 'model', values: ['small', 'large'] }] },
    { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' },
    { code: 'peak', name: 'Peak', aggregation_type: 'max_agg', field_name: 'gpus' },
  ]) metric[bm.code] = (await ok(await post('/api/v1/billable_metrics', { billable_metric: bm }))).billable_metric.lago_id;
  await ok(await post('/api/v1/taxes', { tax: { code: 'vat', name: 'VAT', rate: '20' } }));
});
after(async () => { await t.cleanup(); });

const usage = async (customer, sub) => (await ok(await t.api(`/api/v1/customers/${customer}/current_usage?external_subscription_id=${sub}`))).customer_usage;
const spendOf = (u) => u.charges_usage.find((c) => c.billable_metric.code === 'spend');
let n = 0;
const ev = (sub, properties, precise) => ({ transaction_id: `d${n++}`, external_subscription_id: sub, code: 'spend', properties,
  ...(precise === undefined ? {} : { precise_total_amount_cents: precise }) });
const send = async (...events) => ok(await post('/api/v1/events/batch', { events }));
const subscribe = async (customer, plan) => ok(await post('/api/v1/subscriptions', { subscription: {
  external_customer_id: customer, plan_code: plan, external_id: `${customer}_sub`, subscription_at: '2026-03-01T00:00:00Z' } }));

test('a plan takes a dynamic charge on a sum_agg metric, properties {} or none, filters too', async () => {
  const plan = (await ok(await post('/api/v1/plans', { plan: { code: 'dyn', name: 'Dynamic', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', tax_codes: ['vat'], charges: [
    dynamic({ properties: {}, filters: [{ invoice_display_name: 'Large', properties: {}, values: { model: ['large'] } }] })] } }))).plan;
  assert.equal(plan.charges.length, 1);
  assert.equal(plan.charges[0].charge_model, 'dynamic');
  assert.deepEqual(plan.charges[0].properties, {});
  assert.deepEqual(plan.charges[0].filters.map((f) => f.properties), [{}]);
  const free = (await ok(await post('/api/v1/plans', { plan: { code: 'dyn_free', name: 'Dynamic, no tax', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [dynamic()] } }))).plan;
  assert.equal(free.charges[0].charge_model, 'dynamic');
  assert.deepEqual(free.charges[0].properties, {});
  assert.deepEqual((await ok(await t.api('/api/v1/plans/dyn'))).plan.charges[0].properties, {});
});

test('dynamic is refused on any aggregation but sum_agg, as Lago', async () => {
  for (const code of ['calls', 'peak']) {
    const r = await post('/api/v1/plans', { plan: { code: `bad_${code}`, name: 'Bad', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [
      { billable_metric_id: metric[code], charge_model: 'dynamic', properties: {} }] } });
    assert.equal(r.status, 422);
    const b = await r.json();
    assert.equal(b.code, 'validation_errors');
    // Lago's Charge#validate_dynamic (an audit found billable_metric: invalid_billable_metric_value,
    // a code Lago's source does not have)
    assert.deepEqual(b.error_details, { charge_model: ['invalid_aggregation_type_or_charge_model'] });
  }
  assert.equal((await t.api('/api/v1/plans/bad_calls')).status, 404);
});

test('current usage: units are the sum, the amount the precise cents rounded half up, per filter', async () => {
  await subscribe('acme', 'dyn');
  await send(
    ev('acme_sub', { tokens: 10, model: 'small' }, '100.25'),
    ev('acme_sub', { tokens: 5 }), // no precise amount: units only
    ev('acme_sub', { tokens: 1, model: 'small' }, '0.25'), // 100.5 cents: rounds up to 101
    ev('acme_sub', { tokens: 2, model: 'large' }, '12.345'),
    ev('acme_sub', { tokens: 3, model: 'large' }, '0.155'), // 12.5 cents: 13
    ev('acme_sub', { model: 'small' }, '1000'), // no numeric field: the sum ignores it
  );
  const u = await usage('acme', 'acme_sub');
  const s = spendOf(u);
  assert.equal(s.charge.charge_model, 'dynamic');
  assert.equal(s.units, '21.0');
  assert.equal(s.events_count, 5);
  assert.equal(s.amount_cents, 114);
  assert.deepEqual(s.filters.map((f) => [f.invoice_display_name, f.units, f.events_count, f.amount_cents]),
    [['Large', '5.0', 2, 13], [null, '16.0', 3, 101]]);
  assert.equal(u.amount_cents, 114);
  assert.equal(u.taxes_amount_cents, 23); // 20% of 114 = 22.8
  assert.equal(u.total_amount_cents, 137);
});

test('no units, no amount: precise cents on a zero sum bill nothing', async () => {
  await subscribe('zero', 'dyn');
  await send(ev('zero_sub', { tokens: 0 }, '5000'));
  const s = spendOf(await usage('zero', 'zero_sub'));
  assert.equal(s.units, '0.0');
  assert.equal(s.amount_cents, 0);
});

test('a wallet is debited the change of the fee, to the cent; a hold holds the price it carries, none without', async () => {
  await subscribe('payer', 'dyn_free');
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'payer', currency: 'USD', rate_amount: '1', name: 'Prepaid', granted_credits: '10' } }))).wallet;
  const balance = async () => (await ok(await t.api(`/api/v1/wallets/${w.lago_id}`))).wallet;
  assert.equal((await balance()).balance_cents, 1000);
  await send(ev('payer_sub', { tokens: 1 }, '250.5')); // 251 cents
  assert.equal((await balance()).balance_cents, 749);
  await send(ev('payer_sub', { tokens: 1 }, '249.5')); // the fee is now 500: 249 more
  assert.equal((await balance()).balance_cents, 500);
  await send(ev('payer_sub', { tokens: 4 })); // units without an amount cost nothing
  assert.equal((await balance()).balance_cents, 500);
  const a = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'payer_sub', code: 'spend', properties: { tokens: 3 } } }))).authorization;
  assert.equal(a.status, 'authorized');
  assert.equal(a.amount_cents, 0);
  assert.equal(a.held_amount_cents, 0);
  assert.equal((await balance()).ongoing_balance_cents, 500);
  assert.equal(spendOf(await usage('payer', 'payer_sub')).amount_cents, 500);
  await ok(await post(`/api/v1/authorizations/${a.lago_id}/void`, {}));
  // a hold may carry the usage's price: it holds it, and its capture records it (a capture may
  // name another price, the actual one); the price was once dropped, and such usage was free
  const priced = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'payer_sub', code: 'spend', properties: { tokens: 3 }, precise_total_amount_cents: '300' } }))).authorization;
  assert.deepEqual([priced.amount_cents, priced.held_amount_cents, priced.precise_total_amount_cents], [300, 300, '300.0']); // as an event's
  assert.equal((await balance()).ongoing_balance_cents, 200);
  const taken = (await ok(await post(`/api/v1/authorizations/${priced.lago_id}/capture`, {}))).authorization;
  assert.deepEqual([taken.status, taken.captured_amount_cents], ['captured', 300]);
  assert.deepEqual([(await balance()).balance_cents, (await balance()).ongoing_balance_cents], [200, 200]);
  assert.equal(spendOf(await usage('payer', 'payer_sub')).amount_cents, 800);
  const b = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'payer_sub', code: 'spend', properties: { tokens: 1 }, precise_total_amount_cents: '100' } }))).authorization;
  assert.equal(b.held_amount_cents, 100);
  const actual = (await ok(await post(`/api/v1/authorizations/${b.lago_id}/capture`, { authorization: { precise_total_amount_cents: '50.4' } }))).authorization;
  assert.equal(actual.captured_amount_cents, 50); // 800 + 50.4: the fee is 850
  assert.deepEqual([(await balance()).balance_cents, (await balance()).ongoing_balance_cents], [150, 150]);
  const events = (await ok(await t.api('/api/v1/events?external_subscription_id=payer_sub&per_page=2'))).events;
  assert.deepEqual(events.map((x) => x.precise_total_amount_cents), ['50.4', '300.0']); // as Lago's serializer writes a BigDecimal
  // a price the hold cannot read is refused like an event's
  const bad = await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'payer_sub', code: 'spend', properties: { tokens: 1 }, precise_total_amount_cents: 'lots' } });
  assert.equal(bad.status, 422);
});

test('a SIGKILL and a restart rebuild the same usage and balances from the stored events', async () => {
  const before1 = await usage('acme', 'acme_sub');
  const before2 = await usage('payer', 'payer_sub');
  await t.restart({ kill: true });
  assert.deepEqual(await usage('acme', 'acme_sub'), before1);
  assert.deepEqual(await usage('payer', 'payer_sub'), before2);
  assert.equal(spendOf(before1).amount_cents, 114);
  // and events after the restart add to the rebuilt amounts exactly
  await send(ev('acme_sub', { tokens: 1, model: 'large' }, '0.5')); // Large: 13.0 cents
  const s = spendOf(await usage('acme', 'acme_sub'));
  assert.deepEqual(s.filters.map((f) => f.amount_cents), [13, 101]);
  await send(ev('acme_sub', { tokens: 1, model: 'large' }, '0.001')); // 13.001: still 13
  await send(ev('acme_sub', { tokens: 1, model: 'large' }, '-0.002')); // 12.999: 13
  assert.equal(spendOf(await usage('acme', 'acme_sub')).amount_cents, 114);
  await t.restart();
  assert.equal(spendOf(await usage('acme', 'acme_sub')).amount_cents, 114);
});

// A recurring metric carries its events' precise amounts into later periods with their units;
// a start rebuilds that carry from the recurring index, which once kept no precise amount: the
// units came back, the amount as 0, and the next debit gave the carried amount back.
test('a recurring dynamic charge carries its amounts across a period and a restart', async () => {
  const rec = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'rspend', name: 'Recurring spend', aggregation_type: 'sum_agg', field_name: 'tokens', recurring: true } }))).billable_metric.lago_id;
  await ok(await post('/api/v1/plans', { plan: { code: 'rdyn', name: 'Recurring dynamic', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: rec, charge_model: 'dynamic' }] } }));
  await subscribe('rc', 'rdyn');
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'rc', currency: 'USD', rate_amount: '0.01', granted_credits: '10000' } }))).wallet.lago_id;
  const send1 = async (tokens, precise) => ok(await post('/api/v1/events', { event: { transaction_id: `r${n++}`, external_subscription_id: 'rc_sub', code: 'rspend', properties: { tokens }, precise_total_amount_cents: precise } }));
  const amount = async () => { const c = (await usage('rc', 'rc_sub')).charges_usage[0]; return [c.units, c.amount_cents]; };
  const consumed = async () => (await ok(await t.api(`/api/v1/wallets/${w}`))).wallet.consumed_amount_cents;
  await send1(2, '100.5');
  assert.deepEqual(await amount(), ['2.0', 101]);
  await ok(await post('/api/v1/test_clock/advance', { test_clock: { to: '2026-04-05T00:00:00Z' } }));
  assert.deepEqual(await amount(), ['2.0', 101]);
  await send1(1, '1'); // April's first debit takes the carried amount and this event's
  assert.deepEqual(await amount(), ['3.0', 102]);
  assert.equal(await consumed(), 101 + 102);
  await t.restart({ kill: true });
  assert.deepEqual(await amount(), ['3.0', 102]);
  await send1(1, '1');
  assert.deepEqual(await amount(), ['4.0', 103]);
  assert.equal(await consumed(), 101 + 103);
});

// Lago keeps precise_total_amount_cents as decimal(40, 15): more decimals are rounded (half away
// from zero). Kept unrounded, one amount with 30 decimals beside one of 10^8 made the running
// sum leave the 38 digits it holds, and the second event was refused (value_is_out_of_range).
test('precise amounts keep 15 decimals, so any mix of them sums', async () => {
  await subscribe('fine', 'dyn');
  const tiny = await send(ev('fine_sub', { tokens: 1, model: 'small' }, '0.000000000000000000000000000001'));
  assert.equal(tiny.events[0].precise_total_amount_cents, '0.0');
  const big = await send(ev('fine_sub', { tokens: 1, model: 'small' }, '100000000'));
  assert.equal(big.events[0].precise_total_amount_cents, '100000000.0');
  const odd = await send(ev('fine_sub', { tokens: 1, model: 'small' }, '0.1234567890123456789'));
  assert.equal(odd.events[0].precise_total_amount_cents, '0.123456789012346');
  const rounded = await send(ev('fine_sub', { tokens: 1, model: 'small' }, '-0.0000000000000005'));
  assert.equal(rounded.events[0].precise_total_amount_cents, '-0.000000000000001');
  assert.equal(spendOf(await usage('fine', 'fine_sub')).amount_cents, 100000000);
});
