// Current usage over real HTTP: every aggregation type fed by events and priced by its
// charge model the moment the events are acknowledged; filters; taxes; duplicates and refused
// batches count nothing; other periods' events do not count; restarts and SIGKILL rebuild it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
const metric = {};
before(async () => {
  t = await startWithOrg(['--test-clock', '2026-03-10T12:00:00Z']);
  const post = async (path, body) => (await t.api(path, { method: 'POST', body })).json();
  for (const bm of [
    { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' },
    { code: 'tokens', name: 'Tokens', aggregation_type: 'sum_agg', field_name: 'tokens', filters: [{ key: 'model', values: ['small', 'large'] }] },
    { code: 'peak', name: 'Peak', aggregation_type: 'max_agg', field_name: 'gpus' },
    { code: 'seats', name: 'Seats', aggregation_type: 'unique_count_agg', field_name: 'user' },
    { code: 'storage', name: 'Storage', aggregation_type: 'latest_agg', field_name: 'gb' },
    { code: 'gpu_time', name: 'GPU time', aggregation_type: 'weighted_sum_agg', field_name: 'gpus' },
  ]) metric[bm.code] = (await post('/api/v1/billable_metrics', { billable_metric: bm })).billable_metric.lago_id;
  await post('/api/v1/taxes', { tax: { code: 'vat', name: 'VAT', rate: '20' } });
  const charge = (code, charge_model, properties, extra = {}) => ({ billable_metric_id: metric[code], charge_model, properties, ...extra });
  await post('/api/v1/plans', { plan: { code: 'usage', name: 'Usage', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', tax_codes: ['vat'], charges: [
    charge('calls', 'package', { amount: '1', package_size: 100, free_units: 0 }),
    charge('tokens', 'graduated', { graduated_ranges: [{ from_value: 0, to_value: 1000, per_unit_amount: '0.01', flat_amount: '1' }, { from_value: 1001, to_value: null, per_unit_amount: '0.005', flat_amount: '0' }] },
      { filters: [{ invoice_display_name: 'Large', properties: { graduated_ranges: [{ from_value: 0, to_value: null, per_unit_amount: '0.1', flat_amount: '0' }] }, values: { model: ['large'] } }] }),
    charge('peak', 'standard', { amount: '2' }),
    charge('seats', 'standard', { amount: '5' }),
    charge('storage', 'volume', { volume_ranges: [{ from_value: 0, to_value: 100, per_unit_amount: '0.5', flat_amount: '0' }, { from_value: 101, to_value: null, per_unit_amount: '0.25', flat_amount: '0' }] }),
    charge('gpu_time', 'standard', { amount: '31' }),
  ] } });
  await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'acme', plan_code: 'usage', external_id: 'acme_sub', subscription_at: '2026-03-01T00:00:00Z' } });
});
after(async () => { await t.cleanup(); });

const usage = async () => (await (await t.api('/api/v1/customers/acme/current_usage?external_subscription_id=acme_sub')).json()).customer_usage;
const byCode = (u, code) => u.charges_usage.find((c) => c.billable_metric.code === code);
let n = 0;
const ev = (code, properties = {}, extra = {}) => ({ transaction_id: `u${n++}`, external_subscription_id: 'acme_sub', code, properties, ...extra });
const send = async (...events) => {
  const r = await t.api('/api/v1/events/batch', { method: 'POST', body: { events } });
  assert.equal(r.status, 200, await r.text());
};

test('an empty period: the period bounds, and only the first tier flat fee', async () => {
  const u = await usage();
  assert.equal(u.from_datetime, '2026-03-01T00:00:00Z');
  assert.equal(u.to_datetime, '2026-03-31T23:59:59Z');
  assert.equal(u.issuing_date, '2026-03-31');
  assert.equal(u.currency, 'EUR');
  assert.equal(u.charges_usage.length, 6);
  // listed by metric name, ASCII case ignored, as Lago orders them (an audit's); the plan says
  // calls, tokens, peak, seats, storage, gpu_time
  assert.deepEqual(u.charges_usage.map((c) => c.billable_metric.name), ['Calls', 'GPU time', 'Peak', 'Seats', 'Storage', 'Tokens']);
  assert.equal(byCode(u, 'tokens').amount_cents, 100);
  assert.equal(u.amount_cents, 100);
  assert.equal(u.taxes_amount_cents, 20);
  assert.equal(u.total_amount_cents, 120);
});

