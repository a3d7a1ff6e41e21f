// Error codes that cross the wire, and the one error class both sides throw.
// Only {code, message, data} ever leaves a process: never a stack trace.

/** The error codes Volley itself uses (RpcError `code`); applications may add their own strings. */
export const ErrorCode = {
  /** No handler registered under that method name. */
  METHOD_NOT_FOUND: 'METHOD_NOT_FOUND',
  /** Params failed the method's arity or schema check. */
  INVALID_PARAMS: 'INVALID_PARAMS',
  /** The caller's deadline passed before a reply arrived. */
  TIMEOUT: 'TIMEOUT',
  /** The caller aborted the call (AbortSignal or `$cancel`). */
  CANCELLED: 'CANCELLED',
  /** The connection closed while the call was pending. */
  DISCONNECTED: 'DISCONNECTED',
  /**
   * The server refused the login: `data` is `{ status }` (the HTTP status, where the
   * client can see it: 401, 409, 503) or `{ closeCode }` (4401, 4409, 4503). Distinct from
   * DISCONNECTED, which means the server could not be reached or the link was lost.
   */
  REFUSED: 'REFUSED',
  /** The target uid is not connected (server → client calls). */
  UNAVAILABLE: 'UNAVAILABLE',
  /** The caller sent calls faster than its rate limit allows. */
  RATE_LIMITED: 'RATE_LIMITED',
  /** The peer is backed up (too many pending calls, or its socket buffer is full). */
  OVERLOADED: 'OVERLOADED',
  /** A message broke the wire format (answered only where an id is known). */
  PROTOCOL_ERROR: 'PROTOCOL_ERROR',
  /** The handler threw something that was not an RpcError; details stay on the callee. */
  INTERNAL: 'INTERNAL',
} as const;

/** One of Volley's own error codes. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** What an error looks like on the wire: the `error` slot of a response. */
export interface WireError {
  /** An {@link ErrorCode} or the application's own code. */
  code: string;
  /** Human-readable text. */
  message: string;
  /** Anything msgpack can carry, for the caller's code (e.g. `retryAfterMs`). */
  data?: unknown;
}

/**
 * Every failure of a call, on both sides: a `code` ({@link ErrorCode} or your own), a
 * message, optional `data`. Throw one from a handler to answer with that code; anything
 * else thrown goes out as INTERNAL.
 */
export class RpcError extends Error {
  /** Always 'RpcError'. */
  override name = 'RpcError';
  /** One of ErrorCode, or an application-defined string code. */
  readonly code: string;
  /** Extra detail sent along with the code (msgpack values only). */
  readonly data?: unknown;

  constructor(code: ErrorCode | (string & {}), message?: string, data?: unknown) {
    super(message ?? code);
    this.code = code;
    if (data !== undefined) this.data = data;
  }

  /** The `{ code, message, data? }` a response carries. */
  toWire(): WireError {
    return this.data === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, data: this.data };
  }

  /** Rebuild an RpcError from a wire `error` value; anything malformed becomes INTERNAL. */
  static fromWire(value: unknown): RpcError {
    if (value !== null && typeof value === 'object' && typeof (value as WireError).code === 'string') {
      const w = value as WireError;
      return new RpcError(w.code, typeof w.message === 'string' ? w.message : w.code, w.data);
    }
    return new RpcError(ErrorCode.INTERNAL, 'malformed error from peer');
  }
}

/**
 * Turn anything a handler throws into an RpcError fit for the wire. RpcErrors pass as they
 * are; anything else becomes INTERNAL with a generic message, because an arbitrary
 * Error's message can carry paths, SQL or secrets. The original goes to the local onError.
 */
export function toRpcError(err: unknown): RpcError {
  if (err instanceof RpcError) return err;
  return new RpcError(ErrorCode.INTERNAL, 'Internal error');
}

/** True when err is an RpcError (with this code, if one is given). */
export function isRpcError(err: unknown, code?: string): err is RpcError {
  return err instanceof RpcError && (code === undefined || err.code === code);
}
