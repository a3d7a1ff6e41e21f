// VolleyServer: the uWebSockets.js app, the uid → connection map, rooms, and calls to clients.

import {
  CloseCode,
  DEFAULT_TIMEOUT_MS,
  ErrorCode,
  NOTIFICATION,
  RpcError,
  createProxy,
  encode,
  outgoingError,
  resolveLimits,
  toMap,
  type AnyHandler,
  type ArgsOf,
  type CallOptions,
  type Handlers,
  type Limits,
  type MethodName,
  type ParamsSchema,
  type Remote,
  type ResultOf,
} from '../protocol/index.ts';
import { LocalAdapter, type ClusterAdapter, type LocalNode } from './adapter.ts';
import { gather, type Outcome } from './callMany.ts';
import { Connection, type BackpressureLimits, type ConnectionShared, type SocketData } from './connection.ts';
import { ReplayCache } from './replayCache.ts';
import { RateLimiter, type RateLimitOptions } from './rateLimit.ts';
import { SESSION, newSessionId, type SessionInfo } from './session.ts';
import { ServerContext } from './context.ts';
import { Rooms, roomTopic } from './rooms.ts';
import { createObserver, mountUws, routesForMainPort, type EndReason, type ObserveOptions, type ServerObserver } from './observe/index.ts';
import { VOLLEY_PROTOCOL, readUpgradeRequest, type UpgradeRequest } from './upgradeRequest.ts';
import {
  isNativeUws,
  uws,
  type HttpRequest,
  type HttpResponse,
  type TemplatedApp,
  type UwsSocket,
  type us_listen_socket,
  type us_socket_context_t,
} from './uws.ts';

export interface ServerOptions<ServerApi, ClientApi> {
  /**
   * Decide who is connecting, from the upgrade request. Return the uid, or a falsy value
   * (or throw) to refuse: the client gets HTTP 401 and no socket.
   */
  authenticate(req: UpgradeRequest): string | null | undefined | false | Promise<string | null | undefined | false>;
  /** The methods clients may call. Each gets a ServerContext first, then the arguments. */
  handlers: Handlers<ServerApi, ServerContext<ClientApi>>;
  /** Optional params checks (Standard Schema over the params tuple, or a guard). */
  schemas?: { [K in keyof ServerApi]?: ParamsSchema };
  /**
   * A second login for a uid already connected: 'replace' closes the old socket with
   * CloseCode.REPLACED (4000); 'reject' refuses the new one with HTTP 409.
   */
  duplicateLogin?: 'replace' | 'reject';
  /** Default deadline of server → client calls, in ms. */
  timeoutMs?: number;
  limits?: Partial<Limits>;
  /** URL pattern WebSocket upgrades are accepted on. Default '/*'. */
  path?: string;
  /**
   * Seconds of silence before uWebSockets.js declares a socket dead (it pings idle sockets
   * before that). The backstop for clients without Volley heartbeats. Default 60; it
   * rounds to multiples of 4 s.
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
   * Per-uid token bucket on incoming calls; past it calls are answered RATE_LIMITED (the
   * connection stays). Default 10 000 calls/s, burst 20 000; false turns it off.
   */
  rateLimit?: Partial<RateLimitOptions> | false;
  /** Slow-reader limits on each socket's send buffer. Default soft 1 MiB, hard 8 MiB. */
  backpressure?: Partial<BackpressureLimits>;
  /** The replay store: results of completed calls kept for re-sent calls. Default: bounded LRU. */
  replay?: { maxEntries?: number; maxBytes?: number };
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
  /** Register extra HTTP routes on the app (static files, health checks). */
  http?(app: TemplatedApp): void;
  /** Metrics (a prom-client Registry), traces (@opentelemetry/api), /metrics, /health, /monitor. Off by default. */
  observe?: ObserveOptions;
}

export interface CloseOptions {
  /** How long running handlers get to finish before sockets close. Default 5000 ms. */
  graceMs?: number;
}

/** How often close() checks whether running handlers have finished. */
const CLOSE_POLL_MS = 10;

