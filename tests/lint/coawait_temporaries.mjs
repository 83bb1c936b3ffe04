// GCC 12 destroys a braced aggregate temporary twice when it appears inside a co_await operand
// (e.g. `co_await send(Response{200, {}, "x"})` is a double free — reproduced under ASan). This
// check keeps the pattern out of src/ and bench/: build the value in a named variable first.
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
  }
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`checked ${files.length} files: no braced temporaries in co_await operands`);
