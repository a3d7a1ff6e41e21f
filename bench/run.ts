// npm run bench: runs every scenario against every system, each in fresh processes, in
// interleaved rounds (bench/schedule.ts), and writes the report (JSON, Markdown tables, SVG
// chart of the ratios' spread and of latency) to bench/results/.

import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { parseFlags } from './config.ts';
import { runOne, type RunResult } from './orchestrate.ts';
import { buildDist } from './lib/procs.ts';
import { buildSignalr } from './lib/signalr.ts';
import { markdown, ratios, svgChart, summarize, targets } from './report.ts';
import { schedule } from './schedule.ts';

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
  // Volley's bench server runs the package's compiled dist/ (servers/volley.ts says why).
  if (process.env.BENCH_VOLLEY_SRC !== '1') buildDist(path.join(import.meta.dirname, '..'));
  if (cfg.systems.includes('signalr')) {
    const why = buildSignalr();
    if (why) {
      process.stderr.write(`signalr skipped: ${why}\n`);
      cfg.systems = cfg.systems.filter((s) => s !== 'signalr');
    }
  }
  const fdLimit = openFileLimit();
  const runs = schedule(cfg.scenarios, cfg.systems, cfg.rounds);
  const t0 = Date.now();
  const bar = cfg.progress
    ? new cliProgress.SingleBar(
        {
          format: 'bench {bar} {percentage}% | {elapsed}s | run {run}/{runs} {scenario} round {round} {system}: {phase}',
          stream: process.stderr,
          hideCursor: true,
          // Logs and CI have no TTY: print a line every few seconds instead of redrawing.
          noTTYOutput: true,
          notTTYSchedule: 5000,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  bar?.start(runs.length * 100, 0, { run: 0, runs: runs.length, system: '', scenario: '', round: 0, phase: '' });
  const results: RunResult[] = [];
  for (const [i, { scenario, system, round }] of runs.entries()) {
    const progress = (f: number, phase: string) => bar?.update(Math.round((i + f) * 100), { run: i + 1, system, scenario, round, phase });
    const result = await runOne(cfg, system, scenario, round, progress, fdLimit);
    results.push(result);
    if (!bar)
      process.stderr.write(`${scenario} round ${round} ${system}: ${result.error ? `FAILED ${result.error}` : 'done'} (${Math.round((result.wallMs ?? 0) / 100) / 10} s)\n`);
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
    rounds: cfg.rounds,
    openFileLimit: fdLimit,
    wallMin: Math.round((Date.now() - t0) / 6000) / 10,
  };
  const report = { meta, config: cfg, results, summaries: summarize(results), ratios: ratios(results), targets: targets(results, fdLimit) };
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
