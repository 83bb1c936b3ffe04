// The official @anthropic-ai/sdk as the client of /v1/messages and /v1/messages/count_tokens,
// through the whole path: SDK → e2ee-proxy → e2ee-gateway (confidential) → the scripted engine.
// The engine decides every answer (lib/chat_chunks.mjs builds vLLM-shaped chunks); the tests assert
// what the SDK hands its caller, that every raw event the proxy sent obeys the Messages stream
// grammar (lib/dialect_streams.mjs), and what chat-completions request reached the engine.
//
// Each test marks its prompt with a unique tag and scripts the engine for the request carrying it,
// so the keep-alive exchanges (a ~16 s engine silence) can run in the background meanwhile.

import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startStack, loadAnthropic, recordingFetch } from './lib/translation_stack.mjs';
import { deltaFrames, toolCallDeltas, toolStart, toolArgs, completionWith, toolCall } from './lib/chat_chunks.mjs';
import { checkAnthropicStream } from './lib/dialect_streams.mjs';
import { request, deferred, within } from './lib/http.mjs';

const Anthropic = await loadAnthropic();
const MODEL = 'acme/coder-e2ee';
// A real 1×1 PNG.
const PNG_B64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

let stack;
let engine;
let keepAlive; // the background keep-alive exchanges, started in before()

before(async () => {
  stack = await startStack({ model: MODEL });
  engine = stack.engine;
  keepAlive = { afterHeaders: settle(keepAliveExchange('after-headers')), beforeHeaders: settle(keepAliveExchange('before-headers')) };
});
afterEach(() => stack?.assertRunning());
after(async () => {
  await stack?.close();
});

const uniq = (what) => `${what}-${randomUUID().slice(0, 8)}`;
const bodyHas = (rec, tag) => rec.body.toString('utf8').includes(tag);
// The engine answers the (single) request whose body carries `tag` with `script`.
const answer = (tag, script) => engine.when((r) => bodyHas(r, tag), script, { times: 1 });
// The requests that carried `tag` to the engine.
const engineRequestsWith = (tag) => engine.requests.filter((r) => bodyHas(r, tag));
function engineRequest(tag, path = '/v1/chat/completions') {
  const found = engineRequestsWith(tag);
  assert.equal(found.length, 1, `expected one engine request carrying ${tag}, got ${found.length}`);
  assert.equal(found[0].path, path);
  return found[0].json;
}
const textOf = (content) => (typeof content === 'string' ? content : content.map((p) => p.text ?? '').join(''));

function client(opts = {}) {
  const rec = recordingFetch(opts);
  const c = new Anthropic({ baseURL: stack.proxy.url, apiKey: 'sk-ant-e2ee-test', maxRetries: 0, timeout: 60000, fetch: rec.fetch });
  return { c, rec };
}

// The raw stream of the last exchange, checked against the Messages event grammar.
async function rawStream(rec, opts) {
  const ex = rec.exchanges.at(-1);
  assert.equal(ex.status, 200);
  assert.match(ex.headers['content-type'], /^text\/event-stream/);
  return checkAnthropicStream(await ex.raw, opts);
}

function settle(promise) {
  return promise.then(
    (value) => ({ value }),
    (error) => ({ error }),
  );
}

const WEATHER = {
  name: 'get_weather',
  description: 'Current weather for a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } }, required: ['city'] },
};
const TIME = { name: 'get_time', description: 'Local time', input_schema: { type: 'object', properties: { tz: { type: 'string' } }, required: ['tz'] } };
// What a chat-completions engine must receive for an Anthropic tool (OpenAI function-tool shape).
const asFunction = (t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.input_schema } });

