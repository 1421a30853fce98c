// A customer's own taxes over real HTTP (Lago's customer tax_codes): answered as full tax
// objects, checked to exist, and carried by each charge's fee where neither the charge nor the
// plan names taxes, before the organization's default taxes. Current usage, estimate_fees,
// holds and wallet debits all price with them; changing them, or deleting a tax they name,
// re-prices the customer's live usage at once: what its wallets paid beyond it comes back at
// once, and the next debit takes up what it adds.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
const send = async (method, path, body) => {
  const r = await t.api(path, { method, body });
  return { status: r.status, body: await r.json() };
};
const call = async (method, path, body) => {
  const r = await send(method, path, body);
  assert.equal(r.status, 200, `${method} ${path}: ${JSON.stringify(r.body)}`);
  return r.body;
};
const customer = (c) => call('POST', '/api/v1/customers', { customer: c });
const taxesOf = (c) => c.taxes.map((x) => [x.code, x.rate]);
const usage = async (k) => {
  const u = (await call('GET', `/api/v1/customers/${k}/current_usage?external_subscription_id=s_${k}`)).customer_usage;
  return [u.amount_cents, u.taxes_amount_cents, u.total_amount_cents];
};
const wallets = {};
const balance = async (k) => (await call('GET', `/api/v1/wallets/${wallets[k]}`)).wallet.balance_cents;
let n = 0;
const event = (k, v) => call('POST', '/api/v1/events', { event: { transaction_id: `e${n++}`, external_subscription_id: `s_${k}`, code: 'm', properties: { v } } });

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-06-10T00:00:00Z']);
  const m = (await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'm', name: 'M', aggregation_type: 'sum_agg', field_name: 'v' } })).billable_metric;
  await call('POST', '/api/v1/taxes', { tax: { code: 'org', name: 'Org', rate: '10', applied_to_organization: true } });
  await call('POST', '/api/v1/taxes', { tax: { code: 'vat', name: 'VAT', rate: '20' } });
  await call('POST', '/api/v1/taxes', { tax: { code: 'extra', name: 'Extra', rate: '7.5' } });
  await call('POST', '/api/v1/taxes', { tax: { code: 'pt', name: 'Plan tax', rate: '5' } });
  // one cent a unit; paid in advance, so that estimate_fees quotes it
  const charge = { billable_metric_id: m.lago_id, charge_model: 'standard', pay_in_advance: true, properties: { amount: '0.01' } };
  const plan = (code, extra) => call('POST', '/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [charge], ...extra } });
  await plan('bare', {});
  await plan('taxed', { tax_codes: ['pt'] });
});
after(async () => { await t.cleanup(); });

async function subscribe(k, planCode, taxCodes) {
  const c = (await customer({ external_id: k, ...(taxCodes ? { tax_codes: taxCodes } : {}) })).customer;
  await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: k, plan_code: planCode, external_id: `s_${k}`, subscription_at: '2026-06-01T00:00:00Z' } });
  // 100 credits of 1 USD: 10000 cents
  wallets[k] = (await call('POST', '/api/v1/wallets', { wallet: { external_customer_id: k, currency: 'USD', rate_amount: '1', granted_credits: '100' } })).wallet.lago_id;
  return c;
}

