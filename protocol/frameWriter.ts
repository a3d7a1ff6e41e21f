// Messages written in the same tick go out as one frame: replies to a pipelined burst
// cost one WebSocket message instead of one each. A frame never holds more messages or
// bytes than the receiver accepts: past either it drops the socket (4002, or cut for
// size). 300 calls made in one tick would otherwise do that.

import { concatFrames } from './codec.ts';
import type { Limits } from './limits.ts';

export class FrameWriter {
  #parts: Uint8Array[] = [];
  #bytes = 0;
  #scheduled = false;
  /** Inside hold()…release(): the caller flushes, no microtask is queued per write. */
  #held = 0;

  constructor(
    readonly send: (frame: Uint8Array) => void,
    /** The receiver's limits (read at each flush: they can change after `$session`/`$limits`). */
    readonly limits: () => Pick<Limits, 'maxMessagesPerFrame' | 'maxMessageBytes'>,
    /** Called after each flush that sent something. */
    readonly afterFlush?: () => void,
  ) {}

  /** Bytes written this tick and not yet handed to `send` (they count toward backpressure). */
  get queuedBytes(): number {
    return this.#bytes;
  }

  get queued(): number {
    return this.#parts.length;
  }

  write(bytes: Uint8Array): void {
    this.#parts.push(bytes);
    this.#bytes += bytes.byteLength;
    if (!this.#scheduled && this.#held === 0) this.#schedule();
  }

  /**
   * Writes until release() wait for the caller's flush: a frame received and answered
   * in the same callback queues no microtask (one per call, otherwise).
   */
  hold(): void {
    this.#held++;
  }

  /** End a hold(): whatever is still queued goes out at the end of the tick. */
  release(): void {
    if (--this.#held === 0 && this.#parts.length > 0 && !this.#scheduled) this.#schedule();
  }

  #schedule(): void {
    this.#scheduled = true;
    queueMicrotask(this.#flushTask);
  }

  #flushTask = (): void => {
    this.#scheduled = false;
    this.flush();
  };

  /** Send whatever is queued now instead of at the end of the tick. */
  flush(): void {
    const parts = this.#parts;
    if (parts.length === 0) return;
    this.#bytes = 0;
    if (parts.length === 1) {
      // The usual flush, one message (sizes were checked when it was encoded): no frame to
      // build and no new array. Emptied before send(), which may write again (re-entry).
      const only = parts[0]!;
      parts.length = 0;
      this.send(only);
      this.afterFlush?.();
      return;
    }
    this.#parts = [];
    const { maxMessagesPerFrame, maxMessageBytes } = this.limits();
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < parts.length; i++) {
      const size = parts[i]!.byteLength;
      if (i > start && (i - start >= maxMessagesPerFrame || bytes + size > maxMessageBytes)) {
        this.send(concatFrames(parts.slice(start, i)));
        start = i;
        bytes = 0;
      }
      bytes += size;
    }
    this.send(concatFrames(start === 0 ? parts : parts.slice(start)));
    this.afterFlush?.();
  }

  /** Drop what is queued (the socket is gone; reliable messages are kept elsewhere). */
  clear(): void {
    this.#parts = [];
    this.#bytes = 0;
  }
}
