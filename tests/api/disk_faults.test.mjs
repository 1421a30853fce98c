// What tallyd answers when its disk refuses, on a real tallyd whose writes and syncs go through
// a disk that fails on demand (tests/faults/disk_faults.c, preloaded). An earlier audit ran
// such a shim by hand and found a 2xx after a refused sync: the writer's own sync before a
// running snapshot failed, Linux reported the failure to that one fdatasync only, and the
// syncer's next one succeeded and acknowledged 60 events whose log pages the kernel may have
// dropped. The rule these tests hold: after a refused sync, nothing is acknowledged until a
// restart, whichever thread's sync met it; a full disk refuses changes whole and takes them
// again once it has room; a restart finds every acknowledged change, and a retry of one in
// doubt counts once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createOrg, diskFaultsLib, newDataDir, startTallyd } from '../lib/tallyd.mjs';

// A tallyd on dir whose disk obeys the control file ctl (empty: a healthy disk).
function startFaulty(dir, ctl, args = []) {
  writeFileSync(ctl, '');
  const asan = [process.env.ASAN_OPTIONS, 'verify_asan_link_order=0'].filter(Boolean).join(':');
  return startTallyd(dir, args, { env: { LD_PRELOAD: diskFaultsLib, TALLY_DISK_FAULTS: ctl, ASAN_OPTIONS: asan } });
}

function client(server, key) {
  const request = async (method, path, body) => {
    const r = await fetch(server.url + path, {
      method,
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: body && JSON.stringify(body),
    });
    return { status: r.status, body: await r.json() };
  };
  const ok = async (method, path, body) => {
    const r = await request(method, path, body);
    assert.equal(r.status, 200, `${method} ${path}: ${JSON.stringify(r.body)}`);
    return r.body;
  };
  return { request, ok };
}

// A customer c on a plan at 1 EUR a call, with a wallet of 1,000 free credits at 1 EUR each.
async function setUp({ ok }) {
  const bm = (await ok('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' } })).billable_metric;
  await ok('POST', '/api/v1/plans', { plan: { code: 'p', name: 'P', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [{ billable_metric_id: bm.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } });
  await ok('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c', plan_code: 'p', external_id: 's', subscription_at: '2020-01-01T00:00:00Z' } });
  return (await ok('POST', '/api/v1/wallets', { wallet: { external_customer_id: 'c', currency: 'EUR', rate_amount: '1', name: 'W', granted_credits: '1000' } })).wallet.lago_id;
}

// A fresh data directory with one organization, a faulty tallyd on it, and setUp done.
async function faultyStart(args = []) {
  const dir = newDataDir();
  const ctl = join(dir, 'faults');
  const key = createOrg(dir);
  const server = await startFaulty(dir, ctl, args);
  const api = client(server, key);
  return { dir, ctl, key, server, api, walletId: await setUp(api) };
}

const event = (transaction_id) => ({ transaction_id, external_subscription_id: 's', code: 'calls' });
const batch = (tag, n) => Array.from({ length: n }, (_, i) => event(`${tag}-${i}`));

// What the restarted store holds: the events stored, and the wallet's credits, which must be
// what those events cost (1 credit each), whatever was in doubt.
async function stored({ ok }, walletId) {
  const events = (await ok('GET', '/api/v1/events?per_page=1')).meta.total_count;
  const wallet = (await ok('GET', `/api/v1/wallets/${walletId}`)).wallet;
  assert.equal(wallet.credits_balance, `${1000 - events}.0`, `${events} events stored`);
  return events;
}

async function stopAfterRefusedSync(server) {
  server.child.kill('SIGTERM');
  const { code } = await server.exited;
  assert.equal(code, 1, 'a stop after a refused sync exits 1');
  assert.match(server.stderr(), /stopped after the disk refused a sync/);
  assert.doesNotMatch(server.stderr(), /ERROR: AddressSanitizer|runtime error:/);
}

