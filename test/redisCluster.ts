// Test fixture: a real Redis Cluster (three primaries, one replica each) on free loopback
// ports, no persistence, created with `redis-cli --cluster create`. The nodes are
// test/redisServer.ts processes in cluster mode, so they share its start/stop, its 2 s
// SIGKILL backstop and its watchdog (no node outlives the test process).

import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, sleep } from './helpers.ts';
import { redisMissing, startRedis, type RedisProcess } from './redisServer.ts';

const redisCliBin: string | undefined = (() => {
  const found = spawnSync('sh', ['-c', 'command -v redis-cli'], { encoding: 'utf8' });
  return found.status === 0 && found.stdout.trim() ? found.stdout.trim() : undefined;
})();

/** Why Redis Cluster tests skip, or undefined when they can run. */
export const redisClusterMissing: string | undefined =
  redisMissing ??
  (redisCliBin ? undefined : 'redis-cli not found on PATH: install it (Debian/Ubuntu: apt-get install -y redis-tools) to run the Redis Cluster tests');

export interface RedisClusterHandle {
  /** All six nodes: ioredis `new Cluster(handle.nodes)` startup nodes. */
  readonly nodes: { host: string; port: number }[];
  /** Ports of the three primaries as created (a failover changes who is primary). */
  readonly primaries: number[];
  /** Ports of the three replicas as created. */
  readonly replicas: number[];
  /** `redis://127.0.0.1:<port>` of each node, in `nodes` order. */
  readonly urls: string[];
  /** Where the nodes keep their nodes-<port>.conf; removed by stop(). */
  readonly dir: string;
  /** How long startRedisCluster took, spawn to a stable cluster (ms). */
  readonly startMs: number;
  /** One command through redis-cli against one node; its raw output (errors come back as text). */
  cli(port: number, ...args: string[]): Promise<string>;
  /** Port of the primary that serves `key`'s slot now (a key or a shard channel). */
  primaryOf(key: string): Promise<number>;
  /** SIGKILL one node (a crash) and wait until it is gone. */
  kill(port: number): Promise<void>;
  /** Start a killed node again on its port: it rejoins with its nodes.conf, its data gone. */
  start(port: number): Promise<void>;
  /**
   * Wait until every running node says cluster_state:ok with all 16384 slots served, they all
   * agree on which node serves which slots, and every running replica's link to its primary
   * is up (e.g. after kill(): the failover is done). Returns the primaries' ports as agreed.
   */
  waitStable(ms?: number): Promise<number[]>;
  /** Stop every node (SIGTERM, SIGKILL after 2 s), wait for them to exit, remove `dir`. Idempotent. */
  stop(): Promise<void>;
}

/** cluster-node-timeout: a dead primary's replica takes over in about 2–4 s. */
export const CLUSTER_NODE_TIMEOUT_MS = 2000;

/**
 * Start six cluster-mode redis-servers, make a cluster of them and wait (≤ 20 s) until it is
 * stable. Undefined when redis-server or redis-cli is missing (tests skip with
 * `redisClusterMissing`). Stop it in t.teardown.
 */