describe('messages.create', () => {
  test('text: system blocks with cache_control, usage with cache reads, metadata.user_id never forwarded', async () => {
    const tag = uniq('create');
    const userId = `user-${randomUUID()}`;
    answer(tag, {
      json: completionWith({
        model: MODEL,
        message: { content: `Bonjour ✓ ${tag}` },
        usage: { prompt_tokens: 40, completion_tokens: 6, total_tokens: 46, prompt_tokens_details: { cached_tokens: 32 } },
      }),
    });
    const { c } = client();
    const msg = await c.messages.create({
      model: MODEL,
      max_tokens: 256,
      temperature: 0.25,
      system: [
        { type: 'text', text: 'You are terse.' },
        { type: 'text', text: 'Answer in French.', cache_control: { type: 'ephemeral' } },
      ],
      metadata: { user_id: userId },
      messages: [{ role: 'user', content: `Say hello ${tag}` }],
    });
    assert.equal(msg.type, 'message');
    assert.equal(msg.role, 'assistant');
    assert.equal(msg.model, MODEL);
    assert.match(msg.id, /^msg_/);
    assert.deepEqual(msg.content.map((b) => [b.type, b.text]), [['text', `Bonjour ✓ ${tag}`]]);
    assert.equal(msg.stop_reason, 'end_turn');
    assert.equal(msg.stop_sequence, null);
    assert.equal(msg.usage.cache_read_input_tokens, 32);
    assert.equal(msg.usage.input_tokens + msg.usage.cache_read_input_tokens, 40, JSON.stringify(msg.usage));
    assert.equal(msg.usage.output_tokens, 6);
    assert.match(String(msg._request_id), /^req_[A-Za-z0-9]{24}$/, 'the SDK surfaces our request-id header');

    const sent = engineRequest(tag);
    assert.equal(sent.model, MODEL);
    assert.equal(sent.max_tokens ?? sent.max_completion_tokens, 256);
    assert.equal(sent.temperature, 0.25);
    assert.ok(!sent.stream, 'non-stream request sent as a stream');
    assert.deepEqual(sent.messages.map((m) => m.role), ['system', 'user']);
    const system = textOf(sent.messages[0].content);
    assert.ok(system.includes('You are terse.') && system.indexOf('Answer in French.') > system.indexOf('You are terse.'), system);
    assert.equal(textOf(sent.messages[1].content), `Say hello ${tag}`);
    assert.ok(!JSON.stringify(sent).includes(userId), 'metadata.user_id reached the engine');
  });

  test('stop_sequences: sent as stop; vLLM stop_reason → stop_sequence + the matched string; EOS id and length', async () => {
    const { c } = client();
    const cases = [
      { stopReason: '###', finish: 'stop', want: ['stop_sequence', '###'] },
      { stopReason: 'END', finish: 'stop', want: ['stop_sequence', 'END'] },
      { stopReason: 128009, finish: 'stop', want: ['end_turn', null] }, // an EOS token id, not a sequence
      { stopReason: null, finish: 'length', want: ['max_tokens', null] },
    ];
    for (const k of cases) {
      const tag = uniq('stopseq');
      answer(tag, { json: completionWith({ model: MODEL, message: { content: 'one two' }, finishReason: k.finish, stopReason: k.stopReason }) });
      const msg = await c.messages.create({ model: MODEL, max_tokens: 32, stop_sequences: ['###', 'END'], messages: [{ role: 'user', content: tag }] });
      assert.deepEqual([msg.stop_reason, msg.stop_sequence], k.want, JSON.stringify(k));
      assert.deepEqual(engineRequest(tag).stop, ['###', 'END']);
    }
  });

  test('tool_use: tool_calls → tool_use blocks with parsed input; tools and every tool_choice form reach the engine', async () => {
    const { c } = client();
    const tag = uniq('tools');
    answer(tag, { json: completionWith({ model: MODEL, finishReason: 'tool_calls', message: { content: null, tool_calls: [toolCall('call_n1', 'get_weather', { city: 'Oslo', unit: 'c' })] } }) });
    const msg = await c.messages.create({ model: MODEL, max_tokens: 64, tools: [WEATHER, TIME], messages: [{ role: 'user', content: `weather ${tag}` }] });
    assert.equal(msg.stop_reason, 'tool_use');
    assert.deepEqual(msg.content, [{ type: 'tool_use', id: 'call_n1', name: 'get_weather', input: { city: 'Oslo', unit: 'c' } }]);
    assert.deepEqual(engineRequest(tag).tools, [asFunction(WEATHER), asFunction(TIME)]);

    // tool_choice in all its forms, as OpenAI chat completions spells them.
    const forms = [
      [{ type: 'auto' }, 'auto', undefined],
      [{ type: 'auto', disable_parallel_tool_use: true }, 'auto', false],
      [{ type: 'any' }, 'required', undefined],
      [{ type: 'tool', name: 'get_time' }, { type: 'function', function: { name: 'get_time' } }, undefined],
      [{ type: 'none' }, 'none', undefined],
    ];
    for (const [choice, want, parallel] of forms) {
      const t = uniq('choice');
      await c.messages.create({ model: MODEL, max_tokens: 8, tools: [WEATHER, TIME], tool_choice: choice, messages: [{ role: 'user', content: t }] });
      const sent = engineRequest(t);
      assert.deepEqual(sent.tool_choice, want, JSON.stringify(choice));
      if (parallel === false) assert.equal(sent.parallel_tool_calls, false, JSON.stringify(choice));
      else assert.notEqual(sent.parallel_tool_calls, false, JSON.stringify(choice));
    }
  });

  test('thinking: reasoning_content → a thinking block before the text; thinking enabled reaches the engine', async () => {
    const { c } = client();
    const tag = uniq('think');
    answer(tag, { json: completionWith({ model: MODEL, message: { reasoning_content: 'Two plus two is four.', content: 'It is 4.' } }) });
    const msg = await c.messages.create({ model: MODEL, max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: [{ role: 'user', content: `2+2? ${tag}` }] });
    assert.deepEqual(msg.content.map((b) => b.type), ['thinking', 'text']);
    assert.equal(msg.content[0].thinking, 'Two plus two is four.');
    assert.equal(typeof msg.content[0].signature, 'string');
    assert.equal(msg.content[1].text, 'It is 4.');
    const kwargs = engineRequest(tag).chat_template_kwargs ?? {};
    assert.ok(kwargs.enable_thinking === true || kwargs.thinking === true, `thinking not enabled for the engine: ${JSON.stringify(kwargs)}`);
  });
});

