// HKDF-SHA256, the three AEADs, Keccak-256 / SHA3-256 and gzip: our code (crypto_oracle) against
// Node's crypto and zlib, and @noble/ciphers / @noble/hashes where Node lacks the algorithm.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import zlib from 'node:zlib';

import {
  Oracle, xchacha20poly1305, keccak_256, sha3_256, hex, unhex, rand, randomInt, flipBit, ok, throws, repro,
} from './support.mjs';

const oracle = new Oracle();

function expectNoMismatch(mismatches, what) {
  assert.equal(mismatches.length, 0,
    `${mismatches.length} ${what} mismatch(es); first: ${mismatches[0] && repro(mismatches[0])}`);
}

// A length distribution that always includes the edges (0, 1) and otherwise spreads over small,
// block-boundary and large sizes.
function randomLength(i, max) {
  if (i === 0) return 0;
  if (i === 1) return 1;
  const pick = i % 4;
  if (pick === 0) return randomInt(0, 64);
  if (pick === 1) return randomInt(0, 1025);
  if (pick === 2) return 64 * randomInt(1, 17) + randomInt(-1, 2);  // around block boundaries
  return randomInt(0, max + 1);
}

// ---------------------------------------------------------------------------------------------
// HKDF-SHA256 vs Node's crypto.hkdfSync

const HKDF_CASES = 500;

test(`HKDF-SHA256 equals Node's hkdfSync (${HKDF_CASES} cases, empty salt/ikm/info included)`, async () => {
  const cases = Array.from({ length: HKDF_CASES }, (_, i) => ({
    ikm: rand(i % 7 === 0 ? 0 : randomInt(1, 100)),
    salt: rand(i % 5 === 0 ? 0 : randomInt(1, 100)),
    info: rand(i % 3 === 0 ? 0 : randomInt(1, 100)),
    // 32 is what the protocols use; the rest covers every block count up to the RFC maximum.
    length: i % 2 ? 32 : ([1, 31, 33, 64, 8160][(i / 2) % 8] ?? randomInt(1, 8161)),
  }));
  const replies = await oracle.batch(cases.map((c) => ({ op: 'hkdf_sha256', ikm: hex(c.ikm), salt: hex(c.salt), info: hex(c.info), length: c.length })));
  const mismatches = [];
  replies.forEach((reply, i) => {
    const c = cases[i];
    const node = hex(new Uint8Array(crypto.hkdfSync('sha256', c.ikm, c.salt, c.info, c.length)));
    if (ok(reply, c).okm !== node) mismatches.push({ ikm: hex(c.ikm), salt: hex(c.salt), info: hex(c.info), length: c.length });
  });
  expectNoMismatch(mismatches, 'HKDF');
});

test('HKDF-SHA256 refuses more than 255 * 32 bytes, as Node does', async () => {
  const reply = await oracle.call({ op: 'hkdf_sha256', ikm: hex(rand(32)), salt: '', info: '', length: 8161 });
  assert.ok(reply.error, 'ours produced 8161 bytes');
  assert.ok(throws(() => crypto.hkdfSync('sha256', rand(32), new Uint8Array(0), new Uint8Array(0), 8161)));
});

// ---------------------------------------------------------------------------------------------
// AEADs: ChaCha20-Poly1305 and AES-GCM vs Node (OpenSSL), XChaCha20-Poly1305 vs @noble/ciphers

function nodeSeal(cipher, key, nonce, pt, aad) {
  const c = crypto.createCipheriv(cipher, key, nonce, { authTagLength: 16 });
  c.setAAD(aad, { plaintextLength: pt.length });
  return new Uint8Array(Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]));
}
function nodeOpen(cipher, key, nonce, ct, aad) {
  const d = crypto.createDecipheriv(cipher, key, nonce, { authTagLength: 16 });
  d.setAuthTag(ct.subarray(ct.length - 16));
  d.setAAD(aad, { plaintextLength: ct.length - 16 });
  return new Uint8Array(Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]));
}

