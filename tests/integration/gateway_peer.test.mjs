// e2ee-gateway (a real process) driven by the independent Node Chutes peer, in front of the
// scripted engine: discovery, non-stream and stream round trips byte for byte, what the engine
// receives, nonce rules, tampering, limits, paths, engine errors sealed to the client, engine
// faults, key persistence, no plaintext in logs, clean SIGTERM.

import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, statSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import http from 'node:http';
import { request, rawExchange, listen } from './lib/http.mjs';
import { startEngine, chatFrames, CREATED } from './lib/engine.mjs';
import { startGateway, linesContaining } from './lib/processes.mjs';
import * as peer from './lib/chutes_peer.mjs';

const CHUTE = '3c7a1d2e-9b8f-4c6d-a5e4-1f2a3b4c5d6e';
const KEY = 'cpk_gateway_user';
const OTHER_KEY = 'cpk_gateway_other';
const MODEL = 'test/model';
const MARKER = `MARKER-${randomUUID()}`;

let engine;
let gw;
const keyDir = mkdtempSync(join(tmpdir(), 'e2ee-gw-keys-'));

before(async () => {
  engine = await startEngine();
  gw = await startGateway(['--backend', engine.url, '--model', MODEL, '--chute-id', CHUTE, '--confidential', 'true', '--log-level', 'trace']);
});
afterEach(() => {
  if (gw && !gw.stopped) gw.assertRunning();
});
after(async () => {
  await engine?.close();
  rmSync(keyDir, { recursive: true, force: true });
});

// Nonce pools per caller, so the file stays well under any discovery rate limit.
const pools = new Map();
async function nonceFor(user = KEY, url = () => gw.url) {
  let pool = pools.get(user + url());
  if (!pool || !pool.instances[0].nonces.length) {
    const d = await peer.discover(url(), user, CHUTE);
    assert.equal(d.status, 200, `discovery failed: ${d.body}`);
    pool = d.json;
    pools.set(user + url(), pool);
  }
  return peer.takeNonce(pool);
}

async function call({ body, stream, path = '/v1/chat/completions', user = KEY, headers, blob, base } = {}) {
  const { instance, nonce } = await nonceFor(user, base ? () => base : undefined);
  return peer.invoke({ baseUrl: base ?? gw.url, apiKey: user, chuteId: CHUTE, instance, nonce, body, stream, path, headers, blob });
}

const chat = (content, extra = {}) => ({ model: MODEL, messages: [{ role: 'user', content }], ...extra });

// What an ordinary client sees when it POSTs a whole body: 'status N' or 'error CODE'.
function nodePost(url, headers, body) {
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', agent: false, headers: { ...headers, 'content-length': body.length } }, (res) => {
      res.resume();
      resolve(`status ${res.statusCode}`);
    });
    req.on('error', (err) => resolve(`error ${err.code}`));
    req.end(body);
  });
}

