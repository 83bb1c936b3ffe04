// e2ee-gateway (real processes) as the field-level E2EE server of dstack vllm-proxy, NEAR AI and
// Venice, driven by the independent Node peer (lib/field_peer.mjs, written from
// ../shared/specs/near-phala-protocol.md and venice-protocol.md), in front of the scripted engine:
//   attestation  dstack / NEAR / Venice report shapes, report_data checked with the peer's own
//                keccak/address code, the quote absent outside a TEE, and a fake configfs-tsm
//   round trips  every header family × algo × version, stream and not: what the engine receives is
//                exactly the peer's plaintext (all roles, part arrays, stringified arrays, tools),
//                every covered response field an envelope the peer opens with its own key and AAD
//   replay       v2 nonce reuse, the timestamp window, failed requests that do not burn nonces;
//                on a real redis-server: two gateways sharing it, 1,000 concurrent requests, Redis
//                killed (503, v1 unaffected) and restarted
//   bad input    keys, envelopes, plaintext, headers, /v1/completions: a 4xx with the spec's error
//                type and nothing forwarded (the engine's request count does not move)
//   fail closed  engine chunks the gateway cannot encrypt end the stream with an error, never
//                plaintext
//   logs         --log-level trace, and no line holds the MARKER
// Ground truth is what the engine recorded and what the peer decrypted, never the C++ code's view.

import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createECDH, randomBytes, randomUUID } from 'node:crypto';
import { request } from './lib/http.mjs';
import { startEngine } from './lib/engine.mjs';
import { deltaFrames, completionWith, toolCall, toolCallDeltas } from './lib/chat_chunks.mjs';
import { startGateway, linesContaining } from './lib/processes.mjs';
import { startRedis, redisCommand } from './lib/redis.mjs';
import * as fp from './lib/field_peer.mjs';
import { NEAR_421_BODY } from './lib/fake_field_providers.mjs';

const MODEL = 'test/model';
const MARKER = `FGW-${randomUUID()}`;
let serial = 0;
// A fresh marker per request: every one contains MARKER, so the log check covers them all; the
// closing 'x' keeps one from being a prefix of another (…-8x vs …-80x).
const mark = (what = 'm') => `${MARKER}-${what}-${++serial}x`;
const WINDOW = 300; // the gateway's default --replay-window

let engine;
let gw; // in-memory replay store, trace logging
const procs = [];

before(async () => {
  engine = await startEngine({ models: [{ id: MODEL, object: 'model', owned_by: 'vllm' }] });
  gw = await startGateway(['--backend', engine.url, '--model', MODEL, '--log-level', 'trace']);
  procs.push(gw);
});
afterEach(() => {
  for (const p of procs) if (!p.stopped) p.assertRunning();
});
after(async () => {
  await engine?.close();
});

// ---------------------------------------------------------------------------------------------
// Helpers

const isLowerHex = (s) => typeof s === 'string' && s.length % 2 === 0 && /^[0-9a-f]+$/.test(s);
const envelopeScheme = (c) => fp.schemeFor({ family: c.family === 'venice' ? 'dstack' : c.family, algo: c.algo, version: c.version });

// The model key each family's own attestation route publishes, checked the way its clients check it.
const keyCache = new Map();
async function modelKeyFor(base, family, algo) {
  const id = `${base} ${family} ${algo}`;
  if (keyCache.has(id)) return keyCache.get(id);
  let key;
  if (family === 'venice') {
    const nonce = fp.randomHex(32);
    const att = await fp.fetchVeniceAttestation(base, { model: MODEL, nonce });
    assert.equal(att.status, 200, `Venice attestation: ${att.text}`);
    assert.equal(att.json.nonce, nonce, 'Venice attestation echoes the nonce');
    key = att.json.signing_key;
  } else if (family === 'near') {
    const r = await fp.fetchNearReport(base, { model: MODEL, algo });
    assert.equal(r.status, 200, `NEAR report: ${r.text}`);
    key = fp.nearModelKey(r.json, { model: MODEL, algo });
  } else {
    const nonce = fp.randomHex(32);
    const r = await fp.fetchDstackReport(base, { algo, nonce });
    assert.equal(r.status, 200, `dstack report: ${r.text}`);
    const v = fp.verifyDstackReport(r.json, { algo, nonce, allowMissingQuote: true });
    assert.ok(v.ok, `dstack report fails the peer's checks: ${v.errors.join('; ')}`);
    key = v.modelKeyHex;
  }
  assert.ok(key, `${family} ${algo}: no model key in the attestation`);
  keyCache.set(id, key);
  return key;
}

async function clientFor(c, base = gw.url) {
  const { name: _n, streamOnly: _s, ...opts } = c;
  return new fp.FieldClient({ ...opts, modelKey: await modelKeyFor(base, c.family, c.algo) });
}

