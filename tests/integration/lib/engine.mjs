// A scripted OpenAI-compatible engine (what vLLM is behind a Chutes instance or e2ee-gateway):
// GET /v1/models, POST /v1/chat/completions, /v1/completions, /tokenize. Every request is recorded
// with its raw body bytes; what each request gets back is scripted per request (a queue, or a
// matcher), with an echo answer by default so that markers in a prompt come back in the completion.
//
// Stream frames are what vLLM writes: `data: <chunk JSON>\n\n` per event, a usage-only chunk when
// `stream_options.include_usage` is set (and `usage` on every chunk with `continuous_usage_stats`),
// then `data: [DONE]\n\n`.

import { listen, readBody, deferred, within } from './http.mjs';

export const CREATED = 1700000000;

export function chatCompletion({ model, content, id = 'chatcmpl-test', usage = { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 }, finishReason = 'stop' }) {
  return {
    id,
    object: 'chat.completion',
    created: CREATED,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content, reasoning_content: null, tool_calls: [] }, logprobs: null, finish_reason: finishReason, stop_reason: null }],
    usage,
    prompt_logprobs: null,
  };
}

export function textCompletion({ model, text, id = 'cmpl-test' }) {
  return {
    id,
    object: 'text_completion',
    created: CREATED,
    model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: 'stop', stop_reason: null }],
    usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
  };
}

