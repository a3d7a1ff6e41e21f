// Deadlines and cancellation in both directions: the caller rejects TIMEOUT / CANCELLED,
// the callee's ctx.signal fires, and a reply that comes after the deadline is dropped quietly.

import t from 'tap';
import WebSocket from 'ws';
import { encode, decodeFrame, DEFAULT_LIMITS, type RpcError } from '../server/index.ts';
import { startServer, until, sleep } from './helpers.ts';

/** A handler that waits until its signal fires and records why. */
function waiter(log: Array<{ method: string; reason: unknown }>) {
  return (ctx: { signal: AbortSignal; method: string }) =>
    new Promise((_resolve, reject) => {
      ctx.signal.addEventListener('abort', () => {
        log.push({ method: ctx.method, reason: ctx.signal.reason });
        reject(ctx.signal.reason);
      });
    });
}

/** Block the event loop: the reply is produced after the caller's deadline has passed. */
function busy(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end);
}

t.test('client → server deadline: TIMEOUT for the caller, the handler signal fires', async (t) => {
  const aborted: Array<{ method: string; reason: unknown }> = [];
  const h = await startServer({ handlers: { wait: waiter(aborted), fast: () => 'fast' } });
  t.teardown(() => h.close());
  const c = await h.client('alice', { timeoutMs: 60 });

  const t0 = Date.now();
  await t.rejects(c.with({ timeoutMs: 40 }).wait(), { code: 'TIMEOUT' }, 'per-call deadline');
  t.ok(Date.now() - t0 >= 35, 'not before the deadline');
  await t.rejects(c.call('wait', [], { timeoutMs: 30 }), { code: 'TIMEOUT' }, 'call() with opts');
  await t.rejects(c.server.wait(), { code: 'TIMEOUT' }, 'client default timeoutMs');
  await until(() => aborted.length === 3, 2000, 'handler signals');
  t.ok(aborted.every((a) => (a.reason as RpcError).code === 'CANCELLED'), 'callee sees the caller gave up');
  t.equal(await c.server.fast(), 'fast', 'connection still fine');
  t.equal(c.peer.pendingOutgoing, 0);
  t.same(h.server.stats(), { connections: 1, pendingIncoming: 0, pendingOutgoing: 0 }, 'server: the cancelled handlers are gone');
});

t.test('server → client deadline: server-wide default and per-call override, client signal fires', async (t) => {
  const aborted: Array<{ method: string; reason: unknown }> = [];
  const h = await startServer({ handlers: {}, timeoutMs: 50 });
  t.teardown(() => h.close());
  const c = await h.client('bob', { handlers: { wait: waiter(aborted), fast: () => 'fast' } });

  await t.rejects(h.server.to('bob').wait(), { code: 'TIMEOUT' }, 'server default timeoutMs');
  await t.rejects(h.server.to('bob', { timeoutMs: 20 }).wait(), { code: 'TIMEOUT' }, 'to(uid, opts)');
  await t.rejects(h.server.call('bob', 'wait', [], { timeoutMs: 20 }), { code: 'TIMEOUT' }, 'call(opts)');
  // the per-call deadline overrides the default in the other direction too: longer than 50 ms
  const slow = await h.server.call('bob', 'fast', [], { timeoutMs: 5000 });
  t.equal(slow, 'fast');
  await until(() => aborted.length === 3, 2000, 'client handler signals');
  t.equal(c.peer.pendingIncoming, 0, 'client dropped the cancelled calls');
  t.same(h.server.stats(), { connections: 1, pendingIncoming: 0, pendingOutgoing: 0 }, 'server: no call left pending');
});

t.test('a reply after the deadline is dropped quietly (client side)', async (t) => {
  const h = await startServer({ handlers: { late: () => (busy(120), 'late'), ok: () => 'ok' } });
  t.teardown(() => h.close());
  // Record every frame the client's socket receives, to prove the late reply really arrived.
  const received: unknown[][] = [];
  class SpyWS extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      this.on('message', (d: Buffer) => received.push(...(decodeFrame(d, 1000) as unknown[][])));
    }
  }
  const c = await h.client('carol', { WebSocket: SpyWS as never });
  const p = c.with({ timeoutMs: 30 }).late();
  await t.rejects(p, { code: 'TIMEOUT' });
  await until(() => received.some((m) => m[0] === 1 && m[3] === 'late'), 2000, 'late reply on the wire');
  t.equal(c.peer.pendingOutgoing, 0, 'nothing pending');
  t.equal(await c.server.ok(), 'ok', 'still serving after the late reply');
});

