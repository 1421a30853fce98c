// One wallet under many parallel clients over real HTTP: a hard limit pays for exactly as many
// events as its credits cover and refuses every other with 402, recording nothing for them;
// a soft limit runs into its overdraft and no further, and a top-up repays it; a batch the
// wallet cannot pay for in full is refused whole. The wallet, the current usage, the events and
// the ledger must all tell the same story.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
before(async () => {
  t = await startWithOrg(['--test-clock', '2026-04-01T00:00:00Z']);
  const bm = await post('/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' } });
  assert.equal(bm.status, 200, JSON.stringify(bm.body));
  // 1 EUR (100 cents) an event
  const plan = await post('/api/v1/plans', { plan: { code: 'per_call', name: 'Per call', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR',
    charges: [{ billable_metric_id: bm.body.billable_metric.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } });
  assert.equal(plan.status, 200, JSON.stringify(plan.body));
});
after(async () => { await t.cleanup(); });

async function post(path, body) {
  const r = await t.api(path, { method: 'POST', body });
  return { status: r.status, body: await r.json() };
}
const get = async (path) => {
  const r = await t.api(path);
  assert.equal(r.status, 200, path);
  return r.json();
};

// A customer with a subscription to the per-call plan and one wallet; returns the wallet.
async function customerWithWallet(ext, wallet) {
  const s = await post('/api/v1/subscriptions', { subscription: { external_customer_id: ext, plan_code: 'per_call', external_id: `${ext}_sub` } });
  assert.equal(s.status, 200, JSON.stringify(s.body));
  const w = await post('/api/v1/wallets', { wallet: { external_customer_id: ext, currency: 'EUR', rate_amount: '1', name: 'Prepaid', ...wallet } });
  assert.equal(w.status, 200, JSON.stringify(w.body));
  return w.body.wallet;
}
const ev = (ext, transaction_id) => ({ transaction_id, external_subscription_id: `${ext}_sub`, code: 'calls', properties: {} });
const readWallet = async (id) => (await get(`/api/v1/wallets/${id}`)).wallet;
const usage = async (ext) => (await get(`/api/v1/customers/${ext}/current_usage?external_subscription_id=${ext}_sub`)).customer_usage;
const eventCount = async (ext) => (await get(`/api/v1/events?external_subscription_id=${ext}_sub&per_page=1`)).meta.total_count;
const ledger = async (ext) => (await get(`/api/v1/ledger_entries?external_customer_id=${ext}&per_page=1000`)).ledger_entries;
const total = (entries, account, direction) =>
  entries.filter((e) => e.account === account && e.direction === direction).reduce((a, e) => a + e.amount_cents, 0);

// A refusal must be exactly Lago's error shape with Tally's code.
function assertInsufficient(r, walletId) {
  assert.equal(r.status, 402, JSON.stringify(r.body));
  assert.deepEqual(Object.keys(r.body).sort(), ['code', 'error', 'message', 'status']);
  assert.equal(r.body.status, 402);
  assert.equal(r.body.error, 'Payment Required');
  assert.equal(r.body.code, 'insufficient_credits');
  assert.ok(r.body.message.includes(walletId), r.body.message);
}

test('hard limit: 64 clients x 3 events on 37 credits: exactly 37 are paid and recorded', async () => {
  const w = await customerWithWallet('hard', { granted_credits: '37', limit: 'hard' });
  assert.equal(w.limit, 'hard');
  assert.equal(w.balance_cents, 3700);
  const CLIENTS = 64, EACH = 3;
  const results = await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
    const out = [];
    for (let i = 0; i < EACH; i++) out.push(await post('/api/v1/events', { event: ev('hard', `hard-${c}-${i}`) }));
    return out;
  }));
  const all = results.flat();
  assert.equal(all.length, 192);
  const ok = all.filter((r) => r.status === 200);
  const refused = all.filter((r) => r.status !== 200);
  assert.equal(ok.length, 37);
  assert.equal(refused.length, 155);
  for (const r of refused) assertInsufficient(r, w.lago_id);
  // accepted events are all different ones
  assert.equal(new Set(ok.map((r) => r.body.event.transaction_id)).size, 37);

  const after = await readWallet(w.lago_id);
  assert.equal(after.balance_cents, 0);
  assert.equal(after.credits_balance, '0.0');
  assert.equal(after.consumed_amount_cents, 3700);
  assert.equal(after.consumed_credits, '37.0');
  assert.equal(after.overdrawn_cents, 0);

  const u = await usage('hard');
  assert.equal(u.charges_usage.length, 1);
  assert.equal(u.charges_usage[0].units, '37.0');
  assert.equal(u.charges_usage[0].events_count, 37);
  assert.equal(u.charges_usage[0].amount_cents, 3700);
  assert.equal(u.amount_cents, 3700);

  assert.equal(await eventCount('hard'), 37);
  // each refused transaction id is unknown: nothing of it was kept
  const refusedIds = all.map((r, i) => [r, `hard-${Math.floor(i / EACH)}-${i % EACH}`]).filter(([r]) => r.status !== 200).map(([, id]) => id);
  for (const id of refusedIds.slice(0, 10)) assert.equal((await t.api(`/api/v1/events/${encodeURIComponent(id)}`)).status, 404, id);

  // the day's usage debits are one transaction, added to by every commit: exactly the 37 EUR
  // paid, all taken from the grant
  const txs = await get(`/api/v1/wallets/${w.lago_id}/wallet_transactions?transaction_status=usage&per_page=100`);
  assert.equal(txs.meta.total_count, 1);
  assert.equal(txs.wallet_transactions[0].transaction_type, 'outbound');
  assert.equal(txs.wallet_transactions[0].amount, '37.0');

  const entries = await ledger('hard');
  assert.equal(total(entries, 'revenue', 'credit'), 3700);
  assert.equal(total(entries, 'revenue', 'debit'), 0);
  assert.equal(total(entries, 'customer_promotional_credits', 'debit'), 3700);
  assert.equal(total(entries, 'customer_promotional_credits', 'credit'), 3700); // the grant
  // one consumption posting per commit that debited the wallet (a commit carries many
  // clients' events), each against the day's usage transaction
  const postings = entries.filter((e) => e.cause === 'consumption' && e.account === 'revenue');
  assert.ok(postings.length >= 1 && postings.length <= 37, `${postings.length} postings`);
  assert.ok(postings.every((e) => e.lago_wallet_transaction_id === txs.wallet_transactions[0].lago_id));

  // and a 193rd event still cannot be paid
  assertInsufficient(await post('/api/v1/events', { event: ev('hard', 'hard-late') }), w.lago_id);
});

