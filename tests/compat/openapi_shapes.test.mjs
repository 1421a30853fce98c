// Every answer of a route Tally shares with Lago, checked against Lago's OpenAPI spec
// (../shared/data/lago-openapi.yaml): a scenario drives a real tallyd through each such route,
// and each body, 2xx and error alike, is validated against the spec's schema for that
// operation and status ($refs resolved, JSON Schema 2020-12 as OpenAPI 3.1 has it). A mismatch
// names the route, the JSON path and what the spec wants. Members the spec does not name are
// Tally's additions and pass (the spec forbids none); a mismatch Tally keeps on purpose, or
// where the spec contradicts Lago's own serializer, is in ALLOWED below with its reason, and an
// entry nothing matches any more fails the test, so the list cannot go stale.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';
import { startWithOrg } from '../lib/tallyd.mjs';

const data = process.env.TALLY_SHARED_DATA || new URL('../../../shared/data', import.meta.url).pathname;
const specFile = join(data, 'lago-openapi.yaml');
// Not skipped when the spec is missing (as the trace replay is): a check that quietly stops
// running would let a response lose a required member unseen. Set TALLY_SHARED_DATA to run
// it from a work tree that has no ../shared beside it.
const routesFile = new URL('../../src/api/routes.c', import.meta.url).pathname;

// Mismatches kept on purpose, each with its reason: "declared" ones are differences docs/API.md
// states; "spec" ones are where the spec contradicts Lago's own serializer (getlago/lago-api,
// app/serializers/v1/..., read before each was put here), so Lago answers them too. An entry
// matches an error of `keyword` at a JSON path matching `at` (list items written as *), in an
// answer of an operation matching `ops` ("METHOD /spec/path status"), and only for the value
// `got` accepts (most: null alone, so a wrong type there still fails) or, for `required`, the
// one member named.
const isNull = (v) => v === null;
const ALLOWED = [
  // declared (docs/API.md, Where Tally differs: "Not yet served: slug, ... customer metadata created_at")
  { ops: /./, at: /customers?(\/\*)?$/, keyword: 'required', member: 'slug', why: 'declared: a customer\'s slug is not yet served' },
  { ops: /./, at: /customers?(\/\*)?\/metadata\/\*$/, keyword: 'required', member: 'created_at', why: 'declared: customer metadata created_at is not yet served' },
  // declared (Billing entities are not Tally's; "Not yet served: billing_entity_code")
  { ops: /wallets/, at: /wallets?(\/\*)?\/billing_entity_code$/, keyword: 'type', got: isNull, why: 'declared: billing entities are not Tally\'s, a wallet has none' },
  // declared (Invoices: an open credit invoice is listed, where Lago hides it until paid; "Tally's own status open")
  { ops: /invoices/, at: /invoices?(\/\*)?\/status$/, keyword: 'enum', got: (v) => v === 'open', why: 'declared: Tally lists a credit invoice still open' },
  // declared (Transactions Tally adds: usage, usage_refund, expired)
  { ops: /wallet/, at: /wallet_transactions\/\*\/transaction_status$/, keyword: 'enum', got: (v) => ['usage', 'usage_refund', 'expired'].includes(v), why: 'declared: Tally\'s own transaction statuses of real-time debits and expiry' },
  // declared (Events: the answer names its customer; Where Tally differs, durable answers)
  { ops: /^POST \/events(\/batch)? 200$/, at: /^\/events?(\/\*)?\/lago_customer_id$/, keyword: 'type', got: (v) => typeof v === 'string', why: 'declared: Tally links an event to its customer before it answers, where Lago does it later and answers null' },
  // declared (Events, estimate_fees: applied taxes' lago_id, lago_fee_id and created_at null as in Lago's estimate)
  { ops: /^POST \/events\/estimate_fees 200$/, at: /^\/fees\/\*\/applied_taxes\/\*\/(lago_id|lago_fee_id|created_at)$/, keyword: 'type', got: isNull, why: 'declared: an estimate\'s taxes are not stored, as in Lago\'s' },
  // spec: V1::BillableMetricSerializer writes model.expression, null without one
  { ops: /billable_metrics/, at: /billable_metrics?(\/\*)?\/expression$/, keyword: 'type', got: isNull, why: 'spec: Lago answers null for a metric without an expression' },
  // spec: V1::PlanSerializer writes these columns as they are, null when not set
  { ops: /./, at: /plans?(\/\*)?\/(invoice_display_name|description|trial_period)$/, keyword: 'type', got: isNull, why: 'spec: Lago answers null for a plan without them' },
  // spec: V1::CustomerSerializer#billing_configuration writes the customer's own values, null when unset
  { ops: /./, at: /billing_configuration\/(payment_provider|payment_provider_code|invoice_grace_period|document_locale)$/, keyword: 'type', got: isNull, why: 'spec: Lago answers null when the customer has none' },
  { ops: /./, at: /billing_configuration\/payment_provider$/, keyword: 'enum', got: isNull, why: 'spec: Lago answers null when the customer has no payment provider' },
  // spec: V1::SubscriptionSerializer writes model.on_termination_credit_note, null for a plan paid in arrears
  { ops: /subscriptions/, at: /subscriptions?(\/\*)?\/on_termination_credit_note$/, keyword: 'enum', got: isNull, why: 'spec: Lago answers null where no credit note applies' },
  // spec: V1::FeeSerializer#pricing_unit_details returns nil without a pricing unit; item.description is the metric's
  { ops: /./, at: /fees\/\*\/pricing_unit_details$/, keyword: 'type', got: isNull, why: 'spec: Lago answers null for a fee without a pricing unit' },
  { ops: /^POST \/events\/(batch_)?estimate_instant_fees 200$/, at: /^\/fees\/\*\/item\/description$/, keyword: 'type', got: isNull, why: 'spec: the item description is the metric\'s, null when it has none' },
  // spec: V1::Customers::ChargeUsageSerializer#build_filter_data writes charge_filter&.invoice_display_name and &.to_h
  { ops: /current_usage/, at: /charges_usage\/\*\/filters\/\*\/(invoice_display_name|values)$/, keyword: 'type', got: isNull, why: 'spec: the usage outside every filter has no filter, so Lago answers null' },
  // spec: the enum lacks models Lago has (Charge::CHARGE_MODELS), which its serializer writes as they are
  { ops: /current_usage/, at: /charges_usage\/\*\/charge\/charge_model$/, keyword: 'enum', got: (v) => ['graduated_percentage', 'dynamic'].includes(v), why: 'spec: Lago\'s charge models graduated_percentage and dynamic are missing from the enum' },
  // spec: WalletObject requires `balance`, which it does not define and V1::WalletSerializer no longer writes
  { ops: /wallets/, at: /wallets?(\/\*)?$/, keyword: 'required', member: 'balance', why: 'spec: Lago\'s wallet has no balance member (balance_cents is there)' },
  // spec: V1::Wallets::RecurringTransactionRuleSerializer writes model.interval, null for a threshold rule
  { ops: /wallets/, at: /recurring_transaction_rules\/\*\/interval$/, keyword: 'type', got: isNull, why: 'spec: a threshold rule has no interval; Lago answers null' },
  { ops: /wallets/, at: /recurring_transaction_rules\/\*\/interval$/, keyword: 'enum', got: isNull, why: 'spec: a threshold rule has no interval; Lago answers null' },
  // spec: V1::WalletSerializer, WalletTransactionSerializer and SubscriptionSerializer write payment_method_id as it is, null without one
  { ops: /wallet|subscriptions/, at: /payment_method\/payment_method_id$/, keyword: 'type', got: isNull, why: 'spec: Lago answers null when no payment method is set' },
  // spec: V1::InvoiceSerializer writes these columns as they are, null until set
  { ops: /invoices/, at: /invoices?(\/\*)?\/(file_url|payment_dispute_lost_at)$/, keyword: 'type', got: isNull, why: 'spec: Lago answers null before a PDF is made or a dispute lost' },
  // spec: V1::InvoiceSerializer writes model.sequential_id, which Invoice#should_assign_sequential_id? leaves nil until it is finalized (a draft's, an open one's)
  { ops: /invoices/, at: /invoices?(\/\*)?\/sequential_id$/, keyword: 'type', got: isNull, why: 'spec: Lago answers null for an invoice not finalized yet' },
];

