// Certificates made with the openssl CLI (a root CA, an intermediate, leaves with chosen SANs) and
// TLS probes with Node's tls module: who the server says it is (fingerprint, chain, SANs), whether
// a client with a given trust store accepts it, and which protocol versions it accepts. Nothing
// here reads the certificate files e2ee-proxy writes except through openssl or the TLS handshake.

import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { after } from 'node:test';
import { run, within } from './e2e_stack.mjs';

async function openssl(args, opts) {
  const r = await run('openssl', args, opts);
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout.toString('utf8');
}

// A scratch directory removed when the test file ends.
export function scratchDir(prefix = 'e2ee-tls-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

// A self-signed root CA: { cert, key } (paths).
export async function makeRootCa(dir, name = 'e2ee test root') {
  const cert = join(dir, `${slug(name)}.pem`);
  const key = join(dir, `${slug(name)}.key`);
  await openssl(['req', '-x509', ...ecKey, '-keyout', key, '-out', cert, '-days', '3', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return { cert, key, name };
}

// A certificate signed by `issuer`: an intermediate CA (ca: true) or a server leaf with `sans`
// (e.g. ['DNS:localhost', 'IP:127.0.0.1']).
export async function makeCert(dir, issuer, { cn, sans = [], ca = false }) {
  const base = join(dir, slug(cn));
  const key = `${base}.key`;
  const csr = `${base}.csr`;
  const cert = `${base}.pem`;
  const ext = `${base}.ext`;
  const lines = ca
    ? ['basicConstraints=critical,CA:TRUE,pathlen:0', 'keyUsage=critical,keyCertSign,cRLSign']
    : ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth', ...(sans.length ? [`subjectAltName=${sans.join(',')}`] : [])];
  writeFileSync(ext, lines.join('\n') + '\n');
  await openssl(['req', ...ecKey, '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
  await openssl(['x509', '-req', '-in', csr, '-CA', issuer.cert, '-CAkey', issuer.key, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext]);
  return { cert, key, name: cn };
}

const slug = (s) => s.replace(/[^A-Za-z0-9]+/g, '_');

// SHA-256 fingerprint of the first certificate in a PEM file, per `openssl x509`: 64 lowercase hex.
export async function fingerprintOf(pemFile) {
  const out = await openssl(['x509', '-in', pemFile, '-noout', '-fingerprint', '-sha256']);
  const m = /=([0-9A-F:]+)/i.exec(out);
  return m[1].replace(/:/g, '').toLowerCase();
}

// The subject CN and subjectAltName entries of a PEM file's first certificate, per openssl.
export async function namesOf(pemFile) {
  const text = await openssl(['x509', '-in', pemFile, '-noout', '-subject', '-ext', 'subjectAltName']);
  const cn = /CN\s*=\s*([^,\n/]+)/.exec(text)?.[1]?.trim();
  const sanLine = text.split('\n').find((l) => /DNS:|IP Address:/.test(l)) ?? '';
  const sans = sanLine
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return { cn, sans };
}

// The SHA-256 fingerprint of the certificate the start line announces ("certificate sha256 <hex>").
export function startLineFingerprint(startLine) {
  return /certificate sha256 ([0-9a-f]{64})\b/.exec(startLine)?.[1] ?? null;
}

// One TLS handshake with `url` (https://host:port). Resolves (never rejects) with
//   { ok, code, message, protocol, fingerprint (leaf, hex lowercase), chain: [fingerprints…],
//     leaf: X509Certificate, authorized }
// `ca` (PEM path or Buffer, or array) replaces Node's trust store when given; `verify: false`
// completes the handshake regardless of trust (to read the certificate).
export function tlsProbe(url, { ca, verify = true, minVersion, maxVersion, ciphers, servername, timeoutMs = 10000 } = {}) {
  const u = new URL(url);
  const load = (c) => (typeof c === 'string' ? readFileSync(c) : c);
  const opts = {
    host: u.hostname,
    port: Number(u.port),
    rejectUnauthorized: verify,
    ...(ca ? { ca: Array.isArray(ca) ? ca.map(load) : load(ca) } : {}),
    ...(minVersion ? { minVersion } : {}),
    ...(maxVersion ? { maxVersion } : {}),
    ...(ciphers ? { ciphers } : {}),
    ...(servername ? { servername } : {}),
  };
  return within(
    new Promise((resolve) => {
      const socket = tls.connect(opts, () => {
        const peer = socket.getPeerCertificate(true);
        const chain = [];
        let c = peer;
        const seen = new Set();
        while (c && c.fingerprint256 && !seen.has(c.fingerprint256)) {
          seen.add(c.fingerprint256);
          chain.push(c.fingerprint256.replace(/:/g, '').toLowerCase());
          c = c.issuerCertificate;
        }
        const result = {
          ok: true,
          protocol: socket.getProtocol(),
          authorized: socket.authorized,
          fingerprint: chain[0],
          chain,
          leaf: peer.raw ? new X509Certificate(peer.raw) : null,
        };
        socket.end();
        resolve(result);
      });
      socket.on('error', (err) => resolve({ ok: false, code: err.code, message: err.message }));
    }),
    timeoutMs,
    `TLS handshake with ${url}`,
  );
}
