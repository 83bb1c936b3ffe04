// The whole local path the translation tests (sdk_anthropic, sdk_responses, agents) drive: a client
// → e2ee-proxy (plain http listener) → e2ee-gateway (the TEE side, confidential_compute=true, one
// model) → the scripted engine (lib/engine.mjs). The engine is the ground truth: it decides every
// answer and records every request the gateway decrypted for it. Optionally a recording relay sits
// in front of the proxy to keep exactly what a client (an agent) sent.
//
// Importing this module checks tests/node_modules first (lib/deps.mjs): a missing or mismatched
// package fails the test file with "run scripts/setup".

import './deps.mjs';
import http from 'node:http';
import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startEngine, CREATED } from './engine.mjs';
import { startGateway, startProxy } from './processes.mjs';
import { listen, deferred } from './http.mjs';

const testsDir = fileURLToPath(new URL('../../', import.meta.url));

export async function loadAnthropic() {
  return (await import('@anthropic-ai/sdk')).default;
}

// tests/node_modules/.bin/<name> (claude, codex), or a failure naming the fix.
export function agentBinary(name) {
  const path = `${testsDir}node_modules/.bin/${name}`;
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`${path} is missing or not executable: run scripts/setup (npm ci in tests/ installs it with its native binary)`);
  }
  return path;
}

// Starts engine, gateway and proxy for `model`; resolves to { engine, gateway, proxy, procs, close }.
// `close` stops both processes (expecting a clean SIGTERM exit) and the engine.
export async function startStack({ model, chuteId = '5b0f7c2e-1d3a-4e6f-8a9b-0c1d2e3f4a5b', proxyArgs = [], gatewayArgs = [] } = {}) {
  const engine = await startEngine({
    models: [{ id: model, object: 'model', created: CREATED, owned_by: 'vllm', root: model, parent: null, max_model_len: 131072 }],
  });
  const gateway = await startGateway(['--backend', engine.url, '--model', model, '--chute-id', chuteId, '--confidential', 'true', ...gatewayArgs]);
  const proxy = await startProxy(['--upstream', gateway.url, '--models-upstream', gateway.url, ...proxyArgs]);
  const procs = [gateway, proxy];
  return {
    engine,
    gateway,
    proxy,
    procs,
    // Throws if either process has died (a crash is reported where it happened).
    assertRunning() {
      for (const p of procs) if (!p.stopped) p.assertRunning();
    },
    // (lib/processes.mjs kills whatever is left when the file ends, possibly before this runs.)
    async close() {
      const errors = [];
      for (const p of [proxy, gateway]) {
        if (p.stopped) continue;
        try {
          await p.stop();
        } catch (err) {
          errors.push(err);
        }
      }
      await engine.close();
      if (errors.length) throw errors[0];
    },
  };
}

// The engine requests that were chat completions (what the translators produced), in order.
export function chatRequests(engine, from = 0) {
  return engine.requests.slice(from).filter((r) => r.path === '/v1/chat/completions');
}

// A `fetch` for the SDKs that records every exchange: { method, url, body (request text), status,
// headers, text (the response body so far, exactly as the proxy sent it), raw: Promise<string> (the
// whole body once it ended or failed), error }. The body is observed on its way to the SDK, so the
// SDK's own parsing is untouched; `onChunk(entry, text)` sees it live.
export function recordingFetch({ onChunk } = {}) {
  const exchanges = [];
  const fetchImpl = async (input, init = {}) => {
    const url = typeof input === 'string' || input instanceof URL ? String(input) : input.url;
    const entry = { method: init.method ?? 'GET', url, body: typeof init.body === 'string' ? init.body : init.body ? Buffer.from(init.body).toString('utf8') : '', text: '', error: null };
    exchanges.push(entry);
    const res = await fetch(input, init);
    entry.status = res.status;
    entry.headers = Object.fromEntries(res.headers);
    if (!res.body) {
      entry.raw = Promise.resolve('');
      return res;
    }
    const decoder = new TextDecoder();
    const ended = deferred();
    entry.raw = ended.promise;
    const tap = new TransformStream({
      transform(chunk, controller) {
        const t = decoder.decode(chunk, { stream: true });
        entry.text += t;
        onChunk?.(entry, t);
        controller.enqueue(chunk);
      },
      flush() {
        entry.text += decoder.decode();
        ended.resolve(entry.text);
      },
    });
    res.body.pipeTo(tap.writable).catch((err) => {
      entry.error = err;
      ended.resolve(entry.text);
    });
    return new Response(tap.readable, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
  return { fetch: fetchImpl, exchanges };
}

// A relay in front of `target` that records each request (method, url with query, headers, body
// text) and pipes request and response through unchanged and unbuffered (SSE keeps flowing).
export async function startRecordingRelay(target) {
  const requests = [];
  const server = await listen((req, res) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      const entry = { method: req.method, url: req.url, headers: req.headers, body: body.toString('utf8'), status: null };
      requests.push(entry);
      const up = http.request(new URL(req.url, target), { method: req.method, headers: { ...req.headers, host: new URL(target).host }, agent: false }, (upRes) => {
        entry.status = upRes.statusCode;
        res.writeHead(upRes.statusCode, upRes.headers);
        upRes.pipe(res);
      });
      up.on('error', () => res.destroy());
      res.on('close', () => up.destroy());
      up.end(body);
    });
  });
  return { url: server.url, requests, close: server.close };
}
