// A batch is debited as a whole: what one charge gives back pays for what another takes, as
// the same events sent one by one would. An audit found a hard wallet's batch refused 402
// ("3000 cents short") when a volume charge's fall would give back 70.00 and another charge
// took 50.00: each charge was settled in the plan's order (and each subscription in the order
// the batch first named it), so a later give-back could not pay an earlier step, and the plan's
// charge order decided whether usage that needed no credits was refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
let n = 0;
const ev = (sub, code, v) => ({ transaction_id: `e${n++}`, external_subscription_id: sub, code, properties: { v } });
const balance = async (w) => (await t.call('GET', `/api/v1/wallets/${w}`)).wallet.balance_cents;

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-01-05T00:00:00Z']);
  const metric = async (code) => (await t.call('POST', '/api/v1/billable_metrics', { billable_metric: { code, name: code, aggregation_type: 'sum_agg', field_name: 'v' } })).billable_metric.lago_id;
  const plain = await metric('plain');
  const vol = await metric('vol');
  const standard = { billable_metric_id: plain, charge_model: 'standard', properties: { amount: '1' } };
  const volume = { billable_metric_id: vol, charge_model: 'volume', properties: { volume_ranges: [
    { from_value: 0, to_value: 10, per_unit_amount: '2', flat_amount: '0' },
    { from_value: 11, to_value: 50, per_unit_amount: '1.5', flat_amount: '5' },
    { from_value: 51, to_value: null, per_unit_amount: '1', flat_amount: '20' }] } };
  // the plain charge first: it is settled before the volume charge's give-back
  await t.call('POST', '/api/v1/plans', { plan: { code: 'both', name: 'Both', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [standard, volume] } });
  await t.call('POST', '/api/v1/plans', { plan: { code: 'plain', name: 'Plain', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [standard] } });
  await t.call('POST', '/api/v1/plans', { plan: { code: 'vol', name: 'Vol', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [volume] } });
});
after(() => t.cleanup());

// A customer with a hard wallet of 100.00 and the given subscriptions, 60 units of `vol` on
// the one named `volSub` (80.00 debited: 20.00 left).
async function customer(id, subs, volSub) {
  await t.call('POST', '/api/v1/customers', { customer: { external_id: id, currency: 'USD' } });
  for (const [sub, plan] of subs)
    await t.call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: id, plan_code: plan, external_id: sub } });
  const w = (await t.call('POST', '/api/v1/wallets', { wallet: { external_customer_id: id, currency: 'USD', rate_amount: '1', granted_credits: '100', limit: 'hard' } })).wallet.lago_id;
  await t.call('POST', '/api/v1/events', { event: ev(volSub, 'vol', 60) });
  assert.equal(await balance(w), 2000);
  return w;
}

test("one subscription: a later charge's give-back pays an earlier charge's step", async () => {
  const batched = await customer('one_b', [['one_b_s', 'both']], 'one_b_s');
  // vol falls 80.00 -> 10.00 (70.00 back), plain takes 50.00: 20.00 back in all
  await t.call('POST', '/api/v1/events/batch', { events: [ev('one_b_s', 'vol', -55), ev('one_b_s', 'plain', 50)] });
  assert.equal(await balance(batched), 4000);
  // the same events one by one end the same
  const single = await customer('one_s', [['one_s_s', 'both']], 'one_s_s');
  await t.call('POST', '/api/v1/events', { event: ev('one_s_s', 'vol', -55) });
  await t.call('POST', '/api/v1/events', { event: ev('one_s_s', 'plain', 50) });
  assert.equal(await balance(single), 4000);
  // and a batch that does need more than the wallet and its give-backs hold is still refused
  // (vol 5 -> 1 unit: 10.00 -> 2.00, 8.00 back; plain takes 60.00; 40.00 + 8.00 held)
  const r = await t.api('/api/v1/events/batch', { method: 'POST', body: { events: [ev('one_b_s', 'vol', -4), ev('one_b_s', 'plain', 60)] } });
  assert.equal(r.status, 402, await r.text());
  assert.equal(await balance(batched), 4000);
});

test("two subscriptions of one customer: one's give-back pays the other's step, whichever the batch names first", async () => {
  const w = await customer('two', [['two_plain', 'plain'], ['two_vol', 'vol']], 'two_vol');
  await t.call('POST', '/api/v1/events/batch', { events: [ev('two_plain', 'plain', 50), ev('two_vol', 'vol', -55)] });
  assert.equal(await balance(w), 4000);
});
