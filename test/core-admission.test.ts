// Who may connect, under load and during shutdown: a cap on concurrent authenticate()
// calls (server-wide and per remote address, past it 503), and 503 / 4503 while close()
// lets running handlers finish, instead of a refused TCP connection.

import t from 'tap';
import WebSocket from 'ws';
import { startServer, sleep, until } from './helpers.ts';

interface Outcome {
  status: number; // 101 when the handshake completed
  closeCode?: number;
  ws?: WebSocket;
}

/** One upgrade from `localAddress` (any 127.x.y.z works on Linux loopback). */
function attempt(port: number, uid: string, localAddress = '127.0.0.1', protocols?: string[]): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/?token=u:${uid}`, protocols, { localAddress });
    ws.on('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => {
      const out: Outcome = { status: 101, ws };
      ws.on('close', (code) => (out.closeCode = code));
      resolve(out);
    });
    ws.on('error', (err) => reject(err));
  });
}

t.test('authenticate cap: server-wide and per address; past it 503; a slot frees when authenticate settles', async (t) => {
  let running = 0;
  let peak = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const h = await startServer({
    authLimits: { maxPending: 10, maxPendingPerAddress: 6 },
    authenticate: async (req) => {
      peak = Math.max(peak, ++running);
      await gate;
      running--;
      return req.token!.slice(2);
    },
    handlers: { ok: () => 'ok' },
  });
  t.teardown(() => h.close());
  // 8 from one address (6 admitted, 2 refused), 6 from another (4 admitted: 10 in all).
  const a = Array.from({ length: 8 }, (_, i) => attempt(h.port, `a${i}`, '127.0.0.1'));
  await until(() => running === 6, 3000, 'six logins from 127.0.0.1 pending');
  const b = Array.from({ length: 6 }, (_, i) => attempt(h.port, `b${i}`, '127.0.0.2'));
  await until(() => running === 10, 3000, 'ten logins pending');
  await sleep(100);
  t.equal(running, 10, 'no more than maxPending authenticate() calls run');
  t.equal(h.server.pendingLogins, 10);
  release();
  const outcomes = await Promise.all([...a, ...b]);
  const count = (xs: Outcome[], s: number) => xs.filter((o) => o.status === s).length;
  t.equal(count(outcomes.slice(0, 8), 101), 6, '127.0.0.1: six admitted');
  t.equal(count(outcomes.slice(0, 8), 503), 2, '127.0.0.1: two answered 503 (per-address cap)');
  t.equal(count(outcomes.slice(8), 101), 4, '127.0.0.2: four admitted');
  t.equal(count(outcomes.slice(8), 503), 2, '127.0.0.2: two answered 503 (server-wide cap)');
  t.equal(peak, 10);
  for (const o of outcomes) o.ws?.terminate();
  await until(() => h.server.pendingLogins === 0, 2000, 'slots released');
  const c = await h.client('later');
  t.equal(await c.server.ok(), 'ok', 'logins work again once the slow ones are done');
});

t.test('a synchronous authenticate holds no slot: a burst past the caps all gets in; throwing or falsy is 401', async (t) => {
  const errors: unknown[] = [];
  const pendingSeen: number[] = [];
  let server: { pendingLogins: number } | undefined;
  const h = await startServer({
    onError: (err) => void errors.push(err),
    authLimits: { maxPending: 2, maxPendingPerAddress: 1 },
    authenticate: (req) => {
      if (server) pendingSeen.push(server.pendingLogins);
      const uid = req.token!.slice(2);
      if (uid === 'throws') throw new Error('bad token');
      return uid === 'nobody' ? null : uid;
    },
    handlers: { ok: () => 'ok' },
  });
  t.teardown(() => h.close());
  server = h.server;
  // 20 at once from one address, against a cap of one pending per address.
  const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => attempt(h.port, `s${i}`, '127.0.0.1')));
  t.same(
    outcomes.map((o) => o.status),
    Array(20).fill(101),
    'every one admitted: nothing was pending',
  );
  t.same(new Set(pendingSeen), new Set([0]), 'no slot taken while a synchronous authenticate runs');
  t.equal(pendingSeen.length, 20);
  for (const o of outcomes) o.ws?.terminate();
  t.equal((await attempt(h.port, 'throws')).status, 401, 'authenticate threw: 401');
  t.equal((await attempt(h.port, 'nobody')).status, 401, 'authenticate returned null: 401');
  t.same(errors.map((e) => (e as Error).message), ['bad token'], 'the throw reached onError');
  const c = await h.client('after');
  t.equal(await c.server.ok(), 'ok');
});

t.test('defaults under a flood of slow logins from one address: 64 run, the rest get 503, others get in', async (t) => {
  let running = 0;
  let peak = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const h = await startServer({
    authenticate: async (req) => {
      const uid = req.token!.slice(2);
      if (uid.startsWith('flood')) {
        peak = Math.max(peak, ++running);
        await gate;
        running--;
      }
      return uid;
    },
    handlers: { ok: () => 'ok' },
  });
  t.teardown(() => h.close());
  // 200 upgrades whose authenticate() never returns while the flood lasts (bounded, loopback).
  const flood = Array.from({ length: 200 }, (_, i) => attempt(h.port, `flood${i}`, '127.0.0.1'));
  await until(() => running === 64, 5000, '64 pending');
  const refused = await Promise.race([
    Promise.all(flood.slice(64)),
    sleep(5000).then(() => undefined),
  ]);
  t.ok(refused, 'the 136 past the cap were answered without waiting for authenticate');
  t.ok(refused!.every((o) => o.status === 503), 'all with 503');
  t.equal(peak, 64, 'no more than 64 authenticate() calls at once from one address');
  // Another address is not starved by this one.
  const good = await attempt(h.port, 'good', '127.0.0.3');
  t.equal(good.status, 101, 'a login from another address goes through');
  good.ws!.terminate();
  release();
  const admitted = await Promise.all(flood.slice(0, 64));
  t.ok(admitted.every((o) => o.status === 101), 'the 64 pending ones complete once authenticate answers');
  for (const o of admitted) o.ws?.terminate();
});

t.test('a client that gives up does not free its slot before authenticate settles', async (t) => {
  let running = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const h = await startServer({
    authLimits: { maxPending: 100, maxPendingPerAddress: 3 },
    authenticate: async (req) => {
      running++;
      await gate;
      running--;
      return req.token!.slice(2);
    },
    handlers: {},
  });
  t.teardown(() => h.close());
  // Connect-and-abort: without this rule it would run any number of authenticate() calls.
  const sockets = Array.from({ length: 3 }, (_, i) => new WebSocket(`ws://127.0.0.1:${h.port}/?token=u:x${i}`).on('error', () => {}));
  await until(() => running === 3, 3000, 'three pending');
  for (const s of sockets) s.terminate();
  await sleep(50);
  t.equal((await attempt(h.port, 'next')).status, 503, 'still capped while their authenticate() runs');
  release();
  await until(() => h.server.pendingLogins === 0, 2000, 'released');
  const ok = await attempt(h.port, 'after');
  t.equal(ok.status, 101, 'admitted once they settled');
  ok.ws!.terminate();
});

t.test('during close() grace the server keeps listening: new upgrades get 503, Volley clients 4503', async (t) => {
  let finish!: () => void;
  const h = await startServer({
    handlers: { slow: () => new Promise<string>((r) => (finish = () => r('done'))) },
  });
  const c = await h.client('alice', { reconnect: false });
  const result = c.server.slow();
  await until(() => finish !== undefined, 2000, 'slow() running');
  const closing = h.server.close({ graceMs: 5000 });
  await sleep(20);
  const plain = await attempt(h.port, 'bob');
  t.equal(plain.status, 503, 'a plain WebSocket client gets HTTP 503, not ECONNREFUSED');
  const volley = await attempt(h.port, 'carol', '127.0.0.1', ['volley']);
  t.equal(volley.status, 101, 'a client offering the volley sub-protocol is accepted…');
  await until(() => volley.closeCode !== undefined, 2000, 'close');
  t.equal(volley.closeCode, 4503, '…and closed at once with 4503');
  finish();
  t.equal(await result, 'done', 'the running call still completes');
  await closing;
  await t.rejects(attempt(h.port, 'dave'), /ECONNREFUSED/, 'once every socket is closed the server stops listening');
});
