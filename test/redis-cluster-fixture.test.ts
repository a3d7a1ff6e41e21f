// The Redis Cluster fixture (test/redisCluster.ts) against ioredis 6's Cluster client, and
// what that client does with sharded pub/sub, keys across slots and scripts: facts the
// Redis Cluster adapter relies on, checked here as observed. It touches no Volley
// transport, so it runs once, in the pass that is not VOLLEY_TRANSPORT=ws.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import t from 'tap';
import { Cluster, Redis } from 'ioredis';
import { sleep, until } from './helpers.ts';
import { redisClusterMissing, startRedisCluster } from './redisCluster.ts';

if (redisClusterMissing) {
  t.plan(0, redisClusterMissing);
} else if (process.env.VOLLEY_TRANSPORT === 'ws') {
  t.plan(0, 'touches no Volley transport: runs in the other npm test pass only');
} else {
  const h = (await startRedisCluster())!;
  t.comment(`Redis Cluster of 6 started in ${(h.startMs / 1000).toFixed(2)} s; primaries ${h.primaries.join(', ')}`);
  const errors: string[] = [];
  const clients: (Cluster | Redis)[] = [];
  const cluster = (opts: ConstructorParameters<typeof Cluster>[1] = {}) => {
    const c = new Cluster(h.nodes, opts);
    c.on('error', (e: Error) => errors.push(e.message)); // an unheard 'error' would throw
    clients.push(c);
    return c;
  };
  t.teardown(async () => {
    for (const c of clients) c.disconnect();
    await h.stop();
  });

  // Setup first, every assertion in a subtest: once the root test has a teardown, tap ends it
  // as soon as it is idle, and a root-level assertion followed by an await makes it idle.
  // Three shard channels served by three different primaries (so different slots), and one
  // more on the first one's primary but in another slot.
  const chans: string[] = [];
  const owners: number[] = [];
  let sameNodeOtherSlot = '';
  for (let i = 0; chans.length < 3 || !sameNodeOtherSlot; i++) {
    const name = `fixture:chan:${i}`;
    const owner = await h.primaryOf(name);
    if (!owners.includes(owner)) chans.push(name), owners.push(owner);
    else if (owner === owners[0] && !sameNodeOtherSlot) sameNodeOtherSlot = name;
  }

  // The subscriber: ssubscribe is called before 'ready', one command per channel.
  const sub = cluster({ shardedSubscribers: true });
  const got: string[] = [];
  sub.on('smessageBuffer', (channel: Buffer, message: Buffer) => void got.push(`${channel}=${message}`));
  const statusAtStart = sub.status;
  const subscribed = Promise.all(chans.map((c) => sub.ssubscribe(c)));
  await until(() => sub.status === 'ready', 10_000, 'the subscriber Cluster ready');
  const pub = cluster();
  await until(() => pub.status === 'ready', 10_000, 'the publisher Cluster ready');

  t.test('the cluster as started', async (t) => {
    t.equal(h.nodes.length, 6, 'six nodes');
    t.equal(h.primaries.length, 3, 'three primaries');
    t.same([...h.primaries, ...h.replicas].sort(), h.nodes.map((n) => n.port).sort(), 'each node a primary or a replica');
    t.same([...owners].sort(), [...h.primaries].sort(), 'the three channels land on the three primaries');
    t.ok(h.startMs < 20_000, `started in ${(h.startMs / 1000).toFixed(2)} s`);
  });

  t.test('ssubscribe before ready', async (t) => {
    t.equal(statusAtStart, 'connecting', 'a new Cluster is connecting');
    t.same(await subscribed, [1, 1, 1], 'ssubscribe before ready waits in the offline queue, then each lands on its shard (1 channel per connection)');
  });

  t.test('ssubscribe of channels in two slots is refused: by ioredis, and by Redis', async (t) => {
    await t.rejects(sub.ssubscribe(chans[0]!, chans[1]!), /CROSSSLOT/, 'ioredis refuses it before sending (channels on two shards)');
    await t.rejects(sub.ssubscribe(chans[0]!, sameNodeOtherSlot), /CROSSSLOT/, 'ioredis refuses it even when one node serves both slots');
    const direct = new Redis(owners[0]!, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0 });
    clients.push(direct);
    await t.rejects(direct.ssubscribe(chans[0]!, sameNodeOtherSlot), /^CROSSSLOT/, 'Redis itself answers CROSSSLOT, though this node serves both slots');
    direct.disconnect();
  });

  t.test('spublish reaches each shard subscriber and returns its receiver count', async (t) => {
    const counts: unknown[] = [];
    for (const c of chans) counts.push(await pub.spublish(c, `hello ${c}`));
    t.same(counts, [1, 1, 1], 'spublish returns the subscribers on that shard: 1 each');
    await until(() => got.length === 3, 5000, 'three smessages');
    t.same([...got].sort(), chans.map((c) => `${c}=hello ${c}`).sort(), "all three came as 'smessageBuffer'");
    t.equal(await pub.spublish('fixture:nobody', 'x'), 0, 'a shard channel nobody listens to: 0');
  });

  t.test('classic publish reaches a subscriber wherever it lands; its count is one node only', async (t) => {
    const heard: string[] = [];
    sub.on('message', (_c: string, m: string) => void heard.push(m));
    await sub.subscribe('fixture:classic');
    const counts: number[] = [];
    for (let i = 0; i < 12; i++) counts.push(await pub.publish('fixture:classic', `m${i}`));
    await until(() => heard.length === 12, 5000, 'twelve classic messages');
    t.ok(
      counts.every((n) => n === 0 || n === 1),
      `publish (no key) goes to a random node and counts that node's subscribers only: ${counts.join(' ')}`,
    );
    t.comment(`classic publish counts over 12 sends: ${counts.join(' ')}`);
    await sub.unsubscribe('fixture:classic');
  });

  t.test('keys in three slots; cross-slot MGET; EVALSHA of a one-key script', async (t) => {
    for (const k of chans) await pub.set(k, `v:${k}`);
    t.same(await Promise.all(chans.map((k) => pub.get(k))), chans.map((k) => `v:${k}`), 'SET/GET on each shard');
    await t.rejects(pub.mget(...chans), /CROSSSLOT/, 'a multi-key command across slots fails CROSSSLOT (ioredis does not split it)');

    const lua = "return redis.call('INCRBY', KEYS[1], ARGV[1])";
    const sha = await pub.script('LOAD', lua);
    // SCRIPT LOAD has no key: ioredis sends it to one node, so EVALSHA fails on the others.
    const once = await Promise.allSettled(chans.map((k, i) => pub.evalsha(sha as string, 1, `${k}:n`, i + 1)));
    t.equal(once.filter((r) => r.status === 'rejected' && /NOSCRIPT/.test(String(r.reason))).length, 2, 'after one SCRIPT LOAD, EVALSHA is NOSCRIPT on the two other shards');
    await Promise.all(pub.nodes('master').map((n) => n.script('LOAD', lua)));
    const after = await Promise.all(chans.map((k) => pub.evalsha(sha as string, 1, `${k}:m`, 5)));
    t.same(after, [5, 5, 5], 'loaded on every primary, EVALSHA works on each shard');
  });

  t.test('sunsubscribe stops delivery: spublish then counts 0', async (t) => {
    // With no channel named the command has no slot, and ioredis 6 indexes its slot table
    // with it: a TypeError thrown at the call, not a rejection. Always name the channels.
    t.throws(() => sub.sunsubscribe(), TypeError, 'sunsubscribe() with no channel throws synchronously');
    await sub.sunsubscribe(chans[2]!);
    t.equal(await pub.spublish(chans[2]!, 'after sunsubscribe'), 0, 'no receiver left on that shard');
    await sleep(100);
    t.notOk(got.some((m) => m.endsWith('after sunsubscribe')), 'nothing delivered');
  });

  t.test("a primary killed: its replica takes over, ioredis re-ssubscribes there by itself", async (t) => {
    const victim = owners[1]!;
    const t0 = Date.now();
    await h.kill(victim);
    const primaries = await h.waitStable(15_000);
    const failoverMs = Date.now() - t0;
    t.notOk(primaries.includes(victim), `failover done in ${(failoverMs / 1000).toFixed(1)} s`);
    const newOwner = await h.primaryOf(chans[1]!);
    t.ok(h.replicas.includes(newOwner), `channel ${chans[1]} now on the former replica ${newOwner}`);
    // Re-subscription is ioredis' own (a slots refresh resets its sharded subscribers): spublish
    // until someone hears it, bounded.
    let count = 0;
    const end = Date.now() + 10_000;
    while (count === 0 && Date.now() < end) {
      count = (await pub.spublish(chans[1]!, 'after failover').catch(() => 0)) as number;
      if (count === 0) await sleep(100);
    }
    t.equal(count, 1, `the subscriber is back on the new primary ${((Date.now() - t0 - failoverMs) / 1000).toFixed(1)} s after the failover`);
    await until(() => got.includes(`${chans[1]}=after failover`), 2000, 'the message after failover');
    t.equal(await pub.spublish(chans[0]!, 'other shard'), 1, 'the other shards kept their subscriber');
  });

  t.test('a test process killed outright (SIGKILL: no exit handler runs) leaves no redis-server behind', async (t) => {
    // The nodes are redisServer.ts processes: its watchdog is what reaps them.
    const code = `const { startRedis } = await import(${JSON.stringify(new URL('./redisServer.ts', import.meta.url).href)});
      console.log('PORT ' + (await startRedis()).port); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    await until(() => /PORT \d+/.test(out), 15_000, 'the child to start redis-server');
    const port = Number(/PORT (\d+)/.exec(out)![1]);
    t.ok(await accepts(port), `its redis-server listens on ${port}`);
    child.kill('SIGKILL');
    const t0 = Date.now();
    let up = true;
    while (up && Date.now() - t0 < 5000) if ((up = await accepts(port))) await sleep(50);
    t.notOk(up, `its redis-server is gone ${Date.now() - t0} ms after the SIGKILL`);
  });

  t.test('stop() leaves no node and no directory', async (t) => {
    for (const c of clients) c.disconnect();
    const t0 = Date.now();
    await h.stop();
    t.comment(`stop took ${Date.now() - t0} ms`);
    const left = await Promise.all(h.nodes.map((n) => accepts(n.port)));
    t.same(left, h.nodes.map(() => false), 'no node accepts a connection');
    t.notOk(existsSync(h.dir), 'its directory is gone');
    t.comment(`client errors seen (expected around the kill): ${[...new Set(errors)].join(' | ') || 'none'}`);
  });
}

/** True when something accepts a TCP connection on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}
