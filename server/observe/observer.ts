// The server's observability hub: every hook the server, its connections and the cluster
// adapter call, the counters behind them, and the views that read them (Prometheus
// exposition, the monitor page, the health route). One object per server; the server holds
// it only when `observe` is set, so with observability off each hook costs one check.

import { performance } from 'node:perf_hooks';
import { CallTracing, type OtelSpan, type CallOptions, type InboundCall, type PeerObserver, type RpcPeer } from '../../protocol/index.ts';
import { CallStats, SeriesBudget, SERIES_PER_PAIR } from './callStats.ts';
import { CodeTable, MethodTable, OTHER } from './labels.ts';
import { ItemStats } from './streamItems.ts';
import { Window } from './window.ts';

import { DEFAULT_MAX_SERIES, type ObserveOptions } from './options.ts';

export { DEFAULT_MAX_SERIES, type ObserveOptions };

/** Why a session ended (label of volley_session_ends_total). */
export type EndReason = 'closed' | 'replaced' | 'expired' | 'server' | 'shutdown' | 'moved';
export const END_REASONS: readonly EndReason[] = ['closed', 'replaced', 'expired', 'server', 'shutdown', 'moved'];
/** Close codes counted by value; any other is `other`. */
export const CLOSE_CODES = [1000, 1001, 1005, 1006, 1009, 1011, 4000, 4001, 4002, 4008, 4009, 4029, 4401, 4409, 4503];
export const AUTH_STATUSES = ['401', '409', '503'];
/** Series of the counters and gauges (prometheus.ts): 15 of one series, then the labelled ones. */
const FIXED_SERIES = 15 + END_REASONS.length + CLOSE_CODES.length + 1 + AUTH_STATUSES.length + 1;

/** What the server lets the observer read at scrape time (never on the hot path). */
export interface ObservedServer {
  sessions(): Iterable<{ readonly online: boolean }>;
  rooms(): { rooms: number; members: number };
  listening(): boolean;
  closing(): boolean;
  /** The cluster adapter's Redis link, when there is one. */
  clusterConnected(): boolean | undefined;
}

export interface RecentError {
  at: number;
  direction: 'served' | 'made';
  method: string;
  code: string;
  /** The player the call was with ('' when a call was refused before it had a context). */
  uid: string;
}
/** A uid longer than this is cut on the monitor page (uids are the server's, not bounded by Volley). */
const RECENT_UID_CHARS = 64;
const RECENT = 20;

type Ctx = InboundCall;

export class ServerObserver implements PeerObserver<Ctx> {
  readonly opts: ObserveOptions;
  readonly codes: CodeTable;
  readonly servedStats: CallStats;
  readonly madeStats: CallStats;
  /** Calls forwarded to another node, by outcome only (method: the made table's). */
  readonly forwardedStats: CallStats;
  /** Stream items of calls served here (a handler's stream, an upload it reads) / of calls made to clients. */
  readonly servedItems: ItemStats;
  readonly madeItems: ItemStats;
  readonly tracing: CallTracing | undefined;
  readonly startedAt = Date.now();
  server: ObservedServer | undefined;

  messagesIn = 0;
  bytesIn = 0;
  messagesOut = 0;
  bytesOut = 0;
  sessionsStarted = 0;
  resumes = 0;
  overloaded = 0;
  rateLimited = 0;
  redisErrors = 0;
  presenceRefreshes = 0;
  readonly sessionEnds = new Float64Array(END_REASONS.length);
  readonly disconnects = new Float64Array(CLOSE_CODES.length + 1);
  readonly authRefusals = new Float64Array(AUTH_STATUSES.length + 1);
  readonly #overloadedCode: number;
  readonly #rateLimitedCode: number;
  /** Ring of the last errors, objects reused so a flood of errors allocates nothing. */
  readonly recent: RecentError[] = [];
  #recentNext = 0;
  readonly window: Window;
  /** performance.now() when the WebSocket message being processed arrived. */
  #frameAt = 0;

  constructor(opts: ObserveOptions, methods: Iterable<string>) {
    this.opts = opts;
    this.codes = new CodeTable(opts.codes);
    const servedMethods = [...methods];
    // One budget of (method, code) pairs for the three histograms, what maxSeries leaves after the fixed series.
    const maxSeries = opts.maxSeries ?? DEFAULT_MAX_SERIES;
    if (!(maxSeries >= 0)) throw new RangeError(`observe.maxSeries must be a non-negative number, got ${maxSeries}`);
    const budget = new SeriesBudget(maxSeries - FIXED_SERIES);
    // Always there: each histogram's overflow pair, and the item counters' (other, sent|received).
    const always = 3 * SERIES_PER_PAIR + 2 * 2;
    if (!(budget.series >= always)) throw new RangeError(`observe.maxSeries (${maxSeries}) is below the ${FIXED_SERIES + always} series Volley's metrics always have`);
    this.servedStats = new CallStats(new MethodTable(servedMethods.length, servedMethods, true), this.codes, budget);
    const madeMethods = new MethodTable(opts.maxClientMethods ?? 64);
    this.madeStats = new CallStats(madeMethods, this.codes, budget);
    this.forwardedStats = new CallStats(new MethodTable(0, [], true), this.codes, budget);
    this.servedItems = new ItemStats(this.servedStats.methods, budget);
    this.madeItems = new ItemStats(madeMethods, budget);
    this.tracing = opts.tracing ? new CallTracing(opts.tracing, 'volley', { trustInbound: opts.trustClientTrace === true }) : undefined;
    this.#overloadedCode = this.codes.indexOf('OVERLOADED');
    this.#rateLimitedCode = this.codes.indexOf('RATE_LIMITED');
    for (let i = 0; i < RECENT; i++) this.recent.push({ at: 0, direction: 'served', method: '', code: '', uid: '' });
    this.window = new Window(this);
  }

