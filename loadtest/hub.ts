// How the generators of one run meet. Alone: nothing to share. Through Redis (redis.ts):
// slots, a common start time, snapshots and the verdict.

import type { Snapshot } from './stats.ts';

export interface RemoteSnap {
  seq: number;
  final: boolean;
  snap: Snapshot;
}

export interface Hub {
  readonly generator: number;
  readonly generators: number;
  /** This generator's workers are ready: resolves with the run's start, epoch ms on this machine's clock. */
  startAt(): Promise<number>;
  /** This generator's figures (each second, and the final ones). */
  publish(seq: number, snap: Snapshot, final: boolean): Promise<void>;
  /** The coordinator: the other generators' latest figures, by generator index. */
  others(): Promise<Map<number, RemoteSnap>>;
  /** The coordinator tells the others how the run ended (exit code); the others wait for it. */
  setVerdict(code: number): Promise<void>;
  verdict(timeoutMs: number): Promise<number | undefined>;
  close(): Promise<void>;
}

/** One generator alone. */
export function localHub(): Hub {
  return {
    generator: 0,
    generators: 1,
    startAt: async () => Date.now() + 100,
    publish: async () => {},
    others: async () => new Map(),
    setVerdict: async () => {},
    verdict: async () => undefined,
    close: async () => {},
  };
}
