// The observability routes as plain functions (method, path, request headers → status,
// headers, body), independent of the transport: mountRoutes() serves them through the
// server's HttpRoutes (either transport), and listenRoutes() on a node:http port of their own.
//
// What a request may cost, whoever sends it: /metrics and /monitor.json are rendered at
// most once per routesCacheMs (RenderCache) and only for a request with the token
// (bearer.ts); /health and the monitor's page are prebuilt replies. Pipelined or polled back
// to back, requests cost writing bytes that already exist.

import type { ServerObserver, ObserveOptions } from './observer.ts';
import { monitorPage } from './monitorPage.ts';
import { BearerToken } from './bearer.ts';
import { RenderCache } from './renderCache.ts';

export interface HttpReply {
  status: number;
  headers: Record<string, string>;
  body: string | Uint8Array;
}

/** What a route reads of its request. */
export interface RouteRequest {
  headers: Record<string, string | string[] | undefined>;
}

export interface Route {
  method: 'GET';
  path: string;
  handle(req: RouteRequest): HttpReply | Promise<HttpReply>;
}

export const DEFAULT_ROUTES_CACHE_MS = 1000;

const JSON_TYPE = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };
const json = (status: number, value: unknown): HttpReply => ({ status, headers: JSON_TYPE, body: Buffer.from(JSON.stringify(value)) });

const UNAUTHORIZED: HttpReply = {
  status: 401,
  headers: { 'content-type': 'text/plain; charset=utf-8', 'www-authenticate': 'Bearer realm="volley"', 'cache-control': 'no-store' },
  body: Buffer.from('unauthorized: send Authorization: Bearer <observe.routesToken>'),
};

type RouteKey = 'metrics' | 'health' | 'monitor';

/** The path `observe.routes` gives a route, or undefined when it is not asked for. */
function pathOf(cfg: ObserveOptions['routes'], key: RouteKey, def: string): string | undefined {
  if (!cfg) return undefined;
  if (cfg === true) return def;
  const v = cfg[key];
  return v === false || v === undefined ? undefined : v;
}

/**
 * Refuse, before anything is registered or listens, options that would serve /metrics or
 * the monitor's data on the players' port to anyone: they need routesToken there.
 */
export function checkRoutes(opts: ObserveOptions): void {
  if (opts.routesToken !== undefined) new BearerToken(opts.routesToken);
  if (opts.routesCacheMs !== undefined && !(opts.routesCacheMs >= 0))
    throw new RangeError(`observe.routesCacheMs must be a non-negative number, got ${opts.routesCacheMs}`);
  if (opts.routesPort !== undefined || opts.routesToken !== undefined) return;
  const open = [opts.registry ? pathOf(opts.routes, 'metrics', '/metrics') : undefined, pathOf(opts.routes, 'monitor', '/monitor')].filter(Boolean);
  if (open.length)
    throw new Error(
      `observe.routes would serve ${open.join(' and ')} on the players' port to anyone who can reach it: ` +
        'set observe.routesToken (requests send Authorization: Bearer <token>), or give them a port of their own (observe.routesPort)',
    );
}

/** The routes `observe.routes` asks for. */
export function observeRoutes(o: ServerObserver): Route[] {
  const cfg = o.opts.routes;
  if (!cfg) return [];
  const token = o.opts.routesToken === undefined ? undefined : new BearerToken(o.opts.routesToken);
  const guarded = (cache: RenderCache) =>
    token ? (req: RouteRequest) => (token.admits(req.headers.authorization) ? cache.get() : UNAUTHORIZED) : () => cache.get();
  const cacheMs = o.opts.routesCacheMs ?? DEFAULT_ROUTES_CACHE_MS;
  const routes: Route[] = [];

  const metricsPath = pathOf(cfg, 'metrics', '/metrics');
  const registry = o.opts.registry;
  if (metricsPath && registry) {
    const headers = { 'content-type': registry.contentType, 'cache-control': 'no-store' };
    const scrape = new RenderCache(cacheMs, async () => ({ status: 200, headers, body: Buffer.from(await registry.metrics()) }));
    routes.push({ method: 'GET', path: metricsPath, handle: guarded(scrape) });
  }

  const healthPath = pathOf(cfg, 'health', '/health');
  if (healthPath) routes.push({ method: 'GET', path: healthPath, handle: health(o) });

  const monitorPath = pathOf(cfg, 'monitor', '/monitor');
  if (monitorPath) {
    o.window.start();
    // The page is static (its numbers come from the JSON), so it needs no token and is built once.
    const page: HttpReply = {
      status: 200,
      headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' },
      body: Buffer.from(monitorPage(`${monitorPath}.json`)),
    };
    routes.push({ method: 'GET', path: monitorPath, handle: () => page });
    const view = new RenderCache(cacheMs, () => json(200, o.window.view()));
    routes.push({ method: 'GET', path: `${monitorPath}.json`, handle: guarded(view) });
  }
  return routes;
}

/**
 * /health, open to load balancers: ready when accepting players and (in a cluster) able to
 * reach the other nodes. Its few possible replies are built once each, on first use.
 */
function health(o: ServerObserver): () => HttpReply {
  const replies: HttpReply[] = [];
  return () => {
    const s = o.server;
    const listening = s?.listening() ?? false;
    const closing = s?.closing() ?? false;
    const redis = s?.clusterConnected();
    const i = (listening ? 1 : 0) | (closing ? 2 : 0) | (redis === undefined ? 0 : redis ? 4 : 8);
    return (replies[i] ??= healthReply(listening, closing, redis));
  };
}

function healthReply(listening: boolean, closing: boolean, redis: boolean | undefined): HttpReply {
  const ready = listening && !closing && redis !== false;
  return json(ready ? 200 : 503, {
    status: ready ? 'ready' : closing ? 'shutting down' : 'not ready',
    listening,
    ...(redis === undefined ? {} : { redis: redis ? 'connected' : 'disconnected' }),
  });
}
