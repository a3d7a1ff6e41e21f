// Bounds that guard each side against a hostile or buggy peer. Every one has a default
// and can be overridden per server / per client.

/** What one side accepts from the other: message size, params, depth, values, pending calls. */
export interface Limits {
  /**
   * Largest WebSocket message accepted, in bytes. A server cuts a larger one (1009; 1006 on
   * uWebSockets.js); a client refuses it before decoding: 4002, the session ends (SPEC §8).
   */
  maxMessageBytes: number;
  /** Most msgpack-rpc messages accepted in one WebSocket message. */
  maxMessagesPerFrame: number;
  /** Longest method name accepted, in UTF-8 bytes. */
  maxMethodLength: number;
  /** Most params in one request or notification. */
  maxParams: number;
  /** Deepest nesting of arrays/maps inside params or results (the params array is level 1). */
  maxDepth: number;
  /**
   * Most msgpack values in one message (every value counts one: arrays, maps, keys,
   * scalars). Checked on the bytes before decoding: 1 MiB of empty arrays would decode
   * to ~40 MiB of heap.
   */
  maxElements: number;
  /** Most calls from the peer running here at once; more are answered OVERLOADED. */
  maxIncomingPending: number;
  /** Most calls from here to the peer waiting for replies; more fail fast with OVERLOADED. */
  maxOutgoingPending: number;
}

/** The defaults of {@link Limits}: the SPEC's floor (README, "Defaults and limits"). */
export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxMessageBytes: 1024 * 1024,
  maxMessagesPerFrame: 256,
  maxMethodLength: 128,
  maxParams: 32,
  maxDepth: 32,
  maxElements: 100_000,
  maxIncomingPending: 1024,
  maxOutgoingPending: 4096,
});

/** Default deadline of a call, when neither the call nor the peer sets one. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * Defaults filled in, frozen. A result passed back in is returned as it is, so a server's
 * many connections share one limits object. (Not a WeakSet of results: an entry per
 * connection made opening one several times dearer, most of it in the GC.)
 */
export function resolveLimits(partial?: Partial<Limits>): Limits {
  if (partial === undefined || partial === DEFAULT_LIMITS) return DEFAULT_LIMITS as Limits;
  if (Object.isFrozen(partial) && isComplete(partial)) return partial;
  return Object.freeze({ ...DEFAULT_LIMITS, ...partial });
}

/** Limits a peer announced (`$session`, `$limits`, a moved session): known names with positive numbers only. */
export function announcedBy(limits: Partial<Limits>): Limits {
  const clean: Partial<Limits> = {};
  for (const [k, v] of Object.entries(limits)) if (typeof v === 'number' && v >= 1 && k in DEFAULT_LIMITS) (clean as Record<string, number>)[k] = v;
  return resolveLimits(clean);
}

function isComplete(partial: Partial<Limits>): partial is Limits {
  for (const k in DEFAULT_LIMITS) if (typeof partial[k as keyof Limits] !== 'number') return false;
  return true;
}
