// What a customer used before its wallet existed is the invoice's (docs/API.md, Real-time
// debit), and stays so when a price or tax change re-prices it: twin customers a and b with the
// same usage, each given the same hard wallet, one (a) before the change and the other (b)
// after it, answer the same holds, accept the same events and are debited the same (an audit
// found a's wallet charged the raise on the 6 calls it never paid for: a hold of one call of
// 200 declined at 800, the event refused 402, and with more credits 800 debited for it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

let t;
const post = (path, body) => t.api(path, { method: 'POST', body });
const put = (path, body) => t.api(path, { method: 'PUT', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
let n = 0;

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-05-01T00:00:00Z']);
  await ok(await post('/api/v1/taxes', { tax: { code: 'vat', name: 'VAT', rate: '20' } }));
});
after(async () => { await t.cleanup(); });

// One scenario: a metric and a plan of its own, customers `${name}_a` and `${name}_b`.
// `pre`: the events each sends before any wallet; `change(plan, charge, metric)`: the re-pricing
// made between a's wallet and b's; `cut` (optional): a second one, made with both wallets there.
async function twins(name, { aggregation = 'count_agg', field, charge, pre, event, change, cut, restart = false, earlier }) {
  const bm = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: name, name, aggregation_type: aggregation, ...(field ? { field_name: field } : {}) } }))).billable_metric;
  const plan = `p_${name}`;
  const made = (await ok(await post('/api/v1/plans', { plan: { code: plan, name: plan, interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [{ billable_metric_id: bm.lago_id, ...charge }] } }))).plan;
  const ch = made.charges[0].lago_id;
  const send = async (c, properties = {}) => post('/api/v1/events', { event: { transaction_id: `${name}${n++}`, external_subscription_id: `${name}_${c}`, code: name, properties } });
  for (const c of ['a', 'b']) {
    await ok(await post('/api/v1/customers', { customer: { external_id: `${name}_${c}`, currency: 'USD' } }));
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: `${name}_${c}`, plan_code: plan, external_id: `${name}_${c}`, subscription_at: '2026-05-01T00:00:00Z' } }));
    if (earlier) await earlier(c, send);
    for (const p of pre) await ok(await send(c, p));
  }
  const newWallet = async (c) => (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: `${name}_${c}`, currency: 'USD', rate_amount: '1', granted_credits: '7', limit: 'hard' } }))).wallet;
  const edit = async (props) => ok(await put(`/api/v1/plans/${plan}`, { plan: { charges: [{ id: ch, billable_metric_id: bm.lago_id, ...charge, ...props }] } }));
  const wallets = { a: await newWallet('a') };
  if (restart) await t.restart({ kill: true });
  await change({ plan, edit });
  if (restart) await t.restart();
  wallets.b = await newWallet('b');
  const seen = {};
  for (const c of ['a', 'b']) {
    const hold = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: `${name}_${c}`, code: name, properties: event } }))).authorization;
    if (hold.status === 'authorized') await ok(await post(`/api/v1/authorizations/${hold.lago_id}/void`, {}));
    const r = await send(c, event);
    const w = (await ok(await t.api(`/api/v1/wallets/${wallets[c].lago_id}`))).wallet;
    seen[c] = { hold: [hold.status, hold.amount_cents], event: r.status, balance: w.balance_cents };
  }
  assert.deepEqual(seen.a, seen.b, `${name}: a (wallet before the change) vs b (after)`);
  if (cut) {
    await cut({ plan, edit });
    for (const c of ['a', 'b']) {
      const r = await send(c, event);
      const w = (await ok(await t.api(`/api/v1/wallets/${wallets[c].lago_id}`))).wallet;
      seen[c].cut = [r.status, w.balance_cents];
    }
    assert.deepEqual(seen.a, seen.b, `${name} after the cut: a vs b`);
  }
  for (const c of ['a', 'b']) await checkWalletLedger(t, wallets[c].lago_id);
  return seen.b;
}


const six = [{}, {}, {}, {}, {}, {}];

test('a raise on the calls made before the wallet stays the invoice\'s (standard, the audit\'s case)', async () => {
  const b = await twins('std', {
    charge: { charge_model: 'standard', properties: { amount: '1' } }, pre: six, event: {},
    change: ({ edit }) => edit({ properties: { amount: '2' } }),
    cut: ({ edit }) => edit({ properties: { amount: '1.5' } }),
  });
  assert.deepEqual(b.hold, ['authorized', 200]);
  assert.equal(b.event, 200);
  assert.equal(b.balance, 500);
});

