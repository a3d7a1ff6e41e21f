// What a worker records, the snapshot it sends every second (cumulative, so a lost or late
// one costs nothing), and how snapshots from workers and generators add up.

import { Histogram, type SparseHistogram } from './histogram.ts';

/** Client → server calls of one method. */
export interface CallStats {
  ok: number;
  /** Error code → count. */
  err: Record<string, number>;
  /** Latency, µs. */
  h: Histogram;
}

/** Server → client calls of one method, as the bots answered them. */
export interface ServedStats {
  ok: number;
  err: Record<string, number>;
  /** The server gave up (its deadline, a $cancel, or the socket went) before the answer. */
  cancelled: number;
  /** Time to answer (the bot's handler), µs. */
  h: Histogram;
}

/** One process' CPU and event-loop figures over one interval. */
export interface ProcLoad {
  id: string;
  /** CPU over the last interval, % of one core. */
  cpu: number;
  /** Event-loop delay over the last interval, ms. */
  loopP99: number;
  loopMax: number;
}

/** Cumulative figures of one worker, or of several added up. */
export interface Snapshot {
  /** Players this source is to run. */
  target: number;
  connected: number;
  connectsOk: number;
  /** Connect failures by error code. */
  connectErr: Record<string, number>;
  /** Dial → session live, µs. */
  connect: SparseHistogram;
  reconnects: number;
  resumes: number;
  /** Sessions the server ended while the bot ran (a reconnect that could not resume). */
  sessionsLost: number;
  /** Socket closes not asked for, by close code. */
  closes: Record<string, number>;
  calls: Record<string, { ok: number; err: Record<string, number>; h: SparseHistogram }>;
  served: Record<string, { ok: number; err: Record<string, number>; cancelled: number; h: SparseHistogram }>;
  notifySent: Record<string, number>;
  notifyRecv: Record<string, number>;
  /** Open-loop arrivals: started, and missed (no connected bot, or too many in flight). */
  arrivals: number;
  missed: number;
  /** Calls still in flight when the bot's client closed at the ramp-down (not counted as errors). */
  abandoned: number;
  /** Bot script failures (run() threw, an action threw something not an RpcError). */
  scriptErrors: number;
  firstScriptError?: string;
  /** Total CPU time and wall time of the source's processes (for the average), µs / ms. */
  cpuUs: number;
  wallMs: number;
  /** Peak CPU % of one core over any interval, per process. */
  peakCpu: Record<string, number>;
  /** Worst event-loop delay p99 of any interval, per process, ms. */
  peakLoop: Record<string, number>;
  /** Seconds a process spent at ≥ 90 % of a core (HOT_CPU), per process. */
  hotSeconds: Record<string, number>;
  /** Largest resident memory seen, per process, MB. */
  peakRssMb: Record<string, number>;
  /** Latency of client → server calls in the last interval only (for the live line and chart). */
  interval: SparseHistogram;
  /** Per-process load in the last interval. */
  load: ProcLoad[];
  /**
   * Calls per second over each source's own last interval (its clock, so a snapshot that
   * came late does not show as a gap and then a burst), added up by Collector.
   */
  rate?: { calls: number; served: number };
}

/** A second at this CPU (% of one core) or more counts as hot. */
export const HOT_CPU = 90;

export function emptySnapshot(): Snapshot {
  return {
    target: 0,
    connected: 0,
    connectsOk: 0,
    connectErr: {},
    connect: { max: 0, c: [] },
    reconnects: 0,
    resumes: 0,
    sessionsLost: 0,
    closes: {},
    calls: {},
    served: {},
    notifySent: {},
    notifyRecv: {},
    arrivals: 0,
    missed: 0,
    abandoned: 0,
    scriptErrors: 0,
    cpuUs: 0,
    wallMs: 0,
    peakCpu: {},
    peakLoop: {},
    hotSeconds: {},
    peakRssMb: {},
    interval: { max: 0, c: [] },
    load: [],
  };
}

const addCounts = (a: Record<string, number>, b: Record<string, number>) => {
  for (const k in b) a[k] = (a[k] ?? 0) + b[k]!;
};

/** The sum of several snapshots (a new one; none is changed). */
export function mergeSnapshots(list: readonly Snapshot[]): Snapshot {
  const out = emptySnapshot();
  const calls = new Map<string, { ok: number; err: Record<string, number>; h: Histogram }>();
  const served = new Map<string, { ok: number; err: Record<string, number>; cancelled: number; h: Histogram }>();
  const connect = new Histogram();
  const interval = new Histogram();
  for (const s of list) {
    out.target += s.target;
    out.connected += s.connected;
    out.connectsOk += s.connectsOk;
    addCounts(out.connectErr, s.connectErr);
    connect.addSparse(s.connect);
    out.reconnects += s.reconnects;
    out.resumes += s.resumes;
    out.sessionsLost += s.sessionsLost;
    addCounts(out.closes, s.closes);
    for (const [m, c] of Object.entries(s.calls)) {
      let t = calls.get(m);
      if (!t) calls.set(m, (t = { ok: 0, err: {}, h: new Histogram() }));
      t.ok += c.ok;
      addCounts(t.err, c.err);
      t.h.addSparse(c.h);
    }
    for (const [m, c] of Object.entries(s.served)) {
      let t = served.get(m);
      if (!t) served.set(m, (t = { ok: 0, err: {}, cancelled: 0, h: new Histogram() }));
      t.ok += c.ok;
      t.cancelled += c.cancelled;
      addCounts(t.err, c.err);
      t.h.addSparse(c.h);
    }
    addCounts(out.notifySent, s.notifySent);
    addCounts(out.notifyRecv, s.notifyRecv);
    out.arrivals += s.arrivals;
    out.missed += s.missed;
    out.abandoned += s.abandoned;
    out.scriptErrors += s.scriptErrors;
    out.firstScriptError ??= s.firstScriptError;
    out.cpuUs += s.cpuUs;
    out.wallMs = Math.max(out.wallMs, s.wallMs);
    Object.assign(out.peakCpu, s.peakCpu);
    Object.assign(out.peakLoop, s.peakLoop);
    Object.assign(out.hotSeconds, s.hotSeconds);
    Object.assign(out.peakRssMb, s.peakRssMb);
    interval.addSparse(s.interval);
    out.load.push(...s.load);
  }
  out.connect = connect.toSparse();
  out.interval = interval.toSparse();
  for (const [m, c] of calls) out.calls[m] = { ok: c.ok, err: c.err, h: c.h.toSparse() };
  for (const [m, c] of served) out.served[m] = { ok: c.ok, err: c.err, cancelled: c.cancelled, h: c.h.toSparse() };
  return out;
}

/** Sum of an error-count record. */
export const sumCounts = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);

/** Client → server calls completed (ok or failed). */
export function callsDone(s: Snapshot): number {
  let n = 0;
  for (const c of Object.values(s.calls)) n += c.ok + sumCounts(c.err);
  return n;
}

/** Server → client calls the bots answered (ok or with an error), and cancelled ones. */
export function servedDone(s: Snapshot): number {
  let n = 0;
  for (const c of Object.values(s.served)) n += c.ok + sumCounts(c.err) + c.cancelled;
  return n;
}

export function errorsTotal(s: Snapshot): number {
  let n = sumCounts(s.connectErr);
  for (const c of Object.values(s.calls)) n += sumCounts(c.err);
  for (const c of Object.values(s.served)) n += sumCounts(c.err);
  return n;
}
