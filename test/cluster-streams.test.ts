// Streams from a player on another node (SPEC §12 across the cluster): node A reads a
// stream of a player held by node B. Real Redis, both transports.

import t from 'tap';
import { ErrorCode, type ServerContext } from '../server/index.ts';
import { sleep, until } from './helpers.ts';
import { startNode } from './clusterNodes.ts';
import { redisMissing, startRedis } from './redisServer.ts';

if (redisMissing) {
  t.plan(0, redisMissing);
} else {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const settings = { redis: redis.url, prefix: `st${process.pid}:` };
  const handlers = { ping: (_ctx: ServerContext) => 'pong' };
  const [A, B] = await Promise.all([startNode(settings, { handlers }), startNode(settings, { handlers })]);
  t.teardown(() => Promise.all([A.close(), B.close()]));

  let produced = 0;
  let finished = 0;
  const player = await B.client('far', {
    handlers: {
      numbers: async function* (_ctx: unknown, n: number) {
        try {
          for (let i = 1; i <= n; i++) {
            produced++;
            yield i;
          }
        } finally {
          finished++;
        }
      },
    },
  });
  t.teardown(() => player.close());

  t.test("a node reads a stream of a player held by another node: every item, in order", async (t) => {
    const got: unknown[] = [];
    for await (const x of A.server.stream('far', 'numbers', [500])) got.push(x);
    t.same(got, Array.from({ length: 500 }, (_, i) => i + 1));
  });

  t.test('a slow reader on A holds the player on B back; breaking out stops its generator', async (t) => {
    produced = 0;
    finished = 0;
    let read = 0;
    let ahead = 0;
    for await (const _ of A.server.stream('far', 'numbers', [100_000])) {
      read++;
      if (read % 20 === 0) {
        await sleep(30);
        ahead = Math.max(ahead, produced - read);
      }
      if (read === 200) break;
    }
    t.ok(ahead <= 2 * 16 + 4, `the player stayed at most two windows ahead across the two hops (${ahead})`);
    await until(() => finished === 1, 3000, "the player's generator to stop");
    t.ok(produced < 260, `it stopped soon after the reader did (${produced} produced for 200 read)`);
  });

  t.test('a node that sends past the stream window: the stream fails PROTOCOL_ERROR, nothing piles up', async (t) => {
    const { Redis } = await import('ioredis');
    const { pack } = await import('../server/cluster/wire.ts');
    finished = 0;
    const it = A.server.stream('far', 'numbers', [100_000])[Symbol.asyncIterator]();
    t.same(await it.next(), { value: 1, done: false });
    // Items for every stream id A may have open, far past the window, as one node could send.
    const r = new Redis(redis.url);
    t.teardown(() => r.disconnect());
    const flood = Buffer.concat(Array.from({ length: 10 }, (_, id) => Array.from({ length: 40 }, () => pack([16, id + 1, 'junk'] as never))).flat());
    await r.spublish(A.adapter.keys.channel(A.adapter.nodeId), flood);
    let code: string | undefined;
    try {
      while (!(await it.next()).done);
    } catch (err) {
      code = (err as { code: string }).code;
    }
    t.equal(code, ErrorCode.PROTOCOL_ERROR);
    await sleep(200); // the rest of the flood (for ids no stream has) is read and dropped
    await until(() => finished >= 1, 3000, "the player's generator to stop (the stream was cancelled)");
  });

  t.test('a player on no node: the stream fails UNAVAILABLE', async (t) => {
    let code: string | undefined;
    try {
      for await (const _ of A.server.stream('nobody', 'numbers', [3])) t.fail('no item expected');
    } catch (err) {
      code = (err as { code: string }).code;
    }
    t.equal(code, ErrorCode.UNAVAILABLE);
  });
}
