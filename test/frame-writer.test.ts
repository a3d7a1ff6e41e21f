// The per-tick frame writer: every writer with something queued is flushed by one shared
// microtask at the end of the tick, a frame never exceeds the receiver's limits, and a
// writer that writes again while the tick's flush runs goes out in the same pass.

import t from 'tap';
import { FrameWriter, type FrameSink } from '../protocol/engine/frameWriter.ts';

function sink(name: string, sent: string[], limits = { maxMessagesPerFrame: 64, maxMessageBytes: 1 << 20 }): FrameSink & { flushes: number } {
  return {
    flushes: 0,
    peerLimits: limits,
    sendFrame(frame) {
      sent.push(`${name}:${[...frame].join(',')}`);
    },
    flushed() {
      this.flushes++;
    },
  };
}
const bytes = (...b: number[]) => Uint8Array.from(b);

t.test('writes of one tick: one frame per writer, after the tick, for every writer', async (t) => {
  const sent: string[] = [];
  const a = new FrameWriter(sink('a', sent));
  const b = new FrameWriter(sink('b', sent));
  a.write(bytes(1));
  b.write(bytes(2));
  a.write(bytes(3, 4));
  t.same(sent, [], 'nothing before the end of the tick');
  t.equal(a.queuedBytes, 3);
  await Promise.resolve();
  t.same(sent, ['a:1,3,4', 'b:2'], 'each writer one frame, in the order they were first written');
  t.equal(a.queuedBytes, 0);
  b.write(bytes(5));
  await Promise.resolve();
  t.same(sent.slice(2), ['b:5'], 'a later tick is flushed again');
});

t.test('a frame is split at the receiver message-count and byte limits', async (t) => {
  const sent: string[] = [];
  const w = new FrameWriter(sink('w', sent, { maxMessagesPerFrame: 2, maxMessageBytes: 4 }));
  for (const b of [bytes(1), bytes(2), bytes(3), bytes(4, 4, 4), bytes(5, 5)]) w.write(b);
  w.flush();
  t.same(sent, ['w:1,2', 'w:3,4,4,4', 'w:5,5']);
});

t.test('held writes wait for the holder; a writer scheduled during the tick flush joins it', async (t) => {
  const sent: string[] = [];
  const b = new FrameWriter(sink('b', sent));
  const aSink = sink('a', sent);
  const a = new FrameWriter({ ...aSink, sendFrame: (f) => (aSink.sendFrame(f), b.write(bytes(9))), flushed: () => {} });
  const h = new FrameWriter(sink('h', sent));
  h.hold();
  h.write(bytes(7));
  a.write(bytes(1));
  await Promise.resolve();
  t.same(sent, ['a:1', 'b:9'], "a's send wrote to b, flushed in the same pass; h waits for its holder");
  h.release();
  await Promise.resolve();
  t.same(sent, ['a:1', 'b:9', 'h:7'], 'released: flushed at the end of the tick');
});
