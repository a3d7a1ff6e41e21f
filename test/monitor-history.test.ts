// The monitor page opened on a server that has been busy: its "last 2 minutes" chart shows
// the seconds before the page was opened (the server keeps them, /monitor.json's
// `history`), and its latest errors name the player each was with.

import t from 'tap';
import { RpcError } from '../protocol/index.ts';
import type { ServerContext } from '../server/index.ts';
import { launchBrowser, openPage, skipReason } from './browser/chromium.ts';
import { sleep, startServer } from './helpers.ts';

const TOKEN = 'monitor-history-test-token';

t.test('monitor: history from before the page opened, and the uid of each recent error', { timeout: 60_000 }, async (t) => {
  const h = await startServer({
    handlers: {
      move: (_ctx: ServerContext, n: number) => n,
      claim: () => {
        throw new RpcError('INVALID_PARAMS', 'not yours');
      },
    },
    observe: { routes: true, routesToken: TOKEN },
  });
  t.teardown(() => h.close());
  const ann = await h.client('ann');
  await h.client('bob', { handlers: {} });
  // Three seconds of traffic, then the errors: one served (ann's claim), one made (bob has no such handler).
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < 20; i++) await ann.call('move', [i] as never);
    await sleep(1000);
  }
  await ann.call('claim', [] as never).catch(() => {});
  await h.server.call('bob', 'noSuchHandler' as never, [] as never).catch(() => {});
  await sleep(1100); // past routesCacheMs: the next view is a fresh one

  const res = await fetch(`http://127.0.0.1:${h.port}/monitor.json`, { headers: { authorization: `Bearer ${TOKEN}` } });
  t.equal(res.status, 200);
  const v = (await res.json()) as { history?: [number, number][]; recentErrors: { uid?: string; direction: string; code: string }[] };
  t.ok(Array.isArray(v.history), 'monitor.json has the per-second history');
  const history = v.history ?? [];
  t.ok(history.length >= 3 && history.length <= 120, `history holds the seconds so far, at most 120 (${history.length})`);
  t.ok(history.filter((p) => p[0] > 0).length >= 2, `several past seconds show calls served: ${JSON.stringify(history.slice(-6))}`);
  t.ok(
    v.recentErrors.some((e) => e.direction === 'served' && e.uid === 'ann' && e.code === 'INVALID_PARAMS'),
    `the served error names ann: ${JSON.stringify(v.recentErrors)}`,
  );
  t.ok(v.recentErrors.some((e) => e.direction === 'made' && e.uid === 'bob' && e.code === 'METHOD_NOT_FOUND'), 'the made error names bob');

  const skip = skipReason();
  if (skip) return void t.comment(`page in Chromium skipped: ${skip}`);
  const context = await launchBrowser(t);
  const { page, problems } = await openPage(context, `http://127.0.0.1:${h.port}/monitor#token=${TOKEN}`);
  await page.waitForFunction(() => document.querySelector('#status')?.textContent?.startsWith('up '));
  // The first poll's render: the chart already spans the seconds before the page opened.
  const points = await page.evaluate('hist.length');
  t.ok(Number(points) >= 3, `the chart's first render has ${String(points)} points (was 1: it started empty)`);
  const recent = (await page.locator('#recent').textContent()) ?? '';
  t.match(recent, /ann/, `latest errors show ann: ${recent}`);
  t.match(recent, /bob/, 'and bob');
  t.same(problems, [], 'no page errors');
});
