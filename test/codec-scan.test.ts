// The scan over msgpack bytes (protocol/scan.ts) and the codec built on it: every msgpack
// form, every per-message limit, truncation, extension types, 0xc1, the int64 edges
// around 2^53, depth counting; and the encoding rules for what leaves (issue 9 #4 #5,
// issue 10 #5 #6).

import t from 'tap';
import fc from 'fast-check';
import { Unpackr } from 'msgpackr';
import { ScanResult, TruncatedMsgpack, scanMessage, type ScanLimits } from '../protocol/scan.ts';
import { encode, encodeOwned, readFrame, decodeFrame, concatFrames, COST_PER_ELEMENT } from '../protocol/codec.ts';
import { DEFAULT_LIMITS } from '../protocol/limits.ts';
import { ProtocolViolation } from '../protocol/messages.ts';

const NONE: ScanLimits = { maxElements: Infinity, maxDepth: Infinity, maxParams: Infinity, maxMethodLength: Infinity };
const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const bytes = (...b: number[]) => Uint8Array.from(b);
const cat = (...parts: Uint8Array[]) => concatFrames(parts);
const be = (n: number, size: number) => {
  const b = new Uint8Array(size);
  for (let i = size - 1; i >= 0; i--) (b[i] = n % 256), (n = Math.floor(n / 256));
  return b;
};
const plain = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint' } as never);

function scan(b: Uint8Array, limits: ScanLimits = NONE, outgoing = false): ScanResult {
  const r = new ScanResult();
  scanMessage(b, 0, limits, outgoing, r);
  return { ...r };
}

/** `[0, id, method, params]` with params given as raw bytes. */
const request = (id: number, method: string, params: Uint8Array) => cat(bytes(0x94, 0x00), encode(id), encode(method), params);

t.test('every msgpack form: extent and element count', (t) => {
  const forms: [string, Uint8Array, number][] = [
    ['positive fixint', bytes(0x7f), 1],
    ['negative fixint', bytes(0xe0), 1],
    ['nil', bytes(0xc0), 1],
    ['false / true', bytes(0xc2), 1],
    ['true', bytes(0xc3), 1],
    ['uint8', bytes(0xcc, 0xff), 1],
    ['uint16', bytes(0xcd, 0xff, 0xff), 1],
    ['uint32', bytes(0xce, 0xff, 0xff, 0xff, 0xff), 1],
    ['uint64 (safe)', cat(bytes(0xcf), be(2 ** 53 - 1, 8)), 1],
    ['int8', bytes(0xd0, 0x80), 1],
    ['int16', bytes(0xd1, 0x80, 0x00), 1],
    ['int32', bytes(0xd2, 0x80, 0, 0, 0), 1],
    ['int64 (safe)', hex('d3 ffe0000000000001'), 1],
    ['float32', bytes(0xca, 0x3f, 0x80, 0, 0), 1],
    ['float64', bytes(0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0), 1],
    ['fixstr', cat(bytes(0xa3), Buffer.from('abc')), 1],
    ['str8', cat(bytes(0xd9, 40), new Uint8Array(40).fill(0x61)), 1],
    ['str16', cat(bytes(0xda, 0x01, 0x00), new Uint8Array(256).fill(0x61)), 1],
    ['str32', cat(bytes(0xdb, 0, 0, 0, 3), Buffer.from('abc')), 1],
    ['bin8', cat(bytes(0xc4, 3), bytes(0x94, 0x90, 0xc1)), 1], // payload bytes are not looked at
    ['bin16', cat(bytes(0xc5, 0x01, 0x00), new Uint8Array(256).fill(0xc1)), 1],
    ['bin32', cat(bytes(0xc6, 0, 0, 0, 2), bytes(0xd4, 0x01)), 1],
    ['fixarray', bytes(0x93, 1, 2, 3), 4],
    ['array16', cat(bytes(0xdc, 0, 2), bytes(1, 2)), 3],
    ['array32', cat(bytes(0xdd, 0, 0, 0, 2), bytes(1, 2)), 3],
    ['fixmap', cat(bytes(0x81), encode('k'), bytes(1)), 3],
    ['map16 (int key)', cat(bytes(0xde, 0, 1), bytes(0x05, 0xc0)), 3],
    ['map32', cat(bytes(0xdf, 0, 0, 0, 1), encode('k'), bytes(0x90)), 3],
    ['timestamp 32', hex('d6ff 00000001'), 1],
    ['timestamp 64', hex('d7ff 0000000000000001'), 1],
    ['timestamp 96', hex('c70cff 00000000 0000000000000001'), 1],
  ];
  for (const [name, b, elements] of forms) {
    const r = scan(cat(b, bytes(0xc0)));
    t.equal(r.end, b.length, `${name}: ends where msgpack says`);
    t.equal(r.elements, elements, `${name}: ${elements} element(s)`);
    t.equal(r.refused, undefined, `${name}: allowed`);
    t.doesNotThrow(() => decodeFrame(b, 1), `${name}: decodes`);
  }
  t.end();
});

