// Calls and notifications from this side: checked against the peer's limits before they
// are sent (the receiver would close the whole socket), numbered and kept (send.ts), and
// waited for (pendingCalls.ts); a call given up tells the callee (`$cancel`).

import { encode } from '../codec.ts';
import { ErrorCode, RpcError } from '../errors.ts';
import type { Limits } from '../limits.ts';
import { CANCEL, NOTIFICATION, REQUEST, checkCall } from '../messages.ts';
import type { CallOptions } from '../contract.ts';
import { PendingCalls, defaultTimers, type PendingCall } from './pendingCalls.ts';
import { sendReliable } from './send.ts';
import type { EngineState, OutgoingData } from './state.ts';
import { callWithUploads, hasUpload } from './uploads.ts';

/**
 * Why a call or notification may not be sent, or undefined. The receiver closes the whole
 * socket (4002, final) on a method name or params past its limits; refuse the one message
 * here instead, by the same rules.
 */
export function outgoingError(method: string, params: unknown[], limits: Limits): RpcError | undefined {
  try {
    checkCall(method, params, limits);
    return undefined;
  } catch (err) {
    return new RpcError(ErrorCode.INVALID_PARAMS, (err as Error).message);
  }
}

/**
 * `onId`: told the call's id once it has one (a stream's reader registers under it).
 * `whole`: a request that may be sent another way when it breaks the peer's limits (a
 * stream's `$items`, sent one `$item` at a time instead): undefined then, not a rejection.
 */
export function call(s: EngineState<any>, method: string, params: unknown[], opts?: CallOptions, onId?: (id: number) => void): Promise<unknown>;
export function call(s: EngineState<any>, method: string, params: unknown[], opts: CallOptions, onId: undefined, whole: true): Promise<unknown> | undefined;
export function call(s: EngineState<any>, method: string, params: unknown[], opts?: CallOptions, onId?: (id: number) => void, whole = false): Promise<unknown> | undefined {
  if (s.closedBy) return Promise.reject(s.closedBy);
  if (hasUpload(params)) return callWithUploads(s, method, params, opts, onId); // sent as `$call`
  const invalid = outgoingError(method, params, s.peerLimits);
  if (invalid) return Promise.reject(invalid);
  const outgoing = (s.outgoingCalls ??= new PendingCalls<OutgoingData>({
    timers: s.opts.timers ?? defaultTimers,
    onGiveUp: (given) => cancelRemote(s, given),
  }));
  if (outgoing.size >= s.limits.maxOutgoingPending)
    return Promise.reject(new RpcError(ErrorCode.OVERLOADED, `more than ${s.limits.maxOutgoingPending} calls pending`));
  if (s.onSocket && s.opts.congested?.(s.writer.queuedBytes))
    return Promise.reject(new RpcError(ErrorCode.OVERLOADED, 'the peer is not reading fast enough'));
  const signal = opts?.signal;
  if (signal?.aborted) return Promise.reject(new RpcError(ErrorCode.CANCELLED, 'call aborted before it was sent'));
  const id = outgoing.allocateId();
  onId?.(id);
  let bytes: Uint8Array;
  try {
    // Checked by the scan the receiver runs: a Set, a Map, a BigInt or params past the
    // peer's limits fail here. sendReliable keeps a copy.
    bytes = encode([REQUEST, id, method, params], s.peerLimits);
  } catch (err) {
    return whole ? undefined : Promise.reject(err as RpcError);
  }
  // The receiver would drop the whole socket (1009) for a larger message; fail this call alone.
  if (bytes.byteLength > s.peerLimits.maxMessageBytes)
    return whole ? undefined : Promise.reject(new RpcError(ErrorCode.INVALID_PARAMS, `request is ${bytes.byteLength} bytes, over the ${s.peerLimits.maxMessageBytes}-byte limit`));
  // Numbered and written before it is tracked: nothing is sent before this tick's flush,
  // so no answer can arrive first.
  return outgoing.add(id, method, sendReliable(s, bytes, id), opts?.timeoutMs ?? s.defaultTimeoutMs, signal);
}

/** Fire and forget. At most once: dropped while detached, resyncing or congested. */
export function notify(s: EngineState<any>, method: string, params: unknown[]): void {
  if (s.closedBy) return;
  const invalid = outgoingError(method, params, s.peerLimits);
  if (invalid) throw invalid;
  // An upload is read through its call (uploads.ts); encoded as a value it would go out as {}.
  if (hasUpload(params)) throw new RpcError(ErrorCode.INVALID_PARAMS, 'an upload needs a call');
  if (!s.onSocket || s.resyncing || s.opts.congested?.(s.writer.queuedBytes)) {
    s.droppedNotifications++;
    s.opts.observer?.dropped();
    return;
  }
  s.writer.write(encode([NOTIFICATION, method, params], s.peerLimits)); // throws RpcError INVALID_PARAMS
}

/** The caller gave up on a call (deadline or abort): tell the callee, now or after the resync. */
export function cancelRemote(s: EngineState<any>, given: PendingCall<OutgoingData>): void {
  if (s.relay) return s.relay.cancel(given.id); // the player is on another node now
  const seq = given.data;
  if (s.onSocket && !s.resyncing) {
    s.writer.write(encode([NOTIFICATION, CANCEL, [given.id]]));
  } else if (s.reliable.isKept(seq)) {
    (s.reliable.cancelOwed ??= new Set()).add(seq); // goes out right after the request's re-send
  } else if (s.reliable.mode === 'acking') {
    (s.owedCancels ??= []).push(given.id); // the peer has the request; tell it after the resync
  }
}
