// Redis' own CPU per message for the cluster adapter's two steady streams, at given rates:
// a room notification (SPUBLISH of ~270 bytes to one of 100 room channels, one subscriber)
// and a presence refresh (the adapter's refresh script, as the adapter batches it: 500 keys
// a call on one Redis, one key a call on Redis Cluster, where a node's uids sit in as many
// slots as it has players). cluster-tick's runs give these at the few thousand messages a
// second its players make, where a redis-server's per-wakeup costs dominate; a shard at
// scale sees far more, and pays less per message. docs/SCALING.md projects from both.
//
// The adapter's own Redis clients (openRedis / openCluster: auto-pipelining, sharded
// subscribers) and scripts, from the checkout under test (lib/volleyFrom.ts). One process
// publishes and subscribes: past ~20,000 messages a second here it falls behind, which the
// figures show as `delivered` short of `sent` (or refresh calls failed).

import type { Redis } from 'ioredis';
import { delta, readRedis, sum } from './redisStats.ts';
import { round, sleep } from './procs.ts';
import { volleyModule } from './volleyFrom.ts';

export interface UnitCost {
  what: 'spublish' | 'refresh key';
  /** Messages (SPUBLISH) or keys (refresh) asked for per second. */
  rate: number;
  sent: number;
  /** SPUBLISH: messages the subscriber got. */
  delivered?: number;
  /** Refresh calls that failed (their keys not counted as done). */
  failed: number;
  /** CPU per message or key, µs: the primaries, less what they burn idle over the same time. */
  primariesUs: number;
  replicasUs?: number;
  /** Bytes Redis sent to clients per message. */
  outBytes: number;
}

type Connection = typeof import('../../server/cluster/connection.ts');

export interface UnitCostTarget {
  cluster: boolean;
  adapter: { redis?: string; cluster?: { host: string; port: number }[] };
  info: Redis[];
  /** CPU µs per second the primaries / replicas burn with nothing attached. */
  idle: { primaries: number; replicas: number };
}

/** Paced by the clock (every 10 ms), like the game loop: `send(n)` is asked for what is due. */
async function paced(rate: number, seconds: number, send: (n: number) => void): Promise<number> {
  const total = Math.round(rate * seconds);
  const t0 = Date.now();
  let sent = 0;
  await new Promise<void>((done) => {
    const timer = setInterval(() => {
      const due = Math.min(Math.floor(((Date.now() - t0) * rate) / 1000), total) - sent;
      if (due > 0) {
        send(due);
        sent += due;
      }
      if (sent >= total) {
        clearInterval(timer);
        done();
      }
    }, 10);
  });
  return sent;
}

export async function measureUnitCosts(t: UnitCostTarget, rates: number[], seconds = 5): Promise<UnitCost[]> {
  const { openRedis, openCluster, Scripts } = await volleyModule<Connection>('server/cluster/connection');
  const open = (name: string, subscriber?: boolean) =>
    t.cluster ? openCluster({ nodes: t.adapter.cluster! }, name, subscriber) : openRedis(t.adapter.redis, name, subscriber);
  const pub = open('unit-pub');
  const sub = open('unit-sub', true);
  await Promise.all([pub.connect(), sub.connect()]);
  const scripts = new Scripts(pub);
  const channels = Array.from({ length: 100 }, (_, i) => `unit:rc:{g${i}}`);
  let delivered = 0;
  sub.on('smessageBuffer', () => delivered++);
  for (const c of channels) await sub.ssubscribe(c);
  const payload = Buffer.alloc(270, 7);
  const batch = t.cluster ? 1 : 500;
  const out: UnitCost[] = [];
  try {
    for (const rate of rates) {
      for (const what of ['spublish', 'refresh key'] as const) {
        await sleep(300);
        delivered = 0;
        let failed = 0;
        let next = 0;
        const a = await Promise.all(t.info.map(readRedis));
        const t0 = performance.now();
        const sent = await paced(rate, seconds, (n) => {
          if (what === 'spublish') {
            for (let k = 0; k < n; k++) pub.spublish(channels[next++ % channels.length]!, payload).catch(() => failed++);
            return;
          }
          for (let k = 0; k < n; k += batch) {
            const keys = Array.from({ length: Math.min(batch, n - k) }, () => `unit:p:u${next++ % 100_000}`);
            scripts.refresh(keys, 'n1', 15_000, keys.map(() => 'n1 s1')).catch(() => (failed += keys.length));
          }
        });
        await sleep(500); // the last ones answered and delivered
        const s = (performance.now() - t0) / 1000;
        const d = (await Promise.all(t.info.map(readRedis))).map((b, i) => delta(a[i]!, b));
        const primaries = sum(d.filter((x) => x.role === 'master'));
        const replicas = d.filter((x) => x.role === 'slave');
        const per = (v: number) => round(v / sent, 2);
        out.push({
          what,
          rate,
          sent,
          ...(what === 'spublish' ? { delivered } : {}),
          failed,
          primariesUs: per(primaries.cpuUs - t.idle.primaries * s),
          ...(replicas.length ? { replicasUs: per(sum(replicas).cpuUs - t.idle.replicas * s) } : {}),
          outBytes: round(primaries.netOut / sent),
        });
      }
    }
  } finally {
    pub.disconnect();
    sub.disconnect();
  }
  return out;
}
