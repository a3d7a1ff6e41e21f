// npm run bench:instructions: the instructions a system's server process executes per call,
// counted by valgrind's callgrind over a fixed number of calls. The timed bench's per-round
// ratios spread ±5–10 % on a shared 2-core VM; an instruction count does not depend on the
// machine's speed, so a change of a few percent in the server's user-space work shows.
//
// Per system and scenario: the server process (servers/<system>.ts, the same as the timed
// bench's) runs under `valgrind --tool=callgrind --instr-atstart=no` with V8 flags that keep
// its work off timers and seeds (STEADY_FLAGS); this process connects --connections clients
// (one by default: one call in flight, so every call is one wake-up of the server's loop and
// one frame each way, whatever the machine's speed), warms it up uncounted (--warmup calls
// and --warmup-s seconds; instrumentation off, which also runs faster), then counts
// --windows windows of --calls calls (`callgrind_control -i on|off`, a dump per window).
// The figure: the least window's instructions (Ir) on the main thread ÷ calls. User space
// only: the kernel's side of each syscall is not counted.

import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from './lib/ipc.ts';
import { buildDist, sleep } from './lib/procs.ts';
import { objectPayload } from './lib/payload.ts';
import { serverEnv, serverFile } from './orchestrate.ts';
import { openClient, type Conn, type SystemName } from './clients/systems.ts';

const SCENARIOS = ['call-small', 'call-1kb', 'server-calls', 'server-calls-1kb'] as const;
type Scenario = (typeof SCENARIOS)[number];
/** Systems whose server is a Node process (callgrind runs node; signalr's dotnet is not one). */
const NODE_SYSTEMS: SystemName[] = ['volley', 'volley-ws', 'raw', 'socketio', 'socketio-uws', 'birpc', 'volley-base'];

const HELP = `npm run bench:instructions -- [flags]
  --scenario a,b      ${SCENARIOS.join(',')} (default call-small,server-calls)
  --systems a,b       ${NODE_SYSTEMS.join(',')} (default volley,raw; volley-base added by --baseline)
  --baseline DIR      also count volley-base: the Volley of checkout DIR (its dist/ built)
  --calls N           calls per counted window (default 2000)
  --windows N         counted windows per run, the least counts (default 3)
  --warmup N          uncounted calls before them (default 20000: fewer leave TurboFan compiling in the window)
  --warmup-s S        and uncounted seconds at least (default 25: Volley's timers have fired by then)
  --connections N     clients; calls go round robin, one in flight each (default 1)
  --repeat N          runs of each system and scenario, to see the spread (default 1)
  --payload N         bytes of the 1kb object (default 1024)
  --node-flags "..."  extra flags for the server's node (e.g. "--jitless")
  --out DIR           where callgrind's files go (default bench/results/callgrind)`;

interface Options {
  scenarios: Scenario[];
  systems: SystemName[];
  calls: number;
  windows: number;
  warmup: number;
  warmupS: number;
  connections: number;
  repeat: number;
  payloadBytes: number;
  nodeFlags: string[];
  out: string;
}

