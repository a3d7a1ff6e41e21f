// The client's replay store: replies to the server's calls, kept so a call the server
// re-sends after a resume gets the same answer instead of running twice.
// Server side this is lru-cache; here a bounded Map does the same job for ~1% of
// lru-cache's bundle size (the browser SDK must stay under 15 KB gzip). Eviction is
// oldest-first, which for a replay window is also least-recently-useful.

import type { ReplayStore } from '../protocol/index.ts';

export class ReplayMap implements ReplayStore {
  #map = new Map<string | number, Uint8Array>();
  constructor(readonly maxEntries: number) {}

  get(key: string | number): Uint8Array | undefined {
    return this.#map.get(key);
  }

  set(key: string | number, value: Uint8Array): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.maxEntries) this.#map.delete(this.#map.keys().next().value!);
  }

  get size(): number {
    return this.#map.size;
  }
}
