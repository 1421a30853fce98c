// Which taxes a fee carries, over real HTTP: the charge's tax_codes, else the plan's, else the
// organization's (taxes with applied_to_organization true), as Lago resolves them. Current
// usage, wallet debits, estimate_fees and holds all price with the same taxes, and editing an
// organization tax (its flag, its rate, creating or deleting one) re-prices the live usages
// that rely on it mid-period, and only those.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
const call = (method, path, body) => t.call(method, path, body);
const wallets = {};
let n = 0;

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-06-10T00:00:00Z']);
  const m = (await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'm', name: 'M', aggregation_type: 'sum_agg', field_name: 'v' } })).billable_metric;
  await call('POST', '/api/v1/taxes', { tax: { code: 'org', name: 'Org', rate: '10', applied_to_organization: true } });
  await call('POST', '/api/v1/taxes', { tax: { code: 'pt', name: 'Plan tax', rate: '20' } });
  await call('POST', '/api/v1/taxes', { tax: { code: 'ct', name: 'Charge tax', rate: '5' } });
  // one cent a unit; pay in advance so that estimate_fees quotes it
  const charge = (extra = {}) => ({ billable_metric_id: m.lago_id, charge_model: 'standard', pay_in_advance: true, properties: { amount: '0.01' }, ...extra });
  const plan = (code, extra, ch) => call('POST', '/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [ch], ...extra } });
  await plan('p_org', {}, charge()); // organization taxes
  await plan('p_plan', { tax_codes: ['pt'] }, charge()); // the plan's
  await plan('p_charge', { tax_codes: ['pt'] }, charge({ tax_codes: ['ct'] })); // the charge's
  for (const k of ['org', 'plan', 'charge']) {
    await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: `c_${k}`, plan_code: `p_${k}`, external_id: `s_${k}`, subscription_at: '2026-06-01T00:00:00Z' } });
    // 100 credits of 1 USD: 10000 cents
    wallets[k] = (await call('POST', '/api/v1/wallets', { wallet: { external_customer_id: `c_${k}`, currency: 'USD', rate_amount: '1', granted_credits: '100' } })).wallet.lago_id;
  }
});
after(async () => { await t.cleanup(); });

const usage = async (k) => {
  const u = (await call('GET', `/api/v1/customers/c_${k}/current_usage?external_subscription_id=s_${k}`)).customer_usage;
  return [u.amount_cents, u.taxes_amount_cents, u.total_amount_cents];
};
const balance = async (k) => (await call('GET', `/api/v1/wallets/${wallets[k]}`)).wallet.balance_cents;
const estimate = async (k, v) => {
  const f = (await call('POST', '/api/v1/events/estimate_fees', { event: { external_subscription_id: `s_${k}`, code: 'm', properties: { v } } })).fees[0];
  return [f.amount_cents, f.taxes_amount_cents, f.total_amount_cents, f.taxes_rate];
};
const send = (k, v) => call('POST', '/api/v1/events', { event: { transaction_id: `e${n++}`, external_subscription_id: `s_${k}`, code: 'm', properties: { v } } });
const setTax = (code, tax) => call('PUT', `/api/v1/taxes/${code}`, { tax });

test('charge taxes, else plan taxes, else organization taxes: usage, estimate, debit and hold agree', async () => {
  assert.deepEqual(await estimate('org', 1000), [1000, 100, 1100, 10]);
  assert.deepEqual(await estimate('plan', 1000), [1000, 200, 1200, 20]);
  assert.deepEqual(await estimate('charge', 1000), [1000, 50, 1050, 5]);
  for (const k of ['org', 'plan', 'charge']) await send(k, 1000);
  assert.deepEqual(await usage('org'), [1000, 100, 1100]);
  assert.deepEqual(await usage('plan'), [1000, 200, 1200]);
  assert.deepEqual(await usage('charge'), [1000, 50, 1050]);
  assert.equal(await balance('org'), 10000 - 1100);
  assert.equal(await balance('plan'), 10000 - 1200);
  assert.equal(await balance('charge'), 10000 - 1050);
  // a hold prices the event as the debit will, organization taxes included
  const a = (await call('POST', '/api/v1/authorizations', { authorization: { external_subscription_id: 's_org', code: 'm', properties: { v: 500 }, expires_in: 3600 } })).authorization;
  assert.equal(a.amount_cents, 550);
  assert.equal(a.held_amount_cents, 550);
  await call('POST', `/api/v1/authorizations/${a.lago_id}/void`, {});
  assert.equal(await balance('org'), 10000 - 1100);
});

