// Bad input and faults on the real path e2ee-proxy → (recording relay) → e2ee-gateway → scripted
// engine. Every case asserts the client's status and error shape, that nothing went upstream when
// nothing should have, and — at the end — that the marker carried by every faulty request shows up
// in no log line of either process. Faults: invalid JSON, missing / unknown model, TEE gating (and
// its overrides), engine down, engine killed mid-stream, gateway restarted on the same port with new
// keys (and with --key-dir), an 11 MiB body, a slow client, a client that disconnects, bad
// command lines and a port in use, SIGTERM right after the start line.

import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { loadOpenAI } from './lib/deps.mjs';
import { request, rawExchange, deferred, within, listen as listenHttp } from './lib/http.mjs';
import { startEngine, chatFrames } from './lib/engine.mjs';
import { start, startProxy, startGateway, binaryPath, linesContaining } from './lib/processes.mjs';
import * as peer from './lib/chutes_peer.mjs';
import { scratchDir, makeRootCa, makeCert } from './lib/tls_tools.mjs';
import { TIME_SCALE, assertMemoryBound } from './lib/sanitizer.mjs';
import { startStack, freePort, run, rssKiB, assertOpenAIError, assertAnthropicError, assertWellFormedStream, contentOf, MODEL, CHUTE, ENGINE_MODELS } from './lib/e2e_stack.mjs';

const OpenAI = await loadOpenAI();

const MARKER = `FAULTMARK-${randomUUID()}`;
const TEE_MESSAGE = (m) => `model '${m}' is not running in confidential compute (TEE). E2EE requires confidential compute to guarantee privacy. Set ALLOW_NON_CONFIDENTIAL=true to override.`;
const keyDir = mkdtempSync(join(tmpdir(), 'e2ee-faults-keys-'));

let engine;
let gateway;
let relay;
let proxy;
const extraProcs = []; // every other proxy / gateway started here, for the log check

before(async () => {
  ({ engine, gateway, recorder: relay, proxy } = await startStack({ record: true, proxyArgs: ['--log-level', 'debug'], gatewayArgs: ['--log-level', 'debug'] }));
});
afterEach(() => {
  for (const p of [proxy, gateway]) if (p && !p.stopped) p.assertRunning();
});
after(async () => {
  await relay?.close();
  await engine?.close();
  rmSync(keyDir, { recursive: true, force: true });
});

const newKey = (what) => `cpk_${what}_${randomUUID().slice(0, 8)}`;
const chat = (content, extra = {}) => ({ model: MODEL, messages: [{ role: 'user', content }], ...extra });
const sdk = (apiKey, base = proxy.url) => new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0, timeout: 30000 });
const upstreamE2e = (from) => relay.requests.slice(from).filter((r) => r.path.startsWith('/e2e/'));

function post(path, key, body, { headers = {}, stream = false, base = proxy.url, timeoutMs } = {}) {
  return request(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
    body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    stream,
    timeoutMs,
  });
}

// Reads an SSE response event by event: next() resolves with the next complete event's data.
function sseReader(res) {
  let buf = '';
  const events = [];
  const waiters = [];
  let ended = false;
  const pump = () => {
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n');
      if (block.split('\n').some((l) => l.startsWith('data:'))) events.push(data);
    }
    while (waiters.length && (events.length || ended)) {
      const w = waiters.shift();
      if (events.length) w.resolve(events.shift());
      else w.resolve(null);
    }
  };
  res.setEncoding('utf8');
  res.on('data', (c) => {
    buf += c;
    pump();
  });
  res.on('end', () => {
    ended = true;
    pump();
  });
  res.on('close', () => {
    ended = true;
    pump();
  });
  return {
    next(ms = 10000) {
      const d = deferred();
      waiters.push(d);
      pump();
      return within(d.promise, ms, 'next SSE event');
    },
  };
}

describe('bad requests: a clear 4xx in the OpenAI shape, nothing upstream, the body not echoed', () => {
  test('invalid JSON → 400', async () => {
    const n = relay.requests.length;
    const before = engine.count;
    for (const body of [`{"model":"${MODEL}","messages":[{"role":"user","content":"${MARKER}"}]`, `{"model": "${MODEL}", ${MARKER}}`, `not json ${MARKER}`, '']) {
      const r = await post('/v1/chat/completions', newKey('badjson'), body);
      const err = assertOpenAIError(r, 400);
      assert.ok(!r.text.includes(MARKER), `the body is echoed: ${r.text}`);
      assert.equal(err.type, 'invalid_request_error', r.text);
    }
    assert.deepEqual(upstreamE2e(n), []);
    assert.equal(engine.count, before);
  });

  test('a JSON body that is not an object, or whose model is not a string → 400', async () => {
    const n = relay.requests.length;
    for (const body of [`["${MARKER}"]`, `"${MARKER}"`, JSON.stringify({ model: 42, messages: [{ role: 'user', content: MARKER }] }), JSON.stringify({ model: null, messages: [] })]) {
      const r = await post('/v1/chat/completions', newKey('notobj'), body);
      assertOpenAIError(r, 400);
      assert.ok(!r.text.includes(MARKER), r.text);
    }
    assert.deepEqual(upstreamE2e(n), []);
  });

  test('missing model → 400 naming the field', async () => {
    const n = relay.requests.length;
    const r = await post('/v1/chat/completions', newKey('nomodel'), { messages: [{ role: 'user', content: MARKER }] });
    const err = assertOpenAIError(r, 400);
    assert.match(err.message, /model/);
    assert.ok(!r.text.includes(MARKER));
    assert.deepEqual(upstreamE2e(n), []);
  });

  test('unknown model → 404 naming it (SDK: NotFoundError)', async () => {
    const n = relay.requests.length;
    const r = await post('/v1/chat/completions', newKey('unknown'), { model: 'nobody/Nothing-7B', messages: [{ role: 'user', content: MARKER }] });
    const err = assertOpenAIError(r, 404);
    assert.ok(err.message.includes('nobody/Nothing-7B'), err.message);
    assert.ok(!r.text.includes(MARKER));
    await assert.rejects(sdk(newKey('unknown')).chat.completions.create({ model: 'nobody/Nothing-7B', messages: [{ role: 'user', content: MARKER }] }), (e) => e instanceof OpenAI.NotFoundError);
    assert.deepEqual(upstreamE2e(n), []);
  });
});

