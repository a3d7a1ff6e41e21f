// Adds up the snapshots of several sources (a generator's workers, or a run's generators):
// the latest cumulative figures of each, plus every interval histogram and load figure
// that came in since the last take().

import { Histogram } from './histogram.ts';
import { callsDone, mergeSnapshots, servedDone, type ProcLoad, type Snapshot } from './stats.ts';

export class Collector {
  readonly latest = new Map<string, Snapshot>();
  #interval = new Histogram();
  #load = new Map<string, ProcLoad[]>();
  #rates = new Map<string, { calls: number; served: number }>();

  put(source: string, snap: Snapshot): void {
    const prev = this.latest.get(source);
    if (snap.rate) this.#rates.set(source, snap.rate);
    else if (prev && snap.wallMs > prev.wallMs) {
      const s = (snap.wallMs - prev.wallMs) / 1000;
      this.#rates.set(source, { calls: (callsDone(snap) - callsDone(prev)) / s, served: (servedDone(snap) - servedDone(prev)) / s });
    }
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
    m.rate = { calls: 0, served: 0 };
    for (const r of this.#rates.values()) {
      m.rate.calls += r.calls;
      m.rate.served += r.served;
    }
    return m;
  }
}
