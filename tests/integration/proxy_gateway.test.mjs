// The whole product on loopback: clients (the npm `openai` SDK, Debian's curl, raw HTTP) → e2ee-proxy
// (an http:// and an https:// listener on the same process, TLS from a CA the test made with
// openssl) → a recording relay → e2ee-gateway (--confidential true, --model) → the scripted engine.
// The ground truth is what the engine sent and received and what the relay saw on the wire; nothing
// asserted is computed by the processes under test. The last block runs the proxy against the fake
// api.chutes.ai of lib/chutes_peer.mjs to check which client headers reach the upstream.

import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadOpenAI } from './lib/deps.mjs';
import { request } from './lib/http.mjs';
import { chatFrames, completionFrames, CREATED } from './lib/engine.mjs';
import { startProxy } from './lib/processes.mjs';
import * as peer from './lib/chutes_peer.mjs';
import { startStack, startRecorder, curl, assertOpenAIError, assertWellFormedStream, ssePayloads, contentOf, MODEL, CHUTE } from './lib/e2e_stack.mjs';
import { scratchDir, makeRootCa, makeCert } from './lib/tls_tools.mjs';
import { nodeFetch, recordingFetch } from './lib/node_fetch.mjs';

const OpenAI = await loadOpenAI();

const dir = scratchDir('e2ee-pg-');
let ca;
let leaf;
let engine;
let gateway;
let relay;
let proxy;
let httpUrl;
let httpsUrl;
let sent = []; // what the SDK put on the wire (recordingFetch)

before(async () => {
  ca = await makeRootCa(dir, 'proxy gateway test root');
  leaf = await makeCert(dir, ca, { cn: 'localhost', sans: ['DNS:localhost', 'IP:127.0.0.1'] });
  ({ engine, gateway, recorder: relay, proxy } = await startStack({
    record: true,
    proxyArgs: ['--listen', 'http://127.0.0.1:0', '--listen', 'https://127.0.0.1:0', '--tls-cert', leaf.cert, '--tls-key', leaf.key],
  }));
  httpUrl = proxy.urls.find((u) => u.startsWith('http://'));
  httpsUrl = proxy.urls.find((u) => u.startsWith('https://'));
});
afterEach(() => {
  for (const p of [proxy, gateway]) if (p && !p.stopped) p.assertRunning();
});
after(async () => {
  await relay?.close();
  await engine?.close();
});

const newKey = (what) => `cpk_${what}_${randomUUID().slice(0, 8)}`;
const tlsOpts = () => ({ ca: readFileSync(ca.cert) });
function sdk(apiKey, base = httpUrl) {
  const fetch = recordingFetch(nodeFetch(tlsOpts()), sent);
  return new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0, timeout: 30000, fetch });
}
const chat = (content, extra = {}) => ({ model: MODEL, messages: [{ role: 'user', content }], ...extra });
const invokesOf = (key) => relay.requests.filter((r) => r.path === '/e2e/invoke' && r.headers.authorization === `Bearer ${key}`);

function post(base, path, key, body, { headers = {}, stream = false } = {}) {
  return request(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    stream,
    tls: tlsOpts(),
  });
}

// The engine's JSON body minus the stream_options the instance side forces.
function withoutForcedUsage(json) {
  const { stream_options: so, ...rest } = json;
  assert.equal(so?.include_usage, true, `include_usage not forced: ${JSON.stringify(json)}`);
  return rest;
}

// The engine's bytes must be the client's bytes with at most one edit: include_usage forced to
// true (inserted as a member of stream_options, a new stream_options member, or false → true).
function assertOnlyUsageForced(clientText, engineText) {
  if (clientText === engineText) return;
  let p = 0;
  while (p < clientText.length && p < engineText.length && clientText[p] === engineText[p]) p++;
  let s = 0;
  while (s < clientText.length - p && s < engineText.length - p && clientText[clientText.length - 1 - s] === engineText[engineText.length - 1 - s]) s++;
  const removed = clientText.slice(p, clientText.length - s);
  const inserted = engineText.slice(p, engineText.length - s);
  const ok =
    (removed === '' && /^\s*,?\s*("stream_options"\s*:\s*\{\s*"include_usage"\s*:\s*true\s*\}|"include_usage"\s*:\s*true)\s*,?\s*$/.test(inserted)) ||
    (/^(fals|false)$/.test(removed) && /^(tru|true)$/.test(inserted));
  assert.ok(ok, `the engine bytes differ from the client bytes by more than include_usage: removed ${JSON.stringify(removed)}, inserted ${JSON.stringify(inserted)}\nclient: ${clientText}\nengine: ${engineText}`);
}