test('tax_codes are answered as full tax objects, each once; unknown codes and bad shapes change nothing', async () => {
  const c = (await customer({ external_id: 'shape', tax_codes: ['vat', 'extra', 'vat'] })).customer;
  assert.deepEqual(taxesOf(c), [['vat', 20], ['extra', 7.5]]);
  assert.equal(c.taxes[0].name, 'VAT');
  assert.ok(c.taxes[0].lago_id);
  assert.deepEqual(taxesOf((await call('GET', '/api/v1/customers/shape')).customer), [['vat', 20], ['extra', 7.5]]);
  const listed = (await call('GET', '/api/v1/customers?per_page=100')).customers.find((x) => x.external_id === 'shape');
  assert.deepEqual(taxesOf(listed), [['vat', 20], ['extra', 7.5]]);
  // an update that does not send tax_codes keeps them
  assert.deepEqual(taxesOf((await customer({ external_id: 'shape', name: 'Shape' })).customer), [['vat', 20], ['extra', 7.5]]);

  let r = await send('POST', '/api/v1/customers', { customer: { external_id: 'shape', name: 'Other', tax_codes: ['vat', 'nope'] } });
  assert.equal(r.status, 404);
  assert.equal(r.body.code, 'tax_not_found');
  r = await send('POST', '/api/v1/customers', { customer: { external_id: 'never', tax_codes: ['nope'] } });
  assert.equal(r.status, 404);
  assert.equal((await send('GET', '/api/v1/customers/never')).status, 404);
  r = await send('POST', '/api/v1/customers', { customer: { external_id: 'shape', tax_codes: 'vat' } });
  assert.equal(r.status, 422);
  assert.deepEqual(r.body.error_details, { tax_codes: ['invalid_type'] });
  r = await send('POST', '/api/v1/customers', { customer: { external_id: 'shape', tax_codes: Array.from({ length: 33 }, (_, i) => `t${i}`) } });
  assert.equal(r.status, 422);
  assert.deepEqual(r.body.error_details, { tax_codes: ['too_many_items'] });
  // the limit counts taxes, not how often one is named
  assert.deepEqual(taxesOf((await customer({ external_id: 'shape', tax_codes: Array(40).fill('vat').concat(['extra']) })).customer), [['vat', 20], ['extra', 7.5]]);
  const kept = (await call('GET', '/api/v1/customers/shape')).customer;
  assert.equal(kept.name, 'Shape');
  assert.deepEqual(taxesOf(kept), [['vat', 20], ['extra', 7.5]]);
  // an empty list names none; null changes nothing, as Rails' permit drops it before Lago's
  // upsert (an audit found a client's null wiping the customer's taxes)
  assert.deepEqual((await customer({ external_id: 'shape', tax_codes: [] })).customer.taxes, []);
  await customer({ external_id: 'shape', tax_codes: ['vat'] });
  assert.deepEqual(taxesOf((await customer({ external_id: 'shape', tax_codes: null })).customer), [['vat', 20]]);
});

test("the customer's taxes come after the charge's and the plan's, before the organization's", async () => {
  await subscribe('own', 'bare', ['vat', 'extra']); // 27.5%
  await subscribe('plan', 'taxed', ['vat']); // the plan's 5% wins
  await subscribe('none', 'bare'); // the organization's 10%
  for (const k of ['own', 'plan', 'none']) await event(k, 1000);
  assert.deepEqual(await usage('own'), [1000, 275, 1275]);
  assert.deepEqual(await usage('plan'), [1000, 50, 1050]);
  assert.deepEqual(await usage('none'), [1000, 100, 1100]);
  assert.equal(await balance('own'), 10000 - 1275);
  assert.equal(await balance('plan'), 10000 - 1050);
  assert.equal(await balance('none'), 10000 - 1100);
  const fee = (await call('POST', '/api/v1/events/estimate_fees', { event: { external_subscription_id: 's_own', code: 'm', properties: { v: 200 } } })).fees[0];
  assert.deepEqual([fee.amount_cents, fee.taxes_amount_cents, fee.total_amount_cents, fee.taxes_rate], [200, 55, 255, 27.5]);
  const hold = (await call('POST', '/api/v1/authorizations', { authorization: { external_subscription_id: 's_own', code: 'm', properties: { v: 200 }, expires_in: 3600 } })).authorization;
  assert.equal(hold.amount_cents, 255);
  await call('POST', `/api/v1/authorizations/${hold.lago_id}/void`, {});
});

