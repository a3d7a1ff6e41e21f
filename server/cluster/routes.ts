// Where uids were last found: lets a forwarded call skip the lookup script and join its
// node's batch. Never trusted blindly: a node that no longer holds the uid answers
// NOT_HERE and a node that is gone receives nothing (PUBLISH reaches 0 subscribers); both
// send the call back through a fresh lookup. Entries also age out.

export class RouteCache {
  #routes = new Map<string, { node: string; at: number }>();

  constructor(
    readonly ttlMs: number,
    readonly maxEntries = 100_000,
  ) {}

  get(uid: string): string | undefined {
    const r = this.#routes.get(uid);
    if (!r) return undefined;
    if (Date.now() - r.at > this.ttlMs) {
      this.#routes.delete(uid);
      return undefined;
    }
    return r.node;
  }

  set(uid: string, node: string): void {
    this.#routes.delete(uid); // re-insert: the Map's order is then oldest first
    this.#routes.set(uid, { node, at: Date.now() });
    if (this.#routes.size > this.maxEntries) this.#routes.delete(this.#routes.keys().next().value!);
  }

  /** Forget uid's route, if it still points at `node` (when given). */
  forget(uid: string, node?: string): void {
    if (node === undefined || this.#routes.get(uid)?.node === node) this.#routes.delete(uid);
  }

  forgetNode(node: string): void {
    for (const [uid, r] of this.#routes) if (r.node === node) this.#routes.delete(uid);
  }

  clear(): void {
    this.#routes.clear();
  }
}
