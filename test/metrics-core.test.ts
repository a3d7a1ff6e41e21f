// Metrics through a real prom-client Registry, read back from the /metrics route of a
// real server after known traffic: both call directions, codes, label bounds, gauges,
// session and refusal counters, and the health route.

import t from 'tap';
import { Registry } from 'prom-client';
import { pack } from 'msgpackr';
import { RpcError, decodeFrame } from '../protocol/index.ts';
import { freePort, rejectsCode, sleep, startServer, until, WebSocket } from './helpers.ts';

/** Parse Prometheus text into `name{labels}` → value (labels as written, sorted by prom-client's order). */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** Value of the first series of `name` whose labels include every `labels` pair. */
function value(m: Map<string, number>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const [k, v] of m) {
    const brace = k.indexOf('{');
    const n = brace < 0 ? k : k.slice(0, brace);
    if (n !== name) continue;
    if (Object.entries(labels).every(([lk, lv]) => k.includes(`${lk}="${lv}"`))) return v;
  }
  return undefined;
}

/** observe.routesToken: /metrics and /monitor.json on the players' port need it. */
const TOKEN = 'metrics-core-test-token';

async function scrape(port: number, path = '/metrics'): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

t.test('calls both ways, codes, gauges and counters on /metrics', async (t) => {
  const registry = new Registry();
  const h = await startServer({
    handlers: {
      add: (_ctx: unknown, a: number, b: number) => a + b,
      slow: async () => {
        await sleep(30);
        return 1;
      },
      refuse: () => {
        throw new RpcError('NOT_YOUR_TURN', 'wait');
      },
      crash: () => {
        throw new Error('bug');
      },
      // A result nested past maxDepth (32) is refused by the server itself: INTERNAL, not OK.
      deep: () => Array.from({ length: 40 }).reduce<unknown[]>((inner) => [inner], []),
    },
    rateLimit: { ratePerSec: 0.001, burst: 40 },
    resumeWindowMs: 60_000,
    observe: { registry, routes: true, routesToken: TOKEN, routesCacheMs: 0 }, // fresh numbers at every scrape
  });
  t.teardown(() => h.close());
  const a = await h.client('alice', { handlers: { ping: () => 'pong', fail: () => { throw new RpcError('INVALID_PARAMS', 'no'); } } });
  const b = await h.client('bob', { handlers: { ping: () => 'pong' } });

  for (let i = 0; i < 5; i++) t.equal(await a.call('add', [i, 1] as never), i + 1);
  await a.call('slow', [] as never);
  await rejectsCode(a.call('refuse', [] as never), 'NOT_YOUR_TURN');
  await rejectsCode(a.call('crash', [] as never), 'INTERNAL');
  await rejectsCode(a.call('deep', [] as never), 'INTERNAL');
  // Method names a client makes up must not become labels.
  for (let i = 0; i < 20; i++) await rejectsCode(a.call(`made-up-${i}`, [] as never), 'METHOD_NOT_FOUND');
  for (let i = 0; i < 3; i++) t.equal(await h.server.call('bob', 'ping' as never, [] as never), 'pong');
  await rejectsCode(h.server.call('alice', 'fail' as never, [] as never), 'INVALID_PARAMS');
  await rejectsCode(h.server.call('nobody', 'ping' as never, [] as never), 'UNAVAILABLE');
  h.server.join('alice', 'lobby');
  h.server.join('bob', 'lobby');
  h.server.join('bob', 'table-1');

  // 401: a refused upgrade.
  await new Promise<void>((resolve) => {
    const ws = new WebSocket(`${h.url}?token=bad`);
    ws.once('unexpected-response', () => (ws.terminate(), resolve()));
    ws.once('error', () => resolve());
  });

  const { status, type, text } = await scrape(h.port);
  t.equal(status, 200);
  t.match(type, /text\/plain/);
  const m = parse(text);
  const S = 'rpc_server_call_duration_seconds';
  t.equal(value(m, `${S}_count`, { rpc_method: 'add', rpc_response_status_code: 'OK' }), 5, '5 add calls OK');
  t.equal(value(m, `${S}_count`, { rpc_method: 'slow', rpc_response_status_code: 'OK' }), 1);
  t.ok(value(m, `${S}_sum`, { rpc_method: 'slow' })! >= 0.025, 'slow took its 30 ms');
  t.equal(value(m, `${S}_bucket`, { rpc_method: 'slow', le: '0.025' }), 0, 'not under 25 ms');
  t.equal(value(m, `${S}_bucket`, { rpc_method: 'slow', le: '+Inf' }), 1);
  t.equal(value(m, `${S}_count`, { rpc_method: 'refuse', rpc_response_status_code: 'other' }), 1, 'application code → other');
  t.equal(value(m, `${S}_count`, { rpc_method: 'crash', rpc_response_status_code: 'INTERNAL' }), 1);
  t.equal(value(m, `${S}_count`, { rpc_method: 'deep', rpc_response_status_code: 'INTERNAL' }), 1, 'a refused result counts as INTERNAL');
  t.equal(value(m, `${S}_count`, { rpc_method: 'deep', rpc_response_status_code: 'OK' }), undefined);
  t.equal(value(m, `${S}_count`, { rpc_method: 'other', rpc_response_status_code: 'METHOD_NOT_FOUND' }), 20, 'made-up names → other');
  t.notOk(text.includes('made-up'), 'no made-up method name reaches the exposition');
  const C = 'rpc_client_call_duration_seconds';
  t.equal(value(m, `${C}_count`, { rpc_method: 'ping', rpc_response_status_code: 'OK' }), 3, 'server → client calls');
  t.equal(value(m, `${C}_count`, { rpc_method: 'fail', rpc_response_status_code: 'INVALID_PARAMS' }), 1);
  t.equal(value(m, `${C}_count`, { rpc_method: 'ping', rpc_response_status_code: 'UNAVAILABLE' }), 1);
  t.equal(value(m, 'volley_cluster_forwarded_call_duration_seconds_count'), undefined, 'no cluster: nothing forwarded');
  t.equal(value(m, 'volley_connections'), 2);
  t.equal(value(m, 'volley_sessions_parked'), 0);
  t.equal(value(m, 'volley_rooms'), 2);
  t.equal(value(m, 'volley_room_members'), 3);
  t.equal(value(m, 'volley_sessions_started_total'), 2);
  t.equal(value(m, 'volley_auth_refusals_total', { status: '401' }), 1);
  t.ok(value(m, 'volley_ws_messages_received_total')! >= 28);
  t.ok(value(m, 'volley_ws_received_bytes_total')! > 28 * 5);
  t.ok(value(m, 'volley_ws_messages_sent_total')! >= 28);

  // RATE_LIMITED: 29 calls reached the limiter so far (every call pays before its method is looked up, made-up ones too); burst 40.
  const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => a.call('add', [i, 0] as never)));
  const limited = results.filter((r) => r.status === 'rejected').length;
  t.equal(limited, 9, `${limited} calls rate-limited`);
  const m2 = parse((await scrape(h.port)).text);
  t.equal(value(m2, 'volley_rate_limited_answers_total'), limited);
  t.equal(value(m2, `${S}_count`, { rpc_method: 'add', rpc_response_status_code: 'RATE_LIMITED' }), limited);

  // A dropped socket parks its session; a deliberate close ends it.
  const raw = new WebSocket(`${h.url}?token=u:carol`);
  const firstMessage = new Promise<Buffer>((r) => raw.once('message', (d) => r(d as Buffer)));
  const [, , [info]] = decodeFrame(await firstMessage, 8)[0] as [number, string, [{ sid: string }]];
  raw.terminate();
  b.close();
  await until(() => !h.server.isOnline('carol') && !h.server.isConnected('bob'), 2000, 'closes seen');
  h.server.notify('carol', 'news' as never, ...([] as never[]));
  const m3 = parse((await scrape(h.port)).text);
  t.equal(value(m3, 'volley_connections'), 1);
  t.equal(value(m3, 'volley_sessions_parked'), 1, 'carol waits in the resume window');
  t.equal(value(m3, 'volley_session_ends_total', { reason: 'closed' }), 1, 'bob closed');
  t.equal(value(m3, 'volley_disconnects_total', { code: '1006' }), 1);
  t.equal(value(m3, 'volley_room_members'), 1, 'bob left his rooms with his session');
  t.equal(value(m3, 'volley_notifications_dropped_total'), 1, 'a notification to a parked session is dropped');

  // carol comes back with her session id: a resume.
  const again = new WebSocket(`${h.url}?token=u:carol&sid=${info.sid}`);
  await new Promise((r) => again.once('message', r));
  await until(() => h.server.isOnline('carol'), 2000, 'carol back');
  const m4 = parse((await scrape(h.port)).text);
  t.equal(value(m4, 'volley_session_resumes_total'), 1);
  t.equal(value(m4, 'volley_sessions_parked'), 0);
  t.equal(value(m4, 'volley_connections'), 2);
  again.close(1000);
  await until(() => !h.server.isConnected('carol'), 2000, 'carol gone');
  t.equal(value(parse((await scrape(h.port)).text), 'volley_session_ends_total', { reason: 'closed' }), 2);

  const health = await scrape(h.port, '/health');
  t.equal(health.status, 200);
  t.same(JSON.parse(health.text), { status: 'ready', listening: true });
});

