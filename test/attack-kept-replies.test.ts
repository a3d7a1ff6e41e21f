// Issue 9 #2: kept replies pin msgpackr's shared encode buffer. msgpackr encodes into
// one buffer (4 MiB once a ~1 MiB message went through it) and returns slices of it; a
// reply kept for `$ack`/replay keeps the whole buffer alive while the byte bounds count
// only the slice. On the old code 100 ordinary clients making one call each, while
// another client echoed 1 MB payloads, pinned 383 MiB after GC, still pinned after they
// all closed and the resume window passed (expired replay entries were never purged); a
// client that sent `$ack [0]` and never acked again pinned 1,148 MiB with 300 tiny replies.
//
// Fixed (DECISIONS A, B): kept bytes are exact-size copies, counted as what they retain;
// the replay store is gone and everything a session kept is freed when it ends; an acking
// peer past maxUnackedBytes (16 MiB) is closed 4002.

import t from 'tap';
import { encode } from '../protocol/index.ts';
import { AttackServer, BOUNDS, GoodClient, MiB, figures } from './attack/harness.ts';

const PLAYERS = 30;
/**
 * 1 MB replies between two small replies: each small reply lands in a fresh 4 MiB encoder
 * buffer. (The client echoed 1 MB payloads; asking for 1 MB replies pins the same
 * way at half the traffic, which matters on a loaded machine.)
 */
const BIG_REPLIES_BETWEEN = 3;
const ARRAY_BUFFER_BOUND = 32 * MiB;
const P99_BOUND_MS = BOUNDS.p99Ms;

t.test(`${PLAYERS} players make one call each beside 1 MB replies, then leave: nothing stays pinned`, async (t) => {
  const RESUME_MS = 400;
  const srv = await AttackServer.start(t, { server: { resumeWindowMs: RESUME_MS } });
  const good = await GoodClient.start(t, srv);
  const echoer = await srv.client(t, 'echoer');
  const before = await srv.memory();
  await srv.loop();
  const players = [];
  let answered = 0;
  for (let i = 0; i < PLAYERS; i++) {
    const p = await srv.client(t, `player${i}`);
    players.push(p);
    if ((await p.call('add', [i, 1])) === i + 1) answered++;
    for (let k = 0; k < BIG_REPLIES_BETWEEN; k++) await echoer.call('blob', [1_000_000]);
  }
  const pinnedOpen = await srv.memory();
  for (const p of players) p.close();
  echoer.close();
  await new Promise((r) => setTimeout(r, RESUME_MS + 400)); // past the resume window
  const alive = srv.alive;
  const after = alive ? await srv.memory() : undefined;
  const loop = alive ? await srv.loop() : undefined;
  const lat = await good.stop();
  const grew = after ? after.arrayBuffers - before.arrayBuffers : Infinity;
  figures(t, '#2 kept replies, players gone', {
    memory: ['arrayBuffers', grew],
    loop,
    good: lat,
    extra: `(while connected +${((pinnedOpen.arrayBuffers - before.arrayBuffers) / MiB).toFixed(1)} MiB)`,
  });

  t.ok(alive, 'the server stays up');
  t.equal(answered, PLAYERS, 'every player was answered');
  t.ok(grew < ARRAY_BUFFER_BOUND, `ArrayBuffers after everyone left and the window passed +${(grew / MiB).toFixed(0)} MiB < ${ARRAY_BUFFER_BOUND / MiB} MiB`);
  t.equal(lat.failures, 0, `the good client's calls all answered (${lat.firstFailure ?? 'ok'})`);
  t.ok(lat.p99Ms < P99_BOUND_MS, `the good client's p99 ${lat.p99Ms.toFixed(0)} ms < ${P99_BOUND_MS} ms`);
});

t.test('`$ack [0]` and then silence: tiny kept replies must not pin 4 MiB each', async (t) => {
  const srv = await AttackServer.start(t);
  const good = await GoodClient.start(t, srv);
  const echoer = await srv.client(t, 'echoer');
  const before = await srv.memory();
  await srv.loop();
  const silent = await srv.raw(t, 'silent');
  silent.sendBinary(encode([2, '$ack', [0]])); // "I acknowledge": the server keeps replies for me
  for (let id = 1; id <= PLAYERS; id++) {
    silent.sendBinary(encode([0, id, 'add', [id, 1]]));
    await silent.responseOrClose(id, 3000);
    for (let k = 0; k < BIG_REPLIES_BETWEEN; k++) await echoer.call('blob', [1_000_000]);
  }
  const alive = srv.alive;
  const during = alive ? await srv.memory() : undefined;
  const loop = alive ? await srv.loop() : undefined;
  const lat = await good.stop();
  const grew = during ? during.arrayBuffers - before.arrayBuffers : Infinity;
  figures(t, '#2 kept replies, $ack [0] then silence', { memory: ['arrayBuffers', grew], loop, good: lat });

  t.ok(alive, 'the server stays up');
  t.ok(grew < ARRAY_BUFFER_BOUND, `ArrayBuffers held for ${PLAYERS} tiny unacked replies +${(grew / MiB).toFixed(0)} MiB < ${ARRAY_BUFFER_BOUND / MiB} MiB`);
  t.equal(lat.failures, 0, `the good client's calls all answered (${lat.firstFailure ?? 'ok'})`);
  t.ok(lat.p99Ms < P99_BOUND_MS, `the good client's p99 ${lat.p99Ms.toFixed(0)} ms < ${P99_BOUND_MS} ms`);
  t.equal(silent.messages.filter((m) => Array.isArray(m) && m[0] === 1).length, PLAYERS, 'every call of the silent client answered');
  t.notOk(silent.closed, 'tiny replies are far from maxUnackedBytes: the connection stays');

  // The same silence with 20 × 1 MB replies passes the 16 MiB of kept bytes: closed 4002.
  // One at a time, each read before the next: sent all at once, 20 MB could fill the
  // socket's send buffer past the transport's hard limit (8 MiB, close 4009) first.
  for (let id = 100; id < 120 && !silent.closed; id++) {
    silent.sendBinary(encode([0, id, 'blob', [1_000_000]]));
    await silent.responseOrClose(id, 3000);
  }
  const close = await silent.waitClose(3000);
  t.equal(close?.code, 4002, `past maxUnackedBytes a peer that never acks is closed 4002 (${close?.reason ?? 'still open'})`);
});
