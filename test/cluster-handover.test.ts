// Sessions that outlive their node (issue 22): a player whose socket is cut and who
// reconnects to ANOTHER node (what a load balancer does after a deploy or a scale-in)
// resumes its session there, with every call in flight in either direction settled
// exactly once; drain() moves every player off a node that way. Real Redis, real nodes,
// a TCP proxy playing the load balancer.

import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import { ErrorCode, type ServerContext } from '../server/index.ts';
import { WebSocket, sleep, until } from './helpers.ts';
import { spawnNode, startNode, type ClusterNode } from './clusterNodes.ts';
import { redisMissing, startRedis } from './redisServer.ts';
import { TcpProxy } from './tcpProxy.ts';
import { connect, type VolleyClient } from '../client/index.ts';

if (redisMissing) {
  t.plan(0, redisMissing);
} else {
  const redis = await startRedis();
  t.teardown(() => redis.stop());

  /** A gate a test opens by hand, and how many times each tagged handler ran. */
  const runs = new Map<string, number>();
  const gates = new Map<string, () => void>();
  const gate = (tag: string) => new Promise<void>((r) => gates.set(tag, r));
  const open = (tag: string) => gates.get(tag)?.();
  const ran = (tag: string) => runs.set(tag, (runs.get(tag) ?? 0) + 1);

  const handlers = {
    slow: async (ctx: ServerContext, tag: string) => {
      ran(`server:${tag}`);
      await gate(`server:${tag}`);
      return `${tag} ran on ${(ctx.server as { port: number }).port}`;
    },
    relay: (ctx: ServerContext, uid: string, q: string) => ctx.server.call(uid, 'ask', [q]),
    /** Reads the player's upload (SPEC §12, uploads) and sums it; after `gate('server:sum')` if `wait`. */
    sum: async (_ctx: ServerContext, xs: AsyncIterable<number>, wait = false) => {
      if (wait) await gate('server:sum');
      let total = 0;
      let items = 0;
      for await (const x of xs) {
        total += x;
        items++;
      }
      return { total, items };
    },
    feed: async function* (_ctx: ServerContext, n: number) {
      ran('server:feed');
      // Bursts of four: a client that named `items` gets them as one `$items` (SPEC §12).
      for (let i = 0; i < n; i++) {
        if (i % 4 === 0) await sleep(5);
        yield i;
      }
    },
  };
  const playerHandlers = {
    ask: async (_ctx: unknown, q: string) => {
      ran(`player:${q}`);
      await gate(`player:${q}`);
      return `answer ${q}`;
    },
    telemetry: async function* (_ctx: unknown, n: number) {
      ran('player:telemetry');
      try {
        // In bursts of four, as `feed`: the player's `$items` relayed to the old node.
        for (let i = 0; i < n; i++) {
          if (i % 4 === 0) await sleep(5);
          yield i;
        }
      } finally {
        ran('player:telemetry:end');
      }
    },
  };

  let n = 0;
  async function cluster(t: Test, adapterOpts = {}) {
    const settings = { redis: redis.url, prefix: `h${process.pid}-${n++}:` };
    const [A, B] = await Promise.all([startNode(settings, { handlers }, adapterOpts), startNode(settings, { handlers }, adapterOpts)]);
    t.teardown(() => Promise.all([A.close(), B.close()]));
    const proxy = await TcpProxy.start(A.port);
    t.teardown(() => proxy.close());
    return { A, B, proxy, settings };
  }

  async function player(url: string, uid: string): Promise<{ client: VolleyClient; opens: boolean[] }> {
    const opens: boolean[] = [];
    const client = await connect(url, { token: `u:${uid}`, WebSocket, handlers: playerHandlers, reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
    client.on('open', (e: { resumed: boolean }) => opens.push(e.resumed));
    return { client, opens };
  }

  /** Wait until Redis names `node` as uid's holder. */
  async function heldBy(settings: { prefix: string }, uid: string, node: ClusterNode) {
    const r = new Redis(redis.url);
    try {
      const end = Date.now() + 5000;
      while (!((await r.get(`${settings.prefix}p:${uid}`)) ?? '').startsWith(`${node.adapter.nodeId} `) && Date.now() < end) await sleep(5);
    } finally {
      r.disconnect();
    }
  }

  t.test('a player cut mid-call and reconnected to another node resumes there: every call both ways settles once', async (t) => {
    const { A, B, proxy, settings } = await cluster(t);
    const uid = 'mover';
    const { client, opens } = await player(proxy.url, uid);
    t.teardown(() => client.close());
    await heldBy(settings, uid, A);
    const warm = client.server.slow('warm'); // one finished call first: sequence numbers past 0
    await until(() => runs.get('server:warm') === 1, 2000, 'the warm-up call');
    open('server:warm');
    await warm;

    // Three calls in flight, each handler running: A → player, B → player (through A), player → A.
    const fromA = A.server.call(uid, 'ask', ['a'], { timeoutMs: 8000 });
    const fromB = B.server.call(uid, 'ask', ['b'], { timeoutMs: 8000 });
    const fromPlayer = client.server.slow('p');
    await until(() => runs.get('player:a') === 1 && runs.get('player:b') === 1 && runs.get('server:p') === 1, 3000, 'the three handlers to start');

    // The load balancer now sends the player to B; its socket to A is cut.
    proxy.targetPort = B.port;
    proxy.cutAll();
    await until(() => B.server.isOnline(uid) && opens.length > 0, 5000, 'the player to reconnect to B');
    t.same(opens, [true], 'the session resumed on B (resumed: true, no fresh session)');
    t.notOk(A.server.isConnected(uid), 'A let the session go');

    // The handlers finish after the move: each answer must reach its caller once.
    open('player:a');
    open('player:b');
    open('server:p');
    t.equal(await fromA, 'answer a', 'A got the player\'s answer, relayed by B');
    t.equal(await fromB, 'answer b', 'B got the answer to its call (made through A)');
    t.equal(await fromPlayer, `p ran on ${A.port}`, 'the player got the answer of the handler that ran on A');
    t.same([runs.get('player:a'), runs.get('player:b'), runs.get('server:p')], [1, 1, 1], 'no handler ran twice');

    // The session lives on B now: calls from either node reach it directly.
    const later = [A.server.call(uid, 'ask', ['c']), B.server.call(uid, 'ask', ['d'])];
    await until(() => runs.get('player:c') === 1 && runs.get('player:d') === 1, 3000, 'later calls to reach the player');
    open('player:c');
    open('player:d');
    t.same(await Promise.all(later), ['answer c', 'answer d']);
    await until(() => A.adapter.relaying === 0, 3000, 'A to drop the relay once its calls settled');
    t.same(A.server.stats(), { connections: 0, pendingIncoming: 0, pendingOutgoing: 0 }, 'nothing left on A');
    t.same(B.server.stats(), { connections: 1, pendingIncoming: 0, pendingOutgoing: 0 }, 'no placeholder left on B');
  });

  t.test('streams both ways follow the player to another node: every item once, in order, nothing left behind', async (t) => {
    const { A, B, proxy, settings } = await cluster(t);
    const uid = 'streamer';
    const { client, opens } = await player(proxy.url, uid);
    t.teardown(() => client.close());
    await heldBy(settings, uid, A);
    const N = 300;
    // The player reads a stream A's handler produces; A reads a stream the player produces.
    const down: number[] = [];
    const up: number[] = [];
    const reading = async (it: AsyncIterable<unknown>, into: number[]) => {
      for await (const x of it) into.push(x as number);
    };
    const readDown = reading(client.stream('feed', [N]), down);
    const readUp = reading(A.server.stream(uid, 'telemetry', [N]), up);
    await until(() => down.length > 30 && up.length > 30, 5000, 'items both ways before the move');

    proxy.targetPort = B.port;
    proxy.cutAll();
    await until(() => B.server.isOnline(uid) && opens.length > 0, 5000, 'the player to resume on B');
    // Before the fix, the player's read hung and A's failed CANCELLED ("nobody reads this stream").
    const ended = await Promise.race([Promise.all([readDown, readUp]).then(() => true), sleep(15_000).then(() => false)]);
    t.ok(ended, 'both streams ended within 15 s');
    t.same(opens, [true], 'resumed, not a fresh session');
    t.same(down, Array.from({ length: N }, (_, i) => i), "the player read every item of A's stream once, in order");
    t.same(up, Array.from({ length: N }, (_, i) => i), "A read every item of the player's stream once, in order");
    t.same([runs.get('server:feed'), runs.get('player:telemetry'), runs.get('player:telemetry:end')], [1, 1, 1], 'each producer ran once, to its end');
    await until(() => A.adapter.relaying === 0, 3000, 'A to drop the relay once the streams ended');
    t.same(A.server.stats(), { connections: 0, pendingIncoming: 0, pendingOutgoing: 0 }, 'nothing left on A');
    t.same(B.server.stats(), { connections: 1, pendingIncoming: 0, pendingOutgoing: 0 }, 'nothing left on B');
  });

  t.test("an upload read on the old node carries on after the player moves", async (t) => {
    const { A, B, proxy, settings } = await cluster(t);
    const uid = 'uploader';
    const { client, opens } = await player(proxy.url, uid);
    t.teardown(() => client.close());
    await heldBy(settings, uid, A);
    const N = 300;
    let sent = 0;
    async function* numbers() {
      for (let i = 1; i <= N; i++) {
        await sleep(5);
        sent++;
        yield i;
      }
    }
    // A second handler on A starts reading its upload only after the move: its `$upload`
    // leaves a moved engine.
    gates.delete('server:sum');
    const later = (client.server as any).sum(numbers(), true) as Promise<unknown>;
    await until(() => gates.has('server:sum'), 3000, 'the second handler to wait on A');
    const result = (client.server as any).sum(numbers()) as Promise<{ total: number; items: number }>;
    await until(() => sent > 30, 5000, 'the upload under way');
    proxy.targetPort = B.port;
    proxy.cutAll();
    await until(() => B.server.isOnline(uid) && opens.length > 0, 5000, 'the player to resume on B');
    open('server:sum');
    t.same(await Promise.race([later, sleep(8000).then(() => 'hung')]), { total: (N * (N + 1)) / 2, items: N }, 'an upload first read after the move');
    const r = await Promise.race([result, sleep(15_000).then(() => 'hung')]);
    t.same(r, { total: (N * (N + 1)) / 2, items: N }, 'the handler on A read every item once');
    t.same(opens, [true]);
    await until(() => A.adapter.relaying === 0, 3000, 'A to drop the relay');
    t.same(B.server.stats(), { connections: 1, pendingIncoming: 0, pendingOutgoing: 0 }, 'nothing left on B');
  });

  t.test('drain(): every player moves to the other node with its calls in flight, then the node closes', async (t) => {
    const { A, B, proxy, settings } = await cluster(t);
    const players = await Promise.all(['d1', 'd2', 'd3'].map((uid) => player(proxy.url, uid)));
    t.teardown(() => players.forEach((p) => p.client.close()));
    for (const uid of ['d1', 'd2', 'd3']) await heldBy(settings, uid, A);
    const fromA = ['d1', 'd2', 'd3'].map((uid) => A.server.call(uid, 'ask', [`drain-${uid}`], { timeoutMs: 8000 }));
    const fromPlayers = players.map((p, i) => p.client.server.slow(`drain-${i}`));
    await until(() => ['d1', 'd2', 'd3'].every((u, i) => runs.get(`player:drain-${u}`) === 1 && runs.get(`server:drain-${i}`) === 1), 3000, 'handlers to start');

    proxy.targetPort = B.port; // the deploy: the load balancer sends new connections to B
    const drained = A.server.drain({ timeoutMs: 8000 });
    await until(() => ['d1', 'd2', 'd3'].every((u) => B.server.isOnline(u)) && players.every((p) => p.opens.length > 0), 5000, 'every player to resume on B');
    for (const uid of ['d1', 'd2', 'd3']) open(`player:drain-${uid}`);
    for (let i = 0; i < 3; i++) open(`server:drain-${i}`);
    t.same(await Promise.all(fromA), ['answer drain-d1', 'answer drain-d2', 'answer drain-d3'], "A's calls answered through B");
    t.same(await Promise.all(fromPlayers), [0, 1, 2].map((i) => `drain-${i} ran on ${A.port}`), "the players' calls answered by A's handlers, through B");
    await drained;
    t.same(players.map((p) => p.opens), [[true], [true], [true]], 'every session resumed (none started afresh)');
    t.same(['d1', 'd2', 'd3'].map((u) => runs.get(`player:drain-${u}`)), [1, 1, 1], 'no handler ran twice');
  });

  t.test('a session too large to move ends: the player starts afresh, the calls in flight fail DISCONNECTED at once', async (t) => {
    const { A, B, proxy, settings } = await cluster(t, { maxHandoverBytes: 64 });
    const uid = 'heavy';
    const { client, opens } = await player(proxy.url, uid);
    t.teardown(() => client.close());
    await heldBy(settings, uid, A);
    const fromA = A.server.call(uid, 'ask', ['heavy'], { timeoutMs: 30_000 });
    const fromPlayer = client.server.slow('heavy');
    await until(() => runs.get('player:heavy') === 1 && runs.get('server:heavy') === 1, 3000, 'handlers to start');
    proxy.targetPort = B.port;
    const cutAt = Date.now();
    proxy.cutAll();
    const [a, p] = await Promise.allSettled([fromA, fromPlayer]);
    t.equal(a.status === 'rejected' && (a.reason as { code: string }).code, ErrorCode.DISCONNECTED, "A's call fails DISCONNECTED");
    t.equal(p.status === 'rejected' && (p.reason as { code: string }).code, ErrorCode.DISCONNECTED, "the player's call fails DISCONNECTED");
    t.ok(Date.now() - cutAt < 10_000, 'well before the 30 s deadline');
    await until(() => B.server.isOnline(uid) && opens.length > 0, 5000, 'the player on B');
    t.same(opens, [false], 'a fresh session (resumed: false)');
    open('player:heavy');
    open('server:heavy');
  });

  t.test('what another node sends through Redis is checked: junk hand-over messages change nothing', async (t) => {
    const { A, B, proxy, settings } = await cluster(t);
    const uid = 'steady';
    const { client, opens } = await player(proxy.url, uid);
    t.teardown(() => client.close());
    await heldBy(settings, uid, A);
    const { pack } = await import('../server/cluster/wire.ts');
    const r = new Redis(redis.url);
    t.teardown(() => r.disconnect());
    const sid = client.sessionId!;
    const junk: unknown[][] = [
      [9, 'nowhere', 1, uid, sid], // TAKE from a node that does not exist: the session moves to nobody...
      [10, 'x', 99, uid, sid, { peerAcked: -1 }, 'rooms'],
      [10, 'x', 1, uid, sid, 'not an image', null],
      [11, uid, sid, 'id', 'bytes'],
      [11, uid, sid, 424242, new Uint8Array([1, 2, 3])],
      [12, uid, sid, 5],
      [13, uid, sid, 5, { code: 'X', message: 'y' }, null],
      [14, uid, sid, 5],
      [14, 'nobody', 'nosid', 1],
      [20, uid, sid, 5, 7, 'a forged item for a session that did not move'],
      [20, uid, sid, 'x', 'y', null],
      [21, uid, sid, 5, 'an item for a call that is not running'],
      [22, uid, sid, 5, null],
      [22, uid, sid, 5, { code: 'X', message: 'y' }],
    ];
    for (const m of junk.slice(1)) await r.spublish(A.adapter.keys.channel(A.adapter.nodeId), pack(m as never));
    for (const m of junk.slice(1)) await r.spublish(B.adapter.keys.channel(B.adapter.nodeId), pack(m as never));
    await sleep(100);
    t.ok(A.server.isOnline(uid), 'the session is untouched by junk');
    const r2 = client.server.slow('after-junk');
    await until(() => runs.get('server:after-junk') === 1, 2000, 'a call after the junk');
    open('server:after-junk');
    t.equal(await r2, `after-junk ran on ${A.port}`);
    t.same(opens, [], 'no reconnect');
    t.same(B.server.stats().connections, 0);
  });

  t.test("an old node's answer that follows its GIVE in the same batch reaches the player (the session is in place first)", async (t) => {
    // The old node here is the test itself, on a channel of its own: it holds 'ghost' in
    // Redis, answers the TAKE with a session whose call 5 is still running, and sends that
    // call's answer right behind the GIVE, in one publish.
    const { B, settings } = await cluster(t);
    const { keysFor } = await import('../server/cluster/keys.ts');
    const { pack } = await import('../server/cluster/wire.ts');
    const { encode } = await import('../protocol/index.ts');
    const { Unpackr } = await import('msgpackr');
    const keys = keysFor(settings.prefix);
    const cmd = new Redis(redis.url);
    const sub = new Redis(redis.url);
    t.teardown(() => (cmd.disconnect(), sub.disconnect()));
    await cmd.set(keys.presence('ghost'), 'oldnode sid-ghost', 'PX', 10_000);
    await cmd.set(keys.node('oldnode'), '1', 'PX', 10_000);
    await sub.ssubscribe(keys.channel('oldnode'));
    sub.on('smessageBuffer', (_ch: Buffer, buf: Buffer) => {
      for (const m of new Unpackr({ useRecords: false, mapsAsObjects: true }).unpackMultiple(buf) as unknown[][]) {
        if (m[0] !== 9) continue; // TAKE [from, id, uid, sid]
        const image = { peerAcked: 0, received: 1, kept: [], cancelOwed: [], owedCancels: [], calling: [], running: [[5, 'slow']], peerLimits: {} };
        const give = pack([10, 'oldnode', m[2], 'ghost', 'sid-ghost', image, ['lobby']] as never);
        const answer = pack([11, 'ghost', 'sid-ghost', 5, encode([1, 5, null, 'done on the old node'])] as never);
        void cmd.spublish(keys.channel(String(m[1])), Buffer.concat([give, answer]));
      }
    });
    const ws = new WebSocket(`${B.url}?token=u:ghost&sid=sid-ghost`, 'volley');
    const got: unknown[][] = [];
    const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
    ws.on('message', (data: Buffer) => {
      for (const m of unpackr.unpackMultiple(data) as unknown[][]) {
        got.push(m);
        if (m[1] === '$session') ws.send(encode([2, '$ack', [0]])); // the client's first $ack: the resync follows
      }
    });
    await until(() => got.some((m) => m[0] === 1 && m[1] === 5), 5000, 'the relayed answer to reach the player');
    const session = got.find((m) => m[1] === '$session') as [number, string, [{ resumed: boolean }]];
    t.equal(session[2][0].resumed, true, 'resumed on B');
    t.same(got.find((m) => m[0] === 1), [1, 5, null, 'done on the old node'], 'the answer relayed behind the GIVE was delivered');
    t.same(B.server.members('lobby'), ['ghost'], 'its rooms came with it');
    ws.close();
  });

  t.test('its node killed, a player learns at once on another node that its session is gone (no wait for the hand-over timeout)', async (t) => {
    // A presence TTL and a hand-over timeout of 30 s: only knowing the holder is gone (its
    // channel has no subscriber) can answer before the 10 s this test waits.
    const settings = { redis: redis.url, prefix: `h${process.pid}-${n++}:`, presenceTtlMs: 30_000 };
    const K = await spawnNode(settings);
    t.teardown(() => K.kill());
    const B = await startNode(settings, { handlers }, { handoverTimeoutMs: 30_000 });
    t.teardown(() => B.close());
    const proxy = await TcpProxy.start(K.port);
    t.teardown(() => proxy.close());
    const { client, opens } = await player(proxy.url, 'orphan');
    t.teardown(() => client.close());
    await heldBy(settings, 'orphan', { adapter: { nodeId: K.nodeId } } as ClusterNode);
    await K.kill();
    proxy.targetPort = B.port;
    proxy.cutAll();
    await until(() => opens.length > 0, 10_000, 'the player to open a session on B');
    t.same(opens, [false], 'a fresh session: the old one died with its node');
    t.ok(B.server.isOnline('orphan'));
  });

  t.test('a forged session id: the player starts afresh on the other node, quickly', async (t) => {
    const { A, B } = await cluster(t);
    const first = await connect(A.url, { token: 'u:forger', WebSocket, handlers: playerHandlers, reconnect: false });
    t.teardown(() => first.close());
    const ws = new WebSocket(`${B.url}?token=u:forger&sid=not-the-session`, 'volley');
    const t0 = Date.now();
    await new Promise((r) => ws.once('open', r));
    t.ok(Date.now() - t0 < 2000, 'no long wait for a session nobody holds');
    ws.close();
    t.ok(A.server.isConnected('forger') || B.server.isConnected('forger'), 'still one session somewhere');
  });
}