t.test('refusals before any handler are counted: scan and limit refusals, held-bytes OVERLOADED', async (t) => {
  const registry = new Registry();
  const h = await startServer({
    handlers: { add: (_c: unknown, a: number, b: number) => a + b, hold: () => new Promise(() => {}) },
    rateLimit: false,
    maxHeldBytes: 64 * 1024,
    observe: { registry, routes: true, routesToken: TOKEN, routesCacheMs: 0 }, // fresh numbers at every scrape
  });
  t.teardown(() => h.close());
  const ws = new WebSocket(`${h.url}?token=u:raw`);
  t.teardown(() => ws.terminate());
  await new Promise((r) => ws.once('message', r));
  const codes = new Map<number, string>();
  ws.on('message', (d) => {
    for (const m of decodeFrame(d as Buffer, 8) as unknown[][])
      if (m[0] === 1) codes.set(m[1] as number, (m[2] as { code?: string } | null)?.code ?? 'ok');
  });
  // Past maxParams (32): refused unread, its method never known. msgpackr directly: Volley's encode refuses it.
  ws.send(pack([0, 1, 'add', new Array(40).fill(0)]));
  // Arity: too few params for add(ctx, a, b).
  ws.send(pack([0, 2, 'add', [1]]));
  // Held bytes: a call holding ~40 KB runs forever, the next ~40 KB is over the 64 KB budget.
  // (In a later turn: two 40 KB frames queued in one turn would be over the budget as queued input, 4029.)
  ws.send(pack([0, 3, 'hold', ['x'.repeat(40_000)]]));
  await until(() => codes.size >= 2, 5000, 'the first two answers');
  await sleep(50);
  ws.send(pack([0, 4, 'add', ['x'.repeat(40_000), 1]]));
  let closed = '';
  ws.on('close', (code, reason) => (closed = `${code} ${reason}`));
  await until(() => codes.size >= 3 || closed !== '', 5000, 'three answers');
  t.equal(closed, '', 'the connection stays');
  t.same([codes.get(1), codes.get(2), codes.get(4)], ['INVALID_PARAMS', 'INVALID_PARAMS', 'OVERLOADED']);
  const m = parse((await scrape(h.port)).text);
  const S = 'rpc_server_call_duration_seconds_count';
  t.equal(value(m, S, { rpc_method: 'other', rpc_response_status_code: 'INVALID_PARAMS' }), 1, 'scan refusal: method other');
  t.equal(value(m, S, { rpc_method: 'add', rpc_response_status_code: 'INVALID_PARAMS' }), 1, 'arity refusal');
  t.equal(value(m, S, { rpc_method: 'add', rpc_response_status_code: 'OVERLOADED' }), 1, 'held-bytes refusal');
  t.equal(value(m, 'volley_overloaded_answers_total'), 1);
});

