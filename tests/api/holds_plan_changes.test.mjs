// Open holds across plan changes: they belong to the external id's live subscription (docs/API.md,
// Holds), so only its end voids them and only the ends that bound the external id bound them.
// Found by an audit (audit 10): canceling a scheduled downgrade (DELETE ?status=pending, or a
// price edit of the current plan under the downgrade's) voided the live subscription's holds, as
// the downgrade shares its external id, and an expiry cut by the downgrade's own ending_at stayed
// cut; and a plan change by POST /subscriptions naming an ending_at left them unbounded, so after
// the end their credits stayed reserved and their capture was refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scenario } from '../lib/scenario.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

const WEEK = 7 * 86400;

// big (5000) and small (1000) plans charging 1 a unit of calls (sum of n); each customer with
// 100 credits, subscribed to big under its own id as external id
async function setup(clock, prefix, customers, extraPlans = []) {
  const h = await scenario(clock, prefix);
  const calls = await h.metric({ code: 'calls', name: 'Calls', aggregation_type: 'sum_agg', field_name: 'n' });
  const charges = [{ billable_metric_id: calls, charge_model: 'standard', properties: { amount: '1' } }];
  for (const [code, amount] of [['big', 5000], ['small', 1000], ...extraPlans]) await h.plan(code, charges, amount);
  const wallets = {};
  for (const c of customers) {
    await h.post('/api/v1/customers', { customer: { external_id: c, currency: 'USD' } });
    wallets[c] = await h.wallet(c, 100);
    await h.subscribe(c, 'big', c);
  }
  h.hold = async (sub) => (await h.post('/api/v1/authorizations', {
    authorization: { external_subscription_id: sub, code: 'calls', properties: { n: 5 }, expires_in: WEEK } })).authorization;
  h.holdNow = async (a) => {
    const b = (await h.get(`/api/v1/authorizations/${a.lago_id}`)).authorization;
    return { status: b.status, expires_at: b.expires_at, held_amount_cents: b.held_amount_cents };
  };
  h.ongoing = async (w) => (await h.get(`/api/v1/wallets/${w}`)).wallet.ongoing_balance_cents;
  return { h, wallets };
}

const pendingEnd = (h, sub, ending_at) =>
  h.t.api(`/api/v1/subscriptions/${sub}?status=pending`, { method: 'PUT', body: { subscription: { ending_at } } });

test('canceling a scheduled downgrade keeps the live subscription\'s holds, their expiry given back, and they are captured', async () => {
  // d1: canceled by DELETE ?status=pending; d2: the same after the downgrade's own ending_at cut
  // its holds; e1, e2: the same by a price edit of big under small's price
  const { h, wallets } = await setup('2026-03-28T00:00:00Z', 'k', ['d1', 'd2', 'e1', 'e2']);
  try {
    const holds = {};
    for (const c of ['d1', 'd2', 'e1', 'e2']) {
      holds[c] = await h.hold(c);
      assert.deepEqual([holds[c].status, holds[c].expires_at], ['authorized', '2026-04-04T00:00:00Z'], c);
      assert.equal((await h.subscribe(c, 'small', c)).subscription.next_plan_code, 'small', c);
    }
    for (const c of ['d2', 'e2']) {
      const r = await pendingEnd(h, c, '2026-04-02T00:00:00Z');
      assert.equal(r.status, 200, await r.text());
      // the external id has no live subscription after it: the hold is bounded by it
      assert.equal((await h.holdNow(holds[c])).expires_at, '2026-04-02T00:00:00Z', c);
    }
    for (const c of ['d1', 'd2']) {
      const r = await h.t.api(`/api/v1/subscriptions/${c}?status=pending`, { method: 'DELETE' });
      assert.equal(r.status, 200, await r.text());
    }
    const edited = await h.t.api('/api/v1/plans/big', { method: 'PUT', body: { plan: { amount_cents: 500 } } });
    assert.equal(edited.status, 200, await edited.text());
    for (const c of ['d1', 'd2', 'e1', 'e2']) {
      const s = (await h.get(`/api/v1/subscriptions/${c}`)).subscription;
      assert.deepEqual([s.status, s.plan_code, s.next_plan_code, s.ending_at], ['active', 'big', null, null], c);
      // the subscription goes on, with no end: the hold as it was asked for
      assert.deepEqual(await h.holdNow(holds[c]),
        { status: 'authorized', expires_at: '2026-04-04T00:00:00Z', held_amount_cents: 500 }, c);
      assert.equal(await h.ongoing(wallets[c]), 10000 - 500, c);
    }
    await h.advance('2026-04-03T00:00:00Z');
    for (const c of ['d1', 'd2', 'e1', 'e2']) {
      const captured = (await h.post(`/api/v1/authorizations/${holds[c].lago_id}/capture`, {})).authorization;
      assert.deepEqual([captured.status, captured.captured_amount_cents], ['captured', 500], c);
      assert.equal(await h.ongoing(wallets[c]), 10000 - 500, c);
    }
    await h.t.restart({ kill: true });
    for (const c of ['d1', 'd2', 'e1', 'e2']) {
      assert.equal((await h.holdNow(holds[c])).status, 'captured', c);
      await checkWalletLedger(h.t, wallets[c]);
    }
  } finally { await h.t.cleanup(); }
});

