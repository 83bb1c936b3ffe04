// The Node field-level peer (lib/field_peer.mjs) and its fake Venice / NEAR / dstack upstreams
// (lib/fake_field_providers.mjs) checked before they are trusted to judge the C++ programs:
// the known answers of near-phala-protocol.md §12 and venice-protocol.md §4.4 byte for byte, NaCl /
// RustCrypto crypto_box vectors, primitives cross-checked against Node's OpenSSL, then every
// family × algo × version × stream mode through the fakes, and their failure modes (tampering, wrong
// AAD, replay, timestamp window, header errors, attestation faults, fail-closed decryption).

import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHmac, createPrivateKey, createPublicKey, diffieHellman, hkdfSync, randomBytes } from 'node:crypto';
import { request } from './lib/http.mjs';
import { startEngine, chatFrames } from './lib/engine.mjs';
import { completionWith, toolCall, deltaFrames, toolCallDeltas } from './lib/chat_chunks.mjs';
import * as fp from './lib/field_peer.mjs';
import { startFakeDstack, startFakeNear, startFakeVenice, NEAR_421_BODY } from './lib/fake_field_providers.mjs';

const unhex = (h) => Buffer.from(h, 'hex');
const hex = (b) => Buffer.from(b).toString('hex');
const IV = unhex('000102030405060708090a0b');
const marker = () => `MARK-${randomBytes(6).toString('hex')}`;

// ---------------------------------------------------------------------------------------------
// Known answers

describe('ECDSA family KAT (near-phala §12, venice §4.4)', () => {
  const server = unhex('11'.repeat(32));
  const eph = unhex('22'.repeat(32));
  const MODEL_PUB = '4f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa385b6b1b8ead809ca67454d9683fcf2ba03456d6fe2c4abe2b07f0fbdbb2f1c1';
  const EPH_PUB = '04466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f276728176c3c6431f8eeda4538dc37c865e2784f3a9e77d044f33e407797e1278a';
  const SHARED = '77e0510d5042e2f5e9e59c977b81eeed590cf7d20c1c51da451a8eaa9fdc45ff';
  const AES_KEY = '41d8f5155ed5844867b9244accfb74b0dd6baa897e300a70e94a823032f9131f';
  const AAD = 'v2|req|algo=ecdsa|model=m|m=0|c=-|n=nonce1234567890123|ts=1700000000';
  const WIRE_V1 = `${EPH_PUB}000102030405060708090a0ba84e92c951a98a94fe8f00168f40909b61642df01c`;
  const WIRE_V2 = `${EPH_PUB}000102030405060708090a0ba84e92c9510ce7a9d341d3ad37aaf6918123dac554`;

  test('keys, shared X coordinate, HKDF key (also by the HMAC reduction with salt = 32 zero bytes)', () => {
    const kp = fp.KeyPair.ecdsa(server);
    assert.equal(kp.signingPublicKeyHex, MODEL_PUB);
    assert.equal(hex(fp.secpPublic(eph)), EPH_PUB);
    assert.equal(hex(fp.ecdhX(eph, kp.publicKey)), SHARED);
    assert.equal(hex(fp.ecdhX(server, unhex(EPH_PUB))), SHARED, 'ECDH is symmetric');
    assert.equal(hex(fp.hkdf32(unhex(SHARED), 'ecdsa_encryption')), AES_KEY);
    const prk = createHmac('sha256', Buffer.alloc(32)).update(unhex(SHARED)).digest();
    const okm = createHmac('sha256', prk).update(Buffer.concat([Buffer.from('ecdsa_encryption'), Buffer.from([1])])).digest();
    assert.equal(hex(okm), AES_KEY);
  });

  test('v1 wire (no AAD) and v2 wire (the §8 example AAD) byte for byte, sealed and opened', () => {
    const kp = fp.KeyPair.ecdsa(server);
    assert.equal(fp.requestAad({ algo: 'ecdsa', model: 'm', m: 0, c: '-', nonce: 'nonce1234567890123', ts: 1700000000 }), AAD);
    assert.equal(hex(fp.seal('ecdsa-aesgcm', unhex(MODEL_PUB), 'hello', { ephemeral: eph, iv: IV })), WIRE_V1);
    assert.equal(hex(fp.seal('ecdsa-aesgcm', unhex(MODEL_PUB), 'hello', { ephemeral: eph, iv: IV, aad: AAD })), WIRE_V2);
    assert.equal(fp.open('ecdsa-aesgcm', kp.secret, unhex(WIRE_V1)).toString(), 'hello');
    assert.equal(fp.open('ecdsa-aesgcm', kp.secret, unhex(WIRE_V2), { aad: AAD }).toString(), 'hello');
    assert.throws(() => fp.open('ecdsa-aesgcm', kp.secret, unhex(WIRE_V2)), /AES-GCM/, 'v2 without its AAD fails');
    assert.throws(() => fp.open('ecdsa-aesgcm', kp.secret, unhex(WIRE_V2), { aad: AAD.replace('m=0', 'm=1') }), /AES-GCM/);
    assert.throws(() => fp.open('ecdsa-aesgcm', kp.secret, unhex(WIRE_V1), { aad: AAD }), /AES-GCM/, 'v1 with an AAD fails');
    // Independent of the peer: Node's AES-GCM with the KAT key gives the KAT tag.
    const c = createCipheriv('aes-256-gcm', unhex(AES_KEY), IV);
    const ct = Buffer.concat([c.update('hello'), c.final()]);
    assert.equal(hex(ct) + hex(c.getAuthTag()), 'a84e92c951a98a94fe8f00168f40909b61642df01c');
  });

  test('Venice: a client decrypts wire_v1 as a response chunk (server ephemeral in the envelope)', () => {
    // The "client" holds 32×0x11; the envelope's key is the per-chunk server ephemeral.
    const client = new fp.FieldClient({ family: 'venice', identity: fp.KeyPair.ecdsa(server), modelKey: `04${MODEL_PUB}` });
    const chunk = { id: 'x', model: 'e2ee-m', choices: [{ index: 0, delta: { content: WIRE_V1 } }] };
    assert.equal(client.decryptResponse(chunk, {}, { stream: true }).choices[0].delta.content, 'hello');
    const upper = { ...chunk, choices: [{ index: 0, delta: { content: WIRE_V1.toUpperCase() } }] };
    assert.equal(client.decryptResponse(upper, {}, { stream: true }).choices[0].delta.content, 'hello', 'upper case is tolerated on read');
    assert.equal(WIRE_V1.length, 2 * 98, '93 bytes + 5 of plaintext');
  });

  test('envelope checks: too short, compressed / off-curve envelope key, tag flip', () => {
    const kp = fp.KeyPair.ecdsa(server);
    assert.throws(() => fp.open('ecdsa-aesgcm', kp.secret, unhex(WIRE_V1).subarray(0, 92)), (e) => e.code === 'too_short');
    const compressed = Buffer.concat([Buffer.from(secpCompressed(unhex(EPH_PUB))), Buffer.alloc(60)]);
    assert.throws(() => fp.open('ecdsa-aesgcm', kp.secret, compressed), (e) => e.code === 'bad_key');
    const offCurve = unhex(WIRE_V1);
    offCurve[64] ^= 1;
    assert.throws(() => fp.open('ecdsa-aesgcm', kp.secret, offCurve), (e) => e.code === 'bad_key');
    const flipped = unhex(WIRE_V1);
    flipped[80] ^= 1;
    assert.throws(() => fp.open('ecdsa-aesgcm', kp.secret, flipped), (e) => e.code === 'decryption_failed');
  });

  test('Ethereum address: keccak256(X‖Y)[12..] with EIP-55 case (secret 1 → 0x7E5F…5Bdf)', () => {
    const one = unhex('00'.repeat(31) + '01');
    assert.equal(fp.checksumAddress(fp.ethAddress(fp.secpPublic(one))), '0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf');
    assert.equal(fp.KeyPair.ecdsa(one).signingAddress, '0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf');
  });
});

