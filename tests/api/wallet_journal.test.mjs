// The wallet journal: an event commit records what it debited as one journal row, and the
// wallet tables catch up later (when the journal is a second old, before any other command,
// before any read of wallet state). These tests kill tallyd while debits wait in the journal
// and check that nothing acknowledged is lost or counted twice, that the tables catch up by
// themselves, and that a read never shows tables behind an acknowledged event.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startWithOrg, startTallyd, newDataDir, createOrg } from '../lib/tallyd.mjs';

let t;
const post = async (path, body) => t.api(path, { method: 'POST', body });
const ok = async (r) => { const b = await r.json(); assert.equal(r.status, 200, JSON.stringify(b)); return b; };
const journalRows = () => {
  const r = spawnSync('sqlite3', [join(t.dataDir, 'tally.db'), 'SELECT COUNT(*) FROM wallet_journal'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return Number(r.stdout.trim());
};
let n = 0;
const send = async (sub, code, properties, count = 1) => {
  const events = Array.from({ length: count }, () => ({ transaction_id: `j${n++}`, external_subscription_id: sub, code, properties }));
  assert.equal((await post('/api/v1/events/batch', { events })).status, 200);
};
const wallet = async (customer, code) => (await ok(await t.api(`/api/v1/customers/${customer}/wallets/${code}`))).wallet;
const grants = async (w) => (await ok(await t.api(`/api/v1/wallets/${w.lago_id}/wallet_transactions`)))
  .wallet_transactions.filter((x) => x.transaction_status === 'granted').map((x) => x.remaining_amount_cents).sort((a, b) => a - b);

// Each wallet account's balance from its newest ledger entry, and every posting balanced.
async function ledger(customer) {
  const entries = (await ok(await t.api(`/api/v1/ledger_entries?external_customer_id=${customer}&per_page=1000`))).ledger_entries;
  const postings = new Map(), newest = new Map();
  for (const e of entries) {
    postings.set(e.posting_id, (postings.get(e.posting_id) ?? 0) + (e.direction === 'debit' ? e.amount_cents : -e.amount_cents));
    const key = `${e.lago_wallet_id}/${e.account}`;
    if (e.lago_wallet_id && !newest.has(key)) newest.set(key, e.balance_after_cents); // newest first
  }
  for (const [id, sum] of postings) assert.equal(sum, 0, `posting ${id} does not balance`);
  return newest;
}

before(async () => {
  t = await startWithOrg(['--test-clock', '2026-05-10T12:00:00Z']);
  const bm = async (b) => (await ok(await post('/api/v1/billable_metrics', { billable_metric: b }))).billable_metric.lago_id;
  const tokens = await bm({ code: 'tokens', name: 'Tokens', aggregation_type: 'sum_agg', field_name: 'tokens' });
  const storage = await bm({ code: 'storage', name: 'Storage', aggregation_type: 'latest_agg', field_name: 'gb' });
  await ok(await post('/api/v1/taxes', { tax: { code: 'vat', name: 'VAT', rate: '20' } }));
  await ok(await post('/api/v1/plans', { plan: { code: 'ai', name: 'AI', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', tax_codes: ['vat'], charges: [
    // 0.001 EUR a token, taxed 20%: 1000 tokens cost 120 cents
    { billable_metric_id: tokens, charge_model: 'standard', properties: { amount: '0.001' } },
    // volume: up to 100 GB at 1 EUR a GB, above at 0.5 EUR for all of them (a step gives back)
    { billable_metric_id: storage, charge_model: 'volume', properties: { volume_ranges: [
      { from_value: 0, to_value: 100, per_unit_amount: '1', flat_amount: '0' },
      { from_value: 101, to_value: null, per_unit_amount: '0.5', flat_amount: '0' }] } },
  ] } }));
  for (const c of ['hard', 'soft', 'broke'])
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'ai', external_id: `${c}_sub`, subscription_at: '2026-05-01T00:00:00Z' } }));
  // hard: 100 EUR granted, and 5 more spent first (priority 1)
  await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'hard', currency: 'EUR', rate_amount: '1', name: 'Main', code: 'main', granted_credits: '100', limit: 'hard' } }));
  const main = await wallet('hard', 'main');
  await ok(await post('/api/v1/wallet_transactions', { wallet_transaction: { wallet_id: main.lago_id, granted_credits: '5', name: 'first', priority: 1 } }));
  // broke: 1 EUR, hard-limited
  await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'broke', currency: 'EUR', rate_amount: '1', name: 'Broke', code: 'broke', granted_credits: '1', limit: 'hard' } }));
  // soft: 3 EUR of credits and 5 of overdraft
  await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'soft', currency: 'EUR', rate_amount: '1', name: 'Soft', code: 'soft', granted_credits: '3', limit: 'soft', overdraft_credits: '5' } }));
});
after(async () => { await t.cleanup(); });

