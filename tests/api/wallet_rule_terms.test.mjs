// Recurring rules' terms, each test on a server and test clock of its own: how long a weekly
// rule's grant lasts, how a rollover cap in credits becomes money, a rule sent back with its
// lago_id, the longest grant_expires_after, an empty transaction name, and a threshold rule
// whose top-up leaves the balance at or below its threshold. Found by an audit of recurring
// rules over months of test-clock time (audit 4).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

// A server with its organization's clock at `clock`, and the calls the tests make on it.
const server = async (clock) => {
  const t = await startWithOrg(['--test-clock', clock]);
  const post = (path, body) => t.api(path, { method: 'POST', body });
  const put = (path, body) => t.api(path, { method: 'PUT', body });
  const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
  return {
    t, post, put, ok,
    advance: async (to) => ok(await post('/api/v1/test_clock/advance', { test_clock: { to } })),
    customer: async (external_id, currency = 'USD') => ok(await post('/api/v1/customers', { customer: { external_id, currency } })),
    wallet: async (id) => (await ok(await t.api(`/api/v1/wallets/${id}`))).wallet,
    newWallet: async (wallet) => (await ok(await post('/api/v1/wallets', { wallet }))).wallet,
    txs: async (id) => (await ok(await t.api(`/api/v1/wallets/${id}/wallet_transactions?per_page=100`))).wallet_transactions,
  };
};

