// The three msgpack-rpc message shapes and the guard that checks what arrives.
// See SPEC.md beside this file for the wire format in prose.

import type { WireError } from './errors.ts';
import type { Limits } from './limits.ts';

export const REQUEST = 0;
export const RESPONSE = 1;
export const NOTIFICATION = 2;

export type RequestMessage = [typeof REQUEST, number, string, unknown[]];
export type ResponseMessage = [typeof RESPONSE, number, WireError | null, unknown];
export type NotificationMessage = [typeof NOTIFICATION, string, unknown[]];
export type Message = RequestMessage | ResponseMessage | NotificationMessage;

/** Extension notification: the caller gave up on call `id`; the callee aborts its handler. */
export const CANCEL = '$cancel';

export const MAX_ID = 0xffffffff;

/**
 * A message the peer sent that breaks the wire format. `id` is set when the message was
 * a request whose id could be read, so the callee can still answer it with an error.
 */
export class ProtocolViolation extends Error {
  override name = 'ProtocolViolation';
  constructor(
    message: string,
    readonly id?: number,
    /**
     * False for a well-formed call that only exceeds a limit (method name length, params
     * count or depth): it was fully decoded, so refusing it alone keeps the connection safe.
     */
    readonly fatal = true,
  ) {
    super(message);
  }
}

function isId(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_ID;
}

/** Depth of nested arrays/objects, stopping early once `max` is exceeded. */
export function depthExceeds(value: unknown, max: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (max <= 0) return true;
  if (Array.isArray(value)) {
    for (const v of value) if (depthExceeds(v, max - 1)) return true;
    return false;
  }
  if (ArrayBuffer.isView(value)) return false;
  // msgpackr decodes its Set extension; its elements have no keys for `for…in` to see.
  if (value instanceof Set || value instanceof Map) {
    for (const v of value.values()) if (depthExceeds(v, max - 1)) return true;
    return false;
  }
  for (const k in value) if (depthExceeds((value as Record<string, unknown>)[k], max - 1)) return true;
  return false;
}

/** Check a call's method name and params against the limits; throws ProtocolViolation. */
export function checkCall(method: unknown, params: unknown, limits: Limits, id?: number): void {
  if (typeof method !== 'string' || method.length === 0)
    throw new ProtocolViolation('method must be a non-empty string', id);
  if (!Array.isArray(params)) throw new ProtocolViolation('params must be an array', id);
  if (method.length > limits.maxMethodLength)
    throw new ProtocolViolation(`method name longer than ${limits.maxMethodLength}`, id, false);
  if (params.length > limits.maxParams)
    throw new ProtocolViolation(`more than ${limits.maxParams} params`, id, false);
  if (depthExceeds(params, limits.maxDepth))
    throw new ProtocolViolation(`params nested deeper than ${limits.maxDepth}`, id, false);
}

/** Check one decoded msgpack value is a well-formed message; throws ProtocolViolation. */
export function parseMessage(value: unknown, limits: Limits): Message {
  if (!Array.isArray(value)) throw new ProtocolViolation('message must be an array');
  switch (value[0]) {
    case REQUEST: {
      if (value.length !== 4) throw new ProtocolViolation('request must have 4 elements');
      if (!isId(value[1])) throw new ProtocolViolation('request id must be a uint32');
      checkCall(value[2], value[3], limits, value[1]);
      return value as RequestMessage;
    }
    case RESPONSE: {
      if (value.length !== 4) throw new ProtocolViolation('response must have 4 elements');
      if (!isId(value[1])) throw new ProtocolViolation('response id must be a uint32');
      const err = value[2];
      if (err !== null && err !== undefined) {
        if (typeof err !== 'object' || typeof (err as WireError).code !== 'string')
          throw new ProtocolViolation('response error must be nil or a map with a string code');
      }
      if (depthExceeds(value[3], limits.maxDepth))
        throw new ProtocolViolation(`result nested deeper than ${limits.maxDepth}`);
      return value as ResponseMessage;
    }
    case NOTIFICATION: {
      if (value.length !== 3) throw new ProtocolViolation('notification must have 3 elements');
      checkCall(value[1], value[2], limits);
      return value as NotificationMessage;
    }
    default:
      throw new ProtocolViolation('unknown message type');
  }
}
