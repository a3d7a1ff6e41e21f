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
// Cost, measured in-process as CPU time (Node 20, a 2-core box shared with other jobs, so
// process.cpuUsage, min of 7 rounds of 50k-1M iterations, fresh frame views each time):
//   frame                                   scan      readFrame (was decodeFrame)  RpcPeer.receive + reply
//   [0, 7, "add", [1, 2]]          10 B     ~55 ns    ~180 ns (~105 ns)            ~1.2 µs (0.95 µs)
//   [0, 8, "take", [{40 keys}]]   952 B    ~530 ns    ~8.9 µs (~8.0 µs)            ~10.6 µs (11.3 µs)
//   1 MiB of 0x90 in one array (refused)    ~2.6 ms   ~2.6 ms (~1.1 s and ~40 MiB of heap decoding it)
// The receive figure includes the reply's encode, which is scanned too, and copied
// (encodeOwned) because the engine keeps it.

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
  /** The envelope's message type (0 request, 1 response, 2 notification), or -1. */
  kind = -1;
  /** A request's or response's id when it is an integer in 0..2^32−1, else -1. */
  id = -1;
  /** The first rule the message breaks, or undefined. */
  refused: string | undefined = undefined;
}

/** Thrown for bytes that are not msgpack at all (truncated): the frame is lost, not one message. */
export class TruncatedMsgpack extends Error {
  override name = 'TruncatedMsgpack';
}

/** Largest integer a double holds exactly: ids, counts and timestamps must stay within it. */
const MAX_SAFE_HI = 0x1fffff; // high 32 bits of 2^53 − 1
const TWO32 = 4294967296;
const MAX_ID = 0xffffffff;

