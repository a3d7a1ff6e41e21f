// VolleyClient: a session with a Volley server over the standard WebSocket API, with a
// typed proxy to the server's methods and handlers the server may call. It reconnects by
// itself and resumes the session, so calls pending across a drop complete exactly once.
// Runs in browsers and Node (pass the `ws` package's WebSocket on Node 20). No node:* here.
// Offers the `volley` sub-protocol, so a refused login arrives as close 4401/4409/4503
// where the HTTP status can't be seen (browsers, Node's global WebSocket): SPEC §1.

import {
  CloseCode,
  ErrorCode,
  ANNOUNCED_LIMITS,
  InboundCall,
  PING,
  RpcError,
  RpcPeer,
  SESSION,
  TRACE,
  toMap,
  type AnyHandler,
  createProxy,
  isSessionInfo,
  type ArgsOf,
  type CallOptions,
  type ItemOf,
  type Handlers,
  type Limits,
  type MethodName,
  type ParamsSchema,
  type Remote,
  type ResultOf,
  type SessionInfo,
} from '../protocol/index.ts';
// Type only: the tracing code lives in client/tracing.ts, outside the browser SDK.
import type { CallTracing } from '../protocol/tracing.ts';
import { Emitter } from './emitter.ts';
import { backoffDelay, type ReconnectOptions } from './backoff.ts';

/**
 * The part of a WebSocket object Volley uses: the browser's, Node 22+'s global one and the
 * `ws` package's all fit (handlers take `never` so that each one's own event types do).
 */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: never) => unknown) | null;
  onclose: ((ev: never) => unknown) | null;
  onmessage: ((ev: never) => unknown) | null;
  onerror: ((ev: never) => unknown) | null;
}

/**
 * The part of the standard WebSocket constructor Volley uses (the `ws` package's fits as is).
 * The third argument is for the `ws` package: `maxPayload` (the client's `maxMessageBytes`)
 * makes it cut an oversize message at its header, before buffering or inflating it.
 * Browsers and undici ignore it; the client then checks each message's size before decoding.
 */
export type WebSocketConstructor = new (url: string, protocols?: string | string[], options?: { maxPayload?: number }) => WebSocketLike;

/** Default of `connectTimeoutMs`. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** What `connect()` and `new VolleyClient()` take; all optional. */
export interface ClientOptions<ServerApi, ClientApi> {
  /** Sent to the server's authenticate() at each upgrade. */
  token?: string;
  /**
   * How the token travels: 'query' (`?token=`, default) or 'protocol' (a `volley.token.<t>`
   * WebSocket sub-protocol, which keeps it out of URLs and access logs; the token must
   * then be made of sub-protocol-safe characters, e.g. a JWT).
   */
  tokenIn?: 'query' | 'protocol';
  /** Methods the server may call on this client. Each gets a ClientContext first. */
  handlers?: Handlers<ClientApi, ClientContext<ServerApi>>;
  /** Optional params checks on the server's calls (Standard Schema over the params tuple, or a guard). */
  schemas?: { [K in keyof ClientApi]?: ParamsSchema };
  /** WebSocket constructor; default globalThis.WebSocket (browsers, Node 22+). */
  WebSocket?: WebSocketConstructor;
  /** Default deadline of client → server calls, in ms. Default 10 000. */
  timeoutMs?: number;
  /**
   * How long one connection attempt may take, from dialling until the server confirms the
   * session (`$session`). Default 10 000 ms. The first attempt then rejects DISCONNECTED;
   * a reconnect attempt is retried with backoff.
   */
  connectTimeoutMs?: number;
  /**
   * What this client accepts (and announces to the server with `$limits` when it differs
   * from the SPEC's floor). Received messages are held to them before anything is decoded:
   * a message over `maxMessageBytes` (cut by the `ws` package at its header, or refused by
   * its size in browsers), more than `maxMessagesPerFrame` messages in one, or bytes that are
   * not msgpack close the socket 4002 and end the session (no reconnect, pending calls
   * reject DISCONNECTED); one message over `maxElements`, `maxDepth` or the other
   * per-message limits is refused alone (a response fails its call PROTOCOL_ERROR).
   */
  limits?: Partial<Limits>;
  /** Reconnect with jittered exponential backoff after a drop; false to never reconnect. */
  reconnect?: ReconnectOptions | false;
  /** Heartbeat interval, ms. Default: what the server advises (10 000). */
  heartbeatMs?: number;
  /** No message for this long means the connection is dead. Default 2.5 × heartbeatMs. */
  heartbeatTimeoutMs?: number;
  /** A handler threw a non-RpcError (the server got INTERNAL). Default: console.error. */
  onError?(err: unknown, ctx: ClientContext<ServerApi>): void;
  /**
   * Spans per call both ways, and the trace context sent with each call (SPEC.md, "Trace
   * context"): `clientTracing(otel)` from `volley/client/tracing` (kept out of the browser
   * SDK). No-op until an OpenTelemetry SDK is registered.
   */
  tracing?: CallTracing;
}

