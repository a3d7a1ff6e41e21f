// callMany: one call to many uids, one outcome per uid, never one all-or-nothing rejection.

import { ErrorCode, RpcError } from '../protocol/index.ts';

export type Outcome<T> =
  | { uid: string; status: 'ok'; value: T }
  /** The client's handler threw (error.code is its code). */
  | { uid: string; status: 'error'; error: RpcError }
  /** No reply before the deadline. */
  | { uid: string; status: 'timeout'; error: RpcError }
  /** The uid was not connected, or disconnected during the call. */
  | { uid: string; status: 'offline'; error: RpcError };

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