describe('TEE gating (gateway --confidential false)', () => {
  let plain; // { gateway, proxy, recorder }
  before(async () => {
    plain = await startStack({ engine, confidential: false, record: true });
    extraProcs.push(plain.gateway, plain.proxy);
  });
  after(async () => {
    await plain?.recorder?.close();
  });

  test('the gateway lists the model with confidential_compute false', async () => {
    const r = await request(`${plain.gateway.url}/v1/models`);
    assert.equal(r.json().data.find((m) => m.id === MODEL).confidential_compute, false);
  });

  test('by name → 404 with the exact reference message; by chute UUID → refused too; nothing invoked', async () => {
    const before = engine.count;
    const r = await post('/v1/chat/completions', newKey('tee'), chat(MARKER), { base: plain.proxy.url });
    const err = assertOpenAIError(r, 404);
    assert.equal(err.message, TEE_MESSAGE(MODEL));
    const s = await post('/v1/chat/completions', newKey('tee'), chat(MARKER, { stream: true }), { base: plain.proxy.url });
    assert.equal(assertOpenAIError(s, 404).message, TEE_MESSAGE(MODEL));
    const byUuid = await post('/v1/chat/completions', newKey('tee'), { model: CHUTE, messages: [{ role: 'user', content: MARKER }] }, { base: plain.proxy.url });
    const err2 = assertOpenAIError(byUuid, 404);
    assert.match(err2.message, /^model '[^']+' is not running in confidential compute \(TEE\)\. E2EE requires confidential compute to guarantee privacy\. Set ALLOW_NON_CONFIDENTIAL=true to override\.$/);
    const msg = await post('/v1/messages', newKey('tee'), { model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: MARKER }] }, { base: plain.proxy.url });
    assertAnthropicError(msg, 404);
    assert.deepEqual(plain.recorder.requests.filter((q) => q.path.startsWith('/e2e/')), [], 'discovery or invoke for a non-TEE model');
    assert.equal(engine.count, before);
  });

  for (const [how, args, env] of [
    ['--allow-non-confidential', ['--allow-non-confidential'], {}],
    ['ALLOW_NON_CONFIDENTIAL=true', [], { ALLOW_NON_CONFIDENTIAL: 'true' }],
  ]) {
    test(`${how} lets the non-TEE model through (by name and by UUID), and says so at start`, async () => {
      const p = await startProxy(['--upstream', plain.gateway.url, '--models-upstream', plain.gateway.url, ...args], { env });
      extraProcs.push(p);
      try {
        assert.match(p.startLine, /NON-CONFIDENTIAL/);
        for (const model of [MODEL, CHUTE]) {
          const c = await sdk(newKey('allow'), p.url).chat.completions.create({ model, messages: [{ role: 'user', content: `allowed ${model}` }] });
          assert.equal(c.choices[0].message.content, `echo: allowed ${model}`);
          assert.equal(engine.requests.at(-1).json.model, MODEL);
        }
      } finally {
        await p.stop();
      }
    });
  }

  for (const value of ['false', '0', '']) {
    test(`ALLOW_NON_CONFIDENTIAL=${JSON.stringify(value)} does not allow it`, async () => {
      const p = await startProxy(['--upstream', plain.gateway.url, '--models-upstream', plain.gateway.url], { env: { ALLOW_NON_CONFIDENTIAL: value } });
      extraProcs.push(p);
      try {
        assert.doesNotMatch(p.startLine, /NON-CONFIDENTIAL/);
        const r = await post('/v1/chat/completions', newKey('deny'), chat(MARKER), { base: p.url });
        assert.equal(assertOpenAIError(r, 404).message, TEE_MESSAGE(MODEL));
      } finally {
        await p.stop();
      }
    });
  }

  test('spec §12: only the exact string "true" enables ALLOW_NON_CONFIDENTIAL ("TRUE", "1", "yes" do not)', async () => {
    const allowed = [];
    for (const value of ['TRUE', '1', 'yes']) {
      const p = await startProxy(['--upstream', plain.gateway.url, '--models-upstream', plain.gateway.url], { env: { ALLOW_NON_CONFIDENTIAL: value } });
      extraProcs.push(p);
      try {
        const r = await post('/v1/chat/completions', newKey('exact'), chat(MARKER), { base: p.url });
        if (r.status !== 404) allowed.push(`${value} → ${r.status}`);
      } finally {
        await p.stop();
      }
    }
    assert.deepEqual(allowed, [], 'values other than "true" disabled the TEE check');
  });
});

