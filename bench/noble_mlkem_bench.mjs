#!/usr/bin/env node
// ML-KEM-768 in @noble/post-quantum (pure JavaScript), timed like bench/crypto_bench so that
// bench/run-crypto can print both in one table from one session on one machine.
//
//   node bench/noble_mlkem_bench.mjs [--json]
//
// Each operation is calibrated to ~0.3 s per repetition, repeated 5 times after a warm-up (JIT),
// and reported as the median µs/op. "from bytes" variants parse the key on every call (noble's
// plain API); the others use noble's prepare(), which caches the parsed key like our
// EncapsulationKey/DecapsulationKey objects do.

import { readFileSync } from 'node:fs';

const packageDir = new URL('../tests/node_modules/@noble/post-quantum/', import.meta.url);
let ml_kem768;
let version;
try {
  version = JSON.parse(readFileSync(new URL('package.json', packageDir), 'utf8')).version;
  ({ ml_kem768 } = await import(new URL('ml-kem.js', packageDir)));
} catch (e) {
  console.error(`noble_mlkem_bench: @noble/post-quantum is not installed in tests/node_modules (${e.code ?? e.message}): run scripts/setup`);
  process.exit(1);
}

const REPS = 5;
const TARGET_NS = 300e6;

function timeLoop(fn, iterations) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  return Number(process.hrtime.bigint() - start);
}

function measure(fn) {
  // Warm-up doubles as calibration: grow until a batch takes >= 50 ms.
  let iterations = 1;
  let ns = timeLoop(fn, iterations);
  while (ns < 50e6) {
    iterations *= 2;
    ns = timeLoop(fn, iterations);
  }
  iterations = Math.max(1, Math.round((iterations * TARGET_NS) / ns));
  const perOp = [];
  for (let r = 0; r < REPS; r++) perOp.push(timeLoop(fn, iterations) / iterations / 1000);
  perOp.sort((a, b) => a - b);
  return { us: perOp[Math.floor(REPS / 2)], min: perOp[0], max: perOp[REPS - 1], iterations };
}

const seed = crypto.getRandomValues(new Uint8Array(64));
const { publicKey, secretKey } = ml_kem768.keygen(seed);
const prepared = ml_kem768.prepare(publicKey);
const { cipherText, sharedSecret } = ml_kem768.encapsulate(publicKey);
// Benchmark working code only: a broken round trip would make every figure meaningless.
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
if (!same(ml_kem768.decapsulate(cipherText, secretKey), sharedSecret) ||
    !same(prepared.decapsulate(cipherText, secretKey), sharedSecret)) {
  console.error('noble_mlkem_bench: round trip failed');
  process.exit(1);
}

// Per-call inputs rotate through a pool of distinct keys, as in crypto_bench: matrix expansion
// rejection-samples on public data, and a single repeated key would train the branch predictor.
const POOL = 64;
const seeds = Array.from({ length: POOL }, () => crypto.getRandomValues(new Uint8Array(64)));
const pool = seeds.map((s) => {
  const kp = ml_kem768.keygen(s);
  return { ...kp, ct: ml_kem768.encapsulate(kp.publicKey).cipherText };
});
let n = 0;
const next = () => n++ % POOL;

let sink = 0;  // keeps results observable so the JIT cannot drop the calls
const ops = {
  keygen: () => { sink ^= ml_kem768.keygen().publicKey[0]; },
  keygen_from_seed: () => { sink ^= ml_kem768.keygen(seeds[next()]).publicKey[0]; },
  ek_parse: () => { sink ^= ml_kem768.prepare(pool[next()].publicKey) ? 1 : 0; },
  encaps: () => { sink ^= prepared.encapsulate().cipherText[0]; },
  encaps_from_bytes: () => { sink ^= ml_kem768.encapsulate(pool[next()].publicKey).cipherText[0]; },
  decaps: () => { sink ^= prepared.decapsulate(cipherText, secretKey)[0]; },
  decaps_from_bytes: () => { const k = pool[next()]; sink ^= ml_kem768.decapsulate(k.ct, k.secretKey)[0]; },
};

const results = {};
for (const [name, fn] of Object.entries(ops)) results[name] = measure(fn);

if (process.argv.includes('--json')) {
  console.log(JSON.stringify({ implementation: `@noble/post-quantum ${version}`, node: process.version, sink, results }));
} else {
  console.log(`@noble/post-quantum ${version} ML-KEM-768 on Node ${process.version} (median of ${REPS})`);
  for (const [name, r] of Object.entries(results)) {
    console.log(`${name.padEnd(20)} ${r.us.toFixed(1).padStart(9)} µs/op   (min ${r.min.toFixed(1)}, max ${r.max.toFixed(1)})`);
  }
}
