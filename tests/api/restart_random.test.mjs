// Restart equivalence, randomized. From a seed, a random but valid command sequence over a few
// customers on a test clock: events (of the period, late into earlier periods, sent ahead) of
// recurring and non-recurring metrics (sum, unique count with removals, max, latest, weighted
// sum, prorated (standard and graduated) and grouped charges), price changes, terminations, upgrades and downgrades,
// wallets of every limit, some with a threshold rule (granting less than a fall, or buying up to
// a target at or just above the threshold: the rule's guard against firing twice for one fall,
// armed again by its own top-up, is kept across restarts), top-ups (granted, expiring, paid,
// paid after an invoice is settled),
// holds (captured, voided, expired), voided credits, time zone changes and clock moves across
// periods. Server A runs it straight through; server B is restarted at two or three random
// points, each one of: a clean stop (the snapshot), a SIGKILL, a clean stop whose snapshot is
// removed, or a clean stop early then more commands then a SIGKILL (the start loads an older
// snapshot and reads the rest). Every command's answer (status and body, ids aside) must agree,
// and after each restart (at once, or a few commands later: a current-usage read builds the
// usage into the book and would hide a start that did not) and at the end, every read: each
// subscription's current usage, each wallet, its transactions, its ledger summed by account and
// cause, each hold.
//
// TALLY_RESTART_SEED picks another seed (it is printed on failure), TALLY_RESTART_STEPS another
// length.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startWithOrg } from '../lib/tallyd.mjs';
import { rng } from '../lib/splitmix.mjs';
import { differences } from '../lib/compare.mjs';

const SEED = BigInt(process.env.TALLY_RESTART_SEED || '20261127');
const STEPS = Number(process.env.TALLY_RESTART_STEPS || 160);
// TALLY_RESTART_READ_FROM=N compares every read before every command from step N on (to find
// where the two servers part; reads can hide what a start left out of the book, see above).
const READ_FROM = Number(process.env.TALLY_RESTART_READ_FROM ?? Infinity);
const START = '2026-03-10T00:00:00Z';
const CUSTOMERS = 4;
const DAY = 86400000;

const servers = [];
after(async () => { await Promise.all(servers.map((s) => s.cleanup())); });

// Names a row by what the test calls it (a wallet, a hold, an invoice) rather than its id, which
// differs between the two servers, wherever the id appears (an error message names a wallet).
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
function plain(v, w) {
  if (Array.isArray(v)) return v.map((x) => plain(x, w));
  if (typeof v === 'string') return v.replace(UUID, (id) => (w && w.names[id]) || '<id>');
  if (v && typeof v === 'object') {
    const o = {};
    for (const [k, x] of Object.entries(v)) o[k] = plain(x, w);
    return o;
  }
  return v;
}
function named(w) {
  w.names = {};
  for (const [name, id] of [...Object.entries(w.ids), ...Object.entries(w.wallets)]) w.names[id] = `<${name}>`;
}
// The paths where b differs from a, each with both values (the objects are large).

// ---- the catalog -----------------------------------------------------------------------------