export class VolleyServer<ServerApi = any, ClientApi = any> {
  readonly app: TemplatedApp;
  readonly limits: Limits;
  readonly rooms = new Rooms();
  /** The per-uid rate limit on incoming calls (undefined when turned off). */
  readonly rateLimiter: RateLimiter | undefined;
  #opts: ServerOptions<ServerApi, ClientApi>;
  #handlers: Map<string, AnyHandler>;
  #schemas: Map<string, ParamsSchema>;
  #conns = new Map<string, Connection>();
  #adapter: ClusterAdapter;
  #listenSocket: us_listen_socket | undefined;
  #port = 0;
  #closing: Promise<void> | undefined;
  #allClosed: (() => void) | undefined;
  #replay: ReplayCache;
  #backpressure: BackpressureLimits;
  #shared!: ConnectionShared;
  #resumeWindowMs: number;
  #heartbeatMs: number;
  #sweep: ReturnType<typeof setInterval> | undefined;
  readonly #obs: ServerObserver | undefined;

  constructor(opts: ServerOptions<ServerApi, ClientApi>) {
    if (!isNativeUws) console.warn('[volley] uWebSockets.js native binary not loaded: running on the slow JS fallback');
    this.#opts = opts;
    this.limits = resolveLimits(opts.limits);
    this.rateLimiter = opts.rateLimit === false ? undefined : new RateLimiter(opts.rateLimit);
    this.#handlers = toMap(opts.handlers as unknown as Record<string, AnyHandler>);
    this.#schemas = toMap(opts.schemas as Record<string, ParamsSchema> | undefined);
    this.#obs = createObserver(opts.observe, this.#handlers.keys(), {
      sessions: () => this.#conns.values(),
      rooms: () => this.rooms.stats(),
      listening: () => this.#listenSocket !== undefined,
      closing: () => this.#closing !== undefined,
      clusterConnected: () => (this.#adapter as { connected?: boolean }).connected,
    });
    if (this.#obs) this.#handlers = this.#obs.wrapHandlers(this.#handlers);
    this.#adapter = opts.adapter ?? new LocalAdapter();
    this.#resumeWindowMs = opts.resumeWindowMs ?? 30_000;
    this.#heartbeatMs = opts.heartbeatMs ?? 10_000;
    this.#backpressure = { softBytes: 1024 * 1024, hardBytes: 8 * 1024 * 1024, ...opts.backpressure };
    this.#replay = new ReplayCache({ ttlMs: Math.max(1, this.#resumeWindowMs), ...opts.replay });
    const limiter = this.rateLimiter;
    this.#shared = {
      handlers: this.#handlers,
      schemas: this.#schemas,
      timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      limits: this.limits,
      backpressure: this.#backpressure,
      replay: this.#resumeWindowMs > 0 ? this.#replay : undefined,
      admit: limiter ? (uid) => limiter.take(uid) : undefined,
      createContext: this.#obs
        ? (conn, id, method) => this.#obs!.began(new ServerContext<ClientApi>(id, method, conn.uid, this))
        : (conn, id, method) => new ServerContext<ClientApi>(id, method, conn.uid, this),
      observer: this.#obs,
      reportError: (err, ctx) => this.#reportError(err, ctx as ServerContext<ClientApi>),
    };
    this.app = uws.App();
    this.app.ws<SocketData>(opts.path ?? '/*', {
      maxPayloadLength: this.limits.maxMessageBytes,
      idleTimeout: opts.idleTimeoutSec ?? 60,
      sendPingsAutomatically: true,
      // uWebSockets.js drops sends past maxBackpressure; a dropped reply would hang a
      // caller, so a reader that far behind is disconnected instead. Our own hard limit
      // (checked before each send) normally trips first.
      maxBackpressure: this.#backpressure.hardBytes * 2,
      closeOnBackpressureLimit: 1,
      upgrade: (res, req, context) => this.#upgrade(res, req, context),
      open: (ws) => this.#open(ws),
      message: (ws, data, isBinary) => this.#message(ws, data, isBinary),
      close: (ws, code, reason) => this.#close(ws, code, reason),
    });
    opts.http?.(this.app);
    if (this.#obs) mountUws(this.app, routesForMainPort(this.#obs));
  }

  /** The port listened on (after listen resolves). */
  get port(): number {
    return this.#port;
  }

  /** Number of connected uids on this node. */
  get connectionCount(): number {
    return this.#conns.size;
  }

