// Credits an open hold reserves are spoken for, whatever else happens to the wallet: a manual
// void may take only what is not held (else a clear 422 that changes nothing); a grant that
// expires keeps the part the holds reserve until they are captured, voided or expire, and a
// regular debit cannot spend it meanwhile; terminating a wallet releases its holds, and they
// say so (voided, nothing held, a capture refused). Every step is checked against the ledger.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { payWallet } from '../lib/payments.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

let t;
const post = async (path, body) => t.api(path, { method: 'POST', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const wallet = async (id) => (await ok(await t.api(`/api/v1/wallets/${id}`))).wallet;
const hold = async (id) => (await ok(await t.api(`/api/v1/authorizations/${id}`))).authorization;
const advance = async (to) => ok(await post('/api/v1/test_clock/advance', { test_clock: { to } }));
const topUp = async (body) => post('/api/v1/wallet_transactions', { wallet_transaction: body });
let n = 0;
const event = (sub, units) => post('/api/v1/events', { event: { transaction_id: `h${n++}`, external_subscription_id: sub, code: 'units', properties: { v: String(units) } } });
const authorize = async (sub, units, extra = {}) => (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: sub, code: 'units', properties: { v: String(units) }, ...extra } }))).authorization;
const capture = (id, units) => post(`/api/v1/authorizations/${id}/capture`, units === undefined ? {} : { authorization: { properties: { v: String(units) } } });
const balances = (w) => [w.balance_cents, w.ongoing_balance_cents, w.ongoing_usage_balance_cents];

const checkLedger = (w) => checkWalletLedger(t, w.lago_id);

let sub = 0;
// A customer with a subscription (1 dollar a unit) and a hard wallet at 1 dollar a credit.
async function customer(walletBody = {}) {
  const c = `hc${sub++}`;
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'units', external_id: `${c}_sub`, subscription_at: '2026-01-01T00:00:00Z' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: c, currency: 'USD', rate_amount: '1', name: 'W', limit: 'hard', ...walletBody } }))).wallet;
  return { sub: `${c}_sub`, w };
}

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-01-01T00:00:00Z']);
  const bm = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'units', name: 'Units', aggregation_type: 'sum_agg', field_name: 'v' } }))).billable_metric;
  await ok(await post('/api/v1/plans', { plan: { code: 'units', name: 'Units', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } }));
});
after(async () => { await t.cleanup(); });

