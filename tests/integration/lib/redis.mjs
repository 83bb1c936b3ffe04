// A real redis-server for the replay tests: one per test file, on a free loopback port, no
// persistence (--save '' --appendonly no), so nothing is written outside a temporary directory.
// stop() kills it (an outage as the gateway sees it), start() brings it back on the same port.
// Whatever is still running when the file ends is killed.

import { after } from 'node:test';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { deferred, within } from './http.mjs';

// A port the OS considers free right now (bound to port 0, then released).
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const live = new Set();
after(async () => {
  await Promise.all([...live].map((r) => r.stop()));
});
process.on('exit', () => {
  for (const r of live) r.child?.kill('SIGKILL');
});

export class RedisServer {
  lines = [];

  constructor(port) {
    this.port = port;
    this.dir = mkdtempSync(join(tmpdir(), 'e2ee-redis-'));
    this.child = null;
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running() {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  // Starts (or restarts) the server; resolves once it accepts connections.
  async start(ms = 10000) {
    if (this.running) return this;
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, '--loglevel', 'notice'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    live.add(this);
    const ready = deferred();
    const exit = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    this.exit = exit;
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        this.lines.push(line);
        if (/Ready to accept connections/.test(line)) ready.resolve();
      });
    }
    child.once('error', (err) => ready.reject(err));
    const died = exit.then(({ code, signal }) => {
      throw new Error(`redis-server on port ${this.port} exited (code ${code}, signal ${signal}) before it was ready:\n${this.lines.join('\n')}`);
    });
    await within(Promise.race([ready.promise, died]), ms, `redis-server on port ${this.port} did not become ready`);
    return this;
  }

  // Kills the server (SIGKILL: an outage, not a graceful shutdown) and waits for it to be gone.
  async stop() {
    if (!this.child) return;
    const child = this.child;
    if (this.running) child.kill('SIGKILL');
    await this.exit;
    this.child = null;
    live.delete(this);
  }

  // Removes the temporary directory (after the last stop()).
  cleanup() {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// A started redis-server on a free port.
export async function startRedis() {
  for (let attempt = 0; ; attempt++) {
    const r = new RedisServer(await freePort());
    try {
      return await r.start();
    } catch (err) {
      // Someone took the port between freePort() and the bind: try another one.
      r.cleanup();
      if (attempt >= 3) throw err;
    }
  }
}

// One Redis command over a fresh connection (RESP2); resolves with the reply: a string, a number,
// null, an array, or an Error for an error reply. For assertions on what the gateway stored.
export function redisCommand(port, ...args) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`redis ${args[0]}: no reply within 5 s`));
    }, 5000);
    socket.on('connect', () => {
      const parts = [`*${args.length}\r\n`];
      for (const a of args) parts.push(`$${Buffer.byteLength(String(a))}\r\n${a}\r\n`);
      socket.write(parts.join(''));
    });
    socket.on('data', (c) => {
      data = Buffer.concat([data, c]);
      const parsed = parseReply(data, 0);
      if (parsed) {
        clearTimeout(timer);
        socket.destroy();
        resolve(parsed.value);
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

// Parses one RESP2 reply at `at`; null when incomplete.
function parseReply(buf, at) {
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return null;
  const type = String.fromCharCode(buf[at]);
  const line = buf.toString('utf8', at + 1, eol);
  const next = eol + 2;
  if (type === '+') return { value: line, end: next };
  if (type === '-') return { value: new Error(line), end: next };
  if (type === ':') return { value: Number(line), end: next };
  if (type === '$') {
    const n = Number(line);
    if (n < 0) return { value: null, end: next };
    if (buf.length < next + n + 2) return null;
    return { value: buf.toString('utf8', next, next + n), end: next + n + 2 };
  }
  if (type === '*') {
    const n = Number(line);
    if (n < 0) return { value: null, end: next };
    const out = [];
    let pos = next;
    for (let i = 0; i < n; i++) {
      const item = parseReply(buf, pos);
      if (!item) return null;
      out.push(item.value);
      pos = item.end;
    }
    return { value: out, end: pos };
  }
  throw new Error(`unexpected RESP reply type ${type}`);
}
