// Issue 20 #1 (the transport half) and #3: pipelined HTTP requests. One write of 20,000
// pipelined 404s (760 KB) stalled the ws transport's loop ~770 ms with nothing configured;
// 20,000 pipelined GETs of a route registered through the `http` routes API ran 20,000
// handlers back to back on either transport; an async route ran every pipelined request
// at once (2,000 in flight on one socket on the ws transport); a client that pipelines
// requests for a large reply and never reads had every reply buffered.
//
// Fixed: HTTP routes are answered one request at a time per socket, the next not started
// before the previous reply is written; past `httpLimits.maxPipelinedRequests` unanswered
// requests (ws transport, routesPort) the socket is closed without parsing the rest. On
// uWebSockets.js replies are written on a later turn, so a request pipelined behind one
// not yet answered closes the socket (uWebSockets.js' own rule for pending responses).

import t, { type Test } from 'tap';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { AttackServer, BOUNDS, GoodClient, figures } from './attack/harness.ts';
import { startServer, sleep } from './helpers.ts';
import { SERVER_DEFAULTS } from '../server/options.ts';
import { listenRoutes } from '../server/observe/mountHttp.ts';

const CAP = (SERVER_DEFAULTS as { httpLimits?: { maxPipelinedRequests?: number } }).httpLimits?.maxPipelinedRequests ?? 16;

/** The transport really running, checked against VOLLEY_TRANSPORT when that forces one. */
function checkTransport(tt: Test, name: string): void {
  const forced = process.env.VOLLEY_TRANSPORT;
  tt.comment(`transport: ${name}`);
  if (forced === 'uws' || forced === 'ws') tt.equal(name, forced, `the server runs on ${forced}, as VOLLEY_TRANSPORT asks`);
}

interface Pipelined {
  closed: boolean;
  /** Status lines received. */
  replies: number;
  statuses: string[];
  bytes: number;
  ms: number;
}

/**
 * One socket, `count` copies of `request` in one write; waits for the server to close it
 * (at most `waitMs`). `read: false` reads nothing for 1.5 s (the kernel's buffers fill
 * up), calls `onIdle`, then reads.
 */
async function pipeline(port: number, request: string, count: number, waitMs: number, read = true, onIdle?: () => void): Promise<Pipelined> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
  let text = '';
  let bytes = 0;
  if (read)
    s.on('data', (d: Buffer) => {
      bytes += d.length;
      if (text.length < 4_000_000) text += d.toString('latin1');
    });
  const t0 = performance.now();
  s.write(request.repeat(count));
  const closing = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), waitMs);
    s.once('close', () => (clearTimeout(timer), resolve(true)));
  });
  if (!read) {
    // Not reading, it would never see the server's FIN: hold still while the server does
    // what it does with a reader that does not read, then read to learn whether it closed.
    await sleep(1500);
    onIdle?.();
    s.resume();
  }
  const closed = await closing;
  const ms = performance.now() - t0;
  s.destroy();
  const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]!);
  return { closed, replies: statuses.length, statuses, bytes, ms };
}

const GET = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;

for (const [what, path] of [
  ['404s', '/nope'],
  ['GETs of a route (/health, mounted through the routes API)', '/health'],
] as const) {
  t.test(`20,000 pipelined ${what} in one write: the loop keeps turning, the socket is closed after the cap`, async (t) => {
    const srv = await AttackServer.start(t, { server: { observe: { routes: { health: '/health' } } } });
    const good = await GoodClient.start(t, srv);
    await srv.loop();
    const r = await pipeline(srv.port, GET(path), 20_000, 10_000);
    const loop = await srv.loop();
    const lat = await good.stop();
    figures(t, `pipelined ${path}`, {
      loop,
      good: lat,
      extra: `${GET(path).length * 20_000} bytes sent, ${r.replies} replies (${r.bytes} bytes) back, closed ${r.closed} after ${r.ms.toFixed(0)} ms`,
    });
    t.ok(srv.alive, 'the server stays up');
    t.ok(r.closed, 'the attacker is disconnected');
    t.ok(r.replies <= CAP, `at most the cap answered: ${r.replies} <= ${CAP}`);
    t.ok(loop.maxMs < BOUNDS.stallMs, `event loop stalled at most ${loop.maxMs.toFixed(0)} ms < ${BOUNDS.stallMs}`);
    t.equal(lat.failures, 0, `the good client's calls all answered (${lat.firstFailure ?? 'ok'})`);
    t.ok(lat.p99Ms < BOUNDS.p99Ms, `the good client's p99 ${lat.p99Ms.toFixed(0)} ms < ${BOUNDS.p99Ms} ms`);
  });
}

