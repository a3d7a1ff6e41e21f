// Serves the SDK test page and an in-memory build of the SDK from a Volley server's own
// HTTP routes (its `http` option), so page and WebSocket share one origin.

import { readFileSync } from 'node:fs';
import type { HttpRoutes } from '../../server/index.ts';

const PAGE = readFileSync(new URL('page.html', import.meta.url));

/** `http` option for createServer/startServer: GET / → page.html, GET /volley.js → bundle. */
export function servePage(bundle: Uint8Array): (routes: HttpRoutes) => void {
  return (routes) => {
    routes.get('/', () => ({ headers: { 'content-type': 'text/html; charset=utf-8' }, body: PAGE }));
    routes.get('/volley.js', () => ({ headers: { 'content-type': 'text/javascript; charset=utf-8' }, body: bundle }));
  };
}
