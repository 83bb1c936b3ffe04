// Dependency check for the integration tests (the approach of tests/interop/support.mjs): every
// package pinned in tests/package.json must be installed at exactly its pinned version, otherwise
// the test file fails with the fix in the message instead of skipping or testing other code.

import { readFileSync } from 'node:fs';

const testsDir = new URL('../../', import.meta.url);

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

// Imported only after the check, so a missing package reports the fix, not a resolver trace.
export const { ml_kem768 } = await import('@noble/post-quantum/ml-kem.js');

// The OpenAI SDK is loaded on demand: most files do not need it.
export async function loadOpenAI() {
  return (await import('openai')).default;
}
