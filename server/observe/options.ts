// The `observe` option: what a server's metrics, traces and routes are configured with.

import type { OtelApi } from '../../protocol/index.ts';

export interface ObserveOptions {
  /**
   * A prom-client Registry (prom-client is an optional peer dependency): Volley's metrics
   * are registered there. Without it the numbers still feed the monitor page.
   */
  registry?: { registerMetric(metric: unknown): void; metrics(): Promise<string>; contentType: string };
  /** The `@opentelemetry/api` module: spans for calls both ways (no-op without an SDK). */
  tracing?: OtelApi;
  /**
   * Adopt a client's `$trace` as the parent of the server's span for its call. Default
   * false: the call starts a trace of the server's own, the client's span is recorded as a
   * link, and the `$trace` the server sends to other players carries the server's trace, so
   * no client chooses the trace id of another player's spans (SPEC §10). Set it when every
   * client is yours (bots, internal services).
   */
  trustClientTrace?: boolean;
  /**
   * HTTP routes on the server's port: `/metrics` (needs registry), `/health`, and the live
   * monitor page `/monitor` (+ `/monitor.json`). true mounts all; a path prefix object picks.
   * On the players' port `/metrics` and `/monitor.json` need `routesToken` (a server asked
   * for them there without one refuses to start); `/health` and the page itself are open.
   */
  routes?: boolean | { metrics?: string | false; health?: string | false; monitor?: string | false };
  /**
   * The token `/metrics` and `/monitor.json` ask for: `Authorization: Bearer <token>`
   * (Prometheus: `authorization: { credentials: <token> }`; the monitor page: open it as
   * `/monitor#token=<token>`). Compared in constant time; at least 16 visible ASCII
   * characters. Required when they are on the players' port; asked for on `routesPort` too
   * when set. Anything else gets a 401 that costs no rendering.
   */
  routesToken?: string;
  /**
   * Serve the routes on this port (node:http) instead of the players' port, so players
   * cannot even reach them. 0 picks one (see `ServerObserver.routesPort`).
   */
  routesPort?: number;
  /** Interface for routesPort. Default '127.0.0.1'; '0.0.0.0' for a Prometheus on another host. */
  routesHost?: string;
  /**
   * How long one rendering of `/metrics` (a registry scrape) and of `/monitor.json` answers
   * every request, ms; requests that come while one is being made wait for it. Default 1000:
   * however many requests arrive, at most one scrape a second. 0: only concurrent requests share.
   */
  routesCacheMs?: number;
  /** Application error codes to count by name (others are counted as `other`). */
  codes?: readonly string[];
  /** Most distinct method names of server → client calls kept as labels. Default 64. */
  maxClientMethods?: number;
  /**
   * Most series Volley's own metrics put on `/metrics` (each (method, code) pair of a call
   * histogram is 19: 17 buckets, _sum and _count; each (method, direction) of
   * `volley_stream_items_total` is 1). Pairs get series of their own in the order they are
   * first seen until the next would pass it; later ones are counted under method `other`,
   * nothing lost. Bounds what a client can make every scrape cost (at most ~260 KB
   * and a few tens of ms with the default). Default 2000 (about 100 pairs).
   */
  maxSeries?: number;
}

export const DEFAULT_MAX_SERIES = 2000;
