// Generates conformance/vectors.json: msgpack values and their bytes, for checking a
// codec in any language against what Volley's TypeScript side (msgpackr) writes and
// accepts. Run: `npx tsx conformance/vectors.ts` (test/conformance.test.ts checks the
// committed file is what this script writes).
//
// Values are written in a tagged JSON form so every msgpack type is unambiguous, whatever
// the JSON reader does with numbers:
//   {"t":"nil"} {"t":"bool","v":true} {"t":"int","v":123}
//   {"t":"float","v":1.5 | "NaN" | "Infinity" | "-Infinity" | "-0"}
//   {"t":"str","v":"…"} {"t":"bin","v":"<hex>"} {"t":"array","v":[…]} {"t":"map","v":[[key, value], …]}
//   {"t":"timestamp","ms":<ms since epoch, truncated toward zero>,"sec":…,"nsec":…}
// The tag is the msgpack family the bytes hold, not what the number looks like: "int" only
// for an integer format (always within ±(2^53−1), so any JSON reader holds it exactly),
// "float" for float32/float64 even when the value is integral (2.0, 1e300). A float's "v"
// is a JSON number (read it as a double even when it has no fraction: "v":2 is 2.0), or a
// string where JSON has no number for it or readers lose it: NaN, ±Infinity, and the
// negative zero "-0" (JSON.stringify(-0) is "0", and Python reads -0 as the integer 0).
//
// Kinds:
//   "both":    `hex` is what Volley (msgpackr) writes for the value; a decoder must read it
//              back. Where the smallest encoding (what most msgpack libraries write) differs,
//              `canonical` holds it: msgpackr writes every map as map16 (de…) where a fixmap
//              fits, and a timestamp of 2^32 s or more in 96 bits where 64 fit. An encoder
//              must write `hex` or `canonical`; a decoder must read both.
//   "decode":  another valid encoding of the value (non-minimal int, float32): decoders accept it.
//   "invalid": SPEC §2 refuses it (extension other than timestamp, 0xc1, integer outside
//              ±(2^53−1), map key neither str nor int): a message holding it is invalid.

import { writeFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { Packr, Unpackr } from 'msgpackr';

type Tagged =
  | { t: 'nil' }
  | { t: 'bool'; v: boolean }
  | { t: 'int'; v: number }
  | { t: 'float'; v: number | 'NaN' | 'Infinity' | '-Infinity' | '-0' }
  | { t: 'str'; v: string }
  | { t: 'bin'; v: string }
  | { t: 'array'; v: Tagged[] }
  | { t: 'map'; v: [Tagged, Tagged][] }
  | { t: 'timestamp'; ms: number; sec: number; nsec: number };

export interface Vector {
  name: string;
  kind: 'both' | 'decode' | 'invalid';
  hex: string;
  /** "both" only: the smallest encoding, where it differs from what Volley writes (`hex`). */
  canonical?: string;
  value?: Tagged;
  why?: string;
}

const packr = new Packr({ useRecords: false, moreTypes: false });
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/**
 * Bytes of a JS value as Volley writes it: msgpackr's, except that a safe integer past
 * 32 bits is uint64 (0xcf) when positive and int64 (0xd3) when negative, never float64
 * (SPEC §2; what C#, Go and Python packers write too).
 */
function pack(v: unknown): string {
  if (typeof v === 'number' && Number.isSafeInteger(v) && (v > 0xffffffff || v < -0x80000000)) {
    const b = Buffer.alloc(9);
    b[0] = v < 0 ? 0xd3 : 0xcf;
    b.writeBigInt64BE(BigInt(v), 1);
    return hex(b);
  }
  return hex(packr.pack(v));
}

/** A float's "v": a JSON number, or a string where JSON has none or readers lose it. */
function floatV(v: number): number | 'NaN' | 'Infinity' | '-Infinity' | '-0' {
  if (Object.is(v, -0)) return '-0';
  return Number.isFinite(v) ? v : (String(v) as 'NaN' | 'Infinity' | '-Infinity');
}
const float = (v: number): Tagged => ({ t: 'float', v: floatV(v) });

/** Tagged by what Volley writes: a safe integer as an integer format, any other number as float64. */
function tag(v: unknown): Tagged {
  if (v === null || v === undefined) return { t: 'nil' };
  if (typeof v === 'boolean') return { t: 'bool', v };
  if (typeof v === 'number') return Number.isSafeInteger(v) && !Object.is(v, -0) ? { t: 'int', v } : float(v);
  if (typeof v === 'string') return { t: 'str', v };
  if (v instanceof Uint8Array) return { t: 'bin', v: hex(v) };
  if (v instanceof Date) {
    const ms = v.getTime();
    const sec = Math.floor(ms / 1000);
    return { t: 'timestamp', ms, sec, nsec: (ms - sec * 1000) * 1e6 };
  }
  if (Array.isArray(v)) return { t: 'array', v: v.map(tag) };
  return { t: 'map', v: Object.entries(v as object).map(([k, x]) => [tag(k), tag(x)] as [Tagged, Tagged]) };
}

const vectors: Vector[] = [];
const both = (name: string, v: unknown) => {
  const value = tag(v);
  const hex = pack(v);
  const smallest = canonical(value);
  vectors.push(smallest === hex ? { name, kind: 'both', hex, value } : { name, kind: 'both', hex, canonical: smallest, value });
};
const decode = (name: string, h: string, value: Tagged) => vectors.push({ name, kind: 'decode', hex: h, value });
const invalid = (name: string, h: string, why: string) => vectors.push({ name, kind: 'invalid', hex: h, why });

// nil, bool
both('nil', null);
both('true', true);
both('false', false);

// integers: every width boundary, both signs
for (const [name, v] of [
  ['0', 0], ['1', 1], ['positive fixint max 127', 127], ['uint8 128', 128], ['uint8 max 255', 255],
  ['uint16 256', 256], ['uint16 max 65535', 65535], ['uint32 65536', 65536], ['2^31-1', 2 ** 31 - 1],
  ['2^31', 2 ** 31], ['uint32 max 2^32-1', 2 ** 32 - 1], ['2^32 (uint64)', 2 ** 32], ['2^40 (uint64)', 2 ** 40],
  ['1700000000000, a ms timestamp (uint64)', 1_700_000_000_000], ['2^53-1 max safe (uint64)', 2 ** 53 - 1],
  ['-1', -1], ['negative fixint min -32', -32], ['int8 -33', -33], ['int8 min -128', -128], ['int16 -129', -129],
  ['int16 min -32768', -32768], ['int32 -32769', -32769], ['int32 min -2^31', -(2 ** 31)], ['-2^31-1 (int64)', -(2 ** 31) - 1],
  ['-2^40 (int64)', -(2 ** 40)], ['-(2^53-1) min safe (int64)', -(2 ** 53 - 1)],
] as [string, number][])
  both(`int ${name}`, v);

// the same integers written wider than needed: legal msgpack, decoders must accept
decode('int 1 as uint8', 'cc01', { t: 'int', v: 1 });
decode('int 1 as uint16', 'cd0001', { t: 'int', v: 1 });
decode('int 1 as uint32', 'ce00000001', { t: 'int', v: 1 });
decode('int 1 as uint64', 'cf0000000000000001', { t: 'int', v: 1 });
decode('int 1 as int8', 'd001', { t: 'int', v: 1 });
decode('int 1 as int64', 'd30000000000000001', { t: 'int', v: 1 });
decode('int -1 as int64', 'd3ffffffffffffffff', { t: 'int', v: -1 });
decode('int 2^40 as int64', 'd30000010000000000', { t: 'int', v: 2 ** 40 });
decode('int 2^53-1 as int64', 'd3001fffffffffffff', { t: 'int', v: 2 ** 53 - 1 });
decode('int 4294967295 as uint64', 'cf00000000ffffffff', { t: 'int', v: 2 ** 32 - 1 });

// floats: stay floats (a float64 with an integral value is still a float)
for (const [name, v] of [['1.5', 1.5], ['-0.25', -0.25], ['0.1', 0.1], ['1e300', 1e300], ['-1.7976931348623157e308', -Number.MAX_VALUE], ['5e-324 (smallest subnormal)', 5e-324], ['NaN', NaN], ['Infinity', Infinity], ['-Infinity', -Infinity]] as [string, number][])
  both(`float64 ${name}`, v);
// (A JavaScript peer reads both as numbers and writes them back as integers: SPEC §2, "Round trips".)
decode('float64 2.0 (integral value, still a float)', 'cb4000000000000000', float(2));
decode('float64 -0.0', 'cb8000000000000000', float(-0));
decode('float32 1.5', 'ca3fc00000', float(1.5));
decode('float32 0.1 (reads as 0.10000000149011612)', 'ca3dcccccd', float(Math.fround(0.1)));

// strings
for (const [name, v] of [['empty', ''], ['a', 'a'], ['utf-8 héllo', 'héllo'], ['4-byte utf-8 🎮', '🎮'], ['fixstr max 31', 'x'.repeat(31)], ['str8 32', 'x'.repeat(32)], ['str16 256', 'y'.repeat(256)]] as [string, string][])
  both(`str ${name}`, v);
decode('str8 "a" (non-minimal)', 'd90161', { t: 'str', v: 'a' });

// binary
both('bin empty', new Uint8Array(0));
both('bin 3 bytes', Uint8Array.of(1, 2, 3));
both('bin8 all byte values 0..255', Uint8Array.from({ length: 256 }, (_, i) => i));

// arrays
both('array empty', []);
both('array mixed', [1, 'a', null, true, 1.5]);
both('array16 (16 elements)', Array.from({ length: 16 }, (_, i) => i));
both('array nested', [[[]], [1, [2, [3]]]]);
decode('array16 holding 1 element', 'dc000101', { t: 'array', v: [{ t: 'int', v: 1 }] });

// maps
both('map empty', {});
both('map one key', { a: 1 });
both('map nested', { k: [1, { x: null }], s: 'v' });
both('map16 (16 keys)', Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, i])));
decode('map with an int key', '8101a161', { t: 'map', v: [[{ t: 'int', v: 1 }, { t: 'str', v: 'a' }]] });