// The docs: a grant ends at the start of the local day the duration reaches. A weekly rule's
// months were counted to the day of the month of its anchor (the wallet's creation, or
// started_at), which means nothing for a weekly rule: grants made on Feb 7, 14, 21 and 28 by a
// rule anchored on Jan 31 all ended on Mar 31. A monthly rule's grants still end on its
// anniversary day (Feb 28 + P1M is Mar 31 for a rule of the 31st).
test("a weekly rule's grant lasting months ends that long after its own day", async () => {
  const s = await server('2026-01-24T10:00:00Z'); // a Saturday
  try {
    await s.customer('c');
    const weekly = await s.newWallet({ external_customer_id: 'c', currency: 'USD', rate_amount: '1', name: 'Weekly',
      recurring_transaction_rules: [{ trigger: 'interval', interval: 'weekly', granted_credits: '1', grant_expires_after: 'P1M' }] });
    const monthly = await s.newWallet({ external_customer_id: 'c', currency: 'USD', rate_amount: '1', name: 'Monthly',
      recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', granted_credits: '1', grant_expires_after: 'P1M', started_at: '2026-01-31T00:00:00Z' }] });
    for (const day of ['01-31', '02-07', '02-14', '02-21', '02-28']) await s.advance(`2026-${day}T12:00:00Z`);
    const ends = async (id) => (await s.txs(id)).filter((x) => x.transaction_status === 'granted').map((x) => [x.created_at.slice(0, 10), x.expiration_at.slice(0, 10)]).sort();
    assert.deepEqual(await ends(weekly.lago_id), [
      ['2026-01-31', '2026-02-28'], // a month after Jan 31: February's last day
      ['2026-02-07', '2026-03-07'],
      ['2026-02-14', '2026-03-14'],
      ['2026-02-21', '2026-03-21'],
      ['2026-02-28', '2026-03-28'],
    ]);
    assert.deepEqual(await ends(monthly.lago_id), [['2026-01-31', '2026-02-28'], ['2026-02-28', '2026-03-31']]);
  } finally {
    await s.t.cleanup();
  }
});

// A bound in credits becomes money rounded down, so that no more than it ever passes: a
// rollover's max_credits (10.6 yen carried 11; 0.5 credits at 0.33 USD, 16.5 cents, carried
// 17), an overdraft (0.5 credits at 0.33 let 17 cents be overdrawn), and a threshold, which a
// balance of 17 cents (0.51515 credits) is not at or below. Amounts (a top-up, a rule's credits,
// a target) still round half up, as Lago's.
test('a rollover cap, an overdraft and a threshold in credits are rounded down to the minor unit', async () => {
  const s = await server('2026-01-10T00:00:00Z');
  try {
    await s.customer('j', 'JPY');
    await s.customer('u', 'USD');
    const rule = (granted_credits, rollover_max_credits) => [{ trigger: 'interval', interval: 'monthly', granted_credits, grant_expires_after: 'P1M', rollover: 'max_credits', rollover_max_credits }];
    const yen = await s.newWallet({ external_customer_id: 'j', currency: 'JPY', rate_amount: '1', recurring_transaction_rules: rule('21', '10.6') });
    const usd = await s.newWallet({ external_customer_id: 'u', currency: 'USD', rate_amount: '0.33', recurring_transaction_rules: rule('10', '0.5') });
    await s.advance('2026-02-11T00:00:00Z');
    await s.advance('2026-03-11T00:00:00Z');
    const carried = async (id) => {
      const grants = (await s.txs(id)).filter((x) => x.transaction_status === 'granted').sort((a, b) => a.created_at.localeCompare(b.created_at));
      return grants[0].remaining_amount_cents;
    };
    assert.equal(await carried(yen.lago_id), 10); // at most 10.6 yen: 10
    assert.equal(await carried(usd.lago_id), 16); // at most 16.5 cents: 16 (0.48485 credits)

    // an overdraft of 0.5 credits at 0.33: 16 cents
    const bm = (await s.ok(await s.post('/api/v1/billable_metrics', { billable_metric: { code: 'u', name: 'u', aggregation_type: 'sum_agg', field_name: 'n' } }))).billable_metric;
    await s.ok(await s.post('/api/v1/plans', { plan: { code: 'p', name: 'p', interval: 'monthly', amount_cents: 0, amount_currency: 'USD',
      charges: [{ billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '0.01' } }] } })); // a cent a unit
    for (const c of ['soft', 'auto']) {
      await s.customer(c);
      await s.ok(await s.post('/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'p', external_id: `${c}_sub` } }));
    }
    const soft = await s.newWallet({ external_customer_id: 'soft', currency: 'USD', rate_amount: '0.33', limit: 'soft', overdraft_credits: '0.5' });
    const event = (sub, n) => s.post('/api/v1/events', { event: { transaction_id: `e${sub}${n}${Math.random()}`, external_subscription_id: sub, code: 'u', properties: { n } } });
    assert.equal((await event('soft_sub', 17)).status, 402); // 17 cents: past 16
    assert.equal((await event('soft_sub', 16)).status, 200);
    assert.equal((await s.wallet(soft.lago_id)).overdrawn_cents, 16);

    // a threshold of 0.5 credits at 0.33: a balance of 17 cents is above it, 16 at it
    const auto = await s.newWallet({ external_customer_id: 'auto', currency: 'USD', rate_amount: '0.33', granted_credits: '1', // 33 cents
      recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '0.5', granted_credits: '1' }] });
    const fired = async () => (await s.txs(auto.lago_id)).filter((x) => x.source === 'threshold').length;
    await s.ok(await event('auto_sub', 16)); // 17 cents left
    assert.equal(await fired(), 0);
    await s.ok(await event('auto_sub', 1)); // 16 cents: at the threshold
    assert.equal(await fired(), 1);
  } finally {
    await s.t.cleanup();
  }
});

// grant_expires_after takes up to 100 years counted as 37,200 days, as its refusal says, in
// any number of digits: an audit found P10000D (27 years) refused for its five digits while
// P5314W (37,198 days) was taken.
test('grant_expires_after takes any number of digits up to 37,200 days', async () => {
  const s = await server('2026-01-10T00:00:00Z');
  try {
    await s.customer('c');
    const send = async (grant_expires_after) => {
      const r = await s.post('/api/v1/wallets', { wallet: { external_customer_id: 'c', currency: 'USD', rate_amount: '1',
        recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', granted_credits: '1', grant_expires_after }] } });
      const b = await r.json();
      if (r.status === 200) await s.ok(await s.t.api(`/api/v1/wallets/${b.wallet.lago_id}`, { method: 'DELETE' }));
      return r.status === 200 ? b.wallet.recurring_transaction_rules[0].grant_expires_after : [r.status, b.error_details, b.message];
    };
    for (const d of ['P9999D', 'P10000D', 'P36500D', 'P37200D', 'P5314W2D', 'P1200M', 'P0100Y']) assert.equal(await send(d), d);
    const message = 'grant_expires_after is an ISO 8601 duration of whole years, months, weeks and days (P1M, P30D, P1Y6M), at least a day and at most 100 years (1,200 months, 37,200 days)';
    for (const d of ['P37201D', 'P5315W', 'P1201M', 'P99999999999999999999D'])
      assert.deepEqual(await send(d), [422, { recurring_transaction_rules: ['invalid_recurring_rule'] }, message], d);
  } finally {
    await s.t.cleanup();
  }
});

// Lago's RecurringTransactionRule and WalletTransaction validate their names' length from 1 to
// 255, allowing null: an empty name is refused (Lago's locale names no code for it: Tally's
// value_is_invalid, with a message), where Tally took it and named every transaction "". An
// audit found it on a rule's transaction_name; a top-up's name and a new wallet's
// transaction_name name the same transactions.
test('an empty transaction name is refused: a rule\'s, a top-up\'s, a new wallet\'s', async () => {
  const s = await server('2026-01-10T00:00:00Z');
  try {
    await s.customer('c');
    const refused = async (r, field) => {
      const b = await r.json();
      assert.equal(r.status, 422, JSON.stringify(b));
      assert.deepEqual(b.error_details, { [field]: ['value_is_invalid'] });
      assert.equal(typeof b.message, 'string');
    };
    const rule = (transaction_name) => [{ trigger: 'interval', interval: 'monthly', granted_credits: '1', transaction_name }];
    await refused(await s.post('/api/v1/wallets', { wallet: { external_customer_id: 'c', currency: 'USD', rate_amount: '1', recurring_transaction_rules: rule('') } }), 'transaction_name');
    await refused(await s.post('/api/v1/wallets', { wallet: { external_customer_id: 'c', currency: 'USD', rate_amount: '1', granted_credits: '1', transaction_name: '' } }), 'transaction_name');
    const w = await s.newWallet({ external_customer_id: 'c', currency: 'USD', rate_amount: '1', recurring_transaction_rules: rule(null) });
    assert.equal(w.recurring_transaction_rules[0].transaction_name, null);
    await refused(await s.put(`/api/v1/wallets/${w.lago_id}`, { wallet: { recurring_transaction_rules: rule('') } }), 'transaction_name');
    await refused(await s.post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: w.lago_id, granted_credits: '1', name: '' } }), 'name');
    // one character, or only a space, is a name (Lago's length counts it)
    assert.equal((await s.ok(await s.put(`/api/v1/wallets/${w.lago_id}`, { wallet: { recurring_transaction_rules: rule(' ') } }))).wallet.recurring_transaction_rules[0].transaction_name, ' ');
    const [made] = (await s.ok(await s.post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: w.lago_id, granted_credits: '1', name: 'x' } }))).wallet_transactions;
    assert.equal(made.name, 'x');
    assert.equal((await s.txs(w.lago_id)).length, 1); // nothing of the refusals was recorded
  } finally {
    await s.t.cleanup();
  }
});

