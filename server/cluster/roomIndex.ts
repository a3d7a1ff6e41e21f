// Rooms across nodes. Two things per room:
// - its members, in a Redis hash (uid → the node that holds it), for the calls that must
//   know each uid (callMany({room}), allMembers); a dead node's entries are dropped by the
//   next lookup that finds its liveness key expired;
// - its notifications, on a sharded channel of its own, to which a node subscribes while
//   it has members in the room and only then: a node receives no other room's traffic.

import type { Keys } from './keys.ts';
import type { RedisClient, Scripts } from './connection.ts';

export interface RoomSubscriptions {
  /** This node got its first member in `room` / lost its last one. */
  subscribe(room: string): void;
  unsubscribe(room: string): void;
}

export class RoomIndex {
  /** uid → rooms, what this node wrote, to re-write after Redis comes back empty. */
  readonly #mine = new Map<string, Set<string>>();
  /** room → how many of its members are on this node (subscribed while > 0). */
  readonly #local = new Map<string, number>();

  constructor(
    readonly nodeId: string,
    readonly keys: Keys,
    readonly redis: RedisClient,
    readonly scripts: Scripts,
    readonly subs: RoomSubscriptions,
  ) {}

  /** Rooms this node is subscribed to. */
  get rooms(): number {
    return this.#local.size;
  }

  joined(uid: string, room: string, write: boolean): Promise<unknown> | undefined {
    let rooms = this.#mine.get(uid);
    if (!rooms) this.#mine.set(uid, (rooms = new Set()));
    if (rooms.has(room)) return;
    rooms.add(room);
    const n = this.#local.get(room) ?? 0;
    this.#local.set(room, n + 1);
    if (n === 0) this.subs.subscribe(room);
    if (!write) return;
    return this.redis.hset(this.keys.room(room), uid, this.nodeId);
  }

  left(uid: string, room: string, write: boolean): Promise<unknown> | undefined {
    const rooms = this.#mine.get(uid);
    if (!rooms?.delete(room)) return;
    if (rooms.size === 0) this.#mine.delete(uid);
    this.#drop(room);
    if (!write) return;
    return this.scripts.leave(this.keys.room(room), uid, this.nodeId);
  }

  /** uid's session ended here: it leaves every room (as the server's own Rooms do). */
  leftAll(uid: string, write: boolean): Promise<unknown> | undefined {
    const rooms = this.#mine.get(uid);
    if (!rooms) return;
    this.#mine.delete(uid);
    for (const room of rooms) this.#drop(room);
    if (!write) return;
    return Promise.all([...rooms].map((room) => this.scripts.leave(this.keys.room(room), uid, this.nodeId)));
  }

  #drop(room: string): void {
    const n = this.#local.get(room)! - 1;
    if (n > 0) return void this.#local.set(room, n);
    this.#local.delete(room);
    this.subs.unsubscribe(room);
  }

  /** Members of `room` on other live nodes, with their node. */
  async remoteMembers(room: string): Promise<[uid: string, node: string][]> {
    const key = this.keys.room(room);
    const all = await this.redis.hgetall(key);
    const members: [string, string][] = [];
    const nodes = new Set<string>();
    for (const uid in all) {
      const node = all[uid]!;
      if (node === this.nodeId) continue;
      members.push([uid, node]);
      nodes.add(node);
    }
    if (nodes.size === 0) return members;
    // One liveness read per node (each its own key, so its own slot: never one multi-key command).
    const dead = new Set<string>();
    await Promise.all([...nodes].map(async (node) => {
      if ((await this.redis.exists(this.keys.node(node))) === 0) dead.add(node);
    }));
    if (dead.size === 0) return members;
    const live: [string, string][] = [];
    for (const [uid, node] of members) {
      if (!dead.has(node)) live.push([uid, node]);
      else this.scripts.leave(key, uid, node).catch(() => {});
    }
    return live;
  }

  /** Write every membership again (after a reconnect: Redis may have restarted empty). */
  async rewrite(): Promise<void> {
    const writes: Promise<unknown>[] = [];
    for (const [uid, rooms] of this.#mine) for (const room of rooms) writes.push(this.redis.hset(this.keys.room(room), uid, this.nodeId));
    await Promise.all(writes);
  }
}