const AEADS = [
  {
    alg: 'chacha20_poly1305',
    key: () => 32,
    nonce: () => 12,
    seal: (k, n, pt, aad) => nodeSeal('chacha20-poly1305', k, n, pt, aad),
    open: (k, n, ct, aad) => nodeOpen('chacha20-poly1305', k, n, ct, aad),
  },
  {
    alg: 'aes_gcm',
    // The protocols use 32-byte keys and 12-byte nonces; the header also promises 16/24-byte keys
    // and any non-empty nonce (GHASH-derived IV), which OpenSSL covers too.
    key: (i) => [32, 32, 16, 24][i % 4],
    nonce: (i) => (i % 3 === 2 ? randomInt(1, 65) : 12),
    seal: (k, n, pt, aad) => nodeSeal(`aes-${k.length * 8}-gcm`, k, n, pt, aad),
    open: (k, n, ct, aad) => nodeOpen(`aes-${k.length * 8}-gcm`, k, n, ct, aad),
  },
  {
    alg: 'xchacha20_poly1305',
    key: () => 32,
    nonce: () => 24,
    seal: (k, n, pt, aad) => xchacha20poly1305(k, n, aad).encrypt(pt),
    open: (k, n, ct, aad) => xchacha20poly1305(k, n, aad).decrypt(ct),
  },
];

const AEAD_CASES = 300;

