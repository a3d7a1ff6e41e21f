// A pass over msgpack bytes that measures one message before anything is decoded.
//
// Decoding is where a hostile message costs: 1 MiB of 0x90 bytes (a million empty
// arrays) decodes to ~40 MiB of heap. The scan reads headers only (strings, bin and ext
// payloads are skipped by their length) and allocates nothing per value, so it can refuse
// such a message from its bytes: too many values, too deep, a type Volley does not carry
// (ext types other than the timestamp, 0xc1), an integer past ±(2^53−1). Because it knows
// where the message ends it can refuse that one message and go on with the frame, and for
// a request it has read the id to answer with.
//
// The same scan runs over what this side encodes (`outgoing`), so nothing leaves that the
// receiver would refuse: there it also turns msgpackr's float64 for a safe integer past 32
// bits into int64/uint64, and a plain Uint8Array msgpackr marked as a typed-array ext back
// into bin (see codec.ts for why msgpackr is asked to mark them).
//
// Depth: the envelope array is level 0; its elements (the params array, a response's
// result or error) are level 1 if they are arrays or maps; each nested array/map adds one.
// Elements: every msgpack value counts one (the envelope, map keys, each scalar).
//
// Cost: the bench's ~1 KB game object (955 B, 341 values, 63 arrays and maps) scans in
// about an eighth of msgpackr's time to decode it (1.1–1.4 µs against ~9 µs on this
// 2-core VM); [0, 7, "add", [1, 2]] in ~40 ns. Most values in a game's messages are small
// integers and short strings, which need no check below the envelope: the scan reads runs
// of them in a tight loop (that halved the 1 KB figure). The usual envelopes are read in
// straight-line code (scanMessage): ~65 -> ~40 ns for that request, and a small call's
// server 22,028 -> 20,773 instructions in callgrind (two scans a call). 1 MiB of 0x90 in
// one array is refused at its header.

/** Limits the scan enforces per message. */
export interface ScanLimits {
  /** Most msgpack values in one message. */
  maxElements: number;
  /** Deepest array/map nesting below the envelope (the params array is level 1). */
  maxDepth: number;
  /** Most params in a request or notification. */
  maxParams: number;
  /** Longest method name, in UTF-8 bytes. */
  maxMethodLength: number;
}

/** What the scan found in one message. One object is reused: copy what you keep. */
export class ScanResult {
  /** Offset just past the message (after any outgoing rewrite shortened it). */
  end = 0;
  /** msgpack values counted (stops counting once the message is refused). */
  elements = 0;
  /** Deepest nesting level reached below the envelope. */
  depth = 0;
  /** The envelope's message type (0 request, 1 response, 2 notification, 3 any other integer), or -1. */
  kind = -1;
  /** A request's or response's id when it is an integer in 0..2^32−1, else -1. */
  id = -1;
  /** The first rule the message breaks, or undefined. */
  refused: string | undefined = undefined;
}

/** Thrown for bytes that are not msgpack at all (truncated): the frame is lost, not one message. */
export class TruncatedMsgpack extends Error {
  /** Always 'TruncatedMsgpack'. */
  override name = 'TruncatedMsgpack';
}

/** Largest integer a double holds exactly: ids, counts and timestamps must stay within it. */
const MAX_SAFE_HI = 0x1fffff; // high 32 bits of 2^53 − 1
const TWO32 = 4294967296;
const MAX_ID = 0xffffffff;

// Open containers around the innermost: the values each still had to read when the next
// one opened, and whether it is a map (so the scan knows which values are keys). Grown on
// demand, never shrunk. (Float64: V8 keeps the counts as doubles; measured faster.)
let lefts = new Float64Array(64);
let maps = new Uint8Array(64);
// Scratch for reading a float64 without a DataView per message.
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const NO_VALUE = Number.NaN;

// Test-only switch (test/scan-envelope.test.ts): off, every message takes the generic loop
// from its first byte, the reference the envelope fast path is compared against.
let envelopeFastPath = true;
/** @internal For tests: turn the envelope fast path off (or back on). Not part of the API. */
export function setEnvelopeFastPath(on: boolean): void {
  envelopeFastPath = on;
}

/** The most seconds either side of 1970 a JS Date holds (±8.64e15 ms). */
const MAX_DATE_SECONDS = 8.64e12;