t.test('depth: the params array is level 1, maps count, scalars do not', (t) => {
  t.equal(scan(encode([0, 1, 'm', []])).depth, 1, 'empty params: 1');
  t.equal(scan(encode([0, 1, 'm', [1, 'x', null]])).depth, 1, 'scalar params: 1');
  t.equal(scan(encode([0, 1, 'm', [[1]]])).depth, 2);
  t.equal(scan(encode([0, 1, 'm', [{ a: { b: [] } }]])).depth, 4, 'array > map > map > array');
  t.equal(scan(encode([1, 1, null, 5])).depth, 0, 'scalar result: 0');
  t.equal(scan(encode([1, 1, null, { a: 1 }])).depth, 1, 'map result: 1');
  t.equal(scan(encode([1, 1, { code: 'X', message: 'm', data: [[1]] }, null])).depth, 3, 'error map counts too');
  const limits = { ...NONE, maxDepth: 3 };
  t.equal(scan(encode([0, 1, 'm', [[[1]]]]), limits).refused, undefined, 'depth 3 of 3 passes');
  t.equal(scan(encode([0, 1, 'm', [[[[1]]]]]), limits).refused, 'nested deeper than 3', 'depth 4 of 3 refused');
  t.equal(scan(encode([0, 1, 'm', [[[{}]]]]), limits).refused, 'nested deeper than 3', 'an empty map is a level');
  // 100 000 levels deep: no recursion, no stack to overflow
  const deep = request(4, 'm', cat(new Uint8Array(100_000).fill(0x91), bytes(0xc0)));
  const r = scan(deep, DEFAULT_LIMITS);
  t.match(r, { refused: 'nested deeper than 32', kind: 0, id: 4, end: deep.length });
  t.equal(scan(deep).depth, 100_000, 'without a limit the depth is measured all the way down');
  t.end();
});

t.test('elements: every value counts one, exact at the limit', (t) => {
  const msg = encode([0, 1, 'm', [{ a: [1, 2] }]]); // envelope, 0, id, method, params, map, key, array, 1, 2
  t.equal(scan(msg).elements, 10);
  t.equal(scan(msg, { ...NONE, maxElements: 10 }).refused, undefined, '10 of 10 passes');
  t.equal(scan(msg, { ...NONE, maxElements: 9 }).refused, 'more than 9 values in one message');
  // A million empty arrays (issue 9 #1): refused from the header of the array that holds them
  const amp = request(7, 'm', cat(bytes(0x91, 0xdd), be(1_000_000, 4), new Uint8Array(1_000_000).fill(0x90)));
  const r = scan(amp, DEFAULT_LIMITS);
  t.match(r, { refused: 'more than 100000 values in one message', kind: 0, id: 7, end: amp.length });
  t.ok(r.elements < 100, `refused after ${r.elements} values, without walking them one by one`);
  // The same shape spread over many small arrays is refused as the count passes the limit
  const wide = request(8, 'm', cat(bytes(0x91, 0xdc), be(20_000, 2), ...Array.from({ length: 20_000 }, () => bytes(0x94, 0x90, 0x90, 0x90, 0x90))));
  t.match(scan(wide, DEFAULT_LIMITS), { refused: /more than 100000 values/, id: 8, end: wide.length });
  t.end();
});

