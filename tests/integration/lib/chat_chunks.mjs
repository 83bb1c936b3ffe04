// Builders for what a vLLM-style engine streams back for chat completions beyond plain text:
// reasoning (`reasoning_content`), tool calls (fragments per index, possibly interleaved), the
// `stop_reason` vLLM puts next to finish_reason when a stop string fired, usage. Each builder
// returns the SSE frames (`data: …\n\n`) ending in `data: [DONE]\n\n`, for engine scripts
// ({ frames }), and the matching non-stream chat.completion objects.

import { CREATED } from './engine.mjs';

// Frames for a list of deltas, e.g. [{ reasoning_content: 'hm' }, { content: 'Hi' },
// { tool_calls: [toolStart(0, 'call_1', 'Read'), ...] }]. The first frame carries the role; the last
// the finish reason (and vLLM's stop_reason), then a usage-only chunk when `usage` is given.
export function deltaFrames({ model, deltas, id = 'chatcmpl-scripted', finishReason = 'stop', stopReason = null, usage = null }) {
  const frames = [];
  const chunk = (delta, finish, extra = {}) => {
    const c = { id, object: 'chat.completion.chunk', created: CREATED, model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish, ...extra }] };
    frames.push(`data: ${JSON.stringify(c)}\n\n`);
  };
  chunk({ role: 'assistant', content: '' }, null);
  for (const d of deltas) chunk(d, null);
  chunk({}, finishReason, { stop_reason: stopReason });
  if (usage) frames.push(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: CREATED, model, choices: [], usage })}\n\n`);
  frames.push('data: [DONE]\n\n');
  return frames;
}

// The first fragment of a tool call at `index` (vLLM sends id, type and name once, arguments '').
export function toolStart(index, id, name) {
  return { index, id, type: 'function', function: { name, arguments: '' } };
}

// A later fragment: more argument text for the call at `index`.
export function toolArgs(index, text) {
  return { index, function: { arguments: text } };
}

// Deltas that stream one tool call: its start, then `json` (a string) cut into `pieces` parts.
export function toolCallDeltas(index, id, name, json, pieces = 3) {
  const out = [{ tool_calls: [toolStart(index, id, name)] }];
  const size = Math.max(1, Math.ceil(json.length / pieces));
  for (let i = 0; i < json.length; i += size) out.push({ tool_calls: [toolArgs(index, json.slice(i, i + size))] });
  return out;
}

// A non-stream chat.completion with any message fields (content, reasoning_content, tool_calls).
export function completionWith({ model, message, id = 'chatcmpl-scripted', finishReason = 'stop', stopReason = null, usage = { prompt_tokens: 11, completion_tokens: 5, total_tokens: 16 } }) {
  return {
    id,
    object: 'chat.completion',
    created: CREATED,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: null, reasoning_content: null, tool_calls: [], ...message }, logprobs: null, finish_reason: finishReason, stop_reason: stopReason }],
    usage,
    prompt_logprobs: null,
  };
}

// A whole tool call as it appears in a non-stream message.
export function toolCall(id, name, args) {
  return { id, type: 'function', function: { name, arguments: typeof args === 'string' ? args : JSON.stringify(args) } };
}

// Parses SSE text into [{ event, data }] (data joined over its lines), for raw-stream assertions.
export function parseSseEvents(text) {
  const out = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    if (!block.trim()) continue;
    let event = null;
    const data = [];
    let comment = false;
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(':')) comment = true;
      else if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (!data.length && comment && event === null) {
      out.push({ event: null, comment: true, data: null });
      continue;
    }
    out.push({ event, data: data.join('\n') });
  }
  return out;
}