const METRICS = [
  { code: 'seats', aggregation_type: 'sum_agg', field_name: 'seats', recurring: true },
  { code: 'users', aggregation_type: 'unique_count_agg', field_name: 'user', recurring: true },
  { code: 'rgpus', aggregation_type: 'weighted_sum_agg', field_name: 'gpus', recurring: true, weighted_interval: 'seconds' },
  { code: 'gpus', aggregation_type: 'weighted_sum_agg', field_name: 'gpus', weighted_interval: 'seconds' },
  { code: 'peak', aggregation_type: 'max_agg', field_name: 'mem' },
  { code: 'storage', aggregation_type: 'latest_agg', field_name: 'gb' },
  { code: 'calls', aggregation_type: 'count_agg' },
  { code: 'tokens', aggregation_type: 'sum_agg', field_name: 'tokens' },
];
// Each plan's charges at price factor f (a PUT /plans sends them again, ids kept).
function charges(plan, f) {
  const k = plan === 'plus' ? 1.5 : 1;
  const a = (x) => String(Math.round(x * f * k * 10000) / 10000);
  return [
    ['seats', 'graduated', { graduated_ranges: [
      { from_value: 0, to_value: 3, per_unit_amount: a(2), flat_amount: a(1) },
      { from_value: 4, to_value: null, per_unit_amount: a(1.5), flat_amount: '0' }] }],
    ['seats', 'standard', { amount: a(3.1) }, { prorated: true }],
    // prorated graduated: the seats' tiers fill in time order, the carried total as one value
    ['seats', 'graduated', { graduated_ranges: [
      { from_value: 0, to_value: 2, per_unit_amount: a(3.1), flat_amount: a(0.5) },
      { from_value: 3, to_value: null, per_unit_amount: a(1.55), flat_amount: a(0.2) }] }, { prorated: true }],
    ['users', 'standard', { amount: a(3.1) }, { prorated: true }],
    ['users', 'standard', { amount: a(0.5) }],
    ['rgpus', 'standard', { amount: a(0.4) }],
    ['gpus', 'standard', { amount: a(0.7) }],
    ['peak', 'volume', { volume_ranges: [
      { from_value: 0, to_value: 10, per_unit_amount: a(0.4), flat_amount: '0' },
      { from_value: 11, to_value: null, per_unit_amount: a(0.25), flat_amount: '0' }] }],
    ['storage', 'standard', { amount: a(0.3) }],
    ['calls', 'package', { amount: a(0.5), package_size: 5, free_units: 0 }],
    ['tokens', 'standard', { amount: a(0.001), pricing_group_keys: ['region'] }],
    // percentage: each event priced alone beside the first 3 values; the first 2 values of a
    // recurring sum, carried over; every value, for a free total
    ['tokens', 'percentage', { rate: a(0.2), fixed_amount: a(0.01), free_units_per_events: 3, per_transaction_min_amount: a(0.5), per_transaction_max_amount: a(6) }],
    ['seats', 'percentage', { rate: a(5), fixed_amount: a(0.2), free_units_per_events: 2 }],
    ['tokens', 'percentage', { rate: a(0.1), free_units_per_total_aggregation: a(4000) }],
  ];
}
const PLANS = { basic: 0, plus: 1000 }; // plus is worth more: to it an upgrade, back a downgrade

// ---- the two servers -------------------------------------------------------------------------

async function server(kind) {
  const t = await startWithOrg(['--test-clock', START]);
  servers.push(t);
  // ids: what each logical name (wallet, hold, invoice, plan charge, metric) is on this server
  return { kind, t, ids: {}, wallets: {} };
}

