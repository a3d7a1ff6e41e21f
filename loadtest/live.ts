// The live view. On a terminal: a few lines redrawn in place each second. Elsewhere (CI
// logs, a pipe): one plain line every 5 s, no cursor movement.

import { Histogram } from './histogram.ts';
import type { SeriesPoint } from './report.ts';
import { errorsTotal, type Snapshot } from './stats.ts';

const k = (v: number) => (v >= 10_000 ? `${(v / 1000).toFixed(1)}k` : String(Math.round(v)));

export function liveLine(p: SeriesPoint, s: Snapshot, phase: string): string {
  const h = new Histogram();
  let worst = '';
  let worstP99 = -1;
  for (const [m, c] of Object.entries(s.calls)) {
    const hm = Histogram.fromSparse(c.h);
    h.add(hm);
    const v = hm.percentile(99);
    if (v > worstP99) [worstP99, worst] = [v, m];
  }
  const ms = (us: number) => `${(us / 1000).toFixed(us < 10_000 ? 1 : 0)}ms`;
  return (
    `[${p.t.toFixed(0).padStart(4)}s ${phase.padEnd(9)}] players ${k(p.players)}/${k(s.target)}` +
    ` | calls ${k(p.callsPerSec)}/s p99 ${p.p99.toFixed(1)}ms (run p99 ${ms(h.percentile(99))}${worst ? `, worst ${worst} ${ms(worstP99)}` : ''})` +
    ` | server calls ${k(p.servedPerSec)}/s | errors ${errorsTotal(s)} | reconnects ${s.reconnects}` +
    ` | gen cpu ${s.load.map((l) => `${Math.round(l.cpu)}%`).join(' ')} loop ${p.loopMax.toFixed(0)}ms`
  );
}

export class LiveView {
  #tty: boolean;
  #lastPrint = 0;
  #drawn = 0;
  readonly out: NodeJS.WriteStream;
  readonly everyMs: number;
  constructor(out: NodeJS.WriteStream, everyMs?: number) {
    this.out = out;
    this.#tty = !!out.isTTY;
    this.everyMs = everyMs ?? (this.#tty ? 1000 : 5000);
  }

  update(p: SeriesPoint, s: Snapshot, phase: string): void {
    const now = Date.now();
    if (now - this.#lastPrint < this.everyMs - 100) return;
    this.#lastPrint = now;
    const line = liveLine(p, s, phase);
    if (!this.#tty) {
      this.out.write(`${line}\n`);
      return;
    }
    const cols = this.out.columns || 120;
    const parts = line.split(' | ');
    const lines: string[] = [];
    for (const part of parts) {
      const cur = lines.at(-1);
      if (cur !== undefined && cur.length + part.length + 3 <= cols) lines[lines.length - 1] = `${cur} | ${part}`;
      else lines.push(part.slice(0, cols));
    }
    if (this.#drawn) this.out.write(`\x1b[${this.#drawn}A\x1b[J`);
    this.out.write(`${lines.join('\n')}\n`);
    this.#drawn = lines.length;
  }

  /** Leave what is drawn in place (the report prints below it). */
  end(): void {
    this.#drawn = 0;
  }
}
