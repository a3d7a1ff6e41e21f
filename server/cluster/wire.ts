// What nodes say to each other over Redis pub/sub: one msgpack array per message, the
// first element its kind. Plain arrays (no msgpackr records) so nodes of different
// versions still read each other, as on the client wire.

import { Packr } from 'msgpackr/pack';
import { Unpackr } from 'msgpackr/unpack';
import type { WireError } from '../../protocol/index.ts';

export const CALL = 0;
export const REPLY = 1;
export const CANCEL = 2;
export const NOTIFY = 3;
export const KICK = 4;
export const NOT_HERE = 5;
export const JOIN = 6;
export const LEAVE = 7;
export const PING = 8;
// Sessions moving between nodes (handover.ts).
export const TAKE = 9;
export const GIVE = 10;
export const RESPONSE = 11;
export const GIVE_UP = 12;
export const ANSWER = 13;
export const CANCEL_RUN = 14;
// Streams from players on other nodes (remoteStreams.ts).
export const STREAM_OPEN = 15;
export const STREAM_ITEM = 16;
export const STREAM_CREDIT = 17;
export const STREAM_END = 18;
export const STREAM_CANCEL = 19;
// Streams of a session that moved between nodes (handover.ts).
export const ITEM_IN = 20;
export const ITEM_OUT = 21;
export const ITEM_CREDIT = 22;
/** ITEM_IN for a player's `$items` (a kind of its own: a node that predates it ignores it rather than take the list for one item). */
export const ITEMS_IN = 23;

export type NodeMessage =
  /** Call uid's client; reply to node `from` with call `id`. timeoutMs: the caller's remaining deadline. */
  | [kind: typeof CALL, from: string, id: number, uid: string, method: string, params: unknown[], timeoutMs: number, traceparent?: string]
  | [kind: typeof REPLY, id: number, error: WireError | null, result: unknown]
  /** The caller gave up on call `id` (deadline or abort): stop the client's handler. */
  | [kind: typeof CANCEL, from: string, id: number]
  | [kind: typeof NOTIFY, uid: string, method: string, params: unknown[]]
  /** uid logged in on another node: close session `sid` here (code is a CloseCode). */
  | [kind: typeof KICK, uid: string, sid: string, code: number, reason: string]
  /** Call `id` reached a node that does not hold its uid: it did not run; look again. */
  | [kind: typeof NOT_HERE, id: number]
  /** Room membership for a uid held by the receiving node, asked by another node. */
  | [kind: typeof JOIN | typeof LEAVE, uid: string, room: string]
  /** Liveness probe: only its publish's receiver count matters (0: the node is gone); ignored. */
  | [kind: typeof PING]
  /** A player resumed on node `from` with session `sid`: hand it over (answer GIVE with request `id`). */
  | [kind: typeof TAKE, from: string, id: number, uid: string, sid: string]
  /** The session's engine image and rooms (null, null: it can't move, or is not here). */
  | [kind: typeof GIVE, from: string, id: number, uid: string, sid: string, image: unknown, rooms: string[] | null]
  /** To the new node: the old node's handler answered the player's call `id` (encoded response). */
  | [kind: typeof RESPONSE, uid: string, sid: string, id: number, bytes: Uint8Array]
  /** To the new node: the old node gave up its call `id` to the player (send `$cancel`). */
  | [kind: typeof GIVE_UP, uid: string, sid: string, id: number]
  /** To the old node: the player answered its call `id`. */
  | [kind: typeof ANSWER, uid: string, sid: string, id: number, error: WireError | null, result: unknown]
  /** To the old node: the player cancelled its call `id` running there (or its session ended). */
  | [kind: typeof CANCEL_RUN, uid: string, sid: string, id: number]
  /** Read uid's stream `method(params)` for node `from`, as its stream `id`. */
  | [kind: typeof STREAM_OPEN, from: string, id: number, uid: string, method: string, params: unknown[]]
  /** To the reader's node: the next item of its stream `id`. */
  | [kind: typeof STREAM_ITEM, id: number, value: unknown]
  /** To the holder: the reader of `from`'s stream `id` took an item (one more may come). */
  | [kind: typeof STREAM_CREDIT, from: string, id: number]
  /** To the reader's node: stream `id` ended (error null) or failed. */
  | [kind: typeof STREAM_END, id: number, error: WireError | null]
  /** To the holder: `from`'s reader of stream `id` stopped. */
  | [kind: typeof STREAM_CANCEL, from: string, id: number]
  /** To the old node: the player's item `id` of the stream the old node reads with its call `callId`. */
  | [kind: typeof ITEM_IN, uid: string, sid: string, id: number, callId: number, value: unknown]
  /** As ITEM_IN for the player's `$items` request `id`: its values. */
  | [kind: typeof ITEMS_IN, uid: string, sid: string, id: number, callId: number, values: unknown[]]
  /** To the new node: the next item of the stream the old node's handler answers the player's call `callId` with. */
  | [kind: typeof ITEM_OUT, uid: string, sid: string, callId: number, value: unknown]
  /** To the old node: the player took (error null) or refused the oldest item sent for `callId`. */
  | [kind: typeof ITEM_CREDIT, uid: string, sid: string, callId: number, error: WireError | null];

/** On a room's channel: a room notification, already encoded for clients; or a node saying it listens (roomListeners.ts). */
export type RoomMessage = [from: string, room: string, bytes: Uint8Array] | [from: string, room: string, listening: number];

const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export const pack = (msg: NodeMessage | RoomMessage): Buffer => packr.pack(msg);

/** Decode a message; undefined for anything that is not an array (never throws). */
export function unpack(buf: Buffer): unknown[] | undefined {
  try {
    const value = unpackr.unpack(buf);
    return Array.isArray(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Decode a batch (one or more concatenated messages); non-arrays are skipped, never throws. */
export function unpackAll(buf: Buffer): unknown[][] {
  try {
    return (unpackr.unpackMultiple(buf) as unknown[]).filter((v): v is unknown[] => Array.isArray(v));
  } catch {
    return [];
  }
}
