// What an operator meets around the process (audit 11): the data directory's lock when its
// lock file is removed, signals, the store failing under tallyd, upgrades from the CLI, and
// messages that must name the cause.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { closeSync, openSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createOrg, newDataDir, startTallyd, startWithOrg, tally, tallyBin, tallydBin } from '../lib/tallyd.mjs';

// The lock was an flock on DATA/tally.lock, a file that outlives every stop and holds the
// last pid, so it looks stale: removing it let a second tallyd open the same store and both
// wrote (one transaction_id stored twice).
test('removing tally.lock while tallyd runs does not let a second process in', async () => {
  const t = await startWithOrg();
  try {
    unlinkSync(join(t.dataDir, 'tally.lock'));
    const second = spawnSync(tallydBin, ['--data-dir', t.dataDir, '--listen', '127.0.0.1:0'], { encoding: 'utf8', timeout: 5000 });
    assert.equal(second.status, 1, `second tallyd: ${second.stderr}`);
    assert.match(second.stderr, /in use by another Tally process/);
    const cli = tally(['--data-dir', t.dataDir, 'org', 'create', 'Late']);
    assert.equal(cli.status, 1, cli.stdout);
    assert.match(cli.stderr, /in use by another Tally process.*stop it first/);
    const list = tally(['--data-dir', t.dataDir, 'org', 'list']);
    assert.equal(list.status, 1, list.stdout);
    assert.match(list.stderr, /in use by another Tally process/);
  } finally { await t.cleanup(); }
});

// SIGHUP (a closed terminal under `make run`, a dropped ssh session, a log rotator) took the
// default action: exit 129 with no drain, no line and no snapshot. tallyd has nothing to
// reload, so it stops cleanly, as for SIGTERM.
test('SIGHUP stops tallyd cleanly, as SIGTERM does', async () => {
  const t = await startWithOrg();
  const created = await t.api('/api/v1/customers', { method: 'POST', body: { customer: { external_id: 'hup' } } });
  assert.equal(created.status, 200);
  t.server.child.kill('SIGHUP');
  const r = await t.server.exited;
  assert.equal(r.code, 0, `exit ${r.code ?? r.signal}: ${t.server.stderr()}`);
  assert.match(t.server.stderr(), /SIGHUP received: draining/);
  assert.match(t.server.stderr(), /stopped cleanly/);
  rmSync(t.dataDir, { recursive: true, force: true });
});

// Overwrites the root page of the table or index `name` in the stopped data directory's database.
function damageRootPage(dir, name) {
  const db = join(dir, 'tally.db');
  const q = spawnSync('sqlite3', [db, `SELECT rootpage FROM sqlite_master WHERE name = '${name}'; PRAGMA page_size;`], { encoding: 'utf8' });
  assert.equal(q.status, 0, q.stderr);
  const [page, size] = q.stdout.trim().split('\n').map(Number);
  const fd = openSync(db, 'r+');
  writeSync(fd, Buffer.alloc(size, 0xde), 0, size, (page - 1) * size);
  closeSync(fd);
}

// A damaged database page (or a full disk) answered every write 500 "retry later" with
// nothing on stderr and /health 200 "ok". Now one line names SQLite's code and what to do,
// once however many requests fail, and /health answers 503 with the same reason.
test('a damaged database page is said once on stderr with SQLITE_CORRUPT, and /health answers 503', async () => {
  const t = await startWithOrg();
  try {
    await t.call('POST', '/api/v1/customers', { customer: { external_id: 'c', currency: 'EUR' } });
    await t.restart({
      between: (dir) => damageRootPage(dir, 'wallet_transactions_by_wallet'),
    });
    const before = await fetch(`${t.url}/health`);
    assert.equal(before.status, 200);
    const wallet = { wallet: { external_customer_id: 'c', rate_amount: '1', currency: 'EUR', name: 'w', granted_credits: '10' } };
    for (let i = 0; i < 3; i++) {
      const r = await t.api('/api/v1/wallets', { method: 'POST', body: wallet });
      assert.equal(r.status, 500, await r.text());
    }
    const lines = t.server.stderr().split('\n').filter((l) => /the store fails changes/.test(l));
    assert.equal(lines.length, 1, t.server.stderr());
    assert.match(lines[0], /SQLITE_CORRUPT \(database disk image is malformed\).*integrity_check/);
    const health = await fetch(`${t.url}/health`);
    assert.equal(health.status, 503);
    const h = await health.json();
    assert.equal(h.status, 'failing');
    assert.match(h.reason, /SQLITE_CORRUPT/);
  } finally { await t.cleanup(); }
});

