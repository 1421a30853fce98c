// A page of taxes counts every listed tax's uses at once, and counts each exactly as the tax's
// own answer does, at a scale where each tax is named by many plans, charges, commitments,
// subscriptions' own plans, customers and add-ons, and many taxes share each of them.
// (An audit found the list counting one tax at a time, each visiting every plan: 100 taxes
// over 500 plans took 4 s per page. The cost is not asserted here, by time; this checks that
// the one visit per page counts each tax's uses as the rules in tax_counts.test.mjs say, and
// the commit message gives the figures.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWithOrg } from '../lib/tallyd.mjs';

const TAXES = 100, PLANS = 300, CUSTOMERS = 40, ADD_ONS = 30;
const tax = (i) => `t${((i % TAXES) + TAXES) % TAXES}`;
const distinct = (codes) => [...new Set(codes)];
const APPLIED = new Set([tax(0), tax(57)]); // applied to the organization

let t;
const call = (method, path, body) => t.call(method, path, body);
before(async () => { t = await startWithOrg(['--test-clock', '2026-03-01T00:00:00Z']); });
after(async () => { await t.cleanup(); });

// what each tax is named by, counted here by Lago's rules (docs/API.md, Taxes)
const expected = new Map();
const zero = () => ({ add_ons_count: 0, customers_count: 0, plans_count: 0, charges_count: 0, commitments_count: 0 });
const bump = (code, key, by = 1) => { expected.get(code)[key] += by; };

// a plan's definition, its tax codes chosen so that taxes share plans and plans share taxes
const planDef = (p, metric) => ({
  code: `p${p}`, name: `P${p}`, interval: 'monthly', amount_cents: 100, amount_currency: 'EUR',
  tax_codes: distinct([tax(p), tax(p * 7 + 3)]),
  charges: [0, 1, 2].map((i) => ({
    billable_metric_id: metric, charge_model: 'standard', properties: { amount: '1' },
    tax_codes: distinct([tax(p + i * 13), tax(p * 3 + i)]),
  })),
  ...(p % 4 === 0 ? { minimum_commitment: { amount_cents: 1000, tax_codes: distinct([tax(p * 5 + 1), tax(p)]) } } : {}),
});
const countPlan = (def) => {
  for (const c of def.tax_codes) bump(c, 'plans_count');
  for (const ch of def.charges) for (const c of ch.tax_codes) bump(c, 'charges_count');
  for (const c of def.minimum_commitment?.tax_codes ?? []) bump(c, 'commitments_count');
};

test('a page of taxes counts each listed tax as its own answer does, at scale', async () => {
  const metric = (await call('POST', '/api/v1/billable_metrics', { billable_metric: { code: 'm', name: 'M', aggregation_type: 'count_agg' } })).billable_metric.lago_id;
  for (let i = 0; i < TAXES; i++) {
    const code = tax(i);
    expected.set(code, zero());
    await call('POST', '/api/v1/taxes', { tax: { code, name: `Tax ${String(i).padStart(3, '0')}`, rate: '10', applied_to_organization: APPLIED.has(code) } });
  }

  // customers: most name two taxes, some none (the applied taxes count those); two deleted
  let untaxed = 0;
  const customerTaxes = [];
  for (let k = 0; k < CUSTOMERS; k++) {
    const codes = k % 8 === 0 ? [] : distinct([tax(k * 3), tax(k * 7 + 1)]);
    customerTaxes.push(codes);
    await call('POST', '/api/v1/customers', { customer: { external_id: `c${k}`, currency: 'EUR', tax_codes: codes } });
  }
  for (const k of [5, 8]) await call('DELETE', `/api/v1/customers/c${k}`);
  customerTaxes.forEach((codes, k) => {
    if (k === 5 || k === 8) return;
    if (codes.length === 0) untaxed++;
    for (const c of codes) bump(c, 'customers_count');
  });
  for (const c of APPLIED) bump(c, 'customers_count', untaxed);

  // add-ons, one deleted
  for (let k = 0; k < ADD_ONS; k++)
    await call('POST', '/api/v1/add_ons', { add_on: { code: `a${k}`, name: `A${k}`, amount_cents: 100, amount_currency: 'EUR', tax_codes: distinct([tax(k * 11), tax(k + 40)]) } });
  await call('DELETE', '/api/v1/add_ons/a3');
  for (let k = 0; k < ADD_ONS; k++) if (k !== 3) for (const c of distinct([tax(k * 11), tax(k + 40)])) bump(c, 'add_ons_count');

  // plans; subscriptions with overrides have their own copy of the plan (Lago's child plan),
  // counted again, and one without overrides is on the plan itself
  const defs = [];
  for (let p = 0; p < PLANS; p++) {
    defs.push(planDef(p, metric));
    await call('POST', '/api/v1/plans', { plan: defs[p] });
  }
  const overridden = [0, 4, 9, 10, 11, 120, 299];
  for (const [n, p] of overridden.entries())
    await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: `c${n + 10}`, plan_code: `p${p}`, external_id: `s${n}`, plan_overrides: { amount_cents: 50 } } });
  await call('POST', '/api/v1/subscriptions', { subscription: { external_customer_id: 'c30', plan_code: 'p1', external_id: 'plain' } });
  // a deleted plan is not counted, nor its subscriptions' own plans (p9 and p10 have one)
  const deleted = new Set([9, 10, 77]);
  for (const p of deleted) await call('DELETE', `/api/v1/plans/p${p}`);
  for (let p = 0; p < PLANS; p++) if (!deleted.has(p)) countPlan(defs[p]);
  for (const p of overridden) if (!deleted.has(p)) countPlan(defs[p]);

  const want = (code) => ({ code, ...expected.get(code) });
  const got = (x) => ({ code: x.code, add_ons_count: x.add_ons_count, customers_count: x.customers_count, plans_count: x.plans_count, charges_count: x.charges_count, commitments_count: x.commitments_count });
  // the whole list on one page (by name: Tax 000 .. Tax 099)
  const all = await call('GET', `/api/v1/taxes?per_page=${TAXES}`);
  assert.equal(all.taxes.length, TAXES);
  assert.deepEqual(all.taxes.map(got), Array.from({ length: TAXES }, (_, i) => want(tax(i))));
  // the counts are not all alike: the check above would not pass by accident
  assert.ok(new Set(all.taxes.map((x) => x.charges_count)).size > 5);
  assert.ok(all.taxes.every((x) => x.plans_count > 0 && x.charges_count > 0));
  // pages of another size count the same, each tax on its page
  for (let page = 1; page <= 3; page++) {
    const listed = (await call('GET', `/api/v1/taxes?per_page=37&page=${page}`)).taxes;
    assert.deepEqual(listed.map(got), Array.from({ length: Math.min(37, TAXES - (page - 1) * 37) }, (_, i) => want(tax((page - 1) * 37 + i))));
  }
  // one tax's answer is the same count as its line in the list
  for (const i of [0, 1, 13, 57, 98]) assert.deepEqual(got((await call('GET', `/api/v1/taxes/${tax(i)}`)).tax), want(tax(i)));
});