export type { ReconnectOptions };

/**
 * connecting: first socket not yet confirmed; open: session live; reconnecting: socket
 * dropped, calls wait for the session to resume; closed: final, calls reject DISCONNECTED.
 */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Why a socket closed (the `close` event, `client.closeInfo`). */
export interface CloseInfo {
  /** WebSocket close code (1000, 1006, 4xxx: SPEC, close codes). */
  code: number;
  /** Close reason text, or what the client saw when the socket failed. */
  reason: string;
  /** HTTP status of a refused upgrade, where the WebSocket implementation shows it. */
  status?: number;
}

/** The events a {@link VolleyClient} emits (`client.on(name, fn)`), with each one's payload. */
export interface ClientEvents {
  /** Every change of `state`. */
  state: ConnectionState;
  /** A session is live: new (`resumed` false, earlier pending calls were rejected) or resumed. */
  open: {
    /** True when the session resumed: nothing was lost. */
    resumed: boolean;
  };
  /** A socket closed (a reconnect may follow: see `state`). */
  close: CloseInfo;
  /** A reconnect attempt is scheduled. */
  reconnecting: {
    /** 1 for the first attempt after a drop. */
    attempt: number;
    /** How long until it dials, ms. */
    delayMs: number;
  };
  /** The transport reported an error (a close event follows). */
  error: unknown;
}

/** What a client handler gets first: the call (`signal`, `method`, `id`) and the client. */
export class ClientContext<ServerApi = any> extends InboundCall {
  constructor(
    id: number,
    method: string,
    /** The client this call arrived on. */
    readonly client: VolleyClient<ServerApi, any>,
  ) {
    super(id, method);
  }

  /** Typed proxy to the server, e.g. to call back while answering. */
  get server(): Remote<ServerApi> {
    return this.client.server;
  }
}

/** Close codes after which reconnecting would not help (or was asked not to happen). */
const FINAL_CODES: ReadonlySet<number> = new Set([
  CloseCode.NORMAL,
  CloseCode.REPLACED,
  CloseCode.DUPLICATE_LOGIN,
  CloseCode.PROTOCOL_ERROR,
  CloseCode.FLOODED,
  CloseCode.UNAUTHORIZED,
  CloseCode.LOGIN_CONFLICT,
]);

const ignore = (): void => {};

type TimerName = 'heartbeat' | 'reconnect' | 'window' | 'connect';

const REFUSAL_CODES: ReadonlySet<number> = new Set([CloseCode.UNAUTHORIZED, CloseCode.LOGIN_CONFLICT, CloseCode.UNAVAILABLE]);
const REFUSAL_STATUSES: ReadonlySet<number> = new Set([401, 403, 409, 503]);

/** Why the first connection failed: REFUSED (the server said no) or DISCONNECTED (no answer). */
function connectError(url: string, info: CloseInfo): RpcError {
  if (REFUSAL_CODES.has(info.code))
    return new RpcError(ErrorCode.REFUSED, `${url} refused the login (close ${info.code}: ${info.reason})`, { closeCode: info.code, reason: info.reason });
  if (info.status !== undefined && REFUSAL_STATUSES.has(info.status))
    return new RpcError(ErrorCode.REFUSED, `${url} refused the login (HTTP ${info.status})`, { status: info.status });
  return new RpcError(ErrorCode.DISCONNECTED, `could not connect to ${url} (close ${info.code}${info.reason ? `: ${info.reason}` : ''})`, info);
}

