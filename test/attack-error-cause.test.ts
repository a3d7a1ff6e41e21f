// Issue 9 #5: an Error with a 40-deep `cause`. The old depth check walked enumerable
// keys, and an Error's message and cause are not enumerable, so a player could store one;
// the server's encoder then wrote it out as nested arrays [name, message, cause], 41 deep,
// and the player who loaded it had its client closed with 4002 (final: no reconnect).
//
// Fixed (DECISIONS A): such a value is refused on the way in (INVALID_PARAMS), and what a
// handler returns is checked by the same scan over the encoded bytes: an Error, RegExp,
// Set, Map, BigInt or typed array result goes out as INTERNAL (onError says why), and the
// caller's connection stays.

import t from 'tap';
import { Packr } from 'msgpackr';
import { concatFrames, encode } from '../protocol/index.ts';
import { AttackServer, BOUNDS, GoodClient, MiB, figures } from './attack/harness.ts';

const hostile = new Packr({ moreTypes: true, useRecords: false });

function deepError(depth: number): Error {
  let e = new Error('root');
  for (let i = 0; i < depth; i++) e = new Error(`level ${i}`, { cause: e });
  return e;
}

t.test('a stored Error with a 40-deep cause, and results that are not plain msgpack, never close the loader', async (t) => {
  const srv = await AttackServer.start(t);
  const good = await GoodClient.start(t, srv);
  const before = await srv.memory();
  await srv.loop();

  // Player A stores the Error (a raw client: Volley's own encoder would not send it).
  const a = await srv.raw(t, 'storer');
  a.sendBinary(concatFrames([Uint8Array.of(0x94, 0x00, 0x01), encode('store'), Uint8Array.of(0x91), hostile.pack(deepError(40))]));
  const stored = await a.responseOrClose(1, 3000);
  const storeCode = (stored?.response?.[2] as { code?: string } | null)?.code;
  t.equal(storeCode, 'INVALID_PARAMS', `storing it is refused INVALID_PARAMS (got ${stored?.response ? JSON.stringify(stored.response[2] ?? stored.response[3]).slice(0, 60) : 'a close'})`);

  /** A Volley client per check, so one closed on the old code does not hide the next. */
  const loader = async (uid: string) => {
    const c = await srv.client(t, uid);
    const closes: number[] = [];
    c.on('close', (info: { code: number }) => void closes.push(info.code));
    return { c, closes };
  };
  const outcome = (p: Promise<unknown>) =>
    p.then(
      (v) => `ok ${JSON.stringify(v)?.slice(0, 40)}`,
      (e: { code?: string }) => e.code ?? String(e),
    );

  // Player B loads whatever A stored.
  const b = await loader('loader');
  const loaded = await outcome(b.c.call('load', []));
  t.equal(loaded, 'ok null', 'the loader gets nothing (nothing was stored)');
  t.same(b.closes, [], `the loader is not closed (closes: ${b.closes.join(',')})`);

  // A handler that builds the same Error itself.
  const c = await loader('deep');
  const errorsBefore = (await srv.counters()).errors.length;
  t.equal(await outcome(c.c.call('loadDeep', [])), 'INTERNAL', 'a handler returning the deep Error: the caller gets INTERNAL');
  t.same(c.closes, [], `and is not closed (closes: ${c.closes.join(',')})`);
  t.ok((await srv.counters()).errors.length > errorsBefore, 'onError saw why');

  // Other values with no plain msgpack type.
  const d = await loader('giver');
  for (const kind of ['error', 'regexp', 'set', 'map', 'float32array', 'bigint'])
    t.equal(await outcome(d.c.call('give', [kind])), 'INTERNAL', `a handler returning a ${kind}: INTERNAL`);
  t.same(d.closes, [], `the caller is never closed (closes: ${d.closes.join(',')})`);

  const alive = srv.alive;
  const loop = alive ? await srv.loop() : undefined;
  const lat = await good.stop();
  const after = alive ? await srv.memory() : undefined;
  const grew = after ? after.heapUsed - before.heapUsed : Infinity;
  figures(t, '#5 Error cause', { memory: ['heapUsed', grew], loop, good: lat, extra: `store: ${storeCode ?? 'stored'}, load: ${loaded}, closes ${[...b.closes, ...c.closes, ...d.closes].join(',') || 'none'}` });
  t.ok(alive, 'the server stays up');
  t.ok(grew < 32 * MiB, `heap +${(grew / MiB).toFixed(1)} MiB < 32 MiB`);
  t.equal(lat.failures, 0, `the good client's calls all answered (${lat.firstFailure ?? 'ok'})`);
  t.ok(lat.p99Ms < BOUNDS.p99Ms, `the good client's p99 ${lat.p99Ms.toFixed(0)} ms < ${BOUNDS.p99Ms} ms`);
});
