// 1,000 concurrent calls on one connection, each direction: every one gets its own answer.

import t from 'tap';
import { startServer, sleep } from './helpers.ts';

const N = 1000;

/** Answers out of order (random short delays), so replies must be matched by id, not order. */
const work = async (_ctx: unknown, i: number, tag: string) => {
  if (i % 3 === 0) await sleep(Math.floor(Math.random() * 5));
  return { i, sq: i * i, tag: `${tag}-${i}` };
};

t.test(`${N} concurrent calls each way on one connection`, async (t) => {
  let serverRuns = 0;
  let clientRuns = 0;
  const h = await startServer({ handlers: { work: (c: unknown, i: number, tag: string) => (serverRuns++, work(c, i, tag)) } });
  t.teardown(() => h.close());
  const c = await h.client('alice', { handlers: { work: (ctx: unknown, i: number, tag: string) => (clientRuns++, work(ctx, i, tag)) } });

  const check = (results: Array<{ i: number; sq: number; tag: string }>, tag: string) => {
    let wrong = 0;
    results.forEach((r, i) => {
      if (r.i !== i || r.sq !== i * i || r.tag !== `${tag}-${i}`) wrong++;
    });
    return wrong;
  };
  const range = Array.from({ length: N }, (_, i) => i);

  // client → server, all issued in one tick
  const up = await Promise.all(range.map((i) => c.server.work(i, 'up')));
  t.equal(up.length, N);
  t.equal(check(up, 'up'), 0, 'every client → server call got its own result');
  t.equal(serverRuns, N, 'each handler ran exactly once');

  // server → client
  const down = await Promise.all(range.map((i) => h.server.to('alice').work(i, 'down')));
  t.equal(check(down, 'down'), 0, 'every server → client call got its own result');
  t.equal(clientRuns, N);

  // both directions at the same time
  const [up2, down2] = await Promise.all([
    Promise.all(range.map((i) => c.call('work', [i, 'u2']))),
    Promise.all(range.map((i) => h.server.call('alice', 'work', [i, 'd2']))),
  ]);
  t.equal(check(up2 as never, 'u2'), 0, 'mixed: client → server');
  t.equal(check(down2 as never, 'd2'), 0, 'mixed: server → client');
  t.equal(serverRuns + clientRuns, 4 * N);
  t.equal(c.peer.pendingOutgoing + c.peer.pendingIncoming, 0, 'nothing left pending');
  t.same(h.server.stats(), { connections: 1, pendingIncoming: 0, pendingOutgoing: 0 }, 'server: nothing left pending');
});
