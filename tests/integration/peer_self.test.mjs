// The Node Chutes peer (lib/chutes_peer.mjs) against itself and against known answers derived
// from the spec by hand, before it is trusted to judge the C++ programs: the §20 cross-check
// vector, a request blob assembled step by step per §6 that the fake instance must open, a
// response opened step by step per §9, and the §10.1 stream framing checked byte for byte.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { gzipSync, gunzipSync } from 'node:zlib';
import { ml_kem768 } from './lib/deps.mjs';
import { request } from './lib/http.mjs';
import { startEngine, chatFrames, CREATED } from './lib/engine.mjs';
import * as peer from './lib/chutes_peer.mjs';

const CHUTE = '5f0e4a8c-1b2d-4e3f-8a9b-0c1d2e3f4a5b';
const OTHER_CHUTE = '0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d';
const KEY = 'cpk_test_user';
const MODELS = [
  { id: 'test/model', chute_id: CHUTE, confidential_compute: true, root: 'test/model-root' },
  { id: 'other/model', chute_id: OTHER_CHUTE, confidential_compute: false, root: 'other/model' },
];

let engine;
let fake;
before(async () => {
  engine = await startEngine();
  fake = await peer.startFakeChutes({ models: MODELS, engineUrl: engine.url, instances: 3, discoveriesPerMinute: Infinity });
});
after(async () => {
  await fake?.close();
  await engine?.close();
});

const unhex = (h) => Buffer.from(h, 'hex');

// A fresh discovery through raw HTTP (not the peer's discover()), for the known-answer tests.
async function discoverRaw(user = KEY, chute = CHUTE) {
  const res = await request(`${fake.url}/e2e/instances/${chute}`, { headers: { authorization: `Bearer ${user}` } });
  assert.equal(res.status, 200, res.text);
  return res.json();
}

function invokeHeaders({ instance, nonce, stream = false, path = '/v1/chat/completions', user = KEY, chute = CHUTE }) {
  return {
    authorization: `Bearer ${user}`,
    'x-chute-id': chute,
    'x-instance-id': instance.instance_id,
    'x-e2e-nonce': nonce,
    'x-e2e-stream': String(stream),
    'x-e2e-path': path,
    'content-type': 'application/octet-stream',
  };
}

describe('primitives against the spec §20 cross-check vector', () => {
  test('ChaCha20-Poly1305(key=32×01, nonce=12×02, "hi") = 8e75 ‖ 5d6240e2f604d0e83d2c62df42b24276', () => {
    const sealed = peer.aeadSeal(Buffer.alloc(32, 1), Buffer.alloc(12, 2), Buffer.from('hi'));
    assert.equal(sealed.toString('hex'), '8e75' + '5d6240e2f604d0e83d2c62df42b24276');
    assert.equal(peer.aeadOpen(Buffer.alloc(32, 1), Buffer.alloc(12, 2), sealed).toString(), 'hi');
    const bad = Buffer.from(sealed);
    bad[0] ^= 1;
    assert.throws(() => peer.aeadOpen(Buffer.alloc(32, 1), Buffer.alloc(12, 2), bad));
  });

  test('HKDF-SHA256(ikm=32×03, salt=16×04, info="e2e-req-v1") per the spec and per the §5 HMAC reduction', () => {
    const expected = '2bc17e165acacef0681514871e823032da70a64dc51e5f400f4f20e16c2bd36f';
    // deriveKey takes the salt from the first 16 bytes of the KEM ciphertext.
    const kemCt = Buffer.concat([Buffer.alloc(16, 4), randomBytes(peer.KEM_CT_LEN - 16)]);
    assert.equal(peer.deriveKey(Buffer.alloc(32, 3), kemCt, peer.INFO_REQ).toString('hex'), expected);
    // §5: PRK = HMAC(salt, ss); k = HMAC(PRK, info ‖ 0x01).
    const prk = createHmac('sha256', Buffer.alloc(16, 4)).update(Buffer.alloc(32, 3)).digest();
    const k = createHmac('sha256', prk).update(Buffer.concat([Buffer.from('e2e-req-v1'), Buffer.from([1])])).digest();
    assert.equal(k.toString('hex'), expected);
  });

  test('ML-KEM-768 sizes are the §2 constants and the three infos give three keys', () => {
    const { publicKey, secretKey } = ml_kem768.keygen();
    const { cipherText, sharedSecret } = ml_kem768.encapsulate(publicKey);
    assert.deepEqual([publicKey.length, secretKey.length, cipherText.length, sharedSecret.length], [1184, 2400, 1088, 32]);
    const keys = [peer.INFO_REQ, peer.INFO_RESP, peer.INFO_STREAM].map((i) => peer.deriveKey(sharedSecret, cipherText, i).toString('hex'));
    assert.equal(new Set(keys).size, 3);
    assert.deepEqual([peer.INFO_REQ, peer.INFO_RESP, peer.INFO_STREAM], ['e2e-req-v1', 'e2e-resp-v1', 'e2e-stream-v1']);
  });
});

