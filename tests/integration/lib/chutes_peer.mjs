// An independent implementation of the Chutes E2EE protocol, written from
// ../shared/specs/chutes-protocol.md (§2 constants, §4 discovery, §5 key exchange, §6 request blob,
// §7 invoke, §9 non-stream response, §10 stream framing, §11 errors) and not from the C++ code:
// ML-KEM-768 from @noble/post-quantum, HKDF-SHA256 and ChaCha20-Poly1305 from Node's crypto
// (OpenSSL), gzip from Node's zlib.
//
// Client side: discover, sealRequest, openResponse, decryptStream, invoke.
// Server side: startFakeChutes — api.chutes.ai (`/v1/models`, `/e2e/instances/{chute}`,
// `/e2e/invoke`) and the GPU instances behind it in one process, with production's framing and
// error bodies, forwarding the decrypted requests to a scripted engine over HTTP.

import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import { gzipSync, gunzipSync } from 'node:zlib';
import { ml_kem768 } from './deps.mjs';
import { listen, readBody, request } from './http.mjs';

// §2
export const KEM_PK_LEN = 1184;
export const KEM_CT_LEN = 1088;
export const AEAD_NONCE_LEN = 12;
export const AEAD_TAG_LEN = 16;
export const INFO_REQ = 'e2e-req-v1';
export const INFO_RESP = 'e2e-resp-v1';
export const INFO_STREAM = 'e2e-stream-v1';
export const NONCES_PER_INSTANCE = 10;
export const MAX_INSTANCES_RETURNED = 5;
export const NONCE_CLIENT_TTL = 60;
export const NONCE_SERVER_TTL = 75;
export const DISCOVERIES_PER_MINUTE = 10;

// §11.1 details, exact.
export const DETAIL = {
  nonce: 'Invalid, expired, or already-used nonce',
  rateLimit: 'Rate limit exceeded. Try again later.',
  chuteNotFound: 'Chute not found',
  noInstances: 'No active instances found for this chute',
  noE2eInstances: 'No E2E-capable instances available',
  instanceNotFound: 'Instance not found',
  instanceWrongChute: 'Instance does not belong to the specified chute',
  instanceGone: 'Instance is no longer active',
  disabled: 'This chute is currently disabled.',
  emptyBody: 'Empty request body',
  capacity: 'Instance is at maximum capacity, try again later',
  keyExchange: 'Instance requires key exchange, try a different instance',
  internal: 'Internal error during E2E invocation',
  decryptionFailed: '{"detail":"E2E decryption failed"}', // §8/§11.1: instance error as a JSON string
  pathNotAvailable: 'Path not available via E2E',
};

const b64 = (bytes) => Buffer.from(bytes).toString('base64');
const unb64 = (text) => {
  if (typeof text !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new Error(`not standard padded base64: ${String(text).slice(0, 60)}`);
  }
  return Buffer.from(text, 'base64');
};
export { b64, unb64 };

// ---------------------------------------------------------------------------------------------
// Primitives (§2, §5)

// HKDF-SHA256(ikm = shared secret, salt = first 16 bytes of the KEM ciphertext, info, L = 32).
export function deriveKey(sharedSecret, kemCiphertext, info) {
  return Buffer.from(hkdfSync('sha256', Buffer.from(sharedSecret), Buffer.from(kemCiphertext).subarray(0, 16), Buffer.from(info, 'ascii'), 32));
}

// ChaCha20-Poly1305 (RFC 8439), empty AAD: returns ciphertext || tag.
export function aeadSeal(key, nonce, plaintext) {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_LEN });
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([ct, c.getAuthTag()]);
}

export function aeadOpen(key, nonce, ciphertextAndTag) {
  const data = Buffer.from(ciphertextAndTag);
  if (data.length < AEAD_TAG_LEN) throw new Error('AEAD input shorter than the tag');
  const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_LEN });
  d.setAuthTag(data.subarray(data.length - AEAD_TAG_LEN));
  return Buffer.concat([d.update(data.subarray(0, data.length - AEAD_TAG_LEN)), d.final()]);
}

