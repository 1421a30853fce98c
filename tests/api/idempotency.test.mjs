// Idempotency-Key on every mutating call: a replay returns the first answer byte for byte,
// the same key with another request is a 409, and replays survive a restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
before(async () => { t = await startWithOrg(['--test-clock', '2026-01-01T00:00:00Z']); });
after(async () => { await t.cleanup(); });

const post = (path, body, key) => t.api(path, { method: 'POST', body, headers: key ? { 'Idempotency-Key': key } : {} });

test('a replay returns the first answer byte for byte and changes nothing', async () => {
  const first = await post('/api/v1/customers', { customer: { external_id: 'idem_1', name: 'First' } }, 'key-1');
  const firstText = await first.text();
  assert.equal(first.status, 200);
  // The world moves on: the customer is renamed without a key ...
  await post('/api/v1/customers', { customer: { external_id: 'idem_1', name: 'Renamed' } });
  // ... and a retry of the first request still gets the first answer, and renames nothing.
  const replay = await post('/api/v1/customers', { customer: { external_id: 'idem_1', name: 'First' } }, 'key-1');
  assert.equal(replay.status, 200);
  assert.equal(await replay.text(), firstText);
  const now = await (await t.api('/api/v1/customers/idem_1')).json();
  assert.equal(now.customer.name, 'Renamed');
});

test('the same key with a different body is a 409 and changes nothing', async () => {
  const r = await post('/api/v1/customers', { customer: { external_id: 'idem_1', name: 'Other' } }, 'key-1');
  assert.equal(r.status, 409);
  const b = await r.json();
  assert.equal(b.code, 'idempotency_key_reused');
  assert.equal((await (await t.api('/api/v1/customers/idem_1')).json()).customer.name, 'Renamed');
});

test('the same key on another path is a 409', async () => {
  const r = await post('/api/v1/test_clock/advance', { test_clock: { to: '2026-06-01T00:00:00Z' } }, 'key-1');
  assert.equal(r.status, 409);
});

test('the same key with another query string is a 409; the same query replays', async () => {
  // DELETE /subscriptions/{id}?status=pending and without it are two requests
  const body = { customer: { external_id: 'idem_q', name: 'Q' } };
  assert.equal((await post('/api/v1/customers?note=1', body, 'key-q')).status, 200);
  const other = await post('/api/v1/customers', body, 'key-q');
  assert.equal(other.status, 409);
  assert.equal((await other.json()).code, 'idempotency_key_reused');
  assert.equal((await post('/api/v1/customers?note=2', body, 'key-q')).status, 409);
  assert.equal((await post('/api/v1/customers?note=1', body, 'key-q')).status, 200);
});

// The key's fingerprint took the decoded path: /customers/x%3Fy read as /customers/x with the
// query y, and /customers/c%2Fwallets%2Fw as the path of c's wallet w. Each was answered as the
// other's replay: a 200 for a change never made.
test('the same key on a path that only decodes like another is a 409', async () => {
  const del = (path, key) => t.api(path, { method: 'DELETE', headers: { 'Idempotency-Key': key } });
  for (const id of ['dx', 'dx?y', 'dc', 'dc/wallets/w'])
    assert.equal((await post('/api/v1/customers', { customer: { external_id: id, currency: 'USD' } })).status, 200);
  assert.equal((await post('/api/v1/wallets', { wallet: { external_customer_id: 'dc', currency: 'USD', rate_amount: '1', name: 'W', code: 'w', granted_credits: '1' } })).status, 200);
  assert.equal((await del('/api/v1/customers/dx%3Fy', 'key-dec')).status, 200);
  const other = await del('/api/v1/customers/dx?y', 'key-dec');
  assert.equal(other.status, 409);
  assert.equal((await t.api('/api/v1/customers/dx')).status, 200); // untouched
  assert.equal((await del('/api/v1/customers/dc%2Fwallets%2Fw', 'key-dec2')).status, 200);
  assert.equal((await del('/api/v1/customers/dc/wallets/w', 'key-dec2')).status, 409);
  const w = await (await t.api('/api/v1/customers/dc/wallets/w')).json();
  assert.equal(w.wallet.status, 'active');
});

test('concurrent requests with one key apply once', async () => {
  const reqs = Array.from({ length: 20 }, () => post('/api/v1/customers', { customer: { external_id: 'idem_conc' } }, 'key-conc'));
  const texts = await Promise.all((await Promise.all(reqs)).map(async (r) => [r.status, await r.text()]));
  for (const [status, text] of texts) {
    assert.equal(status, 200);
    assert.equal(text, texts[0][1]);
  }
  const list = await (await t.api('/api/v1/customers?per_page=1000')).json();
  assert.equal(list.customers.filter((c) => c.external_id === 'idem_conc').length, 1);
});

