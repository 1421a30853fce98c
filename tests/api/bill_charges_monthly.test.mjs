// bill_charges_monthly on yearly and semiannual plans: as Lago's Subscriptions::Dates::
// YearlyService / SemiannualService, the charges' period is then the month (calendar months, or
// anniversary months from subscription_at), while the subscription fee keeps the plan's
// interval. Found by a black-box audit: the flag was echoed, but usage (and so every wallet
// debit) aggregated over the whole year.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scenario } from '../lib/scenario.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

async function server(clock) {
  const h = await scenario(clock, 'm');
  h.calls = async (sub, count, code = 'calls') => { // in batches of at most 100, as Lago's
    for (let left = count; left > 0; left -= 100) await h.sent(...Array.from({ length: Math.min(left, 100) }, () => h.ev(sub, code)));
  };
  return h;
}
const seconds = (iso) => Date.parse(iso) / 1000;
const charge = (u, code) => u.charges_usage.find((c) => c.billable_metric.code === code);
const period = (u) => [u.from_datetime, u.to_datetime];
// 100 free calls a month, then 1 USD each (Lago's graduated tiers: 101.. counts from 101)
const freeTier = { graduated_ranges: [{ from_value: 0, to_value: 100, per_unit_amount: '0', flat_amount: '0' }, { from_value: 101, to_value: null, per_unit_amount: '1', flat_amount: '0' }] };

async function catalog(h, interval, bill_charges_monthly = true) {
  const calls = await h.metric({ code: 'calls', name: 'Calls', aggregation_type: 'count_agg' });
  const seats = await h.metric({ code: 'seats', name: 'Seats', aggregation_type: 'sum_agg', field_name: 'n', recurring: true });
  const api = await h.metric({ code: 'api', name: 'API', aggregation_type: 'count_agg' });
  const gb = await h.metric({ code: 'gb', name: 'GB', aggregation_type: 'weighted_sum_agg', field_name: 'gb', weighted_interval: 'seconds' });
  await h.post('/api/v1/plans', { plan: { code: 'p', name: 'p', interval, amount_cents: 100000, amount_currency: 'USD', bill_charges_monthly, charges: [
    { billable_metric_id: calls, charge_model: 'graduated', properties: freeTier },
    { billable_metric_id: seats, charge_model: 'standard', properties: { amount: '1' } },
    { billable_metric_id: gb, charge_model: 'standard', properties: { amount: '1' } },
    { billable_metric_id: api, charge_model: 'graduated', pay_in_advance: true, properties: freeTier }] } });
}

