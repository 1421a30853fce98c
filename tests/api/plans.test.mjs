// Plans and their charges over real HTTP: every charge model's properties, Lago's charge
// rules, filters against the metric's, updates that keep charge ids, taxes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
const metric = {};
before(async () => {
  t = await startWithOrg(['--test-clock', '2026-01-01T00:00:00Z']);
  for (const bm of [
    { code: 'tokens', name: 'Tokens', aggregation_type: 'sum_agg', field_name: 'tokens', filters: [{ key: 'model', values: ['small', 'large'] }] },
    { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' },
    { code: 'storage', name: 'Storage', aggregation_type: 'latest_agg', field_name: 'gb' },
    { code: 'seats', name: 'Seats', aggregation_type: 'unique_count_agg', field_name: 'user' },
    { code: 'peak', name: 'Peak', aggregation_type: 'max_agg', field_name: 'gpus' },
  ]) {
    const r = await t.api('/api/v1/billable_metrics', { method: 'POST', body: { billable_metric: bm } });
    metric[bm.code] = (await r.json()).billable_metric.lago_id;
  }
  await t.api('/api/v1/taxes', { method: 'POST', body: { tax: { code: 'vat', name: 'VAT', rate: 20 } } });
});
after(async () => { await t.cleanup(); });

const call = async (method, path, body) => {
  const r = await t.api(path, { method, body });
  return { status: r.status, body: await r.json() };
};
const plan = (code, charges, extra = {}) => ({ plan: { code, name: code, interval: 'monthly', amount_cents: 1000, amount_currency: 'USD', charges, ...extra } });
const charge = (bm, charge_model, properties, extra = {}) => ({ billable_metric_id: metric[bm], charge_model, properties, ...extra });

test('a plan with every charge model', async () => {
  const charges = [
    charge('calls', 'standard', { amount: '0.0001' }),
    charge('tokens', 'graduated', { graduated_ranges: [{ from_value: 0, to_value: 100, per_unit_amount: '1', flat_amount: '10' }, { from_value: 101, to_value: null, per_unit_amount: '0.5', flat_amount: '0' }] }),
    charge('tokens', 'graduated_percentage', { graduated_percentage_ranges: [{ from_value: 0, to_value: 10, rate: '1', flat_amount: '0' }, { from_value: 10, to_value: null, rate: '0.5', flat_amount: '1' }] }),
    charge('calls', 'package', { amount: '5', package_size: 1000, free_units: 100 }),
    charge('tokens', 'percentage', { rate: '1.5', fixed_amount: '0.1', free_units_per_events: 3, free_units_per_total_aggregation: '50', per_transaction_min_amount: '0.01', per_transaction_max_amount: '10' }),
    charge('tokens', 'volume', { volume_ranges: [{ from_value: 0, to_value: 100, per_unit_amount: '2', flat_amount: '1' }, { from_value: 101, to_value: null, per_unit_amount: '1', flat_amount: '0' }] }),
  ];
  const r = await call('POST', '/api/v1/plans', plan('all_models', charges, { tax_codes: ['vat'], trial_period: 7, pay_in_advance: true, minimum_commitment: { amount_cents: 5000, invoice_display_name: 'Min' } }));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const p = r.body.plan;
  assert.equal(p.charges.length, 6);
  assert.deepEqual(p.charges.map((c) => c.charge_model), ['standard', 'graduated', 'graduated_percentage', 'package', 'percentage', 'volume']);
  assert.deepEqual(p.charges[0].properties, { amount: '0.0001' });
  assert.equal(p.charges[0].billable_metric_code, 'calls');
  assert.equal(p.charges[0].lago_billable_metric_id, metric.calls);
  assert.deepEqual(p.charges[3].properties, { amount: '5', package_size: 1000, free_units: 100 });
  assert.deepEqual(p.charges[4].properties, { rate: '1.5', fixed_amount: '0.1', free_units_per_events: 3, free_units_per_total_aggregation: '50', per_transaction_min_amount: '0.01', per_transaction_max_amount: '10' });
  assert.deepEqual(p.charges[5].properties.volume_ranges[1], { from_value: 101, to_value: null, per_unit_amount: '1', flat_amount: '0' });
  assert.equal(p.trial_period, 7);
  assert.equal(p.pay_in_advance, true);
  // Lago's MinimumCommitmentObject: its own id, the plan's code and interval, its dates
  const { lago_id: commitmentId, ...commitment } = p.minimum_commitment;
  assert.match(commitmentId, /^[0-9a-f-]{36}$/);
  assert.deepEqual(commitment, { amount_cents: 5000, invoice_display_name: 'Min', tax_codes: [], taxes: [], plan_code: 'all_models', interval: 'monthly', created_at: p.created_at, updated_at: p.updated_at });
  assert.equal(p.taxes[0].code, 'vat');
  assert.deepEqual((await call('GET', '/api/v1/plans/all_models')).body.plan, p);
});

test('charge properties are validated with Lago\'s codes', async () => {
  const cases = [
    [charge('calls', 'standard', { amount: '-1' }), 'properties', 'invalid_amount'],
    [charge('calls', 'standard', { amount: null }), 'properties', 'invalid_amount'],
    [charge('calls', 'standard', { amount: 'ten' }), 'properties', 'invalid_amount'],
    [charge('calls', 'package', { amount: '1', package_size: 0 }), 'properties', 'invalid_package_size'],
    [charge('calls', 'package', { amount: '1', package_size: 10, free_units: -1 }), 'properties', 'invalid_free_units'],
    [charge('tokens', 'percentage', { rate: '-1' }), 'properties', 'invalid_rate'],
    [charge('tokens', 'percentage', { rate: '1', per_transaction_min_amount: '5', per_transaction_max_amount: '1' }), 'properties', 'per_transaction_max_lower_than_per_transaction_min'],
    [charge('tokens', 'graduated', { graduated_ranges: null }), 'properties', 'missing_graduated_ranges'],
    [charge('tokens', 'graduated', { graduated_ranges: [{ from_value: 1, to_value: null, per_unit_amount: '1', flat_amount: '0' }] }), 'properties', 'invalid_graduated_ranges'],
    [charge('tokens', 'graduated', { graduated_ranges: [{ from_value: 0, to_value: null, per_unit_amount: '1', flat_amount: '0' }, { from_value: 10, to_value: null, per_unit_amount: '1', flat_amount: '0' }] }), 'properties', 'invalid_graduated_ranges'],
    [charge('tokens', 'graduated', { graduated_ranges: [{ from_value: 0, to_value: 10, per_unit_amount: '1', flat_amount: '0' }, { from_value: 20, to_value: null, per_unit_amount: '1', flat_amount: '0' }] }), 'properties', 'invalid_graduated_ranges'],
    [charge('tokens', 'volume', { volume_ranges: [] }), 'properties', 'missing_volume_ranges'],
    [charge('tokens', 'graduated_percentage', { graduated_percentage_ranges: [{ from_value: 0, to_value: null, rate: '-2', flat_amount: '0' }] }), 'properties', 'invalid_rate'],
    [charge('tokens', 'fancy', { amount: '1' }), 'charge_model', 'value_is_invalid'],
  ];
  for (const [c, field, code] of cases) {
    const r = await call('POST', '/api/v1/plans', plan('bad', [c]));
    assert.equal(r.status, 422, JSON.stringify(c));
    assert.deepEqual(r.body.error_details, { [field]: [code] }, JSON.stringify(c));
  }
  // Found by a fuzzing audit: a charge given up on halfway through its properties aborted
  // tallyd (an assert in the JSON writer); each is a 422 and the server goes on
  const { properties: _, ...noProperties } = charge('calls', 'standard', {});
  for (const c of [{ ...noProperties, properties: 'x' }, { ...noProperties, properties: [] }, { ...noProperties, properties: { amount: null } },
    { ...noProperties, properties: { amount: 'x' } }, charge('calls', 'standard', { amount: '1' }, { tax_codes: ['no_such_tax'] }),
    charge('tokens', 'standard', { amount: '1' }, { filters: [{ properties: 'x', values: { model: ['large'] } }] })]) {
    const r = await call('POST', '/api/v1/plans', plan('bad_halfway', [charge('calls', 'standard', { amount: '1' }), c]));
    assert.ok(r.status === 422 || r.status === 404, `${r.status} ${JSON.stringify(c)}`);
  }
  assert.equal((await call('GET', '/api/v1/plans/bad_halfway')).status, 404);
});

// Lago's Plans::CreateService and Charges::CreateService take `properties.presence ||
// ChargeModels::BuildDefaultPropertiesService.call(charge_model)`, and its OpenAPI
// PlanCreateInput requires only a charge's metric and model. Tally refused such a charge
// (found by an audit: 422 properties value_is_mandatory, or the model's code for {}).
test('a charge without properties, or with {}, gets its model\'s default properties, as in Lago', async () => {
  const zeroRange = { from_value: 0, to_value: null, flat_amount: '0' };
  const defaults = {
    standard: { amount: '0' },
    graduated: { graduated_ranges: [{ ...zeroRange, per_unit_amount: '0' }] },
    package: { amount: '0', package_size: 1, free_units: 0 },
    percentage: { rate: '0' },
    volume: { volume_ranges: [{ ...zeroRange, per_unit_amount: '0' }] },
    graduated_percentage: { graduated_percentage_ranges: [{ from_value: 0, to_value: null, rate: '0', flat_amount: '0' }] },
    dynamic: {},
  };
  let k = 0;
  for (const [model, props] of Object.entries(defaults)) {
    for (const sent of [undefined, null, {}]) {
      const c = { billable_metric_id: metric.tokens, charge_model: model };
      if (sent !== undefined) c.properties = sent;
      const r = await call('POST', '/api/v1/plans', plan(`defaults_${k++}`, [c]));
      assert.equal(r.status, 200, `${model} ${JSON.stringify(sent)}: ${JSON.stringify(r.body)}`);
      assert.deepEqual(r.body.plan.charges[0].properties, props, `${model} ${JSON.stringify(sent)}`);
    }
  }
  // a filter still needs its own properties (Lago's filters take none by default)
  const filtered = await call('POST', '/api/v1/plans', plan('defaults_filter', [{ billable_metric_id: metric.tokens, charge_model: 'standard', filters: [{ values: { model: ['large'] } }] }]));
  assert.deepEqual(filtered.body.error_details, { properties: ['value_is_mandatory'] });
  // an update: a new charge without properties gets the defaults; a charge named by id with
  // properties {} or null is reset to them (Lago's .presence), one that leaves them out keeps
  // its own (Tally's, docs/API.md)
  const made = (await call('POST', '/api/v1/plans', plan('defaults_put', [charge('calls', 'standard', { amount: '5' }), charge('tokens', 'package', { amount: '2', package_size: 10, free_units: 0 })]))).body.plan;
  const [calls, tokens] = made.charges.map((c) => c.lago_id);
  let r = await call('PUT', '/api/v1/plans/defaults_put', { plan: { charges: [{ id: calls }, { id: tokens }, { billable_metric_id: metric.tokens, charge_model: 'volume' }] } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.plan.charges.map((c) => c.properties), [{ amount: '5' }, { amount: '2', package_size: 10, free_units: 0 }, defaults.volume]);
  const added = r.body.plan.charges[2].lago_id;
  r = await call('PUT', '/api/v1/plans/defaults_put', { plan: { charges: [{ id: calls, properties: {} }, { id: tokens, properties: null }, { id: added }] } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.plan.charges.map((c) => c.properties), [defaults.standard, defaults.package, defaults.volume]);
  // a subscription's plan_overrides are not a new charge: Lago's Charges::OverrideService sets
  // the properties as sent, and its charge validation refuses {} for a model that needs them
  for (const [properties, code] of [[{}, 'invalid_amount'], [null, 'value_is_mandatory']]) {
    const o = await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'defaults_c', plan_code: 'defaults_put', external_id: 'defaults_s',
      plan_overrides: { charges: [{ id: calls, properties }] } } });
    assert.equal(o.status, 422, JSON.stringify(o.body));
    assert.deepEqual(o.body.error_details, { properties: [code] });
  }
});

