// fast-check arbitraries for hostile Volley input: values, ids, messages and whole frames,
// from well-formed to garbage. Shared by the bounded fuzz tests and the long runner.
//
// Frames are built three ways: encoded with the protocol's own encoder (what a buggy
// client sends), bytes written by hand (what the encoder would never produce: "__proto__"
// map keys, msgpackr extension types, declared lengths far past the end), and random
// bytes. Each fast-check shrink then points at the smallest frame that broke a property.

import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { encode, concatFrames, MAX_ID } from '../../protocol/index.ts';

/**
 * What a hostile client encodes with: plain msgpackr, no limits, BigInt as int64/uint64,
 * undefined as ext 0, Set/Error/RegExp as arrays (the ext forms are hand-built below).
 * The protocol's own encode refuses such values; it is used where an honest sender is meant.
 */
const hostilePackr = new Packr({ useRecords: false, moreTypes: false });
const NO_LIMITS = { maxElements: Infinity, maxDepth: Infinity, maxParams: Infinity, maxMethodLength: Infinity };

/** Keys that reach prototypes when code copies objects carelessly. */
export const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', 'polluted', 'toString', 'hasOwnProperty', 'then', '__defineGetter__'];

/** Methods the fuzz servers/peers register, plus names that probe the handler lookup. */
export const KNOWN_METHODS = ['echo', 'add', 'hang', 'boom', 'coded', 'unencodable', 'callback'];
export const HOSTILE_METHODS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '$cancel', '$ack', '$ping', '$session', '$', '', 'x'.repeat(129)];

const key = fc.oneof({ weight: 2, arbitrary: fc.constantFrom(...HOSTILE_KEYS) }, { weight: 3, arbitrary: fc.string({ maxLength: 8 }) });

/** JSON-ish values with hostile keys; nesting up to 6 levels. */
export const hostileValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.oneof(
      fc.integer(),
      fc.double(),
      fc.string({ maxLength: 16 }),
      fc.boolean(),
      fc.constant(null),
      fc.uint8Array({ maxLength: 16 }),
      fc.constantFrom(2 ** 32, 2 ** 53, -1, -(2 ** 63), 1.5, Number.NaN, Infinity, -0),
    ),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(key, tie('value'), { maxKeys: 4 }),
  ),
})).value;

/** Anything fast-check can build, plus the hostile values above. */
export const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  hostileValue,
  fc.anything({ maxDepth: 4, withBigInt: true, withTypedArray: true, withDate: true, withMap: true, withSet: true, withNullPrototype: true, withSparseArray: true }),
);

/** Call ids: valid uint32s, and the ones a decoder must refuse. */
export const anyId: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 1000 }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: MAX_ID }) },
  { weight: 3, arbitrary: fc.constantFrom(MAX_ID, MAX_ID + 1, 2 ** 53, -1, -(2 ** 31), 0.5, 1.5, Number.NaN, Infinity, -Infinity, -0, '1', null, true) },
  { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }) },
);

const method = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...KNOWN_METHODS) },
  { weight: 2, arbitrary: fc.constantFrom(...HOSTILE_METHODS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: anyValue },
);

const params = fc.oneof(
  { weight: 4, arbitrary: fc.array(hostileValue, { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.array(fc.integer(), { minLength: 30, maxLength: 40 }) },
  { weight: 1, arbitrary: anyValue },
);

const wireError = fc.oneof(
  fc.constant(null),
  fc.record({ code: fc.string({ maxLength: 12 }), message: fc.string({ maxLength: 12 }) }),
  fc.dictionary(key, hostileValue, { maxKeys: 4 }),
  anyValue,
);

/** msgpack-rpc messages, mostly well-formed, some with one slot wrong. */
export const message: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.constant(0), anyId, method, params) },
  { weight: 2, arbitrary: fc.tuple(fc.constant(1), anyId, wireError, hostileValue) },
  { weight: 2, arbitrary: fc.tuple(fc.constant(2), method, params) },
  { weight: 1, arbitrary: fc.tuple(fc.constant(2), fc.constantFrom('$cancel', '$ack', '$ping', '$session'), fc.array(fc.oneof(anyId, hostileValue), { maxLength: 2 })) },
  { weight: 1, arbitrary: fc.array(fc.oneof(fc.constantFrom(0, 1, 2, 3, -1), anyValue), { maxLength: 6 }) },
  { weight: 1, arbitrary: anyValue },
);