  /** Sessions on this node and calls pending in each direction across them (tests, monitoring). */
  stats(): { connections: number; pendingIncoming: number; pendingOutgoing: number } {
    let pendingIncoming = 0;
    let pendingOutgoing = 0;
    for (const conn of this.#conns.values()) {
      pendingIncoming += conn.peer.pendingIncoming;
      pendingOutgoing += conn.peer.pendingOutgoing;
    }
    return { connections: this.#conns.size, pendingIncoming, pendingOutgoing };
  }

  /** Listen on `port` (0 picks a free one); resolves with the port actually bound. */
  async listen(port = 0, host?: string): Promise<number> {
    await this.#adapter.attach(this.#localNode());
    await this.#obs?.ready;
    return new Promise((resolve, reject) => {
      const done = (socket: us_listen_socket | false) => {
        if (!socket) return reject(new Error(`could not listen on ${host ?? '*'}:${port}`));
        this.#listenSocket = socket;
        this.#port = uws.us_socket_local_port(socket as never);
        this.#startSweep();
        resolve(this.#port);
      };
      if (host) this.app.listen(host, port, done);
      else this.app.listen(port, done);
    });
  }

  // ---- connection lifecycle ---------------------------------------------------------

  #upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    // Everything from req must be read now: it is invalid after the first await.
    const key = req.getHeader('sec-websocket-key');
    const offered = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    const info = readUpgradeRequest(req, res);
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const refuse = (status: string, body: string) => {
      this.#obs?.authRefused(status);
      if (!aborted) res.cork(() => res.writeStatus(status).end(body));
    };
    if (this.#closing) return refuse('503 Service Unavailable', 'server is shutting down');
    new Promise<unknown>((resolve) => resolve(this.#opts.authenticate(info))).then(
      (uid) => {
        if (aborted) return;
        if (typeof uid !== 'string' || uid.length === 0) return refuse('401 Unauthorized', 'authentication failed');
        if (this.#closing) return refuse('503 Service Unavailable', 'server is shutting down');
        const resumeSid = info.query.get('sid') ?? undefined;
        const existing = this.#conns.get(uid);
        if (this.#opts.duplicateLogin === 'reject' && existing && existing.sid !== resumeSid)
          return refuse('409 Conflict', 'this uid is already connected');
        const protocol = offered.split(',').some((p) => p.trim() === VOLLEY_PROTOCOL) ? VOLLEY_PROTOCOL : '';
        const upgrade = () => res.cork(() => res.upgrade<SocketData>({ uid, resumeSid }, key, protocol, extensions, context));
        const held = !existing && this.#opts.duplicateLogin === 'reject' ? this.#adapter.heldElsewhere?.(uid, resumeSid) : undefined;
        if (!held) return upgrade();
        // Another node may hold the uid: refused the same way (409), before any socket exists.
        held.then(
          (elsewhere) => {
            if (aborted) return;
            if (this.#closing) return refuse('503 Service Unavailable', 'server is shutting down');
            if (elsewhere) return refuse('409 Conflict', 'this uid is already connected on another node');
            upgrade();
          },
          () => (aborted ? undefined : upgrade()),
        );
      },
      (err) => {
        this.#reportError(err);
        refuse('401 Unauthorized', 'authentication failed');
      },
    );
  }

  #open(ws: UwsSocket<SocketData>): void {
    const data = ws.getUserData();
    const uid = data.uid;
    const existing = this.#conns.get(uid);
    if (existing && data.resumeSid === existing.sid && this.#resumeWindowMs > 0) {
      // The same session comes back: take over from the old socket (if the server has not
      // noticed yet that it died) and re-send what is pending both ways.
      const old = existing.ws;
      existing.detach();
      if (old) old.end(CloseCode.REPLACED, 'resumed on a newer socket');
      data.conn = existing;
      existing.attach(ws, this.#sessionMessage(existing, true));
      this.#subscribeRooms(uid, ws);
      this.#obs?.opened(true);
      this.#opts.onConnect?.(uid, { resumed: true });
      return;
    }
    if (existing) {
      if (this.#opts.duplicateLogin === 'reject') {
        // Two upgrades for one uid raced past the 409 check; the later one loses.
        ws.end(CloseCode.DUPLICATE_LOGIN, 'this uid is already connected');
        return;
      }
      // Detach first so its close handler leaves the uid's rooms and presence alone.
      this.#conns.delete(uid);
      existing.end(CloseCode.REPLACED, 'replaced by a newer login');
      this.#endSession(existing, 'replaced');
    }
    const sid = newSessionId();
    const conn = new Connection(uid, sid, ws, this.#shared);
    data.conn = conn;
    this.#conns.set(uid, conn);
    this.#subscribeRooms(uid, ws);
    conn.peer.attach(this.#sessionMessage(conn, false));
    if (!existing)
      void this.#safe(() =>
        this.#adapter.register(uid, { sid, resumeSid: data.resumeSid, policy: this.#opts.duplicateLogin ?? 'replace' }),
      );
    this.#obs?.opened(false);
    this.#opts.onConnect?.(uid, { resumed: false });
  }

  #subscribeRooms(uid: string, ws: UwsSocket<SocketData>): void {
    for (const room of this.rooms.roomsOf(uid)) ws.subscribe(roomTopic(room));
  }

  /** `$session`: tells the client its session id (to resume with) and the timings to keep. */
  #sessionMessage(conn: Connection, resumed: boolean): Uint8Array {
    const info: SessionInfo = {
      sid: conn.sid,
      resumed,
      resumeWindowMs: this.#resumeWindowMs,
      heartbeatMs: this.#opts.heartbeatMs ?? 10_000,
      maxMessageBytes: this.limits.maxMessageBytes,
    };
    return encode([NOTIFICATION, SESSION, [info]]);
  }

  #message(ws: UwsSocket<SocketData>, data: ArrayBuffer, isBinary: boolean): void {
    const conn = ws.getUserData().conn;
    // A socket the session has moved away from (resumed elsewhere): its late messages are
    // stale, and the client re-sends on the new socket whatever still needs an answer.
    if (!conn || conn.ws !== ws) return;
    conn.seen = true;
    this.#obs?.frameIn(data.byteLength);
    if (!isBinary) {
      conn.end(CloseCode.PROTOCOL_ERROR, 'text frames are not part of the protocol');
      return;
    }
    conn.peer.receive(data);
  }

  #close(ws: UwsSocket<SocketData>, code: number, reason: ArrayBuffer): void {
    const conn = ws.getUserData().conn;
    if (!conn || conn.ws !== ws) return; // refused duplicate, or a socket a resume superseded
    conn.detach();
    this.#obs?.disconnected(code);
    this.#opts.onDisconnect?.(conn.uid, code, Buffer.from(reason).toString());
    if (this.#conns.get(conn.uid) !== conn) return; // replaced: the uid lives on
    // A deliberate close (by the client: 1000/1001, or by us) ends the session now; a
    // dropped socket keeps it for the resume window.
    if (conn.ending || code === CloseCode.NORMAL || code === CloseCode.GOING_AWAY || this.#resumeWindowMs <= 0 || this.#closing) {
      this.#endSession(conn, this.#closing ? 'shutdown' : conn.ending ? 'server' : 'closed');
    } else {
      conn.expireIn(this.#resumeWindowMs, () => this.#endSession(conn, 'expired'));
    }
  }

  /** Session over: pending calls both ways reject DISCONNECTED, rooms and presence go. */
  #endSession(conn: Connection, reason: EndReason): void {
    this.#obs?.sessionEnded(reason);
    conn.cancelExpiry();
    conn.peer.close(new RpcError(ErrorCode.DISCONNECTED, `${conn.uid} disconnected`));
    if (this.#conns.get(conn.uid) === conn) {
      this.#conns.delete(conn.uid);
      this.rooms.leaveAll(conn.uid);
      void this.#safe(() => this.#adapter.unregister(conn.uid));
    }
    this.#opts.onSessionEnd?.(conn.uid);
    if (this.#conns.size === 0) this.#allClosed?.();
  }

  // ---- calling clients ----------------------------------------------------------------

  /** Call one client's handler; rejects with an RpcError (UNAVAILABLE when not connected). */
  call<M extends MethodName<ClientApi>>(
    uid: string,
    method: M,
    args: ArgsOf<ClientApi, M>,
    opts?: CallOptions,
  ): Promise<ResultOf<ClientApi, M>> {
    const conn = this.#conns.get(uid);
    const params = args as unknown as unknown[];
    if (this.#obs) return (conn ? this.#obs.callMade(conn.peer, method, params, opts) : this.#obs.callForwarded((o) => this.#adapter.callRemote(uid, method, params, o), method, opts)) as Promise<ResultOf<ClientApi, M>>;
    if (conn) return conn.peer.call(method, params, opts) as Promise<ResultOf<ClientApi, M>>;
    return this.#adapter.callRemote(uid, method, params, opts) as Promise<ResultOf<ClientApi, M>>;
  }

  /** Typed proxy to one client: `await server.to(uid, { timeoutMs: 5000 }).chooseMove(board)`. */
  to(uid: string, opts?: CallOptions): Remote<ClientApi> {
    return createProxy<Remote<ClientApi>>((method, args) => this.call(uid, method as never, args as never, opts));
  }

  /** Fire and forget to one client. Dropped silently if it is not connected. */
  notify<M extends MethodName<ClientApi>>(uid: string, method: M, ...args: ArgsOf<ClientApi, M>): void {
    const conn = this.#conns.get(uid);
    if (conn) conn.peer.notify(method, args);
    else this.#adapter.notifyRemote(uid, method, args);
  }

  /**
   * The same call to many uids (or a room's members). Resolves once every uid has an
   * outcome: ok, error, timeout or offline. Never rejects as a whole.
   */
  callMany<M extends MethodName<ClientApi>>(
    target: readonly string[] | { room: string },
    method: M,
    args: ArgsOf<ClientApi, M>,
    opts?: CallOptions,
  ): Promise<Outcome<ResultOf<ClientApi, M>>[]> {
    if ('room' in target && this.#adapter.remoteMembers) {
      // Members on other nodes too; if the cluster can't say, this node's members alone.
      const local = this.rooms.members(target.room);
      return this.#adapter
        .remoteMembers(target.room)
        .then((remote) => [...new Set([...local, ...remote])], () => local)
        .then((uids) => gather(uids, (uid) => this.call(uid, method, args, opts)));
    }
    const uids = 'room' in target ? this.rooms.members(target.room) : target;
    return gather(uids, (uid) => this.call(uid, method, args, opts));
  }

  // ---- rooms ------------------------------------------------------------------------

  /** Add uid to a room. Membership belongs to the uid and survives a replacing login. */
  join(uid: string, room: string): void {
    // A uid connected to another node joins there, where its socket can subscribe.
    if (!this.#conns.has(uid) && this.#adapter.joinRemote?.(uid, room)) return;
    if (!this.rooms.join(uid, room)) return;
    this.#conns.get(uid)?.ws?.subscribe(roomTopic(room));
    this.#adapter.joined?.(uid, room);
  }

  leave(uid: string, room: string): void {
    if (!this.#conns.has(uid) && this.#adapter.leaveRemote?.(uid, room)) return;
    if (!this.rooms.leave(uid, room)) return;
    this.#adapter.left?.(uid, room);
    this.#conns.get(uid)?.ws?.unsubscribe(roomTopic(room));
  }

  members(room: string): string[] {
    return this.rooms.members(room);
  }

  /** Notify every member of a room: encoded once, fanned out by uWebSockets.js. */
  notifyRoom<M extends MethodName<ClientApi>>(room: string, method: M, ...args: ArgsOf<ClientApi, M>): void {
    // Past the clients' limits it would close every member's socket (4002): refuse it here.
    const invalid = outgoingError(method, args as unknown[], this.limits);
    if (invalid) throw invalid;
    const bytes = encode([NOTIFICATION, method, args]);
    this.app.publish(roomTopic(room), bytes, true);
    this.#adapter.publishRemote(room, bytes);
  }

  // ---- presence -----------------------------------------------------------------------

  /** True while uid has a session here: connected, or dropped but within the resume window. */
  isConnected(uid: string): boolean {
    return this.#conns.has(uid);
  }

  /** True while uid has a live socket here. */
  isOnline(uid: string): boolean {
    return this.#conns.get(uid)?.online ?? false;
  }

  uids(): string[] {
    return [...this.#conns.keys()];
  }

  /** Close uid's socket and end its session (pending calls both ways reject DISCONNECTED). */
  disconnect(uid: string, code: number = CloseCode.NORMAL, reason = 'disconnected by server'): void {
    const conn = this.#conns.get(uid);
    if (!conn) return;
    conn.end(code, reason);
    if (!conn.online) this.#endSession(conn, 'server'); // within the resume window: no socket to close
  }

  // ---- shutdown -----------------------------------------------------------------------

  /**
   * Stop accepting, let running handlers finish (up to graceMs), then close every socket
   * with GOING_AWAY (1001: clients may reconnect). Calls the server made that are still
   * pending reject DISCONNECTED. Idempotent.
   */
  close(opts: CloseOptions = {}): Promise<void> {
    return (this.#closing ??= this.#shutdown(opts.graceMs ?? 5000));
  }

  /**
   * One timer for all connections: a socket whose client keeps heartbeats but was silent
   * for heartbeatTimeoutMs is dropped (its session keeps the resume window). Cheaper than
   * a timer per socket, and finer-grained than uWebSockets.js' 4-second idle timeout.
   */
  #startSweep(): void {
    const interval = this.#heartbeatMs;
    if (!(interval > 0) || this.#sweep) return;
    const maxMissed = Math.max(1, Math.ceil((this.#opts.heartbeatTimeoutMs ?? interval * 2.5) / interval));
    this.#sweep = setInterval(() => {
      for (const conn of this.#conns.values()) {
        if (!conn.online || !conn.heartbeats) continue;
        if (conn.seen) {
          conn.seen = false;
          conn.missedSweeps = 0;
        } else if (++conn.missedSweeps >= maxMissed) {
          conn.ws!.close(); // abrupt: the session stays resumable
        }
      }
    }, interval);
    this.#sweep.unref?.();
  }

  async #shutdown(graceMs: number): Promise<void> {
    if (this.#sweep) clearInterval(this.#sweep);
    this.#sweep = undefined;
    if (this.#listenSocket) uws.us_listen_socket_close(this.#listenSocket);
    this.#listenSocket = undefined;
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && [...this.#conns.values()].some((c) => c.peer.pendingIncoming > 0))
      await new Promise((r) => setTimeout(r, CLOSE_POLL_MS));
    if (this.#conns.size > 0) {
      const allClosed = new Promise<void>((r) => (this.#allClosed = r));
      for (const conn of [...this.#conns.values()]) {
        conn.end(CloseCode.GOING_AWAY, 'server shutting down');
        if (!conn.online) this.#endSession(conn, 'shutdown');
      }
      await allClosed;
    }
    await this.#adapter.close();
    this.#obs?.close();
  }

  // ---- internals ----------------------------------------------------------------------

  #localNode(): LocalNode {
    return {
      has: (uid) => this.#conns.has(uid),
      callLocal: (uid, method, params, opts) => {
        const conn = this.#conns.get(uid);
        return conn
          ? this.#obs ? this.#obs.callMade(conn.peer, method, params, opts) : conn.peer.call(method, params, opts)
          : Promise.reject(new RpcError(ErrorCode.UNAVAILABLE, `${uid} is not connected`));
      },
      notifyLocal: (uid, method, params) => this.#conns.get(uid)?.peer.notify(method, params),
      publishLocal: (room, bytes) => this.app.publish(roomTopic(room), bytes, true),
      join: (uid, room) => this.join(uid, room),
      leave: (uid, room) => this.leave(uid, room),
      disconnectLocal: (uid, code, reason) => this.disconnect(uid, code, reason),
      timeoutMs: this.#opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      observer: this.#obs,
    };
  }

  #reportError(err: unknown, ctx?: ServerContext<ClientApi>): void {
    if (this.#opts.onError) this.#opts.onError(err, ctx);
    else console.error(`[volley] ${ctx ? `handler ${ctx.method} (uid ${ctx.uid})` : 'authenticate'} threw:`, err);
  }

  async #safe(fn: () => unknown): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.#reportError(err);
    }
  }
}

export function createServer<ServerApi = any, ClientApi = any>(
  opts: ServerOptions<NoInfer<ServerApi>, NoInfer<ClientApi>>,
): VolleyServer<ServerApi, ClientApi> {
  return new VolleyServer<ServerApi, ClientApi>(opts);
}