t.test('any plain value: extent, values and depth as counted on the decoded value; limits one short refuse', (t) => {
  // The oracle is the value itself, not a second scanner: every value counts one (a map
  // its keys too), and each array or map is a level. Runs of small ints and short strings
  // below the envelope take the scan's fast path, containers and the rest the general one.
  const count = (v: unknown): number =>
    Array.isArray(v) ? 1 + v.reduce((n: number, x) => n + count(x), 0) : v !== null && typeof v === 'object' && !(v instanceof Uint8Array) ? 1 + Object.values(v).reduce((n: number, x) => n + 1 + count(x), 0) : 1;
  const levels = (v: unknown): number =>
    Array.isArray(v) ? 1 + Math.max(0, ...v.map(levels)) : v !== null && typeof v === 'object' && !(v instanceof Uint8Array) ? 1 + Math.max(0, ...Object.values(v).map(levels)) : 0;
  const value = fc.letrec((tie) => ({
    v: fc.oneof(
      { depthSize: 'small' },
      fc.integer({ min: -40, max: 200 }),
      fc.string({ maxLength: 40, size: 'max' }),
      fc.integer(),
      fc.double({ noNaN: true }),
      fc.boolean(),
      fc.constant(null),
      fc.uint8Array({ maxLength: 8 }),
      fc.array(tie('v'), { maxLength: 20, size: 'medium' }),
      fc.dictionary(fc.string({ maxLength: 8 }), tie('v'), { maxKeys: 20 }),
    ),
  }));
  fc.assert(
    fc.property(fc.array(value.v, { maxLength: 6 }), (params) => {
      const msg = encode([0, 9, 'm', params]);
      const r = scan(msg);
      const elements = 4 + count(params);
      const depth = levels(params);
      if (r.end !== msg.length || r.elements !== elements || r.depth !== depth || r.refused !== undefined || r.id !== 9) return false;
      if (scan(msg, { ...NONE, maxElements: elements - 1 }).refused !== `more than ${elements - 1} values in one message`) return false;
      const shallow = scan(msg, { ...NONE, maxDepth: depth - 1 });
      return shallow.refused === `nested deeper than ${depth - 1}` && shallow.end === msg.length;
    }),
    { numRuns: 2000 },
  );
  t.pass('2000 generated params');
  t.end();
});

t.test('params count and method length (in UTF-8 bytes) are read from the envelope', (t) => {
  const limits = { ...NONE, maxParams: 2, maxMethodLength: 4 };
  t.match(scan(encode([0, 3, 'abcd', [1, 2]]), limits), { refused: undefined, kind: 0, id: 3 });
  t.match(scan(encode([0, 3, 'abcd', [1, 2, 3]]), limits), { refused: 'more than 2 params', id: 3 });
  t.match(scan(encode([0, 3, 'abcde', []]), limits), { refused: 'method name longer than 4', id: 3 });
  t.match(scan(encode([0, 3, 'abcé', []]), limits), { refused: 'method name longer than 4' }, 'é is 2 bytes');
  t.match(scan(encode([2, 'abcde', []]), limits), { refused: 'method name longer than 4', kind: 2, id: -1 });
  t.match(scan(encode([2, 'ab', [1, 2, 3]]), limits), { refused: 'more than 2 params', kind: 2 });
  t.match(scan(encode([1, 9, null, [1, 2, 3]]), limits), { refused: undefined, kind: 1, id: 9 }, 'a result has no params limit');
  // ids in any integer encoding: uint64 (C#, Python, Go packers), int8, uint32 max
  t.equal(scan(cat(bytes(0x94, 0x00, 0xcf), be(77, 8), encode('m'), bytes(0x90))).id, 77);
  t.equal(scan(cat(bytes(0x94, 0x00, 0xd0, 0x05), encode('m'), bytes(0x90))).id, 5);
  t.equal(scan(encode([0, 0xffffffff, 'm', []])).id, 0xffffffff);
  t.equal(scan(encode([0, 2 ** 32, 'm', []])).id, -1, 'past uint32: no id');
  t.equal(scan(encode([0, -1, 'm', []])).id, -1);
  t.equal(scan(encode([0, 'x', 'm', []])).id, -1);
  t.equal(scan(encode([2, 5, []])).id, -1, 'a notification has no id');
  t.equal(scan(encode([3, 5, 'm', []])).kind, 3, 'a type a later version adds: any other integer reads 3 (SPEC §11)');
  t.equal(scan(encode([200, 5])).kind, 3, 'type 200');
  t.equal(scan(encode(['x', 5, 'm', []])).kind, -1, 'a type that is not an integer');
  t.end();
});

