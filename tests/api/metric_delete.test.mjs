// Deleting a billable metric that a plan's charge uses takes the charge with it, as Lago does:
// the plan no longer shows it, current usage no longer prices it, the credits it took this
// period come back with the deletion, and tallyd starts again. Before this (a
// black-box audit found it), the subscription's usage could not be built: its current usage
// and every event answered 500, and tallyd refused to start on the data directory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

let t;
const metric = {};
const post = async (path, body) => t.api(path, { method: 'POST', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-03-10T12:00:00Z']);
  for (const bm of [
    { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' },
    { code: 'tokens', name: 'Tokens', aggregation_type: 'sum_agg', field_name: 'n' },
  ]) metric[bm.code] = (await ok(await post('/api/v1/billable_metrics', { billable_metric: bm }))).billable_metric.lago_id;
  const charges = [
    { billable_metric_id: metric.calls, charge_model: 'standard', properties: { amount: '2' } },
    { billable_metric_id: metric.tokens, charge_model: 'standard', properties: { amount: '1' } },
  ];
  await ok(await post('/api/v1/plans', { plan: { code: 'p', name: 'p', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges } }));
  await ok(await post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD' } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'c', plan_code: 'p', external_id: 's', subscription_at: '2026-03-01T00:00:00Z' } }));
});
after(async () => { await t.cleanup(); });

let n = 0;
const ev = (code, properties = {}) => ({ transaction_id: `m${n++}`, external_subscription_id: 's', code, properties });
const usage = async () => (await ok(await t.api('/api/v1/customers/c/current_usage?external_subscription_id=s'))).customer_usage;

// Lago keeps a metric's aggregation while a plan uses it (silently); Tally refused nothing, so
// a sum could become a max under its charges' prices, and a plan with a pay-in-advance charge on
// it became invalid: no later edit of it passed.
test('a metric\'s aggregation cannot change while a plan charges for it; its name and filters can', async () => {
  const put = async (code, billable_metric) => {
    const r = await t.api(`/api/v1/billable_metrics/${code}`, { method: 'PUT', body: { billable_metric } });
    return { status: r.status, body: await r.json() };
  };
  for (const aggregation_type of ['max_agg', 'latest_agg']) {
    const r = await put('tokens', { aggregation_type });
    assert.equal(r.status, 422, aggregation_type);
    assert.deepEqual(r.body.error_details, { aggregation_type: ['metric_used_by_plans'] });
    assert.match(r.body.message, /plan p charges for this metric/);
  }
  const same = await put('tokens', { name: 'Tokens (all models)', description: 'LLM tokens', aggregation_type: 'sum_agg', field_name: 'n',
    filters: [{ key: 'model', values: ['small', 'large'] }] });
  assert.equal(same.status, 200, JSON.stringify(same.body));
  assert.equal(same.body.billable_metric.name, 'Tokens (all models)');
  // nor its code: events name it by code, so the period's usage would leave its charges (an
  // audit: renamed, the usage read 0 and the wallet had its debits back)
  await ok(await post('/api/v1/events', { event: ev('tokens', { n: 2 }) }));
  const renamed = await put('tokens', { code: 'tokens2' });
  assert.equal(renamed.status, 422);
  assert.deepEqual(renamed.body.error_details, { code: ['metric_used_by_plans'] });
  assert.match(renamed.body.message, /plan p charges for this metric: its code cannot change/);
  assert.equal((await t.api('/api/v1/billable_metrics/tokens')).status, 200);
  assert.equal((await usage()).charges_usage.find((c) => c.billable_metric.code === 'tokens').units, '2.0');
  await ok(await post('/api/v1/events', { event: ev('tokens', { n: -2 }) })); // as the next test expects
  // a metric no plan uses changes freely
  await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'spare', name: 'Spare', aggregation_type: 'sum_agg', field_name: 'n' } }));
  const free = await put('spare', { aggregation_type: 'max_agg', field_name: 'peak', code: 'spare2' });
  assert.equal(free.status, 200, JSON.stringify(free.body));
  assert.deepEqual([free.body.billable_metric.aggregation_type, free.body.billable_metric.code], ['max_agg', 'spare2']);
});

