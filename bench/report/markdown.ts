// The Markdown report: figures per scenario and system (medians over rounds with their
// spread), Volley's per-round ratios to each peer, the targets with a pass/fail column, and
// the per-round cost figures so a drift over the run can be seen.

import type { RunResult } from '../orchestrate.ts';
import { cost, metricOf, PEERS, ratios, roundOf, summarize, type Peer, type Summary } from './summary.ts';
import { targets, type Target } from './targets.ts';
import { fmt, fmtSpread } from './format.ts';
import { streamSection } from './streams.ts';
import { notApplicable } from '../schedule.ts';
import { STREAM_SCENARIOS } from '../config.ts';

const PEER_TITLE: Record<Peer, string> = {
  raw: '/ raw',
  'socketio-uws': '/ socket.io (uWS)',
  socketio: '/ socket.io (ws)',
  birpc: '/ birpc',
  signalr: '/ SignalR (ASP.NET Core, MessagePack)',
  'volley-ws': '/ volley-ws (Volley on ws)',
  'volley-base': '/ volley-base (the baseline checkout)',
};

function other(s: Summary): string {
  const o: string[] = [];
  if (s.error) o.push(`FAILED ${s.rounds - s.ok} of ${s.rounds}: ${s.error.split('\n')[0]!.slice(0, 80)}`);
  if (s.playersPerCore)
    o.push(
      `${fmtSpread(s.playersPerCore)} players/core; ${fmtSpread(s.cpuUsPerPlayerSec, 1)} µs CPU/player-s; ${fmt(s.players)} players` +
        (s.keptUp !== undefined
          ? `; kept up ${fmt(s.keptUp * 100, 1)}%${s.keptUp < 0.95 ? ` (BEHIND in ${s.behind ?? 'a stream'}: figure flattering)` : ''}`
          : ''),
    );
  if (s.deliveriesPerCpuSec) o.push(`${fmtSpread(s.deliveriesPerCpuSec)} deliveries/CPU-s`);
  if (s.rssPerConnKiB) o.push(`${fmtSpread(s.rssPerConnKiB, 2)} KiB RSS/conn (JS heap ${fmtSpread(s.heapPerConnKiB, 2)}), ${fmt(s.held)} held`);
  if (s.connsPerSec) o.push(`${fmtSpread(s.connsPerSec)} conns/s (latency = handshake)`);
  if (s.inflight && s.inflight > 1) o.push(`${s.inflight} in flight/conn`);
  if (STREAM_SCENARIOS.has(s.scenario))
    o.push(`per item (calls/s: items/s); ${s.scenario.startsWith('stream') ? 'a stream per client' : 'notifications'}`);
  if (s.errors) o.push(`${s.errors} errors${s.firstError ? ` (${s.firstError.slice(0, 60)})` : ''}`);
  return o.join('; ');
}

function holds(t: Target): string {
  if (t.met === null) return 'not measured';
  if (!t.met) return '**no**';
  return t.everyRound ? 'yes' : 'yes (median; not every round)';
}

function targetValue(t: Target): string {
  if (!t.value) return '–';
  if (t.unit === 'KiB') return fmtSpread(t.value, 2, ' KiB');
  if (t.unit === 'connections') return fmt(t.value.median);
  return fmtSpread(t.value, 2);
}