/**
 * A connection to a Volley server that survives drops: it dials at once, reconnects with
 * backoff and resumes its session, so calls both ways complete exactly once. `connect()`
 * makes one and waits for `opened`.
 */
export class VolleyClient<ServerApi = any, ClientApi = any> extends Emitter<ClientEvents> {
  /** Typed proxy to the server: `await client.server.join('lobby')`. Not thenable. */
  readonly server: Remote<ServerApi>;
  /** The call engine under this client (protocol/); tests and tools, not needed to use the client. */
  readonly peer: RpcPeer<ClientContext<ServerApi>>;
  #url: string;
  #opts: ClientOptions<ServerApi, ClientApi>;
  #WS: WebSocketConstructor;
  #ws: WebSocketLike | undefined;
  /** HTTP status of a refused upgrade, when the WebSocket implementation shows it (ws). */
  #refusedStatus: number | undefined;
  /** The socket's last error text (ws and undici name it; browsers don't): a 1006 says why. */
  #socketError = '';
  #state: ConnectionState = 'connecting';
  #opened: Promise<void>;
  #resolveOpened!: () => void;
  #rejectOpened!: (err: RpcError) => void;
  #closeInfo: CloseInfo | undefined;
  #session: SessionInfo | undefined;
  /** The features the fresh `$session` of this session listed: `$features` named those this client supports. */
  #named: unknown;
  #attempt = 0;
  /** Pending timers by name (the heartbeat's is an interval: clearTimeout clears both). */
  #timers: { [K in TimerName]?: ReturnType<typeof setTimeout> } = {};
  #lastReceived = 0;
  #closing = false;
  readonly #tracing: CallTracing | undefined;

  constructor(url: string, opts: ClientOptions<ServerApi, ClientApi> = {}) {
    super();
    const WS = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS)
      throw new TypeError('volley: no global WebSocket here; pass one, e.g. connect(url, { WebSocket }) with the ws package');
    this.#WS = WS;
    this.#url = url;
    this.#opts = opts;
    const tracing = (this.#tracing = opts.tracing);
    this.peer = new RpcPeer<ClientContext<ServerApi>>({
      send: (frame) => {
        if (this.#ws?.readyState === 1 /* OPEN */) this.#ws.send(frame);
      },
      handlers: (tracing ? tracing.wrapAll(toMap<AnyHandler>(opts.handlers as never)) : (opts.handlers ?? {})) as never,
      schemas: opts.schemas as Record<string, ParamsSchema> | undefined,
      timeoutMs: opts.timeoutMs,
      limits: opts.limits,
      createContext: tracing
        ? (id, method) => tracing.began(new ClientContext<ServerApi>(id, method, this))
        : (id, method) => new ClientContext<ServerApi>(id, method, this),
      observer: tracing?.peerObserver(),
      onViolation: (v) => this.#violated(v.message),
      onHandlerError: (err, ctx) => (opts.onError ? opts.onError(err, ctx) : console.error(`[volley] handler ${ctx.method} threw:`, err)),
      onExtension: (method, params) => {
        if (method === SESSION && isSessionInfo(params[0])) this.#onSession(params[0]);
        else if (method === TRACE) tracing?.received(params);
      },
      // Nothing goes out until the server confirms the session ($session): calls made
      // before are kept and sent then (SPEC §5: nothing may be sent before `$session`).
      detached: true,
    });
    this.server = createProxy<Remote<ServerApi>>((method, args) => this.#call(method, args));
    this.#opened = new Promise<void>((resolve, reject) => {
      this.#resolveOpened = resolve;
      this.#rejectOpened = reject;
    });
    // Nobody may await `opened` (fire-and-forget use); its rejection also shows as 'close'.
    this.#opened.catch(() => {});
    this.#dial();
  }