// A read the store failed (a damaged page, as a restore over a crashed directory left: audit
// 9) answered 500 store_failed without the message API.md promises, said nothing on stderr,
// and /health stayed "ok". Now the answer and one line on stderr name SQLite's code, and
// /health answers 503 for a damaged file until a restart.
test('a read that meets a damaged page answers 500 naming SQLITE_CORRUPT, says so once on stderr, and /health answers 503', async () => {
  const t = await startWithOrg();
  try {
    await t.call('POST', '/api/v1/customers', { customer: { external_id: 'c', currency: 'EUR' } });
    await t.restart({
      between: (dir) => damageRootPage(dir, 'customers'),
    });
    assert.equal((await fetch(`${t.url}/health`)).status, 200);
    for (let i = 0; i < 3; i++) {
      const r = await t.api('/api/v1/customers');
      const body = await r.json();
      assert.equal(r.status, 500, JSON.stringify(body));
      assert.equal(body.code, 'store_failed');
      assert.equal(body.message, 'the store could not be read: SQLITE_CORRUPT (database disk image is malformed)');
    }
    const lines = t.server.stderr().split('\n').filter((l) => /a read failed in the store/.test(l));
    assert.equal(lines.length, 1, t.server.stderr());
    assert.match(lines[0], /SQLITE_CORRUPT \(database disk image is malformed\).*integrity_check/);
    const health = await fetch(`${t.url}/health`);
    assert.equal(health.status, 503);
    const h = await health.json();
    assert.equal(h.status, 'failing');
    assert.match(h.reason, /the store fails reads: SQLITE_CORRUPT/);
  } finally { await t.cleanup(); }
});

// `tally org list`, a read, upgraded an older store for good (the release it came from then
// refused it). A read now refuses an older schema and says what upgrades it.
test('tally org list refuses a store of an older schema, and leaves it as it was', () => {
  const dir = newDataDir();
  createOrg(dir, 'Old');
  const db = join(dir, 'tally.db');
  const version = () => Number(spawnSync('sqlite3', [db, 'PRAGMA user_version;'], { encoding: 'utf8' }).stdout.trim());
  const current = version();
  const older = spawnSync('sqlite3', [db, `PRAGMA user_version = ${current - 1};`], { encoding: 'utf8' });
  assert.equal(older.status, 0, older.stderr);
  const r = tally(['--data-dir', dir, 'org', 'list']);
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stderr, new RegExp(`schema version ${current - 1}, older than this Tally's \\(${current}\\).*starting tallyd.*upgrades it`));
  assert.equal(version(), current - 1);
  rmSync(dir, { recursive: true, force: true });
});

// After `tally org rotate-key` of the demo organization, `make run` printed the dead key from
// DATA/demo-api-key (and README's `KEY=$(cat data/demo-api-key)` read it). rotate-key now
// rewrites that file when it held the rotated organization's key, and leaves it otherwise.
test('org rotate-key keeps demo-api-key in step when it held the rotated key', () => {
  const dir = newDataDir();
  const demo = createOrg(dir, 'Demo');
  createOrg(dir, 'Other');
  const file = join(dir, 'demo-api-key');
  writeFileSync(file, `${demo}\n`, { mode: 0o600 });
  const other = tally(['--data-dir', dir, 'org', 'rotate-key', '2']);
  assert.equal(other.status, 0, other.stderr);
  assert.equal(readFileSync(file, 'utf8'), `${demo}\n`);
  const r = tally(['--data-dir', dir, 'org', 'rotate-key', '1']);
  assert.equal(r.status, 0, r.stderr);
  const fresh = r.stdout.trim().split('\n').pop();
  assert.notEqual(fresh, demo);
  assert.equal(readFileSync(file, 'utf8'), `${fresh}\n`);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.match(r.stderr, /demo-api-key/);
  rmSync(dir, { recursive: true, force: true });
});

// Messages an operator could not act on (audit 11, F6).
test('refusals say what to do: empty --data-dir, a missing parent, --quiet=1, --data-dir after the command', () => {
  const empty = spawnSync(tallydBin, ['--data-dir', ''], { encoding: 'utf8', timeout: 5000 });
  assert.equal(empty.status, 2);
  assert.match(empty.stderr, /--data-dir needs a directory/);
  const parent = join(newDataDir(), 'missing', 'sub');
  const nested = spawnSync(tallydBin, ['--data-dir', parent, '--listen', '127.0.0.1:0'], { encoding: 'utf8', timeout: 5000 });
  assert.equal(nested.status, 1);
  assert.match(nested.stderr, /cannot create the data directory .*missing\/sub: No such file or directory \(its parent directory must exist\)/);
  const quiet = spawnSync(tallydBin, ['--quiet=1'], { encoding: 'utf8', timeout: 5000 });
  assert.equal(quiet.status, 2);
  assert.match(quiet.stderr, /--quiet and --realtime-http take no value/);
  const dir = newDataDir();
  const list = tally(['org', 'list', '--data-dir', dir]);
  assert.equal(list.status, 2);
  assert.match(list.stderr, /--data-dir goes before the command/);
  const create = tally(['org', 'create', 'X', '--data-dir', dir]);
  assert.equal(create.status, 2);
  assert.match(create.stderr, /--data-dir goes before the command/);
});

