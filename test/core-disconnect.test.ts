// A connection that ends rejects every pending call on both sides with DISCONNECTED and
// aborts the signals of handlers still running on both sides.

import t, { type Test } from 'tap';
import type { RpcError } from '../server/index.ts';
import { startServer, until, sleep, type Harness } from './helpers.ts';

interface Seen {
  server: unknown[];
  client: unknown[];
}

/** A handler that never answers on its own; records the reason its signal fired. */
const hang = (into: unknown[]) => (ctx: { signal: AbortSignal }) =>
  new Promise((_res, rej) => ctx.signal.addEventListener('abort', () => (into.push(ctx.signal.reason), rej(ctx.signal.reason))));

async function setup(t: Test, serverOpts: Record<string, unknown> = {}) {
  const seen: Seen = { server: [], client: [] };
  const h: Harness<any, any> = await startServer({ handlers: { hang: hang(seen.server) }, ...serverOpts });
  t.teardown(() => h.close());
  const c = await h.client('alice', { handlers: { hang: hang(seen.client) }, reconnect: false });
  // one call pending each way, both handlers running
  const fromClient = c.server.hang().then(() => undefined, (e: RpcError) => e);
  const fromServer = h.server.to('alice').hang().then(() => undefined, (e: RpcError) => e);
  await until(() => c.peer.pendingIncoming === 1 && c.peer.pendingOutgoing === 1, 2000, 'calls in flight');
  await sleep(10);
  return { h, c, seen, fromClient, fromServer };
}

async function expectAllDisconnected(t: Test, s: Awaited<ReturnType<typeof setup>>) {
  t.match(await s.fromClient, { code: 'DISCONNECTED' }, 'client → server call rejects DISCONNECTED');
  t.match(await s.fromServer, { code: 'DISCONNECTED' }, 'server → client call rejects DISCONNECTED');
  await until(() => s.seen.server.length === 1 && s.seen.client.length === 1, 2000, 'handler signals');
  t.equal((s.seen.server[0] as RpcError).code, 'DISCONNECTED', 'server handler signal aborted');
  t.equal((s.seen.client[0] as RpcError).code, 'DISCONNECTED', 'client handler signal aborted');
  t.equal(s.c.peer.pendingOutgoing + s.c.peer.pendingIncoming, 0, 'client has nothing pending');
  await until(() => !s.h.server.isConnected('alice'), 2000, 'server forgot alice');
  await t.rejects(s.c.server.hang(), { code: 'DISCONNECTED' }, 'later client calls reject at once');
  await t.rejects(s.h.server.to('alice').hang(), { code: 'UNAVAILABLE' }, 'later server calls: UNAVAILABLE');
}

t.test('the client closes', async (t) => {
  const s = await setup(t);
  s.c.close();
  await expectAllDisconnected(t, s);
  t.equal(s.c.state, 'closed');
});

t.test('the server disconnects the uid', async (t) => {
  const s = await setup(t);
  const closed = new Promise<number>((r) => s.c.on('close', (i) => r(i.code)));
  s.h.server.disconnect('alice');
  await expectAllDisconnected(t, s);
  t.equal(await closed, 1000, 'client saw a normal close');
});

t.test('the socket drops (no resume window, no reconnect)', async (t) => {
  const s = await setup(t, { resumeWindowMs: 0 });
  s.c.drop();
  await expectAllDisconnected(t, s);
});