/** A server with an async route that records how many of its calls run at once. */
async function slowRoutes(t: { teardown(fn: () => unknown): void }) {
  const seen = { calls: 0, inFlight: 0, maxInFlight: 0, bigCalls: 0 };
  const big = 'x'.repeat(1024 * 1024);
  const h = await startServer({
    handlers: {},
    http: (r) => {
      r.get('/slow', async (req) => {
        seen.calls++;
        seen.maxInFlight = Math.max(seen.maxInFlight, ++seen.inFlight);
        await sleep(20);
        seen.inFlight--;
        return { body: `slow ${req.query.get('n') ?? ''}` };
      });
      r.get('/big', () => (seen.bigCalls++, { body: big }));
    },
  });
  t.teardown(() => h.close());
  return { h, seen };
}

t.test('2,000 pipelined requests to an async route: one in flight at a time, closed after the cap', async (t) => {
  const { h, seen } = await slowRoutes(t);
  checkTransport(t, h.server.transport);
  const r = await pipeline(h.port, GET('/slow'), 2000, 10_000);
  await sleep(100);
  t.comment(`FIGURES async route: ${seen.calls} handler calls, at most ${seen.maxInFlight} in flight, ${r.replies} replies, closed ${r.closed}`);
  // uWebSockets.js closes the socket before the first one runs (0); the ws transport runs 1.
  t.ok(seen.maxInFlight <= 1, `never more than one request of the socket in flight (${seen.maxInFlight})`);
  t.ok(seen.calls <= CAP, `at most the cap run: ${seen.calls} <= ${CAP}`);
  t.ok(r.closed, 'the socket is closed');
});

t.test('observe.routesPort (listenRoutes): 2,000 pipelined requests to an async route, one in flight, closed after the cap', async (t) => {
  const seen = { calls: 0, inFlight: 0, maxInFlight: 0 };
  const handle = async () => {
    seen.calls++;
    seen.maxInFlight = Math.max(seen.maxInFlight, ++seen.inFlight);
    await sleep(20);
    seen.inFlight--;
    return { status: 200, headers: { 'content-type': 'text/plain' }, body: 'slow' };
  };
  const server = await listenRoutes([{ method: 'GET', path: '/slow', handle }], 0, '127.0.0.1');
  t.teardown(() => server.close());
  const r = await pipeline((server.address() as net.AddressInfo).port, GET('/slow'), 2000, 10_000);
  await sleep(100);
  t.comment(`FIGURES routesPort async route: ${seen.calls} handler calls, at most ${seen.maxInFlight} in flight, ${r.replies} replies, closed ${r.closed}`);
  t.equal(seen.maxInFlight, 1, 'one request of the socket in flight at a time');
  t.ok(seen.calls <= CAP, `at most the cap run: ${seen.calls} <= ${CAP}`);
  t.ok(r.closed, 'the socket is closed');
});

t.test('a few pipelined requests (under the cap): answered in order, one at a time (ws); refused whole (uWebSockets.js)', async (t) => {
  const { h, seen } = await slowRoutes(t);
  checkTransport(t, h.server.transport);
  const s = net.connect(h.port, '127.0.0.1');
  t.teardown(() => s.destroy());
  let text = '';
  s.on('data', (d: Buffer) => (text += d.toString('latin1')));
  s.on('error', () => {});
  await new Promise((r) => s.once('connect', r));
  s.write([1, 2, 3, 4].map((n) => GET(`/slow?n=${n}`)).join(''));
  const closed = new Promise<boolean>((resolve) => s.once('close', () => resolve(true)));
  if (h.server.transport === 'ws') {
    const end = Date.now() + 5000;
    while ((text.match(/slow \d/g) ?? []).length < 4 && Date.now() < end) await sleep(20);
    t.same(text.match(/slow \d/g), ['slow 1', 'slow 2', 'slow 3', 'slow 4'], 'every reply, in order');
    t.equal(seen.maxInFlight, 1, 'one in flight at a time');
  } else {
    t.ok(await Promise.race([closed, sleep(5000).then(() => false)]), 'uWebSockets.js closes a socket that pipelines behind a pending reply');
    t.ok(seen.maxInFlight <= 1, 'never more than one in flight');
  }
});

