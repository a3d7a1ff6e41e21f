// cluster-tick: the game-tick load (bench/gameTick.ts: rooms of 8, each room's state 20
// times a second, 5 inputs and 1 call per player a second, the server calling each player
// every 10 s) on a Volley cluster: N nodes, each its own process (servers/cluster-node.ts),
// over one redis-server, a Redis Cluster (three primaries, three replicas) or nothing
// (`none`: each node alone, no adapter: what the same players cost without the cluster),
// the players real Volley clients in worker processes (clients/worker.ts). One more node
// holds no players (the idle node): what a node pays for the others' traffic.
//
//   npx tsx bench/cluster-tick.ts [--nodes 2,4,6] [--redis single,cluster,none] [--placement room,spread]
//        [--players 800 | --per-node 128] [--rounds 1] [--duration 10000] [--warmup 3000] [--volley DIR]
//
// Per run: node CPU per player-second (each node's own process.cpuUsage()), the idle node's
// CPU and the room messages it received, Redis CPU, commands and bytes per player-second
// (INFO deltas, summed over the shards of a cluster), and whether the load was carried.
// Loopback only; the players' clients and every Redis share the machine with the nodes.
// Writes bench/results/cluster-tick-<time>.{json,md} and prints the Markdown.

import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { request } from './lib/ipc.ts';
import { mergeHistograms, percentiles, type Percentiles } from './lib/histogram.ts';
import { buildDist, connectWorkers, loadBackstopMs, round, sleep, spawn, split, stopChild, type Stopped } from './lib/procs.ts';
import { block, plan, type Placement, type Plan } from './lib/clusterPlan.ts';
import { delta, readRedis, sum, type RedisReading } from './lib/redisStats.ts';
import { measureUnitCosts, type UnitCost } from './lib/redisUnitCosts.ts';
import type { NodeConfig } from './servers/cluster-node.ts';
import type { SystemName } from './clients/systems.ts';
import { startRedis } from '../test/redisServer.ts';
import { startRedisCluster } from '../test/redisCluster.ts';

/** `none`: each node alone, no adapter (the same players per node, without the cluster's cost). */
export type RedisKind = 'single' | 'cluster' | 'none';

export interface ClusterTickOptions {
  nodes: number[];
  redis: RedisKind[];
  placements: Placement[];
  /** Each run this many times; the rounds interleave (every N and placement once per round). */
  rounds: number;
  /** Players in all, whatever the number of nodes… */
  players: number;
  /** …or this many per node (whole rooms): every node the same size whatever their number. */
  perNode?: number;
  roomSize: number;
  /** Client processes holding the players. */
  workers: number;
  warmupMs: number;
  durationMs: number;
  /** A checkout whose dist/ the nodes and clients run (its tsc build is made first); default this one. */
  volley?: string;
  /** Build dist/ first (off: use what is there). */
  build: boolean;
  out: string;
  /** Run the node processes under `node --cpu-prof`, one folder per node and run here. */
  cpuProf?: string;
  /** Also measure Redis' CPU per SPUBLISH and per refreshed key at these rates (lib/redisUnitCosts.ts). */
  unitCostRates: number[];
}

/** A node's snapshot (servers/cluster-node.ts `snap`). */
interface NodeSnap {
  t: number;
  cpuUs: number;
  rss: number;
  players: number;
  presence: number;
  connected: boolean;
  roomSubscriptions: number | null;
  received: { node: number; room: number } | null;
  redisErrors: number;
  firstRedisError?: string;
  game: { ticks: number; inputs: number; acts: number; calls: number; callsOk: number; callsFailed: number };
}

