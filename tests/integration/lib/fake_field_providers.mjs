// Fake upstreams for the field-level E2EE providers, each in front of the scripted engine
// (engine.mjs), written from ../shared/specs/venice-protocol.md and near-phala-protocol.md with the
// peer in field_peer.mjs:
//
//   startFakeVenice — api.venice.ai: GET /api/v1/models, GET /api/v1/tee/attestation (synthetic TDX
//                     quote, server_verification in object or boolean shape), POST
//                     /api/v1/chat/completions (stream only; every role decrypted; each chunk's
//                     delta.content sealed with a fresh server ephemeral key; whitespace plaintext).
//   startFakeNear   — NEAR cloud-api + inference-proxy: GET /v1/attestation/report?model=&signing_algo=
//                     (model_attestations[].signing_public_key), POST /v1/chat/completions with ecdsa and
//                     ed25519 v1 (NaCl box) / v2 (XChaCha20), X-Encrypt-All-Fields, a fresh ephemeral per
//                     field, 421 provider_error for a stale X-Model-Pub-Key.
//   startFakeDstack — Phala dstack vllm-proxy: GET /v1/attestation/report?signing_algo=&nonce=, POST
//                     /v1/chat/completions with the §3 negotiation, v1/v2 (AAD, nonce + timestamp replay
//                     window), §6 framing (Python json.dumps, extra blank line), X-E2EE-* headers, §9
//                     errors; /v1/completions rejects E2EE headers.
//
// Every fake records what reached "the TEE" (the decrypted request it forwarded) in `received` (with
// `raw`, the exact request body text that crossed the wire), every HTTP request it got in `requests`
// ({method, path, query}: chatCount counts the chat POSTs, whether they decrypted or not), and has
// `faults` (knobs, set with setFaults(), cleared with clearFaults()) and rotateKeys().
//
// Knobs common to the three: reportDelayMs (attestation answers are held back that long); always421
// (NEAR: every chat request gets the stale-key 421). Response tampering: tamperResponse (every sealed field), tamperChunk: k (only
// the k-th sealed field of each answer, 0-based), and tamperOnce: true (the tamper knobs are cleared
// after the first answer that was tampered with: a one-off corruption, so a retry can succeed).

import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { listen, readBody } from './http.mjs';
import { lines } from './chutes_peer.mjs';
import {
  KeyPair,
  SCHEMES,
  buildTdxQuote,
  edPublicToX25519,
  ed25519,
  ephemeralKey,
  hex,
  isHex,
  mapRequestFields,
  mapResponseFields,
  normalizeSecpPublic,
  open,
  pyDumps,
  pyIntCanonical,
  pyStr,
  randomHex,
  reportDataFor,
  requestAad,
  responseAad,
  schemeFor,
  seal,
  utf8Strict,
  x25519Shared,
} from './field_peer.mjs';

// ---------------------------------------------------------------------------------------------
// Shared plumbing

class HttpError extends Error {
  constructor(status, body, headers = {}) {
    super(typeof body === 'string' ? body : JSON.stringify(body));
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

function send(res, status, body, headers = {}) {
  const payload = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': payload.length, ...headers });
  res.end(payload);
}

function postEngine(url, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': body.length } }, resolve);
    req.on('error', reject);
    req.end(body);
  });
}

async function drain(stream) {
  const parts = [];
  for await (const c of stream) parts.push(c);
  return Buffer.concat(parts);
}

function parseJsonBody(buf) {
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    return undefined;
  }
}

const header = (h, name) => {
  const v = h[name.toLowerCase()];
  return v === undefined ? undefined : String(v);
};

// A synthetic attestation report for `key` (§2 shape): report_data = identity padded to 32 ‖ nonce,
// in a TDX quote. Knobs: nonceEcho, reportNonce, identity (bytes bound instead), debug, teeType,
// nonceMethod ('raw' | 'sha256'), omitQuote, quoteEncoding ('hex' | 'base64').
function dstackStyleReport(key, nonceHex, knobs = {}) {
  const nonce = Buffer.from(nonceHex, 'hex');
  const bound = knobs.reportNonce === 'wrong' ? randomBytes(32) : knobs.nonceMethod === 'sha256' ? createHash('sha256').update(nonce).digest() : nonce;
  const reportData = reportDataFor(knobs.identity ?? key.identity, bound);
  const quote = buildTdxQuote({ reportData, debug: knobs.debug === true, teeType: knobs.teeType ?? 0x81 });
  const quoteText = knobs.quoteEncoding === 'base64' ? quote.toString('base64') : quote.toString('hex');
  const report = {
    signing_address: key.signingAddress,
    signing_algo: key.algo,
    request_nonce: knobs.nonceEcho === 'wrong' ? randomHex(32) : nonceHex,
    intel_quote: knobs.omitQuote ? undefined : quoteText,
    nvidia_payload: JSON.stringify({ nonce: nonceHex, evidence_list: [{ certificate: '', evidence: '', arch: 'HOPPER' }], arch: 'HOPPER' }),
    info: { app_id: 'fake-app', instance_id: 'fake-instance', vm_config: '{}' },
    quote: knobs.omitQuote ? undefined : quoteText,
    event_log: '[]',
    vm_config: '{}',
    signing_public_key: key.signingPublicKeyHex,
  };
  return report;
}