// tallyd on a mistyped --data-dir made a new, empty store there and served it without a word:
// every key was then refused, with nothing to say why. It says so now, once: a later start on
// that store, or on one made by `tally org create`, says nothing of it.
test('tallyd says when it made a new, empty store, and only then', async () => {
  const dir = newDataDir();
  try {
    const first = await startTallyd(dir);
    assert.match(first.stderr(), new RegExp(`${dir} held no store: a new, empty one was made there, with no organization yet \\(\`tally --data-dir ${dir} org create NAME\` makes one\\)`));
    await first.stop();
    const again = await startTallyd(dir);
    assert.doesNotMatch(again.stderr(), /held no store|upgraded the store/);
    await again.stop();
  } finally { rmSync(dir, { recursive: true, force: true }); }
  const made = newDataDir();
  try {
    createOrg(made, 'Made');
    const t = await startTallyd(made);
    assert.doesNotMatch(t.stderr(), /held no store|upgraded the store/);
    await t.stop();
  } finally { rmSync(made, { recursive: true, force: true }); }
});

// Small operator trips (audit 9): `make run` made its data directory 0755 with `mkdir -p`
// (tallyd makes one 0700, as ARCHITECTURE.md says); `tally --help` said `org list` shows "ID,
// name, test clock" (it shows the creation too); `tally org delete` said "unknown org
// command" without naming it.
test('make run makes its data directory 0700; tally --help and an unknown org command say what they mean', () => {
  const dir = join(newDataDir(), 'demo');
  // tallyd replaced by /bin/true: the script's own steps, then it exits
  const demo = spawnSync(new URL('../../scripts/run-demo.sh', import.meta.url).pathname, ['/bin/true', tallyBin, dir, '127.0.0.1:0'], { encoding: 'utf8' });
  assert.equal(demo.status, 0, demo.stderr);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  const help = tally(['--help']);
  assert.match(help.stdout, /org list +the organizations: ID, name, created at, test clock/);
  const unknown = tally(['org', 'delete', '1']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /^tally: unknown org command 'delete'\n/);
  const none = tally(['org']);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /^tally: org wants a command: create, list, rotate-key or reminder-days\n/);
});

// Audit 9: with its port taken, `make run` printed the URL, the key and a curl example, made the
// store, and only then did tallyd's bind fail under them. It now says so first, naming LISTEN=.
test('make run with its port taken says so before making or printing anything', async () => {
  const holder = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => holder.once('listening', r));
  const dir = join(newDataDir(), 'demo');
  try {
    const listen = `127.0.0.1:${holder.address().port}`;
    const demo = spawnSync(new URL('../../scripts/run-demo.sh', import.meta.url).pathname, ['/bin/true', tallyBin, dir, listen], { encoding: 'utf8' });
    assert.equal(demo.status, 1);
    assert.equal(demo.stdout, '');
    assert.match(demo.stderr, new RegExp(`something already listens on ${listen}; choose another address with LISTEN=`));
    assert.throws(() => statSync(dir), /ENOENT/);
  } finally { holder.close(); }
});

// Audit (session 30): a second `make run` on a DATA_DIR a running tallyd serves printed the
// banner and the key, then tallyd refused the directory. It now says so first.
test('make run on a store another tallyd serves says so before printing anything', async () => {
  const dir = newDataDir();
  createOrg(dir);
  const server = await startTallyd(dir);
  try {
    const demo = spawnSync(new URL('../../scripts/run-demo.sh', import.meta.url).pathname, ['/bin/true', tallyBin, dir, '127.0.0.1:0'], { encoding: 'utf8' });
    assert.equal(demo.status, 1);
    assert.equal(demo.stdout, '');
    assert.match(demo.stderr, /^make run: .*in use by another Tally process/);
  } finally { await server.stop(); }
});

// Audit (session 30): a request line whose path is not UTF-8 (answered 400) was logged with its
// raw bytes, so the log line was no JSON text and a log shipper dropped it. Read as bytes here:
// a string read of the pipe would have replaced them.
test('a request path that is not UTF-8 is logged as UTF-8 JSON', async () => {
  const dir = newDataDir();
  createOrg(dir);
  const log = join(dir, 'stderr.log');
  const fd = openSync(log, 'w');
  const child = spawn(tallydBin, ['--data-dir', dir, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', fd] });
  closeSync(fd);
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  let out = '';
  const port = await new Promise((resolve) => child.stdout.on('data', (d) => {
    out += d;
    const m = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
    if (m) resolve(Number(m[1]));
  }));
  const answer = await new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(Buffer.concat([Buffer.from('GET /api/v1/customers/'), Buffer.from([0xff, 0xfe]),
        Buffer.from(' HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')]));
    });
    let got = '';
    socket.on('data', (d) => { got += d; });
    socket.on('end', () => resolve(got));
    socket.on('error', reject);
  });
  assert.match(answer, /^HTTP\/1\.1 400 /);
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  const text = new TextDecoder('utf-8', { fatal: true }).decode(readFileSync(log)); // throws on a byte that is not UTF-8
  const line = text.split('\n').find((l) => l.includes('"status":400'));
  assert.equal(JSON.parse(line).path, '/api/v1/customers/??');
});
