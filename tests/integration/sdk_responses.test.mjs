// The official `openai` SDK as the client of /v1/responses (what Codex speaks), through the whole
// path: SDK → e2ee-proxy → e2ee-gateway (confidential) → the scripted engine. The engine decides
// every answer (lib/chat_chunks.mjs builds vLLM-shaped chunks); the tests assert what the SDK hands
// its caller, that every raw stream obeys the Responses event grammar and ends with a terminal
// event (lib/dialect_streams.mjs), and what chat-completions request reached the engine.

import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { loadOpenAI } from './lib/deps.mjs';
import { startStack, recordingFetch } from './lib/translation_stack.mjs';
import { deltaFrames, toolCallDeltas, toolStart, toolArgs, completionWith, toolCall } from './lib/chat_chunks.mjs';
import { checkResponsesStream } from './lib/dialect_streams.mjs';
import { request } from './lib/http.mjs';

const OpenAI = await loadOpenAI();
const MODEL = 'acme/coder-e2ee';
const PNG_B64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
const PATCH = '*** Begin Patch\n*** Add File: hello.txt\n+Hello, "world" \\ ✓\n*** End Patch\n';

let stack;
let engine;

before(async () => {
  stack = await startStack({ model: MODEL });
  engine = stack.engine;
});
afterEach(() => stack?.assertRunning());
after(async () => {
  await stack?.close();
});

const uniq = (what) => `${what}-${randomUUID().slice(0, 8)}`;
const bodyHas = (rec, tag) => rec.body.toString('utf8').includes(tag);
const answer = (tag, script) => engine.when((r) => bodyHas(r, tag), script, { times: 1 });
function engineRequest(tag) {
  const found = engine.requests.filter((r) => bodyHas(r, tag));
  assert.equal(found.length, 1, `expected one engine request carrying ${tag}, got ${found.length}`);
  assert.equal(found[0].path, '/v1/chat/completions');
  return found[0].json;
}
const textOf = (content) => (typeof content === 'string' ? content : (content ?? []).map((p) => p.text ?? '').join(''));

function client() {
  const rec = recordingFetch();
  const c = new OpenAI({ baseURL: `${stack.proxy.url}/v1`, apiKey: 'sk-e2ee-test', maxRetries: 0, timeout: 60000, fetch: rec.fetch });
  return { c, rec };
}

// The raw stream of the last exchange, checked against the Responses event grammar.
async function rawStream(rec) {
  const ex = rec.exchanges.at(-1);
  assert.equal(ex.status, 200);
  assert.match(ex.headers['content-type'], /^text\/event-stream/);
  return checkResponsesStream(await ex.raw);
}

const EXEC = {
  type: 'function',
  name: 'exec_command',
  description: 'Runs a command',
  parameters: { type: 'object', properties: { cmd: { type: 'string' } }, required: ['cmd'], additionalProperties: false },
  strict: false,
};
const APPLY_PATCH = { type: 'custom', name: 'apply_patch', description: 'Apply a patch', format: { type: 'grammar', syntax: 'lark', definition: 'start: begin_patch hunk+ end_patch' } };

