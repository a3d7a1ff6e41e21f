// volley/server: the uWebSockets.js server side of Volley.
export { createServer, VolleyServer, type ServerOptions, type CloseOptions } from './server.ts';
export { ServerContext } from './context.ts';
export { RateLimiter, DEFAULT_RATE_LIMIT, type RateLimitOptions } from './rateLimit.ts';
export type { Outcome } from './callMany.ts';
export { LocalAdapter, type ClusterAdapter, type LocalNode } from './adapter.ts';
export type { UpgradeRequest } from './upgradeRequest.ts';
export { TOKEN_PROTOCOL_PREFIX, VOLLEY_PROTOCOL } from './upgradeRequest.ts';
export { isNativeUws } from './uws.ts';
export * from '../protocol/index.ts';
