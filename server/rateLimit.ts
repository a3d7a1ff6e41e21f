// Per-uid token bucket on incoming messages: every request and notification takes a token
// before anything is looked up (unknown and `$` methods pay too, `$ping` too). `$trace`,
// `$ack`, `$cancel` and responses are free only while they pair with work already paid
// for or asked for; otherwise they take a token too (the engine decides, protocol/engine/incoming.ts; issue
// 20 #4). A refusal is one frozen wire error, built once: a refused call must cost a small
// fraction of a served one (issue 9 #3).
//
// Each call takes a token; tokens come back at
// `ratePerSec` up to `burst`. A call finding the bucket empty is answered RATE_LIMITED and
// never reaches its handler; the connection stays, since a flood is not a broken peer.
//
// Buckets are kept per uid, not per socket, so reconnecting does not refill them. A bucket
// that has had time to refill completely is the same as no bucket, so idle ones are
// swept (amortized over calls) and memory follows the uids actually calling.

import { ErrorCode, wireError, type WireError } from '../protocol/index.ts';

/** The server's `rateLimit` option: a token bucket per uid on incoming calls and notifications. */
export interface RateLimitOptions {
  /** Calls per second a uid may sustain. */
  ratePerSec: number;
  /** Calls a uid may make at once after being idle (the bucket's size). */
  burst: number;
}

/**
 * Generous on purpose: a game client makes tens of calls a second; this only stops a
 * runaway or hostile one from taking a whole core.
 */
export const DEFAULT_RATE_LIMIT: Readonly<RateLimitOptions> = Object.freeze({ ratePerSec: 10_000, burst: 20_000 });

interface Bucket {
  tokens: number;
  /** ms timestamp of the last refill. */
  at: number;
}

/** Sweep idle buckets once per this many calls. */
const SWEEP_EVERY = 4096;

/** The per-uid token buckets behind the `rateLimit` option (`server.rateLimiter`). */
export class RateLimiter {
  /** Tokens added per second. */
  readonly ratePerSec: number;
  /** The bucket's size. */
  readonly burst: number;
  #buckets = new Map<string, Bucket>();
  #calls = 0;
  #now: () => number;
  /** Time for an empty bucket to fill, ms: a bucket idle this long can be forgotten. */
  #fullAfterMs: number;
  /** The refusal every over-limit message gets: retryAfterMs is the time one token takes. */
  readonly refusal: WireError;

  constructor(opts: Partial<RateLimitOptions> = {}, now: () => number = () => performance.now()) {
    this.ratePerSec = opts.ratePerSec ?? DEFAULT_RATE_LIMIT.ratePerSec;
    this.burst = opts.burst ?? DEFAULT_RATE_LIMIT.burst;
    if (!(this.ratePerSec > 0) || !(this.burst >= 1)) throw new RangeError('rateLimit needs ratePerSec > 0 and burst >= 1');
    this.#now = now;
    this.#fullAfterMs = (this.burst / this.ratePerSec) * 1000;
    this.refusal = wireError(ErrorCode.RATE_LIMITED, `more than ${this.ratePerSec} calls/s (burst ${this.burst})`, {
      retryAfterMs: Math.ceil(1000 / this.ratePerSec),
    });
  }

  /** Buckets currently kept (uids that called recently). */
  get size(): number {
    return this.#buckets.size;
  }

  /**
   * Take a token for one message by `uid`: undefined if allowed, else the RATE_LIMITED
   * refusal. `now` (ms, the limiter's clock) lets a caller share one clock read per frame.
   */
  take(uid: string, now: number = this.#now()): WireError | undefined {
    if (++this.#calls % SWEEP_EVERY === 0) this.#sweep(now);
    let b = this.#buckets.get(uid);
    if (!b) {
      b = { tokens: this.burst, at: now };
      this.#buckets.set(uid, b);
    } else if (now > b.at) {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) * this.ratePerSec) / 1000);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return undefined;
    }
    return this.refusal;
  }

  #sweep(now: number): void {
    for (const [uid, b] of this.#buckets) if (now - b.at >= this.#fullAfterMs) this.#buckets.delete(uid);
  }
}
