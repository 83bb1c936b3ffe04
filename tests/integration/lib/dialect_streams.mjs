// Independent checkers for the two streamed dialects the proxy produces, applied to the raw SSE
// text a client received: the Anthropic Messages event grammar (what Claude Code and the Anthropic
// SDK rely on) and the Responses event grammar (what Codex and the OpenAI SDK rely on). Each
// returns what the stream said, assembled, so tests can compare it with what the engine was
// scripted to say.

import assert from 'node:assert/strict';
import { parseSseEvents } from './chat_chunks.mjs';

function parseData(e, i) {
  try {
    return JSON.parse(e.data);
  } catch {
    assert.fail(`event ${i} (${e.event}) data is not JSON: ${e.data}`);
  }
}

// Anthropic: message_start → (content_block_start → deltas → content_block_stop)* with indexes
// 0,1,2… one block open at a time → message_delta → message_stop; ping anywhere in between; an
// `error` event ends the stream instead. Returns { events, message, blocks, stop, usage, error }.
export function checkAnthropicStream(text, { expectError = false } = {}) {
  const raw = parseSseEvents(text).filter((e) => !e.comment);
  assert.ok(raw.length > 0, 'empty Anthropic stream');
  const events = raw.map((e, i) => {
    const data = parseData(e, i);
    assert.equal(e.event, data.type, `event ${i}: "event: ${e.event}" but data.type ${data.type}`);
    return data;
  });
  const where = (i) => `event ${i} in ${events.map((e) => e.type).join(',')}`;
  assert.equal(events[0].type, 'message_start', where(0));
  const message = events[0].message;
  assert.equal(typeof message.id, 'string');
  assert.equal(message.role, 'assistant');
  assert.deepEqual(message.content, []);
  for (const k of ['input_tokens', 'output_tokens', 'cache_read_input_tokens', 'cache_creation_input_tokens']) {
    assert.equal(typeof message.usage?.[k], 'number', `message_start.usage.${k} missing: ${JSON.stringify(message.usage)}`);
  }
  const blocks = [];
  let open = null;
  let messageDelta = null;
  let stopped = false;
  let error = null;
  const deltaKind = { text_delta: 'text', thinking_delta: 'thinking', signature_delta: 'thinking', input_json_delta: 'tool_use' };
  for (let i = 1; i < events.length; i++) {
    const e = events[i];
    assert.ok(!stopped && !error, `${where(i)}: an event after message_stop / error`);
    switch (e.type) {
      case 'ping':
        break;
      case 'content_block_start': {
        assert.equal(open, null, `${where(i)}: a block starts while block ${open?.index} is open`);
        assert.equal(messageDelta, null, `${where(i)}: a block after message_delta`);
        assert.equal(e.index, blocks.length, `${where(i)}: index ${e.index}, expected ${blocks.length}`);
        const b = { ...e.content_block, index: e.index, partial: '' };
        if (b.type === 'text') assert.equal(b.text, '');
        if (b.type === 'thinking') assert.equal(b.thinking, '');
        if (b.type === 'tool_use') {
          assert.ok(b.id && b.name, `${where(i)}: tool_use without id/name`);
          assert.deepEqual(b.input, {});
        }
        blocks.push(b);
        open = b;
        break;
      }
      case 'content_block_delta': {
        assert.ok(open && e.index === open.index, `${where(i)}: delta for index ${e.index}, open block ${open?.index}`);
        assert.equal(deltaKind[e.delta.type], open.type, `${where(i)}: ${e.delta.type} in a ${open.type} block`);
        if (e.delta.type === 'text_delta') open.text += e.delta.text;
        else if (e.delta.type === 'thinking_delta') open.thinking += e.delta.thinking;
        else if (e.delta.type === 'signature_delta') open.signature = (open.signature ?? '') + e.delta.signature;
        else open.partial += e.delta.partial_json;
        break;
      }
      case 'content_block_stop':
        assert.ok(open && e.index === open.index, `${where(i)}: stop for index ${e.index}, open block ${open?.index}`);
        if (open.type === 'tool_use') {
          assert.ok(open.partial.length > 0, `${where(i)}: tool_use ${open.name} got no input_json_delta (input would be empty)`);
          let input;
          try {
            input = JSON.parse(open.partial);
          } catch {
            assert.fail(`${where(i)}: tool_use input is not JSON: ${open.partial}`);
          }
          assert.ok(input && typeof input === 'object' && !Array.isArray(input), `tool_use input is not an object: ${open.partial}`);
          open.input = input;
        }
        open = null;
        break;
      case 'message_delta':
        assert.equal(open, null, `${where(i)}: message_delta while block ${open?.index} is open`);
        assert.equal(messageDelta, null, `${where(i)}: a second message_delta`);
        assert.equal(typeof e.delta.stop_reason, 'string', `${where(i)}: no stop_reason`);
        assert.equal(typeof e.usage?.output_tokens, 'number', `${where(i)}: no usage.output_tokens`);
        messageDelta = e;
        break;
      case 'message_stop':
        assert.ok(messageDelta, `${where(i)}: message_stop without message_delta`);
        stopped = true;
        break;
      case 'error':
        assert.ok(e.error && typeof e.error.type === 'string' && typeof e.error.message === 'string' && e.error.message.length > 0, `${where(i)}: malformed error ${JSON.stringify(e)}`);
        error = e.error;
        break;
      default:
        assert.fail(`${where(i)}: unknown event type ${e.type}`);
    }
  }
  if (expectError) {
    assert.ok(error, `the stream did not end with an error event: ${events.map((e) => e.type).join(',')}`);
  } else {
    assert.equal(error, null, `the stream ended with an error: ${JSON.stringify(error)}`);
    assert.ok(stopped, `the stream did not end with message_stop: ${events.map((e) => e.type).join(',')}`);
  }
  for (const b of blocks) delete b.partial;
  return { events, message, blocks, stop: messageDelta?.delta ?? null, usage: messageDelta?.usage ?? null, error };
}

