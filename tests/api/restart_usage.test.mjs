// What a start brings back of live usage. The writer's book of live usages (engine/usage.c) is
// what a re-pricing's give-back walks; at a start it is rebuilt by one scan of the stored
// events from the mark the snapshot records (the lowest event id a live usage refers to). A
// usage may hold a debit of its period without referring to any event of it: a late event of a
// recurring metric is carried into the current period, debited there, and is no reference.
//
// Each test drives the same commands on servers that differ only in a restart in the middle
// (a clean stop that saves the snapshot, a SIGKILL, a clean stop whose snapshot is then
// removed) and one that runs straight through, and asserts that every read and every later
// command's effect agree exactly between them.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startWithOrg } from '../lib/tallyd.mjs';
import { differences } from '../lib/compare.mjs';

const CLOCK = '2026-03-01T00:00:00Z';
const servers = [];
after(async () => { await Promise.all(servers.map((s) => s.cleanup())); });

// A server, restarted (or not) where the scenario says.
const RESTARTS = {
  straight: null,
  clean: {},
  kill: { kill: true },
  no_snapshot: { between: (dir) => rmSync(join(dir, 'events.snapshot'), { force: true }) },
};

async function world(kinds) {
  const list = await Promise.all(kinds.map(async (kind) => {
    const t = await startWithOrg(['--test-clock', CLOCK]);
    servers.push(t);
    return { kind, t, wallets: {}, ids: {} };
  }));
  return list;
}

// Drops what names a row rather than states an amount (ids differ between two servers).
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
function plain(v) {
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') {
    const o = {};
    for (const [k, x] of Object.entries(v)) o[k] = typeof x === 'string' && UUID.test(x) ? '<id>' : plain(x);
    return o;
  }
  return v;
}

// Every read of one customer: its current usage, each wallet, its ledger lines summed.
async function reads(w, customers) {
  const out = {};
  for (const [c, subs] of Object.entries(customers)) {
    const r = { usage: {}, wallets: [] };
    for (const s of subs) {
      const res = await w.t.api(`/api/v1/customers/${c}/current_usage?external_subscription_id=${s}`);
      const body = await res.json();
      r.usage[s] = res.status === 200 ? plain(body.customer_usage) : { status: res.status, code: body.code ?? body.error };
    }
    for (const id of w.wallets[c] ?? []) {
      const wallet = (await w.t.call('GET', `/api/v1/wallets/${id}`)).wallet;
      const entries = (await w.t.call('GET', `/api/v1/ledger_entries?per_page=1000&wallet_id=${id}`)).ledger_entries;
      const sums = {};
      for (const e of entries) {
        const k = `${e.cause}/${e.account}/${e.direction}`;
        sums[k] = (sums[k] ?? 0) + e.amount_cents;
      }
      const txs = (await w.t.call('GET', `/api/v1/wallets/${id}/wallet_transactions?per_page=100`)).wallet_transactions;
      r.wallets.push({
        wallet: plain(wallet),
        // sums, not how many postings: the journal's write-outs (a second of real time apart,
        // or a clean stop) split a sum into postings as the clock falls (docs/ARCHITECTURE.md)
        ledger: sums,
        transactions: plain(txs).map(({ created_at, updated_at, settled_at, ...x }) => x)
          .sort((a, b) => JSON.stringify(a) < JSON.stringify(b) ? -1 : 1),
      });
    }
    out[c] = r;
  }
  return out;
}

// Runs one step on every server, in parallel; answers what each returned.
const each = (ws, fn) => Promise.all(ws.map((w) => fn(w)));

// Asserts every server reads alike (the first is the one that ran straight through).
// (a failure names each path that differs, with both values: the objects are large)
async function agree(ws, customers, what) {
  const all = await each(ws, (w) => reads(w, customers));
  for (let i = 1; i < ws.length; i++) {
    const diff = differences(all[0], all[i]);
    assert.deepEqual(diff, [], `${what}: the server restarted (${ws[i].kind}) reads otherwise than the one that was not`);
  }
  return all[0];
}

async function restart(ws) {
  await each(ws, (w) => RESTARTS[w.kind] ? w.t.restart(RESTARTS[w.kind]) : null);
}

const balance = async (w, c) => (await w.t.call('GET', `/api/v1/wallets/${w.wallets[c][0]}`)).wallet.balance_cents;

