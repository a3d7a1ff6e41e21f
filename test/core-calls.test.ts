// Calls and notifications in both directions, over a real uWebSockets.js server and ws clients.

import t from 'tap';
import { startServer, until } from './helpers.ts';
import type { ServerContext } from '../server/index.ts';

interface ServerApi {
  add(a: number, b: number): number;
  echo(v: unknown): unknown;
  whoami(): string;
  askBack(q: string): Promise<string>;
  log(line: string): void;
}
interface ClientApi {
  greet(name: string): string;
  double(n: number): Promise<number>;
  tick(n: number): void;
}

t.test('client → server: proxy, call() and with() all return the handler result', async (t) => {
  const h = await startServer<ServerApi, ClientApi>({
    handlers: {
      add: (_ctx, a, b) => a + b,
      echo: (_ctx, v) => v,
      whoami: (ctx) => ctx.uid,
      askBack: async (ctx, q) => `server got ${await ctx.client.greet(q)}`,
      log: () => {},
    },
  });
  t.teardown(() => h.close());
  const c = await h.client('alice', {
    handlers: { greet: (_ctx, n) => `hi ${n}`, double: async (_ctx, n) => n * 2, tick: () => {} },
  });

  t.equal(await c.server.add(2, 3), 5, 'typed proxy');
  t.equal(await c.call('add', [40, 2]), 42, 'call(method, args)');
  t.equal(await c.with({ timeoutMs: 2000 }).add(1, 1), 2, 'with() proxy');
  t.equal(await c.server.whoami(), 'alice', 'ctx.uid is the authenticated uid');
  // a handler calling back the same client while it answers
  t.equal(await c.server.askBack('bob'), 'server got hi bob', 'nested call server → client inside a handler');

  const value = { n: 1.5, s: 'ü€', list: [1, [2, [3]]], nil: null, bytes: new Uint8Array([1, 2, 255]), big: 2 ** 40 };
  const back = (await c.server.echo(value)) as typeof value;
  t.same({ ...back, bytes: [...back.bytes] }, { ...value, bytes: [1, 2, 255] }, 'values survive msgpack both ways');
  t.equal(await c.server.log('x'), null, 'a void handler answers nil');
  // proxies are not thenable: awaiting one (easy by mistake) must not hang or send "then"
  t.equal(await Promise.race([Promise.resolve(c.server).then(() => 'resolved'), new Promise((r) => setTimeout(r, 500, 'hung'))]), 'resolved');
  t.equal(await Promise.race([Promise.resolve(h.server.to('alice')).then(() => 'resolved'), new Promise((r) => setTimeout(r, 500, 'hung'))]), 'resolved');
  t.equal(c.peer.pendingOutgoing, 0);
});

t.test('bin values reach a handler as plain Uint8Array on every transport, alone in a frame or not, small or large', async (t) => {
  const h = await startServer<{ kind(b: Uint8Array): string }>({
    handlers: { kind: (_ctx, b) => `${Object.getPrototypeOf(b) === Uint8Array.prototype ? 'Uint8Array' : b.constructor.name} ${b.byteLength}` },
  });
  t.teardown(() => h.close());
  const c = await h.client('bins');
  const small = new Uint8Array([1, 2, 3]);
  const large = new Uint8Array(10_000).fill(7);
  t.equal(await c.server.kind(small), 'Uint8Array 3', 'small, one message in its frame');
  t.equal(await c.server.kind(large), 'Uint8Array 10000', 'large, one message in its frame');
  t.same(await Promise.all([c.server.kind(small), c.server.kind(large)]), ['Uint8Array 3', 'Uint8Array 10000'], 'several messages in one frame');
});

t.test('server → client: to(uid), to(uid, opts) and call() return the client handler result', async (t) => {
  const h = await startServer<ServerApi, ClientApi>({
    handlers: { add: (_ctx, a, b) => a + b, echo: (_c, v) => v, whoami: (c) => c.uid, askBack: async () => '', log: () => {} },
  });
  t.teardown(() => h.close());
  const seen: string[] = [];
  const c = await h.client('bob', {
    handlers: {
      greet: (ctx, n) => {
        seen.push(ctx.method);
        return `hi ${n}`;
      },
      double: async (ctx, n) => n * 2 + (await ctx.server.add(0, 0)), // client calls back while answering
      tick: () => {},
    },
  });
  t.equal(await h.server.to('bob').greet('carol'), 'hi carol');
  t.equal(await h.server.to('bob', { timeoutMs: 1000 }).double(21), 42);
  t.equal(await h.server.call('bob', 'greet', ['dave']), 'hi dave');
  t.same(seen, ['greet', 'greet']);
  t.equal(c.peer.pendingIncoming, 0);
  // calling a uid that is not connected fails at once with UNAVAILABLE
  await t.rejects(h.server.to('nobody').greet('x'), { code: 'UNAVAILABLE' });
});

t.test('notify both ways: delivered with the sender identified, no reply', async (t) => {
  const logged: Array<[string, string]> = [];
  const h = await startServer<ServerApi, ClientApi>({
    handlers: {
      add: (_c, a, b) => a + b,
      echo: (_c, v) => v,
      whoami: (c) => c.uid,
      askBack: async () => '',
      log: (ctx: ServerContext<ClientApi>, line) => {
        logged.push([ctx.uid, line]);
      },
    },
  });
  t.teardown(() => h.close());
  const ticks: number[] = [];
  const c = await h.client('erin', { handlers: { greet: (_c, n) => n, double: async (_c, n) => n, tick: (_c, n) => void ticks.push(n) } });

  c.notify('log', 'one');
  c.notify('log', 'two');
  await until(() => logged.length === 2, 2000, 'server notifications');
  t.same(logged, [['erin', 'one'], ['erin', 'two']], 'in order, with ctx.uid');

  h.server.notify('erin', 'tick', 1);
  h.server.notify('erin', 'tick', 2);
  h.server.notify('nobody', 'tick', 3); // not connected: dropped silently
  await until(() => ticks.length === 2, 2000, 'client notifications');
  t.same(ticks, [1, 2]);
  t.equal(c.peer.pendingOutgoing, 0, 'notifications leave nothing pending');
});