test('soft limit: 10 credits and 5 of overdraft: exactly 15 of 64 parallel events, then a top-up repays', async () => {
  const w = await customerWithWallet('soft', { granted_credits: '10', limit: 'soft', overdraft_credits: '5' });
  assert.equal(w.limit, 'soft');
  assert.equal(w.overdraft_credits, '5.0');
  assert.equal(w.balance_cents, 1000);
  const all = await Promise.all(Array.from({ length: 64 }, (_, c) => post('/api/v1/events', { event: ev('soft', `soft-${c}`) })));
  const ok = all.filter((r) => r.status === 200);
  assert.equal(ok.length, 15);
  for (const r of all.filter((x) => x.status !== 200)) assertInsufficient(r, w.lago_id);

  let now = await readWallet(w.lago_id);
  assert.equal(now.balance_cents, -500);
  assert.equal(now.credits_balance, '-5.0');
  assert.equal(now.overdrawn_cents, 500);
  assert.equal(now.overdrawn_credits, '5.0');
  assert.equal(now.consumed_amount_cents, 1500);
  assert.equal(await eventCount('soft'), 15);
  assert.equal((await usage('soft')).amount_cents, 1500);
  let entries = await ledger('soft');
  assert.equal(total(entries, 'revenue', 'credit'), 1500);
  assert.equal(total(entries, 'customer_overdraft', 'debit'), 500);

  // 20 credits: 5 repay the overdraft, 15 are left
  const top = await post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: w.lago_id, granted_credits: '20' } });
  assert.equal(top.status, 200, JSON.stringify(top.body));
  assert.equal(top.body.wallet_transactions.length, 1);
  const g = top.body.wallet_transactions[0];
  assert.deepEqual([g.status, g.transaction_status, g.transaction_type, g.amount, g.remaining_amount_cents], ['settled', 'granted', 'inbound', '20.0', 1500]);
  now = await readWallet(w.lago_id);
  assert.equal(now.balance_cents, 1500);
  assert.equal(now.credits_balance, '15.0');
  assert.equal(now.overdrawn_cents, 0);
  assert.equal(now.overdrawn_credits, '0.0');
  entries = await ledger('soft');
  assert.equal(total(entries, 'customer_overdraft', 'credit'), 500);
  assert.equal(total(entries, 'revenue', 'credit'), 1500); // repaying is not new revenue

  // room again: 15 credits and the overdraft's 5: 20 more of 32 parallel events
  const more = await Promise.all(Array.from({ length: 32 }, (_, c) => post('/api/v1/events', { event: ev('soft', `soft2-${c}`) })));
  assert.equal(more.filter((r) => r.status === 200).length, 20);
  now = await readWallet(w.lago_id);
  assert.equal(now.balance_cents, -500);
  assert.equal(now.overdrawn_cents, 500);
  assert.equal(await eventCount('soft'), 35);
});

