// Kept messages are copied into chunks the stream owns, in a ring that keeps its capacity:
// whatever the sizes and the ack steps, a re-send must see exactly the bytes pushed, in
// seq order, and every chunk must be released once all its messages are acknowledged.

import t from 'tap';
import { ReliableStream, spareChunkBytes } from '../protocol/engine/reliable.ts';

function message(seq: number): Uint8Array {
  // Mostly small, now and then past a quarter of the largest chunk (a chunk of its own).
  const size = seq % 97 === 0 ? 20_000 + (seq % 5) * 1000 : 1 + ((seq * 7919) % 600);
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (seq + i) & 0xff;
  return bytes;
}

t.test('random pushes and acks: re-sends are byte-exact and in order, chunks are freed', async (t) => {
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const r = new ReliableStream();
  r.mode = 'acking';
  let mismatches = 0;
  let visited = 0;
  let maxKept = 0;
  for (let step = 0; step < 400; step++) {
    const pushes = Math.floor(random() * 40);
    for (let i = 0; i < pushes; i++) r.push(message(r.sent + 1), r.sent + 1);
    maxKept = Math.max(maxKept, r.keptCount);
    if (random() < 0.3) {
      let expect = r.peerAcked + 1;
      r.forEachKept((seq, bytes, id) => {
        visited++;
        if (seq !== expect++ || id !== seq || Buffer.compare(Buffer.from(bytes), Buffer.from(message(seq))) !== 0) mismatches++;
      });
    }
    const ackTo = r.peerAcked + Math.floor(random() * (r.sent - r.peerAcked + 1));
    const dropped: number[] = [];
    r.ack(ackTo, (seq, byteLength) => {
      dropped.push(seq);
      if (byteLength !== message(seq).byteLength) mismatches++;
    });
    if (dropped.length !== 0 && dropped[0] !== ackTo - dropped.length + 1) mismatches++;
    if (r.keptCount !== r.sent - r.peerAcked) mismatches++;
    if (r.keptCount === 0 && r.keptBytes !== 0) mismatches++;
  }
  t.ok(visited > 500 && maxKept > 64, `exercised: ${visited} re-sends checked, up to ${maxKept} kept at once`);
  t.equal(mismatches, 0, 'every re-send byte-exact and in order, every drop sized right');
  r.ack(r.sent);
  t.equal(r.keptBytes, 0, 'all acknowledged: no chunk retained');
  t.equal(r.keptCount, 0);
});

t.test('retained bytes are the chunks: at least the messages, at most one open chunk more', async (t) => {
  const r = new ReliableStream();
  r.mode = 'acking';
  let own = 0;
  for (let i = 1; i <= 1000; i++) {
    const m = message(i);
    own += m.byteLength;
    r.push(m, -1);
  }
  t.ok(r.keptBytes >= own, `${r.keptBytes} retained for ${own} bytes of messages`);
  // Waste: the open chunk, and the tail of a chunk closed by a large message (≤ 4× its size).
  t.ok(r.keptBytes <= 2 * own + 64 * 1024, 'bounded waste');
  r.ack(500);
  t.ok(r.keptBytes < own, 'acknowledging half releases chunks');
  t.equal(r.clear() > 0, true, 'clear reports what it freed');
  t.equal(r.keptBytes, 0);
});

t.test('released chunks are reused across streams, and re-sends from reused chunks stay byte-exact', async (t) => {
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const small = (seq: number, tag: number) => {
    const bytes = Buffer.alloc(1 + ((seq * 31 + tag) % 200));
    for (let i = 0; i < bytes.length; i++) bytes[i] = (seq * 13 + tag + i) & 0xff;
    return bytes;
  };
  const streams = [0, 1, 2].map(() => {
    const r = new ReliableStream();
    r.mode = 'acking';
    return r;
  });
  let mismatches = 0;
  let checked = 0;
  let reusedSteps = 0;
  for (let step = 0; step < 600; step++) {
    const k = Math.floor(random() * streams.length);
    const r = streams[k]!;
    const before = spareChunkBytes();
    const pushes = 1 + Math.floor(random() * 30);
    for (let i = 0; i < pushes; i++) r.push(small(r.sent + 1, k), r.sent + 1);
    if (spareChunkBytes() < before) reusedSteps++;
    let expect = r.peerAcked + 1;
    r.forEachKept((seq, bytes) => {
      checked++;
      if (seq !== expect++ || Buffer.compare(Buffer.from(bytes), small(seq, k)) !== 0) mismatches++;
    });
    // Acknowledge everything now and then (the open chunk is released: the common case).
    if (random() < 0.4) r.ack(r.sent);
    else r.ack(r.peerAcked + Math.floor(random() * (r.sent - r.peerAcked + 1)));
  }
  t.ok(reusedSteps > 50, `a stream took a chunk another had released in ${reusedSteps} of 600 steps`);
  t.ok(checked > 1000, `${checked} kept messages compared`);
  t.equal(mismatches, 0, 'every re-send byte-exact, though its chunk held another stream\'s bytes before');
  for (const r of streams) r.ack(r.sent);
  t.ok(spareChunkBytes() <= 4 * 1024 * 1024, 'the spare chunks stay bounded');
});

t.test('bytes handed out for a re-send stay intact after their chunk is acknowledged and reused', async (t) => {
  // A hostile peer may `$ack` at once what was just re-sent to it, before the socket has
  // written it (the ws transport keeps a reference until the kernel takes it). Its chunk
  // then goes to the spare list, and another session fills it: the re-send must not be
  // a view of that memory, or one player's messages go to another.
  const a = new ReliableStream();
  a.mode = 'acking';
  const mine = (seq: number) => Buffer.alloc(100, seq);
  for (let seq = 1; seq <= 10; seq++) a.push(mine(seq), seq);
  const handedOut: Array<[number, Uint8Array]> = [];
  a.forEachKept((seq, bytes) => handedOut.push([seq, bytes]));
  a.ack(a.sent); // before the socket wrote a byte
  const b = new ReliableStream();
  b.mode = 'acking';
  for (let seq = 1; seq <= 10; seq++) b.push(Buffer.alloc(100, 0xee), seq); // another player's
  const damaged = handedOut.filter(([seq, bytes]) => Buffer.compare(Buffer.from(bytes), mine(seq)) !== 0).length;
  t.equal(handedOut.length, 10);
  t.equal(damaged, 0, 'every re-sent message still holds its own bytes');
});

t.test('a message larger than the next chunk (4 to 16 KiB) gets a chunk that holds it, first or after others', async (t) => {
  // The next chunk doubled from the last one without looking at the message: a 10 KB
  // request as a session's first kept message threw RangeError (offset is out of bounds).
  for (const before of [0, 1, 3]) {
    for (const size of [4095, 4096, 4097, 8193, 10_000, 16_384]) {
      const r = new ReliableStream();
      r.mode = 'acking';
      const sent: Uint8Array[] = [];
      for (let i = 0; i < before; i++) sent.push(Buffer.alloc(3000, i + 1));
      sent.push(Buffer.alloc(size, 0xab));
      for (const b of sent) r.push(b, -1);
      const kept: Uint8Array[] = [];
      r.forEachKept((_seq, bytes) => kept.push(Buffer.from(bytes)));
      t.same(kept.map((b) => Buffer.compare(b, sent[kept.indexOf(b)]!)), Array(sent.length).fill(0), `${size} B after ${before} of 3,000 B: kept byte-exact`);
      r.ack(r.sent);
      t.equal(r.keptBytes, 0);
    }
  }
});