test('a period debited only through a late event gives back a price cut after a start', async () => {
  const ws = await world(['straight', 'clean', 'kill', 'no_snapshot']);
  const subs = { late_sum: ['late_sum'], late_uniq: ['late_uniq'], late_pro: ['late_pro'] };
  await each(ws, async (w) => {
    const call = (m, p, b) => w.t.call(m, p, b);
    const seats = (await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'seats', name: 'seats', aggregation_type: 'sum_agg', field_name: 'seats', recurring: true } })).billable_metric.lago_id;
    const users = (await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'users', name: 'users', aggregation_type: 'unique_count_agg', field_name: 'user', recurring: true } })).billable_metric.lago_id;
    w.ids = { seats, users };
    const plan = async (code, charge) => {
      const p = (await call('POST', '/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [charge] } })).plan;
      w.ids[code] = p.charges[0].lago_id;
    };
    await plan('late_sum', { billable_metric_id: seats, charge_model: 'standard', properties: { amount: '30' } });
    await plan('late_uniq', { billable_metric_id: users, charge_model: 'standard', properties: { amount: '20' } });
    await plan('late_pro', { billable_metric_id: seats, charge_model: 'standard', prorated: true, properties: { amount: '30' } });
    for (const c of Object.keys(subs)) {
      await call('POST', '/api/v1/customers', { customer: { external_id: c, currency: 'USD' } });
      await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: c, external_id: c, subscription_at: CLOCK } });
      w.wallets[c] = [(await call('POST', '/api/v1/wallets', { wallet: { external_customer_id: c, currency: 'USD', rate_amount: '1', name: c, granted_credits: '100' } })).wallet.lago_id];
    }
    // April 11th: the events come, timestamped March 20th, the period's only ones
    await call('POST', '/api/v1/test_clock/advance', { test_clock: { to: '2026-04-11T00:00:00Z' } });
    const late = Date.parse('2026-03-20T10:00:00Z') / 1000;
    await call('POST', '/api/v1/events', { event: { transaction_id: 'l1', external_subscription_id: 'late_sum', code: 'seats', timestamp: late, properties: { seats: 2 } } });
    await call('POST', '/api/v1/events', { event: { transaction_id: 'l2', external_subscription_id: 'late_uniq', code: 'users', timestamp: late, properties: { user: 'ann' } } });
    await call('POST', '/api/v1/events', { event: { transaction_id: 'l3', external_subscription_id: 'late_pro', code: 'seats', timestamp: late, properties: { seats: 2 } } });
  });
  for (const w of ws) {
    assert.equal(await balance(w, 'late_sum'), 10000 - 6000); // 2 seats carried into April
    assert.equal(await balance(w, 'late_uniq'), 10000 - 2000);
    assert.equal(await balance(w, 'late_pro'), 10000 - 6000); // present all April: whole
  }
  await agree(ws, subs, 'before the restart');
  await restart(ws);
  // (no read in between: a read of current usage builds the usage into the book, and would
  // hide a start that did not)
  // a price cut: what the period debited beyond the new fee comes back at once
  await each(ws, async (w) => {
    const cut = (code, metric, amount, extra = {}) => w.t.call('PUT', `/api/v1/plans/${code}`, { plan: { charges: [{ id: w.ids[code], billable_metric_id: w.ids[metric], charge_model: 'standard', ...extra, properties: { amount } }] } });
    await cut('late_sum', 'seats', '3');
    await cut('late_uniq', 'users', '2');
    await cut('late_pro', 'seats', '3', { prorated: true });
  });
  const cut = {};
  for (const w of ws) cut[w.kind] = { late_sum: await balance(w, 'late_sum'), late_uniq: await balance(w, 'late_uniq'), late_pro: await balance(w, 'late_pro') };
  const want = { late_sum: 10000 - 600, late_uniq: 10000 - 200, late_pro: 10000 - 600 };
  assert.deepEqual(cut, Object.fromEntries(ws.map((w) => [w.kind, want])), 'the balances after the price cut');
  await agree(ws, subs, 'after the price cut');
});

// An event timestamped at a subscription's termination instant, arriving after it, is that
// subscription's late event (Lago's Event#subscription: terminated_at >= timestamp); a recurring
// metric's is carried into the subscription live under the same id when it arrives, and debited
// there: after a start that one's usage must be in the book too, as for any late event.
test('a late event of the termination instant, carried into the subscription made again, gives back a price cut after a start', async () => {
  const ws = await world(['straight', 'clean', 'kill', 'no_snapshot']);
  const subs = { again: ['again'] };
  await each(ws, async (w) => {
    const call = (m, p, b) => w.t.call(m, p, b);
    w.ids.seats = (await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'seats', name: 'seats', aggregation_type: 'sum_agg', field_name: 'seats', recurring: true } })).billable_metric.lago_id;
    w.ids.again = (await call('POST', '/api/v1/plans', { plan: { code: 'again', name: 'again', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
      { billable_metric_id: w.ids.seats, charge_model: 'standard', properties: { amount: '30' } }] } })).plan.charges[0].lago_id;
    await call('POST', '/api/v1/customers', { customer: { external_id: 'again', currency: 'USD' } });
    const subscribe = () => call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'again', plan_code: 'again', external_id: 'again' } });
    await subscribe();
    w.wallets.again = [(await call('POST', '/api/v1/wallets', { wallet: { external_customer_id: 'again', currency: 'USD', rate_amount: '1', name: 'again', granted_credits: '100' } })).wallet.lago_id];
    await call('POST', '/api/v1/test_clock/advance', { test_clock: { to: '2026-03-10T00:00:00Z' } });
    await call('DELETE', '/api/v1/subscriptions/again');
    await call('POST', '/api/v1/test_clock/advance', { test_clock: { to: '2026-04-02T00:00:00Z' } });
    await subscribe();
    // the termination's instant: the ended subscription's late event, carried into April's
    const e = await call('POST', '/api/v1/events', { event: { transaction_id: 'at-end', external_subscription_id: 'again', code: 'seats', timestamp: Date.parse('2026-03-10T00:00:00Z') / 1000, properties: { seats: 2 } } });
    w.ended = e.event.lago_subscription_id;
  });
  for (const w of ws) assert.equal(await balance(w, 'again'), 10000 - 6000); // 2 seats carried into April
  await agree(ws, subs, 'before the restart');
  await restart(ws);
  await each(ws, (w) => w.t.call('PUT', '/api/v1/plans/again', { plan: { charges: [{ id: w.ids.again, billable_metric_id: w.ids.seats, charge_model: 'standard', properties: { amount: '3' } }] } }));
  const cut = {};
  for (const w of ws) cut[w.kind] = await balance(w, 'again');
  assert.deepEqual(cut, Object.fromEntries(ws.map((w) => [w.kind, 10000 - 600])), 'the balances after the price cut');
  await agree(ws, subs, 'after the price cut');
});