// Found by an audit: with an ending_at ahead in the period, to_datetime and issuing_date were
// cut at it, where the subscription's current_billing_period_ending_at and Lago (its
// DatesService#charges_to_datetime cuts the period only once the subscription is terminated)
// show the period's end. The usage is still priced to the ending_at: a weighted sum counts its
// GPUs until the subscription ends, not to the period's end.
test('an ending_at ahead in the period: the answer shows the period\'s end, the price stops at the ending_at', async () => {
  const post = async (path, body) => {
    const r = await t.api(path, { method: 'POST', body });
    const b = await r.json();
    assert.equal(r.status, 200, JSON.stringify(b));
    return b;
  };
  await post('/api/v1/customers', { customer: { external_id: 'ender_ny', currency: 'EUR', timezone: 'America/New_York' } });
  for (const [customer, end, day] of [['ender', '2026-03-31T23:59:59Z', '2026-03-31'], ['ender_ny', '2026-04-01T03:59:59Z', '2026-04-01']]) {
    const s = (await post('/api/v1/subscriptions', { subscription: { external_customer_id: customer, plan_code: 'usage', external_id: customer, ending_at: '2026-03-20T00:00:00Z' } })).subscription;
    assert.equal(s.current_billing_period_ending_at, end, customer);
    const u = (await (await t.api(`/api/v1/customers/${customer}/current_usage?external_subscription_id=${customer}`)).json()).customer_usage;
    assert.deepEqual([u.from_datetime, u.to_datetime, u.issuing_date], ['2026-03-10T12:00:00Z', end, day], customer);
  }
  // 2 GPUs from March 10 12:00 to the ending_at, March 20 00:00: 9.5 of March's 31 days
  await post('/api/v1/events', { event: { transaction_id: 'ender_gpus', external_subscription_id: 'ender', code: 'gpu_time', properties: { gpus: 2 } } });
  const u = (await (await t.api('/api/v1/customers/ender/current_usage?external_subscription_id=ender')).json()).customer_usage;
  assert.equal(byCode(u, 'gpu_time').amount_cents, 1900);
  assert.deepEqual([u.to_datetime, u.issuing_date], ['2026-03-31T23:59:59Z', '2026-03-31']);
});

// Found by an audit: issuing_date was the local date of the period's last second, a day before
// Lago's west of UTC. Lago's is its DatesService#next_end_of_period, a UTC instant, cast to the
// invoice's date column: the UTC date of the period's last second, which east of UTC is the
// same day as the local one.
test('issuing_date is the UTC date of the period\'s last second, as Lago\'s, in every zone', async () => {
  for (const [customer, timezone, end, day] of [['iss_ny', 'America/New_York', '2026-04-01T03:59:59Z', '2026-04-01'], ['iss_tokyo', 'Asia/Tokyo', '2026-03-31T14:59:59Z', '2026-03-31'], ['iss_utc', 'UTC', '2026-03-31T23:59:59Z', '2026-03-31']]) {
    let r = await t.api('/api/v1/customers', { method: 'POST', body: { customer: { external_id: customer, currency: 'EUR', timezone } } });
    assert.equal(r.status, 200, customer);
    r = await t.api('/api/v1/subscriptions', { method: 'POST', body: { subscription: { external_customer_id: customer, plan_code: 'usage', external_id: customer, subscription_at: '2026-03-05T00:00:00Z' } } });
    assert.equal(r.status, 200, customer);
    const u = (await (await t.api(`/api/v1/customers/${customer}/current_usage?external_subscription_id=${customer}`)).json()).customer_usage;
    assert.deepEqual([u.to_datetime, u.issuing_date], [end, day], customer);
  }
});

