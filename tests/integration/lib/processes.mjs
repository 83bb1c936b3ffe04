// Real processes for the integration tests: start e2ee-proxy / e2ee-gateway with `--listen
// http://127.0.0.1:0`, wait for the one start line, read the bound URL(s) from it (no port is ever
// picked by the tests), keep every stdout/stderr line (the "no plaintext in logs" checks read
// them), and stop with SIGTERM expecting exit code 0 within a bound. Whatever a test leaves
// running is killed when the test file ends.

import { after } from 'node:test';
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { deferred, within } from './http.mjs';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export function binDir() {
  return process.env.E2EE_BIN_DIR || join(repoRoot, 'build/release/src/app');
}

export function binaryPath(name) {
  const path = join(binDir(), name);
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`${path} is not an executable: build the ${name} target (cmake --build build/release), or set E2EE_BIN_DIR`);
  }
  return path;
}

const live = new Set();

after(async () => {
  await Promise.all([...live].map((p) => p.kill()));
});
process.on('exit', () => {
  for (const p of live) {
    try {
      p.child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

export class Proc {
  lines = []; // {stream: 'stdout'|'stderr', line}
  #lineWaiters = [];

  constructor(name, child) {
    this.name = name;
    this.child = child;
    this.exit = new Promise((resolve) => {
      child.on('exit', (code, signal) => resolve({ code, signal }));
    });
    this.closed = new Promise((resolve) => child.on('close', resolve));
    for (const stream of ['stdout', 'stderr']) {
      const rl = createInterface({ input: child[stream], crlfDelay: Infinity });
      rl.on('line', (line) => this.#onLine(stream, line));
    }
  }

  #onLine(stream, line) {
    const entry = { stream, line };
    this.lines.push(entry);
    if (process.env.E2EE_TEST_ECHO) process.stderr.write(`[${this.name} ${stream}] ${line}\n`);
    for (const w of this.#lineWaiters.splice(0)) {
      if (w.test(entry)) w.d.resolve(entry);
      else this.#lineWaiters.push(w);
    }
  }

  get output() {
    return this.lines.map((l) => `${l.stream}: ${l.line}`).join('\n');
  }

  // Resolves with the first line (already seen or future) for which test({stream, line}) holds.
  waitForLine(test, ms = 10000, what = 'a matching line') {
    const pred = test instanceof RegExp ? (e) => test.test(e.line) : test;
    const seen = this.lines.find(pred);
    if (seen) return Promise.resolve(seen);
    const d = deferred();
    this.#lineWaiters.push({ test: pred, d });
    const exited = this.exit.then(({ code, signal }) => {
      throw new Error(`${this.name} exited (code ${code}, signal ${signal}) before printing ${what}; output:\n${this.output}`);
    });
    return within(Promise.race([d.promise, exited]), ms, `${this.name}: ${what}; output so far:\n${this.output}`);
  }

  get running() {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  // Throws (with the exit status and the last lines of output) if the process has died: a crash
  // mid-test must be reported as such, not as connection errors in every later test.
  assertRunning() {
    if (this.running) return;
    const tail = this.lines.slice(-40).map((l) => `${l.stream}: ${l.line}`).join('\n');
    throw new Error(`${this.name} is no longer running (exit code ${this.child.exitCode}, signal ${this.child.signalCode}); last output:\n${tail}`);
  }

  // SIGTERM, then expects exit code 0 within `ms`; a process that hangs is killed and the call
  // throws.
  async stop(ms = 10000) {
    if (this.child.exitCode !== null || this.child.signalCode !== null) {
      live.delete(this);
      const { code, signal } = await this.exit;
      if (code !== 0) throw new Error(`${this.name} had already exited (code ${code}, signal ${signal}); output:\n${this.output}`);
      return { code, signal };
    }
    this.stopped = true;
    this.child.kill('SIGTERM');
    let result;
    try {
      result = await within(this.exit, ms, `${this.name} did not exit after SIGTERM`);
    } catch (err) {
      await this.kill();
      throw err;
    } finally {
      live.delete(this);
    }
    await this.closed;
    if (result.code !== 0) {
      throw new Error(`${this.name} exited with code ${result.code} (signal ${result.signal}) after SIGTERM; output:\n${this.output}`);
    }
    return result;
  }

  // SIGKILL and wait (cleanup, "process killed" faults).
  async kill() {
    this.stopped = true;
    live.delete(this);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exit;
  }
}

// Starts `name` from binDir() with `args`; resolves once its start line is printed, with
// { proc, url, urls, startLine }. The start line is `<name> <version> listening on URL[, URL…]; …`.
// E2EE_TEST_THREADS=N adds `--threads N` where a test does not choose (the tsan stage runs the
// binaries with more worker threads than this machine has cores).
export async function start(name, args, { env = {}, startTimeoutMs = 20000 } = {}) {
  const path = binaryPath(name);
  if (process.env.E2EE_TEST_THREADS && !args.includes('--threads')) args = [...args, '--threads', process.env.E2EE_TEST_THREADS];
  const child = spawn(path, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const proc = new Proc(name, child);
  live.add(proc);
  const spawnError = new Promise((_, reject) => child.once('error', reject));
  const entry = await Promise.race([
    proc.waitForLine((e) => e.stream === 'stdout' && /\blistening on\b/.test(e.line), startTimeoutMs, 'its start line ("listening on …")'),
    spawnError,
  ]);
  const listening = entry.line.slice(entry.line.indexOf('listening on') + 'listening on'.length).split(';')[0];
  const urls = listening.match(/https?:\/\/[^\s,;]+/g) ?? [];
  if (!urls.length) throw new Error(`${name}: no URL in its start line: ${entry.line}`);
  for (const u of urls) {
    const port = Number(new URL(u).port);
    if (!port) throw new Error(`${name}: start line names ${u} without a bound port: ${entry.line}`);
  }
  proc.url = urls[0].replace(/\/$/, '');
  proc.urls = urls.map((u) => u.replace(/\/$/, ''));
  proc.startLine = entry.line;
  return proc;
}

export function startGateway(args, opts) {
  return start('e2ee-gateway', ['--listen', 'http://127.0.0.1:0', ...args], opts);
}

export function startProxy(args, opts) {
  return start('e2ee-proxy', args.includes('--listen') ? args : ['--listen', 'http://127.0.0.1:0', ...args], opts);
}

// Asserts that `marker` appears in none of the lines the processes printed.
export function linesContaining(procs, marker) {
  const hits = [];
  for (const p of procs) for (const l of p.lines) if (l.line.includes(marker)) hits.push(`${p.name} ${l.stream}: ${l.line}`);
  return hits;
}
