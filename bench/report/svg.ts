// The SVG report (hand-written: no charting dependency). On top, Volley's per-round ratio
// to each peer per scenario: a dot at the median and a whisker from the best to the worst
// round, on a log axis with a line at 1 and a tick at each issue-14 target. Below, latency
// percentiles per scenario (medians over rounds), one line per system.

import type { RunResult } from '../orchestrate.ts';
import type { SystemName } from '../clients/systems.ts';
import { PEERS, ratios, summarize } from './summary.ts';
import { costLimit } from './targets.ts';
import { fmtSpread } from './format.ts';

const COLORS: Record<SystemName, string> = {
  volley: '#d62728',
  raw: '#2ca02c',
  socketio: '#1f77b4',
  'socketio-uws': '#9467bd',
  birpc: '#ff7f0e',
  signalr: '#8c564b',
  'volley-ws': '#e377c2',
  'volley-base': '#7f7f7f',
};

const TICKS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const n1 = (v: number) => v.toFixed(1);

const W = 960;

/** The ratio panel; returns its height. */
function ratioPanel(results: readonly RunResult[], out: string[], top: number): number {
  const rows = ratios(results).flatMap((r) =>
    PEERS.filter((p) => r.peers[p]).map((p, i) => ({ scenario: r.scenario, peer: p, s: r.peers[p]!, first: i === 0 })),
  );
  out.push(`<text x="10" y="${top + 18}" font-size="14" font-weight="bold">Volley / peer, per-round ratio of the cost figure: median (dot), best–worst round (whisker); left of 1 = Volley cheaper</text>`);
  if (rows.length === 0) return 30;
  const left = 230;
  const right = W - 200;
  const y0 = top + 40;
  const rowH = 14;
  const gap = 8;
  const limits = rows.map((r) => costLimit(r.scenario, r.peer)).filter((v): v is number => v !== undefined);
  const values = rows.flatMap((r) => [r.s.min, r.s.max]).concat(1, limits);
  const lo = [...TICKS].reverse().find((t) => t <= Math.min(...values)) ?? TICKS[0]!;
  const hi = TICKS.find((t) => t >= Math.max(...values)) ?? TICKS[TICKS.length - 1]!;
  const span = Math.log10(hi) - Math.log10(lo) || 1;
  const x = (v: number) => left + ((Math.log10(Math.min(hi, Math.max(lo, v))) - Math.log10(lo)) / span) * (right - left);
  let y = y0;
  const ys: number[] = [];
  for (const r of rows) {
    if (r.first && ys.length) y += gap;
    ys.push(y);
    y += rowH;
  }
  const bottom = y + 4;
  for (const t of TICKS.filter((t) => t >= lo && t <= hi)) {
    out.push(`<line x1="${n1(x(t))}" x2="${n1(x(t))}" y1="${y0 - 8}" y2="${bottom}" stroke="#eee"/>`);
    out.push(`<text x="${n1(x(t))}" y="${bottom + 14}" text-anchor="middle">${t}×</text>`);
  }
  out.push(`<line class="parity" x1="${n1(x(1))}" x2="${n1(x(1))}" y1="${y0 - 8}" y2="${bottom}" stroke="#333" stroke-width="1.5"/>`);
  rows.forEach((r, i) => {
    const yy = ys[i]!;
    const c = COLORS[r.peer];
    if (r.first) out.push(`<text x="10" y="${yy + 4}" font-weight="bold">${esc(r.scenario)}</text>`);
    out.push(`<text x="${left - 8}" y="${yy + 4}" text-anchor="end" fill="${c}">vs ${esc(r.peer)}</text>`);
    const limit = costLimit(r.scenario, r.peer);
    if (limit !== undefined)
      out.push(`<line class="target" x1="${n1(x(limit))}" x2="${n1(x(limit))}" y1="${yy - 6}" y2="${yy + 6}" stroke="#000" stroke-dasharray="2,1"/>`);
    const a = n1(x(r.s.min));
    const b = n1(x(r.s.max));
    out.push(`<path class="whisker" d="M${a} ${yy - 4}v8M${a} ${yy}H${b}M${b} ${yy - 4}v8" stroke="${c}" stroke-width="1.5" fill="none"/>`);
    out.push(`<circle class="median" cx="${n1(x(r.s.median))}" cy="${yy}" r="3.5" fill="${c}"/>`);
    out.push(`<text x="${right + 10}" y="${yy + 4}">${esc(fmtSpread(r.s, 2))}</text>`);
  });
  out.push(`<text x="${left}" y="${bottom + 28}" fill="#555">dashed tick: the issue-14 target for that pair (game-tick: players per core, drawn as the cost ratio)</text>`);
  return bottom + 36 - top;
}