describe('messages.stream', () => {
  test('text: text events add up to the engine pieces; finalMessage; the final usage is the engine usage', async () => {
    const { c, rec } = client();
    const tag = uniq('stream');
    const pieces = ['Hel', 'lo', ', wörld ', '✓', '\n', `"${tag}"`, ' 🎉'];
    answer(tag, { frames: deltaFrames({ model: MODEL, deltas: pieces.map((content) => ({ content })), usage: { prompt_tokens: 21, completion_tokens: 7, total_tokens: 28 } }), paceMs: 2 });
    const stream = c.messages.stream({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: `stream ${tag}` }] });
    const texts = [];
    stream.on('text', (delta) => texts.push(delta));
    const final = await stream.finalMessage();
    assert.equal(texts.join(''), pieces.join(''));
    assert.deepEqual(final.content.map((b) => [b.type, b.text]), [['text', pieces.join('')]]);
    assert.equal(final.stop_reason, 'end_turn');
    assert.equal(final.usage.output_tokens, 7);
    assert.equal(final.usage.input_tokens, 21);
    const raw = await rawStream(rec);
    assert.equal(raw.blocks.length, 1);
    assert.equal(raw.message.id, final.id);
    assert.equal(engineRequest(tag).stream, true);
  });

  test('stop sequence fired in a stream → stop_reason stop_sequence with the matched string', async () => {
    const { c, rec } = client();
    const tag = uniq('streamstop');
    answer(tag, { frames: deltaFrames({ model: MODEL, deltas: [{ content: 'one' }, { content: ' two' }], stopReason: 'END', usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 } }) });
    const final = await c.messages.stream({ model: MODEL, max_tokens: 64, stop_sequences: ['END'], messages: [{ role: 'user', content: tag }] }).finalMessage();
    assert.equal(final.stop_reason, 'stop_sequence');
    assert.equal(final.stop_sequence, 'END');
    assert.equal(final.content[0].text, 'one two');
    await rawStream(rec);
  });

  test('tool use: text then a streamed tool call → text + tool_use with the parsed input', async () => {
    const { c, rec } = client();
    const tag = uniq('streamtool');
    const args = JSON.stringify({ city: 'Zürich', unit: 'c' });
    answer(tag, {
      frames: deltaFrames({ model: MODEL, finishReason: 'tool_calls', deltas: [{ content: 'Checking.' }, ...toolCallDeltas(0, 'call_w1', 'get_weather', args, 4)], usage: { prompt_tokens: 30, completion_tokens: 9, total_tokens: 39 } }),
      paceMs: 1,
    });
    const stream = c.messages.stream({ model: MODEL, max_tokens: 64, tools: [WEATHER], messages: [{ role: 'user', content: `weather ${tag}` }] });
    const snapshots = [];
    stream.on('inputJson', (_partial, snapshot) => snapshots.push(snapshot));
    const final = await stream.finalMessage();
    assert.equal(final.stop_reason, 'tool_use');
    assert.deepEqual(final.content.map((b) => b.type), ['text', 'tool_use']);
    assert.equal(final.content[0].text, 'Checking.');
    assert.deepEqual(final.content[1], { type: 'tool_use', id: 'call_w1', name: 'get_weather', input: { city: 'Zürich', unit: 'c' } });
    assert.deepEqual(snapshots.at(-1), { city: 'Zürich', unit: 'c' });
    await rawStream(rec);
    assert.deepEqual(engineRequest(tag).tools, [asFunction(WEATHER)]);
  });

  test('parallel tool calls whose fragments interleave → two tool_use blocks with the right inputs', async () => {
    const { c, rec } = client();
    const tag = uniq('parallel');
    answer(tag, {
      frames: deltaFrames({
        model: MODEL,
        finishReason: 'tool_calls',
        deltas: [
          { content: 'Both at once.' },
          { tool_calls: [toolStart(0, 'call_a', 'get_weather')] },
          { tool_calls: [toolStart(1, 'call_b', 'get_time')] },
          { tool_calls: [toolArgs(0, '{"city":')] },
          { tool_calls: [toolArgs(1, '{"tz":"Europe/')] },
          { tool_calls: [toolArgs(0, '"Paris"}')] },
          { tool_calls: [toolArgs(1, 'Paris"}')] },
        ],
        usage: { prompt_tokens: 50, completion_tokens: 20, total_tokens: 70 },
      }),
    });
    const final = await c.messages.stream({ model: MODEL, max_tokens: 64, tools: [WEATHER, TIME], messages: [{ role: 'user', content: `both ${tag}` }] }).finalMessage();
    assert.equal(final.stop_reason, 'tool_use');
    assert.deepEqual(final.content.map((b) => (b.type === 'text' ? { type: b.type, text: b.text } : b)), [
      { type: 'text', text: 'Both at once.' },
      { type: 'tool_use', id: 'call_a', name: 'get_weather', input: { city: 'Paris' } },
      { type: 'tool_use', id: 'call_b', name: 'get_time', input: { tz: 'Europe/Paris' } },
    ]);
    const raw = await rawStream(rec);
    assert.deepEqual(raw.blocks.map((b) => b.type), ['text', 'tool_use', 'tool_use']);
  });

  test('tool input is never empty: whole arguments in one fragment, and a call with no arguments at all', async () => {
    const { c, rec } = client();
    const tag = uniq('toolargs');
    answer(tag, {
      frames: deltaFrames({
        model: MODEL,
        finishReason: 'tool_calls',
        deltas: [
          { tool_calls: [{ index: 0, id: 'call_whole', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Lima"}' } }] },
          { tool_calls: [toolStart(1, 'call_none', 'get_time')] },
        ],
      }),
    });
    const final = await c.messages.stream({ model: MODEL, max_tokens: 64, tools: [WEATHER, TIME], messages: [{ role: 'user', content: tag }] }).finalMessage();
    assert.deepEqual(final.content, [
      { type: 'tool_use', id: 'call_whole', name: 'get_weather', input: { city: 'Lima' } },
      { type: 'tool_use', id: 'call_none', name: 'get_time', input: {} },
    ]);
    await rawStream(rec); // every tool block got a non-empty input_json_delta
  });

  test('thinking from reasoning_content deltas → a thinking block, then the text', async () => {
    const { c, rec } = client();
    const tag = uniq('streamthink');
    answer(tag, { frames: deltaFrames({ model: MODEL, deltas: [{ reasoning_content: 'First, ' }, { reasoning_content: 'add.' }, { content: 'It is ' }, { content: '4.' }] }) });
    const thinking = [];
    const stream = c.messages.stream({ model: MODEL, max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: [{ role: 'user', content: `2+2 ${tag}` }] });
    stream.on('thinking', (delta) => thinking.push(delta));
    const final = await stream.finalMessage();
    assert.deepEqual(final.content.map((b) => b.type), ['thinking', 'text']);
    assert.equal(final.content[0].thinking, 'First, add.');
    assert.equal(thinking.join(''), 'First, add.');
    assert.equal(final.content[1].text, 'It is 4.');
    await rawStream(rec);
  });

  test('thinking from <think> tags split across chunks → a thinking block and a text block without tags', async () => {
    const { c, rec } = client();
    const tag = uniq('thinktags');
    answer(tag, { frames: deltaFrames({ model: MODEL, deltas: ['<thi', 'nk>Let me ', 'think</th', 'ink>\n\nThe answer', ' is 4.'].map((content) => ({ content })) }) });
    const final = await c.messages.stream({ model: MODEL, max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: [{ role: 'user', content: tag }] }).finalMessage();
    assert.deepEqual(final.content.map((b) => b.type), ['thinking', 'text']);
    assert.equal(final.content[0].thinking.trim(), 'Let me think');
    assert.equal(final.content[1].text.trim(), 'The answer is 4.');
    await rawStream(rec);
  });

  test('thinking, then a tool call → thinking block, then tool_use', async () => {
    const { c, rec } = client();
    const tag = uniq('thinktool');
    answer(tag, { frames: deltaFrames({ model: MODEL, finishReason: 'tool_calls', deltas: [{ reasoning_content: 'I need the weather.' }, { content: '\n\n' }, ...toolCallDeltas(0, 'call_t1', 'get_weather', '{"city":"Kyiv"}', 2)] }) });
    const final = await c.messages.stream({ model: MODEL, max_tokens: 2048, tools: [WEATHER], thinking: { type: 'enabled', budget_tokens: 1024 }, messages: [{ role: 'user', content: tag }] }).finalMessage();
    assert.deepEqual(final.content.map((b) => b.type), ['thinking', 'tool_use']);
    assert.equal(final.content[0].thinking, 'I need the weather.');
    assert.deepEqual(final.content[1].input, { city: 'Kyiv' });
    await rawStream(rec);
  });
});

describe('history: what the engine receives', () => {
  test('tool_result round trip: the SDK tool_use goes back as tool_calls, its result as the adjacent tool message', async () => {
    const { c } = client();
    const tag = uniq('roundtrip');
    answer(tag, { frames: deltaFrames({ model: MODEL, finishReason: 'tool_calls', deltas: [{ content: 'Let me look.' }, ...toolCallDeltas(0, 'call_rt1', 'get_weather', '{"city":"Quito"}')] }) });
    const question = { role: 'user', content: `weather in Quito? ${tag}` };
    const first = await c.messages.stream({ model: MODEL, max_tokens: 64, tools: [WEATHER], messages: [question] }).finalMessage();
    const use = first.content.find((b) => b.type === 'tool_use');
    assert.ok(use, JSON.stringify(first.content));

    const tag2 = uniq('roundtrip2');
    answer(tag2, { json: completionWith({ model: MODEL, message: { content: `Quito: 17°C ${tag2}` } }) });
    const second = await c.messages.create({
      model: MODEL,
      max_tokens: 64,
      tools: [WEATHER],
      messages: [question, { role: 'assistant', content: first.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: `17°C, cloudy ${tag2}` }] }],
    });
    assert.equal(second.content[0].text, `Quito: 17°C ${tag2}`);

    const sent = engineRequest(tag2);
    assert.deepEqual(sent.messages.map((m) => m.role), ['user', 'assistant', 'tool']);
    const asst = sent.messages[1];
    assert.equal(textOf(asst.content ?? ''), 'Let me look.');
    assert.equal(asst.tool_calls.length, 1);
    assert.equal(asst.tool_calls[0].id, 'call_rt1');
    assert.equal(asst.tool_calls[0].type, 'function');
    assert.equal(asst.tool_calls[0].function.name, 'get_weather');
    assert.deepEqual(JSON.parse(asst.tool_calls[0].function.arguments), { city: 'Quito' });
    assert.equal(sent.messages[2].tool_call_id, 'call_rt1');
    assert.equal(textOf(sent.messages[2].content), `17°C, cloudy ${tag2}`);
  });

  test('two results in any order, is_error and a trailing text block: tool messages right after the call, then the user text', async () => {
    const { c } = client();
    const tag = uniq('results');
    await c.messages.create({
      model: MODEL,
      max_tokens: 64,
      tools: [WEATHER],
      messages: [
        { role: 'user', content: 'Oslo and Rome?' },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'Checking both.' },
            { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } },
            { type: 'tool_use', id: 'toolu_2', name: 'get_weather', input: { city: 'Rome' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_2', content: 'sunny' },
            { type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: 'service down' }], is_error: true },
            { type: 'text', text: `and now? ${tag}` },
          ],
        },
      ],
    });
    const sent = engineRequest(tag);
    assert.deepEqual(sent.messages.map((m) => m.role), ['user', 'assistant', 'tool', 'tool', 'user']);
    assert.deepEqual(sent.messages[1].tool_calls.map((t) => [t.id, t.function.name, JSON.parse(t.function.arguments)]), [
      ['toolu_1', 'get_weather', { city: 'Oslo' }],
      ['toolu_2', 'get_weather', { city: 'Rome' }],
    ]);
    const results = Object.fromEntries(sent.messages.slice(2, 4).map((m) => [m.tool_call_id, textOf(m.content)]));
    assert.deepEqual(Object.keys(results).sort(), ['toolu_1', 'toolu_2']);
    assert.equal(results.toolu_2, 'sunny');
    assert.ok(results.toolu_1.includes('service down') && /error/i.test(results.toolu_1), `is_error is lost: ${results.toolu_1}`);
    assert.equal(textOf(sent.messages[4].content), `and now? ${tag}`);
  });

  test('images: base64 → an image_url data URI; url → the URL; an image inside a tool_result still reaches the engine', async () => {
    const { c } = client();
    const tag = uniq('image');
    await c.messages.create({
      model: MODEL,
      max_tokens: 16,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG_B64 } },
            { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
            { type: 'text', text: `What is this? ${tag}` },
          ],
        },
      ],
    });
    const sent = engineRequest(tag);
    assert.deepEqual(sent.messages, [
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG_B64}` } },
          { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
          { type: 'text', text: `What is this? ${tag}` },
        ],
      },
    ]);

    const tag2 = uniq('toolimage');
    await c.messages.create({
      model: MODEL,
      max_tokens: 16,
      messages: [
        { role: 'user', content: 'show me' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_img', name: 'Read', input: { file_path: '/tmp/a.png' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_img', content: [{ type: 'text', text: `the file ${tag2}` }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG_B64 } }] }] },
      ],
    });
    const sent2 = engineRequest(tag2);
    const toolIdx = sent2.messages.findIndex((m) => m.role === 'tool');
    assert.equal(sent2.messages[toolIdx - 1].tool_calls?.[0]?.id, 'toolu_img');
    assert.equal(sent2.messages[toolIdx].tool_call_id, 'toolu_img');
    assert.ok(JSON.stringify(sent2).includes(`data:image/png;base64,${PNG_B64}`), 'the tool result image never reached the engine');
  });

  test('thinking history (with signature) and redacted_thinking from earlier turns are accepted; signatures never leave', async () => {
    const { c } = client();
    const tag = uniq('thinkhist');
    const signature = `sig-${randomUUID()}`;
    await c.messages.create({
      model: MODEL,
      max_tokens: 64,
      thinking: { type: 'enabled', budget_tokens: 1024 },
      messages: [
        { role: 'user', content: 'q1' },
        { role: 'assistant', content: [{ type: 'thinking', thinking: 'earlier reasoning', signature }, { type: 'redacted_thinking', data: 'opaque' }, { type: 'text', text: 'a1' }] },
        { role: 'user', content: `q2 ${tag}` },
      ],
    });
    const sent = engineRequest(tag);
    assert.deepEqual(sent.messages.map((m) => m.role), ['user', 'assistant', 'user']);
    assert.equal(textOf(sent.messages[1].content), 'a1');
    assert.ok(!JSON.stringify(sent).includes(signature), 'a thinking signature reached the engine');
  });
});

describe('errors in the Anthropic shape', () => {
  test('engine 400 → BadRequestError with {type:"error", error:{type:"invalid_request_error"}} and the engine message', async () => {
    const { c } = client();
    const tag = uniq('e400');
    answer(tag, { status: 400, json: { object: 'error', message: `temperature out of range ${tag}`, type: 'BadRequestError', param: 'temperature', code: 400 } });
    const err = await c.messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: tag }] }).then(
      (m) => assert.fail(`expected an error, got ${JSON.stringify(m)}`),
      (e) => e,
    );
    assert.ok(err instanceof Anthropic.BadRequestError, `${err.constructor.name}: ${err.message}`);
    assert.equal(err.status, 400);
    assert.equal(err.error.type, 'error');
    assert.equal(err.error.error.type, 'invalid_request_error');
    assert.ok(err.error.error.message.includes(`temperature out of range ${tag}`), err.error.error.message);

    // The same before a stream starts: the SDK's stream rejects with the same class.
    const tag2 = uniq('e400s');
    answer(tag2, { status: 400, json: { object: 'error', message: `bad ${tag2}`, type: 'BadRequestError', param: null, code: 400 } });
    await assert.rejects(c.messages.stream({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: tag2 }] }).finalMessage(), Anthropic.BadRequestError);
  });

  test("engine context-length 400 → invalid_request_error worded 'prompt is too long' (what Claude Code's compaction keys on)", async () => {
    const { c } = client();
    const tag = uniq('ctx');
    const vllm = "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens (8000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.";
    answer(tag, { status: 400, json: { object: 'error', message: vllm, type: 'BadRequestError', param: null, code: 400 } });
    const err = await c.messages.create({ model: MODEL, max_tokens: 1000, messages: [{ role: 'user', content: tag }] }).catch((e) => e);
    assert.ok(err instanceof Anthropic.BadRequestError, String(err));
    assert.equal(err.error.error.type, 'invalid_request_error');
    assert.match(err.error.error.message, /^prompt is too long/, err.error.error.message);
  });

  test('engine 429 → RateLimitError with Retry-After; engine 500 → a 5xx api_error', async () => {
    const { c } = client();
    const tag = uniq('e429');
    answer(tag, { status: 429, json: { object: 'error', message: 'too many requests', type: 'TooManyRequests', param: null, code: 429 } });
    const err = await c.messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: tag }] }).catch((e) => e);
    assert.ok(err instanceof Anthropic.RateLimitError, String(err));
    assert.equal(err.error.error.type, 'rate_limit_error');
    assert.ok(Number(err.headers.get('retry-after')) > 0, 'no Retry-After');

    const tag2 = uniq('e500');
    answer(tag2, { status: 500, json: { object: 'error', message: 'CUDA error', type: 'InternalServerError', param: null, code: 500 } });
    const err2 = await c.messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: tag2 }] }).catch((e) => e);
    assert.ok(err2 instanceof Anthropic.InternalServerError, String(err2));
    assert.equal(err2.error.type, 'error');
    assert.equal(err2.error.error.type, 'api_error');
  });

  test('engine dies mid-stream → the SDK stream raises an error (never a silent success); the raw stream ends with event: error', async () => {
    const { c, rec } = client();
    const tag = uniq('die');
    answer(tag, { frames: deltaFrames({ model: MODEL, deltas: [{ content: 'partial ' }, { content: 'answer ' }, { content: 'never' }, { content: ' finished' }] }), closeAfterFrames: 3 });
    const stream = c.messages.stream({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: tag }] });
    const texts = [];
    stream.on('text', (t) => texts.push(t));
    const err = await stream.finalMessage().then(
      (m) => assert.fail(`a cut stream ended as a success: ${JSON.stringify(m)}`),
      (e) => e,
    );
    assert.ok(err instanceof Anthropic.APIError, `${err.constructor.name}: ${err.message}`);
    assert.equal(err.error?.type, 'error');
    assert.equal(typeof err.error?.error?.type, 'string');
    assert.equal(texts.join(''), 'partial answer ');
    const raw = await rawStream(rec, { expectError: true });
    assert.ok(!raw.events.some((e) => e.type === 'message_stop'));
  });

  test('an in-band engine error chunk mid-stream → event: error', async () => {
    const { c, rec } = client();
    const tag = uniq('inband');
    const frames = deltaFrames({ model: MODEL, deltas: [{ content: 'so far' }] });
    frames.splice(2, frames.length - 2, `data: ${JSON.stringify({ object: 'error', message: 'engine overloaded', type: 'InternalServerError', param: null, code: 500 })}\n\n`, 'data: [DONE]\n\n');
    answer(tag, { frames });
    await assert.rejects(c.messages.stream({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: tag }] }).finalMessage(), Anthropic.APIError);
    await rawStream(rec, { expectError: true });
  });

  test('bad input never reaches the engine: malformed JSON, an unknown content block, a tool_result without its call', async () => {
    const { c } = client();
    const before = engine.count;
    const raw = await request(`${stack.proxy.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'k' }, body: '{"model":"acme/coder-e2ee","messages":[' });
    assert.equal(raw.status, 400);
    assert.equal(raw.json().type, 'error');
    assert.equal(raw.json().error.type, 'invalid_request_error');

    const unknown = await c.messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: [{ type: 'hologram', data: 'x' }] }] }).catch((e) => e);
    assert.ok(unknown instanceof Anthropic.BadRequestError, String(unknown));
    assert.match(unknown.error.error.message, /hologram/);

    const orphan = await c.messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_nowhere', content: 'x' }] }] }).catch((e) => e);
    assert.ok(orphan instanceof Anthropic.BadRequestError, String(orphan));
    assert.match(orphan.error.error.message, /toolu_nowhere/);
    assert.equal(engine.count, before, 'a rejected request reached the engine');
  });
});

