// What the kit server has seen, shared by its handlers, scripts and verdicts.

import type { RecordingProxy } from './proxy.ts';
import type { VolleyServer } from '../server/index.ts';

export interface Verdict {
  ok: boolean;
  detail: string;
}

export interface KitState {
  proxy: RecordingProxy;
  /** Inner servers by path prefix ('' for the default one). */
  servers: Map<string, VolleyServer>;
  /** Handler runs per key (count): exactly-once shows as 1. */
  runs: Map<string, number>;
  /** sleep handlers whose abort signal fired, per key. */
  cancelled: Map<string, number>;
  /** kit.note notifications received, per key. */
  notes: Map<string, number>;
  /** kit.aborted notifications from clients (their handler saw `$cancel`), per tag. */
  aborted: Map<string, number>;
}

export function bump(map: Map<string, number>, key: string): number {
  const n = (map.get(key) ?? 0) + 1;
  map.set(key, n);
  return n;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await sleep(10);
  }
  return true;
}

export const pass = (detail = 'ok'): Verdict => ({ ok: true, detail });
export const fail = (detail: string): Verdict => ({ ok: false, detail });

/** Deep equality for decoded msgpack values (bin, dates and NaN included). */
export function same(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a === 'number' && typeof b === 'number') return a === b; // 0 and -0: msgpack ints have no sign of zero
  if (a instanceof Uint8Array && b instanceof Uint8Array) return a.length === b.length && a.every((x, i) => x === b[i]);
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const ka = Object.keys(a).filter((k) => (a as never)[k] !== undefined);
    const kb = Object.keys(b).filter((k) => (b as never)[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => same((a as never)[k], (b as never)[k]));
  }
  return (a === null || a === undefined) && (b === null || b === undefined);
}

export const show = (v: unknown) =>
  JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? `<bin ${x.length}>` : x))?.slice(0, 200);