// Found by an audit: a recurring value carries into a subscription the same customer makes
// again under an external id, never into another customer's (docs/ARCHITECTURE.md, "Recurring
// metrics"), and a build from the store reads it so. A late event timestamped in the life of the
// first owner's terminated subscription was carried live into the next owner's, whose usage
// showed the seat and whose wallet paid for it then and at every period's start, until a
// restart dropped it and its next event gave it back; and an event the first owner sent ahead
// past its end counted, after a start only, in the next owner's usage, which paid for it. Live
// and after a start, the next owner pays nothing for them, and the same customer's own
// subscription made again does carry its late seat.
test("a late recurring event of an external id's first owner moves nothing of the next owner's, live or after a start", async () => {
  const ws = await world(['straight', 'clean', 'kill', 'no_snapshot']);
  const subs = { first_owner: ['owned'], next_owner: ['owned'], keeper: ['kept'] };
  await each(ws, async (w) => {
    const call = (m, p, b) => w.t.call(m, p, b);
    const metric = async (bm) => (await call('POST', '/api/v1/billable_metrics', { billable_metric: { name: bm.code, ...bm } })).billable_metric.lago_id;
    w.ids.seats = await metric({ code: 'seats', aggregation_type: 'sum_agg', field_name: 'seats', recurring: true });
    w.ids.calls = await metric({ code: 'calls', aggregation_type: 'count_agg' });
    await call('POST', '/api/v1/plans', { plan: { code: 'owned', name: 'owned', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
      { billable_metric_id: w.ids.seats, charge_model: 'standard', properties: { amount: '10' } },
      { billable_metric_id: w.ids.calls, charge_model: 'standard', properties: { amount: '1' } }] } });
    for (const c of Object.keys(subs)) {
      await call('POST', '/api/v1/customers', { customer: { external_id: c, currency: 'USD' } });
      w.wallets[c] = [(await call('POST', '/api/v1/wallets', { wallet: { external_customer_id: c, currency: 'USD', rate_amount: '1', name: c, granted_credits: '100' } })).wallet.lago_id];
    }
    const subscribe = (c, id) => call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'owned', external_id: id } });
    const event = (tx, sub, code, properties, timestamp) => call('POST', '/api/v1/events', { event: { transaction_id: tx, external_subscription_id: sub, code, properties, ...(timestamp ? { timestamp } : {}) } });
    await subscribe('first_owner', 'owned');
    await subscribe('keeper', 'kept');
    await event('o1', 'owned', 'seats', { seats: 5 });
    await event('k1', 'kept', 'seats', { seats: 2 });
    // sent ahead past the first owner's end, into the time the next owner's subscription covers
    await event('o-ahead', 'owned', 'calls', {}, at('2026-03-20T00:00:00Z'));
    await event('o-ahead-seat', 'owned', 'seats', { seats: 4 }, at('2026-03-20T00:00:00Z'));
    await call('POST', '/api/v1/test_clock/advance', { test_clock: { to: '2026-03-05T00:00:00Z' } });
    await call('DELETE', '/api/v1/subscriptions/owned');
    await call('DELETE', '/api/v1/subscriptions/kept');
    await call('POST', '/api/v1/test_clock/advance', { test_clock: { to: '2026-03-06T00:00:00Z' } });
    await subscribe('next_owner', 'owned');
    await subscribe('keeper', 'kept');
    // timestamped in the terminated subscriptions' lives (March 3rd), arriving now
    w.late = await event('late-seat', 'owned', 'seats', { seats: 1 }, at('2026-03-03T00:00:00Z'));
    await event('late-call', 'owned', 'calls', {}, at('2026-03-03T00:00:00Z'));
    await event('kept-late', 'kept', 'seats', { seats: 1 }, at('2026-03-03T00:00:00Z'));
    // a capture of the next owner's hold timestamped in the first owner's life is no late event
    // of the next owner's: refused as one of a subscription since ended is, the hold kept
    const hold = (await call('POST', '/api/v1/authorizations', { authorization: { external_subscription_id: 'owned', code: 'seats', properties: { seats: 1 } } })).authorization;
    const r = await w.t.api(`/api/v1/authorizations/${hold.lago_id}/capture`, { method: 'POST', body: { authorization: { properties: { seats: 1 }, timestamp: at('2026-03-03T00:00:00Z') } } });
    w.capture = [r.status, (await r.json()).error_details];
    if (r.status !== 200) await call('POST', `/api/v1/authorizations/${hold.lago_id}/void`);
  });
  for (const w of ws) {
    assert.equal(w.late.event.lago_customer_id, (await w.t.call('GET', '/api/v1/customers/first_owner')).customer.lago_id);
    assert.deepEqual(w.capture, [422, { timestamp: ['subscription_ended'] }]);
  }
  const balances = async () => {
    const out = {};
    for (const w of ws) out[w.kind] = { next_owner: await balance(w, 'next_owner'), first_owner: await balance(w, 'first_owner'), keeper: await balance(w, 'keeper') };
    return out;
  };
  const want = (o) => Object.fromEntries(ws.map((w) => [w.kind, o]));
  // the first owner paid its 5 seats, the keeper its 2 and the late one carried into its own
  // subscription made again; the next owner nothing
  const live = await agree(ws, subs, 'before the restart');
  const charges = (u) => Object.fromEntries(u.charges_usage.map((c) => [c.billable_metric.code, [c.units, c.amount_cents]]));
  assert.deepEqual(charges(live.next_owner.usage.owned), { seats: ['0.0', 0], calls: ['0.0', 0] });
  assert.deepEqual(charges(live.keeper.usage.kept), { seats: ['3.0', 3000], calls: ['0.0', 0] });
  assert.deepEqual(await balances(), want({ next_owner: 10000, first_owner: 10000 - 5000, keeper: 10000 - 2000 - 3000 }));
  await restart(ws);
  await agree(ws, subs, 'after the restart');
  // the periods that follow: the keeper's carried seats paid again, nothing of the next owner's
  await each(ws, (w) => w.t.call('POST', '/api/v1/test_clock/advance', { test_clock: { to: '2026-04-02T00:00:00Z' } }));
  await agree(ws, subs, 'in April');
  assert.deepEqual(await balances(), want({ next_owner: 10000, first_owner: 10000 - 5000, keeper: 10000 - 2000 - 3000 - 3000 }));
  await each(ws, (w) => w.t.call('POST', '/api/v1/events', { event: { transaction_id: 'next-call', external_subscription_id: 'owned', code: 'calls', properties: {} } }));
  await agree(ws, subs, "after the next owner's own event");
  assert.deepEqual(await balances(), want({ next_owner: 10000 - 100, first_owner: 10000 - 5000, keeper: 10000 - 2000 - 3000 - 3000 }));
  await restart(ws);
  await agree(ws, subs, 'after a second restart');
});

