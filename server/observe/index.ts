// Observability for a VolleyServer: metrics (prom-client), traces (OpenTelemetry), HTTP
// routes and the live monitor page. The server builds one ServerObserver when its
// `observe` option is set and calls its hooks; nothing here runs otherwise.

import { ServerObserver, type ObserveOptions, type ObservedServer } from './observer.ts';
import { registerMetrics } from './prometheus.ts';
import { checkRoutes, observeRoutes, type Route } from './routes.ts';
import { listenRoutes } from './mountHttp.ts';

export { ServerObserver, DEFAULT_MAX_SERIES, type ObserveOptions, type ObservedServer, type EndReason } from './observer.ts';
export { observeRoutes, DEFAULT_ROUTES_CACHE_MS, type Route, type RouteRequest, type HttpReply } from './routes.ts';
export { mountRoutes } from './mountRoutes.ts';
export { handleHttp, listenRoutes } from './mountHttp.ts';
export { volleyMetrics, registerMetrics } from './prometheus.ts';

/** The observer for a server with these registered methods, or undefined when `opts` is. */
export function createObserver(
  opts: ObserveOptions | undefined,
  methods: Iterable<string>,
  server: ObservedServer,
): ServerObserver | undefined {
  if (!opts) return undefined;
  checkRoutes(opts); // before anything is registered in the registry or listens
  const obs = new ServerObserver(opts, methods);
  obs.server = server;
  if (opts.registry) registerMetrics(opts.registry, obs);
  return obs;
}

/**
 * The routes to mount on the players' port: all of them, or none when they have a port of
 * their own (then that server starts listening here; `obs.ready` settles when it does).
 */
export function routesForMainPort(obs: ServerObserver): Route[] {
  const routes = observeRoutes(obs);
  if (obs.opts.routesPort === undefined) return routes;
  obs.ready = listenRoutes(routes, obs.opts.routesPort, obs.opts.routesHost ?? '127.0.0.1').then((s) => {
    obs.routesServer = s;
  });
  return [];
}
