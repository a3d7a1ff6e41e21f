// The end of a session: every call from here rejects, every running handler's signal
// fires, kept messages and their bytes are released.

import type { RpcError } from '../errors.ts';
import { chargeTotal } from './budget.ts';
import { ReliableStream } from './reliable.ts';
import { untrack } from './running.ts';
import type { EngineState } from './state.ts';

export function failAll(s: EngineState<any>, reason: RpcError): void {
  s.writer.clear();
  s.outgoingCalls?.failAll(reason);
  const incoming = [...s.incoming.values()];
  for (const ctx of incoming) untrack(s, ctx);
  const observer = s.opts.observer;
  for (const ctx of incoming) {
    if (!ctx.unobserved) observer?.served(ctx.method, reason.code, ctx);
    ctx.abort(reason);
  }
  chargeTotal(s, -s.reliable.clear());
  s.reliable = new ReliableStream();
  s.owedCancels = undefined;
  s.writtenSeq = 0;
  s.unwrittenBytes = 0;
}

/** The connection is gone for good. Idempotent. */
export function close(s: EngineState<any>, reason: RpcError): void {
  if (s.closedBy) return;
  s.closedBy = reason;
  failAll(s, reason);
}

/** The session is gone but the peer will serve a new one: the next attach() starts it. */
export function reset(s: EngineState<any>, reason: RpcError): void {
  failAll(s, reason);
  s.onSocket = false;
  s.everAttached = false;
  s.resyncing = false;
}
