// An independent implementation of the field-level E2EE families of Venice, NEAR AI and Phala's
// dstack vllm-proxy, written from ../shared/specs/venice-protocol.md and
// ../shared/specs/near-phala-protocol.md (not from the C++ code):
//
//   family  algo     version  scheme            key agreement → KDF → AEAD, envelope (hex)
//   dstack  ecdsa    1, 2     ecdsa-aesgcm      secp256k1 ECDH X → HKDF "ecdsa_encryption" → AES-256-GCM
//                                               pub65 ‖ iv12 ‖ ct ‖ tag16                       (§4.1)
//   dstack  ed25519  1, 2     x25519-aesgcm     X25519 (Ed25519 keys converted) → HKDF "ed25519_encryption"
//                                               → AES-256-GCM; eph32 ‖ iv12 ‖ ct ‖ tag16          (§4.2)
//   near    ecdsa    -        ecdsa-aesgcm      as dstack ecdsa                                  (§10.2)
//   near    ed25519  1        nacl-box          X25519 → HSalsa20 → XSalsa20-Poly1305 (tag first), or
//                                               X25519 → HChaCha20 → XChaCha20-Poly1305 IETF (tag last)
//                                               eph32 ‖ nonce24 ‖ box                            (§10.2)
//   near    ed25519  2        x25519-xchacha    X25519 → HKDF "ed25519_encryption" → XChaCha20-Poly1305 IETF
//                                               eph32 ‖ nonce24 ‖ ct ‖ tag16                     (§10.2)
//   venice  ecdsa    -        ecdsa-aesgcm      as dstack ecdsa, no AAD                          (Venice §4)
//
// dstack v2 binds every field with the AAD strings of §8. Primitives: secp256k1, Ed25519 and X25519
// from @noble/curves, HSalsa20/HChaCha20/XSalsa20-Poly1305/XChaCha20-Poly1305 from @noble/ciphers,
// Keccak-256 from @noble/hashes, HKDF/AES-GCM/SHA from Node's crypto (OpenSSL).
//
// Client side: KeyPair, FieldClient (headers, request encryption, response/stream decryption, chat()),
// attestation fetch + verification for dstack (§2), NEAR (§10.3) and Venice (Venice §2).
// Server side building blocks (used by fake_field_providers.mjs): field walkers, seal/open, AAD,
// header parsing helpers, the synthetic TDX quote.

import './deps.mjs'; // pins checked before the noble packages are resolved
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { request } from './http.mjs';
import { lines } from './chutes_peer.mjs';

const { secp256k1 } = await import('@noble/curves/secp256k1.js');
const { ed25519, x25519 } = await import('@noble/curves/ed25519.js');
const { hsalsa, xsalsa20poly1305 } = await import('@noble/ciphers/salsa.js');
const { hchacha, xchacha20poly1305 } = await import('@noble/ciphers/chacha.js');
const { keccak_256 } = await import('@noble/hashes/sha3.js');

export { secp256k1, ed25519, x25519 };

// ---------------------------------------------------------------------------------------------
// Errors and encodings

export class FieldPeerError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export const hex = (bytes) => Buffer.from(bytes).toString('hex');
export const randomHex = (n) => randomBytes(n).toString('hex');

// Strict hex: even length, [0-9a-fA-F] only (both cases accepted, §4.3).
export function isHex(text) {
  return typeof text === 'string' && text.length % 2 === 0 && /^[0-9a-fA-F]*$/.test(text);
}

export function unhex(text, what = 'value') {
  if (!isHex(text)) throw new FieldPeerError('not_hex', `${what} is not hex`);
  return Buffer.from(text, 'hex');
}

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });
export function utf8Strict(bytes) {
  try {
    return fatalUtf8.decode(bytes);
  } catch {
    throw new FieldPeerError('not_utf8', 'plaintext is not valid UTF-8');
  }
}

// Python's str() of a JSON value, as the AAD builder's `str(payload.get("model",""))` (§8).
export function pyStr(v) {
  if (v === undefined) return '';
  if (v === null) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return pyDumps(v);
}

// Python json.dumps(value) with its defaults: ", " and ": " separators, ensure_ascii (§6, R8).
export function pyDumps(value) {
  if (value === null || value === undefined) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'number') return Number.isFinite(value) ? JSON.stringify(value) : 'NaN';
  if (typeof value === 'string') return pyString(value);
  if (Array.isArray(value)) return value.length ? `[${value.map(pyDumps).join(', ')}]` : '[]';
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  return entries.length ? `{${entries.map(([k, v]) => `${pyString(k)}: ${pyDumps(v)}`).join(', ')}}` : '{}';
}

function pyString(s) {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x08) out += '\\b';
    else if (c === 0x0c) out += '\\f';
    else if (c < 0x20 || c > 0x7e) out += c === 0x7f ? s[i] : `\\u${c.toString(16).padStart(4, '0')}`;
    else out += s[i];
  }
  return `${out}"`;
}

// ---------------------------------------------------------------------------------------------
// Primitives

export const INFO = { ecdsa: 'ecdsa_encryption', ed25519: 'ed25519_encryption' };

// HKDF-SHA256, empty salt (= 32 zero bytes), L = 32 (§4.1, Venice §4.2).
export function hkdf32(ikm, info) {
  return Buffer.from(hkdfSync('sha256', Buffer.from(ikm), Buffer.alloc(0), Buffer.from(info, 'ascii'), 32));
}

// AES-256-GCM, 12-byte IV, 16-byte tag appended; aad optional (v1: none).
export function aesGcmSeal(key, iv, plaintext, aad) {
  const c = createCipheriv('aes-256-gcm', key, iv);
  if (aad !== undefined && aad !== null) c.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([ct, c.getAuthTag()]);
}

export function aesGcmOpen(key, iv, ctAndTag, aad) {
  const data = Buffer.from(ctAndTag);
  if (data.length < 16) throw new FieldPeerError('decryption_failed', 'AES-GCM input shorter than the tag');
  const d = createDecipheriv('aes-256-gcm', key, iv);
  if (aad !== undefined && aad !== null) d.setAAD(Buffer.from(aad));
  d.setAuthTag(data.subarray(data.length - 16));
  try {
    return Buffer.concat([d.update(data.subarray(0, data.length - 16)), d.final()]);
  } catch (err) {
    throw new FieldPeerError('decryption_failed', `AES-GCM decryption failed: ${err.message}`);
  }
}

// secp256k1 ------------------------------------------------------------------------------------

export function secpPublic(secret) {
  return Buffer.from(secp256k1.getPublicKey(Uint8Array.from(secret), false));
}

