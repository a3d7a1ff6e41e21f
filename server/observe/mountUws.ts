// Serve a route table on uWebSockets.js.

import type { Route } from './routes.ts';
import type { HttpResponse, TemplatedApp } from '../uws.ts';

const STATUS: Record<number, string> = { 200: '200 OK', 503: '503 Service Unavailable', 500: '500 Internal Server Error' };

export function mountUws(app: TemplatedApp, routes: readonly Route[]): void {
  for (const route of routes)
    app.get(route.path, (res: HttpResponse) => {
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      Promise.resolve()
        .then(() => route.handle())
        .catch(() => ({ status: 500, headers: { 'content-type': 'text/plain' }, body: 'internal error' }))
        .then((reply) => {
          if (aborted) return;
          res.cork(() => {
            res.writeStatus(STATUS[reply.status] ?? String(reply.status));
            for (const [k, v] of Object.entries(reply.headers)) res.writeHeader(k, v);
            res.end(reply.body);
          });
        });
    });
}