// The SSE frames vLLM sends for a streamed chat completion of `pieces`.
export function chatFrames({ model, pieces, id = 'chatcmpl-stream', includeUsage = false, continuousUsage = false, finishReason = 'stop' }) {
  const frames = [];
  let completionTokens = 0;
  const usage = () => ({ prompt_tokens: 7, total_tokens: 7 + completionTokens, completion_tokens: completionTokens });
  const chunk = (delta, finish) => {
    const c = {
      id,
      object: 'chat.completion.chunk',
      created: CREATED,
      model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    };
    if (continuousUsage) c.usage = usage();
    frames.push(`data: ${JSON.stringify(c)}\n\n`);
  };
  chunk({ role: 'assistant', content: '' }, null);
  for (const piece of pieces) {
    completionTokens += 1;
    chunk({ content: piece }, null);
  }
  chunk({ content: '' }, finishReason);
  if (includeUsage) {
    frames.push(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: CREATED, model, choices: [], usage: usage() })}\n\n`);
  }
  frames.push('data: [DONE]\n\n');
  return frames;
}

export function completionFrames({ model, pieces, id = 'cmpl-stream', includeUsage = false }) {
  const frames = pieces.map(
    (text, i) => `data: ${JSON.stringify({ id, object: 'text_completion', created: CREATED, model, choices: [{ index: 0, text, logprobs: null, finish_reason: i === pieces.length - 1 ? 'stop' : null, stop_reason: null }], usage: null })}\n\n`,
  );
  if (includeUsage) {
    frames.push(`data: ${JSON.stringify({ id, object: 'text_completion', created: CREATED, model, choices: [], usage: { prompt_tokens: 5, completion_tokens: pieces.length, total_tokens: 5 + pieces.length } })}\n\n`);
  }
  frames.push('data: [DONE]\n\n');
  return frames;
}

function lastUserText(json) {
  const messages = Array.isArray(json?.messages) ? json.messages : [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const c = messages[i]?.content;
    if (typeof c === 'string') return c;
    if (Array.isArray(c)) return c.map((p) => p?.text ?? '').join('');
  }
  return typeof json?.prompt === 'string' ? json.prompt : '';
}

// The default answer to a request no script claimed: echo the last user text.
export function defaultScript(rec) {
  const json = rec.json ?? {};
  const model = json.model ?? 'unknown';
  const echo = `echo: ${lastUserText(json)}`;
  const streamOpts = json.stream_options ?? {};
  if (rec.path.startsWith('/tokenize')) {
    const text = typeof json.prompt === 'string' ? json.prompt : lastUserText(json);
    const tokens = [...Buffer.from(text)];
    return { json: { count: tokens.length, max_model_len: 8192, tokens, token_strs: null } };
  }
  if (rec.path.startsWith('/v1/completions')) {
    const pieces = echo.split(/(?<= )/);
    if (json.stream) return { frames: completionFrames({ model, pieces, includeUsage: streamOpts.include_usage === true }) };
    return { json: textCompletion({ model, text: echo }) };
  }
  const pieces = echo.split(/(?<= )/);
  if (json.stream) {
    return { frames: chatFrames({ model, pieces, includeUsage: streamOpts.include_usage === true, continuousUsage: streamOpts.continuous_usage_stats === true }) };
  }
  return { json: chatCompletion({ model, content: echo }) };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Engine {
  requests = [];
  #queue = [];
  #matchers = [];
  #waiters = [];
  #server;
  models;

  constructor(server, models) {
    this.#server = server;
    this.models = models;
    this.url = server.url;
  }

  // The next scripted requests (POSTs to model endpoints) take these scripts in order.
  enqueue(...scripts) {
    this.#queue.push(...scripts);
    return this;
  }

  // Requests for which `match(rec)` holds take `script` (an object, or a function of rec returning
  // one), at most `times` times. Matchers win over the queue.
  when(match, script, { times = Infinity } = {}) {
    this.#matchers.push({ match, script, times });
    return this;
  }

  reset() {
    this.#queue.length = 0;
    this.#matchers.length = 0;
    this.requests.length = 0;
  }

  get count() {
    return this.requests.length;
  }

  // Resolves once `n` requests in total have been received.
  waitForRequests(n, ms = 10000) {
    if (this.requests.length >= n) return Promise.resolve(this.requests.slice(0, n));
    const d = deferred();
    this.#waiters.push({ n, d });
    return within(d.promise, ms, `engine: expected ${n} request(s), got ${this.requests.length}`);
  }

  // Stops accepting connections and cuts every open one ("engine down" / "engine killed").
  close() {
    return this.#server.close();
  }

  // Cuts every open connection but keeps listening.
  dropConnections() {
    for (const s of this.#server.sockets) s.destroy();
  }

  #pick(rec) {
    for (const m of this.#matchers) {
      if (m.times > 0 && m.match(rec)) {
        m.times -= 1;
        return typeof m.script === 'function' ? m.script(rec) : m.script;
      }
    }
    if (this.#queue.length) {
      const s = this.#queue.shift();
      return typeof s === 'function' ? s(rec) : s;
    }
    return defaultScript(rec);
  }

  async handle(req, res) {
    const body = await readBody(req);
    let json;
    try {
      json = body.length ? JSON.parse(body.toString('utf8')) : undefined;
    } catch {
      json = undefined;
    }
    const url = new URL(req.url, 'http://engine');
    const closed = deferred();
    res.on('close', () => closed.resolve(!res.writableFinished));
    const rec = {
      method: req.method,
      path: url.pathname,
      query: url.search,
      headers: req.headers,
      body,
      json,
      at: Date.now(),
      // Resolves when the response ends or is cut; true if it was cut before finishing.
      closed: closed.promise,
    };
    if (req.method === 'GET' && url.pathname === '/v1/models') {
      send(res, 200, { object: 'list', data: this.models });
      return;
    }
    if (req.method === 'GET' && url.pathname === '/health') {
      send(res, 200, {});
      return;
    }
    this.requests.push(rec);
    for (const w of this.#waiters.splice(0)) {
      if (this.requests.length >= w.n) w.d.resolve(this.requests.slice(0, w.n));
      else this.#waiters.push(w);
    }
    const known = ['/v1/chat/completions', '/v1/completions', '/tokenize', '/detokenize', '/v1/embeddings'];
    if (req.method !== 'POST' || !known.includes(url.pathname)) {
      send(res, 404, { object: 'error', message: `Not Found: ${req.method} ${url.pathname}`, type: 'NotFoundError', param: null, code: 404 });
      return;
    }
    await runScript(this.#pick(rec), rec, req, res);
  }
}

function send(res, status, value, headers = {}) {
  const payload = Buffer.isBuffer(value) ? value : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': payload.length, ...headers });
  res.end(payload);
}

async function runScript(script, rec, req, res) {
  if (script.handler) {
    await script.handler(req, res, rec);
    return;
  }
  if (script.garbage !== undefined) {
    // Not HTTP at all: raw bytes on the socket, then the connection is cut.
    res.socket.end(Buffer.from(script.garbage));
    return;
  }
  if (script.stallBeforeFirstByte) {
    script.onStall?.(rec);
    return; // never answers; the connection lives until the peer or close() cuts it
  }
  const status = script.status ?? 200;
  if (script.frames) {
    res.writeHead(status, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...(script.headers ?? {}) });
    res.flushHeaders();
    const frames = script.frames.map((f) => Buffer.from(f));
    for (let i = 0; i < frames.length; i++) {
      if (res.destroyed) return;
      if (script.stallAfterFrames === i) {
        script.onStall?.(rec);
        return;
      }
      if (script.closeAfterFrames === i) {
        const cut = frames[i].subarray(0, script.partialBytes ?? Math.floor(frames[i].length / 2));
        res.socket.write(chunked(cut), () => res.socket.destroy());
        script.onClose?.(rec);
        return;
      }
      res.write(frames[i]);
      if (script.paceMs) await sleep(script.paceMs);
    }
    res.end();
    return;
  }
  if (script.json !== undefined) {
    send(res, status, script.json, script.headers);
    return;
  }
  send(res, status, script.body ?? '', { 'content-type': script.contentType ?? 'application/json', ...(script.headers ?? {}) });
}

// One chunk of HTTP/1.1 chunked transfer encoding, written straight to the socket so the
// connection can be cut after a partial SSE frame.
function chunked(bytes) {
  return Buffer.concat([Buffer.from(bytes.length.toString(16) + '\r\n'), bytes, Buffer.from('\r\n')]);
}

export const DEFAULT_MODELS = [{ id: 'test/model', object: 'model', created: CREATED, owned_by: 'vllm', root: 'test/model', parent: null, max_model_len: 8192 }];

export async function startEngine({ models = DEFAULT_MODELS } = {}) {
  let engine;
  const server = await listen((req, res) => {
    engine.handle(req, res).catch((err) => {
      if (!res.headersSent) send(res, 500, { error: String(err) });
      else res.destroy();
    });
  });
  engine = new Engine(server, models);
  return engine;
}
