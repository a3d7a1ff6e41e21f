// Sessions that move between nodes (issue 22): a player who reconnects to another node
// with its session id resumes there. The new node asks the node Redis names as the
// holder (TAKE); that node exports the session's engine (GIVE: sequence numbers, kept
// messages, rooms, the ids of calls in flight both ways) and keeps the old engine only
// as a relay for those calls, until each has settled: its handlers' answers go to the
// new node (RESPONSE), its callers get the player's answers from it (ANSWER), and cancels
// cross both ways. No message crosses Redis while no session moves.

import {
  ErrorCode,
  RpcError,
  exportSession,
  importSession,
  relayedAnswer,
  relayedCancel,
  relayedGiveUp,
  relayedItem,
  relayedItemOut,
  relayedResponse,
  type RelayBack,
  type RpcPeer,
  type SessionImage,
  type WireError,
} from '../../protocol/index.ts';
import type { LocalNode, TakenSession } from '../adapter.ts';
import { ANSWER, CANCEL_RUN, GIVE, GIVE_UP, ITEM_CREDIT, ITEM_IN, ITEM_OUT, ITEMS_IN, RESPONSE, TAKE, pack } from './wire.ts';

/** Default of RedisAdapterOptions.maxHandoverBytes. */
export const DEFAULT_MAX_HANDOVER_BYTES = 4 * 1024 * 1024;

/** Default of RedisAdapterOptions.handoverTimeoutMs. */
export const DEFAULT_HANDOVER_TIMEOUT_MS = 1500;

export interface HandoverLink {
  readonly nodeId: string;
  /** Send on a node's channel, in order with every other message to it; `delivered` learns how many nodes received it. */
  send(node: string, message: Buffer, delivered?: (receivers: number) => void): void;
  /** The node and sid Redis names for uid. */
  holder(uid: string): Promise<{ node: string; sid: string }>;
  /** Read a stream of uid's, wherever it is now (remoteStreams.ts). */
  stream(uid: string, method: string, params: unknown[]): AsyncIterable<unknown>;
}

/** A moved-away engine still relaying calls in flight, and the node the session went to. */
interface Moved {
  peer: RpcPeer<any>;
  node: string;
  /** Items its streaming handlers sent through the new node, awaiting the player's credit, by call id (in order). */
  credits: Map<number, { resolve: () => void; reject: (err: RpcError) => void }[]>;
}

export class Handovers {
  #nextTake = 0;
  /** Takes waiting for their GIVE, by request id. */
  #taking = new Map<number, (taken: TakenSession | undefined) => boolean>();
  /** Engines whose session moved away, by "<uid> <sid>", until their calls in flight settle. */
  #moved = new Map<string, Moved>();

  constructor(
    readonly link: HandoverLink,
    readonly local: LocalNode,
    /** Most bytes one session's image may carry through Redis. */
    readonly maxBytes: number,
    /** How long a take waits for the holder's GIVE before the player starts afresh. */
    readonly timeoutMs: number,
  ) {}

  /** Engines of moved sessions still relaying calls (tests, drain). */
  get relaying(): number {
    return this.#moved.size;
  }

  // ---- the new node ---------------------------------------------------------------

