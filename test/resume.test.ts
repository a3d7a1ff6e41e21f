import t from 'tap';
import { startServer, until, rejectsCode, sleep, freePort } from './helpers.ts';
import { createServer } from '../server/index.ts';

t.test('a call pending when the socket drops completes after the reconnect, and runs once', async (t) => {
  let runs = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const h = await startServer({
    handlers: {
      slow: async (_ctx, n: number) => {
        runs++;
        await gate;
        return n * 2;
      },
    },
  });
  t.teardown(() => h.close());
  const c = await h.client('ann', { reconnect: { initialDelayMs: 20, maxDelayMs: 50 } });
  const sid = c.sessionId;
  const states: string[] = [];
  c.on('state', (s) => states.push(s));
  const p = c.server.slow(21);
  await until(() => runs === 1, 2000, 'handler to start');
  c.drop();
  t.equal(c.state, 'reconnecting');
  await until(() => c.state === 'open', 3000, 'reconnect');
  t.equal(c.sessionId, sid, 'same session resumed');
  release();
  t.equal(await p, 42, 'the pending call got its result');
  t.equal(runs, 1, 'the handler ran once');
  t.same(states, ['reconnecting', 'open']);
});

t.test('a call whose reply was lost is answered once: the kept reply is re-sent after the resume, not run again', async (t) => {
  let runs = 0;
  const h = await startServer({ handlers: { once: (_ctx, n: number) => (runs++, n + 1) } });
  t.teardown(() => h.close());
  const c = await h.client('bob', { reconnect: { initialDelayMs: 20 } });
  // Drop the socket right after the request leaves, before the reply can arrive.
  const p = c.server.once(1);
  c.peer.flush();
  c.drop();
  await until(() => c.state === 'open', 3000, 'reconnect');
  t.equal(await p, 2);
  await sleep(20);
  t.equal(runs, 1, 'ran exactly once');
});

t.test('server → client calls pending across a drop complete exactly once', async (t) => {
  let runs = 0;
  const h = await startServer({ handlers: {} });
  t.teardown(() => h.close());
  const c = await h.client('cat', {
    reconnect: { initialDelayMs: 30 },
    handlers: { ask: async (_ctx, q: string) => (runs++, await sleep(50), `${q}!`) },
  });
  const p = h.server.call('cat', 'ask', ['hi'], { timeoutMs: 3000 });
  await until(() => runs === 1, 2000, 'client handler to start');
  c.drop();
  t.ok(h.server.isConnected('cat'), 'session survives within the window');
  t.equal(await p, 'hi!');
  t.equal(runs, 1);
});

t.test('rooms survive a resume; after the window the session ends and pending calls reject', async (t) => {
  const ended: string[] = [];
  const h = await startServer({ handlers: { never: () => new Promise(() => {}) }, resumeWindowMs: 150, onSessionEnd: (u) => ended.push(u) });
  t.teardown(() => h.close());
  const got: string[] = [];
  const c = await h.client('dan', { reconnect: { initialDelayMs: 10 }, handlers: { news: (_ctx, s: string) => void got.push(s) } });
  h.server.join('dan', 'lobby');
  c.drop();
  await until(() => c.state === 'open', 3000, 'reconnect');
  h.server.notifyRoom('lobby', 'news', 'after-resume');
  await until(() => got.length === 1, 2000, 'room notification');
  t.same(h.server.members('lobby'), ['dan']);

  // Now a client that does not come back: no reconnect.
  const d = await h.client('eve', { reconnect: false });
  const pending = d.server.never();
  const serverSide = h.server.call('eve', 'whatever', [], { timeoutMs: 5000 });
  d.drop();
  await rejectsCode(pending, 'DISCONNECTED');
  await rejectsCode(serverSide, 'DISCONNECTED');
  t.ok(ended.includes('eve'), 'onSessionEnd fired after the window');
  t.notOk(h.server.isConnected('eve'));
});

t.test('a deliberate close ends the session at once', async (t) => {
  const ended: string[] = [];
  const h = await startServer({ handlers: {}, onSessionEnd: (u) => ended.push(u) });
  t.teardown(() => h.close());
  const c = await h.client('fay');
  c.close();
  await until(() => ended.includes('fay'), 2000, 'session end');
  t.equal(c.state, 'closed');
  await rejectsCode(c.server.anything(), 'DISCONNECTED');
});

t.test('graceful restart: in-flight calls finish, clients see 1001 and reconnect to the next server', async (t) => {
  let release!: () => void;
  // A fixed port, as in production: uWebSockets.js sets SO_REUSEADDR only when the port
  // is not 0, and without it the restarted server could not bind past TIME_WAIT sockets.
  const port = await freePort();
  const h = await startServer({ handlers: { slow: () => new Promise((r) => (release = () => r('finished'))) } }, port);
  const c = await h.client('gus', { reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
  t.teardown(() => c.close());
  const codes: number[] = [];
  const opens: boolean[] = [];
  c.on('close', (i) => codes.push(i.code));
  c.on('open', (o) => opens.push(o.resumed));
  const inflight = c.server.slow();
  await until(() => release !== undefined, 2000, 'handler started');
  const closing = h.server.close({ graceMs: 5000 });
  await sleep(50);
  t.equal(codes.length, 0, 'sockets stay open while a handler runs');
  release();
  t.equal(await inflight, 'finished', 'the in-flight call got its result');
  await closing;
  await until(() => codes.length > 0, 2000, 'close event');
  t.equal(codes[0], 1001, 'closed with GOING_AWAY');
  // The next server process comes up on the same port; the client finds it by itself.
  const next = createServer({
    authenticate: (req) => req.token?.slice(2),
    handlers: { ping: () => 'pong from the new server' },
  });
  await next.listen(port, '127.0.0.1');
  t.teardown(() => next.close({ graceMs: 10 }));
  await until(() => c.state === 'open', 5000, 'reconnect to the new server');
  t.same(opens, [false], 'a new session (the old server took its sessions with it)');
  t.equal(await c.server.ping(), 'pong from the new server');
});