test('charge and metric rules: pay in advance, proration, min amount, percentage on latest, filters', async () => {
  const cases = [
    [charge('tokens', 'volume', { volume_ranges: [{ from_value: 0, to_value: null, per_unit_amount: '1', flat_amount: '0' }] }, { pay_in_advance: true }), 'pay_in_advance', 'invalid_aggregation_type_or_charge_model'],
    [charge('peak', 'standard', { amount: '1' }, { pay_in_advance: true }), 'pay_in_advance', 'invalid_aggregation_type_or_charge_model'],
    [charge('calls', 'standard', { amount: '1' }, { pay_in_advance: true, min_amount_cents: 100 }), 'min_amount_cents', 'not_compatible_with_pay_in_advance'],
    [charge('calls', 'standard', { amount: '1' }, { prorated: true }), 'prorated', 'invalid_billable_metric_or_charge_model'],
    [charge('seats', 'package', { amount: '1', package_size: 1 }, { prorated: true }), 'prorated', 'invalid_billable_metric_or_charge_model'],
    // prorating needs a recurring metric, which Tally refuses for now (docs/API.md)
    [charge('seats', 'standard', { amount: '10' }, { prorated: true }), 'prorated', 'invalid_billable_metric_or_charge_model'],
    // Lago's validators' billable_metric: invalid_value, which ChargePropertiesValidation files
    // under properties, as every validator's code (an audit found it under billable_metric)
    [charge('storage', 'percentage', { rate: '1' }), 'properties', 'invalid_value'],
    [charge('storage', 'graduated_percentage', { graduated_percentage_ranges: [{ from_value: 0, to_value: null, rate: '1', flat_amount: '0' }] }), 'properties', 'invalid_value'],
    // Lago's codes (Charge#validate_invoiceable_unless_pay_in_advance, #validate_regroup_paid_fees):
    // an audit found another code for the first and the second accepted on any charge
    [charge('calls', 'standard', { amount: '1' }, { invoiceable: false }), 'invoiceable', 'must_be_true_unless_pay_in_advance'],
    [charge('calls', 'standard', { amount: '1' }, { regroup_paid_fees: 'invoice' }), 'regroup_paid_fees', 'only_compatible_with_pay_in_advance_and_non_invoiceable'],
    [charge('calls', 'standard', { amount: '1' }, { pay_in_advance: true, regroup_paid_fees: 'invoice' }), 'regroup_paid_fees', 'only_compatible_with_pay_in_advance_and_non_invoiceable'],
    [charge('tokens', 'standard', { amount: '1' }, { filters: [{ properties: { amount: '2' }, values: { region: ['eu'] } }] }), 'filters', 'invalid_format'],
    [charge('tokens', 'standard', { amount: '1' }, { filters: [{ properties: { amount: '2' }, values: { model: ['huge'] } }] }), 'filters', 'invalid_format'],
    // the wildcard is the key's one value, as Lago's ChargeFilterValue#validate_values takes it
    // (an audit: ['large', wildcard] was stored, and priced as ['large'] alone)
    [charge('tokens', 'standard', { amount: '1' }, { filters: [{ properties: { amount: '2' }, values: { model: ['large', '__ALL_FILTER_VALUES__'] } }] }), 'filters', 'invalid_format'],
    [charge('tokens', 'standard', { amount: '1' }, { filters: [{ properties: { amount: '2' }, values: { model: ['__ALL_FILTER_VALUES__', '__ALL_FILTER_VALUES__'] } }] }), 'filters', 'invalid_format'],
  ];
  for (const [c, field, code] of cases) {
    const r = await call('POST', '/api/v1/plans', plan('bad', [c]));
    assert.equal(r.status, 422, JSON.stringify(c));
    assert.deepEqual(r.body.error_details, { [field]: [code] }, JSON.stringify(c));
  }
  // the allowed combinations
  const ok = await call('POST', '/api/v1/plans', plan('rules_ok', [
    charge('calls', 'standard', { amount: '1' }, { pay_in_advance: true, invoiceable: false, regroup_paid_fees: 'invoice' }),
    charge('tokens', 'standard', { amount: '1' }, { filters: [{ invoice_display_name: 'Large', properties: { amount: '3' }, values: { model: ['large'] } }, { properties: { amount: '2' }, values: { model: ['__ALL_FILTER_VALUES__'] } }] }),
  ]));
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.deepEqual(ok.body.plan.charges[1].filters[0], { invoice_display_name: 'Large', properties: { amount: '3' }, values: { model: ['large'] } });
});