test('turning applied_to_organization off and on mid-period re-prices only the usage that relies on it', async () => {
  await setTax('org', { applied_to_organization: false });
  assert.deepEqual(await usage('org'), [1000, 0, 1000]);
  assert.deepEqual(await estimate('org', 1000), [1000, 0, 1000, 0]);
  assert.deepEqual(await usage('plan'), [1000, 200, 1200]);
  assert.deepEqual(await usage('charge'), [1000, 50, 1050]);
  await send('org', 1000); // the fee is now 2000 untaxed; 1100 was debited
  assert.deepEqual(await usage('org'), [2000, 0, 2000]);
  assert.equal(await balance('org'), 10000 - 2000);

  await setTax('org', { applied_to_organization: true });
  assert.deepEqual(await usage('org'), [2000, 200, 2200]);
  assert.deepEqual(await estimate('org', 1000), [1000, 100, 1100, 10]);
  await send('org', 1000); // 3300 in all: this debit takes the 200 of taxes back on too
  assert.deepEqual(await usage('org'), [3000, 300, 3300]);
  assert.equal(await balance('org'), 10000 - 3300);
  assert.equal(await balance('plan'), 10000 - 1200);
  assert.equal(await balance('charge'), 10000 - 1050);
});

test('an organization tax\'s rate, and creating or deleting one, re-price the same usages', async () => {
  await setTax('org', { rate: '15' });
  assert.deepEqual(await usage('org'), [3000, 450, 3450]);
  await call('POST', '/api/v1/taxes', { tax: { code: 'org2', name: 'Org 2', rate: '2.5', applied_to_organization: true } });
  assert.deepEqual(await usage('org'), [3000, 525, 3525]); // 17.5 %
  assert.deepEqual(await estimate('org', 1), [1, 0, 1, 17.5]); // 0.175 cent rounds to 0
  assert.deepEqual(await usage('plan'), [1000, 200, 1200]);
  assert.deepEqual(await usage('charge'), [1000, 50, 1050]);
  await send('org', 1000);
  assert.deepEqual(await usage('org'), [4000, 700, 4700]);
  assert.equal(await balance('org'), 10000 - 4700);
  await call('DELETE', '/api/v1/taxes/org2');
  assert.deepEqual(await usage('org'), [4000, 600, 4600]);
  // a plan that names only taxes that are gone has no taxes of its own: the organization's apply
  await call('DELETE', '/api/v1/taxes/pt');
  assert.deepEqual(await usage('plan'), [1000, 150, 1150]);
  assert.deepEqual(await usage('charge'), [1000, 50, 1050]);
  // and they survive a restart (usages are rebuilt from the store)
  await t.restart();
  assert.deepEqual(await usage('org'), [4000, 600, 4600]);
  assert.deepEqual(await usage('plan'), [1000, 150, 1150]);
  assert.deepEqual(await usage('charge'), [1000, 50, 1050]);
});

