// System under test: Volley's own server, as an application would use it: typed
// contracts, calls to a client through `server.to(uid).method()`, rooms by `join`.

// Volley as a game runs it: the package's compiled JavaScript (dist/, which run.ts builds
// before the first run), as the peers run the JavaScript they ship. The sources through
// tsx would add esbuild's __name() wrapper to every named closure, a cost no installed
// Volley has. BENCH_VOLLEY_SRC=1 measures the sources instead.
// BENCH_VOLLEY_FROM (system volley-base): another checkout's dist/, the code before a change.
import { volleyModule } from '../lib/volleyFrom.ts';
import { game, gameRoomSize, handled, host } from './host.ts';
import { roomOf, type RoomState } from '../lib/game.ts';
const { createServer } = await volleyModule<typeof import('../../server/index.ts')>('server/index');

const inRoom = process.env.BENCH_ROOM === '1';
const uids: string[] = [];
let arrivals = 0;

interface ServerApi {
  add(a: number, b: number): number;
  echo(x: unknown): unknown;
  input(seq: number, dx: number, dy: number): void;
  act(kind: number, x: number, y: number): { ok: boolean; tick: number };
}

interface ClientApi {
  add(a: number, b: number): number;
  echo(x: unknown): unknown;
  tick(t: number): void;
  state(s: RoomState): void;
  ready(tick: number): boolean;
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
  },
  onConnect: (uid, { resumed }) => {
    if (resumed) return;
    uids.push(uid);
    if (inRoom) server.join(uid, 'all');
    if (gameRoomSize > 0) server.join(uid, roomOf(arrivals++, gameRoomSize));
  },
  onSessionEnd: (uid) => {
    const i = uids.indexOf(uid);
    if (i >= 0) uids.splice(i, 1);
  },
  onError: () => {},
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
});
