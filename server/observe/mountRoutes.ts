// Serve the observability route table through the server's transport-neutral HttpRoutes
// (ServerOptions.http's API), so /metrics, /health and /monitor answer the same on native
// uWebSockets.js and on the `ws` transport. A route that throws becomes a 500 there. The
// request's headers go to the route (the routes token).

import type { HttpRoutes } from '../transports/transport.ts';
import type { Route } from './routes.ts';

export function mountRoutes(http: HttpRoutes, routes: readonly Route[]): void {
  for (const route of routes) http.get(route.path, (req) => route.handle(req));
}