// Where the spec's schema is not the body Lago writes at all, the body checked against the spec's
// schema fixed so: Api::V1::WalletTransactionsController#show renders its object under the root
// `wallet_transaction` (root_name), where the spec gives the object itself.
const SPEC_FIXES = {
  'GET /wallet_transactions/{lago_id} 200': (schema) => ({ type: 'object', required: ['wallet_transaction'], properties: { wallet_transaction: schema } }),
};

// ---- the spec, as JSON Schema ----------------------------------------------------------------

// The spec, its local $refs pointed at one schema document ("lago"), and the three places it
// writes OpenAPI 3.0's `nullable: true` beside a $ref (a billing address' country) read as
// 3.0 meant it: the value or null. OpenAPI 3.1 has no `nullable`, and JSON Schema would
// otherwise ignore it and refuse the null that Lago's customer serializer writes.
function toJsonSchema(node) {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (!node || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === '$ref' && typeof v === 'string' && v.startsWith('#/')) out[k] = `lago${v}`;
    else if (k !== 'nullable') out[k] = toJsonSchema(v);
  }
  if (node.nullable === true) {
    const { description, ...schema } = out;
    return { ...(description ? { description } : {}), anyOf: [schema, { type: 'null' }] };
  }
  return out;
}

let spec;
let ajv;
const validators = new Map();
function loadSpec() {
  spec = parse(readFileSync(specFile, 'utf8'));
  ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  addFormats(ajv);
  ajv.addSchema({ $id: 'lago', components: toJsonSchema(spec.components) });
}

// The spec's response for an operation and status: { schema } (null when it gives no body), or
// null when the spec has no such status.
function specResponse(method, specPath, status) {
  const op = spec.paths[specPath]?.[method.toLowerCase()];
  if (!op) throw new Error(`the spec has no ${method} ${specPath}`);
  let resp = op.responses[String(status)];
  if (!resp) return null;
  if (resp.$ref) resp = resp.$ref.split('/').slice(1).reduce((o, k) => o[k], spec);
  return { schema: resp.content?.['application/json']?.schema ?? null };
}

function validator(method, specPath, status) {
  const key = `${method} ${specPath} ${status}`;
  if (!validators.has(key)) {
    const r = specResponse(method, specPath, status);
    const fix = SPEC_FIXES[key] ?? ((schema) => schema);
    validators.set(key, r && (r.schema ? ajv.compile(fix(toJsonSchema(r.schema))) : () => true));
  }
  return validators.get(key);
}

