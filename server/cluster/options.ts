// The options of the Redis cluster adapter (see docs/CLUSTER.md).

import type { RedisClusterConnection, RedisConnection } from './connection.ts';

/** What `new RedisAdapter()` takes; all optional (a local Redis on 6379 by default). */
export interface RedisAdapterOptions {
  /** One Redis (7.0 or later): ioredis options or a redis:// URL. Default: localhost:6379. */
  redis?: RedisConnection;
  /** A Redis Cluster (7.0 or later) instead: its seed nodes and ioredis Cluster options. */
  cluster?: RedisClusterConnection;
  /** Prefix of every key and channel; nodes of one cluster share it. Default "volley:". */
  prefix?: string;
  /** This node's id (no spaces). Default: host name, pid and a random suffix. */
  nodeId?: string;
  /**
   * Lifetime of presence entries and of the node's liveness key, ms; the node refreshes
   * them every third of it. Bounds how long a dead node's players look connected.
   * Default 15 000.
   */
  presenceTtlMs?: number;
  /** How long listen() waits for Redis before starting without it (it keeps retrying). Default 5000 ms. */
  connectTimeoutMs?: number;
  /**
   * Most bytes one session may carry through Redis when it moves to another node (the
   * player resumed there): its unacknowledged messages and the ids of its calls in flight.
   * A larger session is not moved: it ends, and the player starts afresh. Default 4 MiB.
   */
  maxHandoverBytes?: number;
  /**
   * How long a player's upgrade waits for the node holding its session to hand it over
   * (a node that is gone is known at once). Past it the player starts afresh. Default 1500 ms.
   */
  handoverTimeoutMs?: number;
  /** Redis trouble (connection lost, a command failed). Default: one console.warn per outage. */
  onError?(err: unknown): void;
}
