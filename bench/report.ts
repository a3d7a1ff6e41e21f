// Turns run results into the report: ratios, target checks, a Markdown table and an SVG
// chart of latency percentiles (hand-written SVG: no charting dependency).

import type { RunResult } from './orchestrate.ts';
import type { Scenario } from './config.ts';
import type { SystemName } from './clients/systems.ts';

export interface Ratio {
  scenario: Scenario;
  /** What is compared: lower is better for all of them. */
  metric: string;
  volley: number;
  /** volley-ws / volley: what the portable transport costs over the native one (> 1: dearer). */
  wsOverNative?: number;
  vsRaw?: number;
  vsSocketio?: number;
  vsSocketioUws?: number;
  vsBirpc?: number;
}

export interface Target {
  target: string;
  met: boolean | null;
  detail: string;
}

/** The cost figure of a scenario (lower is better) and its unit. */
function cost(r: RunResult): { metric: string; value: number | undefined } {
  if (r.scenario === 'idle' || r.scenario === 'idle-max') return { metric: 'RSS KiB per idle connection', value: r.rssPerConnKiB };
  if (r.scenario === 'storm') return { metric: 'server CPU µs per connection', value: r.serverCpuUsPerCall };
  if (r.scenario === 'broadcast') return { metric: 'server CPU µs per delivery', value: r.serverCpuUsPerCall };
  return { metric: 'server CPU µs per call', value: r.serverCpuUsPerCall };
}

const r2 = (v: number) => Math.round(v * 100) / 100;

export function ratios(results: RunResult[]): Ratio[] {
  const out: Ratio[] = [];
  const scenarios = [...new Set(results.map((r) => r.scenario))];
  for (const scenario of scenarios) {
    const of = (s: SystemName) => results.find((r) => r.scenario === scenario && r.system === s && !r.error);
    const v = of('volley');
    if (!v) continue;
    const { metric, value } = cost(v);
    if (value === undefined) continue;
    const vs = (s: SystemName) => {
      const p = of(s);
      const pv = p ? cost(p).value : undefined;
      return pv ? r2(value / pv) : undefined;
    };
    out.push({
      scenario,
      metric,
      volley: value,
      wsOverNative: (() => {
        const w = of('volley-ws');
        const wv = w ? cost(w).value : undefined;
        return wv !== undefined ? r2(wv / value) : undefined;
      })(),
      vsRaw: vs('raw'),
      vsSocketio: vs('socketio'),
      vsSocketioUws: vs('socketio-uws'),
      vsBirpc: vs('birpc'),
    });
  }
  return out;
}