// Lago's Wallets::RecurringTransactionRules::UpdateService: a rule sent with the lago_id of one
// of the wallet's active rules updates that rule in place (update!: its lago_id and created_at
// kept, and what the request leaves out kept too); a rule without one, or with a lago_id naming
// no active rule of the wallet, is created; the rules not sent end. An audit found every rule
// sent back given a new lago_id and created_at, even unchanged.
test('a rule sent back with its lago_id is updated in place; one naming no active rule is new', async () => {
  const s = await server('2026-01-10T00:00:00Z');
  try {
    await s.customer('c');
    const w = await s.newWallet({ external_customer_id: 'c', currency: 'USD', rate_amount: '1',
      recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', granted_credits: '10', transaction_name: 'Monthly',
        transaction_metadata: [{ key: 'k', value: 'v' }], started_at: '2026-01-15T00:00:00Z' }] });
    const [r0] = w.recurring_transaction_rules;
    assert.equal(r0.created_at, '2026-01-10T00:00:00Z');
    await s.advance('2026-01-20T00:00:00Z');
    const rules = async (wallet) => (await s.ok(await s.put(`/api/v1/wallets/${w.lago_id}`, { wallet }))).wallet.recurring_transaction_rules;

    // unchanged, as read
    let [r] = await rules({ recurring_transaction_rules: [r0] });
    assert.deepEqual(r, r0);
    // changed: the same rule, what was left out kept
    [r] = await rules({ recurring_transaction_rules: [{ lago_id: r0.lago_id, trigger: 'interval', interval: 'monthly', granted_credits: '20' }] });
    assert.deepEqual(r, { ...r0, granted_credits: '20.0' });
    // null clears a field, as update! sets it
    [r] = await rules({ recurring_transaction_rules: [{ lago_id: r0.lago_id, trigger: 'interval', interval: 'monthly', transaction_name: null }] });
    assert.deepEqual(r, { ...r0, granted_credits: '20.0', transaction_name: null });
    // the rule's schedule and terms: started_at (Jan 15) granted 10; Feb 15 grants 20
    await s.advance('2026-02-16T00:00:00Z');
    assert.deepEqual((await s.txs(w.lago_id)).map((x) => [x.created_at.slice(0, 10), x.amount, x.name]).sort(),
      [['2026-01-20', '10.0', 'Monthly'], ['2026-02-16', '20.0', null]]);
    // kept across a restart
    await s.t.restart({ kill: true });
    assert.deepEqual((await s.wallet(w.lago_id)).recurring_transaction_rules, [r]);
    // an update without the rules leaves them as they are
    assert.deepEqual(await rules({ name: 'Renamed' }), [r]);

    // a lago_id that names no rule of the wallet: a new rule, the old one ends
    const [other] = await rules({ recurring_transaction_rules: [{ lago_id: '00000000-0000-4000-8000-000000000000', trigger: 'threshold', threshold_credits: '1', granted_credits: '1' }] });
    assert.notEqual(other.lago_id, r0.lago_id);
    assert.notEqual(other.lago_id, '00000000-0000-4000-8000-000000000000');
    assert.equal(other.created_at, '2026-02-16T00:00:00Z');
    assert.deepEqual([other.trigger, other.transaction_name, other.transaction_metadata], ['threshold', null, []]);
    // the old rule's lago_id no longer names an active rule: new again
    const [again] = await rules({ recurring_transaction_rules: [{ lago_id: r0.lago_id, trigger: 'interval', interval: 'weekly', granted_credits: '1' }] });
    assert.ok(![r0.lago_id, other.lago_id].includes(again.lago_id));
    // without a lago_id: new
    const [fresh] = await rules({ recurring_transaction_rules: [{ trigger: 'interval', interval: 'weekly', granted_credits: '1' }] });
    assert.notEqual(fresh.lago_id, again.lago_id);
    // a rule past its expiration_at is no longer active: its lago_id makes a new one
    const [ending] = await rules({ recurring_transaction_rules: [{ lago_id: fresh.lago_id, trigger: 'interval', interval: 'weekly', expiration_at: '2026-02-17T00:00:00Z' }] });
    assert.equal(ending.lago_id, fresh.lago_id);
    await s.advance('2026-02-18T00:00:00Z');
    const [after] = await rules({ recurring_transaction_rules: [{ lago_id: fresh.lago_id, trigger: 'interval', interval: 'weekly', granted_credits: '1' }] });
    assert.notEqual(after.lago_id, fresh.lago_id);
    assert.equal(after.expiration_at, null);
  } finally {
    await s.t.cleanup();
  }
});