export interface RunFigures {
  redis: RedisKind;
  round: number;
  nodes: number;
  placement: Placement;
  players: number;
  /** The measured window, s. */
  seconds: number;
  /** Node CPU µs per player-second: all player nodes together, and each node's own. */
  nodeCpuUsPerPlayerSec: number;
  perNodeCpuUsPerPlayerSec: number[];
  /** Room messages (from Redis) the player nodes received, per second, all together; null: the adapter does not count them. */
  nodesRoomMessagesPerSec: number | null;
  /** With `--redis none`, a Volley process with no adapter and no players: the baseline. */
  idleNode: { cpuUsPerSec: number; roomMessages: number | null; nodeMessages: number | null; roomSubscriptions: number | null };
  redisServer: null | {
    /** Primaries (the shards; the one redis-server on single). */
    shards: number;
    /** Less what the same processes burn with no node attached (idleCpuUsPerSec, over the window). */
    cpuUsPerPlayerSec: number;
    /** All of it. */
    rawCpuUsPerPlayerSec: number;
    /** The primaries' CPU with no node attached, µs per second (timers; a cluster's gossip), measured before the runs. */
    idleCpuUsPerSec: number;
    commandsPerPlayerSec: number;
    bytesInPerPlayerSec: number;
    bytesOutPerPlayerSec: number;
    /** Per command name, per player-second (commands run inside scripts included). */
    perCommand: Record<string, number>;
    /** Redis Cluster: the replicas' CPU (less their idle), and the replication stream the primaries sent. */
    replicaCpuUsPerPlayerSec?: number;
    replicationBytesPerPlayerSec?: number;
  };
  game: {
    keptUp: number;
    behind?: string;
    ticks: number;
    states: number;
    expectedStates: number;
    serverCallsOk: number;
    serverCallsFailed: number;
    acts: number;
    inputs: number;
  };
  /** Room state, send to receipt (one-way, the processes' shared monotonic clock). */
  stateLatencyMs: Percentiles;
  errors: number;
  firstError?: string;
  /** Redis trouble the nodes' adapters reported in the window (onError), and the first one. */
  redisErrors: number;
  firstRedisError?: string;
  loadAvg1m: number;
  wallMs: number;
}

/** A Redis under test: what the nodes connect to, and one plain connection per process for INFO. */
interface RedisUnderTest {
  kind: RedisKind;
  adapter: { redis?: string; cluster?: { host: string; port: number }[] };
  info: Redis[];
  /** Primaries' and replicas' CPU with nothing attached, µs/s. */
  idle: { primaries: number; replicas: number };
  stop(): Promise<void>;
}

const GRACE_MS = 300;
/** Below this many expected events in the window a stream is too small to judge keeping up. */
const MIN_EXPECTED = 50;

async function startRedisUnderTest(kind: RedisKind): Promise<RedisUnderTest> {
  let r: Omit<RedisUnderTest, 'idle'>;
  if (kind === 'none') return { kind, adapter: {}, info: [], idle: { primaries: 0, replicas: 0 }, stop: async () => {} };
  if (kind === 'single') {
    const one = await startRedis();
    r = { kind, adapter: { redis: one.url }, info: [new Redis(one.url)], stop: () => one.stop() };
  } else {
    const c = await startRedisCluster();
    if (!c) throw new Error('Redis Cluster needs redis-server and redis-cli on PATH');
    r = { kind, adapter: { cluster: c.nodes }, info: c.urls.map((u) => new Redis(u)), stop: () => c.stop() };
  }
  const stop = r.stop;
  r.stop = async () => {
    for (const i of r.info) i.disconnect();
    await stop();
  };
  // What the processes cost with no node attached (a Redis Cluster gossips on its bus).
  const a = await readAll(r.info);
  const t0 = performance.now();
  await sleep(2000);
  const d = diffAll(a, await readAll(r.info));
  const s = (performance.now() - t0) / 1000;
  const idle = {
    primaries: round(sum(d.filter((x) => x.role === 'master')).cpuUs / s),
    replicas: round(sum(d.filter((x) => x.role === 'slave')).cpuUs / s),
  };
  return { ...r, idle };
}

const readAll = (conns: Redis[]) => Promise.all(conns.map(readRedis));
const diffAll = (a: RedisReading[], b: RedisReading[]) => a.map((x, i) => delta(x, b[i]!));