export async function startRedisCluster(): Promise<RedisClusterHandle | undefined> {
  if (redisClusterMissing) return undefined;
  const t0 = Date.now();
  // Six client ports and six cluster-bus ports (--cluster-port, not port+10000).
  const ports = new Set<number>();
  while (ports.size < 12) ports.add(await freePort());
  const [clientPorts, busPorts] = [[...ports].slice(0, 6), [...ports].slice(6)];
  const dir = await mkdtemp(path.join(os.tmpdir(), 'volley-redis-cluster-'));
  const procs = new Map<number, RedisProcess>();
  const killed = new Set<number>();
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      await Promise.all([...procs.values()].map((p) => p.stop()));
      await rm(dir, { recursive: true, force: true });
    })());

  const cli = (port: number, ...args: string[]) => redisCli(['-p', String(port), ...args]);
  const primaryOf = async (key: string) => {
    const port = clientPorts.find((p) => !killed.has(p))!;
    const out = await redisCli(['-p', String(port)], 2000, `CLUSTER KEYSLOT ${JSON.stringify(key)}\nCLUSTER NODES\n`);
    const slot = Number(out.split('\n')[0]);
    const owner = servingNodes(out).find((n) => n.slots.some(([lo, hi]) => lo <= slot && slot <= hi));
    if (!Number.isInteger(slot) || !owner) throw new Error(`no primary serves ${JSON.stringify(key)}: ${out.slice(0, 2000)}`);
    return owner.port;
  };
  const waitStable = async (ms = 20_000) => {
    const end = Date.now() + ms;
    for (;;) {
      const running = clientPorts.filter((port) => !killed.has(port));
      const verdict = await clusterVerdict(running, procs.size);
      if (Array.isArray(verdict)) return verdict;
      if (Date.now() > end) throw new Error(`Redis Cluster not stable after ${ms} ms: ${verdict}`);
      await sleep(100);
    }
  };

  try {
    // allSettled: if one fails, stop() must find all the others already in `procs`.
    const started = await Promise.allSettled(
      clientPorts.map(async (port, i) => {
        // A replica's first sync would wait 5 s (repl-diskless-sync-delay) for others to join.
        const args = ['--cluster-enabled', 'yes', '--cluster-port', String(busPorts[i]), '--cluster-config-file', path.join(dir, `nodes-${port}.conf`), '--dir', dir, '--protected-mode', 'no', '--cluster-node-timeout', String(CLUSTER_NODE_TIMEOUT_MS), '--repl-diskless-sync-delay', '0'];
        procs.set(port, await startRedis({ port, args }));
      }),
    );
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    const created = await redisCli(['--cluster', 'create', ...clientPorts.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'], 20_000);
    if (!created.includes('All 16384 slots covered')) throw new Error(`redis-cli --cluster create failed: ${created.slice(-2000)}`);
    const primaries = await waitStable(Math.max(1000, 20_000 - (Date.now() - t0)));
    return {
      nodes: clientPorts.map((port) => ({ host: '127.0.0.1', port })),
      primaries,
      replicas: clientPorts.filter((p) => !primaries.includes(p)),
      urls: clientPorts.map((port) => `redis://127.0.0.1:${port}`),
      dir,
      startMs: Date.now() - t0,
      cli,
      primaryOf,
      kill: async (port) => {
        await node(procs, port).kill();
        killed.add(port);
      },
      start: async (port) => {
        await node(procs, port).start();
        killed.delete(port);
      },
      waitStable,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function node(procs: Map<number, RedisProcess>, port: number): RedisProcess {
  const p = procs.get(port);
  if (!p) throw new Error(`no Redis Cluster node on port ${port}`);
  return p;
}

/** Run redis-cli against 127.0.0.1 with `input` on its stdin (several commands, one a line). */
function redisCli(args: string[], timeoutMs = 5000, input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(redisCliBin!, ['-h', '127.0.0.1', ...args], { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.once('error', reject);
    child.once('close', () => resolve(out));
    child.stdin.on('error', () => {}); // it exited before reading: its output says why
    child.stdin.end(input);
  });
}

/**
 * The primaries' ports when the running nodes form one healthy cluster (every slot served,
 * all views agree, replicas linked; at creation, all `size` nodes known to each), else why not.
 */
async function clusterVerdict(running: number[], size: number): Promise<number[] | string> {
  const views = await Promise.all(running.map((port) => redisCli(['-p', String(port)], 2000, 'CLUSTER INFO\nCLUSTER NODES\nINFO replication\n')));
  let agreed: string | undefined;
  let primaries: number[] = [];
  for (const [i, view] of views.entries()) {
    const port = running[i];
    const field = (name: string) => new RegExp(`^${name}:(\\S*)`, 'm').exec(view)?.[1];
    if (field('cluster_state') !== 'ok' || field('cluster_slots_ok') !== '16384') return `node ${port}: cluster_state ${field('cluster_state')}, slots ok ${field('cluster_slots_ok')}`;
    if (running.length === size && Number(field('cluster_known_nodes')) !== size) return `node ${port} knows ${field('cluster_known_nodes')} nodes`;
    if (field('role') === 'slave' && field('master_link_status') !== 'up') return `replica ${port}: link to its primary ${field('master_link_status')}`;
    const serving = servingNodes(view);
    const signature = serving.map((s) => `${s.port}:${s.slots.join(',')}`).join(' ');
    if (agreed !== undefined && signature !== agreed) return `node ${port} sees slots served by ${signature}, another node by ${agreed}`;
    agreed = signature;
    primaries = serving.map((s) => s.port);
  }
  if (primaries.length === 0) return 'no node running';
  return primaries;
}

/** The nodes serving slots in CLUSTER NODES output (failed ones left out), by port. */
function servingNodes(out: string): { port: number; slots: [number, number][] }[] {
  // <id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot ranges…>
  const line = /^[0-9a-f]{40} \S*:(\d+)@\S* (\S+)(?: \S+){5}((?: \S+)+)\r?$/gm;
  return [...out.matchAll(line)]
    .filter(([, , flags]) => !flags!.includes('fail'))
    .map(([, port, , ranges]) => ({
      port: Number(port),
      // "lo-hi" or one slot; "[slot->-id]" (migrating) is not served yet
      slots: ranges!
        .trim()
        .split(' ')
        .filter((r) => !r.startsWith('['))
        .map((r) => {
          const [lo, hi = lo] = r.split('-').map(Number) as [number, number?];
          return [lo, hi] as [number, number];
        }),
    }))
    .sort((a, b) => a.port - b.port);
}
