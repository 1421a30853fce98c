// Lago's JavaScript client subscribing customers against tallyd: create, find, list by
// customer and status, update, upgrade, terminate.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from 'lago-javascript-client';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
let lago;
before(async () => {
  t = await startWithOrg(['--test-clock', '2026-03-15T09:30:00Z']);
  lago = Client(t.key, { baseUrl: `${t.url}/api/v1` });
  await lago.plans.createPlan({ plan: { name: 'Starter', code: 'starter', interval: 'monthly', amount_cents: 1900, amount_currency: 'USD' } });
  await lago.plans.createPlan({ plan: { name: 'Scale', code: 'scale', interval: 'monthly', amount_cents: 9900, amount_currency: 'USD' } });
  await lago.customers.createCustomer({ customer: { external_id: 'acme', name: 'Acme', timezone: 'America/Los_Angeles' } });
});
after(async () => { await t.cleanup(); });

test('createSubscription and findSubscription', async () => {
  const { data } = await lago.subscriptions.createSubscription({ subscription: { external_customer_id: 'acme', plan_code: 'starter', external_id: 'acme_main', billing_time: 'calendar', name: 'Main', subscription_at: '2026-01-01T00:00:00Z' } });
  const s = data.subscription;
  assert.equal(s.external_id, 'acme_main');
  assert.equal(s.status, 'active');
  assert.equal(s.plan_code, 'starter');
  assert.equal(s.current_billing_period_started_at, '2026-03-01T08:00:00Z');
  assert.equal(s.current_billing_period_ending_at, '2026-04-01T06:59:59Z'); // PST to PDT on March 8
  // required by Lago's SubscriptionObject: its defaults (no credit note for a plan paid in arrears)
  assert.equal(s.on_termination_invoice, 'generate');
  assert.equal(s.on_termination_credit_note, null);
  const found = await lago.subscriptions.findSubscription('acme_main');
  assert.equal(found.data.subscription.lago_id, s.lago_id);
  assert.equal(found.data.subscription.plan.code, 'starter');
});

test('findAllSubscriptions by customer and status', async () => {
  const { data } = await lago.subscriptions.findAllSubscriptions({ external_customer_id: 'acme', 'status[]': ['active', 'pending'] });
  assert.equal(data.subscriptions.length, 1);
  assert.equal(data.meta.total_count, 1);
});

test('updateSubscription, an upgrade, and destroySubscription', async () => {
  const upd = await lago.subscriptions.updateSubscription('acme_main', { subscription: { name: 'Primary' } });
  assert.equal(upd.data.subscription.name, 'Primary');
  const up = await lago.subscriptions.createSubscription({ subscription: { external_customer_id: 'acme', plan_code: 'scale', external_id: 'acme_main' } });
  assert.equal(up.data.subscription.plan_code, 'scale');
  assert.equal(up.data.subscription.previous_plan_code, 'starter');
  assert.equal(up.data.subscription.name, 'Primary');
  const gone = await lago.subscriptions.destroySubscription('acme_main');
  assert.equal(gone.data.subscription.status, 'terminated');
  await assert.rejects(lago.subscriptions.findSubscription('acme_main'), (res) => {
    assert.equal(res.status, 404);
    assert.equal(res.error.code, 'subscription_not_found');
    return true;
  });
});

// Every member Lago's serializers write on a subscription, its plan and the plan's charges
// (app/serializers/v1/subscription_serializer.rb, plan_serializer.rb, charge_serializer.rb), those
// of features Tally does not serve at Lago's defaults: a client reads them without checking
// (an audit found `plan.usage_thresholds.length` throwing on Tally's answer).
test('a subscription, its plan and charges carry every member Lago writes', async () => {
  const metric = await lago.billableMetrics.createBillableMetric({ billable_metric: { name: 'Calls', code: 'calls_members', aggregation_type: 'count_agg' } });
  assert.equal(metric.data.billable_metric.code, 'calls_members');
  await lago.plans.createPlan({ plan: { name: 'Metered', code: 'metered', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [{ billable_metric_id: metric.data.billable_metric.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } });
  const { data } = await lago.subscriptions.createSubscription({ subscription: { external_customer_id: 'acme', plan_code: 'metered', external_id: 'acme_members' } });
  const s = data.subscription;
  const pick = (o, keys) => Object.fromEntries(keys.map((k) => [k, o[k]]));
  assert.deepEqual(pick(s, ['progressive_billing_disabled', 'consolidate_invoice', 'payment_method', 'applicable_usage_thresholds', 'applied_invoice_custom_sections']),
    { progressive_billing_disabled: false, consolidate_invoice: true, payment_method: { payment_method_type: 'provider', payment_method_id: null }, applicable_usage_thresholds: [], applied_invoice_custom_sections: [] });
  const planMembers = ['usage_thresholds', 'fixed_charges', 'entitlements', 'bill_fixed_charges_monthly', 'customers_count', 'active_subscriptions_count', 'draft_invoices_count', 'parent_id'];
  const planDefaults = { usage_thresholds: [], fixed_charges: [], entitlements: [], bill_fixed_charges_monthly: null, customers_count: 0, active_subscriptions_count: 0, draft_invoices_count: 0, parent_id: null };
  const chargeDefaults = { code: null, applied_pricing_unit: null, accepts_target_wallet: false, lago_parent_id: null };
  const plans = [s.plan, (await lago.plans.findPlan('metered')).data.plan];
  for (const plan of plans) {
    assert.deepEqual(pick(plan, planMembers), planDefaults);
    assert.equal(plan.usage_thresholds.length, 0);
    assert.equal(plan.charges.length, 1);
    assert.deepEqual(pick(plan.charges[0], Object.keys(chargeDefaults)), chargeDefaults);
  }
});