/** Does the timestamp (8 or 12 data bytes at `at`) hold valid nanoseconds and a date a Date holds? */
function timestampFits(b: Uint8Array, at: number, size: number): boolean {
  if (size === 8) return u32(b, at) >>> 2 < 1e9; // 30 bits of nanoseconds, 34 of seconds (always in range)
  if (u32(b, at) >= 1e9) return false;
  const hi = u32(b, at + 4) | 0; // int64 seconds: the high half, signed
  if (hi > 0x1fffff || hi < -0x200000) return false;
  return Math.abs(hi * 4294967296 + u32(b, at + 8)) <= MAX_DATE_SECONDS;
}

/** Names for the ext types msgpackr writes for JS classes (outgoing refusals say which). */
const OUTGOING_EXT: Record<number, string> = {
  0x73: 'a Set',
  0x65: 'an Error',
  0x78: 'a RegExp',
  0x74: 'a typed array other than Uint8Array',
  0x10: 'an ArrayBuffer',
  0x11: 'a DataView',
  0x42: 'a BigInt',
  0x00: 'undefined',
  0xff: 'an invalid Date',
};

const OUTGOING_TYPED: Record<number, string> = { 0x10: 'an ArrayBuffer', 0x11: 'a DataView' };

function u16(b: Uint8Array, p: number): number {
  return (b[p]! << 8) | b[p + 1]!;
}
function u32(b: Uint8Array, p: number): number {
  return b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
}

/**
 * Scan the message starting at `start`, filling `out`. Throws TruncatedMsgpack if the
 * bytes end inside it. `outgoing` also rewrites (see the top of this file) and refuses
 * int64/uint64, which msgpackr writes only for a BigInt.
 */
