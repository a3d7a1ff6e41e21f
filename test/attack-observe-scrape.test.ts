// Issue 20 #1 (the routes' side): every GET /metrics was a full prom-client scrape and
// every GET /monitor.json a fresh view of the call tables, rendered on the event loop.
// 2,000 pipelined /metrics in one 68 KB write were 2,000 scrapes back to back (the loop
// blocked 1.3–6.3 s on uWebSockets.js, up to 19.6 s on ws, 1.27 s even on routesPort); 200
// viewers polling the monitor back to back stalled it 245 ms. One rendering must serve
// every request within routesCacheMs (and every request while it runs), while a
// well-behaved player keeps being served.
//
// The transports may also cap pipelined requests (and close the connection past it), so
// the pipelined burst need not be answered in full; the back-to-back pollers are answered
// whatever that cap, and are what shows the cache at work.
//
// In one process: the server, the player and the attacker share the event loop, so the
// player's latency and the loop's longest stall include everything the server did.

import t from 'tap';
import { freePort, startServer } from './helpers.ts';
import { GoodClient, figures, type AttackServer } from './attack/harness.ts';
import { HttpConn, TOKEN, answering, askHandlers, countedRegistry, growLabels, loopStall, pollBackToBack, request } from './attack/observe.ts';
import type { ObserveOptions } from '../server/observe/index.ts';

// Bounds, stated: far above what one rendering a second costs on a loaded 2-core machine,
// far below what the old code reaches (seconds).
const STALL_BOUND_MS = 500;
// The pollers' own 200 connections share this process's loop, and at a load average of 13
// it was descheduled up to ~460 ms with every reply cached; what tells the old code from the
// new there is the count of renderings (hundreds vs 2–3). The bound still catches a return
// to seconds.
// The pollers run in this process, so its loop stall counts their own parsing of thousands of
// replies (1 s at a load average of 8): reported as a figure, not asserted. The scrape count
// and the player's p99 are what the server controls.
const P99_BOUND_MS = 250;
const MAX_BOUND_MS = 1000;

const PIPELINED = 2_000;
const POLLERS = 200;
const POLL_MS = 2_000;
/** Renderings in POLL_MS at one per routesCacheMs (1 s): 2–3, +1 at an edge. */
const RENDERINGS_BOUND = 4;

type T = { teardown(fn: () => unknown): void; comment(...m: unknown[]): void };

/** A server with every route behind the token: on the players' port, or on `routesPort`. */
async function observed(t: T, registry: ObserveOptions['registry'], routesPort?: number) {
  const h = await startServer({ handlers: askHandlers, observe: { registry, routes: true, routesToken: TOKEN, routesPort } as ObserveOptions });
  t.teardown(() => h.close());
  // GoodClient wants an AttackServer only for its client(): a client of this server.
  const good = await GoodClient.start(t, { client: (_t: unknown, uid: string) => h.client(uid) } as unknown as AttackServer);
  return { h, good, routesPort: routesPort ?? h.port };
}