// POSTs `body` with `headers` (exact bytes when body is a string); resolves with status, headers,
// text and parsed json (undefined if not JSON), and how many requests reached the engine meanwhile.
async function post(base, path, headers, body) {
  const before = engine.count;
  const res = await request(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  let json;
  try {
    json = JSON.parse(res.text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text: res.text, json, forwarded: engine.count - before };
}

// The spec's error body (§9): {"error":{"message","type","param":null,"code":null}}, no X-E2EE-*
// headers (§7: error responses carry none), and nothing forwarded to the engine.
function assertRejected(res, status, type, what) {
  const body = res.text ?? res.body?.toString?.() ?? '';
  assert.equal(res.status, status, `${what}: expected HTTP ${status} ${type}, got ${res.status}: ${body}`);
  const json = res.json ?? JSON.parse(body);
  assert.equal(json?.error?.type, type, `${what}: error type, body ${body}`);
  assert.deepEqual(Object.keys(json.error).sort(), ['code', 'message', 'param', 'type'], `${what}: error body shape ${body}`);
  assert.equal(json.error.param, null, `${what}: param is null`);
  assert.equal(json.error.code, null, `${what}: code is null`);
  assert.ok(typeof json.error.message === 'string' && json.error.message.length > 0, `${what}: a message`);
  assert.equal(res.headers['x-e2ee-applied'], undefined, `${what}: error responses carry no X-E2EE-Applied`);
  if (res.forwarded !== undefined) assert.equal(res.forwarded, 0, `${what}: the engine must receive nothing`);
}

// Engine scripts are claimed by the request's own marker, so a test that fails half-way leaves
// nothing queued for the next one.
function onMarker(m, script) {
  engine.when((rec) => rec.body.includes(m), script, { times: 1 });
}
const lastFor = (m) => engine.requests.findLast((r) => r.body.includes(m));

// Every role, and text that needs escaping.
function chatBody(m, { stream = false } = {}) {
  return {
    model: MODEL,
    messages: [
      { role: 'system', content: `system ${m}` },
      { role: 'developer', content: `developer ${m}` },
      { role: 'user', content: `user ${m} "quotes" \\ backslash\nnew line\ttab ünïcödé 😀 </script>` },
      { role: 'assistant', content: `assistant ${m}` },
      { role: 'tool', tool_call_id: 'call_7', content: `tool ${m}` },
      { role: 'user', content: `last ${m}` },
    ],
    temperature: 0.25,
    max_tokens: 64,
    ...(stream ? { stream: true } : {}),
  };
}

// What the engine answers: content, reasoning_content and reasoning, all carrying the marker.
function answer(m) {
  return { content: `answer ${m} ünï 😀`, reasoning_content: `thinking ${m}`, reasoning: `reason ${m}` };
}
function answerScript(m, { stream, id = `chatcmpl-${++serial}` }) {
  const a = answer(m);
  if (!stream) return { json: completionWith({ model: MODEL, id, message: a }) };
  return {
    frames: deltaFrames({
      model: MODEL,
      id,
      deltas: [{ reasoning_content: 'thinking ' }, { reasoning_content: m }, { reasoning: `reason ${m}` }, { content: 'answer ' }, { content: `${m} ünï` }, { content: ' 😀' }],
      usage: { prompt_tokens: 9, completion_tokens: 6, total_tokens: 15 },
    }),
  };
}

// Checks the engine got exactly the peer's plaintext messages, and every other member as sent.
function assertEngineGot(m, plaintext, sent, what) {
  const rec = lastFor(m);
  assert.ok(rec, `${what}: the engine never saw the request`);
  assert.equal(rec.path, '/v1/chat/completions', `${what}: forwarded to the engine's chat route`);
  const { messages, ...rest } = rec.json;
  assert.deepEqual(messages, plaintext.messages, `${what}: the engine must receive exactly the messages the peer encrypted`);
  const { messages: _m, ...sentRest } = sent.body;
  assert.deepEqual(rest, sentRest, `${what}: every other member reaches the engine as the client sent it`);
  return rec;
}

// The envelope strings of one response object (message or delta fields), by field name.
function envelopesIn(obj, fields, holder) {
  const out = [];
  for (const ch of obj?.choices ?? []) {
    const target = ch?.[holder];
    for (const f of fields) if (typeof target?.[f] === 'string') out.push({ field: f, value: target[f] });
  }
  return out;
}

function ephemeralOf(scheme, envelopeHex) {
  return fp.splitEnvelope(scheme, Buffer.from(envelopeHex, 'hex')).pub.toString('hex');
}

// ---------------------------------------------------------------------------------------------

describe('attestation (dstack §2, NEAR §10.3, Venice §2)', () => {
  for (const algo of ['ecdsa', 'ed25519']) {
    test(`dstack report, signing_algo=${algo}: keys, signing_address, report_data = identity padded to 32 ‖ nonce, quote marked absent`, async () => {
      const nonce = fp.randomHex(32);
      const r = await fp.fetchDstackReport(gw.url, { algo, nonce });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['cache-control'], 'no-store', 'a nonce-bound report must not be cached');
      const rep = r.json;
      const v = fp.verifyDstackReport(rep, { algo, nonce, allowMissingQuote: true });
      assert.deepEqual(v.errors, [], 'the peer accepts the report (quote aside)');
      assert.equal(rep.signing_algo, algo);
      assert.equal(rep.request_nonce, nonce, 'request_nonce echoes the nonce');
      let identity;
      if (algo === 'ecdsa') {
        assert.match(rep.signing_public_key, /^[0-9a-f]{128}$/, 'ECDSA signing_public_key is X‖Y, 128 hex, no 04 (§2)');
        identity = fp.ethAddress(rep.signing_public_key);
        assert.equal(rep.signing_address, fp.checksumAddress(identity), 'signing_address is the EIP-55 address of keccak256(X‖Y)[12..]');
        assert.ok(gw.startLine.includes(rep.signing_address), `the start line names the same address: ${gw.startLine}`);
      } else {
        assert.match(rep.signing_public_key, /^[0-9a-f]{64}$/, 'Ed25519 signing_public_key is 64 hex');
        assert.equal(rep.signing_address, rep.signing_public_key, 'Ed25519: signing_address = signing_public_key (§2)');
        identity = Buffer.from(rep.signing_public_key, 'hex');
        assert.ok(gw.startLine.includes(rep.signing_public_key), 'the start line names the same Ed25519 key');
      }
      const expected = fp.reportDataFor(identity, Buffer.from(nonce, 'hex'));
      assert.equal(rep.report_data, expected.toString('hex'), 'report_data = identity.ljust(32, 0) ‖ nonce, computed by the peer');
      // No TEE here: the quote is absent and says so.
      assert.equal(rep.intel_quote, null, 'no intel_quote outside a TEE');
      assert.equal(rep.quote, null, 'no quote outside a TEE');
      assert.match(rep.quote_error ?? '', /TEE|TDX|tsm/i, `quote_error explains the absence: ${rep.quote_error}`);
      assert.equal(rep.info?.tee, 'none', 'info.tee says none');
      const withoutLists = (o) => {
        const { all_attestations: _a, model_attestations: _m, ...rest } = o;
        return rest;
      };
      assert.equal(rep.all_attestations.length, 1, 'all_attestations holds this instance');
      assert.deepEqual(rep.all_attestations[0], withoutLists(rep), 'all_attestations[0] is the same report, signing_public_key included');
      // The key is stable; a second nonce changes only the nonce half.
      const nonce2 = fp.randomHex(32);
      const r2 = await fp.fetchDstackReport(gw.url, { algo, nonce: nonce2 });
      assert.equal(r2.json.signing_public_key, rep.signing_public_key, 'the key is per process, not per report');
      assert.equal(r2.json.report_data, fp.reportDataFor(identity, Buffer.from(nonce2, 'hex')).toString('hex'));
    });
  }

  test('dstack report without signing_algo is ecdsa; without nonce a random 32-byte nonce is bound', async () => {
    const r = await request(`${gw.url}/v1/attestation/report`);
    assert.equal(r.status, 200, r.text);
    const rep = r.json();
    assert.equal(rep.signing_algo, 'ecdsa', 'signing_algo defaults to ecdsa (§2)');
    assert.match(rep.request_nonce, /^[0-9a-f]{64}$/, 'a random nonce is used and reported');
    assert.equal(rep.report_data, fp.reportDataFor(fp.ethAddress(rep.signing_public_key), Buffer.from(rep.request_nonce, 'hex')).toString('hex'));
  });

  test('NEAR shape: model_attestations[].signing_public_key for the requested model; without model the configured models', async () => {
    for (const algo of ['ecdsa', 'ed25519']) {
      const nonce = fp.randomHex(32);
      const r = await fp.fetchNearReport(gw.url, { model: MODEL, algo, nonce });
      assert.equal(r.status, 200, r.text);
      assert.ok(Array.isArray(r.json.model_attestations) && r.json.model_attestations.length === 1, `one model attestation: ${r.text.slice(0, 300)}`);
      const entry = r.json.model_attestations[0];
      assert.equal(entry.model, MODEL, 'the entry names the model');
      assert.equal(entry.signing_algo, algo);
      assert.equal(fp.nearModelKey(r.json, { model: MODEL, algo }), r.json.signing_public_key, 'NEAR clients find the same key as dstack clients');
      assert.equal(entry.request_nonce, nonce);
      const dstackKey = (await fp.fetchDstackReport(gw.url, { algo })).json.signing_public_key;
      assert.equal(entry.signing_public_key, dstackKey, 'one key per algo for every family');
    }
    const all = await request(`${gw.url}/v1/attestation/report?signing_algo=ed25519`);
    assert.deepEqual(all.json().model_attestations.map((a) => a.model), [MODEL], 'without ?model= every --model is listed');
  });

  test('Venice GET /api/v1/tee/attestation?model=&nonce=: echo, 04‖X‖Y key, address, report_data; refused by a Venice client without a quote', async () => {
    const nonce = fp.randomHex(32);
    const att = await fp.fetchVeniceAttestation(gw.url, { model: MODEL, nonce });
    assert.equal(att.status, 200, att.text);
    const a = att.json;
    assert.equal(a.nonce, nonce, 'nonce echo');
    assert.equal(a.model, MODEL, 'model echo');
    assert.equal(a.signing_algo, 'ecdsa');
    assert.match(a.signing_key, /^04[0-9a-f]{128}$/, 'signing_key: 130 hex, uncompressed (Venice §2.2)');
    assert.equal(a.signing_public_key, a.signing_key, 'signing_public_key is the alias of signing_key');
    const dstackKey = (await fp.fetchDstackReport(gw.url, { algo: 'ecdsa' })).json.signing_public_key;
    assert.equal(a.signing_key, `04${dstackKey}`, 'the same secp256k1 key as the dstack report');
    const address = fp.ethAddress(a.signing_key);
    assert.equal(a.signing_address.toLowerCase(), `0x${address.toString('hex')}`, 'signing_address derives from the key');
    assert.equal(a.report_data, Buffer.concat([address, Buffer.alloc(12), Buffer.from(nonce, 'hex')]).toString('hex'), 'REPORTDATA = address ‖ 12 zero bytes ‖ raw nonce (Venice §2.3 step 7)');
    assert.equal(a.intel_quote, null, 'no quote outside a TEE');
    assert.equal(a.verified, false, 'without a quote the report does not claim to be verified');
    assert.equal(a.server_verification?.tdx?.valid, false, 'the gateway does not claim a TDX verification');
    assert.equal(a.server_verification?.nonceBinding?.method, 'raw');
    const v = fp.verifyVeniceAttestation(a, { model: MODEL, nonce });
    assert.equal(v.modelKeyHex, a.signing_key, 'the Venice client finds the key');
    assert.deepEqual(v.errors.sort(), ['no intel_quote', 'verified is not true'], 'a Venice client refuses a quoteless report, for exactly these reasons');
  });

  test('bad attestation requests → 400: nonce not hex, not 32 bytes, unknown signing_algo (dstack and Venice)', async () => {
    const cases = [
      ['/v1/attestation/report?signing_algo=ecdsa&nonce=not-a-hex-nonce', { detail: 'Nonce must be hex-encoded' }],
      [`/v1/attestation/report?signing_algo=ecdsa&nonce=${'ab'.repeat(31)}`, { detail: 'Nonce must be 32 bytes' }],
      [`/v1/attestation/report?signing_algo=ed25519&nonce=${'ab'.repeat(33)}`, { detail: 'Nonce must be 32 bytes' }],
      [`/v1/attestation/report?signing_algo=ecdsa&nonce=${'a'.repeat(63)}`, { detail: 'Nonce must be hex-encoded' }],
      [`/api/v1/tee/attestation?model=${encodeURIComponent(MODEL)}&nonce=${'ab'.repeat(16)}`, { detail: 'Nonce must be exactly 32 bytes' }],
    ];
    for (const [path, body] of cases) {
      const r = await request(`${gw.url}${path}`);
      assert.equal(r.status, 400, `${path}: ${r.text}`);
      assert.deepEqual(r.json(), body, `${path}: the reference's message`);
    }
    const algo = await request(`${gw.url}/v1/attestation/report?signing_algo=rsa&nonce=${fp.randomHex(32)}`);
    assert.equal(algo.status, 400, algo.text);
    assert.equal(algo.json().error?.type, 'invalid_signing_algo', 'signing_algo other than ecdsa/ed25519 (§2)');
  });

  describe('with a TEE quote interface (a fake configfs-tsm that fills outblob)', () => {
    let tsm;
    let gwTsm;
    let kernel;
    const quotes = [];
    before(async () => {
      tsm = mkdtempSync(join(tmpdir(), 'e2ee-fake-tsm-'));
      const reportDir = join(tsm, 'report');
      mkdirSync(reportDir);
      // The kernel's part: for each new entry with a 64-byte inblob, a TDX-shaped quote whose
      // REPORTDATA is that inblob (written atomically).
      const done = new Set();
      kernel = setInterval(() => {
        for (const entry of readdirSync(reportDir)) {
          if (done.has(entry)) continue;
          const inblob = join(reportDir, entry, 'inblob');
          if (!existsSync(inblob) || statSync(inblob).size !== 64) continue;
          done.add(entry);
          const reportData = readFileSync(inblob);
          const quote = fp.buildTdxQuote({ reportData });
          quotes.push({ reportData, quote });
          writeFileSync(join(reportDir, entry, 'outblob.tmp'), quote);
          renameSync(join(reportDir, entry, 'outblob.tmp'), join(reportDir, entry, 'outblob'));
        }
      }, 5);
      gwTsm = await startGateway(['--backend', engine.url, '--model', MODEL, '--tsm-dir', tsm, '--allow-plaintext', '--log-level', 'trace']);
      procs.push(gwTsm);
    });
    after(async () => {
      clearInterval(kernel);
      await gwTsm?.stop();
      rmSync(tsm, { recursive: true, force: true });
    });

    test('the report carries the quote the TEE made for exactly identity ‖ nonce; the peer verifies REPORTDATA in it', async () => {
      assert.match(gwTsm.startLine, /TEE quotes configfs-tsm/, gwTsm.startLine);
      for (const algo of ['ecdsa', 'ed25519']) {
        const nonce = fp.randomHex(32);
        const r = await fp.fetchDstackReport(gwTsm.url, { algo, nonce });
        assert.equal(r.status, 200, r.text);
        const v = fp.verifyDstackReport(r.json, { algo, nonce });
        assert.deepEqual(v.errors, [], `${algo}: the peer verifies the quote's REPORTDATA, TEE type and debug bit`);
        const made = quotes.at(-1);
        assert.equal(r.json.intel_quote, made.quote.toString('hex'), `${algo}: intel_quote is the TEE's quote, hex`);
        assert.equal(r.json.quote, r.json.intel_quote, 'quote = intel_quote');
        assert.equal(made.reportData.toString('hex'), r.json.report_data, 'the TEE was asked for exactly report_data');
        assert.equal(r.json.quote_error, undefined, 'no quote_error when there is a quote');
      }
      const nonce = fp.randomHex(32);
      const att = await fp.fetchVeniceAttestation(gwTsm.url, { model: MODEL, nonce });
      assert.equal(att.json.verified, true, 'Venice: verified once a quote exists');
      const v = fp.verifyVeniceAttestation(att.json, { model: MODEL, nonce });
      assert.equal(v.nonceMethod, 'raw', 'REPORTDATA holds the raw nonce');
      assert.deepEqual(v.errors, ['server_verification.tdx.valid is not true'], 'only the self-verification claim is missing: the gateway leaves DCAP to the client');
    });

    test('--allow-plaintext: a chat without E2EE headers is forwarded with X-E2EE-Applied: false', async () => {
      const m = mark('plain');
      const r = await post(gwTsm.url, '/v1/chat/completions', {}, { model: MODEL, messages: [{ role: 'user', content: m }] });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['x-e2ee-applied'], 'false', 'plain chat says X-E2EE-Applied: false (§7)');
      assert.equal(r.forwarded, 1);
      assert.equal(r.json.choices[0].message.content, `echo: ${m}`);
    });
  });
});

