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

export interface Report {
  version: 1;
  url: string;
  script: string;
  startedAt: string;
  config: { players: number; ramp: number; rampDown: number; durationS: number; rate?: number; action?: string; workers: number; generators: number };
  /** Wall time of the run, s. */
  elapsedS: number;
  /** The full-load window the rates come from, s since the start. */
  steady: { fromS: number; toS: number };
  players: { target: number; peak: number; connectedAtFullLoad: number };
  connect: { ok: number; failed: Record<string, number>; latency: Percentiles };
  methods: MethodRow[];
  notifications: { sent: Record<string, { count: number; perSec: number }>; received: Record<string, { count: number; perSec: number }> };
  totals: {
    calls: number;
    callsPerSec: number;
    served: number;
    servedPerSec: number;
    errors: number;
    errorRatePct: number;
    latency: Percentiles;
    /** Calls in flight when their bot's client closed at the ramp-down: not errors, not counted in `calls`. */
    abandonedAtRampDown: number;
  };
  errorsByCode: Record<string, number>;
  sessions: { reconnects: number; resumes: number; sessionsLost: number; unexpectedCloses: Record<string, number> };
  openLoop?: { rate: number; action: string; arrivals: number; missed: number };
  scriptErrors: { count: number; first?: string };
  generator: {
    processes: ProcRow[];
    /** CPU of all generator processes over the run, in cores. */
    coresUsed: number;
    /**
     * Calls both ways and notifications both ways per second of generator CPU, over the
     * whole run (connects and ramps included): what one generator core drives.
     */
    messagesPerCpuSecond: number;
    saturated: boolean;
    note: string;
  };
  series: SeriesPoint[];
  thresholds: ThresholdResult[];
  /** Worker processes that failed (the run fails with them). */
  failures: string[];
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
