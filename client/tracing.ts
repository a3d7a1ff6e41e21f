// Client-side tracing, in a module of its own: the client only calls the hooks of the
// tracer it is given, so the browser SDK (client/index.ts) ships without any of this and
// a game that traces imports it explicitly:
//   import { clientTracing } from 'volley/client/tracing';
//   connect(url, { tracing: clientTracing(otel) });

import { CallTracing, type OtelApi } from '../protocol/index.ts';

export type { OtelApi, CallTracing };

/** The client's `tracing` option from the `@opentelemetry/api` module: spans both ways and `$trace` on each call. */
export function clientTracing(api: OtelApi): CallTracing {
  return new CallTracing(api, 'volley-client');
}
