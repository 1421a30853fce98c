// Measures the first GET /customers/{id}/current_usage of each subscription s0..s999: the
// writer answers it (and publishes the subscription's view, which later reads use; those are
// measured at a fixed rate by bench_open_loop, bench/open_loop.c). Prints p50/p99/max.
//   node bench/usage_probe.mjs URL KEY
const [url, key] = process.argv.slice(2);
const times = [];
let failures = 0;
for (let c = 0; c < 1000; c++) {
  const t0 = process.hrtime.bigint();
  const r = await fetch(`${url}/api/v1/customers/c${c}/current_usage?external_subscription_id=s${c}`, { headers: { Authorization: `Bearer ${key}` } });
  await r.arrayBuffer();
  times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  if (r.status !== 200) failures++;
}
times.sort((a, b) => a - b);
const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))].toFixed(2);
console.log(`current usage, first read of each subscription (the writer answers): ${times.length} reads, p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms, ${failures} failures`);