// A threshold rule fires once per fall to its threshold, as before, but is armed again once its
// own top-up has settled (granted credits at once, paid ones once paid): the next fall at or
// below the threshold fires again, where it waited for the balance to rise above first, for
// ever when its top-up does not lift it there (an audit: a rule granting 5 at a threshold of
// 10 fired once at 2 and never again). Lago's ThresholdTopUpService keeps no memory and runs
// after every balance refresh, its own top-up's included. A paid top-up still pending blocks
// the rule while it is due counting it (Lago's pending + ongoing <= threshold). The same,
// whatever restarts come between.
test('a threshold rule whose top-up leaves the balance at or below it fires again at the next fall', async () => {
  const s = await server('2026-01-10T00:00:00Z');
  try {
    const bm = (await s.ok(await s.post('/api/v1/billable_metrics', { billable_metric: { code: 'u', name: 'u', aggregation_type: 'sum_agg', field_name: 'n' } }))).billable_metric;
    await s.ok(await s.post('/api/v1/plans', { plan: { code: 'p', name: 'p', interval: 'monthly', amount_cents: 0, amount_currency: 'USD',
      charges: [{ billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } }));
    let n = 0;
    const use = async (sub, units) => s.ok(await s.post('/api/v1/events', { event: { transaction_id: `e${n++}`, external_subscription_id: sub, code: 'u', properties: { n: units } } }));
    const threshold = async (id) => (await s.txs(id)).filter((x) => x.source === 'threshold').map((x) => [x.transaction_status, x.amount, x.status]).reverse();
    for (const restart of [false, true]) {
      const c = restart ? 'granted_restart' : 'granted';
      await s.customer(c);
      await s.ok(await s.post('/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'p', external_id: c } }));
      const w = await s.newWallet({ external_customer_id: c, currency: 'USD', rate_amount: '1', granted_credits: '12',
        recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '10', method: 'fixed', granted_credits: '5' }] });
      const balances = [];
      for (const units of [10, 1, 1, 3]) {
        await use(c, units);
        balances.push((await s.wallet(w.lago_id)).balance_cents / 100);
        if (restart) await s.t.restart({ kill: true });
      }
      // 12 - 10 = 2: +5, 7 (once, not again at once); 6: +5, 11 (above); 10: +5, 15; 12
      assert.deepEqual(balances, [7, 11, 15, 12], c);
      assert.equal((await threshold(w.lago_id)).length, 3, c);
    }

    // paid, to a target at the threshold: its top-up pending blocks it; paid, the next fall fires
    for (const restart of [false, true]) {
      const c = restart ? 'paid_restart' : 'paid';
      await s.customer(c);
      await s.ok(await s.post('/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'p', external_id: c } }));
      const w = await s.newWallet({ external_customer_id: c, currency: 'USD', rate_amount: '1', granted_credits: '12',
        recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '10', method: 'target', target_ongoing_balance: '10' }] });
      const step = async () => { if (restart) await s.t.restart({ kill: true }); };
      await use(c, 10); // 2: buys 8, pending (2 + 8 <= 10: due, but its own top-up waits)
      await step();
      await use(c, 1); // 1: nothing
      assert.deepEqual(await threshold(w.lago_id), [['purchased', '8.0', 'pending']], c);
      await step();
      const [bought] = (await s.txs(w.lago_id)).filter((x) => x.status === 'pending');
      await s.ok(await s.put(`/api/v1/invoices/${bought.lago_invoice_id}`, { invoice: { payment_status: 'succeeded' } }));
      assert.equal((await s.wallet(w.lago_id)).balance_cents, 900); // paid: 9, nothing bought by the payment
      assert.equal((await threshold(w.lago_id)).length, 1, c);
      await step();
      await use(c, 1); // 8: buys 2
      assert.deepEqual(await threshold(w.lago_id), [['purchased', '8.0', 'settled'], ['purchased', '2.0', 'pending']], c);
    }
  } finally {
    await s.t.cleanup();
  }
});

// Found by a restart-twin audit: a rule that fired, was lifted above its threshold by a pending
// purchase and brought due again by that purchase's failed payment, fires at the next usage
// (Lago's ThresholdTopUpService checks the balance at every usage); a restart in between took
// it for fired, and the restarted server gave nothing, then refused (402) what the other paid.
test('a rule brought due again by a failed purchase fires at the next usage, restart or not', async () => {
  const s = await server('2026-01-15T00:00:00Z');
  try {
    const bm = (await s.ok(await s.post('/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'calls', aggregation_type: 'count_agg' } }))).billable_metric;
    await s.ok(await s.post('/api/v1/plans', { plan: { code: 'p', name: 'p', interval: 'monthly', amount_cents: 0, amount_currency: 'USD',
      charges: [{ billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } }));
    let n = 0;
    const calls = async (c, k) => s.ok(await s.post('/api/v1/events/batch', { events: Array.from({ length: k }, () => ({ transaction_id: `e${n++}`, external_subscription_id: c, code: 'calls' })) }));
    for (const restart of [null, 'term', 'kill']) {
      const c = `failed_${restart}`;
      await s.customer(c);
      await s.ok(await s.post('/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'p', external_id: c } }));
      const w = await s.newWallet({ external_customer_id: c, currency: 'USD', rate_amount: '1', name: c, granted_credits: '100',
        recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '50', granted_credits: '20' }] });
      await calls(c, 60); // 40: fires, 60
      const bought = (await s.ok(await s.post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: w.lago_id, paid_credits: '100' } }))).wallet_transactions[0];
      await calls(c, 20); // 40, 140 with the pending purchase: not due
      await s.ok(await s.put(`/api/v1/invoices/${bought.lago_invoice_id}`, { invoice: { payment_status: 'failed' } })); // 40: due again
      if (restart) await s.t.restart({ kill: restart === 'kill' });
      await calls(c, 1); // 39: fires, 59
      const fired = (await s.txs(w.lago_id)).filter((x) => x.source === 'threshold');
      assert.equal(fired.length, 2, c);
      assert.equal((await s.wallet(w.lago_id)).balance_cents, 5900, c);
    }
  } finally {
    await s.t.cleanup();
  }
});
