// The client must run in a browser: nothing under client/ (nor what it imports from
// protocol/) may import a Node built-in, and client/ type-checks with the DOM lib and no
// Node types.

import t from 'tap';
import { builtinModules } from 'node:module';
import { readFileSync, readdirSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsc = join(root, 'node_modules/typescript/bin/tsc');
const builtins = new Set(builtinModules);

/** Every module specifier in a source: static imports/exports, import(), require(). */
function specifiers(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\s[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"`]([^'"`]+)['"`]\s*\)/g,
    /\brequire\s*\(\s*['"`]([^'"`]+)['"`]\s*\)/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) found.push(m[1]!);
  return found;
}

const isNodeBuiltin = (spec: string) => spec.startsWith('node:') || builtins.has(spec) || builtins.has(spec.split('/')[0]!);

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

t.test('the scanner itself finds every import form', async (t) => {
  const sample = [
    "import fs from 'node:fs';",
    'import { join } from "path";',
    "export { x } from 'events';",
    "import 'node:crypto';",
    "const m = await import('os');",
    "const r = require('child_process');",
    "import type { Foo } from './foo.ts';",
    "// import nope from 'http';",
  ].join('\n');
  const specs = specifiers(sample);
  t.same(specs.filter(isNodeBuiltin).sort(), ['child_process', 'events', 'node:crypto', 'node:fs', 'os', 'path']);
  t.ok(specs.includes('./foo.ts'));
  t.notOk(specs.includes('http'), 'commented-out imports are ignored');
});

t.test('no Node built-in anywhere in client/ or the protocol files it pulls in', async (t) => {
  const queue = tsFiles(join(root, 'client'));
  t.ok(queue.length >= 3, `client/ has ${queue.length} files`);
  const seen = new Set<string>();
  const offenders: string[] = [];
  const external = new Set<string>();
  while (queue.length) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of specifiers(readFileSync(file, 'utf8'))) {
      if (isNodeBuiltin(spec)) offenders.push(`${relative(root, file)} imports ${spec}`);
      else if (spec.startsWith('.')) queue.push(resolve(dirname(file), spec));
      else external.add(spec);
    }
  }
  t.same(offenders, [], 'no node:* or built-in imports');
  t.ok([...seen].some((f) => f.includes(`${'/'}protocol${'/'}peer.ts`)), 'followed imports into protocol/');
  // The only third-party code the client pulls in is msgpackr's browser-safe entries.
  t.same([...external].sort(), ['msgpackr/pack', 'msgpackr/unpack'], 'external imports');
});

t.test('client/ type-checks with the DOM lib and without Node types', async (t) => {
  const cfg = JSON.parse(readFileSync(join(root, 'client/tsconfig.json'), 'utf8'));
  t.same(cfg.compilerOptions.types, [], 'no ambient type packages (no @types/node)');
  t.ok(cfg.compilerOptions.lib.includes('DOM'), 'DOM lib');
  const run = (project: string) => {
    try {
      execFileSync(process.execPath, [tsc, '--noEmit', '--pretty', 'false', '-p', project], { cwd: root, encoding: 'utf8', timeout: 60_000 });
      return { ok: true, out: '' };
    } catch (err) {
      return { ok: false, out: String((err as { stdout?: string }).stdout) };
    }
  };
  const real = run('client/tsconfig.json');
  t.ok(real.ok, `tsc -p client/tsconfig.json passes${real.out ? `:\n${real.out}` : ''}`);

  // Control: under the same settings, Node globals do not type-check, so the pass above means something.
  const dir = mkdtempSync(join(root, 'test/types/.tmp-client-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'uses-node.ts'), "export const a = process.env.HOME;\nexport const b = Buffer.from('x');\n");
  writeFileSync(
    join(dir, 'tsconfig.json'),
    // `files`, not `include`: the root tsconfig's exclude of test/types is inherited
    JSON.stringify({ extends: join(root, 'client/tsconfig.json'), files: ['uses-node.ts'] }),
  );
  const control = run(join(dir, 'tsconfig.json'));
  t.notOk(control.ok, 'a file using process/Buffer fails under client settings');
  // TS2580 / TS2591: "Cannot find name 'process' / 'Buffer'. Do you need to install type definitions for node?"
  t.match(control.out, /uses-node\.ts\(1,\d+\): error TS25(80|91)/, 'process is unknown');
  t.match(control.out, /uses-node\.ts\(2,\d+\): error TS25(80|91)/, 'Buffer is unknown');
});