// ---- checking answers ------------------------------------------------------------------------

const used = new Set(); // ALLOWED entries that matched
const covered = new Set(); // "METHOD /spec/path" answered 2xx and validated
let mismatches = []; // of the current test

function allowedEntry(op, e, value) {
  const at = e.instancePath.replace(/\/\d+(?=\/|$)/g, '/*');
  return ALLOWED.findIndex((a) => a.ops.test(op) && a.at.test(at) && a.keyword === e.keyword &&
    (a.keyword === 'required' ? a.member === e.params.missingProperty : a.got(value)));
}

// The errors of one body against the spec (those ALLOWED taken out): { op, label, at, what }.
function check(method, specPath, status, body, label) {
  const op = `${method} ${specPath} ${status}`;
  const v = validator(method, specPath, status);
  if (!v) {
    return [{ op, label, at: '', what: `status ${status} is not one the spec gives for ${method} ${specPath}` }];
  }
  if (v(body)) return [];
  const found = [];
  for (const e of v.errors) {
    // anyOf/oneOf report their branches' errors, then their own: the branches say what is wrong
    if (e.keyword === 'anyOf' || e.keyword === 'oneOf') continue;
    const value = e.instancePath.split('/').slice(1).reduce((o, k) => o?.[k.replaceAll('~1', '/').replaceAll('~0', '~')], body);
    const i = allowedEntry(op, e, value);
    if (i >= 0) { used.add(i); continue; }
    const wants = e.keyword === 'enum' ? `: ${e.params.allowedValues.join(', ')}` : '';
    found.push({ op, label, at: e.instancePath || '/',
      what: `${e.message}${wants}${e.keyword === 'required' ? '' : `; got ${JSON.stringify(value)?.slice(0, 80)}`}` });
  }
  return found;
}

let t;
// One request: its answer validated against the spec's `method specPath` for its status, the
// status also checked to be `want`. The parsed body.
async function call(method, path, specPath, body, { want = 200, key } = {}) {
  const r = await t.api(path, { method, body, key });
  const text = await r.text();
  const label = `${method} ${path} -> ${r.status}`;
  assert.equal(r.status, want, `${label}: ${text}`);
  const json = text ? JSON.parse(text) : null;
  if (r.status < 300) covered.add(`${method} ${specPath}`);
  mismatches.push(...check(method, specPath, r.status, json, label));
  return json;
}
const get = (path, specPath, opts) => call('GET', path, specPath, undefined, opts);
const post = (path, specPath, body, opts) => call('POST', path, specPath, body, opts);
const put = (path, specPath, body, opts) => call('PUT', path, specPath, body, opts);
const patch = (path, specPath, body, opts) => call('PATCH', path, specPath, body, opts);
const del = (path, specPath, opts) => call('DELETE', path, specPath, undefined, opts);

// Each test ends by failing with every mismatch its requests met.
// Each test ends by failing with every mismatch its requests met, one line for each operation,
// JSON path (an item of a list as *) and failure, with the first request that met it.
function noMismatches() {
  const lines = new Map();
  for (const m of mismatches) {
    const key = `${m.op} ${m.at.replace(/\/\d+(?=\/|$)/g, '/*')}: ${m.what.replace(/; got .*$/, '')}`;
    if (!lines.has(key)) lines.set(key, `${key} (${m.what.match(/got .*$/)?.[0] ?? 'missing'}; first ${m.label})`);
  }
  mismatches = [];
  const found = [...lines.values()];
  assert.deepEqual(found, [], `${found.length} answer(s) differ from Lago's OpenAPI spec:\n  ${found.join('\n  ')}`);
}

before(async () => {
  assert.ok(existsSync(specFile), `Lago's OpenAPI spec not found at ${specFile} (set TALLY_SHARED_DATA)`);
  loadSpec();
  t = await startWithOrg(['--test-clock', '2026-03-15T09:30:00Z']);
});
after(async () => { if (t) await t.cleanup(); });

// ---- the scenario ----------------------------------------------------------------------------

test('the validator has teeth: a body missing a required member, or with a wrong type, fails', () => {
  const ok = { status: 404, error: 'Not Found', code: 'customer_not_found' };
  assert.deepEqual(check('GET', '/customers/{external_customer_id}', 404, ok, 'x'), []);
  const { code, ...noCode } = ok;
  assert.deepEqual(check('GET', '/customers/{external_customer_id}', 404, noCode, 'x').map((m) => m.what), ["must have required property 'code'"]);
  // through a $ref into components: a customer without its lago_id, a wallet's balance as a string
  const customer = { customer: { external_id: 'c', lago_id: '1a901a90-1a90-1a90-1a90-1a901a901a90' } };
  assert.ok(check('GET', '/customers/{external_customer_id}', 200, customer, 'x').every((m) => !/lago_id/.test(m.what)));
  delete customer.customer.lago_id;
  assert.ok(check('GET', '/customers/{external_customer_id}', 200, customer, 'x').some((m) => /'lago_id'/.test(m.what)));
  assert.ok(check('GET', '/wallets/{lago_id}', 200, { wallet: { balance_cents: '10' } }, 'x').some((m) => m.at === '/wallet/balance_cents' && /must be integer/.test(m.what)));
  // an ALLOWED null is that null alone: another wrong value at the same place still fails
  assert.ok(check('GET', '/plans/{code}', 200, { plan: { description: 5 } }, 'x').some((m) => m.at === '/plan/description'));
  assert.ok(check('GET', '/plans/{code}', 200, { plan: { description: null } }, 'x').every((m) => m.at !== '/plan/description'));
  // the fixed schema of one wallet transaction still wants its members
  assert.ok(check('GET', '/wallet_transactions/{lago_id}', 200, { wallet_transaction: {} }, 'x').some((m) => /'lago_id'/.test(m.what)));
  assert.ok(check('GET', '/wallet_transactions/{lago_id}', 200, {}, 'x').some((m) => /'wallet_transaction'/.test(m.what)));
  mismatches = [];
});

