// Streams both ways (issue 23): a handler returns an async iterable, the caller reads it
// with `for await`. Real server, real clients, a cutting proxy; both transports.

import t from 'tap';
import { connect } from '../client/index.ts';
import { ErrorCode, RpcError, type ServerContext } from '../server/index.ts';
import { WebSocket, sleep, startServer, until } from './helpers.ts';
import { TcpProxy } from './tcpProxy.ts';

let produced = 0;
let finished = 0;
const handlers = {
  count: async function* (_ctx: ServerContext, n: number) {
    try {
      for (let i = 0; i < n; i++) {
        produced++;
        yield i;
      }
    } finally {
      finished++;
    }
  },
  failing: async function* () {
    yield 'a';
    yield 'b';
    throw new RpcError('GAME_OVER', 'the match ended');
  },
  /** The server reads a stream from the caller's client and sums it. */
  sumFromClient: async (ctx: ServerContext, n: number) => {
    let sum = 0;
    let items = 0;
    for await (const x of ctx.server.stream(ctx.uid, 'numbers', [n])) {
      sum += x as number;
      items++;
    }
    return { sum, items };
  },
};
const clientHandlers = {
  numbers: async function* (_ctx: unknown, n: number) {
    for (let i = 1; i <= n; i++) yield i;
  },
};

t.test('server → client: every item, in order, then the end', async (t) => {
  const h = await startServer({ handlers });
  t.teardown(() => h.close());
  const c = await h.client('reader');
  const got: unknown[] = [];
  for await (const x of c.stream('count', [300])) got.push(x);
  t.same(got, Array.from({ length: 300 }, (_, i) => i));
  t.same(h.server.stats(), { connections: 1, pendingIncoming: 0, pendingOutgoing: 0 }, 'nothing left running or waiting');
});

t.test('client → server: a stream the server reads from a player', async (t) => {
  const h = await startServer({ handlers });
  t.teardown(() => h.close());
  const c = await h.client('uploader', { handlers: clientHandlers });
  t.same(await c.server.sumFromClient(100), { sum: 5050, items: 100 });
});

t.test("a player's stream past the rate limit slows to it instead of failing RATE_LIMITED", async (t) => {
  // 1,000 items/s with a burst of 200: 1,500 items need ~1.3 s. Before: the stream failed
  // RATE_LIMITED once the burst was spent (every item is a request that pays a token).
  const h = await startServer({ handlers, rateLimit: { ratePerSec: 1000, burst: 200 } });
  t.teardown(() => h.close());
  const c = await h.client('fast-uploader', { handlers: clientHandlers });
  const began = Date.now();
  t.same(await c.server.sumFromClient(1500), { sum: (1500 * 1501) / 2, items: 1500 }, 'every item arrived');
  const took = Date.now() - began;
  t.ok(took >= 1000, `paced to the rate limit: ${took} ms for 1,500 items at 1,000/s after a burst of 200`);
  t.same(await c.server.sumFromClient(3), { sum: 6, items: 3 }, 'the player is not cut or refused after it');
  t.same(h.server.stats(), { connections: 1, pendingIncoming: 0, pendingOutgoing: 0 }, 'nothing left waiting');
});

t.test('a slow reader holds the producer back (credit), instead of the socket filling', async (t) => {
  const h = await startServer({ handlers });
  t.teardown(() => h.close());
  const c = await h.client('slow');
  produced = 0;
  let read = 0;
  let ahead = 0;
  for await (const _ of c.stream('count', [2000])) {
    read++;
    if (read % 50 === 0) {
      await sleep(20); // the reader falls behind
      ahead = Math.max(ahead, produced - read);
    }
    if (read === 400) break;
  }
  t.ok(ahead <= 16 + 2, `the producer stayed at most the window ahead of the reader (${ahead} items)`);
  t.ok(produced < 450, `it stopped when the reader did (${produced} produced for 400 read)`);
});

t.test("breaking out of the loop cancels the producer: its iterator's return() runs", async (t) => {
  const h = await startServer({ handlers });
  t.teardown(() => h.close());
  const c = await h.client('quitter');
  finished = 0;
  const got: unknown[] = [];
  for await (const x of c.stream('count', [1_000_000])) {
    got.push(x);
    if (got.length === 3) break;
  }
  t.same(got, [0, 1, 2]);
  await until(() => finished === 1, 2000, "the generator's finally");
  await until(() => h.server.stats().pendingIncoming === 0, 2000, 'the stream to end on the server');
});

t.test('an error ends the stream with its code, after the items before it', async (t) => {
  const h = await startServer({ handlers });
  t.teardown(() => h.close());
  const c = await h.client('err');
  const got: unknown[] = [];
  let code: string | undefined;
  try {
    for await (const x of c.stream('failing', [])) got.push(x);
  } catch (err) {
    code = (err as RpcError).code;
  }
  t.same(got, ['a', 'b']);
  t.equal(code, 'GAME_OVER');
});

t.test('a plain call of a streaming method fails clearly instead of hanging', async (t) => {
  const h = await startServer({ handlers });
  t.teardown(() => h.close());
  const c = await h.client('plain');
  await t.rejects(c.call('count', [5]), { code: ErrorCode.CANCELLED });
  await until(() => h.server.stats().pendingIncoming === 0, 2000, 'the stream to end on the server');
});

t.test('cut mid-stream, resumed: every item once, in order', async (t) => {
  const h = await startServer({ handlers });
  t.teardown(() => h.close());
  const proxy = await TcpProxy.start(h.port);
  t.teardown(() => proxy.close());
  const c = await connect(proxy.url, { token: 'u:cut', WebSocket, reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
  t.teardown(() => c.close());
  const opens: boolean[] = [];
  c.on('open', (e: { resumed: boolean }) => opens.push(e.resumed));
  const got: unknown[] = [];
  for await (const x of c.stream('count', [3000])) {
    got.push(x);
    if (got.length % 700 === 0) proxy.cutAll();
  }
  t.equal(got.length, 3000, 'all items');
  t.same(got, Array.from({ length: 3000 }, (_, i) => i), 'each once, in order');
  t.ok(opens.length >= 4 && opens.every((r) => r), `resumed after every cut (${opens.length})`);
});
