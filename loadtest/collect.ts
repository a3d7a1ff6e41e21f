// Adds up the snapshots of several sources (a generator's workers, or a run's generators):
// the latest cumulative figures of each, plus every interval histogram and load figure
// that came in since the last take().

import { Histogram } from './histogram.ts';
import { mergeSnapshots, type ProcLoad, type Snapshot } from './stats.ts';

export class Collector {
  readonly latest = new Map<string, Snapshot>();
  #interval = new Histogram();
  #load = new Map<string, ProcLoad[]>();

  put(source: string, snap: Snapshot): void {
    this.latest.set(source, snap);
    this.#interval.addSparse(snap.interval);
    this.#load.set(source, snap.load);
  }

  /** Everything so far, with the interval figures since the last take. */
  take(extraLoad: ProcLoad[] = []): Snapshot {
    const m = mergeSnapshots([...this.latest.values()]);
    m.interval = this.#interval.toSparse();
    this.#interval.reset();
    m.load = [...[...this.#load.values()].flat(), ...extraLoad];
    this.#load.clear();
    return m;
  }
}
