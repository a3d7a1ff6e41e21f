// VolleyServer: the public facade. Sessions by uid, rooms, calls to clients, shutdown.
// Who may connect is decided in upgrade.ts; the WebSocket library behind it is a
// transport (transports/: native uWebSockets.js or the ws package), chosen at start.

// msgpackr's Node entry registers msgpackr-extract's native string decoding (an optional
// dependency of msgpackr; absent, this changes nothing) on the decoder protocol/codec.ts
// uses too: the bench's 1 KB object decodes ~8% faster. Not in protocol/: browsers can't.
import 'msgpackr';
import { quietError } from './quietError.ts';
import {
  CloseCode,
  DEFAULT_LIMITS,
  DEFAULT_MAX_HELD_BYTES,
  DEFAULT_MAX_UNACKED_BYTES,
  DEFAULT_TIMEOUT_MS,
  ErrorCode,
  NOTIFICATION,
  RpcError,
  createOneOffProxy,
  encode,
  hasUpload,
  importSession,
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
  type RpcPeer,
  type SessionImage,
} from '../protocol/index.ts';
import { LocalAdapter, type ClusterAdapter, type LocalNode, type TakenSession } from './adapter.ts';
import { gather, type Outcome } from './callMany.ts';
import { Connection, type BackpressureLimits, type ConnectionShared } from './connection.ts';
import { RateLimiter } from './rateLimit.ts';
import { SESSION, newSessionId, type SessionInfo } from './session.ts';
import { ServerContext } from './context.ts';
import { Rooms, roomTopic } from './rooms.ts';
import { SERVER_DEFAULTS, proxyHops, type ServerOptions } from './options.ts';
import { Admission, type UpgradeData } from './upgrade.ts';
import { createObserver, mountRoutes, routesForMainPort, type EndReason, type ServerObserver } from './observe/index.ts';
import { createTransport, type Transport, type TransportName, type TransportSocket } from './transports/index.ts';
import { httpLimits } from './transports/transport.ts';

export type { ServerOptions } from './options.ts';