// A subscription's own plan (plan_overrides) charges for a metric as much as a catalog plan:
// the metric keeps its code and aggregation while one does. Found by an audit: the plan took
// its charges out, its overridden subscription kept one, and the rename took its usage away.
test('a metric only a subscription\'s own plan charges keeps its code and aggregation', async () => {
  const bm = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'own', name: 'Own', aggregation_type: 'sum_agg', field_name: 'v' } }))).billable_metric;
  const plan = (await ok(await post('/api/v1/plans', { plan: { code: 'own_p', name: 'own', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } }))).plan;
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'own_c', plan_code: 'own_p', external_id: 'own_s', subscription_at: '2026-03-01T00:00:00Z',
    plan_overrides: { charges: [{ id: plan.charges[0].lago_id, properties: { amount: '2' } }] } } }));
  await ok(await post('/api/v1/events', { event: { transaction_id: 'own1', external_subscription_id: 'own_s', code: 'own', properties: { v: 3 } } }));
  await ok(await t.api('/api/v1/plans/own_p', { method: 'PUT', body: { plan: { charges: [] } } }));
  for (const [change, field] of [[{ code: 'own2' }, 'code'], [{ aggregation_type: 'max_agg' }, 'aggregation_type']]) {
    const r = await t.api('/api/v1/billable_metrics/own', { method: 'PUT', body: { billable_metric: change } });
    const body = await r.json();
    assert.equal(r.status, 422, JSON.stringify(body));
    assert.deepEqual(body.error_details, { [field]: ['metric_used_by_plans'] });
    assert.match(body.message, /subscription own_s's own plan charges for this metric/);
  }
  const u = (await ok(await t.api('/api/v1/customers/own_c/current_usage?external_subscription_id=own_s'))).customer_usage;
  assert.equal(u.amount_cents, 600);
});

test('a deleted metric takes its charges; usage, debits and restarts go on without them', async () => {
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'c', currency: 'USD', rate_amount: '1', name: 'W', granted_credits: '100' } }))).wallet;
  await ok(await post('/api/v1/events/batch', { events: [ev('calls'), ev('calls'), ev('tokens', { n: 3 })] }));
  assert.equal((await usage()).amount_cents, 700);
  const balance = async () => (await ok(await t.api(`/api/v1/wallets/${w.lago_id}`))).wallet.balance_cents;
  assert.equal(await balance(), 10000 - 700);

  assert.equal((await t.api('/api/v1/billable_metrics/calls', { method: 'DELETE' })).status, 200);
  const plan = (await ok(await t.api('/api/v1/plans/p'))).plan;
  assert.deepEqual(plan.charges.map((c) => c.billable_metric_code), ['tokens']);
  const u = await usage();
  assert.deepEqual(u.charges_usage.map((c) => c.billable_metric.code), ['tokens']);
  assert.equal(u.amount_cents, 300);
  // an event of the deleted metric's code names no metric now
  const gone = await post('/api/v1/events', { event: ev('calls') });
  assert.equal(gone.status, 422);
  assert.deepEqual((await gone.json()).error_details, { code: ['billable_metric_not_found'] });
  // the deletion gave back what the deleted charge took this period, at once
  assert.equal(await balance(), 10000 - 300);
  await ok(await post('/api/v1/events', { event: ev('tokens', { n: 1 }) }));
  assert.equal(await balance(), 10000 - 400);
  await checkWalletLedger(t, w.lago_id);

  // a metric made again under the code is another metric: the plan's old charge stays gone
  await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'Calls again', aggregation_type: 'count_agg' } }));
  await ok(await post('/api/v1/events', { event: ev('calls') }));
  assert.equal((await usage()).amount_cents, 400);

  const before = await usage();
  await t.restart();
  assert.deepEqual(await usage(), before);
  await t.restart({ kill: true });
  assert.deepEqual(await usage(), before);
});