t.test('a reply after the deadline is dropped quietly (server side), and the callee got $cancel', async (t) => {
  const h = await startServer({ handlers: {} });
  t.teardown(() => h.close());
  // A hand-written client that answers server calls when it likes.
  const ws = new WebSocket(`${h.url}?token=u:raw`);
  t.teardown(() => ws.terminate());
  const got: unknown[][] = [];
  ws.on('message', (d: Buffer) => got.push(...(decodeFrame(d, DEFAULT_LIMITS.maxMessagesPerFrame) as unknown[][])));
  await until(() => got.length > 0, 2000, '$session');

  const p = h.server.call('raw', 'think', [], { timeoutMs: 30 });
  await until(() => got.some((m) => m[0] === 0), 2000, 'request');
  const id = got.find((m) => m[0] === 0)![1];
  await t.rejects(p, { code: 'TIMEOUT' });
  await until(() => got.some((m) => m[0] === 2 && m[1] === '$cancel'), 2000, '$cancel');
  t.same(got.find((m) => m[1] === '$cancel'), [2, '$cancel', [id]], '$cancel names the call');
  ws.send(encode([1, id, null, 'too late']));
  ws.send(encode([1, 999_999, null, 'never asked'])); // unknown id: ignored too
  await sleep(30);
  t.equal(ws.readyState, WebSocket.OPEN, 'socket not closed for a late reply');

  // the server still calls this client normally afterwards
  const p2 = h.server.call('raw', 'think', [], { timeoutMs: 2000 });
  await until(() => got.filter((m) => m[0] === 0).length === 2, 2000, 'second request');
  const id2 = got.filter((m) => m[0] === 0)[1]![1];
  ws.send(encode([1, id2, null, 'on time']));
  t.equal(await p2, 'on time');
});

t.test('cancellation through an AbortSignal reaches the handler signal, both ways', async (t) => {
  const aborted: Array<{ method: string; reason: unknown }> = [];
  const h = await startServer({ handlers: { wait: waiter(aborted) } });
  t.teardown(() => h.close());
  const clientAborted: Array<{ method: string; reason: unknown }> = [];
  const c = await h.client('dan', { handlers: { wait: waiter(clientAborted) } });

  // client → server
  const ac = new AbortController();
  const p = c.with({ signal: ac.signal, timeoutMs: 5000 }).wait();
  await sleep(20); // let the handler start
  ac.abort();
  await t.rejects(p, { code: 'CANCELLED' }, 'caller rejects CANCELLED');
  await until(() => aborted.length === 1, 2000, 'server handler signal');
  t.equal((aborted[0]!.reason as RpcError).code, 'CANCELLED');

  // call() with a signal
  const ac1 = new AbortController();
  const p1 = c.call('wait', [], { signal: ac1.signal });
  await sleep(20);
  ac1.abort();
  await t.rejects(p1, { code: 'CANCELLED' });
  await until(() => aborted.length === 2, 2000, 'second server handler signal');

  // an already-aborted signal never sends the call
  await t.rejects(c.call('wait', [], { signal: AbortSignal.abort() }), { code: 'CANCELLED' });

  // server → client
  const ac2 = new AbortController();
  const p2 = h.server.to('dan', { signal: ac2.signal, timeoutMs: 5000 }).wait();
  await sleep(20);
  ac2.abort();
  await t.rejects(p2, { code: 'CANCELLED' }, 'server caller rejects CANCELLED');
  await until(() => clientAborted.length === 1, 2000, 'client handler signal');
  t.equal((clientAborted[0]!.reason as RpcError).code, 'CANCELLED');

  await sleep(20);
  t.equal(aborted.length, 2, 'the pre-aborted call never ran');
  t.equal(c.peer.pendingOutgoing + c.peer.pendingIncoming, 0, 'client has nothing pending');
  t.same(h.server.stats(), { connections: 1, pendingIncoming: 0, pendingOutgoing: 0 }, 'server has nothing pending');
});

t.test('a very long deadline (or Infinity) does not time out at once', async (t) => {
  const h = await startServer({ handlers: { slow: async () => (await sleep(30), 'done') } });
  t.teardown(() => h.close());
  const c = await h.client('eve', { handlers: { slow: async () => (await sleep(30), 'done') } });
  for (const timeoutMs of [Infinity, 2 ** 31, 30 * 24 * 3600 * 1000]) {
    t.equal(await c.call('slow', [], { timeoutMs }), 'done', `client → server, timeoutMs ${timeoutMs}`);
    t.equal(await h.server.call('eve', 'slow', [], { timeoutMs }), 'done', `server → client, timeoutMs ${timeoutMs}`);
  }
});

t.test('deadlines share one sweep: calls made with long, short and middle timeouts each time out at their own', async (t) => {
  const aborted: Array<{ method: string; reason: unknown }> = [];
  const h = await startServer({ handlers: { wait: waiter(aborted), fast: () => 'fast' } });
  t.teardown(() => h.close());
  const c = await h.client('alice');
  const t0 = Date.now();
  const order: Array<[number, number]> = [];
  const calls = [400, 100, 250, 100].map((ms) =>
    c.call('wait', [], { timeoutMs: ms }).catch((e: RpcError) => {
      t.equal(e.code, 'TIMEOUT');
      order.push([ms, Date.now() - t0]);
    }),
  );
  // One that answers in between: settling it must not disturb the others' deadlines.
  t.equal(await c.call('fast', [], { timeoutMs: 50 }), 'fast');
  await Promise.all(calls);
  t.same(order.map(([ms]) => ms), [100, 100, 250, 400], 'timed out in deadline order, not call order');
  for (const [ms, took] of order) t.ok(took >= ms - 2 && took < ms + 300, `timeout ${ms} ms fired after ${took} ms`);
  t.equal(c.peer.pendingOutgoing, 0);
  await until(() => aborted.length === 4, 2000, 'every handler was told');
});
