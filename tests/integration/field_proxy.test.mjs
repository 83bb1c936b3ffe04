// e2ee-proxy's field-level E2EE providers (--provider venice | nearai | dstack), real processes,
// with the official npm SDKs as clients (openai: chat completions and Responses; @anthropic-ai/sdk:
// Messages):
//
//   part 1   SDK → e2ee-proxy → fake Venice / NEAR AI / dstack (lib/fake_field_providers.mjs,
//            written from the specs) → the scripted engine, for every provider × algorithm ×
//            version: round trips (chat, Messages, Responses; every role encrypted on the wire),
//            Venice's parameter policy, attestation refusals (nothing sent), sessions (single
//            flight, per-model sessions, 421 / key-mismatch refresh, re-attestation after a
//            decryption failure, --session-ttl), reasoning, NEAR's all-fields coverage (tools,
//            tool calls, logprobs), multimodal parts, dstack's response confirmation and v2 replay
//            headers, logprobs refused where they would travel in plaintext, fail-closed streams
//            (tampered, plaintext, truncated).
//   part 2   SDK → e2ee-proxy --allow-missing-quote → e2ee-gateway (our TEE side) → the engine, for
//            every provider × algorithm × version, stream and not; dstack with all fields.
//   part 3   no prompt or answer text in any process's log at --log-level trace.
//
// Ground truth is never computed by the C++: what crossed the wire and what the TEE decrypted come
// from the fake's record (`received`: raw body, parsed body, decrypted body; `requests`: every
// HTTP request), what the model saw from the engine's record, and the answers from the engine's
// scripts. Every prompt carries MARKER plus a per-test tag.

import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { loadOpenAI } from './lib/deps.mjs';
import { loadAnthropic } from './lib/translation_stack.mjs';
import { startEngine, CREATED } from './lib/engine.mjs';
import { parseSseEvents, deltaFrames, completionWith, toolCall, toolCallDeltas } from './lib/chat_chunks.mjs';
import { checkAnthropicStream, checkResponsesStream } from './lib/dialect_streams.mjs';
import { startProxy, startGateway, linesContaining } from './lib/processes.mjs';
import { KeyPair, SCHEMES, schemeFor, isHex } from './lib/field_peer.mjs';
import { startFakeVenice, startFakeNear, startFakeDstack } from './lib/fake_field_providers.mjs';

const OpenAI = await loadOpenAI();
const Anthropic = await loadAnthropic();

const MARKER = `FPXMARK${randomUUID().replace(/-/g, '').slice(0, 12)}`;
let serial = 0;
// A unique tag per test: MARKER (searched for in logs and on the wire) plus a counter.
const tagFor = (what) => `${MARKER}-${what}-${++serial}`;
const freshModel = (what) => `fpx-${what}-${++serial}`;

const VENICE_MODEL = 'e2ee-test-model';
const NEAR_MODEL = 'test/model';
const DSTACK_MODEL = 'test/model';
const GATEWAY_MODEL = 'acme/field-e2ee';
const API_KEY = 'sk-field-proxy-test';

// What the proxy is configured with, per provider × algorithm × version.
const CONFIGS = [
  { id: 'venice', provider: 'venice', family: 'venice', algo: 'ecdsa', version: 1, args: [] },
  { id: 'nearai ecdsa', provider: 'nearai', family: 'near', algo: 'ecdsa', version: 1, args: ['--nearai-signing-algo', 'ecdsa'] },
  { id: 'nearai ed25519 v1 (box)', provider: 'nearai', family: 'near', algo: 'ed25519', version: 1, args: ['--nearai-signing-algo', 'ed25519', '--nearai-encryption-version', '1'] },
  { id: 'nearai ed25519 v2 (xchacha)', provider: 'nearai', family: 'near', algo: 'ed25519', version: 2, args: ['--nearai-signing-algo', 'ed25519', '--nearai-encryption-version', '2'] },
  { id: 'dstack ecdsa v1', provider: 'dstack', family: 'dstack', algo: 'ecdsa', version: 1, args: ['--dstack-signing-algo', 'ecdsa', '--dstack-version', '1'] },
  { id: 'dstack ecdsa v2', provider: 'dstack', family: 'dstack', algo: 'ecdsa', version: 2, args: ['--dstack-signing-algo', 'ecdsa', '--dstack-version', '2'] },
  { id: 'dstack ed25519 v1', provider: 'dstack', family: 'dstack', algo: 'ed25519', version: 1, args: ['--dstack-signing-algo', 'ed25519', '--dstack-version', '1'] },
  { id: 'dstack ed25519 v2', provider: 'dstack', family: 'dstack', algo: 'ed25519', version: 2, args: ['--dstack-signing-algo', 'ed25519', '--dstack-version', '2'] },
].map((c) => ({ ...c, scheme: schemeFor({ family: c.family, algo: c.algo, version: c.version }) }));

let engine;
let venice;
let near;
let dstack;
let gateway;
const procs = []; // every process, for the crash and log checks
const fakeProxies = new Map(); // config id → proxy against the fake
const gatewayProxies = new Map(); // config id → proxy against e2ee-gateway

const fakeOf = (cfg) => ({ venice, near, dstack })[cfg.family];
const modelOf = (cfg) => ({ venice: VENICE_MODEL, near: NEAR_MODEL, dstack: DSTACK_MODEL })[cfg.family];
const proxyArgs = (cfg, upstream, extra = []) => ['--provider', cfg.provider, '--upstream', upstream, '--log-level', 'trace', '--threads', '2', ...cfg.args, ...extra];

before(async () => {
  engine = await startEngine({
    models: [GATEWAY_MODEL, VENICE_MODEL, NEAR_MODEL].map((id) => ({ id, object: 'model', created: CREATED, owned_by: 'vllm', root: id, parent: null, max_model_len: 65536 })),
  });
  [venice, near, dstack] = await Promise.all([startFakeVenice({ engineUrl: engine.url }), startFakeNear({ engineUrl: engine.url }), startFakeDstack({ engineUrl: engine.url })]);
  // Node closes idle keep-alive connections after 5 s (as uvicorn does), while the proxy keeps
  // pooled connections for 30 s and does not replay a POST that met a closed reused connection.
  // In this busy single process the server's timer can fire after the proxy's liveness peek and
  // before the request is read, turning a test into a 502 "closed the connection without
  // answering" (seen once in development). Longer server keep-alives keep the suite deterministic.
  for (const f of [venice, near, dstack]) f.server.server.keepAliveTimeout = 120000;
  gateway = await startGateway(['--backend', engine.url, '--model', GATEWAY_MODEL, '--log-level', 'trace', '--threads', '2']);
  procs.push(gateway);
  const started = await Promise.all([
    ...CONFIGS.map(async (cfg) => fakeProxies.set(cfg.id, await startProxy(proxyArgs(cfg, fakeOf(cfg).url)))),
    ...CONFIGS.map(async (cfg) => gatewayProxies.set(cfg.id, await startProxy(proxyArgs(cfg, gateway.url, ['--allow-missing-quote'])))),
  ]);
  assert.equal(started.length, 2 * CONFIGS.length, 'every proxy started');
  procs.push(...fakeProxies.values(), ...gatewayProxies.values());
});
// A crash is reported in the test that caused it.
afterEach(() => {
  for (const p of procs) if (!p.stopped) p.assertRunning();
  for (const f of [venice, near, dstack]) f?.clearFaults();
});
after(async () => {
  const errors = [];
  for (const p of procs) {
    try {
      if (!p.stopped) await p.stop();
    } catch (err) {
      errors.push(err);
    }
  }
  await Promise.all([venice?.close(), near?.close(), dstack?.close(), engine?.close()]);
  if (errors.length) throw errors[0];
});

// ---------------------------------------------------------------------------------------------
// Clients and helpers

// A fetch for the SDKs that keeps, besides what the SDK reads, the whole body the proxy sent: the
// response body is teed, and the recording branch reads to the end even when the SDK stops early
// (it throws at an error event and cancels its branch). exchanges[i] = {status, headers, raw}.
function teeFetch() {
  const exchanges = [];
  const fetchImpl = async (input, init = {}) => {
    const res = await fetch(input, init);
    const entry = { status: res.status, headers: Object.fromEntries(res.headers) };
    exchanges.push(entry);
    if (!res.body) {
      entry.raw = Promise.resolve('');
      return res;
    }
    const [forSdk, forRecord] = res.body.tee();
    entry.raw = new Response(forRecord).text().catch((err) => `<<body failed: ${err}>>`);
    return new Response(forSdk, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
  return { fetch: fetchImpl, exchanges };
}

function openai(proxy) {
  const rec = teeFetch();
  return { c: new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: API_KEY, maxRetries: 0, timeout: 30000, fetch: rec.fetch }), rec };
}

function anthropic(proxy) {
  const rec = teeFetch();
  return { c: new Anthropic({ baseURL: proxy.url, apiKey: API_KEY, maxRetries: 0, timeout: 30000, fetch: rec.fetch }), rec };
}

const textOf = (content) => (typeof content === 'string' ? content : Array.isArray(content) ? content.map((p) => p?.text ?? '').join('') : content);
// The answer the engine's default script gives: "echo: <last user text>", one piece per word.
const echoOf = (text) => `echo: ${text}`;
const piecesOf = (text) => echoOf(text).split(/(?<= )/);

// The fake's records of requests whose decrypted body carries `tag`.
const receivedWith = (fake, tag) => fake.received.filter((r) => JSON.stringify(r.forwarded).includes(tag));
function oneReceived(fake, tag, what) {
  const found = receivedWith(fake, tag);
  assert.equal(found.length, 1, `${what}: expected one request carrying ${tag} at the fake, got ${found.length}`);
  return found[0];
}
const engineWith = (tag) => engine.requests.filter((r) => r.body.toString('utf8').includes(tag));

// Attestation requests for `model` (Venice and NEAR name the model; dstack's report has no model).
const reportsFor = (fake, model) => fake.reports.filter((r) => new URLSearchParams(r.query).get('model') === model).length;

