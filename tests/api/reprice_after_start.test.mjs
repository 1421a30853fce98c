// A plan edit gives back what its cut or removed charges had debited, whether or not tallyd
// started since the debit. After a start the writer's book held only the usages whose events
// the start read back; a subscription whose period's only debit came from units carried in (a
// recurring charge) was not among them, and the edit gave nothing back where a server that had
// not restarted gave it back at once (a restart-twin fuzzer: 40 of 80 cents).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

const servers = [];
after(async () => { await Promise.all(servers.map((s) => s.cleanup())); });

test('a plan edit after a start gives back a carried charge\'s debit, as without the start', async () => {
  const results = {};
  for (const kind of ['straight', 'restarted']) {
    const t = await startWithOrg(['--test-clock', '2026-03-01T00:00:00Z']);
    servers.push(t);
    const call = (m, p, b) => t.call(m, p, b);
    const seats = (await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'seats', name: 'Seats', aggregation_type: 'sum_agg', field_name: 'seats', recurring: true } })).billable_metric;
    const calls = (await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' } })).billable_metric;
    const charges = (amount) => [
      { billable_metric_id: seats.lago_id, charge_model: 'standard', properties: { amount } },
      { billable_metric_id: calls.lago_id, charge_model: 'standard', properties: { amount } }];
    await call('POST', '/api/v1/plans', { plan: { code: 'small', name: 'small', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: charges('1') } });
    const big = (await call('POST', '/api/v1/plans', { plan: { code: 'big', name: 'big', interval: 'monthly', amount_cents: 1000, amount_currency: 'USD', charges: charges('2') } })).plan;
    await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c', plan_code: 'small', external_id: 's', subscription_at: '2026-03-01T00:00:00Z' } });
    const wallet = (await call('POST', '/api/v1/wallets', { wallet: { external_customer_id: 'c', currency: 'USD', rate_amount: '0.01', granted_credits: '100000' } })).wallet.lago_id;
    await call('POST', '/api/v1/events', { event: { transaction_id: 'seats', external_subscription_id: 's', code: 'seats', properties: { seats: 3 } } });
    const consumed = async () => (await call('GET', `/api/v1/wallets/${wallet}`)).wallet.consumed_credits;
    // an upgrade in the middle of March: the new subscription's only debit is the seats carried in
    await call('POST', '/api/v1/test_clock/advance', { test_clock: { to: '2026-03-10T03:00:00Z' } });
    await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c', plan_code: 'big', external_id: 's' } });
    const before = Number(await consumed());
    if (kind === 'restarted') await t.restart({ kill: true });
    const kept = big.charges.find((c) => c.lago_billable_metric_id === calls.lago_id);
    await call('PUT', '/api/v1/plans/big', { plan: { charges: [{ id: kept.lago_id, billable_metric_id: calls.lago_id, charge_model: 'standard', properties: { amount: '2' } }] } });
    results[kind] = [before, await consumed()];
  }
  // the big plan's seats no longer have a charge: what they debited comes back, restart or not
  assert.deepEqual(results.restarted, results.straight);
  assert.ok(Number(results.straight[1]) < results.straight[0], JSON.stringify(results));
});

// The same gap in a customer's edit (a restart-twin fuzzer): a tax cut after a clean stop gave
// back nothing of a period whose only debit came from units carried in, and the period ended
// with the old tax paid (720 where 675 credits).
test('a customer\'s tax cut after a start gives back a carried charge\'s tax, as without the start', async () => {
  const results = {};
  for (const kind of ['straight', 'restarted', 'killed']) {
    const t = await startWithOrg(['--test-clock', '2026-03-01T00:00:00Z']);
    servers.push(t);
    const call = (m, p, b) => t.call(m, p, b);
    await call('POST', '/api/v1/taxes', { tax: { code: 'vat', name: 'VAT', rate: '20.0' } });
    await call('POST', '/api/v1/taxes', { tax: { code: 'low', name: 'Low', rate: '5.0' } });
    await call('POST', '/api/v1/customers', { customer: { external_id: 'c', currency: 'USD', tax_codes: ['vat'] } });
    const seats = (await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'seats', name: 'Seats', aggregation_type: 'sum_agg', field_name: 'seats', recurring: true } })).billable_metric;
    await call('POST', '/api/v1/plans', { plan: { code: 'p', name: 'p', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [{ billable_metric_id: seats.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } });
    await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c', plan_code: 'p', external_id: 's', subscription_at: '2026-03-01T00:00:00Z' } });
    const wallet = (await call('POST', '/api/v1/wallets', { wallet: { external_customer_id: 'c', currency: 'USD', rate_amount: '0.01', granted_credits: '100000' } })).wallet.lago_id;
    await call('POST', '/api/v1/events', { event: { transaction_id: 'e1', external_subscription_id: 's', code: 'seats', properties: { seats: 3 } } });
    // April: the 3 seats carried in are its only debit, 300 + 20% tax
    await call('POST', '/api/v1/test_clock/advance', { test_clock: { to: '2026-04-02T00:00:00Z' } });
    if (kind !== 'straight') await t.restart({ kill: kind === 'killed' });
    await call('POST', '/api/v1/customers', { customer: { external_id: 'c', tax_codes: ['low'] } });
    results[kind] = (await call('GET', `/api/v1/wallets/${wallet}`)).wallet.consumed_credits;
  }
  assert.deepEqual(results, { straight: '675.0', restarted: '675.0', killed: '675.0' }); // 360 + 315
});