// Found by a review of the fix above: an event a customer sent ahead past its subscription's
// end counts, as Lago reads events by external id within a period's bounds, in the subscription
// the same customer makes again under the id when that one's life covers its time; a start
// handed it over so (usage_of_stored), live it was left out, and the customer's wallet paid for
// it after a restart only. Now the creation hands it over too, whether the terminated
// subscription's usage is still in the book (made again before any restart) or left it (a
// start in between, or made again in the next period); one timestamped between the end and the
// new start is nobody's, live or after a start.
test('an event sent ahead past its end counts in the subscription the same customer makes again over its time, live as after a start', async () => {
  const ws = await world(['straight', 'clean', 'kill', 'no_snapshot']);
  const subs = { again_now: ['again_now'], again_after: ['again_after'], again_april: ['again_april'], again_longer: ['again_longer'] };
  await each(ws, async (w) => {
    const call = (m, p, b) => w.t.call(m, p, b);
    const calls = (await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'calls', aggregation_type: 'count_agg' } })).billable_metric.lago_id;
    const plan = (code, amount) => call('POST', '/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
      { billable_metric_id: calls, charge_model: 'standard', properties: { amount } }] } });
    await plan('resub', '1');
    await plan('resub_big', '2');
    for (const c of Object.keys(subs)) {
      await call('POST', '/api/v1/customers', { customer: { external_id: c, currency: 'USD' } });
      w.wallets[c] = [(await call('POST', '/api/v1/wallets', { wallet: { external_customer_id: c, currency: 'USD', rate_amount: '1', name: c, granted_credits: '100' } })).wallet.lago_id];
    }
    const subscribe = (c, plan_code) => call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code, external_id: c } });
    const event = (tx, sub, timestamp) => call('POST', '/api/v1/events', { event: { transaction_id: tx, external_subscription_id: sub, code: 'calls', properties: {}, ...(timestamp ? { timestamp } : {}) } });
    for (const c of Object.keys(subs)) {
      await subscribe(c, 'resub');
      await event(`${c}-own`, c);
      // after the end to come (March 5th) and before the subscription made again: nobody's
      await event(`${c}-gap`, c, at('2026-03-05T12:00:00Z'));
    }
    // in the time the subscription made again covers
    await event('again_now-ahead', 'again_now', at('2026-03-20T00:00:00Z'));
    await event('again_after-ahead', 'again_after', at('2026-03-20T00:00:00Z'));
    await event('again_april-ahead', 'again_april', at('2026-04-10T00:00:00Z'));
    await event('again_april-march', 'again_april', at('2026-03-20T00:00:00Z'));
    await event('again_longer-ahead', 'again_longer', at('2026-03-25T00:00:00Z'));
    await call('POST', '/api/v1/test_clock/advance', { test_clock: { to: '2026-03-05T00:00:00Z' } });
    for (const c of Object.keys(subs)) await call('DELETE', `/api/v1/subscriptions/${c}`);
    await call('POST', '/api/v1/test_clock/advance', { test_clock: { to: '2026-03-06T00:00:00Z' } });
    await subscribe('again_now', 'resub_big');
    // made again to end before the event: not its own until its end moves past it
    await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'again_longer', plan_code: 'resub', external_id: 'again_longer', ending_at: '2026-03-15T00:00:00Z' } });
  });
  await agree(ws, subs, 'made again before any restart');
  await restart(ws);
  await each(ws, async (w) => {
    await w.t.call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'again_after', plan_code: 'resub', external_id: 'again_after' } });
    await w.t.call('PUT', '/api/v1/subscriptions/again_longer', { subscription: { ending_at: '2026-03-28T00:00:00Z' } });
  });
  const units = (u) => Object.fromEntries(u.charges_usage.map((c) => [c.billable_metric.code, [c.units, c.amount_cents]]));
  const march = await agree(ws, subs, 'made again after a restart');
  assert.deepEqual(units(march.again_now.usage.again_now), { calls: ['1.0', 200] });
  assert.deepEqual(units(march.again_after.usage.again_after), { calls: ['1.0', 100] });
  assert.deepEqual(units(march.again_longer.usage.again_longer), { calls: ['1.0', 100] });
  const balances = async () => {
    const out = {};
    for (const w of ws) out[w.kind] = Object.fromEntries(await Promise.all(Object.keys(subs).map(async (c) => [c, await balance(w, c)])));
    return out;
  };
  const want = (o) => Object.fromEntries(ws.map((w) => [w.kind, o]));
  await restart(ws);
  await agree(ws, subs, 'after a second restart');
  // their own events: each pays what its usage holds, alike whatever restarted
  await each(ws, async (w) => {
    for (const c of ['again_now', 'again_after'])
      await w.t.call('POST', '/api/v1/events', { event: { transaction_id: `${c}-next`, external_subscription_id: c, code: 'calls', properties: {} } });
  });
  await agree(ws, subs, 'after their own events');
  // each paid its own and the one taken over at that plan's price (none paid for the events
  // sent ahead while their subscription lived: its end gave them back)
  assert.deepEqual(await balances(), want({ again_now: 10000 - 100 - 400, again_after: 10000 - 100 - 200, again_april: 10000 - 100, again_longer: 10000 - 100 }),
    'the balances after their own events');
  await each(ws, async (w) => {
    await w.t.call('POST', '/api/v1/test_clock/advance', { test_clock: { to: '2026-04-02T00:00:00Z' } });
    await w.t.call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'again_april', plan_code: 'resub', external_id: 'again_april' } });
  });
  const april = await agree(ws, subs, 'made again in the next period');
  assert.deepEqual(units(april.again_april.usage.again_april), { calls: ['1.0', 100] });
  await restart(ws);
  await agree(ws, subs, 'after a third restart');
  await each(ws, (w) => w.t.call('POST', '/api/v1/events', { event: { transaction_id: 'again_april-next', external_subscription_id: 'again_april', code: 'calls', properties: {} } }));
  await agree(ws, subs, "after the April subscription's own event");
  assert.deepEqual(await balances(), want({ again_now: 10000 - 100 - 400, again_after: 10000 - 100 - 200, again_april: 10000 - 100 - 200, again_longer: 10000 - 100 }),
    'the balances at the end');
});

// ---- restart equivalence: many kinds of usage, one command sequence, a restart in the middle --

const at = (iso) => Date.parse(iso) / 1000;

// The first restart is a clean stop on every server that restarts (its snapshot marks where the
// book then reaches), the next ones each of its kind.
const cleanFirst = (ws) => each(ws, (w) => RESTARTS[w.kind] ? w.t.restart(w.kind === 'no_snapshot' ? RESTARTS[w.kind] : {}) : null);

