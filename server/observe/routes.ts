// The observability HTTP routes as plain functions (method, path → status, headers, body),
// independent of the transport: mountRoutes() serves them through the server's HttpRoutes
// (either transport), and listenRoutes() on a node:http port of their own.

import type { ServerObserver } from './observer.ts';
import { monitorPage } from './monitorPage.ts';

export interface HttpReply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface Route {
  method: 'GET';
  path: string;
  handle(): HttpReply | Promise<HttpReply>;
}

const json = (status: number, value: unknown): HttpReply => ({
  status,
  headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
  body: JSON.stringify(value),
});

/** The routes `observe.routes` asks for. */
export function observeRoutes(o: ServerObserver): Route[] {
  const cfg = o.opts.routes;
  if (!cfg) return [];
  const pick = (key: 'metrics' | 'health' | 'monitor', def: string): string | undefined => {
    if (cfg === true) return def;
    const v = cfg[key];
    return v === false || v === undefined ? undefined : v;
  };
  const routes: Route[] = [];
  const metricsPath = pick('metrics', '/metrics');
  const registry = o.opts.registry;
  if (metricsPath && registry)
    routes.push({
      method: 'GET',
      path: metricsPath,
      handle: async () => ({ status: 200, headers: { 'content-type': registry.contentType }, body: await registry.metrics() }),
    });
  const healthPath = pick('health', '/health');
  if (healthPath)
    routes.push({
      method: 'GET',
      path: healthPath,
      handle: () => {
        const s = o.server;
        const listening = s?.listening() ?? false;
        const closing = s?.closing() ?? false;
        const redis = s?.clusterConnected();
        // Ready: accepting players, and (in a cluster) able to reach the other nodes.
        const ready = listening && !closing && redis !== false;
        return json(ready ? 200 : 503, {
          status: ready ? 'ready' : closing ? 'shutting down' : 'not ready',
          listening,
          ...(redis === undefined ? {} : { redis: redis ? 'connected' : 'disconnected' }),
        });
      },
    });
  const monitorPath = pick('monitor', '/monitor');
  if (monitorPath) {
    o.window.start();
    routes.push({
      method: 'GET',
      path: monitorPath,
      handle: () => ({
        status: 200,
        headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' },
        body: monitorPage(`${monitorPath}.json`),
      }),
    });
    routes.push({ method: 'GET', path: `${monitorPath}.json`, handle: () => json(200, o.window.view()) });
  }
  return routes;
}
