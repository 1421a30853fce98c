// A subscription's plan_overrides over real HTTP on a test clock: what an override charge may
// change (Lago's Charges::OverrideService), the commitment's id, errors inside the overrides.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
const metric = {};
before(async () => {
  t = await startWithOrg(['--test-clock', '2026-01-01T00:00:00Z']);
  for (const code of ['gb', 'other']) {
    const bm = await t.call('POST', '/api/v1/billable_metrics', { billable_metric: { code, name: code, aggregation_type: 'sum_agg', field_name: 'n' } });
    metric[code] = bm.billable_metric.lago_id;
  }
  await t.call('POST', '/api/v1/taxes', { tax: { code: 'vat', name: 'VAT', rate: 20 } });
});
after(async () => { await t.cleanup(); });

const call = async (method, path, body) => {
  const r = await t.api(path, { method, body });
  return { status: r.status, body: await r.json() };
};
const subscribe = (external_customer_id, plan_code, external_id, plan_overrides) =>
  call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id, plan_code, external_id, plan_overrides } });
const makePlan = async (code, charge = {}, extra = {}) => (await t.call('POST', '/api/v1/plans', { plan: {
  code, name: code, interval: 'monthly', amount_cents: 0, amount_currency: 'USD', ...extra,
  charges: [{ billable_metric_id: metric.gb, charge_model: 'standard', properties: { amount: '1' }, ...charge }] } })).plan;
const refused = (r, key) => {
  assert.equal(r.status, 422, JSON.stringify(r.body));
  assert.deepEqual(r.body.error_details, { plan_overrides: ['not_overridable'] });
  assert.match(r.body.message, new RegExp(`\\b${key}\\b`));
};

// Found by an audit: an override charge took pay_in_advance (and invoiceable, prorated,
// regroup_paid_fees), so subscribing again flipped a live charge to pay in advance and its
// wallet paid the period's peak (10) for a net usage of 2. Lago's Charges::OverrideService takes
// only properties, min_amount_cents, invoice_display_name, filters and tax_codes: another key
// sent with a value other than the charge's is refused, the same value passes.
test('an override charge changes only what Lago overrides; a frozen flag cannot flip a live subscription', async () => {
  const plan = await makePlan('flags');
  const id = plan.charges[0].lago_id;
  let r = await subscribe('fl_c', 'flags', 'fl_s', { charges: [{ id, properties: { amount: '1' } }] });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const wallet = (await t.call('POST', '/api/v1/wallets', { wallet: { external_customer_id: 'fl_c', rate_amount: '1', currency: 'USD', granted_credits: '1000' } })).wallet;
  await t.call('POST', '/api/v1/test_clock/advance', { test_clock: { to: '2026-01-02T00:00:00Z' } });
  for (const [transaction_id, n] of [['fl1', 10], ['fl2', -8]])
    await t.call('POST', '/api/v1/events', { event: { transaction_id, external_subscription_id: 'fl_s', code: 'gb', properties: { n } } });
  const state = async () => [
    (await t.call('GET', `/api/v1/wallets/${wallet.lago_id}`)).wallet.consumed_credits,
    (await t.call('GET', '/api/v1/customers/fl_c/current_usage?external_subscription_id=fl_s')).customer_usage.amount_cents,
    (await t.call('GET', '/api/v1/subscriptions/fl_s')).subscription.plan.charges[0].pay_in_advance,
  ];
  assert.deepEqual(await state(), ['2.0', 200, false]);
  for (const [key, value] of [['pay_in_advance', true], ['invoiceable', false], ['prorated', true], ['regroup_paid_fees', 'invoice']]) {
    r = await subscribe('fl_c', 'flags', 'fl_s', { charges: [{ id, [key]: value, properties: { amount: '1' } }] });
    refused(r, key);
  }
  assert.deepEqual(await state(), ['2.0', 200, false]);
  // the charge's own values sent back pass, with what may change
  r = await subscribe('fl_c', 'flags', 'fl_s', { charges: [{ id, pay_in_advance: false, invoiceable: true, prorated: false, regroup_paid_fees: null, min_amount_cents: 500, invoice_display_name: 'GB', properties: { amount: '2' }, tax_codes: ['vat'] }] });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const c = r.body.subscription.plan.charges[0];
  assert.deepEqual([c.pay_in_advance, c.min_amount_cents, c.invoice_display_name, c.properties, c.tax_codes], [false, 500, 'GB', { amount: '2' }, ['vat']]);
  // a new subscription is refused the same way
  r = await subscribe('fl_c2', 'flags', 'fl_s2', { charges: [{ id, pay_in_advance: true, invoiceable: false }] });
  refused(r, 'pay_in_advance');
  assert.equal((await call('GET', '/api/v1/subscriptions/fl_s2')).status, 404);
  // an own plan stored before these checks, its charge in advance where the plan's is not: the
  // writer refuses new overrides that would flip it back under the live subscription
  await t.restart({
    between: (dir) => {
      const sql = `UPDATE subscriptions SET plan_body = replace(plan_body, '"pay_in_advance":false,"invoiceable"', '"pay_in_advance":true,"invoiceable"') WHERE external_id = 'fl_s';`;
      const q = spawnSync('sqlite3', [join(dir, 'tally.db'), sql], { encoding: 'utf8' });
      assert.equal(q.status, 0, q.stderr);
    },
  });
  assert.equal((await state())[2], true);
  r = await subscribe('fl_c', 'flags', 'fl_s', { charges: [{ id, properties: { amount: '3' } }] });
  refused(r, 'pay_in_advance');
  assert.match(r.body.message, /while the subscription is live/);
  assert.deepEqual((await t.call('GET', '/api/v1/subscriptions/fl_s')).subscription.plan.charges[0].properties, { amount: '2' });
});

