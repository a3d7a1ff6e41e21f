// Room membership by uid. Membership belongs to the uid, not the socket: a replacing
// login inherits it. Each room is a uWebSockets.js topic, so a room notification is
// encoded once and fanned out in C++.

export const roomTopic = (room: string): string => `r:${room}`;

export class Rooms {
  #members = new Map<string, Set<string>>();
  #roomsOf = new Map<string, Set<string>>();

  /** Returns true if uid was not already a member. */
  join(uid: string, room: string): boolean {
    let members = this.#members.get(room);
    if (!members) this.#members.set(room, (members = new Set()));
    if (members.has(uid)) return false;
    members.add(uid);
    let rooms = this.#roomsOf.get(uid);
    if (!rooms) this.#roomsOf.set(uid, (rooms = new Set()));
    rooms.add(room);
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

  /** Rooms and memberships (a uid in two rooms counts twice), for metrics. */
  stats(): { rooms: number; members: number } {
    let members = 0;
    for (const set of this.#members.values()) members += set.size;
    return { rooms: this.#members.size, members };
  }

}
