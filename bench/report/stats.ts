// Medians and spreads over rounds.

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** How many values (rounds) it is made of. */
  n: number;
}

/** Median (mean of the middle two for an even count), min and max; undefined and NaN skipped. */
export function spread(values: readonly (number | undefined)[]): Spread | undefined {
  const xs = values.filter((v): v is number => typeof v === 'number' && !Number.isNaN(v)).sort((a, b) => a - b);
  if (xs.length === 0) return undefined;
  const mid = xs.length >> 1;
  const median = xs.length % 2 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
  return { median, min: xs[0]!, max: xs[xs.length - 1]!, n: xs.length };
}

export function round(v: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** A spread with every field rounded (ratios: 3 decimals, enough to rank, short in JSON). */
export function roundSpread(s: Spread | undefined, digits: number): Spread | undefined {
  return s && { median: round(s.median, digits), min: round(s.min, digits), max: round(s.max, digits), n: s.n };
}