test('a manual void takes only what no open hold reserves: more is a clear 422 that changes nothing', async () => {
  const { sub: s, w } = await customer({ granted_credits: '10' });
  const grant = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions`))).wallet_transactions[0];
  const a = await authorize(s, 8);
  assert.equal(a.status, 'authorized');
  assert.deepEqual(balances(await wallet(w.lago_id)), [1000, 200, 800]);
  const ledgerBefore = (await checkLedger(w)).length;
  for (const body of [{ voided_credits: '10' }, { voided_credits: '2.01' }, { voided_transaction_id: grant.lago_id }]) {
    const r = await topUp({ wallet_id: w.lago_id, ...body });
    const answer = await r.json();
    assert.equal(r.status, 422, JSON.stringify(answer));
    assert.deepEqual(answer.error_details, { voided_credits: ['credits_are_held'] });
    assert.match(answer.message, /8\.0 credits .*held.*at most 2\.0 credits/);
  }
  assert.deepEqual(balances(await wallet(w.lago_id)), [1000, 200, 800]);
  assert.equal((await checkLedger(w)).length, ledgerBefore); // nothing was posted
  // what is not held can go
  const voided = (await ok(await topUp({ wallet_id: w.lago_id, voided_credits: '2' }))).wallet_transactions;
  assert.deepEqual(voided.map((x) => [x.transaction_status, x.amount]), [['voided', '2.0']]);
  assert.deepEqual(balances(await wallet(w.lago_id)), [800, 0, 800]);
  assert.equal((await topUp({ wallet_id: w.lago_id, voided_credits: '1' })).status, 422);
  // and the merchant who got "authorized" captures
  const captured = (await ok(await capture(a.lago_id))).authorization;
  assert.deepEqual([captured.status, captured.captured_amount_cents, captured.held_amount_cents], ['captured', 800, 0]);
  assert.deepEqual(balances(await wallet(w.lago_id)), [0, 0, 0]);
  await checkLedger(w);
});

test('an expiring grant keeps what an open hold reserves; the capture consumes it, the rest expires', async () => {
  const { sub: s, w } = await customer();
  await ok(await topUp({ wallet_id: w.lago_id, paid_credits: '10', expiration_at: '2026-01-01T00:05:00Z' }));
  await payWallet(t, w.lago_id);
  const a = await authorize(s, 8, { expires_in: 600 }); // until 00:10
  assert.equal(a.status, 'authorized');
  await advance('2026-01-01T00:06:00Z');
  // the 2 unheld credits expired (breakage); the 8 held ones wait for the hold
  assert.deepEqual(balances(await wallet(w.lago_id)), [800, 0, 800]);
  const expired = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions?transaction_status=expired`))).wallet_transactions;
  assert.deepEqual(expired.map((x) => x.amount), ['2.0']);
  assert.deepEqual([(await hold(a.lago_id)).status, (await hold(a.lago_id)).held_amount_cents], ['authorized', 800]);
  // nothing else may spend the kept credits, even with a fresh grant beside them
  assert.equal((await event(s, 1)).status, 402);
  await ok(await topUp({ wallet_id: w.lago_id, granted_credits: '1' }));
  assert.equal((await event(s, 2)).status, 402);
  assert.equal((await event(s, 1)).status, 200); // from the fresh grant
  // the job ran 5 units: the capture consumes 5 of the kept credits, the other 3 expire now
  const captured = (await ok(await capture(a.lago_id, 5))).authorization;
  assert.deepEqual([captured.status, captured.captured_amount_cents], ['captured', 500]);
  assert.deepEqual(balances(await wallet(w.lago_id)), [0, 0, 0]);
  const txs = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions?per_page=100`))).wallet_transactions;
  assert.deepEqual(txs.filter((x) => x.transaction_status === 'expired').map((x) => x.amount).sort(), ['2.0', '3.0']);
  const entries = await checkLedger(w);
  assert.equal(entries.filter((e) => e.cause === 'expiry' && e.account === 'breakage').reduce((s, e) => s + e.amount_cents, 0), 500);
});

test('a capture spends the kept credits first, in whichever of its wallets they are', async () => {
  const { sub: s, w: first } = await customer({ priority: 1 }); // empty when the hold is made
  const second = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: s.replace(/_sub$/, ''), currency: 'USD', rate_amount: '1', name: 'Second', limit: 'hard', priority: 2 } }))).wallet;
  await ok(await topUp({ wallet_id: second.lago_id, granted_credits: '10', expiration_at: '2026-01-01T00:07:00Z' }));
  const a = await authorize(s, 8, { expires_in: 3600 });
  assert.deepEqual([a.status, a.lago_wallet_id], ['authorized', second.lago_id]);
  await ok(await topUp({ wallet_id: first.lago_id, paid_credits: '10' }));
  await payWallet(t, first.lago_id);
  await advance('2026-01-01T00:08:00Z');
  assert.deepEqual(balances(await wallet(second.lago_id)), [800, 0, 800]);
  assert.equal((await ok(await capture(a.lago_id))).authorization.captured_amount_cents, 800);
  // the first wallet pays first for anything else, but not for what the second kept for this
  assert.deepEqual(balances(await wallet(first.lago_id)), [1000, 1000, 0]);
  assert.deepEqual(balances(await wallet(second.lago_id)), [0, 0, 0]);
  await checkLedger(first);
  await checkLedger(second);
});

test('kept credits expire when their hold is voided, or when the hold itself expires', async () => {
  const { sub: s, w } = await customer();
  await ok(await topUp({ wallet_id: w.lago_id, granted_credits: '10', expiration_at: '2026-01-01T00:20:00Z' }));
  const voidMe = await authorize(s, 3, { expires_in: 3600 });
  const letExpire = await authorize(s, 4, { expires_in: 1800 }); // until 00:36:00
  assert.deepEqual(balances(await wallet(w.lago_id)), [1000, 300, 700]);
  await advance('2026-01-01T00:21:00Z');
  assert.deepEqual(balances(await wallet(w.lago_id)), [700, 0, 700]);
  assert.equal((await topUp({ wallet_id: w.lago_id, voided_credits: '1' })).status, 422);
  const voided = (await ok(await post(`/api/v1/authorizations/${voidMe.lago_id}/void`, {}))).authorization;
  assert.equal(voided.status, 'voided');
  assert.deepEqual(balances(await wallet(w.lago_id)), [400, 0, 400]); // its 3 expired at once
  await advance('2026-01-01T00:40:00Z');
  assert.equal((await hold(letExpire.lago_id)).status, 'expired');
  assert.deepEqual(balances(await wallet(w.lago_id)), [0, 0, 0]);
  const expired = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions?transaction_status=expired`))).wallet_transactions;
  assert.deepEqual(expired.map((x) => x.amount).sort(), ['3.0', '3.0', '4.0']);
  await checkLedger(w);
  // nothing stays due: a later advance expires nothing more
  await advance('2026-01-01T01:00:00Z');
  assert.equal((await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions?transaction_status=expired`))).wallet_transactions.length, 3);
});

test('terminating a wallet releases its holds: they read as voided and a capture is refused', async () => {
  const { sub: s, w } = await customer({ granted_credits: '10' });
  const a = await authorize(s, 3);
  assert.equal(a.status, 'authorized');
  const gone = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'DELETE' }))).wallet;
  assert.equal(gone.status, 'terminated');
  const released = await hold(a.lago_id);
  assert.deepEqual([released.status, released.held_amount_cents, released.captured_amount_cents], ['voided', 0, null]);
  const late = await capture(a.lago_id);
  assert.equal(late.status, 422);
  assert.deepEqual((await late.json()).error_details, { authorization: ['voided'] });
  assert.equal((await post(`/api/v1/authorizations/${a.lago_id}/void`, {})).status, 422);
  // the release is posted about that hold
  const entries = await checkLedger(w);
  const release = entries.filter((e) => e.cause === 'release');
  assert.deepEqual(release.map((e) => [e.account, e.amount_cents, e.lago_authorization_id]).sort(), [
    ['customer_held_credits', 300, a.lago_id], ['holds_outstanding', 300, a.lago_id]]);
  assert.equal((await t.api(`/api/v1/events/${a.lago_id}`)).status, 404); // nothing was recorded
});

test('a hold over two wallets is released whole when one of them goes; a wallet that expires releases its holds too', async () => {
  const { sub: s, w: first } = await customer({ granted_credits: '5', priority: 1 });
  const second = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: s.replace(/_sub$/, ''), currency: 'USD', rate_amount: '1', name: 'Second', limit: 'hard', granted_credits: '5', priority: 2 } }))).wallet;
  const a = await authorize(s, 7); // 5 from the first, 2 from the second
  assert.deepEqual([a.status, a.held_amount_cents], ['authorized', 700]);
  assert.deepEqual(balances(await wallet(second.lago_id)), [500, 300, 200]);
  await ok(await t.api(`/api/v1/wallets/${first.lago_id}`, { method: 'DELETE' }));
  assert.deepEqual([(await hold(a.lago_id)).status, (await hold(a.lago_id)).held_amount_cents], ['voided', 0]);
  assert.deepEqual(balances(await wallet(second.lago_id)), [500, 500, 0]);
  assert.equal((await capture(a.lago_id)).status, 422);
  await checkLedger(first);
  await checkLedger(second);

  const { sub: s2, w: temporary } = await customer({ granted_credits: '5', expiration_at: '2026-01-02T00:00:00Z' });
  const b = await authorize(s2, 2, { expires_in: 7 * 86400 });
  assert.equal(b.status, 'authorized');
  await advance('2026-01-02T00:00:01Z');
  assert.equal((await wallet(temporary.lago_id)).status, 'terminated');
  assert.deepEqual([(await hold(b.lago_id)).status, (await hold(b.lago_id)).held_amount_cents], ['voided', 0]);
  assert.equal((await capture(b.lago_id)).status, 422);
  await checkLedger(temporary);
});

test('an interval grant past its expiry does not roll over what it keeps for a hold', async () => {
  // the clock is at 2026-01-02T00:00:01: weekly anniversaries on 01-09 and 01-16
  const { sub: s, w } = await customer({ recurring_transaction_rules: [{ trigger: 'interval', interval: 'weekly', granted_credits: '10', grant_expires_after: 'P3D', rollover: 'all' }] });
  await advance('2026-01-09T01:00:00Z');
  assert.equal((await wallet(w.lago_id)).balance_cents, 1000); // the first grant, until 01-12
  const a = await authorize(s, 8, { expires_in: 7 * 86400 }); // until 01-16T01:00
  assert.equal(a.status, 'authorized');
  await advance('2026-01-13T00:00:00Z');
  assert.deepEqual(balances(await wallet(w.lago_id)), [800, 0, 800]);
  await advance('2026-01-16T00:30:00Z'); // the second grant; the first keeps its 8, expired
  assert.deepEqual(balances(await wallet(w.lago_id)), [1800, 1000, 800]);
  await ok(await post(`/api/v1/authorizations/${a.lago_id}/void`, {}));
  assert.deepEqual(balances(await wallet(w.lago_id)), [1000, 1000, 0]);
  const expired = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions?transaction_status=expired`))).wallet_transactions;
  assert.deepEqual(expired.map((x) => x.amount).sort(), ['2.0', '8.0']);
  await checkLedger(w);
});

