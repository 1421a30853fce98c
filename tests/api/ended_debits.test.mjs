// A subscription ended within its period (terminated, or replaced by an upgrade) is priced to
// its end, as Lago bills it to its termination date. Live usage had priced its prorated and
// time-weighted charges to the period's end at each event, and the wallet paid that: what
// those charges debited for the days after the end comes back at once, in the command that
// ends it, since no later event of that subscription will settle it. Found by an audit: the
// credits stayed debited, and after an upgrade the new subscription charged the same seats
// again from its own start.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

let t;
const call = (method, path, body) => t.call(method, path, body);
const advance = (to) => call('POST', '/api/v1/test_clock/advance', { test_clock: { to } });
let n = 0;
const send = (sub, code, properties) => call('POST', '/api/v1/events', { event: { transaction_id: `e${n++}`, external_subscription_id: sub, code, properties } });
const wallets = {};
const balance = async (k) => (await call('GET', `/api/v1/wallets/${wallets[k]}`)).wallet.balance_cents;
const plan = (code, amount_cents, charges) => call('POST', '/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents, amount_currency: 'USD', charges } });

// customer k subscribed to plan from March 1st, with 100 USD of granted credits
const subscribe = async (k, plan_code, limit = 'none') => {
  await call('POST', '/api/v1/customers', { customer: { external_id: k, currency: 'USD' } });
  await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: k, plan_code, external_id: k, subscription_at: '2026-03-01T00:00:00Z' } });
  wallets[k] = (await call('POST', '/api/v1/wallets', { wallet: { external_customer_id: k, currency: 'USD', rate_amount: '1', name: k, granted_credits: '100', limit } })).wallet.lago_id;
};

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-03-01T00:00:00Z']);
  const metric = (code, aggregation_type, extra = {}) => call('POST', '/api/v1/billable_metrics', { billable_metric: { code, name: code, aggregation_type, field_name: code, ...extra } });
  const seats = (await metric('seats', 'sum_agg', { recurring: true })).billable_metric.lago_id;
  const gpus = (await metric('gpus', 'weighted_sum_agg', { weighted_interval: 'seconds' })).billable_metric.lago_id;
  const users = (await metric('users', 'unique_count_agg', { recurring: true })).billable_metric.lago_id;
  await plan('users31', 0, [{ billable_metric_id: users, charge_model: 'standard', prorated: true, properties: { amount: '31' } }]);
  const calls = (await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'calls', aggregation_type: 'count_agg' } })).billable_metric.lago_id;
  await plan('seats30', 0, [{ billable_metric_id: seats, charge_model: 'standard', prorated: true, properties: { amount: '30' } }]);
  await plan('seats60', 1000, [{ billable_metric_id: seats, charge_model: 'standard', prorated: true, properties: { amount: '60' } }]);
  await plan('gpu31', 0, [{ billable_metric_id: gpus, charge_model: 'standard', properties: { amount: '31' } }]);
  await plan('calls1', 0, [
    { billable_metric_id: calls, charge_model: 'standard', properties: { amount: '1' } },
    { billable_metric_id: seats, charge_model: 'standard', prorated: true, properties: { amount: '31' } },
  ]);
  await subscribe('term', 'seats30');
  await subscribe('hard', 'seats30', 'hard');
  await subscribe('gpu', 'gpu31');
  await subscribe('up', 'seats30');
  await subscribe('ends', 'seats30');
  await subscribe('gone', 'seats30');
  await subscribe('short', 'seats30');
  await subscribe('instant', 'calls1');
  // March 1st: 2 seats for the whole of March (2 × 31/31 × 30 USD), 1 GPU from now to its end
  await send('term', 'seats', { seats: 2 });
  await send('hard', 'seats', { seats: 3 });
  await send('gpu', 'gpus', { gpus: 1 });
  await send('up', 'seats', { seats: 1 });
  await send('ends', 'seats', { seats: 1 });
  await send('gone', 'seats', { seats: 1 });
  // 100 USD cover 10000 of the 12000 cents 4 seats cost: 2000 are left to the invoice
  await send('short', 'seats', { seats: 4 });
  for (let i = 0; i < 3; i++) await send('instant', 'calls', {});
  await send('instant', 'seats', { seats: 1 });
});
after(async () => { await t.cleanup(); });

test('the debits of the full period are taken at each event', async () => {
  assert.equal(await balance('term'), 10000 - 6000);
  assert.equal(await balance('hard'), 10000 - 9000);
  assert.equal(await balance('gpu'), 10000 - 3100);
  assert.equal(await balance('up'), 10000 - 3000);
});

