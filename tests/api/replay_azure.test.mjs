// Replays a real LLM inference trace (Azure, code, 2023: 8,819 requests with their input and
// output token counts) as token events for 40 customers, then checks that every customer's
// current usage equals the totals computed independently from the file, to the cent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startWithOrg } from '../lib/tallyd.mjs';

const data = process.env.TALLY_SHARED_DATA || new URL('../../../shared/data', import.meta.url).pathname;
const trace = join(data, 'AzureLLMInferenceTrace_code_2023.csv');
const CUSTOMERS = 40;

let t;
before(async () => {
  if (!existsSync(trace)) return;
  t = await startWithOrg(['--test-clock', '2023-11-16T20:00:00Z']);
  const post = async (path, body) => (await t.api(path, { method: 'POST', body })).json();
  const input = (await post('/api/v1/billable_metrics', { billable_metric: { code: 'input_tokens', name: 'Input tokens', aggregation_type: 'sum_agg', field_name: 'input' } })).billable_metric;
  const output = (await post('/api/v1/billable_metrics', { billable_metric: { code: 'output_tokens', name: 'Output tokens', aggregation_type: 'sum_agg', field_name: 'output' } })).billable_metric;
  await post('/api/v1/plans', { plan: { code: 'llm', name: 'LLM', interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [
    { billable_metric_id: input.lago_id, charge_model: 'standard', properties: { amount: '0.000003' } },
    { billable_metric_id: output.lago_id, charge_model: 'standard', properties: { amount: '0.000015' } },
  ] } });
  for (let c = 0; c < CUSTOMERS; c++)
    await post('/api/v1/subscriptions', { subscription: { external_customer_id: `c${c}`, plan_code: 'llm', external_id: `s${c}`, subscription_at: '2023-11-01T00:00:00Z' } });
});
after(async () => { if (t) await t.cleanup(); });

// "2023-11-16 18:17:03.9799600" as exact Unix seconds text, never through a float.
function unixSeconds(stamp) {
  const [date, time] = stamp.split(' ');
  const [whole, fraction = '0'] = time.split('.');
  const seconds = Date.UTC(...date.split('-').map((v, i) => Number(v) - (i === 1 ? 1 : 0)), ...whole.split(':').map(Number)) / 1000;
  return `${seconds}.${fraction}`;
}

test('every customer\'s current usage equals the trace\'s totals', { skip: !existsSync(trace) && 'shared data not present' }, async () => {
  const rows = readFileSync(trace, 'utf8').trim().split('\n').slice(1);
  assert.equal(rows.length, 8819);
  const totals = Array.from({ length: CUSTOMERS }, () => ({ input: 0n, output: 0n, count: 0 }));
  const events = rows.map((line, i) => {
    const [stamp, context, generated] = line.split(',');
    const c = i % CUSTOMERS;
    totals[c].input += BigInt(context);
    totals[c].output += BigInt(generated);
    totals[c].count++;
    return { transaction_id: `azure-${i}`, external_subscription_id: `s${c}`, code: 'input_tokens', timestamp: unixSeconds(stamp), properties: { input: Number(context) } };
  });
  const outputs = rows.map((line, i) => ({ ...events[i], transaction_id: `azure-out-${i}`, code: 'output_tokens', properties: { output: Number(line.split(',')[2]) } }));
  const all = events.flatMap((e, i) => [e, outputs[i]]);
  const started = Date.now();
  for (let i = 0; i < all.length; i += 100) {
    const r = await t.api('/api/v1/events/batch', { method: 'POST', body: { events: all.slice(i, i + 100) } });
    assert.equal(r.status, 200, await r.text());
  }
  const seconds = (Date.now() - started) / 1000;
  console.log(`# replayed ${all.length} events in ${seconds.toFixed(2)} s (${Math.round(all.length / seconds)} events/s, sanitized build)`);
  const cents = (tokens, per_million_dollars) => { // round half up of tokens * price, in cents
    const hundredths = tokens * BigInt(per_million_dollars) * 100n;
    return Number((hundredths + 500000n) / 1000000n);
  };
  for (let c = 0; c < CUSTOMERS; c++) {
    const u = (await (await t.api(`/api/v1/customers/c${c}/current_usage?external_subscription_id=s${c}`)).json()).customer_usage;
    const [inp, out] = u.charges_usage;
    assert.equal(inp.units, `${totals[c].input}.0`, `c${c} input`);
    assert.equal(out.units, `${totals[c].output}.0`, `c${c} output`);
    assert.equal(inp.events_count, totals[c].count);
    assert.equal(inp.amount_cents, cents(totals[c].input, 3), `c${c} input amount`);
    assert.equal(out.amount_cents, cents(totals[c].output, 15), `c${c} output amount`);
    assert.equal(u.amount_cents, inp.amount_cents + out.amount_cents);
  }
});
