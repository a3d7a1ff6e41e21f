// One player's session: the uid, the call engine, and the WebSocket it currently speaks
// over. The socket may drop and a new one take its place within the resume window; the
// engine (pending calls both ways, running handlers, kept messages) lives on across that.

import {
  CloseCode,
  FEATURES,
  LIMITS,
  PING,
  PONG,
  RpcPeer,
  TRACE,
  type AnyHandler,
  type HeldTotal,
  type Limits,
  type ParamsSchema,
  type PeerOptions,
  type ProtocolViolation,
  type WireError,
  owned,
} from '../protocol/index.ts';
import type { ServerContext } from './context.ts';
import type { ServerObserver } from './observe/index.ts';
import type { TransportSocket as UwsSocket } from './transports/transport.ts';

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
  /** Buffered bytes past which the socket is closed (4009; the session is kept). */
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
  /** Per-uid rate limit: a frozen refusal, or undefined to let the message through. */
  admit: ((uid: string, now: number) => WireError | undefined) | undefined;
  maxUnackedBytes: number;
  maxHeldBytes: number;
  heldTotal: HeldTotal;
  /** Refused messages within one second past which the connection is closed 4029. */
  floodRefusals: number;
  createContext(conn: Connection, id: number, method: string): ServerContext;
  reportError(err: unknown, ctx: ServerContext): void;
  /** Metrics and traces; undefined when observability is off. */
  observer: ServerObserver | undefined;
}

/**
 * Fairness (issue 9 #3): one connection processes at most this much input per turn of the
 * event loop; the rest is queued (owned copies) and resumed on setImmediate, so other
 * connections' messages interleave. uWebSockets.js has no pause() in this build.
 */
export const TURN_BUDGET_MS = 2;
export const TURN_BUDGET_MESSAGES = 1024;

// One turn counter for every connection, advanced by a single setImmediate after the I/O
// of a loop turn: a setImmediate per connection per turn cost one per call in call-small.
let turnNumber = 0;
let turnAdvancing = false;
const advanceTurn = (): void => {
  turnAdvancing = false;
  turnNumber++;
};
function currentTurn(): number {
  if (!turnAdvancing) {
    turnAdvancing = true;
    setImmediate(advanceTurn);
  }
  return turnNumber;
}

// What #send hands to cork: one function for every send, not a closure per frame (cork
// runs it at once, so module state is safe).
let corkWs: UwsSocket<SocketData> | undefined;
let corkFrame: Uint8Array | undefined;
const sendCorked = (): void => {
  corkWs!.send(corkFrame!, true);
};

/** setImmediate's callback for a connection's queued input (no closure per connection). */
const drainLater = (conn: Connection): void => conn.drain();

/**
 * A Connection is also its engine's options object (PeerOptions): the callbacks are
 * prototype methods, the settings getters onto the shared server config.
 */
export class Connection implements PeerOptions<ServerContext> {
  readonly peer: RpcPeer<ServerContext>;
  readonly detached = true;
  #ws: UwsSocket<SocketData> | undefined;
  #expiry: ReturnType<typeof setTimeout> | undefined;
  /** Set when the server itself closes the socket and the session ends with it. */
  ending = false;
  /** Set on every message received; the heartbeat sweep clears it. */
  seen = true;
  /** Sweeps in a row that found no message. */
  missedSweeps = 0;
  /** The client keeps Volley heartbeats ($ping); only then does the sweep judge it. */
  heartbeats = false;
  /** Input waiting for a later turn, and its bytes (owned copies). */
  #queue: Uint8Array[] | undefined;
  #queuedBytes = 0;
  #drainScheduled = false;
  /**
   * The event-loop turn this connection last processed input in, when its time started
   * counting (-1: not yet, see #spentTurn), and how many messages it processed.
   */
  #turn = -1;
  #turnStart = -1;
  #turnMessages = 0;
  /** The clock of the frame being processed; -1: not read yet in it; -2: no frame is. */
  #frameAt = -2;
  /** True while this socket is corked by the transport around the frame being processed. */
  #corked = false;
  /** Refusals in the current one-second window. */
  #refusals = 0;
  #refusalWindow = 0;

