// What a message costs: the transport's rate limit (admit), the bytes a connection and
// the whole server may hold, and the refusals when it can't pay. Refusals are pre-built
// and shared: a flood of them must be cheap.

import { ErrorCode, type WireError } from '../errors.ts';
import { wireError } from '../refusals.ts';
import type { InboundCall } from './options.ts';
import { replyError } from './send.ts';
import type { EngineState } from './state.ts';

const OVERLOADED_HELD = wireError(ErrorCode.OVERLOADED, 'this connection holds too much: retry when calls finish');
const OVERLOADED_TOTAL = wireError(ErrorCode.OVERLOADED, 'the server holds too much: retry later');

/** What this connection holds: running calls' params, kept messages, the transport's queued input. */
export function heldBytes(s: EngineState<any>): number {
  return s.paramsHeld + s.reliable.keptBytes + (s.opts.heldByTransport?.() ?? 0);
}

/** Room under this connection's and the server's caps for `cost` more bytes? */
export function overHeld(s: EngineState<any>, cost: number): WireError | undefined {
  if (heldBytes(s) + cost > s.maxHeld) return OVERLOADED_HELD;
  const total = s.opts.heldTotal;
  if (total && total.bytes + cost > total.max) return OVERLOADED_TOTAL;
  return undefined;
}

/** Add to (or release from) the server-wide total. */
export function chargeTotal(s: EngineState<any>, delta: number): void {
  const total = s.opts.heldTotal;
  if (total) total.bytes += delta;
}

/** Params held by a notification's handler (or released, with a negative cost). */
export function holdParams(s: EngineState<any>, cost: number): void {
  s.paramsHeld += cost;
  chargeTotal(s, cost);
}

/** Charge one message the rate limit would otherwise not see: false if refused (then counted as a refusal). */
export function pay(s: EngineState<any>): boolean {
  if (s.opts.admit?.() === undefined) return true;
  s.opts.onRefused?.();
  return false;
}

/** Refused: answer with a pre-built error, and let the transport count it. */
export function refuse<C extends InboundCall>(s: EngineState<C>, id: number, error: WireError, method: string): void {
  s.opts.observer?.served(method, error.code, undefined);
  replyError(s, id, error);
  s.opts.onRefused?.();
}

/** Refused as invalid (no such method, too few params, past a limit): answered and observed, not a flood signal. */
export function reject<C extends InboundCall>(s: EngineState<C>, id: number, error: WireError, method: string): void {
  s.opts.observer?.served(method, error.code, undefined);
  replyError(s, id, error);
}