describe('listeners', () => {
  test('one process, two listeners: the start line names an http:// and an https:// URL; /health on both', async () => {
    assert.ok(httpUrl && httpsUrl, proxy.startLine);
    assert.notEqual(new URL(httpUrl).port, new URL(httpsUrl).port);
    for (const base of [httpUrl, httpsUrl]) {
      const r = await request(`${base}/health`, { tls: tlsOpts() });
      assert.equal(r.status, 200, base);
      assert.deepEqual(r.json(), { status: 'ok' });
    }
    // Plain HTTP on the TLS port is not served as if it were TLS.
    const plainOnTls = await request(`http://127.0.0.1:${new URL(httpsUrl).port}/health`, { timeoutMs: 5000 }).then(
      (r) => r.status,
      (e) => e.code ?? e.message,
    );
    assert.notEqual(plainOnTls, 200);
  });
});

describe('OpenAI SDK over http and https', () => {
  for (const scheme of ['http', 'https']) {
    test(`${scheme}: non-stream — the answer is the engine's; the engine received exactly the SDK's bytes`, async () => {
      const key = newKey(`sdk_${scheme}`);
      const base = scheme === 'http' ? httpUrl : httpsUrl;
      const content = `Bonjour ${randomUUID()} — 日本語 \u{1F600}`;
      engine.enqueue({ json: { id: 'chatcmpl-sdk', object: 'chat.completion', created: CREATED, model: MODEL, choices: [{ index: 0, message: { role: 'assistant', content: `réponse ${content}` }, finish_reason: 'stop', logprobs: null }], usage: { prompt_tokens: 4, completion_tokens: 5, total_tokens: 9 } } });
      const n = sent.length;
      const c = await sdk(key, base).chat.completions.create(chat(content, { temperature: 0.25, max_tokens: 64, seed: 7 }));
      assert.equal(c.choices[0].message.content, `réponse ${content}`);
      assert.deepEqual(c.usage, { prompt_tokens: 4, completion_tokens: 5, total_tokens: 9 });
      const wire = sent.slice(n).find((s) => s.url.endsWith('/chat/completions'));
      assert.ok(wire, 'the SDK request was recorded');
      assert.equal(engine.requests.at(-1).body.toString('utf8'), wire.body.toString('utf8'));
      assert.equal(invokesOf(key).length, 1);
      assert.equal(invokesOf(key)[0].headers['x-e2e-stream'], 'false');
    });

    test(`${scheme}: stream — content exact; the engine got the SDK's JSON plus include_usage, keys in order`, async () => {
      const key = newKey(`sdks_${scheme}`);
      const base = scheme === 'http' ? httpUrl : httpsUrl;
      const pieces = ['Un', 'e ', 'réponse ', '"citée" ', '\\ ', '\n', '日本', `${randomUUID()}`];
      engine.enqueue({ frames: chatFrames({ model: MODEL, pieces, includeUsage: true, continuousUsage: true }), paceMs: 1 });
      const n = sent.length;
      const s = await sdk(key, base).chat.completions.create(chat('stream please', { stream: true, temperature: 0 }));
      let text = '';
      let finish = null;
      for await (const chunk of s) {
        text += chunk.choices?.[0]?.delta?.content ?? '';
        finish = chunk.choices?.[0]?.finish_reason ?? finish;
      }
      assert.equal(text, pieces.join(''));
      assert.equal(finish, 'stop');
      const wire = JSON.parse(sent.slice(n).find((x) => x.url.endsWith('/chat/completions')).body);
      const got = engine.requests.at(-1).json;
      const rest = withoutForcedUsage(got);
      assert.deepEqual(rest, wire);
      assert.deepEqual(Object.keys(rest), Object.keys(wire), 'key order kept');
      assert.equal(invokesOf(key)[0].headers['x-e2e-stream'], 'true');
    });
  }

  test('SDK models.list() over https shows the gateway model', async () => {
    const list = await sdk(newKey('models'), httpsUrl).models.list();
    const m = list.data.find((x) => x.id === MODEL);
    assert.ok(m, JSON.stringify(list.data));
    assert.equal(m.chute_id, CHUTE);
    assert.equal(m.confidential_compute, true);
  });

  test('SDK /v1/completions, non-stream and stream', async () => {
    const key = newKey('cmpl');
    const c = await sdk(key).completions.create({ model: MODEL, prompt: 'complete me', max_tokens: 5 });
    assert.equal(c.choices[0].text, 'echo: complete me');
    assert.equal(engine.requests.at(-1).path, '/v1/completions');
    engine.enqueue({ frames: completionFrames({ model: MODEL, pieces: ['a', 'β', 'c'], includeUsage: true }) });
    const s = await sdk(key, httpsUrl).completions.create({ model: MODEL, prompt: 'stream me', stream: true });
    let text = '';
    for await (const chunk of s) text += chunk.choices?.[0]?.text ?? '';
    assert.equal(text, 'aβc');
    assert.equal(engine.requests.at(-1).path, '/v1/completions');
  });
});