test('terminated at the very instant of its events, it keeps them, and the day of its end', async () => {
  assert.equal(await balance('instant'), 10000 - 300 - 3100);
  await call('DELETE', '/api/v1/subscriptions/instant');
  // the three calls arrived while it lived; the seat's one day (March 1st) of 31 is 0.03226
  // (1/31 ceiled to 5 decimals) × 31 USD = 1.00006 -> 100; 3000 come back
  assert.equal(await balance('instant'), 10000 - 300 - 100);
  await checkWalletLedger(t, wallets.instant);
});

test('a terminated subscription gives back the days after its end: prorated seats', async () => {
  await advance('2026-03-11T12:00:00Z');
  await call('DELETE', '/api/v1/subscriptions/term');
  // priced to March 11th, that day counted: 2 × 11/31 = 0.7096774.. ceil(5) 0.70968 × 30 USD
  // = 21.2904 -> 2129 cents; 6000 - 2129 come back
  assert.equal(await balance('term'), 10000 - 2129);
  await call('DELETE', '/api/v1/subscriptions/hard');
  // 3 × 11/31 = 1.0645161.. ceil(5) 1.06452 × 30 = 31.9356 -> 3194
  assert.equal(await balance('hard'), 10000 - 3194);
  await checkWalletLedger(t, wallets.term);
  await checkWalletLedger(t, wallets.hard);
});

test('a terminated subscription gives back the time after its end: a time-weighted sum', async () => {
  await call('DELETE', '/api/v1/subscriptions/gpu');
  // 1 GPU over 10.5 of March's 31 days: 10.5/31 × 31 USD = 10.50 USD
  assert.equal(await balance('gpu'), 10000 - 1050);
  await checkWalletLedger(t, wallets.gpu);
});

test('an upgrade gives back the old plan\'s days after it; the new plan charges them from its start', async () => {
  await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'up', plan_code: 'seats60', external_id: 'up' } });
  // the old subscription to March 11th: 11/31 = 0.35484 × 30 = 10.6452 -> 1065, and the seat carried into the new one weighs March 11th to 31st: 21/31 = 0.67742 × 60 USD
  // = 40.6452 -> 4065, debited as the new subscription starts, not again by its next event
  assert.equal(await balance('up'), 10000 - 1065 - 4065);
  await send('up', 'seats', { seats: 0 });
  assert.equal(await balance('up'), 10000 - 1065 - 4065);
  await checkWalletLedger(t, wallets.up);
});

test('an ending_at moved into the period gives back at once; moved later, the next event pays', async () => {
  await call('PUT', '/api/v1/subscriptions/ends', { subscription: { ending_at: '2026-03-20T12:00:00Z' } });
  // priced to March 20th: 20/31 = 0.64517 (ceil 5) × 30 = 19.3551 -> 1936
  assert.equal(await balance('ends'), 10000 - 1936);
  await call('PUT', '/api/v1/subscriptions/ends', { subscription: { ending_at: '2026-03-25T12:00:00Z' } });
  assert.equal(await balance('ends'), 10000 - 1936); // a command that ends nothing spends nothing
  await send('ends', 'seats', { seats: 0 });
  // 25/31 = 0.80646 × 30 = 24.1938 -> 2419
  assert.equal(await balance('ends'), 10000 - 2419);
  await checkWalletLedger(t, wallets.ends);
});

test('a customer deleted gives back before its wallet is terminated: the ledger keeps what it used', async () => {
  await call('DELETE', '/api/v1/customers/gone');
  const w = (await call('GET', `/api/v1/wallets/${wallets.gone}`)).wallet;
  assert.equal(w.status, 'terminated');
  const entries = await checkWalletLedger(t, wallets.gone);
  // revenue ends with what the 11 days of the seat cost: 11/31 = 0.35484 × 30 -> 1065
  const revenue = entries.filter((x) => x.account === 'revenue').reduce((sum, x) => sum + (x.direction === 'credit' ? x.amount_cents : -x.amount_cents), 0);
  assert.equal(revenue, 1065);
});

test('what the credits did not cover is given back before any credit', async () => {
  assert.equal(await balance('short'), 0);
  await call('DELETE', '/api/v1/subscriptions/short');
  // 4 × 11/31 = 1.41936 × 30 = 42.5808 -> 4258; 7742 of the 12000 priced come back,
  // the 2000 uncovered first, then 5742 credits
  assert.equal(await balance('short'), 10000 - 4258);
  await checkWalletLedger(t, wallets.short);
});