/** Encode as a hostile client would, or null when msgpackr refuses the value (e.g. a symbol). */
export function tryEncode(value: unknown): Uint8Array | null {
  try {
    return hostilePackr.pack(value);
  } catch {
    return null;
  }
}

const encodedMessage = message.map((m) => tryEncode(m) ?? encode(null));

const bytes = (...b: number[]) => Uint8Array.from(b);
const cat = (...parts: Uint8Array[]) => concatFrames(parts);
const u32 = (n: number) => bytes(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);

/** Request header `[0, id, method,` — params follow as raw bytes. */
const requestHead = (id: number, m: string) => cat(bytes(0x94, 0x00), encode(id), encode(m));

/** Hand-written msgpack the encoder never produces. Each is a whole frame. */
export const handBuilt: fc.Arbitrary<Uint8Array> = fc.oneof(
  // {"__proto__": {...}} and {"constructor": {"prototype": {...}}} inside params
  fc.tuple(fc.integer({ min: 0, max: 50 }), fc.constantFrom('__proto__', 'constructor', 'prototype')).map(([id, k]) =>
    cat(requestHead(id, 'echo'), bytes(0x91, 0x81), encode(k), encode({ polluted: true, prototype: { polluted: true } })),
  ),
  // the same key at the top of an error map in a response
  fc.integer({ min: 0, max: 50 }).map((id) =>
    cat(bytes(0x94, 0x01), encode(id), bytes(0x82), encode('code'), encode('X'), encode('__proto__'), encode({ polluted: true }), bytes(0xc0)),
  ),
  // nesting far past maxDepth (arrays or maps), as params and bare
  fc.tuple(fc.integer({ min: 1, max: 5000 }), fc.boolean(), fc.boolean()).map(([n, maps, inCall]) => {
    const open = maps ? cat(bytes(0x81), encode('a')) : bytes(0x91);
    const nested = cat(...Array.from({ length: n }, () => open), bytes(0xc0));
    return inCall ? cat(requestHead(1, 'echo'), bytes(0x91), nested) : nested;
  }),
  // declared lengths far past the end of the frame (array32, map32, str32, bin32, ext32)
  fc.constantFrom(0xdd, 0xdf, 0xdb, 0xc6, 0xc9).map((t) => cat(requestHead(2, 'echo'), bytes(0x91, t, 0xff, 0xff, 0xff, 0xff, 0x01))),
  // msgpackr extension types: Error, ref/pointer (cycles), Set, RegExp, typed array, bundle, date, bigint, record
  fc.tuple(
    fc.constantFrom(0x65, 0x69, 0x70, 0x73, 0x78, 0x74, 0x62, 0xff, 0x42, 0x72, 0x00, 0x01, 0x7f, 0x80),
    fc.uint8Array({ minLength: 1, maxLength: 16 }),
    fc.boolean(),
  ).map(([type, data, fixed]) => {
    const ext = fixed && [1, 2, 4, 8, 16].includes(data.length)
      ? cat(bytes([0xd4, 0xd5, 0xd6, 0xd7, 0xd8][Math.log2(data.length)]!, type), data)
      : cat(bytes(0xc7, data.length, type), data);
    return cat(requestHead(3, 'echo'), bytes(0x92), ext, encode(['x', 'y']));
  }),
  // a params array that contains itself (msgpackr's structured-clone ref + pointer)
  fc.integer({ min: 0, max: 50 }).map((id) =>
    cat(requestHead(id, 'echo'), bytes(0xd6, 0x69), u32(7), bytes(0x91, 0xd6, 0x70), u32(7)),
  ),
  // a Set that contains itself: it has no enumerable keys, so a depth check can't see it
  fc.integer({ min: 0, max: 50 }).map((id) =>
    cat(requestHead(id, 'echo'), bytes(0x91, 0xd6, 0x69), u32(9), bytes(0xd4, 0x73, 0x00, 0x91, 0xd6, 0x70), u32(9)),
  ),
  // a pointer to an id that was never defined
  fc.integer({ min: 0, max: 50 }).map((id) => cat(requestHead(id, 'echo'), bytes(0x91, 0xd6, 0x70), u32(12345))),
  // 0xc1, the byte msgpack never uses
  fc.integer({ min: 0, max: 50 }).map((id) => cat(requestHead(id, 'echo'), bytes(0x91, 0xc1))),
  ...amplification(),
  // many tiny messages in one frame (past maxMessagesPerFrame)
  fc.integer({ min: 1, max: 2000 }).map((n) => new Uint8Array(n).fill(0x01)),
  // float64 and negative ids written directly
  fc.constantFrom(
    cat(bytes(0x94, 0x00, 0xcb), new Uint8Array(new Float64Array([1.5]).buffer).reverse(), encode('echo'), bytes(0x90)),
    cat(bytes(0x94, 0x00, 0xd2), u32(0xffffffff), encode('echo'), bytes(0x90)),
    cat(bytes(0x94, 0x00, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), encode('echo'), bytes(0x90)),
  ),
);

