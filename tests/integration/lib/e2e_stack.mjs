// Shared pieces for the end-to-end files (proxy_gateway, tls_modes, faults, log_hygiene):
// e2ee-proxy → e2ee-gateway → the scripted engine on loopback, a recording HTTP relay that sits
// between two processes and keeps every request head it forwards, curl / openssl as child
// processes, the OpenAI / Anthropic error-shape checks and SSE helpers, a free port, and a
// process's RSS.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { listen, within } from './http.mjs';
import { startEngine } from './engine.mjs';
import { startGateway, startProxy } from './processes.mjs';
import { parseSse } from './chutes_peer.mjs';

export const MODEL = 'acme/Model-TEE';
export const CHUTE = '5b0c9e1a-7d3f-4e2b-9a8c-1f0e2d3c4b5a';
export const ENGINE_MODELS = [{ id: MODEL, object: 'model', created: 1700000000, owned_by: 'vllm', root: MODEL, parent: null, max_model_len: 8192 }];

// Starts the engine (unless given), a gateway in front of it (confidential unless told otherwise)
// and, unless `proxy: false`, a proxy pointed at the gateway (through a recording relay with
// `record: true`).
export async function startStack({ confidential = true, gatewayArgs = [], proxyArgs = [], proxyEnv = {}, gatewayEnv = {}, proxy = true, record = false, engine } = {}) {
  engine ??= await startEngine({ models: ENGINE_MODELS });
  const gateway = await startGateway(['--backend', engine.url, '--model', MODEL, '--chute-id', CHUTE, '--confidential', String(confidential), ...gatewayArgs], { env: gatewayEnv });
  let recorder = null;
  let upstream = gateway.url;
  if (record) {
    recorder = await startRecorder(gateway.url);
    upstream = recorder.url;
  }
  let p = null;
  if (proxy) p = await startProxy(['--upstream', upstream, '--models-upstream', upstream, ...proxyArgs], { env: proxyEnv });
  return { engine, gateway, proxy: p, recorder };
}

// An HTTP relay in front of `target`: every request is recorded ({method, path, headers,
// rawHeaders: [[name, value], …] as received, at}) and forwarded unchanged, bodies streamed both
// ways; a cut on either side is passed on.
export async function startRecorder(target) {
  const t = new URL(target);
  const requests = [];
  const server = await listen((req, res) => {
    const rawHeaders = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) rawHeaders.push([req.rawHeaders[i], req.rawHeaders[i + 1]]);
    requests.push({ method: req.method, path: req.url, headers: req.headers, rawHeaders, at: Date.now() });
    const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers, agent: false }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
      ur.on('aborted', () => res.destroy());
    });
    up.on('error', () => res.destroy());
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  });
  return { url: server.url, requests, close: () => server.close() };
}

// A TCP port that was free a moment ago (bound on port 0, then closed).
export async function freePort() {
  const srv = net.createServer();
  await new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

// Runs a command to completion: { code, signal, stdout (Buffer), stderr (string) }.
export function run(cmd, args, { env = {}, timeoutMs = 30000, input } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (c) => out.push(c));
    child.stderr.on('data', (c) => err.push(c));
    child.on('error', reject);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

// curl with the status code appended after the body: { status, body, code (exit), stderr }.
export async function curl(args, opts) {
  const r = await run('curl', ['-sS', '--max-time', '30', '-w', '\n%{http_code}', ...args], opts);
  const text = r.stdout.toString('utf8');
  const nl = text.lastIndexOf('\n');
  return { status: Number(text.slice(nl + 1)), body: text.slice(0, nl), code: r.code, stderr: r.stderr };
}

// A process's resident set size in KiB, read from /proc.
export function rssKiB(pid) {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

// ---------------------------------------------------------------------------------------------
// Shapes

const bodyJson = (res) => {
  const text = res.text ?? (Buffer.isBuffer(res.body) ? res.body.toString('utf8') : res.body);
  try {
    return JSON.parse(text);
  } catch {
    assert.fail(`expected a JSON body (status ${res.status}), got: ${String(text).slice(0, 500)}`);
  }
};

// {"error":{"message": non-empty string, "type": string, …}} with Content-Type application/json.
export function assertOpenAIError(res, status) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text ?? res.body}`);
  assert.match(String(res.headers['content-type']), /application\/json/);
  const body = bodyJson(res);
  assert.ok(body.error && typeof body.error === 'object', `not an OpenAI error: ${JSON.stringify(body)}`);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0, 'empty error message');
  assert.equal(typeof body.error.type, 'string', JSON.stringify(body));
  return body.error;
}

// {"type":"error","error":{"type": string, "message": non-empty string}}.
export function assertAnthropicError(res, status) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text ?? res.body}`);
  assert.match(String(res.headers['content-type']), /application\/json/);
  const body = bodyJson(res);
  assert.equal(body.type, 'error', `not an Anthropic error: ${JSON.stringify(body)}`);
  assert.equal(typeof body.error?.type, 'string', JSON.stringify(body));
  assert.equal(typeof body.error?.message, 'string');
  assert.ok(body.error.message.length > 0, 'empty error message');
  return body.error;
}

export function ssePayloads(text) {
  return parseSse(text).events.map((e) => e.data);
}

// A well-formed chat/completions SSE body ending in exactly one `data: [DONE]`; returns the JSON
// events before it.
export function assertWellFormedStream(text) {
  assert.ok(text.endsWith('data: [DONE]\n\n'), `stream does not end with data: [DONE]: ${JSON.stringify(text.slice(-300))}`);
  const payloads = ssePayloads(text);
  assert.equal(payloads.filter((p) => p === '[DONE]').length, 1, 'exactly one [DONE]');
  assert.equal(payloads.at(-1), '[DONE]');
  return payloads.slice(0, -1).map((p) => {
    try {
      return JSON.parse(p);
    } catch {
      assert.fail(`event is not JSON: ${p}`);
    }
  });
}

export const contentOf = (events) => events.map((e) => e.choices?.[0]?.delta?.content ?? e.choices?.[0]?.text ?? '').join('');

export { within };