test('a canceled downgrade gives its holds back no further than the live subscription\'s own ending_at', async () => {
  const { h, wallets } = await setup('2026-03-28T00:00:00Z', 'm', ['b1']);
  try {
    const hold = await h.hold('b1');
    await h.subscribe('b1', 'small', 'b1');
    let r = await pendingEnd(h, 'b1', '2026-04-02T00:00:00Z');
    assert.equal(r.status, 200, await r.text());
    // the current one is given an end after the downgrade's: the external id still ends 04-02
    r = await h.t.api('/api/v1/subscriptions/b1', { method: 'PUT', body: { subscription: { ending_at: '2026-04-03T00:00:00Z' } } });
    assert.equal(r.status, 200, await r.text());
    assert.equal((await h.holdNow(hold)).expires_at, '2026-04-02T00:00:00Z');
    r = await h.t.api('/api/v1/subscriptions/b1?status=pending', { method: 'DELETE' });
    assert.equal(r.status, 200, await r.text());
    // now big runs to 04-03, and the hold with it
    assert.deepEqual(await h.holdNow(hold), { status: 'authorized', expires_at: '2026-04-03T00:00:00Z', held_amount_cents: 500 });
    await h.advance('2026-04-03T00:00:01Z');
    assert.deepEqual(await h.holdNow(hold), { status: 'expired', expires_at: '2026-04-03T00:00:00Z', held_amount_cents: 0 });
    assert.equal(await h.ongoing(wallets.b1), 10000);
    await checkWalletLedger(h.t, wallets.b1);
  } finally { await h.t.cleanup(); }
});

test('a plan change by POST /subscriptions that names an ending_at bounds the open holds, as PUT does', async () => {
  const { h, wallets } = await setup('2026-03-28T00:00:00Z', 'p', ['up', 'down'], [['dear', 9000]]);
  try {
    const holds = { up: await h.hold('up'), down: await h.hold('down') };
    // an upgrade, at once, and a downgrade at the period's end (04-01), each with an end
    await h.subscribe('up', 'dear', 'up', { ending_at: '2026-04-02T00:00:00Z' });
    await h.subscribe('down', 'small', 'down', { ending_at: '2026-04-02T12:00:00Z' });
    assert.deepEqual(await h.holdNow(holds.up), { status: 'authorized', expires_at: '2026-04-02T00:00:00Z', held_amount_cents: 500 });
    assert.deepEqual(await h.holdNow(holds.down), { status: 'authorized', expires_at: '2026-04-02T12:00:00Z', held_amount_cents: 500 });
    await h.advance('2026-04-03T00:00:00Z');
    for (const c of ['up', 'down']) {
      assert.deepEqual((await h.holdNow(holds[c])).status, 'expired', c);
      assert.equal(await h.ongoing(wallets[c]) >= 0, true, c);
      await checkWalletLedger(h.t, wallets[c]);
    }
    // nothing held any more: what the wallets show is only what was debited
    for (const c of ['up', 'down']) {
      const w = (await h.get(`/api/v1/wallets/${wallets[c]}`)).wallet;
      assert.equal(w.ongoing_balance_cents, w.balance_cents, c);
    }
  } finally { await h.t.cleanup(); }
});

