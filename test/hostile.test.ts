// Scripted hostile input against a live server, each case with the outcome it must have:
// prototype keys, hostile method names and uids, self-referencing and deep values,
// extension messages with garbage params, errors that must not leak. Random input is
// in fuzz-server.test.ts; these are the cases worth naming.

import t from 'tap';
import { CloseCode, MAX_ID, RpcError, concatFrames, encode } from '../protocol/index.ts';
import { startServer, until } from './helpers.ts';
import { RawSocket } from './fuzz/rawSocket.ts';
import { assertUnpolluted, prototypeSnapshot } from './fuzz/pollution.ts';

type Test = Parameters<Parameters<typeof t.test>[0]>[0];

const before = prototypeSnapshot();
t.afterEach(() => assertUnpolluted(before));

const bytes = (...b: number[]) => Uint8Array.from(b);
const u32 = (n: number) => bytes(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
/** `[0, id, method, ` followed by raw params bytes. */
const request = (id: number, method: string, params: Uint8Array) => concatFrames([bytes(0x94, 0x00), encode(id), encode(method), params]);
/** A one-entry map `{key: value}` written by hand (the encoder would not write "__proto__"). */
const map1 = (key: string, value: unknown) => concatFrames([bytes(0x81), encode(key), encode(value)]);

let seen: unknown[] = [];
const handlers = {
  take: (_c: unknown, v: unknown) => {
    seen.push(v);
    return v;
  },
  boom: () => {
    throw new Error('connection string postgres://admin:hunter2@db');
  },
  cyclic: () => {
    const o: Record<string, unknown> = {};
    o.o = o;
    return o;
  },
  add: (_c: unknown, a: number, b: number) => a + b,
};

async function setup(t: Test, extra: Record<string, unknown> = {}) {
  seen = [];
  const h = await startServer({ handlers, resumeWindowMs: 0, ...extra });
  t.teardown(() => h.close());
  const sockets: RawSocket[] = [];
  const raw = async (uid: string) => {
    const s = await RawSocket.open(h.port, `/?token=u:${encodeURIComponent(uid)}`);
    sockets.push(s);
    return s;
  };
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  return { h, raw };
}

t.test('"__proto__", "constructor", "prototype" keys in params reach the handler as plain data', async (t) => {
  const { h, raw } = await setup(t);
  const s = await raw('proto');
  s.sendBinary(request(1, 'take', concatFrames([bytes(0x91), map1('__proto__', { polluted: true, isAdmin: true })])));
  s.sendBinary(request(2, 'take', concatFrames([bytes(0x91), map1('constructor', { prototype: { polluted: true } })])));
  s.sendBinary(request(3, 'take', concatFrames([bytes(0x91), map1('prototype', { polluted: true })])));
  for (const id of [1, 2, 3]) t.equal((await s.responseOrClose(id))?.response?.[2], null, `call ${id} answered`);
  const [a, b, c] = seen as Record<string, any>[];
  t.equal(Object.getPrototypeOf(a), Object.prototype, '__proto__ key did not replace the prototype');
  t.equal(a!.isAdmin, undefined, 'no inherited isAdmin');
  t.same(Object.keys(a!), ['__proto_'], 'msgpackr renamed the key');
  t.same(b!.constructor, { prototype: { polluted: true } }, '"constructor" is an own data property');
  t.equal(Object.getPrototypeOf(b), Object.prototype);
  t.same(c, { prototype: { polluted: true } });
  t.equal(({} as any).polluted, undefined, 'Object.prototype untouched');
  t.notOk(s.closed, 'the connection stays');
  t.equal(await (await h.client('other')).server.add(1, 2), 3);
});

t.test('method names from Object.prototype or the reserved "$" space are METHOD_NOT_FOUND', async (t) => {
  const { raw } = await setup(t);
  const s = await raw('names');
  const names = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', '$cancel', '$ping', '$session'];
  s.sendBinary(concatFrames(names.map((m, i) => encode([0, i, m, []]))));
  for (const [i, m] of names.entries()) {
    const res = (await s.responseOrClose(i))?.response as [number, number, { code: string }, unknown] | undefined;
    t.equal(res?.[2]?.code, 'METHOD_NOT_FOUND', m);
  }
  t.notOk(s.closed);
});

t.test('uids named like prototype members get ordinary sessions, rooms and calls', async (t) => {
  const { h } = await setup(t);
  const got: string[] = [];
  for (const uid of ['__proto__', 'constructor', 'hasOwnProperty']) {
    const c = await h.client(uid, { handlers: { hello: (_c: unknown, s: string) => (got.push(`${uid}:${s}`), uid) } });
    h.server.join(uid, '__proto__');
    t.equal(await c.server.add(1, 1), 2, `${uid} can call`);
    t.equal(await h.server.call(uid, 'hello', ['hi']), uid, `${uid} can be called`);
  }
  t.same(h.server.members('__proto__').sort(), ['__proto__', 'constructor', 'hasOwnProperty']);
  t.equal(h.server.connectionCount, 3);
  t.same(got, ['__proto__:hi', 'constructor:hi', 'hasOwnProperty:hi']);
});

t.test('a response error map with "__proto__" rejects the call with a plain RpcError', async (t) => {
  const { h, raw } = await setup(t);
  const s = await raw('liar');
  await until(() => h.server.isOnline('liar'));
  const call = h.server.call('liar', 'anything', []);
  const req = (await s.waitFor(() => s.messages.find((m) => Array.isArray(m) && m[0] === 0))) as unknown[];
  s.sendBinary(
    concatFrames([bytes(0x94, 0x01), encode(req[1]), bytes(0x83), encode('code'), encode('X'), encode('__proto__'), encode({ polluted: true }), encode('data'), map1('__proto__', { polluted: true }), bytes(0xc0)]),
  );
  const err = await call.catch((e) => e);
  t.ok(err instanceof RpcError, 'an RpcError');
  t.equal(err.code, 'X');
  t.equal(Object.getPrototypeOf(err), RpcError.prototype, 'its prototype is untouched');
  t.equal(err.polluted, undefined);
  t.same(Object.keys(err.data), ['__proto_']);
  t.notOk(s.closed);
});

t.test('self-referencing params (msgpackr ref/pointer extensions) are refused undecoded', async (t) => {
  const { raw } = await setup(t);
  const s = await raw('cycle');
  // [0, 1, "take", [<id 7>, [<pointer 7>]]]: to msgpackr, params would contain itself.
  s.sendBinary(request(1, 'take', concatFrames([bytes(0x92, 0xd6, 0x69), u32(7), bytes(0x91, 0xd6, 0x70), u32(7)])));
  const got = await s.responseOrClose(1);
  t.same(got?.response?.[2], { code: 'INVALID_PARAMS', message: 'msgpack extension type 105 is not allowed' });
  t.notOk(s.closed, 'the connection stays');
  t.same(seen, [], 'the handler never ran');
});

t.test('nesting past maxDepth is refused, also when hidden inside msgpackr Sets', async (t) => {
  const { raw } = await setup(t, { limits: { maxDepth: 8 } });
  const sets = await raw('sets');
  let nested: Uint8Array = bytes(0xc0);
  for (let i = 0; i < 20; i++) nested = concatFrames([bytes(0xd4, 0x73, 0x00, 0x91), nested]); // Set([...])
  sets.sendBinary(request(4, 'take', concatFrames([bytes(0x91), nested])));
  const got = await sets.responseOrClose(4);
  const err = (got?.response?.[2] ?? {}) as { code?: string; message?: string };
  t.equal(err.code, 'INVALID_PARAMS', 'that call is refused');
  t.equal(err.message, 'msgpack extension type 115 is not allowed', 'a Set is not carried at all');
  // msgpackr's Set is an ext marker *followed by* an array: to msgpack those are two
  // values, so after the refused request the frame goes on with a value that is no message.
  t.equal((await sets.waitClose())?.code, CloseCode.PROTOCOL_ERROR, 'the rest of the frame is not a message: 4002');
  const arrays = await raw('arrays');
  arrays.sendBinary(request(5, 'take', concatFrames([bytes(0x91), new Uint8Array(100_000).fill(0x91), bytes(0xc0)])));
  const deep = await arrays.responseOrClose(5);
  t.same(deep?.response?.[2], { code: 'INVALID_PARAMS', message: 'nested deeper than 8' }, '100,000 levels: refused from the bytes, no stack overflow');
  t.notOk(arrays.closed, 'the connection is kept');
  t.same(seen, [], 'the handler never ran');
});

t.test('extension messages with garbage params are ignored ($ack: closed 4002); ids at the edges', async (t) => {
  const { raw } = await setup(t);
  const s = await raw('ext');
  const junk = [[], [-1], [1.5], [NaN], [Infinity], [2 ** 53], ['x'], [{}], [null], [[1]]];
  // An impossible `$ack` breaks exactly-once (SPEC §5): the connection closes.
  for (const p of junk.slice(1)) {
    const a = await raw('acker');
    a.sendBinary(concatFrames([encode([2, '$ack', [0]]), encode([2, '$ack', p])]));
    t.equal((await a.waitClose())?.code, CloseCode.PROTOCOL_ERROR, `$ack ${JSON.stringify(p)}: 4002`);
  }
  s.sendBinary(concatFrames(junk.map((p) => encode([2, '$cancel', p]))));
  s.sendBinary(concatFrames(junk.map((p) => encode([2, '$session', p]))));
  s.sendBinary(encode([0, MAX_ID, 'add', [2, 3]]));
  s.sendBinary(encode([0, 0, 'add', [4, 5]]));
  t.same((await s.responseOrClose(MAX_ID))?.response, [1, MAX_ID, null, 5], 'id 2^32-1 is served');
  t.same((await s.responseOrClose(0))?.response, [1, 0, null, 9], 'id 0 is served');
  t.notOk(s.closed, 'the connection stays');
});

t.test('errors stay on the server: a thrown Error goes out as INTERNAL with no detail', async (t) => {
  const errors: unknown[] = [];
  const { raw } = await setup(t, { onError: (e: unknown) => errors.push(e) });
  const s = await raw('leak');
  s.sendBinary(concatFrames([encode([0, 1, 'boom', []]), encode([0, 2, 'cyclic', []])]));
  const boom = (await s.responseOrClose(1))?.response as unknown[];
  t.same(boom?.[2], { code: 'INTERNAL', message: 'Internal error' });
  const cyclic = (await s.responseOrClose(2))?.response as unknown[];
  t.match(cyclic?.[2], { code: 'INTERNAL', message: /^result (could not be encoded|nested too deep)$/ }, 'an unencodable result: INTERNAL');
  t.notOk(s.messages.some((m) => JSON.stringify(m).includes('hunter2')), 'the error text never left');
  t.ok(errors.some((e) => String(e).includes('hunter2')), 'onError saw the original');
  t.notOk(s.closed);
});

t.test('a notification flood to unknown methods is charged to the rate limit; past it the flooder is cut 4029', async (t) => {
  const { h, raw } = await setup(t);
  const s = await raw('noisy');
  const good = await h.client('good');
  const frame = concatFrames(Array.from({ length: 256 }, (_, i) => encode([2, `nope${i}`, [i]])));
  for (let i = 0; i < 40; i++) s.sendBinary(frame); // 10,240 notifications: within the burst (20,000)
  s.sendBinary(encode([0, 1, 'add', [1, 1]]));
  t.same((await s.responseOrClose(1, 5000))?.response, [1, 1, null, 2], 'within the burst, the sender is still answered');
  for (let i = 0; i < 200; i++) s.sendBinary(frame); // 51,200 more: 20,000 past the burst are refused in a second
  t.equal((await s.waitClose(10_000))?.code, CloseCode.FLOODED, 'the flooder is closed 4029');
  t.equal(await good.server.add(2, 2), 4);
  // The ws transport reports the close once the close handshake ends (or its 1 s cut).
  await until(() => h.server.stats().connections === 1, 3000, 'the flooder gone');
  t.same(h.server.stats(), { connections: 1, pendingIncoming: 0, pendingOutgoing: 0 });
});

t.test('the rate limit holds against a raw flood of calls', async (t) => {
  const { h, raw } = await setup(t, { rateLimit: { ratePerSec: 1, burst: 50 } }); // ~no refill during the burst
  const s = await raw('flood');
  s.sendBinary(concatFrames(Array.from({ length: 200 }, (_, i) => encode([0, i, 'add', [i, 0]]))));
  await s.waitFor(() => (s.messages.filter((m) => Array.isArray(m) && m[0] === 1).length >= 200 ? true : undefined), 5000);
  const codes = s.messages.filter((m): m is unknown[] => Array.isArray(m) && m[0] === 1).map((m) => (m[2] as { code?: string } | null)?.code ?? 'ok');
  t.equal(codes.filter((c) => c === 'ok').length, 50, 'the burst is served');
  t.equal(codes.filter((c) => c === 'RATE_LIMITED').length, 150, 'the rest RATE_LIMITED');
  t.notOk(s.closed, 'the connection stays');
  t.equal(await (await h.client('calm')).server.add(1, 1), 2, 'another uid is unaffected');
});

t.test('upgrade requests: hostile headers and query keys, missing token, another uid\'s session id', async (t) => {
  let seenReq: { headers: Record<string, string>; query: URLSearchParams } | undefined;
  const h = await startServer({
    handlers,
    resumeWindowMs: 5000,
    authenticate: (req) => {
      seenReq = req;
      return req.token?.startsWith('u:') ? req.token.slice(2) : null;
    },
  });
  t.teardown(() => h.close());
  if (h.server.transport === 'uws') {
    // uWebSockets.js itself drops a request whose header names contain "_": "__proto__" never gets here.
    await t.rejects(RawSocket.open(h.port, '/?token=u:under', 1000, ['__proto__: polluted']), /no answer/, 'a "__proto__" header: dropped by uWebSockets.js');
  } else {
    // node:http leaves it out of req.headers; the upgrade goes on, nothing is polluted.
    const u = await RawSocket.open(h.port, '/?token=u:under', 3000, ['__proto__: polluted']);
    u.destroy();
    t.equal(Object.getPrototypeOf(seenReq?.headers), null, 'headers have no prototype');
    t.notOk(Object.prototype.hasOwnProperty.call(seenReq?.headers, '__proto__'), 'no "__proto__" entry');
    t.equal(({} as Record<string, unknown>).polluted, undefined, 'nothing polluted');
  }
  const s = await RawSocket.open(h.port, '/?token=u:hdr&__proto__[polluted]=1&constructor=x', 3000, ['constructor: x', 'hasOwnProperty: y', 'toString: z']);
  t.teardown(() => s.destroy());
  t.equal(seenReq?.headers['hasownproperty'], 'y', 'a "hasOwnProperty" header is an ordinary entry');
  t.equal(seenReq?.headers['constructor'], 'x');
  t.equal(Object.getPrototypeOf(seenReq?.headers), null, 'headers have no prototype to reach');
  t.equal(seenReq?.query.get('__proto__[polluted]'), '1', 'query keys are plain strings');
  t.equal(seenReq?.query.get('constructor'), 'x');
  s.sendBinary(encode([0, 1, 'add', [1, 2]]));
  t.same((await s.responseOrClose(1))?.response, [1, 1, null, 3], 'served');

  await t.rejects(RawSocket.open(h.port, '/?sid=whatever'), /401/, 'no token: 401, no socket');
  await t.rejects(RawSocket.open(h.port, '/?token=nope'), /401/, 'bad token: 401');

  // A session id is only good with a token for the same uid.
  const alice = await h.client('alice', { reconnect: { initialDelayMs: 50 } });
  h.server.join('alice', 'lobby');
  const sid = alice.sessionId!;
  alice.drop();
  const mallory = await RawSocket.open(h.port, `/?token=u:mallory&sid=${sid}`);
  t.teardown(() => mallory.destroy());
  const session = (await mallory.waitFor(() => mallory.messages.find((m) => Array.isArray(m) && m[1] === '$session'))) as [number, string, [{ sid: string; resumed: boolean }]];
  t.equal(session[2][0].resumed, false, 'mallory gets a fresh session');
  t.not(session[2][0].sid, sid, 'with a new id');
  t.same(h.server.members('lobby'), ['alice'], 'alice\'s rooms untouched');
  await until(() => alice.state === 'open', 3000, 'alice resumes');
  t.equal(alice.sessionId, sid, 'alice resumed her own session');
  t.equal(await alice.server.add(2, 2), 4);
});

t.test('$ack from a hostile peer: impossible counts are violations, and kept messages are capped in bytes', async (t) => {
  const { RpcPeer } = await import('../protocol/index.ts');
  const make = (maxUnackedBytes?: number) => {
    const violations: string[] = [];
    const peer = new RpcPeer({ send: () => {}, handlers: { add: handlers.add, big: () => 'x'.repeat(1000) }, maxUnackedBytes, onViolation: (v) => violations.push(v.message) });
    return { peer, violations };
  };
  for (const [what, n] of [['fractional', 1.5], ['negative', -1], ['past what was sent', 4], ['not a number', 'x']] as const) {
    const { peer, violations } = make();
    peer.receive(encode([2, '$ack', [0]])); // "I acknowledge": replies are kept until acknowledged
    peer.receive(concatFrames([1, 2, 3].map((id) => encode([0, id, 'add', [id, 0]]))));
    t.equal(peer.keptBytes > 0, true, 'three replies kept');
    peer.receive(encode([2, '$ack', [n]]));
    t.equal(violations.length, 1, `${what} $ack: a violation (${violations[0]})`);
    peer.close();
  }
  {
    const { peer, violations } = make();
    peer.receive(encode([2, '$ack', [0]]));
    peer.receive(concatFrames([1, 2, 3].map((id) => encode([0, id, 'add', [id, 0]]))));
    peer.receive(encode([2, '$ack', [2]]));
    peer.receive(encode([2, '$ack', [1]]));
    t.match(violations, [/went back/], 'an $ack that decreases is a violation');
  }
  {
    // One $ack, then silence: the kept bytes are bounded, and past the bound the peer is cut.
    // The cap counts the chunks the copies are in (4 KiB, 8 KiB, 16 KiB…), so the cut
    // comes between half the cap and the cap in messages' own bytes.
    const { peer, violations } = make(20_000);
    peer.receive(encode([2, '$ack', [0]]));
    let replies = 0;
    while (violations.length === 0 && replies < 100) peer.receive(encode([0, replies++, 'big', []]));
    t.match(violations, [/not acknowledging/], 'past maxUnackedBytes: closed as not acknowledging');
    const replyBytes = encode([1, 0, null, 'x'.repeat(1000)]).byteLength;
    t.ok(replies * replyBytes > 10_000 && (replies - 1) * replyBytes <= 20_000, `cut after ${replies} replies of ${replyBytes} bytes (cap 20000)`);
    peer.close();
    t.equal(peer.keptBytes, 0, 'everything freed when the session ends');
  }
  {
    // A plain msgpack-rpc peer (no $ack first): nothing is kept for it.
    const { peer } = make(10_000);
    for (let id = 0; id < 50; id++) peer.receive(encode([0, id, 'big', []]));
    t.equal(peer.keptBytes, 0, 'nothing kept for a peer that does not acknowledge');
  }
});

t.test('0xc1 (msgpackr\'s shared "never used" object) is refused undecoded: it can\'t carry data between connections', async (t) => {
  const seenBy: { uid: string; owner: unknown }[] = [];
  const h = await startServer({
    handlers: {
      claim: (ctx: { uid: string }, p: Record<string, unknown>) => {
        seenBy.push({ uid: ctx.uid, owner: p.owner });
        p.owner = ctx.uid; // a handler that annotates its argument
        return 'ok';
      },
    },
  });
  t.teardown(() => h.close());
  const frame = request(1, 'claim', bytes(0x91, 0xc1));
  for (const uid of ['alice', 'bob']) {
    const s = await RawSocket.open(h.port, `/?token=u:${uid}`);
    t.teardown(() => s.destroy());
    s.sendBinary(frame);
    t.same((await s.responseOrClose(1))?.response?.[2], { code: 'INVALID_PARAMS', message: 'the byte 0xc1 is not a msgpack value' }, `${uid}: refused`);
    t.notOk(s.closed, `${uid}: the connection stays`);
  }
  t.same(seenBy, [], 'no handler ever saw the shared object');
});
