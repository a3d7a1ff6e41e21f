// What a session hand-over costs (issue 22): N players on node A, each with one call in
// flight each way, are moved to node B by A.drain() (the load balancer, a TCP proxy here,
// now sends them to B). Reports the time until all resumed on B, the bytes through Redis
// and the process CPU (both nodes, the proxy and the clients share this process: an upper
// bound for the nodes' part), per session.
//   npx tsx bench/handover-cost.ts [--players 200]

import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { connect, type VolleyClient } from '../client/index.ts';
import { createServer, type ServerContext, type VolleyServer } from '../server/index.ts';
import { RedisAdapter } from '../server/cluster/index.ts';
import { WebSocket } from 'ws';
import { startRedis } from '../test/redisServer.ts';
import { TcpProxy } from '../test/tcpProxy.ts';

const { values } = parseArgs({ options: { players: { type: 'string', default: '200' } } });
const N = Number(values.players);
const redis = await startRedis();
const gates: (() => void)[] = [];
const handlers = { slow: () => new Promise<string>((r) => gates.push(() => r('done'))) };

async function node(): Promise<{ server: VolleyServer; adapter: RedisAdapter; port: number }> {
  const adapter = new RedisAdapter({ redis: redis.url, prefix: 'hc:', onError: () => {} });
  const server = createServer({ authenticate: (req) => req.token ?? null, handlers, adapter, resumeWindowMs: 30_000 });
  const port = await server.listen(0, '127.0.0.1');
  return { server, adapter, port };
}

const A = await node();
const B = await node();
const proxy = await TcpProxy.start(A.port);
const answers: (() => void)[] = [];
const clients: VolleyClient[] = [];
for (let i = 0; i < N; i++) {
  const c = await connect(proxy.url, {
    token: `p${i}`,
    WebSocket,
    reconnect: { initialDelayMs: 10, maxDelayMs: 100 },
    handlers: { ask: () => new Promise<string>((r) => answers.push(() => r('answer'))) },
  });
  clients.push(c);
}
await new Promise((r) => setTimeout(r, 500)); // presence written
const fromA = clients.map((_, i) => A.server.call(`p${i}`, 'ask', [], { timeoutMs: 60_000 }));
const fromPlayers = clients.map((c) => c.server.slow());
while (answers.length < N || gates.length < N) await new Promise((r) => setTimeout(r, 10));

const stats = async () => {
  const r = new Redis(redis.url);
  const info = await r.info('stats');
  r.disconnect();
  const num = (k: string) => Number(new RegExp(`${k}:(\\d+)`).exec(info)?.[1] ?? 0);
  return { in: num('total_net_input_bytes'), out: num('total_net_output_bytes'), cmds: num('total_commands_processed') };
};
const before = await stats();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
proxy.targetPort = B.port;
const drained = A.server.drain({ timeoutMs: 60_000 });
while (B.server.stats().connections < N || clients.some((c) => c.state !== 'open')) await new Promise((r) => setTimeout(r, 5));
const moveMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const after = await stats();
for (const a of answers) a();
for (const g of gates) g();
const settled = await Promise.allSettled([...fromA, ...fromPlayers]);
const failed = settled.filter((s) => s.status === 'rejected').length;
await drained;
const per = (x: number) => (x / N).toFixed(1);
console.log(`${N} sessions moved A → B by drain(), one call in flight each way per session`);
console.log(`  all resumed on B after ${moveMs.toFixed(0)} ms (${per(moveMs)} ms per session, moved one after another as clients reconnect)`);
console.log(`  Redis: ${per(after.in - before.in)} B in, ${per(after.out - before.out)} B out, ${per(after.cmds - before.cmds)} commands per session (TAKE, GIVE, presence, rooms)`);
console.log(`  process CPU (nodes + proxy + clients): ${per((cpu.user + cpu.system) / 1000)} ms per session`);
console.log(`  calls in flight afterwards: ${settled.length - failed} answered, ${failed} failed`);
for (const c of clients) c.close();
await B.server.close();
await proxy.close();
await redis.stop();
process.exit(0);