test('a sync refused once fails its change and every change after it, until a restart, which finds every acknowledged one', async () => {
  const { dir, ctl, key, server, api, walletId } = await faultyStart();
  for (const id of ['e1', 'e2', 'e3']) await api.ok('POST', '/api/v1/events', { event: event(id) });

  writeFileSync(ctl, 'sync EIO once first\n');
  const inDoubt = await api.request('POST', '/api/v1/events', { event: event('e4') });
  assert.equal(inDoubt.status, 500);
  assert.match(inDoubt.body.message, /may or may not have been saved/);

  writeFileSync(ctl, ''); // the disk syncs again, as Linux's next fdatasync succeeds
  const after = await api.request('POST', '/api/v1/events', { event: event('e5') });
  assert.equal(after.status, 500, 'nothing is acknowledged after a refused sync');
  assert.match(after.body.message, /refused an earlier sync.*nothing was applied/);
  const topUp = await api.request('POST', '/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: walletId, granted_credits: '5' } });
  assert.equal(topUp.status, 500, 'nor any other change');
  const health = await fetch(server.url + '/health');
  assert.equal(health.status, 503);
  assert.match((await health.json()).reason, /refused a sync/);
  await stopAfterRefusedSync(server);

  const again = await startTallyd(dir);
  const healthy = client(again, key);
  for (const id of ['e1', 'e2', 'e3']) await healthy.ok('GET', `/api/v1/events/${id}`);
  assert.equal((await healthy.request('GET', '/api/v1/events/e5')).status, 404);
  // the client retries what was not acknowledged; the one in doubt counts once either way
  const retry = await healthy.request('POST', '/api/v1/events', { event: event('e4') });
  assert.ok(retry.status === 200 || retry.body.error_details?.transaction_id?.[0] === 'value_already_exist', JSON.stringify(retry.body));
  await healthy.ok('POST', '/api/v1/events', { event: event('e5') });
  assert.equal(await stored(healthy, walletId), 5);
  await again.stop();
});

test('a sync refused before a running snapshot fails every change after it', async () => {
  // a snapshot is due once 100 events are stored: after the second batch of 50
  const { dir, ctl, key, server, api, walletId } = await faultyStart(['--snapshot-every', '100']);
  await api.ok('POST', '/api/v1/events/batch', { events: batch('a', 50) });

  // the second batch's own sync passes (the writer syncs it, nothing else waiting) and is
  // answered; the sync after it, the writer's before it forks the snapshot, is refused
  writeFileSync(ctl, 'sync EIO after 1 snapshot\n');
  await api.ok('POST', '/api/v1/events/batch', { events: batch('b', 50) });
  const refused = await api.request('POST', '/api/v1/events/batch', { events: batch('c', 50) });
  assert.equal(refused.status, 500, `acknowledged after a refused sync: ${JSON.stringify(refused.body).slice(0, 200)}`);
  const metrics = await (await fetch(server.url + '/metrics')).text();
  assert.match(metrics, /^tally_engine_snapshot_failures_total 1$/m, 'the refused sync was the snapshot\'s');
  assert.match(metrics, /^tally_engine_sync_failed 1$/m);
  await stopAfterRefusedSync(server);

  const again = await startTallyd(dir);
  assert.equal(await stored(client(again, key), walletId), 100);
  await again.stop();
});

test('under concurrent batches, a sync refused once leaves no acknowledged event behind and none counted twice', async () => {
  const { dir, ctl, key, server, api, walletId } = await faultyStart();
  const acknowledged = [];
  let armed = false;
  let sent = 0;
  // 16 clients send batches of 10 until each has met a refusal; the fault is armed once 40
  // batches are acknowledged, with the syncer handing groups over (commands waiting)
  const clientLoop = async (c) => {
    for (let b = 0; ; b++) {
      const events = batch(`k${c}-${b}`, 10);
      sent += 1;
      const r = await api.request('POST', '/api/v1/events/batch', { events });
      if (r.status !== 200) {
        assert.equal(r.status, 500, JSON.stringify(r.body));
        return;
      }
      assert.ok(armed || acknowledged.length < 1000, 'never refused');
      acknowledged.push(...events.map((e) => e.transaction_id));
      if (!armed && acknowledged.length >= 400) {
        armed = true;
        writeFileSync(ctl, 'sync EIO once concurrent\n');
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, (_, c) => clientLoop(c)));
  assert.ok(armed && sent > 40);
  await stopAfterRefusedSync(server);

  const again = await startTallyd(dir);
  const healthy = client(again, key);
  for (const id of acknowledged) await healthy.ok('GET', `/api/v1/events/${id}`);
  const total = await stored(healthy, walletId);
  assert.ok(total >= acknowledged.length, `${total} stored, ${acknowledged.length} acknowledged`);
  await again.stop();
});

test('a full disk refuses a change whole, says so, and takes it once it has room', async () => {
  const { dir, ctl, key, server, api, walletId } = await faultyStart();
  await api.ok('POST', '/api/v1/events', { event: event('e1') });

  writeFileSync(ctl, 'write ENOSPC\n');
  const full = await api.request('POST', '/api/v1/events', { event: event('e2') });
  assert.equal(full.status, 500);
  assert.equal(full.body.code, 'store_failed');
  assert.match(full.body.message, /nothing was applied/);
  const health = await fetch(server.url + '/health');
  assert.equal(health.status, 503);
  assert.match((await health.json()).reason, /SQLITE_FULL/);
  assert.equal((await api.request('GET', '/api/v1/events/e2')).status, 404);
  // a wallet read first writes out the debits its customer's events left in the journal, which
  // a full disk refuses: it says to retry rather than show a balance without them
  const wallet = await api.request('GET', `/api/v1/wallets/${walletId}`);
  assert.equal(wallet.status, 500);
  assert.match(wallet.body.message, /retry later/);

  writeFileSync(ctl, '');
  assert.equal((await api.ok('GET', `/api/v1/wallets/${walletId}`)).wallet.credits_balance, '999.0');
  await api.ok('POST', '/api/v1/events', { event: event('e2') }); // the retry is taken, once
  assert.equal((await fetch(server.url + '/health')).status, 200);
  assert.equal(await stored(api, walletId), 2);
  await server.stop();

  const again = await startTallyd(dir);
  assert.equal(await stored(client(again, key), walletId), 2);
  await again.stop();
});
