// The percentage charge model on a sum, end to end: events sent out of timestamp order under
// random properties (free events, a free total, per-transaction min and max, a fixed amount),
// and plan edits that change what the model reads, each checked against an exact reference of
// Lago's PercentageService written here from its formulas (docs/API.md).
//
// A sum keeps only the event values the model reads (charge_model_values_read): none for a
// rate and a fixed amount, the first N for free_units_per_events, every one for a free total.
// A per-transaction min or max without a free total prices each event as it comes and keeps
// the total of those prices beside the first N values. A plan edit that makes the model read more reads the period's events
// back; a state that keeps no values is taken back after a refused command without reading
// any (the /metrics counters show both).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { rng } from '../lib/splitmix.mjs';

const SEED = Number(process.env.TALLY_PERCENTAGE_SEED ?? 20261127);
const SCALE = 10n ** 12n; // every amount here has at most 6 decimals: exact at 10^-12

let t;
let metricId;
const ok = async (r) => { const b = await r.json(); assert.ok(r.status === 200, `${r.status} ${JSON.stringify(b)}`); return b; };
const post = async (path, body) => ok(await t.api(path, { method: 'POST', body }));
const put = async (path, body) => ok(await t.api(path, { method: 'PUT', body }));

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-03-20T12:00:00Z']);
  metricId = (await post('/api/v1/billable_metrics', { billable_metric: { code: 'paid', name: 'Paid', aggregation_type: 'sum_agg', field_name: 'amount' } })).billable_metric.lago_id;
});
after(async () => { await t.cleanup(); });

// ---- an exact reference, in integers at SCALE ----
const dec = (text) => {
  const neg = text.startsWith('-');
  const [whole, frac = ''] = (neg ? text.slice(1) : text).split('.');
  const v = BigInt(whole) * SCALE + BigInt((frac + '000000000000').slice(0, 12));
  return neg ? -v : v;
};
const percentOf = (v, rate) => (v * rate) / (100n * SCALE); // exact: at most 4 + 2 decimals
const minMaxEvent = (p, v, fixed) => {
  let a = percentOf(v, dec(p.rate)) + fixed;
  if (p.per_transaction_min_amount !== undefined && a < dec(p.per_transaction_min_amount)) a = dec(p.per_transaction_min_amount);
  else if (p.per_transaction_max_amount !== undefined && a > dec(p.per_transaction_max_amount)) a = dec(p.per_transaction_max_amount);
  return a;
};

// Lago's compute_amount for a sum: values in timestamp order.
function percentageAmount(p, values) {
  const units = values.reduce((s, v) => s + v, 0n);
  const fixed = p.fixed_amount !== undefined ? dec(p.fixed_amount) : 0n;
  const n = p.free_units_per_events ?? 0;
  const freeTotal = p.free_units_per_total_aggregation !== undefined ? dec(p.free_units_per_total_aggregation) : 0n;
  if (p.per_transaction_min_amount !== undefined || p.per_transaction_max_amount !== undefined) {
    let freeEvents = n, freeAmount = freeTotal, total = 0n;
    for (let v of values) {
      if (freeEvents > 0 || freeAmount > 0n) {
        if (freeEvents > 0) freeEvents--;
        if (freeAmount <= 0n) { total = 0n; continue; }
        if (freeAmount > v) { freeAmount -= v; total = 0n; continue; }
        v -= freeAmount;
        freeAmount = 0n;
        freeEvents = 0;
      }
      total += minMaxEvent(p, v, fixed);
    }
    return { units, amount: total };
  }
  // the running total: the first N events' prefix sums, or up to the first past the free total
  let last = 0n, taken = 0, below = 0;
  if (n > 0 || freeTotal !== 0n) {
    let run = 0n;
    for (const v of values) {
      if (n > 0 ? taken >= n : freeTotal < run) break;
      run += v;
      taken++;
      if (run < freeTotal) below++;
    }
    last = taken > 0 ? run : 0n;
  }
  const freeValue = last === 0n ? 0n : freeTotal === 0n || last <= freeTotal ? last : freeTotal;
  let freeCount = n;
  if (below !== 0 && (n === 0 || below < n)) freeCount = below;
  const percentage = freeValue <= units ? percentOf(units - freeValue, dec(p.rate)) : 0n;
  const events = values.length;
  const fixedTotal = units !== 0n && p.fixed_amount !== undefined && freeCount < events ? BigInt(events - freeCount) * fixed : 0n;
  return { units, amount: percentage + fixedTotal };
}