t.test('extension types, 0xc1 and map keys', (t) => {
  for (let type = -128; type < 128; type++) {
    for (const size of [1, 2, 4, 8, 16]) {
      const fix = cat(bytes([0xd4, 0xd5, 0xd6, 0xd7, 0xd8][Math.log2(size)]!, type & 0xff), new Uint8Array(size));
      const ext8 = cat(bytes(0xc7, size, type & 0xff), new Uint8Array(size));
      const ok = type === -1 && (size === 4 || size === 8);
      for (const b of [fix, ext8]) {
        const r = scan(request(1, 'm', cat(bytes(0x92), b, bytes(0x01))));
        if (ok !== (r.refused === undefined)) t.fail(`ext type ${type} size ${size}: ${r.refused}`);
        if (!ok && r.id !== 1) t.fail('a refused request keeps its id');
      }
    }
  }
  t.pass('only the timestamp (type −1, 4/8/12 bytes) passes, for every type and size');
  t.match(scan(request(1, 'm', cat(bytes(0x91, 0xc9), be(2, 4), bytes(0x05, 0, 0)))), { refused: 'msgpack extension type 5 is not allowed' }, 'ext32');
  t.match(scan(request(1, 'm', cat(bytes(0x91, 0xc8), be(2, 2), bytes(0x65, 0, 0)))), { refused: 'msgpack extension type 101 is not allowed' }, 'ext16 (msgpackr Error)');
  t.match(scan(request(1, 'm', hex('91 d4ffff'))), { refused: 'a timestamp of 1 bytes is not a msgpack timestamp' });
  // A timestamp a Date can't hold (msgpackr would make 1970 of 2^62 s), or nanoseconds past 10^9: refused (kit 6.12).
  const ts96 = (ns: number, hi: number, lo: number) => cat(bytes(0x91, 0xc7, 12, 0xff), be(ns, 4), be(hi >>> 0, 4), be(lo, 4));
  t.match(scan(request(1, 'm', ts96(0, 0x40000000, 0))), { refused: 'a timestamp out of the date range' }, '2^62 s');
  t.match(scan(request(1, 'm', ts96(0, 0xfffff800, 0))), { refused: 'a timestamp out of the date range' }, '-2^43 s');
  t.match(scan(request(1, 'm', ts96(1e9, 0, 5))), { refused: 'a timestamp out of the date range' }, 'nanoseconds 10^9');
  t.match(scan(request(1, 'm', ts96(999_999_999, 2000, 0))), { refused: undefined }, '8.59e12 s: the year 274,000 still fits');
  t.match(scan(request(1, 'm', ts96(0, -1, 0xffffffff))), { refused: undefined }, '-1 s');
  t.match(scan(request(1, 'm', cat(bytes(0x91, 0xd7, 0xff), be(0xfffffffc, 4), be(0, 4)))), { refused: 'a timestamp out of the date range' }, '64-bit, nanoseconds past 10^9');
  t.match(scan(request(2, 'm', bytes(0x92, 0xc1, 0x01))), { refused: 'the byte 0xc1 is not a msgpack value', id: 2 });
  t.match(scan(request(3, 'm', cat(bytes(0x91, 0x81, 0x91, 0x01, 0x02)))), { refused: 'map keys must be strings or integers', id: 3 });
  t.match(scan(request(3, 'm', cat(bytes(0x91, 0x81, 0xc0, 0x02)))), { refused: 'map keys must be strings or integers' }, 'nil key');
  t.match(scan(request(3, 'm', cat(bytes(0x91, 0x81, 0xcb), be(0, 8), bytes(0x02)))), { refused: 'map keys must be strings or integers' }, 'float key');
  t.match(scan(request(3, 'm', cat(bytes(0x91, 0x82, 0x01, 0x81, 0xa1, 0x61, 0x91, 0x02, 0xa1, 0x62, 0x03)))), { refused: undefined }, 'a map as a map value is fine');
  t.end();
});