function engineError(res, upstream, body) {
  res.writeHead(upstream.statusCode, { 'content-type': upstream.headers['content-type'] ?? 'application/json', 'content-length': body.length });
  res.end(body);
}

class FakeBase {
  received = []; // {path, headers, body (the client's JSON), forwarded (the decrypted JSON sent on), e2ee}
  rejected = []; // {path, status, body, headers}
  reports = []; // attestation requests: {query, status}
  requests = []; // every HTTP request: {method, path, query}
  errors = []; // handler exceptions
  faults = {};

  constructor(engineUrl) {
    this.engineUrl = engineUrl;
  }

  setFaults(f) {
    this.faults = { ...f };
    return this;
  }

  clearFaults() {
    this.faults = {};
    return this;
  }

  reset() {
    this.received.length = 0;
    this.rejected.length = 0;
    this.reports.length = 0;
    this.requests.length = 0;
    this.errors.length = 0;
    this.clearFaults();
  }

  get last() {
    return this.received[this.received.length - 1];
  }

  // Chat POSTs that reached this fake (before any decryption or check).
  get chatCount() {
    return this.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/chat/completions')).length;
  }

  // A per-answer tamper decision: call tamper(envelope) for each sealed field in order; it flips a
  // ciphertext byte when the knobs say so. done() applies tamperOnce.
  tamperer() {
    const f = this.faults;
    let index = 0;
    let tampered = false;
    return {
      tamper: (env) => {
        const k = index++;
        if (f.tamperResponse || f.tamperChunk === k) {
          env[env.length - 20] ^= 0x01;
          tampered = true;
        }
        return env;
      },
      done: () => {
        if (tampered && f.tamperOnce) {
          delete f.tamperResponse;
          delete f.tamperChunk;
          delete f.tamperOnce;
        }
      },
    };
  }

  close() {
    return this.server.close();
  }

  reject(res, path, err) {
    this.rejected.push({ path, status: err.status, body: err.body, headers: err.headers });
    send(res, err.status, err.body, err.headers);
  }
}

async function startFake(fake) {
  fake.server = await listen(async (req, res) => {
    const url = new URL(req.url, 'http://fake');
    fake.requests.push({ method: req.method, path: url.pathname, query: url.search });
    // reportDelayMs: attestation answers take this long (a slow key exchange, for single-flight tests).
    if (fake.faults.reportDelayMs && /attestation/.test(url.pathname)) await new Promise((r) => setTimeout(r, fake.faults.reportDelayMs));
    fake.handle(req, res).catch((err) => {
      if (err instanceof HttpError) {
        if (!res.headersSent) return fake.reject(res, req.url, err);
        return res.destroy();
      }
      fake.errors.push(err);
      if (!res.headersSent) send(res, 500, { detail: `fake error: ${err.message}` });
      else res.destroy();
    });
  });
  fake.url = fake.server.url;
  return fake;
}

// ---------------------------------------------------------------------------------------------
// dstack vllm-proxy (PH)

const phError = (type, message) => new HttpError(400, { error: { message, type, param: null, code: null } });

export const DSTACK_E2EE_HEADERS = ['x-signing-algo', 'x-client-pub-key', 'x-model-pub-key', 'x-e2ee-version', 'x-e2ee-nonce', 'x-e2ee-timestamp'];

// Options: engineUrl; token (Bearer required when set); windowSeconds (300); replayKey 'ph'
// (MODEL_NAME:e2ee_replay:algo:ts:nonce, the reference) or 'nonce'; modelName ('unknown');
// ephemeral 'per-request' (PH, cached) | 'per-field'; encryptFields (PH: content, reasoning_content;
// add 'reasoning' to cover it); now() in seconds.
// Faults: plaintextResponse (answer unencrypted while claiming X-E2EE-Applied: true), omitApplied
// (no X-E2EE-Applied header), appliedFalse, wrongVersionHeader, wrongAlgoHeader, tamperResponse
// (flip a ciphertext byte of each encrypted field), report: {nonceEcho, reportNonce, identity,
// debug, teeType, omitQuote, quoteEncoding}.
export class FakeDstack extends FakeBase {
  replay = new Map(); // key → expiry (s)

  constructor({ engineUrl, token = null, windowSeconds = 300, replayKey = 'ph', modelName = 'unknown', ephemeral = 'per-request', encryptFields = ['content', 'reasoning_content'], now = () => Math.floor(Date.now() / 1000) } = {}) {
    super(engineUrl);
    Object.assign(this, { token, windowSeconds, replayKeyMode: replayKey, modelName, ephemeral, encryptFields, now });
    this.rotateKeys();
  }

  // "Restart": both keys are new (§2: random per process).
  rotateKeys() {
    this.keys = { ecdsa: KeyPair.ecdsa(), ed25519: KeyPair.ed25519() };
  }

