// `tally restore` (audit 9): restoring a backup by copying tally.db back over a data directory
// a crashed tallyd left kept that run's tally.db-wal beside it; SQLite replayed it onto the
// older file at the next start, and tallyd served the damaged store (GET /customers 500, new
// writes 200 into it). `tally restore BACKUP` checks the backup and removes the replaced
// store's log (and its -shm, and events.snapshot) before putting the copy in place.
//
// `tally backup` (audit 9 again): the online backup the docs gave, sqlite3's `.backup`, never
// finished while tallyd kept committing (SQLite restarts such a backup from page 1 at every
// write of another process: killed after 120 s at 20 events/s on a 76 MB store). `tally backup
// FILE` copies in one read transaction, while tallyd runs, into a copy `tally restore` takes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, cpSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { newDataDir, startTallyd, startWithOrg, tally, tallyBin } from '../lib/tallyd.mjs';

// Every customer's external_id the organization's API lists, or the failed answer.
async function listed(url, key) {
  const r = await fetch(`${url}/api/v1/customers?per_page=1000`, { headers: { Authorization: `Bearer ${key}` } });
  const body = await r.json();
  if (r.status !== 200) return { status: r.status, body };
  return { status: 200, ids: body.customers.map((c) => c.external_id).sort() };
}

