// `tally restore` (audit 9): restoring a backup by copying tally.db back over a data directory
// a crashed tallyd left kept that run's tally.db-wal beside it; SQLite replayed it onto the
// older file at the next start, and tallyd served the damaged store (GET /customers 500, new
// writes 200 into it). `tally restore BACKUP` checks the backup and removes the replaced
// store's log (and its -shm, and events.snapshot) before putting the copy in place.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, cpSync, existsSync, openSync, readFileSync, readdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { newDataDir, startTallyd, startWithOrg, tally } from '../lib/tallyd.mjs';

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
  refused(logged, /write-ahead log beside it .*logged\.db-wal.*\.backup COPY/);

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
