// Exactly-once by sequence numbers (SPEC.md §5). Requests and responses are the reliable
// messages. Per session each side numbers the ones it sends 1, 2, 3… (absolute, across
// sockets) and keeps each until the peer acknowledges it; it counts the ones it has
// received and processed. `$ack [n]` says "I have received n". On a resumed socket each
// side waits for the peer's first `$ack [n]`, drops what is ≤ n and re-sends the rest in
// order, so the peer sees seq n+1, n+2… with no gap and no repeat: no message is ever
// delivered twice, and no replay store keyed by call id is needed.
//
// This replaced per-socket counts (issue 10 #1): a reply written on a new socket before
// the peer's first `$ack` arrived was counted by the receiver but not tracked by the
// sender, and from then on each `$ack` released one reply too many. Absolute numbers
// can't drift that way: both sides talk about the same message by the same number.

/** Send `$ack` after this many reliable messages received since the last one… */
export const ACK_EVERY_MESSAGES = 128;
/** …or this many bytes of frames received since the last one. */
export const ACK_EVERY_BYTES = 256 * 1024;
/** Most bytes kept for one session waiting for the peer's `$ack` (maxUnackedBytes). */
export const DEFAULT_MAX_UNACKED_BYTES = 16 * 1024 * 1024;

/** One reliable message sent (or waiting to be sent) and not yet acknowledged. */
export interface Kept {
  readonly seq: number;
  /** Owned bytes (an exact-size copy, never a view into an encoder's shared buffer). */
  readonly bytes: Uint8Array;
  /** The request's call id, or -1 for a response. */
  readonly requestId: number;
  /**
   * The caller gave up on this request while its `$cancel` could not go out (no socket,
   * or the socket not yet resynced): send `$cancel [id]` after the resync.
   */
  cancelOwed: boolean;
}

/**
 * unknown: the peer has not said yet whether it acknowledges; everything is kept.
 * acking: the peer sent `$ack` first; messages are kept until acknowledged.
 * plain: a plain msgpack-rpc peer (its first message was something else); nothing kept.
 */
export type AckMode = 'unknown' | 'acking' | 'plain';

export class ReliableStream {
  mode: AckMode = 'unknown';
  /** Seq of the last reliable message numbered (sent or waiting). */
  sent = 0;
  /** Highest `$ack` from the peer. */
  peerAcked = 0;
  /** Reliable messages received and processed (what our `$ack` says). */
  received = 0;
  /** What our last `$ack` said, and frame bytes received since. */
  ackedReceived = 0;
  bytesSinceAck = 0;
  #kept: Kept[] = [];
  #head = 0;
  #keptBytes = 0;

  /** Bytes of the kept messages: the memory actually retained (owned copies). */
  get keptBytes(): number {
    return this.#keptBytes;
  }

  get keptCount(): number {
    return this.#kept.length - this.#head;
  }

  /** Number the next reliable message; keep it unless the peer is plain. `bytes` must be owned. */
  push(bytes: Uint8Array, requestId: number): Kept | undefined {
    const seq = ++this.sent;
    if (this.mode === 'plain') return undefined;
    const kept: Kept = { seq, bytes, requestId, cancelOwed: false };
    this.#kept.push(kept);
    this.#keptBytes += bytes.byteLength;
    return kept;
  }

  /** Why `$ack [n]` is impossible, or undefined. Checked before ack(). */
  invalidAck(n: unknown): string | undefined {
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) return '$ack count must be a non-negative integer';
    if (n < this.peerAcked) return `$ack went back from ${this.peerAcked} to ${n}`;
    if (n > this.sent) return `$ack ${n} acknowledges more than the ${this.sent} messages sent`;
    return undefined;
  }

  /** The peer has received every message up to `n`: forget them. Returns those dropped. */
  ack(n: number, dropped?: (k: Kept) => void): void {
    this.peerAcked = n;
    while (this.#head < this.#kept.length && this.#kept[this.#head]!.seq <= n) {
      const k = this.#kept[this.#head]!;
      this.#kept[this.#head++] = undefined as never;
      this.#keptBytes -= k.bytes.byteLength;
      dropped?.(k);
    }
    // Compact now and then so the array does not grow with the session's lifetime.
    if (this.#head > 1024 && this.#head * 2 > this.#kept.length) {
      this.#kept = this.#kept.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Kept messages in seq order (all are > peerAcked). */
  *kept(): IterableIterator<Kept> {
    for (let i = this.#head; i < this.#kept.length; i++) yield this.#kept[i]!;
  }

  /** The peer turned out not to acknowledge: keep nothing from now on. Returns bytes freed. */
  becomePlain(): number {
    this.mode = 'plain';
    return this.clear();
  }

  /** Forget every kept message (session over). Returns bytes freed. */
  clear(): number {
    const freed = this.#keptBytes;
    this.#kept = [];
    this.#head = 0;
    this.#keptBytes = 0;
    return freed;
  }

  /** A reliable message was received and processed. */
  count(): void {
    this.received++;
  }

  /** Is an `$ack` due (after a frame was processed)? */
  ackDue(): boolean {
    return (
      this.received !== this.ackedReceived &&
      (this.received - this.ackedReceived >= ACK_EVERY_MESSAGES || this.bytesSinceAck >= ACK_EVERY_BYTES)
    );
  }

  /** We are about to send `$ack [received]`. */
  acked(): number {
    this.ackedReceived = this.received;
    this.bytesSinceAck = 0;
    return this.received;
  }
}
