// Exactly-once against a live server, from a raw client that follows SPEC.md §5 to the
// letter and controls exactly when it acknowledges: issue 10 #1 (a reply written on a
// resumed socket before the client's first `$ack`, then a second drop) and #2 (a reused id
// of a finished call runs; a request whose id is still running is a violation).

import t from 'tap';
import { CloseCode, encode, concatFrames } from '../protocol/index.ts';
import { startServer, until } from './helpers.ts';
import { RawSocket } from './fuzz/rawSocket.ts';

type Msg = unknown[];
const isReliable = (m: unknown) => Array.isArray(m) && (m[0] === 0 || m[0] === 1);
const isAck = (m: unknown): m is [2, '$ack', [number]] => Array.isArray(m) && m[0] === 2 && m[1] === '$ack';

/** One session's client state: reliable messages received (absolute), own requests by seq. */
class RawSession {
  sid = '';
  received = 0;
  /** Messages taken into account so far on the current socket. */
  #seen = 0;
  s!: RawSocket;
  constructor(readonly port: number, readonly uid: string) {}

  async open(): Promise<{ resumed: boolean; serverAck: number }> {
    this.s = await RawSocket.open(this.port, `/?token=u:${this.uid}${this.sid ? `&sid=${this.sid}` : ''}`);
    this.#seen = 0;
    const session = (await this.s.waitFor(() => this.s.messages.find((m) => Array.isArray(m) && m[1] === '$session'))) as [2, string, [{ sid: string; resumed: boolean }]];
    const ack = (await this.s.waitFor(() => this.s.messages.find(isAck))) as [2, string, [number]];
    this.sid = session[2][0].sid;
    return { resumed: session[2][0].resumed, serverAck: ack[2][0] };
  }

  /** Count the reliable messages that arrived since the last look (optionally only those `keep` accepts). */
  take(keep: (m: Msg) => boolean = () => true): Msg[] {
    const fresh = this.s.messages.slice(this.#seen);
    const taken: Msg[] = [];
    for (const m of fresh) {
      if (!isReliable(m)) {
        this.#seen++;
        continue;
      }
      if (!keep(m as Msg)) break; // "lost in flight": neither counted nor looked at again
      this.#seen++;
      this.received++;
      taken.push(m as Msg);
    }
    return taken;
  }

  ack(): void {
    this.s.sendBinary(encode([2, '$ack', [this.received]]));
  }
}

t.test('issue 10 #1: a reply written before the client\'s $ack on a resumed socket, then a second drop: nothing runs twice', async (t) => {
  const runs = new Map<string, number>();
  const bump = (k: string) => runs.set(k, (runs.get(k) ?? 0) + 1);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const h = await startServer({
    handlers: {
      slow: async (_c, k: string) => (bump(k), await gate, `slow ${k}`),
      add: (_c, k: string, a: number) => (bump(k), a + 1),
    },
  });
  t.teardown(() => h.close());
  const c = new RawSession(h.port, 'raw1');
  await c.open();
  // Socket 1: `$ack [0]`, then request seq 1 (id 1, still running when the socket drops).
  c.s.sendBinary(concatFrames([encode([2, '$ack', [0]]), encode([0, 1, 'slow', ['s']])]));
  await until(() => runs.get('s') === 1, 2000, 'slow to start');
  c.s.destroy();

  // Socket 2: the server has our request (its `$ack` says 1). Before we acknowledge
  // anything, the running call finishes: its reply must wait for our `$ack` (no drift).
  const second = await c.open();
  t.equal(second.resumed, true);
  t.equal(second.serverAck, 1, 'the server acknowledges the one request it received');
  release();
  await new Promise((r) => setTimeout(r, 50));
  t.notOk(c.s.response(1), 'the reply waits for our first $ack on this socket');
  c.ack(); // `$ack [0]`: we have received nothing yet
  await c.s.waitFor(() => c.s.response(1));
  t.same(c.take().map((m) => m[3]), ['slow s'], 'the reply of the call that ran across the drop');
  // 126 calls (seq 2..127), all answered: 127 reliable messages received.
  c.s.sendBinary(concatFrames(Array.from({ length: 126 }, (_, i) => encode([0, 10 + i, 'add', [`a${i}`, i]]))));
  await c.s.waitFor(() => c.s.response(135));
  t.equal(c.take().length, 126);
  // Call Y (seq 128); its reply arrives but is "lost in flight": we acknowledge 127 only,
  // then the socket drops.
  c.s.sendBinary(encode([0, 500, 'add', ['Y', 41]]));
  await c.s.waitFor(() => c.s.response(500));
  c.take((m) => m[1] !== 500);
  c.ack();
  await new Promise((r) => setTimeout(r, 50));
  c.s.destroy();

  // Socket 3: the server has all 128 of our requests; we have 127 of its replies. It
  // re-sends Y's reply (seq 128) and runs nothing again.
  const third = await c.open();
  t.equal(third.serverAck, 128, 'the server acknowledges all 128 requests: none needs re-sending');
  c.ack();
  await c.s.waitFor(() => c.s.response(500));
  t.same(c.take().map((m) => [m[1], m[3]]), [[500, 42]], 'Y\'s reply, re-sent once');
  t.same([...runs.values()].filter((n) => n !== 1), [], 'every handler ran exactly once');
  t.equal(runs.size, 128);
  c.s.destroy();
});

t.test('issue 10 #2: a reused id of a finished call runs; a request whose id is still running closes 4002', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const h = await startServer({ handlers: { add: (_c, a: number, b: number) => a + b, slow: async () => (await gate, 'late') } });
  t.teardown(() => {
    release();
    return h.close();
  });
  const c = new RawSession(h.port, 'raw2');
  await c.open();
  c.s.sendBinary(concatFrames([encode([2, '$ack', [0]]), encode([0, 5, 'add', [1, 1]])]));
  await c.s.waitFor(() => c.s.response(5));
  t.equal(c.take()[0]![3], 2);
  c.s.destroy(); // the reply was never acknowledged
  await c.open();
  c.ack();
  // The same id, a new call (SPEC: ids are unique among pending calls only).
  c.s.sendBinary(encode([0, 5, 'add', [2, 2]]));
  await c.s.waitFor(() => c.s.messages.filter((m) => Array.isArray(m) && m[0] === 1 && m[1] === 5).pop());
  const answers = c.take().map((m) => m[3]);
  t.same(answers, [4], 'the new call runs and gets its own answer, not the stored one');
  // An id still running, sent again: a broken peer.
  c.s.sendBinary(encode([0, 7, 'slow', []]));
  c.s.sendBinary(encode([0, 7, 'slow', []]));
  const close = await c.s.waitClose();
  t.equal(close?.code, CloseCode.PROTOCOL_ERROR, 'closed 4002');
  t.match(close?.reason, /already pending/);
});