  #auth(req) {
    if (!this.token) return;
    const a = header(req.headers, 'authorization');
    if (!a || !/^Bearer \S+$/.test(a)) throw new HttpError(401, { detail: 'Not authenticated' });
    if (a.slice(7) !== this.token) throw new HttpError(401, { detail: 'Invalid token' });
  }

  async handle(req, res) {
    const url = new URL(req.url, 'http://fake');
    if (req.method === 'GET' && url.pathname === '/v1/attestation/report') return this.#report(req, res, url);
    if (req.method === 'POST' && url.pathname === '/v1/chat/completions') return this.#chat(req, res);
    if (req.method === 'POST' && url.pathname === '/v1/completions') return this.#completions(req, res);
    send(res, 404, { detail: 'Not Found' });
  }

  #report(req, res, url) {
    const rec = { query: url.search, status: 0 };
    this.reports.push(rec);
    this.#auth(req);
    const algo = url.searchParams.get('signing_algo') ?? 'ecdsa';
    if (algo !== 'ecdsa' && algo !== 'ed25519') throw new HttpError(400, { error: { message: `Invalid signing algorithm: ${algo}`, type: 'invalid_signing_algo', param: null, code: null } });
    let nonce = url.searchParams.get('nonce');
    if (nonce === null) nonce = randomHex(32);
    else if (!isHex(nonce) || nonce.length === 0) throw new HttpError(400, { detail: 'Nonce must be hex-encoded' });
    else if (nonce.length !== 64) throw new HttpError(400, { detail: 'Nonce must be 32 bytes' });
    const report = dstackStyleReport(this.keys[algo], nonce.toLowerCase(), this.faults.report ?? {});
    report.all_attestations = [{ ...report }];
    rec.status = 200;
    send(res, 200, report);
  }

  // §3, in order. Returns null (plain) or {algo, version, v2, nonce, ts, clientKey (bytes)}.
  parseContext(h) {
    const algoH = header(h, 'x-signing-algo') ?? '';
    const clientH = header(h, 'x-client-pub-key') ?? '';
    const modelH = header(h, 'x-model-pub-key') ?? '';
    if (!algoH && !clientH && !modelH) return null;
    if (!algoH || !clientH || !modelH) throw phError('e2ee_header_missing', 'E2EE requires X-Signing-Algo, X-Client-Pub-Key, and X-Model-Pub-Key headers');
    const algo = algoH.trim().toLowerCase();
    if (algo !== 'ecdsa' && algo !== 'ed25519') throw phError('e2ee_invalid_signing_algo', `Unsupported signing algorithm: ${algoH}`);
    if (!isHex(clientH) || !isHex(modelH)) throw phError('e2ee_invalid_public_key', 'Public keys must be hex-encoded');
    const clientKey = Buffer.from(clientH, 'hex');
    const model = Buffer.from(modelH, 'hex');
    if (algo === 'ecdsa') {
      const norm = (b) => {
        if (b.length === 64) return Buffer.concat([Buffer.from([4]), b]);
        if (b.length === 65 && b[0] === 4) return b;
        throw phError('invalid_e2ee_request', `Invalid ECDSA public key length: ${b.length}`);
      };
      if (!norm(model).equals(this.keys.ecdsa.publicKey)) throw phError('e2ee_model_key_mismatch', 'X-Model-Pub-Key does not match this server');
    } else if (!model.equals(this.keys.ed25519.publicKey)) throw phError('e2ee_model_key_mismatch', 'X-Model-Pub-Key does not match this server');
    const version = (header(h, 'x-e2ee-version') ?? '').trim();
    if (version && version !== '1' && version !== '2') throw phError('e2ee_invalid_version', `Unsupported X-E2EE-Version: ${version}`);
    const nonce = header(h, 'x-e2ee-nonce') || '';
    const tsText = header(h, 'x-e2ee-timestamp') || '';
    if (!!nonce !== !!tsText) throw phError('e2ee_header_missing', 'X-E2EE-Nonce and X-E2EE-Timestamp must be provided together');
    const v2 = version === '2' || (!!nonce && !!tsText);
    let ts = null;
    if (v2) {
      if (!nonce || !tsText) throw phError('e2ee_header_missing', 'X-E2EE-Nonce and X-E2EE-Timestamp are required for E2EE v2');
      if (nonce.length < 16) throw phError('e2ee_invalid_nonce', 'X-E2EE-Nonce must be at least 16 characters');
      ts = pyIntCanonical(tsText);
      if (ts === null) throw phError('e2ee_invalid_timestamp', 'X-E2EE-Timestamp must be an integer');
    }
    return { algo, version: v2 ? 2 : 1, v2, nonce: v2 ? nonce : null, ts, clientKey };
  }

  #decryptRequest(json, ctx) {
    const scheme = schemeFor({ family: 'dstack', algo: ctx.algo });
    const secret = this.keys[ctx.algo].encryptionSecret;
    const model = pyStr(json?.model);
    return mapRequestFields(json, { coverage: 'dstack' }, (value, where) => {
      if (!isHex(value) || value === '') throw phError('invalid_e2ee_request', 'Encrypted message content must be hex-encoded');
      const bytes = Buffer.from(value, 'hex');
      if (bytes.length < SCHEMES[scheme].min) throw phError('e2ee_decryption_failed', 'Encrypted payload is too short');
      const aad = ctx.v2 ? requestAad({ algo: ctx.algo, model, m: where.m, c: where.c, nonce: ctx.nonce, ts: ctx.ts }) : undefined;
      let pt;
      try {
        pt = open(scheme, secret, bytes, { aad });
      } catch (err) {
        if (err.code === 'decryption_failed') throw phError('e2ee_decryption_failed', err.message);
        throw phError('invalid_e2ee_request', err.message);
      }
      let text;
      try {
        text = utf8Strict(pt);
      } catch {
        throw phError('invalid_e2ee_request', "'utf-8' codec can't decode the plaintext");
      }
      if (where.c === '-') {
        try {
          const parsed = JSON.parse(text);
          if (Array.isArray(parsed)) return parsed; // PR #7: a stringified part array
        } catch {
          // plain text
        }
      }
      return text;
    });
  }

  #claim(ctx) {
    const now = this.now();
    if (Math.abs(now - Number(ctx.ts)) > this.windowSeconds) throw phError('e2ee_invalid_timestamp', 'X-E2EE-Timestamp outside allowed replay window');
    const key = this.replayKeyMode === 'ph' ? `${this.modelName}:e2ee_replay:${ctx.algo}:${ctx.ts}:${ctx.nonce}` : `nonce:${ctx.nonce}`;
    for (const [k, exp] of this.replay) if (exp <= now) this.replay.delete(k);
    if (this.replay.has(key)) throw phError('e2ee_replay_detected', 'Replay detected: duplicated X-E2EE-Nonce/X-E2EE-Timestamp');
    this.replay.set(key, now + this.windowSeconds);
  }

  // The response encryptor of one request: one cached ephemeral key (PH) or one per field.
  #encryptor(ctx) {
    const scheme = schemeFor({ family: 'dstack', algo: ctx.algo });
    let recipient;
    if (ctx.algo === 'ecdsa') {
      try {
        recipient = normalizeSecpPublic(ctx.clientKey, 'X-Client-Pub-Key');
      } catch (err) {
        throw phError('invalid_e2ee_request', err.message);
      }
    } else {
      if (ctx.clientKey.length !== 32) throw phError('e2ee_invalid_public_key', `Ed25519 public key must be 32 bytes, got ${ctx.clientKey.length}`);
      recipient = edPublicToX25519(ctx.clientKey);
      try {
        x25519Shared(randomBytes(32), recipient); // a low-order key fails here, before any byte is sent
      } catch (err) {
        throw phError('e2ee_invalid_public_key', err.message);
      }
    }
    let cached = null;
    const t = this.tamperer();
    const encrypt = (obj, stream) =>
      mapResponseFields(obj, { coverage: 'dstack', stream, fields: this.encryptFields }, (value, where) => {
        if (this.faults.plaintextResponse) return value;
        const eph = this.ephemeral === 'per-request' ? (cached ??= ephemeralKey(scheme)) : ephemeralKey(scheme);
        const aad = ctx.v2 ? responseAad({ algo: ctx.algo, model: pyStr(where.model), id: pyStr(where.id), choice: where.choice, field: where.field, nonce: ctx.nonce, ts: ctx.ts }) : undefined;
        return hex(t.tamper(seal(scheme, recipient, value, { aad, ephemeral: eph })));
      });
    encrypt.done = t.done;
    return encrypt;
  }

  #e2eeHeaders(ctx) {
    const h = {};
    if (!this.faults.omitApplied) h['X-E2EE-Applied'] = this.faults.appliedFalse ? 'false' : 'true';
    h['X-E2EE-Version'] = this.faults.wrongVersionHeader ? String(3 - ctx.version) : String(ctx.version);
    h['X-E2EE-Algo'] = this.faults.wrongAlgoHeader ? (ctx.algo === 'ecdsa' ? 'ed25519' : 'ecdsa') : ctx.algo;
    return h;
  }

  async #chat(req, res) {
    const body = await readBody(req);
    this.#auth(req);
    const ctx = this.parseContext(req.headers);
    const json = parseJsonBody(body);
    if (json === undefined) throw new HttpError(500, 'Internal Server Error');
    let forwarded = json;
    if (ctx) {
      forwarded = this.#decryptRequest(json, ctx);
      if (ctx.v2) this.#claim(ctx); // after decryption: failed decryptions burn no nonce (§3)
    }
    for (const m of Array.isArray(forwarded.messages) ? forwarded.messages : []) {
      if (m && Array.isArray(m.tool_calls) && m.tool_calls.length === 0) delete m.tool_calls; // strip_empty_tool_calls
    }
    this.received.push({ path: '/v1/chat/completions', headers: req.headers, raw: body.toString('utf8'), body: json, forwarded, e2ee: ctx && { algo: ctx.algo, version: ctx.version, nonce: ctx.nonce, ts: ctx.ts } });
    const upstream = await postEngine(`${this.engineUrl}/v1/chat/completions`, Buffer.from(pyDumps(forwarded)));
    if (upstream.statusCode !== 200) return engineError(res, upstream, await drain(upstream));
    const encrypt = ctx ? this.#encryptor(ctx) : null;
    const e2eeHeaders = ctx ? this.#e2eeHeaders(ctx) : { 'X-E2EE-Applied': 'false' };
    if (forwarded.stream !== true) {
      const answer = parseJsonBody(await drain(upstream));
      const out = encrypt ? encrypt(answer, false) : answer;
      encrypt?.done();
      return send(res, 200, out, e2eeHeaders);
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'x-accel-buffering': 'no', ...e2eeHeaders });
    for await (const line of lines(upstream)) {
      if (line.startsWith('data: ') && line.slice(6).trim() !== '[DONE]') {
        let chunk = JSON.parse(line.slice(6));
        if (encrypt) {
          for (const ch of Array.isArray(chunk.choices) ? chunk.choices : []) if (ch?.delta && ch.delta.content === '') delete ch.delta.content; // PR #6
          chunk = encrypt(chunk, true);
        }
        res.write(`data: ${pyDumps(chunk)}\n\n`);
      } else res.write(`${line}\n`);
    }
    encrypt?.done();
    res.end();
  }

  async #completions(req, res) {
    const body = await readBody(req);
    this.#auth(req);
    if (DSTACK_E2EE_HEADERS.some((k) => req.headers[k] !== undefined)) throw phError('invalid_e2ee_request', 'E2EE is only supported on /v1/chat/completions');
    const upstream = await postEngine(`${this.engineUrl}/v1/completions`, body);
    res.writeHead(upstream.statusCode, { 'content-type': upstream.headers['content-type'] ?? 'application/json' });
    for await (const c of upstream) res.write(c);
    res.end();
  }
}