// §6 / §9 blob: kem_ct(1088) || nonce(12) || ChaCha20-Poly1305(HKDF(ss, kem_ct[0:16], info), gzip(pt)) || tag(16).
export function sealBlob(recipientPublicKey, plaintext, info) {
  const { cipherText, sharedSecret } = ml_kem768.encapsulate(Uint8Array.from(recipientPublicKey));
  const key = deriveKey(sharedSecret, cipherText, info);
  const nonce = randomBytes(AEAD_NONCE_LEN);
  return Buffer.concat([Buffer.from(cipherText), nonce, aeadSeal(key, nonce, gzipSync(plaintext))]);
}

export function openBlob(secretKey, blob, info, { maxInflated = 64 << 20 } = {}) {
  const data = Buffer.from(blob);
  if (data.length < KEM_CT_LEN + AEAD_NONCE_LEN + AEAD_TAG_LEN) {
    throw new Error(`blob too short: ${data.length} bytes (minimum ${KEM_CT_LEN + AEAD_NONCE_LEN + AEAD_TAG_LEN})`);
  }
  const ct = data.subarray(0, KEM_CT_LEN);
  const ss = ml_kem768.decapsulate(Uint8Array.from(ct), Uint8Array.from(secretKey));
  const key = deriveKey(ss, ct, info);
  const gz = aeadOpen(key, data.subarray(KEM_CT_LEN, KEM_CT_LEN + AEAD_NONCE_LEN), data.subarray(KEM_CT_LEN + AEAD_NONCE_LEN));
  return gunzipSync(gz, { maxOutputLength: maxInflated });
}

// ---------------------------------------------------------------------------------------------
// Client (§4–§7, §9, §10.3)

