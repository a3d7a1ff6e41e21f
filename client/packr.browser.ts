// A msgpack encoder the browser build puts in place of msgpackr's Packr (scripts/build-
// browser.ts aliases 'msgpackr/pack' to this file). msgpackr's pack entry alone is 11.9 KB
// gzipped, because Packr carries records, bundled strings and its extension machinery in
// one class that no bundler can shake; with it the SDK is 17.7 KB gzip, over the 15 KB
// budget. Decoding stays msgpackr's (Unpackr, 5.5 KB gzip).
//
// It follows the wire rules protocol/codec.ts applies to msgpackr in Node, so both
// encoders put the same bytes on the wire (test/browser-codec.test.ts compares them after
// codec's outgoing scan): ints in the 32-bit range as ints, any other number as float64
// (the scan then writes a safe integer as int64/uint64, in both builds), undefined as nil,
// Date as a timestamp, Uint8Array as bin. What Volley does not carry throws, with the
// message the scan gives in Node: BigInt, Set, Map, Error, RegExp, other typed arrays,
// ArrayBuffer, DataView, functions, symbols. One knowing difference: objects with over
// 65535 keys go out as map32 (msgpackr throws).

const utf8 = new TextEncoder();

export class Packr {
  #buf = new Uint8Array(4096);
  #view = new DataView(this.#buf.buffer);
  #at = 0;

  constructor(_options?: object) {}

  /** Encode one value; the result is a fresh copy the caller may keep. */
  pack(value: unknown): Uint8Array {
    this.#at = 0;
    this.#value(value);
    return this.#buf.slice(0, this.#at);
  }

  #room(n: number): DataView {
    if (this.#at + n > this.#buf.length) {
      const bigger = new Uint8Array(Math.max(this.#buf.length * 2, this.#at + n));
      bigger.set(this.#buf.subarray(0, this.#at));
      this.#buf = bigger;
      this.#view = new DataView(bigger.buffer);
    }
    return this.#view;
  }

  #byte(b: number): void {
    this.#room(1).setUint8(this.#at++, b);
  }

  /** A header: `small` | n when n fits the fix-format, else the 8/16/32-bit form. */
  #head(n: number, fix: number, fixMax: number, c8: number): void {
    const v = this.#room(5);
    if (n <= fixMax) v.setUint8(this.#at++, fix | n);
    else if (c8 && n < 256) v.setUint16((this.#at += 2) - 2, (c8 << 8) | n);
    else if (n < 65536) v.setUint8(this.#at, c8 ? c8 + 1 : fix === 0x90 ? 0xdc : 0xde), v.setUint16(this.#at + 1, n), (this.#at += 3);
    else v.setUint8(this.#at, c8 ? c8 + 2 : fix === 0x90 ? 0xdd : 0xdf), v.setUint32(this.#at + 1, n), (this.#at += 5);
  }

  #bytes(b: Uint8Array): void {
    this.#room(b.length);
    this.#buf.set(b, this.#at);
    this.#at += b.length;
  }

  #value(x: unknown): void {
    switch (typeof x) {
      case 'string': {
        const b = utf8.encode(x);
        this.#head(b.length, 0xa0, 31, 0xd9);
        return this.#bytes(b);
      }
      case 'number':
        return this.#number(x);
      case 'boolean':
        return this.#byte(x ? 0xc3 : 0xc2);
      case 'undefined':
        return this.#byte(0xc0);
      case 'bigint':
        throw new TypeError('a BigInt cannot be sent');
      case 'function':
        throw new TypeError('a function cannot be sent');
      case 'symbol':
        throw new TypeError('Unknown type: symbol');
    }
    if (x === null) return this.#byte(0xc0);
    if (Array.isArray(x)) return this.#array(x);
    if (x instanceof Uint8Array) {
      this.#head(x.length, 0, -1, 0xc4);
      return this.#bytes(x);
    }
    const refused = x instanceof ArrayBuffer ? 'an ArrayBuffer' : x instanceof DataView ? 'a DataView' : ArrayBuffer.isView(x) ? 'a typed array other than Uint8Array'
      : x instanceof Map ? 'a Map' : x instanceof Set ? 'a Set' : x instanceof Error ? 'an Error' : x instanceof RegExp ? 'a RegExp' : undefined;
    if (refused) throw new TypeError(refused === 'a Map' ? 'a Map cannot be sent: use a plain object' : `${refused} cannot be sent`);
    if (x instanceof Date) {
      // timestamp 96: nanoseconds (uint32) then seconds (int64), ext type -1
      const ms = x.getTime();
      if (ms !== ms) return this.#bytes(INVALID_DATE);
      const s = Math.floor(ms / 1000);
      const v = this.#room(15);
      v.setUint32(this.#at, 0xc70cff00), v.setUint32(this.#at + 3, (ms - s * 1000) * 1e6), v.setBigInt64(this.#at + 7, BigInt(s));
      this.#at += 15;
      return;
    }
    const keys = Object.keys(x as object);
    this.#head(keys.length, 0x80, 15, 0);
    for (const k of keys) this.#value(k), this.#value((x as Record<string, unknown>)[k]);
  }

  #array(a: unknown[]): void {
    this.#head(a.length, 0x90, 15, 0);
    for (const v of a) this.#value(v);
  }

  #number(n: number): void {
    const v = this.#room(9);
    if (n >>> 0 === n) {
      if (n < 128) v.setUint8(this.#at++, n);
      else if (n < 256) v.setUint16((this.#at += 2) - 2, 0xcc00 | n);
      else if (n < 65536) v.setUint8(this.#at, 0xcd), v.setUint16(this.#at + 1, n), (this.#at += 3);
      else v.setUint8(this.#at, 0xce), v.setUint32(this.#at + 1, n), (this.#at += 5);
    } else if (n >> 0 === n) {
      if (n >= -32) v.setInt8(this.#at++, n);
      else if (n >= -128) v.setUint8(this.#at, 0xd0), v.setInt8(this.#at + 1, n), (this.#at += 2);
      else if (n >= -32768) v.setUint8(this.#at, 0xd1), v.setInt16(this.#at + 1, n), (this.#at += 3);
      else v.setUint8(this.#at, 0xd2), v.setInt32(this.#at + 1, n), (this.#at += 5);
    } else {
      v.setUint8(this.#at, 0xcb), v.setFloat64(this.#at + 1, n), (this.#at += 9);
    }
  }
}

/** msgpackr's invalid Date (fixext 1, type -1): the scan refuses it, as in Node. */
const INVALID_DATE = new Uint8Array([0xd4, 0xff, 0xff]);
