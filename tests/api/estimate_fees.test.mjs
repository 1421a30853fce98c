// POST /events/estimate_fees: what one more event would cost under the pay-in-advance
// charges, fee(after) - fee(before), computed from the live aggregates and changing nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
before(async () => {
  t = await startWithOrg(['--test-clock', '2026-05-10T00:00:00Z']);
  const post = async (path, body) => (await t.api(path, { method: 'POST', body })).json();
  const calls = (await post('/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' } })).billable_metric;
  const gb = (await post('/api/v1/billable_metrics', { billable_metric: { code: 'gb', name: 'GB', aggregation_type: 'sum_agg', field_name: 'gb', filters: [{ key: 'region', values: ['eu', 'us'] }] } })).billable_metric;
  const seats = (await post('/api/v1/billable_metrics', { billable_metric: { code: 'seats', name: 'Seats', aggregation_type: 'unique_count_agg', field_name: 'user' } })).billable_metric;
  const later = (await post('/api/v1/billable_metrics', { billable_metric: { code: 'later', name: 'Later', aggregation_type: 'count_agg' } })).billable_metric;
  await post('/api/v1/taxes', { tax: { code: 'vat', name: 'VAT', rate: 10 } });
  await post('/api/v1/plans', { plan: { code: 'instant', name: 'Instant', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', tax_codes: ['vat'], charges: [
    { billable_metric_id: calls.lago_id, charge_model: 'package', pay_in_advance: true, properties: { amount: '5', package_size: 10, free_units: 0 } },
    { billable_metric_id: gb.lago_id, charge_model: 'standard', pay_in_advance: true, properties: { amount: '0.5' }, filters: [{ invoice_display_name: 'EU', properties: { amount: '0.75' }, values: { region: ['eu'] } }] },
    { billable_metric_id: seats.lago_id, charge_model: 'standard', pay_in_advance: true, properties: { amount: '12' } },
    { billable_metric_id: later.lago_id, charge_model: 'standard', properties: { amount: '1' } },
  ] } });
  await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'cust', plan_code: 'instant', external_id: 'sub' } });
});
after(async () => { await t.cleanup(); });

let n = 0;
const estimate = async (code, properties = {}) => {
  const r = await t.api('/api/v1/events/estimate_fees', { method: 'POST', body: { event: { external_subscription_id: 'sub', code, properties } } });
  return { status: r.status, body: await r.json() };
};
// POST that must answer 200; its body
const post = async (path, body) => {
  const r = await t.api(path, { method: 'POST', body });
  const b = await r.json();
  assert.equal(r.status, 200, JSON.stringify(b));
  return b;
};
const send = (code, properties = {}) => t.api('/api/v1/events', { method: 'POST', body: { event: { transaction_id: `x${n++}`, external_subscription_id: 'sub', code, properties } } });

test('a package charge bills the event that opens a new package', async () => {
  let r = await estimate('calls');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.fees.length, 1);
  const fee = r.body.fees[0];
  assert.equal(fee.amount_cents, 500); // the first call opens the first package
  assert.equal(fee.taxes_amount_cents, 50);
  assert.equal(fee.total_amount_cents, 550);
  assert.equal(fee.units, '1.0');
  assert.equal(fee.events_count, 1);
  assert.equal(fee.lago_id, null);
  assert.equal(fee.item.code, 'calls');
  // the rest of the fields Lago's FeeObject requires, with their types
  assert.equal(fee.item.item_type, 'BillableMetric');
  assert.equal(fee.item.type, 'charge');
  assert.equal(typeof fee.taxes_rate, 'number');
  assert.equal(fee.total_amount_currency, fee.amount_currency);
  assert.equal(fee.total_aggregated_units, '1.0');
  assert.equal(fee.precise_unit_amount, '5.0');
  assert.equal(fee.sub_total_excluding_taxes_amount_cents, 500);
  assert.equal(fee.sub_total_excluding_taxes_precise_amount_cents, '500.0');
  for (let i = 0; i < 3; i++) await send('calls');
  r = await estimate('calls');
  assert.equal(r.body.fees[0].amount_cents, 0); // the 4th call is inside the paid package
  for (let i = 0; i < 7; i++) await send('calls'); // 10 sent: the first package is full
  r = await estimate('calls');
  assert.equal(r.body.fees[0].amount_cents, 500); // the 11th opens the second
});

