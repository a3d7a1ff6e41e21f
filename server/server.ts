// VolleyServer: the public facade. Calls to clients, rooms, presence, shutdown; the
// sessions by uid and their lifecycle live in sessions.ts. Who may connect is decided in
// upgrade.ts; the WebSocket library behind it is a transport (transports/: native
// uWebSockets.js or the ws package), chosen at start.

// msgpackr's Node entry registers msgpackr-extract's native string decoding (an optional
// dependency of msgpackr; absent, this changes nothing) on the decoder protocol/codec.ts
// uses too: the bench's 1 KB object decodes ~8% faster. Not in protocol/: browsers can't.
import 'msgpackr';
import {
  CloseCode,
  DEFAULT_LIMITS,
  DEFAULT_TIMEOUT_MS,
  ErrorCode,
  NOTIFICATION,
  RpcError,
  createOneOffProxy,
  encode,
  hasUpload,
  outgoingError,
  resolveLimits,
  announcedLimits,
  toMap,
  type AnyHandler,
  type ArgsOf,
  type CallOptions,
  type Limits,
  type MethodName,
  type ParamsSchema,
  type ItemOf,
  type Remote,
  type ResultOf,
} from '../protocol/index.ts';
import { LocalAdapter, type ClusterAdapter, type LocalNode } from './adapter.ts';
import { gather, type Outcome } from './callMany.ts';
import type { BackpressureLimits, ConnectionShared } from './connection.ts';
import { RateLimiter } from './rateLimit.ts';
import { Sessions } from './sessions.ts';
import { ServerContext } from './context.ts';
import { Rooms, roomTopic } from './rooms.ts';
import { SERVER_DEFAULTS, proxyHops, type ServerOptions } from './options.ts';
import { Admission, type UpgradeData } from './upgrade.ts';
import { createObserver, mountRoutes, routesForMainPort, type ServerObserver } from './observe/index.ts';
import { createTransport, type Transport, type TransportName } from './transports/index.ts';
import { httpLimits } from './transports/transport.ts';

export type { ServerOptions } from './options.ts';

/** What `server.close()` takes. */
export interface CloseOptions {
  /** How long running handlers get to finish before sockets close. Default 5000 ms. */
  graceMs?: number;
}

/** A client with a small rate-limit burst is not cut for a few refused calls. */
const MIN_FLOOD_REFUSALS = 1000;

/** How often close() checks whether running handlers have finished. */
const CLOSE_POLL_MS = 10;

/**
 * A Volley server: made by {@link createServer}, started by `listen()`. Holds the
 * `uid → connection` map, calls players (`to`, `call`, `callMany`, `notify`), keeps rooms
 * (`join`, `leave`, `notifyRoom`) and shuts down gracefully (`close`).
 */
export class VolleyServer<ServerApi = any, ClientApi = any> {
  /** The WebSocket library this server runs on: 'uws' (native) or 'ws'. */
  readonly transport: TransportName;
  /** The per-message limits in force (the `limits` option over the defaults). */
  readonly limits: Limits;
  /** This node's rooms and their members (use `join`, `leave`, `members` rather than this directly). */
  readonly rooms: Rooms;
  /** The per-uid rate limit on incoming calls (undefined when turned off). */
  readonly rateLimiter: RateLimiter | undefined;
  #opts: ServerOptions<ServerApi, ClientApi>;
  #handlers: Map<string, AnyHandler>;
  #schemas: Map<string, ParamsSchema>;
  /** This node's sessions, by uid (sessions.ts). */
  readonly #sessions: Sessions;
  #adapter: ClusterAdapter;
  #transport: Transport<UpgradeData>;
  #admission: Admission;
  #port = 0;
  #closing: Promise<void> | undefined;
  /** drain(): no new players; sessions stay (for the nodes the players reconnect to). */
  #draining = false;
  /** Bytes held across every connection (see maxServerHeldBytes). */
  readonly held: {
    /** Bytes held now. */
    bytes: number;
    /** The cap, `maxServerHeldBytes`. */
    readonly max: number;
  };
  #backpressure: BackpressureLimits;
  #shared!: ConnectionShared;
  #resumeWindowMs: number;
  #listening = false;
  /** Metrics and traces (`observe`); undefined when off, and then each hook is one check. */
  readonly #obs: ServerObserver | undefined;

