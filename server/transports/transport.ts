// The seam between VolleyServer and the library that speaks WebSocket. One file per
// transport (uws.ts: native uWebSockets.js, ws.ts: the `ws` package on node:http), both
// behind these few types. The server never sees which one runs.

import type { UpgradeRequest } from '../upgradeRequest.ts';

/** The WebSocket engine a server runs on: 'uws' (native uWebSockets.js) or 'ws' (the ws package). */
export type TransportName = 'uws' | 'ws';

/**
 * One accepted WebSocket. Shaped after uWebSockets.js' own socket object, so the native
 * transport hands its sockets over as they are (no wrapper on the fast path) and the
 * `ws` transport wraps its own in a small class with the same methods.
 */
export interface TransportSocket<Data> {
  /** Send one binary message. The bytes may be reused by the caller after this returns. */
  send(frame: Uint8Array, isBinary: true): unknown;
  /** Bytes accepted by send() but not yet written to the network. */
  getBufferedAmount(): number;
  /** Run fn with writes batched into as few syscalls as possible. */
  cork(fn: () => void): unknown;
  /** Close with a close frame (code, reason). */
  end(code?: number, reason?: string): void;
  /** Cut the connection without a close handshake (the peer sees 1006). */
  close(): unknown;
  subscribe(topic: string): unknown;
  unsubscribe(topic: string): unknown;
  getUserData(): Data;
}

/** One upgrade request waiting for the server's answer. */
export interface PendingUpgrade<Data> {
  readonly request: UpgradeRequest;
  /** The client went away before an answer; accept/refuse are then no-ops. */
  readonly aborted: boolean;
  /** Called once if the client goes away before an answer. */
  onAbort(fn: () => void): void;
  /** Complete the WebSocket handshake; `data` is the socket's user data. */
  accept(data: Data): void;
  /** Answer with a plain HTTP status instead of 101 (e.g. 401, 409, 503). */
  refuse(status: number, body: string): void;
}

/**
 * The answer-once state of one upgrade, the same on every transport: accept or refuse runs
 * at most once, never after the client went away, and a late `abort()` is a no-op. A
 * transport extends it with how it answers: a class, not a set of closures per upgrade
 * (a storm of connection attempts is a storm of garbage, and the server pays its GC).
 */
export abstract class AnswerOnce<Data> implements PendingUpgrade<Data> {
  #state: 'waiting' | 'answered' | 'aborted' = 'waiting';
  #onAbort: (() => void) | undefined = undefined;

  constructor(readonly request: UpgradeRequest) {}

