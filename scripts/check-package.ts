// The package as a user gets it: `npm pack` (which builds dist/), a fresh project that
// installs the tarball, the README's own package.json, tsconfig.json and src/*.ts taken
// verbatim from the README, compiled with those strict settings against the package's
// .d.ts, then the README's server and client run against each other with plain `node`
// (no loader) on Node 20, 22 and 24. One call each way, and the transport each used.
//
//   npm run check:package            (CI runs it from .ci/run)
//   CHECK_NODE_VERSIONS="22" …       only these extra Node majors (default "22 24")
//
// Node 22/24 come from the npm registry's `node` package, installed once into a cache
// folder (VOLLEY_NODE_CACHE, default ~/.cache/volley-ci). Prints one line per check and
// "package: N passed, N failed"; exits non-zero on any failure.

import { build } from 'esbuild';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { GZIP_BUDGET } from './build-browser.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
let passed = 0;
let failed = 0;

function check(ok: boolean, what: string): boolean {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  return ok;
}

function run(cmd: string, args: string[], cwd: string, timeoutMs = 600_000): { ok: boolean; out: string; stdout: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, npm_config_update_notifier: 'false' } });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  return { ok: r.status === 0, out, stdout: r.stdout ?? '' };
}

/** README code blocks whose first line is `// <file>`: the files of a user's project. */
export function readmeFiles(readme: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const m of readme.matchAll(/```(ts|json|jsonc)\n\/\/ (\S+)[^\n]*\n([\s\S]*?)```/g)) {
    const [, lang, name, body] = m as unknown as [string, string, string, string];
    if (!(name.startsWith('src/') || name === 'package.json' || name === 'tsconfig.json')) continue;
    // package.json must be strict JSON: its name line goes; tsconfig.json may keep comments.
    files.set(name, lang === 'ts' || name === 'tsconfig.json' ? `// ${name}\n${body}` : body);
  }
  return files;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.once('error', reject);
  });
}

/** A node binary of `major` from the registry's `node` package, cached across runs. */
function nodeBinary(major: string): string | undefined {
  const dir = join(process.env.VOLLEY_NODE_CACHE ?? join(homedir(), '.cache', 'volley-ci'), `node${major}`);
  const bin = join(dir, 'node_modules', '.bin', 'node');
  const works = () => existsSync(bin) && run(bin, ['-v'], dir, 30_000).out.startsWith(`v${major}.`);
  if (works()) return bin;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `node${major}-cache`, private: true }));
  const r = run('npm', ['install', '--no-audit', '--no-fund', `node@${major}`], dir);
  if (!works()) {
    console.log(`could not install node@${major} from the registry:\n${r.out.slice(-1500)}`);
    return undefined;
  }
  return bin;
}

