// Starts real tallyd processes for the API and compatibility tests: a fresh data directory,
// an organization made with the real `tally` CLI, tallyd listening on a free port, and a
// check on exit that the sanitizers stayed silent. Nothing here is mocked.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const binDir = process.env.TALLY_BIN_DIR || new URL('../../build/asan', import.meta.url).pathname;
export const tallyBin = join(binDir, 'tally');
export const tallydBin = join(binDir, 'tallyd');
// The disk that fails on demand (tests/faults/disk_faults.c), built beside them.
export const diskFaultsLib = join(binDir, 'disk_faults.so');

// Every data directory made here goes when the test process exits, whoever made it.
const dataDirs = [];
process.on('exit', () => {
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

export function newDataDir() {
  const dir = mkdtempSync(join(tmpdir(), 'tally-test-'));
  dataDirs.push(dir);
  return dir;
}

// Runs the CLI; returns { status, stdout, stderr }.
export function tally(args, opts = {}) {
  const r = spawnSync(tallyBin, args, { encoding: 'utf8', ...opts });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function createOrg(dataDir, name = 'Acme', extra = []) {
  const r = tally(['--data-dir', dataDir, 'org', 'create', name, ...extra]);
  if (r.status !== 0) throw new Error(`tally org create failed: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return lines[lines.length - 1];
}

const SANITIZER_REPORT = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:/;

// Starts tallyd on a data directory; resolves once it prints its address. `nofile`, a shell
// `ulimit` option string ('-S -n 256'), starts it under that open-files limit; `env`, variables
// added to the test's own environment.
export async function startTallyd(dataDir, extraArgs = [], { nofile, env } = {}) {
  const args = ['--data-dir', dataDir, '--listen', '127.0.0.1:0', ...extraArgs];
  const opts = { stdio: ['ignore', 'pipe', 'pipe'], env: env ? { ...process.env, ...env } : process.env };
  const child = nofile
    ? spawn('/bin/sh', ['-c', `ulimit ${nofile} && exec "$0" "$@"`, tallydBin, ...args], opts)
    : spawn(tallydBin, args, opts);
  let stdout = '';
  let stderr = '';
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  // Started once it listens (stdout) and its start report is read too (stderr, written before:
  // the two pipes are read apart, and a test that reads the report must find it).
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tallyd did not start: ${stderr}`)), 15000);
    const check = () => {
      const m = stdout.match(/listening on (http:\/\/\S+)/);
      if (m && /started in/.test(stderr)) { clearTimeout(timer); resolve(m[1]); }
    };
    child.stderr.on('data', (d) => { stderr += d; check(); });
    child.stdout.on('data', (d) => { stdout += d; check(); });
    exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`tallyd exited ${code}: ${stderr}`)); });
  });
  return {
    url,
    child,
    exited,
    stderr: () => stderr,
    // SIGTERM, and the exit status and sanitizer silence every clean stop must show.
    async stop() {
      child.kill('SIGTERM');
      const r = await exited;
      if (r.code !== 0) throw new Error(`tallyd exited ${r.code ?? r.signal} on SIGTERM: ${stderr}`);
      if (SANITIZER_REPORT.test(stderr)) throw new Error(`sanitizer report:\n${stderr}`);
      return r;
    },
    async kill() {
      child.kill('SIGKILL');
      return exited;
    },
  };
}

// One server with one organization, for a test file. The returned object stays valid
// across restart(): api() always talks to the current process, started with `serverArgs`
// every time.
export async function startWithOrg(orgArgs = [], serverArgs = []) {
  const dataDir = newDataDir();
  const key = createOrg(dataDir, 'Acme', orgArgs);
  const t = { dataDir, key, server: await startTallyd(dataDir, serverArgs) };
  t.url = t.server.url;
  // fetch against the API with the organization's key.
  t.api = (path, { method = 'GET', body, headers = {}, raw, key: k = key } = {}) => {
    const h = { Authorization: `Bearer ${k}`, ...headers };
    if (body !== undefined || raw !== undefined) h['Content-Type'] = 'application/json';
    return fetch(t.url + path, {
      method,
      headers: h,
      body: raw !== undefined ? raw : body !== undefined ? JSON.stringify(body) : undefined,
    });
  };
  // The parsed answer of a request that must succeed (200), else a failure naming the request.
  t.call = async (method, path, body) => {
    const r = await t.api(path, { method, body });
    const b = await r.json();
    assert.equal(r.status, 200, `${method} ${path}: ${JSON.stringify(b)}`);
    return b;
  };
  // Stops (cleanly, or with SIGKILL), runs `between` on the idle data directory, starts again.
  t.restart = async ({ kill = false, between } = {}) => {
    if (kill) await t.server.kill(); else await t.server.stop();
    if (between) await between(dataDir);
    t.server = await startTallyd(dataDir, serverArgs);
    t.url = t.server.url;
  };
  t.cleanup = async () => {
    await t.server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  return t;
}
