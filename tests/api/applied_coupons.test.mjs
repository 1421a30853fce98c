// Coupons applied to customers: terms copied and overridable, reusability, currencies,
// expiry on the organization's clock, listing and termination.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
before(async () => {
  t = await startWithOrg(['--test-clock', '2026-01-01T00:00:00Z']);
  const coupons = [
    { code: 'ten', name: 'Ten off', coupon_type: 'fixed_amount', expiration: 'no_expiration', amount_cents: 1000, amount_currency: 'EUR', frequency: 'once' },
    { code: 'pct', name: 'Twenty percent', coupon_type: 'percentage', expiration: 'no_expiration', percentage_rate: '20', frequency: 'recurring', frequency_duration: 3, reusable: false },
    { code: 'soon_gone', name: 'Flash', coupon_type: 'percentage', frequency: 'once', percentage_rate: '5', expiration: 'time_limit', expiration_at: '2026-01-10T00:00:00Z' },
  ];
  for (const coupon of coupons) assert.equal((await t.api('/api/v1/coupons', { method: 'POST', body: { coupon } })).status, 200);
  for (const [external_id, currency] of [['anna', 'EUR'], ['bob', 'USD']])
    await t.api('/api/v1/customers', { method: 'POST', body: { customer: { external_id, currency } } });
});
after(async () => { await t.cleanup(); });

const call = async (method, path, body) => {
  const r = await t.api(path, { method, body });
  return { status: r.status, body: await r.json() };
};
const apply = (applied_coupon) => call('POST', '/api/v1/applied_coupons', { applied_coupon });

