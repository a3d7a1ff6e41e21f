// Issue 20 #2: sockets that never finish a request. On the ws transport (node:http) TCP
// sockets that sent nothing or half a request line were kept 60–90 s (Node 20.20's
// headersTimeout of 60 s, checked every 30 s; the issue saw them kept for good), idle TLS
// sockets 120 s (the TLS handshake timeout); a few thousand of them hold every descriptor
// the server has. uWebSockets.js closes them within ~10–12 s. Both transports must close
// them within 20 s with the defaults, and the ws transport within its `httpLimits`.
//
// Every socket here reads what it is sent, or it would never see the server's FIN.

import t, { type Test } from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createServer } from '../server/index.ts';
import { startServer, sleep } from './helpers.ts';

/** The bound every idle socket must be closed within, with the defaults (10 s timeouts). */
const BOUND_MS = 20_000;

/** The transport really running, checked against VOLLEY_TRANSPORT when that forces one. */
function checkTransport(tt: Test, name: string): void {
  const forced = process.env.VOLLEY_TRANSPORT;
  tt.comment(`transport: ${name}`);
  if (forced === 'uws' || forced === 'ws') tt.equal(name, forced, `the server runs on ${forced}, as VOLLEY_TRANSPORT asks`);
}

interface Idle {
  kind: string;
  closedAt: number | undefined;
  socket: net.Socket;
}

/** Open a socket, run `start` once connected, record when it closes; destroyed at teardown. */
function track(tt: Test, t0: number, kind: string, socket: net.Socket, start: (s: net.Socket) => void, connectEvent = 'connect'): Idle {
  const idle: Idle = { kind, closedAt: undefined, socket };
  socket.on('error', () => {});
  socket.resume();
  socket.once(connectEvent, () => start(socket));
  socket.once('close', () => (idle.closedAt = performance.now() - t0));
  tt.teardown(() => socket.destroy());
  return idle;
}

/** Wait until every socket closed or `ms` passed; report per kind. */
async function waitClosed(tt: Test, all: Idle[], ms: number, t0: number): Promise<boolean> {
  while (all.some((s) => s.closedAt === undefined) && performance.now() - t0 < ms) await sleep(100);
  const kinds = [...new Set(all.map((s) => s.kind))];
  for (const kind of kinds) {
    const of = all.filter((s) => s.kind === kind);
    const closed = of.filter((s) => s.closedAt !== undefined).map((s) => s.closedAt!);
    tt.comment(
      `FIGURES ${kind}: ${closed.length} of ${of.length} closed` +
        (closed.length ? `, between ${(Math.min(...closed) / 1000).toFixed(1)} and ${(Math.max(...closed) / 1000).toFixed(1)} s` : ''),
    );
  }
  return all.every((s) => s.closedAt !== undefined);
}

/** Bytes of a request that never ends, one every 500 ms: the idle timer never fires. */
function trickle(s: net.Socket): void {
  const head = `GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(200)}`;
  let i = 0;
  const timer = setInterval(() => {
    if (s.destroyed || i >= head.length) return clearInterval(timer);
    s.write(head[i++]!);
  }, 500);
  s.once('close', () => clearInterval(timer));
}

t.test('500 idle TCP sockets are closed within 20 s with the defaults', async (t) => {
  const h = await startServer({ handlers: {}, http: (r) => r.get('/ok', () => ({ body: 'ok' })) });
  t.teardown(() => h.close());
  checkTransport(t, h.server.transport);
  const t0 = performance.now();
  const all: Idle[] = [];
  const open = (kind: string, start: (s: net.Socket) => void) => all.push(track(t, t0, kind, net.connect(h.port, '127.0.0.1'), start));
  for (let i = 0; i < 160; i++) open('sent nothing', () => {});
  for (let i = 0; i < 160; i++) open('half a request line', (s) => s.write('GET /ok HT'));
  for (let i = 0; i < 160; i++) open('request head without its end', (s) => s.write('GET /ok HTTP/1.1\r\nHost: x\r\n'));
  for (let i = 0; i < 10; i++) open('one byte every 500 ms', trickle);
  // A served request, then silence on the kept-alive connection.
  for (let i = 0; i < 10; i++) open('idle after a reply', (s) => s.write('GET /ok HTTP/1.1\r\nHost: x\r\n\r\n'));
  t.equal(all.length, 500, '500 sockets');
  const closed = await waitClosed(t, all, BOUND_MS, t0);
  t.ok(closed, `every idle socket closed within ${BOUND_MS / 1000} s (${all.filter((s) => s.closedAt !== undefined).length} of ${all.length})`);
  // The server still serves a well-behaved client afterwards.
  const c = await h.client('after');
  t.equal(c.state, 'open', 'a player still connects');
});

