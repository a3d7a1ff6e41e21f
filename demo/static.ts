// Serves the demo's web page and the browser SDK bundle from the Volley server itself
// (its `http` routes, the same on either transport).

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { HttpRoutes } from '../server/index.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** URL path → file under the repo. Files are read per request so a rebuild shows at once. */
const ROUTES: Record<string, string> = {
  '/': 'demo/public/index.html',
  '/index.html': 'demo/public/index.html',
  '/app.js': 'demo/public/app.js',
  '/style.css': 'demo/public/style.css',
  '/volley.js': 'dist/volley.browser.js',
};

export function serveStatic(routes: HttpRoutes): void {
  for (const [path, file] of Object.entries(ROUTES)) {
    routes.get(path, () => {
      const full = root + file;
      if (!existsSync(full)) return { status: 404, body: `${file} is missing (run npm run build:browser)` };
      const ext = file.slice(file.lastIndexOf('.'));
      return {
        headers: { 'content-type': TYPES[ext] ?? 'application/octet-stream', 'cache-control': 'no-cache' },
        body: readFileSync(full),
      };
    });
  }
}
