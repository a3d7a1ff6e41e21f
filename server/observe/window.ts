// The monitor page's view of the last seconds: once a second a snapshot of the cumulative
// histograms (summed over codes, per method) and of the error counts by code; rates and
// quantiles come from the difference between now and the oldest snapshot, the way
// Prometheus computes rate() and histogram_quantile() over a range.

import { BUCKET_COUNT, quantile, type CallStats } from './callStats.ts';
import { CLOSE_CODES, type ServerObserver } from './observer.ts';

const SNAPSHOTS = 11; // 10 s window
/** Seconds of calls/s the page's chart shows, kept here so it is full when the page opens. */
const HISTORY_SECONDS = 120;

interface Snapshot {
  at: number;
  served: Float64Array;
  made: Float64Array;
  servedCodes: Float64Array;
  madeCodes: Float64Array;
  messagesIn: number;
  messagesOut: number;
}

export interface MethodRow {
  method: string;
  /** Calls per second over the window. */
  rate: number;
  /** Seconds, over the window; null when the window saw no call. */
  p50: number | null;
  p99: number | null;
  /** Calls since the server started, and how many of them failed. */
  total: number;
  errors: number;
}

export class Window {
  #ring: Snapshot[] = [];
  /** Calls completed so far, served and made, once a second: the chart's last 2 minutes (121 totals, 120 rates). */
  #history: { at: number; served: number; made: number }[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(readonly obs: ServerObserver) {}

  /** Snapshots are taken only while someone looks (the monitor route is mounted). */
  start(): void {
    if (this.#timer) return;
    this.#push();
    this.#timer = setInterval(() => this.#push(), 1000);
    this.#timer.unref?.();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #push(): void {
    const snap = this.#take();
    this.#ring.push(snap);
    if (this.#ring.length > SNAPSHOTS) this.#ring.shift();
    this.#history.push({ at: snap.at, served: sum(snap.served), made: sum(snap.made) });
    if (this.#history.length > HISTORY_SECONDS + 1) this.#history.shift();
  }

  /** Calls/s served and made in each of the last (up to) 120 seconds, oldest first. */
  #rates(): [number, number][] {
    const h = this.#history;
    const out: [number, number][] = [];
    for (let i = 1; i < h.length; i++) {
      const s = Math.max(0.001, (h[i]!.at - h[i - 1]!.at) / 1000);
      out.push([round2((h[i]!.served - h[i - 1]!.served) / s), round2((h[i]!.made - h[i - 1]!.made) / s)]);
    }
    return out;
  }

  #take(): Snapshot {
    const o = this.obs;
    const snap: Snapshot = {
      at: Date.now(),
      served: o.servedStats.methodBuckets(),
      made: o.madeStats.methodBuckets(),
      servedCodes: codeTotals(o.servedStats),
      madeCodes: codeTotals(o.madeStats),
      messagesIn: o.messagesIn,
      messagesOut: o.messagesOut,
    };
    return snap;
  }

  /** Everything the monitor page shows, computed from a fresh snapshot against the oldest. */
  view() {
    const o = this.obs;
    const now = this.#take();
    const old = this.#ring[0] ?? now;
    const seconds = Math.max(0.001, (now.at - old.at) / 1000);
    const rows = (stats: CallStats, cur: Float64Array, prev: Float64Array): MethodRow[] => {
      const out: MethodRow[] = [];
      const delta = new Float64Array(BUCKET_COUNT);
      for (let m = 0; m <= stats.methods.cap; m++) {
        const base = m * BUCKET_COUNT;
        let total = 0;
        let recent = 0;
        for (let b = 0; b < BUCKET_COUNT; b++) {
          total += cur[base + b]!;
          delta[b] = cur[base + b]! - (prev.length === cur.length ? prev[base + b]! : 0);
          recent += delta[b]!;
        }
        if (total === 0) continue;
        out.push({
          method: stats.methods.nameOf(m),
          rate: recent / seconds,
          p50: quantile(0.5, delta) ?? null,
          p99: quantile(0.99, delta) ?? null,
          total,
          errors: total - countOk(stats, m),
        });
      }
      return out.sort((a, b) => b.rate - a.rate || b.total - a.total);
    };
    const codes = o.codes.names.slice(1).map((code, i) => ({
      code,
      window: now.servedCodes[i + 1]! - old.servedCodes[i + 1]! + (now.madeCodes[i + 1]! - old.madeCodes[i + 1]!),
      total: now.servedCodes[i + 1]! + now.madeCodes[i + 1]!,
    }));
    return {
      at: now.at,
      uptimeSeconds: Math.round((now.at - o.startedAt) / 1000),
      windowSeconds: seconds,
      ...o.gauges(),
      messagesInPerSecond: (now.messagesIn - old.messagesIn) / seconds,
      messagesOutPerSecond: (now.messagesOut - old.messagesOut) / seconds,
      served: rows(o.servedStats, now.served, old.served),
      made: rows(o.madeStats, now.made, old.made),
      errorsByCode: codes.filter((c) => c.total > 0),
      recentErrors: o.recentErrors(),
      /** [served, made] calls/s per second, oldest first: the chart, full from the first view. */
      history: this.#rates(),
      droppedNotifications: o.droppedNotifications,
      disconnects4009: o.disconnects[CLOSE_CODES.indexOf(4009)]!,
    };
  }
}

export type MonitorView = ReturnType<Window['view']>;

function sum(a: Float64Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) n += a[i]!;
  return n;
}

const round2 = (n: number): number => Math.round(n * 100) / 100;

function codeTotals(stats: CallStats): Float64Array {
  const out = new Float64Array(stats.nCodes);
  for (let c = 0; c < stats.nCodes; c++) out[c] = stats.countOfCode(c);
  return out;
}

function countOk(stats: CallStats, m: number): number {
  const base = m * stats.nCodes * BUCKET_COUNT; // code 0 is OK
  let n = 0;
  for (let b = 0; b < BUCKET_COUNT; b++) n += stats.counts[base + b]!;
  return n;
}
