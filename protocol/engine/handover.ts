// A session's engine moving to another process (a player resumed on another node). The
// old engine exports what the session needs (sequence numbers, kept messages, the ids of
// calls still in flight both ways) and stays behind as a relay for those calls only: its
// handlers still running answer through the new engine, its callers still waiting get
// the player's answers from it. The new engine imports the image, keeps each in-flight
// call's id reserved with a placeholder, and re-sends what the player lacks after its
// first `$ack`, as on any resume. Nothing here runs while no session moves.

import { ErrorCode, RpcError, type WireError } from '../errors.ts';
import { announcedBy, type Limits } from '../limits.ts';
import { chargeTotal } from './budget.ts';
import { InboundCall } from './options.ts';
import { PendingCalls, defaultTimers } from './pendingCalls.ts';
import { ReliableStream } from './reliable.ts';
import { detach } from './resume.ts';
import { receiveCancel, track, untrack } from './running.ts';
import { call, cancelRemote } from './outgoing.ts';
import { ITEM, ITEMS, onItem } from './streams.ts';
import { replyError, sendReliable } from './send.ts';
import type { EngineState, OutgoingData } from './state.ts';

/** What a session's engine carries to its new node. */
export interface SessionImage {
  /** The player's `$ack` so far: kept[0] is message peerAcked + 1. */
  peerAcked: number;
  /** Reliable messages received from the player. */
  received: number;
  /** Messages the player has not acknowledged, in seq order: [bytes, call id or -1]. */
  kept: [bytes: Uint8Array, requestId: number][];
  /** Seqs of kept requests given up while offline: their `$cancel` follows the re-send. */
  cancelOwed: number[];
  /** Ids of given-up calls the player already had: `$cancel` after the resync. */
  owedCancels: number[];
  /** The old node's calls to the player still waiting: [id, method, ms left]. */
  calling: [id: number, method: string, msLeft: number][];
  /** The player's calls still running on the old node: [id, method]. */
  running: [id: number, method: string][];
  /** The player's announced receive limits. */
  peerLimits: Limits;
  /** The player named the feature `items` (`$features`): it takes `$items`. Absent from a node that predates it. */
  peerItems?: boolean;
}

/** The old engine's side of the calls still in flight, carried to the new one. */
export interface Relay {
  /** A handler here answered the player's call `id` (its encoded response). */
  response(id: number, bytes: Uint8Array): void;
  /** This side gave up its call `id` to the player: the new node sends the `$cancel`. */
  cancel(id: number): void;
  /**
   * A handler here streams its answer to the player's call `callId`: the new node sends
   * the item (SPEC §12). Settles when the player took it (the credit) or refused it.
   */
  item(callId: number, value: unknown): Promise<void>;
  /** A stream call this engine makes to the player now (an upload's first read, uploads.ts): through the node it is on. */
  stream(method: string, params: unknown[]): AsyncIterable<unknown>;
}

/** The new engine's side: the player's answers and cancels, back to the old one. */
export interface RelayBack {
  /** The player answered the old node's call `id`. */
  answer(id: number, error: WireError | null, result: unknown): void;
  /** The player cancelled its call `id` (running on the old node), or the session ended. */
  cancelRun(id: number): void;
  /**
   * The player's item (its request `id`) of the stream the old node reads with its call
   * `callId`, or with `many` its `$items` (the values); false: it could not be sent.
   */
  item(id: number, callId: number, value: unknown, many: boolean): boolean;
  /** The player took (error null) or refused the oldest item the old node streamed for its call `callId`. */
  credit(callId: number, error: WireError | null): void;
}

/**
 * On the new engine: the old node's calls to the player still waiting, and the way back to
 * it. A method, not a function streams.ts imports: this module stays out of the browser build.
 */
export class RelayedCalls {
  readonly ids = new Set<number>();
  constructor(readonly back: RelayBack) {}

  /**
   * The player sent item `id` (or `$items`: `many`) of a stream the old node reads (its
   * call `callId`): relay it there, as a call of the player's running on the old node, answered (the credit) from
   * there. True when `callId` is such a call.
   */
  itemBack(s: EngineState<any>, id: number, callId: number, value: unknown, cost: number, many: boolean): boolean {
    if (!this.ids.has(callId)) return false;
    const ctx = new MovedCall(id, many ? ITEMS : ITEM, this.back);
    ctx.held = cost;
    track(s, ctx);
    if (!this.back.item(id, callId, value, many)) {
      untrack(s, ctx);
      replyError(s, id, { code: ErrorCode.INTERNAL, message: 'the item could not be relayed' });
    }
    return true;
  }
}

/** A call of the player's that runs on the old node: this node only holds its id. */
export class MovedCall extends InboundCall {
  constructor(
    id: number,
    method: string,
    /** Carries the player's cancel of this call back to the old node, where it runs. */
    readonly back: RelayBack,
  ) {
    super(id, method);
  }
  override get unobserved(): boolean {
    return true;
  }
  /** Cancelled here (the player's `$cancel`, or the session's end): stop it where it runs. */
  override abort(): void {
    this.back.cancelRun(this.id);
  }
}

/** Past any deadline the old node keeps: a placeholder outliving its call is dropped then. */
const PLACEHOLDER_GRACE_MS = 5000;

/**
 * Export the session and turn this engine into `relay`'s: nothing more is numbered or
 * kept here. Undefined when the peer does not take part in resume (plain msgpack-rpc).
 */