test("changing a customer's taxes re-prices its live usage at once; what it adds the next debit takes, what it takes off comes back", async () => {
  await customer({ external_id: 'own', tax_codes: ['extra'] });
  assert.deepEqual(await usage('own'), [1000, 75, 1075]);
  assert.deepEqual(await usage('none'), [1000, 100, 1100]); // another customer's is as it was
  await event('own', 1000);
  assert.deepEqual(await usage('own'), [2000, 150, 2150]);
  assert.equal(await balance('own'), 10000 - 2150);
  // none left: the organization's taxes apply again
  await customer({ external_id: 'own', tax_codes: [] });
  assert.deepEqual(await usage('own'), [2000, 200, 2200]);
  await event('own', 0);
  assert.equal(await balance('own'), 10000 - 2200);
  // a lower tax again: the 50 it takes off come back with the change, no event needed
  await customer({ external_id: 'own', tax_codes: ['extra'] });
  assert.deepEqual(await usage('own'), [2000, 150, 2150]);
  assert.equal(await balance('own'), 10000 - 2150);
});

test('a deleted tax leaves the customers that named it, and their usage is priced without it', async () => {
  await customer({ external_id: 'own', tax_codes: ['extra', 'vat'] });
  assert.deepEqual(await usage('own'), [2000, 550, 2550]);
  await call('DELETE', '/api/v1/taxes/extra');
  assert.deepEqual(taxesOf((await call('GET', '/api/v1/customers/own')).customer), [['vat', 20]]);
  assert.deepEqual(await usage('own'), [2000, 400, 2400]);
  await call('DELETE', '/api/v1/taxes/vat');
  assert.deepEqual((await call('GET', '/api/v1/customers/own')).customer.taxes, []);
  assert.deepEqual(await usage('own'), [2000, 200, 2200]); // the organization's again
  // a new tax with an old code is not the customer's
  await call('POST', '/api/v1/taxes', { tax: { code: 'vat', name: 'VAT again', rate: '30' } });
  assert.deepEqual((await call('GET', '/api/v1/customers/own')).customer.taxes, []);
  assert.deepEqual(await usage('own'), [2000, 200, 2200]);
  await event('own', 0);
  assert.equal(await balance('own'), 10000 - 2200);
});

test("a customer's taxes survive a restart", async () => {
  await customer({ external_id: 'own', tax_codes: ['vat'] });
  assert.deepEqual(await usage('own'), [2000, 600, 2600]);
  await t.restart({ kill: true });
  assert.deepEqual(taxesOf((await call('GET', '/api/v1/customers/own')).customer), [['vat', 30]]);
  assert.deepEqual(await usage('own'), [2000, 600, 2600]);
});

// A renamed tax (PUT with a new code) is still the one customers, plans and subscriptions' own
// plans name, under its new code, as Lago links applied taxes by id; before, they kept the old
// code: the tax fell off (the organization's taxes applied instead), and a new tax made with
// the old code was applied to them.
test('a renamed tax stays applied to the customers and plans that named it', async () => {
  await call('POST', '/api/v1/taxes', { tax: { code: 'gst', name: 'GST', rate: '15' } });
  await customer({ external_id: 'own', tax_codes: ['gst'] });
  assert.deepEqual(await usage('own'), [2000, 300, 2300]);
  await call('PUT', '/api/v1/plans/taxed', { plan: { tax_codes: ['gst'] } });
  await call('PUT', '/api/v1/taxes/gst', { tax: { code: 'gst_nz' } });
  assert.deepEqual(taxesOf((await call('GET', '/api/v1/customers/own')).customer), [['gst_nz', 15]]);
  assert.deepEqual(await usage('own'), [2000, 300, 2300]);
  const plan = (await call('GET', '/api/v1/plans/taxed')).plan;
  assert.deepEqual(plan.taxes.map((x) => x.code), ['gst_nz']);
  assert.deepEqual(await usage('plan'), [1000, 150, 1150]); // the plan's 15% now
  // the old code names nothing: a new tax made with it is nobody's
  await call('POST', '/api/v1/taxes', { tax: { code: 'gst', name: 'Another', rate: '50' } });
  assert.deepEqual(taxesOf((await call('GET', '/api/v1/customers/own')).customer), [['gst_nz', 15]]);
  assert.deepEqual(await usage('own'), [2000, 300, 2300]);
  assert.deepEqual(await usage('plan'), [1000, 150, 1150]);
});