describe('fake discovery (§4)', () => {
  test('shape: ≤5 instances, 1184-byte keys, 10 URL-safe 32-char nonces each, expiry 60 s', async () => {
    const before = Math.floor(Date.now() / 1000);
    const d = await peer.discover(fake.url, KEY, CHUTE);
    assert.equal(d.status, 200);
    assert.deepEqual(Object.keys(d.json).sort(), ['instances', 'nonce_expires_at', 'nonce_expires_in']);
    assert.equal(d.json.instances.length, 3);
    assert.equal(d.json.nonce_expires_in, 60);
    assert.ok(d.json.nonce_expires_at >= before + 60 && d.json.nonce_expires_at <= Math.floor(Date.now() / 1000) + 60);
    const ids = new Set();
    for (const inst of d.json.instances) {
      assert.match(inst.instance_id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      assert.equal(peer.unb64(inst.e2e_pubkey).length, 1184);
      assert.equal(inst.nonces.length, 10);
      for (const n of inst.nonces) assert.match(n, /^[A-Za-z0-9_-]{32}$/);
      ids.add(inst.instance_id);
    }
    assert.equal(ids.size, 3);
  });

  test('at most 5 instances even when the chute has more; each has its own key', async () => {
    const many = await peer.startFakeChutes({ models: MODELS, engineUrl: engine.url, instances: 7 });
    try {
      const d = await peer.discover(many.url, KEY, CHUTE);
      assert.equal(d.json.instances.length, 5);
      assert.equal(new Set(d.json.instances.map((i) => i.e2e_pubkey)).size, 5);
    } finally {
      await many.close();
    }
  });

  test('unknown chute → 404 Chute not found; 11th discovery in a minute → 429 with the exact detail', async () => {
    const limited = await peer.startFakeChutes({ models: MODELS, engineUrl: engine.url, discoveriesPerMinute: 10 });
    try {
      const missing = await peer.discover(limited.url, KEY, '00000000-0000-4000-8000-000000000000');
      assert.equal(missing.status, 404);
      assert.deepEqual(missing.json, { detail: 'Chute not found' });
      for (let i = 1; i < 10; i++) assert.equal((await peer.discover(limited.url, KEY, CHUTE)).status, 200);
      const limitedAnswer = await peer.discover(limited.url, KEY, CHUTE);
      assert.equal(limitedAnswer.status, 429);
      assert.equal(limitedAnswer.body.toString(), '{"detail":"Rate limit exceeded. Try again later."}');
      // The limit is per user.
      assert.equal((await peer.discover(limited.url, 'cpk_other_user', CHUTE)).status, 200);
      assert.equal(limited.discoveries.filter((d) => d.status === 429).length, 1);
    } finally {
      await limited.close();
    }
  });
});

describe('request blob built by hand per §6, answer opened by hand per §9', () => {
  test('the fake instance opens a hand-built blob; the engine gets the JSON minus e2e_response_pk; the response blob opens by hand to the engine bytes', async () => {
    const disc = await discoverRaw();
    const inst = disc.instances[0];
    const instanceKey = Buffer.from(inst.e2e_pubkey, 'base64');

    // The engine's exact answer bytes, odd spacing included (they must survive byte for byte).
    const engineAnswer = '{"id":"chatcmpl-hand",  "object":"chat.completion","created":1,"model":"test/model","choices":[{"index":0,"message":{"role":"assistant","content":"h\\u00e9llo"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}';
    engine.enqueue({ body: engineAnswer });
    const countBefore = engine.count;

    // Step 1: the client's fresh response key pair (deterministic from a seed).
    const resp = ml_kem768.keygen(new Uint8Array(64).fill(7));
    // Step 2: the JSON with e2e_response_pk; 2^64-1 and [] must survive as text.
    const json = `{"model":"test/model","messages":[{"role":"user","content":"hand built"}],"seed":18446744073709551615,"tools":[],"e2e_response_pk":"${Buffer.from(resp.publicKey).toString('base64')}"}`;
    // Step 3: gzip.
    const gz = gzipSync(Buffer.from(json));
    // Step 4: encapsulate to the instance key (deterministic m).
    const { cipherText, sharedSecret } = ml_kem768.encapsulate(instanceKey, new Uint8Array(32).fill(9));
    // Step 5: HKDF with salt = ct[0:16], info e2e-req-v1.
    const key = Buffer.from(hkdfSync('sha256', sharedSecret, Buffer.from(cipherText).subarray(0, 16), Buffer.from('e2e-req-v1'), 32));
    // Step 6: ChaCha20-Poly1305 with a 12-byte nonce, no AAD.
    const nonce = unhex('000102030405060708090a0b');
    const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    const ct = Buffer.concat([c.update(gz), c.final()]);
    const tag = c.getAuthTag();
    const blob = Buffer.concat([Buffer.from(cipherText), nonce, ct, tag]);
    assert.equal(blob.length, 1116 + gz.length);
    assert.deepEqual(blob.subarray(1088, 1100), nonce);

    const res = await request(`${fake.url}/e2e/invoke`, { method: 'POST', headers: invokeHeaders({ instance: inst, nonce: inst.nonces[0] }), body: blob });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['content-type'], 'application/octet-stream');

    const got = fake.received.at(-1);
    assert.equal(got.plaintext.toString(), json, 'the instance decrypted exactly the hand-built JSON');
    assert.equal(got.instanceId, inst.instance_id);
    assert.equal(engine.count, countBefore + 1);
    const sent = engine.requests.at(-1);
    assert.equal(sent.path, '/v1/chat/completions');
    assert.equal(sent.json.e2e_response_pk, undefined);
    assert.deepEqual(sent.json.messages, [{ role: 'user', content: 'hand built' }]);

    // §9 by hand: ct_resp ‖ nonce ‖ ciphertext ‖ tag, key from info e2e-resp-v1.
    const body = res.body;
    assert.ok(body.length >= 1116);
    const ctResp = body.subarray(0, 1088);
    const ss = ml_kem768.decapsulate(ctResp, resp.secretKey);
    const kResp = Buffer.from(hkdfSync('sha256', ss, ctResp.subarray(0, 16), Buffer.from('e2e-resp-v1'), 32));
    const d = createDecipheriv('chacha20-poly1305', kResp, body.subarray(1088, 1100), { authTagLength: 16 });
    d.setAuthTag(body.subarray(body.length - 16));
    const opened = gunzipSync(Buffer.concat([d.update(body.subarray(1100, body.length - 16)), d.final()]));
    assert.equal(opened.toString(), engineAnswer);
    // The peer's own opener agrees.
    assert.equal(peer.openResponse(body, resp.secretKey).toString(), engineAnswer);
  });

  test('a blob from sealRequest opens by hand with the instance secret key; text input is spliced, not re-serialized', () => {
    const inst = fake.instancesOf(CHUTE)[0];
    const text = '{"model":"m", "n":12345678901234567890, "a":[]}';
    const sealed = peer.sealRequest(Buffer.from(inst.publicKey).toString('base64'), text);
    const blob = sealed.blob;
    const ctReq = blob.subarray(0, 1088);
    const ss = ml_kem768.decapsulate(ctReq, inst.secretKey);
    const k = Buffer.from(hkdfSync('sha256', ss, ctReq.subarray(0, 16), Buffer.from('e2e-req-v1'), 32));
    const d = createDecipheriv('chacha20-poly1305', k, blob.subarray(1088, 1100), { authTagLength: 16 });
    d.setAuthTag(blob.subarray(blob.length - 16));
    const pt = gunzipSync(Buffer.concat([d.update(blob.subarray(1100, blob.length - 16)), d.final()])).toString();
    assert.equal(pt, `{"model":"m", "n":12345678901234567890, "a":[],"e2e_response_pk":"${Buffer.from(sealed.responsePublicKey).toString('base64')}"}`);
    assert.equal(sealed.responsePublicKey.length, 1184);
    // Two seals of the same input differ (fresh KEM, fresh nonce).
    assert.notDeepEqual(peer.sealRequest(Buffer.from(inst.publicKey).toString('base64'), text).blob.subarray(0, 1100), blob.subarray(0, 1100));
  });
});