test('a refused request is replayed as refused, deletes too', async () => {
  const bad = await post('/api/v1/test_clock/advance', { test_clock: { to: '2025-01-01T00:00:00Z' } }, 'key-back');
  assert.equal(bad.status, 422);
  const again = await post('/api/v1/test_clock/advance', { test_clock: { to: '2025-01-01T00:00:00Z' } }, 'key-back');
  assert.equal(again.status, 422);
  const d1 = await t.api('/api/v1/customers/idem_conc', { method: 'DELETE', headers: { 'Idempotency-Key': 'key-del' } });
  const d1Text = await d1.text();
  const d2 = await t.api('/api/v1/customers/idem_conc', { method: 'DELETE', headers: { 'Idempotency-Key': 'key-del' } });
  assert.equal(d1.status, 200);
  assert.equal(d2.status, 200);
  assert.equal(await d2.text(), d1Text);
});

test('keys are checked: too long or with spaces is a 400', async () => {
  const long = await post('/api/v1/customers', { customer: { external_id: 'k' } }, 'k'.repeat(256));
  assert.equal(long.status, 400);
  const spaced = await post('/api/v1/customers', { customer: { external_id: 'k' } }, 'has space');
  assert.equal(spaced.status, 400);
  assert.equal((await t.api('/api/v1/customers/k')).status, 404);
});

test('replays survive a restart and a SIGKILL', async () => {
  const first = await post('/api/v1/customers', { customer: { external_id: 'idem_kill' } }, 'key-kill');
  const firstText = await first.text();
  await t.restart({ kill: true });
  const replay = await post('/api/v1/customers', { customer: { external_id: 'idem_kill' } }, 'key-kill');
  assert.equal(await replay.text(), firstText);
});

test('keys are per organization', async () => {
  const { createOrg } = await import('../lib/tallyd.mjs');
  let other;
  await t.restart({ between: (dir) => { other = createOrg(dir, 'Other'); } });
  const r = await t.api('/api/v1/customers', { method: 'POST', key: other, body: { customer: { external_id: 'x' } }, headers: { 'Idempotency-Key': 'key-1' } });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).customer.external_id, 'x');
});

// A retry of a change that succeeded must not be told it failed: the rules it was checked
// against (here, an expiration_at the clock has since passed) are not checked again.
test('a replay after the clock passed its expiration_at still gets the first answer', async () => {
  await post('/api/v1/customers', { customer: { external_id: 'idem_exp', currency: 'USD' } });
  const walletBody = { wallet: { external_customer_id: 'idem_exp', currency: 'USD', rate_amount: '1', name: 'W', expiration_at: '2026-01-20T00:00:00Z' } };
  const created = await post('/api/v1/wallets', walletBody, 'key-wallet-exp');
  const createdText = await created.text();
  assert.equal(created.status, 200, createdText);
  const wallet = JSON.parse(createdText).wallet;
  const topUpBody = { wallet_transaction: { wallet_id: wallet.lago_id, granted_credits: '5', expiration_at: '2026-01-05T00:00:00Z' } };
  const topUp = await post('/api/v1/wallet_transactions', topUpBody, 'key-topup-exp');
  const topUpText = await topUp.text();
  assert.equal(topUp.status, 200, topUpText);
  const advanced = await post('/api/v1/test_clock/advance', { test_clock: { to: '2026-01-25T00:00:00Z' } });
  assert.equal(advanced.status, 200);
  const topUpAgain = await post('/api/v1/wallet_transactions', topUpBody, 'key-topup-exp');
  assert.equal(topUpAgain.status, 200);
  assert.equal(await topUpAgain.text(), topUpText);
  const createdAgain = await post('/api/v1/wallets', walletBody, 'key-wallet-exp');
  assert.equal(createdAgain.status, 200);
  assert.equal(await createdAgain.text(), createdText);
  // the same key with another body is still a conflict, not the replay nor a validation error
  const other = await post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: wallet.lago_id, granted_credits: '6' } }, 'key-topup-exp');
  assert.equal(other.status, 409);
  // and nothing was granted twice: one top-up of 5, expired with its grant
  const txs = await (await t.api(`/api/v1/wallets/${wallet.lago_id}/wallet_transactions`)).json();
  assert.equal(txs.wallet_transactions.filter((x) => x.transaction_type === 'inbound').length, 1);
});