t.test('int64 / uint64: safe integers pass as numbers, ±2^53 and beyond are refused', (t) => {
  const int64 = (v: bigint) => {
    const b = new Uint8Array(9);
    b[0] = 0xd3;
    new DataView(b.buffer).setBigInt64(1, v);
    return b;
  };
  const uint64 = (v: bigint) => {
    const b = new Uint8Array(9);
    b[0] = 0xcf;
    new DataView(b.buffer).setBigUint64(1, v);
    return b;
  };
  const M = 2n ** 53n - 1n;
  const cases: [string, Uint8Array, boolean][] = [
    ['uint64 2^53−1', uint64(M), true],
    ['uint64 2^53', uint64(M + 1n), false],
    ['uint64 2^64−1', uint64(2n ** 64n - 1n), false],
    ['uint64 0', uint64(0n), true],
    ['int64 2^53−1', int64(M), true],
    ['int64 2^53', int64(M + 1n), false],
    ['int64 −(2^53−1)', int64(-M), true],
    ['int64 −2^53', int64(-M - 1n), false],
    ['int64 −2^53−1', int64(-M - 2n), false],
    ['int64 −2^63', int64(-(2n ** 63n)), false],
    ['int64 −1', int64(-1n), true],
    ['int64 −2^32', int64(-(2n ** 32n)), true],
  ];
  for (const [name, b, ok] of cases) {
    const frame = request(6, 'add', cat(bytes(0x92), b, bytes(0x01)));
    const [m] = readFrame(frame, { ...DEFAULT_LIMITS, maxMessagesPerFrame: 1 });
    if (ok) {
      t.equal(m!.refused, undefined, `${name}: passes`);
      const expected = Number(plain.unpack(b) as bigint);
      t.same((m!.value as unknown[])[3], [expected, 1], `${name}: decoded to the number ${expected}`);
      t.equal(typeof ((m!.value as unknown[])[3] as unknown[])[0], 'number', `${name}: a number, not a BigInt`);
    } else t.match(m, { refused: /beyond/, id: 6, value: undefined }, `${name}: refused, id kept`);
  }
  t.end();
});

t.test('truncated input: every prefix of a valid message throws, nothing else does', (t) => {
  const full = encode([0, 7, 'echo', [{ s: 'x'.repeat(300), b: new Uint8Array(70_000), n: [1, -1, 300, 2 ** 40, 0.5, null, true], d: new Date(1) }]]);
  t.equal(scan(full).end, full.length);
  let wrong = 0;
  for (let cut = 0; cut < full.length; cut += cut < 400 ? 1 : 997) {
    try {
      scan(full.subarray(0, cut));
      wrong++;
    } catch (err) {
      if (!(err instanceof TruncatedMsgpack)) wrong++;
    }
  }
  t.equal(wrong, 0, 'every cut throws TruncatedMsgpack');
  t.throws(() => readFrame(full.subarray(0, 20), DEFAULT_LIMITS), new ProtocolViolation('truncated msgpack frame'));
  // a length field far past the end of the frame
  for (const form of [0xdd, 0xdf, 0xdb, 0xc6, 0xc9])
    t.throws(() => scan(request(2, 'm', bytes(0x91, form, 0xff, 0xff, 0xff, 0xff, 0x01))), TruncatedMsgpack, `0x${form.toString(16)} length past the end`);
  // random bytes: the scan either measures a message or throws TruncatedMsgpack
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (b) => {
      try {
        const r = scan(b, DEFAULT_LIMITS);
        return r.end > 0 && r.end <= b.length;
      } catch (err) {
        return err instanceof TruncatedMsgpack;
      }
    }),
    { numRuns: 5000 },
  );
  t.end();
});

