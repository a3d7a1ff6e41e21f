// The orchestrator's side of the bench processes: forking a server or client process
// through the tsx loader, stopping it, spreading connections over client processes, and
// the shapes of what they report.

import { execSync, fork, spawn as spawnProcess, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from './ipc.ts';
import type { SystemName } from '../clients/systems.ts';

const TSX = import.meta.resolve('tsx');
/** The repository's root. */
const REPO = fileURLToPath(new URL('../..', import.meta.url));
/** A path under bench/. */
const benchFile = (p: string) => fileURLToPath(new URL(`../${p}`, import.meta.url));

/** A server's snapshot (servers/host.ts `snap`). */
export interface Snap {
  t: number;
  cpuUs: number;
  rss: number;
  heapUsed: number;
  count: number;
  conns: number;
  game: { ticks: number; inputs: number; acts: number; calls: number; callsOk: number; callsFailed: number };
}

/** A client process' figures for the window (clients/worker.ts `stop`). */
export interface Stopped {
  hist: string;
  count: number;
  errors: number;
  cpuUs: number;
  firstError?: string;
  /** game-tick: states received of the ticks asked for, `act` calls completed. */
  states: number;
  acts: number;
}

/** `dir`/dist from that checkout's sources: tsc alone (npm run build also bundles the browser SDK). */
export function buildDist(dir: string): void {
  execSync(`"${process.execPath}" node_modules/typescript/bin/tsc -p tsconfig.build.json`, { cwd: dir, stdio: 'inherit' });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The load loops' own deadline, a backstop: the orchestrator's `stop` ends them. Generous,
 * since on a starved machine the orchestrator's replies come late and a window stretches:
 * load that ended at its own deadline inside the window would make a system look cheap.
 */
export const loadBackstopMs = (warmupMs: number, durationMs: number): number => 2 * (warmupMs + durationMs) + 10_000;

export function spawn(file: string, env: Record<string, string>, prof: string | undefined, name: string, nodeFlags: string[] = []): ChildProcess {
  const execArgv = ['--import', TSX, '--expose-gc', ...nodeFlags];
  // One folder per process: the tsx loader thread writes a profile of its own beside the main thread's.
  if (prof) execArgv.push('--cpu-prof', `--cpu-prof-dir=${path.join(prof, name)}`);
  const child = fork(benchFile(file), [], { execArgv, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  // A message to a child that already died (its channel closed) comes back as an 'error'
  // event: the caller sees the death through its request's 'exit' instead of a crash here.
  child.on('error', () => {});
  let tail = '';
  child.stderr!.on('data', (d: Buffer) => (tail = (tail + d.toString()).slice(-4000)));
  (child as ChildProcess & { tail: () => string }).tail = () => tail;
  return child;
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    await request(child, 'exit', {}, 5000);
  } catch {
    // already gone
  }
  await Promise.race([exited, sleep(5000)]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

/** Split n connections over k processes (some may get 0). */
export function splitAll(n: number, k: number): number[] {
  return Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0));
}

/** Split n connections over at most k processes, none empty. */
export function split(n: number, k: number): number[] {
  return splitAll(n, k).filter((c) => c > 0);
}

/** Open `counts[i]` connections in client process i (forked on first use, reused after). */
export async function connectWorkers(
  system: SystemName,
  port: number,
  counts: number[],
  bare: boolean,
  workers: ChildProcess[],
  clientProf: string | undefined,
  firstUid = 0,
): Promise<{ connected: number; failed: number; firstError?: string }> {
  let from = firstUid;
  const replies = await Promise.all(
    counts.map((n, i) => {
      let w = workers[i];
      if (!w) workers.push((w = spawn('clients/worker.ts', {}, clientProf, `client-${system}-${i}`)));
      const start = from;
      from += n;
      return request<{ connected: number; failed: number; firstError?: string }>(
        w,
        'connect',
        { system, port, from: start, count: n, bare, concurrency: bare ? 64 : 16 },
        180_000,
      );
    }),
  );
  return {
    connected: replies.reduce((s, r) => s + r.connected, 0),
    failed: replies.reduce((s, r) => s + r.failed, 0),
    firstError: replies.find((r) => r.firstError)?.firstError,
  };
}

/** Wait `ms`, reporting the fraction done every 250 ms. */
export async function tick(ms: number, onTick: (fraction: number) => void): Promise<void> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    onTick((Date.now() - start) / ms);
    await sleep(Math.min(250, ms - (Date.now() - start)));
  }
  onTick(1);
}

export function round(v: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** Spawn node with `args`; resolve once it prints a line starting with `marker`. */
export function spawnReady(args: string[], marker = 'READY'): Promise<ChildProcess> {
  const child = spawnProcess(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d;
      if (out.split('\n').some((l) => l.startsWith(marker))) {
        child.stdout!.off('data', onData);
        (child as ChildProcess & { firstOutput?: string }).firstOutput = out;
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before ${marker}: ${out.slice(-500)}`)));
  });
}