// Accepts 64 bytes (X‖Y, a 04 is prefixed) or 65 bytes starting 04, as bytes or hex (an optional
// 0x is stripped); returns the 65-byte point after checking it is on the curve.
export function normalizeSecpPublic(input, what = 'secp256k1 public key') {
  let bytes = input;
  if (typeof input === 'string') bytes = unhex(input.replace(/^0x/i, ''), what);
  bytes = Buffer.from(bytes);
  if (bytes.length === 64) bytes = Buffer.concat([Buffer.from([4]), bytes]);
  if (bytes.length !== 65 || bytes[0] !== 4) throw new FieldPeerError('bad_key', `${what} must be 64 bytes or 65 bytes starting 04, got ${bytes.length}`);
  try {
    secp256k1.Point.fromBytes(Uint8Array.from(bytes)).assertValidity();
  } catch (err) {
    throw new FieldPeerError('bad_key', `${what} is not a point on secp256k1: ${err.message}`);
  }
  return bytes;
}

// The X coordinate of d·Q, 32 bytes big-endian (§4.1, Venice §4.1).
export function ecdhX(secret, pub65) {
  const shared = secp256k1.getSharedSecret(Uint8Array.from(secret), Uint8Array.from(pub65), false);
  return Buffer.from(shared.subarray(1, 33));
}

// keccak256(X‖Y)[12..32] (§2, Venice §2.3 step 7).
export function ethAddress(pub) {
  const p = normalizeSecpPublic(pub);
  return Buffer.from(keccak_256(Uint8Array.from(p.subarray(1)))).subarray(12);
}

// EIP-55 checksum case ("web3 checksum case", §2).
export function checksumAddress(addr20) {
  const lower = hex(addr20);
  const h = hex(keccak_256(Buffer.from(lower, 'ascii')));
  let out = '0x';
  for (let i = 0; i < 40; i++) out += parseInt(h[i], 16) >= 8 ? lower[i].toUpperCase() : lower[i];
  return out;
}

// Ed25519 / X25519 -----------------------------------------------------------------------------

export const P25519 = 2n ** 255n - 19n;

function modPow(b, e, m) {
  let r = 1n;
  b %= m;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return r;
}

const leToBig = (bytes) => {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
  return v;
};
const bigToLe = (v, n = 32) => {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
};

// u = (1+y)·(1−y)^(p−2) mod p, y = LE with bit 255 cleared; y = 1 maps to 0; no point validation
// (§4.2). Written out with BigInt rather than taken from @noble (the tests compare both).
export function edPublicToX25519(edPub) {
  const b = Buffer.from(edPub);
  if (b.length !== 32) throw new FieldPeerError('bad_key', `Ed25519 public key must be 32 bytes, got ${b.length}`);
  const y = leToBig(b) & ((1n << 255n) - 1n);
  const one = 1n;
  const den = (((one - y) % P25519) + P25519) % P25519;
  if (den === 0n) return Buffer.alloc(32);
  const u = (((one + y) % P25519) * modPow(den, P25519 - 2n, P25519)) % P25519;
  return bigToLe(u);
}

// clamp(SHA-512(seed)[0:32]) (§4.2; libsodium crypto_sign_ed25519_sk_to_curve25519).
export function edSeedToX25519Secret(seed) {
  const h = createHash('sha512').update(Buffer.from(seed)).digest().subarray(0, 32);
  const s = Buffer.from(h);
  s[0] &= 248;
  s[31] &= 127;
  s[31] |= 64;
  return s;
}

export function x25519Public(secret) {
  return Buffer.from(x25519.getPublicKey(Uint8Array.from(secret)));
}

// Raw X25519; @noble refuses an all-zero result (low-order peer key) by throwing.
export function x25519Shared(secret, pub) {
  try {
    return Buffer.from(x25519.getSharedSecret(Uint8Array.from(secret), Uint8Array.from(pub)));
  } catch (err) {
    throw new FieldPeerError('bad_key', `X25519 failed (low-order or invalid public key): ${err.message}`);
  }
}

// NaCl box -------------------------------------------------------------------------------------

const SIGMA = (() => {
  const b = Buffer.from('expand 32-byte k', 'ascii');
  return Uint32Array.from([0, 1, 2, 3].map((i) => b.readUInt32LE(4 * i)));
})();
const words = (bytes) => {
  const b = Buffer.from(bytes);
  return Uint32Array.from({ length: b.length / 4 }, (_, i) => b.readUInt32LE(4 * i));
};
const unwords = (w) => {
  const out = Buffer.alloc(w.length * 4);
  w.forEach((x, i) => out.writeUInt32LE(x >>> 0, 4 * i));
  return out;
};

export function hsalsa20(key32, in16) {
  const out = new Uint32Array(8);
  hsalsa(SIGMA, words(key32), words(in16), out);
  return unwords(out);
}

export function hchacha20(key32, in16) {
  const out = new Uint32Array(8);
  hchacha(SIGMA, words(key32), words(in16), out);
  return unwords(out);
}

// crypto_box_beforenm: H(shared, 0^16) with HSalsa20 (libsodium/PyNaCl Box, RustCrypto SalsaBox)
// or HChaCha20 (RustCrypto ChaChaBox, what NIP encrypts with since 421e506).
export function boxKey(shared, cipher) {
  return cipher === 'salsa' ? hsalsa20(shared, Buffer.alloc(16)) : hchacha20(shared, Buffer.alloc(16));
}

// salsa: XSalsa20-Poly1305 secretbox, MAC (16) first then the body (libsodium "combined").
// chacha: XChaCha20-Poly1305 IETF AEAD (empty AAD), tag (16) last — RustCrypto ChaChaBox.
export function boxSeal(key, nonce24, plaintext, cipher) {
  if (cipher === 'salsa') return Buffer.from(xsalsa20poly1305(Uint8Array.from(key), Uint8Array.from(nonce24)).encrypt(Uint8Array.from(plaintext)));
  return Buffer.from(xchacha20poly1305(Uint8Array.from(key), Uint8Array.from(nonce24)).encrypt(Uint8Array.from(plaintext)));
}

export function boxOpen(key, nonce24, data, cipher) {
  try {
    if (cipher === 'salsa') return Buffer.from(xsalsa20poly1305(Uint8Array.from(key), Uint8Array.from(nonce24)).decrypt(Uint8Array.from(data)));
    return Buffer.from(xchacha20poly1305(Uint8Array.from(key), Uint8Array.from(nonce24)).decrypt(Uint8Array.from(data)));
  } catch (err) {
    throw new FieldPeerError('decryption_failed', `box (${cipher}) did not open: ${err.message}`);
  }
}

export function xchachaSeal(key, nonce24, plaintext, aad) {
  return Buffer.from(xchacha20poly1305(Uint8Array.from(key), Uint8Array.from(nonce24), aad ? Uint8Array.from(aad) : undefined).encrypt(Uint8Array.from(plaintext)));
}