for (const aead of AEADS) {
  test(`${aead.alg}: seal is byte-identical to the independent one and each opens the other's (${AEAD_CASES} cases)`, async () => {
    const cases = Array.from({ length: AEAD_CASES }, (_, i) => ({
      key: rand(aead.key(i)),
      nonce: rand(aead.nonce(i)),
      pt: rand(randomLength(i, 70000)),
      aad: rand(i % 3 === 0 ? 0 : randomInt(1, 80)),
    }));
    const replies = await oracle.batch(cases.flatMap((c) => {
      const theirs = aead.seal(c.key, c.nonce, c.pt, c.aad);
      c.theirs = theirs;
      return [
        { op: 'aead.seal', alg: aead.alg, key: hex(c.key), nonce: hex(c.nonce), pt: hex(c.pt), aad: hex(c.aad) },
        { op: 'aead.open', alg: aead.alg, key: hex(c.key), nonce: hex(c.nonce), ct: hex(theirs), aad: hex(c.aad) },
      ];
    }));
    const mismatches = [];
    cases.forEach((c, i) => {
      const sealed = ok(replies[2 * i], { alg: aead.alg, ptLength: c.pt.length }).ct;
      const opened = ok(replies[2 * i + 1], { alg: aead.alg, ptLength: c.pt.length }).pt;
      const theirsOpenOurs = hex(aead.open(c.key, c.nonce, unhex(sealed), c.aad));
      if (sealed !== hex(c.theirs) || opened !== hex(c.pt) || theirsOpenOurs !== hex(c.pt)) {
        mismatches.push({ alg: aead.alg, key: hex(c.key), nonce: hex(c.nonce), aad: hex(c.aad), pt: hex(c.pt).slice(0, 200), ptLength: c.pt.length, sealEqual: sealed === hex(c.theirs), openedEqual: opened === hex(c.pt) });
      }
    });
    expectNoMismatch(mismatches, aead.alg);
  });

  test(`${aead.alg}: tampering is rejected by both (ciphertext, tag, aad, nonce, key, truncation)`, async () => {
    const tampers = [
      ['ciphertext bit', (c) => ({ ...c, ct: flipBit(c.ct, 0, c.ct.length - 16) }), (c) => c.pt.length > 0],
      ['tag bit', (c) => ({ ...c, ct: flipBit(c.ct, c.ct.length - 16) })],
      ['aad bit', (c) => ({ ...c, aad: flipBit(c.aad) }), (c) => c.aad.length > 0],
      ['aad appended', (c) => ({ ...c, aad: new Uint8Array([...c.aad, 0]) })],
      ['nonce bit', (c) => ({ ...c, nonce: flipBit(c.nonce) })],
      ['key bit', (c) => ({ ...c, key: flipBit(c.key) })],
      ['truncated', (c) => ({ ...c, ct: c.ct.subarray(0, c.ct.length - 1) })],
      ['byte appended', (c) => ({ ...c, ct: new Uint8Array([...c.ct, 0]) })],
    ];
    const cases = [];
    for (let i = 0; i < 200; i++) {
      const key = rand(aead.key(i));
      const nonce = rand(aead.nonce(i));
      const pt = rand(randomLength(i, 4096));
      const aad = rand(i % 2 ? randomInt(1, 40) : 0);
      const base = { key, nonce, pt, aad, ct: aead.seal(key, nonce, pt, aad) };
      const [kind, tamper, applies = () => true] = tampers[i % tampers.length];
      if (applies(base)) cases.push({ kind, ...tamper(base) });
    }
    const replies = await oracle.batch(cases.map((c) => ({ op: 'aead.open', alg: aead.alg, key: hex(c.key), nonce: hex(c.nonce), ct: hex(c.ct), aad: hex(c.aad) })));
    const mismatches = [];
    replies.forEach((reply, i) => {
      const c = cases[i];
      const theirsRejects = throws(() => aead.open(c.key, c.nonce, c.ct, c.aad));
      if (reply.error !== 'authentication_failed' || reply.pt !== undefined || !theirsRejects) {
        mismatches.push({ kind: c.kind, key: hex(c.key), nonce: hex(c.nonce), aad: hex(c.aad), ct: hex(c.ct).slice(0, 200), ours: reply.error ?? 'accepted', theirsRejects });
      }
    });
    expectNoMismatch(mismatches, `${aead.alg} tamper`);
    assert.ok(cases.length >= 150);
    // Shorter than a tag, and wrong key lengths: errors on both sides, never a crash.
    const n = aead.nonce(0);
    const odd = await oracle.batch([
      { op: 'aead.open', alg: aead.alg, key: hex(rand(aead.key(0))), nonce: hex(rand(n)), ct: hex(rand(15)) },
      { op: 'aead.seal', alg: aead.alg, key: hex(rand(31)), nonce: hex(rand(n)), pt: '00' },
      { op: 'aead.seal', alg: aead.alg, key: hex(rand(33)), nonce: hex(rand(n)), pt: '00' },
    ]);
    assert.ok(odd[0].error, 'ours opened a 15-byte ciphertext');
    assert.equal(odd[1].error, 'invalid_length');
    assert.equal(odd[2].error, 'invalid_length');
    assert.ok(throws(() => aead.seal(rand(31), rand(n), rand(1), new Uint8Array(0))));
  });
}

test('AEAD nonce lengths the algorithm does not take are refused', async () => {
  const replies = await oracle.batch([
    { op: 'aead.seal', alg: 'chacha20_poly1305', key: hex(rand(32)), nonce: hex(rand(11)), pt: '00' },
    { op: 'aead.seal', alg: 'chacha20_poly1305', key: hex(rand(32)), nonce: hex(rand(24)), pt: '00' },
    { op: 'aead.seal', alg: 'xchacha20_poly1305', key: hex(rand(32)), nonce: hex(rand(12)), pt: '00' },
    { op: 'aead.seal', alg: 'aes_gcm', key: hex(rand(32)), nonce: '', pt: '00' },
  ]);
  for (const reply of replies) assert.equal(reply.error, 'invalid_length', JSON.stringify(reply));
  assert.ok(throws(() => nodeSeal('chacha20-poly1305', rand(32), rand(11), rand(1), new Uint8Array(0))));
  assert.ok(throws(() => xchacha20poly1305(rand(32), rand(12))));
});

// ---------------------------------------------------------------------------------------------
// Keccak-256 and SHA3-256 vs @noble/hashes (and Node's sha3-256)