export function scanMessage(b: Uint8Array, start: number, limits: ScanLimits, outgoing: boolean, out: ScanResult): void {
  const len = b.length;
  const { maxElements, maxDepth, maxParams, maxMethodLength } = limits;
  let p = start;
  // The innermost open container: its level (-1 before the envelope; the envelope is 0),
  // the values it still has to read, and whether it is a map. Outer ones are in lefts/maps.
  let level = -1;
  let left = 1; // the message itself, read as if in a container of one
  let inMap = false;
  // Every value the headers read so far announced, this one included: the message's
  // element count once it is read, and at every header an exact lower bound of it.
  let announced = 1;
  let depth = 0;
  let kind = -1;
  let id = -1;
  let envLen = -1; // the envelope's length, if it is an array
  let refused: string | undefined;
  // Outgoing bin rewrite: bytes removed so far, and where the not yet moved bytes start.
  let shift = 0;
  let moveFrom = 0;

  // The envelope in straight-line code. Nearly every message is [0, id, fixstr, params],
  // [2, fixstr, params] or [1, id, nil, result] with an id of 0..2^32−1; through the loop
  // below each of its values costs ~120 instructions (the envelope checks, the dispatch).
  // This reads only what the loop would take without a refusal, then leaves the loop the
  // state it would have reached, the last value (params, result) still to read: bytes
  // missing there throw as they would have at the envelope's header. Anything else (another
  // type, id or method form, a limit hit) the loop reads from the message's first byte.
  // Past the end b[q] is undefined, which fails every test below.
  fast: if (envelopeFastPath && maxElements >= 5 && maxDepth >= 0) {
    const h = b[p]!;
    const type = b[p + 1]!;
    if (h === 0x94 ? type !== 0 && type !== 1 : h !== 0x93 || type !== 2) break fast;
    let q = p + 2;
    let c = b[q]!;
    let i = -1;
    if (type !== 2) {
      // An id the loop keeps: a fixint or a uint 8/16/32 (msgpackr's forms for 0..2^32−1).
      i = intAt(b, q);
      if (!(i >= 0 && c < 0xcf)) break fast;
      q += c < 0x80 ? 1 : HEAD[c - 0xc0]!;
      c = b[q]!;
    }
    // A response's error is nil, a method name a fixstr within the limit.
    if (type === 1 ? c !== 0xc0 : !(c >= 0xa0 && c < 0xc0 && (c & 0x1f) <= maxMethodLength)) break fast;
    kind = type;
    id = i;
    envLen = h & 0xf;
    announced = 1 + envLen;
    level = 0;
    p = q + 1 + (c & 0x1f);
  }

  for (;;) {
    while (left === 0) {
      // The innermost container is complete: the one around it is innermost again.
      if (level <= 0) break;
      left = lefts[level]!;
      inMap = maps[level] === 1;
      level--;
    }
    if (left === 0) break; // the message is read
    if (level > 0) {
      // Below the envelope, fixints and fixstrs need no check, not even as map keys: most
      // of a game's values. Read a run of them here, the rest one by one below. Past the
      // end b[p] is undefined, which no test below matches: the loop below throws.
      while (left > 0) {
        const c = b[p]!;
        if (c < 0x80 || c >= 0xe0) p += 1;
        else if (c >= 0xa0 && c < 0xc0) p += 1 + (c & 0x1f);
        else break;
        left--;
      }
      if (left === 0) continue;
    }
    if (p >= len) throw new TruncatedMsgpack('truncated msgpack');
    const c = b[p]!;
    // A map key (an even count left): strings and integers only, anything else has no JS
    // property name. Refused once the value is read, if nothing in it is refused first.
    let badKey = false;
    if (inMap) {
      badKey = (left & 1) === 0 && !(c < 0x80 || (c >= 0xa0 && c < 0xc0) || c >= 0xe0 || (c >= 0xcc && c <= 0xd3) || (c >= 0xd9 && c <= 0xdb));
    } else if (level === 0 && envLen >= 0) {
      // Directly inside the envelope: its type, the id, the method name and the params.
      const slot = envLen - left;
      if (slot === 0) {
        const v = intAt(b, p);
        // 3: any other integer, a type a later version adds (SPEC §11); -1: not an integer.
        kind = v === 0 || v === 1 || v === 2 ? v : v === v ? 3 : -1;
      } else if (slot === 1 && (kind === 0 || kind === 1)) {
        const v = intAt(b, p);
        if (v >= 0 && v <= MAX_ID) id = v;
      } else refused = envelopeSlot(b, p, slot, kind, maxMethodLength, maxParams);
    }
    left--;
    let n = -1; // for an array or map header: the values inside
    let isMap = false;
    if (c < 0x80 || c >= 0xe0) p += 1;
    else if (c < 0x90) (n = (c & 0xf) * 2), (isMap = true), (p += 1);
    else if (c < 0xa0) (n = c & 0xf), (p += 1);
    else if (c < 0xc0) p += 1 + (c & 0x1f);
    else {
      // Every remaining form has a header of up to 9 bytes: check it is all there first.
      const head = HEAD[c - 0xc0]!;
      if (p + head > len) throw new TruncatedMsgpack('truncated msgpack');
      switch (c) {
        case 0xc1:
          refused ??= outgoing ? 'msgpackr’s 0xc1 object cannot be sent' : 'the byte 0xc1 is not a msgpack value';
          break;
        case 0xc4:
        case 0xd9:
          p += b[p + 1]!;
          break;
        case 0xc5:
        case 0xda:
          p += u16(b, p + 1);
          break;
        case 0xc6:
        case 0xdb:
          p += u32(b, p + 1);
          break;
        case 0xc7:
        case 0xc8:
        case 0xc9:
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8: {
          const size = c === 0xc7 ? b[p + 1]! : c === 0xc8 ? u16(b, p + 1) : c === 0xc9 ? u32(b, p + 1) : 1 << (c - 0xd4);
          const type = b[p + head - 1]!;
          if (type === 0xff && (size === 4 || size === 8 || size === 12)) {
            // the timestamp extension: decoded to a Date, which must hold it (else msgpackr
            // makes a wrong date of it, e.g. 1970 for 2^62 s: SPEC §2, kit case 6.12).
            if (!outgoing && size > 4 && p + head + size <= len && !timestampFits(b, p + head, size)) refused ??= 'a timestamp out of the date range';
          } else if (outgoing && type === 0x74 && c >= 0xc7 && c <= 0xc9 && size > 0 && p + head < len && b[p + head] === 1) {
            // msgpackr's typed-array ext for a plain Uint8Array (Node only: there msgpackr
            // treats only Buffer as bin when marking types): rewrite as bin, 2 bytes shorter.
            if (refused === undefined) {
              if (shift > 0) b.copyWithin(moveFrom - shift, moveFrom, p);
              const at = p - shift;
              const bin = size - 1;
              if (c === 0xc7) (b[at] = 0xc4), (b[at + 1] = bin);
              else if (c === 0xc8) (b[at] = 0xc5), (b[at + 1] = bin >> 8), (b[at + 2] = bin & 0xff);
              else (b[at] = 0xc6), (b[at + 1] = bin >>> 24), (b[at + 2] = (bin >> 16) & 0xff), (b[at + 3] = (bin >> 8) & 0xff), (b[at + 4] = bin & 0xff);
              shift += 2;
              moveFrom = p + head + 1;
            }
          } else {
            const t = type > 127 ? type - 256 : type;
            // msgpackr's typed-array ext carries the array's class in its first data byte.
            const what = type === 0x74 && p + head < len ? (OUTGOING_TYPED[b[p + head]!] ?? OUTGOING_EXT[type]) : OUTGOING_EXT[type];
            refused ??= outgoing
              ? `${what ?? `msgpack extension type ${t}`} cannot be sent`
              : type === 0xff
                ? `a timestamp of ${size} bytes is not a msgpack timestamp`
                : `msgpack extension type ${t} is not allowed`;
          }
          p += size;
          break;
        }
        case 0xcb:
          if (outgoing && refused === undefined) int64FromDouble(b, p);
          break;
        case 0xcf:
          if (outgoing) refused ??= 'a BigInt cannot be sent';
          else if (u32(b, p + 1) > MAX_SAFE_HI) refused ??= 'an integer beyond 2^53−1 is not allowed';
          break;
        case 0xd3: {
          const hi = u32(b, p + 1) | 0;
          if (outgoing) refused ??= 'a BigInt cannot be sent';
          else if (hi > MAX_SAFE_HI || hi < -0x200000 || (hi === -0x200000 && u32(b, p + 5) === 0))
            refused ??= 'an integer beyond ±(2^53−1) is not allowed';
          break;
        }
        case 0xdc:
          n = u16(b, p + 1);
          break;
        case 0xdd:
          n = u32(b, p + 1);
          break;
        case 0xde:
          (n = u16(b, p + 1) * 2), (isMap = true);
          break;
        case 0xdf:
          (n = u32(b, p + 1) * 2), (isMap = true);
          break;
      }
      p += head;
    }
    if (badKey) refused ??= 'map keys must be strings or integers';

    if (n >= 0 && refused === undefined) {
      // An array or map: one level deeper, and n more values owed, each at least a byte.
      if (n > len - p) throw new TruncatedMsgpack('truncated msgpack');
      if (level + 1 > depth) depth = level + 1;
      if (level + 1 > maxDepth) refused = `nested deeper than ${maxDepth}`;
      else if (announced + n > maxElements) refused = `more than ${maxElements} values in one message`;
      else {
        announced += n;
        if (level === -1 && !isMap) envLen = n;
        if (n > 0) {
          if (++level >= lefts.length) grow();
          lefts[level] = left;
          maps[level] = inMap ? 1 : 0;
          left = n;
          inMap = isMap;
        }
      }
    }
    if (refused !== undefined) {
      // Nothing more to check, only where the message ends. The count stays at the values
      // read (a refused header's values were never announced).
      let owed = left;
      for (let i = level; i > 0; i--) owed += lefts[i]!;
      announced -= owed;
      p = skip(b, p, owed + (n > 0 ? n : 0));
      break;
    }
  }
  if (p > len) throw new TruncatedMsgpack('truncated msgpack');
  if (shift > 0) b.copyWithin(moveFrom - shift, moveFrom, p);
  out.end = p - shift;
  out.elements = announced;
  out.depth = depth;
  out.kind = kind;
  out.id = id;
  out.refused = refused;
}