  /**
   * Ask the node holding uid's session `sid` for it; `install` puts it in place when it
   * arrives, synchronously, before the relayed answers that follow it in the same batch
   * (false: it could not). Resolves true once installed; false when no node has the
   * session, it can't move, or it did not come within `timeoutMs`.
   */
  async take(uid: string, sid: string, install: (taken: TakenSession) => boolean): Promise<boolean> {
    const holder = await this.link.holder(uid).catch(() => undefined);
    if (!holder || !holder.node || holder.node === this.link.nodeId || holder.sid !== sid) return false;
    const id = ++this.#nextTake;
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle(undefined), this.timeoutMs);
      const settle = (taken: TakenSession | undefined): boolean => {
        clearTimeout(timer);
        this.#taking.delete(id);
        const installed = taken !== undefined && install(taken);
        resolve(installed);
        return installed;
      };
      this.#taking.set(id, settle);
      // A holder that is gone (crashed: its presence entry outlives it by up to a TTL) has
      // no subscriber: the player learns at once that its session went with it.
      this.link.send(holder.node, pack([TAKE, this.link.nodeId, id, uid, sid]), (receivers) => {
        if (receivers === 0 && this.#taking.get(id) === settle) settle(undefined);
      });
    });
  }

  #onGive(from: string, id: number, uid: string, sid: string, image: unknown, rooms: unknown): void {
    const valid = checkImage(image) && Array.isArray(rooms) && rooms.every((r) => typeof r === 'string');
    const settle = this.#taking.get(id);
    if (!settle) {
      // Too late (the player started afresh): the old node's calls must not wait on us.
      if (valid) this.#orphan(from, uid, sid, image);
      return;
    }
    if (!valid) return void settle(undefined);
    if (!settle({ image, rooms: rooms as string[], back: this.#back(from, uid, sid) })) this.#orphan(from, uid, sid, image);
  }

  /** The way back to the old node for the player's answers and cancels. */
  #back(node: string, uid: string, sid: string): RelayBack {
    return {
      answer: (id, error, result) => this.link.send(node, safePack([ANSWER, uid, sid, id, error, result === undefined ? null : result])),
      cancelRun: (id) => this.link.send(node, pack([CANCEL_RUN, uid, sid, id])),
      item: (id, callId, value, many) => {
        let message: Buffer;
        try {
          message = pack(many ? [ITEMS_IN, uid, sid, id, callId, value as unknown[]] : [ITEM_IN, uid, sid, id, callId, value]);
        } catch {
          return false;
        }
        this.link.send(node, message);
        return true;
      },
      credit: (callId, error) => this.link.send(node, pack([ITEM_CREDIT, uid, sid, callId, error])),
    };
  }

  /** An image nobody took: fail the old node's calls and stop its handlers. */
  #orphan(node: string, uid: string, sid: string, image: SessionImage): void {
    const gone: WireError = { code: ErrorCode.DISCONNECTED, message: `${uid} disconnected` };
    const back = this.#back(node, uid, sid);
    for (const [id] of image.calling) back.answer(id, gone, null);
    for (const [id] of image.running) back.cancelRun(id);
  }

  // ---- the old node ---------------------------------------------------------------

  #onTake(from: string, id: number, uid: string, sid: string): void {
    const key = `${uid} ${sid}`;
    const credits: Moved['credits'] = new Map();
    const relay = {
      response: (callId: number, bytes: Uint8Array) => {
        this.link.send(from, pack([RESPONSE, uid, sid, callId, bytes]));
        this.#settled(key);
      },
      cancel: (callId: number) => {
        this.link.send(from, pack([GIVE_UP, uid, sid, callId]));
        this.#settled(key);
      },
      stream: (method: string, params: unknown[]) => this.link.stream(uid, method, params),
      item: (callId: number, value: unknown) =>
        new Promise<void>((resolve, reject) => {
          let message: Buffer;
          try {
            message = pack([ITEM_OUT, uid, sid, callId, value]);
          } catch {
            return reject(new RpcError(ErrorCode.INTERNAL, 'a stream item could not be encoded'));
          }
          let waiting = credits.get(callId);
          if (!waiting) credits.set(callId, (waiting = []));
          waiting.push({ resolve, reject });
          this.link.send(from, message);
        }),
    };
    const out = this.local.handOver?.(uid, sid, (peer) => exportSession(peer, relay));
    let message: Buffer | undefined;
    if (out) {
      try {
        message = pack([GIVE, this.link.nodeId, id, uid, sid, out.image, out.rooms]);
      } catch {
        message = undefined;
      }
      if (message && message.byteLength > this.maxBytes) message = undefined;
      if (!message) {
        // Too large to move (or not encodable): the session ends here; the player starts afresh.
        out.peer.close(new RpcError(ErrorCode.DISCONNECTED, `${uid}'s session could not move`));
      } else {
        this.#moved.set(key, { peer: out.peer, node: from, credits });
        this.#settled(key);
      }
    }
    this.link.send(from, message ?? pack([GIVE, this.link.nodeId, id, uid, sid, null, null]));
  }

  /** A moved engine with nothing left in flight is done. */
  #settled(key: string): void {
    queueMicrotask(() => {
      const m = this.#moved.get(key);
      if (m && m.peer.pendingIncoming === 0 && m.peer.pendingOutgoing === 0) {
        this.#moved.delete(key);
        m.peer.close();
      }
    });
  }

  // ---- relayed calls, either side -------------------------------------------------

  /** The engine of uid's session `sid` on this node: live here, or moved away and relaying. */
  #peer(uid: string, sid: string): RpcPeer<any> | undefined {
    return this.#moved.get(`${uid} ${sid}`)?.peer ?? this.local.sessionPeer?.(uid, sid);
  }

  receive(m: unknown[]): void {
    const kind = m[0];
    if (kind === TAKE) return this.#onTake(String(m[1]), Number(m[2]), String(m[3]), String(m[4]));
    if (kind === GIVE) return this.#onGive(String(m[1]), Number(m[2]), String(m[3]), String(m[4]), m[5], m[6]);
    const [, uid, sid, id] = m as [number, string, string, number];
    const key = `${uid} ${sid}`;
    const peer = this.#peer(String(uid), String(sid));
    if (!peer || typeof id !== 'number') return;
    if ((kind === ITEM_IN || kind === ITEMS_IN) && typeof m[4] === 'number') relayedItem(peer, id, m[4], m[5], kind === ITEMS_IN);
    else if (kind === ITEM_OUT) relayedItemOut(peer, id, m[4]);
    else if (kind === ITEM_CREDIT) this.#credit(key, id, (m[4] ?? null) as WireError | null);
    else if (kind === RESPONSE && m[4] instanceof Uint8Array) relayedResponse(peer, id, m[4]);
    else if (kind === GIVE_UP) relayedGiveUp(peer, id);
    else if (kind === ANSWER) relayedAnswer(peer, id, (m[4] ?? null) as WireError | null, m[5]);
    else if (kind === CANCEL_RUN) relayedCancel(peer, id);
    this.#settled(key);
  }

  /** The player's answer to the oldest item a moved engine's handler streamed for its call `callId`. */
  #credit(key: string, callId: number, error: WireError | null): void {
    const waiting = this.#moved.get(key)?.credits.get(callId);
    const next = waiting?.shift();
    if (!next) return;
    if (waiting!.length === 0) this.#moved.get(key)!.credits.delete(callId);
    if (error === null) next.resolve();
    else next.reject(RpcError.fromWire(error));
  }

  /** Shutting down: the moved engines' callers get DISCONNECTED, their handlers stop. */
  close(): void {
    for (const m of this.#moved.values()) m.peer.close();
    this.#moved.clear();
    for (const settle of [...this.#taking.values()]) void settle(undefined);
  }
}

function safePack(message: unknown[]): Buffer {
  try {
    return pack(message as never);
  } catch {
    const copy = [...message];
    copy[4] = { code: ErrorCode.INTERNAL, message: 'result could not be encoded' };
    copy[5] = null;
    return pack(copy as never);
  }
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** An image from another node: trusted infrastructure, still checked before the engine takes it. */
function checkImage(v: unknown): v is SessionImage {
  if (typeof v !== 'object' || v === null) return false;
  const i = v as Record<string, unknown>;
  return (
    isInt(i.peerAcked) &&
    isInt(i.received) &&
    Array.isArray(i.kept) &&
    i.kept.every((k) => Array.isArray(k) && k[0] instanceof Uint8Array && typeof k[1] === 'number') &&
    Array.isArray(i.cancelOwed) &&
    i.cancelOwed.every(isInt) &&
    Array.isArray(i.owedCancels) &&
    i.owedCancels.every(isInt) &&
    Array.isArray(i.calling) &&
    i.calling.every((c) => Array.isArray(c) && isInt(c[0]) && typeof c[1] === 'string' && typeof c[2] === 'number') &&
    Array.isArray(i.running) &&
    i.running.every((r) => Array.isArray(r) && isInt(r[0]) && typeof r[1] === 'string') &&
    typeof i.peerLimits === 'object' &&
    i.peerLimits !== null
  );
}