const TERMINAL = ['response.completed', 'response.incomplete', 'response.failed'];

// Responses: sequence_number 0,1,2…; response.created, response.in_progress; items added with
// output_index 0,1,2…, every delta for an open item, .done events matching the deltas; exactly one
// terminal event, last. Returns { events, response (the terminal one), items (from
// output_item.done, by output_index), added }.
export function checkResponsesStream(text) {
  const raw = parseSseEvents(text).filter((e) => !e.comment);
  assert.ok(raw.length > 0, 'empty Responses stream');
  const events = raw.map((e, i) => {
    const data = parseData(e, i);
    if (e.event !== null) assert.equal(e.event, data.type, `event ${i}: "event: ${e.event}" but data.type ${data.type}`);
    assert.equal(data.sequence_number, i, `event ${i} (${data.type}) has sequence_number ${data.sequence_number}`);
    return data;
  });
  const where = (i) => `event ${i} in ${events.map((e) => e.type).join(',')}`;
  assert.equal(events[0].type, 'response.created', where(0));
  assert.equal(events[1]?.type, 'response.in_progress', where(1));
  const id = events[0].response.id;
  assert.match(id, /^resp_/);
  const added = [];
  const done = new Map();
  const acc = new Map(); // item id → accumulated delta text per kind
  let terminal = null;
  for (let i = 2; i < events.length; i++) {
    const e = events[i];
    assert.equal(terminal, null, `${where(i)}: an event after the terminal event`);
    if (TERMINAL.includes(e.type)) {
      terminal = e;
      assert.equal(e.response.id, id, `${where(i)}: terminal response id differs`);
      continue;
    }
    if (e.type === 'error') assert.fail(`${where(i)}: a bare error event: ${JSON.stringify(e)}`);
    if (e.type === 'response.output_item.added') {
      assert.equal(e.output_index, added.length, `${where(i)}: output_index ${e.output_index}, expected ${added.length}`);
      assert.ok(!added.some((a) => a.id === e.item.id), `${where(i)}: duplicate item id ${e.item.id}`);
      added.push(e.item);
      acc.set(e.item.id, { text: '', args: '', input: '', reasoning: '' });
      continue;
    }
    const item = added[e.output_index];
    assert.ok(item, `${where(i)}: output_index ${e.output_index} was never added`);
    assert.ok(!done.has(e.output_index), `${where(i)}: ${e.type} for an item already done`);
    if (e.item_id !== undefined) assert.equal(e.item_id, item.id, `${where(i)}: item_id ${e.item_id} is not output ${e.output_index}'s ${item.id}`);
    const a = acc.get(item.id);
    switch (e.type) {
      case 'response.output_text.delta':
        a.text += e.delta;
        break;
      case 'response.output_text.done':
        assert.equal(e.text, a.text, `${where(i)}: output_text.done differs from its deltas`);
        break;
      case 'response.reasoning_text.delta':
      case 'response.reasoning_summary_text.delta':
        a.reasoning += e.delta;
        break;
      case 'response.reasoning_text.done':
      case 'response.reasoning_summary_text.done':
        assert.equal(e.text, a.reasoning, `${where(i)}: reasoning done differs from its deltas`);
        break;
      case 'response.function_call_arguments.delta':
        assert.equal(item.type, 'function_call', where(i));
        a.args += e.delta;
        break;
      case 'response.function_call_arguments.done':
        assert.equal(e.arguments, a.args, `${where(i)}: arguments.done differs from its deltas`);
        break;
      case 'response.custom_tool_call_input.delta':
        assert.equal(item.type, 'custom_tool_call', where(i));
        a.input += e.delta;
        break;
      case 'response.custom_tool_call_input.done':
        assert.equal(e.input, a.input, `${where(i)}: custom input.done differs from its deltas`);
        break;
      case 'response.output_item.done':
        assert.equal(e.item.id, item.id, where(i));
        assert.equal(e.item.type, item.type, where(i));
        if (item.type === 'function_call') {
          assert.equal(e.item.arguments, a.args, `${where(i)}: the done item's arguments differ from the deltas`);
          assert.ok(e.item.arguments.length > 0, `${where(i)}: function_call with empty arguments`);
          assert.equal(e.item.call_id, item.call_id);
        }
        if (item.type === 'custom_tool_call') assert.equal(e.item.input, a.input, `${where(i)}: the done item's input differs from the deltas`);
        if (item.type === 'message') assert.equal(e.item.content.map((c) => c.text).join(''), a.text, `${where(i)}: the done message differs from the deltas`);
        done.set(e.output_index, e.item);
        break;
      case 'response.content_part.added':
      case 'response.content_part.done':
      case 'response.reasoning_summary_part.added':
      case 'response.reasoning_summary_part.done':
        break;
      default:
        assert.fail(`${where(i)}: unexpected event type ${e.type}`);
    }
  }
  assert.ok(terminal, `the stream has no terminal event (response.completed/incomplete/failed): ${events.map((e) => e.type).join(',')}`);
  const response = terminal.response;
  if (terminal.type === 'response.completed') {
    assert.equal(response.status, 'completed');
    assert.equal(done.size, added.length, `completed with items never done: ${events.map((e) => e.type).join(',')}`);
  }
  if (terminal.type !== 'response.failed') {
    const items = [...done.keys()].sort((x, y) => x - y).map((k) => done.get(k));
    assert.deepEqual(response.output, items, 'the terminal response.output differs from the output_item.done items');
  } else {
    assert.equal(response.status, 'failed');
    assert.ok(response.error && typeof response.error.code === 'string' && response.error.message, `response.failed without error.code/message: ${JSON.stringify(response.error)}`);
  }
  return { events, terminal, response, items: [...done.keys()].sort((x, y) => x - y).map((k) => done.get(k)), added };
}
