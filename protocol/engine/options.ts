// What a transport gives the call engine: its I/O, its handlers, its limits and budgets,
// and the hooks through which it watches (rate limit, congestion, violations, metrics).

import type { RpcError, WireError } from '../errors.ts';
import type { Limits } from '../limits.ts';
import type { ProtocolViolation } from '../messages.ts';
import type { PeerObserver } from '../observer.ts';
import type { ParamsSchema } from '../schema.ts';
import type { Timers } from './pendingCalls.ts';

/** Context handed to a handler. Transports subclass it to add uid, server, client… */
export class InboundCall {
  #controller: AbortController | undefined;
  /** @internal Estimated bytes its params hold while it runs (charged to the connection). */
  held = 0;
  /** @internal Observability: when the call began (performance.now() ms) and its span. */
  startedAt = 0;
  /** The call's OpenTelemetry span while tracing is on, else undefined. */
  span: unknown = undefined;
  constructor(
    /** Request id, or -1 for a notification. */
    readonly id: number,
    /** The method called. */
    readonly method: string,
  ) {}

  /** Fires on caller cancel, caller deadline, or disconnect. Created on first use. */
  get signal(): AbortSignal {
    return (this.#controller ??= new AbortController()).signal;
  }

  /**
   * @internal True for a call this engine does not report to its observer: one that runs on
   * another node (a session moved here: engine/handover.ts), or the engine's own stream
   * traffic (an item waiting for its reader, an upload being read: streams.ts, uploads.ts).
   */
  get unobserved(): boolean {
    return false;
  }

  /** @internal */
  abort(reason: RpcError): void {
    (this.#controller ??= new AbortController()).abort(reason);
  }
}

/** A handler as the engine holds it: the call's context first, then the params. */
export type AnyHandler = (ctx: any, ...args: any[]) => unknown;

/** Bytes held across many peers (a server-wide cap). */
export interface HeldTotal {
  /** Bytes held now. */
  bytes: number;
  /** The cap. */
  readonly max: number;
}

/** What an {@link RpcPeer} (the call engine of one connection) takes. */
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
  /** Timers and clock for deadlines (tests inject fake ones); default the global ones and Date.now. */
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
