// The targets of issue 14 (and the earlier ones of issue 4 it does not restate), judged on
// the median over rounds of the per-round ratio. `everyRound` says whether the target also
// held in the worst round, so a reader can tell a firm pass from a lucky median.

import type { RunResult } from '../orchestrate.ts';
import type { Scenario } from '../config.ts';
import type { SystemName } from '../clients/systems.ts';
import { cost, pairedRatios, summarize } from './summary.ts';
import { spread, type Spread } from './stats.ts';
import { applies } from '../schedule.ts';

export interface Target {
  target: string;
  scenario: Scenario;
  /** Which issue set it. */
  issue: 4 | 14 | 27;
  /** The compared figure: a ratio Volley / peer unless `unit` says otherwise. */
  value?: Spread;
  unit: '×' | 'KiB' | 'connections';
  /** On the median; null: not measured in this run. */
  met: boolean | null;
  /** Also in the worst round. */
  everyRound?: boolean;
}

type Sense = 'atMost' | 'atLeast';

function judge(
  target: string,
  scenario: Scenario,
  value: Spread | undefined,
  limit: number,
  sense: Sense,
  issue: 4 | 14 | 27 = 14,
  unit: Target['unit'] = '×',
): Target {
  if (!value) return { target, scenario, issue, unit, met: null };
  const ok = (v: number) => (sense === 'atMost' ? v <= limit : v >= limit);
  return { target, scenario, issue, unit, value, met: ok(value.median), everyRound: ok(sense === 'atMost' ? value.max : value.min) };
}

const CALLS_VS_RAW: Scenario[] = ['call-small', 'call-1kb', 'server-calls', 'server-calls-1kb', 'call-many'];
const CLIENT_SCENARIOS: Scenario[] = ['call-small', 'call-small-pipelined', 'call-1kb'];

export function targets(results: readonly RunResult[], fdLimit: number): Target[] {
  const t: Target[] = [];
  const vs = (scenario: Scenario, peer: SystemName, of = (r: RunResult) => cost(r).value) =>
    pairedRatios(results, scenario, 'volley', peer, of);

  for (const sc of CALLS_VS_RAW) t.push(judge('server CPU per call ≤ 1.15× raw', sc, vs(sc, 'raw'), 1.15, 'atMost'));
  t.push(judge('server CPU per call ≤ 0.7× raw', 'call-small-pipelined', vs('call-small-pipelined', 'raw'), 0.7, 'atMost'));
  t.push(judge('server CPU per connection ≤ 1.3× raw', 'storm', vs('storm', 'raw'), 1.3, 'atMost'));
  // "In every scenario": every one this run measured.
  const ran = [...new Set(results.filter((r) => r.system === 'volley').map((r) => r.scenario))];
  for (const sc of ran) {
    // Not where the peer has no equivalent (streams: socket.io has none).
    if (applies(sc, 'socketio-uws')) t.push(judge('cost ≤ 0.8× socket.io (uWS)', sc, vs(sc, 'socketio-uws'), 0.8, 'atMost'));
    if (applies(sc, 'socketio')) t.push(judge('cost ≤ 0.5× socket.io (ws)', sc, vs(sc, 'socketio'), 0.5, 'atMost'));
    // Issue 27: half of SignalR's server CPU (per call, delivery, connection, player-second),
    // a tenth of its memory per idle connection.
    const idleLike = sc === 'idle' || sc === 'idle-max';
    t.push(judge(`cost ≤ ${idleLike ? '0.1' : '0.5'}× SignalR`, sc, vs(sc, 'signalr'), idleLike ? 0.1 : 0.5, 'atMost', 27));
  }
  for (const sc of CLIENT_SCENARIOS)
    t.push(judge('client CPU per call ≤ 1.2× bare ws + msgpackr client', sc, vs(sc, 'raw', (r) => r.clientCpuUsPerCall), 1.2, 'atMost'));
  const ppc = (r: RunResult) => r.playersPerCore;
  t.push(judge('players per core ≥ 0.9× raw', 'game-tick', vs('game-tick', 'raw', ppc), 0.9, 'atLeast'));
  t.push(judge('players per core ≥ 1.5× socket.io (uWS)', 'game-tick', vs('game-tick', 'socketio-uws', ppc), 1.5, 'atLeast'));

  // Issue 4's absolute targets, which issue 14 does not restate.
  const sums = summarize(results).filter((s) => s.system === 'volley');
  const idle = sums.find((s) => s.scenario === 'idle-max' && s.ok) ?? sums.find((s) => s.scenario === 'idle' && s.ok);
  // RSS that shrank while connections were added is allocator noise (small counts), not a figure.
  const rss = idle?.rssPerConnKiB && idle.rssPerConnKiB.median > 0 ? idle.rssPerConnKiB : undefined;
  t.push(judge('RSS per idle connection ≤ 2.5 KiB', idle?.scenario ?? 'idle', rss, 2.5, 'atMost', 4, 'KiB'));
  const max = sums.find((s) => s.scenario === 'idle-max' && s.ok);
  t.push(
    judge(`holds ≥ 19,000 idle connections (ulimit -n ${fdLimit})`, 'idle-max', max?.held !== undefined ? spread([max.held]) : undefined, 19_000, 'atLeast', 4, 'connections'),
  );
  // A room of 1,000 or it is not the target's case.
  const big = results.some((r) => r.scenario === 'broadcast' && r.system === 'volley' && r.connections >= 1000);
  const dps = (r: RunResult) => r.deliveriesPerCpuSec;
  for (const peer of ['socketio-uws', 'socketio'] as const)
    t.push(
      judge(`deliveries per CPU-second ≥ 10× ${peer === 'socketio' ? 'socket.io (ws)' : 'socket.io (uWS)'} to a room of 1,000`, 'broadcast', big ? vs('broadcast', peer, dps) : undefined, 10, 'atLeast', 4),
    );
  return t;
}

/** The issue-14 (and issue-27 SignalR) targets as a limit on the cost ratio Volley / peer (lower is better), for the chart. */
export function costLimit(scenario: Scenario, peer: SystemName): number | undefined {
  if (peer === 'raw') {
    if (CALLS_VS_RAW.includes(scenario)) return 1.15;
    if (scenario === 'call-small-pipelined') return 0.7;
    if (scenario === 'storm') return 1.3;
    if (scenario === 'game-tick') return 1 / 0.9;
  }
  if (peer === 'socketio-uws') return scenario === 'game-tick' ? 1 / 1.5 : 0.8;
  if (peer === 'socketio') return 0.5;
  if (peer === 'signalr') return scenario === 'idle' || scenario === 'idle-max' ? 0.1 : 0.5; // issue 27
  return undefined;
}
