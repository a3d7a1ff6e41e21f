// The browser SDK in real chromium against a real Volley server: calls both ways, errors,
// room notifications, deadlines and cancellation, binary data without Node's Buffer.

import t from 'tap';
import { RpcError, type ServerContext } from '../server/index.ts';
import { buildBrowser } from '../scripts/build-browser.ts';
import { launchBrowser, openPage, skipReason } from './browser/chromium.ts';
import { servePage } from './browser/testPage.ts';
import { rejectsCode, startServer, until } from './helpers.ts';

interface PageApi {
  double(n: number): number;
  whoIsAsking(): string;
  refuse(): void;
  hang(): void;
  news(item: { headline: string }): void;
}

type Log = Array<Record<string, unknown>>;
declare const h: {
  log: Log;
  state: string;
  connect(url: string, token: string, options?: object): Promise<string>;
  call(method: string, args: unknown[], options?: object): Promise<{ ok?: unknown; error?: string; message?: string; isRpcError?: boolean }>;
  start(key: string, method: string, args: unknown[], options?: object): void;
  abort(key: string): Promise<{ ok?: unknown; error?: string }>;
  bytes(): Promise<{ isUint8Array: boolean; bytes: number[]; hasBuffer: boolean; hasProcess: boolean }>;
};

t.test('browser SDK in chromium', { skip: skipReason() }, async (t) => {
  const { bundle } = await buildBrowser({ write: false, quiet: true });
  let slowStarted = 0;
  const serverAborts: string[] = [];
  const srv = await startServer<any, PageApi>({
    handlers: {
      add: (_ctx: ServerContext, a: number, b: number) => a + b,
      echo: (_ctx: ServerContext, x: unknown) => x,
      whoami: (ctx: ServerContext) => ({ uid: ctx.uid }),
      fail: () => {
        throw new RpcError('NOPE', 'the server says no', { n: 1 });
      },
      // Calls the page back while the page waits for this call.
      askBack: (ctx: ServerContext<PageApi>, n: number) => ctx.client.double(n),
      slow: (ctx: ServerContext) =>
        new Promise((_resolve, reject) => {
          slowStarted++;
          ctx.signal.addEventListener('abort', () => {
            serverAborts.push((ctx.signal.reason as RpcError).code);
            reject(ctx.signal.reason);
          });
        }),
    },
    http: servePage(bundle),
  });
  t.teardown(() => srv.close());
  const browser = await launchBrowser(t);
  const { page, problems } = await openPage(browser, `http://127.0.0.1:${srv.port}/`);
  await page.waitForFunction(() => document.title === 'ready');
  t.equal(await page.evaluate(([url]) => h.connect(url!, 'u:alice'), [srv.url]), 'open', 'the page connected');
  await until(() => srv.server.isOnline('alice'), 2000, 'alice online on the server');

  t.test('the page calls the server and gets results and typed errors', async (t) => {
    t.same(await page.evaluate(() => h.call('add', [2, 3])), { ok: 5 });
    t.same(await page.evaluate(() => h.call('whoami', [])), { ok: { uid: 'alice' } }, 'uid from the server-side authenticate');
    const bytes = await page.evaluate(() => h.bytes());
    t.same(bytes, { isUint8Array: true, bytes: [0, 1, 2, 253, 254, 255], hasBuffer: false, hasProcess: false }, 'binary round trip with no Buffer in the page');
    const failed = await page.evaluate(() => h.call('fail', []));
    t.match(failed, { error: 'NOPE', message: 'the server says no', isRpcError: true }, 'application error code crosses as an RpcError');
    t.match(await page.evaluate(() => h.call('nope', [])), { error: 'METHOD_NOT_FOUND', isRpcError: true });
  });

  t.test('the server calls the page and gets its answer', async (t) => {
    t.equal(await srv.server.to('alice').double(21), 42);
    t.equal(await srv.server.to('alice').whoIsAsking(), 'alice', 'the page called the server while answering');
    const err = await rejectsCode(srv.server.to('alice').refuse(), 'NOPE');
    t.same(err.data, { reason: 'test' }, 'error data from the page');
    t.same(await page.evaluate(() => h.call('askBack', [8])), { ok: 16 }, 'page → server → page → server, nested');
  });

  t.test('room and direct notifications arrive in the page', async (t) => {
    srv.server.join('alice', 'lobby');
    srv.server.notifyRoom('lobby', 'news', { headline: 'room' });
    srv.server.notify('alice', 'news', { headline: 'direct' });
    await page.waitForFunction(() => h.log.filter((e) => 'news' in e).length >= 2);
    const news = await page.evaluate(() => h.log.filter((e) => 'news' in e).map((e) => e.news));
    t.same(news, [{ headline: 'room' }, { headline: 'direct' }]);
  });

  t.test('deadlines: TIMEOUT on the caller, the callee’s signal fires, both directions', async (t) => {
    const before = slowStarted;
    const timedOut = await page.evaluate(() => h.call('slow', [], { timeoutMs: 300 }));
    t.match(timedOut, { error: 'TIMEOUT', isRpcError: true }, 'page call past its deadline');
    await until(() => slowStarted === before + 1, 2000, 'the server handler to run');
    await until(() => serverAborts.length === 1, 2000, 'the server handler’s signal');
    t.same(serverAborts, ['CANCELLED'], 'the page told the server it stopped waiting');

    await rejectsCode(srv.server.to('alice', { timeoutMs: 300 }).hang(), 'TIMEOUT');
    await page.waitForFunction(() => h.log.some((e) => e.aborted === 'hang'));
    t.same(await page.evaluate(() => h.log.filter((e) => 'aborted' in e)), [{ aborted: 'hang', code: 'CANCELLED' }], 'the page handler’s ctx.signal fired');
  });

  t.test('an AbortSignal in the page cancels the call on the server', async (t) => {
    const before = slowStarted;
    await page.evaluate(() => h.start('c1', 'slow', [], { timeoutMs: 10_000 }));
    await until(() => slowStarted === before + 1, 2000, 'the server handler to start');
    const cancelled = await page.evaluate(() => h.abort('c1'));
    t.match(cancelled, { error: 'CANCELLED' }, 'the page call rejects CANCELLED at once');
    await until(() => serverAborts.length === 2, 2000, 'the abort to reach the server');
    t.equal(serverAborts[1], 'CANCELLED', 'the server handler’s ctx.signal fired');
  });

  t.test('the page ran clean', async (t) => {
    t.same(problems, [], 'no page errors or console errors');
  });
});