  constructor(
    readonly uid: string,
    /** Session id the client presents to resume after a drop. */
    readonly sid: string,
    /** Undefined for a session that arrives without a socket (moved here from another node). */
    ws: UwsSocket<SocketData> | undefined,
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
  get maxUnackedBytes(): number {
    return this.shared.maxUnackedBytes;
  }
  get maxHeldBytes(): number {
    return this.shared.maxHeldBytes;
  }
  get heldTotal(): HeldTotal {
    return this.shared.heldTotal;
  }
  get observer(): ServerObserver | undefined {
    return this.shared.observer;
  }
  heldByTransport(): number {
    return this.#queuedBytes;
  }
  send(frame: Uint8Array): void {
    this.#send(frame);
  }
  congested(queuedBytes: number): boolean {
    // What this tick already queued counts too: a burst of notifications in one tick is
    // dropped at the soft limit, not flushed past the hard one (issue 10 #3).
    return this.bufferedAmount + queuedBytes > this.shared.backpressure.softBytes;
  }
  admit(): WireError | undefined {
    const admit = this.shared.admit;
    if (admit === undefined) return undefined;
    // The frame's clock, read by its first message that pays (a frame of replies reads none).
    let now = this.#frameAt;
    if (now < 0) {
      now = performance.now();
      if (this.#frameAt === -1) this.#frameAt = now;
    }
    return admit(this.uid, now);
  }
  onRefused(): void {
    const now = performance.now();
    if (now - this.#refusalWindow > 1000) {
      this.#refusalWindow = now;
      this.#refusals = 0;
    }
    if (++this.#refusals > this.shared.floodRefusals && !this.ending)
      this.end(CloseCode.FLOODED, 'too many refused messages: rate limit or budget exceeded');
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
    if (method === TRACE) {
      this.shared.observer?.trace(params);
    } else if (method === PING) {
      this.heartbeats = true;
      this.peer.heartbeat(PONG);
    } else if (method === LIMITS && typeof params[0] === 'object' && params[0] !== null) {
      // The client's own receive limits: the server sends within them from now on.
      this.peer.setPeerLimits(params[0] as Partial<Limits>);
    } else if (method === FEATURES) {
      // The features this client uses, out of `$session.features` (SPEC §11).
      this.peer.setPeerFeatures(params[0]);
    }
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

  /** Input queued for a later turn (bytes). */
  get queuedInputBytes(): number {
    return this.#queuedBytes;
  }

  // ---- input, with a per-turn budget ----------------------------------------------

  /** A frame from the socket (uWebSockets.js message callback: `data` is valid only now). */
  receive(data: ArrayBuffer | Uint8Array): void {
    if (this.#queue !== undefined || this.#spentTurn()) {
      // A peer that sends faster than its turns drain holds no more than its budget.
      if (this.#queuedBytes + data.byteLength > this.shared.maxHeldBytes) {
        this.end(CloseCode.FLOODED, 'input queued past the held-bytes budget');
        return;
      }
      // Owned copy: uWebSockets.js reuses the buffer after the callback returns.
      const copy = data instanceof Uint8Array ? owned(data) : new Uint8Array(data.slice(0));
      (this.#queue ??= []).push(copy);
      this.#queuedBytes += copy.byteLength;
      this.shared.heldTotal.bytes += copy.byteLength;
      this.#scheduleDrain();
      return;
    }
    this.#processCorked(data);
  }

  /**
   * Process a frame where the transport has this socket corked (its message callback, or
   * the drain's cork): replies go straight to send(), without a cork call of their own.
   */
  #processCorked(data: ArrayBuffer | Uint8Array): void {
    this.#corked = true;
    try {
      this.#process(data);
    } finally {
      this.#corked = false;
    }
  }

  #process(data: ArrayBuffer | Uint8Array): void {
    const turn = currentTurn();
    this.#frameAt = -1;
    if (turn !== this.#turn) {
      this.#turn = turn;
      this.#turnStart = -1;
      this.#turnMessages = 0;
    }
    // Counted where processed, not where received: the call clock (observer.began) starts
    // here, and a `$trace` belongs to the frame being processed.
    this.shared.observer?.frameIn(data.byteLength);
    this.#turnMessages += this.peer.receive(data);
    this.#frameAt = -2; // outside a frame (a paced stream item's credit, on a timer) every admit reads the clock
  }

  /**
   * Has this connection spent its input budget for this turn of the loop? Its first frame
   * in a turn always runs and reads no clock (most connections send one frame per turn:
   * a clock read per frame was a measurable share of a reply's cost); from its second
   * frame on, the time counts. The first frame's own time is not counted, but its
   * messages are, so a turn still ends within 1024 messages and ~2 ms of clock.
   */
  #spentTurn(): boolean {
    if (this.#turn !== turnNumber) return false;
    if (this.#turnMessages >= TURN_BUDGET_MESSAGES) return true;
    const now = performance.now();
    if (this.#turnStart < 0) {
      this.#turnStart = now;
      return false;
    }
    return now - this.#turnStart >= TURN_BUDGET_MS;
  }

  #scheduleDrain(): void {
    if (this.#drainScheduled) return;
    this.#drainScheduled = true;
    setImmediate(drainLater, this);
  }

  /** @internal A later turn: process queued input, within the budget again. */
  drain(): void {
    this.#drainScheduled = false;
    const ws = this.#ws;
    let queue: Uint8Array[] | undefined;
    while ((queue = this.#queue) !== undefined && this.#ws === ws && !this.peer.closed) {
      if (this.#spentTurn()) return this.#scheduleDrain();
      const frame = queue.shift()!;
      if (queue.length === 0) this.#queue = undefined;
      this.#queuedBytes -= frame.byteLength;
      this.shared.heldTotal.bytes -= frame.byteLength;
      // Outside uWebSockets.js' callbacks: cork so the replies go out in one syscall.
      if (ws) ws.cork(() => this.#processCorked(frame));
      else this.#process(frame);
    }
  }

  /**
   * Forget queued input: the socket is gone. Nothing is lost: what was not processed was
   * not acknowledged, and the client re-sends it after the resume.
   */
  #dropQueue(): void {
    this.shared.heldTotal.bytes -= this.#queuedBytes;
    this.#queue = undefined;
    this.#queuedBytes = 0;
  }

  // ---- output -------------------------------------------------------------------

  #send(frame: Uint8Array): void {
    const ws = this.#ws;
    if (!ws) return;
    if (ws.getBufferedAmount() > this.shared.backpressure.hardBytes) {
      // The session stays: kept messages go out again after the client resumes.
      this.end(CloseCode.OVERLOADED, 'client reads too slowly');
      return;
    }
    this.shared.observer?.frameOut(frame.byteLength);
    // Inside the socket's own message callback it is corked already (uWebSockets.js corks
    // around every callback): the reply of a synchronous handler goes straight out.
    if (this.#corked) {
      ws.send(frame, true);
      return;
    }
    // Elsewhere (a microtask flush, a timer) an uncorked send costs a syscall of its own.
    corkWs = ws;
    corkFrame = frame;
    ws.cork(sendCorked);
    corkWs = undefined;
    corkFrame = undefined;
  }

  /**
   * Close the socket (the close handler tears it down). Every code but 4009 ends the
   * session: a slow reader only loses its socket, and resumes.
   */
  end(code: number, reason: string): void {
    const ws = this.#ws;
    if (ws && this.#endedWs === ws) return; // already closing with its own code
    if (code !== CloseCode.OVERLOADED) this.ending = true;
    if (!ws) return;
    this.#endedWs = ws; // the flush below may trip the hard limit and come back here
    this.peer.flush();
    ws.end(code, reason);
  }
  #endedWs: UwsSocket<SocketData> | undefined;

  /** A new socket took over this session; `preamble` is sent before anything else. */
  attach(ws: UwsSocket<SocketData>, preamble: Uint8Array): void {
    this.cancelExpiry();
    this.#ws = ws;
    this.ending = false;
    this.peer.attach(preamble);
  }

  /** The socket closed (uWebSockets.js close handler): it must not be touched after. */
  detach(): void {
    this.#ws = undefined;
    this.#dropQueue();
    this.peer.detach();
  }

  /** The session is over: free what it held. */
  dispose(): void {
    this.#dropQueue();
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
