// Streams (issue 23): a handler that returns an async iterable streams its items to the
// caller, who reads them with `for await`. Each item is a request of the protocol's own,
// `$item [callId, value]`, from the producer to the consumer; the consumer answers it when
// its reader takes the item. So an item is a reliable message (numbered, kept, re-sent
// once after a resume: a stream survives cuts with every item once, in order), the answer
// is the credit (the producer keeps at most STREAM_WINDOW items unanswered: a slow reader
// slows the producer, and what waits is counted in the held-bytes budget like any running
// call), and the stream's own call ends it: its response after the last item, or its
// error. A reader that stops (break, its signal, the session's end) gives the call up: the
// producer sees `$cancel` and its iterator's return() runs. A call's params may be streams
// too (uploads.ts): the callee reads each with a stream call of its own, `$upload`.

import { encode } from '../codec.ts';
import { ErrorCode, RpcError, toRpcError } from '../errors.ts';
import { RESPONSE } from '../messages.ts';
import { errorResponse } from '../refusals.ts';
import type { CallOptions } from '../contract.ts';
import { InboundCall } from './options.ts';
import { call } from './outgoing.ts';
import { track, untrack } from './running.ts';
import { replyError, sendReliable } from './send.ts';
import type { EngineState } from './state.ts';

/** The protocol's request carrying one item of a stream: `[callId, value]`. */
export const ITEM = '$item';
/**
 * Several items of a stream in one request, `[callId, [value, …]]` (SPEC §12, the feature
 * `items`): answered once the reader has taken them all, the credit for all of them. A
 * producer uses it only with a peer that named the feature; it costs one request and one
 * answer for what the producer had ready in one event-loop turn.
 */
export const ITEMS = '$items';
/** Items a producer sends before the first is answered (each value of an `$items` counts). */
export const STREAM_WINDOW = 16;