describe('raw HTTP', () => {
  test('non-stream: client JSON reaches the engine byte for byte; the engine bytes come back byte for byte (both listeners)', async () => {
    for (const base of [httpUrl, httpsUrl]) {
      const key = newKey('rawbytes');
      const clientJson = `{ "model" : "${MODEL}", "messages":[{"role":"user","content":"caf\\u00e9 \u00e9 \\/ \\ud83d\\ude00 x"}],"seed":18446744073709551615,"temperature":0.30000000000000004,"logit_bias":{"50256":-100},"tools":[],"metadata":{},"stop":[] , "n":1e0 }`;
      const engineAnswer = `{"id":"chatcmpl-raw",  "object":"chat.completion","created":${CREATED},"model":"${MODEL}","choices":[{"index":0,"message":{"role":"assistant","content":"ok \\u00e9 \u00e9"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2},"big":18446744073709551615,"dec":0.1000000000000000055511151231257827}`;
      engine.enqueue({ body: engineAnswer });
      const r = await post(base, '/v1/chat/completions', key, clientJson);
      assert.equal(r.status, 200, r.text);
      assert.match(String(r.headers['content-type']), /^application\/json/);
      assert.equal(r.body.toString('utf8'), engineAnswer);
      assert.equal(engine.requests.at(-1).body.toString('utf8'), clientJson);
    }
  });

  test('stream: well-formed SSE, exactly one [DONE], every engine chunk event intact and in order', async () => {
    for (const base of [httpUrl, httpsUrl]) {
      const key = newKey('rawstream');
      const pieces = ['α', 'β ', '{"json":"inside"}', ' data: [DONE] ', 'end'];
      const frames = chatFrames({ model: MODEL, pieces, includeUsage: true, continuousUsage: true });
      engine.enqueue({ frames });
      const clientJson = `{"model":"${MODEL}","messages":[{"role":"user","content":"s"}],"stream":true,"max_tokens":12}`;
      const r = await post(base, '/v1/chat/completions', key, clientJson);
      assert.equal(r.status, 200, r.text);
      assert.match(String(r.headers['content-type']), /^text\/event-stream/);
      const events = assertWellFormedStream(r.text);
      assert.equal(contentOf(events), pieces.join(''));
      // The engine's chunk events (minus the usage-only one this client did not ask for) arrive as the
      // same JSON values.
      const engineEvents = ssePayloads(frames.join(''))
        .filter((p) => p !== '[DONE]')
        .map((p) => JSON.parse(p))
        .filter((e) => e.choices.length > 0);
      assert.deepEqual(events.filter((e) => e.object === 'chat.completion.chunk'), engineEvents);
      assert.equal(events.filter((e) => e.error).length, 0);
      const got = engine.requests.at(-1).json;
      assert.deepEqual(withoutForcedUsage(got), JSON.parse(clientJson));
      assertOnlyUsageForced(clientJson, engine.requests.at(-1).body.toString('utf8'));
    }
  });

  test('stream: the engine gets the client bytes with only include_usage forced (absent, other stream_options, false, already true)', async () => {
    const variants = [
      `{ "model" : "${MODEL}", "messages":[{"role":"user","content":"v1 \\u00e9"}],"stream":true, "seed":18446744073709551615 , "temperature":0.10000000000000000555 }`,
      `{"model":"${MODEL}","messages":[{"role":"user","content":"v2"}],"stream":true,"stream_options":{"continuous_usage_stats":false},"n":1}`,
      `{"model":"${MODEL}","messages":[{"role":"user","content":"v3"}],"stream":true,"stream_options":{"include_usage":false},"tools":[]}`,
      `{"model":"${MODEL}","messages":[{"role":"user","content":"v4"}],"stream_options":{"include_usage":true},"stream":true}`,
    ];
    for (const clientJson of variants) {
      const r = await post(httpUrl, '/v1/chat/completions', newKey('variant'), clientJson);
      assert.equal(r.status, 200, r.text);
      assertWellFormedStream(r.text);
      const engineText = engine.requests.at(-1).body.toString('utf8');
      assert.equal(JSON.parse(engineText).stream_options.include_usage, true, engineText);
      assertOnlyUsageForced(clientJson, engineText);
    }
  });

  test('stream with stream_options.include_usage: the usage chunk reaches the client; the other stream_options survive', async () => {
    const key = newKey('usage');
    const r = await post(httpUrl, '/v1/chat/completions', key, chat('count', { stream: true, stream_options: { include_usage: true, continuous_usage_stats: false } }));
    const events = assertWellFormedStream(r.text);
    const usage = events.filter((e) => Array.isArray(e.choices) && e.choices.length === 0 && e.usage);
    assert.equal(usage.length, 1, r.text);
    assert.equal(usage[0].usage.completion_tokens, 2); // "echo: " + "count": two pieces
    assert.deepEqual(engine.requests.at(-1).json.stream_options, { include_usage: true, continuous_usage_stats: false });
  });
});

