// The browser SDK comes back by itself: a socket cut mid-call (TCP proxy resets it) is
// reconnected and the session resumed, the call completing exactly once; after a server
// restart on the same port the page reconnects into a new session.

import t from 'tap';
import type { ServerContext } from '../server/index.ts';
import { buildBrowser } from '../scripts/build-browser.ts';
import { launchBrowser, openPage, skipReason } from './browser/chromium.ts';
import { servePage } from './browser/testPage.ts';
import { freePort, startServer, until, type Harness } from './helpers.ts';
import { TcpProxy } from './tcpProxy.ts';

type Log = Array<Record<string, unknown>>;
declare const h: {
  log: Log;
  state: string;
  connect(url: string, token: string, options?: object): Promise<string>;
  call(method: string, args: unknown[], options?: object): Promise<{ ok?: unknown; error?: string }>;
  start(key: string, method: string, args: unknown[], options?: object): void;
  result(key: string): Promise<{ ok?: unknown; error?: string }>;
};

t.test('browser SDK reconnects in chromium', { skip: skipReason() }, async (t) => {
  const { bundle } = await buildBrowser({ write: false, quiet: true });
  const port = await freePort();
  let runs = 0;
  let release: ((v: string) => void) | undefined;
  const serve = (p: number): Promise<Harness<any, any>> =>
    startServer(
      {
        handlers: {
          add: (_ctx: ServerContext, a: number, b: number) => a + b,
          // Held open by the test, so the drop happens while the call is pending.
          held: () => {
            runs++;
            return new Promise<string>((r) => (release = r));
          },
        },
        http: servePage(bundle),
        resumeWindowMs: 10_000,
      },
      p,
    );
  let srv = await serve(port);
  t.teardown(() => srv.close());
  // The page's WebSocket goes through the proxy; the page itself loads directly.
  const proxy = await TcpProxy.start(port);
  t.teardown(() => proxy.close());
  const browser = await launchBrowser(t);
  const { page, problems } = await openPage(browser, `http://127.0.0.1:${port}/`);
  await page.waitForFunction(() => document.title === 'ready');
  const fast = { initialDelayMs: 50, maxDelayMs: 500 };
  t.equal(await page.evaluate(([url, r]) => h.connect(url, 'u:carol', { reconnect: r }), [proxy.url, fast] as const), 'open');

  t.test('a socket cut mid-call is reconnected, the session resumed, the call answered once', async (t) => {
    await page.evaluate(() => h.start('held', 'held', []));
    await until(() => runs === 1 && release !== undefined, 3000, 'the held call to reach the server');
    const sid = await page.evaluate(() => (window as any).h.client.sessionId as string);
    proxy.cutAll();
    await page.waitForFunction(() => h.log.some((e) => e.state === 'reconnecting'));
    await page.waitForFunction(() => h.log.some((e) => e.open === true), undefined, { timeout: 5000 });
    t.equal(await page.evaluate(() => h.state), 'open', 'connected again');
    t.equal(await page.evaluate(() => (window as any).h.client.sessionId as string), sid, 'same session');
    t.ok(proxy.cuts >= 1, 'the proxy really cut the socket');
    release!('done');
    t.same(await page.evaluate(() => h.result('held')), { ok: 'done' }, 'the pending call completed after the resume');
    t.equal(runs, 1, 'and ran once on the server');
    t.same(await page.evaluate(() => h.call('add', [1, 1])), { ok: 2 }, 'new calls work');
  });

  t.test('after a server restart on the same port the page reconnects into a new session', async (t) => {
    const opensBefore = await page.evaluate(() => h.log.filter((e) => 'open' in e).length);
    await srv.close();
    await page.waitForFunction(() => h.state === 'reconnecting');
    srv = await serve(port);
    await page.waitForFunction((n) => h.log.filter((e) => 'open' in e).length > n, opensBefore, { timeout: 8000 });
    const opens = await page.evaluate(() => h.log.filter((e) => 'open' in e).map((e) => e.open));
    t.equal(opens.at(-1), false, 'a new session (the old server’s is gone)');
    t.equal(await page.evaluate(() => h.state), 'open');
    t.same(await page.evaluate(() => h.call('add', [20, 22])), { ok: 42 }, 'calls reach the new server');
    await until(() => srv.server.isOnline('carol'), 2000, 'carol online on the new server');
    t.pass('the new server sees carol');
  });

  t.test('the page ran clean', async (t) => {
    // A refused reconnect attempt while the server is down logs a WebSocket error in
    // chromium's console; that is expected, nothing else is.
    t.same(problems.filter((p) => !/WebSocket connection to .* failed/.test(p)), []);
  });
});
