// e2ee-proxy (a real process) → the fake api.chutes.ai + instances (lib/chutes_peer.mjs, production
// framing and error bodies) → the scripted engine, with the npm `openai` SDK and raw HTTP as
// clients. The fake's counters (discoveries, invokes per API key) and its record of the decrypted
// request bodies are the ground truth; nothing asserted here is computed by the proxy itself.

import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { loadOpenAI } from './lib/deps.mjs';
import { request, listen } from './lib/http.mjs';
import { startEngine, chatFrames, completionFrames, CREATED } from './lib/engine.mjs';
import { startProxy, linesContaining } from './lib/processes.mjs';
import * as peer from './lib/chutes_peer.mjs';

const OpenAI = await loadOpenAI();

const TEE_CHUTE = '8d3f2a1b-4c5e-4f6a-9b8c-7d6e5f4a3b2c';
const PLAIN_CHUTE = '1e2d3c4b-5a69-4788-9a6b-5c4d3e2f1a0b';
const TEE_MODEL = 'acme/Model-TEE';
const TEE_ROOT = 'acme/Model';
const PLAIN_MODEL = 'plain/Model';
const MODELS = [
  { id: TEE_MODEL, object: 'model', created: CREATED, owned_by: 'sglang', root: TEE_ROOT, parent: null, max_model_len: 65536, chute_id: TEE_CHUTE, confidential_compute: true, price: { input: { usd: 0.1, tao: 0.0003 }, output: { usd: 0.4, tao: 0.0012 } }, pricing: { prompt: 0.1, completion: 0.4 } },
  { id: PLAIN_MODEL, object: 'model', created: CREATED, owned_by: 'vllm', root: 'plain/Model-root', parent: null, max_model_len: 8192, chute_id: PLAIN_CHUTE, confidential_compute: false },
];
const MARKER = `MARKER-${randomUUID()}`;
const TEE_MESSAGE = (m) => `model '${m}' is not running in confidential compute (TEE). E2EE requires confidential compute to guarantee privacy. Set ALLOW_NON_CONFIDENTIAL=true to override.`;

let engine;
let fake;
let proxy;

before(async () => {
  engine = await startEngine();
  fake = await peer.startFakeChutes({ models: MODELS, engineUrl: engine.url, instances: 5 });
  proxy = await startProxy(['--upstream', fake.url, '--models-upstream', fake.url, '--log-level', 'trace']);
});
// A crash shows up as such, in the test that caused it.
afterEach(() => {
  if (proxy && !proxy.stopped) proxy.assertRunning();
});
after(async () => {
  await fake?.close();
  await engine?.close();
});

// Every test uses its own API key: the fake's nonces and rate limits are per user, and so are the
// counters the assertions read.
const newKey = (what) => `cpk_${what}_${randomUUID().slice(0, 8)}`;
const sdk = (apiKey, base = proxy.url) => new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0, timeout: 30000 });
const invokesOf = (key) => fake.invokes.filter((i) => i.user === `Bearer ${key}`);
const discoveriesOf = (key) => fake.discoveries.filter((d) => d.user === `Bearer ${key}`);

const chat = (content, extra = {}) => ({ model: TEE_MODEL, messages: [{ role: 'user', content }], ...extra });

function post(path, key, body, { stream = false, headers = {}, base = proxy.url } = {}) {
  return request(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    stream,
  });
}

// The OpenAI error shape: {"error":{"message": non-empty string, "type": string, ...}}.
function assertOpenAIError(res, status) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  assert.match(String(res.headers['content-type']), /application\/json/);
  const body = res.json();
  assert.ok(body.error && typeof body.error === 'object', `not an OpenAI error: ${res.text}`);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0);
  assert.equal(typeof body.error.type, 'string', res.text);
  return body.error;
}

// The data payloads of an SSE body, in order.
function ssePayloads(text) {
  return peer.parseSse(text).events.map((e) => e.data);
}