function collect(child: ChildProcess): { text: () => string } {
  let text = '';
  child.stdout?.on('data', (d) => (text += d));
  child.stderr?.on('data', (d) => (text += d));
  return { text: () => text };
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/** The README's server and client in `project`, on one node binary. */
async function playOn(node: string, project: string): Promise<void> {
  const version = run(node, ['-v'], project, 30_000).out.trim();
  const port = await freePort();
  const server = spawn(node, ['dist/server.js'], { cwd: project, env: { ...process.env, PORT: String(port), VOLLEY_TRANSPORT: '' } });
  const s = collect(server);
  try {
    const up = await waitFor(() => /listening on \d+ over (uws|ws)/.test(s.text()) || server.exitCode !== null, 20_000);
    const transport = /listening on \d+ over (uws|ws)/.exec(s.text())?.[1];
    if (!check(up && transport !== undefined, `${version}: README server starts (plain node, no loader)`)) {
      console.log(s.text().slice(-2000));
      return;
    }
    const announced = /\[volley\] transport: ([^\n]*)/.exec(s.text())?.[1] ?? '?';
    console.log(`     ${version}: transport ${transport} — ${announced}`);
    const client = spawn(node, ['dist/client.js'], { cwd: project, env: { ...process.env, URL: `ws://127.0.0.1:${port}/` } });
    const c = collect(client);
    const exited = await waitFor(() => client.exitCode !== null, 20_000);
    if (!exited) client.kill('SIGKILL');
    const clientOut = c.text();
    const serverOut = s.text();
    const ok =
      exited &&
      client.exitCode === 0 &&
      /in the lobby with 1 player\(s\)/.test(clientOut) && // client → server call
      /news: round over/.test(clientOut) &&
      /player42 chose 2/.test(serverOut) && // server → client call
      /player42 voted 1/.test(serverOut);
    if (!check(ok, `${version}: README client ↔ server over ${transport}: one call each way, room notification, clean exit`))
      console.log(`--- client:\n${clientOut.slice(-2000)}\n--- server:\n${serverOut.slice(-2000)}`);
  } finally {
    server.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'volley-pack-'));
  try {
    // 1. npm pack: runs prepack (npm run build).
    const packed = run('npm', ['pack', '--json', '--pack-destination', work], root);
    const info = (() => {
      try {
        return JSON.parse(packed.stdout.slice(packed.stdout.indexOf('\n[') + 1))[0] as { filename: string; size: number; unpackedSize: number; files: { path: string }[] };
      } catch {
        return undefined;
      }
    })();
    if (!check(packed.ok && info !== undefined, 'npm pack (builds dist/)')) {
      console.log(packed.out.slice(-3000));
      return;
    }
    const paths = info!.files.map((f) => f.path);
    console.log(`     tarball ${info!.filename}: ${(info!.size / 1024).toFixed(1)} KB, ${paths.length} files, ${(info!.unpackedSize / 1024).toFixed(1)} KB unpacked`);
    const stray = paths.filter((p) => !/^(dist\/|package\.json$|README\.md$|protocol\/SPEC\.md$|docs\/(CLUSTER|ARCHITECTURE)\.md$|LICENSE)/.test(p) || /\.ts$/.test(p.replace(/\.d\.ts$/, '')));
    check(stray.length === 0, `tarball ships dist/, README, SPEC and the docs only${stray.length ? `: ${stray.slice(0, 5).join(', ')}` : ''}`);
    check(paths.includes('dist/volley.browser.js') && paths.includes('dist/client/index.browser.js'), 'tarball has the browser bundle and the browser entry');

    // 2. A new project from the README.
    const project = join(work, 'app');
    mkdirSync(join(project, 'src'), { recursive: true });
    const files = readmeFiles(readFileSync(join(root, 'README.md'), 'utf8'));
    const want = ['package.json', 'tsconfig.json', 'src/contract.ts', 'src/server.ts', 'src/client.ts'];
    if (!check(want.every((f) => files.has(f)), `README has ${want.join(', ')}`)) return;
    const pkg = JSON.parse(files.get('package.json')!);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'volley-readme-check', private: true, ...pkg }, null, 2));
    for (const [name, text] of files) if (name !== 'package.json') writeFileSync(join(project, name), text);
    const inst = run('npm', ['install', '--no-audit', '--no-fund', join(work, info!.filename), 'ws'], project);
    if (!check(inst.ok, 'npm install <tarball> ws in a fresh project')) return void console.log(inst.out.slice(-3000));
    const dev = run('npm', ['install', '--no-audit', '--no-fund', '-D', '@types/node@20', '@types/ws'], project);
    if (!check(dev.ok, 'npm install -D @types/node @types/ws')) return void console.log(dev.out.slice(-3000));

    // 3. The README's tsconfig (strict, exactOptionalPropertyTypes, skipLibCheck false) against the package's .d.ts.
    const tsc = run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', project], project);
    if (!check(tsc.ok, "README snippets compile with the README's tsconfig against volley's .d.ts")) return void console.log(tsc.out.slice(-3000));

    // 4. What a bundler gets for volley/client in a browser build: the slim encoder.
    writeFileSync(join(project, 'browser-entry.js'), "export { VolleyClient } from 'volley/client';\n");
    const bundled = await build({ absWorkingDir: project, entryPoints: ['browser-entry.js'], bundle: true, format: 'esm', platform: 'browser', minify: true, write: false, logLevel: 'silent' });
    const gz = gzipSync(bundled.outputFiles[0]!.contents, { level: 9 }).byteLength;
    check(gz <= GZIP_BUDGET, `a bundler's build of volley/client for the browser: ${(gz / 1024).toFixed(1)} KB gzip (budget ${GZIP_BUDGET / 1024} KB)`);

    // 5. Run on Node 20 (this one) and the registry's Node 22 and 24.
    await playOn(process.execPath, project);
    for (const major of (process.env.CHECK_NODE_VERSIONS ?? '22 24').split(/\s+/).filter(Boolean)) {
      const bin = nodeBinary(major);
      if (check(bin !== undefined, `node@${major} from the npm registry`)) await playOn(bin!, project);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main().catch((err) => check(false, `check-package crashed: ${(err as Error).stack}`));
  console.log(`package: ${passed} passed, ${failed} failed`);
  process.exit(failed > 0 ? 1 : 0);
}


