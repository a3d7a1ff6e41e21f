// Each limit in protocol/limits.ts and the per-uid rate limit, over real sockets: what
// trips it, the error the peer sees, and whether the connection stays.

import t from 'tap';
import { CloseCode, DEFAULT_LIMITS, concatFrames, encode } from '../protocol/index.ts';
import { DEFAULT_RATE_LIMIT, RateLimiter } from '../server/index.ts';
import { startServer, until, rejectsCode, sleep } from './helpers.ts';
import { RawSocket } from './fuzz/rawSocket.ts';

const add = (_c: unknown, a: number, b: number) => a + b;
/** A subtest's `t`. */
type Test = Parameters<Parameters<typeof t.test>[0]>[0];

/** A raw socket logged in as `uid`, closed at teardown. */
async function raw(t: Test, port: number, uid: string): Promise<RawSocket> {
  const s = await RawSocket.open(port, `/?token=u:${uid}`);
  t.teardown(() => s.destroy());
  return s;
}


t.test('defaults exist for every limit and each one is configurable', async (t) => {
  const h = await startServer({ handlers: { add } });
  t.teardown(() => h.close());
  t.same(h.server.limits, DEFAULT_LIMITS);
  t.equal(h.server.rateLimiter?.ratePerSec, DEFAULT_RATE_LIMIT.ratePerSec, 'rate limit on by default');
  const custom = { maxMessageBytes: 1000, maxMessagesPerFrame: 2, maxMethodLength: 3, maxParams: 4, maxDepth: 5, maxElements: 8, maxIncomingPending: 6, maxOutgoingPending: 7 };
  const h2 = await startServer({ handlers: { add }, limits: custom, rateLimit: { ratePerSec: 9, burst: 10 } });
  t.teardown(() => h2.close());
  t.same(h2.server.limits, custom);
  t.equal(h2.server.rateLimiter?.burst, 10);
  const h3 = await startServer({ handlers: { add }, rateLimit: false });
  t.teardown(() => h3.close());
  t.equal(h3.server.rateLimiter, undefined, 'rateLimit: false turns it off');
});

t.test('maxMessageBytes: a larger frame drops the socket; the client fails such a call alone', async (t) => {
  const downs: { code: number; reason: string }[] = [];
  const h = await startServer({
    handlers: { add, len: (_c, s: string) => s.length },
    limits: { maxMessageBytes: 4096 },
    onDisconnect: (_u, code, reason) => downs.push({ code, reason }),
  });
  t.teardown(() => h.close());
  const s = await raw(t, h.port, 'big');
  s.sendBinary(encode([0, 1, 'len', ['x'.repeat(5000)]]));
  const close = await s.waitClose();
  t.equal(s.response(1), undefined, 'the call never ran');
  await until(() => downs.length === 1, 2000, 'onDisconnect');
  if (h.server.transport === 'uws') {
    // This uWebSockets.js build does not send a 1009 close frame (as closeCodes.ts says):
    // it cuts the TCP connection, so both sides see 1006; the server's reason says why.
    t.equal(close?.code, 1006, 'socket cut by uWebSockets.js');
    t.same(downs[0], { code: 1006, reason: 'Received too big message' });
  } else {
    t.equal(close?.code, 1009, 'ws closes with 1009 (message too big)');
    t.same(downs[0], { code: 1009, reason: 'Max payload size exceeded' });
  }

  // The client learns the limit from $session and refuses the call locally.
  const c = await h.client('polite');
  const err = await rejectsCode(c.server.len('x'.repeat(5000)), 'INVALID_PARAMS');
  t.match(err.message, /over the 4096-byte limit/);
  t.equal(await c.server.len('x'.repeat(3000)), 3000, 'the connection is kept');
  // Many calls under the limit in one tick are split across frames, not merged into one too big.
  const lens = await Promise.all(Array.from({ length: 20 }, () => c.server.len('y'.repeat(1000))));
  t.same(lens, Array(20).fill(1000), '20 × 1 KB calls in one tick all answered');
  t.equal(c.state, 'open');
});

t.test('maxMessagesPerFrame: more messages in one frame is a protocol violation (4002)', async (t) => {
  const h = await startServer({ handlers: { add }, limits: { maxMessagesPerFrame: 4 } });
  t.teardown(() => h.close());
  const s = await raw(t, h.port, 'many');
  s.sendBinary(concatFrames([1, 2, 3, 4].map((id) => encode([0, id, 'add', [id, 1]]))));
  for (const id of [1, 2, 3, 4]) t.same((await s.responseOrClose(id))?.response, [1, id, null, id + 1], `call ${id} of 4 answered`);
  s.sendBinary(concatFrames([5, 6, 7, 8, 9].map((id) => encode([0, id, 'add', [id, 1]]))));
  const close = await s.waitClose();
  t.equal(close?.code, CloseCode.PROTOCOL_ERROR);
  t.equal(close?.reason, 'more than 4 messages in one frame');
  t.equal(s.response(5), undefined, 'none of the 5 ran');
});

