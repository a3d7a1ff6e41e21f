// The bench's report code on fixed inputs (the median-of-ratios math, the run order, the
// targets' pass/fail and what the Markdown and SVG show), then one tiny end-to-end run
// against real servers that checks the report's shape. Never a speed.

import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { markdown, ratios, spread, summarize, svgChart, targets } from '../bench/report.ts';
import { schedule } from '../bench/schedule.ts';
import type { RunResult } from '../bench/orchestrate.ts';
import { parseFlags, type Scenario } from '../bench/config.ts';
import type { SystemName } from '../bench/clients/systems.ts';

// The end-to-end run forks a dozen processes through the tsx loader: on a busy 2-core
// machine that alone took 90 s, near the suite's default of 120.
t.setTimeout(300_000);

/** A finished run with just the figures the report reads. */
function run(scenario: Scenario, system: SystemName, round: number, fig: Partial<RunResult>): RunResult {
  return { scenario, system, round, connections: 100, errors: 0, ...fig };
}

const cpu = (scenario: Scenario, system: SystemName, values: number[], client?: number[]): RunResult[] =>
  values.map((v, i) =>
    run(scenario, system, i + 1, {
      serverCpuUsPerCall: v,
      clientCpuUsPerCall: client?.[i],
      callsPerSec: 1000 * (i + 1),
      latencyMs: { count: 10, p50: i + 1, p90: 2 * (i + 1), p99: 3 * (i + 1), p999: 4 * (i + 1), max: 5 },
    }),
  );

const game = (system: SystemName, values: number[]): RunResult[] =>
  values.map((v, i) =>
    run('game-tick', system, i + 1, { players: 1000, cpuUsPerPlayerSec: v, playersPerCore: 1e6 / v, keptUp: 0.99 }),
  );

// call-small: per-round ratios to raw are 1.25, 1.2, 2.0 (median 1.25), while the ratio of
// the medians would be 12 / 10 = 1.2: the report must pair rounds, not medians.
const fixed: RunResult[] = [
  ...cpu('call-small', 'volley', [10, 12, 20], [10, 10, 10]),
  ...cpu('call-small', 'raw', [8, 10, 10], [10, 8, 5]),
  ...cpu('call-small', 'socketio-uws', [20, 20, 20]),
  ...cpu('call-small', 'socketio', [40, 40, 40]),
  ...game('volley', [200, 250, 220]),
  ...game('raw', [190, 200, 240]),
  ...game('socketio-uws', [400, 400, 400]),
];

t.test('spread: median of odd and even counts, min and max, holes skipped', async (t) => {
  t.same(spread([3, 1, 2]), { median: 2, min: 1, max: 3, n: 3 });
  t.same(spread([4, 1, 3, 2]), { median: 2.5, min: 1, max: 4, n: 4 });
  t.same(spread([5, undefined, Number.NaN]), { median: 5, min: 5, max: 5, n: 1 });
  t.equal(spread([undefined]), undefined);
});

t.test('schedule: every system once per round, rounds interleaved, order rotated', async (t) => {
  const s = schedule(['call-small', 'game-tick'], ['volley', 'raw', 'birpc'], 3);
  const cs = s.filter((r) => r.scenario === 'call-small').map((r) => `${r.round}${r.system}`);
  t.same(cs, ['1volley', '1raw', '1birpc', '2raw', '2birpc', '2volley', '3birpc', '3volley', '3raw']);
  // game-tick has no birpc equivalent (no rooms): it is left out, not run and failed.
  const gt = s.filter((r) => r.scenario === 'game-tick').map((r) => `${r.round}${r.system}`);
  t.same(gt, ['1volley', '1raw', '2raw', '2volley', '3volley', '3raw']);
  t.same([...new Set(s.map((r) => r.scenario))], ['call-small', 'game-tick'], 'one scenario at a time');
});

t.test('ratios: the median of per-round ratios with its min–max', async (t) => {
  const rs = ratios(fixed);
  const cs = rs.find((r) => r.scenario === 'call-small')!;
  t.same(cs.volley, { median: 12, min: 10, max: 20, n: 3 });
  t.same(cs.peers.raw, { median: 1.25, min: 1.2, max: 2, n: 3 });
  t.same(cs.peers['socketio-uws'], { median: 0.6, min: 0.5, max: 1, n: 3 });
  t.same(cs.peers.socketio, { median: 0.3, min: 0.25, max: 0.5, n: 3 });
  t.equal(cs.peers.birpc, undefined, 'no birpc runs, no ratio');
  const gt = rs.find((r) => r.scenario === 'game-tick')!;
  t.equal(gt.metric, 'server CPU µs per player-second');
  t.same(gt.peers.raw, { median: 1.053, min: 0.917, max: 1.25, n: 3 }, 'ratios kept to 3 decimals');
});