test('a sum with filters, and a unique count that knows who is already counted', async () => {
  let r = await estimate('gb', { gb: 4, region: 'eu' });
  assert.equal(r.body.fees[0].amount_cents, 300);
  assert.equal(r.body.fees[0].item.filter_invoice_display_name, 'EU');
  r = await estimate('gb', { gb: 4, region: 'asia' });
  assert.equal(r.body.fees[0].amount_cents, 200);
  assert.equal(r.body.fees[0].units, '4.0');
  await send('seats', { user: 'ann' });
  r = await estimate('seats', { user: 'ann' });
  assert.equal(r.body.fees[0].amount_cents, 0);
  r = await estimate('seats', { user: 'bob' });
  assert.equal(r.body.fees[0].amount_cents, 1200);
});

test('estimates change nothing', async () => {
  const usage = async () => (await (await t.api('/api/v1/customers/cust/current_usage?external_subscription_id=sub')).json()).customer_usage;
  const before = await usage();
  for (let i = 0; i < 5; i++) await estimate('calls');
  assert.deepEqual(await usage(), before);
});

test('errors: no instant charge, unknown metric or subscription', async () => {
  let r = await estimate('later');
  assert.deepEqual(r.body.error_details, { code: ['does_not_match_an_instant_charge'] });
  r = await estimate('nope');
  assert.deepEqual(r.body, { status: 404, error: 'Not Found', code: 'billable_metric_not_found' });
  r = await t.api('/api/v1/events/estimate_fees', { method: 'POST', body: { event: { external_subscription_id: 'nobody', code: 'calls' } } });
  assert.deepEqual(await r.json(), { status: 404, error: 'Not Found', code: 'subscription_not_found' });
});

// Found by an audit: estimate_fees never read its timestamp, so "garbage" was estimated where
// Lago answers invalid_format; a good one is taken (the estimate prices now), and an object is
// none, as Lago's permit drops it. The limits on properties say themselves.
test('estimate_fees checks the form of its timestamp; a property past its limit is refused with the limit named', async () => {
  const est = async (event) => {
    const r = await t.api('/api/v1/events/estimate_fees', { method: 'POST', body: { event: { external_subscription_id: 'sub', code: 'calls', ...event } } });
    return { status: r.status, body: await r.json() };
  };
  let r = await est({ timestamp: 'garbage' });
  assert.deepEqual([r.status, r.body.error_details], [422, { timestamp: ['invalid_format'] }]);
  for (const timestamp of [1767225600, '1767225600.5', {}, [1], null])
    assert.equal((await est({ timestamp })).status, 200, JSON.stringify(timestamp));
  const many = Object.fromEntries(Array.from({ length: 129 }, (_, i) => [`k${i}`, i]));
  r = await est({ properties: many });
  assert.deepEqual([r.status, r.body.error_details, r.body.message], [422, { properties: ['too_many_items'] }, 'properties holds at most 128 keys']);
  const ev = await t.api('/api/v1/events', { method: 'POST', body: { event: { transaction_id: 'too_long', external_subscription_id: 'sub', code: 'calls', properties: { note: 'x'.repeat(5000) } } } });
  const body = await ev.json();
  assert.deepEqual([ev.status, body.error_details], [422, { properties: ['value_is_too_long'] }]);
  assert.match(body.message, /4096 bytes/);
});