describe('engine faults', () => {
  test('engine down → 502/503/504 in the OpenAI shape with a clear message (non-stream, stream, SDK)', async () => {
    const deadEngine = await startEngine({ models: ENGINE_MODELS });
    const s = await startStack({ engine: deadEngine });
    extraProcs.push(s.gateway, s.proxy);
    await deadEngine.close();
    try {
      for (const stream of [false, true]) {
        const r = await post('/v1/chat/completions', newKey('down'), chat(MARKER, { stream }), { base: s.proxy.url });
        assert.ok([502, 503, 504].includes(r.status), `stream=${stream}: ${r.status} ${r.text}`);
        const err = assertOpenAIError(r, r.status);
        assert.ok(!r.text.includes(MARKER), r.text);
        assert.doesNotMatch(err.message, /[A-Za-z0-9+/]{60,}/, `base64 in the message: ${err.message}`);
        assert.match(err.message, /engine|backend|instance|upstream|unreachable|connect/i, err.message);
      }
      await assert.rejects(sdk(newKey('down'), s.proxy.url).chat.completions.create(chat(MARKER)), (e) => e instanceof OpenAI.APIError && e.status >= 500);
    } finally {
      await s.proxy.stop();
      await s.gateway.stop();
    }
  });

  test('engine cuts the connection mid-stream → the content so far, one error event, then one [DONE] (raw); the SDK throws', async () => {
    const frames = () => chatFrames({ model: MODEL, pieces: ['one ', 'two ', 'three ', 'four ', 'five'], includeUsage: true, continuousUsage: true });
    engine.enqueue({ frames: frames(), closeAfterFrames: 3, partialBytes: 17 });
    const r = await post('/v1/chat/completions', newKey('cut'), chat(`cut ${MARKER}`, { stream: true }));
    assert.equal(r.status, 200);
    const events = assertWellFormedStream(r.text);
    const errors = events.filter((e) => e.error);
    assert.equal(errors.length, 1, r.text);
    assert.equal(events.indexOf(errors[0]), events.length - 1, 'the error is the last event before [DONE]');
    assert.equal(typeof errors[0].error.message, 'string');
    assert.ok(!errors[0].error.message.includes(MARKER));
    assert.equal(contentOf(events.filter((e) => !e.error)), 'one two ');
    engine.enqueue({ frames: frames(), closeAfterFrames: 3, partialBytes: 17 });
    let got = '';
    await assert.rejects(async () => {
      const s = await sdk(newKey('cut')).chat.completions.create(chat(`cut ${MARKER}`, { stream: true }));
      for await (const c of s) got += c.choices?.[0]?.delta?.content ?? '';
    }, (e) => e instanceof OpenAI.APIError || /error/i.test(String(e?.message)));
    assert.equal(got, 'one two ');
  });

  test('engine process goes away mid-stream (listener closed, connections cut) → error event and [DONE]', async () => {
    const e2 = await startEngine({ models: ENGINE_MODELS });
    const s = await startStack({ engine: e2 });
    extraProcs.push(s.gateway, s.proxy);
    try {
      const stalled = deferred();
      e2.enqueue({ frames: chatFrames({ model: MODEL, pieces: ['alpha ', 'beta ', 'gamma'] }), stallAfterFrames: 2, onStall: () => stalled.resolve() });
      const res = await post('/v1/chat/completions', newKey('gone'), chat(`gone ${MARKER}`, { stream: true }), { base: s.proxy.url, stream: true });
      assert.equal(res.status, 200);
      const reader = sseReader(res.res);
      await within(stalled.promise, 10000, 'engine reached the stall');
      const first = [];
      for (let i = 0; i < 2; i++) first.push(await reader.next());
      assert.equal(JSON.parse(first[1]).choices[0].delta.content, 'alpha ');
      await e2.close();
      const rest = [];
      for (let d = await reader.next(); d !== null; d = await reader.next()) rest.push(d);
      assert.equal(rest.at(-1), '[DONE]', JSON.stringify(rest));
      assert.equal(rest.filter((d) => d === '[DONE]').length, 1);
      const errs = rest.slice(0, -1).map((d) => JSON.parse(d)).filter((e) => e.error);
      assert.equal(errs.length, 1, JSON.stringify(rest));
    } finally {
      await s.proxy.stop();
      await s.gateway.stop();
    }
  });

  test('engine error whose message the client must see (400 context too long) → 400 OpenAI shape carrying the engine message', async () => {
    const engineMessage = `This model's maximum context length is 8192 tokens. However, you requested 9000 tokens.`;
    engine.enqueue({ status: 400, json: { object: 'error', message: engineMessage, type: 'BadRequestError', param: null, code: 400 } });
    const r = await post('/v1/chat/completions', newKey('ctx'), chat(`too long ${MARKER}`));
    const err = assertOpenAIError(r, 400);
    assert.ok(err.message.includes('maximum context length'), `the engine's reason is lost: ${err.message}`);
    assert.ok(!r.text.includes(MARKER));
  });
});