/** Only the amplification shapes below (for the long run's own step). */
export const amplificationFrame: fc.Arbitrary<Uint8Array> = fc.oneof(...amplification());

/**
 * Decode amplification (issue 9 #1): few bytes, many values. Empty arrays/maps side by
 * side or nested, as params, as a response's result and bare; int64/uint64 around ±2^53
 * (ids too); every ext type in every ext form. A decoder that materialises these before
 * checking them spends ~40 bytes of heap per byte.
 */
function amplification(): fc.Arbitrary<Uint8Array>[] {
  const empties = (n: number, map: boolean) => new Uint8Array(n).fill(map ? 0x80 : 0x90);
  const arrayOf = (n: number) => (n < 16 ? bytes(0x90 | n) : n < 65536 ? cat(bytes(0xdc), be(n, 2)) : cat(bytes(0xdd), be(n, 4)));
  const int64 = (v: bigint, unsigned: boolean) => {
    const b = new Uint8Array(9);
    b[0] = unsigned ? 0xcf : 0xd3;
    if (unsigned) new DataView(b.buffer).setBigUint64(1, BigInt.asUintN(64, v));
    else new DataView(b.buffer).setBigInt64(1, BigInt.asIntN(64, v));
    return b;
  };
  const edge = fc.constantFrom(0n, 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 64n - 1n, -1n, -(2n ** 53n) + 1n, -(2n ** 53n), -(2n ** 63n));
  return [
    // wide: n empty containers in one array, as params / as a result / bare
    fc.tuple(fc.integer({ min: 1, max: 200_000 }), fc.boolean(), fc.constantFrom('params', 'result', 'bare'), fc.integer({ min: 0, max: 50 })).map(([n, map, where, id]) => {
      const body = cat(arrayOf(n), empties(n, map));
      if (where === 'params') return cat(requestHead(id, 'echo'), bytes(0x91), body);
      if (where === 'result') return cat(bytes(0x94, 0x01), encode(id), bytes(0xc0), body);
      return body;
    }),
    // an array header claiming more values than the frame holds, filled with empty arrays
    fc.integer({ min: 1, max: 100_000 }).map((n) => cat(requestHead(1, 'echo'), bytes(0x91), arrayOf(n + 1), empties(n, false))),
    // deep and wide: k levels each holding m empty arrays
    fc.tuple(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 2000 })).map(([k, m]) => {
      let v: Uint8Array = empties(1, false);
      for (let i = 0; i < k; i++) v = cat(arrayOf(m + 1), v, empties(m, i % 2 === 1));
      return cat(requestHead(2, 'echo'), bytes(0x91), v);
    }),
    // big integers as a param, as the id, as a map key
    fc.tuple(edge, fc.boolean(), fc.constantFrom('param', 'id', 'key')).map(([v, unsigned, where]) => {
      const n = int64(v, unsigned);
      if (where === 'id') return cat(bytes(0x94, 0x00), n, encode('add'), bytes(0x92, 0x01, 0x02));
      if (where === 'key') return cat(requestHead(3, 'echo'), bytes(0x91, 0x81), n, bytes(0x01));
      return cat(requestHead(3, 'add'), bytes(0x92), n, bytes(0x01));
    }),
    // every ext type in every form (fixext 1..16, ext 8/16/32), timestamps of every size
    fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 20 })).map(([type, form, size]) => {
      const fixed = [1, 2, 4, 8, 16];
      const ext =
        form < 5
          ? cat(bytes(0xd4 + form, type), new Uint8Array(fixed[form]!))
          : cat(bytes(0xc7 + form - 5), be(size, [1, 2, 4][form - 5]!), bytes(type), new Uint8Array(size));
      return cat(requestHead(4, 'echo'), bytes(0x91), ext);
    }),
  ];
}