export async function runClusterTick(
  o: ClusterTickOptions,
  redis: RedisUnderTest,
  nodeCount: number,
  placement: Placement,
  roundNo: number,
  runNo: number,
): Promise<RunFigures> {
  const started = Date.now();
  const loadAvg1m = round(os.loadavg()[0]!, 2);
  const p: Plan = plan(o.perNode ? o.perNode * nodeCount : o.players, o.roomSize, nodeCount, placement);
  const prefix = `ct${process.pid}r${runNo}:`;
  const system: SystemName = o.volley ? 'volley-base' : 'volley';
  const env = { VOLLEY_TRANSPORT: 'uws', BENCH_VOLLEY_FROM: o.volley ?? '' };
  if (redis.kind === 'none' && placement !== 'room') throw new Error('--redis none: each node alone, so rooms can only be placed whole (room)');
  // The player nodes, then the idle node (index -1) last (with `none`, a bare process: the baseline).
  const indexes = [...Array.from({ length: nodeCount }, (_, k) => k), -1];
  const nodes = indexes.map((index) => {
    const cfg: NodeConfig = { index, plan: p, ...redis.adapter, prefix };
    const name = `${redis.kind}-${nodeCount}-${placement}-r${roundNo}-node${index < 0 ? '-idle' : index}`;
    // V8's memory reducer collects garbage once a process looks idle, ~8 s after start: it
    // landed in the idle node's window in 4 of 5 runs (3.9–17.4 ms/s, 0.2 without it). A
    // one-off after start, not what a node pays per second.
    return spawn('servers/cluster-node.ts', { ...env, CLUSTER_NODE: JSON.stringify(cfg) }, o.cpuProf, name, ['--no-memory-reducer']);
  });
  const busy = nodes.slice(0, nodeCount);
  const workers: ChildProcess[] = [];
  const snapAll = () => Promise.all(nodes.map((n) => request<NodeSnap>(n, 'snap')));
  try {
    const listened = await Promise.all(nodes.map((n) => request<{ port: number }>(n, 'listen', {}, 60_000)));
    // Each node's block of players, through the same client processes.
    let failed = 0;
    let firstError: string | undefined;
    const counts = busy.map((_, k) => block(p, k));
    for (const [k, { first, count }] of counts.entries()) {
      if (count === 0) continue;
      const c = await connectWorkers(system, listened[k]!.port, split(count, Math.min(o.workers, count)), false, workers, undefined, first);
      failed += c.failed;
      firstError ??= c.firstError;
    }
    // Every player seated and known to Redis before the load starts.
    const seatedBy = Date.now() + 20_000;
    for (;;) {
      const s = await snapAll();
      if (counts.every(({ count }, k) => s[k]!.players === count && s[k]!.presence === count)) break;
      if (Date.now() > seatedBy) throw new Error(`players not all seated: ${s.map((x) => `${x.players}/${x.presence}`).join(' ')}; ${firstError ?? ''}`);
      await sleep(200);
    }
    await sleep(1000); // room joins and subscriptions land in Redis

    const maxMs = loadBackstopMs(o.warmupMs, o.durationMs);
    await Promise.all(workers.map((w) => request(w, 'load', { scenario: 'game-tick', inflight: 1, payloadBytes: 0, maxMs, rate: 0 })));
    const epochMs = Date.now() + 50;
    await Promise.all(nodes.map((n) => request(n, 'drive', { epochMs, maxMs })));
    await sleep(o.warmupMs);

    // The players' clients first: a busy one answers late, and its mark only resets what it counts
    // by tick (states) or needs no precise edge (latency, acts). The nodes' and Redis' window
    // is between their own readings, taken together.
    await Promise.all(workers.map((w) => request(w, 'mark')));
    const t0 = performance.now();
    const [s0, r0] = await Promise.all([snapAll(), readAll(redis.info)]);
    await sleep(o.durationMs);
    const t1 = performance.now();
    const [s1, r1] = await Promise.all([snapAll(), readAll(redis.info)]);
    const seconds = (t1 - t0) / 1000;
    await sleep(GRACE_MS); // the last tick's states are on their way
    // Ticks every node had sent by each mark: the players count the states of those.
    const ticks = [Math.min(...s0.slice(0, nodeCount).map((s) => s.game.ticks)), Math.min(...s1.slice(0, nodeCount).map((s) => s.game.ticks))];
    const stops = await Promise.all(workers.map((w) => request<Stopped>(w, 'stop', { ticks })));
    const nodeStops = await Promise.all(busy.map((n) => request<{ errors: number }>(n, 'stop')));

    // ---- figures ----
    const players = s1.slice(0, nodeCount).reduce((a, s) => a + s.players, 0);
    const playerSec = players * seconds;
    const perNode = busy.map((_, k) => {
      const sec = (s1[k]!.t - s0[k]!.t) / 1000;
      return (s1[k]!.cpuUs - s0[k]!.cpuUs) / (s1[k]!.players * sec);
    });
    const busyCpu = busy.reduce((a, _, k) => a + s1[k]!.cpuUs - s0[k]!.cpuUs, 0);
    const busySec = busy.reduce((a, _, k) => a + (s1[k]!.players * (s1[k]!.t - s0[k]!.t)) / 1000, 0);
    const sumGame = (f: keyof NodeSnap['game']) => busy.reduce((a, _, k) => a + s1[k]!.game[f] - s0[k]!.game[f], 0);
    const received = (k: number, f: 'room' | 'node') => (s1[k]!.received && s0[k]!.received ? s1[k]!.received![f] - s0[k]!.received![f] : null);
    const busyRoom = busy.map((_, k) => received(k, 'room'));

    const d = diffAll(r0, r1);
    const primaries = sum(d.filter((x) => x.role === 'master'));
    const replicas = d.filter((x) => x.role === 'slave');
    const perPs = (v: number, digits = 2) => round(v / playerSec, digits);
    const perCommand: Record<string, number> = {};
    for (const [name, n] of Object.entries(primaries.calls).sort((a, b) => b[1] - a[1])) perCommand[name] = perPs(n, 3);

    const ticksSent = ticks[1]! - ticks[0]!;
    const states = stops.reduce((a, s) => a + s.states, 0);
    const streams: [string, number, number][] = [
      ['states', states, players * ticksSent],
      ['acts', sumGame('acts'), players * seconds],
      ['server calls', sumGame('callsOk'), (players * seconds * 1000) / 10_000],
    ];
    const shares = streams
      .filter(([, , expected]) => expected >= MIN_EXPECTED)
      .map(([name, got, expected]) => ({ name, share: Math.min(1, got / expected) }))
      .sort((a, b) => a.share - b.share);
    return {
      redis: redis.kind,
      round: roundNo,
      nodes: nodeCount,
      placement,
      players,
      seconds: round(seconds, 2),
      nodeCpuUsPerPlayerSec: round(busyCpu / busySec, 1),
      perNodeCpuUsPerPlayerSec: perNode.map((v) => round(v, 1)),
      nodesRoomMessagesPerSec: busyRoom.every((v) => v !== null) ? round((busyRoom as number[]).reduce((a, v) => a + v, 0) / seconds) : null,
      idleNode: {
        cpuUsPerSec: round(((s1[nodeCount]!.cpuUs - s0[nodeCount]!.cpuUs) * 1000) / (s1[nodeCount]!.t - s0[nodeCount]!.t)),
        roomMessages: received(nodeCount, 'room'),
        nodeMessages: received(nodeCount, 'node'),
        roomSubscriptions: s1[nodeCount]!.roomSubscriptions,
      },
      redisServer: redis.kind === 'none' ? null : {
        shards: d.filter((x) => x.role === 'master').length,
        cpuUsPerPlayerSec: perPs(primaries.cpuUs - redis.idle.primaries * seconds),
        rawCpuUsPerPlayerSec: perPs(primaries.cpuUs),
        idleCpuUsPerSec: redis.idle.primaries,
        commandsPerPlayerSec: perPs(primaries.commands, 3),
        bytesInPerPlayerSec: perPs(primaries.netIn, 1),
        bytesOutPerPlayerSec: perPs(primaries.netOut, 1),
        perCommand,
        ...(replicas.length
          ? { replicaCpuUsPerPlayerSec: perPs(sum(replicas).cpuUs - redis.idle.replicas * seconds), replicationBytesPerPlayerSec: perPs(primaries.replOut, 1) }
          : {}),
      },
      game: {
        keptUp: shares.length ? round(shares[0]!.share, 3) : 0,
        behind: shares.length && shares[0]!.share < 0.95 ? shares[0]!.name : undefined,
        ticks: ticksSent,
        states,
        expectedStates: players * ticksSent,
        serverCallsOk: sumGame('callsOk'),
        serverCallsFailed: sumGame('callsFailed'),
        acts: sumGame('acts'),
        inputs: sumGame('inputs'),
      },
      stateLatencyMs: percentiles(mergeHistograms(stops.map((s) => s.hist))),
      errors: failed + stops.reduce((a, s) => a + s.errors, 0) + nodeStops.reduce((a, s) => a + s.errors, 0),
      firstError: firstError ?? stops.find((s) => s.firstError)?.firstError,
      redisErrors: nodes.reduce((a, _, k) => a + s1[k]!.redisErrors - s0[k]!.redisErrors, 0),
      firstRedisError: s1.find((s) => s.firstRedisError)?.firstRedisError,
      loadAvg1m,
      wallMs: Date.now() - started,
    };
  } catch (err) {
    const tails = nodes.map((n) => (n as ChildProcess & { tail?: () => string }).tail?.() ?? '').filter(Boolean);
    throw new Error(`${(err as Error).message}${tails.length ? `\nnode stderr: ${tails.join('\n').slice(-1500)}` : ''}`);
  } finally {
    await Promise.all([...workers.map(stopChild), ...nodes.map(stopChild)]);
  }
}