test('an event sent ahead past its end, taken by the same customer\'s subscription made again after a clean stop, still counts after the next start', async () => {
  const ws = await world(['straight', 'clean', 'kill', 'no_snapshot']);
  const subs = { ahead: ['ahead'] };
  await each(ws, async (w) => {
    const call = (m, p, b) => w.t.call(m, p, b);
    const tokens = (await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'tokens', name: 'tokens', aggregation_type: 'sum_agg', field_name: 'tokens' } })).billable_metric.lago_id;
    await call('POST', '/api/v1/plans', { plan: { code: 'ahead', name: 'ahead', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
      { billable_metric_id: tokens, charge_model: 'standard', pay_in_advance: true, properties: { amount: '1' } }] } });
    await call('POST', '/api/v1/customers', { customer: { external_id: 'ahead', currency: 'USD' } });
    w.wallets.ahead = [(await call('POST', '/api/v1/wallets', { wallet: { external_customer_id: 'ahead', currency: 'USD', rate_amount: '1', name: 'ahead', granted_credits: '100' } })).wallet.lago_id];
    await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'ahead', plan_code: 'ahead', external_id: 'ahead' } });
    await call('POST', '/api/v1/events', { event: { transaction_id: 'sent-ahead', external_subscription_id: 'ahead', code: 'tokens', properties: { tokens: 5 }, timestamp: at('2026-04-23T15:00:00Z') } });
    await call('DELETE', '/api/v1/subscriptions/ahead');
  });
  await cleanFirst(ws); // the ended subscription's usage leaves the book, and the mark passes the event
  await each(ws, async (w) => {
    await w.t.call('POST', '/api/v1/test_clock/advance', { test_clock: { to: '2026-04-09T23:10:00Z' } });
    await w.t.call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'ahead', plan_code: 'ahead', external_id: 'ahead' } });
  });
  const units = (u) => Object.fromEntries(u.charges_usage.map((c) => [c.billable_metric.code, [c.units, c.amount_cents]]));
  const live = await agree(ws, subs, 'made again after a clean stop');
  assert.deepEqual(units(live.ahead.usage.ahead), { tokens: ['5.0', 500] });
  await restart(ws);
  await agree(ws, subs, 'after the next start');
  await restart(ws);
  await agree(ws, subs, 'after a third start');
  await each(ws, (w) => w.t.call('POST', '/api/v1/events', { event: { transaction_id: 'own', external_subscription_id: 'ahead', code: 'tokens', properties: { tokens: 1 } } }));
  await agree(ws, subs, 'after its own event');
  for (const w of ws) assert.equal(await balance(w, 'ahead'), 10000 - 600, `${w.kind}: pays the event taken over`);
});

test('a recurring event of an ended subscription counts once in the same customer\'s subscription made again from before its time, live as after a start', async () => {
  const ws = await world(['straight', 'clean', 'kill', 'no_snapshot']);
  const subs = { seats: ['seats'] };
  await each(ws, async (w) => {
    const call = (m, p, b) => w.t.call(m, p, b);
    const seats = (await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'seats', name: 'seats', aggregation_type: 'sum_agg', field_name: 'seats', recurring: true } })).billable_metric.lago_id;
    await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'calls', aggregation_type: 'count_agg' } });
    const plan = (code, interval, amount) => call('POST', '/api/v1/plans', { plan: { code, name: code, interval, amount_cents: 0, amount_currency: 'USD', charges: [
      { billable_metric_id: seats, charge_model: 'standard', properties: { amount } }] } });
    await plan('seats_yearly', 'yearly', '1');
    await plan('seats_monthly', 'monthly', '2');
    await call('POST', '/api/v1/customers', { customer: { external_id: 'seats', currency: 'USD' } });
    w.wallets.seats = [(await call('POST', '/api/v1/wallets', { wallet: { external_customer_id: 'seats', currency: 'USD', rate_amount: '1', name: 'seats', granted_credits: '100' } })).wallet.lago_id];
    await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'seats', plan_code: 'seats_yearly', external_id: 'seats', billing_time: 'calendar' } });
    await call('POST', '/api/v1/test_clock/advance', { test_clock: { to: '2027-03-16T16:00:02Z' } });
    await call('POST', '/api/v1/events', { event: { transaction_id: 'three', external_subscription_id: 'seats', code: 'seats', properties: { seats: 3 }, timestamp: at('2027-03-12T15:59:55Z') } });
    await call('DELETE', '/api/v1/subscriptions/seats');
    await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'seats', plan_code: 'seats_monthly', external_id: 'seats', billing_time: 'calendar', subscription_at: '2027-03-08T16:00:02Z' } });
  });
  const units = (u) => Object.fromEntries(u.charges_usage.map((c) => [c.billable_metric.code, [c.units, c.events_count, c.amount_cents]]));
  const live = await agree(ws, subs, 'made again from before the event');
  assert.deepEqual(units(live.seats.usage.seats), { seats: ['3.0', 1, 600] });
  await restart(ws);
  await agree(ws, subs, 'after a start');
  await each(ws, (w) => w.t.call('POST', '/api/v1/events', { event: { transaction_id: 'next', external_subscription_id: 'seats', code: 'calls', properties: {} } }));
  await agree(ws, subs, 'after its next event');
  await restart(ws);
  await agree(ws, subs, 'after a second start');
});