describe('gateway restarted on the same port', () => {
  async function scenario({ keyDirArgs }) {
    const port = await freePort();
    const args = ['--listen', `http://127.0.0.1:${port}`, '--backend', engine.url, '--model', MODEL, '--chute-id', CHUTE, '--confidential', 'true', ...keyDirArgs];
    const g1 = await start('e2ee-gateway', args);
    extraProcs.push(g1);
    assert.equal(new URL(g1.url).port, String(port));
    const p = await startProxy(['--upstream', g1.url, '--models-upstream', g1.url]);
    extraProcs.push(p);
    const key = newKey('restart');
    const client = sdk(key, p.url);
    try {
      const before = await peer.discover(g1.url, 'cpk_observer', CHUTE);
      for (let i = 0; i < 3; i++) assert.equal((await client.chat.completions.create(chat(`before ${i}`))).choices[0].message.content, `echo: before ${i}`);
      await g1.stop();
      const g2 = await start('e2ee-gateway', args);
      extraProcs.push(g2);
      try {
        assert.equal(new URL(g2.url).port, String(port));
        const afterD = await peer.discover(g2.url, 'cpk_observer', CHUTE);
        // The proxy's very next request succeeds (it rediscovers on its own).
        const c = await client.chat.completions.create(chat(`after ${MARKER}`));
        assert.equal(c.choices[0].message.content, `echo: after ${MARKER}`);
        const s = await post('/v1/chat/completions', key, chat('after stream', { stream: true }), { base: p.url });
        assert.equal(contentOf(assertWellFormedStream(s.text)), 'echo: after stream');
        return { before: before.json.instances[0], after: afterD.json.instances[0] };
      } finally {
        await g2.stop();
      }
    } finally {
      await p.stop();
    }
  }

  test('without --key-dir: new keys; the proxy rediscovers and its next request succeeds', async () => {
    const { before, after: a } = await scenario({ keyDirArgs: [] });
    assert.notEqual(a.e2e_pubkey, before.e2e_pubkey, 'the restarted gateway kept its key');
  });

  test('with --key-dir: the same key (and instance id) come back; the next request succeeds', async () => {
    const { before, after: a } = await scenario({ keyDirArgs: ['--key-dir', keyDir] });
    assert.equal(a.e2e_pubkey, before.e2e_pubkey);
    assert.equal(a.instance_id, before.instance_id);
  });
});

