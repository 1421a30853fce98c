// What the clock does to a wallet, seen in the order it happens: a grant that expires takes the
// balance down like a debit does, so a threshold rule fires in the very advance (it waited for
// the next debit, and a hard-limited wallet refused that one, so it never came); and a test
// clock that jumps past a wallet's expiry and a later grant's reminder day records no reminder
// for credits that had already expired with their wallet.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

let t;
const post = async (path, body) => t.api(path, { method: 'POST', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const advance = async (to) => ok(await post('/api/v1/test_clock/advance', { test_clock: { to } }));
const wallet = async (id) => (await ok(await t.api(`/api/v1/wallets/${id}`))).wallet;
const txs = async (id) => (await ok(await t.api(`/api/v1/wallets/${id}/wallet_transactions?per_page=100`))).wallet_transactions;

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-01-01T00:00:00Z']);
  const bm = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' } }))).billable_metric;
  await ok(await post('/api/v1/plans', { plan: { code: 'calls', name: 'Calls', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'stuck', plan_code: 'calls', external_id: 'stuck_sub', subscription_at: '2026-01-01T00:00:00Z' } }));
});
after(async () => { await t.cleanup(); });

// A test of its own on a server of its own, its organization's test clock at `clock`: fn gets
// send (a fetch: method from the body, unless given) and call (the same, which must answer
// 200: its parsed body).
async function withOwnOrg(clock, fn) {
  const own = await startWithOrg(['--test-clock', clock]);
  try {
    const send = (path, body, method = body ? 'POST' : 'GET') => own.api(path, { method, body });
    const call = async (path, body, method) => { const r = await send(path, body, method); const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
    await fn({ own, send, call });
  } finally {
    await own.cleanup();
  }
}

test('a grant that expires below the threshold fires the rule in the same advance, so a hard limit does not lock the wallet', async () => {
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'stuck', currency: 'USD', rate_amount: '1', name: 'Prepaid', limit: 'hard',
    recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '20', method: 'fixed', granted_credits: '50' }] } }))).wallet;
  await ok(await post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: w.lago_id, granted_credits: '30', expiration_at: '2026-02-01T00:00:00Z' } }));
  assert.equal((await wallet(w.lago_id)).credits_balance, '30.0');
  await advance('2026-02-01T00:00:00Z');
  // 30 expired (0 <= 20): the rule's 50 granted in the same command
  assert.equal((await wallet(w.lago_id)).credits_balance, '50.0');
  assert.equal((await txs(w.lago_id)).filter((x) => x.source === 'threshold').length, 1);
  const r = await post('/api/v1/events', { event: { transaction_id: 'after_expiry', external_subscription_id: 'stuck_sub', code: 'calls' } });
  assert.equal(r.status, 200);
  assert.equal((await wallet(w.lago_id)).credits_balance, '49.0');
  await checkWalletLedger(t, w.lago_id);
});

test('a jump past a wallet\'s expiry and a later grant\'s reminder day records no reminder for credits gone with the wallet', async () => {
  await ok(await post('/api/v1/customers', { customer: { external_id: 'leaving', name: 'Leaving' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'leaving', currency: 'USD', rate_amount: '1', name: 'Ends', expiration_at: '2026-03-15T00:00:00Z' } }))).wallet;
  await ok(await post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: w.lago_id, granted_credits: '40', expiration_at: '2026-04-20T00:00:00Z' } }));
  // its 30-day reminder is due 2026-03-21, after the wallet (and so the grant) ended on 03-15
  await advance('2026-04-01T00:00:00Z');
  assert.equal((await wallet(w.lago_id)).status, 'terminated');
  const events = (await ok(await t.api('/api/v1/webhook_events'))).webhook_events;
  assert.deepEqual(events.filter((e) => e.data?.lago_wallet_id === w.lago_id), []);
});

