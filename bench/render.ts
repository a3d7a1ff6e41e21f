// Re-render a saved report (JSON) as Markdown and SVG, e.g. after the report code changed:
//   npx tsx bench/render.ts bench/results/latest.json

import { readFileSync, writeFileSync } from 'node:fs';
import { markdown, ratios, svgChart, summarize, targets } from './report.ts';

const file = process.argv[2] ?? 'bench/results/latest.json';
const report = JSON.parse(readFileSync(file, 'utf8'));
const fdLimit = report.meta.openFileLimit as number;
report.summaries = summarize(report.results);
report.ratios = ratios(report.results);
report.targets = targets(report.results, fdLimit);
writeFileSync(file, JSON.stringify(report, null, 2));
const md = markdown(report.results, report.meta, fdLimit);
writeFileSync(file.replace(/\.json$/, '.md'), md);
writeFileSync(file.replace(/\.json$/, '.svg'), svgChart(report.results));
process.stdout.write(md);
