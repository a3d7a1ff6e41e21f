// Fixtures of the observability-route attacks (issue 20 #1 and #6), in the test's own
// process: a prom-client registry whose scrapes are counted, raw HTTP/1.1 on a net.Socket
// (pipelined requests in one write, keep-alive pollers) read back by a small response
// parser (content-length or chunked: uWebSockets.js sends the one, node:http the other),
// and the event loop's longest stall while an attack runs.

import net from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { ErrorCode, RpcError, type ServerContext } from '../../server/index.ts';
import type { VolleyClient } from '../../client/index.ts';

/** The routes token the attack servers are given (observe.routesToken). */
export const TOKEN = 'attack-observe-7f3a9c1e5b2d8046';
export const AUTH = [`Authorization: Bearer ${TOKEN}`];

/** A Registry (with Node's default metrics unless told) whose metrics() calls are counted. */
export function countedRegistry(defaults = true): { registry: Registry; scrapes(): number } {
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry });
  let n = 0;
  const metrics = registry.metrics.bind(registry);
  registry.metrics = () => {
    n++;
    return metrics();
  };
  return { registry, scrapes: () => n };
}

/** One GET request's bytes. */
export const request = (path: string, headers: readonly string[] = AUTH) =>
  `GET ${path} HTTP/1.1\r\nHost: volley\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`;

export interface Response {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** An HTTP/1.1 client connection on a bare socket: writes anything, parses what comes back. */
export class HttpConn {
  /** Responses read, their statuses, and the last one (its body only if keepBodies). */
  count = 0;
  readonly statuses = new Set<number>();
  last: Response | undefined;
  /** Response bytes received (headers included). */
  bytes = 0;
  closed = false;
  #buf: Buffer = Buffer.alloc(0);
  #waiters = new Set<() => void>();

  private constructor(
    readonly socket: net.Socket,
    readonly keepBodies: boolean,
  ) {
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    socket.on('data', (chunk: Buffer) => {
      this.bytes += chunk.length;
      this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
      let got = false;
      for (let r = this.#parse(); r; r = this.#parse()) {
        this.count++;
        this.statuses.add(r.status);
        this.last = r;
        got = true;
      }
      if (got) this.#wake();
    });
  }

  static open(port: number, keepBodies = true): Promise<HttpConn> {
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    return new Promise((resolve, reject) => {
      socket.once('connect', () => resolve(new HttpConn(socket, keepBodies)));
      socket.once('error', reject);
    });
  }

  write(text: string): void {
    this.socket.write(text);
  }

  /** Resolves once `n` responses were read, the socket closed, or `ms` passed. */
  async wait(n: number, ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (this.count < n && !this.closed && Date.now() < end)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.max(1, end - Date.now()));
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#waiters.add(done);
      });
  }

  /** One request and its response (keep-alive), or undefined if none came within `ms`. */
  async get(path: string, headers: readonly string[] = AUTH, ms = 10_000): Promise<Response | undefined> {
    const n = this.count + 1;
    this.write(request(path, headers));
    await this.wait(n, ms);
    return this.count === n ? this.last : undefined;
  }

  destroy(): void {
    this.socket.destroy();
  }

  #wake(): void {
    const w = [...this.#waiters];
    this.#waiters.clear();
    for (const f of w) f();
  }

  /** One whole response off the front of the buffer, or undefined until it is all there. */
  #parse(): Response | undefined {
    const buf = this.#buf;
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(lines[0]!.split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    let at = end + 4;
    let body: Buffer;
    if (headers['transfer-encoding'] === 'chunked') {
      const parts: Buffer[] = [];
      for (;;) {
        const eol = buf.indexOf('\r\n', at);
        if (eol < 0) return undefined;
        const size = parseInt(buf.subarray(at, eol).toString('latin1'), 16);
        if (buf.length < eol + 2 + size + 2) return undefined;
        if (size === 0) {
          at = eol + 4;
          break;
        }
        parts.push(buf.subarray(eol + 2, eol + 2 + size));
        at = eol + 2 + size + 2;
      }
      body = Buffer.concat(parts);
    } else {
      const length = Number(headers['content-length'] ?? 0);
      if (buf.length < at + length) return undefined;
      body = buf.subarray(at, at + length);
      at += length;
    }
    this.#buf = buf.subarray(at);
    return { status, headers, body: this.keepBodies ? Buffer.from(body) : Buffer.alloc(0) };
  }
}