describe('responses.create', () => {
  test('text: instructions + string input; output message, output_text, usage with cached tokens', async () => {
    const { c } = client();
    const tag = uniq('create');
    answer(tag, { json: completionWith({ model: MODEL, message: { content: `Hi ✓ ${tag}` }, usage: { prompt_tokens: 30, completion_tokens: 5, total_tokens: 35, prompt_tokens_details: { cached_tokens: 16 } } }) });
    const r = await c.responses.create({ model: MODEL, instructions: 'Be brief.', input: `hello ${tag}`, temperature: 0.5 });
    assert.match(r.id, /^resp_/);
    assert.equal(r.object, 'response');
    assert.equal(r.status, 'completed');
    assert.equal(r.model, MODEL);
    assert.equal(r.output.length, 1);
    assert.equal(r.output[0].type, 'message');
    assert.equal(r.output[0].role, 'assistant');
    assert.equal(r.output[0].status, 'completed');
    assert.deepEqual(r.output[0].content.map((p) => [p.type, p.text]), [['output_text', `Hi ✓ ${tag}`]]);
    assert.equal(r.output_text, `Hi ✓ ${tag}`);
    assert.equal(r.usage.input_tokens, 30);
    assert.equal(r.usage.input_tokens_details.cached_tokens, 16);
    assert.equal(r.usage.output_tokens, 5);
    assert.equal(r.usage.total_tokens, 35);

    const sent = engineRequest(tag);
    assert.equal(sent.model, MODEL);
    assert.equal(sent.temperature, 0.5);
    assert.deepEqual(sent.messages.map((m) => [m.role, textOf(m.content)]), [
      ['system', 'Be brief.'],
      ['user', `hello ${tag}`],
    ]);
  });

  test('typed input: developer message, input_text + input_image parts, {role, content} shorthand, earlier assistant turn', async () => {
    const { c } = client();
    const tag = uniq('typed');
    await c.responses.create({
      model: MODEL,
      input: [
        { type: 'message', role: 'developer', content: [{ type: 'input_text', text: 'Developer rules.' }] },
        { role: 'user', content: [{ type: 'input_text', text: 'Look at this' }, { type: 'input_image', image_url: `data:image/png;base64,${PNG_B64}`, detail: 'auto' }] },
        { role: 'assistant', content: 'A pixel.' },
        { role: 'user', content: `And now? ${tag}` },
      ],
    });
    const sent = engineRequest(tag);
    assert.deepEqual(sent.messages.map((m) => m.role), ['system', 'user', 'assistant', 'user']);
    assert.equal(textOf(sent.messages[0].content), 'Developer rules.');
    const parts = sent.messages[1].content;
    assert.equal(textOf(parts), 'Look at this');
    assert.deepEqual(parts.find((p) => p.type === 'image_url')?.image_url?.url, `data:image/png;base64,${PNG_B64}`);
    assert.equal(textOf(sent.messages[2].content), 'A pixel.');
    assert.equal(textOf(sent.messages[3].content), `And now? ${tag}`);
  });

  test('function call → a function_call output item; its function_call_output round trip reaches the engine as an adjacent tool message', async () => {
    const { c } = client();
    const tag = uniq('fc');
    const args = '{"cmd":"ls -la"}';
    answer(tag, { json: completionWith({ model: MODEL, finishReason: 'tool_calls', message: { content: null, tool_calls: [toolCall('call_fc1', 'exec_command', args)] } }) });
    const question = { role: 'user', content: `list files ${tag}` };
    const r = await c.responses.create({ model: MODEL, input: [question], tools: [EXEC] });
    assert.equal(r.status, 'completed');
    assert.equal(r.output.length, 1);
    const call = r.output[0];
    assert.equal(call.type, 'function_call');
    assert.equal(call.call_id, 'call_fc1');
    assert.equal(call.name, 'exec_command');
    assert.equal(call.arguments, args);
    assert.deepEqual(engineRequest(tag).tools, [{ type: 'function', function: { name: 'exec_command', description: 'Runs a command', parameters: EXEC.parameters, strict: false } }]);

    // Codex sends the whole history back: the call item as it received it, then the output.
    const tag2 = uniq('fco');
    answer(tag2, { json: completionWith({ model: MODEL, message: { content: `two files ${tag2}` } }) });
    const r2 = await c.responses.create({ model: MODEL, input: [question, call, { type: 'function_call_output', call_id: 'call_fc1', output: `a.txt\nb.txt ${tag2}` }], tools: [EXEC] });
    assert.equal(r2.output_text, `two files ${tag2}`);
    const sent = engineRequest(tag2);
    assert.deepEqual(sent.messages.map((m) => m.role), ['user', 'assistant', 'tool']);
    assert.deepEqual(sent.messages[1].tool_calls, [{ id: 'call_fc1', type: 'function', function: { name: 'exec_command', arguments: args } }]);
    assert.equal(sent.messages[2].tool_call_id, 'call_fc1');
    assert.equal(textOf(sent.messages[2].content), `a.txt\nb.txt ${tag2}`);
  });

  test('custom tool (apply_patch): offered to the engine as a function with one string input; answered as custom_tool_call with the raw input; round trip', async () => {
    const { c } = client();
    const tag = uniq('custom');
    answer(tag, { json: completionWith({ model: MODEL, finishReason: 'tool_calls', message: { tool_calls: [toolCall('call_cp1', 'apply_patch', { input: PATCH })] } }) });
    const question = { role: 'user', content: `add hello.txt ${tag}` };
    const r = await c.responses.create({ model: MODEL, input: [question], tools: [EXEC, APPLY_PATCH] });
    assert.equal(r.output.length, 1);
    const call = r.output[0];
    assert.equal(call.type, 'custom_tool_call');
    assert.equal(call.call_id, 'call_cp1');
    assert.equal(call.name, 'apply_patch');
    assert.equal(call.input, PATCH);
    const offered = engineRequest(tag).tools.find((t) => t.function?.name === 'apply_patch');
    assert.ok(offered, 'apply_patch was not offered to the engine');
    assert.equal(offered.type, 'function');
    assert.deepEqual(Object.keys(offered.function.parameters.properties), ['input']);
    assert.equal(offered.function.parameters.properties.input.type, 'string');
    assert.ok(JSON.stringify(offered).includes('begin_patch hunk+ end_patch'), 'the grammar did not reach the model');

    const tag2 = uniq('customout');
    await c.responses.create({ model: MODEL, input: [question, call, { type: 'custom_tool_call_output', call_id: 'call_cp1', output: `Success. Updated: A hello.txt ${tag2}` }], tools: [EXEC, APPLY_PATCH] });
    const sent = engineRequest(tag2);
    assert.deepEqual(sent.messages.map((m) => m.role), ['user', 'assistant', 'tool']);
    const tc = sent.messages[1].tool_calls;
    assert.equal(tc.length, 1);
    assert.equal(tc[0].id, 'call_cp1');
    assert.equal(tc[0].function.name, 'apply_patch');
    assert.deepEqual(JSON.parse(tc[0].function.arguments), { input: PATCH });
    assert.equal(sent.messages[2].tool_call_id, 'call_cp1');
    assert.equal(textOf(sent.messages[2].content), `Success. Updated: A hello.txt ${tag2}`);
  });

  test('reasoning: reasoning_content and <think> tags → a reasoning item before the message; reasoning.effort reaches the engine', async () => {
    const { c } = client();
    const tag = uniq('reason');
    answer(tag, { json: completionWith({ model: MODEL, message: { reasoning_content: 'Add them.', content: '4' } }) });
    const r = await c.responses.create({ model: MODEL, input: `2+2 ${tag}`, reasoning: { effort: 'low' } });
    assert.deepEqual(r.output.map((i) => i.type), ['reasoning', 'message']);
    assert.equal(textOf(r.output[0].content ?? []) || textOf(r.output[0].summary ?? []), 'Add them.');
    assert.equal(r.output_text, '4');
    assert.equal(engineRequest(tag).reasoning_effort, 'low');

    const tag2 = uniq('thinktags');
    answer(tag2, { json: completionWith({ model: MODEL, message: { content: '<think>Add them.</think>\n\n4' } }) });
    const r2 = await c.responses.create({ model: MODEL, input: `2+2 ${tag2}` });
    assert.deepEqual(r2.output.map((i) => i.type), ['reasoning', 'message']);
    assert.equal((textOf(r2.output[0].content ?? []) || textOf(r2.output[0].summary ?? [])).trim(), 'Add them.');
    assert.equal(r2.output_text.trim(), '4');
  });

  test('max_output_tokens reaches the engine; finish_reason length → status incomplete (max_output_tokens)', async () => {
    const { c } = client();
    const tag = uniq('maxout');
    answer(tag, { json: completionWith({ model: MODEL, message: { content: 'cut sho' }, finishReason: 'length' }) });
    const r = await c.responses.create({ model: MODEL, input: tag, max_output_tokens: 3 });
    assert.equal(r.status, 'incomplete');
    assert.equal(r.incomplete_details?.reason, 'max_output_tokens');
    assert.equal(r.output_text, 'cut sho');
    const sent = engineRequest(tag);
    assert.equal(sent.max_tokens ?? sent.max_completion_tokens, 3);
  });

  test('namespace tools are flattened for the engine and mapped back; hosted tools are dropped', async () => {
    const { c } = client();
    const tag = uniq('namespace');
    const tools = [
      { type: 'namespace', name: 'multi_agent_v1', description: 'Sub-agents', tools: [{ type: 'function', name: 'spawn_agent', description: 'Spawn one', parameters: { type: 'object', properties: { task: { type: 'string' } } } }] },
      { type: 'web_search' },
    ];
    answer(tag, (rec) => {
      const name = rec.json.tools.find((t) => JSON.stringify(t).includes('spawn_agent'))?.function?.name;
      return { json: completionWith({ model: MODEL, finishReason: 'tool_calls', message: { tool_calls: [toolCall('call_ns1', name ?? 'missing', { task: 'x' })] } }) };
    });
    const r = await c.responses.create({ model: MODEL, input: `spawn ${tag}`, tools });
    const sentTools = engineRequest(tag).tools;
    assert.equal(sentTools.length, 1, `hosted tools must not reach the engine: ${JSON.stringify(sentTools)}`);
    assert.equal(sentTools[0].type, 'function');
    assert.equal(r.output[0].type, 'function_call');
    assert.equal(r.output[0].name, 'spawn_agent');
    assert.equal(r.output[0].namespace, 'multi_agent_v1');
    assert.equal(r.output[0].arguments, '{"task":"x"}');
  });
});

