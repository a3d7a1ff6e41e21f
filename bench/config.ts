// Scenarios and command-line flags of the bench.

import path from 'node:path';
import { DEFAULT_SYSTEMS, SYSTEMS, type SystemName } from './clients/systems.ts';

export const SCENARIOS = [
  'call-small', // client → server, small args, one call in flight per connection
  'call-small-pipelined', // the same, --inflight calls in flight per connection
  'call-1kb', // client → server, a ~1 KB object each way, one in flight
  'server-calls', // the server calls every client, small args, one in flight per client
  'server-calls-1kb', // the server calls every client, ~1 KB each way
  'broadcast', // room fan-out: one notification to --fanout clients
  'call-many', // callMany: one call to every client, gathering all replies
  'idle', // RSS per idle connection
  'storm', // connections opened (and closed) per second
  'game-tick', // players in rooms: state ticks, inputs, calls both ways (players per core)
  'stream-down', // server → client streams, one per client (items per second, server CPU per item)
  'notify-down', // the same items as notifications: stream-down's baseline
  'stream-up', // client → server streams, one per client
  'notify-up', // the same items as notifications: stream-up's baseline
  'idle-max', // idle at the open-file limit (ulimit -n minus headroom); only with --idle-max
] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** Scenarios whose load the server drives (latency measured there); the rest are client-driven. */
export const SERVER_DRIVEN: ReadonlySet<Scenario> = new Set(['server-calls', 'server-calls-1kb', 'call-many', 'broadcast']);

/** The stream scenarios (bench/streams.ts runs them) and the notification baseline of each. */
export const STREAM_SCENARIOS: ReadonlySet<Scenario> = new Set(['stream-down', 'notify-down', 'stream-up', 'notify-up']);
export const BASELINE_OF: Partial<Record<Scenario, Scenario>> = { 'stream-down': 'notify-down', 'stream-up': 'notify-up' };

export interface Config {
  quick: boolean;
  /** Times each scenario runs every system, interleaved. */
  rounds: number;
  systems: SystemName[];
  scenarios: Scenario[];
  connections: number;
  inflight: number;
  payloadBytes: number;
  durationMs: number;
  warmupMs: number;
  fanout: number;
  rate: number;
  idleConnections: number;
  stormConnections: number;
  /** game-tick: players, and players per room. */
  players: number;
  roomSize: number;
  /** stream scenarios: concurrent streams, one per client connection. */
  streams: number;
  idleMax: boolean;
  workers: number;
  out: string;
  cpuProf: string | undefined;
  clientProf: string | undefined;
  progress: boolean;
}

const HELP = `npm run bench -- [flags]
  --quick                  a few seconds per run, small counts, one round (smoke runs)
  --rounds N               runs of every system per scenario, interleaved (default 3; quick 1)
  --systems a,b            ${SYSTEMS.join(',')} (default all)
  --scenario a,b           ${SCENARIOS.join(',')} (default all but idle-max)
  --connections N          connections for call scenarios and callMany (default 100; quick 10)
  --inflight N             calls in flight per connection in pipelined scenarios (default 16; quick 8)
  --payload N              bytes of the "1kb" object (default 1024)
  --duration MS            measured window per run (default 5000; quick 1000)
  --warmup MS              load before the window opens (default 1500; quick 300)
  --fanout N               broadcast room size (default 1000; quick 20)
  --rate N                 broadcasts per second (default 100)
  --idle-connections N     idle scenario size (default 2000; quick 100)
  --storm-connections N    storm scenario size (default 2000; quick 100)
  --players N              game-tick players (default 1000; quick 80)
  --room-size N            game-tick players per room (default 8)
  --streams N              stream-*/notify-*: clients, one stream each at a time (default 50, quick too)
  --idle-max               also run idle-max: as many idle connections as ulimit -n allows
  --workers N              client processes for call scenarios (default 2)
  --out DIR                where results go (default bench/results)
  --cpu-prof DIR           run servers with node --cpu-prof, profiles written to DIR
  --client-prof DIR        run client processes with node --cpu-prof
  --baseline DIR           also run volley-base: the Volley of another checkout (its dist/ built), to
                           measure a change against the code before it, interleaved in the same run
  --no-progress            no progress bar`;

export function parseFlags(argv: string[]): Config {
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') {
      console.log(HELP);
      process.exit(0);
    }
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}\n${HELP}`);
    const eq = a.indexOf('=');
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else if (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--')) flags.set(a.slice(2), argv[++i]!);
    else flags.set(a.slice(2), true);
  }
  const quick = flags.has('quick');
  const num = (name: string, full: number, q = full): number => {
    const v = flags.get(name);
    if (v === undefined || v === true) return quick ? q : full;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} needs a number, got ${v}`);
    return n;
  };
  const list = <T extends string>(name: string, all: readonly T[], dflt: readonly T[]): T[] => {
    const v = flags.get(name);
    if (v === undefined || v === true) return [...dflt];
    const picked = v.split(',').map((s) => s.trim()) as T[];
    for (const p of picked) if (!all.includes(p)) throw new Error(`--${name}: unknown ${p} (known: ${all.join(', ')})`);
    return picked;
  };
  const idleMax = flags.has('idle-max');
  const scenarioFlag = flags.has('scenario') ? 'scenario' : 'scenarios';
  const scenarios = list<Scenario>(scenarioFlag, SCENARIOS, SCENARIOS.filter((s) => s !== 'idle-max' || idleMax));
  const known = new Set([
    'quick', 'systems', 'scenario', 'scenarios', 'connections', 'inflight', 'payload', 'duration', 'warmup', 'fanout',
    'rate', 'idle-connections', 'storm-connections', 'idle-max', 'workers', 'out', 'cpu-prof', 'client-prof', 'no-progress',
    'rounds', 'players', 'room-size', 'baseline', 'streams',
  ]);
  for (const k of flags.keys()) if (!known.has(k)) throw new Error(`unknown flag --${k}\n${HELP}`);
  const str = (name: string): string | undefined => {
    const v = flags.get(name);
    return typeof v === 'string' ? v : undefined;
  };
  // Read by the server and client processes of volley-base (they inherit the environment).
  const baseline = str('baseline');
  if (baseline) process.env.BENCH_BASELINE = path.resolve(baseline);
  const systems = list<SystemName>('systems', SYSTEMS, baseline ? SYSTEMS : DEFAULT_SYSTEMS);
  if (systems.includes('volley-base') && !process.env.BENCH_BASELINE) throw new Error('volley-base needs --baseline DIR');
  return {
    quick,
    rounds: Math.max(1, Math.floor(num('rounds', 3, 1))),
    systems,
    scenarios,
    connections: Math.max(1, num('connections', 100, 10)),
    inflight: Math.max(1, num('inflight', 16, 8)),
    payloadBytes: num('payload', 1024),
    durationMs: num('duration', 5000, 1000),
    warmupMs: num('warmup', 1500, 300),
    fanout: Math.max(1, num('fanout', 1000, 20)),
    rate: Math.max(1, num('rate', 100)),
    idleConnections: Math.max(1, num('idle-connections', 2000, 100)),
    stormConnections: Math.max(1, num('storm-connections', 2000, 100)),
    players: Math.max(1, Math.floor(num('players', 1000, 80))),
    roomSize: Math.max(1, Math.floor(num('room-size', 8))),
    streams: Math.max(1, Math.floor(num('streams', 50))),
    idleMax,
    workers: Math.max(1, num('workers', 2)),
    out: str('out') ?? 'bench/results',
    cpuProf: str('cpu-prof'),
    clientProf: str('client-prof'),
    progress: !flags.has('no-progress'),
  };
}