// A keyed wallet change sent while debits wait in the wallet journal first has the journal
// written out: that write-out carried the request's key, so its empty answer was stored under
// it and the change itself, arriving next, was taken for its replay (200, empty, nothing
// changed, for good: an audit's "terminated" wallet kept paying and being topped up).
test('a keyed wallet change right after an event is applied, not taken for its own replay', async () => {
  const bm = (await (await post('/api/v1/billable_metrics', { billable_metric: { name: 'J', code: 'idem_j', aggregation_type: 'count_agg' } })).json()).billable_metric;
  await post('/api/v1/plans', { plan: { name: 'J', code: 'idem_j', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [{ billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } });
  await post('/api/v1/customers', { customer: { external_id: 'idem_j', currency: 'USD' } });
  assert.equal((await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'idem_j', plan_code: 'idem_j', external_id: 'idem_j' } })).status, 200);
  const w = (await (await post('/api/v1/wallets', { wallet: { external_customer_id: 'idem_j', currency: 'USD', rate_amount: '1', name: 'W', granted_credits: '50' } })).json()).wallet;
  const event = (n) => post('/api/v1/events', { event: { transaction_id: `idem_j_${n}`, external_subscription_id: 'idem_j', code: 'idem_j' } });
  const keyed = (method, path, body, key) => t.api(path, { method, body, headers: { 'Idempotency-Key': key } });

  assert.equal((await event(1)).status, 200);
  const put = await keyed('PUT', `/api/v1/wallets/${w.lago_id}`, { wallet: { name: 'Renamed' } }, 'key-j-put');
  const putText = await put.text();
  assert.equal(put.status, 200, putText);
  assert.equal(JSON.parse(putText).wallet.name, 'Renamed');

  assert.equal((await event(2)).status, 200);
  const md = await keyed('POST', `/api/v1/wallets/${w.lago_id}/metadata`, { metadata: { k: 'v' } }, 'key-j-md');
  const mdText = await md.text();
  assert.equal(md.status, 200, mdText);

  assert.equal((await event(3)).status, 200);
  const del = await keyed('DELETE', `/api/v1/wallets/${w.lago_id}`, undefined, 'key-j-del');
  const delText = await del.text();
  assert.equal(del.status, 200, delText);
  assert.equal(JSON.parse(delText).wallet.status, 'terminated');

  const now = (await (await t.api(`/api/v1/wallets/${w.lago_id}`)).json()).wallet;
  assert.equal(now.status, 'terminated');
  assert.equal(now.name, 'Renamed');
  assert.deepEqual(now.metadata, { k: 'v' });
  // and each key replays its own answer, byte for byte
  assert.equal(await (await keyed('DELETE', `/api/v1/wallets/${w.lago_id}`, undefined, 'key-j-del')).text(), delText);
  assert.equal(await (await keyed('PUT', `/api/v1/wallets/${w.lago_id}`, { wallet: { name: 'Renamed' } }, 'key-j-put')).text(), putText);
});

// Which "not found" refusals a key kept depended on where the lookup ran (audit 2): a plan,
// coupon or wallet looked up before the writer kept nothing, a customer or subscription the
// writer looked up was kept and replayed, so the same key could never create the wallet or
// send the event once the customer or subscription existed. One rule now: a refusal for
// something that does not exist (yet) is never kept, wherever it is decided.
test('a refusal for something not found is not kept: the same key runs once it exists', async () => {
  const wallet = { wallet: { external_customer_id: 'idem_nf', rate_amount: '1', currency: 'USD', granted_credits: '5' } };
  const early = await post('/api/v1/wallets', wallet, 'key-nf-wallet');
  assert.deepEqual((await early.json()).error_details, { customer: ['customer_not_found'] });
  assert.equal((await post('/api/v1/customers', { customer: { external_id: 'idem_nf', currency: 'USD' } })).status, 200);
  const made = await post('/api/v1/wallets', wallet, 'key-nf-wallet');
  const madeText = await made.text();
  assert.equal(made.status, 200, madeText);
  // kept now: the replay is the success, and one wallet was made
  assert.equal(await (await post('/api/v1/wallets', wallet, 'key-nf-wallet')).text(), madeText);
  assert.equal((await (await t.api('/api/v1/customers/idem_nf/wallets')).json()).meta.total_count, 1);

  const bm = (await (await post('/api/v1/billable_metrics', { billable_metric: { name: 'NF', code: 'idem_nf', aggregation_type: 'count_agg' } })).json()).billable_metric;
  const event = { event: { transaction_id: 'idem_nf_1', external_subscription_id: 'idem_nf_sub', code: 'idem_nf' } };
  const refused = await post('/api/v1/events', event, 'key-nf-event');
  assert.deepEqual((await refused.json()).error_details, { external_subscription_id: ['subscription_not_found'] });
  await post('/api/v1/plans', { plan: { name: 'NF', code: 'idem_nf', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [{ billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } });
  assert.equal((await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'idem_nf', plan_code: 'idem_nf', external_id: 'idem_nf_sub' } })).status, 200);
  const sent = await post('/api/v1/events', event, 'key-nf-event');
  assert.equal(sent.status, 200, await sent.text());
  const usage = await (await t.api('/api/v1/customers/idem_nf/current_usage?external_subscription_id=idem_nf_sub')).json();
  assert.equal(usage.customer_usage.charges_usage[0].events_count, 1);

  // a refusal of another kind is still kept: the replay answers it again
  const back = { test_clock: { to: '2020-01-01T00:00:00Z' } };
  const first = await post('/api/v1/test_clock/advance', back, 'key-nf-kept');
  const firstText = await first.text();
  assert.equal(first.status, 422);
  assert.equal(await (await post('/api/v1/test_clock/advance', back, 'key-nf-kept')).text(), firstText);
});