/** The issue-4 targets, judged on this run's figures (null: not measured in this run). */
export function targets(results: RunResult[], fdLimit: number): Target[] {
  const rs = ratios(results);
  const t: Target[] = [];
  const callScenarios: Scenario[] = ['call-small', 'call-small-pipelined', 'call-1kb', 'server-calls', 'server-calls-1kb', 'call-many'];
  const rawRatios = rs.filter((r) => callScenarios.includes(r.scenario) && r.vsRaw !== undefined);
  t.push({
    target: 'server CPU per call ≤ 1.1× raw uWS+msgpackr in every call scenario',
    met: rawRatios.length ? rawRatios.every((r) => r.vsRaw! <= 1.1) : null,
    detail: rawRatios.map((r) => `${r.scenario} ${r.vsRaw}×`).join(', '),
  });
  const piped = rs.find((r) => r.scenario === 'call-small-pipelined');
  t.push({
    target: 'pipelined: server CPU per call ≤ 1.0× raw',
    met: piped?.vsRaw !== undefined ? piped.vsRaw <= 1.0 : null,
    detail: piped?.vsRaw !== undefined ? `${piped.vsRaw}×` : 'not measured',
  });
  const sio = rs.filter((r) => r.scenario !== 'idle-max' && (r.vsSocketio !== undefined || r.vsSocketioUws !== undefined));
  t.push({
    target: 'ahead of socket.io (both engines) in every scenario',
    met: sio.length ? sio.every((r) => (r.vsSocketio ?? 0) < 1 && (r.vsSocketioUws ?? 0) < 1) : null,
    detail: sio.map((r) => `${r.scenario} ${r.vsSocketio ?? '–'}× / ${r.vsSocketioUws ?? '–'}×`).join(', '),
  });
  // The largest count measured: RSS growth over a few thousand sockets is at the mercy of
  // heap and allocator steps; over 19,000 it settles.
  const idle =
    results.find((r) => r.system === 'volley' && r.scenario === 'idle-max' && !r.error) ??
    results.find((r) => r.system === 'volley' && r.scenario === 'idle' && !r.error);
  t.push({
    target: 'RSS per idle connection ≤ 2.5 KiB',
    met: idle?.rssPerConnKiB !== undefined ? idle.rssPerConnKiB <= 2.5 : null,
    detail: idle ? `${idle.rssPerConnKiB} KiB RSS (JS heap ${idle.heapPerConnKiB} KiB) per connection over ${idle.held} connections` : 'not measured',
  });
  const b = (s: SystemName) => results.find((r) => r.system === s && r.scenario === 'broadcast' && !r.error);
  const bv = b('volley');
  const bs = [b('socketio'), b('socketio-uws')].filter((x): x is RunResult => !!x?.deliveriesPerCpuSec);
  const factors = bs.map((x) => r2(bv!.deliveriesPerCpuSec! / x.deliveriesPerCpuSec!));
  t.push({
    target: 'broadcast to 1,000: ≥ 10× socket.io deliveries per server-CPU-second',
    met: bv?.deliveriesPerCpuSec && bs.length && bv.connections >= 1000 ? factors.every((f) => f >= 10) : null,
    detail: bv ? `${bv.connections} clients; ${bs.map((x, i) => `${factors[i]}× ${x.system}`).join(', ')}` : 'not measured',
  });
  const max = results.find((r) => r.system === 'volley' && r.scenario === 'idle-max' && !r.error);
  t.push({
    target: `one server holds ≥ 19,000 idle connections (ulimit -n here: ${fdLimit})`,
    met: max ? (max.held ?? 0) >= 19_000 : null,
    detail: max ? `${max.held} held, ${max.serverRssMiB} MiB RSS, ${max.rssPerConnKiB} KiB each` : 'not run (use --idle-max)',
  });
  const client = (s: SystemName, sc: Scenario) => results.find((r) => r.system === s && r.scenario === sc && !r.error);
  const cr = (['call-small', 'call-small-pipelined'] as Scenario[])
    .map((sc) => {
      const v = client('volley', sc)?.clientCpuUsPerCall;
      const raw = client('raw', sc)?.clientCpuUsPerCall;
      return v && raw ? { sc, f: r2(v / raw) } : undefined;
    })
    .filter((x) => !!x);
  t.push({
    target: 'Volley Node client CPU per call ≤ 1.2× bare ws + msgpackr client',
    met: cr.length ? cr.every((x) => x.f <= 1.2) : null,
    detail: cr.map((x) => `${x.sc} ${x.f}×`).join(', ') || 'not measured',
  });
  return t;
}

const fmt = (v: number | undefined, digits = 0): string =>
  v === undefined || Number.isNaN(v) ? '–' : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

export function markdown(results: RunResult[], meta: Record<string, unknown>, fdLimit: number): string {
  const lines: string[] = [];
  lines.push(`Machine: ${meta.cpu} × ${meta.cores} cores, ${meta.memGiB} GiB, Node ${meta.node}, ${meta.platform}; open-file limit (ulimit -n) ${fdLimit}; ${meta.date}${meta.quick ? ' (quick mode)' : ''}`);
  lines.push('');
  lines.push('| scenario | system | conns | calls/s | p50 ms | p90 ms | p99 ms | p99.9 ms | server CPU µs/call | client CPU µs/call | server RSS MiB | other |');
  lines.push('|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|');
  for (const r of results) {
    const l = r.latencyMs;
    const other: string[] = [];
    if (r.error) other.push(`FAILED: ${r.error.split('\n')[0]!.slice(0, 80)}`);
    if (r.deliveriesPerCpuSec) other.push(`${fmt(r.deliveriesPerCpuSec)} deliveries/CPU-s`);
    if (r.rssPerConnKiB !== undefined) other.push(`${fmt(r.rssPerConnKiB, 2)} KiB RSS/conn (JS heap ${fmt(r.heapPerConnKiB, 2)}), ${fmt(r.held)} held`);
    if (r.connsPerSec !== undefined) other.push(`${fmt(r.connsPerSec)} conns/s (latency = handshake)`);
    if (r.inflight && r.inflight > 1) other.push(`${r.inflight} in flight/conn`);
    if (r.errors) other.push(`${r.errors} errors${r.firstError ? ` (${r.firstError.slice(0, 60)})` : ''}`);
    lines.push(
      `| ${r.scenario} | ${r.system} | ${fmt(r.connections)} | ${fmt(r.callsPerSec)} | ${fmt(l?.p50, 3)} | ${fmt(l?.p90, 3)} | ${fmt(l?.p99, 3)} | ${fmt(l?.p999, 3)} | ${fmt(r.serverCpuUsPerCall, 2)} | ${fmt(r.clientCpuUsPerCall, 2)} | ${fmt(r.serverRssMiB, 1)} | ${other.join('; ')} |`,
    );
  }
  lines.push('');
  lines.push('Ratios, Volley / peer on each scenario\'s cost figure (lower is better for Volley):');
  lines.push('');
  lines.push('| scenario | figure | Volley | volley-ws / Volley | / raw | / socket.io (ws) | / socket.io (uWS) | / birpc |');
  lines.push('|---|---|--:|--:|--:|--:|--:|--:|');
  for (const r of ratios(results))
    lines.push(`| ${r.scenario} | ${r.metric} | ${fmt(r.volley, 2)} | ${fmt(r.wsOverNative, 2)} | ${fmt(r.vsRaw, 2)} | ${fmt(r.vsSocketio, 2)} | ${fmt(r.vsSocketioUws, 2)} | ${fmt(r.vsBirpc, 2)} |`);
  lines.push('');
  lines.push('Targets (issue 4):');
  lines.push('');
  for (const t of targets(results, fdLimit))
    lines.push(`- ${t.met === null ? '[ ] not measured:' : t.met ? '[x] met:' : '[ ] NOT met:'} ${t.target} — ${t.detail}`);
  return lines.join('\n') + '\n';
}