/**
 * `conns` keep-alive connections, each sending its next request as soon as the last was
 * answered, for `ms`: the most a well-behaved-looking HTTP client does (the transport lets
 * it through whatever its pipelining cap). `onReply` sees each response.
 */
export async function pollBackToBack(
  port: number,
  path: string,
  conns: number,
  ms: number,
  onReply?: (r: Response) => void,
): Promise<{ answered: number; statuses: Set<number> }> {
  const all = await Promise.all(Array.from({ length: conns }, () => HttpConn.open(port, onReply !== undefined)));
  const statuses = new Set<number>();
  let answered = 0;
  const end = Date.now() + ms;
  try {
    await Promise.all(
      all.map(async (c) => {
        while (Date.now() < end && !c.closed) {
          const r = await c.get(path, AUTH, 10_000);
          if (!r) break;
          answered++;
          statuses.add(r.status);
          onReply?.(r);
        }
      }),
    );
  } finally {
    for (const c of all) c.destroy();
  }
  return { answered, statuses };
}

/**
 * The event loop's longest stall (ms) from start to stop(): perf_hooks' histogram, and the
 * longest gap between ticks of a 10 ms interval up to stop() (the histogram records a delay
 * only once the loop comes back, so one stall lasting to the end would not show in it).
 */
export function loopStall(): { stop(): number } {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  let last = performance.now();
  let gap = 0;
  const tick = () => {
    const now = performance.now();
    gap = Math.max(gap, now - last - 10);
    last = now;
  };
  const timer = setInterval(tick, 10);
  return {
    stop() {
      tick();
      clearInterval(timer);
      h.disable();
      return Math.max(h.max / 1e6, gap);
    },
  };
}

/** Prometheus text → its sample lines (every series once). */
export const samples = (text: string) => text.split('\n').filter((l) => l && !l.startsWith('#'));

/**
 * The server side of growing the label set the way a client can: `ask(method, code)` makes
 * the server call that method on the caller, who answers with that error code ('OK': a
 * result). A game server that calls back a method named in a request is the carrier here;
 * the codes a client answers with are its own to choose anyway.
 */
export const askHandlers = {
  add: (_c: ServerContext, a: number, b: number) => a + b,
  ask: (ctx: ServerContext, method: string, code: string) =>
    ctx.server.call(ctx.uid, method as never, [code] as never).then(
      () => 'OK',
      (err: { code?: string }) => err.code ?? '?',
    ),
};

/** Every code a client can answer with and be counted by name, and a few of its own. */
export const CODES = ['OK', ...Object.values(ErrorCode), 'NOT_YOUR_TURN', 'NO_SUCH_ROOM', 'E1', 'E2'];

/** Client handlers `method0…methodN-1` answering with the code they are given. */
export function answering(methods: number): Record<string, (ctx: unknown, code: string) => string> {
  const out: Record<string, (ctx: unknown, code: string) => string> = {};
  for (let i = 0; i < methods; i++)
    out[`method${i}`] = (_ctx, code) => {
      if (code === 'OK') return 'ok';
      throw new RpcError(code, 'no');
    };
  return out;
}

/**
 * Grow the label set from a client built with answering(methods): every method × every
 * code, made calls; plus served calls to names the server never had. Returns the number of
 * server → client calls made.
 */
export async function growLabels(client: VolleyClient<any, any>, methods: number): Promise<number> {
  const jobs: [string, string][] = [];
  for (let m = 0; m < methods; m++) for (const code of CODES) jobs.push([`method${m}`, code]);
  for (let i = 0; i < jobs.length; i += 200) await Promise.all(jobs.slice(i, i + 200).map(([m, c]) => client.call('ask', [m, c])));
  await Promise.all(Array.from({ length: 100 }, (_, i) => client.call(`made-up-${i}`, []).catch(() => {})));
  return jobs.length;
}