test('debits waiting in the journal survive a SIGKILL: balances, grants, overdraft, refund steps', async () => {
  // hard: 12 x 1000 tokens (12 x 120 cents: 500 from "first", 940 from the main grant), 150 GB
  // (the 0.5 step, 90 EUR taxed), then 40 GB (the 1 EUR step, 48 EUR: 42 given back)
  for (let i = 0; i < 12; i++) await send('hard_sub', 'tokens', { tokens: 1000 });
  await send('hard_sub', 'storage', { gb: 150 });
  await send('hard_sub', 'storage', { gb: 40 });
  // soft: 6 EUR of tokens: 3 from its credits, 3 overdrawn
  await send('soft_sub', 'tokens', { tokens: 1000 }, 5);
  await t.restart({
    kill: true,
    between: () => assert.ok(journalRows() > 0, 'the debits were in the journal when tallyd died'),
  });
  const hard = await wallet('hard', 'main');
  assert.equal(hard.balance_cents, 10500 - 1440 - 4800);
  assert.equal(hard.consumed_credits, '62.4');
  assert.deepEqual(await grants(hard), [0, 4260]);
  const soft = await wallet('soft', 'soft');
  assert.equal(soft.balance_cents, -300);
  assert.equal(soft.consumed_credits, '6.0');
  const hardLedger = await ledger('hard');
  assert.equal(hardLedger.get(`${hard.lago_id}/customer_promotional_credits`), 4260);
  const softLedger = await ledger('soft');
  assert.equal(softLedger.get(`${soft.lago_id}/customer_promotional_credits`), 0);
  assert.equal(softLedger.get(`${soft.lago_id}/customer_overdraft`), 300);
  assert.equal(journalRows(), 0, 'the read wrote the journal out');
  // what the storage charge paid came back too: 60 GB costs 72 EUR, 24 more than 40 GB did
  await send('hard_sub', 'storage', { gb: 60 });
  assert.equal((await wallet('hard', 'main')).balance_cents, 4260 - 2400);
  // and a second crash with nothing pending changes nothing
  await t.restart({ kill: true });
  assert.equal((await wallet('hard', 'main')).balance_cents, 4260 - 2400);
});

// The journal's integers are zigzag LEB128 varints. Version 3 writes times as differences and
// names a charge once a record (version 4 adds the tax parts, 5 a debit's opening, 6 its seq); version 2 wrote every one in full. A journal left
// by a crash before an upgrade is in version 2: this rewrites a record the way it wrote it.
function journalVersion2(hex) {
  const bytes = Buffer.from(hex, 'hex'), out = [];
  let at = 0;
  const get = () => {
    let z = 0n, shift = 0n, b;
    do { b = bytes[at++]; z |= BigInt(b & 0x7f) << shift; shift += 7n; } while (b & 0x80);
    return (z >> 1n) ^ -(z & 1n);
  };
  const put = (v) => {
    let z = v < 0n ? -2n * v - 1n : 2n * v;
    do { let b = Number(z & 0x7fn); z >>= 7n; if (z) b |= 0x80; out.push(b); } while (z);
  };
  const copy = (count = 1n) => { for (let i = 0n; i < count; i++) put(get()); };
  assert.equal(get(), 6n, 'a record of version 6'); // version 3 is version 6 without its taxes, openings and seqs
  put(2n);
  const customers = get();
  put(customers);
  let pendingAt = 0n, periodFrom = 0n;
  const charges = [];
  for (let c = 0n; c < customers; c++) {
    copy(2n); // organization, customer
    const wallets = get(), debits = get();
    put(wallets);
    put(debits);
    for (let w = 0n; w < wallets; w++) { // none when written out (-1)
      copy(); // id
      pendingAt += get();
      put(pendingAt);
      copy(7n); // taken paid, taken free, overdrawn added, given paid, given free, overdraft given, held
      const moves = get();
      put(moves);
      get(); get(); // the tax taken and given back: an older journal had none (all revenue)
      copy(2n * moves);
    }
    for (let d = 0n; d < debits; d++) {
      copy(); // subscription
      periodFrom += get();
      put(periodFrom);
      copy(); // charged
      get(); // the tax posted: none known in an older journal (read as -1)
      get(); get(); // where a wallet opened its period: none in an older journal (-1, 0)
      get(); // the debit's seq: an older journal's debits are numbered after the stored ones
      const ref = get();
      let name;
      if (ref === 0n) {
        const len = Number(get());
        name = bytes.subarray(at, at + len);
        at += len;
        if (charges.length < 64) charges.push(name);
      } else {
        name = charges[Number(ref) - 1];
      }
      put(BigInt(name.length));
      out.push(...name);
      const fundings = get();
      put(fundings);
      copy(4n * fundings);
    }
  }
  assert.equal(at, bytes.length);
  return Buffer.from(out).toString('hex');
}

