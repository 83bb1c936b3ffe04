// A raw HTTP(S) client for the tests: exact bytes in, exact bytes out, no connection reuse (each
// request its own socket, so nothing lingers after a test), a hard timeout on every call.

import http from 'node:http';
import https from 'node:https';

// Sends one request. Resolves with { status, headers, body: Buffer, text, json() } once the whole
// body has arrived; with { stream: true } it resolves as soon as the headers are in, with `res`
// (an async iterable of Buffers) instead of `body`.
export function request(url, { method = 'GET', headers = {}, body, stream = false, timeoutMs = 30000, tls = {} } = {}) {
  const target = new URL(url);
  const lib = target.protocol === 'https:' ? https : http;
  const payload = body === undefined ? undefined : Buffer.isBuffer(body) || body instanceof Uint8Array ? Buffer.from(body) : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const allHeaders = { ...headers };
  if (payload !== undefined && !Object.keys(allHeaders).some((h) => h.toLowerCase() === 'content-length')) {
    allHeaders['content-length'] = String(payload.length);
  }
  return new Promise((resolve, reject) => {
    const req = lib.request(target, { method, headers: allHeaders, agent: false, ...tls }, (res) => {
      if (stream) {
        resolve(wrap(res, null));
        return;
      }
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => resolve(wrap(res, Buffer.concat(parts))));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error(`${method} ${url}: response aborted after ${Buffer.concat(parts).length} bytes`)));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

function wrap(res, body) {
  return {
    status: res.statusCode,
    headers: res.headers,
    res,
    body,
    get text() {
      return body === null ? null : body.toString('utf8');
    },
    json() {
      try {
        return JSON.parse(body.toString('utf8'));
      } catch (err) {
        throw new Error(`expected a JSON body (status ${res.statusCode}), got: ${body.toString('utf8').slice(0, 500)}`);
      }
    },
  };
}

// Reads an IncomingMessage to the end; resolves to { body, complete } where complete is false when
// the connection ended before the message did (e.g. a chunked stream cut without its last chunk).
export function readAll(res) {
  return new Promise((resolve) => {
    const parts = [];
    let settled = false;
    const done = (complete) => {
      if (settled) return;
      settled = true;
      resolve({ body: Buffer.concat(parts), complete });
    };
    res.on('data', (c) => parts.push(c));
    res.on('end', () => done(res.complete));
    res.on('error', () => done(false));
    res.on('close', () => done(res.complete));
  });
}

// Reads a JSON request body off an http.IncomingMessage (server side).
export function readBody(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

// Starts an http.Server on 127.0.0.1 with an OS-assigned port; resolves to { server, url, close }.
// close() ends every open connection too, so a stalled stream never keeps a test file alive.
export async function listen(handler) {
  const server = http.createServer(handler);
  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    port,
    sockets,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// A promise plus its resolvers (Promise.withResolvers is Node 22+).
export function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

// Rejects with `message` if `promise` has not settled within `ms`.
export function within(promise, ms, message) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${message} (not within ${ms} ms)`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// Sends a hand-written HTTP/1.1 request over a plain socket, writing `body` (Buffer) in 64 KiB
// pieces and ignoring write errors (a server may answer and close before reading it all, e.g. 413).
// Resolves to { status, headers, body } once one whole response has arrived, or rejects.
//
// With expectContinue the request carries `Expect: 100-continue` and the body is only sent after an
// interim 100 response (or after 2 s without any answer, as RFC 9110 §10.1.1 lets a client do).
export async function rawExchange(url, { method = 'POST', path, headers = {}, body = Buffer.alloc(0), timeoutMs = 20000, expectContinue = false } = {}) {
  const net = await import('node:net');
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(target.port), target.hostname);
    let data = Buffer.alloc(0);
    let settled = false;
    const finish = (err, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(() => finish(new Error(`${method} ${path}: no complete response within ${timeoutMs} ms; got ${data.length} bytes: ${data.toString('latin1').slice(0, 300)}`)), timeoutMs);
    let sendBody = null;
    const tryParse = (ended) => {
      if (/^HTTP\/1\.1 100 /.test(data.toString('latin1', 0, 13))) {
        const interimEnd = data.indexOf('\r\n\r\n');
        if (interimEnd < 0) return;
        data = data.subarray(interimEnd + 4);
        sendBody?.();
      }
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) {
        if (ended) finish(new Error(`connection closed without a response (${data.length} bytes: ${data.toString('latin1').slice(0, 200)})`));
        return;
      }
      const head = data.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(head[0].split(' ')[1]);
      const hdrs = {};
      for (const l of head.slice(1)) {
        const i = l.indexOf(':');
        hdrs[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const rest = data.subarray(end + 4);
      const len = hdrs['content-length'] !== undefined ? Number(hdrs['content-length']) : null;
      if (len !== null && rest.length >= len) finish(null, { status, headers: hdrs, body: rest.subarray(0, len) });
      else if (ended) finish(null, { status, headers: hdrs, body: rest, truncated: len !== null });
    };
    socket.on('data', (c) => {
      data = Buffer.concat([data, c]);
      tryParse(false);
    });
    socket.on('end', () => tryParse(true));
    socket.on('close', () => tryParse(true));
    socket.on('error', () => tryParse(true));
    socket.on('connect', async () => {
      const lines = [`${method} ${path} HTTP/1.1`, `host: ${target.host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
      if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-length')) lines.push(`content-length: ${body.length}`);
      if (expectContinue) lines.push('expect: 100-continue');
      socket.write(lines.join('\r\n') + '\r\n\r\n');
      if (expectContinue) {
        await new Promise((r) => {
          const fallback = setTimeout(r, 2000);
          sendBody = () => {
            clearTimeout(fallback);
            r();
          };
        });
      }
      for (let i = 0; i < body.length && !settled && !socket.destroyed; i += 65536) {
        const ok = socket.write(body.subarray(i, i + 65536));
        if (!ok) await new Promise((r) => socket.once('drain', r).once('close', r));
      }
    });
  });
}