describe('curl', () => {
  test('curl over http: non-stream body byte-exact', async () => {
    const key = newKey('curl');
    const engineAnswer = `{"id":"c","object":"chat.completion","created":${CREATED},"model":"${MODEL}","choices":[{"index":0,"message":{"role":"assistant","content":"from curl ✓"},"finish_reason":"stop"}]}`;
    engine.enqueue({ body: engineAnswer });
    const body = JSON.stringify(chat('curl says hi'));
    const r = await curl(['-H', `Authorization: Bearer ${key}`, '-H', 'Content-Type: application/json', '--data-binary', '@-', `${httpUrl}/v1/chat/completions`], { input: body });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.body, engineAnswer);
    assert.equal(engine.requests.at(-1).body.toString(), body);
  });

  test('curl --cacert over https: stream, one [DONE]; without the CA curl refuses (exit 60)', async () => {
    const key = newKey('curls');
    const r = await curl(['-N', '--cacert', ca.cert, '-H', `Authorization: Bearer ${key}`, '-H', 'Content-Type: application/json', '--data-binary', '@-', `${httpsUrl}/v1/chat/completions`], { input: JSON.stringify(chat('curl stream', { stream: true })) });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.status, 200, r.body);
    assert.equal(contentOf(assertWellFormedStream(r.body)), 'echo: curl stream');
    const before = engine.count;
    const untrusted = await curl([`${httpsUrl}/health`]);
    assert.equal(untrusted.code, 60, `curl without --cacert: exit ${untrusted.code} ${untrusted.stderr}`);
    assert.equal(engine.count, before);
  });

  test('curl GET /v1/models with x-api-key', async () => {
    const r = await curl(['--cacert', ca.cert, '-H', `x-api-key: ${newKey('curlm')}`, `${httpsUrl}/v1/models`]);
    assert.equal(r.status, 200, r.body);
    const entry = JSON.parse(r.body).data.find((m) => m.id === MODEL);
    assert.equal(entry.chute_id, CHUTE);
    assert.equal(entry.confidential_compute, true);
  });
});