test('a clean stop writes the journal out: the next start has nothing to recover', async () => {
  const before = (await wallet('hard', 'main')).balance_cents;
  await send('hard_sub', 'tokens', { tokens: 1000 });
  assert.ok(journalRows() > 0);
  await t.restart({ between: () => assert.equal(journalRows(), 0) });
  assert.equal((await wallet('hard', 'main')).balance_cents, before - 120);
});

const gauge = async (name) => {
  const m = await (await fetch(`${t.url}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(m)[1]);
};

test('a read of wallet state writes the journal out first, and shows every acknowledged debit', async () => {
  const before = (await wallet('hard', 'main')).balance_cents;
  await send('hard_sub', 'tokens', { tokens: 1000 });
  assert.ok(journalRows() > 0);
  assert.equal(await gauge('tally_wallet_pending_customers'), 1);
  assert.equal(await gauge('tally_wallet_journal_records'), journalRows());
  assert.ok((await gauge('tally_wallet_journal_bytes')) > 0);
  assert.equal((await wallet('hard', 'main')).balance_cents, before - 120);
  assert.equal(journalRows(), 0);
  assert.equal(await gauge('tally_wallet_pending_customers'), 0);
  assert.equal(await gauge('tally_wallet_journal_records'), 0);
});

test('any other command writes the journal out before it runs', async () => {
  await send('hard_sub', 'tokens', { tokens: 1000 });
  assert.ok(journalRows() > 0);
  await ok(await post('/api/v1/customers', { customer: { external_id: 'someone', name: 'Someone' } }));
  assert.equal(journalRows(), 0);
});

test('without reads or other commands, the tables catch up once the journal is a second old', async () => {
  await send('hard_sub', 'tokens', { tokens: 1000 });
  await send('soft_sub', 'tokens', { tokens: 1000 });
  assert.equal(journalRows(), 2);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await send('hard_sub', 'tokens', { tokens: 1000 }); // this commit finds the journal due
  assert.equal(journalRows(), 0);
});

test('a refused batch puts back what it debited from other customers, pending debits included', async () => {
  const before = (await wallet('hard', 'main')).balance_cents;
  await send('hard_sub', 'tokens', { tokens: 1000 }); // pending: 120 cents
  const refused = await post('/api/v1/events/batch', { events: [
    { transaction_id: `j${n++}`, external_subscription_id: 'hard_sub', code: 'tokens', properties: { tokens: 2000 } },
    { transaction_id: `j${n++}`, external_subscription_id: 'broke_sub', code: 'tokens', properties: { tokens: 10000 } }, // 12 EUR
  ] });
  assert.equal(refused.status, 402);
  assert.ok(journalRows() > 0);
  await t.restart({ kill: true });
  assert.equal((await wallet('hard', 'main')).balance_cents, before - 120);
  assert.equal((await wallet('broke', 'broke')).balance_cents, 100);
  await send('hard_sub', 'tokens', { tokens: 1000 });
  assert.equal((await wallet('hard', 'main')).balance_cents, before - 240);
});

test('holds made and voided while debits wait in the journal survive a SIGKILL, and settle after it', async () => {
  const before = (await wallet('hard', 'main')).balance_cents;
  const authorize = async (tokens) => (await ok(await post('/api/v1/authorizations', { authorization: { external_subscription_id: 'hard_sub', code: 'tokens', properties: { tokens } } }))).authorization;
  await send('hard_sub', 'tokens', { tokens: 1000 }); // 120 cents, pending
  const kept = await authorize(5000); // 600 held
  const voided = await authorize(1000); // 120 held, then released
  assert.equal(kept.status, 'authorized');
  assert.equal((await post(`/api/v1/authorizations/${voided.lago_id}/void`, {})).status, 200);
  assert.ok(journalRows() > 0, 'the holds and the debit were in the journal');
  await t.restart({ kill: true });
  let w = await wallet('hard', 'main');
  assert.equal(w.balance_cents, before - 120);
  assert.equal(w.ongoing_balance_cents, before - 120 - 600);
  // the capture debits what the event really costs (2000 tokens: 240) and releases the rest
  await send('hard_sub', 'tokens', { tokens: 1000 }); // pending again before the capture
  const captured = await post(`/api/v1/authorizations/${kept.lago_id}/capture`, { authorization: { properties: { tokens: 2000 } } });
  assert.equal(captured.status, 200, await captured.text());
  await t.restart({ kill: true });
  w = await wallet('hard', 'main');
  assert.equal(w.balance_cents, before - 120 - 120 - 240);
  assert.equal(w.ongoing_balance_cents, w.balance_cents);
  assert.equal((await ledger('hard')).get(`${w.lago_id}/customer_held_credits`), 0);
});

test('customers written out a few at a time: recovery takes what the tables hold for them, and the journal for the rest', async () => {
  // 130 customers debited by two commits (100, then 30); a second later the next commit writes
  // out 128 of them (WALLET_JOURNAL_FLUSH_PER_COMMIT) and names them in its record; the 2 left
  // keep the second record alive, which also names 28 written out: recovery must not apply
  // their entries there on top of the tables again
  const customers = Array.from({ length: 130 }, (_, i) => `m${i}`);
  for (const c of customers) {
    await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: c, plan_code: 'ai', external_id: `${c}_sub`, subscription_at: '2026-05-01T00:00:00Z' } }));
    await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: c, currency: 'EUR', rate_amount: '1', name: 'M', code: 'm', granted_credits: '10' } }));
  }
  const batch = async (list) => assert.equal((await post('/api/v1/events/batch', { events: list.map((c) => ({ transaction_id: `j${n++}`, external_subscription_id: `${c}_sub`, code: 'tokens', properties: { tokens: 1000 } })) })).status, 200);
  await batch(customers.slice(0, 100));
  await batch(customers.slice(100));
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await send('hard_sub', 'tokens', { tokens: 100 }); // this commit writes out 128 of them
  // the record of the 30 stays (2 of them still need it) beside the new one
  assert.equal(journalRows(), 2);
  await t.restart({ kill: true });
  for (const c of customers) assert.equal((await wallet(c, 'm')).balance_cents, 1000 - 120, c);
});

test('a commit in which the clock or a rule moved credits writes everything out', async () => {
  await ok(await post('/api/v1/subscriptions', { subscription: { external_customer_id: 'rules', plan_code: 'ai', external_id: 'rules_sub', subscription_at: '2026-05-01T00:00:00Z' } }));
  await ok(await post('/api/v1/wallets', { wallet: { external_customer_id: 'rules', currency: 'EUR', rate_amount: '1', name: 'R', code: 'r', granted_credits: '7',
    recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '5', granted_credits: '10' }] } }));
  await send('rules_sub', 'tokens', { tokens: 1000 }); // 7 -> 5.8: no rule fires
  assert.ok(journalRows() > 0);
  await send('rules_sub', 'tokens', { tokens: 1000 }); // 5.8 -> 4.6: the rule grants 10
  assert.equal(journalRows(), 0, 'the grant the rule wrote ended the journal in its commit');
  await t.restart({ kill: true });
  assert.equal((await wallet('rules', 'r')).balance_cents, 700 - 240 + 1000);
});

test('a journal of the older format, left by a crash before an upgrade, is recovered the same', async () => {
  const db = join(t.dataDir, 'tally.db');
  const sql = (q) => {
    const r = spawnSync('sqlite3', [db, q], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  const total = async (c) => (await ok(await t.api(`/api/v1/customers/${c}/current_usage?external_subscription_id=${c}_sub`))).customer_usage.total_amount_cents;
  const consumed = async (c, code) => Math.round(Number((await wallet(c, code)).consumed_credits) * 100);
  const before = { hard: await consumed('hard', 'main'), soft: await consumed('soft', 'soft') };
  const usage = { hard: await total('hard'), soft: await total('soft') };
  for (let i = 0; i < 3; i++) await send('hard_sub', 'tokens', { tokens: 700 + i });
  await send('hard_sub', 'storage', { gb: 120 });
  await send('soft_sub', 'tokens', { tokens: 300 }, 2);
  const debited = { hard: await total('hard') - usage.hard, soft: await total('soft') - usage.soft };
  assert.ok(debited.hard > 0 && debited.soft > 0);
  let rewritten = 0;
  await t.restart({
    kill: true,
    between: () => {
      for (const line of sql('SELECT id, hex(data) FROM wallet_journal').split('\n').filter(Boolean)) {
        const [id, hex] = line.split('|');
        sql(`UPDATE wallet_journal SET data = X'${journalVersion2(hex)}' WHERE id = ${id}`);
        rewritten++;
      }
    },
  });
  assert.ok(rewritten > 0, 'the debits were in the journal when tallyd died');
  assert.equal(await consumed('hard', 'main') - before.hard, debited.hard);
  assert.equal(await consumed('soft', 'soft') - before.soft, debited.soft);
  await ledger('hard');
  await ledger('soft');
});

// Found by an isolation audit: a usage transaction written out of the journal by another
// organization's command took its id's time (a version-7 UUID) from that command's clock, so
// one organization read another's test clock (2020) in its own ids. An id's time is its own.
test('a usage transaction written out by another organization\'s command keeps its own time in its id', async () => {
  const dataDir = newDataDir();
  const keyA = createOrg(dataDir, 'A');
  const keyB = createOrg(dataDir, 'B', ['--test-clock', '2020-01-01T00:00:00Z']);
  const server = await startTallyd(dataDir);
  try {
    const call = async (key, method, path, body) => {
      const r = await fetch(server.url + path, { method, headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' }, body: body && JSON.stringify(body) });
      const b = await r.json();
      assert.equal(r.status, 200, JSON.stringify(b));
      return b;
    };
    const m = (await call(keyA, 'POST', '/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' } })).billable_metric;
    await call(keyA, 'POST', '/api/v1/plans', { plan: { code: 'p', name: 'P', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR', charges: [{ billable_metric_id: m.lago_id, charge_model: 'standard', properties: { amount: '1' } }] } });
    await call(keyA, 'POST', '/api/v1/customers', { customer: { external_id: 'c', currency: 'EUR' } });
    await call(keyA, 'POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c', plan_code: 'p', external_id: 's' } });
    const w = (await call(keyA, 'POST', '/api/v1/wallets', { wallet: { external_customer_id: 'c', currency: 'EUR', rate_amount: '1', granted_credits: '10' } })).wallet;
    await call(keyA, 'POST', '/api/v1/events', { event: { transaction_id: 'e1', external_subscription_id: 's', code: 'calls' } });
    await call(keyB, 'POST', '/api/v1/customers', { customer: { external_id: 'other', currency: 'EUR' } }); // writes A's journal out
    const usage = (await call(keyA, 'GET', `/api/v1/wallets/${w.lago_id}/wallet_transactions`)).wallet_transactions.filter((x) => x.transaction_status === 'usage');
    assert.equal(usage.length, 1);
    const idYear = new Date(parseInt(usage[0].lago_id.replace(/-/g, '').slice(0, 12), 16)).getUTCFullYear();
    assert.equal(idYear, new Date(usage[0].created_at).getUTCFullYear());
  } finally {
    await server.stop();
  }
});