/** Room for deeper nesting (only limits of more than 63 levels get here). */
function grow(): void {
  const l = new Float64Array(lefts.length * 2);
  l.set(lefts);
  lefts = l;
  const m = new Uint8Array(maps.length * 2);
  m.set(maps);
  maps = m;
}

/** The integer at p (any msgpack integer form), or NaN for anything else. */
function intAt(b: Uint8Array, p: number): number {
  const c = b[p]!;
  if (c < 0x80) return c;
  if (c >= 0xe0) return c - 0x100;
  switch (c) {
    case 0xcc:
      return b[p + 1]!;
    case 0xcd:
      return u16(b, p + 1);
    case 0xce:
      return u32(b, p + 1);
    case 0xcf:
      return u32(b, p + 1) * TWO32 + u32(b, p + 5);
    case 0xd0:
      return (b[p + 1]! << 24) >> 24;
    case 0xd1:
      return (u16(b, p + 1) << 16) >> 16;
    case 0xd2:
      return u32(b, p + 1) | 0;
    case 0xd3:
      return (u32(b, p + 1) | 0) * TWO32 + u32(b, p + 5);
  }
  return NO_VALUE;
}

/**
 * The check on the envelope's value at `slot` (starting at p), past the type and id: a
 * method name no longer than maxMethodLength, no more than maxParams params. Returns the
 * refusal, if any.
 */
