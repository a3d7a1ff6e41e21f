// Bounded fuzz of a live server: hostile raw sockets beside a well-behaved client.
// The longer run is `npm run fuzz` (test/fuzz/long.ts, FUZZ_RUNS).

import t from 'tap';
import fc from 'fast-check';
import { ServerFuzz, type ServerFuzzConfig } from './fuzz/serverFuzz.ts';

// Sized so this file stays well under 15 s on the shared 2-core machine.
const RUNS = 200;

const unhandled: unknown[] = [];
const onUnhandled = (r: unknown) => unhandled.push(r);
process.on('unhandledRejection', onUnhandled);
t.teardown(() => process.off('unhandledRejection', onUnhandled));

const configs: [string, ServerFuzzConfig][] = [
  ['sessions end with the socket', { resumeWindowMs: 0 }],
  ['sessions linger for resume (200 ms)', { resumeWindowMs: 200 }],
];

for (const [name, config] of configs) {
  t.test(`live server under hostile frames: ${name}`, async (t) => {
    const fuzz = new ServerFuzz(config);
    t.teardown(() => fuzz.close());
    await fuzz.start();
    await fc.assert(fuzz.property(), { numRuns: RUNS });
    const end = await fuzz.settle();
    const { cases, outcomes, goodCalls, failures } = fuzz.summary;
    t.comment(`${cases} hostile sockets; outcomes ${JSON.stringify(outcomes)}; good client: ${goodCalls} calls checked`);
    t.same(failures, [], 'the good client got every answer right and kept its socket');
    t.ok(goodCalls > 0, 'the good client was served throughout');
    t.equal(fuzz.good.state, 'open');
    t.same(
      { connections: end.connections, pendingIncoming: end.pendingIncoming, pendingOutgoing: end.pendingOutgoing },
      { connections: 1, pendingIncoming: 0, pendingOutgoing: 0 },
      'every hostile session gone, nothing pending either way',
    );
    t.ok(end.timersLeft <= 0, `no timers left behind (${end.timersLeft} more than before)`);
    t.ok((outcomes.open ?? 0) > 0 && (outcomes['4002'] ?? 0) > 0, 'the cases reached both outcomes: served and closed');
    t.equal(unhandled.length, 0, 'no unhandled rejections');
  });
}
