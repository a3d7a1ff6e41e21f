// Runs the cases of cases.json with the TypeScript client, one line per case.

import { Run, type Env } from './harness.ts';
import { cases } from './cases.ts';

export interface Result {
  id: string;
  title: string;
  ok: boolean;
  detail?: string;
  ms: number;
}

/** Run every case of cases.json, in order; one line per case through `log`. */
export async function runAll(env: Env, list: { id: string; title: string; path: string }[], log: (line: string) => void, only?: Set<string>): Promise<Result[]> {
  const results: Result[] = [];
  for (const c of list) {
    if (only && !only.has(c.id)) continue;
    const fn = cases[c.id];
    const run = new Run(env, c.id, c.path === '-' ? '/' : c.path);
    const t0 = Date.now();
    let res: Result;
    if (!fn) res = { id: c.id, title: c.title, ok: false, detail: 'no implementation in the TypeScript runner', ms: 0 };
    else {
      try {
        await withTimeout(fn(run), 25_000);
        res = { id: c.id, title: c.title, ok: true, ms: Date.now() - t0 };
      } catch (err) {
        res = { id: c.id, title: c.title, ok: false, detail: (err as Error).message, ms: Date.now() - t0 };
      }
    }
    run.close();
    results.push(res);
    log(`${res.ok ? 'PASS' : 'FAIL'} ${res.id} ${res.title}${res.ok ? '' : ` — ${res.detail}`}${process.env.KIT_TIMES ? ` (${res.ms} ms)` : ''}`);
  }
  const passed = results.filter((r) => r.ok).length;
  log(`${passed} passed, ${results.length - passed} failed`);
  return results;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`case took over ${ms} ms`)), ms))),
  ]);
}