t.test('a failed round drops out of the pairs, not the whole scenario', async (t) => {
  const withFail = fixed.map((r) =>
    r.scenario === 'call-small' && r.system === 'raw' && r.round === 3 ? { ...r, error: 'boom', serverCpuUsPerCall: undefined } : r,
  );
  const cs = ratios(withFail).find((r) => r.scenario === 'call-small')!;
  t.same(cs.peers.raw, { median: 1.225, min: 1.2, max: 1.25, n: 2 });
  const sum = summarize(withFail).find((s) => s.scenario === 'call-small' && s.system === 'raw')!;
  t.equal(sum.ok, 2);
  t.equal(sum.rounds, 3);
  t.match(sum.error, /boom/);
});

t.test('summaries: medians and spreads per scenario and system', async (t) => {
  const v = summarize(fixed).find((s) => s.scenario === 'call-small' && s.system === 'volley')!;
  t.same(v.serverCpuUsPerCall, { median: 12, min: 10, max: 20, n: 3 });
  t.same(v.callsPerSec, { median: 2000, min: 1000, max: 3000, n: 3 });
  t.equal(v.latencyMs!.p99, 6, 'latency percentiles are medians over rounds');
  const g = summarize(fixed).find((s) => s.scenario === 'game-tick' && s.system === 'volley')!;
  t.equal(g.playersPerCore!.median, 1e6 / 220);
});

t.test('targets of issue 14: pass/fail on the median ratio, not measured when absent', async (t) => {
  const ts = targets(fixed, 20000);
  const find = (scenario: string, re: RegExp) => ts.find((x) => x.scenario === scenario && re.test(x.target))!;
  const raw = find('call-small', /≤ 1.15× raw/);
  t.equal(raw.met, false, 'call-small 1.25× raw misses ≤ 1.15×');
  t.equal(raw.value!.median, 1.25);
  t.equal(find('call-small', /socket.io \(uWS\)/).met, true, '0.6 ≤ 0.8');
  t.equal(find('call-small', /socket.io \(ws\)/).met, true, '0.3 ≤ 0.5');
  t.equal(find('call-1kb', /≤ 1.15× raw/).met, null, 'not run: not measured');
  t.equal(find('call-small-pipelined', /≤ 0.7× raw/).met, null);
  const client = find('call-small', /client CPU/);
  t.same(client.value, { median: 1.25, min: 1, max: 2, n: 3 });
  t.equal(client.met, false);
  // game-tick in players per core (higher is better): raw/volley per round 0.95, 0.8, 1.09.
  const gRaw = find('game-tick', /0.9× raw/);
  t.equal(gRaw.value!.median, 0.95);
  t.equal(gRaw.met, true);
  t.equal(gRaw.everyRound, false, 'one round fell below 0.9');
  const gSio = find('game-tick', /1.5× socket.io/);
  t.equal(gSio.value!.median, 1.818, '400 / 220');
  t.equal(gSio.met, true);
  t.equal(gSio.everyRound, true);
  // An RSS that shrank as connections were added (small counts) is noise, not a pass.
  const idle = (kib: number) => targets([run('idle', 'volley', 1, { rssPerConnKiB: kib })], 20000).find((x) => /RSS per idle/.test(x.target))!;
  t.equal(idle(-30).met, null);
  t.equal(idle(2).met, true);
  t.equal(idle(6.5).met, false);
});

t.test('Markdown: medians with spreads, ratio table, targets with a holds column', async (t) => {
  const md = markdown(fixed, { cpu: 'test cpu', cores: 2, memGiB: 1, node: 'v20', platform: 'linux', date: 'now', rounds: 3 }, 20000);
  t.match(md, /\| call-small \| volley \| 3 \| 100 \| 2,000 \(1,000–3,000\) \|/, 'figures row: rounds, medians and spreads');
  t.match(md, /\| 12\.00 \(10\.00–20\.00\) \|/, 'server CPU median (min–max)');
  t.match(md, /\| call-small \| server CPU µs per call \| 12\.00 \(10\.00–20\.00\) \| 1\.25 \(1\.20–2\.00\) \| 0\.60 \(0\.50–1\.00\) \| 0\.30 \(0\.25–0\.50\) \| – \|/);
  t.match(md, /\| server CPU per call ≤ 1\.15× raw \| call-small \| 1\.25 \(1\.20–2\.00\) \| \*\*no\*\* \|/);
  t.match(md, /\| players per core ≥ 0\.9× raw \| game-tick \| 0\.95 \(0\.80–1\.09\) \| yes \(median; not every round\) \|/);
  t.match(md, /\| server CPU per call ≤ 1\.15× raw \| call-1kb \| – \| not measured \|/);
  t.match(md, /4,545 \(4,000–5,000\) players\/core/, 'game-tick row gives players per core');
  t.match(md, /\| call-small \| raw \| server CPU µs per call \| 8\.00 \| 10\.00 \| 10\.00 \|/, 'per-round table');
});

