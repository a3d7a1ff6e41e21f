// Builds the browser SDK (dist/volley.browser.js) and the demo page's script
// (demo/public/app.js). `npm run build:browser`; `npm start` runs it first.
//
// The SDK is one minified ESM file a game can load with a plain
// <script type="module">, no bundler. The build fails when:
//   - anything resolves to a Node built-in (the client must run in a browser);
//   - an input other than client/, protocol/ and msgpackr's pack.js/unpack.js gets in
//     (msgpackr's main entry drags in streams and the Node build);
//   - the output has a require() left in it (esbuild's shim for Node-style imports);
//   - the gzipped bundle is over 17.6 KB (issue 6 set 15 KB; the wire scan of issue 9 and the
//     exactly-once engine of issue 10 added ~1.6 KB gzip, the hot path of issue 14 ~0.5 KB:
//     17.0 KB measured).

import { build, type Metafile, type Plugin } from 'esbuild';
import { builtinModules } from 'node:module';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = fileURLToPath(new URL('..', import.meta.url));
export const BUNDLE = `${root}dist/volley.browser.js`;
export const APP = `${root}demo/public/app.js`;
// 17.6 KB: the engine's hot path (kept-message chunks and their ring, one deadline timer
// per peer, the held writer) is shared with the browser and added about 0.5 KB; a chunk
// sized for the message it must hold (a crash fix) took it 4 B past 17.5. 17.7 KB: the
// client's receive limits left 3 B, and SPEC 1.0's forward compatibility (message types a
// later version adds are skipped, not fatal) takes 18 B: 18,037 B measured. 17.8 KB: the
// engine split into modules of functions (issue 23) is 325 B smaller raw but gzips 144 B
// worse (each function's state parameter gets its own short name where `this` repeated):
// 18,181 B measured. 17.9 KB: resume on any node (issue 22) checks, in the engine both
// sides share, whether a session moved away (three branches and a getter): 18,235 B.
// 18.6 KB: streams both ways (issue 23: a handler's async iterable, read with for await):
// 18,931 B. 19.8 KB: uploads (issue 23: an async iterable passed as a param, read by the
// handler on the other side; engine/uploads.ts, both as caller and as callee): 20,216 B.
// 19.9 KB: streams that follow a session to another node (the reader's and the producer's
// branch for a moved session; the relay itself stays server-side): 20,282 B. 20.0 KB: a
// stream item's credit that waits for the sender's rate-limit token (+77 B, reached only on
// the server but in the engine both share) and uploads refused in notifications and
// callMany: 20,466 B. 20.2 KB: a bundler's build of volley/client (check-package) came to
// just over 20.0 KB with the same code. 20.6 KB: the feature `items` (SPEC §11, §12:
// several stream items in one request, sent and taken; `$features`): 20,916 B. 20.8 KB:
// the scan reads the usual envelopes in straight-line code (5.7 % of a small call's
// instructions) and the client sends `$items` only when it named the feature: 21,117 B.
export const GZIP_BUDGET = 20.8 * 1024;

/** Inputs the SDK may contain, relative to the repo root. */
const ALLOWED_INPUTS = [/^client\/[\w.]+\.ts$/, /^protocol\/(engine\/)?[\w.]+\.ts$/, /^node_modules\/msgpackr\/unpack\.js$/];

/**
 * msgpackr's Packr is 11.9 KB gzip on its own (records, bundled strings and extensions
 * live in one class, nothing to shake); the SDK would be 17.7 KB. The browser build
 * encodes with client/packr.browser.ts instead (same bytes on the wire for the values
 * Volley sends, see test/browser-codec.test.ts) and decodes with msgpackr's Unpackr.
 * `--msgpackr-pack` builds with msgpackr's Packr to compare.
 */
export const slimPack: Plugin = {
  name: 'slim-pack',
  setup(b) {
    b.onResolve({ filter: /^msgpackr\/pack$/ }, () => ({ path: `${root}client/packr.browser.ts` }));
  },
};

const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** Refuse Node built-ins at resolve time, naming the importer so the culprit is obvious. */
const noNodeBuiltins: Plugin = {
  name: 'no-node-builtins',
  setup(b) {
    b.onResolve({ filter: /^[a-z_:/]+$/ }, (args) =>
      builtins.has(args.path)
        ? { errors: [{ text: `Node built-in "${args.path}" imported by ${args.importer}: the browser SDK must not use it` }] }
        : undefined,
    );
  },
};

/**
 * The demo page imports the client by its source path, so it typechecks against the real
 * types; in the built app.js that import becomes the SDK served at /volley.js.
 */
