// On the real clock a wallet reaches its `expiration_at` some time before the writer's sweep
// (once a second) terminates it. An audit found the answers in that window differ from those
// after the sweep (and from the test clock's, whose advance expires the wallet in the same
// command): a capture of a hold whose credits sat in the wallet was 200 `captured` (the held
// credits expired with the wallet and the usage was charged to a sibling wallet and the
// invoice), a void 200 `voided`, where both are 422 `{"authorization":["voided"]}` once the
// sweep ran (docs/API.md, Holds); a new wallet with the expired one's code was 422
// `value_already_exist` and a 7th wallet next to an expired 6th 422 `wallet_limit_reached`,
// where both are accepted after it. Every command now sees its customer's wallets as of its own
// time, whatever the sweep did yet.
//
// The window is short (under a second) and no request can hold the sweep off, so each round
// acts right after the expiry and then asks whether it was in the window: a probe wallet of
// another customer, expiring at the same instant and touched by nothing, still reads `active`
// after the answers only if the sweep (one command for the whole organization) had not run
// when they were applied. The answers are asserted in every round (they are the same after the
// sweep); rounds go on until one was in the window (about 19 in 20 are).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

let t;
const post = (path, body) => t.api(path, { method: 'POST', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

before(async () => {
  t = await startWithOrg(); // the real clock
  const m = (await ok(await post('/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'calls', aggregation_type: 'sum_agg', field_name: 'n' } }))).billable_metric;
  await ok(await post('/api/v1/plans', { plan: { code: 'p', name: 'p', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: m.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } }));
});
after(async () => { await t.cleanup(); });

const wallet = (customer, code, extra) => post('/api/v1/wallets', { wallet: { external_customer_id: customer, currency: 'USD', rate_amount: '1', code, ...extra } });
const status = async (lagoId) => (await ok(await t.api(`/api/v1/wallets/${lagoId}`))).wallet.status;
const refusal = async (r) => ({ status: r.status, body: (await r.json()).error_details });

test('in the window between a wallet\'s expiration_at and the sweep, holds, codes and the wallet limit answer as after the sweep', async () => {
  let inWindow = 0;
  for (let round = 0; round < 8 && inWindow === 0; round++) {
    const cap = `cap${round}`, code = `code${round}`, six = `six${round}`, probe = `probe${round}`;
    for (const c of [cap, code, six, probe])
      await ok(await post('/api/v1/customers', { customer: { external_id: c, currency: 'USD' } }));
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: cap, plan_code: 'p', external_id: cap } }));
    const sibling = (await ok(await wallet(cap, 'b', { granted_credits: '5', priority: 2, limit: 'hard' }))).wallet;
    for (let k = 1; k < 6; k++) await ok(await wallet(six, `w${k}`, { granted_credits: '1' }));
    // the expiring wallets last, so that setup never runs into their expiry
    const exp = Date.now() + 2500;
    const expiration_at = new Date(exp).toISOString();
    const expiring = (await ok(await wallet(cap, 'a', { granted_credits: '100', priority: 1, limit: 'hard', expiration_at }))).wallet;
    await ok(await wallet(code, 'x', { granted_credits: '5', expiration_at }));
    await ok(await wallet(six, 'w0', { granted_credits: '5', expiration_at }));
    const probed = (await ok(await wallet(probe, 'p', { granted_credits: '5', expiration_at }))).wallet;
    const hold = async (n) => (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: cap, code: 'calls', properties: { n } } }))).authorization;
    const captured = await hold(30), voided = await hold(10);
    assert.deepEqual([captured.status, captured.held_amount_cents, voided.held_amount_cents], ['authorized', 3000, 1000]);

    while (Date.now() <= exp + 5) await sleep(2);
    const [capture, release, sameCode, seventh] = await Promise.all([
      post(`/api/v1/authorizations/${captured.lago_id}/capture`, {}),
      post(`/api/v1/authorizations/${voided.lago_id}/void`, {}),
      wallet(code, 'x', { granted_credits: '1' }),
      wallet(six, 'w6', { granted_credits: '1' }),
    ]);
    const answered = (await status(probed.lago_id)) === 'active';
    if (answered) inWindow++;
    const why = `round ${round}, ${answered ? 'before' : 'after'} the sweep`;
    // the expiry released both holds whole: neither is captured nor voided by the request
    assert.deepEqual(await refusal(capture), { status: 422, body: { authorization: ['voided'] } }, why);
    assert.deepEqual(await refusal(release), { status: 422, body: { authorization: ['voided'] } }, why);
    // the expired wallet is no longer the customer's: its code is free, and it counts no more
    assert.equal(sameCode.status, 200, `${why}: ${JSON.stringify(await sameCode.json())}`);
    assert.equal(seventh.status, 200, `${why}: ${JSON.stringify(await seventh.json())}`);

    // once the sweep ran: nothing was charged, the sibling kept its credits, the holds say so
    for (let i = 0; i < 100 && (await status(probed.lago_id)) === 'active'; i++) await sleep(50);
    assert.equal(await status(probed.lago_id), 'terminated');
    assert.equal(await status(expiring.lago_id), 'terminated');
    const b = (await ok(await t.api(`/api/v1/wallets/${sibling.lago_id}`))).wallet;
    assert.deepEqual([b.status, b.balance_cents, b.consumed_credits], ['active', 500, '0.0'], why);
    for (const h of [captured, voided]) {
      const a = (await ok(await t.api(`/api/v1/authorizations/${h.lago_id}`))).authorization;
      assert.deepEqual([a.status, a.held_amount_cents], ['voided', 0], why);
    }
    const usage = (await ok(await t.api(`/api/v1/customers/${cap}/current_usage?external_subscription_id=${cap}`))).customer_usage;
    assert.equal(usage.total_amount_cents, 0, why);
    const txs = (await ok(await t.api(`/api/v1/wallets/${expiring.lago_id}/wallet_transactions`))).wallet_transactions;
    assert.deepEqual(txs.filter((x) => x.transaction_type === 'outbound').map((x) => [x.transaction_status, x.amount]), [['expired', '100.0']], why);
    for (const w of [expiring, sibling]) await checkWalletLedger(t, w.lago_id);
  }
  assert.ok(inWindow > 0, 'no round acted before the sweep');
});