test('a refused subscription naming a new customer spends no customer sequential_id, live as after a start', async () => {
  const ws = await world(['straight', 'clean', 'kill', 'no_snapshot']);
  await each(ws, async (w) => {
    await w.t.call('POST', '/api/v1/plans', { plan: { code: 'seq', name: 'seq', interval: 'monthly', amount_cents: 100, amount_currency: 'USD', charges: [] } });
    await w.t.call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'seq_first', plan_code: 'seq', external_id: 'seq', subscription_at: '2027-02-26T13:00:02Z' } });
    const res = await w.t.api('/api/v1/subscriptions', { method: 'POST', body: { subscription: { external_customer_id: 'seq_refused', plan_code: 'seq', external_id: 'seq' } } });
    assert.deepEqual([res.status, (await res.json()).error_details], [422, { external_id: ['value_already_exist'] }]);
  });
  await restart(ws);
  const seqs = await each(ws, async (w) => {
    await w.t.call('POST', '/api/v1/customers', { customer: { external_id: 'seq_next' } });
    assert.equal((await w.t.api('/api/v1/customers/seq_refused')).status, 404);
    return (await w.t.call('GET', '/api/v1/customers/seq_next')).customer.sequential_id;
  });
  assert.deepEqual(seqs, [2, 2, 2, 2]);
});
const METRICS = [
  { code: 'seats', aggregation_type: 'sum_agg', field_name: 'seats', recurring: true },
  { code: 'users', aggregation_type: 'unique_count_agg', field_name: 'user', recurring: true },
  { code: 'gpus', aggregation_type: 'weighted_sum_agg', field_name: 'gpus', weighted_interval: 'seconds' },
  { code: 'rgpus', aggregation_type: 'weighted_sum_agg', field_name: 'gpus', recurring: true, weighted_interval: 'seconds' },
  { code: 'calls', aggregation_type: 'count_agg' },
  { code: 'tokens', aggregation_type: 'sum_agg', field_name: 'tokens' },
];
// plan -> [amount_cents, charges as [metric, properties, extra]]
const PLANS = {
  p_seats: [0, [['seats', { amount: '30' }]]],
  p_big: [5000, [['seats', { amount: '60' }], ['calls', { amount: '1' }]]],
  p_pro: [0, [['seats', { amount: '30' }, { prorated: true }]]],
  p_uniq: [0, [['users', { amount: '20' }]]],
  p_upro: [0, [['users', { amount: '31' }, { prorated: true }]]],
  p_gpu: [0, [['gpus', { amount: '31' }], ['rgpus', { amount: '10' }]]],
  p_group: [0, [['tokens', { amount: '0.01', pricing_group_keys: ['region'] }], ['calls', { amount: '1' }]]],
  p_calls: [0, [['calls', { amount: '1' }], ['seats', { amount: '31' }, { prorated: true }]]],
};
// customer -> [plan, wallet extra]
const CUSTOMERS = {
  late_sum: ['p_seats'], late_uniq: ['p_upro'], late_up: ['p_seats'], late_calls: ['p_calls'],
  late_gpu: ['p_gpu'], pro: ['p_pro'], gpu: ['p_gpu'], uniq: ['p_uniq'], upro: ['p_upro'],
  group: ['p_group'], down: ['p_big'], term: ['p_pro'], term_after: ['p_pro'], hold: ['p_big'],
  expiring: ['p_seats'], hard: ['p_seats', { limit: 'hard' }],
};
const SUBS = Object.fromEntries(Object.keys(CUSTOMERS).map((c) => [c, [c]]));

async function setUp(w) {
  const call = (m, p, b) => w.t.call(m, p, b);
  for (const m of METRICS) w.ids[m.code] = (await call('POST', '/api/v1/billable_metrics', { billable_metric: { name: m.code, ...m } })).billable_metric.lago_id;
  for (const [code, [amount_cents, charges]] of Object.entries(PLANS)) {
    const p = (await call('POST', '/api/v1/plans', { plan: { code, name: code, interval: 'monthly', amount_cents, amount_currency: 'USD', charges: charges.map(([m, properties, extra]) => ({ billable_metric_id: w.ids[m], charge_model: 'standard', properties, ...extra })) } })).plan;
    w.ids[code] = p.charges.map((c) => c.lago_id);
  }
  for (const [c, [plan, extra]] of Object.entries(CUSTOMERS)) {
    await call('POST', '/api/v1/customers', { customer: { external_id: c, currency: 'USD' } });
    await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: plan, external_id: c, subscription_at: CLOCK } });
    w.wallets[c] = [(await call('POST', '/api/v1/wallets', { wallet: { external_customer_id: c, currency: 'USD', rate_amount: '1', name: c, granted_credits: '500', ...extra } })).wallet.lago_id];
  }
}

// Every plan's prices times `f` (a price cut below 1): the same edit on every server.
async function reprice(w, f) {
  for (const [code, [, charges]] of Object.entries(PLANS)) {
    const scaled = charges.map(([m, properties, extra], i) => ({
      id: w.ids[code][i], billable_metric_id: w.ids[m], charge_model: 'standard', ...extra,
      properties: { ...properties, amount: String(Number(properties.amount) * f) },
    }));
    await w.t.call('PUT', `/api/v1/plans/${code}`, { plan: { charges: scaled } });
  }
}

function sender(w) {
  let n = 0;
  return (sub, code, properties, timestamp) => w.t.call('POST', '/api/v1/events', { event: { transaction_id: `${sub}_${code}_${n++}`, external_subscription_id: sub, code, properties, ...(timestamp ? { timestamp } : {}) } });
}
const advance = (w, to) => w.t.call('POST', '/api/v1/test_clock/advance', { test_clock: { to } });

// March: the period before. April 11th: late events, events of the period, a downgrade, a
// termination, a hold, a grant that expires on April 20th.
async function before(w) {
  const send = w.send = sender(w);
  await setUp(w);
  await send('pro', 'seats', { seats: 2 });
  await send('uniq', 'users', { user: 'ann' });
  await send('upro', 'users', { user: 'ann' });
  await send('late_calls', 'seats', { seats: 1 });
  await send('late_gpu', 'calls', {}); // (p_gpu has no calls: refused? no: the metric exists, no charge)
  await send('gpu', 'rgpus', { gpus: 1 });
  await advance(w, '2026-03-15T00:00:00Z');
  await w.t.call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'late_up', plan_code: 'p_big', external_id: 'late_up' } });
  await advance(w, '2026-04-11T00:00:00Z');
  // late events, each its period's only debit
  await send('late_sum', 'seats', { seats: 2 }, at('2026-03-20T10:00:00Z'));
  await send('late_uniq', 'users', { user: 'bob' }, at('2026-03-20T10:00:00Z'));
  await send('late_up', 'seats', { seats: 3 }, at('2026-03-10T10:00:00Z')); // the plan before the upgrade's
  await send('late_calls', 'calls', {}, at('2026-03-25T10:00:00Z')); // not recurring: a late call
  await send('late_gpu', 'rgpus', { gpus: 2 }, at('2026-03-25T10:00:00Z'));
  // events of the period
  await send('pro', 'seats', { seats: -1 });
  await send('pro', 'seats', { seats: 3 });
  await send('gpu', 'gpus', { gpus: 2 });
  await send('gpu', 'gpus', { gpus: -1 }, at('2026-04-05T00:00:00Z'));
  await send('uniq', 'users', { user: 'bob' });
  await send('uniq', 'users', { user: 'ann', operation_type: 'remove' });
  await send('upro', 'users', { user: 'cid' });
  await send('upro', 'users', { user: 'ann', operation_type: 'remove' }, at('2026-04-08T00:00:00Z'));
  await send('group', 'tokens', { tokens: 1000, region: 'eu' });
  await send('group', 'tokens', { tokens: 500, region: 'us' });
  await send('group', 'tokens', { tokens: 250 });
  await send('group', 'calls', {});
  await send('down', 'seats', { seats: 2 });
  await send('down', 'calls', {});
  await w.t.call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'down', plan_code: 'p_seats', external_id: 'down' } });
  await send('down', 'seats', { seats: 1 }, at('2026-05-02T00:00:00Z')); // sent ahead, to the downgrade
  await send('term', 'seats', { seats: 3 });
  await send('term_after', 'seats', { seats: 2 });
  await w.t.call('DELETE', '/api/v1/subscriptions/term');
  await send('hold', 'calls', {});
  w.hold = (await w.t.call('POST', '/api/v1/authorizations', { authorization: { external_subscription_id: 'hold', code: 'seats', properties: { seats: '2' }, expires_in: 3600 * 24 * 5 } })).authorization.lago_id;
  await w.t.call('POST', '/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: w.wallets.expiring[0], granted_credits: '50', expiration_at: '2026-04-20T00:00:00Z', priority: 1 } });
  await send('expiring', 'seats', { seats: 1 });
  await send('hard', 'seats', { seats: 4 }, at('2026-03-31T23:00:00Z'));
}