// What crossed the wire to the fake: no plaintext anywhere in the body, every message's content one
// hex envelope of at least the scheme's minimum size, roles in the clear; and what the TEE
// decrypted: exactly `expected` ([role, text] per message).
function assertEncryptedRecord(cfg, rec, expected, what) {
  assert.ok(!rec.raw.includes(MARKER), `${what}: plaintext marker on the wire to the provider: ${rec.raw.slice(0, 300)}`);
  const messages = rec.body.messages;
  assert.ok(Array.isArray(messages), `${what}: no messages array on the wire`);
  assert.deepEqual(messages.map((m) => m.role), expected.map(([role]) => role), `${what}: the roles on the wire`);
  const min = 2 * SCHEMES[cfg.scheme].min;
  messages.forEach((m, i) => {
    assert.equal(typeof m.content, 'string', `${what}: message ${i} (${m.role}) content is not one envelope string: ${JSON.stringify(m.content).slice(0, 200)}`);
    assert.ok(isHex(m.content) && m.content.length >= min, `${what}: message ${i} (${m.role}) content is not a ${cfg.scheme} hex envelope (${m.content.length} chars)`);
  });
  assert.deepEqual(rec.forwarded.messages.map((m) => [m.role, textOf(m.content)]), expected, `${what}: the plaintext the TEE decrypted`);
  if (cfg.family === 'venice') {
    assert.match(String(rec.headers['x-venice-tee-client-pub-key']), /^04[0-9a-f]{128}$/, `${what}: X-Venice-TEE-Client-Pub-Key`);
    assert.equal(rec.headers['x-venice-tee-signing-algo'], 'ecdsa', `${what}: X-Venice-TEE-Signing-Algo`);
    assert.equal(rec.forwarded.stream, true, `${what}: Venice's upstream request must stream`);
    assert.deepEqual(rec.veniceParameters, { enable_e2ee: true, include_venice_system_prompt: false }, `${what}: venice_parameters`);
  } else {
    assert.equal(rec.e2ee?.algo, cfg.algo, `${what}: negotiated algo`);
    if (cfg.algo === 'ed25519' || cfg.family === 'dstack') assert.equal(rec.e2ee.version, cfg.version, `${what}: negotiated version`);
    if (cfg.family === 'near') assert.equal(rec.e2ee.allFields, true, `${what}: X-Encrypt-All-Fields (the proxy's NEAR default)`);
  }
}

const CONVO = (tag) => [
  { role: 'system', content: `Rules ${tag}: answer "briefly" \\ politely ✓` },
  { role: 'user', content: `First question ${tag} — ünïcödé 🚀` },
  { role: 'assistant', content: `Earlier answer ${tag}` },
  { role: 'user', content: `Second question ${tag}` },
];
const asPairs = (messages) => messages.map((m) => [m.role, m.content]);

// Runs `run` (which must fail) and returns the SDK's APIError, asserting its status.
async function apiError(run, status, what, Klass = OpenAI.APIError) {
  let result;
  try {
    result = await run();
  } catch (err) {
    assert.ok(err instanceof Klass, `${what}: expected an SDK APIError, got ${err?.stack ?? err}`);
    if (status !== undefined) assert.equal(err.status, status, `${what}: HTTP status (${err.message})`);
    return err;
  }
  assert.fail(`${what}: the request succeeded: ${JSON.stringify(result)?.slice(0, 300)}`);
}

// Consumes an OpenAI chat stream; returns { text, chunks }.
async function drainChat(stream) {
  let text = '';
  const chunks = [];
  for await (const chunk of stream) {
    chunks.push(chunk);
    text += chunk.choices?.[0]?.delta?.content ?? '';
  }
  return { text, chunks };
}

// vLLM-shaped stream frames whose FIRST chunk already carries content (no role-only chunk), so the
// first encrypted field is the first event of the stream.
function contentFirstFrames(model, pieces, { usage = true } = {}) {
  const id = `chatcmpl-${randomUUID().slice(0, 8)}`;
  const chunk = (delta, finish) => `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: CREATED, model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
  const frames = pieces.map((p, i) => chunk(i === 0 ? { role: 'assistant', content: p } : { content: p }, null));
  frames.push(chunk({}, 'stop'));
  if (usage) frames.push(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: CREATED, model, choices: [], usage: { prompt_tokens: 9, completion_tokens: pieces.length, total_tokens: 9 + pieces.length } })}\n\n`);
  frames.push('data: [DONE]\n\n');
  return frames;
}
// An engine script answering `pieces` in either mode.
const piecesScript = (pieces, opts = {}) => (rec) =>
  rec.json?.stream
    ? { frames: contentFirstFrames(rec.json.model, pieces), paceMs: opts.paceMs ?? 0 }
    : { json: { id: 'chatcmpl-x', object: 'chat.completion', created: CREATED, model: rec.json?.model, choices: [{ index: 0, message: { role: 'assistant', content: pieces.join('') }, logprobs: null, finish_reason: 'stop' }], usage: { prompt_tokens: 9, completion_tokens: pieces.length, total_tokens: 9 + pieces.length } } };
const answerTag = (tag, script, times = 1) => engine.when((r) => r.body.toString('utf8').includes(tag), script, { times });

// A fresh model the fake serves: Venice and NEAR attest per model; dstack's report ignores it.
function newModel(cfg, what) {
  const id = freshModel(what);
  if (cfg.family === 'venice') venice.addModel(id);
  if (cfg.family === 'near') near.models.push(id);
  return id;
}

// Attestations the fake answered for `model` (dstack: all of them; the tests run one at a time).
const attestations = (cfg, model) => (cfg.family === 'dstack' ? dstack.reports.length : reportsFor(fakeOf(cfg), model));

// A long hex run in a client-visible body would be an envelope leaking through.
const ENVELOPE_RUN = /[0-9a-fA-F]{120,}/;

// ---------------------------------------------------------------------------------------------
// Part 1: against the fake providers

for (const cfg of CONFIGS) {
  describe(`${cfg.id}: SDK round trips through the fake`, () => {
    const proxy = () => fakeProxies.get(cfg.id);
    const model = () => modelOf(cfg);

    test('OpenAI chat, non-stream: every role encrypted on the wire, exact plaintext in the TEE, answer decrypted', async () => {
      const tag = tagFor('chat');
      const messages = CONVO(tag);
      const { c } = openai(proxy());
      const r = await c.chat.completions.create({ model: model(), messages, temperature: 0.25, max_tokens: 64 });
      const last = messages.at(-1).content;
      assert.equal(r.object, 'chat.completion', 'a chat.completion object');
      assert.equal(r.choices.length, 1, 'one choice');
      assert.equal(r.choices[0].message.role, 'assistant', 'assistant message');
      assert.equal(r.choices[0].message.content, echoOf(last), 'the decrypted answer');
      assert.equal(r.choices[0].finish_reason, 'stop', 'finish_reason');
      const rec = oneReceived(fakeOf(cfg), tag, 'chat');
      assertEncryptedRecord(cfg, rec, asPairs(messages), 'chat non-stream');
      assert.equal(rec.forwarded.temperature, 0.25, 'temperature reaches the model');
      if (cfg.family === 'venice') {
        // Venice's E2EE is streaming only: the proxy streamed upstream and assembled one completion.
        assert.equal(rec.body.stream, true, 'upstream request streamed');
        assert.deepEqual(rec.body.stream_options, { include_usage: true }, 'usage requested for the assembled completion');
        assert.equal(r.usage?.completion_tokens, piecesOf(last).length, `usage from the usage chunk: ${JSON.stringify(r.usage)}`);
      } else {
        assert.ok(!rec.body.stream, `non-stream request forwarded as non-stream to ${cfg.id}`);
      }
    });

    test('OpenAI chat, stream: deltas decrypted per chunk, in order; usage chunk', async () => {
      const tag = tagFor('chat-stream');
      const messages = CONVO(tag);
      const { c, rec } = openai(proxy());
      const stream = await c.chat.completions.create({ model: model(), messages, stream: true, stream_options: { include_usage: true } });
      const { text, chunks } = await drainChat(stream);
      const last = messages.at(-1).content;
      assert.equal(text, echoOf(last), 'the streamed answer, decrypted');
      assert.equal(chunks.filter((ch) => ch.choices?.[0]?.finish_reason === 'stop').length, 1, 'one finish chunk');
      assert.equal(chunks.at(-1).usage?.completion_tokens, piecesOf(last).length, `usage chunk last: ${JSON.stringify(chunks.at(-1))}`);
      const raw = await rec.exchanges.at(-1).raw;
      assert.ok(raw.endsWith('data: [DONE]\n\n'), `the client stream ends with [DONE]: ${JSON.stringify(raw.slice(-80))}`);
      assert.ok(!ENVELOPE_RUN.test(raw), 'no envelope reaches the client');
      const got = oneReceived(fakeOf(cfg), tag, 'chat stream');
      assertEncryptedRecord(cfg, got, asPairs(messages), 'chat stream');
      assert.equal(got.body.stream, true, 'stream forwarded');
    });

    test('Anthropic Messages, non-stream: system + history encrypted; the text block decrypted', async () => {
      const tag = tagFor('messages');
      const { c } = anthropic(proxy());
      const msg = await c.messages.create({
        model: model(),
        max_tokens: 64,
        system: `Be terse ${tag}`,
        messages: [
          { role: 'user', content: `Hello ${tag}` },
          { role: 'assistant', content: `Hi there ${tag}` },
          { role: 'user', content: `What now ${tag}?` },
        ],
      });
      assert.equal(msg.type, 'message', 'a Messages message');
      assert.deepEqual(msg.content.map((b) => [b.type, b.text]), [['text', echoOf(`What now ${tag}?`)]], 'the decrypted text block');
      assert.equal(msg.stop_reason, 'end_turn', 'stop_reason');
      const rec = oneReceived(fakeOf(cfg), tag, 'messages');
      assertEncryptedRecord(cfg, rec, [['system', `Be terse ${tag}`], ['user', `Hello ${tag}`], ['assistant', `Hi there ${tag}`], ['user', `What now ${tag}?`]], 'messages non-stream');
    });

    test('Anthropic Messages, stream: text deltas decrypted; the event grammar holds', async () => {
      const tag = tagFor('messages-stream');
      const { c, rec } = anthropic(proxy());
      const stream = await c.messages.create({ model: model(), max_tokens: 64, stream: true, system: `Sys ${tag}`, messages: [{ role: 'user', content: `Stream please ${tag}` }] });
      let text = '';
      for await (const e of stream) if (e.type === 'content_block_delta' && e.delta.type === 'text_delta') text += e.delta.text;
      assert.equal(text, echoOf(`Stream please ${tag}`), 'the streamed text');
      const checked = checkAnthropicStream(await rec.exchanges.at(-1).raw);
      assert.deepEqual(checked.blocks.map((b) => [b.type, b.text]), [['text', echoOf(`Stream please ${tag}`)]], 'blocks per the raw stream');
      assertEncryptedRecord(cfg, oneReceived(fakeOf(cfg), tag, 'messages stream'), [['system', `Sys ${tag}`], ['user', `Stream please ${tag}`]], 'messages stream');
    });

    test('OpenAI Responses, stream: output_text deltas decrypted; response.completed', async () => {
      const tag = tagFor('responses');
      const { c, rec } = openai(proxy());
      const stream = await c.responses.create({ model: model(), instructions: `Instructions ${tag}`, input: `Respond ${tag}`, stream: true });
      let text = '';
      let completed = null;
      for await (const e of stream) {
        if (e.type === 'response.output_text.delta') text += e.delta;
        if (e.type === 'response.completed') completed = e.response;
      }
      assert.equal(text, echoOf(`Respond ${tag}`), 'the streamed output text');
      assert.equal(completed?.status, 'completed', 'response.completed');
      const checked = checkResponsesStream(await rec.exchanges.at(-1).raw);
      assert.equal(checked.terminal.type, 'response.completed', 'terminal event');
      assertEncryptedRecord(cfg, oneReceived(fakeOf(cfg), tag, 'responses'), [['system', `Instructions ${tag}`], ['user', `Respond ${tag}`]], 'responses stream');
    });
  });
}

