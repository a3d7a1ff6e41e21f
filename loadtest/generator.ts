// One load generator (one machine): forks the worker processes, hands each its share of
// the plan, and adds up what they report, once a second, with its own CPU.

import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Collector } from './collect.ts';
import type { Plan } from './plan.ts';
import { HOT_CPU, type ProcLoad, type Snapshot } from './stats.ts';

const here = fileURLToPath(import.meta.url);
const fromSource = here.endsWith('.ts');
const workerFile = fileURLToPath(new URL(fromSource ? './worker.ts' : './worker.js', import.meta.url));

/**
 * The Node flags a worker needs to load `script` (and, from source, this folder): tsx's
 * loader for TypeScript, found from the script's folder, the working directory or here;
 * else Node's own type stripping where it has it (22.6+).
 */
export function loaderArgs(script: string): string[] {
  if (!fromSource && !/\.(c|m)?tsx?$/.test(script)) return [];
  for (const from of [script, `${process.cwd()}/`, here]) {
    try {
      return ['--import', pathToFileURL(createRequire(from).resolve('tsx')).href];
    } catch {
      // not there: next place
    }
  }
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  if (major > 22 || (major === 22 && minor >= 6)) return ['--experimental-strip-types', '--no-warnings'];
  throw new Error(`${script} is TypeScript: install tsx (npm i -D tsx) or compile it to .js`);
}

export interface GeneratorOptions {
  /** The plan without this generator's worker split. */
  plan: Omit<Plan, 'worker' | 'workers' | 'startAt'>;
  workers: number;
  /** Each second: this generator's figures so far. */
  onSnapshot(snap: Snapshot): void;
  /** A worker failed (its message); the run goes on with the others. */
  onFail(message: string): void;
  /**
   * Every worker has loaded the script: when does player 0 connect (epoch ms, this
   * machine's clock)? Several generators agree on it through Redis.
   */
  startAt(): Promise<number>;
}

export interface Generator {
  /** Resolves with the final figures once every worker is done. */
  done: Promise<Snapshot>;
  /** Start the ramp-down now (Ctrl-C). */
  stop(): void;
}

export function startGenerator(opts: GeneratorOptions): Generator {
  if (!existsSync(opts.plan.script)) throw new Error(`no bot script at ${opts.plan.script}`);
  // VOLLEY_LOADTEST_NODE_ARGS: more Node flags for the workers (--cpu-prof, --max-old-space-size=…).
  const execArgv = [...loaderArgs(opts.plan.script), ...(process.env.VOLLEY_LOADTEST_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? [])];
  const collector = new Collector();
  const children: ChildProcess[] = [];
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  let lastCpu = process.cpuUsage();
  let lastAt = performance.now();
  const id = `g${opts.plan.generator}main`;
  const ownLoad = (): ProcLoad => {
    const cpu = process.cpuUsage();
    const now = performance.now();
    const pct = ((cpu.user - lastCpu.user + cpu.system - lastCpu.system) / 1000 / Math.max(1, now - lastAt)) * 100;
    lastCpu = cpu;
    lastAt = now;
    const l = { id, cpu: Math.round(pct * 10) / 10, loopP99: Math.round(loop.percentile(99) / 1e4) / 100, loopMax: Math.round(loop.max / 1e4) / 100 };
    loop.reset();
    peakCpu = Math.max(peakCpu, l.cpu);
    peakLoop = Math.max(peakLoop, l.loopP99);
    if (l.cpu >= HOT_CPU) hot++;
    return l;
  };
  const cpu0 = process.cpuUsage();
  let peakCpu = 0;
  let peakLoop = 0;
  let hot = 0;
  let peakRss = 0;
  // The workers' figures with this process' own (it adds up, and on the coordinator renders).
  const take = () => {
    const s = collector.take([ownLoad()]);
    s.peakCpu[id] = peakCpu;
    s.peakLoop[id] = peakLoop;
    s.hotSeconds[id] = hot;
    s.peakRssMb[id] = peakRss = Math.max(peakRss, Math.round(process.memoryUsage.rss() / 1048576));
    const cpu = process.cpuUsage(cpu0);
    s.cpuUs += cpu.user + cpu.system;
    return s;
  };
  const ticker = setInterval(() => opts.onSnapshot(take()), 1000);

  const done = new Promise<Snapshot>((resolve) => {
    let left = opts.workers;
    let loaded = 0;
    const begin = () =>
      opts.startAt().then(
        (startAt) => {
          children.forEach((c, w) => c.connected && c.send({ cmd: 'start', plan: { ...opts.plan, startAt, worker: w, workers: opts.workers } satisfies Plan }));
        },
        (err: Error) => {
          opts.onFail(err.message);
          for (const c of children) c.kill();
        },
      );
    const finish = () => {
      if (--left > 0) return;
      clearInterval(ticker);
      loop.disable();
      resolve(take());
    };
    for (let w = 0; w < opts.workers; w++) {
      const child = fork(workerFile, [], {
        execArgv,
        env: { ...process.env, VOLLEY_LOADTEST_GEN: String(opts.plan.generator), VOLLEY_LOADTEST_WORKER: String(w) },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      children.push(child);
      let finished = false;
      const end = () => {
        if (finished) return;
        finished = true;
        finish();
      };
      child.on('message', (msg: { type: string; snap?: Snapshot; message?: string }) => {
        if (msg.type === 'ready') child.send({ cmd: 'load', script: opts.plan.script });
        else if (msg.type === 'loaded' && ++loaded === opts.workers) begin();
        else if (msg.type === 'snap' || msg.type === 'done') collector.put(`w${w}`, msg.snap!);
        else if (msg.type === 'fail') opts.onFail(msg.message ?? 'worker failed');
        if (msg.type === 'done') end();
      });
      child.on('exit', (code) => {
        if (!finished && code !== 0) opts.onFail(`worker ${w} exited with code ${code}`);
        end();
      });
    }
  });

  return {
    done,
    stop: () => {
      for (const c of children) if (c.connected) c.send({ cmd: 'stop' });
    },
  };
}
