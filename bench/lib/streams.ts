// The stream scenarios' shape (issue 23), shared by the server hosts, the client workers and
// bench/streams.ts, so every system carries the same items: `stream-down` / `stream-up` send
// them as a stream, `notify-down` / `notify-up` as notifications of the same data.

import { nowUs } from './payload.ts';

export const STREAMS = {
  /** Items in one stream; the reader then opens the next (bench/signalr/Program.cs says 1000 too). */
  itemsPerStream: 1000,
  /**
   * Notifications have no flow control: a sender flat out fills the socket until the server
   * drops the client. So the notification baselines (and SignalR's client → server stream,
   * whose JS client has none either) keep at most `window` items unacknowledged per
   * connection; the receiver says `ack(seq + 1)` after every `ackEvery`-th item, a message
   * back per 16 items where a Volley stream answers each one.
   */
  window: 64,
  ackEvery: 16,
  /**
   * A sender waiting this long for an ack takes its acks as lost (a notification dropped
   * past Volley's per-uid rate limit, 10,000/s by default, is never acked) and goes on;
   * the run counts it as an error, so a stalled window shows instead of a quiet low rate.
   */
  stallMs: 2000,
} as const;

/** One item: a sequence number, its send time (µs, monotonic, one-way latency), 16 bytes. */
export interface Item {
  seq: number;
  t: number;
  payload: Uint8Array;
}

const PAYLOAD = new Uint8Array(16).fill(0x2a);

/** A fresh item, stamped now (about 45 bytes of msgpack). */
export function item(seq: number): Item {
  return { seq, t: nowUs(), payload: PAYLOAD };
}

/** Should the receiver of `it` acknowledge now? (after every `ackEvery`-th item) */
export const acksAt = (seq: number): boolean => (seq + 1) % STREAMS.ackEvery === 0;

/** The sender's side of the notification window: at most `STREAMS.window` items unacknowledged. */
export class SendWindow {
  sent = 0;
  /** Times the acks were taken as lost (`unstick`). */
  stalls = 0;
  #acked = 0;
  #wake: (() => void) | undefined;
  #waitingSince = 0;

  /** The receiver has everything before `n`. */
  ack(n: number): void {
    if (n > this.#acked) this.#acked = n;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** undefined while there is room; else a promise resolved by the next ack (or `release`). */
  room(): Promise<void> | undefined {
    if (this.sent - this.#acked < STREAMS.window) return undefined;
    this.#waitingSince = Date.now();
    return new Promise((r) => (this.#wake = r));
  }

  /** Waiting past STREAMS.stallMs: the acks are taken as lost, the sender goes on. */
  unstick(now: number): void {
    if (this.#wake && now - this.#waitingSince > STREAMS.stallMs) {
      this.stalls++;
      this.ack(this.sent);
    }
  }

  /** A new stream (SignalR's uploads count from 0 each), or a stop: wake a waiting sender. */
  reset(): void {
    this.sent = 0;
    this.ack(0);
    this.#acked = 0;
  }
}

/** Unstick `windows()` now and then (one timer per process, not one per wait); stop it with clearInterval. */
export function watchWindows(windows: () => Iterable<SendWindow | undefined>): ReturnType<typeof setInterval> {
  const timer = setInterval(() => {
    const now = Date.now();
    for (const w of windows()) w?.unstick(now);
  }, STREAMS.stallMs / 4);
  timer.unref();
  return timer;
}

/**
 * Send items through `w` while `go()` (at most `max`): each one once there is room.
 * Returns how many were sent.
 */
export async function pump(w: SendWindow, send: (it: Item) => void, go: () => boolean, max = Infinity): Promise<number> {
  let n = 0;
  while (n < max && go()) {
    const wait = w.room();
    if (wait) {
      await wait;
      continue;
    }
    send(item(w.sent++));
    n++;
  }
  return n;
}