function assertDetail(res, status) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.body}`);
  assert.ok(res.json && typeof res.json.detail === 'string' && res.json.detail.length > 0, `expected {"detail": "..."}, got ${res.body}`);
}

describe('start and discovery', () => {
  test('start line names the listener, the chute and an instance id', () => {
    assert.match(gw.startLine, /^e2ee-gateway \S+ listening on http:\/\/127\.0\.0\.1:\d+/);
    assert.ok(gw.startLine.includes(CHUTE), gw.startLine);
    assert.match(gw.startLine, /instance [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/);
  });

  test('GET /health → {"status":"ok"}', async () => {
    const r = await request(`${gw.url}/health`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { status: 'ok' });
  });

  test('GET /v1/models lists the model with chute_id and confidential_compute', async () => {
    const r = await request(`${gw.url}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(r.status, 200, r.text);
    const list = r.json();
    assert.equal(list.object, 'list');
    const entry = list.data.find((m) => m.id === MODEL);
    assert.ok(entry, r.text);
    assert.equal(entry.chute_id, CHUTE);
    assert.equal(entry.confidential_compute, true);
  });

  test('GET /e2e/instances/{chute}: one instance, 1184-byte key, 10 distinct nonces, expiry', async () => {
    const before = Math.floor(Date.now() / 1000);
    const d = await peer.discover(gw.url, KEY, CHUTE);
    assert.equal(d.status, 200, d.body.toString());
    assert.equal(d.json.instances.length, 1);
    const inst = d.json.instances[0];
    assert.ok(gw.startLine.includes(inst.instance_id), `instance ${inst.instance_id} not in the start line ${gw.startLine}`);
    assert.equal(peer.unb64(inst.e2e_pubkey).length, 1184);
    assert.equal(inst.nonces.length, 10);
    assert.equal(new Set(inst.nonces).size, 10);
    for (const n of inst.nonces) assert.match(n, /^[A-Za-z0-9_-]{16,}$/);
    assert.ok(Number.isInteger(d.json.nonce_expires_in) && d.json.nonce_expires_in > 0);
    const after = Math.floor(Date.now() / 1000);
    assert.ok(d.json.nonce_expires_at >= before + d.json.nonce_expires_in - 1 && d.json.nonce_expires_at <= after + d.json.nonce_expires_in + 1, JSON.stringify(d.json));
    // Two discoveries give fresh nonces for the same key.
    const d2 = await peer.discover(gw.url, KEY, CHUTE);
    assert.equal(d2.json.instances[0].e2e_pubkey, inst.e2e_pubkey);
    assert.equal(d2.json.instances[0].nonces.filter((n) => inst.nonces.includes(n)).length, 0);
  });

  test('discovery of another chute → 404 {"detail":"Chute not found"}', async () => {
    const d = await peer.discover(gw.url, KEY, '00000000-0000-4000-8000-000000000000');
    assert.equal(d.status, 404);
    assert.deepEqual(d.json, { detail: 'Chute not found' });
  });
});

