// Which transport runs: native uWebSockets.js when its binary loads (never the package's
// JS shim, which answers HTTP and never completes a handshake), else the ws package.

import t from 'tap';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { detectTransport } from '../server/index.ts';
import { CAN_REUSE_PORT } from '../server/transports/ws.ts';
import { freePort, startServer } from './helpers.ts';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('..', import.meta.url));
const forced = process.env.VOLLEY_TRANSPORT;

t.test('auto-choice on this Node: the native binary when it loads, and it serves', async (t) => {
  const found = detectTransport();
  const h = await startServer({ handlers: { ok: () => 'ok' } });
  t.teardown(() => h.close());
  t.equal(h.server.transport, forced ?? found.name, `transport ${h.server.transport} (${found.detail})`);
  const c = await h.client('alice');
  t.equal(await c.server.ok(), 'ok', `a call over ${h.server.transport}`);
  if (found.name === 'uws') {
    const binary = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
    const loaded = Object.keys(require.cache).filter((p) => p.endsWith('.node') && /uws/i.test(p));
    t.ok(loaded.some((p) => p.endsWith(binary)), `${binary} is loaded (${loaded.join(', ')})`);
  }
  t.notOk(
    Object.keys(require.cache).some((p) => /uws-native-compat[\\/](dist|src)[\\/]/.test(p)),
    "the compat package's main file and JS shim were never run",
  );
});

t.test('both transports can be forced and serve the same calls', async (t) => {
  for (const transport of ['ws', ...(detectTransport().name === 'uws' ? ['uws' as const] : [])] as const) {
    const h = await startServer({ transport, handlers: { add: (_ctx, a: number, b: number) => a + b } });
    const c = await h.client('bob');
    t.equal(h.server.transport, transport);
    t.equal(await c.server.add(2, 3), 5, `call on ${transport}`);
    await h.close();
  }
});

t.test('without a loadable binary, auto picks ws, and forcing uws says why', async (t) => {
  // A child whose Node ABI number matches no binary: what Node 22/24 see with the compat build.
  const script = `
    Object.defineProperty(process.versions, 'modules', { value: '999' });
    const { detectTransport, createServer } = await import('./server/index.ts');
    console.log('auto=' + detectTransport().name);
    try { createServer({ transport: 'uws', authenticate: () => 'x', handlers: {} }); console.log('forced=ok'); }
    catch (e) { console.log('forced=' + e.message); }
  `;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    env: { ...process.env, VOLLEY_TRANSPORT: '', UWS_USE_FALLBACK: '' },
    encoding: 'utf8',
    timeout: 20_000,
  });
  t.match(out, /auto=ws/);
  t.match(out, /forced=volley: transport 'uws' asked for, but .*no uws_.*_999\.node/);
});

t.test('a port in use fails listen() unless both servers ask to share it (reusePort)', async (t) => {
  // uWebSockets.js sets SO_REUSEPORT unless told not to: a second server on a busy port
  // used to "listen" fine and take a share of the first one's players.
  for (const transport of ['ws', ...(detectTransport().name === 'uws' ? ['uws' as const] : [])] as const) {
    const a = await startServer({ transport, handlers: { who: () => 'a' } }, await freePort());
    t.teardown(() => a.close());
    await t.rejects(
      startServer({ transport, handlers: { who: () => 'b' } }, a.port),
      /could not listen|EADDRINUSE/,
      `${transport}: a second server on port ${a.port} is refused`,
    );
    for (let i = 0; i < 8; i++) {
      const c = await a.client(`p${i}`);
      t.equal(await c.server.who(), 'a', `${transport}: player ${i} reaches the server that owns the port`);
    }
  }
});

t.test('reusePort: servers that all ask for it share one port', async (t) => {
  const both = [...(CAN_REUSE_PORT ? ['ws' as const] : []), ...(detectTransport().name === 'uws' ? ['uws' as const] : [])];
  if (both.length === 0) return t.plan(0, `no transport can share a port on Node ${process.versions.node}`);
  for (const transport of both) {
    const port = await freePort();
    const a = await startServer({ transport, reusePort: true, handlers: { who: () => 'a' } }, port);
    t.teardown(() => a.close());
    const b = await startServer({ transport, reusePort: true, handlers: { who: () => 'b' } }, port);
    t.teardown(() => b.close());
    t.equal(b.port, port, `${transport}: the second server listens on ${port} too`);
    const seen = new Set<string>();
    for (let i = 0; i < 40 && seen.size < 2; i++) seen.add(await (await a.client(`q${i}`)).server.who());
    t.same([...seen].sort(), ['a', 'b'], `${transport}: the kernel spreads players over both`);
  }
});