describe('/v1/models pass-through', () => {
  test('the proxy answers what the gateway lists (same JSON), with chute_id and confidential_compute; the key goes upstream', async () => {
    const key = newKey('models');
    const direct = await request(`${gateway.url}/v1/models`);
    for (const base of [httpUrl, httpsUrl]) {
      const n = relay.requests.length;
      const r = await request(`${base}/v1/models`, { headers: { authorization: `Bearer ${key}` }, tls: tlsOpts() });
      assert.equal(r.status, 200, r.text);
      assert.match(String(r.headers['content-type']), /application\/json/);
      assert.deepEqual(r.json(), direct.json());
      const entry = r.json().data.find((m) => m.id === MODEL);
      assert.equal(entry.chute_id, CHUTE);
      assert.equal(entry.confidential_compute, true);
      const up = relay.requests.slice(n).filter((q) => q.path === '/v1/models');
      assert.equal(up.length, 1, 'one upstream /v1/models request per client request');
      assert.equal(up[0].headers.authorization, `Bearer ${key}`);
    }
    // The list is stable: a listing in a later second is the same document (created does not tick).
    await new Promise((resolve) => setTimeout(resolve, 1050 - (Date.now() % 1000)));
    const later = await request(`${httpUrl}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
    assert.deepEqual(later.json(), direct.json());
  });
});

describe('size and concurrency', () => {
  test('a 450 KB request body round trip (non-stream and stream)', async () => {
    const key = newKey('big');
    const big = randomBytes(340 * 1024).toString('base64'); // ~450 KiB of text
    assert.ok(big.length >= 450 * 1024);
    const body = JSON.stringify(chat(big));
    const r = await post(httpsUrl, '/v1/chat/completions', key, body);
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.equal(r.json().choices[0].message.content, `echo: ${big}`);
    assert.equal(engine.requests.at(-1).body.toString(), body);
    const s = await post(httpUrl, '/v1/chat/completions', key, chat(big, { stream: true }));
    assert.equal(s.status, 200);
    assert.equal(contentOf(assertWellFormedStream(s.text)), `echo: ${big}`);
  });

  test('20 concurrent requests (half streamed, both listeners, SDK and raw) each get their own answer', async () => {
    const key = newKey('many');
    const before = engine.count;
    const jobs = Array.from({ length: 20 }, async (_, i) => {
      const base = i % 4 < 2 ? httpUrl : httpsUrl;
      const word = `job-${i}-${randomUUID()}`;
      if (i % 2 === 0) {
        const r = await post(base, '/v1/chat/completions', key, chat(word, { stream: true }));
        assert.equal(r.status, 200, r.text);
        return [word, contentOf(assertWellFormedStream(r.text))];
      }
      const c = await sdk(key, base).chat.completions.create(chat(word));
      return [word, c.choices[0].message.content];
    });
    const results = await Promise.all(jobs);
    for (const [word, got] of results) assert.equal(got, `echo: ${word}`);
    assert.equal(engine.count - before, 20);
  });
});

describe('API keys', () => {
  test('x-api-key is used as the key (forwarded upstream as Bearer)', async () => {
    const key = newKey('xkey');
    const r = await post(httpUrl, '/v1/chat/completions', null, chat('x-api-key'), { headers: { 'x-api-key': key } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json().choices[0].message.content, 'echo: x-api-key');
    assert.equal(invokesOf(key).length, 1);
    const disc = relay.requests.filter((q) => q.path.startsWith('/e2e/instances/') && q.headers.authorization === `Bearer ${key}`);
    assert.equal(disc.length, 1);
  });

  test('no key and no --api-key → 401 in the OpenAI shape; nothing goes upstream', async () => {
    const n = relay.requests.length;
    const before = engine.count;
    for (const base of [httpUrl, httpsUrl]) assertOpenAIError(await post(base, '/v1/chat/completions', null, chat('no key')), 401);
    assertOpenAIError(await post(httpUrl, '/v1/chat/completions', null, chat('empty x-api-key'), { headers: { 'x-api-key': '' } }), 401);
    assert.equal(relay.requests.length, n);
    assert.equal(engine.count, before);
  });

  test('an Authorization header with an empty bearer token is no key → 401; nothing goes upstream', async () => {
    const n = relay.requests.length;
    for (const value of ['Bearer ', 'Bearer', 'bearer   ']) {
      const r = await post(httpUrl, '/v1/chat/completions', null, chat('empty bearer'), { headers: { authorization: value } });
      const sentAs = relay.requests.slice(n).map((q) => q.headers.authorization);
      assert.equal(r.status, 401, `Authorization ${JSON.stringify(value)} → ${r.status}; upstream saw Authorization ${JSON.stringify(sentAs)}`);
      assertOpenAIError(r, 401);
    }
    assert.equal(relay.requests.length, n);
  });

  for (const how of ['--api-key', 'E2EE_API_KEY']) {
    test(`${how}: used for requests without a key; a request's own key still wins`, async () => {
      const fallback = newKey('fallback');
      const p = await startProxy(['--upstream', relay.url, '--models-upstream', relay.url, ...(how === '--api-key' ? ['--api-key', fallback] : [])], { env: how === 'E2EE_API_KEY' ? { E2EE_API_KEY: fallback } : {} });
      try {
        const r = await post(p.url, '/v1/chat/completions', null, chat('fallback'));
        assert.equal(r.status, 200, r.text);
        assert.equal(invokesOf(fallback).length, 1);
        const own = newKey('own');
        const r2 = await post(p.url, '/v1/chat/completions', own, chat('own'));
        assert.equal(r2.status, 200, r2.text);
        assert.equal(invokesOf(own).length, 1);
        assert.equal(invokesOf(fallback).length, 1);
      } finally {
        await p.stop();
      }
    });
  }
});

