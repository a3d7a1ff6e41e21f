// Presence (server/cluster/presence.ts) against a real Redis, with refreshes placed exactly
// where a timer could put them: inside a claim still in flight.

import t from 'tap';
import { Redis } from 'ioredis';
import { Scripts } from '../server/cluster/connection.ts';
import { keysFor } from '../server/cluster/keys.ts';
import { Presence } from '../server/cluster/presence.ts';
import { redisMissing, startRedis } from './redisServer.ts';

if (redisMissing) {
  t.plan(0, redisMissing);
} else {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const clients: Redis[] = [];
  t.teardown(() => clients.forEach((c) => c.disconnect()));
  let n = 0;
  /** Two nodes' presence on one prefix, each on its own connection; every node counts as alive. */
  const pair = () => {
    const keys = keysFor(`p${process.pid}-${n++}:`);
    const node = (id: string) => {
      const cmd = new Redis(redis.url);
      clients.push(cmd);
      return new Presence(id, keys, cmd, new Scripts(cmd), 5000, async () => true, false);
    };
    return [node('A'), node('B')] as const;
  };

  t.test("'reject': a refresh that runs while a losing claim is in flight does not call the uid lost", async (t) => {
    const [A, B] = pair();
    t.same(await B.claim('u1', 's-b', 'reject', undefined, true), { status: 'ok' });
    // The refresh script goes out on the same connection right behind the claim, so Redis
    // runs it after the claim found B's entry and before A has decided (alive probe).
    const claiming = A.claim('u1', 's-a', 'reject', undefined, true);
    const lost = await A.refresh();
    t.same(await claiming, { status: 'refused', node: 'B' }, 'the claim decides: refused (the login closes 4001)');
    t.same(lost, [], 'not lost to another node (which would close it 4000)');
    t.same(await A.refresh(), [], 'nor on the next refresh');
    t.equal(A.sidOf('u1'), undefined, 'A holds nothing');
    t.same(await B.holder('u1'), { node: 'B', sid: 's-b' });
  });

  t.test('a uid another node took while the kick was lost is reported by the next refresh', async (t) => {
    const [A, B] = pair();
    t.same(await A.claim('u2', 's-a', 'replace', undefined, true), { status: 'ok' });
    t.same(await B.claim('u2', 's-b', 'replace', undefined, true), { status: 'took', node: 'A', sid: 's-a' });
    t.same(await A.refresh(), ['u2'], 'A learns it lost u2');
    t.same(await B.refresh(), [], 'B keeps it');
  });
}
