// The wallet book writes every customer's pending debits out to the wallet tables (before any
// command that writes wallets, when the journal is due, and at recovery after a crash, from the
// journal). Before, one customer whose wallets could not be written (here a trigger refuses
// their rows) or loaded (stored terms that no longer read) failed that write-out, and with it
// every batch, for ever: every write of every customer of every organization answered 500,
// nothing said why, no hold expired. Now that customer's write-out is isolated: it stays in
// memory and in the journal (its debits were acknowledged), is said once on stderr, counted in
// /metrics, retried with a backoff, and only commands that touch it fail; once it can be written
// its debits reach the tables, once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startWithOrg, createOrg } from '../lib/tallyd.mjs';
import { checkWalletLedger } from '../lib/ledger.mjs';

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
const metric = (text, name) => {
  const m = text.match(new RegExp(`^${name} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
};
const sql = (dir, text) => {
  const r = spawnSync('sqlite3', ['-cmd', '.timeout 10000', join(dir, 'tally.db'), text], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
};

// An organization with customers `broken` and `fine`: each a subscription to a 1 USD a call plan
// and a 10-credit hard-limited wallet.
async function setup(t) {
  const bm = (await t.call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' } })).billable_metric;
  await t.call('POST', '/api/v1/plans', { plan: { code: 'calls', name: 'Calls', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } });
  const wallets = {};
  for (const c of ['broken', 'fine']) {
    await t.call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'calls', external_id: `${c}_sub` } });
    wallets[c] = (await t.call('POST', '/api/v1/wallets', { wallet: { external_customer_id: c, currency: 'USD', rate_amount: '1', name: c, granted_credits: '10', limit: 'hard' } })).wallet;
  }
  return wallets;
}

const event = (t, id, c) => t.api('/api/v1/events', { method: 'POST', body: { event: { transaction_id: id, external_subscription_id: `${c}_sub`, code: 'calls' } } });

async function expires(t, hold) {
  const due = Date.parse(hold.expires_at);
  let status;
  while (Date.now() < due + 4000) {
    status = (await t.call('GET', `/api/v1/authorizations/${hold.lago_id}`)).authorization.status;
    if (status === 'expired') break;
    await sleep(100);
  }
  return status;
}

test('a customer whose wallets cannot be written stops only its own commands', async () => {
  const t = await startWithOrg();
  try {
    const wallets = await setup(t);
    await t.restart({
      between: (dir) => sql(dir, "CREATE TRIGGER boom BEFORE UPDATE ON wallets WHEN old.customer_id = (SELECT id FROM customers WHERE external_id = 'broken') BEGIN SELECT RAISE(ABORT, 'secret boom'); END;"),
    });
    // accepted: it waits in the journal, durable
    assert.equal((await event(t, 'b1', 'broken')).status, 200);
    // the next write-out fails at it; the others go on: the other customer's hold expires
    const hold = (await t.call('POST', '/api/v1/authorizations', { authorization: { external_subscription_id: 'fine_sub', code: 'calls', expires_in: 1 } })).authorization;
    assert.equal(await expires(t, hold), 'expired');
    const f1 = await event(t, 'f1', 'fine');
    assert.equal(f1.status, 200, await f1.text());
    assert.equal((await t.call('GET', `/api/v1/wallets/${wallets.fine.lago_id}`)).wallet.balance_cents, 900);
    // another command of a customer: made and answered
    await t.call('POST', '/api/v1/customers', { customer: { external_id: 'someone' } });
    // the broken customer's own commands fail, saying why
    const b2 = await event(t, 'b2', 'broken');
    const body = await b2.json();
    assert.equal(b2.status, 500, JSON.stringify(body));
    assert.equal(body.code, 'store_failed');
    assert.match(body.error_details ?? body.message ?? JSON.stringify(body), /wallet/);
    // said once on stderr (its organization and customer, not the database's message)
    const lines = t.server.stderr().split('\n').filter((l) => /written out|write-out|wallet/.test(l) && /broken/.test(l));
    assert.equal(lines.length, 1, t.server.stderr());
    assert.match(lines[0], /^tallyd: .*organization 1 \(Acme\).*customer broken/);
    assert.doesNotMatch(t.server.stderr(), /secret/);
    const text = await (await fetch(`${t.url}/metrics`)).text();
    assert.ok(metric(text, 'tally_wallet_writeout_failures_total') >= 1, text);
    assert.equal(metric(text, 'tally_wallet_writeout_stuck_customers'), 1, text);
    // the write works again: the next retry writes its debit out, once, and it works again
    sql(t.dataDir, 'DROP TRIGGER boom;');
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      await sleep(200);
      status = (await event(t, `b3-${i}`, 'broken')).status;
    }
    assert.equal(status, 200);
    const broken = (await t.call('GET', `/api/v1/wallets/${wallets.broken.lago_id}`)).wallet;
    assert.equal(broken.balance_cents, 800);
    await checkWalletLedger(t, wallets.broken.lago_id);
    const after = await (await fetch(`${t.url}/metrics`)).text();
    assert.equal(metric(after, 'tally_wallet_writeout_stuck_customers'), 0, after);
    await t.restart();
    assert.equal((await t.call('GET', `/api/v1/wallets/${wallets.broken.lago_id}`)).wallet.balance_cents, 800);
    assert.equal((await t.call('GET', `/api/v1/wallets/${wallets.fine.lago_id}`)).wallet.balance_cents, 900);
  } finally {
    await t.cleanup();
  }
});

test('after a crash, a customer whose wallets no longer load keeps its journaled debits and stops nobody else', async () => {
  const t = await startWithOrg();
  try {
    const wallets = await setup(t);
    // a debit acknowledged while it is only in the journal, then a crash
    assert.equal((await event(t, 'b1', 'broken')).status, 200);
    let other;
    await t.restart({
      kill: true,
      between: (dir) => {
        assert.notEqual(sql(dir, 'SELECT COUNT(*) FROM wallet_journal'), '0');
        sql(dir, "CREATE TABLE saved_terms AS SELECT id, terms FROM wallets; UPDATE wallets SET terms = '{' WHERE customer_id = (SELECT id FROM customers WHERE external_id = 'broken');");
        other = createOrg(dir, 'Other');
      },
    });
    // the other customer, and another organization, work
    const hold = (await t.call('POST', '/api/v1/authorizations', { authorization: { external_subscription_id: 'fine_sub', code: 'calls', expires_in: 1 } })).authorization;
    assert.equal(hold.status, 'authorized');
    const r = await t.api('/api/v1/customers', { method: 'POST', key: other, body: { customer: { external_id: 'someone' } } });
    assert.equal(r.status, 200, await r.text());
    assert.equal(await expires(t, hold), 'expired');
    assert.equal((await event(t, 'f1', 'fine')).status, 200);
    // the broken one's commands fail
    assert.equal((await event(t, 'b2', 'broken')).status, 500);
    const lines = t.server.stderr().split('\n').filter((l) => /broken/.test(l) && /wallet/.test(l));
    assert.ok(lines.length >= 1, t.server.stderr());
    const text = await (await fetch(`${t.url}/metrics`)).text();
    assert.ok(metric(text, 'tally_wallet_writeout_failures_total') >= 1, text);
    // a clean stop keeps its debit in the journal; once its wallets load again, it arrives once
    await t.restart({
      between: (dir) => sql(dir, 'UPDATE wallets SET terms = (SELECT terms FROM saved_terms WHERE saved_terms.id = wallets.id); DROP TABLE saved_terms;'),
    });
    assert.equal((await t.call('GET', `/api/v1/wallets/${wallets.broken.lago_id}`)).wallet.balance_cents, 900);
    assert.equal((await event(t, 'b3', 'broken')).status, 200);
    assert.equal((await t.call('GET', `/api/v1/wallets/${wallets.broken.lago_id}`)).wallet.balance_cents, 800);
    await checkWalletLedger(t, wallets.broken.lago_id);
    await t.restart();
    assert.equal((await t.call('GET', `/api/v1/wallets/${wallets.broken.lago_id}`)).wallet.balance_cents, 800);
    assert.equal((await t.call('GET', `/api/v1/wallets/${wallets.fine.lago_id}`)).wallet.balance_cents, 900);
  } finally {
    await t.cleanup();
  }
});

// A stuck customer (audit 12) must not block its organization's catalog, nor keep the journal
// from being trimmed, nor wait for traffic to be retried: once its rows take the write again,
// the idle server writes it out on its own (a retry that still fails commits nothing), and what
// a price cut made while it was stuck would have given back comes back right after.
test('a stuck customer blocks no catalog write, is retried while idle, and gets its price cut back', async () => {
  const t = await startWithOrg();
  try {
    const wallets = await setup(t);
    assert.equal((await event(t, 'f1', 'fine')).status, 200);
    await t.restart({
      between: (dir) => sql(dir, "CREATE TRIGGER boom BEFORE UPDATE ON wallets WHEN old.customer_id = (SELECT id FROM customers WHERE external_id = 'broken') BEGIN SELECT RAISE(ABORT, 'secret boom'); END;"),
    });
    assert.equal((await event(t, 'b1', 'broken')).status, 200);
    await t.call('POST', '/api/v1/customers', { customer: { external_id: 'someone' } }); // a flush: stuck
    let text = await (await fetch(`${t.url}/metrics`)).text();
    assert.equal(metric(text, 'tally_wallet_writeout_stuck_customers'), 1, text);
    // catalog writes go on: new items, and a price cut (1 USD to 0.5 a call)
    const r1 = await t.api('/api/v1/billable_metrics', { method: 'POST', body: { billable_metric: { code: 'other', name: 'Other', aggregation_type: 'count_agg' } } });
    assert.equal(r1.status, 200, await r1.text());
    const r2 = await t.api('/api/v1/taxes', { method: 'POST', body: { tax: { code: 'zero', name: 'Zero', rate: '0' } } });
    assert.equal(r2.status, 200, await r2.text());
    const plan = (await t.call('GET', '/api/v1/plans/calls')).plan;
    const r3 = await t.api('/api/v1/plans/calls', { method: 'PUT', body: { plan: { name: 'Calls', charges: [
      { id: plan.charges[0].lago_id, billable_metric_id: plan.charges[0].lago_billable_metric_id, charge_model: 'standard', properties: { amount: '0.5' } }] } } });
    assert.equal(r3.status, 200, await r3.text());
    // the other customer got its cut back at once
    assert.equal((await t.call('GET', `/api/v1/wallets/${wallets.fine.lago_id}`)).wallet.balance_cents, 950);
    // the journal is trimmed as usual under events of others
    for (let i = 0; i < 15; i++) {
      assert.equal((await event(t, `f-more-${i}`, 'fine')).status, 200);
      await sleep(200);
    }
    const records = Number(sql(t.dataDir, 'SELECT COUNT(*) FROM wallet_journal'));
    assert.ok(records <= 8, `${records} journal records`);
    // idle and still broken: retries commit nothing
    await sleep(1500);
    const before = metric(await (await fetch(`${t.url}/metrics`)).text(), 'tally_engine_commits_total');
    await sleep(3000);
    text = await (await fetch(`${t.url}/metrics`)).text();
    assert.equal(metric(text, 'tally_engine_commits_total'), before, text);
    assert.ok(metric(text, 'tally_wallet_writeout_failures_total') >= 2, text);
    // fixed while idle: written out without any request, the cut given back
    sql(t.dataDir, 'DROP TRIGGER boom;');
    let stuck = 1;
    for (let i = 0; i < 100 && stuck !== 0; i++) {
      await sleep(200);
      stuck = metric(await (await fetch(`${t.url}/metrics`)).text(), 'tally_wallet_writeout_stuck_customers');
    }
    assert.equal(stuck, 0);
    assert.match(t.server.stderr(), /customer broken were written out at last/);
    assert.equal((await t.call('GET', `/api/v1/wallets/${wallets.broken.lago_id}`)).wallet.balance_cents, 950);
    await checkWalletLedger(t, wallets.broken.lago_id);
    await checkWalletLedger(t, wallets.fine.lago_id);
    await t.restart();
    assert.equal((await t.call('GET', `/api/v1/wallets/${wallets.broken.lago_id}`)).wallet.balance_cents, 950);
  } finally {
    await t.cleanup();
  }
});

// A clean stop with a stuck customer says its debits stay in the journal; the next start that
// writes them out says so.
test('a stop with a stuck customer says so, and the start that writes it out too', async () => {
  const t = await startWithOrg();
  try {
    const wallets = await setup(t);
    await t.restart({
      between: (dir) => sql(dir, "CREATE TRIGGER boom BEFORE UPDATE ON wallets WHEN old.customer_id = (SELECT id FROM customers WHERE external_id = 'broken') BEGIN SELECT RAISE(ABORT, 'secret boom'); END;"),
    });
    assert.equal((await event(t, 'b1', 'broken')).status, 200);
    await t.call('POST', '/api/v1/customers', { customer: { external_id: 'someone' } });
    const stopped = t.server;
    await t.restart({ between: (dir) => sql(dir, 'DROP TRIGGER boom;') });
    assert.match(stopped.stderr(), /customer broken .*(stay|kept) in the wallet journal/);
    assert.equal((await t.call('GET', `/api/v1/wallets/${wallets.broken.lago_id}`)).wallet.balance_cents, 900);
    assert.match(t.server.stderr(), /written out/);
  } finally {
    await t.cleanup();
  }
});