// After the restart (nothing read in between): a price cut; events; terminations; the clock.
const AFTER = [
  ['a price cut', (w) => reprice(w, 0.5)],
  ['an event of each', async (w) => {
    for (const c of Object.keys(CUSTOMERS)) {
      if (c === 'term') continue;
      const [plan] = CUSTOMERS[c];
      const m = PLANS[plan][1][0][0];
      const props = { seats: { seats: 1 }, users: { user: `${c}_new` }, gpus: { gpus: 1 }, rgpus: { gpus: 1 }, calls: {}, tokens: { tokens: 10, region: 'eu' } }[m];
      await w.send(c, m, props);
    }
  }],
  ['a capture, a termination, a price rise', async (w) => {
    await w.t.call('POST', `/api/v1/authorizations/${w.hold}/capture`, {});
    await w.t.call('DELETE', '/api/v1/subscriptions/term_after');
    await reprice(w, 1.5);
    await w.send('late_sum', 'seats', { seats: 0 });
  }],
  ['the grant expires (April 25th)', (w) => advance(w, '2026-04-25T00:00:00Z')],
  ['the next period: the downgrade, carried seats (May 3rd)', async (w) => {
    await advance(w, '2026-05-03T00:00:00Z');
    await w.send('down', 'seats', { seats: 1 });
    await w.send('late_up', 'seats', { seats: 1 });
    await w.send('pro', 'seats', { seats: -2 });
  }],
  ['a price cut in the new period', (w) => reprice(w, 0.5)],
];

async function equivalence(kinds) {
  const ws = await world(['straight', ...kinds]);
  await each(ws, before);
  await agree(ws, SUBS, 'before the restart');
  await restart(ws);
  for (const [what, step] of AFTER) {
    await each(ws, step);
    await agree(ws, SUBS, `after ${what}`);
  }
}

test('restart equivalence: a clean stop (the snapshot) and a start', () => equivalence(['clean']));
test('restart equivalence: a SIGKILL and a start', () => equivalence(['kill']));
test('restart equivalence: a clean stop whose snapshot is removed, and a start', () => equivalence(['no_snapshot']));

// ---- the big path: a catalog write that reads back 65,536 events or more rescans the book ----