// Taxes are rounded once over the usage, as Lago's invoice rounds them: two charges whose
// taxes are half a cent each bring one cent of taxes, not two. The debits, the estimates and
// a hold add up to the usage's total, not to the fees' own roundings.
test('debits, estimates and holds add up to the usage total, taxes rounded once', async () => {
  await call('POST', '/api/v1/taxes', { tax: { code: 'half', name: 'Half', rate: '50' } });
  const metrics = [];
  for (const code of ['ra', 'rb', 'rc']) metrics.push((await call('POST', '/api/v1/billable_metrics', { billable_metric: { code, name: code, aggregation_type: 'count_agg' } })).billable_metric.lago_id);
  await call('POST', '/api/v1/plans', { plan: { code: 'p_round', name: 'Round', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', tax_codes: ['half'],
    charges: metrics.map((id) => ({ billable_metric_id: id, charge_model: 'standard', pay_in_advance: true, properties: { amount: '0.01' } })) } });
  await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c_round', plan_code: 'p_round', external_id: 's_round', subscription_at: '2026-06-01T00:00:00Z' } });
  const wallet = (await call('POST', '/api/v1/wallets', { wallet: { external_customer_id: 'c_round', currency: 'USD', rate_amount: '0.01', granted_credits: '1000' } })).wallet.lago_id;
  const debited = async () => 1000 - (await call('GET', `/api/v1/wallets/${wallet}`)).wallet.balance_cents;
  const total = async () => (await call('GET', '/api/v1/customers/c_round/current_usage?external_subscription_id=s_round')).customer_usage.total_amount_cents;
  const quote = async (code) => (await call('POST', '/api/v1/events/estimate_fees', { event: { external_subscription_id: 's_round', code } })).fees[0].total_amount_cents;
  let quoted = 0;
  for (const code of ['ra', 'rb', 'rc', 'ra', 'rb']) {
    const q = await quote(code);
    const hold = (await call('POST', '/api/v1/authorizations', { authorization: { external_subscription_id: 's_round', code, expires_in: 3600 } })).authorization;
    assert.equal(hold.amount_cents, q, `hold vs estimate for ${code}`);
    await call('POST', `/api/v1/authorizations/${hold.lago_id}/void`, {});
    const before = await debited();
    await call('POST', '/api/v1/events', { event: { transaction_id: `round${n++}`, external_subscription_id: 's_round', code } });
    assert.equal(await debited() - before, q, `debit vs estimate for ${code}`);
    quoted += q;
    assert.equal(await debited(), await total());
  }
  // 5 cents of usage, 2.5 of taxes rounded once: 8; each fee rounded alone would make 10
  assert.equal(await total(), 8);
  assert.equal(quoted, 8);
});

// A tax raised mid-period re-prices the units counted, and what it adds is debited by the edit
// (raise_debits.test.mjs); the rounded taxes are shared between charges (each charge's share:
// what its taxes add to those before it, rounded), so a rise can lower another charge's share by
// a cent, which comes back: re-pricing settles charge by charge, as each charge's debit is its
// own wallets' (an audit found the cent; netting the charges instead let a wallet keep another's
// usage, wallet_giveback.test.mjs). The period's debits stay its total at every step.
test('a tax raised mid-period: each charge is settled to its rounded share of the taxes, by the edit', async () => {
  await call('POST', '/api/v1/taxes', { tax: { code: 'raise_p', name: 'P', rate: '5' } });
  await call('POST', '/api/v1/taxes', { tax: { code: 'raise_c', name: 'C', rate: '7' } });
  const ids = [];
  for (const code of ['ta', 'tb']) ids.push((await call('POST', '/api/v1/billable_metrics', { billable_metric: { code, name: code, aggregation_type: 'sum_agg', field_name: 'v' } })).billable_metric.lago_id);
  await call('POST', '/api/v1/plans', { plan: { code: 'p_raise', name: 'Raise', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', tax_codes: ['raise_p'], charges: [
    { billable_metric_id: ids[0], charge_model: 'standard', properties: { amount: '0.01' } },
    { billable_metric_id: ids[1], charge_model: 'standard', properties: { amount: '0.01' }, tax_codes: ['raise_c'] },
  ] } });
  await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c_raise', plan_code: 'p_raise', external_id: 's_raise', subscription_at: '2026-06-01T00:00:00Z' } });
  const wallet = (await call('POST', '/api/v1/wallets', { wallet: { external_customer_id: 'c_raise', currency: 'USD', rate_amount: '1', granted_credits: '100' } })).wallet.lago_id;
  const consumed = async () => (await call('GET', `/api/v1/wallets/${wallet}`)).wallet.consumed_amount_cents;
  const total = async () => (await call('GET', '/api/v1/customers/c_raise/current_usage?external_subscription_id=s_raise')).customer_usage.total_amount_cents;
  for (const code of ['ta', 'tb']) await call('POST', '/api/v1/events', { event: { transaction_id: `raise${n++}`, external_subscription_id: 's_raise', code, properties: { v: 39 } } });
  // 78 cents, taxes 1.95 + 2.73 = 4.68 -> 5: shares 2 (ta) and 3 (tb)
  assert.deepEqual([await total(), await consumed()], [83, 83]);
  await setTax('raise_p', { rate: '30' }); // 11.7 + 2.73 = 14.43 -> 14: shares 12 (+10) and 2 (-1)
  assert.deepEqual([await total(), await consumed()], [92, 92]);
  await call('POST', '/api/v1/events', { event: { transaction_id: `raise${n++}`, external_subscription_id: 's_raise', code: 'ta', properties: { v: 0 } } });
  assert.deepEqual([await total(), await consumed()], [92, 92]); // nothing left for the next debit
  await setTax('raise_p', { rate: '5' }); // shares 2 and 3: ta gives 10 back, tb takes its cent
  assert.deepEqual([await total(), await consumed()], [83, 83]);
});

