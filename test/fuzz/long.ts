// The long fuzz run behind `npm run fuzz`: the same properties as the bounded tests
// (fuzz-protocol.test.ts, fuzz-server.test.ts), many more cases.
//
//   FUZZ_RUNS=2000 npm run fuzz     cases per property (decode/parse get 10×); default 2000
//   FUZZ_SEED=123 npm run fuzz      replay a run (the seed is printed at the start)
//
// Exits non-zero on the first failing property, after printing fast-check's shrunk
// counterexample and the seed/path that reproduce it.

import fc from 'fast-check';
import { amplificationProperty, decodeProperty, parseProperty, peerProperty } from './protocolProperties.ts';
import { ServerFuzz, type ServerFuzzConfig } from './serverFuzz.ts';

const runs = Number(process.env.FUZZ_RUNS ?? 2000);
const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
if (!(runs > 0)) throw new Error('FUZZ_RUNS must be a positive number');

const unhandled: unknown[] = [];
process.on('unhandledRejection', (r) => unhandled.push(r));

let total = 0;
const started = Date.now();
console.log(`volley fuzz: FUZZ_RUNS=${runs} FUZZ_SEED=${seed}`);

let stepNo = 0;
async function step(name: string, numRuns: number, run: (params: fc.Parameters<unknown>) => Promise<void> | void): Promise<void> {
  const t0 = Date.now();
  // Each property gets its own seed derived from FUZZ_SEED, so two server configs see different cases.
  await run({ numRuns, seed: seed + stepNo++ } as fc.Parameters<unknown>);
  total += numRuns;
  console.log(`  ${name}: ${numRuns} cases ok (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

try {
  await step('decodeFrame', runs * 10, (p) => fc.assert(decodeProperty(), p as fc.Parameters<[Uint8Array, number, boolean]>));
  await step('amplification shapes', runs, (p) => fc.assert(amplificationProperty(), p as fc.Parameters<[Uint8Array]>));
  await step('parseMessage', runs * 10, (p) => fc.assert(parseProperty(), p as fc.Parameters<[unknown, boolean]>));
  await step('RpcPeer.receive', runs, (p) => fc.assert(peerProperty(), p as never));
  const configs: [string, ServerFuzzConfig][] = [
    ['live server, sessions end with the socket', { resumeWindowMs: 0 }],
    ['live server, sessions linger 200 ms', { resumeWindowMs: 200 }],
  ];
  for (const [name, config] of configs) {
    const fuzz = new ServerFuzz(config);
    await fuzz.start();
    try {
      await step(name, runs, (p) => fc.assert(fuzz.property(), p as never));
      const end = await fuzz.settle();
      const { outcomes, goodCalls, failures } = fuzz.summary;
      console.log(`    outcomes ${JSON.stringify(outcomes)}; good client ${goodCalls} calls checked; after: ${JSON.stringify(end)}`);
      if (failures.length) throw new Error(`good client: ${failures.join('; ')}`);
      if (end.connections !== 1 || end.pendingIncoming !== 0 || end.pendingOutgoing !== 0 || end.timersLeft > 0)
        throw new Error(`server state left behind: ${JSON.stringify(end)}`);
      if (fuzz.good.state !== 'open') throw new Error('the good client lost its session');
    } finally {
      await fuzz.close();
    }
  }
  if (unhandled.length) throw new Error(`${unhandled.length} unhandled rejections, first: ${String(unhandled[0])}`);
  console.log(`volley fuzz: ${total} cases, all properties held (${((Date.now() - started) / 1000).toFixed(1)} s)`);
} catch (err) {
  console.error(`volley fuzz FAILED (FUZZ_SEED=${seed}):\n${(err as Error).message ?? err}`);
  process.exitCode = 1;
}