function secpCompressed(pub65) {
  return Buffer.concat([Buffer.from([pub65[64] & 1 ? 3 : 2]), pub65.subarray(1, 33)]);
}

describe('Phala Ed25519 KAT (near-phala §12) and the key conversions (§4.2)', () => {
  const SEED = unhex('33'.repeat(32));
  const ED_PUB = '17cb79fb2b4120f2b1ec65e4198d6e08b28e813feb01e4a400839b85e18080ce';
  const X_PUB = '4eb4fafee2bd3018a24e310de8106333c2b364eaed029a7f05d7b45ccc77683a';
  const EPH = unhex('44'.repeat(32));
  const EPH_PUB = 'ff2ee45601ec1b67310c7790404585ae697331eee1c1f8cf2419731c1fff3e6b';
  const SHARED = '3810545e0f05bf55b4a953d425943d457be5329f5b7180cc347455fea9ba5866';
  const AES_KEY = '870d5708a18dbc08ee2d606d1fc353f767b92514c8038cb9d5abaa29d998efa2';

  test('Ed25519 pub, u = (1+y)/(1−y), clamp(SHA-512(seed)[:32]) pub, ephemeral pub, shared, key, ct ‖ tag', () => {
    const kp = fp.KeyPair.ed25519(SEED);
    assert.equal(hex(kp.publicKey), ED_PUB);
    assert.equal(hex(fp.edPublicToX25519(kp.publicKey)), X_PUB);
    assert.equal(hex(fp.x25519Public(fp.edSeedToX25519Secret(SEED))), X_PUB, 'the converted secret belongs to the converted public key');
    assert.equal(hex(fp.x25519Public(EPH)), EPH_PUB);
    assert.equal(hex(fp.x25519Shared(EPH, unhex(X_PUB))), SHARED);
    assert.equal(hex(fp.hkdf32(unhex(SHARED), 'ed25519_encryption')), AES_KEY);
    const wire = fp.seal('x25519-aesgcm', unhex(X_PUB), 'hello', { ephemeral: EPH, iv: IV });
    assert.equal(hex(wire), `${EPH_PUB}000102030405060708090a0b4df58905c83c1877d1b32a643528ed3931a2a06fc7`);
    assert.equal(fp.open('x25519-aesgcm', kp.encryptionSecret, wire).toString(), 'hello');
  });

  test('X25519 agrees with Node (OpenSSL) on the KAT and on random keys', () => {
    const nodeShared = (sk, pk) =>
      diffieHellman({
        privateKey: createPrivateKey({ key: Buffer.concat([unhex('302e020100300506032b656e04220420'), sk]), format: 'der', type: 'pkcs8' }),
        publicKey: createPublicKey({ key: Buffer.concat([unhex('302a300506032b656e032100'), pk]), format: 'der', type: 'spki' }),
      });
    assert.equal(hex(nodeShared(EPH, unhex(X_PUB))), SHARED);
    for (let i = 0; i < 5; i++) {
      const a = randomBytes(32);
      const b = fp.x25519Public(randomBytes(32));
      assert.equal(hex(fp.x25519Shared(a, b)), hex(nodeShared(a, b)));
    }
  });

  test('the BigInt Edwards→Montgomery map equals @noble toMontgomery on random keys; y = 1 maps to 0', () => {
    for (let i = 0; i < 16; i++) {
      const pub = fp.ed25519.getPublicKey(randomBytes(32));
      assert.equal(hex(fp.edPublicToX25519(pub)), hex(fp.ed25519.utils.toMontgomery(pub)));
    }
    const yOne = Buffer.alloc(32);
    yOne[0] = 1;
    assert.equal(hex(fp.edPublicToX25519(yOne)), '00'.repeat(32));
    assert.throws(() => fp.edPublicToX25519(Buffer.alloc(31)), /32 bytes/);
  });

  test('a low-order X25519 key is refused (all-zero shared secret)', () => {
    assert.throws(() => fp.x25519Shared(randomBytes(32), Buffer.alloc(32)), (e) => e.code === 'bad_key');
    const lowOrder = unhex('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800'); // libsodium box.c small_order_p
    assert.throws(() => fp.x25519Shared(randomBytes(32), lowOrder), (e) => e.code === 'bad_key');
  });
});

describe('NEAR Ed25519 v1 (NaCl box) and v2 (XChaCha20-Poly1305) against published vectors', () => {
  // libsodium test/default/box.c + box.exp (NaCl tests/box.c); keys of RFC 7748 §6.1.
  const ALICE_SK = unhex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
  const BOB_SK = unhex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
  const BOB_PK = unhex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
  const NONCE = unhex('69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37');
  const M = unhex(
    'be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffce5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb310e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f937763848645e0705',
  );
  const C = unhex(
    'f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce48332ea7164d96a4476fb8c531a1186ac0dfc17c98dce87b4da7f011ec48c97271d2c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932164548e526ae90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b37973f622a43d14a6599b1f654cb45a74e355a5',
  );

  test('RFC 7748 shared secret, HSalsa20 firstkey (NaCl core1), box = MAC ‖ body (libsodium box.exp)', () => {
    assert.equal(hex(fp.x25519Public(BOB_SK)), hex(BOB_PK));
    const shared = fp.x25519Shared(ALICE_SK, BOB_PK);
    assert.equal(hex(shared), '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');
    const k = fp.boxKey(shared, 'salsa');
    assert.equal(hex(k), '1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389');
    assert.equal(hex(fp.boxSeal(k, NONCE, M, 'salsa')), hex(C));
    // The whole NEAR v1 envelope: eph pub ‖ nonce ‖ box, opened by the recipient.
    const env = fp.seal('nacl-box', BOB_PK, M, { ephemeral: ALICE_SK, iv: NONCE, boxCipher: 'salsa' });
    assert.equal(hex(env), hex(fp.x25519Public(ALICE_SK)) + hex(NONCE) + hex(C));
    assert.equal(hex(fp.open('nacl-box', BOB_SK, env)), hex(M), 'open tries ChaCha, then Salsa (NIP order)');
    assert.equal(fp.boxCipherOf(BOB_SK, env), 'salsa');
  });

  // RustCrypto nacl-compat crypto_box/tests/lib.rs (from PHP sodium_compat): SalsaBox and ChaChaBox.
  const RC_ALICE_SK = unhex('68f208412d8dd5db9d0c6d18512e86f0ec75665ab841372d57b042b27ef89d4c');
  const RC_BOB_PK = unhex('e8980c86e032f1eb2975052e8d65bddd15c3b59641174ec9678a53789d92c754');
  const RC_SALSA = 'c03f27d188ef650cd12936913137bb17ed4c98c2648939e2e1d2e855470a7b8c632cabfd5ab3b3c2d313dc8c9ecf5da173e1f9c318cdef1dced6d2519e695085e6b5c401a2bd5331442986c7076d412625497c4cb2fd94c6f1039610' + '33b2c930d7e82e0341f29d3879bd6ab9d881ea3a1f365d634e653c6e171aac7fc1e76934d23be6f04a540108' + '08dbf0f9bd30f63b68d026';
  const RC_CHACHA = 'a2978374ed279cfbcd6d6da427e42d0497dfb91fba87653493f4c8f1ddd96417e7801255f943d6e00785e4d2171be2965dd2d9235e5f7da98e7f5fe73666655320e0e007fc9f306a436874df3f0953c83ac5d7fb1e613e8df46e2274ab32e3fa136e1ead147f8233b3d3ff91dc8af5f7018bd56cbd72bed7da2d5ba3b9e08fdee8d899ed616fe47bebdea5f889251fbcf8948e';

  test('RustCrypto SalsaBox (MAC first) and ChaChaBox (HChaCha20 key, XChaCha20-Poly1305 IETF, tag last)', () => {
    const shared = fp.x25519Shared(RC_ALICE_SK, RC_BOB_PK);
    assert.equal(hex(fp.boxSeal(fp.boxKey(shared, 'salsa'), NONCE, M, 'salsa')), RC_SALSA);
    assert.equal(hex(fp.boxSeal(fp.boxKey(shared, 'chacha'), NONCE, M, 'chacha')), RC_CHACHA);
    const env = fp.seal('nacl-box', RC_BOB_PK, M, { ephemeral: RC_ALICE_SK, iv: NONCE, boxCipher: 'chacha' });
    assert.equal(hex(env.subarray(56)), RC_CHACHA);
  });

  test('HChaCha20 (draft-irtf-cfrg-xchacha §2.2.1) and XChaCha20-Poly1305 = ChaCha20-Poly1305(HChaCha20(k, n[0:16]), 0⁴ ‖ n[16:24]) via Node', () => {
    const key = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
    assert.equal(hex(fp.hchacha20(key, unhex('000000090000004a0000000031415927'))), '82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc');
    const k = randomBytes(32);
    const n = randomBytes(24);
    const pt = randomBytes(77);
    const sub = fp.hchacha20(k, n.subarray(0, 16));
    const c = createCipheriv('chacha20-poly1305', sub, Buffer.concat([Buffer.alloc(4), n.subarray(16)]), { authTagLength: 16 });
    const viaNode = Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]);
    assert.equal(hex(fp.xchachaSeal(k, n, pt)), hex(viaNode));
  });

  test('v2 envelope assembled by hand (Node X25519-free path: HKDF + HChaCha20 + Node ChaCha20-Poly1305) opens with the peer', () => {
    const server = fp.KeyPair.ed25519();
    const eph = randomBytes(32);
    const nonce = randomBytes(24);
    const shared = fp.x25519Shared(eph, server.encryptionPublic);
    const key = Buffer.from(hkdfSync('sha256', shared, Buffer.alloc(0), Buffer.from('ed25519_encryption'), 32));
    const c = createCipheriv('chacha20-poly1305', fp.hchacha20(key, nonce.subarray(0, 16)), Buffer.concat([Buffer.alloc(4), nonce.subarray(16)]), { authTagLength: 16 });
    const env = Buffer.concat([fp.x25519Public(eph), nonce, c.update('héllo v2'), c.final(), c.getAuthTag()]);
    assert.equal(fp.open('x25519-xchacha', server.encryptionSecret, env).toString(), 'héllo v2');
    // v1 and v2 are not interchangeable.
    assert.throws(() => fp.open('nacl-box', server.encryptionSecret, env), (e) => e.code === 'decryption_failed');
    const v1 = fp.seal('nacl-box', server.encryptionPublic, 'x');
    assert.throws(() => fp.open('x25519-xchacha', server.encryptionSecret, v1), (e) => e.code === 'decryption_failed');
  });
});

