// The bench's quick mode on a tiny config: it must run end to end against real servers
// and write a report of the documented shape. Checks shape only, never a speed.

import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const out = mkdtempSync(path.join(os.tmpdir(), 'volley-bench-'));
t.teardown(() => rmSync(out, { recursive: true, force: true }));

const args = [
  'tsx', 'bench/run.ts', '--quick', '--no-progress',
  '--systems', 'volley,raw',
  '--scenario', 'call-small,server-calls,idle',
  '--connections', '2', '--duration', '300', '--warmup', '100', '--idle-connections', '10',
  '--out', out,
];

t.test('quick bench writes JSON, Markdown and SVG of the documented shape', async (t) => {
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile('npx', args, { cwd: path.resolve(import.meta.dirname, '..'), timeout: 100_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
  t.equal(code, 0, `bench exits 0; stderr: ${stderr.slice(-500)}`);
  t.match(stdout, /\| scenario \| system \|/, 'prints the Markdown table');

  const report = JSON.parse(readFileSync(path.join(out, 'latest.json'), 'utf8'));
  t.type(report.meta.node, 'string');
  t.type(report.meta.openFileLimit, 'number', 'the open-file limit is read at run time');
  t.equal(report.results.length, 6, 'one result per system × scenario');
  for (const r of report.results) {
    t.notOk(r.error, `${r.system} ${r.scenario} ran: ${r.error ?? ''}`);
    if (r.scenario === 'idle') {
      t.equal(r.held, 10, `${r.system} holds every idle connection`);
      t.type(r.rssPerConnKiB, 'number');
      continue;
    }
    t.ok(r.callsPerSec > 0, `${r.system} ${r.scenario} made calls`);
    for (const p of ['p50', 'p90', 'p99', 'p999'] as const) t.type(r.latencyMs[p], 'number', `${p} present`);
    t.ok(r.latencyMs.p50 <= r.latencyMs.p999, 'percentiles are ordered');
    t.ok(r.latencyMs.count > 0, 'latencies were recorded');
    t.ok(r.serverCpuUsPerCall > 0, 'server CPU per call measured in the server process');
    t.ok(r.serverRssMiB > 0);
    t.ok(r.clientCpuUsPerCall > 0, 'client CPU per call measured in the client processes');
  }
  const ratio = report.ratios.find((r: { scenario: string }) => r.scenario === 'call-small');
  t.type(ratio?.vsRaw, 'number', 'Volley / raw ratio computed');
  t.ok(Array.isArray(report.targets) && report.targets.length >= 6, 'targets judged');
  for (const target of report.targets) t.ok(target.met === null || typeof target.met === 'boolean');

  const md = readFileSync(path.join(out, 'latest.md'), 'utf8');
  t.match(md, /Targets \(issue 4\)/);
  const svg = readFileSync(path.join(out, 'latest.svg'), 'utf8');
  t.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  t.match(svg, /<polyline /, 'the chart draws latency lines');
});
