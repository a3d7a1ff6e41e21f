// A rolling restart under load (issue 22): three nodes behind a real nginx balancing
// round-robin with no stickiness, bots calling the server and answering its calls the
// whole time, each node in turn drained, closed and started again on its port. Every
// call is answered, none fails, no handler runs twice, every session survives.

import t from 'tap';
import { connect, type VolleyClient } from '../client/index.ts';
import type { ServerContext } from '../server/index.ts';
import { WebSocket, freePort, sleep, until } from './helpers.ts';
import { startNode, type ClusterNode } from './clusterNodes.ts';
import { nginxMissing, startNginx } from './nginx.ts';
import { redisMissing, startRedis } from './redisServer.ts';

const BOTS = 12;

if (redisMissing || nginxMissing) {
  t.plan(0, redisMissing ?? nginxMissing);
} else {
  const redis = await startRedis();
  t.teardown(() => redis.stop());

  const runs = new Map<string, number>();
  const ran = (id: string) => runs.set(id, (runs.get(id) ?? 0) + 1);
  const handlers = {
    /** A call that takes a while, so that restarts land while calls run. */
    work: async (_ctx: ServerContext, id: string) => {
      ran(`server:${id}`);
      await sleep(Math.random() * 40);
      return id;
    },
    /** The server calls the player back and answers with the player's answer. */
    callMeBack: (ctx: ServerContext, id: string) => ctx.server.call(ctx.uid, 'ask', [id], { timeoutMs: 20_000 }),
  };
  const playerHandlers = {
    ask: async (_ctx: unknown, id: string) => {
      ran(`player:${id}`);
      await sleep(Math.random() * 40);
      return `re:${id}`;
    },
  };

  t.test('rolling restart of 3 nodes behind nginx (round-robin) under load: 0 calls lost, 0 run twice, every session resumed', async (t) => {
    const settings = { redis: redis.url, prefix: `roll${process.pid}:`, presenceTtlMs: 3000 };
    const ports = await Promise.all([freePort(), freePort(), freePort()]);
    const nodes: ClusterNode[] = await Promise.all(ports.map((p) => startNode(settings, { handlers, resumeWindowMs: 20_000 }, {}, p)));
    t.teardown(() => Promise.all(nodes.map((n) => n.close())));
    const lb = await startNginx(ports);
    t.teardown(() => lb.stop());

    const bots: { client: VolleyClient; opens: boolean[]; done: number }[] = [];
    for (let i = 0; i < BOTS; i++) {
      const opens: boolean[] = [];
      const client = await connect(lb.url, {
        token: `u:bot${i}`,
        WebSocket,
        handlers: playerHandlers,
        timeoutMs: 20_000,
        reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
      });
      client.on('open', (e: { resumed: boolean }) => opens.push(e.resumed));
      bots.push({ client, opens, done: 0 });
    }
    t.teardown(() => bots.forEach((b) => b.client.close()));

    const failures: string[] = [];
    const wrong: string[] = [];
    let stop = false;
    const loops = bots.map(async (bot, i) => {
      for (let k = 0; !stop && k < 2000; k++) {
        const id = `b${i}-${k}`;
        const back = k % 2 === 1;
        try {
          const got = back ? await bot.client.server.callMeBack(id) : await bot.client.server.work(id);
          if (got !== (back ? `re:${id}` : id)) wrong.push(`${id}: ${JSON.stringify(got)}`);
        } catch (err) {
          failures.push(`${id}: ${(err as Error).message}`);
        }
        bot.done++;
      }
    });

    await sleep(300);
    const moved: number[] = [];
    for (let n = 0; n < nodes.length; n++) {
      const before = bots.reduce((s, b) => s + b.done, 0);
      const node = nodes[n]!;
      const held = node.server.connectionCount;
      await node.server.drain({ timeoutMs: 15_000 });
      moved.push(held);
      await node.close();
      nodes[n] = await startNode(settings, { handlers, resumeWindowMs: 20_000 }, {}, ports[n]);
      await until(() => bots.reduce((s, b) => s + b.done, 0) > before + BOTS, 10_000, 'the bots to go on after the restart');
    }
    await sleep(300);
    stop = true;
    await Promise.all(loops);

    const calls = bots.reduce((s, b) => s + b.done, 0);
    t.ok(calls > BOTS * 10, `${calls} calls made during the restarts`);
    t.same(failures, [], 'no call failed');
    t.same(wrong, [], 'every call got its own answer');
    const twice = [...runs].filter(([, count]) => count !== 1).map(([id, count]) => `${id} ×${count}`);
    t.same(twice, [], 'every handler ran exactly once');
    t.ok(moved.reduce((a, b) => a + b, 0) >= BOTS, `sessions moved off the drained nodes: ${moved.join(', ')}`);
    const fresh = bots.flatMap((b, i) => (b.opens.includes(false) ? [`bot${i}: ${JSON.stringify(b.opens)}`] : []));
    t.same(fresh, [], 'every reconnect resumed its session (none started afresh)');
  });
}
