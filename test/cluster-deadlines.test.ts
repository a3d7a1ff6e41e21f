// Issue 10 #7: a call forwarded to another node with `timeoutMs: Infinity` (or past
// 2^31−1 ms) must wait for its answer. The caller's pending-call table once kept its own
// copy of the deadline logic, without the clamp: setTimeout(Infinity) fires after 1 ms.

import t from 'tap';
import { sleep } from './helpers.ts';
import { startNode } from './clusterNodes.ts';
import { redisMissing, startRedis } from './redisServer.ts';

if (redisMissing) {
  t.plan(0, redisMissing);
} else {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const settings = { redis: redis.url, prefix: `d${process.pid}:` };
  const [A, B] = await Promise.all([startNode(settings, { handlers: {} }), startNode(settings, { handlers: {} })]);
  t.teardown(async () => {
    await Promise.all([A.close(), B.close()]);
  });

  t.test('a forwarded call with no finite deadline waits for its answer', async (t) => {
    let release!: (v: string) => void;
    await B.client('b1', { reconnect: false, handlers: { later: () => new Promise<string>((r) => (release = r)) } });
    for (const timeoutMs of [Infinity, 2 ** 31, 30 * 24 * 3600_000]) {
      let settled: unknown = 'pending';
      const p = A.server.call('b1', 'later', [], { timeoutMs }).then(
        (v) => (settled = v),
        (e: { code?: string }) => (settled = e.code),
      );
      await sleep(150);
      t.equal(settled, 'pending', `timeoutMs ${timeoutMs}: still waiting after 150 ms`);
      release(`done ${timeoutMs}`);
      await p;
      t.equal(settled, `done ${timeoutMs}`, `timeoutMs ${timeoutMs}: answered`);
    }
    t.equal(A.adapter.pending.outgoing, 0, 'nothing left pending on the calling node');
  });
}
