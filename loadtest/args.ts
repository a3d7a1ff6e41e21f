// The command line: `volley-loadtest <bots> --url ws://… --players 5000 --ramp 200/s --duration 5m …`.

import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { checkThresholdSyntax } from './thresholds.ts';

export const USAGE = `volley-loadtest <bots.ts|bots.js> --url ws://host:port/ [options]

  --players N           players in the whole run (default 100)
  --ramp R/s            connects per second (default: all players over 10 s)
  --ramp-down R/s       disconnects per second at the end (default: --ramp)
  --duration T          full load after the ramp-up: 90s, 5m, 1h (default 30s)
  --workers N           generator processes on this machine (default: one per core)
  --rate R/s            open loop: run an action at this constant arrival rate
  --action NAME         the bot script's action for --rate (default: its only one)
  --threshold EXPR      fail (exit 1) unless EXPR holds; repeatable:
                          call.p99<150ms  call.<method>.p99<50ms  served.p99<20ms
                          connect.p99<1s  call.rate>=20000  errors<0.1%  errors==0
                          players>=5000  reconnects<10  missed==0  generator.cpu<90
  --out PATH            report files PATH.json, PATH.md, PATH.svg (default loadtest-report;
                        --out - for none)
  --grace T             how long a leaving bot's run() may take (default 2s)
  --redis URL           several generator machines in one run, through Redis (needs ioredis);
  --run-id ID             the same command on each machine, with the same run id
  --generators N          and the number of machines; the first to join coordinates
  --join-timeout T      how long generators wait for each other (default 60s)
  --quiet               no live view
  -h, --help

Exit status: 0 passed, 1 a threshold failed (or a worker died), 2 bad arguments or setup.`;

export interface Args {
  script: string;
  url: string;
  players: number;
  ramp: number;
  rampDown: number;
  durationMs: number;
  workers: number;
  rate?: number;
  action?: string;
  thresholds: string[];
  out?: string;
  graceMs: number;
  redis?: string;
  runId?: string;
  generators: number;
  joinTimeoutMs: number;
  quiet: boolean;
  help: boolean;
}

/** "90s", "5m", "1h", "1500ms", "2.5s"; a bare number is seconds. */
export function parseDuration(s: string): number {
  const m = /^([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?$/.exec(s.trim());
  if (!m) throw new Error(`not a duration: "${s}" (e.g. 30s, 5m)`);
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Number(m[1]) * mult;
}

/** "200/s", "200", "12000/m": per second. */
export function parseRate(s: string): number {
  const m = /^([0-9]*\.?[0-9]+)\s*(?:\/\s*(s|m|min|h))?$/.exec(s.trim());
  if (!m) throw new Error(`not a rate: "${s}" (e.g. 200/s)`);
  const per = { s: 1, m: 60, min: 60, h: 3600 }[(m[2] ?? 's') as 's' | 'm' | 'min' | 'h'];
  const v = Number(m[1]) / per;
  if (!(v > 0)) throw new Error(`rate must be above 0: "${s}"`);
  return v;
}

function positiveInt(name: string, s: string, max = 1_000_000): number {
  const v = Number(s);
  if (!Number.isInteger(v) || v < 1 || v > max) throw new Error(`${name} must be a whole number from 1 to ${max.toLocaleString('en-US')}, not "${s}"`);
  return v;
}

/** Players in one run: each worker keeps two numbers per player of its share (its schedule). */
export const MAX_PLAYERS = 10_000_000;

export function parseArgs(argv: readonly string[]): Args {
  const a: Partial<Args> & { thresholds: string[] } = { thresholds: [], quiet: false, help: false };
  let ramp: string | undefined;
  let rampDown: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const [flag, inline] = arg.startsWith('--') && eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '-h':
      case '--help':
        a.help = true;
        break;
      case '--url':
        a.url = value();
        break;
      case '--players':
        a.players = positiveInt('--players', value(), MAX_PLAYERS);
        break;
      case '--ramp':
        ramp = value();
        break;
      case '--ramp-down':
        rampDown = value();
        break;
      case '--duration':
        a.durationMs = parseDuration(value());
        break;
      case '--workers':
        a.workers = positiveInt('--workers', value(), 1024);
        break;
      case '--rate':
        a.rate = parseRate(value());
        break;
      case '--action':
        a.action = value();
        break;
      case '--threshold': {
        const t = value();
        checkThresholdSyntax(t);
        a.thresholds.push(t);
        break;
      }
      case '--out':
        a.out = value();
        break;
      case '--grace':
        a.graceMs = parseDuration(value());
        break;
      case '--redis':
        a.redis = value();
        break;
      case '--run-id':
        a.runId = value();
        break;
      case '--generators':
        a.generators = positiveInt('--generators', value(), 1024);
        break;
      case '--join-timeout':
        a.joinTimeoutMs = parseDuration(value());
        break;
      case '--quiet':
        a.quiet = true;
        break;
      default:
        if (arg.startsWith('-')) throw new Error(`unknown option ${arg}`);
        rest.push(arg);
    }
  }
  if (a.help) return a as Args;
  if (rest.length !== 1) throw new Error(rest.length ? `one bot script, not ${rest.join(' ')}` : 'which bot script? (volley-loadtest bots.ts --url …)');
  if (!a.url) throw new Error('--url is required (ws://… or wss://…)');
  if (!/^wss?:\/\//.test(a.url)) throw new Error(`--url must be ws:// or wss://, not ${a.url}`);
  const players = a.players ?? 100;
  const r = ramp ? parseRate(ramp) : Math.max(1, players / 10);
  if (a.redis && !a.runId) throw new Error('--redis needs --run-id (the same on every generator)');
  if (a.redis && !a.generators) throw new Error('--redis needs --generators N (how many machines join the run)');
  if (!a.redis && (a.generators ?? 1) > 1) throw new Error('--generators needs --redis');
  return {
    script: resolve(rest[0]!),
    url: a.url,
    players,
    ramp: r,
    rampDown: rampDown ? parseRate(rampDown) : r,
    durationMs: a.durationMs ?? 30_000,
    workers: a.workers ?? availableParallelism(),
    rate: a.rate,
    action: a.action,
    thresholds: a.thresholds,
    out: a.out === '-' ? undefined : (a.out ?? 'loadtest-report'),
    graceMs: a.graceMs ?? 2000,
    redis: a.redis,
    runId: a.runId,
    generators: a.generators ?? 1,
    joinTimeoutMs: a.joinTimeoutMs ?? 60_000,
    quiet: a.quiet ?? false,
    help: false,
  };
}