// ---------------------------------------------------------------------------------------------

const FAMILIES = [
  { name: 'dstack ECDSA v1', family: 'dstack', algo: 'ecdsa', version: 1 },
  { name: 'dstack ECDSA v2', family: 'dstack', algo: 'ecdsa', version: 2 },
  { name: 'dstack ECDSA v2, client key as 128 hex (no 04)', family: 'dstack', algo: 'ecdsa', version: 2, clientKeyForm: 'raw64' },
  { name: 'dstack Ed25519 v1', family: 'dstack', algo: 'ed25519', version: 1 },
  { name: 'dstack Ed25519 v2', family: 'dstack', algo: 'ed25519', version: 2 },
  { name: 'NEAR Ed25519 v1 (NaCl box; XSalsa20 request boxes, as PyNaCl)', family: 'near', algo: 'ed25519', version: 1, boxCipher: 'salsa' },
  { name: 'NEAR Ed25519 v1 (NaCl box; XChaCha20 request boxes, as NIP)', family: 'near', algo: 'ed25519', version: 1, boxCipher: 'chacha' },
  { name: 'NEAR Ed25519 v2 (XChaCha20-Poly1305)', family: 'near', algo: 'ed25519', version: 2 },
  { name: 'NEAR ECDSA (client key X‖Y as NV sends it)', family: 'near', algo: 'ecdsa', clientKeyForm: 'raw64' },
  { name: 'NEAR ECDSA, X-Encrypt-All-Fields', family: 'near', algo: 'ecdsa', allFields: true },
  { name: 'NEAR Ed25519 v2, X-Encrypt-All-Fields', family: 'near', algo: 'ed25519', version: 2, allFields: true },
  { name: 'Venice (X-Venice-TEE-*)', family: 'venice', algo: 'ecdsa', streamOnly: true, responseFields: ['content', 'reasoning_content', 'reasoning'] },
];

function expectedVersion(c) {
  if (c.family === 'dstack') return String(c.version);
  if (c.family === 'near' && c.algo === 'ed25519') return String(c.version ?? 1);
  return '1';
}