// ---- report ----------------------------------------------------------------------------

const fmt = (v: number | null | undefined, digits = 1) =>
  v === null || v === undefined ? '–' : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

export function markdown(runs: RunFigures[], meta: Record<string, unknown>): string {
  const lines = [
    `cluster-tick: ${meta.players} players in rooms of ${meta.roomSize}, ${meta.durationMs} ms window after ${meta.warmupMs} ms warm-up; ${meta.volley}; ${meta.machine}`,
    '',
    '| Redis | nodes | placement | round | players | node CPU µs/player-s (per node) | idle node CPU µs/s | idle node room msgs | room msgs/s into player nodes | Redis CPU µs/player-s, net of idle (all) | Redis cmds/player-s | Redis B in / out per player-s | kept up | state p50 / p99 ms | load 1m |',
    '|---|--:|---|--:|--:|---|--:|--:|--:|---|--:|---|--:|---|--:|',
  ];
  for (const r of runs) {
    const rs = r.redisServer;
    const redisCpu = !rs
      ? '–'
      : rs.replicaCpuUsPerPlayerSec === undefined
        ? `${fmt(rs.cpuUsPerPlayerSec, 2)} (${fmt(rs.rawCpuUsPerPlayerSec, 2)})`
        : `${fmt(rs.cpuUsPerPlayerSec, 2)} (${fmt(rs.rawCpuUsPerPlayerSec, 2)}) over ${rs.shards} primaries; replicas ${fmt(rs.replicaCpuUsPerPlayerSec, 2)}`;
    const cells = [
      r.redis,
      r.nodes,
      r.placement,
      r.round,
      r.players,
      `${fmt(r.nodeCpuUsPerPlayerSec)} (${r.perNodeCpuUsPerPlayerSec.map((v) => fmt(v, 0)).join(', ')})`,
      fmt(r.idleNode?.cpuUsPerSec, 0),
      fmt(r.idleNode?.roomMessages, 0),
      fmt(r.nodesRoomMessagesPerSec, 0),
      redisCpu,
      fmt(rs?.commandsPerPlayerSec, 2),
      rs ? `${fmt(rs.bytesInPerPlayerSec, 0)} / ${fmt(rs.bytesOutPerPlayerSec, 0)}` : '–',
      `${fmt(r.game.keptUp * 100, 1)} %${r.game.behind ? ` (${r.game.behind})` : ''}`,
      `${fmt(r.stateLatencyMs.p50, 2)} / ${fmt(r.stateLatencyMs.p99, 2)}`,
      fmt(r.loadAvg1m, 2),
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  lines.push('', 'Per run: Redis commands per player-second by command (primaries), errors:', '');
  for (const r of runs) {
    const rs = r.redisServer;
    const cmds = rs
      ? Object.entries(rs.perCommand)
          .filter(([, v]) => v >= 0.001)
          .map(([k, v]) => `${k} ${fmt(v, 3)}`)
          .join(', ') || '–'
      : 'no Redis';
    const idle = rs ? `; Redis with no node attached ${fmt(rs.idleCpuUsPerSec, 0)} µs/s` : '';
    const repl = rs?.replicationBytesPerPlayerSec === undefined ? '' : `; replication stream ${fmt(rs.replicationBytesPerPlayerSec, 0)} B/player-s`;
    lines.push(`- ${r.redis}, ${r.nodes} nodes, ${r.placement}, round ${r.round}: ${cmds}${idle}${repl}; errors ${r.errors}${r.firstError ? ` (${r.firstError})` : ''}; Redis trouble reported by the nodes ${r.redisErrors}${r.firstRedisError ? ` (${r.firstRedisError})` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}

export function unitCostMarkdown(rows: (UnitCost & { redis: RedisKind })[]): string {
  if (!rows.length) return '';
  const lines = [
    '',
    "Redis' CPU per message at a steady rate (lib/redisUnitCosts.ts: the adapter's clients and refresh script, one process publishing and subscribing; less Redis' idle CPU):",
    '',
    '| Redis | what | rate /s | sent | delivered | failed | µs per message, primaries | replicas | B out per message |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const r of rows)
    lines.push(
      `| ${r.redis} | ${r.what} | ${fmt(r.rate, 0)} | ${fmt(r.sent, 0)} | ${fmt(r.delivered, 0)} | ${fmt(r.failed, 0)} | ${fmt(r.primariesUs, 2)} | ${fmt(r.replicasUs, 2)} | ${fmt(r.outBytes, 0)} |`,
    );
  return `${lines.join('\n')}\n`;
}

// ---- command line ----------------------------------------------------------------------

const list = <T extends string>(v: string | undefined, all: readonly T[], dflt: T[]): T[] => {
  if (!v) return dflt;
  const out = v.split(',').map((s) => s.trim()) as T[];
  for (const x of out) if (!all.includes(x)) throw new Error(`unknown ${x}: one of ${all.join(', ')}`);
  return out;
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string' },
      redis: { type: 'string' },
      placement: { type: 'string' },
      rounds: { type: 'string' },
      players: { type: 'string' },
      'per-node': { type: 'string' },
      'room-size': { type: 'string' },
      workers: { type: 'string' },
      warmup: { type: 'string' },
      duration: { type: 'string' },
      volley: { type: 'string' },
      'no-build': { type: 'boolean' },
      'cpu-prof': { type: 'string' },
      'unit-costs': { type: 'string' },
      out: { type: 'string' },
    },
  });
  const root = fileURLToPath(new URL('..', import.meta.url));
  const o: ClusterTickOptions = {
    // --unit-costs alone measures those and runs no game.
    nodes: values.nodes === undefined && values['unit-costs'] ? [] : (values.nodes ?? '2,4,6').split(',').map(Number),
    redis: list(values.redis, ['single', 'cluster', 'none'] as const, ['single', 'cluster']),
    placements: list(values.placement, ['room', 'spread'] as const, ['room']),
    rounds: Math.max(1, Number(values.rounds ?? 1)),
    players: Number(values.players ?? 800),
    perNode: values['per-node'] ? Number(values['per-node']) : undefined,
    roomSize: Number(values['room-size'] ?? 8),
    workers: Number(values.workers ?? 2),
    warmupMs: Number(values.warmup ?? 3000),
    durationMs: Number(values.duration ?? 10_000),
    volley: values.volley ? path.resolve(values.volley) : undefined,
    build: !values['no-build'],
    cpuProf: values['cpu-prof'] ? path.resolve(values['cpu-prof']) : undefined,
    unitCostRates: values['unit-costs'] ? values['unit-costs'].split(',').map(Number) : [],
    out: path.resolve(values.out ?? path.join(root, 'bench/results')),
  };
  if (o.nodes.some((n) => !Number.isInteger(n) || n < 1 || n > 16)) throw new Error('--nodes: whole numbers from 1 to 16');
  if (o.unitCostRates.some((r) => !(r > 0 && r <= 200_000))) throw new Error('--unit-costs: rates from 1 to 200,000 a second');
  const most = o.perNode ? o.perNode * Math.max(1, ...o.nodes) : o.players;
  if (!(most >= o.roomSize && most <= 16_000)) throw new Error('--players, --per-node: from one room to 16,000 players (the open-file limit is per client process, but the machine is small)');
  if (o.perNode !== undefined && !(o.perNode > 0 && o.perNode % o.roomSize === 0)) throw new Error('--per-node: whole rooms');
  // The clients of another checkout are that checkout's (clients/systems.ts, volley-base),
  // and so is what this process loads of it (lib/volleyFrom.ts).
  if (o.volley) process.env.BENCH_BASELINE = process.env.BENCH_VOLLEY_FROM = o.volley;
  if (o.build && process.env.BENCH_VOLLEY_SRC !== '1') buildDist(o.volley ?? root);

  const runs: RunFigures[] = [];
  const unitCosts: (UnitCost & { redis: RedisKind })[] = [];
  let runNo = 0;
  for (const kind of o.redis) {
    const redis = await startRedisUnderTest(kind);
    try {
      for (let round = 1; round <= o.rounds; round++)
        for (const n of o.nodes)
          for (const placement of o.placements) {
            const r = await runClusterTick(o, redis, n, placement, round, ++runNo);
            process.stderr.write(
              `${kind} ${n} nodes ${placement} round ${round}: ${r.nodeCpuUsPerPlayerSec} µs/player-s, idle node ${r.idleNode?.cpuUsPerSec ?? '–'} µs/s, Redis ${r.redisServer?.cpuUsPerPlayerSec ?? '–'} µs/player-s, kept up ${r.game.keptUp} (${Math.round(r.wallMs / 100) / 10} s)\n`,
            );
            runs.push(r);
          }
      if (o.unitCostRates.length && kind !== 'none') {
        const rows = await measureUnitCosts({ cluster: kind === 'cluster', adapter: redis.adapter, info: redis.info, idle: redis.idle }, o.unitCostRates);
        for (const row of rows) process.stderr.write(`${kind} ${row.what} at ${row.rate}/s: ${row.primariesUs} µs (replicas ${row.replicasUs ?? '–'})\n`);
        unitCosts.push(...rows.map((row) => ({ redis: kind, ...row })));
      }
    } finally {
      await redis.stop();
    }
  }
  const meta = {
    date: new Date().toISOString(),
    players: o.perNode ? `${o.perNode} per node` : o.players,
    roomSize: o.roomSize,
    warmupMs: o.warmupMs,
    durationMs: o.durationMs,
    volley: `Volley from ${o.volley ?? root}${process.env.BENCH_VOLLEY_SRC === '1' ? ' (sources)' : ' (dist/)'}`,
    machine: `${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}, ${os.platform()} ${os.release()}`,
  };
  const md = (runs.length ? markdown(runs, meta) : `cluster-tick: ${meta.volley}; ${meta.machine}\n`) + unitCostMarkdown(unitCosts);
  mkdirSync(o.out, { recursive: true });
  const stamp = meta.date.replace(/[:.]/g, '-');
  writeFileSync(path.join(o.out, `cluster-tick-${stamp}.json`), JSON.stringify({ meta, options: o, runs, unitCosts }, null, 2));
  writeFileSync(path.join(o.out, `cluster-tick-${stamp}.md`), md);
  process.stdout.write(md);
  process.stdout.write(`\nwritten to ${path.join(o.out, `cluster-tick-${stamp}`)}.{json,md}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
