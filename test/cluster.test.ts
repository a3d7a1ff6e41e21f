// Three Volley nodes on one real Redis, real ws clients spread over them: calls across
// nodes both ways, deadlines and cancellation forwarded, rooms, callMany, notifications,
// duplicate login across nodes under both policies.

import t from 'tap';
import { Redis } from 'ioredis';
import { ErrorCode, RpcError, type ServerContext } from '../server/index.ts';
import { WebSocket, rejectsCode, sleep, until } from './helpers.ts';
import { startNode, type ClusterNode } from './clusterNodes.ts';
import { redisMissing, startRedis } from './redisServer.ts';

if (redisMissing) {
  t.plan(0, redisMissing);
} else {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const prefix = `t${process.pid}:`;
  const settings = { redis: redis.url, prefix };

  // Server handlers every node has: relay a call to any uid, wherever it is connected.
  const handlers = {
    relay: (ctx: ServerContext, uid: string, method: string, ...args: unknown[]) => ctx.server.call(uid, method, args),
    whereAmI: (ctx: ServerContext) => ctx.server.port,
    joinRoom: (ctx: ServerContext, room: string) => ctx.server.join(ctx.uid, room),
    leaveRoom: (ctx: ServerContext, room: string) => ctx.server.leave(ctx.uid, room),
  };
  const [A, B, C] = await Promise.all([startNode(settings, { handlers }), startNode(settings, { handlers }), startNode(settings, { handlers })]);
  t.teardown(async () => {
    await Promise.all([A, B, C].map((n) => n!.close()));
  });

  // Each client answers `who` with its name and the node it sits on.
  const player = (node: ClusterNode, uid: string, extra: Record<string, (...a: any[]) => unknown> = {}) =>
    node.client(uid, { reconnect: false, handlers: { who: () => `${uid}@${node.port}`, ...extra } });

  const noLeaks = async (t: { pass(msg: string): void }) => {
    await until(() => [A, B, C].every((n) => n!.adapter.pending.outgoing === 0 && n!.adapter.pending.incoming === 0), 3000, 'forwarded calls to settle');
    t.pass('no forwarded call left pending on any node');
  };

  t.test('calls cross nodes both ways', async (t) => {
    const a = await player(A!, 'a1');
    const c = await player(C!, 'c1');
    // A client on A asks a handler on A to call a player on C, and the reverse.
    t.equal(await a.server.relay('c1', 'who'), `c1@${C!.port}`);
    t.equal(await c.server.relay('a1', 'who'), `a1@${A!.port}`);
    // Straight from a server API, and through the typed proxy.
    t.equal(await B!.server.call('a1', 'who', []), `a1@${A!.port}`);
    t.equal(await B!.server.to('c1').who(), `c1@${C!.port}`);
    await noLeaks(t);
  });

  t.test('errors, deadlines and cancellation cross nodes', async (t) => {
    const seen: string[] = [];
    await player(C!, 'c2', {
      refuse: () => {
        throw new RpcError('NOT_YOUR_TURN', 'wait', { turn: 3 });
      },
      crash: () => {
        throw new Error('secret detail');
      },
      // Never answers; records why its signal fired.
      stall: (ctx: { signal: AbortSignal }) =>
        new Promise((_, reject) =>
          ctx.signal.addEventListener('abort', () => {
            seen.push((ctx.signal.reason as RpcError)?.code ?? 'aborted');
            reject(ctx.signal.reason);
          }),
        ),
    });
    const e = await rejectsCode(A!.server.call('c2', 'refuse', []), 'NOT_YOUR_TURN');
    t.same(e.data, { turn: 3 }, 'error data crosses nodes');
    const internal = await rejectsCode(A!.server.call('c2', 'crash', []), ErrorCode.INTERNAL);
    t.notMatch(internal.message, /secret/, 'no detail of a client crash leaks');
    await rejectsCode(A!.server.call('c2', 'nope', []), ErrorCode.METHOD_NOT_FOUND);

    const t0 = Date.now();
    await rejectsCode(A!.server.call('c2', 'stall', [], { timeoutMs: 300 }), ErrorCode.TIMEOUT);
    t.ok(Date.now() - t0 >= 290, 'the caller waited for its own deadline');
    await until(() => seen.length === 1, 2000, 'the client handler to be stopped');

    const ac = new AbortController();
    const call = A!.server.call('c2', 'stall', [], { timeoutMs: 10_000, signal: ac.signal });
    await sleep(100);
    ac.abort();
    await rejectsCode(call, ErrorCode.CANCELLED);
    await until(() => seen.length === 2, 2000, 'the cancel to reach the client');
    t.same(seen, [ErrorCode.CANCELLED, ErrorCode.CANCELLED], 'the client handler saw $cancel both times');
    await noLeaks(t);
  });

  t.test('a uid on no node fails fast with UNAVAILABLE', async (t) => {
    const t0 = Date.now();
    await rejectsCode(A!.server.call('nobody', 'who', [], { timeoutMs: 10_000 }), ErrorCode.UNAVAILABLE);
    t.ok(Date.now() - t0 < 5000, 'long before the deadline');
    const c = await player(B!, 'gone');
    t.equal(await A!.server.to('gone').who(), `gone@${B!.port}`);
    c.close();
    await until(() => !B!.server.isConnected('gone'), 2000, 'B to see the close');
    await rejectsCode(A!.server.call('gone', 'who', []), ErrorCode.UNAVAILABLE);
    await noLeaks(t);
  });

  t.test('notify reaches a player on another node', async (t) => {
    const got: string[] = [];
    await player(B!, 'n1', { ping: (_ctx: unknown, s: string) => void got.push(s) });
    A!.server.notify('n1', 'ping', 'from A');
    C!.server.notify('n1', 'ping', 'from C');
    await until(() => got.length === 2, 2000, 'both notifications');
    t.same(got.sort(), ['from A', 'from C']);
  });

  t.test('rooms span nodes: notifyRoom once each, callMany one outcome per uid', async (t) => {
    const got = new Map<string, string[]>();
    const members = [
      [A!, 'r-a'],
      [B!, 'r-b1'],
      [B!, 'r-b2'],
      [C!, 'r-c'],
    ] as const;
    const clients = [];
    for (const [node, uid] of members) {
      got.set(uid, []);
      const c = await player(node, uid, { news: (_ctx: unknown, s: string) => void got.get(uid)!.push(s) });
      await c.server.joinRoom('arena');
      clients.push(c);
    }
    B!.server.notifyRoom('arena', 'news', 'round 1');
    await until(() => [...got.values()].every((l) => l.length >= 1), 2000, 'every member to get the notification');
    await sleep(100);
    for (const [uid, list] of got) t.same(list, ['round 1'], `${uid} got it exactly once`);

    const outcomes = await A!.server.callMany({ room: 'arena' }, 'who', [], { timeoutMs: 2000 });
    t.same(
      outcomes.map((o) => [o.uid, o.status, o.status === 'ok' ? o.value : null]).sort(),
      members.map(([node, uid]) => [uid, 'ok', `${uid}@${node.port}`]).sort(),
      'every member on every node answered once',
    );

    await clients[3]!.server.leaveRoom('arena');
    const after = await B!.server.callMany({ room: 'arena' }, 'who', []);
    t.same(after.map((o) => o.uid).sort(), ['r-a', 'r-b1', 'r-b2'], 'a member that left is not called');

    // A member whose session ends leaves the room on every node's view.
    clients[0]!.close();
    await until(() => !A!.server.isConnected('r-a'), 2000, 'A to see r-a go');
    await sleep(50);
    const last = await C!.server.callMany({ room: 'arena' }, 'who', []);
    t.same(last.map((o) => o.uid).sort(), ['r-b1', 'r-b2']);
    await noLeaks(t);
  });

  t.test('one node puts players of other nodes in a room (a matchmaker)', async (t) => {
    const got = new Map<string, string[]>();
    const seats = [
      [A!, 'x-a'],
      [B!, 'x-b'],
      [C!, 'x-c'],
    ] as const;
    for (const [node, uid] of seats) {
      got.set(uid, []);
      await player(node, uid, { news: (_ctx: unknown, s: string) => void got.get(uid)!.push(s) });
    }
    for (const [, uid] of seats) A!.server.join(uid, 'match-7'); // all from node A
    const membersFrom = async (node: ClusterNode) =>
      (await node.server.callMany({ room: 'match-7' }, 'who', [])).map((o) => `${o.uid}:${o.status}`).sort();
    let seen: string[] = [];
    const end = Date.now() + 2000; // remote joins land one Redis round trip later
    while ((seen = await membersFrom(B!)).length < 3 && Date.now() < end) await sleep(10);
    t.same(seen, ['x-a:ok', 'x-b:ok', 'x-c:ok'], 'every node sees all three members');
    t.same(B!.server.members('match-7'), ['x-b'], 'x-b joined on its own node, not on A');
    A!.server.notifyRoom('match-7', 'news', 'go');
    await until(() => [...got.values()].every((l) => l.length >= 1), 2000, 'all three to get the notification');
    await sleep(100);
    for (const [uid, list] of got) t.same(list, ['go'], `${uid} got it exactly once`);

    A!.server.leave('x-c', 'match-7');
    await until(() => C!.server.members('match-7').length === 0, 2000, 'x-c to leave on its node');
    t.same(await membersFrom(A!), ['x-a:ok', 'x-b:ok']);
    await noLeaks(t);
  });

  t.test('callMany over a list across nodes: ok, error, timeout, offline', async (t) => {
    await player(A!, 'm-a');
    await player(B!, 'm-b', { who: () => new Promise(() => {}) });
    await player(C!, 'm-c', {
      who: () => {
        throw new RpcError('BUSY');
      },
    });
    const out = await B!.server.callMany(['m-a', 'm-b', 'm-c', 'm-none'], 'who', [], { timeoutMs: 300 });
    t.same(
      out.map((o) => [o.uid, o.status, o.status === 'ok' ? o.value : o.error.code]),
      [
        ['m-a', 'ok', `m-a@${A!.port}`],
        ['m-b', 'timeout', ErrorCode.TIMEOUT],
        ['m-c', 'error', 'BUSY'],
        ['m-none', 'offline', ErrorCode.UNAVAILABLE],
      ],
    );
    await noLeaks(t);
  });

  t.test("duplicate login across nodes, 'replace': the old socket closes 4000, calls reach the new one", async (t) => {
    const old = await player(A!, 'dup');
    const closed = new Promise<number>((r) => old.on('close', (info) => r(info.code)));
    t.equal(await C!.server.to('dup').who(), `dup@${A!.port}`);
    await player(B!, 'dup');
    t.equal(await closed, 4000, 'the session on A was replaced');
    await until(() => !A!.server.isConnected('dup'), 2000, 'A to drop dup');
    t.equal(await C!.server.to('dup').who(), `dup@${B!.port}`, 'calls go to the new node');
    t.equal(await A!.server.to('dup').who(), `dup@${B!.port}`, 'including from the old node');
    await noLeaks(t);
  });

  t.test("duplicate login across nodes, 'reject': the second login gets HTTP 409", async (t) => {
    const rs = { redis: redis.url, prefix: `${prefix}rej:` };
    const [D, E] = await Promise.all([
      startNode(rs, { handlers, duplicateLogin: 'reject' }),
      startNode(rs, { handlers, duplicateLogin: 'reject' }),
    ]);
    t.teardown(() => Promise.all([D.close(), E.close()]));
    const first = await D.client('solo', { reconnect: false, handlers: { who: () => 'D' } });
    const status = await upgradeStatus(E.url, 'solo');
    t.equal(status, 409, 'refused before the upgrade');
    t.equal(await E.server.to('solo').who(), 'D', 'the first login is untouched');
    first.close();
    await until(() => !D.server.isConnected('solo'), 2000, 'D to drop solo');
    const second = await E.client('solo', { reconnect: false, handlers: { who: () => 'E' } });
    t.equal(await D.server.to('solo').who(), 'E', 'once the first left, the uid may log in elsewhere');
    second.close();

    // Two logins racing on two nodes: both may pass the 409 check, one loses at register.
    for (let i = 0; i < 5; i++) {
      const uid = `race${i}`;
      const login = (node: ClusterNode, name: string) => node.client(uid, { reconnect: false, handlers: { who: () => name } });
      const results = await Promise.allSettled([login(D, 'D'), login(E, 'E')]);
      const codes = () => results.flatMap((r) => (r.status === 'fulfilled' && r.value.closeInfo ? [r.value.closeInfo.code] : []));
      await sleep(100);
      await until(() => Number(D.server.isConnected(uid)) + Number(E.server.isConnected(uid)) === 1, 2000, `one ${uid} session in the cluster`);
      const winner = D.server.isConnected(uid) ? 'D' : 'E';
      t.equal(await D.server.to(uid).who(), winner, `${uid}: calls from either node reach the one that won`);
      t.equal(await E.server.to(uid).who(), winner);
      // The loser was refused (409: the connect rejects) or closed with 4001 DUPLICATE_LOGIN.
      const refused = results.filter((r) => r.status === 'rejected').length;
      await until(() => refused + codes().length >= 1, 2000, 'the losing login to close');
      t.same([refused, codes()], refused === 1 ? [1, []] : [0, [4001]], `${uid}: the other login lost`);
      for (const r of results) if (r.status === 'fulfilled') r.value.close();
    }
  });
}

/** HTTP status of a WebSocket upgrade as `uid` (101 when accepted). */
function upgradeStatus(url: string, uid: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}?token=u:${uid}`);
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('open', () => {
      resolve(101);
      ws.close();
    });
    ws.once('error', (err) => reject(err));
  });
}
