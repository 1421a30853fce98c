// Lago's official JavaScript client (lago-javascript-client, npm) against a real tallyd:
// create, get, list, update, delete a customer, and the errors it raises.
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

test('createCustomer creates and answers in Lago shape', async () => {
  const { data } = await lago.customers.createCustomer({
    customer: {
      external_id: 'js_1', name: 'Gavin Belson', email: 'gavin@hooli.test', currency: 'USD',
      timezone: 'America/New_York', country: 'US', city: 'Palo Alto', zipcode: '94301',
      billing_configuration: { invoice_grace_period: 5, payment_provider: 'stripe', document_locale: 'en' },
      metadata: [{ key: 'tier', value: 'enterprise', display_in_invoice: false }],
    },
  });
  assert.equal(data.customer.external_id, 'js_1');
  assert.equal(data.customer.name, 'Gavin Belson');
  assert.equal(data.customer.currency, 'USD');
  assert.equal(data.customer.applicable_timezone, 'America/New_York');
  assert.equal(data.customer.billing_configuration.invoice_grace_period, 5);
  assert.equal(data.customer.metadata[0].value, 'enterprise');
  assert.match(data.customer.lago_id, /^[0-9a-f-]{36}$/);
  assert.match(data.customer.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
});

test('findCustomer reads it back', async () => {
  const { data } = await lago.customers.findCustomer('js_1');
  assert.equal(data.customer.email, 'gavin@hooli.test');
  assert.equal(data.customer.city, 'Palo Alto');
});

test('createCustomer with the same external_id updates it', async () => {
  const before = (await lago.customers.findCustomer('js_1')).data.customer;
  const { data } = await lago.customers.createCustomer({ customer: { external_id: 'js_1', name: 'Gavin B.' } });
  assert.equal(data.customer.lago_id, before.lago_id);
  assert.equal(data.customer.name, 'Gavin B.');
  assert.equal(data.customer.email, 'gavin@hooli.test');
});

test("createCustomer with tax_codes answers the customer's taxes as tax objects", async () => {
  await lago.taxes.createTax({ tax: { code: 'vat_fr', name: 'TVA', rate: 20 } });
  const { data } = await lago.customers.createCustomer({ customer: { external_id: 'js_tax', tax_codes: ['vat_fr'] } });
  assert.equal(data.customer.taxes.length, 1);
  assert.equal(data.customer.taxes[0].code, 'vat_fr');
  assert.equal(data.customer.taxes[0].rate, 20);
  let thrown;
  try { await lago.customers.createCustomer({ customer: { external_id: 'js_tax', tax_codes: ['missing'] } }); } catch (e) { thrown = e; }
  assert.equal((await getLagoError(thrown)).code, 'tax_not_found');
  await lago.customers.destroyCustomer('js_tax');
});

test('findAllCustomers pages with Lago meta', async () => {
  for (const id of ['js_2', 'js_3']) await lago.customers.createCustomer({ customer: { external_id: id } });
  const { data } = await lago.customers.findAllCustomers({ page: 1, per_page: 2 });
  assert.equal(data.customers.length, 2);
  assert.deepEqual(data.meta, { current_page: 1, next_page: 2, prev_page: null, total_pages: 2, total_count: 3 });
  const page2 = (await lago.customers.findAllCustomers({ page: 2, per_page: 2 })).data;
  assert.equal(page2.customers.length, 1);
  const ids = [...data.customers, ...page2.customers].map((c) => c.external_id).sort();
  assert.deepEqual(ids, ['js_1', 'js_2', 'js_3']);
});

test('destroyCustomer answers the customer; findCustomer then throws a 404', async () => {
  const { data } = await lago.customers.destroyCustomer('js_2');
  assert.equal(data.customer.external_id, 'js_2');
  await assert.rejects(lago.customers.findCustomer('js_2'), (res) => {
    assert.equal(res.status, 404);
    assert.deepEqual(res.error, { status: 404, error: 'Not Found', code: 'customer_not_found' });
    return true;
  });
});

test('validation errors reach the client as Lago 422s', async () => {
  const thrown = await lago.customers.createCustomer({ customer: { external_id: 'bad', currency: 'ABC' } }).catch((e) => e);
  assert.equal(thrown.status, 422);
  assert.deepEqual(await getLagoError(thrown), { status: 422, error: 'Unprocessable Entity', code: 'validation_errors', error_details: { currency: ['value_is_invalid'] } });
  await assert.rejects(lago.customers.createCustomer({ customer: { external_id: 'bad', timezone: 'Nowhere/Land' } }), (res) => {
    assert.equal(res.status, 422);
    assert.deepEqual(res.error.error_details, { timezone: ['invalid_timezone'] });
    return true;
  });
});

test('a wrong API key is a 401 through the client', async () => {
  const stranger = Client('tly_wrong', { baseUrl: `${t.url}/api/v1` });
  await assert.rejects(stranger.customers.findAllCustomers(), (res) => {
    assert.equal(res.status, 401);
    assert.deepEqual(res.error, { status: 401, error: 'Unauthorized' });
    return true;
  });
});

test('an Idempotency-Key passed through the client makes a retry harmless', async () => {
  const params = { headers: { 'Idempotency-Key': 'js-retry-1' } };
  const a = await lago.customers.createCustomer({ customer: { external_id: 'js_idem', name: 'Once' } }, params);
  const b = await lago.customers.createCustomer({ customer: { external_id: 'js_idem', name: 'Once' } }, params);
  assert.deepEqual(b.data, a.data);
  await assert.rejects(lago.customers.createCustomer({ customer: { external_id: 'js_idem', name: 'Twice' } }, params), (res) => {
    assert.equal(res.status, 409);
    return true;
  });
});

test('createCustomer with part of billing_configuration and shipping_address keeps the rest', async () => {
  await lago.customers.createCustomer({ customer: { external_id: 'js_nest',
    billing_configuration: { invoice_grace_period: 3, document_locale: 'fr', payment_provider: 'stripe', provider_customer_id: 'cus_1' },
    shipping_address: { city: 'Berlin', zipcode: '10115', country: 'DE' } } });
  const { data } = await lago.customers.createCustomer({ customer: { external_id: 'js_nest',
    billing_configuration: { invoice_grace_period: 4 }, shipping_address: { city: 'Munich' } } });
  const bc = data.customer.billing_configuration;
  assert.deepEqual([bc.invoice_grace_period, bc.document_locale, bc.payment_provider, bc.provider_customer_id], [4, 'fr', 'stripe', 'cus_1']);
  const sa = data.customer.shipping_address;
  assert.deepEqual([sa.city, sa.zipcode, sa.country], ['Munich', '10115', 'DE']);
});
