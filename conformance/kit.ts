// The conformance server: Volley servers with the kit's handlers, behind the recording
// proxy, plus the HTTP control routes. One port for everything (see README.md).

import type http from 'node:http';
import { createServer, type ServerOptions, type VolleyServer } from '../server/index.ts';
import { kitHandlers } from './handlers.ts';
import { RecordingProxy, type DownMode } from './proxy.ts';
import type { KitState } from './state.ts';
import { judge } from './verdicts.ts';
import { messagesOf } from './wireLog.ts';
import { toHex } from './msgpackWalk.ts';

/**
 * Inner servers by the first segment of the path. Each case says which one it uses;
 * they differ in one setting each, so a case can reach that limit quickly.
 */
const FLAVOURS: Record<string, Partial<ServerOptions<any, any>>> = {
  '': {},
  reject: { duplicateLogin: 'reject' },
  fast: { heartbeatMs: 200 },
  slow: { backpressure: { softBytes: 128 * 1024, hardBytes: 512 * 1024 } },
  flood: { rateLimit: { ratePerSec: 20, burst: 20 } },
  tight: { limits: { maxDepth: 8 } },
  short: { resumeWindowMs: 300 },
  // Shut down by POST /kit/shutdown, then replaced by a fresh one (case 1.9).
  doomed: {},
};

/**
 * What the proxy does to the server's stream by the first segment of the path (the inner
 * server is the default one unless FLAVOURS names it too): kit server modes that catch
 * what a well-timed server never shows.
 */
const MODES: Record<string, DownMode> = {
  // `$session` 300 ms after the 101, the server's `$ack` 300 ms after that (it comes in the
  // same frame): a client that sends before `$session` (case 1.1), or reliable messages on
  // a resumed socket before the server's `$ack` (case 9.14), shows it.
  late: { holdSessionMs: 300, holdAckMs: 300 },
  // A `$session` from a later version: a feature, a field and a limit the client does not know (case 1.10).
  future: {
    session: (info) => ({
      ...info,
      features: ['x-kit-future'],
      zFuture: { since: '1.1', list: [1, 'two'] },
      limits: { ...(info.limits as Record<string, unknown>), maxFutureThings: 7 },
    }),
  },
};

export interface Kit {
  port: number;
  state: KitState;
  close(): Promise<void>;
}

export async function startKit(port = 0, host = '127.0.0.1'): Promise<Kit> {
  const ports = new Map<string, number>();
  const route = (path: string) => ports.get(path.split('/')[1] ?? '') ?? ports.get('')!;
  const state = { servers: new Map(), runs: new Map(), cancelled: new Map(), notes: new Map(), aborted: new Map() } as unknown as KitState;
  const handlers = kitHandlers(state);
  const start = async (name: string) => {
    const server: VolleyServer = createServer({
      // token = uid; a token starting "bad" is refused (401).
      authenticate: (req) => (req.token && !req.token.startsWith('bad') ? req.token : null),
      handlers,
      onError: () => {}, // handlers that throw on purpose (internalError) are expected here
      ...FLAVOURS[name],
    });
    ports.set(name, await server.listen(0, '127.0.0.1'));
    state.servers.set(name, server);
  };
  /** Close one inner server (its grace period as SPEC §6 says), then put a fresh one in its place. */
  const shutdown = (name: string, graceMs: number) => {
    const server = state.servers.get(name);
    if (!server) return false;
    void server.close({ graceMs }).then(() => start(name));
    return true;
  };
  state.proxy = new RecordingProxy(route, (req, res) => control(state, req, res, shutdown), (path) => MODES[path.split('/')[1] ?? '']);
  for (const name of Object.keys(FLAVOURS)) await start(name);
  await new Promise<void>((resolve) => state.proxy.http.listen(port, host, resolve));
  const bound = (state.proxy.http.address() as { port: number }).port;
  return {
    port: bound,
    state,
    async close() {
      state.proxy.close();
      await Promise.all([...state.servers.values()].map((s) => s.close({ graceMs: 50 })));
    },
  };
}

/** HTTP control routes (README.md, "Control"). */
async function control(
  kit: KitState,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  shutdown: (name: string, graceMs: number) => boolean,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://kit');
  const q = url.searchParams;
  const uid = q.get('uid') ?? '';
  const send = (status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const route = `${req.method} ${url.pathname}`;
  switch (route) {
    case 'GET /kit/counters': {
      const obj = (m: Map<string, number>) => Object.fromEntries(m);
      let pendingIncoming = 0;
      let pendingOutgoing = 0;
      const sessions: string[] = [];
      for (const s of kit.servers.values()) {
        const st = s.stats();
        pendingIncoming += st.pendingIncoming;
        pendingOutgoing += st.pendingOutgoing;
        sessions.push(...s.uids());
      }
      return send(200, {
        runs: obj(kit.runs), cancelled: obj(kit.cancelled), notes: obj(kit.notes), aborted: obj(kit.aborted),
        sessions, pending: { incoming: pendingIncoming, outgoing: pendingOutgoing },
        sockets: uid ? kit.proxy.wiresOf(uid).map((w) => ({ status: w.status, ended: w.ended, clientClose: w.clientClose ?? null, serverClose: w.serverClose ?? null, resumeSid: w.query.get('sid') })) : undefined,
      });
    }
    case 'POST /kit/drop':
      return send(200, { dropped: kit.proxy.drop(uid, Number(q.get('refuseMs') ?? 0), Number(q.get('code') ?? 0)) });
    case 'POST /kit/stall':
      return send(200, { stalled: kit.proxy.stall(uid, Number(q.get('ms') ?? 0), q.get('dir') === 'up' ? 'up' : 'down') });
    case 'POST /kit/inject':
      return send(200, { injected: kit.proxy.inject(uid, Buffer.from(q.get('hex') ?? '', 'hex'), Number(q.get('opcode') ?? 2)) });
    case 'POST /kit/shutdown':
      return send(200, { closing: shutdown(q.get('path') ?? 'doomed', Number(q.get('graceMs') ?? 2000)) });
    case 'GET /kit/verdict':
      return send(200, await judge(kit, uid, q.get('case') ?? ''));
    case 'GET /kit/frames':
      return send(
        200,
        kit.proxy.wiresOf(uid).map((w) => ({
          socket: w.id, status: w.status, clientClose: w.clientClose ?? null, serverClose: w.serverClose ?? null,
          messages: messagesOf(w).map((m) => ({ seq: m.seq, dir: m.dir, hex: toHex(m.bytes).slice(0, 400) })),
        })),
      );
    default:
      return send(404, { error: `no route ${route}` });
  }
}