// Asserts a well-formed SSE chat stream ending in exactly one [DONE]; returns the JSON events.
function assertWellFormedStream(text) {
  assert.ok(text.endsWith('data: [DONE]\n\n'), `stream does not end with data: [DONE]: ${JSON.stringify(text.slice(-200))}`);
  const payloads = ssePayloads(text);
  assert.equal(payloads.filter((p) => p === '[DONE]').length, 1, 'exactly one [DONE]');
  const events = payloads.slice(0, -1).map((p) => {
    try {
      return JSON.parse(p);
    } catch {
      assert.fail(`event is not JSON: ${p}`);
    }
  });
  return events;
}

const contentOf = (events) => events.map((e) => e.choices?.[0]?.delta?.content ?? e.choices?.[0]?.text ?? '').join('');

// Removes the e2e_response_pk member the proxy spliced into the client's JSON.
function withoutResponseKey(text) {
  const m = /\s*,\s*"e2e_response_pk"\s*:\s*"[A-Za-z0-9+/=]*"/.exec(text) ?? /"e2e_response_pk"\s*:\s*"[A-Za-z0-9+/=]*"\s*,?\s*/.exec(text);
  assert.ok(m, `no e2e_response_pk in ${text.slice(0, 200)}`);
  return text.slice(0, m.index) + text.slice(m.index + m[0].length);
}

