// The run as an SVG chart (hand-written, no charting dependency): five panels over time,
// players connected, calls per second both ways, notifications received, p99 of client →
// server calls, and the busiest generator process' CPU (a saturated generator shows here before anywhere else).

import type { Report, SeriesPoint } from './report.ts';

const W = 900;
const PANEL = 120;
const LEFT = 70;
const RIGHT = W - 20;
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const f1 = (v: number) => v.toFixed(1);

function nice(max: number): number {
  if (max <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

const fmt = (v: number) => (v >= 1e6 ? `${v / 1e6}M` : v >= 1e3 ? `${v / 1e3}k` : String(v));

function panel(out: string[], top: number, title: string, series: SeriesPoint[], lines: { pick: (p: SeriesPoint) => number; color: string; label: string }[], tMax: number, unit = ''): void {
  const max = nice(Math.max(0, ...series.flatMap((p) => lines.map((l) => l.pick(p)))));
  const y = (v: number) => top + 20 + PANEL - (Math.min(v, max) / max) * PANEL;
  const x = (t: number) => LEFT + (t / tMax) * (RIGHT - LEFT);
  out.push(`<text x="10" y="${top + 12}" font-weight="bold">${esc(title)}</text>`);
  lines.forEach((l, i) => out.push(`<text x="${RIGHT - 160 * (lines.length - i)}" y="${top + 12}" fill="${l.color}">● ${esc(l.label)}</text>`));
  for (const v of [0, max / 2, max]) {
    out.push(`<line x1="${LEFT}" x2="${RIGHT}" y1="${f1(y(v))}" y2="${f1(y(v))}" stroke="#eee"/>`);
    out.push(`<text x="${LEFT - 6}" y="${f1(y(v) + 4)}" text-anchor="end">${fmt(v)}${unit}</text>`);
  }
  for (const l of lines) {
    const pts = series.map((p) => `${f1(x(p.t))},${f1(y(l.pick(p)))}`).join(' ');
    out.push(`<polyline fill="none" stroke="${l.color}" stroke-width="1.5" points="${pts}"/>`);
  }
}

export function toSvg(r: Report): string {
  const s = r.series;
  const tMax = Math.max(1, s.at(-1)?.t ?? 1);
  const height = 40 + 5 * (PANEL + 45) + 20;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  out.push(`<text x="10" y="20" font-size="14" font-weight="bold">${esc(`Volley load test: ${r.url} · ${r.config.players} players · ${r.passed ? 'passed' : 'FAILED'}`)}</text>`);
  const steadyX0 = LEFT + (r.steady.fromS / tMax) * (RIGHT - LEFT);
  const steadyX1 = LEFT + (r.steady.toS / tMax) * (RIGHT - LEFT);
  out.push(`<rect x="${f1(steadyX0)}" y="30" width="${f1(Math.max(0, steadyX1 - steadyX0))}" height="${height - 60}" fill="#f4f8ff"/>`);
  let top = 35;
  panel(out, top, 'players connected', s, [{ pick: (p) => p.players, color: '#1f77b4', label: 'players' }], tMax);
  top += PANEL + 45;
  panel(out, top, 'calls per second', s, [
    { pick: (p) => p.callsPerSec, color: '#d62728', label: 'client → server' },
    { pick: (p) => p.servedPerSec, color: '#2ca02c', label: 'server → client' },
  ], tMax);
  top += PANEL + 45;
  panel(out, top, 'notifications the bots received per second', s, [{ pick: (p) => p.notifiedPerSec, color: '#8c564b', label: 'server → client' }], tMax);
  top += PANEL + 45;
  panel(out, top, 'client → server p99 per second', s, [{ pick: (p) => p.p99, color: '#9467bd', label: 'p99 ms' }], tMax, ' ms');
  top += PANEL + 45;
  panel(out, top, 'load generator (busiest process)', s, [
    { pick: (p) => p.cpuMax, color: '#ff7f0e', label: 'CPU % of a core' },
    { pick: (p) => p.loopMax, color: '#7f7f7f', label: 'loop delay p99 ms' },
  ], tMax);
  top += PANEL + 25;
  for (let t = 0; t <= tMax; t += nice(tMax / 10)) {
    const x = LEFT + (t / tMax) * (RIGHT - LEFT);
    out.push(`<text x="${f1(x)}" y="${top + 10}" text-anchor="middle">${t}s</text>`);
  }
  out.push('</svg>');
  return out.join('\n');
}
