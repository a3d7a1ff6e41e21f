// Bounded fuzz of the protocol layer (no sockets): decoder, message guard, call engine.
// The longer run is `npm run fuzz` (test/fuzz/long.ts, FUZZ_RUNS).

import t from 'tap';
import fc from 'fast-check';
import { encode, concatFrames } from '../protocol/index.ts';
import { decodeProperty, parseProperty, peerProperty, violationAnswered } from './fuzz/protocolProperties.ts';

// Sized so this file stays well under 15 s on the shared 2-core machine.
const RUNS = { decode: 5000, parse: 5000, peer: 1000 };

const unhandled: unknown[] = [];
const onUnhandled = (r: unknown) => unhandled.push(r);
process.on('unhandledRejection', onUnhandled);
t.teardown(() => process.off('unhandledRejection', onUnhandled));

t.test('decodeFrame throws nothing but ProtocolViolation, and its state survives bad input', async (t) => {
  fc.assert(decodeProperty(), { numRuns: RUNS.decode });
  t.comment(`decodeFrame: ${RUNS.decode} cases`);
  t.pass();
});

t.test('parseMessage throws nothing but ProtocolViolation, and what it accepts has the right shape', async (t) => {
  fc.assert(parseProperty(), { numRuns: RUNS.parse });
  t.comment(`parseMessage: ${RUNS.parse} cases`);
  t.pass();
});

t.test('RpcPeer.receive never throws, leaks no pending call or timer, sends only valid frames', async (t) => {
  await fc.assert(peerProperty(), { numRuns: RUNS.peer });
  t.comment(`RpcPeer.receive: ${RUNS.peer} cases`);
  t.equal(unhandled.length, 0, 'no unhandled rejections');
});

t.test('a request with a readable id: a broken shape is answered PROTOCOL_ERROR before the violation, a limit only refused', async (t) => {
  const cases: [string, Uint8Array, number][] = [
    ['method not a string', encode([0, 5, 42, []]), 5],
    ['empty method', encode([0, 6, '', []]), 6],
    ['params not an array', encode([0, 7, 'echo', { a: 1 }]), 7],
    ['second message of a frame', concatFrames([encode([2, 'n', []]), encode([0, 11, 'echo', 'nope'])]), 11],
  ];
  for (const [what, bytes, id] of cases) {
    const r = violationAnswered(bytes, id);
    t.equal(r.code, 'PROTOCOL_ERROR', `${what}: answered PROTOCOL_ERROR`);
    t.ok(r.violated, `${what}: reported as a violation`);
  }
  // Well-formed but past a limit: that call alone is refused, no violation.
  const limitCases: [string, Uint8Array, number][] = [
    ['method too long', encode([0, 8, 'x'.repeat(9), []]), 8],
    ['too many params', encode([0, 9, 'echo', [1, 2, 3, 4]]), 9],
    ['params too deep', encode([0, 10, 'echo', [[[[1]]]]]), 10],
  ];
  for (const [what, bytes, id] of limitCases) {
    const r = violationAnswered(bytes, id);
    t.equal(r.code, 'INVALID_PARAMS', `${what}: answered INVALID_PARAMS`);
    t.notOk(r.violated, `${what}: not a violation, the connection stays`);
  }
  // An unreadable id can't be answered; still a violation.
  const r = violationAnswered(encode([0, -1, 'echo', []]), -1);
  t.equal(r.code, undefined, 'negative id: no answer');
  t.ok(r.violated, 'negative id: a violation');
});

t.test('hostile keys: "__proto__" arrives renamed, never as a prototype', async (t) => {
  let got: unknown;
  const { RpcPeer } = await import('../protocol/index.ts');
  const peer = new RpcPeer({ send: () => {}, handlers: { take: (_c, v: unknown) => void (got = v) } });
  const bytes = concatFrames([
    Uint8Array.from([0x94, 0x00, 0x01]),
    encode('take'),
    Uint8Array.from([0x91, 0x81]),
    encode('__proto__'),
    encode({ polluted: true }),
  ]);
  peer.receive(bytes);
  const obj = got as Record<string, unknown>;
  t.equal(Object.getPrototypeOf(obj), Object.prototype, 'the object keeps Object.prototype');
  t.equal(obj.polluted, undefined, 'no inherited "polluted"');
  t.same(Object.keys(obj), ['__proto_'], 'msgpackr renames the key');
  t.equal(({} as Record<string, unknown>).polluted, undefined);
  peer.close();
});