test('Keccak-256 and SHA3-256 equal noble (and Node for SHA3) across rate boundaries', async () => {
  // Rate is 136 bytes for both: lengths around 1 and 2 blocks exercise the padding edge cases
  // (the 0x01 vs 0x06 domain byte landing in the same byte as the final 0x80).
  const lengths = [0, 1, 55, 56, 134, 135, 136, 137, 271, 272, 273, 1000, 4096];
  for (let i = 0; i < 300; i++) lengths.push(randomInt(0, 2000));
  const inputs = lengths.map((n) => rand(n));
  const replies = await oracle.batch(inputs.flatMap((d) => [{ op: 'keccak256', data: hex(d) }, { op: 'sha3_256', data: hex(d) }]));
  const mismatches = [];
  inputs.forEach((d, i) => {
    const k = ok(replies[2 * i]).digest;
    const s = ok(replies[2 * i + 1]).digest;
    const nodeSha3 = crypto.createHash('sha3-256').update(d).digest('hex');
    if (k !== hex(keccak_256(d)) || s !== hex(sha3_256(d)) || s !== nodeSha3) {
      mismatches.push({ data: hex(d).slice(0, 400), length: d.length, keccakEqual: k === hex(keccak_256(d)), sha3Equal: s === hex(sha3_256(d)) });
    }
  });
  expectNoMismatch(mismatches, 'hash');
  // The two must differ (only the padding byte differs): a mix-up would pass neither comparison,
  // but this names the mistake directly.
  assert.notEqual(ok(replies[0]).digest, ok(replies[1]).digest);
});

// ---------------------------------------------------------------------------------------------
// gzip vs Node's zlib

// Text-like data compresses like real prompts; random bytes exercise stored blocks.
function sampleData(i) {
  const n = randomLength(i, 300000);
  if (i % 3 === 0) return rand(n);
  const words = ['the', 'model', 'returns', 'a', 'stream', 'of', 'tokens', '{"role":"user"}', 'function', '\n', 'const x = 42;', 'é', '日本'];
  let s = '';
  while (s.length < n) s += words[randomInt(0, words.length)] + ' ';
  return new Uint8Array(Buffer.from(s).subarray(0, n));
}

const GZIP_CASES = 120;

test(`gzip: ours -> zlib.gunzipSync and zlib.gzipSync -> ours, all levels, random lengths (${GZIP_CASES} cases)`, async () => {
  const cases = Array.from({ length: GZIP_CASES }, (_, i) => ({ data: sampleData(i), level: 1 + (i % 9) }));
  const replies = await oracle.batch(cases.flatMap((c) => {
    c.theirs = new Uint8Array(zlib.gzipSync(c.data, { level: c.level }));
    return [
      { op: 'gzip.compress', data: hex(c.data), level: c.level },
      { op: 'gzip.decompress', gz: hex(c.theirs), max: c.data.length },
    ];
  }));
  const mismatches = [];
  cases.forEach((c, i) => {
    const gz = unhex(ok(replies[2 * i], { level: c.level, length: c.data.length }).gz);
    const ours = ok(replies[2 * i + 1], { level: c.level, length: c.data.length }).data;
    let viaZlib = null;
    try { viaZlib = hex(zlib.gunzipSync(gz)); } catch (e) { viaZlib = `zlib error: ${e.message}`; }
    const isGzip = gz[0] === 0x1f && gz[1] === 0x8b && gz[2] === 8;
    if (!isGzip || viaZlib !== hex(c.data) || ours !== hex(c.data)) {
      mismatches.push({ level: c.level, length: c.data.length, isGzip, zlibReadsOurs: viaZlib === hex(c.data), oursReadsZlib: ours === hex(c.data) });
    }
  });
  expectNoMismatch(mismatches, 'gzip');
});

