// Latency histograms in microseconds, HDR layout (Gil Tene's HdrHistogram): 3 significant
// digits from 1 µs to 60 s in one Uint32Array, so recording is an index computation and an
// increment (no allocation), and merging is adding counts. They travel between processes
// sparse: [index, count, index, count, …]. Written here rather than taken from
// hdr-histogram-js (the bench's): the package ships with msgpackr and ws alone.

/** Largest value kept (60 s in µs); longer ones count as this. */
export const MAX_US = 60_000_000;
const SUB_BITS = 11; // 2048 sub-buckets: 3 significant digits
const HALF = 1 << (SUB_BITS - 1);
const BUCKETS = 32 - Math.clz32(MAX_US) - SUB_BITS + 1;
const LENGTH = (BUCKETS + 1) * HALF;

/** Counts index of a value (µs, integer ≥ 0). */
function indexOf(v: number): number {
  const bucket = 32 - Math.clz32(v | (HALF * 2 - 1)) - SUB_BITS;
  return ((bucket + 1) << (SUB_BITS - 1)) + (v >>> bucket) - HALF;
}

/** Highest value that lands on index `i` (what percentiles report, as HdrHistogram does). */
function valueAt(i: number): number {
  let bucket = (i >> (SUB_BITS - 1)) - 1;
  let sub = (i & (HALF - 1)) + HALF;
  if (bucket < 0) {
    sub -= HALF;
    bucket = 0;
  }
  return ((sub + 1) << bucket) - 1;
}

/** Sparse form: the exact max and flat [index, count, …] pairs. */
export interface SparseHistogram {
  max: number;
  c: number[];
}

export class Histogram {
  readonly counts = new Uint32Array(LENGTH);
  total = 0;
  max = 0;

  /** Record one value in µs (clamped to [0, MAX_US]). */
  record(us: number): void {
    const v = us <= 0 ? 0 : us >= MAX_US ? MAX_US : Math.round(us);
    this.counts[indexOf(v)]!++;
    this.total++;
    if (v > this.max) this.max = v;
  }

  /**
   * Record a value measured in a closed loop that meant to act every `intervalUs`, and the
   * values the stalled loop did not get to measure (HdrHistogram's
   * recordValueWithExpectedInterval): a 1 s stall in a 10 ms loop counts as the 100 samples
   * it hid, 1 s, 990 ms, … 10 ms, not as one.
   */
  recordCorrected(us: number, intervalUs: number): void {
    this.record(us);
    if (intervalUs <= 0) return;
    for (let missing = us - intervalUs; missing >= intervalUs; missing -= intervalUs) this.record(missing);
  }

  /** Value at percentile p (0–100), µs. */
  percentile(p: number): number {
    if (this.total === 0) return 0;
    const want = Math.max(1, Math.ceil((p / 100) * this.total));
    let seen = 0;
    const c = this.counts;
    for (let i = 0; i < c.length; i++) {
      seen += c[i]!;
      if (seen >= want) return Math.min(valueAt(i), this.max);
    }
    return this.max;
  }

  add(other: Histogram): void {
    const a = this.counts;
    const b = other.counts;
    for (let i = 0; i < a.length; i++) if (b[i]) a[i]! += b[i]!;
    this.total += other.total;
    if (other.max > this.max) this.max = other.max;
  }

  addSparse(s: SparseHistogram): void {
    const a = this.counts;
    const c = s.c;
    for (let k = 0; k + 1 < c.length; k += 2) {
      const i = c[k]!;
      const n = c[k + 1]!;
      if (i >= 0 && i < a.length && n > 0) {
        a[i]! += n;
        this.total += n;
      }
    }
    if (s.max > this.max) this.max = Math.min(s.max, MAX_US);
  }

  toSparse(): SparseHistogram {
    const out: number[] = [];
    const c = this.counts;
    for (let i = 0; i < c.length; i++) if (c[i]) out.push(i, c[i]!);
    return { max: this.max, c: out };
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.max = 0;
  }

  static fromSparse(s: SparseHistogram | undefined): Histogram {
    const h = new Histogram();
    if (s) h.addSparse(s);
    return h;
  }
}

/** Percentiles in milliseconds. */
export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export function percentiles(h: Histogram): Percentiles {
  const ms = (us: number) => Math.round(us) / 1000;
  return {
    count: h.total,
    p50: ms(h.percentile(50)),
    p90: ms(h.percentile(90)),
    p99: ms(h.percentile(99)),
    p999: ms(h.percentile(99.9)),
    max: ms(h.max),
  };
}