const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

test('errors: 400, 401, 404 and 422 bodies', async () => {
  await get('/api/v1/customers', '/customers', { want: 401, key: 'not-a-key' });
  await post('/api/v1/customers', '/customers', { external_id: 'no_root' }, { want: 400 });
  await post('/api/v1/customers', '/customers', { customer: { external_id: '' } }, { want: 422 });
  await get('/api/v1/customers/nobody', '/customers/{external_customer_id}', { want: 404 });
  await get('/api/v1/plans/none', '/plans/{code}', { want: 404 });
  await get('/api/v1/taxes/none', '/taxes/{code}', { want: 404 });
  await get('/api/v1/billable_metrics/none', '/billable_metrics/{code}', { want: 404 });
  await get('/api/v1/add_ons/none', '/add_ons/{code}', { want: 404 });
  await get('/api/v1/coupons/none', '/coupons/{code}', { want: 404 });
  await get('/api/v1/subscriptions/none', '/subscriptions/{external_id}', { want: 404 });
  await get(`/api/v1/wallets/${UNKNOWN_ID}`, '/wallets/{lago_id}', { want: 404 });
  await get(`/api/v1/wallet_transactions/${UNKNOWN_ID}`, '/wallet_transactions/{lago_id}', { want: 404 });
  await get(`/api/v1/invoices/${UNKNOWN_ID}`, '/invoices/{lago_id}', { want: 404 });
  await get('/api/v1/events/none', '/events/{transaction_id}', { want: 404 });
  await post('/api/v1/subscriptions', '/subscriptions', { subscription: { external_customer_id: 'x', plan_code: 'none', external_id: 'x' } }, { want: 404 });
  await post('/api/v1/wallets', '/wallets', { wallet: { external_customer_id: 'nobody', currency: 'USD', rate_amount: '1' } }, { want: 422 });
  noMismatches();
});

let tokens; // the sum_agg metric with a model filter
let requests; // the count_agg metric
test('catalog: taxes, billable metrics, add-ons, coupons', async () => {
  await post('/api/v1/taxes', '/taxes', { tax: { name: 'VAT', code: 'vat', rate: '20.0', description: 'French VAT' } });
  await post('/api/v1/taxes', '/taxes', { tax: { name: 'Gone', code: 'gone', rate: '1.5' } });
  await get('/api/v1/taxes', '/taxes');
  await get('/api/v1/taxes/vat', '/taxes/{code}');
  await put('/api/v1/taxes/vat', '/taxes/{code}', { tax: { description: 'France' } });
  await del('/api/v1/taxes/gone', '/taxes/{code}');
  await put('/api/v1/taxes/gone', '/taxes/{code}', { tax: { rate: '2' } }, { want: 404 });
  await del('/api/v1/plans/none', '/plans/{code}', { want: 404 });
  await post('/api/v1/taxes', '/taxes', { tax: { name: 'VAT', code: 'vat', rate: '20.0' } }, { want: 422 });

  tokens = (await post('/api/v1/billable_metrics', '/billable_metrics', { billable_metric: {
    name: 'Tokens', code: 'tokens', aggregation_type: 'sum_agg', field_name: 'tokens', rounding_function: 'round', rounding_precision: 2,
    filters: [{ key: 'model', values: ['small', 'large'] }] } })).billable_metric;
  requests = (await post('/api/v1/billable_metrics', '/billable_metrics', { billable_metric: {
    name: 'Requests', code: 'requests', aggregation_type: 'count_agg' } })).billable_metric;
  await post('/api/v1/billable_metrics', '/billable_metrics', { billable_metric: {
    name: 'Seats', code: 'seats', aggregation_type: 'unique_count_agg', field_name: 'user', recurring: true } });
  await post('/api/v1/billable_metrics', '/billable_metrics', { billable_metric: {
    name: 'Compute', code: 'compute', aggregation_type: 'sum_agg', field_name: 'seconds', expression: 'event.properties.ms / 1000' } });
  await post('/api/v1/billable_metrics', '/billable_metrics', { billable_metric: {
    name: 'GPU', code: 'gpu', aggregation_type: 'weighted_sum_agg', field_name: 'gpus', weighted_interval: 'seconds', recurring: true } });
  await post('/api/v1/billable_metrics', '/billable_metrics', { billable_metric: {
    name: 'Storage', code: 'storage', aggregation_type: 'latest_agg', field_name: 'gb' } });
  await post('/api/v1/billable_metrics', '/billable_metrics', { billable_metric: {
    name: 'Old', code: 'old', aggregation_type: 'max_agg', field_name: 'gb' } });
  await get('/api/v1/billable_metrics', '/billable_metrics');
  await get('/api/v1/billable_metrics/tokens', '/billable_metrics/{code}');
  await put('/api/v1/billable_metrics/tokens', '/billable_metrics/{code}', { billable_metric: { description: 'LLM tokens' } });
  await del('/api/v1/billable_metrics/old', '/billable_metrics/{code}');
  await post('/api/v1/billable_metrics/evaluate_expression', '/billable_metrics/evaluate_expression', {
    expression: 'round(event.properties.ms / 1000, 1)', event: { code: 'compute', timestamp: 1773567000, properties: { ms: '1234' } } });
  await post('/api/v1/billable_metrics/evaluate_expression', '/billable_metrics/evaluate_expression', {
    expression: '', event: { code: 'compute', properties: {} } }, { want: 422 });

  await post('/api/v1/add_ons', '/add_ons', { add_on: { name: 'Setup', code: 'setup', amount_cents: 50000, amount_currency: 'USD', tax_codes: ['vat'] } });
  await post('/api/v1/add_ons', '/add_ons', { add_on: { name: 'Tmp', code: 'tmp', amount_cents: 100, amount_currency: 'USD' } });
  await get('/api/v1/add_ons', '/add_ons');
  await get('/api/v1/add_ons/setup', '/add_ons/{code}');
  await put('/api/v1/add_ons/setup', '/add_ons/{code}', { add_on: { description: 'One-off setup' } });
  await del('/api/v1/add_ons/tmp', '/add_ons/{code}');

  await post('/api/v1/coupons', '/coupons', { coupon: { name: 'Launch', code: 'launch', coupon_type: 'percentage', percentage_rate: '15', frequency: 'recurring',
    frequency_duration: 3, expiration: 'time_limit', expiration_at: '2026-12-31T23:59:59Z', applies_to: { plan_codes: [] } } });
  await post('/api/v1/coupons', '/coupons', { coupon: { name: 'Ten', code: 'ten', coupon_type: 'fixed_amount', amount_cents: 1000, amount_currency: 'USD',
    frequency: 'once', expiration: 'no_expiration', reusable: false } });
  await post('/api/v1/coupons', '/coupons', { coupon: { name: 'Tmp', code: 'tmp', coupon_type: 'fixed_amount', amount_cents: 1, amount_currency: 'USD', frequency: 'once', expiration: 'no_expiration' } });
  await get('/api/v1/coupons', '/coupons');
  await get('/api/v1/coupons/launch', '/coupons/{code}');
  await put('/api/v1/coupons/ten', '/coupons/{code}', { coupon: { description: 'Ten off' } });
  await del('/api/v1/coupons/tmp', '/coupons/{code}');
  noMismatches();
});