describe('round trips', () => {
  test('non-stream: the engine gets the client JSON byte for byte minus e2e_response_pk; the client decrypts the engine bytes exactly', async () => {
    const clientJson = `{"model":"${MODEL}","messages":[{"role":"user","content":"b\\u00e9ts \u00e9 ${MARKER}"}],"seed":18446744073709551615,"temperature":0.10000000000000000555,"tools":[],"metadata":{}, "z_last":  true}`;
    const engineAnswer = `{"id":"chatcmpl-x","object":"chat.completion","created":${CREATED},"model":"${MODEL}",  "choices":[{"index":0,"message":{"role":"assistant","content":"r\u00e9ponse ${MARKER}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`;
    engine.enqueue({ body: engineAnswer });
    const count = engine.count;
    const r = await call({ body: clientJson });
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(r.headers['content-type'], 'application/octet-stream');
    assert.equal(r.plaintext.toString(), engineAnswer);
    assert.equal(engine.count, count + 1);
    const got = engine.requests.at(-1);
    assert.equal(got.method, 'POST');
    assert.equal(got.path, '/v1/chat/completions');
    assert.equal(got.body.toString(), clientJson);
  });

  test('non-stream with e2e_response_pk in the middle of the object: the engine JSON equals the client JSON without it', async () => {
    const { instance, nonce } = await nonceFor();
    const { ml_kem768 } = await import('./lib/deps.mjs');
    const { publicKey, secretKey } = ml_kem768.keygen();
    const text = `{"model":"${MODEL}","e2e_response_pk":"${Buffer.from(publicKey).toString('base64')}","messages":[{"role":"user","content":"mid"}],"n":1}`;
    const blob = peer.sealBlob(peer.unb64(instance.e2e_pubkey), Buffer.from(text), peer.INFO_REQ);
    const r = await peer.invoke({ baseUrl: gw.url, apiKey: KEY, chuteId: CHUTE, instance, nonce, blob, stream: false });
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(JSON.parse(peer.openResponse(r.body, secretKey)).choices[0].message.content, 'echo: mid');
    assert.deepEqual(engine.requests.at(-1).json, { model: MODEL, messages: [{ role: 'user', content: 'mid' }], n: 1 });
  });

  test('stream: e2e_init then one e2e event per engine line; plaintext = engine bytes; include_usage forced', async () => {
    const frames = chatFrames({ model: MODEL, pieces: ['Hel', 'lo ', `${MARKER} `, 'wörld'], includeUsage: true });
    engine.enqueue({ frames });
    const r = await call({ body: chat(`stream ${MARKER}`, { stream: true, max_tokens: 9 }) });
    assert.equal(r.status, 200, r.body?.toString());
    assert.match(String(r.headers['content-type']), /^text\/event-stream/);
    // Outer framing: only data lines and blank separators; e2e_init first; only e2e / usage after.
    const outer = r.body.toString();
    const b64 = '[A-Za-z0-9+/]+={0,2}';
    assert.match(outer, new RegExp(`^data: \\{"e2e_init":"${b64}"\\}\\n\\n((data: \\{"usage":[^\\n]*\\}\\n\\n)?data: \\{"e2e":"${b64}"\\}\\n\\n)+$`), outer.slice(0, 400));
    assert.ok(!outer.includes('[DONE]'), 'no plaintext [DONE]');
    // One chunk per engine line, each line with its "\n" (blank separators are chunks of their own).
    const expectedChunks = frames.join('').split(/(?<=\n)/);
    assert.deepEqual(r.stream.chunks.map((c) => c.toString()), expectedChunks);
    assert.equal(r.stream.plaintext.toString(), frames.join(''));
    // What the engine got: the client JSON plus stream_options.include_usage = true.
    const got = engine.requests.at(-1).json;
    assert.equal(got.stream_options?.include_usage, true, JSON.stringify(got));
    const { stream_options: _omit, ...rest } = got;
    assert.deepEqual(rest, chat(`stream ${MARKER}`, { stream: true, max_tokens: 9 }));
  });

  test('stream whose client asked include_usage=false still gets usage forced; other stream_options kept', async () => {
    const r = await call({ body: chat('opts', { stream: true, stream_options: { include_usage: false, continuous_usage_stats: false } }) });
    assert.equal(r.status, 200);
    assert.equal(engine.requests.at(-1).json.stream_options.include_usage, true);
    const text = r.stream.events.map((e) => e.json?.choices?.[0]?.delta?.content ?? '').join('');
    assert.equal(text, 'echo: opts');
  });

  test('/v1/completions and /tokenize reach the engine at X-E2E-Path', async () => {
    const c = await call({ body: { model: MODEL, prompt: 'abc' }, path: '/v1/completions' });
    assert.equal(c.status, 200);
    assert.equal(engine.requests.at(-1).path, '/v1/completions');
    assert.equal(JSON.parse(c.plaintext).choices[0].text, 'echo: abc');
    const t = await call({ body: { model: MODEL, prompt: 'xyz' }, path: '/tokenize' });
    assert.equal(t.status, 200);
    assert.equal(engine.requests.at(-1).path, '/tokenize');
    assert.deepEqual(JSON.parse(t.plaintext).tokens, [120, 121, 122]);
  });

  test('8 concurrent requests (4 streamed) all come back intact', async () => {
    const jobs = Array.from({ length: 8 }, (_, i) => call({ body: chat(`job ${i}`, { stream: i % 2 === 0 }) }));
    const results = await Promise.all(jobs);
    results.forEach((r, i) => {
      assert.equal(r.status, 200);
      const text = i % 2 === 0 ? r.stream.events.map((e) => e.json?.choices?.[0]?.delta?.content ?? '').join('') : JSON.parse(r.plaintext).choices[0].message.content;
      assert.equal(text, `echo: job ${i}`);
    });
  });
});

