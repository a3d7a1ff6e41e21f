// Room membership by uid. A membership lives exactly as long as its uid's session on this
// node: the server joins only uids it holds a session for, and the session's end removes
// them from every room (a replacing login takes the session's place, and its rooms). So
// no membership outlives its player, and a later login starts in no room. Each room is a
// uWebSockets.js topic, so a room notification is encoded once and fanned out in C++.
//
// One uid's rooms are bounded (maxPerUid): a membership costs ~700 B, and a handler that
// joins a room named by the client would otherwise let one player grow memory at will.

import { ErrorCode, RpcError } from '../protocol/index.ts';

export const roomTopic = (room: string): string => `r:${room}`;

/** Default of ServerOptions.maxRoomsPerUid: far above any game's needs, 0.7 MB per uid at most. */
export const DEFAULT_MAX_ROOMS_PER_UID = 1024;

export class Rooms {
  #members = new Map<string, Set<string>>();
  #roomsOf = new Map<string, Set<string>>();
  #size = 0;

  constructor(readonly maxPerUid: number = DEFAULT_MAX_ROOMS_PER_UID) {
    if (!(maxPerUid >= 1)) throw new RangeError('maxRoomsPerUid must be at least 1');
  }

  /**
   * Returns true if uid was not already a member. Throws RpcError INVALID_PARAMS when uid
   * is in maxPerUid rooms already (joining one it is in is always fine).
   */
  join(uid: string, room: string): boolean {
    let members = this.#members.get(room);
    if (members?.has(uid)) return false;
    let rooms = this.#roomsOf.get(uid);
    if (rooms && rooms.size >= this.maxPerUid)
      throw new RpcError(ErrorCode.INVALID_PARAMS, `already in ${this.maxPerUid} rooms (maxRoomsPerUid)`);
    if (!members) this.#members.set(room, (members = new Set()));
    members.add(uid);
    if (!rooms) this.#roomsOf.set(uid, (rooms = new Set()));
    rooms.add(room);
    this.#size++;
    return true;
  }

  /** Returns true if uid was a member. */
  leave(uid: string, room: string): boolean {
    const members = this.#members.get(room);
    if (!members?.delete(uid)) return false;
    if (members.size === 0) this.#members.delete(room);
    const rooms = this.#roomsOf.get(uid)!;
    rooms.delete(room);
    if (rooms.size === 0) this.#roomsOf.delete(uid);
    this.#size--;
    return true;
  }

  /** Remove uid from every room; returns the rooms it left. */
  leaveAll(uid: string): string[] {
    const rooms = [...(this.#roomsOf.get(uid) ?? [])];
    for (const room of rooms) this.leave(uid, room);
    return rooms;
  }

  members(room: string): string[] {
    return [...(this.#members.get(room) ?? [])];
  }

  roomsOf(uid: string): string[] {
    return [...(this.#roomsOf.get(uid) ?? [])];
  }

  /** Memberships on this node, all rooms together. */
  get size(): number {
    return this.#size;
  }

  /** Rooms and memberships (a uid in two rooms counts twice), for metrics. */
  stats(): { rooms: number; members: number } {
    return { rooms: this.#members.size, members: this.#size };
  }
}
