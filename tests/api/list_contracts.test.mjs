// Lago's list filters as its newest queries and their filter contracts take them (audit 1 of
// the JavaScript client): the wallet transactions' metadata[key]=value (ignored: the whole
// list came back), their status, transaction_type and transaction_status as one value or a
// list, each refused with Lago's 422 when it is not one of Lago's values; the invoices'
// statuses alike; the values Lago drops rather than refuse (subscriptions, applied coupons);
// current_usage without its subscription; and the subscription list's order. Each was a 400
// without a code, or the wrong list.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
after(async () => { await t.cleanup(); });

async function json(res) { return { status: res.status, body: await res.json() }; }

async function post(path, body) {
  const r = await json(await t.api(path, { method: 'POST', body }));
  assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`);
  return r.body;
}

// 422 validation_errors with exactly these error_details (Lago's shape).
async function refused(path, details) {
  const r = await json(await t.api(path));
  assert.equal(r.status, 422, `${path}: ${JSON.stringify(r.body)}`);
  assert.deepEqual(r.body, { status: 422, error: 'Unprocessable Entity', code: 'validation_errors', error_details: details }, path);
}

let wallet, txs;
const grants = {};

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-01-01T00:00:00Z']);
  await post('/api/v1/customers', { customer: { external_id: 'md_c', currency: 'EUR' } });
  wallet = (await post('/api/v1/wallets', { wallet: { external_customer_id: 'md_c', rate_amount: '1', currency: 'EUR' } })).wallet;
  txs = `/api/v1/wallets/${wallet.lago_id}/wallet_transactions`;
  const grant = async (name, metadata) => {
    const body = { wallet_id: wallet.lago_id, granted_credits: '1' };
    if (metadata) body.metadata = metadata;
    grants[name] = (await post('/api/v1/wallet_transactions', { wallet_transaction: body })).wallet_transactions[0].lago_id;
  };
  await grant('a', [{ key: 'order', value: 'a' }]);
  await grant('b', [{ key: 'order', value: 'b' }, { key: 'source', value: 'web' }]);
  await grant('c', [{ key: 'order', value: 'c' }, { key: 'source', value: 'web' }]);
  await grant('bare');
  await grant('nulled', [{ key: 'order', value: null }]);
  // a void carries its metadata too
  grants.void = (await post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: wallet.lago_id, voided_credits: '1', metadata: [{ key: 'order', value: 'b' }] } })).wallet_transactions[0].lago_id;
});

// The lago_ids a wallet transaction query lists, newest first, its meta checked against them.
async function listed(query) {
  const r = await json(await t.api(`${txs}?${query}`));
  assert.equal(r.status, 200, `${query}: ${JSON.stringify(r.body)}`);
  assert.equal(r.body.meta.total_count, r.body.wallet_transactions.length, query);
  return r.body.wallet_transactions.map((x) => x.lago_id);
}

test('wallet transactions: metadata[key]=value lists those with that pair; several keys must all match', async () => {
  const all = await listed('');
  assert.equal(all.length, 6);
  assert.deepEqual(await listed('metadata[order]=b'), [grants.void, grants.b]);
  assert.deepEqual(await listed('metadata[order]=zzz'), []);
  assert.deepEqual(await listed('metadata[order]=B'), []); // the value as sent, exactly
  assert.deepEqual(await listed('metadata[source]=web'), [grants.c, grants.b]);
  assert.deepEqual(await listed('metadata[source]=web&metadata[order]=c'), [grants.c]);
  assert.deepEqual(await listed('metadata[source]=web&metadata[order]=a'), []);
  assert.deepEqual(await listed('metadata[orders]=b'), []); // the key exactly
  // a blank value filters nothing (Lago's with_metadata skips it), beside others or alone
  assert.deepEqual(await listed('metadata[order]='), all);
  assert.deepEqual(await listed('metadata[order]=b&metadata[source]='), [grants.void, grants.b]);
  // blank as Lago's blank? reads it: Unicode's spaces too (U+3000, U+00A0), not a zero width one
  assert.deepEqual(await listed('metadata[order]=%E3%80%80'), all);
  assert.deepEqual(await listed('metadata[order]=%C2%A0%20'), all);
  assert.deepEqual(await listed('metadata[order]=%E2%80%8B'), []);
  // with the other filters, and paged: the meta counts the filtered list
  assert.deepEqual(await listed('metadata[order]=b&transaction_type=inbound'), [grants.b]);
  assert.deepEqual(await listed('metadata[order]=b&transaction_status=voided'), [grants.void]);
  const page = (await json(await t.api(`${txs}?metadata[order]=b&per_page=1&page=2`))).body;
  assert.deepEqual([page.wallet_transactions.map((x) => x.lago_id), page.meta],
    [[grants.b], { current_page: 2, next_page: null, prev_page: 1, total_pages: 2, total_count: 2 }]);
  // a metadata argument that is not one string per key is refused, as the customer list's
  await refused(`${txs}?metadata=b`, { metadata: ['value_is_invalid'] });
  await refused(`${txs}?metadata[order][x]=b`, { metadata: ['value_is_invalid'] });
});

test("wallet transactions: status, transaction_type and transaction_status take a list; a value Lago's contract refuses is its 422", async () => {
  const all = await listed('');
  assert.deepEqual(await listed('status[]=pending&status[]=settled'), all);
  assert.deepEqual(await listed('status[]=pending'), []);
  assert.deepEqual(await listed('transaction_type[]=outbound'), [grants.void]);
  assert.deepEqual(await listed('transaction_type[]=outbound&transaction_type[]=inbound'), all);
  assert.deepEqual(await listed('transaction_status[]=voided&transaction_status[]=invoiced'), [grants.void]);
  await refused(`${txs}?status=bogus`, { status: ['must be one of: pending, settled, failed or must be an array'] });
  await refused(`${txs}?transaction_type=bogus`, { transaction_type: ['must be one of: inbound, outbound or must be an array'] });
  await refused(`${txs}?transaction_status=bogus`,
    { transaction_status: ['must be one of: purchased, granted, voided, invoiced or must be an array'] });
  await refused(`${txs}?status[]=pending&status[]=bogus`, { status: { 1: ['must be one of: pending, settled, failed'] } });
  await refused(`${txs}?transaction_type[]=sideways`, { transaction_type: { 0: ['must be one of: inbound, outbound'] } });
  // an unknown wallet is still a 404
  const r = await json(await t.api('/api/v1/wallets/00000000-0000-0000-0000-000000000000/wallet_transactions?metadata[order]=b'));
  assert.deepEqual([r.status, r.body.code], [404, 'wallet_not_found']);
});

test('current_usage without external_subscription_id: 404 subscription_not_found, as Lago (customer_not_found first)', async () => {
  for (const query of ['', '?external_subscription_id=', '?apply_taxes=false']) {
    const r = await json(await t.api(`/api/v1/customers/md_c/current_usage${query}`));
    assert.deepEqual([r.status, r.body], [404, { status: 404, error: 'Not Found', code: 'subscription_not_found' }], query);
  }
  const r = await json(await t.api('/api/v1/customers/nobody/current_usage'));
  assert.deepEqual([r.status, r.body], [404, { status: 404, error: 'Not Found', code: 'customer_not_found' }]);
});

test('invoices: a status or payment status Lago does not have is its 422; an unknown invoice_type lists none', async () => {
  await post('/api/v1/wallets', { wallet: { external_customer_id: 'md_c', rate_amount: '1', currency: 'EUR', code: 'paid', paid_credits: '3' } });
  const path = '/api/v1/invoices';
  await refused(`${path}?payment_statuses[]=bogus`, { payment_status: { 0: ['must be one of: pending, succeeded, failed'] } });
  await refused(`${path}?payment_statuses[]=failed&payment_statuses[]=paid`, { payment_status: { 1: ['must be one of: pending, succeeded, failed'] } });
  await refused(`${path}?payment_status=bogus`, { payment_status: ['must be one of: pending, succeeded, failed or must be an array'] });
  await refused(`${path}?statuses[]=bogus`, { status: { 0: ['must be one of: draft, finalized, voided, failed, pending'] } });
  await refused(`${path}?status=bogus`, { status: ['must be one of: draft, finalized, voided, failed, pending or must be an array'] });
  const r = await json(await t.api(`${path}?invoice_type=nonsense`));
  assert.deepEqual([r.status, r.body.invoices, r.body.meta.total_count], [200, [], 0]);
  const all = await json(await t.api(path));
  assert.ok(all.body.meta.total_count > 0);
});

test('subscriptions: a status[] Lago does not have drops the status filter (every status), as its newest SubscriptionsQuery; a lone status Lago does not read is the default (active)', async () => {
  await post('/api/v1/plans', { plan: { code: 'st_plan', name: 'p', interval: 'monthly', amount_cents: 100, amount_currency: 'EUR' } });
  await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'st_c', plan_code: 'st_plan', external_id: 'st_live' } });
  await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'st_c', plan_code: 'st_plan', external_id: 'st_later', subscription_at: '2026-05-01T00:00:00Z' } });
  const ids = async (query) => {
    const r = await json(await t.api(`/api/v1/subscriptions?external_customer_id=st_c&${query}`));
    assert.equal(r.status, 200, `${query}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.meta.total_count, r.body.subscriptions.length, query);
    return r.body.subscriptions.map((s) => s.external_id).sort();
  };
  assert.deepEqual(await ids(''), ['st_live']);
  assert.deepEqual(await ids('status[]=bogus'), ['st_later', 'st_live']);
  assert.deepEqual(await ids('status[]=pending&status[]=bogus'), ['st_later', 'st_live']);
  assert.deepEqual(await ids('status=bogus'), ['st_live']);
  assert.deepEqual(await ids('status=pending'), ['st_later']); // Tally's own reading of a lone status
});

