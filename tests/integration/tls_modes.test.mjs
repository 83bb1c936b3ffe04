// Every TLS mode of the e2ee-proxy listener, first match wins in the reference order (spec §13):
//   1. custom: --tls-cert/--tls-key[/--tls-ca] or TLS_CERT/TLS_KEY[/TLS_CA] (flags win over env);
//   2. self-signed: --tls-self-signed or TLS_SELF_SIGNED=true, names from TLS_DOMAIN/--tls-domain,
//      a new certificate on every start;
//   3. default: a self-signed certificate generated once and kept in --state-dir (key 0600), the
//      same certificate after a restart, refused when the key file is readable by others.
// Certificates are made with the openssl CLI; what the server presents is read from the TLS
// handshake (Node's tls) and compared with openssl's view of the files and with the start line.
// Each mode: a trusting client (Node https with the CA, curl --cacert) succeeds, an untrusting one
// fails verification, TLS 1.0/1.1 are refused by the server (a control server proves the client
// can speak them), and a plain http:// listener on the same process keeps working.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { request } from './lib/http.mjs';
import { startEngine } from './lib/engine.mjs';
import { startProxy, startGateway, binaryPath } from './lib/processes.mjs';
import { curl, run, contentOf, assertWellFormedStream, MODEL, CHUTE, ENGINE_MODELS } from './lib/e2e_stack.mjs';
import { scratchDir, makeRootCa, makeCert, fingerprintOf, namesOf, startLineFingerprint, tlsProbe } from './lib/tls_tools.mjs';

const dir = scratchDir('e2ee-tlsmodes-');
let engine;
let gateway;
let rootA;
let rootB;
let inter;
let leafA; // signed by rootA, SANs localhost + 127.0.0.1
let leafB; // signed by rootB
let leafViaInter; // signed by the intermediate under rootA
let control; // a Node TLS server that accepts TLS 1.0–1.3 (proves the old-version client works)
const controlSockets = new Set();

// Env names the proxy reads; cleared for every start so the runner's environment cannot leak in.
const TLS_ENV = { TLS_CERT: '', TLS_KEY: '', TLS_CA: '', TLS_SELF_SIGNED: '', TLS_DOMAIN: '', XDG_STATE_HOME: join(dir, 'xdg-state') };