test('each acknowledged event is in the very next read, for every aggregation type', async () => {
  for (let b = 0; b < 3; b++) await send(...Array.from({ length: b < 2 ? 100 : 50 }, () => ev('calls')));
  let u = await usage();
  assert.equal(byCode(u, 'calls').units, '250.0');
  assert.equal(byCode(u, 'calls').amount_cents, 300); // 3 packages of 100
  await send(ev('tokens', { tokens: 500, model: 'small' }), ev('tokens', { tokens: 800 }), ev('tokens', { tokens: 10, model: 'large' }));
  u = await usage();
  const tokens = byCode(u, 'tokens');
  assert.equal(tokens.units, '1310.0');
  assert.equal(tokens.amount_cents, 1350); // 1300 default: 11 + 300 * 0.005; 10 large: 1.00
  assert.deepEqual(tokens.filters.map((f) => [f.invoice_display_name, f.units, f.amount_cents]), [['Large', '10.0', 100], [null, '1300.0', 1250]]);
  // each filter's total_aggregated_units too (Lago's client types it as required)
  assert.deepEqual(tokens.filters.map((f) => f.total_aggregated_units), ['10.0', '1300.0']);
  await send(ev('peak', { gpus: 3 }), ev('peak', { gpus: 8 }), ev('peak', { gpus: 5 }));
  assert.equal(byCode(await usage(), 'peak').amount_cents, 1600);
  await send(ev('seats', { user: 'ann' }), ev('seats', { user: 'bob' }), ev('seats', { user: 'ann' }), ev('seats', { user: 'cid' }), ev('seats', { user: 'bob', operation_type: 'remove' }));
  assert.equal(byCode(await usage(), 'seats').units, '2.0');
  assert.equal(byCode(await usage(), 'seats').amount_cents, 1000);
  await send(ev('storage', { gb: 120 }, { timestamp: '1773144000' }), ev('storage', { gb: 40 }, { timestamp: '1773100000' }));
  // latest by timestamp: 120 GB (the later timestamp), volume: 120 * 0.25
  assert.equal(byCode(await usage(), 'storage').amount_cents, 3000);
});

test('a weighted sum: units are GPU-months over the whole period, exact', async () => {
  // +2 GPUs at March 16 00:00 local (UTC): 2 GPUs for 16 of 31 days
  await send(ev('gpu_time', { gpus: 2 }, { timestamp: '1773619200' }));
  const g = byCode(await usage(), 'gpu_time');
  assert.equal(g.units, '1.03225806451612903226'); // 32/31, rounded up at 20 decimals as Lago
  assert.equal(g.amount_cents, 3200); // 31 per GPU-month * 32/31
  // Lago's total_aggregated_units of a weighted sum is its level: the 2 GPUs running now (an audit's)
  assert.equal(g.total_aggregated_units, '2.0');
});

test('duplicates, refused batches and other periods add nothing', async () => {
  const before = await usage();
  let r = await t.api('/api/v1/events/batch', { method: 'POST', body: { events: [ev('calls'), ev('calls', {}, { transaction_id: 'u0' })] } });
  assert.equal(r.status, 422);
  r = await t.api('/api/v1/events/batch', { method: 'POST', body: { events: [ev('calls'), ev('nope')] } });
  assert.equal(r.status, 422);
  await send(ev('calls', {}, { timestamp: '1775044800' })); // April 1 noon: the next period's
  const after = await usage();
  assert.deepEqual(after, before);
});

