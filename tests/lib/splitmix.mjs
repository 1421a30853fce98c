// splitmix64: the same numbers from the same seed, in any JavaScript engine (the seeded tests'
// one source of randomness, so that a seed replays a run).
export function rng(seed) {
  let s = seed & 0xffffffffffffffffn;
  const next = () => {
    s = (s + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
    return z ^ (z >> 31n);
  };
  const below = (n) => Number(next() % BigInt(n));
  return { below, pick: (list) => list[below(list.length)], chance: (p) => below(1000) < p * 1000 };
}
