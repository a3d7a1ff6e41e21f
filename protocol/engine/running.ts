// Handlers the peer's calls and notifications run: looked up, checked (arity, schema),
// run, tracked while they can still be cancelled, and answered (a result or a coded error).

import { encode } from '../codec.ts';
import { ErrorCode, RpcError, toRpcError } from '../errors.ts';
import { ProtocolViolation, RESPONSE } from '../messages.ts';
import { wireError } from '../refusals.ts';
import { checkParams } from '../schema.ts';
import { chargeTotal, holdParams, overHeld, pay, refuse, reject } from './budget.ts';
import { violation } from './incoming.ts';
import { InboundCall, type AnyHandler } from './options.ts';
import { replyError, sendReliable } from './send.ts';
import { ITEM, ITEMS, isStream, onItem, produce } from './streams.ts';
import { CALL, UPLOAD, onCall, onUpload } from './uploads.ts';
import { NO_RUNNING, type EngineState } from './state.ts';

/** A request paid for by the caller: refused, or run. */
export function onRequest<C extends InboundCall>(s: EngineState<C>, id: number, method: string, params: unknown[], cost: number): void {
  if (s.incoming.has(id)) return duplicate(s, id);
  // Charged before anything is looked up: unknown and `$` methods pay too.
  let limited = s.opts.admit?.();
  // A stream's item past the rate limit is taken, and its credit waits for the bucket
  // instead (streams.ts): the stream slows to the limit rather than failing.
  const item = method === ITEM || method === ITEMS;
  const owes = limited !== undefined && item;
  if (owes) limited = undefined;
  const refused = limited ?? overHeld(s, cost);
  if (refused) return refuse(s, id, refused, method);
  const handler = method.charCodeAt(0) === 36 /* $ */ ? undefined : s.handlerMap.get(method);
  if (s.incoming.size >= s.limits.maxIncomingPending && (handler || item || method === CALL || method === UPLOAD))
    return refuse(s, id, (s.overloadedRunning ??= wireError(ErrorCode.OVERLOADED, `more than ${s.limits.maxIncomingPending} calls running`)), method);
  if (!handler) {
    // A stream's item (streams.ts): held like a running call until its reader takes it.
    if (item) return onItem(s, id, params, cost, owes, method === ITEMS);
    // A call with uploads, and the callee reading one (uploads.ts).
    if (method === CALL) return onCall(s, id, params, cost);
    if (method === UPLOAD) return onUpload(s, id, params, cost);
    return reject(s, id, { code: ErrorCode.METHOD_NOT_FOUND, message: `no method ${method}` }, method);
  }
  // handler(ctx, ...args): its declared arity minus ctx is the minimum param count.
  if (params.length < handler.length - 1)
    return reject(s, id, { code: ErrorCode.INVALID_PARAMS, message: `${method} expects ${handler.length - 1} params, got ${params.length}` }, method);
  const ctx = createContext(s, id, method);
  ctx.held = cost;
  run(s, ctx, handler, params);
}

/** Check a call's params against its method's schema, if any, and run its handler. */
export function run<C extends InboundCall>(s: EngineState<C>, ctx: C, handler: AnyHandler, params: unknown[]): void {
  const schema = s.schemaMap.get(ctx.method);
  if (schema) {
    track(s, ctx);
    checkParams(schema, params).then(
      (checked) => {
        if (s.incoming.get(ctx.id) === ctx) invoke(s, ctx, handler, checked, true);
      },
      (err) => finish(s, ctx, err, true),
    );
  } else {
    invoke(s, ctx, handler, params, false);
  }
}

export function duplicate(s: EngineState<any>, id: number): void {
  // With sequence numbers nothing arrives twice: a request whose id is still running
  // here is a broken peer (SPEC §3), not a re-send.
  violation(s, new ProtocolViolation(`request id ${id} is already pending`));
}

/** A call is running: in `incoming` (for $cancel and duplicates), its params held. */
export function track<C extends InboundCall>(s: EngineState<C>, ctx: C): void {
  if (s.incoming === NO_RUNNING) s.incoming = new Map();
  s.incoming.set(ctx.id, ctx);
  s.paramsHeld += ctx.held;
  chargeTotal(s, ctx.held);
}

export function untrack<C extends InboundCall>(s: EngineState<C>, ctx: C): void {
  s.incoming.delete(ctx.id);
  s.paramsHeld -= ctx.held;
  chargeTotal(s, -ctx.held);
}

/**
 * Run a handler. A call is tracked in `incoming` (for $cancel, duplicates, disconnect)
 * only while it can still be cancelled, i.e. once it returned a promise: a handler
 * that answers synchronously skips the map entirely, four Map operations fewer.
 */
function invoke<C extends InboundCall>(s: EngineState<C>, ctx: C, handler: AnyHandler, params: unknown[], tracked: boolean): void {
  let result: unknown;
  try {
    result = handler(ctx, ...params);
  } catch (err) {
    return tracked ? finish(s, ctx, err, true) : respond(s, ctx, err, true);
  }
  if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
    if (!tracked) track(s, ctx);
    (result as PromiseLike<unknown>).then(
      (value) => finish(s, ctx, value, false),
      (err) => finish(s, ctx, err, true),
    );
  } else if (tracked) {
    finish(s, ctx, result, false);
  } else {
    respond(s, ctx, result, false);
  }
}

