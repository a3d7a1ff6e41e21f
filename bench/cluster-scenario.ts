// Two-node bench scenario: players connected to node B, calls made on node A and
// forwarded through Redis, against the single-node figure (the same calls made on B).
// Both nodes and the load loop (the game's code making the calls) share this process; the
// players' clients run in a child process and Redis in its own, so this process's CPU is
// the nodes' CPU. The difference between the two runs is the cost of forwarding: latency,
// node CPU per call (both nodes, both directions) and Redis CPU per call. A third run, the
// Redis floor, makes the same round trips through Redis with nothing of Volley's per-call
// work (withRedisEcho): forwarding cannot cost less than that.
//
//   npx tsx bench/cluster-scenario.ts [--players 100] [--inflight 32] [--duration 5000] [--warmup 1000] [--redis URL] [--only local|forwarded|floor]
//
// The many-connections scenario (two node processes sharing one port) is
// bench/cluster-connections.ts.
//
// Without --redis it starts a redis-server of its own on a free port.

import { type ChildProcess } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { createServer, type VolleyServer } from '../server/index.ts';
import { RedisAdapter } from '../server/cluster/index.ts';
import { openRedis, spublishNow } from '../server/cluster/connection.ts';
import { Outbox } from '../server/cluster/outbox.ts';
import { REPLY, pack, unpackAll } from '../server/cluster/wire.ts';
import { startRedis, type RedisProcess } from '../test/redisServer.ts';
import { newHistogram, percentiles, type Percentiles } from './lib/histogram.ts';
import { delta, readRedis, type RedisReading } from './lib/redisStats.ts';
import { spawnReady } from './lib/procs.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

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
  /** Run one of the three only (to profile it alone). */
  only?: 'local' | 'forwarded' | 'floor';
}

export interface RunFigures {
  calls: number;
  errors: number;
  callsPerSec: number;
  latencyMs: Percentiles;
  /** CPU of this process (both nodes and the load loop; not the players) per call, µs. */
  processCpuUsPerCall: number;
  /** The kernel's part of it (system time: syscalls, loopback TCP), µs. */
  processSysUsPerCall: number;
  /** CPU of redis-server per call, µs (from INFO cpu). */
  redisCpuUsPerCall: number;
  /** SPUBLISH commands per call, both directions (1 / this × 2: calls per batch). */
  publishesPerCall: number;
}

export interface ClusterScenarioResult {
  players: number;
  inflight: number;
  durationMs: number;
  /** Caller on B, players on B: no Redis on the call path. */
  singleNode: RunFigures;
  /** Caller on A, players on B: every call forwarded through Redis and back. */
  forwarded: RunFigures;
  /**
   * The Redis crossing alone, the floor under what forwarding adds: the same load loop's
   * round trips through the adapter's own Redis clients, outbox batching and SPUBLISH, B
   * sending each batch straight back; no player, no call engine, nothing decoded on B.
   */
  redisFloor: RunFigures;
  /** What forwarding adds per call. */
  extraPerForwardedCall: { p50Ms: number; p99Ms: number; processCpuUs: number; redisCpuUs: number; throughputRatio: number };
  /**
   * Node CPU ratios to a local call: forwarded, and the least a forwarded call could be over
   * Redis (local + the floor's round trip; the floor also pays the load loop's share of a
   * call, a µs or two, so this bound is slightly high).
   */
  ratios: { forwarded: number; localPlusFloor: number };
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
  let players$: ChildProcess | undefined;
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
    players$ = await spawnPlayers(B.port, players);
    const run = (call: Caller) => measure(call, uids, inflight, durationMs, warmupMs, maxCalls, info);
    const skip = async (): Promise<RunFigures> => ({ calls: 0, errors: 0, callsPerSec: 0, latencyMs: percentiles(newHistogram()), processCpuUsPerCall: 0, processSysUsPerCall: 0, redisCpuUsPerCall: 0, publishesPerCall: 0 });
    const wanted = (which: typeof opts.only) => opts.only === undefined || opts.only === which;
    const singleNode = wanted('local') ? await run((uid, n) => B.call(uid, 'echo', [n])) : await skip();
    const forwarded = wanted('forwarded') ? await run((uid, n) => A.call(uid, 'echo', [n])) : await skip();
    // The floor at the forwarded run's batch size (calls per SPUBLISH each way): without a
    // player in the loop its round trips are faster, and at 32 in flight it would batch all
    // 32 in each SPUBLISH, a cheaper crossing per call than forwarding ever gets.
    const perBatch = forwarded.publishesPerCall > 0 ? Math.max(1, Math.round(2 / forwarded.publishesPerCall)) : inflight;
    const floor = (call: Caller) => measure(call, uids, Math.min(inflight, perBatch), durationMs, warmupMs, maxCalls, info);
    const redisFloor = wanted('floor') ? await withRedisEcho(redisUrl, prefix, warmupMs + durationMs + 5000, floor) : await skip();
    const round = (n: number) => Math.round(n * 1000) / 1000;
    return {
      players,
      inflight,
      durationMs,
      singleNode,
      forwarded,
      redisFloor,
      extraPerForwardedCall: {
        p50Ms: round(forwarded.latencyMs.p50 - singleNode.latencyMs.p50),
        p99Ms: round(forwarded.latencyMs.p99 - singleNode.latencyMs.p99),
        processCpuUs: round(forwarded.processCpuUsPerCall - singleNode.processCpuUsPerCall),
        redisCpuUs: round(forwarded.redisCpuUsPerCall - singleNode.redisCpuUsPerCall),
        throughputRatio: round(forwarded.callsPerSec / singleNode.callsPerSec),
      },
      ratios: {
        forwarded: round(forwarded.processCpuUsPerCall / singleNode.processCpuUsPerCall),
        localPlusFloor: round((singleNode.processCpuUsPerCall + redisFloor.processCpuUsPerCall) / singleNode.processCpuUsPerCall),
      },
    };
  } finally {
    players$?.kill('SIGKILL');
    await Promise.all(nodes.map((n) => n.close({ graceMs: 100 })));
    info.disconnect();
    await own?.stop();
  }
}

