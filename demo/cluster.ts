// The demo as a cluster on one host: `npx tsx demo/cluster.ts` starts N demo nodes
// (default one per core), each its own process, tied together by Redis.
//
//   REDIS_URL  redis://127.0.0.1:6379 (default)      NODES  node count (default: cores)
//   PORT       8080 (default)                         PORTS  'shared' (default) or 'each'
//
// PORTS=shared: every node listens on PORT with the reusePort option (SO_REUSEPORT),
// so the kernel spreads new connections over the nodes. PORTS=each: node i listens on
// PORT+i (put a load balancer in front). Several processes also get past the
// per-process open-file limit: each node holds its own sockets.

import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { RedisAdapter } from '../server/cluster/index.ts';
import { startDemo } from './server.ts';

const redis = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const basePort = Number(process.env.PORT ?? 8080);
const shared = (process.env.PORTS ?? 'shared') !== 'each';
const stamp = () => new Date().toISOString().slice(11, 19);

/** One node: the demo server with a RedisAdapter. Runs in a forked child. */
async function runNode(index: number): Promise<void> {
  const port = shared ? basePort : basePort + index;
  const name = `node${index}`;
  const log = (line: string) => console.log(`${stamp()} [${name}] ${line}`);
  const adapter = new RedisAdapter({
    redis,
    nodeId: `${os.hostname()}:${name}:${process.pid}`,
    onError: (err) => log(`redis: ${(err as Error)?.message ?? err}`),
  });
  const demo = await startDemo({ port, log, adapter, reusePort: shared });
  log(`listening on :${demo.port} (pid ${process.pid}, Redis ${redis}, ${adapter.connected ? 'connected' : 'not reachable yet'})`);
  const stop = async () => {
    await demo.close();
    process.exit(0);
  };
  // SIGTERM (a rolling deploy: `kill -TERM <pid>`) drains: each player's session, calls in
  // flight included, moves to the node it reconnects to. SIGINT (the launcher's stop) closes.
  const drain = async () => {
    log(`draining: ${demo.server.connectionCount} session(s) move to the other nodes`);
    await demo.server.drain();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', drain);
}

/** The launcher: forks the nodes and stops them together. */
function runLauncher(): void {
  const count = Math.max(1, Number(process.env.NODES ?? os.availableParallelism?.() ?? os.cpus().length));
  console.log(`${stamp()} starting ${count} Volley demo node(s) on ${shared ? `port ${basePort} (shared)` : `ports ${basePort}..${basePort + count - 1}`}`);
  // One routes token for every node (any of them may answer /monitor on a shared port).
  const routesToken = process.env.VOLLEY_ROUTES_TOKEN ?? randomBytes(18).toString('base64url');
  console.log(`${stamp()} monitor: http://localhost:${basePort}/monitor#token=${routesToken}`);
  const children: ChildProcess[] = [];
  let stopping = false;
  for (let i = 0; i < count; i++) {
    // fork re-uses this process's execArgv, so the tsx loader comes along.
    const child = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, VOLLEY_NODE_INDEX: String(i), VOLLEY_ROUTES_TOKEN: routesToken } });
    child.on('exit', (code, signal) => {
      if (!stopping) console.log(`${stamp()} node${i} exited (${signal ?? code})`);
    });
    children.push(child);
  }
  const stop = () => {
    stopping = true;
    for (const c of children) c.kill('SIGINT'); // the whole cluster stops: no node to drain to
    Promise.all(children.map((c) => (c.exitCode !== null ? null : new Promise((r) => c.once('exit', r))))).then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const index = process.env.VOLLEY_NODE_INDEX;
  if (index !== undefined) await runNode(Number(index));
  else runLauncher();
}
