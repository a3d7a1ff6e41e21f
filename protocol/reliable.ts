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

/**
 * unknown: the peer has not said yet whether it acknowledges; everything is kept.
 * acking: the peer sent `$ack` first; messages are kept until acknowledged.
 * plain: a plain msgpack-rpc peer (its first message was something else); nothing kept.
 */
export type AckMode = 'unknown' | 'acking' | 'plain';

/** Called for each kept message: its number, owned bytes, and call id (-1 for a response). */
export type KeptVisitor = (seq: number, bytes: Uint8Array, requestId: number) => void;

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
  // Kept messages in two parallel arrays (no object per message: this is the hot path).
  // Unless plain, every message numbered is kept, so kept[#head] is always seq peerAcked+1.
  #bytes: Uint8Array[] = [];
  #ids: number[] = [];
  #head = 0;
  #keptBytes = 0;
  /**
   * Seqs of requests the caller gave up on while their `$cancel` could not go out (no
   * socket, or the socket not yet resynced): `$cancel [id]` follows the resync.
   */
  readonly cancelOwed = new Set<number>();

  /** Bytes of the kept messages: the memory actually retained (owned copies). */
  get keptBytes(): number {
    return this.#keptBytes;
  }

  get keptCount(): number {
    return this.#bytes.length - this.#head;
  }

  /** Number the next reliable message and keep it (unless the peer is plain). `bytes` must be owned. Returns its seq. */
  push(bytes: Uint8Array, requestId: number): number {
    const seq = ++this.sent;
    if (this.mode === 'plain') return seq;
    this.#bytes.push(bytes);
    this.#ids.push(requestId);
    this.#keptBytes += bytes.byteLength;
    return seq;
  }

  /** Is message `seq` still kept (not yet acknowledged)? */
  isKept(seq: number): boolean {
    return this.mode !== 'plain' && seq > this.peerAcked && seq <= this.sent;
  }

  /** Why `$ack [n]` is impossible, or undefined. Checked before ack(). */
  invalidAck(n: unknown): string | undefined {
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) return '$ack count must be a non-negative integer';
    if (n < this.peerAcked) return `$ack went back from ${this.peerAcked} to ${n}`;
    if (n > this.sent) return `$ack ${n} acknowledges more than the ${this.sent} messages sent`;
    return undefined;
  }

  /** The peer has received every message up to `n`: forget them (each passed to `dropped`). */
  ack(n: number, dropped?: KeptVisitor): void {
    let seq = this.peerAcked;
    while (seq < n && this.#head < this.#bytes.length) {
      seq++;
      const bytes = this.#bytes[this.#head]!;
      dropped?.(seq, bytes, this.#ids[this.#head]!);
      this.#bytes[this.#head++] = undefined as never;
      this.#keptBytes -= bytes.byteLength;
    }
    this.peerAcked = n;
    // Compact now and then so the arrays do not grow with the session's lifetime.
    if (this.#head > 1024 && this.#head * 2 > this.#bytes.length) {
      this.#bytes = this.#bytes.slice(this.#head);
      this.#ids = this.#ids.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Visit the kept messages in seq order (all are > peerAcked). */
  forEachKept(visit: KeptVisitor): void {
    for (let i = this.#head, seq = this.peerAcked + 1; i < this.#bytes.length; i++, seq++) visit(seq, this.#bytes[i]!, this.#ids[i]!);
  }

  /** The peer turned out not to acknowledge: keep nothing from now on. Returns bytes freed. */
  becomePlain(): number {
    this.mode = 'plain';
    return this.clear();
  }

  /** Forget every kept message (session over). Returns bytes freed. */
  clear(): number {
    const freed = this.#keptBytes;
    this.#bytes = [];
    this.#ids = [];
    this.#head = 0;
    this.#keptBytes = 0;
    this.cancelOwed.clear();
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
