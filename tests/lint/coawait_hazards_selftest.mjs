// Runs the co_await hazard lint over a fixture tree and checks that it reports every hazard in
// src/hazards.cpp, on its line, and nothing in bench/safe.cpp. Without this, a regex that stopped
// matching would leave lint.coawait_gcc12_hazards passing on any code.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const fixture = join(here, 'fixtures', 'coawait');
const run = spawnSync(process.execPath, [join(here, 'coawait_hazards.mjs'), fixture], { encoding: 'utf8' });
const fail = (why) => {
  console.error(`${why}\nlint exit ${run.status}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`);
  process.exit(1);
};
if (run.status !== 1) fail('the lint must fail on the fixture');

const kinds = {
  braced: /braced temporary inside a co_await operand/,
  'ternary-operand': /\?: inside a co_await operand/,
  condition: /co_await inside an if condition/,
  'await-in-ternary': /co_await inside a \?: operand/,
};
const lines = readFileSync(join(fixture, 'src', 'hazards.cpp'), 'utf8').split('\n');
const reported = run.stderr.split('\n').filter((l) => l.trim() !== '');
lines.forEach((text, i) => {
  const m = /HAZARD (\S+)/.exec(text);
  if (!m) return;
  const want = kinds[m[1]];
  if (!want) fail(`fixture names an unknown hazard: ${m[1]}`);
  if (!reported.some((r) => r.includes(`hazards.cpp:${i + 1}:`) && want.test(r))) fail(`not reported: line ${i + 1} (${m[1]})`);
});
const stray = reported.filter((r) => r.includes('safe.cpp'));
if (stray.length) fail(`reported an allowed form:\n${stray.join('\n')}`);
console.log(`lint self-test: all ${Object.keys(kinds).length} hazard kinds reported, no allowed form reported`);