test('an event whose fee cannot be priced is refused, by index, and the usage stays readable', async () => {
  const post = (path, body) => t.api(path, { method: 'POST', body });
  const bm = (await (await post('/api/v1/billable_metrics', { billable_metric: { code: 'units', name: 'Units', aggregation_type: 'sum_agg', field_name: 'amount' } })).json()).billable_metric;
  await post('/api/v1/plans', { plan: { code: 'dollar', name: 'Dollar', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } });
  assert.equal((await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'big', plan_code: 'dollar', external_id: 'big_sub' } })).status, 200);
  const read = async () => {
    const r = await t.api('/api/v1/customers/big/current_usage?external_subscription_id=big_sub');
    return { status: r.status, body: await r.json() };
  };
  const one = (transaction_id, amount) => ({ transaction_id, external_subscription_id: 'big_sub', code: 'units', properties: { amount } });
  const answer = async (r) => ({ status: r.status, body: await r.json() });
  assert.equal((await post('/api/v1/events', { event: one('fine1', 5) })).status, 200);
  const before = await read();
  assert.equal(before.status, 200);
  assert.equal(before.body.customer_usage.amount_cents, 500);

  // 10^17 dollars are 10^19 cents: more than an amount in cents holds (2^63 - 1)
  const refused = { status: 422, error: 'Unprocessable Entity', code: 'validation_errors' };
  let r = await answer(await post('/api/v1/events', { event: one('huge', '100000000000000000') }));
  assert.deepEqual(r, { status: 422, body: { ...refused, error_details: { properties: ['amount_out_of_range'] } } });
  r = await answer(await post('/api/v1/events/batch', { events: [one('fine2', 1), one('huge', '100000000000000000')] }));
  assert.deepEqual(r.body, { ...refused, error_details: { 1: { properties: ['amount_out_of_range'] } } });
  // each fits alone (5 * 10^18 cents); the batch's second is the one that no longer does
  r = await answer(await post('/api/v1/events/batch', { events: [one('half1', '50000000000000000'), one('fine3', 1), one('half2', '50000000000000000')] }));
  assert.deepEqual(r.body, { ...refused, error_details: { 2: { properties: ['amount_out_of_range'] } } });

  // sent ahead for April, they are priced in April's usage: no poison for its first day
  const april = (transaction_id, amount) => ({ ...one(transaction_id, amount), timestamp: 1775044800 });
  r = await answer(await post('/api/v1/events', { event: april('ahead', '100000000000000000') }));
  assert.deepEqual(r.body, { ...refused, error_details: { properties: ['amount_out_of_range'] } });
  r = await answer(await post('/api/v1/events/batch', { events: [april('ahead1', '50000000000000000'), one('fine5', 1), april('ahead2', '50000000000000000')] }));
  assert.deepEqual(r.body, { ...refused, error_details: { 2: { properties: ['amount_out_of_range'] } } });

  // nothing was kept, and the usage still reads as before, from the writer and from its view
  for (const id of ['huge', 'fine2', 'half1', 'fine3', 'half2', 'ahead', 'ahead1', 'fine5', 'ahead2'])
    assert.equal((await t.api(`/api/v1/events/${id}`)).status, 404, id);
  assert.deepEqual(await read(), before);
  assert.deepEqual(await read(), before);
  assert.equal((await post('/api/v1/events', { event: one('fine4', 2) })).status, 200);
  const after = await read();
  assert.equal(after.status, 200, JSON.stringify(after.body));
  assert.equal(after.body.customer_usage.amount_cents, 700);
  assert.equal(after.body.customer_usage.charges_usage[0].events_count, 2);
  // one that fits alone is still taken, now or ahead
  assert.equal((await post('/api/v1/events', { event: one('half3', '50000000000000000') })).status, 200);
  assert.equal((await post('/api/v1/events', { event: april('ahead3', '50000000000000000') })).status, 200);
  r = await answer(await post('/api/v1/events', { event: april('ahead4', '50000000000000000') }));
  assert.deepEqual(r.body, { ...refused, error_details: { properties: ['amount_out_of_range'] } });
  const text = await (await t.api('/api/v1/customers/big/current_usage?external_subscription_id=big_sub')).text();
  assert.match(text, /"total_amount_cents":5000000000000000700\}/);
});

// A value of many decimals is counted exactly; a sum that then needs more than 38 significant
// digits keeps its first 38, the rest (far below a cent) truncated, and a price times a
// quantity likewise. Found by an audit: one event of 1e-38 was taken, and every later event of
// the period whose sum needed a 39th digit (an event of 1) was refused, with no message.
test('a sum past 38 digits keeps its first 38: one event of many decimals refuses nothing after it', async () => {
  const post = (path, body) => t.api(path, { method: 'POST', body });
  const bm = (await (await post('/api/v1/billable_metrics', { billable_metric: { code: 'fine_units', name: 'Fine units', aggregation_type: 'sum_agg', field_name: 'v', recurring: true } })).json()).billable_metric;
  await post('/api/v1/plans', { plan: { code: 'fine', name: 'Fine', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '0.0000001234567890123' } }] } });
  assert.equal((await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'fine', plan_code: 'fine', external_id: 'fine_sub' } })).status, 200);
  const one = (transaction_id, v) => ({ transaction_id, external_subscription_id: 'fine_sub', code: 'fine_units', properties: { v } });
  for (const [id, v] of [['f1', 1e-38], ['f2', 1], ['f3', '0.3333333333333333333333333333'], ['f4', '9999999998'], ['f5', 1000]]) {
    const r = await post('/api/v1/events', { event: one(id, v) });
    assert.equal(r.status, 200, `${id}: ${await r.text()}`);
  }
  const u = (await (await t.api('/api/v1/customers/fine/current_usage?external_subscription_id=fine_sub')).json()).customer_usage;
  // 1e-38 + 1 + 0.333... + 9999999998 + 1000: 10000000999.333... with 38 digits
  assert.equal(u.charges_usage[0].units, '10000000999.333333333333333333333333333');
  assert.equal(u.charges_usage[0].events_count, 5);
  assert.equal(u.amount_cents, 123457); // 1234.568013... dollars
});