// The engine's exact stream for the framing tests: vLLM frames with continuous usage, as the
// instance forces it.
function streamFixture() {
  return chatFrames({ model: 'test/model', pieces: ['Hel', 'lo ', 'wörld'], includeUsage: true, continuousUsage: true });
}

async function rawStream({ usageEvents }) {
  fake.usageEvents = usageEvents;
  const frames = streamFixture();
  engine.enqueue({ frames });
  const disc = await discoverRaw();
  const inst = disc.instances[0];
  const sealed = peer.sealRequest(inst.e2e_pubkey, { model: 'test/model', messages: [{ role: 'user', content: 'hi' }], stream: true });
  const res = await request(`${fake.url}/e2e/invoke`, { method: 'POST', headers: invokeHeaders({ instance: inst, nonce: inst.nonces[0], stream: true }), body: sealed.blob });
  fake.usageEvents = true;
  return { res, frames, sealed };
}

describe('stream framing byte-exact per §10.1/§10.2', () => {
  test('e2e_init, then per engine line (blank ones too) [usage event] + e2e event, [DONE] only inside ciphertext, nothing after', async () => {
    const { res, frames, sealed } = await rawStream({ usageEvents: true });
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'], /^text\/event-stream/);
    const body = res.text;
    const b64 = '[A-Za-z0-9+/]+={0,2}';
    assert.match(body, new RegExp(`^data: \\{"e2e_init":"${b64}"\\}\\n\\n((data: \\{"usage":[^\\n]*\\}\\n\\n)?data: \\{"e2e":"${b64}"\\}\\n\\n)+$`));
    assert.ok(!body.includes('[DONE]'), 'no plaintext [DONE]');

    // Decrypt by hand, event by event.
    const events = body.split('\n\n').slice(0, -1).map((e) => {
      assert.ok(e.startsWith('data: '));
      return JSON.parse(e.slice(6));
    });
    const initCt = Buffer.from(events[0].e2e_init, 'base64');
    assert.equal(initCt.length, 1088);
    const ss = ml_kem768.decapsulate(initCt, sealed.responseSecretKey);
    const k = Buffer.from(hkdfSync('sha256', ss, initCt.subarray(0, 16), Buffer.from('e2e-stream-v1'), 32));
    const engineLines = frames.join('').split(/(?<=\n)/);
    const expected = [];
    for (const line of engineLines) {
      if (line.startsWith('data: ') && line.includes('"usage"')) expected.push({ usage: JSON.parse(line.slice(6)).usage ?? null });
      expected.push({ e2e: line });
    }
    const actual = events.slice(1).map((ev) => {
      if ('usage' in ev) return ev;
      const raw = Buffer.from(ev.e2e, 'base64');
      const d = createDecipheriv('chacha20-poly1305', k, raw.subarray(0, 12), { authTagLength: 16 });
      d.setAuthTag(raw.subarray(raw.length - 16));
      return { e2e: Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()]).toString() };
    });
    assert.deepEqual(actual, expected);
    // The blank separator lines are their own chunks, and the last two are [DONE] and "\n".
    assert.deepEqual(actual.slice(-2), [{ e2e: 'data: [DONE]\n' }, { e2e: '\n' }]);
    assert.ok(actual.filter((a) => a.e2e === '\n').length === frames.length);
    // The usage events are compact JSON (orjson).
    for (const e of body.split('\n\n')) if (e.startsWith('data: {"usage"')) assert.equal(e.slice(6), JSON.stringify(JSON.parse(e.slice(6))));
    // The instance forced include_usage and continuous_usage_stats on what reached the engine.
    assert.deepEqual(engine.requests.at(-1).json.stream_options, { include_usage: true, continuous_usage_stats: true });
    assert.equal(engine.requests.at(-1).json.stream, true);
  });

  test('without plaintext usage events (deployments since 2026-03-27) only e2e events follow e2e_init', async () => {
    const { res, frames } = await rawStream({ usageEvents: false });
    const events = res.text.split('\n\n').slice(0, -1);
    assert.equal(events.length, 1 + frames.join('').split(/(?<=\n)/).length);
    assert.ok(events.slice(1).every((e) => e.startsWith('data: {"e2e":"')));
  });

  test('decryptStream: same plaintext whether the stream arrives whole, byte by byte, or with CRLF line ends', async () => {
    const { res, frames, sealed } = await rawStream({ usageEvents: true });
    const expected = frames.join('');
    const whole = await peer.decryptStream([res.body], sealed.responseSecretKey);
    const bytewise = await peer.decryptStream(
      (function* () {
        for (const b of res.body) yield Buffer.from([b]);
      })(),
      sealed.responseSecretKey,
    );
    const crlf = await peer.decryptStream([Buffer.from(res.text.replaceAll('\n', '\r\n'))], sealed.responseSecretKey);
    for (const out of [whole, bytewise, crlf]) {
      assert.equal(out.plaintext.toString(), expected);
      assert.equal(out.events.filter((e) => e.data === '[DONE]').length, 1);
      assert.deepEqual(
        out.events.filter((e) => e.json?.choices?.[0]?.delta?.content).map((e) => e.json.choices[0].delta.content),
        ['Hel', 'lo ', 'wörld'],
      );
      assert.equal(out.usage.length, frames.length - 1);
      assert.equal(out.done, false, 'no plaintext [DONE] in production framing');
    }
  });

  test('decryptStream rejects a chunk before e2e_init and a tampered chunk', async () => {
    const { res, sealed } = await rawStream({ usageEvents: false });
    const events = res.text.split('\n\n');
    await assert.rejects(peer.decryptStream([Buffer.from(events.slice(1).join('\n\n'))], sealed.responseSecretKey), /before e2e_init/);
    const second = JSON.parse(events[1].slice(6));
    const raw = Buffer.from(second.e2e, 'base64');
    raw[raw.length - 20] ^= 0x40;
    events[1] = `data: {"e2e":"${raw.toString('base64')}"}`;
    await assert.rejects(peer.decryptStream([Buffer.from(events.join('\n\n'))], sealed.responseSecretKey));
  });
});

