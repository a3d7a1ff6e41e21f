// Summarise a .cpuprofile (node --cpu-prof): self time per function, heaviest first, with
// file:line, so a profile can be read without DevTools.
//   npx tsx bench/lib/profileSummary.ts FILE.cpuprofile [--top 30] [--filter volley]

import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

export interface Row {
  fn: string;
  where: string;
  selfMs: number;
  totalMs: number;
  selfPct: number;
}

export function summarise(path: string): { rows: Row[]; totalMs: number; idleMs: number } {
  const prof = JSON.parse(readFileSync(path, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  prof.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
  const key = (n: Node) => {
    const url = n.callFrame.url.replace(/^file:\/\/.*?\/(node_modules|main)\//, '$1/');
    return `${n.callFrame.functionName || '(anonymous)'}\t${url}:${n.callFrame.lineNumber + 1}`;
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let all = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    all += us;
    if (n.callFrame.functionName === '(idle)') idle += us;
    self.set(key(n), (self.get(key(n)) ?? 0) + us);
    // inclusive: count once per distinct function on the stack
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = key(byId.get(cur)!);
      if (seen.has(k)) continue;
      seen.add(k);
      total.set(k, (total.get(k) ?? 0) + us);
    }
  }
  const busy = all - idle;
  const rows = [...self.entries()]
    .map(([k, us]) => {
      const [fn, where] = k.split('\t') as [string, string];
      return { fn, where, selfMs: us / 1000, totalMs: (total.get(k) ?? 0) / 1000, selfPct: (100 * us) / busy };
    })
    .sort((a, b) => b.selfMs - a.selfMs);
  return { rows, totalMs: all / 1000, idleMs: idle / 1000 };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2]!;
  const top = Number(process.argv[process.argv.indexOf('--top') + 1]) || 30;
  const fi = process.argv.indexOf('--filter');
  const filter = fi > 0 ? new RegExp(process.argv[fi + 1]!) : undefined;
  const { rows, totalMs, idleMs } = summarise(file);
  console.log(`profile ${totalMs.toFixed(0)} ms, idle ${idleMs.toFixed(0)} ms, busy ${(totalMs - idleMs).toFixed(0)} ms`);
  console.log('self ms  self%  total ms  function  where');
  for (const r of rows.filter((r) => !filter || filter.test(r.where) || filter.test(r.fn)).slice(0, top))
    console.log(`${r.selfMs.toFixed(1).padStart(7)} ${r.selfPct.toFixed(1).padStart(5)}% ${r.totalMs.toFixed(1).padStart(8)}  ${r.fn}  ${r.where}`);
}
