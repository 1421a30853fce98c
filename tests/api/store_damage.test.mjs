// A store damaged by copying tally.db back alone (audit 9). After a SIGKILL, tally.db-wal holds
// the newer store's last commits; copied back over the directory alone, an older tally.db got
// that log replayed onto it at the next start. One such store started with no word and passed
// PRAGMA integrity_check, yet was a mix of the two: event_counts (and the wallet journal) from
// the newer run, the events from the older file (GET /events counted 151,357 events and listed
// 134,731; wallets paid 1-3 cents more than their usage). A start that reads every stored event
// now checks them against event_counts and refuses such a store, saying what to do; a healthy
// store (after a SIGKILL, after a metric's deletion hid events) still starts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createOrg, newDataDir, startTallyd } from '../lib/tallyd.mjs';

function sqlite(db, sql) {
  const r = spawnSync('sqlite3', [db, sql], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

// fetch against one server with one organization's key; the parsed answer, which must be a 200
function caller(server, key) {
  return async (method, path, body) => {
    const r = await fetch(server.url + path, {
      method,
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: body && JSON.stringify(body),
    });
    const answer = await r.json();
    assert.equal(r.status, 200, `${method} ${path}: ${JSON.stringify(answer)}`);
    return answer;
  };
}

async function setUp(call, code = 'calls') {
  const metric = (await call('POST', '/api/v1/billable_metrics', { billable_metric: { code, name: code, aggregation_type: 'count_agg' } })).billable_metric;
  await call('POST', '/api/v1/plans', { plan: { code: `p_${code}`, name: 'P', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [{ billable_metric_id: metric.lago_id, charge_model: 'standard', properties: { amount: '0.01' } }] } });
  await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: `c_${code}`, plan_code: `p_${code}`, external_id: `s_${code}` } });
}

const batch = (tag, b, code = 'calls', n = 50) =>
  Array.from({ length: n }, (_, i) => ({ transaction_id: `${tag}-${b}-${i}`, external_subscription_id: `s_${code}`, code, properties: { note: 'n'.repeat(200) } }));

// The misuse as the audit made it: the older copy taken while tallyd ran, more writes, a
// SIGKILL, the copy put back alone. `snapshot`: a clean stop before the first event left an
// empty events.snapshot (the audit's directory had one), which the start uses, reading every
// event all the same.
for (const snapshot of [false, true])
test(`a tally.db copied back alone over a SIGKILLed directory is refused at start, with what to do${snapshot ? ' (an empty snapshot there)' : ''}`, async () => {
  const dir = newDataDir();
  const key = createOrg(dir);
  let server = await startTallyd(dir);
  try {
    let call = caller(server, key);
    await setUp(call);
    if (snapshot) {
      await server.stop();
      server = await startTallyd(dir);
      call = caller(server, key);
    }
    for (let b = 0; b < 20; b++) await call('POST', '/api/v1/events/batch', { events: batch('a', b) });
    // the older copy: the documented online backup of the time, taken while tallyd ran (idle)
    const older = join(newDataDir(), 'tally.db');
    sqlite(join(dir, 'tally.db'), `.backup ${older}`);
    // many more writes (pages past the older file's end), then a checkpoint, as tallyd's own
    // come under load: the log now holds only the commits after it, one more batch
    for (let b = 20; b < 60; b++) await call('POST', '/api/v1/events/batch', { events: batch('a', b) });
    sqlite(join(dir, 'tally.db'), 'PRAGMA wal_checkpoint(TRUNCATE)');
    await call('POST', '/api/v1/events', { event: batch('c', 0, 'calls', 1)[0] });
    await server.kill();
    assert.ok(existsSync(join(dir, 'tally.db-wal')), 'a SIGKILL leaves the log');
    assert.equal(existsSync(join(dir, 'events.snapshot')), snapshot);

    copyFileSync(older, join(dir, 'tally.db')); // the forbidden restore by hand
    const refused = await startTallyd(dir).then(
      (s) => { server = s; return null; },
      (e) => e.message,
    );
    assert.ok(refused, 'tallyd started on the damaged store');
    assert.match(refused, /tallyd exited 1/);
    assert.match(refused, /the store is damaged: tally\.db holds 1000 events but counts 3001 as stored \(organization 1: 1000 held, 3001 counted\)/);
    assert.match(refused, /copied back alone over a directory a crash left, and SQLite replayed the tally\.db-wal there.* tally restore/);
  } finally {
    server.child.kill('SIGKILL'); // a refused start has exited already
  }
});

test('a healthy store starts reading every event back: after a SIGKILL, and after a metric deletion hid events', async () => {
  const dir = newDataDir();
  const keys = [createOrg(dir, 'One'), createOrg(dir, 'Two')];
  let server = await startTallyd(dir);
  try {
    const calls = keys.map((k) => caller(server, k));
    await setUp(calls[0]);
    await setUp(calls[0], 'gone');
    await setUp(calls[1]);
    for (let b = 0; b < 5; b++) {
      await calls[0]('POST', '/api/v1/events/batch', { events: batch('x', b) });
      await calls[0]('POST', '/api/v1/events/batch', { events: batch('y', b, 'gone', 7) });
      await calls[1]('POST', '/api/v1/events/batch', { events: batch('z', b, 'calls', 3) });
    }
    // the metric goes: its 35 events are hidden from lists, and still stored
    await calls[0]('DELETE', '/api/v1/billable_metrics/gone');
    const total = async (i) => (await calls[i]('GET', '/api/v1/events?per_page=1')).meta.total_count;
    const listed = [250, 15];
    assert.deepEqual([await total(0), await total(1)], listed);
    let stored = 300;
    for (const kill of [true, false]) {
      if (kill) await server.kill(); else await server.stop();
      rmSync(join(dir, 'events.snapshot'), { force: true }); // every event read back
      server = await startTallyd(dir);
      assert.match(server.stderr(), new RegExp(`0 event identities from the snapshot, ${stored} stored events read back`));
      calls.splice(0, 2, ...keys.map((k) => caller(server, k)));
      assert.deepEqual([await total(0), await total(1)], listed);
      await calls[1]('POST', '/api/v1/events/batch', { events: batch(`after-${kill}`, 0, 'calls', 2) });
      listed[1] += 2;
      stored += 2;
    }
    await server.stop();
  } finally {
    server.child.kill('SIGKILL');
  }
});
