// System under test: Volley's own server, as an application would use it: typed
// contracts, calls to a client through `server.to(uid).method()`, rooms by `join`.

// Volley as a game runs it: the package's compiled JavaScript (dist/, which run.ts builds
// before the first run), as the peers run the JavaScript they ship. The sources through
// tsx would add esbuild's __name() wrapper to every named closure, a cost no installed
// Volley has. BENCH_VOLLEY_SRC=1 measures the sources instead.
// BENCH_VOLLEY_FROM (system volley-base): another checkout's dist/, the code before a change.
import { volleyModule } from '../lib/volleyFrom.ts';
import { game, gameRoomSize, handled, host, received, streamAck } from './host.ts';
import { roomOf, type RoomState } from '../lib/game.ts';
import { acksAt, item, type Item } from '../lib/streams.ts';
const { createServer } = await volleyModule<typeof import('../../server/index.ts')>('server/index');

const inRoom = process.env.BENCH_ROOM === '1';
const uids: string[] = [];
/** notify-down's acks name a uid; the host's windows go by index (no one leaves mid-run). */
const indexOf = new Map<string, number>();
let arrivals = 0;

interface ServerApi {
  add(a: number, b: number): number;
  echo(x: unknown): unknown;
  input(seq: number, dx: number, dy: number): void;
  act(kind: number, x: number, y: number): { ok: boolean; tick: number };
  /** stream-down: `n` items as a stream. */
  feed(n: number): AsyncIterable<Item>;
  /** stream-up: the client's items as an upload (a param that is an async iterable); how many arrived. */
  upload(items: AsyncIterable<Item>): number;
  /** notify-up: one item; notify-down: the client has the items before `n`. */
  item(it: Item): void;
  ack(n: number): void;
}

interface ClientApi {
  add(a: number, b: number): number;
  echo(x: unknown): unknown;
  tick(t: number): void;
  state(s: RoomState): void;
  ready(tick: number): boolean;
  item(it: Item): void;
  ack(n: number): void;
}

const server = createServer<ServerApi, ClientApi>({
  authenticate: (req) => req.token ?? null,
  handlers: {
    add: (_ctx, a, b) => {
      handled.count++;
      return a + b;
    },
    echo: (_ctx, x) => {
      handled.count++;
      return x;
    },
    input: () => {
      game.inputs++;
    },
    act: () => {
      game.acts++;
      return { ok: true, tick: game.ticks };
    },
    feed: async function* (_ctx, n) {
      for (let i = 0; i < n; i++) yield item(i);
    },
    upload: async (_ctx, items) => {
      let n = 0;
      for await (const it of items) {
        received(it);
        n++;
      }
      return n;
    },
    item: (ctx, it) => {
      received(it);
      if (acksAt(it.seq)) server.notify(ctx.uid, 'ack', it.seq + 1);
    },
    ack: (ctx, n) => streamAck(indexOf.get(ctx.uid) ?? -1, n),
  },
  onConnect: (uid, { resumed }) => {
    if (resumed) return;
    indexOf.set(uid, uids.length);
    uids.push(uid);
    if (inRoom) server.join(uid, 'all');
    if (gameRoomSize > 0) server.join(uid, roomOf(arrivals++, gameRoomSize));
  },
  onSessionEnd: (uid) => {
    const i = uids.indexOf(uid);
    if (i >= 0) uids.splice(i, 1);
    indexOf.delete(uid);
  },
  onError: () => {},
  // bench:instructions: one connection flat out under valgrind passes 10,000 calls/s per uid
  // in its uncounted warm-up; the bucket still runs (and is counted), with room to spare.
  ...(process.env.BENCH_RATE_ROOM === '1' ? { rateLimit: { ratePerSec: 1e9, burst: 1e9 } } : {}),
});

host({
  listen: () => server.listen(0, '127.0.0.1'),
  clientCount: () => uids.length,
  call: (i, method, args, done) => {
    // As the README writes it: a proxy per call.
    const p = method === 'add' ? server.to(uids[i]!).add(args[0] as number, args[1] as number) : server.to(uids[i]!).echo(args[0]);
    p.then(() => done(), done);
  },
  callAll: (method, args, done) => {
    server.callMany(uids, method, args as never).then((outcomes) => {
      done(outcomes.some((o) => o.status !== 'ok') ? new Error('some calls failed') : undefined);
    }, done);
  },
  broadcast: (t) => server.notifyRoom('all', 'tick', t),
  roomNotify: (name, state) => server.notifyRoom(name, 'state', state),
  callPlayer: (i, tick, ms, done) => {
    server.to(uids[i]!, { timeoutMs: ms }).ready(tick).then(() => done(), done);
  },
  notifyItem: (i, it) => server.notify(uids[i]!, 'item', it),
});