export function exportSession(s: EngineState<any>, relay: Relay): SessionImage | undefined {
  const reliable = s.reliable;
  if (reliable.mode !== 'acking' || s.closedBy || s.relay) return undefined;
  detach(s);
  const kept: [Uint8Array, number][] = [];
  const cancelOwed: number[] = [];
  reliable.forEachKept((seq, bytes, requestId) => {
    kept.push([bytes, requestId]);
    if (reliable.cancelOwed?.has(seq)) cancelOwed.push(seq);
  });
  const now = Date.now();
  const calling: [number, string, number][] = [];
  for (const c of s.outgoingCalls?.values() ?? []) calling.push([c.id, c.method, Math.max(0, c.deadline - now)]);
  const running: [number, string][] = [];
  for (const ctx of s.incoming.values()) running.push([ctx.id, ctx.method]);
  const image: SessionImage = {
    peerAcked: reliable.peerAcked,
    received: reliable.received,
    kept,
    cancelOwed,
    owedCancels: s.owedCancels ?? [],
    calling,
    running,
    peerLimits: s.peerLimits,
    peerItems: s.peerItems,
  };
  chargeTotal(s, -reliable.clear());
  s.reliable = new ReliableStream();
  s.owedCancels = undefined;
  s.relay = relay;
  return image;
}

/** Take over a session exported by another engine (this one fresh and detached). */
export function importSession(s: EngineState<any>, image: SessionImage, back: RelayBack): void {
  const reliable = s.reliable;
  reliable.mode = 'acking';
  reliable.sent = reliable.peerAcked = image.peerAcked;
  reliable.received = reliable.ackedReceived = image.received;
  const seqOf = new Map<number, number>();
  for (const [bytes, requestId] of image.kept) {
    const seq = reliable.push(bytes, requestId);
    if (requestId >= 0) seqOf.set(requestId, seq);
  }
  chargeTotal(s, reliable.keptBytes);
  if (image.cancelOwed.length > 0) reliable.cancelOwed = new Set(image.cancelOwed);
  if (image.owedCancels.length > 0) s.owedCancels = [...image.owedCancels];
  s.peerLimits = announcedBy(image.peerLimits);
  s.peerItems = image.peerItems === true;
  // As after a detach: the next socket is a resumed one, everything kept is unwritten.
  s.everAttached = true;
  s.writtenSeq = image.peerAcked;
  s.unwrittenBytes = reliable.keptBytes;
  if (image.calling.length > 0) {
    const outgoing = (s.outgoingCalls ??= new PendingCalls<OutgoingData>({
      timers: s.opts.timers ?? defaultTimers,
      onGiveUp: (given) => cancelRemote(s, given),
    }));
    // Streams the old node reads (SPEC §12): their items arrive here and go on to it.
    const relayed = (s.relayedCalls = new RelayedCalls(back));
    for (const [id, method, msLeft] of image.calling) {
      relayed.ids.add(id);
      outgoing.add(id, method, seqOf.get(id) ?? 0, msLeft + PLACEHOLDER_GRACE_MS).then(
        (result) => {
          relayed.ids.delete(id);
          back.answer(id, null, result);
        },
        (err: RpcError) => {
          relayed.ids.delete(id);
          back.answer(id, err.toWire(), null);
        },
      );
    }
  }
  for (const [id, method] of image.running) track(s, new MovedCall(id, method, back));
}

/** The new node relays the player's answer to a call this (moved) engine made. */
export function relayedAnswer(s: EngineState<any>, id: number, error: WireError | null, result: unknown): void {
  const calls = s.outgoingCalls;
  if (calls === undefined) return;
  if (error == null) calls.resolve(id, result);
  else if (calls.has(id)) calls.reject(id, RpcError.fromWire(error));
}

/** The new node relays the player's `$cancel` of a call running here (moved engine). */
export function relayedCancel(s: EngineState<any>, id: number): void {
  if (s.incoming.has(id)) receiveCancel(s, id);
}

/** The old node relays its handler's answer to the player's call `id`: send it (or relay it on). */
export function relayedResponse(s: EngineState<any>, id: number, bytes: Uint8Array): void {
  const ctx = s.incoming.get(id);
  if (!(ctx instanceof MovedCall)) return; // cancelled here meanwhile, or not ours
  untrack(s, ctx);
  if (s.relay) s.relay.response(id, bytes);
  else if (!s.closedBy) sendReliable(s, bytes, -1);
}

/** The new node relays the player's item `id` (its `$items` with `many`) of the stream this (moved) engine reads with its call `callId`. */
export function relayedItem(s: EngineState<any>, id: number, callId: number, value: unknown, many = false): void {
  if (s.relay === undefined || s.incoming.has(id)) return; // only a moved engine; never an id twice
  onItem(s, id, [callId, value], 0, false, many);
}

/**
 * The old node's handler streams an item of its answer to the player's call `callId`:
 * send it as this engine's own `$item` request, and the player's answer (the credit, or
 * its refusal) back. Ignored unless `callId` is a call of the player's running there.
 */
export function relayedItemOut(s: EngineState<any>, callId: number, value: unknown): void {
  const ctx = s.incoming.get(callId);
  if (!(ctx instanceof MovedCall) || s.closedBy) return;
  call(s, ITEM, [callId, value], { timeoutMs: Infinity }).then(
    () => ctx.back.credit(callId, null),
    (err: RpcError) => ctx.back.credit(callId, err.toWire()),
  );
}

/** The old node gave up its call `id` to the player: cancel the placeholder, which sends `$cancel`. */
export function relayedGiveUp(s: EngineState<any>, id: number): void {
  s.outgoingCalls?.giveUp(id, new RpcError(ErrorCode.CANCELLED, 'the caller gave up'));
}