t.test('a run against a baseline (--baseline): a volley-base column, absent otherwise', async (t) => {
  const meta = { cpu: 'test cpu', cores: 2, memGiB: 1, node: 'v20', platform: 'linux', date: 'now', rounds: 3 };
  t.notMatch(markdown(fixed, meta, 20000), /volley-base/, 'no baseline column in an ordinary run');
  // Per round 10/10, 12/11, 20/16: the change costs 1.0, 1.09 and 1.25 of the code before it.
  const md = markdown([...fixed, ...cpu('call-small', 'volley-base', [10, 11, 16])], meta, 20000);
  t.match(md, /\| \/ volley-base \(the baseline checkout\) \|/);
  t.match(md, /\| call-small \| server CPU µs per call \| 12\.00 \(10\.00–20\.00\) \| 1\.25 (\S+) \| 0\.60 (\S+) \| 0\.30 (\S+) \| – \| – \| 1\.09 \(1\.00–1\.25\) \|/);
  t.throws(() => parseFlags(['--systems', 'volley,volley-base']), /volley-base needs --baseline/);
  const saved = process.env.BENCH_BASELINE;
  t.teardown(() => (saved === undefined ? delete process.env.BENCH_BASELINE : (process.env.BENCH_BASELINE = saved)));
  t.ok(parseFlags(['--baseline', '/tmp/old']).systems.includes('volley-base'), '--baseline adds volley-base to the default systems');
  t.notOk(parseFlags([]).systems.includes('volley-base'));
});

t.test('SVG: a whisker per ratio, a line at 1, the latency panels', async (t) => {
  const svg = svgChart(fixed);
  t.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  // call-small: raw, socketio-uws, socketio; game-tick: raw, socketio-uws.
  t.equal(svg.match(/class="whisker"/g)?.length, 5, 'one min–max whisker per ratio');
  t.equal(svg.match(/class="median"/g)?.length, 5, 'one median marker per ratio');
  t.match(svg, /class="parity"/, 'the 1× line');
  t.match(svg, /<polyline /, 'the latency panels');
});

t.test('quick bench, two rounds, runs end to end and writes the report', async (t) => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'volley-bench-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const args = [
    'tsx', 'bench/run.ts', '--quick', '--no-progress', '--rounds', '2',
    '--systems', 'volley,raw',
    '--scenario', 'game-tick',
    '--players', '16', '--duration', '600', '--warmup', '200',
    '--out', out,
  ];
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile('npx', args, { cwd: path.resolve(import.meta.dirname, '..'), timeout: 280_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
  t.equal(code, 0, `bench exits 0; stderr: ${stderr.slice(-500)}`);
  t.match(stdout, /\| scenario \| system \| rounds \|/, 'prints the Markdown table');
  const report = JSON.parse(readFileSync(path.join(out, 'latest.json'), 'utf8'));
  t.type(report.meta.openFileLimit, 'number', 'the open-file limit is read at run time');
  t.same(
    report.results.map((r: RunResult) => `${r.scenario} ${r.round} ${r.system}`),
    ['game-tick 1 volley', 'game-tick 1 raw', 'game-tick 2 raw', 'game-tick 2 volley'],
    'interleaved rounds',
  );
  for (const r of report.results as RunResult[]) {
    t.notOk(r.error, `${r.system} ${r.scenario} ran: ${r.error ?? ''}`);
    t.ok(r.cpuUsPerPlayerSec! > 0, 'server CPU measured in the server process');
    t.equal(r.players, 16);
    t.ok(r.playersPerCore! > 0);
    t.ok(r.game!.ticks > 0 && r.game!.states > 0 && r.game!.inputs > 0 && r.game!.acts > 0, `${r.system}: states, inputs and calls flowed`);
  }
  t.equal(report.ratios.find((r: { scenario: string }) => r.scenario === 'game-tick')?.peers.raw.n, 2, 'two paired rounds');
  t.ok(report.targets.every((x: { met: unknown }) => x.met === null || typeof x.met === 'boolean'));
  t.match(readFileSync(path.join(out, 'latest.md'), 'utf8'), /Targets \(issue 14\)/);
  t.match(readFileSync(path.join(out, 'latest.svg'), 'utf8'), /class="whisker"/);
});
