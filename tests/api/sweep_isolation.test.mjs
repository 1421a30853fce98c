// The real clock's sweep is one command per organization: before, one customer whose wallets
// could not be swept (here a wallet whose stored terms no longer read) failed that command every
// second, and from then on no hold of the organization expired, no grant, no rule: for every
// customer, silently. Now the failing customer waits in a quarantine (retried after a backoff),
// one line on stderr names it, /metrics counts it, and the others' holds expire on time. An idle
// server still writes nothing: the quarantined customer's due items do not make it sweep again
// and again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startWithOrg } from '../lib/tallyd.mjs';

const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
const metric = (text, name) => {
  const m = text.match(new RegExp(`^${name} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
};

test('a customer the sweep cannot process waits in quarantine; the others\' holds still expire', async () => {
  const t = await startWithOrg();
  try {
    const post = async (path, body) => ok(await t.api(path, { method: 'POST', body }));
    const bm = (await post('/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' } })).billable_metric;
    await post('/api/v1/plans', { plan: { code: 'calls', name: 'Calls', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
      { billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } });
    const holds = {};
    const wallets = {};
    for (const c of ['broken', 'fine']) {
      await post('/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'calls', external_id: `${c}_sub` } });
      wallets[c] = (await post('/api/v1/wallets', { wallet: { external_customer_id: c, currency: 'USD', rate_amount: '1', name: c, granted_credits: '10', limit: 'hard' } })).wallet;
    }
    holds.broken = (await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'broken_sub', code: 'calls', expires_in: 3600 } })).authorization;
    // the broken customer's wallet terms no longer read, and its hold is past its expiry: the
    // first thing the sweep meets after the restart
    await t.restart({
      between: (dir) => {
        const sql = "UPDATE wallets SET terms = '{' WHERE customer_id = (SELECT id FROM customers WHERE external_id = 'broken');" +
          `UPDATE authorizations SET expires_at = expires_at - 7200000000 WHERE lago_id = '${holds.broken.lago_id}';`;
        const r = spawnSync('sqlite3', [join(dir, 'tally.db'), sql], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
      },
    });
    holds.fine = (await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'fine_sub', code: 'calls', expires_in: 1 } })).authorization;
    assert.equal(holds.fine.status, 'authorized');
    // the other customer's hold expires on the real clock, within a few sweeps of its expiry
    const due = Date.parse(holds.fine.expires_at);
    let status;
    while (Date.now() < due + 4000) {
      status = (await ok(await t.api(`/api/v1/authorizations/${holds.fine.lago_id}`))).authorization.status;
      if (status === 'expired') break;
      await sleep(100);
    }
    assert.equal(status, 'expired');
    const fine = (await ok(await t.api(`/api/v1/wallets/${wallets.fine.lago_id}`))).wallet;
    assert.equal(fine.ongoing_balance_cents, 1000);
    // the broken one is still held: it waits for its retry
    assert.equal((await ok(await t.api(`/api/v1/authorizations/${holds.broken.lago_id}`))).authorization.status, 'authorized');
    // said once on stderr, counted in /metrics
    const lines = t.server.stderr().split('\n').filter((l) => /sweep/.test(l));
    assert.equal(lines.length, 1, t.server.stderr());
    assert.match(lines[0], /^tallyd: .*organization .*customer broken/);
    let text = await (await fetch(`${t.url}/metrics`)).text();
    assert.equal(metric(text, 'tally_sweep_failures_total'), 1, text);
    assert.equal(metric(text, 'tally_sweep_quarantined_customers'), 1, text);
    // idle, the server writes nothing: the quarantined customer's due hold is not swept again
    // and again (before, a failing sweep every second)
    const commits = metric(text, 'tally_engine_commits_total');
    await sleep(2500);
    text = await (await fetch(`${t.url}/metrics`)).text();
    assert.equal(metric(text, 'tally_engine_commits_total'), commits);
    assert.equal(metric(text, 'tally_sweep_failures_total'), 1);
  } finally {
    await t.cleanup();
  }
});

const sql = (dir, text, ...flags) => {
  const r = spawnSync('sqlite3', [...flags, '-cmd', '.timeout 10000', join(dir, 'tally.db'), text], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
};

// A customer's stored zone that no longer loads (a host whose tz database dropped the name) made
// its wallet's interval rule fire once more and then cleared its next anniversary for good,
// silently, as a success. Now it is a failure of that customer's sweep: quarantined and said,
// the anniversary kept, and once the zone loads again the rule fires as it should.
test('an interval rule whose customer zone no longer loads is quarantined, never unscheduled', async () => {
  const t = await startWithOrg();
  try {
    const post = (path, body) => t.call('POST', path, body);
    const wallets = {};
    for (const c of ['broken', 'fine']) {
      await post('/api/v1/customers', { customer: { external_id: c } });
      wallets[c] = (await post('/api/v1/wallets', { wallet: { external_customer_id: c, currency: 'USD', rate_amount: '1', name: c, granted_credits: '10' } })).wallet;
      await t.call('PUT', `/api/v1/wallets/${wallets[c].lago_id}`, { wallet: { recurring_transaction_rules: [{ trigger: 'interval', interval: 'weekly', granted_credits: '3' }] } });
    }
    const week = 7 * 86400 * 1000000;
    await t.restart({
      between: (dir) => sql(dir, `UPDATE wallets SET created_at = created_at - ${week}, next_rule_at = next_rule_at - ${week}; ` +
        "UPDATE customers SET timezone = 'Mars/Olympus_Mons' WHERE external_id = 'broken';"),
    });
    let fine;
    for (let i = 0; i < 50; i++) {
      fine = (await t.call('GET', `/api/v1/wallets/${wallets.fine.lago_id}`)).wallet;
      if (fine.balance_cents === 1300) break;
      await sleep(100);
    }
    assert.equal(fine.balance_cents, 1300);
    await sleep(300);
    const rows = () => Object.fromEntries(sql(t.dataDir, 'SELECT c.external_id, w.next_rule_at, w.balance_cents FROM wallets w JOIN customers c ON c.id = w.customer_id', '-readonly')
      .split('\n').map((l) => l.split('|')).map(([c, next, balance]) => [c, { next, balance: Number(balance) }]));
    let r = rows();
    assert.notEqual(r.broken.next, '', 'the broken customer\'s next anniversary was cleared');
    assert.equal(r.broken.balance, 1000); // it did not fire in a zone it cannot read
    const lines = t.server.stderr().split('\n').filter((l) => /sweep/.test(l));
    assert.equal(lines.length, 1, t.server.stderr());
    assert.match(lines[0], /customer broken/);
    // the zone loads again: the anniversary fires, and the next one is set
    await t.restart({ between: (dir) => sql(dir, "UPDATE customers SET timezone = NULL WHERE external_id = 'broken'") });
    let broken;
    for (let i = 0; i < 50; i++) {
      broken = (await t.call('GET', `/api/v1/wallets/${wallets.broken.lago_id}`)).wallet;
      if (broken.balance_cents === 1300) break;
      await sleep(100);
    }
    assert.equal(broken.balance_cents, 1300);
    r = rows();
    assert.ok(Number(r.broken.next) > Date.now() * 1000, JSON.stringify(r));
  } finally {
    await t.cleanup();
  }
});

// The stderr line shows a client's text (organization name, external id): C0 controls were
// replaced, but C1 controls (CSI U+009B, NEL U+0085) and bidi overrides (U+202E) went through.
test('the sweep\'s stderr line shows no C1 control or bidi override of a client\'s text', async () => {
  const t = await startWithOrg();
  try {
    const id = 'c1\u009b2J\u202eevil\u0085x\u2066y';
    const bm = (await t.call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' } })).billable_metric;
    await t.call('POST', '/api/v1/plans', { plan: { code: 'calls', name: 'Calls', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
      { billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } });
    await t.call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: id, plan_code: 'calls', external_id: 'c1_sub' } });
    await t.call('POST', '/api/v1/wallets', { wallet: { external_customer_id: id, currency: 'USD', rate_amount: '1', granted_credits: '10' } });
    await t.call('POST', '/api/v1/authorizations', { authorization: { external_subscription_id: 'c1_sub', code: 'calls', expires_in: 3600 } });
    await t.restart({
      between: (dir) => sql(dir, "UPDATE authorizations SET expires_at = expires_at - 7200000000 WHERE external_subscription_id = 'c1_sub'; " +
        "CREATE TRIGGER boom BEFORE UPDATE ON authorizations WHEN old.external_subscription_id = 'c1_sub' BEGIN SELECT RAISE(ABORT, 'boom'); END;"),
    });
    let line;
    for (let i = 0; i < 50 && !line; i++) {
      await sleep(100);
      line = t.server.stderr().split('\n').find((l) => /sweep/.test(l));
    }
    assert.ok(line, t.server.stderr());
    assert.match(line, /customer c1\?2J\?evil\?x\?y/);
    assert.doesNotMatch(line, /[\u0080-\u009f\u202a-\u202e\u2066-\u2069]/);
  } finally {
    await t.cleanup();
  }
});
