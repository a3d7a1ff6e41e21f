// Number formatting shared by the Markdown and the SVG.

import type { Spread } from './stats.ts';

export const fmt = (v: number | undefined, digits = 0): string =>
  v === undefined || Number.isNaN(v) ? '–' : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** `median (min–max)`, or the median alone when the rounds agree at this precision. */
export function fmtSpread(s: Spread | undefined, digits = 0, unit = ''): string {
  if (!s) return '–';
  const m = fmt(s.median, digits) + unit;
  const lo = fmt(s.min, digits);
  const hi = fmt(s.max, digits);
  return s.n <= 1 || lo === hi ? m : `${m} (${lo}–${hi})`;
}