/** A stream's items: no deadline (a slow reader slows the producer instead). */
const ITEM_CALL = { timeoutMs: Infinity };
/** The end of this event-loop turn (browsers have no setImmediate: a timer there). */
const immediate = (globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate;
const endOfTurn: (fn: () => void) => unknown = immediate ?? ((fn) => setTimeout(fn, 0));

/** The reader's side of one stream: items received and not yet taken, and how it ends. */
export class StreamQueue {
  readonly items: InboundCall[] = [];
  /** Items taken whose credit waits for a token of the sender's rate limit (payOwed), made when first needed. */
  owed: EngineCall[] | undefined = undefined;
  readonly values: unknown[] = [];
  ended = false;
  error: RpcError | undefined;
  wake: (() => void) | undefined;
}

/**
 * The engine's own traffic on a stream: an item waiting for its reader, an upload being
 * read. Tracked like a running call (cancel, held bytes, the session's end), not reported
 * as a call served.
 */
export class EngineCall extends InboundCall {
  /**
   * Tokens of the sender's rate limit its items came past (an `$items` pays one a value):
   * the credit waits until the bucket has them.
   */
  owedTokens = 0;
  /** Values of this request the reader has not taken yet (an `$items` carries several). */
  untaken = 1;
  override get unobserved(): boolean {
    return true;
  }
}


/** Does a handler's result stream (an async iterable that is not a promise)? */
export function isStream(v: unknown): v is AsyncIterable<unknown> {
  return v !== null && typeof v === 'object' && typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}

// ---- producer -----------------------------------------------------------------------

/**
 * Send `iterable`'s items as the answer to `ctx`'s call, then end the call. `served`: the
 * stream answers a call of the peer's to `method` here (a handler's result); else it is an
 * upload of this side's call `method` (uploads.ts), answering the peer's `$upload`.
 */
export async function produce(s: EngineState<any>, ctx: InboundCall, iterable: AsyncIterable<unknown>, method = ctx.method, served = true): Promise<void> {
  if (s.incoming.get(ctx.id) !== ctx) track(s, ctx); // cancellable ($cancel) while it streams
  const observer = s.opts.observer;
  let it: AsyncIterator<unknown> | undefined;
  let unanswered = 0;
  let items = 0;
  let failed: RpcError | undefined;
  let wake: (() => void) | undefined;
  const live = () => s.incoming.get(ctx.id) === ctx && !s.closedBy && failed === undefined;
  const credited = (n: number, sent: Promise<unknown>) =>
    sent.then(
      () => {
        unanswered -= n;
        wake?.();
      },
      (err: RpcError) => {
        failed ??= err;
        unanswered -= n;
        wake?.();
      },
    );
  // Items pulled this event-loop turn, sent together at its end (`$items`) when the reader's
  // side takes them; `batching` drops to false for a stream whose items together break the
  // peer's limits (large items: one `$item` each from then on).
  let batch: unknown[] | undefined;
  let batching = s.peerItems;
  const sendBatch = () => {
    const values = batch;
    if (values === undefined) return; // sent already (the stream ended first)
    batch = undefined;
    if (!live()) return;
    // s.peerItems again: a resume may have landed on a node that does not take `$items`.
    if (values.length > 1 && batching && s.peerItems && !s.relay) {
      const sent = call(s, ITEMS, [ctx.id, values], ITEM_CALL, undefined, true);
      if (sent !== undefined) return void credited(values.length, sent);
      batching = false;
    }
    // One at a time, as without batching: each written out before the next is checked
    // against the peer's congestion (what waits in this turn counts toward it).
    for (const value of values) {
      s.writer.flush();
      send(value);
    }
  };
  // The session moved to another node mid-stream: that node sends the item (handover.ts).
  const send = (value: unknown) => credited(1, s.relay ? s.relay.item(ctx.id, value) : call(s, ITEM, [ctx.id, value], ITEM_CALL));
  // Stopped from outside ($cancel, the session's end, an upload's call settling): a producer
  // waiting for credit the reader will never give wakes up and stops.
  ctx.signal.addEventListener('abort', () => wake?.(), { once: true });
  try {
    it = iterable[Symbol.asyncIterator]();
    for (;;) {
      if (!live()) break;
      const r = await it.next();
      if (r.done || !live()) break;
      while (unanswered >= STREAM_WINDOW && live()) await new Promise<void>((w) => (wake = w));
      if (!live()) break;
      unanswered++;
      if (!batching) send(r.value);
      else if (batch === undefined) {
        batch = [r.value];
        endOfTurn(sendBatch);
      } else batch.push(r.value);
      observer?.streamItem?.(method, served, true, served ? ctx : undefined, ++items);
    }
    if (batch !== undefined) sendBatch();
    while (unanswered > 0 && live()) await new Promise<void>((w) => (wake = w));
  } catch (err) {
    // The iterable failed: a coded error goes to the reader as is, anything else INTERNAL (reported).
    if (!(err instanceof RpcError) && served) s.opts.onHandlerError?.(err, ctx);
    failed ??= toRpcError(err);
  }
  // Items pulled before the iterable failed go out before its error (SPEC §12).
  if (batch !== undefined) {
    const error = failed;
    failed = undefined;
    sendBatch();
    failed ??= error;
  }
  if (it !== undefined && (!live() || failed)) await Promise.resolve(it.return?.()).catch(() => {});
  if (s.incoming.get(ctx.id) !== ctx) return; // cancelled, or the session ended
  untrack(s, ctx);
  if (served) observer?.served(ctx.method, failed ? failed.code : null, ctx);
  if (failed) return replyError(s, ctx.id, failed.toWire());
  respond(s, ctx.id, encode([RESPONSE, ctx.id, null, null], s.peerLimits));
}

/** A response from here: to the player, or through the node its session moved to. */
function respond(s: EngineState<any>, id: number, bytes: Uint8Array): void {
  if (s.relay) s.relay.response(id, bytes);
  else sendReliable(s, bytes, -1);
}

// ---- consumer -----------------------------------------------------------------------

/**
 * `$item [callId, value]` arrived, or with `many` `$items [callId, [value, …]]` (paid for by
 * the request): queue it for the stream's reader.
 */
export function onItem(s: EngineState<any>, id: number, params: unknown[], cost: number, owesToken = false, many = false): void {
  const values = params[1];
  // At most a window's worth: more would be items the producer may not send unanswered.
  if (many && !(typeof params[0] === 'number' && Array.isArray(values) && values.length >= 1 && values.length <= STREAM_WINDOW))
    return replyError(s, id, { code: ErrorCode.INVALID_PARAMS, message: `$items takes [callId, [1 to ${STREAM_WINDOW} values]]` });
  const queue = s.streams?.get(params[0] as number);
  // A stream the node this session moved from reads: the item goes on to it (handover.ts).
  if (queue === undefined && s.relayedCalls?.itemBack(s, id, params[0] as number, values, cost, many)) return;
  if (queue === undefined || queue.ended) {
    // No reader for it (a plain call() of a streaming method, or a reader that stopped).
    return replyError(s, id, { code: ErrorCode.CANCELLED, message: 'nobody reads this stream' });
  }
  const ctx = new EngineCall(id, many ? ITEMS : ITEM);
  ctx.held = cost;
  ctx.owedTokens = owesToken ? 1 : 0;
  track(s, ctx);
  if (many) {
    // One entry per value, all the same request: answered when the last is taken (credit()).
    ctx.untaken = (values as unknown[]).length;
    // The request paid one token; each further value pays one too (or owes it), so a stream
    // is paced to the rate limit in items whichever way they come.
    for (let i = 1; i < ctx.untaken; i++) if (s.opts.admit?.()) ctx.owedTokens++;
    for (const value of values as unknown[]) {
      queue.items.push(ctx);
      queue.values.push(value);
    }
  } else {
    queue.items.push(ctx);
    queue.values.push(values);
  }
  queue.wake?.();
}

/**
 * Call `method` and read its answer as a stream of items. `owner`: the stream is an upload
 * its handler reads (uploads.ts), counted under its method.
 */
export function stream(s: EngineState<any>, method: string, params: unknown[], opts?: CallOptions, owner?: InboundCall): AsyncIterable<unknown> {
  return {
    [Symbol.asyncIterator]() {
      const queue = new StreamQueue();
      const observer = s.opts.observer;
      let callId = -1;
      let items = 0;
      const done = call(s, method, params, { timeoutMs: Infinity, ...opts }, (id) => {
        callId = id;
        (s.streams ??= new Map()).set(id, queue);
      });
      const end = (error?: RpcError) => {
        if (queue.ended) return;
        queue.ended = true;
        queue.error = error;
        if (callId >= 0) s.streams?.delete(callId);
        queue.wake?.();
      };
      done.then(
        () => end(),
        (err: RpcError) => end(err),
      );
      const stop = (): void => {
        // The reader stopped: the call is given up ($cancel), what waits is answered.
        if (callId >= 0 && !queue.ended) s.outgoingCalls?.giveUp(callId, new RpcError(ErrorCode.CANCELLED, 'the reader stopped'));
        end();
        for (const ctx of queue.items.splice(0)) answerItem(s, ctx, false);
        for (const ctx of queue.owed?.splice(0) ?? []) answerItem(s, ctx, true); // taken: credited, nothing more comes
        queue.values.length = 0;
      };
      return {
        async next(): Promise<IteratorResult<unknown>> {
          for (;;) {
            const ctx = queue.items.shift();
            if (ctx !== undefined) {
              credit(s, queue, ctx as EngineCall); // the producer may send one more
              observer?.streamItem?.(owner ? owner.method : method, owner !== undefined, false, owner, ++items);
              return { value: queue.values.shift(), done: false };
            }
            if (queue.ended) {
              if (queue.error) throw queue.error;
              return { value: undefined, done: true };
            }
            await new Promise<void>((w) => (queue.wake = w));
            queue.wake = undefined;
          }
        },
        async return(): Promise<IteratorResult<unknown>> {
          stop();
          return { value: undefined, done: true };
        },
      };
    },
  };
}

/**
 * The credit for an item the reader took: now, or for an item that came past the sender's
 * rate limit, once the sender's bucket has a token again (one timer per stream, not per
 * item): the producer slows to the rate limit instead of its stream failing RATE_LIMITED.
 */
function credit(s: EngineState<any>, queue: StreamQueue, ctx: EngineCall): void {
  if (--ctx.untaken > 0) return; // an `$items` with values still to take
  if (ctx.owedTokens === 0) return answerItem(s, ctx, true);
  const owed = (queue.owed ??= []);
  owed.push(ctx);
  if (owed.length === 1) payOwed(s, queue);
}

function payOwed(s: EngineState<any>, queue: StreamQueue): void {
  const owed = queue.owed!;
  while (owed.length > 0) {
    const ctx = owed[0]!;
    while (ctx.owedTokens > 0 && s.incoming.get(ctx.id) === ctx) {
      const refused = s.opts.admit?.();
      if (refused) {
        setTimeout(payOwed, Math.max(1, (refused.data as { retryAfterMs?: number } | undefined)?.retryAfterMs ?? 1), s, queue);
        return;
      }
      ctx.owedTokens--;
    }
    owed.shift();
    answerItem(s, ctx, true);
  }
}

/** Answer an item's request: taken (the credit), or refused because the reader stopped. */
function answerItem(s: EngineState<any>, ctx: InboundCall, taken: boolean): void {
  if (s.incoming.get(ctx.id) !== ctx) return; // the session ended meanwhile
  untrack(s, ctx);
  if (s.closedBy) return;
  if (taken) respond(s, ctx.id, encode([RESPONSE, ctx.id, null, null]));
  else respond(s, ctx.id, errorResponse(ctx.id, { code: ErrorCode.CANCELLED, message: 'the reader stopped' }));
}
