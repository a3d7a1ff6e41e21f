import t from 'tap';
import { encode } from '../protocol/index.ts';
import { startServer, until, sleep } from './helpers.ts';
import { clientFrame, rawUpgrade } from './rawClient.ts';

const MiB = 1024 * 1024;

t.test('a stuck reader: notifications dropped, calls fail OVERLOADED, hard limit disconnects (session kept); memory bounded; others served', async (t) => {
  const downs: { uid: string; code: number }[] = [];
  const ended: string[] = [];
  const big = 'x'.repeat(64 * 1024);
  const h = await startServer({
    handlers: { big: () => big, add: (_c, a: number, b: number) => a + b },
    backpressure: { softBytes: 256 * 1024, hardBytes: 2 * MiB },
    onDisconnect: (uid, code) => downs.push({ uid, code }),
    onSessionEnd: (uid) => ended.push(uid),
  });
  t.teardown(() => h.close());
  const good = await h.client('good');

  const { socket, status } = await rawUpgrade(h.port, '/?token=u:stuck');
  t.match(status, /101/);
  t.teardown(() => socket.destroy());
  await until(() => h.server.isOnline('stuck'), 2000, 'stuck client registered');
  socket.pause(); // never read again: the kernel buffers fill, then the server's

  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  // 1) Flood notifications at the stuck reader (bounded: 4,000 × 64 KiB = 250 MiB offered).
  for (let i = 0; i < 4000; i++) {
    h.server.notify('stuck', 'news', big);
    if (i % 100 === 0) await sleep(1); // let the microtask flush and the socket write
  }
  await sleep(20);
  // 2) A call to it now fails fast instead of queueing.
  const started = Date.now();
  const err = await h.server.call('stuck', 'anything', []).catch((e) => e);
  t.equal(err.code, 'OVERLOADED', 'call to a backed-up client fails fast');
  t.ok(Date.now() - started < 1000, 'without waiting for its deadline');
  const rssAfter = process.memoryUsage().rss;
  const growthMiB = (rssAfter - rssBefore) / MiB;
  t.ok(growthMiB < 64, `server RSS grew ${growthMiB.toFixed(1)} MiB while 250 MiB of notifications were offered`);
  t.comment(`stuck reader: rss before ${(rssBefore / MiB).toFixed(1)} MiB, after ${(rssAfter / MiB).toFixed(1)} MiB`);

  // 3) Meanwhile another client is served normally.
  const sums = await Promise.all(Array.from({ length: 100 }, (_, i) => good.server.add(i, 1)));
  t.same(sums, Array.from({ length: 100 }, (_, i) => i + 1));

  // 4) Replies can't be dropped; when they push the buffer past the hard limit the client is cut off.
  const frames: Buffer[] = [];
  for (let id = 0; id < 200; id++) frames.push(clientFrame(encode([0, id, 'big', []])));
  socket.write(Buffer.concat(frames));
  await until(() => downs.some((d) => d.uid === 'stuck'), 5000, 'stuck client disconnected');
  t.equal(downs.find((d) => d.uid === 'stuck')?.code, 4009, 'closed with CloseCode.OVERLOADED');
  // 4009 keeps the session (SPEC §6): a slow reader reconnects and resumes.
  t.notOk(ended.includes('stuck'), 'the session is kept for the resume window');
  t.ok(h.server.isConnected('stuck') && !h.server.isOnline('stuck'), 'session without a socket');
  t.equal(await good.server.add(1, 1), 2, 'the good client is still served');
});