// The overdraft a soft wallet's holds rely on is theirs until they settle: lowering it, or
// making the wallet hard, below what they reserve is a 422 that changes nothing, as a void of
// held credits is; the merchant who got "authorized" still captures.
test('terms that would take held credits away are refused; the hold still captures', async () => {
  const { sub: s, w } = await customer({ granted_credits: '10', limit: 'soft', overdraft_credits: '100' });
  assert.equal((await event(s, 60)).status, 200); // 10 from the grant, 50 overdrawn
  const a = await authorize(s, 40);
  assert.equal(a.status, 'authorized');
  for (const change of [{ overdraft_credits: '60' }, { limit: 'hard' }, { limit: 'none' }]) {
    const r = await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'PUT', body: { wallet: change } });
    const answer = await r.json();
    assert.equal(r.status, 422, `${JSON.stringify(change)}: ${JSON.stringify(answer)}`);
  }
  const r = await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'PUT', body: { wallet: { overdraft_credits: '70' } } });
  const answer = await r.json();
  assert.deepEqual(answer.error_details, { overdraft_credits: ['credits_are_held'] });
  assert.equal((await wallet(w.lago_id)).overdraft_credits, '100.0');
  // what the holds leave may go: 50 overdrawn + 40 held = 90
  await ok(await t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'PUT', body: { wallet: { overdraft_credits: '90' } } }));
  const captured = (await ok(await capture(a.lago_id))).authorization;
  assert.deepEqual([captured.status, captured.captured_amount_cents], ['captured', 4000]);
  await checkLedger(w);
  // a soft wallet with credits of its own: the part of a hold beyond them is overdraft
  const { sub: s2, w: w2 } = await customer({ granted_credits: '10', limit: 'soft', overdraft_credits: '100' });
  const b = await authorize(s2, 40);
  assert.equal(b.status, 'authorized');
  const hard = await t.api(`/api/v1/wallets/${w2.lago_id}`, { method: 'PUT', body: { wallet: { limit: 'hard' } } });
  assert.deepEqual((await hard.json()).error_details, { limit: ['credits_are_held'] });
  // credits that come later are not the hold's: its 30 stay on the overdraft
  await ok(await topUp({ wallet_id: w2.lago_id, granted_credits: '30' }));
  const still = await t.api(`/api/v1/wallets/${w2.lago_id}`, { method: 'PUT', body: { wallet: { limit: 'hard' } } });
  assert.deepEqual((await still.json()).error_details, { limit: ['credits_are_held'] });
  assert.equal((await capture(b.lago_id)).status, 200);
  await ok(await t.api(`/api/v1/wallets/${w2.lago_id}`, { method: 'PUT', body: { wallet: { limit: 'hard' } } }));
  await checkLedger(w2);
});

