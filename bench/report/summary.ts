// From one result per run to one line per scenario and system (medians over rounds) and
// to Volley's ratio to each peer (the median of the per-round ratios).

import type { RunResult } from '../orchestrate.ts';
import { STREAM_SCENARIOS, type Scenario } from '../config.ts';
import { SYSTEMS, type SystemName } from '../clients/systems.ts';
import type { Percentiles } from '../lib/histogram.ts';
import { roundSpread, spread, type Spread } from './stats.ts';

export type Peer = Exclude<SystemName, 'volley'>;
export const PEERS: Peer[] = ['raw', 'socketio-uws', 'socketio', 'birpc', 'volley-ws', 'volley-base', 'signalr'];

/** The cost figure of a scenario (lower is better) and its unit. */
export function cost(r: RunResult): { metric: string; value: number | undefined } {
  if (r.error) return { metric: metricOf(r.scenario), value: undefined };
  switch (r.scenario) {
    case 'idle':
    case 'idle-max':
      return { metric: metricOf(r.scenario), value: r.rssPerConnKiB };
    case 'game-tick':
      return { metric: metricOf(r.scenario), value: r.cpuUsPerPlayerSec };
    default:
      return { metric: metricOf(r.scenario), value: r.serverCpuUsPerCall };
  }
}

export function metricOf(scenario: Scenario): string {
  if (scenario === 'idle' || scenario === 'idle-max') return 'RSS KiB per idle connection';
  if (scenario === 'storm') return 'server CPU µs per connection';
  if (scenario === 'broadcast') return 'server CPU µs per delivery';
  if (scenario === 'game-tick') return 'server CPU µs per player-second';
  if (STREAM_SCENARIOS.has(scenario)) return 'server CPU µs per item';
  return 'server CPU µs per call';
}

/** Results of older reports carry no round: they were one round. */
export const roundOf = (r: RunResult): number => r.round ?? 1;

export interface Summary {
  scenario: Scenario;
  system: SystemName;
  /** Rounds run, and rounds that ran without failing. */
  rounds: number;
  ok: number;
  /** The first failure's message, if a round failed. */
  error?: string;
  connections: number;
  inflight?: number;
  metric: string;
  cost?: Spread;
  callsPerSec?: Spread;
  /** Median over rounds of each percentile. */
  latencyMs?: Omit<Percentiles, 'count' | 'max'>;
  serverCpuUsPerCall?: Spread;
  clientCpuUsPerCall?: Spread;
  serverRssMiB?: Spread;
  deliveriesPerCpuSec?: Spread;
  rssPerConnKiB?: Spread;
  heapPerConnKiB?: Spread;
  /** Fewest connections held in any round (idle). */
  held?: number;
  connsPerSec?: Spread;
  players?: number;
  cpuUsPerPlayerSec?: Spread;
  playersPerCore?: Spread;
  /** Worst round: the share of the scheduled game traffic that got through. */
  keptUp?: number;
  /** …and which stream it was. */
  behind?: string;
  errors: number;
  firstError?: string;
}

const order = (s: SystemName) => SYSTEMS.indexOf(s);

function scenariosOf(results: readonly RunResult[]): Scenario[] {
  return [...new Set(results.map((r) => r.scenario))];
}

