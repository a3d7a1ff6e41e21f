// The three msgpack-rpc message shapes and the guard that checks what arrives.
// See SPEC.md beside this file for the wire format in prose.

import type { WireError } from './errors.ts';
import type { Limits } from './limits.ts';

/** Message type of a request: `[0, id, method, params]`. */
export const REQUEST = 0;
/** Message type of a response: `[1, id, error, result]`. */
export const RESPONSE = 1;
/** Message type of a notification: `[2, method, params]`. */
export const NOTIFICATION = 2;

/** `[0, id, method, params]`: a call that wants an answer. */
export type RequestMessage = [typeof REQUEST, number, string, unknown[]];
/** `[1, id, error, result]`: the answer to request `id` (error null on success). */
export type ResponseMessage = [typeof RESPONSE, number, WireError | null, unknown];
/** `[2, method, params]`: a call without an answer. */
export type NotificationMessage = [typeof NOTIFICATION, string, unknown[]];
/** Any of the three msgpack-rpc messages. */
export type Message = RequestMessage | ResponseMessage | NotificationMessage;

/** Extension notification: the caller gave up on call `id`; the callee aborts its handler. */
export const CANCEL = '$cancel';

/** The largest request id (uint32); ids wrap around after it. */
export const MAX_ID = 0xffffffff;

/**
 * A message the peer sent that breaks the wire format. `id` is set when the message was
 * a request whose id could be read, so the callee can still answer it with an error.
 */
export class ProtocolViolation extends Error {
  /** Always 'ProtocolViolation'. */
  override name = 'ProtocolViolation';
  constructor(
    message: string,
    /** The request's id, when it could be read. */
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

/**
 * Check a call's shape: a non-empty method name and a params array; throws
 * ProtocolViolation. Sizes (method length, params count, depth, values) are the scan's
 * (scan.ts), on the bytes, both ways: one mechanism.
 */
export function checkCall(method: unknown, params: unknown, _limits?: Limits, id?: number): void {
  if (typeof method !== 'string' || method.length === 0)
    throw new ProtocolViolation('method must be a non-empty string', id);
  if (!Array.isArray(params)) throw new ProtocolViolation('params must be an array', id);
}

/**
 * Check one decoded msgpack value is a well-formed message; throws ProtocolViolation.
 * Limits were applied by the scan before the value was decoded (codec.ts readFrame).
 */
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
      return value as ResponseMessage;
    }
    case NOTIFICATION: {
      if (value.length !== 3) throw new ProtocolViolation('notification must have 3 elements');
      checkCall(value[1], value[2], limits);
      return value as NotificationMessage;
    }
    default:
      // An integer is a type a later version adds (SPEC §11): not fatal, the receiver skips
      // it unread. Anything else (a str, nil, nothing) is a broken peer.
      throw new ProtocolViolation('unknown message type', undefined, !Number.isInteger(value[0]));
  }
}