  constructor(opts: ServerOptions<ServerApi, ClientApi>) {
    const D = SERVER_DEFAULTS;
    this.#opts = opts;
    this.limits = resolveLimits(opts.limits);
    this.rooms = new Rooms(opts.maxRoomsPerUid);
    this.rateLimiter = opts.rateLimit === false ? undefined : new RateLimiter(opts.rateLimit);
    this.#handlers = toMap(opts.handlers as unknown as Record<string, AnyHandler>);
    this.#schemas = toMap(opts.schemas as Record<string, ParamsSchema> | undefined);
    const obs = (this.#obs = createObserver(opts.observe, this.#handlers.keys(), {
      sessions: () => this.#sessions.values(),
      rooms: () => this.rooms.stats(),
      listening: () => this.#listening,
      closing: () => this.#closing !== undefined,
      clusterConnected: () => (this.#adapter as { connected?: boolean }).connected,
    }));
    if (obs) this.#handlers = obs.wrapHandlers(this.#handlers);
    this.#adapter = opts.adapter ?? new LocalAdapter();
    this.#resumeWindowMs = opts.resumeWindowMs ?? D.resumeWindowMs;
    this.#backpressure = { ...D.backpressure, ...opts.backpressure };
    this.held = { bytes: 0, max: opts.maxServerHeldBytes ?? D.maxServerHeldBytes };
    const limiter = this.rateLimiter;
    this.#shared = {
      handlers: this.#handlers,
      schemas: this.#schemas,
      timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      limits: this.limits,
      backpressure: this.#backpressure,
      admit: limiter ? (uid, now) => limiter.take(uid, now) : undefined,
      maxUnackedBytes: opts.maxUnackedBytes ?? D.maxUnackedBytes,
      maxHeldBytes: opts.maxHeldBytes ?? D.maxHeldBytes,
      heldTotal: this.held,
      floodRefusals: opts.floodRefusals ?? Math.max(limiter?.burst ?? 0, MIN_FLOOD_REFUSALS),
      createContext: obs
        ? (conn, id, method) => obs.began(new ServerContext<ClientApi>(id, method, conn.uid, this))
        : (conn, id, method) => new ServerContext<ClientApi>(id, method, conn.uid, this),
      reportError: (err, ctx) => this.#reportError(err, ctx as ServerContext<ClientApi>),
      observer: obs,
    };
    this.#sessions = new Sessions({
      opts,
      shared: this.#shared,
      rooms: this.rooms,
      adapter: this.#adapter,
      obs,
      resumeWindowMs: this.#resumeWindowMs,
      heartbeatMs: opts.heartbeatMs ?? D.heartbeatMs,
      maxMessageBytes: this.limits.maxMessageBytes,
      announced: announcedLimits(this.limits),
      closing: () => this.#closing !== undefined,
      draining: () => this.#draining,
      safe: (fn) => this.#safe(fn),
    });
    this.#admission = new Admission(
      { ...D.authLimits, ...opts.authLimits },
      {
        closing: () => this.#closing !== undefined || this.#draining,
        authenticate: (req) => this.#opts.authenticate(req),
        duplicateLogin: opts.duplicateLogin ?? D.duplicateLogin,
        sessionOf: (uid) => this.#sessions.get(uid)?.sid,
        heldElsewhere: this.#adapter.heldElsewhere ? (uid, sid) => this.#adapter.heldElsewhere!(uid, sid) : undefined,
        adopt: this.#adapter.takeSession ? (uid, sid) => this.#adopt(uid, sid) : undefined,
        reportError: (err) => this.#reportError(err),
        refused: obs ? (status) => obs.authRefused(String(status)) : undefined,
      },
    );
    this.#transport = createTransport<UpgradeData>(
      opts.transport,
      {
        path: opts.path ?? D.path,
        maxPayloadLength: this.limits.maxMessageBytes,
        idleTimeoutSec: opts.idleTimeoutSec ?? D.idleTimeoutSec,
        // Our own hard limit (checked before each send) normally trips first.
        maxBackpressure: this.#backpressure.hardBytes * 2,
        trustProxy: proxyHops(opts.trustProxy),
        tls: opts.tls,
        reusePort: opts.reusePort ?? false,
        http: httpLimits(opts.httpLimits),
      },
      {
        upgrade: (pending) => this.#admission.handle(pending),
        open: (ws) => this.#sessions.open(ws),
        message: (ws, data, isBinary) => this.#sessions.message(ws, data, isBinary),
        close: (ws, code, reason) => this.#sessions.close(ws, code, reason),
      },
    );
    this.transport = this.#transport.name;
    opts.http?.(this.#transport.routes);
    // /metrics, /health, /monitor: on this port through the same routes API, or (routesPort) on one of their own.
    if (obs) mountRoutes(this.#transport.routes, routesForMainPort(obs));
  }

  /** The port listened on (after listen resolves). */
  get port(): number {
    return this.#port;
  }

  /** Number of connected uids on this node. */
  get connectionCount(): number {
    return this.#sessions.size;
  }

  /** Sessions on this node and calls pending in each direction across them (tests, monitoring). */
  stats(): {
    /** Sessions on this node (with or without a socket). */
    connections: number;
    /** Calls from clients running here. */
    pendingIncoming: number;
    /** Calls to clients awaiting an answer. */
    pendingOutgoing: number;
  } {
    let pendingIncoming = 0;
    let pendingOutgoing = 0;
    for (const conn of this.#sessions.values()) {
      pendingIncoming += conn.peer.pendingIncoming;
      pendingOutgoing += conn.peer.pendingOutgoing;
    }
    return { connections: this.#sessions.size, pendingIncoming, pendingOutgoing };
  }

  /** authenticate() calls in progress (tests, monitoring). */
  get pendingLogins(): number {
    return this.#admission.pending;
  }

  /** Listen on `port` (0 picks a free one); resolves with the port actually bound. */
  async listen(port = 0, host?: string): Promise<number> {
    await this.#adapter.attach(this.#localNode());
    await this.#obs?.ready;
    this.#port = await this.#transport.listen(port, host);
    this.#listening = true;
    this.#sessions.startSweep();
    return this.#port;
  }

  // ---- calling clients ----------------------------------------------------------------

  /** Call one client's handler; rejects with an RpcError (UNAVAILABLE when not connected). */
  call<M extends MethodName<ClientApi>>(
    uid: string,
    method: M,
    args: ArgsOf<ClientApi, M>,
    opts?: CallOptions,
  ): Promise<ResultOf<ClientApi, M>> {
    const conn = this.#sessions.get(uid);
    const params = args as unknown as unknown[];
    const obs = this.#obs;
    if (obs)
      return (
        conn
          ? obs.callMade(conn.peer, method, params, opts, uid)
          : obs.callForwarded((o) => this.#adapter.callRemote(uid, method, params, o), method, opts, uid)
      ) as Promise<ResultOf<ClientApi, M>>;
    if (conn) return conn.peer.call(method, params, opts) as Promise<ResultOf<ClientApi, M>>;
    return this.#adapter.callRemote(uid, method, params, opts) as Promise<ResultOf<ClientApi, M>>;
  }

  /**
   * Call a client method that streams (its handler returns an async iterable) and read the
   * items with `for await`; breaking out cancels it. A player on another node is read
   * through its node (cluster adapter); one connected nowhere fails UNAVAILABLE.
   */
  stream<M extends MethodName<ClientApi>>(uid: string, method: M, args: ArgsOf<ClientApi, M>, opts?: CallOptions): AsyncIterable<ItemOf<ResultOf<ClientApi, M>>> {
    const conn = this.#sessions.get(uid);
    const params = args as unknown as unknown[];
    let items: AsyncIterable<unknown>;
    if (conn) items = conn.peer.stream(method, params, opts);
    else if (this.#adapter.streamRemote) items = this.#adapter.streamRemote(uid, method, params, opts);
    else throw new RpcError(ErrorCode.UNAVAILABLE, `${uid} is not connected`);
    return (this.#obs ? this.#obs.streamMade(method, items, uid) : items) as AsyncIterable<ItemOf<ResultOf<ClientApi, M>>>;
  }

  /** Typed proxy to one client: `await server.to(uid, { timeoutMs: 5000 }).chooseMove(board)`. */
  to(uid: string, opts?: CallOptions): Remote<ClientApi> {
    return createOneOffProxy<Remote<ClientApi>>((method, args) => this.call(uid, method as never, args as never, opts));
  }

  /** Fire and forget to one client. Dropped silently if it is not connected. */
  notify<M extends MethodName<ClientApi>>(uid: string, method: M, ...args: ArgsOf<ClientApi, M>): void {
    const conn = this.#sessions.get(uid);
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
    // One upload is read by one callee (SPEC §12): passed to many, each would take some of its items.
    const one = hasUpload(args as unknown[])
      ? () => Promise.reject(new RpcError(ErrorCode.INVALID_PARAMS, `${method}: an upload (async iterable param) is read by one player; callMany can't share one`))
      : (uid: string) => this.call(uid, method, args, opts);
    if ('room' in target && this.#adapter.remoteMembers) {
      // Members on other nodes too; if the cluster can't say, this node's members alone.
      const room = target.room;
      return this.allMembers(room)
        .catch(() => this.rooms.members(room))
        .then((uids) => gather(uids, one));
    }
    const uids = 'room' in target ? this.rooms.members(target.room) : target;
    return gather(uids, one);
  }

  // ---- rooms ------------------------------------------------------------------------

  /**
   * Add uid to a room, for as long as its session lasts (a resume keeps it, a replacing
   * login takes it over, the session's end removes it). A uid with no session on this node
   * joins on the node that holds it (cluster adapter), else nowhere: a membership never
   * waits for a login. Throws RpcError INVALID_PARAMS past maxRoomsPerUid.
   */
  join(uid: string, room: string): void {
    const conn = this.#sessions.get(uid);
    if (!conn) return void this.#adapter.joinRemote?.(uid, room);
    if (!this.rooms.join(uid, room)) return;
    conn.ws?.subscribe(roomTopic(room));
    this.#adapter.joined?.(uid, room);
  }

  /** Take uid out of room (on the node that holds its session, with a cluster adapter). No-op if it was not in it. */
  leave(uid: string, room: string): void {
    const conn = this.#sessions.get(uid);
    if (!conn) return void this.#adapter.leaveRemote?.(uid, room);
    if (!this.rooms.leave(uid, room)) return;
    this.#adapter.left?.(uid, room);
    conn.ws?.unsubscribe(roomTopic(room));
  }

  /** The room's members on this node only (synchronous); `allMembers` for the whole cluster. */
  members(room: string): string[] {
    return this.rooms.members(room);
  }

  /**
   * The room's members on every node (with a cluster adapter; this node's alone without
   * one). Rejects UNAVAILABLE when the cluster can't be asked.
   */
  async allMembers(room: string): Promise<string[]> {
    const local = this.rooms.members(room);
    if (!this.#adapter.remoteMembers) return local;
    return [...new Set([...local, ...(await this.#adapter.remoteMembers(room))])];
  }

  /** Notify every member of a room: encoded once, fanned out by the transport. */
  notifyRoom<M extends MethodName<ClientApi>>(room: string, method: M, ...args: ArgsOf<ClientApi, M>): void {
    // Past the clients' limits it would close every member's socket (4002): refuse it here.
    // Members may have announced different limits; the spec's floor fits them all.
    const invalid = outgoingError(method, args as unknown[], DEFAULT_LIMITS);
    if (invalid) throw invalid;
    const bytes = encode([NOTIFICATION, method, args]);
    this.#transport.publish(roomTopic(room), bytes);
    this.#adapter.publishRemote(room, bytes);
  }

  // ---- presence -----------------------------------------------------------------------

  /** True while uid has a session here: connected, or dropped but within the resume window. */
  isConnected(uid: string): boolean {
    return this.#sessions.has(uid);
  }

  /**
   * True while uid has a session on any node (here, or on a live node of the cluster).
   * Rejects UNAVAILABLE when the cluster can't be asked and uid is not here.
   */
  async isConnectedAnywhere(uid: string): Promise<boolean> {
    if (this.#sessions.has(uid)) return true;
    return (await this.#adapter.connectedElsewhere?.(uid)) ?? false;
  }

  /** True while uid has a live socket here. */
  isOnline(uid: string): boolean {
    return this.#sessions.get(uid)?.online ?? false;
  }

  /** The uids with a session on this node. */
  uids(): string[] {
    return [...this.#sessions.keys()];
  }

  /** Close uid's socket and end its session (pending calls both ways reject DISCONNECTED). */
  disconnect(uid: string, code: number = CloseCode.NORMAL, reason = 'disconnected by server'): void {
    const conn = this.#sessions.get(uid);
    if (!conn) return;
    conn.end(code, reason);
    if (!conn.online) this.#sessions.end(conn, 'server'); // within the resume window: no socket to close
  }

  // ---- shutdown -----------------------------------------------------------------------

  /**
   * Refuse new logins (503, or 4503 for Volley clients), let running handlers finish (up
   * to graceMs), close every socket with GOING_AWAY (1001: clients may reconnect), then
   * stop listening. Calls the server made that are still
   * pending reject DISCONNECTED. Idempotent.
   */
  close(opts: CloseOptions = {}): Promise<void> {
    return (this.#closing ??= this.#shutdown(opts.graceMs ?? SERVER_DEFAULTS.closeGraceMs));
  }

  /**
   * For deploys: take no new players (503, or 4503), close every socket with 1001 so its
   * client reconnects and resumes — through the load balancer, on another node, which
   * takes the session over with a cluster adapter (pending calls both ways included) —
   * then close() once no session and no call of a moved session is left here, or after
   * `timeoutMs` (default: the resume window plus 5 s).
   */
  async drain(opts: { timeoutMs?: number } = {}): Promise<void> {
    this.#draining = true;
    for (const conn of this.#sessions.values()) {
      const ws = conn.ws;
      if (!ws) continue;
      conn.peer.flush();
      ws.end(CloseCode.GOING_AWAY, 'server restarting: resume on another node');
    }
    const deadline = Date.now() + (opts.timeoutMs ?? this.#resumeWindowMs + 5000);
    while (Date.now() < deadline && (this.#sessions.size > 0 || (this.#adapter.relaying ?? 0) > 0))
      await new Promise((r) => setTimeout(r, CLOSE_POLL_MS * 5));
    await this.close();
  }

  /**
   * A player asks to resume a session this node does not have: if another node holds it,
   * it moves here (as a detached session, which the player's socket then resumes).
   */
  async #adopt(uid: string, sid: string): Promise<void> {
    await this.#adapter.takeSession!(uid, sid, (taken) => this.#sessions.install(uid, sid, taken)).catch(() => false);
  }

  async #shutdown(graceMs: number): Promise<void> {
    this.#sessions.stopSweep();
    // The listening socket stays open through the grace period: new upgrades get 503
    // (4503) instead of a refused TCP connection, which clients would take for a crash.
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && [...this.#sessions.values()].some((c) => c.peer.pendingIncoming > 0))
      await new Promise((r) => setTimeout(r, CLOSE_POLL_MS));
    if (this.#sessions.size > 0) {
      const allClosed = this.#sessions.whenAllClosed();
      for (const conn of [...this.#sessions.values()]) {
        conn.end(CloseCode.GOING_AWAY, 'server shutting down');
        if (!conn.online) this.#sessions.end(conn, 'shutdown');
      }
      await allClosed;
    }
    this.#transport.stopListening();
    this.#listening = false;
    await this.#adapter.close();
    this.#obs?.close();
  }

  // ---- internals ----------------------------------------------------------------------

  #localNode(): LocalNode {
    return {
      has: (uid) => this.#sessions.has(uid),
      callLocal: (uid, method, params, opts) => {
        const conn = this.#sessions.get(uid);
        if (!conn) return Promise.reject(new RpcError(ErrorCode.UNAVAILABLE, `${uid} is not connected`));
        return this.#obs ? this.#obs.callMade(conn.peer, method, params, opts, uid) : conn.peer.call(method, params, opts);
      },
      notifyLocal: (uid, method, params) => this.#sessions.get(uid)?.peer.notify(method, params),
      publishLocal: (room, bytes) => this.#transport.publish(roomTopic(room), bytes),
      // Another node's join for a uid here: past maxRoomsPerUid it is reported, not thrown
      // into the cluster's message handler.
      join: (uid, room) => void this.#safe(() => this.join(uid, room)),
      leave: (uid, room) => this.leave(uid, room),
      disconnectLocal: (uid, code, reason) => this.disconnect(uid, code, reason),
      handOver: (uid, sid, exportFrom) => this.#sessions.handOver(uid, sid, exportFrom),
      streamLocal: (uid, method, params) => {
        const conn = this.#sessions.get(uid);
        if (!conn) throw new RpcError(ErrorCode.UNAVAILABLE, `${uid} is not connected`);
        return conn.peer.stream(method, params);
      },
      sessionPeer: (uid, sid) => {
        const conn = this.#sessions.get(uid);
        return conn?.sid === sid ? conn.peer : undefined;
      },
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

/**
 * A server for the contract `ServerApi` (what clients may call) and `ClientApi` (what it
 * may call on clients). It starts listening on `server.listen(port)`.
 */
export function createServer<ServerApi = any, ClientApi = any>(
  opts: ServerOptions<NoInfer<ServerApi>, NoInfer<ClientApi>>,
): VolleyServer<ServerApi, ClientApi> {
  return new VolleyServer<ServerApi, ClientApi>(opts);
}