describe('venice: what the E2EE path cannot carry', () => {
  const cfg = CONFIGS.find((c) => c.family === 'venice');
  const proxy = () => fakeProxies.get(cfg.id);

  test('stripped, never sent: reasoning_effort, prompt_cache_*, tool_choice, parallel_tool_calls, search-result flags; enable_e2ee forced on, system prompt off', async () => {
    const tag = tagFor('venice-strip');
    const { c } = openai(proxy());
    const r = await c.chat.completions.create({
      model: VENICE_MODEL,
      messages: [{ role: 'user', content: `Strip ${tag}` }],
      reasoning_effort: 'low',
      prompt_cache_key: `cache-${tag}`,
      prompt_cache_retention: '24h',
      tool_choice: 'none',
      parallel_tool_calls: false,
      venice_parameters: { include_search_results_in_stream: true, enable_web_citations: true, enable_web_search: 'off', enable_e2ee: false, include_venice_system_prompt: true, strip_thinking_response: true },
    });
    assert.equal(r.choices[0].message.content, echoOf(`Strip ${tag}`), 'answer');
    const rec = oneReceived(venice, tag, 'strip');
    for (const k of ['reasoning_effort', 'prompt_cache_key', 'prompt_cache_retention', 'tool_choice', 'parallel_tool_calls']) {
      assert.ok(!(k in rec.body), `${k} must not reach Venice: ${rec.raw.slice(0, 400)}`);
    }
    assert.deepEqual(rec.body.venice_parameters, { strip_thinking_response: true, enable_e2ee: true, include_venice_system_prompt: false }, 'venice_parameters on the wire: search flags dropped, E2EE on, system prompt off, the rest kept');
    assert.deepEqual(rec.e2ee.stripped, [], 'Venice had nothing left to drop');
    assert.ok(!rec.raw.includes(`cache-${tag.slice(MARKER.length)}`) && !rec.raw.includes(MARKER), 'no trace of the cache key or the prompt on the wire');
  });

  test('text-only part arrays are flattened to one encrypted string (Venice takes string content only)', async () => {
    const tag = tagFor('venice-parts');
    const { c } = openai(proxy());
    const r = await c.chat.completions.create({ model: VENICE_MODEL, messages: [{ role: 'user', content: [{ type: 'text', text: `Part one ${tag}` }, { type: 'text', text: `part two ${tag}` }] }] });
    assert.equal(r.choices[0].message.content, echoOf(`Part one ${tag}\npart two ${tag}`), 'answer to the joined text');
    assertEncryptedRecord(cfg, oneReceived(venice, tag, 'parts'), [['user', `Part one ${tag}\npart two ${tag}`]], 'flattened parts');
  });

  test('whitespace-only chunks Venice sends in plaintext pass through; the rest is decrypted', async () => {
    const tag = tagFor('venice-ws');
    const pieces = ['Line one', '\n\n', ' ', `line two ${tag.length}`];
    answerTag(tag, piecesScript(pieces));
    const { c } = openai(proxy());
    const { text } = await drainChat(await c.chat.completions.create({ model: VENICE_MODEL, messages: [{ role: 'user', content: `ws ${tag}` }], stream: true }));
    assert.equal(text, pieces.join(''), 'whitespace kept, the rest decrypted');
  });

  test('a short hex-looking plaintext chunk is an error, not passed through (Venice\'s CLI would show it)', async () => {
    const tag = tagFor('venice-shorthex');
    answerTag(tag, piecesScript(['deadbeef', 'cafe']));
    venice.setFaults({ plaintextContent: true });
    const { c, rec } = openai(proxy());
    const err = await apiError(async () => drainChat(await c.chat.completions.create({ model: VENICE_MODEL, messages: [{ role: 'user', content: tag }], stream: true })), undefined, 'short hex');
    assert.match(err.message, /not a valid envelope/, `the cause (${err.message})`);
    const shown = await rec.exchanges.at(-1).raw;
    assert.ok(!shown.includes('deadbeef'), `the unauthenticated text was not shown: ${shown.slice(0, 300)}`);
  });

  const PRIOR_CALL = [
    { role: 'user', content: 'weather?' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
  ];
  const REFUSED = [
    ['tools', { tools: [{ type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }] }, /tools/],
    ['response_format json_schema', { response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'object', properties: {} } } } }, /response_format/],
    ['web_search_options', { web_search_options: {} }, /web_search_options/],
    ['venice_parameters.enable_web_search', { venice_parameters: { enable_web_search: 'auto' } }, /enable_web_search/],
    ['venice_parameters.enable_x_search', { venice_parameters: { enable_x_search: true } }, /enable_x_search/],
    ['venice_parameters.character_slug', { venice_parameters: { character_slug: 'alan-watts' } }, /character_slug/],
    ['an image part', { messages: [{ role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }] }] }, /non-text message content/],
    ['tool calls in the history', { messages: PRIOR_CALL }, /tool calls in the conversation/],
    // Venice encrypts delta.content only: logprobs tokens (the answer's text) would come back in clear.
    ['logprobs', { logprobs: true, top_logprobs: 2 }, /logprobs/],
  ];
  for (const [name, extra, pattern] of REFUSED) {
    test(`refused with a clear 400, nothing sent: ${name}`, async () => {
      const tag = tagFor('venice-refuse');
      const before = venice.chatCount;
      const { c } = openai(proxy());
      const body = { model: VENICE_MODEL, messages: [{ role: 'user', content: `Refuse ${tag}` }], ...extra };
      if (extra.messages) body.messages = [...extra.messages, { role: 'user', content: `Refuse ${tag}` }];
      const err = await apiError(() => c.chat.completions.create(body), 400, name);
      assert.equal(err.code, 'e2ee_unsupported_parameter', `${name}: error code (${err.message})`);
      assert.equal(err.type, 'invalid_request_error', `${name}: error type`);
      assert.match(err.message, pattern, `${name}: the message names what was refused`);
      assert.match(err.message, /Venice's end-to-end encrypted mode cannot carry/, `${name}: the message says why`);
      assert.equal(venice.chatCount, before, `${name}: nothing reached Venice's chat endpoint`);
    });
  }

  test('Anthropic Messages with tools → a Messages-shaped 400; nothing sent', async () => {
    const tag = tagFor('venice-refuse-msg');
    const before = venice.chatCount;
    const { c } = anthropic(proxy());
    const err = await apiError(
      () => c.messages.create({ model: VENICE_MODEL, max_tokens: 32, tools: [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: {} } }], messages: [{ role: 'user', content: `Refuse ${tag}` }] }),
      400,
      'messages with tools',
      Anthropic.APIError,
    );
    assert.equal(err.error?.type, 'error', `Anthropic error envelope: ${JSON.stringify(err.error)}`);
    assert.equal(err.error?.error?.type, 'invalid_request_error', 'Anthropic error type');
    assert.match(err.error?.error?.message ?? '', /tools/, 'names the tools');
    assert.equal(venice.chatCount, before, 'nothing reached Venice');
  });
});

// ---------------------------------------------------------------------------------------------
// Attestation refusals: the proxy sends nothing to the chat endpoint.

