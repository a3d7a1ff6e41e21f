// What createServer() takes, and every default in one table.

import { DEFAULT_MAX_HELD_BYTES, DEFAULT_MAX_UNACKED_BYTES, type Handlers, type Limits, type ParamsSchema } from '../protocol/index.ts';
import type { ClusterAdapter } from './adapter.ts';
import type { BackpressureLimits } from './connection.ts';
import type { ServerContext } from './context.ts';
import type { RateLimitOptions } from './rateLimit.ts';
import type { UpgradeRequest } from './upgradeRequest.ts';
import type { ObserveOptions } from './observe/index.ts';
import { DEFAULT_HTTP_LIMITS, type HttpLimits, type HttpRoutes, type TlsOptions, type TransportName } from './transports/transport.ts';

/** Caps on `authenticate()` promises pending at once (`authLimits` option). */
export interface AuthLimits {
  /** authenticate() promises pending at once, server-wide; past it new upgrades get 503 (a synchronous answer holds no slot). */
  maxPending: number;
  /** authenticate() promises pending at once for one remote address; past it 503. */
  maxPendingPerAddress: number;
}

/**
 * What `createServer()` takes. Only `authenticate` and `handlers` are required; every
 * default is in {@link SERVER_DEFAULTS} and the README's option table.
 */
export interface ServerOptions<ServerApi, ClientApi> {
  /**
   * Decide who is connecting, from the upgrade request. Return the uid, or a falsy value
   * (or throw) to refuse: the client gets HTTP 401 (or close 4401, see SPEC §1).
   */
  authenticate(req: UpgradeRequest): string | null | undefined | false | Promise<string | null | undefined | false>;
  /** The methods clients may call. Each gets a ServerContext first, then the arguments. */
  handlers: Handlers<ServerApi, ServerContext<ClientApi>>;
  /** Optional params checks (Standard Schema over the params tuple, or a guard). */
  schemas?: { [K in keyof ServerApi]?: ParamsSchema };
  /**
   * A second login for a uid already connected: 'replace' closes the old socket with
   * CloseCode.REPLACED (4000); 'reject' refuses the new one with HTTP 409 (or close 4409).
   */
  duplicateLogin?: 'replace' | 'reject';
  /** Default deadline of server → client calls, in ms. */
  timeoutMs?: number;
  /** Per-message limits on what this server accepts (size, params, depth, values, pending calls); see {@link DEFAULT_LIMITS}. */
  limits?: Partial<Limits>;
  /** URL pattern WebSocket upgrades are accepted on: '/*' (default), 'prefix/*' or an exact path. */
  path?: string;
  /**
   * 'uws' (native uWebSockets.js), 'ws' (the ws package on node:http) or 'auto' (default:
   * native when its binary loads here, else ws). Without the option, the environment
   * variable VOLLEY_TRANSPORT may force one. Forcing 'uws' where no binary loads throws.
   */
  transport?: TransportName | 'auto';
  /** Serve wss:// (PEM key and certificate) on either transport. */
  tls?: TlsOptions;
  /**
   * Share the port with other processes that ask the same (SO_REUSEPORT: the kernel spreads
   * new connections over them; demo/cluster.ts). Off by default: listen() on a port in use
   * fails instead of quietly taking a share of another server's players. On the ws
   * transport it needs Node 22.12+.
   */
  reusePort?: boolean;
  /**
   * Take `remoteAddress` from X-Forwarded-For: true for one proxy (load balancer) in
   * front, or the number of proxies. Off by default: the header is the client's to forge.
   */
  trustProxy?: boolean | number;
  /** Caps on concurrent authenticate() calls. Default 1000 server-wide, 64 per address. */
  authLimits?: Partial<AuthLimits>;
  /**
   * Seconds of silence before the transport declares a socket dead (it pings idle sockets
   * before that). The backstop for clients without Volley heartbeats. Default 60; on
   * uWebSockets.js it rounds to multiples of 4 s.
   */
  idleTimeoutSec?: number;
  /**
   * How long a session outlives a dropped socket, ms. A client that reconnects within it
   * keeps its rooms and its pending calls both ways complete exactly once. 0 disables
   * resume. Default 30 000.
   */
  resumeWindowMs?: number;
  /** Heartbeat interval the server advises clients to use, ms. Default 10 000. */
  heartbeatMs?: number;
  /**
   * A client that keeps heartbeats but sends nothing for this long is dropped (its session
   * then waits out the resume window). Default 2.5 × heartbeatMs. Clients that never send
   * `$ping` are judged by idleTimeoutSec alone.
   */
  heartbeatTimeoutMs?: number;
  /**
   * Per-uid token bucket on incoming calls and notifications (and `$ping`); past it calls
   * are answered RATE_LIMITED (the connection stays). `$trace`, `$ack`, `$cancel` and
   * responses are free only while paired with paid or asked-for work (SPEC §8), else they
   * pay a token too. Default 10 000 calls/s, burst 20 000; false turns it off.
   */
  rateLimit?: Partial<RateLimitOptions> | false;
  /** Slow-reader limits on each socket's send buffer. Default soft 1 MiB, hard 8 MiB. */
  backpressure?: Partial<BackpressureLimits>;
  /**
   * Bytes of requests and responses kept per session until the client acknowledges them
   * (`$ack`); a client that takes part in acknowledgements and falls this far behind is
   * closed 4002. Default 16 MiB.
   */
  maxUnackedBytes?: number;
  /**
   * Bytes one connection may hold: estimated params of its running calls, its kept
   * messages and its queued input. Past it new calls are answered OVERLOADED and
   * notifications dropped. Default 64 MiB.
   */
  maxHeldBytes?: number;
  /** The same, summed over every connection of this server. Default 1 GiB. */
  maxServerHeldBytes?: number;
  /**
   * Refused messages (rate limit, held bytes) within one second past which a connection
   * is closed 4029 (FLOODED, final). Default: the rate limit's burst (20 000), at least 1000.
   */
  floodRefusals?: number;
  /** Most rooms one uid may be in at once; past it join() throws RpcError INVALID_PARAMS. Default 1024. */
  maxRoomsPerUid?: number;
  /** Cluster seam; default: this process alone. */
  adapter?: ClusterAdapter;
  /** A socket opened for uid: a new session (`resumed` false) or a resumed one. */
  onConnect?(uid: string, info: { resumed: boolean }): void;
  /** uid's socket closed. The session may still resume (see onSessionEnd). */
  onDisconnect?(uid: string, code: number, reason: string): void;
  /** uid's session ended: it closed on purpose, was replaced, or the resume window passed. */
  onSessionEnd?(uid: string): void;
  /** A handler threw a non-RpcError (the client got INTERNAL), or authenticate threw. */
  onError?(err: unknown, ctx?: ServerContext<ClientApi>): void;
  /**
   * Extra HTTP routes next to the WebSocket path (static files, health checks), the same
   * on both transports: `http: (routes) => routes.get('/health', () => ({ body: 'ok' }))`.
   */
  http?(routes: HttpRoutes): void;
  /**
   * Plain HTTP before the upgrade, and the routes: a connection has `headersTimeoutMs` for its
   * TLS handshake and then for each request head, may be silent `idleTimeoutMs`, and may have
   * `maxPipelinedRequests` requests unanswered (one runs at a time; the next is not started
   * before the last reply is written); past it, it is closed. Default 10 000 ms, 10 000 ms, 16.
   * Applied by the ws transport and observe.routesPort; uWebSockets.js has its own, fixed
   * (~10 s, and a request pipelined behind an unanswered one closes the connection).
   */
  httpLimits?: Partial<HttpLimits>;
  /**
   * Metrics (a prom-client Registry), traces (@opentelemetry/api), and the routes /metrics,
   * /health, /monitor (on this port through `http`'s routes API, or on `routesPort`). Off by default.
   */
  observe?: ObserveOptions;
}