  /** Where the connection is: connecting, open, reconnecting or closed. */
  get state(): ConnectionState {
    return this.#state;
  }

  /**
   * Resolves once the first session is live. Rejects REFUSED if the server refused the login
   * (401/409/503 or 4401/4409/4503, in `data`), DISCONNECTED if it could not be reached in
   * time.
   */
  get opened(): Promise<void> {
    return this.#opened;
  }

  /** Code and reason of the last socket close. */
  get closeInfo(): CloseInfo | undefined {
    return this.#closeInfo;
  }

  /** The current session's id (undefined before the first open or after it expired). */
  get sessionId(): string | undefined {
    return this.#session?.sid;
  }

  /** Call a server method by name. */
  call<M extends MethodName<ServerApi>>(method: M, args: ArgsOf<ServerApi, M>, opts?: CallOptions): Promise<ResultOf<ServerApi, M>> {
    return this.#call(method, args as unknown as unknown[], opts) as Promise<ResultOf<ServerApi, M>>;
  }

  /**
   * Call a server method that streams (its handler returns an async iterable, its contract
   * type `AsyncIterable<T>`) and read the items: `for await (const x of client.stream('feed', []))`.
   * Each item arrives once, in order, through cuts and resumes; breaking out cancels it.
   */
  stream<M extends MethodName<ServerApi>>(method: M, args: ArgsOf<ServerApi, M>, opts?: CallOptions): AsyncIterable<ItemOf<ResultOf<ServerApi, M>>> {
    return this.peer.stream(method, args as unknown as unknown[], opts) as AsyncIterable<ItemOf<ResultOf<ServerApi, M>>>;
  }