function be(n: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = size - 1; i >= 0; i--) (b[i] = n % 256), (n = Math.floor(n / 256));
  return b;
}

/** One frame: encoded messages (possibly several), cut or bit-flipped, hand-built, or random bytes. */
export const frame: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 5, arbitrary: fc.array(encodedMessage, { minLength: 1, maxLength: 4 }).map((parts) => concatFrames(parts)) },
  {
    weight: 2,
    arbitrary: fc.tuple(encodedMessage, fc.nat()).map(([m, cut]) => (m.length > 1 ? m.subarray(0, 1 + (cut % (m.length - 1))) : m)),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(encodedMessage, fc.nat(), fc.integer({ min: 1, max: 255 })).map(([m, at, x]) => {
      const copy = Uint8Array.from(m);
      copy[at % copy.length]! ^= x;
      return copy;
    }),
  },
  { weight: 3, arbitrary: handBuilt },
  { weight: 2, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }) },
);

const validMethod = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...KNOWN_METHODS) },
  { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_METHODS.filter((m) => m.length > 0 && m.length <= 128)) },
  { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 20 }) },
);
const validParams = fc.array(hostileValue, { maxLength: 4 });
const smallId = fc.integer({ min: 0, max: 100_000 });

/** Messages that pass the guard: calls, notifications, cancels and stray responses, hostile values inside. */
export const validMessage: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(fc.constant(0), smallId, validMethod, validParams) },
  { weight: 2, arbitrary: fc.tuple(fc.constant(2), validMethod, validParams) },
  { weight: 1, arbitrary: fc.tuple(fc.constant(2), fc.constant('$cancel'), fc.tuple(smallId)) },
  { weight: 1, arbitrary: fc.tuple(fc.constant(2), fc.constant('$ack'), fc.tuple(fc.oneof(fc.nat(), fc.double()))) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constant(1), smallId, fc.option(fc.record({ code: fc.string({ maxLength: 8 }), message: fc.string({ maxLength: 8 }) }), { nil: null }), hostileValue),
  },
);

/** A frame of 1-4 well-formed messages (what a buggy-but-honest client sends). */
export const wellFormedFrame: fc.Arbitrary<Uint8Array> = fc
  .array(
    validMessage.map((m) => {
      try {
        return encode(m, NO_LIMITS);
      } catch {
        return encode([2, 'x', []]);
      }
    }),
    { minLength: 1, maxLength: 4 },
  )
  .map((parts) => concatFrames(parts));