test('ended at the first instant of a period, it keeps that instant\'s day and gives back the rest', async () => {
  // (an audit found it priced in the period before, whose start matched none of the debits:
  // nothing came back) a termination, an upgrade, and a customer's deletion
  for (const k of ['first_end', 'first_up', 'first_gone']) await subscribe(k, 'seats30');
  await advance('2026-04-01T00:00:00Z');
  for (const k of ['first_end', 'first_up', 'first_gone']) {
    await send(k, 'seats', { seats: 3 }); // 3 seats for all of April: 3 × 30/30 × 30 USD
    assert.equal(await balance(k), 10000 - 9000);
  }
  await call('DELETE', '/api/v1/subscriptions/first_end');
  // its one day, April 1st: 3 × 1/30 = 0.1 × 30 USD = 3 USD
  assert.equal(await balance('first_end'), 10000 - 300);
  await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'first_up', plan_code: 'seats60', external_id: 'first_up' } });
  // the old plan keeps its one day; the new one carries the 3 seats for all of April at 60
  // USD (180 USD) from its start: the 97 left pay for them, the invoice the rest
  assert.equal(await balance('first_up'), 0);
  const up = (await call('GET', `/api/v1/wallets/${wallets.first_up}`)).wallet;
  assert.equal(up.consumed_amount_cents, 300 + 9700);
  await call('DELETE', '/api/v1/customers/first_gone');
  const entries = await checkWalletLedger(t, wallets.first_gone);
  const revenue = entries.filter((x) => x.account === 'revenue').reduce((sum, x) => sum + (x.direction === 'credit' ? x.amount_cents : -x.amount_cents), 0);
  assert.equal(revenue, 300);
  for (const k of ['first_end', 'first_up']) await checkWalletLedger(t, wallets[k]);
});

test('a prorated unique count gives back the days after the end too', async () => {
  await subscribe('uniq', 'users31');
  await send('uniq', 'users', { users: 'ann' });
  await send('uniq', 'users', { users: 'bob' });
  // April 1st: two users for April's 30 days at 31 USD
  assert.equal(await balance('uniq'), 10000 - 6200);
  await advance('2026-04-11T12:00:00Z');
  await call('DELETE', '/api/v1/subscriptions/uniq');
  // 2 × 11 days / 30 = 0.7333.. ceil(5) 0.73334 × 31 USD = 22.73354 -> 2273
  assert.equal(await balance('uniq'), 10000 - 2273);
  await checkWalletLedger(t, wallets.uniq);
});

test('a period whose only debit came from a late event gives back as well', async () => {
  // (an audit found nothing given back: the give-back skipped a usage that no event of its
  // period referred to, but a late event of a recurring metric is carried into the period
  // and debited there) a termination, and a price cut
  const seats = (await call('GET', '/api/v1/billable_metrics/seats')).billable_metric.lago_id;
  const cut = (await plan('seats30cut', 0, [{ billable_metric_id: seats, charge_model: 'standard', prorated: true, properties: { amount: '30' } }])).plan;
  await subscribe('late_end', 'seats30');
  await subscribe('late_cut', 'seats30cut');
  for (const k of ['late_end', 'late_cut']) {
    // sent on April 11th, timestamped March 20th: carried into April whole, 2 × 30 USD
    await call('POST', '/api/v1/events', { event: { transaction_id: `${k}_late`, external_subscription_id: k, code: 'seats', timestamp: Date.parse('2026-03-20T10:00:00Z') / 1000, properties: { seats: 2 } } });
    assert.equal(await balance(k), 10000 - 6000);
  }
  await call('DELETE', '/api/v1/subscriptions/late_end');
  // to April 11th: 2 × 11/30 = 0.73334 × 30 USD = 22.0002 -> 2200
  assert.equal(await balance('late_end'), 10000 - 2200);
  await call('PUT', '/api/v1/plans/seats30cut', { plan: { charges: [{ id: cut.charges[0].lago_id, billable_metric_id: seats, charge_model: 'standard', prorated: true, properties: { amount: '3' } }] } });
  assert.equal(await balance('late_cut'), 10000 - 600);
  for (const k of ['late_end', 'late_cut']) await checkWalletLedger(t, wallets[k]);
});

test('a restart changes none of it', async () => {
  const keys = ['term', 'hard', 'gpu', 'up', 'ends', 'short', 'instant', 'first_end', 'first_up', 'uniq', 'late_end', 'late_cut'];
  const before = await Promise.all(keys.map(balance));
  await t.restart();
  assert.deepEqual(await Promise.all(keys.map(balance)), before);
});