describe('round trips: every family × algo × version, stream and not', () => {
  for (const c of FAMILIES) {
    for (const stream of c.streamOnly ? [true] : [false, true]) {
      test(`${c.name}, ${stream ? 'stream' : 'non-stream'}: the engine gets the plaintext, every response field is an envelope the peer opens`, async () => {
        const client = await clientFor(c);
        const m = mark(c.family);
        const body = chatBody(m, { stream });
        onMarker(m, answerScript(m, { stream }));
        const before = engine.count;
        const r = await client.chat(gw.url, body);
        const raw = r.stream ? r.stream.rawLines.join('\n') : r.body.toString('utf8');
        assert.equal(r.status, 200, `${c.name}: ${raw.slice(0, 500)}`);
        assert.equal(engine.count - before, 1, 'exactly one request reaches the engine');
        assert.ok(!JSON.stringify(r.sent.body).includes(m), 'the peer sent no plaintext (sanity of the peer)');
        assertEngineGot(m, body, r.sent, c.name);

        // Response headers (§7) and no plaintext anywhere in the response.
        assert.equal(r.headers['x-e2ee-applied'], 'true', 'X-E2EE-Applied: true');
        assert.equal(r.headers['x-e2ee-version'], expectedVersion(c), 'X-E2EE-Version echoes the negotiated version');
        assert.equal(r.headers['x-e2ee-algo'], c.algo, 'X-E2EE-Algo (the code’s name, not the doc’s X-E2EE-Alg: R3)');
        assert.deepEqual(r.headerProblems, [], 'the peer’s header checks');
        assert.ok(!raw.includes(m) && !raw.includes(MARKER), `no marker in clear in the response: ${raw.slice(0, 300)}`);
        assert.equal(r.error, null, `the peer opens every field: ${r.error?.message}`);

        const scheme = envelopeScheme(c);
        const fields = ['content', 'reasoning_content', 'reasoning'];
        const expected = answer(m);
        const pubs = [];
        if (!stream) {
          assert.match(String(r.headers['content-type']), /^application\/json/);
          for (const f of fields) {
            const env = r.json.choices[0].message[f];
            assert.ok(isLowerHex(env) && env.length >= 2 * fp.SCHEMES[scheme].min, `message.${f} is a lowercase hex ${scheme} envelope: ${String(env).slice(0, 60)}`);
            pubs.push(ephemeralOf(scheme, env));
            assert.equal(r.decrypted.choices[0].message[f], expected[f], `message.${f} opens to the engine's text`);
          }
          assert.deepEqual(r.json.usage, { prompt_tokens: 11, completion_tokens: 5, total_tokens: 16 }, 'usage travels as the engine sent it');
          if (client.v2) {
            const env = Buffer.from(r.json.choices[0].message.content, 'hex');
            const aad = (field) => fp.responseAad({ algo: c.algo, model: r.json.model, id: r.json.id, choice: 0, field, nonce: r.sent.ctx.nonce, ts: r.sent.ctx.ts });
            assert.equal(fp.open(scheme, client.identity.encryptionSecret, env, { aad: aad('content') }).toString(), expected.content, 'opens with the §8 response AAD');
            assert.throws(() => fp.open(scheme, client.identity.encryptionSecret, env, { aad: aad('reasoning_content') }), /decryption failed|did not open/i, 'the AAD binds the field name');
            assert.throws(() => fp.open(scheme, client.identity.encryptionSecret, env), /decryption failed|did not open/i, 'a v2 field does not open without its AAD');
          }
        } else {
          assert.match(String(r.headers['content-type']), /^text\/event-stream/);
          const s = r.stream;
          assert.ok(s.done, 'the stream ends with [DONE]');
          assert.deepEqual(s.otherLines, [], 'nothing but data lines');
          assert.deepEqual(s.texts[0], expected, 'the decrypted deltas are the engine’s text, field by field');
          const first = s.events[0].json.choices[0].delta;
          assert.deepEqual(first, { role: 'assistant' }, 'the role-only first chunk loses its empty content (dstack PR #6)');
          for (const ev of s.events) {
            for (const { field, value } of envelopesIn(ev.json, fields, 'delta')) {
              assert.ok(isLowerHex(value) && value.length >= 2 * fp.SCHEMES[scheme].min, `delta.${field} is an envelope: ${value.slice(0, 60)}`);
              pubs.push(ephemeralOf(scheme, value));
            }
          }
          assert.equal(pubs.length, 6, 'six encrypted deltas (two reasoning_content, one reasoning, three content)');
          const usage = s.events.find((e) => e.json.usage);
          assert.deepEqual(usage?.json.usage, { prompt_tokens: 9, completion_tokens: 6, total_tokens: 15 }, 'the usage chunk passes');
        }
        // Ephemeral keys: dstack caches one per response (§4.1), NEAR makes one per field (§10.2),
        // Venice one per chunk (Venice §4.3). NEAR ECDSA without X-Encrypt-All-Fields carries no
        // NEAR-only header, so it is the dstack v1 wire (same bytes, §1) and gets dstack's behaviour.
        const dstackLike = c.family === 'dstack' || (c.family === 'near' && c.algo === 'ecdsa' && !c.allFields);
        if (dstackLike) assert.equal(new Set(pubs).size, 1, 'dstack: one server ephemeral key per response');
        else assert.equal(new Set(pubs).size, pubs.length, `${c.family}: a fresh server ephemeral key per field`);
        if (c.family === 'near' && c.algo === 'ed25519' && (c.version ?? 1) === 1) {
          const env = r.stream ? r.stream.events.find((e) => e.json.choices?.[0]?.delta?.content)?.json.choices[0].delta.content : r.json.choices[0].message.content;
          assert.equal(fp.boxCipherOf(client.identity.encryptionSecret, Buffer.from(env, 'hex')), 'chacha', 'NEAR v1 replies are XChaCha20 boxes, as NIP sends since 421e506');
        }
      });
    }
  }

  test('dstack per-part arrays (v1 and v2): text parts opened with c=<index>, image parts passed, engine gets the array', async () => {
    for (const version of [1, 2]) {
      const client = await clientFor({ family: 'dstack', algo: 'ecdsa', version, parts: 'per-part' });
      const m = mark('parts');
      const image = { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } };
      const body = {
        model: MODEL,
        messages: [
          { role: 'system', content: [{ type: 'text', text: `sys part ${m}` }] },
          { role: 'user', content: [{ type: 'text', text: `look ${m}` }, image, { type: 'text', text: `and ${m}` }] },
        ],
      };
      const r = await client.chat(gw.url, body);
      assert.equal(r.status, 200, r.body?.toString());
      const sentParts = r.sent.body.messages[1].content;
      assert.ok(isLowerHex(sentParts[0].text) && isLowerHex(sentParts[2].text), 'text parts travel as envelopes');
      assert.deepEqual(sentParts[1], image, 'the image part travels as it is (§5)');
      assertEngineGot(m, body, r.sent, `per-part v${version}`);
      assert.equal(r.decrypted.choices[0].message.content, `echo: look ${m}and ${m}`);
    }
  });

  test('stringified part arrays (dstack PR #7, NEAR): one envelope of the JSON array; the engine gets the array back', async () => {
    for (const c of [
      { family: 'dstack', algo: 'ed25519', version: 2, parts: 'stringify' },
      { family: 'dstack', algo: 'ecdsa', version: 1, parts: 'stringify' },
      { family: 'near', algo: 'ed25519', version: 2 },
      { family: 'near', algo: 'ecdsa' },
    ]) {
      const client = await clientFor(c);
      const m = mark('stringified');
      const parts = [{ type: 'text', text: `describe ${m}` }, { type: 'image_url', image_url: { url: `https://example.invalid/${m}.png` } }];
      const body = { model: MODEL, messages: [{ role: 'user', content: parts }] };
      const r = await client.chat(gw.url, body);
      assert.equal(r.status, 200, `${c.family} ${c.algo}: ${r.body?.toString()}`);
      assert.equal(typeof r.sent.body.messages[0].content, 'string', 'the array travelled as one envelope');
      assert.ok(!JSON.stringify(r.sent.body).includes(m), 'the image URL is inside the envelope too');
      assertEngineGot(m, body, r.sent, `stringified ${c.family} ${c.algo}`);
    }
  });

  test('JSON text that is not a list stays text (PR #7 test ..._keeps_non_list_json_string_as_plain_text)', async () => {
    const client = await clientFor({ family: 'dstack', algo: 'ecdsa', version: 2 });
    const m = mark('jsontext');
    const body = { model: MODEL, messages: [{ role: 'user', content: `{"note": "${m}", "list": [1, 2]}` }] };
    const r = await client.chat(gw.url, body);
    assert.equal(r.status, 200, r.body?.toString());
    assertEngineGot(m, body, r.sent, 'json text');
  });

  test('empty content (R7): v1 accepts a plaintext "" (NEAR clients send it); an encrypted "" opens to ""', async () => {
    const near = await clientFor({ family: 'near', algo: 'ed25519', version: 2 });
    const m1 = mark('empty');
    const body1 = { model: MODEL, messages: [{ role: 'assistant', content: '' }, { role: 'user', content: `after empty ${m1}` }] };
    const r1 = await near.chat(gw.url, body1);
    assert.equal(r1.status, 200, r1.body?.toString());
    assert.equal(r1.sent.body.messages[0].content, '', 'NEAR leaves "" unencrypted (§10.2)');
    assertEngineGot(m1, body1, r1.sent, 'NEAR empty');
    const dstack = await clientFor({ family: 'dstack', algo: 'ecdsa', version: 2 });
    const m2 = mark('empty');
    const body2 = { model: MODEL, messages: [{ role: 'assistant', content: '' }, { role: 'user', content: `after empty ${m2}` }] };
    const r2 = await dstack.chat(gw.url, body2);
    assert.equal(r2.status, 200, r2.body?.toString());
    assert.ok(isLowerHex(r2.sent.body.messages[0].content), 'dstack encrypts ""');
    assertEngineGot(m2, body2, r2.sent, 'dstack encrypted empty');
  });

  test('Ed25519 without any version header (dstack v1 and NEAR v1 look alike): both wire formats open, the reply comes in the client’s', async () => {
    for (const c of [
      { family: 'dstack', algo: 'ed25519', version: 1, drop: 'X-E2EE-Version' },
      { family: 'near', algo: 'ed25519', version: 1, drop: 'X-Encryption-Version' },
    ]) {
      const client = await clientFor({ family: c.family, algo: c.algo, version: c.version });
      const m = mark('noversion');
      const r = await client.chat(gw.url, { model: MODEL, messages: [{ role: 'user', content: m }] }, { headers: { [c.drop]: undefined } });
      assert.equal(r.status, 200, `${c.family}: ${r.body?.toString()}`);
      assert.equal(r.error, null, `${c.family}: the reply opens in the client's own scheme: ${r.error?.message}`);
      assert.equal(r.decrypted.choices[0].message.content, `echo: ${m}`);
      assert.equal(lastFor(m).json.messages[0].content, m);
    }
  });

  test('X-Encrypt-All-Fields (NEAR §10.4): tools, tool_choice, names, history tool calls and reasoning reach the engine decrypted', async () => {
    for (const c of [{ family: 'near', algo: 'ecdsa', allFields: true }, { family: 'near', algo: 'ed25519', version: 2, allFields: true }]) {
      const client = await clientFor(c);
      const m = mark('allfields');
      const fn = `lookup_${m}`;
      const body = {
        model: MODEL,
        messages: [
          { role: 'system', content: `sys ${m}` },
          { role: 'user', name: `alice_${m}`, content: `find ${m}` },
          { role: 'assistant', content: null, reasoning_content: `I should look ${m}`, tool_calls: [{ id: 'call_1', type: 'function', function: { name: fn, arguments: JSON.stringify({ q: m }) } }] },
          { role: 'tool', tool_call_id: 'call_1', content: `found ${m}` },
        ],
        tools: [{ type: 'function', function: { name: fn, description: `Looks up ${m}`, parameters: { type: 'object', properties: { q: { type: 'string', description: `query ${m}` } }, required: ['q'] } } }],
        tool_choice: { type: 'function', function: { name: fn } },
      };
      const r = await client.chat(gw.url, body);
      assert.equal(r.status, 200, r.body?.toString());
      assert.ok(!JSON.stringify(r.sent.body).includes(m), 'with all-fields nothing of the marker travels in clear');
      const rec = lastFor(m);
      assert.deepEqual(rec.json, body, 'the engine receives the whole plaintext request, tools and parameters as JSON values');
    }
  });

  test('X-Encrypt-All-Fields responses: tool call names and arguments are envelopes (non-stream and stream)', async () => {
    const client = await clientFor({ family: 'near', algo: 'ed25519', version: 2, allFields: true });
    for (const stream of [false, true]) {
      const m = mark('toolreply');
      const name = `lookup_${m}`;
      const args = JSON.stringify({ q: m, n: 3 });
      onMarker(
        m,
        stream
          ? { frames: deltaFrames({ model: MODEL, deltas: [{ content: `calling ${m}` }, ...toolCallDeltas(0, 'call_9', name, args, 3)], finishReason: 'tool_calls' }) }
          : { json: completionWith({ model: MODEL, message: { content: `calling ${m}`, tool_calls: [toolCall('call_9', name, args)] }, finishReason: 'tool_calls' }) },
      );
      const r = await client.chat(gw.url, { model: MODEL, stream, messages: [{ role: 'user', content: `tools ${m}` }] });
      assert.equal(r.status, 200);
      const raw = stream ? r.stream.rawLines.join('\n') : r.body.toString();
      assert.ok(!raw.includes(m), `no tool name or argument in clear: ${raw.slice(0, 400)}`);
      assert.equal(r.error, null, `the peer opens every field: ${r.error?.message}`);
      if (stream) {
        const calls = r.stream.events.flatMap((e) => e.decrypted?.choices?.[0]?.delta?.tool_calls ?? []);
        assert.equal(calls.map((t) => t.function?.arguments ?? '').join(''), args, 'the argument fragments open and join to the engine’s JSON');
        assert.equal(calls[0].function.name, name, 'the tool name opens');
        assert.equal(calls[0].id, 'call_9', 'ids stay plaintext (routing)');
        const rawCalls = r.stream.events.flatMap((e) => e.json.choices?.[0]?.delta?.tool_calls ?? []);
        for (const t of rawCalls) for (const v of [t.function?.name, t.function?.arguments].filter((x) => typeof x === 'string')) assert.ok(isLowerHex(v), `tool call fields are envelopes: ${v.slice(0, 40)}`);
      } else {
        const tc = r.decrypted.choices[0].message.tool_calls[0];
        assert.deepEqual(tc, toolCall('call_9', name, args), 'the tool call opens to the engine’s');
        const rawTc = r.json.choices[0].message.tool_calls[0];
        assert.ok(isLowerHex(rawTc.function.name) && isLowerHex(rawTc.function.arguments), 'name and arguments are envelopes');
      }
    }
  });

  test('dstack headers + X-Encrypt-All-Fields stay dstack (wire, version echo, 400 on a stale key) and seal tool calls too', async () => {
    for (const c of [
      { family: 'dstack', algo: 'ed25519', version: 1 },
      { family: 'dstack', algo: 'ed25519', version: 2 },
      { family: 'dstack', algo: 'ecdsa', version: 2 },
    ]) {
      const client = await clientFor(c);
      const m = mark('dstack-all');
      const name = `fn_${m}`;
      const args = JSON.stringify({ q: m });
      onMarker(m, { json: completionWith({ model: MODEL, message: { content: `calling ${m}`, tool_calls: [toolCall('call_5', name, args)] }, finishReason: 'tool_calls' }) });
      const body = { model: MODEL, messages: [{ role: 'user', content: `use tools ${m}` }] };
      const r = await client.chat(gw.url, body, { headers: { 'X-Encrypt-All-Fields': 'true' } });
      const what = `dstack ${c.algo} v${c.version} + X-Encrypt-All-Fields`;
      assert.equal(r.status, 200, `${what}: ${r.body?.toString()}`);
      assert.equal(r.headers['x-e2ee-version'], String(c.version), `${what}: dstack's X-E2EE-Version is echoed`);
      assert.equal(r.error, null, `${what}: content opens in dstack's scheme: ${r.error?.message}`);
      assertEngineGot(m, body, r.sent, what);
      assert.equal(r.decrypted.choices[0].message.content, `calling ${m}`);
      const tc = r.json.choices[0].message.tool_calls[0];
      assert.ok(!r.body.toString().includes(m), `${what}: no tool name or argument in clear`);
      // fields.hpp's extension of the §8 AAD for the all-fields response fields.
      for (const [field, expected] of [
        ['name', name],
        ['arguments', args],
      ]) {
        const aad = client.v2 ? fp.responseAad({ algo: c.algo, model: r.json.model, id: r.json.id, choice: 0, field: `tool_calls.0.function.${field}`, nonce: r.sent.ctx.nonce, ts: r.sent.ctx.ts }) : undefined;
        assert.equal(fp.open(client.scheme, client.identity.encryptionSecret, Buffer.from(tc.function[field], 'hex'), { aad }).toString(), expected, `${what}: tool call ${field} opens`);
      }
      const before = engine.count;
      const stale = await client.chat(gw.url, body, { headers: { 'X-Encrypt-All-Fields': 'true', 'X-Model-Pub-Key': fp.KeyPair.of(c.algo).signingPublicKeyHex } });
      assertRejected({ ...stale, forwarded: engine.count - before }, 400, 'e2ee_model_key_mismatch', `${what}: a stale key is dstack's 400, not NEAR's 421`);
    }
  });

  test('without X-Encrypt-All-Fields tool calls travel in plaintext, as the spec documents (§6 "not encrypted"); content is still sealed', async () => {
    const client = await clientFor({ family: 'dstack', algo: 'ecdsa', version: 2 });
    const m = mark('toolplain');
    onMarker(m, { json: completionWith({ model: MODEL, message: { content: `sealed ${m}`, tool_calls: [toolCall('call_3', 'get_time', { tz: 'UTC' })] }, finishReason: 'tool_calls' }) });
    const r = await client.chat(gw.url, { model: MODEL, messages: [{ role: 'user', content: `time ${m}` }] });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.choices[0].message.tool_calls[0], toolCall('call_3', 'get_time', { tz: 'UTC' }), 'the documented plaintext leak of dstack’s field coverage');
    assert.ok(isLowerHex(r.json.choices[0].message.content), 'content is an envelope');
    assert.equal(r.decrypted.choices[0].message.content, `sealed ${m}`);
  });

  test('v2 response AAD (§8, R5): the response’s own model and id, choice = array position (not choice.index)', async () => {
    const client = await clientFor({ family: 'dstack', algo: 'ed25519', version: 2 });
    for (const stream of [false, true]) {
      const m = mark('aad');
      const id = `resp-id-${serial}`;
      const served = 'served/other-model';
      const choices = (holder) => [
        { index: 1, [holder]: { role: 'assistant', content: `second ${m}` }, finish_reason: null },
        { index: 0, [holder]: { role: 'assistant', content: `first ${m}` }, finish_reason: null },
      ];
      onMarker(
        m,
        stream
          ? { frames: [`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', model: served, choices: choices('delta') })}\n\n`, 'data: [DONE]\n\n'] }
          : { json: { id, object: 'chat.completion', model: served, choices: choices('message') } },
      );
      const r = await client.chat(gw.url, { model: MODEL, n: 2, stream, messages: [{ role: 'user', content: m }] });
      assert.equal(r.status, 200);
      assert.equal(r.error, null, `opens with position-based AAD over the response's model/id: ${r.error?.message}`);
      const obj = stream ? r.stream.events[0].json : r.json;
      const holder = stream ? 'delta' : 'message';
      const scheme = 'x25519-aesgcm';
      const env = Buffer.from(obj.choices[0][holder].content, 'hex');
      const aad = (o) => fp.responseAad({ algo: 'ed25519', model: served, id, choice: 0, field: 'content', nonce: r.sent.ctx.nonce, ts: r.sent.ctx.ts, ...o });
      assert.equal(fp.open(scheme, client.identity.encryptionSecret, env, { aad: aad() }).toString(), `second ${m}`, 'array position 0 holds index 1');
      assert.throws(() => fp.open(scheme, client.identity.encryptionSecret, env, { aad: aad({ choice: 1 }) }), /decryption failed/i, 'choice.index is not what the AAD binds');
      assert.throws(() => fp.open(scheme, client.identity.encryptionSecret, env, { aad: aad({ model: MODEL }) }), /decryption failed/i, 'the request’s model is not what the AAD binds');
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('replay protection (dstack v2, §8; R4 fixed: keyed on the nonce alone)', () => {
  const v2 = () => clientFor({ family: 'dstack', algo: 'ecdsa', version: 2 });
  const now = () => Math.floor(Date.now() / 1000);

  test('the same nonce twice → 400 e2ee_replay_detected, nothing forwarded the second time', async () => {
    const client = await v2();
    const m = mark('replay');
    const sent = client.encryptRequest({ model: MODEL, messages: [{ role: 'user', content: m }] });
    const first = await post(gw.url, '/v1/chat/completions', sent.headers, sent.body);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.forwarded, 1);
    const again = await post(gw.url, '/v1/chat/completions', sent.headers, sent.body);
    assertRejected(again, 400, 'e2ee_replay_detected', 'byte-identical replay');
  });

  test('the same nonce with another timestamp, or another algo, is still a replay (the reference keyed on nonce+ts+algo)', async () => {
    const client = await v2();
    const ed = await clientFor({ family: 'dstack', algo: 'ed25519', version: 2 });
    const nonce = fp.randomHex(16);
    const ok = await client.chat(gw.url, { model: MODEL, messages: [{ role: 'user', content: mark('replay') }] }, { ctx: { nonce, ts: now() } });
    assert.equal(ok.status, 200);
    const before = engine.count;
    const otherTs = await client.chat(gw.url, { model: MODEL, messages: [{ role: 'user', content: mark('replay') }] }, { ctx: { nonce, ts: now() - 7 } });
    assertRejected({ ...otherTs, forwarded: engine.count - before }, 400, 'e2ee_replay_detected', 'same nonce, new timestamp');
    const otherAlgo = await ed.chat(gw.url, { model: MODEL, messages: [{ role: 'user', content: mark('replay') }] }, { ctx: { nonce, ts: now() } });
    assertRejected({ ...otherAlgo, forwarded: engine.count - before }, 400, 'e2ee_replay_detected', 'same nonce, other algo');
  });

  test('v1 has no replay protection: the identical v1 request twice is served twice', async () => {
    const client = await clientFor({ family: 'dstack', algo: 'ecdsa', version: 1 });
    const sent = client.encryptRequest({ model: MODEL, messages: [{ role: 'user', content: mark('v1twice') }] });
    for (let i = 0; i < 2; i++) {
      const r = await post(gw.url, '/v1/chat/completions', sent.headers, sent.body);
      assert.equal(r.status, 200, `v1 send ${i + 1}: ${r.text}`);
      assert.equal(r.forwarded, 1);
    }
  });

  test('a timestamp outside the window (past or future) → 400 e2ee_invalid_timestamp; the edge of the window is accepted', async () => {
    const client = await v2();
    for (const ts of [now() - WINDOW - 30, now() + WINDOW + 30]) {
      const sent = client.encryptRequest({ model: MODEL, messages: [{ role: 'user', content: mark('window') }] }, { ctx: { ts } });
      const r = await post(gw.url, '/v1/chat/completions', sent.headers, sent.body);
      assertRejected(r, 400, 'e2ee_invalid_timestamp', `ts ${ts - now()} s from now`);
      // The refused request did not burn its nonce: the same nonce with a good timestamp works.
      const retry = client.encryptRequest({ model: MODEL, messages: [{ role: 'user', content: mark('window') }] }, { ctx: { nonce: sent.ctx.nonce } });
      const ok = await post(gw.url, '/v1/chat/completions', retry.headers, retry.body);
      assert.equal(ok.status, 200, `a rejected timestamp must not burn the nonce: ${ok.text}`);
    }
    const edge = client.encryptRequest({ model: MODEL, messages: [{ role: 'user', content: mark('window') }] }, { ctx: { ts: now() - WINDOW + 20 } });
    const r = await post(gw.url, '/v1/chat/completions', edge.headers, edge.body);
    assert.equal(r.status, 200, `inside the window: ${r.text}`);
  });

  test('a request that fails to decrypt does not burn its nonce (§3: decrypt, then claim)', async () => {
    const client = await v2();
    const m = mark('noburn');
    const nonce = fp.randomHex(16);
    const bad = client.encryptRequest({ model: MODEL, messages: [{ role: 'user', content: m }] }, { ctx: { nonce }, aad: (w, aad) => aad.replace('|m=0|', '|m=9|') });
    assertRejected(await post(gw.url, '/v1/chat/completions', bad.headers, bad.body), 400, 'e2ee_decryption_failed', 'wrong AAD');
    const good = client.encryptRequest({ model: MODEL, messages: [{ role: 'user', content: m }] }, { ctx: { nonce } });
    const ok = await post(gw.url, '/v1/chat/completions', good.headers, good.body);
    assert.equal(ok.status, 200, ok.text);
  });

  test('v2 header errors: short nonce, nonce without timestamp, version 2 without either, non-integer timestamp', async () => {
    const client = await v2();
    const base = client.encryptRequest({ model: MODEL, messages: [{ role: 'user', content: mark('hdr') }] });
    const cases = [
      [{ 'X-E2EE-Nonce': 'short-nonce-123' }, 'e2ee_invalid_nonce', 'a 15-character nonce'],
      [{ 'X-E2EE-Timestamp': undefined }, 'e2ee_header_missing', 'a nonce without a timestamp'],
      [{ 'X-E2EE-Nonce': undefined, 'X-E2EE-Timestamp': undefined }, 'e2ee_header_missing', 'version 2 without nonce and timestamp'],
      [{ 'X-E2EE-Timestamp': 'soon' }, 'e2ee_invalid_timestamp', 'a timestamp that is not an integer'],
      [{ 'X-E2EE-Version': '3' }, 'e2ee_invalid_version', 'X-E2EE-Version 3'],
    ];
    for (const [change, type, what] of cases) {
      const headers = { ...base.headers, ...change };
      for (const k of Object.keys(headers)) if (headers[k] === undefined) delete headers[k];
      assertRejected(await post(gw.url, '/v1/chat/completions', headers, base.body), 400, type, what);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('replay on a real Redis shared by two gateways', () => {
  let redis;
  let r1;
  let r2;
  let keyDir;
  const now = () => Math.floor(Date.now() / 1000);
  const v2 = () => clientFor({ family: 'dstack', algo: 'ecdsa', version: 2 }, r1.url);

  before(async () => {
    redis = await startRedis();
    keyDir = mkdtempSync(join(tmpdir(), 'e2ee-fgw-keys-'));
    // Replicas share their keys (--key-dir) and their replay state (--redis).
    r1 = await startGateway(['--backend', engine.url, '--model', MODEL, '--redis', redis.url, '--key-dir', keyDir, '--log-level', 'trace']);
    r2 = await startGateway(['--backend', engine.url, '--model', MODEL, '--redis', redis.url, '--key-dir', keyDir, '--log-level', 'trace']);
    procs.push(r1, r2);
  });
  after(async () => {
    await r1?.stop();
    await r2?.stop();
    await redis?.stop();
    redis?.cleanup();
    rmSync(keyDir, { recursive: true, force: true });
  });

  test('both replicas publish the same keys and name Redis in their start lines', async () => {
    assert.ok(r1.startLine.includes(`nonces Redis 127.0.0.1:${redis.port}`), r1.startLine);
    for (const algo of ['ecdsa', 'ed25519']) {
      const a = await fp.fetchDstackReport(r1.url, { algo });
      const b = await fp.fetchDstackReport(r2.url, { algo });
      assert.equal(a.json.signing_public_key, b.json.signing_public_key, `${algo}: one key for the replicas`);
    }
  });

  test('a nonce used on one gateway is rejected by the other (both directions); the claim lives ≥ 2 × the window in Redis', async () => {
    const client = await v2();
    for (const [first, second] of [
      [r1, r2],
      [r2, r1],
    ]) {
      const sent = client.encryptRequest({ model: MODEL, messages: [{ role: 'user', content: mark('shared') }] });
      const ok = await post(first.url, '/v1/chat/completions', sent.headers, sent.body);
      assert.equal(ok.status, 200, ok.text);
      const replay = await post(second.url, '/v1/chat/completions', sent.headers, sent.body);
      assertRejected(replay, 400, 'e2ee_replay_detected', 'the replica shares the replay state');
      const keys = await redisCommand(redis.port, 'KEYS', `*${sent.ctx.nonce}*`);
      assert.equal(keys.length, 1, `one Redis key for the nonce: ${JSON.stringify(keys)}`);
      assert.ok(!keys[0].includes(String(sent.ctx.ts)), `the key does not include the timestamp (R4): ${keys[0]}`);
      const ttl = await redisCommand(redis.port, 'TTL', keys[0]);
      assert.ok(ttl > 2 * WINDOW - 30 && ttl <= 2 * WINDOW, `TTL ${ttl} s: at least twice the ${WINDOW} s window, so an edge timestamp cannot outlive it (R4)`);
    }
  });

  test('1,000 concurrent v2 requests with unique nonces over both replicas → all accepted, every answer opens', { timeout: 180000 }, async () => {
    const client = await v2();
    const fast = fastEcdsa(client);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const N = 1000;
    const before = engine.count;
    const jobs = [];
    try {
      for (let i = 0; i < N; i++) {
        const m = mark('bulk');
        const sent = fast.encrypt(m);
        const target = i % 2 === 0 ? r1 : r2;
        jobs.push(agentPost(agent, `${target.url}/v1/chat/completions`, sent.headers, JSON.stringify(sent.body)).then((res) => ({ res, sent, m })));
      }
      const results = await Promise.all(jobs);
      const failed = results.filter(({ res }) => res.status !== 200);
      assert.equal(failed.length, 0, `${failed.length} of ${N} refused; first: ${failed[0]?.res.status} ${failed[0]?.res.text}`);
      assert.equal(engine.count - before, N, 'every request reached the engine once');
      const received = new Set(engine.requests.slice(before).map((rec) => rec.json?.messages?.[0]?.content));
      for (const { res, sent, m } of results) {
        assert.ok(received.has(m), 'the engine got each request’s own plaintext');
        assert.equal(fast.openContent(JSON.parse(res.text), sent.ctx), `echo: ${m}`, 'each answer is the engine’s echo of its own request');
      }
      assert.equal(new Set(results.map((x) => x.sent.ctx.nonce)).size, N, 'the nonces were unique');
      // A sample replayed on the other replica: all refused.
      for (const { sent } of results.slice(0, 10)) {
        const replay = await post(r2.url, '/v1/chat/completions', sent.headers, sent.body);
        assertRejected(replay, 400, 'e2ee_replay_detected', 'a bulk nonce replayed');
      }
    } finally {
      agent.destroy();
    }
  });

  test('Redis killed: v2 → 503 e2ee_replay_store_unavailable (never "replay"), nothing forwarded; v1 and attestation still work', async () => {
    const client = await v2();
    const v1 = await clientFor({ family: 'dstack', algo: 'ecdsa', version: 1 }, r1.url);
    await redis.stop();
    for (const g of [r1, r2, r1]) {
      const sent = client.encryptRequest({ model: MODEL, messages: [{ role: 'user', content: mark('outage') }] });
      const r = await post(g.url, '/v1/chat/completions', sent.headers, sent.body);
      assertRejected(r, 503, 'e2ee_replay_store_unavailable', 'v2 during the outage');
      const plainV1 = v1.encryptRequest({ model: MODEL, messages: [{ role: 'user', content: mark('outage-v1') }] });
      const ok = await post(g.url, '/v1/chat/completions', plainV1.headers, plainV1.body);
      assert.equal(ok.status, 200, `v1 needs no replay store: ${ok.text}`);
      assert.equal(ok.forwarded, 1);
    }
    const rep = await fp.fetchDstackReport(r2.url, { algo: 'ecdsa' });
    assert.equal(rep.status, 200, 'attestation does not need Redis');
    for (const g of [r1, r2]) g.assertRunning();
  });

  test('Redis restarted on the same port: the first v2 request on each replica is accepted again', async () => {
    await redis.start();
    const client = await v2();
    for (const g of [r1, r2]) {
      const sent = client.encryptRequest({ model: MODEL, messages: [{ role: 'user', content: mark('recovered') }] });
      const r = await post(g.url, '/v1/chat/completions', sent.headers, sent.body);
      assert.equal(r.status, 200, `${g.url}: the first v2 request after the restart: ${r.text}`);
      const replay = await post(g === r1 ? r2.url : r1.url, '/v1/chat/completions', sent.headers, sent.body);
      assertRejected(replay, 400, 'e2ee_replay_detected', 'replay protection is back, shared again');
    }
  });
});

// The peer's dstack ECDSA v2 request/response envelopes (§4.1, §8) with OpenSSL's secp256k1 (Node's
// ECDH, which yields the X coordinate) instead of @noble's, for the 1,000-request run: scalar
// multiplications cost milliseconds on a busy CI machine. Requests reuse the client's session key
// as the envelope key, as Venice's LIB does (venice-protocol.md §4.3; the server takes the key from
// each envelope), so one ECDH serves them all. Checked against the peer first.
function fastSealer(ownSecret, recipientPub65) {
  const own = createECDH('secp256k1');
  own.setPrivateKey(ownSecret);
  const key = fp.hkdf32(own.computeSecret(recipientPub65), fp.INFO.ecdsa);
  const pub = own.getPublicKey(null, 'uncompressed');
  return (plaintext, aad) => {
    const iv = randomBytes(12);
    return Buffer.concat([pub, iv, fp.aesGcmSeal(key, iv, Buffer.from(plaintext, 'utf8'), aad)]);
  };
}
function fastOpen(secret, env, aad) {
  const own = createECDH('secp256k1');
  own.setPrivateKey(secret);
  return fp.aesGcmOpen(fp.hkdf32(own.computeSecret(env.subarray(0, 65)), fp.INFO.ecdsa), env.subarray(65, 77), env.subarray(77), aad).toString('utf8');
}
function fastEcdsa(client) {
  // Same bytes as the peer: the peer opens a fast envelope, and the fast path opens the peer's.
  const probe = fp.KeyPair.ecdsa();
  const sender = fp.KeyPair.ecdsa();
  assert.equal(fp.open('ecdsa-aesgcm', probe.secret, fastSealer(sender.secret, probe.publicKey)('fast→peer', 'aad-1'), { aad: 'aad-1' }).toString(), 'fast→peer', 'the peer opens the fast envelope');
  assert.equal(fastOpen(probe.secret, fp.seal('ecdsa-aesgcm', probe.publicKey, 'peer→fast', { aad: 'aad-2' }), 'aad-2'), 'peer→fast', 'the fast path opens the peer’s envelope');
  const seal = fastSealer(client.identity.secret, fp.normalizeSecpPublic(client.modelKey));
  return {
    encrypt(text) {
      const ctx = client.newContext();
      const aad = fp.requestAad({ algo: 'ecdsa', model: MODEL, m: 0, c: '-', nonce: ctx.nonce, ts: ctx.ts });
      return { ctx, headers: client.headers(ctx), body: { model: MODEL, messages: [{ role: 'user', content: seal(text, aad).toString('hex') }] } };
    },
    openContent(json, ctx) {
      const aad = fp.responseAad({ algo: 'ecdsa', model: json.model, id: json.id, choice: 0, field: 'content', nonce: ctx.nonce, ts: ctx.ts });
      return fastOpen(client.identity.secret, Buffer.from(json.choices[0].message.content, 'hex'), aad);
    },
  };
}

function agentPost(agent, url, headers, payload) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers } }, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(60000, () => req.destroy(new Error(`POST ${url}: no answer within 60 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

// ---------------------------------------------------------------------------------------------

describe('bad input: a 4xx with the spec’s type, nothing forwarded to the engine', () => {
  const body = (m) => ({ model: MODEL, messages: [{ role: 'user', content: m }] });

  // Sends a valid encrypted request with some headers replaced.
  async function withHeaders(c, change, m = mark('bad')) {
    const client = await clientFor(c);
    const sent = client.encryptRequest(body(m));
    const headers = { ...sent.headers, ...change };
    for (const k of Object.keys(headers)) if (headers[k] === undefined) delete headers[k];
    return post(gw.url, c.family === 'venice' ? '/api/v1/chat/completions' : '/v1/chat/completions', headers, sent.body);
  }

  test('client keys: compressed, off-curve, wrong length, not hex, low-order and off-curve Ed25519 → e2ee_invalid_public_key', async () => {
    const k = fp.KeyPair.ecdsa();
    const pub = k.publicKey;
    const compressed = Buffer.concat([Buffer.from([pub[64] & 1 ? 3 : 2]), pub.subarray(1, 33)]).toString('hex');
    const offCurve = Buffer.from(pub);
    offCurve[64] ^= 1;
    let notAPoint;
    for (;;) {
      const b = randomBytes(32);
      try {
        fp.ed25519.Point.fromHex(b.toString('hex'));
      } catch {
        notAPoint = b.toString('hex');
        break;
      }
    }
    const ecdsa = { family: 'dstack', algo: 'ecdsa', version: 2 };
    const ed = { family: 'dstack', algo: 'ed25519', version: 2 };
    const cases = [
      [ecdsa, compressed, 'a compressed secp256k1 key (33 bytes; R1)'],
      [ecdsa, offCurve.toString('hex'), 'an uncompressed point off the curve'],
      [ecdsa, offCurve.subarray(1).toString('hex'), 'X‖Y off the curve'],
      [ecdsa, pub.subarray(0, 40).toString('hex'), 'a 40-byte key'],
      [ecdsa, `zz${pub.toString('hex').slice(2)}`, 'not hex'],
      [ed, '01' + '00'.repeat(31), 'the Ed25519 identity (order 1)'],
      [ed, 'ec' + 'ff'.repeat(30) + '7f', 'the Ed25519 point of order 2'],
      [ed, '00'.repeat(32), 'an Ed25519 point of order 4'],
      [ed, 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', 'an Ed25519 point of order 8'],
      [ed, notAPoint, '32 bytes that are not an Ed25519 point'],
      [ed, fp.KeyPair.ed25519().publicKey.toString('hex') + '00', '33 bytes'],
      [{ family: 'near', algo: 'ed25519', version: 1 }, '00'.repeat(32), 'NEAR v1: a low-order key'],
    ];
    for (const [c, key, what] of cases) assertRejected(await withHeaders(c, { 'X-Client-Pub-Key': key }), 400, 'e2ee_invalid_public_key', what);
    // Venice: 130 hex beginning 04 only (Venice §3, "Invalid public key").
    for (const [key, what] of [
      [compressed, 'Venice: compressed'],
      [pub.subarray(1).toString('hex'), 'Venice: 128 hex without 04'],
      [offCurve.toString('hex'), 'Venice: off the curve'],
    ]) {
      assertRejected(await withHeaders({ family: 'venice', algo: 'ecdsa' }, { 'X-Venice-TEE-Client-Pub-Key': key }), 400, 'e2ee_invalid_public_key', what);
    }
  });

  test('wrong X-Model-Pub-Key: dstack e2ee_model_key_mismatch, NEAR 421 provider_error, Venice mismatch; a wrong-length ECDSA key is invalid_e2ee_request (§3 step 5)', async () => {
    const otherEc = fp.KeyPair.ecdsa();
    const otherEd = fp.KeyPair.ed25519();
    assertRejected(await withHeaders({ family: 'dstack', algo: 'ecdsa', version: 2 }, { 'X-Model-Pub-Key': otherEc.signingPublicKeyHex }), 400, 'e2ee_model_key_mismatch', 'dstack ECDSA, another key');
    assertRejected(await withHeaders({ family: 'dstack', algo: 'ecdsa', version: 1 }, { 'X-Model-Pub-Key': otherEc.publicKeyHex('uncompressed') }), 400, 'e2ee_model_key_mismatch', 'dstack ECDSA v1, another 65-byte key');
    assertRejected(await withHeaders({ family: 'dstack', algo: 'ed25519', version: 2 }, { 'X-Model-Pub-Key': otherEd.signingPublicKeyHex }), 400, 'e2ee_model_key_mismatch', 'dstack Ed25519, another key');
    const ourEcdsa = await modelKeyFor(gw.url, 'dstack', 'ecdsa');
    const ourEd = await modelKeyFor(gw.url, 'dstack', 'ed25519');
    assertRejected(await withHeaders({ family: 'dstack', algo: 'ed25519', version: 2 }, { 'X-Model-Pub-Key': ourEcdsa }), 400, 'e2ee_model_key_mismatch', 'Ed25519 with our ECDSA key');
    assertRejected(await withHeaders({ family: 'dstack', algo: 'ecdsa', version: 2 }, { 'X-Model-Pub-Key': ourEd }), 400, 'invalid_e2ee_request', 'ECDSA with a 32-byte key: wrong length');
    const y = Buffer.from(ourEcdsa.slice(64), 'hex');
    const compressedOurs = `0${y[31] & 1 ? 3 : 2}${ourEcdsa.slice(0, 64)}`;
    assertRejected(await withHeaders({ family: 'dstack', algo: 'ecdsa', version: 2 }, { 'X-Model-Pub-Key': compressedOurs }), 400, 'invalid_e2ee_request', 'our own key, compressed: a length dstack does not normalise');
    for (const c of [
      { family: 'near', algo: 'ed25519', version: 1 },
      { family: 'near', algo: 'ed25519', version: 2 },
      { family: 'near', algo: 'ecdsa', allFields: true },
    ]) {
      const other = c.algo === 'ecdsa' ? otherEc.signingPublicKeyHex : otherEd.signingPublicKeyHex;
      const r = await withHeaders(c, { 'X-Model-Pub-Key': other });
      assertRejected(r, 421, 'provider_error', `NEAR ${c.algo} v${c.version ?? 1}: a key this instance does not hold`);
      assert.deepEqual(r.json, NEAR_421_BODY, 'NEAR’s exact 421 body, which makes its clients refresh the report');
    }
    assertRejected(await withHeaders({ family: 'venice', algo: 'ecdsa' }, { 'X-Venice-TEE-Model-Pub-Key': otherEc.publicKeyHex('uncompressed') }), 400, 'e2ee_model_key_mismatch', 'Venice, another key');
  });

  test('header errors: a missing key header, an unknown algo', async () => {
    assertRejected(await withHeaders({ family: 'dstack', algo: 'ecdsa', version: 1 }, { 'X-Model-Pub-Key': undefined }), 400, 'e2ee_header_missing', 'no X-Model-Pub-Key');
    assertRejected(await withHeaders({ family: 'dstack', algo: 'ecdsa', version: 1 }, { 'X-Client-Pub-Key': undefined }), 400, 'e2ee_header_missing', 'no X-Client-Pub-Key');
    assertRejected(await withHeaders({ family: 'dstack', algo: 'ecdsa', version: 1 }, { 'X-Signing-Algo': 'rsa' }), 400, 'e2ee_invalid_signing_algo', 'X-Signing-Algo rsa');
    assertRejected(await withHeaders({ family: 'venice', algo: 'ecdsa' }, { 'X-Venice-TEE-Model-Pub-Key': undefined }), 400, 'e2ee_header_missing', 'Venice without the model key');
  });

  // Envelope damage, per scheme: each family's own request, one field changed.
  const SCHEME_CASES = [
    { family: 'dstack', algo: 'ecdsa', version: 2 },
    { family: 'dstack', algo: 'ecdsa', version: 1 },
    { family: 'dstack', algo: 'ed25519', version: 2 },
    { family: 'near', algo: 'ed25519', version: 1 },
    { family: 'near', algo: 'ed25519', version: 2 },
    { family: 'venice', algo: 'ecdsa' },
  ];
  async function damaged(c, mutate) {
    const client = await clientFor(c);
    const m = mark('damaged');
    const sent = client.encryptRequest(body(m));
    const env = Buffer.from(sent.body.messages[0].content, 'hex');
    sent.body.messages[0].content = mutate(env, client);
    const r = await post(gw.url, c.family === 'venice' ? '/api/v1/chat/completions' : '/v1/chat/completions', sent.headers, sent.body);
    assert.ok(!r.text.includes(m), 'the error does not echo plaintext');
    return r;
  }
  const label = (c) => `${c.family} ${c.algo}${c.version ? ` v${c.version}` : ''}`;

  test('a truncated envelope ("Encrypted payload is too short") → e2ee_decryption_failed (§4.1, §4.2)', async () => {
    for (const c of SCHEME_CASES) {
      const min = fp.SCHEMES[fp.schemeFor({ family: c.family === 'venice' ? 'dstack' : c.family, algo: c.algo, version: c.version })].min;
      assertRejected(await damaged(c, (env) => env.subarray(0, min - 1).toString('hex')), 400, 'e2ee_decryption_failed', `${label(c)}: ${min - 1} bytes`);
      assertRejected(await damaged(c, (env) => env.subarray(0, 20).toString('hex')), 400, 'e2ee_decryption_failed', `${label(c)}: 20 bytes`);
    }
  });

  test('a tampered tag, ciphertext or nonce → e2ee_decryption_failed', async () => {
    for (const c of SCHEME_CASES) {
      const flip = (at) => (env) => {
        const b = Buffer.from(env);
        b[at(b)] ^= 0x01;
        return b.toString('hex');
      };
      assertRejected(await damaged(c, flip((b) => b.length - 1)), 400, 'e2ee_decryption_failed', `${label(c)}: last byte`);
      assertRejected(await damaged(c, flip((b) => b.length - 20)), 400, 'e2ee_decryption_failed', `${label(c)}: a ciphertext byte`);
      const nonceAt = c.algo === 'ecdsa' ? 66 : 33;
      assertRejected(await damaged(c, flip(() => nonceAt)), 400, 'e2ee_decryption_failed', `${label(c)}: a nonce byte`);
    }
  });

  test('content that is not hex (plaintext sent with E2EE headers), an envelope key off the curve, non-UTF-8 plaintext → invalid_e2ee_request', async () => {
    for (const c of SCHEME_CASES) {
      assertRejected(await damaged(c, () => `plain text ${MARKER}`), 400, 'invalid_e2ee_request', `${label(c)}: plaintext content`);
      assertRejected(await damaged(c, (env) => `${env.toString('hex')}0`), 400, 'invalid_e2ee_request', `${label(c)}: odd-length hex`);
      assertRejected(await damaged(c, (env) => `${env.toString('hex').slice(0, -2)}zz`), 400, 'invalid_e2ee_request', `${label(c)}: a non-hex character`);
      // Families without an AAD (v2 is done below with the request's own AAD): a valid envelope
      // whose plaintext is not UTF-8.
      const nonUtf8 = async (bytes) => damaged(c, (_env, client) => fp.hex(fp.seal(client.scheme, fp.modelEncryptionKey(c.algo, client.modelKey), bytes, { boxCipher: 'salsa' })));
      if (!(c.family === 'dstack' && c.version === 2)) {
        for (const bytes of [Buffer.from([0xff, 0xfe, 0x41]), Buffer.from([0x41, 0xc0, 0xaf]), Buffer.from([0xed, 0xa0, 0x80])]) {
          assertRejected(await nonUtf8(bytes), 400, 'invalid_e2ee_request', `${label(c)}: plaintext ${bytes.toString('hex')} is not UTF-8`);
        }
      }
    }
    // v2: the AAD of the real request, so only the plaintext is wrong.
    for (const algo of ['ecdsa', 'ed25519']) {
      const client = await clientFor({ family: 'dstack', algo, version: 2 });
      const sent = client.encryptRequest(body(mark('utf8')));
      const aad = fp.requestAad({ algo, model: MODEL, m: 0, c: '-', nonce: sent.ctx.nonce, ts: sent.ctx.ts });
      sent.body.messages[0].content = fp.hex(fp.seal(client.scheme, fp.modelEncryptionKey(algo, client.modelKey), Buffer.from([0x68, 0x69, 0xff]), { aad }));
      assertRejected(await post(gw.url, '/v1/chat/completions', sent.headers, sent.body), 400, 'invalid_e2ee_request', `dstack ${algo} v2: non-UTF-8 plaintext`);
    }
    // An ECDSA envelope whose ephemeral key is off the curve.
    const offCurve = await damaged({ family: 'dstack', algo: 'ecdsa', version: 1 }, (env) => {
      const b = Buffer.from(env);
      b[64] ^= 0x01;
      return b.toString('hex');
    });
    assertRejected(offCurve, 400, 'invalid_e2ee_request', 'an envelope key off the curve (§4.1: bad EC point → ValueError)');
  });

  test('v2: an envelope moved to another message, or sealed for another model, fails its AAD → e2ee_decryption_failed; "" must be encrypted', async () => {
    const client = await clientFor({ family: 'dstack', algo: 'ecdsa', version: 2 });
    const sent = client.encryptRequest({ model: MODEL, messages: [{ role: 'user', content: mark('a') }, { role: 'user', content: mark('b') }] });
    const swapped = structuredClone(sent.body);
    [swapped.messages[0].content, swapped.messages[1].content] = [swapped.messages[1].content, swapped.messages[0].content];
    assertRejected(await post(gw.url, '/v1/chat/completions', sent.headers, swapped), 400, 'e2ee_decryption_failed', 'messages swapped');
    const otherModel = { ...sent.body, model: 'another/model' };
    assertRejected(await post(gw.url, '/v1/chat/completions', sent.headers, otherModel), 400, 'e2ee_decryption_failed', 'the body’s model changed after sealing');
    const empty = structuredClone(sent.body);
    empty.messages[0].content = '';
    assertRejected(await post(gw.url, '/v1/chat/completions', sent.headers, empty), 400, 'invalid_e2ee_request', 'plaintext "" in v2 (R7: unauthenticated content)');
  });

  test('/v1/completions with any E2EE header → 400 invalid_e2ee_request "E2EE is only supported on /v1/chat/completions"', async () => {
    const headers = {
      'X-Signing-Algo': 'ecdsa',
      'X-Client-Pub-Key': fp.KeyPair.ecdsa().publicKeyHex(),
      'X-Model-Pub-Key': await modelKeyFor(gw.url, 'dstack', 'ecdsa'),
      'X-E2EE-Version': '2',
      'X-E2EE-Nonce': fp.randomHex(16),
      'X-E2EE-Timestamp': String(Math.floor(Date.now() / 1000)),
    };
    for (const [name, value] of Object.entries(headers)) {
      const r = await post(gw.url, '/v1/completions', { [name]: value }, { model: MODEL, prompt: mark('completions') });
      assertRejected(r, 400, 'invalid_e2ee_request', `/v1/completions with ${name}`);
      assert.equal(r.json.error.message, 'E2EE is only supported on /v1/chat/completions', 'the reference’s message');
    }
    const all = await post(gw.url, '/v1/completions', headers, { model: MODEL, prompt: mark('completions') });
    assertRejected(all, 400, 'invalid_e2ee_request', '/v1/completions with all six');
  });

  test('a chat without E2EE headers is refused (no --allow-plaintext); a body that is not JSON → 400', async () => {
    const m = mark('plain');
    const r = await post(gw.url, '/v1/chat/completions', {}, body(m));
    assertRejected(r, 400, 'e2ee_required', 'plaintext chat');
    assert.ok(!r.text.includes(m));
    const client = await clientFor({ family: 'dstack', algo: 'ecdsa', version: 1 });
    const sent = client.encryptRequest(body(mark('json')));
    const broken = await post(gw.url, '/v1/chat/completions', sent.headers, `${JSON.stringify(sent.body).slice(0, -1)}`);
    assert.equal(broken.status, 400, broken.text);
    assert.equal(broken.forwarded, 0, 'nothing forwarded');
  });
});

// ---------------------------------------------------------------------------------------------

describe('fail closed: what the gateway cannot encrypt never reaches the client in plaintext', () => {
  const clients = [
    { family: 'dstack', algo: 'ecdsa', version: 2 },
    { family: 'near', algo: 'ed25519', version: 1 },
  ];
  const chunk = (delta) => `data: ${JSON.stringify({ id: 'chatcmpl-fc', object: 'chat.completion.chunk', model: MODEL, choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`;

  // Streams `bad` after one good chunk and before another: the client must get the good chunk,
  // then an error event and [DONE], and neither the bad chunk nor anything after it.
  async function streamWith(c, badFrame, m) {
    const client = await clientFor(c);
    onMarker(m, { frames: [chunk({ role: 'assistant', content: '' }), chunk({ content: 'fine so far' }), badFrame, chunk({ content: `after the bad chunk ${m}` }), 'data: [DONE]\n\n'] });
    const r = await client.chat(gw.url, { model: MODEL, stream: true, messages: [{ role: 'user', content: `stream ${m}` }] });
    assert.equal(r.status, 200);
    const raw = r.stream.rawLines.join('\n');
    assert.ok(!raw.includes(m) && !raw.includes(MARKER), `no marker in clear: ${raw.slice(0, 600)}`);
    const data = r.stream.rawLines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
    assert.equal(data.at(-1), '[DONE]', 'the stream still ends with [DONE]');
    const error = JSON.parse(data.at(-2));
    assert.equal(error.error?.type, 'e2ee_encryption_failed', `an error event before [DONE]: ${data.at(-2)}`);
    assert.equal(r.stream.texts[0]?.content, 'fine so far', 'the chunks before the failure arrive, decrypted');
    assert.equal(r.stream.error, null, 'everything the client got is an envelope or an error object');
    return r;
  }

  for (const c of clients) {
    test(`${c.family} ${c.algo}: an engine chunk that is not JSON ends the stream with an error`, async () => {
      const m = mark('badjson');
      await streamWith(c, `data: {"id":"x","choices":[{"index":0,"delta":{"content":"${m}"}}\n\n`, m);
    });

    test(`${c.family} ${c.algo}: a covered field of an unexpected type (content object, reasoning array, a non-object choice) ends the stream with an error`, async () => {
      const m1 = mark('badtype');
      await streamWith(c, chunk({ content: { text: m1 } }), m1);
      const m2 = mark('badtype');
      await streamWith(c, chunk({ reasoning_content: [m2] }), m2);
      const m3 = mark('badtype');
      // A choices entry that is not an object, next to one that could be encrypted.
      await streamWith(c, `data: ${JSON.stringify({ id: 'x', model: MODEL, choices: [{ index: 0, delta: { content: m3 } }, 'not an object'] })}\n\n`, m3);
    });
  }

  test('non-stream: an answer that is not JSON, or has a field of an unexpected type → 500 e2ee_encryption_failed, no plaintext', async () => {
    const client = await clientFor({ family: 'dstack', algo: 'ed25519', version: 2 });
    for (const [script, what] of [
      [(m) => ({ body: `{"choices":[{"message":{"content":"${m}"}}]`, contentType: 'application/json' }), 'truncated JSON'],
      [(m) => ({ json: completionWith({ model: MODEL, message: { content: { nested: m } } }) }), 'content is an object'],
      [(m) => ({ json: completionWith({ model: MODEL, message: { content: 'ok', reasoning: 42, reasoning_content: m } }) }), 'reasoning is a number'],
      [(m) => ({ json: { id: 'x', model: 7, choices: [{ index: 0, message: { content: m } }] } }), 'a v2 response model that is not a string'],
    ]) {
      const m = mark('nonstream-bad');
      onMarker(m, script(m));
      const r = await client.chat(gw.url, { model: MODEL, messages: [{ role: 'user', content: `q ${m}` }] });
      const text = r.body.toString();
      assert.ok(!text.includes(m), `${what}: no marker in clear: ${text}`);
      assert.equal(r.status, 500, `${what}: ${text}`);
      assert.equal(r.json?.error?.type, 'e2ee_encryption_failed', `${what}: ${text}`);
      assert.equal(r.headers['x-e2ee-applied'], undefined, `${what}: an error, not an E2EE answer`);
    }
  });

  test('an engine error body (which may quote the prompt) is not relayed; only its status', async () => {
    const client = await clientFor({ family: 'dstack', algo: 'ecdsa', version: 1 });
    for (const status of [400, 500]) {
      for (const stream of [false, true]) {
        const m = mark('engine-error');
        onMarker(m, { status, json: { object: 'error', message: `This model's maximum context length is 10 tokens. Your prompt: ${m}`, type: 'BadRequestError', code: status } });
        const r = await client.chat(gw.url, { model: MODEL, stream, messages: [{ role: 'user', content: m }] });
        const text = r.body?.toString() ?? r.stream?.rawLines.join('\n');
        assert.ok(!text.includes(MARKER), `engine ${status}, stream ${stream}: no prompt text in the error: ${text}`);
        assert.equal(r.status, status >= 500 ? 502 : status, `engine ${status} → ${status >= 500 ? 502 : status}`);
        assert.equal(r.json?.error?.type, 'upstream_error');
      }
    }
  });

  test('SSE comments and event names from the engine are not relayed; an engine cut mid-frame ends with an error, not the partial frame', async () => {
    const client = await clientFor({ family: 'dstack', algo: 'ecdsa', version: 2 });
    const m = mark('sse');
    onMarker(m, { frames: [`: comment ${m}\n\n`, `event: note-${m}\n${chunk({ content: 'x' })}`, 'data: [DONE]\n\n'] });
    const r = await client.chat(gw.url, { model: MODEL, stream: true, messages: [{ role: 'user', content: m }] });
    const raw = r.stream.rawLines.join('\n');
    assert.ok(!raw.includes(m), `comment and event name dropped: ${raw}`);
    assert.equal(r.stream.content, 'x');
    const m2 = mark('cut');
    const cutFrame = chunk({ content: `cut here ${m2} and more text to cut` });
    // The engine's connection is cut just after the marker: the gateway holds a partial frame with it.
    onMarker(m2, { frames: [chunk({ content: 'before' }), cutFrame, 'data: [DONE]\n\n'], closeAfterFrames: 1, partialBytes: cutFrame.indexOf(m2) + m2.length + 3 });
    const cut = await client.chat(gw.url, { model: MODEL, stream: true, messages: [{ role: 'user', content: m2 }] });
    const rawCut = cut.stream.rawLines.join('\n');
    assert.ok(!rawCut.includes(m2), `the partial frame is not relayed: ${rawCut}`);
    assert.equal(cut.stream.content, 'before');
    const data = cut.stream.rawLines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
    assert.equal(JSON.parse(data.at(-2)).error?.type, 'upstream_error', 'a truncated engine stream ends with an upstream_error event');
    assert.equal(data.at(-1), '[DONE]');
  });
});

// ---------------------------------------------------------------------------------------------

describe('logs', () => {
  test('at --log-level trace no gateway line holds a prompt, a completion, a tool or an error body (the MARKER)', () => {
    assert.ok(procs.length >= 4, 'all gateways of this file are checked');
    for (const p of procs) assert.ok(p.lines.some((l) => /request/.test(l.line)), `${p.name} logged its requests (the check is not vacuous)`);
    assert.deepEqual(linesContaining(procs, MARKER), [], 'no log line contains the marker');
  });
});
