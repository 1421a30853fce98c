// Measures GET /customers/{id}/current_usage latency while something else loads tallyd.
//   node bench/usage_probe.mjs URL KEY first      reads s0..s999 once each, then p50/p99/max
//   node bench/usage_probe.mjs URL KEY SECONDS    sequential reads of random subscriptions
// The writer answers a subscription's first read, which publishes its view; later reads are
// answered from the views (renewed after every commit), as a dashboard polling usage is.
const [url, key, mode = '8'] = process.argv.slice(2);
const read = async (c) => {
  const t0 = process.hrtime.bigint();
  const r = await fetch(`${url}/api/v1/customers/c${c}/current_usage?external_subscription_id=s${c}`, { headers: { Authorization: `Bearer ${key}` } });
  await r.arrayBuffer();
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, ok: r.status === 200 };
};
const times = [];
let failures = 0;
const measure = async (c) => {
  const r = await read(c);
  times.push(r.ms);
  if (!r.ok) failures++;
};
let label;
if (mode === 'first') {
  label = 'current usage, first read of each subscription (the writer answers)';
  for (let c = 0; c < 1000; c++) await measure(c);
} else {
  label = 'current usage while ingesting (published views)';
  const until = Date.now() + Number(mode) * 1000;
  while (Date.now() < until) await measure(Math.floor(Math.random() * 1000));
}
times.sort((a, b) => a - b);
const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))].toFixed(2);
console.log(`${label}: ${times.length} reads, p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms, ${failures} failures`);
