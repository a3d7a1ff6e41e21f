// Results of completed calls, kept so that a call re-sent after a reconnect gets the
// stored answer instead of running again. One cache for the whole server, keyed by
// "<session id>:<call id>", bounded in entries, bytes and age (the resume window).

import { LRUCache } from 'lru-cache';
import type { ReplayStore } from '../protocol/index.ts';

export interface ReplayCacheOptions {
  ttlMs: number;
  maxEntries?: number;
  maxBytes?: number;
}

export class ReplayCache implements ReplayStore {
  #lru: LRUCache<string, Uint8Array>;

  constructor(opts: ReplayCacheOptions) {
    this.#lru = new LRUCache<string, Uint8Array>({
      max: opts.maxEntries ?? 100_000,
      maxSize: opts.maxBytes ?? 64 * 1024 * 1024,
      sizeCalculation: (v) => v.byteLength + 64,
      ttl: opts.ttlMs,
      // Entries are looked up only after a resume; don't pay for age updates on reads.
      updateAgeOnGet: false,
      ttlAutopurge: false,
    });
  }

  get(key: string | number): Uint8Array | undefined {
    return this.#lru.get(String(key));
  }

  set(key: string | number, value: Uint8Array): void {
    this.#lru.set(String(key), value);
  }

  get size(): number {
    return this.#lru.size;
  }
}
