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

/** Called for each kept message dropped by an `$ack`: its number, size, and call id (-1 for a response). */
export type DroppedVisitor = (seq: number, byteLength: number, requestId: number) => void;
/** Called for each kept message to re-send: its number, bytes, and call id. */
export type KeptVisitor = (seq: number, bytes: Uint8Array, requestId: number) => void;

/** Kept bytes are copied into chunks of this size (a message past a quarter of it gets its own). */
const MIN_CHUNK = 4 * 1024;
const MAX_CHUNK = 64 * 1024;
/** The ring of a stream that has kept nothing yet (an array and a typed array per session are not free). */
const NO_META = new Float64Array(0);
/** Length 0, so the first push replaces it (#makeRoom): never written. */
const NO_CHUNKS: (Uint8Array | undefined)[] = [];

// Released chunks, reused by every stream in the process (one stack per chunk size). A busy
// session releases its open chunk at each `$ack` (every 128 messages or 256 KiB) and needs
// a new one at the next push; a new off-heap Uint8Array cost ~8 µs for 4 KiB in a live
// server (malloc, zeroing, an ArrayBuffer the GC tracks). Only acknowledged chunks come
// here, and nothing outside the stream views a chunk (a re-send gets a copy: a peer may
// `$ack` what it never received, before the socket wrote it). At most MAX_SPARE_BYTES
// wait, so an idle process holds little.
const SIZES = Math.log2(MAX_CHUNK / MIN_CHUNK) + 1;
const spare: Uint8Array[][] = Array.from({ length: SIZES }, () => []);
const MAX_SPARE_BYTES = 4 * 1024 * 1024;
let spareBytes = 0;

function sizeIndex(bytes: number): number {
  return 31 - Math.clz32(bytes / MIN_CHUNK);
}

function takeChunk(size: number): Uint8Array {
  const chunk = spare[sizeIndex(size)]!.pop();
  if (chunk === undefined) return new Uint8Array(size);
  spareBytes -= size;
  return chunk;
}

function releaseChunk(chunk: Uint8Array): void {
  const size = chunk.byteLength;
  // Only the ring's own sizes (a large message's chunk is its exact size).
  if (spareBytes + size > MAX_SPARE_BYTES || size < MIN_CHUNK || (size & (size - 1)) !== 0 || size > MAX_CHUNK) return;
  spare[sizeIndex(size)]!.push(chunk);
  spareBytes += size;
}

