/**
 * Several Volley nodes on one Redis or Redis Cluster:
 * `createServer({ …, adapter: new RedisAdapter({ redis: 'redis://127.0.0.1:6379' }) })`.
 *
 * @module volley/cluster/redis
 */
export * from '../../server/cluster/index.ts';
