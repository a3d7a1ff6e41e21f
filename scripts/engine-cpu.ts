// Server-side engine CPU per call, in process (not the bench): one RpcPeer fed request
// frames as a client sends them (one call per frame, `$ack` every 128 replies), replies
// collected by send(). `npx tsx scripts/engine-cpu.ts` (ASYNC=1 for async handlers).
// Run the same file against another checkout's protocol/ to compare (see the report of
// the engine branch: sync old 1.29–1.74 µs, new 1.15–1.29 µs per call; async old 1.35–1.73,
// new 1.51–2.28 µs, on a machine with load average ~15 on 2 cores).

import { RpcPeer, encode } from '../protocol/index.ts';

const N = Number(process.env.N ?? 200_000);
const method = process.env.ASYNC ? 'aadd' : 'add';
const peer = new RpcPeer({
  send: () => {},
  handlers: { add: (_c: unknown, a: number, b: number) => a + b, aadd: async (_c: unknown, a: number, b: number) => a + b },
});
peer.receive(encode([2, '$ack', [0]]));
const frames: Uint8Array[] = [];
for (let i = 0; i < 1024; i++) frames.push(encode([0, i, method, [i, 1]]));
let done = 0;
async function run(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    peer.receive(frames[i & 1023]!);
    if ((i & 127) === 127) {
      await Promise.resolve();
      await Promise.resolve();
      peer.flush();
      peer.receive(encode([2, '$ack', [(done += 128)]]));
    }
  }
  await new Promise((r) => setImmediate(r));
}
await run(50_000); // warm-up
const t0 = process.cpuUsage();
await run(N);
const cpu = process.cpuUsage(t0);
console.log(`${method}: ${(((cpu.user + cpu.system) * 1000) / N).toFixed(0)} ns CPU per call`);
