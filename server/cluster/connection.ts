// The two Redis clients a node keeps: one for commands, one for its sharded pub/sub
// subscriptions (its own channel and the channels of rooms it has members in). Either a
// single Redis (ioredis `Redis`) or a Redis Cluster (ioredis `Cluster`; the subscriber then
// keeps one connection per primary and sends each SSUBSCRIBE to the shard of its channel).
// Both reconnect by themselves, forever, with a short capped backoff; while down, commands
// fail at once instead of queueing, so a remote call reports UNAVAILABLE instead of hanging.
//
// Pub/sub is sharded (SPUBLISH/SSUBSCRIBE, Redis 7.0+) on both: on Redis Cluster a
// sharded message goes to the one shard that owns its channel instead of to every shard.

import { Cluster, Command, Redis, type ClusterNode, type ClusterOptions, type RedisOptions } from 'ioredis';
import { CLAIM, LEAVE, REFRESH, RELEASE } from './scripts.ts';

/** Redis connection settings: an ioredis options object or a redis:// URL. */
export type RedisConnection = RedisOptions | string;

/** A Redis Cluster: its seed nodes (`redis://host:port` or {host, port}) and ioredis Cluster options. */
export interface RedisClusterConnection {
  nodes: (string | ClusterNode)[];
  options?: ClusterOptions;
}

/** Either client: both take the same commands (ioredis routes a Cluster's by slot). */
export type RedisClient = Redis | Cluster;

/** Longest a command may take before it fails (Redis hung, or a link silently dead). */
export const COMMAND_TIMEOUT_MS = 1000;

const ours: RedisOptions = {
  lazyConnect: true,
  enableOfflineQueue: false,
  // A command in flight when the link drops fails instead of being re-sent later: its
  // caller has long moved on (and a re-sent PUBLISH would deliver a stale call).
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 0,
  // Commands issued in the same tick leave in one write (per shard): under load a node's
  // forwarded calls and replies cost one syscall per batch instead of one each.
  enableAutoPipelining: true,
  retryStrategy: (times) => Math.min(50 * times, 1000),
};

/**
 * `subscriber`: the client that only subscribes. Its SSUBSCRIBEs may wait in the
 * offline queue for as long as Redis is away; ioredis re-subscribes after reconnects.
 */
export function openRedis(conn: RedisConnection | undefined, name: string, subscriber = false): Redis {
  const base: RedisOptions = typeof conn === 'string' ? parseUrl(conn) : { ...conn };
  return new Redis({ ...base, ...ours, ...perRole(subscriber), connectionName: name });
}

export function openCluster(conn: RedisClusterConnection, name: string, subscriber = false): Cluster {
  const { enableOfflineQueue, retryStrategy: _r, ...redisOptions } = { ...ours, ...perRole(subscriber), connectionName: name };
  const nodes = conn.nodes.map((n) => (typeof n === 'string' ? hostPort(n) : n));
  return new Cluster(nodes, {
    ...conn.options,
    lazyConnect: true,
    enableOfflineQueue,
    enableAutoPipelining: true,
    // ioredis groups auto-pipelined commands by the slot of their first argument; the refresh
    // script's first argument is its key count, so its batches were grouped under slot("1")
    // and refused whenever they sat on different shards (presence then expired). Sent on its
    // own, it is routed by its real keys.
    autoPipeliningIgnoredCommands: ['volleyRefresh'],
    clusterRetryStrategy: (times) => Math.min(50 * times, 1000),
    shardedSubscribers: subscriber,
    redisOptions: { ...conn.options?.redisOptions, ...redisOptions },
  });
}

function perRole(subscriber: boolean): RedisOptions {
  // Commands get a deadline so a Redis that hangs (instead of closing) fails them too.
  return subscriber ? { enableOfflineQueue: true, maxRetriesPerRequest: null } : { commandTimeout: COMMAND_TIMEOUT_MS };
}

function hostPort(url: string): ClusterNode {
  const u = new URL(url.includes('://') ? url : `redis://${url}`);
  return { host: u.hostname, port: Number(u.port || 6379) };
}

function parseUrl(url: string): RedisOptions {
  const u = new URL(url);
  return {
    host: u.hostname || undefined,
    port: u.port ? Number(u.port) : undefined,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : undefined,
    tls: u.protocol === 'rediss:' ? {} : undefined,
  };
}

/** The cluster's scripts on the command client, typed. Each touches one slot's keys. */
export class Scripts {
  #redis: RedisClient & Record<string, (...args: unknown[]) => Promise<unknown>>;

  constructor(redis: RedisClient) {
    redis.defineCommand('volleyClaim', { numberOfKeys: 1, lua: CLAIM });
    redis.defineCommand('volleyRelease', { numberOfKeys: 1, lua: RELEASE });
    redis.defineCommand('volleyRefresh', { lua: REFRESH });
    redis.defineCommand('volleyLeave', { numberOfKeys: 1, lua: LEAVE });
    this.#redis = redis as never;
  }

  claim(key: string, self: string, value: string, ttlMs: number, policy: string, resumeSid: string): Promise<string[]> {
    return this.#redis.volleyClaim!(key, self, value, ttlMs, policy, resumeSid) as Promise<string[]>;
  }
  release(key: string, value: string): Promise<unknown> {
    return this.#redis.volleyRelease!(key, value);
  }
  /** `keys` must share one slot on Redis Cluster. */
  refresh(keys: string[], self: string, ttlMs: number, values: string[]): Promise<number[]> {
    return this.#redis.volleyRefresh!(keys.length, ...keys, self, ttlMs, ...values) as Promise<number[]>;
  }
  leave(key: string, uid: string, node: string): Promise<unknown> {
    return this.#redis.volleyLeave!(key, uid, node);
  }
}

/**
 * SPUBLISH sent at once, outside auto-pipelining: for a batch the outbox already made
 * (outbox.ts), which goes alone in its turn whenever one node is the only target.
 * Auto-pipelining would still wrap it in a Pipeline of its own (objects, promises and
 * garbage per batch, nothing saved). Room publishes stay auto-pipelined: several rooms in
 * one turn share a write.
 */
export function spublishNow(redis: RedisClient, channel: string, message: Buffer): Promise<number> {
  return redis.sendCommand(new Command('spublish', [channel, message])) as Promise<number>;
}

/** Resolves once `redis` is ready (connected, and past ioredis' ready check). */
export function readyOf(redis: RedisClient): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => redis.once('ready', () => resolve()));
}