describe('helpers: TDX quote layout, Python json.dumps, Python int()', () => {
  test('quote: teeType u32le at 4, tdAttributes at 168 (debug bit 0), REPORTDATA at 568..632; hex and base64 decode', () => {
    const rd = randomBytes(64);
    const q = fp.buildTdxQuote({ reportData: rd, debug: true });
    assert.ok(q.length >= 632);
    assert.equal(hex(q.subarray(4, 8)), '81000000');
    assert.equal(q[168] & 1, 1);
    assert.equal(hex(q.subarray(568, 632)), hex(rd));
    for (const text of [q.toString('hex'), `0x${q.toString('hex').toUpperCase()}`, q.toString('base64'), q.toString('base64url')]) {
      const p = fp.parseTdxQuote(fp.decodeQuote(text));
      assert.equal(p.tdx, true);
      assert.equal(p.debug, true);
      assert.equal(hex(p.reportData), hex(rd));
    }
    assert.equal(fp.parseTdxQuote(fp.buildTdxQuote({ reportData: rd, teeType: 0 })).tdx, false);
    assert.throws(() => fp.parseTdxQuote(q.subarray(0, 631)), /too short/);
    const data = fp.reportDataFor(unhex('aa'.repeat(20)), unhex('bb'.repeat(32)));
    assert.equal(hex(data), 'aa'.repeat(20) + '00'.repeat(12) + 'bb'.repeat(32));
  });

  test('pyDumps = Python json.dumps defaults; pyIntCanonical = str(int(text))', () => {
    assert.equal(fp.pyDumps({ a: [1, 'é\n"\u0001', true, null], b: {}, c: [], d: '😀' }), '{"a": [1, "\\u00e9\\n\\"\\u0001", true, null], "b": {}, "c": [], "d": "\\ud83d\\ude00"}');
    assert.equal(fp.pyIntCanonical(' 0017 '), '17');
    assert.equal(fp.pyIntCanonical('+1_700_000_000'), '1700000000');
    assert.equal(fp.pyIntCanonical('-5'), '-5');
    for (const bad of ['abc', '1__0', '_1', '1.0', '', '0x10']) assert.equal(fp.pyIntCanonical(bad), null, bad);
    assert.equal(fp.pyStr(null), 'None');
    assert.equal(fp.pyStr(undefined), '');
  });

  test('walkers: dstack covers every role and text parts with their positions; NEAR all-fields covers tools and tool calls', () => {
    const body = {
      model: 'm',
      messages: [
        { role: 'system', content: 's' },
        { role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'image_url', image_url: { url: 'u' } }, { type: 'text', text: 'b' }] },
        { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] },
        { role: 'tool', content: 't', tool_call_id: 'c', name: 'f' },
      ],
      tools: [{ type: 'function', function: { name: 'f', description: 'd', parameters: { type: 'object' } } }],
      tool_choice: { type: 'function', function: { name: 'f' } },
    };
    const seen = [];
    const out = fp.mapRequestFields(body, { coverage: 'dstack' }, (v, w) => {
      seen.push(`${w.m}/${w.c}`);
      return `<${v}>`;
    });
    assert.deepEqual(seen, ['0/-', '1/0', '1/2', '3/-']);
    assert.equal(out.messages[1].content[1].image_url.url, 'u');
    assert.equal(body.messages[0].content, 's', 'input not mutated');
    const near = [];
    fp.mapRequestFields(body, { coverage: 'near', allFields: true }, (v, w) => {
      near.push(w.path);
      return v;
    });
    assert.deepEqual(near, ['messages[0].content', 'messages[2].tool_calls[0].function.arguments', 'messages[2].tool_calls[0].function.name', 'messages[3].content', 'messages[3].name', 'tools[0].function.name', 'tools[0].function.description', 'tools[0].function.parameters', 'tool_choice.function.name']);
    const plain = [];
    fp.mapRequestFields(body, { coverage: 'near' }, (v, w) => (plain.push(w.path), v));
    assert.deepEqual(plain, ['messages[0].content', 'messages[3].content'], 'without all-fields only content');
  });
});

// ---------------------------------------------------------------------------------------------
// Fakes ↔ client

let engine;
let dstack;
let near;
let venice;
before(async () => {
  engine = await startEngine();
  [dstack, near, venice] = await Promise.all([startFakeDstack({ engineUrl: engine.url }), startFakeNear({ engineUrl: engine.url }), startFakeVenice({ engineUrl: engine.url })]);
});
after(async () => {
  await Promise.all([dstack?.close(), near?.close(), venice?.close()]);
  await engine?.close();
});
beforeEach(() => {
  engine?.reset();
  dstack?.reset();
  near?.reset();
  venice?.reset();
});

function assertPhError(r, type) {
  assert.equal(r.status, 400, `expected 400 ${type}, got ${r.status}: ${r.body ?? r.text}`);
  const json = typeof r.json === 'function' ? r.json() : r.json;
  assert.equal(json.error.type, type, JSON.stringify(json));
  assert.equal(json.error.param, null);
  assert.equal(json.error.code, null);
}

