// The C# tests' own Volley server (today's server/ from this repository): fixed handlers
// the tests call, and handlers that make the server call the C# client back. Prints
// `LISTENING <port>`; a `--reject` flag makes duplicate logins fail with HTTP 409, and
// `--resume-window <ms>` sets the resume window. Exits when stdin closes (the test process died).

import { createServer, RpcError, type ServerContext } from '../../../server/index.ts';

const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
type Ctx = ServerContext;
const runs = new Map<string, number>();
const cancelled = new Map<string, number>();
const produced = new Map<string, number>();
const itemOutcomes = new Map<string, unknown[]>();
const bump = (m: Map<string, number>, k: string) => {
  const n = (m.get(k) ?? 0) + 1;
  m.set(k, n);
  return n;
};
/** Settles a promise into {value} or {code, message, data}. */
const outcome = async (p: Promise<unknown>) => {
  try {
    return { value: await p };
  } catch (err) {
    const e = err as RpcError;
    // No undefined fields: today's codec writes undefined as msgpackr's ext 0, which the
    // wire (DECISIONS A) refuses.
    return e.data === undefined ? { code: e.code, message: e.message } : { code: e.code, message: e.message, data: e.data };
  }
};

const server = createServer({
  authenticate: (req) => (req.token && /^[A-Za-z0-9_-]{1,64}$/.test(req.token) ? req.token : null),
  duplicateLogin: process.argv.includes('--reject') ? 'reject' : 'replace',
  resumeWindowMs: Number(arg('--resume-window') ?? 30_000),
  heartbeatMs: Number(arg('--heartbeat') ?? 10_000),
  handlers: {
    echo: (_: Ctx, x: unknown) => x,
    add: (_: Ctx, a: number, b: number) => {
      if (typeof a !== 'number' || typeof b !== 'number') throw new RpcError('INVALID_PARAMS', 'add(a, b) takes two numbers');
      return a + b;
    },
    whoami: (ctx: Ctx) => ({ uid: ctx.uid }),
    fail: (_: Ctx, code: string, message: string = code, data?: unknown) => {
      throw new RpcError(code, message, data);
    },
    boom: (_: Ctx) => {
      throw new Error('secret detail: password=hunter2');
    },
    /** Resolves after ms; its abort signal ($cancel, session end) stops it and is counted per key. */
    sleep: (ctx: Ctx, ms: number, key = '') =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => resolve('slept'), ms);
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          bump(cancelled, key);
          reject(ctx.signal.reason);
        }, { once: true });
      }),
    cancelled: (_: Ctx, key: string) => cancelled.get(key) ?? 0,
    /** Counts runs per key (then waits delayMs): a call that ran twice answers 2. */
    count: async (_: Ctx, key: string, delayMs = 0) => {
      const n = bump(runs, key);
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      return n;
    },
    runs: (_: Ctx, key: string) => runs.get(key) ?? 0,
    /** Sends the caller n notifications method(payload, i), then answers n. */
    notifyMe: (ctx: Ctx, method: string, n = 1, payload: unknown = null) => {
      for (let i = 0; i < n; i++) ctx.server.notify(ctx.uid, method, payload, i);
      return n;
    },
    /** The server calls the caller's `method(...args)` with a deadline and reports how it went. */
    callMe: (ctx: Ctx, method: string, args: unknown[], timeoutMs = 5000) =>
      outcome(ctx.server.call(ctx.uid, method, args, { timeoutMs })),
    /** The server calls the caller back and cancels that call after cancelAfterMs. */
    callMeAndCancel: (ctx: Ctx, method: string, args: unknown[], cancelAfterMs: number) => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), cancelAfterMs);
      return outcome(ctx.server.call(ctx.uid, method, args, { signal: ac.signal, timeoutMs: 30_000 }));
    },
    /** Starts a server → client call now and answers at once; `callResult(tag)` tells how it ended. */
    callMeLater: (ctx: Ctx, tag: string, method: string, args: unknown[], timeoutMs = 15_000) => {
      later.set(tag, outcome(ctx.server.call(ctx.uid, method, args, { timeoutMs })));
      return true;
    },
    callResult: (_: Ctx, tag: string) => later.get(tag) ?? { code: 'NO_SUCH_TAG' },
    /** A stream of 0 … n−1 (SPEC §12); produced[key] counts the items made, cancelled[key] a stop before the end. */
    countTo: async function* (_: Ctx, n: number, key = '') {
      let i = 0;
      try {
        for (; i < n; i++) {
          bump(produced, key);
          yield i;
        }
      } finally {
        if (i < n) bump(cancelled, key);
      }
    },
    produced: (_: Ctx, key: string) => produced.get(key) ?? 0,
    /** 0, then 1 after ms, …: only the call's abort signal ($cancel) stops a wait early. */
    slowCount: async function* (ctx: Ctx, n: number, ms: number, key = '') {
      let i = 0;
      try {
        for (; i < n; i++) {
          if (i > 0) {
            await new Promise<void>((resolve, reject) => {
              const timer = setTimeout(resolve, ms);
              ctx.signal.addEventListener('abort', () => {
                clearTimeout(timer);
                reject(ctx.signal.reason);
              }, { once: true });
            });
          }
          yield i;
        }
      } finally {
        if (i < n) bump(cancelled, key);
      }
    },
    /** A stream of 0 … n−1 that then fails with `code`. */
    failAfter: async function* (_: Ctx, n: number, code: string) {
      for (let i = 0; i < n; i++) yield i;
      throw new RpcError(code, 'the stream failed');
    },
    /**
     * Reads the caller's stream `method(...args)`: `take` items at most (0: all), waiting
     * delayMs before taking each; answers {items} or {items, code, message}.
     */
    readMine: async (ctx: Ctx, method: string, args: unknown[], take = 0, delayMs = 0) => {
      const items: unknown[] = [];
      try {
        for await (const x of ctx.server.stream(ctx.uid, method as never, args as never)) {
          items.push(x);
          if (take > 0 && items.length >= take) break;
          if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
        }
        return { items };
      } catch (err) {
        const e = err as RpcError;
        return { items, code: e.code, message: e.message };
      }
    },
    /**
     * Reads the upload xs (SPEC §12): `take` items at most (0: all; -1: none), waiting delayMs
     * after each, then holdMs (only its abort signal ends that early); answers {items} or
     * {items, code, message}.
     */
    readUpload: async (ctx: Ctx, xs: AsyncIterable<unknown>, take = 0, delayMs = 0, holdMs = 0) => {
      const items: unknown[] = [];
      try {
        if (take >= 0)
          for await (const x of xs) {
            items.push(x);
            if (take > 0 && items.length >= take) break;
            if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
          }
        if (holdMs > 0) await new Promise((r, reject) => (setTimeout(r, holdMs), ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true })));
        return { items };
      } catch (err) {
        const e = err as RpcError;
        return { items, code: e.code, message: e.message };
      }
    },
    /** Calls the caller's `method` with an upload of 1 … n and answers what it answered. */
    pushUpload: async (ctx: Ctx, method: string, n: number) => {
      async function* upTo() {
        for (let i = 1; i <= n; i++) yield i;
      }
      return ctx.server.call(ctx.uid, method as never, [upTo()] as never);
    },
    /** Reads the caller's stream `method(...args)` to its end; answers each item's size (a string's length, an array's count) or the item. */
    measureMine: async (ctx: Ctx, method: string, args: unknown[]) => {
      const sizes: unknown[] = [];
      for await (const x of ctx.server.stream(ctx.uid, method as never, args as never)) sizes.push(typeof x === 'string' || Array.isArray(x) ? x.length : x);
      return sizes;
    },
    /** Sends the caller a hand-made `$items` request with these params (SPEC §12) and reports how it was answered. */
    itemsToMe: (ctx: Ctx, params: unknown[]) => outcome(ctx.server.call(ctx.uid, '$items' as never, params as never)),
    /**
     * A stream whose items go by hand, `$items [this call, batch]` for each batch, each awaited
     * (its answer is the credit: it comes once the reader took the whole batch); outcomes[key]
     * records each answer, then the stream yields them as its last item.
     */
    handItems: async function* (ctx: Ctx, batches: unknown[], key = '') {
      const out: unknown[] = [];
      itemOutcomes.set(key, out);
      for (const b of batches) out.push(await outcome(ctx.server.call(ctx.uid, '$items' as never, [ctx.id, b] as never)));
      yield out;
    },
    itemOutcomes: (_: Ctx, key: string) => itemOutcomes.get(key) ?? null,
    /** Closes the caller's socket with a code (e.g. 4401 to test refusal handling, 1001 to test reconnect). */
    disconnectMe: (ctx: Ctx, code: number) => {
      setTimeout(() => ctx.server.disconnect(ctx.uid, code, 'asked by the test'), 20);
      return true;
    },
  },
});
const later = new Map<string, Promise<unknown>>();

const port = await server.listen(Number(arg('--port') ?? 0), '127.0.0.1');
console.log(`LISTENING ${port}`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
