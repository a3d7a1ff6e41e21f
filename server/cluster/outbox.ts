// Messages to other nodes, batched: whatever goes to one node in the same event-loop turn
// leaves as one SPUBLISH of concatenated msgpack values (the receiver decodes them all).
// The flush waits for setImmediate, not a microtask: replies to forwarded calls come from
// many client sockets, each read in its own callback of one poll phase, and a microtask
// would send each on its own (a Redis write, ~20 µs of syscalls, per call at 32 in flight).

/** How many subscribers got the batch: 0 means the node is gone, -1 the publish failed. */
export type Delivered = (receivers: number) => void;

/** A batch is sent early past this size, so one message never grows without bound. */
const MAX_BATCH_BYTES = 256 * 1024;

interface Batch {
  parts: Buffer[];
  bytes: number;
  watchers: Delivered[];
}

export class Outbox {
  #batches = new Map<string, Batch>();
  #scheduled = false;

  constructor(readonly publish: (node: string, bytes: Buffer) => Promise<number>) {}

  push(node: string, message: Buffer, onDelivered?: Delivered): void {
    let batch = this.#batches.get(node);
    if (!batch) this.#batches.set(node, (batch = { parts: [], bytes: 0, watchers: [] }));
    batch.parts.push(message);
    batch.bytes += message.byteLength;
    if (onDelivered) batch.watchers.push(onDelivered);
    if (batch.bytes >= MAX_BATCH_BYTES) {
      this.#batches.delete(node);
      this.#send(node, batch);
    } else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  #flush = (): void => {
    this.#scheduled = false;
    const batches = this.#batches;
    this.#batches = new Map();
    for (const [node, batch] of batches) this.#send(node, batch);
  };

  #send(node: string, batch: Batch): void {
    const bytes = batch.parts.length === 1 ? batch.parts[0]! : Buffer.concat(batch.parts, batch.bytes);
    const tell = (n: number) => {
      for (const w of batch.watchers) w(n);
    };
    this.publish(node, bytes).then(tell, () => tell(-1));
  }
}