export function markdown(results: readonly RunResult[], meta: Record<string, unknown>, fdLimit: number): string {
  const L: string[] = [];
  const rounds = Math.max(1, ...results.map(roundOf));
  L.push(
    `Machine: ${meta.cpu} × ${meta.cores} cores, ${meta.memGiB} GiB, Node ${meta.node}, ${meta.platform}; open-file limit (ulimit -n) ${fdLimit}; ${meta.date}${meta.quick ? ' (quick mode)' : ''}` +
      (meta.wallMin ? `; ${meta.wallMin} min` : ''),
  );
  L.push('');
  L.push(
    `${rounds} round${rounds > 1 ? 's' : ''} per scenario, systems interleaved (each round runs every system once, the order rotated each round). ` +
      'Each figure is the median over rounds, with (min–max) where the rounds differ.',
  );
  L.push('');
  L.push('| scenario | system | rounds | conns | calls/s | p50 ms | p90 ms | p99 ms | p99.9 ms | server CPU µs/call | client CPU µs/call | server RSS MiB | other |');
  L.push('|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|');
  for (const s of summarize(results)) {
    const l = s.latencyMs;
    const rs = s.ok === s.rounds ? String(s.rounds) : `${s.ok} of ${s.rounds}`;
    L.push(
      `| ${s.scenario} | ${s.system} | ${rs} | ${fmt(s.connections)} | ${fmtSpread(s.callsPerSec)} | ${fmt(l?.p50, 3)} | ${fmt(l?.p90, 3)} | ${fmt(l?.p99, 3)} | ${fmt(l?.p999, 3)} | ${fmtSpread(s.serverCpuUsPerCall, 2)} | ${fmtSpread(s.clientCpuUsPerCall, 2)} | ${fmt(s.serverRssMiB?.median, 1)} | ${other(s)} |`,
    );
  }
  L.push('');
  L.push('### Volley / peer');
  L.push('');
  L.push('Per round, Volley\'s cost figure over the peer\'s in the same round; the median of those (min–max). Lower is better for Volley; below 1, Volley is cheaper.');
  L.push('');
  // volley-base has a column only in a run against a baseline (--baseline).
  const peers = PEERS.filter((p) => p !== 'volley-base' || results.some((r) => r.system === p));
  L.push(`| scenario | figure | Volley | ${peers.map((p) => PEER_TITLE[p]).join(' | ')} |`);
  L.push(`|---|---|--:|${peers.map(() => '--:').join('|')}|`);
  const cell = (r: ReturnType<typeof ratios>[number], p: Peer) => (notApplicable(r.scenario, p) ? 'n/a' : fmtSpread(r.peers[p], 2));
  for (const r of ratios(results)) L.push(`| ${r.scenario} | ${r.metric} | ${fmtSpread(r.volley, 2)} | ${peers.map((p) => cell(r, p)).join(' | ')} |`);
  // Which peers a scenario leaves out, and why (schedule.ts): not run, not failed.
  const na = new Map<string, string[]>();
  for (const r of ratios(results)) {
    const out = peers.filter((p) => notApplicable(r.scenario, p));
    if (out.length) {
      const key = `${out.join(', ')}: ${notApplicable(r.scenario, out[0]!)}`;
      na.set(key, [...(na.get(key) ?? []), r.scenario]);
    }
  }
  if (na.size) L.push('', `n/a: not run, no equivalent (${[...na].map(([why, scs]) => `${scs.join(', ')}: ${why}`).join('; ')}).`);
  L.push('');
  L.push(...streamSection(results));
  L.push('### Targets (issue 14)');
  L.push('');
  L.push('Judged on the median of the per-round ratios (players per core: Volley / peer, higher is better). "not every round": the median holds, the worst round does not.');
  L.push('');
  L.push('| target | scenario | Volley vs peer: median (min–max) | holds |');
  L.push('|---|---|--:|---|');
  for (const t of targets(results, fdLimit))
    L.push(`| ${t.target}${t.issue !== 14 ? ` (issue ${t.issue})` : ''} | ${t.scenario} | ${targetValue(t)} | ${holds(t)} |`);
  L.push('');
  L.push('### Per round');
  L.push('');
  L.push('Each run\'s cost figure, in the order of the rounds (a drift of the machine shows as a column moving for every system).');
  L.push('');
  L.push(`| scenario | system | figure | ${Array.from({ length: rounds }, (_, i) => `r${i + 1}`).join(' | ')} |`);
  L.push(`|---|---|---|${Array.from({ length: rounds }, () => '--:').join('|')}|`);
  for (const s of summarize(results)) {
    const cells = Array.from({ length: rounds }, (_, i) => {
      const r = results.find((x) => x.scenario === s.scenario && x.system === s.system && roundOf(x) === i + 1);
      if (!r) return '';
      if (r.error) return 'failed';
      return fmt(cost(r).value, 2);
    });
    L.push(`| ${s.scenario} | ${s.system} | ${metricOf(s.scenario)} | ${cells.join(' | ')} |`);
  }
  return L.join('\n') + '\n';
}
