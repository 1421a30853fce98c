// An event's JSON number as Lago's filters, groups and unique counts see it (an audit). Rails
// parses a number with a fraction or an exponent into a Float and stores it in jsonb, whose
// `properties->>'key'` gives back "1.5" for 1.50 and "100.0" for 1e2; Tally compared the text as
// written, so 1.50 missed a filter of "1.5" and was billed at the charge's default price (3000
// cents where Lago bills 6000), and 1.50 and 1.5 were two groups. GET /events still answers the
// number as it was sent. A restart, which reads the stored events back, counts them the same.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
before(async () => {
  t = await startWithOrg(['--test-clock', '2026-01-01T00:00:00Z']);
});
after(() => t.cleanup());

// Events with raw JSON number texts in their properties (JSON.stringify would rewrite them).
async function sendRaw(sub, code, texts, key) {
  for (const [i, text] of texts.entries()) {
    const raw = `{"event":{"transaction_id":"${sub}-${i}","external_subscription_id":"${sub}","code":"${code}","properties":{"${key}":${text}}}}`;
    const r = await t.api('/api/v1/events', { method: 'POST', raw });
    assert.equal(r.status, 200, `${text}: ${await r.text()}`);
  }
}

const usage = async (sub) =>
  (await t.call('GET', `/api/v1/customers/c_${sub}/current_usage?external_subscription_id=${sub}`)).customer_usage;

async function subscribe(code, charge, metric) {
  const bm = (await t.call('POST', '/api/v1/billable_metrics', { billable_metric: { code, name: code, ...metric } })).billable_metric;
  await t.call('POST', '/api/v1/plans', { plan: { code: `p_${code}`, name: code, interval: 'monthly', amount_cents: 0, amount_currency: 'USD', charges: [{ billable_metric_id: bm.lago_id, ...charge }] } });
  await t.call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: `c_${code}`, plan_code: `p_${code}`, external_id: code } });
}

test('a number matches a filter and joins a group by its value as Lago stores it, before and after a restart', async () => {
  await subscribe('sized', {
    charge_model: 'standard',
    properties: { amount: '0' },
    filters: [
      { invoice_display_name: 'small', properties: { amount: '10' }, values: { size: ['1.5'] } },
      { invoice_display_name: 'large', properties: { amount: '20' }, values: { size: ['100.0'] } },
    ],
  }, { aggregation_type: 'count_agg', filters: [{ key: 'size', values: ['1.5', '100.0'] }] });
  await sendRaw('sized', 'sized', ['1.5', '1.50', '100.0', '1e2', '1.0E+2', '100'], 'size');

  await subscribe('grouped', { charge_model: 'standard', properties: { amount: '1', pricing_group_keys: ['g'] } }, { aggregation_type: 'count_agg' });
  await sendRaw('grouped', 'grouped', ['1.5', '1.50', '15e-1', '2', '2.0'], 'g');

  await subscribe('distinct', { charge_model: 'standard', properties: { amount: '1' } }, { aggregation_type: 'unique_count_agg', field_name: 'v' });
  await sendRaw('distinct', 'distinct', ['0.5', '0.50', '5e-1', '5', '-0', '0', '1e15', '1000000000000000.0', '1000000000000000'], 'v');

  const check = async () => {
    const sized = (await usage('sized')).charges_usage[0];
    const units = Object.fromEntries(sized.filters.map((f) => [f.invoice_display_name ?? 'default', f.units]));
    // 100 is an Integer in Lago too: "100", another value than "100.0"
    assert.deepEqual(units, { small: '2.0', large: '3.0', default: '1.0' });
    assert.equal(sized.amount_cents, 2 * 1000 + 3 * 2000);

    const groups = (await usage('grouped')).charges_usage[0].grouped_usage
      .map((g) => [g.grouped_by.g, g.units]).sort();
    assert.deepEqual(groups, [['1.5', '3.0'], ['2', '1.0'], ['2.0', '1.0']]);

    // 0.5, 0.50 and 5e-1 are one value; -0 is 0; 1e15 is "1.0e+15" to Float#to_s, which jsonb
    // keeps as the integer 1000000000000000 (an audit found "1000000000000000.0" apart)
    assert.equal((await usage('distinct')).charges_usage[0].units, '4.0');
  };
  await check();
  // the event is answered as it was sent
  const sent = await (await t.api('/api/v1/events/sized-1')).text();
  assert.match(sent, /"properties":\{"size":1\.50\}/);
  await t.restart({ kill: true });
  await check();
});
