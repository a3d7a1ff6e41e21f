// Presence: uid → "<nodeId> <sid>" in Redis, one key per uid with a TTL. The node keeps
// its own copy of what it registered and re-writes all of it on every refresh, so the
// entries come back by themselves after Redis restarts empty, and a dead node's entries
// vanish within one TTL. On Redis Cluster a refresh is one script call per slot.

import type { RedisClient, Scripts } from './connection.ts';
import type { Keys } from './keys.ts';
import { slotOf } from './slots.ts';

/** How many keys one refresh script call carries (bounds the time Redis is blocked). */
const REFRESH_BATCH = 500;

export type ClaimResult =
  | { status: 'ok' }
  /** Another live node held uid: it must drop session `sid`. */
  | { status: 'took'; node: string; sid: string }
  /** 'reject' policy and another live node holds uid. */
  | { status: 'refused'; node: string };

/** What presence needs besides Redis: is a node alive (its channel still has its subscriber)? */
export type Alive = (node: string) => Promise<boolean>;

export class Presence {
  /** uid → presence value, for every session this node holds. */
  readonly #mine = new Map<string, string>();
  /** Values (node + sid) whose claim script is still in flight. */
  readonly #claiming = new Set<string>();

  constructor(
    readonly nodeId: string,
    readonly keys: Keys,
    readonly redis: RedisClient,
    readonly scripts: Scripts,
    readonly ttlMs: number,
    readonly alive: Alive,
    /** Redis Cluster: a script call may only carry keys of one slot. */
    readonly bySlot: boolean,
  ) {}

  get size(): number {
    return this.#mine.size;
  }

  /** The sid this node registered for uid, if it holds it. */
  sidOf(uid: string): string | undefined {
    return this.#mine.get(uid)?.slice(this.nodeId.length + 1);
  }

  /** Record uid as ours; `write` false when Redis is down (the next refresh writes it). */
  async claim(uid: string, sid: string, policy: string, resumeSid: string | undefined, write: boolean): Promise<ClaimResult> {
    const value = `${this.nodeId} ${sid}`;
    this.#mine.set(uid, value);
    if (!write) return { status: 'ok' };
    const key = this.keys.presence(uid);
    // A refresh while this claim is in flight must not call the uid lost: the claim's own
    // answer decides (a 'reject' loser closes 4001, not 4000).
    this.#claiming.add(value);
    try {
      let [status, node, oldSid] = await this.scripts.claim(key, this.nodeId, value, this.ttlMs, policy, resumeSid ?? '');
      if (status === 'held') {
        // 'reject' and another node's session: it wins only if that node is still alive.
        if (await this.alive(node!)) {
          if (this.#mine.get(uid) === value) this.#mine.delete(uid);
          return { status: 'refused', node: node! };
        }
        [status, node, oldSid] = await this.scripts.claim(key, this.nodeId, value, this.ttlMs, 'replace', '');
      }
      if (status === 'took') return { status, node: node!, sid: oldSid ?? '' };
      return { status: 'ok' };
    } finally {
      this.#claiming.delete(value);
    }
  }

  /** Forget uid; delete its entry unless another node has taken it since. */
  async release(uid: string, write: boolean): Promise<void> {
    const value = this.#mine.get(uid);
    if (value === undefined) return;
    this.#mine.delete(uid);
    if (write) await this.scripts.release(this.keys.presence(uid), value);
  }

  /** The node and sid Redis names for uid ('' when none). */
  async holder(uid: string): Promise<{ node: string; sid: string }> {
    const v = (await this.redis.get(this.keys.presence(uid))) ?? '';
    const space = v.indexOf(' ');
    return space < 0 ? { node: '', sid: '' } : { node: v.slice(0, space), sid: v.slice(space + 1) };
  }

  /** Is uid on a live node other than this one, in a session other than resumeSid? */
  async heldElsewhere(uid: string, resumeSid: string | undefined): Promise<boolean> {
    const { node, sid } = await this.holder(uid);
    if (!node || node === this.nodeId || sid === (resumeSid ?? '')) return false;
    return this.alive(node);
  }

  /** Re-write every entry (and extend its TTL). Returns the uids another node holds now. */
  async refresh(): Promise<string[]> {
    const lost: string[] = [];
    await Promise.all(
      this.#batches().map(async (batch) => {
        const gone = await this.scripts.refresh(batch.map(([uid]) => this.keys.presence(uid)), this.nodeId, this.ttlMs, batch.map(([, v]) => v));
        for (const idx of gone) {
          const [uid, value] = batch[idx - 1]!;
          // Still the same session here: it lost the uid to another node while the kick was lost.
          if (this.#mine.get(uid) === value && !this.#claiming.has(value)) lost.push(uid);
        }
      }),
    );
    return lost;
  }

  /** Entries in script-sized batches; on Redis Cluster, each batch of one slot. */
  #batches(): [uid: string, value: string][][] {
    const out: [string, string][][] = [];
    if (!this.bySlot) {
      const entries = [...this.#mine];
      for (let i = 0; i < entries.length; i += REFRESH_BATCH) out.push(entries.slice(i, i + REFRESH_BATCH));
      return out;
    }
    const open = new Map<number, [string, string][]>();
    for (const entry of this.#mine) {
      const slot = slotOf(this.keys.presence(entry[0]));
      let batch = open.get(slot);
      if (!batch) open.set(slot, (batch = []));
      batch.push(entry);
      if (batch.length === REFRESH_BATCH) {
        out.push(batch);
        open.delete(slot);
      }
    }
    for (const batch of open.values()) out.push(batch);
    return out;
  }

  /** Every uid this node holds (for shutdown). */
  uids(): string[] {
    return [...this.#mine.keys()];
  }
}