// A declined payment does not fire the threshold rule again in the very request that declines
// it: as Lago's, the rule backs off for an hour after a declined payment of its top-up, then
// fires at the next fall it sees. Found by an audit: each PUT of payment_status failed made
// the next pending top-up and credit invoice at once, so a client that collects every new
// invoice retried a declined card without end.
test('a declined threshold top-up backs the rule off for an hour', async () => {
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'declined', plan_code: 'calls', external_id: 'declined_sub' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'declined', currency: 'USD', rate_amount: '1', name: 'Card', granted_credits: '20',
    recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '5', method: 'fixed', paid_credits: '10', invoice_requires_successful_payment: true }] } }))).wallet;
  let k = 0;
  const calls = async (count) => ok(await post('/api/v1/events/batch', { events: Array.from({ length: count }, () => ({ transaction_id: `declined${k++}`, external_subscription_id: 'declined_sub', code: 'calls' })) }));
  const invoices = async () => (await ok(await t.api('/api/v1/invoices?external_customer_id=declined'))).invoices;
  const pending = async () => (await txs(w.lago_id)).filter((x) => x.status === 'pending');
  await calls(16); // 4 left: the rule buys 10, waiting for the payment
  assert.equal((await invoices()).length, 1);
  const [first] = await pending();
  await ok(await t.api(`/api/v1/invoices/${first.lago_invoice_id}`, { method: 'PUT', body: { invoice: { payment_status: 'failed' } } }));
  assert.equal((await invoices()).length, 1); // not bought again by the decline itself
  assert.deepEqual(await pending(), []);
  await calls(1); // within the hour: still backing off
  assert.equal((await invoices()).length, 1);
  // a restart keeps that the rule has not bought for this fall (an audit found it disarmed
  // after one: the wallet sat below its threshold and the rule never fired again)
  await t.restart({ kill: true });
  const now = Date.parse((await ok(await t.api('/api/v1/test_clock'))).test_clock.now);
  await advance(new Date(now + 3601 * 1000).toISOString());
  assert.equal((await invoices()).length, 1); // nothing fell meanwhile
  await calls(1); // the next fall after the hour fires it
  assert.equal((await invoices()).length, 2);
  assert.equal((await pending()).length, 1);
  await checkWalletLedger(t, w.lago_id);
});

// Found by an input audit: one advance made at most 1,000 anniversaries of an interval rule (a
// sweep's bound), so a 30-year jump of a weekly rule answered `now` 2056 with 1,000 credits,
// and the next advance of a second made the other 565. The advance now sweeps until caught up.
test('a test clock jump over more anniversaries than a sweep makes handles every one of them', async () => {
  await withOwnOrg('2026-01-01T00:00:00Z', async ({ own, call }) => {
    await call('/api/v1/customers', { customer: { external_id: 'weekly', currency: 'USD' } });
    const w = (await call('/api/v1/wallets', { wallet: { external_customer_id: 'weekly', currency: 'USD', rate_amount: '1', name: 'Weekly',
      recurring_transaction_rules: [{ trigger: 'interval', interval: 'weekly', granted_credits: '1' }] } })).wallet;
    await call('/api/v1/test_clock/advance', { test_clock: { to: '2056-01-01T00:00:00Z' } });
    // 10,957 days: 1,565 whole weeks after the wallet's creation
    assert.equal((await call(`/api/v1/wallets/${w.lago_id}`)).wallet.credits_balance, '1565.0');
    await call('/api/v1/test_clock/advance', { test_clock: { to: '2056-01-01T00:00:01Z' } });
    assert.equal((await call(`/api/v1/wallets/${w.lago_id}`)).wallet.credits_balance, '1565.0');
    await checkWalletLedger(own, w.lago_id);
  });
});