  get aborted(): boolean {
    return this.#state === 'aborted';
  }
  onAbort(fn: () => void): void {
    this.#onAbort = fn;
  }
  /** The client went away before an answer. */
  abort(): void {
    if (this.#state !== 'waiting') return;
    this.#state = 'aborted';
    this.#onAbort?.();
  }
  accept(data: Data): void {
    if (this.#answer()) this.answerAccept(data);
  }
  refuse(status: number, body: string): void {
    if (this.#answer()) this.answerRefuse(status, body);
  }
  #answer(): boolean {
    if (this.#state !== 'waiting') return false;
    this.#state = 'answered';
    return true;
  }
  protected abstract answerAccept(data: Data): void;
  protected abstract answerRefuse(status: number, body: string): void;
}

/** What a transport calls back into. All four run synchronously in the I/O callback. */
export interface TransportEvents<Data> {
  upgrade(pending: PendingUpgrade<Data>): void;
  open(ws: TransportSocket<Data>): void;
  /** `data` is only valid during the call (uWebSockets.js reuses it). */
  message(ws: TransportSocket<Data>, data: ArrayBuffer | Uint8Array, isBinary: boolean): void;
  close(ws: TransportSocket<Data>, code: number, reason: string): void;
}

/** A plain HTTP reply for an extra route (the demo's page, health checks, metrics). */
export interface HttpReply {
  /** HTTP status; default 200. */
  status?: number;
  /** Response headers (lower-case names). */
  headers?: Record<string, string>;
  /** The body; default empty. */
  body?: string | Uint8Array;
}

/** What a route handler sees of the request. */
export interface HttpRequestInfo {
  /** 'GET' or 'POST'. */
  method: string;
  /** The path, without the query string. */
  url: string;
  /** The query string, parsed. */
  query: URLSearchParams;
  /** Request headers, lower-case names; repeated ones joined with ', '. */
  headers: Record<string, string>;
}

/** A route's handler: the reply, or a promise of it. */
export type HttpHandler = (req: HttpRequestInfo) => HttpReply | Promise<HttpReply>;

/**
 * Extra HTTP routes, the same on both transports: `routes.get('/health', () => ({ body: 'ok' }))`.
 * Exact paths only, plus a trailing `/*` for a prefix.
 */
export interface HttpRoutes {
  /** Answer GET requests to path. */
  get(path: string, handler: HttpHandler): void;
  /** Answer POST requests to path. */
  post(path: string, handler: HttpHandler): void;
}

/** The server's `tls` option: serve wss:// with this key and certificate. */
export interface TlsOptions {
  /** PEM private key (text or bytes). */
  key: string | Uint8Array;
  /** PEM certificate chain (text or bytes). */
  cert: string | Uint8Array;
  /** Passphrase of an encrypted key. */
  passphrase?: string;
}

/**
 * Plain HTTP on the players' port before a WebSocket upgrade, and its routes. The ws
 * transport (and observe.routesPort) applies them; uWebSockets.js has its own, fixed:
 * about 10 s for an idle or unfinished request, and a request pipelined behind one not yet
 * answered closes the connection.
 */
export interface HttpLimits {
  /** ms a connection has for its TLS handshake, and then for each request head (request line and headers). 0: Node's defaults (2 min, 60 s). */
  headersTimeoutMs: number;
  /** ms a connection may be silent: before its first byte, between kept-alive requests, while a reply waits for the reader. 0: none. */
  idleTimeoutMs: number;
  /** Requests of one connection received and not yet answered (pipelined); the next one closes the connection. */
  maxPipelinedRequests: number;
}

export const DEFAULT_HTTP_LIMITS: Readonly<HttpLimits> = Object.freeze({
  headersTimeoutMs: 10_000,
  idleTimeoutMs: 10_000,
  maxPipelinedRequests: 16,
});

/** The defaults with `given` over them, checked. */
export function httpLimits(given: Partial<HttpLimits> | undefined): HttpLimits {
  const l = { ...DEFAULT_HTTP_LIMITS, ...given };
  for (const k of ['headersTimeoutMs', 'idleTimeoutMs'] as const)
    if (!(Number.isFinite(l[k]) && l[k] >= 0)) throw new RangeError(`httpLimits.${k} must be a non-negative number of ms, got ${l[k]}`);
  if (!(Number.isInteger(l.maxPipelinedRequests) && l.maxPipelinedRequests >= 1))
    throw new RangeError(`httpLimits.maxPipelinedRequests must be an integer ≥ 1, got ${l.maxPipelinedRequests}`);
  return l;
}

export interface TransportOptions {
  /** URL pattern WebSocket upgrades are accepted on ('/*' or an exact path). */
  path: string;
  maxPayloadLength: number;
  idleTimeoutSec: number;
  /** Past this many buffered bytes a socket is cut (the server's own hard limit trips first). */
  maxBackpressure: number;
  /** Hops of proxies whose X-Forwarded-For is believed (0: use the socket's address). */
  trustProxy: number;
  tls: TlsOptions | undefined;
  /** SO_REUSEPORT: share the port with other processes that set it too. */
  reusePort: boolean;
  http: HttpLimits;
}

export interface Transport<Data> {
  readonly name: TransportName;
  /** Register extra HTTP routes (before listen). */
  readonly routes: HttpRoutes;
  /** Resolves with the port actually bound. */
  listen(port: number, host: string | undefined): Promise<number>;
  /** Stop accepting new TCP connections. */
  stopListening(): void;
  /** Send the same bytes to every socket subscribed to `topic`: encoded once, fanned out. */
  publish(topic: string, frame: Uint8Array): void;
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  204: 'No Content',
  301: 'Moved Permanently',
  302: 'Found',
  304: 'Not Modified',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** "401 Unauthorized": the status line uWebSockets.js wants, and the reason phrase node:http writes. */
export function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? 'Status'}`;
}

/** Does the upgrade path match the pattern ('/*' or a prefix ending in '/*', else exact)? */
export function pathMatches(pattern: string, url: string): boolean {
  if (pattern.endsWith('/*')) return url.startsWith(pattern.slice(0, -1)) || url === pattern.slice(0, -2);
  return url === pattern;
}
