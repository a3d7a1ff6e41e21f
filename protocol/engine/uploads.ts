// Uploads (issue 23, SPEC §12): a call may pass async iterables as params. The caller sends
// the call wrapped, `$call [method, params, at]` (`at`: the indexes of the params that are
// uploads, nil in their place), so nothing in the application's own values marks them. The
// callee's handler gets, at each, an async iterable that reads the upload only when it is
// read: the callee calls back `$upload [callId, index]`, and the caller answers that call
// as a stream of the iterable's items (streams.ts: credit, cancel, errors, resume all as
// for any stream). An upload lasts as long as its call: the caller forgets it (and stops
// its producer) when the call settles, the callee gives up its reads when it answers.

import { ErrorCode, RpcError } from '../errors.ts';
import { wireError } from '../refusals.ts';
import type { CallOptions } from '../contract.ts';
import { reject } from './budget.ts';
import type { AnyHandler, InboundCall } from './options.ts';
import { call } from './outgoing.ts';
import { createContext, run, untrack } from './running.ts';
import { EngineCall, isStream, produce, stream } from './streams.ts';
import type { EngineState } from './state.ts';

/** The request carrying a call with uploads: `[method, params, at]`. */
export const CALL = '$call';
/** The callee reading one upload: `[callId, index]`, answered as a stream. */
export const UPLOAD = '$upload';

/** The caller's side of one call's uploads, until the call settles. */
export interface Uploads {
  readonly method: string;
  /** By param index; emptied as each is read (an upload is read once). */
  readonly iterables: (AsyncIterable<unknown> | undefined)[];
  /** The `$upload`s being answered (their producers). */
  readonly serving: EngineCall[];
}

/** Is any param an upload? The only work an ordinary call pays for uploads. */
export function hasUpload(params: unknown[]): boolean {
  for (let i = 0; i < params.length; i++) if (isStream(params[i])) return true;
  return false;
}

// ---- the caller ---------------------------------------------------------------------

/** `call()` for params holding async iterables: sent as `$call`, each kept until read or the call settles. */
export function callWithUploads(s: EngineState<any>, method: string, params: unknown[], opts?: CallOptions, onId?: (id: number) => void): Promise<unknown> {
  if (params.length > s.peerLimits.maxParams)
    return Promise.reject(new RpcError(ErrorCode.INVALID_PARAMS, `more than ${s.peerLimits.maxParams} params`));
  const wire: unknown[] = [];
  const at: number[] = [];
  const iterables: (AsyncIterable<unknown> | undefined)[] = [];
  for (let i = 0; i < params.length; i++) {
    const p = params[i];
    if (isStream(p)) {
      at.push(i);
      iterables[i] = p;
      wire.push(null);
    } else wire.push(p);
  }
  const up: Uploads = { method, iterables, serving: [] };
  let callId = -1;
  const p = call(s, CALL, [method, wire, at], opts, (id) => {
    callId = id;
    (s.uploads ??= new Map()).set(id, up);
    onId?.(id);
  });
  const settled = () => endUploads(s, callId, up);
  p.then(settled, settled);
  return p;
}

/** The call settled (answered, timed out, cancelled, the session ended): its uploads end with it. */
function endUploads(s: EngineState<any>, id: number, up: Uploads): void {
  if (s.uploads?.get(id) === up) s.uploads.delete(id);
  up.iterables.length = 0; // never read: nothing was started, nothing to stop
  const ended = new RpcError(ErrorCode.CANCELLED, `the call to ${up.method} ended`);
  for (const ctx of up.serving.splice(0)) {
    if (s.incoming.get(ctx.id) !== ctx) continue; // done, or cancelled by the reader
    untrack(s, ctx);
    ctx.abort(ended); // its producer stops and its iterator's return() runs
  }
}

/**
 * `$upload [callId, index]` (paid for by the request): answer it as a stream of that upload.
 * Anything else (a call of ours without uploads, another index, one read already, a call
 * settled) is refused INVALID_PARAMS: it costs the peer its request and nothing more.
 */
export function onUpload(s: EngineState<any>, id: number, params: unknown[], cost: number): void {
  const [callId, index] = params;
  const up = typeof callId === 'number' ? s.uploads?.get(callId) : undefined;
  const iterable = up !== undefined && typeof index === 'number' ? up.iterables[index] : undefined;
  if (iterable === undefined) {
    return reject(s, id, wireError(ErrorCode.INVALID_PARAMS, `no upload ${String(index).slice(0, 12)} of call ${String(callId).slice(0, 12)} to read`), UPLOAD);
  }
  up!.iterables[index as number] = undefined;
  const ctx = new EngineCall(id, UPLOAD);
  ctx.held = cost;
  up!.serving.push(ctx);
  void produce(s, ctx, iterable, up!.method, false);
}

// ---- the callee ---------------------------------------------------------------------

/**
 * `$call [method, params, at]` (paid for by the request): checked as a request would be
 * (method, params count, arity), the uploads in place as readers, then run as `method`.
 */