test('applies_to stays while the wallet holds credits for open holds; other terms may change', async () => {
  const { sub: s, w } = await customer({ granted_credits: '50', applies_to: { billable_metric_codes: ['units'] } });
  const a = await authorize(s, 20);
  assert.equal(a.status, 'authorized');
  const put = (wallet) => t.api(`/api/v1/wallets/${w.lago_id}`, { method: 'PUT', body: { wallet } });
  for (const applies_to of [{ billable_metric_codes: [] }, { fee_types: ['charge'], billable_metric_codes: ['units'] }]) {
    const r = await put({ applies_to });
    const answer = await r.json();
    assert.equal(r.status, 422, JSON.stringify(answer));
    assert.deepEqual(answer.error_details, { applies_to: ['credits_are_held'] });
    assert.match(answer.message, /capture or void them/);
  }
  assert.deepEqual((await wallet(w.lago_id)).applies_to, { fee_types: [], billable_metric_codes: ['units'] });
  await ok(await put({ name: 'Renamed', applies_to: { billable_metric_codes: ['units'] } }));
  await ok(await put({ applies_to: { billable_metric_codes: ['units', 'units'] } })); // the same set
  assert.equal((await capture(a.lago_id, 20)).status, 200);
  await ok(await put({ applies_to: { billable_metric_codes: [] } })); // nothing held any more
  await checkLedger(w);
});

const clockNow = async () => Date.parse((await ok(await t.api('/api/v1/test_clock'))).test_clock.now);
const iso = (ms) => new Date(ms).toISOString();
const DAY = 86400e3;

// Found by a black-box audit: a purchase paid after its expiration_at kept part of its
// credits for holds opened before it existed, their captures spent them, and the credits those
// holds were made on stayed.
// Since then (audit 3) such a payment is refused: the credits can no longer arrive, and the
// open holds keep none of them either way.
test('credits paid past their expiry are refused: the open holds keep none of them', async () => {
  const now = await clockNow();
  const { sub: s, w } = await customer({ granted_credits: '10' });
  const holds = [await authorize(s, 1, { expires_in: 7 * 86400 }), await authorize(s, 1, { expires_in: 7 * 86400 })];
  const bought = (await ok(await topUp({ wallet_id: w.lago_id, paid_credits: '4', invoice_requires_successful_payment: true, expiration_at: iso(now + DAY) }))).wallet_transactions[0];
  await advance(iso(now + 2 * DAY));
  const paid = await t.api(`/api/v1/invoices/${bought.lago_invoice_id}`, { method: 'PUT', body: { invoice: { payment_status: 'succeeded' } } });
  assert.equal(paid.status, 422);
  assert.deepEqual((await paid.json()).error_details, { payment_status: ['credits_expired'] });
  await ok(await t.api(`/api/v1/invoices/${bought.lago_invoice_id}`, { method: 'PUT', body: { invoice: { payment_status: 'failed' } } }));
  assert.deepEqual(balances(await wallet(w.lago_id)), [1000, 800, 200]);
  for (const h of holds) await ok(await capture(h.lago_id));
  assert.equal((await wallet(w.lago_id)).balance_cents, 800);
  await checkLedger(w);
});

