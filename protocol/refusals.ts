// Cheap error responses for refusals (rate limit, overload, unknown method). A flood of
// refused calls must cost a small fraction of a served one (issue 9 #3): no RpcError
// (whose constructor captures a stack), and the error map encoded once, then spliced
// into `[1, id, <error>, nil]` by hand.

import { encode } from './codec.ts';
import type { WireError } from './errors.ts';

const encodedErrors = new WeakMap<WireError, Uint8Array>();

/** A frozen wire error, built once and shared by every refusal of its kind. */
export function wireError(code: string, message: string, data?: unknown): WireError {
  return Object.freeze(data === undefined ? { code, message } : { code, message, data }) as WireError;
}

/** msgpack bytes of `[1, id, error, nil]`, with `error`'s map encoded once per object. */
export function errorResponse(id: number, error: WireError): Uint8Array {
  let map = encodedErrors.get(error);
  if (!map) {
    map = new Uint8Array(encode(error)); // a copy: a Buffer's slice() would pin msgpackr's buffer
    if (Object.isFrozen(error)) encodedErrors.set(error, map);
  }
  // fixarray(4), 1 (response), id as the shortest uint, the map, nil
  const idBytes = id < 0x80 ? 1 : id < 0x100 ? 2 : id < 0x10000 ? 3 : 5;
  const out = new Uint8Array(2 + idBytes + map.byteLength + 1);
  out[0] = 0x94;
  out[1] = 0x01;
  let at = 2;
  if (id < 0x80) out[at++] = id;
  else if (id < 0x100) {
    out[at++] = 0xcc;
    out[at++] = id;
  } else if (id < 0x10000) {
    out[at++] = 0xcd;
    out[at++] = id >>> 8;
    out[at++] = id & 0xff;
  } else {
    out[at++] = 0xce;
    out[at++] = id >>> 24;
    out[at++] = (id >>> 16) & 0xff;
    out[at++] = (id >>> 8) & 0xff;
    out[at++] = id & 0xff;
  }
  out.set(map, at);
  out[at + map.byteLength] = 0xc0;
  return out;
}