test('applied coupons: a status Lago does not have filters nothing, as its AppliedCouponsQuery', async () => {
  await post('/api/v1/coupons', { coupon: { code: 'ac_k', name: 'k', coupon_type: 'percentage', expiration: 'no_expiration', percentage_rate: '10', frequency: 'once', reusable: true } });
  await post('/api/v1/applied_coupons', { applied_coupon: { external_customer_id: 'md_c', coupon_code: 'ac_k' } });
  const gone = (await post('/api/v1/applied_coupons', { applied_coupon: { external_customer_id: 'md_c', coupon_code: 'ac_k' } })).applied_coupon;
  assert.equal((await t.api(`/api/v1/customers/md_c/applied_coupons/${gone.lago_id}`, { method: 'DELETE' })).status, 200);
  for (const path of ['/api/v1/applied_coupons?external_customer_id=md_c&', '/api/v1/customers/md_c/applied_coupons?']) {
    const count = async (query) => {
      const r = await json(await t.api(`${path}${query}`));
      assert.equal(r.status, 200, `${path}${query}: ${JSON.stringify(r.body)}`);
      return r.body.meta.total_count;
    };
    assert.deepEqual([await count(''), await count('status=active'), await count('status=terminated'), await count('status=bogus')], [2, 1, 1, 2], path);
  }
});

