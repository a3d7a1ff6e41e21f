// Stream items (SPEC §12) by method and direction: one counter per (method, sent|received),
// in a typed array, so an item costs a method lookup and an addition. The methods are a
// call table's (labels.ts: the server's handlers for streams of calls it serves, the learned
// client methods for calls it makes), and each (method, direction) takes one series from
// the budget the call histograms share; past it, the item is counted under `other`.

import type { SeriesBudget } from './callStats.ts';
import type { MethodTable } from './labels.ts';

export const SENT = 'sent';
export const RECEIVED = 'received';

export class ItemStats {
  /** counts[method * 2 + (sent ? 0 : 1)]. */
  readonly counts: Float64Array;
  readonly #admitted: Uint8Array;

  constructor(
    readonly methods: MethodTable,
    readonly budget: SeriesBudget,
  ) {
    this.counts = new Float64Array((methods.cap + 1) * 2);
    this.#admitted = new Uint8Array(this.counts.length);
    // Where items go past the budget, taken up front: (other, sent) and (other, received).
    if (!budget.take(2)) throw new RangeError('observe.maxSeries is too small for the metrics Volley always has');
    this.#admitted[methods.other * 2] = this.#admitted[methods.other * 2 + 1] = 1;
  }

  /** One item of a stream of `method` crossed, sent by this side or received. */
  record(method: string, sent: boolean): void {
    let i = this.methods.indexOf(method) * 2 + (sent ? 0 : 1);
    if (this.#admitted[i] === 0) {
      if (this.budget.take(1)) this.#admitted[i] = 1;
      else i = this.methods.other * 2 + (sent ? 0 : 1);
    }
    this.counts[i]!++;
  }

  /** Counters with at least one item: method, direction, count. */
  *series(): Generator<{ method: string; direction: string; count: number }> {
    for (let i = 0; i < this.counts.length; i++)
      if (this.counts[i]! > 0) yield { method: this.methods.nameOf(i >> 1), direction: i & 1 ? RECEIVED : SENT, count: this.counts[i]! };
  }
}