export function summarize(results: readonly RunResult[]): Summary[] {
  const out: Summary[] = [];
  for (const scenario of scenariosOf(results)) {
    const systems = [...new Set(results.filter((r) => r.scenario === scenario).map((r) => r.system))].sort((a, b) => order(a) - order(b));
    for (const system of systems) {
      const all = results.filter((r) => r.scenario === scenario && r.system === system);
      const ok = all.filter((r) => !r.error);
      const pick = (f: (r: RunResult) => number | undefined) => spread(ok.map(f));
      const lat = ok.filter((r) => r.latencyMs && r.latencyMs.count > 0).map((r) => r.latencyMs!);
      const held = ok.map((r) => r.held).filter((h): h is number => h !== undefined);
      const kept = ok.filter((r) => r.keptUp !== undefined).sort((a, b) => a.keptUp! - b.keptUp!);
      out.push({
        scenario,
        system,
        rounds: all.length,
        ok: ok.length,
        error: all.find((r) => r.error)?.error,
        connections: Math.max(0, ...all.map((r) => r.connections)),
        inflight: all[0]?.inflight,
        metric: metricOf(scenario),
        cost: pick((r) => cost(r).value),
        callsPerSec: pick((r) => r.callsPerSec),
        latencyMs: lat.length
          ? {
              p50: spread(lat.map((l) => l.p50))!.median,
              p90: spread(lat.map((l) => l.p90))!.median,
              p99: spread(lat.map((l) => l.p99))!.median,
              p999: spread(lat.map((l) => l.p999))!.median,
            }
          : undefined,
        serverCpuUsPerCall: pick((r) => r.serverCpuUsPerCall),
        clientCpuUsPerCall: pick((r) => r.clientCpuUsPerCall),
        serverRssMiB: pick((r) => r.serverRssMiB),
        deliveriesPerCpuSec: pick((r) => r.deliveriesPerCpuSec),
        rssPerConnKiB: pick((r) => r.rssPerConnKiB),
        heapPerConnKiB: pick((r) => r.heapPerConnKiB),
        held: held.length ? Math.min(...held) : undefined,
        connsPerSec: pick((r) => r.connsPerSec),
        players: ok[0]?.players,
        cpuUsPerPlayerSec: pick((r) => r.cpuUsPerPlayerSec),
        playersPerCore: pick((r) => r.playersPerCore),
        keptUp: kept[0]?.keptUp,
        behind: kept[0]?.behind,
        errors: all.reduce((s, r) => s + r.errors, 0),
        firstError: all.find((r) => r.firstError)?.firstError,
      });
    }
  }
  return out;
}

/**
 * Per round, `of(volley) / of(peer)` for the runs of that round; the spread of those. A
 * round where either side failed or lacks the figure is left out of the pairs. Pairing
 * within a round is the point: two systems measured a minute apart share the machine's
 * state, two medians taken over different minutes don't.
 */
export function pairedRatios(
  results: readonly RunResult[],
  scenario: Scenario,
  a: SystemName,
  b: SystemName,
  of: (r: RunResult) => number | undefined,
): Spread | undefined {
  return roundRatios(results, [scenario, a], [scenario, b], of);
}

/** The same for any two runs of a round: a stream scenario over its notification baseline, say. */
export function roundRatios(
  results: readonly RunResult[],
  [sa, a]: [Scenario, SystemName],
  [sb, b]: [Scenario, SystemName],
  of: (r: RunResult) => number | undefined,
): Spread | undefined {
  const byRound = (scenario: Scenario, s: SystemName) => {
    const m = new Map<number, number>();
    for (const r of results)
      if (r.scenario === scenario && r.system === s && !r.error && !m.has(roundOf(r))) {
        const v = of(r);
        if (v !== undefined && v > 0) m.set(roundOf(r), v);
      }
    return m;
  };
  const as = byRound(sa, a);
  const bs = byRound(sb, b);
  const xs: number[] = [];
  for (const [round, av] of as) {
    const bv = bs.get(round);
    if (bv !== undefined) xs.push(av / bv);
  }
  return roundSpread(spread(xs), 3);
}

export interface Ratio {
  scenario: Scenario;
  /** What is compared: lower is better for all of them. */
  metric: string;
  /** Volley's own figure over the rounds. */
  volley: Spread;
  /** Volley / peer, per round, then the median of those (lower is better for Volley). */
  peers: Partial<Record<Peer, Spread>>;
}

export function ratios(results: readonly RunResult[]): Ratio[] {
  const out: Ratio[] = [];
  for (const scenario of scenariosOf(results)) {
    const volley = spread(results.filter((r) => r.scenario === scenario && r.system === 'volley').map((r) => cost(r).value));
    if (!volley) continue;
    const peers: Partial<Record<Peer, Spread>> = {};
    for (const p of PEERS) {
      const s = pairedRatios(results, scenario, 'volley', p, (r) => cost(r).value);
      if (s) peers[p] = s;
    }
    out.push({ scenario, metric: metricOf(scenario), volley, peers });
  }
  return out;
}
