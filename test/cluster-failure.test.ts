// Failures in a Redis cluster of Volley nodes: a node killed (or hung) mid-call, Redis
// killed and restarted empty mid-run. Calls fail UNAVAILABLE instead of hanging, local
// calls keep working, and the nodes recover on their own.

import t from 'tap';
import { Redis } from 'ioredis';
import { connect } from '../client/index.ts';
import { ErrorCode, type ServerContext } from '../server/index.ts';
import { WebSocket, rejectsCode, sleep, until } from './helpers.ts';
import { spawnNode, startNode, waitForPresence } from './clusterNodes.ts';
import { redisMissing, startRedis } from './redisServer.ts';

const TTL = 1500;

if (redisMissing) {
  t.plan(0, redisMissing);
} else {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const handlers = {
    relay: (ctx: ServerContext, uid: string, method: string, ...args: unknown[]) => ctx.server.call(uid, method, args),
    joinRoom: (ctx: ServerContext, room: string) => ctx.server.join(ctx.uid, room),
  };
  const neverAnswers = { stall: () => new Promise(() => {}), who: () => 'here' };

  for (const how of ['killed', 'hung'] as const) {
    t.test(`a node ${how} mid-call: its players fail UNAVAILABLE within the presence TTL`, async (t) => {
      const settings = { redis: redis.url, prefix: `f${process.pid}${how}:`, presenceTtlMs: TTL };
      const A = await startNode(settings, { handlers });
      t.teardown(() => A.close());
      const K = await spawnNode(settings);
      t.teardown(() => K.kill());
      const victim = await connect(K.url, { token: 'u:victim', WebSocket, reconnect: false, handlers: neverAnswers });
      t.teardown(() => victim.close());
      await waitForPresence(settings, 'victim', K.nodeId);
      const onA = await A.client('caller', { reconnect: false });

      t.equal(await A.server.to('victim').who(), 'here', 'reachable across nodes first');
      // Deadlines far beyond the TTL: only the cluster's failure detection can end these early.
      // Watched from the start: they may reject while the kill is still being awaited.
      const direct = rejectsCode(A.server.call('victim', 'stall', [], { timeoutMs: 60_000 }), ErrorCode.UNAVAILABLE);
      const viaClient = rejectsCode(onA.server.relay('victim', 'stall'), ErrorCode.UNAVAILABLE);
      await until(() => A.adapter.pending.outgoing === 2, 2000, 'both calls to be forwarded');
      const t0 = Date.now();
      if (how === 'killed') await K.kill();
      else process.kill(await pidOf(K.port), 'SIGSTOP');
      try {
        await direct;
        await viaClient;
        const waited = Date.now() - t0;
        t.ok(waited < 60_000, `pending calls failed UNAVAILABLE after ${waited} ms, not at their deadline`);
        t.equal(A.adapter.pending.outgoing, 0, 'nothing left pending on A');
        // New calls: at once when killed (nobody subscribed), after the TTL when hung.
        await until(() => Date.now() - t0 > TTL + 100, TTL + 1000);
        const t1 = Date.now();
        await rejectsCode(A.server.call('victim', 'who', [], { timeoutMs: 30_000 }), ErrorCode.UNAVAILABLE);
        t.ok(Date.now() - t1 < 5000, 'a new call fails fast');
        const r = new Redis(redis.port, '127.0.0.1');
        t.teardown(() => r.disconnect());
        t.equal(await r.get(`${settings.prefix}p:victim`), null, "the dead node's presence entry expired");
      } finally {
        if (how === 'hung') await K.kill(); // SIGKILL ends a stopped process too
      }
    });
  }

  t.test('Redis killed and restarted mid-run: local calls go on, remote ones fail fast, then recover', async (t) => {
    const settings = { redis: redis.url, prefix: `f${process.pid}restart:`, presenceTtlMs: TTL };
    const [A, B] = await Promise.all([startNode(settings, { handlers }), startNode(settings, { handlers })]);
    t.teardown(() => Promise.all([A.close(), B.close()]));
    const got: string[] = [];
    const a = await A.client('a', { reconnect: false, handlers: { ...neverAnswers, news: (_c: unknown, s: string) => void got.push(s) } });
    const b = await B.client('b', { reconnect: false, handlers: { ...neverAnswers, who: () => 'b' } });
    await a.server.joinRoom('hall');
    await b.server.joinRoom('hall');
    t.equal(await a.server.relay('b', 'who'), 'b', 'cross-node call before the outage');

    // The rejection is awaited only after the kill: watch it from the start.
    const inFlight = rejectsCode(A.server.call('b', 'stall', [], { timeoutMs: 60_000 }), ErrorCode.UNAVAILABLE);
    await until(() => A.adapter.pending.outgoing === 1, 2000, 'the call to be forwarded');
    await redis.kill();
    await inFlight;
    t.pass('a call waiting on another node failed UNAVAILABLE when Redis went away');

    await until(() => !A.adapter.connected && !B.adapter.connected, 2000, 'nodes to notice');
    t.equal(await A.server.to('a').who(), 'here', 'local calls still work');
    t.equal(await a.server.relay('a', 'who'), 'here', 'and client → server → local client too');
    const t0 = Date.now();
    await rejectsCode(A.server.call('b', 'who', [], { timeoutMs: 30_000 }), ErrorCode.UNAVAILABLE);
    t.ok(Date.now() - t0 < 1000, 'a remote call fails at once while Redis is down');
    const many = await A.server.callMany({ room: 'hall' }, 'who', []);
    t.same(many.map((o) => [o.uid, o.status]), [['a', 'ok']], 'callMany({room}) falls back to local members');

    await redis.start(); // empty: no presence, no rooms, no scripts
    await until(() => A.adapter.connected && B.adapter.connected, 10_000, 'nodes to reconnect');
    // Presence and rooms are re-written by the nodes themselves.
    let answer: unknown;
    await until(
      () => {
        A.server.call('b', 'who', [], { timeoutMs: 500 }).then((v) => (answer = v), () => {});
        return answer === 'b';
      },
      10_000,
      'a cross-node call to work again',
    );
    t.equal(await B.server.to('a').who(), 'here', 'both ways');
    const after = await B.server.callMany({ room: 'hall' }, 'who', []);
    t.same(after.map((o) => [o.uid, o.status]).sort(), [['a', 'ok'], ['b', 'ok']], 'room membership is back');
    B.server.notifyRoom('hall', 'news', 'back');
    await until(() => got.includes('back'), 2000, 'a room notification across nodes');
    await until(() => A.adapter.pending.outgoing === 0 && B.adapter.pending.incoming === 0, 2000, 'nothing pending');
  });

  t.test('Redis hung (SIGSTOP, sockets open): remote calls and logins do not hang, recovery after SIGCONT', async (t) => {
    const settings = { redis: redis.url, prefix: `f${process.pid}hung:`, presenceTtlMs: TTL };
    const [A, B] = await Promise.all([
      startNode(settings, { handlers, duplicateLogin: 'reject' }),
      startNode(settings, { handlers, duplicateLogin: 'reject' }),
    ]);
    t.teardown(() => Promise.all([A.close(), B.close()]));
    await A.client('a', { reconnect: false, handlers: neverAnswers });
    await B.client('b', { reconnect: false, handlers: { who: () => 'b' } });
    t.equal(await A.server.to('b').who(), 'b');
    redis.pause();
    t.teardown(() => redis.resume());
    const t0 = Date.now();
    const err = await A.server.call('b', 'who', [], { timeoutMs: 30_000 }).then(
      () => undefined,
      (e: { code: string }) => e.code,
    );
    t.equal(err, ErrorCode.UNAVAILABLE, 'the remote call fails UNAVAILABLE once the lookup times out');
    t.ok(Date.now() - t0 < 30_000, `after ${Date.now() - t0} ms, not at its 30 s deadline`);
    t.equal(await A.server.to('a').who(), 'here', 'local calls still work');
    const late = await A.client('late', { reconnect: false, handlers: neverAnswers });
    t.ok(late, "a 'reject' login is not held up by the hung Redis (fail open)");
    redis.resume();
    let answer: unknown;
    await until(
      () => {
        A.server.call('b', 'who', [], { timeoutMs: 500 }).then((v) => (answer = v), () => {});
        return answer === 'b';
      },
      10_000,
      'cross-node calls to work again',
    );
    t.pass('cross-node calls work again after SIGCONT');
  });
}

/** pid of the process listening on a loopback port (the child node). */
async function pidOf(port: number): Promise<number> {
  const { execFileSync } = await import('node:child_process');
  const out = execFileSync('sh', ['-c', `ss -ltnpH 'sport = :${port}'`], { encoding: 'utf8' });
  const m = /pid=(\d+)/.exec(out);
  if (!m) throw new Error(`no process listens on ${port}: ${out}`);
  return Number(m[1]);
}
