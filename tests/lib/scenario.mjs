// A server with one organization on a test clock, and the short calls scenario tests make
// with it (each answer checked to be a 200): metrics, plans, subscriptions, event batches,
// the clock, current usage, a wallet and its balance. Event ids are `${prefix}${n}`.
import assert from 'node:assert/strict';
import { startWithOrg } from './tallyd.mjs';

export async function scenario(clock, prefix = 'e') {
  const t = await startWithOrg(['--test-clock', clock]);
  const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
  let n = 0;
  const h = {
    t,
    get: async (path) => ok(await t.api(path)),
    post: async (path, body) => ok(await t.api(path, { method: 'POST', body })),
    ev: (sub, code, properties = {}, extra = {}) => ({ transaction_id: `${prefix}${n++}`, external_subscription_id: sub, code, properties, ...extra }),
  };
  h.sent = (...events) => h.post('/api/v1/events/batch', { events });
  h.advance = (to) => h.post('/api/v1/test_clock/advance', { test_clock: { to } });
  h.metric = async (bm) => (await h.post('/api/v1/billable_metrics', { billable_metric: bm })).billable_metric.lago_id;
  h.plan = (code, charges, amount_cents = 0) => h.post('/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents, amount_currency: 'USD', charges } });
  h.subscribe = (customer, plan_code, external_id, extra = {}) => h.post('/api/v1/subscriptions', { subscription: { external_customer_id: customer, plan_code, external_id, ...extra } });
  h.usage = async (customer, sub) => (await h.get(`/api/v1/customers/${customer}/current_usage?external_subscription_id=${sub}`)).customer_usage;
  h.balance = async (wallet) => (await h.get(`/api/v1/wallets/${wallet}`)).wallet.balance_cents;
  h.wallet = async (customer, credits) => (await h.post('/api/v1/wallets', { wallet: { external_customer_id: customer, currency: 'USD', rate_amount: '1', name: 'W', granted_credits: String(credits) } })).wallet.lago_id;
  return h;
}