  // ---- incoming calls (the engine's PeerObserver, and the context factory) ----------

  /** A handler context was made: the call's clock (and span) starts. */
  began<C extends Ctx>(ctx: C): C {
    // The clock read once per WebSocket message (frameIn): a call's time counts from receipt,
    // and a pipelined frame of 16 calls costs 17 clock reads instead of 32. performance.now()
    // is most of what metrics cost per call (~25–50 ns a read, the rest ~15 ns).
    ctx.startedAt = this.#frameAt;
    // Notifications (id -1) get no span: nothing would ever end it.
    if (this.tracing && ctx.id >= 0) ctx.span = this.tracing.startServed(ctx.method);
    return ctx;
  }

  served(method: string, code: string | null, ctx: Ctx | undefined): void {
    if (ctx === undefined) {
      this.servedStats.record(method, code, 0); // refused before a handler: no time spent to speak of
      this.tracing?.refused(); // its `$trace`, if any, goes with it
    } else {
      this.servedStats.record(method, code, (performance.now() - ctx.startedAt) / 1000);
      if (ctx.span !== undefined) {
        this.tracing?.end(ctx.span as never, code);
        ctx.span = undefined;
      }
    }
    if (code !== null) this.#servedFailed(method, code, (ctx as { uid?: string } | undefined)?.uid ?? '');
  }

  #servedFailed(method: string, code: string, uid: string): void {
    const c = this.codes.indexOf(code);
    if (c === this.#overloadedCode) this.overloaded++;
    else if (c === this.#rateLimitedCode) this.rateLimited++;
    this.#remember('served', method, code, uid);
  }

  droppedNotifications = 0;
  dropped(): void {
    this.droppedNotifications++;
  }

  /** One stream item crossed (SPEC §12): counted; the call's span notes how many so far. */
  streamItem(method: string, served: boolean, sent: boolean, ctx: Ctx | undefined, count: number): void {
    (served ? this.servedItems : this.madeItems).record(method, sent);
    if (ctx?.span !== undefined) this.tracing?.items(ctx.span as OtelSpan, sent, count);
  }

  // ---- outgoing calls -----------------------------------------------------------------

  /** A call the server makes to a client connected here (server.call, or for another node). */
  callMade(peer: RpcPeer<any>, method: string, params: unknown[], opts: CallOptions | undefined, uid = ''): Promise<unknown> {
    const t0 = performance.now();
    const traceparent = (opts as { traceparent?: string } | undefined)?.traceparent;
    const p = this.tracing ? this.tracing.call(peer, method, params, opts, traceparent) : peer.call(method, params, opts);
    p.then(
      () => this.madeStats.record(method, null, (performance.now() - t0) / 1000),
      (err: { code?: string }) => this.#madeFailed(this.madeStats, method, err?.code ?? 'INTERNAL', t0, uid),
    );
    return p;
  }

  /**
   * A stream the server reads from a player (`server.stream`), here or through another
   * node: observed as a call made, from its reader's start to its end (ok), its error, or the
   * reader stopping early (CANCELLED, as the engine gives the call up); its items are
   * counted by streamItem.
   */
  streamMade<T>(method: string, stream: AsyncIterable<T>, uid = ''): AsyncIterable<T> {
    return {
      [Symbol.asyncIterator]: () => {
        const it = stream[Symbol.asyncIterator]();
        const t0 = performance.now();
        let settled = false;
        const settle = (code: string | null) => {
          if (settled) return;
          settled = true;
          if (code === null) this.madeStats.record(method, null, (performance.now() - t0) / 1000);
          else this.#madeFailed(this.madeStats, method, code, t0, uid);
        };
        return {
          next: () =>
            it.next().then(
              (r) => {
                if (r.done) settle(null);
                return r;
              },
              (err: { code?: string }) => {
                settle(err?.code ?? 'INTERNAL');
                throw err;
              },
            ),
          return: (value?: unknown) => {
            settle('CANCELLED');
            return it.return ? it.return(value) : Promise.resolve({ value: undefined, done: true } as IteratorResult<T>);
          },
        };
      },
    };
  }

  /** A call to a uid on another node, through the cluster adapter. */
  callForwarded(
    forward: (opts: CallOptions | undefined) => Promise<unknown>,
    method: string,
    opts: CallOptions | undefined,
    uid = '',
  ): Promise<unknown> {
    const t0 = performance.now();
    // Without a cluster adapter nothing is forwarded: the call fails UNAVAILABLE at once and
    // counts as a call made only.
    const cluster = this.server?.clusterConnected() !== undefined;
    let span: OtelSpan | undefined;
    if (this.tracing) {
      span = this.tracing.startCall(method);
      opts = { ...opts, traceparent: this.tracing.header(span)[0] } as CallOptions;
    }
    const p = forward(opts);
    p.then(
      () => {
        const s = (performance.now() - t0) / 1000;
        this.madeStats.record(method, null, s);
        if (cluster) this.forwardedStats.record('', null, s);
        if (span) this.tracing!.end(span, null);
      },
      (err: { code?: string }) => {
        const code = err?.code ?? 'INTERNAL';
        this.#madeFailed(this.madeStats, method, code, t0, uid);
        if (cluster) this.forwardedStats.record('', code, (performance.now() - t0) / 1000);
        if (span) this.tracing!.end(span, code);
      },
    );
    return p;
  }

  #madeFailed(stats: CallStats, method: string, code: string, t0: number, uid: string): void {
    stats.record(method, code, (performance.now() - t0) / 1000);
    this.#remember('made', method, code, uid);
  }

