// One Volley node of bench/cluster-tick.ts, in its own process: Volley's server with a
// RedisAdapter. It seats each player that connects in its game room (lib/clusterPlan.ts),
// as a matchmaker would, and when driven runs the game of the rooms it hosts: their state
// GAME.tickHz times a second (notifyRoom) and a call to each of their members every
// GAME.serverCallEveryMs, by uid (local, or forwarded through Redis to its node). The
// players' inputs and calls (bench/clients/worker.ts) are served as servers/volley.ts does.
// A node given no players (the "idle node") only keeps its adapter up.
//
// env CLUSTER_NODE: JSON NodeConfig. BENCH_VOLLEY_FROM: a checkout whose dist/ to run
// (default this one's; BENCH_VOLLEY_SRC=1: the sources), as servers/volley.ts.

import { serve } from '../lib/ipc.ts';
import { GAME, gameLoop, roomState, type RoomState } from '../lib/game.ts';
import { hostedRooms, members, roomName, roomOfPlayer, uidOf, type Plan } from '../lib/clusterPlan.ts';
import { volleyModule } from '../lib/volleyFrom.ts';

export interface NodeConfig {
  /** This node's place in the plan (its players and hosted rooms); -1: the idle node. */
  index: number;
  plan: Plan;
  /** One Redis (URL) or a Redis Cluster (seed nodes); neither: a node alone, no adapter. */
  redis?: string;
  cluster?: { host: string; port: number }[];
  prefix: string;
}

const cfg = JSON.parse(process.env.CLUSTER_NODE ?? '{}') as NodeConfig;
const { createServer } = await volleyModule<typeof import('../../server/index.ts')>('server/index');
const { RedisAdapter } = await volleyModule<typeof import('../../server/cluster/index.ts')>('server/cluster/index');

interface ServerApi {
  input(seq: number, dx: number, dy: number): void;
  act(kind: number, x: number, y: number): { ok: boolean; tick: number };
}
interface ClientApi {
  state(s: RoomState): void;
  ready(tick: number): boolean;
}

const game = { ticks: 0, inputs: 0, acts: 0, calls: 0, callsOk: 0, callsFailed: 0 };
let players = 0;
let redisErrors = 0;
let firstRedisError: string | undefined;

// A tree from before the cluster rewrite takes `redis` only; its adapter has no `received`.
const adapter =
  cfg.redis || cfg.cluster
    ? new RedisAdapter({
        ...(cfg.cluster ? { cluster: { nodes: cfg.cluster } } : { redis: cfg.redis }),
        prefix: cfg.prefix,
        nodeId: cfg.index < 0 ? 'idle' : `n${cfg.index}`,
        onError: (err: unknown) => {
          redisErrors++;
          firstRedisError ??= err instanceof Error ? err.message : String(err);
        },
      } as ConstructorParameters<typeof RedisAdapter>[0])
    : undefined;

const server = createServer<ServerApi, ClientApi>({
  authenticate: (req) => req.token ?? null,
  handlers: {
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
    players++;
    server.join(uid, roomName(roomOfPlayer(cfg.plan, Number(uid.slice(1)))));
  },
  onSessionEnd: () => void players--,
  adapter,
  onError: () => {},
});

let stopAt = 0;
let inFlight = 0;
let errors = 0;
let timer: ReturnType<typeof setInterval> | undefined;

/** The game of the rooms this node hosts, ticks numbered from `epochMs` (shared by every node). */
function drive(epochMs: number): number {
  const hosted = hostedRooms(cfg.plan, cfg.index);
  const rooms = hosted.map((r) => ({ name: roomName(r), state: roomState(r, cfg.plan.roomSize) }));
  // The server calls go to the hosted rooms' members, wherever they are connected.
  const called = hosted.flatMap((r) => members(cfg.plan, r).map(uidOf));
  let next = 0;
  const done = (err?: unknown) => {
    inFlight--;
    if (err) {
      game.callsFailed++;
      errors++;
    } else game.callsOk++;
  };
  timer = gameLoop(
    epochMs,
    called.length,
    () => Date.now() < stopAt,
    (tick) => {
      game.ticks = tick;
      const t = Number(process.hrtime.bigint() / 1000n);
      for (const room of rooms) {
        room.state.t = t;
        room.state.tick = tick;
        server.notifyRoom(room.name, 'state', room.state);
      }
    },
    (tick) => {
      game.calls++;
      inFlight++;
      server.to(called[next++ % called.length]!, { timeoutMs: GAME.serverCallDeadlineMs }).ready(tick).then(() => done(), done);
    },
  );
  return rooms.length;
}

serve(async (req) => {
  switch (req.cmd) {
    case 'listen':
      return { port: await server.listen(0, '127.0.0.1'), pid: process.pid };
    case 'snap': {
      const cpu = process.cpuUsage();
      const a = adapter as unknown as { received?: { node: number; room: number }; roomSubscriptions?: number; presenceCount: number; connected: boolean } | undefined;
      return {
        t: Date.now(),
        cpuUs: cpu.user + cpu.system,
        rss: process.memoryUsage().rss,
        players,
        // Without an adapter every player is "present": this node is the whole server.
        presence: a ? a.presenceCount : players,
        connected: a ? a.connected : true,
        roomSubscriptions: a?.roomSubscriptions ?? null,
        received: a?.received ? { ...a.received } : null,
        redisErrors,
        firstRedisError,
        game: { ...game },
      };
    }
    case 'drive': {
      stopAt = Date.now() + (req.maxMs as number);
      return { rooms: cfg.index < 0 ? 0 : drive(req.epochMs as number) };
    }
    case 'stop': {
      stopAt = 0;
      if (timer) clearInterval(timer);
      const end = Date.now() + 3000;
      while (inFlight > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      return { errors, unfinished: inFlight };
    }
    case 'exit':
      // Close properly: the node's presence and room entries leave Redis with it.
      setImmediate(async () => {
        await server.close({ graceMs: 0 }).catch(() => {});
        process.exit(0);
      });
      return {};
    default:
      throw new Error(`unknown command ${req.cmd}`);
  }
});
