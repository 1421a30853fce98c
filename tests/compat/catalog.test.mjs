// Lago's JavaScript client creating a catalog against tallyd: taxes, billable metrics,
// add-ons, coupons and a plan with charges, read back and updated through the client.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client, getLagoError } from 'lago-javascript-client';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
let lago;
before(async () => {
  t = await startWithOrg();
  lago = Client(t.key, { baseUrl: `${t.url}/api/v1` });
});
after(async () => { await t.cleanup(); });

test('taxes through the client', async () => {
  const { data } = await lago.taxes.createTax({ tax: { name: 'VAT FR', code: 'vat_fr', rate: '20.0', description: 'France' } });
  assert.equal(data.tax.code, 'vat_fr');
  assert.equal(data.tax.rate, 20);
  const upd = await lago.taxes.updateTax('vat_fr', { tax: { rate: '10.0' } });
  assert.equal(upd.data.tax.rate, 10);
  const all = await lago.taxes.findAllTaxes({ page: 1, per_page: 10 });
  assert.equal(all.data.meta.total_count, 1);
  assert.equal((await lago.taxes.findTax('vat_fr')).data.tax.name, 'VAT FR');
  // the usage counts Lago's TaxObject carries, read through the client
  const counts = (tax) => [tax.add_ons_count, tax.customers_count, tax.plans_count, tax.charges_count, tax.commitments_count];
  assert.deepEqual(counts(data.tax), [0, 0, 0, 0, 0]);
  assert.deepEqual(counts(all.data.taxes[0]), [0, 0, 0, 0, 0]);
});

let tokens;
test('billable metrics through the client', async () => {
  const { data } = await lago.billableMetrics.createBillableMetric({ billable_metric: { name: 'Tokens', code: 'tokens', aggregation_type: 'sum_agg', field_name: 'total_tokens', filters: [{ key: 'model', values: ['small', 'large'] }] } });
  tokens = data.billable_metric;
  assert.equal(tokens.aggregation_type, 'sum_agg');
  assert.deepEqual(tokens.filters, [{ key: 'model', values: ['small', 'large'] }]);
  const got = await lago.billableMetrics.findBillableMetric('tokens');
  assert.equal(got.data.billable_metric.lago_id, tokens.lago_id);
  await assert.rejects(lago.billableMetrics.createBillableMetric({ billable_metric: { name: 'T', code: 'tokens', aggregation_type: 'count_agg' } }), (res) => {
    assert.equal(res.status, 422);
    assert.deepEqual(res.error.error_details, { code: ['value_already_exist'] });
    return true;
  });
});

test('add-ons and coupons through the client', async () => {
  const a = await lago.addOns.createAddOn({ add_on: { name: 'Setup', code: 'setup', amount_cents: 10000, amount_currency: 'EUR', tax_codes: ['vat_fr'] } });
  assert.equal(a.data.add_on.taxes[0].code, 'vat_fr');
  assert.equal((await lago.taxes.findTax('vat_fr')).data.tax.add_ons_count, 1);
  const c = await lago.coupons.createCoupon({ coupon: { name: 'Launch', code: 'launch', coupon_type: 'percentage', percentage_rate: '15', frequency: 'recurring', frequency_duration: 6, expiration: 'no_expiration' } });
  assert.equal(c.data.coupon.percentage_rate, '15.0');
  assert.equal(c.data.coupon.frequency_duration, 6);
  // the client's input nests limits in applies_to; the answer has them at the top
  const limited = await lago.coupons.createCoupon({ coupon: { name: 'Tokens', code: 'tokens_off', coupon_type: 'fixed_amount', amount_cents: 500, amount_currency: 'EUR', frequency: 'once', expiration: 'no_expiration', applies_to: { billable_metric_codes: ['tokens'] } } });
  assert.deepEqual(limited.data.coupon.billable_metric_codes, ['tokens']);
  assert.equal(limited.data.coupon.limited_billable_metrics, true);
  await assert.rejects(lago.coupons.createCoupon({ coupon: { name: 'X', code: 'x_off', coupon_type: 'fixed_amount', amount_cents: 500, amount_currency: 'EUR', frequency: 'once', expiration: 'no_expiration', applies_to: { plan_codes: ['no_such_plan'] } } }), (res) => res.status === 404);
  const list = await lago.coupons.findAllCoupons();
  assert.equal(list.data.coupons.length, 2);
  await lago.addOns.destroyAddOn('setup');
  await assert.rejects(lago.addOns.findAddOn('setup'), (res) => res.status === 404);
});