// timestamps (extension -1), the one extension Volley allows
both('timestamp 32-bit: epoch', new Date(0));
both('timestamp 64-bit: 2021-01-01T00:00:00.123Z', new Date(Date.UTC(2021, 0, 1, 0, 0, 0, 123)));
both('timestamp 96-bit: 2500-01-01', new Date(Date.UTC(2500, 0, 1)));
both('timestamp 96-bit: before the epoch (-1 s)', new Date(-1000));
// Finer than a millisecond: a JavaScript peer keeps whole milliseconds (SPEC §2, "Round trips").
decode('timestamp 64-bit: 1 s + 250 ns', 'd7ff000003e800000001', { t: 'timestamp', ms: 1000, sec: 1, nsec: 250 });
decode('timestamp 96-bit: 1 s + 1 ns', 'c70cff000000010000000000000001', { t: 'timestamp', ms: 1000, sec: 1, nsec: 1 });

// refused
invalid('never-used byte 0xc1', 'c1', '0xc1 is not msgpack');
invalid('fixext1 type 1', 'd40100', 'extension types other than -1 (timestamp) are refused');
invalid('fixext1 type 0 (msgpackr\'s undefined)', 'd40000', 'extension types other than -1 are refused; undefined is written as nil');
invalid('ext8 type 5', 'c7020561 62', 'extension types other than -1 are refused');
invalid('uint64 2^53 (not a safe integer)', 'cf0020000000000000', 'integers outside ±(2^53−1) are refused');
invalid('uint64 max', 'cfffffffffffffffff', 'integers outside ±(2^53−1) are refused');
invalid('int64 -2^53', 'd3ffe0000000000000', 'integers outside ±(2^53−1) are refused');
invalid('int64 min', 'd38000000000000000', 'integers outside ±(2^53−1) are refused');
invalid('map with an array key', '819001', 'map keys are str or int');
invalid('map with a bin key', '81c4016101', 'map keys are str or int');
invalid('truncated str', 'a3616263'.slice(0, 6), 'truncated');
for (const v of vectors) v.hex = v.hex.replace(/ /g, '');

/**
 * The smallest msgpack encoding of a tagged value, written here by hand (not by msgpackr):
 * minimal headers for ints, str, bin, arrays and maps; float64 for floats; the smallest
 * timestamp form that holds the value (32-bit: whole seconds in [0, 2^32); 64-bit: seconds
 * in [0, 2^34); else 96-bit). What msgpack libraries other than msgpackr write.
 */
