// No plaintext in logs: e2ee-proxy and e2ee-gateway at --log-level trace (text and json formats)
// carry requests whose prompts hold PROMPT_MARKER and whose completions (scripted in the engine)
// hold COMPLETION_MARKER, in every dialect — /v1/chat/completions (stream and not),
// /v1/completions, /v1/messages (stream and not), /v1/responses (stream and not),
// /v1/messages/count_tokens — with tool calls, plus the error paths: invalid JSON, an oversized
// body, an engine error whose message holds the marker, an engine cut mid-stream, an unknown
// model. Neither marker nor the API key may appear in any stdout/stderr line of either process;
// the proxy's own error messages must not echo the marker either (only the engine's own error,
// relayed to its client, legitimately does).

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { request, rawExchange } from './lib/http.mjs';
import { startEngine, chatFrames, completionFrames, chatCompletion, textCompletion, CREATED } from './lib/engine.mjs';
import { linesContaining } from './lib/processes.mjs';
import { startStack, assertOpenAIError, assertAnthropicError, assertWellFormedStream, ssePayloads, MODEL, ENGINE_MODELS } from './lib/e2e_stack.mjs';

const PROMPT_MARKER = `PROMPTMARK${randomUUID().replace(/-/g, '')}`;
const COMPLETION_MARKER = `COMPLMARK${randomUUID().replace(/-/g, '')}`;
const HEADER_MARKER = `HDRMARK${randomUUID().replace(/-/g, '')}`;
const API_KEY = `cpk_loghygiene_${randomUUID().replace(/-/g, '')}`;

