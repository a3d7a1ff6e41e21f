// Which other nodes listen on the channels of the rooms this node has members in, so that a
// room whose members all sit on this node is not published to Redis for nobody (its state,
// 20 times a second, would otherwise cost Redis a publish it only hands back to its sender).
// Nodes say so on the room's channel itself: HELLO when they subscribe (those already there
// answer HERE at once), HERE again every refresh tick, BYE before they unsubscribe. A node
// not heard from for three ticks (it died) is forgotten. SPUBLISH's receiver count can't
// tell instead: on Redis Cluster it counts only the subscribers of the shard's primary.
//
// Whatever this node does not know makes it publish: a room it has no members in (it hears
// nothing there), and a room it subscribed to less than LEARN_MS ago or since its Redis link
// came back (the answers are on their way). A member joining on another node may miss the
// room's messages of one round trip, as if it had joined that much later.

export const HELLO = 0;
export const HERE = 1;
export const BYE = 2;

/** How long after (re)subscribing this node publishes whatever it has heard. */
const LEARN_MS = 1000;

interface Room {
  /** Other nodes listening, and when each was last heard. */
  others: Map<string, number>;
  learnUntil: number;
}

export class RoomListeners {
  #rooms = new Map<string, Room>();

  constructor(
    /** Say `what` on the room's channel. */
    readonly say: (room: string, what: number) => void,
    /** A node not heard for this long is forgotten (three refresh ticks). */
    readonly expireMs: number,
  ) {}

  /** This node's subscription to the room is in place. */
  subscribed(room: string): void {
    this.#rooms.set(room, { others: new Map(), learnUntil: Date.now() + LEARN_MS });
    this.say(room, HELLO);
  }

  /** This node is about to leave the room's channel. */
  unsubscribing(room: string): void {
    if (this.#rooms.delete(room)) this.say(room, BYE);
  }

  /** Must a message to `room` go through Redis? */
  needed(room: string): boolean {
    const r = this.#rooms.get(room);
    if (r === undefined || r.others.size > 0) return true;
    return Date.now() < r.learnUntil;
  }

  heard(room: string, from: string, what: number): void {
    const r = this.#rooms.get(room);
    if (r === undefined) return;
    if (what === BYE) return void r.others.delete(from);
    r.others.set(from, Date.now());
    if (what === HELLO) this.say(room, HERE);
  }

  /** Every refresh tick: say HERE on every room, forget the nodes gone silent. */
  tick(): void {
    const now = Date.now();
    for (const [room, r] of this.#rooms) {
      for (const [node, at] of r.others) if (now - at > this.expireMs) r.others.delete(node);
      this.say(room, HERE);
    }
  }

  /** The Redis link came back: whatever was said meanwhile is lost; learn every room again. */
  relearn(): void {
    for (const [room, r] of this.#rooms) {
      r.learnUntil = Date.now() + LEARN_MS;
      this.say(room, HELLO);
    }
  }
}