describe('nonces', () => {
  test('reuse → 403 Invalid, expired, or already-used nonce; nothing forwarded', async () => {
    const { instance, nonce } = await nonceFor();
    const first = await peer.invoke({ baseUrl: gw.url, apiKey: KEY, chuteId: CHUTE, instance, nonce, body: chat('once') });
    assert.equal(first.status, 200);
    const count = engine.count;
    const again = await peer.invoke({ baseUrl: gw.url, apiKey: KEY, chuteId: CHUTE, instance, nonce, body: chat('twice') });
    assert.equal(again.status, 403, again.body.toString());
    assert.deepEqual(again.json, { detail: 'Invalid, expired, or already-used nonce' });
    assert.equal(engine.count, count);
  });

  test("a nonce used by another caller (Authorization) → 403, nothing forwarded", async () => {
    const { instance, nonce } = await nonceFor(KEY);
    const count = engine.count;
    const stolen = await peer.invoke({ baseUrl: gw.url, apiKey: OTHER_KEY, chuteId: CHUTE, instance, nonce, body: chat('stolen') });
    assert.equal(stolen.status, 403, stolen.body.toString());
    assert.deepEqual(stolen.json, { detail: 'Invalid, expired, or already-used nonce' });
    assert.equal(engine.count, count);
  });

  test('an unknown nonce, no nonce, another instance id → 403/4xx, nothing forwarded', async () => {
    const { instance } = await nonceFor();
    const count = engine.count;
    const made = await peer.invoke({ baseUrl: gw.url, apiKey: KEY, chuteId: CHUTE, instance, nonce: 'A'.repeat(32), body: chat('made up') });
    assert.equal(made.status, 403);
    const { nonce } = await nonceFor();
    const otherInstance = await peer.invoke({ baseUrl: gw.url, apiKey: KEY, chuteId: CHUTE, instance: { ...instance, instance_id: randomUUID() }, nonce, body: chat('x') });
    assert.ok([403, 404].includes(otherInstance.status), `status ${otherInstance.status}: ${otherInstance.body}`);
    const { nonce: n2 } = await nonceFor();
    const none = await peer.invoke({ baseUrl: gw.url, apiKey: KEY, chuteId: CHUTE, instance, nonce: n2, body: chat('x'), headers: { 'x-e2e-nonce': undefined } });
    assert.ok(none.status >= 400 && none.status < 500, `status ${none.status}`);
    assert.equal(engine.count, count);
  });

  test('invoke naming another chute → 403 or 404, nothing forwarded', async () => {
    const { instance, nonce } = await nonceFor();
    const count = engine.count;
    const r = await peer.invoke({ baseUrl: gw.url, apiKey: KEY, chuteId: '00000000-0000-4000-8000-000000000000', instance, nonce, body: chat('x') });
    assert.ok([403, 404].includes(r.status), `status ${r.status}: ${r.body}`);
    assert.equal(typeof r.json?.detail, 'string');
    assert.equal(engine.count, count);
  });
});

