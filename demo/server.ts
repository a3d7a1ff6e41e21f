// The demo game server: `npm start`. Rock-Paper-Scissors Arena over Volley.
// Players connect with ?token=<name>; the server pairs them, asks both for a move with
// a deadline (callMany), tells the match room each result, and keeps a leaderboard.

import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as otel from '@opentelemetry/api';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { createServer, RpcError, ErrorCode, type ClusterAdapter, type VolleyServer } from '../server/index.ts';
import type { ArenaClient, ArenaServer } from './api.ts';
import { Arena, LOBBY } from './arena.ts';
import { serveStatic } from './static.ts';

export interface DemoOptions {
  port?: number;
  host?: string;
  moveDeadlineMs?: number;
  rounds?: number;
  log?: (line: string) => void;
  /** Cluster adapter (demo/cluster.ts passes a RedisAdapter); default: this process alone. */
  adapter?: ClusterAdapter;
  /** Share the port with the other nodes (demo/cluster.ts, PORTS=shared). */
  reusePort?: boolean;
  /** The token /metrics and /monitor.json ask for; default VOLLEY_ROUTES_TOKEN, else a random one. */
  routesToken?: string;
}

export interface Demo {
  server: VolleyServer<ArenaServer, ArenaClient>;
  arena: Arena;
  /** The prom-client registry behind /metrics (Volley's metrics and Node's process metrics). */
  registry: Registry;
  /** What /metrics and /monitor.json ask for: `Authorization: Bearer <routesToken>`. */
  routesToken: string;
  port: number;
  close(): Promise<void>;
}

const NAME = /^[A-Za-z0-9_-]{1,24}$/;

export async function startDemo(opts: DemoOptions = {}): Promise<Demo> {
  const log = opts.log ?? (() => {});
  const arena = new Arena({ rounds: opts.rounds, moveDeadlineMs: opts.moveDeadlineMs, log });
  // Observability, all of it: metrics on /metrics, /health, the live page on /monitor, and
  // spans for every call (recorded once an OpenTelemetry SDK is registered in the process).
  // On the players' port, so behind a token: /metrics and the monitor's numbers are not for players.
  const routesToken = opts.routesToken ?? process.env.VOLLEY_ROUTES_TOKEN ?? randomBytes(18).toString('base64url');
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // prom-client's defaults include three gauges named like counters (nodejs_active_handles_total,
  // _requests_total, _resources_total), which `promtool check metrics` flags. They are the sums
  // of nodejs_active_handles, _requests and _resources (by type), which stay.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
    registry.removeSingleMetric(name);
  const server = createServer<ArenaServer, ArenaClient>({
    // Demo auth: the token is the player's name. A real game verifies a signed token here.
    authenticate: (req) => (req.token && NAME.test(req.token) ? req.token : null),
    handlers: {
      queue: (ctx) => ({ waiting: arena.enqueue(ctx.uid) }),
      leaveQueue: (ctx) => arena.dequeue(ctx.uid),
      leaderboard: (_ctx, limit = 10) => {
        if (typeof limit !== 'number' || !Number.isInteger(limit)) throw new RpcError(ErrorCode.INVALID_PARAMS, 'limit must be an integer');
        return arena.leaderboard.top(limit);
      },
      whoami: (ctx) => ({ uid: ctx.uid }),
      // A stream: the top now, then after every match, until the reader breaks out (its
      // signal fires) or leaves. Each reader waits on the next change: no timer, no polling.
      watchLeaderboard: async function* (ctx, limit = 10) {
        if (typeof limit !== 'number' || !Number.isInteger(limit)) throw new RpcError(ErrorCode.INVALID_PARAMS, 'limit must be an integer');
        while (!ctx.signal.aborted) {
          yield arena.leaderboard.top(limit);
          await arena.leaderboard.nextChange(ctx.signal);
        }
      },
    },
    onConnect: (uid, { resumed }) => {
      server.join(uid, LOBBY);
      log(`+ ${uid} ${resumed ? 'resumed' : 'connected'} (${server.connectionCount} online)`);
    },
    onDisconnect: (uid, code) => log(`~ ${uid} socket closed (${code}); session kept for resume`),
    onSessionEnd: (uid) => {
      arena.dequeue(uid);
      log(`- ${uid} left (${server.connectionCount} online)`);
    },
    onError: (err, ctx) => log(`! handler ${ctx?.method ?? 'authenticate'} failed: ${String(err)}`),
    http: serveStatic,
    adapter: opts.adapter,
    reusePort: opts.reusePort,
    observe: { registry, tracing: otel, routes: true, routesToken },
  });
  arena.server = server;
  const port = await server.listen(opts.port ?? 0, opts.host);
  return { server, arena, registry, routesToken, port, close: () => server.close() };
}

// Run as the main job: `npm start` (PORT picks the port, default 8080).
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const port = Number(process.env.PORT ?? 8080);
  const stamp = () => new Date().toISOString().slice(11, 19);
  const demo = await startDemo({ port, log: (line) => console.log(`${stamp()} ${line}`) });
  console.log(`Volley arena listening on http://localhost:${demo.port}/ (ws://localhost:${demo.port}/?token=<name>)`);
  console.log('Open that URL in a browser, or run `npm run bots` in another terminal.');
  console.log(`Monitor: http://localhost:${demo.port}/monitor#token=${demo.routesToken} · health: /health`);
  console.log(`Prometheus: curl -H 'Authorization: Bearer ${demo.routesToken}' http://localhost:${demo.port}/metrics (VOLLEY_ROUTES_TOKEN sets the token)`);
  const stop = async () => {
    console.log('shutting down…');
    await demo.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