export function onCall(s: EngineState<any>, id: number, params: unknown[], cost: number): void {
  const [method, args, at] = params;
  const bad = (why: string) => reject(s, id, wireError(ErrorCode.INVALID_PARAMS, why), CALL);
  if (typeof method !== 'string' || method.length === 0 || !Array.isArray(args) || !Array.isArray(at) || at.length === 0)
    return bad('$call takes [method, params, uploads]');
  if (tooLong(method, s.limits.maxMethodLength)) return bad(`method name longer than ${s.limits.maxMethodLength} bytes`);
  if (args.length > s.limits.maxParams) return bad(`more than ${s.limits.maxParams} params`);
  let last = -1;
  for (const i of at as unknown[]) {
    // Ascending indexes of nil params: nothing is read twice, nothing of the caller's is overwritten.
    if (typeof i !== 'number' || !Number.isInteger(i) || i <= last || i >= args.length || args[i] !== null)
      return bad('uploads must be ascending indexes of nil params');
    last = i;
  }
  const handler = method.charCodeAt(0) === 36 /* $ */ ? undefined : s.handlerMap.get(method);
  if (!handler) return reject(s, id, { code: ErrorCode.METHOD_NOT_FOUND, message: `no method ${method}` }, method);
  if (args.length < handler.length - 1)
    return reject(s, id, { code: ErrorCode.INVALID_PARAMS, message: `${method} expects ${handler.length - 1} params, got ${args.length}` }, method);
  const ctx = createContext(s, id, method);
  ctx.held = cost;
  const reads = new Reads(s, ctx);
  for (const i of at as number[]) args[i] = reads.reader(i);
  run(s, ctx, withReads(handler, reads), args);
}

/** Over `max` bytes of UTF-8 (the limit a request's own method name is held to, SPEC §8)? A surrogate pair counts 6, not 4. */
function tooLong(str: string, max: number): boolean {
  if (str.length > max) return true;
  let n = 0;
  for (let i = 0; i < str.length; i++) {
    const c = str.charCodeAt(i);
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
  }
  return n > max;
}

/** The uploads one call's handler may read, and the reads it opened: given up when the call ends. */
class Reads {
  closed = false;
  readonly opened: number[] = [];
  readonly open: AsyncIterator<unknown>[] = [];
  constructor(
    readonly s: EngineState<any>,
    readonly ctx: InboundCall,
  ) {}

  reader(index: number): AsyncIterable<unknown> {
    return { [Symbol.asyncIterator]: () => this.#read(index) };
  }

  #read(index: number): AsyncIterator<unknown> {
    const { s, ctx } = this;
    if (this.closed) return failing(new RpcError(ErrorCode.CANCELLED, `${ctx.method} has ended, its uploads with it`));
    if (this.opened.includes(index)) return failing(new RpcError(ErrorCode.INVALID_PARAMS, 'an upload is read once'));
    this.opened.push(index);
    // Its deadline is the call's: the caller's $cancel (or the session's end) fires ctx.signal.
    // The session moved to another node meanwhile: the read goes through it (handover.ts).
    const it = (s.relay ? s.relay.stream(UPLOAD, [ctx.id, index]) : stream(s, UPLOAD, [ctx.id, index], { signal: ctx.signal }, ctx))[Symbol.asyncIterator]();
    this.open.push(it);
    return it;
  }

  /** The call ended: reads still open are given up (`$cancel`: the caller's producer stops). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const it of this.open.splice(0)) void it.return?.();
  }
}

function failing(err: RpcError): AsyncIterator<unknown> {
  return {
    next: () => Promise.reject(err),
    return: () => Promise.resolve({ value: undefined, done: true }),
  };
}

/** The handler, its reads given up once it has answered (after its stream's end, for a stream). */
function withReads(handler: AnyHandler, reads: Reads): AnyHandler {
  const after = (v: unknown): unknown => {
    if (isStream(v)) return closingWith(v, reads);
    reads.close();
    return v;
  };
  return (ctx: unknown, ...args: unknown[]) => {
    let result: unknown;
    try {
      result = handler(ctx, ...args);
    } catch (err) {
      reads.close();
      throw err;
    }
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function')
      return (result as PromiseLike<unknown>).then(after, (err: unknown) => {
        reads.close();
        throw err;
      });
    return after(result);
  };
}

/** A handler's stream that reads uploads while it produces: they end when it does. */
function closingWith(source: AsyncIterable<unknown>, reads: Reads): AsyncIterable<unknown> {
  return {
    [Symbol.asyncIterator]() {
      const it = source[Symbol.asyncIterator]();
      return {
        async next() {
          try {
            const r = await it.next();
            if (r.done) reads.close();
            return r;
          } catch (err) {
            reads.close();
            throw err;
          }
        },
        async return(value?: unknown) {
          reads.close();
          return (await it.return?.(value)) ?? { value: undefined, done: true };
        },
      };
    },
  };
}