// Found by a black-box audit: an interval rule's anniversary expired what open holds reserve
// of the previous grant whenever the new grant could back the holds; their captures then spent
// the new grant. Six units held across the anniversary must cost what six units sent before it
// cost: rollover none leaves the new grant whole (10), max_credits 3 adds 3 of the 4 unheld.
test('an anniversary leaves what open holds reserve of the previous grant; the rollover applies to the rest', async () => {
  const start = await clockNow();
  const rule = (rollover) => ({ recurring_transaction_rules: [{ trigger: 'interval', interval: 'weekly', granted_credits: '10', grant_expires_after: 'P1W', ...rollover }] });
  const cases = [
    { rollover: { rollover: 'none' }, settle: 'capture', during: [1600, 1000, 600], after: 1000 },
    { rollover: { rollover: 'max_credits', rollover_max_credits: '3' }, settle: 'capture', during: [1900, 1300, 600], after: 1300 },
    { rollover: { rollover: 'none' }, settle: 'void', during: [1600, 1000, 600], after: 1000 },
  ];
  const made = [];
  for (const c of cases) made.push({ ...c, ...(await customer(rule(c.rollover))) });
  await advance(iso(start + 7 * DAY + 2 * 3600e3)); // the first grant
  for (const m of made) {
    assert.equal((await wallet(m.w.lago_id)).balance_cents, 1000);
    m.hold = await authorize(m.sub, 6, { expires_in: 7 * 86400 });
    assert.equal(m.hold.status, 'authorized');
  }
  await advance(iso(start + 14 * DAY + 3600e3)); // the second, and the first's end; the holds are open
  for (const m of made) {
    assert.deepEqual(balances(await wallet(m.w.lago_id)), m.during, JSON.stringify(m.rollover));
    if (m.settle === 'capture') await ok(await capture(m.hold.lago_id));
    else await ok(await post(`/api/v1/authorizations/${m.hold.lago_id}/void`, {}));
    assert.equal((await wallet(m.w.lago_id)).balance_cents, m.after, `${JSON.stringify(m.rollover)} ${m.settle}`);
    await checkLedger(m.w);
  }
});

