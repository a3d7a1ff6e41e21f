// demo/cluster.ts: one command starts N demo nodes sharing one port over Redis; players
// land on different nodes and every node serves them; SIGTERM stops them all.

import t from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { connect, type VolleyClient } from '../client/index.ts';
import { WebSocket, freePort, sleep, until } from './helpers.ts';
import { redisMissing, startRedis } from './redisServer.ts';
import { detectTransport } from '../server/index.ts';
import { CAN_REUSE_PORT } from '../server/transports/ws.ts';

if (redisMissing) {
  t.plan(0, redisMissing);
} else if (detectTransport().name !== 'uws' || process.env.VOLLEY_TRANSPORT === 'ws') {
  // Two processes on one port need SO_REUSEPORT (the reusePort option): node:http has it
  // only from Node 22.12.
  if (!CAN_REUSE_PORT) t.plan(0, `the ws transport can't share a port on Node ${process.versions.node} (reusePort needs 22.12+)`);
  else runClusterDemo();
} else {
  runClusterDemo();
}

function runClusterDemo(): void {
  t.test('demo/cluster.ts: two nodes on one port, players spread over both', async (t) => {
    const redis = await startRedis();
    t.teardown(() => redis.stop());
    const port = await freePort();
    const root = fileURLToPath(new URL('..', import.meta.url));
    const launcher = spawn(process.execPath, ['--import', 'tsx', 'demo/cluster.ts'], {
      cwd: root,
      env: { ...process.env, REDIS_URL: redis.url, PORT: String(port), NODES: '2' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<number | null>((r) => launcher.once('exit', (code) => r(code)));
    t.teardown(() => {
      if (launcher.exitCode === null) launcher.kill('SIGKILL');
    });
    let out = '';
    launcher.stdout!.on('data', (d) => (out += d));
    await until(() => (out.match(/listening on/g) ?? []).length === 2, 30_000, 'both nodes to listen');

    const clients: VolleyClient[] = [];
    for (let i = 0; i < 16; i++) {
      const c = await connect(`ws://127.0.0.1:${port}/`, { token: `player${i}`, WebSocket, reconnect: false });
      clients.push(c);
      t.same(await c.server.whoami(), { uid: `player${i}` });
    }
    const r = new Redis(redis.port, '127.0.0.1');
    t.teardown(() => r.disconnect());
    const keys = clients.map((_, i) => `volley:p:player${i}`);
    let values: (string | null)[] = [];
    const end = Date.now() + 2000; // presence lands one Redis round trip after each login
    while ((values = await r.mget(...keys)).includes(null) && Date.now() < end) await sleep(5);
    const holders = new Set(values.map((v) => (v ?? '').split(' ')[0]));
    t.equal(holders.size, 2, 'the kernel spread the players over both nodes (SO_REUSEPORT), both registered in Redis');
    while ((await r.hlen('volley:r:{lobby}')) < 16 && Date.now() < end) await sleep(5);
    t.equal(await r.hlen('volley:r:{lobby}'), 16, 'lobby membership of both nodes is in Redis');

    for (const c of clients) c.close();
    launcher.kill('SIGTERM');
    t.equal(await exited, 0, 'SIGTERM stops the launcher and its nodes');
    await until(() => !/node\d exited/.test(out), 100);
  });
}