describe('responses.stream', () => {
  test('text: deltas add up to the engine pieces; finalResponse; terminal response.completed with usage', async () => {
    const { c, rec } = client();
    const tag = uniq('stream');
    const pieces = ['Hel', 'lo', ', wörld ', '✓', '\n', `"${tag}"`];
    answer(tag, { frames: deltaFrames({ model: MODEL, deltas: pieces.map((content) => ({ content })), usage: { prompt_tokens: 12, completion_tokens: 6, total_tokens: 18 } }), paceMs: 2 });
    const stream = c.responses.stream({ model: MODEL, input: `stream ${tag}` });
    const deltas = [];
    stream.on('response.output_text.delta', (e) => deltas.push(e.delta));
    const final = await stream.finalResponse();
    assert.equal(deltas.join(''), pieces.join(''));
    assert.equal(final.status, 'completed');
    assert.equal(final.output_text, pieces.join(''));
    assert.equal(final.usage.output_tokens, 6);
    assert.equal(final.usage.input_tokens, 12);
    const raw = await rawStream(rec);
    assert.equal(raw.terminal.type, 'response.completed');
    assert.equal(raw.response.id, final.id);
    assert.equal(engineRequest(tag).stream, true);
  });

  test('function call streamed: function_call item with streamed arguments, then response.completed', async () => {
    const { c, rec } = client();
    const tag = uniq('streamfc');
    const args = JSON.stringify({ cmd: 'cat "notes.txt"' });
    answer(tag, { frames: deltaFrames({ model: MODEL, finishReason: 'tool_calls', deltas: toolCallDeltas(0, 'call_s1', 'exec_command', args, 4), usage: { prompt_tokens: 20, completion_tokens: 8, total_tokens: 28 } }) });
    const stream = c.responses.stream({ model: MODEL, input: `read notes ${tag}`, tools: [EXEC] });
    const argDeltas = [];
    stream.on('response.function_call_arguments.delta', (e) => argDeltas.push(e.delta));
    const final = await stream.finalResponse();
    assert.equal(argDeltas.join(''), args);
    assert.equal(final.output.length, 1);
    assert.deepEqual([final.output[0].type, final.output[0].call_id, final.output[0].name, final.output[0].arguments], ['function_call', 'call_s1', 'exec_command', args]);
    const raw = await rawStream(rec);
    assert.equal(raw.terminal.type, 'response.completed');
  });

  test('parallel function calls whose fragments interleave → two function_call items with the right arguments', async () => {
    const { c, rec } = client();
    const tag = uniq('parallel');
    answer(tag, {
      frames: deltaFrames({
        model: MODEL,
        finishReason: 'tool_calls',
        deltas: [
          { tool_calls: [toolStart(0, 'call_p0', 'exec_command')] },
          { tool_calls: [toolStart(1, 'call_p1', 'exec_command')] },
          { tool_calls: [toolArgs(0, '{"cmd":"ec')] },
          { tool_calls: [toolArgs(1, '{"cmd":"pw')] },
          { tool_calls: [toolArgs(1, 'd"}')] },
          { tool_calls: [toolArgs(0, 'ho hi"}')] },
        ],
      }),
    });
    const final = await c.responses.stream({ model: MODEL, input: tag, tools: [EXEC] }).finalResponse();
    assert.deepEqual(final.output.map((i) => [i.type, i.call_id, i.arguments]), [
      ['function_call', 'call_p0', '{"cmd":"echo hi"}'],
      ['function_call', 'call_p1', '{"cmd":"pwd"}'],
    ]);
    await rawStream(rec);
  });

  test('custom tool streamed → custom_tool_call with the unwrapped input', async () => {
    const { c, rec } = client();
    const tag = uniq('streamcustom');
    answer(tag, { frames: deltaFrames({ model: MODEL, finishReason: 'tool_calls', deltas: toolCallDeltas(0, 'call_sc1', 'apply_patch', JSON.stringify({ input: PATCH }), 5) }) });
    const final = await c.responses.stream({ model: MODEL, input: tag, tools: [EXEC, APPLY_PATCH] }).finalResponse();
    assert.equal(final.output.length, 1);
    assert.deepEqual([final.output[0].type, final.output[0].call_id, final.output[0].name, final.output[0].input], ['custom_tool_call', 'call_sc1', 'apply_patch', PATCH]);
    const raw = await rawStream(rec);
    assert.equal(raw.terminal.type, 'response.completed');
  });

  test('reasoning streamed (reasoning_content, then <think> split across chunks) → a reasoning item, then the message', async () => {
    const { c, rec } = client();
    const tag = uniq('streamreason');
    answer(tag, { frames: deltaFrames({ model: MODEL, deltas: [{ reasoning_content: 'Think ' }, { reasoning_content: 'hard.' }, { content: 'Done.' }] }) });
    const final = await c.responses.stream({ model: MODEL, input: tag }).finalResponse();
    assert.deepEqual(final.output.map((i) => i.type), ['reasoning', 'message']);
    assert.equal(textOf(final.output[0].content ?? []) || textOf(final.output[0].summary ?? []), 'Think hard.');
    assert.equal(final.output_text, 'Done.');
    await rawStream(rec);

    const tag2 = uniq('streamthink');
    answer(tag2, { frames: deltaFrames({ model: MODEL, deltas: ['<th', 'ink>Think ', 'hard.</thi', 'nk>\n\nDo', 'ne.'].map((content) => ({ content })) }) });
    const final2 = await c.responses.stream({ model: MODEL, input: tag2 }).finalResponse();
    assert.deepEqual(final2.output.map((i) => i.type), ['reasoning', 'message']);
    assert.equal((textOf(final2.output[0].content ?? []) || textOf(final2.output[0].summary ?? [])).trim(), 'Think hard.');
    assert.equal(final2.output_text.trim(), 'Done.');
    await rawStream(rec);
  });

  test('finish_reason length in a stream → response.incomplete with reason max_output_tokens', async () => {
    const { c, rec } = client();
    const tag = uniq('streamlen');
    answer(tag, { frames: deltaFrames({ model: MODEL, deltas: [{ content: 'cut ' }, { content: 'sho' }], finishReason: 'length' }) });
    const final = await c.responses.stream({ model: MODEL, input: tag, max_output_tokens: 2 }).finalResponse();
    assert.equal(final.status, 'incomplete');
    assert.equal(final.incomplete_details?.reason, 'max_output_tokens');
    const raw = await rawStream(rec);
    assert.equal(raw.terminal.type, 'response.incomplete');
    assert.equal(engineRequest(tag).max_tokens ?? engineRequest(tag).max_completion_tokens, 2);
  });

  test('responses.create({stream:true}) yields the same grammar, ending with response.completed', async () => {
    const { c, rec } = client();
    const tag = uniq('createstream');
    answer(tag, { frames: deltaFrames({ model: MODEL, deltas: [{ content: 'a' }, { content: 'b' }] }) });
    const types = [];
    for await (const event of await c.responses.create({ model: MODEL, input: tag, stream: true })) types.push(event.type);
    assert.equal(types.at(-1), 'response.completed');
    const raw = await rawStream(rec);
    assert.deepEqual(raw.events.map((e) => e.type), types);
  });
});