describe('oversized body', () => {
  const big = () => Buffer.concat([Buffer.from(`{"model":"${MODEL}","messages":[{"role":"user","content":"${MARKER}`), Buffer.alloc(11 << 20, 0x61), Buffer.from('"}]}')]);

  test('11 MiB on /v1/chat/completions → 413 in the OpenAI shape (Expect: 100-continue and sent whole); nothing upstream', async () => {
    const n = relay.requests.length;
    const body = big();
    const headers = { authorization: `Bearer ${newKey('big')}`, 'content-type': 'application/json' };
    const a = await rawExchange(proxy.url, { path: '/v1/chat/completions', headers, body, expectContinue: true });
    assertOpenAIError({ status: a.status, headers: a.headers, text: a.body.toString() }, 413);
    assert.ok(!a.body.toString().includes(MARKER));
    const b = await rawExchange(proxy.url, { path: '/v1/chat/completions', headers, body });
    assertOpenAIError({ status: b.status, headers: b.headers, text: b.body.toString() }, 413);
    // A plain Node client that writes the whole body reads the 413 too.
    const status = await new Promise((resolve) => {
      const req = http.request(`${proxy.url}/v1/chat/completions`, { method: 'POST', agent: false, headers: { ...headers, 'content-length': body.length } }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('error', (e) => resolve(e.code));
      req.end(body);
    });
    assert.equal(status, 413);
    assert.deepEqual(upstreamE2e(n), []);
  });

  test('11 MiB on /v1/messages → 413 in the Anthropic shape', async () => {
    const r = await rawExchange(proxy.url, { path: '/v1/messages', headers: { 'x-api-key': newKey('bigmsg'), 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body: big(), expectContinue: true });
    assertAnthropicError({ status: r.status, headers: r.headers, text: r.body.toString() }, 413);
  });

  test('a 9.5 MiB body (under the limit) goes through', async () => {
    const content = 'b'.repeat(9.5 * 1024 * 1024);
    const r = await post('/v1/chat/completions', newKey('under'), chat(content), { timeoutMs: 60000 });
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.equal(r.json().choices[0].message.content.length, 'echo: '.length + content.length);
  });
});

describe('slow and vanishing clients', () => {
  test('a client that stops reading a 24 MiB stream: others are served meanwhile, the proxy RSS stays bounded, and the stream then completes intact', async (t) => {
    const piece = 'x'.repeat(8191) + '\n';
    const count = 3072; // 24 MiB of content
    const key = newKey('slow');
    // Warm up so the baseline includes the connection pools and one stream's worth of buffers.
    const warm = await post('/v1/chat/completions', key, chat('warm', { stream: true }));
    assert.equal(warm.status, 200);
    const base = { proxy: rssKiB(proxy.child.pid), gateway: rssKiB(gateway.child.pid) };
    const n = engine.count;
    engine.enqueue({ frames: chatFrames({ model: MODEL, pieces: Array(count).fill(piece) }) });
    const res = await post('/v1/chat/completions', key, chat('slow reader', { stream: true }), { stream: true, timeoutMs: 120000 });
    assert.equal(res.status, 200);
    res.res.pause();
    // The engine writes all 24 MiB at once (Node buffers what its peer does not read).
    await engine.waitForRequests(n + 1);
    // Others are served while the slow client reads nothing.
    const other = await sdk(newKey('other')).chat.completions.create(chat('meanwhile'));
    assert.equal(other.choices[0].message.content, 'echo: meanwhile');
    // Watch memory for a while (a bounded observation window, not a wait for an event).
    const peak = { proxy: 0, gateway: 0 };
    for (let i = 0; i < 25; i++) {
      for (const [name, p] of [['proxy', proxy], ['gateway', gateway]]) peak[name] = Math.max(peak[name], rssKiB(p.child.pid));
      await new Promise((r) => setTimeout(r, 100));
    }
    const growth = (name) => (peak[name] - base[name]) / 1024;
    t.diagnostic(`RSS growth while stalled: proxy ${growth('proxy').toFixed(1)} MiB, gateway ${growth('gateway').toFixed(1)} MiB`);
    const t0 = Date.now();
    assertMemoryBound(t, growth('proxy') < 8, `proxy RSS grew by ${growth('proxy').toFixed(1)} MiB while a client held a 24 MiB stream unread (base ${base.proxy} KiB, peak ${peak.proxy} KiB)`);
    assertMemoryBound(t, growth('gateway') < 8, `gateway RSS grew by ${growth('gateway').toFixed(1)} MiB while a client held a 24 MiB stream unread (base ${base.gateway} KiB, peak ${peak.gateway} KiB)`);
    // Now read it all: every byte arrives, one [DONE].
    res.res.resume();
    const parts = [];
    for await (const c of res.res) parts.push(c);
    const events = assertWellFormedStream(Buffer.concat(parts).toString('utf8'));
    const text = contentOf(events);
    assert.equal(text.length, piece.length * count);
    assert.equal(text, piece.repeat(count));
    t.diagnostic(`drained in ${Date.now() - t0} ms`);
  });

  test('a client that disconnects mid-stream (engine still generating) → the engine sees its connection cut long before the stream would end', async () => {
    let recorded;
    const started = deferred();
    // 600 tokens, one every 50 ms: 30 s if nobody cuts it.
    engine.enqueue((rec) => {
      recorded = rec;
      started.resolve();
      return { frames: chatFrames({ model: MODEL, pieces: Array(600).fill('tok ') }), paceMs: 50 };
    });
    const res = await post('/v1/chat/completions', newKey('leavep'), chat(`leave paced ${MARKER}`, { stream: true }), { stream: true });
    const reader = sseReader(res.res);
    await within(started.promise, 10000, 'engine got the request');
    for (let i = 0; i < 3; i++) assert.ok(await reader.next());
    res.res.destroy();
    const cut = await within(recorded.closed, 8000, 'the engine connection was not closed after the client left');
    assert.equal(cut, true, 'the engine finished the whole stream: the disconnect was not passed on');
  });

  test('a client that disconnects mid-stream while the engine is silent (e.g. a long prefill) → the engine sees its connection closed', async () => {
    const stalled = deferred();
    let recorded;
    engine.enqueue((rec) => {
      recorded = rec;
      return { frames: chatFrames({ model: MODEL, pieces: ['p1 ', 'p2 ', 'p3 ', 'p4'] }), stallAfterFrames: 3, onStall: () => stalled.resolve() };
    });
    const res = await post('/v1/chat/completions', newKey('leave'), chat(`leave ${MARKER}`, { stream: true }), { stream: true });
    const reader = sseReader(res.res);
    await within(stalled.promise, 10000, 'engine stalled');
    assert.equal(JSON.parse(await reader.next()).choices[0].delta.content, '');
    assert.equal(JSON.parse(await reader.next()).choices[0].delta.content, 'p1 ');
    res.res.destroy();
    try {
      // The engine would hold this response open forever; only a propagated cut closes it.
      const cut = await within(recorded.closed, 8000, 'the engine connection was not closed after the client left (the proxy/gateway only notice a gone client when they next write)');
      assert.equal(cut, true);
    } finally {
      engine.dropConnections(); // whatever the verdict, leave nothing in flight for later tests
    }
  });

  test('a client that disconnects while waiting for a non-stream answer → the engine sees its connection closed', async () => {
    const stalled = deferred();
    let recorded;
    engine.enqueue((rec) => {
      recorded = rec;
      return { stallBeforeFirstByte: true, onStall: () => stalled.resolve() };
    });
    const req = http.request(`${proxy.url}/v1/chat/completions`, { method: 'POST', agent: false, headers: { authorization: `Bearer ${newKey('leave2')}`, 'content-type': 'application/json' } });
    req.on('error', () => {});
    req.end(JSON.stringify(chat(`waiting ${MARKER}`)));
    await within(stalled.promise, 10000, 'engine got the request');
    req.destroy();
    try {
      const cut = await within(recorded.closed, 8000, 'the engine connection was not closed after the client left (the proxy/gateway only notice a gone client when they next write)');
      assert.equal(cut, true);
    } finally {
      engine.dropConnections();
    }
  });
});

describe('command lines that cannot work: non-zero exit, one line saying why', () => {
  async function expectRefusal(name, args, pattern) {
    const r = await run(binaryPath(name), args, { timeoutMs: 15000, env: { TLS_CERT: '', TLS_KEY: '', TLS_SELF_SIGNED: '' } });
    const what = `${name} ${args.join(' ')}`;
    assert.equal(r.signal, null, `${what}: killed by ${r.signal}`);
    assert.notEqual(r.code, 0, `${what}: exit 0; stdout ${r.stdout}`);
    assert.ok(!r.stdout.toString().includes('listening on'), `${what}: started`);
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    assert.equal(lines.length, 1, `${what}: stderr is not one line:\n${r.stderr}`);
    assert.match(lines[0], new RegExp(`^${name}: `), `${what}: ${lines[0]}`);
    assert.match(lines[0], pattern, `${what}: ${lines[0]}`);
  }

  test('e2ee-proxy: bad --listen / --upstream URLs', async () => {
    await expectRefusal('e2ee-proxy', ['--listen', 'ftp://127.0.0.1:0'], /--listen|ftp/);
    await expectRefusal('e2ee-proxy', ['--listen', 'http://127.0.0.1:notaport'], /--listen|port/);
    await expectRefusal('e2ee-proxy', ['--listen', '127.0.0.1:8080'], /--listen/);
    await expectRefusal('e2ee-proxy', ['--listen', 'http://127.0.0.1:70000'], /--listen|port/);
    await expectRefusal('e2ee-proxy', ['--listen', 'http://127.0.0.1:0', '--upstream', 'not a url'], /--upstream/);
    await expectRefusal('e2ee-proxy', ['--listen', 'http://127.0.0.1:0', '--models-upstream', 'gopher://x'], /--models-upstream/);
    await expectRefusal('e2ee-proxy', ['--listen', 'http://127.0.0.1:0', '--no-such-flag'], /no-such-flag/);
  });

  test('e2ee-gateway: missing / bad --backend, bad --listen', async () => {
    await expectRefusal('e2ee-gateway', ['--listen', 'http://127.0.0.1:0', '--model', MODEL], /--backend/);
    await expectRefusal('e2ee-gateway', ['--listen', 'http://127.0.0.1:0', '--backend', 'not a url', '--model', MODEL], /--backend/);
    await expectRefusal('e2ee-gateway', ['--listen', 'http://127.0.0.1:0', '--backend', 'ftp://127.0.0.1:1', '--model', MODEL], /--backend|ftp/);
    await expectRefusal('e2ee-gateway', ['--listen', 'nope', '--backend', engine.url, '--model', MODEL], /--listen/);
    await expectRefusal('e2ee-gateway', ['--listen', 'http://127.0.0.1:0', '--backend', engine.url, '--model', MODEL, '--confidential', 'maybe'], /--confidential/);
  });

  test('a port in use → non-zero exit naming the address', async () => {
    const holder = net.createServer();
    await new Promise((r) => holder.listen(0, '127.0.0.1', r));
    const port = holder.address().port;
    try {
      await expectRefusal('e2ee-proxy', ['--listen', `http://127.0.0.1:${port}`, '--upstream', gateway.url], new RegExp(`${port}`));
      await expectRefusal('e2ee-gateway', ['--listen', `http://127.0.0.1:${port}`, '--backend', engine.url, '--model', MODEL], new RegExp(`${port}`));
      // The second of two listeners in use: no half-started process either.
      await expectRefusal('e2ee-proxy', ['--listen', 'http://127.0.0.1:0', '--listen', `http://127.0.0.1:${port}`, '--upstream', gateway.url], new RegExp(`${port}`));
    } finally {
      holder.close();
    }
  });
});

describe('silent and broken upstreams: a bounded, clear failure; the proxy keeps serving', () => {
  let stack;
  before(async () => {
    // A short --upstream-timeout stands for the default 300 s: the behaviour is the same.
    stack = await startStack({ proxyArgs: ['--upstream-timeout', '2', '--log-level', 'debug'] });
    extraProcs.push(stack.proxy, stack.gateway);
  });
  after(async () => {
    await stack?.proxy?.stop();
    await stack?.gateway?.stop();
    await stack?.engine?.close();
  });
  afterEach(() => {
    for (const p of [stack?.proxy, stack?.gateway]) if (p && !p.stopped) p.assertRunning();
  });

  test('engine silent before the first byte → 504 upstream_timeout after --upstream-timeout; the engine connection is then cut', async () => {
    let recorded;
    stack.engine.enqueue((rec) => {
      recorded = rec;
      return { stallBeforeFirstByte: true };
    });
    const t0 = Date.now();
    const r = await post('/v1/chat/completions', newKey('silent'), chat(`silent ${MARKER}`), { base: stack.proxy.url, timeoutMs: 20000 });
    const elapsed = Date.now() - t0;
    const e = assertOpenAIError(r, 504);
    assert.equal(e.code, 'upstream_timeout', r.text);
    assert.ok(elapsed >= 1500 && elapsed < 10000, `answered after ${elapsed} ms, expected about 2 s`);
    try {
      assert.equal(await within(recorded.closed, 8000, 'the silent engine request was never cut'), true);
    } finally {
      stack.engine.dropConnections();
    }
    const ok = await post('/v1/chat/completions', newKey('after'), chat('after the timeout'), { base: stack.proxy.url });
    assert.equal(ok.status, 200, ok.text);
  });

  test('engine silent mid-stream → the content so far, one error event and [DONE] after --upstream-timeout', async () => {
    stack.engine.enqueue(() => ({ frames: chatFrames({ model: MODEL, pieces: ['first ', 'second ', 'never'] }), stallAfterFrames: 2 }));
    const t0 = Date.now();
    const r = await post('/v1/chat/completions', newKey('stall'), chat(`stall ${MARKER}`, { stream: true }), { base: stack.proxy.url, timeoutMs: 20000 });
    const elapsed = Date.now() - t0;
    stack.engine.dropConnections();
    assert.equal(r.status, 200, r.text);
    const events = assertWellFormedStream(r.text);
    const errors = events.filter((ev) => ev.error);
    assert.equal(errors.length, 1, `one error event: ${r.text}`);
    assert.match(errors[0].error.message, /no data .* for 2000 ms|timed out/i, r.text);
    assert.ok(!r.text.includes('never'), 'nothing after the stall');
    assert.ok(elapsed < 10000, `the stream ended after ${elapsed} ms`);
  });

  test('engine answers with bytes that are not HTTP → 502 in the OpenAI shape', async () => {
    stack.engine.enqueue(() => ({ garbage: `\x00\x01 not http ${MARKER}\r\n\r\n` }));
    const r = await post('/v1/chat/completions', newKey('garbage'), chat('garbage please'), { base: stack.proxy.url });
    assert.ok(r.status >= 500 && r.status <= 504, `${r.status}: ${r.text}`);
    assertOpenAIError(r, r.status);
    assert.ok(!r.text.includes(MARKER), 'the garbage is not echoed');
  });

  test('10,000 idle client connections: the proxy keeps answering, and its descriptors return to baseline once they close', async (t) => {
    const pid = stack.proxy.child.pid;
    const fds = () => readdirSync(`/proc/${pid}/fd`).length;
    const base = fds();
    const port = Number(new URL(stack.proxy.url).port);
    const sockets = [];
    const N = 10000;
    for (let i = 0; i < N; i += 500) {
      await Promise.all(Array.from({ length: Math.min(500, N - i) }, () => new Promise((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port }, () => resolve());
        s.on('error', reject);
        sockets.push(s);
      })));
    }
    try {
      const t0 = Date.now();
      const r = await post('/v1/chat/completions', newKey('idle'), chat('through the crowd'), { base: stack.proxy.url, timeoutMs: 15000 });
      assert.equal(r.status, 200, r.text);
      assert.ok(Date.now() - t0 < 5000 * TIME_SCALE, `answered after ${Date.now() - t0} ms with ${N} idle connections open`);
      // The proxy keeps at most its connection limit (4,096) and closes the longest-idle ones to
      // make room: bounded descriptors and memory, and a real client is never locked out.
      const open = fds();
      assert.ok(open - base <= 4096 + 64, `the proxy holds ${open - base} extra descriptors for ${N} idle connections`);
      assert.ok(open - base >= 1000, `only ${open - base} extra descriptors: were the connections accepted at all?`);
      const rss = rssKiB(pid);
      assertMemoryBound(t, rss < 256 * 1024, `proxy RSS ${rss} KiB with ${open - base} idle connections`);
      t.diagnostic(`${N} idle connections: proxy holds ${open - base} descriptors, RSS ${(rss / 1024).toFixed(1)} MiB`);
    } finally {
      for (const s of sockets) s.destroy();
    }
    const deadline = Date.now() + 15000;
    while (fds() > base + 16 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.ok(fds() <= base + 16, `descriptors: ${base} before, ${fds()} after the connections closed`);
  });
});

describe('a keep-alive connection the server closes just as a request arrives', () => {
  // A relay in front of the gateway that, once, reads a whole request arriving on a reused
  // connection and closes that connection without answering (what uvicorn or Node do when their
  // 5 s keep-alive ends as the request is in flight). The request was never forwarded.
  let stack;
  let front;
  const dropped = [];
  before(async () => {
    stack = await startStack({ proxy: false });
    extraProcs.push(stack.gateway);
    const target = new URL(stack.gateway.url);
    const served = new WeakMap();
    front = await listenHttp((req, res) => {
      const n = (served.get(req.socket) ?? 0) + 1;
      served.set(req.socket, n);
      const chosen = req.method === 'POST' && n > 1 && dropped.length === 0;
      if (chosen) {
        req.resume();
        req.on('end', () => {
          dropped.push({ path: req.url, nonce: req.headers['x-e2e-nonce'] ?? req.headers['x-e2ee-nonce'] ?? null });
          req.socket.destroy();
        });
        return;
      }
      const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent: false }, (ur) => {
        // The relay's own connection to the proxy stays open whatever the gateway hop does.
        const { connection, 'keep-alive': _ka, ...headers } = ur.headers;
        res.writeHead(ur.statusCode, headers);
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
  });
  after(async () => {
    await front?.close();
    await stack?.gateway?.stop();
    await stack?.engine?.close();
  });

  for (const provider of ['chutes', 'dstack']) {
    test(`${provider}: the proxy seals the request again (fresh nonce) and sends it on a new connection; the client never notices`, async () => {
      dropped.length = 0;
      const args = provider === 'chutes' ? [] : ['--provider', 'dstack', '--allow-missing-quote'];
      const p = await startProxy(['--upstream', front.url, '--models-upstream', front.url, ...args]);
      extraProcs.push(p);
      try {
        // The first request warms the pool (discovery or attestation, and one answer); the
        // second goes out on a reused connection and is the one the relay drops.
        for (const i of [1, 2, 3]) {
          const r = await post('/v1/chat/completions', newKey(`resend${i}`), chat(`resend ${provider} ${i}`), { base: p.url });
          assert.equal(r.status, 200, `request ${i}: ${r.text}`);
          assert.equal(r.json().choices[0].message.content, `echo: resend ${provider} ${i}`);
        }
        assert.equal(dropped.length, 1, 'the relay dropped exactly one request: the resend path ran');
        const invoked = stack.engine.requests.filter((rec) => rec.json?.messages?.[0]?.content === `resend ${provider} 2`);
        assert.equal(invoked.length, 1, 'the engine got the dropped request exactly once (the resend), never twice');
      } finally {
        await p.stop();
      }
    });
  }
});

describe('upstream TLS that must not be trusted', () => {
  const dir = scratchDir('e2ee-faults-tls-');
  let stack;
  let root;
  const servers = [];
  before(async () => {
    stack = await startStack({ proxy: false });
    extraProcs.push(stack.gateway);
    root = await makeRootCa(dir, 'faults root');
  });
  after(async () => {
    for (const s of servers) s.close();
    await stack?.gateway?.stop();
    await stack?.engine?.close();
  });

  // An https front for the gateway, with the given certificate.
  async function httpsFront(leaf) {
    const target = new URL(stack.gateway.url);
    const server = https.createServer({ key: readFileSync(leaf.key), cert: readFileSync(leaf.cert) }, (req, res) => {
      const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent: false }, (ur) => {
        res.writeHead(ur.statusCode, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    return `https://127.0.0.1:${server.address().port}`;
  }

  async function proxyTo(url, extra = []) {
    const p = await startProxy(['--upstream', url, '--models-upstream', url, ...extra]);
    extraProcs.push(p);
    return p;
  }

  test('an untrusted certificate, a certificate for another name, plain HTTP on an https URL → 502 naming the TLS problem; the trusted control works', async () => {
    const good = await makeCert(dir, root, { cn: 'faults good', sans: ['IP:127.0.0.1', 'DNS:localhost'] });
    const wrongName = await makeCert(dir, root, { cn: 'faults other', sans: ['DNS:other.example'] });
    const goodUrl = await httpsFront(good);
    const wrongUrl = await httpsFront(wrongName);
    const plainAsHttps = stack.gateway.url.replace('http://', 'https://');
    const cases = [
      ['untrusted root', await proxyTo(goodUrl)],
      ['wrong name', await proxyTo(wrongUrl, ['--upstream-ca', root.cert])],
      ['not TLS at all', await proxyTo(plainAsHttps)],
    ];
    for (const [what, p] of cases) {
      const t0 = Date.now();
      const r = await post('/v1/chat/completions', newKey('tls'), chat(`tls ${MARKER}`), { base: p.url, timeoutMs: 20000 });
      const e = assertOpenAIError(r, 502);
      assert.match(e.message, /certificate|verify|TLS|SSL|handshake/i, `${what}: ${r.text}`);
      assert.ok(Date.now() - t0 < 10000, `${what}: took ${Date.now() - t0} ms`);
      p.assertRunning();
      await p.stop();
    }
    const control = await proxyTo(goodUrl, ['--upstream-ca', root.cert]);
    const ok = await post('/v1/chat/completions', newKey('tlsok'), chat('trusted'), { base: control.url });
    assert.equal(ok.status, 200, `control: ${ok.text}`);
    await control.stop();
  });
});

describe('lifecycle', () => {
  for (const name of ['e2ee-proxy', 'e2ee-gateway']) {
    test(`${name}: SIGTERM right after the start line → exit 0 (10 of 10)`, async () => {
      const outcomes = [];
      for (let i = 0; i < 10; i++) {
        const p = name === 'e2ee-proxy' ? await startProxy(['--upstream', gateway.url, '--models-upstream', gateway.url]) : await startGateway(['--backend', engine.url, '--model', MODEL]);
        p.stopped = true;
        p.child.kill('SIGTERM');
        const { code, signal } = await within(p.exit, 10000, `${name} did not exit after SIGTERM`);
        await p.kill();
        outcomes.push(signal ? `signal ${signal}` : `code ${code}`);
      }
      assert.deepEqual(outcomes, Array(10).fill('code 0'), 'the start line is printed before the SIGTERM handler is installed');
    });
  }

  test('no log line of any process carried the marker or an API key', async () => {
    const procs = [proxy, gateway, ...extraProcs];
    assert.ok(engine.requests.some((r) => r.body.includes(MARKER)), 'the marker reached the engine');
    assert.deepEqual(linesContaining(procs, MARKER), []);
    assert.deepEqual(linesContaining(procs, 'cpk_'), [], 'an API key is logged');
  });

  test('SIGTERM → the proxy and the gateway exit 0', async () => {
    // 10 s of grace for in-flight requests (server.shutdown) plus margin.
    await proxy.stop(20000);
    await gateway.stop(20000);
  });
});

