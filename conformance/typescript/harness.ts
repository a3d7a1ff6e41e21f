// The TypeScript runner's harness: a Run per case (fresh uid, clients with the kit's
// client handlers, the kit's HTTP control routes) and small assertion helpers.

import WebSocket from 'ws';
import { VolleyClient, type ClientOptions } from '../../client/index.ts';
import { RpcError } from '../../protocol/index.ts';
import { show, sleep } from '../state.ts';

export interface Env {
  /** http://127.0.0.1:<port> of the kit server. */
  base: string;
  /** WebSocket constructor for the client (default: the `ws` package's). */
  WebSocket?: unknown;
}


export type Client = VolleyClient<any, any> & { notes: unknown[][]; runs: Map<string, number> };

export function check(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}


export async function settle(p: Promise<unknown>): Promise<{ value?: unknown; code?: string; message?: string; data?: unknown }> {
  try {
    return { value: await p };
  } catch (err) {
    const e = err as RpcError;
    return { code: e.code ?? 'THROWN', message: e.message, data: e.data };
  }
}


/** A call awaited later: if the case fails before that, its rejection is no crash. */
export function later<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}


export async function rejects(p: Promise<unknown>, code: string): Promise<RpcError> {
  const o = await settle(p);
  check(o.code === code, `expected ${code}, got ${o.code ? `${o.code}: ${o.message}` : `result ${show(o.value)}`}`);
  return o as unknown as RpcError;
}


/** Wait until `cond()` holds; throw after `ms`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}


let n = 0;
/** A fresh uid per case and client, so the kit's records of one case stand alone. */
export const uidFor = (id: string) => `c${id}-${process.pid}-${++n}`;

/** The client handlers every runner registers (README.md, "Client handlers"). */
function clientHandlers(c: () => Client) {
  return {
    echo: (_ctx: unknown, x: unknown) => x,
    add: (_ctx: unknown, a: number, b: number) => a + b,
    slow: (ctx: { signal: AbortSignal }, ms: number, tag: string) =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => resolve('done'), ms);
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(t);
          c().notify('kit.aborted', tag);
          reject(ctx.signal.reason);
        }, { once: true });
      }),
    fail: (_ctx: unknown, code: string, message: string, data?: unknown) => {
      throw new RpcError(code, message, data);
    },
    boom: () => {
      throw new Error('client secret');
    },
    count: async (_ctx: unknown, key: string, delayMs = 0) => {
      const runs = c().runs;
      const k = (runs.get(key) ?? 0) + 1;
      runs.set(key, k);
      if (delayMs > 0) await sleep(delayMs);
      return k;
    },
    note: (_ctx: unknown, ...args: unknown[]) => void c().notes.push(args),
    numbers: async function* (_ctx: unknown, n: number) {
      for (let i = 1; i <= n; i++) yield i;
    },
    /** Reads the server's upload xs (SPEC §12) and answers its items (case 12.10). */
    collect: async (_ctx: unknown, xs: AsyncIterable<unknown>) => {
      const got: unknown[] = [];
      for await (const x of xs) got.push(x);
      return got;
    },
  };
}

export class Run {
  readonly clients: Client[] = [];
  constructor(readonly env: Env, readonly id: string, readonly path: string) {}

  url(path = this.path): string {
    return `${this.env.base.replace(/^http/, 'ws')}${path}`;
  }

  /** Connect a client with the kit's handlers; resolves once the session is open. */
  async connect(uid = uidFor(this.id), opts: ClientOptions<any, any> & { path?: string } = {}): Promise<Client> {
    let client: Client | undefined;
    const c = new VolleyClient<any, any>(this.url(opts.path), {
      token: uid,
      WebSocket: (this.env.WebSocket ?? WebSocket) as never,
      handlers: clientHandlers(() => client!) as never,
      onError: () => {},
      reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
      ...opts,
    }) as Client;
    client = c;
    c.notes = [];
    c.runs = new Map();
    this.clients.push(c);
    await c.opened;
    return c;
  }

  async http(method: 'GET' | 'POST', route: string, params: Record<string, string | number>): Promise<any> {
    const q = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)]));
    const res = await fetch(`${this.env.base}${route}?${q}`, { method });
    return res.json();
  }

  async verdict(uid: string, id = this.id, withinMs = 0): Promise<void> {
    const end = Date.now() + withinMs;
    for (;;) {
      const v = (await this.http('GET', '/kit/verdict', { case: id, uid })) as { ok: boolean; detail: string };
      if (v.ok || Date.now() >= end) return check(v.ok, `kit verdict: ${v.detail}`);
      await sleep(50);
    }
  }

  async counters(): Promise<{ runs: Record<string, number>; cancelled: Record<string, number>; sessions: string[]; pending: { incoming: number; outgoing: number } }> {
    return this.http('GET', '/kit/counters', {});
  }

  /** Poll the kit's counters until each key has run once. */
  async untilRuns(keys: string[], ms: number): Promise<void> {
    const end = Date.now() + ms;
    for (;;) {
      const runs = (await this.counters()).runs;
      if (keys.every((k) => runs[k] === 1)) return;
      check(Date.now() < end, `not every call ran once: ${keys.map((k) => runs[k] ?? 0).join(',')}`);
      await sleep(20);
    }
  }

  close(): void {
    for (const c of this.clients) c.close();
  }
}