test('a fixed coupon applied with its terms, then one with overrides', async () => {
  let r = await apply({ external_customer_id: 'anna', coupon_code: 'ten' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const a = r.body.applied_coupon;
  assert.equal(a.coupon_code, 'ten');
  assert.equal(a.coupon_name, 'Ten off');
  assert.equal(a.status, 'active');
  assert.equal(a.amount_cents, 1000);
  assert.equal(a.amount_cents_remaining, 1000);
  assert.equal(a.amount_currency, 'EUR');
  assert.equal(a.percentage_rate, null);
  assert.equal(a.external_customer_id, 'anna');
  assert.equal(a.created_at, '2026-01-01T00:00:00Z');
  assert.deepEqual(a.credits, []); // Lago's schema requires it: what invoices took off
  r = await apply({ external_customer_id: 'anna', coupon_code: 'ten', amount_cents: 250, frequency: 'recurring', frequency_duration: 2 });
  assert.equal(r.body.applied_coupon.amount_cents, 250);
  assert.equal(r.body.applied_coupon.frequency, 'recurring');
  assert.equal(r.body.applied_coupon.frequency_duration_remaining, 2);
});

test('currencies, reusability, unknown names', async () => {
  let r = await apply({ external_customer_id: 'bob', coupon_code: 'ten' });
  assert.deepEqual(r.body.error_details, { currency: ['currencies_does_not_match'] });
  r = await apply({ external_customer_id: 'bob', coupon_code: 'pct' });
  assert.equal(r.body.applied_coupon.percentage_rate, '20.0');
  assert.equal(r.body.applied_coupon.frequency_duration, 3);
  r = await apply({ external_customer_id: 'bob', coupon_code: 'pct' });
  assert.deepEqual(r.body.error_details, { coupon: ['coupon_is_not_reusable'] });
  r = await apply({ external_customer_id: 'nobody', coupon_code: 'pct' });
  assert.deepEqual(r.body, { status: 404, error: 'Not Found', code: 'customer_not_found' });
  r = await apply({ external_customer_id: 'bob', coupon_code: 'nothing' });
  assert.deepEqual(r.body, { status: 404, error: 'Not Found', code: 'coupon_not_found' });
  // neither exists: the customer is checked first, as Lago's AppliedCoupons::CreateService
  // (an audit found coupon_not_found), and an expired coupon's customer too
  r = await apply({ external_customer_id: 'nobody', coupon_code: 'nothing' });
  assert.deepEqual(r.body, { status: 404, error: 'Not Found', code: 'customer_not_found' });
  // one not named is not found either, as Lago's controller's find_by finds none (an audit
  // found 422 value_is_mandatory), the customer first
  r = await apply({ coupon_code: 'pct' });
  assert.deepEqual(r.body, { status: 404, error: 'Not Found', code: 'customer_not_found' });
  r = await apply({ external_customer_id: null });
  assert.deepEqual(r.body, { status: 404, error: 'Not Found', code: 'customer_not_found' });
  r = await apply({ external_customer_id: 'bob', coupon_code: null });
  assert.deepEqual(r.body, { status: 404, error: 'Not Found', code: 'coupon_not_found' });
  r = await apply({ external_customer_id: 'bob', coupon_code: 'soon_gone', percentage_rate: '150' });
  assert.deepEqual(r.body.error_details, { percentage_rate: ['value_is_out_of_range'] });
});

test('an expired coupon cannot be applied', async () => {
  let r = await apply({ external_customer_id: 'anna', coupon_code: 'soon_gone' });
  assert.equal(r.status, 200);
  // the application says how its coupon is (Lago's coupon_status, coupon_deleted_at: an audit)
  assert.deepEqual([r.body.applied_coupon.coupon_status, r.body.applied_coupon.coupon_deleted_at], ['active', null]);
  const first = r.body.applied_coupon.lago_id;
  await call('POST', '/api/v1/test_clock/advance', { test_clock: { to: '2026-01-10T00:00:00Z' } });
  const listed = (await call('GET', '/api/v1/applied_coupons?coupon_code[]=soon_gone')).body.applied_coupons.find((a) => a.lago_id === first);
  assert.deepEqual([listed.status, listed.coupon_status], ['active', 'terminated']);
  r = await apply({ external_customer_id: 'bob', coupon_code: 'soon_gone' });
  assert.deepEqual(r.body.error_details, { coupon: ['coupon_expired'] });
  r = await apply({ external_customer_id: 'nobody', coupon_code: 'soon_gone' });
  assert.deepEqual(r.body, { status: 404, error: 'Not Found', code: 'customer_not_found' });
  // Lago's clock terminates a coupon past its expiry (terminated_at), and no update brings it
  // back (Coupons::UpdateService leaves its status alone). Found by an audit: an update to
  // no_expiration made the expired coupon applicable again.
  assert.equal((await call('GET', '/api/v1/coupons/soon_gone')).body.coupon.terminated_at, '2026-01-10T00:00:00Z');
  assert.equal((await call('GET', '/api/v1/coupons?per_page=100')).body.coupons.find((c) => c.code === 'soon_gone').terminated_at, '2026-01-10T00:00:00Z');
  const revived = await call('PUT', '/api/v1/coupons/soon_gone', { coupon: { expiration: 'no_expiration', name: 'Flash (over)' } });
  assert.equal(revived.status, 200, JSON.stringify(revived.body));
  assert.deepEqual([revived.body.coupon.name, revived.body.coupon.expiration, revived.body.coupon.expiration_at, revived.body.coupon.terminated_at],
    ['Flash (over)', 'no_expiration', null, '2026-01-10T00:00:00Z']);
  r = await apply({ external_customer_id: 'bob', coupon_code: 'soon_gone' });
  assert.deepEqual([r.status, r.body.error_details], [422, { coupon: ['coupon_expired'] }]);
  assert.match(r.body.message, /terminated/);
  // nor does a later expiry
  assert.equal((await call('PUT', '/api/v1/coupons/soon_gone', { coupon: { expiration: 'time_limit', expiration_at: '2026-06-01T00:00:00Z' } })).body.coupon.terminated_at, '2026-01-10T00:00:00Z');
  assert.deepEqual((await apply({ external_customer_id: 'bob', coupon_code: 'soon_gone' })).body.error_details, { coupon: ['coupon_expired'] });
  // a coupon not yet expired has none
  assert.equal((await call('GET', '/api/v1/coupons/ten')).body.coupon.terminated_at, null);
});

test('listing and terminating', async () => {
  let list = (await call('GET', '/api/v1/applied_coupons?external_customer_id=anna')).body;
  assert.equal(list.meta.total_count, 3);
  const one = list.applied_coupons[0];
  let r = await call('DELETE', `/api/v1/customers/anna/applied_coupons/${one.lago_id}`);
  assert.equal(r.body.applied_coupon.status, 'terminated');
  assert.equal(r.body.applied_coupon.terminated_at, '2026-01-10T00:00:00Z');
  // terminating it again answers it as it is, as Lago's (TerminateService leaves a terminated
  // one alone): a retried DELETE is not told it does not exist (an audit found 404)
  await call('POST', '/api/v1/test_clock/advance', { test_clock: { to: '2026-01-10T12:00:00Z' } });
  const again = await call('DELETE', `/api/v1/customers/anna/applied_coupons/${one.lago_id}`);
  assert.deepEqual([again.status, again.body], [200, r.body]);
  assert.equal((await call('DELETE', `/api/v1/customers/bob/applied_coupons/${list.applied_coupons[1].lago_id}`)).status, 404);
  list = (await call('GET', '/api/v1/customers/anna/applied_coupons?status=active')).body;
  assert.equal(list.meta.total_count, 2);
  list = (await call('GET', '/api/v1/applied_coupons?status=terminated')).body;
  assert.deepEqual(list.applied_coupons.map((a) => a.lago_id), [one.lago_id]);
  list = (await call('GET', '/api/v1/applied_coupons')).body;
  assert.equal(list.meta.total_count, 4);
  // Lago's coupon_code[] filter narrows the list (it was ignored)
  const codes = (all) => [...new Set(all.applied_coupons.map((a) => a.coupon_code))].sort();
  const byCode = (await call('GET', `/api/v1/applied_coupons?coupon_code[]=${list.applied_coupons[0].coupon_code}`)).body;
  assert.deepEqual(codes(byCode), [list.applied_coupons[0].coupon_code]);
  assert.ok(byCode.meta.total_count < 4);
  assert.equal((await call('GET', '/api/v1/applied_coupons?coupon_code[]=none_such')).body.meta.total_count, 0);
  // an unknown customer: its nested list is a 404 (Lago finds the customer first), a filter finds none
  const nobody = await call('GET', '/api/v1/customers/nobody/applied_coupons');
  assert.deepEqual([nobody.status, nobody.body.code], [404, 'customer_not_found']);
  assert.equal((await call('GET', '/api/v1/applied_coupons?external_customer_id=nobody')).body.meta.total_count, 0);
});

// DELETE /coupons/{code} terminates the coupon's active applied coupons in the same command, as
// Lago's Coupons::DestroyService does. Before this (an audit found it), they stayed active on
// their customers after the coupon was gone.
test('deleting a coupon terminates its applied coupons', async () => {
  const coupon = { code: 'doomed', name: 'Doomed', coupon_type: 'percentage', expiration: 'no_expiration', percentage_rate: '15', frequency: 'forever' };
  assert.equal((await call('POST', '/api/v1/coupons', { coupon })).status, 200);
  const applied = [];
  for (const external_customer_id of ['anna', 'bob'])
    applied.push((await apply({ external_customer_id, coupon_code: 'doomed' })).body.applied_coupon.lago_id);
  const done = (await call('DELETE', `/api/v1/customers/bob/applied_coupons/${applied[1]}`)).body.applied_coupon;
  await call('POST', '/api/v1/test_clock/advance', { test_clock: { to: '2026-01-11T00:00:00Z' } });
  const other = (await call('GET', '/api/v1/applied_coupons?status=active')).body.applied_coupons.filter((a) => a.coupon_code !== 'doomed');
  assert.equal((await call('DELETE', '/api/v1/coupons/doomed')).status, 200);
  const list = (await call('GET', '/api/v1/applied_coupons?coupon_code[]=doomed')).body.applied_coupons;
  assert.deepEqual(list.map((a) => a.coupon_deleted_at), ['2026-01-11T00:00:00Z', '2026-01-11T00:00:00Z']);
  const seen = Object.fromEntries(list.map((a) => [a.lago_id, [a.status, a.terminated_at]]));
  assert.deepEqual(seen, {
    [applied[0]]: ['terminated', '2026-01-11T00:00:00Z'],
    [applied[1]]: ['terminated', done.terminated_at], // already ended: its end stays
  });
  // other coupons' applications are untouched
  assert.deepEqual((await call('GET', '/api/v1/applied_coupons?status=active')).body.applied_coupons, other);
  // a coupon made again with the code starts with no applications
  assert.equal((await call('POST', '/api/v1/coupons', { coupon })).status, 200);
  assert.equal((await apply({ external_customer_id: 'anna', coupon_code: 'doomed' })).status, 200);
  assert.equal((await call('GET', '/api/v1/applied_coupons?status=active&coupon_code[]=doomed')).body.meta.total_count, 1);
});

// A fixed-amount coupon gives a customer without a currency its own, as Lago's does: the
// customer cannot then subscribe in another. A percentage coupon has no currency to give.
// Found by an audit: the customer stayed without one, then subscribed in EUR with a USD coupon.
test('a fixed-amount coupon fixes the currency of a customer that has none', async () => {
  await call('POST', '/api/v1/customers', { customer: { external_id: 'carol' } });
  assert.equal((await apply({ external_customer_id: 'carol', coupon_code: 'pct' })).status, 200);
  assert.equal((await call('GET', '/api/v1/customers/carol')).body.customer.currency, null);
  const r = await apply({ external_customer_id: 'carol', coupon_code: 'ten', amount_currency: 'USD' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal((await call('GET', '/api/v1/customers/carol')).body.customer.currency, 'USD');
  await call('POST', '/api/v1/plans', { plan: { code: 'euro', name: 'Euro', interval: 'monthly', amount_cents: 100, amount_currency: 'EUR' } });
  const sub = await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'carol', plan_code: 'euro', external_id: 'carol_sub' } });
  assert.equal(sub.status, 422);
  assert.deepEqual(sub.body.error_details, { currency: ['currencies_does_not_match'] });
  // nor may the customer's currency move away from the active coupon's (an audit: it moved to
  // EUR with a 10.00 USD coupon active, and the EUR subscription was then taken)
  for (const currency of ['EUR', null]) {
    const moved = await call('POST', '/api/v1/customers', { customer: { external_id: 'carol', currency } });
    assert.equal(moved.status, 422, JSON.stringify(moved.body));
    assert.deepEqual(moved.body.error_details, { currency: ['currencies_does_not_match'] });
    assert.match(moved.body.message, /coupon ten was applied to this customer in USD/);
  }
  assert.equal((await call('GET', '/api/v1/customers/carol')).body.customer.currency, 'USD');
});

// An amount_currency override of a fixed coupon becomes the currency of a customer without one:
// Lago sets it through the customer (Customers::UpdateCurrencyService), so it is checked as
// POST /customers checks a currency (Tally takes any case there and stores it upper case), and
// a customer with a currency must be sent that one. A percentage coupon's override is still
// checked (Lago's AppliedCoupon validates it). Found by an audit: "XYZ" and "usd" were stored
// on the customer as sent, which then could neither subscribe nor change its currency.
test('an amount_currency override is checked and upper-cased as a customer currency', async () => {
  for (const external_id of ['cur_x', 'cur_l'])
    await call('POST', '/api/v1/customers', { customer: { external_id } });
  const currency = async (id) => (await call('GET', `/api/v1/customers/${id}`)).body.customer.currency;
  const applied = async (id) => (await call('GET', `/api/v1/customers/${id}/applied_coupons`)).body.meta.total_count;
  for (const amount_currency of ['XYZ', 'xyz', '', 'US']) {
    const r = await apply({ external_customer_id: 'cur_x', coupon_code: 'ten', amount_currency });
    assert.deepEqual([r.status, r.body.error_details], [422, { currency: ['value_is_invalid'] }], amount_currency);
  }
  assert.equal(await currency('cur_x'), null);
  assert.equal(await applied('cur_x'), 0);
  let r = await apply({ external_customer_id: 'cur_l', coupon_code: 'ten', amount_currency: 'usd' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.applied_coupon.amount_currency, 'USD');
  assert.equal(await currency('cur_l'), 'USD');
  // a customer with a currency: the same one in any case, never another (named `currency`, as Lago)
  assert.equal((await apply({ external_customer_id: 'cur_l', coupon_code: 'ten', amount_currency: 'uSd' })).status, 200);
  for (const amount_currency of ['eur', 'XYZ']) {
    r = await apply({ external_customer_id: 'cur_l', coupon_code: 'ten', amount_currency });
    assert.deepEqual([r.status, r.body.error_details], [422, { currency: ['currencies_does_not_match'] }], amount_currency);
  }
  assert.equal(await applied('cur_l'), 2);
  // a percentage coupon gives no currency, and its override must still be one
  r = await apply({ external_customer_id: 'cur_x', coupon_code: 'pct', amount_currency: 'XYZ' });
  assert.deepEqual([r.status, r.body.error_details], [422, { amount_currency: ['value_is_invalid'] }]);
  r = await apply({ external_customer_id: 'cur_x', coupon_code: 'pct', amount_currency: 'eur' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.applied_coupon.amount_currency, null);
  assert.equal(await currency('cur_x'), null);
});

// Lago's plan_overlapping: a customer holds at most one active coupon limited to a given plan,
// so two plan discounts never stack; a coupon limited to other plans, or one applied after the
// first ended, is taken. Found by an audit: both were applied.
test('two coupons limited to the same plan do not both apply to a customer', async () => {
  for (const code of ['p1', 'p3', 'p4'])
    await call('POST', '/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents: 100, amount_currency: 'EUR' } });
  const coupon = (code, plan_codes) => call('POST', '/api/v1/coupons', { coupon: { code, name: code, coupon_type: 'percentage', expiration: 'no_expiration', percentage_rate: '10', frequency: 'forever', applies_to: { plan_codes } } });
  await coupon('lim1', ['p1']);
  await coupon('lim2', ['p1', 'p3']);
  await coupon('lim4', ['p4']);
  await call('POST', '/api/v1/customers', { customer: { external_id: 'dora', currency: 'EUR' } });
  const first = await apply({ external_customer_id: 'dora', coupon_code: 'lim1' });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const overlapping = await apply({ external_customer_id: 'dora', coupon_code: 'lim2' });
  assert.deepEqual([overlapping.status, overlapping.body], [405, { status: 405, error: 'Method Not Allowed', code: 'plan_overlapping' }]);
  assert.equal((await apply({ external_customer_id: 'dora', coupon_code: 'lim4' })).status, 200);
  assert.equal((await apply({ external_customer_id: 'dora', coupon_code: 'pct' })).status, 200); // limited to nothing
  await call('DELETE', `/api/v1/customers/dora/applied_coupons/${first.body.applied_coupon.lago_id}`);
  assert.equal((await apply({ external_customer_id: 'dora', coupon_code: 'lim2' })).status, 200);
  // nor do they by a later limit on a coupon already applied (an audit: a PUT limited the
  // applied unlimited coupon to a plan another of the customer's coupons covered, 200): an
  // applied coupon keeps its limits, as Lago's (see the update test below)
  const limit = (code, plan_codes) => call('PUT', `/api/v1/coupons/${code}`, { coupon: { applies_to: { plan_codes } } });
  for (const [code, plans, kept] of [['lim4', ['p3'], ['p4']], ['lim4', ['p4', 'p1'], ['p4']], ['pct', ['p4'], []]]) {
    const r = await limit(code, plans);
    assert.deepEqual([r.status, r.body.coupon?.plan_codes], [200, kept], `${code} ${plans}`);
  }
  // a reusable coupon a customer holds twice cannot be limited to a plan either: its two
  // applications would stack (an audit: each application's check skipped both)
  await call('POST', '/api/v1/coupons', { coupon: { code: 'twice', name: 'twice', coupon_type: 'percentage', expiration: 'no_expiration', percentage_rate: '10', frequency: 'forever', reusable: true } });
  await call('POST', '/api/v1/customers', { customer: { external_id: 'erin', currency: 'EUR' } });
  for (let i = 0; i < 2; i++) assert.equal((await apply({ external_customer_id: 'erin', coupon_code: 'twice' })).status, 200);
  const twice = await limit('twice', ['p4']);
  assert.deepEqual([twice.status, twice.body.coupon?.limited_plans], [200, false]);
});

// Lago's plan_overlapping covers coupons limited to billable metrics too
// (AppliedCoupons::CreateService#plan_limitation_overlapping?): a coupon limited to plans or
// metrics is refused next to an active one of the customer limited to the same plan or metric,
// to a plan that charges one of its metrics, or to a metric one of its plans charges. Found by
// an audit: metric limits were never compared, so two 50% discounts stacked on the same fees.
test('coupons limited to billable metrics overlap on the metric and on the plans that charge it', async () => {
  const metric = async (code) => (await call('POST', '/api/v1/billable_metrics', { billable_metric: { code, name: code, aggregation_type: 'count_agg' } })).body.billable_metric.lago_id;
  const calls = await metric('ov_calls');
  const mins = await metric('ov_mins');
  await metric('ov_bytes');
  const plan = (code, ids) => call('POST', '/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents: 100, amount_currency: 'EUR',
    charges: ids.map((billable_metric_id) => ({ billable_metric_id, charge_model: 'standard', properties: { amount: '1' } })) } });
  for (const [code, ids] of [['ov_pc', [calls]], ['ov_pm', [mins]], ['ov_none', []]])
    assert.equal((await plan(code, ids)).status, 200, code);
  const coupon = (code, applies_to) => call('POST', '/api/v1/coupons', { coupon: { code, name: code, coupon_type: 'percentage', expiration: 'no_expiration', percentage_rate: '50', frequency: 'forever', applies_to } });
  for (const [code, applies_to] of [['ov_m_calls', { billable_metric_codes: ['ov_calls'] }], ['ov_m_calls2', { billable_metric_codes: ['ov_bytes', 'ov_calls'] }],
    ['ov_m_mins', { billable_metric_codes: ['ov_mins'] }], ['ov_m_bytes', { billable_metric_codes: ['ov_bytes'] }],
    ['ov_p_calls', { plan_codes: ['ov_pc'] }], ['ov_p_mins', { plan_codes: ['ov_pm'] }], ['ov_p_none', { plan_codes: ['ov_none'] }]])
    assert.equal((await coupon(code, applies_to)).status, 200, code);
  const customer = async (external_id) => call('POST', '/api/v1/customers', { customer: { external_id, currency: 'EUR' } });
  const outcome = async (id, code) => {
    const r = await apply({ external_customer_id: id, coupon_code: code });
    return r.status === 200 ? 'applied' : `${r.status} ${r.body.code}`;
  };
  const overlapping = '405 plan_overlapping';
  // metric next to metric
  await customer('ov1');
  assert.equal(await outcome('ov1', 'ov_m_calls'), 'applied');
  assert.equal(await outcome('ov1', 'ov_m_calls2'), overlapping); // shares ov_calls
  assert.equal(await outcome('ov1', 'ov_m_mins'), 'applied');
  // plan next to metric: the plan charges it, or not
  assert.equal(await outcome('ov1', 'ov_p_calls'), overlapping);
  assert.equal(await outcome('ov1', 'ov_p_mins'), overlapping);
  assert.equal(await outcome('ov1', 'ov_p_none'), 'applied');
  // metric next to plan
  await customer('ov2');
  assert.equal(await outcome('ov2', 'ov_p_calls'), 'applied');
  assert.equal(await outcome('ov2', 'ov_m_calls'), overlapping);
  assert.equal(await outcome('ov2', 'ov_m_calls2'), overlapping);
  assert.equal(await outcome('ov2', 'ov_m_bytes'), 'applied'); // ov_pc does not charge it
  assert.equal(await outcome('ov2', 'ov_m_mins'), 'applied');
  assert.equal(await outcome('ov2', 'pct'), 'applied'); // limited to nothing: overlaps nothing
  // a terminated one overlaps nothing
  const held = (await call('GET', '/api/v1/customers/ov2/applied_coupons?status=active')).body.applied_coupons;
  await call('DELETE', `/api/v1/customers/ov2/applied_coupons/${held.find((a) => a.coupon_code === 'ov_p_calls').lago_id}`);
  assert.equal(await outcome('ov2', 'ov_m_calls'), 'applied');
});

// Lago's Coupons::UpdateService: once a coupon has been applied (active or terminated since), an
// update changes only its name, description, expiration and expiration_at; the code, terms,
// reusable and limits it is sent are passed over, unread, and the answer shows them as they
// were. Found by an audit: Tally changed them all (code, type, rate, reusable, limits).
test('an update of a coupon that has been applied changes only its name, description and expiry', async () => {
  await call('POST', '/api/v1/plans', { plan: { code: 'fz_p', name: 'fz_p', interval: 'monthly', amount_cents: 100, amount_currency: 'USD' } });
  const made = await call('POST', '/api/v1/coupons', { coupon: { code: 'fz', name: 'fz', coupon_type: 'fixed_amount', expiration: 'no_expiration', amount_cents: 500, amount_currency: 'USD', frequency: 'once', reusable: true } });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  await call('POST', '/api/v1/customers', { customer: { external_id: 'fz_c', currency: 'USD' } });
  const applied = (await apply({ external_customer_id: 'fz_c', coupon_code: 'fz' })).body.applied_coupon;
  const frozen = ['lago_id', 'code', 'coupon_type', 'amount_cents', 'amount_currency', 'percentage_rate', 'frequency',
    'frequency_duration', 'reusable', 'limited_plans', 'plan_codes', 'limited_billable_metrics', 'billable_metric_codes', 'created_at'];
  const pick = (c) => Object.fromEntries(frozen.map((k) => [k, c[k]]));
  const put = (coupon) => call('PUT', '/api/v1/coupons/fz', { coupon });
  let r = await put({ name: 'renamed', description: 'now described', code: 'fz2', coupon_type: 'percentage', percentage_rate: '90',
    frequency: 'forever', reusable: false, expiration: 'time_limit', expiration_at: '2026-06-01T00:00:00Z', applies_to: { plan_codes: ['fz_p'] } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(pick(r.body.coupon), pick(made.body.coupon));
  assert.deepEqual([r.body.coupon.name, r.body.coupon.description, r.body.coupon.expiration, r.body.coupon.expiration_at],
    ['renamed', 'now described', 'time_limit', '2026-06-01T00:00:00Z']);
  assert.deepEqual((await call('GET', '/api/v1/coupons/fz')).body, r.body);
  assert.equal((await call('GET', '/api/v1/coupons/fz2')).status, 404);
  // what is passed over is not checked either (Lago does not read it); a past expiry still is
  r = await put({ name: 'again', coupon_type: 'gift', applies_to: { plan_codes: ['no_such_plan'] }, amount_cents: -1 });
  assert.deepEqual([r.status, r.body.coupon?.name], [200, 'again'], JSON.stringify(r.body));
  r = await put({ expiration_at: '2025-01-01T00:00:00Z' });
  assert.deepEqual([r.status, r.body.error_details], [422, { expiration_at: ['invalid_date'] }]);
  r = await put({ expiration: 'no_expiration' });
  assert.deepEqual([r.body.coupon.expiration, r.body.coupon.expiration_at], ['no_expiration', null]);
  // it stays so after its application ended (Lago: applied_coupons.exists?)
  await call('DELETE', `/api/v1/customers/fz_c/applied_coupons/${applied.lago_id}`);
  r = await put({ code: 'fz3', amount_cents: 1 });
  assert.deepEqual(pick(r.body.coupon), pick(made.body.coupon));
  // the applied coupon keeps its own terms, and answers the coupon's new name
  const seen = (await call('GET', '/api/v1/applied_coupons?coupon_code[]=fz')).body.applied_coupons;
  assert.deepEqual(seen.map((a) => [a.lago_id, a.coupon_name, a.amount_cents]), [[applied.lago_id, 'again', 500]]);
  // a coupon never applied changes as it is told (control)
  await call('POST', '/api/v1/coupons', { coupon: { code: 'fz_free', name: 'f', coupon_type: 'percentage', frequency: 'once', expiration: 'no_expiration', percentage_rate: '10' } });
  r = await call('PUT', '/api/v1/coupons/fz_free', { coupon: { code: 'fz_free2', percentage_rate: '20', reusable: false } });
  assert.deepEqual([r.body.coupon.code, r.body.coupon.percentage_rate, r.body.coupon.reusable], ['fz_free2', '20.0', false]);
});

// A route under a customer that does not exist says so first, as Lago's customer routes do
// (an audit found applied_coupon_not_found and wallet_not_found there).
test('routes under an unknown customer answer customer_not_found', async () => {
  const gone = { status: 404, error: 'Not Found', code: 'customer_not_found' };
  assert.deepEqual((await call('DELETE', '/api/v1/customers/nobody/applied_coupons/x')).body, gone);
  assert.deepEqual((await call('GET', '/api/v1/customers/nobody/wallets/x')).body, gone);
  assert.deepEqual((await call('PUT', '/api/v1/customers/nobody/wallets/x', { wallet: { name: 'n' } })).body, gone);
  assert.deepEqual((await call('DELETE', '/api/v1/customers/anna/applied_coupons/x')).body, { status: 404, error: 'Not Found', code: 'applied_coupon_not_found' });
  assert.deepEqual((await call('GET', '/api/v1/customers/anna/wallets/x')).body, { status: 404, error: 'Not Found', code: 'wallet_not_found' });
});

// Found by an audit: an applied coupon answered the code and name copied from its coupon when
// applied, and ?coupon_code[]= matched that copy, so a renamed coupon's applications showed
// and were found under the old code. Its terms (rate, amount, frequency) stay as applied. An
// applied coupon's code no longer changes (Lago keeps it, see above); its name does.
test('an applied coupon answers its coupon\'s current name and is found under its code', async () => {
  const coupon = { code: 'ren_k', name: 'Old name', coupon_type: 'percentage', expiration: 'no_expiration', percentage_rate: '10', frequency: 'forever' };
  assert.equal((await call('POST', '/api/v1/coupons', { coupon })).status, 200);
  await call('POST', '/api/v1/customers', { customer: { external_id: 'ren_cust' } });
  const applied = (await apply({ external_customer_id: 'ren_cust', coupon_code: 'ren_k' })).body.applied_coupon;
  assert.equal((await call('PUT', '/api/v1/coupons/ren_k', { coupon: { code: 'ren_k2', name: 'New name', percentage_rate: '30' } })).status, 200);
  const seen = (q) => call('GET', `/api/v1/applied_coupons?${q}`).then((r) => r.body.applied_coupons.map((a) => [a.lago_id, a.coupon_code, a.coupon_name, a.percentage_rate]));
  const now = [[applied.lago_id, 'ren_k', 'New name', applied.percentage_rate]];
  assert.deepEqual(await seen('external_customer_id=ren_cust'), now);
  assert.deepEqual(await seen('coupon_code[]=ren_k'), now);
  assert.deepEqual(await seen('coupon_code[]=ren_k2'), []);
});

// Lago's applied coupon answers its coupon's expiration_at as it is now (the serializer reads it
// through the coupon): it is not one of the terms copied when applied. Found by an audit: a copy
// made when applied kept answering null after the coupon was given an expiry, even once the
// coupon had expired.
test('an applied coupon answers its coupon\'s current expiration_at', async () => {
  const coupon = { code: 'exp_live', name: 'Live expiry', coupon_type: 'percentage', percentage_rate: '10', frequency: 'forever', expiration: 'no_expiration' };
  assert.equal((await call('POST', '/api/v1/coupons', { coupon })).status, 200);
  await call('POST', '/api/v1/customers', { customer: { external_id: 'exp_cust' } });
  const applied = (await apply({ external_customer_id: 'exp_cust', coupon_code: 'exp_live' })).body.applied_coupon;
  assert.equal(applied.expiration_at, null);
  const at = '2026-03-01T00:00:00Z';
  const r = await call('PUT', '/api/v1/coupons/exp_live', { coupon: { expiration: 'time_limit', expiration_at: at } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const seen = async () => (await call('GET', '/api/v1/customers/exp_cust/applied_coupons')).body.applied_coupons.map((a) => a.expiration_at);
  assert.deepEqual(await seen(), [at]);
  assert.deepEqual((await call('GET', '/api/v1/applied_coupons?coupon_code[]=exp_live')).body.applied_coupons.map((a) => a.expiration_at), [at]);
  // and after the coupon expired and ended, still the coupon's
  await call('POST', '/api/v1/test_clock/advance', { test_clock: { to: '2026-03-02T00:00:00Z' } });
  assert.equal((await call('GET', '/api/v1/coupons/exp_live')).body.coupon.terminated_at, at);
  assert.deepEqual(await seen(), [at]);
  // the DELETE answer reads it too
  const done = await call('DELETE', `/api/v1/customers/exp_cust/applied_coupons/${applied.lago_id}`);
  assert.equal(done.body.applied_coupon.expiration_at, at);
});

// Lago's AppliedCouponsQuery lists the applied coupons of customers not deleted only (its base
// scope joins customers with deleted_at nil), under every filter and in meta.total_count. Found
// by an audit: a deleted customer's terminated applications were listed and counted.
test('GET /applied_coupons leaves out the applied coupons of deleted customers', async () => {
  const coupon = { code: 'del_c', name: 'Del', coupon_type: 'percentage', percentage_rate: '10', frequency: 'forever', expiration: 'no_expiration' };
  assert.equal((await call('POST', '/api/v1/coupons', { coupon })).status, 200);
  for (const external_id of ['del_gone', 'del_live']) {
    await call('POST', '/api/v1/customers', { customer: { external_id } });
    assert.equal((await apply({ external_customer_id: external_id, coupon_code: 'del_c' })).status, 200);
  }
  const customers = (q) => call('GET', `/api/v1/applied_coupons?${q}`).then((r) => [r.body.applied_coupons.map((a) => a.external_customer_id), r.body.meta.total_count]);
  assert.deepEqual(await customers('coupon_code[]=del_c'), [['del_live', 'del_gone'], 2]);
  const all = (await customers('per_page=1000'))[1];
  const terminated = (await customers('per_page=1000&status=terminated'))[1];
  assert.equal((await call('DELETE', '/api/v1/customers/del_gone')).status, 200);
  assert.deepEqual(await customers('coupon_code[]=del_c'), [['del_live'], 1]);
  assert.deepEqual(await customers('coupon_code[]=del_c&status=terminated'), [[], 0]);
  assert.equal((await customers('per_page=1000'))[1], all - 1);
  assert.equal((await customers('per_page=1000&status=terminated'))[1], terminated);
  assert.deepEqual(await customers('external_customer_id=del_gone'), [[], 0]);
  // a customer made again with the external id lists its own only
  await call('POST', '/api/v1/customers', { customer: { external_id: 'del_gone' } });
  assert.deepEqual(await customers('external_customer_id=del_gone'), [[], 0]);
  assert.deepEqual((await call('GET', '/api/v1/customers/del_gone/applied_coupons')).body.meta.total_count, 0);
});