// Found by a black-box audit: holds reserved an amount of each wallet, not particular credits,
// so a grant added after a hold and consumed before the older credits (a sooner expiry) kept
// its credits for that hold past its expiry, and the capture spent them where the credits the
// hold was made on should have paid. A hold reserves the credits its capture would spend were
// it captured at once; a grant that comes later is nobody's, and expires whole. The same
// across a restart: the reservations are read back from the holds' rows.
test('a hold reserves the credits it was made on: a grant added after it, consumed first, expires whole', async () => {
  const now = await clockNow();
  const made = [];
  for (const restart of [false, true]) {
    const { sub: s, w } = await customer({ granted_credits: '10' });
    const a = await authorize(s, 6, { expires_in: 86400 });
    assert.equal(a.status, 'authorized');
    await ok(await topUp({ wallet_id: w.lago_id, granted_credits: '5', expiration_at: iso(now + 3600e3) }));
    assert.deepEqual(balances(await wallet(w.lago_id)), [1500, 900, 600]);
    made.push({ restart, s, w, a });
  }
  await t.restart({ kill: true });
  await advance(iso(now + 2 * 3600e3));
  for (const { s, w, a } of made) {
    // the 5 later credits expired whole; the 6 held are the first grant's
    assert.deepEqual(balances(await wallet(w.lago_id)), [1000, 400, 600]);
    const expired = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions?transaction_status=expired`))).wallet_transactions;
    assert.deepEqual(expired.map((x) => x.amount), ['5.0']);
    assert.equal((await ok(await capture(a.lago_id))).authorization.captured_amount_cents, 600);
    assert.deepEqual(balances(await wallet(w.lago_id)), [400, 400, 0]);
    assert.equal((await event(s, 4)).status, 200);
    assert.equal((await event(s, 1)).status, 402);
    await checkLedger(w);
  }
});

// The other side of the same rule: usage recorded while a hold is open spends what the hold
// does not reserve, even from credits consumed after the held ones; the held ones wait for the
// hold, past their expiry if need be, and expire when it is voided.
test('usage beside an open hold spends the credits the hold does not reserve', async () => {
  const now = await clockNow();
  const { sub: s, w } = await customer({ granted_credits: '10' });
  const soon = (await ok(await topUp({ wallet_id: w.lago_id, granted_credits: '5', expiration_at: iso(now + 3600e3) }))).wallet_transactions[0];
  const a = await authorize(s, 6, { expires_in: 86400 }); // the 5 expiring soon, and 1 of the 10
  assert.equal((await event(s, 3)).status, 200); // 3 of the 10
  const paid = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions?transaction_status=usage`))).wallet_transactions;
  assert.equal(paid.length, 1);
  const fundings = (await ok(await t.api(`/api/v1/wallet_transactions/${paid[0].lago_id}/fundings`))).wallet_transaction_fundings;
  const ten = (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions?per_page=100`))).wallet_transactions.find((x) => x.amount === '10.0');
  assert.notEqual(ten.lago_id, soon.lago_id);
  assert.deepEqual(fundings.map((f) => [f.wallet_transaction.lago_id, f.amount_cents]), [[ten.lago_id, 300]]);
  await advance(iso(now + 2 * 3600e3));
  assert.deepEqual(balances(await wallet(w.lago_id)), [1200, 600, 600]); // the held 5 kept
  await ok(await post(`/api/v1/authorizations/${a.lago_id}/void`, {}));
  assert.deepEqual(balances(await wallet(w.lago_id)), [700, 700, 0]); // and expired with the void
  await checkLedger(w);
});

// Found by a black-box audit: credits a hold gave back (voided, expired, or left by a smaller
// capture) stayed spendable in a soft wallet that owed an overdraft; deleting the wallet then
// voided them as breakage while the whole overdraft stayed owed (paid 3, used 4, owed 3). They
// repay the overdraft first, as new credits do, across a restart too.
test('credits a hold gives back repay an overdraft first, however it settles', async () => {
  const now = await clockNow();
  const cases = [
    { settle: 'void', owed: 100 },
    { settle: 'expire', owed: 100 },
    { settle: 'capture', units: '0.5', owed: 150 },
  ];
  for (const c of cases) {
    Object.assign(c, await customer({ limit: 'soft', overdraft_credits: '5' }));
    await ok(await topUp({ wallet_id: c.w.lago_id, paid_credits: '3' }));
    await payWallet(t, c.w.lago_id);
    c.hold = await authorize(c.sub, 2, { expires_in: 60 }); // 2 of the 3 credits
    assert.equal(c.hold.status, 'authorized');
    assert.equal((await event(c.sub, 4)).status, 200); // the unheld credit, and 3 of overdraft
    const w = await wallet(c.w.lago_id);
    assert.deepEqual([w.balance_cents, w.ongoing_usage_balance_cents, w.overdrawn_cents], [-100, 200, 300]);
  }
  for (const c of cases) {
    if (c.settle === 'void') await ok(await post(`/api/v1/authorizations/${c.hold.lago_id}/void`, {}));
    if (c.settle === 'capture') await ok(await capture(c.hold.lago_id, c.units));
  }
  await advance(iso(now + 120e3)); // the third's hold expires
  await t.restart({ kill: true });
  for (const c of cases) {
    const w = await wallet(c.w.lago_id);
    assert.deepEqual([w.balance_cents, w.ongoing_usage_balance_cents, w.overdrawn_cents], [-c.owed, 0, c.owed], c.settle);
    await ok(await t.api(`/api/v1/wallets/${c.w.lago_id}`, { method: 'DELETE' }));
    const after = await wallet(c.w.lago_id);
    assert.deepEqual([after.balance_cents, after.overdrawn_cents], [-c.owed, c.owed], c.settle);
    const entries = await checkLedger(c.w);
    assert.equal(entries.filter((e) => e.account === 'breakage').length, 0, c.settle); // nothing voided unused
  }
});

// Found by a black-box audit: one advance of the clock over a hold's expiry and a later
// anniversary of an interval rule released the hold first, and the release expired the
// previous grant (past its expiry by then) before the anniversary could roll it over: all of
// its unused credits were lost. What the release frees expires only up to the anniversaries
// still to come; the clock then handles them in order.
test('a hold that expires before an anniversary, in the same advance, leaves the rollover whole', async () => {
  const start = await clockNow();
  const rule = (rollover) => ({ recurring_transaction_rules: [{ trigger: 'interval', interval: 'weekly', granted_credits: '10', grant_expires_after: 'P1W', ...rollover }] });
  const cases = [
    { rollover: { rollover: 'all' }, after: 1800 },
    { rollover: { rollover: 'max_credits', rollover_max_credits: '2' }, after: 1200 },
  ];
  for (const c of cases) Object.assign(c, await customer(rule(c.rollover)));
  await advance(iso(start + 7 * DAY + 2 * 3600e3)); // the first grant
  for (const c of cases) {
    assert.equal((await event(c.sub, 2)).status, 200); // 8 unused
    c.hold = await authorize(c.sub, 3, { expires_in: 2 * 86400 }); // gone days before the next anniversary
    assert.equal(c.hold.status, 'authorized');
  }
  await advance(iso(start + 14 * DAY + 3600e3)); // over both at once
  for (const c of cases) {
    assert.equal((await hold(c.hold.lago_id)).status, 'expired');
    assert.equal((await wallet(c.w.lago_id)).balance_cents, c.after, JSON.stringify(c.rollover));
    await checkLedger(c.w);
  }
});

// Found by a black-box audit: what holds open at an anniversary reserve of the previous grants
// carried on with them whenever an unheld cent rolled over (a void after the anniversary then
// passed the rollover's cap: hold all but a cent, void, keep everything), and expired whole
// otherwise (under `all`, a hold of every unused credit lost them all). What the holds leave
// unspent now rolls over within the room the cap left, as if it had been unused at the
// anniversary: a void after it leaves what a void before it would have, a capture costs what
// the same usage before it would have. Across a restart in between too.
test('what holds open at an anniversary leave unspent rolls over within the cap, as if unused then', async () => {
  const start = await clockNow();
  const rule = (rollover) => ({ recurring_transaction_rules: [{ trigger: 'interval', interval: 'weekly', granted_credits: '10', grant_expires_after: 'P1W', ...rollover }] });
  const two = { rollover: 'max_credits', rollover_max_credits: '2' };
  const cases = [ // 8 unused at the anniversary, `held` of them held across it
    { rollover: two, held: 3, settle: 'void', after: 1200 },
    { rollover: two, held: 7.99, settle: 'void', after: 1200 },
    { rollover: { rollover: 'max_percentage', rollover_percentage: 50 }, held: 3, settle: 'void', after: 1500 },
    { rollover: { rollover: 'all' }, held: 8, settle: 'void', after: 1800 },
    { rollover: { rollover: 'all' }, held: 7.99, settle: 'void', after: 1800 },
    { rollover: two, held: 3, settle: 'capture', after: 1200 }, // 5 unused: 2 roll over
    { rollover: two, held: 3, settle: 'capture', units: 1, after: 1200 },
    { rollover: { rollover: 'all' }, held: 3, settle: 'capture', units: 1, after: 1700 },
    { rollover: { rollover: 'none' }, held: 3, settle: 'void', after: 1000 },
  ];
  for (const c of cases) Object.assign(c, await customer(rule(c.rollover)));
  await advance(iso(start + 7 * DAY + 2 * 3600e3)); // the first grant
  for (const c of cases) {
    assert.equal((await event(c.sub, 2)).status, 200);
    c.hold = await authorize(c.sub, c.held, { expires_in: 7 * 86400 });
    assert.equal(c.hold.status, 'authorized');
  }
  await advance(iso(start + 14 * DAY + 3600e3)); // the next anniversary; the holds are open
  await t.restart({ kill: true });
  for (const c of cases) {
    if (c.settle === 'void') await ok(await post(`/api/v1/authorizations/${c.hold.lago_id}/void`, {}));
    else await ok(await capture(c.hold.lago_id, c.units));
    const w = await wallet(c.w.lago_id);
    assert.deepEqual([w.balance_cents, w.ongoing_usage_balance_cents], [c.after, 0], `${JSON.stringify(c.rollover)} ${c.held} ${c.settle} ${c.units ?? ''}`);
    await checkLedger(c.w);
  }
});

// Found by a black-box audit: a capture for less after the anniversary, of a hold on a rule's
// paid and free grants, rolled its free credits over first and expired the paid ones (2 USD of
// paid credits booked as breakage too early). Paid credits roll over first, as at the
// anniversary itself: 7 unused of 5 paid and 5 free (2 free spent), 3 roll over, all paid.
test('what a capture leaves after an anniversary rolls over paid credits first', async () => {
  const start = await clockNow();
  const c = await customer({ recurring_transaction_rules: [{ trigger: 'interval', interval: 'weekly', paid_credits: '5', granted_credits: '5', grant_expires_after: 'P1W', rollover: 'max_credits', rollover_max_credits: '3' }] });
  await advance(iso(start + 7 * DAY + 2 * 3600e3));
  await payWallet(t, c.w.lago_id);
  assert.equal((await event(c.sub, 2)).status, 200); // 2 of the free credits
  const h = await authorize(c.sub, 7, { expires_in: 7 * 86400 }); // the 3 free left, 4 paid
  await advance(iso(start + 14 * DAY + 3600e3)); // 1 paid rolls over now
  await payWallet(t, c.w.lago_id);
  assert.equal((await ok(await capture(h.lago_id, 1))).authorization.captured_amount_cents, 100);
  const entries = await checkLedger(c.w);
  const last = new Map(entries.filter((e) => e.lago_wallet_id).map((e) => [e.account, e.balance_after_cents]));
  // 5 new paid and 3 rolled over; 5 new free
  assert.deepEqual([last.get('customer_paid_credits'), last.get('customer_promotional_credits')], [800, 500]);
  assert.equal((await wallet(c.w.lago_id)).balance_cents, 1300);
});

// Found by a black-box audit: a soft wallet that owed an overdraft at an anniversary, with holds
// open on the previous grant, had the overdraft repaid by the new grant; what the holds gave
// back afterwards was then held to the rollover cap, where given back before the anniversary it
// would have repaid the overdraft and left the new grant whole. What the holds reserve up to
// the overdraft owed then now rolls over past the cap: each case ends where its twin, settled
// before the anniversary, ends. 10 credits a week; 6 held; usage spends the other 4 and runs
// `owed` credits into the overdraft.
test('what holds give back after an anniversary that repaid an overdraft leaves the new grant whole', async () => {
  const start = await clockNow();
  const two = { rollover: 'max_credits', rollover_max_credits: '2' };
  const cases = [
    { rollover: two, owed: 3, settle: 'void', after: 1200 }, // 6 repay 3; 3 unused, 2 roll over
    { rollover: { rollover: 'all' }, owed: 3, settle: 'void', after: 1300 },
    { rollover: { rollover: 'none' }, owed: 3, settle: 'void', after: 1000 },
    { rollover: two, owed: 3, settle: 'capture', units: 1, after: 1200 }, // 5 back: 3 repay, 2 roll
    { rollover: two, owed: 12, settle: 'void', after: 400 }, // the new grant repays 6 of 12 left
    { rollover: { rollover: 'max_percentage', rollover_percentage: 25 }, owed: 1, settle: 'void', after: 1250 },
  ];
  const make = async (c) => {
    const x = await customer({ limit: 'soft', overdraft_credits: '20', recurring_transaction_rules: [{ trigger: 'interval', interval: 'weekly', granted_credits: '10', grant_expires_after: 'P1W', ...c.rollover }] });
    return x;
  };
  const settle = async (c, h) => {
    if (c.settle === 'void') await ok(await post(`/api/v1/authorizations/${h.lago_id}/void`, {}));
    else await ok(await capture(h.lago_id, c.units));
  };
  for (const c of cases) {
    c.late = await make(c); // settled after the anniversary
    c.early = await make(c); // its twin, settled before it
  }
  await advance(iso(start + 7 * DAY + 2 * 3600e3)); // the first grant
  for (const c of cases) {
    for (const x of [c.late, c.early]) {
      x.hold = await authorize(x.sub, 6, { expires_in: 7 * 86400 });
      assert.equal(x.hold.status, 'authorized');
      assert.equal((await event(x.sub, 4 + c.owed)).status, 200);
      assert.equal((await wallet(x.w.lago_id)).overdrawn_cents, c.owed * 100);
    }
    await settle(c, c.early.hold);
  }
  await advance(iso(start + 14 * DAY + 3600e3)); // the next anniversary; the late holds are open
  await t.restart({ kill: true });
  for (const c of cases) {
    await settle(c, c.late.hold);
    const label = `${JSON.stringify(c.rollover)} owed ${c.owed} ${c.settle}`;
    for (const x of [c.early, c.late]) {
      const w = await wallet(x.w.lago_id);
      assert.deepEqual([w.balance_cents, w.overdrawn_cents, w.ongoing_usage_balance_cents], [c.after, 0, 0], `${label} ${x === c.early ? 'before' : 'after'}`);
      await checkLedger(x.w);
    }
  }
});

// Found by a credits audit: a capture whose event lowers one charge's fee while the shared tax's
// rounding raises another's by a cent turns from giving back to debiting mid-capture; the
// wallets were written out then, and the invariant check (test builds) took the credits the
// hold released, still the capture's to spend, for a capture left open: tallyd aborted.
test('a capture that gives back on one charge and debits a rounding cent on another settles', async () => {
  const metric = async (code, aggregation_type, field_name) => (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code, name: code, aggregation_type, field_name } }))).billable_metric;
  const sum = await metric('rounding_sum', 'sum_agg', 'n');
  const uniq = await metric('rounding_unique', 'unique_count_agg', 'u');
  await ok(await post('/api/v1/taxes', { tax: { code: 'rounding_tax', name: 'T', rate: '7.5' } }));
  await ok(await post('/api/v1/plans', { plan: { code: 'rounding', name: 'R', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', tax_codes: ['rounding_tax'], charges: [
    { billable_metric_id: sum.lago_id, charge_model: 'standard', properties: { amount: '0.013' } },
    { billable_metric_id: uniq.lago_id, charge_model: 'standard', pay_in_advance: true, properties: { amount: '0.29' } }] } }));
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'rounding', plan_code: 'rounding', external_id: 'rounding_sub', subscription_at: '2026-01-01T00:00:00Z' } }));
  const w = (await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'rounding', currency: 'USD', rate_amount: '0.37', granted_credits: '1000' } }))).wallet;
  const send = async (code, properties) => ok(await post('/api/v1/events', { event: { transaction_id: `r${n++}`, external_subscription_id: 'rounding_sub', code, properties } }));
  await send('rounding_unique', { u: 'a', operation_type: 'remove' });
  await send('rounding_unique', { u: 'e' });
  await send('rounding_unique', { u: 'e', operation_type: 'remove' });
  await send('rounding_sum', { n: '7.77' });
  const usage = async () => (await ok(await t.api('/api/v1/customers/rounding/current_usage?external_subscription_id=rounding_sub'))).customer_usage;
  assert.deepEqual([(await usage()).amount_cents, (await usage()).taxes_amount_cents], [39, 3]);
  const a = (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'rounding_sub', code: 'rounding_sum', properties: { n: '-3' } } }))).authorization;
  assert.equal(a.status, 'authorized');
  assert.equal((await ok(await post(`/api/v1/authorizations/${a.lago_id}/capture`, {}))).authorization.status, 'captured');
  const after = await usage();
  const after_w = await wallet(w.lago_id);
  assert.equal(after_w.ongoing_usage_balance_cents, 0); // nothing held any more
  // what the wallet paid is the period's fee with its taxes, and the ledger agrees
  await checkLedger(after_w);
  assert.equal(37000 - after_w.balance_cents, after.total_amount_cents);
  await send('rounding_sum', { n: '1' }); // and the writer is still there
});