t.test('batched output never exceeds the receiver\'s per-frame limits: 300 calls in one tick, both ways', async (t) => {
  const h = await startServer({ handlers: { add } });
  t.teardown(() => h.close());
  const c = await h.client('burst', { handlers: { twice: (_c: unknown, n: number) => n * 2 } });
  const sums = await Promise.all(Array.from({ length: 300 }, (_, i) => c.server.add(i, 1)));
  t.same(sums, Array.from({ length: 300 }, (_, i) => i + 1), 'client → server: 300 answered');
  const twice = await Promise.all(Array.from({ length: 300 }, (_, i) => h.server.call('burst', 'twice', [i])));
  t.same(twice, Array.from({ length: 300 }, (_, i) => i * 2), 'server → client: 300 answered');
  t.equal(c.state, 'open', 'no protocol error on either side');
});

/** Send `bytes` as request `id`; expect an INVALID_PARAMS answer saying why, and the connection kept. */
async function expectRefusal(t: Test, s: RawSocket, bytes: Uint8Array, id: number, reason: RegExp) {
  s.sendBinary(bytes);
  const got = await s.responseOrClose(id);
  const res = got?.response as [number, number, { code: string; message: string }, unknown] | undefined;
  t.equal(res?.[2]?.code, 'INVALID_PARAMS', 'the request is answered INVALID_PARAMS');
  t.match(res?.[2]?.message, reason, 'with a clear message');
  // The connection is kept: a well-formed call on it is still served.
  s.sendBinary(encode([0, id + 100, 'echo', [1]]));
  t.same((await s.responseOrClose(id + 100))?.response, [1, id + 100, null, [1]], 'and the connection still serves calls');
  t.notOk(s.closed, 'not closed');
}

/** Send `bytes` as request `id`; expect a PROTOCOL_ERROR answer, then a 4002 close with `reason`. */
async function expectViolation(t: Test, s: RawSocket, bytes: Uint8Array, id: number, reason: RegExp) {
  s.sendBinary(bytes);
  const close = await s.waitClose();
  const res = s.response(id) as [number, number, { code: string; message: string }, unknown] | undefined;
  t.equal(res?.[2]?.code, 'PROTOCOL_ERROR', 'the request is answered PROTOCOL_ERROR');
  t.match(res?.[2]?.message, reason, 'with a clear message');
  t.ok(s.messages.indexOf(res) >= 0, 'answer arrived before the close');
  t.equal(close?.code, CloseCode.PROTOCOL_ERROR, 'then closed 4002');
  t.match(close?.reason, reason, 'the close reason says why');
}

t.test('maxMethodLength, maxParams, maxDepth: that call is answered INVALID_PARAMS, the connection stays', async (t) => {
  const h = await startServer({
    handlers: { echo: (_c, ...a: unknown[]) => a, ['m'.repeat(16)]: () => 'ok' },
    limits: { maxMethodLength: 16, maxParams: 3, maxDepth: 4 },
  });
  t.teardown(() => h.close());
  // At each limit: served.
  const ok = await raw(t, h.port, 'ok');
  ok.sendBinary(concatFrames([encode([0, 1, 'm'.repeat(16), []]), encode([0, 2, 'echo', [1, 2, 3]]), encode([0, 3, 'echo', [[[[1]]]]])]));
  t.same((await ok.responseOrClose(1))?.response, [1, 1, null, 'ok'], '16-char method served');
  t.same((await ok.responseOrClose(2))?.response, [1, 2, null, [1, 2, 3]], '3 params served');
  t.same((await ok.responseOrClose(3))?.response, [1, 3, null, [[[[1]]]]], 'params 4 deep served');
  t.notOk(ok.closed);
  // One past each limit: that call refused.
  await expectRefusal(t, await raw(t, h.port, 'a'), encode([0, 7, 'm'.repeat(17), []]), 7, /method name longer than 16/);
  await expectRefusal(t, await raw(t, h.port, 'b'), encode([0, 8, 'echo', [1, 2, 3, 4]]), 8, /more than 3 params/);
  await expectRefusal(t, await raw(t, h.port, 'c'), encode([0, 9, 'echo', [[[[[1]]]]]]), 9, /nested deeper than 4/);
});

