// The report as Markdown: what a team reads after a run.

import type { Report } from './report.ts';

const n = (v: number) => (Number.isInteger(v) ? v.toLocaleString('en-US') : v.toLocaleString('en-US', { maximumFractionDigits: 1 }));
const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const codes = (r: Record<string, number>) =>
  Object.entries(r)
    .map(([k, v]) => `${k} ${n(v)}`)
    .join(', ') || '—';

export function toMarkdown(r: Report): string {
  const c = r.config;
  const out: string[] = [];
  out.push(`# Load test: ${r.url}`);
  out.push('');
  out.push(
    `${r.passed ? '**PASSED**' : '**FAILED**'} · ${r.startedAt} · bots \`${r.script}\` · ${n(c.players)} players, ramp ${n(c.ramp)}/s, ${c.durationS} s at full load, ramp-down ${n(c.rampDown)}/s` +
      (c.rate ? ` · open loop ${n(c.rate)}/s of ${c.action ? `\`${c.action}\`` : 'the script’s action'}` : '') +
      ` · ${c.generators} generator${c.generators > 1 ? 's' : ''} × ${c.workers} worker${c.workers > 1 ? 's' : ''}`,
  );
  out.push('');
  out.push('| | |');
  out.push('| --- | --- |');
  out.push(`| players connected (peak / target) | ${n(r.players.peak)} / ${n(r.players.target)} |`);
  out.push(`| connect (dial → session live) | ${n(r.connect.ok)} ok, failed: ${codes(r.connect.failed)}; p50 ${ms(r.connect.latency.p50)} ms, p99 ${ms(r.connect.latency.p99)} ms |`);
  out.push(`| client → server calls | ${n(r.totals.calls)} (${n(r.totals.callsPerSec)}/s at full load), p50 ${ms(r.totals.latency.p50)} ms, p99 ${ms(r.totals.latency.p99)} ms, p99.9 ${ms(r.totals.latency.p999)} ms |`);
  out.push(`| server → client calls answered | ${n(r.totals.served)} (${n(r.totals.servedPerSec)}/s at full load) |`);
  out.push(`| errors | ${n(r.totals.errors)} (${r.totals.errorRatePct}%): ${codes(r.errorsByCode)}${r.totals.abandonedAtRampDown ? `; ${n(r.totals.abandonedAtRampDown)} calls cut by the ramp-down (not counted)` : ''} |`);
  out.push(`| reconnects / resumes / sessions lost | ${n(r.sessions.reconnects)} / ${n(r.sessions.resumes)} / ${n(r.sessions.sessionsLost)}; unexpected closes: ${codes(r.sessions.unexpectedCloses)} |`);
  if (r.openLoop) out.push(`| open-loop arrivals / missed | ${n(r.openLoop.arrivals)} / ${n(r.openLoop.missed)} |`);
  for (const f of r.failures) out.push(`| worker failed | ${f.split('\n')[0]} |`);
  if (r.scriptErrors.count) out.push(`| bot script errors | ${n(r.scriptErrors.count)} (first: ${(r.scriptErrors.first ?? '').split('\n')[0]}) |`);
  out.push(`| load generator | ${r.generator.coresUsed} cores used on average, ${n(r.generator.messagesPerCpuSecond)} calls and notifications per CPU-second; ${r.generator.note} |`);
  out.push('');
  out.push('## Calls per method');
  out.push('');
  out.push('Client → server: round trip. Server → client: the bot\'s time to answer. ms; rates at full load.');
  out.push('');
  out.push('| direction | method | count | /s | errors | cancelled | p50 | p90 | p99 | p99.9 | max |');
  out.push('| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const m of r.methods) {
    const l = m.latency;
    out.push(
      `| ${m.direction} | ${m.method} | ${n(m.count)} | ${n(m.perSec)} | ${codes(m.errors)} | ${m.cancelled ?? '—'} | ${ms(l.p50)} | ${ms(l.p90)} | ${ms(l.p99)} | ${ms(l.p999)} | ${ms(l.max)} |`,
    );
  }
  const sent = Object.entries(r.notifications.sent);
  const recv = Object.entries(r.notifications.received);
  if (sent.length || recv.length) {
    out.push('');
    out.push('## Notifications');
    out.push('');
    out.push('| direction | method | count | /s |');
    out.push('| --- | --- | ---: | ---: |');
    for (const [m, v] of sent) out.push(`| client→server | ${m} | ${n(v.count)} | ${n(v.perSec)} |`);
    for (const [m, v] of recv) out.push(`| server→client | ${m} | ${n(v.count)} | ${n(v.perSec)} |`);
  }
  out.push('');
  out.push('## Load generator');
  out.push('');
  out.push('| process | peak CPU (% of a core) | seconds at ≥ 90 % | peak event-loop delay p99 (ms) | peak RSS (MB) |');
  out.push('| --- | ---: | ---: | ---: | ---: |');
  for (const p of r.generator.processes) out.push(`| ${p.id} | ${p.cpuPeak} | ${p.hotSeconds} | ${p.loopP99Peak} | ${p.rssMb} |`);
  if (r.thresholds.length) {
    out.push('');
    out.push('## Thresholds');
    out.push('');
    out.push('| threshold | value | |');
    out.push('| --- | ---: | --- |');
    for (const t of r.thresholds) out.push(`| \`${t.expr}\` | ${t.value ?? 'no data'} | ${t.ok ? 'pass' : '**FAIL**'} |`);
  }
  out.push('');
  return out.join('\n');
}