// The engine answers every model request with COMPLETION_MARKER in the content (and in a tool
// call's arguments when the request offers tools); /tokenize counts as usual. Returns
// next(script): the next model request takes `script` instead.
function scriptEngine(engine) {
  const overrides = [];
  engine.when(
    (rec) => overrides.length > 0 && rec.path !== '/tokenize',
    () => overrides.shift(),
  );
  engine.when(
    (rec) => rec.path === '/v1/chat/completions' || rec.path === '/v1/completions',
    (rec) => {
      const json = rec.json ?? {};
      const model = json.model ?? MODEL;
      const pieces = ['Sure: ', `${COMPLETION_MARKER} `, 'done.'];
      if (rec.path === '/v1/completions') {
        return json.stream ? { frames: completionFrames({ model, pieces, includeUsage: true }) } : { json: textCompletion({ model, text: pieces.join('') }) };
      }
      if (Array.isArray(json.tools) && json.tools.length) {
        const call = { id: 'call_1', type: 'function', function: { name: json.tools[0].function.name, arguments: JSON.stringify({ secret: COMPLETION_MARKER }) } };
        if (!json.stream) {
          const c = chatCompletion({ model, content: null, finishReason: 'tool_calls' });
          c.choices[0].message.tool_calls = [call];
          return { json: c };
        }
        const chunk = (delta, finish = null) => `data: ${JSON.stringify({ id: 'chatcmpl-t', object: 'chat.completion.chunk', created: CREATED, model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
        return {
          frames: [
            chunk({ role: 'assistant', content: null }),
            chunk({ tool_calls: [{ index: 0, id: call.id, type: 'function', function: { name: call.function.name, arguments: '' } }] }),
            chunk({ tool_calls: [{ index: 0, function: { arguments: call.function.arguments } }] }),
            chunk({}, 'tool_calls'),
            `data: ${JSON.stringify({ id: 'chatcmpl-t', object: 'chat.completion.chunk', created: CREATED, model, choices: [], usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } })}\n\n`,
            'data: [DONE]\n\n',
          ],
        };
      }
      return json.stream ? { frames: chatFrames({ model, pieces, includeUsage: true, continuousUsage: true }) } : { json: chatCompletion({ model, content: pieces.join('') }) };
    },
  );
  return (script) => overrides.push(script);
}

const prompt = (what) => `${what}: please remember ${PROMPT_MARKER} and reply`;
const tool = { type: 'function', function: { name: 'store_secret', description: `stores ${PROMPT_MARKER}`, parameters: { type: 'object', properties: { secret: { type: 'string' } } } } };
const anthropicTool = { name: 'store_secret', description: `stores ${PROMPT_MARKER}`, input_schema: { type: 'object', properties: { secret: { type: 'string' } } } };

// [name, path, body, stream]
const DIALECT_CASES = [
  ['chat non-stream', '/v1/chat/completions', { model: MODEL, messages: [{ role: 'system', content: `sys ${PROMPT_MARKER}` }, { role: 'user', content: prompt('chat') }] }, false],
  ['chat stream', '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: prompt('chat stream') }], stream: true }, true],
  ['chat tools non-stream', '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: prompt('tools') }], tools: [tool] }, false],
  ['chat tools stream', '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: prompt('tools stream') }], tools: [tool], stream: true }, true],
  ['completions non-stream', '/v1/completions', { model: MODEL, prompt: prompt('completion') }, false],
  ['completions stream', '/v1/completions', { model: MODEL, prompt: prompt('completion stream'), stream: true }, true],
  ['messages non-stream', '/v1/messages', { model: MODEL, max_tokens: 64, system: `sys ${PROMPT_MARKER}`, messages: [{ role: 'user', content: prompt('messages') }] }, false],
  ['messages stream', '/v1/messages', { model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: [{ type: 'text', text: prompt('messages stream') }] }], stream: true }, true],
  ['messages tools stream', '/v1/messages', { model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: prompt('messages tools') }], tools: [anthropicTool], stream: true }, true],
  ['count_tokens', '/v1/messages/count_tokens', { model: MODEL, messages: [{ role: 'user', content: prompt('count') }] }, false],
  ['responses non-stream', '/v1/responses', { model: MODEL, instructions: `be brief ${PROMPT_MARKER}`, input: prompt('responses') }, false],
  ['responses stream', '/v1/responses', { model: MODEL, input: [{ role: 'user', content: [{ type: 'input_text', text: prompt('responses stream') }] }], stream: true }, true],
  ['responses tools stream', '/v1/responses', { model: MODEL, input: prompt('responses tools'), tools: [{ type: 'function', name: 'store_secret', description: `stores ${PROMPT_MARKER}`, parameters: anthropicTool.input_schema }], stream: true }, true],
];

const identifying = { 'session-id': HEADER_MARKER, 'x-client-request-id': HEADER_MARKER, 'user-agent': `agent ${HEADER_MARKER}`, 'x-claude-code-session-id': HEADER_MARKER };

for (const format of ['text', 'json']) {
  describe(`--log-level trace --log-format ${format}`, () => {
    let engine;
    let stack;
    let next;
    const procs = () => [stack.proxy, stack.gateway];

    before(async () => {
      engine = await startEngine({ models: ENGINE_MODELS });
      next = scriptEngine(engine);
      const logArgs = ['--log-level', 'trace', '--log-format', format];
      stack = await startStack({ engine, proxyArgs: logArgs, gatewayArgs: logArgs });
    });
    after(async () => {
      await engine?.close();
    });

    const post = (path, body, { headers = {}, stream } = {}) =>
      request(`${stack.proxy.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}`, 'anthropic-version': '2023-06-01', ...identifying, ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
        stream,
      });

    test('every dialect round-trips (the markers really pass through both processes)', async () => {
      for (const [name, path, body, stream] of DIALECT_CASES) {
        const r = await post(path, body);
        assert.equal(r.status, 200, `${name}: ${r.text.slice(0, 500)}`);
        if (stream) {
          assert.match(String(r.headers['content-type']), /^text\/event-stream/, name);
          if (path !== '/v1/messages' && path !== '/v1/responses') assertWellFormedStream(r.text);
          else assert.ok(ssePayloads(r.text).length > 2, `${name}: ${r.text.slice(0, 300)}`);
        }
        if (path !== '/v1/messages/count_tokens') assert.ok(r.text.includes(COMPLETION_MARKER) || r.text.includes(JSON.stringify(COMPLETION_MARKER).slice(1, -1)), `${name}: the completion marker did not come back: ${r.text.slice(0, 500)}`);
        else assert.ok(Number.isInteger(r.json().input_tokens) && r.json().input_tokens > 0, r.text);
      }
      // The engine saw the prompt marker on every path it serves.
      const paths = new Set(engine.requests.filter((q) => q.body.includes(PROMPT_MARKER)).map((q) => q.path));
      assert.deepEqual([...paths].sort(), ['/tokenize', '/v1/chat/completions', '/v1/completions']);
    });

    test('error paths: invalid JSON, 413, unknown model, engine error, engine cut mid-stream — the proxy does not echo the marker', async () => {
      // Invalid JSON on each dialect.
      for (const path of ['/v1/chat/completions', '/v1/messages', '/v1/responses', '/v1/messages/count_tokens']) {
        const r = await post(path, `{"model":"${MODEL}","messages":[{"role":"user","content":"${PROMPT_MARKER}"}`);
        assert.equal(r.status, 400, `${path}: ${r.text}`);
        if (path.startsWith('/v1/messages')) assertAnthropicError(r, 400);
        else assertOpenAIError(r, 400);
        assert.ok(!r.text.includes(PROMPT_MARKER), `${path}: the proxy echoed the request: ${r.text}`);
      }
      // A body over the limit, the marker at its start and at its end.
      for (const path of ['/v1/chat/completions', '/v1/messages']) {
        const body = Buffer.concat([Buffer.from(`{"model":"${MODEL}","messages":[{"role":"user","content":"${PROMPT_MARKER}`), Buffer.alloc(11 << 20, 0x61), Buffer.from(`${PROMPT_MARKER}"}]}`)]);
        const r = await rawExchange(stack.proxy.url, { path, headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' }, body, expectContinue: true });
        assert.equal(r.status, 413, `${path}: ${r.status}`);
        assert.ok(!r.body.toString().includes(PROMPT_MARKER), r.body.toString());
      }
      // A model name is the client's own words, but the prompt is not echoed with it.
      const unknown = await post('/v1/chat/completions', { model: 'nobody/none', messages: [{ role: 'user', content: PROMPT_MARKER }] });
      assertOpenAIError(unknown, 404);
      assert.ok(!unknown.text.includes(PROMPT_MARKER), unknown.text);
      // The engine rejects the request with a message that quotes the prompt: the client may see it
      // (it is its own engine error), the logs may not.
      const engineMessage = `prompt '${PROMPT_MARKER}' is too long for this model ${COMPLETION_MARKER}`;
      for (const stream of [false, true]) {
        next({ status: 400, json: { object: 'error', message: engineMessage, type: 'BadRequestError', param: null, code: 400 } });
        const r = await post('/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: prompt('engine error') }], stream });
        const err = assertOpenAIError(r, 400);
        assert.ok(err.message.includes(engineMessage) || err.message.includes(PROMPT_MARKER), `stream=${stream}: the engine's own message is not relayed: ${err.message}`);
      }
      next({ status: 400, json: { object: 'error', message: engineMessage, type: 'BadRequestError', param: null, code: 400 } });
      const m = await post('/v1/messages', { model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: prompt('engine error') }] });
      assertAnthropicError(m, 400);
      // Cut mid-stream after the completion marker went by.
      next({ frames: chatFrames({ model: MODEL, pieces: [`${COMPLETION_MARKER} `, 'more ', 'more'], includeUsage: true }), closeAfterFrames: 3, partialBytes: 30 });
      const cut = await post('/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: prompt('cut') }], stream: true });
      const events = assertWellFormedStream(cut.text);
      const errorEvents = events.filter((e) => e.error);
      assert.equal(errorEvents.length, 1, cut.text);
      assert.ok(!JSON.stringify(errorEvents[0]).includes(PROMPT_MARKER), JSON.stringify(errorEvents[0]));
    });

    test('neither marker nor the API key nor identifying header values appear in any log line of either process', async () => {
      for (const p of procs()) assert.ok(p.lines.length >= 10, `${p.name} printed only ${p.lines.length} lines at trace level`);
      if (format === 'json') {
        for (const p of procs()) {
          for (const l of p.lines.slice(1)) {
            if (/^\s*trust it:/.test(l.line)) continue;
            assert.doesNotThrow(() => JSON.parse(l.line), `${p.name}: not a JSON log line: ${l.line}`);
          }
        }
      }
      assert.deepEqual(linesContaining(procs(), PROMPT_MARKER), [], 'prompt marker logged');
      assert.deepEqual(linesContaining(procs(), COMPLETION_MARKER), [], 'completion marker logged');
      assert.deepEqual(linesContaining(procs(), API_KEY), [], 'API key logged');
      assert.deepEqual(linesContaining(procs(), API_KEY.slice(-16)), [], 'part of the API key logged');
      assert.deepEqual(linesContaining(procs(), HEADER_MARKER), [], 'identifying header value logged');
    });

    test('SIGTERM → both exit 0; the shutdown lines carry nothing either', async () => {
      await stack.proxy.stop();
      await stack.gateway.stop();
      for (const marker of [PROMPT_MARKER, COMPLETION_MARKER, API_KEY, HEADER_MARKER]) assert.deepEqual(linesContaining(procs(), marker), []);
    });
  });
}