test('a graduated charge with a flat amount: each estimate is what the event then debits', async () => {
  const gpu = (await post('/api/v1/billable_metrics', { billable_metric: { code: 'gpu', name: 'GPU', aggregation_type: 'sum_agg', field_name: 'hours' } })).billable_metric;
  await post('/api/v1/plans', { plan: { code: 'tiers', name: 'Tiers', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', tax_codes: ['vat'], charges: [
    { billable_metric_id: gpu.lago_id, charge_model: 'graduated', pay_in_advance: true, properties: { graduated_ranges: [
      { from_value: 0, to_value: 2, per_unit_amount: '1', flat_amount: '1' },
      { from_value: 2, to_value: null, per_unit_amount: '0.5', flat_amount: '0' }] } },
    { billable_metric_id: (await post('/api/v1/billable_metrics', { billable_metric: { code: 'jobs', name: 'Jobs', aggregation_type: 'count_agg' } })).billable_metric.lago_id,
      charge_model: 'standard', pay_in_advance: true, properties: { amount: '1' } }] } });
  await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'tiers', plan_code: 'tiers', external_id: 'tiers_sub' } });
  const wallet = (await post('/api/v1/wallets', { wallet: { external_customer_id: 'tiers', currency: 'EUR', rate_amount: '1', granted_credits: '100' } })).wallet;
  const balance = async () => (await (await t.api(`/api/v1/wallets/${wallet.lago_id}`)).json()).wallet.balance_cents;
  // another charge's event brings the gpu charge nothing: its flat amount waits for its own
  await post('/api/v1/events', { event: { transaction_id: 'job0', external_subscription_id: 'tiers_sub', code: 'jobs' } });
  assert.equal(await balance(), 10000 - 110);
  // fee(1) = 1 x 1 + the first tier's flat 1; fee(2) = 3; fee(3) = 3.5; then 3.55 (355
  // cents, VAT 35.5 -> 36) and 3.6 (VAT 36): the debit is the change of fee and rounded VAT
  const expected = [[1, 200, 20], [1, 100, 10], [1, 50, 5], [0.1, 5, 1], [0.1, 5, 0]];
  let i = 0;
  for (const [hours, amount, taxes] of expected) {
    const r = await t.api('/api/v1/events/estimate_fees', { method: 'POST', body: { event: { external_subscription_id: 'tiers_sub', code: 'gpu', properties: { hours } } } });
    const fee = (await r.json()).fees[0];
    assert.deepEqual([fee.amount_cents, fee.taxes_amount_cents, fee.total_amount_cents], [amount, taxes, amount + taxes], `event ${i}`);
    const before = await balance();
    await post('/api/v1/events', { event: { transaction_id: `tier${i++}`, external_subscription_id: 'tiers_sub', code: 'gpu', properties: { hours } } });
    assert.equal(before - await balance(), fee.total_amount_cents, `event ${i - 1}: estimated ${fee.total_amount_cents}`);
  }
  assert.equal(await balance(), 10000 - 110 - 220 - 110 - 55 - 6 - 5);
});

// Found by a black-box audit: the first event of a period was estimated (and held) at its full
// percentage, free units ignored, while the event itself was then priced with them.
test('a percentage charge with free units: the estimate, a hold and the debit agree from the first event', async () => {
  const tokens = (await post('/api/v1/billable_metrics', { billable_metric: { code: 'pct', name: 'Pct', aggregation_type: 'sum_agg', field_name: 'v' } })).billable_metric;
  const plans = [['free_events', { rate: '10', free_units_per_events: 2 }], ['free_total', { rate: '10', free_units_per_total_aggregation: '1.0' }]];
  for (const [code, properties] of plans) {
    await post('/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [
      { billable_metric_id: tokens.lago_id, charge_model: 'percentage', pay_in_advance: true, properties }] } });
    await post('/api/v1/subscriptions', { subscription: { external_customer_id: code, plan_code: code, external_id: code } });
  }
  // free_events: the first two events are free, the third pays 10% of 2; free_total: the first
  // unit is free, so 10% of 5.24, then of 3, then of 2
  const expected = { free_events: [0, 0, 20], free_total: [52, 30, 20] };
  for (const [code] of plans) {
    const wallet = (await post('/api/v1/wallets', { wallet: { external_customer_id: code, currency: 'EUR', rate_amount: '1', granted_credits: '100' } })).wallet;
    const balance = async () => (await (await t.api(`/api/v1/wallets/${wallet.lago_id}`)).json()).wallet.balance_cents;
    let i = 0;
    for (const v of ['6.24', '3', '2']) {
      const event = { external_subscription_id: code, code: 'pct', properties: { v } };
      const fee = (await post('/api/v1/events/estimate_fees', { event })).fees[0];
      assert.equal(fee.amount_cents, expected[code][i], `${code} event ${i}: estimate`);
      const hold = (await post('/api/v1/authorizations', { authorization: { ...event, expires_in: 60 } })).authorization;
      assert.equal(hold.amount_cents, expected[code][i], `${code} event ${i}: hold`);
      await post(`/api/v1/authorizations/${hold.lago_id}/void`, {});
      const before = await balance();
      await post('/api/v1/events', { event: { ...event, transaction_id: `${code}${i}` } });
      assert.equal(before - await balance(), expected[code][i], `${code} event ${i}: debit`);
      i++;
    }
  }
});

