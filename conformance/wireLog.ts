// Recorded frames read as msgpack-rpc messages, for the kit's verdicts.

import { Unpackr } from 'msgpackr';
import { elements, splitValues } from './msgpackWalk.ts';
import type { Recorded, Wire } from './proxy.ts';

// Tolerant on purpose: the kit reads what was sent, refused types included.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' } as never);

export interface LoggedMessage {
  seq: number;
  dir: 'up' | 'down';
  /** Index of the frame on its socket, counting data frames both ways. */
  frame: number;
  /** Messages in the same frame. */
  inFrame: number;
  bytes: Uint8Array;
  /** Decoded message, or undefined if it would not decode. */
  value: unknown[] | undefined;
  injected: boolean;
  /** Date.now() when the kit forwarded it. */
  at: number;
  wire: Wire;
}

/**
 * One message decoded, or undefined if it is not an array. A message holding a value the
 * kit's decoder refuses (an extension type, a bin map key: case 6.10) is decoded element
 * by element, the refused ones left undefined, so its type and id still show.
 */
function decodeMessage(bytes: Uint8Array): unknown[] | undefined {
  try {
    const v = unpackr.unpack(bytes as never);
    return Array.isArray(v) ? v : undefined;
  } catch {
    try {
      return elements(bytes).map((e) => {
        try {
          return unpackr.unpack(e as never);
        } catch {
          return undefined;
        }
      });
    } catch {
      return undefined;
    }
  }
}

/** The msgpack-rpc messages of one payload, decoded (undefined where one does not decode). */
export function decodeAll(payload: Uint8Array): (unknown[] | undefined)[] {
  let parts: Uint8Array[];
  try {
    parts = splitValues(payload);
  } catch {
    return [];
  }
  return parts.map(decodeMessage);
}

export function messagesOf(wire: Wire, dir?: 'up' | 'down'): LoggedMessage[] {
  const out: LoggedMessage[] = [];
  wire.records.forEach((r: Recorded, frame) => {
    if (r.opcode !== 0x2 || r.truncated || (dir && r.dir !== dir)) return;
    let parts: Uint8Array[];
    try {
      parts = splitValues(r.payload);
    } catch {
      return;
    }
    for (const bytes of parts)
      out.push({ seq: r.seq, dir: r.dir, frame, inFrame: parts.length, bytes, value: decodeMessage(bytes), injected: r.injected, at: r.at, wire });
  });
  return out;
}

export const isReliable = (m: LoggedMessage) => m.value?.[0] === 0 || m.value?.[0] === 1;
export const isRequest = (m: LoggedMessage, method?: string) => m.value?.[0] === 0 && (method === undefined || m.value[2] === method);
export const isResponse = (m: LoggedMessage, id?: number) => m.value?.[0] === 1 && (id === undefined || m.value[1] === id);
export const isNote = (m: LoggedMessage, method: string) => m.value?.[0] === 2 && m.value[1] === method;
/** The first param of a notification (e.g. the n of `$ack [n]`). */
export const noteArg = (m: LoggedMessage) => (m.value?.[2] as unknown[] | undefined)?.[0];
