// Run the kit with Volley's TypeScript client against a kit server already running:
//   npx tsx conformance/typescript/run.ts --url http://127.0.0.1:<port> [case ids…]
// One line per case, then `N passed, M failed`; exit code 1 if any failed.

import { readFileSync } from 'node:fs';
import { runAll } from './runAll.ts';

const args = process.argv.slice(2);
const at = args.indexOf('--url');
const base = at >= 0 ? args[at + 1] : undefined;
if (!base) {
  console.error('usage: run.ts --url http://127.0.0.1:<port> [case ids…]');
  process.exit(2);
}
const ids = args.filter((a, i) => i !== at && i !== at + 1);
const list = JSON.parse(readFileSync(new URL('../cases.json', import.meta.url), 'utf8')).cases;
const results = await runAll({ base }, list, (line) => console.log(line), ids.length ? new Set(ids) : undefined);
process.exit(results.every((r) => r.ok) ? 0 : 1);
