// The WebGL transport's JavaScript half (csharp/Volley/Plugins/WebGL/VolleyWebSocket.jslib) in
// real Chromium against a real Volley server, driven the way Unity's WebGL runtime drives a
// .jslib: the file is put through a stand-in for Unity's build step (mergeInto into
// LibraryManager.library, `$` objects become globals, functions become `_Name`, each
// {{{ makeDynCall(sig, ptr) }}} becomes a call into a function table that checks the
// signature's arity), bytes and strings cross in an Emscripten-style heap (HEAPU8 with
// _malloc/_free, UTF8ToString, stringToUTF8) that grows by replacing HEAPU8 and detaching the
// old buffer, and the "C# side" is page code doing what Transport/WebGLTransport.cs does.
// Over it the page speaks Volley's wire format: $session, a call to the server, a call from
// the server answered, a 300 KB binary each way (larger than the heap's first buffer and
// than the C# side's 64 KiB buffer), close codes both ways, a refused login as close 4401,
// and an abort.

import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { launchBrowser, skipReason } from './browser/chromium.ts';
import { startServer, type Harness } from './helpers.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const JSLIB = join(root, 'csharp/Volley/Plugins/WebGL/VolleyWebSocket.jslib');
const BIG = 300_000;

/** What Unity's build does to a .jslib, enough to run it: macros expanded, library linked. */
export function preprocessJslib(text: string): string {
  const expanded = text.replace(/\{\{\{\s*makeDynCall\('(\w+)',\s*'([^']+)'\)\s*\}\}\}/g, (_m, sig: string, ptr: string) => `__dynCall('${sig}', ${ptr})`);
  if (/\{\{\{/.test(expanded)) throw new Error('a {{{ }}} macro the stand-in does not know');
  return expanded;
}

/** The fake Unity WebGL runtime: heap, allocator, strings, function table, library linker. */
const RUNTIME = String.raw`
(() => {
  const g = window;
  g.HEAPU8 = new Uint8Array(64 * 1024);
  g.__growths = 0;
  let top = 16;
  const live = new Map();
  g._malloc = (n) => {
    const p = top;
    top += (n + 15) & ~15;
    if (top > g.HEAPU8.length) {
      // Emscripten's memory growth: a new, larger buffer; views of the old one are dead.
      let size = g.HEAPU8.length;
      while (size < top) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(g.HEAPU8);
      const old = g.HEAPU8.buffer;
      g.HEAPU8 = grown;
      if (old.transfer) old.transfer(0);
      g.__growths++;
    }
    live.set(p, n);
    return p;
  };
  g._free = (p) => {
    if (!live.delete(p)) throw new Error('free of ' + p + ' that was not allocated');
    if (live.size === 0) top = 16;
  };
  g.__liveBlocks = () => live.size;
  const enc = new TextEncoder(), dec = new TextDecoder();
  g.lengthBytesUTF8 = (s) => enc.encode(s).length;
  g.stringToUTF8 = (s, p, max) => {
    const b = enc.encode(s).subarray(0, max - 1);
    g.HEAPU8.set(b, p);
    g.HEAPU8[p + b.length] = 0;
  };
  g.UTF8ToString = (p) => {
    let e = p;
    while (g.HEAPU8[e] !== 0) e++;
    return dec.decode(g.HEAPU8.subarray(p, e));
  };
  const table = [null];
  g.__addFunction = (fn, sig) => { table.push({ fn, sig }); return table.length - 1; };
  g.__dynCall = (sig, ptr) => (...args) => {
    const e = table[ptr];
    if (!e) throw new Error('dynCall of an empty table slot ' + ptr);
    if (e.sig !== sig) throw new Error('dynCall signature ' + sig + ' for a ' + e.sig + ' function');
    if (args.length !== sig.length - 1) throw new Error('dynCall ' + sig + ' with ' + args.length + ' args');
    for (const a of args) if (!Number.isInteger(a)) throw new Error('dynCall ' + sig + ': non-integer argument ' + a);
    return e.fn(...args);
  };
  g.LibraryManager = { library: {} };
  g.mergeInto = (target, src) => Object.assign(target, src);
  g.autoAddDeps = (lib, dep) => {
    for (const k of Object.keys(lib)) if (typeof lib[k] === 'function') lib[k + '__deps'] = [dep];
  };
  g.__link = () => {
    const lib = g.LibraryManager.library;
    for (const [k, v] of Object.entries(lib)) {
      if (k.endsWith('__deps')) continue;
      if (k.startsWith('$')) g[k.slice(1)] = v;
      else if (typeof v === 'function') g['_' + k] = v;
    }
  };
})();
`;

/** Page code doing what WebGLTransport.cs does, and a minimal Volley peer over it. */
const DRIVER = String.raw`
(() => {
  const g = window;
  const packr = new msgpackr.Packr({ useRecords: false });
  const unpackr = new msgpackr.Unpackr({ useRecords: false, mapsAsObjects: true });
  const S = (g.S = { sockets: {}, log: [] });
  const str = (s) => { const n = lengthBytesUTF8(s) + 1; const p = _malloc(n); stringToUTF8(s, p, n); return p; };
  const onOpen = __addFunction((id) => { S.log.push(['open', id]); S.sockets[id].opened(); }, 'vi');
  const onMessage = __addFunction((id, ptr, len, isText) => {
    // Marshal.Copy: the bytes live only during the callback.
    const bytes = HEAPU8.slice(ptr, ptr + len);
    S.sockets[id].message(bytes, isText);
  }, 'viiii');
  const onClose = __addFunction((id, code, reasonPtr) => {
    const reason = UTF8ToString(reasonPtr);
    S.log.push(['close', id, code, reason]);
    S.sockets[id].closed(code, reason);
  }, 'viii');
  _VolleyWs_Init(onOpen, onMessage, onClose);

  g.open = (url, protocols) => new Promise((resolve) => {
    const u = str(url), p = str(protocols);
    let id;
    const sock = { opened: null, inbox: [], waiters: [], closes: [], ackSent: false, nextId: 1, pending: new Map(), served: 0, notes: [] };
    sock.opened = () => { sock.isOpen = true; };
    sock.message = (bytes, isText) => {
      if (isText) { sock.inbox.push({ text: true }); return; }
      // One WebSocket message may carry several Volley messages (SPEC: frames batch them).
      for (const msg of unpackr.unpackMultiple(bytes)) sock.one(msg);
    };
    sock.one = (msg) => {
      if (msg[0] === 1 && sock.pending.has(msg[1])) { sock.pending.get(msg[1])(msg); sock.pending.delete(msg[1]); return; }
      if (msg[0] === 0) {
        // A call from the server: answer in the wire format.
        const [, callId, method, params] = msg;
        sock.served++;
        const reply = method === 'double' ? [1, callId, null, params[0] * 2] : [1, callId, { code: 'METHOD_NOT_FOUND', message: method }, null];
        g.sendMsg(id, reply);
        return;
      }
      if (msg[0] === 2 && msg[1] === '$session') sock.session = msg[2][0];
      else if (msg[0] === 2) sock.notes.push(msg[1]);
      const w = sock.waiters.shift();
      if (w) w(msg); else sock.inbox.push(msg);
    };
    sock.closed = (code, reason) => { sock.closes.push({ code, reason }); for (const w of sock.waiters.splice(0)) w({ closed: { code, reason } }); if (sock.closeWaiter) sock.closeWaiter({ code, reason }); };
    id = _VolleyWs_Connect(u, p);
    _free(u); _free(p);
    S.sockets[id] = sock;
    resolve(id);
  });
  g.next = (id, ms = 5000) => {
    const sock = S.sockets[id];
    if (sock.inbox.length) return Promise.resolve(sock.inbox.shift());
    return new Promise((resolve) => { sock.waiters.push(resolve); setTimeout(() => resolve({ timeout: true }), ms); });
  };
  g.waitClose = (id, ms = 5000) => {
    const sock = S.sockets[id];
    if (sock.closes.length) return Promise.resolve(sock.closes[0]);
    return new Promise((resolve) => { sock.closeWaiter = resolve; setTimeout(() => resolve({ timeout: true }), ms); });
  };
  g.sendMsg = (id, msg) => {
    const bytes = packr.pack(msg);
    const p = _malloc(bytes.length);
    HEAPU8.set(bytes, p);
    const r = _VolleyWs_Send(id, p, bytes.length);
    HEAPU8.fill(0xee, p, p + bytes.length); // the transport must have copied them out
    _free(p);
    return r;
  };
  g.call = (id, method, params) => {
    const sock = S.sockets[id];
    if (!sock.ackSent) { g.sendMsg(id, [2, '$ack', [0]]); sock.ackSent = true; }
    const callId = sock.nextId++;
    return new Promise((resolve) => {
      setTimeout(() => resolve({ timeout: true }), 10000);
      sock.pending.set(callId, (m) => resolve({ error: m[2], result: m[3] }));
      const r = g.sendMsg(id, [0, callId, method, params]);
      if (r !== 0) resolve({ sendFailed: r });
    });
  };
  g.close = (id, code, reason) => { const p = str(reason); _VolleyWs_Close(id, code, p); _free(p); };
  g.abort = (id) => _VolleyWs_Abort(id);
  g.info = (id) => ({ served: S.sockets[id].served, notes: S.sockets[id].notes, closes: S.sockets[id].closes, growths: __growths, liveBlocks: __liveBlocks() });
})();
`;

declare const window: Record<string, (...a: unknown[]) => unknown>;

t.test('the jslib in Chromium, driven as Unity drives it, against a real server', { skip: skipReason() }, async (t) => {
  const disconnects: { uid: string; code: number; reason: string }[] = [];
  const h: Harness<any, any> = await startServer<any, any>({
    authenticate: (req) => (req.token?.startsWith('u:') ? req.token.slice(2) : null),
    onDisconnect: (uid, code, reason) => void disconnects.push({ uid, code, reason }),
    // A page from the server's own origin (the player's page, as a Unity WebGL build is served).
    http: (routes) => routes.get('/', () => ({ headers: { 'content-type': 'text/html; charset=utf-8' }, body: '<!doctype html><title>webgl</title>' })),
    handlers: {
      echo: (_ctx: unknown, x: unknown) => x,
      callMeBack: (ctx: { uid: string }, n: number): Promise<unknown> => h.server.call(ctx.uid, 'double', [n]),
      big: (_ctx: unknown, n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff),
      sumBytes: (_ctx: unknown, b: Uint8Array) => ({ length: b.length, sum: b.reduce((a, x) => a + x, 0) }),
      closeMe: (ctx: { uid: string }, code: number) => void setTimeout(() => h.server.disconnect(ctx.uid, code, 'bye from server'), 20),
    },
  });
  t.teardown(() => h.close());
  const browser = await launchBrowser(t);
  const page: Page = await browser.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(`http://127.0.0.1:${h.port}/`);
  await page.addScriptTag({ path: join(root, 'node_modules/msgpackr/dist/index-no-eval.min.js') });
  await page.addScriptTag({ content: RUNTIME });
  await page.addScriptTag({ content: preprocessJslib(readFileSync(JSLIB, 'utf8')) });
  await page.evaluate(() => window.__link!());
  await page.addScriptTag({ content: DRIVER });
  const ev = <T>(fn: string, ...args: unknown[]) => page.evaluate(([f, a]) => (window[f as string] as (...x: unknown[]) => unknown)(...(a as unknown[])), [fn, args] as const) as Promise<T>;

  // Connect: the page offers `volley` (as WebGLTransport does), gets $session first.
  const url = `${h.url}?token=u:webgl`;
  const id = await ev<number>('open', url, 'volley');
  t.ok(id > 0, 'VolleyWs_Connect returns an id');
  const first = await ev<unknown[]>('next', id);

  t.equal(first[1], '$session', 'first message: $session, delivered through onMessage and HEAPU8');

  // A call to the server and back, in Volley's wire format.
  const echo = await ev<{ error: unknown; result: unknown }>('call', id, 'echo', [{ hello: 'wörld', n: 42, list: [1, 2, 3] }]);
  t.same(echo, { error: null, result: { hello: 'wörld', n: 42, list: [1, 2, 3] } }, 'call page → server → page');

  // A call from the server, answered by the page, inside a call from the page.
  const back = await ev<{ error: unknown; result: unknown }>('call', id, 'callMeBack', [21]);
  t.same(back, { error: null, result: 42 }, 'the server called double(21) on the page and got 42');
  t.equal((await ev<{ served: number }>('info', id)).served, 1, 'the page served one call from the server');

  // Big binaries both ways: larger than the heap's first buffer (64 KiB, so it grows and
  // HEAPU8 is replaced) and than WebGLTransport's initial 64 KiB buffer.
  const big = await ev<{ error: unknown; result: Uint8Array | Record<string, number> }>('call', id, 'big', [BIG]);
  const bytes = Object.values(big.result as Record<string, number>);
  t.equal(bytes.length, BIG, `a ${BIG}-byte binary from the server arrived whole`);
  t.ok(bytes.every((b, i) => b === ((i * 7) & 0xff)), 'every byte as sent');
  const up = await page.evaluate(async (n) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = (i * 13) & 0xff;
    return (window.call as (...a: unknown[]) => Promise<unknown>)(1, 'sumBytes', [b]);
  }, BIG);
  let expectSum = 0;
  for (let i = 0; i < BIG; i++) expectSum += (i * 13) & 0xff;
  t.same(up, { error: null, result: { length: BIG, sum: expectSum } }, `a ${BIG}-byte binary from the page arrived whole`);
  const info = await ev<{ growths: number; liveBlocks: number }>('info', id);
  t.ok(info.growths >= 1, `the heap grew (${info.growths}x) and HEAPU8 was replaced under the jslib`);
  t.equal(info.liveBlocks, 0, 'every _malloc was freed');

  // The server closes with a code: onClose gets code and reason.
  await ev('call', id, 'closeMe', [4321]);
  const closed = await ev<{ code: number; reason: string }>('waitClose', id);
  t.same(closed, { code: 4321, reason: 'bye from server' }, 'server close code and reason reached the C# callback');
  t.equal((await ev<{ error: unknown; result: unknown; sendFailed?: number }>('call', id, 'echo', [1])).sendFailed, -1, 'send on a closed socket: -1');

  // The page closes with a code: the server sees it.
  const id2 = await ev<number>('open', `${h.url}?token=u:webgl2`, 'volley');
  t.equal((await ev<unknown[]>('next', id2))[1], '$session');
  await ev('close', id2, 4100, 'bye from page');
  t.same(await ev('waitClose', id2), { code: 4100, reason: 'bye from page' }, 'onClose after our own close');
  for (let i = 0; i < 50 && !disconnects.some((d) => d.uid === 'webgl2'); i++) await new Promise((r) => setTimeout(r, 20));
  t.match(disconnects.find((d) => d.uid === 'webgl2'), { code: 4100, reason: 'bye from page' }, 'the server saw close 4100 and its reason');

  // A refused login: the `volley` offer makes it a close code, not an unreadable HTTP 401.
  const id3 = await ev<number>('open', `${h.url}?token=bad`, 'volley');
  t.match(await ev('waitClose', id3), { code: 4401 }, 'refused: close 4401');

  // Abort: onClose(1006) at once, exactly once.
  const id4 = await ev<number>('open', `${h.url}?token=u:webgl4`, 'volley');
  t.equal((await ev<unknown[]>('next', id4))[1], '$session');
  await ev('abort', id4);
  await new Promise((r) => setTimeout(r, 300));
  t.same((await ev<{ closes: unknown[] }>('info', id4)).closes, [{ code: 1006, reason: 'aborted' }], 'abort: one onClose, 1006');

  // An unreachable server: onClose 1006 without onOpen.
  const id5 = await ev<number>('open', 'ws://127.0.0.1:9/', 'volley');
  t.match(await ev('waitClose', id5), { code: 1006 }, 'unreachable: 1006');
  const log = await page.evaluate(() => (window as unknown as { S: { log: unknown[][] } }).S.log);
  t.notOk(log.some((e) => e[0] === 'open' && e[1] === id5), 'no onOpen for it');
  t.same(problems, [], 'no page errors');
});
