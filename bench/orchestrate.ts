// One measured run: a server process for one system, client processes around it, and
// the figures of one scenario read from both sides.

import type { ChildProcess } from 'node:child_process';
import { request } from './lib/ipc.ts';
import { mergeHistograms, percentiles, type Percentiles } from './lib/histogram.ts';
import { connectWorkers as connect, loadBackstopMs, round, sleep, spawn, split, splitAll, stopChild, tick, type Snap, type Stopped } from './lib/procs.ts';
import { SERVER_DRIVEN, STREAM_SCENARIOS, type Config, type Scenario } from './config.ts';
import type { SystemName } from './clients/systems.ts';
import { gameTick } from './gameTick.ts';
import { streamRun } from './streams.ts';

/** Per process; socket.io and Volley both take most of it per connection. */
const CONNS_PER_IDLE_WORKER = 4000;
/** File descriptors the server keeps for itself below ulimit -n in idle-max. */
export const FD_HEADROOM = 1000;

export interface RunResult {
  system: SystemName;
  scenario: Scenario;
  /** Which round (1-based) of the interleaved schedule; absent in one-round reports of old. */
  round?: number;
  /** Wall time of the whole run: processes up, connect, warm-up, window, teardown. */
  wallMs?: number;
  connections: number;
  inflight?: number;
  payloadBytes?: number;
  durationMs?: number;
  /** Calls (or deliveries, or connections) per second measured at the server; stream scenarios: items per second where they arrive. */
  callsPerSec?: number;
  /** Stream scenarios: items that arrived in the window. */
  items?: number;
  latencyMs?: Percentiles;
  /** Server CPU (user + system) per call, per delivery (broadcast), per connection (storm) or per item (stream scenarios). */
  serverCpuUsPerCall?: number;
  clientCpuUsPerCall?: number;
  serverRssMiB?: number;
  /** broadcast: deliveries per second of server CPU. */
  deliveriesPerCpuSec?: number;
  /** idle, idle-max: connections held and RSS growth per connection. */
  held?: number;
  rssPerConnKiB?: number;
  /** idle: V8 heap growth per connection (the JS objects alone; steadier than RSS). */
  heapPerConnKiB?: number;
  /** storm */
  connsPerSec?: number;
  /** game-tick: players, server CPU per player-second, and that as players per core. */
  players?: number;
  roomSize?: number;
  cpuUsPerPlayerSec?: number;
  playersPerCore?: number;
  /** game-tick: the worst share of the scheduled traffic that got through in the window. */
  keptUp?: number;
  /** game-tick: the stream that kept up least, when under 95 %. */
  behind?: string;
  /** game-tick: counts over the window. */
  game?: { ticks: number; states: number; inputs: number; acts: number; serverCalls: number; serverCallsFailed: number };
  errors: number;
  firstError?: string;
  error?: string;
}

export interface Progress {
  /** Fraction of this run done, 0..1. */
  (fraction: number, label: string): void;
}

/** The server script a system runs (variants share one with an environment switch). */
export function serverFile(system: SystemName): string {
  return system === 'socketio-uws' ? 'socketio' : system === 'volley-ws' || system === 'volley-base' ? 'volley' : system;
}

/** The environment a system's server process runs with in a scenario. */
export function serverEnv(system: SystemName, scenario: Scenario, roomSize: number): Record<string, string> {
  const env: Record<string, string> = {};
  if (scenario === 'broadcast' || scenario === 'call-many') env.BENCH_ROOM = '1';
  if (scenario === 'game-tick') env.BENCH_GAME_ROOM_SIZE = String(roomSize);
  if (system === 'socketio-uws') env.BENCH_ENGINE = 'uws';
  env.VOLLEY_TRANSPORT = system === 'volley-ws' ? 'ws' : system === 'volley' || system === 'volley-base' ? 'uws' : '';
  // volley-base: servers/volley.ts loads the baseline checkout's dist/ instead of ours.
  env.BENCH_VOLLEY_FROM = system === 'volley-base' ? (process.env.BENCH_BASELINE ?? '') : '';
  return env;
}

export async function runOne(
  cfg: Config,
  system: SystemName,
  scenario: Scenario,
  roundNo: number,
  progress: Progress,
  fdLimit: number,
): Promise<RunResult> {
  const started = Date.now();
  const result = await runScenario(cfg, system, scenario, roundNo, progress, fdLimit);
  return { ...result, wallMs: Date.now() - started };
}