test('a percentage charge on a rounded metric: the event value the estimate adds is its own, not the rounding\'s', async () => {
  const m = (await post('/api/v1/billable_metrics', { billable_metric: { code: 'ceiled', name: 'Ceiled', aggregation_type: 'sum_agg', field_name: 'v', rounding_function: 'ceil', rounding_precision: 0 } })).billable_metric;
  await post('/api/v1/plans', { plan: { code: 'ceiled', name: 'Ceiled', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [
    { billable_metric_id: m.lago_id, charge_model: 'percentage', pay_in_advance: true, properties: { rate: '10', free_units_per_total_aggregation: '10' } }] } });
  await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'ceiled', plan_code: 'ceiled', external_id: 'ceiled' } });
  const usage = async () => (await (await t.api('/api/v1/customers/ceiled/current_usage?external_subscription_id=ceiled')).json()).customer_usage.amount_cents;
  const event = { external_subscription_id: 'ceiled', code: 'ceiled', properties: { v: '1.5' } };
  // 1.5 is 2 units and 1.5 of them free: 5 cents; 3.0 is 3 units, all free: 0
  for (const [i, change] of [[0, 5], [1, -5]]) {
    const fee = (await post('/api/v1/events/estimate_fees', { event })).fees[0];
    const before = await usage();
    await post('/api/v1/events', { event: { ...event, transaction_id: `ceiled${i}` } });
    assert.equal(await usage() - before, change, `event ${i}: usage`);
    assert.equal(fee.amount_cents, change, `event ${i}: estimate`);
  }
});