test('a plan with graduated and package charges through the client', async () => {
  const { data } = await lago.plans.createPlan({
    plan: {
      name: 'Startup', code: 'startup', interval: 'monthly', amount_cents: 9900, amount_currency: 'EUR',
      pay_in_advance: true, trial_period: 14, tax_codes: ['vat_fr'],
      charges: [
        { billable_metric_id: tokens.lago_id, charge_model: 'graduated', properties: { graduated_ranges: [
          { from_value: 0, to_value: 1000000, per_unit_amount: '0.000002', flat_amount: '0' },
          { from_value: 1000001, to_value: null, per_unit_amount: '0.000001', flat_amount: '0' }] },
          filters: [{ invoice_display_name: 'Large model', properties: { graduated_ranges: [{ from_value: 0, to_value: null, per_unit_amount: '0.00001', flat_amount: '0' }] }, values: { model: ['large'] } }] },
        { billable_metric_id: tokens.lago_id, charge_model: 'package', properties: { amount: '1', package_size: 1000, free_units: 0 } },
      ],
    },
  });
  assert.equal(data.plan.code, 'startup');
  assert.equal(data.plan.charges.length, 2);
  assert.equal(data.plan.charges[0].billable_metric_code, 'tokens');
  assert.equal(data.plan.charges[0].filters[0].invoice_display_name, 'Large model');
  const upd = await lago.plans.updatePlan('startup', { plan: { name: 'Startup 2026' } });
  assert.equal(upd.data.plan.name, 'Startup 2026');
  assert.equal(upd.data.plan.charges[1].lago_id, data.plan.charges[1].lago_id);
  const all = await lago.plans.findAllPlans({ per_page: 5 });
  assert.equal(all.data.plans[0].code, 'startup');
  const vat = (await lago.taxes.updateTax('vat_fr', { tax: { description: 'France (mainland)' } })).data.tax;
  assert.deepEqual([vat.add_ons_count, vat.plans_count, vat.charges_count], [0, 1, 0]); // the add-on is deleted
});

test('applied coupons through the client', async () => {
  await lago.customers.createCustomer({ customer: { external_id: 'coupon_user', currency: 'EUR' } });
  const { data } = await lago.appliedCoupons.applyCoupon({ applied_coupon: { external_customer_id: 'coupon_user', coupon_code: 'launch' } });
  assert.equal(data.applied_coupon.coupon_code, 'launch');
  assert.equal(data.applied_coupon.percentage_rate, '15.0');
  const list = await lago.appliedCoupons.findAllAppliedCoupons({ external_customer_id: 'coupon_user' });
  assert.equal(list.data.applied_coupons.length, 1);
  const del = await lago.customers.deleteAppliedCoupon('coupon_user', data.applied_coupon.lago_id);
  assert.equal(del.data.applied_coupon.status, 'terminated');
});