describe('failures', () => {
  test('engine 400 before the stream → BadRequestError in the OpenAI shape', async () => {
    const { c } = client();
    for (const stream of [false, true]) {
      const tag = uniq('e400');
      answer(tag, { status: 400, json: { object: 'error', message: `bad parameter ${tag}`, type: 'BadRequestError', param: null, code: 400 } });
      const err = await c.responses.create({ model: MODEL, input: tag, stream }).catch((e) => e);
      assert.ok(err instanceof OpenAI.BadRequestError, String(err));
      assert.equal(err.status, 400);
      assert.equal(err.error.type, 'invalid_request_error');
      assert.ok(err.error.message.includes(`bad parameter ${tag}`), err.error.message);
    }
  });

  test('engine context-length 400 → error code context_length_exceeded (what Codex keys compaction on)', async () => {
    const { c } = client();
    const tag = uniq('ctx');
    const vllm = "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens (8000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.";
    answer(tag, { status: 400, json: { object: 'error', message: vllm, type: 'BadRequestError', param: null, code: 400 } });
    const err = await c.responses.create({ model: MODEL, input: tag, stream: true }).catch((e) => e);
    assert.ok(err instanceof OpenAI.BadRequestError, String(err));
    assert.equal(err.code, 'context_length_exceeded', JSON.stringify(err.error));
  });

  test('engine dies mid-stream → response.failed with an error code; the SDK sees the failed response, never a completed one', async () => {
    const { c, rec } = client();
    const tag = uniq('die');
    answer(tag, { frames: deltaFrames({ model: MODEL, deltas: [{ content: 'partial ' }, { content: 'answer' }, { content: ' never finished' }] }), closeAfterFrames: 3 });
    const stream = c.responses.stream({ model: MODEL, input: tag });
    const types = [];
    stream.on('event', (e) => types.push(e.type));
    const final = await stream.finalResponse();
    assert.equal(final.status, 'failed');
    assert.equal(typeof final.error?.code, 'string');
    assert.ok(final.error.code.length > 0 && final.error.message.length > 0, JSON.stringify(final.error));
    assert.ok(!types.includes('response.completed'));
    const raw = await rawStream(rec);
    assert.equal(raw.terminal.type, 'response.failed');
    assert.equal(raw.terminal.response.output[0]?.content?.[0]?.text, 'partial answer');
  });

  test('a function call cut off mid-stream is never handed over as done (Codex would run it)', async () => {
    const { c, rec } = client();
    const tag = uniq('cutcall');
    const frames = deltaFrames({ model: MODEL, finishReason: 'tool_calls', deltas: toolCallDeltas(0, 'call_cut', 'exec_command', '{"cmd":"rm -rf build"}', 4) });
    answer(tag, { frames, closeAfterFrames: 3 });
    const final = await c.responses.stream({ model: MODEL, input: tag, tools: [EXEC] }).finalResponse();
    assert.equal(final.status, 'failed');
    const raw = await rawStream(rec);
    assert.equal(raw.terminal.type, 'response.failed');
    assert.ok(!raw.items.some((i) => i.type === 'function_call'), `a cut call got output_item.done: ${JSON.stringify(raw.items)}`);
  });

  test('an in-band engine error chunk mid-stream → response.failed', async () => {
    const { c, rec } = client();
    const tag = uniq('inband');
    const frames = deltaFrames({ model: MODEL, deltas: [{ content: 'so far' }] });
    frames.splice(2, frames.length - 2, `data: ${JSON.stringify({ object: 'error', message: 'engine overloaded', type: 'InternalServerError', param: null, code: 500 })}\n\n`, 'data: [DONE]\n\n');
    answer(tag, { frames });
    const final = await c.responses.stream({ model: MODEL, input: tag }).finalResponse();
    assert.equal(final.status, 'failed');
    const raw = await rawStream(rec);
    assert.equal(raw.terminal.type, 'response.failed');
  });

  test('bad input never reaches the engine: malformed JSON, an unknown item type, an output without its call', async () => {
    const { c } = client();
    const before = engine.count;
    const raw = await request(`${stack.proxy.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer k' }, body: '{"model":"acme/coder-e2ee","input":[' });
    assert.equal(raw.status, 400);
    assert.equal(typeof raw.json().error?.message, 'string');

    const unknown = await c.responses.create({ model: MODEL, input: [{ type: 'hologram_call', id: 'h1' }] }).catch((e) => e);
    assert.ok(unknown instanceof OpenAI.BadRequestError, String(unknown));
    assert.match(unknown.error.message, /hologram_call/);

    const orphan = await c.responses.create({ model: MODEL, input: [{ type: 'function_call_output', call_id: 'call_nowhere', output: 'x' }] }).catch((e) => e);
    assert.ok(orphan instanceof OpenAI.BadRequestError, String(orphan));
    assert.match(orphan.error.message, /call_nowhere/);
    assert.equal(engine.count, before, 'a rejected request reached the engine');
  });
});