/** Bytes of released chunks waiting for reuse (for tests). */
export function spareChunkBytes(): number {
  return spareBytes;
}

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
  // Kept messages, #head..#tail, in a ring that keeps its capacity (no object and no
  // allocation per message: this is the hot path): the chunk each one's copy is in, and
  // its start, end and call id in `#meta` (3 numbers each). The bytes are copied into
  // chunks this stream owns: a copy per message cost an allocation and, at high rates,
  // most of the GC time. Unless plain, every message numbered is kept, so message #head
  // is always seq peerAcked+1.
  #chunkOf: (Uint8Array | undefined)[] = NO_CHUNKS;
  #meta = NO_META;
  #head = 0;
  #tail = 0;
  /** The chunk being filled, and how far. */
  #open: Uint8Array | undefined;
  #openUsed = 0;
  /** Bytes of every chunk still referenced: the memory actually retained. */
  #retained = 0;
  /**
   * Seqs of requests the caller gave up on while their `$cancel` could not go out (no
   * socket, or the socket not yet resynced): `$cancel [id]` follows the resync. Made
   * when first needed: most sessions never need it.
   */
  cancelOwed: Set<number> | undefined;

  /** Bytes retained for the kept messages: the chunks they are in (not only their own sizes). */
  get keptBytes(): number {
    return this.#retained;
  }

  get keptCount(): number {
    return this.#tail - this.#head;
  }

  /** Number the next reliable message and keep a copy of it (unless the peer is plain). Returns its seq. */
  push(bytes: Uint8Array, requestId: number): number {
    const seq = ++this.sent;
    if (this.mode === 'plain') return seq;
    const size = bytes.byteLength;
    let chunk = this.#open;
    let at = this.#openUsed;
    if (size > MAX_CHUNK / 4) {
      // Large: a chunk of its own, exactly its size. The open chunk is closed, so every
      // chunk's messages stay contiguous in seq order (ack() relies on it).
      chunk = new Uint8Array(size);
      at = 0;
      this.#retained += size;
      this.#open = undefined;
    } else {
      if (chunk === undefined || at + size > chunk.byteLength) {
        // The next chunk is twice the last while the last is still in use (a session
        // that keeps a lot allocates seldom, an idle one little), and at least the
        // message: up to a quarter of MAX_CHUNK here, so it always fits.
        let next = chunk ? Math.min(MAX_CHUNK, chunk.byteLength * 2) : MIN_CHUNK;
        while (next < size) next *= 2;
        chunk = this.#open = takeChunk(next);
        this.#retained += next;
        at = 0;
      }
      this.#openUsed = at + size;
    }
    chunk.set(bytes, at);
    if (this.#tail === this.#chunkOf.length) this.#makeRoom();
    const i = this.#tail++;
    this.#chunkOf[i] = chunk;
    this.#meta[3 * i] = at;
    this.#meta[3 * i + 1] = at + size;
    this.#meta[3 * i + 2] = requestId;
    return seq;
  }

  /** The ring is full at its end: move the kept messages to the front, or double it. */
  #makeRoom(): void {
    const count = this.#tail - this.#head;
    const capacity = this.#chunkOf.length;
    if (this.#head > 0 && count * 2 <= capacity) {
      this.#chunkOf.copyWithin(0, this.#head, this.#tail);
      this.#chunkOf.fill(undefined, count);
      this.#meta.copyWithin(0, 3 * this.#head, 3 * this.#tail);
    } else {
      const next = Math.max(16, capacity * 2);
      const chunks = new Array<Uint8Array | undefined>(next).fill(undefined);
      const meta = new Float64Array(3 * next);
      for (let i = 0; i < count; i++) chunks[i] = this.#chunkOf[this.#head + i];
      meta.set(this.#meta.subarray(3 * this.#head, 3 * this.#tail));
      this.#chunkOf = chunks;
      this.#meta = meta;
    }
    this.#head = 0;
    this.#tail = count;
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
  ack(n: number, dropped?: DroppedVisitor): void {
    let seq = this.peerAcked;
    const chunks = this.#chunkOf;
    const meta = this.#meta;
    const tail = this.#tail;
    while (seq < n && this.#head < tail) {
      seq++;
      const i = this.#head++;
      const chunk = chunks[i]!;
      dropped?.(seq, meta[3 * i + 1]! - meta[3 * i]!, meta[3 * i + 2]!);
      chunks[i] = undefined;
      // The last message in a chunk releases it; messages are acknowledged in the order
      // they were copied, so nothing earlier still uses it.
      if (i + 1 === tail || chunks[i + 1] !== chunk) {
        if (chunk === this.#open) this.#open = undefined;
        this.#retained -= chunk.byteLength;
        releaseChunk(chunk);
      }
    }
    this.peerAcked = n;
    if (this.#head === tail) this.#head = this.#tail = 0;
  }

  /**
   * Visit the kept messages in seq order (all are > peerAcked), each as a copy the caller
   * may hand to a socket: once acknowledged, its chunk is reused by other sessions.
   */
  forEachKept(visit: KeptVisitor): void {
    const meta = this.#meta;
    for (let i = this.#head, seq = this.peerAcked + 1; i < this.#tail; i++, seq++)
      visit(seq, this.#chunkOf[i]!.slice(meta[3 * i]!, meta[3 * i + 1]!), meta[3 * i + 2]!);
  }

  /** The peer turned out not to acknowledge: keep nothing from now on. Returns bytes freed. */
  becomePlain(): number {
    this.mode = 'plain';
    return this.clear();
  }

  /** Forget every kept message (session over). Returns bytes freed. */
  clear(): number {
    const freed = this.#retained;
    this.#chunkOf = NO_CHUNKS;
    this.#meta = NO_META;
    this.#head = this.#tail = 0;
    this.#open = undefined;
    this.#retained = 0;
    this.cancelOwed = undefined;
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