for (const where of ["the players' port", 'routesPort']) {
  t.test(`${PIPELINED} pipelined GET /metrics in one write, on ${where}`, async (t) => {
    const { registry, scrapes } = countedRegistry();
    const { good, routesPort } = await observed(t, registry, where === 'routesPort' ? await freePort() : undefined);
    const conn = await HttpConn.open(routesPort, false);
    t.teardown(() => conn.destroy());
    const loop = loopStall();
    const burst = request('/metrics').repeat(PIPELINED);
    conn.write(burst);
    // All answered, the socket closed (a pipelining cap), or 60 s (the old code on ws needs ~20).
    await conn.wait(PIPELINED, 60_000);
    const stallMs = loop.stop();
    const lat = await good.stop();
    figures(t, `pipelined /metrics on ${where}`, {
      good: lat,
      extra: `${(burst.length / 1024).toFixed(0)} KB sent, ${conn.count} answered (${[...conn.statuses]}), ${(conn.bytes / 2 ** 20).toFixed(1)} MiB back, ${scrapes()} scrapes, loop max ${stallMs.toFixed(0)} ms`,
    });
    t.notOk(conn.statuses.has(401) || conn.statuses.has(500), `no refusal or failure of the route (${[...conn.statuses]})`);
    t.ok(scrapes() <= 3, `${scrapes()} registry scrapes for ${conn.count} requests answered (one per routesCacheMs)`);
    t.ok(stallMs < STALL_BOUND_MS, `loop stalled at most ${stallMs.toFixed(0)} ms (< ${STALL_BOUND_MS})`);
    t.ok(lat.p99Ms < P99_BOUND_MS, `player p99 ${lat.p99Ms.toFixed(0)} ms (< ${P99_BOUND_MS})`);
    t.ok(lat.maxMs < MAX_BOUND_MS, `player max ${lat.maxMs.toFixed(0)} ms (< ${MAX_BOUND_MS})`);
    t.equal(lat.failures, 0, 'no call of the player failed');

    // Concurrent requests share the scrape in progress: 20 connections asking at once after
    // the cached one expired cost one more scrape, not 20, and get the same bytes.
    await new Promise((r) => setTimeout(r, 1100));
    const before = scrapes();
    const conns = await Promise.all(Array.from({ length: 20 }, () => HttpConn.open(routesPort)));
    t.teardown(() => conns.forEach((c) => c.destroy()));
    const replies = await Promise.all(conns.map((c) => c.get('/metrics')));
    t.same(new Set(replies.map((r) => r?.status)), new Set([200]));
    t.equal(new Set(replies.map((r) => r?.body.toString())).size, 1, 'one body for all of them');
    t.equal(scrapes() - before, 1, 'one scrape for 20 concurrent requests');
  });
}

t.test(`${POLLERS} connections polling /metrics back to back`, async (t) => {
  const { registry, scrapes } = countedRegistry();
  const { h, good } = await observed(t, registry);
  const loop = loopStall();
  const { answered, statuses } = await pollBackToBack(h.port, '/metrics', POLLERS, POLL_MS);
  const stallMs = loop.stop();
  const lat = await good.stop();
  figures(t, '/metrics pollers', { good: lat, extra: `${answered} answers (${[...statuses]}) in ${POLL_MS} ms, ${scrapes()} scrapes, loop max ${stallMs.toFixed(0)} ms` });
  t.ok(answered >= POLLERS, `${answered} answers`);
  t.same([...statuses], [200]);
  t.ok(scrapes() <= RENDERINGS_BOUND, `${scrapes()} scrapes served ${answered} requests`);
  t.ok(lat.p99Ms < P99_BOUND_MS, `player p99 ${lat.p99Ms.toFixed(0)} ms (< ${P99_BOUND_MS})`);
  t.equal(lat.failures, 0);
});

t.test(`${POLLERS} viewers polling /monitor.json back to back`, async (t) => {
  const { registry } = countedRegistry(false);
  const { h, good } = await observed(t, registry);
  // The tables the view walks, as full as a client can make them (64 learned method names).
  const grower = await h.client('grower', { handlers: answering(80) });
  await growLabels(grower, 80);
  const renders = new Set<number>();
  const loop = loopStall();
  const { answered, statuses } = await pollBackToBack(h.port, '/monitor.json', POLLERS, POLL_MS, (r) => {
    // The view's first field is its time of rendering: {"at":<ms>,… (read without parsing it all).
    if (r.status === 200) renders.add(Number(/^\{"at":(\d+)/.exec(r.body.subarray(0, 32).toString())?.[1]));
  });
  const stallMs = loop.stop();
  const lat = await good.stop();
  figures(t, 'monitor viewers', { good: lat, extra: `${answered} answers (${[...statuses]}) in ${POLL_MS} ms, ${renders.size} distinct renderings, loop max ${stallMs.toFixed(0)} ms` });
  t.ok(answered >= POLLERS, `${answered} answers`);
  t.same([...statuses], [200]);
  t.ok(renders.size <= RENDERINGS_BOUND, `${renders.size} renderings served ${answered} requests`);
  t.ok(lat.p99Ms < P99_BOUND_MS, `player p99 ${lat.p99Ms.toFixed(0)} ms (< ${P99_BOUND_MS})`);
  t.equal(lat.failures, 0);
});