// Lago's fee: 0 for negative units or amount, else the amount rounded half up to the cent.
const feeCents = ({ units, amount }) => {
  if (units < 0n || amount < 0n) return 0;
  const cent = SCALE / 100n;
  return Number((amount + cent / 2n) / cent);
};

// ---- the server side ----
let subs = 0;
let nextId = 0;
async function subscribe(properties) {
  const code = `pct${subs++}`;
  await post('/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [{ billable_metric_id: metricId, charge_model: 'percentage', properties }] } });
  await post('/api/v1/subscriptions', { subscription: { external_customer_id: code, plan_code: code, external_id: code, subscription_at: '2026-03-01T00:00:00Z' } });
  return code;
}
// events at distinct instants of 1-19 March, sent in the order given
const at = (second) => Math.floor(Date.parse('2026-03-01T00:00:00Z') / 1000) + second;
async function send(sub, events) {
  for (let i = 0; i < events.length; i += 100)
    await post('/api/v1/events/batch', { events: events.slice(i, i + 100).map((e) => ({ transaction_id: `t${nextId++}`, external_subscription_id: sub, code: 'paid', timestamp: at(e.second), properties: { amount: e.amount } })) });
}
const inOrder = (events) => [...events].sort((a, b) => a.second - b.second).map((e) => dec(e.amount));
async function charged(sub) {
  const u = (await ok(await t.api(`/api/v1/customers/${sub}/current_usage?external_subscription_id=${sub}`))).customer_usage;
  return u.charges_usage[0].amount_cents;
}
const counters = async () => {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  const read = (name) => Number(text.match(new RegExp(`^${name} (\\d+)$`, 'm'))[1]);
  return { builds: read('tally_usage_builds_total'), read: read('tally_usage_events_read_total') };
};

const money = (r, max, decimals = 2) => {
  const cents = r.below(max * 10 ** decimals + 1);
  return decimals === 0 ? String(cents) : `${Math.floor(cents / 10 ** decimals)}.${String(cents % 10 ** decimals).padStart(decimals, '0')}`;
};
function randomProperties(r) {
  const p = { rate: money(r, 10) };
  if (r.below(2)) p.fixed_amount = money(r, 2);
  if (r.below(2)) p.free_units_per_events = 1 + r.below(12);
  if (r.below(3) === 0) p.free_units_per_total_aggregation = money(r, 300);
  if (r.below(4) === 0) p.per_transaction_min_amount = money(r, 3);
  if (r.below(4) === 0) {
    p.per_transaction_max_amount = money(r, 8);
    if (p.per_transaction_min_amount !== undefined && dec(p.per_transaction_min_amount) > dec(p.per_transaction_max_amount)) delete p.per_transaction_max_amount;
  }
  return p;
}
function randomEvents(r, count) {
  const seconds = new Set();
  const events = [];
  while (events.length < count) {
    const second = r.below(19 * 86400);
    if (seconds.has(second)) continue; // distinct instants: Lago's order has no ties to break
    seconds.add(second);
    const amount = money(r, 80);
    events.push({ second, amount: r.below(10) === 0 ? `-${amount}` : amount });
  }
  return events;
}

test('random properties, events out of order: every amount is Lago\'s', async () => {
  const r = rng(BigInt(SEED));
  for (let round = 0; round < 24; round++) {
    const properties = randomProperties(r);
    const sub = await subscribe(properties);
    const events = randomEvents(r, 1 + r.below(60));
    const cut = r.below(events.length + 1); // read in the middle too, then after the rest
    await send(sub, events.slice(0, cut));
    const context = `seed ${SEED} round ${round} ${JSON.stringify(properties)}`;
    assert.equal(await charged(sub), feeCents(percentageAmount(properties, inOrder(events.slice(0, cut)))), `${context} after ${cut}`);
    await send(sub, events.slice(cut));
    assert.equal(await charged(sub), feeCents(percentageAmount(properties, inOrder(events))), `${context} after all`);
  }
});

// Free events: the usage keeps the first N values whatever the arrival. A later event sent
// first is pushed out by earlier ones; an edit to N + more reads the period's events back.
test('free events kept as the first N whatever the arrival; an edit that reads more reads the events back', async () => {
  const properties = { rate: '10', fixed_amount: '1', free_units_per_events: 2 };
  const sub = await subscribe(properties);
  const plan = (await ok(await t.api(`/api/v1/plans/${sub}`))).plan;
  const events = [
    { second: 500, amount: '100' }, { second: 400, amount: '50' }, { second: 300, amount: '20' },
    { second: 200, amount: '7' }, { second: 600, amount: '1000' },
  ];
  for (let i = 0; i < events.length; i++) {
    await send(sub, [events[i]]);
    assert.equal(await charged(sub), feeCents(percentageAmount(properties, inOrder(events.slice(0, i + 1)))), `after ${i + 1}`);
  }
  // 7 and 20 free: (1177 - 27) x 10% + 3 x 1 = 118
  assert.equal(await charged(sub), 11800);
  const edit = async (props) => {
    const was = await counters();
    await put(`/api/v1/plans/${sub}`, { plan: { charges: [{ id: plan.charges[0].lago_id, billable_metric_id: metricId, charge_model: 'percentage', properties: props }] } });
    const now = await counters();
    return { builds: now.builds - was.builds, read: now.read - was.read };
  };
  for (const [props, read] of [
    [{ rate: '10', fixed_amount: '1', free_units_per_events: 4 }, events.length], // more values than kept
    [{ rate: '10', fixed_amount: '1', free_units_per_events: 1 }, events.length], // fewer
    // a max prices each event as it comes: the total of their prices and the N free values
    [{ rate: '10', fixed_amount: '1', per_transaction_max_amount: '20', free_units_per_events: 1 }, events.length],
    [{ rate: '10', fixed_amount: '1', per_transaction_max_amount: '20', free_units_per_events: 3 }, events.length],
    [{ rate: '10', fixed_amount: '1', per_transaction_max_amount: '8' }, events.length], // a new price: priced again
    [{ rate: '10', fixed_amount: '1', free_units_per_total_aggregation: '60' }, events.length], // every value
    [{ rate: '10', fixed_amount: '1', free_units_per_total_aggregation: '80' }, 0], // every value still
    [{ rate: '10', fixed_amount: '1', free_units_per_total_aggregation: '80', per_transaction_min_amount: '2' }, 0],
    [{ rate: '10', fixed_amount: '1' }, events.length], // none
  ]) {
    const reads = await edit(props);
    assert.equal(reads.read, read, `${JSON.stringify(props)}: events read back`);
    assert.equal(await charged(sub), feeCents(percentageAmount(props, inOrder(events))), JSON.stringify(props));
  }
  // a price alone changes nothing the state keeps: the state stays, nothing is read
  const reads = await edit({ rate: '20', fixed_amount: '2' });
  assert.equal(reads.read, 0);
  assert.equal(await charged(sub), feeCents(percentageAmount({ rate: '20', fixed_amount: '2' }, inOrder(events))));
});

// A rate and a fixed amount read no value, nor does a min or max without free units (it sums
// the events' prices): the state is a plain sum, so a refused batch is
// taken back in memory (it was rebuilt from the store, as a state that keeps values still is).
test('a rate and a fixed amount, or a min alone, keep no values: a refused batch reads nothing back', async () => {
  const sub = await subscribe({ rate: '2.5', fixed_amount: '0.3' });
  const priced = await subscribe({ rate: '2.5', fixed_amount: '0.3', per_transaction_min_amount: '1' });
  const kept = await subscribe({ rate: '2.5', fixed_amount: '0.3', free_units_per_events: 3 });
  const refused = async (s) => {
    const first = { transaction_id: `t${nextId++}`, external_subscription_id: s, code: 'paid', timestamp: at(10), properties: { amount: '5' } };
    await post('/api/v1/events/batch', { events: [first] });
    const was = await counters();
    const r = await t.api('/api/v1/events/batch', { method: 'POST', body: { events: [{ ...first, transaction_id: `t${nextId++}` }, first] } });
    assert.equal(r.status, 422);
    const now = await counters();
    return now.read - was.read;
  };
  assert.equal(await refused(sub), 0);
  assert.equal(await refused(priced), 0); // the total of the prices is part of the state
  assert.equal(await refused(kept), 1); // the one stored event of its period
  // the first event alone: 5 x 2.5% + 0.3 = 0.425, and the first of 3 free events: 0
  assert.equal(await charged(sub), 43);
  assert.equal(await charged(priced), 100); // 0.425 raised to the min of 1
  assert.equal(await charged(kept), 0);
});

// A per-transaction min or max prices each event as it comes: a hold prices the next event
// the same way (its price alone, after the free ones), a capture records it, and the wallet
// pays exactly the fee's steps.
test('a min and max charge: holds, captures and debits price each event alone', async () => {
  const properties = { rate: '2', fixed_amount: '0.3', per_transaction_min_amount: '0.5', per_transaction_max_amount: '5', free_units_per_events: 1 };
  const sub = await subscribe(properties);
  const wallet = (await post('/api/v1/wallets', { wallet: { external_customer_id: sub, currency: 'USD', rate_amount: '0.01', granted_credits: '100000' } })).wallet;
  const events = [{ second: 900, amount: '40' }, { second: 800, amount: '1000' }, { second: 700, amount: '3' }];
  await send(sub, events);
  // 3 free; 40 x 2% + 0.3 = 1.1; 1000 x 2% + 0.3 = 20.3 -> 5
  assert.equal(await charged(sub), 610);
  const hold = (await post('/api/v1/authorizations', { authorization: { external_subscription_id: sub, code: 'paid', properties: { amount: '10' } } })).authorization;
  assert.equal(hold.status, 'authorized');
  assert.equal(hold.amount_cents, 50); // 10 x 2% + 0.3 = 0.5: the min
  const captured = (await post(`/api/v1/authorizations/${hold.lago_id}/capture`, { authorization: { properties: { amount: '100' } } })).authorization;
  assert.equal(captured.captured_amount_cents, 230); // 100 x 2% + 0.3
  const all = [...events, { second: 19 * 86400 + 43200, amount: '100' }]; // captured now
  assert.equal(await charged(sub), feeCents(percentageAmount(properties, inOrder(all))));
  const w = (await ok(await t.api(`/api/v1/wallets/${wallet.lago_id}`))).wallet;
  assert.equal(w.consumed_credits, '840.0');
});

// A hold is priced with its event in its place among the values kept: events sent ahead (later
// this period than the hold) are after it, so a hold can be one of the free events and push a
// later one out of them. Priced as the last event, this hold reserved 1.00 for a capture that
// costs 10.00.
test('a hold before events sent ahead is priced in its place among the first values', async () => {
  const properties = { rate: '10', free_units_per_events: 2 };
  const sub = await subscribe(properties);
  await post('/api/v1/wallets', { wallet: { external_customer_id: sub, currency: 'USD', rate_amount: '0.01', granted_credits: '100000' } });
  const ahead = [{ second: 24 * 86400, amount: '100' }, { second: 25 * 86400, amount: '100' }]; // 25 and 26 March
  await send(sub, ahead);
  assert.equal(await charged(sub), 0); // both free
  const hold = (await post('/api/v1/authorizations', { authorization: { external_subscription_id: sub, code: 'paid', properties: { amount: '10' } } })).authorization;
  const now = 19 * 86400 + 43200;
  const expected = feeCents(percentageAmount(properties, inOrder([...ahead, { second: now, amount: '10' }])));
  assert.equal(expected, 1000); // the hold free, the second event sent ahead paid: 100 x 10%
  assert.equal(hold.amount_cents, expected);
  const captured = (await post(`/api/v1/authorizations/${hold.lago_id}/capture`, { authorization: {} })).authorization;
  assert.equal(captured.captured_amount_cents, expected);
  assert.equal(await charged(sub), expected);
});