test('yearly calendar plan: usage, its free tier and wallet debits start again each month; the fee keeps the year', async () => {
  const h = await server('2026-01-15T00:00:00Z');
  try {
    await catalog(h, 'yearly');
    await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD' } });
    const sub = (await h.subscribe('c', 'p', 's', { billing_time: 'calendar', subscription_at: '2026-01-01T00:00:00Z' })).subscription;
    // the subscription's current_billing_period_* are the charges' month, as Lago's serializer
    // writes its DatesService's charges_from/to_datetime (an audit: they showed the year)
    assert.deepEqual([sub.current_billing_period_started_at, sub.current_billing_period_ending_at], ['2026-01-01T00:00:00Z', '2026-01-31T23:59:59Z']);
    const w = await h.wallet('c', 1000);
    let start = await h.balance(w);
    // January: 150 calls (50 paid), 5 seats
    await h.calls('s', 150);
    await h.sent(h.ev('s', 'seats', { n: 5 }));
    let u = await h.usage('c', 's');
    assert.deepEqual(period(u), ['2026-01-01T00:00:00Z', '2026-01-31T23:59:59Z']);
    // found by an audit: issuing_date was the month's end; Lago's is the plan's period's
    // (YearlyService#compute_next_end_of_period: end_of_year, whatever bill_charges_monthly says)
    assert.equal(u.issuing_date, '2026-12-31');
    assert.deepEqual([charge(u, 'calls').units, charge(u, 'calls').amount_cents], ['150.0', 5000]);
    assert.equal(u.total_amount_cents, 5000 + 500);
    assert.equal(start - await h.balance(w), u.total_amount_cents);

    // February: the free tier is the month's again; the seats carry over (a recurring metric)
    start = await h.balance(w); // the month's carried seats are debited as it starts
    await h.advance('2026-02-10T00:00:00Z');
    await h.calls('s', 60);
    await h.calls('s', 60, 'api');
    u = await h.usage('c', 's');
    assert.deepEqual(period(u), ['2026-02-01T00:00:00Z', '2026-02-28T23:59:59Z']);
    assert.deepEqual([charge(u, 'calls').units, charge(u, 'calls').amount_cents], ['60.0', 0]);
    assert.deepEqual([charge(u, 'seats').units, charge(u, 'seats').amount_cents], ['5.0', 500]);
    // a late event (January's) is stored but counts in no current month
    await h.sent(h.ev('s', 'calls', {}, { timestamp: seconds('2026-01-20T00:00:00Z') }));
    await h.sent(h.ev('s', 'seats', { n: 2 }));
    u = await h.usage('c', 's');
    assert.equal(charge(u, 'calls').units, '60.0');
    assert.deepEqual([charge(u, 'seats').units, charge(u, 'seats').amount_cents], ['7.0', 700]);
    assert.equal(start - await h.balance(w), u.total_amount_cents); // the month's debits telescope

    // March: a weighted sum is weighed over the month (16 of its 31 days)
    start = await h.balance(w); // the month's carried seats are debited as it starts
    await h.advance('2026-03-20T00:00:00Z');
    await h.calls('s', 101);
    await h.calls('s', 40, 'api');
    await h.sent(h.ev('s', 'gb', { gb: 31 }, { timestamp: seconds('2026-03-16T00:00:00Z') }));
    u = await h.usage('c', 's');
    assert.deepEqual(period(u), ['2026-03-01T00:00:00Z', '2026-03-31T23:59:59Z']);
    assert.deepEqual([charge(u, 'calls').units, charge(u, 'calls').amount_cents], ['101.0', 100]);
    assert.deepEqual([charge(u, 'gb').units, charge(u, 'gb').amount_cents], ['16.0', 1600]);
    assert.deepEqual([charge(u, 'seats').units, charge(u, 'seats').amount_cents], ['7.0', 700]);
    assert.equal(start - await h.balance(w), u.total_amount_cents);
    const sub2 = (await h.get('/api/v1/subscriptions/s')).subscription;
    assert.deepEqual([sub2.current_billing_period_started_at, sub2.current_billing_period_ending_at], period(u));

    // a restart, clean or killed, rebuilds the same month from the store and debits on from it
    for (const kill of [false, true]) {
      const live = await h.usage('c', 's');
      const before = await h.balance(w);
      await h.t.restart({ kill });
      assert.deepEqual(await h.usage('c', 's'), live);
      await h.calls('s', 1);
      assert.equal(before - await h.balance(w), 100);
    }
    u = await h.usage('c', 's');
    assert.equal(start - await h.balance(w), u.total_amount_cents);
    // estimate_fees prices against the month's usage: 40 API calls in March, the next is free
    const est = await h.post('/api/v1/events/estimate_fees', { event: { external_subscription_id: 's', code: 'api' } });
    assert.equal(est.fees[0].amount_cents, 0);
    await checkWalletLedger(h.t, w);
  } finally { await h.t.cleanup(); }
});

