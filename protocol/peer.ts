// The call engine shared by server and client: dispatch of incoming calls to handlers,
// wired to the pieces beside it: pendingCalls.ts (calls from here waiting for answers),
// reliable.ts (exactly-once by sequence numbers across sockets), frameWriter.ts (per-tick
// batching). No I/O: the transport hands it frames (`receive`) and gives it `send`;
// timers are injected so tests and other runtimes can drive them.

import { encode, readFrame, type FrameMessage } from './codec.ts';
import { ErrorCode, RpcError, toRpcError, type WireError } from './errors.ts';
import { FrameWriter, type FrameSink } from './frameWriter.ts';
import { DEFAULT_LIMITS, DEFAULT_TIMEOUT_MS, resolveLimits, type Limits } from './limits.ts';
import {
  CANCEL,
  NOTIFICATION,
  ProtocolViolation,
  REQUEST,
  RESPONSE,
  parseMessage,
  checkCall,
  type Message,
} from './messages.ts';
import { PendingCalls, defaultTimers, type PendingCall, type Timers } from './pendingCalls.ts';
import { errorResponse, wireError } from './refusals.ts';
import { DEFAULT_MAX_UNACKED_BYTES, ReliableStream } from './reliable.ts';
import { checkParams, type ParamsSchema } from './schema.ts';
import { ACK, LIMITS, PING, PONG } from './session.ts';
import { TRACE } from './traceContext.ts';
import type { CallOptions } from './contract.ts';
import type { PeerObserver } from './observer.ts';

export type { Timers };

/** Context handed to a handler. Transports subclass it to add uid, server, client… */
export class InboundCall {
  #controller: AbortController | undefined;
  /** @internal Estimated bytes its params hold while it runs (charged to the connection). */
  held = 0;
  /** @internal Observability: when the call began (performance.now() ms) and its span. */
  startedAt = 0;
  span: unknown = undefined;
  constructor(
    /** Request id, or -1 for a notification. */
    readonly id: number,
    readonly method: string,
  ) {}

