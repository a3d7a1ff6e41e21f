// Spans for calls in both directions, through the OpenTelemetry API the application passes
// in (`import * as otel from '@opentelemetry/api'`). Nothing here imports it: the API is an
// optional peer dependency, and without an SDK registered its tracer makes no-op spans.
// Shared by the server and the client, so the types below are the few parts of the API
// used, written out structurally.

import { TRACE, formatTraceparent, parseTraceparent, type TraceParent } from './traceContext.ts';

/* eslint-disable @typescript-eslint/no-explicit-any */
/** The part of an OpenTelemetry `Span` used. */
export interface OtelSpan {
  /** The span's ids, flags and trace state. */
  spanContext(): {
    /** 32 hex digits. */
    traceId: string;
    /** 16 hex digits. */
    spanId: string;
    /** W3C trace flags. */
    traceFlags: number;
    /** The W3C tracestate, if any. */
    traceState?: {
      /** As the `tracestate` header's value. */
      serialize(): string;
    };
  };
  /** Set one attribute. */
  setAttribute(key: string, value: string | number | boolean): unknown;
  /** Set the status (2: error). */
  setStatus(status: { code: number; message?: string }): unknown;
  /** End the span. */
  end(): void;
}
export interface OtelTracer {
  startSpan(
    name: string,
    options?: { kind?: number; attributes?: Record<string, string | number | boolean>; links?: { context: { traceId: string; spanId: string; traceFlags: number; isRemote?: boolean } }[] },
    context?: unknown,
  ): OtelSpan;
}
/** The part of `@opentelemetry/api` used: pass the module itself. */
export interface OtelApi {
  /** `otel.trace`. */
  trace: {
    /** A tracer by instrumentation name. */
    getTracer(name: string, version?: string): OtelTracer;
    /** A context with this span active. */
    setSpan(context: unknown, span: OtelSpan): unknown;
    /** A context whose (remote) parent is this span context. */
    setSpanContext(context: unknown, spanContext: any): unknown;
  };
  /** `otel.context`. */
  context: {
    /** The active context. */
    active(): unknown;
    /** Run fn with context active. */
    with<A extends unknown[], R>(context: unknown, fn: (...args: A) => R, thisArg?: unknown, ...args: A): R;
  };
  /** `otel.createTraceState` (to carry a remote tracestate). */
  createTraceState?(raw?: string): unknown;
  /** `otel.ROOT_CONTEXT`. */
  ROOT_CONTEXT: unknown;
}

const SPAN_KIND_SERVER = 1;
const SPAN_KIND_CLIENT = 2;
const STATUS_ERROR = 2;

/** What a peer needs to make a traced call: send a notification, then the call. */
interface Caller {
  notify(method: string, params: unknown[]): void;
  call(method: string, params: unknown[], opts?: any): Promise<unknown>;
}

export interface CallTracingOptions {
  /**
   * Adopt the peer's `$trace` as the parent of the span of its call (its trace id then
   * names everything the call causes, and travels on in this side's own `$trace`). False:
   * the call starts a trace of this side's own and the peer's span is recorded as a link,
   * OpenTelemetry's advice for context from peers not trusted. Default true: a client
   * trusts the server it chose to connect to; the server passes `observe.trustClientTrace`
   * (default false).
   */
  trustInbound?: boolean;
}

/**
 * Spans for calls both ways and the `$trace` context sent with each call, on either side;
 * the client's `tracing` option (`clientTracing(otel)`), the server's `observe.tracing`.
 */
export class CallTracing {
  readonly #api: OtelApi;
  readonly #tracer: OtelTracer;
  readonly #trustInbound: boolean;
  /** `$trace` received in the WebSocket message being processed, for the next request. */
  #next: TraceParent | undefined;

  constructor(api: OtelApi, name: string, opts: CallTracingOptions = {}) {
    this.#api = api;
    this.#tracer = api.trace.getTracer(name);
    this.#trustInbound = opts.trustInbound ?? true;
  }

  /** A new WebSocket message begins: a `$trace` never reaches past the message it came in. */
  frame(): void {
    this.#next = undefined;
  }

  /** A `$trace` notification arrived: it belongs to the request right after it (the engine passes no other). */
  received(params: unknown[]): void {
    this.#next = parseTraceparent(params);
  }

  /** The request after a `$trace` was refused before its handler: the `$trace` goes with it. */
  refused(): void {
    this.#next = undefined;
  }

