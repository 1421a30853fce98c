// The in-process benchmarks make their store under $TMPDIR, so that bench/run.sh, which points
// it at its own directory, removes it with that directory when a run is interrupted. An audit's
// Ctrl-C during `make bench` left a /tmp/tally-bench-* of 5 MB: the benchmark always made it
// in /tmp and removed it only at its own end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { tallydBin } from '../lib/tallyd.mjs';

const benchDir = join(dirname(tallydBin), 'bench');

for (const [name, args] of [
  ['bench_engine_customers', ['100000000', '1', '1']],
  ['bench_engine_events', ['100000000', '1', '1', '10']],
]) {
  test(`${name} makes its store under $TMPDIR (an interrupted bench/run.sh then removes it)`, { skip: !existsSync(join(benchDir, name)) && `no ${name} in ${benchDir}` }, async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tally-test-benchtmp-'));
    const child = spawn(join(benchDir, name), args, { env: { ...process.env, TMPDIR: tmp }, stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    try {
      let made = [];
      for (let i = 0; i < 200 && made.length === 0 && child.exitCode === null; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        made = readdirSync(tmp).filter((f) => f.startsWith('tally-bench-'));
      }
      assert.equal(made.length, 1, `the benchmark's store is not under TMPDIR (${tmp})`);
      // killed as an interrupt would: what is left is inside the directory a trap removes
      child.kill('SIGKILL');
      await exited;
      assert.ok(readdirSync(join(tmp, made[0])).includes('tally.db'));
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(tmp, { recursive: true, force: true });
    }
  });
}