// A catalog write whose changed states would read back USAGE_RESCAN_MIN_EVENTS (65,536) stored
// events or more rebuilds the whole book with one scan from its earliest reference
// (engine.c reprice_organization, readback_rescan_usage) instead of reading each usage's events by id. Here
// after a start from the snapshot (clean: the one the stop saved; older: a clean stop before the
// period's events, then a SIGKILL, so the start loads a snapshot older than everything it needs),
// with a late event of a recurring metric as one subscription's only debit of the period: the
// scan must build that usage again, or the price cut after it gives nothing back. Batches of
// 10,000 (--max-batch, as usage_rebuilds does) keep 70,000 events quick under ASan.
test('a catalog write that reads back 65,536 events rescans the book after a start, a late event its only debit', async () => {
  const BIG = ['--max-batch', '10000'];
  const kinds = ['straight', 'clean', 'older'];
  const ws = await Promise.all(kinds.map(async (kind) => {
    const t = await startWithOrg(['--test-clock', CLOCK], BIG);
    servers.push(t);
    return { kind, t, wallets: {}, ids: {} };
  }));
  const subs = { late: ['late'], bulk: ['bulk'] };
  const counter = async (w, name) => Number((await (await fetch(`${w.t.url}/metrics`)).text()).match(new RegExp(`^${name} (\\d+)$`, 'm'))[1]);
  await each(ws, async (w) => {
    const call = (m, p, b) => w.t.call(m, p, b);
    w.ids.seats = (await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'seats', name: 'seats', aggregation_type: 'sum_agg', field_name: 'seats', recurring: true } })).billable_metric.lago_id;
    w.ids.tokens = (await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'tokens', name: 'tokens', aggregation_type: 'sum_agg', field_name: 'input' } })).billable_metric.lago_id;
    const p = (await call('POST', '/api/v1/plans', { plan: { code: 'p', name: 'p', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
      { billable_metric_id: w.ids.seats, charge_model: 'standard', properties: { amount: '30' } },
      { billable_metric_id: w.ids.tokens, charge_model: 'standard', properties: { amount: '0.001' } }] } })).plan;
    w.ids.charges = p.charges.map((c) => c.lago_id);
    for (const c of Object.keys(subs)) {
      await call('POST', '/api/v1/customers', { customer: { external_id: c, currency: 'USD' } });
      await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'p', external_id: c, subscription_at: CLOCK } });
    }
    w.wallets.late = [(await call('POST', '/api/v1/wallets', { wallet: { external_customer_id: 'late', currency: 'USD', rate_amount: '1', name: 'late', granted_credits: '100' } })).wallet.lago_id];
    w.wallets.bulk = [(await call('POST', '/api/v1/wallets', { wallet: { external_customer_id: 'bulk', currency: 'USD', rate_amount: '1', name: 'bulk', granted_credits: '1000' } })).wallet.lago_id];
    await call('POST', '/api/v1/events/batch', { events: Array.from({ length: 100 }, (_, i) => ({ transaction_id: `march-${i}`, external_subscription_id: 'bulk', code: 'tokens', properties: { input: 1, output: 3 } })) });
    await call('POST', '/api/v1/test_clock/advance', { test_clock: { to: '2026-04-11T00:00:00Z' } });
    if (w.kind === 'older') await w.t.restart(); // a snapshot of the events before April
    // the late event, timestamped March 20th: carried into April, the period's only debit
    await call('POST', '/api/v1/events', { event: { transaction_id: 'late1', external_subscription_id: 'late', code: 'seats', timestamp: Date.parse('2026-03-20T10:00:00Z') / 1000, properties: { seats: 2 } } });
    for (let k = 0; k < 7; k++)
      await call('POST', '/api/v1/events/batch', { events: Array.from({ length: 10000 }, (_, i) => ({ transaction_id: `big-${k}-${i}`, external_subscription_id: 'bulk', code: 'tokens', properties: { input: 1, output: 3 } })) });
  });
  for (const w of ws) assert.equal(await balance(w, 'late'), 10000 - 6000);
  await restart(ws.map((w) => ({ ...w, kind: w.kind === 'older' ? 'kill' : w.kind })));
  // (no read in between: a read of current usage builds the usage into the book)
  // the metric's field changes: the tokens charge reads its 70,000 events back, with one scan
  const read = await each(ws, (w) => counter(w, 'tally_usage_events_read_total'));
  await each(ws, (w) => w.t.call('PUT', '/api/v1/billable_metrics/tokens', { billable_metric: { field_name: 'output' } }));
  for (const [i, w] of ws.entries()) {
    const d = await counter(w, 'tally_usage_events_read_total') - read[i];
    // by id it would read the 70,000 tokens events; the scan reads from the late event on
    assert.ok(d > 70000, `${w.kind}: read ${d} events back`);
  }
  // a price cut: what the late event's period debited beyond the new fee comes back at once
  await each(ws, (w) => w.t.call('PUT', '/api/v1/plans/p', { plan: { charges: [
    { id: w.ids.charges[0], billable_metric_id: w.ids.seats, charge_model: 'standard', properties: { amount: '3' } },
    { id: w.ids.charges[1], billable_metric_id: w.ids.tokens, charge_model: 'standard', properties: { amount: '0.001' } }] } }));
  const got = {};
  for (const w of ws) got[w.kind] = await balance(w, 'late');
  assert.deepEqual(got, Object.fromEntries(kinds.map((k) => [k, 10000 - 600])), 'the late subscription\'s balance after the price cut');
  await agree(ws, subs, 'after the rescan and the price cut');
});

// ---- which overdraft a top-up repays does not depend on how the wallets were loaded ---------

// Credits bought while a soft wallet is overdrawn repay the overdraft, and the charges'
// overdraft fundings become the new grant's (wallet_book_reassign_overdraft), so that a later
// refund step gives the credits back to it. When the top-up repays only part, which charge's
// overdraft it takes once followed the order the writer held the customer's debits in: the order
// they were first debited, or the store's (by period) after a load. A start (or any reload)
// between the debits and the top-up so changed where a termination's give-back went: to the
// grant on one server, to the overdraft on the other (found by restart_random, seed 22).
test('a top-up repays the same overdraft whether or not the wallet was loaded again in between', async () => {
  const ws = await world(['straight', 'clean', 'kill']);
  const subs = { od: ['od_early', 'od_late'] };
  await each(ws, async (w) => {
    const call = (m, p, b) => w.t.call(m, p, b);
    const seats = (await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'seats', name: 'seats', aggregation_type: 'sum_agg', field_name: 'seats', recurring: true } })).billable_metric.lago_id;
    await call('POST', '/api/v1/plans', { plan: { code: 'pro', name: 'pro', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
      { billable_metric_id: seats, charge_model: 'standard', prorated: true, properties: { amount: '31' } }] } });
    await call('POST', '/api/v1/customers', { customer: { external_id: 'od', currency: 'USD' } });
    w.wallets.od = [(await call('POST', '/api/v1/wallets', { wallet: { external_customer_id: 'od', currency: 'USD', rate_amount: '1', name: 'od', granted_credits: '0', limit: 'soft', overdraft_credits: '1000' } })).wallet.lago_id];
    // od_early's period starts on March 1st, od_late's on the 16th (its own start): the store
    // lists od_early's debit first, while od_late's was debited first
    await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'od', plan_code: 'pro', external_id: 'od_early', subscription_at: CLOCK } });
    await call('POST', '/api/v1/test_clock/advance', { test_clock: { to: '2026-03-16T00:00:00Z' } });
    await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'od', plan_code: 'pro', external_id: 'od_late' } });
    await call('POST', '/api/v1/events', { event: { transaction_id: 'late1', external_subscription_id: 'od_late', code: 'seats', properties: { seats: 1 } } });
    await call('POST', '/api/v1/events', { event: { transaction_id: 'early1', external_subscription_id: 'od_early', code: 'seats', properties: { seats: 1 } } });
  });
  // both overdrawn: 16 days of 31 at 31 a seat
  for (const w of ws) assert.equal((await w.t.call('GET', `/api/v1/wallets/${w.wallets.od[0]}`)).wallet.overdrawn_cents, 3200);
  await restart(ws);
  await each(ws, async (w) => {
    // 10 credits repay 10 of the 32 overdrawn: one subscription's debit is now the grant's
    await w.t.call('POST', '/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: w.wallets.od[0], paid_credits: '10' } });
    // od_late ends on the 21st: 10 of its 16 days come back, to whatever paid for them
    await w.t.call('POST', '/api/v1/test_clock/advance', { test_clock: { to: '2026-03-22T00:00:00Z' } });
    await w.t.call('DELETE', '/api/v1/subscriptions/od_late');
  });
  await agree(ws, subs, 'after a partial repayment and a termination');
});
