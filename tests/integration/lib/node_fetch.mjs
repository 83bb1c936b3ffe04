// A `fetch` for the OpenAI SDK built on node:http/https, so that an SDK client can trust a test CA
// (Node's global fetch offers no per-call CA without undici's Agent, which is not a dependency),
// and a wrapper that records exactly what the SDK sent (method, URL, headers, body bytes).

import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';

// fetch(url, init) over node:http(s); `tls` options (ca, rejectUnauthorized, …) apply to https.
export function nodeFetch(tls = {}) {
  return (input, init = {}) =>
    new Promise((resolve, reject) => {
      const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
      const lib = url.protocol === 'https:' ? https : http;
      const headers = {};
      for (const [k, v] of new Headers(init.headers ?? {})) headers[k] = v;
      const body = init.body === undefined || init.body === null ? undefined : Buffer.from(init.body);
      if (body !== undefined) headers['content-length'] = String(body.length);
      const req = lib.request(url, { method: init.method ?? 'GET', headers, agent: false, ...(url.protocol === 'https:' ? tls : {}) }, (res) => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          if (Array.isArray(v)) for (const x of v) h.append(k, x);
          else if (v !== undefined) h.set(k, v);
        }
        const nullBody = res.statusCode === 204 || res.statusCode === 304 || init.method === 'HEAD';
        if (nullBody) res.resume();
        resolve(new Response(nullBody ? null : Readable.toWeb(res), { status: res.statusCode, statusText: res.statusMessage, headers: h }));
      });
      const signal = init.signal;
      if (signal) {
        if (signal.aborted) req.destroy(signal.reason ?? new Error('aborted'));
        else signal.addEventListener('abort', () => req.destroy(signal.reason ?? new Error('aborted')), { once: true });
      }
      req.on('error', reject);
      req.end(body);
    });
}

// Wraps a fetch so every call is pushed onto `log` as { method, url, headers, body (Buffer) }.
export function recordingFetch(inner, log) {
  return async (input, init = {}) => {
    const url = typeof input === 'string' || input instanceof URL ? String(input) : input.url;
    const headers = {};
    for (const [k, v] of new Headers(init.headers ?? {})) headers[k] = v;
    const body = init.body === undefined || init.body === null ? Buffer.alloc(0) : Buffer.from(init.body);
    log.push({ method: init.method ?? 'GET', url, headers, body });
    return inner(input, init);
  };
}