t.test('a client reply nested too deep is refused undecoded: that call fails PROTOCOL_ERROR, the socket stays', async (t) => {
  const h = await startServer({ handlers: {}, limits: { maxDepth: 4 }, resumeWindowMs: 0 });
  t.teardown(() => h.close());
  const s = await raw(t, h.port, 'deep');
  await until(() => h.server.isOnline('deep'));
  const call = h.server.call('deep', 'get', []);
  const req = (await s.waitFor(() => s.messages.find((m) => Array.isArray(m) && m[0] === 0))) as unknown[];
  s.sendBinary(encode([1, req[1], null, [[[[[1]]]]]]));
  const err = await rejectsCode(call, 'PROTOCOL_ERROR');
  t.match(err.message, /^response refused: nested deeper than 4$/);
  t.notOk(s.closed, 'the connection stays: the bytes were never decoded');
  t.same(h.server.stats(), { connections: 1, pendingIncoming: 0, pendingOutgoing: 0 });
});

t.test('maxIncomingPending: calls past it are answered OVERLOADED, the connection stays', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let runs = 0;
  const h = await startServer({ handlers: { hold: async (_c, n: number) => (runs++, await gate, n) }, limits: { maxIncomingPending: 3 } });
  t.teardown(() => h.close());
  const c = await h.client('busy');
  const held = [1, 2, 3].map((n) => c.server.hold(n));
  await until(() => runs === 3);
  const err = await rejectsCode(c.server.hold(4), 'OVERLOADED');
  t.match(err.message, /more than 3 calls running/);
  t.equal(h.server.stats().pendingIncoming, 3);
  release();
  t.same(await Promise.all(held), [1, 2, 3], 'the first three complete');
  t.equal(await c.server.hold(5), 5, 'and new calls run again');
  t.equal(runs, 4, 'the refused call never ran');
});

t.test('maxOutgoingPending: calls past it fail fast with OVERLOADED, on the server and on the client', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const h = await startServer({ handlers: { hold: async () => (await gate, 'done') }, limits: { maxOutgoingPending: 2 } });
  t.teardown(() => h.close());
  const c = await h.client('slow', { handlers: { wait: async () => (await gate, 'ok') }, limits: { maxOutgoingPending: 2 } });
  const pending = [h.server.call('slow', 'wait', []), h.server.call('slow', 'wait', [])];
  let err = await rejectsCode(h.server.call('slow', 'wait', []), 'OVERLOADED');
  t.match(err.message, /more than 2 calls pending/, 'server → client refused at once');
  const mine = [c.server.hold(), c.server.hold()];
  err = await rejectsCode(c.server.hold(), 'OVERLOADED');
  t.match(err.message, /more than 2 calls pending/, 'client → server refused at once');
  release();
  t.same(await Promise.all([...pending, ...mine]), ['ok', 'ok', 'done', 'done']);
  t.same(h.server.stats(), { connections: 1, pendingIncoming: 0, pendingOutgoing: 0 });
});