t.test('observe off: no routes, no hooks', async (t) => {
  const h = await startServer({ handlers: { add: (_c: unknown, a: number, b: number) => a + b } });
  t.teardown(() => h.close());
  const c = await h.client('a');
  t.equal(await c.call('add', [1, 2] as never), 3);
  // uWebSockets.js answers no route by dropping the connection.
  for (const path of ['/metrics', '/health', '/monitor.json'])
    t.not(await scrape(h.port, path).then((r) => r.status, () => 'no answer'), 200, `${path} not served`);
});

t.test('health says 503 while shutting down', async (t) => {
  const h = await startServer({ handlers: { wait: () => sleep(300) }, observe: { routes: { health: '/healthz' } } });
  const c = await h.client('a');
  const pending = c.call('wait', [] as never).catch(() => {});
  await sleep(20);
  const closing = h.server.close({ graceMs: 2000 });
  // The listen socket is closed at once; a health check over a kept-alive connection is
  // what a load balancer would still get. Here the port stops answering: both mean "not ready".
  const res = await fetch(`http://127.0.0.1:${h.port}/healthz`).then((r) => r.status, () => 'refused');
  t.not(res, 200);
  await pending;
  await closing;
  c.close();
});

t.test('routes on a port of their own: nothing on the players\' port', async (t) => {
  const registry = new Registry();
  const routesPort = await freePort();
  const h = await startServer({ handlers: { add: (_c: unknown, a: number, b: number) => a + b }, observe: { registry, routes: true, routesPort } });
  t.teardown(() => h.close());
  const c = await h.client('a');
  t.equal(await c.call('add', [1, 2] as never), 3);
  const m = parse((await scrape(routesPort)).text);
  t.equal(value(m, 'rpc_server_call_duration_seconds_count', { rpc_method: 'add' }), 1);
  t.equal((await scrape(routesPort, '/health')).status, 200);
  t.equal((await scrape(routesPort, '/monitor')).status, 200);
  t.equal((await scrape(routesPort, '/nope')).status, 404);
  t.not(await scrape(h.port, '/metrics').then((r) => r.status, () => 'no answer'), 200, 'not on the players\' port');
  await h.close();
  t.equal(await scrape(routesPort, '/health').then((r) => r.status, () => 'closed'), 'closed', 'closed with the server');
});
