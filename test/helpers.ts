// Shared test fixtures: a real Volley server on port 0 and real ws clients.

import net from 'node:net';
import WebSocket from 'ws';
import { createServer, type ServerOptions, type VolleyServer } from '../server/index.ts';
import { connect, VolleyClient, type ClientOptions } from '../client/index.ts';

export { WebSocket };

export interface Harness<S, C> {
  server: VolleyServer<S, C>;
  url: string;
  port: number;
  /** Connect a client as `uid` (the default authenticate takes the token as the uid). */
  client(uid: string, opts?: ClientOptions<NoInfer<S>, NoInfer<C>>): Promise<VolleyClient<S, C>>;
  close(): Promise<void>;
}

/** Start a server on 127.0.0.1:0. Unless given, authenticate accepts token "u:<uid>" as uid. */
export async function startServer<S = any, C = any>(
  opts: Partial<ServerOptions<NoInfer<S>, NoInfer<C>>> & Pick<ServerOptions<NoInfer<S>, NoInfer<C>>, 'handlers'>,
  listenPort = 0,
): Promise<Harness<S, C>> {
  const server = createServer<S, C>({
    authenticate: (req) => (req.token?.startsWith('u:') ? req.token.slice(2) : null),
    onError: () => {},
    ...opts,
  });
  const port = await server.listen(listenPort, '127.0.0.1');
  const url = `ws://127.0.0.1:${port}/`;
  const clients: VolleyClient<S, C>[] = [];
  return {
    server,
    url,
    port,
    async client(uid, copts = {}) {
      const c = await connect<S, C>(url, { token: `u:${uid}`, WebSocket, ...copts });
      clients.push(c);
      return c;
    },
    async close() {
      for (const c of clients) c.close();
      await server.close({ graceMs: 100 });
    },
  };
}

/** A port that was free a moment ago (for tests that must restart a server on the same port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolve after `ms`. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Wait until `cond()` holds, polling; fail after `ms`. */
export async function until(cond: () => boolean, ms = 2000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Expect a promise to reject with an RpcError of `code`; returns the error. */
export async function rejectsCode(p: Promise<unknown>, code: string): Promise<{ code: string; message: string; data?: unknown }> {
  try {
    await p;
  } catch (err) {
    const e = err as { code?: string; message: string };
    if (e.code !== code) throw new Error(`expected ${code}, got ${e.code}: ${e.message}`);
    return e as { code: string; message: string };
  }
  throw new Error(`expected rejection with ${code}, but it resolved`);
}
