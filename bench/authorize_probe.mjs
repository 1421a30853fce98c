// Authorization (hold) latency from a closed-loop client: CONNECTIONS loops each POST a hold
// for a random subscription s0..s999 and wait for its answer, for SECONDS. Prints the count and
// the latency distribution (its mean agrees with the count, which wrk's did not under load).
//   node bench/authorize_probe.mjs URL KEY [SECONDS] [CONNECTIONS]
const [url, key, seconds = '8', conns = '2'] = process.argv.slice(2);
const times = [];
const end = Date.now() + Number(seconds) * 1000;
await Promise.all(Array.from({ length: Number(conns) }, async () => {
  while (Date.now() < end) {
    const n = Math.floor(Math.random() * 1000);
    const t0 = process.hrtime.bigint();
    const r = await fetch(`${url}/api/v1/authorizations`, { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: `{"authorization":{"external_subscription_id":"s${n}","code":"tokens","properties":{"tokens":100},"expires_in":60}}` });
    await r.arrayBuffer();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
}));
times.sort((a, b) => a - b);
const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))].toFixed(2);
const mean = times.reduce((a, b) => a + b, 0) / times.length;
console.log(`authorizations: ${times.length} in ${seconds} s (${Math.round(times.length / Number(seconds))}/s) over ${conns} connections, mean ${mean.toFixed(2)} ms, p50 ${at(0.5)} ms, p90 ${at(0.9)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms`);