describe('count_tokens', () => {
  test("counted by the engine's /tokenize through the encrypted channel", async () => {
    const { c, rec } = client();
    const tag = uniq('count');
    answer(tag, { json: { count: 1234, max_model_len: 131072, tokens: [], token_strs: null } });
    const counted = await c.messages.countTokens({ model: MODEL, system: 'Be brief.', tools: [WEATHER], messages: [{ role: 'user', content: `count me ${tag}` }] });
    assert.deepEqual(counted, { input_tokens: 1234 });
    assert.equal(rec.exchanges.at(-1).headers['x-e2ee-token-count'], 'engine');
    const sent = engineRequest(tag, '/tokenize');
    assert.equal(sent.model, MODEL);
    assert.deepEqual(sent.messages.map((m) => m.role), ['system', 'user']);
    assert.equal(textOf(sent.messages[1].content), `count me ${tag}`);
    assert.deepEqual(sent.tools, [asFunction(WEATHER)]);
  });

  test('an engine without /tokenize → a local estimate, marked as such', async () => {
    const { c, rec } = client();
    const tag = uniq('estimate');
    answer(tag, { status: 404, json: { detail: 'Not Found' } });
    const counted = await c.messages.countTokens({ model: MODEL, messages: [{ role: 'user', content: `count me too ${tag} `.repeat(20) }] });
    assert.equal(rec.exchanges.at(-1).headers['x-e2ee-token-count'], 'estimate');
    assert.ok(Number.isInteger(counted.input_tokens) && counted.input_tokens > 0, JSON.stringify(counted));
    assert.equal(engineRequestsWith(tag).length, 1, 'the engine was not asked first');
  });
});