const clientFromServer: Plugin = {
  name: 'client-from-server',
  setup(b) {
    b.onResolve({ filter: /\/client\/index\.ts$/ }, () => ({ path: '/volley.js', external: true }));
  },
};

export interface BrowserBuild {
  /** The SDK bundle and the demo page script (also on disk unless write was false). */
  bundle: Uint8Array;
  app: Uint8Array;
  rawBytes: number;
  gzipBytes: number;
  inputs: string[];
  /** Identifier uses of Node's Buffer left in the bundle (msgpackr's, behind typeof checks). */
  bufferRefs: number;
}

function checkInputs(meta: Metafile): string[] {
  const inputs = Object.keys(meta.inputs);
  const stray = inputs.filter((p) => !ALLOWED_INPUTS.some((re) => re.test(p)));
  if (stray.length > 0) throw new Error(`unexpected inputs in the browser SDK: ${stray.join(', ')}`);
  return inputs;
}

/**
 * The call engine's state fields (protocol/engine/state.ts), shortened like the private
 * fields they were before the engine was split into modules (+317 B gzip unshortened).
 * Only names no user-facing option or wire field has: a mangled name must never cross
 * the bundle's edge.
 */
export const ENGINE_FIELDS = /^(opts|handlerMap|schemaMap|defaultTimeoutMs|outgoingCalls|incoming|writer|reliable|closedBy|onSocket|everAttached|resyncing|owedCancels|writtenSeq|unwrittenBytes|paramsHeld|maxUnacked|maxHeld|overloadedRunning|relay|relayedCalls|streams|uploads|peerItems|featuresHeard)$/;

/**
 * Build both files. `write: false` keeps them in memory: tests that run in parallel serve
 * their own copy instead of racing on dist/.
 */
export async function buildBrowser(opts: { quiet?: boolean; write?: boolean; msgpackrPack?: boolean } = {}): Promise<BrowserBuild> {
  const write = opts.write ?? true;
  const result = await build({
    absWorkingDir: root,
    entryPoints: ['client/index.ts'],
    outfile: BUNDLE,
    bundle: true,
    format: 'esm',
    platform: 'browser', // picks msgpackr's "browser" export condition: pack.js / unpack.js
    target: 'es2022',
    minify: true,
    metafile: true,
    legalComments: 'none',
    mangleProps: ENGINE_FIELDS,
    logLevel: 'silent',
    write,
    plugins: opts.msgpackrPack ? [noNodeBuiltins] : [slimPack, noNodeBuiltins],
  });
  const inputs = opts.msgpackrPack ? Object.keys(result.metafile.inputs) : checkInputs(result.metafile);
  const code = write ? readFileSync(BUNDLE) : result.outputFiles![0]!.contents;
  const text = new TextDecoder().decode(code);
  if (/\brequire\(|__require/.test(text)) throw new Error('the browser SDK still contains require(): a CommonJS/Node import slipped in');
  const bufferRefs = (text.match(/(?<![A-Za-z])Buffer\b/g) ?? []).length;
  const gzipBytes = gzipSync(code, { level: 9 }).byteLength;

  const appResult = await build({
    absWorkingDir: root,
    entryPoints: ['demo/public/app.ts'],
    outfile: APP,
    bundle: true, // pulls in demo/api.ts (MOVES); the client stays external
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    logLevel: 'silent',
    write,
    plugins: [clientFromServer, noNodeBuiltins],
  });
  const app = write ? readFileSync(APP) : appResult.outputFiles![0]!.contents;

  const out = { bundle: code, app, rawBytes: code.byteLength, gzipBytes, inputs, bufferRefs };
  if (!opts.quiet) {
    const kb = (n: number) => `${(n / 1024).toFixed(2)} KB`;
    console.log(`dist/volley.browser.js  ${code.byteLength} B (${kb(code.byteLength)}), gzip ${gzipBytes} B (${kb(gzipBytes)}) of ${kb(GZIP_BUDGET)} budget`);
    console.log(`  inputs: ${inputs.length} files (client/, protocol/, msgpackr ${opts.msgpackrPack ? 'pack.js + ' : ''}unpack.js); Buffer refs: ${bufferRefs} (typeof-guarded in msgpackr)`);
    console.log(`demo/public/app.js      ${app.byteLength} B (imports /volley.js)${write ? '' : ' [in memory]'}`);
  }
  if (gzipBytes > GZIP_BUDGET) throw new Error(`browser SDK is ${gzipBytes} B gzipped, over the ${GZIP_BUDGET} B budget`);
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    await buildBrowser({ msgpackrPack: process.argv.includes('--msgpackr-pack') });
  } catch (err) {
    console.error(`build:browser failed: ${(err as Error).message}`);
    process.exit(1);
  }
}