test('gzip: concatenated members decompress like zlib; output limits are exact', async () => {
  const a = sampleData(5);
  const b = sampleData(6);
  const joined = new Uint8Array([...zlib.gzipSync(a), ...zlib.gzipSync(b)]);
  const both = new Uint8Array([...a, ...b]);
  assert.equal(hex(zlib.gunzipSync(joined)), hex(both));  // the independent reading
  const n = both.length;
  const replies = await oracle.batch([
    { op: 'gzip.decompress', gz: hex(joined), max: n },
    { op: 'gzip.decompress', gz: hex(joined), max: n - 1 },
    { op: 'gzip.decompress', gz: hex(zlib.gzipSync(new Uint8Array(0))), max: 0 },
    // A 1 MiB run of zeros is ~1 KiB of gzip: the bomb shape the limit exists for.
    { op: 'gzip.decompress', gz: hex(zlib.gzipSync(new Uint8Array(1 << 20))), max: 1 << 16 },
  ]);
  assert.equal(ok(replies[0]).data, hex(both));
  assert.equal(replies[1].error, 'limit_exceeded');
  assert.equal(ok(replies[2]).data, '');
  assert.equal(replies[3].error, 'limit_exceeded');
});

test('gzip: corrupted trailers, truncation and corrupted bodies are rejected by both', async () => {
  const cases = [];
  for (let i = 0; i < 150; i++) {
    const data = sampleData(i + 2);
    const gz = new Uint8Array(zlib.gzipSync(data));
    const kind = i % 3;
    // Header bytes (first 10) are left alone: MTIME/OS changes are legitimately ignored by both.
    if (kind === 0) cases.push({ kind: 'trailer bit (CRC32/ISIZE)', data, gz: flipBit(gz, gz.length - 8) });
    if (kind === 1) cases.push({ kind: 'truncated', data, gz: gz.subarray(0, randomInt(1, gz.length)) });
    if (kind === 2) cases.push({ kind: 'body bit', data, gz: flipBit(gz, 10, gz.length - 8) });
  }
  const replies = await oracle.batch(cases.map((c) => ({ op: 'gzip.decompress', gz: hex(c.gz), max: c.data.length + 1024 })));
  const mismatches = [];
  let rejected = 0;
  replies.forEach((reply, i) => {
    const c = cases[i];
    let theirs;
    try { theirs = hex(zlib.gunzipSync(c.gz)); } catch { theirs = 'rejected'; }
    const ours = reply.error ? 'rejected' : reply.data;
    if (reply.error && !['malformed', 'limit_exceeded'].includes(reply.error)) mismatches.push({ kind: c.kind, gz: hex(c.gz).slice(0, 200), ours: reply.error });
    // Agreement is required; a body flip that still inflates to valid data with a matching CRC
    // would have to be accepted by both.
    if (ours !== theirs) mismatches.push({ kind: c.kind, gz: hex(c.gz).slice(0, 400), gzLength: c.gz.length, ours: reply.error ?? 'accepted', theirs: theirs === 'rejected' ? theirs : 'accepted' });
    if (ours === 'rejected') rejected += 1;
  });
  expectNoMismatch(mismatches, 'gzip corruption');
  assert.ok(rejected >= 100, `only ${rejected} of ${cases.length} corruptions rejected`);
});

test('gzip: trailing garbage after the last member is refused (header contract)', async () => {
  const data = sampleData(7);
  const gz = new Uint8Array([...zlib.gzipSync(data), 0x00, 0x41]);
  const reply = await oracle.call({ op: 'gzip.decompress', gz: hex(gz), max: data.length });
  assert.equal(reply.error, 'malformed');
  const bad = await oracle.batch([
    { op: 'gzip.decompress', gz: '', max: 10 },
    { op: 'gzip.decompress', gz: hex(rand(64)), max: 1000 },
  ]);
  for (const r of bad) assert.equal(r.error, 'malformed', JSON.stringify(r));
});

test('crypto_oracle shuts down cleanly', async () => {
  await oracle.close();
});
