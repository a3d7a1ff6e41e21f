// Several load-generator machines in one run, through Redis (ioredis, the optional peer
// dependency Volley's cluster adapter uses). Every generator runs the same command with
// `--redis URL --run-id ID --generators N`; each takes a slot (INCR), generator 0 is the
// coordinator: it prints the live view, writes the report and decides the exit code, which
// the others wait for and exit with. Keys live a day under volley-loadtest:{ID}:…
//
// Clocks: the start is fixed in Redis' own time (TIME), and each generator converts it to
// its clock with the offset it measured, so machines need not agree on the time.

import type { Hub, RemoteSnap } from './hub.ts';
import type { Snapshot } from './stats.ts';

const TTL_S = 86_400;

interface RedisLike {
  incr(key: string): Promise<number>;
  get(key: string): Promise<string | null>;
  set(key: string, value: string, ...args: (string | number)[]): Promise<unknown>;
  hset(key: string, field: string, value: string): Promise<unknown>;
  hgetall(key: string): Promise<Record<string, string>>;
  expire(key: string, s: number): Promise<unknown>;
  time(): Promise<[string, string]>;
  quit(): Promise<unknown>;
  disconnect(): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function redisHub(opts: { url: string; runId: string; generators: number; joinTimeoutMs: number; log: (line: string) => void }): Promise<Hub> {
  let Redis: new (url: string, o: object) => RedisLike;
  try {
    const spec = 'ioredis';
    Redis = ((await import(spec)) as { default: typeof Redis }).default;
  } catch {
    throw new Error('--redis needs the ioredis package: npm i ioredis');
  }
  const redis = new Redis(opts.url, { maxRetriesPerRequest: 2, lazyConnect: false });
  const key = (k: string) => `volley-loadtest:{${opts.runId}}:${k}`;
  const keys = ['slots', 'ready', 'start', 'snaps', 'verdict'].map(key);
  const touch = () => Promise.all(keys.map((k) => redis.expire(k, TTL_S)));

  const slot = await redis.incr(key('slots'));
  await touch();
  if (slot > opts.generators) {
    redis.disconnect();
    throw new Error(`run ${opts.runId} already has its ${opts.generators} generators (this would be number ${slot}): use a new --run-id`);
  }
  const generator = slot - 1;
  opts.log(`generator ${generator + 1} of ${opts.generators} in run ${opts.runId}${generator === 0 ? ' (coordinator)' : ''}`);

  /** Redis' clock minus ours, ms (half the round trip taken as the one-way delay). */
  const offset = async () => {
    const t0 = Date.now();
    const [s, us] = await redis.time();
    const t1 = Date.now();
    return Number(s) * 1000 + Number(us) / 1000 - (t0 + t1) / 2;
  };

  return {
    generator,
    generators: opts.generators,
    async startAt() {
      await redis.incr(key('ready'));
      const deadline = Date.now() + opts.joinTimeoutMs;
      let said = false;
      for (;;) {
        const ready = Number(await redis.get(key('ready')));
        if (ready >= opts.generators) break;
        if (Date.now() > deadline) throw new Error(`only ${ready} of ${opts.generators} generators joined run ${opts.runId} within ${opts.joinTimeoutMs} ms`);
        if (!said) opts.log(`waiting for ${opts.generators - ready} more generator(s)…`);
        said = true;
        await sleep(100);
      }
      const off = await offset();
      // Whoever gets here first fixes the start, a second from now in Redis time.
      await redis.set(key('start'), String(Math.round(Date.now() + off + 1000)), 'NX', 'EX', TTL_S);
      return Number(await redis.get(key('start'))) - off;
    },
    async publish(seq: number, snap: Snapshot, final: boolean) {
      await redis.hset(key('snaps'), String(generator), JSON.stringify({ seq, final, snap } satisfies RemoteSnap));
    },
    async others() {
      const all = await redis.hgetall(key('snaps'));
      const out = new Map<number, RemoteSnap>();
      for (const [g, v] of Object.entries(all)) if (Number(g) !== generator) out.set(Number(g), JSON.parse(v) as RemoteSnap);
      return out;
    },
    async setVerdict(code: number) {
      await redis.set(key('verdict'), String(code), 'EX', TTL_S);
    },
    async verdict(timeoutMs: number) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const v = await redis.get(key('verdict'));
        if (v !== null) return Number(v);
        await sleep(200);
      }
      return undefined;
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