  /** Every call to the server goes out here: with a span and `$trace` when tracing is on. */
  #call(method: string, args: unknown[], opts?: CallOptions): Promise<unknown> {
    return this.#tracing ? this.#tracing.call(this.peer, method, args, opts) : this.peer.call(method, args, opts);
  }

  /** A proxy whose calls carry these options: `client.with({ timeoutMs: 500, signal }).move(3)`. */
  with(opts: CallOptions): Remote<ServerApi> {
    return createProxy<Remote<ServerApi>>((method, args) => this.#call(method, args, opts));
  }

  /** Fire and forget (at most once: dropped while reconnecting). */
  notify<M extends MethodName<ServerApi>>(method: M, ...args: ArgsOf<ServerApi, M>): void {
    this.peer.notify(method, args);
  }

  /** Close for good: no reconnect; pending calls reject DISCONNECTED. */
  close(code: number = CloseCode.NORMAL, reason = ''): void {
    if (this.#closing) return;
    this.#closing = true;
    this.peer.flush();
    const ws = this.#ws;
    if (ws && ws.readyState <= 1) ws.close(code, reason);
    this.#final({ code, reason: reason || 'closed by client' });
  }

  /** Drop the socket as if the network had failed (tests, "airplane mode" in a game). */
  drop(): void {
    const ws = this.#ws;
    if (ws) this.#lost(ws, { code: 4999, reason: 'dropped by client' });
  }

  // ---- socket lifecycle -------------------------------------------------------------

  #dial(): void {
    const target = new URL(this.#url);
    // `volley` asks for refusals as close codes (SPEC §1).
    const protocols = ['volley'];
    const token = this.#opts.token;
    if (token !== undefined) {
      if (this.#opts.tokenIn === 'protocol') protocols.push(`volley.token.${token}`);
      else target.searchParams.set('token', token);
    }
    if (this.#session) target.searchParams.set('sid', this.#session.sid);
    this.#refusedStatus = undefined;
    this.#socketError = '';
    let ws: WebSocketLike;
    const maxBytes = this.peer.limits.maxMessageBytes;
    try {
      ws = new this.#WS(target.toString(), protocols, { maxPayload: maxBytes });
    } catch (err) {
      this.emit('error', err);
      this.#final({ code: 1006, reason: String(err) });
      return;
    }
    this.#ws = ws;
    ws.binaryType = 'arraybuffer';
    const timeoutMs = this.#opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.#clearTimer('connect');
    if (timeoutMs > 0 && timeoutMs < Infinity)
      this.#timers.connect = setTimeout(() => {
        this.#timers.connect = undefined;
        this.#lost(ws, { code: 1006, reason: `no session within ${timeoutMs} ms (connectTimeoutMs)` });
      }, timeoutMs);
    // Every handler checks it still belongs to the current socket: a replaced or
    // heartbeat-killed socket may still fire late events.
    ws.onerror = (ev: { message?: unknown; error?: { message?: unknown } }) => {
      if (this.#ws !== ws) return;
      const text = String(ev?.message ?? ev?.error?.message ?? '');
      // ws refused a frame (a RangeError: past maxPayload, which it cut at its header and
      // closed 1009, or broken framing): the server broke the protocol.
      if (ev?.error instanceof RangeError) return this.#violated(text);
      // The ws package names the status of a refused upgrade; browsers and undici don't.
      const m = /Unexpected server response: (\d{3})/.exec(text);
      if (m) this.#refusedStatus = Number(m[1]);
      this.#socketError = text;
      this.emit('error', ev);
    };
    ws.onclose = (ev: { code: number; reason: string }) => this.#lost(ws, { code: ev.code, reason: ev.reason });
    ws.onmessage = (ev: { data: unknown }) => {
      if (this.#ws !== ws) return;
      this.#lastReceived = Date.now();
      this.#tracing?.frame();
      const data = ev.data as ArrayBuffer | string;
      // The size before anything is decoded (browsers and undici take no maxPayload).
      if (typeof data === 'string') this.#violated('text frames are not part of the protocol');
      else if (data.byteLength > maxBytes) this.#violated('a message over maxMessageBytes');
      else this.peer.receive(data);
    };
  }

  /**
   * The server broke the protocol (SPEC §6, 4002): the socket is dropped at once, so nothing
   * more of it is read, and the session ends (no reconnect: a server that sent it once
   * would again; pending calls reject DISCONNECTED). With no socket (the server stopped
   * acknowledging while we were offline) the session can't be kept exactly-once either.
   */
  #violated(reason: string): void {
    const ws = this.#ws;
    const info = { code: CloseCode.PROTOCOL_ERROR, reason };
    if (ws) this.#lost(ws, info);
    else this.#final(info);
  }

  #onSession(info: SessionInfo): void {
    const resumed = info.resumed && this.#session?.sid === info.sid;
    if (!resumed && this.#session) {
      // The server no longer knows our session: what was pending is lost with it.
      this.peer.reset(new RpcError(ErrorCode.DISCONNECTED, 'session expired before the reconnect'));
    }
    this.#session = info;
    // What the server accepts: the client checks what it sends against it (SPEC §5, §8).
    this.peer.setPeerLimits({ maxMessageBytes: info.maxMessageBytes, ...info.limits });
    // And what both sides use (SPEC §11): what this session's `$features` named, of what
    // this socket's server lists (a resume on an older node lists less).
    if (!resumed) this.#named = info.features;
    this.peer.setPeerFeatures(Array.isArray(this.#named) && Array.isArray(info.features) ? info.features.filter((f) => (this.#named as unknown[]).includes(f)) : undefined);
    this.#clearTimer('window');
    this.#clearTimer('connect');
    this.#attempt = 0;
    // `$ack [received]` goes out first; on a resumed session the kept calls and replies
    // follow once the server's own `$ack` says what it has.
    this.peer.attach(undefined, resumed ? undefined : [this.peer.limitsAnnouncement(ANNOUNCED_LIMITS), this.peer.featuresAnnouncement(info.features)]);
    this.#startHeartbeat(this.#opts.heartbeatMs ?? info.heartbeatMs);
    this.#setState('open');
    this.#resolveOpened();
    this.emit('open', { resumed });
  }

  /** A socket ended (closed, errored, or declared dead by the heartbeat). */
  #lost(ws: WebSocketLike, info: CloseInfo): void {
    if (this.#ws !== ws) return;
    this.#ws = undefined;
    this.#clearTimer('connect');
    // A refusal seen as an HTTP status (ws) is reported like its close code.
    if (this.#refusedStatus !== undefined && info.code === 1006) info = { ...info, status: this.#refusedStatus };
    else if (info.code === 1006 && !info.reason && this.#socketError) info = { ...info, reason: this.#socketError.slice(0, 200) };
    // Not null: closing a socket still connecting makes the ws package emit 'error' later,
    // and an EventEmitter 'error' with no listener throws.
    ws.onclose = ws.onmessage = ws.onerror = ignore;
    if (ws.readyState <= 1) {
      try {
        ws.close(info.code >= 4000 ? info.code : 4999, info.reason.slice(0, 120));
      } catch {
        // already closing
      }
    }
    this.#clearTimer('heartbeat');
    this.peer.detach();
    this.#closeInfo = info;
    this.emit('close', info);
    if (this.#closing) return;
    const neverOpened = this.#session === undefined && this.#state === 'connecting';
    const refusedForGood = info.status === 401 || info.status === 409;
    if (neverOpened || refusedForGood || this.#opts.reconnect === false || FINAL_CODES.has(info.code)) return this.#final(info);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    const opts = this.#opts.reconnect || {};
    if (this.#attempt >= (opts.maxAttempts ?? Infinity)) return this.#final({ code: 1006, reason: 'gave up reconnecting' });
    // The server keeps the session for resumeWindowMs; past that, pending calls are lost.
    if (this.#session && this.#timers.window === undefined) {
      this.#timers.window = setTimeout(() => {
        this.#timers.window = undefined;
        this.#session = undefined;
        this.peer.reset(new RpcError(ErrorCode.DISCONNECTED, 'not reconnected within the resume window'));
      }, this.#session.resumeWindowMs);
    }
    const delayMs = backoffDelay(this.#attempt++, opts);
    this.#setState('reconnecting');
    this.emit('reconnecting', { attempt: this.#attempt, delayMs });
    this.#timers.reconnect = setTimeout(() => {
      this.#timers.reconnect = undefined;
      this.#dial();
    }, delayMs);
  }

  #startHeartbeat(intervalMs: number): void {
    this.#clearTimer('heartbeat');
    if (!(intervalMs > 0)) return;
    const timeoutMs = this.#opts.heartbeatTimeoutMs ?? intervalMs * 2.5;
    this.#lastReceived = Date.now();
    this.#timers.heartbeat = setInterval(() => {
      const ws = this.#ws;
      if (!ws) return;
      // Browsers can't see WebSocket pings, so liveness is judged on messages: the
      // server answers every $ping with $pong.
      if (Date.now() - this.#lastReceived > timeoutMs)
        return this.#lost(ws, { code: CloseCode.HEARTBEAT_TIMEOUT, reason: 'no message within the heartbeat timeout' });
      this.peer.heartbeat(PING); // `$ack` first if anything arrived since the last one
    }, Math.min(intervalMs, timeoutMs / 2));
  }

  #final(info: CloseInfo): void {
    this.#closing = true;
    this.#clearTimer('heartbeat');
    this.#clearTimer('reconnect');
    this.#clearTimer('window');
    this.peer.close(new RpcError(ErrorCode.DISCONNECTED, `connection closed (${info.code}${info.reason ? `: ${info.reason}` : ''})`));
    const wasConnecting = this.#state === 'connecting';
    this.#clearTimer('connect');
    this.#setState('closed');
    if (wasConnecting) this.#rejectOpened(connectError(this.#url, info));
  }

  #clearTimer(which: TimerName): void {
    clearTimeout(this.#timers[which]);
    this.#timers[which] = undefined;
  }

  #setState(state: ConnectionState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.emit('state', state);
  }
}

/** Connect and wait until the session is live. Rejects DISCONNECTED if the server refuses. */
export async function connect<ServerApi = any, ClientApi = any>(
  url: string,
  opts: ClientOptions<NoInfer<ServerApi>, NoInfer<ClientApi>> = {},
): Promise<VolleyClient<ServerApi, ClientApi>> {
  const client = new VolleyClient<ServerApi, ClientApi>(url, opts);
  await client.opened;
  return client;
}