// An audit (restart-twin fuzz): once a metric was deleted, every update of a plan that charged
// it and did not send its charges (a name, an amount, tax codes) was 404
// billable_metric_not_found, naming the charge the deletion took, and so was a subscription
// with plan_overrides on it. Lago's BillableMetrics::DestroyService discards the charges.
test('a plan whose metric was deleted is updated and overridden without naming it', async () => {
  for (const code of ['gone', 'kept']) metric[code] = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code, name: code, aggregation_type: 'count_agg' } }))).billable_metric.lago_id;
  await ok(await post('/api/v1/taxes', { tax: { code: 'vat', name: 'VAT', rate: '10' } }));
  await ok(await post('/api/v1/plans', { plan: { code: 'q', name: 'q', interval: 'monthly', amount_cents: 100, amount_currency: 'USD', charges: [
    { billable_metric_id: metric.gone, charge_model: 'standard', properties: { amount: '1' } },
    { billable_metric_id: metric.kept, charge_model: 'standard', properties: { amount: '3' } }] } }));
  assert.equal((await t.api('/api/v1/billable_metrics/gone', { method: 'DELETE' })).status, 200);
  const put = async (plan) => ok(await t.api('/api/v1/plans/q', { method: 'PUT', body: { plan } }));
  const codes = (p) => p.charges.map((c) => c.billable_metric_code);
  assert.deepEqual(codes((await put({ tax_codes: ['vat'] })).plan), ['kept']);
  assert.deepEqual((await put({ name: 'renamed', amount_cents: 200, charges: null })).plan.taxes.map((x) => x.code), ['vat']);
  const plan = (await ok(await t.api('/api/v1/plans/q'))).plan;
  assert.deepEqual([plan.name, plan.amount_cents, codes(plan)], ['renamed', 200, ['kept']]);
  await ok(await post('/api/v1/customers', { customer: { external_id: 'd', currency: 'USD' } }));
  const sub = await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'd', plan_code: 'q', external_id: 'sq', plan_overrides: { amount_cents: 50 } } }));
  assert.deepEqual([sub.subscription.plan.amount_cents, codes(sub.subscription.plan)], [50, ['kept']]);
  // naming the deleted metric's charge is still refused: it is gone
  const again = await t.api('/api/v1/plans/q', { method: 'PUT', body: { plan: { charges: [{ billable_metric_id: metric.gone, charge_model: 'standard', properties: { amount: '1' } }] } } });
  assert.equal(again.status, 404);
  await t.restart();
  assert.deepEqual(codes((await put({ description: 'after a restart' })).plan), ['kept']);
});

// A round-2 audit: a plan update naming a taken charge by its id, first thing after the
// deletion, was 200 and dropped it silently when it sent the deleted metric (Lago: 404), and
// brought the charge back, with its lago_id and taxes, when it sent another metric (Lago: the
// id names no charge; a new one is made from what is sent).
test('a charge taken by its metric\'s deletion is named by nothing, its id included', async () => {
  for (const code of ['gone2', 'kept2']) metric[code] = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code, name: code, aggregation_type: 'count_agg' } }))).billable_metric.lago_id;
  const made = (await ok(await post('/api/v1/plans', { plan: { code: 'r', name: 'r', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: metric.gone2, charge_model: 'standard', properties: { amount: '1' }, tax_codes: ['vat'] },
    { billable_metric_id: metric.kept2, charge_model: 'standard', properties: { amount: '3' } }] } }))).plan;
  const [goneId, keptId] = made.charges.map((c) => c.lago_id);
  const vatCharges = async () => (await ok(await t.api('/api/v1/taxes/vat'))).tax.charges_count;
  assert.equal(await vatCharges(), 1);
  assert.equal((await t.api('/api/v1/billable_metrics/gone2', { method: 'DELETE' })).status, 200);
  assert.equal(await vatCharges(), 0); // the audit: counted until the plan's next update
  const put = (charges) => t.api('/api/v1/plans/r', { method: 'PUT', body: { plan: { charges } } });
  let r = await put([{ id: goneId, billable_metric_id: metric.gone2, charge_model: 'standard', properties: { amount: '1' } }, { id: keptId }]);
  assert.equal(r.status, 404);
  assert.equal((await r.json()).code, 'billable_metrics_not_found'); // Lago's, plural
  r = await put([{ id: goneId, billable_metric_id: metric.kept2, charge_model: 'standard', properties: { amount: '5' } }, { id: keptId }]);
  const plan = (await ok(r)).plan;
  assert.equal(plan.charges.length, 2);
  const fresh = plan.charges.find((c) => c.properties.amount === '5');
  assert.notEqual(fresh.lago_id, goneId);
  assert.deepEqual(fresh.taxes, []);
  assert.equal(plan.charges.find((c) => c.lago_id === keptId).properties.amount, '3');
});
