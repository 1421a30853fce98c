// Billable metrics with a custom expression, over real HTTP. Lago evaluates a metric's
// expression as each of its events is created (Events::CalculateExpressionService) and writes
// the result into properties[field_name], which the aggregation then reads; the event is stored
// and answered so. Tally does the same on the writer, in the event's commit: the result is a
// string (a number in its canonical text), the expression is read once per event (a retried
// command, a restart or a re-pricing never evaluates it again), and an event it cannot be
// evaluated for is refused with what went wrong. Every amount below is computed by hand.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
const post = async (path, body) => t.api(path, { method: 'POST', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const refused = async (r, status = 422) => { const b = await r.json(); assert.equal(r.status, status, JSON.stringify(b)); return b; };
let n = 0;
const ev = (code, properties, sub = 'ai') => ({ transaction_id: `x${n++}`, external_subscription_id: sub, code, properties });
const metric = (code, aggregation_type, field_name, expression) => ({ billable_metric: { code, name: code, aggregation_type, field_name, expression } });
const usage = async (sub = 'ai') => (await ok(await t.api(`/api/v1/customers/${sub}/current_usage?external_subscription_id=${sub}`))).customer_usage;
const charge = async (code, sub = 'ai') => {
  const c = (await usage(sub)).charges_usage.find((x) => x.billable_metric.code === code);
  return [c.units, c.events_count, c.amount_cents];
};
const ids = {};

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-05-10T12:00:00Z']);
  const metrics = [
    // output tokens cost three input tokens
    metric('tokens', 'sum_agg', 'total', 'event.properties.input + event.properties.output * 3'),
    metric('gpu', 'sum_agg', 'minutes', 'ceil(event.properties.ms / 60000)'),
    metric('seats', 'unique_count_agg', 'seat', "concat(event.properties.team, '/', event.properties.user)"),
    // reads its own field: evaluated once, 5 is stored as 10, never 20
    metric('doubled', 'sum_agg', 'v', 'event.properties.v * 2'),
    metric('stamped', 'unique_count_agg', 'at', "concat(event.code, '-', event.timestamp)"),
  ];
  for (const m of metrics) ids[m.billable_metric.code] = (await ok(await post('/api/v1/billable_metrics', m))).billable_metric.lago_id;
  const charges = [['tokens', '0.001'], ['gpu', '0.5'], ['seats', '10'], ['doubled', '1']]
    .map(([code, amount]) => ({ billable_metric_id: ids[code], charge_model: 'standard', properties: { amount } }));
  await ok(await post('/api/v1/plans', { plan: { code: 'ai', name: 'AI', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges } }));
  await ok(await post('/api/v1/plans', { plan: { code: 'adv', name: 'Ahead', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [{ billable_metric_id: ids.tokens, charge_model: 'standard', pay_in_advance: true, invoiceable: false, properties: { amount: '0.01' } }] } }));
  for (const [customer, plan_code] of [['ai', 'ai'], ['gpu_jobs', 'ai'], ['adv', 'adv']]) {
    await ok(await post('/api/v1/customers', { customer: { external_id: customer, currency: 'USD' } }));
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: customer, plan_code, external_id: customer, subscription_at: '2026-05-01T00:00:00Z' } }));
  }
});
after(async () => { await t.cleanup(); });

test('a metric keeps its expression; one that does not parse, or on a count, is refused with where and why', async () => {
  const m = (await ok(await t.api('/api/v1/billable_metrics/tokens'))).billable_metric;
  assert.equal(m.expression, 'event.properties.input + event.properties.output * 3');
  const cases = [
    [metric('bad1', 'sum_agg', 'x', 'event.properties.a +'), 'invalid_expression', 'expression at 20: expected a value, found the end'],
    [metric('bad2', 'sum_agg', 'x', 'round(event.properties.a, 1, 2)'), 'invalid_expression', 'expression at 0: round takes a value and, optionally, decimals'],
    [metric('bad3', 'sum_agg', 'x', 'event.props.a'), 'invalid_expression', 'expression at 0: expected event.code, event.timestamp or event.properties.<name>'],
    [metric('bad4', 'count_agg', undefined, 'event.properties.a'), 'not_compatible_with_aggregation_type', undefined],
  ];
  for (const [body, code, message] of cases) {
    const b = await refused(await post('/api/v1/billable_metrics', body));
    assert.deepEqual(b.error_details, { expression: [code] });
    assert.equal(b.message, message);
  }
  assert.equal((await t.api('/api/v1/billable_metrics/bad1')).status, 404);
  // "" or spaces are no expression, as in Lago
  for (const [code, expression] of [['plain', ''], ['spaces', '  \t ']]) {
    const none = (await ok(await post('/api/v1/billable_metrics', metric(code, 'sum_agg', 'x', expression)))).billable_metric;
    assert.equal(none.expression, null);
  }
  // a character outside ASCII is quoted whole, so the answer stays UTF-8
  const times = await refused(await post('/api/v1/billable_metrics', metric('times', 'sum_agg', 'x', 'event.properties.a \u00d7 2')));
  assert.equal(times.message, 'expression at 19: unexpected \'\u00d7\'');
});

