// The TypeScript client's side of run.sh: the same calls as Program.cs (`echo(i & 63)`,
// `inflight` outstanding) against the same server, one JSON line per round.
// `npx tsx csharp/Volley.Bench/ts-bench.ts <ws-url> [calls] [inflight] [rounds]`

import WebSocket from 'ws';
import { connect } from "../../client/index.ts";

const [url = 'ws://127.0.0.1:8099/', callsArg = '20000', inflightArg = '64', roundsArg = '1'] = process.argv.slice(2);
const calls = Number(callsArg);
const inflight = Number(inflightArg);
const c = await connect(url, { token: `benchts${process.pid}`, WebSocket: WebSocket as never });

async function run(n: number) {
  let next = -1;
  const worker = async () => {
    for (;;) {
      const i = ++next;
      if (i >= n) return;
      const r = await c.call('echo', [i & 0x3f]);
      if (r !== (i & 0x3f)) throw new Error(`echo ${i} answered ${String(r)}`);
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
}

await run(Math.min(calls, 5000));
for (let round = 0; round < Number(roundsArg); round++) {
  const t0 = performance.now();
  await run(calls);
  const s = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ client: 'typescript', calls, inflight, callsPerSec: Math.round(calls / s) }));
}
c.close();