async function runScenario(
  cfg: Config,
  system: SystemName,
  scenario: Scenario,
  roundNo: number,
  progress: Progress,
  fdLimit: number,
): Promise<RunResult> {
  const env = serverEnv(system, scenario, cfg.roomSize);
  const file = `servers/${serverFile(system)}.ts`;
  const server = spawn(file, env, cfg.cpuProf, `server-${system}-${scenario}-r${roundNo}`);
  const workers: ChildProcess[] = [];
  const base: RunResult = { system, scenario, round: roundNo, connections: 0, errors: 0 };
  try {
    const { port } = await request<{ port: number }>(server, 'listen', {}, 30_000);
    if (scenario === 'idle' || scenario === 'idle-max') return await idle(cfg, system, scenario, server, port, workers, base, progress, fdLimit);
    if (scenario === 'storm') return await storm(cfg, system, server, port, workers, base, progress);
    if (scenario === 'game-tick') return await gameTick(cfg, system, server, port, workers, base, progress);
    if (STREAM_SCENARIOS.has(scenario)) return await streamRun(cfg, system, scenario, server, port, workers, base, progress);
    return await load(cfg, system, scenario, server, port, workers, base, progress);
  } catch (err) {
    const tail = (server as ChildProcess & { tail?: () => string }).tail?.() ?? '';
    return { ...base, error: `${(err as Error).message}${tail ? `\nserver stderr: ${tail.slice(-600)}` : ''}` };
  } finally {
    await Promise.all([...workers.map(stopChild), stopChild(server)]);
  }
}

function connectWorkers(
  cfg: Config,
  system: SystemName,
  port: number,
  counts: number[],
  bare: boolean,
  workers: ChildProcess[],
  firstUid = 0,
): ReturnType<typeof connect> {
  return connect(system, port, counts, bare, workers, cfg.clientProf, firstUid);
}

async function load(
  cfg: Config,
  system: SystemName,
  scenario: Scenario,
  server: ChildProcess,
  port: number,
  workers: ChildProcess[],
  base: RunResult,
  progress: Progress,
): Promise<RunResult> {
  const n = scenario === 'broadcast' ? cfg.fanout : cfg.connections;
  const inflight = scenario === 'call-small-pipelined' ? cfg.inflight : 1;
  progress(0, 'connecting');
  const c = await connectWorkers(cfg, system, port, split(n, Math.min(cfg.workers, n)), false, workers);
  if (c.connected === 0) throw new Error(`no client connected: ${c.firstError}`);
  const serverDriven = SERVER_DRIVEN.has(scenario);
  const maxMs = loadBackstopMs(cfg.warmupMs, cfg.durationMs);
  const args = { scenario, inflight, payloadBytes: cfg.payloadBytes, maxMs, rate: cfg.rate };
  await Promise.all(workers.map((w) => request(w, 'load', args)));
  if (serverDriven) await request(server, 'drive', args);
  await tick(cfg.warmupMs, (f) => progress(f * (cfg.warmupMs / (cfg.warmupMs + cfg.durationMs)), 'warm-up'));
  const [s0] = await Promise.all([
    request<Snap>(server, 'snap'),
    request(server, 'mark'),
    ...workers.map((w) => request(w, 'mark')),
  ]);
  await tick(cfg.durationMs, (f) => progress((cfg.warmupMs + f * cfg.durationMs) / (cfg.warmupMs + cfg.durationMs), 'measuring'));
  const s1 = await request<Snap>(server, 'snap');
  const [serverStop, ...clientStops] = await Promise.all([
    request<{ hist: string; errors: number }>(server, 'stop'),
    ...workers.map((w) => request<Stopped>(w, 'stop')),
  ]);
  const calls = s1.count - s0.count;
  const seconds = (s1.t - s0.t) / 1000;
  const cpuUs = s1.cpuUs - s0.cpuUs;
  const clientCalls = clientStops.reduce((s, r) => s + r.count, 0);
  const clientCpu = clientStops.reduce((s, r) => s + r.cpuUs, 0);
  // Latency where it is felt: the caller, or the receiver of a broadcast.
  const fromClients = !serverDriven || scenario === 'broadcast';
  const hist = mergeHistograms(fromClients ? clientStops.map((r) => r.hist) : [serverStop.hist]);
  const result: RunResult = {
    ...base,
    connections: c.connected,
    inflight,
    payloadBytes: scenario.endsWith('1kb') ? cfg.payloadBytes : undefined,
    durationMs: s1.t - s0.t,
    callsPerSec: round(calls / seconds),
    latencyMs: percentiles(hist),
    serverCpuUsPerCall: calls > 0 ? round(cpuUs / calls, 2) : undefined,
    clientCpuUsPerCall: clientCalls > 0 ? round(clientCpu / clientCalls, 2) : undefined,
    serverRssMiB: round(s1.rss / 2 ** 20, 1),
    errors: c.failed + serverStop.errors + clientStops.reduce((s, r) => s + r.errors, 0),
    firstError: c.firstError ?? clientStops.find((r) => r.firstError)?.firstError,
  };
  if (scenario === 'broadcast') result.deliveriesPerCpuSec = cpuUs > 0 ? round(calls / (cpuUs / 1e6)) : undefined;
  return result;
}

