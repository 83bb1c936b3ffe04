// Two GCC 12 coroutine miscompilations, kept out of src/ and bench/ (docs/architecture.md):
//
// 1. A braced aggregate temporary inside a co_await operand is destroyed twice
//    (`co_await send(Response{200, {}, "x"})` is a double free — reproduced under ASan).
//    Build the value in a named variable first.
// 2. A co_await inside the condition of an if/while/for (or a ?: operand) crashes — SIGSEGV or
//    SIGILL on resumption — when the coroutine happens to have no local variable of its own
//    (`if (!co_await f(x)) co_return false;` in a function with only parameters). Whether a
//    function has locals changes with every edit, so the form is banned outright: await into a
//    named variable, or use an init-statement (`if (auto ok = co_await f(x); !ok)`).
// 3. A ?: inside a co_await operand that yields a class temporary corrupts the heap:
//    `co_await acceptor.async_accept(flag ? ex : any_io_executor(make_strand(ex)), token)` aborted
//    both binaries with "corrupted double-linked list" within ~6,000 requests at concurrency 64,
//    and ran clean once the executor was chosen in a named variable first.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = process.argv[2];
const files = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (/\.(cpp|hpp)$/.test(name)) files.push(p);
  }
}
for (const dir of ['src', 'bench']) walk(join(root, dir));

// Blank out comments and string/char literals, keeping newlines so line numbers survive.
function strip(text) {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, ' '))
    .replace(/\/\/[^\n]*/g, (m) => ' '.repeat(m.length))
    .replace(/R"\(([\s\S]*?)\)"/g, (m) => m.replace(/[^\n]/g, ' '))
    .replace(/"(?:\\.|[^"\\\n])*"/g, (m) => '"' + ' '.repeat(m.length - 2) + '"')
    .replace(/'(?:\\.|[^'\\\n])'/g, "' '");
}

const problems = [];
for (const file of files) {
  const text = strip(readFileSync(file, 'utf8'));
  const re = /co_await\b/g;
  let m;
  while ((m = re.exec(text))) {
    const end = text.indexOf(';', m.index);
    const operand = text.slice(m.index, end < 0 ? text.length : end);
    // A braced initialiser inside the operand: Type{…} or Type<…>{…}, or a non-empty bare init
    // list as an argument. A bare `{}` is allowed: it only ever builds views and flags here.
    if (/[A-Za-z_][\w:]*(<[^;()]*>)?\s*\{/.test(operand.slice(8)) || /[(,]\s*\{\s*[^}\s]/.test(operand)) {
      const line = text.slice(0, m.index).split('\n').length;
      problems.push(`${file}:${line}: braced temporary inside a co_await operand (GCC 12 double-destroys it)`);
    }
    if (/\?/.test(operand)) {
      const line = text.slice(0, m.index).split('\n').length;
      problems.push(`${file}:${line}: ?: inside a co_await operand (GCC 12 corrupts its temporaries)`);
    }
  }
}
// Hazard 2: the text of each if/while/for condition (balanced parentheses), minus an
// init-statement that declares the awaited value.
for (const file of files) {
  const text = strip(readFileSync(file, 'utf8'));
  const re = /\b(if|while|for)\s*\(/g;
  let m;
  while ((m = re.exec(text))) {
    let depth = 0, i = m.index + m[0].length - 1, end = -1;
    for (; i < text.length; i++) {
      if (text[i] === '(') depth++;
      else if (text[i] === ')' && --depth === 0) { end = i; break; }
    }
    if (end < 0) continue;
    let condition = text.slice(m.index + m[0].length, end);
    if (m[1] === 'if') {
      // `if (auto x = co_await …; cond)`: the await initialises a local; only `cond` is checked.
      const semi = condition.indexOf(';');
      if (semi >= 0 && /^\s*(const\s+)?auto\b/.test(condition)) condition = condition.slice(semi + 1);
    }
    if (/\bco_await\b/.test(condition)) {
      const line = text.slice(0, m.index).split('\n').length;
      problems.push(`${file}:${line}: co_await inside an ${m[1]} condition (GCC 12 miscompiles it in a coroutine without locals)`);
    }
  }
  // co_await as an operand of ?: (reported to double-free its std::string temporaries).
  const ternary = /\?[^;:?]*\bco_await\b|:\s*co_await\b/g;
  while ((m = ternary.exec(text))) {
    const before = text.slice(Math.max(0, m.index - 1), m.index + 1);
    if (before.includes('::')) continue;
    const line = text.slice(0, m.index).split('\n').length;
    problems.push(`${file}:${line}: co_await inside a ?: operand (GCC 12)`);
  }
}

if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`checked ${files.length} files: no braced temporaries or ?: in co_await operands, no co_await in conditions`);
