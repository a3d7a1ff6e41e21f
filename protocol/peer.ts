// The call engine shared by server and client: pending calls by id, deadlines,
// cancellation, dispatch of incoming calls to handlers. No I/O: the transport hands it
// frames (`receive`) and gives it `send`; timers are injected so tests and other
// runtimes can drive them.

import { encode, decodeFrame, concatFrames } from './codec.ts';
import { ErrorCode, RpcError, toRpcError, type WireError } from './errors.ts';
import { DEFAULT_TIMEOUT_MS, resolveLimits, type Limits } from './limits.ts';
import {
  CANCEL,
  MAX_ID,
  NOTIFICATION,
  ProtocolViolation,
  REQUEST,
  RESPONSE,
  parseMessage,
  checkCall,
  depthExceeds,
  type Message,
} from './messages.ts';
import { checkParams, type ParamsSchema } from './schema.ts';
import { ACK } from './session.ts';
import { ACK_EVERY, UnackedReplies } from './unacked.ts';
import type { CallOptions } from './contract.ts';
import type { PeerObserver } from './observer.ts';

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const defaultTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** Context handed to a handler. Transports subclass it to add uid, server, client… */
export class InboundCall {
  #controller: AbortController | undefined;
  /** @internal Which socket (attach count) the call arrived on. */
  socketEpoch = 0;
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
  limits?: Partial<Limits>;
  timers?: Timers;
  /**
   * The peer broke the wire format. The transport should close the connection; the
   * engine has already answered the offending request if its id could be read.
   */
  onViolation?(violation: ProtocolViolation): void;
  /** A handler threw something that is not an RpcError (it went out as INTERNAL). */
  onHandlerError?(err: unknown, ctx: C): void;
  /** Extension notifications (`$name`) other than `$cancel`, handled by the transport. */
  onExtension?(method: string, params: unknown[]): void;
  /** Called before a request is dispatched; return an RpcError to refuse it (rate limits…). */
  admit?(method: string): RpcError | undefined;
  /**
   * True while the transport is backed up: new outgoing calls fail fast with OVERLOADED
   * and notifications are dropped (replies still go out: losing one would hang a caller).
   */
  congested?(): boolean;
  /**
   * Where replies are kept so a call re-sent after a reconnect gets its stored result
   * instead of running twice (lru-cache fits). Keys come from `replayKey`. Replies go
   * there only when they may have been lost: sent on a socket that dropped before the
   * peer acknowledged them (`$ack`), or finished while no socket was attached.
   * Without a store the peer does not take part in resume.
   */
  replay?: ReplayStore;
  /** Most replies kept waiting for the peer's `$ack` per socket. Default 16 384. */
  maxUnacked?: number;
  /** Key of call `id` in the replay store (e.g. session id + call id). Default: the id. */
  replayKey?(id: number): string | number;
  /** Start detached: nothing is sent until attach() (e.g. until a session is confirmed). */
  detached?: boolean;
  /** Metrics and traces: told how each incoming call ended and of dropped notifications. */
  observer?: PeerObserver<C>;
}