test('usage is rebuilt identically after a restart and after a SIGKILL', async () => {
  const before = await usage();
  await t.restart();
  assert.deepEqual(await usage(), before);
  await send(ev('calls'));
  await t.restart({ kill: true });
  const again = await usage();
  assert.equal(byCode(again, 'calls').units, '251.0');
});

test('a plan edit prices the current usage at once; a new period starts from zero', async () => {
  const planBefore = await (await t.api('/api/v1/plans/usage')).json();
  const charges = planBefore.plan.charges.map((c) => ({ id: c.lago_id, billable_metric_id: c.lago_billable_metric_id, charge_model: c.charge_model, properties: c.properties, filters: c.filters }));
  charges[2].properties = { amount: '3' };
  const r = await t.api('/api/v1/plans/usage', { method: 'PUT', body: { plan: { charges } } });
  assert.equal(r.status, 200);
  assert.equal(byCode(await usage(), 'peak').amount_cents, 2400);
  await t.api('/api/v1/test_clock/advance', { method: 'POST', body: { test_clock: { to: '2026-04-02T00:00:00Z' } } });
  const april = await usage();
  assert.equal(april.from_datetime, '2026-04-01T00:00:00Z');
  assert.equal(byCode(april, 'calls').units, '1.0'); // the event sent ahead for April counts now
  // a recurring-free count starts over; the weighted sum's level does not carry (not recurring)
  assert.equal(byCode(april, 'gpu_time').units, '0.0');
  assert.equal(byCode(april, 'gpu_time').total_aggregated_units, '0.0');
});

test('unknown customer or subscription', async () => {
  let r = await t.api('/api/v1/customers/nobody/current_usage?external_subscription_id=acme_sub');
  assert.deepEqual(await r.json(), { status: 404, error: 'Not Found', code: 'customer_not_found' });
  r = await t.api('/api/v1/customers/acme/current_usage?external_subscription_id=nope');
  assert.deepEqual(await r.json(), { status: 404, error: 'Not Found', code: 'subscription_not_found' });
  // none named: Lago looks it up all the same (list_contracts.test.mjs)
  r = await t.api('/api/v1/customers/acme/current_usage');
  assert.deepEqual(await r.json(), { status: 404, error: 'Not Found', code: 'subscription_not_found' });
});

test("a weighted sum divides by the whole period's days, as Lago: a subscription started within it, a DST month", async () => {
  const post = async (path, body) => { const r = await t.api(path, { method: 'POST', body }); const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
  const gpu = async (customer, sub) => byCode((await (await t.api(`/api/v1/customers/${customer}/current_usage?external_subscription_id=${sub}`)).json()).customer_usage, 'gpu_time');
  // (the clock is on April 2) started on April 1 at noon: 2 GPUs from April 16 are
  // 2 x 15/30 GPU-months, not 2 x 15/29.5
  await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'mid', plan_code: 'usage', external_id: 'mid_sub', subscription_at: '2026-04-01T12:00:00Z' } });
  await send({ ...ev('gpu_time', { gpus: 2 }, { timestamp: '1776297600' }), external_subscription_id: 'mid_sub' });
  assert.equal((await gpu('mid', 'mid_sub')).units, '1.0');
  assert.equal((await gpu('mid', 'mid_sub')).amount_cents, 3100);
  // the level may fall below zero (2 - 5 GPUs from April 28): Lago shows it as the fee's
  // total_aggregated_units, zeroed only with its negative units or amount (an audit found 0.0)
  await send({ ...ev('gpu_time', { gpus: -5 }, { timestamp: '1777334400' }), external_subscription_id: 'mid_sub' });
  const below = await gpu('mid', 'mid_sub');
  assert.deepEqual([below.units, below.amount_cents, below.total_aggregated_units], ['0.5', 1550, '-3.0']);
  // Paris: October has 31 local days but 31 x 24 + 1 hours; Lago divides by 31 whole days
  await post('/api/v1/test_clock/advance', { test_clock: { to: '2026-10-05T00:00:00Z' } });
  await post('/api/v1/customers', { customer: { external_id: 'paris', currency: 'EUR', timezone: 'Europe/Paris' } });
  await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'paris', plan_code: 'usage', external_id: 'paris_sub', subscription_at: '2026-09-30T22:00:00Z' } });
  await send({ ...ev('gpu_time', { gpus: 1 }, { timestamp: '1790805600' }), external_subscription_id: 'paris_sub' }); // October 1, 00:00 in Paris
  assert.equal((await gpu('paris', 'paris_sub')).units, '1.00134408602150537635'); // 1 + 1/744, ceiled at 20 decimals
  assert.equal((await gpu('paris', 'paris_sub')).amount_cents, 3104);
});