// DELETE /taxes/{code} takes the tax off everything that named it, as Lago's Taxes::DestroyService
// destroys its applied-tax links: plans (their own, their charges' and their minimum
// commitment's tax_codes), add-ons, and subscriptions' own plans (plan_overrides). Before this
// (an audit found it), the dead code stayed: every later PUT of such a plan, even of its
// description alone, was 404 tax_not_found, and a new tax made with the same code was silently
// applied to those plans again, and so to their live usage and wallet debits.
test('a deleted tax leaves every definition that named it; a new tax with its code is not attached', async () => {
  await call('POST', '/api/v1/taxes', { tax: { code: 'gone', name: 'Gone', rate: '30' } });
  const m = (await call('GET', '/api/v1/billable_metrics/m')).billable_metric;
  const charge = { billable_metric_id: m.lago_id, charge_model: 'standard', pay_in_advance: true, properties: { amount: '0.01' }, tax_codes: ['gone'] };
  await call('POST', '/api/v1/plans', { plan: { code: 'p_gone', name: 'Gone', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', tax_codes: ['gone'],
    minimum_commitment: { amount_cents: 100, tax_codes: ['gone'] }, charges: [charge] } });
  await call('POST', '/api/v1/add_ons', { add_on: { code: 'a_gone', name: 'Gone', amount_cents: 100, amount_currency: 'USD', tax_codes: ['gone'] } });
  await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c_gone', plan_code: 'p_gone', external_id: 's_gone', subscription_at: '2026-06-01T00:00:00Z' } });
  await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c_own', plan_code: 'p_gone', external_id: 's_own', subscription_at: '2026-06-01T00:00:00Z',
    plan_overrides: { tax_codes: ['gone'], description: 'its own' } } });
  for (const k of ['gone', 'own']) await send(k, 1000);
  for (const k of ['gone', 'own']) assert.deepEqual(await usage(k), [1000, 300, 1300]);

  await call('DELETE', '/api/v1/taxes/gone');
  // what a plan with no taxes of its own pays: the organization's taxes
  const orgRate = (await estimate('org', 1))[3];
  const taxed = [1000, 1000 * orgRate / 100, 1000 + 1000 * orgRate / 100];
  for (const k of ['gone', 'own']) assert.deepEqual(await usage(k), taxed, k);
  const check = async () => {
    const p = (await call('GET', '/api/v1/plans/p_gone')).plan;
    assert.deepEqual([p.tax_codes, p.taxes, p.charges[0].tax_codes, p.charges[0].taxes, p.minimum_commitment.tax_codes], [[], [], [], [], []]);
    const a = (await call('GET', '/api/v1/add_ons/a_gone')).add_on;
    assert.deepEqual([a.tax_codes, a.taxes], [[], []]);
    const own = (await call('GET', '/api/v1/subscriptions/s_own')).subscription.plan;
    assert.deepEqual([own.tax_codes, own.taxes, own.description], [[], [], 'its own']);
  };
  await check();
  // the plan and the add-on can be edited again
  assert.equal((await call('PUT', '/api/v1/plans/p_gone', { plan: { description: 'just a description' } })).plan.description, 'just a description');
  await call('PUT', '/api/v1/add_ons/a_gone', { add_on: { description: 'again' } });
  // a new tax with the same code is another tax: nothing names it
  await call('POST', '/api/v1/taxes', { tax: { code: 'gone', name: 'Another', rate: '5' } });
  await check();
  for (const k of ['gone', 'own']) assert.deepEqual(await usage(k), taxed, k);
  await t.restart();
  await check();
  for (const k of ['gone', 'own']) assert.deepEqual(await usage(k), taxed, k);
});

