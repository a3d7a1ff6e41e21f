// A room's notifications across nodes, on the room's own sharded channel: this node
// subscribes while it has members in the room (RoomIndex says when), publishes only when
// another node listens (RoomListeners), and hands what arrives to its members.

import type { Keys } from './keys.ts';
import type { RedisClient } from './connection.ts';
import { RoomListeners } from './roomListeners.ts';
import type { RoomSubscriptions } from './roomIndex.ts';
import { pack, unpack } from './wire.ts';

export class RoomChannels implements RoomSubscriptions {
  /** room channel → room, for the rooms this node is subscribed to. */
  readonly #roomOf = new Map<string, string>();
  readonly listeners: RoomListeners;
  /** Room notifications received for this node's members. */
  received = 0;

  constructor(
    readonly nodeId: string,
    readonly keys: Keys,
    readonly cmd: RedisClient,
    readonly sub: RedisClient,
    /** Redis usable now. */
    readonly ready: () => boolean,
    /** Fan a received notification out to this node's members. */
    readonly deliver: (room: string, bytes: Uint8Array) => void,
    readonly trouble: (err: unknown) => void,
    expireMs: number,
  ) {
    this.listeners = new RoomListeners((room, what) => this.#publish(room, what), expireMs);
  }

  /** Rooms whose channel this node listens on. */
  get size(): number {
    return this.#roomOf.size;
  }

  subscribe(room: string): void {
    const channel = this.keys.roomChannel(room);
    this.#roomOf.set(channel, room);
    this.sub.ssubscribe(channel).then(
      () => this.#roomOf.get(channel) === room && this.listeners.subscribed(room),
      (err) => this.trouble(err),
    );
  }

  unsubscribe(room: string): void {
    const channel = this.keys.roomChannel(room);
    this.#roomOf.delete(channel);
    this.listeners.unsubscribing(room);
    this.sub.sunsubscribe(channel).catch((err) => this.trouble(err));
  }

  /** A room notification, encoded for clients: to the other nodes with members, if any listen. */
  publish(room: string, bytes: Uint8Array): void {
    if (this.listeners.needed(room)) this.#publish(room, bytes);
  }

  #publish(room: string, what: Uint8Array | number): void {
    if (this.ready()) this.cmd.spublish(this.keys.roomChannel(room), pack([this.nodeId, room, what] as never)).catch(() => {});
  }

  /** A message on a channel that is not the node's own; false if it is no room's of ours. */
  onMessage(channel: string, buf: Buffer): void {
    const room = this.#roomOf.get(channel);
    if (room === undefined) return; // unsubscribed since it was sent
    const m = unpack(buf);
    // Our own message comes back when we have members here too: they were sent it locally.
    if (!m || m[0] === this.nodeId || m[1] !== room) return;
    if (typeof m[2] === 'number') return this.listeners.heard(room, String(m[0]), m[2]);
    if (!(m[2] instanceof Uint8Array)) return;
    this.received++;
    this.deliver(room, m[2]);
  }
}