// Found by an audit (audit 11): an ending_at moved later, or removed, left the open holds cut
// by the earlier end: their credits were given back at that end, and a capture after it was
// refused, while the subscription went on. Each now expires at min(its asked expiry, the end).
test('an ending_at moved later or removed gives the open holds back their expiry, as far as the new end', async () => {
  const { h, wallets } = await setup('2026-03-28T00:00:00Z', 'r', ['r1', 'r2', 'r3'], [['dear', 9000]]);
  try {
    const put = async (sub, ending_at) => {
      const r = await h.t.api(`/api/v1/subscriptions/${sub}`, { method: 'PUT', body: { subscription: { ending_at } } });
      const b = await r.json();
      assert.equal(r.status, 200, JSON.stringify(b));
      return b.subscription;
    };
    // asked for a week (the most a hold may ask), cut by an end in a day, then one in four
    const hold = {};
    for (const c of ['r1', 'r2']) {
      hold[c] = await h.hold(c);
      assert.equal(hold[c].expires_at, '2026-04-04T00:00:00Z', c);
      assert.equal((await put(c, '2026-03-29T00:00:00Z')).ending_at, '2026-03-29T00:00:00Z', c);
      assert.equal((await h.holdNow(hold[c])).expires_at, '2026-03-29T00:00:00Z', c);
      assert.equal((await put(c, '2026-04-01T00:00:00Z')).ending_at, '2026-04-01T00:00:00Z', c);
      assert.deepEqual(await h.holdNow(hold[c]),
        { status: 'authorized', expires_at: '2026-04-01T00:00:00Z', held_amount_cents: 500 }, c);
    }
    // the same by POST /subscriptions to the same plan with new overrides (audit 11: its
    // ending_at was dropped)
    hold.r3 = await h.hold('r3');
    const again = async (ending_at, amount_cents) =>
      (await h.subscribe('r3', 'big', 'r3', { plan_overrides: { amount_cents }, ending_at })).subscription;
    assert.equal((await again('2026-03-29T00:00:00Z', 4900)).ending_at, '2026-03-29T00:00:00Z');
    assert.equal((await h.holdNow(hold.r3)).expires_at, '2026-03-29T00:00:00Z');
    assert.equal((await again('2026-04-01T00:00:00Z', 4800)).ending_at, '2026-04-01T00:00:00Z');
    assert.equal((await h.holdNow(hold.r3)).expires_at, '2026-04-01T00:00:00Z');
    assert.equal((await again(null, 4700)).ending_at, null);
    // the end removed: by PUT, and by a plan change (an upgrade) naming ending_at: null
    assert.equal((await put('r1', null)).ending_at, null);
    const up = await h.subscribe('r2', 'dear', 'r2', { ending_at: null });
    assert.deepEqual([up.subscription.plan_code, up.subscription.ending_at], ['dear', null]);
    for (const c of ['r1', 'r2', 'r3']) {
      assert.deepEqual(await h.holdNow(hold[c]),
        { status: 'authorized', expires_at: '2026-04-04T00:00:00Z', held_amount_cents: 500 }, c);
    }
    // an end moved earlier cuts again, and one after the asked expiry gives no more than it
    await put('r1', '2026-03-30T00:00:00Z');
    assert.equal((await h.holdNow(hold.r1)).expires_at, '2026-03-30T00:00:00Z');
    await put('r1', '2026-04-20T00:00:00Z');
    assert.equal((await h.holdNow(hold.r1)).expires_at, '2026-04-04T00:00:00Z');
    // past the ends that were taken back, they are still captured
    await h.advance('2026-04-02T00:00:00Z');
    for (const c of ['r1', 'r2', 'r3']) {
      const captured = (await h.post(`/api/v1/authorizations/${hold[c].lago_id}/capture`, {})).authorization;
      assert.deepEqual([captured.status, captured.captured_amount_cents], ['captured', 500], c);
      await checkWalletLedger(h.t, wallets[c]);
    }
  } finally { await h.t.cleanup(); }
});