test('an event is stored, answered and priced with its expression\'s result in the field', async () => {
  const one = (await ok(await post('/api/v1/events', { event: ev('tokens', { input: 1200, output: 300 }) }))).event;
  assert.deepEqual(one.properties, { input: 1200, output: 300, total: '2100.0' });
  // a value sent in the field is replaced, in its place
  const batch = (await ok(await post('/api/v1/events/batch', { events: [
    ev('tokens', { total: 999999, input: '500', output: '100.5' }),
    ev('gpu', { ms: 90001 }),
  ] }))).events;
  assert.deepEqual(batch[0].properties, { total: '801.5', input: '500', output: '100.5' });
  assert.deepEqual(batch[1].properties, { ms: 90001, minutes: '2.0' });
  const stored = (await ok(await t.api(`/api/v1/events/${batch[0].transaction_id}`))).event;
  assert.deepEqual(stored.properties, batch[0].properties);
  // 2100 + 801.5 tokens at 0.001 = 2.9015 USD; 2 minutes at 0.5 = 1 USD
  assert.deepEqual(await charge('tokens'), ['2901.5', 2, 290]);
  assert.deepEqual(await charge('gpu'), ['2.0', 1, 100]);
});

test('an expression that reads no property prices an event sent without any', async () => {
  for (const properties of [undefined, null]) {
    const e = (await ok(await post('/api/v1/events', { event: { ...ev('stamped', {}, 'gpu_jobs'), properties } }))).event;
    assert.deepEqual(e.properties, { at: `stamped-${Date.parse('2026-05-10T12:00:00Z') / 1000}` });
  }
});

test('a unique count counts the strings concat makes', async () => {
  await ok(await post('/api/v1/events/batch', { events: [
    ev('seats', { team: 'a', user: 'u1' }), ev('seats', { team: 'b', user: 'u1' }),
    ev('seats', { team: 'a', user: 'u1' }), ev('seats', { team: 'a', user: 7 }),
  ] }));
  assert.deepEqual(await charge('seats'), ['3.0', 3, 3000]);
});

test('an event the expression cannot be evaluated for is refused, naming it, and changes nothing', async () => {
  const before = await usage();
  let b = await refused(await post('/api/v1/events', { event: ev('tokens', { input: 10 }) }));
  assert.deepEqual(b.error_details, { properties: ['expression_evaluation_failed'] });
  assert.equal(b.message, 'expression_evaluation_failed: Variable: output not found');
  b = await refused(await post('/api/v1/events/batch', { events: [
    ev('tokens', { input: 1, output: 1 }),
    ev('gpu', { ms: 'soon' }),
    ev('gpu', { ms: 60000 }),
    ev('tokens', { input: 1, output: 0, total: 5 }),
    ev('gpu', {}),
  ] }));
  assert.deepEqual(b.error_details, { 1: { properties: ['expression_evaluation_failed'] }, 4: { properties: ['expression_evaluation_failed'] } });
  assert.equal(b.message, "expression_evaluation_failed: Expected a decimal, got the string 'soon'");
  b = await refused(await post('/api/v1/events', { event: ev('gpu', { ms: 1, big: 1 }, 'nobody') }));
  assert.deepEqual(b.error_details, { external_subscription_id: ['subscription_not_found'] });
  assert.deepEqual(await usage(), before);
});

test('an expression that reads its own field reads what was sent, once, through retries, restarts and re-pricing', async () => {
  const sent = ev('doubled', { v: 5 });
  assert.deepEqual((await ok(await post('/api/v1/events', { event: sent }))).event.properties, { v: '10.0' });
  const again = await refused(await post('/api/v1/events', { event: sent }));
  assert.deepEqual(again.error_details, { transaction_id: ['value_already_exist'] });
  assert.deepEqual(await charge('doubled'), ['10.0', 1, 1000]);
  await t.restart({ kill: true });
  assert.deepEqual(await charge('doubled'), ['10.0', 1, 1000]);
  assert.deepEqual(await charge('tokens'), ['2901.5', 2, 290]);
  assert.deepEqual(await charge('seats'), ['3.0', 3, 3000]);
  // while plan ai charges it, the metric keeps its expression, as Lago's does (it passes the
  // change over): its stored events keep the values the expression gave them
  const setExpression = (expression) => t.api('/api/v1/billable_metrics/doubled', { method: 'PUT', body: { billable_metric: { expression } } });
  const kept = await refused(await setExpression('event.properties.v * 3'));
  assert.deepEqual(kept.error_details, { expression: ['metric_used_by_plans'] });
  // out of the plan it changes; charged again, the period's stored events count as they were
  // stored (a re-pricing evaluates nothing again), and the new expression applies to the events
  // that follow
  const withoutDoubled = async (change) => {
    const charges = (await ok(await t.api('/api/v1/plans/ai'))).plan.charges;
    const others = charges.filter((c) => c.billable_metric_code !== 'doubled').map((c) => ({ id: c.lago_id }));
    await ok(await t.api('/api/v1/plans/ai', { method: 'PUT', body: { plan: { charges: others } } }));
    await change();
    const back = { billable_metric_id: ids.doubled, charge_model: 'standard', properties: { amount: '1' } };
    await ok(await t.api('/api/v1/plans/ai', { method: 'PUT', body: { plan: { charges: [...others, back] } } }));
  };
  await withoutDoubled(async () => {
    assert.equal((await ok(await setExpression('event.properties.v * 3'))).billable_metric.expression, 'event.properties.v * 3');
  });
  assert.deepEqual(await charge('doubled'), ['10.0', 1, 1000]);
  assert.deepEqual((await ok(await post('/api/v1/events', { event: ev('doubled', { v: 5 }) }))).event.properties, { v: '15.0' });
  assert.deepEqual(await charge('doubled'), ['25.0', 2, 2500]);
  // and no expression: the field as sent
  await withoutDoubled(async () => { await ok(await setExpression('')); });
  assert.deepEqual((await ok(await post('/api/v1/events', { event: ev('doubled', { v: 5 }) }))).event.properties, { v: 5 });
  assert.deepEqual(await charge('doubled'), ['30.0', 3, 3000]);
});

