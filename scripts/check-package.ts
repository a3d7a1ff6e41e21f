// The package as a user gets it: `npm pack` (which builds dist/) and what the tarball holds
// (LICENSE, every file the README links to, no source maps), a fresh project that installs
// the tarball with the README's own install line (at most 10 MB), the README's own package.json, tsconfig.json and src/*.ts taken
// verbatim from the README, compiled with those strict settings against the package's
// .d.ts, then the README's server and client run against each other with plain `node`
// (no loader) on Node 20, 22 and 24. One call each way, and the transport each used. Then
// the README's native-engine opt-in, and the server again on Node 20: on uWebSockets.js
// wherever the repository's own install loads it.
//
//   npm run check:package            (CI runs it from .ci/run)
//   CHECK_NODE_VERSIONS="22" …       only these extra Node majors (default "22 24")
//
// Node 22/24 come from the npm registry's `node` package, installed once into a cache
// folder (VOLLEY_NODE_CACHE, default ~/.cache/volley-ci). Prints one line per check and
// "package: N passed, N failed"; exits non-zero on any failure.

import { build } from 'esbuild';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { GZIP_BUDGET } from './build-browser.ts';
import { detectTransport } from '../server/transports/index.ts';

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

/** The README's install line for the release tarball: `npm install ./volley-<version>.tgz ws`. */
export function readmeInstallLine(readme: string): string[] | undefined {
  return /^npm install (\.\/volley-\S+\.tgz.*)$/m.exec(readme)?.[0].split(/\s+/);
}

/** The README's commands that add the native engine from the registry (`npm install uws-native-…@npm:…`). */
export function readmeNativeOptIn(readme: string): string[][] {
  return [...readme.matchAll(/^npm install (uws-native-\S+@npm:\S+)$/gm)].map((m) => m[0].split(/\s+/));
}

/**
 * Relative links and images of a Markdown file (`[x](path)`, `![x](path)`), resolved from the
 * file's folder, without their #anchor: each must be in the package or a registry page
 * shows a broken link. Absolute URLs and in-page anchors are left alone.
 */
export function relativeLinks(file: string, text: string): string[] {
  const dir = posix.dirname(file);
  const out = new Set<string>();
  for (const m of text.matchAll(/!?\[[^\]]*\]\(([^)\s]+)\)/g)) {
    const target = m[1]!;
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) continue;
    out.add(posix.normalize(posix.join(dir, target.split('#')[0]!)));
  }
  return [...out];
}