function parse(argv: string[]): Options {
  const f = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') {
      console.log(HELP);
      process.exit(0);
    }
    if (!a.startsWith('--') || i + 1 >= argv.length) throw new Error(`bad flag ${a}\n${HELP}`);
    f.set(a.slice(2), argv[++i]!);
  }
  for (const k of f.keys())
    if (!['scenario', 'systems', 'baseline', 'calls', 'windows', 'warmup', 'warmup-s', 'connections', 'repeat', 'payload', 'node-flags', 'out'].includes(k)) throw new Error(`unknown flag --${k}\n${HELP}`);
  const int = (k: string, d: number, max: number) => {
    const v = f.has(k) ? Number(f.get(k)) : d;
    if (!Number.isInteger(v) || v < 1 || v > max) throw new Error(`--${k} must be an integer in 1..${max}`);
    return v;
  };
  const scenarios = (f.get('scenario') ?? 'call-small,server-calls').split(',') as Scenario[];
  for (const s of scenarios) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}\n${HELP}`);
  const systems = (f.get('systems') ?? 'volley,raw').split(',') as SystemName[];
  for (const s of systems) if (!NODE_SYSTEMS.includes(s)) throw new Error(`no instruction count for system ${s}\n${HELP}`);
  const baseline = f.get('baseline');
  if (baseline) {
    const dir = path.resolve(baseline);
    if (!existsSync(path.join(dir, 'dist/server/index.js'))) throw new Error(`${dir}/dist/server/index.js missing: build the baseline (npx tsx scripts/build-package.ts there)`);
    process.env.BENCH_BASELINE = dir;
    if (!systems.includes('volley-base')) systems.push('volley-base');
  }
  if (systems.includes('volley-base') && !process.env.BENCH_BASELINE) throw new Error('volley-base needs --baseline DIR');
  return {
    scenarios,
    systems,
    calls: int('calls', 2000, 1_000_000),
    windows: int('windows', 3, 100),
    warmup: int('warmup', 20_000, 1_000_000),
    warmupS: int('warmup-s', 25, 3600),
    connections: int('connections', 1, 1000),
    repeat: int('repeat', 1, 20),
    payloadBytes: int('payload', 1024, 1 << 20),
    nodeFlags: (f.get('node-flags') ?? '').split(/\s+/).filter(Boolean),
    out: path.resolve(f.get('out') ?? fileURLToPath(new URL('./results/callgrind', import.meta.url))),
  };
}

const TSX = import.meta.resolve('tsx');
/**
 * Node flags that make the count repeatable. --single-threaded: V8 compiles and collects on
 * the main thread, so a compile job or a GC helper's share never lands in the window by
 * timing. --hash-seed / --random-seed: V8 seeds string hashes per process, so a Map keyed by
 * strings walked chains of a different length in each run (±0.4 % of Volley's call-small).
 * --no-memory-reducer, --no-flush-bytecode: no major GC started by a timer (a run on a loaded
 * machine takes longer and got more of them: raw's call-small read 22,766 and 29,620), and
 * no bytecode thrown away and compiled again by one. --min/--max-semi-space-size=1: a young
 * generation of a fixed 1 MB (V8 sizes it by the GC history otherwise: raw's server-calls
 * read 15,581 and 15,944, a scavenge more or less per window), so every window holds its
 * share of scavenges (0.15 % and 0.09 % between runs for raw and Volley's server-calls).
 */
const STEADY_FLAGS = ['--single-threaded', '--hash-seed=1', '--random-seed=1', '--no-memory-reducer', '--no-flush-bytecode', '--min-semi-space-size=1', '--max-semi-space-size=1'];
/** Under valgrind node runs ~50× slower: generous bounds on every step. */
const STEP_MS = 600_000;

function callgrind(pid: number, what: 'on' | 'off' | 'dump'): void {
  execFileSync('callgrind_control', what === 'dump' ? ['-d', String(pid)] : ['-i', what, String(pid)], { stdio: 'pipe', timeout: 30_000 });
}

/** `count` calls, round robin over the connections, one in flight each. */
async function clientCalls(conns: Conn[], method: string, args: unknown[], count: number): Promise<void> {
  let issued = 0;
  await Promise.all(
    conns.map(async (c) => {
      while (issued < count) {
        issued++;
        await c.call(method, args);
      }
    }),
  );
}

async function runOne(o: Options, system: SystemName, scenario: Scenario, rep: number): Promise<{ main: number; all: number }> {
  const outFile = path.join(o.out, `${scenario}-${system}-${rep}.callgrind`);
  for (const f of readdirSync(o.out)) if (f.startsWith(path.basename(outFile))) rmSync(path.join(o.out, f));
  const env = { ...process.env, ...serverEnv(system, scenario, 8), BENCH_RATE_ROOM: '1' };
  const server: ChildProcess = fork(fileURLToPath(new URL(`./servers/${serverFile(system)}.ts`, import.meta.url)), [], {
    execPath: 'valgrind',
    execArgv: [
      '--tool=callgrind',
      '--instr-atstart=no',
      '--separate-threads=yes',
      `--callgrind-out-file=${outFile}`,
      process.execPath,
      '--import',
      TSX,
      '--expose-gc',
      ...STEADY_FLAGS,
      ...o.nodeFlags,
    ],
    env,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let tail = '';
  server.stderr!.on('data', (d: Buffer) => (tail = (tail + d.toString()).slice(-3000)));
  const exited = new Promise<void>((r) => server.once('exit', () => r()));
  const conns: Conn[] = [];
  try {
    const { port } = await request<{ port: number }>(server, 'listen', {}, STEP_MS);
    const hooks = { tick() {}, answered() {}, state() {}, item() {} };
    for (let i = 0; i < o.connections; i++) conns.push(await openClient(system, port, `u${i}`, hooks));
    const serverDriven = scenario.startsWith('server-calls');
    const payload = objectPayload(o.payloadBytes);
    const [method, args] = scenario.endsWith('1kb') ? ['echo', [payload]] : ['add', [1, 2]];
    const calls = async (count: number) => {
      if (serverDriven) await request(server, 'driveN', { scenario, count, payloadBytes: o.payloadBytes, maxMs: STEP_MS }, STEP_MS + 10_000);
      else await clientCalls(conns, method, args, count);
    };
    // Warm-up: at least --warmup calls and --warmup-s seconds. The seconds matter: a rare
    // event on a timer (Volley's first heartbeat, 10 s in) changes object shapes and
    // deoptimizes the hot path once; landing in the window or not by the clock, it moved
    // Volley's call-small between 21,816 and 66,791 per call.
    const warmEnd = Date.now() + o.warmupS * 1000;
    await calls(o.warmup);
    while (Date.now() < warmEnd) await calls(1000);
    // --windows windows of --calls calls; before each, a scavenge off the clock, so that each
    // starts with the same empty young generation and holds the same scavenges. A window is
    // dumped on its own (callgrind_control -d); the figure is the least of them: a window
    // can only gain from a rare event (a deoptimization and the compile after it, a timer).
    for (let w = 0; w < o.windows; w++) {
      await request(server, 'gc', { minor: true }, STEP_MS);
      callgrind(server.pid!, 'on');
      await calls(o.calls);
      callgrind(server.pid!, 'off');
      callgrind(server.pid!, 'dump');
    }
    for (const c of conns) c.close();
    await request(server, 'exit', {}, STEP_MS).catch(() => {});
    await Promise.race([exited, gone(server.pid!)]);
  } catch (err) {
    throw new Error(`${system} ${scenario}: ${(err as Error).message}\nserver stderr: ${tail}`);
  } finally {
    if (server.exitCode === null) server.kill('SIGKILL');
  }
  // --separate-threads: one file per thread and dump, <outFile>.<window>-01 the main thread's.
  const totalsOf = (f: string) => {
    const m = /^totals:\s*(\d+)/m.exec(readFileSync(path.join(o.out, f), 'utf8'));
    if (!m) throw new Error(`${f}: no totals line`);
    return Number(m[1]);
  };
  const windows = Array.from({ length: o.windows }, (_, w) => {
    const main = `${path.basename(outFile)}.${w + 1}-01`;
    if (!existsSync(path.join(o.out, main))) throw new Error(`no main-thread dump ${main}`);
    const all = readdirSync(o.out).filter((f) => f.startsWith(`${path.basename(outFile)}.${w + 1}-`));
    return { main: totalsOf(main) / o.calls, all: all.reduce((s, f) => s + totalsOf(f), 0) / o.calls };
  });
  return windows.reduce((a, b) => (b.main < a.main ? b : a));
}

/** Resolves once `pid` no longer exists (a backstop to the 'exit' event; at most STEP_MS). */
async function gone(pid: number): Promise<void> {
  for (const end = Date.now() + STEP_MS; Date.now() < end; await sleep(250)) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const spread = (xs: number[]) => (xs.length > 1 ? ((Math.max(...xs) - Math.min(...xs)) / Math.min(...xs)) * 100 : 0);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'pipe' });
  } catch {
    throw new Error('valgrind not found: apt-get install valgrind');
  }
  if (process.env.BENCH_VOLLEY_SRC !== '1') buildDist(path.join(import.meta.dirname, '..'));
  mkdirSync(o.out, { recursive: true });
  const t0 = Date.now();
  const per = new Map<string, number[]>();
  // Interleaved like the timed bench (the count does not drift, but a slow machine stays fair).
  for (const scenario of o.scenarios)
    for (let rep = 1; rep <= o.repeat; rep++)
      for (const system of o.systems) {
        const t = Date.now();
        const { main: ir, all } = await runOne(o, system, scenario, rep);
        process.stderr.write(`${scenario} ${system} #${rep}: ${fmt(ir)} instructions per call on the main thread, ${fmt(all)} on all (${Math.round((Date.now() - t) / 1000)} s)\n`);
        const k = `${scenario}\t${system}`;
        per.set(k, [...(per.get(k) ?? []), ir]);
      }
  // Ratios to raw (the floor) and to volley-base (the code before a change), where run.
  const refs = (['raw', 'volley-base'] as SystemName[]).filter((r) => o.systems.includes(r));
  const lines = [
    `Server instructions per call (callgrind Ir; the least of ${o.windows} windows of ${o.calls} calls each, after ${o.warmup}+ uncounted over ${o.warmupS}+ s, ${o.connections} connection(s), one call in flight each; ${o.repeat} run(s); ${Math.round((Date.now() - t0) / 1000)} s)`,
    '',
    `| scenario | system | Ir per call (median) | runs | spread |${refs.map((r) => ` / ${r} |`).join('')}`,
    `|---|---|--:|---|--:|${refs.map(() => '--:|').join('')}`,
  ];
  for (const scenario of o.scenarios)
    for (const system of o.systems) {
      const xs = per.get(`${scenario}\t${system}`) ?? [];
      const ratios = refs.map((r) => ` ${(median(xs) / median(per.get(`${scenario}\t${r}`)!)).toFixed(3)} |`).join('');
      lines.push(`| ${scenario} | ${system} | ${fmt(median(xs))} | ${xs.map(fmt).join(', ')} | ${spread(xs).toFixed(2)} % |${ratios}`);
    }
  lines.push('', `callgrind files: ${o.out} (callgrind_annotate <file> | head -60 for where the instructions went)`);
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
