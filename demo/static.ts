// Serves the demo's web page and the browser SDK bundle from the same uWebSockets.js app.

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { TemplatedApp } from '../server/uws.ts';

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

export function serveStatic(app: TemplatedApp): void {
  for (const [path, file] of Object.entries(ROUTES)) {
    app.get(path, (res) => {
      const full = root + file;
      if (!existsSync(full)) {
        res.writeStatus('404 Not Found').end(`${file} is missing (run npm run build:browser)`);
        return;
      }
      const ext = file.slice(file.lastIndexOf('.'));
      res.writeHeader('content-type', TYPES[ext] ?? 'application/octet-stream');
      res.writeHeader('cache-control', 'no-cache');
      res.end(readFileSync(full));
    });
  }
}