function selfSigned(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'volley-test-cert-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1',
    ], { stdio: 'ignore', timeout: 20_000 });
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The first bytes a TLS client sends (its ClientHello), caught by a plain TCP server. */
async function clientHello(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const catcher = net.createServer((s) =>
      s.once('data', (d) => {
        resolve(d);
        s.destroy();
        catcher.close();
      }),
    );
    catcher.listen(0, '127.0.0.1', () => {
      const c = tls.connect({ port: (catcher.address() as net.AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false });
      c.on('error', () => {});
      setTimeout(() => reject(new Error('no ClientHello within 5 s')), 5000).unref();
    });
  });
}

t.test('300 idle TLS sockets (before, during and after the handshake) are closed within 20 s with the defaults', async (t) => {
  const { key, cert } = selfSigned();
  const hello = await clientHello();
  const server = createServer({ tls: { key, cert }, authenticate: () => 'x', handlers: {}, onError: () => {} });
  const port = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close({ graceMs: 100 }));
  checkTransport(t, server.transport);
  const t0 = performance.now();
  const all: Idle[] = [];
  const raw = (kind: string, start: (s: net.Socket) => void) => all.push(track(t, t0, kind, net.connect(port, '127.0.0.1'), start));
  const secure = (kind: string, start: (s: net.Socket) => void) =>
    all.push(track(t, t0, kind, tls.connect({ port, host: '127.0.0.1', ca: cert }), start, 'secureConnect'));
  for (let i = 0; i < 100; i++) raw('TCP, no handshake', () => {});
  for (let i = 0; i < 100; i++) raw('half a ClientHello', (s) => s.write(hello.subarray(0, 40)));
  for (let i = 0; i < 50; i++) secure('handshake done, sent nothing', () => {});
  for (let i = 0; i < 50; i++) secure('handshake done, half a request line', (s) => s.write('GET / HT'));
  const closed = await waitClosed(t, all, BOUND_MS, t0);
  t.ok(closed, `every idle TLS socket closed within ${BOUND_MS / 1000} s (${all.filter((s) => s.closedAt !== undefined).length} of ${all.length})`);
});

t.test('ws transport: httpLimits sets the timeouts (idle 1 s, request head 2 s)', async (t) => {
  const h = await startServer({
    transport: 'ws',
    handlers: { add: (_ctx, a: number, b: number) => a + b },
    httpLimits: { idleTimeoutMs: 1000, headersTimeoutMs: 2000 },
  });
  t.teardown(() => h.close());
  // A player connected before: its socket left HTTP at the upgrade, these limits are not its.
  const player = await h.client('player', { reconnect: false });
  const t0 = performance.now();
  const all: Idle[] = [];
  const open = (kind: string, start: (s: net.Socket) => void) => all.push(track(t, t0, kind, net.connect(h.port, '127.0.0.1'), start));
  for (let i = 0; i < 100; i++) open('sent nothing', () => {});
  for (let i = 0; i < 100; i++) open('half a request line', (s) => s.write('GET / HT'));
  for (let i = 0; i < 5; i++) open('one byte every 500 ms', trickle);
  const closed = await waitClosed(t, all, 6000, t0);
  t.ok(closed, 'every socket closed within 6 s');
  const silent = all.filter((s) => s.kind !== 'one byte every 500 ms').map((s) => s.closedAt ?? Infinity);
  const slow = all.filter((s) => s.kind === 'one byte every 500 ms').map((s) => s.closedAt ?? Infinity);
  // Not earlier than asked for: the option is what closes them.
  t.ok(Math.min(...silent) >= 900, `silent sockets closed at ${(Math.min(...silent) / 1000).toFixed(1)} s or later (idle 1 s)`);
  t.ok(Math.min(...slow) >= 1900, `trickling sockets outlive the idle timeout, closed at ${(Math.min(...slow) / 1000).toFixed(1)} s or later (head 2 s)`);
  t.equal(player.state, 'open', 'the WebSocket opened before is still open');
  t.throws(() => createServer({ authenticate: () => 'x', handlers: {}, httpLimits: { maxPipelinedRequests: 0 } }), RangeError, 'a cap below 1 is refused');
  t.equal(await player.call('add', [2, 3]), 5, 'and answers');
});