/** Kilobytes on disk under `dir` (du -sk). */
function diskKb(dir: string): number {
  return Number(/^(\d+)/.exec(run('du', ['-sk', dir], dir, 60_000).out)?.[1] ?? NaN);
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
async function playOn(node: string, project: string): Promise<{ transport: string; announced: string } | undefined> {
  const version = run(node, ['-v'], project, 30_000).out.trim();
  const port = await freePort();
  const server = spawn(node, ['dist/server.js'], { cwd: project, env: { ...process.env, PORT: String(port), VOLLEY_TRANSPORT: '' } });
  const s = collect(server);
  try {
    const up = await waitFor(() => /listening on \d+ over (uws|ws)/.test(s.text()) || server.exitCode !== null, 20_000);
    const transport = /listening on \d+ over (uws|ws)/.exec(s.text())?.[1];
    if (!check(up && transport !== undefined, `${version}: README server starts (plain node, no loader)`)) {
      console.log(s.text().slice(-2000));
      return undefined;
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
      /player3: 97/.test(clientOut) && // a stream from the server
      /player42 replays paper/.test(serverOut) && // a stream from the client
      /uploaded 2 moves/.test(clientOut) &&
      /match7 replay saved: rock scissors/.test(serverOut) && // an upload from the client
      /player42 chose 2/.test(serverOut) && // server → client call
      /player42 voted 1/.test(serverOut);
    if (!check(ok, `${version}: README client ↔ server over ${transport}: one call and one stream each way, an upload, room notification, clean exit`))
      console.log(`--- client:\n${clientOut.slice(-2000)}\n--- server:\n${serverOut.slice(-2000)}`);
    return { transport: transport!, announced };
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
    const docs = /^(README\.md|CHANGELOG\.md|LICENSE|protocol\/SPEC\.md|docs\/(CLUSTER|ARCHITECTURE|DEPLOY|RELEASING)\.md|docs\/(screenshot|monitor)\.png|(bench|conformance|csharp|loadtest)\/README\.md)$/;
    const stray = paths.filter((p) => !(/^dist\/.*\.js$/.test(p) || /^dist\/.*\.d\.ts$/.test(p) || p === 'package.json' || docs.test(p)));
    check(stray.length === 0, `tarball ships dist/ (.js, .d.ts), README, CHANGELOG, LICENSE, SPEC and the docs the README links to only${stray.length ? `: ${stray.slice(0, 5).join(', ')}` : ''}`);
    check(paths.includes('dist/volley.browser.js') && paths.includes('dist/client/index.browser.js'), 'tarball has the browser bundle and the browser entry');
    check(paths.includes('LICENSE') && /^MIT License/.test(readFileSync(join(root, 'LICENSE'), 'utf8')), 'tarball has LICENSE (MIT, as package.json says)');
    const mapped = paths.filter((p) => p.endsWith('.map'));
    const mapRefs = paths.filter((p) => p.endsWith('.js') && /\/\/# sourceMappingURL=/.test(readFileSync(join(root, p), 'utf8')));
    check(mapped.length === 0 && mapRefs.length === 0, `no source maps shipped or referenced (dist/ is tsc's readable output)${mapped.length + mapRefs.length ? `: ${[...mapped, ...mapRefs].slice(0, 3).join(', ')}` : ''}`);
    const missing: string[] = [];
    for (const doc of ['README.md', 'CHANGELOG.md', 'docs/DEPLOY.md'])
      for (const target of relativeLinks(doc, readFileSync(join(root, doc), 'utf8'))) if (!paths.includes(target)) missing.push(`${doc} → ${target}`);
    check(missing.length === 0, `every file README.md, CHANGELOG.md and docs/DEPLOY.md link to is in the tarball${missing.length ? `; missing: ${missing.join(', ')}` : ''}`);
    const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
    check(manifest.optionalDependencies === undefined, 'no optional dependencies: the native engine is an opt-in (README, Transports)');

    // 2. A new project from the README.
    const project = join(work, 'app');
    mkdirSync(join(project, 'src'), { recursive: true });
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const files = readmeFiles(readme);
    const want = ['package.json', 'tsconfig.json', 'src/contract.ts', 'src/server.ts', 'src/client.ts'];
    if (!check(want.every((f) => files.has(f)), `README has ${want.join(', ')}`)) return;
    const pkg = JSON.parse(files.get('package.json')!);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'volley-readme-check', private: true, ...pkg }, null, 2));
    for (const [name, text] of files) if (name !== 'package.json') writeFileSync(join(project, name), text);
    // The README's install line as written, the tarball next to package.json under the name it gives.
    const line = readmeInstallLine(readme);
    if (!check(line !== undefined && line[2] === `./${info!.filename}`, `README's install line names this release's tarball (${line?.join(' ')}; packed ${info!.filename})`)) return;
    copyFileSync(join(work, info!.filename), join(project, info!.filename));
    const inst = run(line![0]!, [...line!.slice(1), '--no-audit', '--no-fund'], project);
    if (!check(inst.ok, `${line!.join(' ')} in a fresh project`)) return void console.log(inst.out.slice(-3000));
    const installedKb = diskKb(join(project, 'node_modules'));
    check(installedKb <= 10 * 1024, `the default install is ${(installedKb / 1024).toFixed(1)} MB on disk (du -sk node_modules; at most 10 MB)`);
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
    const first = await playOn(process.execPath, project);
    for (const major of (process.env.CHECK_NODE_VERSIONS ?? '22 24').split(/\s+/).filter(Boolean)) {
      const bin = nodeBinary(major);
      if (check(bin !== undefined, `node@${major} from the npm registry`)) await playOn(bin!, project);
    }

    // 6. The native engine, as a user gets it: the server's first line on this Node named the
    //    one README command that loads here; run that command alone, then the server again:
    //    uWebSockets.js wherever the repository's own install (its devDependencies) loads it.
    const optIn = readmeNativeOptIn(readme).map((c) => c.join(' '));
    if (!check(optIn.length > 0, `README gives the native engine's install commands (${optIn.length})`) || !first) return;
    const here = detectTransport();
    const named = /npm install uws-native-\S+@npm:\S+/.exec(first.announced)?.[0];
    if (here.name === 'ws') return void check(named === undefined, `no native build loads here and the server names none to install (${first.announced})`);
    if (!check(named !== undefined && optIn.includes(named), `the server on the default install names the README command that loads here: ${named ?? first.announced}`)) return;
    const r = run('npm', [...named!.split(' ').slice(1), '--no-audit', '--no-fund'], project);
    if (!check(r.ok, named!)) return void console.log(r.out.slice(-3000));
    const after = await playOn(process.execPath, project);
    check(after?.transport === here.name, `after that one command, Node ${process.versions.node} runs on ${after?.transport} (the repository here: ${here.detail})`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main().catch((err) => check(false, `check-package crashed: ${(err as Error).stack}`));
  console.log(`package: ${passed} passed, ${failed} failed`);
  process.exit(failed > 0 ? 1 : 0);
}


