// Acknowledged means durable, for events: concurrent batches, SIGKILL mid-load, restart,
// and every acknowledged event is there, while a retry of any of them is a duplicate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

test('every acknowledged event survives a SIGKILL during concurrent batches', async () => {
  const t = await startWithOrg();
  try {
    const post = (path, body) => t.api(path, { method: 'POST', body });
    await post('/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' } });
    await post('/api/v1/plans', { plan: { code: 'p', name: 'P', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR' } });
    for (let s = 0; s < 4; s++)
      await post('/api/v1/subscriptions', { subscription: { external_customer_id: `c${s}`, plan_code: 'p', external_id: `s${s}`, subscription_at: '2020-01-01T00:00:00Z' } });
    const acked = [];
    let stop = false;
    const worker = async (w) => {
      for (let b = 0; !stop; b++) {
        const events = Array.from({ length: 50 }, (_, i) => ({ transaction_id: `w${w}-b${b}-${i}`, external_subscription_id: `s${w % 4}`, code: 'calls' }));
        try {
          const r = await post('/api/v1/events/batch', { events });
          if (r.status === 200) { await r.text(); acked.push(...events); }
        } catch { return; }
      }
    };
    const workers = Array.from({ length: 8 }, (_, w) => worker(w));
    await new Promise((r) => setTimeout(r, 1500));
    await t.server.kill();
    stop = true;
    await Promise.all(workers);
    assert.ok(acked.length >= 500, `only ${acked.length} acknowledged`);
    await t.restart({ kill: true });
    const list = await (await t.api('/api/v1/events?per_page=1')).json();
    assert.ok(list.meta.total_count >= acked.length, `${acked.length} acknowledged, ${list.meta.total_count} stored`);
    // every acknowledged event is known: a retry of each batch's first and last is a duplicate
    for (let i = 0; i < acked.length; i += 49) {
      const r = await post('/api/v1/events', { event: acked[i] });
      assert.equal(r.status, 422, acked[i].transaction_id);
      assert.deepEqual((await r.json()).error_details, { transaction_id: ['value_already_exist'] });
    }
  } finally { await t.cleanup(); }
});
