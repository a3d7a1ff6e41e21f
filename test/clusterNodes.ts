// Cluster test fixtures: Volley nodes on a shared Redis, in this process or in a child
// process that a test can SIGKILL (a crash: sockets close, nothing cleans up).

import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { RedisAdapter, type RedisAdapterOptions } from '../server/cluster/index.ts';
import type { ServerOptions } from '../server/index.ts';
import { Cluster, Redis } from 'ioredis';
import { sleep, startServer, type Harness } from './helpers.ts';

export interface ClusterNode<S = any, C = any> extends Harness<S, C> {
  adapter: RedisAdapter;
}

export interface NodeSettings {
  redis: string;
  /** A Redis Cluster's nodes: the adapter (and these fixtures) use it instead of `redis`. */
  cluster?: { host: string; port: number }[];
  prefix: string;
  presenceTtlMs?: number;
}

/** A Volley node on 127.0.0.1:`port` (0: a free one) with a RedisAdapter. */
export async function startNode<S = any, C = any>(
  cluster: NodeSettings,
  opts: Partial<ServerOptions<NoInfer<S>, NoInfer<C>>> & Pick<ServerOptions<NoInfer<S>, NoInfer<C>>, 'handlers'>,
  adapterOpts: RedisAdapterOptions = {},
  port = 0,
): Promise<ClusterNode<S, C>> {
  const adapter = new RedisAdapter({
    redis: cluster.redis,
    prefix: cluster.prefix,
    presenceTtlMs: cluster.presenceTtlMs ?? 1500,
    onError: () => {},
    ...(cluster.cluster ? { cluster: { nodes: cluster.cluster } } : {}),
    ...adapterOpts,
  });
  const h = await startServer<S, C>({ ...opts, adapter }, port);
  return {
    ...h,
    adapter,
    // Presence lands in Redis one round trip after the socket opens; until then other
    // nodes can't reach the uid. Tests wait for it so cross-node calls can't race it.
    async client(uid, copts) {
      const c = await h.client(uid, copts);
      // A refused login never registers: stop waiting once the node dropped it.
      await waitForPresence(cluster, uid, adapter.nodeId, () => h.server.isConnected(uid));
      return c;
    },
  };
}

/** Wait (≤ 2 s) until Redis says `nodeId` holds uid, or `still()` turns false. */
export async function waitForPresence(cluster: NodeSettings, uid: string, nodeId: string, still: () => boolean = () => true): Promise<void> {
  const redis = cluster.cluster
    ? new Cluster(cluster.cluster, { redisOptions: { commandTimeout: 500, maxRetriesPerRequest: 1 } })
    : new Redis(cluster.redis, { commandTimeout: 500, maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  try {
    const holder = () => redis.get(`${cluster.prefix}p:${uid}`).catch(() => 'unknown: Redis is away');
    const end = Date.now() + 2000;
    while (!((await holder()) ?? '').startsWith(`${nodeId} `) && still() && Date.now() < end) await sleep(2);
  } finally {
    redis.disconnect();
  }
}

export interface ChildNode {
  port: number;
  url: string;
  nodeId: string;
  /** SIGKILL, and wait until the process is gone. */
  kill(): Promise<void>;
}

const root = fileURLToPath(new URL('..', import.meta.url));

/** A node in a child process (authenticate: token "u:<uid>"; no server handlers). */
export async function spawnNode(cluster: NodeSettings): Promise<ChildNode> {
  const server = pathToFileURL(`${root}server/index.ts`).href;
  const clusterMod = pathToFileURL(`${root}server/cluster/index.ts`).href;
  const code = `
    const { createServer } = await import(${JSON.stringify(server)});
    const { RedisAdapter } = await import(${JSON.stringify(clusterMod)});
    const adapter = new RedisAdapter(${JSON.stringify({ redis: cluster.redis, prefix: cluster.prefix, presenceTtlMs: cluster.presenceTtlMs ?? 1500 })});
    const server = createServer({
      authenticate: (req) => (req.token?.startsWith('u:') ? req.token.slice(2) : null),
      handlers: {},
      adapter,
    });
    const port = await server.listen(0, '127.0.0.1');
    console.log('READY ' + port + ' ' + adapter.nodeId);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const ready = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`child node did not start: ${out}`)), 20_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /READY (\d+) (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(`${m[1]} ${m[2]}`);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child node exited (${code}): ${out}`));
    });
  });
  const [port, nodeId] = ready.split(' ') as [string, string];
  return {
    port: Number(port),
    url: `ws://127.0.0.1:${port}/`,
    nodeId,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
