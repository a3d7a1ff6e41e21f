// Graceful close lets running handlers finish and answer, then closes sockets with 1001;
// and once everything is closed no timer or pending call is left behind.

import t from 'tap';
import { CloseCode, type RpcError } from '../server/index.ts';
import { startServer, until, sleep } from './helpers.ts';

const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

t.test('server.close() while a handler runs: the client gets its result, then 1001', async (t) => {
  let finished = false;
  const h = await startServer({
    handlers: {
      slow: async (_ctx: unknown, n: number) => {
        await sleep(200);
        finished = true;
        return n * 2;
      },
    },
  });
  let serverCallSettled: unknown;
  const c = await h.client('alice', { reconnect: false, handlers: { hang: () => new Promise(() => {}) } });
  const events: string[] = [];
  const closed = new Promise<number>((r) =>
    c.on('close', (i) => {
      events.push(`close ${i.code}`);
      r(i.code);
    }),
  );
  const result = c.server.slow(21).then((v: number) => (events.push('result'), v));
  // a call the server made that will never be answered
  const fromServer = h.server
    .to('alice')
    .hang()
    .then(() => undefined, (e: RpcError) => (serverCallSettled = e));
  await until(() => c.peer.pendingIncoming === 1, 2000, 'server call in flight');
  await sleep(20); // slow() is running now

  const closing = h.server.close({ graceMs: 2000 });
  t.equal(await result, 42, 'the running handler finished and its result arrived');
  t.ok(finished);
  t.equal(await closed, CloseCode.GOING_AWAY, 'then the socket closed with 1001');
  t.same(events, ['result', 'close 1001'], 'result before close');
  await closing;
  await fromServer;
  t.match(serverCallSettled, { code: 'DISCONNECTED' }, "the server's own pending call rejected DISCONNECTED");
  t.equal(c.state, 'closed', 'reconnect: false — the client stays closed');
  t.equal(c.peer.pendingOutgoing + c.peer.pendingIncoming, 0, 'client: nothing pending');
  t.equal(h.server.connectionCount, 0);
  await t.resolves(h.server.close(), 'close() again is harmless');
});

t.test('a handler that overstays graceMs is cut off: the caller rejects, the handler signal fires', async (t) => {
  let reason: unknown;
  const h = await startServer({
    handlers: {
      forever: (ctx: { signal: AbortSignal }) =>
        new Promise((_r, rej) => ctx.signal.addEventListener('abort', () => rej((reason = ctx.signal.reason)))),
    },
  });
  const c = await h.client('bob', { reconnect: false });
  const p = c.server.forever().then(() => undefined, (e: RpcError) => e);
  await sleep(20);
  await h.server.close({ graceMs: 50 });
  t.match(await p, { code: 'DISCONNECTED' });
  await until(() => reason !== undefined, 2000, 'handler signal');
  t.match(reason, { code: 'DISCONNECTED' });
});

t.test('no timers or pending calls left after a busy session is closed', async (t) => {
  const before = timeouts();
  const h = await startServer({
    handlers: {
      echo: (_c: unknown, v: unknown) => v,
      wait: (ctx: { signal: AbortSignal }) => new Promise((_r, rej) => ctx.signal.addEventListener('abort', () => rej(ctx.signal.reason))),
    },
  });
  const a = await h.client('a', { handlers: { echo: (_c: unknown, v: unknown) => v, wait: () => new Promise(() => {}) } });
  const b = await h.client('b', { reconnect: false });
  // answered, timed out, cancelled and abandoned calls, both directions
  await Promise.all(Array.from({ length: 50 }, (_, i) => a.server.echo(i)));
  await Promise.all(Array.from({ length: 50 }, (_, i) => h.server.to('a').echo(i)));
  await a.with({ timeoutMs: 20 }).wait().catch(() => {});
  await h.server.to('a', { timeoutMs: 20 }).wait().catch(() => {});
  const ac = new AbortController();
  const cancelled = a.with({ signal: ac.signal }).wait().catch(() => {});
  ac.abort();
  await cancelled;
  const abandoned = [a.server.wait().catch(() => {}), h.server.to('a').wait().catch(() => {}), b.server.wait().catch(() => {})];
  await until(() => a.peer.pendingOutgoing === 1 && a.peer.pendingIncoming === 1 && b.peer.pendingOutgoing === 1, 2000, 'abandoned calls in flight');
  t.ok(timeouts() > before, 'pending calls hold deadline timers (so the count below means something)');
  await until(() => h.server.stats().pendingIncoming === 2, 2000, 'server handlers running');
  t.same(h.server.stats(), { connections: 2, pendingIncoming: 2, pendingOutgoing: 1 }, 'server sees exactly the abandoned calls');

  await h.close();
  await Promise.all(abandoned);
  for (const c of [a, b]) {
    t.equal(c.peer.pendingOutgoing, 0, 'client pendingOutgoing 0');
    t.equal(c.peer.pendingIncoming, 0, 'client pendingIncoming 0');
    t.equal(c.state, 'closed');
  }
  t.equal(h.server.connectionCount, 0, 'server holds no connection');
  await until(() => timeouts() <= before, 3000, 'timers to be cleared').catch(() => {});
  t.equal(timeouts(), before, `no timers left (${process.getActiveResourcesInfo().join(', ')})`);
});
