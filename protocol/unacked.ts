// Replies sent on the current socket that the peer has not yet confirmed receiving.
//
// Why not put every reply straight into the replay store? An LRU insert costs 400-900 ns
// (measured with lru-cache), over 10% of a whole call's server CPU. Instead, the
// receiver of responses counts them and every ACK_EVERY responses sends `$ack [count]`;
// TCP keeps one socket's messages in order, so the first `count` replies sent on it are
// surely delivered and can be forgotten. What is left when the socket drops is exactly
// what may be lost, and only that moves into the replay store. Cost per reply: two
// array pushes.

/** Responses received between two `$ack`s. */
export const ACK_EVERY = 128;

const EMPTY = new Uint8Array(0);

export class UnackedReplies {
  #ids: number[] = [];
  #bytes: Uint8Array[] = [];
  #head = 0;
  /** Count of replies sent on this socket that the first entry stands for. */
  #base = 0;
  /** Bytes of the replies kept. */
  #bytesKept = 0;

  /**
   * `maxBytes` bounds memory as `maxEntries` alone can't: a peer that sends one `$ack` and
   * then never again would otherwise pin maxEntries replies of any size (16 384 × 1 MiB).
   * An honest peer's unacked replies are its ack lag (128) plus what is in flight, and a
   * server cuts a reader more than 8 MiB behind, so 16 MiB leaves room for both.
   */
  constructor(
    readonly maxEntries: number,
    readonly maxBytes = 16 * 1024 * 1024,
  ) {}

  get bytes(): number {
    return this.#bytesKept;
  }

  get size(): number {
    return this.#ids.length - this.#head;
  }

  /** A response that needs no replay (a refusal): counted, not kept. */
  skip(): void {
    this.push(-1, EMPTY);
  }

  push(id: number, bytes: Uint8Array): void {
    this.#ids.push(id);
    this.#bytes.push(bytes);
    this.#bytesKept += bytes.byteLength;
    // A peer that announced acks but never sends them must not grow memory forever.
    while (this.size > 1 && (this.size > this.maxEntries || this.#bytesKept > this.maxBytes)) this.#drop(1);
  }

  /** The peer has received the first `count` replies sent on this socket. */
  ack(count: number): void {
    const n = Math.min(Math.floor(count) - this.#base, this.size); // a fraction would split an entry
    if (n > 0) this.#drop(n);
  }

  #drop(n: number): void {
    for (let i = this.#head; i < this.#head + n; i++) {
      this.#bytesKept -= this.#bytes[i]!.byteLength;
      this.#bytes[i] = undefined as never;
    }
    this.#head += n;
    this.#base += n;
    // Compact now and then so the arrays don't grow with the connection's lifetime.
    if (this.#head > 1024 && this.#head * 2 > this.#ids.length) {
      this.#ids = this.#ids.slice(this.#head);
      this.#bytes = this.#bytes.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Hand every unconfirmed reply to `keep` and start over (the socket is gone). */
  drain(keep: (id: number, bytes: Uint8Array) => void): void {
    for (let i = this.#head; i < this.#ids.length; i++) if (this.#ids[i]! >= 0) keep(this.#ids[i]!, this.#bytes[i]!);
    this.#ids = [];
    this.#bytes = [];
    this.#head = 0;
    this.#base = 0;
    this.#bytesKept = 0;
  }
}