describe('client headers that identify the user or machine never reach the upstream', () => {
  const ident = () => {
    const v = (what) => `${what}-${randomUUID()}`;
    return {
      'session-id': v('session'),
      'thread-id': v('thread'),
      'x-client-request-id': v('reqid'),
      'x-codex-turn-metadata': JSON.stringify({ turn: v('turn'), cwd: '/home/alice/secret-project' }),
      'X-Claude-Code-Session-Id': v('claude'),
      'User-Agent': `OpenAI/JS 6.49.0 alice-laptop ${v('ua')}`,
      'x-stainless-os': `Linux-${v('os')}`,
      'x-stainless-arch': `x64-${v('arch')}`,
      'x-stainless-runtime-version': `v20-${v('rt')}`,
      'x-stainless-lang': `js-${v('lang')}`,
      'x-stainless-package-version': `6.49.0-${v('pkg')}`,
      'originator': `codex_cli_rs-${v('orig')}`,
      'x-forwarded-for': '10.1.2.3',
      'cookie': `sid=${v('cookie')}`,
    };
  };

  // Required per spec §4/§7 (invoke, discovery) and §13 (models), plus framing; nothing else.
  const ALLOWED = {
    invoke: new Set(['host', 'authorization', 'x-chute-id', 'x-instance-id', 'x-e2e-nonce', 'x-e2e-stream', 'x-e2e-path', 'content-type', 'content-length', 'accept', 'connection', 'user-agent', 'accept-encoding']),
    discovery: new Set(['host', 'authorization', 'cache-control', 'accept', 'connection', 'user-agent', 'accept-encoding']),
    models: new Set(['host', 'authorization', 'accept', 'connection', 'user-agent', 'accept-encoding']),
  };
  const REQUIRED = {
    invoke: ['host', 'authorization', 'x-chute-id', 'x-instance-id', 'x-e2e-nonce', 'x-e2e-stream', 'x-e2e-path', 'content-type', 'content-length'],
    discovery: ['host', 'authorization'],
    models: ['host', 'authorization'],
  };
  const kindOf = (path) => (path === '/e2e/invoke' ? 'invoke' : path.startsWith('/e2e/instances/') ? 'discovery' : path.startsWith('/v1/models') ? 'models' : 'other');

  function checkUpstream(requests, values, key) {
    assert.ok(requests.length > 0, 'nothing reached the upstream');
    for (const r of requests) {
      const kind = kindOf(r.path);
      assert.notEqual(kind, 'other', `unexpected upstream request ${r.method} ${r.path}`);
      const names = r.rawHeaders.map(([n]) => n.toLowerCase());
      const extra = names.filter((n) => !ALLOWED[kind].has(n));
      assert.deepEqual(extra, [], `${kind} request carried ${extra.join(', ')}: ${JSON.stringify(r.rawHeaders)}`);
      for (const need of REQUIRED[kind]) assert.ok(names.includes(need), `${kind} request lacks ${need}`);
      assert.equal(new Set(names).size, names.length, `duplicate header names: ${names}`);
      assert.equal(r.headers.authorization, `Bearer ${key}`);
      const all = JSON.stringify(r.rawHeaders);
      for (const v of Object.values(values)) {
        for (const part of v.split(/[ "{},:=]+/).filter((x) => x.length >= 12)) assert.ok(!all.includes(part), `${kind} request headers carry "${part}": ${all}`);
      }
    }
  }

  const bodies = {
    '/v1/chat/completions': (stream) => chat(`hdr ${stream}`, { stream }),
    '/v1/messages': (stream) => ({ model: MODEL, max_tokens: 32, messages: [{ role: 'user', content: `hdr ${stream}` }], stream }),
    '/v1/responses': (stream) => ({ model: MODEL, input: `hdr ${stream}`, stream }),
  };

  async function drive(base, key, values) {
    for (const [path, make] of Object.entries(bodies)) {
      for (const stream of [false, true]) {
        const r = await post(base, path, key, make(stream), { headers: values });
        assert.equal(r.status, 200, `${path} stream=${stream}: ${r.text}`);
      }
    }
    const m = await request(`${base}/v1/models`, { headers: { authorization: `Bearer ${key}`, ...values } });
    assert.equal(m.status, 200, m.text);
  }

  test('proxy → our gateway: discovery, invoke and models requests carry only the protocol headers', async () => {
    const key = newKey('hdrs');
    const values = ident();
    const n = relay.requests.length;
    await drive(httpUrl, key, values);
    checkUpstream(relay.requests.slice(n), values, key);
  });

  test('proxy → fake api.chutes.ai: the same, and the decrypted request bodies carry none of the values', async () => {
    const fakeModels = [{ id: MODEL, object: 'model', created: CREATED, owned_by: 'sglang', root: MODEL, parent: null, max_model_len: 8192, chute_id: CHUTE, confidential_compute: true }];
    const fake = await peer.startFakeChutes({ models: fakeModels, engineUrl: engine.url, instances: 2 });
    const rec = await startRecorder(fake.url);
    const p = await startProxy(['--upstream', rec.url, '--models-upstream', rec.url]);
    try {
      const key = newKey('fakehdrs');
      const values = ident();
      await drive(p.url, key, values);
      checkUpstream(rec.requests, values, key);
      // The fake's own record of the invoke headers agrees.
      assert.ok(fake.invokes.length >= 6);
      for (const inv of fake.invokes) {
        const names = Object.keys(inv.headers);
        assert.deepEqual(names.filter((h) => !ALLOWED.invoke.has(h)), [], JSON.stringify(inv.headers));
      }
      for (const got of fake.received) {
        const text = got.plaintext.toString('utf8');
        for (const v of Object.values(values)) {
          for (const part of v.split(/[ "{},:=]+/).filter((x) => x.length >= 12)) assert.ok(!text.includes(part), `the sealed request body carries "${part}"`);
        }
      }
    } finally {
      await p.stop();
      await rec.close();
      await fake.close();
    }
  });
});

describe('lifecycle', () => {
  test('SIGTERM → both exit 0', async () => {
    await proxy.stop();
    await gateway.stop();
  });
});