function finish<C extends InboundCall>(s: EngineState<C>, ctx: C, outcome: unknown, failed: boolean): void {
  // Gone from the map means cancelled or disconnected: the caller no longer listens.
  if (s.incoming.get(ctx.id) !== ctx) return;
  untrack(s, ctx);
  respond(s, ctx, outcome, failed);
}

function respond<C extends InboundCall>(s: EngineState<C>, ctx: C, outcome: unknown, failed: boolean): void {
  const observer = s.opts.observer;
  if (s.closedBy) {
    // The handler itself ended the session (an untracked call: failAll did not see it).
    observer?.served(ctx.method, s.closedBy.code, ctx);
    return;
  }
  if (!failed) {
    if (isStream(outcome)) return void produce(s, ctx, outcome); // its items, then the call's end
    let bytes: Uint8Array;
    try {
      // The scan the receiver runs checks it here: a result past the peer's limits (depth,
      // values) or of a type it refuses (an Error with a deep `cause`, a Set, a BigInt)
      // would otherwise cost the caller its socket. sendReliable keeps a copy.
      bytes = encode([RESPONSE, ctx.id, null, outcome], s.peerLimits);
    } catch (err) {
      s.opts.onHandlerError?.(new TypeError(`result of ${ctx.method} can't be sent: ${(err as Error).message}`), ctx);
      observer?.served(ctx.method, ErrorCode.INTERNAL, ctx);
      return replyError(s, ctx.id, { code: ErrorCode.INTERNAL, message: 'result could not be encoded' });
    }
    // The receiver drops the socket on a message past its size limit; re-sent after a
    // resume it would drop it again, over and over. Fail this call instead.
    const max = s.peerLimits.maxMessageBytes;
    if (bytes.byteLength > max) {
      s.opts.onHandlerError?.(new RangeError(`result of ${ctx.method} is ${bytes.byteLength} bytes, over the ${max}-byte limit`), ctx);
      observer?.served(ctx.method, ErrorCode.INTERNAL, ctx);
      return replyError(s, ctx.id, { code: ErrorCode.INTERNAL, message: `result over the ${max}-byte message limit` });
    }
    observer?.served(ctx.method, null, ctx);
    if (s.relay) return s.relay.response(ctx.id, bytes); // the player is on another node now
    sendReliable(s, bytes, -1);
    return;
  }
  observer?.served(ctx.method, outcome instanceof RpcError ? outcome.code : ErrorCode.INTERNAL, ctx);
  if (!(outcome instanceof RpcError)) s.opts.onHandlerError?.(outcome, ctx);
  replyError(s, ctx.id, toRpcError(outcome).toWire());
}

/** `$cancel`: free when it stops a running call (one the request paid for); else it pays. */
export function receiveCancel<C extends InboundCall>(s: EngineState<C>, id: unknown): void {
  const ctx = s.incoming.get(id as number);
  if (ctx === undefined) {
    pay(s);
    return;
  }
  untrack(s, ctx);
  // Not a call of the application's here (it runs on the node the session moved from, or it
  // is a stream's own traffic): not reported as one.
  if (!ctx.unobserved) s.opts.observer?.served(ctx.method, ErrorCode.CANCELLED, ctx);
  ctx.abort(new RpcError(ErrorCode.CANCELLED, 'caller cancelled the call'));
}

/** A notification that paid (incoming.ts): run its handler if it has one and the params fit. */
export function onNotification(s: EngineState<any>, method: string, params: unknown[], cost: number): void {
  const handler = s.handlerMap.get(method);
  if (!handler) return; // notifications have no reply; unknown ones are ignored
  // The same arity and schema checks as a request: a schema guards its handler whichever
  // way the call comes. A refused notification is dropped (there is no reply to send).
  if (params.length < handler.length - 1) return;
  // Its params are held like a running call's until its handler settles: notifications
  // have no running-calls cap, so the held-bytes budget is what bounds them.
  holdParams(s, cost);
  const schema = s.schemaMap.get(method);
  if (schema)
    checkParams(schema, params).then(
      (checked) => notifyHandler(s, method, handler, checked, cost),
      () => holdParams(s, -cost),
    );
  else notifyHandler(s, method, handler, params, cost);
}

function notifyHandler(s: EngineState<any>, method: string, handler: AnyHandler, params: unknown[], cost: number): void {
  if (s.closedBy) return holdParams(s, -cost);
  const ctx = createContext(s, -1, method);
  try {
    const result = handler(ctx, ...params);
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      (result as PromiseLike<unknown>).then(
        () => holdParams(s, -cost),
        (err) => {
          holdParams(s, -cost);
          s.opts.onHandlerError?.(err, ctx);
        },
      );
      return;
    }
  } catch (err) {
    s.opts.onHandlerError?.(err, ctx);
  }
  holdParams(s, -cost);
}

export function createContext<C extends InboundCall>(s: EngineState<C>, id: number, method: string): C {
  return s.opts.createContext ? s.opts.createContext(id, method) : (new InboundCall(id, method) as C);
}
