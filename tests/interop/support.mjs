// Shared plumbing for the interop tests: dependency checks, the crypto_oracle client, and byte
// helpers. The tests are a required part of the suite, so every missing prerequisite throws with
// a message naming the fix instead of letting a test skip.

import { after } from 'node:test';
import { spawn } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { randomBytes, randomInt } from 'node:crypto';

const testsDir = new URL('../', import.meta.url);

// Every pinned package must be installed at exactly the pinned version: a stale node_modules
// (lock file changed, scripts/setup not re-run) would silently test against other code.
function checkNodeModules() {
  const manifest = JSON.parse(readFileSync(new URL('package.json', testsDir), 'utf8'));
  for (const [name, pinned] of Object.entries(manifest.dependencies ?? {})) {
    let installed;
    try {
      installed = JSON.parse(readFileSync(new URL(`node_modules/${name}/package.json`, testsDir), 'utf8')).version;
    } catch {
      throw new Error(`tests/node_modules has no ${name}: run scripts/setup (it runs npm ci in tests/)`);
    }
    if (installed !== pinned) {
      throw new Error(`tests/node_modules has ${name}@${installed} but tests/package.json pins ${pinned}: run scripts/setup`);
    }
  }
}
checkNodeModules();

// Imported only after the check above, so a missing package reports the fix, not a resolver trace.
export const { ml_kem768 } = await import('@noble/post-quantum/ml-kem.js');
export const { secp256k1 } = await import('@noble/curves/secp256k1.js');
export const { ed25519, x25519, ED25519_TORSION_SUBGROUP } = await import('@noble/curves/ed25519.js');
export const { chacha20poly1305, xchacha20poly1305 } = await import('@noble/ciphers/chacha.js');
export const { keccak_256, sha3_256 } = await import('@noble/hashes/sha3.js');

export function oraclePath() {
  const path = process.env.E2EE_CRYPTO_ORACLE;
  if (!path) {
    throw new Error('E2EE_CRYPTO_ORACLE is not set: run these tests through ctest (or set it to the built crypto_oracle)');
  }
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`E2EE_CRYPTO_ORACLE=${path} is not an executable: build the crypto_oracle target`);
  }
  return path;
}

// One crypto_oracle process for a whole test file. Requests are pipelined: batch() writes every
// line at once and collects the answers in order, so thousands of operations cost one round trip
// through the pipe rather than thousands.
export class Oracle {
  #child;
  #pending = [];
  #exited = null;
  #exitCode = null;

  constructor() {
    this.#child = spawn(oraclePath(), [], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: this.#child.stdout, crlfDelay: Infinity });
    lines.on('line', (line) => {
      const waiter = this.#pending.shift();
      if (!waiter) {
        this.#fail(new Error(`crypto_oracle answered without a request: ${line.slice(0, 200)}`));
        return;
      }
      waiter.resolve(JSON.parse(line));
    });
    // 'close' (not 'exit'): it fires only after stdout has been read to the end, so answers the
    // oracle wrote before exiting still reach their requests.
    this.#child.on('close', (code, signal) => {
      this.#exitCode = code;
      this.#exited = `crypto_oracle exited (code ${code}, signal ${signal})`;
      this.#fail(new Error(`${this.#exited} with ${this.#pending.length} request(s) unanswered`));
    });
    this.#child.on('error', (err) => this.#fail(err));
    // A broken pipe surfaces through 'close'; keep it from becoming an unhandled 'error' event.
    this.#child.stdin.on('error', () => {});
    // The live child keeps Node's event loop running; when a run filters out the test file's own
    // final close() (--test-name-pattern), this hook still ends the session.
    after(() => this.close());
  }

  #fail(err) {
    for (const waiter of this.#pending.splice(0)) waiter.reject(err);
  }

  // Sends all commands, resolves to their answers in order. Answers that signal a driver bug
  // (oracle_usage) or an exception escaping our API (oracle_exception) reject the whole batch.
  async batch(commands) {
    if (this.#exited) throw new Error(this.#exited);
    const answers = commands.map(
      () => new Promise((resolve, reject) => this.#pending.push({ resolve, reject })),
    );
    this.#child.stdin.write(commands.map((c) => JSON.stringify(c)).join('\n') + '\n');
    const replies = await Promise.all(answers);
    replies.forEach((reply, i) => {
      if (reply.error === 'oracle_usage' || reply.error === 'oracle_exception') {
        throw new Error(`${reply.error}: ${reply.message} for ${JSON.stringify(commands[i]).slice(0, 300)}`);
      }
    });
    return replies;
  }

  async call(command) {
    return (await this.batch([command]))[0];
  }

  // Ends the session; a non-zero exit (e.g. a sanitizer report at shutdown) fails the caller.
  async close() {
    if (!this.#exited) {
      const done = new Promise((resolve) => this.#child.once('close', resolve));
      this.#child.stdin.end();
      await done;
    }
    if (this.#exitCode !== 0) throw new Error(this.#exited);
  }
}

// Byte helpers. Hex is the oracle's wire format; Uint8Array is what @noble expects.
export const hex = (bytes) => Buffer.from(bytes).toString('hex');
export const unhex = (text) => new Uint8Array(Buffer.from(text, 'hex'));
export const rand = (n) => new Uint8Array(randomBytes(n));
export { randomInt };

// A copy of `bytes` with one random bit flipped in [from, to) (default: anywhere).
export function flipBit(bytes, from = 0, to = bytes.length) {
  const out = Uint8Array.from(bytes);
  const i = randomInt(from, to);
  out[i] ^= 1 << randomInt(0, 8);
  return out;
}

// Asserts that `reply` is a success and returns it; the message carries the request so a
// failure in a batch of thousands can be reproduced from the log alone.
export function ok(reply, command) {
  if (reply.error) {
    throw new Error(`oracle rejected ${JSON.stringify(command).slice(0, 400)}: ${reply.error} (${reply.message})`);
  }
  return reply;
}

// Runs `f` and reports whether it threw (the independent implementations signal rejection by
// throwing).
export function throws(f) {
  try {
    f();
    return false;
  } catch {
    return true;
  }
}

// Repro string for a failed comparison: the inputs, never derived values.
export const repro = (fields) => JSON.stringify(fields);