t.test('readFrame: refused messages are skipped by extent, the rest decoded; cost = bytes + 64 × values', (t) => {
  const ok1 = encode([0, 1, 'add', [1, 2]]);
  const bad = request(2, 'add', bytes(0x91, 0xd4, 0x00, 0x00)); // msgpackr's undefined, ext 0
  const ok2 = encode([2, 'note', ['hi']]);
  const msgs = readFrame(cat(ok1, bad, ok2), DEFAULT_LIMITS);
  t.equal(msgs.length, 3);
  t.match(msgs[0], { value: [0, 1, 'add', [1, 2]], refused: undefined, kind: 0, id: 1, cost: ok1.length + COST_PER_ELEMENT * 7 });
  t.match(msgs[1], { value: undefined, refused: 'msgpack extension type 0 is not allowed', kind: 0, id: 2 });
  t.match(msgs[2], { value: [2, 'note', ['hi']], kind: 2, id: -1 });
  t.throws(() => readFrame(cat(ok1, ok1, ok1), { ...DEFAULT_LIMITS, maxMessagesPerFrame: 2 }), new ProtocolViolation('more than 2 messages in one frame'));
  t.throws(() => readFrame(new Uint8Array(0), DEFAULT_LIMITS), new ProtocolViolation('empty frame'));
  t.throws(() => decodeFrame(bad, 1), ProtocolViolation, 'decodeFrame refuses what the scan refuses');
  t.end();
});

t.test('readFrame: one-message frames, small and large, decode to values that share nothing with the frame or each other', (t) => {
  // Small one-message frames are decoded from one reused buffer (codec.ts SMALL): what they
  // decode to must survive the next frame and a change to the bytes it came from.
  for (const size of [1, 100, 2000, 2048, 2049, 5000]) {
    const blob = new Uint8Array(size).fill(0xab);
    const frame = encode([1, 7, null, { blob, text: 'é'.repeat(3), when: new Date(1234), n: -5.5 }]);
    const first = readFrame(frame.slice(), DEFAULT_LIMITS)[0]!;
    const other = encode([1, 8, null, { blob: new Uint8Array(size).fill(0x11), text: 'zzz', when: new Date(99), n: 1 }]);
    const second = readFrame(other, DEFAULT_LIMITS)[0]!;
    frame.fill(0);
    const v = (first.value as unknown[])[3] as { blob: Uint8Array; text: string; when: Date; n: number };
    t.equal(first.id, 7);
    t.ok(v.blob.every((b) => b === 0xab) && v.blob.byteLength === size, `${size}-byte bin intact after another frame`);
    t.same([v.text, v.when.getTime(), v.n], ['ééé', 1234, -5.5]);
    t.equal(((second.value as unknown[])[3] as { text: string }).text, 'zzz');
  }
  // Arrives as an ArrayBuffer (uWebSockets.js), one message, then the next.
  const a = encode([0, 1, 'add', [1, 2]]);
  const b = encode([0, 2, 'add', [3, 4]]);
  const ab = (u: Uint8Array) => new Uint8Array(u).buffer; // a copy of its own (a Buffer slice is a view)
  t.same(readFrame(ab(a), DEFAULT_LIMITS)[0]!.value, [0, 1, 'add', [1, 2]]);
  t.same(readFrame(ab(b), DEFAULT_LIMITS)[0]!.value, [0, 2, 'add', [3, 4]]);
  t.end();
});

t.test('encode: undefined is nil, safe integers past 32 bits are int64/uint64', (t) => {
  t.same(encode(undefined), bytes(0xc0));
  t.same(encode([undefined, { a: undefined }]), cat(bytes(0x92, 0xc0, 0x81), encode('a'), bytes(0xc0)));
  t.same(encode(2 ** 40), cat(bytes(0xcf), be(2 ** 40, 8)));
  t.same(encode(2 ** 53 - 1), hex('cf 001fffffffffffff'));
  t.same(encode(-(2 ** 40)), hex('d3 ffffff0000000000'));
  t.same(encode(-(2 ** 53 - 1)), hex('d3 ffe0000000000001'));
  t.same(encode(-(2 ** 31) - 1), hex('d3 ffffffff7fffffff'));
  t.same(encode(2 ** 32), hex('cf 0000000100000000'));
  t.same(encode(2 ** 32 - 1), hex('ce ffffffff'), 'uint32 stays uint32');
  t.same(encode(2 ** 53), hex('cb 4340000000000000'), '2^53 is not safe: float64');
  t.same(encode(0.5), hex('cb 3fe0000000000000'));
  t.same(encode(1e300), hex('cb 7e37e43c8800759c'));
  for (const v of [2 ** 40 + 1, -(2 ** 45) + 3, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 33 - 7])
    t.equal(decodeFrame(encode([v]), 1)[0]![0 as never], v, `${v} round-trips as a number`);
  t.end();
});