  /**
   * Span for an incoming call: a child of the `$trace` that preceded it when trusted, else
   * of the active context with that `$trace` as a link (issue 20 #5: a client chose the
   * trace id of the server's spans and of the `$trace` sent on to other players).
   */
  startServed(method: string): OtelSpan {
    const from = this.#next;
    const attributes = { 'rpc.system': 'volley', 'rpc.method': method };
    if (from === undefined) return this.#tracer.startSpan(method, { kind: SPAN_KIND_SERVER, attributes }, this.#api.context.active());
    this.#next = undefined;
    if (this.#trustInbound) return this.#tracer.startSpan(method, { kind: SPAN_KIND_SERVER, attributes }, this.#remoteContext(from));
    return this.#tracer.startSpan(method, { kind: SPAN_KIND_SERVER, attributes, links: [{ context: remoteSpanContext(from) }] }, this.#api.context.active());
  }

  /** Span for a call this side makes, child of the active span (or of `traceparent`, from another node). */
  call(peer: Caller, method: string, params: unknown[], opts: unknown, traceparent?: string): Promise<unknown> {
    // `traceparent` comes from another node of this cluster (trusted), never from a client.
    const parsed = traceparent ? parseTraceparent([traceparent]) : undefined;
    const parent = parsed ? this.#remoteContext(parsed) : this.#api.context.active();
    const span = this.#tracer.startSpan(method, { kind: SPAN_KIND_CLIENT, attributes: { 'rpc.system': 'volley', 'rpc.method': method } }, parent);
    peer.notify(TRACE, this.header(span));
    const p = peer.call(method, params, opts);
    p.then(
      () => this.end(span, null),
      (err: { code?: unknown }) => this.end(span, typeof err?.code === 'string' ? err.code : 'INTERNAL'),
    );
    return p;
  }

  /** A CLIENT span around a call that leaves by another path (forwarded to another node). */
  startCall(method: string): OtelSpan {
    return this.#tracer.startSpan(method, { kind: SPAN_KIND_CLIENT, attributes: { 'rpc.system': 'volley', 'rpc.method': method } }, this.#api.context.active());
  }

  /** `$trace` params for a span: [traceparent] or [traceparent, tracestate]. */
  header(span: OtelSpan): string[] {
    const sc = span.spanContext();
    const tp = formatTraceparent(sc.traceId, sc.spanId, sc.traceFlags);
    const state = sc.traceState?.serialize();
    return state ? [tp, state] : [tp];
  }

  /** A stream item of the span's call: the span notes how many were sent (or received) so far. */
  items(span: OtelSpan, sent: boolean, count: number): void {
    span.setAttribute(sent ? 'volley.stream.items_sent' : 'volley.stream.items_received', count);
  }

  /** End a call's span with its outcome: null for OK, else the error code. */
  end(span: OtelSpan, code: string | null): void {
    span.setAttribute('rpc.response.status_code', code ?? 'OK');
    if (code !== null) span.setStatus({ code: STATUS_ERROR, message: code });
    span.end();
  }

  /**
   * Run a handler with its call's span active, so calls it makes become children.
   * @typeParam H - the handler's type, kept as is.
   */
  wrap<H extends (ctx: any, ...args: any[]) => unknown>(handler: H): H {
    const api = this.#api;
    const wrapped = function (this: unknown, ctx: { span?: unknown }, ...args: unknown[]) {
      const span = ctx.span as OtelSpan | undefined;
      if (!span) return handler(ctx, ...args);
      return api.context.with(api.trace.setSpan(api.context.active(), span), handler, undefined, ctx, ...args);
    };
    // The engine reads a handler's arity for its params check.
    Object.defineProperty(wrapped, 'length', { value: handler.length });
    return wrapped as unknown as H;
  }

  /**
   * {@link CallTracing.wrap} over every handler of a map.
   * @typeParam H - the handlers' type, kept as is.
   */
  wrapAll<H extends (ctx: any, ...args: any[]) => unknown>(handlers: Map<string, H>): Map<string, H> {
    const out = new Map<string, H>();
    for (const [name, h] of handlers) out.set(name, this.wrap(h));
    return out;
  }

  /** For a peer traced without metrics (the client): ends a served call's span. */
  peerObserver(): {
    /** A served call ended (or was refused before its handler: ctx undefined). */
    served(method: string, code: string | null, ctx: { span?: unknown } | undefined): void;
    /** A notification was dropped (nothing to end). */
    dropped(): void;
    /** A stream item of a served call: its span notes the count. */
    streamItem(method: string, served: boolean, sent: boolean, ctx: { span?: unknown } | undefined, count: number): void;
  } {
    return {
      served: (_method, code, ctx) => {
        if (ctx === undefined) return this.refused();
        if (ctx.span === undefined) return;
        this.end(ctx.span as OtelSpan, code);
        ctx.span = undefined;
      },
      dropped: () => {},
      streamItem: (_method, _served, sent, ctx, count) => {
        if (ctx?.span !== undefined) this.items(ctx.span as OtelSpan, sent, count);
      },
    };
  }

  /** A handler context: its span starts (child of the `$trace` before it). */
  began<
    C extends {
      /** The call's id (-1: a notification). */
      id: number;
      /** The method called. */
      method: string;
      /** Where the span is kept. */
      span: unknown;
    },
  >(ctx: C): C {
    if (ctx.id >= 0) ctx.span = this.startServed(ctx.method); // notifications (-1): no span, nothing would end it
    return ctx;
  }

  /** A context whose span is the remote one: its children join that trace. */
  #remoteContext(parent: TraceParent): unknown {
    const api = this.#api;
    return api.trace.setSpanContext(api.ROOT_CONTEXT, {
      ...remoteSpanContext(parent),
      traceState: parent.traceState && api.createTraceState ? api.createTraceState(parent.traceState) : undefined,
    });
  }
}

/** A link's target: ids and flags only (an untrusted peer's tracestate is not kept). */
function remoteSpanContext(p: TraceParent): { traceId: string; spanId: string; traceFlags: number; isRemote: true } {
  return { traceId: p.traceId, spanId: p.spanId, traceFlags: p.traceFlags, isRemote: true };
}
