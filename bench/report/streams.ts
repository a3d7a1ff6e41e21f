// Streams against notifications of the same items (issue 23): per direction and system,
// items per second and server CPU per item of the stream and of its notification baseline,
// and the stream's CPU per item over the notifications', per round (a stream scenario and
// its baseline share their rounds: schedule.ts).

import type { RunResult } from '../orchestrate.ts';
import { BASELINE_OF, type Scenario } from '../config.ts';
import { roundRatios, summarize, type Summary } from './summary.ts';
import { fmtSpread } from './format.ts';
import type { Spread } from './stats.ts';

export interface StreamRow {
  stream: Scenario;
  system: Summary['system'];
  streamed: Summary;
  notified?: Summary;
  /** Stream CPU per item / notification CPU per item, per round. */
  ratio?: Spread;
}

export function streamRows(results: readonly RunResult[]): StreamRow[] {
  const sums = summarize(results);
  const rows: StreamRow[] = [];
  for (const [stream, baseline] of Object.entries(BASELINE_OF) as [Scenario, Scenario][])
    for (const streamed of sums.filter((s) => s.scenario === stream)) {
      const notified = sums.find((s) => s.scenario === baseline && s.system === streamed.system);
      const ratio = roundRatios(results, [stream, streamed.system], [baseline, streamed.system], (r) => r.serverCpuUsPerCall);
      rows.push({ stream, system: streamed.system, streamed, notified, ratio });
    }
  return rows;
}

/** The Markdown section; empty when no stream scenario ran. */
export function streamSection(results: readonly RunResult[]): string[] {
  const rows = streamRows(results);
  if (rows.length === 0) return [];
  return [
    '### Streams against notifications (issue 23)',
    '',
    'The same items ({seq, t, 16 bytes}) as streams of 1,000 and as notifications (within a window of 64 per connection, acknowledged every 16); ' +
      'server CPU per item. The last column is the stream\'s CPU per item over the notifications\', per round (a stream and its baseline share their rounds), median (min–max).',
    '',
    '| scenario | system | stream items/s | stream server CPU µs/item | notifications items/s | notifications server CPU µs/item | stream / notifications |',
    '|---|---|--:|--:|--:|--:|--:|',
    ...rows.map(
      (r) =>
        `| ${r.stream} | ${r.system} | ${fmtSpread(r.streamed.callsPerSec)} | ${fmtSpread(r.streamed.serverCpuUsPerCall, 2)} | ` +
        `${fmtSpread(r.notified?.callsPerSec)} | ${fmtSpread(r.notified?.serverCpuUsPerCall, 2)} | ${fmtSpread(r.ratio, 2)} |`,
    ),
    '',
  ];
}