const REFUSALS = {
  venice: [
    ['wrong nonce echo', { attestation: { nonceEcho: 'wrong' } }, /not the nonce we sent/],
    ['REPORTDATA without our nonce', { attestation: { reportNonce: 'wrong' } }, /does not contain the nonce we sent/],
    ['REPORTDATA binds another key (address binding)', { attestation: { address: 'wrong' } }, /REPORTDATA does not hold the model key's identity/],
    ['signing_address of another key', { attestation: { signingAddress: 'wrong' } }, /signing_address .* is not the address of the model key/],
    ['TD debug bit set', { attestation: { debug: true } }, /debug mode/],
    ['not a TDX quote', { attestation: { teeType: 0 } }, /not a TDX quote/],
    ['report for another model', { attestation: { modelEcho: 'wrong' } }, /the report is for model/],
    ['verified: false', { attestation: { verified: false } }, /does not report the attestation as verified/],
    ['server_verification: TDX invalid', { attestation: { svTdxValid: false } }, /own TDX verification failed/],
    ['server_verification: nonce not bound', { attestation: { svNonceBound: false } }, /nonce as bound/],
    ['server_verification: nonce not bound (boolean shape)', { attestation: { svNonceBound: false, shape: 'boolean' } }, /nonce as bound/],
    ['no quote (without --allow-missing-quote)', { attestation: { omitQuote: true } }, /no intel_quote/],
  ],
  near: [
    ['wrong nonce echo', { report: { nonceEcho: 'wrong' } }, /not the nonce we sent/],
    ['REPORTDATA without our nonce', { report: { reportNonce: 'wrong' } }, /does not contain the nonce we sent/],
    ['REPORTDATA binds another key (address binding)', { report: { identity: 'wrong' } }, /REPORTDATA does not hold the model key's identity/],
    ['TD debug bit set', { report: { debug: true } }, /debug mode/],
    ['report for another model', { report: { model: 'wrong' } }, /no model attestation for/],
    ['no quote (without --allow-missing-quote)', { report: { omitQuote: true } }, /no TDX quote/],
  ],
  dstack: [
    ['wrong nonce echo', { report: { nonceEcho: 'wrong' } }, /not the nonce we sent/],
    ['REPORTDATA without our nonce', { report: { reportNonce: 'wrong' } }, /does not contain the nonce we sent/],
    ['REPORTDATA binds another key (address binding)', { report: { identity: 'wrong' } }, /REPORTDATA does not hold the model key's identity/],
    ['TD debug bit set', { report: { debug: true } }, /debug mode/],
    ['not a TDX quote', { report: { teeType: 0 } }, /not a TDX quote/],
    ['no quote (without --allow-missing-quote)', { report: { omitQuote: true } }, /no TDX quote/],
  ],
};

for (const cfg of CONFIGS) {
  describe(`${cfg.id}: attestation refused → nothing sent, an error in the client's dialect`, () => {
    for (const [name, faults, pattern] of REFUSALS[cfg.family]) {
      test(name, async () => {
        const fake = fakeOf(cfg);
        const model = newModel(cfg, 'refuse');
        // A wrong identity of this algorithm's kind (20-byte address or 32-byte Ed25519 key).
        const knobs = structuredClone(faults);
        if (knobs.report?.identity === 'wrong') knobs.report.identity = KeyPair.of(cfg.algo).identity;
        fake.setFaults(knobs);
        const chatBefore = fake.chatCount;
        const reportsBefore = fake.reports.length;
        const tag = tagFor('refused');
        const proxy = fakeProxies.get(cfg.id);

        const err = await apiError(() => openai(proxy).c.chat.completions.create({ model, messages: [{ role: 'user', content: `Never sent ${tag}` }] }), 502, `${name} (chat)`);
        assert.equal(err.code, 'attestation_failed', `${name}: OpenAI error code (${err.message})`);
        assert.equal(err.type, 'upstream_error', `${name}: OpenAI error type`);
        assert.match(err.message, pattern, `${name}: the reason is named`);
        assert.match(err.message, /Nothing was sent to the model/, `${name}: says nothing was sent`);

        const aerr = await apiError(
          async () => {
            const s = await anthropic(proxy).c.messages.create({ model, max_tokens: 16, stream: true, messages: [{ role: 'user', content: `Never sent ${tag}` }] });
            for await (const e of s) void e;
          },
          502,
          `${name} (messages)`,
          Anthropic.APIError,
        );
        assert.equal(aerr.error?.type, 'error', `${name}: Anthropic error envelope: ${JSON.stringify(aerr.error)}`);
        assert.equal(aerr.error?.error?.type, 'api_error', `${name}: Anthropic error type`);
        assert.match(aerr.error?.error?.message ?? '', pattern, `${name}: the Messages error names the reason`);

        assert.equal(fake.chatCount, chatBefore, `${name}: the chat endpoint got nothing`);
        assert.equal(fake.reports.length - reportsBefore, 2, `${name}: each request attested afresh (a refusal is not cached)`);
      });
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Sessions

for (const cfg of CONFIGS) {
  describe(`${cfg.id}: sessions`, () => {
    const proxy = () => fakeProxies.get(cfg.id);

    test('10 concurrent first requests share one key exchange (single flight)', async () => {
      const fake = fakeOf(cfg);
      const model = newModel(cfg, 'flight');
      fake.setFaults({ reportDelayMs: 300 }); // all ten arrive while the one attestation is under way
      const reportsBefore = fake.reports.length;
      const chatBefore = fake.chatCount;
      const tag = tagFor('flight');
      const { c } = openai(proxy());
      const results = await Promise.all(
        Array.from({ length: 10 }, async (_, i) => {
          const content = `Concurrent ${i} ${tag}`;
          if (i % 2) return { i, text: (await drainChat(await c.chat.completions.create({ model, messages: [{ role: 'user', content }], stream: true }))).text };
          return { i, text: (await c.chat.completions.create({ model, messages: [{ role: 'user', content }] })).choices[0].message.content };
        }),
      );
      for (const { i, text } of results) assert.equal(text, echoOf(`Concurrent ${i} ${tag}`), `request ${i}: its own answer`);
      assert.equal(fake.reports.length - reportsBefore, 1, 'one attestation for 10 concurrent requests');
      assert.equal(attestations(cfg, model) - (cfg.family === 'dstack' ? reportsBefore : 0), 1, 'one attestation for this model');
      assert.equal(fake.chatCount - chatBefore, 10, 'ten chat requests');
      const keys = new Set(fake.received.filter((r) => r.forwarded.model === model).map((r) => r.headers['x-client-pub-key'] ?? r.headers['x-venice-tee-client-pub-key']));
      assert.equal(keys.size, 1, 'all ten used the one session key');
    });

    test('10 concurrent first requests while the attestation is refused: one attestation, ten errors, nothing sent', async () => {
      const fake = fakeOf(cfg);
      const model = newModel(cfg, 'flight-refused');
      fake.setFaults(cfg.family === 'venice' ? { reportDelayMs: 300, attestation: { debug: true } } : { reportDelayMs: 300, report: { debug: true } });
      const reportsBefore = fake.reports.length;
      const chatBefore = fake.chatCount;
      const { c } = openai(proxy());
      const errors = await Promise.all(Array.from({ length: 10 }, (_, i) => apiError(() => c.chat.completions.create({ model, messages: [{ role: 'user', content: tagFor(`refused-${i}`) }] }), 502, `request ${i}`)));
      for (const err of errors) assert.equal(err.code, 'attestation_failed', `each waiter gets the leader's refusal (${err.message})`);
      assert.equal(fake.reports.length - reportsBefore, 1, 'one attestation for the ten');
      assert.equal(fake.chatCount, chatBefore, 'nothing sent');
    });

    if (cfg.family !== 'dstack') {
      test('concurrent first requests for two models: one attestation each, each sealed to its own model key', async () => {
        const fake = fakeOf(cfg);
        const models = [newModel(cfg, 'pair-a'), newModel(cfg, 'pair-b')];
        fake.setFaults({ reportDelayMs: 300 });
        const tag = tagFor('pair');
        const { c } = openai(proxy());
        const answers = await Promise.all(
          Array.from({ length: 8 }, async (_, i) => {
            const model = models[i % 2];
            const content = `${model} ${i} ${tag}`;
            return [content, (await c.chat.completions.create({ model, messages: [{ role: 'user', content }] })).choices[0].message.content];
          }),
        );
        for (const [content, text] of answers) assert.equal(text, echoOf(content), `answer to ${content}`);
        for (const model of models) {
          assert.equal(reportsFor(fake, model), 1, `${model}: one attestation`);
          const recs = fake.received.filter((r) => r.forwarded.model === model);
          assert.equal(recs.length, 4, `${model}: four requests decrypted with its own key`);
          const modelKeys = new Set(recs.map((r) => r.headers['x-model-pub-key'] ?? r.headers['x-venice-tee-model-pub-key']));
          assert.equal(modelKeys.size, 1, `${model}: one model key header`);
        }
        const keyA = fake.received.find((r) => r.forwarded.model === models[0]).headers;
        const keyB = fake.received.find((r) => r.forwarded.model === models[1]).headers;
        const clientKey = (h) => h['x-client-pub-key'] ?? h['x-venice-tee-client-pub-key'];
        assert.notEqual(clientKey(keyA), clientKey(keyB), 'the two models have separate sessions');
      });
    }

    const staleWhat = { venice: 'Venice no longer decrypts (model key rotated) → re-attest, one retry', near: 'HTTP 421 (stale X-Model-Pub-Key) → key refresh, one retry', dstack: 'e2ee_model_key_mismatch (server restarted) → re-attest, one retry' }[cfg.family];
    test(staleWhat, async () => {
      const fake = fakeOf(cfg);
      const model = newModel(cfg, 'stale');
      const { c } = openai(proxy());
      const first = tagFor('stale-a');
      assert.equal((await c.chat.completions.create({ model, messages: [{ role: 'user', content: first }] })).choices[0].message.content, echoOf(first), 'first request');
      const reportsBefore = fake.reports.length;
      const rejectedBefore = fake.rejected.length;
      const chatBefore = fake.chatCount;
      if (cfg.family === 'venice') fake.rotateKeys(model);
      else fake.rotateKeys();
      const second = tagFor('stale-b');
      const r = await c.chat.completions.create({ model, messages: [{ role: 'user', content: second }] });
      assert.equal(r.choices[0].message.content, echoOf(second), 'the retry succeeded');
      assert.equal(fake.reports.length - reportsBefore, 1, 'one new attestation');
      assert.equal(attestations(cfg, model) - (cfg.family === 'dstack' ? reportsBefore - 1 : 0), 2, 'two attestations for this model in all');
      assert.equal(fake.chatCount - chatBefore, 2, 'the refused attempt and one retry');
      const refusals = fake.rejected.slice(rejectedBefore);
      assert.equal(refusals.length, 1, `one refusal: ${JSON.stringify(refusals)}`);
      const expected = { venice: [400, /decrypt/], near: [421, /no longer valid/], dstack: [400, /does not match/] }[cfg.family];
      assert.equal(refusals[0].status, expected[0], 'the provider refused the stale key');
      assert.match(JSON.stringify(refusals[0].body), expected[1], 'with its own message');
      // The retried request was sealed to the new key.
      assertEncryptedRecord(cfg, oneReceived(fake, second, 'retry'), [['user', second]], 'retry');
    });

    test('a response that does not decrypt (first field) → session dropped, re-attested, one retry succeeds', async () => {
      const fake = fakeOf(cfg);
      const model = newModel(cfg, 'redo');
      const { c } = openai(proxy());
      const warm = tagFor('redo-warm');
      await c.chat.completions.create({ model, messages: [{ role: 'user', content: warm }] });
      for (const stream of [false, true]) {
        const tag = tagFor(`redo-${stream}`);
        const pieces = ['Fresh ', 'session ', `${stream}`];
        answerTag(tag, piecesScript(pieces), 2);
        fake.setFaults({ tamperChunk: 0, tamperOnce: true });
        const reportsBefore = fake.reports.length;
        const chatBefore = fake.chatCount;
        const req = { model, messages: [{ role: 'user', content: tag }] };
        const text = stream ? (await drainChat(await c.chat.completions.create({ ...req, stream: true }))).text : (await c.chat.completions.create(req)).choices[0].message.content;
        assert.equal(text, pieces.join(''), `stream=${stream}: the retry's answer`);
        assert.equal(fake.reports.length - reportsBefore, 1, `stream=${stream}: the failure made the proxy attest again`);
        assert.equal(fake.chatCount - chatBefore, 2, `stream=${stream}: one retry`);
        assert.equal(fake.faults.tamperChunk, undefined, `stream=${stream}: the fake did tamper once`);
        const keys = receivedWith(fake, tag).map((r) => r.headers['x-client-pub-key'] ?? r.headers['x-venice-tee-client-pub-key']);
        assert.equal(keys.length, 2, `stream=${stream}: two attempts recorded`);
        assert.notEqual(keys[0], keys[1], `stream=${stream}: the retry used a new session key`);
        if (cfg.family === 'dstack' && cfg.version === 2) {
          const nonces = receivedWith(fake, tag).map((r) => r.headers['x-e2ee-nonce']);
          assert.notEqual(nonces[0], nonces[1], `stream=${stream}: the retry drew a fresh X-E2EE-Nonce`);
        }
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// dstack: the response must confirm encryption; v2 replay headers

describe('dstack: an answer that should be encrypted but is not is refused', () => {
  const CASES = [
    ['no X-E2EE-Applied, plaintext body', { omitApplied: true, plaintextResponse: true }, /no X-E2EE-Applied header/],
    ['X-E2EE-Applied: false, plaintext body', { appliedFalse: true, plaintextResponse: true }, /X-E2EE-Applied: false/],
    ['X-E2EE-Version differs', { wrongVersionHeader: true }, /X-E2EE-Version is/],
    ['X-E2EE-Algo differs', { wrongAlgoHeader: true }, /X-E2EE-Algo is/],
  ];
  for (const cfg of CONFIGS.filter((c) => c.family === 'dstack')) {
    for (const [name, faults, pattern] of CASES) {
      test(`${cfg.id}: ${name} → 502 e2ee_not_applied, nothing shown`, async () => {
        const proxy = fakeProxies.get(cfg.id);
        for (const stream of [false, true]) {
          dstack.setFaults(faults);
          const tag = tagFor('applied');
          const { c, rec } = openai(proxy);
          const err = await apiError(async () => {
            const r = await c.chat.completions.create({ model: DSTACK_MODEL, messages: [{ role: 'user', content: tag }], stream });
            if (stream) await drainChat(r);
            return r;
          }, 502, `${name} stream=${stream}`);
          assert.equal(err.code, 'e2ee_not_applied', `${name}: error code (${err.message})`);
          assert.match(err.message, pattern, `${name}: the reason`);
          const shown = (await rec.exchanges.at(-1).raw) ?? '';
          assert.ok(!shown.includes(MARKER), `${name}: no plaintext reached the client: ${shown.slice(0, 300)}`);
        }
      });
    }
  }

  for (const cfg of CONFIGS.filter((c) => c.family === 'dstack')) {
    test(`${cfg.id}: X-E2EE-Applied: true but plaintext content → error, never shown`, async () => {
      const proxy = fakeProxies.get(cfg.id);
      for (const stream of [false, true]) {
        dstack.setFaults({ plaintextResponse: true });
        const tag = tagFor('plain');
        const { c, rec } = openai(proxy);
        const err = await apiError(async () => {
          const r = await c.chat.completions.create({ model: DSTACK_MODEL, messages: [{ role: 'user', content: tag }], stream });
          if (stream) await drainChat(r);
          return r;
        }, stream ? undefined : 502, `plaintext stream=${stream}`);
        assert.match(err.message, /not a valid envelope|not valid for this session/, `stream=${stream}: says the answer is not an envelope (${err.message})`);
        const shown = (await rec.exchanges.at(-1).raw) ?? '';
        assert.ok(!shown.includes(MARKER), `stream=${stream}: the plaintext answer was not shown: ${shown.slice(0, 300)}`);
      }
    });
  }
});

describe('dstack v2: X-E2EE-Nonce / X-E2EE-Timestamp', () => {
  for (const cfg of CONFIGS.filter((c) => c.family === 'dstack' && c.version === 2)) {
    test(`${cfg.id}: a server whose clock disagrees → 502 e2ee_invalid_timestamp with a hint about the clock`, async () => {
      const realNow = dstack.now;
      dstack.now = () => realNow() + 3600;
      try {
        const err = await apiError(() => openai(fakeProxies.get(cfg.id)).c.chat.completions.create({ model: DSTACK_MODEL, messages: [{ role: 'user', content: tagFor('clock') }] }), 502, 'clock skew');
        assert.equal(err.code, 'e2ee_invalid_timestamp', `code (${err.message})`);
        assert.match(err.message, /check this machine's clock/, 'the hint');
      } finally {
        dstack.now = realNow;
      }
    });
  }

  test('v2 requests carry a fresh nonce (≥ 16 chars, unique) and the current time; v1 requests carry neither', async () => {
    for (const cfg of CONFIGS.filter((c) => c.family === 'dstack')) {
      const proxy = fakeProxies.get(cfg.id);
      const { c } = openai(proxy);
      const tags = [];
      await Promise.all(
        Array.from({ length: 6 }, async (_, i) => {
          const tag = tagFor(`v2-${i}`);
          tags.push(tag);
          await c.chat.completions.create({ model: DSTACK_MODEL, messages: [{ role: 'user', content: tag }], stream: i % 2 === 1 });
        }),
      );
      const recs = tags.map((t) => oneReceived(dstack, t, cfg.id));
      const now = Math.floor(Date.now() / 1000);
      for (const r of recs) {
        assert.equal(r.headers['x-e2ee-version'], String(cfg.version), `${cfg.id}: X-E2EE-Version`);
        assert.equal(r.e2ee.version, cfg.version, `${cfg.id}: the server negotiated v${cfg.version}`);
        if (cfg.version === 2) {
          const nonce = r.headers['x-e2ee-nonce'];
          const ts = Number(r.headers['x-e2ee-timestamp']);
          assert.ok(typeof nonce === 'string' && nonce.length >= 16, `${cfg.id}: nonce of ${nonce?.length} chars`);
          assert.ok(Number.isInteger(ts) && Math.abs(now - ts) <= 60, `${cfg.id}: timestamp ${ts} is now (${now})`);
        } else {
          assert.equal(r.headers['x-e2ee-nonce'], undefined, `${cfg.id}: no nonce in v1`);
          assert.equal(r.headers['x-e2ee-timestamp'], undefined, `${cfg.id}: no timestamp in v1`);
        }
      }
      if (cfg.version === 2) {
        const all = dstack.received.filter((r) => r.e2ee?.version === 2).map((r) => r.headers['x-e2ee-nonce']);
        assert.equal(new Set(all).size, all.length, `every v2 request so far had its own nonce (${all.length})`);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Fail closed: tampered or plaintext answers

for (const cfg of CONFIGS) {
  describe(`${cfg.id}: fail closed`, () => {
    const proxy = () => fakeProxies.get(cfg.id);
    const PIECES = ['Alpha ', 'beta ', 'gamma ', 'delta ', 'epsilon'];

    test('chat stream: a tampered envelope mid-stream → error event + [DONE], no garbage; the next request re-attests', async () => {
      const fake = fakeOf(cfg);
      const model = newModel(cfg, 'tamper');
      const tag = tagFor('tamper-chat');
      answerTag(tag, piecesScript(PIECES, { paceMs: 40 }));
      const { c, rec } = openai(proxy());
      await c.chat.completions.create({ model, messages: [{ role: 'user', content: tagFor('warm') }] });
      const reportsBefore = fake.reports.length;
      fake.setFaults({ tamperChunk: 2 });
      let text = '';
      const err = await apiError(async () => {
        const s = await c.chat.completions.create({ model, messages: [{ role: 'user', content: tag }], stream: true });
        for await (const ch of s) text += ch.choices?.[0]?.delta?.content ?? '';
      }, undefined, 'tampered chat stream');
      assert.match(err.message, /not a valid envelope/, `the error names the cause: ${err.message}`);
      assert.equal(text, PIECES.slice(0, 2).join(''), 'only the chunks before the tampered one were shown');
      const raw = await rec.exchanges.at(-1).raw;
      const events = parseSseEvents(raw).filter((e) => !e.comment);
      assert.equal(events.at(-1)?.data, '[DONE]', `the stream ends with [DONE]: ${raw.slice(-200)}`);
      const error = JSON.parse(events.at(-2).data);
      assert.equal(error.error?.code, 'response_decryption_failed', `the last event before [DONE] is the error: ${events.at(-2).data}`);
      assert.ok(!ENVELOPE_RUN.test(raw), 'no ciphertext reaches the client');
      fake.clearFaults();
      const after = tagFor('after');
      assert.equal((await c.chat.completions.create({ model, messages: [{ role: 'user', content: after }] })).choices[0].message.content, echoOf(after), 'the next request works');
      assert.equal(fake.reports.length - reportsBefore, 1, 'after the failure the session was renewed');
    });

    test('chat stream, unpaced: the chunks before a tampered one are shown however the reads split them, then the error', async () => {
      const fake = fakeOf(cfg);
      const model = newModel(cfg, 'tamper-burst');
      const tag = tagFor('tamper-burst');
      // Twice: when the whole burst arrives in one read nothing has reached the client yet, so
      // the proxy renews the session and asks once more; the fault persists.
      answerTag(tag, piecesScript(PIECES), 2);
      const { c } = openai(proxy());
      await c.chat.completions.create({ model, messages: [{ role: 'user', content: tagFor('warm') }] });
      fake.setFaults({ tamperChunk: 2 });
      let text = '';
      try {
        const err = await apiError(async () => {
          const s = await c.chat.completions.create({ model, messages: [{ role: 'user', content: tag }], stream: true });
          for await (const ch of s) text += ch.choices?.[0]?.delta?.content ?? '';
        }, undefined, 'tampered unpaced chat stream');
        assert.match(err.message, /not a valid envelope/, `the error names the cause: ${err.message}`);
      } finally {
        fake.clearFaults();
      }
      assert.equal(text, PIECES.slice(0, 2).join(''), 'the chunks before the tampered one were shown, nothing after it');
    });

    test('Messages stream: a tampered envelope mid-stream → event: error, never a silent end', async () => {
      const fake = fakeOf(cfg);
      const tag = tagFor('tamper-msg');
      answerTag(tag, piecesScript(PIECES, { paceMs: 40 }));
      const { c, rec } = anthropic(proxy());
      await c.messages.create({ model: modelOf(cfg), max_tokens: 16, messages: [{ role: 'user', content: tagFor('warm') }] });
      fake.setFaults({ tamperChunk: 2 });
      let text = '';
      const err = await apiError(async () => {
        const s = await c.messages.create({ model: modelOf(cfg), max_tokens: 64, stream: true, messages: [{ role: 'user', content: tag }] });
        for await (const e of s) if (e.type === 'content_block_delta') text += e.delta.text ?? '';
      }, undefined, 'tampered Messages stream', Anthropic.APIError);
      assert.match(err.message, /not a valid envelope/, `the error names the cause: ${err.message}`);
      assert.equal(text, PIECES.slice(0, 2).join(''), 'only the text before the tampered chunk was shown');
      const checked = checkAnthropicStream(await rec.exchanges.at(-1).raw, { expectError: true });
      assert.equal(checked.error.type, 'api_error', `event: error with type ${checked.error.type}`);
    });

    test('Responses stream: a tampered envelope mid-stream → response.failed', async () => {
      const fake = fakeOf(cfg);
      const tag = tagFor('tamper-resp');
      answerTag(tag, piecesScript(PIECES, { paceMs: 40 }));
      const { c, rec } = openai(proxy());
      await c.chat.completions.create({ model: modelOf(cfg), messages: [{ role: 'user', content: tagFor('warm') }] });
      fake.setFaults({ tamperChunk: 2 });
      let failed = null;
      let text = '';
      const s = await c.responses.create({ model: modelOf(cfg), input: tag, stream: true });
      for await (const e of s) {
        if (e.type === 'response.output_text.delta') text += e.delta;
        if (e.type === 'response.failed') failed = e.response;
      }
      assert.ok(failed, 'the stream ended with response.failed');
      assert.match(failed.error?.message ?? '', /not a valid envelope/, `the failure names the cause: ${JSON.stringify(failed.error)}`);
      assert.equal(text, PIECES.slice(0, 2).join(''), 'only the text before the tampered chunk');
      checkResponsesStream(await rec.exchanges.at(-1).raw);
    });

    test('an answer that ends without [DONE] → an error event, never a silent success', async () => {
      const tag = tagFor('truncated');
      answerTag(tag, (rec) => ({ frames: contentFirstFrames(rec.json.model, PIECES).filter((f) => !f.includes('[DONE]')) }));
      const { c, rec } = openai(proxy());
      let text = '';
      const err = await apiError(async () => {
        for await (const ch of await c.chat.completions.create({ model: modelOf(cfg), messages: [{ role: 'user', content: tag }], stream: true })) text += ch.choices?.[0]?.delta?.content ?? '';
      }, undefined, 'truncated stream');
      assert.equal(err.code, 'stream_truncated', `the error says the answer was cut short (${err.message})`);
      assert.equal(text, PIECES.join(''), 'what did arrive was shown, decrypted');
      const events = parseSseEvents(await rec.exchanges.at(-1).raw).filter((e) => !e.comment);
      assert.equal(events.at(-1)?.data, '[DONE]', 'the client stream is still well terminated');
    });

    test('non-envelope, non-whitespace content → an error, never the plaintext (stream and not)', async () => {
      const fake = fakeOf(cfg);
      for (const stream of [false, true]) {
        fake.setFaults(cfg.family === 'venice' ? { plaintextContent: true } : { plaintextResponse: true });
        const tag = tagFor('plaintext');
        const { c, rec } = openai(proxy());
        const err = await apiError(async () => {
          const r = await c.chat.completions.create({ model: modelOf(cfg), messages: [{ role: 'user', content: tag }], stream });
          if (stream) await drainChat(r);
          return r;
        }, stream ? undefined : 502, `plaintext answer, stream=${stream}`);
        assert.match(err.message, /not a valid envelope|not valid for this session/, `stream=${stream}: the cause (${err.message})`);
        const shown = await rec.exchanges.at(-1).raw;
        assert.ok(!shown.includes(MARKER), `stream=${stream}: the plaintext answer was not shown: ${shown.slice(0, 300)}`);
        if (stream) {
          const events = parseSseEvents(shown).filter((e) => !e.comment);
          assert.equal(events.at(-1)?.data, '[DONE]', `stream=${stream}: ends with [DONE]`);
          assert.ok(JSON.parse(events.at(-2).data).error, `stream=${stream}: an error event before [DONE]`);
        }
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// More fields: reasoning, tools

const REASONING_DELTAS = [{ reasoning_content: 'Thinking ' }, { reasoning_content: 'hard ✓' }, { content: 'Answer ' }, { content: 'here' }];
const reasoningScript = (rec) =>
  rec.json.stream ? { frames: deltaFrames({ model: rec.json.model, deltas: REASONING_DELTAS }) } : { json: completionWith({ model: rec.json.model, message: { reasoning_content: 'Thinking hard ✓', content: 'Answer here' } }) };

for (const cfg of CONFIGS) {
  test(`${cfg.id}: reasoning_content is encrypted by the provider and decrypted for the client (stream and not)`, async () => {
    const { c } = openai(fakeProxies.get(cfg.id));
    for (const stream of [false, true]) {
      const tag = tagFor('reasoning');
      answerTag(tag, reasoningScript);
      const req = { model: modelOf(cfg), messages: [{ role: 'user', content: tag }] };
      let reasoning = '';
      let text = '';
      if (stream) {
        for await (const ch of await c.chat.completions.create({ ...req, stream: true })) {
          reasoning += ch.choices?.[0]?.delta?.reasoning_content ?? '';
          text += ch.choices?.[0]?.delta?.content ?? '';
        }
      } else {
        const r = await c.chat.completions.create(req);
        reasoning = r.choices[0].message.reasoning_content;
        text = r.choices[0].message.content;
      }
      assert.equal(reasoning, 'Thinking hard ✓', `stream=${stream}: reasoning decrypted`);
      assert.equal(text, 'Answer here', `stream=${stream}: content decrypted`);
    }
  });
}

const PNG = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
const multimodal = (tag) => [{ type: 'text', text: `Describe ${tag}` }, { type: 'image_url', image_url: { url: PNG } }, { type: 'text', text: 'briefly' }];

for (const cfg of CONFIGS.filter((c) => c.family !== 'venice')) {
  test(`${cfg.id}: a multimodal message travels as ONE envelope of the stringified part array; the TEE gets the parts back`, async () => {
    const tag = tagFor('multimodal');
    const { c } = openai(fakeProxies.get(cfg.id));
    const r = await c.chat.completions.create({ model: modelOf(cfg), messages: [{ role: 'user', content: multimodal(tag) }] });
    assert.equal(r.choices[0].message.content, echoOf(`Describe ${tag}briefly`), 'answer (the engine echoes the joined text parts)');
    const rec = oneReceived(fakeOf(cfg), tag, 'multimodal');
    assert.ok(!rec.raw.includes('iVBORw0KGgo') && !rec.raw.includes('image_url'), `the image and the part structure are not on the wire: ${rec.raw.slice(0, 300)}`);
    assert.ok(typeof rec.body.messages[0].content === 'string' && isHex(rec.body.messages[0].content), 'one envelope string');
    assert.deepEqual(rec.forwarded.messages[0].content, multimodal(tag), 'the TEE restored the part array exactly');
  });
}

test('dstack (reference coverage): a `reasoning` field the server leaves in plaintext → refused, never shown', async () => {
  const cfg = CONFIGS.find((c) => c.id === 'dstack ecdsa v2');
  const tag = tagFor('reasoning-plain');
  const secret = `hidden-thought-${tag.slice(-6)}`;
  // Twice: when nothing has reached the client yet, the proxy renews the session and asks once
  // more (a stale key looks the same to it), and a server that leaves the field in plaintext
  // does so again.
  answerTag(tag, (rec) => ({ frames: deltaFrames({ model: rec.json.model, deltas: [{ reasoning: secret }, { content: 'visible' }] }) }), 2);
  const { c, rec } = openai(fakeProxies.get(cfg.id));
  const err = await apiError(async () => drainChat(await c.chat.completions.create({ model: DSTACK_MODEL, messages: [{ role: 'user', content: tag }], stream: true })), undefined, 'plaintext reasoning');
  assert.match(err.message, /not a valid envelope/, `the cause: ${err.message}`);
  const shown = await rec.exchanges.at(-1).raw;
  assert.ok(!shown.includes(secret), `the plaintext reasoning was not shown: ${shown.slice(0, 300)}`);
});

for (const cfg of CONFIGS.filter((c) => c.family === 'near')) {
  describe(`${cfg.id}: X-Encrypt-All-Fields (tools, tool calls, names)`, () => {
    const WEATHER = { type: 'function', function: { name: 'get_weather', description: 'Current weather ✓', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } };
    const history = (tag) => [
      { role: 'system', content: `Use tools ${tag}` },
      { role: 'user', content: `Weather in Paris? ${tag}` },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: `sunny ${tag}` },
      { role: 'user', content: `And Rome? ${tag}` },
    ];
    for (const stream of [false, true]) {
      test(`tool definitions, history tool calls and the answer's tool call travel encrypted (${stream ? 'stream' : 'non-stream'})`, async () => {
        const tag = tagFor('near-tools');
        answerTag(tag, (rec) =>
          rec.json.stream
            ? { frames: deltaFrames({ model: rec.json.model, deltas: toolCallDeltas(0, 'call_2', 'get_weather', '{"city":"Rome"}'), finishReason: 'tool_calls' }) }
            : { json: completionWith({ model: rec.json.model, message: { content: null, tool_calls: [toolCall('call_2', 'get_weather', { city: 'Rome' })] }, finishReason: 'tool_calls' }) },
        );
        const { c } = openai(fakeProxies.get(cfg.id));
        const req = { model: NEAR_MODEL, messages: history(tag), tools: [WEATHER], tool_choice: { type: 'function', function: { name: 'get_weather' } } };
        let call;
        if (stream) {
          let name = '';
          let args = '';
          for await (const ch of await c.chat.completions.create({ ...req, stream: true })) {
            for (const tc of ch.choices?.[0]?.delta?.tool_calls ?? []) {
              name += tc.function?.name ?? '';
              args += tc.function?.arguments ?? '';
            }
          }
          call = { name, args };
        } else {
          const r = await c.chat.completions.create(req);
          call = { name: r.choices[0].message.tool_calls[0].function.name, args: r.choices[0].message.tool_calls[0].function.arguments };
        }
        assert.deepEqual(call, { name: 'get_weather', args: '{"city":"Rome"}' }, 'the tool call, decrypted');
        const rec = oneReceived(near, tag, 'tools');
        assert.equal(rec.headers['x-encrypt-all-fields'], 'true', 'X-Encrypt-All-Fields sent');
        for (const leak of ['get_weather', 'Current weather', 'Paris', 'city']) assert.ok(!rec.raw.includes(leak), `${leak} on the wire in plaintext: ${rec.raw.slice(0, 400)}`);
        assert.ok(isHex(rec.body.tools[0].function.name) && isHex(rec.body.tools[0].function.parameters), 'tool name and parameters are envelopes');
        assert.ok(isHex(rec.body.messages[2].tool_calls[0].function.arguments), 'history tool-call arguments are an envelope');
        assert.equal(rec.body.messages[2].tool_calls[0].id, 'call_1', 'tool-call ids stay in the clear (routing)');
        assert.deepEqual(rec.forwarded.tools, [WEATHER], 'the TEE restored the tool definition exactly');
        assert.deepEqual(rec.forwarded.tool_choice, req.tool_choice, 'tool_choice restored');
        assert.deepEqual(rec.forwarded.messages[2].tool_calls, history(tag)[2].tool_calls, 'history tool call restored');
        assert.deepEqual(rec.forwarded.messages.map((m) => [m.role, m.content]), history(tag).map((m) => [m.role, m.content]), 'every message restored');
      });
    }
  });
}

test('dstack without --dstack-encrypt-all-fields: tool definitions travel in plaintext, as the reference server expects (documented leak)', async () => {
  const cfg = CONFIGS.find((c) => c.id === 'dstack ecdsa v2');
  const tag = tagFor('dstack-tools');
  const { c } = openai(fakeProxies.get(cfg.id));
  const tool = { type: 'function', function: { name: 'lookup_order', description: 'Looks up an order', parameters: { type: 'object', properties: {} } } };
  const r = await c.chat.completions.create({ model: DSTACK_MODEL, messages: [{ role: 'user', content: tag }], tools: [tool] });
  assert.equal(r.choices[0].message.content, echoOf(tag), 'answer');
  const rec = oneReceived(dstack, tag, 'dstack tools');
  assert.deepEqual(rec.body.tools, [tool], 'tools are plaintext on the wire (only message content is encrypted)');
  assert.ok(!rec.raw.includes(MARKER), 'the prompt itself is encrypted');
});

const LOGPROBS = { content: [{ token: 'Hi', logprob: -0.1, bytes: [72, 105], top_logprobs: [{ token: 'Hi', logprob: -0.1, bytes: [72, 105] }, { token: 'Yo', logprob: -2.5, bytes: [89, 111] }] }], refusal: null };
const logprobsScript = (rec) => ({ json: { ...completionWith({ model: rec.json.model, message: { content: 'Hi' } }), choices: [{ index: 0, message: { role: 'assistant', content: 'Hi' }, logprobs: LOGPROBS, finish_reason: 'stop' }] } });

describe('logprobs: their tokens are the answer', () => {
  for (const cfg of CONFIGS.filter((c) => c.family === 'dstack')) {
    test(`${cfg.id} (reference server encrypts no logprobs): refused with a 400, nothing sent`, async () => {
      const before = dstack.chatCount;
      const err = await apiError(() => openai(fakeProxies.get(cfg.id)).c.chat.completions.create({ model: DSTACK_MODEL, messages: [{ role: 'user', content: tagFor('logprobs') }], logprobs: true, top_logprobs: 2 }), 400, 'dstack logprobs');
      assert.equal(err.code, 'e2ee_unsupported_parameter', `code (${err.message})`);
      assert.match(err.message, /logprobs/, 'names logprobs');
      assert.equal(dstack.chatCount, before, 'nothing sent');
    });
  }
  for (const cfg of CONFIGS.filter((c) => c.family === 'near')) {
    test(`${cfg.id} (X-Encrypt-All-Fields): logprobs are encrypted by the server and decrypted for the client`, async () => {
      const tag = tagFor('near-logprobs');
      answerTag(tag, logprobsScript);
      const r = await openai(fakeProxies.get(cfg.id)).c.chat.completions.create({ model: NEAR_MODEL, messages: [{ role: 'user', content: tag }], logprobs: true, top_logprobs: 2 });
      assert.equal(r.choices[0].message.content, 'Hi', 'content');
      assert.deepEqual(r.choices[0].logprobs, LOGPROBS, 'tokens and bytes decrypted exactly (the proxy refuses plaintext ones here)');
      assert.equal(oneReceived(near, tag, 'logprobs').forwarded.logprobs, true, 'logprobs requested');
    });
  }
  test('nearai with --nearai-encrypt-all-fields false: logprobs refused, nothing sent', async () => {
    const cfg = CONFIGS.find((c) => c.id === 'nearai ecdsa');
    const proxy = await startProxy(proxyArgs(cfg, near.url, ['--nearai-encrypt-all-fields', 'false']));
    procs.push(proxy);
    try {
      const before = near.chatCount;
      const err = await apiError(() => openai(proxy).c.chat.completions.create({ model: NEAR_MODEL, messages: [{ role: 'user', content: tagFor('logprobs-off') }], logprobs: true }), 400, 'near logprobs without all fields');
      assert.equal(err.code, 'e2ee_unsupported_parameter', `code (${err.message})`);
      assert.equal(near.chatCount, before, 'nothing sent');
    } finally {
      await proxy.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// More protocol variants and edges

describe('variants the reports and servers are allowed to use', () => {
  const VENICE_OK = [
    ['nonce bound as SHA-256(nonce)', { nonceMethod: 'sha256' }],
    ['base64 quote', { quoteEncoding: 'base64' }],
    ['key in signing_key', { keyField: 'signing_key' }],
    ['key in both fields', { keyField: 'both' }],
    ['server_verification bindings as booleans', { shape: 'boolean' }],
  ];
  for (const [name, knobs] of VENICE_OK) {
    test(`venice: accepted — ${name}`, async () => {
      const cfg = CONFIGS.find((c) => c.family === 'venice');
      const model = newModel(cfg, 'variant');
      venice.setFaults({ attestation: knobs });
      const tag = tagFor('variant');
      const r = await openai(fakeProxies.get(cfg.id)).c.chat.completions.create({ model, messages: [{ role: 'user', content: tag }] });
      assert.equal(r.choices[0].message.content, echoOf(tag), `${name}: answer`);
    });
  }

  test('dstack: base64 quote and a per-field ephemeral key are accepted', async () => {
    const cfg = CONFIGS.find((c) => c.id === 'dstack ed25519 v2');
    const model = newModel(cfg, 'variant');
    dstack.setFaults({ report: { quoteEncoding: 'base64' } });
    dstack.ephemeral = 'per-field';
    try {
      const tag = tagFor('dstack-variant');
      const { text } = await drainChat(await openai(fakeProxies.get(cfg.id)).c.chat.completions.create({ model, messages: [{ role: 'user', content: tag }], stream: true }));
      assert.equal(text, echoOf(tag), 'answer');
    } finally {
      dstack.ephemeral = 'per-request';
    }
  });

  test('nearai ed25519 v1: a server that boxes answers with XSalsa20 (PyNaCl-era) is read too', async () => {
    const salsa = await startFakeNear({ engineUrl: engine.url, v1Cipher: 'salsa' });
    const cfg = CONFIGS.find((c) => c.id === 'nearai ed25519 v1 (box)');
    const proxy = await startProxy(proxyArgs(cfg, salsa.url));
    procs.push(proxy);
    try {
      const tag = tagFor('salsa');
      const { c } = openai(proxy);
      assert.equal((await c.chat.completions.create({ model: NEAR_MODEL, messages: [{ role: 'user', content: tag }] })).choices[0].message.content, echoOf(tag), 'non-stream');
      const { text } = await drainChat(await c.chat.completions.create({ model: NEAR_MODEL, messages: [{ role: 'user', content: tag }], stream: true }));
      assert.equal(text, echoOf(tag), 'stream');
      assert.equal(salsa.received.length, 2, 'both reached the salsa server');
    } finally {
      await proxy.stop();
      await salsa.close();
    }
  });

  test('venice: GET /v1/models is Venice\'s list, passed through', async () => {
    const cfg = CONFIGS.find((c) => c.family === 'venice');
    const list = await openai(fakeProxies.get(cfg.id)).c.models.list();
    assert.ok(list.data.some((m) => m.id === VENICE_MODEL && m.model_spec?.capabilities?.supportsE2EE === true), `Venice's list with capabilities: ${JSON.stringify(list.data).slice(0, 300)}`);
    assert.ok(venice.requests.some((r) => r.method === 'GET' && r.path === '/api/v1/models'), 'fetched from /api/v1/models');
  });

  test('venice: a model without E2EE attestation → 404 in the client dialect, nothing sent', async () => {
    const cfg = CONFIGS.find((c) => c.family === 'venice');
    const before = venice.chatCount;
    const err = await apiError(() => openai(fakeProxies.get(cfg.id)).c.chat.completions.create({ model: 'plain-model', messages: [{ role: 'user', content: tagFor('plain-model') }] }), 404, 'plain model');
    assert.equal(err.code, 'model_not_attestable', `code (${err.message})`);
    assert.equal(venice.chatCount, before, 'nothing sent');
  });
});

describe('bounded retries', () => {
  test('nearai: 421 again after the refresh → one retry only, then a clear 502', async () => {
    const cfg = CONFIGS.find((c) => c.id === 'nearai ecdsa');
    const model = newModel(cfg, 'always421');
    near.setFaults({ always421: true });
    const chatBefore = near.chatCount;
    const err = await apiError(() => openai(fakeProxies.get(cfg.id)).c.chat.completions.create({ model, messages: [{ role: 'user', content: tagFor('421') }] }), 502, '421 twice');
    assert.equal(err.code, 'e2ee_model_key_rejected', `code (${err.message})`);
    assert.match(err.message, /HTTP 421/, 'names the 421');
    assert.equal(near.chatCount - chatBefore, 2, 'the request and one retry');
    assert.equal(reportsFor(near, model), 2, 'two attestations');
  });

  for (const cfg of CONFIGS.filter((c) => c.family !== 'venice')) {
    test(`${cfg.id}: a non-stream answer that never decrypts → one retry with a new session, then 502`, async () => {
      const fake = fakeOf(cfg);
      const model = newModel(cfg, 'never');
      fake.setFaults({ tamperResponse: true });
      const chatBefore = fake.chatCount;
      const reportsBefore = fake.reports.length;
      const tag = tagFor('never');
      const { c, rec } = openai(fakeProxies.get(cfg.id));
      const err = await apiError(() => c.chat.completions.create({ model, messages: [{ role: 'user', content: tag }] }), 502, 'never decrypts');
      assert.equal(err.code, 'response_decryption_failed', `code (${err.message})`);
      assert.equal(fake.chatCount - chatBefore, 2, 'the request and one retry');
      assert.equal(fake.reports.length - reportsBefore, 2, 'a new session for the retry');
      assert.ok(!ENVELOPE_RUN.test(await rec.exchanges.at(-1).raw), 'no ciphertext shown');
    });
  }

  test('--session-ttl: an expired session is replaced on next use (hourly rotation, here 1 s)', async () => {
    const cfg = CONFIGS.find((c) => c.id === 'dstack ecdsa v1');
    const proxy = await startProxy(proxyArgs(cfg, dstack.url, ['--session-ttl', '1']));
    procs.push(proxy);
    try {
      const { c } = openai(proxy);
      const ask = async () => {
        const tag = tagFor('ttl');
        assert.equal((await c.chat.completions.create({ model: DSTACK_MODEL, messages: [{ role: 'user', content: tag }] })).choices[0].message.content, echoOf(tag), 'answer');
        return oneReceived(dstack, tag, 'ttl').headers['x-client-pub-key'];
      };
      const before = dstack.reports.length;
      const k1 = await ask();
      const k2 = await ask();
      assert.equal(k1, k2, 'same session within the TTL');
      assert.equal(dstack.reports.length - before, 1, 'one attestation within the TTL');
      await new Promise((r) => setTimeout(r, 1100));
      const k3 = await ask();
      assert.notEqual(k3, k1, 'a new client key after the TTL');
      assert.equal(dstack.reports.length - before, 2, 'attested again after the TTL');
    } finally {
      await proxy.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Part 2: e2ee-proxy ↔ our own e2ee-gateway

for (const cfg of CONFIGS) {
  describe(`${cfg.id}: through e2ee-gateway (--allow-missing-quote)`, () => {
    const proxy = () => gatewayProxies.get(cfg.id);

    for (const stream of [false, true]) {
      test(`OpenAI chat, ${stream ? 'stream' : 'non-stream'}: the engine receives the exact plaintext; the answer decrypts`, async () => {
        const tag = tagFor(`gw-${stream}`);
        const messages = CONVO(tag);
        const { c } = openai(proxy());
        const req = { model: GATEWAY_MODEL, messages, temperature: 0.5 };
        const text = stream ? (await drainChat(await c.chat.completions.create({ ...req, stream: true }))).text : (await c.chat.completions.create(req)).choices[0].message.content;
        assert.equal(text, echoOf(messages.at(-1).content), 'the decrypted answer');
        const seen = engineWith(tag);
        assert.equal(seen.length, 1, `one engine request carrying the tag (got ${seen.length})`);
        assert.deepEqual(seen[0].json.messages.map((m) => [m.role, textOf(m.content)]), asPairs(messages), 'the engine got the exact plaintext');
        assert.equal(seen[0].json.temperature, 0.5, 'parameters kept');
        assert.equal(seen[0].json.stream === true, stream || cfg.family === 'venice', 'stream mode upstream (Venice always streams)');
      });
    }

    if (cfg.family !== 'venice') {
      test('multimodal parts: the engine gets the exact array', async () => {
        const tag = tagFor('gw-multimodal');
        await openai(proxy()).c.chat.completions.create({ model: GATEWAY_MODEL, messages: [{ role: 'user', content: multimodal(tag) }] });
        const seen = engineWith(tag);
        assert.equal(seen.length, 1, 'one engine request');
        assert.deepEqual(seen[0].json.messages[0].content, multimodal(tag), 'the part array, exactly');
      });
    }

    test('Anthropic Messages stream and OpenAI Responses stream', async () => {
      const tag = tagFor('gw-dialects');
      const { c: a } = anthropic(proxy());
      let text = '';
      for await (const e of await a.messages.create({ model: GATEWAY_MODEL, max_tokens: 32, stream: true, system: `S ${tag}`, messages: [{ role: 'user', content: `M ${tag}` }] })) {
        if (e.type === 'content_block_delta') text += e.delta.text ?? '';
      }
      assert.equal(text, echoOf(`M ${tag}`), 'Messages text');
      const { c: o } = openai(proxy());
      let out = '';
      for await (const e of await o.responses.create({ model: GATEWAY_MODEL, input: `R ${tag}`, stream: true })) if (e.type === 'response.output_text.delta') out += e.delta;
      assert.equal(out, echoOf(`R ${tag}`), 'Responses text');
      const seen = engineWith(tag).map((r) => r.json.messages.map((m) => [m.role, textOf(m.content)]));
      assert.deepEqual(seen, [[['system', `S ${tag}`], ['user', `M ${tag}`]], [['user', `R ${tag}`]]], 'the engine got both exactly');
    });
  });
}

// The ed25519 cases caught a gateway defect: it took X-Encrypt-All-Fields as a NEAR header even next
// to dstack's X-E2EE-Version, so an ed25519 dstack client got NEAR's NaCl box (v1 did not decrypt,
// v2 was refused: "v2 AAD needs an AEAD scheme"); ecdsa is one envelope in both families.
for (const cfg of CONFIGS.filter((c) => c.family === 'dstack')) test(`e2ee-gateway: ${cfg.id} with --dstack-encrypt-all-fields carries tools encrypted; the engine gets them exactly`, async () => {
  const proxy = await startProxy(proxyArgs(cfg, gateway.url, ['--allow-missing-quote', '--dstack-encrypt-all-fields']));
  procs.push(proxy);
  try {
    const tag = tagFor('gw-tools');
    const tool = { type: 'function', function: { name: 'secret_tool', description: `Does things ${tag}`, parameters: { type: 'object', properties: { q: { type: 'string' } } } } };
    answerTag(tag, (rec) => ({ json: completionWith({ model: rec.json.model, message: { content: null, tool_calls: [toolCall('call_7', 'secret_tool', { q: 'x' })] }, finishReason: 'tool_calls' }) }));
    const r = await openai(proxy).c.chat.completions.create({ model: GATEWAY_MODEL, messages: [{ role: 'user', content: tag }], tools: [tool] });
    assert.deepEqual(r.choices[0].message.tool_calls.map((t) => [t.function.name, t.function.arguments]), [['secret_tool', '{"q":"x"}']], 'the tool call, decrypted');
    const seen = engineWith(tag);
    assert.equal(seen.length, 1, 'one engine request');
    assert.deepEqual(seen[0].json.tools, [tool], 'the engine got the tool definition exactly');
    // With all fields encrypted, logprobs are allowed and come back decrypted.
    const lpTag = tagFor('gw-logprobs');
    answerTag(lpTag, logprobsScript);
    const lp = await openai(proxy).c.chat.completions.create({ model: GATEWAY_MODEL, messages: [{ role: 'user', content: lpTag }], logprobs: true, top_logprobs: 2 });
    assert.deepEqual(lp.choices[0].logprobs, LOGPROBS, 'logprobs through the gateway, decrypted');
  } finally {
    await proxy.stop();
  }
});

describe('e2ee-gateway without --allow-missing-quote', () => {
  test('every provider refuses the quoteless report; the engine gets nothing', async () => {
    const strict = await Promise.all(['venice', 'nearai ecdsa', 'dstack ed25519 v2'].map((id) => CONFIGS.find((c) => c.id === id)).map(async (cfg) => ({ cfg, proxy: await startProxy(proxyArgs(cfg, gateway.url)) })));
    procs.push(...strict.map((s) => s.proxy));
    for (const { cfg, proxy } of strict) {
      const tag = tagFor('strict');
      const err = await apiError(() => openai(proxy).c.chat.completions.create({ model: GATEWAY_MODEL, messages: [{ role: 'user', content: tag }] }), 502, cfg.id);
      assert.equal(err.code, 'attestation_failed', `${cfg.id}: ${err.message}`);
      // Venice: the gateway honestly reports verified: false, which is refused first.
      assert.match(err.message, /no (TDX quote|intel_quote)|does not report the attestation as verified/, `${cfg.id}: the reason`);
      assert.equal(engineWith(tag).length, 0, `${cfg.id}: nothing reached the engine`);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Part 3: logs

describe('logs', () => {
  test('no prompt or answer text in any log at --log-level trace', () => {
    const hits = linesContaining(procs, MARKER);
    assert.deepEqual(hits, [], 'the marker appears in a log line');
    const hexRuns = procs.flatMap((p) => p.lines.filter((l) => ENVELOPE_RUN.test(l.line)).map((l) => `${p.name}: ${l.line}`));
    assert.deepEqual(hexRuns, [], 'an envelope-sized hex run (ciphertext or key material) appears in a log line');
    for (const p of fakeProxies.values()) {
      assert.ok(p.lines.some((l) => /E2EE session ready/.test(l.line)), `${p.name}: the log is not empty (sessions logged): ${p.output.slice(0, 300)}`);
    }
    assert.ok(procs.reduce((n, p) => n + p.lines.length, 0) > 200, 'trace logging produced lines to check');
  });
});
