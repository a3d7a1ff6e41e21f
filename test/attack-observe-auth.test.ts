// Issue 20 #1 (protection): /metrics and /monitor on the players' port could be read (and
// made to render) by anyone who can open a WebSocket to the game. On the players' port they
// now need observe.routesToken, sent as `Authorization: Bearer <token>` (compared in
// constant time); a server asked to put them there without one refuses to start. /health
// stays open (load balancers), and so does the monitor's page itself (static, no data: its
// numbers come from /monitor.json). On observe.routesPort the token is asked for if set.

import t from 'tap';
import { freePort, startServer } from './helpers.ts';
import { AUTH, HttpConn, TOKEN, countedRegistry } from './attack/observe.ts';
import type { ObserveOptions } from '../server/observe/index.ts';

const handlers = { add: (_c: unknown, a: number, b: number) => a + b };

/** Status of one GET on a fresh connection; 'no answer' when the server closed it instead. */
async function status(port: number, path: string, headers: string[] = []): Promise<number | 'no answer'> {
  const c = await HttpConn.open(port);
  try {
    return (await c.get(path, headers, 5_000))?.status ?? 'no answer';
  } finally {
    c.destroy();
  }
}

t.test('on the players\' port: the token or 401', async (t) => {
  const { registry, scrapes } = countedRegistry(false);
  const h = await startServer({ handlers, observe: { registry, routes: true, routesToken: TOKEN } as ObserveOptions });
  t.teardown(() => h.close());
  const wrong = [
    [],
    [`Authorization: Bearer ${TOKEN.replace(/.$/, (c) => (c === '0' ? '1' : '0'))}`], // same length, last character differs
    [`Authorization: Bearer ${TOKEN.slice(0, -1)}`],
    [`Authorization: Bearer ${TOKEN}x`],
    [`Authorization: Bearer`],
    [`Authorization: ${TOKEN}`],
    [`Authorization: Basic ${Buffer.from(`user:${TOKEN}`).toString('base64')}`],
    [`X-Token: ${TOKEN}`],
  ];
  for (const path of ['/metrics', '/monitor.json'])
    for (const headers of wrong) t.equal(await status(h.port, path, headers), 401, `${path} with ${JSON.stringify(headers)}: 401`);
  t.equal(scrapes(), 0, 'nothing rendered for a refused request');
  const c = await HttpConn.open(h.port);
  t.teardown(() => c.destroy());
  const refused = await c.get('/metrics', []);
  t.match(refused?.headers['www-authenticate'] ?? '', /^Bearer/, 'a 401 says which scheme');
  t.equal(await status(h.port, '/metrics', AUTH), 200, '/metrics with the token');
  t.equal(await status(h.port, '/metrics', [`authorization: bearer ${TOKEN}`]), 200, 'the scheme is case-insensitive');
  t.equal(await status(h.port, '/monitor.json', AUTH), 200, '/monitor.json with the token');
  t.equal(await status(h.port, '/health'), 200, '/health needs no token');
  const page = await c.get('/monitor', []);
  t.equal(page?.status, 200, 'the monitor page needs no token: it is static');
  t.match(page?.headers['content-type'] ?? '', /text\/html/);
  t.notMatch(page?.body.toString() ?? '', /"online":/, 'and holds no numbers');
});

t.test('the players\' port without a token: refused at start, unless only /health is asked for', async (t) => {
  const { registry } = countedRegistry(false);
  for (const observe of [{ registry, routes: true }, { routes: true }, { registry, routes: { metrics: '/metrics' } }, { routes: { monitor: '/monitor' } }] as ObserveOptions[]) {
    const started = startServer({ handlers, observe });
    started.then((h) => h.close(), () => {});
    await t.rejects(started, /routesToken/, `${JSON.stringify({ ...observe, registry: observe.registry ? 'Registry' : undefined })} refused`);
  }
  const h = await startServer({ handlers, observe: { registry, routes: { health: '/healthz' } } });
  t.teardown(() => h.close());
  t.equal(await status(h.port, '/healthz'), 200, '/health alone needs no token');
  t.not(await status(h.port, '/metrics', AUTH), 200, 'and /metrics is not there');
});

t.test('routes on a port of their own', async (t) => {
  const { registry } = countedRegistry(false);
  const open = await freePort();
  const a = await startServer({ handlers, observe: { registry, routes: true, routesPort: open } });
  t.teardown(() => a.close());
  t.equal(await status(open, '/metrics'), 200, 'no token asked for: served on the routes port as is');
  t.not(await status(a.port, '/metrics', AUTH), 200, 'and not on the players\' port');
  t.not(await status(a.port, '/monitor.json', AUTH), 200);

  const guarded = await freePort();
  const b = await startServer({ handlers, observe: { registry: countedRegistry(false).registry, routes: true, routesPort: guarded, routesToken: TOKEN } as ObserveOptions });
  t.teardown(() => b.close());
  t.equal(await status(guarded, '/metrics'), 401, 'a token given: asked for there too');
  t.equal(await status(guarded, '/metrics', AUTH), 200);
  t.equal(await status(guarded, '/monitor.json'), 401);
  t.equal(await status(guarded, '/health'), 200);
});

t.test('a token too short to be one is refused', async (t) => {
  const started = startServer({ handlers, observe: { routes: true, routesToken: 'secret' } as ObserveOptions });
  started.then((h) => h.close(), () => {});
  await t.rejects(started, /routesToken/);
});