test('a batch the wallet cannot pay in full is refused whole', async () => {
  const w = await customerWithWallet('batch', { granted_credits: '5', limit: 'hard' });
  const batch = (prefix, n) => ({ events: Array.from({ length: n }, (_, i) => ev('batch', `${prefix}-${i}`)) });
  const r = await post('/api/v1/events/batch', batch('b10', 10));
  assertInsufficient(r, w.lago_id);
  assert.equal(await eventCount('batch'), 0);
  let now = await readWallet(w.lago_id);
  assert.equal(now.balance_cents, 500);
  assert.equal(now.consumed_amount_cents, 0);
  assert.equal((await usage('batch')).amount_cents, 0);
  assert.equal((await get(`/api/v1/wallets/${w.lago_id}/wallet_transactions?transaction_type=outbound`)).meta.total_count, 0);
  assert.equal(total(await ledger('batch'), 'revenue', 'credit'), 0);
  // the same ids are free to use: none of them was kept
  const ok = await post('/api/v1/events/batch', batch('b10', 5));
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(ok.body.events.length, 5);
  now = await readWallet(w.lago_id);
  assert.equal(now.balance_cents, 0);
  assert.equal(now.consumed_amount_cents, 500);
  assert.equal(await eventCount('batch'), 5);
  assertInsufficient(await post('/api/v1/events/batch', batch('b1', 1)), w.lago_id);
  assert.equal(await eventCount('batch'), 5);
});

test('holds and events racing on one hard wallet: holds go ahead of event groups, and nothing is overspent', async () => {
  // 60 credits; 16 clients send single events (1 credit each), 8 clients ask for 3-credit holds
  // and void every second one; holds cut the groups of events they arrive in
  const w = await customerWithWallet('racing', { granted_credits: '60', limit: 'hard' });
  const held = [], voided = [];
  const events = Array.from({ length: 16 }, async (_, c) => {
    const out = [];
    for (let i = 0; i < 6; i++) out.push((await post('/api/v1/events', { event: ev('racing', `race-${c}-${i}`) })).status);
    return out;
  });
  const holds = Array.from({ length: 8 }, async () => {
    for (let i = 0; i < 4; i++) {
      const r = await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'racing_sub', code: 'calls', properties: {} } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const a = r.body.authorization;
      if (a.status !== 'authorized') continue;
      if (i % 2) {
        assert.equal((await post(`/api/v1/authorizations/${a.lago_id}/void`, {})).status, 200);
        voided.push(a);
      } else {
        held.push(a);
      }
    }
  });
  const statuses = (await Promise.all(events)).flat();
  await Promise.all(holds);
  for (const s of statuses) assert.ok(s === 200 || s === 402, String(s));
  const paid = statuses.filter((s) => s === 200).length;
  const heldCents = held.reduce((a, h) => a + h.amount_cents, 0);
  const after = await readWallet(w.lago_id);
  assert.equal(after.balance_cents, 6000 - paid * 100);
  assert.equal(after.ongoing_balance_cents, after.balance_cents - heldCents);
  assert.ok(after.ongoing_balance_cents >= 0, `overspent: ${JSON.stringify(after)}`);
  assert.equal(await eventCount('racing'), paid);
  const entries = await ledger('racing');
  assert.equal(total(entries, 'customer_held_credits', 'credit') - total(entries, 'customer_held_credits', 'debit'), heldCents);
});

test('an update of a wallet in use is not refused as stale because debits changed its balance', async () => {
  // on the real clock, so every debit moves the wallet's updated_at
  const real = await startWithOrg();
  try {
    const call = async (path, method, body) => {
      const r = await real.api(path, { method, body });
      return { status: r.status, body: await r.json() };
    };
    const bm = await call('/api/v1/billable_metrics', 'POST', { billable_metric: { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' } });
    await call('/api/v1/plans', 'POST', { plan: { code: 'p', name: 'P', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR',
      charges: [{ billable_metric_id: bm.body.billable_metric.lago_id, charge_model: 'standard', properties: { amount: '0.01' } }] } });
    await call('/api/v1/subscriptions', 'POST', { subscription: { external_customer_id: 'busy', plan_code: 'p', external_id: 'busy_sub' } });
    const w = (await call('/api/v1/wallets', 'POST', { wallet: { external_customer_id: 'busy', currency: 'EUR', rate_amount: '1', name: 'Busy', granted_credits: '1000' } })).body.wallet;
    // eight clients send 20-event batches until three updates, one after the other, are done
    let n = 0, updating = true;
    const clients = Array.from({ length: 8 }, async () => {
      while (updating) {
        const r = await call('/api/v1/events/batch', 'POST', { events: Array.from({ length: 20 }, () => ({ transaction_id: `b${n++}`, external_subscription_id: 'busy_sub', code: 'calls' })) });
        assert.equal(r.status, 200);
      }
    });
    const answers = [];
    for (const k of [3, 7, 9]) answers.push(await call(`/api/v1/wallets/${w.lago_id}`, 'PUT', { wallet: { name: `Busy ${k}` } }));
    updating = false;
    await Promise.all(clients);
    for (const r of answers) assert.equal(r.status, 200, JSON.stringify(r.body));
    const after = (await call(`/api/v1/wallets/${w.lago_id}`, 'GET')).body.wallet;
    assert.equal(after.balance_cents, 100000 - n);
    assert.equal(after.name, 'Busy 9');
  } finally { await real.cleanup(); }
});