/** The defaults, in one place (README "API" lists the same). */
export const SERVER_DEFAULTS = {
  /** A second login for a connected uid replaces the first. */
  duplicateLogin: 'replace',
  /** Upgrades accepted on every path. */
  path: '/*',
  /** 'auto': native uWebSockets.js where its binary loads, else ws. */
  transport: undefined,
  /** X-Forwarded-For ignored. */
  trustProxy: 0,
  /** authenticate() promises pending at once, server-wide and per address. */
  authLimits: {
    /** Server-wide. */
    maxPending: 1000,
    /** Per remote address. */
    maxPendingPerAddress: 64,
  },
  /** Seconds of silence before the transport drops a socket. */
  idleTimeoutSec: 60,
  /** ms a session outlives its dropped socket. */
  resumeWindowMs: 30_000,
  /** Heartbeat interval advised to clients, ms. */
  heartbeatMs: 10_000,
  /** × heartbeatMs */
  heartbeatTimeoutFactor: 2.5,
  /** Per-socket send buffer limits. */
  backpressure: {
    /** Past it, calls fail OVERLOADED and notifications are dropped. */
    softBytes: 1024 * 1024,
    /** Past it, the client is disconnected (4009). */
    hardBytes: 8 * 1024 * 1024,
  },
  /** Bytes kept per session until the client's `$ack`. */
  maxUnackedBytes: DEFAULT_MAX_UNACKED_BYTES,
  /** Bytes one connection may hold (running calls' params, kept messages, queued input). */
  maxHeldBytes: DEFAULT_MAX_HELD_BYTES,
  /** Bytes all connections together may hold. */
  maxServerHeldBytes: 1024 * 1024 * 1024,
  /** ms running handlers get in close() before sockets close. */
  closeGraceMs: 5000,
  /** Plain-HTTP connection limits before the upgrade and on routes. */
  httpLimits: DEFAULT_HTTP_LIMITS,
  /** Metrics, traces and routes: off. */
  observe: undefined,
} as const;

/** trustProxy as a hop count. */
export function proxyHops(trustProxy: boolean | number | undefined): number {
  if (trustProxy === true) return 1;
  if (typeof trustProxy === 'number' && trustProxy > 0) return Math.floor(trustProxy);
  return 0;
}
