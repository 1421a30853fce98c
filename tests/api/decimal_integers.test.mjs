// A decimal amount written as a JSON integer past 2^63-1 (the JSON parser keeps 64 bits of an
// integer, not more): refused 422 integer_out_of_range on the field, as events name the same
// limit in properties, with a message saying to send the value as a decimal string, which is
// read exactly at any size. Found by an audit (report 9): `granted_credits:
// 10000000000000000000` was refused value_is_out_of_range with no message, while
// "10000000000000000000", 10000000000000000000.0 and 1e19 were taken.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
const BIG = '10000000000000000000'; // 10^19, one digit past 2^63-1
const raw = (path, text, method = 'POST') => t.api(path, { method, raw: text });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };

// The refusal every decimal field gives such an integer.
const refusedInteger = async (r, field, what) => {
  const b = await r.json();
  assert.equal(r.status, 422, JSON.stringify([what, b]));
  assert.deepEqual(b.error_details, { [field]: ['integer_out_of_range'] }, what);
  assert.match(String(b.message), /JSON integer past 64 bits .*send it as a decimal string/, what);
};

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-05-01T00:00:00Z']);
  await ok(await t.api('/api/v1/customers', { method: 'POST', body: { customer: { external_id: 'a', currency: 'USD' } } }));
});
after(async () => { await t.cleanup(); });

test('a wallet amount or rate as a JSON integer past 2^63-1 is refused integer_out_of_range, with a message', async () => {
  const wallet = (fields) => `{"wallet":{"external_customer_id":"a","currency":"USD",${fields}}}`;
  for (const [fields, field] of [
    [`"rate_amount":"0.000000000000001","granted_credits":${BIG}`, 'granted_credits'],
    [`"rate_amount":"0.000000000000001","paid_credits":${BIG}`, 'paid_credits'],
    [`"rate_amount":${BIG}`, 'rate_amount'],
    [`"rate_amount":"1","limit":"soft","overdraft_credits":${BIG}`, 'overdraft_credits'],
    [`"rate_amount":"1","granted_credits":-9223372036854775808`, 'granted_credits'],
  ])
    await refusedInteger(await raw('/api/v1/wallets', wallet(fields)), field, fields);
  // a rule's amounts are refused under recurring_transaction_rules, as every rule refusal
  for (const rule of [
    `{"trigger":"interval","interval":"monthly","granted_credits":${BIG}}`,
    `{"trigger":"interval","interval":"monthly","paid_credits":${BIG}}`,
    `{"trigger":"threshold","threshold_credits":${BIG},"granted_credits":"1"}`,
    `{"trigger":"threshold","threshold_credits":"1","method":"target","target_ongoing_balance":${BIG}}`,
    `{"trigger":"interval","interval":"monthly","granted_credits":"1","rollover":"percentage","rollover_percentage":${BIG}}`,
  ]) {
    const r = await raw('/api/v1/wallets', wallet(`"rate_amount":"1","recurring_transaction_rules":[${rule}]`));
    const b = await r.json();
    assert.equal(r.status, 422, JSON.stringify([rule, b]));
    assert.equal(Object.values(b.error_details)[0][0], 'integer_out_of_range', JSON.stringify([rule, b]));
    assert.match(String(b.message), /send it as a decimal string/, rule);
  }
  assert.deepEqual((await ok(await t.api('/api/v1/wallets?external_customer_id=a'))).wallets, []);
  // the same value as a string, with a fraction or with an exponent is read exactly and taken
  for (const g of [`"${BIG}"`, `${BIG}.0`, '1e19']) {
    const made = await ok(await raw('/api/v1/wallets', wallet(`"rate_amount":"0.000000000000001","granted_credits":${g}`)));
    assert.equal(made.wallet.balance_cents, 1000000, g);
    await ok(await t.api(`/api/v1/wallets/${made.wallet.lago_id}`, { method: 'DELETE' }));
  }
});

test('a top-up amount as a JSON integer past 2^63-1 is refused the same way', async () => {
  const w = (await ok(await raw('/api/v1/wallets', '{"wallet":{"external_customer_id":"a","currency":"USD","rate_amount":"0.000000000000001"}}'))).wallet;
  for (const field of ['granted_credits', 'paid_credits', 'voided_credits'])
    await refusedInteger(await raw('/api/v1/wallet_transactions', `{"wallet_transaction":{"wallet_id":"${w.lago_id}","${field}":${BIG}}}`), field, field);
  const top = await ok(await raw('/api/v1/wallet_transactions', `{"wallet_transaction":{"wallet_id":"${w.lago_id}","granted_credits":"${BIG}"}}`));
  assert.equal(top.wallet_transactions.length, 1);
});

test('a tax rate, a coupon rate and a trial period as such an integer are refused the same way', async () => {
  await refusedInteger(await raw('/api/v1/taxes', `{"tax":{"code":"t","name":"t","rate":${BIG}}}`), 'rate', 'tax');
  await refusedInteger(await raw('/api/v1/coupons', `{"coupon":{"code":"c","name":"c","coupon_type":"percentage","percentage_rate":${BIG},"frequency":"once","expiration":"no_expiration"}}`),
    'percentage_rate', 'coupon');
  await refusedInteger(await raw('/api/v1/plans', `{"plan":{"code":"p","name":"p","interval":"monthly","amount_cents":0,"amount_currency":"USD","trial_period":${BIG}}}`),
    'trial_period', 'plan');
  // an event's amount names the same code (events' refusals carry no message)
  const r = await raw('/api/v1/events', `{"event":{"transaction_id":"e1","external_subscription_id":"s","code":"c","precise_total_amount_cents":${BIG}}}`);
  const b = await r.json();
  assert.equal(r.status, 422, JSON.stringify(b));
  assert.deepEqual(b.error_details, { precise_total_amount_cents: ['integer_out_of_range'] });
});