describe('bad envelopes: a clear 4xx, nothing forwarded', () => {
  const cases = [
    ['a flipped bit in the AEAD ciphertext', (blob) => flip(blob, 1100 + 2)],
    ['a flipped bit in the tag', (blob) => flip(blob, blob.length - 1)],
    ['a flipped bit in the KEM ciphertext (implicit rejection → wrong key)', (blob) => flip(blob, 5)],
    ['a flipped bit in the AEAD nonce', (blob) => flip(blob, 1090)],
    ['a truncated blob (1115 bytes)', (blob) => blob.subarray(0, 1115)],
    ['a blob cut by one byte', (blob) => blob.subarray(0, blob.length - 1)],
  ];
  const flip = (blob, i) => {
    const b = Buffer.from(blob);
    b[i] ^= 0x01;
    return b;
  };
  for (const [name, mutate] of cases) {
    test(`${name} → 400`, async () => {
      const { instance, nonce } = await nonceFor();
      const sealed = peer.sealRequest(instance.e2e_pubkey, chat('tamper'));
      const count = engine.count;
      const r = await peer.invoke({ baseUrl: gw.url, apiKey: KEY, chuteId: CHUTE, instance, nonce, blob: mutate(sealed.blob), stream: false });
      assertDetail(r, 400);
      assert.equal(engine.count, count);
    });
  }

  test('an empty body → 400', async () => {
    const { instance, nonce } = await nonceFor();
    const count = engine.count;
    const r = await peer.invoke({ baseUrl: gw.url, apiKey: KEY, chuteId: CHUTE, instance, nonce, blob: Buffer.alloc(0), stream: false });
    assertDetail(r, 400);
    assert.equal(engine.count, count);
  });

  // Correctly encrypted but wrong inside.
  const inner = [
    ['not gzip', (text) => Buffer.from(text), false],
    ['gzip of invalid JSON', (text) => gzipSync(text.slice(0, -1)), true],
    ['gzip of a JSON array', () => gzipSync('[1,2]'), true],
    ['JSON without e2e_response_pk', () => gzipSync(JSON.stringify(chat('no key'))), true],
    ['e2e_response_pk of the wrong length', () => gzipSync(JSON.stringify(chat('short key', { e2e_response_pk: Buffer.alloc(32).toString('base64') }))), true],
  ];
  for (const [name, build] of inner) {
    test(`${name} → 400`, async () => {
      const { instance, nonce } = await nonceFor();
      const text = JSON.stringify(chat('inner', { e2e_response_pk: Buffer.alloc(1184, 1).toString('base64') }));
      const payload = build(text);
      // Seal the payload exactly as given (sealBlob gzips, so undo that layer by hand).
      const { ml_kem768 } = await import('./lib/deps.mjs');
      const { cipherText, sharedSecret } = ml_kem768.encapsulate(peer.unb64(instance.e2e_pubkey));
      const k = peer.deriveKey(sharedSecret, cipherText, peer.INFO_REQ);
      const n = randomBytes(12);
      const blob = Buffer.concat([Buffer.from(cipherText), n, peer.aeadSeal(k, n, payload)]);
      const count = engine.count;
      const r = await peer.invoke({ baseUrl: gw.url, apiKey: KEY, chuteId: CHUTE, instance, nonce, blob, stream: false });
      assertDetail(r, 400);
      assert.equal(engine.count, count);
    });
  }

  test('a gzip bomb (64 MiB inflated from a small blob) → 4xx', async () => {
    const { instance, nonce } = await nonceFor();
    const huge = Buffer.concat([Buffer.from(`{"model":"${MODEL}","pad":"`), Buffer.alloc(64 << 20, 0x61), Buffer.from('"}')]);
    const blob = peer.sealBlob(peer.unb64(instance.e2e_pubkey), huge, peer.INFO_REQ);
    assert.ok(blob.length < 1 << 20);
    const count = engine.count;
    const r = await peer.invoke({ baseUrl: gw.url, apiKey: KEY, chuteId: CHUTE, instance, nonce, blob, stream: false });
    assert.ok(r.status >= 400 && r.status < 500, `status ${r.status}`);
    assert.equal(engine.count, count);
  });

  const invokeHeaders = (instance, nonce) => ({ authorization: `Bearer ${KEY}`, 'x-chute-id': CHUTE, 'x-instance-id': instance.instance_id, 'x-e2e-nonce': nonce, 'x-e2e-stream': 'false', 'x-e2e-path': '/v1/chat/completions', 'content-type': 'application/octet-stream' });

  test('an 11 MiB body (Expect: 100-continue) → 413 {"detail"}', async () => {
    const { instance, nonce } = await nonceFor();
    const count = engine.count;
    const r = await rawExchange(gw.url, { path: '/e2e/invoke', headers: invokeHeaders(instance, nonce), body: randomBytes(11 << 20), expectContinue: true });
    assert.equal(r.status, 413, `status ${r.status}: ${r.body}`);
    assert.equal(typeof JSON.parse(r.body).detail, 'string', `not a Chutes error body: ${r.body}`);
    assert.equal(engine.count, count);
  });

  test('an 11 MiB body sent whole by a plain Node http client → the client reads the 413 (5 of 5 tries)', async () => {
    const body = randomBytes(11 << 20);
    const outcomes = [];
    for (let i = 0; i < 5; i++) {
      const { instance, nonce } = await nonceFor();
      outcomes.push(await nodePost(`${gw.url}/e2e/invoke`, invokeHeaders(instance, nonce), body));
    }
    assert.deepEqual(outcomes, Array(5).fill('status 413'), 'the server closes before the client has sent the body, so the client sees a reset instead of the 413 (no lingering close)');
  });

  test('X-E2E-Path outside the public API (/v1/models, /admin, ../) → 403, nothing forwarded', async () => {
    for (const path of ['/v1/models', '/admin', '/v1/chat/completions/../../etc/passwd']) {
      const count = engine.count;
      const r = await call({ body: chat('path'), path });
      assert.equal(r.status, 403, `${path}: ${r.status} ${r.body}`);
      assert.equal(typeof r.json?.detail, 'string');
      assert.equal(engine.count, count, path);
    }
  });
});

