// Events over real HTTP: Lago's shapes, timestamps read exactly, all-or-nothing batches with
// per-index errors, exact deduplication (within a batch, across batches, across restarts and
// a SIGKILL), synchronous subscription and metric checks, limits, reads.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg, startTallyd } from '../lib/tallyd.mjs';

let t;
before(async () => {
  t = await startWithOrg(['--test-clock', '2026-02-01T00:00:00Z']);
  const call = (path, body) => t.api(path, { method: 'POST', body });
  await call('/api/v1/billable_metrics', { billable_metric: { code: 'tokens', name: 'Tokens', aggregation_type: 'sum_agg', field_name: 'tokens' } });
  await call('/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' } });
  await call('/api/v1/plans', { plan: { code: 'p', name: 'P', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR' } });
  for (const s of ['sub_a', 'sub_b'])
    await call('/api/v1/subscriptions', { subscription: { external_customer_id: `cust_${s}`, plan_code: 'p', external_id: s, subscription_at: '2026-01-01T00:00:00Z' } });
});
after(async () => { await t.cleanup(); });

const post = async (path, body, raw) => {
  const r = await t.api(path, { method: 'POST', body, raw });
  return { status: r.status, body: await r.json() };
};
const ev = (transaction_id, extra = {}) => ({ transaction_id, external_subscription_id: 'sub_a', code: 'tokens', properties: { tokens: 10 }, ...extra });

test('one event: Lago shape, the organization clock as default timestamp', async () => {
  const r = await post('/api/v1/events', { event: ev('e1', { properties: { tokens: 1500, model: 'large', price: 12.3450 } }) });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const e = r.body.event;
  assert.match(e.lago_id, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(e.transaction_id, 'e1');
  assert.equal(e.code, 'tokens');
  assert.equal(e.external_subscription_id, 'sub_a');
  assert.equal(e.timestamp, '2026-02-01T00:00:00.000Z');
  assert.equal(e.precise_total_amount_cents, null);
  assert.deepEqual(e.properties, { tokens: 1500, model: 'large', price: 12.345 });
  assert.match(e.lago_subscription_id, /^[0-9a-f-]{36}$/);
  assert.match(e.lago_customer_id, /^[0-9a-f-]{36}$/);
  const got = await (await t.api('/api/v1/events/e1')).json();
  assert.deepEqual(got.event, e);
});

test('timestamps: integer, decimal and string Unix seconds, read exactly', async () => {
  const cases = [
    [1769904000, '2026-02-01T00:00:00.000Z'],
    ['1769904000', '2026-02-01T00:00:00.000Z'],
    [1769904000.123, '2026-02-01T00:00:00.123Z'],
    ['1769904000.9999999', '2026-02-01T00:00:00.999Z'],
    [1767225600, '2026-01-01T00:00:00.000Z'],
  ];
  let i = 0;
  for (const [timestamp, iso] of cases) {
    const r = await post('/api/v1/events', { event: ev(`ts${i++}`, { timestamp }) });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.event.timestamp, iso, String(timestamp));
  }
  // a string's surrounding ASCII whitespace is skipped, as Lago's BigDecimal(params[:timestamp].to_s)
  // does (Events::CreateService#parse_timestamp)
  const padded = [[' 1769904000', '2026-02-01T00:00:00.000Z'], ['1769904000 ', '2026-02-01T00:00:00.000Z'],
    [' 1769904000.5 ', '2026-02-01T00:00:00.500Z'], ['\t1769904000\n', '2026-02-01T00:00:00.000Z'],
    ['\u000b\f\r 1769904000.25\r\n', '2026-02-01T00:00:00.250Z']];
  // each [text, instant] read alone (the plain reader) and in a batch
  const readsAs = async (cases) => {
    for (const [timestamp, iso] of cases) {
      const r = await post('/api/v1/events', { event: ev(`ts${i++}`, { timestamp }) });
      assert.equal(r.status, 200, `${JSON.stringify(timestamp)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.event.timestamp, iso, JSON.stringify(timestamp));
    }
    const batch = await post('/api/v1/events/batch', { events: cases.map(([timestamp]) => ev(`ts${i++}`, { timestamp })) });
    assert.equal(batch.status, 200, JSON.stringify(batch.body));
    assert.deepEqual(batch.body.events.map((e) => e.timestamp), cases.map(([, iso]) => iso));
  };
  await readsAs(padded);
  // the rest of Ruby's BigDecimal grammar reads as Ruby reads it (each value checked with Ruby
  // 3.1's BigDecimal); a black-box audit found "+1768003200" refused, which Lago takes
  const ruby = [['+1769990400', '2026-02-02T00:00:00.000Z'], ['+1769990400.5', '2026-02-02T00:00:00.500Z'],
    ['1_769_990_400', '2026-02-02T00:00:00.000Z'], ['1769990400_', '2026-02-02T00:00:00.000Z'],
    ['.1769990400e10', '2026-02-02T00:00:00.000Z'], ['1.7699904d9', '2026-02-02T00:00:00.000Z'],
    ['1.7699904D9', '2026-02-02T00:00:00.000Z'], ['01769990400', '2026-02-02T00:00:00.000Z'],
    ['0_1769990400', '2026-02-02T00:00:00.000Z'], [' +.1769990400E+10 ', '2026-02-02T00:00:00.000Z'],
    ['1769990400.2_5', '2026-02-02T00:00:00.250Z'], [`+1769990400.${'1'.repeat(40)}`, '2026-02-02T00:00:00.111Z'],
    // digits of any number, wherever the exponent moves them (a fuzz against Ruby found a
    // fraction past 24 digits cut before its exponent applied: another instant)
    [`1769990400${'0'.repeat(60)}e-60`, '2026-02-02T00:00:00.000Z'], [`0.${'0'.repeat(30)}17699904005e40`, '2026-02-02T00:00:00.500Z']];
  await readsAs(ruby);
  for (const timestamp of ['1769990400.', '1769990400__0', '1769990400_.5', '1769990400._5', '1769990400.5_',
    '1769990400e_0', '1769990400e0_', '+-1769990400', '1769990400d', 'NaN', 'Infinity', '_1769990400', '+_1769990400',
    '.', '+', '-.e5']) {
    const r = await post('/api/v1/events', { event: ev(`bad_ruby_${timestamp}`, { timestamp }) });
    assert.equal(r.status, 422, timestamp);
    assert.deepEqual(r.body.error_details, { timestamp: ['invalid_format'] }, timestamp);
  }
  // false is no timestamp, as Lago's `params[:timestamp] ? ... : now`: the organization's clock
  const none = await post('/api/v1/events', { event: ev('ts_false', { timestamp: false }) });
  assert.equal(none.status, 200, JSON.stringify(none.body));
  assert.equal(none.body.event.timestamp, '2026-02-01T00:00:00.000Z');
  for (const timestamp of ['yesterday', '1e400', true, '', -99999999999999, ' ', '\t \n', '1769904000 5',
    '\u00a01769904000', '1769904000\u3000', '+ 1769904000']) {
    const r = await post('/api/v1/events', { event: ev(`bad_ts_${String(timestamp)}`, { timestamp }) });
    assert.equal(r.status, 422, String(timestamp));
    assert.deepEqual(r.body.error_details, { timestamp: ['invalid_format'] });
  }
  // digits past the microsecond are dropped, however many (a string, and a JSON number's text)
  const long = await post('/api/v1/events', { event: ev('ts_long', { timestamp: `1769904000.${'1'.repeat(40)}` }) });
  assert.equal(long.status, 200, JSON.stringify(long.body));
  assert.equal(long.body.event.timestamp, '2026-02-01T00:00:00.111Z');
  const rawBody = `{"event":{"transaction_id":"ts_long_num","external_subscription_id":"sub_a","code":"tokens","timestamp":1769904000.${'9'.repeat(35)}}}`;
  const longNumber = await post('/api/v1/events', null, rawBody);
  assert.equal(longNumber.status, 200, JSON.stringify(longNumber.body));
  assert.equal(longNumber.body.event.timestamp, '2026-02-01T00:00:00.999Z');
  // from 9998-12-31T10:00:00Z on (9999 where a zone is 14 hours ahead) it is refused: a period
  // of an event there may end past 9999 (an audit found the bound set in UTC)
  for (const timestamp of [253370714400, '253370714400.5', 253370764800, '253399622400', 253402300799]) {
    const r = await post('/api/v1/events', { event: ev(`late_9999_${timestamp}`, { timestamp }) });
    assert.equal(r.status, 422, `${timestamp}: ${JSON.stringify(r.body)}`);
    assert.deepEqual(r.body.error_details, { timestamp: ['invalid_format'] });
  }
  const lastDay = await post('/api/v1/events', { event: ev('ts_9998', { timestamp: '253370714399.999999' }) });
  assert.equal(lastDay.status, 200, JSON.stringify(lastDay.body));
  assert.equal(lastDay.body.event.timestamp, '9998-12-31T09:59:59.999Z');
  // an event before its subscription started has no subscription to bill
  const early = await post('/api/v1/events', { event: ev('early', { timestamp: 1700000000 }) });
  assert.deepEqual(early.body.error_details, { external_subscription_id: ['subscription_not_found'] });
});

// A precise amount is kept as Lago's decimal(40, 15) column keeps it: to 15 decimals, half
// away from zero; properties keep every digit they were sent with.
test('exact amounts and numbers in properties survive; integers past int64 are refused', async () => {
  let r = await post('/api/v1/events', null, '{"event":{"transaction_id":"amt","external_subscription_id":"sub_a","code":"tokens","precise_total_amount_cents":"1234.5678901234567895123","properties":{"tokens":"99999999999999999999999.5"}}}');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const text = await (await t.api('/api/v1/events/amt')).text();
  assert.match(text, /"precise_total_amount_cents":"1234.56789012345679"/);
  assert.match(text, /"tokens":"99999999999999999999999.5"/);
  r = await post('/api/v1/events', null, '{"event":{"transaction_id":"huge","external_subscription_id":"sub_a","code":"tokens","properties":{"tokens":123456789012345678901234}}}');
  assert.deepEqual(r.body.error_details, { properties: ['integer_out_of_range'] });
});

// docs/API.md: only integers past the 64-bit range are refused. Its top end is kept exactly;
// its bottom end, -2^63, is where json-c clamps every longer negative integer, so it is
// refused with them (docs/API.md says so).
test('integers to the ends of the 64-bit range are kept exactly; one past them is refused', async () => {
  const raw = (id, tokens, where = 'properties') => `{"event":{"transaction_id":"${id}","external_subscription_id":"sub_a","code":"tokens",` +
    (where === 'properties' ? `"properties":{"tokens":${tokens},"list":[${tokens}]}}}` : `"timestamp":${tokens}}}`);
  for (const [id, n] of [['i64max', '9223372036854775807'], ['i64min1', '-9223372036854775807']]) {
    const r = await post('/api/v1/events', null, raw(id, n));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const text = await (await t.api(`/api/v1/events/${id}`)).text();
    assert.match(text, new RegExp(`"properties":\\{"tokens":${n},"list":\\[${n}\\]\\}`));
  }
  for (const n of ['9223372036854775808', '18446744073709551615', '-9223372036854775808', '-9223372036854775809']) {
    const r = await post('/api/v1/events', null, raw(`past${n}`, n));
    assert.deepEqual(r.body.error_details, { properties: ['integer_out_of_range'] }, n);
  }
  // a timestamp that far is past year 9999: not a time Tally keeps
  const r = await post('/api/v1/events', null, raw('ts_max', '9223372036854775807', 'timestamp'));
  assert.deepEqual(r.body.error_details, { timestamp: ['invalid_format'] });
});

test('duplicates: across requests, inside a batch, per subscription', async () => {
  let r = await post('/api/v1/events', { event: ev('e1') });
  assert.deepEqual(r.body, { status: 422, error: 'Unprocessable Entity', code: 'validation_errors', error_details: { transaction_id: ['value_already_exist'] } });
  r = await post('/api/v1/events/batch', { events: [ev('d1'), ev('d2'), ev('d1')] });
  assert.deepEqual(r.body.error_details, { 2: { transaction_id: ['value_already_exist'] } });
  // all or nothing: d1 and d2 were not kept
  assert.equal((await t.api('/api/v1/events/d2')).status, 404);
  r = await post('/api/v1/events/batch', { events: [ev('d1'), ev('d2')] });
  assert.equal(r.status, 200);
  assert.equal(r.body.events.length, 2);
  // the same transaction id on another subscription is another event (Lago's scope)
  r = await post('/api/v1/events', { event: ev('d1', { external_subscription_id: 'sub_b' }) });
  assert.equal(r.status, 200);
});

test('batches: per-index errors, limits, unknown names', async () => {
  let r = await post('/api/v1/events/batch', { events: [] });
  assert.deepEqual(r.body.error_details, { events: ['no_events'] });
  r = await post('/api/v1/events/batch', { events: Array.from({ length: 101 }, (_, i) => ev(`many${i}`)) });
  assert.deepEqual(r.body.error_details, { events: ['too_many_events'] });
  r = await post('/api/v1/events/batch', { events: [ev('ok1'), { external_subscription_id: 'sub_a', code: 'tokens' }] });
  assert.deepEqual(r.body.error_details, { 1: { transaction_id: ['value_is_mandatory'] } });
  r = await post('/api/v1/events/batch', { events: [ev('ok1'), ev('x2', { code: 'nope' })] });
  assert.deepEqual(r.body.error_details, { 1: { code: ['billable_metric_not_found'] } });
  r = await post('/api/v1/events/batch', { events: [ev('ok1'), ev('x3', { external_subscription_id: 'nobody' })] });
  assert.deepEqual(r.body.error_details, { 1: { external_subscription_id: ['subscription_not_found'] } });
  assert.equal((await t.api('/api/v1/events/ok1')).status, 404);
  r = await post('/api/v1/events/batch', { evnts: [] });
  assert.deepEqual(r.body.error_details, { events: ['no_events'] }); // Lago's permit drops the unknown key
  r = await post('/api/v1/events/batch', { events: Array.from({ length: 100 }, (_, i) => ev(`full${i}`, { code: i % 2 ? 'calls' : 'tokens' })) });
  assert.equal(r.status, 200);
  assert.equal(r.body.events.length, 100);
});

test('a refused batch names every event refused, so a retry can drop its duplicates at once', async () => {
  let r = await post('/api/v1/events/batch', { events: [ev('r1'), ev('r2'), ev('r3'), ev('r4')] });
  assert.equal(r.status, 200);
  // a client retries the batch with new events between the old: each old one is named
  r = await post('/api/v1/events/batch', { events: [ev('r1'), ev('r5'), ev('r2'), ev('r6'), ev('r3'), ev('r4'), ev('r5')] });
  assert.equal(r.status, 422);
  assert.deepEqual(r.body.error_details, {
    0: { transaction_id: ['value_already_exist'] }, 2: { transaction_id: ['value_already_exist'] },
    4: { transaction_id: ['value_already_exist'] }, 5: { transaction_id: ['value_already_exist'] },
    6: { transaction_id: ['value_already_exist'] },
  });
  // an unknown subscription or metric after the first refusal is named too
  r = await post('/api/v1/events/batch', { events: [ev('r7', { code: 'nope' }), ev('r8'), ev('r9', { external_subscription_id: 'nobody' }), ev('r2')] });
  assert.deepEqual(r.body.error_details, {
    0: { code: ['billable_metric_not_found'] }, 2: { external_subscription_id: ['subscription_not_found'] },
    3: { transaction_id: ['value_already_exist'] },
  });
  // and so is every event that does not read
  r = await post('/api/v1/events/batch', { events: [ev('r10'), { code: 'tokens' }, ev('r11', { timestamp: 'soon' }), ev('r12')] });
  assert.deepEqual(r.body.error_details, { 1: { transaction_id: ['value_is_mandatory'] }, 2: { timestamp: ['invalid_format'] } });
  // nothing was kept, and the identities the refusals looked at are free again
  for (const id of ['r5', 'r6', 'r8', 'r10', 'r12']) assert.equal((await t.api(`/api/v1/events/${id}`)).status, 404, id);
  r = await post('/api/v1/events/batch', { events: [ev('r5'), ev('r6'), ev('r8')] });
  assert.equal(r.status, 200);
});

// Lago's batch reads params.permit(events: [...]), not require: whatever leaves no list of
// events (no key, null, a scalar, an empty object, a body that is not an object, which Rails
// keeps under _json) is its CreateBatchService's 422 no_events. An audit found them 400.
test('a batch body without a list of events is 422 no_events, as Lago\'s permit leaves it', async () => {
  for (const raw of ['{}', '{"events":null}', '{"events":"x"}', '{"events":5}', '{"events":true}', '{"events":{}}', '{"events":{"a":1}}', '[]', '"x"']) {
    const r = await post('/api/v1/events/batch', null, raw);
    assert.deepEqual(r.body, { status: 422, error: 'Unprocessable Entity', code: 'validation_errors', error_details: { events: ['no_events'] } }, raw);
  }
  assert.equal((await post('/api/v1/events/batch', null, '{"events":')).status, 400); // not JSON: still 400
});

// Lago casts precise_total_amount_cents with Rails' decimal type: String#to_d, which reads
// Ruby's BigDecimal forms and a point without decimals ("5."); a blank text is nil. Its
// serializer writes the BigDecimal back with BigDecimal#to_s, at least one decimal ("100.0").
// An audit found "+7", ".5", "5.", " 3 ", "00012" and "1_0" refused, and "100" answered "100".
test('precise_total_amount_cents: every decimal form Ruby\'s String#to_d reads in full, answered as Lago writes a BigDecimal', async () => {
  const cases = [['"+7"', '7.0'], ['".5"', '0.5'], ['"5."', '5.0'], ['" 3 "', '3.0'], ['"\\t3\\n"', '3.0'], ['"00012"', '12.0'], ['"1_0"', '10.0'],
    ['"1_000.000_1"', '1000.0001'], ['"1e2"', '100.0'], ['"1E-3"', '0.001'], ['"5.e1"', '50.0'], ['"-.5"', '-0.5'], ['"2d1"', '20.0'], ['"100"', '100.0'],
    ['100', '100.0'], ['-5', '-5.0'], ['1.25', '1.25'], ['1e2', '100.0'], ['"-0"', '0.0'], ['""', null], ['"   "', null], ['null', null]];
  let i = 0;
  for (const [sent, kept] of cases) {
    const id = `ptac${i++}`;
    const one = `{"transaction_id":"${id}","external_subscription_id":"sub_a","code":"tokens","precise_total_amount_cents":${sent}}`;
    let r = await post('/api/v1/events', null, `{"event":${one}}`);
    assert.equal(r.status, 200, `${sent}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.event.precise_total_amount_cents, kept, sent);
    assert.equal((await (await t.api(`/api/v1/events/${id}`)).json()).event.precise_total_amount_cents, kept, sent);
    r = await post('/api/v1/events/batch', null, `{"events":[${one.replace(id, `${id}b`)}]}`);
    assert.equal(r.status, 200, `${sent}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.events[0].precise_total_amount_cents, kept, sent);
  }
  const listed = (await (await t.api('/api/v1/events?per_page=1000')).json()).events.filter((e) => e.transaction_id.startsWith('ptac'));
  assert.equal(listed.length, 2 * cases.length);
  for (const e of listed) assert.equal(e.precise_total_amount_cents, cases[Number(e.transaction_id.slice(4).replace('b', ''))][1], e.transaction_id);
  // text that String#to_d reads only in part or not at all (Lago stores "abc" as 0, "12abc" as 12)
  for (const sent of ['"abc"', '"12abc"', '"1_.5"', '"1__0"', '"_1"', '"1e"', '"0x10"', '"Infinity"', '"NaN"', '"1 2"', '"."', '"-"', '"\\u00a03"']) {
    const r = await post('/api/v1/events', null, `{"event":{"transaction_id":"bad","external_subscription_id":"sub_a","code":"tokens","precise_total_amount_cents":${sent}}}`);
    assert.deepEqual(r.body.error_details, { precise_total_amount_cents: ['invalid_value'] }, sent);
  }
});

// json-c takes NaN, Infinity, 05.5 and 1. as numbers, and a lone surrogate escape as U+FFFD;
// Tally keeps a number's text, so one such event made every listing of the events unreadable.
test('numbers JSON does not have and lone surrogate escapes are refused; the events stay readable', async () => {
  for (const [value, what] of [['NaN', /not written as JSON/], ['-Infinity', /not written as JSON/], ['05.5', /not written as JSON/], ['1.', /not written as JSON/], ['1.e5', /not written as JSON/]]) {
    for (const path of ['/api/v1/events', '/api/v1/events/batch']) {
      const one = `{"transaction_id":"nan_${path.length}","external_subscription_id":"sub_a","code":"tokens","properties":{"tokens":${value}}}`;
      const r = await post(path, null, path.endsWith('batch') ? `{"events":[${one}]}` : `{"event":${one}}`);
      assert.equal(r.status, 400, `${value} ${path}`);
      assert.match(r.body.error, what);
    }
  }
  for (const id of ['\\ud800', '\\udc00', '\\ud800\\u0041']) {
    const r = await post('/api/v1/events', null, `{"event":{"transaction_id":"${id}","external_subscription_id":"sub_a","code":"tokens","properties":{"tokens":1}}}`);
    assert.equal(r.status, 400, id);
    assert.match(r.body.error, /surrogate/);
  }
  // a pair is a character, kept as sent
  const pair = await post('/api/v1/events', null, '{"event":{"transaction_id":"smile\\ud83d\\ude00","external_subscription_id":"sub_a","code":"tokens","properties":{"tokens":1}}}');
  assert.equal(pair.status, 200);
  assert.equal(pair.body.event.transaction_id, 'smile\u{1F600}');
  const all = await t.api('/api/v1/events?per_page=1000');
  assert.equal(all.status, 200);
  assert.ok(JSON.parse(await all.text()).events.every((e) => e.transaction_id !== 'nan_15'));
});

test('listing filters by code, subscription and time', async () => {
  const all = await (await t.api('/api/v1/events?per_page=1000')).json();
  const calls = await (await t.api('/api/v1/events?code=calls&per_page=1000')).json();
  assert.equal(calls.meta.total_count, 50);
  assert.ok(calls.events.every((e) => e.code === 'calls'));
  // a parameter named twice takes its last value, as Rails reads it
  const twice = await (await t.api('/api/v1/events?code=tokens&per_page=3&code=calls&per_page=1000')).json();
  assert.equal(twice.meta.total_count, 50);
  assert.equal(twice.events.length, 50);
  assert.ok(twice.events.every((e) => e.code === 'calls'));
  const b = await (await t.api('/api/v1/events?external_subscription_id=sub_b')).json();
  assert.deepEqual(b.events.map((e) => e.transaction_id), ['d1']);
  const jan = await (await t.api('/api/v1/events?timestamp_from=2026-01-01T00:00:00Z&timestamp_to=2026-01-02T00:00:00Z')).json();
  assert.deepEqual(jan.events.map((e) => e.transaction_id), ['ts4']);
  assert.ok(all.meta.total_count > 100);
  assert.equal((await t.api('/api/v1/events?timestamp_from=soon')).status, 422); // Lago's invalid_date
  // Lago's EventsQuery takes a blank filter as given, unlike other lists: where(code: "")
  // lists no event, and DateTime.iso8601("") raises, its 422 invalid_date (audit 9; an
  // earlier Tally listed every event for each)
  for (const blank of ['code=', 'external_subscription_id=', 'code=&external_subscription_id=sub_b', 'code=%20']) {
    const r = await (await t.api(`/api/v1/events?per_page=1000&${blank}`)).json();
    assert.equal(r.meta?.total_count, 0, `${blank}: ${JSON.stringify(r).slice(0, 200)}`);
    assert.deepEqual(r.events, [], blank);
  }
  for (const [blank, field] of [['timestamp_from=', 'timestamp_from'], ['timestamp_to=', 'timestamp_to'], ['timestamp_to=%20', 'timestamp_to'],
    ['timestamp_from=&timestamp_to=', 'timestamp_from'], ['timestamp_from=2026-01-01&timestamp_to=', 'timestamp_to']]) {
    const r = await t.api(`/api/v1/events?${blank}`);
    assert.equal(r.status, 422, blank);
    assert.deepEqual((await r.json()).error_details, { [field]: ['invalid_date'] }, blank);
  }
});

// Lago reads timestamp_from/_to with Ruby's DateTime.iso8601 (EventsQuery, BaseQuery's
// parse_datetime_filter): every ISO 8601 form it takes is a filter here, and what it refuses is
// 422 invalid_date (audit 9: basic, week, ordinal dates and minutes without seconds were
// refused). ts4, at 2026-01-01T00:00:00Z, is the earliest event; the organization's clock is
// at 2026-02-01, the year a date without one takes.
test('timestamp_from/_to take every form Ruby\'s DateTime.iso8601 reads, and refuse the rest', async () => {
  const ids = async (query) => {
    const r = await t.api(`/api/v1/events?per_page=1000&${query}`);
    const b = await r.json();
    assert.equal(r.status, 200, `${query}: ${JSON.stringify(b)}`);
    return b.events.map((e) => e.transaction_id);
  };
  const all = await ids('');
  for (const at of ['20260101', '2026-W01-4', '2026W014', '2026-001', '2026001', '2026-01-01T00:00', '20260101T000000Z',
    '2026-01-01T01:00:00%2B0100', '2026-01-01T01:00%2B01', '2025-12-31T23:00:00-01:00', '2026-01-01T00:00:00.0000009Z',
    '%2B2026-01-01', '%202026-01-01%20', '2025-12-31T24:00:00Z', '26-01-01', '2026-w01-4t00:00z', '--01-01', '-001',
    '2026-', '2026-01', '2026-01-01T00:00:00,000Z']) {
    assert.deepEqual(await ids(`timestamp_to=${at}`), ['ts4'], at);
    assert.equal((await ids(`timestamp_from=${at}`)).length, all.length, at);
  }
  // just before ts4: a fraction past the microsecond is cut, as Lago's database keeps it
  for (const before of ['2025-12-31T23:59:59.9999999Z', '2025-12-31T23:59:60Z', '20251231T235959,999999Z'])
    assert.deepEqual(await ids(`timestamp_to=${before}`), [], before);
  // years past the ones an event may have: before or after every event
  assert.deepEqual(await ids('timestamp_from=99999-01-01'), []);
  assert.equal((await ids('timestamp_to=99999-01-01')).length, all.length);
  assert.deepEqual(await ids('timestamp_to=-0001-01-01'), []);
  assert.equal((await ids('timestamp_from=0000-01-01')).length, all.length);
  for (const bad of ['soon', '2026-02-29', '1582-10-10', '2026-W54-1', '2026-W01-8', '2026-000', '2026-13-01', '2026-01-01T25:00',
    '2026-01-01T24:00:01', '2026-01-01T10:00:61Z', '2026-01-01T10:00:00%2B02:00:00', '10:00Z', '2026-01-01%2010:00:00Z',
    '2026%2F01%2F01', `${'%20'.repeat(119)}2026-01-01`, '%EF%BC%92026-01-01']) {
    for (const field of ['timestamp_from', 'timestamp_to']) {
      const r = await t.api(`/api/v1/events?${field}=${bad}`);
      assert.equal(r.status, 422, `${field}=${bad}`);
      assert.deepEqual((await r.json()).error_details, { [field]: ['invalid_date'] }, bad);
    }
  }
});

// Lago's events query takes timestamp_to inclusively (where(timestamp: ..timestamp_to)).
test('timestamp_to includes an event stamped exactly at it', async () => {
  const ids = async (query) => {
    const r = await (await t.api(`/api/v1/events?${query}`)).json();
    assert.equal(r.meta.total_count, r.events.length, query);
    return r.events.map((e) => e.transaction_id);
  };
  const at = '2026-01-01T00:00:00Z'; // ts4's instant, the earliest event stored
  assert.deepEqual(await ids(`timestamp_to=${at}`), ['ts4']);
  assert.deepEqual(await ids(`timestamp_from=${at}&timestamp_to=${at}`), ['ts4']);
  assert.deepEqual(await ids(`timestamp_to=${at}&external_subscription_id=sub_a&code=tokens`), ['ts4']);
  assert.deepEqual(await ids('timestamp_to=2025-12-31T23:59:59.999999Z'), []);
});

// A transaction id may hold any character, '/' included; Rails decodes %2F into the path
// parameter. Tally splits the path first and decodes each segment after.
test('GET by transaction id decodes its path segment, %2F included', async () => {
  for (const id of ['ord/1', 'a b%c?d#e', 'café/π', 'x+y']) {
    const r = await post('/api/v1/events', { event: ev(id) });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const got = await t.api(`/api/v1/events/${encodeURIComponent(id)}`);
    assert.equal(got.status, 200, id);
    assert.equal((await got.json()).event.transaction_id, id);
  }
  assert.equal((await t.api('/api/v1/events/ord%2f1')).status, 200); // either case of hex
  assert.equal((await t.api('/api/v1/events/ord/1')).status, 404); // two segments: no route
  // a customer's external id is a path segment too
  assert.equal((await post('/api/v1/customers', { customer: { external_id: 'team/1' } })).status, 200);
  const c = await t.api('/api/v1/customers/team%2F1');
  assert.equal(c.status, 200);
  assert.equal((await c.json()).customer.external_id, 'team/1');
  // what cannot be decoded is refused, and says why
  for (const bad of ['ord%2', 'ord%zz1', '%', 'a%00b', '%FF', '%C3%28', '%ED%A0%80'])
    assert.deepEqual(await (await t.api(`/api/v1/events/${bad}`)).json(),
      { status: 400, error: 'BadRequest: a path segment is not valid percent-encoded UTF-8' }, bad);
});

test('deduplication survives a restart and a SIGKILL', async () => {
  const r = await post('/api/v1/events', { event: ev('before_kill') });
  assert.equal(r.status, 200);
  await t.restart({ kill: true });
  for (const id of ['before_kill', 'e1', 'd1', 'full7']) {
    const again = await post('/api/v1/events', { event: ev(id, { code: id === 'full7' ? 'calls' : 'tokens' }) });
    assert.deepEqual(again.body.error_details, { transaction_id: ['value_already_exist'] }, id);
  }
});

test('Idempotency-Key on a batch replays the first answer', async () => {
  const headers = { 'Idempotency-Key': 'batch-1' };
  const a = await t.api('/api/v1/events/batch', { method: 'POST', headers, body: { events: [ev('idem1'), ev('idem2')] } });
  const b = await t.api('/api/v1/events/batch', { method: 'POST', headers, body: { events: [ev('idem1'), ev('idem2')] } });
  assert.equal(a.status, 200);
  assert.equal(b.status, 200);
  assert.equal(await b.text(), await a.text());
});

test('--max-batch raises the batch limit', async () => {
  const { newDataDir, createOrg } = await import('../lib/tallyd.mjs');
  const dir = newDataDir();
  const key = createOrg(dir, 'Big batches');
  const s = await startTallyd(dir, ['--max-batch', '2000']);
  const call = async (path, body) => {
    const r = await fetch(`${s.url}${path}`, { method: 'POST', headers: { Authorization: `Bearer ${key}` }, body: JSON.stringify(body) });
    return { status: r.status, body: await r.json() };
  };
  try {
    await call('/api/v1/billable_metrics', { billable_metric: { code: 'calls', name: 'Calls', aggregation_type: 'count_agg' } });
    await call('/api/v1/plans', { plan: { code: 'p', name: 'P', interval: 'monthly', amount_cents: 0, amount_currency: 'EUR' } });
    await call('/api/v1/subscriptions', { subscription: { external_customer_id: 'c', plan_code: 'p', external_id: 's', subscription_at: '2020-01-01T00:00:00Z' } });
    const events = Array.from({ length: 2000 }, (_, i) => ({ transaction_id: `b${i}`, external_subscription_id: 's', code: 'calls' }));
    let r = await call('/api/v1/events/batch', { events });
    assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
    assert.equal(r.body.events.length, 2000);
    r = await call('/api/v1/events/batch', { events: [...events, { transaction_id: 'one_more', external_subscription_id: 's', code: 'calls' }] });
    assert.deepEqual(r.body.error_details, { events: ['too_many_events'] });
  } finally {
    await s.stop();
  }
});

test('GET by transaction id: the latest event with it, undone with a refused batch, kept across restarts', async () => {
  await post('/api/v1/events', { event: ev('shared', { external_subscription_id: 'sub_a', properties: { tokens: 1 } }) });
  await post('/api/v1/events', { event: ev('shared', { external_subscription_id: 'sub_b', properties: { tokens: 2 } }) });
  let got = await (await t.api('/api/v1/events/shared')).json();
  assert.equal(got.event.external_subscription_id, 'sub_b');
  // a refused batch that would have pointed "shared" elsewhere leaves it where it was
  const r = await post('/api/v1/events/batch', { events: [ev('shared', { external_subscription_id: 'sub_c_missing' })] });
  assert.equal(r.status, 422);
  const r2 = await post('/api/v1/events/batch', { events: [ev('shared', { code: 'calls' }), ev('refused_txid', { code: 'nope' })] });
  assert.equal(r2.status, 422);
  got = await (await t.api('/api/v1/events/shared')).json();
  assert.equal(got.event.external_subscription_id, 'sub_b');
  assert.equal((await t.api('/api/v1/events/refused_txid')).status, 404);
  await t.restart({ kill: true });
  got = await (await t.api('/api/v1/events/shared')).json();
  assert.equal(got.event.external_subscription_id, 'sub_b');
  assert.equal(got.event.properties.tokens, 2);
  assert.deepEqual(await (await t.api('/api/v1/events/never')).json(), { status: 404, error: 'Not Found', code: 'event_not_found' });
  // a transaction id longer than any event may have names none (found by a black-box audit:
  // it reached an assertion in the writer and stopped the server)
  for (const long of ['t'.repeat(256), 'é'.repeat(200)]) {
    const r3 = await t.api(`/api/v1/events/${encodeURIComponent(long)}`);
    assert.equal(r3.status, 404);
    assert.deepEqual(await r3.json(), { status: 404, error: 'Not Found', code: 'event_not_found' });
  }
  assert.equal((await t.api('/api/v1/events/shared')).status, 200);
});

// Found by an audit (report 8, F1): a transaction_id of only whitespace was accepted and
// billed (only "" was refused); Lago's `blank?` takes it for none: value_is_mandatory.
test('a transaction_id of only whitespace is refused as an empty one, alone or in a batch', async () => {
  for (const id of ['   ', '\t\n', ' ']) {
    let r = await post('/api/v1/events', { event: ev(id) });
    assert.equal(r.status, 422, JSON.stringify(id));
    assert.deepEqual(r.body.error_details, { transaction_id: ['value_is_mandatory'] }, JSON.stringify(id));
    r = await post('/api/v1/events/batch', { events: [ev(`blank_ok_${id.length}`), ev(id)] });
    assert.equal(r.status, 422, JSON.stringify(id));
    assert.deepEqual(r.body.error_details, { 1: { transaction_id: ['value_is_mandatory'] } }, JSON.stringify(id));
  }
  assert.equal((await t.api(`/api/v1/events/${encodeURIComponent('   ')}`)).status, 404);
  // an id with spaces around other characters is an id
  assert.equal((await post('/api/v1/events', { event: ev(' padded id ') })).status, 200);
});

// Lago's string columns take integer ids as their decimal text (clients in Python or Ruby send
// order numbers as integers); an audit found them refused with invalid_type.
test('an integer transaction_id or external_subscription_id is taken as its decimal text', async () => {
  await t.api('/api/v1/subscriptions', { method: 'POST', body: { subscription: { external_customer_id: 'cust_num', plan_code: 'p', external_id: '777', subscription_at: '2026-01-01T00:00:00Z' } } });
  let r = await post('/api/v1/events', { event: { transaction_id: 123456789, external_subscription_id: 777, code: 'calls' } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual([r.body.event.transaction_id, r.body.event.external_subscription_id], ['123456789', '777']);
  // the same id as a string is the same event
  r = await post('/api/v1/events', { event: { transaction_id: '123456789', external_subscription_id: '777', code: 'calls' } });
  assert.equal(r.status, 422);
  assert.deepEqual(r.body.error_details, { transaction_id: ['value_already_exist'] });
  r = await post('/api/v1/events/batch', { events: [{ transaction_id: -5, external_subscription_id: 777, code: 'calls' }] });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.events[0].transaction_id, '-5');
  assert.equal((await t.api('/api/v1/events/123456789')).status, 200);
  // not a number with a fraction, nor one past 64 bits, nor another type
  for (const [transaction_id, code] of [[1.5, 'invalid_type'], [true, 'invalid_type'], [{ a: 1 }, 'invalid_type']]) {
    r = await post('/api/v1/events', { event: { transaction_id, external_subscription_id: 777, code: 'calls' } });
    assert.equal(r.status, 422, JSON.stringify(transaction_id));
    assert.deepEqual(r.body.error_details, { transaction_id: [code] });
  }
  r = await post('/api/v1/events', null, '{"event":{"transaction_id":99999999999999999999,"external_subscription_id":"777","code":"calls"}}');
  assert.equal(r.status, 422);
  assert.deepEqual(r.body.error_details, { transaction_id: ['value_is_out_of_range'] });
});

// Found by a code review: the answer's shape was chosen by the path's text, so POST /events/
// (which the router takes as /events, as Rails does) answered as a batch: {"events":[...]}, and
// a refusal keyed by index.
test('POST /events/ with a trailing slash answers as POST /events', async () => {
  const r = await post('/api/v1/events/', { event: ev('slash_1') });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.event.transaction_id, 'slash_1');
  assert.equal(r.body.events, undefined);
  const refused = await post('/api/v1/events/', { event: ev('slash_2', { code: 'nope' }) });
  assert.equal(refused.status, 422);
  assert.deepEqual(Object.keys(refused.body.error_details), ['code']);
  const batch = await post('/api/v1/events/batch/', { events: [ev('slash_3')] });
  assert.equal(batch.status, 200, JSON.stringify(batch.body));
  assert.equal(batch.body.events[0].transaction_id, 'slash_3');
});
