// Thresholds, k6-style: `call.p99<150ms`, `errors<0.1%`. Any that fails makes the command
// exit 1, for CI.
//
//   call.p50|p90|p99|p999|max          all client → server calls (ms)
//   call.<method>.p99 …                one method
//   served.p99 …, served.<method>.p99  the bots' time to answer the server's calls (ms)
//   connect.p99 …                      dial → session live (ms)
//   call.rate, served.rate             per second at full load
//   errors                             failed ÷ attempted (with %), or a count
//   players                            peak connected players
//   reconnects, sessionsLost, missed, scriptErrors     counts
//   generator.cpu                      busiest generator process' peak CPU (% of a core)

import type { Percentiles } from './histogram.ts';
import type { Report, ThresholdResult } from './report.ts';

const EXPR = /^\s*([A-Za-z0-9_.$:-]+?)\s*(<=|>=|<|>|==)\s*([0-9.]+)\s*(ms|s|%)?\s*$/;
const PCT: Record<string, keyof Percentiles> = { p50: 'p50', p90: 'p90', p99: 'p99', p999: 'p999', 'p99.9': 'p999', max: 'max' };

/** Throws on an expression it cannot read (so a typo fails at start, not after the run). */
export function parseThreshold(expr: string): { metric: string; op: string; value: number; unit?: string } {
  const m = EXPR.exec(expr.replace('p99.9', 'p999'));
  if (!m) throw new Error(`threshold "${expr}": expected <metric><op><number>[ms|s|%], e.g. call.p99<150ms`);
  const [, metric, op, num, unit] = m as unknown as [string, string, string, string, string | undefined];
  let value = Number(num);
  if (unit === 's') value *= 1000;
  if (!Number.isFinite(value)) throw new Error(`threshold "${expr}": not a number`);
  return { metric, op, value, unit };
}

function metricValue(r: Report, metric: string, unit: string | undefined): number | undefined {
  const parts = metric.split('.');
  const last = parts.at(-1)!;
  const kind = parts[0]!;
  const pct = PCT[last];
  if ((kind === 'call' || kind === 'served' || kind === 'serverCall') && (pct || last === 'rate')) {
    const dir = kind === 'call' ? 'client→server' : 'server→client';
    const method = parts.slice(1, -1).join('.');
    if (last === 'rate') {
      const rows = r.methods.filter((m) => m.direction === dir && (!method || m.method === method));
      return rows.length ? rows.reduce((a, m) => a + m.perSec, 0) : undefined;
    }
    if (!method) {
      if (kind === 'call') return r.totals.latency.count ? r.totals.latency[pct!] : undefined;
      const rows = r.methods.filter((m) => m.direction === dir && m.latency.count);
      return rows.length ? Math.max(...rows.map((m) => m.latency[pct!])) : undefined;
    }
    const row = r.methods.find((m) => m.direction === dir && m.method === method);
    return row?.latency.count ? row.latency[pct!] : undefined;
  }
  if (kind === 'connect' && pct) return r.connect.latency.count ? r.connect.latency[pct] : undefined;
  switch (metric) {
    case 'errors':
      return unit === '%' ? r.totals.errorRatePct : r.totals.errors;
    case 'players':
      return r.players.peak;
    case 'reconnects':
      return r.sessions.reconnects;
    case 'sessionsLost':
      return r.sessions.sessionsLost;
    case 'missed':
      return r.openLoop?.missed ?? 0;
    case 'scriptErrors':
      return r.scriptErrors.count;
    case 'generator.cpu':
      return Math.max(0, ...r.generator.processes.map((p) => p.cpuPeak));
  }
  throw new Error(`threshold metric "${metric}" unknown (see volley-loadtest --help)`);
}

/** Check every threshold; a metric with no data (no such calls) fails. */
export function checkThresholds(r: Report, exprs: readonly string[]): ThresholdResult[] {
  return exprs.map((expr) => {
    const t = parseThreshold(expr);
    const value = metricValue(r, t.metric, t.unit);
    const ok =
      value !== undefined &&
      (t.op === '<' ? value < t.value : t.op === '<=' ? value <= t.value : t.op === '>' ? value > t.value : t.op === '>=' ? value >= t.value : value === t.value);
    return { expr, value, ok };
  });
}

/** Metric names known without a report (checked at start). */
export function checkThresholdSyntax(expr: string): void {
  const t = parseThreshold(expr);
  const parts = t.metric.split('.');
  const kinds = ['call', 'served', 'serverCall', 'connect'];
  const names = ['errors', 'players', 'reconnects', 'sessionsLost', 'missed', 'scriptErrors', 'generator.cpu'];
  if (names.includes(t.metric)) return;
  if (kinds.includes(parts[0]!) && parts.length >= 2 && (PCT[parts.at(-1)!] || parts.at(-1) === 'rate')) return;
  throw new Error(`threshold "${expr}": unknown metric "${t.metric}" (call.p99, call.<method>.p99, served.p99, connect.p99, call.rate, errors, players, reconnects, sessionsLost, missed, scriptErrors, generator.cpu)`);
}