async function idle(
  cfg: Config,
  system: SystemName,
  scenario: Scenario,
  server: ChildProcess,
  port: number,
  workers: ChildProcess[],
  base: RunResult,
  progress: Progress,
  fdLimit: number,
): Promise<RunResult> {
  const n = scenario === 'idle-max' ? Math.max(1, fdLimit - FD_HEADROOM) : cfg.idleConnections;
  // Two steps: the first quarter warms the server's pools and heap (whose freed pages RSS
  // would otherwise absorb), and the figure is the RSS growth over the other three quarters.
  const first = Math.max(1, Math.floor(n / 4));
  const k = Math.max(1, Math.ceil(n / CONNS_PER_IDLE_WORKER));
  const counts = splitAll(n, k);
  const firstCounts = splitAll(first, k);
  progress(0.05, `opening ${first} of ${n}`);
  const a = await connectWorkers(cfg, system, port, firstCounts, true, workers, 0);
  const s0 = await settledSnap(server);
  progress(0.4, `opening ${n - first} more`);
  const b = await connectWorkers(cfg, system, port, counts.map((c, i) => c - firstCounts[i]!), true, workers, first);
  progress(0.8, 'settling');
  const s1 = await settledSnap(server);
  const added = s1.conns - s0.conns;
  return {
    ...base,
    connections: n,
    held: s1.conns,
    serverRssMiB: round(s1.rss / 2 ** 20, 1),
    rssPerConnKiB: added > 0 ? round((s1.rss - s0.rss) / 1024 / added, 2) : undefined,
    heapPerConnKiB: added > 0 ? round((s1.heapUsed - s0.heapUsed) / 1024 / added, 2) : undefined,
    errors: a.failed + b.failed,
    firstError: a.firstError ?? b.firstError,
  };
}

/** A snapshot after the server has collected its garbage and gone quiet. */
async function settledSnap(server: ChildProcess): Promise<Snap> {
  await sleep(1000);
  await request(server, 'gc');
  await sleep(300);
  return request<Snap>(server, 'snap');
}

async function storm(
  cfg: Config,
  system: SystemName,
  server: ChildProcess,
  port: number,
  workers: ChildProcess[],
  base: RunResult,
  progress: Progress,
): Promise<RunResult> {
  const n = cfg.stormConnections;
  const counts = split(n, Math.min(cfg.workers, n));
  for (let i = 0; i < counts.length; i++) workers.push(spawn('clients/worker.ts', {}, cfg.clientProf, `storm-${system}-${i}`));
  // Workers up and compiled before the clock starts.
  await Promise.all(workers.map((w) => request(w, 'mark', {}, 30_000)));
  progress(0.1, `storm of ${n}`);
  const s0 = await request<Snap>(server, 'snap');
  let from = 0;
  const maxMs = Math.max(30_000, cfg.durationMs * 6);
  const replies = await Promise.all(
    workers.map((w, i) => {
      const start = from;
      from += counts[i]!;
      return request<{ opened: number; failed: number; ms: number; hist: string; firstError?: string }>(
        w,
        'storm',
        { system, port, from: start, count: counts[i], concurrency: 32, maxMs },
        maxMs + 30_000,
      );
    }),
  );
  const s1 = await request<Snap>(server, 'snap');
  const opened = replies.reduce((s, r) => s + r.opened, 0);
  const ms = Math.max(...replies.map((r) => r.ms));
  return {
    ...base,
    connections: n,
    connsPerSec: round(opened / (ms / 1000)),
    callsPerSec: undefined,
    latencyMs: percentiles(mergeHistograms(replies.map((r) => r.hist))),
    serverCpuUsPerCall: opened > 0 ? round((s1.cpuUs - s0.cpuUs) / opened, 1) : undefined,
    serverRssMiB: round(s1.rss / 2 ** 20, 1),
    errors: replies.reduce((s, r) => s + r.failed, 0),
    firstError: replies.find((r) => r.firstError)?.firstError,
  };
}
