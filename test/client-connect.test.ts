// Connecting: a refused login (REFUSED, with the HTTP status or the 44xx close code) is
// told apart from a server that can't be reached (DISCONNECTED), and no attempt waits
// forever (connectTimeoutMs).

import t from 'tap';
import net from 'node:net';
import WebSocket from 'ws';
import { connect, VolleyClient, type WebSocketConstructor } from '../client/index.ts';
import { freePort, sleep, startServer, until } from './helpers.ts';

/** The ws package's WebSocket without the `volley` offer: the server answers with HTTP statuses. */
class PlainWS extends WebSocket {
  constructor(url: string, protocols?: string | string[]) {
    const rest = (Array.isArray(protocols) ? protocols : protocols ? [protocols] : []).filter((p) => p !== 'volley');
    super(url, rest);
  }
}

t.test('refused logins: REFUSED with the close code (volley offered) or the HTTP status', async (t) => {
  const h = await startServer({
    handlers: { ok: () => 'ok' },
    duplicateLogin: 'reject',
  });
  t.teardown(() => h.close());
  const started = Date.now();
  await t.rejects(connect(h.url, { token: 'nope', WebSocket }), { code: 'REFUSED', data: { closeCode: 4401 } }, '401 → close 4401');
  await t.rejects(connect(h.url, { token: 'nope', WebSocket: PlainWS }), { code: 'REFUSED', data: { status: 401 } }, 'HTTP 401 seen by ws');
  const first = await h.client('bob');
  await t.rejects(connect(h.url, { token: 'u:bob', WebSocket }), { code: 'REFUSED', data: { closeCode: 4409 } }, '409 → close 4409');
  await t.rejects(connect(h.url, { token: 'u:bob', WebSocket: PlainWS }), { code: 'REFUSED', data: { status: 409 } }, 'HTTP 409');
  t.equal(await first.server.ok(), 'ok', 'the first login is untouched');
  t.ok(Date.now() - started < 3000, 'each refusal is immediate');
});

t.test('shutting down: REFUSED 4503 for a new login; a resuming client keeps trying', async (t) => {
  let finish!: () => void;
  const h = await startServer({ handlers: { slow: () => new Promise<void>((r) => (finish = r)) } });
  const c = await h.client('alice', { reconnect: false });
  const running = c.server.slow();
  await until(() => finish !== undefined, 2000, 'slow() running');
  const closing = h.server.close({ graceMs: 5000 });
  await sleep(20);
  await t.rejects(connect(h.url, { token: 'u:bob', WebSocket }), { code: 'REFUSED', data: { closeCode: 4503 } });
  await t.rejects(connect(h.url, { token: 'u:bob', WebSocket: PlainWS }), { code: 'REFUSED', data: { status: 503 } });
  finish();
  await running;
  await closing;
});

t.test('unreachable: DISCONNECTED, not REFUSED', async (t) => {
  const port = await freePort();
  const err = await connect(`ws://127.0.0.1:${port}/`, { token: 'x', WebSocket }).catch((e) => e);
  t.equal(err.code, 'DISCONNECTED', `nothing listening: ${err.message}`);
  t.match(err.message, /close 1006: .*ECONNREFUSED/, "a bare 1006 carries the socket's own error");
});

t.test('connectTimeoutMs: a server that accepts TCP and never answers fails the connect in time', async (t) => {
  // What a silent load balancer or uWebSockets.js' JS shim looks like: no handshake, ever.
  const sockets: net.Socket[] = [];
  const silent = net.createServer((s) => void sockets.push(s)).listen(0, '127.0.0.1');
  await new Promise((r) => silent.once('listening', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const url = `ws://127.0.0.1:${(silent.address() as net.AddressInfo).port}/`;
  const started = Date.now();
  const err = await connect(url, { token: 'x', WebSocket, connectTimeoutMs: 300 }).catch((e) => e);
  const took = Date.now() - started;
  t.equal(err.code, 'DISCONNECTED');
  t.match(err.message, /no session within 300 ms/);
  t.ok(took >= 290 && took < 2000, `rejected after ${took} ms`);
  t.equal(VolleyClient.length >= 1, true);
});

t.test('connectTimeoutMs on a reconnect: the stuck attempt is abandoned and the next one resumes', async (t) => {
  const h = await startServer({ handlers: { ok: () => 'ok' } });
  t.teardown(() => h.close());
  // The first dial goes to the real server; the second hangs (a TCP server that never answers), then the real one again.
  let dials = 0;
  const silent = net.createServer(() => {}).listen(0, '127.0.0.1');
  await new Promise((r) => silent.once('listening', r));
  t.teardown(() => silent.close());
  const silentUrl = `ws://127.0.0.1:${(silent.address() as net.AddressInfo).port}/`;
  const Flaky = class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(++dials === 2 ? silentUrl + new URL(url).search : url, protocols);
    }
  } as unknown as WebSocketConstructor;
  const c = await connect(h.url, { token: 'u:zoe', WebSocket: Flaky, connectTimeoutMs: 300, reconnect: { initialDelayMs: 10, maxDelayMs: 20 } });
  t.teardown(() => c.close());
  c.drop();
  await until(() => dials >= 3 && c.state === 'open', 5000, 'resumed on the third dial');
  t.equal(await c.server.ok(), 'ok');
});