t.test('64 pipelined requests for a 1 MB reply, never read: the next reply is not built before the last one is written', async (t) => {
  const { h, seen } = await slowRoutes(t);
  checkTransport(t, h.server.transport);
  let built = -1;
  const r = await pipeline(h.port, GET('/big'), 64, 8000, false, () => (built = seen.bigCalls));
  t.comment(`FIGURES never-read /big: ${built} replies built (1 MB each) while it did not read, closed ${r.closed} after ${r.ms.toFixed(0)} ms`);
  t.ok(built >= 0 && built <= CAP + 1, `at most the cap built while it did not read: ${built} <= ${CAP + 1}`);
  t.ok(r.closed, 'the socket is closed');
});

t.test('a request for a 1 MB reply every 30 ms, never read: replies are built only as the socket takes them', async (t) => {
  const { h, seen } = await slowRoutes(t);
  checkTransport(t, h.server.transport);
  const s = net.connect(h.port, '127.0.0.1');
  t.teardown(() => s.destroy());
  s.on('error', () => {});
  let wasClosed = false;
  s.once('close', () => (wasClosed = true));
  await new Promise((r) => s.once('connect', r));
  let sent = 0;
  for (; sent < 24 && !s.destroyed; sent++) {
    s.write(GET('/big'));
    await sleep(30);
  }
  await sleep(300);
  const built = seen.bigCalls;
  s.resume();
  for (let i = 0; i < 50 && !wasClosed; i++) await sleep(100);
  // What the kernel's socket buffers take (a few MB on loopback) is written; past that the
  // reply waits, and the requests behind it queue up to the cap or close the socket.
  t.comment(`FIGURES slow reader: ${sent} requests sent, ${built} replies of 1 MB built while it did not read, closed ${wasClosed}`);
  t.ok(built <= 8, `replies built while it did not read: ${built} <= 8 (the kernel's buffers hold a few)`);
});

t.test('a 4 MB reply to a client that reads late arrives whole (written as the socket takes it)', async (t) => {
  const body = Buffer.alloc(4 * 1024 * 1024);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 10)) & 255;
  const h = await startServer({ handlers: {}, http: (r) => r.get('/file', () => ({ body, headers: { 'content-type': 'application/octet-stream' } })) });
  t.teardown(() => h.close());
  checkTransport(t, h.server.transport);
  const s = net.connect(h.port, '127.0.0.1');
  t.teardown(() => s.destroy());
  s.on('error', () => {});
  await new Promise((r) => s.once('connect', r));
  s.write(GET('/file'));
  await sleep(300); // the kernel's buffers fill; the rest waits in the server
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  const end = Date.now() + 10_000;
  const received = () => Buffer.concat(chunks);
  const whole = () => {
    const all = received();
    const head = all.indexOf('\r\n\r\n');
    if (head < 0) return undefined;
    const text = all.subarray(0, head).toString('latin1');
    const chunked = /transfer-encoding: chunked/i.test(text);
    let rest = all.subarray(head + 4);
    if (!chunked) return rest.length >= body.length ? rest : undefined;
    // node:http sends it chunked: undo that.
    const parts: Buffer[] = [];
    for (;;) {
      const eol = rest.indexOf('\r\n');
      if (eol < 0) return undefined;
      const size = parseInt(rest.subarray(0, eol).toString('latin1'), 16);
      if (size === 0) return Buffer.concat(parts);
      if (rest.length < eol + 2 + size + 2) return undefined;
      parts.push(rest.subarray(eol + 2, eol + 2 + size));
      rest = rest.subarray(eol + 2 + size + 2);
    }
  };
  let got: Buffer | undefined;
  while (!(got = whole()) && Date.now() < end) await sleep(20);
  const sha = (b: Buffer) => createHash('sha1').update(b).digest('hex');
  t.equal(got?.length, body.length, 'every byte');
  t.equal(got && sha(got), sha(body), 'in order');
});
