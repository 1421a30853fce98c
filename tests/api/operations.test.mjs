// What an operator meets around the process (audit 11): the data directory's lock when its
// lock file is removed, signals, the store failing under tallyd, upgrades from the CLI, and
// messages that must name the cause.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { startWithOrg, tally, tallydBin } from '../lib/tallyd.mjs';

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