export async function startFakeDstack(opts) {
  return startFake(new FakeDstack(opts));
}

// ---------------------------------------------------------------------------------------------
// NEAR AI (cloud-api in front of inference-proxy, NIP)

const nearError = (message) => new HttpError(400, { error: { message, type: 'bad_request', param: null, code: null } });
export const NEAR_421_BODY = { error: { type: 'provider_error', message: 'The encryption key is no longer valid. Please refresh your attestation report and retry.', param: null, code: null } };

// Options: engineUrl; models (ids answered by the report); v1Cipher: what NIP encrypts ed25519 v1
// responses with, 'chacha' (since 421e506, default) or 'salsa'. Faults: report knobs as dstack's,
// plus report.model 'wrong' (the entries name another model); plaintextResponse; the tamper knobs.
export class FakeNear extends FakeBase {
  constructor({ engineUrl, models = ['test/model'], v1Cipher = 'chacha' } = {}) {
    super(engineUrl);
    Object.assign(this, { models, v1Cipher });
    this.rotateKeys();
  }

  // The backend holding the old keys is gone: stale X-Model-Pub-Key values get 421.
  rotateKeys() {
    this.keys = { ecdsa: KeyPair.ecdsa(), ed25519: KeyPair.ed25519() };
  }

  async handle(req, res) {
    const url = new URL(req.url, 'http://fake');
    if (req.method === 'GET' && url.pathname === '/v1/attestation/report') return this.#report(req, res, url);
    if (req.method === 'POST' && url.pathname === '/v1/chat/completions') return this.#chat(req, res);
    send(res, 404, { error: { message: 'Not Found', type: 'not_found', param: null, code: null } });
  }