test('estimate_instant_fees and its batch: standard and percentage charges only, each event alone, its transaction id echoed', async () => {
  const instant = async (path, body) => {
    const r = await t.api(`/api/v1/events/${path}`, { method: 'POST', body });
    return { status: r.status, body: await r.json() };
  };
  // gb is standard (instant); calls is a package charge (not an instant estimate's)
  let r = await instant('estimate_instant_fees', { event: { external_subscription_id: 'sub', code: 'gb', transaction_id: 'tx-1', properties: { gb: 4, region: 'eu' } } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.fees.length, 1);
  const full = (await estimate('gb', { gb: 4, region: 'eu' })).body.fees[0];
  const { event_transaction_id, precise_unit_amount, precise_amount, precise_total_amount, taxes_precise_amount, amount_details,
    taxes_amount_cents, taxes_rate, total_amount_cents, ...rest } = r.body.fees[0];
  assert.equal(event_transaction_id, 'tx-1');
  const { precise_unit_amount: unitText, applied_taxes, event_transaction_id: none, precise_amount: amountText,
    precise_total_amount: totalText, taxes_precise_amount: taxesText, amount_details: details,
    taxes_amount_cents: fullTaxes, taxes_rate: fullRate, total_amount_cents: fullTotal, ...fullRest } = full;
  assert.deepEqual(rest, fullRest); // the same fee estimate_fees gives, without applied_taxes (not in Lago's FeeEstimateObject)
  assert.equal(none, null); // estimate_fees takes no transaction id
  assert.equal(applied_taxes.length, 1);
  // numbers in Lago's FeeEstimateObject, decimal strings in its FeeObject; the unit amount in
  // cents a unit there (Lago's unit_amount_cents, Fees::EstimateInstant::BaseService), in the
  // currency's units in the FeeObject
  assert.deepEqual([precise_unit_amount, unitText], [75, '0.75']);
  // Lago's instant estimate carries no taxes (taxes 0, total = amount); estimate_fees does
  assert.deepEqual([taxes_amount_cents, taxes_rate, total_amount_cents], [0, 0, 300]);
  assert.deepEqual([fullTaxes, fullRate, fullTotal], [30, 10, 330]);
  assert.deepEqual([precise_amount, precise_total_amount, taxes_precise_amount], [3, 3, 0]);
  assert.deepEqual([amountText, totalText, taxesText], ['3.0', '3.3', '0.3']);
  assert.deepEqual([amount_details, details], [null, {}]); // as Lago's instant estimate and its serializer write them
  assert.equal(rest.lago_charge_filter_id, full.lago_charge_filter_id);
  assert.match(rest.lago_charge_filter_id, /^[0-9a-f-]{36}$/); // the eu filter priced it
  assert.equal(rest.amount_cents, 300); // 4 GB at 0.75 (the eu filter)
  assert.equal(rest.item.invoice_display_name, 'GB'); // Lago's fallback: the metric's name
  // an integer transaction_id is its decimal text, as POST /events takes it (an audit's)
  r = await instant('estimate_instant_fees', { event: { external_subscription_id: 'sub', code: 'gb', transaction_id: 31337, properties: { gb: 4, region: 'eu' } } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.fees[0].event_transaction_id, '31337');
  r = await instant('estimate_instant_fees', { event: { external_subscription_id: 'sub', code: 'calls' } });
  assert.equal(r.status, 422);
  assert.deepEqual(r.body.error_details, { code: ['does_not_match_an_instant_charge'] });
  // a batch: each event as if alone (the second gb is not priced after the first)
  r = await instant('batch_estimate_instant_fees', { events: [
    { external_subscription_id: 'sub', code: 'gb', transaction_id: 'b-1', properties: { gb: 2, region: 'us' } },
    { external_subscription_id: 'sub', code: 'gb', properties: { gb: 2, region: 'us' } },
    { external_subscription_id: 'sub', code: 'seats', transaction_id: 'b-3', properties: { user: 'new-user' } },
  ] });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.fees.map((f) => [f.event_transaction_id, f.item.code, f.amount_cents]), [['b-1', 'gb', 100], [null, 'gb', 100], ['b-3', 'seats', 1200]]);
  assert.deepEqual(r.body.fees.map((f) => [f.precise_unit_amount, f.taxes_amount_cents, f.total_amount_cents]), [[50, 0, 100], [50, 0, 100], [1200, 0, 1200]]);
  // an event that does not read is named by its index (here, properties that are no object)
  r = await instant('batch_estimate_instant_fees', { events: [{ external_subscription_id: 'sub', code: 'gb', properties: { gb: 1 } }, { external_subscription_id: 'sub', code: 'gb', properties: [1] }] });
  assert.equal(r.status, 422);
  assert.deepEqual(r.body.error_details, { 1: { properties: ['invalid_type'] } });
  assert.equal((await instant('batch_estimate_instant_fees', { event: {} })).status, 400);
  r = await instant('batch_estimate_instant_fees', { events: [{ external_subscription_id: 'nobody', code: 'gb' }] });
  assert.equal(r.status, 404);
});

test('applied_taxes: each tax the fee carries, with its share of the fee\'s taxes', async () => {
  const tokens = (await post('/api/v1/billable_metrics', { billable_metric: { code: 'tokens', name: 'Tokens', aggregation_type: 'sum_agg', field_name: 'n' } })).billable_metric;
  await post('/api/v1/taxes', { tax: { code: 'state', name: 'State tax', rate: '5.5', description: 'Levied by the state' } });
  await post('/api/v1/plans', { plan: { code: 'taxed', name: 'Taxed', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [
    { billable_metric_id: tokens.lago_id, charge_model: 'standard', pay_in_advance: true, properties: { amount: '3.37' }, tax_codes: ['vat', 'state'] },
  ] } });
  await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'taxed-cust', plan_code: 'taxed', external_id: 'taxed-sub' } });
  const estimateOn = async (sub) => {
    const r = await t.api('/api/v1/events/estimate_fees', { method: 'POST', body: { event: { external_subscription_id: sub, code: 'tokens', properties: { n: 1 } } } });
    const body = await r.json();
    assert.equal(r.status, 200, JSON.stringify(body));
    return body.fees[0];
  };
  let fee = await estimateOn('taxed-sub');
  const vat = (await (await t.api('/api/v1/taxes/vat')).json()).tax;
  // 3.37 at 15.5%: 52.235 rounds to 52, shared 10 : 5.5 (33.55 and 18.45: the larger remainder takes the cent)
  assert.deepEqual([fee.amount_cents, fee.taxes_amount_cents, fee.taxes_rate], [337, 52, 15.5]);
  assert.deepEqual(fee.applied_taxes, [
    { lago_id: null, lago_fee_id: null, lago_tax_id: vat.lago_id, tax_name: 'VAT', tax_code: 'vat', tax_rate: 10.0, tax_description: null, amount_cents: 34, amount_currency: 'EUR', created_at: null },
    { lago_id: null, lago_fee_id: null, lago_tax_id: fee.applied_taxes[1].lago_tax_id, tax_name: 'State tax', tax_code: 'state', tax_rate: 5.5, tax_description: 'Levied by the state', amount_cents: 18, amount_currency: 'EUR', created_at: null },
  ]);
  assert.match(fee.applied_taxes[1].lago_tax_id, /^[0-9a-f-]{36}$/);
  // a charge without taxes of its own, on a plan without: the organization's default taxes, then none
  await post('/api/v1/plans', { plan: { code: 'untaxed', name: 'Untaxed', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [
    { billable_metric_id: tokens.lago_id, charge_model: 'standard', pay_in_advance: true, properties: { amount: '3.37' } },
  ] } });
  await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'taxed-cust', plan_code: 'untaxed', external_id: 'untaxed-sub' } });
  fee = await estimateOn('untaxed-sub');
  assert.deepEqual([fee.taxes_amount_cents, fee.applied_taxes], [0, []]);
  await post('/api/v1/taxes', { tax: { code: 'default', name: 'Default', rate: 20, applied_to_organization: true } });
  fee = await estimateOn('untaxed-sub');
  assert.deepEqual([fee.taxes_amount_cents, fee.applied_taxes.map((a) => [a.tax_code, a.amount_cents])], [67, [['default', 67]]]);
});

