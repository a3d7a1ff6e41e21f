// The bench's signalr system end to end: the quick bench on call-small with the ASP.NET
// Core hub (bench/signalr/) and @microsoft/signalr clients must produce a figure (server
// CPU per call, RSS) read from the dotnet process. Skipped where there is no dotnet SDK.
// Never a speed. (57 s with idle too on a machine at load 15: one scenario keeps it short.)

import t from 'tap';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RunResult } from '../bench/orchestrate.ts';

const root = path.join(import.meta.dirname, '..');

function hasDotnet(): boolean {
  try {
    execFileSync('dotnet', ['--version'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

// The hub's build (~10 s) and a quick run of a few seconds; generous for a busy machine.
t.setTimeout(240_000);

t.test('the quick bench measures SignalR: call-small gives a figure', { skip: hasDotnet() ? false : 'no dotnet SDK' }, async (t) => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'bench-signalr-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  // BENCH_VOLLEY_SRC=1: no dist/ build, Volley does not run here.
  const res = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', 'bench/run.ts', '--quick', '--systems', 'signalr', '--scenario', 'call-small', '--no-progress', '--out', out],
      { cwd: root, env: { ...process.env, BENCH_VOLLEY_SRC: '1' }, timeout: 200_000, maxBuffer: 1 << 24 },
      (err, _stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
    void child;
  });
  t.equal(res.code, 0, `bench exit code (stderr: ${res.stderr.slice(-500)})`);
  t.notMatch(res.stderr, /signalr skipped/, 'the hub built and ran');
  const report = JSON.parse(readFileSync(path.join(out, 'latest.json'), 'utf8')) as { results: RunResult[] };
  const call = report.results.find((r) => r.scenario === 'call-small' && r.system === 'signalr');
  t.equal(call?.error, undefined, 'call-small ran');
  t.ok((call?.callsPerSec ?? 0) > 0, `calls were answered (${call?.callsPerSec}/s)`);
  t.ok((call?.serverCpuUsPerCall ?? 0) > 0, `server CPU per call read from the dotnet process (${call?.serverCpuUsPerCall} µs)`);
  t.ok((call?.serverRssMiB ?? 0) > 10, `the dotnet process' RSS (${call?.serverRssMiB} MiB)`);
  t.equal(call?.errors, 0, 'no failed calls');
});
