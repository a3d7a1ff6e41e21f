// Serves the SDK test page and an in-memory build of the SDK from a Volley server's own
// uWebSockets.js app (its `http` option), so page and WebSocket share one origin.

import { readFileSync } from 'node:fs';
import type { TemplatedApp } from '../../server/uws.ts';

const PAGE = readFileSync(new URL('page.html', import.meta.url));

/** `http` option for createServer/startServer: GET / → page.html, GET /volley.js → bundle. */
export function servePage(bundle: Uint8Array): (app: TemplatedApp) => void {
  return (app) => {
    app.get('/', (res) => void res.writeHeader('content-type', 'text/html; charset=utf-8').end(PAGE));
    app.get('/volley.js', (res) => void res.writeHeader('content-type', 'text/javascript; charset=utf-8').end(bundle));
  };
}
