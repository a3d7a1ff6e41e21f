// Reconnect delays: exponential backoff with jitter, so a server restart isn't met by
// every client reconnecting in the same millisecond.

/** The client's `reconnect` option: jittered exponential backoff between attempts. */
export interface ReconnectOptions {
  /** First delay, ms. Default 250. */
  initialDelayMs?: number;
  /** Cap on the delay, ms. Default 5000. */
  maxDelayMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** Fraction of the delay that is random (0…1). Default 0.5. */
  jitter?: number;
  /** Give up (state 'closed') after this many attempts in a row. Default: never. */
  maxAttempts?: number;
}

/** Delay before reconnect attempt `attempt` (0-based). */
export function backoffDelay(attempt: number, opts: ReconnectOptions = {}, random: () => number = Math.random): number {
  const base = Math.min(opts.maxDelayMs ?? 5000, (opts.initialDelayMs ?? 250) * (opts.factor ?? 2) ** attempt);
  const jitter = Math.min(1, Math.max(0, opts.jitter ?? 0.5));
  return Math.round(base * (1 - jitter * random()));
}