// Lago zeroes a fee's negative units (Fees::ChargeService): a sum that went below zero shows
// 0 units and costs nothing, per filter and for the charge, whose units add its fees'.
test('negative units show as 0, per filter and for the charge', async () => {
  const post = async (path, body) => (await t.api(path, { method: 'POST', body })).json();
  await post('/api/v1/plans', { plan: { code: 'neg', name: 'Neg', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [
    { billable_metric_id: metric.tokens, charge_model: 'standard', properties: { amount: '1' },
      filters: [{ invoice_display_name: 'Large', properties: { amount: '2' }, values: { model: ['large'] } }] }] } });
  await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'neg', plan_code: 'neg', external_id: 'neg_sub', subscription_at: '2026-03-01T00:00:00Z' } });
  const negEv = (properties) => ({ transaction_id: `neg${n++}`, external_subscription_id: 'neg_sub', code: 'tokens', properties });
  const r = await t.api('/api/v1/events/batch', { method: 'POST', body: { events: [negEv({ tokens: -10, model: 'large' }), negEv({ tokens: 4, model: 'small' })] } });
  assert.equal(r.status, 200, await r.text());
  const u = (await (await t.api('/api/v1/customers/neg/current_usage?external_subscription_id=neg_sub')).json()).customer_usage;
  const c = u.charges_usage[0];
  assert.deepEqual(c.filters.map((f) => [f.units, f.amount_cents]), [['0.0', 0], ['4.0', 400]]);
  assert.equal(c.units, '4.0');
  assert.equal(c.total_aggregated_units, '4.0');
  assert.equal(c.amount_cents, 400);
});

// A count's events keep no values; a per-transaction min or max prices each of them all the
// same (it priced them at 0, and the wallet paid nothing for them).
test('a percentage charge with a per-transaction min on a count: each event priced alone, and debited', async () => {
  const post = async (path, body) => {
    const r = await t.api(path, { method: 'POST', body });
    const b = await r.json();
    assert.equal(r.status, 200, JSON.stringify(b));
    return b;
  };
  await post('/api/v1/plans', { plan: { code: 'pct_count', name: 'Pct', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [
    { billable_metric_id: metric.calls, charge_model: 'percentage', properties: { rate: '10', fixed_amount: '0.05', per_transaction_min_amount: '1', free_units_per_events: 1 } },
  ] } });
  await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'pct', plan_code: 'pct_count', external_id: 'pct_sub', subscription_at: '2026-03-01T00:00:00Z' } });
  const wallet = (await post('/api/v1/wallets', { wallet: { external_customer_id: 'pct', currency: 'EUR', rate_amount: '0.01', granted_credits: '10000' } })).wallet;
  const events = [0, 1, 2].map((i) => ({ transaction_id: `pct${i}`, external_subscription_id: 'pct_sub', code: 'calls' }));
  await post('/api/v1/events/batch', { events });
  const u = (await (await t.api('/api/v1/customers/pct/current_usage?external_subscription_id=pct_sub')).json()).customer_usage;
  // the first event free, then 1 x 10% + 0.05 = 0.15 raised to the min of 1, twice
  assert.equal(u.charges_usage[0].units, '3.0');
  assert.equal(u.amount_cents, 200);
  const w = (await (await t.api(`/api/v1/wallets/${wallet.lago_id}`)).json()).wallet;
  assert.equal(w.consumed_credits, '200.0');
});