function envelopeSlot(b: Uint8Array, p: number, slot: number, kind: number, maxMethodLength: number, maxParams: number): string | undefined {
  if (kind !== 0 && kind !== 2) return undefined;
  if (slot === (kind === 0 ? 2 : 1)) {
    const c = b[p]!;
    const strLen = c >= 0xa0 && c < 0xc0 ? c & 0x1f : c === 0xd9 ? b[p + 1]! : c === 0xda ? u16(b, p + 1) : c === 0xdb ? u32(b, p + 1) : -1;
    if (strLen > maxMethodLength) return `method name longer than ${maxMethodLength}`;
  } else if (slot === (kind === 0 ? 3 : 2)) {
    const c = b[p]!;
    const n = c >= 0x90 && c < 0xa0 ? c & 0xf : c === 0xdc ? u16(b, p + 1) : c === 0xdd ? u32(b, p + 1) : -1;
    if (n > maxParams) return `more than ${maxParams} params`;
  }
  return undefined;
}

/** Header bytes (type byte included) of the forms 0xc0…0xdf; payloads are added apart. */
const HEAD = Uint8Array.from([
  1, 1, 1, 1, // c0 nil, c1, c2 false, c3 true
  2, 3, 5, // c4-c6 bin 8/16/32
  3, 4, 6, // c7-c9 ext 8/16/32 (length, type)
  5, 9, // ca float32, cb float64
  2, 3, 5, 9, // cc-cf uint
  2, 3, 5, 9, // d0-d3 int
  2, 2, 2, 2, 2, // d4-d8 fixext (type)
  2, 3, 5, // d9-db str
  3, 5, 3, 5, // dc dd array, de df map
]);

/** Offset past `pending` more values from `p`, without looking at what they are. */
function skip(b: Uint8Array, p: number, pending: number): number {
  const len = b.length;
  while (pending > 0) {
    if (p >= len) throw new TruncatedMsgpack('truncated msgpack');
    const c = b[p]!;
    pending--;
    if (c < 0x80 || c >= 0xe0) p += 1;
    else if (c < 0x90) (pending += (c & 0xf) * 2), (p += 1);
    else if (c < 0xa0) (pending += c & 0xf), (p += 1);
    else if (c < 0xc0) p += 1 + (c & 0x1f);
    else {
      const head = HEAD[c - 0xc0]!;
      if (p + head > len) throw new TruncatedMsgpack('truncated msgpack');
      switch (c) {
        case 0xc4:
        case 0xd9:
          p += b[p + 1]!;
          break;
        case 0xc5:
        case 0xda:
          p += u16(b, p + 1);
          break;
        case 0xc6:
        case 0xdb:
          p += u32(b, p + 1);
          break;
        case 0xc7:
          p += b[p + 1]!;
          break;
        case 0xc8:
          p += u16(b, p + 1);
          break;
        case 0xc9:
          p += u32(b, p + 1);
          break;
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8:
          p += 1 << (c - 0xd4);
          break;
        case 0xdc:
          pending += u16(b, p + 1);
          break;
        case 0xdd:
          pending += u32(b, p + 1);
          break;
        case 0xde:
          pending += u16(b, p + 1) * 2;
          break;
        case 0xdf:
          pending += u32(b, p + 1) * 2;
          break;
      }
      p += head;
    }
  }
  if (p > len) throw new TruncatedMsgpack('truncated msgpack');
  return p;
}

/**
 * msgpackr writes every number outside the 32-bit ranges as float64 (0xcb). A safe
 * integer goes out as int64/uint64 instead, same 9 bytes, rewritten in place: C#, Go and
 * Python read those as integers, where a float64 would be a double.
 */
function int64FromDouble(b: Uint8Array, p: number): void {
  if (littleEndian) for (let i = 0; i < 8; i++) f64Bytes[i] = b[p + 8 - i]!;
  else for (let i = 0; i < 8; i++) f64Bytes[i] = b[p + 1 + i]!;
  const v = f64[0]!;
  if (!Number.isSafeInteger(v) || (v >= -0x80000000 && v <= MAX_ID)) return;
  const hi = Math.floor(v / TWO32);
  const lo = v - hi * TWO32;
  b[p] = v < 0 ? 0xd3 : 0xcf;
  b[p + 1] = (hi >>> 24) & 0xff;
  b[p + 2] = (hi >>> 16) & 0xff;
  b[p + 3] = (hi >>> 8) & 0xff;
  b[p + 4] = hi & 0xff;
  b[p + 5] = lo >>> 24;
  b[p + 6] = (lo >>> 16) & 0xff;
  b[p + 7] = (lo >>> 8) & 0xff;
  b[p + 8] = lo & 0xff;
}