  #report(req, res, url) {
    const rec = { query: url.search, status: 0 };
    this.reports.push(rec);
    const algo = (url.searchParams.get('signing_algo') ?? 'ecdsa').toLowerCase();
    if (algo !== 'ecdsa' && algo !== 'ed25519') throw nearError(`Invalid signing algorithm: ${algo}`);
    const model = url.searchParams.get('model');
    let nonce = url.searchParams.get('nonce');
    if (nonce === null) nonce = randomHex(32);
    else if (!isHex(nonce) || nonce.length !== 64) throw nearError('Nonce must be 32 bytes of hex');
    const knobs = this.faults.report ?? {};
    const gateway = KeyPair.ecdsa();
    const modelAttestations = this.models
      .filter((m) => model === null || m === model)
      .map((m) => ({ model: knobs.model === 'wrong' ? `${m}-other` : m, ...dstackStyleReport(this.keys[algo], nonce, knobs) }));
    if (model !== null && !modelAttestations.length) throw new HttpError(404, { error: { message: `Model ${model} not found`, type: 'not_found', param: null, code: null } });
    rec.status = 200;
    send(res, 200, { gateway_attestation: dstackStyleReport(gateway, nonce), model_attestations: modelAttestations });
  }

  // NIP extract_encryption_context + X-Encryption-Version / X-Encrypt-All-Fields (§10.1).
  parseContext(h) {
    const algoH = header(h, 'x-signing-algo');
    const keyH = header(h, 'x-client-pub-key');
    if (algoH === undefined && keyH === undefined) return null;
    if (algoH === undefined || keyH === undefined) throw nearError('Both X-Signing-Algo and X-Client-Pub-Key headers must be present together');
    const algo = algoH.toLowerCase();
    if (algo !== 'ecdsa' && algo !== 'ed25519') throw nearError(`Invalid X-Signing-Algo: ${algoH}. Must be 'ecdsa' or 'ed25519'`);
    if (!isHex(keyH)) throw nearError('X-Client-Pub-Key must be valid hex');
    const key = Buffer.from(keyH, 'hex');
    if (algo === 'ed25519' && key.length !== 32) throw nearError(`Ed25519 client public key must be 32 bytes, got ${key.length}`);
    if (algo === 'ecdsa' && key.length !== 64 && key.length !== 65) throw nearError(`ECDSA client public key must be 64 or 65 bytes, got ${key.length}`);
    const vText = header(h, 'x-encryption-version');
    let version = 1;
    if (vText !== undefined && /^\d+$/.test(vText) && Number(vText) <= 255) version = Number(vText);
    if (version !== 1 && version !== 2) throw nearError(`Unsupported X-Encryption-Version: ${vText}`);
    const allFields = String(header(h, 'x-encrypt-all-fields') ?? '').toLowerCase() === 'true';
    return { algo, version: algo === 'ed25519' ? version : 1, allFields, clientKey: key, scheme: schemeFor({ family: 'near', algo, version }) };
  }

  #decryptRequest(json, ctx) {
    const secret = this.keys[ctx.algo].encryptionSecret;
    const dec = (value) => {
      if (!isHex(value)) throw nearError('Encrypted field is not valid hex');
      let pt;
      try {
        pt = open(ctx.scheme, secret, Buffer.from(value, 'hex'));
      } catch {
        throw nearError('Decryption failed');
      }
      try {
        return utf8Strict(pt);
      } catch {
        throw nearError('Decrypted content is not valid UTF-8');
      }
    };
    return mapRequestFields(json, { coverage: 'near', allFields: ctx.allFields }, (value, where) => {
      if (typeof value !== 'string') return value; // plaintext JSON (tools parameters object)
      if (value === '') return value;
      let text;
      if (where.extra) {
        try {
          text = dec(value); // lenient: plaintext values pass through
        } catch {
          return value;
        }
      } else text = dec(value);
      if (where.json) {
        try {
          return JSON.parse(text);
        } catch {
          return text;
        }
      }
      if (where.field === 'content') {
        try {
          const parsed = JSON.parse(text);
          if (Array.isArray(parsed)) return parsed;
        } catch {
          // text
        }
      }
      return text;
    });
  }

  #encryptor(ctx) {
    let recipient;
    try {
      recipient = ctx.algo === 'ecdsa' ? normalizeSecpPublic(ctx.clientKey, 'X-Client-Pub-Key') : edPublicToX25519(Buffer.from(ed25519.Point.fromBytes(Uint8Array.from(ctx.clientKey)).toBytes()));
      if (ctx.algo === 'ed25519') x25519Shared(randomBytes(32), recipient);
    } catch (err) {
      throw nearError(`Invalid client public key: ${err.message}`);
    }
    const t = this.tamperer();
    const encrypt = (obj, stream) =>
      mapResponseFields(obj, { coverage: 'near', allFields: ctx.allFields, stream }, (value, where) => {
        if (this.faults.plaintextResponse) return value;
        const text = where.json ? JSON.stringify(value) : value;
        if (text === '') return text; // NIP encrypt_string("") = ""
        return hex(t.tamper(seal(ctx.scheme, recipient, text, { boxCipher: this.v1Cipher }))); // fresh ephemeral per field
      });
    encrypt.done = t.done;
    return encrypt;
  }

  async #chat(req, res) {
    const body = await readBody(req);
    const json = parseJsonBody(body);
    if (json === undefined) throw nearError('Invalid JSON body');
    const h = req.headers;
    // cloud-api routes on X-Model-Pub-Key: a key no backend holds any more gets 421.
    const modelKey = header(h, 'x-model-pub-key');
    const algoH = (header(h, 'x-signing-algo') ?? '').toLowerCase();
    if (this.faults.always421) throw new HttpError(421, NEAR_421_BODY);
    if (modelKey && (algoH === 'ecdsa' || algoH === 'ed25519')) {
      let current = false;
      try {
        current = algoH === 'ecdsa' ? normalizeSecpPublic(modelKey).equals(this.keys.ecdsa.publicKey) : Buffer.from(modelKey, 'hex').equals(this.keys.ed25519.publicKey);
      } catch {
        current = false;
      }
      if (!current) throw new HttpError(421, NEAR_421_BODY);
    }
    const ctx = this.parseContext(h);
    const encrypt = ctx ? this.#encryptor(ctx) : null;
    const forwarded = ctx ? this.#decryptRequest(json, ctx) : json;
    this.received.push({ path: '/v1/chat/completions', headers: h, raw: body.toString('utf8'), body: json, forwarded, e2ee: ctx && { algo: ctx.algo, version: ctx.version, allFields: ctx.allFields } });
    const upstream = await postEngine(`${this.engineUrl}/v1/chat/completions`, Buffer.from(JSON.stringify(forwarded)));
    if (upstream.statusCode !== 200) return engineError(res, upstream, await drain(upstream));
    if (forwarded.stream !== true) {
      const answer = parseJsonBody(await drain(upstream));
      const out = encrypt ? encrypt(answer, false) : answer;
      encrypt?.done();
      return send(res, 200, out);
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    for await (const line of lines(upstream)) {
      if (!line.startsWith('data:')) continue;
      const raw = line.slice(5).trim();
      if (raw === '[DONE]') {
        res.write('data: [DONE]\n\n');
        continue;
      }
      const chunk = JSON.parse(raw);
      res.write(`data: ${JSON.stringify(encrypt ? encrypt(chunk, true) : chunk)}\n\n`);
    }
    encrypt?.done();
    res.end();
  }
}