// Lago's estimate_fees renders V1::FeeSerializer: every member, null where an unsaved fee has
// none, and lago_charge_filter_id, the one member that tells which filter priced the event
// (filters have no code). An audit found them missing. A filter's id stays while the filter
// keeps its values (Lago's plan update keeps the filter whose values are the same), across a
// restart, whatever the order its keys are sent in.
test('estimate_fees: every member of Lago\'s fee, and the lago_id of the charge filter that priced the event', async () => {
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  const zone = (await post('/api/v1/billable_metrics', { billable_metric: { code: 'zone', name: 'Zone', description: 'Zoned storage', aggregation_type: 'sum_agg', field_name: 'gb',
    filters: [{ key: 'region', values: ['eu', 'us'] }, { key: 'tier', values: ['gold', 'basic'] }] } })).billable_metric;
  const charge = (filters) => ({ billable_metric_id: zone.lago_id, charge_model: 'standard', pay_in_advance: true, properties: { amount: '0.5' }, filters });
  const plan = (await post('/api/v1/plans', { plan: { code: 'zoned', name: 'Zoned', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', tax_codes: ['vat'], charges: [charge([
    { invoice_display_name: 'EU gold', properties: { amount: '0.75' }, values: { region: ['eu'], tier: ['gold'] } },
    { properties: { amount: '1' }, values: { region: ['us'] } },
  ])] } })).plan;
  await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'zoned', plan_code: 'zoned', external_id: 'zoned' } });
  const fee = async (properties) => (await post('/api/v1/events/estimate_fees', { event: { external_subscription_id: 'zoned', code: 'zone', properties } })).fees[0];
  const euGold = await fee({ gb: 4, region: 'eu', tier: 'gold' });
  const { item, applied_taxes, ...members } = euGold;
  assert.match(members.lago_charge_filter_id, uuid);
  assert.deepEqual(members, {
    lago_id: null, lago_charge_id: plan.charges[0].lago_id, lago_charge_filter_id: members.lago_charge_filter_id, lago_fixed_charge_id: null,
    lago_invoice_id: null, lago_true_up_fee_id: null, lago_true_up_parent_fee_id: null, lago_original_fee_id: null,
    lago_subscription_id: members.lago_subscription_id, external_subscription_id: 'zoned', lago_customer_id: members.lago_customer_id, external_customer_id: 'zoned',
    pay_in_advance: true, invoiceable: true, amount_cents: 300, amount_currency: 'EUR',
    // 4 GB at 0.75, VAT 10%: exact decimals in euros
    precise_amount: '3.0', precise_total_amount: '3.3', taxes_amount_cents: 30, taxes_precise_amount: '0.3', taxes_rate: 10,
    total_aggregated_units: '4.0', total_amount_cents: 330, total_amount_currency: 'EUR', units: '4.0', description: null,
    precise_unit_amount: '0.75', precise_coupons_amount_cents: '0.0',
    sub_total_excluding_taxes_amount_cents: 300, sub_total_excluding_taxes_precise_amount_cents: '300.0',
    events_count: 1, payment_status: 'pending', created_at: null, succeeded_at: null, failed_at: null, refunded_at: null,
    amount_details: {}, self_billed: false, pricing_unit_details: null, presentation_breakdowns: [],
    from_date: members.from_date, to_date: members.to_date, event_transaction_id: null,
  });
  assert.match(members.lago_subscription_id, uuid);
  assert.deepEqual(item, { type: 'charge', code: 'zone', name: 'Zone', description: 'Zoned storage', invoice_display_name: 'Zone',
    filters: { region: ['eu'], tier: ['gold'] }, filter_invoice_display_name: 'EU gold', lago_item_id: zone.lago_id, // Lago's item of a charge fee is its metric
    item_type: 'BillableMetric', grouped_by: {} });
  assert.equal(applied_taxes.length, 1);
  // each filter its own id; the default bucket none
  const us = await fee({ gb: 1, region: 'us', tier: 'basic' });
  assert.match(us.lago_charge_filter_id, uuid);
  assert.equal(us.item.filter_invoice_display_name, 'us'); // Lago's ChargeFilter#display_name: the values, without a name of its own
  assert.notEqual(us.lago_charge_filter_id, euGold.lago_charge_filter_id);
  const none = await fee({ gb: 1, region: 'eu', tier: 'basic' });
  assert.deepEqual([none.lago_charge_filter_id, none.item.filters, none.item.filter_invoice_display_name, none.amount_cents], [null, null, null, 50]);
  assert.equal((await estimate('calls')).body.fees[0].lago_charge_filter_id, null); // a charge without filters
  // the same filter keeps its id: again, after a restart, after a price change sent with its
  // keys in another order; one whose values change is another filter
  assert.equal((await fee({ gb: 1, region: 'eu', tier: 'gold' })).lago_charge_filter_id, euGold.lago_charge_filter_id);
  await t.restart();
  assert.equal((await fee({ gb: 1, region: 'eu', tier: 'gold' })).lago_charge_filter_id, euGold.lago_charge_filter_id);
  const r = await t.api('/api/v1/plans/zoned', { method: 'PUT', body: { plan: { charges: [{ id: plan.charges[0].lago_id, ...charge([
    { invoice_display_name: 'EU gold', properties: { amount: '0.8' }, values: { tier: ['gold'], region: ['eu'] } },
    { properties: { amount: '1' }, values: { region: ['us', 'eu'] } },
  ]) }] } } });
  assert.equal(r.status, 200, await r.text());
  const repriced = await fee({ gb: 1, region: 'eu', tier: 'gold' });
  assert.deepEqual([repriced.lago_charge_filter_id, repriced.amount_cents], [euGold.lago_charge_filter_id, 80]);
  const widened = await fee({ gb: 1, region: 'us', tier: 'basic' });
  assert.match(widened.lago_charge_filter_id, uuid);
  assert.notEqual(widened.lago_charge_filter_id, us.lago_charge_filter_id);
  assert.equal(widened.item.filter_invoice_display_name, 'us, eu');
});

// As current usage's to_datetime (an audit found it cut at an ending_at ahead): the charges'
// period's last second, as Lago's charge_pay_in_advance_interval takes charges_to_datetime,
// which an end not reached yet does not cut.
test('a subscription ending within the period: the fee\'s to_date is the period\'s end', async () => {
  await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'cust', plan_code: 'instant', external_id: 'ending', ending_at: '2026-05-20T00:00:00Z' } });
  const r = await t.api('/api/v1/events/estimate_fees', { method: 'POST', body: { event: { external_subscription_id: 'ending', code: 'calls' } } });
  const fee = (await r.json()).fees[0];
  assert.equal(r.status, 200);
  assert.deepEqual([fee.from_date, fee.to_date], ['2026-05-10T00:00:00Z', '2026-05-31T23:59:59Z']);
});