test('plans with every charge model, filters and taxes', async () => {
  const ranges = [{ from_value: 0, to_value: 100, per_unit_amount: '0.1', flat_amount: '1' }, { from_value: 101, to_value: null, per_unit_amount: '0.05', flat_amount: '0' }];
  await post('/api/v1/plans', '/plans', { plan: {
    name: 'Pro', code: 'pro', interval: 'monthly', amount_cents: 1900, amount_currency: 'USD', pay_in_advance: false, trial_period: 0,
    tax_codes: ['vat'], invoice_display_name: 'Pro plan', description: 'All models',
    charges: [
      { billable_metric_id: requests.lago_id, charge_model: 'standard', invoice_display_name: 'Calls', properties: { amount: '0.01' }, tax_codes: ['vat'] },
      { billable_metric_id: tokens.lago_id, charge_model: 'graduated', properties: { graduated_ranges: ranges },
        filters: [{ invoice_display_name: 'Large', properties: { graduated_ranges: [{ from_value: 0, to_value: null, per_unit_amount: '0.2', flat_amount: '0' }] }, values: { model: ['large'] } }] },
      { billable_metric_id: tokens.lago_id, charge_model: 'volume', properties: { volume_ranges: ranges } },
      { billable_metric_id: requests.lago_id, charge_model: 'package', properties: { amount: '10', package_size: 1000, free_units: 100 } },
      { billable_metric_id: tokens.lago_id, charge_model: 'percentage', properties: { rate: '2.5', fixed_amount: '0.3', free_units_per_events: 5 } },
      { billable_metric_id: tokens.lago_id, charge_model: 'graduated_percentage', properties: { graduated_percentage_ranges: [{ from_value: 0, to_value: null, rate: '1.5', flat_amount: '0' }] } },
    ] } });
  // pay in advance: what estimate_fees and the instant estimates price
  await post('/api/v1/plans', '/plans', { plan: {
    name: 'Prepaid', code: 'prepaid', interval: 'monthly', amount_cents: 0, amount_currency: 'USD',
    charges: [
      { billable_metric_id: requests.lago_id, charge_model: 'standard', pay_in_advance: true, invoiceable: true, properties: { amount: '0.5' } },
      { billable_metric_id: tokens.lago_id, charge_model: 'percentage', pay_in_advance: true, properties: { rate: '1', fixed_amount: '0.1' } },
    ] } });
  await post('/api/v1/plans', '/plans', { plan: { name: 'Tmp', code: 'tmp', interval: 'yearly', amount_cents: 0, amount_currency: 'USD' } });
  await get('/api/v1/plans', '/plans');
  await get('/api/v1/plans/pro', '/plans/{code}');
  await put('/api/v1/plans/pro', '/plans/{code}', { plan: { name: 'Pro 2026' } });
  await del('/api/v1/plans/tmp', '/plans/{code}');
  await post('/api/v1/plans', '/plans', { plan: { name: 'Bad', code: 'bad', interval: 'hourly', amount_cents: 0, amount_currency: 'USD' } }, { want: 422 });
  noMismatches();
});

