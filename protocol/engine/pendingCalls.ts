// Calls from here waiting for their outcome: ids, deadlines, abort signals, settle, give
// up. ONE implementation, used by the call engine (peer.ts) and by the cluster's
// forwarded calls (server/cluster/forwarding.ts); the two copies that existed before had
// diverged (only one clamped deadlines, so a forwarded call with `timeoutMs: Infinity`
// timed out after 1 ms).

import { ErrorCode, RpcError } from '../errors.ts';
import { MAX_ID } from '../messages.ts';

/** The timers the engine uses for deadlines (injectable for tests). */
export interface Timers {
  /** Like the global setTimeout: run fn after ms, return a handle. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Like the global clearTimeout. */
  clearTimeout(handle: unknown): void;
  /** The clock these timers run on (ms); deadlines are read from it. Default Date.now. */
  time?(): number;
}

export const defaultTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** setTimeout fires at once past this many ms (2^31−1, about 24.8 days). */
export const MAX_TIMER_MS = 0x7fffffff;

/** One waiting call. `data` is what the owner keeps with it (request bytes, target node…). */
export interface PendingCall<D> {
  /** The request id. */
  readonly id: number;
  /** The method called. */
  readonly method: string;
  /** What the owner keeps with the call. */
  data: D;
  /** ms timestamp (the injected clock) when the deadline passes; Infinity for none. */
  readonly deadline: number;
  /** The call's timeout, ms (Infinity for none). */
  readonly timeoutMs: number;
  /** Settle the caller's promise with the result. */
  resolve(value: unknown): void;
  /** Settle the caller's promise with an error. */
  reject(err: RpcError): void;
  /** The caller's AbortSignal, if any. */
  signal: AbortSignal | undefined;
  /** The listener on `signal` (removed when the call settles). */
  onAbort: (() => void) | undefined;
}

export interface PendingCallsOptions<D> {
  timers?: Timers;
  /** Clock for deadlines; default the timers' own clock, else Date.now. */
  now?(): number;
  /**
   * The caller stopped waiting (deadline passed or signal aborted) and the call was
   * rejected: tell the callee (a `$cancel`, a cancel to another node).
   */
  onGiveUp?(call: PendingCall<D>, err: RpcError): void;
}

/** The calls one side made and is waiting on, by id, with their deadlines (one timer for all). */
export class PendingCalls<D> {
  #calls = new Map<number, PendingCall<D>>();
  #nextId = 0;
  #timers: Timers;
  #now: () => number;
  #onGiveUp: ((call: PendingCall<D>, err: RpcError) => void) | undefined;
  /**
   * One timer for all the deadlines (issue 14: a timer per call cost a setTimeout and a
   * clearTimeout on every call). It is armed for the earliest deadline; calls made with
   * the same timeout have later deadlines, so they arm nothing. When it fires it times
   * out what is due and re-arms for the next deadline.
   */
  #timer: unknown = undefined;
  #timerAt = Infinity;

  constructor(opts: PendingCallsOptions<D> = {}) {
    this.#timers = opts.timers ?? defaultTimers;
    this.#now = opts.now ?? (opts.timers?.time ? () => opts.timers!.time!() : Date.now);
    this.#onGiveUp = opts.onGiveUp;
  }

  /** Calls waiting. */
  get size(): number {
    return this.#calls.size;
  }

  /** Is call id waiting? */
  has(id: number): boolean {
    return this.#calls.has(id);
  }

  /** Call id, if waiting. */
  get(id: number): PendingCall<D> | undefined {
    return this.#calls.get(id);
  }

  /** The calls waiting. */
  values(): IterableIterator<PendingCall<D>> {
    return this.#calls.values();
  }

  /** uint32 ids, sequential mod 2^32, skipping ids still pending. */
  allocateId(): number {
    let id = this.#nextId;
    while (this.#calls.has(id)) id = id === MAX_ID ? 0 : id + 1;
    this.#nextId = id === MAX_ID ? 0 : id + 1;
    return id;
  }

  /**
   * Track call `id` until it settles, its deadline passes (TIMEOUT) or `signal` aborts
   * (CANCELLED). The caller checks `signal.aborted` first. `timeoutMs` may be Infinity.
   */
  add(id: number, method: string, data: D, timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const call: PendingCall<D> = {
        id,
        method,
        data,
        deadline: this.#now() + timeoutMs,
        timeoutMs,
        resolve,
        reject,
        signal,
        onAbort: undefined,
      };
      this.#calls.set(id, call);
      if (call.deadline < this.#timerAt) this.#arm(call.deadline);
      if (signal) {
        call.onAbort = () => this.giveUp(id, new RpcError(ErrorCode.CANCELLED, `${method} was cancelled`));
        signal.addEventListener('abort', call.onAbort, { once: true });
      }
    });
  }

  // Arm the sweep for `at`. A deadline past 2^31−1 ms is reached in steps (setTimeout
  // would fire at once); an infinite one arms nothing. The timer is unref'd: pending calls
  // wait on a socket or a resume window, which keep the process alive themselves.
  #arm(at: number): void {
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
    if (!(at < Infinity)) return;
    const ms = Math.max(0, Math.min(at - this.#now(), MAX_TIMER_MS));
    this.#timerAt = ms === MAX_TIMER_MS ? this.#now() + ms : at;
    const timer = this.#timers.setTimeout(this.#sweep, ms);
    (timer as { unref?(): void } | undefined)?.unref?.();
    this.#timer = timer;
  }

  #sweep = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#now();
    let next = Infinity;
    let due: PendingCall<D>[] | undefined;
    for (const call of this.#calls.values()) {
      if (call.deadline <= now) (due ??= []).push(call);
      else if (call.deadline < next) next = call.deadline;
    }
    // Armed before the give-ups: a call they lead to arms an earlier sweep if it needs one.
    if (next < Infinity) this.#arm(next);
    if (due)
      for (const call of due)
        if (this.#calls.get(call.id) === call) this.giveUp(call.id, new RpcError(ErrorCode.TIMEOUT, `${call.method} timed out after ${call.timeoutMs} ms`));
  };

  /** Remove call `id` (its outcome arrived, or it failed for a reason of the owner's). */
  settle(id: number): PendingCall<D> | undefined {
    const call = this.#calls.get(id);
    if (!call) return undefined;
    this.#calls.delete(id);
    if (call.onAbort) call.signal!.removeEventListener('abort', call.onAbort);
    return call;
  }

  /** Settle call id with its result; false if it was not waiting. */
  resolve(id: number, value: unknown): boolean {
    const call = this.settle(id);
    call?.resolve(value);
    return call !== undefined;
  }

  /** Settle call id with an error; false if it was not waiting. */
  reject(id: number, err: RpcError): boolean {
    const call = this.settle(id);
    call?.reject(err);
    return call !== undefined;
  }

  /** The caller stops waiting: reject with `err`, then let the owner tell the callee. */
  giveUp(id: number, err: RpcError): void {
    const call = this.settle(id);
    if (!call) return;
    call.reject(err);
    this.#onGiveUp?.(call, err);
  }

  /** Reject every pending call with `reason` (no give-up notice: the link is gone). */
  failAll(reason: RpcError): void {
    for (const id of [...this.#calls.keys()]) this.reject(id, reason);
    this.#arm(Infinity); // nothing left to time out
  }
}