test('a plan with every charge model, through the client', async () => {
  const bm = (await lago.billableMetrics.createBillableMetric({ billable_metric: { name: 'Requests', code: 'requests', aggregation_type: 'count_agg' } })).data.billable_metric;
  const ranges = [{ from_value: 0, to_value: 100, per_unit_amount: '0.1', flat_amount: '1' }, { from_value: 101, to_value: null, per_unit_amount: '0.05', flat_amount: '0' }];
  const { data } = await lago.plans.createPlan({
    plan: {
      name: 'Every model', code: 'every_model', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR',
      charges: [
        { billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '0.01' } },
        { billable_metric_id: tokens.lago_id, charge_model: 'graduated', properties: { graduated_ranges: ranges } },
        { billable_metric_id: tokens.lago_id, charge_model: 'graduated_percentage', properties: { graduated_percentage_ranges: [{ from_value: 0, to_value: null, rate: '1.5', flat_amount: '0' }] } },
        { billable_metric_id: bm.lago_id, charge_model: 'package', properties: { amount: '10', package_size: 1000, free_units: 100 } },
        { billable_metric_id: tokens.lago_id, charge_model: 'percentage', properties: { rate: '2.5', fixed_amount: '0.3', free_units_per_events: 5 } },
        { billable_metric_id: tokens.lago_id, charge_model: 'volume', properties: { volume_ranges: ranges } },
      ],
    },
  });
  assert.deepEqual(data.plan.charges.map((c) => c.charge_model), ['standard', 'graduated', 'graduated_percentage', 'package', 'percentage', 'volume']);
  assert.deepEqual(data.plan.charges[5].properties.volume_ranges, ranges);
});

test('updatePlan naming a charge by id changes only what it sends', async () => {
  const { data } = await lago.plans.createPlan({
    plan: {
      name: 'Partial', code: 'partial', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR',
      charges: [{ billable_metric_id: tokens.lago_id, charge_model: 'standard', pay_in_advance: true, invoiceable: true,
        properties: { amount: '1' }, filters: [{ invoice_display_name: 'Large', properties: { amount: '2' }, values: { model: ['large'] } }] }],
    },
  });
  const before = data.plan.charges[0];
  const upd = await lago.plans.updatePlan('partial', { plan: { charges: [{ id: before.lago_id, properties: { amount: '3' } }] } });
  const after = upd.data.plan.charges[0];
  assert.equal(after.lago_id, before.lago_id);
  assert.deepEqual(after.properties, { amount: '3' });
  assert.deepEqual(after.filters, before.filters);
  assert.equal(after.pay_in_advance, true);
  assert.equal(after.billable_metric_code, 'tokens');
});

// Found by an audit: a charge's code was dropped (answered null) and accepts_target_wallet
// taken and ignored, an event's target_wallet_code then paid by another wallet; the answer
// carried group_by_wallet, a member Lago does not have, in place of accepts_target_wallet.
test('a charge keeps its code; accepts_target_wallet is refused, not ignored', async () => {
  const charge = { billable_metric_id: tokens.lago_id, charge_model: 'standard', properties: { amount: '1' } };
  const { data } = await lago.plans.createPlan({ plan: { name: 'Coded', code: 'coded', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR',
    charges: [{ ...charge, code: 'api_calls', accepts_target_wallet: false }] } });
  const created = data.plan.charges[0];
  assert.deepEqual([created.code, created.accepts_target_wallet, 'group_by_wallet' in created], ['api_calls', false, false]);
  const read = (await lago.plans.findPlan('coded')).data.plan.charges[0];
  assert.equal(read.code, 'api_calls');
  const renamed = await lago.plans.updatePlan('coded', { plan: { charges: [{ id: created.lago_id, code: 'api_requests' }] } });
  assert.equal(renamed.data.plan.charges[0].code, 'api_requests');
  const refused = await lago.plans.createPlan({ plan: { name: 'Targeted', code: 'targeted', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR',
    charges: [{ ...charge, accepts_target_wallet: true }] } }).catch((r) => r);
  assert.equal(refused.status, 422);
  assert.deepEqual((await getLagoError(refused)).error_details, { accepts_target_wallet: ['not_supported'] });
  assert.equal((await t.api('/api/v1/plans/targeted')).status, 404);
});