describe('peer client ↔ fake round trips', () => {
  test('non-stream and stream invoke() return the engine bytes', async () => {
    const d = await peer.discover(fake.url, KEY, CHUTE);
    let { instance, nonce } = peer.takeNonce(d.json);
    const r1 = await peer.invoke({ baseUrl: fake.url, apiKey: KEY, chuteId: CHUTE, instance, nonce, body: { model: 'test/model', messages: [{ role: 'user', content: 'ping' }] } });
    assert.equal(r1.status, 200);
    const answer = JSON.parse(r1.plaintext.toString());
    assert.equal(answer.choices[0].message.content, 'echo: ping');
    assert.equal(r1.plaintext.toString(), JSON.stringify(answer), 'the engine wrote compact JSON');

    ({ instance, nonce } = peer.takeNonce(d.json));
    const r2 = await peer.invoke({ baseUrl: fake.url, apiKey: KEY, chuteId: CHUTE, instance, nonce, body: { model: 'test/model', messages: [{ role: 'user', content: 'two words' }], stream: true } });
    assert.equal(r2.status, 200);
    const text = r2.stream.events.map((e) => e.json?.choices?.[0]?.delta?.content ?? '').join('');
    assert.equal(text, 'echo: two words');
    assert.equal(r2.stream.plaintext.toString(), chatFrames({ model: 'test/model', pieces: ['echo: ', 'two ', 'words'], includeUsage: true, continuousUsage: true }).join(''));
  });

  test('/v1/completions and /tokenize go to the path in X-E2E-Path', async () => {
    const d = await peer.discover(fake.url, KEY, CHUTE);
    let { instance, nonce } = peer.takeNonce(d.json);
    const r = await peer.invoke({ baseUrl: fake.url, apiKey: KEY, chuteId: CHUTE, instance, nonce, path: '/v1/completions', body: { model: 'test/model', prompt: 'abc' } });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.plaintext).object, 'text_completion');
    assert.equal(engine.requests.at(-1).path, '/v1/completions');
    ({ instance, nonce } = peer.takeNonce(d.json));
    const t = await peer.invoke({ baseUrl: fake.url, apiKey: KEY, chuteId: CHUTE, instance, nonce, path: '/tokenize', body: { model: 'test/model', prompt: 'abc' } });
    assert.deepEqual(JSON.parse(t.plaintext).tokens, [97, 98, 99]);
  });
});