export async function startFakeNear(opts) {
  return startFake(new FakeNear(opts));
}

// ---------------------------------------------------------------------------------------------
// Venice

const veniceError = (status, message) => new HttpError(status, { error: message });

export const DEFAULT_VENICE_MODELS = [
  { id: 'e2ee-test-model', e2ee: true },
  { id: 'plain-model', e2ee: false },
];

// Options: engineUrl; models [{id, e2ee}]; apiKey (Bearer required when set); whitespacePlaintext
// (whitespace-only content chunks go out unencrypted, as Venice does; default true).
// Faults (fake.setFaults({...})):
//   attestation: nonceEcho 'wrong' | reportNonce 'wrong' | address 'wrong' (REPORTDATA binds another
//     key) | signingAddress 'wrong' | debug true | teeType n | verified false | shape 'boolean' |
//     nonceMethod 'sha256' | quoteEncoding 'base64' | keyField 'signing_key' | 'both' | modelEcho
//     'wrong' | svTdxValid false | svNonceBound false | omitQuote true
//   plaintextContent: content chunks sent unencrypted
//   tamperChunk: k — flip a ciphertext byte of the k-th encrypted chunk (0-based); tamperResponse:
//     every encrypted chunk; tamperOnce: only the first answer tampered with
//   failStatus / failBody: the next chat answers this instead (one-shot)
export class FakeVenice extends FakeBase {
  attestations = []; // {model, nonce}
  modelRequests = 0;