test('a hold and an estimate price the event as its expression makes it; the capture is stored so', async () => {
  await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'gpu_jobs', currency: 'USD', rate_amount: '0.01', name: 'Jobs', granted_credits: '1000', limit: 'hard' } }));
  // 90 s rounds up to 2 minutes: 1 USD
  const hold = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'gpu_jobs', code: 'gpu', properties: { ms: 90000 } } }))).authorization;
  assert.equal(hold.status, 'authorized');
  assert.equal(hold.amount_cents, 100);
  const bad = await refused(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'gpu_jobs', code: 'gpu', properties: {} } }));
  assert.deepEqual(bad.error_details, { properties: ['expression_evaluation_failed'] });
  assert.equal(bad.message, 'expression_evaluation_failed: Variable: ms not found');
  // the job ran 150 s: 3 minutes
  const captured = (await ok(await post(`/api/v1/authorizations/${hold.lago_id}/capture`, { authorization: { properties: { ms: 150000 } } }))).authorization;
  assert.equal(captured.captured_amount_cents, 150);
  assert.deepEqual((await ok(await t.api(`/api/v1/events/${hold.lago_id}`))).event.properties, { ms: 150000, minutes: '3.0' });
  assert.deepEqual(await charge('gpu', 'gpu_jobs'), ['3.0', 1, 150]);
  // pay in advance: 10 + 4 x 3 = 22 tokens at 0.01 USD
  const fee = (await ok(await post('/api/v1/events/estimate_fees', { event: { external_subscription_id: 'adv', code: 'tokens', properties: { input: 10, output: 4 } } }))).fees[0];
  assert.equal(fee.units, '22.0');
  assert.equal(fee.amount_cents, 22);
  const unpriced = await refused(await post('/api/v1/events/estimate_fees', { event: { external_subscription_id: 'adv', code: 'tokens', properties: { input: 10 } } }));
  assert.deepEqual(unpriced.error_details, { properties: ['expression_evaluation_failed'] });
});

test('evaluate_expression says what an expression makes of a test event, changing nothing', async () => {
  const value = async (expression, event) => (await ok(await post('/api/v1/billable_metrics/evaluate_expression', { expression, event }))).expression_result.value;
  assert.equal(await value('round(event.properties.a / 3, 2)', { code: 'x', properties: { a: 10 } }), '3.33');
  assert.equal(await value("concat(event.code, '-', event.properties.b)", { code: 'x', properties: { b: 'y' } }), 'x-y');
  assert.equal(await value('event.timestamp + 1', { code: 'x', timestamp: 1700000000.9, properties: {} }), '1700000001.0');
  assert.equal(await value('1 + 2 * 3'), '7.0');
  assert.equal(await value('max(1 / 3, 0.3)'), '0.333333333333333');
  // no timestamp: the organization's clock, here its test clock
  assert.equal(await value('event.timestamp', { properties: {} }), `${Date.parse('2026-05-10T12:00:00Z') / 1000}.0`);
  const cases = [
    [{ event: { properties: {} } }, { expression: ['value_is_mandatory'] }, undefined],
    [{ expression: '1 +', event: {} }, { expression: ['invalid_expression'] }, 'at 3: expected a value, found the end'],
    [{ expression: 'event.properties.a', event: { properties: {} } }, { event: ['invalid_event'] }, 'Variable: a not found'],
    [{ expression: '1 / event.properties.a', event: { properties: { a: 0 } } }, { event: ['invalid_event'] }, 'Division by zero'],
    [{ expression: ' ', event: {} }, { expression: ['value_is_mandatory'] }, undefined],
  ];
  for (const [body, details, message] of cases) {
    const b = await refused(await post('/api/v1/billable_metrics/evaluate_expression', body));
    assert.deepEqual(b.error_details, details);
    assert.equal(b.message, message);
  }
  assert.equal((await post('/api/v1/billable_metrics/evaluate_expression', 'not json')).status, 400);
});
