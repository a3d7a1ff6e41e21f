// msgpack encoding and decoding of frames. One WebSocket binary message (a frame) holds
// one or more concatenated msgpack values, each one message.
//
// Both directions go through the scan (scan.ts) over the bytes: what arrives is measured
// and checked before msgpackr decodes it, what leaves is checked after msgpackr encodes
// it. One mechanism, so a side never sends what the other refuses.
//
// Plain maps, no msgpackr records/structures: records only work when both ends share
// structure tables, and this is a public wire format other languages must speak.

import { Packr } from 'msgpackr/pack';
import { Unpackr } from 'msgpackr/unpack';
import { ErrorCode, RpcError } from './errors.ts';
import { DEFAULT_LIMITS } from './limits.ts';
import { ProtocolViolation } from './messages.ts';
import { ScanResult, TruncatedMsgpack, scanMessage, type ScanLimits } from './scan.ts';

/**
 * msgpackr's Packr, told to mark what Volley does not carry so the scan refuses it:
 * - `moreTypes` writes Set, Error, RegExp, ArrayBuffer, DataView, typed arrays and
 *   BigInts past 64 bits as extension types (without it a Set or an Error became a plain
 *   array, an Error's `cause` chain included: issue 9 #5). In Node it marks a plain
 *   Uint8Array too (only Buffer counts as bin there); the scan turns that back into bin.
 * - A BigInt that fits 64 bits comes out as int64/uint64, which msgpackr writes for
 *   nothing else: the outgoing scan refuses those bytes, and turns msgpackr's float64 for
 *   a safe integer past 32 bits into int64/uint64.
 * - msgpackr reads `mapAsEmptyObject` once per Map it writes, and calls `writeFunction`
 *   for a function: both throw, so neither becomes a map or nil unnoticed.
 * - `undefined` is nil (msgpackr's default is extension type 0, issue 10 #5).
 */
class WirePackr extends (Packr as unknown as new (options: object) => { pack(value: unknown): Uint8Array }) {
  get mapAsEmptyObject(): boolean {
    throw new TypeError('a Map cannot be sent: use a plain object');
  }
  writeFunction(): never {
    throw new TypeError('a function cannot be sent');
  }
}

const packr = new WirePackr({ useRecords: false, moreTypes: true, encodeUndefinedAsNil: true });
// copyBuffers: uWebSockets.js hands us an ArrayBuffer that is only valid during the
// message callback; binary values decoded from it must not alias it.
// structuredClone false: msgpackr's id/pointer extensions (0x69/0x70) would let a peer
// send self-referencing params (the scan refuses every ext but the timestamp anyway).
// int64AsType 'number': the scan has refused every int64/uint64 past ±(2^53−1), so the
// rest are exact numbers, not BigInts (issue 10 #6).
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, copyBuffers: true, structuredClone: false, int64AsType: 'number' } as never);

// A message of up to this many bytes, alone in its frame, is decoded from a copy in one
// reused buffer: msgpackr builds (and caches on the array it reads) a DataView per source,
// which cost about as much as decoding a reply, and every frame arrives in a new
// ArrayBuffer. Nothing decoded aliases it (copyBuffers), and unpack() is synchronous.
const SMALL = 2048;
const small = new Uint8Array(SMALL);

/** No limits but the type rules: for values that are not messages under a peer's limits. */
const TYPES_ONLY: ScanLimits = { maxElements: Infinity, maxDepth: Infinity, maxParams: Infinity, maxMethodLength: Infinity };

const scratch = new ScanResult();

/**
 * Encode one message (or any value) to msgpack bytes, checked by the same scan a receiver
 * runs with `limits` (the default limits: what every receiver accepts). Throws an RpcError
 * INVALID_PARAMS naming what can't be sent. The bytes may be a slice of msgpackr's shared
 * buffer (up to 4 MiB): fine to send now, use encodeOwned for bytes kept past this tick.
 */
export function encode(value: unknown, limits: ScanLimits = DEFAULT_LIMITS): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = packr.pack(value);
  } catch (err) {
    throw new RpcError(ErrorCode.INVALID_PARAMS, err instanceof Error ? err.message : String(err));
  }
  try {
    scanMessage(bytes, 0, limits, true, scratch);
  } catch (err) {
    // msgpackr wrote something the scan can't read: a bug on this side, not the caller's.
    throw new RpcError(ErrorCode.INTERNAL, `encoder output unreadable: ${(err as Error).message}`);
  }
  if (scratch.refused !== undefined) throw new RpcError(ErrorCode.INVALID_PARAMS, scratch.refused);
  // An extension the scan rewrote as bin is 2 bytes shorter.
  return scratch.end === bytes.byteLength ? bytes : bytes.subarray(0, scratch.end);
}

/** encode(), as an exact-size copy that pins no shared buffer: for bytes kept (unacked, re-sent). */
export function encodeOwned(value: unknown, limits: ScanLimits = DEFAULT_LIMITS): Uint8Array {
  return owned(encode(value, limits));
}

