// The server under attack, run in a child process so that what an attack costs it can be
// measured apart from the test's own allocations: `node --expose-gc --import tsx
// test/attack/server.ts`, options as JSON in ATTACK_SERVER. It reports over IPC (see
// harness.ts): heap and ArrayBuffer bytes after a full GC, event-loop delay
// (perf_hooks.monitorEventLoopDelay), and what its handlers saw.
//
// The handlers are the ordinary ones a game server has, written the ordinary way, each
// the target of one attack in issue 9: an async handler that holds its params while it
// waits, a handler that splits a string by a separator it was given, one that stores a
// value another player loads later, rooms joined by uid.

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createServer, type ServerContext, type ServerOptions } from '../../server/index.ts';

export interface AttackServerOptions {
  /** Extra ServerOptions (limits, rateLimit, resumeWindowMs…): passed through as they are. */
  server?: Partial<ServerOptions<any, any>>;
  /** Longest a held handler or a slow authenticate waits for 'release', ms. */
  holdMaxMs?: number;
}

/** A request from the test, over IPC. */
export interface Command {
  id: number;
  cmd: 'memory' | 'loop' | 'counters' | 'release' | 'members' | 'roomsOf';
  arg?: string;
}

const opts = JSON.parse(process.env.ATTACK_SERVER ?? '{}') as AttackServerOptions;
const holdMaxMs = opts.holdMaxMs ?? 15_000;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc || !process.send) throw new Error('run with --expose-gc, as a child process with an IPC channel');

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

// One gate for every held handler and slow login; 'release' opens it and makes a new one.
let open!: () => void;
let gate!: Promise<void>;
const newGate = () => {
  gate = new Promise<void>((r) => (open = r));
  const timer = setTimeout(open, holdMaxMs); // a test that forgets to release can't hang the child
  timer.unref();
};
newGate();

const counters = { holdRuns: 0, keepRuns: 0, seen: [] as string[], errors: [] as string[], authPending: 0 };
let stored: unknown = null;

/** A value's type as a handler would see it (for "did an extension type get through?"). */
const describe = (v: unknown) => (v === null || typeof v !== 'object' ? typeof v : Object.prototype.toString.call(v).slice(8, -1));

/** What a careless game server might build from stored data: an Error with a long cause chain. */
function deepError(depth: number): Error {
  let e = new Error('root');
  for (let i = 0; i < depth; i++) e = new Error(`level ${i}`, { cause: e });
  return e;
}

/** Values msgpack has no plain type for, by name (the `give` handler returns them). */
const unplain: Record<string, () => unknown> = {
  error: () => new Error('e'),
  regexp: () => /x/,
  set: () => new Set([1]),
  map: () => new Map([[1, 2]]),
  float32array: () => new Float32Array(2),
  bigint: () => 2n ** 70n,
};

const handlers = {
  add: (_c: ServerContext, a: number, b: number) => a + b,
  /** An ordinary async handler: its params stay alive until it answers. */
  hold: async (_c: ServerContext, v: unknown) => {
    counters.holdRuns++;
    await gate;
    return v === undefined ? 0 : 1; // v is used after the await, so it is held until then
  },
  /** The same as a notification handler. */
  keep: async (_c: ServerContext, v: unknown) => {
    counters.keepRuns++;
    await gate;
    if (v === gate) counters.keepRuns--;
  },
  echo: (_c: ServerContext, v: unknown) => v,
  /** A large reply (at most 1 MB): what moves msgpackr's shared encode buffer on. */
  blob: (_c: ServerContext, n: number) => new Uint8Array(Math.min(Number(n) || 0, 1_000_000)),
  take: (_c: ServerContext, v: unknown) => (counters.seen.push(describe(v)), 'ok'),
  /** The handler of issue 9 #4: a separator from the wire goes straight to String#split. */
  split: (_c: ServerContext, text: string, sep: string) => String(text).split(sep).length,
  store: (_c: ServerContext, v: unknown) => ((stored = v), 'stored'),
  load: () => stored,
  loadDeep: () => deepError(40),
  /** A handler returning a value msgpack has no plain type for (it must not leave as an extension). */
  give: (_c: ServerContext, kind: string) => (Object.hasOwn(unplain, kind) ? unplain[kind]!() : null),
  enter: (ctx: ServerContext, room: string) => (ctx.server.join(ctx.uid, room), ctx.server.members(room).length),
  /** Join `n` rooms named prefix0…; reports how many it got into and the error that stopped it. */
  enterMany: (ctx: ServerContext, prefix: string, n: number) => {
    for (let i = 0; i < n; i++) {
      try {
        ctx.server.join(ctx.uid, `${prefix}${i}`);
      } catch (err) {
        return { joined: i, code: (err as { code?: string }).code ?? String(err) };
      }
    }
    return { joined: n, code: null };
  },
  /** A matchmaker inviting uids that have no session (never logged in, or gone). */
  invite: (ctx: ServerContext, prefix: string, n: number, room: string) => {
    for (let i = 0; i < n; i++) ctx.server.join(`${prefix}${i}`, room);
    return ctx.server.members(room).length;
  },
  /** Joins after an await: by then the caller's session may have ended. */
  lateJoin: async (ctx: ServerContext, room: string, ms: number) => {
    await sleep(ms);
    ctx.server.join(ctx.uid, room);
    return 'joined';
  },
};

const server = createServer({
  // "u:<uid>" logs in at once; "slow:<uid>" waits for the gate (a slow auth backend).
  authenticate: async (req) => {
    const token = req.token ?? '';
    if (token.startsWith('u:')) return token.slice(2);
    if (!token.startsWith('slow:')) return null;
    counters.authPending++;
    await gate;
    counters.authPending--;
    return token.slice(5);
  },
  handlers,
  onError: (err) => void (counters.errors.length < 100 && counters.errors.push(String((err as Error)?.message ?? err))),
  ...opts.server,
} as ServerOptions<any, any>);

const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();

async function memory() {
  // Two collections with a turn between them: ArrayBuffers are freed by finalizers.
  gc!();
  await new Promise((r) => setImmediate(r));
  gc!();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers, external: m.external, rss: m.rss };
}

const commands: Record<Command['cmd'], (arg?: string) => unknown> = {
  memory,
  /** Event-loop delay since the last 'loop' (which resets it), ms. */
  loop: () => {
    const r = { maxMs: loop.max / 1e6, p99Ms: loop.percentile(99) / 1e6, meanMs: loop.mean / 1e6 };
    loop.reset();
    return r;
  },
  counters: () => ({ ...counters, stats: server.stats() }),
  release: () => {
    open();
    newGate();
    return true;
  },
  members: (room) => server.members(room!).length,
  roomsOf: (uid) => server.rooms.roomsOf(uid!),
};

process.on('message', async (m: Command) => {
  let result: unknown;
  let error: string | undefined;
  try {
    result = await commands[m.cmd](m.arg);
  } catch (err) {
    error = String(err);
  }
  process.send!({ id: m.id, result, error });
});
// The test process went away: go with it.
process.on('disconnect', () => process.exit(0));

const port = await server.listen(0, '127.0.0.1');
process.send({ type: 'listening', port });
