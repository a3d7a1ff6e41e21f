// What a stream item costs (issue 23): N items from the server to one client as a stream
// (SPEC §12: each item a reliable `$item` request, answered when the reader takes it) and
// the same N as plain notifications (at most once, no credit); then N items from the
// client to the server as a stream. Server and client run in this one process: the CPU
// figure is both sides together. Alternating rounds.
//   npx tsx bench/stream-cost.ts [--items 20000] [--rounds 3]

import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { connect } from '../client/index.ts';
import { createServer, type ServerContext } from '../server/index.ts';

const { values } = parseArgs({ options: { items: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '3' } } });
const N = Number(values.items);
const ROUNDS = Number(values.rounds);
const item = (i: number) => ({ i, name: 'player42', x: 12.5, y: -3.25 });

let got = 0;
let done: (() => void) | undefined;
const server = createServer({
  authenticate: (req) => req.token ?? null,
  handlers: {
    feed: async function* (_ctx: ServerContext, n: number) {
      for (let i = 0; i < n; i++) yield item(i);
    },
    notifyMe: (ctx: ServerContext, n: number) => {
      for (let i = 0; i < n; i++) ctx.server.notify(ctx.uid, 'tick', item(i));
      return n;
    },
    upload: async (ctx: ServerContext, n: number) => {
      let count = 0;
      for await (const _ of ctx.server.stream(ctx.uid, 'produce', [n])) count++;
      return count;
    },
  },
});
const port = await server.listen(0, '127.0.0.1');
const client = await connect(`ws://127.0.0.1:${port}/`, {
  token: 'bench',
  WebSocket,
  handlers: {
    tick: () => {
      if (++got === N) done?.();
    },
    produce: async function* (_ctx: unknown, n: number) {
      for (let i = 0; i < n; i++) yield item(i);
    },
  },
});

async function measure(run: () => Promise<void>): Promise<{ perSec: number; cpuUs: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await run();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { perSec: (N / ms) * 1000, cpuUs: (cpu.user + cpu.system) / N };
}

const kinds: Record<string, () => Promise<void>> = {
  'stream server → client': async () => {
    let n = 0;
    for await (const _ of client.stream('feed', [N])) n++;
    if (n !== N) throw new Error(`${n} items`);
  },
  'notifications server → client': async () => {
    got = 0;
    const all = new Promise<void>((r) => (done = r));
    await client.call('notifyMe', [N]);
    await Promise.race([all, new Promise((r) => setTimeout(r, 10_000))]);
  },
  'stream client → server': async () => {
    const n = await client.call('upload', [N]);
    if (n !== N) throw new Error(`${n} items`);
  },
};
const results = new Map<string, { perSec: number; cpuUs: number }[]>();
await kinds['stream server → client']!(); // warm-up
for (let r = 0; r < ROUNDS; r++)
  for (const [name, run] of Object.entries(kinds)) {
    const m = await measure(run);
    results.set(name, [...(results.get(name) ?? []), m]);
  }
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`${N} items a round, ${ROUNDS} rounds, medians (server and client in one process, ${server.transport}):`);
for (const [name, ms] of results)
  console.log(`  ${name.padEnd(32)} ${Math.round(median(ms.map((m) => m.perSec))).toLocaleString('en')} items/s, ${median(ms.map((m) => m.cpuUs)).toFixed(1)} µs CPU per item${name.startsWith('notif') ? ` (${got} of ${N} arrived in the last round)` : ''}`);
client.close();
await server.close({ graceMs: 100 });
process.exit(0);