const COLORS: Record<SystemName, string> = {
  volley: '#d62728',
  'volley-ws': '#e377c2',
  raw: '#2ca02c',
  socketio: '#1f77b4',
  'socketio-uws': '#9467bd',
  birpc: '#ff7f0e',
};

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** One panel per scenario: latency at p50/p90/p99/p99.9 on a log axis, one line per system. */
export function svgChart(results: RunResult[]): string {
  const withLatency = results.filter((r) => r.latencyMs && r.latencyMs.count > 0);
  const scenarios = [...new Set(withLatency.map((r) => r.scenario))];
  const systems = [...new Set(withLatency.map((r) => r.system))];
  const pw = 300;
  const ph = 220;
  const cols = 3;
  const rows = Math.max(1, Math.ceil(scenarios.length / cols));
  const W = cols * pw + 20;
  const H = rows * ph + 60;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="10" y="18" font-size="14" font-weight="bold">Latency percentiles (ms, log scale) per scenario</text>`);
  systems.forEach((s, i) => {
    const x = 10 + i * 120;
    out.push(`<rect x="${x}" y="28" width="12" height="12" fill="${COLORS[s]}"/><text x="${x + 16}" y="38">${esc(s)}</text>`);
  });
  const P = ['p50', 'p90', 'p99', 'p999'] as const;
  scenarios.forEach((sc, idx) => {
    const ox = 10 + (idx % cols) * pw;
    const oy = 50 + Math.floor(idx / cols) * ph;
    const left = ox + 45;
    const right = ox + pw - 15;
    const top = oy + 25;
    const bottom = oy + ph - 30;
    const rs = withLatency.filter((r) => r.scenario === sc);
    const vals = rs.flatMap((r) => P.map((p) => Math.max(0.001, r.latencyMs![p])));
    let lo = Math.floor(Math.log10(Math.min(...vals)));
    let hi = Math.ceil(Math.log10(Math.max(...vals)));
    if (hi === lo) hi = lo + 1;
    const y = (v: number) => bottom - ((Math.log10(Math.max(0.001, v)) - lo) / (hi - lo)) * (bottom - top);
    const x = (i: number) => left + (i / (P.length - 1)) * (right - left);
    out.push(`<text x="${ox + 5}" y="${oy + 14}" font-weight="bold">${esc(sc)}</text>`);
    out.push(`<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#999"/>`);
    for (let e = lo; e <= hi; e++) {
      const yy = y(10 ** e);
      out.push(`<line x1="${left}" x2="${right}" y1="${yy}" y2="${yy}" stroke="#eee"/>`);
      out.push(`<text x="${left - 4}" y="${yy + 4}" text-anchor="end">${10 ** e >= 1 ? 10 ** e : (10 ** e).toFixed(-e)}</text>`);
    }
    P.forEach((p, i) => out.push(`<text x="${x(i)}" y="${bottom + 14}" text-anchor="middle">${p === 'p999' ? 'p99.9' : p}</text>`));
    for (const r of rs) {
      const pts = P.map((p, i) => `${x(i).toFixed(1)},${y(r.latencyMs![p]).toFixed(1)}`).join(' ');
      out.push(`<polyline points="${pts}" fill="none" stroke="${COLORS[r.system]}" stroke-width="2"/>`);
      for (const pt of pts.split(' ')) {
        const [cx, cy] = pt.split(',');
        out.push(`<circle cx="${cx}" cy="${cy}" r="2.5" fill="${COLORS[r.system]}"/>`);
      }
    }
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