  constructor({ engineUrl, models = DEFAULT_VENICE_MODELS, apiKey = null, whitespacePlaintext = true } = {}) {
    super(engineUrl);
    Object.assign(this, { models: [...models], apiKey, whitespacePlaintext });
    this.keys = new Map(models.filter((m) => m.e2ee).map((m) => [m.id, KeyPair.ecdsa()]));
  }

  // A new model key (for `model`, or all); requests sealed to the old key no longer decrypt.
  rotateKeys(model) {
    for (const id of this.keys.keys()) if (!model || id === model) this.keys.set(id, KeyPair.ecdsa());
  }

  keyOf(model) {
    return this.keys.get(model);
  }

  // Serves one more E2EE model (with its own key).
  addModel(id) {
    this.models.push({ id, e2ee: true });
    this.keys.set(id, KeyPair.ecdsa());
    return id;
  }

  #auth(req) {
    if (!this.apiKey) return;
    if (header(req.headers, 'authorization') !== `Bearer ${this.apiKey}`) throw veniceError(401, 'Authentication failed');
  }

  async handle(req, res) {
    const url = new URL(req.url, 'http://fake');
    if (req.method === 'GET' && url.pathname === '/api/v1/models') {
      this.#auth(req);
      this.modelRequests += 1;
      return send(res, 200, {
        object: 'list',
        type: 'text',
        data: this.models.map((m) => ({
          id: m.id,
          object: 'model',
          type: 'text',
          owned_by: 'venice.ai',
          created: 1700000000,
          model_spec: { name: m.id, capabilities: { supportsE2EE: !!m.e2ee, supportsTeeAttestation: !!m.e2ee, supportsFunctionCalling: !m.e2ee } },
        })),
      });
    }
    if (req.method === 'GET' && url.pathname === '/api/v1/tee/attestation') return this.#attestation(req, res, url);
    if (req.method === 'POST' && url.pathname === '/api/v1/chat/completions') return this.#chat(req, res);
    send(res, 404, { error: 'Not Found' });
  }

  #attestation(req, res, url) {
    const rec = { query: url.search, status: 0 };
    this.reports.push(rec);
    this.#auth(req);
    const model = url.searchParams.get('model');
    const nonce = url.searchParams.get('nonce') ?? '';
    if (!isHex(nonce) || nonce.length !== 64) throw veniceError(400, 'Nonce must be exactly 32 bytes');
    const key = this.keys.get(model);
    if (!key) throw veniceError(404, `Model ${model} does not support TEE attestation`);
    this.attestations.push({ model, nonce });
    const f = this.faults.attestation ?? {};
    const report = dstackStyleReport(key, nonce.toLowerCase(), { ...f, identity: f.address === 'wrong' ? KeyPair.ecdsa().identity : undefined });
    const keyHex = hex(key.publicKey); // 130 hex, 04…
    const boolShape = f.shape === 'boolean';
    const att = {
      verified: f.verified === false ? false : true,
      nonce: f.nonceEcho === 'wrong' ? randomHex(32) : nonce,
      model: f.modelEcho === 'wrong' ? `${model}-other` : model,
      tee_provider: 'phala',
      tee_hardware: 'intel-tdx',
      upstream_model: `phala/${model}`,
      signing_algo: 'ecdsa',
      request_nonce: report.request_nonce,
      signing_address: f.signingAddress === 'wrong' ? KeyPair.ecdsa().signingAddress : key.signingAddress,
      intel_quote: report.intel_quote,
      quote: report.quote,
      nvidia_payload: report.nvidia_payload,
      event_log: report.event_log,
      info: report.info,
      vm_config: report.vm_config,
      nonce_source: 'client',
      candidates_evaluated: 1,
      candidates_available: 1,
      server_verification: {
        tdx: { valid: f.svTdxValid === false ? false : true, signatureValid: true, certificateChainValid: true, attestationKeyMatch: true },
        nvidia: { valid: true },
        signingAddressBinding: boolShape ? true : { bound: true, reportDataAddress: key.signingAddress },
        nonceBinding: boolShape ? f.svNonceBound !== false : { bound: f.svNonceBound !== false, method: f.nonceMethod === 'sha256' ? 'sha256' : 'raw' },
        verifiedAt: new Date().toISOString(),
        verificationDurationMs: 12,
      },
    };
    if (f.keyField === 'signing_key') att.signing_key = keyHex;
    else if (f.keyField === 'both') {
      att.signing_key = keyHex;
      att.signing_public_key = keyHex;
    } else att.signing_public_key = keyHex;
    rec.status = 200;
    send(res, 200, att);
  }

  async #chat(req, res) {
    const body = await readBody(req);
    this.#auth(req);
    if (this.faults.failStatus) {
      const { failStatus, failBody } = this.faults;
      delete this.faults.failStatus;
      delete this.faults.failBody;
      throw new HttpError(failStatus, failBody ?? { error: 'Service unavailable' });
    }
    const json = parseJsonBody(body);
    if (json === undefined) throw veniceError(400, 'Invalid JSON');
    const h = req.headers;
    const clientH = header(h, 'x-venice-tee-client-pub-key');
    const modelH = header(h, 'x-venice-tee-model-pub-key');
    const algoH = header(h, 'x-venice-tee-signing-algo');
    const e2ee = clientH !== undefined || modelH !== undefined || algoH !== undefined;
    let clientKey = null;
    let forwarded = structuredClone(json);
    const meta = { stripped: [] };
    if (e2ee) {
      if (!clientH || !/^04[0-9a-fA-F]{128}$/.test(clientH)) throw veniceError(400, 'Invalid public key');
      try {
        clientKey = normalizeSecpPublic(clientH);
      } catch {
        throw veniceError(400, 'Invalid public key');
      }
      if ((algoH ?? '').toLowerCase() !== 'ecdsa') throw veniceError(400, 'Unsupported signing algorithm');
      const key = this.keys.get(json.model);
      if (!key) throw veniceError(400, `Model ${json.model} does not support E2EE`);
      if (json.stream !== true) throw veniceError(400, 'E2EE requires streaming');
      for (const msg of Array.isArray(json.messages) ? json.messages : []) {
        if (msg && typeof msg === 'object' && msg.content !== undefined && msg.content !== null && typeof msg.content !== 'string') throw veniceError(400, 'Encrypted field is not valid hex');
      }
      forwarded = mapRequestFields(json, { coverage: 'venice' }, (value) => {
        if (!isHex(value) || value.length < 2 * SCHEMES['ecdsa-aesgcm'].min) throw veniceError(400, 'Encrypted field is not valid hex');
        try {
          return utf8Strict(open('ecdsa-aesgcm', key.secret, Buffer.from(value, 'hex')));
        } catch {
          throw veniceError(400, 'Failed to decrypt field');
        }
      });
      // The E2EE gateway drops what it cannot serve privately (Venice §5); recorded for assertions.
      for (const k of ['tools', 'tool_choice', 'response_format', 'reasoning_effort', 'prompt_cache_key', 'prompt_cache_retention']) {
        if (k in forwarded) {
          meta.stripped.push(k);
          delete forwarded[k];
        }
      }
    }
    const veniceParameters = forwarded.venice_parameters;
    delete forwarded.venice_parameters;
    this.received.push({ path: '/api/v1/chat/completions', headers: h, raw: body.toString('utf8'), body: json, forwarded, veniceParameters, e2ee: e2ee ? { modelKeyHeader: modelH, clientKey: clientH, ...meta } : null });
    const upstream = await postEngine(`${this.engineUrl}/v1/chat/completions`, Buffer.from(JSON.stringify(forwarded)));
    if (upstream.statusCode !== 200) return engineError(res, upstream, await drain(upstream));
    if (forwarded.stream !== true) return send(res, 200, parseJsonBody(await drain(upstream)));
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    let sealedCount = 0;
    let tampered = false;
    const f = this.faults;
    for await (const line of lines(upstream)) {
      if (!line.startsWith('data:')) continue;
      const raw = line.slice(5).trim();
      if (raw === '[DONE]') {
        res.write('data: [DONE]\n\n');
        continue;
      }
      let chunk = JSON.parse(raw);
      if (clientKey) {
        const eph = ephemeralKey('ecdsa-aesgcm'); // a fresh server key per chunk (Venice §4.3)
        let sealedHere = false;
        chunk = mapResponseFields(chunk, { coverage: 'venice', stream: true }, (value) => {
          if (value === '' || (this.whitespacePlaintext && /^\s+$/.test(value)) || f.plaintextContent) return value;
          const env = seal('ecdsa-aesgcm', clientKey, value, { ephemeral: eph });
          if (f.tamperResponse || f.tamperChunk === sealedCount) {
            env[env.length - 20] ^= 0x01;
            tampered = true;
          }
          sealedHere = true;
          return hex(env);
        });
        if (sealedHere) sealedCount += 1;
      }
      res.write(`data: ${JSON.stringify(chunk)}\n\n`);
    }
    if (tampered && f.tamperOnce) {
      delete f.tamperResponse;
      delete f.tamperChunk;
      delete f.tamperOnce;
    }
    res.end();
  }
}

export async function startFakeVenice(opts) {
  return startFake(new FakeVenice(opts));
}

export { HttpError };
