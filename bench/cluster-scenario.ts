// Two-node bench scenario: players connected to node B, calls made on node A and
// forwarded through Redis, against the single-node figure (the same calls made on B).
// Both nodes, the players' ws clients and the load loop share this process; Redis runs
// in its own. The difference between the two runs is the cost of forwarding: latency,
// node CPU per call (both nodes, both directions) and Redis CPU per call.
//
//   npx tsx bench/cluster-scenario.ts [--players 100] [--inflight 32] [--duration 5000] [--warmup 1000] [--redis URL]
//
// Without --redis it starts a redis-server of its own on a free port.

import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { Redis } from 'ioredis';
import { connect, type VolleyClient } from '../client/index.ts';
import { createServer, type VolleyServer } from '../server/index.ts';
import { RedisAdapter } from '../server/cluster/index.ts';
import { startRedis, type RedisProcess } from '../test/redisServer.ts';
import { newHistogram, percentiles, type Percentiles } from './lib/histogram.ts';

export interface ClusterScenarioOptions {
  /** Players connected to node B. Default 100. */
  players?: number;
  /** Calls in flight at once (spread over the players). Default 32. */
  inflight?: number;
  durationMs?: number;
  warmupMs?: number;
  /** A Redis to use; default: start a redis-server on a free port. */
  redisUrl?: string;
  /** Hard cap on calls per run, so a run is bounded in count as well as time. */
  maxCalls?: number;
}

export interface RunFigures {
  calls: number;
  errors: number;
  callsPerSec: number;
  latencyMs: Percentiles;
  /** CPU of this process (both nodes, the clients, the load loop) per call, µs. */
  processCpuUsPerCall: number;
  /** CPU of redis-server per call, µs (from INFO cpu). */
  redisCpuUsPerCall: number;
}

export interface ClusterScenarioResult {
  players: number;
  inflight: number;
  durationMs: number;
  /** Caller on B, players on B: no Redis on the call path. */
  singleNode: RunFigures;
  /** Caller on A, players on B: every call forwarded through Redis and back. */
  forwarded: RunFigures;
  /** What forwarding adds per call. */
  extraPerForwardedCall: { p50Ms: number; p99Ms: number; processCpuUs: number; redisCpuUs: number; throughputRatio: number };
}

export async function runClusterScenario(opts: ClusterScenarioOptions = {}): Promise<ClusterScenarioResult> {
  const players = opts.players ?? 100;
  const inflight = opts.inflight ?? 32;
  const durationMs = opts.durationMs ?? 5000;
  const warmupMs = opts.warmupMs ?? 1000;
  const maxCalls = opts.maxCalls ?? 5_000_000;
  let own: RedisProcess | undefined;
  const redisUrl = opts.redisUrl ?? (own = await startRedis()).url;
  const prefix = `bench${process.pid}:`;
  const info = new Redis(redisUrl);
  const nodes: VolleyServer[] = [];
  const clients: VolleyClient[] = [];
  try {
    const node = async () => {
      const server = createServer({
        authenticate: (req) => req.token ?? null,
        handlers: {},
        adapter: new RedisAdapter({ redis: redisUrl, prefix }),
      });
      await server.listen(0, '127.0.0.1');
      nodes.push(server);
      return server;
    };
    const A = await node();
    const B = await node();
    const uids = Array.from({ length: players }, (_, i) => `p${i}`);
    for (const uid of uids) {
      clients.push(
        await connect(`ws://127.0.0.1:${B.port}/`, {
          token: uid,
          WebSocket: WebSocket as never,
          reconnect: false,
          handlers: { echo: (_ctx: unknown, n: number) => n },
        }),
      );
    }
    const run = (caller: VolleyServer) => measure(caller, uids, inflight, durationMs, warmupMs, maxCalls, info);
    const singleNode = await run(B);
    const forwarded = await run(A);
    const round = (n: number) => Math.round(n * 1000) / 1000;
    return {
      players,
      inflight,
      durationMs,
      singleNode,
      forwarded,
      extraPerForwardedCall: {
        p50Ms: round(forwarded.latencyMs.p50 - singleNode.latencyMs.p50),
        p99Ms: round(forwarded.latencyMs.p99 - singleNode.latencyMs.p99),
        processCpuUs: round(forwarded.processCpuUsPerCall - singleNode.processCpuUsPerCall),
        redisCpuUs: round(forwarded.redisCpuUsPerCall - singleNode.redisCpuUsPerCall),
        throughputRatio: round(forwarded.callsPerSec / singleNode.callsPerSec),
      },
    };
  } finally {
    for (const c of clients) c.close();
    await Promise.all(nodes.map((n) => n.close({ graceMs: 100 })));
    info.disconnect();
    await own?.stop();
  }
}

/** `inflight` loops calling players round-robin; only calls that start after the warmup count. */
async function measure(
  caller: VolleyServer,
  uids: string[],
  inflight: number,
  durationMs: number,
  warmupMs: number,
  maxCalls: number,
  info: Redis,
): Promise<RunFigures> {
  const hist = newHistogram();
  let calls = 0;
  let errors = 0;
  let next = 0;
  let measuring = false;
  const start = Date.now();
  const stopAt = start + warmupMs + durationMs;
  let cpu0 = process.cpuUsage();
  let redis0 = 0;
  let t0 = 0;
  const warm = new Promise<void>((resolve) =>
    setTimeout(async () => {
      redis0 = await redisCpuUs(info);
      cpu0 = process.cpuUsage();
      t0 = performance.now();
      measuring = true;
      resolve();
    }, warmupMs),
  );
  const loop = async () => {
    while (Date.now() < stopAt && calls < maxCalls) {
      const uid = uids[next++ % uids.length]!;
      const counted = measuring;
      const began = performance.now();
      try {
        await caller.call(uid, 'echo', [next]);
        if (counted) {
          hist.recordValue(Math.max(1, Math.round((performance.now() - began) * 1000)));
          calls++;
        }
      } catch {
        if (counted) errors++;
      }
    }
  };
  await Promise.all([warm, ...Array.from({ length: inflight }, loop)]);
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const redisUs = (await redisCpuUs(info)) - redis0;
  const perCall = (us: number) => (calls > 0 ? Math.round((us / calls) * 10) / 10 : 0);
  return {
    calls,
    errors,
    callsPerSec: Math.round((calls / elapsedMs) * 1000),
    latencyMs: percentiles(hist),
    processCpuUsPerCall: perCall(cpu.user + cpu.system),
    redisCpuUsPerCall: perCall(redisUs),
  };
}

/** redis-server's CPU time so far (user + sys), µs. */
async function redisCpuUs(redis: Redis): Promise<number> {
  const text = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(text)?.[1] ?? 0);
  return Math.round((field('used_cpu_user') + field('used_cpu_sys')) * 1e6);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      players: { type: 'string' },
      inflight: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      redis: { type: 'string' },
    },
  });
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const result = await runClusterScenario({
    players: num(values.players),
    inflight: num(values.inflight),
    durationMs: num(values.duration),
    warmupMs: num(values.warmup),
    redisUrl: values.redis,
  });
  console.log(JSON.stringify(result, null, 2));
  process.exit(0);
}