export function canonical(x: Tagged): string {
  const h = (n: number, bytes: number) => (bytes === 8 ? BigInt.asUintN(64, BigInt(n)).toString(16) : (n >>> 0).toString(16)).padStart(bytes * 2, '0').slice(-bytes * 2);
  const sized = (n: number, small: number, smallMax: number, codes: [string, string, string]) =>
    n <= smallMax ? h(small + n, 1) : n <= 0xff && codes[0] ? codes[0] + h(n, 1) : n <= 0xffff ? codes[1] + h(n, 2) : codes[2] + h(n, 4);
  switch (x.t) {
    case 'nil': return 'c0';
    case 'bool': return x.v ? 'c3' : 'c2';
    case 'int': return intEncodings(x.v)[0]!;
    case 'float': {
      const b = Buffer.alloc(8);
      b.writeDoubleBE(Number(x.v));
      return 'cb' + b.toString('hex');
    }
    case 'str': {
      const bytes = Buffer.from(x.v, 'utf8');
      return sized(bytes.length, 0xa0, 31, ['d9', 'da', 'db']) + bytes.toString('hex');
    }
    case 'bin': return sized(x.v.length / 2, 0, -1, ['c4', 'c5', 'c6']) + x.v;
    case 'array': return sized(x.v.length, 0x90, 15, ['', 'dc', 'dd']) + x.v.map(canonical).join('');
    case 'map': return sized(x.v.length, 0x80, 15, ['', 'de', 'df']) + x.v.map(([k, v]) => canonical(k) + canonical(v)).join('');
    case 'timestamp': {
      const { sec, nsec } = x;
      if (nsec === 0 && sec >= 0 && sec < 2 ** 32) return 'd6ff' + h(sec, 4);
      if (sec >= 0 && sec < 2 ** 34) return 'd7ff' + h(nsec * 4 + Math.floor(sec / 2 ** 32), 4) + h(sec >>> 0, 4);
      return 'c70cff' + h(nsec, 4) + h(sec, 8);
    }
  }
}

/**
 * What a client must put on the wire for the values of the byte cases (SPEC §2): every
 * encoding of the value that is an integer (any width) for integers, float32/float64 for
 * non-integers, nil for absent values. Case id → one accepted-hex list per value.
 */
export function intEncodings(v: number): string[] {
  const out: string[] = [];
  const be = (n: bigint, bytes: number) => {
    const mod = 1n << BigInt(bytes * 8);
    return ((n % mod + mod) % mod).toString(16).padStart(bytes * 2, '0');
  };
  const n = BigInt(v);
  if (v >= 0 && v <= 0x7f) out.push(be(n, 1));
  if (v < 0 && v >= -32) out.push(be(n, 1));
  if (v >= 0) {
    if (v <= 0xff) out.push('cc' + be(n, 1));
    if (v <= 0xffff) out.push('cd' + be(n, 2));
    if (v <= 0xffffffff) out.push('ce' + be(n, 4));
    out.push('cf' + be(n, 8));
  }
  if (v >= -128 && v <= 127) out.push('d0' + be(n, 1));
  if (v >= -32768 && v <= 32767) out.push('d1' + be(n, 2));
  if (v >= -(2 ** 31) && v <= 2 ** 31 - 1) out.push('d2' + be(n, 4));
  out.push('d3' + be(n, 8));
  return out;
}

function floatEncodings(v: number): string[] {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(v);
  const out = ['cb' + b.toString('hex')];
  if (Math.fround(v) === v) {
    const f = Buffer.alloc(4);
    f.writeFloatBE(v);
    out.push('ca' + f.toString('hex'));
  }
  return out;
}

export const wire: Record<string, { value: Tagged; accept: string[] }[]> = {
  '6.2': [2 ** 32, 2 ** 40, 1_700_000_000_000, 2 ** 53 - 1, -(2 ** 31) - 1, -(2 ** 40), -(2 ** 53 - 1), 2 ** 32 - 1].map((v) => ({ value: tag(v), accept: intEncodings(v) })),
  '6.5': [1.5, -0.25, 0.1, 1e300].map((v) => ({ value: float(v), accept: floatEncodings(v) })),
  // [1, absent, nil]: an absent value (JS undefined, C# a missing optional) is nil.
  '6.6': [{ value: { t: 'array', v: [{ t: 'int', v: 1 }, { t: 'nil' }, { t: 'nil' }] }, accept: ['9301c0c0'] }],
};

if (import.meta.url === `file://${process.argv[1]}`) {
  // The hand-written smallest form must read back as the same value msgpackr's bytes hold.
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' } as never);
  for (const v of vectors)
    if (v.canonical && !isDeepStrictEqual(unpackr.unpack(Buffer.from(v.canonical, 'hex')), unpackr.unpack(Buffer.from(v.hex, 'hex'))))
      throw new Error(`${v.name}: canonical ${v.canonical} does not read as ${v.hex}`);
  const file = new URL('./vectors.json', import.meta.url);
  writeFileSync(file, JSON.stringify({ note: 'generated by conformance/vectors.ts from msgpackr; see the header of that file', vectors, wire }, null, 1) + '\n');
  console.log(`wrote ${vectors.length} vectors`);
}
