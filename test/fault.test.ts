// Issue 3's fault test: thousands of calls both ways through a proxy that delays and
// cuts connections mid-call. Every call must settle exactly once with the right result
// or a coded error, and no handler may run twice.

import t from 'tap';
import WebSocket from 'ws';
import { connect, type VolleyClient } from '../client/index.ts';
import { startServer, sleep } from './helpers.ts';
import { TcpProxy } from './tcpProxy.ts';

const CALLS_EACH_WAY = Number(process.env.FAULT_CALLS ?? 2000);
const CLIENTS = 4;

t.test('calls both ways through a cutting proxy: none lost, none run twice', async (t) => {
  const serverRuns = new Map<string, number>();
  const clientRuns = new Map<string, number>();
  const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  const h = await startServer({
    handlers: {
      work: async (_ctx, key: string, n: number) => {
        bump(serverRuns, key);
        if (n % 3 === 0) await sleep(Math.random() * 20);
        return n * 2;
      },
    },
    resumeWindowMs: 20_000,
  });
  const proxy = await TcpProxy.start(h.port, { delayMs: 2 });
  const clients: VolleyClient[] = [];
  t.teardown(async () => {
    for (const c of clients) c.close();
    await proxy.close();
    await h.close();
  });
  for (let i = 0; i < CLIENTS; i++) {
    const uid = `p${i}`;
    clients.push(
      await connect(proxy.url, {
        token: `u:${uid}`,
        WebSocket,
        timeoutMs: 20_000,
        reconnect: { initialDelayMs: 5, maxDelayMs: 50 },
        handlers: {
          cwork: async (_ctx: unknown, key: string, n: number) => {
            bump(clientRuns, key);
            if (n % 3 === 0) await sleep(Math.random() * 20);
            return n + 1;
          },
        },
      }),
    );
  }

  let settledTwice = 0;
  let wrong = 0;
  let coded = 0;
  let ok = 0;
  const track = (p: Promise<unknown>, expected: number) => {
    let settled = false;
    const done = () => {
      if (settled) settledTwice++;
      settled = true;
    };
    return p.then(
      (v) => {
        done();
        if (v === expected) ok++;
        else wrong++;
      },
      (err: { code?: string }) => {
        done();
        if (typeof err?.code === 'string') coded++;
        else wrong++;
      },
    );
  };

  // Cut a random connection every 15 ms while the calls run (bounded by the calls' end).
  let cutting = true;
  const cutter = (async () => {
    while (cutting) {
      await sleep(15);
      proxy.cutRandom();
    }
  })();

  const all: Promise<unknown>[] = [];
  for (let n = 0; n < CALLS_EACH_WAY; n++) {
    const c = clients[n % CLIENTS]!;
    all.push(track(c.server.work(`s${n}`, n), n * 2));
    all.push(track(h.server.call(`p${n % CLIENTS}`, 'cwork', [`c${n}`, n], { timeoutMs: 20_000 }), n + 1));
    if (n % 10 === 0) await sleep(5); // spread the calls over ~1-2 s so cuts land mid-call
  }
  let timer!: ReturnType<typeof setTimeout>;
  const deadline = new Promise<string>((r) => (timer = setTimeout(() => r('deadline'), 30_000)));
  const finished = await Promise.race([Promise.all(all).then(() => 'done'), deadline]);
  clearTimeout(timer);
  cutting = false;
  await cutter;

  const total = CALLS_EACH_WAY * 2;
  const lost = total - (ok + coded + wrong);
  const twiceServer = [...serverRuns.values()].filter((n) => n > 1).length;
  const twiceClient = [...clientRuns.values()].filter((n) => n > 1).length;
  t.comment(`calls: ${total}, cuts: ${proxy.cuts}, ok: ${ok}, coded errors: ${coded}, wrong: ${wrong}, lost: ${lost}, ` +
    `ran twice: server ${twiceServer}, client ${twiceClient}`);
  t.equal(finished, 'done', 'every call settled before the test deadline');
  t.equal(lost, 0, 'no call lost');
  t.equal(wrong, 0, 'no wrong result');
  t.equal(settledTwice, 0, 'no call settled twice');
  t.equal(twiceServer, 0, 'no server handler ran twice');
  t.equal(twiceClient, 0, 'no client handler ran twice');
  t.ok(proxy.cuts > 10, `the proxy really cut connections (${proxy.cuts})`);
  t.equal(ok, total, 'within the resume window every call got its result');
});
