// The bench's stream scenarios (issue 23): stream-down / stream-up against the same items as
// notifications (notify-down / notify-up). On fixed inputs: a stream and its baseline share
// their rounds, systems without streams are left out and shown n/a, the report sets each
// stream against its notifications per round. Then the quick bench end to end on Volley (and
// SignalR where the .NET SDK is present): every run reports items > 0 and server CPU per
// item read in the server's process. Never a speed.

import t from 'tap';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { markdown } from '../bench/report.ts';
import { streamRows } from '../bench/report/streams.ts';
import { schedule } from '../bench/schedule.ts';
import type { RunResult } from '../bench/orchestrate.ts';
import type { Scenario } from '../bench/config.ts';
import type { SystemName } from '../bench/clients/systems.ts';

const root = path.join(import.meta.dirname, '..');
// The hub's build (~10 s), a dozen forked processes through the tsx loader, 8 runs of a
// few seconds: generous for a busy 2-core machine.
t.setTimeout(400_000);

function hasDotnet(): boolean {
  try {
    execFileSync('dotnet', ['--version'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

const STREAMS: Scenario[] = ['stream-down', 'notify-down', 'stream-up', 'notify-up'];

const runs = (scenario: Scenario, system: SystemName, cpu: number[]): RunResult[] =>
  cpu.map((v, i) => ({ scenario, system, round: i + 1, connections: 50, errors: 0, callsPerSec: 1e6 / v, serverCpuUsPerCall: v }));

t.test('schedule: a stream and its baseline share their rounds; systems without streams are left out', async (t) => {
  const s = schedule(['call-small', ...STREAMS], ['volley', 'raw', 'signalr', 'socketio'], 2);
  t.same(
    s.filter((r) => r.scenario !== 'call-small').map((r) => `${r.round} ${r.scenario} ${r.system}`),
    [
      '1 stream-down volley', '1 stream-down signalr', '1 notify-down volley', '1 notify-down signalr',
      '2 stream-down signalr', '2 stream-down volley', '2 notify-down signalr', '2 notify-down volley',
      '1 stream-up volley', '1 stream-up signalr', '1 notify-up volley', '1 notify-up signalr',
      '2 stream-up signalr', '2 stream-up volley', '2 notify-up signalr', '2 notify-up volley',
    ],
  );
  t.equal(s.filter((r) => r.scenario === 'call-small').length, 8, 'other scenarios keep every system');
  t.same(
    schedule(['notify-up'], ['volley'], 2).map((r) => `${r.round} ${r.scenario}`),
    ['1 notify-up', '2 notify-up'],
    'a baseline alone runs alone',
  );
});

t.test('report: stream against notifications per round, Volley against SignalR, n/a for systems without streams', async (t) => {
  const fixed = [
    ...runs('stream-down', 'volley', [10, 12, 9]),
    ...runs('notify-down', 'volley', [2, 2, 3]),
    ...runs('stream-down', 'signalr', [4, 4, 4]),
    ...runs('notify-down', 'signalr', [4, 8, 4]),
  ];
  const rows = streamRows(fixed);
  const v = rows.find((r) => r.system === 'volley')!;
  // Per round 10/2, 12/2, 9/3: median 5, not 10 / 2 of the medians either way.
  t.same(v.ratio, { median: 5, min: 3, max: 6, n: 3 });
  t.same(rows.find((r) => r.system === 'signalr')!.ratio, { median: 1, min: 0.5, max: 1, n: 3 });
  t.equal(rows.length, 2, 'stream-up did not run: no row');
  const md = markdown(fixed, { cpu: 'test cpu', cores: 2, memGiB: 1, node: 'v20', platform: 'linux', date: 'now', rounds: 3 }, 20000);
  t.match(md, /### Streams against notifications/);
  t.match(md, /\| stream-down \| volley \| 100,000 \(83,333–111,111\) \| 10\.00 \(9\.00–12\.00\) \| 500,000 \(333,333–500,000\) \| 2\.00 \(2\.00–3\.00\) \| 5\.00 \(3\.00–6\.00\) \|/);
  // Volley / SignalR per round: 2.5, 3, 2.25; raw and socket.io have no streams: n/a, not "–".
  t.match(md, /\| stream-down \| server CPU µs per item \| 10\.00 \(9\.00–12\.00\) \| n\/a \| n\/a \| n\/a \| n\/a \| – \| 2\.50 \(2\.25–3\.00\) \|/);
  t.match(md, /n\/a: not run, no equivalent \(stream-down: raw, socketio-uws, socketio, birpc: no streams/);
  t.notMatch(md, /socket\.io \(uWS\) \| stream-down/, 'no socket.io target where it has no streams');
});

t.test('the quick bench runs the stream scenarios and counts items', async (t) => {
  const dotnet = hasDotnet();
  const systems = dotnet ? 'volley,signalr' : 'volley';
  if (!dotnet) t.comment('no dotnet SDK: SignalR not run');
  const out = mkdtempSync(path.join(os.tmpdir(), 'bench-streams-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  // BENCH_VOLLEY_SRC=1: Volley from its sources, no dist/ build in a shared checkout.
  const res = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'bench/run.ts', '--quick', '--no-progress', '--systems', systems, '--scenario', STREAMS.join(','), '--streams', '20', '--out', out],
      { cwd: root, env: { ...process.env, BENCH_VOLLEY_SRC: '1' }, timeout: 360_000, maxBuffer: 1 << 24 },
      (err, _stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
  t.equal(res.code, 0, `bench exit code (stderr: ${res.stderr.slice(-800)})`);
  t.notMatch(res.stderr, /signalr skipped/, 'the hub built and ran (or was not asked for)');
  const report = JSON.parse(readFileSync(path.join(out, 'latest.json'), 'utf8')) as { results: RunResult[] };
  for (const system of systems.split(',') as SystemName[])
    for (const scenario of STREAMS) {
      const r = report.results.find((x) => x.scenario === scenario && x.system === system);
      t.ok(r, `${system} ran ${scenario}`);
      t.equal(r?.error, undefined, `${system} ${scenario}: no failure`);
      t.ok((r?.items ?? 0) > 0, `${system} ${scenario}: items arrived (${r?.items}, ${r?.callsPerSec}/s)`);
      t.ok((r?.serverCpuUsPerCall ?? 0) > 0, `${system} ${scenario}: server CPU per item (${r?.serverCpuUsPerCall} µs)`);
      t.equal(r?.errors, 0, `${system} ${scenario}: no errors (${r?.firstError ?? ''})`);
    }
  t.match(readFileSync(path.join(out, 'latest.md'), 'utf8'), /### Streams against notifications/);
});
