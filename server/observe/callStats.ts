// Call durations of one direction as a histogram per (method, code), stored in flat typed
// arrays so that recording a call allocates nothing: one bucket search over 16 bounds and
// three additions. Prometheus reads it at scrape time, the monitor page through Window.
//
// Each label is bounded on its own (labels.ts), but not their product: a client choosing
// the codes it answers with could multiply the learned method names by every code, 16,000
// series and 2 MB a scrape. So the (method, code) pairs that get a series of their own are
// counted against one budget shared by the server's histograms (SeriesBudget); past it a
// new pair is counted under method `other` (its code kept when that pair already exists).

import { CodeTable, MethodTable } from './labels.ts';

/**
 * Upper bounds in seconds. OpenTelemetry's default RPC buckets start at 5 ms; a game
 * server answers most calls in microseconds, so finer bounds are added below.
 */
export const BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const NB = BUCKETS.length + 1; // + the +Inf bucket

/** Prometheus series one (method, code) pair of a histogram costs: its buckets, _sum and _count. */
export const SERIES_PER_PAIR = NB + 2;

/**
 * How many more series Volley's labelled metrics may add, shared by every CallStats (a pair
 * takes SERIES_PER_PAIR) and the stream item counters (one each) of a server.
 */
export class SeriesBudget {
  constructor(public series: number) {}

  /** Take `n` series if they fit. */
  take(n: number): boolean {
    if (this.series < n) return false;
    this.series -= n;
    return true;
  }
}

export class CallStats {
  /** counts[(method * codes + code) * NB + bucket]: calls per bucket (not cumulative). */
  readonly counts: Float64Array;
  readonly sums: Float64Array;
  readonly nCodes: number;
  /** 1 for a pair with a series of its own (admitted against the budget). */
  readonly #admitted: Uint8Array;
  /** (other, other): where a new pair goes past the budget when (other, its code) has no series. */
  readonly #overflow: number;

  constructor(
    readonly methods: MethodTable,
    readonly codes: CodeTable,
    readonly budget = new SeriesBudget(Infinity),
  ) {
    this.nCodes = codes.names.length;
    const series = (methods.cap + 1) * this.nCodes;
    this.counts = new Float64Array(series * NB);
    this.sums = new Float64Array(series);
    this.#admitted = new Uint8Array(series);
    // The overflow pair is taken from the budget up front: past it, nothing new appears.
    if (!budget.take(SERIES_PER_PAIR)) throw new RangeError('observe.maxSeries is too small for the metrics Volley always has');
    this.#overflow = methods.other * this.nCodes + codes.other;
    this.#admitted[this.#overflow] = 1;
  }

  /** Record one call; `seconds` its duration. */
  record(method: string, code: string | null, seconds: number): void {
    let series = this.methods.indexOf(method) * this.nCodes + this.codes.indexOf(code);
    if (this.#admitted[series] === 0) series = this.#admit(series);
    let b = 0;
    while (b < NB - 1 && seconds > BUCKETS[b]!) b++;
    this.counts[series * NB + b]!++;
    this.sums[series]! += seconds;
  }

  /** The series a pair seen for the first time is counted in: its own while the budget lasts. */
  #admit(series: number): number {
    if (this.budget.take(SERIES_PER_PAIR)) {
      this.#admitted[series] = 1;
      return series;
    }
    const folded = this.methods.other * this.nCodes + (series % this.nCodes);
    return this.#admitted[folded] === 1 ? folded : this.#overflow;
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