/** Latency panels (medians over rounds); returns their height. */
function latencyPanels(results: readonly RunResult[], out: string[], top: number): number {
  const sums = summarize(results).filter((s) => s.latencyMs);
  const scenarios = [...new Set(sums.map((s) => s.scenario))];
  const systems = [...new Set(sums.map((s) => s.system))];
  const pw = 310;
  const ph = 220;
  const cols = 3;
  const rows = Math.max(1, Math.ceil(scenarios.length / cols));
  out.push(`<text x="10" y="${top + 18}" font-size="14" font-weight="bold">Latency percentiles (ms, log scale) per scenario, median over rounds</text>`);
  systems.forEach((s, i) => {
    const x = 10 + i * 120;
    out.push(`<rect x="${x}" y="${top + 28}" width="12" height="12" fill="${COLORS[s]}"/><text x="${x + 16}" y="${top + 38}">${esc(s)}</text>`);
  });
  const P = ['p50', 'p90', 'p99', 'p999'] as const;
  scenarios.forEach((sc, idx) => {
    const ox = 10 + (idx % cols) * pw;
    const oy = top + 50 + Math.floor(idx / cols) * ph;
    const left = ox + 45;
    const right = ox + pw - 15;
    const ptop = oy + 25;
    const bottom = oy + ph - 30;
    const rs = sums.filter((s) => s.scenario === sc);
    const vals = rs.flatMap((r) => P.map((p) => Math.max(0.001, r.latencyMs![p])));
    const lo = Math.floor(Math.log10(Math.min(...vals)));
    let hi = Math.ceil(Math.log10(Math.max(...vals)));
    if (hi === lo) hi = lo + 1;
    const y = (v: number) => bottom - ((Math.log10(Math.max(0.001, v)) - lo) / (hi - lo)) * (bottom - ptop);
    const x = (i: number) => left + (i / (P.length - 1)) * (right - left);
    out.push(`<text x="${ox + 5}" y="${oy + 14}" font-weight="bold">${esc(sc)}</text>`);
    out.push(`<rect x="${left}" y="${ptop}" width="${right - left}" height="${bottom - ptop}" fill="none" stroke="#999"/>`);
    for (let e = lo; e <= hi; e++) {
      const yy = y(10 ** e);
      out.push(`<line x1="${left}" x2="${right}" y1="${n1(yy)}" y2="${n1(yy)}" stroke="#eee"/>`);
      out.push(`<text x="${left - 4}" y="${n1(yy + 4)}" text-anchor="end">${10 ** e >= 1 ? 10 ** e : (10 ** e).toFixed(-e)}</text>`);
    }
    P.forEach((p, i) => out.push(`<text x="${n1(x(i))}" y="${bottom + 14}" text-anchor="middle">${p === 'p999' ? 'p99.9' : p}</text>`));
    for (const r of rs) {
      const pts = P.map((p, i) => `${n1(x(i))},${n1(y(r.latencyMs![p]))}`);
      out.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${COLORS[r.system]}" stroke-width="2"/>`);
      for (const pt of pts) {
        const [cx, cy] = pt.split(',');
        out.push(`<circle cx="${cx}" cy="${cy}" r="2.5" fill="${COLORS[r.system]}"/>`);
      }
    }
  });
  return scenarios.length ? 50 + rows * ph : 30;
}

export function svgChart(results: readonly RunResult[]): string {
  const body: string[] = [];
  const h1 = ratioPanel(results, body, 0);
  const h2 = latencyPanels(results, body, h1 + 10);
  const H = h1 + h2 + 20;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    ...body,
    '</svg>',
  ].join('\n') + '\n';
}
