// The live monitor page in real Chromium: after a known number of calls both ways it
// shows those counts, the players, rooms and errors, the same numbers /metrics gives, and
// it keeps updating without a reload. Saves docs/monitor.png with VOLLEY_UPDATE_DOCS=1.

import t from 'tap';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { RpcError } from '../protocol/index.ts';
import type { ServerContext } from '../server/index.ts';
import { launchBrowser, openPage, skipReason } from './browser/chromium.ts';
import { sleep, startServer, until, WebSocket } from './helpers.ts';

// The docs' screenshot is rewritten only when asked (VOLLEY_UPDATE_DOCS=1): a test run
// must not change tracked files.
const SHOT = process.env.VOLLEY_UPDATE_DOCS === '1' ? fileURLToPath(new URL('../docs/monitor.png', import.meta.url)) : join(tmpdir(), `volley-monitor-${process.pid}.png`);

/** observe.routesToken: the page takes it from its URL's fragment and sends it for the JSON. */
const TOKEN = 'metrics-monitor-test-token';

t.test('monitor page shows the numbers after known traffic', { skip: skipReason(), timeout: 60_000 }, async (t) => {
  const registry = new Registry();
  const h = await startServer({
    handlers: {
      move: (_ctx: ServerContext, n: number) => n,
      think: () => sleep(12).then(() => 'ok'),
      claim: () => {
        throw new RpcError('INVALID_PARAMS', 'not yours');
      },
      joinTable: (ctx: ServerContext, table: string) => ctx.server.join(ctx.uid, table),
    },
    resumeWindowMs: 60_000,
    observe: { registry, routes: true, routesToken: TOKEN },
  });
  t.teardown(() => h.close());
  const players = await Promise.all(['ann', 'bob', 'cyd'].map((uid) => h.client(uid, { handlers: { chooseMove: () => 'rock', slowMove: () => sleep(25).then(() => 'paper') } })));
  const [ann, bob] = players as [NonNullable<(typeof players)[0]>, NonNullable<(typeof players)[0]>];
  for (let i = 0; i < 7; i++) await ann.call('move', [i] as never);
  for (let i = 0; i < 3; i++) await bob.call('think', [] as never);
  for (let i = 0; i < 2; i++) await bob.call('claim', [] as never).catch(() => {});
  await ann.call('joinTable', ['table-1'] as never);
  await bob.call('joinTable', ['table-1'] as never);
  await bob.call('joinTable', ['table-2'] as never);
  for (let i = 0; i < 4; i++) await h.server.call('ann', 'chooseMove' as never, [] as never);
  await h.server.call('bob', 'slowMove' as never, [] as never);
  await h.server.call('cyd', 'noSuchHandler' as never, [] as never).catch(() => {});
  // A parked session: a raw socket dropped without a close frame.
  const raw = new WebSocket(`${h.url}?token=u:dan`);
  await new Promise((r) => raw.once('message', r));
  raw.terminate();
  await until(() => !h.server.isOnline('dan'), 2000, 'dan parked');

  const context = await launchBrowser(t);
  const { page, problems } = await openPage(context, `http://127.0.0.1:${h.port}/monitor#token=${TOKEN}`);
  await page.setViewportSize({ width: 1280, height: 800 });
  const text = (sel: string) => page.locator(sel).first().textContent();
  await page.waitForFunction(() => document.querySelector('[data-k="online"]')?.textContent === '3');
  t.equal(await text('[data-k="online"]'), '3', 'players online');
  t.equal(await text('[data-k="parked"]'), '1', 'parked sessions');
  t.equal(await text('[data-k="rooms"]'), '2');
  t.equal(await text('[data-k="members"]'), '3');
  const cell = (dir: string, method: string, c: string) => text(`table[data-dir="${dir}"] tr[data-method="${method}"] td[data-c="${c}"]`);
  t.equal(await cell('served', 'move', 'total'), '7');
  t.equal(await cell('served', 'move', 'errors'), '0');
  t.equal(await cell('served', 'think', 'total'), '3');
  t.equal(await cell('served', 'claim', 'errors'), '2');
  t.equal(await cell('made', 'chooseMove', 'total'), '4');
  t.equal(await cell('made', 'noSuchHandler', 'errors'), '1');
  t.match(await text('[data-code="INVALID_PARAMS"]'), /INVALID_PARAMS/);
  t.match(await text('[data-code="METHOD_NOT_FOUND"]'), /METHOD_NOT_FOUND/);
  t.match(await text('#recent'), /claim/);

  // Same numbers as /metrics.
  const metrics = await registry.metrics();
  t.match(metrics, /rpc_server_call_duration_seconds_count\{[^}]*rpc_method="move",rpc_response_status_code="OK"\} 7/);
  t.match(metrics, /rpc_client_call_duration_seconds_count\{[^}]*rpc_method="chooseMove",rpc_response_status_code="OK"\} 4/);

  // Live: more calls show up without a reload.
  for (let i = 0; i < 5; i++) await ann.call('move', [i] as never);
  await page.waitForFunction(() => document.querySelector('table[data-dir="served"] tr[data-method="move"] td[data-c="total"]')?.textContent === '12');
  t.pass('the page updated to 12 move calls by itself');
  // Quantiles cover the last 10 s: think sleeps 12 ms, so its p50 lies in the 10–25 ms bucket.
  for (let i = 0; i < 3; i++) await bob.call('think', [] as never);
  await page.waitForFunction(() => document.querySelector('table[data-dir="served"] tr[data-method="think"] td[data-c="total"]')?.textContent === '6');
  t.match(await cell('served', 'think', 'p50'), /^1\d\.\d ms$|^2[0-5]\.\d ms$/, 'think p50 in ms');

  // A few seconds of steady play so the sparkline and the rates have something to show.
  const stop = Date.now() + 6000;
  let n = 0;
  while (Date.now() < stop) {
    await Promise.all([ann.call('move', [n] as never), bob.call('move', [n] as never), h.server.call('ann', 'chooseMove' as never, [] as never)]);
    if (++n % 9 === 0) await Promise.all([bob.call('think', [] as never), h.server.call('bob', 'slowMove' as never, [] as never)]);
    if (n % 40 === 0) await bob.call('claim', [] as never).catch(() => {});
    await sleep(4);
  }
  await sleep(1200);
  t.not(await text('[data-k="callsIn"]'), '0', 'calls/s served shown');
  await page.screenshot({ path: SHOT });
  if (process.env.VOLLEY_UPDATE_DOCS !== '1') t.teardown(() => rmSync(SHOT, { force: true }));
  t.same(problems, [], 'the page ran without errors');
});
