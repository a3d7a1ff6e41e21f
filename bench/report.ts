// The report: summaries and ratios (report/summary.ts), targets (report/targets.ts), the
// Markdown (report/markdown.ts) and the SVG chart (report/svg.ts).

export { spread, type Spread } from './report/stats.ts';
export { cost, ratios, summarize, pairedRatios, PEERS, type Ratio, type Summary, type Peer } from './report/summary.ts';
export { targets, costLimit, type Target } from './report/targets.ts';
export { markdown } from './report/markdown.ts';
export { svgChart } from './report/svg.ts';
