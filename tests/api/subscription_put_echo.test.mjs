// PUT /subscriptions/{id} naming subscription_at on a started subscription or a scheduled
// downgrade (audit 15, F3): the value it has passes (a client echoing back the object it read),
// and the other fields change; another value stays refused, 422
// subscription_at: cannot_change_started_subscription (Lago's UpdateService ignores it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
const call = async (method, path, body) => t.api(path, { method, body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-03-10T09:00:00Z']);
  for (const [code, amount] of [['big', 20000], ['small', 5000]])
    await ok(await call('POST', '/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents: amount, amount_currency: 'USD' } }));
  await ok(await call('POST', '/api/v1/customers', { customer: { external_id: 'cu', currency: 'USD' } }));
  await ok(await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'cu', plan_code: 'big', external_id: 'su', subscription_at: '2026-03-01T00:00:00Z' } }));
  await ok(await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'cu', plan_code: 'small', external_id: 'su' } }));
});
after(async () => { await t.cleanup(); });

test('an active subscription: its own subscription_at passes with the name, another is refused', async () => {
  const read = (await ok(await t.api('/api/v1/subscriptions/su'))).subscription;
  const put = await ok(await call('PUT', '/api/v1/subscriptions/su', { subscription: { ...read, name: 'Renamed' } }));
  assert.equal(put.subscription.name, 'Renamed');
  assert.equal(put.subscription.subscription_at, read.subscription_at);
  const moved = await call('PUT', '/api/v1/subscriptions/su', { subscription: { name: 'Other', subscription_at: '2026-03-02T00:00:00Z' } });
  assert.equal(moved.status, 422);
  assert.deepEqual((await moved.json()).error_details, { subscription_at: ['cannot_change_started_subscription'] });
  assert.equal((await ok(await t.api('/api/v1/subscriptions/su'))).subscription.name, 'Renamed');
});

test('a scheduled downgrade: the same', async () => {
  const read = (await ok(await t.api('/api/v1/subscriptions/su?status=pending'))).subscription;
  assert.equal(read.plan_code, 'small');
  const put = await ok(await call('PUT', '/api/v1/subscriptions/su?status=pending', { subscription: { subscription_at: read.subscription_at, name: 'Down' } }));
  assert.equal(put.subscription.name, 'Down');
  const moved = await call('PUT', '/api/v1/subscriptions/su?status=pending', { subscription: { subscription_at: '2026-04-05T00:00:00Z' } });
  assert.equal(moved.status, 422);
});