test('customers, subscriptions and applied coupons', async () => {
  await post('/api/v1/customers', '/customers', { customer: {
    external_id: 'acme', name: 'Acme', email: 'billing@acme.test', currency: 'USD', timezone: 'Europe/Paris', country: 'FR',
    address_line1: '1 rue de la Paix', city: 'Paris', zipcode: '75002', legal_name: 'Acme SAS', tax_identification_number: 'FR123',
    customer_type: 'company', tax_codes: ['vat'], metadata: [{ key: 'tier', value: 'gold', display_in_invoice: true }],
    billing_configuration: { invoice_grace_period: 3, document_locale: 'fr' },
    shipping_address: { address_line1: '2 rue du Port', city: 'Marseille', zipcode: '13002', country: 'FR' } } });
  await post('/api/v1/customers', '/customers', { customer: { external_id: 'bare' } });
  await post('/api/v1/customers', '/customers', { customer: { external_id: 'tmp', name: 'Tmp' } });
  await get('/api/v1/customers', '/customers');
  await get('/api/v1/customers/acme', '/customers/{external_customer_id}');
  await get('/api/v1/customers/bare', '/customers/{external_customer_id}');
  await del('/api/v1/customers/tmp', '/customers/{external_customer_id}');

  await post('/api/v1/subscriptions', '/subscriptions', { subscription: {
    external_customer_id: 'acme', plan_code: 'pro', external_id: 'acme_pro', name: 'Main', billing_time: 'calendar', subscription_at: '2026-03-01T00:00:00Z' } });
  await post('/api/v1/subscriptions', '/subscriptions', { subscription: {
    external_customer_id: 'acme', plan_code: 'prepaid', external_id: 'acme_pre', billing_time: 'anniversary' } });
  await post('/api/v1/subscriptions', '/subscriptions', { subscription: {
    external_customer_id: 'bare', plan_code: 'pro', external_id: 'bare_pro', subscription_at: '2026-06-01T00:00:00Z' } });
  await get('/api/v1/subscriptions', '/subscriptions');
  await get('/api/v1/subscriptions?external_customer_id=acme&status[]=active&status[]=pending', '/subscriptions');
  await get('/api/v1/subscriptions/acme_pro', '/subscriptions/{external_id}');
  await get('/api/v1/subscriptions/bare_pro?status=pending', '/subscriptions/{external_id}');
  await put('/api/v1/subscriptions/acme_pro', '/subscriptions/{external_id}', { subscription: { name: 'Primary' } });
  await post('/api/v1/subscriptions', '/subscriptions', { subscription: { external_customer_id: 'bare', plan_code: 'prepaid', external_id: 'bare_old' } });
  await del('/api/v1/subscriptions/bare_old', '/subscriptions/{external_id}');
  await get('/api/v1/subscriptions/bare_old?status=terminated', '/subscriptions/{external_id}');
  await get('/api/v1/subscriptions?status[]=terminated', '/subscriptions');
  await del('/api/v1/subscriptions/bare_pro?status=pending', '/subscriptions/{external_id}');

  const applied = (await post('/api/v1/applied_coupons', '/applied_coupons', { applied_coupon: { external_customer_id: 'acme', coupon_code: 'launch' } })).applied_coupon;
  await post('/api/v1/applied_coupons', '/applied_coupons', { applied_coupon: { external_customer_id: 'acme', coupon_code: 'ten', amount_cents: 500, amount_currency: 'USD' } });
  await get('/api/v1/applied_coupons', '/applied_coupons');
  await get('/api/v1/customers/acme/applied_coupons', '/customers/{external_customer_id}/applied_coupons');
  await del(`/api/v1/customers/acme/applied_coupons/${applied.lago_id}`, '/customers/{external_customer_id}/applied_coupons/{applied_coupon_id}');
  await del(`/api/v1/customers/acme/applied_coupons/${UNKNOWN_ID}`, '/customers/{external_customer_id}/applied_coupons/{applied_coupon_id}', { want: 404 });
  await post('/api/v1/applied_coupons', '/applied_coupons', { applied_coupon: { external_customer_id: 'acme', coupon_code: 'none' } }, { want: 404 });
  await put('/api/v1/subscriptions/none', '/subscriptions/{external_id}', { subscription: { name: 'x' } }, { want: 404 });
  noMismatches();
});