test('plan fields: interval, currency, references', async () => {
  for (const [extra, field, code] of [
    [{ interval: 'daily' }, 'interval', 'value_is_invalid'],
    [{ amount_currency: 'XYZ' }, 'amount_currency', 'value_is_invalid'],
    [{ amount_cents: -5 }, 'amount_cents', 'value_is_out_of_range'],
    [{ bill_charges_monthly: true }, 'bill_charges_monthly', 'only_with_yearly_or_semiannual'],
    [{ trial_period: -1 }, 'trial_period', 'value_is_out_of_range'],
  ]) {
    const r = await call('POST', '/api/v1/plans', plan('bad', [], extra));
    assert.deepEqual(r.body.error_details, { [field]: [code] }, JSON.stringify(extra));
  }
  // an unknown metric is Lago's Plans::ChargeablesValidationService's 404, plural, on a create
  // and on an update (an audit found the singular billable_metric_not_found)
  const unknown = [{ billable_metric_id: '00000000-0000-4000-8000-000000000000', charge_model: 'standard', properties: { amount: '1' } }];
  let r = await call('POST', '/api/v1/plans', plan('bad', unknown));
  assert.deepEqual(r.body, { status: 404, error: 'Not Found', code: 'billable_metrics_not_found' });
  r = await call('POST', '/api/v1/plans', plan('known', []));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  r = await call('PUT', '/api/v1/plans/known', { plan: { charges: unknown } });
  assert.deepEqual(r.body, { status: 404, error: 'Not Found', code: 'billable_metrics_not_found' });
  r = await call('POST', '/api/v1/plans', plan('bad', [], { tax_codes: ['nope'] }));
  assert.deepEqual(r.body, { status: 404, error: 'Not Found', code: 'tax_not_found' });
  r = await call('POST', '/api/v1/plans', plan('yearly', [], { interval: 'yearly', bill_charges_monthly: true }));
  assert.equal(r.body.plan.bill_charges_monthly, true);
  // An audit found a yearly plan's stored flag refusing a PUT to a shorter interval that did not
  // send it (422 only_with_yearly_or_semiannual): Lago's Plans::UpdateService#bill_charges_monthly?
  // clears it when the new interval is neither yearly nor semiannual, and answers 200. One
  // that sends true with a short interval is still refused.
  r = await call('PUT', '/api/v1/plans/yearly', { plan: { interval: 'monthly', bill_charges_monthly: true } });
  assert.deepEqual([r.status, r.body.error_details], [422, { bill_charges_monthly: ['only_with_yearly_or_semiannual'] }]);
  r = await call('PUT', '/api/v1/plans/yearly', { plan: { interval: 'monthly' } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual([r.body.plan.interval, r.body.plan.bill_charges_monthly], ['monthly', null]);
  // back to semiannual: the flag is false until sent, as on a create
  r = await call('PUT', '/api/v1/plans/yearly', { plan: { interval: 'semiannual' } });
  assert.deepEqual([r.status, r.body.plan.bill_charges_monthly], [200, false]);
});

test('updating a plan keeps what is not named, and charge ids across edits', async () => {
  const created = (await call('POST', '/api/v1/plans', plan('editable', [charge('calls', 'standard', { amount: '1' })]))).body.plan;
  let r = await call('PUT', '/api/v1/plans/editable', { plan: { amount_cents: 2000 } });
  assert.equal(r.body.plan.amount_cents, 2000);
  assert.equal(r.body.plan.charges[0].lago_id, created.charges[0].lago_id);
  // charges: null sends none, as Lago reads it: a client writing unset fields as null keeps
  // them (an audit: a rename with charges null took every charge and the period's usage)
  r = await call('PUT', '/api/v1/plans/editable', { plan: { name: 'Editable', charges: null } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual([r.body.plan.name, r.body.plan.charges.map((c) => c.lago_id)], ['Editable', [created.charges[0].lago_id]]);
  // Lago's clients name the charge to keep by id
  r = await call('PUT', '/api/v1/plans/editable', { plan: { charges: [{ id: created.charges[0].lago_id, billable_metric_id: metric.calls, charge_model: 'standard', properties: { amount: '2' } }, charge('tokens', 'standard', { amount: '3' })] } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.plan.charges.length, 2);
  assert.equal(r.body.plan.charges[0].lago_id, created.charges[0].lago_id);
  assert.deepEqual(r.body.plan.charges[0].properties, { amount: '2' });
  assert.notEqual(r.body.plan.charges[1].lago_id, created.charges[0].lago_id);
  const del = await call('DELETE', '/api/v1/plans/editable');
  assert.equal(del.body.plan.code, 'editable');
  assert.equal((await call('GET', '/api/v1/plans/editable')).status, 404);
});

// A charge named by id lost its filters and flags when they were not sent (repro-2)
test('a charge named by id keeps every attribute not sent; filters change only when sent', async () => {
  const filters = [{ invoice_display_name: 'Large', properties: { amount: '3' }, values: { model: ['large'] } }];
  const created = (await call('POST', '/api/v1/plans', plan('by_id', [
    charge('tokens', 'standard', { amount: '1' }, { pay_in_advance: true, invoiceable: false, regroup_paid_fees: 'invoice',
      invoice_display_name: 'Tokens', tax_codes: ['vat'], filters }),
    charge('calls', 'percentage', { rate: '1.5', fixed_amount: '0.1' }, { min_amount_cents: 500, invoice_display_name: 'Calls' }),
  ]))).body.plan;
  const [tok, calls] = created.charges;
  // as repro-2 sends it, and the second without its metric or model (Lago's clients may)
  let r = await call('PUT', '/api/v1/plans/by_id', { plan: { charges: [
    { id: tok.lago_id, billable_metric_id: metric.tokens, charge_model: 'standard', properties: { amount: '3' } },
    { id: calls.lago_id, invoice_display_name: 'API calls' },
  ] } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  let [a, b] = r.body.plan.charges;
  assert.deepEqual(a, { ...tok, properties: { amount: '3' } });
  assert.deepEqual(b, { ...calls, invoice_display_name: 'API calls' });
  // properties sent replace the old ones whole; filters: [] clears them
  r = await call('PUT', '/api/v1/plans/by_id', { plan: { charges: [
    { id: tok.lago_id, filters: [] },
    { id: calls.lago_id, properties: { rate: '2' } },
  ] } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  [a, b] = r.body.plan.charges;
  assert.deepEqual(a, { ...tok, properties: { amount: '3' }, filters: [] });
  assert.deepEqual(b.properties, { rate: '2' });
  assert.equal(b.min_amount_cents, 500);
  assert.deepEqual((await call('GET', '/api/v1/plans/by_id')).body.plan, r.body.plan);
  // what is laid over the stored charge obeys the charge rules
  r = await call('PUT', '/api/v1/plans/by_id', { plan: { charges: [{ id: tok.lago_id, min_amount_cents: 100 }] } });
  assert.deepEqual(r.body.error_details, { min_amount_cents: ['not_compatible_with_pay_in_advance'] });
  // a charge the plan does not have still needs its metric
  r = await call('PUT', '/api/v1/plans/by_id', { plan: { charges: [{ charge_model: 'standard', properties: { amount: '1' } }] } });
  assert.deepEqual(r.body.error_details, { billable_metric_id: ['value_is_mandatory'] });
  // charges left out of the list go, as in Lago
  r = await call('PUT', '/api/v1/plans/by_id', { plan: { charges: [{ id: calls.lago_id }] } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.plan.charges.map((c) => c.lago_id), [calls.lago_id]);
  assert.deepEqual(r.body.plan.charges[0].properties, { rate: '2' });
});

test('an update\'s charge id the plan does not have makes a new charge; two charges naming one id are refused', async () => {
  const made = await call('POST', '/api/v1/plans', plan('ids', [charge('calls', 'standard', { amount: '1' })]));
  assert.equal(made.status, 200);
  const first = made.body.plan.charges[0].lago_id;
  // an id of no charge of this plan (one removed earlier, say) is not taken over
  const foreign = '22222222-2222-4222-8222-222222222222';
  const put = await call('PUT', '/api/v1/plans/ids', { plan: { charges: [{ id: first }, charge('tokens', 'standard', { amount: '2' }, { id: foreign })] } });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  const ids = put.body.plan.charges.map((c) => c.lago_id);
  assert.equal(ids[0], first);
  assert.notEqual(ids[1], foreign);
  assert.match(ids[1], /^[0-9a-f-]{36}$/);
  // one charge named twice would share its debits and usage: refused, nothing changed
  const twice = await call('PUT', '/api/v1/plans/ids', { plan: { charges: [{ id: first }, { id: first, properties: { amount: '5' } }] } });
  assert.equal(twice.status, 422);
  assert.deepEqual(twice.body.error_details, { charges: ['value_already_exist'] });
  assert.deepEqual((await call('GET', '/api/v1/plans/ids')).body.plan.charges.map((c) => c.lago_id), ids);
  // a new plan's charges are new, whatever ids they are sent with (Lago's create gives each its
  // own): an isolation audit found a plan taking another plan's, or organization's, charge id
  // (and any 36 bytes as one)
  const created = await call('POST', '/api/v1/plans', plan('ids2', [charge('calls', 'standard', { amount: '1' }, { id: first }), charge('calls', 'standard', { amount: '2' }, { lago_id: '<script>alert(1)</script>xxxxxxxxxxx' })]));
  assert.equal(created.status, 200, JSON.stringify(created.body));
  const newIds = created.body.plan.charges.map((c) => c.lago_id);
  assert.equal(newIds.length, 2);
  for (const id of newIds) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.ok(!newIds.includes(first) && newIds[0] !== newIds[1], newIds.join(' '));
});

test('a minimum commitment keeps its id and what an update does not send', async () => {
  const made = await call('POST', '/api/v1/plans', plan('commit', [], { minimum_commitment: { amount_cents: 5000, invoice_display_name: 'Min', tax_codes: ['vat'], lago_id: '33333333-3333-4333-8333-333333333333' } }));
  assert.equal(made.status, 200, JSON.stringify(made.body));
  const id = made.body.plan.minimum_commitment.lago_id;
  assert.notEqual(id, '33333333-3333-4333-8333-333333333333'); // a new plan's commitment is new
  const renamed = await call('PUT', '/api/v1/plans/commit', { plan: { name: 'Commit' } });
  assert.equal(renamed.body.plan.minimum_commitment.lago_id, id);
  const raised = await call('PUT', '/api/v1/plans/commit', { plan: { minimum_commitment: { amount_cents: 6000 } } });
  assert.equal(raised.status, 200, JSON.stringify(raised.body));
  const mc = raised.body.plan.minimum_commitment;
  assert.deepEqual([mc.lago_id, mc.amount_cents, mc.invoice_display_name, mc.tax_codes], [id, 6000, 'Min', ['vat']]);
  // Found by an audit: null removed the commitment and {} kept it, the opposite of Lago's
  // Plans::UpdateService (`if params[:minimum_commitment]`, then `destroy! if params.blank?`):
  // null is not sent (kept), {} removes it.
  const kept = await call('PUT', '/api/v1/plans/commit', { plan: { name: 'Commit2', minimum_commitment: null } });
  assert.equal(kept.status, 200, JSON.stringify(kept.body));
  assert.deepEqual([kept.body.plan.name, kept.body.plan.minimum_commitment.lago_id, kept.body.plan.minimum_commitment.amount_cents], ['Commit2', id, 6000]);
  const removed = await call('PUT', '/api/v1/plans/commit', { plan: { minimum_commitment: {} } });
  assert.equal(removed.status, 200, JSON.stringify(removed.body));
  assert.equal('minimum_commitment' in removed.body.plan, false);
  assert.equal('minimum_commitment' in (await call('GET', '/api/v1/plans/commit')).body.plan, false);
  const again = await call('PUT', '/api/v1/plans/commit', { plan: { minimum_commitment: { amount_cents: 100, lago_id: '33333333-3333-4333-8333-333333333333' } } });
  assert.notEqual(again.body.plan.minimum_commitment.lago_id, id);
  assert.notEqual(again.body.plan.minimum_commitment.lago_id, '33333333-3333-4333-8333-333333333333');
});

// Found by an audit: a commitment of 0 was taken; Lago's Commitment validates amount_cents
// greater_than 0, which its locale answers value_is_out_of_range.
test('a minimum commitment of 0 is refused, on create and on update', async () => {
  let r = await call('POST', '/api/v1/plans', plan('commit_zero', [], { minimum_commitment: { amount_cents: 0 } }));
  assert.deepEqual([r.status, r.body.error_details], [422, { amount_cents: ['value_is_out_of_range'] }]);
  r = await call('POST', '/api/v1/plans', plan('commit_zero', [], { minimum_commitment: { amount_cents: 1 } }));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  r = await call('PUT', '/api/v1/plans/commit_zero', { plan: { minimum_commitment: { amount_cents: 0 } } });
  assert.deepEqual([r.status, r.body.error_details], [422, { amount_cents: ['value_is_out_of_range'] }]);
});

// Found by an audit: a plan without a commitment answered "minimum_commitment": null, where
// Lago's V1::PlanSerializer leaves the key out (the OpenAPI PlanObject has no null there).
test('a plan without a minimum commitment answers no minimum_commitment key', async () => {
  for (const extra of [{}, { minimum_commitment: null }, { minimum_commitment: {} }]) {
    const r = await call('POST', '/api/v1/plans', plan('no_commit', [], extra));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal('minimum_commitment' in r.body.plan, false, JSON.stringify(extra));
    assert.equal('minimum_commitment' in (await call('GET', '/api/v1/plans/no_commit')).body.plan, false);
    assert.equal((await call('DELETE', '/api/v1/plans/no_commit')).status, 200);
  }
});

// Found by an audit with Lago's client: the commitment named its tax_codes but answered no
// taxes, while Lago's CommitmentSerializer (with the plan's taxes included) answers full tax
// objects there, and Lago has no tax_codes on it: a client had no tax to read.
test('a minimum commitment answers its taxes as full objects, in the plan and in a subscription\'s', async () => {
  // nested, a tax answers without its usage counts (docs/API.md)
  const { add_ons_count, customers_count, plans_count, charges_count, commitments_count, ...vat } = (await call('GET', '/api/v1/taxes/vat')).body.tax;
  assert.equal(typeof add_ons_count + typeof customers_count + typeof plans_count + typeof charges_count + typeof commitments_count, 'number'.repeat(5));
  const made = await call('POST', '/api/v1/plans', plan('commit_taxed', [], { tax_codes: ['vat'], minimum_commitment: { amount_cents: 5000, tax_codes: ['vat'] } }));
  assert.equal(made.status, 200, JSON.stringify(made.body));
  assert.deepEqual(made.body.plan.minimum_commitment.taxes, [vat]);
  assert.deepEqual(made.body.plan.minimum_commitment.taxes, made.body.plan.taxes);
  assert.deepEqual((await call('GET', '/api/v1/plans/commit_taxed')).body.plan.minimum_commitment.taxes, [vat]);
  const sub = await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'commit_cus', plan_code: 'commit_taxed', external_id: 'commit_sub' } });
  assert.equal(sub.status, 200, JSON.stringify(sub.body));
  assert.deepEqual(sub.body.subscription.plan.minimum_commitment.taxes, [vat]);
  // one without tax codes answers an empty list, as Lago's empty collection
  const bare = await call('PUT', '/api/v1/plans/commit_taxed', { plan: { minimum_commitment: { tax_codes: [] } } });
  assert.deepEqual(bare.body.plan.minimum_commitment.taxes, []);
});

// Found by an audit with Lago's client: a plan made without trial_period answered 0.0, while
// Lago's plans.trial_period has no default (Plans::CreateService stores what is sent, its
// serializer answers it): no trial configured could not be told from a trial of 0 days.
test('trial_period is null unless sent; an update keeps it, sets it, or clears it with null', async () => {
  let r = await call('POST', '/api/v1/plans', plan('no_trial', []));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.plan.trial_period, null);
  assert.equal((await call('GET', '/api/v1/plans/no_trial')).body.plan.trial_period, null);
  r = await call('PUT', '/api/v1/plans/no_trial', { plan: { name: 'No trial' } });
  assert.deepEqual([r.status, r.body.plan.trial_period], [200, null]);
  r = await call('PUT', '/api/v1/plans/no_trial', { plan: { trial_period: 3.5 } });
  assert.equal(r.body.plan.trial_period, 3.5);
  r = await call('PUT', '/api/v1/plans/no_trial', { plan: { trial_period: null } });
  assert.deepEqual([r.status, r.body.plan.trial_period], [200, null]);
  r = await call('POST', '/api/v1/plans', plan('zero_trial', [], { trial_period: 0 }));
  assert.equal(r.body.plan.trial_period, 0);
});

test('grouped charges: pricing_group_keys and grouped_by are kept, checked and bounded', async () => {
  for (const key of ['pricing_group_keys', 'grouped_by']) {
    const r = await call('POST', '/api/v1/plans', plan(`grouped_${key}`, [charge('calls', 'package', { amount: '10', package_size: 100, free_units: 0, [key]: ['team', 'region'] })]));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.plan.charges[0].properties, { amount: '10', package_size: 100, free_units: 0, [key]: ['team', 'region'] });
    assert.deepEqual((await call('GET', `/api/v1/plans/grouped_${key}`)).body.plan, r.body.plan);
  }
  // a filter's properties carry their own keys (Lago groups within filters)
  const f = await call('POST', '/api/v1/plans', plan('grouped_filter', [charge('tokens', 'standard', { amount: '1' }, { filters: [{ values: { model: ['small'] }, properties: { amount: '2', pricing_group_keys: ['team'] } }] })]));
  assert.equal(f.status, 200, JSON.stringify(f.body));
  assert.deepEqual(f.body.plan.charges[0].filters[0].properties, { amount: '2', pricing_group_keys: ['team'] });
  // Lago's check: an array of non-empty strings, else invalid_type under the name given
  for (const [key, value, code] of [
    ['pricing_group_keys', 'team', 'invalid_type'],
    ['grouped_by', [1], 'invalid_type'],
    ['pricing_group_keys', [' '], 'invalid_type'],
    ['pricing_group_keys', ['team', '\u3000'], 'invalid_type'],
    ['pricing_group_keys', Array.from({ length: 11 }, (_, i) => `k${i}`), 'too_many_group_keys'],
    ['pricing_group_keys', ['x'.repeat(256)], 'value_is_too_long'],
    ['pricing_group_keys', ['team', 'team'], 'value_is_duplicated'],
  ]) {
    const r = await call('POST', '/api/v1/plans', plan('grouped_bad', [charge('calls', 'standard', { amount: '1', [key]: value })]));
    assert.equal(r.status, 422, JSON.stringify(r.body));
    assert.deepEqual(r.body.error_details, { [key]: [code] });
  }
  assert.equal((await call('GET', '/api/v1/plans/grouped_bad')).status, 404);
  // ten keys of 255 bytes are within the limits
  const ten = await call('POST', '/api/v1/plans', plan('grouped_ten', [charge('calls', 'standard', { amount: '1', pricing_group_keys: Array.from({ length: 10 }, (_, i) => `${i}`.padEnd(255, 'k')) })]));
  assert.equal(ten.status, 200, JSON.stringify(ten.body));
  // an empty list groups nothing (Lago's clients send it)
  const r = await call('POST', '/api/v1/plans', plan('grouped_none', [charge('calls', 'standard', { amount: '1', pricing_group_keys: [] })]));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  // An audit found empty keys refused with invalid_type: Lago's
  // ChargeModels::FilterProperties::BaseService drops them (reject(&:empty?)) before its
  // validator sees the list, so ["team", ""] is ["team"] and [""] groups nothing. A key of only
  // white space is still refused there (its validator wants each key present?).
  const dropped = await call('POST', '/api/v1/plans', plan('grouped_dropped', [charge('calls', 'standard', { amount: '1', pricing_group_keys: ['team', ''] }),
    charge('tokens', 'standard', { amount: '1' }, { filters: [{ values: { model: ['small'] }, properties: { amount: '2', grouped_by: ['', 'team'] } }] })]));
  assert.equal(dropped.status, 200, JSON.stringify(dropped.body));
  assert.deepEqual(dropped.body.plan.charges[0].properties, { amount: '1', pricing_group_keys: ['team'] });
  assert.deepEqual(dropped.body.plan.charges[1].filters[0].properties, { amount: '2', grouped_by: ['team'] });
  const empty = await call('POST', '/api/v1/plans', plan('grouped_empty', [charge('calls', 'standard', { amount: '1', pricing_group_keys: [''] })]));
  assert.equal(empty.status, 200, JSON.stringify(empty.body));
  assert.deepEqual(empty.body.plan.charges[0].properties, { amount: '1' });
  // Lago decides on grouped_by before it drops empty keys: [""] is not blank, so it wins over
  // grouped_by and groups nothing; [] is blank, so grouped_by's keys are taken (under both names)
  const notBlank = await call('POST', '/api/v1/plans', plan('grouped_not_blank', [charge('calls', 'standard', { amount: '1', pricing_group_keys: [''], grouped_by: ['team'] })]));
  assert.equal(notBlank.status, 200, JSON.stringify(notBlank.body));
  assert.deepEqual(notBlank.body.plan.charges[0].properties, { amount: '1' });
  const blank = await call('POST', '/api/v1/plans', plan('grouped_blank', [charge('calls', 'standard', { amount: '1', pricing_group_keys: [], grouped_by: ['team'] })]));
  assert.equal(blank.status, 200, JSON.stringify(blank.body));
  assert.deepEqual(blank.body.plan.charges[0].properties, { amount: '1', pricing_group_keys: ['team'], grouped_by: ['team'] });
  assert.deepEqual((await call('GET', '/api/v1/plans/grouped_blank')).body.plan, blank.body.plan);
});

// Lago features Tally does not serve yet are refused where they are set, not taken with a 200
// and ignored: a plan's fixed_charges and usage_thresholds (progressive billing), and a
// subscription's usage_thresholds and activation_rules. Found by an audit: they were accepted
// and dropped, so a client configuring progressive billing got none, with no signal. Nothing
// (null, an empty list) is nothing to ignore, and is taken.
test('fixed charges, usage thresholds and activation rules are refused, not ignored', async () => {
  const refusedWith = (r, field) => {
    assert.equal(r.status, 422, JSON.stringify(r.body));
    assert.deepEqual(r.body.error_details, { [field]: ['not_supported'] });
  };
  refusedWith(await call('POST', '/api/v1/plans', plan('thresholds', [], { usage_thresholds: [{ amount_cents: 10000, recurring: false }] })), 'usage_thresholds');
  refusedWith(await call('POST', '/api/v1/plans', plan('fixed', [], { fixed_charges: [{ add_on_id: 'x', units: '1' }] })), 'fixed_charges');
  assert.equal((await call('GET', '/api/v1/plans/thresholds')).status, 404);
  const made = await call('POST', '/api/v1/plans', plan('plain', [], { usage_thresholds: [], fixed_charges: null }));
  assert.equal(made.status, 200, JSON.stringify(made.body));
  refusedWith(await call('PUT', '/api/v1/plans/plain', { plan: { usage_thresholds: [{ amount_cents: 5000 }] } }), 'usage_thresholds');
  // cascading a plan's edits into subscriptions' own plans (audit: 200, and nothing cascaded)
  refusedWith(await call('PUT', '/api/v1/plans/plain', { plan: { amount_cents: 1200, cascade_updates: true } }), 'cascade_updates');
  assert.equal((await call('GET', '/api/v1/plans/plain')).body.plan.amount_cents, 1000);
  assert.equal((await call('PUT', '/api/v1/plans/plain', { plan: { amount_cents: 1000, cascade_updates: false } })).status, 200);
  const sub = { external_customer_id: 'thresholds', plan_code: 'plain', external_id: 'thresholds_sub' };
  refusedWith(await call('POST', '/api/v1/subscriptions', { subscription: { ...sub, usage_thresholds: [{ amount_cents: 5000 }] } }), 'usage_thresholds');
  refusedWith(await call('POST', '/api/v1/subscriptions', { subscription: { ...sub, activation_rules: [{ type: 'payment' }] } }), 'activation_rules');
  assert.equal((await call('GET', '/api/v1/subscriptions/thresholds_sub')).status, 404);
  assert.equal((await call('POST', '/api/v1/subscriptions', { subscription: sub })).status, 200);
  refusedWith(await call('PUT', '/api/v1/subscriptions/thresholds_sub', { subscription: { usage_thresholds: [{ amount_cents: 5000 }] } }), 'usage_thresholds');
});

// An audit asked whether range bounds that are not integers (Lago's OpenAPI types them
// `integer`) should be refused. Lago's own validator and charge models take them (its
// graduated_service_spec.rb "with decimal adjacent ranges"), and fractional units (GB, hours)
// need them: Tally takes them too, answers them exactly, and refuses only a gap or an overlap.
test('range bounds may be decimals, as Lago\'s validator takes them; a gap between them is refused', async () => {
  const ranges = [
    { from_value: 0, to_value: 10.5, per_unit_amount: '1', flat_amount: '0' },
    { from_value: 10.5, to_value: null, per_unit_amount: '2', flat_amount: '0' },
  ];
  let r = await call('POST', '/api/v1/plans', plan('dec_bounds', [charge('tokens', 'graduated', { graduated_ranges: ranges })]));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.plan.charges[0].properties.graduated_ranges.map((g) => [g.from_value, g.to_value]), [[0, 10.5], [10.5, null]]);
  r = await call('POST', '/api/v1/plans', plan('dec_gap', [charge('tokens', 'graduated', { graduated_ranges: [ranges[0], { ...ranges[1], from_value: 11 }] })]));
  assert.deepEqual(r.body.error_details, { properties: ['invalid_graduated_ranges'] });
});

// Kept on purpose (docs/API.md, Where Tally differs): Lago's newest RangeBoundsValidator takes
// `from == next || from == next + 1`, so it also takes a first range from 1 and a volume range
// from the previous to_value + 2; Tally refuses both (a hole no range covers).
test('a first range from 1, and a volume range two past the previous end, are refused', async () => {
  const tier = (from_value, to_value, key = 'per_unit_amount') => ({ from_value, to_value, [key]: '1', flat_amount: '0' });
  for (const [model, key, props, code] of [
    ['graduated', 'graduated_ranges', [tier(1, 10), tier(11, null)], 'invalid_graduated_ranges'],
    ['volume', 'volume_ranges', [tier(1, 10), tier(11, null)], 'invalid_volume_ranges'],
    ['graduated_percentage', 'graduated_percentage_ranges', [tier(1, 10, 'rate'), tier(11, null, 'rate')], 'invalid_graduated_percentage_ranges'],
    ['volume', 'volume_ranges', [tier(0, 10), tier(12, null)], 'invalid_volume_ranges'],
  ]) {
    const r = await call('POST', '/api/v1/plans', plan('kept_bounds', [charge('tokens', model, { [key]: props })]));
    assert.deepEqual(r.body.error_details, { properties: [code] }, `${model} ${JSON.stringify(props)}`);
  }
  // what both take: volume one past the previous end, graduated touching or one past
  for (const [model, key, props] of [['volume', 'volume_ranges', [tier(0, 10), tier(11, null)]], ['graduated', 'graduated_ranges', [tier(0, 10), tier(10, null)]]]) {
    const r = await call('POST', '/api/v1/plans', plan(`both_${model}`, [charge('tokens', model, { [key]: props })]));
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
});

// An audit found a graduated charge whose first tier's flat_amount has 37 digits accepted: its
// fee at zero units cannot be counted in cents (int64), so every current usage of a
// subscription to the plan was 422 amount_out_of_range, even with no events. A charge (or a
// charge filter) whose fee without any usage does not fit is refused where it is set; one
// whose large price only a usage reaches (a per-unit amount) is taken, the event that would
// overflow being refused then.
test('a charge whose fee at zero units cannot be counted in cents is refused', async () => {
  const tiers = (flat) => ({ graduated_ranges: [{ from_value: 0, to_value: null, per_unit_amount: '1', flat_amount: flat }] });
  for (const c of [charge('tokens', 'graduated', tiers('9'.repeat(37))),
    charge('tokens', 'graduated', tiers('0'), { filters: [{ values: { model: ['small'] }, properties: tiers('1e20') }] }),
    charge('tokens', 'volume', { volume_ranges: [{ from_value: 0, to_value: null, per_unit_amount: '1', flat_amount: '1e17' }] })]) {
    const r = await call('POST', '/api/v1/plans', plan('unpriceable', [c]));
    assert.equal(r.status, 422, JSON.stringify(c));
    assert.deepEqual(r.body.error_details, { properties: ['amount_out_of_range'] });
    assert.match(r.body.message, /cents/);
  }
  assert.equal((await call('GET', '/api/v1/plans/unpriceable')).status, 404);
  // just within int64 cents (92,233,720,368,547,758.07 USD), and a 35-digit per-unit amount
  const fits = await call('POST', '/api/v1/plans', plan('priceable', [charge('tokens', 'graduated', tiers('92233720368547758.07')), charge('calls', 'standard', { amount: '9'.repeat(35) })]));
  assert.equal(fits.status, 200, JSON.stringify(fits.body));
  // an update is checked as a create
  const up = await call('PUT', '/api/v1/plans/priceable', { plan: { charges: [charge('tokens', 'graduated', tiers('92233720368547758.08'))] } });
  assert.deepEqual([up.status, up.body.error_details], [422, { properties: ['amount_out_of_range'] }]);
});
