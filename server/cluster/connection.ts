// The two Redis connections a node keeps: one for commands, one subscribed to its
// channels (a subscribed connection can run nothing else). Both reconnect by themselves,
// forever, with a short capped backoff; while down, commands fail at once instead of
// queueing, so a remote call reports UNAVAILABLE instead of hanging on Redis.

import { Redis, type RedisOptions } from 'ioredis';
import { CLAIM, HELD, LEAVE, MEMBERS, REFRESH, RELEASE, ROUTE } from './scripts.ts';

/** Redis connection settings: an ioredis options object or a redis:// URL. */
export type RedisConnection = RedisOptions | string;

/** Longest a command may take before it fails (Redis hung, or a link silently dead). */
const COMMAND_TIMEOUT_MS = 2000;

const ours: RedisOptions = {
  lazyConnect: true,
  enableOfflineQueue: false,
  // A command in flight when the link drops fails instead of being re-sent later: its
  // caller has long moved on (and a re-sent PUBLISH would deliver a stale call).
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 0,
  // Commands issued in the same tick leave in one write: under load a node's forwarded
  // calls and replies cost one syscall per batch instead of one each.
  enableAutoPipelining: true,
  retryStrategy: (times) => Math.min(50 * times, 1000),
};

/**
 * `subscriber`: the connection that only subscribes. Its SUBSCRIBE may wait in the
 * offline queue for as long as Redis is away; ioredis re-subscribes after reconnects.
 */
export function openRedis(conn: RedisConnection | undefined, name: string, subscriber = false): Redis {
  const base: RedisOptions = typeof conn === 'string' ? parseUrl(conn) : { ...conn };
  // Commands get a deadline so a Redis that hangs (instead of closing) fails them too;
  // the subscriber's SUBSCRIBE alone may wait (in the offline queue) as long as Redis is away.
  const queue: RedisOptions = subscriber
    ? { enableOfflineQueue: true, maxRetriesPerRequest: null }
    : { commandTimeout: COMMAND_TIMEOUT_MS };
  return new Redis({ ...base, ...ours, ...queue, connectionName: name });
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

/** The cluster's scripts on the command connection, typed. */
export class Scripts {
  #redis: Redis & Record<string, (...args: unknown[]) => Promise<unknown>>;

  constructor(redis: Redis) {
    redis.defineCommand('volleyRoute', { numberOfKeys: 1, lua: ROUTE });
    redis.defineCommand('volleyClaim', { numberOfKeys: 1, lua: CLAIM });
    redis.defineCommand('volleyRelease', { numberOfKeys: 1, lua: RELEASE });
    redis.defineCommand('volleyRefresh', { lua: REFRESH });
    redis.defineCommand('volleyHeld', { numberOfKeys: 1, lua: HELD });
    redis.defineCommand('volleyMembers', { numberOfKeys: 1, lua: MEMBERS });
    redis.defineCommand('volleyLeave', { numberOfKeys: 1, lua: LEAVE });
    this.#redis = redis as never;
  }

  route(key: string, self: string, channelPrefix: string, message: Buffer): Promise<[string, number]> {
    return this.#redis.volleyRoute!(key, self, channelPrefix, message) as Promise<[string, number]>;
  }
  claim(key: string, self: string, value: string, ttlMs: number, policy: string, resumeSid: string, channelPrefix: string): Promise<string[]> {
    return this.#redis.volleyClaim!(key, self, value, ttlMs, policy, resumeSid, channelPrefix) as Promise<string[]>;
  }
  release(key: string, value: string): Promise<unknown> {
    return this.#redis.volleyRelease!(key, value);
  }
  refresh(keys: string[], self: string, ttlMs: number, values: string[]): Promise<number[]> {
    return this.#redis.volleyRefresh!(keys.length, ...keys, self, ttlMs, ...values) as Promise<number[]>;
  }
  held(key: string, self: string, resumeSid: string, channelPrefix: string): Promise<number> {
    return this.#redis.volleyHeld!(key, self, resumeSid, channelPrefix) as Promise<number>;
  }
  members(key: string, self: string, nodePrefix: string): Promise<string[]> {
    return this.#redis.volleyMembers!(key, self, nodePrefix) as Promise<string[]>;
  }
  leave(key: string, uid: string, self: string): Promise<unknown> {
    return this.#redis.volleyLeave!(key, uid, self);
  }
}
