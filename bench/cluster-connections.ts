// Many connections on two nodes: N connections held by two Volley node processes sharing
// one port (SO_REUSEPORT), each under its own open-file limit, opened from client processes
// on different loopback addresses; what each node holds, its RSS, and the presence in Redis.
//
//   npx tsx bench/cluster-connections.ts [--connections 38000] [--redis URL]
//
// Without --redis it starts a redis-server of its own on a free port.

import { type ChildProcess } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from '../test/helpers.ts';
import { startRedis, type RedisProcess } from '../test/redisServer.ts';
import { sleep, spawnReady } from './lib/procs.ts';

export interface ClusterConnectionsOptions {
  /** Connections to open in total. Default 38 000. */
  connections?: number;
  /** Node processes sharing one port (SO_REUSEPORT). Default 2. */
  nodes?: number;
  /** Connections per client process (each process has its own open-file limit). Default 15 000. */
  perClientProcess?: number;
  /** How long to hold them all open before closing, ms. Default 3000. */
  holdMs?: number;
  redisUrl?: string;
}

export interface ClusterConnectionsResult {
  requested: number;
  /** Upgrades the client processes saw succeed (101). */
  opened: number;
  failed: number;
  /** Sockets each node held at the peak, and its RSS then. */
  perNode: { connections: number; rssMb: number }[];
  /** Sum over the nodes at the peak. */
  held: number;
  /** Presence entries in Redis at the peak (registered uids, all nodes). */
  presenceInRedis: number;
  openSeconds: number;
  rssKbPerConnection: number;
}

const root = fileURLToPath(new URL('..', import.meta.url));

/** A node process listening on a shared port; prints "COUNT <connections> <rss>" every 500 ms. */
function spawnCountingNode(port: number, redisUrl: string, prefix: string): Promise<ChildProcess> {
  const code = `
    const { createServer } = await import(${JSON.stringify(pathToFileURL(`${root}server/index.ts`).href)});
    const { RedisAdapter } = await import(${JSON.stringify(pathToFileURL(`${root}server/cluster/index.ts`).href)});
    const server = createServer({
      authenticate: (req) => req.token ?? null,
      handlers: {},
      idleTimeoutSec: 120,
      reusePort: true,
      adapter: new RedisAdapter({ redis: ${JSON.stringify(redisUrl)}, prefix: ${JSON.stringify(prefix)}, onError: () => {} }),
    });
    await server.listen(${port}, '127.0.0.1');
    console.log('READY');
    setInterval(() => console.log('COUNT ' + server.connectionCount + ' ' + process.memoryUsage().rss), 500);
    process.on('SIGTERM', async () => { await server.close({ graceMs: 0 }); process.exit(0); });
  `;
  return spawnReady(['--import', 'tsx', '--input-type=module', '-e', code]);
}

/**
 * A client process opening `count` raw WebSocket connections from source address `local`
 * (a different 127.x address per process: each has its own ~28 000 ephemeral ports). It
 * answers pings, prints "OPENED <ok> <failed>" when done and holds until SIGTERM.
 */
function spawnClientProcess(port: number, local: string, first: number, count: number): Promise<ChildProcess> {
  const code = `
    const net = require('node:net');
    const socks = [];
    let ok = 0, failed = 0, next = 0;
    const openOne = () => new Promise((resolve) => {
      const uid = 'c' + (${first} + next++);
      const s = net.connect({ port: ${port}, host: '127.0.0.1', localAddress: ${JSON.stringify(local)} });
      let buf = Buffer.alloc(0), upgraded = false;
      const done = (good) => { if (good) ok++; else { failed++; s.destroy(); } resolve(); };
      s.on('error', () => { if (!upgraded) done(false); });
      s.on('connect', () => s.write('GET /?token=' + uid + ' HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n'));
      s.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        if (!upgraded) {
          const end = buf.indexOf('\\r\\n\\r\\n');
          if (end < 0) return;
          upgraded = buf.subarray(0, 12).toString() === 'HTTP/1.1 101';
          buf = buf.subarray(end + 4);
          if (!upgraded) return done(false);
          socks.push(s);
          done(true);
        }
        // Server frames: answer pings (opcode 9) with a masked pong so the socket stays.
        while (buf.length >= 2) {
          let len = buf[1] & 0x7f, at = 2;
          if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); at = 4; }
          else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); at = 10; }
          if (buf.length < at + len) return;
          if ((buf[0] & 0x0f) === 9 && len < 126) {
            const pong = Buffer.alloc(6 + len); pong[0] = 0x8a; pong[1] = 0x80 | len;
            buf.copy(pong, 6, at, at + len); s.write(pong);
          }
          buf = buf.subarray(at + len);
        }
      });
    });
    (async () => {
      const workers = Array.from({ length: 64 }, async () => { while (next < ${count}) await openOne(); });
      await Promise.all(workers);
      console.log('OPENED ' + ok + ' ' + failed);
    })();
    process.on('SIGTERM', () => { for (const s of socks) s.destroy(); process.exit(0); });
  `;
  return spawnReady(['-e', code], 'OPENED');
}

