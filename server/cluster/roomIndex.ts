// Room membership across nodes, for callMany({room}): a Redis hash per room, uid → the
// node that holds it. Notifications to a room do not need it (every node fans them out to
// its own members); only calls, which must know each uid, do. A dead node's entries are
// dropped by the next lookup that finds its liveness key expired.

import type { Redis } from 'ioredis';
import type { Keys } from './keys.ts';
import type { Scripts } from './connection.ts';

export class RoomIndex {
  /** uid → rooms, what this node wrote, to re-write after Redis comes back empty. */
  readonly #mine = new Map<string, Set<string>>();

  constructor(
    readonly nodeId: string,
    readonly keys: Keys,
    readonly redis: Redis,
    readonly scripts: Scripts,
  ) {}

  joined(uid: string, room: string, write: boolean): Promise<unknown> | undefined {
    let rooms = this.#mine.get(uid);
    if (!rooms) this.#mine.set(uid, (rooms = new Set()));
    if (rooms.has(room)) return;
    rooms.add(room);
    if (!write) return;
    return this.redis.hset(this.keys.room(room), uid, this.nodeId);
  }

  left(uid: string, room: string, write: boolean): Promise<unknown> | undefined {
    const rooms = this.#mine.get(uid);
    if (!rooms?.delete(room)) return;
    if (rooms.size === 0) this.#mine.delete(uid);
    if (!write) return;
    return this.scripts.leave(this.keys.room(room), uid, this.nodeId);
  }

  /** uid's session ended here: it leaves every room (as the server's own Rooms do). */
  leftAll(uid: string, write: boolean): Promise<unknown> | undefined {
    const rooms = this.#mine.get(uid);
    if (!rooms) return;
    this.#mine.delete(uid);
    if (!write) return;
    return Promise.all([...rooms].map((room) => this.scripts.leave(this.keys.room(room), uid, this.nodeId)));
  }

  /** Members of `room` on other live nodes. */
  remoteMembers(room: string): Promise<string[]> {
    return this.scripts.members(this.keys.room(room), this.nodeId, this.keys.nodePrefix);
  }

  /** Write every membership again (after a reconnect: Redis may have restarted empty). */
  async rewrite(): Promise<void> {
    const pipe = this.redis.pipeline();
    let n = 0;
    for (const [uid, rooms] of this.#mine) {
      for (const room of rooms) {
        pipe.hset(this.keys.room(room), uid, this.nodeId);
        n++;
      }
    }
    if (n > 0) await pipe.exec();
  }
}
