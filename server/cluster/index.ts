// volley/cluster/redis: run several Volley nodes on one Redis.
//   createServer({ ..., adapter: new RedisAdapter({ redis: 'redis://127.0.0.1:6379' }) })
export { RedisAdapter, createRedisAdapter, type RedisAdapterOptions } from './redisAdapter.ts';
export type { RedisConnection } from './connection.ts';
