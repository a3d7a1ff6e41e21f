// One player's session: the uid, the call engine, and the WebSocket it currently speaks
// over. The socket may drop and a new one take its place within the resume window; the
// engine (pending calls both ways, running handlers) lives on across that.

import {
  CloseCode,
  PING,
  PONG,
  TRACE,
  RpcPeer,
  type AnyHandler,
  type Limits,
  type ParamsSchema,
  type PeerOptions,
  type ProtocolViolation,
  type ReplayStore,
  type RpcError,
} from '../protocol/index.ts';
import type { ServerContext } from './context.ts';
import type { ServerObserver } from './observe/index.ts';
import type { UwsSocket } from './uws.ts';

/** What uWebSockets.js keeps per socket (its "user data"). */
export interface SocketData {
  uid: string;
  /** Session the client asked to resume (from `?sid=`), if any. */
  resumeSid?: string;
  conn?: Connection;
}

export interface BackpressureLimits {
  /** Buffered bytes past which calls fail OVERLOADED and notifications are dropped. */
  softBytes: number;
  /** Buffered bytes past which the client is disconnected (CloseCode.OVERLOADED). */
  hardBytes: number;
}

/**
 * What every connection of one server shares: built once per server, so an idle
 * connection costs its own fields only, not a set of closures and an options object.
 */
export interface ConnectionShared {
  handlers: Map<string, AnyHandler>;
  schemas: Map<string, ParamsSchema>;
  timeoutMs: number;
  limits: Limits;
  backpressure: BackpressureLimits;
  replay: ReplayStore | undefined;
  admit: ((uid: string) => RpcError | undefined) | undefined;
  createContext(conn: Connection, id: number, method: string): ServerContext;
  reportError(err: unknown, ctx: ServerContext): void;
  /** Metrics and traces; undefined when observability is off. */
  observer: ServerObserver | undefined;
}

/**
 * A Connection is also its engine's options object (PeerOptions): the callbacks are
 * prototype methods, the settings getters onto the shared server config.
 */
export class Connection implements PeerOptions<ServerContext> {
  readonly peer: RpcPeer<ServerContext>;
  readonly detached = true;
  #ws: UwsSocket<SocketData> | undefined;
  #expiry: ReturnType<typeof setTimeout> | undefined;
  /** Set when the server itself closes the socket: the session ends with it. */
  ending = false;
  /** Set on every message received; the heartbeat sweep clears it. */
  seen = true;
  /** Sweeps in a row that found no message. */
  missedSweeps = 0;
  /** The client keeps Volley heartbeats ($ping); only then does the sweep judge it. */
  heartbeats = false;

  constructor(
    readonly uid: string,
    /** Session id the client presents to resume after a drop. */
    readonly sid: string,
    ws: UwsSocket<SocketData>,
    readonly shared: ConnectionShared,
  ) {
    this.#ws = ws;
    this.peer = new RpcPeer<ServerContext>(this);
  }

  // ---- PeerOptions, read by the engine ---------------------------------------------

  get handlers(): Map<string, AnyHandler> {
    return this.shared.handlers;
  }
  get schemas(): Map<string, ParamsSchema> {
    return this.shared.schemas;
  }
  get timeoutMs(): number {
    return this.shared.timeoutMs;
  }
  get limits(): Limits {
    return this.shared.limits;
  }
  get replay(): ReplayStore | undefined {
    return this.shared.replay;
  }
  get observer(): ServerObserver | undefined {
    return this.shared.observer;
  }
  send(frame: Uint8Array): void {
    this.#send(frame);
  }
  congested(): boolean {
    return this.bufferedAmount > this.shared.backpressure.softBytes;
  }
  admit(): RpcError | undefined {
    return this.shared.admit?.(this.uid);
  }
  createContext(id: number, method: string): ServerContext {
    return this.shared.createContext(this, id, method);
  }
  onViolation(v: ProtocolViolation): void {
    this.end(CloseCode.PROTOCOL_ERROR, v.message.slice(0, 120));
  }
  onHandlerError(err: unknown, ctx: ServerContext): void {
    this.shared.reportError(err, ctx);
  }
  onExtension(method: string, params: unknown[]): void {
    if (method === TRACE) return this.shared.observer?.trace(params);
    if (method !== PING) return;
    this.heartbeats = true;
    this.peer.notify(PONG, []);
  }
  replayKey(id: number): string {
    return `${this.sid}:${id}`;
  }


  get ws(): UwsSocket<SocketData> | undefined {
    return this.#ws;
  }

  /** True while a socket is attached (false during the resume window). */
  get online(): boolean {
    return this.#ws !== undefined;
  }

  get bufferedAmount(): number {
    return this.#ws ? this.#ws.getBufferedAmount() : 0;
  }

  #send(frame: Uint8Array): void {
    const ws = this.#ws;
    if (!ws) return;
    if (ws.getBufferedAmount() > this.shared.backpressure.hardBytes) {
      this.end(CloseCode.OVERLOADED, 'client reads too slowly');
      return;
    }
    // Cork: the flush runs outside uWebSockets.js' own callbacks, where an uncorked
    // send costs a syscall of its own.
    this.shared.observer?.frameOut(frame.byteLength);
    ws.cork(() => ws.send(frame, true));
  }

  /** Close the socket and end the session (the close handler tears it down). */
  end(code: number, reason: string): void {
    this.ending = true;
    const ws = this.#ws;
    if (!ws) return;
    this.peer.flush();
    ws.end(code, reason);
  }

  /** A new socket took over this session; `preamble` is sent before the re-sent calls. */
  attach(ws: UwsSocket<SocketData>, preamble: Uint8Array): void {
    this.cancelExpiry();
    this.#ws = ws;
    this.peer.attach(preamble);
  }

  /** The socket closed (uWebSockets.js close handler): it must not be touched after. */
  detach(): void {
    this.#ws = undefined;
    this.peer.detach();
  }

  /** End the session unless a socket attaches within `ms`. */
  expireIn(ms: number, onExpire: () => void): void {
    this.cancelExpiry();
    this.#expiry = setTimeout(onExpire, ms);
  }

  cancelExpiry(): void {
    if (this.#expiry) clearTimeout(this.#expiry);
    this.#expiry = undefined;
  }
}