test('events, estimates and current usage', async () => {
  await post('/api/v1/events', '/events', { event: { transaction_id: 'ev1', external_subscription_id: 'acme_pro', code: 'requests', timestamp: '1773567000' } });
  await post('/api/v1/events/batch', '/events/batch', { events: [
    { transaction_id: 'ev2', external_subscription_id: 'acme_pro', code: 'tokens', properties: { tokens: '1500', model: 'large' } },
    { transaction_id: 'ev3', external_subscription_id: 'acme_pro', code: 'tokens', properties: { tokens: 250.5, model: 'small' } },
    { transaction_id: 'ev4', external_subscription_id: 'acme_pre', code: 'requests', precise_total_amount_cents: '12.5' },
  ] });
  await get('/api/v1/events', '/events');
  await get('/api/v1/events?external_subscription_id=acme_pro&code=tokens', '/events');
  await get('/api/v1/events/ev2', '/events/{transaction_id}');
  await get('/api/v1/events?timestamp_from=zz', '/events', { want: 422 });
  await post('/api/v1/events/estimate_fees', '/events/estimate_fees', { event: { external_subscription_id: 'acme_pre', code: 'requests' } });
  await post('/api/v1/events/estimate_fees', '/events/estimate_fees', { event: { external_subscription_id: 'acme_pro', code: 'requests' } }, { want: 422 });
  await post('/api/v1/events/estimate_instant_fees', '/events/estimate_instant_fees', { event: {
    transaction_id: 'est1', external_subscription_id: 'acme_pre', code: 'tokens', properties: { tokens: '400' } } });
  await post('/api/v1/events/batch_estimate_instant_fees', '/events/batch_estimate_instant_fees', { events: [
    { transaction_id: 'est2', external_subscription_id: 'acme_pre', code: 'tokens', properties: { tokens: '400' } },
    { transaction_id: 'est3', external_subscription_id: 'acme_pre', code: 'requests' } ] });
  await post('/api/v1/events', '/events', { event: { transaction_id: 'ev9', external_subscription_id: 'nobody', code: 'requests' } }, { want: 422 });
  await get('/api/v1/customers/acme/current_usage?external_subscription_id=acme_pro', '/customers/{external_customer_id}/current_usage');
  await get('/api/v1/customers/acme/current_usage?external_subscription_id=acme_pre', '/customers/{external_customer_id}/current_usage');
  await get('/api/v1/customers/nobody/current_usage?external_subscription_id=acme_pro', '/customers/{external_customer_id}/current_usage', { want: 404 });
  noMismatches();
});

