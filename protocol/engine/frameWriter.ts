// Messages written in the same tick go out as one frame: replies to a pipelined burst
// cost one WebSocket message instead of one each. A frame never holds more messages or
// bytes than the receiver accepts: past either it drops the socket (4002, or cut for
// size). 300 calls made in one tick would otherwise do that.

import { concatFrames } from '../codec.ts';
import type { Limits } from '../limits.ts';

/** Where a writer's frames go: its peer (an object, not closures: one per connection costs heap). */
export interface FrameSink {
  /** Hand one frame to the transport. */
  sendFrame(frame: Uint8Array): void;
  /** The receiver's limits (read at each flush: they can change after `$session`/`$limits`). */
  readonly peerLimits: Pick<Limits, 'maxMessagesPerFrame' | 'maxMessageBytes'>;
  /** Called after each flush that sent something. */
  flushed(): void;
}

// Writers with something queued at the end of the tick, flushed by ONE microtask for all
// of them: a server calling 1,000 players in a tick (callMany, a game tick) queued a
// microtask per player, and each writer held a closure for it.
let due: FrameWriter[] = [];
let flushQueued = false;
function flushDue(): void {
  // Writers scheduled while these flush (a send that writes again) join this pass. One
  // that throws must not stop the others (they would never be scheduled again): its
  // error is rethrown after, as its own microtask would have.
  let failed = false;
  let failure: unknown;
  for (let i = 0; i < due.length; i++) {
    try {
      due[i]!.endOfTick();
    } catch (err) {
      if (!failed) failure = err;
      failed = true;
    }
  }
  due = [];
  flushQueued = false;
  if (failed) throw failure;
}

export class FrameWriter {
  #parts: Uint8Array[] = [];
  #bytes = 0;
  #scheduled = false;
  /** Inside hold()…release(): the caller flushes, no microtask is queued per write. */
  #held = 0;

  constructor(readonly sink: FrameSink) {}

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
    due.push(this);
    if (!flushQueued) {
      flushQueued = true;
      queueMicrotask(flushDue);
    }
  }

  /** @internal The tick's shared flush reached this writer. */
  endOfTick(): void {
    this.#scheduled = false;
    this.flush();
  }

  /** Send whatever is queued now instead of at the end of the tick. */
  flush(): void {
    const parts = this.#parts;
    if (parts.length === 0) return;
    this.#bytes = 0;
    const sink = this.sink;
    if (parts.length === 1) {
      // The usual flush, one message (sizes were checked when it was encoded): no frame to
      // build. A new array, not `length = 0` (a runtime call, dearer than the allocation),
      // and before sendFrame(), which may write again (re-entry).
      this.#parts = [];
      sink.sendFrame(parts[0]!);
      sink.flushed();
      return;
    }
    this.#parts = [];
    const { maxMessagesPerFrame, maxMessageBytes } = sink.peerLimits;
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < parts.length; i++) {
      const size = parts[i]!.byteLength;
      if (i > start && (i - start >= maxMessagesPerFrame || bytes + size > maxMessageBytes)) {
        sink.sendFrame(concatFrames(parts.slice(start, i)));
        start = i;
        bytes = 0;
      }
      bytes += size;
    }
    sink.sendFrame(concatFrames(start === 0 ? parts : parts.slice(start)));
    sink.flushed();
  }

  /** Drop what is queued (the socket is gone; reliable messages are kept elsewhere). */
  clear(): void {
    this.#parts = [];
    this.#bytes = 0;
  }
}