type Socket = TransportSocket<UpgradeData>;

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
  /** The limits every `$session` announces (the same for each connection). */
  #announced: ReturnType<typeof announcedLimits>;
  /** This node's rooms and their members (use `join`, `leave`, `members` rather than this directly). */
  readonly rooms: Rooms;
  /** The per-uid rate limit on incoming calls (undefined when turned off). */
  readonly rateLimiter: RateLimiter | undefined;
  #opts: ServerOptions<ServerApi, ClientApi>;
  #handlers: Map<string, AnyHandler>;
  #schemas: Map<string, ParamsSchema>;
  #conns = new Map<string, Connection>();
  #adapter: ClusterAdapter;
  #transport: Transport<UpgradeData>;
  #admission: Admission;
  #port = 0;
  #closing: Promise<void> | undefined;
  /** drain(): no new players; sessions stay (for the nodes the players reconnect to). */
  #draining = false;
  #allClosed: (() => void) | undefined;
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
  #heartbeatMs: number;
  #sweep: ReturnType<typeof setInterval> | undefined;
  #listening = false;
  /** Metrics and traces (`observe`); undefined when off, and then each hook is one check. */
  readonly #obs: ServerObserver | undefined;

  constructor(opts: ServerOptions<ServerApi, ClientApi>) {
    const D = SERVER_DEFAULTS;
    this.#opts = opts;
    this.limits = resolveLimits(opts.limits);
    this.#announced = announcedLimits(this.limits);
    this.rooms = new Rooms(opts.maxRoomsPerUid);
    this.rateLimiter = opts.rateLimit === false ? undefined : new RateLimiter(opts.rateLimit);
    this.#handlers = toMap(opts.handlers as unknown as Record<string, AnyHandler>);
    this.#schemas = toMap(opts.schemas as Record<string, ParamsSchema> | undefined);
    const obs = (this.#obs = createObserver(opts.observe, this.#handlers.keys(), {
      sessions: () => this.#conns.values(),
      rooms: () => this.rooms.stats(),
      listening: () => this.#listening,
      closing: () => this.#closing !== undefined,
      clusterConnected: () => (this.#adapter as { connected?: boolean }).connected,
    }));
    if (obs) this.#handlers = obs.wrapHandlers(this.#handlers);
    this.#adapter = opts.adapter ?? new LocalAdapter();
    this.#resumeWindowMs = opts.resumeWindowMs ?? D.resumeWindowMs;
    this.#heartbeatMs = opts.heartbeatMs ?? D.heartbeatMs;
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
    this.#admission = new Admission(
      { ...D.authLimits, ...opts.authLimits },
      {
        closing: () => this.#closing !== undefined || this.#draining,
        authenticate: (req) => this.#opts.authenticate(req),
        duplicateLogin: opts.duplicateLogin ?? D.duplicateLogin,
        sessionOf: (uid) => this.#conns.get(uid)?.sid,
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
        open: (ws) => this.#open(ws),
        message: (ws, data, isBinary) => this.#message(ws, data, isBinary),
        close: (ws, code, reason) => this.#close(ws, code, reason),
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
    return this.#conns.size;
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
    for (const conn of this.#conns.values()) {
      pendingIncoming += conn.peer.pendingIncoming;
      pendingOutgoing += conn.peer.pendingOutgoing;
    }
    return { connections: this.#conns.size, pendingIncoming, pendingOutgoing };
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
    this.#startSweep();
    return this.#port;
  }

  // ---- connection lifecycle ---------------------------------------------------------

  #open(ws: Socket): void {
    const data = ws.getUserData();
    if (data.refused) {
      // A refusal for a client that asked for it as a close code (see upgrade.ts).
      ws.end(data.refused.code, data.refused.reason);
      return;
    }
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

  #subscribeRooms(uid: string, ws: Socket): void {
    for (const room of this.rooms.roomsOf(uid)) ws.subscribe(roomTopic(room));
  }

  /** `$session`: tells the client its session id (to resume with) and the timings to keep. */
  #sessionMessage(conn: Connection, resumed: boolean): Uint8Array {
    const info: SessionInfo = {
      sid: conn.sid,
      resumed,
      resumeWindowMs: this.#resumeWindowMs,
      heartbeatMs: this.#heartbeatMs,
      maxMessageBytes: this.limits.maxMessageBytes,
      limits: this.#announced,
    };
    return encode([NOTIFICATION, SESSION, [info]]);
  }

  #message(ws: Socket, data: ArrayBuffer | Uint8Array, isBinary: boolean): void {
    const conn = ws.getUserData().conn;
    // A socket the session has moved away from (resumed elsewhere): its late messages are
    // stale, and the client re-sends on the new socket whatever still needs an answer.
    if (!conn || conn.ws !== ws) return;
    conn.seen = true;
    if (!isBinary) {
      conn.end(CloseCode.PROTOCOL_ERROR, 'text frames are not part of the protocol');
      return;
    }
    conn.receive(data);
  }

  #close(ws: Socket, code: number, reason: string): void {
    const conn = ws.getUserData().conn;
    if (!conn || conn.ws !== ws) return; // refused duplicate, or a socket a resume superseded
    conn.detach();
    this.#obs?.disconnected(code);
    this.#opts.onDisconnect?.(conn.uid, code, reason);
    if (this.#conns.get(conn.uid) !== conn) return; // replaced: the uid lives on
    // A deliberate close (by the client: 1000/1001, or by us) ends the session now; a
    // dropped socket keeps it for the resume window.
    // While draining, the 1001 this node sent keeps the session: the player resumes it on another node.
    const goingAway = code === CloseCode.GOING_AWAY && !this.#draining;
    if (conn.ending || code === CloseCode.NORMAL || goingAway || this.#resumeWindowMs <= 0 || this.#closing) {
      this.#endSession(conn, this.#closing ? 'shutdown' : conn.ending ? 'server' : 'closed');
    } else {
      conn.expireIn(this.#resumeWindowMs, () => this.#endSession(conn, 'expired'));
    }
  }

  /** Session over: pending calls both ways reject DISCONNECTED, rooms and presence go. */
  #endSession(conn: Connection, reason: EndReason): void {
    this.#obs?.sessionEnded(reason);
    conn.cancelExpiry();
    conn.dispose();
    conn.peer.close(quietError(ErrorCode.DISCONNECTED, `${conn.uid} disconnected`));
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
    const conn = this.#conns.get(uid);
    const params = args as unknown as unknown[];
    if (conn) return conn.peer.stream(method, params, opts) as AsyncIterable<ItemOf<ResultOf<ClientApi, M>>>;
    if (!this.#adapter.streamRemote) throw new RpcError(ErrorCode.UNAVAILABLE, `${uid} is not connected`);
    return this.#adapter.streamRemote(uid, method, params, opts) as AsyncIterable<ItemOf<ResultOf<ClientApi, M>>>;
  }

  /** Typed proxy to one client: `await server.to(uid, { timeoutMs: 5000 }).chooseMove(board)`. */
  to(uid: string, opts?: CallOptions): Remote<ClientApi> {
    return createOneOffProxy<Remote<ClientApi>>((method, args) => this.call(uid, method as never, args as never, opts));
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
    const conn = this.#conns.get(uid);
    if (!conn) return void this.#adapter.joinRemote?.(uid, room);
    if (!this.rooms.join(uid, room)) return;
    conn.ws?.subscribe(roomTopic(room));
    this.#adapter.joined?.(uid, room);
  }

  /** Take uid out of room (on the node that holds its session, with a cluster adapter). No-op if it was not in it. */
  leave(uid: string, room: string): void {
    const conn = this.#conns.get(uid);
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
    return this.#conns.has(uid);
  }

  /**
   * True while uid has a session on any node (here, or on a live node of the cluster).
   * Rejects UNAVAILABLE when the cluster can't be asked and uid is not here.
   */
  async isConnectedAnywhere(uid: string): Promise<boolean> {
    if (this.#conns.has(uid)) return true;
    return (await this.#adapter.connectedElsewhere?.(uid)) ?? false;
  }

  /** True while uid has a live socket here. */
  isOnline(uid: string): boolean {
    return this.#conns.get(uid)?.online ?? false;
  }

  /** The uids with a session on this node. */
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
    for (const conn of this.#conns.values()) {
      const ws = conn.ws;
      if (!ws) continue;
      conn.peer.flush();
      ws.end(CloseCode.GOING_AWAY, 'server restarting: resume on another node');
    }
    const deadline = Date.now() + (opts.timeoutMs ?? this.#resumeWindowMs + 5000);
    while (Date.now() < deadline && (this.#conns.size > 0 || (this.#adapter.relaying ?? 0) > 0))
      await new Promise((r) => setTimeout(r, CLOSE_POLL_MS * 5));
    await this.close();
  }

  /**
   * A player asks to resume a session this node does not have: if another node holds it,
   * it moves here (as a detached session, which the player's socket then resumes).
   */
  async #adopt(uid: string, sid: string): Promise<void> {
    await this.#adapter.takeSession!(uid, sid, (taken) => this.#install(uid, sid, taken)).catch(() => false);
  }

  /** A session taken over from another node arrived: in place now, as a detached session. */
  #install(uid: string, sid: string, taken: TakenSession): boolean {
    // Nowhere to put it: the caller fails the old node's calls in flight and stops its handlers.
    if (this.#conns.has(uid) || this.#resumeWindowMs <= 0 || this.#closing || this.#draining) return false;
    const conn = new Connection(uid, sid, undefined, this.#shared);
    importSession(conn.peer, taken.image, taken.back);
    this.#conns.set(uid, conn);
    for (const room of taken.rooms) if (this.rooms.join(uid, room)) this.#adapter.joined?.(uid, room);
    conn.expireIn(this.#resumeWindowMs, () => this.#endSession(conn, 'expired'));
    void this.#safe(() => this.#adapter.register(uid, { sid, resumeSid: sid, policy: this.#opts.duplicateLogin ?? 'replace' }));
    return true;
  }

  /** Another node takes uid's session `sid` over: it leaves this node, its engine stays as a relay. */
  #handOver(uid: string, sid: string, exportFrom: (peer: RpcPeer<any>) => SessionImage | undefined) {
    const conn = this.#conns.get(uid);
    if (!conn || conn.sid !== sid) return undefined;
    const image = exportFrom(conn.peer);
    if (!image) return undefined;
    this.#conns.delete(uid);
    conn.cancelExpiry();
    if (conn.ws) conn.end(CloseCode.REPLACED, 'resumed on another node'); // a socket this node has not seen die yet
    conn.dispose();
    const rooms = this.rooms.leaveAll(uid);
    void this.#safe(() => this.#adapter.unregister(uid));
    this.#obs?.sessionEnded('moved');
    if (this.#conns.size === 0) this.#allClosed?.();
    return { image, rooms, peer: conn.peer };
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
    // The listening socket stays open through the grace period: new upgrades get 503
    // (4503) instead of a refused TCP connection, which clients would take for a crash.
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
    this.#transport.stopListening();
    this.#listening = false;
    await this.#adapter.close();
    this.#obs?.close();
  }

  // ---- internals ----------------------------------------------------------------------

  #localNode(): LocalNode {
    return {
      has: (uid) => this.#conns.has(uid),
      callLocal: (uid, method, params, opts) => {
        const conn = this.#conns.get(uid);
        if (!conn) return Promise.reject(new RpcError(ErrorCode.UNAVAILABLE, `${uid} is not connected`));
        return this.#obs ? this.#obs.callMade(conn.peer, method, params, opts, uid) : conn.peer.call(method, params, opts);
      },
      notifyLocal: (uid, method, params) => this.#conns.get(uid)?.peer.notify(method, params),
      publishLocal: (room, bytes) => this.#transport.publish(roomTopic(room), bytes),
      // Another node's join for a uid here: past maxRoomsPerUid it is reported, not thrown
      // into the cluster's message handler.
      join: (uid, room) => void this.#safe(() => this.join(uid, room)),
      leave: (uid, room) => this.leave(uid, room),
      disconnectLocal: (uid, code, reason) => this.disconnect(uid, code, reason),
      handOver: (uid, sid, exportFrom) => this.#handOver(uid, sid, exportFrom),
      streamLocal: (uid, method, params) => {
        const conn = this.#conns.get(uid);
        if (!conn) throw new RpcError(ErrorCode.UNAVAILABLE, `${uid} is not connected`);
        return conn.peer.stream(method, params);
      },
      sessionPeer: (uid, sid) => {
        const conn = this.#conns.get(uid);
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