test('wallets, their transactions and credit invoices', async () => {
  const w = (await post('/api/v1/wallets', '/wallets', { wallet: {
    external_customer_id: 'acme', currency: 'USD', rate_amount: '0.5', name: 'Main', code: 'main', paid_credits: '20', granted_credits: '10',
    expiration_at: '2027-01-01T00:00:00Z', invoice_requires_successful_payment: true,
    transaction_metadata: [{ key: 'source', value: 'signup' }], metadata: { team: 'ml' },
    recurring_transaction_rules: [{ trigger: 'threshold', threshold_credits: '5', paid_credits: '10', granted_credits: '0' }] } })).wallet;
  await post('/api/v1/customers/bare/wallets', '/customers/{external_customer_id}/wallets', { wallet: {
    currency: 'USD', rate_amount: '1', name: 'Side', code: 'side', granted_credits: '3',
    recurring_transaction_rules: [{ trigger: 'interval', interval: 'monthly', method: 'target', target_ongoing_balance: '50', started_at: '2026-04-01T00:00:00Z' }] } });
  await get('/api/v1/wallets', '/wallets');
  await get('/api/v1/wallets?external_customer_id=acme', '/wallets');
  await get(`/api/v1/wallets/${w.lago_id}`, '/wallets/{lago_id}');
  await put(`/api/v1/wallets/${w.lago_id}`, '/wallets/{lago_id}', { wallet: { name: 'Main wallet', priority: 10 } });
  await post(`/api/v1/wallets/${w.lago_id}/metadata`, '/wallets/{lago_id}/metadata', { metadata: { team: 'ml', region: 'eu' } });
  await patch(`/api/v1/wallets/${w.lago_id}/metadata`, '/wallets/{lago_id}/metadata', { metadata: { cost_center: '42' } });
  await del(`/api/v1/wallets/${w.lago_id}/metadata/region`, '/wallets/{lago_id}/metadata/{key}');
  await get('/api/v1/customers/bare/wallets', '/customers/{external_customer_id}/wallets');
  await get('/api/v1/customers/bare/wallets/side', '/customers/{external_customer_id}/wallets/{code}');
  await put('/api/v1/customers/bare/wallets/side', '/customers/{external_customer_id}/wallets/{code}', { wallet: { name: 'Side 2' } });
  await post('/api/v1/customers/bare/wallets/side/metadata', '/customers/{external_customer_id}/wallets/{wallet_code}/metadata', { metadata: { a: '1', b: '2' } });
  await patch('/api/v1/customers/bare/wallets/side/metadata', '/customers/{external_customer_id}/wallets/{wallet_code}/metadata', { metadata: { c: '3' } });
  await del('/api/v1/customers/bare/wallets/side/metadata/a', '/customers/{external_customer_id}/wallets/{wallet_code}/metadata/{key}');
  await del('/api/v1/customers/bare/wallets/side/metadata', '/customers/{external_customer_id}/wallets/{wallet_code}/metadata');
  await del('/api/v1/customers/bare/wallets/side', '/customers/{external_customer_id}/wallets/{code}');
  await get('/api/v1/customers/bare/wallets/nope', '/customers/{external_customer_id}/wallets/{code}', { want: 404 });

  const txs = (await post('/api/v1/wallet_transactions', '/wallet_transactions', { wallet_transaction: {
    wallet_id: w.lago_id, paid_credits: '4', granted_credits: '2', voided_credits: '1', name: 'Top-up', metadata: [{ key: 'po', value: '7' }] } })).wallet_transactions;
  await post('/api/v1/wallet_transactions', '/wallet_transactions', { wallet_transaction: { wallet_id: UNKNOWN_ID, paid_credits: '1' } }, { want: 422 });
  const all = (await get(`/api/v1/wallets/${w.lago_id}/wallet_transactions`, '/wallets/{lago_id}/wallet_transactions')).wallet_transactions;
  await get(`/api/v1/wallets/${w.lago_id}/wallet_transactions?status=pending&transaction_type=inbound`, '/wallets/{lago_id}/wallet_transactions');
  await get(`/api/v1/wallet_transactions/${txs[0].lago_id}`, '/wallet_transactions/{lago_id}');

  // the invoices of the paid top-ups: listed, read, paid
  const invoices = (await get('/api/v1/invoices', '/invoices')).invoices;
  assert.ok(invoices.length >= 2, 'a credit invoice for each paid top-up');
  await get('/api/v1/invoices?external_customer_id=acme&payment_status=pending', '/invoices');
  await get(`/api/v1/invoices/${invoices[0].lago_id}`, '/invoices/{lago_id}');
  for (const inv of invoices) await put(`/api/v1/invoices/${inv.lago_id}`, '/invoices/{lago_id}', { invoice: { payment_status: 'succeeded' } });
  await get(`/api/v1/invoices/${invoices[0].lago_id}`, '/invoices/{lago_id}');
  await put(`/api/v1/invoices/${invoices[0].lago_id}`, '/invoices/{lago_id}', { invoice: { payment_status: 'bogus' } }, { want: 422 });

  // usage debited from the wallet: a consumption of a grant, the funding of a debit
  await post('/api/v1/events', '/events', { event: { transaction_id: 'ev10', external_subscription_id: 'acme_pre', code: 'requests' } });
  const after = (await get(`/api/v1/wallets/${w.lago_id}/wallet_transactions`, '/wallets/{lago_id}/wallet_transactions')).wallet_transactions;
  const inbound = all.find((x) => x.transaction_type === 'inbound' && x.transaction_status === 'granted');
  const outbound = after.find((x) => x.transaction_type === 'outbound');
  assert.ok(inbound && outbound, JSON.stringify(after));
  await get(`/api/v1/wallet_transactions/${inbound.lago_id}/consumptions`, '/wallet_transactions/{lago_id}/consumptions');
  await get(`/api/v1/wallet_transactions/${outbound.lago_id}/fundings`, '/wallet_transactions/{lago_id}/fundings');
  const read = await get(`/api/v1/wallets/${w.lago_id}`, '/wallets/{lago_id}');
  // a real answer that lost a required member, or holds a number as text, fails
  const { lago_id, ...noId } = read.wallet;
  assert.ok(check('GET', '/wallets/{lago_id}', 200, { wallet: noId }, 'x').some((m) => /'lago_id'/.test(m.what)));
  assert.ok(check('GET', '/wallets/{lago_id}', 200, { wallet: { ...read.wallet, balance_cents: String(read.wallet.balance_cents) } }, 'x').some((m) => m.at === '/wallet/balance_cents'));
  await del(`/api/v1/wallets/${w.lago_id}/metadata`, '/wallets/{lago_id}/metadata');
  await del(`/api/v1/wallets/${w.lago_id}`, '/wallets/{lago_id}');
  await put(`/api/v1/wallets/${w.lago_id}`, '/wallets/{lago_id}', { wallet: { name: 'Gone' } }, { want: 422 });
  await get(`/api/v1/wallet_transactions/${UNKNOWN_ID}/consumptions`, '/wallet_transactions/{lago_id}/consumptions', { want: 404 });
  await get(`/api/v1/wallets/${UNKNOWN_ID}/wallet_transactions`, '/wallets/{lago_id}/wallet_transactions', { want: 404 });
  await del(`/api/v1/wallets/${UNKNOWN_ID}/metadata/k`, '/wallets/{lago_id}/metadata/{key}', { want: 404 });
  noMismatches();
});

// Every route of src/api/routes.c that the spec describes, answered 2xx above at least once: a
// route added to Tally that Lago's spec has fails here until the scenario drives it.
test('every route Tally shares with the spec was exercised', () => {
  const routes = [...readFileSync(routesFile, 'utf8').matchAll(/\{"(GET|POST|PUT|PATCH|DELETE)", "\/api\/v1(\/[^"]*)"/g)];
  assert.ok(routes.length > 50, 'routes.c read');
  const specPaths = Object.keys(spec.paths);
  const same = (tally, sp) => {
    const a = tally.split('/');
    const b = sp.split('/');
    return a.length === b.length && a.every((s, i) => (s === '{}' ? /^\{\w+\}$/.test(b[i]) : s === b[i]));
  };
  const missing = [];
  for (const [, method, path] of routes) {
    const sp = specPaths.find((p) => same(path, p) && spec.paths[p][method.toLowerCase()]);
    if (sp && !covered.has(`${method} ${sp}`)) missing.push(`${method} ${sp}`);
  }
  assert.deepEqual(missing, []);
});

test('every ALLOWED entry still matches something', () => {
  const stale = ALLOWED.filter((_, i) => !used.has(i)).map((a) => `${a.ops} ${a.at} ${a.keyword}: ${a.why}`);
  assert.deepEqual(stale, []);
});