t.test('protocol violations close 4002 with a reason; a readable id is answered first', async (t) => {
  const downs: number[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  t.teardown(() => release());
  const h = await startServer({ handlers: { add, hold: async () => gate }, resumeWindowMs: 0, onDisconnect: (_u, code) => downs.push(code) });
  t.teardown(() => h.close());
  const cases: [string, (s: RawSocket) => void, RegExp][] = [
    ['truncated msgpack', (s) => s.sendBinary(Uint8Array.from([0x92, 0x01])), /^truncated msgpack frame$/],
    ['not msgpack', (s) => s.sendBinary(Uint8Array.from([0xd6, 0x70, 0, 0, 0, 1])), /^msgpack extension type 112 is not allowed$/],
    ['not an array', (s) => s.sendBinary(encode({ a: 1 })), /^message must be an array$/],
    ['type not an integer', (s) => s.sendBinary(encode(['x', 1, 'add', []])), /^unknown message type$/],
    ['bad id', (s) => s.sendBinary(encode([0, -5, 'add', [1, 2]])), /^request id must be a uint32$/],
    ['float id', (s) => s.sendBinary(encode([0, 1.5, 'add', [1, 2]])), /^request id must be a uint32$/],
    ['huge id', (s) => s.sendBinary(encode([0, 2 ** 40, 'add', [1, 2]])), /^request id must be a uint32$/],
    ['wrong length', (s) => s.sendBinary(encode([0, 1, 'add'])), /^request must have 4 elements$/],
    ['empty frame', (s) => s.sendBinary(new Uint8Array(0)), /^empty frame$/],
    ['text frame', (s) => s.sendText('[0,1,"add",[1,2]]'), /^text frames are not part of the protocol$/],
    ['duplicate pending id', (s) => s.sendBinary(concatFrames([encode([0, 3, 'hold', []]), encode([0, 3, 'hold', []])])), /^request id 3 is already pending$/],
  ];
  for (const [i, [what, send, reason]] of cases.entries()) {
    const s = await raw(t, h.port, `v${i}`);
    send(s);
    const close = await s.waitClose();
    t.equal(close?.code, CloseCode.PROTOCOL_ERROR, `${what}: 4002`);
    t.match(close?.reason, reason, `${what}: reason "${close?.reason}"`);
  }
  await until(() => downs.length === cases.length, 2000, 'every close reported');
  t.ok(downs.every((c) => c === 4002), 'onDisconnect saw 4002 each time');
  // The shape is wrong but the id readable: the caller learns why before the close.
  await expectViolation(t, await raw(t, h.port, 'shape'), encode([0, 12, 'add', 'not-an-array']), 12, /params must be an array/);
  // The session ended with each close: no state or running call left behind.
  await until(() => h.server.stats().connections === 0, 2000, 'sessions ended');
  t.same(h.server.stats(), { connections: 0, pendingIncoming: 0, pendingOutgoing: 0 });
});

t.test('rate limit: a per-uid token bucket answers RATE_LIMITED and keeps the connection', async (t) => {
  let runs = 0;
  const h = await startServer({ handlers: { add: (_c, a: number, b: number) => (runs++, a + b) }, rateLimit: { ratePerSec: 20, burst: 5 } });
  t.teardown(() => h.close());
  const c = await h.client('flood');
  const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => c.server.add(i, 0)));
  const ok = results.filter((r) => r.status === 'fulfilled');
  const limited = results.filter((r) => r.status === 'rejected' && (r.reason as { code: string }).code === 'RATE_LIMITED');
  t.equal(ok.length, 5, 'the burst is served');
  t.equal(limited.length, 3, 'the rest answered RATE_LIMITED');
  t.equal(runs, 5, 'refused calls never reached the handler');
  const reason = (limited[0] as PromiseRejectedResult).reason as { message: string; data: { retryAfterMs: number } };
  t.match(reason.message, /more than 20 calls\/s \(burst 5\)/);
  t.ok(reason.data.retryAfterMs > 0 && reason.data.retryAfterMs <= 50, `retryAfterMs ${reason.data.retryAfterMs}`);
  t.equal(c.state, 'open', 'the connection stays');
  await sleep(120); // 20/s: at least two tokens back
  t.equal(await c.server.add(1, 1), 2, 'served again once tokens refill');

});

t.test('rate limit: the bucket belongs to the uid, a new connection does not refill it', async (t) => {
  // 1 call/s: the refill can't race the reconnect (at 20/s one token is back within 50 ms).
  const h = await startServer({ handlers: { add: (_c, a: number, b: number) => a + b }, rateLimit: { ratePerSec: 1, burst: 3 } });
  t.teardown(() => h.close());
  const c = await h.client('flood');
  await Promise.allSettled(Array.from({ length: 10 }, () => c.server.add(0, 0)));
  c.close();
  const again = await h.client('flood');
  await rejectsCode(again.server.add(0, 0), 'RATE_LIMITED');
  const other = await h.client('calm');
  t.equal(await other.server.add(2, 2), 4, 'another uid has its own bucket');
});

t.test('RateLimiter: refill arithmetic and idle buckets swept', async (t) => {
  let now = 0;
  const rl = new RateLimiter({ ratePerSec: 10, burst: 2 }, () => now);
  t.equal(rl.take('a'), undefined);
  t.equal(rl.take('a'), undefined);
  t.equal(rl.take('a')?.code, 'RATE_LIMITED', 'burst of 2 used up');
  now += 50;
  t.equal(rl.take('a')?.code, 'RATE_LIMITED', 'half a token after 50 ms');
  now += 50;
  t.equal(rl.take('a'), undefined, 'one token after 100 ms');
  now += 10_000;
  t.equal(rl.take('a'), undefined);
  t.equal(rl.take('a'), undefined);
  t.equal(rl.take('a')?.code, 'RATE_LIMITED', 'refill is capped at the burst');
  // 5,000 uids call once and go idle; the sweep forgets them once they would be full again.
  for (let i = 0; i < 5000; i++) rl.take(`u${i}`);
  t.ok(rl.size >= 4096, `${rl.size} buckets while they are fresh`);
  now += 1000;
  for (let i = 0; i < 4096; i++) rl.take('b');
  t.ok(rl.size <= 2, `${rl.size} bucket(s) left after the sweep`);
  t.throws(() => new RateLimiter({ ratePerSec: 0 }), RangeError);
});