type Caller = (uid: string, n: number) => Promise<unknown>;

/** `inflight` loops calling players round-robin; only calls that start after the warmup count. */
async function measure(
  call: Caller,
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
  let redis0: RedisReading | undefined;
  let t0 = 0;
  const warm = new Promise<void>((resolve) =>
    setTimeout(async () => {
      redis0 = await readRedis(info);
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
        await call(uid, next);
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
  const redis = delta(redis0!, await readRedis(info));
  const perCall = (us: number) => (calls > 0 ? Math.round((us / calls) * 10) / 10 : 0);
  return {
    calls,
    errors,
    callsPerSec: Math.round((calls / elapsedMs) * 1000),
    latencyMs: percentiles(hist),
    processCpuUsPerCall: perCall(cpu.user + cpu.system),
    processSysUsPerCall: perCall(cpu.system),
    redisCpuUsPerCall: perCall(redis.cpuUs),
    publishesPerCall: calls > 0 ? Math.round(((redis.calls.spublish ?? 0) / calls) * 1000) / 1000 : 0,
  };
}

/**
 * Run `run` over round trips through Redis alone: A's outbox publishes each call as a
 * REPLY-shaped message on B's channel (the adapter's clients, batching and spublishNow), B
 * publishes every batch it gets straight back, A decodes and settles. What a forwarded call
 * cannot cost less than, whatever Volley does per call.
 */
async function withRedisEcho(redisUrl: string, prefix: string, giveUpAfterMs: number, run: (call: Caller) => Promise<RunFigures>): Promise<RunFigures> {
  const clients = [openRedis(redisUrl, 'floor-a'), openRedis(redisUrl, 'floor-a-sub', true), openRedis(redisUrl, 'floor-b'), openRedis(redisUrl, 'floor-b-sub', true)];
  const [aCmd, aSub, bCmd, bSub] = clients as [Redis, Redis, Redis, Redis];
  let giveUp: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.all(clients.map((c) => c.connect()));
    const toA = `${prefix}floor:{a}`;
    const toB = `${prefix}floor:{b}`;
    await Promise.all([aSub.ssubscribe(toA), bSub.ssubscribe(toB)]);
    const outA = new Outbox((_node, bytes) => spublishNow(aCmd, toB, bytes));
    const outB = new Outbox((_node, bytes) => spublishNow(bCmd, toA, bytes));
    bSub.on('smessageBuffer', (_channel: Buffer, batch: Buffer) => outB.push('a', batch));
    const waiting = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>();
    // No deadline per round trip (a timer each would be part of the floor): once the run is
    // long over, whatever still waits (a message lost with a dropped link) fails, so the
    // load loops end and the run reports it as errors instead of hanging.
    let givenUp = false;
    giveUp = setTimeout(() => {
      givenUp = true;
      for (const w of waiting.values()) w.reject(new Error('no echo'));
      waiting.clear();
    }, giveUpAfterMs);
    aSub.on('smessageBuffer', (_channel: Buffer, batch: Buffer) => {
      for (const m of unpackAll(batch)) {
        const w = waiting.get(m[1] as number);
        waiting.delete(m[1] as number);
        w?.resolve(m[3]);
      }
    });
    let id = 0;
    return await run(
      (_uid, n) =>
        new Promise((resolve, reject) => {
          if (givenUp) return reject(new Error('no echo'));
          const i = id++;
          waiting.set(i, { resolve, reject });
          outA.push('b', pack([REPLY, i, null, n]));
        }),
    );
  } finally {
    clearTimeout(giveUp);
    for (const c of clients) c.disconnect();
  }
}

/** Volley clients p0..p{count-1} on node B, answering `echo`, in a process of their own. */
function spawnPlayers(port: number, count: number): Promise<ChildProcess> {
  const code = `
    const { connect } = await import(${JSON.stringify(pathToFileURL(`${root}client/index.ts`).href)});
    const { default: WebSocket } = await import('ws');
    for (let i = 0; i < ${count}; i++) {
      await connect('ws://127.0.0.1:${port}/', {
        token: 'p' + i, WebSocket, reconnect: false,
        handlers: { echo: (_ctx, n) => n },
      });
    }
    console.log('READY');
  `;
  return spawnReady(['--import', 'tsx', '--input-type=module', '-e', code]);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      players: { type: 'string' },
      inflight: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      redis: { type: 'string' },
      only: { type: 'string' },
    },
  });
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const result = await runClusterScenario({
    players: num(values.players),
    inflight: num(values.inflight),
    durationMs: num(values.duration),
    warmupMs: num(values.warmup),
    redisUrl: values.redis,
    only: values.only as ClusterScenarioOptions['only'],
  });
  console.log(JSON.stringify(result, null, 2));
  process.exit(0);
}