/** The part of lru-cache's LRUCache the engine uses. */
export interface ReplayStore {
  get(key: string | number): Uint8Array | undefined;
  set(key: string | number, value: Uint8Array): unknown;
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

interface Pending {
  /** The encoded request, re-sent on attach() after a reconnect. */
  bytes: Uint8Array;
  resolve(value: unknown): void;
  reject(err: RpcError): void;
  timer: unknown;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export class RpcPeer<C extends InboundCall = InboundCall> {
  readonly limits: Limits;
  #opts: PeerOptions<C>;
  #handlers: Map<string, AnyHandler>;
  #schemas: Map<string, ParamsSchema>;
  #timers: Timers;
  #timeoutMs: number;
  #outgoing = new Map<number, Pending>();
  #incoming = new Map<number, C>();
  #nextId = 0;
  #outbox: Uint8Array[] = [];
  #flushScheduled = false;
  #closed: RpcError | undefined;
  #attached: boolean;
  #everAttached: boolean;
  /** Replies sent on this socket not yet acknowledged; only once the peer has shown it acks. */
  #unacked: UnackedReplies | undefined;
  #peerAcks = false;
  /** Responses received on this socket, and how many of them we last acknowledged. */
  #received = 0;
  #ackedReceived = 0;
  /** Counts attach() calls: tells a call that arrived on an earlier socket. */
  #socketEpoch = 0;
  /** Set after a re-attach: only then can a request be a re-send. */
  #resumed = false;

  constructor(opts: PeerOptions<C>) {
    this.#opts = opts;
    this.limits = resolveLimits(opts.limits);
    this.#handlers = toMap(opts.handlers);
    this.#schemas = toMap(opts.schemas);
    this.#timers = opts.timers ?? defaultTimers;
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#attached = this.#everAttached = !opts.detached;
    if (opts.replay) this.#unacked = new UnackedReplies(opts.maxUnacked ?? 16_384);
  }

  /** Calls from here waiting for a reply. */
  get pendingOutgoing(): number {
    return this.#outgoing.size;
  }
  /** Calls from the peer whose handlers are still running. */
  get pendingIncoming(): number {
    return this.#incoming.size;
  }
  get closed(): boolean {
    return this.#closed !== undefined;
  }
  /** False between detach() and attach(): writes are dropped, state is kept. */
  get attached(): boolean {
    return this.#attached;
  }

  // ---- outgoing -------------------------------------------------------------------

  call(method: string, params: unknown[], opts?: CallOptions): Promise<unknown> {
    if (this.#closed) return Promise.reject(this.#closed);
    const invalid = outgoingError(method, params, this.limits);
    if (invalid) return Promise.reject(invalid);
    if (this.#outgoing.size >= this.limits.maxOutgoingPending)
      return Promise.reject(new RpcError(ErrorCode.OVERLOADED, `more than ${this.limits.maxOutgoingPending} calls pending`));
    if (this.#attached && this.#opts.congested?.())
      return Promise.reject(new RpcError(ErrorCode.OVERLOADED, 'the peer is not reading fast enough'));
    const signal = opts?.signal;
    if (signal?.aborted) return Promise.reject(new RpcError(ErrorCode.CANCELLED, 'call aborted before it was sent'));
    const id = this.#allocateId();
    let bytes: Uint8Array;
    try {
      bytes = encode([REQUEST, id, method, params]);
    } catch {
      return Promise.reject(new RpcError(ErrorCode.INVALID_PARAMS, 'params could not be encoded'));
    }
    // The receiver would drop the whole socket (1009) for a larger message; fail this call alone.
    if (bytes.byteLength > this.limits.maxMessageBytes)
      return Promise.reject(new RpcError(ErrorCode.INVALID_PARAMS, `request is ${bytes.byteLength} bytes, over the ${this.limits.maxMessageBytes}-byte limit`));
    return new Promise((resolve, reject) => {
      const timeoutMs = opts?.timeoutMs ?? this.#timeoutMs;
      const pending: Pending = {
        bytes,
        resolve,
        reject,
        timer: this.#timers.setTimeout(
          () => this.#giveUp(id, new RpcError(ErrorCode.TIMEOUT, `${method} timed out after ${timeoutMs} ms`)),
          // setTimeout fires at once past 2^31-1 ms (Infinity, or a deadline over 24.8 days).
          Math.min(timeoutMs, 0x7fffffff),
        ),
        signal,
        onAbort: undefined,
      };
      if (signal) {
        pending.onAbort = () => this.#giveUp(id, new RpcError(ErrorCode.CANCELLED, `${method} was cancelled`));
        signal.addEventListener('abort', pending.onAbort, { once: true });
      }
      this.#outgoing.set(id, pending);
      this.#write(bytes);
    });
  }

  /** Notifications dropped because the transport was congested or detached. */
  droppedNotifications = 0;

  /** Fire and forget. At most once: dropped while detached or congested. */
  notify(method: string, params: unknown[]): void {
    if (this.#closed) return;
    const invalid = outgoingError(method, params, this.limits);
    if (invalid) throw invalid;
    if (!this.#attached || this.#opts.congested?.()) {
      this.droppedNotifications++;
      this.#opts.observer?.dropped();
      return;
    }
    this.#write(encode([NOTIFICATION, method, params]));
  }

  #allocateId(): number {
    // ids are uint32, unique among this side's pending calls; wrap and skip live ones.
    let id = this.#nextId;
    while (this.#outgoing.has(id)) id = id === MAX_ID ? 0 : id + 1;
    this.#nextId = id === MAX_ID ? 0 : id + 1;
    return id;
  }

  /** The caller stops waiting (deadline or abort): settle locally, tell the callee. */
  #giveUp(id: number, err: RpcError): void {
    const p = this.#settle(id);
    if (!p) return;
    p.reject(err);
    this.notify(CANCEL, [id]);
  }

  #settle(id: number): Pending | undefined {
    const p = this.#outgoing.get(id);
    if (!p) return undefined;
    this.#outgoing.delete(id);
    this.#timers.clearTimeout(p.timer);
    if (p.onAbort) p.signal!.removeEventListener('abort', p.onAbort);
    return p;
  }

  // ---- incoming -------------------------------------------------------------------

  /** Feed one frame received from the transport. */
  receive(data: ArrayBuffer | Uint8Array): void {
    if (this.#closed) return;
    let values: unknown[];
    try {
      values = decodeFrame(data, this.limits.maxMessagesPerFrame);
    } catch (err) {
      this.#violation(err as ProtocolViolation);
      return;
    }
    for (const value of values) {
      let msg: Message;
      try {
        msg = parseMessage(value, this.limits);
      } catch (err) {
        const v = err as ProtocolViolation;
        if (!v.fatal) {
          // Over a limit but well-formed: refuse this call alone (a notification is dropped).
          if (v.id !== undefined && !this.#incoming.has(v.id)) this.#replyError(v.id, new RpcError(ErrorCode.INVALID_PARAMS, v.message));
          continue;
        }
        this.#violation(v);
        return;
      }
      this.#dispatch(msg);
      if (this.#closed) return;
    }
    // Replies of synchronous handlers go out now, inside the transport's own callback
    // (where uWebSockets.js has the socket corked), not a microtask later.
    if (this.#outbox.length > 0) this.#flush();
  }

  #violation(v: ProtocolViolation): void {
    if (v.id !== undefined && !this.#incoming.has(v.id))
      this.#reply(v.id, new RpcError(ErrorCode.PROTOCOL_ERROR, v.message).toWire(), null);
    this.#opts.onViolation?.(v);
  }

  #dispatch(msg: Message): void {
    switch (msg[0]) {
      case RESPONSE: {
        if (this.#unacked && ++this.#received - this.#ackedReceived >= ACK_EVERY) this.#sendAck();
        const p = this.#settle(msg[1]);
        if (!p) return; // late reply after deadline/cancel: dropped quietly
        if (msg[2] == null) p.resolve(msg[3]);
        else p.reject(RpcError.fromWire(msg[2]));
        return;
      }
      case REQUEST:
        this.#onRequest(msg[1], msg[2], msg[3]);
        return;
      case NOTIFICATION:
        this.#onNotification(msg[1], msg[2]);
        return;
    }
  }

  #onRequest(id: number, method: string, params: unknown[]): void {
    if (this.#incoming.has(id)) {
      // After a reconnect the caller re-sends what it has no reply for; this one is still
      // running and will answer when done. Otherwise a reused id is a broken peer.
      if (!this.#resumed) this.#violation(new ProtocolViolation(`request id ${id} is already pending`));
      return;
    }
    if (this.#resumed && this.#opts.replay) {
      const stored = this.#opts.replay.get(this.#replayKey(id));
      if (stored) return this.#answer(id, stored, this.#socketEpoch); // ran before the drop: same answer, not run twice
    }
    const handler = method.charCodeAt(0) === 36 /* $ */ ? undefined : this.#handlers.get(method);
    if (!handler) return this.#refuse(id, method, new RpcError(ErrorCode.METHOD_NOT_FOUND, `no method ${method}`));
    if (this.#incoming.size >= this.limits.maxIncomingPending)
      return this.#refuse(id, method, new RpcError(ErrorCode.OVERLOADED, `more than ${this.limits.maxIncomingPending} calls running`));
    const refused = this.#opts.admit?.(method);
    if (refused) return this.#refuse(id, method, refused);
    // handler(ctx, ...args): its declared arity minus ctx is the minimum param count.
    if (params.length < handler.length - 1)
      return this.#refuse(
        id,
        method,
        new RpcError(ErrorCode.INVALID_PARAMS, `${method} expects ${handler.length - 1} params, got ${params.length}`),
      );
    const ctx = this.#createContext(id, method);
    ctx.socketEpoch = this.#socketEpoch;
    const schema = this.#schemas.get(method);
    if (schema) {
      this.#incoming.set(id, ctx);
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

  /**
   * Run a handler. A call is tracked in #incoming (for $cancel, re-sends, disconnect)
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
      if (!tracked) this.#incoming.set(ctx.id, ctx);
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
    this.#incoming.delete(ctx.id);
    this.#respond(ctx, outcome, failed);
  }

  /** A request refused before any handler context existed (reported to the observer). */
  #refuse(id: number, method: string, err: RpcError): void {
    this.#opts.observer?.served(method, err.code, undefined);
    this.#replyError(id, err);
  }

  #respond(ctx: C, outcome: unknown, failed: boolean): void {
    if (this.#closed) return; // the handler itself ended the session
    if (!failed) {
      // Same reason: a result past the receiver's depth limit would cost the whole socket.
      if (depthExceeds(outcome, this.limits.maxDepth)) {
        this.#opts.onHandlerError?.(new RangeError(`result of ${ctx.method} nested deeper than ${this.limits.maxDepth}`), ctx);
        this.#opts.observer?.served(ctx.method, ErrorCode.INTERNAL, ctx);
        return this.#replyError(ctx.id, new RpcError(ErrorCode.INTERNAL, 'result nested too deep'));
      }
      let bytes: Uint8Array;
      try {
        bytes = encode([RESPONSE, ctx.id, null, outcome === undefined ? null : outcome]);
      } catch (err) {
        this.#opts.onHandlerError?.(err, ctx);
        this.#opts.observer?.served(ctx.method, ErrorCode.INTERNAL, ctx);
        return this.#replyError(ctx.id, new RpcError(ErrorCode.INTERNAL, 'result could not be encoded'));
      }
      // The receiver drops the socket on a message past its size limit; resumed, the stored
      // reply would be re-sent and drop it again, over and over. Fail this call instead.
      if (bytes.byteLength > this.limits.maxMessageBytes) {
        this.#opts.onHandlerError?.(new RangeError(`result of ${ctx.method} is ${bytes.byteLength} bytes, over the ${this.limits.maxMessageBytes}-byte limit`), ctx);
        this.#opts.observer?.served(ctx.method, ErrorCode.INTERNAL, ctx);
        return this.#replyError(ctx.id, new RpcError(ErrorCode.INTERNAL, `result over the ${this.limits.maxMessageBytes}-byte message limit`));
      }
      this.#opts.observer?.served(ctx.method, null, ctx);
      return this.#answer(ctx.id, bytes, ctx.socketEpoch);
    }
    this.#opts.observer?.served(ctx.method, outcome instanceof RpcError ? outcome.code : ErrorCode.INTERNAL, ctx);
    if (!(outcome instanceof RpcError)) this.#opts.onHandlerError?.(outcome, ctx);
    this.#answer(ctx.id, this.#encodeError(ctx.id, toRpcError(outcome)), ctx.socketEpoch);
  }

  /** Send a handler's reply, keeping a copy until the caller surely has it. */
  #answer(id: number, bytes: Uint8Array, epoch: number): void {
    // No socket, or the call came on a socket that has since dropped: the caller will
    // re-send it (maybe already has), so the store must hold the answer.
    if (!this.#attached || epoch !== this.#socketEpoch) this.#opts.replay?.set(this.#replayKey(id), bytes);
    if (!this.#attached) return;
    if (this.#peerAcks) this.#unacked!.push(id, bytes);
    this.#write(bytes);
  }

  #sendAck(): void {
    this.#ackedReceived = this.#received;
    this.#write(encode([NOTIFICATION, ACK, [this.#received]]));
  }

  #replayKey(id: number): string | number {
    return this.#opts.replayKey ? this.#opts.replayKey(id) : id;
  }

  #encodeError(id: number, err: RpcError): Uint8Array {
    try {
      return encode([RESPONSE, id, err.toWire(), null]);
    } catch {
      // error data that can't be encoded: send the code and message alone
      return encode([RESPONSE, id, { code: err.code, message: err.message }, null]);
    }
  }

  /** Refusals (unknown method, limits, bad params) are not stored: re-running them is harmless. */
  #replyError(id: number, err: RpcError): void {
    if (!this.#closed) this.#sendResponse(this.#encodeError(id, err));
  }

  #reply(id: number, error: WireError | null, result: unknown): void {
    if (!this.#closed) this.#sendResponse(encode([RESPONSE, id, error, result]));
  }

  /** A response not worth replaying still counts in the peer's `$ack` tally. */
  #sendResponse(bytes: Uint8Array): void {
    if (this.#attached && this.#peerAcks) this.#unacked!.skip();
    this.#write(bytes);
  }

  #onNotification(method: string, params: unknown[]): void {
    if (method.charCodeAt(0) === 36 /* $ */) {
      if (method === ACK) {
        // A fractional count would leave the FIFO between entries and lose replies to replay.
        if (!this.#unacked || !Number.isSafeInteger(params[0])) return;
        this.#peerAcks = true;
        this.#unacked.ack(params[0] as number);
        return;
      }
      if (method === CANCEL) {
        const ctx = this.#incoming.get(params[0] as number);
        if (ctx) {
          this.#incoming.delete(ctx.id);
          this.#opts.observer?.served(ctx.method, ErrorCode.CANCELLED, ctx);
          ctx.abort(new RpcError(ErrorCode.CANCELLED, 'caller cancelled the call'));
        }
        return;
      }
      this.#opts.onExtension?.(method, params);
      return;
    }
    const handler = this.#handlers.get(method);
    if (!handler) return; // notifications have no reply; unknown ones are ignored
    // The same arity and schema checks as a request: a schema guards its handler whichever
    // way the call comes. A refused notification is dropped (there is no reply to send).
    if (params.length < handler.length - 1) return;
    const schema = this.#schemas.get(method);
    if (schema)
      checkParams(schema, params).then(
        (checked) => this.#notifyHandler(method, handler, checked),
        () => {},
      );
    else this.#notifyHandler(method, handler, params);
  }

  #notifyHandler(method: string, handler: AnyHandler, params: unknown[]): void {
    if (this.#closed) return;
    const ctx = this.#createContext(-1, method);
    try {
      const result = handler(ctx, ...params);
      if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function')
        (result as PromiseLike<unknown>).then(undefined, (err) => this.#opts.onHandlerError?.(err, ctx));
    } catch (err) {
      this.#opts.onHandlerError?.(err, ctx);
    }
  }

  #createContext(id: number, method: string): C {
    return this.#opts.createContext ? this.#opts.createContext(id, method) : (new InboundCall(id, method) as C);
  }

  // ---- output batching ----------------------------------------------------------

  // Messages written in the same tick go out as one frame: replies to a pipelined burst
  // cost one WebSocket message instead of one each.
  #write(bytes: Uint8Array): void {
    if (!this.#attached) return; // nothing is lost: requests are re-sent, replies replayed
    this.#outbox.push(bytes);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(this.#flush);
    }
  }

  #flush = (): void => {
    this.#flushScheduled = false;
    const parts = this.#outbox;
    if (parts.length === 0) return;
    this.#outbox = [];
    // Never more messages or bytes in one frame than a receiver accepts: past either it
    // drops the socket (4002, or cut for size), failing every call on it. 300 calls made in
    // one tick would otherwise do that.
    const { maxMessagesPerFrame, maxMessageBytes } = this.limits;
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < parts.length; i++) {
      const size = parts[i]!.byteLength;
      if (i > start && (i - start >= maxMessagesPerFrame || bytes + size > maxMessageBytes)) {
        this.#opts.send(concatFrames(parts.slice(start, i)));
        start = i;
        bytes = 0;
      }
      bytes += size;
    }
    this.#opts.send(concatFrames(start === 0 ? parts : parts.slice(start)));
  };

  /** Send whatever is queued now instead of at the end of the tick. */
  flush(): void {
    this.#flush();
  }

  // ---- reconnect ------------------------------------------------------------------

  /**
   * The transport dropped but the session may resume: keep pending calls (their deadlines
   * still run) and running handlers; drop writes until attach().
   */
  detach(): void {
    if (!this.#attached) return;
    this.#attached = false;
    this.#outbox = [];
    // Replies the peer never confirmed may be lost with the socket: keep them for its re-sends.
    this.#unacked?.drain((id, bytes) => this.#opts.replay!.set(this.#replayKey(id), bytes));
    this.#peerAcks = false;
    this.#received = this.#ackedReceived = 0;
  }

  /**
   * A transport is (back) in place for this session: re-send every call still waiting for
   * a reply, in id order. The callee answers re-sent calls from its replay store or its
   * running handler, so none runs twice. `preamble` goes out first.
   */
  attach(preamble?: Uint8Array): void {
    if (this.#closed || this.#attached) return;
    this.#attached = true;
    this.#socketEpoch++;
    if (this.#everAttached) this.#resumed = true;
    this.#everAttached = true;
    // The preamble (e.g. the session confirmation) must precede the re-sent calls, so
    // the other side knows it resumed before it sees them. `$ack [0]` tells the peer we
    // acknowledge responses, so it may keep its replies for us only until we do.
    if (preamble) this.#write(preamble);
    if (this.#unacked) this.#sendAck();
    for (const p of this.#outgoing.values()) this.#write(p.bytes);
  }

  /**
   * The session is gone but this peer will serve a new one: pending calls reject with
   * `reason`, running handlers are aborted, and the next attach() starts fresh.
   */
  reset(reason: RpcError): void {
    this.#failAll(reason);
    this.#attached = false;
    this.#everAttached = false;
    this.#resumed = false;
  }

  // ---- teardown -------------------------------------------------------------------

  /**
   * The connection is gone: every pending outgoing call rejects with `reason`
   * (DISCONNECTED by default), every running handler's signal fires, and later calls
   * reject at once. Idempotent.
   */
  close(reason: RpcError = new RpcError(ErrorCode.DISCONNECTED, 'connection closed')): void {
    if (this.#closed) return;
    this.#closed = reason;
    this.#failAll(reason);
  }

  #failAll(reason: RpcError): void {
    this.#outbox = [];
    const outgoing = [...this.#outgoing.keys()];
    for (const id of outgoing) this.#settle(id)!.reject(reason);
    const incoming = [...this.#incoming.values()];
    this.#incoming.clear();
    for (const ctx of incoming) {
      this.#opts.observer?.served(ctx.method, reason.code, ctx);
      ctx.abort(reason);
    }
  }
}
