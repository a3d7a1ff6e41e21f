// The end-of-run report (JSON), built from the final figures, the per-second series and
// the figures at the two ends of the full-load phase.

import { Histogram, percentiles, type Percentiles } from './histogram.ts';
import { callsDone, errorsTotal, servedDone, sumCounts, type Snapshot } from './stats.ts';

/** One second of the run. */
export interface SeriesPoint {
  /** Seconds since player 0 was due to connect. */
  t: number;
  players: number;
  /** Client → server calls completed per second, over the last interval. */
  callsPerSec: number;
  /** Server → client calls answered per second. */
  servedPerSec: number;
  /** Notifications the bots received per second (room and direct). */
  notifiedPerSec: number;
  /** p99 of client → server calls completed in the interval, ms. */
  p99: number;
  /** Busiest generator process' CPU, % of a core; worst event-loop delay p99, ms. */
  cpuMax: number;
  loopMax: number;
  /** Cumulative counts (for rates between any two points). */
  calls: number;
  served: number;
  notified: number;
}

export interface MethodRow {
  method: string;
  /** 'client→server' (the bots' calls) or 'server→client' (the server's calls the bots answered). */
  direction: 'client→server' | 'server→client';
  count: number;
  ok: number;
  errors: Record<string, number>;
  /** server→client: calls the server gave up on before the bot answered. */
  cancelled?: number;
  /** Per second at full load (whole run when there was none). */
  perSec: number;
  /** client→server: round trip; server→client: the bot's time to answer. ms. */
  latency: Percentiles;
}

export interface ThresholdResult {
  expr: string;
  value: number | undefined;
  ok: boolean;
}

export interface ProcRow {
  id: string;
  /** Busiest second, % of a core. */
  cpuPeak: number;
  /** Seconds at ≥ 90 % of a core. */
  hotSeconds: number;
  /** Worst second's event-loop delay p99, ms. */
  loopP99Peak: number;
  /** Largest resident memory, MB. */
  rssMb: number;
}

/** The end-of-run report of `volley-loadtest` (report.json; the Markdown and SVG are made from it). */
export interface Report {
  /** Format version of this report: 1. */
  version: 1;
  /** The server's URL. */
  url: string;
  /** The bot script run. */
  script: string;
  /** When the run started, ISO 8601. */
  startedAt: string;
  /** The run's options. */
  config: {
    /** Players at full load. */
    players: number;
    /** Connects per second in the ramp-up. */
    ramp: number;
    /** Disconnects per second in the ramp-down. */
    rampDown: number;
    /** Full load's length, s. */
    durationS: number;
    /** Open loop: arrivals per second of `action`. */
    rate?: number;
    /** Open loop: the script's action run at `rate`. */
    action?: string;
    /** Worker processes per generator. */
    workers: number;
    /** Generator machines. */
    generators: number;
  };
  /** Wall time of the run, s. */
  elapsedS: number;
  /** The full-load window the rates come from, s since the start. */
  steady: {
    /** Start of full load, s. */
    fromS: number;
    /** End of full load, s. */
    toS: number;
  };
  /** How many players were connected. */
  players: {
    /** The players asked for. */
    target: number;
    /** Most connected at once. */
    peak: number;
    /** Connected when full load began. */
    connectedAtFullLoad: number;
  };
  /** Connection attempts. */
  connect: {
    /** Sessions opened. */
    ok: number;
    /** Failed attempts by error code. */
    failed: Record<string, number>;
    /** Time from dial to a live session, ms. */
    latency: Percentiles;
  };
  /** Per method and direction: counts, errors, rate, latency. */
  methods: MethodRow[];
  /** Notifications by method, both ways. */
  notifications: {
    /** Sent by the bots. */
    sent: Record<
      string,
      {
        /** How many. */
        count: number;
        /** Per second at full load. */
        perSec: number;
      }
    >;
    /** Received by the bots (room and direct). */
    received: Record<
      string,
      {
        /** How many. */
        count: number;
        /** Per second at full load. */
        perSec: number;
      }
    >;
  };
  /** All methods together. */
  totals: {
    /** Client → server calls completed. */
    calls: number;
    /** Of them, per second at full load. */
    callsPerSec: number;
    /** Server → client calls the bots answered. */
    served: number;
    /** Of them, per second at full load. */
    servedPerSec: number;
    /** Client → server calls that failed. */
    errors: number;
    /** errors / calls, %. */
    errorRatePct: number;
    /** Round trip of client → server calls, ms. */
    latency: Percentiles;
    /** Calls in flight when their bot's client closed at the ramp-down: not errors, not counted in `calls`. */
    abandonedAtRampDown: number;
  };
  /** Failed calls by error code. */
  errorsByCode: Record<string, number>;
  /** Connections lost and regained. */
  sessions: {
    /** Reconnect attempts after a drop. */
    reconnects: number;
    /** Sessions resumed (nothing lost). */
    resumes: number;
    /** Sessions that ended unasked (not resumed). */
    sessionsLost: number;
    /** Sockets closed by the server or the network, by close code. */
    unexpectedCloses: Record<string, number>;
  };
  /** Open-loop runs (`--rate`): arrivals of `action`. */
  openLoop?: {
    /** Arrivals per second asked for. */
    rate: number;
    /** The script's action. */
    action: string;
    /** Arrivals started. */
    arrivals: number;
    /** Arrivals missed: no connected bot, or too many in flight. */
    missed: number;
  };
  /** Errors thrown by the bot script itself. */
  scriptErrors: {
    /** How many. */
    count: number;
    /** The first one's message. */
    first?: string;
  };
  /** The load generator's own load: a saturated generator's latencies include its delay. */
  generator: {
    /** Per generator process. */
    processes: ProcRow[];
    /** CPU of all generator processes over the run, in cores. */
    coresUsed: number;
    /**
     * Calls both ways and notifications both ways per second of generator CPU, over the
     * whole run (connects and ramps included): what one generator core drives.
     */
    messagesPerCpuSecond: number;
    /** A process spent seconds at ≥ 90 % of a core: the latencies include the generator's delay. */
    saturated: boolean;
    /** The same in words, with what to do. */
    note: string;
  };
  /** One point per second of the run. */
  series: SeriesPoint[];
  /** Each `--threshold`, its value and whether it held. */
  thresholds: ThresholdResult[];
  /** Worker processes that failed (the run fails with them). */
  failures: string[];
  /** Every threshold held and no worker failed (the command's exit code 0). */
  passed: boolean;
}