// The engine accepts the request (or not even that) and is silent for longer than the proxy's 15 s
// keep-alive interval; it answers as soon as the client has seen a keep-alive ping (or after 25 s,
// and then the test fails). Runs in the background from before().
async function keepAliveExchange(mode) {
  const tag = uniq(`keepalive-${mode}`);
  const release = deferred();
  const frames = deltaFrames({ model: MODEL, deltas: [{ content: `after the silence ${tag}` }], usage: { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 } });
  answer(tag, {
    handler: async (req, res) => {
      if (mode === 'after-headers') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.flushHeaders();
      }
      await within(release.promise, 25000, 'no keep-alive').catch(() => {});
      if (!res.headersSent) res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      for (const f of frames) res.write(f);
      res.end();
    },
  });
  const t0 = Date.now();
  const pings = []; // ms since the request was sent, for each ping before the first content block
  let seen = 0;
  const { c, rec } = client({
    onChunk: (entry) => {
      const upToContent = entry.text.split('event: content_block_start')[0];
      const n = upToContent.split('event: ping').length - 1;
      for (; seen < n; seen++) pings.push(Date.now() - t0);
      if (pings.some((ms) => ms >= 10000)) release.resolve();
    },
  });
  const final = await c.messages.stream({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: tag }] }).finalMessage();
  return { final, pings, raw: await rec.exchanges.at(-1).raw, tag, elapsed: Date.now() - t0 };
}

describe('keep-alive', () => {
  test('engine silent ~15 s after accepting the stream → ping events reach the client; the SDK still gets the whole message', async () => {
    const { value, error } = await keepAlive.afterHeaders;
    if (error) throw error;
    const parsed = checkAnthropicStream(value.raw);
    assert.ok(value.pings.some((ms) => ms >= 13000 && ms <= 20000), `no keep-alive ping 13–20 s into the silence; pings at ${JSON.stringify(value.pings)} ms`);
    assert.equal(value.final.content[0].text, `after the silence ${value.tag}`);
    assert.equal(parsed.blocks.length, 1);
  });

  test('engine silent ~15 s before even answering the request → the client still sees the stream start and keep-alives', async () => {
    const { value, error } = await keepAlive.beforeHeaders;
    if (error) throw error;
    checkAnthropicStream(value.raw);
    assert.ok(value.pings.some((ms) => ms >= 13000 && ms <= 20000), `the client saw nothing for ${value.elapsed} ms: no message_start/ping while the engine had not answered; pings at ${JSON.stringify(value.pings)} ms`);
  });
});
