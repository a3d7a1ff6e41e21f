// Serve a route table on a plain node:http server: the observability routes on a port of
// their own (an internal one, away from the players' port), and the way the same table is
// mounted on a Node http-based transport.

import http from 'node:http';
import type { Route } from './routes.ts';
import { nodeHttpServer } from '../transports/nodeHttp.ts';
import { DEFAULT_HTTP_LIMITS, type HttpLimits } from '../transports/transport.ts';

export function handleHttp(routes: readonly Route[], req: http.IncomingMessage, res: http.ServerResponse): boolean {
  const path = (req.url ?? '/').split('?')[0];
  const route = routes.find((r) => r.method === req.method && r.path === path);
  if (!route) return false;
  Promise.resolve()
    .then(() => route.handle(req))
    .catch(() => ({ status: 500, headers: { 'content-type': 'text/plain' }, body: 'internal error' }))
    .then((reply) => {
      res.writeHead(reply.status, reply.headers);
      res.end(reply.body);
    });
  return true;
}

/**
 * Listen on host:port with only these routes (404 for anything else), with the limits of the
 * players' port: timeouts, and one request at a time per socket (nodeHttp.ts).
 */
export function listenRoutes(routes: readonly Route[], port: number, host: string, limits: HttpLimits = DEFAULT_HTTP_LIMITS): Promise<http.Server> {
  const server = nodeHttpServer(limits, undefined, (req, res) => {
    if (!handleHttp(routes, req, res)) res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
