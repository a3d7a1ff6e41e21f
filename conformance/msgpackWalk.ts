// Byte extents of msgpack values, without decoding them. The kit judges what a client
// put on the wire (2^40 as uint64, not float64; nil, not an extension), which a decoder
// hides: it needs each message's bytes and each param's bytes as they came.

/** Offset just past the msgpack value that starts at `at`; throws on bad or short input. */
export function skip(b: Uint8Array, at: number): number {
  const need = (n: number) => {
    if (at + n > b.length) throw new RangeError('truncated msgpack');
  };
  need(1);
  const t = b[at]!;
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const items = (n: number, from: number) => {
    let p = from;
    for (let i = 0; i < n; i++) p = skip(b, p);
    return p;
  };
  if (t <= 0x7f || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) return at + 1;
  if (t >= 0x80 && t <= 0x8f) return items((t & 0x0f) * 2, at + 1);
  if (t >= 0x90 && t <= 0x9f) return items(t & 0x0f, at + 1);
  if (t >= 0xa0 && t <= 0xbf) return sized(at + 1, t & 0x1f);
  switch (t) {
    case 0xc4: case 0xd9: need(2); return sized(at + 2, b[at + 1]!);
    case 0xc5: case 0xda: need(3); return sized(at + 3, view.getUint16(at + 1));
    case 0xc6: case 0xdb: need(5); return sized(at + 5, view.getUint32(at + 1));
    case 0xc7: need(3); return sized(at + 3, b[at + 1]!);
    case 0xc8: need(4); return sized(at + 4, view.getUint16(at + 1));
    case 0xc9: need(6); return sized(at + 6, view.getUint32(at + 1));
    case 0xca: case 0xce: case 0xd2: need(5); return at + 5;
    case 0xcb: case 0xcf: case 0xd3: need(9); return at + 9;
    case 0xcc: case 0xd0: need(2); return at + 2;
    case 0xcd: case 0xd1: need(3); return at + 3;
    case 0xd4: need(3); return at + 3;
    case 0xd5: need(4); return at + 4;
    case 0xd6: need(6); return at + 6;
    case 0xd7: need(10); return at + 10;
    case 0xd8: need(18); return at + 18;
    case 0xdc: need(3); return items(view.getUint16(at + 1) * 1, at + 3);
    case 0xdd: need(5); return items(view.getUint32(at + 1), at + 5);
    case 0xde: need(3); return items(view.getUint16(at + 1) * 2, at + 3);
    case 0xdf: need(5); return items(view.getUint32(at + 1) * 2, at + 5);
    default: throw new RangeError(`byte 0x${t.toString(16)} starts no msgpack value`);
  }
  function sized(from: number, n: number): number {
    if (from + n > b.length) throw new RangeError('truncated msgpack');
    return from + n;
  }
}

/** The msgpack values of one frame, each as its own bytes. */
export function splitValues(b: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < b.length) {
    const end = skip(b, at);
    out.push(b.subarray(at, end));
    at = end;
  }
  return out;
}

/** Array header at `at`: element count and where the first element starts. */
function arrayHeader(b: Uint8Array, at: number): [number, number] {
  const t = b[at]!;
  if (t >= 0x90 && t <= 0x9f) return [t & 0x0f, at + 1];
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (t === 0xdc) return [view.getUint16(at + 1), at + 3];
  if (t === 0xdd) return [view.getUint32(at + 1), at + 5];
  throw new RangeError('not an array');
}

/** Bytes of each element of the array at the start of `b`. */
export function elements(b: Uint8Array): Uint8Array[] {
  const [n, first] = arrayHeader(b, 0);
  const out: Uint8Array[] = [];
  let at = first;
  for (let i = 0; i < n; i++) {
    const end = skip(b, at);
    out.push(b.subarray(at, end));
    at = end;
  }
  return out;
}

/** Bytes of each param of a request `[0, id, method, params]` (its 4th element). */
export function paramBytes(message: Uint8Array): Uint8Array[] {
  return elements(elements(message)[3]!);
}

/** True if any value inside `b` is an extension or the never-used byte 0xc1. */
export function hasExtension(b: Uint8Array): boolean {
  let at = 0;
  const visit = (): void => {
    const t = b[at]!;
    if (t === 0xc1 || (t >= 0xc7 && t <= 0xc9) || (t >= 0xd4 && t <= 0xd8)) throw new Found();
    if ((t >= 0x80 && t <= 0x9f) || t === 0xdc || t === 0xdd || t === 0xde || t === 0xdf) {
      const isMap = (t >= 0x80 && t <= 0x8f) || t === 0xde || t === 0xdf;
      const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
      let n: number;
      if (t <= 0x9f) { n = t & 0x0f; at += 1; }
      else if (t === 0xdc || t === 0xde) { n = view.getUint16(at + 1); at += 3; }
      else { n = view.getUint32(at + 1); at += 5; }
      for (let i = 0; i < n * (isMap ? 2 : 1); i++) visit();
      return;
    }
    at = skip(b, at);
  };
  class Found extends Error {}
  try {
    while (at < b.length) visit();
    return false;
  } catch (e) {
    if (e instanceof Found) return true;
    throw e;
  }
}

export const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