describe('surface', () => {
  test('GET /health → {"status":"ok"}', async () => {
    const r = await request(`${proxy.url}/health`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { status: 'ok' });
  });

  test('GET /v1/models passes the upstream list through with the client key', async () => {
    const key = newKey('models');
    const r = await request(`${proxy.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json(), { object: 'list', data: MODELS });
    assert.equal(fake.modelRequests.at(-1).headers.authorization, `Bearer ${key}`);
    const list = await sdk(key).models.list();
    assert.deepEqual(list.data.map((m) => m.id), [TEE_MODEL, PLAIN_MODEL]);
  });

  test('every response carries a fresh request id (request-id and x-request-id, as the SDKs read them)', async () => {
    const a = await request(`${proxy.url}/health`);
    const b = await request(`${proxy.url}/nope`);
    for (const r of [a, b]) {
      assert.match(String(r.headers['request-id']), /^req_[A-Za-z0-9]{24}$/);
      assert.equal(r.headers['x-request-id'], r.headers['request-id']);
    }
    assert.notEqual(a.headers['request-id'], b.headers['request-id']);
  });

  test('OPTIONS → 204 CORS preflight', async () => {
    const r = await request(`${proxy.url}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin: 'http://example.test', 'access-control-request-method': 'POST' } });
    assert.equal(r.status, 204);
    assert.equal(r.headers['access-control-allow-origin'], '*');
  });

  test('DNS-rebinding guard: a Host that is not loopback, an IP or an allowed name → 403 in the client\'s dialect; nothing upstream', async () => {
    const key = newKey('rebind');
    for (const [path, body] of [['/v1/chat/completions', chat(`rebind ${MARKER}`)], ['/v1/messages', { model: TEE_MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }]]) {
      const r = await post(path, key, body, { headers: { host: 'evil.example:8443' } });
      assert.equal(r.status, 403, r.text);
      const e = r.json();
      if (path === '/v1/messages') {
        assert.equal(e.type, 'error', r.text);
        assert.equal(e.error.type, 'permission_error');
      } else {
        assert.equal(e.error.code, 'host_not_allowed', r.text);
      }
      assert.match(r.text, /--allowed-host/);
    }
    const health = await request(`${proxy.url}/health`, { headers: { host: 'evil.example' } });
    assert.equal(health.status, 403, 'not even /health answers a rebinding page');
    assert.equal(invokesOf(key).length + discoveriesOf(key).length, 0, 'nothing went upstream');
    for (const host of ['localhost:1', '127.0.0.1', '[::1]:8443', 'app.localhost']) {
      const ok = await request(`${proxy.url}/health`, { headers: { host } });
      assert.equal(ok.status, 200, `${host}: ${ok.text}`);
    }
  });

  test('CORS with a stored key: no grant by default; --cors-origin grants the listed origins only', async () => {
    const keyed = await startProxy(['--upstream', fake.url, '--models-upstream', fake.url, '--api-key', newKey('stored'),
      '--allowed-host', 'proxy.test', '--cors-origin', 'https://app.example,http://localhost:3000']);
    const plain = await startProxy(['--upstream', fake.url, '--models-upstream', fake.url, '--api-key', newKey('stored2')]);
    try {
      const preflight = (base, origin) => request(`${base}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST' } });
      const none = await preflight(plain.url, 'https://app.example');
      assert.equal(none.status, 204);
      assert.equal(none.headers['access-control-allow-origin'], undefined, 'a stored key is not lent to web pages');
      const listed = await preflight(keyed.url, 'https://app.example');
      assert.equal(listed.headers['access-control-allow-origin'], 'https://app.example');
      assert.match(String(listed.headers.vary), /Origin/);
      assert.ok(listed.headers['access-control-allow-methods']);
      const other = await preflight(keyed.url, 'https://evil.example');
      assert.equal(other.headers['access-control-allow-origin'], undefined);
      const models = await request(`${keyed.url}/v1/models`, { headers: { origin: 'http://localhost:3000', host: 'proxy.test:9' } });
      assert.equal(models.status, 200, models.text);
      assert.equal(models.headers['access-control-allow-origin'], 'http://localhost:3000');
    } finally {
      await keyed.stop();
      await plain.stop();
    }
  });

  test('unknown path → 404 in the OpenAI error shape', async () => {
    const r = await request(`${proxy.url}/nope`, { headers: { authorization: 'Bearer x' } });
    assertOpenAIError(r, 404);
  });

  test('no key and no --api-key → 401; nothing sent upstream', async () => {
    const before = [fake.invokes.length, fake.discoveries.length];
    const r = await post('/v1/chat/completions', null, chat('no key'));
    assertOpenAIError(r, 401);
    assert.deepEqual([fake.invokes.length, fake.discoveries.length], before);
  });

  test('x-api-key is forwarded upstream as Bearer', async () => {
    const key = newKey('xapikey');
    const r = await post('/v1/chat/completions', null, chat('via x-api-key'), { headers: { 'x-api-key': key } });
    assert.equal(r.status, 200, r.text);
    assert.equal(invokesOf(key).length, 1);
    assert.equal(discoveriesOf(key).length >= 1, true);
  });
});

describe('round trips', () => {
  test('non-stream (SDK): the answer is the engine echo; the engine got the SDK request', async () => {
    const key = newKey('nonstream');
    const completion = await sdk(key).chat.completions.create(chat(`hello ${MARKER}`, { temperature: 0.5 }));
    assert.equal(completion.choices[0].message.content, `echo: hello ${MARKER}`);
    const got = engine.requests.at(-1).json;
    assert.deepEqual(got, chat(`hello ${MARKER}`, { temperature: 0.5 }));
    const inv = invokesOf(key).at(-1);
    assert.equal(inv.status, 200);
    assert.equal(inv.headers['x-e2e-stream'], 'false');
    assert.equal(inv.headers['x-e2e-path'], '/v1/chat/completions');
    assert.equal(inv.headers['x-chute-id'], TEE_CHUTE);
    assert.equal(inv.headers['content-type'], 'application/octet-stream');
  });

  test('non-stream (raw): the client JSON reaches the instance byte for byte plus e2e_response_pk; the engine bytes come back verbatim', async () => {
    const key = newKey('bytes');
    const clientJson = `{"model":"${TEE_MODEL}","messages":[{"role":"user","content":"caf\\u00e9 \u00e9 \\/ x"}],"seed":18446744073709551615,"temperature":0.30000000000000004,"logit_bias":{"50256":-100},"tools":[],"metadata":{},"stop":[] , "z":  1e400}`;
    const engineAnswer = `{"id":"chatcmpl-raw",  "object":"chat.completion","created":${CREATED},"model":"${TEE_MODEL}","choices":[{"index":0,"message":{"role":"assistant","content":"ok \\u00e9"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2},"big":18446744073709551615}`;
    engine.enqueue({ body: engineAnswer });
    const r = await post('/v1/chat/completions', key, clientJson);
    assert.equal(r.status, 200, r.text);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    assert.equal(r.text, engineAnswer);
    const rec = fake.received.at(-1);
    const text = rec.plaintext.toString();
    assert.equal(withoutResponseKey(text), clientJson);
    assert.equal(peer.unb64(rec.json.e2e_response_pk ?? JSON.parse(text).e2e_response_pk).length, 1184);
  });

  for (const usageEvents of [true, false]) {
    test(`stream (SDK and raw), ${usageEvents ? 'with' : 'without'} plaintext usage events: content exact, one [DONE]`, async () => {
      fake.usageEvents = usageEvents;
      try {
        const key = newKey('stream');
        const pieces = ['Hel', 'lo', ', ', `${MARKER} `, 'wörld', '\n', '"quoted"'];
        const frames = () => chatFrames({ model: TEE_MODEL, pieces, includeUsage: true, continuousUsage: true });
        engine.enqueue({ frames: frames(), paceMs: 2 });
        const stream = await sdk(key).chat.completions.create(chat(`stream ${MARKER}`, { stream: true }));
        let text = '';
        let chunks = 0;
        for await (const chunk of stream) {
          chunks += 1;
          text += chunk.choices?.[0]?.delta?.content ?? '';
        }
        assert.equal(text, pieces.join(''));
        assert.ok(chunks >= pieces.length);
        assert.equal(invokesOf(key).at(-1).headers['x-e2e-stream'], 'true');

        engine.enqueue({ frames: frames() });
        const raw = await post('/v1/chat/completions', key, chat('raw stream', { stream: true }));
        assert.equal(raw.status, 200, raw.text);
        assert.match(String(raw.headers['content-type']), /^text\/event-stream/);
        const events = assertWellFormedStream(raw.text);
        // Every engine event reaches the client, in order, as the same JSON — except the usage-only
        // chunk (choices: []) that the instance side forces: this client did not ask for
        // stream_options.include_usage, OpenAI would not send it, and clients reading choices[0]
        // of every chunk crash on it.
        const engineEvents = ssePayloads(frames().join(''))
          .filter((p) => p !== '[DONE]')
          .map((p) => JSON.parse(p))
          .filter((e) => !(Array.isArray(e.choices) && e.choices.length === 0));
        const chunkEvents = events.filter((e) => e.object === 'chat.completion.chunk');
        assert.deepEqual(chunkEvents, engineEvents);
        assert.ok(!chunkEvents.some((e) => e.choices.length === 0), 'a usage-only chunk reached a client that did not ask for it');
        // Anything else is a usage-only event.
        for (const e of events.filter((x) => x.object !== 'chat.completion.chunk')) assert.deepEqual(Object.keys(e), ['usage'], JSON.stringify(e));
      } finally {
        fake.usageEvents = true;
      }
    });
  }

  test('stream with stream_options.include_usage: the SDK sees the usage chunk', async () => {
    const key = newKey('usage');
    const stream = await sdk(key).chat.completions.create(chat('count me', { stream: true, stream_options: { include_usage: true } }));
    let usage = null;
    let text = '';
    for await (const chunk of stream) {
      text += chunk.choices?.[0]?.delta?.content ?? '';
      if (chunk.usage && chunk.choices?.length === 0) usage = chunk.usage;
    }
    assert.equal(text, 'echo: count me');
    assert.ok(usage && usage.completion_tokens > 0, 'usage chunk');
  });

  test('/v1/completions, non-stream and stream (SDK), with X-E2E-Path /v1/completions', async () => {
    const key = newKey('completions');
    const c = await sdk(key).completions.create({ model: TEE_MODEL, prompt: 'abc' });
    assert.equal(c.choices[0].text, 'echo: abc');
    assert.equal(invokesOf(key).at(-1).headers['x-e2e-path'], '/v1/completions');
    engine.enqueue({ frames: completionFrames({ model: TEE_MODEL, pieces: ['x', 'y', 'z'], includeUsage: true }) });
    const s = await sdk(key).completions.create({ model: TEE_MODEL, prompt: 'abc', stream: true });
    let text = '';
    for await (const chunk of s) text += chunk.choices?.[0]?.text ?? '';
    assert.equal(text, 'xyz');
  });

  test('X-E2E-Path carries no query string', async () => {
    const key = newKey('query');
    const r = await post('/v1/chat/completions?api-version=2024-01-01', key, chat('query'));
    assert.equal(r.status, 200, r.text);
    assert.equal(invokesOf(key).at(-1).path, '/v1/chat/completions');
  });
});

describe('model resolution and TEE gating', () => {
  test('by chute UUID and by root: the engine receives the listed id', async () => {
    const key = newKey('resolve');
    for (const model of [TEE_CHUTE, TEE_ROOT]) {
      const c = await sdk(key).chat.completions.create({ model, messages: [{ role: 'user', content: `by ${model}` }] });
      assert.equal(c.choices[0].message.content, `echo: by ${model}`);
      assert.equal(engine.requests.at(-1).json.model, TEE_MODEL, `model ${model}`);
      assert.equal(invokesOf(key).at(-1).chuteId, TEE_CHUTE);
    }
  });

  test('unknown model → 404; missing model → 400; invalid JSON → 400; nothing invoked', async () => {
    const key = newKey('badreq');
    assertOpenAIError(await post('/v1/chat/completions', key, { model: 'nobody/Nothing', messages: [] }), 404);
    assertOpenAIError(await post('/v1/chat/completions', key, { messages: [{ role: 'user', content: 'x' }] }), 400);
    assertOpenAIError(await post('/v1/chat/completions', key, '{"model": "acme/Model-TEE", "messages": ['), 400);
    assert.equal(invokesOf(key).length, 0);
  });

  test('non-TEE model → 404 with the reference message; its chute UUID too; nothing invoked', async () => {
    const key = newKey('tee');
    const r = await post('/v1/chat/completions', key, { model: PLAIN_MODEL, messages: [{ role: 'user', content: 'x' }] });
    const err = assertOpenAIError(r, 404);
    assert.equal(err.message, TEE_MESSAGE(PLAIN_MODEL));
    const byUuid = await post('/v1/chat/completions', key, { model: PLAIN_CHUTE, messages: [{ role: 'user', content: 'x' }] });
    const err2 = assertOpenAIError(byUuid, 404);
    assert.match(err2.message, /is not running in confidential compute \(TEE\)\. E2EE requires confidential compute to guarantee privacy\. Set ALLOW_NON_CONFIDENTIAL=true to override\.$/);
    assert.equal(invokesOf(key).length, 0);
    assert.equal(discoveriesOf(key).length, 0);
  });

  test('--allow-non-confidential and ALLOW_NON_CONFIDENTIAL=true let the non-TEE model through', async () => {
    const viaFlag = await startProxy(['--upstream', fake.url, '--models-upstream', fake.url, '--allow-non-confidential']);
    const viaEnv = await startProxy(['--upstream', fake.url, '--models-upstream', fake.url], { env: { ALLOW_NON_CONFIDENTIAL: 'true' } });
    try {
      for (const p of [viaFlag, viaEnv]) {
        const key = newKey('allow');
        const c = await sdk(key, p.url).chat.completions.create({ model: PLAIN_CHUTE, messages: [{ role: 'user', content: 'plain' }] });
        assert.equal(c.choices[0].message.content, 'echo: plain');
        assert.equal(engine.requests.at(-1).json.model, PLAIN_MODEL);
        assert.equal(invokesOf(key).at(-1).chuteId, PLAIN_CHUTE);
      }
    } finally {
      await Promise.all([viaFlag.stop(), viaEnv.stop()]);
    }
  });
});

describe('nonce pool and discovery', () => {
  test('steady state: after warm-up, 40 sequential requests cost 40 invokes and ≤ 1 discovery, no 403', async () => {
    const key = newKey('steady');
    const client = sdk(key);
    await client.chat.completions.create(chat('warm up'));
    const inv0 = invokesOf(key).length;
    const disc0 = discoveriesOf(key).length;
    const N = 40;
    for (let i = 0; i < N; i++) {
      const c = await client.chat.completions.create(chat(`steady ${i}`));
      assert.equal(c.choices[0].message.content, `echo: steady ${i}`);
    }
    const invokes = invokesOf(key).slice(inv0);
    assert.equal(invokes.length, N, `invokes: ${invokes.map((i) => i.status).join(',')}`);
    assert.ok(invokes.every((i) => i.status === 200));
    const discoveries = discoveriesOf(key).slice(disc0);
    assert.ok(discoveries.length <= Math.ceil(N / 40), `${discoveries.length} discoveries for ${N} requests`);
  });

  test('403 naming the nonce → the proxy drops the pool, rediscovers and succeeds (2 invokes)', async () => {
    const key = newKey('nonce403');
    const client = sdk(key);
    await client.chat.completions.create(chat('warm up'));
    const inv0 = invokesOf(key).length;
    const disc0 = discoveriesOf(key).filter((d) => d.status === 200).length;
    fake.expireNonces();
    const c = await client.chat.completions.create(chat('after expiry'));
    assert.equal(c.choices[0].message.content, 'echo: after expiry');
    assert.deepEqual(invokesOf(key).slice(inv0).map((i) => i.status), [403, 200]);
    assert.ok(discoveriesOf(key).filter((d) => d.status === 200).length > disc0);
  });

  test('403 naming the nonce twice → an error after exactly 2 invokes (one retry)', async () => {
    const key = newKey('nonce403x2');
    const client = sdk(key);
    await client.chat.completions.create(chat('warm up'));
    const inv0 = invokesOf(key).length;
    fake.failNext(2, 403, peer.DETAIL.nonce);
    const r = await post('/v1/chat/completions', key, chat('twice'));
    assert.ok(r.status >= 400, r.text);
    assertOpenAIError(r, r.status);
    assert.equal(invokesOf(key).length - inv0, 2);
  });

  test('a 403 that does not name the nonce → 403 to the client, no retry', async () => {
    const key = newKey('forbidden');
    await sdk(key).chat.completions.create(chat('warm up'));
    const inv0 = invokesOf(key).length;
    fake.failNext(1, 403, 'Access to this chute is forbidden.');
    const r = await post('/v1/chat/completions', key, chat('forbidden'));
    const err = assertOpenAIError(r, 403);
    assert.match(err.message, /Access to this chute is forbidden\./);
    assert.equal(invokesOf(key).length - inv0, 1);
  });

  test('discovery 429 → a clear 429 to the client; the proxy does not hammer discovery', async () => {
    const key = newKey('ratelimit');
    fake.discoveriesPerMinute = 0;
    try {
      let status;
      try {
        await sdk(key).chat.completions.create(chat('limited'));
      } catch (err) {
        status = err.status;
        assert.match(err.message, /rate.?limit/i);
      }
      assert.equal(status, 429);
      const r = await post('/v1/chat/completions', key, chat('limited again'));
      assertOpenAIError(r, 429);
      assert.ok(discoveriesOf(key).length <= 2, `${discoveriesOf(key).length} discovery calls for 2 requests`);
      assert.equal(invokesOf(key).length, 0);
    } finally {
      fake.discoveriesPerMinute = peer.DISCOVERIES_PER_MINUTE;
    }
  });

  test('nonce_expires_in is honoured: nonces past their expiry are not used', async () => {
    const key = newKey('expiry');
    // Longer than any sensible safety margin, short enough for a test.
    const ttl = 6;
    fake.nonceExpiresIn = ttl;
    fake.nonceServerTtl = ttl;
    try {
      const client = sdk(key);
      await client.chat.completions.create(chat('fresh'));
      const discovered = discoveriesOf(key).at(-1).at;
      // The nonces expire by the clock; nothing to await but time.
      await new Promise((r) => setTimeout(r, discovered + ttl * 1000 + 300 - Date.now()));
      const inv0 = invokesOf(key).length;
      const c = await client.chat.completions.create(chat('after ttl'));
      assert.equal(c.choices[0].message.content, 'echo: after ttl');
      assert.deepEqual(invokesOf(key).slice(inv0).map((i) => i.status), [200], 'no request with an expired nonce');
    } finally {
      fake.nonceExpiresIn = peer.NONCE_CLIENT_TTL;
      fake.nonceServerTtl = peer.NONCE_SERVER_TTL;
    }
  });

  test('a short nonce_expires_in (2 s) still serves requests', async () => {
    const key = newKey('shortttl');
    fake.nonceExpiresIn = 2;
    fake.nonceServerTtl = 2;
    try {
      const c = await sdk(key).chat.completions.create(chat('short ttl'));
      assert.equal(c.choices[0].message.content, 'echo: short ttl');
    } finally {
      fake.nonceExpiresIn = peer.NONCE_CLIENT_TTL;
      fake.nonceServerTtl = peer.NONCE_SERVER_TTL;
    }
  });

  for (const newIds of [false, true]) {
    test(`instances restarted with new keys${newIds ? ' and new ids' : ''} → the proxy recovers; the next request succeeds`, async () => {
      const key = newKey('rotate');
      const client = sdk(key);
      await client.chat.completions.create(chat('before restart'));
      fake.rotateKeys({ chuteId: TEE_CHUTE, newIds });
      const first = await post('/v1/chat/completions', key, chat('first after restart'));
      if (first.status !== 200) assertOpenAIError(first, first.status);
      const c = await client.chat.completions.create(chat('second after restart'));
      assert.equal(c.choices[0].message.content, 'echo: second after restart');
    });
  }

  test('affinity: two alternating conversations each stay on one instance; many conversations spread', async () => {
    const key = newKey('affinity');
    const client = sdk(key);
    const convs = { a: [{ role: 'system', content: 'You are A.' }], b: [{ role: 'system', content: 'You are B.' }] };
    const landed = { a: [], b: [] };
    for (let turn = 0; turn < 4; turn++) {
      for (const name of ['a', 'b']) {
        convs[name].push({ role: 'user', content: `${name} turn ${turn}` });
        const c = await client.chat.completions.create({ model: TEE_MODEL, messages: convs[name] });
        convs[name].push({ role: 'assistant', content: c.choices[0].message.content });
        landed[name].push(invokesOf(key).at(-1).instanceId);
      }
    }
    assert.equal(new Set(landed.a).size, 1, `conversation a landed on ${landed.a}`);
    assert.equal(new Set(landed.b).size, 1, `conversation b landed on ${landed.b}`);
    // A fresh pool (5 instances × 10 nonces): 8 new conversations must not all be packed onto one
    // instance (first-instance-first would; a hash spread does so with probability 5^-7).
    const key2 = newKey('spread');
    const client2 = sdk(key2);
    const spread = new Set();
    for (let i = 0; i < 8; i++) {
      await client2.chat.completions.create({ model: TEE_MODEL, messages: [{ role: 'system', content: `Persona ${i}: ${randomUUID()}` }, { role: 'user', content: 'hi' }] });
      spread.add(invokesOf(key2).at(-1).instanceId);
    }
    assert.equal(discoveriesOf(key2).filter((d) => d.status === 200).length, 1);
    assert.ok(spread.size >= 2, `8 different conversations all went to ${[...spread]}`);
  });
});

describe('errors from Chutes and the instance', () => {
  test('engine 400 relayed by Chutes as undecryptable base64 → 400 with an actionable message, no base64', async () => {
    const key = newKey('opaque400');
    engine.enqueue({ status: 400, json: { object: 'error', message: 'context too long', type: 'BadRequestError', code: 400 } });
    const r = await post('/v1/chat/completions', key, chat('too long'));
    const err = assertOpenAIError(r, 400);
    assert.doesNotMatch(err.message, /[A-Za-z0-9+/]{40,}/, `base64 in the message: ${err.message}`);
    assert.ok(err.message.length >= 30, `not actionable: ${err.message}`);
    assert.doesNotMatch(r.text, /[A-Za-z0-9+/]{200,}/, 'the opaque detail is not passed through anywhere in the body');
  });

  for (const [status, detailText] of [
    [402, 'TEE models require an active subscription or positive balance.'],
    [429, 'Instance is at maximum capacity, try again later'],
    [503, 'This chute is currently disabled.'],
    [500, 'Internal error during E2E invocation'],
  ]) {
    test(`invoke ${status} {"detail":"${detailText}"} → OpenAI error shape, status ${status >= 500 ? '5xx' : status}`, async () => {
      const key = newKey(`detail${status}`);
      await sdk(key).chat.completions.create(chat('warm up'));
      fake.failNext(20, status, detailText);
      try {
        const r = await post('/v1/chat/completions', key, chat('fails'));
        if (status >= 500) assert.ok(r.status >= 500 && r.status < 600, `status ${r.status}`);
        const err = assertOpenAIError(r, status >= 500 ? r.status : status);
        assert.ok(err.message.includes(detailText), `message does not carry the detail: ${err.message}`);
        let sdkStatus;
        try {
          await sdk(key).chat.completions.create(chat('fails again'));
        } catch (e) {
          sdkStatus = e.status;
        }
        assert.equal(sdkStatus, r.status);
      } finally {
        fake.clearFailures();
      }
    });
  }

  test('a tampered non-stream response blob → 502, nothing of it passed on', async () => {
    const key = newKey('badblob');
    fake.tamperNext({ response: true });
    const r = await post('/v1/chat/completions', key, chat('tampered'));
    assertOpenAIError(r, 502);
  });

  const streamFaults = [
    ['a tampered stream chunk', { streamChunk: 3 }],
    ['an e2e_error event', { e2eErrorAfter: 3, value: 'instance failed' }],
    ['a stream that ends without [DONE]', { endAfter: 4 }],
  ];
  for (const [name, fault] of streamFaults) {
    test(`${name} → the client gets an error event and one [DONE], never a silent success`, async () => {
      const key = newKey('streamfault');
      fake.tamperNext(fault);
      const r = await post('/v1/chat/completions', key, chat('fault a b c d e f g', { stream: true }));
      assert.equal(r.status, 200);
      const events = assertWellFormedStream(r.text);
      const errors = events.filter((e) => e.error);
      assert.equal(errors.length, 1, r.text);
      assert.equal(typeof errors[0].error.message, 'string');
      assert.ok(events.indexOf(errors[0]) === events.length - 1, 'the error is the last event before [DONE]');
      if (fault.streamChunk !== undefined) {
        // What was decrypted before the tampered chunk is the client's, however the instance's
        // bytes were split into reads: engine lines 0-1 are the first event; line 2 opens the
        // second, whose closing blank line (3) is the tampered one.
        const clean = assertWellFormedStream((await post('/v1/chat/completions', key, chat('fault a b c d e f g', { stream: true }))).text);
        const good = events.slice(0, -1);
        assert.equal(good.length, 1, r.text);
        assert.deepEqual(good[0].choices, clean[0].choices);
      }
      fake.tamperNext(fault);
      await assert.rejects(async () => {
        const s = await sdk(key).chat.completions.create(chat('fault a b c d e f g', { stream: true }));
        for await (const _ of s);
      }, (err) => err instanceof OpenAI.APIError);
    });
  }

  test('engine killed mid-stream → error event and [DONE]', async () => {
    const key = newKey('enginecut');
    engine.enqueue({ frames: chatFrames({ model: TEE_MODEL, pieces: ['a', 'b', 'c', 'd', 'e'], includeUsage: true, continuousUsage: true }), closeAfterFrames: 3, partialBytes: 15 });
    const r = await post('/v1/chat/completions', key, chat('cut', { stream: true }));
    assert.equal(r.status, 200);
    const events = assertWellFormedStream(r.text);
    assert.equal(events.filter((e) => e.error).length, 1, r.text);
    assert.equal(contentOf(events.filter((e) => !e.error)), 'ab');
  });

  test('Chutes unreachable → 502/503/504 in the OpenAI shape', async () => {
    const dead = await listen(() => {});
    const deadUrl = dead.url;
    await dead.close();
    const p = await startProxy(['--upstream', deadUrl, '--models-upstream', fake.url]);
    try {
      const r = await post('/v1/chat/completions', newKey('down'), chat('down'), { base: p.url });
      assert.ok([502, 503, 504].includes(r.status), `status ${r.status}: ${r.text}`);
      assertOpenAIError(r, r.status);
    } finally {
      await p.stop();
    }
  });
});

describe('logs and lifecycle', () => {
  test('no plaintext in logs: the marker (prompts and completions) appears in no trace-level line; nor does the API key', async () => {
    const key = newKey('secretkey');
    await sdk(key).chat.completions.create(chat(`log check ${MARKER}`));
    const s = await sdk(key).chat.completions.create(chat(`log check stream ${MARKER}`, { stream: true }));
    for await (const _ of s);
    assert.ok(engine.requests.some((r) => r.body.includes(MARKER)), 'the marker did reach the engine');
    assert.ok(proxy.lines.length > 1, 'trace logging printed nothing');
    assert.deepEqual(linesContaining([proxy], MARKER), []);
    assert.deepEqual(linesContaining([proxy], key), [], 'the API key is logged');
  });

  test('SIGTERM → exit code 0', async () => {
    await proxy.stop();
  });
});
