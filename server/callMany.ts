// callMany: one call to many uids, one outcome per uid, never one all-or-nothing rejection.

import { ErrorCode, RpcError } from '../protocol/index.ts';

/** One uid's result of `server.callMany()`: its value, or why there is none. */
export type Outcome<T> =
  | {
      /** The player called. */
      uid: string;
      /** It answered. */
      status: 'ok';
      /** Its answer. */
      value: T;
    }
  /** The client's handler threw (error.code is its code). */
  | {
      /** The player called. */
      uid: string;
      /** Its handler threw. */
      status: 'error';
      /** The client's error (its code, message and data). */
      error: RpcError;
    }
  /** No reply before the deadline. */
  | {
      /** The player called. */
      uid: string;
      /** No reply before the deadline. */
      status: 'timeout';
      /** An RpcError TIMEOUT. */
      error: RpcError;
    }
  /** The uid was not connected, or disconnected during the call. */
  | {
      /** The player called. */
      uid: string;
      /** Not connected, or disconnected during the call. */
      status: 'offline';
      /** An RpcError UNAVAILABLE or DISCONNECTED. */
      error: RpcError;
    };

export function outcomeOf<T>(uid: string, settled: PromiseSettledResult<unknown>): Outcome<T> {
  if (settled.status === 'fulfilled') return { uid, status: 'ok', value: settled.value as T };
  const error = settled.reason instanceof RpcError ? settled.reason : new RpcError(ErrorCode.INTERNAL, String(settled.reason));
  switch (error.code) {
    case ErrorCode.TIMEOUT:
      return { uid, status: 'timeout', error };
    case ErrorCode.UNAVAILABLE:
    case ErrorCode.DISCONNECTED:
      return { uid, status: 'offline', error };
    default:
      return { uid, status: 'error', error };
  }
}

export async function gather<T>(uids: readonly string[], call: (uid: string) => Promise<unknown>): Promise<Outcome<T>[]> {
  const settled = await Promise.allSettled(uids.map(call));
  return settled.map((s, i) => outcomeOf<T>(uids[i]!, s));
}