describe('fake invoke errors (§4, §11.1)', () => {
  const body = { model: 'test/model', messages: [{ role: 'user', content: 'x' }] };

  test('a nonce is single-use, bound to the user and to its instance, and dies with expiry', async () => {
    const d = await peer.discover(fake.url, KEY, CHUTE);
    const [a, b] = d.json.instances;
    const nonceDetail = '{"detail":"Invalid, expired, or already-used nonce"}';
    const ok = await peer.invoke({ baseUrl: fake.url, apiKey: KEY, chuteId: CHUTE, instance: a, nonce: a.nonces[0], body });
    assert.equal(ok.status, 200);
    const reuse = await peer.invoke({ baseUrl: fake.url, apiKey: KEY, chuteId: CHUTE, instance: a, nonce: a.nonces[0], body });
    assert.equal(reuse.status, 403);
    assert.equal(reuse.body.toString(), nonceDetail);
    const otherUser = await peer.invoke({ baseUrl: fake.url, apiKey: 'cpk_someone_else', chuteId: CHUTE, instance: a, nonce: a.nonces[1], body });
    assert.equal(otherUser.status, 403);
    const otherInstance = await peer.invoke({ baseUrl: fake.url, apiKey: KEY, chuteId: CHUTE, instance: b, nonce: a.nonces[2], body });
    assert.equal(otherInstance.status, 403);
    fake.expireNonces();
    const expired = await peer.invoke({ baseUrl: fake.url, apiKey: KEY, chuteId: CHUTE, instance: a, nonce: a.nonces[3], body });
    assert.equal(expired.status, 403);
    assert.equal(expired.body.toString(), nonceDetail);
  });

  test('forced failures come after the nonce is consumed; tampered blobs reach nothing', async () => {
    const d = await peer.discover(fake.url, KEY, CHUTE);
    const a = d.json.instances[0];
    fake.failNext(1, 503, 'This chute is currently disabled.');
    const forced = await peer.invoke({ baseUrl: fake.url, apiKey: KEY, chuteId: CHUTE, instance: a, nonce: a.nonces[0], body });
    assert.equal(forced.status, 503);
    assert.deepEqual(forced.json, { detail: 'This chute is currently disabled.' });
    const again = await peer.invoke({ baseUrl: fake.url, apiKey: KEY, chuteId: CHUTE, instance: a, nonce: a.nonces[0], body });
    assert.equal(again.status, 403, 'the nonce was burnt by the failed request');

    const sealed = peer.sealRequest(a.e2e_pubkey, body);
    const tampered = Buffer.from(sealed.blob);
    tampered[1100 + 3] ^= 1;
    const count = engine.count;
    const bad = await peer.invoke({ baseUrl: fake.url, apiKey: KEY, chuteId: CHUTE, instance: a, nonce: a.nonces[1], blob: tampered, stream: false });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.json, { detail: '{"detail":"E2E decryption failed"}' });
    assert.equal(engine.count, count);
  });

  test('key rotation: same instance id → 400 decryption failed; new ids → 404 Instance not found; rediscovery works', async () => {
    const rotating = await peer.startFakeChutes({ models: MODELS, engineUrl: engine.url });
    try {
      let d = await peer.discover(rotating.url, KEY, CHUTE);
      let a = d.json.instances[0];
      rotating.rotateKeys();
      const stale = await peer.invoke({ baseUrl: rotating.url, apiKey: KEY, chuteId: CHUTE, instance: a, nonce: a.nonces[0], body });
      assert.equal(stale.status, 400);
      rotating.rotateKeys({ newIds: true });
      const gone = await peer.invoke({ baseUrl: rotating.url, apiKey: KEY, chuteId: CHUTE, instance: a, nonce: a.nonces[1], body });
      assert.equal(gone.status, 404);
      assert.deepEqual(gone.json, { detail: 'Instance not found' });
      d = await peer.discover(rotating.url, KEY, CHUTE);
      a = d.json.instances[0];
      const fresh = await peer.invoke({ baseUrl: rotating.url, apiKey: KEY, chuteId: CHUTE, instance: a, nonce: a.nonces[0], body });
      assert.equal(fresh.status, 200);
    } finally {
      await rotating.close();
    }
  });

  test('engine 400 on a non-stream request → 400 {"detail":"<≥1200 bytes of undecryptable base64>"}', async () => {
    engine.enqueue({ status: 400, json: { object: 'error', message: 'maximum context length exceeded', type: 'BadRequestError', code: 400 } });
    const d = await peer.discover(fake.url, KEY, CHUTE);
    const a = d.json.instances[0];
    const r = await peer.invoke({ baseUrl: fake.url, apiKey: KEY, chuteId: CHUTE, instance: a, nonce: a.nonces[0], body });
    assert.equal(r.status, 400);
    const raw = peer.unb64(r.json.detail);
    assert.ok(raw.length >= 1200);
    assert.throws(() => peer.openResponse(raw, r.sealed.responseSecretKey));
  });

  test('missing header → 422, path not available → 403, nonce of another chute → 403, no auth → 401', async () => {
    const d = await peer.discover(fake.url, KEY, CHUTE);
    const a = d.json.instances[0];
    const missing = await peer.invoke({ baseUrl: fake.url, apiKey: KEY, chuteId: CHUTE, instance: a, nonce: a.nonces[0], body, headers: { 'x-chute-id': undefined } });
    assert.equal(missing.status, 422);
    assert.equal(missing.json.detail[0].loc[1], 'x-chute-id');
    const path = await peer.invoke({ baseUrl: fake.url, apiKey: KEY, chuteId: CHUTE, instance: a, nonce: a.nonces[1], body, path: '/v1/models' });
    assert.equal(path.status, 403);
    const d2 = await peer.discover(fake.url, KEY, OTHER_CHUTE);
    const wrong = await peer.invoke({ baseUrl: fake.url, apiKey: KEY, chuteId: OTHER_CHUTE, instance: a, nonce: d2.json.instances[0].nonces[0], body });
    assert.equal(wrong.status, 403, 'a nonce of another instance fails the nonce check first');
    const noAuth = await peer.invoke({ baseUrl: fake.url, apiKey: null, chuteId: CHUTE, instance: a, nonce: a.nonces[2], body });
    assert.equal(noAuth.status, 401);
  });
});

