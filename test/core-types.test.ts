// The compile-only contract test (test/types/contract.ts) passes tsc, and it is not vacuous:
// with its @ts-expect-error directives removed, exactly the lines they guarded fail to
// compile; and a directive over a correct line makes tsc fail (TS2578).

import t from 'tap';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsc = join(root, 'node_modules/typescript/bin/tsc');
const typesDir = join(root, 'test/types');

function runTsc(project: string): { ok: boolean; out: string } {
  try {
    execFileSync(process.execPath, [tsc, '--noEmit', '--pretty', 'false', '-p', project], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    return { ok: true, out: '' };
  } catch (err) {
    return { ok: false, out: String((err as { stdout?: string }).stdout) };
  }
}

/** Error lines per file name in tsc output. */
function errorLines(out: string, file: string): Map<number, string[]> {
  const lines = new Map<number, string[]>();
  for (const m of out.matchAll(/^(.*?)\((\d+),\d+\): error (TS\d+): (.*)$/gm)) {
    if (!m[1]!.endsWith(file)) continue;
    const n = Number(m[2]);
    lines.set(n, [...(lines.get(n) ?? []), `${m[3]} ${m[4]}`]);
  }
  return lines;
}

t.test('npx tsc --noEmit -p test/types/tsconfig.json passes', async (t) => {
  const r = runTsc('test/types/tsconfig.json');
  t.ok(r.ok, `tsc passes${r.out ? `:\n${r.out}` : ''}`);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  t.match(pkg.scripts.typecheck, /test\/types\/tsconfig\.json/, 'npm run typecheck includes it');
});

t.test('every @ts-expect-error guards a real error, and a wrong directive fails tsc', async (t) => {
  const source = readFileSync(join(typesDir, 'contract.ts'), 'utf8');
  const lines = source.split('\n');
  const guarded: number[] = []; // 1-based line numbers right below a directive
  lines.forEach((l, i) => {
    if (/^\s*\/\/ @ts-expect-error/.test(l)) guarded.push(i + 2);
  });
  t.ok(guarded.length >= 25, `${guarded.length} directives`);

  const tag = `.tmp-${process.pid}`;
  const stripped = `${tag}-stripped.ts`;
  const extra = `${tag}-extra.ts`;
  const project = join(typesDir, `${tag}-tsconfig.json`);
  t.teardown(() => {
    for (const f of [stripped, extra]) rmSync(join(typesDir, f), { force: true });
    rmSync(project, { force: true });
  });
  // Same line numbers: each directive becomes a plain comment.
  writeFileSync(join(typesDir, stripped), source.replace(/\/\/ @ts-expect-error/g, '// (expect error)'));
  // A directive over a line that compiles: tsc must reject it as unused.
  const validLine = lines.findIndex((l) => l.includes("server.notify('u1', 'result', null);"));
  t.ok(validLine > 0, 'found a valid line to mislabel');
  const mislabelled = [...lines];
  mislabelled.splice(validLine, 0, '  // @ts-expect-error this line is fine');
  writeFileSync(join(typesDir, extra), mislabelled.join('\n'));
  writeFileSync(project, JSON.stringify({ extends: './tsconfig.json', files: [stripped, extra] }));

  const r = runTsc(project);
  t.notOk(r.ok, 'tsc fails');
  const errs = errorLines(r.out, stripped);
  const missing = guarded.filter((n) => !errs.has(n));
  t.same(missing.map((n) => `${n}: ${lines[n - 1]!.trim()}`), [], 'every guarded line is an error without its directive');
  const stray = [...errs.keys()].filter((n) => !guarded.includes(n));
  t.same(stray.map((n) => `${n}: ${errs.get(n)}`), [], 'and no other line is');

  const extraErrs = errorLines(r.out, extra);
  t.same([...extraErrs.entries()].map(([n, e]) => [n, e.map((s) => s.slice(0, 6))]), [[validLine + 1, ['TS2578']]], 'mislabelled line: TS2578 unused directive, nothing else');
});