function sqlite(db, sql) {
  const r = spawnSync('sqlite3', [db, sql], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

const before = ['before_1', 'before_2', 'before_3', 'before_4', 'before_5'];

// A data directory as a crash leaves it: a backup of tally.db taken while tallyd was stopped,
// then many more writes, then SIGKILL (tally.db-wal holds them). Returns the test server
// (killed) and the backup's path.
async function crashedAfterBackup() {
  const t = await startWithOrg();
  for (const id of before) await t.call('POST', '/api/v1/customers', { customer: { external_id: id, name: 'x' } });
  const backup = join(newDataDir(), 'tally.db');
  await t.restart({ between: (dir) => copyFileSync(join(dir, 'tally.db'), backup) });
  const name = 'n'.repeat(200);
  for (let i = 1; i <= 300; i++) await t.call('POST', '/api/v1/customers', { customer: { external_id: `after_${i}`, name } });
  await t.server.kill();
  assert.ok(existsSync(join(t.dataDir, 'tally.db-wal')), 'a SIGKILL leaves the log');
  return { t, backup };
}

test('tally restore over a directory a SIGKILLed tallyd left gives back exactly the backup', async () => {
  const { t, backup } = await crashedAfterBackup();
  let naive;
  try {
  // The restore by hand the docs described (copy tally.db back), on a copy of the directory:
  // the crashed run's log is replayed onto the older file.
  const byHand = newDataDir();
  cpSync(t.dataDir, byHand, { recursive: true });
  copyFileSync(backup, join(byHand, 'tally.db'));
  naive = await startTallyd(byHand, ['--quiet']);
  const seen = await listed(naive.url, t.key);
  await naive.stop();
  assert.notDeepEqual(seen, { status: 200, ids: before }, 'copying tally.db back is not a restore');

  const r = tally(['--data-dir', t.dataDir, 'restore', backup]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /removed .*\/tally\.db-wal \(the replaced store's\)/);
  assert.match(r.stdout, /removed .*\/events\.snapshot/);
  assert.match(r.stdout, new RegExp(`restored ${backup} as .*/tally\\.db \\(schema version \\d+\\)`));
  for (const f of ['tally.db-wal', 'tally.db-shm', 'events.snapshot', 'tally.db.restoring'])
    assert.ok(!existsSync(join(t.dataDir, f)), `${f} is gone`);
  assert.equal(statSync(join(t.dataDir, 'tally.db')).mode & 0o777, 0o600);
  assert.deepEqual(readFileSync(join(t.dataDir, 'tally.db')), readFileSync(backup));

  t.server = await startTallyd(t.dataDir);
  t.url = t.server.url;
  assert.deepEqual(await listed(t.url, t.key), { status: 200, ids: before });
  await t.call('POST', '/api/v1/customers', { customer: { external_id: 'after_restore' } });
  assert.deepEqual(await listed(t.url, t.key), { status: 200, ids: [...before, 'after_restore'].sort() });
  await t.server.stop();
  assert.equal(sqlite(join(t.dataDir, 'tally.db'), 'PRAGMA integrity_check'), 'ok');
  } finally {
    naive?.child.kill('SIGKILL');
    t.server.child.kill('SIGKILL'); // after a failure only: a stopped one is gone
  }
});

test('tally restore refuses while tallyd runs, and refuses what is not a whole Tally backup, leaving the directory as it was', async () => {
  const { t, backup } = await crashedAfterBackup();
  try {
  const dir = t.dataDir;
  const files = () => readdirSync(dir).sort();
  const db = () => readFileSync(join(dir, 'tally.db'));
  const was = { files: files(), db: db(), wal: readFileSync(join(dir, 'tally.db-wal')) };
  const refused = (file, pattern) => {
    const r = tally(['--data-dir', dir, 'restore', file]);
    assert.equal(r.status, 1, `${file}: ${r.stdout}`);
    assert.match(r.stderr, pattern);
    assert.deepEqual(files(), was.files);
    assert.deepEqual(db(), was.db);
  };
  const other = newDataDir();

  const text = join(other, 'notes.db');
  writeFileSync(text, 'not a database\n'.repeat(200));
  refused(text, /notes\.db is not a SQLite database Tally can restore: file is not a database/);
  refused(join(other, 'missing.db'), /missing\.db: No such file or directory/);
  refused(other, /is not a file/);
  refused(join(dir, 'tally.db'), /is the data directory's own tally\.db/);

  const empty = join(other, 'empty.db');
  sqlite(empty, 'CREATE TABLE t (x)');
  refused(empty, /empty\.db is a SQLite database but not a Tally store/);

  const newer = join(other, 'newer.db');
  copyFileSync(backup, newer);
  sqlite(newer, 'PRAGMA user_version = 999');
  refused(newer, /newer\.db has schema version 999, newer than this Tally knows/);

  const damaged = join(other, 'damaged.db');
  copyFileSync(backup, damaged);
  const [page, size] = sqlite(damaged, "SELECT rootpage FROM sqlite_master WHERE name = 'customers_by_org_created'; PRAGMA page_size;").split('\n').map(Number);
  const fd = openSync(damaged, 'r+');
  writeSync(fd, Buffer.alloc(size, 0xde), 0, size, (page - 1) * size);
  closeSync(fd);
  refused(damaged, /damaged\.db is damaged: PRAGMA quick_check/);

  const logged = join(other, 'logged.db');
  copyFileSync(backup, logged);
  writeFileSync(`${logged}-wal`, 'frames');
  refused(logged, /write-ahead log beside it .*logged\.db-wal.*VACUUM INTO 'COPY'.*restore COPY/);
  const loggedStore = join(other, 'store');
  mkdirSync(loggedStore);
  copyFileSync(backup, join(loggedStore, 'tally.db'));
  writeFileSync(join(loggedStore, 'tally.db-wal'), 'frames');
  refused(join(loggedStore, 'tally.db'), new RegExp(`write-ahead log beside it .*tally --data-dir ${loggedStore} backup COPY`));

  t.server = await startTallyd(dir);
  t.url = t.server.url;
  const busy = tally(['--data-dir', dir, 'restore', backup]);
  assert.equal(busy.status, 1, busy.stdout);
  assert.match(busy.stderr, /in use by another Tally process \(pid \d+, probably tallyd\); stop it first/);
  assert.ok(existsSync(join(dir, 'tally.db-wal')), 'the running store keeps its log');
  assert.equal((await listed(t.url, t.key)).ids.length, before.length + 300);
  await t.server.stop();

  const usage = tally(['--data-dir', dir, 'restore']);
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /restore wants one BACKUP file/);
  const help = tally(['restore', '--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /tally.db-wal and tally.db-shm/);
  assert.ok(was.wal.length > 0);
  } finally {
    t.server.child.kill('SIGKILL'); // after a failure only: a stopped one is gone
  }
});


// The CLI without blocking the event loop (the load goes on meanwhile).
function tallyAsync(args) {
  return new Promise((resolve) => {
    const child = spawn(tallyBin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

test('tally backup under a running ingest completes, and restores a consistent past state', async () => {
  const t = await startWithOrg();
  let restored;
  try {
    const post = (path, body) => t.api(path, { method: 'POST', body });
    await t.call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' } });
    await t.call('POST', '/api/v1/plans', { plan: { code: 'p', name: 'P', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR' } });
    for (let s = 0; s < 2; s++)
      await t.call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: `c${s}`, plan_code: 'p', external_id: `s${s}`, subscription_at: '2020-01-01T00:00:00Z' } });
    // a store of a few MB, so that the copy takes a while among the load's commits
    const pad = 'x'.repeat(1000);
    const batch = (w, b) => Array.from({ length: 20 }, (_, i) => ({ transaction_id: `w${w}-b${b}-${i}`, external_subscription_id: `s${w}`, code: 'calls', properties: { pad } }));
    for (let b = 0; b < 100; b++) await t.call('POST', '/api/v1/events/batch', { events: batch(9, b).map((e) => ({ ...e, external_subscription_id: 's0' })) });

    // two clients, each sending its batches one after the other (batch k once k-1 was answered)
    const acked = [[], []]; // per client: [batch number, when it was answered]
    let stop = false;
    const client = async (w) => {
      for (let b = 0; !stop; b++) {
        const r = await post('/api/v1/events/batch', { events: batch(w, b) });
        assert.equal(r.status, 200, await r.text());
        await r.arrayBuffer().catch(() => {});
        acked[w].push([b, performance.now()]);
      }
    };
    const clients = [client(0), client(1)];
    await new Promise((r) => setTimeout(r, 1000));
    const file = join(newDataDir(), 'tally.db');
    const began = performance.now();
    const backup = await tallyAsync(['--data-dir', t.dataDir, 'backup', file]);
    const ended = performance.now();
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(clients);
    assert.equal(backup.status, 0, backup.stderr);
    const during = acked.flat().filter(([, at]) => at > began && at < ended).length;
    assert.ok(during > 0 || ended - began < 50, `tallyd took writes while the backup ran (${during} batches in ${Math.round(ended - began)} ms)`);
    const size = statSync(file).size;
    assert.match(backup.stdout, new RegExp(`backed up ${t.dataDir}/tally\\.db to ${file} \\(schema version \\d+, ${size} bytes\\)`));
    assert.equal(statSync(file).mode & 0o777, 0o600);
    for (const f of [`${file}-wal`, `${file}-shm`, `${file}-journal`, `${file}.partial`])
      assert.ok(!existsSync(f), `no ${f}`);
    assert.equal(sqlite(file, 'PRAGMA journal_mode'), 'delete', 'a file alone, no log to keep beside it');

    const before = acked.map((list) => list.filter(([, at]) => at < began).length);
    assert.ok(before[0] > 0 && before[1] > 0, `batches answered before the backup: ${before}`);
    await t.server.stop();

    const dir = newDataDir();
    const r = tally(['--data-dir', dir, 'restore', file]);
    assert.equal(r.status, 0, r.stderr);
    restored = await startTallyd(dir);
    const api = (path, body) => fetch(restored.url + path, {
      method: body ? 'POST' : 'GET',
      headers: { Authorization: `Bearer ${t.key}`, 'Content-Type': 'application/json' },
      body: body && JSON.stringify(body),
    });
    const total = (await (await api('/api/v1/events?per_page=1')).json()).meta.total_count;
    // each client's stored batches are a prefix of what it sent, holding every batch answered
    // before the backup began; each batch whole or not at all (the total says so)
    const stored = [];
    for (let w = 0; w < 2; w++) {
      let held = 0;
      for (const [b] of acked[w]) {
        const resent = await api('/api/v1/events/batch', { events: batch(w, b) });
        const body = await resent.json();
        if (resent.status === 422) {
          assert.equal(held, b, `client ${w}: batch ${b} stored after one that was not`);
          assert.deepEqual(Object.values(body.error_details), Array(20).fill({ transaction_id: ['value_already_exist'] }));
          held++;
        } else {
          assert.equal(resent.status, 200, JSON.stringify(body)); // after the backup: not in it
        }
      }
      assert.ok(held >= before[w], `client ${w}: ${before[w]} batches answered before the backup, ${held} in it`);
      stored.push(held);
    }
    assert.equal(total, (100 + stored[0] + stored[1]) * 20);
    await restored.stop();
  } finally {
    restored?.child.kill('SIGKILL');
    t.server.child.kill('SIGKILL'); // after a failure only: a stopped one is gone
  }
});

test('tally backup refuses a FILE that exists or lies in the data directory, and a directory with no store', async () => {
  const t = await startWithOrg();
  try {
    const dir = t.dataDir;
    const other = newDataDir();
    const refused = (args, pattern, status = 1) => {
      const r = tally(['--data-dir', dir, 'backup', ...args]);
      assert.equal(r.status, status, r.stdout);
      assert.match(r.stderr, pattern);
      assert.equal(r.stdout, '');
    };
    const kept = join(other, 'kept.db');
    writeFileSync(kept, 'an older backup');
    refused([kept], /kept\.db exists: a backup never replaces a file/);
    assert.equal(readFileSync(kept, 'utf8'), 'an older backup');
    refused([join(dir, 'copy.db')], /copy\.db is in the data directory .*: put the backup elsewhere/);
    assert.ok(!existsSync(join(dir, 'copy.db')));
    refused([join(other, 'missing', 'x.db')], /missing: No such file or directory/);
    writeFileSync(join(other, 'half.db.partial'), '');
    refused([join(other, 'half.db')], /half\.db\.partial exists: another backup to .*half\.db is running, or one stopped half way; if none runs, remove it/);
    assert.ok(!existsSync(join(other, 'half.db')));
    refused([], /backup wants one FILE/, 2);
    const empty = newDataDir();
    const none = tally(['--data-dir', join(empty, 'typo'), 'backup', join(other, 'x.db')]);
    assert.equal(none.status, 1);
    assert.match(none.stderr, /no Tally store in .*typo/);
    assert.ok(!existsSync(join(empty, 'typo')), 'a mistyped directory is not made');

    // while tallyd runs (above), and with it stopped: the same copy, restored as any
    await t.call('POST', '/api/v1/customers', { customer: { external_id: 'kept_1' } });
    await t.server.stop();
    const copy = join(other, 'stopped.db');
    const was = readFileSync(join(dir, 'tally.db'));
    const r = tally(['--data-dir', dir, 'backup', copy]);
    assert.equal(r.status, 0, r.stderr);
    // the store is only read (SQLite's read-only connection leaves an empty log and its index)
    assert.deepEqual(readFileSync(join(dir, 'tally.db')), was);
    assert.equal(statSync(join(dir, 'tally.db-wal'), { throwIfNoEntry: false })?.size ?? 0, 0);
    const back = newDataDir();
    assert.equal(tally(['--data-dir', back, 'restore', copy]).status, 0);
    t.server = await startTallyd(back);
    t.url = t.server.url;
    assert.deepEqual((await listed(t.url, t.key)).ids, ['kept_1']);
    const help = tally(['backup', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /while tallyd runs/);
    await t.server.stop();
  } finally {
    t.server.child.kill('SIGKILL');
  }
});