  #remember(direction: 'served' | 'made', method: string, code: string, uid: string): void {
    const e = this.recent[this.#recentNext]!;
    this.#recentNext = (this.#recentNext + 1) % RECENT;
    e.at = Date.now();
    e.direction = direction;
    // Label-bounded here too: the page must not echo whatever a client sent as a method.
    const table = direction === 'served' ? this.servedStats : this.madeStats;
    e.method = table.methods.nameOf(table.methods.indexOf(method));
    e.code = this.codes.names[this.codes.indexOf(code)]!;
    e.uid = uid.length > RECENT_UID_CHARS ? `${uid.slice(0, RECENT_UID_CHARS)}…` : uid;
  }

  /** Errors newest first. */
  recentErrors(): RecentError[] {
    const out: RecentError[] = [];
    for (let i = 1; i <= RECENT; i++) {
      const e = this.recent[(this.#recentNext - i + RECENT) % RECENT]!;
      if (e.at > 0) out.push({ ...e });
    }
    return out;
  }

  // ---- transport and session events ------------------------------------------------

  /** One WebSocket message received (it may hold several msgpack-rpc messages). */
  frameIn(bytes: number): void {
    this.#frameAt = performance.now();
    this.messagesIn++;
    this.bytesIn += bytes;
    this.tracing?.frame();
  }

  frameOut(bytes: number): void {
    this.messagesOut++;
    this.bytesOut += bytes;
  }

  /** A `$trace` notification (the extension handler forwards it). */
  trace(params: unknown[]): void {
    this.tracing?.received(params);
  }

  opened(resumed: boolean): void {
    if (resumed) this.resumes++;
    else this.sessionsStarted++;
  }

  disconnected(code: number): void {
    const i = CLOSE_CODES.indexOf(code);
    this.disconnects[i < 0 ? CLOSE_CODES.length : i]!++;
  }

  sessionEnded(reason: EndReason): void {
    this.sessionEnds[END_REASONS.indexOf(reason)]!++;
  }

  /** An upgrade refused with this HTTP status line ('401 Unauthorized'…). */
  authRefused(status: string): void {
    const i = AUTH_STATUSES.indexOf(status.slice(0, 3));
    this.authRefusals[i < 0 ? AUTH_STATUSES.length : i]!++;
  }

  redisError(): void {
    this.redisErrors++;
  }

  presenceRefreshed(): void {
    this.presenceRefreshes++;
  }

  // ---- gauges, read at scrape time ------------------------------------------------

  gauges(): { online: number; parked: number; rooms: number; members: number } {
    let online = 0;
    let parked = 0;
    for (const s of this.server?.sessions() ?? []) {
      if (s.online) online++;
      else parked++;
    }
    const { rooms, members } = this.server?.rooms() ?? { rooms: 0, members: 0 };
    return { online, parked, rooms, members };
  }

  /** Wrap the handler map so a call's span is active while its handler runs (tracing on). */
  wrapHandlers<H extends (ctx: any, ...args: any[]) => unknown>(handlers: Map<string, H>): Map<string, H> {
    return this.tracing ? this.tracing.wrapAll(handlers) : handlers;
  }

  /** Settles once the separate routes server listens (observe.routesPort). */
  ready: Promise<void> = Promise.resolve();
  /** The separate routes server (observe.routesPort), once listening. */
  routesServer: { close(): void; address(): unknown } | undefined;

  /** The port the separate routes server listens on. */
  get routesPort(): number | undefined {
    return (this.routesServer?.address() as { port?: number } | undefined)?.port;
  }

  close(): void {
    this.window.stop();
    this.routesServer?.close();
  }
}

export { OTHER };