before(async () => {
  engine = await startEngine({ models: ENGINE_MODELS });
  gateway = await startGateway(['--backend', engine.url, '--model', MODEL, '--chute-id', CHUTE, '--confidential', 'true']);
  rootA = await makeRootCa(dir, 'tls modes root A');
  rootB = await makeRootCa(dir, 'tls modes root B');
  inter = await makeCert(dir, rootA, { cn: 'tls modes intermediate', ca: true });
  leafA = await makeCert(dir, rootA, { cn: 'leaf-a.localhost', sans: ['DNS:localhost', 'IP:127.0.0.1'] });
  leafB = await makeCert(dir, rootB, { cn: 'leaf-b.localhost', sans: ['DNS:localhost', 'IP:127.0.0.1'] });
  leafViaInter = await makeCert(dir, inter, { cn: 'leaf-inter.localhost', sans: ['DNS:localhost', 'IP:127.0.0.1'] });
  const k = join(dir, 'control.key');
  const c = join(dir, 'control.pem');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', k, '-out', c, '-days', '1', '-subj', '/CN=control']);
  control = tls.createServer({ key: readFileSync(k), cert: readFileSync(c), minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' }, (s) => s.end());
  control.on('connection', (s) => {
    controlSockets.add(s);
    s.on('close', () => controlSockets.delete(s));
  });
  await new Promise((r) => control.listen(0, '127.0.0.1', r));
});
after(async () => {
  for (const s of controlSockets) s.destroy();
  control?.close();
  await engine?.close();
});

// Starts a proxy with an https and an http listener.
async function proxyWith(args, env = {}) {
  const p = await startProxy(['--listen', 'https://127.0.0.1:0', '--listen', 'http://127.0.0.1:0', '--upstream', gateway.url, '--models-upstream', gateway.url, ...args], { env: { ...TLS_ENV, ...env } });
  p.httpsUrl = p.urls.find((u) => u.startsWith('https://'));
  p.httpUrl = p.urls.find((u) => u.startsWith('http://'));
  assert.ok(p.httpsUrl && p.httpUrl, p.startLine);
  return p;
}

const OLD = { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0', verify: false };

// The checks every mode must pass. `trust` is what a trusting client uses as its CA; `expected`
// the fingerprint the served leaf must have (known independently of the process).
async function checkListener(p, { trust, expected }) {
  // The start line announces the served certificate.
  assert.equal(startLineFingerprint(p.startLine), expected, `start line: ${p.startLine}`);
  const seen = await tlsProbe(p.httpsUrl, { verify: false });
  assert.ok(seen.ok, seen.message);
  assert.equal(seen.fingerprint, expected, 'served leaf');

  // A trusting Node client: handshake, then a real request through the proxy to the engine.
  const good = await tlsProbe(p.httpsUrl, { ca: trust });
  assert.ok(good.ok, `trusting client failed: ${good.code} ${good.message}`);
  assert.ok(good.authorized);
  const key = `cpk_tls_${Math.random().toString(36).slice(2)}`;
  const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'over tls' }] });
  const r = await request(`${p.httpsUrl}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body, tls: { ca: readFileSync(trust) } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json().choices[0].message.content, 'echo: over tls');

  // curl --cacert, streamed; and by the name localhost too.
  for (const host of ['127.0.0.1', 'localhost']) {
    const url = `https://${host}:${new URL(p.httpsUrl).port}/v1/chat/completions`;
    const c = await curl(['-N', '--cacert', trust, '-H', `Authorization: Bearer ${key}`, '-H', 'Content-Type: application/json', '--data-binary', '@-', url], { input: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: `curl ${host}` }], stream: true }) });
    assert.equal(c.code, 0, `curl ${host}: ${c.stderr}`);
    assert.equal(contentOf(assertWellFormedStream(c.body)), `echo: curl ${host}`);
  }

  // Untrusting clients fail verification: Node's default store, a client trusting another CA, curl
  // without --cacert.
  for (const ca of [undefined, rootB.cert === trust ? rootA.cert : rootB.cert]) {
    const bad = await tlsProbe(p.httpsUrl, { ca });
    assert.equal(bad.ok, false, `a client trusting ${ca ?? 'the default store'} accepted the certificate`);
    assert.match(String(bad.code), /CERT|SIGNATURE|ISSUER|VERIFY/, `${bad.code}: ${bad.message}`);
  }
  const untrusted = await curl([`${p.httpsUrl}/health`]);
  assert.equal(untrusted.code, 60, `curl without --cacert: exit ${untrusted.code} ${untrusted.stderr}`);

  // TLS 1.2 and 1.3 are accepted; 1.0 and 1.1 are refused by the server (the same client
  // configuration completes a TLS 1.0/1.1 handshake with the control server).
  for (const v of ['TLSv1.2', 'TLSv1.3']) {
    const ok = await tlsProbe(p.httpsUrl, { ca: trust, minVersion: v, maxVersion: v });
    assert.ok(ok.ok, `${v}: ${ok.code} ${ok.message}`);
    assert.equal(ok.protocol, v);
  }
  for (const v of ['TLSv1', 'TLSv1.1']) {
    const opts = { ...OLD, minVersion: v, maxVersion: v };
    const ctl = await tlsProbe(`https://127.0.0.1:${control.address().port}`, opts);
    assert.ok(ctl.ok && ctl.protocol === v, `control: this client cannot speak ${v} (${ctl.code}); the check would prove nothing`);
    const old = await tlsProbe(p.httpsUrl, opts);
    assert.equal(old.ok, false, `${v} was accepted (${old.protocol})`);
    assert.match(String(old.code), /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|WRONG_VERSION/, `${v}: ${old.code} ${old.message}`);
  }

  // The plain listener alongside.
  const plain = await request(`${p.httpUrl}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body });
  assert.equal(plain.status, 200, plain.text);
  assert.equal(plain.json().choices[0].message.content, 'echo: over tls');
  return seen;
}

describe('1. custom certificate', () => {
  test('--tls-cert/--tls-key: the CA-signed leaf is served; trusting and untrusting clients; TLS ≥ 1.2; http alongside', async () => {
    const p = await proxyWith(['--tls-cert', leafA.cert, '--tls-key', leafA.key]);
    try {
      assert.match(p.startLine, /\bTLS custom\b/, p.startLine);
      await checkListener(p, { trust: rootA.cert, expected: await fingerprintOf(leafA.cert) });
    } finally {
      await p.stop();
    }
  });

  test('TLS_CERT/TLS_KEY env: the same', async () => {
    const p = await proxyWith([], { TLS_CERT: leafB.cert, TLS_KEY: leafB.key });
    try {
      await checkListener(p, { trust: rootB.cert, expected: await fingerprintOf(leafB.cert) });
    } finally {
      await p.stop();
    }
  });

  for (const how of ['--tls-ca', 'TLS_CA']) {
    test(`${how}: the intermediate is served after the leaf, so a client trusting only the root verifies`, async () => {
      const p = await proxyWith(['--tls-cert', leafViaInter.cert, '--tls-key', leafViaInter.key, ...(how === '--tls-ca' ? ['--tls-ca', inter.cert] : [])], how === 'TLS_CA' ? { TLS_CA: inter.cert } : {});
      try {
        const seen = await checkListener(p, { trust: rootA.cert, expected: await fingerprintOf(leafViaInter.cert) });
        assert.equal(seen.chain[1], await fingerprintOf(inter.cert), 'second certificate of the chain');
      } finally {
        await p.stop();
      }
    });
  }

  test('control: without TLS_CA the same leaf does not verify against the root alone', async () => {
    const p = await proxyWith(['--tls-cert', leafViaInter.cert, '--tls-key', leafViaInter.key]);
    try {
      const r = await tlsProbe(p.httpsUrl, { ca: rootA.cert });
      assert.equal(r.ok, false, 'verified without the intermediate: the TLS_CA checks above prove nothing');
    } finally {
      await p.stop();
    }
  });

  test('flags win over env: --tls-cert/--tls-key (leaf B) beat TLS_CERT/TLS_KEY (leaf A)', async () => {
    const p = await proxyWith(['--tls-cert', leafB.cert, '--tls-key', leafB.key], { TLS_CERT: leafA.cert, TLS_KEY: leafA.key });
    try {
      const seen = await tlsProbe(p.httpsUrl, { ca: rootB.cert });
      assert.ok(seen.ok, `${seen.code} ${seen.message}`);
      assert.equal(seen.fingerprint, await fingerprintOf(leafB.cert));
      assert.equal(startLineFingerprint(p.startLine), await fingerprintOf(leafB.cert));
    } finally {
      await p.stop();
    }
  });

  test('first match wins: a custom certificate beats TLS_SELF_SIGNED=true and --tls-self-signed', async () => {
    for (const [args, env] of [
      [[], { TLS_CERT: leafA.cert, TLS_KEY: leafA.key, TLS_SELF_SIGNED: 'true' }],
      [['--tls-self-signed', '--tls-cert', leafA.cert, '--tls-key', leafA.key], {}],
    ]) {
      const p = await proxyWith(args, env);
      try {
        const seen = await tlsProbe(p.httpsUrl, { ca: rootA.cert });
        assert.ok(seen.ok, `${seen.code} ${seen.message}`);
        assert.equal(seen.fingerprint, await fingerprintOf(leafA.cert));
      } finally {
        await p.stop();
      }
    }
  });

  test('a certificate without its key, a key that does not match, a missing file → non-zero exit, one line naming the problem', async () => {
    const cases = [
      [['--tls-cert', leafA.cert], {}],
      [[], { TLS_CERT: leafA.cert }],
      [['--tls-cert', leafA.cert, '--tls-key', leafB.key], {}],
      [['--tls-cert', join(dir, 'nope.pem'), '--tls-key', leafA.key], {}],
    ];
    for (const [args, env] of cases) {
      const r = await run(binaryPath('e2ee-proxy'), ['--listen', 'https://127.0.0.1:0', '--upstream', gateway.url, ...args], { env: { ...TLS_ENV, ...env }, timeoutMs: 15000 });
      const what = `${args.join(' ')} ${JSON.stringify(env)}`;
      assert.notEqual(r.code, 0, `${what}: exit ${r.code}`);
      assert.equal(r.signal, null, `${what}: killed by ${r.signal}`);
      assert.ok(!r.stdout.toString().includes('listening on'), `${what}: started anyway`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `${what}: ${r.stderr}`);
      assert.match(lines[0], /^e2ee-proxy: .*(tls|TLS|cert|key)/, `${what}: ${lines[0]}`);
    }
  });
});

describe('2. self-signed, new on every start', () => {
  for (const [how, args, env] of [
    ['TLS_SELF_SIGNED=true + TLS_DOMAIN', [], { TLS_SELF_SIGNED: 'true', TLS_DOMAIN: 'e2ee.example.test' }],
    ['--tls-self-signed + --tls-domain', ['--tls-self-signed', '--tls-domain', 'e2ee.example.test'], {}],
  ]) {
    test(`${how}: CN and SANs = domain, localhost, 127.0.0.1; trusted via the printed file; a new certificate each start`, async () => {
      const state = join(dir, `state-ss-${args.length}`);
      const fingerprints = [];
      for (let i = 0; i < 2; i++) {
        const p = await proxyWith(['--state-dir', state, ...args], env);
        try {
          const seen = await tlsProbe(p.httpsUrl, { verify: false });
          assert.ok(seen.ok, seen.message);
          const leaf = seen.leaf;
          assert.match(leaf.subject, /CN=e2ee\.example\.test/, leaf.subject);
          const sans = leaf.subjectAltName.split(',').map((s) => s.trim());
          for (const want of ['DNS:e2ee.example.test', 'DNS:localhost', 'IP Address:127.0.0.1']) assert.ok(sans.includes(want), `SANs ${leaf.subjectAltName} lack ${want}`);
          assert.ok(leaf.checkHost('e2ee.example.test') && leaf.checkHost('localhost') && leaf.checkIP('127.0.0.1'));
          // The served certificate itself is the trust anchor; the file the start line points to
          // holds exactly it.
          const anchor = join(dir, `anchor-${i}-${args.length}.pem`);
          writeFileSync(anchor, leaf.toString());
          const trustLine = p.lines.find((l) => /trust it:/.test(l.line));
          assert.ok(trustLine, `no trust instructions printed: ${p.output}`);
          const printed = /--cacert (\S+)/.exec(trustLine.line)?.[1];
          assert.ok(printed && existsSync(printed), trustLine.line);
          assert.equal(await fingerprintOf(printed), seen.fingerprint, 'the printed file is the served certificate');
          await checkListener(p, { trust: printed, expected: await fingerprintOf(anchor) });
          // A client that asks for the domain by SNI verifies too.
          const bySni = await tlsProbe(p.httpsUrl, { ca: anchor, servername: 'e2ee.example.test' });
          assert.ok(bySni.ok, `${bySni.code} ${bySni.message}`);
          fingerprints.push(seen.fingerprint);
        } finally {
          await p.stop();
        }
      }
      assert.notEqual(fingerprints[0], fingerprints[1], 'the same self-signed certificate after a restart');
    });
  }

  test('TLS_SELF_SIGNED=false is not self-signed mode: the persistent certificate is served', async () => {
    const state = join(dir, 'state-false');
    const a = await proxyWith(['--state-dir', state]);
    const fpPersistent = (await tlsProbe(a.httpsUrl, { verify: false })).fingerprint;
    assert.equal(startLineFingerprint(a.startLine), fpPersistent);
    await a.stop();
    const b = await proxyWith(['--state-dir', state], { TLS_SELF_SIGNED: 'false' });
    try {
      assert.equal((await tlsProbe(b.httpsUrl, { verify: false })).fingerprint, fpPersistent);
    } finally {
      await b.stop();
    }
  });
});

describe('3. default: persistent self-signed certificate in --state-dir', () => {
  const state = join(dir, 'state-default');
  let first;

  test('first start creates it: key file 0600, the served certificate is the stored one; SANs localhost and 127.0.0.1', async () => {
    const p = await proxyWith(['--state-dir', state]);
    try {
      const files = [];
      const walk = (d) => {
        for (const f of readdirSync(d)) {
          const path = join(d, f);
          if (statSync(path).isDirectory()) walk(path);
          else files.push(path);
        }
      };
      walk(state);
      const keys = files.filter((f) => /PRIVATE KEY/.test(readFileSync(f, 'utf8')));
      assert.equal(keys.length, 1, `private key files: ${files.join(', ')}`);
      assert.equal(statSync(keys[0]).mode & 0o777, 0o600, `${keys[0]} mode ${(statSync(keys[0]).mode & 0o777).toString(8)}`);
      for (const f of files) assert.equal(statSync(f).mode & 0o022, 0, `${f} is writable by others`);
      const certs = files.filter((f) => /BEGIN CERTIFICATE/.test(readFileSync(f, 'utf8')));
      assert.ok(certs.length >= 1, files.join(', '));
      const seen = await tlsProbe(p.httpsUrl, { verify: false });
      const stored = await Promise.all(certs.map(fingerprintOf));
      assert.ok(stored.includes(seen.fingerprint), `served ${seen.fingerprint}, stored ${stored}`);
      const certFile = certs[stored.indexOf(seen.fingerprint)];
      const { sans } = await namesOf(certFile);
      assert.ok(sans.includes('DNS:localhost') && sans.some((s) => s === 'IP Address:127.0.0.1'), `SANs ${sans}`);
      first = { fingerprint: seen.fingerprint, keyFile: keys[0], certFile };
      await checkListener(p, { trust: certFile, expected: seen.fingerprint });
    } finally {
      await p.stop();
    }
  });

  test('a restart serves the SAME certificate', async () => {
    assert.ok(first, 'depends on the previous test');
    const p = await proxyWith(['--state-dir', state]);
    try {
      const seen = await tlsProbe(p.httpsUrl, { ca: first.certFile });
      assert.ok(seen.ok, `${seen.code} ${seen.message}`);
      assert.equal(seen.fingerprint, first.fingerprint);
      assert.equal(startLineFingerprint(p.startLine), first.fingerprint);
    } finally {
      await p.stop();
    }
  });

  for (const mode of [0o644, 0o604, 0o640]) {
    test(`key file mode ${mode.toString(8)} → refused: non-zero exit, one line naming the file; nothing replaced`, async () => {
      assert.ok(first, 'depends on the first test');
      chmodSync(first.keyFile, mode);
      const keyBefore = readFileSync(first.keyFile);
      try {
        const r = await run(binaryPath('e2ee-proxy'), ['--listen', 'https://127.0.0.1:0', '--upstream', gateway.url, '--state-dir', state], { env: TLS_ENV, timeoutMs: 15000 });
        assert.notEqual(r.code, 0, `exit ${r.code}; stdout ${r.stdout}`);
        assert.equal(r.signal, null);
        assert.ok(!r.stdout.toString().includes('listening on'), 'started anyway');
        const lines = r.stderr.trim().split('\n');
        assert.equal(lines.length, 1, r.stderr);
        assert.ok(lines[0].includes(first.keyFile), `the line does not name the key file: ${lines[0]}`);
        assert.match(lines[0], /chmod|mode|permission|readable/i, lines[0]);
        assert.deepEqual(readFileSync(first.keyFile), keyBefore, 'the key was replaced');
      } finally {
        chmodSync(first.keyFile, 0o600);
      }
    });
  }

  test('after chmod 600 the same certificate is served again', async () => {
    const p = await proxyWith(['--state-dir', state]);
    try {
      assert.equal((await tlsProbe(p.httpsUrl, { verify: false })).fingerprint, first.fingerprint);
    } finally {
      await p.stop();
    }
  });

  test('without --state-dir the certificate goes under $XDG_STATE_HOME and persists there too', async () => {
    const xdg = join(dir, 'xdg-explicit');
    mkdirSync(xdg, { recursive: true });
    const fps = [];
    for (let i = 0; i < 2; i++) {
      const p = await proxyWith([], { XDG_STATE_HOME: xdg });
      try {
        fps.push((await tlsProbe(p.httpsUrl, { verify: false })).fingerprint);
      } finally {
        await p.stop();
      }
    }
    assert.equal(fps[0], fps[1]);
    assert.ok(readdirSync(xdg).length > 0, 'nothing written under XDG_STATE_HOME');
  });

  test('an http-only proxy writes no certificate at all', async () => {
    const s = join(dir, 'state-http-only');
    const p = await startProxy(['--listen', 'http://127.0.0.1:0', '--upstream', gateway.url, '--models-upstream', gateway.url, '--state-dir', s], { env: TLS_ENV });
    try {
      assert.doesNotMatch(p.startLine, /certificate/);
      assert.equal((await request(`${p.url}/health`)).status, 200);
      assert.ok(!existsSync(s) || readdirSync(s).length === 0, 'state written for an http-only proxy');
    } finally {
      await p.stop();
    }
  });
});

describe('lifecycle', () => {
  test('the gateway stops cleanly (SIGTERM → exit 0)', async () => {
    await gateway.stop();
  });
});