t.test('encode refuses what the receiver would refuse, with a reason', (t) => {
  const deepCause = (n: number): Error => {
    let e = new Error('bottom');
    for (let i = 0; i < n; i++) e = new Error(`level ${i}`, { cause: e });
    return e;
  };
  const cases: [string, unknown, RegExp][] = [
    ['BigInt', 5n, /a BigInt cannot be sent/],
    ['BigInt past 64 bits', 2n ** 70n, /a BigInt cannot be sent/],
    ['Error', new Error('x'), /an Error cannot be sent/],
    ['Error with a 40-deep cause (issue 9 #5)', { saved: deepCause(40) }, /an Error cannot be sent/],
    ['RegExp', /(a+)+$/, /a RegExp cannot be sent/],
    ['Set', new Set([1]), /a Set cannot be sent/],
    ['Map', new Map([['a', 1]]), /a Map cannot be sent/],
    ['Int16Array', new Int16Array(2), /typed array/],
    ['Float64Array', new Float64Array(1), /typed array/],
    ['ArrayBuffer', new ArrayBuffer(2), /an ArrayBuffer cannot be sent/],
    ['DataView', new DataView(new ArrayBuffer(2)), /a DataView cannot be sent/],
    ['function', { f() {} }, /a function cannot be sent/],
    ['symbol', Symbol('s'), /symbol/],
  ];
  for (const [name, v, reason] of cases) t.throws(() => encode([1, 1, null, v]), { code: 'INVALID_PARAMS', message: reason }, name);
  // the receiver's limits, on the encoded bytes
  t.throws(() => encode([0, 1, 'm', [[[[1]]]]], { ...DEFAULT_LIMITS, maxDepth: 3 }), { code: 'INVALID_PARAMS', message: 'nested deeper than 3' });
  t.throws(() => encode([0, 1, 'm', new Array(10).fill(0)], { ...DEFAULT_LIMITS, maxParams: 9 }), { message: 'more than 9 params' });
  t.throws(() => encode([0, 1, 'm', [new Array(100_000).fill(0)]]), { message: 'more than 100000 values in one message' });
  t.end();
});

t.test('encode: Uint8Array and Buffer are bin, also several in one value between rewritten ints', (t) => {
  t.same(encode(new Uint8Array([1, 2, 3])), bytes(0xc4, 3, 1, 2, 3));
  t.same(encode(Buffer.from([1, 2, 3])), bytes(0xc4, 3, 1, 2, 3));
  const big = new Uint8Array(70_000).fill(9);
  const value = [2 ** 40, new Uint8Array([7]), 'x', new Uint8Array(300).fill(1), -(2 ** 40), big, { k: new Uint8Array(0) }, 2 ** 41];
  const b = encode(value);
  t.same(plain.unpack(b), [2n ** 40n, Buffer.from([7]), 'x', Buffer.alloc(300, 1), -(2n ** 40n), Buffer.from(big), { k: Buffer.alloc(0) }, 2n ** 41n], 'ints and bins intact, in place');
  t.equal(b[0], 0x98);
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: -(2 ** 52), max: 2 ** 52 }), fc.string()), { maxLength: 20 }), (arr) => {
      const got = decodeFrame(encode(arr), 1)[0] as unknown[];
      return got.length === arr.length && got.every((v, i) => (v instanceof Uint8Array ? Buffer.from(v).equals(arr[i] as Uint8Array) : v === arr[i]));
    }),
    { numRuns: 300 },
  );
  t.end();
});

t.test('encodeOwned: an exact-size copy that pins no shared buffer (issue 9 #2)', (t) => {
  encode(new Uint8Array(1024 * 1024)); // msgpackr's shared buffer is now a few MiB
  const a = encode([1, 1, null, 'small']);
  const owned = encodeOwned([1, 1, null, 'small']);
  t.ok(a.buffer.byteLength > 1024 * 1024, `encode returns a view into a ${a.buffer.byteLength}-byte buffer`);
  t.equal(owned.buffer.byteLength, owned.byteLength, 'encodeOwned owns exactly its bytes');
  t.equal(owned.byteOffset, 0);
  t.same(owned, a);
  t.end();
});