/** An exact-size copy of encoded bytes, to keep past this tick. */
export function owned(bytes: Uint8Array): Uint8Array {
  // Not bytes.slice(): msgpackr returns a Buffer in Node, whose slice() is a view.
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy;
}

/** Per-message limits a receiver applies, plus how many messages one frame may hold. */
export interface FrameLimits extends ScanLimits {
  /** Messages one frame may hold; past it the frame is refused whole. */
  maxMessagesPerFrame: number;
}

/** One message of a frame, as the engine gets it. */
export interface FrameMessage {
  /** The decoded message; undefined when the scan refused it (then `refused` says why). */
  value: unknown;
  /**
   * Why the message was not decoded: a per-message limit or a type Volley does not carry.
   * The connection survives it: a request with a readable id (`kind` 0, `id` ≥ 0) is
   * answered INVALID_PARAMS, a notification is dropped, a response with a readable id
   * settles that call with the refusal; anything else refused is a broken peer.
   */
  refused: string | undefined;
  /** The envelope's type (0 request, 1 response, 2 notification, 3 any other integer), -1 if unreadable. */
  kind: number;
  /** The request's or response's id when readable (uint32), else -1. */
  id: number;
  /** Estimated heap the message costs once decoded: its bytes + 64 × its msgpack values. */
  cost: number;
  /** Where the message's bytes are in the frame (e.g. to keep them without re-encoding). */
  start: number;
  /** Where the message's bytes end in the frame (exclusive). */
  end: number;
}

/** Bytes of heap charged per decoded msgpack value (an empty array costs ~40 B, a map more). */
export const COST_PER_ELEMENT = 64;

/**
 * Scan a frame, then decode the messages that pass. Throws ProtocolViolation (fatal: the
 * connection should close) on an empty frame, bytes that are not msgpack, or more than
 * `maxMessagesPerFrame` messages. Nothing is decoded from a frame that throws.
 */
export function readFrame(data: ArrayBuffer | Uint8Array, limits: FrameLimits): FrameMessage[] {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  if (bytes.byteLength === 0) throw new ProtocolViolation('empty frame');
  const out: FrameMessage[] = [];
  const size = bytes.byteLength;
  let at = 0;
  try {
    while (at < size) {
      if (out.length >= limits.maxMessagesPerFrame) throw new ProtocolViolation(`more than ${limits.maxMessagesPerFrame} messages in one frame`);
      scanMessage(bytes, at, limits, false, scratch);
      const end = scratch.end;
      out.push({ value: undefined, refused: scratch.refused, kind: scratch.kind, id: scratch.id, cost: end - at + COST_PER_ELEMENT * scratch.elements, start: at, end });
      at = end;
    }
  } catch (err) {
    if (err instanceof TruncatedMsgpack) throw new ProtocolViolation('truncated msgpack frame');
    throw err;
  }
  // Decode only what passed; the whole frame is known to be well-formed by now. Nothing
  // refused (the usual case): one unpack for a frame of one message, else one
  // unpackMultiple, which sets msgpackr up once per frame rather than once per message.
  let refused = false;
  for (let i = 0; i < out.length; i++) if (out[i]!.refused !== undefined) refused = true;
  if (!refused) {
    let values: unknown[] | undefined;
    try {
      if (out.length === 1) {
        out[0]!.value = size > SMALL ? unpackr.unpack(bytes as never) : (small.set(bytes), unpackr.unpack(small as never, size as never));
        return out;
      }
      values = unpackr.unpackMultiple(bytes as never) as unknown[];
    } catch {
      // The scan accepted the frame, so msgpackr should too: fall back to one at a time.
    }
    if (values !== undefined && values.length === out.length) {
      for (let i = 0; i < out.length; i++) out[i]!.value = values[i];
      return out;
    }
  }
  // By offsets into the one array, not subarrays: msgpackr builds (and caches on it) a
  // DataView per source array.
  for (let i = 0; i < out.length; i++) {
    const m = out[i]!;
    if (m.refused !== undefined) continue;
    try {
      m.value = out.length === 1 ? unpackr.unpack(bytes as never) : unpackr.unpack(bytes as never, { start: m.start, end: m.end } as never);
    } catch {
      // The scan accepted it, so msgpackr should too; refuse the message if not.
      m.refused = 'message is not valid msgpack';
    }
  }
  return out;
}

/**
 * Decode a frame into its msgpack values with no per-message limits but the type rules
 * (tools and tests reading what a Volley side sent); throws ProtocolViolation on bad
 * bytes or a refused value.
 */
export function decodeFrame(data: ArrayBuffer | Uint8Array, maxMessages: number): unknown[] {
  const messages = readFrame(data, { ...TYPES_ONLY, maxMessagesPerFrame: maxMessages });
  return messages.map((m) => {
    if (m.refused !== undefined) throw new ProtocolViolation(m.refused);
    return m.value;
  });
}

/** Concatenate encoded messages into one frame. */
export function concatFrames(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let size = 0;
  for (const p of parts) size += p.byteLength;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
