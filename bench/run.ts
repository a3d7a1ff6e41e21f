// npm run bench: runs every scenario against every system, each in fresh processes, and
// writes the report (JSON, Markdown table, SVG latency chart) to bench/results/.

import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { parseFlags } from './config.ts';
import { runOne, type RunResult } from './orchestrate.ts';
import { markdown, ratios, svgChart, targets } from './report.ts';

/** The per-process open-file limit, read at run time (idle-max sizes itself from it). */
function openFileLimit(): number {
  try {
    const n = Number(execSync('ulimit -n', { shell: '/bin/sh', encoding: 'utf8' }).trim());
    return Number.isFinite(n) ? n : 1024;
  } catch {
    return 1024;
  }
}

async function main(): Promise<void> {
  const cfg = parseFlags(process.argv.slice(2));
  const fdLimit = openFileLimit();
  const runs = cfg.scenarios.flatMap((scenario) => cfg.systems.map((system) => ({ scenario, system })));
  const bar = cfg.progress
    ? new cliProgress.SingleBar(
        {
          format: 'bench {bar} {percentage}% | run {run}/{runs} {system} {scenario}: {phase}',
          stream: process.stderr,
          hideCursor: true,
          // Logs and CI have no TTY: print a line every few seconds instead of redrawing.
          noTTYOutput: true,
          notTTYSchedule: 5000,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  bar?.start(runs.length * 100, 0, { run: 0, runs: runs.length, system: '', scenario: '', phase: '' });
  const results: RunResult[] = [];
  for (const [i, { scenario, system }] of runs.entries()) {
    const result = await runOne(cfg, system, scenario, (f, phase) => bar?.update(Math.round((i + f) * 100), { run: i + 1, system, scenario, phase }), fdLimit);
    results.push(result);
    if (!bar) process.stderr.write(`${system} ${scenario}: ${result.error ? `FAILED ${result.error}` : 'done'}\n`);
  }
  bar?.update(runs.length * 100, { phase: 'done' });
  bar?.stop();

  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    quick: cfg.quick,
    openFileLimit: fdLimit,
  };
  const report = { meta, config: cfg, results, ratios: ratios(results), targets: targets(results, fdLimit) };
  const md = markdown(results, meta, fdLimit);
  mkdirSync(cfg.out, { recursive: true });
  const stamp = meta.date.replace(/[:.]/g, '-');
  for (const name of [`bench-${stamp}`, 'latest']) {
    writeFileSync(path.join(cfg.out, `${name}.json`), JSON.stringify(report, null, 2));
    writeFileSync(path.join(cfg.out, `${name}.md`), md);
    writeFileSync(path.join(cfg.out, `${name}.svg`), svgChart(results));
  }
  process.stdout.write(md);
  process.stdout.write(`\nwritten to ${path.join(cfg.out, `bench-${stamp}`)}.{json,md,svg} (and latest.*)\n`);
  if (results.some((r) => r.error)) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