test('anniversary months from subscription_at, a Jan 31 anchor clamped, on a semiannual plan', async () => {
  const h = await server('2026-02-15T00:00:00Z');
  try {
    await catalog(h, 'semiannual');
    await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD' } });
    await h.subscribe('c', 'p', 's', { billing_time: 'anniversary', subscription_at: '2026-01-31T00:00:00Z' });
    const w = await h.wallet('c', 1000);
    await h.calls('s', 120);
    let u = await h.usage('c', 's');
    assert.deepEqual(period(u), ['2026-01-31T00:00:00Z', '2026-02-27T23:59:59Z']);
    assert.equal(u.issuing_date, '2026-07-30'); // the half year's last day, not the month's
    assert.equal(charge(u, 'calls').amount_cents, 2000);
    await h.advance('2026-03-05T00:00:00Z');
    const start = await h.balance(w);
    await h.calls('s', 101);
    u = await h.usage('c', 's');
    assert.deepEqual(period(u), ['2026-02-28T00:00:00Z', '2026-03-30T23:59:59Z']);
    assert.equal(u.issuing_date, '2026-07-30');
    assert.deepEqual([charge(u, 'calls').units, charge(u, 'calls').amount_cents], ['101.0', 100]);
    assert.equal(start - await h.balance(w), 100);
    await h.t.restart({ kill: true });
    assert.deepEqual(await h.usage('c', 's'), u);
    const s = (await h.get('/api/v1/subscriptions/s')).subscription;
    assert.deepEqual([s.current_billing_period_started_at, s.current_billing_period_ending_at], ['2026-02-28T00:00:00Z', '2026-03-30T23:59:59Z']);
  } finally { await h.t.cleanup(); }
});

test('months are the customer\'s local months; a new time zone moves the month, and one that would change it is refused', async () => {
  const h = await server('2026-05-20T00:00:00Z');
  try {
    await catalog(h, 'yearly');
    await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD', timezone: 'Europe/Paris' } });
    await h.subscribe('c', 'p', 's', { billing_time: 'calendar', subscription_at: '2026-01-01T00:00:00Z' });
    const w = await h.wallet('c', 1000);
    await h.calls('s', 110);
    assert.deepEqual(period(await h.usage('c', 's')), ['2026-04-30T22:00:00Z', '2026-05-31T21:59:59Z']);
    assert.equal(await h.balance(w), 100000 - 1000);
    await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD', timezone: 'Asia/Tokyo' } });
    await h.calls('s', 1);
    assert.deepEqual(period(await h.usage('c', 's')), ['2026-04-30T15:00:00Z', '2026-05-31T14:59:59Z']);
    assert.equal(await h.balance(w), 100000 - 1100); // the month's debits moved, not paid again
    // May 31 20:00 UTC is June 1 in Tokyo but still May in UTC: another month, refused
    await h.advance('2026-05-31T12:00:00Z');
    await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD', timezone: 'UTC' } });
    await h.advance('2026-05-31T20:00:00Z');
    const r = await h.t.api('/api/v1/customers', { method: 'POST', body: { customer: { external_id: 'c', currency: 'USD', timezone: 'Asia/Tokyo' } } });
    const body = await r.json();
    assert.equal(r.status, 422, JSON.stringify(body));
    assert.deepEqual(body.error_details, { timezone: ['would_change_current_period'] });
    await checkWalletLedger(h.t, w);
  } finally { await h.t.cleanup(); }
});

test('turning bill_charges_monthly on or off is refused while a subscription is live (its periods\' debits are settled apart)', async () => {
  const h = await server('2026-05-20T00:00:00Z');
  try {
    await catalog(h, 'yearly', false);
    await h.post('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD' } });
    await h.subscribe('c', 'p', 's', { subscription_at: '2026-01-01T00:00:00Z' });
    await h.calls('s', 3);
    const r = await h.t.api('/api/v1/plans/p', { method: 'PUT', body: { plan: { bill_charges_monthly: true } } });
    const body = await r.json();
    assert.equal(r.status, 422, JSON.stringify(body));
    assert.deepEqual(body.error_details, { bill_charges_monthly: ['plan_has_subscriptions'] });
    assert.deepEqual(period(await h.usage('c', 's')), ['2026-01-01T00:00:00Z', '2026-12-31T23:59:59Z']);
    // once no subscription is live, the flag can change
    await h.t.api('/api/v1/subscriptions/s', { method: 'DELETE' });
    const p = await h.t.api('/api/v1/plans/p', { method: 'PUT', body: { plan: { bill_charges_monthly: true } } });
    assert.equal(p.status, 200);
    assert.equal((await p.json()).plan.bill_charges_monthly, true);
  } finally { await h.t.cleanup(); }
});