// Found by an audit (audit 7, findings 1-3): the holds were bounded by the current
// subscription's ending_at even when a scheduled downgrade goes on past it (the switch ends the
// current one, not the external id); a hold made while a downgrade with its own ending_at was
// scheduled was not bounded by that end; and once a time zone moved the switch past the
// downgrade's end (canceling it), the holds stayed cut at the canceled downgrade's end and a
// later PUT gave them their whole expiry back, past the switch where the external id ends.
// One rule now: a hold expires at the first of its asked expiry and the instant its external
// id's service ends.
test('the holds expire at the first of their asked expiry and the instant the external id\'s service ends', async () => {
  // switch of a downgrade: 02-01 in UTC; a hold asked for a week: 02-04
  const { h, wallets } = await setup('2026-01-28T00:00:00Z', 'q', ['n1', 'a1', 'b1', 'z1']);
  try {
    const put = async (sub, ending_at, query = '') => {
      const r = await h.t.api(`/api/v1/subscriptions/${sub}${query}`, { method: 'PUT', body: { subscription: { ending_at } } });
      const b = await r.json();
      assert.equal(r.status, 200, JSON.stringify(b));
      return b.subscription;
    };
    const hold = {};
    // n1: ends 02-03 (the hold made under it is cut), then a downgrade with no end of its own
    await put('n1', '2026-02-03T00:00:00Z');
    hold.n1 = await h.hold('n1');
    assert.equal(hold.n1.expires_at, '2026-02-03T00:00:00Z');
    let r = await h.subscribe('n1', 'small', 'n1', { ending_at: null });
    assert.equal(r.subscription.next_plan_code, 'small');
    assert.equal((await h.get('/api/v1/subscriptions/n1?status=pending')).subscription.ending_at, null);
    assert.equal((await h.holdNow(hold.n1)).expires_at, '2026-02-04T00:00:00Z');
    // a1: a downgrade ending 02-20, then the current one given an end after the switch
    hold.a1 = await h.hold('a1');
    await h.subscribe('a1', 'small', 'a1', { ending_at: '2026-02-20T00:00:00Z' });
    assert.equal((await put('a1', '2026-02-03T00:00:00Z')).ending_at, '2026-02-03T00:00:00Z');
    const a1next = (await h.get('/api/v1/subscriptions/a1?status=pending')).subscription;
    assert.deepEqual([a1next.plan_code, a1next.ending_at], ['small', '2026-02-20T00:00:00Z']);
    assert.equal((await h.holdNow(hold.a1)).expires_at, '2026-02-04T00:00:00Z');
    // b1: a downgrade ending 02-03, then a hold: bounded by that end
    await h.subscribe('b1', 'small', 'b1', { ending_at: '2026-02-03T00:00:00Z' });
    hold.b1 = await h.hold('b1');
    assert.equal(hold.b1.expires_at, '2026-02-03T00:00:00Z');
    // z1: a downgrade ending 02-01T03:00Z, then New York moves the switch to 05:00Z, past it:
    // the downgrade never starts and the external id ends at the switch
    hold.z1 = await h.hold('z1');
    await h.subscribe('z1', 'small', 'z1', { ending_at: '2026-02-01T03:00:00Z' });
    assert.equal((await h.holdNow(hold.z1)).expires_at, '2026-02-01T03:00:00Z');
    await h.post('/api/v1/customers', { customer: { external_id: 'z1', currency: 'USD', timezone: 'America/New_York' } });
    assert.equal((await h.holdNow(hold.z1)).expires_at, '2026-02-01T05:00:00Z');
    await put('z1', '2026-02-10T00:00:00Z');
    assert.equal((await h.holdNow(hold.z1)).expires_at, '2026-02-01T05:00:00Z');
    await h.t.restart({ kill: true });
    await h.advance('2026-02-03T12:00:00Z');
    // n1 and a1 are served on small: their holds are captured
    for (const c of ['n1', 'a1']) {
      const s = (await h.get(`/api/v1/subscriptions/${c}`)).subscription;
      assert.deepEqual([s.status, s.plan_code], ['active', 'small'], c);
      const captured = (await h.post(`/api/v1/authorizations/${hold[c].lago_id}/capture`, {})).authorization;
      assert.deepEqual([captured.status, captured.captured_amount_cents], ['captured', 500], c);
    }
    // b1 and z1 ended: nothing live, their holds expired and their credits free
    for (const c of ['b1', 'z1']) {
      assert.equal((await h.t.api(`/api/v1/subscriptions/${c}`)).status, 404, c);
      assert.deepEqual((await h.holdNow(hold[c])).status, 'expired', c);
      const w = (await h.get(`/api/v1/wallets/${wallets[c]}`)).wallet;
      assert.equal(w.ongoing_balance_cents, w.balance_cents, c);
    }
    for (const c of ['n1', 'a1', 'b1', 'z1']) await checkWalletLedger(h.t, wallets[c]);
  } finally { await h.t.cleanup(); }
});