export async function runClusterConnections(opts: ClusterConnectionsOptions = {}): Promise<ClusterConnectionsResult> {
  const requested = opts.connections ?? 38_000;
  const nodeCount = opts.nodes ?? 2;
  const perClient = opts.perClientProcess ?? 15_000;
  let own: RedisProcess | undefined;
  const redisUrl = opts.redisUrl ?? (own = await startRedis()).url;
  const prefix = `conn${process.pid}:`;
  const port = await freePort();
  const children: ChildProcess[] = [];
  const redis = new Redis(redisUrl);
  try {
    const nodes = await Promise.all(Array.from({ length: nodeCount }, () => spawnCountingNode(port, redisUrl, prefix)));
    children.push(...nodes);
    const latest = nodes.map(() => ({ connections: 0, rss: 0 }));
    nodes.forEach((n, i) =>
      n.stdout!.on('data', (d: Buffer) => {
        for (const m of d.toString().matchAll(/COUNT (\d+) (\d+)/g)) latest[i] = { connections: Number(m[1]), rss: Number(m[2]) };
      }),
    );
    await sleep(600);
    const rssBefore = latest.reduce((a, n) => a + n.rss, 0);
    const t0 = Date.now();
    const procs = Math.ceil(requested / perClient);
    const clientProcs = await Promise.all(
      Array.from({ length: procs }, (_, i) => {
        const first = i * perClient;
        return spawnClientProcess(port, `127.0.0.${2 + i}`, first, Math.min(perClient, requested - first));
      }),
    );
    children.push(...clientProcs);
    const openSeconds = (Date.now() - t0) / 1000;
    let opened = 0;
    let failed = 0;
    for (const c of clientProcs) {
      const m = /OPENED (\d+) (\d+)/.exec((c as ChildProcess & { firstOutput?: string }).firstOutput ?? '');
      opened += Number(m?.[1] ?? 0);
      failed += Number(m?.[2] ?? 0);
    }
    // Let the nodes' counters and presence writes catch up, then hold.
    const settleEnd = Date.now() + 10_000;
    while (latest.reduce((a, n) => a + n.connections, 0) < opened && Date.now() < settleEnd) await sleep(100);
    await sleep(opts.holdMs ?? 3000);
    const peak = latest.map((n) => ({ ...n }));
    const held = peak.reduce((a, n) => a + n.connections, 0);
    let presenceInRedis = 0;
    let cursor = '0';
    do {
      const [nextCursor, keys] = await redis.scan(cursor, 'MATCH', `${prefix}p:*`, 'COUNT', 5000);
      presenceInRedis += keys.length;
      cursor = nextCursor;
    } while (cursor !== '0');
    const rssAfter = peak.reduce((a, n) => a + n.rss, 0);
    return {
      requested,
      opened,
      failed,
      perNode: peak.map((n) => ({ connections: n.connections, rssMb: Math.round(n.rss / 1048576) })),
      held,
      presenceInRedis,
      openSeconds: Math.round(openSeconds * 10) / 10,
      rssKbPerConnection: held > 0 ? Math.round(((rssAfter - rssBefore) / held / 1024) * 10) / 10 : 0,
    };
  } finally {
    for (const c of children.reverse()) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await Promise.race([gone, sleep(5000)]);
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
    redis.disconnect();
    await own?.stop();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { connections: { type: 'string' }, redis: { type: 'string' } } });
  const connections = values.connections === undefined ? undefined : Number(values.connections);
  console.log(JSON.stringify(await runClusterConnections({ connections, redisUrl: values.redis }), null, 2));
  process.exit(0);
}