// Lago's SubscriptionsQuery: subscription_at DESC NULLS LAST, created_at DESC. Tally listed
// the newest made first, so one made to start later came after one made after it.
test('subscriptions are listed by subscription_at, latest first, then the newest made; pages agree', async () => {
  await post('/api/v1/plans', { plan: { code: 'or_plan', name: 'p', interval: 'monthly', amount_cents: 100, amount_currency: 'EUR' } });
  const make = (external_id, subscription_at) => post('/api/v1/subscriptions',
    { subscription: { external_customer_id: 'or_c', plan_code: 'or_plan', external_id, ...(subscription_at ? { subscription_at } : {}) } });
  await make('or_late', '2026-06-01T00:00:00Z');
  await make('or_now');
  await make('or_mid', '2026-03-01T00:00:00Z');
  await make('or_now2');
  const query = 'external_customer_id=or_c&status[]=active&status[]=pending';
  const all = (await json(await t.api(`/api/v1/subscriptions?${query}`))).body.subscriptions.map((s) => s.external_id);
  assert.deepEqual(all, ['or_late', 'or_mid', 'or_now2', 'or_now']);
  const paged = [];
  for (let page = 1; page <= 4; page++)
    paged.push(...(await json(await t.api(`/api/v1/subscriptions?${query}&per_page=1&page=${page}`))).body.subscriptions.map((s) => s.external_id));
  assert.deepEqual(paged, all);
});