// Found by an audit: an override charge sent with another charge_model or billable_metric_id
// was answered 200, the key dropped without a word, and its properties priced on the old model
// (a package's amount 100 became 100 per unit). Refused when it differs; the same passes.
test('an override charge naming another model or metric is refused, not dropped', async () => {
  const plan = await makePlan('model');
  const id = plan.charges[0].lago_id;
  let r = await subscribe('md_c', 'model', 'md_s', { charges: [{ id, charge_model: 'package', properties: { amount: '100', package_size: 1000, free_units: 0 } }] });
  refused(r, 'charge_model');
  r = await subscribe('md_c', 'model', 'md_s', { charges: [{ id, billable_metric_id: metric.other, properties: { amount: '100' } }] });
  refused(r, 'billable_metric_id');
  r = await subscribe('md_c', 'model', 'md_s', { charges: [{ id, charge_model: 'standard', billable_metric_id: metric.gb, properties: { amount: '3' } }] });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.subscription.plan.charges[0].properties, { amount: '3' });
});

// Found by an audit: the subscription's own plan kept the parent's plan and charge ids but gave
// its minimum commitment a new lago_id, and another at each new override.
test('an overridden plan keeps the parent commitment\'s lago_id', async () => {
  const plan = await makePlan('commit_id', {}, { minimum_commitment: { amount_cents: 5000, invoice_display_name: 'Min' } });
  const id = plan.minimum_commitment.lago_id;
  let r = await subscribe('ci_c', 'commit_id', 'ci_s', { amount_cents: 1 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual([r.body.subscription.plan.minimum_commitment.lago_id, r.body.subscription.plan.minimum_commitment.amount_cents], [id, 5000]);
  r = await subscribe('ci_c', 'commit_id', 'ci_s', { minimum_commitment: { amount_cents: 7000, lago_id: '33333333-3333-4333-8333-333333333333' } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const mc = r.body.subscription.plan.minimum_commitment;
  assert.deepEqual([mc.lago_id, mc.amount_cents, mc.invoice_display_name], [id, 7000, null]);
  assert.equal((await t.call('GET', '/api/v1/subscriptions/ci_s')).subscription.plan.minimum_commitment.lago_id, id);
  // one naming only its id is no commitment: refused, where an audit found it removed as {} is
  r = await subscribe('ci_c', 'commit_id', 'ci_s', { minimum_commitment: { lago_id: id } });
  assert.deepEqual([r.status, r.body.error_details], [422, { minimum_commitment: ['value_is_mandatory'] }]);
  assert.equal((await t.call('GET', '/api/v1/subscriptions/ci_s')).subscription.plan.minimum_commitment.amount_cents, 7000);
  // null is no commitment override (the parent's stays); {} removes it from the subscription's plan
  r = await subscribe('ci_c', 'commit_id', 'ci_s', { minimum_commitment: null });
  assert.deepEqual([r.body.subscription.plan.minimum_commitment.lago_id, r.body.subscription.plan.minimum_commitment.amount_cents], [id, 5000]);
  r = await subscribe('ci_c', 'commit_id', 'ci_s', { minimum_commitment: {} });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal('minimum_commitment' in r.body.subscription.plan, false);
  assert.equal((await t.call('GET', '/api/v1/plans/commit_id')).plan.minimum_commitment.lago_id, id);
});

// Found by an audit: usage_thresholds: [] and fixed_charges: [] in plan_overrides were 422
// not_overridable where the top level takes them (Lago accepts both there), and an unknown tax
// code there was 422 {"plan_overrides":["tax_not_found"]}, where everywhere else it is a 404.
test('unserved lists and unknown taxes in plan_overrides answer as at the top level', async () => {
  const plan = await makePlan('errs');
  const id = plan.charges[0].lago_id;
  for (const key of ['usage_thresholds', 'fixed_charges']) {
    let r = await subscribe('er_c', 'errs', `er_${key}`, { [key]: [] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    r = await subscribe('er_c', 'errs', `er_${key}_set`, { [key]: [{ amount_cents: 1 }] });
    assert.equal(r.status, 422);
    assert.deepEqual(r.body.error_details, { [key]: ['not_supported'] });
  }
  for (const overrides of [{ tax_codes: ['nope'] }, { charges: [{ id, tax_codes: ['nope'] }] }, { minimum_commitment: { amount_cents: 10, tax_codes: ['nope'] } }]) {
    const r = await subscribe('er_c', 'errs', 'er_tax', overrides);
    assert.deepEqual([r.status, r.body.code], [404, 'tax_not_found'], JSON.stringify(overrides));
  }
});
