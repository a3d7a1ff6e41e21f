// volley/server: the server side of Volley (native uWebSockets.js, or ws on node:http).
export { createServer, VolleyServer, type ServerOptions, type CloseOptions } from './server.ts';
export { ServerContext } from './context.ts';
export { RateLimiter, DEFAULT_RATE_LIMIT, type RateLimitOptions } from './rateLimit.ts';
export type { Outcome } from './callMany.ts';
export { LocalAdapter, type ClusterAdapter, type LocalNode } from './adapter.ts';
export type { UpgradeRequest } from './upgradeRequest.ts';
export { TOKEN_PROTOCOL_PREFIX, VOLLEY_PROTOCOL, forwardedFor } from './upgradeRequest.ts';
export { SERVER_DEFAULTS, type AuthLimits } from './options.ts';
export { detectTransport } from './transports/index.ts';
export type { TransportName, HttpRoutes, HttpReply, HttpRequestInfo, HttpHandler, HttpLimits, TlsOptions } from './transports/index.ts';
export * from '../protocol/index.ts';
