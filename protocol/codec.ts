// msgpack encoding and decoding of frames. One WebSocket binary message (a frame) holds
// one or more concatenated msgpack values, each one message.
//
// Plain maps, no msgpackr records/structures: records only work when both ends share
// structure tables, and this is a public wire format other languages must speak.

import { Packr } from 'msgpackr/pack';
import { Unpackr } from 'msgpackr/unpack';
import { ProtocolViolation } from './messages.ts';

const packr = new Packr({ useRecords: false, moreTypes: false });
// copyBuffers: uWebSockets.js hands us an ArrayBuffer that is only valid during the
// message callback; binary values decoded from it must not alias it.
// structuredClone false: msgpackr's id/pointer extensions (0x69/0x70) would let a peer
// send self-referencing params; the encoder never writes them.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, copyBuffers: true, structuredClone: false });
// msgpackr decodes the never-used byte 0xc1 to one shared object; frozen, a handler that
// writes to it can't pass data to the next connection that sends 0xc1.
Object.freeze(unpackr.unpack(Uint8Array.of(0xc1)));

/** Encode one message (or any value) to msgpack bytes. The result may be retained. */
export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Decode a frame into its msgpack values; throws ProtocolViolation on bad bytes. */
export function decodeFrame(data: ArrayBuffer | Uint8Array, maxMessages: number): unknown[] {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  if (bytes.byteLength === 0) throw new ProtocolViolation('empty frame');
  let values: unknown[];
  try {
    values = unpackr.unpackMultiple(bytes as never) as unknown[];
  } catch (err) {
    const incomplete = (err as { incomplete?: boolean }).incomplete;
    throw new ProtocolViolation(incomplete ? 'truncated msgpack frame' : 'frame is not valid msgpack');
  }
  if (values.length > maxMessages) throw new ProtocolViolation(`more than ${maxMessages} messages in one frame`);
  return values;
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