test('graduated, volume and package charges, raised then cut', async () => {
  await twins('grad', {
    aggregation: 'sum_agg', field: 'n',
    charge: { charge_model: 'graduated', properties: { graduated_ranges: [
      { from_value: 0, to_value: 5, per_unit_amount: '0.5', flat_amount: '1' }, { from_value: 6, to_value: null, per_unit_amount: '0.25', flat_amount: '0' }] } },
    pre: [{ n: 3 }, { n: 4 }], event: { n: 2 },
    change: ({ edit }) => edit({ properties: { graduated_ranges: [
      { from_value: 0, to_value: 5, per_unit_amount: '1', flat_amount: '1' }, { from_value: 6, to_value: null, per_unit_amount: '0.5', flat_amount: '0' }] } }),
    cut: ({ edit }) => edit({ properties: { graduated_ranges: [
      { from_value: 0, to_value: 5, per_unit_amount: '0.25', flat_amount: '0' }, { from_value: 6, to_value: null, per_unit_amount: '0.1', flat_amount: '0' }] } }),
  });
  await twins('vol', {
    aggregation: 'sum_agg', field: 'n',
    charge: { charge_model: 'volume', properties: { volume_ranges: [
      { from_value: 0, to_value: 10, per_unit_amount: '0.5', flat_amount: '0' }, { from_value: 11, to_value: null, per_unit_amount: '0.25', flat_amount: '0' }] } },
    pre: [{ n: 4 }, { n: 4 }], event: { n: 1 },
    change: ({ edit }) => edit({ properties: { volume_ranges: [
      { from_value: 0, to_value: 10, per_unit_amount: '0.75', flat_amount: '0' }, { from_value: 11, to_value: null, per_unit_amount: '0.5', flat_amount: '0' }] } }),
  });
  await twins('pkg', {
    charge: { charge_model: 'package', properties: { amount: '1', package_size: 2, free_units: 1 } },
    pre: six, event: {},
    change: ({ edit }) => edit({ properties: { amount: '2', package_size: 2, free_units: 1 } }),
    cut: ({ edit }) => edit({ properties: { amount: '0.5', package_size: 2, free_units: 1 } }),
  });
});

test('percentage, and pay in advance', async () => {
  await twins('pct', {
    aggregation: 'sum_agg', field: 'n',
    charge: { charge_model: 'percentage', properties: { rate: '10', fixed_amount: '0.1' } },
    pre: [{ n: 10 }, { n: 10 }], event: { n: 10 },
    change: ({ edit }) => edit({ properties: { rate: '20', fixed_amount: '0.1' } }),
  });
  await twins('adv', {
    charge: { charge_model: 'standard', pay_in_advance: true, properties: { amount: '1' } },
    pre: six, event: {},
    change: ({ edit }) => edit({ properties: { amount: '2' } }),
    cut: ({ edit }) => edit({ properties: { amount: '0.5' } }),
  });
});

test('a tax added to the plan, and a restart between the wallet and the raise', async () => {
  await twins('tax', {
    charge: { charge_model: 'standard', properties: { amount: '1' } }, pre: six, event: {},
    change: async ({ plan }) => ok(await put(`/api/v1/plans/${plan}`, { plan: { tax_codes: ['vat'] } })),
  });
  await twins('rst', {
    charge: { charge_model: 'standard', properties: { amount: '1' } }, pre: six, event: {}, restart: true,
    change: ({ edit }) => edit({ properties: { amount: '2' } }),
    cut: ({ edit }) => edit({ properties: { amount: '1' } }),
  });
});

test('a wallet terminated, then another made: the raise on all before the new one is the invoice\'s', async () => {
  await twins('term', {
    charge: { charge_model: 'standard', properties: { amount: '1' } }, pre: [{}, {}, {}], event: {},
    // each had a wallet that paid two calls and was terminated
    earlier: async (c, send) => {
      const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: `term_${c}`, currency: 'USD', rate_amount: '1', granted_credits: '5' } }))).wallet;
      await ok(await send(c));
      await ok(await send(c));
      await ok(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'DELETE' }));
    },
    change: ({ edit }) => edit({ properties: { amount: '2' } }),
    cut: ({ edit }) => edit({ properties: { amount: '0.5' } }),
  });
});

