// One run from this machine: start this generator's workers, meet the other generators (if
// any), and, on the coordinator, add everything up each second for the live view and, at
// the end, for the report and its thresholds.

import { Collector } from './collect.ts';
import { startGenerator } from './generator.ts';
import { Histogram } from './histogram.ts';
import type { Hub } from './hub.ts';
import { rampDownMs, rampUpMs } from './plan.ts';
import { buildReport, type Report, type SeriesPoint } from './report.ts';
import { callsDone, servedDone, sumCounts, type Snapshot } from './stats.ts';
import { checkThresholds } from './thresholds.ts';

export interface RunOptions {
  script: string;
  url: string;
  players: number;
  ramp: number;
  rampDown: number;
  durationMs: number;
  rate?: number;
  action?: string;
  workers: number;
  graceMs: number;
  thresholds: string[];
  hub: Hub;
  /** Each second on the coordinator: the point just added and the figures so far. */
  onTick?(point: SeriesPoint, snap: Snapshot, phase: string): void;
  log(line: string): void;
}

export interface RunResult {
  /** On the coordinator; undefined on the other generators. */
  report?: Report;
  /** 0 passed, 1 a threshold failed; from the coordinator on the others. */
  code: number;
}

export async function runLoadTest(o: RunOptions): Promise<RunResult> {
  const hub = o.hub;
  const coordinator = hub.generator === 0;
  let startAt = Infinity;
  let seq = 0;
  const failures: string[] = [];
  const gen = startGenerator({
    plan: {
      script: o.script,
      url: o.url,
      players: o.players,
      ramp: o.ramp,
      rampDown: o.rampDown,
      durationMs: o.durationMs,
      rate: o.rate,
      action: o.action,
      generator: hub.generator,
      generators: hub.generators,
      graceMs: o.graceMs,
    },
    workers: o.workers,
    startAt: async () => (startAt = await hub.startAt()),
    onFail: (m) => {
      failures.push(m);
      o.log(`worker failed: ${m}`);
    },
    onSnapshot: (snap) => {
      local = snap;
      void hub.publish(++seq, snap, false).catch((err: Error) => o.log(`could not publish to Redis: ${err.message}`));
      if (coordinator) void tick();
    },
  });
  let local: Snapshot | undefined;
  const stopNow = () => {
    o.log('stopping: ramp-down now (Ctrl-C again to quit at once)');
    gen.stop();
    process.once('SIGINT', () => process.exit(130));
  };
  process.once('SIGINT', stopNow);

  // Coordinator state.
  const collector = new Collector();
  const seen = new Map<number, number>();
  const series: SeriesPoint[] = [];
  let atFull: { snap: Snapshot; t: number } | undefined;
  let atDown: { snap: Snapshot; t: number } | undefined;
  let last: { t: number; calls: number; served: number; notified: number } | undefined;
  const fullMs = rampUpMs({ players: o.players, ramp: o.ramp } as never);
  const downMs = fullMs + o.durationMs;
  const endMs = downMs + rampDownMs({ players: o.players, rampDown: o.rampDown } as never);
  let ticking = false;

  const gather = async (): Promise<Snapshot> => {
    if (local) collector.put('g0', local);
    for (const [g, r] of await hub.others().catch(() => new Map())) {
      if ((seen.get(g) ?? 0) >= r.seq) continue;
      seen.set(g, r.seq);
      collector.put(`g${g}`, r.snap);
    }
    return collector.take();
  };

  const tick = async () => {
    if (ticking || startAt === Infinity) return;
    ticking = true;
    try {
      const snap = await gather();
      const tMs = Date.now() - startAt;
      if (tMs < 0) return;
      const t = tMs / 1000;
      const calls = callsDone(snap);
      const served = servedDone(snap);
      const notified = sumCounts(snap.notifyRecv);
      const dt = last ? t - last.t : t;
      const point: SeriesPoint = {
        t: Math.round(t * 10) / 10,
        players: snap.connected,
        callsPerSec: Math.round(snap.rate?.calls ?? (dt > 0 ? (calls - (last?.calls ?? 0)) / dt : 0)),
        servedPerSec: Math.round(snap.rate?.served ?? (dt > 0 ? (served - (last?.served ?? 0)) / dt : 0)),
        notifiedPerSec: Math.round(dt > 0 ? (notified - (last?.notified ?? 0)) / dt : 0),
        p99: Math.round(Histogram.fromSparse(snap.interval).percentile(99)) / 1000,
        cpuMax: Math.max(0, ...snap.load.map((l) => l.cpu)),
        loopMax: Math.max(0, ...snap.load.map((l) => l.loopP99)),
        calls,
        served,
        notified,
      };
      last = { t, calls, served, notified };
      series.push(point);
      if (!atFull && tMs >= fullMs) atFull = { snap, t };
      if (!atDown && tMs >= downMs) atDown = { snap, t };
      const phase = tMs < fullMs ? 'ramp-up' : tMs < downMs ? 'full load' : tMs < endMs ? 'ramp-down' : 'ending';
      o.onTick?.(point, snap, phase);
    } finally {
      ticking = false;
    }
  };

  const final = await gen.done;
  process.off('SIGINT', stopNow);
  await hub.publish(++seq, final, true).catch(() => {});
  if (startAt === Infinity) {
    await hub.close();
    throw new Error(failures[0] ?? 'the workers never started');
  }

  if (!coordinator) {
    o.log('done; waiting for the coordinator’s verdict');
    const code = await hub.verdict(60_000 + o.durationMs);
    await hub.close();
    return { code: code ?? 1 };
  }

  // Every generator's final figures (bounded wait: a lost generator is reported, not awaited forever).
  const deadline = Date.now() + 30_000;
  let finals = new Map<number, Snapshot>();
  while (Date.now() < deadline) {
    const others = await hub.others().catch(() => new Map());
    finals = new Map([...others].filter(([, r]) => r.final).map(([g, r]) => [g, r.snap]));
    if (finals.size >= hub.generators - 1) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  if (finals.size < hub.generators - 1) o.log(`only ${finals.size + 1} of ${hub.generators} generators reported their final figures`);
  ticking = true; // no more live ticks
  const total = new Collector();
  total.put('g0', final);
  for (const [g, s] of finals) total.put(`g${g}`, s);
  const merged = total.take();
  const report = buildReport({
    url: o.url,
    script: o.script,
    startedAt: startAt,
    config: {
      players: o.players,
      ramp: o.ramp,
      rampDown: o.rampDown,
      durationS: o.durationMs / 1000,
      rate: o.rate,
      action: o.action,
      workers: o.workers,
      generators: hub.generators,
    },
    final: merged,
    atFull: atFull?.snap,
    atDown: atDown?.snap,
    fullAtS: atFull?.t ?? fullMs / 1000,
    downAtS: atDown?.t ?? downMs / 1000,
    series,
  });
  report.thresholds = checkThresholds(report, o.thresholds);
  report.failures = failures;
  report.passed = report.thresholds.every((t) => t.ok) && failures.length === 0;
  const code = report.passed ? 0 : 1;
  await hub.setVerdict(code).catch(() => {});
  await hub.close();
  return { report, code };
}