// Open containers being tracked: the `pending` count at which each closes, and whether it
// is a map (so the scan knows which values are keys). Grown on demand, never shrunk.
let marks = new Float64Array(64);
let maps = new Uint8Array(64);
// Scratch for reading a float64 without a DataView per message.
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const NO_VALUE = Number.NaN;

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
  let pending = 1; // values still to read in this message
  let top = -1; // innermost tracked container (index into marks/maps); the envelope is 0
  // marks[top] and maps[top], kept in locals: read for every value, changed per container.
  let mark = -1;
  let inMap = false;
  let elements = 0;
  let depth = 0;
  let kind = -1;
  let id = -1;
  let envLen = 0;
  let methodSlot = -1;
  let paramsSlot = -1;
  let refused: string | undefined;
  // Outgoing bin rewrite: bytes removed so far, and where the not yet moved bytes start.
  let shift = 0;
  let moveFrom = 0;

  while (pending > 0) {
    if (p >= len) throw new TruncatedMsgpack('truncated msgpack');
    const c = b[p]!;
    pending--;
    elements++;
    let intVal = NO_VALUE; // set for integers
    let strLen = -1; // set for strings
    let n = -1; // set for arrays and maps: number of values inside
    let isMap = false;
    if (c < 0x80) {
      intVal = c;
      p += 1;
    } else if (c < 0x90) {
      n = (c & 0xf) * 2;
      isMap = true;
      p += 1;
    } else if (c < 0xa0) {
      n = c & 0xf;
      p += 1;
    } else if (c < 0xc0) {
      strLen = c & 0x1f;
      p += 1 + strLen;
    } else if (c >= 0xe0) {
      intVal = c - 0x100;
      p += 1;
    } else {
      // Every remaining form has a header of up to 9 bytes: check it is all there first.
      const head = HEAD[c - 0xc0]!;
      if (p + head > len) throw new TruncatedMsgpack('truncated msgpack');
      switch (c) {
        case 0xc0:
        case 0xc2:
        case 0xc3:
        case 0xca:
          break;
        case 0xc1:
          refused ??= outgoing ? 'msgpackr’s 0xc1 object cannot be sent' : 'the byte 0xc1 is not a msgpack value';
          break;
        case 0xc4:
          p += b[p + 1]!;
          break;
        case 0xc5:
          p += u16(b, p + 1);
          break;
        case 0xc6:
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
            // the timestamp extension: decoded to a Date
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
        case 0xcc:
          intVal = b[p + 1]!;
          break;
        case 0xcd:
          intVal = u16(b, p + 1);
          break;
        case 0xce:
          intVal = u32(b, p + 1);
          break;
        case 0xcf: {
          const hi = u32(b, p + 1);
          if (outgoing) refused ??= 'a BigInt cannot be sent';
          else if (hi > MAX_SAFE_HI) refused ??= 'an integer beyond 2^53−1 is not allowed';
          intVal = hi * TWO32 + u32(b, p + 5);
          break;
        }
        case 0xd0:
          intVal = (b[p + 1]! << 24) >> 24;
          break;
        case 0xd1:
          intVal = (u16(b, p + 1) << 16) >> 16;
          break;
        case 0xd2:
          intVal = u32(b, p + 1) | 0;
          break;
        case 0xd3: {
          const hi = u32(b, p + 1) | 0;
          const lo = u32(b, p + 5);
          if (outgoing) refused ??= 'a BigInt cannot be sent';
          else if (hi > MAX_SAFE_HI || hi < -0x200000 || (hi === -0x200000 && lo === 0))
            refused ??= 'an integer beyond ±(2^53−1) is not allowed';
          intVal = hi * TWO32 + lo;
          break;
        }
        case 0xd9:
          strLen = b[p + 1]!;
          p += strLen;
          break;
        case 0xda:
          strLen = u16(b, p + 1);
          p += strLen;
          break;
        case 0xdb:
          strLen = u32(b, p + 1);
          p += strLen;
          break;
        case 0xdc:
          n = u16(b, p + 1);
          break;
        case 0xdd:
          n = u32(b, p + 1);
          break;
        case 0xde:
          n = u16(b, p + 1) * 2;
          isMap = true;
          break;
        case 0xdf:
          n = u32(b, p + 1) * 2;
          isMap = true;
          break;
      }
      p += head;
    }

    if (refused === undefined) {
      if (top >= 0) {
        // A map key: strings and integers only (anything else has no JS property name).
        if (inMap && ((pending - mark) & 1) === 1 && strLen < 0 && intVal !== intVal)
          refused = 'map keys must be strings or integers';
        else if (top === 0) {
          // Directly inside the envelope: read the type, the id, check method and params.
          const slot = envLen - 1 - (pending - mark);
          if (slot === 0) {
            kind = intVal === 0 || intVal === 1 || intVal === 2 ? intVal : -1;
            methodSlot = kind === 0 ? 2 : kind === 2 ? 1 : -1;
            paramsSlot = kind === 0 ? 3 : kind === 2 ? 2 : -1;
          } else if (slot === 1 && (kind === 0 || kind === 1)) {
            if (intVal >= 0 && intVal <= MAX_ID) id = intVal;
          } else if (slot === methodSlot) {
            if (strLen > maxMethodLength) refused = `method name longer than ${maxMethodLength}`;
          } else if (slot === paramsSlot) {
            if (n > maxParams && !isMap) refused = `more than ${maxParams} params`;
          }
        }
      }
      if (n >= 0 && refused === undefined) {
        const level = top + 1;
        if (level > depth) depth = level;
        if (level > maxDepth) refused = `nested deeper than ${maxDepth}`;
        // Every value still owed counts at least one: exact once the message is read.
        else if (elements + pending + n > maxElements) refused = `more than ${maxElements} values in one message`;
        else if (n > 0) {
          top = level;
          if (top >= marks.length) {
            const m = new Float64Array(marks.length * 2);
            m.set(marks);
            marks = m;
            const k = new Uint8Array(maps.length * 2);
            k.set(maps);
            maps = k;
          }
          marks[top] = mark = pending;
          maps[top] = isMap ? 1 : 0;
          inMap = isMap;
          if (top === 0) envLen = n;
        }
      }
    }
    if (n > 0) pending += n;
    while (pending === mark) {
      // The innermost container is complete: the one around it is innermost again.
      if (--top >= 0) (mark = marks[top]!), (inMap = maps[top] === 1);
      else mark = -1;
    }
    // Refused: nothing more to check, only where the message ends (the tracked
    // containers are no longer exact, so stop using them).
    if (refused !== undefined) {
      p = skip(b, p, pending);
      pending = 0;
    }
  }
  if (p > len) throw new TruncatedMsgpack('truncated msgpack');
  if (shift > 0) b.copyWithin(moveFrom - shift, moveFrom, p);
  out.end = p - shift;
  out.elements = elements;
  out.depth = depth;
  out.kind = kind;
  out.id = id;
  out.refused = refused;
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