// A fee carries at most 32 taxes: a definition naming more, or a 33rd default tax, is refused
// (an audit found the 33rd kept, answered, and never applied).
test('at most 32 taxes a definition names, and 32 default taxes, each refused past with a message', async () => {
  const codes = [];
  for (let i = 0; i < 33; i++) {
    codes.push(`many${i}`);
    const r = await t.api('/api/v1/taxes', { method: 'POST', body: { tax: { code: `many${i}`, name: `Many ${i}`, rate: '1' } } });
    assert.equal(r.status, 200);
  }
  const m = (await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'many_m', name: 'Many', aggregation_type: 'count_agg' } })).billable_metric;
  const plan = (tax_codes, chargeTaxes) => t.api('/api/v1/plans', { method: 'POST', body: { plan: { code: `many_p${n++}`, name: 'Many', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', tax_codes,
    charges: [{ billable_metric_id: m.lago_id, charge_model: 'standard', properties: { amount: '1' }, tax_codes: chargeTaxes }] } } });
  for (const r of [await plan(codes, []), await plan([], codes)]) {
    const body = await r.json();
    assert.equal(r.status, 422, JSON.stringify(body));
    assert.deepEqual(Object.values(body.error_details).flat(), ['too_many_items']);
    assert.match(body.message, /at most 32/);
  }
  // 32, and a code named twice counts once
  assert.equal((await plan([...codes.slice(0, 32), codes[0]], codes.slice(1, 33))).status, 200);
  // default taxes: the organization's 'org' is one already
  const defaults = (await call('GET', '/api/v1/taxes?per_page=100')).taxes.filter((x) => x.applied_to_organization).length;
  for (let i = 0; i < 32 - defaults; i++)
    assert.equal((await t.api(`/api/v1/taxes/many${i}`, { method: 'PUT', body: { tax: { applied_to_organization: true } } })).status, 200, `default ${i}`);
  let r = await t.api('/api/v1/taxes/many32', { method: 'PUT', body: { tax: { applied_to_organization: true } } });
  let body = await r.json();
  assert.deepEqual([r.status, body.error_details], [422, { applied_to_organization: ['too_many_items'] }]);
  assert.match(body.message, /at most 32 default taxes/);
  r = await t.api('/api/v1/taxes', { method: 'POST', body: { tax: { code: 'many_new', name: 'New', rate: '1', applied_to_organization: true } } });
  assert.equal(r.status, 422);
  // a default tax edited stays one; one made default again after another stops being one
  assert.equal((await t.api('/api/v1/taxes/many0', { method: 'PUT', body: { tax: { rate: '2' } } })).status, 200);
  assert.equal((await t.api('/api/v1/taxes/many0', { method: 'PUT', body: { tax: { applied_to_organization: false } } })).status, 200);
  assert.equal((await t.api('/api/v1/taxes/many32', { method: 'PUT', body: { tax: { applied_to_organization: true } } })).status, 200);
  for (const code of codes) await t.api(`/api/v1/taxes/${code}`, { method: 'DELETE' });
});