describe('engine script knobs', () => {
  test('records raw bytes; error status; garbage; close mid-chunk', async () => {
    engine.enqueue({ status: 500, json: { message: 'boom' } }, { garbage: 'NOT HTTP\r\n\r\n' }, { frames: streamFixture(), closeAfterFrames: 2, partialBytes: 10 });
    const raw = '{"model":"test/model",  "messages":[]}';
    const r1 = await request(`${engine.url}/v1/chat/completions`, { method: 'POST', body: raw, headers: { 'content-type': 'application/json' } });
    assert.equal(r1.status, 500);
    assert.equal(engine.requests.at(-1).body.toString(), raw);
    await assert.rejects(request(`${engine.url}/v1/chat/completions`, { method: 'POST', body: raw }));
    const r3 = await request(`${engine.url}/v1/chat/completions`, { method: 'POST', body: raw, stream: true });
    const { readAll } = await import('./lib/http.mjs');
    const got = await readAll(r3.res);
    assert.equal(got.complete, false);
    const frames = streamFixture();
    assert.equal(got.body.toString(), frames[0] + frames[1] + frames[2].slice(0, 10));
    assert.equal(CREATED, 1700000000);
  });
});

describe('fake fault knobs', () => {
  const body = { model: 'test/model', messages: [{ role: 'user', content: 'fault' }] };
  const streamBody = { ...body, stream: true };

  test('tamperNext: corrupt stream chunk, e2e_error, early end, corrupt response blob; nonceServerTtl', async () => {
    const d = await peer.discover(fake.url, KEY, CHUTE);
    const a = d.json.instances[0];
    const go = (b) => peer.invoke({ baseUrl: fake.url, apiKey: KEY, chuteId: CHUTE, instance: a, nonce: a.nonces.shift(), body: b });
    fake.tamperNext({ streamChunk: 2 });
    await assert.rejects(go(streamBody));
    fake.tamperNext({ e2eErrorAfter: 3, value: 'instance failed' });
    const errored = await go(streamBody);
    assert.deepEqual(errored.stream.errors, ['instance failed']);
    assert.equal(errored.stream.chunks.length, 3);
    fake.tamperNext({ endAfter: 4 });
    const ended = await go(streamBody);
    assert.equal(ended.stream.chunks.length, 4);
    assert.ok(!ended.stream.plaintext.toString().includes('[DONE]'));
    fake.tamperNext({ response: true });
    await assert.rejects(go(body));
    const fine = await go(body);
    assert.equal(JSON.parse(fine.plaintext).choices[0].message.content, 'echo: fault');
  });

  test('nonces die after nonceServerTtl', async () => {
    const shortLived = await peer.startFakeChutes({ models: MODELS, engineUrl: engine.url, nonceExpiresIn: 1, nonceServerTtl: 0 });
    try {
      const d = await peer.discover(shortLived.url, KEY, CHUTE);
      assert.equal(d.json.nonce_expires_in, 1);
      const a = d.json.instances[0];
      const r = await peer.invoke({ baseUrl: shortLived.url, apiKey: KEY, chuteId: CHUTE, instance: a, nonce: a.nonces[0], body });
      assert.equal(r.status, 403);
    } finally {
      await shortLived.close();
    }
  });
});