// Twins whose wallet has paid since its opening when the price changes (audit 12): a's plan
// starts at `from` and is edited through `edits`, b's is at the last of them throughout. Each
// sends 6 calls, makes a hard wallet of 40 (`before`: what each did first, e.g. a wallet that
// paid and was terminated), then 4 calls the wallet pays; a's edits follow; then `after` calls.
// The wallet pays for the units after its opening alone, at the price as it is now: a's ends
// exactly as b's (consumed credits, balance), ledgers balanced. Found: a raise then a cut freed
// memory twice (tallyd died), and a cut was taken twice from the invoice's part while the
// wallet kept what it paid at the old price (a later raise then charged it 12.0 for 10.0).
// `rise`: the last edit raises the wallet's part, which waits for the next call (`after`).
async function paidTwins(name, { from, edits, after = 0, before, rise = false }) {
  const bm = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: name, name, aggregation_type: 'count_agg' } }))).billable_metric;
  const last = edits[edits.length - 1];
  const mk = async (c, props) => (await ok(await post('/api/v1/plans', { plan: { code: `p_${name}_${c}`, name: c, interval: 'monthly', amount_cents: 0, amount_currency: 'USD', ...props.plan, charges: [{ billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: props.amount } }] } }))).plan.charges[0].lago_id;
  const ch = await mk('a', from);
  await mk('b', last);
  const send = async (c) => ok(await post('/api/v1/events', { event: { transaction_id: `${name}${n++}`, external_subscription_id: `${name}_${c}`, code: name } }));
  const wallets = {}, seen = {};
  for (const c of ['a', 'b']) {
    await ok(await post('/api/v1/customers', { customer: { external_id: `${name}_${c}`, currency: 'USD' } }));
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: `${name}_${c}`, plan_code: `p_${name}_${c}`, external_id: `${name}_${c}`, subscription_at: '2026-05-01T00:00:00Z' } }));
    if (before) await before(c, send);
    for (let i = 0; i < 6; i++) await send(c);
    wallets[c] = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: `${name}_${c}`, currency: 'USD', rate_amount: '1', granted_credits: '40', limit: 'hard' } }))).wallet;
    for (let i = 0; i < 4; i++) await send(c);
  }
  const look = async (c) => { const w = (await ok(await t.api(`/api/v1/wallets/${wallets[c].lago_id}`))).wallet; return [w.consumed_credits, w.balance_cents]; };
  for (const e of edits)
    await ok(await put(`/api/v1/plans/p_${name}_a`, { plan: { ...e.plan, charges: [{ id: ch, billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: e.amount } }] } }));
  for (const c of ['a', 'b']) seen[c] = [await look(c)];
  // a rise of the wallet's part waits for its next debit, as any rise does
  if (!rise) assert.deepEqual(seen.a, seen.b, `${name} after the edits: a vs b`);
  else seen.a[0] = seen.b[0];
  for (let i = 0; i < after; i++) for (const c of ['a', 'b']) await send(c);
  for (const c of ['a', 'b']) seen[c].push(await look(c));
  assert.deepEqual(seen.a, seen.b, `${name} after ${after} more calls: a vs b`);
  for (const c of ['a', 'b']) await checkWalletLedger(t, wallets[c].lago_id);
  assert.equal((await t.api('/health')).status, 200);
  return seen.b;
}

test('the wallet paid since its opening: a raise then a cut (tallyd died), a cut then a raise', async () => {
  let b = await paidTwins('rc', { from: { amount: '1' }, edits: [{ amount: '3' }, { amount: '0.1' }], after: 1 });
  assert.deepEqual(b, [['0.4', 3960], ['0.5', 3950]]);
  b = await paidTwins('cr', { from: { amount: '1' }, edits: [{ amount: '0.5' }], after: 0 });
  assert.deepEqual(b, [['2.0', 3800], ['2.0', 3800]]);
  b = await paidTwins('crr', { from: { amount: '1' }, edits: [{ amount: '0.5' }, { amount: '2' }], after: 1, rise: true });
  assert.deepEqual(b, [['8.0', 3200], ['10.0', 3000]]);
});

test('the wallet paid since its opening: a wallet terminated, another made, a raise then a cut', async () => {
  await paidTwins('trc', {
    from: { amount: '1' }, edits: [{ amount: '3' }, { amount: '0.1' }], after: 1,
    before: async (c, send) => {
      const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: `trc_${c}`, currency: 'USD', rate_amount: '1', granted_credits: '5' } }))).wallet;
      await send(c);
      await send(c);
      await ok(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'DELETE' }));
    },
  });
});

test('the wallet paid since its opening: a tax removed (a cut), after a raise', async () => {
  const b = await paidTwins('txc', {
    from: { amount: '1', plan: { tax_codes: ['vat'] } },
    edits: [{ amount: '2', plan: { tax_codes: ['vat'] } }, { amount: '2', plan: { tax_codes: [] } }], after: 1, rise: true,
  });
  assert.deepEqual(b, [['8.0', 3200], ['10.0', 3000]]);
  const c = await paidTwins('taxcut', { from: { amount: '1', plan: { tax_codes: ['vat'] } }, edits: [{ amount: '1', plan: { tax_codes: [] } }], after: 1 });
  assert.deepEqual(c, [['4.0', 3600], ['5.0', 3500]]);
});