export interface ReportInput {
  url: string;
  script: string;
  startedAt: number;
  config: Report['config'];
  final: Snapshot;
  /** Figures when full load began and when the ramp-down began (undefined if never reached). */
  atFull?: Snapshot;
  atDown?: Snapshot;
  fullAtS: number;
  downAtS: number;
  series: SeriesPoint[];
}

/**
 * The generator is saturated when one of its processes spent SATURATED_SECONDS or more at
 * ≥ 90 % of a core: its timers and reads then run late, and that lateness lands in the
 * latencies. A late event loop at low CPU means the machine itself is oversubscribed
 * (other processes took the cores): said in the note, not counted as saturation.
 */
export const SATURATED_SECONDS = 2;
export const LATE_LOOP_MS = 50;

export function buildReport(inp: ReportInput): Report {
  const f = inp.final;
  const steadyOk = inp.atFull && inp.atDown && inp.downAtS - inp.fullAtS >= 1;
  const window = steadyOk ? inp.downAtS - inp.fullAtS : Math.max(1, inp.series.at(-1)?.t ?? 1);
  const countIn = (pick: (s: Snapshot) => number) => (steadyOk ? pick(inp.atDown!) - pick(inp.atFull!) : pick(f));
  const rate = (pick: (s: Snapshot) => number) => round1(countIn(pick) / window);

  const all = new Histogram();
  const methods: MethodRow[] = [];
  for (const [method, c] of Object.entries(f.calls).sort()) {
    const h = Histogram.fromSparse(c.h);
    all.add(h);
    const count = c.ok + sumCounts(c.err);
    methods.push({
      method,
      direction: 'client→server',
      count,
      ok: c.ok,
      errors: c.err,
      perSec: rate((s) => (s.calls[method] ? s.calls[method]!.ok + sumCounts(s.calls[method]!.err) : 0)),
      latency: percentiles(h),
    });
  }
  for (const [method, c] of Object.entries(f.served).sort()) {
    const count = c.ok + sumCounts(c.err) + c.cancelled;
    methods.push({
      method,
      direction: 'server→client',
      count,
      ok: c.ok,
      errors: c.err,
      cancelled: c.cancelled,
      perSec: rate((s) => (s.served[method] ? s.served[method]!.ok + sumCounts(s.served[method]!.err) + s.served[method]!.cancelled : 0)),
      latency: percentiles(Histogram.fromSparse(c.h)),
    });
  }
  const notes = (pick: (s: Snapshot) => Record<string, number>) =>
    Object.fromEntries(Object.entries(pick(f)).sort().map(([m, n]) => [m, { count: n, perSec: rate((s) => pick(s)[m] ?? 0) }]));

  const errorsByCode: Record<string, number> = {};
  const add = (r: Record<string, number>) => {
    for (const [k, n] of Object.entries(r)) errorsByCode[k] = (errorsByCode[k] ?? 0) + n;
  };
  add(f.connectErr);
  for (const c of Object.values(f.calls)) add(c.err);
  for (const c of Object.values(f.served)) add(c.err);

  const calls = callsDone(f);
  const served = servedDone(f);
  const errors = errorsTotal(f);
  const attempts = calls + served + f.connectsOk + sumCounts(f.connectErr);

  const processes: ProcRow[] = Object.keys(f.peakCpu)
    .sort()
    .map((id) => ({ id, cpuPeak: f.peakCpu[id]!, hotSeconds: f.hotSeconds[id] ?? 0, loopP99Peak: f.peakLoop[id] ?? 0, rssMb: f.peakRssMb[id] ?? 0 }));
  const hot = processes.filter((p) => p.hotSeconds >= SATURATED_SECONDS);
  const late = processes.filter((p) => p.loopP99Peak >= LATE_LOOP_MS && !hot.includes(p));
  const coresUsed = f.wallMs > 0 ? round2(f.cpuUs / 1000 / f.wallMs) : 0;

  return {
    version: 1,
    url: inp.url,
    script: inp.script,
    startedAt: new Date(inp.startedAt).toISOString(),
    config: inp.config,
    elapsedS: round1(inp.series.at(-1)?.t ?? 0),
    steady: { fromS: round1(inp.fullAtS), toS: round1(steadyOk ? inp.downAtS : inp.fullAtS) },
    players: { target: f.target, peak: Math.max(0, ...inp.series.map((p) => p.players)), connectedAtFullLoad: inp.atDown?.connected ?? 0 },
    connect: { ok: f.connectsOk, failed: f.connectErr, latency: percentiles(Histogram.fromSparse(f.connect)) },
    methods,
    notifications: { sent: notes((s) => s.notifySent), received: notes((s) => s.notifyRecv) },
    totals: {
      calls,
      callsPerSec: rate(callsDone),
      served,
      servedPerSec: rate(servedDone),
      errors,
      errorRatePct: attempts ? round3((errors / attempts) * 100) : 0,
      latency: percentiles(all),
      abandonedAtRampDown: f.abandoned,
    },
    errorsByCode,
    sessions: { reconnects: f.reconnects, resumes: f.resumes, sessionsLost: f.sessionsLost, unexpectedCloses: f.closes },
    openLoop: inp.config.rate ? { rate: inp.config.rate, action: inp.config.action ?? '', arrivals: f.arrivals, missed: f.missed } : undefined,
    scriptErrors: { count: f.scriptErrors, first: f.firstScriptError },
    generator: {
      processes,
      coresUsed,
      messagesPerCpuSecond: f.cpuUs > 0 ? Math.round((calls + served + sumCounts(f.notifySent) + sumCounts(f.notifyRecv)) / (f.cpuUs / 1e6)) : 0,
      saturated: hot.length > 0,
      note:
        (hot.length
          ? `generator saturated (${hot.map((p) => `${p.id}: ${p.hotSeconds} s at ≥ 90% CPU, loop p99 up to ${p.loopP99Peak} ms`).join('; ')}): latencies include the generator's own delay; add workers or machines`
          : 'generator not saturated') +
        (late.length
          ? `; event loop late by up to ${Math.max(...late.map((p) => p.loopP99Peak))} ms (p99) at low CPU: the machine is oversubscribed, latencies may include it`
          : ''),
    },
    series: inp.series,
    thresholds: [],
    failures: [],
    passed: true,
  };
}

const round1 = (v: number) => Math.round(v * 10) / 10;
const round2 = (v: number) => Math.round(v * 100) / 100;
const round3 = (v: number) => Math.round(v * 1000) / 1000;