// GET {base}/e2e/instances/{chute}. Resolves to { status, json, body }.
export async function discover(baseUrl, apiKey, chuteId, { headers = {} } = {}) {
  const res = await request(`${baseUrl}/e2e/instances/${chuteId}`, {
    headers: { ...(apiKey === null ? {} : { authorization: `Bearer ${apiKey}` }), 'cache-control': 'no-cache, no-store', ...headers },
  });
  let json;
  try {
    json = JSON.parse(res.text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, body: res.body, headers: res.headers };
}

// Adds "e2e_response_pk" to the request JSON. An object is serialized with JSON.stringify (the
// member appended last, like the Python client); a string is taken as the exact JSON text of an
// object and the member is spliced in before its closing brace, so every other byte survives.
export function withResponseKey(jsonObjectOrText, responsePublicKey) {
  if (typeof jsonObjectOrText === 'string') {
    const text = jsonObjectOrText.trimEnd();
    if (!text.endsWith('}')) throw new Error('request text must be a JSON object');
    const open = text.slice(0, -1);
    const empty = /\{\s*$/.test(open);
    return `${open}${empty ? '' : ','}"e2e_response_pk":"${b64(responsePublicKey)}"}`;
  }
  return JSON.stringify({ ...jsonObjectOrText, e2e_response_pk: b64(responsePublicKey) });
}

// §5 + §6. Returns the blob, the response key pair and the exact plaintext JSON that was sealed.
export function sealRequest(instancePubB64, jsonObjectOrText) {
  const instanceKey = unb64(instancePubB64);
  if (instanceKey.length !== KEM_PK_LEN) throw new Error(`instance key has ${instanceKey.length} bytes, expected ${KEM_PK_LEN}`);
  const { publicKey, secretKey } = ml_kem768.keygen();
  const plaintext = Buffer.from(withResponseKey(jsonObjectOrText, publicKey), 'utf8');
  return { blob: sealBlob(instanceKey, plaintext, INFO_REQ), responseSecretKey: secretKey, responsePublicKey: publicKey, plaintext };
}

// §9: the non-stream response body → the engine's exact bytes.
export function openResponse(blob, responseSecretKey) {
  return openBlob(responseSecretKey, blob, INFO_RESP);
}

// Splits an async iterable of byte chunks into lines on "\n" (a trailing "\r" stripped); the last
// unterminated line is yielded too.
export async function* lines(chunks) {
  let pending = Buffer.alloc(0);
  for await (const chunk of chunks) {
    pending = Buffer.concat([pending, Buffer.from(chunk)]);
    let i;
    while ((i = pending.indexOf(0x0a)) >= 0) {
      let line = pending.subarray(0, i);
      pending = pending.subarray(i + 1);
      if (line.length && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
      yield line.toString('utf8');
    }
  }
  if (pending.length) yield pending.toString('utf8').replace(/\r$/, '');
}

// Parses SSE text into events: { data } per event (data lines joined with "\n"); `event:` names
// kept. Used on the decrypted plaintext, which is itself an SSE byte stream (§10.1).
export function parseSse(text) {
  const events = [];
  let data = null;
  let name = null;
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '') {
      if (data !== null) events.push({ event: name, data });
      data = null;
      name = null;
      continue;
    }
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data = data === null ? value : `${data}\n${value}`;
    else if (field === 'event') name = value;
  }
  return { events, unterminated: data !== null ? { event: name, data } : null };
}

// §10.3. Decrypts an e2e SSE stream (async iterable of byte chunks). Returns
//   plaintext: Buffer — the concatenated chunk plaintexts (the engine's SSE bytes),
//   chunks:    the individual decrypted chunk plaintexts, in order,
//   frames:    every outer event in order: {type:'e2e_init'|'e2e'|'usage'|'e2e_error'|'done'|'other', ...},
//   events:    the inner SSE events parsed from `plaintext` ({data, json?}),
//   usage:     the plaintext usage objects, errors: the e2e_error values, done: saw a plaintext [DONE].
// Throws on a chunk before e2e_init or a chunk that does not authenticate.
export async function decryptStream(chunks, responseSecretKey) {
  let key = null;
  const out = { chunks: [], frames: [], usage: [], errors: [], done: false, outerLines: [] };
  for await (const line of lines(chunks)) {
    out.outerLines.push(line);
    if (!line.startsWith('data: ')) continue;
    const raw = line.slice(6).trim();
    if (raw === '[DONE]') {
      out.done = true;
      out.frames.push({ type: 'done' });
      break;
    }
    let obj;
    try {
      obj = JSON.parse(raw);
    } catch {
      out.frames.push({ type: 'other', raw });
      continue;
    }
    if (obj && typeof obj === 'object' && 'e2e_init' in obj) {
      const ct = unb64(obj.e2e_init);
      if (ct.length !== KEM_CT_LEN) throw new Error(`e2e_init carries ${ct.length} bytes, expected ${KEM_CT_LEN}`);
      const ss = ml_kem768.decapsulate(Uint8Array.from(ct), Uint8Array.from(responseSecretKey));
      key = deriveKey(ss, ct, INFO_STREAM);
      out.frames.push({ type: 'e2e_init' });
    } else if (obj && typeof obj === 'object' && 'e2e' in obj) {
      if (!key) throw new Error('received e2e chunk before e2e_init');
      const data = unb64(obj.e2e);
      if (data.length < AEAD_NONCE_LEN + AEAD_TAG_LEN) throw new Error(`e2e chunk too short: ${data.length} bytes`);
      const pt = aeadOpen(key, data.subarray(0, AEAD_NONCE_LEN), data.subarray(AEAD_NONCE_LEN));
      out.chunks.push(pt);
      out.frames.push({ type: 'e2e', plaintext: pt.toString('utf8') });
    } else if (obj && typeof obj === 'object' && 'e2e_error' in obj) {
      out.errors.push(obj.e2e_error);
      out.frames.push({ type: 'e2e_error', value: obj.e2e_error });
    } else if (obj && typeof obj === 'object' && 'usage' in obj) {
      out.usage.push(obj.usage);
      out.frames.push({ type: 'usage', value: obj.usage, line });
    } else {
      out.frames.push({ type: 'other', raw });
    }
  }
  out.plaintext = Buffer.concat(out.chunks);
  const { events, unterminated } = parseSse(out.plaintext.toString('utf8'));
  out.events = events.map((e) => {
    let json;
    try {
      json = e.data === '[DONE]' ? undefined : JSON.parse(e.data);
    } catch {
      json = undefined;
    }
    return { ...e, json };
  });
  out.unterminated = unterminated;
  return out;
}

// POST {base}/e2e/invoke with the §7 headers. `body` is the request JSON (object or exact text);
// `stream` defaults to body.stream. Resolves to
//   { status, headers, body (raw), json (if JSON), plaintext (non-stream 200: the engine's bytes),
//     stream (stream 200: the decryptStream result), sealed (the sealRequest result) }.
export async function invoke({ baseUrl, apiKey, chuteId, instance, nonce, body, stream, path = '/v1/chat/completions', headers = {}, blob, timeoutMs = 30000 }) {
  const sealed = blob ? { blob, responseSecretKey: null } : sealRequest(instance.e2e_pubkey, body);
  const isStream = stream ?? (typeof body === 'string' ? JSON.parse(body).stream === true : body?.stream === true);
  const h = {
    ...(apiKey === null ? {} : { authorization: `Bearer ${apiKey}` }),
    'x-chute-id': chuteId,
    'x-instance-id': instance.instance_id,
    'x-e2e-nonce': nonce,
    'x-e2e-stream': String(isStream),
    'x-e2e-path': path,
    'content-type': 'application/octet-stream',
    ...headers,
  };
  for (const [k, v] of Object.entries(h)) if (v === undefined) delete h[k];
  const res = await request(`${baseUrl}/e2e/invoke`, { method: 'POST', headers: h, body: sealed.blob, stream: true, timeoutMs });
  const ctype = String(res.headers['content-type'] ?? '');
  const result = { status: res.status, headers: res.headers, sealed };
  if (res.status === 200 && ctype.startsWith('text/event-stream')) {
    const raw = [];
    const tee = (async function* () {
      for await (const c of res.res) {
        raw.push(c);
        yield c;
      }
    })();
    result.stream = await decryptStream(tee, sealed.responseSecretKey);
    result.body = Buffer.concat(raw);
    return result;
  }
  const parts = [];
  for await (const c of res.res) parts.push(c);
  result.body = Buffer.concat(parts);
  try {
    result.json = JSON.parse(result.body.toString('utf8'));
  } catch {
    result.json = undefined;
  }
  if (res.status === 200 && sealed.responseSecretKey) result.plaintext = openResponse(result.body, sealed.responseSecretKey);
  return result;
}

// Takes the next nonce off a discovery answer (mutates it): { instance, nonce } or null.
export function takeNonce(discovery, instanceIndex = 0) {
  const inst = discovery.instances[instanceIndex];
  if (!inst || !inst.nonces.length) return null;
  return { instance: inst, nonce: inst.nonces.shift() };
}

// ---------------------------------------------------------------------------------------------
// Fake api.chutes.ai + instances

// Python's secrets.token_urlsafe(24): 32 URL-safe base64 characters.
const tokenUrlsafe = () => randomBytes(24).toString('base64url');

function detail(res, status, value, headers = {}) {
  const payload = Buffer.from(JSON.stringify({ detail: value }));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': payload.length, ...headers });
  res.end(payload);
}

// The fake. Options:
//   models:     entries for GET /v1/models ({id, chute_id, confidential_compute, root, …})
//   engineUrl:  base URL of the scripted engine the instances forward to
//   instances:  instances per chute (default 2), or {chuteId: n}
//   noncesPerInstance (10), nonceExpiresIn (60), maxInstancesReturned (5)
//   discoveriesPerMinute: per user (default 10; Infinity disables)
//   usageEvents: relay the plaintext `data: {"usage":…}` lines (pre-2026-03-27 production); default true
//   shuffle:    return the instances of a discovery in random order, like production (default true)
//   nonceServerTtl: seconds a discovery's nonces stay valid server side (default 75)
export async function startFakeChutes(opts = {}) {
  const fake = new FakeChutes(opts);
  fake.server = await listen((req, res) => {
    fake.handle(req, res).catch((err) => {
      fake.errors.push(err);
      if (!res.headersSent) detail(res, 500, DETAIL.internal);
      else res.destroy();
    });
  });
  fake.url = fake.server.url;
  return fake;
}

export class FakeChutes {
  discoveries = []; // {user, chuteId, status, at, instanceIds}
  invokes = []; // {user, chuteId, instanceId, nonce, stream, path, status, at}
  received = []; // decrypted plaintext request bodies: {instanceId, chuteId, plaintext (Buffer), json, forwarded (Buffer)}
  modelRequests = []; // {headers}
  errors = [];
  #nonces = new Map(); // `${user}\n${chute}` → {expiresAt, map: Map(nonce → instanceId)}
  #failures = []; // forced invoke failures: {status, detail, body}
  #tampers = []; // one-shot response faults, see tamperNext()
  #rateLog = new Map(); // user → [timestamps]
  #chutes = new Map(); // chuteId → {instances: [{id, publicKey, secretKey, active}], disabled}

  constructor({ models = [], engineUrl, instances = 2, noncesPerInstance = NONCES_PER_INSTANCE, nonceExpiresIn = NONCE_CLIENT_TTL, maxInstancesReturned = MAX_INSTANCES_RETURNED, discoveriesPerMinute = DISCOVERIES_PER_MINUTE, usageEvents = true, shuffle = true, nonceServerTtl = NONCE_SERVER_TTL } = {}) {
    Object.assign(this, { models, engineUrl, noncesPerInstance, nonceExpiresIn, maxInstancesReturned, discoveriesPerMinute, usageEvents, shuffle, nonceServerTtl });
    this.instanceCounts = instances;
    for (const m of models) if (m.chute_id) this.#ensureChute(m.chute_id);
  }

  #ensureChute(chuteId) {
    if (!this.#chutes.has(chuteId)) {
      const n = typeof this.instanceCounts === 'number' ? this.instanceCounts : (this.instanceCounts[chuteId] ?? 2);
      this.#chutes.set(chuteId, { instances: Array.from({ length: n }, () => newInstance()), disabled: false });
    }
    return this.#chutes.get(chuteId);
  }

  // Adds a chute that is not in the model list (e.g. a private chute reached by UUID).
  addChute(chuteId, n = 2) {
    this.#chutes.set(chuteId, { instances: Array.from({ length: n }, () => newInstance()), disabled: false });
  }

  instancesOf(chuteId) {
    return this.#ensureChute(chuteId).instances;
  }

  // "Instance restarted": every instance of the chute (all chutes by default) gets a new ML-KEM
  // key pair. With newIds the instances also get new ids (old ids answer 404 Instance not found).
  rotateKeys({ chuteId, newIds = false } = {}) {
    for (const [id, chute] of this.#chutes) {
      if (chuteId && id !== chuteId) continue;
      chute.instances = chute.instances.map((inst) => {
        const fresh = newInstance();
        return newIds ? fresh : { ...fresh, id: inst.id };
      });
    }
  }

  // Every nonce handed out so far expires now.
  expireNonces() {
    this.#nonces.clear();
  }

  // The next `n` invokes (after their nonce is consumed, as production does) fail with
  // `status` and {"detail": detail} (or the exact `body`).
  failNext(n, status, detailValue, body) {
    for (let i = 0; i < n; i++) this.#failures.push({ status, detail: detailValue, body });
  }

  clearFailures() {
    this.#failures.length = 0;
  }

  // One-shot faults on the next successful invoke's response:
  //   { streamChunk: k }           flip a ciphertext bit of the k-th e2e event (0-based)
  //   { response: true }           flip a ciphertext bit of the non-stream response blob
  //   { e2eErrorAfter: k, value }  after k e2e events send `data: {"e2e_error":value}` and end
  //   { endAfter: k }              end the stream after k e2e events (no [DONE] inside)
  tamperNext(fault) {
    this.#tampers.push(fault);
  }

  resetCounters() {
    this.discoveries.length = 0;
    this.invokes.length = 0;
    this.received.length = 0;
    this.modelRequests.length = 0;
    this.#rateLog.clear();
  }

  get discoveryCount() {
    return this.discoveries.filter((d) => d.status === 200).length;
  }

  close() {
    return this.server.close();
  }

  async handle(req, res) {
    const url = new URL(req.url, 'http://fake');
    const user = req.headers.authorization;
    if (req.method === 'GET' && url.pathname === '/v1/models') {
      this.modelRequests.push({ headers: req.headers });
      const payload = Buffer.from(JSON.stringify({ object: 'list', data: this.models }));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': payload.length });
      res.end(payload);
      return;
    }
    const m = /^\/e2e\/instances\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && m) return this.#discover(req, res, user, decodeURIComponent(m[1]));
    if (req.method === 'POST' && url.pathname === '/e2e/invoke') return this.#invoke(req, res, user);
    detail(res, 404, 'Not Found');
  }

  #discover(req, res, user, chuteId) {
    const rec = { user, chuteId, at: Date.now(), status: 0 };
    this.discoveries.push(rec);
    if (!user) {
      rec.status = 401;
      return detail(res, 401, 'Not authenticated');
    }
    // rate_limit("e2e_instances", requests_per_minute=10), per user, before anything else
    const now = Date.now();
    const log = (this.#rateLog.get(user) ?? []).filter((t) => now - t < 60000);
    if (log.length >= this.discoveriesPerMinute) {
      this.#rateLog.set(user, log);
      rec.status = 429;
      return detail(res, 429, DETAIL.rateLimit);
    }
    log.push(now);
    this.#rateLog.set(user, log);
    if (!this.#chutes.has(chuteId)) {
      rec.status = 404;
      return detail(res, 404, DETAIL.chuteNotFound);
    }
    const chute = this.#chutes.get(chuteId);
    const active = chute.instances.filter((i) => i.active);
    if (!active.length) {
      rec.status = 404;
      return detail(res, 404, DETAIL.noInstances);
    }
    let picked = [...active];
    if (this.shuffle) picked.sort(() => Math.random() - 0.5);
    picked = picked.slice(0, this.maxInstancesReturned);
    const key = `${user}\n${chuteId}`;
    const hash = this.#nonces.get(key) ?? { map: new Map() };
    hash.expiresAt = now + this.nonceServerTtl * 1000; // the whole hash's TTL is refreshed
    this.#nonces.set(key, hash);
    const instances = picked.map((inst) => {
      const nonces = Array.from({ length: this.noncesPerInstance }, tokenUrlsafe);
      for (const n of nonces) hash.map.set(n, inst.id);
      return { instance_id: inst.id, e2e_pubkey: b64(inst.publicKey), nonces };
    });
    rec.status = 200;
    rec.instanceIds = picked.map((i) => i.id);
    const payload = Buffer.from(JSON.stringify({ instances, nonce_expires_in: this.nonceExpiresIn, nonce_expires_at: Math.floor(now / 1000) + this.nonceExpiresIn }));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': payload.length });
    res.end(payload);
  }

  // The Redis script of api/e2e/router.py: HGET, compare with the instance, HDEL.
  #consumeNonce(user, chuteId, instanceId, nonce) {
    const hash = this.#nonces.get(`${user}\n${chuteId}`);
    if (!hash || hash.expiresAt <= Date.now() || !nonce) return false;
    const owner = hash.map.get(nonce);
    if (owner === undefined || owner !== instanceId) return false;
    hash.map.delete(nonce);
    return true;
  }

  async #invoke(req, res, user) {
    const h = req.headers;
    const rec = { user, chuteId: h['x-chute-id'], instanceId: h['x-instance-id'], nonce: h['x-e2e-nonce'], stream: String(h['x-e2e-stream'] ?? 'false').toLowerCase() === 'true', path: h['x-e2e-path'] ?? '/', status: 0, at: Date.now(), headers: h };
    this.invokes.push(rec);
    const body = await readBody(req);
    rec.bodyLength = body.length;
    const fail = (status, value) => {
      rec.status = status;
      return detail(res, status, value);
    };
    if (!user) return fail(401, 'Not authenticated');
    const missing = ['x-chute-id', 'x-instance-id', 'x-e2e-nonce'].filter((k) => h[k] === undefined);
    if (missing.length) {
      rec.status = 422;
      const payload = Buffer.from(JSON.stringify({ detail: missing.map((k) => ({ type: 'missing', loc: ['header', k], msg: 'Field required', input: null })) }));
      res.writeHead(422, { 'content-type': 'application/json', 'content-length': payload.length });
      return res.end(payload);
    }
    // The nonce is consumed before any other check (§4).
    if (!this.#consumeNonce(user, rec.chuteId, rec.instanceId, rec.nonce)) return fail(403, DETAIL.nonce);
    const forced = this.#failures.shift();
    if (forced) {
      rec.status = forced.status;
      if (forced.body !== undefined) {
        const payload = Buffer.from(forced.body);
        res.writeHead(forced.status, { 'content-type': 'application/json', 'content-length': payload.length });
        return res.end(payload);
      }
      return detail(res, forced.status, forced.detail);
    }
    let instance;
    for (const [id, chute] of this.#chutes) {
      const found = chute.instances.find((i) => i.id === rec.instanceId);
      if (found) {
        if (id !== rec.chuteId) return fail(400, DETAIL.instanceWrongChute);
        instance = found;
      }
    }
    if (!instance) return fail(404, DETAIL.instanceNotFound);
    if (!instance.active) return fail(410, DETAIL.instanceGone);
    if (this.#chutes.get(rec.chuteId).disabled) return fail(503, DETAIL.disabled);
    if (!body.length) return fail(400, DETAIL.emptyBody);
    const publicPaths = ['/v1/chat/completions', '/v1/completions', '/tokenize', '/detokenize'];
    // The instance answers 403 {"detail":"Path not available via E2E"} (§8); the API relays a
    // non-400 instance error as "Instance returned status <n>" (§11.1).
    if (!publicPaths.includes(rec.path)) return fail(403, 'Instance returned status 403');
    let plaintext;
    try {
      plaintext = openBlob(instance.secretKey, body, INFO_REQ);
    } catch {
      return fail(400, DETAIL.decryptionFailed);
    }
    let json;
    try {
      json = JSON.parse(plaintext.toString('utf8'));
    } catch {
      return fail(400, JSON.stringify({ detail: 'E2E decryption failed: invalid JSON' }));
    }
    const responseKeyB64 = json.e2e_response_pk;
    delete json.e2e_response_pk;
    const stream = json.stream === true;
    if (stream) json.stream_options = { ...(json.stream_options ?? {}), include_usage: true, continuous_usage_stats: true };
    const forwarded = Buffer.from(JSON.stringify(json));
    this.received.push({ user, instanceId: instance.id, chuteId: rec.chuteId, plaintext, json, forwarded, stream, path: rec.path });
    let responseKey;
    try {
      responseKey = unb64(responseKeyB64);
      if (responseKey.length !== KEM_PK_LEN) throw new Error('bad key');
    } catch {
      return fail(400, JSON.stringify({ detail: 'E2E decryption failed: missing or invalid e2e_response_pk' }));
    }
    const upstream = await forward(`${this.engineUrl}${rec.path}`, forwarded).catch((err) => ({ error: err }));
    if (upstream.error) return fail(500, DETAIL.internal);
    const status = upstream.res.statusCode;
    if (status === 400) {
      // Production relays the instance's sealed, transport-encrypted error body verbatim as detail.
      for await (const _ of upstream.res); // drain
      return fail(400, randomBytes(1200 + Math.floor(Math.random() * 400)).toString('base64'));
    }
    if (status === 429) return fail(429, DETAIL.capacity);
    if (status === 426) return fail(502, DETAIL.keyExchange);
    if (status < 200 || status >= 300) {
      for await (const _ of upstream.res);
      return fail(status, `Instance returned status ${status}`);
    }
    rec.status = 200;
    const tamper = this.#tampers.shift() ?? {};
    if (!stream) {
      const parts = [];
      for await (const c of upstream.res) parts.push(c);
      const engineBytes = Buffer.concat(parts);
      const blob = sealBlob(responseKey, engineBytes, INFO_RESP);
      if (tamper.response) blob[KEM_CT_LEN + AEAD_NONCE_LEN + 1] ^= 0x01;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.length });
      res.end(blob);
      return;
    }
    // §10.1 / §10.2: e2e_init, then per engine line an optional plaintext usage event and one
    // e2e event; nothing after the last line.
    const { cipherText, sharedSecret } = ml_kem768.encapsulate(Uint8Array.from(responseKey));
    const key = deriveKey(sharedSecret, cipherText, INFO_STREAM);
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(`data: {"e2e_init":"${b64(cipherText)}"}\n\n`);
    let cut = false;
    upstream.res.on('aborted', () => {
      cut = true;
    });
    let sent = 0;
    try {
      for await (const line of engineLines(upstream.res)) {
        if (res.destroyed) break;
        if (tamper.endAfter === sent) break;
        if (tamper.e2eErrorAfter === sent) {
          res.write(`data: ${JSON.stringify({ e2e_error: tamper.value ?? 'stream failed' })}\n\n`);
          break;
        }
        const text = line.toString('utf8');
        if (this.usageEvents && text.includes('"usage"') && text.startsWith('data: ')) {
          let usage = null;
          try {
            usage = JSON.parse(text.slice(6)).usage ?? null;
          } catch {
            usage = null;
          }
          res.write(`data: ${JSON.stringify({ usage })}\n\n`);
        }
        const nonce = randomBytes(AEAD_NONCE_LEN);
        const sealedChunk = Buffer.concat([nonce, aeadSeal(key, nonce, line)]);
        if (tamper.streamChunk === sent) sealedChunk[AEAD_NONCE_LEN] ^= 0x01;
        res.write(`data: {"e2e":"${b64(sealedChunk)}"}\n\n`);
        sent += 1;
      }
    } catch {
      cut = true;
    }
    rec.engineCut = cut;
    rec.e2eEvents = sent;
    res.end();
    if (tamper.endAfter !== undefined || tamper.e2eErrorAfter !== undefined) upstream.res.destroy();
  }
}

function newInstance() {
  const { publicKey, secretKey } = ml_kem768.keygen();
  return { id: randomUUID(), publicKey, secretKey, active: true };
}

function forward(url, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => resolve({ res }));
    req.on('error', reject);
    req.end(body);
  });
}

// aiohttp's `async for line in response.content`: lines including their "\n"; a last
// unterminated piece at EOF is yielded as is.
async function* engineLines(stream) {
  let pending = Buffer.alloc(0);
  for await (const chunk of stream) {
    pending = Buffer.concat([pending, chunk]);
    let i;
    while ((i = pending.indexOf(0x0a)) >= 0) {
      yield pending.subarray(0, i + 1);
      pending = pending.subarray(i + 1);
    }
  }
  if (pending.length) yield pending;
}
