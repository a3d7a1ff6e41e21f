// Volley on a real Redis Cluster (six redis-servers: three primaries, three replicas):
// three Volley nodes, 42 players spread over them. Presence for every player, calls by
// uid across nodes both ways, notify, rooms with members on every node (notifications
// to each member exactly once, on the room's shard channel; callMany({room});
// allMembers), join for a uid held by another node, duplicate login across nodes.

import t from 'tap';
import { Cluster } from 'ioredis';
import { type ServerContext } from '../server/index.ts';
import { sleep, until } from './helpers.ts';
import { startNode, type ClusterNode } from './clusterNodes.ts';
import { redisClusterMissing, startRedisCluster } from './redisCluster.ts';

if (redisClusterMissing) {
  t.plan(0, redisClusterMissing);
} else {
  const h = (await startRedisCluster())!;
  t.teardown(() => h.stop());
  const prefix = `k${process.pid}:`;
  // A short presence TTL: the refreshes (one script per slot) must keep every player reachable past it.
  const TTL = 1500;
  const settings = { redis: h.urls[0]!, cluster: h.nodes, prefix, presenceTtlMs: TTL };
  const handlers = {
    relay: (ctx: ServerContext, uid: string, method: string, ...args: unknown[]) => ctx.server.call(uid, method, args),
    joinRoom: (ctx: ServerContext, room: string) => ctx.server.join(ctx.uid, room),
  };
  const nodes = await Promise.all([0, 1, 2].map(() => startNode(settings, { handlers })));
  t.teardown(() => Promise.all(nodes.map((n) => n.close())));
  const redis = new Cluster(h.nodes);
  redis.on('error', () => {});
  t.teardown(() => redis.disconnect());

  const PLAYERS = 42;
  const got = new Map<string, string[]>();
  const nodeOf = (i: number): ClusterNode => nodes[i % 3]!;
  const players = await Promise.all(
    Array.from({ length: PLAYERS }, (_, i) => {
      const uid = `p${i}`;
      got.set(uid, []);
      return nodeOf(i).client(uid, {
        reconnect: false,
        handlers: { who: () => `${uid}@${nodeOf(i).port}`, news: (_c: unknown, s: string) => void got.get(uid)!.push(s) },
      });
    }),
  );

  t.test('presence of every player is in Redis Cluster', async (t) => {
    const values = await Promise.all(players.map((_, i) => redis.get(`${prefix}p:p${i}`)));
    const right = values.filter((v, i) => v?.startsWith(`${nodeOf(i).adapter.nodeId} `)).length;
    t.equal(right, PLAYERS, `${right} of ${PLAYERS} presence entries name the player's node`);
  });

  t.test('calls by uid cross nodes: every node reaches every player', async (t) => {
    let ok = 0;
    for (const from of nodes) {
      const answers = await Promise.all(players.map((_, i) => from.server.call(`p${i}`, 'who', [], { timeoutMs: 5000 }).catch((e: Error) => e.message)));
      ok += answers.filter((a, i) => a === `p${i}@${nodeOf(i).port}`).length;
    }
    t.equal(ok, PLAYERS * 3, `${ok} of ${PLAYERS * 3} calls answered by the right player`);
    // And from a client through its node's handler to a player on another node.
    t.equal(await players[0]!.server.relay('p1', 'who'), `p1@${nodeOf(1).port}`);
    await until(() => nodes.every((n) => n.adapter.pending.outgoing === 0 && n.adapter.pending.incoming === 0), 3000, 'nothing pending');
  });

  t.test('rooms across nodes: notifications once to each member, callMany, allMembers, remote join', async (t) => {
    // Each room has members on every node. p41 (on node 2) joins through node 0's server.join.
    const roomOf = (i: number) => (i === PLAYERS - 1 ? 2 : Math.floor(i / 3) % 3);
    for (let i = 0; i < PLAYERS - 1; i++) await players[i]!.server.joinRoom(`room${roomOf(i)}`);
    nodes[0]!.server.join(`p${PLAYERS - 1}`, 'room2'); // done on node 2, one Redis hop later
    for (let r = 0; r < 3; r++) {
      const expect = players.filter((_, i) => roomOf(i) === r).length;
      for (const end = Date.now() + 3000; (await nodes[1]!.server.allMembers(`room${r}`)).length < expect && Date.now() < end; ) await sleep(10);
    }
    const members = await nodes[1]!.server.allMembers('room2');
    t.equal(members.length, 13, 'allMembers sees the members of all three nodes (p41 joined remotely)');
    // Sharded subscribers may sit on the shard's primary or its replica: count on every node.
    const channel = `${prefix}rc:{room2}`;
    const counts = await Promise.all(h.nodes.map(async ({ port }) => Number((await h.cli(port, 'PUBSUB', 'SHARDNUMSUB', channel)).trim().split('\n')[1]) || 0));
    t.equal(counts.reduce((a, b) => a + b, 0), 3, `the room's shard channel has one subscriber per node with members (${counts.join(' ')})`);
    const channels = await Promise.all(h.nodes.map(async ({ port }) => (await h.cli(port, 'PUBSUB', 'SHARDCHANNELS', `${prefix}rc:*`)).trim().split('\n').filter(Boolean)));
    t.same([...new Set(channels.flat())].sort(), [0, 1, 2].map((r) => `${prefix}rc:{room${r}}`), 'each room has its own shard channel');

    for (let k = 0; k < 5; k++) nodes[k % 3]!.server.notifyRoom('room2', 'news', `n${k}`);
    const inRoom2 = players.map((_, i) => `p${i}`).filter((_, i) => roomOf(i) === 2);
    await until(() => inRoom2.every((uid) => got.get(uid)!.length >= 5), 5000, 'every member to get 5 notifications');
    await sleep(100);
    t.ok(inRoom2.every((uid) => got.get(uid)!.slice().sort().join() === 'n0,n1,n2,n3,n4'), 'each exactly once');
    t.ok([...got].filter(([uid]) => !inRoom2.includes(uid)).every(([, seen]) => seen.length === 0), 'no one else got any');

    const outcomes = await nodes[0]!.server.callMany({ room: 'room1' }, 'who', [], { timeoutMs: 5000 });
    t.equal(outcomes.filter((o) => o.status === 'ok').length, 14, 'callMany({room}): an ok outcome for each of the 14 members, on every node');
  });

  t.test('presence outlives its TTL: the per-slot refreshes keep every player reachable', async (t) => {
    await sleep(TTL * 2);
    const answers = await Promise.all(players.map((_, i) => nodes[(i + 1) % 3]!.server.call(`p${i}`, 'who', [], { timeoutMs: 5000 }).catch((e: Error) => e.message)));
    const ok = answers.filter((a, i) => a === `p${i}@${nodeOf(i).port}`).length;
    t.equal(ok, PLAYERS, `${ok} of ${PLAYERS} reachable from another node ${TTL * 2} ms later`);
  });

  t.test('duplicate login across nodes: the newer one replaces the older', async (t) => {
    const first = await nodes[0]!.client('dup', { reconnect: false });
    const closed = new Promise<number>((resolve) => first.on('close', (e: { code: number }) => resolve(e.code)));
    await nodes[1]!.client('dup', { reconnect: false, handlers: { who: () => 'second' } });
    t.equal(await closed, 4000, 'the first socket closed 4000 REPLACED');
    t.equal(await nodes[2]!.server.call('dup', 'who', [], { timeoutMs: 3000 }), 'second', 'calls reach the new login');
  });
}