export function xchachaOpen(key, nonce24, data, aad) {
  try {
    return Buffer.from(xchacha20poly1305(Uint8Array.from(key), Uint8Array.from(nonce24), aad ? Uint8Array.from(aad) : undefined).decrypt(Uint8Array.from(data)));
  } catch (err) {
    throw new FieldPeerError('decryption_failed', `XChaCha20-Poly1305 did not open: ${err.message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Envelopes (§1)

export const SCHEMES = {
  'ecdsa-aesgcm': { pubLen: 65, nonceLen: 12, min: 65 + 12 + 16, info: INFO.ecdsa },
  'x25519-aesgcm': { pubLen: 32, nonceLen: 12, min: 32 + 12 + 16, info: INFO.ed25519 },
  'nacl-box': { pubLen: 32, nonceLen: 24, min: 32 + 24 + 16 },
  'x25519-xchacha': { pubLen: 32, nonceLen: 24, min: 32 + 24 + 16, info: INFO.ed25519 },
};

// The scheme a negotiated connection uses (§1 table).
export function schemeFor({ family, algo, version = 1 }) {
  if (algo === 'ecdsa') return 'ecdsa-aesgcm';
  if (algo !== 'ed25519') throw new FieldPeerError('bad_algo', `unknown algo ${algo}`);
  if (family === 'dstack') return 'x25519-aesgcm';
  if (family === 'near') return Number(version) === 2 ? 'x25519-xchacha' : 'nacl-box';
  throw new FieldPeerError('bad_algo', `${family} has no ed25519 family`);
}

// A fresh ephemeral key for `scheme` ({secret, pub}); `secret` may be given (known answers).
export function ephemeralKey(scheme, secret) {
  if (scheme === 'ecdsa-aesgcm') {
    const s = secret ? Buffer.from(secret) : Buffer.from(secp256k1.utils.randomSecretKey());
    return { secret: s, pub: secpPublic(s) };
  }
  const s = secret ? Buffer.from(secret) : randomBytes(32);
  return { secret: s, pub: x25519Public(s) };
}

// Seals `plaintext` (string or bytes) to the recipient's encryption public key: for ecdsa-aesgcm a
// secp256k1 point (64/65 bytes), otherwise an X25519 public key (32 bytes; convert an Ed25519 key
// with edPublicToX25519 first). opts: aad (v2 string), ephemeral ({secret, pub} to reuse, or a
// secret), iv/nonce (bytes), boxCipher ('chacha' | 'salsa', nacl-box only; default 'chacha').
// Returns the envelope bytes; hex() it for the wire.
export function seal(scheme, recipientPub, plaintext, { aad, ephemeral, iv, boxCipher = 'chacha' } = {}) {
  const spec = SCHEMES[scheme];
  if (!spec) throw new FieldPeerError('bad_scheme', `unknown scheme ${scheme}`);
  const pt = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : Buffer.from(plaintext);
  const eph = ephemeral?.pub ? ephemeral : ephemeralKey(scheme, ephemeral);
  const n = iv ? Buffer.from(iv) : randomBytes(spec.nonceLen);
  if (n.length !== spec.nonceLen) throw new FieldPeerError('bad_nonce', `${scheme} needs a ${spec.nonceLen}-byte nonce`);
  const aadBytes = aad === undefined || aad === null ? undefined : Buffer.from(aad, 'utf8');
  let body;
  if (scheme === 'ecdsa-aesgcm') {
    const key = hkdf32(ecdhX(eph.secret, normalizeSecpPublic(recipientPub)), spec.info);
    body = aesGcmSeal(key, n, pt, aadBytes);
  } else if (scheme === 'x25519-aesgcm') {
    body = aesGcmSeal(hkdf32(x25519Shared(eph.secret, recipientPub), spec.info), n, pt, aadBytes);
  } else if (scheme === 'x25519-xchacha') {
    body = xchachaSeal(hkdf32(x25519Shared(eph.secret, recipientPub), spec.info), n, pt, aadBytes);
  } else {
    if (aadBytes) throw new FieldPeerError('bad_aad', 'NaCl box carries no AAD');
    body = boxSeal(boxKey(x25519Shared(eph.secret, recipientPub), boxCipher), n, pt, boxCipher);
  }
  return Buffer.concat([eph.pub, n, body]);
}

// Splits an envelope into its parts (no crypto): {pub, nonce, body}; throws 'too_short'.
export function splitEnvelope(scheme, envelope) {
  const spec = SCHEMES[scheme];
  const data = Buffer.from(envelope);
  if (data.length < spec.min) throw new FieldPeerError('too_short', `Encrypted payload is too short (${data.length} < ${spec.min} bytes)`);
  return { pub: data.subarray(0, spec.pubLen), nonce: data.subarray(spec.pubLen, spec.pubLen + spec.nonceLen), body: data.subarray(spec.pubLen + spec.nonceLen) };
}

// Opens an envelope with the recipient's encryption secret (secp256k1 scalar, or X25519 secret —
// edSeedToX25519Secret of an Ed25519 seed). opts: aad; boxCiphers: the order NaCl boxes are tried
// in (NIP: ChaCha first, then Salsa). Returns the plaintext bytes (not yet UTF-8 checked).
export function open(scheme, recipientSecret, envelope, { aad, boxCiphers = ['chacha', 'salsa'] } = {}) {
  const { pub, nonce, body } = splitEnvelope(scheme, envelope);
  const aadBytes = aad === undefined || aad === null ? undefined : Buffer.from(aad, 'utf8');
  if (scheme === 'ecdsa-aesgcm') {
    if (pub[0] !== 4) throw new FieldPeerError('bad_key', 'envelope public key is not uncompressed (04…)');
    const point = normalizeSecpPublic(pub, 'envelope public key');
    return aesGcmOpen(hkdf32(ecdhX(recipientSecret, point), SCHEMES[scheme].info), nonce, body, aadBytes);
  }
  const shared = x25519Shared(recipientSecret, pub);
  if (scheme === 'x25519-aesgcm') return aesGcmOpen(hkdf32(shared, SCHEMES[scheme].info), nonce, body, aadBytes);
  if (scheme === 'x25519-xchacha') return xchachaOpen(hkdf32(shared, SCHEMES[scheme].info), nonce, body, aadBytes);
  let last;
  for (const cipher of boxCiphers) {
    try {
      return boxOpen(boxKey(shared, cipher), nonce, body, cipher);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

// Which NaCl cipher opens a box (for assertions on what a server sent): 'chacha' | 'salsa' | null.
export function boxCipherOf(recipientSecret, envelope) {
  for (const cipher of ['chacha', 'salsa']) {
    try {
      open('nacl-box', recipientSecret, envelope, { boxCiphers: [cipher] });
      return cipher;
    } catch {
      // next
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// dstack v2 AAD (§8): UTF-8, unescaped, '|'-joined.

export function requestAad({ algo, model, m, c, nonce, ts }) {
  return `v2|req|algo=${algo}|model=${model}|m=${m}|c=${c}|n=${nonce}|ts=${ts}`;
}

export function responseAad({ algo, model, id, choice, field, nonce, ts }) {
  return `v2|resp|algo=${algo}|model=${model}|id=${id}|choice=${choice}|field=${field}|n=${nonce}|ts=${ts}`;
}

// The canonical decimal of Python int(text) (§3 step 9): surrounding whitespace, a sign, leading
// zeros and single '_' between digits are tolerated. Returns null when int() would raise.
export function pyIntCanonical(text) {
  if (typeof text !== 'string') return null;
  const t = text.trim();
  if (!/^[+-]?\d+(_\d+)*$/.test(t)) return null;
  const v = BigInt(t.replace(/_/g, ''));
  return v.toString();
}

// ---------------------------------------------------------------------------------------------
// Field walkers

// Chat request fields each peer covers.
//   dstack (§5): messages[i].content of every role — a string (c = "-") or, in an array, each
//                {type:"text", text:string} part (c = its position); other parts pass through.
//   venice (Venice §5): messages[i].content strings, every role.
//   near (§10.4): messages[].content (string), reasoning_content, reasoning, audio.data; with
//                allFields also refusal, name, tool_calls[].function.{arguments,name},
//                function_call.{arguments,name}, tools[].function.{name,description,parameters}
//                (parameters: a JSON string), tool_choice.function.name, top-level function_call.name.
// visit(value, where) returns the replacement; where = {path, field, m, c, json?, extra?}
// (extra: an all-fields field). The body is deep-copied; the input is never mutated.
export function mapRequestFields(body, { coverage, allFields = false }, visit) {
  const out = structuredClone(body);
  const messages = Array.isArray(out?.messages) ? out.messages : [];
  messages.forEach((msg, m) => {
    if (!msg || typeof msg !== 'object' || Array.isArray(msg)) return;
    const at = (field) => `messages[${m}].${field}`;
    if (coverage === 'dstack') {
      if (typeof msg.content === 'string') msg.content = visit(msg.content, { path: at('content'), field: 'content', m, c: '-' });
      else if (Array.isArray(msg.content)) {
        msg.content.forEach((part, c) => {
          if (part && typeof part === 'object' && part.type === 'text' && typeof part.text === 'string') {
            part.text = visit(part.text, { path: at(`content[${c}].text`), field: 'content', m, c });
          }
        });
      }
      return;
    }
    if (coverage === 'venice') {
      if (typeof msg.content === 'string') msg.content = visit(msg.content, { path: at('content'), field: 'content', m, c: '-' });
      return;
    }
    if (coverage !== 'near') throw new FieldPeerError('bad_coverage', `unknown coverage ${coverage}`);
    const str = (obj, key, path, extra = false, json = false) => {
      if (obj && typeof obj === 'object' && typeof obj[key] === 'string') obj[key] = visit(obj[key], { path, field: key, m, c: '-', extra, json });
    };
    str(msg, 'content', at('content'));
    str(msg, 'reasoning_content', at('reasoning_content'));
    str(msg, 'reasoning', at('reasoning'));
    str(msg.audio, 'data', at('audio.data'));
    if (!allFields) return;
    str(msg, 'refusal', at('refusal'), true);
    str(msg, 'name', at('name'), true);
    if (Array.isArray(msg.tool_calls)) {
      msg.tool_calls.forEach((tc, t) => {
        str(tc?.function, 'arguments', at(`tool_calls[${t}].function.arguments`), true);
        str(tc?.function, 'name', at(`tool_calls[${t}].function.name`), true);
      });
    }
    str(msg.function_call, 'arguments', at('function_call.arguments'), true);
    str(msg.function_call, 'name', at('function_call.name'), true);
  });
  if (coverage === 'near' && allFields && out && typeof out === 'object') {
    const top = (obj, key, path, json = false) => {
      if (!obj || typeof obj !== 'object') return;
      const v = obj[key];
      if (typeof v === 'string' || (json && v && typeof v === 'object')) obj[key] = visit(v, { path, field: key, m: null, c: '-', extra: true, json });
    };
    if (Array.isArray(out.tools)) {
      out.tools.forEach((tool, t) => {
        top(tool?.function, 'name', `tools[${t}].function.name`);
        top(tool?.function, 'description', `tools[${t}].function.description`);
        top(tool?.function, 'parameters', `tools[${t}].function.parameters`, true);
      });
    }
    top(out.tool_choice?.function, 'name', 'tool_choice.function.name');
    if (out.function_call && typeof out.function_call === 'object') top(out.function_call, 'name', 'function_call.name');
  }
  return out;
}

// Response fields (non-stream `message`, stream `delta`), per choice array position k.
//   dstack: `fields` of message/delta, default content + reasoning_content (what PH encrypts, §6);
//           add 'reasoning' for a peer that covers it (R6).
//   venice: delta.content (+ reasoning_content, Venice §6: "apply the same envelope test").
//   near (§10.4): content (string, or each array part's text), reasoning_content, reasoning,
//           audio.data; allFields: refusal, tool_calls[].function.{arguments,name},
//           function_call.{arguments,name}, logprobs.{content,refusal}[] token/bytes incl.
//           top_logprobs (bytes: JSON-serialised, where.json).
// visit(value, where): where = {path, field, choice: k, model, id, extra?, json?}.
export function mapResponseFields(obj, { coverage, allFields = false, stream = false, fields }, visit) {
  const out = structuredClone(obj);
  const choices = Array.isArray(out?.choices) ? out.choices : [];
  const model = out?.model;
  const id = out?.id;
  const defaults = { dstack: ['content', 'reasoning_content'], venice: ['content', 'reasoning_content'], near: ['content', 'reasoning_content', 'reasoning'] };
  const list = fields ?? defaults[coverage];
  if (!list) throw new FieldPeerError('bad_coverage', `unknown coverage ${coverage}`);
  choices.forEach((choice, k) => {
    if (!choice || typeof choice !== 'object') return;
    const key = stream ? 'delta' : 'message';
    const target = choice[key];
    const where = (path, field, extra = false, json = false) => ({ path: `choices[${k}].${path}`, field, choice: k, model, id, extra, json });
    if (target && typeof target === 'object') {
      for (const field of list) {
        const v = target[field];
        if (typeof v === 'string') target[field] = visit(v, where(`${key}.${field}`, field));
        else if (coverage === 'near' && field === 'content' && Array.isArray(v)) {
          v.forEach((part, p) => {
            if (part && typeof part === 'object' && typeof part.text === 'string') part.text = visit(part.text, where(`${key}.content[${p}].text`, 'content'));
          });
        }
      }
      if (coverage === 'near') {
        if (target.audio && typeof target.audio === 'object' && typeof target.audio.data === 'string') target.audio.data = visit(target.audio.data, where(`${key}.audio.data`, 'audio.data'));
        if (allFields) {
          if (typeof target.refusal === 'string') target.refusal = visit(target.refusal, where(`${key}.refusal`, 'refusal', true));
          if (Array.isArray(target.tool_calls)) {
            target.tool_calls.forEach((tc, t) => {
              const f = tc?.function;
              if (!f || typeof f !== 'object') return;
              for (const name of ['arguments', 'name']) if (typeof f[name] === 'string') f[name] = visit(f[name], where(`${key}.tool_calls[${t}].function.${name}`, name, true));
            });
          }
          const fc = target.function_call;
          if (fc && typeof fc === 'object') for (const name of ['arguments', 'name']) if (typeof fc[name] === 'string') fc[name] = visit(fc[name], where(`${key}.function_call.${name}`, name, true));
        }
      }
    }
    if (coverage === 'near' && allFields && choice.logprobs && typeof choice.logprobs === 'object') {
      for (const list2 of ['content', 'refusal']) {
        const entries = choice.logprobs[list2];
        if (!Array.isArray(entries)) continue;
        entries.forEach((e, i) => {
          const one = (entry, path) => {
            if (!entry || typeof entry !== 'object') return;
            if (typeof entry.token === 'string') entry.token = visit(entry.token, where(`${path}.token`, 'token', true));
            if (Array.isArray(entry.bytes) || typeof entry.bytes === 'string') entry.bytes = visit(entry.bytes, where(`${path}.bytes`, 'bytes', true, true));
          };
          one(e, `logprobs.${list2}[${i}]`);
          if (Array.isArray(e?.top_logprobs)) e.top_logprobs.forEach((tl, j) => one(tl, `logprobs.${list2}[${i}].top_logprobs[${j}]`));
        });
      }
    }
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Keys

// A key pair of one algo. ecdsa: secret = 32-byte scalar, publicKey = 65-byte point; ed25519:
// secret = 32-byte seed, publicKey = the Ed25519 public key. encryptionSecret/encryptionPublic
// are what seal/open take (the X25519 conversions for ed25519).
export class KeyPair {
  constructor(algo, secret) {
    this.algo = algo;
    this.secret = Buffer.from(secret);
    if (algo === 'ecdsa') {
      this.publicKey = secpPublic(this.secret);
      this.encryptionSecret = this.secret;
      this.encryptionPublic = this.publicKey;
    } else if (algo === 'ed25519') {
      this.publicKey = Buffer.from(ed25519.getPublicKey(Uint8Array.from(this.secret)));
      this.encryptionSecret = edSeedToX25519Secret(this.secret);
      this.encryptionPublic = edPublicToX25519(this.publicKey);
    } else throw new FieldPeerError('bad_algo', `unknown algo ${algo}`);
  }

  static ecdsa(secret) {
    return new KeyPair('ecdsa', secret ?? secp256k1.utils.randomSecretKey());
  }

  static ed25519(seed) {
    return new KeyPair('ed25519', seed ?? randomBytes(32));
  }

  static of(algo, secret) {
    return algo === 'ecdsa' ? KeyPair.ecdsa(secret) : KeyPair.ed25519(secret);
  }

  // The report's signing_public_key (§2): ecdsa 128 hex X‖Y without 04, ed25519 64 hex.
  get signingPublicKeyHex() {
    return this.algo === 'ecdsa' ? hex(this.publicKey.subarray(1)) : hex(this.publicKey);
  }

  // 130 hex with 04 (Venice, what most clients send) / 128 hex without (NV) / 64 hex (ed25519).
  publicKeyHex(form = 'uncompressed') {
    if (this.algo !== 'ecdsa') return hex(this.publicKey);
    return form === 'raw64' ? hex(this.publicKey.subarray(1)) : hex(this.publicKey);
  }

  // ecdsa: EIP-55 address; ed25519: the public key hex (§2 signing_address).
  get signingAddress() {
    return this.algo === 'ecdsa' ? checksumAddress(ethAddress(this.publicKey)) : hex(this.publicKey);
  }

  // What REPORTDATA[0..32) binds (§2): the 20-byte address or the 32-byte Ed25519 key.
  get identity() {
    return this.algo === 'ecdsa' ? ethAddress(this.publicKey) : this.publicKey;
  }
}

// Turns a model key as published (ecdsa: 128/130 hex; ed25519: 64 hex Ed25519) into what seal()
// takes for `algo`.
export function modelEncryptionKey(algo, modelKeyHex) {
  if (algo === 'ecdsa') return normalizeSecpPublic(modelKeyHex, 'model key');
  return edPublicToX25519(unhex(modelKeyHex, 'model key'));
}

// ---------------------------------------------------------------------------------------------
// TDX quote (Venice §2.3) and report data (§2)

export const TDX = { TEE_TYPE: 0x81, BODY: 48, TD_ATTRIBUTES: 48 + 120, REPORT_DATA: 48 + 520, MIN_LEN: 632 };

// report_data = identity.ljust(32, 0) ‖ nonce (§2; Venice: address ‖ 12 zeros ‖ nonce).
export function reportDataFor(identity, nonce) {
  const id = Buffer.from(identity);
  if (id.length > 32) throw new FieldPeerError('bad_identity', 'identity longer than 32 bytes');
  const n = Buffer.from(nonce);
  if (n.length !== 32) throw new FieldPeerError('bad_nonce', 'report nonce must be 32 bytes');
  return Buffer.concat([id, Buffer.alloc(32 - id.length), n]);
}

// A synthetic TDX v4 quote: header (version 4, attestation key type 2, teeType), TD body with random
// measurements, tdAttributes (bit 0 = debug), REPORTDATA at 568..632, then `tail` bytes standing in
// for the signature data. Not signed: only the layout is real.
export function buildTdxQuote({ reportData, debug = false, teeType = TDX.TEE_TYPE, tail = 64 }) {
  const q = Buffer.alloc(TDX.MIN_LEN + tail);
  q.writeUInt16LE(4, 0);
  q.writeUInt16LE(2, 2);
  q.writeUInt32LE(teeType >>> 0, 4);
  randomBytes(TDX.TD_ATTRIBUTES - TDX.BODY).copy(q, TDX.BODY);
  q.fill(0, TDX.TD_ATTRIBUTES, TDX.TD_ATTRIBUTES + 8);
  if (debug) q[TDX.TD_ATTRIBUTES] |= 0x01;
  randomBytes(TDX.REPORT_DATA - (TDX.TD_ATTRIBUTES + 8)).copy(q, TDX.TD_ATTRIBUTES + 8);
  Buffer.from(reportData).copy(q, TDX.REPORT_DATA);
  q.writeUInt32LE(tail > 4 ? tail - 4 : 0, TDX.MIN_LEN);
  return q;
}

// LIB-NPM decodeQuote: even-length all-hex (optional 0x) is hex, otherwise base64/base64url.
export function decodeQuote(text) {
  const v = String(text).replace(/^0x/i, '');
  if (v.length % 2 === 0 && /^[0-9a-fA-F]+$/.test(v)) return Buffer.from(v, 'hex');
  const norm = v.replace(/-/g, '+').replace(/_/g, '/');
  if (!/^[A-Za-z0-9+/]*=*$/.test(norm)) throw new FieldPeerError('bad_quote', 'TDX quote is neither hex nor base64');
  return Buffer.from(norm, 'base64');
}

export function parseTdxQuote(bytes) {
  const q = Buffer.from(bytes);
  if (q.length < TDX.MIN_LEN) throw new FieldPeerError('bad_quote', `TDX quote too short: ${q.length} bytes (need ${TDX.MIN_LEN})`);
  const teeType = q.readUInt32LE(4);
  const tdAttributes = q.subarray(TDX.TD_ATTRIBUTES, TDX.TD_ATTRIBUTES + 8);
  return { version: q.readUInt16LE(0), teeType, tdx: teeType === TDX.TEE_TYPE, tdAttributes, debug: (tdAttributes[0] & 1) === 1, reportData: q.subarray(TDX.REPORT_DATA, TDX.REPORT_DATA + 64) };
}

// ---------------------------------------------------------------------------------------------
// Attestation clients

async function getJson(url, headers = {}) {
  const res = await request(url, { headers });
  let json;
  try {
    json = JSON.parse(res.text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text: res.text };
}

const bearer = (token) => (token ? { authorization: `Bearer ${token}` } : {});

// dstack: GET /v1/attestation/report?signing_algo=&nonce= (§2). Resolves {status, json, nonce}.
export async function fetchDstackReport(baseUrl, { algo = 'ecdsa', nonce = randomHex(32), token, query } = {}) {
  const qs = query ?? `signing_algo=${encodeURIComponent(algo)}${nonce === null ? '' : `&nonce=${encodeURIComponent(nonce)}`}`;
  const r = await getJson(`${baseUrl}/v1/attestation/report?${qs}`, bearer(token));
  return { ...r, nonce };
}

// Checks a dstack report against §2: nonce echo, algo, key format, the address/key ↔ identity
// binding, REPORTDATA = identity padded to 32 ‖ nonce in the quote, TDX type and debug bit, and
// all_attestations[0] carrying the same key. A report without a quote fails unless
// allowMissingQuote (then `quote: null`). Returns {ok, errors, modelKeyHex, quote}.
export function verifyDstackReport(report, { algo, nonce, allowMissingQuote = false }) {
  const errors = [];
  const r = report ?? {};
  if (String(r.request_nonce ?? '').toLowerCase() !== String(nonce).toLowerCase()) errors.push(`request_nonce ${r.request_nonce} is not the nonce sent`);
  if (r.signing_algo !== algo) errors.push(`signing_algo ${r.signing_algo} is not ${algo}`);
  const key = r.signing_public_key;
  let identity = null;
  if (algo === 'ecdsa') {
    if (typeof key !== 'string' || !/^[0-9a-fA-F]{128}$/.test(key)) errors.push('signing_public_key is not 128 hex (X‖Y)');
    else {
      try {
        identity = ethAddress(key);
        if (String(r.signing_address).toLowerCase() !== `0x${hex(identity)}`) errors.push('signing_address is not keccak256(X‖Y)[12..32]');
      } catch (err) {
        errors.push(err.message);
      }
    }
  } else {
    if (typeof key !== 'string' || !/^[0-9a-fA-F]{64}$/.test(key)) errors.push('signing_public_key is not 64 hex');
    else {
      identity = Buffer.from(key, 'hex');
      if (String(r.signing_address).toLowerCase() !== key.toLowerCase()) errors.push('ed25519 signing_address differs from signing_public_key');
    }
  }
  const first = Array.isArray(r.all_attestations) ? r.all_attestations[0] : undefined;
  if (!first || first.signing_public_key !== key) errors.push('all_attestations[0].signing_public_key differs');
  let quote = null;
  const quoteText = r.intel_quote ?? r.quote;
  if (!quoteText) {
    if (!allowMissingQuote) errors.push('no intel_quote');
  } else {
    try {
      quote = parseTdxQuote(decodeQuote(quoteText));
      if (!quote.tdx) errors.push(`teeType 0x${quote.teeType.toString(16)} is not TDX`);
      if (quote.debug) errors.push('TDX debug bit set');
      if (identity && isHex(nonce) && nonce.length === 64 && !quote.reportData.equals(reportDataFor(identity, Buffer.from(nonce, 'hex')))) {
        errors.push('REPORTDATA is not identity padded to 32 ‖ nonce');
      }
    } catch (err) {
      errors.push(err.message);
    }
  }
  return { ok: errors.length === 0, errors, modelKeyHex: key, quote };
}

// NEAR: GET /v1/attestation/report?model=&signing_algo= (§10.3).
export async function fetchNearReport(baseUrl, { model, algo = 'ecdsa', nonce, token } = {}) {
  const qs = new URLSearchParams({ model, signing_algo: algo });
  if (nonce) qs.set('nonce', nonce);
  return getJson(`${baseUrl}/v1/attestation/report?${qs}`, bearer(token));
}

// The model key from a NEAR report: model_attestations[i].signing_public_key (the entry for `model`
// when entries name one), else the top-level key when signing_algo matches (§10.3).
export function nearModelKey(report, { model, algo }) {
  const list = Array.isArray(report?.model_attestations) ? report.model_attestations : [];
  const entry = list.find((a) => a && (a.model === undefined || a.model === model) && (a.signing_algo === undefined || a.signing_algo === algo)) ?? null;
  if (entry?.signing_public_key) return entry.signing_public_key;
  if (report?.signing_public_key && report.signing_algo === algo) return report.signing_public_key;
  return null;
}

// Venice: GET /api/v1/tee/attestation?model=&nonce= (Venice §2.1).
export async function fetchVeniceAttestation(baseUrl, { model, nonce = randomHex(32), apiKey = 'test-venice-key' } = {}) {
  const r = await getJson(`${baseUrl}/api/v1/tee/attestation?model=${encodeURIComponent(model)}&nonce=${encodeURIComponent(nonce)}`, bearer(apiKey));
  return { ...r, nonce };
}

const boundOf = (v) => (v && typeof v === 'object' ? v.bound : v);

// Venice §2.3, steps 1–9 (the union of CLI and LIB checks). Returns
// {ok, errors, modelKeyHex (130 hex, 04…), address, nonceMethod ('raw' | 'sha256' | null)}.
export function verifyVeniceAttestation(att, { model, nonce }) {
  const errors = [];
  const a = att ?? {};
  if (a.verified !== true) errors.push('verified is not true');
  const norm = (s) => String(s ?? '').toLowerCase().replace(/^0x/, '');
  if (norm(a.nonce) !== norm(nonce)) errors.push('nonce echo differs from the nonce sent');
  if (a.model !== model) errors.push(`model ${a.model} is not ${model}`);
  const keyText = a.signing_key || a.signing_public_key;
  let key = null;
  try {
    if (typeof keyText !== 'string' || !/^(04)?[0-9a-fA-F]{128}$/.test(keyText)) throw new FieldPeerError('bad_key', 'model key is not 128/130 hex');
    key = normalizeSecpPublic(keyText, 'model key');
  } catch (err) {
    errors.push(`model key: ${err.message}`);
  }
  const address = key ? ethAddress(key) : null;
  if (address && String(a.signing_address).toLowerCase() !== `0x${hex(address)}`) errors.push('signing_address is not the address of the model key');
  let nonceMethod = null;
  if (!a.intel_quote) errors.push('no intel_quote');
  else {
    try {
      const q = parseTdxQuote(decodeQuote(a.intel_quote));
      if (!q.tdx) errors.push(`teeType 0x${q.teeType.toString(16)} is not TDX (0x81)`);
      if (q.debug) errors.push('TDX debug mode detected');
      const rd = q.reportData;
      if (address && !rd.subarray(0, 20).equals(address)) errors.push('REPORTDATA[0..20) is not the model key address');
      if (!rd.subarray(20, 32).equals(Buffer.alloc(12))) errors.push('REPORTDATA[20..32) is not zero');
      if (isHex(nonce) && nonce.length === 64) {
        const raw = Buffer.from(nonce, 'hex');
        if (rd.subarray(32).equals(raw)) nonceMethod = 'raw';
        else if (rd.subarray(32).equals(createHash('sha256').update(raw).digest())) nonceMethod = 'sha256';
        else errors.push('REPORTDATA[32..64) is neither the nonce nor SHA-256(nonce)');
      } else errors.push('nonce sent is not 64 hex');
    } catch (err) {
      errors.push(err.message);
    }
  }
  const sv = a.server_verification;
  if (!sv || typeof sv !== 'object') errors.push('no server_verification');
  else {
    if (boundOf(sv.nonceBinding) !== true) errors.push('server_verification.nonceBinding is not bound');
    if (sv.signingAddressBinding !== undefined && boundOf(sv.signingAddressBinding) !== true) errors.push('server_verification.signingAddressBinding is not bound');
    if (!sv.tdx && !sv.nvidia) errors.push('server_verification has neither tdx nor nvidia');
    if (a.intel_quote && sv.tdx?.valid !== true) errors.push('server_verification.tdx.valid is not true');
    if (a.nvidia_payload && sv.nvidia && sv.nvidia.valid !== true) errors.push('server_verification.nvidia.valid is not true');
  }
  return { ok: errors.length === 0, errors, modelKeyHex: key ? hex(key) : null, address: address ? `0x${hex(address)}` : null, nonceMethod };
}

// ---------------------------------------------------------------------------------------------
// Client

const WS = /^\s*$/;

// A client of one family. Options:
//   family:    'dstack' | 'near' | 'venice'
//   algo:      'ecdsa' | 'ed25519' (venice: ecdsa only)
//   version:   dstack 1 | 2 (default 2); near ed25519 1 | 2 (default 1)
//   allFields: near X-Encrypt-All-Fields
//   modelKey:  the model key hex as the report published it (128/130 hex ecdsa, 64 hex ed25519)
//   identity:  the client KeyPair (default: fresh)
//   parts:     content arrays — 'per-part' (dstack only: each text part its own envelope, c = index),
//              'stringify' (JSON.stringify(array) as one envelope, PR #7 / NIP), 'flatten' (join the
//              text parts, Venice LIB-NPM). Default: dstack per-part, near stringify, venice flatten.
//   boxCipher: NEAR v1 request boxes, 'salsa' (PyNaCl, default) or 'chacha'
//   clientKeyForm: 'uncompressed' (130 hex, default) | 'raw64' (128 hex) for ecdsa X-Client-Pub-Key
//   ephemeral: 'per-field' (default) | 'identity' (LIB: the session key as envelope key, ecdsa only)
//   allowPlaintext: response strings that are not envelopes pass through (default false: only
//              empty/whitespace strings do, anything else throws — fail closed)
//   responseFields: dstack response fields to decrypt (default content, reasoning_content, reasoning)
export class FieldClient {
  constructor({ family, algo = 'ecdsa', version, allFields = false, modelKey, identity, parts, boxCipher = 'salsa', clientKeyForm = 'uncompressed', ephemeral = 'per-field', allowPlaintext = false, responseFields } = {}) {
    if (!['dstack', 'near', 'venice'].includes(family)) throw new FieldPeerError('bad_family', `unknown family ${family}`);
    if (family === 'venice' && algo !== 'ecdsa') throw new FieldPeerError('bad_algo', 'venice is ecdsa only');
    this.family = family;
    this.algo = algo;
    this.version = Number(version ?? (family === 'dstack' ? 2 : 1));
    this.allFields = allFields;
    this.modelKey = modelKey;
    this.identity = identity ?? KeyPair.of(algo);
    if (this.identity.algo !== algo) throw new FieldPeerError('bad_algo', 'identity algo differs');
    this.parts = parts ?? { dstack: 'per-part', near: 'stringify', venice: 'flatten' }[family];
    this.boxCipher = boxCipher;
    this.clientKeyForm = clientKeyForm;
    this.ephemeral = ephemeral;
    this.allowPlaintext = allowPlaintext;
    this.responseFields = responseFields ?? (family === 'dstack' ? ['content', 'reasoning_content', 'reasoning'] : undefined);
    this.scheme = schemeFor({ family, algo, version: this.version });
  }

  get v2() {
    return this.family === 'dstack' && this.version === 2;
  }

  get coverage() {
    return this.family;
  }

  // The request headers. ctx = {nonce, ts} for dstack v2 (made fresh when not given).
  headers(ctx = {}) {
    const h = {};
    const clientKey = this.identity.publicKeyHex(this.family === 'venice' ? 'uncompressed' : this.clientKeyForm);
    if (this.family === 'venice') {
      h['X-Venice-TEE-Client-Pub-Key'] = clientKey;
      h['X-Venice-TEE-Model-Pub-Key'] = this.modelKey;
      h['X-Venice-TEE-Signing-Algo'] = 'ecdsa';
      return h;
    }
    h['X-Signing-Algo'] = this.algo;
    h['X-Client-Pub-Key'] = clientKey;
    h['X-Model-Pub-Key'] = this.modelKey;
    if (this.family === 'dstack') {
      h['X-E2EE-Version'] = String(this.version);
      if (this.v2) {
        h['X-E2EE-Nonce'] = ctx.nonce;
        h['X-E2EE-Timestamp'] = String(ctx.ts);
      }
    } else {
      if (this.algo === 'ed25519') h['X-Encryption-Version'] = String(this.version);
      if (this.allFields) h['X-Encrypt-All-Fields'] = 'true';
    }
    return h;
  }

  // A fresh v2 context: nonce = 16 random bytes hex (32 chars ≥ 16), ts = now.
  newContext({ nonce, ts } = {}) {
    return { nonce: nonce ?? randomHex(16), ts: ts ?? Math.floor(Date.now() / 1000) };
  }

  #sealTo(plaintext, aad) {
    const recipient = modelEncryptionKey(this.algo, this.modelKey);
    const ephemeral = this.ephemeral === 'identity' && this.algo === 'ecdsa' ? { secret: this.identity.secret, pub: this.identity.publicKey } : undefined;
    return hex(seal(this.scheme, recipient, plaintext, { aad, ephemeral, boxCipher: this.boxCipher }));
  }

  #prepareContent(body) {
    const out = structuredClone(body);
    for (const msg of Array.isArray(out?.messages) ? out.messages : []) {
      if (!msg || !Array.isArray(msg.content)) continue;
      if (this.parts === 'stringify') msg.content = JSON.stringify(msg.content);
      else if (this.parts === 'flatten') msg.content = msg.content.map((p) => (p && typeof p === 'object' && typeof p.text === 'string' ? p.text : '')).join('');
    }
    return out;
  }

  // Encrypts a chat request body. Returns {body, headers, ctx}; `ctx` feeds decryption (v2 AAD).
  // opts.aad(where, aadString) may rewrite the AAD (wrong-AAD tests); opts.ctx fixes nonce/ts.
  encryptRequest(body, { ctx, aad: aadHook } = {}) {
    const c = this.v2 ? this.newContext(ctx) : { ...(ctx ?? {}) };
    let prepared = this.#prepareContent(body);
    if (this.family === 'venice') {
      prepared.stream = true;
      prepared.venice_parameters = { ...(prepared.venice_parameters ?? {}), enable_e2ee: true, include_venice_system_prompt: false };
    }
    const model = pyStr(prepared?.model);
    const encrypted = mapRequestFields(prepared, { coverage: this.coverage, allFields: this.allFields }, (value, where) => {
      let v = value;
      if (where.json && typeof v !== 'string') v = JSON.stringify(v);
      if (this.family === 'near' && v === '') return v; // NIP: "" is not encrypted (§10.2)
      let aad = this.v2 ? requestAad({ algo: this.algo, model, m: where.m, c: where.c, nonce: c.nonce, ts: c.ts }) : undefined;
      if (aadHook) aad = aadHook(where, aad);
      return this.#sealTo(v, aad);
    });
    return { body: encrypted, headers: this.headers(c), ctx: c };
  }

  #openString(value, where, ctx) {
    if (typeof value !== 'string') return value;
    if (WS.test(value)) return value; // empty / whitespace pass through
    if (!isHex(value) || value.length < 2 * SCHEMES[this.scheme].min) {
      if (this.allowPlaintext) return value;
      throw new FieldPeerError('not_envelope', `${where.path} is not an envelope (fail closed): ${value.slice(0, 40)}`);
    }
    const aad = this.v2 ? responseAad({ algo: this.algo, model: pyStr(where.model), id: pyStr(where.id), choice: where.choice, field: where.field, nonce: ctx.nonce, ts: ctx.ts }) : undefined;
    const pt = utf8Strict(open(this.scheme, this.identity.encryptionSecret, Buffer.from(value, 'hex'), { aad }));
    if (where.json) return JSON.parse(pt);
    return pt;
  }

  // Decrypts a non-stream chat.completion (or one stream chunk with {stream: true}).
  decryptResponse(obj, ctx = {}, { stream = false } = {}) {
    return mapResponseFields(obj, { coverage: this.coverage, allFields: this.allFields, stream, fields: this.responseFields }, (v, where) => this.#openString(v, where, ctx));
  }

  // Decrypts an SSE chat stream (async iterable of byte chunks). Returns
  //   {events: [{raw, json, decrypted}], texts: [{content, reasoning_content, reasoning}] per choice
  //    position, content (choice 0), done, otherLines, error (the first failure, stream not thrown)}.
  async decryptStream(chunks, ctx = {}, { throwOnError = true } = {}) {
    const out = { events: [], texts: [], done: false, otherLines: [], error: null, rawLines: [] };
    for await (const line of lines(chunks)) {
      out.rawLines.push(line);
      if (!line.startsWith('data:')) {
        if (line.trim()) out.otherLines.push(line);
        continue;
      }
      const raw = line.slice(5).trim();
      if (raw === '[DONE]') {
        out.done = true;
        continue;
      }
      let json;
      try {
        json = JSON.parse(raw);
      } catch {
        out.otherLines.push(line);
        continue;
      }
      let decrypted;
      try {
        decrypted = this.decryptResponse(json, ctx, { stream: true });
      } catch (err) {
        if (!out.error) out.error = err;
        if (throwOnError) throw err;
        out.events.push({ raw, json, decrypted: null });
        continue;
      }
      out.events.push({ raw, json, decrypted });
      (decrypted.choices ?? []).forEach((ch, k) => {
        const t = (out.texts[k] ??= { content: '', reasoning_content: '', reasoning: '' });
        for (const f of ['content', 'reasoning_content', 'reasoning']) if (typeof ch?.delta?.[f] === 'string') t[f] += ch.delta[f];
      });
    }
    out.content = out.texts[0]?.content ?? '';
    return out;
  }

  // dstack §7: X-E2EE-Applied true, X-E2EE-Version, X-E2EE-Algo. Returns the problems ([] if fine).
  checkResponseHeaders(headers) {
    if (this.family !== 'dstack') return [];
    const problems = [];
    const get = (k) => headers[k.toLowerCase()];
    if (get('X-E2EE-Applied') !== 'true') problems.push(`X-E2EE-Applied is ${get('X-E2EE-Applied')}`);
    if (get('X-E2EE-Version') !== String(this.version)) problems.push(`X-E2EE-Version is ${get('X-E2EE-Version')}`);
    if (get('X-E2EE-Algo') !== this.algo) problems.push(`X-E2EE-Algo is ${get('X-E2EE-Algo')}`);
    return problems;
  }

  // Encrypts, sends and decrypts one chat request. `body` is the plaintext request. Resolves to
  //   {status, headers, sent: {body, headers, ctx}, json (raw answer), decrypted (non-stream 200),
  //    stream (decryptStream result for a 200 event stream), headerProblems, error}.
  // Decryption failures land in `error` (not thrown) so tests can assert fail-closed behaviour.
  async chat(baseUrl, body, { path, headers = {}, token, ctx, aad, timeoutMs = 30000, rawBody } = {}) {
    const sent = this.encryptRequest(body, { ctx, aad });
    const p = path ?? (this.family === 'venice' ? '/api/v1/chat/completions' : '/v1/chat/completions');
    const h = { 'content-type': 'application/json', ...bearer(token), ...sent.headers, ...headers };
    for (const [k, v] of Object.entries(h)) if (v === undefined || v === null) delete h[k];
    const res = await request(`${baseUrl}${p}`, { method: 'POST', headers: h, body: rawBody ?? JSON.stringify(sent.body), stream: true, timeoutMs });
    const result = { status: res.status, headers: res.headers, sent, error: null };
    result.headerProblems = res.status === 200 ? this.checkResponseHeaders(res.headers) : [];
    const ctype = String(res.headers['content-type'] ?? '');
    if (res.status === 200 && ctype.startsWith('text/event-stream')) {
      result.stream = await this.decryptStream(res.res, sent.ctx, { throwOnError: false });
      result.error = result.stream.error;
      return result;
    }
    const parts = [];
    for await (const c of res.res) parts.push(c);
    result.body = Buffer.concat(parts);
    try {
      result.json = JSON.parse(result.body.toString('utf8'));
    } catch {
      result.json = undefined;
    }
    if (res.status === 200 && result.json) {
      try {
        result.decrypted = this.decryptResponse(result.json, sent.ctx);
      } catch (err) {
        result.error = err;
      }
    }
    return result;
  }
}
