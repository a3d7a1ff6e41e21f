// Trace context on the wire (SPEC.md, "Trace context (optional)"): a `$trace`
// notification carrying a W3C traceparent, sent immediately before the request it belongs
// to, in the same WebSocket message. Parsing is strict (the W3C grammar) because the
// value comes from the other side and ends up in every span of the trace.

/** The extension's method name. */
export const TRACE = '$trace';

/** A W3C trace context, as `$trace` carries it. */
export interface TraceParent {
  /** 32 lower-case hex digits. */
  traceId: string;
  /** 16 lower-case hex digits: the caller's span. */
  spanId: string;
  /** W3C trace flags (bit 0: sampled). */
  traceFlags: number;
  /** The W3C `tracestate` header's value, if any. */
  traceState?: string;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** A W3C `traceparent` value: `00-<traceId>-<spanId>-<flags>`. */
export function formatTraceparent(traceId: string, spanId: string, traceFlags: number): string {
  return `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/** `$trace` params → trace parent, or undefined for anything malformed (then: no parent). */
export function parseTraceparent(params: unknown[]): TraceParent | undefined {
  const tp = params[0];
  if (typeof tp !== 'string' || tp.length !== 55) return undefined;
  const m = TRACEPARENT.exec(tp);
  if (!m || m[1] === ZERO_TRACE || m[2] === ZERO_SPAN) return undefined;
  const state = params[1];
  // tracestate: at most 512 characters kept (W3C lets a vendor truncate), printable ASCII.
  const traceState = typeof state === 'string' && state.length <= 512 && /^[\x20-\x7e]*$/.test(state) ? state : undefined;
  return { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16), traceState };
}