// Found by a rules audit: grant_expires_after P7974Y was taken (each part up to 9999), and at the
// first anniversary the grant's end fell past 9999-12-31: the anniversary failed, so every
// advance of the organization answered 500 (and on the real clock, every sweep failed). Now a
// grant lasts at most 100 years, and an end past the last instant is no end.
test('grant_expires_after is at most 100 years, and an end past the year 9999 makes a grant with no end, not a failure', async () => {
  await withOwnOrg('9990-01-01T00:00:00Z', async ({ own, send, call }) => {
    await call('/api/v1/customers', { customer: { external_id: 'far', currency: 'USD' } });
    const rule = (after) => ({ wallet: { external_customer_id: 'far', currency: 'USD', rate_amount: '1', name: `far ${after}`,
      recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', granted_credits: '1', grant_expires_after: after }] } });
    for (const after of ['P101Y', 'P7974Y', 'P1201M', 'PT1H']) {
      const r = await send('/api/v1/wallets', rule(after));
      const b = await r.json();
      assert.deepEqual([r.status, b.error_details], [422, { recurring_transaction_rules: ['invalid_recurring_rule'] }], after);
      assert.match(b.message, /100 years/, after);
    }
    const w = (await call('/api/v1/wallets', rule('P100Y'))).wallet;
    await call('/api/v1/test_clock/advance', { test_clock: { to: '9990-03-01T00:00:00Z' } });
    assert.equal((await call(`/api/v1/wallets/${w.lago_id}`)).wallet.credits_balance, '2.0');
    const grants = (await call(`/api/v1/wallets/${w.lago_id}/wallet_transactions`)).wallet_transactions;
    assert.deepEqual(grants.map((x) => x.expiration_at), [null, null]);
    await checkWalletLedger(own, w.lago_id);
  });
});

// Found by a rules audit: a rule past its expiration_at stopped firing but was still listed,
// `status: active`. Lago lists a wallet's active rules only, and its clock terminates expired
// ones: the wallet answers without it, in GET, the lists and a command's answer alike.
test('a rule past its expiration_at is no longer listed on its wallet', async () => {
  await withOwnOrg('2026-01-01T00:00:00Z', async ({ call }) => {
    await call('/api/v1/customers', { customer: { external_id: 'ends', currency: 'USD' } });
    const w = (await call('/api/v1/wallets', { wallet: { external_customer_id: 'ends', currency: 'USD', rate_amount: '1', name: 'Ends',
      recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '5', granted_credits: '10', expiration_at: '2026-02-01T00:00:00Z' }] } })).wallet;
    assert.equal(w.recurring_transaction_rules.length, 1);
    await call('/api/v1/test_clock/advance', { test_clock: { to: '2026-01-31T23:59:59Z' } });
    assert.equal((await call(`/api/v1/wallets/${w.lago_id}`)).wallet.recurring_transaction_rules[0].status, 'active');
    await call('/api/v1/test_clock/advance', { test_clock: { to: '2026-02-01T00:00:00Z' } });
    assert.deepEqual((await call(`/api/v1/wallets/${w.lago_id}`)).wallet.recurring_transaction_rules, []);
    assert.deepEqual((await call('/api/v1/wallets?external_customer_id=ends')).wallets[0].recurring_transaction_rules, []);
    assert.deepEqual((await call(`/api/v1/wallets/${w.lago_id}`, { wallet: { name: 'Ended' } }, 'PUT')).wallet.recurring_transaction_rules, []);
  });
});

// Found by an audit of the advance's repeated sweep: each sweep made at most 1,000
// anniversaries of a wallet and then expired its grants and ended it as of the advance's end,
// before the remaining anniversaries ran: grant 1,000 expired before anniversary 1,001 could
// roll it over, a wallet expiring within the jump skipped the anniversaries before its end,
// and a grant was reminded of a date, then rolled over and reminded again. A wallet still
// behind now waits, as it is, for the next sweep.
test('a jump over more than 1,000 anniversaries rolls over, expires and reminds as steps would', async () => {
  const week = 7 * 86400e3, start = Date.parse('2026-01-01T00:00:00Z');
  const at = (weeks, extraMs = 0) => new Date(start + weeks * week + extraMs).toISOString();
  const scenario = async (rule, wallet, jumps, check) => {
    await withOwnOrg('2026-01-01T00:00:00Z', async ({ call }) => {
      await call('/api/v1/customers', { customer: { external_id: 'c', currency: 'USD' } });
      const w = (await call('/api/v1/wallets', { wallet: { external_customer_id: 'c', currency: 'USD', rate_amount: '1', name: 'w', ...wallet,
        recurring_transaction_rules: [{ trigger: 'interval', interval: 'weekly', granted_credits: '10', method: 'fixed', ...rule }] } })).wallet;
      for (const to of jumps) await call('/api/v1/test_clock/advance', { test_clock: { to } });
      await check(call, w); // (the ledger: checked after every command by the asan build's invariants)
    });
  };
  // rollover: all over 1,001 weeks: the live grant holds its 10 and the two before it, 30
  await scenario({ grant_expires_after: 'P7D', rollover: 'all' }, { granted_credits: '10' }, [at(1001, 3600e3)], async (call, w) => {
    assert.equal((await call(`/api/v1/wallets/${w.lago_id}`)).wallet.credits_balance, '30.0');
  });
  // a wallet that expires after 1,003 anniversaries, in one jump: all 1,003 made, then voided
  await scenario({}, { expiration_at: at(1003, 3 * 86400e3) }, [at(1005, 3600e3)], async (call, w) => {
    const list = await call(`/api/v1/wallets/${w.lago_id}/wallet_transactions?per_page=1`);
    assert.equal(list.meta.total_count, 1004);
    assert.equal(list.wallet_transactions[0].transaction_type, 'outbound');
    assert.equal(list.wallet_transactions[0].credit_amount, '10030.0');
  });
  // reminders: each a date its credits really expire on, once per threshold
  await scenario({ grant_expires_after: 'P30D', rollover: 'all' }, {}, [at(1001, 3600e3)], async (call) => {
    const events = (await call('/api/v1/webhook_events?per_page=100')).webhook_events;
    const seen = new Set();
    for (const e of events) {
      const key = `${e.wallet_transaction.lago_id} ${e.data.days_before_expiry}`;
      assert.ok(!seen.has(key), `reminded twice: ${key}`);
      seen.add(key);
      assert.equal(e.data.expiration_at, e.wallet_transaction.expiration_at);
    }
  });
});
