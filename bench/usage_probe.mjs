// Measures GET /customers/{id}/current_usage latency while something else loads tallyd:
// sequential requests for random customers c0..c999 for SECONDS seconds, then p50/p99/max.
//   node bench/usage_probe.mjs URL KEY [SECONDS]
const [url, key, seconds = '8'] = process.argv.slice(2);
const until = Date.now() + Number(seconds) * 1000;
const times = [];
let failures = 0;
while (Date.now() < until) {
  const c = Math.floor(Math.random() * 1000);
  const t0 = process.hrtime.bigint();
  const r = await fetch(`${url}/api/v1/customers/c${c}/current_usage?external_subscription_id=s${c}`, { headers: { Authorization: `Bearer ${key}` } });
  await r.arrayBuffer();
  times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  if (r.status !== 200) failures++;
}
times.sort((a, b) => a - b);
const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))].toFixed(2);
console.log(`current usage while ingesting: ${times.length} reads, p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms, ${failures} failures`);
