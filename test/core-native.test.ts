// The server runs on uWebSockets.js' native binary, not the package's silent pure-JS fallback.

import t from 'tap';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isNativeUws } from '../server/index.ts';
import { uws } from '../server/uws.ts';
import { startServer } from './helpers.ts';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('..', import.meta.url));

t.test('the native uWebSockets.js binary is loaded and serving', async (t) => {
  t.equal(isNativeUws, true, 'isNativeUws');
  // independent of isNativeUws: the exact binary for this platform and ABI is in the module cache
  const binary = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  const loaded = Object.keys(require.cache).filter((p) => p.endsWith('.node') && p.includes('uWebSockets'));
  t.ok(loaded.some((p) => p.endsWith(binary)), `${binary} is loaded (${loaded.join(', ')})`);
  t.notOk(
    Object.keys(require.cache).some((p) => /uWebSockets\.js[\\/]dist[\\/]/.test(p)),
    'the JS fallback (dist/) was never loaded',
  );
  t.match(Function.prototype.toString.call(uws.App), /\[native code\]/, 'App is a native function');

  const warnings: unknown[] = [];
  const warn = console.warn;
  console.warn = (...a: unknown[]) => void warnings.push(a);
  try {
    const h = await startServer({ handlers: { ok: () => 'ok' } });
    t.teardown(() => h.close());
    const c = await h.client('alice');
    t.equal(await c.server.ok(), 'ok', 'a call over the native server');
  } finally {
    console.warn = warn;
  }
  t.same(warnings, [], 'no fallback warning');
});

t.test('the check can fail: with the fallback forced, isNativeUws is false', async (t) => {
  // A child process loads server/uws.ts with the package's own switch to its JS fallback.
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', '-e', "import('./server/uws.ts').then((m) => console.log('native=' + m.isNativeUws))"],
    { cwd: root, env: { ...process.env, UWS_USE_FALLBACK: '1' }, encoding: 'utf8', timeout: 20_000 },
  );
  t.match(out, /native=false/);
});