// One request; answers { status, body }. A 5xx is never right.
async function request(w, label, method, path, body) {
  const res = await w.t.api(path, { method, body });
  const text = await res.text();
  if (process.env.TALLY_RESTART_TRACE && w.kind === process.env.TALLY_RESTART_TRACE) console.log(`${label}: ${method} ${path} ${JSON.stringify(body)} -> ${res.status} ${text}`);
  assert.ok(res.status < 500, `${w.kind}: ${label}: ${res.status} ${text}`);
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

// Every read the comparison makes: current usage of every subscription each customer has had,
// every wallet, its transactions (ids and times aside), its ledger summed by account and cause,
// every hold.
async function reads(w, world) {
  named(w);
  const out = {};
  for (const c of world.customers) {
    const r = { usage: {}, wallets: {} };
    for (const s of world.subsOf[c]) {
      const res = await w.t.api(`/api/v1/customers/${c}/current_usage?external_subscription_id=${s}`);
      const body = await res.json();
      r.usage[s] = res.status === 200 ? plain(body.customer_usage, w) : { status: res.status, body: plain(body, w) };
    }
    const entries = [];
    for (let page = 1; ; page++) {
      const b = (await w.t.call('GET', `/api/v1/ledger_entries?external_customer_id=${c}&per_page=1000&page=${page}`));
      entries.push(...b.ledger_entries);
      if (!b.meta.next_page) break;
    }
    const nameOf = Object.fromEntries(Object.entries(w.wallets).map(([name, id]) => [id, name]));
    const sums = {};
    for (const e of entries) {
      const k = `${nameOf[e.lago_wallet_id] ?? '-'}/${e.cause}/${e.account}/${e.direction}`;
      // (sums only: how many postings a sum is split into follows when the wallet journal was
      // written out, a second of real time or a clean stop, docs/ARCHITECTURE.md)
      sums[k] = (sums[k] ?? 0) + e.amount_cents;
    }
    r.ledger = sums;
    for (const name of world.walletsOf[c]) {
      const id = w.wallets[name];
      if (!id) { r.wallets[name] = 'none'; continue; }
      const wallet = (await w.t.call('GET', `/api/v1/wallets/${id}`)).wallet;
      const txs = [];
      for (let page = 1; ; page++) {
        const b = await w.t.call('GET', `/api/v1/wallets/${id}/wallet_transactions?per_page=100&page=${page}`);
        txs.push(...b.wallet_transactions);
        if (!b.meta.next_page) break;
      }
      r.wallets[name] = {
        wallet: plain(wallet, w),
        transactions: plain(txs, w).map(({ created_at, updated_at, settled_at, failed_at, ...x }) => x)
          .map((x) => JSON.stringify(x)).sort(),
      };
    }
    out[c] = r;
  }
  out.holds = {};
  for (const h of world.holds) {
    const id = w.ids[h];
    out.holds[h] = id ? plain((await w.t.call('GET', `/api/v1/authorizations/${id}`)).authorization, w) : 'none';
  }
  return out;
}

async function compareReads(a, b, world, what) {
  const [ra, rb] = await Promise.all([reads(a, world), reads(b, world)]);
  assert.deepEqual(differences(ra, rb), [], `seed ${world.seed}: ${what}: the restarted server reads otherwise than the one that was not`);
}

// ---- the commands ----------------------------------------------------------------------------

// The sequence, generated as it runs: each command is a label and a function of one server
// (its own ids) that makes its request and notes the ids the answer gives.
function generator(r, world) {
  let clock = Date.parse(START), n = 0;
  const iso = (ms) => new Date(ms).toISOString();
  const sec = (ms) => Math.floor(ms / 1000);
  const customers = world.customers;
  const subOf = {}, planOf = {};
  const startOf = {}; // when each external subscription id first began
  customers.forEach((c, i) => { subOf[c] = `s${i}`; planOf[c] = 'basic'; startOf[subOf[c]] = clock; });
  let factor = 1;
  const propsFor = (code) => ({
    seats: () => ({ seats: r.below(5) - 1 }),
    users: () => ({ user: `u${r.below(6)}`, ...(r.chance(0.3) ? { operation_type: 'remove' } : {}) }),
    rgpus: () => ({ gpus: r.below(4) - 1 }),
    gpus: () => ({ gpus: r.below(4) - 1 }),
    peak: () => ({ mem: r.below(30) }),
    storage: () => ({ gb: r.below(30) }),
    calls: () => ({}),
    tokens: () => ({ tokens: r.below(5000), ...(r.chance(0.7) ? { region: r.pick(['eu', 'us']) } : {}) }),
  }[code]());
  const event = (c) => {
    const code = r.pick(METRICS).code;
    const e = { transaction_id: `e${n++}`, external_subscription_id: subOf[c], code, properties: propsFor(code) };
    const when = r.below(100);
    // late, often into the period before, but not before the subscription's external id began
    if (when < 20) e.timestamp = sec(Math.max(startOf[e.external_subscription_id], clock - (1 + r.below(40 * 24)) * 3600000));
    else if (when < 27) e.timestamp = sec(clock + (1 + r.below(35 * 24)) * 3600000); // sent ahead
    else if (when < 40) e.timestamp = sec(clock - r.below(3600) * 1000); // this hour
    return e;
  };
  const rePrice = (f) => async (w, label) => {
    for (const plan of Object.keys(PLANS)) {
      const body = { plan: { charges: charges(plan, f).map(([m, model, properties, extra], k) => ({ id: w.ids[`${plan}/${k}`], billable_metric_id: w.ids[m], charge_model: model, properties, ...extra })) } };
      w.answers.push(await request(w, label, 'PUT', `/api/v1/plans/${plan}`, body));
    }
  };
  const one = (method, path, body, note) => async (w, label) => {
    const p = typeof path === 'function' ? path(w) : path;
    const b = typeof body === 'function' ? body(w) : body;
    const a = await request(w, label, method, p, b);
    w.answers.push(a);
    if (note) note(w, a);
  };

  return {
    clock: () => clock,
    next(step) {
      const c = r.pick(customers);
      const roll = r.below(100);
      if (roll < 34) {
        const events = Array.from({ length: 1 + r.below(4) }, () => event(c));
        return ['events', one('POST', '/api/v1/events/batch', { events })];
      }
      if (roll < 41) {
        const h = `hold${world.holds.length}`;
        world.holds.push(h);
        const code = r.pick(['tokens', 'calls', 'seats', 'gpus']);
        return ['authorize', one('POST', '/api/v1/authorizations', { authorization: { external_subscription_id: subOf[c], code, properties: propsFor(code), expires_in: r.pick([3600, 86400, 3 * 86400, 6 * 86400]) } },
          (w, a) => { if (a.status === 200) w.ids[h] = a.body.authorization.lago_id; })];
      }
      if (roll < 46 && world.holds.length) {
        const h = r.pick(world.holds.slice(-3)); // (older ones have mostly expired)
        const body = r.chance(0.5) ? { authorization: { properties: { tokens: r.below(8000), seats: r.below(3), gpus: r.below(3) } } } : {};
        return ['capture', one('POST', (w) => `/api/v1/authorizations/${w.ids[h] ?? 'none'}/capture`, body)];
      }
      if (roll < 49 && world.holds.length) {
        const h = r.pick(world.holds.slice(-3));
        return ['void hold', one('POST', (w) => `/api/v1/authorizations/${w.ids[h] ?? 'none'}/void`, {})];
      }
      if (roll < 58) {
        const name = r.pick(world.walletsOf[c]);
        const body = { priority: 1 + r.below(50) };
        if (r.chance(0.55)) body.granted_credits = String(r.below(150));
        else {
          body.paid_credits = `${r.below(100)}.${r.below(100)}`;
          if (r.chance(0.5)) body.invoice_requires_successful_payment = true;
        }
        if (r.chance(0.4)) body.expiration_at = iso(clock + (1 + r.below(20 * 24)) * 3600000);
        return ['top-up', one('POST', '/api/v1/wallet_transactions', (w) => ({ wallet_transaction: { wallet_id: w.wallets[name] ?? 'none', ...body } }),
          (w, a) => {
            for (const x of a.body?.wallet_transactions ?? []) {
              if (x.lago_invoice_id && x.status === 'pending') {
                const inv = `inv${w.invoices++}`;
                if (w === world.a) world.invoices.push(inv);
                w.ids[inv] = x.lago_invoice_id;
              }
            }
          })];
      }
      if (roll < 62 && world.invoices.length) {
        const inv = r.pick(world.invoices);
        const status = r.chance(0.75) ? 'succeeded' : 'failed';
        return ['settle', one('PUT', (w) => `/api/v1/invoices/${w.ids[inv] ?? 'none'}`, { invoice: { payment_status: status } })];
      }
      if (roll < 64) {
        const name = r.pick(world.walletsOf[c]);
        const voided = String(1 + r.below(60)); // (drawn once: the body is made per server)
        return ['void credits', one('POST', '/api/v1/wallet_transactions', (w) => ({ wallet_transaction: { wallet_id: w.wallets[name] ?? 'none', voided_credits: voided } }))];
      }
      if (roll < 67) {
        const name = r.pick(world.walletsOf[c]);
        const limit = r.pick(['none', 'hard', 'soft']);
        const body = { limit };
        if (limit === 'soft') body.overdraft_credits = String(r.below(80));
        return ['limit', one('PUT', (w) => `/api/v1/wallets/${w.wallets[name] ?? 'none'}`, { wallet: body })];
      }
      if (roll < 79) {
        const big = r.chance(0.25);
        // to just past a period's end, or a few hours to days on
        const next = new Date(clock);
        clock = big ? Date.UTC(next.getUTCFullYear(), next.getUTCMonth() + 1, 1, r.below(30)) : clock + (1 + r.below(96)) * 3600000;
        return ['advance', one('POST', '/api/v1/test_clock/advance', { test_clock: { to: iso(clock) } })];
      }
      if (roll < 83) {
        const f = factor = r.pick([0.5, 0.8, 1, 1.25, 2].filter((x) => x !== factor));
        return ['price', rePrice(f)];
      }
      if (roll < 86) {
        const ext = subOf[c];
        subOf[c] = `${ext.split('x')[0]}x${step}`;
        world.subsOf[c].push(subOf[c]);
        startOf[subOf[c]] = clock;
        planOf[c] = r.pick(Object.keys(PLANS));
        const plan = planOf[c];
        return ['terminate and start', async (w, label) => {
          w.answers.push(await request(w, label, 'DELETE', `/api/v1/subscriptions/${ext}`));
          w.answers.push(await request(w, label, 'POST', '/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: plan, external_id: subOf[c] } }));
        }];
      }
      if (roll < 93) {
        const other = planOf[c] === 'basic' ? 'plus' : 'basic';
        if (other === 'plus') planOf[c] = 'plus'; // an upgrade, at once; a downgrade waits for the period's end
        return ['change plan', one('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: other, external_id: subOf[c] } })];
      }
      if (roll < 96) {
        const timezone = r.pick(['UTC', 'Europe/Paris', 'America/New_York', 'Asia/Tokyo', 'Pacific/Auckland']);
        return ['time zone', one('POST', '/api/v1/customers', { customer: { external_id: c, currency: 'USD', timezone } })];
      }
      if (n > 0) {
        const e = event(c);
        e.transaction_id = `e${r.below(n)}`;
        return ['duplicate', one('POST', '/api/v1/events', { event: e })];
      }
      return ['nothing', async () => {}];
    },
  };
}

async function setUp(w, r, world) {
  const call = (method, path, body) => w.t.call(method, path, body);
  for (const m of METRICS) w.ids[m.code] = (await call('POST', '/api/v1/billable_metrics', { billable_metric: { name: m.code, ...m } })).billable_metric.lago_id;
  await call('POST', '/api/v1/taxes', { tax: { code: 'vat', name: 'VAT', rate: '10' } });
  for (const [plan, amount_cents] of Object.entries(PLANS)) {
    const p = (await call('POST', '/api/v1/plans', { plan: { code: plan, name: plan, interval: 'monthly', amount_cents, amount_currency: 'USD', tax_codes: ['vat'],
      charges: charges(plan, 1).map(([m, model, properties, extra]) => ({ billable_metric_id: w.ids[m], charge_model: model, properties, ...extra })) } })).plan;
    p.charges.forEach((ch, k) => { w.ids[`${plan}/${k}`] = ch.lago_id; });
  }
  for (const [i, c] of world.customers.entries()) {
    await call('POST', '/api/v1/customers', { customer: { external_id: c, currency: 'USD' } });
    await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'basic', external_id: `s${i}` } });
    for (const [k, body] of world.walletBodies[c].entries()) {
      const res = await request(w, 'wallet', 'POST', '/api/v1/wallets', { wallet: body });
      if (res.status === 200) w.wallets[`${c}/w${k}`] = res.body.wallet.lago_id;
    }
  }
}

// The restarts of B: at which steps, and how. An 'older' one is a clean stop there and a
// SIGKILL some commands later, so that the start loads a snapshot older than the stop.
function restartPlan(r) {
  const count = 2 + r.below(2);
  const points = new Set();
  while (points.size < count) points.add(5 + r.below(STEPS - 10));
  const plan = new Map();
  if (process.env.TALLY_RESTART_NONE === '1') return plan; // a control: two servers, no restart
  for (const p of [...points].sort((x, y) => x - y)) {
    const kind = r.pick(['clean', 'kill', 'no_snapshot', 'older']);
    plan.set(p, kind === 'older' ? { kind: 'clean', then: 2 + r.below(12) } : { kind });
  }
  return plan;
}

async function restartB(b, kind) {
  if (kind === 'clean') return b.t.restart();
  if (kind === 'kill') return b.t.restart({ kill: true });
  return b.t.restart({ between: (dir) => rmSync(join(dir, 'events.snapshot'), { force: true }) });
}

async function equivalence(seed, steps) {
  const r = rng(seed);
  const world = { seed, customers: Array.from({ length: CUSTOMERS }, (_, i) => `c${i}`), subsOf: {}, walletsOf: {}, walletBodies: {}, holds: [], invoices: [], seen: {} };
  for (const [i, c] of world.customers.entries()) {
    world.subsOf[c] = [`s${i}`];
    world.walletBodies[c] = [];
    world.walletsOf[c] = [];
    for (let k = 0; k < 1 + r.below(2); k++) {
      const limit = r.pick(['none', 'hard', 'soft']);
      const body = { external_customer_id: c, currency: 'USD', name: `w${k}`, rate_amount: r.pick(['1', '0.5', '2']), limit, priority: 1 + r.below(50),
        granted_credits: String(r.below(150)), paid_credits: String(r.below(100)) };
      if (limit === 'soft') body.overdraft_credits = String(1 + r.below(50));
      if (r.chance(0.6)) { // thresholds high against the wallets' credits, so that they fire
        const threshold = 40 + r.below(200);
        body.recurring_transaction_rules = [r.chance(0.7)
          ? { trigger: 'threshold', threshold_credits: String(threshold), granted_credits: String(1 + r.below(30)) }
          : { trigger: 'threshold', method: 'target', threshold_credits: String(threshold), target_ongoing_balance: String(threshold + r.below(3)) }];
      }
      world.walletBodies[c].push(body);
      world.walletsOf[c].push(`${c}/w${k}`);
    }
  }
  // Both start from one deterministic stream (test builds), so that the catalog and wallets have
  // the same ids on both and their answers compare byte for byte (money no longer follows ids:
  // a partial overdraft repayment took two charges of a subscription by their lago ids until
  // overdraft_repayment_order.test.mjs). Only the first process of each: a start after a
  // restart draws at random, its ids never repeating.
  process.env.TALLY_DETERMINISTIC_SEED = String(seed);
  const started = Promise.all([server('straight'), server('restarted')]);
  delete process.env.TALLY_DETERMINISTIC_SEED;
  const [a, b] = await started;
  world.a = a;
  for (const w of [a, b]) { w.answers = []; w.invoices = 0; }
  await Promise.all([setUp(a, r, world), setUp(b, r, world)]);
  const gen = generator(r, world);
  const plan = restartPlan(r);
  const log = [];
  let readAt = -1;
  const pending = new Map(); // step -> restart kind scheduled there (an older snapshot's kill)
  for (const [p, x] of plan) pending.set(p, x);
  for (let step = 0; step < steps; step++) {
    const due = pending.get(step);
    if (due) {
      await restartB(b, due.kind);
      (world.restarts ??= []).push(`${step}: ${due.kind}`);
      if (process.env.TALLY_RESTART_TRACE) console.log(`restart ${due.kind}`);
      log.push(`${step}: restart (${due.kind}${due.then ? `, a SIGKILL ${due.then} commands on` : ''})`);
      if (due.then) {
        let at = step + due.then;
        while (pending.has(at)) at++;
        at = Math.min(at, steps - 1);
        pending.set(at, { kind: 'kill' });
      }
      // compared at once, or a few commands on (a read would build what the start did not)
      readAt = Math.max(readAt, step + (r.chance(0.5) ? 0 : 1 + r.below(6)));
    }
    if (step === readAt || step >= READ_FROM) await compareReads(a, b, world, `at step ${step} (${log.join('; ')})`);
    const [label, fn] = gen.next(step);
    a.answers.length = 0;
    b.answers.length = 0;
    await Promise.all([fn(a, label), fn(b, label)]);
    log.push(`${step}: ${label}`);
    for (const x of a.answers) {
      const k = `${label} ${x.status}${x.status === 200 ? '' : ` ${x.body?.code ?? ''} ${JSON.stringify(x.body?.error_details ?? '')}`}`;
      world.seen[k] = (world.seen[k] ?? 0) + 1;
    }
    if (log.length > 40) log.splice(0, log.length - 40);
    assert.equal(b.answers.length, a.answers.length);
    named(a);
    named(b);
    for (let k = 0; k < a.answers.length; k++) {
      assert.deepEqual(differences(plain(a.answers[k], a), plain(b.answers[k], b)), [],
        `seed ${seed}: step ${step} (${label}) answers otherwise on the restarted server; the last commands: ${log.join('; ')}`);
    }
  }
  await compareReads(a, b, world, `at the end (${log.join('; ')})`);
  return world;
}

test(`a randomized command sequence reads the same with restarts in the middle as without (seed ${SEED}, ${STEPS} steps)`, async () => {
  try {
    const world = await equivalence(SEED, STEPS);
    if (process.env.TALLY_RESTART_SHOW) console.log(world.restarts, world.seen);
  } catch (err) {
    console.error(`restart_random: failed with TALLY_RESTART_SEED=${SEED} TALLY_RESTART_STEPS=${STEPS}`);
    // TALLY_RESTART_KEEP=DIR keeps both data directories (DIR/straight, DIR/restarted)
    if (process.env.TALLY_RESTART_KEEP) for (const t of servers) cpSync(t.dataDir, join(process.env.TALLY_RESTART_KEEP, String(servers.indexOf(t) ? 'restarted' : 'straight')), { recursive: true });
    throw err;
  }
});
