// Issue 9 #6: room memberships leaked. `server.join(uid, room)` for a uid with no session
// (a matchmaker inviting players who never came, or a handler joining after an await once
// its caller had left) left a membership nothing ever removed: 100k of them stayed after
// the inviter left, and a later login of that uid inherited rooms it never joined. There
// was no bound on rooms per uid (~700 B each).
//
// Fixed: a membership exists only while its uid has a session on this node (joins of other
// uids are no-ops; with a cluster adapter they go to the node that holds the uid), it ends
// with the session, and `maxRoomsPerUid` (default 1024) bounds one uid's rooms.

import t from 'tap';
import { AttackServer, BOUNDS, GoodClient, MiB, figures, poll } from './attack/harness.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('100k joins of 100k uids without a session leave nothing, and a later login inherits nothing', async (t) => {
  const srv = await AttackServer.start(t);
  const good = await GoodClient.start(t, srv);
  const before = await srv.memory();
  await srv.loop();
  const mm = await srv.client(t, 'matchmaker');
  const counts: number[] = [];
  for (let k = 0; k < 5; k++) counts.push((await mm.call('invite', [`ghost${k}_`, 20_000, `match${k}`], { timeoutMs: 10_000 })) as number);
  mm.close(); // the inviter leaves
  await sleep(100);
  const alive = srv.alive;
  const after = alive ? await srv.memory() : undefined;
  const loop = alive ? await srv.loop() : undefined;
  const lat = await good.stop();
  const grew = after ? after.heapUsed - before.heapUsed : Infinity;
  figures(t, '#6 rooms', { memory: ['heapUsed', grew], loop, good: lat, extra: `members per room ${counts.join(',')}` });

  t.ok(alive, 'the server stays up');
  t.ok(grew < 8 * MiB, `heap after 100k invitations +${(grew / MiB).toFixed(1)} MiB < 8 MiB`);
  t.ok(lat.p99Ms < BOUNDS.p99Ms, `the good client's p99 ${lat.p99Ms.toFixed(0)} ms < ${BOUNDS.p99Ms} ms`);
  t.same(counts, [0, 0, 0, 0, 0], 'no uid without a session became a member');
  t.equal(await srv.members('match0'), 0, 'match0 is empty');
  // ghost0_7 logs in for the first time: it is in no room.
  await srv.client(t, 'ghost0_7');
  t.same(await srv.roomsOf('ghost0_7'), [], 'a later login inherits no room');
});

t.test('a handler that joins after an await, when its caller has left, leaves no membership', async (t) => {
  const srv = await AttackServer.start(t);
  const late = await srv.client(t, 'late');
  const call = late.call('lateJoin', ['lobby', 300]).catch((e: { code?: string }) => e.code);
  await sleep(100); // the handler is waiting
  late.close(); // a deliberate close ends the session at once
  t.equal(await call, 'DISCONNECTED', 'the caller left during the call');
  await poll(async () => ((await srv.counters()).stats.connections === 0 ? true : undefined), 2000);
  await sleep(400); // the handler has joined by now, if it was going to
  t.equal(await srv.members('lobby'), 0, 'the room has no member');
  t.same(await srv.roomsOf('late'), [], 'the uid has no room');
  await srv.client(t, 'late');
  t.same(await srv.roomsOf('late'), [], 'its next login starts in no room');

  // While the session lives (connected or within the resume window) a late join counts.
  const stay = await srv.client(t, 'stay');
  t.equal(await stay.call('lateJoin', ['lobby', 50]), 'joined');
  t.same(await srv.roomsOf('stay'), ['lobby'], 'a live session joins as before');
  stay.close();
  await poll(async () => ((await srv.roomsOf('stay')).length === 0 ? true : undefined), 2000);
  t.same(await srv.roomsOf('stay'), [], 'and leaves when its session ends');
});

t.test('rooms per uid are bounded: past the limit join throws INVALID_PARAMS', async (t) => {
  const srv = await AttackServer.start(t);
  const greedy = await srv.client(t, 'greedy');
  const got = (await greedy.call('enterMany', ['r', 2000], { timeoutMs: 10_000 })) as { joined: number; code: string | null };
  t.same(got, { joined: 1024, code: 'INVALID_PARAMS' }, `the default maxRoomsPerUid is 1024 (joined ${got.joined}, then ${got.code})`);
  t.equal((await srv.roomsOf('greedy')).length, Math.min(got.joined, 1024), 'and no more memberships exist');
  t.equal(await greedy.call('enter', ['r5']), 1, 'joining a room it is already in is still fine');

  const small = await AttackServer.start(t, { server: { maxRoomsPerUid: 3 } as never });
  const c = await small.client(t, 'c');
  t.same(await c.call('enterMany', ['q', 10]), { joined: 3, code: 'INVALID_PARAMS' }, 'the limit is an option (maxRoomsPerUid)');
});