describe('engine errors and faults', () => {
  test('engine 400 (non-stream) → 400 {"detail": base64 of a blob sealed to the client holding the engine body}', async () => {
    const engineError = `{"object":"error","message":"This model's maximum context length is 8192 tokens ${MARKER}","type":"BadRequestError","param":null,"code":400}`;
    engine.enqueue({ status: 400, body: engineError });
    const r = await call({ body: chat('too long') });
    assert.equal(r.status, 400, r.body.toString());
    assert.equal(typeof r.json?.detail, 'string');
    assert.equal(peer.openResponse(peer.unb64(r.json.detail), r.sealed.responseSecretKey).toString(), engineError);
    assert.ok(!r.body.toString().includes('maximum context'), 'the engine error is not in plaintext');
  });

  test('engine 500 on a stream request → 500 with a sealed detail', async () => {
    const engineError = '{"object":"error","message":"engine exploded","type":"InternalServerError","code":500}';
    engine.enqueue({ status: 500, body: engineError });
    const r = await call({ body: chat('boom', { stream: true }) });
    assert.equal(r.status, 500, r.body.toString());
    assert.equal(peer.openResponse(peer.unb64(r.json.detail), r.sealed.responseSecretKey).toString(), engineError);
  });

  test('engine cut mid-stream → the stream ends; never a silent success: a [DONE] only after a parseable error event', async () => {
    const frames = chatFrames({ model: MODEL, pieces: ['a', 'b', 'c', 'd'], includeUsage: true });
    engine.enqueue({ frames, closeAfterFrames: 3, partialBytes: 20 });
    const r = await call({ body: chat('cut', { stream: true }) });
    assert.equal(r.status, 200);
    const text = r.stream.plaintext.toString();
    // The three complete engine events arrive unchanged.
    assert.ok(text.startsWith(frames.slice(0, 3).join('')), text);
    const events = r.stream.events;
    assert.deepEqual(events.slice(0, 3).map((e) => e.data), frames.slice(0, 3).map((f) => f.slice(6, -2)));
    const done = events.findIndex((e) => e.data === '[DONE]');
    if (done >= 0) {
      const error = events.slice(3, done).find((e) => e.json && typeof e.json.error === 'object');
      assert.ok(error, `[DONE] after an engine failure without a parseable error event before it; decrypted plaintext:\n${JSON.stringify(text.slice(frames.slice(0, 3).join('').length))}`);
    }
  });

  test('engine not HTTP (garbage) → 5xx {"detail"}', async () => {
    engine.enqueue({ garbage: 'SSH-2.0-OpenSSH_9.2\r\n' });
    const r = await call({ body: chat('garbage') });
    assert.ok(r.status >= 500 && r.status < 600, `status ${r.status}: ${r.body}`);
    assert.equal(typeof r.json?.detail, 'string');
  });

  test('engine down → 502/503/504 {"detail"}', async () => {
    const dead = await listen(() => {});
    const deadUrl = dead.url;
    await dead.close();
    const g2 = await startGateway(['--backend', deadUrl, '--model', MODEL, '--chute-id', CHUTE]);
    try {
      const r = await call({ body: chat('down'), base: g2.url });
      assert.ok([502, 503, 504].includes(r.status), `status ${r.status}: ${r.body}`);
      assert.equal(typeof r.json?.detail, 'string');
    } finally {
      await g2.stop();
    }
  });
});