async function dstackClient(algo, version, opts = {}) {
  const rep = await fp.fetchDstackReport(dstack.url, { algo });
  assert.equal(rep.status, 200, rep.text);
  const v = fp.verifyDstackReport(rep.json, { algo, nonce: rep.nonce });
  assert.deepEqual(v.errors, []);
  return new fp.FieldClient({ family: 'dstack', algo, version, modelKey: v.modelKeyHex, ...opts });
}

describe('fake dstack ↔ client', () => {
  for (const algo of ['ecdsa', 'ed25519']) {
    for (const version of [1, 2]) {
      for (const stream of [false, true]) {
        test(`${algo} v${version} ${stream ? 'stream' : 'non-stream'}: every role decrypted in the TEE, answer decrypts, X-E2EE-* headers`, async () => {
          const client = await dstackClient(algo, version);
          const m = marker();
          const body = { model: 'test/model', stream, messages: [{ role: 'system', content: `sys ${m}` }, { role: 'assistant', content: `prev ${m}` }, { role: 'user', content: `hi ${m}` }] };
          const r = await client.chat(dstack.url, body);
          assert.equal(r.status, 200, r.body?.toString());
          assert.equal(r.error, null, String(r.error));
          assert.deepEqual(r.headerProblems, []);
          assert.equal(r.headers['x-e2ee-version'], String(version));
          assert.ok(!JSON.stringify(r.sent.body).includes(m), 'the marker is not on the wire in plaintext');
          for (const msg of r.sent.body.messages) assert.match(msg.content, /^[0-9a-f]+$/);
          assert.deepEqual(dstack.last.forwarded.messages.map((x) => x.content), [`sys ${m}`, `prev ${m}`, `hi ${m}`]);
          assert.equal(engine.requests.at(-1).json.messages[2].content, `hi ${m}`);
          if (stream) {
            assert.equal(r.stream.content, `echo: hi ${m}`);
            assert.ok(r.stream.done);
            assert.ok(!r.stream.rawLines.join('\n').includes(m));
          } else {
            assert.equal(r.decrypted.choices[0].message.content, `echo: hi ${m}`);
            assert.ok(!r.body.toString().includes(m));
          }
        });
      }
    }
  }

  test('stream framing per §6: Python json.dumps, an extra blank line, role chunk without content (PR #6), [DONE]', async () => {
    const client = await dstackClient('ecdsa', 2);
    const sent = client.encryptRequest({ model: 'test/model', stream: true, messages: [{ role: 'user', content: 'x' }] });
    const res = await request(`${dstack.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...sent.headers }, body: JSON.stringify(sent.body) });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-accel-buffering'], 'no');
    const text = res.text;
    assert.ok(text.endsWith('data: [DONE]\n\n'), JSON.stringify(text.slice(-40)));
    const events = text.split('\n\n\n').filter((e) => e.startsWith('data: {'));
    assert.ok(events.length >= 3);
    assert.match(events[0], /^data: \{"id": "chatcmpl-stream", "object": "chat\.completion\.chunk", /);
    assert.deepEqual(JSON.parse(events[0].slice(6)).choices[0].delta, { role: 'assistant' });
  });

  test('multimodal: per-part text envelopes (c = position) with image parts in plaintext, and a stringified array (PR #7)', async () => {
    const client = await dstackClient('ed25519', 2);
    const parts = [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }, { type: 'text', text: 'here' }];
    const r = await client.chat(dstack.url, { model: 'test/model', messages: [{ role: 'user', content: parts }] });
    assert.equal(r.status, 200, r.body?.toString());
    assert.equal(r.sent.body.messages[0].content[1].image_url.url, 'data:image/png;base64,AAAA');
    assert.deepEqual(dstack.last.forwarded.messages[0].content, parts);
    const s = new fp.FieldClient({ family: 'dstack', algo: 'ed25519', version: 2, modelKey: client.modelKey, parts: 'stringify' });
    const r2 = await s.chat(dstack.url, { model: 'test/model', messages: [{ role: 'user', content: parts }, { role: 'user', content: '{"not": "a list"}' }] });
    assert.equal(r2.status, 200);
    assert.equal(typeof r2.sent.body.messages[0].content, 'string');
    assert.deepEqual(dstack.last.forwarded.messages[0].content, parts);
    assert.equal(dstack.last.forwarded.messages[1].content, '{"not": "a list"}', 'JSON that is not a list stays text');
  });

  test('v2 response AAD binds model, id, choice position and field: a client with a wrong context cannot open the answer', async () => {
    const client = await dstackClient('ecdsa', 2);
    const r = await client.chat(dstack.url, { model: 'test/model', messages: [{ role: 'user', content: 'aad' }] });
    assert.equal(r.status, 200);
    const enc = r.json;
    assert.throws(() => client.decryptResponse(enc, { ...r.sent.ctx, nonce: `${r.sent.ctx.nonce}x` }), (e) => e.code === 'decryption_failed');
    assert.throws(() => client.decryptResponse({ ...enc, id: 'other' }, r.sent.ctx), (e) => e.code === 'decryption_failed');
    assert.throws(() => client.decryptResponse({ ...enc, model: 'other' }, r.sent.ctx), (e) => e.code === 'decryption_failed');
    const aad = fp.responseAad({ algo: 'ecdsa', model: enc.model, id: enc.id, choice: 0, field: 'content', nonce: r.sent.ctx.nonce, ts: r.sent.ctx.ts });
    assert.equal(fp.open('ecdsa-aesgcm', client.identity.secret, unhex(enc.choices[0].message.content), { aad }).toString(), 'echo: aad');
  });

  test('PH caches one ephemeral key per request; the per-field option gives distinct keys', async () => {
    engine.enqueue({ json: completionWith({ model: 'test/model', message: { content: 'c', reasoning_content: 'r' } }) });
    const client = await dstackClient('ecdsa', 1);
    const r = await client.chat(dstack.url, { model: 'test/model', messages: [{ role: 'user', content: 'x' }] });
    const msg = r.json.choices[0].message;
    assert.equal(msg.content.slice(0, 130), msg.reasoning_content.slice(0, 130));
    assert.deepEqual([r.decrypted.choices[0].message.content, r.decrypted.choices[0].message.reasoning_content], ['c', 'r']);
    dstack.ephemeral = 'per-field';
    try {
      engine.enqueue({ json: completionWith({ model: 'test/model', message: { content: 'c', reasoning_content: 'r' } }) });
      const r2 = await client.chat(dstack.url, { model: 'test/model', messages: [{ role: 'user', content: 'x' }] });
      const m2 = r2.json.choices[0].message;
      assert.notEqual(m2.content.slice(0, 130), m2.reasoning_content.slice(0, 130));
      assert.equal(r2.error, null);
    } finally {
      dstack.ephemeral = 'per-request';
    }
  });

  test('tampered request envelope → e2ee_decryption_failed, nothing reaches the engine; a failed request burns no nonce', async () => {
    const client = await dstackClient('ecdsa', 2);
    const sent = client.encryptRequest({ model: 'test/model', messages: [{ role: 'user', content: 'tamper' }] });
    const bad = structuredClone(sent.body);
    const b = unhex(bad.messages[0].content);
    b[b.length - 1] ^= 1;
    bad.messages[0].content = hex(b);
    const post = (body) => request(`${dstack.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...sent.headers }, body: JSON.stringify(body) });
    assertPhError(await post(bad), 'e2ee_decryption_failed');
    assert.equal(engine.count, 0);
    const ok = await post(sent.body); // same nonce and timestamp
    assert.equal(ok.status, 200, ok.text);
    assertPhError(await post(sent.body), 'e2ee_replay_detected');
    assert.equal(engine.count, 1);
  });

  test('wrong AAD (another model, message index, nonce) → e2ee_decryption_failed; too short → e2ee_decryption_failed; non-hex / "" → invalid_e2ee_request', async () => {
    const client = await dstackClient('ed25519', 2);
    for (const hook of [(w, a) => a.replace('model=test/model', 'model=other'), (w, a) => a.replace('|m=0|', '|m=1|'), (w, a) => a.replace('|n=', '|n=x')]) {
      const r = await client.chat(dstack.url, { model: 'test/model', messages: [{ role: 'user', content: 'x' }] }, { aad: hook });
      assertPhError({ status: r.status, json: r.json }, 'e2ee_decryption_failed');
    }
    const sent = client.encryptRequest({ model: 'test/model', messages: [{ role: 'user', content: 'x' }] });
    const send = (content, ctx = client.newContext()) =>
      request(`${dstack.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...client.headers(ctx) }, body: JSON.stringify({ model: 'test/model', messages: [{ role: 'user', content }] }) });
    assertPhError(await send(sent.body.messages[0].content.slice(0, 118)), 'e2ee_decryption_failed');
    assertPhError(await send('not hex'), 'invalid_e2ee_request');
    assertPhError(await send(''), 'invalid_e2ee_request');
    // Non-UTF-8 plaintext.
    const ctx = client.newContext();
    const aad = fp.requestAad({ algo: 'ed25519', model: 'test/model', m: 0, c: '-', nonce: ctx.nonce, ts: ctx.ts });
    const env = fp.seal('x25519-aesgcm', fp.modelEncryptionKey('ed25519', client.modelKey), Buffer.from([0xff, 0xfe, 0x41]), { aad });
    assertPhError(await send(hex(env), ctx), 'invalid_e2ee_request');
    assert.equal(engine.count, 0);
  });

  test('timestamp outside the 300 s window either way → e2ee_invalid_timestamp; at the edge it passes', async () => {
    const client = await dstackClient('ecdsa', 2);
    const now = Math.floor(Date.now() / 1000);
    for (const ts of [now - 400, now + 400]) {
      const r = await client.chat(dstack.url, { model: 'test/model', messages: [{ role: 'user', content: 'x' }] }, { ctx: { ts } });
      assertPhError({ status: r.status, json: r.json }, 'e2ee_invalid_timestamp');
    }
    const r = await client.chat(dstack.url, { model: 'test/model', messages: [{ role: 'user', content: 'x' }] }, { ctx: { ts: now - 290 } });
    assert.equal(r.status, 200);
  });

  test('§3 negotiation errors, in order, with the §9 body', async () => {
    const client = await dstackClient('ecdsa', 2);
    const base = client.headers(client.newContext());
    const enc = client.encryptRequest({ model: 'test/model', messages: [{ role: 'user', content: 'x' }] });
    const post = (headers, body = enc.body) => request(`${dstack.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    const drop = (h, k) => Object.fromEntries(Object.entries(h).filter(([x]) => x !== k));
    assertPhError(await post(drop(base, 'X-Model-Pub-Key')), 'e2ee_header_missing');
    assertPhError(await post({ ...base, 'X-Signing-Algo': 'rsa' }), 'e2ee_invalid_signing_algo');
    assertPhError(await post({ ...base, 'X-Client-Pub-Key': 'zz' }), 'e2ee_invalid_public_key');
    assertPhError(await post({ ...base, 'X-Model-Pub-Key': fp.KeyPair.ecdsa().signingPublicKeyHex }), 'e2ee_model_key_mismatch');
    assertPhError(await post({ ...base, 'X-Model-Pub-Key': 'abcd' }), 'invalid_e2ee_request');
    assertPhError(await post({ ...base, 'X-E2EE-Version': '3' }), 'e2ee_invalid_version');
    assertPhError(await post(drop(base, 'X-E2EE-Timestamp')), 'e2ee_header_missing');
    assertPhError(await post({ ...base, 'X-E2EE-Nonce': 'short' }), 'e2ee_invalid_nonce');
    assertPhError(await post({ ...base, 'X-E2EE-Timestamp': '12a' }), 'e2ee_invalid_timestamp');
    assertPhError(await post({ ...drop(drop(base, 'X-E2EE-Nonce'), 'X-E2EE-Timestamp'), 'X-E2EE-Version': '2' }), 'e2ee_header_missing');
    assert.equal(engine.count, 0);
    // Quirk (§3 step 8): version 1 with nonce + timestamp is v2.
    const q = await post({ ...enc.headers, 'X-E2EE-Version': '1' });
    assert.equal(q.status, 200, q.text);
    assert.equal(q.headers['x-e2ee-version'], '2');
    // Canonical int(): "+0<ts>" is accepted and the AAD uses the canonical decimal.
    const ctx = client.newContext();
    const sent = client.encryptRequest({ model: 'test/model', messages: [{ role: 'user', content: 'x' }] }, { ctx });
    const r = await post({ ...sent.headers, 'X-E2EE-Timestamp': `+0${ctx.ts}` }, sent.body);
    assert.equal(r.status, 200, r.text);
  });

  test('plain requests: X-E2EE-Applied false; /v1/completions refuses any E2EE header', async () => {
    const plain = await request(`${dstack.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'X-E2EE-Version': '2' }, body: { model: 'test/model', messages: [{ role: 'user', content: 'plain' }] } });
    assert.equal(plain.status, 200);
    assert.equal(plain.headers['x-e2ee-applied'], 'false');
    assert.equal(plain.json().choices[0].message.content, 'echo: plain');
    const comp = await request(`${dstack.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'X-E2EE-Nonce': 'abcdefabcdefabcdef' }, body: { model: 'test/model', prompt: 'p' } });
    assertPhError({ status: comp.status, json: comp.json() }, 'invalid_e2ee_request');
    assert.equal(comp.json().error.message, 'E2EE is only supported on /v1/chat/completions');
  });

  test('faults: a plaintext answer fails closed in the client; missing X-E2EE-Applied and wrong version/algo headers are reported; a tampered answer does not open', async () => {
    const client = await dstackClient('ecdsa', 2);
    const body = { model: 'test/model', messages: [{ role: 'user', content: 'fault' }] };
    dstack.setFaults({ plaintextResponse: true });
    let r = await client.chat(dstack.url, body);
    assert.equal(r.error?.code, 'not_envelope');
    r = await client.chat(dstack.url, { ...body, stream: true });
    assert.equal(r.error?.code, 'not_envelope');
    dstack.setFaults({ omitApplied: true });
    r = await client.chat(dstack.url, body);
    assert.deepEqual(r.headerProblems, ['X-E2EE-Applied is undefined']);
    dstack.setFaults({ wrongVersionHeader: true, wrongAlgoHeader: true });
    r = await client.chat(dstack.url, body);
    assert.equal(r.headerProblems.length, 2);
    dstack.setFaults({ tamperResponse: true });
    r = await client.chat(dstack.url, { ...body, stream: true });
    assert.equal(r.error?.code, 'decryption_failed');
    // A whitespace-only answer passes as plaintext; allowPlaintext lets non-envelopes through.
    dstack.setFaults({ plaintextResponse: true });
    engine.enqueue({ json: completionWith({ model: 'test/model', message: { content: ' \n' } }) });
    r = await client.chat(dstack.url, body);
    assert.equal(r.error, null);
    assert.equal(r.decrypted.choices[0].message.content, ' \n');
  });

  test('report: report_data = identity padded to 32 ‖ nonce; the knobs break exactly the check they target; §2 errors', async () => {
    for (const algo of ['ecdsa', 'ed25519']) {
      const rep = await fp.fetchDstackReport(dstack.url, { algo });
      const v = fp.verifyDstackReport(rep.json, { algo, nonce: rep.nonce });
      assert.deepEqual(v.errors, []);
      assert.equal(rep.json.signing_public_key.length, algo === 'ecdsa' ? 128 : 64);
      assert.equal(rep.json.all_attestations[0].signing_public_key, rep.json.signing_public_key);
      const rd = v.quote.reportData;
      const identity = algo === 'ecdsa' ? unhex(rep.json.signing_address.slice(2)) : unhex(rep.json.signing_public_key);
      assert.equal(hex(rd), hex(identity) + '00'.repeat(32 - identity.length) + rep.nonce);
    }
    const cases = [
      [{ nonceEcho: 'wrong' }, /request_nonce/],
      [{ reportNonce: 'wrong' }, /REPORTDATA/],
      [{ identity: fp.KeyPair.ecdsa().identity }, /REPORTDATA/],
      [{ debug: true }, /debug/],
      [{ teeType: 0 }, /not TDX/],
      [{ omitQuote: true }, /no intel_quote/],
    ];
    for (const [report, re] of cases) {
      dstack.setFaults({ report });
      const rep = await fp.fetchDstackReport(dstack.url, { algo: 'ecdsa' });
      const v = fp.verifyDstackReport(rep.json, { algo: 'ecdsa', nonce: rep.nonce });
      assert.equal(v.errors.length, 1, JSON.stringify(v.errors));
      assert.match(v.errors[0], re);
    }
    dstack.clearFaults();
    const badAlgo = await fp.fetchDstackReport(dstack.url, { algo: 'rsa' });
    assert.equal(badAlgo.status, 400);
    assert.equal(badAlgo.json.error.type, 'invalid_signing_algo');
    assert.deepEqual((await fp.fetchDstackReport(dstack.url, { nonce: 'zz' })).json, { detail: 'Nonce must be hex-encoded' });
    assert.deepEqual((await fp.fetchDstackReport(dstack.url, { nonce: 'ab'.repeat(16) })).json, { detail: 'Nonce must be 32 bytes' });
  });

  test('with a token: 401 without it / with a wrong one', async () => {
    const guarded = await startFakeDstack({ engineUrl: engine.url, token: 'tok' });
    try {
      assert.equal((await fp.fetchDstackReport(guarded.url, {})).status, 401);
      const wrong = await fp.fetchDstackReport(guarded.url, { token: 'nope' });
      assert.deepEqual([wrong.status, wrong.json], [401, { detail: 'Invalid token' }]);
      assert.equal((await fp.fetchDstackReport(guarded.url, { token: 'tok' })).status, 200);
    } finally {
      await guarded.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------

async function nearClient(algo, version, opts = {}) {
  const model = 'test/model';
  const rep = await fp.fetchNearReport(near.url, { model, algo, nonce: fp.randomHex(32) });
  assert.equal(rep.status, 200, rep.text);
  const key = fp.nearModelKey(rep.json, { model, algo });
  assert.ok(key);
  return new fp.FieldClient({ family: 'near', algo, version, modelKey: key, ...opts });
}

describe('fake NEAR ↔ client', () => {
  const variants = [
    { algo: 'ecdsa', version: 1, label: 'ecdsa' },
    { algo: 'ed25519', version: 1, label: 'ed25519 v1 (client XSalsa20 box, server ChaChaBox)' },
    { algo: 'ed25519', version: 1, boxCipher: 'chacha', label: 'ed25519 v1 (client ChaChaBox)' },
    { algo: 'ed25519', version: 2, label: 'ed25519 v2 (XChaCha20-Poly1305)' },
  ];
  for (const v of variants) {
    for (const stream of [false, true]) {
      test(`${v.label} ${stream ? 'stream' : 'non-stream'}`, async () => {
        const client = await nearClient(v.algo, v.version, v.boxCipher ? { boxCipher: v.boxCipher } : {});
        const m = marker();
        const r = await client.chat(near.url, { model: 'test/model', stream, messages: [{ role: 'system', content: `s ${m}` }, { role: 'user', content: `u ${m}` }] });
        assert.equal(r.status, 200, r.body?.toString());
        assert.equal(r.error, null, String(r.error));
        assert.deepEqual(near.last.forwarded.messages.map((x) => x.content), [`s ${m}`, `u ${m}`]);
        assert.deepEqual(near.last.e2ee, { algo: v.algo, version: v.version, allFields: false });
        const answer = stream ? r.stream.content : r.decrypted.choices[0].message.content;
        assert.equal(answer, `echo: u ${m}`);
        if (v.algo === 'ed25519' && v.version === 1) {
          const env = stream ? r.stream.events.find((e) => e.json.choices[0]?.delta?.content?.length > 100).json.choices[0].delta.content : r.json.choices[0].message.content;
          assert.equal(fp.boxCipherOf(client.identity.encryptionSecret, unhex(env)), 'chacha', 'NIP encrypts v1 with ChaChaBox');
        }
        if (stream) {
          const first = r.stream.events[0].json.choices[0].delta;
          assert.equal(first.content, '', 'NIP leaves "" unencrypted');
        }
      });
    }
  }

  test('a fresh ephemeral key per field; a v1 server on XSalsa20 is read by the client too', async () => {
    engine.enqueue({ json: completionWith({ model: 'test/model', message: { content: 'c', reasoning_content: 'r' } }) });
    const client = await nearClient('ecdsa', 1);
    const r = await client.chat(near.url, { model: 'test/model', messages: [{ role: 'user', content: 'x' }] });
    const msg = r.json.choices[0].message;
    assert.notEqual(msg.content.slice(0, 130), msg.reasoning_content.slice(0, 130));
    assert.equal(r.decrypted.choices[0].message.reasoning_content, 'r');
    const salsa = await startFakeNear({ engineUrl: engine.url, v1Cipher: 'salsa' });
    try {
      const rep = await fp.fetchNearReport(salsa.url, { model: 'test/model', algo: 'ed25519' });
      const c = new fp.FieldClient({ family: 'near', algo: 'ed25519', version: 1, modelKey: fp.nearModelKey(rep.json, { model: 'test/model', algo: 'ed25519' }) });
      const r2 = await c.chat(salsa.url, { model: 'test/model', messages: [{ role: 'user', content: 'salsa' }] });
      assert.equal(r2.decrypted.choices[0].message.content, 'echo: salsa');
      assert.equal(fp.boxCipherOf(c.identity.encryptionSecret, unhex(r2.json.choices[0].message.content)), 'salsa');
    } finally {
      await salsa.close();
    }
  });

  test('X-Encrypt-All-Fields: tools, tool_choice, tool-call history and the answer\'s tool calls are encrypted; without it they are plaintext', async () => {
    const m = marker();
    const tools = [{ type: 'function', function: { name: `get_${m}`, description: `desc ${m}`, parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    const body = {
      model: 'test/model',
      messages: [
        { role: 'user', content: `weather ${m}` },
        { role: 'assistant', content: null, tool_calls: [toolCall('call_0', `get_${m}`, { city: `Oslo ${m}` })] },
        { role: 'tool', tool_call_id: 'call_0', content: `sunny ${m}` },
      ],
      tools,
      tool_choice: { type: 'function', function: { name: `get_${m}` } },
    };
    const answer = completionWith({ model: 'test/model', message: { content: null, tool_calls: [toolCall('call_1', `get_${m}`, { city: `Paris ${m}` })] }, finishReason: 'tool_calls' });
    engine.enqueue({ json: answer });
    const client = await nearClient('ed25519', 2, { allFields: true });
    const r = await client.chat(near.url, body);
    assert.equal(r.status, 200, r.body?.toString());
    assert.equal(r.sent.headers['X-Encrypt-All-Fields'], 'true');
    assert.ok(!JSON.stringify(r.sent.body).includes(m), 'nothing with the marker in the request');
    assert.ok(!r.body.toString().includes(m), 'nothing with the marker in the answer');
    const fwd = near.last.forwarded;
    assert.deepEqual(fwd.tools, tools, 'parameters come back as the object');
    assert.deepEqual(fwd.tool_choice, body.tool_choice);
    assert.deepEqual(fwd.messages[1].tool_calls, body.messages[1].tool_calls);
    assert.equal(fwd.messages[2].content, `sunny ${m}`);
    assert.deepEqual(r.decrypted.choices[0].message.tool_calls, answer.choices[0].message.tool_calls);
    // Without all-fields the tool parts travel in plaintext both ways (§10.4).
    engine.enqueue({ json: answer });
    const plain = await nearClient('ed25519', 2);
    const r2 = await plain.chat(near.url, body);
    assert.equal(r2.status, 200);
    assert.ok(JSON.stringify(r2.sent.body.tools).includes(m));
    assert.ok(r2.body.toString().includes(`Paris ${m}`));
    // All-fields is lenient: a plaintext tool name passes through.
    const lenient = client.encryptRequest(body);
    lenient.body.tools[0].function.name = 'plain_name';
    const r3 = await request(`${near.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...lenient.headers }, body: JSON.stringify(lenient.body) });
    assert.equal(r3.status, 200, r3.text);
    assert.equal(near.last.forwarded.tools[0].function.name, 'plain_name');
  });

  test('all-fields stream: tool-call fragments and logprobs tokens/bytes are encrypted and decrypt', async () => {
    const m = marker();
    engine.enqueue({ frames: deltaFrames({ model: 'test/model', deltas: toolCallDeltas(0, 'call_9', `fn_${m}`, `{"q":"${m}"}`, 3), finishReason: 'tool_calls' }) });
    const client = await nearClient('ecdsa', 1, { allFields: true });
    const r = await client.chat(near.url, { model: 'test/model', stream: true, messages: [{ role: 'user', content: 'tools' }] });
    assert.equal(r.error, null, String(r.error));
    assert.ok(!r.stream.rawLines.join('\n').includes(m));
    const calls = r.stream.events.flatMap((e) => e.decrypted.choices[0]?.delta?.tool_calls ?? []);
    assert.equal(calls.map((c) => c.function.arguments ?? '').join(''), `{"q":"${m}"}`);
    assert.equal(calls[0].function.name, `fn_${m}`);
    const logprobs = { content: [{ token: `tok ${m}`, logprob: -0.1, bytes: [116, 111, 107], top_logprobs: [{ token: `alt ${m}`, logprob: -2, bytes: [97] }] }], refusal: null };
    const withLp = completionWith({ model: 'test/model', message: { content: 'x' } });
    withLp.choices[0].logprobs = logprobs;
    engine.enqueue({ json: withLp });
    const r2 = await client.chat(near.url, { model: 'test/model', messages: [{ role: 'user', content: 'lp' }] });
    assert.ok(!r2.body.toString().includes(m));
    assert.equal(typeof r2.json.choices[0].logprobs.content[0].bytes, 'string', 'bytes are JSON-serialised and encrypted');
    assert.deepEqual(r2.decrypted.choices[0].logprobs, logprobs);
  });

  test('a stale X-Model-Pub-Key after rotation → 421 provider_error; a fresh report works', async () => {
    const client = await nearClient('ed25519', 2);
    near.rotateKeys();
    const r = await client.chat(near.url, { model: 'test/model', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 421);
    assert.deepEqual(r.json, NEAR_421_BODY);
    assert.equal(engine.count, 0);
    const fresh = await nearClient('ed25519', 2);
    assert.equal((await fresh.chat(near.url, { model: 'test/model', messages: [{ role: 'user', content: 'x' }] })).status, 200);
  });

  test('§10.1/10.2 errors: one header alone, bad algo, bad key length, version 3; non-numeric version = 1; "Decryption failed"; not hex; non-UTF-8', async () => {
    const client = await nearClient('ed25519', 1);
    const sent = client.encryptRequest({ model: 'test/model', messages: [{ role: 'user', content: 'x' }] });
    const post = (headers, body = sent.body) =>
      request(`${near.url}/v1/chat/completions`, { method: 'POST', headers: Object.fromEntries(Object.entries({ 'content-type': 'application/json', ...headers }).filter(([, v]) => v !== undefined)), body: JSON.stringify(body) });
    const bad = async (headers, message, body) => {
      const r = await post(headers, body);
      assert.equal(r.status, 400, r.text);
      assert.deepEqual(r.json(), { error: { message, type: 'bad_request', param: null, code: null } });
    };
    await bad({ 'X-Signing-Algo': 'ed25519' }, 'Both X-Signing-Algo and X-Client-Pub-Key headers must be present together');
    await bad({ ...sent.headers, 'X-Model-Pub-Key': undefined, 'X-Signing-Algo': 'rsa' }, "Invalid X-Signing-Algo: rsa. Must be 'ecdsa' or 'ed25519'");
    await bad({ ...sent.headers, 'X-Client-Pub-Key': 'abcd' }, 'Ed25519 client public key must be 32 bytes, got 2');
    await bad({ ...sent.headers, 'X-Encryption-Version': '3' }, 'Unsupported X-Encryption-Version: 3');
    const ok = await post({ ...sent.headers, 'X-Encryption-Version': 'two' });
    assert.equal(ok.status, 200, 'a non-numeric version is v1');
    const v2 = new fp.FieldClient({ family: 'near', algo: 'ed25519', version: 2, modelKey: client.modelKey, identity: client.identity });
    await bad({ ...sent.headers }, 'Decryption failed', v2.encryptRequest({ model: 'test/model', messages: [{ role: 'user', content: 'x' }] }).body);
    await bad({ ...sent.headers }, 'Encrypted field is not valid hex', { model: 'test/model', messages: [{ role: 'user', content: 'plaintext' }] });
    const notUtf8 = hex(fp.seal('nacl-box', fp.modelEncryptionKey('ed25519', client.modelKey), Buffer.from([0xc3, 0x28]), { boxCipher: 'salsa' }));
    await bad({ ...sent.headers }, 'Decrypted content is not valid UTF-8', { model: 'test/model', messages: [{ role: 'user', content: notUtf8 }] });
    const lowOrder = await post({ ...sent.headers, 'X-Client-Pub-Key': '01' + '00'.repeat(31) });
    assert.equal(lowOrder.status, 400, 'a low-order client key is refused');
  });

  test('report: model_attestations carry the key; report_data binds it and the nonce', async () => {
    const nonce = fp.randomHex(32);
    const rep = await fp.fetchNearReport(near.url, { model: 'test/model', algo: 'ecdsa', nonce });
    assert.equal(rep.status, 200);
    const entry = rep.json.model_attestations[0];
    assert.equal(entry.model, 'test/model');
    const v = fp.verifyDstackReport({ ...entry, all_attestations: [entry] }, { algo: 'ecdsa', nonce });
    assert.deepEqual(v.errors, []);
    assert.equal(entry.signing_public_key, near.keys.ecdsa.signingPublicKeyHex);
    assert.equal((await fp.fetchNearReport(near.url, { model: 'no/such', algo: 'ecdsa' })).status, 404);
  });
});

// ---------------------------------------------------------------------------------------------

async function veniceClient(opts = {}) {
  const model = opts.model ?? 'e2ee-test-model';
  const att = await fp.fetchVeniceAttestation(venice.url, { model });
  assert.equal(att.status, 200, att.text);
  const v = fp.verifyVeniceAttestation(att.json, { model, nonce: att.nonce });
  assert.deepEqual(v.errors, []);
  return new fp.FieldClient({ family: 'venice', modelKey: v.modelKeyHex, ...opts });
}

describe('fake Venice ↔ client', () => {
  test('models: supportsE2EE per model', async () => {
    const r = await request(`${venice.url}/api/v1/models`);
    const data = r.json().data;
    assert.deepEqual(data.map((m) => [m.id, m.type, m.model_spec.capabilities.supportsE2EE]), [['e2ee-test-model', 'text', true], ['plain-model', 'text', false]]);
  });

  test('stream: every role sealed, the TEE sees plaintext, each chunk has its own server key, whitespace tokens stay plaintext', async () => {
    const m = marker();
    const pieces = ['Hello', ' ', `world ${m}`, '\n', '!'];
    engine.enqueue({ frames: chatFrames({ model: 'e2ee-test-model', pieces }) });
    const client = await veniceClient();
    const r = await client.chat(venice.url, { model: 'e2ee-test-model', messages: [{ role: 'system', content: `sys ${m}` }, { role: 'assistant', content: `prev ${m}` }, { role: 'user', content: `hi ${m}` }] });
    assert.equal(r.status, 200, r.body?.toString());
    assert.equal(r.error, null, String(r.error));
    assert.equal(r.sent.headers['X-Venice-TEE-Client-Pub-Key'].length, 130);
    assert.equal(r.sent.headers['X-Venice-TEE-Signing-Algo'], 'ecdsa');
    assert.deepEqual(venice.last.forwarded.messages.map((x) => x.content), [`sys ${m}`, `prev ${m}`, `hi ${m}`]);
    assert.deepEqual(venice.last.veniceParameters, { enable_e2ee: true, include_venice_system_prompt: false });
    assert.equal(engine.requests.at(-1).json.venice_parameters, undefined);
    assert.equal(r.stream.content, pieces.join(''));
    const contents = r.stream.events.map((e) => e.json.choices[0]?.delta?.content).filter((c) => typeof c === 'string' && c !== '');
    assert.deepEqual(contents.filter((c) => /^\s+$/.test(c)), [' ', '\n']);
    const sealedKeys = contents.filter((c) => c.length >= 186).map((c) => c.slice(0, 130));
    assert.equal(sealedKeys.length, 3);
    assert.equal(new Set(sealedKeys).size, 3, 'a fresh server ephemeral key per chunk');
    assert.ok(!r.stream.rawLines.join('\n').includes(m));
  });

  test('non-stream with E2EE headers → 400 "E2EE requires streaming"; plaintext content → "Encrypted field is not valid hex"; compressed client key → "Invalid public key"', async () => {
    const client = await veniceClient();
    const sent = client.encryptRequest({ model: 'e2ee-test-model', messages: [{ role: 'user', content: 'x' }] });
    const post = (headers, body) => request(`${venice.url}/api/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    let r = await post(sent.headers, { ...sent.body, stream: false });
    assert.deepEqual([r.status, r.json()], [400, { error: 'E2EE requires streaming' }]);
    r = await post(sent.headers, { ...sent.body, messages: [...sent.body.messages, { role: 'assistant', content: 'plain turn' }] });
    assert.deepEqual([r.status, r.json()], [400, { error: 'Encrypted field is not valid hex' }]);
    const compressed = secpCompressed(client.identity.publicKey).toString('hex');
    r = await post({ ...sent.headers, 'X-Venice-TEE-Client-Pub-Key': compressed }, sent.body);
    assert.deepEqual([r.status, r.json()], [400, { error: 'Invalid public key' }]);
    assert.equal(engine.count, 0);
  });

  test('key rotation: a request sealed to the old key → 400 "Failed to decrypt field"; re-attesting works', async () => {
    const client = await veniceClient();
    venice.rotateKeys('e2ee-test-model');
    const r = await client.chat(venice.url, { model: 'e2ee-test-model', messages: [{ role: 'user', content: 'x' }] });
    assert.deepEqual([r.status, r.json], [400, { error: 'Failed to decrypt field' }]);
    const fresh = await veniceClient();
    const r2 = await fresh.chat(venice.url, { model: 'e2ee-test-model', messages: [{ role: 'user', content: 'again' }] });
    assert.equal(r2.stream.content, 'echo: again');
  });

  test('faults: plaintext content chunks and a tampered chunk fail closed in the client; tools are recorded as stripped', async () => {
    const client = await veniceClient();
    venice.setFaults({ plaintextContent: true });
    let r = await client.chat(venice.url, { model: 'e2ee-test-model', messages: [{ role: 'user', content: 'plain please' }] });
    assert.equal(r.error?.code, 'not_envelope');
    venice.setFaults({ tamperChunk: 1 });
    r = await client.chat(venice.url, { model: 'e2ee-test-model', messages: [{ role: 'user', content: 'a b c' }] });
    assert.equal(r.error?.code, 'decryption_failed');
    assert.equal(r.stream.events.filter((e) => e.decrypted).length >= 2, true, 'chunks before the tampered one decrypted');
    venice.clearFaults();
    r = await client.chat(venice.url, { model: 'e2ee-test-model', tools: [{ type: 'function', function: { name: 'f' } }], messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 200);
    assert.deepEqual(venice.last.e2ee.stripped, ['tools']);
    assert.equal(engine.requests.at(-1).json.tools, undefined);
  });

  test('attestation: both server_verification shapes, SHA-256 nonce binding, base64 quote and signing_key are accepted', async () => {
    for (const attestation of [{}, { shape: 'boolean' }, { nonceMethod: 'sha256' }, { quoteEncoding: 'base64' }, { keyField: 'signing_key' }, { keyField: 'both' }]) {
      venice.setFaults({ attestation });
      const att = await fp.fetchVeniceAttestation(venice.url, { model: 'e2ee-test-model' });
      const v = fp.verifyVeniceAttestation(att.json, { model: 'e2ee-test-model', nonce: att.nonce });
      assert.deepEqual(v.errors, [], JSON.stringify(attestation));
      assert.equal(v.nonceMethod, attestation.nonceMethod === 'sha256' ? 'sha256' : 'raw');
      assert.equal(v.modelKeyHex, fp.hex(venice.keyOf('e2ee-test-model').publicKey));
      if (attestation.shape === 'boolean') assert.equal(att.json.server_verification.nonceBinding, true);
    }
    const raw = await fp.fetchVeniceAttestation(venice.url, { model: 'e2ee-test-model' });
    const quote = fp.decodeQuote(raw.json.intel_quote);
    const addr = unhex(raw.json.signing_address.slice(2));
    assert.equal(hex(quote.subarray(568, 632)), hex(addr) + '00'.repeat(12) + raw.nonce, 'REPORTDATA = address ‖ 12 zeros ‖ nonce');
  });

  test('attestation faults: each breaks exactly its check', async () => {
    const cases = [
      [{ nonceEcho: 'wrong' }, /nonce echo/],
      [{ reportNonce: 'wrong' }, /REPORTDATA\[32\.\.64\)/],
      [{ address: 'wrong' }, /REPORTDATA\[0\.\.20\)/],
      [{ signingAddress: 'wrong' }, /signing_address/],
      [{ debug: true }, /debug/],
      [{ teeType: 0 }, /not TDX/],
      [{ verified: false }, /verified/],
      [{ modelEcho: 'wrong' }, /model/],
      [{ svTdxValid: false }, /tdx\.valid/],
      [{ svNonceBound: false, shape: 'boolean' }, /nonceBinding/],
      [{ omitQuote: true }, /no intel_quote/],
    ];
    for (const [attestation, re] of cases) {
      venice.setFaults({ attestation });
      const att = await fp.fetchVeniceAttestation(venice.url, { model: 'e2ee-test-model' });
      assert.equal(att.status, 200);
      const v = fp.verifyVeniceAttestation(att.json, { model: 'e2ee-test-model', nonce: att.nonce });
      assert.equal(v.ok, false, JSON.stringify(attestation));
      assert.equal(v.errors.length, 1, `${JSON.stringify(attestation)}: ${JSON.stringify(v.errors)}`);
      assert.match(v.errors[0], re);
    }
    venice.clearFaults();
    const short = await request(`${venice.url}/api/v1/tee/attestation?model=e2ee-test-model&nonce=${fp.randomHex(16)}`);
    assert.deepEqual([short.status, short.json()], [400, { error: 'Nonce must be exactly 32 bytes' }]);
    assert.equal((await fp.fetchVeniceAttestation(venice.url, { model: 'plain-model' })).status, 404);
  });
});