  /** Fires on caller cancel, caller deadline, or disconnect. Created on first use. */
  get signal(): AbortSignal {
    return (this.#controller ??= new AbortController()).signal;
  }

  /** @internal */
  abort(reason: RpcError): void {
    (this.#controller ??= new AbortController()).abort(reason);
  }
}

export type AnyHandler = (ctx: any, ...args: any[]) => unknown;

/** Bytes held across many peers (a server-wide cap). */
export interface HeldTotal {
  bytes: number;
  readonly max: number;
}

export interface PeerOptions<C extends InboundCall = InboundCall> {
  /** Deliver one frame (one or more concatenated messages) to the other side. */
  send(frame: Uint8Array): void;
  /** Local methods the other side may call (a Map may be shared by many peers). */
  handlers?: Record<string, AnyHandler> | Map<string, AnyHandler>;
  /** Optional params checks per method. */
  schemas?: Record<string, ParamsSchema> | Map<string, ParamsSchema>;
  /** Build the context object for one incoming call. */
  createContext?(id: number, method: string): C;
  /** Default deadline of outgoing calls. */
  timeoutMs?: number;
  /** What this side accepts (checked on receive). */
  limits?: Partial<Limits>;
  /**
   * What the other side accepts (checked on send): the spec's default limits, the floor
   * every receiver accepts, until the peer announces its own (`$session` limits, `$limits`).
   */
  peerLimits?: Partial<Limits>;
  timers?: Timers;
  /**
   * The peer broke the wire format (or stopped acknowledging). The transport should close
   * the connection (4002); the engine has already answered the offending request if its
   * id could be read.
   */
  onViolation?(violation: ProtocolViolation): void;
  /** A handler threw something that is not an RpcError (it went out as INTERNAL). */
  onHandlerError?(err: unknown, ctx: C): void;
  /** Extension notifications (`$name`) the engine does not handle itself. */
  onExtension?(method: string, params: unknown[]): void;
  /**
   * Charged for every incoming request and notification before anything is looked up, and
   * for every message that would otherwise be free but pairs with no work already paid
   * for: a `$trace` not right before a request, a repeated `$ack`, a `$cancel` of nothing
   * running, a response to no pending call. Return a wire error to refuse it (a frozen one,
   * shared: refusals must be cheap). A refused notification is dropped.
   */
  admit?(): WireError | undefined;
  /** A message was refused (rate limit, held bytes): the transport watches for floods. */
  onRefused?(): void;
  /**
   * True while the transport is backed up, given the bytes the engine has queued this tick
   * but not yet handed over: new outgoing calls fail fast with OVERLOADED and
   * notifications are dropped (replies still go out: losing one would hang a caller).
   */
  congested?(queuedBytes: number): boolean;
  /** Most bytes kept for the peer's `$ack`; an acking peer past it is a violation. Default 16 MiB. */
  maxUnackedBytes?: number;
  /** Most bytes one connection may hold (running calls' params, kept, queued input). Default 64 MiB. */
  maxHeldBytes?: number;
  /** Bytes held across every connection, with its cap; the engine adds and releases its share. */
  heldTotal?: HeldTotal;
  /** Bytes the transport holds for this connection (its queued input), counted in the cap. */
  heldByTransport?(): number;
  /** Start detached: nothing is sent until attach() (e.g. until a session is confirmed). */
  detached?: boolean;
  /** Metrics and traces: told how each incoming call ended and of dropped notifications. */
  observer?: PeerObserver<C> | undefined;
}

/** Own enumerable entries only: "constructor" or "__proto__" must never reach Object.prototype. */
export function toMap<V>(source: Record<string, V> | Map<string, V> | undefined): Map<string, V> {
  if (source instanceof Map) return source;
  const map = new Map<string, V>();
  for (const [k, v] of Object.entries(source ?? {})) if (v !== undefined) map.set(k, v);
  return map;
}

/**
 * Why a call or notification may not be sent, or undefined. The receiver closes the whole
 * socket (4002, final) on a method name or params past its limits; refuse the one message
 * here instead, by the same rules.
 */
export function outgoingError(method: string, params: unknown[], limits: Limits): RpcError | undefined {
  try {
    checkCall(method, params, limits);
    return undefined;
  } catch (err) {
    return new RpcError(ErrorCode.INVALID_PARAMS, (err as Error).message);
  }
}

/** Default cap on what one connection may hold. */
export const DEFAULT_MAX_HELD_BYTES = 64 * 1024 * 1024;

const OVERLOADED_HELD = wireError(ErrorCode.OVERLOADED, 'this connection holds too much: retry when calls finish');
/** Method label of a refusal whose method was never read (the scan refused the message). */
const OTHER = 'other';
const OVERLOADED_TOTAL = wireError(ErrorCode.OVERLOADED, 'the server holds too much: retry later');


/** Every peer's running calls until its first: an idle connection holds no Map. Only #track writes. */
const NO_RUNNING: ReadonlyMap<number, unknown> = new Map<number, unknown>();

/** What the engine keeps with a call of its own: its request's seq (for $cancel). */
type OutgoingData = number;

export class RpcPeer<C extends InboundCall = InboundCall> implements FrameSink {
  readonly limits: Limits;
  /** The other side's receive limits: what this side checks before it sends. */
  peerLimits: Limits;
  #opts: PeerOptions<C>;
  #handlers: Map<string, AnyHandler>;
  #schemas: Map<string, ParamsSchema>;
  #timeoutMs: number;
  /** Calls from here; made at the first call (most connections' first is far off or never). */
  #outgoingCalls: PendingCalls<OutgoingData> | undefined;
  /** Calls from the peer still running; the shared empty map until the first (#track). */
  #incoming = NO_RUNNING as Map<number, C>;
  #writer: FrameWriter;
  #reliable = new ReliableStream();
  #closed: RpcError | undefined;
  #attached: boolean;
  #everAttached = false;
  /** On a resumed socket, until the peer's first `$ack`: reliable messages wait (kept). */
  #resyncing = false;
  /** Cancels for requests the peer already had when this side gave up offline (made when first needed). */
  #owedCancels: number[] | undefined;
  /**
   * Kept messages not yet written on the current socket: the newest `#unwrittenBytes` of
   * the kept ones (writes on a socket go in seq order). Only what was written can be
   * blamed on a peer that does not acknowledge.
   */
  #writtenSeq = 0;
  #unwrittenBytes = 0;
  /** Bytes held by running calls' params (estimated). */
  #paramsHeld = 0;
  #maxUnacked: number;
  #maxHeld: number;
  #overloadedRunning: WireError | undefined;

  constructor(opts: PeerOptions<C>) {
    this.#opts = opts;
    this.limits = resolveLimits(opts.limits);
    this.peerLimits = resolveLimits(opts.peerLimits);
    this.#handlers = toMap(opts.handlers);
    this.#schemas = toMap(opts.schemas);
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#maxUnacked = opts.maxUnackedBytes ?? DEFAULT_MAX_UNACKED_BYTES;
    this.#maxHeld = opts.maxHeldBytes ?? DEFAULT_MAX_HELD_BYTES;
    this.#writer = new FrameWriter(this);
    this.#attached = !opts.detached;
    if (this.#attached) this.#startSocket();
  }

  /** Calls from here waiting for a reply. */
  get pendingOutgoing(): number {
    return this.#outgoingCalls?.size ?? 0;
  }
  /** Calls from the peer whose handlers are still running. */
  get pendingIncoming(): number {
    return this.#incoming.size;
  }
  get closed(): boolean {
    return this.#closed !== undefined;
  }
  /** False between detach() and attach(): writes are dropped (reliable ones kept), state is kept. */
  get attached(): boolean {
    return this.#attached;
  }
  /** Bytes retained for the peer's `$ack` (the chunks the kept copies are in). */
  get keptBytes(): number {
    return this.#reliable.keptBytes;
  }
  /** What this connection holds: running calls' params, kept messages, the transport's queued input. */
  get heldBytes(): number {
    return this.#paramsHeld + this.#reliable.keptBytes + (this.#opts.heldByTransport?.() ?? 0);
  }
  /** The peer takes part in acknowledgements and resume (it sent `$ack` first). */
  get peerAcks(): boolean {
    return this.#reliable.mode === 'acking';
  }

  /** The peer announced its receive limits (`$session` limits, `$limits`). */
  setPeerLimits(limits: Partial<Limits>): void {
    const clean: Partial<Limits> = {};
    for (const [k, v] of Object.entries(limits)) if (typeof v === 'number' && v >= 1 && k in DEFAULT_LIMITS) (clean as Record<string, number>)[k] = v;
    this.peerLimits = resolveLimits(clean);
  }

  // ---- outgoing -------------------------------------------------------------------

  call(method: string, params: unknown[], opts?: CallOptions): Promise<unknown> {
    if (this.#closed) return Promise.reject(this.#closed);
    const invalid = outgoingError(method, params, this.peerLimits);
    if (invalid) return Promise.reject(invalid);
    const outgoing = (this.#outgoingCalls ??= new PendingCalls<OutgoingData>({
      timers: this.#opts.timers ?? defaultTimers,
      onGiveUp: (call) => this.#cancelRemote(call),
    }));
    if (outgoing.size >= this.limits.maxOutgoingPending)
      return Promise.reject(new RpcError(ErrorCode.OVERLOADED, `more than ${this.limits.maxOutgoingPending} calls pending`));
    if (this.#attached && this.#opts.congested?.(this.#writer.queuedBytes))
      return Promise.reject(new RpcError(ErrorCode.OVERLOADED, 'the peer is not reading fast enough'));
    const signal = opts?.signal;
    if (signal?.aborted) return Promise.reject(new RpcError(ErrorCode.CANCELLED, 'call aborted before it was sent'));
    const id = outgoing.allocateId();
    let bytes: Uint8Array;
    try {
      // Checked by the scan the receiver runs: a Set, a Map, a BigInt or params past the
      // peer's limits fail here. #sendReliable keeps a copy.
      bytes = encode([REQUEST, id, method, params], this.peerLimits);
    } catch (err) {
      return Promise.reject(err as RpcError);
    }
    // The receiver would drop the whole socket (1009) for a larger message; fail this call alone.
    if (bytes.byteLength > this.peerLimits.maxMessageBytes)
      return Promise.reject(new RpcError(ErrorCode.INVALID_PARAMS, `request is ${bytes.byteLength} bytes, over the ${this.peerLimits.maxMessageBytes}-byte limit`));
    // Numbered and written before it is tracked: nothing is sent before this tick's flush,
    // so no answer can arrive first.
    return outgoing.add(id, method, this.#sendReliable(bytes, id), opts?.timeoutMs ?? this.#timeoutMs, signal);
  }

  /** Notifications dropped because the transport was congested, detached or resyncing. */
  droppedNotifications = 0;

  /** Fire and forget. At most once: dropped while detached, resyncing or congested. */
  notify(method: string, params: unknown[]): void {
    if (this.#closed) return;
    const invalid = outgoingError(method, params, this.peerLimits);
    if (invalid) throw invalid;
    if (!this.#attached || this.#resyncing || this.#opts.congested?.(this.#writer.queuedBytes)) {
      this.droppedNotifications++;
      this.#opts.observer?.dropped();
      return;
    }
    this.#writer.write(encode([NOTIFICATION, method, params], this.peerLimits)); // throws RpcError INVALID_PARAMS
  }

  /** Send `$ack [received]` now if anything arrived since the last one (heartbeats). */
  ackIfChanged(): void {
    if (this.#attached && this.#reliable.received !== this.#reliable.ackedReceived) this.#sendAck();
  }

  /** Heartbeat: `$ack` (if due) then `$ping` (client) or `$pong` (server). */
  heartbeat(method: typeof PING | typeof PONG): void {
    if (!this.#attached || this.#closed) return;
    this.ackIfChanged();
    this.#writer.write(encode([NOTIFICATION, method, []]));
  }

  /**
   * A request or response: numbered, kept (owned bytes) until the peer acknowledges it,
   * written now unless there is no socket or the socket waits for its resync.
   */
  #sendReliable(bytes: Uint8Array, requestId: number): number {
    const reliable = this.#reliable;
    if (reliable.mode === 'plain') {
      if (this.#attached && !this.#resyncing) this.#writer.write(bytes);
      return reliable.push(bytes, requestId);
    }
    // A copy is kept for a re-send (reliable.ts copies it into chunks of its own); the
    // encoder's bytes go out now. They stay valid through this tick's flush, and they are
    // off the V8 heap already: handing the socket a small on-heap copy made V8 move it out
    // (a malloc and an ArrayBuffer per message, once the largest single cost of a call).
    const before = reliable.keptBytes;
    const seq = reliable.push(bytes, requestId);
    this.#chargeTotal(reliable.keptBytes - before);
    if (this.#attached && !this.#resyncing) this.#writeKept(seq, bytes);
    else this.#unwrittenBytes += bytes.byteLength;
    return seq;
  }

  #writeKept(seq: number, bytes: Uint8Array): void {
    this.#writtenSeq = seq;
    this.#writer.write(bytes);
  }

  /** @internal FrameSink: the writer hands a frame to the transport. */
  sendFrame(frame: Uint8Array): void {
    this.#opts.send(frame);
  }

  /**
   * @internal FrameSink, after each flush: past maxUnackedBytes written and not
   * acknowledged, exactly-once can't be kept silently (a reader that far behind has
   * normally been cut 4009 by the transport's hard limit first, which keeps the session).
   */
  flushed(): void {
    const reliable = this.#reliable;
    if (!this.#attached || reliable.mode === 'plain' || reliable.keptBytes - this.#unwrittenBytes <= this.#maxUnacked) return;
    if (reliable.mode === 'unknown') {
      // The peer never said it acknowledges: treat it as a plain msgpack-rpc peer.
      this.#chargeTotal(-reliable.becomePlain());
      this.#unwrittenBytes = 0;
      return;
    }
    this.#opts.onViolation?.(new ProtocolViolation(`peer is not acknowledging: over ${this.#maxUnacked} bytes unacknowledged`));
  }

  /** The caller gave up on `call` (deadline or abort): tell the callee, now or after the resync. */
  #cancelRemote(call: PendingCall<OutgoingData>): void {
    const seq = call.data;
    if (this.#attached && !this.#resyncing) {
      this.#writer.write(encode([NOTIFICATION, CANCEL, [call.id]]));
    } else if (this.#reliable.isKept(seq)) {
      (this.#reliable.cancelOwed ??= new Set()).add(seq); // goes out right after the request's re-send
    } else if (this.#reliable.mode === 'acking') {
      (this.#owedCancels ??= []).push(call.id); // the peer has the request; tell it after the resync
    }
  }

  #chargeTotal(delta: number): void {
    const total = this.#opts.heldTotal;
    if (total) total.bytes += delta;
  }

  // ---- incoming -------------------------------------------------------------------

  /** Feed one frame received from the transport. Returns how many messages it held. */
  receive(data: ArrayBuffer | Uint8Array): number {
    if (this.#closed) return 0;
    let messages: FrameMessage[];
    try {
      messages = readFrame(data, this.limits);
    } catch (err) {
      this.#violation(err as ProtocolViolation);
      return 0;
    }
    const reliable = this.#reliable;
    reliable.bytesSinceAck += data.byteLength;
    this.#writer.hold();
    try {
      return this.#receiveMessages(messages);
    } finally {
      this.#writer.release();
    }
  }

  #receiveMessages(messages: FrameMessage[]): number {
    const reliable = this.#reliable;
    const count = messages.length;
    for (let i = 0; i < count; i++) {
      const m = messages[i]!;
      if (m.refused !== undefined) {
        // The scan refused it undecoded (a limit, a type Volley does not carry); the
        // connection stays when the message can be answered or dropped alone.
        if (m.kind === REQUEST && m.id >= 0) {
          this.#refuseRequest(m.id, m.refused);
          if (this.#closed) return count;
          continue;
        }
        // A notification, or a message type a later version adds (SPEC §11): dropped, but it pays.
        if (m.kind >= NOTIFICATION) {
          if (this.#opts.admit?.()) this.#opts.onRefused?.();
          continue;
        }
        if (m.kind === RESPONSE && m.id >= 0) {
          this.#dispatch([RESPONSE, m.id, { code: ErrorCode.PROTOCOL_ERROR, message: `response refused: ${m.refused}` }, null], 0);
          if (this.#closed) return count;
          continue;
        }
        this.#violation(new ProtocolViolation(m.refused));
        return count;
      }
      let msg: Message;
      try {
        msg = parseMessage(m.value, this.limits);
      } catch (err) {
        const v = err as ProtocolViolation;
        if (!v.fatal) {
          // Over a limit but well-formed: refuse this call alone (a notification is dropped).
          // A message type a later version adds (SPEC §11) is skipped the same way: it pays
          // like a notification, is not counted as received and is not answered.
          if (v.id !== undefined) this.#refuseRequest(v.id, v.message);
          else if (this.#opts.admit?.()) this.#opts.onRefused?.();
          if (this.#closed) return count;
          continue;
        }
        this.#violation(v);
        return count;
      }
      this.#dispatch(msg, m.cost, messages, i);
      if (this.#closed) return count;
    }
    const queuedBefore = this.#writer.queued;
    if (reliable.mode !== 'plain' && reliable.ackDue() && this.#attached) this.#sendAck();
    // Replies of synchronous handlers go out now, inside the transport's own callback
    // (where uWebSockets.js has the socket corked), not a microtask later. An `$ack` alone
    // waits for the microtask flush, to ride with the replies of async handlers.
    if (queuedBefore > 0) this.#writer.flush();
    return count;
  }

  /**
   * A request refused without running (past a limit, or a value Volley does not carry).
   * It still counts as received (its error response is its answer) and still pays the
   * rate limit, so a flood of invalid calls is charged like any other.
   */
  #refuseRequest(id: number, reason: string): void {
    this.#decidePlain();
    this.#reliable.count();
    if (this.#incoming.has(id)) return this.#duplicate(id);
    const limited = this.#opts.admit?.();
    if (limited) return this.#refuse(id, limited, OTHER);
    this.#reject(id, wireError(ErrorCode.INVALID_PARAMS, reason), OTHER);
  }

  #violation(v: ProtocolViolation): void {
    if (v.id !== undefined && !this.#incoming.has(v.id)) this.#replyError(v.id, wireError(ErrorCode.PROTOCOL_ERROR, v.message));
    this.#opts.onViolation?.(v);
  }

  #duplicate(id: number): void {
    // With sequence numbers nothing arrives twice: a request whose id is still running
    // here is a broken peer (SPEC §3), not a re-send.
    this.#violation(new ProtocolViolation(`request id ${id} is already pending`));
  }

  /** A reliable message or a plain notification came before any `$ack`: a plain peer. */
  #decidePlain(): void {
    if (this.#reliable.mode !== 'unknown') return;
    this.#chargeTotal(-this.#reliable.becomePlain());
    this.#unwrittenBytes = 0;
  }

  /** `frame` and `at`: the WebSocket message this one came in, and where (a `$trace` looks at what follows it). */
  #dispatch(msg: Message, cost: number, frame?: FrameMessage[], at = 0): void {
    switch (msg[0]) {
      case RESPONSE: {
        this.#decidePlain();
        this.#reliable.count();
        const id = msg[1];
        const calls = this.#outgoingCalls;
        // Free when it settles a call of ours (we asked for it). One that settles nothing
        // (late after a deadline or cancel, or never asked for) is dropped, and pays: a flood
        // of them is refused like any other (issue 20 #4).
        if (calls !== undefined && (msg[2] == null ? calls.resolve(id, msg[3]) : calls.has(id) && calls.reject(id, RpcError.fromWire(msg[2])))) return;
        this.#pay();
        return;
      }
      case REQUEST:
        this.#decidePlain();
        this.#reliable.count();
        this.#onRequest(msg[1], msg[2], msg[3], cost);
        return;
      case NOTIFICATION:
        this.#onNotification(msg[1], msg[2], cost, frame, at);
        return;
    }
  }

  /** Charge one message the rate limit would otherwise not see: false if refused (then counted as a refusal). */
  #pay(): boolean {
    if (this.#opts.admit?.() === undefined) return true;
    this.#opts.onRefused?.();
    return false;
  }

  /** Refused: answer with a pre-built error, and let the transport count it. */
  #refuse(id: number, error: WireError, method: string): void {
    this.#opts.observer?.served(method, error.code, undefined);
    this.#replyError(id, error);
    this.#opts.onRefused?.();
  }

  /** Refused as invalid (no such method, too few params, past a limit): answered and observed, not a flood signal. */
  #reject(id: number, error: WireError, method: string): void {
    this.#opts.observer?.served(method, error.code, undefined);
    this.#replyError(id, error);
  }

  /** Room under this connection's and the server's caps for `cost` more bytes? */
  #overHeld(cost: number): WireError | undefined {
    if (this.heldBytes + cost > this.#maxHeld) return OVERLOADED_HELD;
    const total = this.#opts.heldTotal;
    if (total && total.bytes + cost > total.max) return OVERLOADED_TOTAL;
    return undefined;
  }

  #onRequest(id: number, method: string, params: unknown[], cost: number): void {
    if (this.#incoming.has(id)) return this.#duplicate(id);
    // Charged before anything is looked up: unknown and `$` methods pay too.
    const refused = this.#opts.admit?.() ?? this.#overHeld(cost);
    if (refused) return this.#refuse(id, refused, method);
    const handler = method.charCodeAt(0) === 36 /* $ */ ? undefined : this.#handlers.get(method);
    if (!handler) return this.#reject(id, { code: ErrorCode.METHOD_NOT_FOUND, message: `no method ${method}` }, method);
    if (this.#incoming.size >= this.limits.maxIncomingPending)
      return this.#refuse(id, (this.#overloadedRunning ??= wireError(ErrorCode.OVERLOADED, `more than ${this.limits.maxIncomingPending} calls running`)), method);
    // handler(ctx, ...args): its declared arity minus ctx is the minimum param count.
    if (params.length < handler.length - 1)
      return this.#reject(id, { code: ErrorCode.INVALID_PARAMS, message: `${method} expects ${handler.length - 1} params, got ${params.length}` }, method);
    const ctx = this.#createContext(id, method);
    ctx.held = cost;
    const schema = this.#schemas.get(method);
    if (schema) {
      this.#track(ctx);
      checkParams(schema, params).then(
        (checked) => {
          if (this.#incoming.get(id) === ctx) this.#invoke(ctx, handler, checked, true);
        },
        (err) => this.#finish(ctx, err, true),
      );
    } else {
      this.#invoke(ctx, handler, params, false);
    }
  }

  /** A call is running: in #incoming (for $cancel and duplicates), its params held. */
  #track(ctx: C): void {
    if (this.#incoming === NO_RUNNING) this.#incoming = new Map();
    this.#incoming.set(ctx.id, ctx);
    this.#paramsHeld += ctx.held;
    this.#chargeTotal(ctx.held);
  }

  #untrack(ctx: C): void {
    this.#incoming.delete(ctx.id);
    this.#paramsHeld -= ctx.held;
    this.#chargeTotal(-ctx.held);
  }

  /**
   * Run a handler. A call is tracked in #incoming (for $cancel, duplicates, disconnect)
   * only while it can still be cancelled, i.e. once it returned a promise: a handler
   * that answers synchronously skips the map entirely, four Map operations fewer.
   */
  #invoke(ctx: C, handler: AnyHandler, params: unknown[], tracked: boolean): void {
    let result: unknown;
    try {
      result = handler(ctx, ...params);
    } catch (err) {
      return tracked ? this.#finish(ctx, err, true) : this.#respond(ctx, err, true);
    }
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      if (!tracked) this.#track(ctx);
      (result as PromiseLike<unknown>).then(
        (value) => this.#finish(ctx, value, false),
        (err) => this.#finish(ctx, err, true),
      );
    } else if (tracked) {
      this.#finish(ctx, result, false);
    } else {
      this.#respond(ctx, result, false);
    }
  }

  #finish(ctx: C, outcome: unknown, failed: boolean): void {
    // Gone from the map means cancelled or disconnected: the caller no longer listens.
    if (this.#incoming.get(ctx.id) !== ctx) return;
    this.#untrack(ctx);
    this.#respond(ctx, outcome, failed);
  }

  #respond(ctx: C, outcome: unknown, failed: boolean): void {
    const observer = this.#opts.observer;
    if (this.#closed) {
      // The handler itself ended the session (an untracked call: #failAll did not see it).
      observer?.served(ctx.method, this.#closed.code, ctx);
      return;
    }
    if (!failed) {
      let bytes: Uint8Array;
      try {
        // The scan the receiver runs checks it here: a result past the peer's limits (depth,
        // values) or of a type it refuses (an Error with a deep `cause`, a Set, a BigInt)
        // would otherwise cost the caller its socket. #sendReliable keeps a copy.
        bytes = encode([RESPONSE, ctx.id, null, outcome], this.peerLimits);
      } catch (err) {
        this.#opts.onHandlerError?.(new TypeError(`result of ${ctx.method} can't be sent: ${(err as Error).message}`), ctx);
        observer?.served(ctx.method, ErrorCode.INTERNAL, ctx);
        return this.#replyError(ctx.id, { code: ErrorCode.INTERNAL, message: 'result could not be encoded' });
      }
      // The receiver drops the socket on a message past its size limit; re-sent after a
      // resume it would drop it again, over and over. Fail this call instead.
      if (bytes.byteLength > this.peerLimits.maxMessageBytes) {
        this.#opts.onHandlerError?.(new RangeError(`result of ${ctx.method} is ${bytes.byteLength} bytes, over the ${this.peerLimits.maxMessageBytes}-byte limit`), ctx);
        observer?.served(ctx.method, ErrorCode.INTERNAL, ctx);
        return this.#replyError(ctx.id, { code: ErrorCode.INTERNAL, message: `result over the ${this.peerLimits.maxMessageBytes}-byte message limit` });
      }
      observer?.served(ctx.method, null, ctx);
      this.#sendReliable(bytes, -1);
      return;
    }
    observer?.served(ctx.method, outcome instanceof RpcError ? outcome.code : ErrorCode.INTERNAL, ctx);
    if (!(outcome instanceof RpcError)) this.#opts.onHandlerError?.(outcome, ctx);
    this.#replyError(ctx.id, toRpcError(outcome).toWire());
  }

  /** An error response: reliable like any response (the caller waits for it). */
  #replyError(id: number, error: WireError): void {
    if (this.#closed) return;
    let bytes: Uint8Array;
    try {
      bytes = errorResponse(id, error);
    } catch {
      // error data that can't be encoded: send the code and message alone
      bytes = errorResponse(id, { code: error.code, message: error.message });
    }
    this.#sendReliable(bytes, -1);
  }

  #sendAck(): void {
    this.#writer.write(encode([NOTIFICATION, ACK, [this.#reliable.acked()]]));
  }

  #onNotification(method: string, params: unknown[], cost: number, frame: FrameMessage[] | undefined, at: number): void {
    if (method.charCodeAt(0) === 36 /* $ */) {
      // The protocol's own messages are free only while each pairs with work the rate limit
      // already bounds; any other pays like a notification (issue 20 #4: one client sent
      // 10.4 M free `$trace` in 8 s and was never cut).
      if (method === ACK) return this.#receiveAck(params[0]);
      if (method === CANCEL) return this.#receiveCancel(params[0]);
      // A `$trace` annotates the request right after it (SPEC §10), which pays for both.
      if (method === TRACE && frame?.[at + 1]?.kind === REQUEST) return this.#opts.onExtension?.(method, params);
      // The rest pays: `$ping` (answered with a `$pong`), `$pong`, `$limits`, `$session`,
      // unknown ones, and a `$trace` that annotates nothing (dropped unread).
      if (!this.#pay() || method === TRACE) return;
      this.#opts.onExtension?.(method, params);
      return;
    }
    this.#decidePlain();
    if (this.#opts.admit?.() || this.#overHeld(cost)) return this.#opts.onRefused?.();
    const handler = this.#handlers.get(method);
    if (!handler) return; // notifications have no reply; unknown ones are ignored
    // The same arity and schema checks as a request: a schema guards its handler whichever
    // way the call comes. A refused notification is dropped (there is no reply to send).
    if (params.length < handler.length - 1) return;
    // Its params are held like a running call's until its handler settles: notifications
    // have no running-calls cap, so the held-bytes budget is what bounds them.
    this.#holdParams(cost);
    const schema = this.#schemas.get(method);
    if (schema)
      checkParams(schema, params).then(
        (checked) => this.#notifyHandler(method, handler, checked, cost),
        () => this.#holdParams(-cost),
      );
    else this.#notifyHandler(method, handler, params, cost);
  }

  /** `$ack`: free when it says something new (or opens a socket's resync); a repeat pays. */
  #receiveAck(n: unknown): void {
    const reliable = this.#reliable;
    const news = reliable.mode === 'unknown' || (reliable.mode === 'acking' && (this.#resyncing || n !== reliable.peerAcked));
    if (news || this.#pay()) this.#onAck(n);
  }

  /** `$cancel`: free when it stops a running call (one the request paid for); else it pays. */
  #receiveCancel(id: unknown): void {
    const ctx = this.#incoming.get(id as number);
    if (ctx === undefined) {
      this.#pay();
      return;
    }
    this.#untrack(ctx);
    this.#opts.observer?.served(ctx.method, ErrorCode.CANCELLED, ctx);
    ctx.abort(new RpcError(ErrorCode.CANCELLED, 'caller cancelled the call'));
  }

  #holdParams(cost: number): void {
    this.#paramsHeld += cost;
    this.#chargeTotal(cost);
  }

  #onAck(n: unknown): void {
    const reliable = this.#reliable;
    if (reliable.mode === 'plain') return; // it decided not to take part; late acks mean nothing
    const invalid = reliable.invalidAck(n);
    if (invalid) return this.#violation(new ProtocolViolation(invalid));
    if (reliable.mode === 'unknown') reliable.mode = 'acking';
    const before = reliable.keptBytes;
    reliable.ack(n as number, (seq, byteLength, requestId) => {
      // The peer had this request when we gave it up offline: its cancel is owed.
      if (reliable.cancelOwed?.delete(seq)) (this.#owedCancels ??= []).push(requestId);
      if (seq > this.#writtenSeq) this.#unwrittenBytes -= byteLength;
    });
    this.#chargeTotal(reliable.keptBytes - before);
    if (this.#resyncing) this.#resync();
  }

  /**
   * The peer's first `$ack [n]` on a resumed socket arrived (kept ≤ n are dropped): re-send
   * what is left, in seq order, each given-up request followed by its `$cancel`.
   */
  #resync(): void {
    this.#resyncing = false;
    this.#unwrittenBytes = 0;
    const reliable = this.#reliable;
    reliable.forEachKept((seq, bytes, requestId) => {
      this.#writeKept(seq, bytes);
      if (reliable.cancelOwed?.delete(seq)) this.#writer.write(encode([NOTIFICATION, CANCEL, [requestId]]));
    });
    const owed = this.#owedCancels;
    if (owed === undefined) return;
    this.#owedCancels = undefined;
    // An id reallocated since belongs to a new call: its cancel would hit the wrong one.
    for (const id of owed) if (!this.#outgoingCalls?.has(id)) this.#writer.write(encode([NOTIFICATION, CANCEL, [id]]));
  }

  #notifyHandler(method: string, handler: AnyHandler, params: unknown[], cost: number): void {
    if (this.#closed) return this.#holdParams(-cost);
    const ctx = this.#createContext(-1, method);
    try {
      const result = handler(ctx, ...params);
      if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
        (result as PromiseLike<unknown>).then(
          () => this.#holdParams(-cost),
          (err) => {
            this.#holdParams(-cost);
            this.#opts.onHandlerError?.(err, ctx);
          },
        );
        return;
      }
    } catch (err) {
      this.#opts.onHandlerError?.(err, ctx);
    }
    this.#holdParams(-cost);
  }

  #createContext(id: number, method: string): C {
    return this.#opts.createContext ? this.#opts.createContext(id, method) : (new InboundCall(id, method) as C);
  }

  /** Send whatever is queued now instead of at the end of the tick. */
  flush(): void {
    this.#writer.flush();
  }

  /** Bytes written this tick and not yet handed to the transport. */
  get queuedBytes(): number {
    return this.#writer.queuedBytes;
  }

  // ---- sockets ------------------------------------------------------------------

  /**
   * The transport dropped but the session may resume: keep pending calls (their deadlines
   * still run), running handlers and kept messages; drop writes until attach().
   */
  detach(): void {
    if (!this.#attached) return;
    this.#attached = false;
    this.#resyncing = false;
    this.#writer.clear();
    // Whatever is kept must be written again on the next socket.
    this.#writtenSeq = this.#reliable.peerAcked;
    this.#unwrittenBytes = this.#reliable.keptBytes;
  }

  /**
   * A transport is (back) in place for this session. `preamble` goes out first (e.g. the
   * session confirmation), then `$ack [received]`. On the session's first socket the kept
   * messages (calls made before it) go out at once; on a resumed one they wait for the
   * peer's first `$ack` (see #resync).
   */
  attach(preamble?: Uint8Array, afterAck?: Uint8Array): void {
    if (this.#closed || this.#attached) return;
    this.#attached = true;
    if (preamble) this.#writer.write(preamble);
    this.#startSocket(afterAck);
  }

  #startSocket(afterAck?: Uint8Array): void {
    const resumed = this.#everAttached;
    this.#everAttached = true;
    if (this.#reliable.mode === 'plain') return;
    this.#sendAck();
    if (afterAck) this.#writer.write(afterAck);
    if (resumed) {
      this.#resyncing = true;
      return;
    }
    this.#resync(); // as if the peer had said `$ack [0]`: everything kept goes out
  }

  /**
   * `$limits` announcing this side's receive limits, or undefined when they are the
   * floor (SPEC §8). Sent right after the first `$ack` of a session: attach(_, this).
   */
  limitsAnnouncement(keys: readonly (keyof Limits)[]): Uint8Array | undefined {
    const differ: Partial<Limits> = {};
    let any = false;
    for (const k of keys)
      if (this.limits[k] !== DEFAULT_LIMITS[k]) {
        differ[k] = this.limits[k];
        any = true;
      }
    return any ? encode([NOTIFICATION, LIMITS, [differ]]) : undefined;
  }

  /**
   * The session is gone but this peer will serve a new one: pending calls reject with
   * `reason`, running handlers are aborted, kept messages are freed, and the next
   * attach() starts a fresh session.
   */
  reset(reason: RpcError): void {
    this.#failAll(reason);
    this.#attached = false;
    this.#everAttached = false;
    this.#resyncing = false;
  }

  // ---- teardown -------------------------------------------------------------------

  /**
   * The connection is gone: every pending outgoing call rejects with `reason`
   * (DISCONNECTED by default), every running handler's signal fires, kept messages are
   * freed, and later calls reject at once. Idempotent.
   */
  close(reason: RpcError = new RpcError(ErrorCode.DISCONNECTED, 'connection closed')): void {
    if (this.#closed) return;
    this.#closed = reason;
    this.#failAll(reason);
  }

  #failAll(reason: RpcError): void {
    this.#writer.clear();
    this.#outgoingCalls?.failAll(reason);
    const incoming = [...this.#incoming.values()];
    for (const ctx of incoming) this.#untrack(ctx);
    const observer = this.#opts.observer;
    for (const ctx of incoming) {
      observer?.served(ctx.method, reason.code, ctx);
      ctx.abort(reason);
    }
    this.#chargeTotal(-this.#reliable.clear());
    this.#reliable = new ReliableStream();
    this.#owedCancels = undefined;
    this.#writtenSeq = 0;
    this.#unwrittenBytes = 0;
  }
}
