// The one file that imports uWebSockets.js. Everything else in server/ takes its types
// from here, so swapping the build (or checking which one loaded) happens in one place.

import { createRequire } from 'node:module';
import type * as UWS from 'uWebSockets.js';

const require = createRequire(import.meta.url);
// The package silently falls back to a slow pure-JS implementation when its native
// binary fails to load; the fallback never loads a `.node` file, which is how we tell.
export const uws: typeof UWS = require('uWebSockets.js');

/** True when the native uWebSockets.js binary is in use (not the JS fallback). */
export const isNativeUws: boolean = Object.keys(require.cache).some((path) =>
  /uWebSockets\.js[\\/]binaries[\\/]uws_[^\\/]+\.node$/.test(path),
);

export type {
  TemplatedApp,
  WebSocket as UwsSocket,
  HttpRequest,
  HttpResponse,
  us_listen_socket,
  us_socket_context_t,
} from 'uWebSockets.js';
