// Issue 9 #2 and #3, the engine's part: kept messages own their bytes (a tiny reply must
// not pin msgpackr's shared multi-MiB encode buffer), everything kept is freed when the
// session ends, and a connection past its held-bytes budget gets OVERLOADED.

import t from 'tap';
import v8 from 'node:v8';
import vm from 'node:vm';
import { RpcPeer, concatFrames, decodeFrame, encode } from '../protocol/index.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const MiB = 1024 * 1024;

t.test('kept replies own their bytes: 300 tiny unacknowledged replies pin kilobytes, not msgpackr buffers', async (t) => {
  const big = 'z'.repeat(900 * 1024);
  // B echoes big payloads and is acknowledged; A answers tiny calls and never is.
  const held = { bytes: 0, max: Infinity };
  const a = new RpcPeer({ send: () => {}, handlers: { tiny: () => 'x' }, heldTotal: held, replay: new Map() } as never);
  let bReplies = 0;
  const b = new RpcPeer({ send: (f: Uint8Array) => (bReplies += decodeFrame(f, Infinity).length), handlers: { echo: (_c: unknown, s: string) => s }, replay: new Map() } as never);
  a.receive(encode([2, '$ack', [0]]));
  b.receive(encode([2, '$ack', [0]]));
  gc();
  const before = process.memoryUsage().arrayBuffers;
  for (let i = 0; i < 300; i++) {
    b.receive(encode([0, i, 'echo', [big]]));
    b.receive(encode([2, '$ack', [i + 1]]));
    a.receive(encode([0, i, 'tiny', []]));
  }
  // V8 frees an ArrayBuffer's backing store after the GC, on another thread, so on a busy
  // machine one read right after gc() still counts buffers already dead: read the settled value.
  let after = Infinity;
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 30));
    gc();
    after = Math.min(after, process.memoryUsage().arrayBuffers);
  }
  const pinned = (after - before) / MiB;
  t.comment(`after 300 tiny kept replies: ${pinned.toFixed(1)} MiB of ArrayBuffers retained; kept ${a.keptBytes ?? '?'} bytes`);
  // msgpackr itself keeps its current (large) buffer: about 10 MiB here.
  t.ok(pinned < 32, `retained ${pinned.toFixed(1)} MiB (each pinned shared buffer is 1+ MiB: hundreds before)`);
  let expected = 0;
  for (let i = 0; i < 300; i++) expected += encode([1, i, null, 'x']).byteLength;
  // Copies go into chunks the session owns (4 KiB, then doubling): what is counted is the
  // chunks, at least the messages' own bytes and at most one partly used chunk more.
  t.ok(a.keptBytes >= expected && a.keptBytes <= expected + 4096, `kept bytes are what is actually retained: ${a.keptBytes} for ${expected} bytes of messages`);
  t.equal(held.bytes, a.keptBytes, 'and charged to the server-wide total');
  a.close();
  b.close();
  t.equal(a.keptBytes, 0, 'freed when the session ends');
  t.equal(held.bytes, 0, 'the server-wide total is back to 0');
});

t.test('past maxHeldBytes: new calls OVERLOADED (not run), notifications dropped; room again once calls finish', async (t) => {
  const sent: unknown[] = [];
  const releases: (() => void)[] = [];
  let runs = 0;
  let notes = 0;
  let refused = 0;
  const held = { bytes: 0, max: 1024 * MiB };
  const peer = new RpcPeer({
    send: (f) => sent.push(...decodeFrame(f, Infinity)),
    handlers: {
      hold: (_c: unknown, _p: string) => (runs++, new Promise<string>((r) => releases.push(() => r('ok')))),
      note: () => void notes++,
    },
    maxHeldBytes: 100_000,
    heldTotal: held,
    onRefused: () => refused++,
  });
  peer.receive(encode([2, '$ack', [0]]));
  const param = 'p'.repeat(30_000);
  for (let id = 1; id <= 5; id++) peer.receive(encode([0, id, 'hold', [param]]));
  peer.receive(concatFrames([encode([2, 'note', [param]]), encode([2, 'note', []])]));
  const responses = sent.filter((m): m is unknown[] => Array.isArray(m) && m[0] === 1);
  t.equal(runs, 3, 'three calls (≈ 30 KB of params each) fit in 100 KB');
  t.same(responses.map((m) => [m[1], (m[2] as { code: string }).code]), [[4, 'OVERLOADED'], [5, 'OVERLOADED']], 'the rest refused OVERLOADED');
  t.ok(refused >= 2, 'refusals reported to the transport (flood watch)');
  t.ok(peer.heldBytes >= 90_000 && held.bytes === peer.heldBytes, `held ${peer.heldBytes} bytes, charged to the server total`);
  t.ok(notes <= 1, 'a notification past the budget is dropped');
  for (const r of releases) r();
  await new Promise((r) => setImmediate(r));
  peer.receive(encode([2, '$ack', [5]]));
  t.ok(peer.heldBytes < 1000, `after the calls finished and were acknowledged: ${peer.heldBytes} bytes held`);
  peer.receive(encode([0, 6, 'hold', [param]]));
  t.equal(runs, 4, 'room again');
  peer.close();
  t.equal(held.bytes, 0, 'everything released when the session ends');
});

t.test('the server-wide cap refuses a connection under its own cap', async (t) => {
  const held = { bytes: 0, max: 50_000 };
  const make = () => new RpcPeer({ send: () => {}, handlers: { hold: () => new Promise(() => {}) }, heldTotal: held });
  const [p1, p2] = [make(), make()];
  const param = 'p'.repeat(30_000);
  p1.receive(encode([0, 1, 'hold', [param]]));
  t.equal(p1.pendingIncoming, 1);
  p2.receive(encode([0, 1, 'hold', [param]]));
  t.equal(p2.pendingIncoming, 0, 'the second connection is refused: the server as a whole holds too much');
  p1.close();
  p2.close();
  t.equal(held.bytes, 0);
});
