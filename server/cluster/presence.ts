// Presence: uid → "<nodeId> <sid>" in Redis, one key per uid with a TTL. The node keeps
// its own copy of what it registered and re-writes all of it on every refresh, so the
// entries come back by themselves after Redis restarts empty, and a dead node's entries
// vanish within one TTL.

import type { Keys } from './keys.ts';
import type { Scripts } from './connection.ts';

/** How many keys one refresh script call carries (bounds the time Redis is blocked). */
const REFRESH_BATCH = 500;

export type ClaimResult =
  | { status: 'ok' }
  /** Another live node held uid: it must drop session `sid`. */
  | { status: 'took'; node: string; sid: string }
  /** 'reject' policy and another live node holds uid. */
  | { status: 'refused'; node: string };

export class Presence {
  /** uid → presence value, for every session this node holds. */
  readonly #mine = new Map<string, string>();

  constructor(
    readonly nodeId: string,
    readonly keys: Keys,
    readonly scripts: Scripts,
    readonly ttlMs: number,
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
    const [status, node, oldSid] = await this.scripts.claim(
      this.keys.presence(uid), this.nodeId, value, this.ttlMs, policy, resumeSid ?? '', this.keys.channelPrefix,
    );
    if (status === 'refused') {
      if (this.#mine.get(uid) === value) this.#mine.delete(uid);
      return { status, node: node! };
    }
    if (status === 'took') return { status, node: node!, sid: oldSid ?? '' };
    return { status: 'ok' };
  }

  /** Forget uid; delete its entry unless another node has taken it since. */
  async release(uid: string, write: boolean): Promise<void> {
    const value = this.#mine.get(uid);
    if (value === undefined) return;
    this.#mine.delete(uid);
    if (write) await this.scripts.release(this.keys.presence(uid), value);
  }

  /** Is uid on a live node other than this one, in a session other than resumeSid? */
  async heldElsewhere(uid: string, resumeSid: string | undefined): Promise<boolean> {
    return (await this.scripts.held(this.keys.presence(uid), this.nodeId, resumeSid ?? '', this.keys.channelPrefix)) === 1;
  }

  /** Re-write every entry (and extend its TTL). Returns the uids another node holds now. */
  async refresh(): Promise<string[]> {
    const entries = [...this.#mine];
    const lost: string[] = [];
    for (let i = 0; i < entries.length; i += REFRESH_BATCH) {
      const batch = entries.slice(i, i + REFRESH_BATCH);
      const gone = await this.scripts.refresh(
        batch.map(([uid]) => this.keys.presence(uid)), this.nodeId, this.ttlMs, batch.map(([, v]) => v),
      );
      for (const idx of gone) {
        const [uid, value] = batch[idx - 1]!;
        // Still the same session here: it lost the uid to another node while the kick was lost.
        if (this.#mine.get(uid) === value) lost.push(uid);
      }
    }
    return lost;
  }

  /** Every uid this node holds (for shutdown). */
  uids(): string[] {
    return [...this.#mine.keys()];
  }
}