describe('keys and lifecycle', () => {
  test('--key-dir keeps the key across restarts (mode 0600); without it a restart makes a new key and old nonces die', async () => {
    const args = ['--backend', engine.url, '--model', MODEL, '--chute-id', CHUTE, '--key-dir', keyDir];
    const g1 = await startGateway(args);
    const d1 = await peer.discover(g1.url, KEY, CHUTE);
    await g1.stop();
    const files = readdirSync(keyDir);
    assert.ok(files.length > 0, 'key dir is empty');
    for (const f of files) {
      const st = statSync(join(keyDir, f));
      if (st.isFile()) assert.equal(st.mode & 0o077, 0, `${f} has mode ${(st.mode & 0o777).toString(8)}`);
    }
    const g2 = await startGateway(args);
    try {
      const d2 = await peer.discover(g2.url, KEY, CHUTE);
      assert.equal(d2.json.instances[0].e2e_pubkey, d1.json.instances[0].e2e_pubkey);
      // Nonces from before the restart are gone.
      const inst = d1.json.instances[0];
      const r = await peer.invoke({ baseUrl: g2.url, apiKey: KEY, chuteId: CHUTE, instance: { ...inst, instance_id: d2.json.instances[0].instance_id }, nonce: inst.nonces[0], body: chat('old nonce') });
      assert.equal(r.status, 403);
    } finally {
      await g2.stop();
    }
    const g3 = await startGateway(['--backend', engine.url, '--model', MODEL, '--chute-id', CHUTE]);
    const g4 = await startGateway(['--backend', engine.url, '--model', MODEL, '--chute-id', CHUTE]);
    try {
      const [a, b] = await Promise.all([peer.discover(g3.url, KEY, CHUTE), peer.discover(g4.url, KEY, CHUTE)]);
      assert.notEqual(a.json.instances[0].e2e_pubkey, b.json.instances[0].e2e_pubkey);
      assert.notEqual(a.json.instances[0].e2e_pubkey, d1.json.instances[0].e2e_pubkey);
      // A request sealed to g3's key but sent to g4 (a restarted instance) fails cleanly.
      const d4 = b.json.instances[0];
      const r = await peer.invoke({ baseUrl: g4.url, apiKey: KEY, chuteId: CHUTE, instance: d4, nonce: d4.nonces[0], blob: peer.sealRequest(a.json.instances[0].e2e_pubkey, chat('x')).blob, stream: false });
      assertDetail(r, 400);
    } finally {
      await Promise.all([g3.stop(), g4.stop()]);
    }
  });

  test('--nonces-per-discovery sets the batch size', async () => {
    const g = await startGateway(['--backend', engine.url, '--model', MODEL, '--chute-id', CHUTE, '--nonces-per-discovery', '3']);
    try {
      const d = await peer.discover(g.url, KEY, CHUTE);
      assert.equal(d.json.instances[0].nonces.length, 3);
    } finally {
      await g.stop();
    }
  });

  test('no plaintext in logs: the marker in prompts and completions appears in no line of the trace-level log', async () => {
    // Earlier tests sent MARKER in prompts, completions and an engine error; one more of each kind.
    await call({ body: chat(`last ${MARKER}`) });
    await call({ body: chat(`last stream ${MARKER}`, { stream: true }) });
    assert.ok(engine.requests.some((r) => r.body.includes(MARKER)), 'the marker did reach the engine');
    assert.ok(gw.lines.length > 1, 'trace logging printed nothing');
    assert.deepEqual(linesContaining([gw], MARKER), []);
  });

  test('SIGTERM → exit code 0', async () => {
    await gw.stop();
  });
});
