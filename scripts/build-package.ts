// `npm run build` (also run by `npm pack` / `npm publish` through prepack): the package's
// dist/ — ESM .js and .d.ts for volley/server, volley/client, volley/protocol,
// volley/cluster/redis and volley/loadtest (with the volley-loadtest command), the browser
// entry of volley/client, and the prebuilt bundle volley/browser. The repository's own
// tests, bench and demo keep running from source.
//
// No source maps ship: tsc's output keeps the source's lines, names and comments (only the
// types go), so a stack trace into dist/ reads as well as one into the .ts would; maps
// pointing at .ts files the package does not ship would only make debuggers complain, and
// with their sources embedded they were 785 KB of the 1.4 MB unpacked (issue 26).

import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBrowser, ENGINE_FIELDS, slimPack } from './build-browser.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
const require = createRequire(import.meta.url);

function* files(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* files(p);
    else yield p;
  }
}

/**
 * tsc rewrites `./x.ts` to `./x.js` in the emitted JavaScript (rewriteRelativeImportExtensions)
 * but not in declaration files, where a user's tsc would then ask for
 * allowImportingTsExtensions (TS5097). Rewritten here, relative specifiers only.
 */
export function rewriteDeclarationImports(text: string): string {
  return text.replace(/((?:from|import)\s*\(?\s*)(['"])(\.{1,2}\/[^'"]+?)\.ts\2/g, '$1$2$3.js$2');
}

export async function buildPackage(): Promise<void> {
  for (const d of ['protocol', 'server', 'client', 'loadtest', 'codegen']) rmSync(join(dist, d), { recursive: true, force: true });
  const tsc = require.resolve('typescript/bin/tsc');
  // The library, then the volley-loadtest command (bin) and volley/loadtest (its own config:
  // it is not part of the library's program), and the volley-codegen command (bin).
  for (const config of ['tsconfig.build.json', 'loadtest/tsconfig.build.json', 'codegen/tsconfig.build.json']) {
    const r = spawnSync(process.execPath, [tsc, '-p', join(root, config), '--sourceMap', 'false', '--inlineSources', 'false'], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`tsc -p ${config} failed`);
  }
  let dts = 0;
  for (const f of files(dist)) {
    if (!f.endsWith('.d.ts')) continue;
    const text = readFileSync(f, 'utf8');
    const out = rewriteDeclarationImports(text);
    if (out !== text) writeFileSync(f, out);
    dts++;
  }
  // volley/client under the `browser` condition: the same client with the slim encoder
  // (client/packr.browser.ts) instead of msgpackr's Packr, ~6 KB gzip less once bundled.
  // msgpackr/unpack stays an import, so the user's bundler shares it. The engine's state
  // fields are shortened as in the prebuilt bundle (the whole engine is inside this file;
  // none of those names crosses its edge): a bundler's build 17.9 → 17.7 KB gzip (check-package).
  await build({
    absWorkingDir: root,
    entryPoints: ['client/index.ts'],
    outfile: join(dist, 'client/index.browser.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    external: ['msgpackr/unpack', 'msgpackr'],
    mangleProps: ENGINE_FIELDS,
    logLevel: 'warning',
    plugins: [slimPack],
  });
  // volley/browser: the prebuilt, minified bundle for a plain <script type="module">.
  await buildBrowser({ quiet: true });
  console.log(`dist/: ${dts} declaration files, client browser entry, volley.browser.js`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    await buildPackage();
  } catch (err) {
    console.error(`build failed: ${(err as Error).message}`);
    process.exit(1);
  }
}
