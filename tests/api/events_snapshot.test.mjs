// The snapshot of event identities (engine/snapshot): a clean stop saves the writer's sets, the
// next start loads them and reads back only the events after them (and those live usage may
// still count). Whatever it reads, every duplicate is still refused, GET by transaction id
// still finds the latest event, and current usage is what it was; a snapshot the database
// contradicts (restored from an older copy, damaged, another database's) is not used, and then
// nothing is refused that the database does not hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startWithOrg, newDataDir } from '../lib/tallyd.mjs';

const SNAPSHOT = 'events.snapshot';
const DAY = 86400;
const at = (iso) => Date.parse(iso) / 1000;

// What the last start read back, from its log line.
function startReport(server) {
  const m = server.stderr().match(/(\d+) event identities from the snapshot, (\d+) stored events read back/);
  assert.ok(m, `no start report in: ${server.stderr()}`);
  const unused = server.stderr().match(/snapshot of event identities was not used: (.*)/);
  return { fromSnapshot: Number(m[1]), readBack: Number(m[2]), unused: unused ? unused[1] : null };
}

async function setUp(orgArgs = []) {
  const t = await startWithOrg(orgArgs);
  t.post = async (path, body) => {
    const r = await t.api(path, { method: 'POST', body });
    return { status: r.status, body: await r.json() };
  };
  const metric = await t.post('/api/v1/billable_metrics', { billable_metric: { code: 'tokens', name: 'Tokens', aggregation_type: 'sum_agg', field_name: 'tokens' } });
  const plan = await t.post('/api/v1/plans', { plan: { code: 'p', name: 'P', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR',
    charges: [{ billable_metric_id: metric.body.billable_metric.lago_id, charge_model: 'standard', properties: { amount: '0.01' } }] } });
  assert.equal(plan.status, 200, JSON.stringify(plan.body));
  for (const s of ['s1', 's2']) {
    const r = await t.post('/api/v1/subscriptions', { subscription: { external_customer_id: `c_${s}`, plan_code: 'p', external_id: s, subscription_at: '2020-01-01T00:00:00Z' } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  t.send = async (events) => {
    const r = await t.post('/api/v1/events/batch', { events });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  };
  t.usage = async (s) => (await (await t.api(`/api/v1/customers/c_${s}/current_usage?external_subscription_id=${s}`)).json()).customer_usage;
  // Every event given is refused as a duplicate, one request each.
  t.allDuplicates = async (events) => {
    for (const event of events) {
      const r = await t.post('/api/v1/events', { event });
      assert.equal(r.status, 422, `${event.transaction_id} was accepted again`);
      assert.deepEqual(r.body.error_details, { transaction_id: ['value_already_exist'] });
    }
  };
  return t;
}

const batch = (prefix, n, extra = {}) => Array.from({ length: n }, (_, i) => ({
  transaction_id: `${prefix}-${i}`, external_subscription_id: i % 2 ? 's1' : 's2', code: 'tokens', properties: { tokens: 10 + i }, ...extra,
}));

test('a clean stop saves the identities: the next start reads back only what usage may count', async () => {
  const t = await setUp(['--test-clock', '2026-03-10T00:00:00Z']);
  try {
    const past = batch('feb', 30, { timestamp: at('2026-02-05T00:00:00Z') }); // an earlier period
    const now = batch('mar', 20, { timestamp: at('2026-03-09T00:00:00Z') });
    const early = batch('apr', 4, { timestamp: at('2026-04-03T00:00:00Z') }); // sent ahead of its period
    await t.send(past);
    await t.send(now);
    await t.send(early);
    // the same transaction id on the other subscription: GET answers the latest
    await t.send([{ transaction_id: 'feb-0', external_subscription_id: 's1', code: 'tokens', timestamp: at('2026-02-06T00:00:00Z'), properties: { tokens: 1 } }]);
    const before = { s1: await t.usage('s1'), s2: await t.usage('s2') };
    assert.equal(before.s1.charges_usage[0].events_count + before.s2.charges_usage[0].events_count, 20);

    await t.restart();
    let r = startReport(t.server);
    assert.equal(r.unused, null);
    assert.equal(r.fromSnapshot, 55);
    // usage may count the March and April events (ids 31..54) and the last one (55): the 30
    // February events are not read back
    assert.equal(r.readBack, 25);
    assert.deepEqual({ s1: await t.usage('s1'), s2: await t.usage('s2') }, before);
    await t.allDuplicates([past[0], past[29], now[0], now[19], early[3]]);
    let got = await (await t.api('/api/v1/events/feb-0')).json();
    assert.equal(got.event.external_subscription_id, 's1');

    // a stop with nothing stored since the snapshot leaves the file as it is
    const before_idle = statSync(join(t.dataDir, SNAPSHOT)).mtimeMs;
    await new Promise((res) => setTimeout(res, 20));
    await t.restart();
    assert.equal(statSync(join(t.dataDir, SNAPSHOT)).mtimeMs, before_idle);
    assert.equal(startReport(t.server).fromSnapshot, 55);

    // events after the snapshot, then a crash: the old snapshot still holds, the tail is read
    const tail = batch('tail', 6, { timestamp: at('2026-03-09T12:00:00Z') });
    await t.send(tail);
    const withTail = { s1: await t.usage('s1'), s2: await t.usage('s2') };
    await t.restart({ kill: true });
    r = startReport(t.server);
    assert.equal(r.fromSnapshot, 55);
    assert.equal(r.readBack, 25 + 6);
    assert.deepEqual({ s1: await t.usage('s1'), s2: await t.usage('s2') }, withTail);
    await t.allDuplicates([past[5], tail[0], tail[5]]);

    // the early events count once their period is current, after a restart from the snapshot
    assert.equal((await t.api('/api/v1/test_clock/advance', { method: 'POST', body: { test_clock: { to: '2026-04-10T00:00:00Z' } } })).status, 200);
    await t.restart();
    r = startReport(t.server);
    assert.equal(r.fromSnapshot, 61);
    const april = (await t.usage('s1')).charges_usage[0].events_count + (await t.usage('s2')).charges_usage[0].events_count;
    assert.equal(april, 4);
    got = await (await t.api('/api/v1/events/feb-0')).json();
    assert.equal(got.event.external_subscription_id, 's1');
  } finally { await t.cleanup(); }
});

test('a snapshot the database does not agree with is not used, and refuses nothing wrongly', async () => {
  const t = await setUp();
  const copy = join(newDataDir(), 'copy');
  try {
    const first = batch('first', 10);
    await t.send(first);
    // a copy of the database as it was (and its snapshot), taken while stopped
    await t.restart({ between: (dir) => {
      mkdirSync(copy);
      for (const f of readdirSync(dir)) if (f.startsWith('tally.db')) copyFileSync(join(dir, f), join(copy, f));
    } });
    const second = batch('second', 10);
    await t.send(second);
    // the database goes back to the copy; the snapshot (ending at event 20) stays
    await t.restart({ between: (dir) => {
      for (const f of readdirSync(dir)) if (f.startsWith('tally.db')) rmSync(join(dir, f));
      for (const f of readdirSync(copy)) copyFileSync(join(copy, f), join(dir, f));
      assert.ok(existsSync(join(dir, SNAPSHOT)));
    } });
    let r = startReport(t.server);
    assert.match(r.unused, /ends at event 20, which this database does not hold/);
    assert.equal(r.fromSnapshot, 0);
    assert.equal(r.readBack, 10);
    await t.allDuplicates([first[0], first[9]]);
    await t.send(second); // lost with the restore: new again, not duplicates

    // a damaged file: one byte changed in the middle
    await t.restart({ between: (dir) => {
      const bytes = readFileSync(join(dir, SNAPSHOT));
      bytes[bytes.length >> 1] ^= 0x40;
      writeFileSync(join(dir, SNAPSHOT), bytes);
    } });
    r = startReport(t.server);
    assert.match(r.unused, /damaged/);
    assert.equal(r.readBack, 20);
    await t.allDuplicates([first[3], second[3]]);

    // a cut one
    await t.restart({ between: (dir) => {
      const bytes = readFileSync(join(dir, SNAPSHOT));
      writeFileSync(join(dir, SNAPSHOT), bytes.subarray(0, bytes.length - 100));
    } });
    assert.match(startReport(t.server).unused, /ends early|length is wrong/);

    // another database's
    const other = await setUp();
    await other.send(batch('other', 3));
    await other.server.stop();
    await t.restart({ between: (dir) => copyFileSync(join(other.dataDir, SNAPSHOT), join(dir, SNAPSHOT)) });
    r = startReport(t.server);
    assert.match(r.unused, /another database/);
    await t.allDuplicates([first[1], second[1]]);
    await t.restart();
    r = startReport(t.server);
    assert.equal(r.unused, null);
    assert.equal(r.fromSnapshot, 20);
    await t.allDuplicates([first[2], second[2]]);
  } finally { await t.cleanup(); }
});

// An audit: the start declined a snapshot the restored database did not hold, but left the
// file; the new history's event at its mark had the same identity (a client resending the
// batch it never had an answer for), so after a crash the next start took the stale set:
// acknowledged events accepted again, events lost with the restore refused forever.
test('a snapshot the database does not hold is removed at once: a crash after cannot bring it back', async () => {
  const t = await setUp();
  const copy = join(newDataDir(), 'copy');
  try {
    await t.send(batch('first', 10));
    await t.restart({ between: (dir) => {
      mkdirSync(copy);
      for (const f of readdirSync(dir)) if (f.startsWith('tally.db')) copyFileSync(join(dir, f), join(copy, f));
    } });
    const lost = batch('lost', 10), resent = batch('resent', 10), fresh = batch('fresh', 10);
    await t.send(lost);
    await t.send(resent); // its answer never reached its client, say
    await t.restart({ between: (dir) => {
      for (const f of readdirSync(dir)) if (f.startsWith('tally.db')) rmSync(join(dir, f));
      for (const f of readdirSync(copy)) copyFileSync(join(copy, f), join(dir, f));
    } });
    assert.match(startReport(t.server).unused, /ends at event 30, which this database does not hold/);
    assert.equal(existsSync(join(t.dataDir, SNAPSHOT)), false, 'the declined snapshot is still there');
    await t.send(fresh); // events 11-20
    await t.send(resent); // the client retries: events 21-30, the lost mark's identity again
    await t.restart({ kill: true });
    const r = startReport(t.server);
    assert.equal(r.fromSnapshot, 0);
    assert.equal(r.readBack, 30);
    await t.allDuplicates([fresh[0], fresh[9], resent[4]]);
    await t.send(lost); // never stored: taken now
    const used = (await t.usage('s1')).charges_usage[0].events_count + (await t.usage('s2')).charges_usage[0].events_count;
    assert.equal(used, 40);
  } finally { await t.cleanup(); }
});

test('while running, a forked child saves the sets every --snapshot-every events: a crash reads back only the rest', async () => {
  const t = await setUp();
  const past = { timestamp: at('2026-02-05T00:00:00Z') };
  const metric = async (name) => {
    const text = await (await t.api('/metrics')).text();
    const m = text.match(new RegExp(`^${name} (\\d+)$`, 'm'));
    assert.ok(m, `${name} missing from /metrics`);
    return Number(m[1]);
  };
  try {
    await t.server.stop();
    const { startTallyd } = await import('../lib/tallyd.mjs');
    t.server = await startTallyd(t.dataDir, ['--snapshot-every', '50']);
    t.url = t.server.url;
    const sent = [];
    for (let b = 0; b < 4; b++) {
      const events = batch(`run${b}`, 30, past);
      await t.send(events);
      sent.push(...events);
    }
    // the writer forks after the batch that makes 50, then after the one that makes 100
    let saved = 0;
    for (let i = 0; i < 200 && saved < 2; i++) {
      saved = await metric('tally_engine_snapshots_total');
      if (saved < 2) { await t.send(batch(`nudge${i}`, 1, past)); await new Promise((r) => setTimeout(r, 25)); }
    }
    assert.ok(saved >= 2, `${saved} snapshots saved`);
    assert.equal(await metric('tally_engine_snapshot_failures_total'), 0);
    const held = await metric('tally_engine_snapshot_events');
    assert.ok(held >= 100, `the newest snapshot holds ${held} events`);
    const after = batch('after', 7, past);
    await t.send(after);
    const total = (await (await t.api('/api/v1/events?per_page=1')).json()).meta.total_count;
    await t.server.kill();
    t.server = await startTallyd(t.dataDir);
    t.url = t.server.url;
    const r = startReport(t.server);
    assert.equal(r.unused, null);
    assert.equal(r.fromSnapshot, held);
    // read back: only the events after it (all are of an earlier period: no usage needs them)
    assert.equal(r.readBack, total - held);
    await t.allDuplicates([sent[0], sent[119], after[0], after[6]]);
  } finally { await t.cleanup(); }
});
