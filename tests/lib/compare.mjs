// Comparing two large reads: each flattened to its paths ("wallets.0.wallet.balance_cents"), so
// that a failure names the paths that differ, with both values, rather than two whole objects.
export function flat(v, path = '', out = {}) {
  if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) flat(x, path ? `${path}.${k}` : k, out);
    if (Object.keys(v).length === 0) out[path] = JSON.stringify(v);
  } else out[path] = v;
  return out;
}

// The paths where `got` differs from `want`, each as "path: got, not want".
export function differences(want, got) {
  const a = flat(want), b = flat(got);
  return [...new Set([...Object.keys(a), ...Object.keys(b)])]
    .filter((k) => a[k] !== b[k]).map((k) => `${k}: ${JSON.stringify(b[k])}, not ${JSON.stringify(a[k])}`);
}
