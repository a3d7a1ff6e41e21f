// Call durations of one direction as a histogram per (method, code), stored in flat typed
// arrays so that recording a call allocates nothing: one bucket search over 16 bounds and
// three additions. Prometheus reads it at scrape time, the monitor page through Window.

import { CodeTable, MethodTable } from './labels.ts';

/**
 * Upper bounds in seconds. OpenTelemetry's default RPC buckets start at 5 ms; a game
 * server answers most calls in microseconds, so finer bounds are added below.
 */
export const BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const NB = BUCKETS.length + 1; // + the +Inf bucket

export class CallStats {
  /** counts[(method * codes + code) * NB + bucket]: calls per bucket (not cumulative). */
  readonly counts: Float64Array;
  readonly sums: Float64Array;
  readonly nCodes: number;

  constructor(
    readonly methods: MethodTable,
    readonly codes: CodeTable,
  ) {
    this.nCodes = codes.names.length;
    const series = (methods.cap + 1) * this.nCodes;
    this.counts = new Float64Array(series * NB);
    this.sums = new Float64Array(series);
  }

  /** Record one call; `seconds` its duration. */
  record(method: string, code: string | null, seconds: number): void {
    const series = this.methods.indexOf(method) * this.nCodes + this.codes.indexOf(code);
    let b = 0;
    while (b < NB - 1 && seconds > BUCKETS[b]!) b++;
    this.counts[series * NB + b]!++;
    this.sums[series]! += seconds;
  }

  /** Calls recorded with this code index, all methods (for error counts). */
  countOfCode(code: number): number {
    let n = 0;
    for (let m = 0; m <= this.methods.cap; m++) {
      const base = (m * this.nCodes + code) * NB;
      for (let b = 0; b < NB; b++) n += this.counts[base + b]!;
    }
    return n;
  }

  /** Per method, bucket counts summed over codes: methodBuckets[m * NB + b]. */
  methodBuckets(out = new Float64Array((this.methods.cap + 1) * NB)): Float64Array {
    out.fill(0);
    for (let m = 0; m <= this.methods.cap; m++)
      for (let c = 0; c < this.nCodes; c++) {
        const base = (m * this.nCodes + c) * NB;
        for (let b = 0; b < NB; b++) out[m * NB + b]! += this.counts[base + b]!;
      }
    return out;
  }

  /** Series with at least one call, for exposition: method, code, buckets, sum. */
  *series(): Generator<{ method: string; code: string; buckets: Float64Array; sum: number }> {
    for (let m = 0; m <= this.methods.cap; m++)
      for (let c = 0; c < this.nCodes; c++) {
        const s = m * this.nCodes + c;
        const buckets = this.counts.subarray(s * NB, (s + 1) * NB);
        if (buckets.some((v) => v > 0)) yield { method: this.methods.nameOf(m), code: this.codes.names[c]!, buckets, sum: this.sums[s]! };
      }
  }
}

export const BUCKET_COUNT = NB;

/**
 * A quantile from bucket counts (not cumulative), interpolated linearly inside the bucket
 * as Prometheus' histogram_quantile() does, so the monitor page shows what a Grafana panel
 * on the same histogram shows. Undefined when there are no calls.
 */
export function quantile(q: number, buckets: ArrayLike<number>, offset = 0): number | undefined {
  let total = 0;
  for (let b = 0; b < NB; b++) total += buckets[offset + b]!;
  if (total === 0) return undefined;
  const rank = q * total;
  let seen = 0;
  for (let b = 0; b < NB; b++) {
    const n = buckets[offset + b]!;
    if (seen + n >= rank && n > 0) {
      // Past the last bound Prometheus answers the last finite bound; so do we.
      if (b === NB - 1) return BUCKETS[NB - 2]!;
      const lower = b === 0 ? 0 : BUCKETS[b - 1]!;
      return lower + (BUCKETS[b]! - lower) * ((rank - seen) / n);
    }
    seen += n;
  }
  return BUCKETS[NB - 2]!;
}
